/* hostile.c: a PKCS#11 module that attacks the application it is loaded
 * for, then behaves (it wraps SoftHSM2, or HOSTILE_MODULE).
 *
 * In its first C_Initialize it tries every route out of the host into the
 * application (tests/isolation/app.c) and writes one line per route to the
 * file named by HOSTILE_REPORT:
 *
 *     ROUTE <TAB> blocked|LEAKED|reachable <TAB> what happened
 *
 * "LEAKED" means the route reached the application (read a secret, wrote
 * its memory, could signal it); "reachable" marks routes that only the
 * strict profile closes (files, network). It learns the application's pid,
 * the address of a heap secret, its secret fd number and more from the file
 * named by HOSTILE_ADDR_FILE (and the pid from HOSTILE_APP_PID too). With
 * HOSTILE_KILL=real it sends SIGKILL for real; otherwise signal routes are
 * probed with signal 0.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define FD_SECRET "P11I-FD-SECRET"
#define SOCK_SECRET "P11I-SOCK-SECRET"
#define HEAP_SECRET "P11I-HEAP-SECRET"
#define ENV_SECRET "P11I-ENV-SECRET"
#define KEY_SECRET "P11I-KEY-SECRET"
#define FILE_SECRET "P11I-FILE-SECRET"

extern char **environ;

static FILE *report;

/* The application, as app.c describes itself. */
static struct {
	long pid;
	uintptr_t heap;
	int fd;
	int port;
	char file[4200];
	char abstract[108];
} app;

static int kill_for_real;

static void line(const char *route, const char *verdict, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void line(const char *route, const char *verdict, const char *fmt, ...)
{
	va_list ap;
	if (report == NULL)
		return;
	fprintf(report, "%s\t%s\t", route, verdict);
	va_start(ap, fmt);
	vfprintf(report, fmt, ap);
	va_end(ap);
	fputc('\n', report);
	fflush(report);
}

static int contains(const char *buf, size_t n, const char *needle)
{
	return memmem(buf, n, needle, strlen(needle)) != NULL;
}

static void read_addr_file(void)
{
	const char *path = getenv("HOSTILE_ADDR_FILE");
	const char *pid = getenv("HOSTILE_APP_PID");
	char key[32], val[4096];
	FILE *f;

	if (pid != NULL)
		app.pid = atol(pid);
	if (path == NULL || (f = fopen(path, "r")) == NULL) {
		line("setup", "ERROR", "cannot read HOSTILE_ADDR_FILE=%s: %s", path ? path : "(unset)", strerror(errno));
		return;
	}
	while (fscanf(f, "%31s %4095s", key, val) == 2) {
		if (strcmp(key, "pid") == 0 && app.pid == 0)
			app.pid = atol(val);
		else if (strcmp(key, "heap") == 0)
			app.heap = (uintptr_t)strtoull(val, NULL, 16);
		else if (strcmp(key, "fd") == 0)
			app.fd = atoi(val);
		else if (strcmp(key, "port") == 0)
			app.port = atoi(val);
		else if (strcmp(key, "file") == 0)
			snprintf(app.file, sizeof(app.file), "%s", val);
		else if (strcmp(key, "abstract") == 0)
			snprintf(app.abstract, sizeof(app.abstract), "%.100s", val);
	}
	fclose(f);
}

/* Every fd the host holds: regular files are read from offset 0, sockets
 * peeked, looking for the application's secrets. */
static void attack_fds(void)
{
	char found[256] = "", kinds[2048] = "";
	size_t used = 0;
	int open_fds = 0;

	for (int fd = 0; fd < 1024; fd++) {
		struct stat st;
		char buf[4096];
		ssize_t n = -1;
		const char *kind = "other";

		if (fstat(fd, &st) != 0)
			continue;
		open_fds++;
		if (S_ISREG(st.st_mode)) {
			kind = "file";
			lseek(fd, 0, SEEK_SET);
			n = read(fd, buf, sizeof(buf));
		} else if (S_ISSOCK(st.st_mode)) {
			kind = "socket";
			n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
		} else if (S_ISFIFO(st.st_mode)) {
			kind = "pipe";
		} else if (S_ISCHR(st.st_mode)) {
			kind = "chr";
		}
		if (used < sizeof(kinds))
			used += (size_t)snprintf(kinds + used, sizeof(kinds) - used, "%s%d:%s", used ? " " : "", fd, kind);
		if (n > 0 && (contains(buf, (size_t)n, FD_SECRET) || contains(buf, (size_t)n, SOCK_SECRET)))
			snprintf(found + strlen(found), sizeof(found) - strlen(found), " fd %d (%s)", fd, kind);
	}
	if (found[0])
		line("fds 0-1023 (read, recv MSG_PEEK)", "LEAKED", "secret found in%s; open: %s", found, kinds);
	else
		line("fds 0-1023 (read, recv MSG_PEEK)", "blocked", "%d fds open, no secret: %s", open_fds, kinds);
}

static void attack_mem(const char *route, long pid)
{
	char path[64], buf[64];
	int fd;
	ssize_t n;

	if (pid <= 0) {
		line(route, "blocked", "no such pid (%ld)", pid);
		return;
	}
	snprintf(path, sizeof(path), "/proc/%ld/mem", pid);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		line(route, "blocked", "open %s: %s", path, strerror(errno));
		return;
	}
	n = pread(fd, buf, sizeof(buf), (off_t)app.heap);
	if (n > 0 && contains(buf, (size_t)n, HEAP_SECRET))
		line(route, "LEAKED", "read the heap secret at 0x%" PRIxPTR " through %s", app.heap, path);
	else
		line(route, "blocked", "opened %s, but no secret at 0x%" PRIxPTR " (%s)", path, app.heap,
		     n < 0 ? strerror(errno) : "other memory");
	close(fd);
}

