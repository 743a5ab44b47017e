/* supervise: the host's lifecycle and every call but the first process's
 * C_Initialize, in C. A process forked after the library was loaded cannot
 * run Go, so this is what a forked child runs; and to keep one
 * implementation of each job, the process that loaded the library runs it
 * too. Go resolves the settings at C_Initialize and hands them over as a plan
 * (internal/plan), from which the kit hosts start from is built here; a
 * forked child gets its plan from the host image in plan mode, or keeps its
 * parent's kit when nothing it resolves from changed. From there on the
 * calls never enter Go:
 * start a host from the kit (spawn, handshake, the module's loading, the
 * replayed C_Initialize, all under one deadline), pool its call channels,
 * make each call through the data plane (p11i_run), and when a host dies,
 * hangs or lies, report it once, kill it and start a fresh one, backing off
 * while it keeps failing at start. The kit and C_Initialize's arguments are
 * kit.c's, the log log.c's. Included by proxy/plane.c after them. */
#include "shim.h"

#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define KILL_GRACE_MS 2000
#define MIN_BACKOFF 100000000LL  /* 100 ms */
#define MAX_BACKOFF 5000000000LL /* 5 s */

/* ------------------------------------------------------------------ */
/* The state                                                           */

struct chan {
	int fd;
	struct p11i_call c;
	void *mem;
};


/* host is one running host process. Everything in it is guarded by
 * sup.mu; a caller holds a reference for the length of its call. */
struct host {
	int refs;
	struct p11i_kit *kit; /* the settings it was started with */
	pid_t pid;
	int pidfd, ctl;
	int status_fd; /* its namespace init reports its wait status here; -1: none */
	uint64_t gen;  /* handle generation */
	int dead;      /* killed or being killed: no new calls on it */
	int retired;   /* C_Finalize took it away */
	struct chan *idle[P11I_MAX_CHANNELS];
	int nidle, count;
	struct p11i_report rep; /* the sandbox it got */
};

static struct {
	pthread_mutex_t mu; /* never held across a call or a host's start */
	/* One host starts at a time, with mu released: a start can take up
	 * to the deadline, and calls ending on the last host, its reaper and
	 * C_Initialize's "already initialized" must not wait for it. While
	 * starting, the kit and init_args stay put: C_Initialize and
	 * C_Finalize wait for the start to end. */
	int starting;
	pthread_cond_t started;
	struct p11i_kit *kit; /* the settings in force; NULL: none resolved yet */
	int initialized;
	int inherited;      /* a forked child: its parent was initialized at the fork */
	struct host *host;  /* NULL: none running */
	uint64_t gen;       /* handle generation of the next host */
	/* Restarts back off while the vendor keeps dying at start: no fork
	 * storm from an application that retries in a loop. */
	int64_t next_start, backoff;
	char *failed; /* module whose host failed at the last C_Initialize */
	/* The application's C_Initialize arguments as each host gets them
	 * (NULL: it passed NULL), and what the kit was resolved from: the
	 * environment and pReserved of that C_Initialize. */
	CK_C_INITIALIZE_ARGS *init_args;
	char **src_env;
	char *src_reserved;
	uid_t src_uid; /* the plan depends on the effective ids (root or not) */
	gid_t src_gid;
	int region_logged;
	CK_MECHANISM_TYPE uncarried[64]; /* mechanisms already logged */
	int nuncarried;
	/* The vendor's "PKCS 11" interfaces, from the last host that loaded
	 * it (C_GetInterface's answers). */
	int ifaces_known, niface, iface_def;
	struct p11i_iface ifaces[P11I_MAX_IFACES];
	/* The host a C_GetInterface before C_Initialize started (probe), the
	 * plan it was started with, and whether C_Initialize's plan is that
	 * one: then C_Initialize adopts it instead of starting another. */
	struct host *probe;
	void *probe_plan;
	size_t probe_len;
	int probe_match;
} sup = { .mu = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP, .started = PTHREAD_COND_INITIALIZER };

/* sup.mu is held for a few hundred nanoseconds per call: an adaptive mutex
 * spins that long before it sleeps, where a plain one would have two
 * threads calling at once pay a futex sleep and wake-up. */
static void sup_mutex_init(void)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&sup.mu, &a);
	pthread_mutexattr_destroy(&a);
	pthread_cond_init(&sup.started, NULL);
}

static void kit_unref(struct p11i_kit *k)
{
	if (k != NULL && --k->refs == 0)
		kit_free(k);
}

static int64_t timeout_for(const struct p11i_kit *k, int id)
{
	switch (p11i_funcs[id].deadline) {
	case P11I_DEADLINE_NONE:
		return 0;
	case P11I_DEADLINE_KEYGEN:
		return k->keygen_ns;
	}
	return k->timeout_ns;
}

static void sleep_ns(int64_t ns)
{
	struct timespec t = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };

	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ */
/* Channels                                                            */

static void chan_close(struct chan *c)
{
	p11i_fd_unregister(c->fd);
	close(c->fd);
	p11i_call_free(&c->c);
	if (c->mem != NULL)
		munmap(c->mem, P11I_REGION_SIZE);
	free(c);
}

/* chan_new opens a call channel with a shared region and hands its other
 * end and the region to the host, in one message (sup.mu held, or the
 * host still starting). */
static struct chan *chan_new(struct host *h)
{
	int pair[2], memfd;
	struct chan *c = calloc(1, sizeof *c);
	struct p11i_mpw w = { 0 };

	if (c == NULL)
		return NULL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
		free(c);
		return NULL;
	}
	c->fd = pair[0];
	p11i_fd_register(c->fd);
	c->mem = p11i_region_new(P11I_REGION_SIZE, &memfd);
	if (c->mem == NULL && !__atomic_exchange_n(&sup.region_logged, 1, __ATOMIC_RELAXED)) {
		p11i_log("no shared memory for bulk data (%s): large buffers cross through the socket", strerror(errno));
	}
	p11i_mpw_uint(&w, P11I_OP_CHANNEL);
	p11i_mpw_uint(&w, memfd >= 0 ? P11I_REGION_SIZE : 0);
	p11i_mpw_frame(&w);
	int fds[2] = { pair[1], memfd }, nfds = memfd >= 0 ? 2 : 1;
	char cbuf[CMSG_SPACE(sizeof fds)];
	struct iovec iov = { w.buf, w.len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf };
	struct cmsghdr *cm;
	memset(cbuf, 0, sizeof cbuf);
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	ssize_t sent;
	do
		sent = w.err == 0 ? sendmsg(h->ctl, &mh, MSG_NOSIGNAL) : -1;
	while (sent < 0 && errno == EINTR);
	int ok = sent == (ssize_t)w.len;
	p11i_mpw_free(&w);
	close(pair[1]);
	if (memfd >= 0)
		close(memfd);
	p11i_call_init(&c->c, c->mem, c->mem != NULL ? P11I_REGION_SIZE : 0, h->gen);
	p11i_call_ring(&c->c);
	if (!ok) {
		chan_close(c);
		return NULL;
	}
	return c;
}

