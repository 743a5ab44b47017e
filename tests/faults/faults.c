/* faults: the fault matrix of libp11isolate.so (issue 4).
 *
 *   faults LIB PIN MODE
 *
 * LIB is libp11isolate.so; the proxy must be pointed at faultmod
 * (P11ISOLATE_MODULE=libfaultmod.so) with FAULTMOD_FILE naming the fault
 * file this driver arms, P11ISOLATE_ENV='FAULTMOD_*', P11ISOLATE_LOG a file
 * and P11ISOLATE_TIMEOUT a short deadline (tests/faults/run.sh sets them).
 * The token needs an initialized user PIN; the driver makes its own key.
 *
 * MODE:
 *   matrix   every fault kind x {C_Initialize, C_OpenSession, C_Login,
 *            C_Sign, C_GetAttributeValue, C_FindObjects, C_Finalize}
 *   threads  every fault kind hitting C_Sign while 4 threads sign + verify
 *   appsig   the application's own SIGCHLD and SIGPIPE handling
 *   appkill  the host ends with the application, even on SIGKILL
 *   storm    a vendor that dies at every start: no fork storm, no hang
 *
 * Prints one line per check ("ok   - ..." or "FAIL - ...") and, for
 * matrix and threads, a table (lines starting with "| "). Exits non-zero if
 * any check failed.
 *
 * Optional environment: FAULTS_KINDS, FAULTS_FUNCS (comma-separated subsets
 * of the matrix, for development).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "../common/ckr.h"
#include "../common/report.h"

/* ================================================================== */
/* Reporting                                                           */

static const char *rvs(CK_RV rv) { return ckr_name(rv); }

__attribute__((format(printf, 1, 2))) static void raw(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay("", fmt, ap);
	va_end(ap);
}

/* ================================================================== */
/* Time, environment                                                   */

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);
	return v && *v ? v : def;
}

/* deadline_ms is the proxy's per-call deadline from P11ISOLATE_TIMEOUT
 * (the driver needs it for its time bounds). */
static double deadline_ms = 30000;

static double parse_duration_ms(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (strcmp(end, "ms") == 0)
		return v;
	if (strcmp(end, "s") == 0 || *end == '\0')
		return v * 1000;
	if (strcmp(end, "m") == 0)
		return v * 60000;
	return -1;
}

/* ================================================================== */
/* Processes                                                           */

struct pinfo {
	pid_t pid, ppid, pgrp;
	char state;
	unsigned long long start; /* start time: a reused pid is another process */
};

/* read_stat reads pid's state, parent, process group and start time; -1
 * if gone. */
static int read_stat(pid_t pid, struct pinfo *pi)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	int ppid, pgrp;
	if (p == NULL || sscanf(p + 1, " %c %d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
				&pi->state, &ppid, &pgrp, &pi->start) != 4)
		return -1;
	pi->pid = pid;
	pi->ppid = ppid;
	pi->pgrp = pgrp;
	return 0;
}

static int is_host_process(pid_t pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strstr(buf, "p11isolate-host") != NULL;
}

/* pid_ns is the inode of pid's pid namespace (0 if unknown). */
static unsigned long pid_ns(pid_t pid)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	return stat(path, &st) == 0 ? (unsigned long)st.st_ino : 0;
}

/* scan_procs lists every process. */
static int scan_procs(struct pinfo *out, int max)
{
	DIR *d = opendir("/proc");
	if (d == NULL)
		return 0;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL && n < max) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end != '\0' || pid <= 0)
			continue;
		if (read_stat((pid_t)pid, &out[n]) == 0)
			n++;
	}
	closedir(d);
	return n;
}

#define MAXPROCS 4096
static struct pinfo procbuf[MAXPROCS];
static pthread_mutex_t proc_mu = PTHREAD_MUTEX_INITIALIZER;

/* host_pid is the pid of the one live host child of this process (the
 * process the proxy started: the host, or the init of its pid namespace),
 * 0 if none, -1 if there are several. */
static pid_t host_pid(void)
{
	pthread_mutex_lock(&proc_mu);
	int n = scan_procs(procbuf, MAXPROCS);
	pid_t me = getpid(), found = 0;
	for (int i = 0; i < n; i++) {
		struct pinfo *p = &procbuf[i];
		if (p->ppid != me || p->state == 'Z' || p->state == 'X' || !is_host_process(p->pid))
			continue;
		found = found ? -1 : p->pid;
	}
	pthread_mutex_unlock(&proc_mu);
	return found;
}

/* host_pid_any is host_pid, zombies included (a host that died at once). */
static pid_t host_pid_any(void)
{
	pthread_mutex_lock(&proc_mu);
	int n = scan_procs(procbuf, MAXPROCS);
	pid_t me = getpid(), found = 0;
	for (int i = 0; i < n && !found; i++) {
		if (procbuf[i].ppid == me && is_host_process(procbuf[i].pid))
			found = procbuf[i].pid;
	}
	pthread_mutex_unlock(&proc_mu);
	if (found)
		return found;
	/* a zombie's cmdline is empty: any zombie child will do here */
	pthread_mutex_lock(&proc_mu);
	n = scan_procs(procbuf, MAXPROCS);
	for (int i = 0; i < n && !found; i++) {
		if (procbuf[i].ppid == me && procbuf[i].state == 'Z')
			found = procbuf[i].pid;
	}
	pthread_mutex_unlock(&proc_mu);
	return found;
}

/* A host tree: the process the proxy started and everything under it
 * (an init, the host, the vendor's children), their process groups and
 * their pid namespace when it is not the driver's. */
struct tree {
	int n, npg;
	pid_t pid[64];
	unsigned long long start[64];
	pid_t pgid[16];
	unsigned long ns;
	int nsfd1; /* 1 + an fd held on that namespace (0: none): while it is
		      held, its inode number cannot name a later namespace */
};

/* tree_release closes the namespace fd a tree holds. */
static void tree_release(struct tree *t)
{
	if (t->nsfd1 > 0)
		close(t->nsfd1 - 1);
	t->nsfd1 = 0;
}

/* tree_hold_ns opens pid's pid namespace when it is t's. */
static void tree_hold_ns(struct tree *t, pid_t pid)
{
	if (t->nsfd1 > 0 || t->ns == 0)
		return;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && (unsigned long)st.st_ino == t->ns)
		t->nsfd1 = fd + 1;
	else if (fd >= 0)
		close(fd);
}

static int tree_has(const struct tree *t, pid_t pid, unsigned long long start)
{
	for (int i = 0; i < t->n; i++) {
		if (t->pid[i] == pid && t->start[i] == start)
			return 1;
	}
	return 0;
}

/* tree_add adds root and its live descendants to t. */
static void tree_add(struct tree *t, pid_t root)
{
	if (root <= 0)
		return;
	pthread_mutex_lock(&proc_mu);
	int n = scan_procs(procbuf, MAXPROCS);
	pid_t mypg = getpgrp();
	unsigned long myns = pid_ns(getpid());
	pid_t frontier[64];
	int nf = 0;
	frontier[nf++] = root;
	while (nf > 0) {
		pid_t cur = frontier[--nf];
		for (int i = 0; i < n; i++) {
			struct pinfo *p = &procbuf[i];
			if (p->pid != cur && p->ppid != cur)
				continue;
			if (p->ppid == cur && nf < 64)
				frontier[nf++] = p->pid;
			if (p->pid != cur || tree_has(t, p->pid, p->start) || t->n == 64)
				continue;
			t->pid[t->n] = p->pid;
			t->start[t->n++] = p->start;
			int seen = p->pgrp == mypg;
			for (int k = 0; k < t->npg && !seen; k++)
				seen = t->pgid[k] == p->pgrp;
			if (!seen && t->npg < 16)
				t->pgid[t->npg++] = p->pgrp;
			unsigned long ns = pid_ns(p->pid);
			if (ns && ns != myns && t->ns == 0)
				t->ns = ns;
			if (ns && ns == t->ns)
				tree_hold_ns(t, p->pid);
		}
	}
	pthread_mutex_unlock(&proc_mu);
}

/* tree_add_gone adds a host seen only in the log: its process group. */
static void tree_add_gone(struct tree *t, pid_t pid)
{
	if (pid <= 0 || t->npg == 16 || pid == getpgrp())
		return;
	for (int k = 0; k < t->npg; k++) {
		if (t->pgid[k] == pid)
			return;
	}
	t->pgid[t->npg++] = pid;
}

/* tree_left counts the processes (zombies included) left of t: its pids,
 * its process groups, its pid namespace. */
static int tree_left(const struct tree *t, char *desc, size_t desclen)
{
	int left = 0;
	if (desclen)
		desc[0] = '\0';
	pthread_mutex_lock(&proc_mu);
	int n = scan_procs(procbuf, MAXPROCS);
	for (int i = 0; i < n; i++) {
		struct pinfo *p = &procbuf[i];
		int in = tree_has(t, p->pid, p->start);
		for (int k = 0; k < t->npg && !in; k++)
			in = p->pgrp == t->pgid[k];
		if (!in && t->nsfd1 > 0)
			in = pid_ns(p->pid) == t->ns;
		if (!in)
			continue;
		size_t used = strlen(desc);
		if (used + 40 < desclen)
			snprintf(desc + used, desclen - used, "%spid %d pgid %d (%c)", left ? ", " : "", (int)p->pid,
				 (int)p->pgrp, p->state);
		left++;
	}
	pthread_mutex_unlock(&proc_mu);
	return left;
}

/* vendor_pid is the process of root's tree that runs the vendor module:
 * the deepest host process (root itself when it has no init). */
static pid_t vendor_pid(pid_t root)
{
	pid_t cur = root;
	for (int depth = 0; depth < 4 && cur > 0; depth++) {
		pid_t next = 0;
		pthread_mutex_lock(&proc_mu);
		int n = scan_procs(procbuf, MAXPROCS);
		for (int i = 0; i < n && !next; i++) {
			if (procbuf[i].ppid == cur && procbuf[i].state != 'Z' && is_host_process(procbuf[i].pid))
				next = procbuf[i].pid;
		}
		pthread_mutex_unlock(&proc_mu);
		if (!next)
			break;
		cur = next;
	}
	return cur;
}

/* new_in_tree finds a process under root that is not in before. */
static pid_t new_in_tree(const struct tree *before, pid_t root)
{
	struct tree now;
	memset(&now, 0, sizeof(now));
	tree_add(&now, root);
	tree_release(&now);
	for (int i = 0; i < now.n; i++) {
		if (!tree_has(before, now.pid[i], now.start[i]))
			return now.pid[i];
	}
	return 0;
}

struct pstate {
	int others;  /* live children that are neither a host nor allowed */
	int hosts;   /* live host children */
	pid_t host;  /* one of them */
	int zombies; /* zombie children (the allowed one excepted) */
	int left;    /* processes left of the dead host's tree */
	char desc[768];
};

static void add_desc(struct pstate *ps, const char *what, const struct pinfo *p)
{
	size_t used = strlen(ps->desc);
	if (used + 40 < sizeof(ps->desc))
		snprintf(ps->desc + used, sizeof(ps->desc) - used, "%s%s %d(%c)", used ? ", " : "", what, (int)p->pid,
			 p->state);
}

/* pstate_get looks at this process's children and at what is left of the
 * dead host's tree (NULL: none). allow (0: none) is a child of the
 * driver's own. */
static void pstate_get(const struct tree *dead, pid_t allow, struct pstate *ps)
{
	memset(ps, 0, sizeof(*ps));
	pthread_mutex_lock(&proc_mu);
	int n = scan_procs(procbuf, MAXPROCS);
	pid_t me = getpid();
	for (int i = 0; i < n; i++) {
		struct pinfo *p = &procbuf[i];
		if (p->ppid != me || p->pid == allow)
			continue;
		if (p->state == 'Z' || p->state == 'X') {
			ps->zombies++;
			add_desc(ps, "zombie", p);
		} else if (is_host_process(p->pid) && (dead == NULL || !tree_has(dead, p->pid, p->start))) {
			ps->hosts++;
			ps->host = p->pid;
		} else {
			ps->others++;
			add_desc(ps, "child", p);
		}
	}
	pthread_mutex_unlock(&proc_mu);
	if (dead) {
		size_t used = strlen(ps->desc);
		char d[400];
		ps->left = tree_left(dead, d, sizeof(d));
		if (ps->left)
			snprintf(ps->desc + used, sizeof(ps->desc) - used, "%sleft of the dead host: %s", used ? "; " : "", d);
	}
}

/* wait_procs waits up to ms for: no other children, no zombies, nothing
 * left of the dead host's tree and want_hosts live hosts (-1: any). */
static int wait_procs(const struct tree *dead, pid_t allow, int want_hosts, long ms, struct pstate *ps, double *took)
{
	double t0 = now_ms();
	for (;;) {
		pstate_get(dead, allow, ps);
		int good = ps->others == 0 && ps->zombies == 0 && ps->left == 0 &&
			   (want_hosts < 0 || ps->hosts == want_hosts);
		*took = now_ms() - t0;
		if (good)
			return 1;
		if (*took > (double)ms)
			return 0;
		sleep_ms(20);
	}
}

static int count_tasks(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n;
}

static int proc_exists(pid_t pid)
{
	struct pinfo pi;
	return read_stat(pid, &pi) == 0;
}

/* proc_ended: gone, or a zombie. */
static int proc_ended(pid_t pid)
{
	struct pinfo pi;
	return read_stat(pid, &pi) != 0 || pi.state == 'Z' || pi.state == 'X';
}

/* ================================================================== */
/* Canary file descriptors                                             */

enum { CAN_FILE, CAN_APPEND, CAN_PIPE_R, CAN_PIPE_W, CAN_SOCK };

struct canary {
	int fd, kind;
	const char *what;
	dev_t dev;
	ino_t ino;
	off_t off, size;
	int fdflags, flflags;
};

static struct canary canaries[8];
static int ncanaries;
static unsigned char file_content[4096];
static const char pipe_content[] = "canary bytes waiting in a pipe";
static const char sock_content[] = "canary bytes waiting in a socket";
static int pipe_fds[2], sock_fds[2];

static void add_canary(int fd, int kind, const char *what)
{
	struct canary *c = &canaries[ncanaries++];
	struct stat st;
	fstat(fd, &st);
	c->fd = fd;
	c->kind = kind;
	c->what = what;
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	c->size = st.st_size;
	c->off = (kind == CAN_FILE || kind == CAN_APPEND) ? lseek(fd, 0, SEEK_CUR) : 0;
	c->fdflags = fcntl(fd, F_GETFD);
	c->flflags = fcntl(fd, F_GETFL);
}

