/* trace: the trace setting's JSON line per call, written by the
 * application's side after each call: the function, its arguments decoded
 * by the kinds of internal/p11calls (with CKA_, CKM_, CKO_, CKK_ and CKR_
 * names), the result, the duration and the host's pid. It never holds a
 * PIN, nor a byte of data, signature, ciphertext or key: byte buffers
 * show as lengths, and an attribute's value appears only for the few
 * attributes that describe an object (class, key type, sizes, flags,
 * label, ID). Reads of the application's memory cannot fault
 * (p11i_copy_in): a call the proxy refused may carry bad pointers.
 * Included by proxy/plane.c after log.c; the settings open the file
 * (kit.c), supervise.c writes the lines. */
#include "shim.h"
#include "names_gen.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static struct outfile tr = { PTHREAD_MUTEX_INITIALIZER, -1, -1, NULL, 0, 0 };

/* p11i_tracing is read on every call: one predictable branch when off. */
static int p11i_tracing;

static int trace_open(const char *path)
{
	int rc = outfile_open(&tr, path);

	__atomic_store_n(&p11i_tracing, path != NULL && rc == 0, __ATOMIC_RELAXED);
	return rc;
}

static inline int tracing(void) { return __builtin_expect(__atomic_load_n(&p11i_tracing, __ATOMIC_RELAXED), 0); }

static void trace_forked(void) { pthread_mutex_init(&tr.mu, NULL); }

/* ------------------------------------------------------------------ */
/* A growing line                                                      */

struct tline {
	char *p;
	size_t n, cap;
	int oom;
};

static void tl_grow(struct tline *t, size_t more)
{
	if (t->oom || t->n + more + 1 <= t->cap)
		return;
	size_t cap = t->cap ? t->cap : 512;
	while (cap < t->n + more + 1)
		cap *= 2;
	char *p = realloc(t->p, cap);
	if (p == NULL) {
		t->oom = 1;
		return;
	}
	t->p = p;
	t->cap = cap;
}

