/*
 * check: a direct client of the PKCS#11 3.2 test module mod32 (or of
 * libp11isolate.so configured to load it). It gets the "PKCS 11" 3.2
 * interface with C_GetInterface, the only symbol it looks up, makes every
 * call through that function list, and checks the results against values
 * it computes itself (the toy algorithms are described in README.md). It
 * never relies on handle values.
 *
 *   check MODULE [--proxy]
 *
 * --proxy: MODULE is the proxy, which must not offer mod32's vendor
 * interface and may set the interfaces' flags its own way.
 * Prints "ok N checks" and exits 0, or names the failed check and exits 1.
 *
 * Build (from the repository's top directory):
 *   gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -I/usr/include/p11-kit-1 \
 *       -Icshim -o build/tests/mod32-check tests/mod32/check.c \
 *       cshim/sha256.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkcs11_3x.h"
#include "shim.h" /* p11i_sha256_* (cshim/sha256.c), for the expected values */

#ifndef CKS_LAST_VALIDATION_OK
#define CKS_LAST_VALIDATION_OK 0x00000001UL
#endif
#ifndef CKK_ML_DSA
#define CKK_ML_DSA 0x0000004aUL
#endif

/* The 3.2 function list as a client sees it: the 2.40 list, then the 3.0
 * and 3.2 functions (written here independently of mod32.c's, so that
 * the two layouts check each other). */
struct fl32 {
	CK_FUNCTION_LIST v2;
	/* 3.0 */
	CK_RV (*C_GetInterfaceList)(CK_INTERFACE_PTR, CK_ULONG_PTR);
	CK_RV (*C_GetInterface)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS);
	CK_RV (*C_LoginUser)(CK_SESSION_HANDLE, CK_USER_TYPE, CK_UTF8CHAR_PTR, CK_ULONG, CK_UTF8CHAR_PTR, CK_ULONG);
	CK_RV (*C_SessionCancel)(CK_SESSION_HANDLE, CK_FLAGS);
	CK_RV (*C_MessageEncryptInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
	CK_RV (*C_EncryptMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
				  CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
	CK_RV (*C_EncryptMessageBegin)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG);
	CK_RV (*C_EncryptMessageNext)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
				      CK_ULONG_PTR, CK_FLAGS);
	CK_RV (*C_MessageEncryptFinal)(CK_SESSION_HANDLE);
	CK_RV (*C_MessageDecryptInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
	CK_RV (*C_DecryptMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
				  CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
	CK_RV (*C_DecryptMessageBegin)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG);
	CK_RV (*C_DecryptMessageNext)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
				      CK_ULONG_PTR, CK_FLAGS);
	CK_RV (*C_MessageDecryptFinal)(CK_SESSION_HANDLE);
	CK_RV (*C_MessageSignInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
	CK_RV (*C_SignMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
			       CK_ULONG_PTR);
	CK_RV (*C_SignMessageBegin)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG);
	CK_RV (*C_SignMessageNext)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
				   CK_ULONG_PTR);
	CK_RV (*C_MessageSignFinal)(CK_SESSION_HANDLE);
	CK_RV (*C_MessageVerifyInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
	CK_RV (*C_VerifyMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
				 CK_ULONG);
	CK_RV (*C_VerifyMessageBegin)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG);
	CK_RV (*C_VerifyMessageNext)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
				     CK_ULONG);
	CK_RV (*C_MessageVerifyFinal)(CK_SESSION_HANDLE);
	/* 3.2 */
	CK_RV (*C_EncapsulateKey)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE, CK_ATTRIBUTE_PTR, CK_ULONG,
				  CK_BYTE_PTR, CK_ULONG_PTR, CK_OBJECT_HANDLE_PTR);
	CK_RV (*C_DecapsulateKey)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE, CK_ATTRIBUTE_PTR, CK_ULONG,
				  CK_BYTE_PTR, CK_ULONG, CK_OBJECT_HANDLE_PTR);
	CK_RV (*C_VerifySignatureInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE, CK_BYTE_PTR, CK_ULONG);
	CK_RV (*C_VerifySignature)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG);
	CK_RV (*C_VerifySignatureUpdate)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG);
	CK_RV (*C_VerifySignatureFinal)(CK_SESSION_HANDLE);
	CK_RV (*C_GetSessionValidationFlags)(CK_SESSION_HANDLE, CK_SESSION_VALIDATION_FLAGS_TYPE, CK_FLAGS *);
	CK_RV (*C_AsyncComplete)(CK_SESSION_HANDLE, CK_UTF8CHAR_PTR, CK_ASYNC_DATA_PTR);
	CK_RV (*C_AsyncGetID)(CK_SESSION_HANDLE, CK_UTF8CHAR_PTR, CK_ULONG_PTR);
	CK_RV (*C_AsyncJoin)(CK_SESSION_HANDLE, CK_UTF8CHAR_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG);
	CK_RV (*C_WrapKeyAuthenticated)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE,
					CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
	CK_RV (*C_UnwrapKeyAuthenticated)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE, CK_BYTE_PTR,
					  CK_ULONG, CK_ATTRIBUTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG,
					  CK_OBJECT_HANDLE_PTR);
};

/* ------------------------------------------------------------------ */
/* Reporting: the first failure ends the run.                         */

static int n_checks;

static void fail(int line, const char *what, const char *detail)
{
	printf("FAIL check.c:%d: %s%s%s\n", line, what, detail ? ": " : "", detail ? detail : "");
	exit(1);
}

