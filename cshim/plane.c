/* plane: see plane.h. The rules are those of proxy/encode.go, which this
 * code replaces: the comments there say why each one holds. */
#include "plane.h"
#include "spin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ATTR_SIZE sizeof(CK_ATTRIBUTE)
#define MAX_PREFILL (64u << 10) /* nested value buffers whose bytes cross */
#define UNAVAILABLE ((uint64_t)CK_UNAVAILABLE_INFORMATION)

void p11i_call_init(struct p11i_call *c, void *region, size_t len, uint64_t gen)
{
	memset(c, 0, sizeof *c);
	c->region = region;
	c->region_len = region != NULL ? len : 0;
	c->to_vendor = p11i_handle_to_vendor;
	c->to_app = p11i_handle_to_app;
	c->gen = gen;
	c->timeout_set = -1;
}

void p11i_call_free(struct p11i_call *c)
{
	p11i_mpw_free(&c->w);
	free(c->rbuf);
	c->rbuf = NULL;
	c->rcap = 0;
	free(c->plan);
	c->plan = NULL;
	c->nplan = c->capplan = 0;
}

int p11i_plausible(uintptr_t p, uint64_t n)
{
	return p >= 4096 && (uint64_t)p + n >= (uint64_t)p && (uint64_t)p + n <= (1ULL << 56);
}

int p11i_ckr_defined(CK_RV rv)
{
	size_t lo = 0, hi = P11I_NCKR;

	if (rv >= CKR_VENDOR_DEFINED)
		return 1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p11i_ckr_codes[mid] == rv)
			return 1;
		if (p11i_ckr_codes[mid] < rv)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static uint64_t map(p11i_map_fn fn, uint64_t gen, uint64_t v) { return fn != NULL ? fn(gen, v) : v; }

static uint64_t ulong_at(uintptr_t p) { return *(const CK_ULONG *)p; }

static uint64_t prefill(uintptr_t p) { return p11i_plausible(p, sizeof(CK_ULONG)) ? ulong_at(p) : 0; }

static int nested_type(CK_ATTRIBUTE_TYPE t) { return p11i_nested_type(t); }

/* ------------------------------------------------------------------ */
/* The plan: writes queued until the reply checked                     */

static void queue(struct p11i_call *c, struct p11i_write w)
{
	if (c->nplan == c->capplan) {
		size_t cap = c->capplan ? 2 * c->capplan : 32;
		struct p11i_write *p = realloc(c->plan, cap * sizeof *p);
		if (p == NULL) {
			c->plan_err = 1;
			return;
		}
		c->plan = p;
		c->capplan = cap;
	}
	c->plan[c->nplan++] = w;
}

static void q_copy(struct p11i_call *c, void *dst, const uint8_t *b, size_t n)
{
	if (n > 0)
		queue(c, (struct p11i_write){ .dst = dst, .bytes = b, .n = n });
}

static void q_ulong(struct p11i_call *c, void *dst, uint64_t v)
{
	queue(c, (struct p11i_write){ .dst = dst, .value = v, .size = 8 });
}

static void q_handle(struct p11i_call *c, void *dst, uint64_t v)
{
	queue(c, (struct p11i_write){ .dst = dst, .value = v, .size = 8, .map = 1 });
}

#include "mechparams.c"

/* ------------------------------------------------------------------ */
/* Requests                                                            */

/* data encodes n bytes at p inline, or, when large and they fit, through
 * the region. */
static void data(struct p11i_call *c, const void *p, size_t n)
{
	if (n >= P11I_REGION_MIN && c->region != NULL) {
		size_t start = (c->region_used + 63) & ~(size_t)63;
		if (start <= c->region_len && n <= c->region_len - start) {
			memcpy(c->region + start, p, n);
			c->region_used = start + n;
			p11i_mpw_ref(&c->w, start, n);
			return;
		}
	}
	p11i_mpw_bytes(&c->w, p, n);
}

static int template_in(struct p11i_call *c, const CK_ATTRIBUTE *t, uint64_t n, int depth)
{
	if (t == NULL) {
		p11i_mpw_nil(&c->w);
		p11i_mpw_uint(&c->w, n);
		return 1;
	}
	if (depth > (int)P11I_MAX_NESTING || n > P11I_MAX_TEMPLATE)
		return 0;
	p11i_mpw_array(&c->w, (uint32_t)n);
	for (uint64_t i = 0; i < n; i++) {
		p11i_mpw_uint(&c->w, t[i].type);
		if (t[i].pValue == NULL) {
			p11i_mpw_nil(&c->w);
			p11i_mpw_uint(&c->w, t[i].ulValueLen);
		} else if (nested_type(t[i].type)) {
			if (!template_in(c, t[i].pValue, t[i].ulValueLen / ATTR_SIZE, depth + 1))
				return 0;
		} else {
			data(c, t[i].pValue, t[i].ulValueLen);
		}
	}
	return 1;
}

static void template_get(struct p11i_call *c, const CK_ATTRIBUTE *t, uint64_t n, int depth)
{
	if (t == NULL || depth > (int)P11I_MAX_NESTING || n > P11I_MAX_TEMPLATE) {
		p11i_mpw_nil(&c->w);
		p11i_mpw_uint(&c->w, n);
		return;
	}
	p11i_mpw_array(&c->w, (uint32_t)n);
	for (uint64_t i = 0; i < n; i++) {
		p11i_mpw_uint(&c->w, t[i].type);
		if (t[i].pValue == NULL) {
			p11i_mpw_nil(&c->w);
			p11i_mpw_uint(&c->w, t[i].ulValueLen);
		} else if (nested_type(t[i].type)) {
			template_get(c, t[i].pValue, t[i].ulValueLen / ATTR_SIZE, depth + 1);
		} else if (depth > 0 && t[i].ulValueLen <= MAX_PREFILL) {
			p11i_mpw_bytes(&c->w, t[i].pValue, t[i].ulValueLen);
		} else {
			p11i_mpw_uint(&c->w, t[i].ulValueLen);
		}
	}
}

