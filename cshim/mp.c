/* mp: see mp.h. */
#include "mp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Writing                                                             */

void p11i_mpw_reset(struct p11i_mpw *w)
{
	/* The header is reserved by the first append (room). */
	w->len = 0;
	w->err = 0;
}

void p11i_mpw_free(struct p11i_mpw *w)
{
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
	w->err = 0;
}

/* room makes n more bytes writable; 0 when the writer failed. */
static int room(struct p11i_mpw *w, size_t n)
{
	size_t want, cap;
	uint8_t *b;

	if (w->err)
		return 0;
	if (w->len < P11I_MP_HEADER)
		w->len = P11I_MP_HEADER;
	if (n > SIZE_MAX - w->len) {
		w->err = ENOMEM;
		return 0;
	}
	want = w->len + n;
	if (want <= w->cap)
		return 1;
	cap = w->cap ? w->cap : 4096;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	b = realloc(w->buf, cap);
	if (b == NULL) {
		w->err = ENOMEM;
		return 0;
	}
	w->buf = b;
	w->cap = cap;
	return 1;
}

static void put(struct p11i_mpw *w, const void *p, size_t n)
{
	if (n == 0 || !room(w, n))
		return;
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void put1(struct p11i_mpw *w, uint8_t c) { put(w, &c, 1); }

/* put_be writes v big-endian in n bytes after the code c. */
static void put_be(struct p11i_mpw *w, uint8_t c, uint64_t v, int n)
{
	uint8_t b[9];

	b[0] = c;
	for (int i = 0; i < n; i++)
		b[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	put(w, b, (size_t)n + 1);
}

void p11i_mpw_uint(struct p11i_mpw *w, uint64_t v)
{
	if (v <= 0x7f)
		put1(w, (uint8_t)v);
	else if (v <= 0xff)
		put_be(w, 0xcc, v, 1);
	else if (v <= 0xffff)
		put_be(w, 0xcd, v, 2);
	else if (v <= 0xffffffff)
		put_be(w, 0xce, v, 4);
	else
		put_be(w, 0xcf, v, 8);
}

void p11i_mpw_nil(struct p11i_mpw *w) { put1(w, 0xc0); }

void p11i_mpw_bool(struct p11i_mpw *w, int v) { put1(w, v ? 0xc3 : 0xc2); }

void p11i_mpw_bytes(struct p11i_mpw *w, const void *b, size_t n)
{
	if (n > 0xffffffff) {
		w->err = w->err ? w->err : EMSGSIZE;
		return;
	}
	if (n <= 0xff)
		put_be(w, 0xc4, n, 1);
	else if (n <= 0xffff)
		put_be(w, 0xc5, n, 2);
	else
		put_be(w, 0xc6, n, 4);
	put(w, b, n);
}

void p11i_mpw_str(struct p11i_mpw *w, const char *s, size_t n)
{
	if (n > 0xffffffff) {
		w->err = w->err ? w->err : EMSGSIZE;
		return;
	}
	if (n < 32)
		put1(w, (uint8_t)(0xa0 | n));
	else if (n <= 0xff)
		put_be(w, 0xd9, n, 1);
	else if (n <= 0xffff)
		put_be(w, 0xda, n, 2);
	else
		put_be(w, 0xdb, n, 4);
	put(w, s, n);
}

void p11i_mpw_array(struct p11i_mpw *w, uint32_t n)
{
	if (n < 16)
		put1(w, (uint8_t)(0x90 | n));
	else if (n <= 0xffff)
		put_be(w, 0xdc, n, 2);
	else
		put_be(w, 0xdd, n, 4);
}

void p11i_mpw_map(struct p11i_mpw *w, uint32_t n)
{
	if (n < 16)
		put1(w, (uint8_t)(0x80 | n));
	else if (n <= 0xffff)
		put_be(w, 0xde, n, 2);
	else
		put_be(w, 0xdf, n, 4);
}

static void put_le64(uint8_t *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

void p11i_mpw_ref(struct p11i_mpw *w, uint64_t off, uint64_t n)
{
	uint8_t b[P11I_MP_REF_SIZE] = { 0xd8, P11I_MP_EXT_REGION };

	put_le64(b + 2, off);
	put_le64(b + 10, n);
	put(w, b, sizeof b);
}

size_t p11i_mpw_frame(struct p11i_mpw *w)
{
	size_t body;

	if (!room(w, 0))
		return 0;
	body = w->len - P11I_MP_HEADER;
	if (body > 0xffffffff) {
		w->err = EMSGSIZE;
		return 0;
	}
	for (int i = 0; i < 4; i++)
		w->buf[i] = (uint8_t)(body >> (8 * i));
	return body;
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */

void p11i_mpr_init(struct p11i_mpr *r, const void *body, size_t len, const void *region, size_t region_len)
{
	r->buf = body;
	r->len = len;
	r->pos = 0;
	r->region = region;
	r->region_len = region != NULL ? region_len : 0;
	r->region_used = 0;
	r->failed = 0;
	r->why[0] = '\0';
}

void p11i_mpr_fail(struct p11i_mpr *r, const char *fmt, ...)
{
	va_list ap;

	if (r->failed)
		return;
	r->failed = 1;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof r->why, fmt, ap);
	va_end(ap);
}

/* peek returns the next code, or -1 (failing r) at the end. */
static int peek(struct p11i_mpr *r, const char *what)
{
	if (r->failed)
		return -1;
	if (r->pos >= r->len) {
		p11i_mpr_fail(r, "%s: end of the frame", what);
		return -1;
	}
	return r->buf[r->pos];
}

/* take reads n big-endian bytes after the current code. */
static int take_be(struct p11i_mpr *r, int n, uint64_t *v, const char *what)
{
	if (r->len - r->pos < (size_t)n + 1) {
		p11i_mpr_fail(r, "%s: end of the frame", what);
		return 0;
	}
	*v = 0;
	for (int i = 0; i < n; i++)
		*v = *v << 8 | r->buf[r->pos + 1 + (size_t)i];
	r->pos += (size_t)n + 1;
	return 1;
}

uint64_t p11i_mpr_uint(struct p11i_mpr *r)
{
	int c = peek(r, "uint");
	uint64_t v = 0;

	if (c < 0)
		return 0;
	if (c <= 0x7f) {
		r->pos++;
		return (uint64_t)c;
	}
	switch (c) {
	case 0xcc:
		return take_be(r, 1, &v, "uint") ? v : 0;
	case 0xcd:
		return take_be(r, 2, &v, "uint") ? v : 0;
	case 0xce:
		return take_be(r, 4, &v, "uint") ? v : 0;
	case 0xcf:
		return take_be(r, 8, &v, "uint") ? v : 0;
	}
	p11i_mpr_fail(r, "expected unsigned integer, got code 0x%02x", c);
	return 0;
}

uint64_t p11i_mpr_uint_max(struct p11i_mpr *r, uint64_t max, const char *what)
{
	uint64_t v = p11i_mpr_uint(r);

	if (v > max) {
		p11i_mpr_fail(r, "%s %llu exceeds %llu", what, (unsigned long long)v, (unsigned long long)max);
		return 0;
	}
	return v;
}

int p11i_mpr_bool(struct p11i_mpr *r)
{
	int c = peek(r, "bool");

	if (c == 0xc2 || c == 0xc3) {
		r->pos++;
		return c == 0xc3;
	}
	if (c >= 0)
		p11i_mpr_fail(r, "expected bool, got code 0x%02x", c);
	return 0;
}

int p11i_mpr_is_nil(struct p11i_mpr *r)
{
	if (peek(r, "value") != 0xc0)
		return 0;
	r->pos++;
	return 1;
}

int p11i_mpr_is_false(struct p11i_mpr *r)
{
	if (r->failed || r->pos >= r->len || r->buf[r->pos] != 0xc2)
		return 0;
	r->pos++;
	return 1;
}

int p11i_mpr_peek_array(const struct p11i_mpr *r)
{
	int c;

	if (r->failed || r->pos >= r->len)
		return 0;
	c = r->buf[r->pos];
	return (c >= 0x90 && c <= 0x9f) || c == 0xdc || c == 0xdd;
}

int p11i_mpr_peek_bytes(const struct p11i_mpr *r)
{
	int c;

	if (r->failed || r->pos >= r->len)
		return 0;
	c = r->buf[r->pos];
	return c == 0xc4 || c == 0xc5 || c == 0xc6;
}

/* view returns n bytes of the frame at pos, or fails. */
static const uint8_t *view(struct p11i_mpr *r, uint64_t n, size_t *out, const char *what)
{
	const uint8_t *p;

	if (n > r->len - r->pos) {
		p11i_mpr_fail(r, "%s length %llu past the end of the frame", what, (unsigned long long)n);
		*out = 0;
		return NULL;
	}
	p = r->buf + r->pos;
	r->pos += (size_t)n;
	*out = (size_t)n;
	return p;
}

const uint8_t *p11i_mpr_bytes(struct p11i_mpr *r, size_t *n)
{
	int c = peek(r, "bytes");
	uint64_t len;
	int ok;

	*n = 0;
	switch (c) {
	case 0xc4:
		ok = take_be(r, 1, &len, "bytes");
		break;
	case 0xc5:
		ok = take_be(r, 2, &len, "bytes");
		break;
	case 0xc6:
		ok = take_be(r, 4, &len, "bytes");
		break;
	default:
		if (c >= 0)
			p11i_mpr_fail(r, "expected bytes, got code 0x%02x", c);
		return NULL;
	}
	return ok ? view(r, len, n, "bytes") : NULL;
}

const char *p11i_mpr_str(struct p11i_mpr *r, size_t *n)
{
	int c = peek(r, "string");
	uint64_t len = 0;
	int ok = 1;

	*n = 0;
	if (c >= 0xa0 && c <= 0xbf) {
		r->pos++;
		len = (uint64_t)(c & 0x1f);
	} else if (c == 0xd9) {
		ok = take_be(r, 1, &len, "string");
	} else if (c == 0xda) {
		ok = take_be(r, 2, &len, "string");
	} else if (c == 0xdb) {
		ok = take_be(r, 4, &len, "string");
	} else {
		if (c >= 0)
			p11i_mpr_fail(r, "expected string, got code 0x%02x", c);
		return NULL;
	}
	return ok ? (const char *)view(r, len, n, "string") : NULL;
}

static uint64_t le64(const uint8_t *b)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

const uint8_t *p11i_mpr_data(struct p11i_mpr *r, size_t *n)
{
	uint64_t off, len;

	*n = 0;
	if (r->failed || r->pos >= r->len || r->buf[r->pos] != 0xd8)
		return p11i_mpr_bytes(r, n);
	if (r->len - r->pos < P11I_MP_REF_SIZE || r->buf[r->pos + 1] != P11I_MP_EXT_REGION) {
		p11i_mpr_fail(r, "bad region reference");
		return NULL;
	}
	off = le64(r->buf + r->pos + 2);
	len = le64(r->buf + r->pos + 10);
	r->pos += P11I_MP_REF_SIZE;
	if (r->region == NULL || off > r->region_len || len > r->region_len - off) {
		p11i_mpr_fail(r, "region reference [%llu, +%llu) outside a region of %zu bytes", (unsigned long long)off,
			      (unsigned long long)len, r->region_len);
		return NULL;
	}
	if (off + len > r->region_used)
		r->region_used = (size_t)(off + len);
	*n = (size_t)len;
	return r->region + off;
}

/* count reads a fixed, 16- or 32-bit element count. */
static uint32_t count(struct p11i_mpr *r, int fix, int c16, int c32, uint32_t max, const char *what)
{
	int c = peek(r, what);
	uint64_t n = 0;

	if (c < 0)
		return 0;
	if (c >= fix && c <= fix + 0x0f) {
		r->pos++;
		n = (uint64_t)(c & 0x0f);
	} else if (c == c16) {
		if (!take_be(r, 2, &n, what))
			return 0;
	} else if (c == c32) {
		if (!take_be(r, 4, &n, what))
			return 0;
	} else {
		p11i_mpr_fail(r, "expected %s, got code 0x%02x", what, c);
		return 0;
	}
	if (n > max) {
		p11i_mpr_fail(r, "%s of %llu elements, at most %u allowed", what, (unsigned long long)n, max);
		return 0;
	}
	return (uint32_t)n;
}

uint32_t p11i_mpr_array(struct p11i_mpr *r, uint32_t max) { return count(r, 0x90, 0xdc, 0xdd, max, "array"); }

uint32_t p11i_mpr_map(struct p11i_mpr *r, uint32_t max) { return count(r, 0x80, 0xde, 0xdf, max, "map"); }

/* skip_depth bounds the nesting skip follows: a frame cannot recurse the
 * proxy's stack away. */
static void skip_depth(struct p11i_mpr *r, int depth)
{
	int c = peek(r, "value");
	size_t n;
	uint32_t k;

	if (c < 0)
		return;
	if (depth > 16) {
		p11i_mpr_fail(r, "values nested too deep");
		return;
	}
	if (c <= 0x7f || c == 0xcc || c == 0xcd || c == 0xce || c == 0xcf) {
		p11i_mpr_uint(r);
	} else if (c == 0xc0 || c == 0xc2 || c == 0xc3) {
		r->pos++;
	} else if (c == 0xc4 || c == 0xc5 || c == 0xc6 || c == 0xd8) {
		p11i_mpr_data(r, &n);
	} else if ((c >= 0xa0 && c <= 0xbf) || c == 0xd9 || c == 0xda || c == 0xdb) {
		p11i_mpr_str(r, &n);
	} else if ((c >= 0x90 && c <= 0x9f) || c == 0xdc || c == 0xdd) {
		k = p11i_mpr_array(r, UINT32_MAX);
		while (k-- > 0 && !r->failed)
			skip_depth(r, depth + 1);
	} else if ((c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf) {
		k = p11i_mpr_map(r, UINT32_MAX);
		while (k-- > 0 && !r->failed) {
			skip_depth(r, depth + 1);
			skip_depth(r, depth + 1);
		}
	} else {
		p11i_mpr_fail(r, "unexpected code 0x%02x", c);
	}
}

void p11i_mpr_skip(struct p11i_mpr *r) { skip_depth(r, 0); }

int p11i_mpr_finish(struct p11i_mpr *r)
{
	if (!r->failed && r->pos != r->len)
		p11i_mpr_fail(r, "%zu trailing bytes", r->len - r->pos);
	return r->failed ? -1 : 0;
}