#define CHECK(cond)                                     \
	do {                                            \
		if (!(cond))                            \
			fail(__LINE__, #cond, NULL);    \
		n_checks++;                             \
	} while (0)

/* RV checks a call's return value. */
#define RV(want, call)                                                                    \
	do {                                                                              \
		CK_RV rv_ = (call);                                                       \
		if (rv_ != (CK_RV)(want)) {                                               \
			char d_[64];                                                      \
			snprintf(d_, sizeof d_, "got 0x%lx want 0x%lx", rv_, (CK_RV)(want)); \
			fail(__LINE__, #call, d_);                                        \
		}                                                                         \
		n_checks++;                                                               \
	} while (0)

/* ------------------------------------------------------------------ */
/* The expected values, computed here.                                */

/* sha_update skips empty input, which may come with a NULL pointer
 * (p11i_sha256_update would hand that to memcpy). */
static void sha_update(struct p11i_sha256 *h, const void *p, size_t n)
{
	if (n > 0)
		p11i_sha256_update(h, p, n);
}

static void sha256(uint8_t out[32], const void *a, size_t an, const void *b, size_t bn, const void *c, size_t cn)
{
	struct p11i_sha256 h;

	p11i_sha256_init(&h);
	sha_update(&h, a, an);
	sha_update(&h, b, bn);
	sha_update(&h, c, cn);
	p11i_sha256_final(&h, out);
}

/* Toy ML-DSA: h = SHA-256(private || context || data), signature h || SHA-256(h). */
static void toy_sig(const uint8_t priv[64], const void *ctx, size_t ctx_n, const void *data, size_t data_n,
		    uint8_t sig[64])
{
	sha256(sig, priv, 64, ctx, ctx_n, data, data_n);
	sha256(sig + 32, sig, 32, NULL, 0, NULL, 0);
}

/* Toy AEAD: keystream block i = SHA-256(key || iv || i as 4 bytes big-endian),
 * tag = SHA-256(key || iv || aad || ciphertext) cut to tag_n bytes. */
static void toy_seal(const uint8_t *key, size_t key_n, const uint8_t *iv, size_t iv_n, const void *aad, size_t aad_n,
		     const uint8_t *pt, size_t n, uint8_t *ct, uint8_t *tag, size_t tag_n)
{
	struct p11i_sha256 h;
	uint8_t ks[32], sum[32];

	for (size_t i = 0; i < n; i++) {
		if (i % 32 == 0) {
			uint8_t ctr[4] = { (uint8_t)(i / 32 >> 24), (uint8_t)(i / 32 >> 16), (uint8_t)(i / 32 >> 8),
					   (uint8_t)(i / 32) };
			p11i_sha256_init(&h);
			sha_update(&h, key, key_n);
			sha_update(&h, iv, iv_n);
			sha_update(&h, ctr, 4);
			p11i_sha256_final(&h, ks);
		}
		ct[i] = pt[i] ^ ks[i % 32];
	}
	p11i_sha256_init(&h);
	sha_update(&h, key, key_n);
	sha_update(&h, iv, iv_n);
	sha_update(&h, aad, aad_n);
	sha_update(&h, ct, n);
	p11i_sha256_final(&h, sum);
	memcpy(tag, sum, tag_n);
}

/* ------------------------------------------------------------------ */
/* Helpers.                                                           */

static struct fl32 *f;
static CK_SLOT_ID slot;
static CK_SESSION_HANDLE s1, sa, sb; /* s1 synchronous; sa, sb CKF_ASYNC_SESSION */
static bool proxied;

static CK_BBOOL no = CK_FALSE;
static CK_OBJECT_CLASS c_secret = CKO_SECRET_KEY, c_private = CKO_PRIVATE_KEY, c_public = CKO_PUBLIC_KEY,
		       c_data = CKO_DATA;
static CK_KEY_TYPE k_aes = CKK_AES, k_generic = CKK_GENERIC_SECRET, k_mldsa = CKK_ML_DSA;

static const uint8_t msg[] = "the quick brown fox jumps over the lazy dog, twice over for length";
static const char ctx_text[] = "mod32 context";

#define UTF8(s) ((CK_UTF8CHAR_PTR)(s))
#define ATTR(t, v) { (t), &(v), sizeof(v) }

static bool padded_is(const CK_UTF8CHAR *field, size_t n, const char *want)
{
	size_t k = strlen(want);

	if (k > n || memcmp(field, want, k) != 0)
		return false;
	for (size_t i = k; i < n; i++)
		if (field[i] != ' ')
			return false;
	return true;
}

/* value reads an object's CKA_VALUE the two-call way; returns its length. */
static CK_ULONG value(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, uint8_t *buf, CK_ULONG cap)
{
	CK_ATTRIBUTE a = { CKA_VALUE, NULL, 0 };

	RV(CKR_OK, f->v2.C_GetAttributeValue(s, o, &a, 1));
	CHECK(a.ulValueLen <= cap);
	a.pValue = buf;
	RV(CKR_OK, f->v2.C_GetAttributeValue(s, o, &a, 1));
	return a.ulValueLen;
}

static CK_ULONG count_objects(CK_SESSION_HANDLE s, CK_ATTRIBUTE *t, CK_ULONG n)
{
	CK_OBJECT_HANDLE h[64];
	CK_ULONG got, total = 0;

	RV(CKR_OK, f->v2.C_FindObjectsInit(s, t, n));
	do {
		RV(CKR_OK, f->v2.C_FindObjects(s, h, 64, &got));
		total += got;
	} while (got > 0);
	RV(CKR_OK, f->v2.C_FindObjectsFinal(s));
	return total;
}

static CK_OBJECT_HANDLE gen_secret(CK_SESSION_HANDLE s, CK_MECHANISM_TYPE mech, CK_ULONG len)
{
	CK_MECHANISM m = { mech, NULL, 0 };
	CK_ATTRIBUTE t[] = { ATTR(CKA_VALUE_LEN, len), ATTR(CKA_TOKEN, no) };
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;

	RV(CKR_OK, f->v2.C_GenerateKey(s, &m, t, 2, &h));
	CHECK(h != CK_INVALID_HANDLE);
	return h;
}

/* ------------------------------------------------------------------ */
/* Interfaces (before C_Initialize).                                  */

static void check_interfaces(CK_RV (*get)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS))
{
	CK_INTERFACE_PTR in = NULL;
	CK_VERSION v32 = { 3, 2 }, v30 = { 3, 0 }, v240 = { 2, 40 }, v31 = { 3, 1 }, v10 = { 1, 0 };
	CK_INTERFACE list[8];
	CK_ULONG n = 0;

	/* The default: the first, "PKCS 11" 3.2. */
	RV(CKR_OK, get(NULL, NULL, &in, 0));
	CHECK(strcmp((char *)in->pInterfaceName, "PKCS 11") == 0);
	CHECK(((CK_VERSION *)in->pFunctionList)->major == 3 && ((CK_VERSION *)in->pFunctionList)->minor == 2);
	RV(CKR_OK, get(UTF8("PKCS 11"), &v30, &in, 0));
	CHECK(((CK_VERSION *)in->pFunctionList)->major == 3 && ((CK_VERSION *)in->pFunctionList)->minor == 0);
	RV(CKR_OK, get(UTF8("PKCS 11"), &v240, &in, 0));
	CHECK(((CK_FUNCTION_LIST *)in->pFunctionList)->version.major == 2);
	CHECK(((CK_FUNCTION_LIST *)in->pFunctionList)->version.minor == 40);
	RV(CKR_ARGUMENTS_BAD, get(UTF8("PKCS 11"), &v31, &in, 0));
	RV(CKR_ARGUMENTS_BAD, get(UTF8("PKCS 12"), NULL, &in, 0));
	RV(CKR_ARGUMENTS_BAD, get(UTF8("PKCS 11"), &v32, NULL, 0));
	/* The flags are the module's, through the proxy too. */
	RV(CKR_OK, get(UTF8("PKCS 11"), &v32, &in, CKF_INTERFACE_FORK_SAFE));
	CHECK(in->flags == CKF_INTERFACE_FORK_SAFE);
	RV(CKR_ARGUMENTS_BAD, get(UTF8("PKCS 11"), &v30, &in, CKF_INTERFACE_FORK_SAFE));
	if (!proxied) {
		RV(CKR_OK, get(UTF8("Vendor mod32"), &v10, &in, 0));
		/* Its list: a version, then Mod32_Describe(buf, &len). */
		struct {
			CK_VERSION version;
			CK_RV (*describe)(CK_UTF8CHAR_PTR, CK_ULONG_PTR);
		} *vendor = in->pFunctionList;
		char text[64] = "";
		CK_ULONG text_n = sizeof text - 1;
		RV(CKR_OK, vendor->describe((CK_UTF8CHAR_PTR)text, &text_n));
		CHECK(text_n == 22 && strcmp(text, "mod32 vendor interface") == 0);
	} else {
		RV(CKR_ARGUMENTS_BAD, get(UTF8("Vendor mod32"), &v10, &in, 0));
	}

	RV(CKR_OK, get(UTF8("PKCS 11"), &v32, &in, 0));
	f = in->pFunctionList;
	CHECK(f->v2.version.major == 3 && f->v2.version.minor == 2);
	/* Every entry of the 3.2 list is there, supported or not. */
	for (size_t off = offsetof(struct fl32, v2.C_Initialize); off < sizeof *f; off += sizeof(void (*)(void))) {
		uintptr_t fn;
		memcpy(&fn, (char *)f + off, sizeof fn);
		CHECK(fn != 0);
	}

	RV(CKR_ARGUMENTS_BAD, f->C_GetInterfaceList(list, NULL));
	RV(CKR_OK, f->C_GetInterfaceList(NULL, &n));
	CHECK(n == (proxied ? 3 : 4));
	n = 1;
	RV(CKR_BUFFER_TOO_SMALL, f->C_GetInterfaceList(list, &n));
	CHECK(n == (proxied ? 3 : 4));
	n = 8;
	RV(CKR_OK, f->C_GetInterfaceList(list, &n));
	CHECK(n == (proxied ? 3 : 4));
	static const CK_BYTE versions[3][2] = { { 3, 2 }, { 3, 0 }, { 2, 40 } };
	for (int i = 0; i < 3; i++) {
		CK_VERSION *v = list[i].pFunctionList;
		CHECK(strcmp((char *)list[i].pInterfaceName, "PKCS 11") == 0);
		CHECK(v->major == versions[i][0] && v->minor == versions[i][1]);
	}
	CHECK(list[0].flags == CKF_INTERFACE_FORK_SAFE && list[1].flags == 0 && list[2].flags == 0);
	if (!proxied)
		CHECK(strcmp((char *)list[3].pInterfaceName, "Vendor mod32") == 0);
	for (CK_ULONG i = 0; i < n; i++)
		printf("# interface %lu: \"%s\" %d.%d flags 0x%lx\n", i, (char *)list[i].pInterfaceName,
		       ((CK_VERSION *)list[i].pFunctionList)->major, ((CK_VERSION *)list[i].pFunctionList)->minor,
		       list[i].flags);
}

/* ------------------------------------------------------------------ */
/* Library, slot, token, mechanisms, sessions, login.                 */

static void check_general(void)
{
	CK_INFO info;
	CK_ULONG n = 0;
	CK_TOKEN_INFO ti;
	CK_MECHANISM_TYPE mechs[16];
	CK_MECHANISM_INFO mi;
	CK_SESSION_INFO si;

	RV(CKR_CRYPTOKI_NOT_INITIALIZED, f->v2.C_GetInfo(&info));
	RV(CKR_OK, f->v2.C_Initialize(NULL));
	RV(CKR_CRYPTOKI_ALREADY_INITIALIZED, f->v2.C_Initialize(NULL));
	RV(CKR_OK, f->v2.C_GetInfo(&info));
	CHECK(info.cryptokiVersion.major == 3 && info.cryptokiVersion.minor == 2);
	CHECK(padded_is(info.manufacturerID, sizeof info.manufacturerID, "p11isolate test"));

	RV(CKR_OK, f->v2.C_GetSlotList(CK_TRUE, NULL, &n));
	CHECK(n == 1);
	RV(CKR_OK, f->v2.C_GetSlotList(CK_TRUE, &slot, &n));
	RV(CKR_OK, f->v2.C_GetTokenInfo(slot, &ti));
	CHECK(padded_is(ti.label, sizeof ti.label, "mod32"));
	CHECK((ti.flags & (CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_TOKEN_INITIALIZED)) ==
	      (CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_TOKEN_INITIALIZED));

	n = 2;
	RV(CKR_BUFFER_TOO_SMALL, f->v2.C_GetMechanismList(slot, mechs, &n));
	CHECK(n == 7);
	RV(CKR_OK, f->v2.C_GetMechanismList(slot, mechs, &n));
	CHECK(n == 7);
	static const struct {
		CK_MECHANISM_TYPE type;
		CK_FLAGS flags;
	} want[] = {
		{ CKM_ML_KEM_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR },
		{ CKM_ML_KEM, CKF_ENCAPSULATE | CKF_DECAPSULATE },
		{ CKM_ML_DSA_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR },
		{ CKM_ML_DSA, CKF_SIGN | CKF_VERIFY | CKF_MESSAGE_SIGN | CKF_MESSAGE_VERIFY },
		{ CKM_AES_GCM, CKF_WRAP | CKF_UNWRAP | CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT },
		{ CKM_AES_KEY_GEN, CKF_GENERATE },
		{ CKM_GENERIC_SECRET_KEY_GEN, CKF_GENERATE },
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		bool listed = false;
		for (CK_ULONG j = 0; j < n; j++)
			listed |= mechs[j] == want[i].type;
		CHECK(listed);
		RV(CKR_OK, f->v2.C_GetMechanismInfo(slot, want[i].type, &mi));
		CHECK((mi.flags & want[i].flags) == want[i].flags);
	}
	RV(CKR_MECHANISM_INVALID, f->v2.C_GetMechanismInfo(slot, CKM_SHA256, &mi));

	RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED, f->v2.C_OpenSession(slot, CKF_RW_SESSION, NULL, NULL, &s1));
	RV(CKR_OK, f->v2.C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s1));
	RV(CKR_OK, f->v2.C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION | CKF_ASYNC_SESSION, NULL, NULL, &sa));
	RV(CKR_OK, f->v2.C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION | CKF_ASYNC_SESSION, NULL, NULL, &sb));
	RV(CKR_OK, f->v2.C_GetSessionInfo(sa, &si));
	CHECK(si.flags & CKF_ASYNC_SESSION);
	CHECK(si.state == CKS_RW_PUBLIC_SESSION);
	RV(CKR_OK, f->v2.C_GetSessionInfo(s1, &si));
	CHECK(!(si.flags & CKF_ASYNC_SESSION));

	/* Login: C_LoginUser knows alice, PIN 1234. */
	RV(CKR_ARGUMENTS_BAD, f->C_LoginUser(s1, CKU_USER, UTF8("1234"), 4, NULL, 0));
	RV(CKR_PIN_INCORRECT, f->C_LoginUser(s1, CKU_USER, UTF8("1234"), 4, UTF8("bob"), 3));
	RV(CKR_PIN_INCORRECT, f->C_LoginUser(s1, CKU_USER, UTF8("9999"), 4, UTF8("alice"), 5));
	RV(CKR_OK, f->C_LoginUser(s1, CKU_USER, UTF8("1234"), 4, UTF8("alice"), 5));
	RV(CKR_OK, f->v2.C_GetSessionInfo(sa, &si));
	CHECK(si.state == CKS_RW_USER_FUNCTIONS); /* the login is the application's, every session's */
	RV(CKR_USER_ALREADY_LOGGED_IN, f->v2.C_Login(s1, CKU_USER, UTF8("1234"), 4));
	RV(CKR_USER_ALREADY_LOGGED_IN, f->C_LoginUser(sa, CKU_USER, UTF8("1234"), 4, UTF8("alice"), 5));
	RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN, f->v2.C_Login(s1, CKU_SO, UTF8("5678"), 4));
	RV(CKR_OK, f->v2.C_Logout(s1));
	RV(CKR_USER_NOT_LOGGED_IN, f->v2.C_Logout(s1));
	RV(CKR_PIN_INCORRECT, f->v2.C_Login(s1, CKU_USER, UTF8("123"), 3));
	RV(CKR_OK, f->v2.C_Login(s1, CKU_USER, UTF8("1234"), 4));
}