static void tl_printf(struct tline *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tl_printf(struct tline *t, const char *fmt, ...)
{
	va_list ap;
	char small[256];

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	tl_grow(t, (size_t)n);
	if (t->oom)
		return;
	if ((size_t)n < sizeof small) {
		memcpy(t->p + t->n, small, (size_t)n + 1);
	} else {
		va_start(ap, fmt);
		vsnprintf(t->p + t->n, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	t->n += (size_t)n;
}

/* tl_str appends s (len bytes) as a JSON string. */
static void tl_str(struct tline *t, const char *s, size_t len)
{
	tl_grow(t, len * 6 + 2);
	if (t->oom)
		return;
	t->p[t->n++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			t->p[t->n++] = '\\';
			t->p[t->n++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			t->n += (size_t)sprintf(t->p + t->n, "\\u%04x", c);
		} else {
			t->p[t->n++] = (char)c;
		}
	}
	t->p[t->n++] = '"';
	t->p[t->n] = '\0';
}

/* tl_padded appends a blank-padded PKCS#11 string field, trimmed. */
static void tl_padded(struct tline *t, const unsigned char *s, size_t len)
{
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\0'))
		len--;
	tl_str(t, (const char *)s, len);
}

static const char *name_of(const struct p11i_name *tab, size_t n, unsigned long v)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (tab[mid].v == v)
			return tab[mid].n;
		if (tab[mid].v < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

#define NAME(tab, v) name_of(tab, sizeof tab / sizeof tab[0], v)

/* tl_named appends v by its name in tab, or in hex. */
static void tl_named(struct tline *t, const char *name, unsigned long v)
{
	if (name != NULL)
		tl_printf(t, "\"%s\"", name);
	else
		tl_printf(t, "\"0x%lx\"", v);
}

/* ------------------------------------------------------------------ */
/* Arguments                                                           */

/* What a call's in/out counts held before it: the caller's capacity. */
struct trace_pre {
	CK_ULONG cap[P11I_MAX_ARGS];
	int have[P11I_MAX_ARGS];
};

/* trace_before notes the capacities of id's output buffers and lists. */
static void trace_before(int id, const uintptr_t *a, struct trace_pre *pre)
{
	const char *k = p11i_funcs[id].args;

	for (int i = 0, at = 0; k[i] != '\0'; at += p11i_kind_params(k[i]), i++) {
		if (k[i] != 'Y' && k[i] != 'L' && k[i] != 'K')
			continue;
		pre->have[at] = a[at + 1] != 0 && p11i_copy_in(&pre->cap[at], (const void *)a[at + 1], sizeof(CK_ULONG)) == 0;
	}
}

/* shown_value: whether an attribute's value may appear in the trace, and
 * how: 'u' a CK_ULONG, 'b' a CK_BBOOL, 's' a string, 'x' hex. Everything
 * else shows as its length only: values, moduli, exponents, points and
 * keys are the application's business. */
static char shown_value(CK_ATTRIBUTE_TYPE type)
{
	switch (type) {
	case CKA_CLASS:
	case CKA_KEY_TYPE:
	case CKA_CERTIFICATE_TYPE:
	case CKA_MODULUS_BITS:
	case CKA_VALUE_LEN:
	case CKA_KEY_GEN_MECHANISM:
	case CKA_PRIME_BITS:
	case CKA_SUB_PRIME_BITS:
		return 'u';
	case CKA_TOKEN:
	case CKA_PRIVATE:
	case CKA_TRUSTED:
	case CKA_SENSITIVE:
	case CKA_ENCRYPT:
	case CKA_DECRYPT:
	case CKA_WRAP:
	case CKA_UNWRAP:
	case CKA_SIGN:
	case CKA_SIGN_RECOVER:
	case CKA_VERIFY:
	case CKA_VERIFY_RECOVER:
	case CKA_DERIVE:
	case CKA_EXTRACTABLE:
	case CKA_LOCAL:
	case CKA_NEVER_EXTRACTABLE:
	case CKA_ALWAYS_SENSITIVE:
	case CKA_MODIFIABLE:
	case CKA_COPYABLE:
	case CKA_DESTROYABLE:
	case CKA_ALWAYS_AUTHENTICATE:
	case CKA_WRAP_WITH_TRUSTED:
		return 'b';
	case CKA_LABEL:
		return 's';
	case CKA_ID:
	case CKA_EC_PARAMS:
		return 'x';
	}
	return 0;
}

#define TRACE_MAX_ATTRS 256
#define TRACE_MAX_SHOWN 256 /* bytes of a shown value */

static void tl_attr_value(struct tline *t, const CK_ATTRIBUTE *at)
{
	unsigned char v[TRACE_MAX_SHOWN];
	char how = shown_value(at->type);

	if (how == 0 || at->pValue == NULL || at->ulValueLen == CK_UNAVAILABLE_INFORMATION ||
	    at->ulValueLen > sizeof v || p11i_copy_in(v, at->pValue, at->ulValueLen) != 0)
		return;
	if (how == 'u' && at->ulValueLen == sizeof(CK_ULONG)) {
		CK_ULONG u;
		memcpy(&u, v, sizeof u);
		tl_printf(t, ",\"value\":");
		if (at->type == CKA_CLASS)
			tl_named(t, NAME(p11i_cko_names, u), u);
		else if (at->type == CKA_KEY_TYPE)
			tl_named(t, NAME(p11i_ckk_names, u), u);
		else if (at->type == CKA_KEY_GEN_MECHANISM)
			tl_named(t, NAME(p11i_ckm_names, u), u);
		else
			tl_printf(t, "%lu", u);
	} else if (how == 'b' && at->ulValueLen == 1) {
		tl_printf(t, ",\"value\":%s", v[0] ? "true" : "false");
	} else if (how == 's') {
		tl_printf(t, ",\"value\":");
		tl_str(t, (const char *)v, at->ulValueLen);
	} else if (how == 'x') {
		tl_printf(t, ",\"value\":\"");
		for (CK_ULONG i = 0; i < at->ulValueLen; i++)
			tl_printf(t, "%02x", v[i]);
		tl_printf(t, "\"");
	}
}

/* tl_template appends a template: each attribute's type, its length as
 * the application's memory holds it now, and a shown value. */
static void tl_template(struct tline *t, const void *p, CK_ULONG count)
{
	CK_ATTRIBUTE at;

	if (p == NULL) {
		tl_printf(t, "null");
		return;
	}
	tl_printf(t, "[");
	for (CK_ULONG i = 0; i < count && i < TRACE_MAX_ATTRS; i++) {
		if (p11i_copy_in(&at, (const CK_ATTRIBUTE *)p + i, sizeof at) != 0)
			break;
		tl_printf(t, "%s{\"type\":", i ? "," : "");
		tl_named(t, NAME(p11i_cka_names, at.type), at.type);
		if (at.ulValueLen == CK_UNAVAILABLE_INFORMATION)
			tl_printf(t, ",\"len\":-1");
		else
			tl_printf(t, ",\"len\":%lu", at.ulValueLen);
		if (at.pValue == NULL)
			tl_printf(t, ",\"buffer\":false");
		tl_attr_value(t, &at);
		tl_printf(t, "}");
	}
	tl_printf(t, "]");
}

/* tl_ulongs appends ,"key":[...] with the first n (at most 64) CK_ULONGs
 * at p: slot IDs, object handles. */
static void tl_ulongs(struct tline *t, const char *key, uintptr_t p, CK_ULONG n)
{
	CK_ULONG v;

	tl_printf(t, ",\"%s\":[", key);
	for (CK_ULONG j = 0; j < n && j < 64; j++)
		if (p11i_copy_in(&v, (const CK_ULONG *)p + j, sizeof v) == 0)
			tl_printf(t, "%s%lu", j ? "," : "", v);
	tl_printf(t, "]");
}

static void tl_ulong_at(struct tline *t, uintptr_t p)
{
	CK_ULONG v;

	if (p == 0 || p11i_copy_in(&v, (const void *)p, sizeof v) != 0)
		tl_printf(t, "null");
	else
		tl_printf(t, "%lu", v);
}

static void tl_info(struct tline *t, char kind, uintptr_t p)
{
	union {
		CK_INFO i;
		CK_SLOT_INFO j;
		CK_TOKEN_INFO k;
		CK_SESSION_INFO e;
		CK_MECHANISM_INFO q;
	} u;
	size_t size = kind == 'i' ? sizeof u.i : kind == 'j' ? sizeof u.j : kind == 'k' ? sizeof u.k
		    : kind == 'e' ? sizeof u.e : sizeof u.q;

	if (p == 0 || p11i_copy_in(&u, (const void *)p, size) != 0) {
		tl_printf(t, "null");
		return;
	}
	switch (kind) {
	case 'i':
		tl_printf(t, "{\"cryptoki\":\"%u.%u\",\"manufacturer\":", u.i.cryptokiVersion.major, u.i.cryptokiVersion.minor);
		tl_padded(t, u.i.manufacturerID, sizeof u.i.manufacturerID);
		tl_printf(t, ",\"library\":");
		tl_padded(t, u.i.libraryDescription, sizeof u.i.libraryDescription);
		tl_printf(t, ",\"version\":\"%u.%u\"}", u.i.libraryVersion.major, u.i.libraryVersion.minor);
		break;
	case 'j':
		tl_printf(t, "{\"description\":");
		tl_padded(t, u.j.slotDescription, sizeof u.j.slotDescription);
		tl_printf(t, ",\"flags\":\"0x%lx\"}", u.j.flags);
		break;
	case 'k':
		tl_printf(t, "{\"label\":");
		tl_padded(t, u.k.label, sizeof u.k.label);
		tl_printf(t, ",\"flags\":\"0x%lx\"}", u.k.flags);
		break;
	case 'e':
		tl_printf(t, "{\"slot\":%lu,\"state\":%lu,\"flags\":\"0x%lx\"}", u.e.slotID, u.e.state, u.e.flags);
		break;
	default:
		tl_printf(t, "{\"min\":%lu,\"max\":%lu,\"flags\":\"0x%lx\"}", u.q.ulMinKeySize, u.q.ulMaxKeySize,
			  u.q.flags);
	}
}

/* arg_key names an argument by its kind, numbering repeats (object,
 * object_2). The few CK_ULONG arguments are named by function. */
static const char *arg_key(int id, char kind, int nth, char *buf, size_t len)
{
	const char *name = p11i_funcs[id].name, *key;

	switch (kind) {
	case 'u':
		key = strcmp(name, "C_GetMechanismInfo") == 0 || strcmp(name, "C_GetSessionValidationFlags") == 0 ? "type"
		      : strcmp(name, "C_Login") == 0 || strcmp(name, "C_LoginUser") == 0				   ? "user_type"
		      : strcmp(name, "C_AsyncJoin") == 0								   ? "id"
																	   : "flags";
		break;
	case 'M': key = "param"; break;
	case 'N': key = "function"; break;
	case 'D': key = "result"; break;
	case 'B': key = "out"; break;
	case 'b': key = "token_present"; break;
	case 'l': case 'P': key = "slot"; break;
	case 's': case 'S': key = "session"; break;
	case 'o': case 'O': key = "object"; break;
	case 'y': key = "data"; break;
	case 'z': key = "label"; break;
	case 'a': case 'A': key = "template"; break;
	case 'm': key = "mechanism"; break;
	case 'x': key = "reserved"; break;
	case 'n': key = "notify"; break;
	case 'I': key = "init_args"; break;
	case 'Y': case 'G': key = "out"; break;
	case 'L': key = "slots"; break;
	case 'K': key = "mechanisms"; break;
	case 'F': key = "objects"; break;
	case 'U': key = "size"; break;
	default: key = "info";
	}
	if (nth <= 1)
		return key;
	snprintf(buf, len, "%s_%d", key, nth);
	return buf;
}

static void tl_args(struct tline *t, int id, const uintptr_t *a, const struct trace_pre *pre, CK_RV rv)
{
	const char *k = p11i_funcs[id].args;
	int secret = p11i_funcs[id].secret, first = 1, seen[128] = { 0 };
	char kb[32];

	tl_printf(t, "{");
	for (int i = 0, at = 0; k[i] != '\0'; at += p11i_kind_params(k[i]), i++) {
		char c = k[i];
		int grp = c == 'P' ? 'l' : c == 'S' ? 's' : c == 'O' ? 'o' : c == 'A' ? 'a' : c == 'G' ? 'Y' : c;
		if (c == 'y' && secret)
			continue; /* a PIN: not even its length */
		tl_printf(t, "%s\"%s\":", first ? "" : ",", arg_key(id, c, ++seen[grp & 127], kb, sizeof kb));
		first = 0;
		switch (c) {
		case 'u':
			if (strcmp(p11i_funcs[id].name, "C_GetMechanismInfo") == 0)
				tl_named(t, NAME(p11i_ckm_names, a[at]), a[at]);
			else if (strcmp(p11i_funcs[id].name, "C_Login") == 0 || strcmp(p11i_funcs[id].name, "C_LoginUser") == 0 ||
				 strcmp(p11i_funcs[id].name, "C_AsyncJoin") == 0 ||
				 strcmp(p11i_funcs[id].name, "C_GetSessionValidationFlags") == 0)
				tl_printf(t, "%lu", (unsigned long)a[at]);
			else
				tl_printf(t, "\"0x%lx\"", (unsigned long)a[at]);
			break;
		case 'b':
			tl_printf(t, "%s", a[at] ? "true" : "false");
			break;
		case 'l':
		case 's':
		case 'o':
			tl_printf(t, "%lu", (unsigned long)a[at]);
			break;
		case 'y':
			if (a[at] == 0)
				tl_printf(t, "{\"buffer\":false,\"len\":%lu}", (unsigned long)a[at + 1]);
			else
				tl_printf(t, "{\"len\":%lu}", (unsigned long)a[at + 1]);
			break;
		case 'z': {
			unsigned char label[32];
			if (a[at] == 0 || p11i_copy_in(label, (const void *)a[at], sizeof label) != 0)
				tl_printf(t, "null");
			else
				tl_padded(t, label, sizeof label);
			break;
		}
		case 'a':
		case 'A':
			tl_template(t, (const void *)a[at], (CK_ULONG)a[at + 1]);
			break;
		case 'm': {
			CK_MECHANISM m;
			if (a[at] == 0 || p11i_copy_in(&m, (const void *)a[at], sizeof m) != 0) {
				tl_printf(t, "null");
				break;
			}
			tl_printf(t, "{\"type\":");
			tl_named(t, NAME(p11i_ckm_names, m.mechanism), m.mechanism);
			tl_printf(t, ",\"param_len\":%lu}", m.ulParameterLen);
			break;
		}
		case 'x':
		case 'n':
			tl_printf(t, "%s", a[at] ? "true" : "null");
			break;
		case 'I': {
			CK_C_INITIALIZE_ARGS ia;
			if (a[at] == 0 || p11i_copy_in(&ia, (const void *)a[at], sizeof ia) != 0)
				tl_printf(t, "null");
			else /* pReserved holds settings: only whether it is there */
				tl_printf(t, "{\"flags\":\"0x%lx\",\"mutex_callbacks\":%s,\"reserved\":%s}", ia.flags,
					  ia.CreateMutex != NULL ? "true" : "false", ia.pReserved != NULL ? "true" : "false");
			break;
		}
		case 'Y':
		case 'L':
		case 'K':
			tl_printf(t, "{\"buffer\":%s,", a[at] ? "true" : "false");
			if (pre->have[at])
				tl_printf(t, "\"cap\":%lu,", pre->cap[at]);
			tl_printf(t, "\"%s\":", c == 'Y' ? "len" : "count");
			tl_ulong_at(t, a[at + 1]);
			CK_ULONG n = 0;
			if (c == 'L' && a[at] != 0 && rv == CKR_OK &&
			    p11i_copy_in(&n, (const void *)a[at + 1], sizeof n) == 0)
				tl_ulongs(t, "ids", a[at], n);
			tl_printf(t, "}");
			break;
		case 'G':
			tl_printf(t, "{\"len\":%lu}", (unsigned long)a[at + 1]);
			break;
		case 'M':
		case 'B':
			tl_printf(t, "{\"%s\":%s,\"len\":%lu}", c == 'M' ? "param" : "buffer", a[at] ? "true" : "false",
				  (unsigned long)a[at + 1]);
			break;
		case 'N': {
			char name[64];
			long n = a[at] != 0 ? p11i_copy_string(name, (const void *)a[at], sizeof name) : -1;
			if (n < 0)
				tl_printf(t, "null");
			else
				tl_str(t, name, (size_t)n);
			break;
		}
		case 'D':
			tl_printf(t, "%s", a[at] ? "true" : "null");
			break;
		case 'F': {
			CK_ULONG n = 0;
			tl_printf(t, "{\"max\":%lu,\"count\":", (unsigned long)a[at + 1]);
			tl_ulong_at(t, a[at + 2]);
			if (rv == CKR_OK && a[at] != 0 && a[at + 2] != 0 &&
			    p11i_copy_in(&n, (const void *)a[at + 2], sizeof n) == 0)
				tl_ulongs(t, "handles", a[at], n < (CK_ULONG)a[at + 1] ? n : (CK_ULONG)a[at + 1]);
			tl_printf(t, "}");
			break;
		}
		case 'U':
		case 'P':
		case 'S':
		case 'O':
			if (rv == CKR_OK)
				tl_ulong_at(t, a[at]);
			else
				tl_printf(t, "null");
			break;
		default: /* i j k e q */
			if (rv == CKR_OK)
				tl_info(t, c, a[at]);
			else
				tl_printf(t, "null");
		}
	}
	tl_printf(t, "}");
}

/* trace_call writes the line of call id, which returned rv after taking
 * ns nanoseconds on host host_pid (0: none). */
static void trace_call(int id, const uintptr_t *a, const struct trace_pre *pre, CK_RV rv, int64_t ns,
		       pid_t host_pid)
{
	struct tline t = { 0 };
	struct timespec now;
	struct tm tm;
	char when[32];

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	tl_printf(&t, "{\"time\":\"%s.%06ldZ\",\"pid\":%d,\"host_pid\":", when, now.tv_nsec / 1000, (int)getpid());
	if (host_pid > 0)
		tl_printf(&t, "%d", (int)host_pid);
	else
		tl_printf(&t, "null");
	tl_printf(&t, ",\"fn\":\"%s\",\"args\":", p11i_funcs[id].name);
	tl_args(&t, id, a, pre, rv);
	tl_printf(&t, ",\"rv\":");
	tl_named(&t, NAME(p11i_ckr_names, rv), rv);
	tl_printf(&t, ",\"us\":%.1f}\n", (double)ns / 1000.0);
	if (!t.oom) {
		pthread_mutex_lock(&tr.mu);
		int fd = outfile_fd(&tr);
		if (fd >= 0)
			p11i_log_write(fd, t.p, t.n);
		pthread_mutex_unlock(&tr.mu);
	}
	free(t.p);
}
