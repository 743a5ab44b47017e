/* mechparams: mechanism parameters in the C data plane, walking the layouts
 * of internal/mechparams (mechparams_gen.h). The wire format and every rule
 * are those of internal/mechparams/codec.go (Build, EncodeOut), whose
 * comments say why each holds; internal/cwire holds the two to the same
 * bytes and the same verdicts. Included by plane.c. */
#include <string.h>

#include "mechparams_gen.h"

#define MP_MAX_BUFFER (P11I_MAX_FRAME - 4096)
#define MP_MAX_ELEMS (1u << 16)
#define MP_MAX_CSTRING (1u << 16)
#define MP_PTR_FLOOR (1u << 16) /* a UlongOrPtr below it is a length */

struct mp_scope {
	const struct p11i_layout *l;
	const uint8_t *p;
};

static const struct p11i_field *field(const struct p11i_layout *l, int i) { return &p11i_fields[l->first + i]; }

static CK_ULONG ulong_field(const uint8_t *p, uint32_t off)
{
	CK_ULONG v;
	memcpy(&v, p + off, sizeof v);
	return v;
}

static void *ptr_field(const uint8_t *p, uint32_t off)
{
	void *q;
	memcpy(&q, p + off, sizeof q);
	return q;
}

static int field_index(const struct p11i_layout *l, const char *name)
{
	for (int i = 0; i < l->nfields; i++)
		if (strcmp(field(l, i)->name, name) == 0)
			return i;
	return -1;
}

/* mp_length is the byte length (or element count) f's length field holds,
 * in the structure at p (or the enclosing one, for an up length). */
static uint64_t mp_length(const struct p11i_layout *l, const struct p11i_field *f, const uint8_t *p, struct mp_scope up)
{
	const struct p11i_field *src;
	const uint8_t *sp = p;
	uint64_t v = 0;

	if (f->len == -1)
		return f->n;
	if (f->up) {
		int i = up.l != NULL ? field_index(up.l, f->len_name) : -1;
		if (i < 0)
			return 0;
		src = field(up.l, i);
		sp = up.p;
	} else {
		src = field(l, f->len);
	}
	switch (src->kind) {
	case P11I_K_ULONG:
		v = ulong_field(sp, src->off);
		break;
	case P11I_K_ULONG_PTR: {
		const CK_ULONG *q = ptr_field(sp, src->off);
		v = q != NULL ? *q : 0;
		break;
	}
	case P11I_K_ULONG_OR_PTR:
		v = ulong_field(sp, src->off);
		if (v >= MP_PTR_FLOOR)
			v = *(const CK_ULONG *)ptr_field(sp, src->off);
		break;
	}
	return f->bits ? v / 8 : v;
}

/* mp_search finds mech in a table ascending by type. */
static const struct p11i_mech_class *mp_search(const struct p11i_mech_class *t, size_t n, CK_MECHANISM_TYPE mech)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t[mid].type == mech)
			return &t[mid];
		if (t[mid].type < mech)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The lookup of internal/mechparams.Lookup: 1 with *layout (-1 for opaque
 * bytes) when the registry can carry mech's parameter, else 0. */
static int mp_lookup(CK_MECHANISM_TYPE mech, int *layout)
{
	const struct p11i_mech_class *m = mp_search(p11i_mechs, P11I_NMECHS, mech);

	*layout = m != NULL ? m->layout : -1;
	return m != NULL || mech >= P11I_CKM_VENDOR_DEFINED;
}

/* mp_lookup_size is internal/mechparams.LookupSize: mp_lookup, choosing
 * among mech's structures the one of size bytes (CKM_AES_GCM's
 * CK_GCM_WRAP_PARAMS in C_WrapKey, ...). */
static int mp_lookup_size(CK_MECHANISM_TYPE mech, CK_ULONG size, int *layout)
{
	for (size_t i = 0; i < P11I_NMECHALTS; i++)
		if (p11i_mech_alts[i].type == mech && p11i_layouts[p11i_mech_alts[i].layout].size == size) {
			*layout = p11i_mech_alts[i].layout;
			return 1;
		}
	return mp_lookup(mech, layout);
}

