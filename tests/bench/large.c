/* large: large data, and no head-of-line blocking, through libp11isolate.so.
 *
 *   large PROXY DIRECT PIN [large|hol|all]
 *
 * PROXY is libp11isolate.so (P11ISOLATE_MODULE names the vendor), DIRECT
 * the same vendor module loaded directly (SoftHSM2: both see the token of
 * SOFTHSM2_CONF). One line per check, as the driver prints them:
 *   ok   - <what>
 *   FAIL - <what>: ...
 * and '#' lines with figures. Exits non-zero if any check failed.
 *
 * large: AES-256-CBC of 16 MiB and 64 MiB in one C_Encrypt each, through
 *   the proxy and directly with the same key and IV: the ciphertexts are
 *   equal, and decrypting through the proxy gives the plaintext back. Then
 *   C_EncryptUpdate in chunks on both sides of the shared region's
 *   threshold and size (16 KiB - 16, 16 KiB, 1 MiB, 3 MiB, 4 MiB, 5 MiB),
 *   a 16 MiB C_Digest, and CKO_DATA objects with 1 MiB and 16 MiB
 *   CKA_VALUEs made with C_CreateObject and read back with a length query
 *   and a fill. (Buffers larger than the region cross inline, in frames of
 *   at most 256 MiB.)
 *
 * hol: thread A generates RSA-4096 key pairs (seconds each) while thread B
 *   calls C_GenerateRandom(32) in a loop on its own session; B's latencies
 *   during A's keygen must stay small: a slow call on one channel does not
 *   hold up another. Unloaded, p99 is tens of µs; the check (p99 below
 *   HOL_P99_US, default 5000 µs) leaves room for a busy 2-core machine and is
 *   still a thousand times below what blocking behind a keygen would cost.
 *   The same is measured directly, for reference.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#define MIB (1024ul * 1024ul)
#define NELEM(a) ((CK_ULONG)(sizeof(a) / sizeof((a)[0])))

static int n_ok, n_fail;

static void say(int ok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%s - ", ok ? "ok  " : "FAIL");
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	va_end(ap);
	if (ok)
		n_ok++;
	else
		n_fail++;
}

static void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	va_end(ap);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "large: out of memory (%zu bytes)\n", n);
		exit(2);
	}
	return p;
}

/* Deterministic filler: the same bytes on both paths. */
static void fill(CK_BYTE *b, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (CK_BYTE)x;
	}
}

/* ------------------------------------------------------------------ */
/* Modules                                                              */

struct mod {
	const char *name, *path;
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE aes;
};

