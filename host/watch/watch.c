/*
 * libp11isolate-watch.so: what did the vendor module do while it ran?
 *
 * `p11isolate vet` preloads this shim (LD_PRELOAD) into the host process and
 * sets P11I_WATCH=1; ordinary runs and applications never load it.
 * It wraps a few libc entry points and, for each call made by code outside
 * the host executable (the vendor module and whatever it loaded), writes one
 * line to the stderr the host started with:
 *
 *   p11isolate-watch {"ev":"open","call":"fopen","by":"/opt/v/libv.so",
 *                     "path":"/etc/passwd","flags":"r","ok":true}
 *
 * Events and their fields (besides "ev", "call": the wrapped function, and
 * "by": the path of the object the call came from):
 *   open     path, flags ("r" "w" "rw", plus ",creat" or ",tmpfile"), ok, errno
 *            (openat relative to a directory fd: the directory is prefixed,
 *            or "dirfd" given when it cannot be named)
 *   connect  addr ("127.0.0.1:631" "[::1]:80" "unix:/run/x" "unix:@abstract"), ok, errno
 *   fork     ok, errno (vfork too)
 *   exec     path: the program, or the command of system/popen (logged before
 *            the call, since a successful exec does not return)
 *   spawn    path, ok, errno
 *   thread   ok, errno
 *   getenv   name, set (whether it had a value; never the value), each name once
 *   signal   sig ("SIGUSR1"), handler ("default" "ignore" "hold" "function")
 *   dlopen   path (as asked), found (the file used, see as_caller), ok
 * errno is present only when ok is false.  After 1000 lines in all, one
 * {"ev":"truncated"} and silence.  Once armed, the shim first writes
 * {"ev":"watching","pid":N}, so that silence after it means "nothing seen".  Each process counts its own lines: a
 * forked child reports what it does itself (its exec, say).
 *
 * Blind spots, by design or by the brief: calls libc makes to itself (they
 * do not go through the PLT, e.g. getaddrinfo's own connect), raw syscalls,
 * and entry points not wrapped here (creat64, the fortified __open_2 family,
 * __sysv_signal, clone, ...).
 *
 * Build:
 *   gcc -std=gnu11 -O2 -g -fPIC -shared -Wall -Wextra -Werror \
 *       -o build/libp11isolate-watch.so host/watch/watch.c -ldl -lpthread
 */
#define _GNU_SOURCE
/* A fortified fcntl.h would define open() inline itself. */
#undef _FORTIFY_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define WATCH_FD_MIN 200 /* out of the way of the fds a module juggles */
#define MAX_LINES 1000
#define LINE_SIZE 4096   /* == PIPE_BUF: one write(2) is one whole line */
#define STR_CAP 1024     /* escaped bytes per string field; paths get cut */
#define GETENV_SLOTS 512

extern char **environ;

/* Armed: the private copy of stderr. -1 means every wrapper only forwards. */
static int watch_fd = -1;
static struct link_map *main_map; /* the host executable: never reported */
static struct link_map *self_map; /* this shim: never reported */
static unsigned lines;            /* lines written so far (atomic) */
static uint64_t getenv_seen[GETENV_SLOTS]; /* name hashes (atomic) */
#define LINE_SLOTS 4096
static uint64_t line_seen[LINE_SLOTS]; /* hashes of lines reported once (atomic) */

/*
 * Set while this thread formats an event, so that anything our own
 * reporting calls cannot recurse into a report.  initial-exec: the shim is
 * always loaded at startup, and this way no TLS access can allocate.
 */
static __thread int busy __attribute__((tls_model("initial-exec")));

/* Must be evaluated in the exported wrapper itself, not in a helper. */
#define RA __builtin_return_address(0)

/* ------------------------------------------------------------------ */
/* The real functions                                                  */

static void *real_sym(void **slot, const char *name)
{
	void *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (p == NULL) {
		p = dlsym(RTLD_NEXT, name);
		if (p == NULL) {
			/* Nothing sensible to forward to: say so and stop. */
			static const char msg[] = "p11isolate-watch: a libc symbol is missing\n";
			if (write(2, msg, sizeof msg - 1) < 0) {
				/* nothing left to tell */
			}
			abort();
		}
		__atomic_store_n(slot, p, __ATOMIC_RELEASE);
	}
	return p;
}