/* chan_get takes an idle channel of h or opens one (sup.mu held). */
static struct chan *chan_get(struct host *h, int id)
{
	struct chan *c;

	if (h->nidle > 0)
		return h->idle[--h->nidle];
	if (h->count >= (int)P11I_MAX_CHANNELS) {
		p11i_log("%s: more than %d concurrent calls", p11i_funcs[id].name, (int)P11I_MAX_CHANNELS);
		return NULL;
	}
	c = chan_new(h);
	if (c == NULL) {
		p11i_log("%s: handing the host a channel: %s", p11i_funcs[id].name, strerror(errno));
		return NULL;
	}
	h->count++;
	return c;
}

/* ------------------------------------------------------------------ */
/* A host's end                                                        */

static void host_unref(struct host *h)
{
	if (h == NULL || --h->refs > 0)
		return;
	kit_unref(h->kit);
	free(h);
}

/* how_it_ended describes how the host ended, if it has within 200 ms:
 * from its init's report (a pid namespace) or its own wait status. */
static const char *how_it_ended(struct host *h, char *buf, size_t len)
{
	struct pollfd pf = { .fd = h->pidfd, .events = POLLIN };
	siginfo_t si;
	int st;

	buf[0] = '\0';
	if (h->pidfd < 0 || poll(&pf, 1, 200) != 1)
		return buf;
	if (h->status_fd >= 0 && read(h->status_fd, &st, sizeof st) == (ssize_t)sizeof st) {
		if (WIFSIGNALED(st))
			snprintf(buf, len, ": it was killed by signal SIG%s", sigabbrev_np(WTERMSIG(st)));
		else if (WIFEXITED(st))
			snprintf(buf, len, ": it exited with status %d", WEXITSTATUS(st));
		return buf;
	}
	memset(&si, 0, sizeof si);
	if (waitid(P_PIDFD, (id_t)h->pidfd, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0) {
		snprintf(buf, len, " (its exit status went to the application's own child handling)");
		return buf;
	}
	if (si.si_code == CLD_EXITED)
		snprintf(buf, len, ": it exited with status %d", si.si_status);
	else if (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED)
		snprintf(buf, len, ": it was killed by signal SIG%s", sigabbrev_np(si.si_status));
	return buf;
}

/* host_end stops a host that was marked dead (by the one caller that
 * did): its channels and control socket close, which a healthy host takes
 * as its cue to exit; graceful waits for that before SIGKILL. Then
 * whatever the vendor forked (the host's process group) is killed, and the
 * host reaped. Called without sup.mu: once dead, the host's fds are this
 * caller's alone. */
static void host_end(struct host *h, int graceful)
{
	struct pollfd pf = { .fd = h->pidfd, .events = POLLIN };

	for (int i = 0; i < h->nidle; i++)
		chan_close(h->idle[i]);
	h->nidle = 0;
	if (h->ctl >= 0) {
		p11i_fd_unregister(h->ctl);
		close(h->ctl);
		h->ctl = -1;
	}
	if (h->pidfd < 0)
		return;
	if (!graceful || poll(&pf, 1, KILL_GRACE_MS) != 1)
		syscall(SYS_pidfd_send_signal, h->pidfd, SIGKILL, NULL, 0);
	/* The host is not reaped yet, so its pid (the group's id) cannot
	 * have been reused; never kill(0), the application's own group. */
	if (h->pid > 0)
		kill(-h->pid, SIGKILL);
	siginfo_t si;
	while (waitid(P_PIDFD, (id_t)h->pidfd, &si, WEXITED) != 0 && errno == EINTR)
		;
	p11i_fd_unregister(h->pidfd);
	close(h->pidfd);
	h->pidfd = -1;
	if (h->status_fd >= 0) {
		p11i_fd_unregister(h->status_fd);
		close(h->status_fd);
		h->status_fd = -1;
	}
}

static void *reaper_run(void *arg)
{
	struct host *h = arg;

	host_end(h, 0);
	pthread_mutex_lock(&sup.mu);
	host_unref(h);
	pthread_mutex_unlock(&sup.mu);
	return NULL;
}

/* host_end_async kills a host that a caller marked dead and leaves the
 * rest of host_end (its channels, reaping it) to a thread of its own,
 * taking over the caller's reference: the caller answers the application
 * at once, not after the host is reaped and another caller started the
 * next one. Without a thread, host_end runs here. */
static void host_end_async(struct host *h)
{
	if (h->pidfd >= 0)
		syscall(SYS_pidfd_send_signal, h->pidfd, SIGKILL, NULL, 0);
	if (detached(reaper_run, h) != 0)
		reaper_run(h);
}

/* report logs why a call's host is being killed (once per host: the
 * caller that marked it dead). */
static void report(struct host *h, int id, int st, const char *why)
{
	const char *fn = p11i_funcs[id].name, *module = h->kit->module;
	char how[96];

	switch (st) {
	case P11I_RUN_TIMEOUT:
		p11i_log("%s in %s (host pid %d) passed its deadline: killing the host; the next call starts a new one",
			 fn, module, (int)h->pid);
		break;
	case P11I_RUN_CLOSED:
		p11i_log("the host (pid %d) running %s died during %s%s; the next call starts a new one", (int)h->pid,
			 module, fn, how_it_ended(h, how, sizeof how));
		break;
	default:
		/* A reply that breaks the frame format or tells the application
		 * more than it has room for: the host can no longer be trusted. */
		p11i_log("%s: the reply of %s (host pid %d) cannot be true: %s; returning CKR_DEVICE_ERROR and killing the host, the next call starts a new one",
			 fn, module, (int)h->pid, why);
	}
}

/* ------------------------------------------------------------------ */
/* One call                                                            */

/* note_answer logs what the data plane noticed in a call that went
 * through: a mechanism parameter it cannot carry (once per mechanism), a
 * code no PKCS#11 version defines, an argument it refused (sup.mu held). */
static void note_answer(struct host *h, struct chan *c, int id, int st)
{
	if (c->c.has_uncarried) {
		int seen = 0;
		for (int i = 0; i < sup.nuncarried && !seen; i++)
			seen = sup.uncarried[i] == c->c.uncarried;
		if (!seen) {
			if (sup.nuncarried < (int)(sizeof sup.uncarried / sizeof sup.uncarried[0]))
				sup.uncarried[sup.nuncarried++] = c->c.uncarried;
			p11i_log("%s: mechanism 0x%lx takes a parameter p11isolate does not know how to carry: calls with it get CKR_MECHANISM_PARAM_INVALID (or the vendor's CKR_MECHANISM_INVALID)",
				 p11i_funcs[id].name, (unsigned long)c->c.uncarried);
		}
	}
	if (c->c.why[0] == '\0')
		return;
	if (st == P11I_RUN_OK)
		p11i_log("%s (%s): returning CKR_GENERAL_ERROR", c->c.why, h->kit->module);
	else
		p11i_log("%s", c->c.why);
}

/* run_on makes call id on channel c of host h, entered without sup.mu and
 * with a reference on h, which it drops. A host that died, hung or lied is
 * reported by the first of its callers to notice, killed, and the answer
 * is CKR_DEVICE_ERROR (CKR_CRYPTOKI_NOT_INITIALIZED when C_Finalize took
 * the host away). */
static CK_RV run_on(struct host *h, struct chan *c, int id, int route, const uintptr_t *a, int64_t timeout)
{
	c->c.route = route;
	int st = p11i_run(&c->c, c->fd, id, a, timeout), claim = 0;
	char why[sizeof c->c.why];
	CK_RV rv;

	pthread_mutex_lock(&sup.mu);
	if (st == P11I_RUN_OK || st == P11I_RUN_ANSWER) {
		rv = c->c.code;
		note_answer(h, c, id, st);
		if (!h->dead) {
			h->idle[h->nidle++] = c;
		} else {
			h->count--;
			chan_close(c);
		}
		host_unref(h);
		pthread_mutex_unlock(&sup.mu);
		return rv;
	}
	memcpy(why, c->c.why, sizeof why);
	h->count--;
	chan_close(c);
	rv = CKR_DEVICE_ERROR;
	if (h->retired && id != 1)
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
	else if (!h->dead) {
		h->dead = claim = 1;
		if (sup.host == h) {
			sup.host = NULL;
			h->refs--; /* sup's; the caller's keeps it */
		}
	}
	if (!claim)
		host_unref(h);
	pthread_mutex_unlock(&sup.mu);
	if (claim) {
		report(h, id, st, why);
		host_end_async(h);
	}
	return rv;
}

/* ------------------------------------------------------------------ */
/* A host's start                                                      */

/* Names of the bits of p11i_report.layers, for the log. */
static const char *const layer_names[P11I_L_COUNT] = {
	[P11I_L_USERNS] = "user namespace",
	[P11I_L_PIDNS] = "pid namespace",
	[P11I_L_MNTNS] = "mount namespace",
	[P11I_L_NETNS] = "network namespace",
	[P11I_L_IPCNS] = "IPC namespace",
	[P11I_L_INIT] = "own init",
	[P11I_L_PROC] = "fresh /proc",
	[P11I_L_PRIVATE] = "private /tmp and /dev/shm",
	[P11I_L_CAPS] = "root's ptrace, raw I/O, module, BPF and kill capabilities dropped",
	[P11I_L_KEYRING] = "own session keyring",
	[P11I_L_SECCOMP] = "seccomp filter",
	[P11I_L_LANDLOCK] = "Landlock domain",
	[P11I_L_LANDLOCK_FS] = "Landlock filesystem allowlist",
};

static const char *profile_name(int profile)
{
	return profile == P11I_SANDBOX_OFF ? "off" : profile == P11I_SANDBOX_STRICT ? "strict" : "default";
}

/* append adds formatted text to buf (len bytes, NUL-terminated). */
static void append(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t len, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;

	if (n + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
}

/* sandbox_check logs which layers the host got (once per distinct line;
 * on stderr only when one is missing or the sandbox is off) and refuses a
 * strict host that lacks what strict promises (sup.mu held). */
static int sandbox_check(const struct p11i_kit *k, const struct p11i_report *rep)
{
	static char last[2048];
	char line[2048] = "", missing[1024] = "", active[1024] = "";
	unsigned got = rep->layers;

	if (k->sb.profile == P11I_SANDBOX_OFF) {
		append(line, sizeof line,
		       "WARNING: sandbox=off (from %s): the vendor module runs without namespaces, seccomp or Landlock; it can read and write this application's memory (/proc/PID/mem, ptrace) and signal it. Only the file descriptors and the environment (%d of %d variables passed) are kept from it",
		       k->sandbox_source, k->env_passed, k->env_total);
	} else {
		for (int l = 0; l < P11I_L_COUNT; l++) {
			char name[128];
			if (l == P11I_L_LANDLOCK && rep->landlock_abi > 0)
				snprintf(name, sizeof name, "%s (ABI %d)", layer_names[l], rep->landlock_abi);
			else
				snprintf(name, sizeof name, "%s", layer_names[l]);
			if (got & (1u << l)) {
				append(active, sizeof active, "%s%s", active[0] ? ", " : "", name);
			} else if (k->wanted & (1u << l)) {
				char why[64] = "unavailable";
				if (rep->err[l] != 0) {
					snprintf(why, sizeof why, "%s", strerror(rep->err[l]));
					why[0] = (char)tolower((unsigned char)why[0]);
				}
				append(missing, sizeof missing, "%s%s (%s)", missing[0] ? ", " : "", name, why);
			}
		}
		append(line, sizeof line, "sandbox=%s (from %s): %s; environment: %d of %d variables passed",
		       profile_name(k->sb.profile), k->sandbox_source, active[0] ? active : "(none)", k->env_passed,
		       k->env_total);
		if (missing[0])
			append(line, sizeof line, "; not available here: %s", missing);
	}
	/* A sandbox with every layer it asked for is no news on a client's
	 * stderr (pkcs11-tool and friends print it); a log file gets it. */
	int complete = k->sb.profile != P11I_SANDBOX_OFF && (got & k->wanted) == k->wanted;
	if (!log_quiet && strcmp(line, last) != 0 && !(complete && k->log_path == NULL)) {
		snprintf(last, sizeof last, "%s", line);
		p11i_log("%s", line);
	}
	if (k->sb.profile == P11I_SANDBOX_STRICT) {
		unsigned need = 1u << P11I_L_SECCOMP | 1u << P11I_L_LANDLOCK_FS;
		int no_net = (got & 1u << P11I_L_NETNS) || ((got & 1u << P11I_L_LANDLOCK_FS) && rep->landlock_abi >= 4);
		if ((got & need) != need || !no_net) {
			p11i_log("sandbox=strict needs seccomp, a Landlock filesystem allowlist and no network, and this kernel does not give them all (see the sandbox line above): refusing to run the vendor module; use sandbox=default");
			return -1;
		}
	}
	return 0;
}

/* ctl_read reads one control frame's body into c's buffer before deadline
 * (0: none). */
static int ctl_read(struct host *h, struct p11i_call *c, int64_t deadline, size_t *len)
{
	int64_t left = 0;

	if (deadline != 0 && (left = deadline - now_ns()) <= 0)
		return P11I_RUN_TIMEOUT;
	set_timeout(h->ctl, left);
	c->timeout_set = left;
	return recv_frame(c, h->ctl, left, len, 0);
}


static const char *read_failure(int st, const struct p11i_call *c)
{
	return st == P11I_RUN_CLOSED ? "connection closed by peer" : st == P11I_RUN_BAD ? "malformed message" : c->why;
}

/* read_interfaces reads the module's interfaces from its host's open reply:
 * nil, or [major, minor, flags] each. More than the proxy offers are
 * dropped; a version the proxy has no function list for is a lie. */
static int read_interfaces(struct p11i_mpr *r, struct p11i_iface *out)
{
	int k = 0;

	if (p11i_mpr_is_nil(r))
		return 0; /* a module that did not load */
	uint32_t n = p11i_mpr_array(r, 64);

	for (uint32_t i = 0; i < n && !r->failed; i++) {
		if (p11i_mpr_array(r, 3) != 3) {
			p11i_mpr_fail(r, "an interface is [major, minor, flags]");
			break;
		}
		struct p11i_iface v;
		v.major = (unsigned char)p11i_mpr_uint_max(r, 255, "interface version");
		v.minor = (unsigned char)p11i_mpr_uint_max(r, 255, "interface version");
		v.flags = p11i_mpr_uint(r);
		if (v.major != 2 && v.major != 3)
			p11i_mpr_fail(r, "an interface of version %u.%u", v.major, v.minor);
		if (k < P11I_MAX_IFACES)
			out[k++] = v;
	}
	return r->failed ? 0 : k;
}

/* handshake checks the host's hello and has it load the module, before
 * deadline. It returns CKR_OK, CKR_DEVICE_ERROR for a start that passed
 * the deadline (logged as such), or CKR_GENERAL_ERROR (logged). */
static CK_RV handshake(struct host *h, struct p11i_call *c, int64_t deadline)
{
	const struct p11i_kit *k = h->kit;
	struct p11i_mpr r;
	uint64_t proto = 0;
	int ok = 0, st;
	size_t len, n, blen = 0;
	const char *key, *build = NULL, *err = NULL;
	char t[32];

	go_duration(t, sizeof t, k->timeout_ns);
	st = ctl_read(h, c, deadline, &len);
	if (st == P11I_RUN_TIMEOUT) {
		p11i_log("the host did not start within the deadline (timeout=%s): deadline exceeded: killed the host; the next call starts a new one", t);
		return CKR_DEVICE_ERROR;
	}
	if (st != P11I_RUN_OK) {
		p11i_log("the host did not start (%s): see the host's lines above", read_failure(st, c));
		return CKR_GENERAL_ERROR;
	}
	p11i_mpr_init(&r, c->rbuf + P11I_MP_HEADER, len, NULL, 0);
	for (uint32_t i = p11i_mpr_map(&r, 16); i > 0 && !r.failed; i--) {
		key = p11i_mpr_str(&r, &n);
		if (key_is(key, n, "protocol"))
			proto = p11i_mpr_uint(&r);
		else if (key_is(key, n, "build"))
			build = p11i_mpr_str(&r, &blen);
		else
			p11i_mpr_skip(&r);
	}
	if (p11i_mpr_finish(&r) != 0) {
		p11i_log("host handshake: malformed message");
		return CKR_GENERAL_ERROR;
	}
	if (proto != (uint64_t)img.protocol || !key_is(build, blen, img.build_id)) {
		p11i_log("the host speaks protocol %llu of build \"%.*s\", this library protocol %d of build \"%s\": rebuild both with make",
			 (unsigned long long)proto, build != NULL ? (int)blen : 0, build != NULL ? build : "", img.protocol,
			 img.build_id);
		return CKR_GENERAL_ERROR;
	}
	p11i_mpw_reset(&c->w);
	p11i_mpw_uint(&c->w, P11I_OP_OPEN);
	p11i_mpw_map(&c->w, 3);
	p11i_mpw_str(&c->w, "module", 6);
	p11i_mpw_str(&c->w, k->module, strlen(k->module));
	p11i_mpw_str(&c->w, "memory_limit", 12);
	p11i_mpw_uint(&c->w, k->memory_limit);
	p11i_mpw_str(&c->w, "module_sha256", 13);
	p11i_mpw_str(&c->w, k->module_sha256, strlen(k->module_sha256));
	p11i_mpw_frame(&c->w);
	if (c->w.err != 0 || send_all(c, h->ctl, c->w.buf, c->w.len) != P11I_RUN_OK) {
		p11i_log("host handshake: %s", c->w.err != 0 ? "out of memory" : "connection closed by peer");
		return CKR_GENERAL_ERROR;
	}
	st = ctl_read(h, c, deadline, &len);
	if (st == P11I_RUN_TIMEOUT) {
		p11i_log("loading %s (its ELF constructors and C_GetFunctionList) did not finish within the deadline (timeout=%s): deadline exceeded: killed the host; the next call starts a new one",
			 k->module, t);
		return CKR_DEVICE_ERROR;
	}
	if (st != P11I_RUN_OK) {
		p11i_log("the host died loading %s (%s): see the host's lines above", k->module, read_failure(st, c));
		return CKR_GENERAL_ERROR;
	}
	struct p11i_iface ifs[P11I_MAX_IFACES];
	int nif = 0, def = 0;
	p11i_mpr_init(&r, c->rbuf + P11I_MP_HEADER, len, NULL, 0);
	for (uint32_t i = p11i_mpr_map(&r, 16); i > 0 && !r.failed; i--) {
		key = p11i_mpr_str(&r, &n);
		if (key_is(key, n, "ok"))
			ok = p11i_mpr_bool(&r);
		else if (key_is(key, n, "error"))
			err = p11i_mpr_str(&r, &len);
		else if (key_is(key, n, "interfaces"))
			nif = read_interfaces(&r, ifs);
		else if (key_is(key, n, "default"))
			def = (int)p11i_mpr_uint_max(&r, P11I_MAX_IFACES, "default interface");
		else
			p11i_mpr_skip(&r);
	}
	if (p11i_mpr_finish(&r) != 0) {
		p11i_log("host open reply: malformed message");
		return CKR_GENERAL_ERROR;
	}
	if (!ok) {
		if (err == NULL)
			len = 0;
		if (len >= 14 && memcmp(err, "module_sha256:", 14) == 0)
			p11i_log("%.*s", (int)len, err); /* the module is there, but not the pinned one */
		else
			p11i_log("%.*s (set module=/path/to/vendor.so, or P11ISOLATE_MODULE)", (int)len, err != NULL ? err : "");
		return CKR_GENERAL_ERROR;
	}
	if (nif > 0) {
		pthread_mutex_lock(&sup.mu);
		memcpy(sup.ifaces, ifs, sizeof ifs[0] * (size_t)nif);
		sup.niface = nif;
		sup.iface_def = def < nif ? def : 0;
		sup.ifaces_known = 1;
		pthread_mutex_unlock(&sup.mu);
	}
	return CKR_OK;
}

static uint64_t next_gen(uint64_t g) { return g + 1 >= 1 << 16 ? 1 : g + 1; }

/* adopt takes the host a C_GetInterface before C_Initialize started
 * (probe) when this C_Initialize's settings are the ones it was started
 * with: the spawn and the module's load are done, only the replay is left.
 * NULL when there is none, or it has other settings (then it is ended).
 * Called by start (sup.mu released, sup.starting set). */
static struct host *adopt(struct p11i_kit *k)
{
	struct pollfd pf;

	pthread_mutex_lock(&sup.mu);
	struct host *h = sup.probe;
	int match = sup.probe_match;
	sup.probe = NULL;
	/* One that ended while it waited (its pidfd readable) is no use. */
	if (h != NULL && match && h->pidfd >= 0) {
		pf = (struct pollfd){ .fd = h->pidfd, .events = POLLIN };
		match = poll(&pf, 1, 0) == 0;
	}
	if (h != NULL && match) {
		kit_unref(h->kit);
		h->kit = k;
		k->refs++;
		h->gen = sup.gen;
		sandbox_check(k, &h->rep); /* the line its start kept quiet */
	}
	pthread_mutex_unlock(&sup.mu);
	if (h == NULL || match)
		return h;
	h->dead = 1;
	host_end(h, 1);
	pthread_mutex_lock(&sup.mu);
	host_unref(h);
	pthread_mutex_unlock(&sup.mu);
	return NULL;
}

/* start spawns a host with the settings k, checks its handshake and, if
 * replay, replays the application's C_Initialize, all under one deadline
 * (sup.mu released, sup.starting set: no call reaches the host before the
 * replay, and the kit stays put). It returns the vendor's answer;
 * CKR_DEVICE_ERROR when the start passed its deadline or the host died;
 * CKR_GENERAL_ERROR when it could not start. */
static CK_RV start(struct p11i_kit *k, int replay, struct host **out)
{
	int pair[2], status[2] = { -1, -1 }, null_fd, pidfd = -1, err = 0, errfd;
	int64_t deadline = k->timeout_ns > 0 ? now_ns() + k->timeout_ns : 0;
	struct p11i_sandbox sb = k->sb;
	struct p11i_report rep;
	struct relay *relay;
	struct host *h;
	long pid;
	CK_RV rv;

	if (replay && (h = adopt(k)) != NULL)
		goto replay;
	int exe = kit_exe(k);
	if (exe < 0)
		return CKR_GENERAL_ERROR;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
		p11i_log("socketpair: %s", strerror(errno));
		return CKR_GENERAL_ERROR;
	}
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (sb.profile != P11I_SANDBOX_OFF && pipe2(status, O_CLOEXEC) != 0)
		status[0] = status[1] = -1;
	sb.status_fd = status[1];
	errfd = relay_new(&relay);
	pid = p11i_spawn(exe, pair[1], errfd >= 0 ? errfd : p11i_log_fd(), null_fd,
			 k->argv, k->envp, &sb, &rep, &pidfd, &err);
	/* Only the host may hold its ends: its death must read as EOF on the
	 * control channel and on its stderr right away. */
	close(pair[1]);
	if (null_fd >= 0)
		close(null_fd);
	if (errfd >= 0)
		close(errfd);
	if (status[1] >= 0)
		close(status[1]);
	if (status[0] >= 0 && (pid < 0 || !(rep.layers & (1u << P11I_L_INIT)))) {
		close(status[0]); /* no init: nobody reports on the host */
		status[0] = -1;
	}
	if (pid < 0) {
		close(pair[0]);
		p11i_log("cannot start the host: clone3: %s", strerror(err));
		return CKR_GENERAL_ERROR;
	}
	if (relay != NULL)
		__atomic_store_n(&relay->pid, (pid_t)pid, __ATOMIC_RELEASE);
	h = calloc(1, sizeof *h);
	if (h == NULL) {
		/* Nothing to supervise it with: it goes at once. */
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
		siginfo_t si;
		waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED);
		close(pidfd);
		close(pair[0]);
		if (status[0] >= 0)
			close(status[0]);
		return CKR_HOST_MEMORY;
	}
	h->refs = 1;
	h->kit = k;
	k->refs++;
	h->pid = (pid_t)pid;
	h->pidfd = pidfd;
	h->ctl = pair[0];
	h->status_fd = status[0];
	h->gen = sup.gen;
	p11i_fd_register(h->ctl);
	p11i_fd_register(h->pidfd);
	if (h->status_fd >= 0) {
		fcntl(h->status_fd, F_SETFL, O_NONBLOCK);
		p11i_fd_register(h->status_fd);
	}

	h->rep = rep;
	struct p11i_call ctl;
	p11i_call_init(&ctl, NULL, 0, 0);
	rv = sandbox_check(k, &rep) != 0 ? CKR_GENERAL_ERROR : handshake(h, &ctl, deadline);
	p11i_call_free(&ctl);
	if (rv != CKR_OK)
		goto fail;
	if (!replay) {
		*out = h;
		return CKR_OK;
	}

	/* The application's C_Initialize, replayed before any other call may
	 * reach the host. */
replay:;
	struct chan *c = chan_new(h);
	if (c == NULL) {
		p11i_log("C_Initialize: handing the host a channel: %s", strerror(errno));
		rv = CKR_GENERAL_ERROR;
		goto fail;
	}
	h->count = 1;
	uintptr_t a[1] = { (uintptr_t)sup.init_args };
	int64_t left = deadline != 0 ? deadline - now_ns() : 0;
	int st = p11i_run(&c->c, c->fd, 0, a, deadline != 0 ? (left > 1000 ? left : 1000) : 0);
	if (st == P11I_RUN_OK || st == P11I_RUN_ANSWER) {
		pthread_mutex_lock(&sup.mu);
		note_answer(h, c, 0, st);
		pthread_mutex_unlock(&sup.mu);
		rv = c->c.code;
		h->idle[h->nidle++] = c;
	} else {
		report(h, 0, st, c->c.why);
		chan_close(c);
		rv = CKR_DEVICE_ERROR;
	}
	if (rv != CKR_OK) {
		if (rv != CKR_DEVICE_ERROR)
			p11i_log("the vendor module %s returned 0x%lx from C_Initialize%s", k->module, (unsigned long)rv,
				 k->env_hint != NULL ? k->env_hint : "");
		goto fail;
	}
	*out = h;
	return CKR_OK;
fail:
	h->dead = 1;
	host_end(h, 0);
	host_unref(h);
	return rv;
}