static const CK_BYTE aes_value[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
				       17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static CK_BYTE iv[16] = { 0xa5 };
static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

static int open_mod(struct mod *m, const char *pin)
{
	void *dl = dlopen(m->path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		say(0, "%s: dlopen %s: %s", m->name, m->path, dlerror());
		return -1;
	}
	CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
	CK_C_INITIALIZE_ARGS ia = { .flags = CKF_OS_LOCKING_OK };
	CK_RV rv;
	if (!gfl || gfl(&m->f) != CKR_OK || (rv = m->f->C_Initialize(&ia)) != CKR_OK) {
		say(0, "%s: C_Initialize failed", m->name);
		return -1;
	}
	CK_SLOT_ID slots[8];
	CK_ULONG n = NELEM(slots);
	if ((rv = m->f->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK || n == 0) {
		say(0, "%s: no slot with a token (0x%lx)", m->name, rv);
		return -1;
	}
	m->slot = slots[0];
	if ((rv = m->f->C_OpenSession(m->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &m->s)) != CKR_OK ||
	    (rv = m->f->C_Login(m->s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin))) != CKR_OK) {
		say(0, "%s: C_OpenSession + C_Login: 0x%lx", m->name, rv);
		return -1;
	}
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof cls },	  { CKA_KEY_TYPE, &kt, sizeof kt },
		{ CKA_TOKEN, &no, sizeof no },		  { CKA_ENCRYPT, &yes, sizeof yes },
		{ CKA_DECRYPT, &yes, sizeof yes },	  { CKA_VALUE, (void *)aes_value, sizeof aes_value },
	};
	if ((rv = m->f->C_CreateObject(m->s, t, NELEM(t), &m->aes)) != CKR_OK) {
		say(0, "%s: C_CreateObject(AES key): 0x%lx", m->name, rv);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* large                                                                */

/* Single-part AES-CBC with a length query first; *out is malloc'd. */
static CK_RV cbc(struct mod *m, int enc, const CK_BYTE *in, CK_ULONG n, CK_BYTE **out, CK_ULONG *outlen,
		 double *secs)
{
	CK_MECHANISM mech = { CKM_AES_CBC, iv, sizeof iv };
	CK_RV rv = enc ? m->f->C_EncryptInit(m->s, &mech, m->aes) : m->f->C_DecryptInit(m->s, &mech, m->aes);
	if (rv != CKR_OK)
		return rv;
	CK_ULONG len = 0;
	rv = enc ? m->f->C_Encrypt(m->s, (CK_BYTE_PTR)in, n, NULL, &len)
		 : m->f->C_Decrypt(m->s, (CK_BYTE_PTR)in, n, NULL, &len);
	if (rv != CKR_OK)
		return rv;
	*out = xmalloc(len);
	double t0 = now_s();
	rv = enc ? m->f->C_Encrypt(m->s, (CK_BYTE_PTR)in, n, *out, &len)
		 : m->f->C_Decrypt(m->s, (CK_BYTE_PTR)in, n, *out, &len);
	*secs = now_s() - t0;
	*outlen = len;
	return rv;
}

static void large_cbc(struct mod *px, struct mod *dx, size_t n)
{
	CK_BYTE *plain = xmalloc(n), *c1 = NULL, *c2 = NULL, *back = NULL;
	CK_ULONG l1 = 0, l2 = 0, l3 = 0;
	double t1, t2, t3;
	fill(plain, n, n);
	CK_RV r1 = cbc(px, 1, plain, n, &c1, &l1, &t1);
	CK_RV r2 = cbc(dx, 1, plain, n, &c2, &l2, &t2);
	say(r1 == CKR_OK && r2 == CKR_OK && l1 == n && l2 == n && !memcmp(c1, c2, n),
	    "C_Encrypt AES-CBC of %zu MiB: proxy (0x%lx, %lu bytes) equals direct (0x%lx, %lu bytes)", n / MIB, r1,
	    l1, r2, l2);
	CK_RV r3 = r1 == CKR_OK ? cbc(px, 0, c1, l1, &back, &l3, &t3) : r1;
	say(r3 == CKR_OK && l3 == n && !memcmp(back, plain, n), "C_Decrypt of %zu MiB through the proxy gives the plaintext back (0x%lx)",
	    n / MIB, r3);
	if (r1 == CKR_OK && r2 == CKR_OK)
		note("%zu MiB C_Encrypt: proxy %.0f MB/s, direct %.0f MB/s", n / MIB, n / t1 / 1e6, n / t2 / 1e6);
	free(plain);
	free(c1);
	free(c2);
	free(back);
}

/* Multi-part encryption of n bytes in chunks of `chunk` through the proxy
 * must give what single-part encryption gives directly. */
static void chunked_cbc(struct mod *px, struct mod *dx, size_t n, size_t chunk)
{
	CK_BYTE *plain = xmalloc(n), *c1 = xmalloc(n), *c2 = NULL;
	CK_ULONG l2 = 0;
	double t2;
	fill(plain, n, chunk);
	CK_MECHANISM mech = { CKM_AES_CBC, iv, sizeof iv };
	CK_RV rv = px->f->C_EncryptInit(px->s, &mech, px->aes);
	size_t done = 0;
	for (size_t off = 0; rv == CKR_OK && off < n; off += chunk) {
		/* Room for exactly this chunk's output (CBC: as long as the
		 * input), so outputs that fit go through the region too. */
		CK_ULONG in = off + chunk <= n ? chunk : n - off, len = in;
		rv = px->f->C_EncryptUpdate(px->s, plain + off, in, c1 + done, &len);
		done += len;
	}
	CK_ULONG last = n - done;
	if (rv == CKR_OK)
		rv = px->f->C_EncryptFinal(px->s, c1 + done, &last);
	CK_RV r2 = cbc(dx, 1, plain, n, &c2, &l2, &t2);
	say(rv == CKR_OK && r2 == CKR_OK && done + last == n && !memcmp(c1, c2, n),
	    "C_EncryptUpdate of %zu bytes in chunks of %zu through the proxy equals direct C_Encrypt (0x%lx)", n, chunk,
	    rv);
	free(plain);
	free(c1);
	free(c2);
}

static void large_digest(struct mod *px, struct mod *dx, size_t n)
{
	CK_BYTE *data = xmalloc(n), d1[32], d2[32];
	CK_ULONG l1 = sizeof d1, l2 = sizeof d2;
	CK_MECHANISM mech = { CKM_SHA256, NULL, 0 };
	fill(data, n, 7);
	double t0 = now_s();
	CK_RV r1 = px->f->C_DigestInit(px->s, &mech);
	if (r1 == CKR_OK)
		r1 = px->f->C_Digest(px->s, data, n, d1, &l1);
	double t1 = now_s();
	CK_RV r2 = dx->f->C_DigestInit(dx->s, &mech);
	if (r2 == CKR_OK)
		r2 = dx->f->C_Digest(dx->s, data, n, d2, &l2);
	double t2 = now_s();
	say(r1 == CKR_OK && r2 == CKR_OK && l1 == 32 && l2 == 32 && !memcmp(d1, d2, 32),
	    "C_Digest SHA-256 of %zu MiB in one call: proxy (0x%lx) equals direct (0x%lx)", n / MIB, r1, r2);
	note("%zu MiB C_Digest: proxy %.0f MB/s, direct %.0f MB/s", n / MIB, n / (t1 - t0) / 1e6, n / (t2 - t1) / 1e6);
	free(data);
}

/* A CKO_DATA object with an n-byte CKA_VALUE, created and read back through
 * the proxy with a length query and a fill. */
static void large_attr(struct mod *px, size_t n)
{
	CK_BYTE *value = xmalloc(n), *back = xmalloc(n + 16);
	fill(value, n, n + 1);
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_LABEL, "large", 5 },
		{ CKA_VALUE, value, n },
	};
	CK_OBJECT_HANDLE obj = 0;
	CK_RV rv = px->f->C_CreateObject(px->s, t, NELEM(t), &obj);
	say(rv == CKR_OK, "C_CreateObject CKO_DATA with a %zu-byte CKA_VALUE (0x%lx)", n, rv);
	if (rv != CKR_OK)
		goto out;
	CK_ATTRIBUTE q = { CKA_VALUE, NULL, 0 };
	rv = px->f->C_GetAttributeValue(px->s, obj, &q, 1);
	say(rv == CKR_OK && q.ulValueLen == n, "C_GetAttributeValue length query: %lu bytes (0x%lx)", q.ulValueLen, rv);
	memset(back, 0xee, n + 16);
	q.pValue = back;
	q.ulValueLen = n + 16; /* room to spare: the length must come back exact */
	rv = px->f->C_GetAttributeValue(px->s, obj, &q, 1);
	int tail_ok = 1;
	for (size_t i = n; i < n + 16; i++)
		tail_ok &= back[i] == 0xee;
	say(rv == CKR_OK && q.ulValueLen == n && !memcmp(back, value, n) && tail_ok,
	    "C_GetAttributeValue reads the %zu bytes back, nothing past them (0x%lx, %lu bytes)", n, rv, q.ulValueLen);
	/* One byte too little: CKR_BUFFER_TOO_SMALL, as the vendor says. */
	q.ulValueLen = n - 1;
	rv = px->f->C_GetAttributeValue(px->s, obj, &q, 1);
	say(rv == CKR_BUFFER_TOO_SMALL, "C_GetAttributeValue into %zu bytes: CKR_BUFFER_TOO_SMALL (0x%lx)", n - 1, rv);
	px->f->C_DestroyObject(px->s, obj);