/* REAL(open)(...) calls libc's open, looked up once. */
#define REAL_AS(type, name)                                                    \
	({                                                                     \
		static void *slot_;                                            \
		(type)real_sym(&slot_, #name);                                 \
	})
#define REAL(name) REAL_AS(__typeof__(&name), name)

/* ------------------------------------------------------------------ */
/* Formatting one line, on the stack, without allocating              */

struct ev {
	char buf[LINE_SIZE];
	size_t n;
	int saved_errno;
	int once; /* a line reported once: the same open, dlopen, connect or handler again is no news */
};

static void put_n(struct ev *e, const char *s, size_t n)
{
	/* Keep room for the closing "}\n"; the field caps make this a
	 * safety net only. */
	if (e->n + n > sizeof e->buf - 2)
		return;
	memcpy(e->buf + e->n, s, n);
	e->n += n;
}

static void put(struct ev *e, const char *s)
{
	put_n(e, s, strlen(s));
}

/* Writes v in decimal plus a NUL into out[24]; returns the length. */
static size_t fmt_long(char out[24], long v)
{
	char tmp[24], *p = tmp + sizeof tmp;
	unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		*--p = '-';
	size_t n = (size_t)(tmp + sizeof tmp - p);
	memcpy(out, p, n);
	out[n] = '\0';
	return n;
}

static void put_long(struct ev *e, long v)
{
	char tmp[24];
	put_n(e, tmp, fmt_long(tmp, v));
}

/* Appends the JSON escape of s[0..n) inside an open string, spending at most
 * *budget output bytes. */
static void esc_n(struct ev *e, const char *s, size_t n, size_t *budget)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char tmp[6];
		size_t k = 0;
		if (c == '"' || c == '\\') {
			tmp[k++] = '\\';
			tmp[k++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(tmp, "\\u00", 4);
			tmp[4] = hex[c >> 4];
			tmp[5] = hex[c & 15];
			k = 6;
		} else {
			tmp[k++] = (char)c; /* bytes >= 0x80 pass through */
		}
		if (k > *budget)
			return;
		*budget -= k;
		put_n(e, tmp, k);
	}
}

static void esc(struct ev *e, const char *s, size_t *budget)
{
	esc_n(e, s, strlen(s), budget);
}

/* ,"key":"value" (or null) */
static void field_str(struct ev *e, const char *key, const char *s)
{
	/* The empty asm makes the compiler forget any nonnull promise a
	 * libc prototype made about s: vendors do pass NULL. */
	__asm__("" : "+r"(s));
	put(e, ",\"");
	put(e, key);
	put(e, "\":");
	if (s == NULL) {
		put(e, "null");
		return;
	}
	size_t budget = STR_CAP;
	put(e, "\"");
	esc(e, s, &budget);
	put(e, "\"");
}

static void field_bool(struct ev *e, const char *key, int v)
{
	put(e, ",\"");
	put(e, key);
	put(e, v ? "\":true" : "\":false");
}

static void field_errno(struct ev *e, int err)
{
	const char *name = strerrorname_np(err);
	if (name != NULL) {
		field_str(e, "errno", name);
	} else {
		put(e, ",\"errno\":");
		put_long(e, err);
	}
}

/* ------------------------------------------------------------------ */
/* Who called, and writing the line                                   */

/*
 * Returns the path of the object ra lies in, or NULL when the call must not
 * be reported (not armed, already reporting, or the host executable or this
 * shim called).  On non-NULL the caller must finish with end().
 */
static const char *watching(const void *ra)
{
	if (watch_fd < 0 || busy)
		return NULL;
	busy = 1;
	int err = errno;
	Dl_info info;
	struct link_map *lm = NULL;
	const char *by = "?"; /* code in no object, e.g. generated at run time */
	if (dladdr1(ra, &info, (void **)&lm, RTLD_DL_LINKMAP) != 0) {
		if (lm == main_map || lm == self_map) {
			errno = err;
			busy = 0;
			return NULL;
		}
		if (info.dli_fname != NULL && info.dli_fname[0] != '\0')
			by = info.dli_fname;
	}
	errno = err;
	return by;
}

