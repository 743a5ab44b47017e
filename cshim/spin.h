/* spin: whether, and how long, a waiter polls before it sleeps (spin.c). */
#ifndef P11ISOLATE_SPIN_H
#define P11ISOLATE_SPIN_H

#include <stdint.h>

/* The host compiles its own copy static (host/spin.c): a test binary that
 * links the host's C and the library's would see them twice. */
#ifndef P11I_SPIN_API
#define P11I_SPIN_API
#endif

/* The longest a host's call thread polls for the next request: the gap
 * between two calls is the application's, and may be anything. */
#define P11I_SPIN_CAP_NS 50000
/* The longest reply a caller waits for without sleeping through it. On a
 * virtual machine a thread woken after more than a few hundred
 * microseconds asleep pays ~80 us (measured here: DEVELOPERS.md), a sixth
 * of an RSA signature; a call expected to last longer than this is slept
 * through, so polling never adds to the CPU bill of slow HSM calls. */
#define P11I_SPIN_REPLY_CAP_NS 1000000
/* A reply expected later than this is first waited for asleep (a doze):
 * until shortly before it is due, then polled for. */
#define P11I_SPIN_DOZE_MIN_NS 150000
/* How often a poll looks at the socket too (a system call). */
#define P11I_SPIN_PEEK_NS 16000

/* What a waiter learned of one kind of wait. Updated without a lock by
 * whichever thread waited last (relaxed atomics): the figures are hints. */
struct p11i_spin {
	int64_t ewma; /* recent waits, ns; 0: none yet */
	int score;    /* > 0: polling has been paying */
	int skip;     /* waits left to sleep through at once after polling kept missing */
};

/* p11i_spin_cpus: the CPUs this process may use (affinity, cgroup quota). */
P11I_SPIN_API int p11i_spin_cpus(void);
/* p11i_spin_window: until when, in ns from the wait's start, to poll for a
 * wait of kind s (0: sleep at once) while busy waits and workers (this one
 * included) need a CPU each; a wait expected past cap is slept. */
P11I_SPIN_API int64_t p11i_spin_window(struct p11i_spin *s, int busy, int64_t cap);
/* p11i_spin_doze: how long a wait with that window sleeps before it polls
 * (0: it polls at once), so that it wakes shortly before the reply is
 * expected. */
P11I_SPIN_API int64_t p11i_spin_doze(struct p11i_spin *s, int64_t window);
/* p11i_spin_dozed records a doze that was asked for asked ns and slept
 * slept ns: how late a sleeper wakes, on this machine. */
P11I_SPIN_API void p11i_spin_dozed(int64_t asked, int64_t slept);
/* p11i_spin_done records a wait of waited ns that polled until window ns
 * (the window p11i_spin_window gave with the same cap). */
P11I_SPIN_API void p11i_spin_done(struct p11i_spin *s, int64_t waited, int64_t window, int64_t cap);
/* p11i_readable: whether fd has data, EOF or an error to read, at once. */
P11I_SPIN_API int p11i_readable(int fd);
/* p11i_spin_wait polls for up to window ns: until ready(arg) (NULL: none)
 * is not 0, which it stores in *got (P11I_SPIN_READY), or fd becomes
 * readable (P11I_SPIN_READABLE: data, EOF or an error), or the window
 * passed (0). */
enum { P11I_SPIN_READY = 1, P11I_SPIN_READABLE = 2 };
P11I_SPIN_API int p11i_spin_wait(int fd, int64_t window, int (*ready)(void *), void *arg, int *got);

/* p11i_spin_sleep sleeps until fd is readable (1) or ns passed (0). */
P11I_SPIN_API int p11i_spin_sleep(int fd, int64_t ns);

/* cpu_relax eases a poll loop on the core (and its sibling thread). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

#endif