static void init_args(struct p11i_call *c, const CK_C_INITIALIZE_ARGS *ia)
{
	unsigned mask = 0;

	if (ia == NULL) {
		p11i_mpw_nil(&c->w);
		return;
	}
	/* The proxy's own replay of the application's arguments. */
	p11i_mpw_array(&c->w, 3);
	p11i_mpw_uint(&c->w, ia->flags);
	mask |= ia->CreateMutex != NULL ? 1u : 0;
	mask |= ia->DestroyMutex != NULL ? 2u : 0;
	mask |= ia->LockMutex != NULL ? 4u : 0;
	mask |= ia->UnlockMutex != NULL ? 8u : 0;
	p11i_mpw_uint(&c->w, mask);
	if (ia->pReserved == NULL)
		p11i_mpw_nil(&c->w);
	else
		p11i_mpw_str(&c->w, ia->pReserved, strlen(ia->pReserved));
}

static void out_ulong(struct p11i_call *c, uintptr_t p)
{
	if (p == 0)
		p11i_mpw_nil(&c->w);
	else
		p11i_mpw_uint(&c->w, prefill(p));
}

static void cap_of(struct p11i_call *c, uintptr_t lenp)
{
	uint64_t v = 0;

	if (lenp == 0) {
		p11i_mpw_nil(&c->w);
	} else {
		v = prefill(lenp);
		p11i_mpw_uint(&c->w, v);
	}
	c->caps[c->ncaps++] = v;
}

/* structure encodes the parameter structure at p of the given layout as
 * [its size, its fields]: a mechanism may take structures of several sizes
 * (CKM_AES_GCM: CK_GCM_PARAMS, or CK_GCM_WRAP_PARAMS to wrap), and the size
 * tells the host which one to rebuild. */
static int structure(struct p11i_call *c, int layout, const void *p)
{
	p11i_mpw_array(&c->w, 2);
	p11i_mpw_uint(&c->w, p11i_layouts[layout].size);
	return mp_structure(c, &p11i_layouts[layout], p, (struct mp_scope){ NULL, NULL }, 0);
}

/* message_param encodes a message's parameter (kind M): the mechanism of
 * the session's message-based operation, then the parameter as that
 * mechanism's per-message structure, opaque bytes, or NULL and a length.
 * With no operation on record the vendor will refuse the call: the
 * parameter crosses as zeros of its length, never read here. */
static CK_RV message_param(struct p11i_call *c, const struct p11i_func *f, const void *p, uint64_t n)
{
	static const uint8_t zeros[256];
	CK_MECHANISM_TYPE mech = 0;
	int layout, have = f->msgop >= 0 && p11i_sessions_msg(c->session, f->msgop & 3, &mech);

	p11i_mpw_uint(&c->w, have ? mech : 0);
	if (p == NULL || (!have && n > sizeof zeros)) {
		p11i_mpw_nil(&c->w);
		p11i_mpw_uint(&c->w, n);
	} else if (!have) {
		p11i_mpw_bytes(&c->w, zeros, n);
	} else if (!mp_message_lookup(mech, &layout) ||
		   (layout >= 0 && n == p11i_layouts[layout].size && structure(c, layout, p) != MP_OK)) {
		snprintf(c->why, sizeof c->why,
			 "%s: the per-message parameter of mechanism 0x%lx cannot be carried (mechanism parameter cannot be carried): refusing it with CKR_MECHANISM_PARAM_INVALID",
			 f->name, (unsigned long)mech);
		return CKR_MECHANISM_PARAM_INVALID;
	} else if (layout < 0 || n != p11i_layouts[layout].size) {
		p11i_mpw_bytes(&c->w, p, n);
	} else if (p11i_layouts[layout].outs > 0) {
		c->msglayout = layout;
	}
	return CKR_OK;
}

/* function_name encodes C_Async*'s function name (kind N) and notes which
 * function it names; 0 when the name cannot be read. */
static int function_name(struct p11i_call *c, uintptr_t p)
{
	char name[64];
	long n;

	if (p == 0) {
		p11i_mpw_nil(&c->w);
		return 1;
	}
	n = p11i_copy_string(name, (const void *)p, sizeof name);
	if (n == -1)
		return 0;
	if (n == -2) /* no function has so long a name: the vendor says so */
		n = sizeof name - 1;
	name[n] = '\0';
	for (int i = 0; i < P11I_NFUNCS; i++)
		if (strcmp(name, p11i_funcs[i].name) == 0)
			c->fname = i;
	p11i_mpw_str(&c->w, name, (size_t)n);
	return 1;
}