static void begin(struct ev *e, const char *ev, const char *call, const char *by)
{
	e->saved_errno = errno;
	e->n = 0;
	e->once = strcmp(ev, "open") == 0 || strcmp(ev, "dlopen") == 0 || strcmp(ev, "connect") == 0 ||
		  strcmp(ev, "signal") == 0;
	put(e, "p11isolate-watch {\"ev\":\"");
	put(e, ev);
	put(e, "\"");
	field_str(e, "call", call);
	field_str(e, "by", by);
}

static dev_t watch_dev;
static ino_t watch_ino;

/* watch_open makes a private copy of stderr: the vendor closing or
 * redirecting fd 2 changes nothing, and an exec'd child does not inherit
 * it. */
static int watch_open(void)
{
	struct stat st;
	int fd = fcntl(2, F_DUPFD_CLOEXEC, WATCH_FD_MIN);

	if (fd < 0) /* RLIMIT_NOFILE below WATCH_FD_MIN */
		fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
	if (fd < 0 || fstat(fd, &st) != 0)
		return -1;
	watch_dev = st.st_dev;
	watch_ino = st.st_ino;
	return fd;
}

static void write_line(const char *s, size_t n)
{
	struct stat st;

	/* The host closes every fd it does not know as it starts, after
	 * this shim's constructor ran: a copy whose number no longer names
	 * it is made again (never a write into a file the vendor opened
	 * under that number since). */
	if (fstat(watch_fd, &st) != 0 || st.st_dev != watch_dev || st.st_ino != watch_ino) {
		int fd = watch_open();
		if (fd < 0)
			return;
		watch_fd = fd;
	}
	while (write(watch_fd, s, n) < 0 && errno == EINTR) {
	}
}

static int first_sight_in(uint64_t *table, size_t slots, const char *s, size_t n);

static void end(struct ev *e)
{
	static const char trunc[] = "p11isolate-watch {\"ev\":\"truncated\"}\n";
	e->buf[e->n++] = '}';
	e->buf[e->n++] = '\n';
	if (e->once && !first_sight_in(line_seen, LINE_SLOTS, e->buf, e->n)) {
		errno = e->saved_errno;
		busy = 0;
		return;
	}
	/* Past the cap, stop counting too, so the counter can never wrap. */
	unsigned n = __atomic_load_n(&lines, __ATOMIC_RELAXED);
	if (n <= MAX_LINES)
		n = __atomic_fetch_add(&lines, 1, __ATOMIC_RELAXED);
	if (n < MAX_LINES)
		write_line(e->buf, e->n);
	else if (n == MAX_LINES)
		write_line(trunc, sizeof trunc - 1);
	errno = e->saved_errno;
	busy = 0;
}

/* ------------------------------------------------------------------ */
/* open, open64, openat, openat64, fopen, fopen64, creat              */

static int needs_mode(int flags)
{
	return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
}

static void report_open(const void *ra, const char *call, int dirfd, const char *path,
			const char *mode, int ok)
{
	const char *by = watching(ra);
	if (by == NULL)
		return;
	struct ev e;
	begin(&e, "open", call, by);
	__asm__("" : "+r"(path)); /* see field_str */
	char dir[PATH_MAX];
	ssize_t dn = -1;
	if (path != NULL && path[0] != '/' && dirfd != AT_FDCWD) {
		/* openat relative to a directory fd: name the directory. */
		char proc[40] = "/proc/self/fd/";
		fmt_long(proc + 14, dirfd);
		dn = readlink(proc, dir, sizeof dir);
	}
	if (dn > 0 && (size_t)dn < sizeof dir) {
		size_t budget = STR_CAP;
		put(&e, ",\"path\":\"");
		esc_n(&e, dir, (size_t)dn, &budget);
		esc(&e, "/", &budget);
		esc(&e, path, &budget);
		put(&e, "\"");
	} else {
		field_str(&e, "path", path);
		if (path != NULL && path[0] != '/' && dirfd != AT_FDCWD) {
			put(&e, ",\"dirfd\":");
			put_long(&e, dirfd);
		}
	}
	field_str(&e, "flags", mode);
	field_bool(&e, "ok", ok);
	if (!ok)
		field_errno(&e, e.saved_errno);
	end(&e);
}