/* wait_start waits out a host's start (sup.mu held, released meanwhile). */
static void wait_start(void)
{
	while (sup.starting)
		pthread_cond_wait(&sup.started, &sup.mu);
}

/* start_host runs start with sup.mu released (held on entry and
 * return), after any start under way. Only a host that started takes up a
 * handle generation. */
static CK_RV start_host(struct host **out)
{
	wait_start();
	sup.starting = 1;
	pthread_mutex_unlock(&sup.mu);
	CK_RV rv = start(sup.kit, 1, out);
	pthread_mutex_lock(&sup.mu);
	if (rv == CKR_OK)
		sup.gen = next_gen(sup.gen);
	sup.starting = 0;
	pthread_cond_broadcast(&sup.started);
	return rv;
}

/* failed_start sets the back-off after a host failed to start: the first
 * retry is immediate (a one-off fault must not delay recovery), later ones
 * wait 100 ms, 200 ms, ... up to 5 s (sup.mu held). */
static void failed_start(void)
{
	char d[32];

	if (sup.next_start == 0 && sup.backoff == 0)
		sup.backoff = 1;
	else
		sup.backoff = sup.backoff * 2 < MIN_BACKOFF ? MIN_BACKOFF : sup.backoff * 2 > MAX_BACKOFF ? MAX_BACKOFF : sup.backoff * 2;
	sup.next_start = now_ns() + sup.backoff;
	if (sup.backoff >= MIN_BACKOFF)
		p11i_log("starting a new host for %s failed again; the next attempt waits %s", sup.kit->module,
			 go_duration(d, sizeof d, sup.backoff));
}