CK_RV p11i_encode(struct p11i_call *c, int id, const uintptr_t *a)
{
	static const uint8_t zeros[256];
	const struct p11i_func *f;

	if (id < 0 || id >= P11I_NFUNCS)
		return CKR_FUNCTION_NOT_SUPPORTED;
	f = &p11i_funcs[id];
	p11i_mpw_reset(&c->w);
	c->region_used = 0;
	c->ncaps = 0;
	c->mechlayout = -1;
	c->msglayout = -1;
	c->session = 0;
	c->fname = -1;
	c->has_uncarried = 0;
	c->why[0] = '\0';
	if (f->local)
		return CKR_FUNCTION_NOT_SUPPORTED; /* the shim's own, never on the wire */
	p11i_mpw_uint(&c->w, (uint64_t)id + (uint64_t)P11I_ROUTE_STRIDE * (uint64_t)c->route);
	for (const char *k = f->args; *k != '\0'; a += p11i_kind_params(*k), k++) {
		switch (*k) {
		case 'u':
		case 'b':
		case 'l':
			p11i_mpw_uint(&c->w, a[0]);
			break;
		case 's':
			c->session = a[0];
			p11i_mpw_uint(&c->w, map(c->to_vendor, c->gen, a[0]));
			break;
		case 'o':
			p11i_mpw_uint(&c->w, map(c->to_vendor, c->gen, a[0]));
			break;
		case 'y':
			if (a[0] == 0) {
				p11i_mpw_nil(&c->w);
				p11i_mpw_uint(&c->w, a[1]);
			} else if (f->secret) {
				p11i_mpw_bytes(&c->w, (const void *)a[0], a[1]); /* stays in the wiped frame */
			} else {
				data(c, (const void *)a[0], a[1]);
			}
			break;
		case 'z':
			if (a[0] == 0)
				p11i_mpw_nil(&c->w);
			else
				p11i_mpw_bytes(&c->w, (const void *)a[0], 32);
			break;
		case 'x':
			p11i_mpw_bool(&c->w, a[0] != 0);
			break;
		case 'n':
			break;
		case 'I':
			init_args(c, (const CK_C_INITIALIZE_ARGS *)a[0]);
			break;
		case 'a':
			if (!template_in(c, (const CK_ATTRIBUTE *)a[0], a[1], 0))
				return CKR_ATTRIBUTE_VALUE_INVALID;
			break;
		case 'm': {
			const CK_MECHANISM *m = (const CK_MECHANISM *)a[0];
			int layout;
			if (m == NULL) {
				p11i_mpw_nil(&c->w);
				break;
			}
			p11i_mpw_uint(&c->w, m->mechanism);
			if (m->pParameter == NULL) {
				p11i_mpw_nil(&c->w);
				p11i_mpw_uint(&c->w, m->ulParameterLen);
			} else if (!mp_lookup_size(m->mechanism, m->ulParameterLen, &layout)) {
				/* Its structure is unknown, so its pointers cannot
				 * cross: the host only asks the vendor whether it
				 * knows the mechanism. */
				c->uncarried = m->mechanism;
				c->has_uncarried = 1;
				p11i_mpw_bool(&c->w, 0);
			} else if (layout < 0 || m->ulParameterLen != p11i_layouts[layout].size) {
				p11i_mpw_bytes(&c->w, m->pParameter, m->ulParameterLen);
			} else if (structure(c, layout, m->pParameter) != MP_OK) {
				snprintf(c->why, sizeof c->why,
					 "%s: the parameter of mechanism 0x%lx cannot be carried (mechanism parameter cannot be carried): refusing it with CKR_MECHANISM_PARAM_INVALID",
					 f->name, (unsigned long)m->mechanism);
				return CKR_MECHANISM_PARAM_INVALID;
			} else if (p11i_layouts[layout].outs > 0) {
				c->mechlayout = layout;
			}
			break;
		}
		case 'M': {
			CK_RV rv = message_param(c, f, (const void *)a[0], a[1]);
			if (rv != CKR_OK)
				return rv;
			break;
		}
		case 'N':
			if (!function_name(c, a[0])) {
				snprintf(c->why, sizeof c->why, "%s: the function name cannot be read: CKR_ARGUMENTS_BAD", f->name);
				return CKR_ARGUMENTS_BAD;
			}
			break;
		case 'D':
			if (a[0] == 0) {
				p11i_mpw_nil(&c->w);
			} else {
				CK_ASYNC_DATA d = { 0 };
				if (p11i_plausible(a[0], sizeof d))
					memcpy(&d, (const void *)a[0], sizeof d);
				p11i_mpw_array(&c->w, 2);
				p11i_mpw_uint(&c->w, d.ulVersion);
				p11i_mpw_uint(&c->w, d.ulValue);
			}
			break;
		case 'B':
			p11i_mpw_bool(&c->w, a[0] != 0);
			p11i_mpw_uint(&c->w, a[1]);
			break;
		case 'Y':
			cap_of(c, a[1]);
			p11i_mpw_bool(&c->w, a[0] != 0);
			break;
		case 'G':
			if (a[1] > P11I_MAX_BUFFER) {
				snprintf(c->why, sizeof c->why, "%s: %lu bytes asked for, more than one call carries (%lu)",
					 f->name, (unsigned long)a[1], (unsigned long)P11I_MAX_BUFFER);
				return CKR_HOST_MEMORY;
			}
			p11i_mpw_bool(&c->w, a[0] != 0);
			p11i_mpw_uint(&c->w, a[1]);
			break;
		case 'A':
			template_get(c, (const CK_ATTRIBUTE *)a[0], a[1], 0);
			break;
		case 'L':
		case 'K':
			p11i_mpw_bool(&c->w, a[0] != 0);
			cap_of(c, a[1]);
			break;
		case 'F':
			p11i_mpw_bool(&c->w, a[0] != 0);
			p11i_mpw_uint(&c->w, a[1]);
			out_ulong(c, a[2]);
			break;
		case 'U':
		case 'P':
			out_ulong(c, a[0]);
			break;
		case 'S':
		case 'O':
			/* A handle variable holds the application's number: the
			 * vendor gets its own for it (0 for one it never issued),
			 * so a vendor that leaves it alone is seen to. */
			if (a[0] == 0)
				p11i_mpw_nil(&c->w);
			else
				p11i_mpw_uint(&c->w, map(c->to_vendor, c->gen, prefill(a[0])));
			break;
		default: { /* i j k e q: output structures, with the application's bytes */
			unsigned size = p11i_info_size(*k);
			if (a[0] == 0)
				p11i_mpw_nil(&c->w);
			else if (p11i_plausible(a[0], size))
				p11i_mpw_bytes(&c->w, (const void *)a[0], size);
			else
				p11i_mpw_bytes(&c->w, zeros, size);
			break;
		}
		}
	}
	if (c->w.err != 0) {
		snprintf(c->why, sizeof c->why, "%s: encoding: out of memory", f->name);
		return CKR_GENERAL_ERROR;
	}
	if (c->w.len - P11I_MP_HEADER > P11I_MAX_FRAME) {
		snprintf(c->why, sizeof c->why, "%s: the call carries %zu bytes, more than the %lu-byte frame cap", f->name,
			 c->w.len - P11I_MP_HEADER, (unsigned long)P11I_MAX_FRAME);
		return CKR_HOST_MEMORY;
	}
	p11i_mpw_frame(&c->w);
	return CKR_OK;
}

