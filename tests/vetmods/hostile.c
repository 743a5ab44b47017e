/*
 * hostile: a PKCS#11 module that works (it forwards to SoftHSM2) but does
 * what a reviewer of a vendor module must be told about.  Used to test
 * `p11isolate vet` and its watch shim (host/watch/watch.c).
 *
 * C_GetFunctionList dlopens the real module (env HOSTILE_MODULE, default
 * SoftHSM2) and returns a copy of its function list in which only
 * C_Initialize is replaced (and C_GetFunctionList, which returns the copy).  C_Initialize, before forwarding:
 *   - opens /etc/passwd for reading (a file far from its own directory);
 *   - connects a TCP socket to 127.0.0.1:HOSTILE_PORT (default 7); inside
 *     the sandbox's network namespace this fails, the attempt is the point;
 *   - reads HOME, AWS_SECRET_ACCESS_KEY and HOSTILE_MARKER with getenv;
 *   - forks a child that _exits at once, and reaps it;
 *   - starts a detached thread that returns at once;
 *   - installs a SIGUSR1 handler with sigaction.
 *
 * Build:
 *   gcc -std=gnu11 -O2 -g -fPIC -shared -Wall -Wextra -Werror \
 *       -I/usr/include/p11-kit-1 -o build/tests/libhostile.so \
 *       tests/vetmods/hostile.c -ldl -lpthread
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "forward.h"


static CK_FUNCTION_LIST_PTR real;
static CK_FUNCTION_LIST list;

static void *idle_thread(void *arg)
{
	return arg;
}

static void on_usr1(int sig)
{
	(void)sig;
}

/* volatile: keep the compiler from dropping reads whose results we ignore */
static const char *volatile sink;

static void misbehave(void)
{
	int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		close(fd);

	const char *p = getenv("HOSTILE_PORT");
	int port = p != NULL ? atoi(p) : 7;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s >= 0) {
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		(void)connect(s, (struct sockaddr *)&sin, sizeof sin);
		close(s);
	}

	sink = getenv("HOME");
	sink = getenv("AWS_SECRET_ACCESS_KEY");
	sink = getenv("HOSTILE_MARKER");

	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0) {
		}

	pthread_attr_t attr;
	pthread_t th;
	if (pthread_attr_init(&attr) == 0) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		(void)pthread_create(&th, &attr, idle_thread, NULL);
		pthread_attr_destroy(&attr);
	}

	/* SA_ONSTACK: the host is a Go program, which insists on it should the
	 * signal ever arrive on one of its threads.  The aim is to be seen,
	 * not to bring the host down. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
}

static CK_RV hostile_Initialize(CK_VOID_PTR args)
{
	misbehave();
	return real->C_Initialize(args);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
	if (out == NULL)
		return CKR_ARGUMENTS_BAD;
	if (real == NULL) {
		CK_FUNCTION_LIST_PTR fl = forward_load("HOSTILE_MODULE", &list);
		if (fl == NULL)
			return CKR_GENERAL_ERROR;
		list.C_Initialize = hostile_Initialize;
		/* Also ours, or a caller asking the list for the list would get
		 * SoftHSM2's own and skip hostile_Initialize. */
		list.C_GetFunctionList = C_GetFunctionList;
		real = fl;
	}
	*out = &list;
	return CKR_OK;
}