/* backoff_cap bounds how long one call waits for the back-off: its
 * deadline, or the longest back-off when calls have none. */
static int64_t backoff_cap(void) { return sup.kit->timeout_ns > 0 ? sup.kit->timeout_ns : MAX_BACKOFF; }

/* running_host returns the running host with a reference for the caller,
 * starting a fresh one if the last died (sup.mu held; released while a
 * host starts and while a caller waits out the back-off). */
static CK_RV running_host(struct host **out)
{
	int waited = 0;

	for (;;) {
		wait_start();
		if (!sup.initialized)
			return CKR_CRYPTOKI_NOT_INITIALIZED;
		if (sup.host != NULL) {
			sup.host->refs++;
			*out = sup.host;
			return CKR_OK;
		}
		int64_t wait = sup.next_start - now_ns();
		if (sup.next_start != 0 && wait > 0) {
			/* Callers wait out the back-off instead of failing in
			 * a tight loop, once and never past their deadline;
			 * then one of them tries again. */
			if (waited)
				return CKR_DEVICE_ERROR;
			int64_t cap = backoff_cap();
			pthread_mutex_unlock(&sup.mu);
			sleep_ns(wait < cap ? wait : cap);
			pthread_mutex_lock(&sup.mu);
			waited = 1;
			continue;
		}
		struct host *h = NULL;
		if (start_host(&h) != CKR_OK) {
			failed_start();
			return CKR_DEVICE_ERROR;
		}
		sup.host = h;
		sup.backoff = sup.next_start = 0;
	}
}