out:
	free(value);
	free(back);
}

static void run_large(struct mod *px, struct mod *dx)
{
	large_cbc(px, dx, 16 * MIB);
	large_cbc(px, dx, 64 * MIB);
	static const size_t chunks[] = { 16 * 1024 - 16, 16 * 1024, MIB, 3 * MIB, 4 * MIB, 5 * MIB };
	for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++)
		chunked_cbc(px, dx, 12 * MIB - 16 * 7, chunks[i]);
	large_digest(px, dx, 16 * MIB);
	large_attr(px, MIB);
	large_attr(px, 16 * MIB);
}

/* ------------------------------------------------------------------ */
/* hol                                                                  */

struct keygen {
	struct mod *m;
	CK_SESSION_HANDLE s;
	double min_secs; /* keep generating until this long has passed */
	atomic_int started, done;
	int pairs;
	CK_RV rv;
	double secs;
};

static void *keygen_thread(void *p)
{
	struct keygen *k = p;
	CK_ULONG bits = 4096;
	CK_BYTE e[] = { 1, 0, 1 };
	CK_ATTRIBUTE pub[] = {
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_VERIFY, &yes, sizeof yes },
		{ CKA_MODULUS_BITS, &bits, sizeof bits },
		{ CKA_PUBLIC_EXPONENT, e, sizeof e },
	};
	CK_ATTRIBUTE priv[] = {
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_SIGN, &yes, sizeof yes },
	};
	CK_MECHANISM mech = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	double t0 = now_s();
	atomic_store(&k->started, 1);
	do {
		CK_OBJECT_HANDLE hpub, hpriv;
		k->rv = k->m->f->C_GenerateKeyPair(k->s, &mech, pub, NELEM(pub), priv, NELEM(priv), &hpub, &hpriv);
		if (k->rv != CKR_OK)
			break;
		k->pairs++;
		k->m->f->C_DestroyObject(k->s, hpub);
		k->m->f->C_DestroyObject(k->s, hpriv);
	} while (now_s() - t0 < k->min_secs);
	k->secs = now_s() - t0;
	atomic_store(&k->done, 1);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Runs the keygen thread and samples C_GenerateRandom latencies (µs) on
 * another session until it is done; returns the p99, or NAN. */
