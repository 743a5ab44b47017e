#define _GNU_SOURCE
/* The host's side of polling before sleeping (cshim/spin.c, compiled here
 * as part of the host): a call thread that has answered polls for the next
 * request for as long as that pays, while the channels at work and the
 * waiters leave a CPU to each. */
#include "host.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../cshim/calls_gen.h"
#include "../cshim/ring.h"

#define P11I_SPIN_API static __attribute__((unused))
#include "../cshim/spin.c"

/* Channels in a call now (between p11h_busy and the next p11h_next), and
 * call threads polling for a request now: each holds a CPU. */
static int active, polling;

struct p11h_wait {
	/* The gap after each function (by 1 + its ID; 0: after none). */
	struct p11i_spin spin[1 + P11I_NFUNCS];
	struct p11i_spin *kind; /* the gap being waited through */
	int64_t since, window;
	uint32_t last;  /* the last request number taken from the ring */
	int from_ring;  /* the request in hand came through the ring */
};

struct p11h_wait *p11h_wait_new(void) { return calloc(1, sizeof(struct p11h_wait)); }

/* ring_request copies a new request out of the ring into buf: its
 * length, 0 when there is none, -1 when its length exceeds the slot. */
static int ring_request(struct p11i_ring *g, struct p11h_wait *w, uint8_t *buf)
{
	uint32_t seq = __atomic_load_n(&g->req_seq, __ATOMIC_ACQUIRE), n;

	if (seq == w->last)
		return 0;
	n = __atomic_load_n(&g->req_len, __ATOMIC_RELAXED);
	if (n == 0 || n > P11I_RING_REQ_CAP)
		return -1;
	memcpy(buf, (uint8_t *)g + P11I_RING_REQ_OFF, n);
	w->last = seq;
	w->from_ring = 1;
	return (int)n;
}

struct ring_ctx {
	struct p11i_ring *g;
	struct p11h_wait *w;
	uint8_t *buf;
};

static int ring_ready(void *p)
{
	struct ring_ctx *x = p;
	return ring_request(x->g, x->w, x->buf);
}

int p11h_next(int fd, struct p11h_wait *w, struct p11i_ring *g, uint8_t *buf, int after)
{
	struct ring_ctx x = { g, w, buf };
	int r = 0;

	if (after > 0)
		__atomic_sub_fetch(&active, 1, __ATOMIC_RELAXED);
	w->from_ring = 0;
	w->kind = &w->spin[after > 0 && after <= P11I_NFUNCS ? after : 0];
	/* Many channels waiting at once (16 application threads on 2 CPUs)
	 * must not all poll: each poller counts as a CPU taken. */
	int busy = __atomic_load_n(&active, __ATOMIC_RELAXED) + __atomic_add_fetch(&polling, 1, __ATOMIC_RELAXED);
	w->window = p11i_spin_window(w->kind, busy, P11I_SPIN_CAP_NS);
	w->since = spin_now();
	if (g != NULL)
		p11i_ring_awake(&g->host_sleeping);
	int got = w->window > 0 ? p11i_spin_wait(fd, w->window, g != NULL ? ring_ready : NULL, &x, &r) : 0;
	__atomic_sub_fetch(&polling, 1, __ATOMIC_RELAXED);
	if (g == NULL)
		return 0;
	if (got == P11I_SPIN_READY)
		return r;
	/* Sleep on the socket, having said so: the proxy rings. */
	p11i_ring_asleep(&g->host_sleeping);
	if ((r = ring_request(g, w, buf)) != 0)
		p11i_ring_awake(&g->host_sleeping);
	return r;
}

int p11h_reply(int fd, struct p11h_wait *w, struct p11i_ring *g, const uint8_t *body, size_t n)
{
	static const uint8_t doorbell[P11I_RING_DOORBELL_LEN];

	if (g == NULL || !w->from_ring || n > P11I_RING_REP_CAP)
		return 0;
	memcpy((uint8_t *)g + P11I_RING_REP_OFF, body, n);
	if (p11i_ring_publish(&g->rep_seq, &g->rep_len, w->last, (uint32_t)n, &g->proxy_sleeping)) {
		ssize_t k;
		do
			k = send(fd, doorbell, sizeof doorbell, MSG_NOSIGNAL);
		while (k < 0 && errno == EINTR);
		if (k != (ssize_t)sizeof doorbell)
			return -1;
	}
	return 1;
}

void p11h_busy(struct p11h_wait *w)
{
	p11i_spin_done(w->kind, spin_now() - w->since, w->window, P11I_SPIN_CAP_NS);
	__atomic_add_fetch(&active, 1, __ATOMIC_RELAXED);
}