static void attack_vm(void)
{
	char buf[64];
	struct iovec local = { buf, sizeof(buf) }, remote = { (void *)app.heap, sizeof(buf) };
	ssize_t n = process_vm_readv((pid_t)app.pid, &local, 1, &remote, 1, 0);

	if (n > 0 && contains(buf, (size_t)n, HEAP_SECRET))
		line("process_vm_readv", "LEAKED", "read the heap secret");
	else
		line("process_vm_readv", "blocked", "%s", n < 0 ? strerror(errno) : "no secret");

	static char pwned[] = "P11I-HEAP-PWNED!";
	struct iovec w = { pwned, sizeof(pwned) - 1 }, rw = { (void *)app.heap, sizeof(pwned) - 1 };
	n = process_vm_writev((pid_t)app.pid, &w, 1, &rw, 1, 0);
	if (n > 0)
		line("process_vm_writev", "LEAKED", "overwrote %zd bytes of the application's heap", n);
	else
		line("process_vm_writev", "blocked", "%s", strerror(errno));
}

static void attack_ptrace(void)
{
	int st;

	if (ptrace(PTRACE_ATTACH, (pid_t)app.pid, 0, 0) != 0) {
		line("ptrace (PTRACE_ATTACH)", "blocked", "%s", strerror(errno));
		return;
	}
	/* Attached: wait for the stop, read the secret, let it go. */
	char evidence[64] = "attached";
	if (waitpid((pid_t)app.pid, &st, __WALL) > 0) {
		errno = 0;
		long word = ptrace(PTRACE_PEEKDATA, (pid_t)app.pid, (void *)app.heap, 0);
		if (errno == 0 && memcmp(&word, HEAP_SECRET, sizeof(word)) == 0)
			snprintf(evidence, sizeof(evidence), "attached and read the heap secret");
	}
	ptrace(PTRACE_DETACH, (pid_t)app.pid, 0, 0);
	line("ptrace (PTRACE_ATTACH)", "LEAKED", "%s", evidence);
}

static void attack_pidfd(void)
{
	int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)app.pid, 0);
	if (pidfd < 0) {
		line("pidfd_getfd (the app's fd)", "blocked", "pidfd_open: %s", strerror(errno));
		return;
	}
	int fd = (int)syscall(SYS_pidfd_getfd, pidfd, app.fd, 0);
	if (fd < 0) {
		line("pidfd_getfd (the app's fd)", "blocked", "pidfd_getfd: %s", strerror(errno));
	} else {
		char buf[256];
		ssize_t n = pread(fd, buf, sizeof(buf), 0);
		line("pidfd_getfd (the app's fd)", "LEAKED", "got fd %d of the application%s", app.fd,
		     n > 0 && contains(buf, (size_t)n, FD_SECRET) ? " and read its secret" : "");
		close(fd);
	}
	close(pidfd);
}