/* make_canaries opens, before the library is loaded, files, a pipe and a
 * socket pair without O_CLOEXEC, with known contents and offsets. */
static int make_canaries(void)
{
	char path[PATH_MAX];
	for (size_t i = 0; i < sizeof(file_content); i++)
		file_content[i] = (unsigned char)(i * 7 + 3);
	snprintf(path, sizeof(path), "%s/faults-canary-XXXXXX", env_or("TMPDIR", "/tmp"));
	int fd = mkostemp(path, 0);
	if (fd < 0)
		return -1;
	unlink(path);
	if (write(fd, file_content, sizeof(file_content)) != (ssize_t)sizeof(file_content))
		return -1;
	lseek(fd, 1234, SEEK_SET);
	add_canary(fd, CAN_FILE, "read-write file at offset 1234");

	snprintf(path, sizeof(path), "%s/faults-canary-XXXXXX", env_or("TMPDIR", "/tmp"));
	int afd = mkostemp(path, O_APPEND);
	if (afd < 0)
		return -1;
	unlink(path);
	if (write(afd, file_content, 1000) != 1000)
		return -1;
	add_canary(afd, CAN_APPEND, "append-only file of 1000 bytes");

	if (pipe(pipe_fds) != 0 || write(pipe_fds[1], pipe_content, sizeof(pipe_content)) != sizeof(pipe_content))
		return -1;
	add_canary(pipe_fds[0], CAN_PIPE_R, "pipe read end holding 31 bytes");
	add_canary(pipe_fds[1], CAN_PIPE_W, "pipe write end");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sock_fds) != 0 ||
	    write(sock_fds[0], sock_content, sizeof(sock_content)) != sizeof(sock_content))
		return -1;
	add_canary(sock_fds[1], CAN_SOCK, "socket holding 33 bytes");
	add_canary(sock_fds[0], CAN_SOCK, "socket peer");
	/* a high fd number too (a dup of the file: same offset) */
	int high = fcntl(afd, F_DUPFD, 1000);
	if (high >= 0)
		add_canary(high, CAN_APPEND, "append-only file, dup at fd >= 1000");
	return 0;
}

/* canaries_intact: same fds open, same inode, flags, offset, contents. */
static int canaries_intact(char *why, size_t whylen)
{
	why[0] = '\0';
	for (int i = 0; i < ncanaries; i++) {
		struct canary *c = &canaries[i];
		struct stat st;
		if (fstat(c->fd, &st) != 0) {
			snprintf(why, whylen, "fd %d (%s) is closed", c->fd, c->what);
			return 0;
		}
		if (st.st_dev != c->dev || st.st_ino != c->ino) {
			snprintf(why, whylen, "fd %d (%s) is another file now", c->fd, c->what);
			return 0;
		}
		if (fcntl(c->fd, F_GETFD) != c->fdflags || fcntl(c->fd, F_GETFL) != c->flflags) {
			snprintf(why, whylen, "fd %d (%s) flags changed", c->fd, c->what);
			return 0;
		}
		if (c->kind == CAN_FILE || c->kind == CAN_APPEND) {
			off_t off = lseek(c->fd, 0, SEEK_CUR);
			if (off != c->off || st.st_size != c->size) {
				snprintf(why, whylen, "fd %d (%s): offset %ld size %ld, want %ld and %ld", c->fd, c->what,
					 (long)off, (long)st.st_size, (long)c->off, (long)c->size);
				return 0;
			}
			unsigned char buf[sizeof(file_content)];
			ssize_t n = pread(c->fd, buf, (size_t)c->size, 0);
			if (n != c->size || memcmp(buf, file_content, (size_t)n) != 0) {
				snprintf(why, whylen, "fd %d (%s): contents changed", c->fd, c->what);
				return 0;
			}
		}
	}
	/* the pipe: everything still there (read it and put it back) */
	int avail = -1;
	ioctl(pipe_fds[0], FIONREAD, &avail);
	if (avail != (int)sizeof(pipe_content)) {
		snprintf(why, whylen, "the pipe holds %d bytes, want %d", avail, (int)sizeof(pipe_content));
		return 0;
	}
	char buf[64];
	if (read(pipe_fds[0], buf, sizeof(pipe_content)) != (ssize_t)sizeof(pipe_content) ||
	    memcmp(buf, pipe_content, sizeof(pipe_content)) != 0) {
		snprintf(why, whylen, "the pipe's contents changed");
		return 0;
	}
	if (write(pipe_fds[1], pipe_content, sizeof(pipe_content)) != (ssize_t)sizeof(pipe_content)) {
		snprintf(why, whylen, "cannot refill the pipe");
		return 0;
	}
	ssize_t n = recv(sock_fds[1], buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	if (n != (ssize_t)sizeof(sock_content) || memcmp(buf, sock_content, sizeof(sock_content)) != 0) {
		snprintf(why, whylen, "the socket holds %zd bytes or other contents", n);
		return 0;
	}
	return 1;
}

/* held_canaries counts the canaries pid has open. */
static int held_canaries(pid_t pid, char *desc, size_t desclen)
{
	char dir[64];
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	desc[0] = '\0';
	if (d == NULL)
		return -1;
	int held = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char path[384];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) != 0)
			continue;
		for (int i = 0; i < ncanaries; i++) {
			if (st.st_dev == canaries[i].dev && st.st_ino == canaries[i].ino) {
				size_t used = strlen(desc);
				snprintf(desc + used, desclen - used, "%sfd %s = %s", held ? ", " : "", de->d_name,
					 canaries[i].what);
				held++;
				break;
			}
		}
	}
	closedir(d);
	return held;
}

/* ================================================================== */
/* Signal dispositions                                                 */

struct sigsnap {
	int valid[65];
	uintptr_t handler[65];
	int flags[65];
	sigset_t mask; /* the calling thread's blocked signals */
};

static void sig_snap(struct sigsnap *s)
{
	memset(s, 0, sizeof(*s));
	for (int sig = 1; sig <= 64; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		struct sigaction sa;
		if (sigaction(sig, NULL, &sa) != 0)
			continue; /* glibc keeps 32 and 33 for itself */
		s->valid[sig] = 1;
		s->handler[sig] = (uintptr_t)sa.sa_handler;
		s->flags[sig] = sa.sa_flags;
	}
	pthread_sigmask(SIG_BLOCK, NULL, &s->mask);
}

/* sig_diff describes the differences (dispositions, and the calling
 * thread's mask); returns their number. */
static int sig_diff(const struct sigsnap *a, const struct sigsnap *b, char *desc, size_t desclen)
{
	int n = 0;
	desc[0] = '\0';
	for (int sig = 1; sig <= 64; sig++) {
		if (a->valid[sig] == b->valid[sig] && a->handler[sig] == b->handler[sig] && a->flags[sig] == b->flags[sig])
			continue;
		size_t used = strlen(desc);
		if (used + 80 < desclen)
			snprintf(desc + used, desclen - used, "%s%d (%s): handler %#lx flags %#x -> %#lx %#x", n ? "; " : "",
				 sig, sigabbrev_np(sig) ? sigabbrev_np(sig) : "RT", (unsigned long)a->handler[sig],
				 a->flags[sig], (unsigned long)b->handler[sig], b->flags[sig]);
		n++;
	}
	for (int sig = 1; sig <= 64; sig++) {
		if (sigismember(&a->mask, sig) == sigismember(&b->mask, sig))
			continue;
		size_t used = strlen(desc);
		if (used + 60 < desclen)
			snprintf(desc + used, desclen - used, "%s%d (%s) %s in the thread's mask", n ? "; " : "", sig,
				 sigabbrev_np(sig) ? sigabbrev_np(sig) : "RT",
				 sigismember(&b->mask, sig) ? "now blocked" : "no longer blocked");
		n++;
	}
	return n;
}

/* ================================================================== */
/* Guarded arenas for the buffers handed to the library                */

#define ARENA_SIZE (64 * 1024)
#define GUARD 64

struct arena {
	unsigned char *base;
	size_t used;
	struct {
		size_t off, len;
	} b[32];
	int n;
};

static unsigned char pattern(size_t i)
{
	return (unsigned char)(0xA5u ^ (i * 0x9Du) ^ (i >> 7));
}

static void arena_init(struct arena *a)
{
	a->base = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a->base == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	for (size_t i = 0; i < ARENA_SIZE; i++)
		a->base[i] = pattern(i);
	a->used = GUARD;
	a->n = 0;
}

static void arena_reset(struct arena *a)
{
	for (size_t i = 0; i < a->used + GUARD && i < ARENA_SIZE; i++)
		a->base[i] = pattern(i);
	a->used = GUARD;
	a->n = 0;
}

static void arena_free(struct arena *a)
{
	munmap(a->base, ARENA_SIZE);
}

/* arena_alloc returns len bytes filled with fill, with at least GUARD
 * pattern bytes on each side. */
static void *arena_alloc(struct arena *a, size_t len, int fill)
{
	size_t off = (a->used + 15) & ~(size_t)15;
	if (off + len + GUARD > ARENA_SIZE || a->n == 32) {
		fprintf(stderr, "faults: arena full\n");
		exit(2);
	}
	a->b[a->n].off = off;
	a->b[a->n].len = len;
	a->n++;
	memset(a->base + off, fill, len);
	a->used = off + len + GUARD;
	return a->base + off;
}

/* arena_check counts the bytes outside the buffers that changed. */
static int arena_check(const struct arena *a, char *desc, size_t desclen)
{
	int bad = 0;
	desc[0] = '\0';
	for (size_t i = 0; i < ARENA_SIZE; i++) {
		int inside = 0;
		for (int k = 0; k < a->n && !inside; k++)
			inside = i >= a->b[k].off && i < a->b[k].off + a->b[k].len;
		if (inside || a->base[i] == pattern(i))
			continue;
		if (!bad) {
			int near = -1;
			for (int k = 0; k < a->n; k++) {
				if (a->b[k].off <= i)
					near = k;
			}
			snprintf(desc, desclen, "first changed byte at arena offset %zu (%s buffer #%d)", i,
				 near >= 0 ? "after" : "before", near >= 0 ? near : 0);
		}
		bad++;
	}
	return bad;
}

/* ================================================================== */
/* PKCS#11                                                             */

static CK_FUNCTION_LIST_PTR F;
static const char *lib_path, *pin;
static char fault_file[PATH_MAX];
static const char *log_path;
static char key_label[64];
static CK_SLOT_ID slot;

/* when this thread's last library call in the helpers below started */
static __thread double call_start;
#define CALL(x) (call_start = now_ms(), (x))

static const CK_BYTE p256_oid[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
/* SHA-256("p11isolate faults") */
static CK_BYTE digest[32];
static CK_BBOOL ck_true = CK_TRUE;

static CK_FUNCTION_LIST_PTR load_library(const char *path)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		check(0, "dlopen %s: %s", path, dlerror());
		return NULL;
	}
	CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
	CK_FUNCTION_LIST_PTR f = NULL;
	if (get == NULL || get(&f) != CKR_OK || f == NULL) {
		check(0, "C_GetFunctionList of %s", path);
		return NULL;
	}
	return f;
}

static CK_RV initialize(void)
{
	CK_C_INITIALIZE_ARGS a;
	memset(&a, 0, sizeof(a));
	a.flags = CKF_OS_LOCKING_OK;
	return F->C_Initialize(&a);
}

/* arm writes spec to the fault file by rename(): a new inode re-arms it. */
static void arm(const char *spec)
{
	char tmp[PATH_MAX + 32];
	snprintf(tmp, sizeof(tmp), "%s.%ld.new", fault_file, (long)syscall(SYS_gettid));
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		check(0, "cannot write %s: %s", tmp, strerror(errno));
		return;
	}
	char line[128];
	int n = snprintf(line, sizeof(line), "%s\n", spec);
	if (write(fd, line, (size_t)n) != n)
		check(0, "cannot write %s", tmp);
	close(fd);
	if (rename(tmp, fault_file) != 0)
		check(0, "rename %s: %s", tmp, strerror(errno));
}

static CK_RV find_slot(void)
{
	CK_SLOT_ID list[32];
	CK_ULONG n = 32;
	CK_RV rv = F->C_GetSlotList(CK_TRUE, list, &n);
	if (rv != CKR_OK)
		return rv;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		if (F->C_GetTokenInfo(list[i], &ti) == CKR_OK && (ti.flags & CKF_USER_PIN_INITIALIZED)) {
			slot = list[i];
			return CKR_OK;
		}
	}
	return CKR_TOKEN_NOT_PRESENT;
}

/* find_one finds the one object of class cls labelled key_label; the
 * output buffers live in ar when it is given. */
static CK_RV find_one(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *out, struct arena *ar)
{
	CK_ATTRIBUTE t[] = {
		{ CKA_LABEL, key_label, strlen(key_label) },
		{ CKA_CLASS, &cls, sizeof(cls) },
	};
	CK_OBJECT_HANDLE local[2];
	CK_ULONG local_n;
	CK_OBJECT_HANDLE *h = ar ? arena_alloc(ar, 2 * sizeof(CK_OBJECT_HANDLE), 0x11) : local;
	CK_ULONG *n = ar ? arena_alloc(ar, sizeof(CK_ULONG), 0x22) : &local_n;
	CK_RV rv = CALL(F->C_FindObjectsInit(s, t, 2));
	if (rv != CKR_OK)
		return rv;
	rv = CALL(F->C_FindObjects(s, h, 2, n));
	CK_RV rv2 = CALL(F->C_FindObjectsFinal(s));
	if (rv == CKR_OK)
		rv = rv2;
	if (rv == CKR_OK && *n != 1)
		rv = CKR_GENERAL_ERROR;
	if (rv == CKR_OK)
		*out = h[0];
	return rv;
}