/* ------------------------------------------------------------------ */
/* Replies                                                             */

static void apply(struct p11i_call *c)
{
	for (size_t i = 0; i < c->nplan; i++) {
		struct p11i_write *w = &c->plan[i];
		if (w->bytes != NULL)
			memcpy(w->dst, w->bytes, w->n);
		else if (w->size == 1)
			*(uint8_t *)w->dst = (uint8_t)w->value;
		else
			*(CK_ULONG *)w->dst = w->map ? map(c->to_app, c->gen, w->value) : w->value;
	}
	c->nplan = 0;
}

/* opt_uint reads a value that must be present exactly when want. */
static uint64_t opt_uint(struct p11i_mpr *r, int want, const char *what)
{
	uint64_t v;

	if (p11i_mpr_is_nil(r)) {
		if (want)
			p11i_mpr_fail(r, "missing %s", what);
		return 0;
	}
	v = p11i_mpr_uint(r);
	if (!want)
		p11i_mpr_fail(r, "a %s for a NULL pointer", what);
	return v;
}

static void template_out(struct p11i_call *c, struct p11i_mpr *r, CK_ATTRIBUTE *t, uint64_t n, int depth, int ok)
{
	if (t == NULL || depth > (int)P11I_MAX_NESTING || n > P11I_MAX_TEMPLATE) {
		if (!p11i_mpr_is_nil(r))
			p11i_mpr_fail(r, "a template where the application gave none");
		return;
	}
	uint32_t got = p11i_mpr_array(r, P11I_MAX_TEMPLATE);
	if (r->failed)
		return;
	if (got != n) {
		p11i_mpr_fail(r, "%u attributes for a template of %llu", got, (unsigned long long)n);
		return;
	}
	for (uint64_t i = 0; i < n && !r->failed; i++) {
		CK_ATTRIBUTE *at = &t[i];
		uint64_t capacity = at->ulValueLen;
		int nested = nested_type(at->type) && at->pValue != NULL;
		uint64_t typ = p11i_mpr_uint(r), length = p11i_mpr_uint(r);
		size_t len;
		const uint8_t *b;

		if (r->failed)
			return;
		if (depth == 0 && typ != at->type) {
			p11i_mpr_fail(r, "attribute 0x%lx came back as 0x%llx", (unsigned long)at->type, (unsigned long long)typ);
			return;
		}
		if (p11i_mpr_is_nil(r)) {
			if (at->pValue != NULL && length > capacity && length != UNAVAILABLE) {
				if (ok) {
					p11i_mpr_fail(r, "CKR_OK with attribute 0x%llx of %llu bytes for a buffer of %llu",
						      (unsigned long long)typ, (unsigned long long)length,
						      (unsigned long long)capacity);
					return;
				}
				length = UNAVAILABLE;
			} else if (at->pValue != NULL && ok && length > capacity) {
				p11i_mpr_fail(r, "CKR_OK with attribute 0x%llx unavailable (CK_UNAVAILABLE_INFORMATION) for a buffer of %llu",
					      (unsigned long long)typ, (unsigned long long)capacity);
				return;
			}
		} else if (p11i_mpr_peek_array(r)) {
			if (!nested) {
				p11i_mpr_fail(r, "a nested template for a plain attribute");
				return;
			}
			if (length > capacity) {
				p11i_mpr_fail(r, "attribute 0x%llx: a nested template of %llu bytes for room for %llu",
					      (unsigned long long)typ, (unsigned long long)length, (unsigned long long)capacity);
				return;
			}
			template_out(c, r, at->pValue, capacity / ATTR_SIZE, depth + 1, ok);
		} else {
			b = p11i_mpr_data(r, &len);
			if (r->failed)
				return;
			if (at->pValue == NULL || nested || len != length || length > capacity) {
				p11i_mpr_fail(r, "attribute 0x%llx: %zu bytes (length %llu) for a buffer of %llu",
					      (unsigned long long)typ, len, (unsigned long long)length,
					      (unsigned long long)capacity);
				return;
			}
			q_copy(c, at->pValue, b, len);
		}
		if (r->failed)
			return;
		q_ulong(c, &at->type, typ);
		q_ulong(c, &at->ulValueLen, length);
	}
}

static void list_out(struct p11i_call *c, struct p11i_mpr *r, char k, const uintptr_t *a, int *capi, int ok)
{
	uint64_t cap, n;
	uintptr_t countp = a[1];

	if (k == 'F') {
		cap = a[1];
		countp = a[2];
	} else {
		cap = c->caps[(*capi)++];
	}
	n = opt_uint(r, countp != 0, "count");
	if (r->failed)
		return;
	if (k == 'F' && countp != 0 && ok && n > cap) {
		p11i_mpr_fail(r, "CKR_OK with a count of %llu objects for room for %llu", (unsigned long long)n,
			      (unsigned long long)cap);
		return;
	}
	if (countp != 0)
		q_ulong(c, (void *)countp, n);
	if (p11i_mpr_is_nil(r)) {
		if (a[0] != 0 && countp != 0 && ok)
			p11i_mpr_fail(r, "CKR_OK with a count of %llu and no list, for room for %llu", (unsigned long long)n,
				      (unsigned long long)cap);
		return;
	}
	uint32_t items = p11i_mpr_array(r, P11I_MAX_FRAME / 8);
	if (r->failed)
		return;
	if (a[0] == 0 || !ok || items != n || n > cap) {
		p11i_mpr_fail(r, "a list of %u (count %llu) for room for %llu", items, (unsigned long long)n,
			      (unsigned long long)cap);
		return;
	}
	CK_ULONG *list = (CK_ULONG *)a[0];
	for (uint32_t j = 0; j < items && !r->failed; j++) {
		uint64_t v = p11i_mpr_uint(r);
		if (k == 'F')
			q_handle(c, &list[j], v);
		else
			q_ulong(c, &list[j], v);
	}
}