/* initialize starts the first host of a C_Initialize with the settings in
 * force (sup.mu held). */
static CK_RV initialize(void)
{
	struct host *h = NULL;
	CK_RV rv;

	/* A vendor that dies at every start gets no fork storm from an
	 * application retrying C_Initialize in a loop: the same module waits
	 * out the back-off after a host failure. */
	if (sup.failed == NULL || strcmp(sup.failed, sup.kit->module) != 0)
		sup.backoff = sup.next_start = 0;
	int64_t wait = sup.next_start - now_ns();
	if (sup.next_start != 0 && wait > 0) {
		int64_t cap = backoff_cap();
		pthread_mutex_unlock(&sup.mu);
		sleep_ns(wait < cap ? wait : cap);
		pthread_mutex_lock(&sup.mu);
		wait_start();
		if (sup.initialized)
			return CKR_CRYPTOKI_ALREADY_INITIALIZED;
		if (now_ns() < sup.next_start)
			return CKR_DEVICE_ERROR;
	}
	rv = start_host(&h);
	if (rv != CKR_OK) {
		if (rv == CKR_DEVICE_ERROR || rv == CKR_GENERAL_ERROR) {
			free(sup.failed);
			sup.failed = strdup(sup.kit->module);
			failed_start();
		}
		return rv;
	}
	free(sup.failed);
	sup.failed = NULL;
	sup.backoff = sup.next_start = 0;
	sup.host = h;
	sup.initialized = 1;
	return CKR_OK;
}