/* open_login_find opens a RW session, logs in and finds the key pair. */
static CK_RV open_login_find(CK_SESSION_HANDLE *s, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv, struct arena *ar,
			     const char **step)
{
	*step = "C_OpenSession";
	CK_SESSION_HANDLE *hs = ar ? arena_alloc(ar, sizeof(CK_SESSION_HANDLE), 0x33) : s;
	CK_RV rv = CALL(F->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, hs));
	if (rv != CKR_OK)
		return rv;
	*s = *hs;
	*step = "C_Login";
	rv = CALL(F->C_Login(*s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)));
	if (rv == CKR_USER_ALREADY_LOGGED_IN)
		rv = CKR_OK;
	if (rv != CKR_OK)
		return rv;
	*step = "find the public key";
	if ((rv = find_one(*s, CKO_PUBLIC_KEY, pub, ar)) != CKR_OK)
		return rv;
	*step = "find the private key";
	return find_one(*s, CKO_PRIVATE_KEY, priv, ar);
}

/* sign_verify signs the digest with ECDSA and verifies the signature. */
static CK_RV sign_verify(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv, struct arena *ar,
			 const char **step)
{
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	CK_BYTE local_sig[64];
	CK_ULONG local_len;
	CK_BYTE *sig = ar ? arena_alloc(ar, 64, 0x44) : local_sig;
	CK_ULONG *len = ar ? arena_alloc(ar, sizeof(CK_ULONG), 0x55) : &local_len;
	*len = 64;
	CK_RV rv;
	*step = "C_SignInit";
	if ((rv = CALL(F->C_SignInit(s, &m, priv))) != CKR_OK)
		return rv;
	*step = "C_Sign";
	if ((rv = CALL(F->C_Sign(s, digest, sizeof(digest), sig, len))) != CKR_OK)
		return rv;
	*step = "C_VerifyInit";
	if ((rv = CALL(F->C_VerifyInit(s, &m, pub))) != CKR_OK)
		return rv;
	*step = "C_Verify";
	return CALL(F->C_Verify(s, digest, sizeof(digest), sig, *len));
}

/* make_key finds or generates the token key pair the tests sign with. */
static int make_key(int quiet)
{
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE pub, priv;
	const char *step;
	CK_RV rv = open_login_find(&s, &pub, &priv, NULL, &step);
	if (rv == CKR_GENERAL_ERROR) {
		CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
		CK_ATTRIBUTE pubt[] = {
			{ CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid) },
			{ CKA_VERIFY, &ck_true, sizeof(ck_true) },
			{ CKA_TOKEN, &ck_true, sizeof(ck_true) },
			{ CKA_LABEL, key_label, strlen(key_label) },
		};
		CK_ATTRIBUTE privt[] = {
			{ CKA_SIGN, &ck_true, sizeof(ck_true) },
			{ CKA_PRIVATE, &ck_true, sizeof(ck_true) },
			{ CKA_SENSITIVE, &ck_true, sizeof(ck_true) },
			{ CKA_TOKEN, &ck_true, sizeof(ck_true) },
			{ CKA_LABEL, key_label, strlen(key_label) },
		};
		rv = F->C_GenerateKeyPair(s, &m, pubt, 4, privt, 5, &pub, &priv);
		step = "C_GenerateKeyPair";
	}
	if (quiet)
		return rv == CKR_OK;
	if (!check(rv == CKR_OK, "the EC P-256 token key pair %s is there (%s: %s)", key_label, step, rvs(rv)))
		return 0;
	rv = sign_verify(s, pub, priv, NULL, &step);
	check(rv == CKR_OK, "sign + verify before any fault (%s: %s)", step, rvs(rv));
	F->C_CloseSession(s);
	return rv == CKR_OK;
}

/* ================================================================== */
/* The proxy's log                                                     */

static off_t log_size(void)
{
	struct stat st;
	return stat(log_path, &st) == 0 ? st.st_size : 0;
}

/* log_since returns the log from offset off (malloc'd). */
static char *log_since(off_t off)
{
	int fd = open(log_path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		if (fd >= 0)
			close(fd);
		return strdup("");
	}
	size_t len = st.st_size > off ? (size_t)(st.st_size - off) : 0;
	char *buf = malloc(len + 1);
	ssize_t n = len ? pread(fd, buf, len, off) : 0;
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

struct event {
	pid_t pid;
	char func[40];
	char cause[80];
};

/* parse_events finds the proxy's "a host died / passed its deadline / sent
 * a bad reply" lines. */
static int parse_events(const char *log, struct event *ev, int max)
{
	int n = 0;
	for (const char *line = log; *line && n < max;) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		char l[1024];
		snprintf(l, sizeof(l), "%.*s", (int)(len < sizeof(l) - 1 ? len : sizeof(l) - 1), line);
		line += len + (eol ? 1 : 0);
		struct event *e = &ev[n];
		memset(e, 0, sizeof(*e));
		char *p;
		if ((p = strstr(l, " died during ")) != NULL && strstr(l, "the host (pid ") != NULL) {
			e->pid = atoi(strstr(l, "the host (pid ") + 14);
			sscanf(p + 13, "%39[A-Za-z_]", e->func);
			char *rest = p + 13 + strlen(e->func);
			char sig[32];
			int st;
			if (sscanf(rest, ": it was killed by signal %31[A-Z0-9]", sig) == 1)
				snprintf(e->cause, sizeof(e->cause), "signal %s", sig);
			else if (sscanf(rest, ": it exited with status %d", &st) == 1)
				snprintf(e->cause, sizeof(e->cause), "exit status %d", st);
			else if (strstr(rest, "application's own child handling"))
				snprintf(e->cause, sizeof(e->cause), "reaped by the application");
			else
				snprintf(e->cause, sizeof(e->cause), "died (no status)");
			n++;
		} else if ((p = strstr(l, " passed its deadline")) != NULL && (p = strstr(l, "(host pid ")) != NULL) {
			e->pid = atoi(p + 10);
			/* "p11isolate: ", or "p11isolate[PID]: " in a forked child */
			const char *fn = strstr(l, ": ");
			if (fn != NULL)
				sscanf(fn + 2, "%39[A-Za-z_]", e->func);
			snprintf(e->cause, sizeof(e->cause), "deadline");
			n++;
		} else if ((p = strstr(l, " sent a bad reply to ")) != NULL && strstr(l, "the host (pid ") != NULL) {
			e->pid = atoi(strstr(l, "the host (pid ") + 14);
			sscanf(p + 21, "%39[A-Za-z_]", e->func);
			snprintf(e->cause, sizeof(e->cause), "bad reply");
			n++;
		}
	}
	return n;
}

/* count_host_pids counts the distinct host pids the log mentions. */
static int count_host_pids(const char *log)
{
	static const char *const pats[] = { "the host (pid ", "(host pid ", "host[" };
	int pids[4096], n = 0;
	for (size_t k = 0; k < 3; k++) {
		for (const char *p = log; (p = strstr(p, pats[k])) != NULL;) {
			p += strlen(pats[k]);
			int pid = atoi(p);
			int seen = 0;
			for (int i = 0; i < n && !seen; i++)
				seen = pids[i] == pid;
			if (!seen && pid > 0 && n < 4096)
				pids[n++] = pid;
		}
	}
	return n;
}

/* ================================================================== */
/* Watchdog and killer                                                 */

enum { KILL_NONE, KILL_VENDOR, KILL_TOP };

struct watch {
	double start;
	int kill_what;	  /* KILL_*: SIGKILL a host process ... */
	long kill_after;  /* ... this many ms into the call */
	long give_up;	  /* ms */
	struct tree *col; /* collects the host tree during the call (or NULL) */
	pid_t root;	  /* ... of this host (0: the first host seen) */
	int vm;		  /* sample the vendor's VmData */
	long vm_peak_kb;
	atomic_int done;
	pid_t killed;
	char what[200];
	pthread_t th;
};

static void (*on_give_up)(void);

static void *watch_main(void *p)
{
	struct watch *w = p;
	while (!atomic_load(&w->done)) {
		double el = now_ms() - w->start;
		if (w->col && w->root <= 0)
			w->root = host_pid_any();
		if (w->col && w->root > 0)
			tree_add(w->col, w->root);
		if (w->vm && w->root > 0) {
			char path[64], line[128];
			snprintf(path, sizeof(path), "/proc/%d/status", (int)vendor_pid(w->root));
			FILE *fp = fopen(path, "re");
			long kb = 0;
			while (fp && fgets(line, sizeof(line), fp)) {
				if (sscanf(line, "VmData: %ld", &kb) == 1)
					break;
			}
			if (fp)
				fclose(fp);
			if (kb > w->vm_peak_kb)
				w->vm_peak_kb = kb;
		}
		if (w->kill_what != KILL_NONE && !w->killed && el >= (double)w->kill_after) {
			pid_t h = host_pid();
			if (h > 0 && w->kill_what == KILL_VENDOR)
				h = vendor_pid(h);
			if (h > 0 && kill(h, SIGKILL) == 0)
				w->killed = h;
		}
		if (el >= (double)w->give_up) {
			check(0, "%s: did not return within %ld ms (the driver gives up)", w->what, w->give_up);
			if (on_give_up)
				on_give_up();
			finish();
			_exit(3);
		}
		sleep_ms(w->col ? 2 : 5);
	}
	return NULL;
}

/* set while an oom cell runs: its watch samples the vendor's VmData */
static int sample_vm;

static void watch_start(struct watch *w, const char *what, int kill_what, long kill_after, long give_up,
			struct tree *col)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->what, sizeof(w->what), "%s", what);
	w->kill_what = kill_what;
	w->kill_after = kill_after;
	w->give_up = give_up;
	w->col = col;
	w->root = col && col->n ? col->pid[0] : 0;
	w->vm = col != NULL && sample_vm;
	w->start = now_ms();
	pthread_create(&w->th, NULL, watch_main, w);
}

static void watch_stop(struct watch *w)
{
	atomic_store(&w->done, 1);
	pthread_join(w->th, NULL);
}

/* ================================================================== */
/* Faults and functions                                                */

enum { PRE_NONE, PRE_FORK, PRE_THREAD };
enum { SPEED_CRASH, SPEED_KILL, SPEED_DEADLINE, SPEED_OOM };

struct kind {
	const char *name;  /* table name */
	const char *fault; /* faultmod kind armed for the function */
	int pre;	   /* a vendor fork or thread first */
	int killer;	   /* KILL_*: the driver SIGKILLs a host process 200 ms into the call */
	int speed;
	const char *cause; /* how the proxy must report the host's end */
};

static const struct kind kinds[] = {
	{ "segv", "segv", PRE_NONE, 0, SPEED_CRASH, "signal SIGSEGV" },
	{ "hlt", "hlt", PRE_NONE, 0, SPEED_CRASH, "signal SIGSEGV" },
	{ "bus", "bus", PRE_NONE, 0, SPEED_CRASH, "signal SIGBUS" },
	{ "ill", "ill", PRE_NONE, 0, SPEED_CRASH, "signal SIGILL" },
	{ "fpe", "fpe", PRE_NONE, 0, SPEED_CRASH, "signal SIGFPE" },
	{ "abort", "abort", PRE_NONE, 0, SPEED_CRASH, "signal SIGABRT" },
	{ "stack", "stack", PRE_NONE, 0, SPEED_CRASH, "signal SIGSEGV" },
	{ "kill", "kill", PRE_NONE, 0, SPEED_CRASH, "signal SIGKILL" },
	{ "exit0", "exit0", PRE_NONE, 0, SPEED_CRASH, "exit status 0" },
	{ "exit3", "exit3", PRE_NONE, 0, SPEED_CRASH, "exit status 3" },
	{ "kill-outside", "hang", PRE_NONE, KILL_VENDOR, SPEED_KILL, "signal SIGKILL" },
	{ "kill-init", "hang", PRE_NONE, KILL_TOP, SPEED_KILL, "signal SIGKILL" },
	{ "hang", "hang", PRE_NONE, 0, SPEED_DEADLINE, "deadline" },
	{ "spin", "spin", PRE_NONE, 0, SPEED_DEADLINE, "deadline" },
	{ "oom", "oom", PRE_NONE, 0, SPEED_OOM, NULL },
	{ "fork+segv", "segv", PRE_FORK, 0, SPEED_CRASH, "signal SIGSEGV" },
	{ "thread+segv", "segv", PRE_THREAD, 0, SPEED_CRASH, "signal SIGSEGV" },
};
#define NKINDS ((int)(sizeof(kinds) / sizeof(kinds[0])))

enum { FN_INIT, FN_OPEN, FN_LOGIN, FN_SIGN, FN_GETATTR, FN_FIND, FN_FINAL, NFUNCS };
static const char *const fnames[NFUNCS] = { "C_Initialize",	   "C_OpenSession", "C_Login",    "C_Sign",
					    "C_GetAttributeValue", "C_FindObjects", "C_Finalize" };

struct result {
	int ran;
	CK_RV rv;
	double err_ms, rec_ms;
	char ended[80];
	char note[64];
};

static int selected(const char *env, const char *name)
{
	const char *list = getenv(env);
	if (list == NULL || *list == '\0')
		return 1;
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == n && strncmp(p, name, n) == 0)
			return 1;
		p += len + (comma ? 1 : 0);
	}
	return 0;
}

/* ================================================================== */
/* The application state the cells work from                           */

struct app {
	int initialized;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE pub, priv;
	int ready; /* s is open and logged in, pub/priv found on the live host */
};

static struct app app;
static struct sigsnap sigs_loaded; /* after the library was loaded and initialized */

/* ensure_ready brings the application to an initialized library with a
 * logged-in session, retrying through a restart back-off. */
static int ensure_ready(const char *tag)
{
	double t0 = now_ms();
	CK_RV rv = CKR_OK;
	const char *step = "C_Initialize";
	while (now_ms() - t0 < 8000) {
		if (!app.initialized) {
			step = "C_Initialize";
			rv = initialize();
			if (rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED)
				app.initialized = 1;
		}
		if (app.initialized && !app.ready) {
			rv = open_login_find(&app.s, &app.pub, &app.priv, NULL, &step);
			app.ready = rv == CKR_OK;
		}
		if (app.ready)
			return 1;
		sleep_ms(100);
	}
	check(0, "%s: the application cannot get ready for the next case (%s: %s)", tag, step, rvs(rv));
	return 0;
}

/* ================================================================== */
/* One cell: a fault in a function                                     */

struct cell_opts {
	const char *tag; /* prefix of the check names */
	pid_t allow;	 /* a child of the driver's own */
	int app_reaps;	 /* the application reaps (or ignores) SIGCHLD: the host's
			    status may be the application's, not the proxy's */
};

/* make_call makes the call that the armed fault hits; every buffer it
 * passes is in ar. */