/* mp_message_lookup is internal/mechparams.MessageLookup: the layout of the
 * per-message parameter of a message operation begun with mech (the
 * AEADs' message structures), else mp_lookup's answer. */
static int mp_message_lookup(CK_MECHANISM_TYPE mech, int *layout)
{
	const struct p11i_mech_class *m = mp_search(p11i_message_mechs, P11I_NMSGMECHS, mech);

	if (m != NULL) {
		*layout = m->layout;
		return 1;
	}
	return mp_lookup(mech, layout);
}

enum { MP_OK = 0, MP_PARAM = -1 };

static int mp_mechanism(struct p11i_call *c, const CK_MECHANISM *m, int depth);

/* mp_template writes an attribute template (a Template field): each
 * attribute as [type, value], value its bytes, a NULL pValue's length, or
 * a nested template (nested_type, as plane.c's templates). */
static int mp_template(struct p11i_call *c, const CK_ATTRIBUTE *t, uint64_t n, int depth)
{
	if (depth > (int)P11I_MAX_NESTING || n > P11I_MAX_TEMPLATE)
		return MP_PARAM;
	p11i_mpw_array(&c->w, (uint32_t)n);
	for (uint64_t i = 0; i < n; i++) {
		p11i_mpw_array(&c->w, 2);
		p11i_mpw_uint(&c->w, t[i].type);
		if (t[i].pValue == NULL) {
			p11i_mpw_uint(&c->w, t[i].ulValueLen);
		} else if (nested_type(t[i].type)) {
			int err = mp_template(c, t[i].pValue, t[i].ulValueLen / sizeof(CK_ATTRIBUTE), depth + 1);
			if (err != MP_OK)
				return err;
		} else {
			if (t[i].ulValueLen > MP_MAX_BUFFER)
				return MP_PARAM;
			p11i_mpw_bytes(&c->w, t[i].pValue, t[i].ulValueLen);
		}
	}
	return MP_OK;
}

/* mp_case is the case of a union field for the selector's value in the
 * structure at p, or NULL. */
static const struct p11i_case *mp_case(const struct p11i_layout *l, const struct p11i_field *f, const uint8_t *p)
{
	CK_ULONG v = ulong_field(p, field(l, f->sel)->off);

	for (int i = 0; i < f->ncases; i++)
		if (p11i_cases[f->cases + i].value == v)
			return &p11i_cases[f->cases + i];
	return NULL;
}

