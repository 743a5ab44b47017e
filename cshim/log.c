/* log: the proxy's log lines and the relay of each host's stderr, in C
 * (every process's, a forked child's too). Included by proxy/plane.c. */
#include "shim.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* An output file of the settings (the log, the trace): stderr or none, or
 * a file they name. A forked child inherits the fd; one that closes every
 * fd after the fork (daemons do) may find the number reused by a file of
 * its own, so each write first checks that the fd is still the file and
 * reopens it by path when not. */
struct outfile {
	pthread_mutex_t mu;
	int fd;
	int none; /* the fd without a file: 2 (stderr) or -1 (off) */
	char *path;
	dev_t dev;
	ino_t ino;
};

static struct outfile lg = { PTHREAD_MUTEX_INITIALIZER, 2, 2, NULL, 0, 0 };

/* outfile_reopen opens path as f (f->mu held): 0, or -1 with errno. The
 * fd it replaces is closed only when it still is the file. */
static int outfile_reopen(struct outfile *f, const char *path, int close_old)
{
	struct stat st;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0 || fstat(fd, &st) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		errno = e;
		return -1;
	}
	if (close_old && f->fd > 2)
		close(f->fd);
	f->fd = fd;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	return 0;
}

/* outfile_open makes path (NULL: none) f's file: 0, or -1 with errno. */
static int outfile_open(struct outfile *f, const char *path)
{
	int rc = 0, e = 0;

	pthread_mutex_lock(&f->mu);
	free(f->path);
	f->path = NULL;
	if (path != NULL && outfile_reopen(f, path, 1) == 0) {
		f->path = strdup(path);
	} else {
		/* A file that cannot be opened leaves none, not the last file. */
		rc = path != NULL ? -1 : 0;
		e = errno;
		if (f->fd > 2)
			close(f->fd);
		f->fd = f->none;
	}
	pthread_mutex_unlock(&f->mu);
	errno = e;
	return rc;
}

/* outfile_fd returns f's fd, reopened if its number no longer names the
 * file (f->mu held). */
static int outfile_fd(struct outfile *f)
{
	struct stat st;

	if (f->path != NULL && (fstat(f->fd, &st) != 0 || st.st_dev != f->dev || st.st_ino != f->ino) &&
	    outfile_reopen(f, f->path, 0) != 0)
		f->fd = f->none;
	return f->fd;
}

int p11i_log_open(const char *path) { return outfile_open(&lg, path); }

/* p11i_log_fd is the fd a host without a relay gets as its stderr. */
static int p11i_log_fd(void)
{
	pthread_mutex_lock(&lg.mu);
	int fd = outfile_fd(&lg);
	pthread_mutex_unlock(&lg.mu);
	return fd;
}

/* p11i_log_forked makes the log usable in a new child: a parent thread may
 * have held its lock at the fork. */
static void p11i_log_forked(void) { pthread_mutex_init(&lg.mu, NULL); }

/* p11i_log writes one line: "p11isolate: ..." in the process that loaded
 * the library, "p11isolate[pid]: ..." in a forked child. One write per
 * line, so that lines of several threads and processes never interleave. */
/* log_quiet silences this thread's lines: a host started only to learn
 * the vendor's interfaces (supervise.c, probe) fails as C_Initialize will,
 * which says why once. */
static __thread int log_quiet;

void p11i_log(const char *fmt, ...)
{
	char line[4096];
	va_list ap;
	int n;

	if (log_quiet)
		return;
	if (p11i_forked_child())
		n = snprintf(line, sizeof line, "p11isolate[%d]: ", (int)getpid());
	else
		n = snprintf(line, sizeof line, "p11isolate: ");
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	pthread_mutex_lock(&lg.mu);
	p11i_log_write(outfile_fd(&lg), line, (size_t)n);
	pthread_mutex_unlock(&lg.mu);
}

/* detached runs fn(arg) on a thread of its own that takes none of the
 * application's signals; -1 when no thread can be had. */
static int detached(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	pthread_attr_t attr;
	sigset_t all, old;
	int e;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 << 10);
	e = pthread_create(&t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return e == 0 ? 0 : -1;
}