static CK_RV make_call(int fn, struct arena *ar, CK_SESSION_HANDLE s2)
{
	switch (fn) {
	case FN_INIT: {
		CK_C_INITIALIZE_ARGS *a = arena_alloc(ar, sizeof(*a), 0);
		a->flags = CKF_OS_LOCKING_OK;
		return F->C_Initialize(a);
	}
	case FN_OPEN: {
		CK_SESSION_HANDLE *h = arena_alloc(ar, sizeof(*h), 0x66);
		return F->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, h);
	}
	case FN_LOGIN: {
		size_t n = strlen(pin);
		CK_UTF8CHAR *p = arena_alloc(ar, n, 0);
		memcpy(p, pin, n);
		return F->C_Login(s2, CKU_USER, p, n);
	}
	case FN_SIGN: {
		CK_BYTE *data = arena_alloc(ar, sizeof(digest), 0);
		memcpy(data, digest, sizeof(digest));
		CK_BYTE *sig = arena_alloc(ar, 64, 0x77);
		CK_ULONG *len = arena_alloc(ar, sizeof(*len), 0);
		*len = 64;
		return F->C_Sign(app.s, data, sizeof(digest), sig, len);
	}
	case FN_GETATTR: {
		CK_ATTRIBUTE *t = arena_alloc(ar, 2 * sizeof(*t), 0);
		t[0].type = CKA_EC_POINT;
		t[0].ulValueLen = 67; /* DER OCTET STRING of an uncompressed P-256 point */
		t[0].pValue = arena_alloc(ar, 67, 0x88);
		t[1].type = CKA_LABEL;
		t[1].ulValueLen = strlen(key_label);
		t[1].pValue = arena_alloc(ar, strlen(key_label), 0x99);
		return F->C_GetAttributeValue(app.s, app.pub, t, 2);
	}
	case FN_FIND: {
		CK_OBJECT_HANDLE *h = arena_alloc(ar, 4 * sizeof(*h), 0xaa);
		CK_ULONG *n = arena_alloc(ar, sizeof(*n), 0xbb);
		return F->C_FindObjects(app.s, h, 4, n);
	}
	case FN_FINAL:
		return F->C_Finalize(NULL);
	}
	return CKR_GENERAL_ERROR;
}

/* expected time to error, by the kind's speed, against the deadline */
static int time_ok(const struct kind *k, double ms, char *want, size_t wantlen)
{
	switch (k->speed) {
	case SPEED_CRASH:
		snprintf(want, wantlen, "< 1000 ms (the death is seen at once, not at the %.0f ms deadline)", deadline_ms);
		return ms < 1000;
	case SPEED_KILL:
		snprintf(want, wantlen, "150..1200 ms (killed 200 ms in)");
		return ms >= 150 && ms < 1200;
	case SPEED_DEADLINE:
		snprintf(want, wantlen, "%.0f..%.0f ms (the deadline)", deadline_ms * 0.9, deadline_ms + 1500);
		return ms >= deadline_ms * 0.9 && ms <= deadline_ms + 1500;
	case SPEED_OOM:
		snprintf(want, wantlen, "<= %.0f ms (the memory limit or the deadline)", deadline_ms + 1500);
		return ms <= deadline_ms + 1500;
	}
	return 0;
}

/* check_log checks that the fault is reported once, naming the host (a
 * process of its tree; top is the proxy's child), the function and how the
 * host ended; fills res->ended. */
static pid_t check_log(const char *t, off_t logoff, const struct kind *k, const char *func, const struct tree *tr,
		       pid_t top, int app_reaps, struct result *res)
{
	char *log = log_since(logoff);
	struct event ev[16];
	int n = parse_events(log, ev, 16);
	free(log);
	snprintf(res->ended, sizeof(res->ended), "%s", n >= 1 ? ev[0].cause : "(not logged)");
	int pid_ok = n >= 1 && tr->n == 0; /* the host was gone before the driver saw it */
	for (int i = 0; n >= 1 && i < tr->n; i++)
		pid_ok |= tr->pid[i] == ev[0].pid;
	int cause_ok = n >= 1 && (k->cause == NULL || strcmp(ev[0].cause, k->cause) == 0 ||
				  (app_reaps && strcmp(ev[0].cause, "reaped by the application") == 0));
	check(n == 1 && strcmp(ev[0].func, func) == 0 && pid_ok && cause_ok,
	      "%s: the log reports the fault once, for host %d%s during %s, as \"%s\"%s: %d report(s)%s%d%s%s%s%s", t,
	      (int)top, top ? "" : " (the one the call started)", func, k->cause ? k->cause : "(any)", app_reaps ? " (or as reaped by the application)" : "", n, n ? ", the first: host " : "", n ? (int)ev[0].pid : 0,
	      n ? " during " : "", n ? ev[0].func : "", n ? ", " : "", n ? ev[0].cause : "");
	return n >= 1 ? ev[0].pid : 0;
}

/* has_init: the proxy's child is an init above the host (a pid namespace). */
static int has_init;

/* pre_fault makes the vendor fork a child or start a thread in a call that
 * succeeds; returns the child's pid (fork). */
static pid_t pre_fault(const char *t, int pre, pid_t hp)
{
	CK_ULONG n = 0;
	CK_RV rv;
	if (pre == PRE_FORK) {
		struct tree before;
		memset(&before, 0, sizeof(before));
		tree_add(&before, hp);
		arm("fork:C_GetSlotList");
		rv = F->C_GetSlotList(CK_TRUE, NULL, &n);
		arm("none");
		pid_t child = 0;
		double t0 = now_ms();
		while ((child = new_in_tree(&before, hp)) == 0 && now_ms() - t0 < 1000)
			sleep_ms(5);
		tree_release(&before);
		check(rv == CKR_OK && child > 0, "%s: the vendor forked a child in C_GetSlotList: %s, child pid %d", t,
		      rvs(rv), (int)child);
		return child;
	}
	if (pre == PRE_THREAD) {
		pid_t vp = vendor_pid(hp);
		int before = count_tasks(vp);
		arm("thread:C_GetSlotList");
		rv = F->C_GetSlotList(CK_TRUE, NULL, &n);
		arm("none");
		int after = count_tasks(vp);
		check(rv == CKR_OK && after > before,
		      "%s: the vendor started a thread in C_GetSlotList: %s, threads of the host %d: %d -> %d", t, rvs(rv),
		      (int)vp, before, after);
	}
	return 0;
}

static int run_cell(const struct kind *k, int fn, const struct cell_opts *o, struct result *res)
{
	char t[200];
	snprintf(t, sizeof(t), "%s%s%s in %s", o->tag, *o->tag ? ": " : "", k->name, fnames[fn]);
	memset(res, 0, sizeof(*res));
	res->ran = 1;
	note("--- %s", t);
	if (!ensure_ready(t)) {
		snprintf(res->ended, sizeof(res->ended), "(not run)");
		return 0;
	}
	pid_t hp = host_pid();
	check(hp > 0, "%s: the host before the fault: pid %d", t, (int)hp);
	CK_SESSION_HANDLE old_s = app.s;
	CK_OBJECT_HANDLE old_priv = app.priv;
	CK_SESSION_HANDLE s2 = CK_INVALID_HANDLE;
	CK_RV rv;

	/* the vendor forks a child or starts a thread first, then crashes */
	pid_t vchild = pre_fault(t, k->pre, hp);
	pid_t vproc = vendor_pid(hp);

	/* what the call needs */
	switch (fn) {
	case FN_INIT: {
		rv = F->C_Finalize(NULL);
		app.initialized = app.ready = 0;
		struct pstate ps;
		double took;
		int clean = wait_procs(NULL, o->allow, 0, 3000, &ps, &took);
		check(rv == CKR_OK && clean, "%s: C_Finalize first (%s), the host is gone: %s", t, rvs(rv),
		      ps.desc[0] ? ps.desc : "yes");
		hp = vproc = 0; /* the faulting call starts a new one */
		break;
	}
	case FN_LOGIN:
		rv = F->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s2);
		check(rv == CKR_OK, "%s: a second session to log in on: %s", t, rvs(rv));
		break;
	case FN_SIGN: {
		CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
		rv = F->C_SignInit(app.s, &m, app.priv);
		check(rv == CKR_OK, "%s: C_SignInit: %s", t, rvs(rv));
		break;
	}
	case FN_FIND: {
		CK_ATTRIBUTE a = { CKA_LABEL, key_label, strlen(key_label) };
		rv = F->C_FindObjectsInit(app.s, &a, 1);
		check(rv == CKR_OK, "%s: C_FindObjectsInit: %s", t, rvs(rv));
		break;
	}
	}

	/* the host's processes, before and during the call */
	struct tree dead;
	memset(&dead, 0, sizeof(dead));
	tree_add(&dead, hp);
	struct sigsnap before, after;
	sig_snap(&before);
	off_t logoff = log_size();
	struct arena ar;
	arena_init(&ar);
	char spec[64];
	snprintf(spec, sizeof(spec), "%s:%s", k->fault, fnames[fn]);
	arm(spec);

	struct watch w;
	sample_vm = k->speed == SPEED_OOM;
	watch_start(&w, t, k->killer, 200, (long)deadline_ms * 3 + 8000, &dead);
	double t0 = now_ms();
	rv = make_call(fn, &ar, s2);
	double dt = now_ms() - t0;
	watch_stop(&w);
	arm("none");
	res->rv = rv;
	res->err_ms = dt;
	if (fn == FN_INIT || fn == FN_FINAL)
		app.initialized = 0;
	app.ready = 0;
	pid_t top = hp > 0 ? hp : dead.n > 0 ? dead.pid[0] : 0;

	check(rv == CKR_DEVICE_ERROR, "%s: returns CKR_DEVICE_ERROR: got %s", t, rvs(rv));
	char want[160], desc[768];
	check(time_ok(k, dt, want, sizeof(want)), "%s: time to error %.0f ms, want %s", t, dt, want);
	if (k->killer)
		check(w.killed > 0, "%s: the driver killed the %s (pid %d) during the call", t,
		      k->killer == KILL_TOP ? "host's init" : "host", (int)w.killed);
	check(kill(getpid(), 0) == 0, "%s: the application is alive", t);
	int bad = arena_check(&ar, desc, sizeof(desc));
	check(bad == 0, "%s: guard bytes around the call's buffers intact: %d changed%s%s", t, bad, bad ? ": " : "",
	      desc);
	arena_free(&ar);
	sig_snap(&after);
	int nd = sig_diff(&before, &after, desc, sizeof(desc));
	check(nd == 0, "%s: signal dispositions and the thread's signal mask unchanged by the fault: %d differ%s%s", t, nd, nd ? ": " : "", desc);

	pid_t logged = check_log(t, logoff, k, fnames[fn], &dead, top, o->app_reaps, res);
	if (dead.n == 0) {
		/* the host died before the driver saw it: its group, by the log */
		note("%s: the host %d died before the driver saw its processes", t, (int)logged);
		tree_add_gone(&dead, logged);
		top = logged;
	}
	if (k->speed == SPEED_OOM)
		snprintf(res->note, sizeof(res->note), "(vendor's VmData peaked at %ld MiB)", w.vm_peak_kb / 1024);

	struct pstate ps;
	double took;
	int clean = wait_procs(&dead, o->allow, 0, 2000, &ps, &took);
	check(clean && dead.n + dead.npg > 0,
	      "%s: within 2 s nothing is left of the dead host (%d processes, %d groups%s), no other child, no zombie: "
	      "%s (%.0f ms)",
	      t, dead.n, dead.npg, dead.ns ? ", a pid namespace" : "", ps.desc[0] ? ps.desc : (ps.hosts ? "a host runs" : "clean"),
	      took);
	if (vchild > 0)
		check(proc_ended(vchild), "%s: the vendor's forked child %d is gone", t, (int)vchild);
	if (k->pre == PRE_THREAD)
		check(!proc_exists(vproc), "%s: the host process %d that ran the vendor's thread is gone", t, (int)vproc);
	check(canaries_intact(desc, sizeof(desc)), "%s: canary fds intact%s%s", t, desc[0] ? ": " : "", desc);

	if (fn == FN_FINAL || fn == FN_INIT) {
		CK_ULONG n = 0;
		rv = F->C_GetSlotList(CK_TRUE, NULL, &n);
		check(rv == CKR_CRYPTOKI_NOT_INITIALIZED, "%s: the library is %s afterwards (C_GetSlotList: %s)", t,
		      fn == FN_FINAL ? "finalized" : "not initialized", rvs(rv));
	}

	/* recovery: [C_Initialize], new session, login, sign, verify */
	arena_init(&ar);
	const char *step = "";
	t0 = now_ms();
	rv = CKR_OK;
	int tries = 0;
	if (!app.initialized) {
		/* after a failed C_Initialize the proxy may make the same module
		 * wait out its restart back-off (CKR_DEVICE_ERROR at once): an
		 * application retries */
		step = "C_Initialize";
		CK_C_INITIALIZE_ARGS *a = arena_alloc(&ar, sizeof(*a), 0);
		do {
			if (tries++)
				sleep_ms(20);
			memset(a, 0, sizeof(*a));
			a->flags = CKF_OS_LOCKING_OK;
			rv = F->C_Initialize(a);
		} while (rv == CKR_DEVICE_ERROR && now_ms() - t0 < 6000);
		app.initialized = rv == CKR_OK;
	}
	if (rv == CKR_OK)
		rv = open_login_find(&app.s, &app.pub, &app.priv, &ar, &step);
	if (rv == CKR_OK)
		rv = sign_verify(app.s, app.pub, app.priv, &ar, &step);
	res->rec_ms = now_ms() - t0;
	app.ready = rv == CKR_OK;
	check(rv == CKR_OK, "%s: recovery (%ssession, login, sign, verify) on a fresh host works: %s at %s, %.0f ms", t,
	      fn == FN_INIT || fn == FN_FINAL ? "C_Initialize, " : "", rvs(rv), rv == CKR_OK ? "the end" : step,
	      res->rec_ms);
	if (tries > 1) {
		note("%s: C_Initialize succeeded at attempt %d (the restart back-off)", t, tries);
		snprintf(res->note, sizeof(res->note), "(C_Initialize %d tries: back-off)", tries);
	}
	bad = arena_check(&ar, desc, sizeof(desc));
	check(bad == 0, "%s: guard bytes around the recovery's buffers intact: %d changed%s%s", t, bad, bad ? ": " : "",
	      desc);
	arena_free(&ar);
	pid_t np = host_pid();
	check(np > 0 && np != top, "%s: one new host serves the calls: pid %d (the dead one %d)", t, (int)np, (int)top);
	if (np > 0) {
		struct tree nt;
		memset(&nt, 0, sizeof(nt));
		tree_add(&nt, np);
		tree_release(&nt);
		int held = 0;
		for (int i = 0; i < nt.n; i++) {
			char d[256];
			int h = held_canaries(nt.pid[i], d, sizeof(d));
			if (h > 0 && !held)
				snprintf(desc, sizeof(desc), "pid %d: %s", (int)nt.pid[i], d);
			held += h > 0 ? h : 0;
		}
		check(held == 0, "%s: the new host's processes hold none of the application's fds: %d%s%s", t, held,
		      held ? ": " : "", held ? desc : "");
	}
	if (app.ready) {
		CK_SESSION_INFO si;
		CK_RV r1 = F->C_GetSessionInfo(old_s, &si);
		CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
		CK_RV r2 = F->C_SignInit(app.s, &m, old_priv);
		check(r1 == CKR_SESSION_HANDLE_INVALID && (r2 == CKR_KEY_HANDLE_INVALID || r2 == CKR_OBJECT_HANDLE_INVALID),
		      "%s: the dead host's handles are refused: session %#lx: %s, key %#lx: %s (the new session is %#lx)", t,
		      (unsigned long)old_s, rvs(r1), (unsigned long)old_priv, rvs(r2), (unsigned long)app.s);
		if (r2 == CKR_OK) { /* finish the operation it started */
			CK_BYTE sig[64];
			CK_ULONG len = sizeof(sig);
			F->C_Sign(app.s, digest, sizeof(digest), sig, &len);
		}
	}
	sig_snap(&after);
	nd = sig_diff(&before, &after, desc, sizeof(desc));
	check(nd == 0, "%s: signal dispositions and the thread's signal mask unchanged after the recovery: %d differ%s%s", t, nd, nd ? ": " : "",
	      desc);
	pstate_get(NULL, o->allow, &ps);
	check(ps.others == 0 && ps.zombies == 0 && ps.hosts == 1,
	      "%s: after the recovery the only child is the new host: %d host(s)%s%s", t, ps.hosts,
	      ps.desc[0] ? ", " : "", ps.desc);
	tree_release(&dead);
	return 1;
}