/* "r", "w", "rw", plus ",creat" / ",tmpfile" */
static void open_mode(int flags, char out[16])
{
	int acc = flags & O_ACCMODE;
	strcpy(out, acc == O_RDONLY ? "r" : acc == O_WRONLY ? "w" : "rw");
	if ((flags & O_TMPFILE) == O_TMPFILE)
		strcat(out, ",tmpfile");
	else if (flags & O_CREAT)
		strcat(out, ",creat");
}

static int do_openat(const void *ra, const char *call, int (*real)(int, const char *, int, ...),
		     int dirfd, const char *path, int flags, int mode)
{
	int r = real(dirfd, path, flags, mode);
	char m[16];
	open_mode(flags, m);
	report_open(ra, call, dirfd, path, m, r >= 0);
	return r;
}

static int do_open(const void *ra, const char *call, int (*real)(const char *, int, ...),
		   const char *path, int flags, int mode)
{
	int r = real(path, flags, mode);
	char m[16];
	open_mode(flags, m);
	report_open(ra, call, AT_FDCWD, path, m, r >= 0);
	return r;
}

/* The mode argument exists only with O_CREAT or O_TMPFILE. */
#define OPEN_MODE(last)                                                        \
	int mode = 0;                                                          \
	if (needs_mode(flags)) {                                               \
		va_list ap;                                                    \
		va_start(ap, last);                                            \
		mode = va_arg(ap, int);                                        \
		va_end(ap);                                                    \
	}

/* On 64-bit glibc open and open64 are one function under two names; a
 * caller may bind to either, so both are defined. */
int open(const char *path, int flags, ...)
{
	OPEN_MODE(flags);
	return do_open(RA, "open", REAL(open), path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	OPEN_MODE(flags);
	return do_open(RA, "open64", REAL(open64), path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
	OPEN_MODE(flags);
	return do_openat(RA, "openat", REAL(openat), dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
	OPEN_MODE(flags);
	return do_openat(RA, "openat64", REAL(openat64), dirfd, path, flags, mode);
}

int creat(const char *path, mode_t mode)
{
	const void *ra = RA;
	int r = REAL(creat)(path, mode);
	report_open(ra, "creat", AT_FDCWD, path, "w,creat", r >= 0);
	return r;
}

/* fopen's mode string as open flags: r / w,creat / a (w,creat); "+" is rw. */
static void fopen_mode(const char *m, char out[16])
{
	int plus = m != NULL && strchr(m, '+') != NULL;
	if (m != NULL && m[0] == 'r')
		strcpy(out, plus ? "rw" : "r");
	else
		strcpy(out, plus ? "rw,creat" : "w,creat");
}

static FILE *do_fopen(const void *ra, const char *call, FILE *(*real)(const char *, const char *),
		      const char *path, const char *m)
{
	FILE *f = real(path, m);
	char fl[16];
	fopen_mode(m, fl);
	report_open(ra, call, AT_FDCWD, path, fl, f != NULL);
	return f;
}

FILE *fopen(const char *path, const char *m)
{
	return do_fopen(RA, "fopen", REAL(fopen), path, m);
}

FILE *fopen64(const char *path, const char *m)
{
	return do_fopen(RA, "fopen64", REAL(fopen64), path, m);
}

/* ------------------------------------------------------------------ */
/* connect                                                             */

static void put_addr(struct ev *e, const struct sockaddr *sa, socklen_t len)
{
	char ip[INET6_ADDRSTRLEN];
	size_t budget = STR_CAP;
	put(e, ",\"addr\":\"");
	if (sa == NULL || len < sizeof(sa_family_t)) {
		put(e, "?");
	} else if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)sa;
		put(e, inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip) ? ip : "?");
		put(e, ":");
		put_long(e, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		put(e, "[");
		put(e, inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip) ? ip : "?");
		put(e, "]:");
		put_long(e, ntohs(in6->sin6_port));
	} else if (sa->sa_family == AF_UNIX) {
		const struct sockaddr_un *un = (const void *)sa;
		size_t n = len - offsetof(struct sockaddr_un, sun_path);
		if (n > sizeof un->sun_path)
			n = sizeof un->sun_path;
		put(e, "unix:");
		if (n > 0 && un->sun_path[0] == '\0') {
			/* Abstract: the name is exactly the remaining bytes. */
			put(e, "@");
			esc_n(e, un->sun_path + 1, n - 1, &budget);
		} else {
			esc_n(e, un->sun_path, strnlen(un->sun_path, n), &budget);
		}
	} else {
		put(e, "family:");
		put_long(e, sa->sa_family);
	}
	put(e, "\"");
}

