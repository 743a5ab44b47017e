/* child: libp11isolate.so in a process forked after it was loaded, where Go
 * cannot run. The parent leaves a kit (struct p11i_kit: the verified host
 * image, the resolved settings, the sandbox plan, its C_Initialize
 * arguments); the child starts a host of its own from it and makes every
 * call through the C data plane (p11i_run), with the supervision a call
 * needs: the deadline, the host's death, its replacement, the log line.
 * Included by proxy/plane.c after plane.c. */
#include "shim.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define MAX_CHANNELS 256 /* wire.MaxChannelsPerHost */
#define OP_OPEN 1
#define OP_CHANNEL 2

static struct p11i_kit *kit; /* the parent's; inherited by a fork */

void p11i_kit_set(struct p11i_kit *k) { __atomic_store_n(&kit, k, __ATOMIC_RELEASE); }

struct chan {
	int fd;
	struct p11i_call c;
	void *mem;
};

static struct {
	pthread_mutex_t mu;
	int initialized;  /* the child's own C_Initialize */
	int inherited;    /* the parent was initialized at the fork */
	int up;           /* a host runs */
	pid_t pid;
	int pidfd, ctl, log_fd;
	int status_fd; /* the namespace init reports the host's wait status here; -1: none */
	uint64_t gen;
	struct chan *idle[MAX_CHANNELS];
	int nidle, count;
	int64_t next_start; /* back-off after a host failed at start */
	int64_t backoff;
} ch = { .mu = PTHREAD_MUTEX_INITIALIZER, .pidfd = -1, .ctl = -1, .log_fd = -1, .status_fd = -1 };

/* p11i_child_reset runs in the child right after the fork: nothing of the
 * parent's state is the child's (its channels are closed by the shim). */
void p11i_child_reset(int was_child)
{
	struct p11i_kit *k = __atomic_load_n(&kit, __ATOMIC_ACQUIRE);

	/* A fork of a fork inherits its parent's own initialization. */
	ch.inherited = was_child ? ch.initialized : k != NULL && k->parent_initialized;
	pthread_mutex_init(&ch.mu, NULL);
	ch.initialized = 0;
	ch.up = 0;
	ch.pidfd = ch.ctl = ch.log_fd = ch.status_fd = -1;
	ch.nidle = ch.count = 0; /* the parent's channels are not ours: forgotten */
	ch.next_start = ch.backoff = 0;
	ch.gen = 1 << 15; /* handles of the parent's host are dead here */
}

/* log_fd is where the child's log lines and its host's stderr go. */
static int log_fd(void)
{
	if (ch.log_fd < 0) {
		ch.log_fd = 2;
		if (kit->log_path != NULL) {
			int fd = open(kit->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
			if (fd >= 0)
				ch.log_fd = fd;
		}
	}
	return ch.log_fd;
}

static void child_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void child_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	n = snprintf(line, sizeof line, "p11isolate[%d]: ", (int)getpid());
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	p11i_log_write(log_fd(), line, (size_t)n);
}

/* ------------------------------------------------------------------ */
/* The host                                                            */

static void close_chan(struct chan *c)
{
	p11i_fd_unregister(c->fd);
	close(c->fd);
	p11i_call_free(&c->c);
	if (c->mem != NULL)
		munmap(c->mem, P11I_REGION_SIZE);
	free(c);
}

/* kill_host ends the host (if any): its control channel closes, SIGKILL,
 * its process group, reaped. */
static void kill_host(void)
{
	if (!ch.up)
		return;
	ch.up = 0;
	for (int i = 0; i < ch.nidle; i++)
		close_chan(ch.idle[i]);
	ch.nidle = ch.count = 0;
	p11i_fd_unregister(ch.ctl);
	close(ch.ctl);
	ch.ctl = -1;
	if (ch.pidfd >= 0) {
		syscall(SYS_pidfd_send_signal, ch.pidfd, SIGKILL, NULL, 0);
		if (ch.pid > 0)
			kill(-ch.pid, SIGKILL);
		siginfo_t si;
		waitid(P_PIDFD, (id_t)ch.pidfd, &si, WEXITED);
		close(ch.pidfd);
		ch.pidfd = -1;
	}
	if (ch.status_fd >= 0) {
		close(ch.status_fd);
		ch.status_fd = -1;
	}
}

/* how_it_ended describes how the host ended, if it has within 200 ms:
 * from its init's report (a pid namespace) or its own wait status. */