/* async_data_out checks C_AsyncComplete's result (kind D) and queues its
 * writes. The reply is nil (still pending, or nothing to say) or [result,
 * output]: the output lands in the buffer the application gave the call
 * that went pending (or C_AsyncJoin), whether or not it passed a
 * CK_ASYNC_DATA, never more than that buffer holds; the result, when the
 * vendor wrote one into the application's structure, is written whole,
 * its pValue naming that buffer as it would with the vendor loaded
 * directly. */
static void async_data_out(struct p11i_call *c, struct p11i_mpr *r, CK_ASYNC_DATA *d, uint64_t code)
{
	uintptr_t buf = 0;
	uint64_t cap = 0, version = 0, value_len = 0, h1 = 0, h2 = 0;
	size_t n = 0;
	const uint8_t *b = NULL;
	int has_value = 0, result = 0;

	if (p11i_mpr_is_nil(r))
		return;
	if (p11i_mpr_array(r, 2) != 2 || code == CKR_PENDING) {
		p11i_mpr_fail(r, "an asynchronous result while the operation is pending");
		return;
	}
	int pending = c->fname >= 0 && p11i_sessions_pending(c->session, c->fname, &buf, &cap);
	if (!p11i_mpr_is_nil(r)) {
		if (p11i_mpr_array(r, 5) != 5 || d == NULL) {
			p11i_mpr_fail(r, "an asynchronous result for no structure");
			return;
		}
		result = 1;
		version = p11i_mpr_uint(r);
		has_value = p11i_mpr_bool(r);
		value_len = p11i_mpr_uint(r);
		h1 = p11i_mpr_uint(r);
		h2 = p11i_mpr_uint(r);
	}
	if (!p11i_mpr_is_nil(r)) {
		b = p11i_mpr_data(r, &n);
		if (r->failed)
			return;
		/* Output comes with a completed operation only, into the
		 * buffer it was given. */
		if (!pending || code != CKR_OK || n > cap || (result && value_len != n)) {
			p11i_mpr_fail(r, "%zu bytes of asynchronous output (%s) for a buffer of %llu", n,
				      code == CKR_OK ? "CKR_OK" : "an error", (unsigned long long)(pending ? cap : 0));
			return;
		}
	}
	if (r->failed)
		return;
	/* The length says how much of the buffer holds the output: never
	 * more than it has, nor (with CKR_OK) more than came; with
	 * CKR_BUFFER_TOO_SMALL it is the length needed, as for any output. */
	if (result && code != CKR_BUFFER_TOO_SMALL &&
	    (value_len > (pending ? cap : 0) || (code == CKR_OK && has_value && value_len > n))) {
		p11i_mpr_fail(r, "an asynchronous output of %llu bytes, %zu of them sent, for a buffer of %llu",
			      (unsigned long long)value_len, n, (unsigned long long)(pending ? cap : 0));
		return;
	}
	if (b != NULL)
		q_copy(c, (void *)buf, b, n);
	if (!result)
		return;
	q_ulong(c, &d->ulVersion, version);
	queue(c, (struct p11i_write){ .dst = &d->pValue, .value = has_value && pending ? buf : 0, .size = 8 });
	q_ulong(c, &d->ulValue, value_len);
	q_handle(c, &d->hObject, h1);
	q_handle(c, &d->hAdditionalObject, h2);
}

/* output_buffer returns the output buffer argument of function f (kind Y
 * or G) and its capacity; 0 when it has none. */
static uintptr_t output_buffer(const struct p11i_call *c, const struct p11i_func *f, const uintptr_t *a, uint64_t *cap)
{
	int capi = 0;

	for (const char *k = f->args; *k != '\0'; a += p11i_kind_params(*k), k++) {
		if (*k == 'G') {
			*cap = a[1];
			return a[0];
		}
		if (*k == 'Y') {
			*cap = c->caps[capi];
			return a[0];
		}
		if (*k == 'L' || *k == 'K')
			capi++;
	}
	return 0;
}

/* track keeps what the proxy must remember of a session after a call that
 * returned rv (sessions.c). */
static void track(const struct p11i_call *c, int id, const uintptr_t *a, CK_RV rv)
{
	const struct p11i_func *f = &p11i_funcs[id];
	uint64_t cap = 0;
	uintptr_t buf;

	if (rv == CKR_PENDING && c->session != 0 && (buf = output_buffer(c, f, a, &cap)) != 0) {
		p11i_sessions_pend(c->session, id, buf, cap);
		return;
	}
	switch (id) {
	case P11I_ID_C_OpenSession:
		if (rv == CKR_OK && p11i_plausible(a[4], sizeof(CK_SESSION_HANDLE)))
			p11i_sessions_opened(*(const CK_SESSION_HANDLE *)a[4], a[0]);
		return;
	case P11I_ID_C_CloseSession:
		if (rv == CKR_OK)
			p11i_sessions_closed(a[0]);
		return;
	case P11I_ID_C_CloseAllSessions:
		if (rv == CKR_OK)
			p11i_sessions_closed_slot(a[0]);
		return;
	case P11I_ID_C_SessionCancel:
		if (rv == CKR_OK)
			p11i_sessions_cancel(a[0], a[1]);
		return;
	case P11I_ID_C_AsyncComplete:
		if (rv != CKR_PENDING && c->fname >= 0)
			p11i_sessions_unpend(c->session, c->fname);
		return;
	case P11I_ID_C_AsyncGetID:
		if (rv == CKR_OK && c->fname >= 0)
			p11i_sessions_unpend(c->session, c->fname);
		return;
	case P11I_ID_C_AsyncJoin:
		if (rv == CKR_OK && c->fname >= 0 && a[3] != 0)
			p11i_sessions_pend(c->session, c->fname, a[3], a[4]);
		return;
	}
	if (rv != CKR_OK || f->msgop < 4)
		return;
	if (f->msgop < 8) {
		const CK_MECHANISM *m = (const CK_MECHANISM *)a[1];
		if (m != NULL)
			p11i_sessions_set_msg(c->session, f->msgop - 4, m->mechanism, 1);
	} else {
		p11i_sessions_set_msg(c->session, f->msgop - 8, 0, 0);
	}
}

