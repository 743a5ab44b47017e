/* spin: whether, and how long, a waiter polls before it sleeps (issue 11).
 *
 * A call through the proxy waits twice: the application's thread for the
 * reply, the host's call thread for the next request. Sleeping in read()
 * costs a scheduler wake-up on each side, most of a round trip on a virtual
 * machine; polling instead costs a CPU for as long as it polls, and takes
 * that CPU from the thread being waited for when there is none to spare
 * (measured: busy-polling was far slower than blocking on two busy cores).
 * So a waiter polls only
 *   - when this process may use at least two CPUs (affinity, cgroup quota)
 *     and the calls in flight leave one for each waiter and each worker
 *     (a caller that polls holds a CPU; its host needs another);
 *   - for a window learned from the recent waits of the same kind (an
 *     EWMA): twice the wait it expects and 20 us more (this machine's
 *     hypervisor stalls a thread for tens of microseconds now and then,
 *     and a window that ends too soon costs a wake-up), never past a cap
 *     (1 ms for a reply, 50 us for the host's next request): a slow call
 *     (an RSA key pair, a network HSM) is slept through at once, so
 *     polling never adds to the CPU bill of slow calls;
 *   - asleep first when the reply is not expected soon (a doze: a timed
 *     sleep that ends shortly before it is due, by how late sleepers
 *     have been waking here), so a wait of half a millisecond costs the
 *     CPU a little of it, not all of it;
 *   - while polling pays: a wait that outlasts its window counts against
 *     it, and after a run of such misses the waiter sleeps at once for the
 *     next calls of that kind, then tries again (a loaded machine).
 * The poll looks at the channel's ring (shared memory) and, now and then,
 * peeks at the socket the waiter would sleep on, so a host's death (EOF), a
 * frame too large for the ring and the deadline work as before.
 * Compiled into the library (proxy/plane.c) and the host (host/spin.c). */
#include "spin.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t spin_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* cgroup_cpus: the CPUs the cgroup v2 quota of this process allows
 * (rounded down, at least 1), or 0 when there is no quota. */
static int cgroup_cpus(void)
{
	char line[4096], path[4200], buf[64];
	FILE *f = fopen("/proc/self/cgroup", "r");
	long long quota = 0, period = 0;
	int n = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max", line + 3);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			ssize_t k = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
			if (fd >= 0)
				close(fd);
			if (k > 0) {
				buf[k] = '\0';
				if (sscanf(buf, "%lld %lld", &quota, &period) == 2 && quota > 0 && period > 0)
					n = (int)(quota / period) > 0 ? (int)(quota / period) : 1;
			}
		}
	}
	fclose(f);
	return n;
}

P11I_SPIN_API int p11i_spin_cpus(void)
{
	static int cached;
	static int64_t when;
	int64_t t = spin_now();
	int n = __atomic_load_n(&cached, __ATOMIC_RELAXED);

	/* Affinity and quotas change rarely: looked at again every 2 s. */
	if (n == 0 || t - __atomic_load_n(&when, __ATOMIC_RELAXED) > 2000000000LL) {
		cpu_set_t set;
		n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
		int q = cgroup_cpus();
		if (q > 0 && q < n)
			n = q;
		if (n < 1)
			n = 1;
		/* P11ISOLATE_SPIN_OFF, for measurements (the blocking path
		 * alone): read once, not on the call path again. */
		static int off = -1;
		if (off < 0)
			off = getenv("P11ISOLATE_SPIN_OFF") != NULL;
		if (off)
			n = 1;
		__atomic_store_n(&cached, n, __ATOMIC_RELAXED);
		__atomic_store_n(&when, t, __ATOMIC_RELAXED);
	}
	return n;
}

P11I_SPIN_API int64_t p11i_spin_window(struct p11i_spin *s, int busy, int64_t cap)
{
	int64_t ewma = __atomic_load_n(&s->ewma, __ATOMIC_RELAXED), w;
	int skip = __atomic_load_n(&s->skip, __ATOMIC_RELAXED);

	if (2 * busy > p11i_spin_cpus())
		return 0;
	if (skip > 0) {
		__atomic_store_n(&s->skip, skip - 1, __ATOMIC_RELAXED);
		return 0;
	}
	if (ewma == 0)
		return P11I_SPIN_CAP_NS / 4; /* nothing known yet: a short probe */
	if (ewma > cap)
		return 0;
	w = 2 * ewma + 20000;
	return w < cap ? w : cap;
}