/* env_snapshot copies the process's environment now: what a forked child
 * compares its own with, to know whether its parent's kit still holds. */
static char **env_snapshot(void)
{
	int n = list_len(environ);
	char **l = calloc((size_t)n + 1, sizeof(char *));

	for (int i = 0; i < n && l != NULL; i++)
		l[i] = strdup(environ[i]);
	return l;
}

/* same_inputs: whether this C_Initialize resolves from what the kit in
 * force was resolved from (the environment, pReserved, the effective
 * ids: a daemon's worker may have dropped root since). */
static int same_inputs(const struct p11i_init *in)
{
	int n = list_len(environ);

	if (geteuid() != sup.src_uid || getegid() != sup.src_gid)
		return 0;
	if ((in->reserved == NULL) != (sup.src_reserved == NULL) ||
	    (in->reserved != NULL && strcmp(in->reserved, sup.src_reserved) != 0))
		return 0;
	if (sup.src_env == NULL || list_len(sup.src_env) != n)
		return 0;
	for (int i = 0; i < n; i++)
		if (strcmp(environ[i], sup.src_env[i]) != 0)
			return 0;
	return 1;
}

/* install makes k the settings in force, with the arguments of this
 * C_Initialize (sup.mu held). */
static CK_RV install(struct p11i_kit *k, const struct p11i_init *in)
{
	CK_C_INITIALIZE_ARGS *args = init_replay(in, k->vendor);

	if ((!in->null || k->vendor != NULL) && args == NULL) {
		if (k != sup.kit)
			kit_free(k);
		return CKR_HOST_MEMORY;
	}
	if (k != sup.kit) {
		k->refs++;
		kit_unref(sup.kit);
		sup.kit = k;
		free_list(sup.src_env);
		sup.src_env = env_snapshot();
		free(sup.src_reserved);
		sup.src_reserved = in->reserved != NULL ? strdup(in->reserved) : NULL;
		sup.src_uid = geteuid();
		sup.src_gid = getegid();
	}
	init_args_free(sup.init_args);
	sup.init_args = args;
	return CKR_OK;
}