static int mp_structure(struct p11i_call *c, const struct p11i_layout *l, const uint8_t *p, struct mp_scope up, int depth)
{
	struct p11i_mpw *w = &c->w;

	p11i_mpw_array(w, l->nfields);
	for (int i = 0; i < l->nfields; i++) {
		const struct p11i_field *f = field(l, i);
		const void *q = NULL;
		uint64_t n;
		int err;

		if (f->only && f->kind != P11I_K_PTR && f->kind != P11I_K_HANDLE_PTR) {
			p11i_mpw_nil(w);
			continue;
		}
		if (f->kind >= P11I_K_PTR && f->kind != P11I_K_STRUCT)
			q = ptr_field(p, f->off);
		switch (f->kind) {
		case P11I_K_ULONG:
			p11i_mpw_uint(w, ulong_field(p, f->off));
			break;
		case P11I_K_HANDLE:
			p11i_mpw_uint(w, map(c->to_vendor, c->gen, ulong_field(p, f->off)));
			break;
		case P11I_K_BYTE:
			p11i_mpw_uint(w, p[f->off]);
			break;
		case P11I_K_INLINE:
			p11i_mpw_bytes(w, p + f->off, f->n);
			break;
		case P11I_K_PTR:
			if (q == NULL) {
				p11i_mpw_nil(w);
				break;
			}
			n = mp_length(l, f, p, up);
			if (n > MP_MAX_BUFFER)
				return MP_PARAM;
			if (f->only)
				p11i_mpw_uint(w, n);
			else
				p11i_mpw_bytes(w, q, n);
			break;
		case P11I_K_ULONG_PTR:
			if (q == NULL)
				p11i_mpw_nil(w);
			else
				p11i_mpw_uint(w, *(const CK_ULONG *)q);
			break;
		case P11I_K_ULONG_OR_PTR:
			n = ulong_field(p, f->off);
			if (n < MP_PTR_FLOOR) {
				p11i_mpw_uint(w, n);
			} else {
				p11i_mpw_array(w, 1);
				p11i_mpw_uint(w, *(const CK_ULONG *)q);
			}
			break;
		case P11I_K_CSTRING:
			if (q == NULL) {
				p11i_mpw_nil(w);
				break;
			}
			n = strnlen(q, MP_MAX_CSTRING);
			if (n == MP_MAX_CSTRING)
				return MP_PARAM;
			p11i_mpw_bytes(w, q, n);
			break;
		case P11I_K_STRUCT:
			err = mp_structure(c, &p11i_layouts[f->sub], p + f->off, (struct mp_scope){ l, p }, depth);
			if (err != MP_OK)
				return err;
			break;
		case P11I_K_STRUCT_PTR:
			if (q == NULL) {
				p11i_mpw_nil(w);
				break;
			}
			err = mp_structure(c, &p11i_layouts[f->sub], q, (struct mp_scope){ l, p }, depth);
			if (err != MP_OK)
				return err;
			break;
		case P11I_K_STRUCT_ARRAY: {
			const struct p11i_layout *sub = &p11i_layouts[f->sub];
			if (q == NULL) {
				p11i_mpw_nil(w);
				break;
			}
			n = mp_length(l, f, p, up);
			if (n > MP_MAX_ELEMS)
				return MP_PARAM;
			p11i_mpw_array(w, (uint32_t)n);
			for (uint64_t j = 0; j < n; j++) {
				err = mp_structure(c, sub, (const uint8_t *)q + j * sub->size, (struct mp_scope){ NULL, NULL }, depth);
				if (err != MP_OK)
					return err;
			}
			break;
		}
		case P11I_K_MECH_PTR:
			err = mp_mechanism(c, q, depth + 1);
			if (err != MP_OK)
				return err;
			break;
		case P11I_K_UNION_PTR: {
			const struct p11i_case *k;
			if (q == NULL) {
				p11i_mpw_nil(w);
				break;
			}
			/* An unknown selector value leaves the memory's shape
			 * unknown: nothing of it can cross. */
			if ((k = mp_case(l, f, p)) == NULL)
				return MP_PARAM;
			n = mp_length(l, f, p, up);
			if (k->layout < 0) {
				if (n > MP_MAX_BUFFER)
					return MP_PARAM;
				p11i_mpw_bytes(w, q, n);
				break;
			}
			if (n != p11i_layouts[k->layout].size)
				return MP_PARAM;
			err = mp_structure(c, &p11i_layouts[k->layout], q, (struct mp_scope){ l, p }, depth);
			if (err != MP_OK)
				return err;
			break;
		}
		case P11I_K_TEMPLATE:
			if (q == NULL) {
				p11i_mpw_nil(w);
				break;
			}
			err = mp_template(c, q, mp_length(l, f, p, up), 0);
			if (err != MP_OK)
				return err;
			break;
		case P11I_K_HANDLE_PTR:
			/* The vendor's output only: the application's value there
			 * neither crosses nor is mapped. */
			if (q == NULL)
				p11i_mpw_nil(w);
			else
				p11i_mpw_uint(w, 0);
			break;
		}
	}
	return MP_OK;
}

