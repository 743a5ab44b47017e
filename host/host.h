/* The host's C side: the stray-fd sweep that runs before Go starts, the
 * vendor module's loading, and the generated call into its function list. */
#ifndef P11ISOLATE_HOST_H
#define P11ISOLATE_HOST_H

#include <stdint.h>
#include "../cshim/pkcs11_3x.h"
#include "../cshim/flists_gen.h"

/* The channel the proxy passes as fd 3; stdin, stdout and stderr are 0-2. */
#define P11H_CONTROL_FD 3

/* In a new pid namespace the spawn runs the image as the namespace's init
 * ("p11isolate-host --init", see p11h_init in host.c), with the write end
 * of a pipe for the host's wait status as fd 4. */
#define P11H_INIT_ARG "--init"
#define P11H_STATUS_FD 4

CK_RV p11h_invoke(const struct p11i_flist *f, int nfuncs, int id, const uintptr_t *a);

/* A loaded module: the function list calls go through (that of the
 * highest version it offers, holding nfuncs functions), and its "PKCS 11"
 * interfaces of the versions this build knows (2.x, 3.0, 3.1, 3.2 and
 * later 3.x), in its C_GetInterfaceList's order; def is the one its
 * C_GetInterface(NULL, NULL, ..., 0) answers (-1: none of them). A module
 * without C_GetInterfaceList offers the 2.x list of C_GetFunctionList. */
#define P11H_MAX_IFACES 8
struct p11h_module {
	const struct p11i_flist *list;
	int nfuncs;
	/* By route (p11calls.Route*): the list of that version, NULL: none
	 * (calls of that route go through list). */
	const struct p11i_flist *route[3];
	int n, def;
	struct {
		unsigned char major, minor;
		CK_FLAGS flags;
	} iface[P11H_MAX_IFACES];
};

/* p11h_load dlopens path and fills m, or returns -1 with a one-line reason
 * in err. */
int p11h_load(const char *path, char *err, size_t errlen, struct p11h_module *m);

/* Host-side mutex callbacks handed to the vendor where the application gave
 * its own (they cannot cross a process boundary). */
CK_RV p11h_create_mutex(CK_VOID_PTR_PTR m);
CK_RV p11h_destroy_mutex(CK_VOID_PTR m);
CK_RV p11h_lock_mutex(CK_VOID_PTR m);
CK_RV p11h_unlock_mutex(CK_VOID_PTR m);



/* p11h_init_args fills a CK_C_INITIALIZE_ARGS like the application's: the
 * mutex callbacks it set (bit i of mask for the i-th) become the host's own. */
void p11h_init_args(CK_C_INITIALIZE_ARGS *a, unsigned mask, CK_FLAGS flags, char *reserved);

/* p11h_default_fault_signals gives fault signals back to the kernel. */
void p11h_default_fault_signals(void);
/* Channel fds a child forked by the vendor closes at once (pthread_atfork),
 * so the host's death still reads as EOF in the application. */
void p11h_fd_register(int fd);
void p11h_fd_unregister(int fd);

/* p11h_mechanism_known asks the vendor, through the session's slot, whether
 * it supports mech: CKR_OK, or its CKR_MECHANISM_INVALID / session error. */
CK_RV p11h_mechanism_known(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_MECHANISM_TYPE mech);

/* Waiting for the next request (spin.c): p11h_next polls the channel's
 * ring (cshim/ring.h; NULL: none) and its socket for as long as that pays,
 * then says the thread sleeps. It returns the length of a request it
 * copied from the ring into buf, 0 when the request (or a doorbell, or
 * EOF) is to be read from the socket, -1 for a request longer than the
 * slot; after: 1 + the function the thread answered since the last call
 * (0: none), which is what the gap until the next request is learned by
 * (a C_SignInit is followed by its C_Sign at once, a C_DigestInit by the
 * caller's copy of a large buffer).
 * p11h_busy follows once a request is in hand. p11h_reply puts the reply
 * to a request from the ring into the ring: 1, or 0 to send it on the
 * socket (it does not fit, or the request came that way), -1 when the
 * doorbell failed. */
#include "../cshim/ring.h"
struct p11h_wait;
struct p11h_wait *p11h_wait_new(void);
int p11h_next(int fd, struct p11h_wait *w, struct p11i_ring *g, uint8_t *buf, int after);
void p11h_busy(struct p11h_wait *w);
int p11h_reply(int fd, struct p11h_wait *w, struct p11i_ring *g, const uint8_t *body, size_t n);

#endif