/* plan_mode has the host image resolve the settings of a forked child's
 * C_Initialize (p11isolate-host --plan, internal/plan): Go cannot run
 * here, and the resolution must be the one the first process makes. The
 * image runs unsandboxed, with this process's environment, as our own
 * code: it loads no module. Returns the encoded plan (malloc'd) or NULL,
 * logged (sup.mu held). */
static void *plan_mode(const struct p11i_init *in, size_t *len)
{
	char *argv[4] = { "p11isolate-host", "--plan", in->reserved, NULL }, err[512];
	struct p11i_sandbox sb = { .profile = P11I_SANDBOX_OFF, .status_fd = -1 };
	struct p11i_report rep;
	struct p11i_call c;
	int pair[2], exe, null_fd, pidfd = -1, e = 0, st;
	void *plan = NULL;
	long pid;

	exe = sup.kit != NULL ? kit_exe(sup.kit) : -1;
	if (exe >= 0)
		exe = fcntl(exe, F_DUPFD_CLOEXEC, 0);
	if (exe < 0 && (exe = p11i_host_exe(NULL, err, sizeof err)) < 0) {
		p11i_log("%s", err);
		return NULL;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
		close(exe);
		return NULL;
	}
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid = p11i_spawn(exe, pair[1], p11i_log_fd(), null_fd, argv, environ, &sb, &rep,
			 &pidfd, &e);
	close(pair[1]);
	close(exe);
	if (null_fd >= 0)
		close(null_fd);
	if (pid < 0) {
		close(pair[0]);
		p11i_log("cannot start the host image to resolve the settings: clone3: %s", strerror(e));
		return NULL;
	}
	p11i_call_init(&c, NULL, 0, 0);
	set_timeout(pair[0], 30 * (int64_t)1000000000);
	st = recv_frame(&c, pair[0], 30 * (int64_t)1000000000, len, 0);
	if (st == P11I_RUN_OK && (plan = malloc(*len ? *len : 1)) != NULL)
		memcpy(plan, c.rbuf + P11I_MP_HEADER, *len);
	else
		p11i_log("the host image did not resolve the settings (%s): see its lines above", read_failure(st, &c));
	p11i_call_free(&c);
	close(pair[0]);
	syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	siginfo_t si;
	while (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) != 0 && errno == EINTR)
		;
	close(pidfd);
	return plan;
}

/* sup_initialize is C_Initialize once its arguments were read. plan is
 * the settings Go resolved, in the process that loaded the library; NULL
 * in a forked child, which keeps its parent's kit when nothing it resolves
 * from changed and else has the host image make a plan. */
static CK_RV sup_initialize(const void *plan, size_t len, const struct p11i_init *in, pid_t *host_pid)
{
	struct p11i_kit *k;
	CK_RV rv;

	pthread_mutex_lock(&sup.mu);
	wait_start();
	if (sup.initialized) {
		pthread_mutex_unlock(&sup.mu);
		return CKR_CRYPTOKI_ALREADY_INITIALIZED;
	}
	k = sup.kit;
	sup.probe_match = sup.probe != NULL && plan != NULL && len == sup.probe_len && memcmp(plan, sup.probe_plan, len) == 0;
	free(sup.probe_plan);
	sup.probe_plan = NULL;
	if (plan != NULL) {
		k = kit_parse(plan, len);
	} else if (k == NULL || !same_inputs(in)) {
		void *made = plan_mode(in, &len);
		k = made != NULL ? kit_parse(made, len) : NULL;
		free(made);
	}
	/* The new settings are in force from now on, for this process's
	 * hosts and the children it forks. */
	rv = k == NULL ? CKR_GENERAL_ERROR : install(k, in);
	if (rv == CKR_OK)
		rv = initialize();
	/* As a module loaded directly answers a forked child's first
	 * C_Initialize when its parent was initialized: its state stands. */
	if (rv == CKR_OK && sup.inherited) {
		sup.inherited = 0;
		rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
	}
	if (sup.host != NULL)
		*host_pid = sup.host->pid;
	pthread_mutex_unlock(&sup.mu);
	return rv;
}

/* p11i_sup_initialize is C_Initialize with its trace line (the settings
 * that turn the trace on come with it); argp is the application's
 * pInitArgs, for the trace. */
CK_RV p11i_sup_initialize(const void *plan, size_t len, const struct p11i_init *in, uintptr_t argp)
{
	struct trace_pre pre = { 0 };
	pid_t host_pid = 0;
	int64_t t0 = now_ns();
	CK_RV rv = sup_initialize(plan, len, in, &host_pid);

	if (tracing())
		trace_call(0, &argp, &pre, rv, now_ns() - t0, host_pid);
	return rv;
}

/* probe starts a host to learn the vendor's interfaces: C_GetInterface
 * comes before C_Initialize, with the settings of the environment (sup.mu
 * held, released during the start). The host waits for a C_Initialize of
 * the same settings to take it over (adopt); one made from the settings in
 * force (after a C_Finalize) is ended at once. Its failures are not
 * logged: C_Initialize, with the same settings, will say why. */