/* mp_mechanism writes a nested CK_MECHANISM (a MechPtr field). */
static int mp_mechanism(struct p11i_call *c, const CK_MECHANISM *m, int depth)
{
	int layout;

	if (m == NULL) {
		p11i_mpw_nil(&c->w);
		return MP_OK;
	}
	if (depth > (int)P11I_MAX_NESTING)
		return MP_PARAM;
	p11i_mpw_array(&c->w, 3);
	p11i_mpw_uint(&c->w, m->mechanism);
	p11i_mpw_uint(&c->w, m->ulParameterLen);
	if (m->pParameter == NULL) {
		p11i_mpw_nil(&c->w);
		return MP_OK;
	}
	if (!mp_lookup_size(m->mechanism, m->ulParameterLen, &layout))
		return MP_PARAM;
	if (layout < 0 || m->ulParameterLen != p11i_layouts[layout].size) {
		if (m->ulParameterLen > MP_MAX_BUFFER)
			return MP_PARAM;
		p11i_mpw_bytes(&c->w, m->pParameter, m->ulParameterLen);
		return MP_OK;
	}
	if (p11i_layouts[layout].outs > 0)
		return MP_PARAM; /* nothing brings a nested mechanism's outputs back */
	return mp_structure(c, &p11i_layouts[layout], m->pParameter, (struct mp_scope){ NULL, NULL }, depth);
}

/* One decoded Out field, kept until its structure is checked. */
struct mp_val {
	int null;
	uint64_t v;
	const uint8_t *b;
	size_t n;
};

/* mp_out_len is the field holding f's length when the vendor writes that
 * length (the usual output convention), or -1. */
static int mp_out_len(const struct p11i_layout *l, const struct p11i_field *f)
{
	if (f->kind != P11I_K_PTR || f->len == -1 || f->up || !field(l, f->len)->out)
		return -1;
	return f->len;
}

/* mp_decode_out checks the Out fields of a reply against the application's
 * structure at p and queues their writes (see DecodeOut). */
static int mp_decode_out(struct p11i_call *c, struct p11i_mpr *r, const struct p11i_layout *l, uint8_t *p,
			 struct mp_scope up, int ok)
{
	struct mp_val vals[P11I_MAX_FIELDS];
	uint32_t n = p11i_mpr_array(r, l->nfields);