int p11i_decode(struct p11i_call *c, int id, const uintptr_t *a, const void *body, size_t len, CK_RV *rv)
{
	const struct p11i_func *f = &p11i_funcs[id];
	const uintptr_t *args = a; /* the loop below walks a */
	struct p11i_mpr r;
	int capi = 0, ok;
	uint64_t code;

	p11i_mpr_init(&r, body, len, c->region, c->region_len);
	c->nplan = 0;
	c->plan_err = 0;
	code = p11i_mpr_uint(&r);
	ok = code == CKR_OK;
	for (const char *k = f->args; *k != '\0' && !r.failed; a += p11i_kind_params(*k), k++) {
		size_t n;
		const uint8_t *b;

		switch (*k) {
		case 'm': {
			const CK_MECHANISM *m = (const CK_MECHANISM *)a[0];
			if (c->mechlayout >= 0 && m != NULL)
				mp_decode_out(c, &r, &p11i_layouts[c->mechlayout], m->pParameter, (struct mp_scope){ NULL, NULL }, ok);
			break;
		}
		case 'M':
			if (c->msglayout >= 0)
				mp_decode_out(c, &r, &p11i_layouts[c->msglayout], (uint8_t *)a[0], (struct mp_scope){ NULL, NULL }, ok);
			break;
		case 'D':
			async_data_out(c, &r, (CK_ASYNC_DATA *)a[0], code);
			break;
		case 'Y': {
			uint64_t cap = c->caps[capi++];
			uint64_t len_v = opt_uint(&r, a[1] != 0, "length");
			if (p11i_mpr_is_nil(&r)) {
				if (ok && a[0] != 0 && a[1] != 0)
					p11i_mpr_fail(&r, "CKR_OK with %llu bytes of output for a buffer of %llu",
						      (unsigned long long)len_v, (unsigned long long)cap);
			} else {
				b = p11i_mpr_data(&r, &n);
				if (r.failed)
					break;
				if (a[0] == 0 || a[1] == 0 || !ok || n != len_v || len_v > cap) {
					p11i_mpr_fail(&r, "%zu output bytes (length %llu) for a buffer of %llu", n,
						      (unsigned long long)len_v, (unsigned long long)cap);
					break;
				}
				q_copy(c, (void *)a[0], b, n);
			}
			if (a[1] != 0)
				q_ulong(c, (void *)a[1], len_v);
			break;
		}
		case 'G':
			if (!p11i_mpr_is_nil(&r)) {
				b = p11i_mpr_data(&r, &n);
				if (r.failed)
					break;
				if (a[0] == 0 || !ok || n != a[1]) {
					p11i_mpr_fail(&r, "%zu random bytes for a request of %lu", n, (unsigned long)a[1]);
					break;
				}
				q_copy(c, (void *)a[0], b, n);
			}
			break;
		case 'A':
			template_out(c, &r, (CK_ATTRIBUTE *)a[0], a[1], 0, ok);
			break;
		case 'L':
		case 'K':
		case 'F':
			list_out(c, &r, *k, a, &capi, ok);
			break;
		case 'U':
		case 'P':
		case 'S':
		case 'O': {
			if (p11i_mpr_is_nil(&r))
				break;
			uint64_t v = p11i_mpr_uint(&r);
			if (a[0] == 0) {
				p11i_mpr_fail(&r, "a value for a NULL pointer");
				break;
			}
			if (*k == 'S' || *k == 'O')
				q_handle(c, (void *)a[0], v);
			else
				q_ulong(c, (void *)a[0], v);
			break;
		}
		case 'i':
		case 'j':
		case 'k':
		case 'e':
		case 'q': {
			unsigned size = p11i_info_size(*k);
			if (p11i_mpr_is_nil(&r)) {
				if (a[0] != 0 && ok)
					p11i_mpr_fail(&r, "no structure for a successful call");
				break;
			}
			b = p11i_mpr_bytes(&r, &n);
			if (r.failed)
				break;
			if (a[0] == 0 || n != size) {
				p11i_mpr_fail(&r, "a %zu-byte structure where %u fit", n, size);
				break;
			}
			q_copy(c, (void *)a[0], b, n);
			break;
		}
		default:
			break; /* inputs: nothing comes back */
		}
	}
	if (p11i_mpr_finish(&r) != 0 || c->plan_err) {
		snprintf(c->why, sizeof c->why, "%s", c->plan_err ? "out of memory" : r.why);
		c->nplan = 0;
		return -1;
	}
	apply(c);
	*rv = (CK_RV)code;
	track(c, id, args, *rv);
	if (!p11i_ckr_defined(*rv)) {
		snprintf(c->why, sizeof c->why, "%s: the vendor module returned 0x%llx, a code no PKCS#11 version defines",
			 f->name, (unsigned long long)code);
		*rv = CKR_GENERAL_ERROR;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The exchange on the channel's socket                                */

#define KEEP_RBUF (1u << 20) /* a larger reply buffer is freed after use */

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* set_timeout sets fd's receive timeout (0: none); a timeout shorter than
 * a microsecond still is one, never "none". */
static int set_timeout(int fd, int64_t ns)
{
	struct timeval tv = { .tv_sec = ns / 1000000000, .tv_usec = (ns % 1000000000) / 1000 };

	if (ns > 0 && tv.tv_sec == 0 && tv.tv_usec == 0)
		tv.tv_usec = 1;
	return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

/* send_all writes the whole frame. MSG_NOSIGNAL keeps a dead host from
 * raising SIGPIPE in the application. */
static int send_all(struct p11i_call *c, int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EPIPE || errno == ECONNRESET))
			return P11I_RUN_CLOSED;
		if (k < 0) {
			snprintf(c->why, sizeof c->why, "send: %s", strerror(errno));
			return P11I_RUN_ERROR;
		}
		p += k;
		n -= (size_t)k;
	}
	return P11I_RUN_OK;
}