/* ================================================================== */
/* Tables                                                              */

static struct result matrix[NKINDS][NFUNCS];
static int table_printed;

static void print_matrix(void)
{
	if (table_printed++)
		return;
	raw("%s", "");
	raw("| fault          | function             | CKR                    | error ms | recovery ms | the host ended by");
	raw("|----------------|----------------------|------------------------|----------|-------------|------------------");
	for (int k = 0; k < NKINDS; k++) {
		for (int f = 0; f < NFUNCS; f++) {
			struct result *r = &matrix[k][f];
			if (!r->ran)
				continue;
			raw("| %-14s | %-20s | %-22s | %8.0f | %11.0f | %s%s%s", kinds[k].name, fnames[f], rvs(r->rv),
			    r->err_ms, r->rec_ms, r->ended, r->note[0] ? " " : "", r->note);
		}
	}
}

/* ================================================================== */
/* Setup shared by the modes                                           */

static int setup(int need_key)
{
	const char *ff = getenv("FAULTMOD_FILE");
	log_path = getenv("P11ISOLATE_LOG");
	if (ff == NULL || *ff == '\0' || log_path == NULL || *log_path == '\0' || getenv("P11ISOLATE_MODULE") == NULL) {
		fprintf(stderr, "faults: set P11ISOLATE_MODULE (faultmod), FAULTMOD_FILE and P11ISOLATE_LOG (see run.sh)\n");
		return 0;
	}
	snprintf(fault_file, sizeof(fault_file), "%s", ff);
	snprintf(key_label, sizeof(key_label), "p11isolate-faults");
	double d = parse_duration_ms(env_or("P11ISOLATE_TIMEOUT", "30s"));
	if (d > 0)
		deadline_ms = d;
	for (size_t i = 0; i < sizeof(digest); i++)
		digest[i] = (CK_BYTE)(0x30 + i * 5);
	arm("none");
	if (!need_key)
		return 1;

	struct sigsnap pre;
	sig_snap(&pre);
	F = load_library(lib_path);
	if (F == NULL)
		return 0;
	CK_RV rv = initialize();
	if (!check(rv == CKR_OK, "C_Initialize through the proxy and faultmod: %s", rvs(rv)))
		return 0;
	app.initialized = 1;
	rv = find_slot();
	if (!check(rv == CKR_OK, "a slot with an initialized token: %s", rvs(rv)))
		return 0;
	if (!make_key(0))
		return 0;
	sig_snap(&sigs_loaded);
	char desc[1024];
	int nd = sig_diff(&pre, &sigs_loaded, desc, sizeof(desc));
	note("loading and initializing the library changed %d signal disposition(s)%s%s", nd, nd ? ": " : "", desc);
	pid_t hp = host_pid();
	pid_t vp = vendor_pid(hp);
	has_init = hp > 0 && vp != hp;
	struct tree tr;
	memset(&tr, 0, sizeof(tr));
	tree_add(&tr, hp);
	tree_release(&tr);
	check(hp > 0, "the host runs: pid %d%s, the vendor module in pid %d; %d process(es) in %d group(s)%s", (int)hp,
	      has_init ? " (an init)" : "", (int)vp, tr.n, tr.npg, tr.ns ? " in their own pid namespace" : "");
	const char *lim = getenv("P11ISOLATE_MEMORY_LIMIT");
	if (vp > 0 && lim && *lim) {
		char path[64], line[256];
		snprintf(path, sizeof(path), "/proc/%d/limits", (int)vp);
		FILE *fp = fopen(path, "re");
		unsigned long long cur = 0;
		while (fp && fgets(line, sizeof(line), fp)) {
			if (strncmp(line, "Max data size", 13) == 0)
				sscanf(line + 13, " %llu", &cur);
		}
		if (fp)
			fclose(fp);
		char *end;
		unsigned long long want = strtoull(lim, &end, 10);
		if (*end == 'K' || *end == 'k')
			want <<= 10;
		else if (*end == 'M' || *end == 'm')
			want <<= 20;
		else if (*end == 'G' || *end == 'g')
			want <<= 30;
		check(cur == want, "the vendor's process has RLIMIT_DATA = P11ISOLATE_MEMORY_LIMIT=%s: %llu bytes", lim, cur);
	}
	int held = 0;
	for (int i = 0; i < tr.n; i++) {
		char d[256];
		int h = held_canaries(tr.pid[i], d, sizeof(d));
		if (h > 0 && !held)
			snprintf(desc, sizeof(desc), "pid %d: %s", (int)tr.pid[i], d);
		held += h > 0 ? h : 0;
	}
	check(held == 0, "the host's processes hold none of the application's canary fds: %d%s%s", held,
	      held ? ": " : "", held ? desc : "");
	return 1;
}

/* ================================================================== */
/* matrix                                                              */

/* unstick SIGKILLs u->victim after 5 s, unless the call returned. */
struct unstick {
	pid_t victim;
	atomic_int done;
};

static void *unstick_main(void *p)
{
	struct unstick *u = p;
	double s = now_ms();
	while (!atomic_load(&u->done) && now_ms() - s < 5000)
		sleep_ms(10);
	if (!atomic_load(&u->done) && u->victim > 0)
		kill(u->victim, SIGKILL);
	return NULL;
}

static int mode_matrix(void)
{
	if (!setup(1))
		return finish();
	on_give_up = print_matrix;
	struct cell_opts o = { "", 0, 0 };
	for (int k = 0; k < NKINDS; k++) {
		if (!selected("FAULTS_KINDS", kinds[k].name))
			continue;
		for (int f = 0; f < NFUNCS; f++) {
			if (!selected("FAULTS_FUNCS", fnames[f]))
				continue;
			if (kinds[k].pre != PRE_NONE && f == FN_INIT)
				continue; /* the fork or thread would be in the host C_Initialize starts */
			if (kinds[k].killer == KILL_TOP && !has_init)
				continue; /* the same as kill-outside */
			run_cell(&kinds[k], f, &o, &matrix[k][f]);
		}
	}

	/* The deadline disabled (timeout=0): a vendor child holding the host's
	 * sockets open must not turn a crash into a hang. */
	if (selected("FAULTS_KINDS", "fork+segv") && selected("FAULTS_FUNCS", "C_Sign")) {
		const char *t = "timeout=0: fork+segv in C_Sign";
		note("--- %s", t);
		F->C_Finalize(NULL);
		app.initialized = app.ready = 0;
		char *saved = strdup(env_or("P11ISOLATE_TIMEOUT", "30s"));
		setenv("P11ISOLATE_TIMEOUT", "0", 1);
		if (ensure_ready(t)) {
			pid_t vchild = pre_fault(t, PRE_FORK, host_pid());
			CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
			F->C_SignInit(app.s, &m, app.priv);
			arm("segv:C_Sign");
			struct watch w;
			watch_start(&w, t, KILL_NONE, 0, 60000, NULL);
			/* unstick it after 5 s by killing the vendor's child */
			double t0 = now_ms();
			CK_RV rv = CKR_GENERAL_ERROR;
			pthread_t th;
			struct unstick un = { vchild, 0 };
			pthread_create(&th, NULL, unstick_main, &un);
			CK_BYTE sig[64];
			CK_ULONG len = sizeof(sig);
			rv = F->C_Sign(app.s, digest, sizeof(digest), sig, &len);
			double dt = now_ms() - t0;
			atomic_store(&un.done, 1);
			pthread_join(th, NULL);
			watch_stop(&w);
			arm("none");
			app.ready = 0;
			check(rv == CKR_DEVICE_ERROR && dt < 1000,
			      "%s: C_Sign returns CKR_DEVICE_ERROR at once although the vendor's child holds the host's "
			      "sockets: %s after %.0f ms%s",
			      t, rvs(rv), dt, dt >= 5000 ? " (it returned only when the driver killed the vendor's child)" : "");
		}
		F->C_Finalize(NULL);
		app.initialized = app.ready = 0;
		setenv("P11ISOLATE_TIMEOUT", saved, 1);
		free(saved);
	}
	if (ensure_ready("the end")) {
		F->C_Finalize(NULL);
		struct pstate ps;
		double took;
		int clean = wait_procs(NULL, 0, 0, 3000, &ps, &took);
		check(clean, "after the last C_Finalize no child process is left: %s", ps.desc[0] ? ps.desc : "none");
	}
	print_matrix();
	return finish();
}

/* ================================================================== */
/* threads                                                             */

#define NWORKERS 4

struct worker {
	int id;
	pthread_t th;
	atomic_int ok_total, ok_after, devs, deads, others, reopens, guard_bad, finished, exit_race;
	CK_RV other_rv;
	char other_step[40];
	double first_ok_after; /* ms, after the fault was disarmed */
};

static struct {
	atomic_int stop;
	atomic_int faulted;  /* a DEVICE_ERROR was seen */
	atomic_int disarmed; /* and the fault file says none again */
	double first_err_end;
	double longest_dev; /* the longest call that returned CKR_DEVICE_ERROR: the faulting one */
	pthread_mutex_t mu;
} tstate = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* exit0 runs the vendor's exit() while the other threads are in it:
 * SoftHSM then answers them CKR_GENERAL_ERROR (and, after a failed
 * C_SignInit, CKR_OPERATION_NOT_INITIALIZED) before the process ends; the
 * proxy rightly passes those replies on. Seen with SoftHSM alone too. */
static int exit_race_ok;

static int exit_race_rv(CK_RV rv)
{
	return rv == CKR_GENERAL_ERROR || rv == CKR_OPERATION_NOT_INITIALIZED || rv == CKR_FUNCTION_FAILED;
}

static int dead_handle(CK_RV rv)
{
	return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID ||
	       rv == CKR_SESSION_CLOSED;
}

/* classify returns 1 when rv is OK; else counts it (the first
 * CKR_DEVICE_ERROR disarms the fault) and returns 0 once the fault is
 * disarmed, so no thread calls a new host that could still fire it. */
static int classify(struct worker *w, CK_RV rv, const char *step)
{
	if (rv == CKR_OK)
		return 1;
	if (rv == CKR_DEVICE_ERROR) {
		atomic_fetch_add(&w->devs, 1);
		pthread_mutex_lock(&tstate.mu);
		if (now_ms() - call_start > tstate.longest_dev)
			tstate.longest_dev = now_ms() - call_start;
		if (!atomic_load(&tstate.faulted)) {
			tstate.first_err_end = now_ms();
			atomic_store(&tstate.faulted, 1);
			arm("none");
			atomic_store(&tstate.disarmed, 1);
		}
		pthread_mutex_unlock(&tstate.mu);
	} else if (dead_handle(rv)) {
		atomic_fetch_add(&w->deads, 1);
	} else if (exit_race_ok && exit_race_rv(rv)) {
		atomic_fetch_add(&w->exit_race, 1);
	} else {
		if (atomic_fetch_add(&w->others, 1) == 0) {
			w->other_rv = rv;
			snprintf(w->other_step, sizeof(w->other_step), "%s", step);
		}
	}
	/* no call on a new host before the fault is disarmed */
	double t0 = now_ms();
	while (!atomic_load(&tstate.disarmed) && now_ms() - t0 < 20000)
		sleep_ms(2);
	return 0;
}

static void *worker_main(void *p)
{
	struct worker *w = p;
	struct arena ar;
	arena_init(&ar);
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE pub = 0, priv = 0;
	int need = 1;
	while (!atomic_load(&w->finished)) {
		char desc[200];
		const char *step = "";
		arena_reset(&ar);
		if (need) {
			if (s != CK_INVALID_HANDLE)
				F->C_CloseSession(s); /* a dead handle: refused, ignored */
			CK_RV rv = open_login_find(&s, &pub, &priv, &ar, &step);
			if (!classify(w, rv, step)) {
				s = CK_INVALID_HANDLE;
				sleep_ms(10);
				continue;
			}
			need = 0;
			atomic_fetch_add(&w->reopens, 1);
		} else {
			CK_RV rv = sign_verify(s, pub, priv, &ar, &step);
			if (!classify(w, rv, step)) {
				need = 1;
				continue;
			}
			atomic_fetch_add(&w->ok_total, 1);
			if (atomic_load(&tstate.disarmed)) {
				if (atomic_fetch_add(&w->ok_after, 1) == 0)
					w->first_ok_after = now_ms();
			}
			if (atomic_load(&tstate.stop) && atomic_load(&w->ok_after) >= 3)
				atomic_store(&w->finished, 1);
		}
		if (arena_check(&ar, desc, sizeof(desc)) != 0)
			atomic_fetch_add(&w->guard_bad, 1);
	}
	if (s != CK_INVALID_HANDLE)
		F->C_CloseSession(s);
	arena_free(&ar);
	return NULL;
}

