/* mp: the msgpack subset of the wire (internal/wire), in C, for the proxy's
 * data plane: it must run where Go cannot (a process forked after the
 * library was loaded). It writes exactly the bytes internal/wire's Encoder
 * writes (the shortest form of every value) and reads what its Decoder
 * reads, with the same rules:
 *
 *   - errors are sticky: after the first, every read returns a zero value
 *     and p11i_mpr_finish reports the error;
 *   - bytes and strings are views into the frame, never copied, and never
 *     reach past its end;
 *   - p11i_mpr_finish fails on trailing bytes;
 *   - a region reference (fixext16, type P11I_MP_EXT_REGION, offset and
 *     length little-endian) is checked against the region's bounds in the
 *     frame's own numbers: nothing in the region decides where or how much
 *     is read.
 *
 * Nothing here allocates except the writer's buffer, which grows with
 * realloc; no function uses Go, locks or thread-local state. */
#ifndef P11ISOLATE_MP_H
#define P11ISOLATE_MP_H

#include <stddef.h>
#include <stdint.h>

#define P11I_MP_EXT_REGION 1
#define P11I_MP_REF_SIZE 18

/* A writer. buf holds the frame: P11I_MP_HEADER bytes of length prefix
 * (written by p11i_mpw_frame), then the body. */
#define P11I_MP_HEADER 4

struct p11i_mpw {
	uint8_t *buf;
	size_t len, cap;
	int err; /* 0, or ENOMEM: sticky */
};

void p11i_mpw_reset(struct p11i_mpw *w);
void p11i_mpw_free(struct p11i_mpw *w);
void p11i_mpw_uint(struct p11i_mpw *w, uint64_t v);
void p11i_mpw_nil(struct p11i_mpw *w);
void p11i_mpw_bool(struct p11i_mpw *w, int v);
void p11i_mpw_bytes(struct p11i_mpw *w, const void *b, size_t n);
void p11i_mpw_str(struct p11i_mpw *w, const char *s, size_t n);
void p11i_mpw_array(struct p11i_mpw *w, uint32_t n);
void p11i_mpw_map(struct p11i_mpw *w, uint32_t n);
void p11i_mpw_ref(struct p11i_mpw *w, uint64_t off, uint64_t n);
/* p11i_mpw_frame writes the length prefix and returns the body's length. */
size_t p11i_mpw_frame(struct p11i_mpw *w);

/* A reader of one frame's body. */
struct p11i_mpr {
	const uint8_t *buf;
	size_t len, pos;
	const uint8_t *region; /* the channel's shared region; NULL: refused */
	size_t region_len;
	size_t region_used; /* end of the furthest reference read */
	int failed;
	char why[160];
};

void p11i_mpr_init(struct p11i_mpr *r, const void *body, size_t len, const void *region, size_t region_len);
void p11i_mpr_fail(struct p11i_mpr *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t p11i_mpr_uint(struct p11i_mpr *r);
/* p11i_mpr_uint_max fails unless the value is at most max. */
uint64_t p11i_mpr_uint_max(struct p11i_mpr *r, uint64_t max, const char *what);
int p11i_mpr_bool(struct p11i_mpr *r);
/* p11i_mpr_is_nil consumes a nil and returns 1, or consumes nothing. */
int p11i_mpr_is_nil(struct p11i_mpr *r);
/* p11i_mpr_is_false consumes a false and returns 1, or consumes nothing. */
int p11i_mpr_is_false(struct p11i_mpr *r);
int p11i_mpr_peek_array(const struct p11i_mpr *r);
int p11i_mpr_peek_bytes(const struct p11i_mpr *r);
/* Bytes and strings as views into the frame (NULL and 0 after an error). */
const uint8_t *p11i_mpr_bytes(struct p11i_mpr *r, size_t *n);
const char *p11i_mpr_str(struct p11i_mpr *r, size_t *n);
/* Bytes inline or a region reference (a view into the region). */
const uint8_t *p11i_mpr_data(struct p11i_mpr *r, size_t *n);
/* An array's or map's element count; fails unless at most max. */
uint32_t p11i_mpr_array(struct p11i_mpr *r, uint32_t max);
uint32_t p11i_mpr_map(struct p11i_mpr *r, uint32_t max);
/* p11i_mpr_skip skips one value of any type the wire uses. */
void p11i_mpr_skip(struct p11i_mpr *r);
/* p11i_mpr_finish returns 0, or -1 with r->why set (trailing bytes too). */
int p11i_mpr_finish(struct p11i_mpr *r);

#endif
