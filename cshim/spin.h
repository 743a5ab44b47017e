/* spin: whether, and how long, a waiter polls before it sleeps (spin.c). */
#ifndef P11ISOLATE_SPIN_H
#define P11ISOLATE_SPIN_H

#include <stdint.h>

/* The host compiles its own copy static (host/spin.c): a test binary that
 * links the host's C and the library's would see them twice. */
#ifndef P11I_SPIN_API
#define P11I_SPIN_API
#endif

/* The longest a waiter polls: a wait expected to be longer is slept. */
#define P11I_SPIN_CAP_NS 50000

/* What a waiter learned of one kind of wait. Updated without a lock by
 * whichever thread waited last (relaxed atomics): the figures are hints. */
struct p11i_spin {
	int64_t ewma; /* recent waits, ns; 0: none yet */
	int score;    /* > 0: polling has been paying */
	int skip;     /* waits left to sleep through at once after polling kept missing */
};

/* p11i_spin_cpus: the CPUs this process may use (affinity, cgroup quota). */
P11I_SPIN_API int p11i_spin_cpus(void);
/* p11i_spin_window: how long to poll for a wait of kind s (0: sleep at
 * once) while busy waits and workers (this one included) need a CPU each. */
P11I_SPIN_API int64_t p11i_spin_window(struct p11i_spin *s, int busy);
/* p11i_spin_done records a wait of waited ns that polled for window ns. */
P11I_SPIN_API void p11i_spin_done(struct p11i_spin *s, int64_t waited, int64_t window);
/* p11i_readable: whether fd has data, EOF or an error to read, at once. */
P11I_SPIN_API int p11i_readable(int fd);
/* p11i_spin_wait polls for up to window ns: until ready(arg) (NULL: none)
 * is not 0, which it stores in *got (P11I_SPIN_READY), or fd becomes
 * readable (P11I_SPIN_READABLE: data, EOF or an error), or the window
 * passed (0). */
enum { P11I_SPIN_READY = 1, P11I_SPIN_READABLE = 2 };
P11I_SPIN_API int p11i_spin_wait(int fd, int64_t window, int (*ready)(void *), void *arg, int *got);

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