int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	const void *ra = RA;
	int r = REAL(connect)(fd, sa, len);
	const char *by = watching(ra);
	if (by != NULL) {
		struct ev e;
		begin(&e, "connect", "connect", by);
		put_addr(&e, sa, len);
		field_bool(&e, "ok", r == 0);
		if (r != 0)
			field_errno(&e, e.saved_errno);
		end(&e);
	}
	return r;
}

/* ------------------------------------------------------------------ */
/* fork, vfork                                                         */

static void report_fork(const void *ra, const char *call, pid_t pid)
{
	if (pid == 0)
		return; /* the child: the parent reports the fork */
	const char *by = watching(ra);
	if (by == NULL)
		return;
	struct ev e;
	begin(&e, "fork", call, by);
	field_bool(&e, "ok", pid > 0);
	if (pid < 0)
		field_errno(&e, e.saved_errno);
	end(&e);
}

pid_t fork(void)
{
	const void *ra = RA;
	pid_t pid = REAL(fork)();
	report_fork(ra, "fork", pid);
	return pid;
}

/*
 * vfork cannot be wrapped: its child runs on the parent's stack until it
 * execs or exits, so the child returning out of this wrapper would tear
 * down the very frame the parent later resumes in.  A real fork keeps the
 * caller's contract (a vfork child may only exec or _exit, and POSIX
 * allows vfork to be fork), only at the cost of copying the address space.
 */
pid_t vfork(void)
{
	const void *ra = RA;
	pid_t pid = REAL(fork)();
	report_fork(ra, "vfork", pid);
	return pid;
}

/* ------------------------------------------------------------------ */
/* exec family, system, popen, posix_spawn                            */

/* Reported before the call: a successful exec never returns. */
static void report_exec(const void *ra, const char *ev, const char *call, const char *path)
{
	const char *by = watching(ra);
	if (by == NULL)
		return;
	struct ev e;
	begin(&e, ev, call, by);
	field_str(&e, "path", path);
	end(&e);
}

int execve(const char *path, char *const argv[], char *const envp[])
{
	report_exec(RA, "exec", "execve", path);
	return REAL(execve)(path, argv, envp);
}

int execv(const char *path, char *const argv[])
{
	report_exec(RA, "exec", "execv", path);
	return REAL(execv)(path, argv);
}

int execvp(const char *file, char *const argv[])
{
	report_exec(RA, "exec", "execvp", file);
	return REAL(execvp)(file, argv);
}

int execvpe(const char *file, char *const argv[], char *const envp[])
{
	report_exec(RA, "exec", "execvpe", file);
	return REAL(execvpe)(file, argv, envp);
}

/*
 * The execl family is variadic: count the arguments up to the NULL, then
 * copy them into an argv on the stack.  execle's envp follows the NULL.
 */