static void probe(void)
{
	struct p11i_kit *k = sup.kit;
	struct host *h = NULL;
	void *plan = NULL;
	size_t len = 0;

	log_quiet = 1;
	if (k == NULL) {
		/* The settings as C_Initialize will resolve them: in Go where it
		 * runs, else (a forked child) by the host image. */
		struct p11i_init in = { .null = 1 };
		plan = p11i_forked_child() ? plan_mode(&in, &len) : p11i_go_plan(&len);
		k = plan != NULL ? kit_parse(plan, len) : NULL;
		if (k == NULL) {
			free(plan);
			log_quiet = 0;
			return;
		}
	}
	k->refs++;
	sup.starting = 1;
	pthread_mutex_unlock(&sup.mu);
	CK_RV rv = start(k, 0, &h);
	log_quiet = 0;
	/* Kept for C_Initialize when it came from the plan a C_Initialize
	 * of this environment makes; else ended. */
	if (rv == CKR_OK && plan == NULL) {
		h->dead = 1;
		host_end(h, 1);
	}
	pthread_mutex_lock(&sup.mu);
	if (rv == CKR_OK && plan != NULL) {
		sup.probe = h;
		sup.probe_plan = plan;
		sup.probe_len = len;
		plan = NULL;
	} else if (rv == CKR_OK) {
		host_unref(h);
	}
	free(plan);
	sup.starting = 0;
	pthread_cond_broadcast(&sup.started);
	kit_unref(k);
}

int p11i_sup_interfaces(struct p11i_iface *out, int max, int *def)
{
	int n = 0;

	pthread_mutex_lock(&sup.mu);
	wait_start();
	if (!sup.ifaces_known)
		probe();
	if (sup.ifaces_known) {
		n = sup.niface < max ? sup.niface : max;
		memcpy(out, sup.ifaces, sizeof out[0] * (size_t)n);
		*def = sup.iface_def < n ? sup.iface_def : 0;
	}
	pthread_mutex_unlock(&sup.mu);
	return n;
}

int p11i_sup_initialized(void)
{
	pthread_mutex_lock(&sup.mu);
	int r = sup.initialized;
	pthread_mutex_unlock(&sup.mu);
	return r;
}

static CK_RV child_initialize(uintptr_t *args)
{
	struct p11i_init in;
	CK_RV rv = p11i_init_read((const void *)args[0], &in);

	if (rv == CKR_OK)
		rv = p11i_sup_initialize(NULL, 0, &in, args[0]);
	p11i_init_free(&in);
	return rv;
}

static CK_RV finalize(int route, uintptr_t *a, pid_t *host_pid)
{
	struct host *h, *gone;
	struct chan *c = NULL;
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&sup.mu);
	wait_start();
	if (!sup.initialized) {
		pthread_mutex_unlock(&sup.mu);
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	h = sup.host;
	if (h != NULL) {
		*host_pid = h->pid;
		h->refs++; /* finalize's own, to the end */
		c = chan_get(h, 1);
		if (c != NULL)
			h->refs++; /* run_on's */
	}
	int64_t timeout = timeout_for(sup.kit, 1);
	pthread_mutex_unlock(&sup.mu);
	if (h != NULL) {
		rv = c != NULL ? run_on(h, c, 1, route, a, timeout) : CKR_DEVICE_ERROR;
		if (rv != CKR_OK && rv != CKR_DEVICE_ERROR) {
			pthread_mutex_lock(&sup.mu);
			host_unref(h);
			pthread_mutex_unlock(&sup.mu);
			return rv; /* e.g. CKR_ARGUMENTS_BAD: still initialized */
		}
	}
	p11i_sessions_clear();
	pthread_mutex_lock(&sup.mu);
	sup.initialized = 0;
	gone = sup.host; /* sup's reference comes with it */
	sup.host = NULL;
	/* A caller still blocked in the host (C_WaitForSlotEvent) sees it go
	 * and returns CKR_CRYPTOKI_NOT_INITIALIZED. */
	if (h != NULL)
		h->retired = 1;
	if (gone != NULL) /* sup.host is never a dead host */
		gone->retired = gone->dead = 1;
	pthread_mutex_unlock(&sup.mu);
	if (gone != NULL)
		host_end(gone, 1);
	pthread_mutex_lock(&sup.mu);
	host_unref(gone);
	host_unref(h);
	pthread_mutex_unlock(&sup.mu);
	return rv;
}

/* sup_call makes call id (1 and up) and tells the pid of the host it
 * went to. */
static CK_RV sup_call(int id, int route, uintptr_t *args, pid_t *host_pid)
{
	struct host *h;
	struct chan *c;
	CK_RV rv;

	if (id == 1)
		return finalize(route, args, host_pid);
	pthread_mutex_lock(&sup.mu);
	rv = running_host(&h);
	if (rv != CKR_OK) {
		pthread_mutex_unlock(&sup.mu);
		return rv;
	}
	*host_pid = h->pid;
	c = chan_get(h, id);
	int64_t timeout = timeout_for(h->kit, id);
	if (c == NULL) {
		host_unref(h);
		pthread_mutex_unlock(&sup.mu);
		return CKR_DEVICE_ERROR;
	}
	pthread_mutex_unlock(&sup.mu);
	return run_on(h, c, id, route, args, timeout);
}

CK_RV p11i_sup_call(int id, int route, uintptr_t *args)
{
	pid_t host_pid = 0;

	if (id < 0 || id >= P11I_NFUNCS)
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (id == 0)
		return child_initialize(args);
	if (!tracing())
		return sup_call(id, route, args, &host_pid);
	struct trace_pre pre = { 0 };
	trace_before(id, args, &pre);
	int64_t t0 = now_ns();
	CK_RV rv = sup_call(id, route, args, &host_pid);
	trace_call(id, args, &pre, rv, now_ns() - t0, host_pid);
	return rv;
}

/* p11i_sup_forked runs in a new child right after the fork: nothing of the
 * parent's hosts is the child's (the shim closed their fds); it keeps the
 * settings, and knows whether the parent was initialized. */
void p11i_sup_forked(void)
{
	sup_mutex_init();
	sup.starting = 0;
	p11i_log_forked();
	trace_forked();
	p11i_run_forked();
	sup.inherited = sup.initialized;
	sup.initialized = 0;
	sup.host = NULL; /* forgotten, never killed: it is the parent's */
	sup.probe = NULL;
	free(sup.probe_plan);
	sup.probe_plan = NULL;
	sup.next_start = sup.backoff = 0;
	free(sup.failed);
	sup.failed = NULL;
}