static int grow(struct p11i_call *c, size_t need)
{
	uint8_t *b;

	if (need <= c->rcap)
		return 1;
	b = realloc(c->rbuf, need);
	if (b == NULL)
		return 0;
	c->rbuf = b;
	c->rcap = need;
	return 1;
}

/* recv_frame reads one reply frame into c->rbuf; *len is its body's. On a
 * channel with a ring the socket may hold more than one frame (a doorbell
 * before a reply): exact reads no byte past the frame. */
static int recv_frame(struct p11i_call *c, int fd, int64_t timeout_ns, size_t *len, int exact)
{
	int64_t deadline = timeout_ns > 0 ? now_ns() + timeout_ns : 0;
	size_t have = 0, need = P11I_MP_HEADER;

	if (!grow(c, 4096)) {
		snprintf(c->why, sizeof c->why, "out of memory");
		return P11I_RUN_ERROR;
	}
	while (have < need) {
		ssize_t k = read(fd, c->rbuf + have, (exact ? need : c->rcap) - have);
		if (k < 0 && errno == EINTR) {
			/* Each retry would restart the receive timeout: re-arm it
			 * with what is left of the deadline. */
			if (deadline != 0) {
				int64_t left = deadline - now_ns();
				if (left <= 0)
					return P11I_RUN_TIMEOUT;
				set_timeout(fd, left);
				c->timeout_set = -1;
			}
			continue;
		}
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return P11I_RUN_TIMEOUT;
		if (k == 0 || (k < 0 && errno == ECONNRESET))
			return P11I_RUN_CLOSED;
		if (k < 0) {
			snprintf(c->why, sizeof c->why, "read: %s", strerror(errno));
			return P11I_RUN_ERROR;
		}
		have += (size_t)k;
		if (need == P11I_MP_HEADER && have >= P11I_MP_HEADER) {
			uint32_t size = (uint32_t)c->rbuf[0] | (uint32_t)c->rbuf[1] << 8 | (uint32_t)c->rbuf[2] << 16 |
					(uint32_t)c->rbuf[3] << 24;
			if (size > P11I_MAX_FRAME) {
				snprintf(c->why, sizeof c->why, "frame of %u bytes exceeds the %lu-byte cap", size,
					 (unsigned long)P11I_MAX_FRAME);
				return P11I_RUN_BAD;
			}
			need = P11I_MP_HEADER + (size_t)size;
			if (!grow(c, need)) {
				snprintf(c->why, sizeof c->why, "out of memory for a %u-byte reply", size);
				return P11I_RUN_ERROR;
			}
		}
	}
	if (have > need) {
		snprintf(c->why, sizeof c->why, "%zu bytes after the frame", have - need);
		return P11I_RUN_BAD;
	}
	*len = need - P11I_MP_HEADER;
	return P11I_RUN_OK;
}

/* ------------------------------------------------------------------ */
/* The ring (ring.h)                                                   */

void p11i_call_ring(struct p11i_call *c)
{
	if (c->region == NULL || c->ring != NULL || c->region_len < P11I_RING_SIZE + P11I_REGION_MIN)
		return;
	c->region_len -= P11I_RING_SIZE;
	c->ring = (struct p11i_ring *)(c->region + c->region_len);
}

static const uint8_t doorbell[P11I_RING_DOORBELL_LEN];

/* ring_send puts the request in the ring and rings the host if it sleeps
 * (then *rang is 1). */
static int ring_send(struct p11i_call *c, int fd, size_t n, int *rang)
{
	struct p11i_ring *g = c->ring;

	memcpy((uint8_t *)g + P11I_RING_REQ_OFF, c->w.buf + P11I_MP_HEADER, n);
	if (++c->seq == 0)
		c->seq = 1;
	if ((*rang = p11i_ring_publish(&g->req_seq, &g->req_len, c->seq, (uint32_t)n, &g->host_sleeping)) != 0)
		return send_all(c, fd, doorbell, sizeof doorbell);
	return P11I_RUN_OK;
}

/* ring_reply: 1 when the reply to the request in flight is in the ring
 * (copied out into c->rbuf, *len its length), 0 not yet, -1 a length the
 * slot cannot hold (c->why). */
static int ring_reply(struct p11i_call *c, size_t *len)
{
	struct p11i_ring *g = c->ring;
	uint32_t n;

	if (__atomic_load_n(&g->rep_seq, __ATOMIC_ACQUIRE) != c->seq)
		return 0;
	n = __atomic_load_n(&g->rep_len, __ATOMIC_RELAXED);
	if (n > P11I_RING_REP_CAP) {
		snprintf(c->why, sizeof c->why, "a reply of %u bytes in a %u-byte slot", n, P11I_RING_REP_CAP);
		return -1;
	}
	if (!grow(c, P11I_MP_HEADER + (size_t)n)) {
		snprintf(c->why, sizeof c->why, "out of memory");
		return -1;
	}
	/* Copied out first: the host can rewrite the slot while the copy is
	 * checked and decoded, never while it is read once here. */
	memcpy(c->rbuf + P11I_MP_HEADER, (uint8_t *)g + P11I_RING_REP_OFF, n);
	*len = n;
	return 1;
}

struct ring_ctx {
	struct p11i_call *c;
	size_t *len;
};

static int ring_ready(void *p)
{
	struct ring_ctx *x = p;
	return ring_reply(x->c, x->len);
}

/* ring_last_look says the caller sleeps and looks for the reply once more:
 * the reply's verdict (1, or -1 for a lie) with the word lowered again, or
 * 0 with the word raised. */
static int ring_last_look(struct p11i_call *c, size_t *len)
{
	int r;

	p11i_ring_asleep(&c->ring->proxy_sleeping);
	if ((r = ring_reply(c, len)) != 0)
		p11i_ring_awake(&c->ring->proxy_sleeping);
	return r;
}