/* A relay copies one host's stderr into the log, line by line, prefixed
 * "host[pid]: ". It ends when the host and everything it started have
 * closed their stderr. */
struct relay {
	int fd;
	pid_t pid; /* set once the host is spawned */
};

static void *relay_run(void *arg)
{
	struct relay *r = arg;
	char buf[4000];
	size_t have = 0;

	for (;;) {
		ssize_t n = read(r->fd, buf + have, sizeof buf - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		char *start = buf, *nl;
		while ((nl = memchr(start, '\n', (size_t)(buf + have - start))) != NULL) {
			*nl = '\0';
			if (nl > start && nl[-1] == '\r')
				nl[-1] = '\0';
			p11i_log("host[%d]: %s", (int)__atomic_load_n(&r->pid, __ATOMIC_ACQUIRE), start);
			start = nl + 1;
		}
		have -= (size_t)(start - buf);
		memmove(buf, start, have);
		if (have == sizeof buf - 1) { /* a line longer than the buffer: in pieces */
			buf[have] = '\0';
			p11i_log("host[%d]: %s", (int)__atomic_load_n(&r->pid, __ATOMIC_ACQUIRE), buf);
			have = 0;
		}
	}
	if (have > 0) {
		buf[have] = '\0';
		p11i_log("host[%d]: %s", (int)__atomic_load_n(&r->pid, __ATOMIC_ACQUIRE), buf);
	}
	p11i_fd_unregister(r->fd);
	close(r->fd);
	free(r);
	return NULL;
}

/* relay_new starts a relay and returns the fd the host gets as its stderr
 * (the caller closes it after the spawn), or the log's own fd when no
 * thread can be had (the host's lines then go unprefixed). */
static int relay_new(struct relay **out)
{
	struct relay *r = calloc(1, sizeof *r);
	int p[2];

	*out = NULL;
	if (r == NULL || pipe2(p, O_CLOEXEC) != 0) {
		free(r);
		return -1;
	}
	r->fd = p[0];
	p11i_fd_register(p[0]);
	if (detached(relay_run, r) != 0) {
		p11i_fd_unregister(p[0]);
		close(p[0]);
		close(p[1]);
		free(r);
		return -1;
	}
	*out = r;
	return p[1];
}

/* go_duration formats ns as Go's time.Duration does ("100ms", "1.6s",
 * "1m0s"): the settings are written that way, and so are the log lines Go
 * wrote before. */
static const char *go_duration(char *b, size_t n, int64_t ns)
{
	static const struct {
		int64_t unit;
		const char *name;
	} small[] = { { 1000, "µs" }, { 1000000, "ms" } };
	char frac[16] = "";
	int64_t unit;
	const char *name;

	if (ns < 1000) {
		snprintf(b, n, "%lld%s", (long long)ns, ns == 0 ? "s" : "ns");
		return b;
	}
	if (ns < 1000000000) {
		int i = ns < 1000000 ? 0 : 1;
		unit = small[i].unit;
		name = small[i].name;
	} else {
		unit = 1000000000;
		name = "s";
	}
	int64_t whole = ns / unit, rest = ns % unit;
	if (rest != 0) {
		int digits = unit == 1000 ? 3 : unit == 1000000 ? 6 : 9;
		snprintf(frac, sizeof frac, ".%0*lld", digits, (long long)rest);
		for (size_t k = strlen(frac); frac[k - 1] == '0'; k--)
			frac[k - 1] = '\0';
	}
	if (unit < 1000000000) {
		snprintf(b, n, "%lld%s%s", (long long)whole, frac, name);
		return b;
	}
	long long h = whole / 3600, m = whole / 60 % 60, s = whole % 60;
	if (h > 0)
		snprintf(b, n, "%lldh%lldm%lld%ss", h, m, s, frac);
	else if (m > 0)
		snprintf(b, n, "%lldm%lld%ss", m, s, frac);
	else
		snprintf(b, n, "%lld%ss", s, frac);
	return b;
}