static const char *how_it_ended(char *buf, size_t len)
{
	struct pollfd pf = { .fd = ch.pidfd, .events = POLLIN };
	siginfo_t si;
	int st;

	buf[0] = '\0';
	if (ch.pidfd < 0 || poll(&pf, 1, 200) != 1)
		return buf;
	if (ch.status_fd >= 0 && read(ch.status_fd, &st, sizeof st) == (ssize_t)sizeof st) {
		if (WIFSIGNALED(st))
			snprintf(buf, len, ": it was killed by signal SIG%s", sigabbrev_np(WTERMSIG(st)));
		else if (WIFEXITED(st))
			snprintf(buf, len, ": it exited with status %d", WEXITSTATUS(st));
		return buf;
	}
	memset(&si, 0, sizeof si);
	if (waitid(P_PIDFD, (id_t)ch.pidfd, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid != 0) {
		if (si.si_code == CLD_EXITED)
			snprintf(buf, len, ": it exited with status %d", si.si_status);
		else if (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED)
			snprintf(buf, len, ": it was killed by signal SIG%s", sigabbrev_np(si.si_status));
	}
	return buf;
}

/* ctl_read reads one control frame's body into c's buffer. */
static int ctl_read(struct p11i_call *c, int64_t timeout_ns, size_t *len)
{
	if (timeout_ns != c->timeout_set) {
		set_timeout(ch.ctl, timeout_ns);
		c->timeout_set = timeout_ns;
	}
	return recv_frame(c, ch.ctl, timeout_ns, len);
}

static int key_is(const char *k, size_t n, const char *want) { return n == strlen(want) && memcmp(k, want, n) == 0; }

/* handshake checks the host's hello and has it load the module. */
static int handshake(struct p11i_call *c, int64_t deadline)
{
	struct p11i_mpr r;
	uint64_t proto = 0;
	int build_ok = 0, ok = 0;
	size_t len, n;
	const char *k, *v;

	if (ctl_read(c, deadline ? deadline - now_ns() : 0, &len) != P11I_RUN_OK) {
		child_log("the host did not start (no handshake): see the host's lines above");
		return -1;
	}
	p11i_mpr_init(&r, c->rbuf + P11I_MP_HEADER, len, NULL, 0);
	for (uint32_t i = p11i_mpr_map(&r, 16); i > 0 && !r.failed; i--) {
		k = p11i_mpr_str(&r, &n);
		if (key_is(k, n, "protocol")) {
			proto = p11i_mpr_uint(&r);
		} else if (key_is(k, n, "build")) {
			v = p11i_mpr_str(&r, &len);
			build_ok = v != NULL && key_is(v, len, kit->build_id);
		} else {
			p11i_mpr_skip(&r);
		}
	}
	if (p11i_mpr_finish(&r) != 0 || proto != (uint64_t)kit->protocol || !build_ok) {
		child_log("the host's handshake is not this build's: rebuild both with make");
		return -1;
	}
	p11i_mpw_reset(&c->w);
	p11i_mpw_uint(&c->w, OP_OPEN);
	p11i_mpw_map(&c->w, 3);
	p11i_mpw_str(&c->w, "module", 6);
	p11i_mpw_str(&c->w, kit->module, strlen(kit->module));
	p11i_mpw_str(&c->w, "memory_limit", 12);
	p11i_mpw_uint(&c->w, kit->memory_limit);
	p11i_mpw_str(&c->w, "module_sha256", 13);
	p11i_mpw_str(&c->w, kit->module_sha256, strlen(kit->module_sha256));
	p11i_mpw_frame(&c->w);
	if (c->w.err != 0 || send_all(c, ch.ctl, c->w.buf, c->w.len) != P11I_RUN_OK ||
	    ctl_read(c, deadline ? deadline - now_ns() : 0, &len) != P11I_RUN_OK) {
		child_log("the host died or hung loading %s", kit->module);
		return -1;
	}
	p11i_mpr_init(&r, c->rbuf + P11I_MP_HEADER, len, NULL, 0);
	for (uint32_t i = p11i_mpr_map(&r, 16); i > 0 && !r.failed; i--) {
		k = p11i_mpr_str(&r, &n);
		if (key_is(k, n, "ok")) {
			ok = p11i_mpr_bool(&r);
		} else if (key_is(k, n, "error")) {
			v = p11i_mpr_str(&r, &len);
			if (v != NULL && len > 0)
				child_log("%.*s", (int)len, v);
		} else {
			p11i_mpr_skip(&r);
		}
	}
	if (p11i_mpr_finish(&r) != 0 || !ok)
		return -1;
	set_timeout(ch.ctl, 0);
	c->timeout_set = 0;
	return 0;
}

/* new_chan opens a call channel with a shared region and hands its other
 * ends to the host. */
static struct chan *new_chan(void)
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
	c->mem = p11i_region_new(P11I_REGION_SIZE, &memfd); /* none: buffers cross inline */
	p11i_mpw_uint(&w, OP_CHANNEL);
	p11i_mpw_uint(&w, memfd >= 0 ? P11I_REGION_SIZE : 0);
	p11i_mpw_frame(&w);
	int fds[2] = { pair[1], memfd };
	char cbuf[CMSG_SPACE(sizeof fds)];
	struct iovec iov = { w.buf, w.len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf };
	struct cmsghdr *cm;
	memset(cbuf, 0, sizeof cbuf);
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * (memfd >= 0 ? 2 : 1));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * (memfd >= 0 ? 2 : 1));
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * (memfd >= 0 ? 2 : 1));
	ssize_t sent, want = (ssize_t)w.len;
	do
		sent = w.err == 0 ? sendmsg(ch.ctl, &mh, MSG_NOSIGNAL) : -1;
	while (sent < 0 && errno == EINTR);
	p11i_mpw_free(&w);
	close(pair[1]);
	if (memfd >= 0)
		close(memfd);
	c->fd = pair[0];
	p11i_fd_register(c->fd);
	p11i_call_init(&c->c, c->mem, c->mem != NULL ? P11I_REGION_SIZE : 0, ch.gen);
	if (sent != want) {
		close_chan(c);
		return NULL;
	}
	return c;
}

