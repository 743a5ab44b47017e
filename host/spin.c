#define _GNU_SOURCE
/* The host's side of polling before sleeping (cshim/spin.c, compiled here
 * as part of the host): a call thread that has answered polls for the next
 * request for as long as that pays, while the channels at work and the
 * waiters leave a CPU to each. */
#include "host.h"

#include <stdlib.h>
#include <time.h>

#define P11I_SPIN_API static
#include "../cshim/spin.c"

/* Channels in a call now (between p11h_busy and p11h_idle). */
static int active;

struct p11h_wait {
	struct p11i_spin spin;
	int64_t since, window;
};

struct p11h_wait *p11h_wait_new(void) { return calloc(1, sizeof(struct p11h_wait)); }

void p11h_idle(int fd, struct p11h_wait *w, int answered)
{
	if (answered)
		__atomic_sub_fetch(&active, 1, __ATOMIC_RELAXED);
	w->window = p11i_spin_window(&w->spin, __atomic_load_n(&active, __ATOMIC_RELAXED) + 1);
	w->since = spin_now();
	if (w->window > 0)
		p11i_spin_poll(fd, w->window);
}

void p11h_busy(struct p11h_wait *w)
{
	p11i_spin_done(&w->spin, spin_now() - w->since, w->window);
	__atomic_add_fetch(&active, 1, __ATOMIC_RELAXED);
}
