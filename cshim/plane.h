/* plane: one call's request and reply in C, walking the generated tables of
 * internal/p11calls (calls_gen.h). It is the C data plane's core (see
 * DEVELOPERS.md, "Plan: the C data plane"): what a process forked after the
 * library was loaded will run, Go or no Go. Until the proxy switches to it,
 * proxy/plane_test.go holds it to the Go encoder and decoder byte for byte,
 * and internal/cwire its mechanism parameters to internal/mechparams. */
#ifndef P11ISOLATE_PLANE_H
#define P11ISOLATE_PLANE_H

#include <stddef.h>
#include <stdint.h>
#include "pkcs11_3x.h"

#include "mp.h"
#include "ring.h"
#include "calls_gen.h"

/* A write into the application's memory, queued until the reply checked. */
struct p11i_write {
	void *dst;
	const uint8_t *bytes; /* copied when not NULL; else value is stored */
	uint64_t value;
	size_t n;  /* bytes' length */
	int size;  /* of value: 8 or 1 */
	int map;   /* value is a vendor handle */
};

/* Handle translation for a host of generation gen (handles.c). */
typedef uint64_t (*p11i_map_fn)(uint64_t gen, uint64_t handle);
uint64_t p11i_handle_to_vendor(uint64_t gen, uint64_t v);
uint64_t p11i_handle_to_app(uint64_t gen, uint64_t v);

/* One channel's call state, reused for every call on it. */
struct p11i_call {
	struct p11i_mpw w;
	uint8_t *region; /* the channel's shared region, NULL: none */
	size_t region_len, region_used;
	uint64_t caps[P11I_MAX_ARGS];
	int ncaps;
	int mechlayout; /* the mechanism's parameter has outputs to bring back: its layout; -1: none */
	int msglayout; /* a message's parameter: its layout with outputs, -1: none */
	uint64_t session; /* the application's session handle of the call, 0: none */
	int fname;        /* C_Async*'s function, by ID; -1: none or unknown */
	/* A mechanism whose parameter the registry cannot carry: the caller
	 * logs it (once per mechanism). */
	int has_uncarried;
	CK_MECHANISM_TYPE uncarried;
	struct p11i_write *plan;
	size_t nplan, capplan;
	int plan_err;
	p11i_map_fn to_vendor, to_app; /* NULL: handles unchanged */
	uint64_t gen;                   /* the host's handle generation */
	CK_RV code;    /* room for p11i_decode's answer (the caller's choice) */
	int route;     /* the function list the call came through (p11calls.Route*) */
	/* p11i_run's reply buffer, and the receive timeout set on the
	 * channel's socket (-1: unknown). */
	uint8_t *rbuf;
	size_t rcap;
	int64_t timeout_set;
	/* The channel's ring (the region's last P11I_RING_SIZE bytes), NULL:
	 * every request and reply crosses the socket; seq numbers its
	 * requests. */
	struct p11i_ring *ring;
	uint32_t seq;
	char why[200]; /* the refusal of the last reply, or what the encoder refused */
};

/* p11i_call_init readies c for a channel with the shared region
 * [region, region+len) (NULL: none), translating handles through the
 * handle table. */
void p11i_call_init(struct p11i_call *c, void *region, size_t len, uint64_t gen);
void p11i_call_free(struct p11i_call *c);

/* p11i_encode encodes the call id(a...) into c->w (a whole frame). It
 * returns CKR_OK, or the code the proxy answers by itself (with c->why for
 * the log). */
CK_RV p11i_encode(struct p11i_call *c, int id, const uintptr_t *a);

/* p11i_decode checks the reply body to id(a...) whole, then writes its
 * outputs into the application's memory. It returns 0 with *rv the code
 * for the application, or -1 with c->why when the reply cannot be true:
 * then nothing was written. */
int p11i_decode(struct p11i_call *c, int id, const uintptr_t *a, const void *body, size_t len, CK_RV *rv);

/* What p11i_run did. */
enum {
	P11I_RUN_OK,      /* the vendor's answer is in c->code */
	P11I_RUN_ANSWER,  /* the proxy answers by itself with c->code (c->why: why) */
	P11I_RUN_TIMEOUT, /* no reply before the deadline */
	P11I_RUN_CLOSED,  /* the host closed the channel: it died */
	P11I_RUN_BAD,     /* the reply cannot be true (c->why): nothing was written */
	P11I_RUN_ERROR,   /* a system call failed (c->why) */
};

/* p11i_run makes one call on the channel socket fd: encodes it, sends it,
 * waits for the reply at most timeout_ns (0: forever; signals do not
 * extend it), and checks and applies the reply. Nothing in it needs Go. */
int p11i_run(struct p11i_call *c, int fd, int id, const uintptr_t *a, int64_t timeout_ns);

/* p11i_call_ring gives c's channel a ring at the end of its region (the
 * host does the same with a region of that size). */
void p11i_call_ring(struct p11i_call *c);

/* p11i_run_forked resets what p11i_run counts in a new child. */
void p11i_run_forked(void);

/* p11i_ckr_defined: whether a PKCS#11 version defines rv, or it is a vendor's. */
int p11i_ckr_defined(CK_RV rv);

/* p11i_plausible: whether [p, p+n) can be application memory at all. */
int p11i_plausible(uintptr_t p, uint64_t n);

/* The shim's fault-free read of a NUL-terminated string (shim.h). */
long p11i_copy_string(char *dst, const void *src, size_t max);

/* What the proxy remembers of sessions (sessions.c), by the application's
 * handle: the mechanisms of message-based operations (op 0 encrypt,
 * 1 decrypt, 2 sign, 3 verify) and the buffers of calls pending on an
 * asynchronous session, by function ID. */
void p11i_sessions_opened(uint64_t h, uint64_t slot);
void p11i_sessions_closed(uint64_t h);
void p11i_sessions_closed_slot(uint64_t slot);
void p11i_sessions_clear(void);
void p11i_sessions_reset(void); /* in a forked child */
int p11i_sessions_msg(uint64_t h, int op, CK_MECHANISM_TYPE *mech);
void p11i_sessions_set_msg(uint64_t h, int op, CK_MECHANISM_TYPE mech, int set);
void p11i_sessions_cancel(uint64_t h, CK_FLAGS flags);
void p11i_sessions_pend(uint64_t h, int id, uintptr_t buf, uint64_t cap);
int p11i_sessions_pending(uint64_t h, int id, uintptr_t *buf, uint64_t *cap);
void p11i_sessions_unpend(uint64_t h, int id);

#endif