/* get_chan takes an idle channel or opens one (ch.mu held). */
static struct chan *get_chan(void)
{
	struct chan *c;

	if (ch.nidle > 0)
		return ch.idle[--ch.nidle];
	if (ch.count >= MAX_CHANNELS)
		return NULL;
	c = new_chan();
	if (c != NULL)
		ch.count++;
	return c;
}

static int64_t timeout_for(int id)
{
	switch (p11i_funcs[id].deadline) {
	case P11I_DEADLINE_NONE:
		return 0;
	case P11I_DEADLINE_KEYGEN:
		return kit->keygen_ns;
	}
	return kit->timeout_ns;
}

/* call makes one call on a host that runs (ch.mu held; released during
 * the call itself so that threads call concurrently, unless hold: a host's
 * start replays C_Initialize before any other call reaches it). */
static CK_RV call(int id, const uintptr_t *a, int64_t timeout, int hold)
{
	struct chan *c = get_chan();
	int st;
	CK_RV rv;

	if (c == NULL) {
		child_log("%s: no call channel to the host", p11i_funcs[id].name);
		return CKR_DEVICE_ERROR;
	}
	uint64_t gen = ch.gen;
	if (!hold)
		pthread_mutex_unlock(&ch.mu);
	st = p11i_run(&c->c, c->fd, id, a, timeout);
	rv = c->c.code;
	if (!hold)
		pthread_mutex_lock(&ch.mu);
	if (st == P11I_RUN_OK && c->c.why[0] != '\0')
		child_log("%s (%s): returning CKR_GENERAL_ERROR", c->c.why, kit->module);
	if (st == P11I_RUN_ANSWER && c->c.why[0] != '\0')
		child_log("%s", c->c.why);
	if (st == P11I_RUN_OK || st == P11I_RUN_ANSWER) {
		if (ch.up && ch.gen == gen && ch.nidle < MAX_CHANNELS) {
			ch.idle[ch.nidle++] = c;
		} else {
			if (ch.up && ch.gen == gen)
				ch.count--;
			close_chan(c);
		}
		return rv;
	}
	char why[sizeof c->c.why];
	memcpy(why, c->c.why, sizeof why);
	close_chan(c);
	if (ch.up && ch.gen == gen) {
		ch.count--;
		switch (st) {
		case P11I_RUN_TIMEOUT:
			child_log("%s in %s (host pid %d) passed its deadline: killing the host; the next call starts a new one",
				  p11i_funcs[id].name, kit->module, (int)ch.pid);
			break;
		case P11I_RUN_CLOSED: {
			char how[64];
			child_log("the host (pid %d) running %s died during %s%s; the next call starts a new one",
				  (int)ch.pid, kit->module, p11i_funcs[id].name, how_it_ended(how, sizeof how));
			break;
		}
		default:
			child_log("%s: the reply of %s (host pid %d) cannot be true: %s; returning CKR_DEVICE_ERROR and killing the host, the next call starts a new one",
				  p11i_funcs[id].name, kit->module, (int)ch.pid, why);
		}
		kill_host();
	}
	return CKR_DEVICE_ERROR;
}

/* start spawns a host, checks its handshake and replays the C_Initialize
 * the kit holds (ch.mu held). Returns the vendor's answer, or
 * CKR_DEVICE_ERROR / CKR_GENERAL_ERROR. */