/* ------------------------------------------------------------------ */
/* Objects and C_GetAttributeValue's rules.                           */

static void check_objects(void)
{
	static const char label[] = "mod32-check-data";
	static const char text[] = "hello";
	CK_ATTRIBUTE t[] = { ATTR(CKA_CLASS, c_data), { CKA_LABEL, (void *)label, sizeof label - 1 },
			     { CKA_VALUE, (void *)text, sizeof text - 1 }, ATTR(CKA_TOKEN, no) };
	CK_OBJECT_HANDLE h, found[4];
	CK_ULONG n;
	uint8_t buf[64];
	CK_KEY_TYPE kt;

	RV(CKR_TEMPLATE_INCOMPLETE, f->v2.C_CreateObject(s1, t + 1, 3, &h));
	RV(CKR_OK, f->v2.C_CreateObject(s1, t, 4, &h));
	RV(CKR_OK, f->v2.C_FindObjectsInit(s1, t + 1, 1));
	RV(CKR_OPERATION_ACTIVE, f->v2.C_FindObjectsInit(s1, t + 1, 1));
	RV(CKR_OK, f->v2.C_FindObjects(s1, found, 4, &n));
	CHECK(n == 1 && found[0] == h);
	RV(CKR_OK, f->v2.C_FindObjectsFinal(s1));

	/* NULL pValue: the length; a short buffer: CKR_BUFFER_TOO_SMALL and
	 * CK_UNAVAILABLE_INFORMATION; a type the object lacks: that code, and
	 * the other attributes still answered. */
	CK_ATTRIBUTE q[] = { { CKA_VALUE, NULL, 0 } };
	RV(CKR_OK, f->v2.C_GetAttributeValue(s1, h, q, 1));
	CHECK(q[0].ulValueLen == 5);
	q[0].pValue = buf, q[0].ulValueLen = 2;
	RV(CKR_BUFFER_TOO_SMALL, f->v2.C_GetAttributeValue(s1, h, q, 1));
	CHECK(q[0].ulValueLen == CK_UNAVAILABLE_INFORMATION);
	CK_ATTRIBUTE q2[] = { { CKA_KEY_TYPE, &kt, sizeof kt }, { CKA_VALUE, buf, sizeof buf } };
	RV(CKR_ATTRIBUTE_TYPE_INVALID, f->v2.C_GetAttributeValue(s1, h, q2, 2));
	CHECK(q2[0].ulValueLen == CK_UNAVAILABLE_INFORMATION);
	CHECK(q2[1].ulValueLen == 5 && memcmp(buf, "hello", 5) == 0);

	RV(CKR_OK, f->v2.C_DestroyObject(s1, h));
	RV(CKR_OBJECT_HANDLE_INVALID, f->v2.C_GetAttributeValue(s1, h, q, 1));
	RV(CKR_OBJECT_HANDLE_INVALID, f->v2.C_DestroyObject(s1, h));
}

/* ------------------------------------------------------------------ */
/* Toy ML-KEM.                                                        */