/* How late a sleeper wakes after a timed sleep, ns (an EWMA): the timer
 * slack and, on a virtual machine, the wake-up of an idle virtual CPU. */
static int64_t doze_late = 100000;

P11I_SPIN_API int64_t p11i_spin_doze(struct p11i_spin *s, int64_t window)
{
	int64_t ewma = __atomic_load_n(&s->ewma, __ATOMIC_RELAXED);
	int64_t late = __atomic_load_n(&doze_late, __ATOMIC_RELAXED);

	if (window <= 0 || ewma < P11I_SPIN_DOZE_MIN_NS)
		return 0;
	/* Awake before the reply, by the lateness seen and an eighth of the
	 * expected wait (calls of one kind vary that much). */
	int64_t d = ewma - ewma / 8 - late - 10000;
	return d >= 20000 ? d : 0;
}

P11I_SPIN_API void p11i_spin_dozed(int64_t asked, int64_t slept)
{
	int64_t late = __atomic_load_n(&doze_late, __ATOMIC_RELAXED), l = slept - asked;

	if (l < 0)
		l = 0;
	if (l > 1000000)
		l = 1000000; /* one preempted sleeper does not set the rule */
	__atomic_store_n(&doze_late, late + (l - late) / 8, __ATOMIC_RELAXED);
}

P11I_SPIN_API void p11i_spin_done(struct p11i_spin *s, int64_t waited, int64_t window, int64_t cap)
{
	int64_t ewma = __atomic_load_n(&s->ewma, __ATOMIC_RELAXED);
	int score = __atomic_load_n(&s->score, __ATOMIC_RELAXED);

	if (waited < 0)
		waited = 0;
	/* A wait past the cap says "slow" as well as a longer one would: the
	 * EWMA stays within reach of the cap so a kind that turns fast is
	 * polled for again soon. */
	if (waited > 4 * cap)
		waited = 4 * cap;
	ewma = ewma == 0 ? waited : ewma + (waited - ewma) / 8;
	__atomic_store_n(&s->ewma, ewma > 0 ? ewma : 1, __ATOMIC_RELAXED);
	if (window <= 0)
		return;
	if (waited <= window) {
		if (score < 8)
			score++;
	} else if ((score -= 2) < -6) {
		/* Polling kept missing: sleep at once for a while. */
		__atomic_store_n(&s->skip, 256, __ATOMIC_RELAXED);
		score = 0;
	}
	__atomic_store_n(&s->score, score, __ATOMIC_RELAXED);
}

P11I_SPIN_API int p11i_readable(int fd)
{
	char b;
	ssize_t k = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	return k >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

P11I_SPIN_API int p11i_spin_sleep(int fd, int64_t ns)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct timespec t = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };

	return ppoll(&p, 1, &t, NULL) > 0;
}

P11I_SPIN_API int p11i_spin_wait(int fd, int64_t window, int (*ready)(void *), void *arg, int *got)
{
	int64_t t = spin_now(), end = t + window, peek = t;

	for (unsigned i = 1; window > 0; i++) {
		int r = ready != NULL ? ready(arg) : 0;
		if (r != 0) {
			*got = r;
			return P11I_SPIN_READY;
		}
		/* The socket costs a system call (a costly one on a virtual
		 * machine): looked at every P11I_SPIN_PEEK_NS when there is
		 * shared memory to look at, else every round. */
		if (ready == NULL || (i & 15) == 0) {
			t = spin_now();
			if (ready == NULL || t - peek >= P11I_SPIN_PEEK_NS || t >= end) {
				if (p11i_readable(fd))
					return P11I_SPIN_READABLE;
				peek = t;
			}
			if (t >= end)
				break;
		}
		cpu_relax();
	}
	return 0;
}