#define COLLECT_ARGS(arg, argv, envp_out)                                      \
	size_t argc_ = 0;                                                      \
	va_list ap_;                                                           \
	const char *arg0_ = (arg);                                             \
	__asm__("" : "+r"(arg0_)); /* glibc calls it nonnull; it may not be */ \
	if (arg0_ != NULL) {                                                   \
		argc_ = 1;                                                     \
		va_start(ap_, arg);                                            \
		while (va_arg(ap_, char *) != NULL)                            \
			argc_++;                                               \
		va_end(ap_);                                                   \
	}                                                                      \
	char *argv[argc_ + 1];                                                 \
	va_start(ap_, arg);                                                    \
	for (size_t i_ = 0; i_ < argc_; i_++)                                  \
		argv[i_] = i_ == 0 ? (char *)arg0_ : va_arg(ap_, char *);      \
	argv[argc_] = NULL;                                                    \
	if (argc_ > 0)                                                         \
		(void)va_arg(ap_, char *); /* the terminating NULL */          \
	envp_out;                                                              \
	va_end(ap_)

int execl(const char *path, const char *arg, ...)
{
	report_exec(RA, "exec", "execl", path);
	COLLECT_ARGS(arg, argv, (void)0);
	return REAL(execv)(path, argv);
}

int execlp(const char *file, const char *arg, ...)
{
	report_exec(RA, "exec", "execlp", file);
	COLLECT_ARGS(arg, argv, (void)0);
	return REAL(execvp)(file, argv);
}

int execle(const char *path, const char *arg, ...)
{
	report_exec(RA, "exec", "execle", path);
	char *const *envp;
	COLLECT_ARGS(arg, argv, envp = va_arg(ap_, char *const *));
	return REAL(execve)(path, argv, envp);
}

int system(const char *cmd)
{
	__asm__("" : "+r"(cmd));
	if (cmd != NULL) /* system(NULL) only asks whether a shell exists */
		report_exec(RA, "exec", "system", cmd);
	return REAL(system)(cmd);
}

FILE *popen(const char *cmd, const char *type)
{
	report_exec(RA, "exec", "popen", cmd);
	return REAL(popen)(cmd, type);
}

static void report_spawn(const void *ra, const char *call, const char *path, int r)
{
	const char *by = watching(ra);
	if (by == NULL)
		return;
	struct ev e;
	begin(&e, "spawn", call, by);
	field_str(&e, "path", path);
	field_bool(&e, "ok", r == 0);
	if (r != 0)
		field_errno(&e, r);
	end(&e);
}

int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
		const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	const void *ra = RA;
	int r = REAL(posix_spawn)(pid, path, fa, attr, argv, envp);
	report_spawn(ra, "posix_spawn", path, r);
	return r;
}

int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
		 const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	const void *ra = RA;
	int r = REAL(posix_spawnp)(pid, file, fa, attr, argv, envp);
	report_spawn(ra, "posix_spawnp", file, r);
	return r;
}

/* ------------------------------------------------------------------ */
/* pthread_create                                                      */

int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	const void *ra = RA;
	int r = REAL(pthread_create)(th, attr, fn, arg);
	const char *by = watching(ra);
	if (by != NULL) {
		struct ev e;
		begin(&e, "thread", "pthread_create", by);
		field_bool(&e, "ok", r == 0);
		if (r != 0)
			field_errno(&e, r);
		end(&e);
	}
	return r;
}

/* ------------------------------------------------------------------ */
/* getenv, secure_getenv                                               */

/*
 * True the first time the n bytes at s are seen in table (slots entries).
 * They are kept as 64-bit FNV-1a hashes in a fixed table filled front to
 * back: every thread races for the same first free slot, so a string is
 * claimed once.  A full table reports everything (the line cap still
 * holds).
 */