static void check_kem(void)
{
	CK_MECHANISM gen = { CKM_ML_KEM_KEY_PAIR_GEN, NULL, 0 }, kem = { CKM_ML_KEM, NULL, 0 };
	CK_ATTRIBUTE pubt[] = { ATTR(CKA_TOKEN, no) }, privt[] = { ATTR(CKA_TOKEN, no) };
	CK_ULONG len32 = 32, len16 = 16;
	CK_ATTRIBUTE kt[] = { ATTR(CKA_CLASS, c_secret), ATTR(CKA_KEY_TYPE, k_generic), ATTR(CKA_VALUE_LEN, len32),
			      ATTR(CKA_TOKEN, no) };
	CK_ATTRIBUTE kt16[] = { ATTR(CKA_KEY_TYPE, k_aes), ATTR(CKA_VALUE_LEN, len16), ATTR(CKA_TOKEN, no) };
	CK_ATTRIBUTE secrets[] = { ATTR(CKA_CLASS, c_secret) };
	CK_OBJECT_HANDLE pub, priv, k1 = CK_INVALID_HANDLE, k2, k3, k4;
	uint8_t pubv[64], ct[64], ct2[64], v1[64], v2[64], want[32];
	CK_ULONG ct_n, n;

	RV(CKR_OK, f->v2.C_GenerateKeyPair(s1, &gen, pubt, 1, privt, 1, &pub, &priv));
	CHECK(value(s1, pub, pubv, sizeof pubv) == 32);
	CK_ATTRIBUTE pv = { CKA_VALUE, NULL, 0 };
	RV(CKR_ATTRIBUTE_SENSITIVE, f->v2.C_GetAttributeValue(s1, priv, &pv, 1));
	CHECK(pv.ulValueLen == CK_UNAVAILABLE_INFORMATION);

	/* The length query makes no key. */
	CK_ULONG before = count_objects(s1, secrets, 1);
	ct_n = 0;
	RV(CKR_OK, f->C_EncapsulateKey(s1, &kem, pub, kt, 4, NULL, &ct_n, &k1));
	CHECK(ct_n == 48 && k1 == CK_INVALID_HANDLE);
	CHECK(count_objects(s1, secrets, 1) == before);
	ct_n = 10;
	RV(CKR_BUFFER_TOO_SMALL, f->C_EncapsulateKey(s1, &kem, pub, kt, 4, ct, &ct_n, &k1));
	CHECK(ct_n == 48);
	RV(CKR_KEY_TYPE_INCONSISTENT, f->C_EncapsulateKey(s1, &kem, priv, kt, 4, ct, &ct_n, &k1));
	ct_n = sizeof ct;
	RV(CKR_OK, f->C_EncapsulateKey(s1, &kem, pub, kt, 4, ct, &ct_n, &k1));
	CHECK(ct_n == 48 && k1 != CK_INVALID_HANDLE);
	CHECK(count_objects(s1, secrets, 1) == before + 1);
	RV(CKR_ENCRYPTED_DATA_LEN_RANGE, f->C_DecapsulateKey(s1, &kem, priv, kt, 4, ct, 47, &k2));
	RV(CKR_OK, f->C_DecapsulateKey(s1, &kem, priv, kt, 4, ct, ct_n, &k2));
	CHECK(k2 != k1);

	/* Both sides hold SHA-256(public || ciphertext). */
	sha256(want, pubv, 32, ct, 48, NULL, 0);
	CHECK(value(s1, k1, v1, sizeof v1) == 32 && memcmp(v1, want, 32) == 0);
	CHECK(value(s1, k2, v2, sizeof v2) == 32 && memcmp(v2, want, 32) == 0);

	/* A 16-byte AES key gets the secret's first 16 bytes. */
	ct_n = sizeof ct2;
	RV(CKR_OK, f->C_EncapsulateKey(s1, &kem, pub, kt16, 3, ct2, &ct_n, &k3));
	CHECK(memcmp(ct2, ct, 48) != 0);
	RV(CKR_OK, f->C_DecapsulateKey(s1, &kem, priv, kt16, 3, ct2, ct_n, &k4));
	sha256(want, pubv, 32, ct2, 48, NULL, 0);
	n = value(s1, k3, v1, sizeof v1);
	CHECK(n == 16 && memcmp(v1, want, 16) == 0);
	n = value(s1, k4, v2, sizeof v2);
	CHECK(n == 16 && memcmp(v2, want, 16) == 0);
}

/* ------------------------------------------------------------------ */
/* Toy ML-DSA: C_Sign/C_Verify, C_VerifySignature*, message signing.   */

/* A key pair of known values, so that the signatures can be computed
 * here: private = 0, 1, ... 63, public = SHA-256(private). */
static uint8_t known_priv[64];
static CK_OBJECT_HANDLE kpriv, kpub;

static void make_known_pair(void)
{
	uint8_t pub[32];

	for (int i = 0; i < 64; i++)
		known_priv[i] = (uint8_t)i;
	sha256(pub, known_priv, 64, NULL, 0, NULL, 0);
	CK_ATTRIBUTE privt[] = { ATTR(CKA_CLASS, c_private), ATTR(CKA_KEY_TYPE, k_mldsa), ATTR(CKA_TOKEN, no),
				 { CKA_VALUE, known_priv, 64 } };
	CK_ATTRIBUTE pubt[] = { ATTR(CKA_CLASS, c_public), ATTR(CKA_KEY_TYPE, k_mldsa), ATTR(CKA_TOKEN, no),
				{ CKA_VALUE, pub, 32 } };
	RV(CKR_OK, f->v2.C_CreateObject(s1, privt, 4, &kpriv));
	RV(CKR_OK, f->v2.C_CreateObject(s1, pubt, 4, &kpub));
}

static CK_SIGN_ADDITIONAL_CONTEXT ctx_param = { CKH_DETERMINISTIC_REQUIRED, (CK_BYTE_PTR)ctx_text,
						 sizeof ctx_text - 1 };

/* sign_ref signs msg with the known key and context on session s. */
static CK_RV sign_once(CK_SESSION_HANDLE s, uint8_t *sig, CK_ULONG *sig_n)
{
	CK_MECHANISM m = { CKM_ML_DSA, &ctx_param, sizeof ctx_param };

	RV(CKR_OK, f->v2.C_SignInit(s, &m, kpriv));
	return f->v2.C_Sign(s, (CK_BYTE_PTR)msg, sizeof msg, sig, sig_n);
}