	if (r->failed)
		return 0;
	if (n != l->outs) {
		p11i_mpr_fail(r, "%s: %u output fields, want %u", l->name, n, (unsigned)l->outs);
		return 0;
	}
	memset(vals, 0, sizeof vals);
	for (int i = 0; i < l->nfields; i++) {
		const struct p11i_field *f = field(l, i);
		struct mp_val *v = &vals[i];
		void *q;

		if (!f->out)
			continue;
		switch (f->kind) {
		case P11I_K_ULONG:
		case P11I_K_HANDLE:
			v->v = p11i_mpr_uint(r);
			break;
		case P11I_K_BYTE:
			v->v = p11i_mpr_uint_max(r, 255, f->name);
			break;
		case P11I_K_INLINE:
			v->b = p11i_mpr_bytes(r, &v->n);
			if (!r->failed && v->n != f->n)
				p11i_mpr_fail(r, "%s.%s: %zu bytes, want %u", l->name, f->name, v->n, f->n);
			break;
		case P11I_K_PTR:
			if (!(v->null = p11i_mpr_is_nil(r)))
				v->b = p11i_mpr_bytes(r, &v->n);
			break;
		case P11I_K_ULONG_PTR:
		case P11I_K_HANDLE_PTR:
			if (!(v->null = p11i_mpr_is_nil(r)))
				v->v = p11i_mpr_uint(r);
			break;
		case P11I_K_STRUCT_ARRAY: {
			/* The elements' outputs, element by element, as many as
			 * the application's count says. */
			const struct p11i_layout *sub = &p11i_layouts[f->sub];
			uint64_t count;
			uint32_t m;
			q = ptr_field(p, f->off);
			if (p11i_mpr_is_nil(r) != (q == NULL)) {
				p11i_mpr_fail(r, "%s.%s: elements for a NULL array, or none for a non-NULL one", l->name,
					      f->name);
				return 0;
			}
			if (q == NULL)
				break;
			count = mp_length(l, f, p, up);
			m = p11i_mpr_array(r, MP_MAX_ELEMS);
			if (r->failed)
				return 0;
			if (m != count) {
				p11i_mpr_fail(r, "%s.%s: %u elements for an array of %llu", l->name, f->name, m,
					      (unsigned long long)count);
				return 0;
			}
			for (uint32_t j = 0; j < m; j++)
				if (!mp_decode_out(c, r, sub, (uint8_t *)q + (size_t)j * sub->size,
						   (struct mp_scope){ NULL, NULL }, ok))
					return 0;
			break;
		}
		case P11I_K_STRUCT:
			if (!mp_decode_out(c, r, &p11i_layouts[f->sub], p + f->off, (struct mp_scope){ l, p }, ok))
				return 0;
			break;
		case P11I_K_STRUCT_PTR:
			q = ptr_field(p, f->off);
			if (p11i_mpr_is_nil(r) != (q == NULL)) {
				p11i_mpr_fail(r, "%s.%s: a structure for a NULL pointer, or none for a non-NULL one", l->name,
					      f->name);
				return 0;
			}
			if (q != NULL && !mp_decode_out(c, r, &p11i_layouts[f->sub], q, (struct mp_scope){ l, p }, ok))
				return 0;
			break;
		}
		if (r->failed)
			return 0;
	}
	/* Every value is decoded: check them against what the application
	 * declared (its memory is untouched until the plan is applied). */
	for (int i = 0; i < l->nfields; i++) {
		const struct p11i_field *f = field(l, i);
		struct mp_val *v = &vals[i];
		void *q = NULL;

		if (!f->out)
			continue;
		if (f->kind == P11I_K_PTR || f->kind == P11I_K_ULONG_PTR || f->kind == P11I_K_HANDLE_PTR)
			q = ptr_field(p, f->off);
		switch (f->kind) {
		case P11I_K_ULONG:
			q_ulong(c, p + f->off, v->v);
			break;
		case P11I_K_HANDLE:
			q_handle(c, p + f->off, v->v);
			break;
		case P11I_K_BYTE:
			queue(c, (struct p11i_write){ .dst = p + f->off, .value = v->v, .size = 1 });
			break;
		case P11I_K_INLINE:
			q_copy(c, p + f->off, v->b, v->n);
			break;
		case P11I_K_ULONG_PTR:
			if (v->null != (q == NULL)) {
				p11i_mpr_fail(r, "%s.%s: a value for a NULL pointer, or none for a non-NULL one", l->name,
					      f->name);
				return 0;
			}
			if (q != NULL)
				q_ulong(c, q, v->v);
			break;
		case P11I_K_HANDLE_PTR:
			if (v->null != (q == NULL)) {
				p11i_mpr_fail(r, "%s.%s: a handle for a NULL pointer, or none for a non-NULL one", l->name,
					      f->name);
				return 0;
			}
			if (q != NULL)
				q_handle(c, q, v->v);
			break;
		case P11I_K_PTR: {
			uint64_t capacity = mp_length(l, f, p, up), want = capacity;
			int src = mp_out_len(l, f);
			if (src >= 0 && !vals[src].null)
				want = vals[src].v;
			if (v->null) {
				if (ok && q != NULL && want > capacity) {
					p11i_mpr_fail(r, "%s.%s: CKR_OK with a length of %llu for a buffer of %llu", l->name,
						      f->name, (unsigned long long)want, (unsigned long long)capacity);
					return 0;
				}
				break;
			}
			if (src >= 0 && vals[src].null) {
				p11i_mpr_fail(r, "%s.%s: bytes without their length", l->name, f->name);
				return 0;
			}
			if (q == NULL || want > capacity || v->n != want) {
				p11i_mpr_fail(r, "%s.%s: %zu bytes (length %llu) for a buffer of %llu", l->name, f->name, v->n,
					      (unsigned long long)want, (unsigned long long)capacity);
				return 0;
			}
			q_copy(c, q, v->b, v->n);
			break;
		}
		}
	}
	return 1;
}