static CK_RV start(void)
{
	int pair[2], status[2] = { -1, -1 }, null_fd, pidfd = -1, err = 0;
	int64_t deadline = kit->timeout_ns > 0 ? now_ns() + kit->timeout_ns : 0;
	struct p11i_sandbox sb = kit->sb;
	struct p11i_report rep;
	struct p11i_call ctl;
	long pid;
	CK_RV rv;

	if (ch.next_start != 0 && now_ns() < ch.next_start)
		return CKR_DEVICE_ERROR;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
		return CKR_GENERAL_ERROR;
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (sb.profile != P11I_SANDBOX_OFF && pipe2(status, O_CLOEXEC) != 0)
		status[0] = status[1] = -1;
	sb.status_fd = status[1];
	pid = p11i_spawn(kit->exe_fd, pair[1], log_fd(), null_fd, kit->argv, kit->envp, &sb, &rep, &pidfd, &err);
	close(pair[1]);
	close(null_fd);
	if (status[1] >= 0)
		close(status[1]);
	if (status[0] >= 0 && (pid < 0 || !(rep.layers & (1u << P11I_L_INIT)))) {
		close(status[0]); /* no init: nobody reports on it */
		status[0] = -1;
	}
	if (status[0] >= 0)
		fcntl(status[0], F_SETFL, O_NONBLOCK);
	if (pid < 0) {
		close(pair[0]);
		child_log("cannot start the host: clone3: %s", strerror(err));
		return CKR_GENERAL_ERROR;
	}
	ch.up = 1;
	ch.pid = (pid_t)pid;
	ch.pidfd = pidfd;
	ch.ctl = pair[0];
	ch.status_fd = status[0];
	ch.gen = (ch.gen + 1) % (1 << 16);
	if (ch.gen == 0)
		ch.gen = 1;
	p11i_fd_register(ch.ctl);
	p11i_call_init(&ctl, NULL, 0, 0);
	int hs = handshake(&ctl, deadline);
	p11i_call_free(&ctl);
	if (hs != 0) {
		kill_host();
		ch.backoff = ch.backoff ? (ch.backoff * 2 > 5000000000LL ? 5000000000LL : ch.backoff * 2) : 100000000LL;
		ch.next_start = now_ns() + ch.backoff;
		return CKR_DEVICE_ERROR;
	}
	/* The parent's C_Initialize, replayed before any other thread may
	 * call (the lock stays held). */
	uintptr_t a[1] = { (uintptr_t)kit->init_args };
	int64_t left = deadline ? deadline - now_ns() : 0;
	rv = call(0, a, deadline ? (left > 1000 ? left : 1000) : 0, 1);
	if (rv != CKR_OK) {
		if (rv != CKR_DEVICE_ERROR)
			child_log("the vendor module %s returned 0x%lx from C_Initialize", kit->module, (unsigned long)rv);
		kill_host();
		return rv;
	}
	ch.backoff = ch.next_start = 0;
	return CKR_OK;
}

/* p11i_child_call is p11i_call in a forked child. */
CK_RV p11i_child_call(int id, uintptr_t *args)
{
	CK_RV rv;

	if (kit == NULL) {
		static const char msg[] = "p11isolate: C_Initialize in a process forked before libp11isolate.so was "
					  "first initialized is not supported yet: initialize it once before forking, "
					  "or exec a new program\n";
		if (id == 0)
			p11i_log_write(2, msg, sizeof msg - 1);
		return id == 0 ? CKR_GENERAL_ERROR : CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	pthread_mutex_lock(&ch.mu);
	switch (id) {
	case 0: /* C_Initialize */
		if (ch.initialized) {
			rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
			break;
		}
		rv = start();
		if (rv == CKR_OK) {
			ch.initialized = 1;
			/* As a module loaded directly answers a child of an
			 * initialized parent (its state stands). */
			if (ch.inherited)
				rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
		}
		break;
	case 1: /* C_Finalize */
		if (!ch.initialized) {
			rv = CKR_CRYPTOKI_NOT_INITIALIZED;
			break;
		}
		rv = ch.up ? call(1, args, timeout_for(1), 0) : CKR_OK;
		if (rv != CKR_OK && rv != CKR_DEVICE_ERROR)
			break;
		rv = CKR_OK;
		kill_host();
		ch.initialized = 0;
		break;
	default:
		if (!ch.initialized) {
			rv = CKR_CRYPTOKI_NOT_INITIALIZED;
			break;
		}
		if (!ch.up && (rv = start()) != CKR_OK) {
			rv = CKR_DEVICE_ERROR;
			break;
		}
		rv = call(id, args, timeout_for(id), 0);
	}
	pthread_mutex_unlock(&ch.mu);
	return rv;
}