static void proc_file(const char *route, const char *file, const char *secret)
{
	char path[128], buf[65536];
	snprintf(path, sizeof(path), "/proc/%ld/%s", app.pid, file);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		line(route, "blocked", "open %s: %s", path, strerror(errno));
		return;
	}
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n > 0 && contains(buf, (size_t)n, secret))
		line(route, "LEAKED", "read the secret from %s", path);
	else
		line(route, "blocked", "opened %s: %s", path, n < 0 ? strerror(errno) : "no secret");
}

/* A signal route: probe with 0, or the real SIGKILL. */
static void signal_route(const char *route, long rc)
{
	if (rc == 0)
		line(route, "LEAKED", "%s", kill_for_real ? "SIGKILL sent to the application" : "signal 0 accepted: SIGKILL would be too");
	else
		line(route, "blocked", "%s", strerror(errno));
}

static void attack_signals(void)
{
	int sig = kill_for_real ? SIGKILL : 0;
	siginfo_t si;

	signal_route("kill(app, SIGKILL)", kill((pid_t)app.pid, sig));
	signal_route("tgkill(app, app, SIGKILL)", syscall(SYS_tgkill, (pid_t)app.pid, (pid_t)app.pid, sig));
	memset(&si, 0, sizeof(si));
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	signal_route("rt_sigqueueinfo(app, SIGKILL)", syscall(SYS_rt_sigqueueinfo, (pid_t)app.pid, sig, &si));
	int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)app.pid, 0);
	if (pidfd < 0) {
		line("pidfd_send_signal(SIGKILL)", "blocked", "pidfd_open: %s", strerror(errno));
	} else {
		signal_route("pidfd_send_signal(SIGKILL)", syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0));
		close(pidfd);
	}
	struct rlimit old;
	if (prlimit((pid_t)app.pid, RLIMIT_NOFILE, NULL, &old) == 0)
		line("prlimit(app) (e.g. RLIMIT_CPU)", "LEAKED", "can read (and so set) the application's limits");
	else
		line("prlimit(app) (e.g. RLIMIT_CPU)", "blocked", "%s", strerror(errno));
}

static void attack_env(void)
{
	const char *v = getenv("HOSTILE_SECRET_ENV");
	int seen = v != NULL;
	for (char **e = environ; e != NULL && *e != NULL; e++)
		seen |= strstr(*e, ENV_SECRET) != NULL;
	if (seen)
		line("own environment (HOSTILE_SECRET_ENV)", "LEAKED", "the application's secret variable is in the host's environment");
	else
		line("own environment (HOSTILE_SECRET_ENV)", "blocked", "not passed to the host");
}

static void attack_keyring(void)
{
	/* keyctl(KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, "user", name, 0) */
	long id = syscall(SYS_keyctl, 10, -3, "user", "p11i-isolation-secret", 0);
	if (id < 0) {
		line("session keyring (keyctl)", "blocked", "key not found: %s", strerror(errno));
		return;
	}
	char buf[128];
	long n = syscall(SYS_keyctl, 11, id, buf, sizeof(buf));
	line("session keyring (keyctl)", n > 0 && contains(buf, (size_t)n, KEY_SECRET) ? "LEAKED" : "blocked",
	     "found the application's key %ld%s", id, n > 0 ? " and read it" : "");
}

static void check_core(void)
{
	struct rlimit core;
	int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	getrlimit(RLIMIT_CORE, &core);
	if (dumpable == 0 && core.rlim_cur == 0 && core.rlim_max == 0)
		line("core dump of the host", "blocked", "not dumpable, RLIMIT_CORE 0");
	else
		line("core dump of the host", "LEAKED", "dumpable %d, RLIMIT_CORE %lu/%lu", dumpable,
		     (unsigned long)core.rlim_cur, (unsigned long)core.rlim_max);
}