struct tresult {
	int ran;
	CK_RV first;
	double err_ms, rec_ms;
	int devs, deads, oks;
	char ended[80];
};

static struct tresult tmatrix[NKINDS];

static void print_threads(void)
{
	if (table_printed++)
		return;
	raw("%s", "");
	raw("| fault (4 threads in sign/verify loops) | first error CKR        | error ms | recovery ms | DEVICE_ERROR | dead handle | OK    | the host ended by");
	raw("|-----------------------------------------|------------------------|----------|-------------|--------------|-------------|-------|------------------");
	for (int k = 0; k < NKINDS; k++) {
		struct tresult *r = &tmatrix[k];
		if (!r->ran)
			continue;
		raw("| %-39s | %-22s | %8.0f | %11.0f | %12d | %11d | %5d | %s", kinds[k].name, rvs(r->first), r->err_ms,
		    r->rec_ms, r->devs, r->deads, r->oks, r->ended);
	}
}

static void run_threads_case(int ki)
{
	const struct kind *k = &kinds[ki];
	struct tresult *res = &tmatrix[ki];
	char t[120];
	snprintf(t, sizeof(t), "4 threads: %s in C_Sign", k->name);
	note("--- %s", t);
	res->ran = 1;
	if (!ensure_ready(t))
		return;
	pid_t hp = host_pid();
	struct worker ws[NWORKERS];
	memset(ws, 0, sizeof(ws));
	atomic_store(&tstate.stop, 0);
	atomic_store(&tstate.faulted, 0);
	atomic_store(&tstate.disarmed, 0);
	tstate.longest_dev = 0;
	exit_race_ok = strcmp(k->fault, "exit0") == 0;
	for (int i = 0; i < NWORKERS; i++) {
		ws[i].id = i;
		pthread_create(&ws[i].th, NULL, worker_main, &ws[i]);
	}
	double t0 = now_ms();
	for (int i = 0; i < NWORKERS; i++) {
		while (atomic_load(&ws[i].ok_total) < 2 && now_ms() - t0 < 10000)
			sleep_ms(5);
	}
	int all_ran = 1;
	for (int i = 0; i < NWORKERS; i++)
		all_ran &= atomic_load(&ws[i].ok_total) >= 2;
	check(all_ran, "%s: all 4 threads sign and verify before the fault", t);

	pid_t vchild = pre_fault(t, k->pre, hp);
	pid_t vproc = vendor_pid(hp);
	struct tree dead;
	memset(&dead, 0, sizeof(dead));
	tree_add(&dead, hp);

	struct sigsnap before, after;
	sig_snap(&before);
	off_t logoff = log_size();
	char spec[64];
	snprintf(spec, sizeof(spec), "%s:C_Sign", k->fault);
	arm(spec);
	struct watch w;
	watch_start(&w, t, k->killer, 200, (long)deadline_ms * 3 + 20000, &dead);
	t0 = now_ms();
	while (!atomic_load(&tstate.faulted) && now_ms() - t0 < deadline_ms + 8000)
		sleep_ms(5);
	int faulted = atomic_load(&tstate.faulted);
	if (!faulted) {
		arm("none");
		atomic_store(&tstate.disarmed, 1);
	}
	check(faulted, "%s: a thread got CKR_DEVICE_ERROR", t);
	/* every thread signs 3 more times after the fault, then stops */
	atomic_store(&tstate.stop, 1);
	t0 = now_ms();
	for (int i = 0; i < NWORKERS; i++) {
		while (!atomic_load(&ws[i].finished) && now_ms() - t0 < 15000)
			sleep_ms(5);
	}
	int finished = 0;
	for (int i = 0; i < NWORKERS; i++)
		finished += atomic_load(&ws[i].finished);
	watch_stop(&w);
	if (!check(finished == NWORKERS, "%s: all 4 threads recovered and finished: %d of 4 within 15 s", t, finished)) {
		/* a thread is stuck in the library: nothing more can be trusted */
		print_threads();
		finish();
		_exit(1);
	}
	for (int i = 0; i < NWORKERS; i++)
		pthread_join(ws[i].th, NULL);

	int others = 0, guard = 0, devs = 0, deads = 0, oks = 0, unrecovered = 0, races = 0;
	double last_ok = 0;
	char odesc[200] = "";
	for (int i = 0; i < NWORKERS; i++) {
		struct worker *x = &ws[i];
		if (x->others && !others)
			snprintf(odesc, sizeof(odesc), ": thread %d got %s from %s", i, rvs(x->other_rv), x->other_step);
		others += x->others;
		races += x->exit_race;
		guard += x->guard_bad;
		devs += x->devs;
		deads += x->deads;
		oks += x->ok_total;
		unrecovered += x->reopens < 2; /* the first open, then at least one reopen */
		if (x->first_ok_after > last_ok)
			last_ok = x->first_ok_after;
	}
	res->first = faulted ? CKR_DEVICE_ERROR : CKR_OK;
	res->err_ms = faulted ? tstate.longest_dev : 0;
	res->rec_ms = faulted && last_ok > 0 ? last_ok - tstate.first_err_end : 0;
	res->devs = devs;
	res->deads = deads;
	res->oks = oks;
	if (races)
		note("%s: %d vendor error(s) from the vendor's own exit() racing the other threads (as with SoftHSM alone)", t,
		     races);
	check(others == 0, "%s: the threads saw only CKR_OK, CKR_DEVICE_ERROR and dead-handle errors%s: %d others%s", t,
	      exit_race_ok ? " (and the dying vendor's CKR_GENERAL_ERROR)" : "", others, odesc);
	check(unrecovered == 0, "%s: every thread lost its session and reopened it: %d did not", t, unrecovered);
	char want[160], desc[768];
	check(faulted && time_ok(k, res->err_ms, want, sizeof(want)), "%s: time to error %.0f ms, want %s", t,
	      res->err_ms, want);
	check(guard == 0, "%s: guard bytes around the threads' buffers intact: %d calls with changed guards", t, guard);
	check(kill(getpid(), 0) == 0, "%s: the application is alive", t);
	sig_snap(&after);
	int nd = sig_diff(&before, &after, desc, sizeof(desc));
	check(nd == 0, "%s: signal dispositions and the main thread's signal mask unchanged: %d differ%s%s", t, nd, nd ? ": " : "", desc);

	char *log = log_since(logoff);
	struct event ev[16];
	int n = parse_events(log, ev, 16);
	free(log);
	snprintf(res->ended, sizeof(res->ended), "%s", n ? ev[0].cause : "(not logged)");
	int pid_ok = 0;
	for (int i = 0; n >= 1 && i < dead.n; i++)
		pid_ok |= dead.pid[i] == ev[0].pid;
	/* exit() runs the vendor's static destructors while the other threads
	 * are still in the vendor (SoftHSM): that may end it by a signal */
	int racy = strcmp(k->fault, "exit0") == 0 && n == 1 && strncmp(ev[0].cause, "signal ", 7) == 0;
	int cause_ok = n == 1 && pid_ok && (k->cause == NULL || strcmp(ev[0].cause, k->cause) == 0 || racy);
	for (int i = 0; !cause_ok && i < n; i++)
		note("%s: logged host death %d: host %d during %s: %s", t, i + 1, (int)ev[i].pid, ev[i].func, ev[i].cause);
	check(cause_ok, "%s: the log reports one host death, of host %d, as \"%s\"%s: %d report(s)%s%d%s%s", t, (int)hp,
	      k->cause ? k->cause : "(any)", strcmp(k->fault, "exit0") == 0 ? " (or a signal: exit() races the other threads)" : "",
	      n, n ? ", the first: host " : "", n ? (int)ev[0].pid : 0, n ? ", " : "", n ? ev[0].cause : "");
	struct pstate ps;
	double took;
	int clean = wait_procs(&dead, 0, 1, 2000, &ps, &took);
	check(clean, "%s: within 2 s nothing is left of the dead host (%d processes), one new host, no other child, no "
		     "zombie: %s (%.0f ms)",
	      t, dead.n, ps.desc[0] ? ps.desc : "clean", took);
	if (k->pre == PRE_THREAD)
		check(!proc_exists(vproc), "%s: the host process %d that ran the vendor's thread is gone", t, (int)vproc);
	if (vchild > 0)
		check(proc_ended(vchild), "%s: the vendor's forked child %d is gone", t, (int)vchild);
	check(canaries_intact(desc, sizeof(desc)), "%s: canary fds intact%s%s", t, desc[0] ? ": " : "", desc);
	tree_release(&dead);
	app.ready = 0; /* the main session died with the host */
}

static int mode_threads(void)
{
	if (!setup(1))
		return finish();
	on_give_up = print_threads;
	for (int k = 0; k < NKINDS; k++) {
		if (kinds[k].killer == KILL_TOP && !has_init)
			continue;
		if (selected("FAULTS_KINDS", kinds[k].name))
			run_threads_case(k);
	}
	F->C_Finalize(NULL);
	print_threads();
	return finish();
}

/* ================================================================== */
/* appsig: the application's own process and signal handling          */

static pid_t reaped_pid[256];
static int reaped_status[256];
static atomic_int nreaped;

static void reaper(int sig)
{
	(void)sig;
	int saved = errno, st;
	pid_t p;
	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		int i = atomic_fetch_add(&nreaped, 1);
		if (i < 256) {
			reaped_pid[i] = p;
			reaped_status[i] = st;
		}
	}
	errno = saved;
}

static int was_reaped(pid_t pid, int *status)
{
	int n = atomic_load(&nreaped);
	for (int i = 0; i < n && i < 256; i++) {
		if (reaped_pid[i] == pid) {
			*status = reaped_status[i];
			return 1;
		}
	}
	return 0;
}

static pid_t spawn_sleep(const char *secs)
{
	pid_t p = fork();
	if (p == 0) {
		execlp("sleep", "sleep", secs, (char *)NULL);
		_exit(127);
	}
	return p;
}