static void check_dsa(void)
{
	CK_MECHANISM m = { CKM_ML_DSA, &ctx_param, sizeof ctx_param }, bare = { CKM_ML_DSA, NULL, 0 };
	CK_MECHANISM bad = { CKM_ML_DSA, &ctx_param, sizeof ctx_param - 1 };
	CK_MECHANISM gen = { CKM_ML_DSA_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE tt[] = { ATTR(CKA_TOKEN, no) };
	uint8_t want[64], want_bare[64], sig[80], sig2[80];
	CK_ULONG n;
	CK_FLAGS vf = 99;
	CK_OBJECT_HANDLE gpub, gpriv;

	toy_sig(known_priv, ctx_text, sizeof ctx_text - 1, msg, sizeof msg, want);
	toy_sig(known_priv, NULL, 0, msg, sizeof msg, want_bare);

	RV(CKR_OPERATION_NOT_INITIALIZED, f->v2.C_Sign(s1, (CK_BYTE_PTR)msg, sizeof msg, sig, &n));
	RV(CKR_MECHANISM_PARAM_INVALID, f->v2.C_SignInit(s1, &bad, kpriv));
	RV(CKR_KEY_TYPE_INCONSISTENT, f->v2.C_SignInit(s1, &m, kpub));
	RV(CKR_OK, f->v2.C_SignInit(s1, &m, kpriv));
	RV(CKR_OPERATION_ACTIVE, f->v2.C_SignInit(s1, &m, kpriv));
	RV(CKR_OK, f->v2.C_Sign(s1, (CK_BYTE_PTR)msg, sizeof msg, NULL, &n));
	CHECK(n == 64);
	n = 10;
	RV(CKR_BUFFER_TOO_SMALL, f->v2.C_Sign(s1, (CK_BYTE_PTR)msg, sizeof msg, sig, &n));
	CHECK(n == 64);
	n = sizeof sig;
	RV(CKR_OK, f->v2.C_Sign(s1, (CK_BYTE_PTR)msg, sizeof msg, sig, &n));
	CHECK(n == 64 && memcmp(sig, want, 64) == 0);

	/* The validation flag follows the last operation. */
	RV(CKR_OK, f->C_GetSessionValidationFlags(s1, CKS_LAST_VALIDATION_OK, &vf));
	CHECK(vf == 0x1);
	RV(CKR_ARGUMENTS_BAD, f->C_GetSessionValidationFlags(s1, 0x1234, &vf));
	RV(CKR_ARGUMENTS_BAD, f->C_GetSessionValidationFlags(s1, CKS_LAST_VALIDATION_OK, NULL));

	RV(CKR_OK, f->v2.C_VerifyInit(s1, &m, kpub));
	RV(CKR_OK, f->v2.C_Verify(s1, (CK_BYTE_PTR)msg, sizeof msg, sig, 64));
	RV(CKR_OK, f->C_GetSessionValidationFlags(s1, CKS_LAST_VALIDATION_OK, &vf));
	CHECK(vf == 0);
	sig[5] ^= 1;
	RV(CKR_OK, f->v2.C_VerifyInit(s1, &m, kpub));
	RV(CKR_SIGNATURE_INVALID, f->v2.C_Verify(s1, (CK_BYTE_PTR)msg, sizeof msg, sig, 64));
	sig[5] ^= 1;
	RV(CKR_OK, f->v2.C_VerifyInit(s1, &m, kpub));
	RV(CKR_SIGNATURE_LEN_RANGE, f->v2.C_Verify(s1, (CK_BYTE_PTR)msg, sizeof msg, sig, 63));
	RV(CKR_OK, f->v2.C_VerifyInit(s1, &bare, kpub)); /* another context: another signature */
	RV(CKR_SIGNATURE_INVALID, f->v2.C_Verify(s1, (CK_BYTE_PTR)msg, sizeof msg, sig, 64));

	/* No parameter: the empty context. */
	RV(CKR_OK, f->v2.C_SignInit(s1, &bare, kpriv));
	n = sizeof sig2;
	RV(CKR_OK, f->v2.C_Sign(s1, (CK_BYTE_PTR)msg, sizeof msg, sig2, &n));
	CHECK(n == 64 && memcmp(sig2, want_bare, 64) == 0);

	/* Multi-part signing and verifying give the same. */
	RV(CKR_OK, f->v2.C_SignInit(s1, &m, kpriv));
	RV(CKR_OK, f->v2.C_SignUpdate(s1, (CK_BYTE_PTR)msg, 10));
	RV(CKR_OK, f->v2.C_SignUpdate(s1, (CK_BYTE_PTR)msg + 10, sizeof msg - 10));
	n = sizeof sig2;
	RV(CKR_OK, f->v2.C_SignFinal(s1, sig2, &n));
	CHECK(n == 64 && memcmp(sig2, want, 64) == 0);
	RV(CKR_OK, f->v2.C_VerifyInit(s1, &m, kpub));
	RV(CKR_OK, f->v2.C_VerifyUpdate(s1, (CK_BYTE_PTR)msg, 20));
	RV(CKR_OK, f->v2.C_VerifyUpdate(s1, (CK_BYTE_PTR)msg + 20, sizeof msg - 20));
	RV(CKR_OK, f->v2.C_VerifyFinal(s1, sig2, 64));

	/* 3.2: the signature first. */
	RV(CKR_OK, f->C_VerifySignatureInit(s1, &m, kpub, sig, 64));
	RV(CKR_OK, f->C_VerifySignature(s1, (CK_BYTE_PTR)msg, sizeof msg));
	RV(CKR_OPERATION_NOT_INITIALIZED, f->C_VerifySignature(s1, (CK_BYTE_PTR)msg, sizeof msg));
	RV(CKR_OK, f->C_VerifySignatureInit(s1, &m, kpub, sig, 64));
	RV(CKR_OK, f->C_VerifySignatureUpdate(s1, (CK_BYTE_PTR)msg, 7));
	RV(CKR_OK, f->C_VerifySignatureUpdate(s1, (CK_BYTE_PTR)msg + 7, sizeof msg - 7));
	RV(CKR_OK, f->C_VerifySignatureFinal(s1));
	RV(CKR_OK, f->C_VerifySignatureInit(s1, &m, kpub, want_bare, 64));
	RV(CKR_SIGNATURE_INVALID, f->C_VerifySignature(s1, (CK_BYTE_PTR)msg, sizeof msg));
	RV(CKR_OK, f->C_VerifySignatureInit(s1, &m, kpub, sig, 63));
	RV(CKR_SIGNATURE_LEN_RANGE, f->C_VerifySignature(s1, (CK_BYTE_PTR)msg, sizeof msg));
	RV(CKR_OK, f->C_VerifySignatureInit(s1, &m, kpub, sig, 64));
	RV(CKR_OK, f->C_VerifySignatureUpdate(s1, (CK_BYTE_PTR)msg, 7));
	RV(CKR_SIGNATURE_INVALID, f->C_VerifySignatureFinal(s1)); /* only part of the data */

	/* A generated pair signs and verifies too. */
	RV(CKR_OK, f->v2.C_GenerateKeyPair(s1, &gen, tt, 1, tt, 1, &gpub, &gpriv));
	RV(CKR_OK, f->v2.C_SignInit(s1, &m, gpriv));
	n = sizeof sig2;
	RV(CKR_OK, f->v2.C_Sign(s1, (CK_BYTE_PTR)msg, sizeof msg, sig2, &n));
	CHECK(memcmp(sig2, want, 64) != 0);
	RV(CKR_OK, f->v2.C_VerifyInit(s1, &m, gpub));
	RV(CKR_OK, f->v2.C_Verify(s1, (CK_BYTE_PTR)msg, sizeof msg, sig2, 64));
	RV(CKR_OK, f->C_VerifySignatureInit(s1, &m, gpub, sig2, 64));
	RV(CKR_OK, f->C_VerifySignature(s1, (CK_BYTE_PTR)msg, sizeof msg));
	RV(CKR_OK, f->C_VerifySignatureInit(s1, &m, kpub, sig2, 64));
	RV(CKR_SIGNATURE_INVALID, f->C_VerifySignature(s1, (CK_BYTE_PTR)msg, sizeof msg));
}

static void check_message_sign(void)
{
	CK_MECHANISM m = { CKM_ML_DSA, NULL, 0 };
	uint8_t want[64], want_bare[64], sig[64];
	CK_ULONG n;
	CK_FLAGS vf;

	toy_sig(known_priv, ctx_text, sizeof ctx_text - 1, msg, sizeof msg, want);
	toy_sig(known_priv, NULL, 0, msg, sizeof msg, want_bare);

	RV(CKR_OPERATION_NOT_INITIALIZED, f->C_SignMessageBegin(s1, NULL, 0));
	RV(CKR_OK, f->C_MessageSignInit(s1, &m, kpriv));
	RV(CKR_OK, f->C_SignMessage(s1, &ctx_param, sizeof ctx_param, (CK_BYTE_PTR)msg, sizeof msg, NULL, &n));
	CHECK(n == 64);
	n = sizeof sig;
	RV(CKR_OK, f->C_SignMessage(s1, &ctx_param, sizeof ctx_param, (CK_BYTE_PTR)msg, sizeof msg, sig, &n));
	CHECK(n == 64 && memcmp(sig, want, 64) == 0);
	RV(CKR_OK, f->C_GetSessionValidationFlags(s1, CKS_LAST_VALIDATION_OK, &vf));
	CHECK(vf == 0x1);
	n = sizeof sig;
	RV(CKR_OK, f->C_SignMessage(s1, NULL, 0, (CK_BYTE_PTR)msg, sizeof msg, sig, &n));
	CHECK(memcmp(sig, want_bare, 64) == 0);
	RV(CKR_MECHANISM_PARAM_INVALID,
	   f->C_SignMessage(s1, &ctx_param, sizeof ctx_param + 1, (CK_BYTE_PTR)msg, sizeof msg, sig, &n));

	/* Begin/Next: a NULL pulSignatureLen is "not the last part". */
	RV(CKR_OK, f->C_SignMessageBegin(s1, &ctx_param, sizeof ctx_param));
	RV(CKR_OPERATION_ACTIVE, f->C_SignMessage(s1, NULL, 0, (CK_BYTE_PTR)msg, sizeof msg, sig, &n));
	RV(CKR_OK, f->C_SignMessageNext(s1, NULL, 0, (CK_BYTE_PTR)msg, 30, NULL, NULL));
	n = 0;
	RV(CKR_OK, f->C_SignMessageNext(s1, NULL, 0, (CK_BYTE_PTR)msg + 30, sizeof msg - 30, NULL, &n));
	CHECK(n == 64);
	n = 3;
	RV(CKR_BUFFER_TOO_SMALL, f->C_SignMessageNext(s1, NULL, 0, (CK_BYTE_PTR)msg + 30, sizeof msg - 30, sig, &n));
	n = sizeof sig;
	RV(CKR_OK, f->C_SignMessageNext(s1, NULL, 0, (CK_BYTE_PTR)msg + 30, sizeof msg - 30, sig, &n));
	CHECK(n == 64 && memcmp(sig, want, 64) == 0);
	RV(CKR_OPERATION_NOT_INITIALIZED, f->C_SignMessageNext(s1, NULL, 0, (CK_BYTE_PTR)msg, 1, NULL, NULL));
	RV(CKR_OK, f->C_MessageSignFinal(s1));
	RV(CKR_OPERATION_NOT_INITIALIZED, f->C_SignMessage(s1, NULL, 0, (CK_BYTE_PTR)msg, sizeof msg, sig, &n));

	RV(CKR_OK, f->C_MessageVerifyInit(s1, &m, kpub));
	RV(CKR_OK, f->C_VerifyMessage(s1, &ctx_param, sizeof ctx_param, (CK_BYTE_PTR)msg, sizeof msg, want, 64));
	RV(CKR_SIGNATURE_INVALID, f->C_VerifyMessage(s1, NULL, 0, (CK_BYTE_PTR)msg, sizeof msg, want, 64));
	RV(CKR_OK, f->C_VerifyMessage(s1, NULL, 0, (CK_BYTE_PTR)msg, sizeof msg, want_bare, 64));
	RV(CKR_SIGNATURE_LEN_RANGE, f->C_VerifyMessage(s1, NULL, 0, (CK_BYTE_PTR)msg, sizeof msg, want_bare, 65));
	RV(CKR_OK, f->C_VerifyMessageBegin(s1, &ctx_param, sizeof ctx_param));
	RV(CKR_OK, f->C_VerifyMessageNext(s1, NULL, 0, (CK_BYTE_PTR)msg, 11, NULL, 0));
	RV(CKR_OK, f->C_VerifyMessageNext(s1, NULL, 0, (CK_BYTE_PTR)msg + 11, sizeof msg - 11, want, 64));
	RV(CKR_OK, f->C_MessageVerifyFinal(s1));
}

/* ------------------------------------------------------------------ */
/* Message encryption with CKM_AES_GCM (toy AEAD), module-made IVs.   */

static void check_gcm(void)
{
	CK_MECHANISM m = { CKM_AES_GCM, NULL, 0 };
	CK_OBJECT_HANDLE k = gen_secret(s1, CKM_AES_KEY_GEN, 32);
	uint8_t key[64], iv[12], iv1[12], tag[16], ct[sizeof msg], pt[sizeof msg], want_ct[sizeof msg], want_tag[16];
	static const uint8_t prefix[4] = { 0xa1, 0xb2, 0xc3, 0xd4 };
	static const char aad[] = "header";
	CK_GCM_MESSAGE_PARAMS p = { iv, sizeof iv, 32, CKG_GENERATE_COUNTER, tag, 128 };
	CK_ULONG key_n = value(s1, k, key, sizeof key), n;

	CHECK(key_n == 32);
	RV(CKR_OK, f->C_MessageEncryptInit(s1, &m, k));

	/* A length query makes no IV. */
	memset(iv, 0, sizeof iv);
	memcpy(iv, prefix, 4);
	RV(CKR_OK, f->C_EncryptMessage(s1, &p, sizeof p, (CK_BYTE_PTR)aad, 6, (CK_BYTE_PTR)msg, sizeof msg, NULL, &n));
	CHECK(n == sizeof msg);
	CHECK(memcmp(iv, prefix, 4) == 0 && iv[11] == 0);
	RV(CKR_MECHANISM_PARAM_INVALID,
	   f->C_EncryptMessage(s1, &p, sizeof p - 1, (CK_BYTE_PTR)aad, 6, (CK_BYTE_PTR)msg, sizeof msg, ct, &n));

	/* The module writes the IV: the caller's 32 fixed bits, then its counter. */
	n = sizeof ct;
	RV(CKR_OK, f->C_EncryptMessage(s1, &p, sizeof p, (CK_BYTE_PTR)aad, 6, (CK_BYTE_PTR)msg, sizeof msg, ct, &n));
	CHECK(n == sizeof msg);
	CHECK(memcmp(iv, prefix, 4) == 0);
	CHECK(memcmp(iv + 4, "\0\0\0\0\0\0\0\0", 8) != 0);
	toy_seal(key, key_n, iv, sizeof iv, aad, 6, msg, sizeof msg, want_ct, want_tag, 16);
	CHECK(memcmp(ct, want_ct, sizeof msg) == 0 && memcmp(tag, want_tag, 16) == 0);
	memcpy(iv1, iv, sizeof iv);

	/* The next message gets the next IV. */
	memset(iv + 4, 0, 8);
	n = sizeof ct;
	RV(CKR_OK, f->C_EncryptMessage(s1, &p, sizeof p, (CK_BYTE_PTR)aad, 6, (CK_BYTE_PTR)msg, sizeof msg, ct, &n));
	CHECK(memcmp(iv, prefix, 4) == 0 && memcmp(iv, iv1, sizeof iv) != 0);

	/* CKG_GENERATE_RANDOM, and a 96-bit tag. */
	p.ivGenerator = CKG_GENERATE_RANDOM;
	p.ulTagBits = 96;
	memset(iv + 4, 0, 8);
	memset(tag, 0xee, sizeof tag);
	n = sizeof ct;
	RV(CKR_OK, f->C_EncryptMessage(s1, &p, sizeof p, NULL, 0, (CK_BYTE_PTR)msg, sizeof msg, ct, &n));
	CHECK(memcmp(iv, prefix, 4) == 0 && memcmp(iv + 4, "\0\0\0\0\0\0\0\0", 8) != 0);
	toy_seal(key, key_n, iv, sizeof iv, NULL, 0, msg, sizeof msg, want_ct, want_tag, 12);
	CHECK(memcmp(ct, want_ct, sizeof msg) == 0 && memcmp(tag, want_tag, 12) == 0 && tag[12] == 0xee);

	/* Decryption with the IV and tag that came back. */
	RV(CKR_OK, f->C_MessageDecryptInit(s1, &m, k));
	p.ivGenerator = CKG_NO_GENERATE;
	n = sizeof pt;
	RV(CKR_OK, f->C_DecryptMessage(s1, &p, sizeof p, NULL, 0, ct, sizeof msg, pt, &n));
	CHECK(n == sizeof msg && memcmp(pt, msg, sizeof msg) == 0);
	tag[0] ^= 1;
	RV(CKR_ENCRYPTED_DATA_INVALID, f->C_DecryptMessage(s1, &p, sizeof p, NULL, 0, ct, sizeof msg, pt, &n));
	tag[0] ^= 1;

	/* Begin/Next: the IV is made at Begin, the tag written by the last Next. */
	p.ivGenerator = CKG_GENERATE_COUNTER;
	p.ulTagBits = 128;
	memset(iv + 4, 0, 8);
	RV(CKR_OK, f->C_EncryptMessageBegin(s1, &p, sizeof p, (CK_BYTE_PTR)aad, 6));
	CHECK(memcmp(iv, prefix, 4) == 0 && memcmp(iv + 4, "\0\0\0\0\0\0\0\0", 8) != 0);
	RV(CKR_OPERATION_ACTIVE,
	   f->C_EncryptMessage(s1, &p, sizeof p, (CK_BYTE_PTR)aad, 6, (CK_BYTE_PTR)msg, sizeof msg, ct, &n));
	n = sizeof ct;
	RV(CKR_OK, f->C_EncryptMessageNext(s1, NULL, 0, (CK_BYTE_PTR)msg, 40, ct, &n, 0));
	CHECK(n == 40);
	n = 0;
	RV(CKR_OK, f->C_EncryptMessageNext(s1, &p, sizeof p, (CK_BYTE_PTR)msg + 40, sizeof msg - 40, NULL, &n,
					   CKF_END_OF_MESSAGE));
	CHECK(n == sizeof msg - 40);
	n = sizeof ct - 40;
	RV(CKR_OK, f->C_EncryptMessageNext(s1, &p, sizeof p, (CK_BYTE_PTR)msg + 40, sizeof msg - 40, ct + 40, &n,
					   CKF_END_OF_MESSAGE));
	CHECK(n == sizeof msg - 40);
	toy_seal(key, key_n, iv, sizeof iv, aad, 6, msg, sizeof msg, want_ct, want_tag, 16);
	CHECK(memcmp(ct, want_ct, sizeof msg) == 0 && memcmp(tag, want_tag, 16) == 0);
	RV(CKR_OPERATION_NOT_INITIALIZED, f->C_EncryptMessageNext(s1, NULL, 0, (CK_BYTE_PTR)msg, 1, ct, &n, 0));

	RV(CKR_OK, f->C_DecryptMessageBegin(s1, &p, sizeof p, (CK_BYTE_PTR)aad, 6));
	n = sizeof pt;
	RV(CKR_OK, f->C_DecryptMessageNext(s1, NULL, 0, ct, 17, pt, &n, 0));
	n = sizeof pt - 17;
	RV(CKR_OK, f->C_DecryptMessageNext(s1, &p, sizeof p, ct + 17, sizeof msg - 17, pt + 17, &n, CKF_END_OF_MESSAGE));
	CHECK(memcmp(pt, msg, sizeof msg) == 0);

	RV(CKR_OK, f->C_MessageEncryptFinal(s1));
	RV(CKR_OK, f->C_MessageDecryptFinal(s1));
	RV(CKR_OPERATION_NOT_INITIALIZED,
	   f->C_EncryptMessage(s1, &p, sizeof p, NULL, 0, (CK_BYTE_PTR)msg, sizeof msg, ct, &n));
}

/* ------------------------------------------------------------------ */
/* Authenticated key wrapping.                                        */

static void check_wrap(void)
{
	uint8_t wiv[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	CK_MECHANISM m = { CKM_AES_GCM, wiv, sizeof wiv }, bad = { CKM_AES_GCM, wiv, 11 };
	CK_OBJECT_HANDLE w = gen_secret(s1, CKM_AES_KEY_GEN, 32), k = gen_secret(s1, CKM_GENERIC_SECRET_KEY_GEN, 32);
	CK_OBJECT_HANDLE u;
	static const char aad[] = "wrap aad";
	uint8_t wv[64], kv[64], uv[64], wrapped[64], want[64];
	CK_ULONG n;
	CK_ATTRIBUTE t[] = { ATTR(CKA_CLASS, c_secret), ATTR(CKA_KEY_TYPE, k_generic), ATTR(CKA_TOKEN, no) };

	CHECK(value(s1, w, wv, sizeof wv) == 32);
	CHECK(value(s1, k, kv, sizeof kv) == 32);
	RV(CKR_OK, f->C_WrapKeyAuthenticated(s1, &m, w, k, (CK_BYTE_PTR)aad, 8, NULL, &n));
	CHECK(n == 48);
	n = 47;
	RV(CKR_BUFFER_TOO_SMALL, f->C_WrapKeyAuthenticated(s1, &m, w, k, (CK_BYTE_PTR)aad, 8, wrapped, &n));
	CHECK(n == 48);
	RV(CKR_MECHANISM_PARAM_INVALID, f->C_WrapKeyAuthenticated(s1, &bad, w, k, (CK_BYTE_PTR)aad, 8, wrapped, &n));
	n = sizeof wrapped;
	RV(CKR_OK, f->C_WrapKeyAuthenticated(s1, &m, w, k, (CK_BYTE_PTR)aad, 8, wrapped, &n));
	CHECK(n == 48);
	toy_seal(wv, 32, wiv, 12, aad, 8, kv, 32, want, want + 32, 16);
	CHECK(memcmp(wrapped, want, 48) == 0);

	RV(CKR_TEMPLATE_INCOMPLETE, f->C_UnwrapKeyAuthenticated(s1, &m, w, wrapped, 48, t + 1, 2, (CK_BYTE_PTR)aad, 8, &u));
	RV(CKR_WRAPPED_KEY_INVALID, f->C_UnwrapKeyAuthenticated(s1, &m, w, wrapped, 48, t, 3, (CK_BYTE_PTR)aad, 7, &u));
	wrapped[40] ^= 1;
	RV(CKR_WRAPPED_KEY_INVALID, f->C_UnwrapKeyAuthenticated(s1, &m, w, wrapped, 48, t, 3, (CK_BYTE_PTR)aad, 8, &u));
	wrapped[40] ^= 1;
	RV(CKR_OK, f->C_UnwrapKeyAuthenticated(s1, &m, w, wrapped, 48, t, 3, (CK_BYTE_PTR)aad, 8, &u));
	CHECK(u != k && value(s1, u, uv, sizeof uv) == 32 && memcmp(uv, kv, 32) == 0);
}

/* ------------------------------------------------------------------ */
/* C_SessionCancel.                                                   */

static void check_cancel(void)
{
	CK_MECHANISM dsa = { CKM_ML_DSA, NULL, 0 }, gcm = { CKM_AES_GCM, NULL, 0 };
	CK_OBJECT_HANDLE k = gen_secret(s1, CKM_AES_KEY_GEN, 16), h[2];
	uint8_t sig[64], iv[12] = { 0 }, tag[16], ct[4];
	CK_GCM_MESSAGE_PARAMS p = { iv, 12, 0, CKG_NO_GENERATE, tag, 128 };
	CK_ULONG n = sizeof sig;

	RV(CKR_OK, f->v2.C_SignInit(s1, &dsa, kpriv));
	RV(CKR_OK, f->C_SessionCancel(s1, CKF_SIGN));
	RV(CKR_OPERATION_NOT_INITIALIZED, f->v2.C_Sign(s1, (CK_BYTE_PTR)msg, sizeof msg, sig, &n));
	RV(CKR_OK, f->v2.C_SignInit(s1, &dsa, kpriv)); /* and a new one can start */
	RV(CKR_OK, f->v2.C_VerifyInit(s1, &dsa, kpub));
	RV(CKR_OK, f->C_SessionCancel(s1, CKF_VERIFY));
	RV(CKR_OPERATION_NOT_INITIALIZED, f->v2.C_Verify(s1, (CK_BYTE_PTR)msg, sizeof msg, sig, 64));
	RV(CKR_OK, f->v2.C_Sign(s1, (CK_BYTE_PTR)msg, sizeof msg, sig, &n)); /* the sign was left alone */

	RV(CKR_OK, f->C_MessageEncryptInit(s1, &gcm, k));
	RV(CKR_OK, f->C_MessageSignInit(s1, &dsa, kpriv));
	RV(CKR_OK, f->C_SessionCancel(s1, CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_SIGN));
	n = sizeof ct;
	RV(CKR_OPERATION_NOT_INITIALIZED, f->C_EncryptMessage(s1, &p, sizeof p, NULL, 0, ct, 4, ct, &n));
	RV(CKR_OPERATION_NOT_INITIALIZED, f->C_MessageSignFinal(s1));
	RV(CKR_OK, f->C_MessageEncryptInit(s1, &gcm, k));
	RV(CKR_OK, f->C_MessageEncryptFinal(s1));

	RV(CKR_OK, f->v2.C_FindObjectsInit(s1, NULL, 0));
	RV(CKR_OK, f->C_SessionCancel(s1, CKF_FIND_OBJECTS));
	RV(CKR_OPERATION_NOT_INITIALIZED, f->v2.C_FindObjects(s1, h, 2, &n));
}

/* ------------------------------------------------------------------ */
/* Asynchronous sessions.                                             */

/* poll calls C_AsyncComplete until it stops answering CKR_PENDING and
 * returns how many times it did. */
static int poll(CK_SESSION_HANDLE s, const char *fn, CK_ASYNC_DATA *r, CK_RV want)
{
	int pending = 0;
	CK_RV rv;

	while ((rv = f->C_AsyncComplete(s, UTF8(fn), r)) == CKR_PENDING && pending < 100)
		pending++;
	RV(want, rv);
	return pending;
}

static void check_async(void)
{
	uint8_t ref[64], buf[64], buf2[64];
	CK_ULONG n = sizeof ref, id = 0;
	CK_ASYNC_DATA r, untouched;
	CK_FLAGS vf;
	CK_MECHANISM aesgen = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_ULONG len16 = 16;
	CK_ATTRIBUTE t[] = { ATTR(CKA_VALUE_LEN, len16), ATTR(CKA_TOKEN, no) };

	/* The reference: the same signature made synchronously. */
	RV(CKR_OK, sign_once(s1, ref, &n));

	RV(CKR_ARGUMENTS_BAD, f->C_AsyncComplete(sa, UTF8("C_Bogus"), &r));
	RV(CKR_OPERATION_NOT_INITIALIZED, f->C_AsyncComplete(sa, UTF8("C_Sign"), &r));
	RV(CKR_OPERATION_NOT_INITIALIZED, f->C_AsyncGetID(sa, UTF8("C_Sign"), &id));

	/* C_Sign pends; two polls answer CKR_PENDING and leave pResult be;
	 * the third delivers into the buffer given to C_Sign. */
	memset(buf, 0xee, sizeof buf);
	n = sizeof buf;
	RV(CKR_PENDING, sign_once(sa, buf, &n));
	memset(&r, 0x5a, sizeof r);
	untouched = r;
	RV(CKR_PENDING, f->C_AsyncComplete(sa, UTF8("C_Sign"), &r));
	CHECK(memcmp(&r, &untouched, sizeof r) == 0);
	RV(CKR_PENDING, f->C_AsyncComplete(sa, UTF8("C_Sign"), &r));
	CHECK(memcmp(&r, &untouched, sizeof r) == 0);
	RV(CKR_OK, f->C_AsyncComplete(sa, UTF8("C_Sign"), &r));
	CHECK(r.pValue == buf && r.ulValue == 64);
	CHECK(memcmp(buf, ref, 64) == 0);
	RV(CKR_OPERATION_NOT_INITIALIZED, f->C_AsyncComplete(sa, UTF8("C_Sign"), &r));
	RV(CKR_OK, f->C_GetSessionValidationFlags(sa, CKS_LAST_VALIDATION_OK, &vf));
	CHECK(vf == 0x1);

	/* A short buffer is answered at once, never CKR_PENDING. */
	n = 10;
	RV(CKR_BUFFER_TOO_SMALL, sign_once(sa, buf, &n));
	CHECK(n == 64);
	RV(CKR_OK, f->v2.C_Sign(sa, (CK_BYTE_PTR)msg, sizeof msg, NULL, &n));
	memset(buf, 0xee, sizeof buf);
	n = sizeof buf;
	RV(CKR_PENDING, f->v2.C_Sign(sa, (CK_BYTE_PTR)msg, sizeof msg, buf, &n));
	CHECK(poll(sa, "C_Sign", NULL, CKR_OK) == 2);
	CHECK(memcmp(buf, ref, 64) == 0);

	/* C_AsyncGetID, then C_AsyncJoin from another session with another
	 * buffer: the result goes there, the first buffer is left alone. */
	memset(buf, 0xee, sizeof buf);
	memset(buf2, 0, sizeof buf2);
	n = sizeof buf;
	RV(CKR_PENDING, sign_once(sa, buf, &n));
	RV(CKR_OK, f->C_AsyncGetID(sa, UTF8("C_Sign"), &id));
	RV(CKR_OPERATION_NOT_INITIALIZED, f->C_AsyncComplete(sa, UTF8("C_Sign"), &r));
	RV(CKR_SAVED_STATE_INVALID, f->C_AsyncJoin(sb, UTF8("C_Sign"), id + 7777, buf2, sizeof buf2));
	RV(CKR_BUFFER_TOO_SMALL, f->C_AsyncJoin(sb, UTF8("C_Sign"), id, buf2, 10));
	RV(CKR_OK, f->C_AsyncJoin(sb, UTF8("C_Sign"), id, buf2, sizeof buf2));
	CHECK(poll(sb, "C_Sign", &r, CKR_OK) == 2);
	CHECK(r.pValue == buf2 && r.ulValue == 64);
	CHECK(memcmp(buf2, ref, 64) == 0);
	for (int i = 0; i < 64; i++)
		CHECK(buf[i] == 0xee);

	/* C_GenerateKey pends too; the key is hObject when it completes. */
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ATTRIBUTE aes16[] = { ATTR(CKA_KEY_TYPE, k_aes), ATTR(CKA_VALUE_LEN, len16) };
	CK_ULONG before = count_objects(sa, aes16, 2);
	RV(CKR_PENDING, f->v2.C_GenerateKey(sa, &aesgen, t, 2, &h));
	CHECK(h == CK_INVALID_HANDLE);
	CHECK(count_objects(sa, aes16, 2) == before); /* not there yet */
	memset(&r, 0, sizeof r);
	CHECK(poll(sa, "C_GenerateKey", &r, CKR_OK) == 2);
	CHECK(r.hObject != CK_INVALID_HANDLE && r.pValue == NULL && r.ulValue == 0);
	CHECK(count_objects(sa, aes16, 2) == before + 1);
	CK_ULONG vlen = 0;
	CK_OBJECT_CLASS cls = 0;
	CK_ATTRIBUTE q[] = { ATTR(CKA_VALUE_LEN, vlen), ATTR(CKA_CLASS, cls) };
	RV(CKR_OK, f->v2.C_GetAttributeValue(sa, r.hObject, q, 2));
	CHECK(vlen == 16 && cls == CKO_SECRET_KEY);

	/* C_SessionCancel ends a pending C_Sign. */
	n = sizeof buf;
	RV(CKR_PENDING, sign_once(sa, buf, &n));
	RV(CKR_OK, f->C_SessionCancel(sa, CKF_SIGN));
	RV(CKR_OPERATION_NOT_INITIALIZED, f->C_AsyncComplete(sa, UTF8("C_Sign"), &r));
}

/* ------------------------------------------------------------------ */

static void check_rest(void)
{
	CK_MECHANISM sha = { CKM_SHA256, NULL, 0 };
	uint8_t rnd[8];
	CK_SESSION_INFO si;

	RV(CKR_FUNCTION_NOT_SUPPORTED, f->v2.C_DigestInit(s1, &sha));
	RV(CKR_FUNCTION_NOT_SUPPORTED, f->v2.C_GenerateRandom(s1, rnd, sizeof rnd));
	RV(CKR_OK, f->v2.C_CloseSession(sb));
	RV(CKR_SESSION_HANDLE_INVALID, f->v2.C_GetSessionInfo(sb, &si));
	RV(CKR_OK, f->v2.C_CloseAllSessions(slot));
	RV(CKR_SESSION_HANDLE_INVALID, f->v2.C_GetSessionInfo(s1, &si));
	RV(CKR_OK, f->v2.C_Finalize(NULL));
	RV(CKR_CRYPTOKI_NOT_INITIALIZED, f->v2.C_Finalize(NULL));
}

/* The 3.0 interface, asked for by name and version, used through its own
 * list: a 3.0 application's view (C_LoginUser, message-based encryption
 * with a generated IV, C_SessionCancel). */
static void check_v30(CK_RV (*get)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS))
{
	CK_VERSION v30 = { 3, 0 };
	CK_INTERFACE_PTR in = NULL;
	CK_SESSION_HANDLE s;
	CK_MECHANISM m = { CKM_AES_GCM, NULL, 0 };
	uint8_t key[32], iv[12] = { 0x30 }, tag[16], ct[sizeof msg], pt[sizeof msg], want_ct[sizeof msg], want_tag[16];
	CK_GCM_MESSAGE_PARAMS p = { iv, sizeof iv, 8, CKG_GENERATE_COUNTER, tag, 128 };
	CK_ULONG n;

	RV(CKR_OK, get(UTF8("PKCS 11"), &v30, &in, 0));
	const struct fl32 *f30 = in->pFunctionList; /* its 3.0 members only */
	CHECK(f30->v2.version.major == 3 && f30->v2.version.minor == 0);
	RV(CKR_OK, f30->v2.C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
	f30->v2.C_Logout(s); /* the token's login, of the checks before */
	RV(CKR_PIN_INCORRECT, f30->C_LoginUser(s, CKU_USER, UTF8("1234"), 4, UTF8("bob"), 3));
	RV(CKR_OK, f30->C_LoginUser(s, CKU_USER, UTF8("1234"), 4, UTF8("alice"), 5));
	CK_OBJECT_HANDLE k = gen_secret(s, CKM_AES_KEY_GEN, 32);
	CHECK(value(s, k, key, sizeof key) == 32);
	RV(CKR_OK, f30->C_MessageEncryptInit(s, &m, k));
	n = sizeof ct;
	RV(CKR_OK, f30->C_EncryptMessage(s, &p, sizeof p, NULL, 0, (CK_BYTE_PTR)msg, sizeof msg, ct, &n));
	CHECK(n == sizeof msg && iv[0] == 0x30 && memcmp(iv + 1, "\0\0\0\0\0\0\0\0\0\0\0", 11) != 0);
	toy_seal(key, sizeof key, iv, sizeof iv, NULL, 0, msg, sizeof msg, want_ct, want_tag, 16);
	CHECK(memcmp(ct, want_ct, sizeof msg) == 0 && memcmp(tag, want_tag, 16) == 0);
	RV(CKR_OK, f30->C_MessageEncryptFinal(s));
	RV(CKR_OK, f30->C_MessageDecryptInit(s, &m, k));
	p.ivGenerator = CKG_NO_GENERATE;
	n = sizeof pt;
	RV(CKR_OK, f30->C_DecryptMessage(s, &p, sizeof p, NULL, 0, ct, sizeof ct, pt, &n));
	CHECK(n == sizeof msg && memcmp(pt, msg, sizeof msg) == 0);
	RV(CKR_OK, f30->C_SessionCancel(s, CKF_MESSAGE_DECRYPT));
	RV(CKR_OPERATION_NOT_INITIALIZED, f30->C_DecryptMessage(s, &p, sizeof p, NULL, 0, ct, sizeof ct, pt, &n));
	RV(CKR_OK, f30->v2.C_Logout(s));
	RV(CKR_OK, f30->v2.C_CloseSession(s));
	RV(CKR_OK, f->v2.C_Login(s1, CKU_USER, UTF8("1234"), 4)); /* as the checks after expect */
}

int main(int argc, char **argv)
{
	void *lib;
	CK_RV (*get)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS);
	uint8_t abc[32];

	if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "--proxy") != 0)) {
		fprintf(stderr, "usage: %s MODULE [--proxy]\n", argv[0]);
		return 2;
	}
	proxied = argc == 3;

	/* The expected values rest on SHA-256: check it first ("abc", FIPS 180-2). */
	sha256(abc, "abc", 3, NULL, 0, NULL, 0);
	CHECK(memcmp(abc, "\xba\x78\x16\xbf\x8f\x01\xcf\xea\x41\x41\x40\xde\x5d\xae\x22\x23"
			  "\xb0\x03\x61\xa3\x96\x17\x7a\x9c\xb4\x10\xff\x61\xf2\x00\x15\xad", 32) == 0);

	if (!(lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL))) {
		printf("FAIL dlopen: %s\n", dlerror());
		return 1;
	}
	*(void **)&get = dlsym(lib, "C_GetInterface");
	if (!get) {
		printf("FAIL no C_GetInterface in %s\n", argv[1]);
		return 1;
	}
	check_interfaces(get);
	check_general();
	check_objects();
	check_kem();
	make_known_pair();
	check_dsa();
	check_message_sign();
	check_gcm();
	check_wrap();
	check_cancel();
	check_async();
	check_v30(get);
	check_rest();
	printf("ok %d checks\n", n_checks);
	return 0;
}
