/* app.c: an application with secrets, for tests/isolation/run.sh.
 *
 *   app attack LIB SHARED_DIR PRIVATE_DIR
 *       holds secrets (a non-CLOEXEC file and a socket with a secret in it,
 *       a heap secret, a secret environment variable, a key in its session
 *       keyring, a TCP and an abstract unix listener, a secret file in
 *       PRIVATE_DIR), tells the hostile module where they are (SHARED_DIR/
 *       addr), loads LIB (libp11isolate.so with P11ISOLATE_MODULE=hostile)
 *       and calls C_Initialize, C_GetInfo, C_Finalize. Then it prints the
 *       module's report and its own checks, one route a line:
 *           ROUTE <TAB> blocked|LEAKED|reachable|info|ERROR <TAB> detail
 *   app bench LIB N
 *       prints the median time of N C_Initialize calls (each followed by
 *       C_Finalize) and the cost of C_GenerateRandom(32) on the first token
 *       slot: "init_ms X" and "random_us Y".
 *   app init LIB
 *       C_Initialize + C_GetInfo + C_Finalize; prints the CKR value, exits 0
 *       when C_Initialize returned CKR_OK.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <p11-kit/pkcs11.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HEAP_SECRET "P11I-HEAP-SECRET-0123456789abcdef"

static CK_FUNCTION_LIST_PTR load(const char *lib)
{
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	CK_C_GetFunctionList get;
	CK_FUNCTION_LIST_PTR f = NULL;

	if (h == NULL) {
		fprintf(stderr, "app: %s\n", dlerror());
		exit(2);
	}
	get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
	if (get == NULL || get(&f) != CKR_OK) {
		fprintf(stderr, "app: %s: no function list\n", lib);
		exit(2);
	}
	return f;
}

static CK_RV init(CK_FUNCTION_LIST_PTR f)
{
	CK_C_INITIALIZE_ARGS args;
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	return f->C_Initialize(&args);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int bench(const char *lib, int n)
{
	CK_FUNCTION_LIST_PTR f = load(lib);
	double t[1000];
	CK_RV rv;

	if (n < 1 || n > 1000)
		n = 20;
	for (int i = 0; i < n; i++) {
		double t0 = now();
		rv = init(f);
		t[i] = now() - t0;
		if (rv != CKR_OK) {
			printf("C_Initialize failed: 0x%lx\n", (unsigned long)rv);
			return 1;
		}
		f->C_Finalize(NULL);
	}
	qsort(t, (size_t)n, sizeof(t[0]), cmp);
	printf("init_ms %.2f\n", t[n / 2] * 1e3);

	CK_SLOT_ID slots[16];
	CK_ULONG count = 16;
	CK_SESSION_HANDLE s;
	CK_BYTE buf[32];
	if ((rv = init(f)) != CKR_OK || (rv = f->C_GetSlotList(CK_TRUE, slots, &count)) != CKR_OK || count == 0 ||
	    (rv = f->C_OpenSession(slots[0], CKF_SERIAL_SESSION, NULL, NULL, &s)) != CKR_OK) {
		printf("session: 0x%lx (%lu slots)\n", (unsigned long)rv, (unsigned long)count);
		return 1;
	}
	for (int i = 0; i < 500; i++)
		f->C_GenerateRandom(s, buf, sizeof(buf));
	const int calls = 20000;
	double t0 = now();
	for (int i = 0; i < calls; i++) {
		if (f->C_GenerateRandom(s, buf, sizeof(buf)) != CKR_OK) {
			printf("C_GenerateRandom failed\n");
			return 1;
		}
	}
	printf("random_us %.2f\n", (now() - t0) * 1e6 / calls);
	f->C_Finalize(NULL);
	return 0;
}

static int init_only(const char *lib)
{
	CK_FUNCTION_LIST_PTR f = load(lib);
	CK_INFO info;
	CK_RV rv = init(f);
	printf("C_Initialize: 0x%lx\n", (unsigned long)rv);
	if (rv != CKR_OK)
		return 1;
	rv = f->C_GetInfo(&info);
	printf("C_GetInfo: 0x%lx\n", (unsigned long)rv);
	f->C_Finalize(NULL);
	return rv == CKR_OK ? 0 : 1;
}

static void die(const char *what)
{
	fprintf(stderr, "app: %s: %s\n", what, strerror(errno));
	exit(2);
}

static int attack(const char *lib, const char *shared, const char *private)
{
	char path[4096], addr[4096], rep[4096], abstract[64];
	int fd, sv[2], tcp, un;
	struct sockaddr_in in;
	struct sockaddr_un sun;
	socklen_t len = sizeof(in);
	char *heap;
	FILE *f;

	/* A file and a socket, open without O_CLOEXEC. */
	snprintf(path, sizeof(path), "%s/secret", private);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		die(path);
	if (write(fd, "P11I-FD-SECRET P11I-FILE-SECRET\n", 32) != 32)
		die("write");
	if (dup2(fd, 200) < 0)
		die("dup2");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		die("socketpair");
	if (write(sv[0], "P11I-SOCK-SECRET", 16) != 16)
		die("write");
	/* The heap, the environment, the session keyring. */
	heap = malloc(64);
	strcpy(heap, HEAP_SECRET);
	setenv("HOSTILE_SECRET_ENV", "P11I-ENV-SECRET-0123456789", 1);
	syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, "p11i-isolation-app");
	if (syscall(SYS_add_key, "user", "p11i-isolation-secret", "P11I-KEY-SECRET", (size_t)15, -3) < 0)
		fprintf(stderr, "app: add_key: %s (the keyring route is not tested)\n", strerror(errno));
	/* Listeners on the loopback and in the abstract unix namespace. */
	tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (tcp < 0 || bind(tcp, (struct sockaddr *)&in, sizeof(in)) != 0 || listen(tcp, 8) != 0 ||
	    getsockname(tcp, (struct sockaddr *)&in, &len) != 0)
		die("tcp listener");
	snprintf(abstract, sizeof(abstract), "p11i-isolation-%d", (int)getpid());
	un = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path + 1, abstract, strlen(abstract));
	if (un < 0 || bind(un, (struct sockaddr *)&sun, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(abstract))) != 0 ||
	    listen(un, 8) != 0)
		die("abstract listener");

	snprintf(addr, sizeof(addr), "%s/addr", shared);
	snprintf(rep, sizeof(rep), "%s/report", shared);
	f = fopen(addr, "w");
	if (f == NULL)
		die(addr);
	fprintf(f, "pid %d\nheap %p\nfd %d\nport %d\nfile %s\nabstract %s\n", (int)getpid(), (void *)heap, 200,
		ntohs(in.sin_port), path, abstract);
	fclose(f);
	unlink(rep);
	char pid[32];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("HOSTILE_APP_PID", pid, 1);
	setenv("HOSTILE_ADDR_FILE", addr, 1);
	setenv("HOSTILE_REPORT", rep, 1);

	CK_FUNCTION_LIST_PTR p = load(lib);
	CK_RV rv = init(p);
	if (rv != CKR_OK) {
		printf("C_Initialize\tERROR\treturned 0x%lx\n", (unsigned long)rv);
	} else {
		CK_INFO info;
		rv = p->C_GetInfo(&info);
		if (rv != CKR_OK)
			printf("C_GetInfo\tERROR\treturned 0x%lx\n", (unsigned long)rv);
		p->C_Finalize(NULL);
	}

	f = fopen(rep, "r");
	if (f == NULL) {
		printf("report\tERROR\tno report from the hostile module (%s)\n", strerror(errno));
	} else {
		char line[8192];
		while (fgets(line, sizeof(line), f) != NULL)
			fputs(line, stdout);
		fclose(f);
	}
	if (strcmp(heap, HEAP_SECRET) == 0)
		printf("heap secret intact\tblocked\tunchanged after C_Initialize\n");
	else
		printf("heap secret intact\tLEAKED\toverwritten: \"%.16s\"\n", heap);
	printf("application survived\tblocked\tstill running after the signal attempts\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && strcmp(argv[1], "attack") == 0)
		return attack(argv[2], argv[3], argv[4]);
	if (argc == 4 && strcmp(argv[1], "bench") == 0)
		return bench(argv[2], atoi(argv[3]));
	if (argc == 3 && strcmp(argv[1], "init") == 0)
		return init_only(argv[2]);
	fprintf(stderr, "usage: app attack LIB SHARED_DIR PRIVATE_DIR | app bench LIB N | app init LIB\n");
	return 2;
}