static void set_handler(int sig, void (*h)(int), int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = h;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

struct pester {
	pid_t tid;
	int sig;
	long every_ms;
	atomic_int stop;
	atomic_int sent;
	pthread_t th;
};

static void *pester_main(void *p)
{
	struct pester *x = p;
	while (!atomic_load(&x->stop)) {
		sleep_ms(x->every_ms);
		if (atomic_load(&x->stop))
			break;
		syscall(SYS_tgkill, getpid(), x->tid, x->sig);
		atomic_fetch_add(&x->sent, 1);
	}
	return NULL;
}

static void pester_start(struct pester *x, int sig, long every_ms)
{
	memset(x, 0, sizeof(*x));
	x->tid = (pid_t)syscall(SYS_gettid);
	x->sig = sig;
	x->every_ms = every_ms;
	pthread_create(&x->th, NULL, pester_main, x);
}

static void pester_stop(struct pester *x)
{
	atomic_store(&x->stop, 1);
	pthread_join(x->th, NULL);
}

/* limiter stops a pester after lim ms, unless done first. */
struct limiter {
	struct pester *p;
	double lim;
	atomic_int done;
};

static void *limiter_main(void *p)
{
	struct limiter *l = p;
	double s0 = now_ms();
	while (!atomic_load(&l->done) && now_ms() - s0 < l->lim)
		sleep_ms(10);
	atomic_store(&l->p->stop, 1);
	return NULL;
}

static int mode_appsig(void)
{
	if (!setup(1))
		return finish();
	const struct kind *segv = &kinds[0];
	struct result res;
	int st;

	/* 1. SIGCHLD ignored: the kernel reaps the host; nothing hangs. */
	set_handler(SIGCHLD, SIG_IGN, 0);
	struct cell_opts o1 = { "SIGCHLD=SIG_IGN", 0, 1 };
	run_cell(segv, FN_SIGN, &o1, &res);
	note("SIGCHLD=SIG_IGN: the host ended by %s, time to error %.0f ms, recovery %.0f ms", res.ended, res.err_ms,
	     res.rec_ms);
	set_handler(SIGCHLD, SIG_DFL, 0);

	/* 2. A SIGCHLD handler that reaps everything with waitpid(-1); the
	 * driver's own child must stay the driver's. */
	pid_t mine = spawn_sleep("5");
	set_handler(SIGCHLD, reaper, SA_RESTART | SA_NOCLDSTOP);
	struct cell_opts o2 = { "SIGCHLD reaper", mine, 1 };
	run_cell(segv, FN_SIGN, &o2, &res);
	note("SIGCHLD reaper: the host ended by %s; the handler reaped %d process(es)", res.ended, atomic_load(&nreaped));
	check(proc_exists(mine) && !was_reaped(mine, &st),
	      "SIGCHLD reaper: the driver's own child %d (sleep 5) still runs, unreaped", (int)mine);
	kill(mine, SIGTERM);
	double t0 = now_ms();
	while (!was_reaped(mine, &st) && now_ms() - t0 < 2000)
		sleep_ms(10);
	check(was_reaped(mine, &st) && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM,
	      "SIGCHLD reaper: the driver's handler reaps its own child with its status (killed by SIGTERM)");

	/* 3. A call interrupted over and over by the application's signals
	 * (its children exiting) still succeeds. */
	{
		const char *t = "SIGCHLD reaper, a SIGCHLD every 2 ms during the calls";
		note("--- %s", t);
		ensure_ready(t);
		struct pester px;
		int fails = 0;
		CK_RV bad = CKR_OK;
		pester_start(&px, SIGCHLD, 2);
		double s = now_ms();
		int iters = 0;
		while (now_ms() - s < 1500) {
			const char *step;
			CK_RV rv = sign_verify(app.s, app.pub, app.priv, NULL, &step);
			iters++;
			if (rv != CKR_OK) {
				fails++;
				bad = rv;
				app.ready = 0;
				ensure_ready(t);
			}
		}
		pester_stop(&px);
		check(fails == 0, "%s: %d sign + verify rounds, %d signals, %d failed (%s)", t, iters, atomic_load(&px.sent),
		      fails, rvs(bad));
	}

	/* 4. The deadline holds while the application's signals interrupt the
	 * proxy's wait, whether they come now and then or in a stream. */
	static const long every[] = { 300, 3 };
	for (size_t e = 0; e < sizeof(every) / sizeof(every[0]); e++) {
		char t[120];
		snprintf(t, sizeof(t), "SIGCHLD reaper, a SIGCHLD every %ld ms during a hung C_Sign", every[e]);
		note("--- %s", t);
		if (!ensure_ready(t))
			continue;
		CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
		F->C_SignInit(app.s, &m, app.priv);
		arm("hang:C_Sign");
		struct pester px;
		pester_start(&px, SIGCHLD, every[e]);
		/* the signals stop at 4 x the deadline: the call must have
		 * returned long before */
		double s0 = now_ms();
		struct watch w;
		watch_start(&w, t, KILL_NONE, 0, (long)deadline_ms * 10 + 10000, NULL);
		struct limiter lim = { &px, deadline_ms * 4, 0 };
		pthread_t lt;
		pthread_create(&lt, NULL, limiter_main, &lim);
		CK_BYTE sig[64];
		CK_ULONG len = sizeof(sig);
		CK_RV rv = F->C_Sign(app.s, digest, sizeof(digest), sig, &len);
		double dt = now_ms() - s0;
		atomic_store(&lim.done, 1);
		pthread_join(lt, NULL);
		pester_stop(&px);
		watch_stop(&w);
		arm("none");
		app.ready = 0;
		check(rv == CKR_DEVICE_ERROR && dt <= deadline_ms + 1500,
		      "%s: C_Sign returns CKR_DEVICE_ERROR at the %.0f ms deadline: %s after %.0f ms (%d signals)%s", t,
		      deadline_ms, rvs(rv), dt, atomic_load(&px.sent),
		      dt > deadline_ms * 4 - 500 ? " - it returned only after the signals stopped" : "");
	}
	set_handler(SIGCHLD, SIG_DFL, 0);
	while (waitpid(-1, &st, WNOHANG) > 0) {
	}

	/* 5. Default SIGCHLD: the driver's own children, a zombie and a live
	 * one, are left for the driver to reap. */
	{
		pid_t zombie = spawn_sleep("5");
		kill(zombie, SIGTERM);
		double s = now_ms();
		struct pinfo pi;
		while (read_stat(zombie, &pi) == 0 && pi.state != 'Z' && now_ms() - s < 2000)
			sleep_ms(5);
		struct cell_opts o5 = { "own zombie child", zombie, 0 };
		run_cell(segv, FN_SIGN, &o5, &res);
		pid_t got = waitpid(zombie, &st, WNOHANG);
		check(got == zombie && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM,
		      "own zombie child: the driver's own zombie child %d was left for the driver to reap (waitpid: %d)",
		      (int)zombie, (int)got);
	}

	/* 6. SIGPIPE at its default disposition: a host death must not raise
	 * it in the application. */
	set_handler(SIGPIPE, SIG_DFL, 0);
	struct cell_opts o6 = { "SIGPIPE=SIG_DFL", 0, 0 };
	run_cell(segv, FN_SIGN, &o6, &res);
	{
		const char *t = "SIGPIPE=SIG_DFL, host killed while idle, then calls";
		note("--- %s", t);
		if (ensure_ready(t)) {
			pid_t hp = vendor_pid(host_pid());
			kill(hp, SIGKILL);
			double s = now_ms();
			while (!proc_ended(hp) && now_ms() - s < 2000)
				sleep_ms(5);
			sleep_ms(50);
			CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
			CK_RV r1 = F->C_SignInit(app.s, &m, app.priv);
			CK_BYTE sig[64];
			CK_ULONG len = sizeof(sig);
			CK_RV r2 = F->C_Sign(app.s, digest, sizeof(digest), sig, &len);
			check((r1 == CKR_DEVICE_ERROR || dead_handle(r1)) && r2 != CKR_OK,
			      "%s: the next calls fail (C_SignInit %s, C_Sign %s) and the application lives", t, rvs(r1), rvs(r2));
			app.ready = 0;
			check(ensure_ready(t), "%s: recovery works", t);
			sigset_t pend;
			sigpending(&pend);
			check(!sigismember(&pend, SIGPIPE), "%s: no SIGPIPE pending", t);
		}
	}
	/* the log on a broken pipe (stderr whose reader is gone) */
	{
		const char *t = "SIGPIPE=SIG_DFL, log=stderr on a broken pipe";
		note("--- %s", t);
		F->C_Finalize(NULL);
		app.initialized = app.ready = 0;
		int p[2];
		if (pipe(p) == 0) {
			int saved = dup(2);
			dup2(p[1], 2);
			close(p[1]);
			close(p[0]);
			char *savedlog = strdup(log_path);
			setenv("P11ISOLATE_LOG", "stderr", 1);
			int ok = ensure_ready(t);
			if (ok) {
				CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
				F->C_SignInit(app.s, &m, app.priv);
				arm("segv:C_Sign");
				CK_BYTE sig[64];
				CK_ULONG len = sizeof(sig);
				CK_RV rv = F->C_Sign(app.s, digest, sizeof(digest), sig, &len);
				arm("none");
				app.ready = 0;
				check(rv == CKR_DEVICE_ERROR, "%s: C_Sign returns CKR_DEVICE_ERROR (the log line hits EPIPE): %s", t,
				      rvs(rv));
				ensure_ready(t);
				check(app.ready, "%s: recovery works", t);
			}
			F->C_Finalize(NULL);
			app.initialized = app.ready = 0;
			dup2(saved, 2);
			close(saved);
			setenv("P11ISOLATE_LOG", savedlog, 1);
			free(savedlog);
			check(kill(getpid(), 0) == 0, "%s: the application is alive", t);
		}
	}
	set_handler(SIGPIPE, SIG_IGN, 0);
	if (ensure_ready("the end"))
		F->C_Finalize(NULL);
	return finish();
}

/* ================================================================== */
/* appkill: the host ends with the application                         */

enum { APP_IDLE, APP_HUNG, APP_FORKED, APP_EXIT, APP_INIT_HUNG, APP_CASES };
static const char *const app_cases[] = { "idle host", "host in a hung vendor call", "vendor forked a child",
					 "application exits without C_Finalize",
					 "host starting, its vendor hung in C_Initialize" };

/* app_child is the application that gets killed; it sends its host's
 * process tree (with the vendor's child, if any) on fd w. */
static void app_child(int how, int w)
{
	if (how == APP_INIT_HUNG) {
		/* the parent gets the host's tree from /proc: this C_Initialize
		 * does not return */
		F = load_library(lib_path);
		arm("hang:C_Initialize");
		if (F)
			initialize();
		_exit(13);
	}
	F = load_library(lib_path);
	if (F == NULL || initialize() != CKR_OK || find_slot() != CKR_OK)
		_exit(10);
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE pub, priv;
	const char *step;
	if (!make_key(1) || open_login_find(&s, &pub, &priv, NULL, &step) != CKR_OK)
		_exit(11);
	pid_t hp = host_pid();
	if (how == APP_FORKED)
		pre_fault("vendor forked a child", PRE_FORK, hp);
	struct tree tr;
	memset(&tr, 0, sizeof(tr));
	tree_add(&tr, hp);
	if (write(w, &tr, sizeof(tr)) != (ssize_t)sizeof(tr))
		_exit(12);
	if (how == APP_EXIT) {
		sleep_ms(100);
		exit(0);
	}
	if (how == APP_HUNG) {
		CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
		F->C_SignInit(s, &m, priv);
		arm("hang:C_Sign");
		CK_BYTE sig[64];
		CK_ULONG len = sizeof(sig);
		F->C_Sign(s, digest, sizeof(digest), sig, &len);
	}
	for (;;)
		pause();
}

static int tree_ended(const struct tree *t)
{
	for (int i = 0; i < t->n; i++) {
		struct pinfo pi;
		if (read_stat(t->pid[i], &pi) == 0 && pi.start == t->start[i] && pi.state != 'Z' && pi.state != 'X')
			return 0;
	}
	return 1;
}

static int mode_appkill(void)
{
	if (!setup(0))
		return finish();
	/* orphans (the host, the vendor's child) come to the driver, which
	 * reaps them */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	for (int how = 0; how < APP_CASES; how++) {
		const char *t = app_cases[how];
		note("--- application %s: %s", how == APP_EXIT ? "exits" : "SIGKILLed", t);
		int p[2];
		if (pipe(p) != 0)
			return finish();
		pid_t app_pid = fork();
		if (app_pid == 0) {
			close(p[0]);
			app_child(how, p[1]);
			_exit(0);
		}
		close(p[1]);
		struct tree tr;
		memset(&tr, 0, sizeof(tr));
		ssize_t n = 0;
		if (how == APP_INIT_HUNG) {
			/* the application's host, by /proc, once it runs the vendor */
			double s0 = now_ms();
			while (now_ms() - s0 < 5000) {
				sleep_ms(20);
				pthread_mutex_lock(&proc_mu);
				int np = scan_procs(procbuf, MAXPROCS);
				pid_t top = 0;
				for (int i = 0; i < np && !top; i++) {
					if (procbuf[i].ppid == app_pid && is_host_process(procbuf[i].pid))
						top = procbuf[i].pid;
				}
				pthread_mutex_unlock(&proc_mu);
				if (top > 0 && now_ms() - s0 > 400) { /* well into C_Initialize */
					tree_add(&tr, top);
					n = sizeof(tr);
					break;
				}
			}
		} else {
			n = read(p[0], &tr, sizeof(tr));
		}
		close(p[0]);
		if (how != APP_INIT_HUNG)
			tr.nsfd1 = 0; /* the child's fd; hold the namespace here */
		for (int i = 0; n == (ssize_t)sizeof(tr) && i < tr.n; i++)
			tree_hold_ns(&tr, tr.pid[i]);
		if (!check(n == (ssize_t)sizeof(tr) && tr.n > 0, "%s: the application reports its host: pid %d, %d process(es)",
			   t, tr.n ? (int)tr.pid[0] : 0, tr.n)) {
			kill(app_pid, SIGKILL);
			waitpid(app_pid, NULL, 0);
			continue;
		}
		if (how == APP_FORKED)
			check(tr.n >= 2 + has_init, "%s: the vendor's child is in the host's tree: %d process(es)", t, tr.n);
		if (how == APP_HUNG)
			sleep_ms(300); /* into the hung C_Sign */
		int st;
		if (how != APP_EXIT)
			kill(app_pid, SIGKILL);
		waitpid(app_pid, &st, 0);
		double t0 = now_ms();
		while (!tree_ended(&tr) && now_ms() - t0 < 3000)
			sleep_ms(5);
		double took = now_ms() - t0;
		check(tree_ended(&tr) && took <= 2000,
		      "%s: the host's %d process(es) end within 2 s of the application: %s after %.0f ms", t, tr.n,
		      tree_ended(&tr) ? "ended" : "still running", took);
		/* the driver is the subreaper: reap them; nothing may be left */
		t0 = now_ms();
		char desc[512];
		int left;
		do {
			while (waitpid(-1, &st, WNOHANG) > 0) {
			}
			left = tree_left(&tr, desc, sizeof(desc));
			if (left)
				sleep_ms(10);
		} while (left && now_ms() - t0 < 1000);
		check(left == 0, "%s: nothing of the host's processes, groups or pid namespace is left: %d%s%s", t, left,
		      left ? ": " : "", desc);
		for (int i = 0; i < tr.n && left; i++)
			kill(tr.pid[i], SIGKILL);
		tree_release(&tr);
		while (waitpid(-1, &st, WNOHANG) > 0) {
		}
		arm("none");
	}
	return finish();
}

/* ================================================================== */
/* storm: a vendor that dies at every start                            */

/* While the vendor cannot start, every call must still come back within
 * the per-call deadline (plus a second): a back-off may refuse a call, it
 * must not hold it. */
static double call_limit_ms(void)
{
	return deadline_ms + 1000;
}

struct storm_thr {
	pthread_t th;
	int calls, slow, devs;
	double worst;
};

static atomic_int storm_stop;

static void *storm_main(void *p)
{
	struct storm_thr *x = p;
	while (!atomic_load(&storm_stop)) {
		CK_ULONG n = 0;
		double s = now_ms();
		CK_RV rv = F->C_GetSlotList(CK_TRUE, NULL, &n);
		double d = now_ms() - s;
		x->calls++;
		x->devs += rv == CKR_DEVICE_ERROR;
		x->slow += d > call_limit_ms();
		if (d > x->worst)
			x->worst = d;
	}
	return NULL;
}

static int mode_storm(void)
{
	if (!setup(0))
		return finish();
	F = load_library(lib_path);
	if (F == NULL)
		return finish();
	const double lim = call_limit_ms();

	/* 1. C_Initialize when every host dies in the vendor's C_Initialize,
	 * then an application that retries C_Initialize in a loop */
	arm("segv:C_Initialize");
	struct watch w;
	watch_start(&w, "storm: the first C_Initialize", KILL_NONE, 0, 20000, NULL);
	double t0 = now_ms();
	CK_RV rv = initialize();
	double dt = now_ms() - t0;
	watch_stop(&w);
	check(rv != CKR_OK && dt <= 2000, "storm: C_Initialize fails fast when the vendor dies at every start: %s after %.0f ms",
	      rvs(rv), dt);
	check(rv == CKR_DEVICE_ERROR, "storm: that C_Initialize returns CKR_DEVICE_ERROR: %s", rvs(rv));
	off_t off = log_size();
	int calls = 0, slow = 0;
	double worst = 0;
	t0 = now_ms();
	watch_start(&w, "storm: C_Initialize in a loop", KILL_NONE, 0, 60000, NULL);
	while (now_ms() - t0 < 3000) {
		double s = now_ms();
		rv = initialize();
		double d = now_ms() - s;
		calls++;
		if (d > worst)
			worst = d;
		slow += d > lim;
		if (rv == CKR_OK)
			break;
	}
	watch_stop(&w);
	char *log = log_since(off);
	int hosts = count_host_pids(log);
	free(log);
	note("storm: %d C_Initialize calls in 3 s, the slowest %.0f ms, the last %s", calls, worst, rvs(rv));
	check(hosts <= 10, "storm: an application retrying C_Initialize for 3 s starts few hosts: %d (want <= 10)", hosts);
	check(slow == 0, "storm: every C_Initialize in the loop returns within %.0f ms (the deadline + 1 s): %d did not, the slowest %.0f ms",
	      lim, slow, worst);

	/* the vendor is fixed: the application retries until it works */
	arm("none");
	t0 = now_ms();
	int tries = 0;
	slow = 0;
	worst = 0;
	watch_start(&w, "storm: C_Initialize once the vendor is fixed", KILL_NONE, 0, 60000, NULL);
	do {
		if (tries++)
			sleep_ms(50);
		double s = now_ms();
		rv = initialize();
		double d = now_ms() - s;
		slow += d > lim;
		if (d > worst)
			worst = d;
	} while (rv == CKR_DEVICE_ERROR && now_ms() - t0 < 8000);
	watch_stop(&w);
	dt = now_ms() - t0;
	check(rv == CKR_OK && dt < 6000,
	      "storm: C_Initialize works once the vendor is fixed, within the longest back-off (5 s): %s after %.0f ms, "
	      "%d attempt(s)",
	      rvs(rv), dt, tries);
	check(slow == 0, "storm: each of those C_Initialize calls returns within %.0f ms: %d did not, the slowest %.0f ms",
	      lim, slow, worst);
	if (rv != CKR_OK)
		return finish();

	/* 2. an initialized library whose vendor starts dying at every start:
	 * one thread in a loop, then four */
	pid_t hp = vendor_pid(host_pid());
	arm("segv:C_Initialize");
	kill(hp, SIGKILL);
	t0 = now_ms();
	while (!proc_ended(hp) && now_ms() - t0 < 2000)
		sleep_ms(5);
	off = log_size();
	calls = slow = 0;
	worst = 0;
	int devs = 0;
	t0 = now_ms();
	watch_start(&w, "storm: C_GetSlotList in a loop", KILL_NONE, 0, 60000, NULL);
	while (now_ms() - t0 < 3000) {
		CK_ULONG n = 0;
		double s = now_ms();
		rv = F->C_GetSlotList(CK_TRUE, NULL, &n);
		double d = now_ms() - s;
		calls++;
		devs += rv == CKR_DEVICE_ERROR;
		if (d > worst)
			worst = d;
		slow += d > lim;
	}
	watch_stop(&w);
	log = log_since(off);
	hosts = count_host_pids(log);
	free(log);
	note("storm: %d C_GetSlotList calls in 3 s (%d CKR_DEVICE_ERROR), the slowest %.0f ms", calls, devs, worst);
	check(devs == calls, "storm: every call while the vendor cannot start returns CKR_DEVICE_ERROR: %d of %d", devs,
	      calls);
	check(hosts >= 1 && hosts <= 10, "storm: restarts back off: %d hosts started in 3 s of calls (want 1..10)", hosts);
	check(slow == 0, "storm: every call in the loop returns within %.0f ms (the deadline + 1 s): %d did not, the slowest %.0f ms",
	      lim, slow, worst);

	/* four threads for 6 more seconds: the back-off grows to its longest */
	off = log_size();
	struct storm_thr thr[4];
	memset(thr, 0, sizeof(thr));
	atomic_store(&storm_stop, 0);
	watch_start(&w, "storm: 4 threads calling C_GetSlotList", KILL_NONE, 0, 90000, NULL);
	t0 = now_ms();
	for (int i = 0; i < 4; i++)
		pthread_create(&thr[i].th, NULL, storm_main, &thr[i]);
	sleep_ms(6000);
	atomic_store(&storm_stop, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(thr[i].th, NULL);
	double all = now_ms() - t0;
	watch_stop(&w);
	log = log_since(off);
	hosts = count_host_pids(log);
	free(log);
	calls = slow = devs = 0;
	worst = 0;
	char per[200] = "";
	for (int i = 0; i < 4; i++) {
		calls += thr[i].calls;
		slow += thr[i].slow;
		devs += thr[i].devs;
		if (thr[i].worst > worst)
			worst = thr[i].worst;
		size_t used = strlen(per);
		snprintf(per + used, sizeof(per) - used, "%s%d calls, slowest %.0f ms", i ? "; " : "", thr[i].calls,
			 thr[i].worst);
	}
	note("storm: 4 threads: %s; the threads stopped %.0f ms after they were told (at 6000 ms)", per, all - 6000);
	check(devs == calls, "storm: 4 threads: every call returns CKR_DEVICE_ERROR: %d of %d", devs, calls);
	check(hosts <= 10, "storm: 4 threads: restarts back off: %d hosts started in 6 s (want <= 10)", hosts);
	check(slow == 0,
	      "storm: 4 threads: every call returns within %.0f ms (the deadline + 1 s) while the vendor cannot start: %d "
	      "did not, the slowest %.0f ms",
	      lim, slow, worst);

	arm("none");
	/* the back-off ends: a call succeeds within the longest back-off */
	t0 = now_ms();
	watch_start(&w, "storm: calls once the vendor is fixed", KILL_NONE, 0, 60000, NULL);
	do {
		CK_ULONG n = 0;
		rv = F->C_GetSlotList(CK_TRUE, NULL, &n);
		if (rv != CKR_OK)
			sleep_ms(50);
	} while (rv != CKR_OK && now_ms() - t0 < 8000);
	watch_stop(&w);
	check(rv == CKR_OK && now_ms() - t0 < 6000,
	      "storm: once the vendor is fixed, calls work again within the longest back-off (5 s): %s after %.0f ms",
	      rvs(rv), now_ms() - t0);
	rv = F->C_Finalize(NULL);
	check(rv == CKR_OK, "storm: C_Finalize: %s", rvs(rv));
	struct pstate ps;
	double took;
	int clean = wait_procs(NULL, 0, 0, 3000, &ps, &took);
	check(clean, "storm: no child process or zombie is left: %s", ps.desc[0] ? ps.desc : "none");
	return finish();
}

/* ================================================================== */
/* restart: a host's start, which can take up to the deadline, holds  */
/* up no one who does not need the new host                           */

static atomic_int restart_stop;
static _Atomic double restart_kill_ms; /* when the host was killed; 0: not yet */

struct restart_worker {
	pthread_t th;
	int in_flight;  /* calls started before the kill that ended after it */
	double slowest; /* of those, the longest from the kill to the answer */
	CK_RV rv;       /* the first of those answers */
};

static void *restart_worker_main(void *p)
{
	struct restart_worker *w = p;
	CK_INFO info;

	while (!atomic_load(&restart_stop)) {
		double k0 = atomic_load(&restart_kill_ms);
		CK_RV rv = F->C_GetInfo(&info);
		double end = now_ms();
		if (k0 == 0 && (k0 = atomic_load(&restart_kill_ms)) != 0 && rv != CKR_OK) {
			/* in flight at the kill: answered without waiting for the next host */
			if (w->in_flight++ == 0)
				w->rv = rv;
			if (end - k0 > w->slowest)
				w->slowest = end - k0;
		}
		/* Calls started after the kill go on: the first of them
		 * starts the next host, and the others wait for it. */
	}
	return NULL;
}

static void *restart_caller_main(void *p)
{
	CK_INFO info;
	*(CK_RV *)p = F->C_GetInfo(&info);
	return NULL;
}

static int mode_restart(void)
{
	if (!setup(0))
		return finish();
	F = load_library(lib_path);
	if (F == NULL)
		return finish();
	CK_RV rv = initialize();
	if (!check(rv == CKR_OK, "restart: C_Initialize: %s", rvs(rv)))
		return finish();

	/* 1. While the next host hangs in its C_Initialize, a second
	 * C_Initialize answers at once. */
	CK_INFO info;
	rv = F->C_GetInfo(&info);
	arm("hang:C_Initialize");
	pid_t hp = host_pid();
	if (!check(hp > 0 && kill(hp, SIGKILL) == 0, "restart: killing the host (pid %d)", (int)hp))
		return finish();
	struct watch w;
	watch_start(&w, "restart: C_Initialize during a start", KILL_NONE, 0, 30000, NULL);
	for (int i = 0; i < 2000 && !proc_ended(hp); i++)
		sleep_ms(1);
	rv = F->C_GetInfo(&info);
	check(rv == CKR_DEVICE_ERROR, "restart: the call that finds the host dead gets CKR_DEVICE_ERROR: %s", rvs(rv));
	pthread_t th;
	CK_RV starter = CKR_OK;
	double t0 = now_ms();
	pthread_create(&th, NULL, restart_caller_main, &starter);
	sleep_ms(300); /* the caller is in the start, the vendor hanging */
	double s = now_ms();
	rv = F->C_Initialize(NULL);
	double dt = now_ms() - s;
	pthread_join(th, NULL);
	double took = now_ms() - t0;
	watch_stop(&w);
	check(starter == CKR_DEVICE_ERROR && took >= deadline_ms * 0.8,
	      "restart: the call that starts a host whose C_Initialize hangs gets CKR_DEVICE_ERROR at the deadline: %s after %.0f ms",
	      rvs(starter), took);
	check(rv == CKR_CRYPTOKI_ALREADY_INITIALIZED && dt < 200,
	      "restart: C_Initialize during that start answers CKR_CRYPTOKI_ALREADY_INITIALIZED at once: %s after %.0f ms",
	      rvs(rv), dt);

	/* 2. Calls in flight when the host dies get CKR_DEVICE_ERROR at once,
	 * though a call after them, on another thread, starts a host that
	 * hangs. Rounds of six threads calling in a loop. */
	int in_flight = 0, rounds = 4, bad_rv = 0;
	double slowest = 0;
	for (int r = 0; r < rounds; r++) {
		arm("none");
		rv = F->C_GetInfo(&info);
		if (rv != CKR_OK) {
			sleep_ms(200); /* the back-off of the hung start */
			rv = F->C_GetInfo(&info);
		}
		if (!check(rv == CKR_OK, "restart: round %d: a new host answers: %s", r + 1, rvs(rv)))
			break;
		struct restart_worker ws[6];
		memset(ws, 0, sizeof ws);
		atomic_store(&restart_stop, 0);
		atomic_store(&restart_kill_ms, 0);
		for (int i = 0; i < 6; i++)
			pthread_create(&ws[i].th, NULL, restart_worker_main, &ws[i]);
		sleep_ms(100);
		arm("hang:C_Initialize");
		hp = host_pid();
		watch_start(&w, "restart: calls in flight at a host's death", KILL_NONE, 0, 30000, NULL);
		atomic_store(&restart_kill_ms, now_ms());
		if (hp > 0)
			kill(hp, SIGKILL);
		sleep_ms(50);
		atomic_store(&restart_stop, 1);
		for (int i = 0; i < 6; i++) {
			pthread_join(ws[i].th, NULL);
			in_flight += ws[i].in_flight;
			bad_rv += ws[i].in_flight > 0 && ws[i].rv != CKR_DEVICE_ERROR;
			if (ws[i].slowest > slowest)
				slowest = ws[i].slowest;
		}
		watch_stop(&w);
	}
	note("restart: %d calls in flight at a host's death in %d rounds, the slowest answered %.0f ms after it", in_flight,
	     rounds, slowest);
	check(in_flight > 0 && bad_rv == 0, "restart: the calls in flight at a host's death get CKR_DEVICE_ERROR: %d calls, %d did not",
	      in_flight, bad_rv);
	check(slowest < deadline_ms / 4,
	      "restart: they get it before the next host's start (hung for %.0f ms) ends: the slowest after %.0f ms", deadline_ms,
	      slowest);
	arm("none");
	sleep_ms(300);
	rv = F->C_Finalize(NULL);
	check(rv == CKR_OK || rv == CKR_DEVICE_ERROR, "restart: C_Finalize: %s", rvs(rv));
	return finish();
}

/* ================================================================== */

static int run_mode(const char *mode);

/* forked runs a mode in a child forked after this process loaded the
 * library, initialized it, used it and finalized it (libp11isolate.so's
 * forked-child path, without Go), then checks that the parent can use the
 * library again afterwards. */
static int forked(const char *mode)
{
	CK_FUNCTION_LIST_PTR f = load_library(lib_path);
	CK_INFO info;
	CK_RV rv;
	int st = 0;

	if (f == NULL)
		return finish();
	rv = f->C_Initialize(NULL);
	if (rv == CKR_OK)
		rv = f->C_GetInfo(&info);
	f->C_Finalize(NULL);
	if (!check(rv == CKR_OK, "parent: C_Initialize, C_GetInfo, C_Finalize before the fork: %s", rvs(rv)))
		return finish();
	pid_t p = fork();
	if (p == 0) {
		if (make_canaries() != 0) {
			perror("faults: canaries");
			_exit(2);
		}
		_exit(run_mode(mode));
	}
	while (waitpid(p, &st, 0) < 0 && errno == EINTR)
		;
	rv = f->C_Initialize(NULL);
	CK_RV rv2 = rv == CKR_OK ? f->C_GetInfo(&info) : rv;
	if (rv == CKR_OK)
		f->C_Finalize(NULL);
	check(rv == CKR_OK && rv2 == CKR_OK, "parent after the forked child's run: C_Initialize %s, C_GetInfo %s", rvs(rv),
	      rvs(rv2));
	int r = finish();
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? r : 1;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 4) {
		fprintf(stderr, "usage: faults LIB PIN [forked:]matrix|threads|appsig|appkill|storm|restart\n");
		return 2;
	}
	lib_path = argv[1];
	pin = argv[2];
	const char *mode = argv[3];
	if (strncmp(mode, "forked:", 7) == 0)
		return forked(mode + 7);
	if (make_canaries() != 0) {
		perror("faults: canaries");
		return 2;
	}
	return run_mode(mode);
}

static int run_mode(const char *mode)
{
	if (strcmp(mode, "matrix") == 0)
		return mode_matrix();
	if (strcmp(mode, "threads") == 0)
		return mode_threads();
	if (strcmp(mode, "appsig") == 0)
		return mode_appsig();
	if (strcmp(mode, "appkill") == 0)
		return mode_appkill();
	if (strcmp(mode, "storm") == 0)
		return mode_storm();
	if (strcmp(mode, "restart") == 0)
		return mode_restart();
	fprintf(stderr, "faults: unknown mode %s\n", mode);
	return 2;
}