static double hol_run(struct mod *m, double min_secs, int check)
{
	struct keygen k = { .m = m, .min_secs = min_secs };
	CK_SESSION_HANDLE s;
	CK_RV rv;
	if ((rv = m->f->C_OpenSession(m->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &k.s)) != CKR_OK ||
	    (rv = m->f->C_OpenSession(m->slot, CKF_SERIAL_SESSION, NULL, NULL, &s)) != CKR_OK) {
		say(0, "%s: C_OpenSession: 0x%lx", m->name, rv);
		return NAN;
	}
	CK_BYTE buf[32];
	/* Warm the second channel up before the keygen starts. */
	for (int i = 0; i < 100; i++)
		m->f->C_GenerateRandom(s, buf, sizeof buf);

	size_t cap = 1 << 22, n = 0;
	double *lat = xmalloc(cap * sizeof *lat), worst = 0;
	pthread_t t;
	pthread_create(&t, NULL, keygen_thread, &k);
	while (!atomic_load(&k.started))
		;
	CK_RV bad = CKR_OK;
	while (!atomic_load(&k.done)) {
		double t0 = now_s();
		rv = m->f->C_GenerateRandom(s, buf, sizeof buf);
		double us = (now_s() - t0) * 1e6;
		if (rv != CKR_OK)
			bad = rv;
		if (n < cap)
			lat[n++] = us;
		if (us > worst)
			worst = us;
	}
	pthread_join(t, NULL);
	m->f->C_CloseSession(s);
	m->f->C_CloseSession(k.s);
	qsort(lat, n, sizeof *lat, cmp_double);
	double p50 = n ? lat[n / 2] : NAN, p99 = n ? lat[(size_t)(0.99 * (double)(n - 1))] : NAN;
	note("%s: %d RSA-4096 key pair(s) in %.2f s (0x%lx); meanwhile %zu C_GenerateRandom(32) on another session: p50 %.1f µs, p99 %.1f µs, max %.1f µs",
	     m->name, k.pairs, k.secs, k.rv, n, p50, p99, worst);
	if (check) {
		say(k.rv == CKR_OK && k.pairs > 0, "%s: C_GenerateKeyPair RSA-4096 (0x%lx)", m->name, k.rv);
		say(bad == CKR_OK && n >= 100, "%s: C_GenerateRandom kept being served during the keygen (%zu calls, 0x%lx)",
		    m->name, n, bad);
	}
	free(lat);
	return p99;
}

static void run_hol(struct mod *px, struct mod *dx)
{
	double limit = getenv("HOL_P99_US") ? atof(getenv("HOL_P99_US")) : 5000;
	if (dx)
		hol_run(dx, 1.0, 0);
	double p99 = hol_run(px, 1.0, 1);
	say(p99 <= limit, "proxy: C_GenerateRandom p99 during RSA-4096 keygen on another thread is %.1f µs (limit %.0f µs)",
	    p99, limit);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: large PROXY DIRECT PIN [large|hol|all]\n");
		return 2;
	}
	const char *what = argc > 4 ? argv[4] : "all";
	struct mod px = { .name = "proxy", .path = argv[1] }, dx = { .name = "direct", .path = argv[2] };
	if (open_mod(&px, argv[3]) || open_mod(&dx, argv[3]))
		return 1;
	if (!strcmp(what, "large") || !strcmp(what, "all"))
		run_large(&px, &dx);
	if (!strcmp(what, "hol") || !strcmp(what, "all"))
		run_hol(&px, &dx);
	px.f->C_Finalize(NULL);
	dx.f->C_Finalize(NULL);
	printf("# %d ok, %d failed\n", n_ok, n_fail);
	return n_fail ? 1 : 0;
}