/* ring_wait waits for the reply to the request in the ring: asleep for
 * doze ns, then polling the reply slot until window ns from the start (and
 * the socket now and then: a reply too large for the slot, the host's
 * death), then asleep on the socket until a doorbell, a reply, EOF or the
 * deadline. Asleep, it has said so in the ring: the host rings. */
static int ring_wait(struct p11i_call *c, int fd, int64_t timeout_ns, int64_t window, int64_t doze, size_t *len)
{
	struct p11i_ring *g = c->ring;
	int64_t t0 = now_ns(), deadline = timeout_ns > 0 ? t0 + timeout_ns : 0;
	int r, st;

	struct ring_ctx x = { c, len };
	if (doze > 0) {
		if ((r = ring_last_look(c, len)) != 0)
			return r > 0 ? P11I_RUN_OK : P11I_RUN_BAD;
		int woken = p11i_spin_sleep(fd, doze);
		p11i_ring_awake(&g->proxy_sleeping);
		if (woken)
			window = 0; /* a doorbell, a reply or EOF: read below */
		else
			p11i_spin_dozed(doze, now_ns() - t0);
	}
	if (window > 0 && p11i_spin_wait(fd, window - (now_ns() - t0), ring_ready, &x, &r) == P11I_SPIN_READY)
		return r > 0 ? P11I_RUN_OK : P11I_RUN_BAD;
	for (;;) {
		if ((r = ring_last_look(c, len)) != 0)
			return r > 0 ? P11I_RUN_OK : P11I_RUN_BAD;
		int64_t left = 0;
		if (deadline != 0 && (left = deadline - now_ns()) <= 0) {
			p11i_ring_awake(&g->proxy_sleeping);
			return P11I_RUN_TIMEOUT;
		}
		/* The socket's receive timeout is the call's (p11i_run set it);
		 * it is re-armed only when it would outlast the deadline by
		 * more than the poll and doze before it (2 ms): a setsockopt on
		 * every sleeping call, and another to restore it, cost more. */
		if (c->timeout_set < 0 || (deadline != 0 && c->timeout_set - left > 2 * P11I_SPIN_REPLY_CAP_NS)) {
			set_timeout(fd, left);
			c->timeout_set = left;
		}
		st = recv_frame(c, fd, left, len, 1);
		p11i_ring_awake(&g->proxy_sleeping);
		if (st != P11I_RUN_OK || *len > 0)
			return st; /* EOF, the deadline, or a reply through the socket */
		/* A doorbell (or a stale one): look again. */
	}
}

/* What the callers of this process learned of their waits for replies, by
 * function (spin.c), and how many calls are in flight: a caller polls only
 * while each waiter and each host at work can have a CPU. */
static struct p11i_spin reply_spin[P11I_NFUNCS];
static int inflight;

void p11i_run_forked(void) { __atomic_store_n(&inflight, 0, __ATOMIC_RELAXED); }

int p11i_run(struct p11i_call *c, int fd, int id, const uintptr_t *a, int64_t timeout_ns)
{
	size_t len = 0;
	int st;

	c->code = p11i_encode(c, id, a);
	if (c->code != CKR_OK)
		return P11I_RUN_ANSWER;
	if (timeout_ns != c->timeout_set) {
		if (set_timeout(fd, timeout_ns) != 0) {
			snprintf(c->why, sizeof c->why, "setting the deadline: %s", strerror(errno));
			return P11I_RUN_ERROR;
		}
		c->timeout_set = timeout_ns;
	}
	size_t body = c->w.len - P11I_MP_HEADER;
	int by_ring = c->ring != NULL && body <= P11I_RING_REQ_CAP, rang = 0;
	st = by_ring ? ring_send(c, fd, body, &rang) : send_all(c, fd, c->w.buf, c->w.len);
	if (p11i_funcs[id].secret)
		memset(c->w.buf, 0, c->w.len); /* the PIN does not linger in the buffer */
	if (st != P11I_RUN_OK)
		return st;
	/* Poll for the reply before sleeping on it, when that pays (spin.c). */
	int busy = __atomic_add_fetch(&inflight, 1, __ATOMIC_RELAXED);
	/* A host that slept must wake first: the reply is a wake-up away at
	 * best, and polling through that costs more CPU than it saves (the
	 * call after a slow one, or after the application paused). The caller
	 * sleeps too, as a plain blocking call would, and the wait teaches
	 * nothing about the function's own time. */
	int64_t cap = by_ring ? P11I_SPIN_REPLY_CAP_NS : P11I_SPIN_CAP_NS;
	int64_t window = rang ? 0 : p11i_spin_window(&reply_spin[id], busy, cap);
	int64_t t0 = now_ns();
	if (by_ring) {
		st = ring_wait(c, fd, timeout_ns, window, p11i_spin_doze(&reply_spin[id], window), &len);
		if (p11i_funcs[id].secret) /* nor in the shared memory */
			memset((uint8_t *)c->ring + P11I_RING_REQ_OFF, 0, body);
	} else {
		p11i_spin_wait(fd, window, NULL, NULL, NULL);
		do /* on a ring channel, a stale doorbell may come first */
			st = recv_frame(c, fd, timeout_ns, &len, c->ring != NULL);
		while (st == P11I_RUN_OK && len == 0 && c->ring != NULL);
	}
	if (!rang)
		p11i_spin_done(&reply_spin[id], now_ns() - t0, window, cap);
	__atomic_sub_fetch(&inflight, 1, __ATOMIC_RELAXED);
	if (st == P11I_RUN_OK) {
		c->why[0] = '\0';
		if (p11i_decode(c, id, a, c->rbuf + P11I_MP_HEADER, len, &c->code) != 0)
			st = P11I_RUN_BAD;
	}
	if (c->rcap > KEEP_RBUF) {
		free(c->rbuf);
		c->rbuf = NULL;
		c->rcap = 0;
	}
	return st;
}
