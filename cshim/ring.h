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

#endif