/* Routes only the strict profile closes. */
static void attack_outside(void)
{
	char buf[256];
	int fd = open(app.file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		line("the app's files (not in sandbox_paths)", "blocked", "open %s: %s", app.file, strerror(errno));
	} else {
		ssize_t n = read(fd, buf, sizeof(buf));
		line("the app's files (not in sandbox_paths)", n > 0 && contains(buf, (size_t)n, FILE_SECRET) ? "reachable" : "blocked",
		     "read %s", app.file);
		close(fd);
	}

	struct sockaddr_in in;
	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_port = htons((uint16_t)app.port);
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&in, sizeof(in)) == 0)
		line("TCP to the app (127.0.0.1)", "reachable", "connected to port %d", app.port);
	else
		line("TCP to the app (127.0.0.1)", "blocked", "%s", strerror(errno));
	if (fd >= 0)
		close(fd);

	struct sockaddr_un un;
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	size_t len = strlen(app.abstract);
	memcpy(un.sun_path + 1, app.abstract, len);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&un, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len)) == 0)
		line("abstract unix socket of the app", "reachable", "connected to @%s", app.abstract);
	else
		line("abstract unix socket of the app", "blocked", "%s", strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* What the filter must leave alone: a process signalling itself, its own
 * threads and process group, and reading its own limits. */
static void check_self(void)
{
	struct rlimit lim;
	char bad[256] = "";
	pid_t me = getpid();

	if (kill(me, 0) != 0)
		strcat(bad, " kill(self)");
	if (kill(0, 0) != 0)
		strcat(bad, " kill(0)");
	if (kill(-getpgrp(), 0) != 0)
		strcat(bad, " kill(-pgrp)");
	if (syscall(SYS_tgkill, me, (pid_t)syscall(SYS_gettid), 0) != 0)
		strcat(bad, " tgkill(self)");
	if (prlimit(0, RLIMIT_NOFILE, NULL, &lim) != 0 || prlimit(me, RLIMIT_NOFILE, NULL, &lim) != 0)
		strcat(bad, " prlimit(self)");
	if (bad[0])
		line("signals and limits of its own", "ERROR", "refused:%s (%s)", bad, strerror(errno));
	else
		line("signals and limits of its own", "ok", "kill(self), kill(0), kill(-pgrp), tgkill(self), prlimit(self) work");
}

static void attack(void)
{
	const char *path = getenv("HOSTILE_REPORT");
	const char *k = getenv("HOSTILE_KILL");
	char route[32];

	if (path == NULL)
		return;
	report = fopen(path, "ae"); /* append: the fd scan below rewinds every file */
	if (report == NULL)
		return;
	kill_for_real = k != NULL && strcmp(k, "real") == 0;
	read_addr_file();
	line("whoami", "info", "pid %d, ppid %d, uid %d; the application is pid %ld", (int)getpid(), (int)getppid(),
	     (int)getuid(), app.pid);
	attack_fds();
	attack_mem("/proc/getppid()/mem", (long)getppid());
	attack_mem("/proc/APP/mem (HOSTILE_APP_PID)", app.pid);
	snprintf(route, sizeof(route), "fd/%d", app.fd);
	proc_file("/proc/APP/fd/N (reopen its fd)", route, FD_SECRET);
	proc_file("/proc/APP/environ", "environ", ENV_SECRET);
	attack_vm();
	attack_ptrace();
	attack_pidfd();
	attack_env();
	attack_keyring();
	check_core();
	attack_outside();
	attack_signals();
	check_self();
	fclose(report);
	report = NULL;
}

/* ---- the module: the real one's list, with C_Initialize wrapped ---- */

static CK_FUNCTION_LIST_PTR real;
static CK_FUNCTION_LIST list;
static pthread_once_t attacked = PTHREAD_ONCE_INIT;

static CK_RV hostile_initialize(CK_VOID_PTR args)
{
	pthread_once(&attacked, attack);
	return real->C_Initialize(args);
}

__attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
	if (real == NULL) {
		const char *path = getenv("HOSTILE_MODULE");
		CK_C_GetFunctionList get;
		void *h = dlopen(path ? path : "/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW | RTLD_LOCAL);
		if (h == NULL || (get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList")) == NULL ||
		    get(&real) != CKR_OK)
			return CKR_GENERAL_ERROR;
		list = *real;
		list.C_Initialize = hostile_initialize;
		list.C_GetFunctionList = C_GetFunctionList;
	}
	if (out == NULL)
		return CKR_ARGUMENTS_BAD;
	*out = &list;
	return CKR_OK;
}
