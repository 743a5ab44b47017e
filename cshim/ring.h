/* ring: requests and replies through a channel's shared memory (issue 11).
 *
 * The last P11I_RING_SIZE bytes of a channel's region (the sealed memfd
 * both sides map) hold one request slot and one reply slot. The proxy
 * writes a request's body into the request slot, then its length and a new
 * sequence number; the host, which polls for that number or sleeps on the
 * socket, copies the body out, calls the vendor, writes the reply's body
 * into the reply slot with the same number. A side that sleeps says so in
 * its own line first; the other then rings it with a zero-length frame on
 * the socket (a doorbell). The socket stays the channel: a request or reply
 * too large for its slot crosses there as before, the host's death reads as
 * EOF there, and the deadline is a receive timeout there.
 *
 * Nothing the host writes here is trusted: the reply's number must be the
 * request's, its length within the slot, and the body is copied out of the
 * shared memory before it is checked and decoded like any reply. */
#ifndef P11ISOLATE_RING_H
#define P11ISOLATE_RING_H

#include <stdint.h>

#define P11I_RING_SIZE (64u << 10)
#define P11I_RING_REQ_OFF 4096u
#define P11I_RING_REQ_CAP (28u << 10)
#define P11I_RING_REP_OFF (32u << 10)
#define P11I_RING_REP_CAP (32u << 10)

/* One cache line each side writes; the slots follow. */
struct p11i_ring {
	uint32_t req_seq, req_len, proxy_sleeping;
	uint8_t pad0[64 - 12];
	uint32_t rep_seq, rep_len, host_sleeping;
	uint8_t pad1[64 - 12];
};

/* A doorbell: a zero-length frame (4 bytes of length prefix). */
#define P11I_RING_DOORBELL_LEN 4u

/* The pairing both sides rely on: a side publishes its slot's length and
 * number, then looks at the other's "sleeping" word; a side that is about
 * to sleep raises its word, then looks at the slot once more. The full
 * fence between each side's store and its load means one of the two sees
 * the other's store: a message is never published to a sleeper that
 * nobody rings. */

/* p11i_ring_publish makes slot number seq of n bytes visible and returns
 * whether the other side said it sleeps (then it must be rung). */
static inline int p11i_ring_publish(uint32_t *seq_word, uint32_t *len_word, uint32_t seq, uint32_t n,
				    const uint32_t *peer_sleeping)
{
	__atomic_store_n(len_word, n, __ATOMIC_RELAXED);
	__atomic_store_n(seq_word, seq, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(peer_sleeping, __ATOMIC_RELAXED) != 0;
}

/* p11i_ring_asleep raises this side's word before its last look. */
static inline void p11i_ring_asleep(uint32_t *word)
{
	__atomic_store_n(word, 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static inline void p11i_ring_awake(uint32_t *word) { __atomic_store_n(word, 0, __ATOMIC_RELAXED); }

#endif