static int first_sight_in(uint64_t *table, size_t slots, const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
	if (h == 0)
		h = 1; /* 0 marks a free slot */
	for (size_t i = 0; i < slots; i++) {
		uint64_t cur = __atomic_load_n(&table[i], __ATOMIC_ACQUIRE);
		if (cur == 0 && __atomic_compare_exchange_n(&table[i], &cur, h, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return 1;
		if (cur == h)
			return 0;
	}
	return 1;
}

static int first_sight(const char *name) { return first_sight_in(getenv_seen, GETENV_SLOTS, name, strlen(name)); }

static void report_getenv(const void *ra, const char *call, const char *name, const char *value)
{
	__asm__("" : "+r"(name));
	const char *by = watching(ra);
	if (by == NULL)
		return;
	if (name == NULL || !first_sight(name)) {
		busy = 0;
		return;
	}
	struct ev e;
	begin(&e, "getenv", call, by);
	field_str(&e, "name", name);
	field_bool(&e, "set", value != NULL); /* never the value itself */
	end(&e);
}

char *getenv(const char *name)
{
	const void *ra = RA;
	char *v = REAL(getenv)(name);
	report_getenv(ra, "getenv", name, v);
	return v;
}

char *secure_getenv(const char *name)
{
	const void *ra = RA;
	char *v = REAL(secure_getenv)(name);
	report_getenv(ra, "secure_getenv", name, v);
	return v;
}

/* ------------------------------------------------------------------ */
/* sigaction, signal, sigset                                           */

static void report_signal(const void *ra, const char *call, int sig, sighandler_t h)
{
	const char *by = watching(ra);
	if (by == NULL)
		return;
	struct ev e;
	begin(&e, "signal", call, by);
	const char *abbrev = sig > 0 ? sigabbrev_np(sig) : NULL;
	put(&e, ",\"sig\":\"SIG");
	if (abbrev != NULL) {
		put(&e, abbrev);
	} else if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
		put(&e, "RTMIN+");
		put_long(&e, sig - SIGRTMIN);
	} else {
		put_long(&e, sig);
	}
	put(&e, "\"");
	field_str(&e, "handler", h == SIG_DFL ? "default" : h == SIG_IGN ? "ignore"
			       : h == SIG_HOLD ? "hold" : "function");
	end(&e);
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	const void *ra = RA;
	int r = REAL(sigaction)(sig, act, old);
	if (act != NULL) /* a NULL act only reads the current disposition */
		report_signal(ra, "sigaction", sig, act->sa_handler);
	return r;
}

sighandler_t signal(int sig, sighandler_t h)
{
	const void *ra = RA;
	sighandler_t r = REAL(signal)(sig, h);
	report_signal(ra, "signal", sig, h);
	return r;
}

/* sigset is deprecated in the headers; name its type without using it. */
typedef sighandler_t (*sigset_fn)(int, sighandler_t);

sighandler_t sigset(int sig, sighandler_t h)
{
	const void *ra = RA;
	sighandler_t r = REAL_AS(sigset_fn, sigset)(sig, h);
	report_signal(ra, "sigset", sig, h);
	return r;
}

/* ------------------------------------------------------------------ */
/* dlopen                                                              */

static int serinfo_has(const Dl_serinfo *si, const char *dir)
{
	for (unsigned i = 0; si != NULL && i < si->dls_cnt; i++)
		if (strcmp(si->dls_serpath[i].dls_name, dir) == 0)
			return 1;
	return 0;
}

static Dl_serinfo *serinfo(struct link_map *lm)
{
	Dl_serinfo size;
	if (dlinfo(lm, RTLD_DI_SERINFOSIZE, &size) != 0)
		return NULL;
	Dl_serinfo *si = malloc(size.dls_size);
	if (si == NULL)
		return NULL;
	if (dlinfo(lm, RTLD_DI_SERINFOSIZE, si) != 0 || dlinfo(lm, RTLD_DI_SERINFO, si) != 0) {
		free(si);
		return NULL;
	}
	return si;
}

/*
 * glibc's dlopen searches a bare name with the DT_RPATH/DT_RUNPATH
 * ($ORIGIN...) of the object that called it, which it finds from its own
 * return address.  Called from here that object is this shim, so a module
 * that dlopens "libhelper.so" from its own directory would load only when
 * not vetted.  So for a bare name we walk the caller's search list
 * (RTLD_DI_SERINFO: the dynamic linker's own expansion) and, if the first
 * directory holding the name is one this shim would not search, hand
 * dlopen that full path.  Otherwise the plain name goes through unchanged,
 * keeping ld.so.cache and the default directories in their usual order.
 */
static const char *as_caller(const void *ra, const char *name, int flags, char *out, size_t outsz)
{
	Dl_info info;
	struct link_map *lm = NULL;
	if (self_map == NULL || dladdr1(ra, &info, (void **)&lm, RTLD_DL_LINKMAP) == 0 ||
	    lm == NULL || lm == self_map)
		return name;
	/* Already loaded under that name: dlopen matches it before searching. */
	void *h = REAL(dlopen)(name, flags | RTLD_NOLOAD);
	if (h != NULL) {
		dlclose(h);
		return name;
	}
	const char *use = name;
	Dl_serinfo *mine = serinfo(self_map), *theirs = serinfo(lm);
	for (unsigned i = 0; theirs != NULL && i < theirs->dls_cnt; i++) {
		const char *dir = theirs->dls_serpath[i].dls_name;
		int n = snprintf(out, outsz, "%s/%s", dir, name);
		if (n < 0 || (size_t)n >= outsz || access(out, F_OK) != 0)
			continue;
		if (!serinfo_has(mine, dir))
			use = out;
		break;
	}
	free(mine);
	free(theirs);
	return use;
}

void *dlopen(const char *path, int flags)
{
	const void *ra = RA;
	char full[PATH_MAX];
	const char *use = path;
	__asm__("" : "+r"(path));
	if (path != NULL && strchr(path, '/') == NULL) {
		int err = errno;
		use = as_caller(ra, path, flags, full, sizeof full);
		errno = err;
	}
	void *h = REAL(dlopen)(use, flags);
	const char *by = watching(ra);
	if (by != NULL) {
		struct ev e;
		begin(&e, "dlopen", "dlopen", by);
		field_str(&e, "path", path);
		if (use != path)
			field_str(&e, "found", use);
		field_bool(&e, "ok", h != NULL);
		end(&e);
	}
	return h;
}

/* ------------------------------------------------------------------ */
/* Arming                                                              */

static int is_var(const char *entry, const char *name)
{
	size_t n = strlen(name);
	return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

/*
 * Hide LD_PRELOAD and P11I_WATCH from the vendor by pointing environ
 * at a filtered copy.  Not unsetenv: that closes the gap inside the array
 * the kernel put on the stack, and the Go runtime of the host walks that
 * array past its NULL to find the auxiliary vector, which would then look
 * empty.  (So the host's os.Environ still lists both; libc's does not.)
 */
static void scrub_environ(void)
{
	size_t n = 0;
	while (environ != NULL && environ[n] != NULL)
		n++;
	char **copy = malloc((n + 1) * sizeof *copy);
	if (copy == NULL)
		return;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!is_var(environ[i], "LD_PRELOAD") && !is_var(environ[i], "P11I_WATCH"))
			copy[k++] = environ[i];
	copy[k] = NULL;
	environ = copy;
}

__attribute__((constructor)) static void watch_init(void)
{
	Dl_info info;
	dladdr1((void *)watch_init, &info, (void **)&self_map, RTLD_DL_LINKMAP);
	/* dlopen(NULL) is the main program; compare link maps, not load
	 * addresses: the Go host is not PIE, so its base address is 0. */
	void *main_h = REAL(dlopen)(NULL, RTLD_LAZY);
	if (main_h != NULL)
		dlinfo(main_h, RTLD_DI_LINKMAP, &main_map);

	const char *on = REAL(getenv)("P11I_WATCH");
	if (on == NULL || strcmp(on, "1") != 0 || main_map == NULL)
		return;
	scrub_environ();
	watch_fd = watch_open();
	if (watch_fd < 0)
		return;
	/* Proof of life, outside the cap: with it, no further lines means the
	 * module did nothing we watch, not that the shim was never armed. */
	struct ev e = {.n = 0};
	put(&e, "p11isolate-watch {\"ev\":\"watching\",\"pid\":");
	put_long(&e, getpid());
	put(&e, "}\n");
	write_line(e.buf, e.n);
}
