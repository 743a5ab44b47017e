/*
 * mod32: a small PKCS#11 3.2 module, the reference 3.2 vendor of the
 * proxy's differential harness (the same call sequence run against this
 * module loaded directly and through libp11isolate.so, outputs compared).
 *
 * Its cryptography is toy cryptography built from SHA-256, but every
 * result is computed and checkable, and every function checks its
 * arguments the way the specification asks. Everything is deterministic:
 * the "random" bytes come from SHA-256 of a constant seed and a counter,
 * and C_Initialize resets all state, so that what the module answers is a
 * function of the calls made since C_Initialize alone, the same in every
 * process. See README.md for the toy algorithms and the decisions made
 * where the specification is silent.
 *
 * Build (from the repository's top directory):
 *   gcc -std=gnu11 -O2 -g -fPIC -shared -Wall -Wextra -Werror \
 *       -I/usr/include/p11-kit-1 -Icshim -o build/tests/libmod32.so \
 *       tests/mod32/mod32.c cshim/sha256.c
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pkcs11_3x.h"
#include "shim.h" /* p11i_sha256_init/update/final (cshim/sha256.c) */

#ifndef CKK_ML_DSA
#define CKK_ML_DSA 0x0000004aUL
#endif
#ifndef CKA_PARAMETER_SET
#define CKA_PARAMETER_SET 0x0000061dUL
#endif
/* The only CK_SESSION_VALIDATION_FLAGS_TYPE of 3.2 (pkcs11t.h: 1UL). */
#ifndef CKS_LAST_VALIDATION_OK
#define CKS_LAST_VALIDATION_OK 0x00000001UL
#endif
/* The validation flag this module reports after a successful signature. */
#define MOD32_VALIDATED 0x00000001UL

enum {
	PRIV_LEN = 64, /* toy ML-KEM / ML-DSA private value */
	PUB_LEN = 32, /* public value: SHA-256 of the private one */
	KEM_CT_LEN = 48, /* encapsulation ciphertext */
	KEM_SS_LEN = 32, /* shared secret: SHA-256(public || ciphertext) */
	SIG_LEN = 64, /* signature: h || SHA-256(h) */
	MAX_KEY = 64, /* longest secret key value */
	MAX_CTX = 255, /* ML-DSA context strings are at most 255 bytes */
	MAX_IV = 64,
	WRAP_IV_LEN = 12, /* C_WrapKeyAuthenticated's mechanism parameter */
	WRAP_TAG_LEN = 16,
	MAX_SESSIONS = 64,
	MAX_PENDING = 32,
	ASYNC_POLLS = 2, /* C_AsyncComplete answers CKR_PENDING this often */
	SLOT_ID = 1,
};

/* ------------------------------------------------------------------ */
/* The function lists: the functions of each version in OASIS order.  */

#define FUNCS_2_40(X)                                                                                 \
	X(Initialize) X(Finalize) X(GetInfo) X(GetFunctionList) X(GetSlotList) X(GetSlotInfo)          \
	X(GetTokenInfo) X(GetMechanismList) X(GetMechanismInfo) X(InitToken) X(InitPIN) X(SetPIN)      \
	X(OpenSession) X(CloseSession) X(CloseAllSessions) X(GetSessionInfo) X(GetOperationState)     \
	X(SetOperationState) X(Login) X(Logout) X(CreateObject) X(CopyObject) X(DestroyObject)        \
	X(GetObjectSize) X(GetAttributeValue) X(SetAttributeValue) X(FindObjectsInit) X(FindObjects)   \
	X(FindObjectsFinal) X(EncryptInit) X(Encrypt) X(EncryptUpdate) X(EncryptFinal) X(DecryptInit) \
	X(Decrypt) X(DecryptUpdate) X(DecryptFinal) X(DigestInit) X(Digest) X(DigestUpdate)            \
	X(DigestKey) X(DigestFinal) X(SignInit) X(Sign) X(SignUpdate) X(SignFinal) X(SignRecoverInit) \
	X(SignRecover) X(VerifyInit) X(Verify) X(VerifyUpdate) X(VerifyFinal) X(VerifyRecoverInit)     \
	X(VerifyRecover) X(DigestEncryptUpdate) X(DecryptDigestUpdate) X(SignEncryptUpdate)            \
	X(DecryptVerifyUpdate) X(GenerateKey) X(GenerateKeyPair) X(WrapKey) X(UnwrapKey) X(DeriveKey)  \
	X(SeedRandom) X(GenerateRandom) X(GetFunctionStatus) X(CancelFunction) X(WaitForSlotEvent)

#define FUNCS_3_0(X)                                                                                  \
	X(GetInterfaceList) X(GetInterface) X(LoginUser) X(SessionCancel) X(MessageEncryptInit)        \
	X(EncryptMessage) X(EncryptMessageBegin) X(EncryptMessageNext) X(MessageEncryptFinal)         \
	X(MessageDecryptInit) X(DecryptMessage) X(DecryptMessageBegin) X(DecryptMessageNext)          \
	X(MessageDecryptFinal) X(MessageSignInit) X(SignMessage) X(SignMessageBegin)                  \
	X(SignMessageNext) X(MessageSignFinal) X(MessageVerifyInit) X(VerifyMessage)                  \
	X(VerifyMessageBegin) X(VerifyMessageNext) X(MessageVerifyFinal)

#define FUNCS_3_2(X)                                                                                  \
	X(EncapsulateKey) X(DecapsulateKey) X(VerifySignatureInit) X(VerifySignature)                  \
	X(VerifySignatureUpdate) X(VerifySignatureFinal) X(GetSessionValidationFlags) X(AsyncComplete) \
	X(AsyncGetID) X(AsyncJoin) X(WrapKeyAuthenticated) X(UnwrapKeyAuthenticated)

/* The 3.x functions: <p11-kit/pkcs11.h> (2.40) declares the others and
 * their CK_C_ pointer types; these get m32_C_ pointer types of our own. */
#define DECLARE_3X(name, args)            \
	typedef CK_RV(*m32_C_##name) args; \
	CK_RV C_##name args;

DECLARE_3X(GetInterfaceList, (CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount))
DECLARE_3X(GetInterface, (CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
			  CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags))
DECLARE_3X(LoginUser, (CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
		       CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pUsername, CK_ULONG ulUsernameLen))
DECLARE_3X(SessionCancel, (CK_SESSION_HANDLE hSession, CK_FLAGS flags))
DECLARE_3X(MessageEncryptInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey))
DECLARE_3X(EncryptMessage, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
			    CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pPlaintext,
			    CK_ULONG ulPlaintextLen, CK_BYTE_PTR pCiphertext, CK_ULONG_PTR pulCiphertextLen))
DECLARE_3X(EncryptMessageBegin, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
				 CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen))
DECLARE_3X(EncryptMessageNext, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
				CK_BYTE_PTR pPlaintextPart, CK_ULONG ulPlaintextPartLen, CK_BYTE_PTR pCiphertextPart,
				CK_ULONG_PTR pulCiphertextPartLen, CK_FLAGS flags))
DECLARE_3X(MessageEncryptFinal, (CK_SESSION_HANDLE hSession))
DECLARE_3X(MessageDecryptInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey))
DECLARE_3X(DecryptMessage, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
			    CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pCiphertext,
			    CK_ULONG ulCiphertextLen, CK_BYTE_PTR pPlaintext, CK_ULONG_PTR pulPlaintextLen))
DECLARE_3X(DecryptMessageBegin, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
				 CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen))
DECLARE_3X(DecryptMessageNext, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
				CK_BYTE_PTR pCiphertextPart, CK_ULONG ulCiphertextPartLen, CK_BYTE_PTR pPlaintextPart,
				CK_ULONG_PTR pulPlaintextPartLen, CK_FLAGS flags))
DECLARE_3X(MessageDecryptFinal, (CK_SESSION_HANDLE hSession))
DECLARE_3X(MessageSignInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey))
DECLARE_3X(SignMessage, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
			 CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen))
DECLARE_3X(SignMessageBegin, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen))
DECLARE_3X(SignMessageNext, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
			     CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
			     CK_ULONG_PTR pulSignatureLen))
DECLARE_3X(MessageSignFinal, (CK_SESSION_HANDLE hSession))
DECLARE_3X(MessageVerifyInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey))
DECLARE_3X(VerifyMessage, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
			   CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen))
DECLARE_3X(VerifyMessageBegin, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen))
DECLARE_3X(VerifyMessageNext, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
			       CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
			       CK_ULONG ulSignatureLen))
DECLARE_3X(MessageVerifyFinal, (CK_SESSION_HANDLE hSession))
DECLARE_3X(EncapsulateKey, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hPublicKey,
			    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_BYTE_PTR pCiphertext,
			    CK_ULONG_PTR pulCiphertextLen, CK_OBJECT_HANDLE_PTR phKey))
DECLARE_3X(DecapsulateKey, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hPrivateKey,
			    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_BYTE_PTR pCiphertext,
			    CK_ULONG ulCiphertextLen, CK_OBJECT_HANDLE_PTR phKey))
DECLARE_3X(VerifySignatureInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey,
				 CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen))
DECLARE_3X(VerifySignature, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen))
DECLARE_3X(VerifySignatureUpdate, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen))
DECLARE_3X(VerifySignatureFinal, (CK_SESSION_HANDLE hSession))
DECLARE_3X(GetSessionValidationFlags, (CK_SESSION_HANDLE hSession, CK_SESSION_VALIDATION_FLAGS_TYPE type,
				       CK_FLAGS *pFlags))
DECLARE_3X(AsyncComplete, (CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName, CK_ASYNC_DATA_PTR pResult))
DECLARE_3X(AsyncGetID, (CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName, CK_ULONG_PTR pulID))
DECLARE_3X(AsyncJoin, (CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName, CK_ULONG ulID, CK_BYTE_PTR pData,
		       CK_ULONG ulData))
DECLARE_3X(WrapKeyAuthenticated, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
				  CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pAssociatedData,
				  CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen))
DECLARE_3X(UnwrapKeyAuthenticated, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
				    CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen,
				    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_BYTE_PTR pAssociatedData,
				    CK_ULONG ulAssociatedDataLen, CK_OBJECT_HANDLE_PTR phKey))

#define MEMBER_2(n) CK_C_##n C_##n;
#define MEMBER_3(n) m32_C_##n C_##n;
#define INIT(n) .C_##n = C_##n,

struct m32_function_list_3_0 {
	CK_VERSION version;
	FUNCS_2_40(MEMBER_2)
	FUNCS_3_0(MEMBER_3)
};

struct m32_function_list_3_2 {
	CK_VERSION version;
	FUNCS_2_40(MEMBER_2)
	FUNCS_3_0(MEMBER_3)
	FUNCS_3_2(MEMBER_3)
};

/* Our lists start as the 2.40 one does: check every member's place
 * against <p11-kit/pkcs11.h>'s CK_FUNCTION_LIST. */
#define SAME_PLACE(n)                                                                    \
	_Static_assert(offsetof(struct m32_function_list_3_2, C_##n) ==                  \
			       offsetof(CK_FUNCTION_LIST, C_##n) &&                      \
		       offsetof(struct m32_function_list_3_0, C_##n) ==                  \
			       offsetof(CK_FUNCTION_LIST, C_##n),                        \
		       "C_" #n " is out of place");
FUNCS_2_40(SAME_PLACE)
_Static_assert(offsetof(struct m32_function_list_3_2, C_GetInterfaceList) == sizeof(CK_FUNCTION_LIST),
	       "3.0 functions must follow the 2.40 ones");
_Static_assert(offsetof(struct m32_function_list_3_2, C_EncapsulateKey) == sizeof(struct m32_function_list_3_0),
	       "3.2 functions must follow the 3.0 ones");

static CK_FUNCTION_LIST list_2_40 = { .version = { 2, 40 }, FUNCS_2_40(INIT) };
static struct m32_function_list_3_0 list_3_0 = { .version = { 3, 0 }, FUNCS_2_40(INIT) FUNCS_3_0(INIT) };
static struct m32_function_list_3_2 list_3_2 = { .version = { 3, 2 },
						 FUNCS_2_40(INIT) FUNCS_3_0(INIT) FUNCS_3_2(INIT) };

/* The vendor-defined interface: a function list of our own that a proxy
 * has no way to forward and so must not offer. */
struct mod32_vendor_list {
	CK_VERSION version;
	CK_RV (*Mod32_Describe)(CK_UTF8CHAR_PTR pBuf, CK_ULONG_PTR pulLen);
};

static CK_RV mod32_describe(CK_UTF8CHAR_PTR buf, CK_ULONG_PTR len)
{
	static const char text[] = "mod32 vendor interface";

	if (!len)
		return CKR_ARGUMENTS_BAD;
	if (buf && *len < sizeof text - 1) {
		*len = sizeof text - 1;
		return CKR_BUFFER_TOO_SMALL;
	}
	if (buf)
		memcpy(buf, text, sizeof text - 1);
	*len = sizeof text - 1;
	return CKR_OK;
}

static struct mod32_vendor_list vendor_list = { { 1, 0 }, mod32_describe };

static char name_pkcs11[] = "PKCS 11";
static char name_vendor[] = "Vendor mod32";

static CK_INTERFACE interfaces[] = {
	{ (CK_UTF8CHAR_PTR)name_pkcs11, &list_3_2, CKF_INTERFACE_FORK_SAFE },
	{ (CK_UTF8CHAR_PTR)name_pkcs11, &list_3_0, 0 },
	{ (CK_UTF8CHAR_PTR)name_pkcs11, &list_2_40, 0 },
	{ (CK_UTF8CHAR_PTR)name_vendor, &vendor_list, 0 },
};
#define N_INTERFACES (sizeof interfaces / sizeof interfaces[0])

/* The names C_AsyncComplete, C_AsyncGetID and C_AsyncJoin accept. */
#define NAME(n) "C_" #n,
static const char *const function_names[] = { FUNCS_2_40(NAME) FUNCS_3_0(NAME) FUNCS_3_2(NAME) };

/* ------------------------------------------------------------------ */
/* SHA-256 helpers and the deterministic byte source.                 */

/* sha_update skips empty input, which may come with a NULL pointer
 * (p11i_sha256_update would hand that to memcpy). */
static void sha_update(struct p11i_sha256 *h, const void *p, size_t n)
{
	if (n > 0)
		p11i_sha256_update(h, p, n);
}

static void sha256_2(uint8_t out[32], const void *a, size_t an, const void *b, size_t bn)
{
	struct p11i_sha256 h;

	p11i_sha256_init(&h);
	sha_update(&h, a, an);
	sha_update(&h, b, bn);
	p11i_sha256_final(&h, out);
}

static void put_be64(uint8_t out[8], uint64_t v)
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* The same seed in every process, so direct and proxied runs agree. */
static const char seed[] = "mod32 deterministic seed";
static uint64_t det_counter; /* reset by C_Initialize */

/* det_bytes fills out with "random" bytes: SHA-256(seed || counter). */
static void det_bytes(uint8_t *out, size_t n)
{
	while (n > 0) {
		uint8_t ctr[8], block[32];
		size_t k = n < 32 ? n : 32;

		put_be64(ctr, det_counter++);
		sha256_2(block, seed, sizeof seed - 1, ctr, sizeof ctr);
		memcpy(out, block, k);
		out += k;
		n -= k;
	}
}

/* The toy AEAD of CKM_AES_GCM: keystream block i = SHA-256(key || iv ||
 * i as 4 bytes big-endian), tag = SHA-256(key || iv || aad || ciphertext)
 * cut to the tag length. Streaming, so multi-part equals single-part. */
struct aead {
	uint8_t key[MAX_KEY];
	size_t key_n;
	uint8_t iv[MAX_IV];
	size_t iv_n;
	uint64_t pos; /* bytes of keystream used */
	struct p11i_sha256 tag;
};

static void aead_start(struct aead *a, const uint8_t *key, size_t key_n, const uint8_t *iv, size_t iv_n,
		       const uint8_t *aad, size_t aad_n)
{
	memcpy(a->key, key, key_n);
	a->key_n = key_n;
	memcpy(a->iv, iv, iv_n);
	a->iv_n = iv_n;
	a->pos = 0;
	p11i_sha256_init(&a->tag);
	sha_update(&a->tag, key, key_n);
	sha_update(&a->tag, iv, iv_n);
	sha_update(&a->tag, aad, aad_n);
}

/* aead_xor XORs n bytes of keystream over in into out (in == out is fine). */
static void aead_xor(struct aead *a, const uint8_t *in, uint8_t *out, size_t n)
{
	uint8_t ks[32];

	for (size_t i = 0; i < n; i++, a->pos++) {
		if (i == 0 || a->pos % 32 == 0) {
			struct p11i_sha256 h;
			uint8_t ctr[4];
			uint64_t block = a->pos / 32;

			for (int j = 0; j < 4; j++)
				ctr[j] = (uint8_t)(block >> (24 - 8 * j));
			p11i_sha256_init(&h);
			sha_update(&h, a->key, a->key_n);
			sha_update(&h, a->iv, a->iv_n);
			sha_update(&h, ctr, sizeof ctr);
			p11i_sha256_final(&h, ks);
		}
		out[i] = in[i] ^ ks[a->pos % 32];
	}
}

/* aead_tag writes the tag of what the tag hash has absorbed, leaving a
 * intact (it works on a copy). */
static void aead_tag(const struct aead *a, uint8_t *tag, size_t tag_n)
{
	struct p11i_sha256 h = a->tag;
	uint8_t sum[32];

	p11i_sha256_final(&h, sum);
	memcpy(tag, sum, tag_n);
}

/* ------------------------------------------------------------------ */
/* Objects.                                                           */

struct blob {
	uint8_t *p;
	CK_ULONG n;
};

/* The usage attributes, kept as bits of object.usage. */
static const CK_ATTRIBUTE_TYPE usage_attrs[] = { CKA_ENCRYPT, CKA_DECRYPT, CKA_SIGN, CKA_VERIFY,
						 CKA_WRAP, CKA_UNWRAP, CKA_DERIVE };
enum { U_ENCRYPT = 1, U_DECRYPT = 2, U_SIGN = 4, U_VERIFY = 8, U_WRAP = 16, U_UNWRAP = 32, U_DERIVE = 64,
       U_ALL = 127 };

struct object {
	struct object *next;
	CK_OBJECT_HANDLE handle;
	CK_SESSION_HANDLE owner; /* a session object's session; 0 for token objects and while detached */
	bool token, private_, sensitive, extractable, local;
	bool hidden; /* made by a C_GenerateKey still pending */
	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE ktype;
	CK_ULONG usage;
	CK_ULONG param_set;
	struct blob value, label, id, application;
	/* A public ML-DSA key's private value, which verification recomputes
	 * the signature from (the toy signature is not publicly verifiable). */
	bool has_priv;
	uint8_t priv[PRIV_LEN];
	uint64_t iv_counter; /* AES keys: the IVs generated so far */
};

static struct object *objects;
static CK_OBJECT_HANDLE next_handle;

#define NO_USER ((CK_USER_TYPE)-1)
static CK_USER_TYPE login = NO_USER;

static bool visible(const struct object *o)
{
	return !o->hidden && (!o->private_ || login == CKU_USER);
}

static struct object *find_obj(CK_OBJECT_HANDLE h)
{
	for (struct object *o = objects; o; o = o->next)
		if (o->handle == h)
			return visible(o) ? o : NULL;
	return NULL;
}

/* find_any finds an object whether visible or not (async bookkeeping). */
static struct object *find_any(CK_OBJECT_HANDLE h)
{
	for (struct object *o = objects; o; o = o->next)
		if (o->handle == h)
			return o;
	return NULL;
}

static void free_obj(struct object *o)
{
	free(o->value.p);
	free(o->label.p);
	free(o->id.p);
	free(o->application.p);
	free(o);
}

static void destroy_obj(struct object *victim)
{
	for (struct object **pp = &objects; *pp; pp = &(*pp)->next)
		if (*pp == victim) {
			*pp = victim->next;
			free_obj(victim);
			return;
		}
}

static bool blob_set(struct blob *b, const void *p, CK_ULONG n)
{
	b->p = malloc(n ? n : 1);
	if (!b->p)
		return false;
	if (n)
		memcpy(b->p, p, n);
	b->n = n;
	return true;
}

/* A template, parsed: what it sets, and to what. */
enum { T_CLASS = 1, T_KTYPE = 2, T_VALUE = 4, T_VALUE_LEN = 8, T_TOKEN = 16, T_PRIVATE = 32, T_SENSITIVE = 64,
       T_EXTRACTABLE = 128, T_LABEL = 256, T_ID = 512, T_APPLICATION = 1024, T_PARAM_SET = 2048 };

struct tmpl {
	CK_ULONG seen; /* T_ bits */
	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE ktype;
	CK_ULONG value_len, param_set;
	CK_BBOOL token, private_, sensitive, extractable;
	const CK_ATTRIBUTE *value, *label, *id, *application;
	CK_ULONG usage_seen, usage; /* U_ bits */
};

static CK_RV get_ulong(const CK_ATTRIBUTE *a, CK_ULONG *v)
{
	if (!a->pValue || a->ulValueLen != sizeof(CK_ULONG))
		return CKR_ATTRIBUTE_VALUE_INVALID;
	memcpy(v, a->pValue, sizeof *v);
	return CKR_OK;
}

static CK_RV get_bool(const CK_ATTRIBUTE *a, CK_BBOOL *v)
{
	if (!a->pValue || a->ulValueLen != sizeof(CK_BBOOL))
		return CKR_ATTRIBUTE_VALUE_INVALID;
	*v = *(const CK_BBOOL *)a->pValue;
	return *v > 1 ? CKR_ATTRIBUTE_VALUE_INVALID : CKR_OK;
}

static CK_RV parse_tmpl(const CK_ATTRIBUTE *t, CK_ULONG n, struct tmpl *o)
{
	memset(o, 0, sizeof *o);
	if (!t && n > 0)
		return CKR_ARGUMENTS_BAD;
	for (CK_ULONG i = 0; i < n; i++) {
		const CK_ATTRIBUTE *a = &t[i];
		CK_RV rv = CKR_OK;
		CK_ULONG bit = 0;

		if (!a->pValue && a->ulValueLen > 0)
			return CKR_ATTRIBUTE_VALUE_INVALID;
		switch (a->type) {
		case CKA_CLASS: rv = get_ulong(a, &o->cls), bit = T_CLASS; break;
		case CKA_KEY_TYPE: rv = get_ulong(a, &o->ktype), bit = T_KTYPE; break;
		case CKA_VALUE_LEN: rv = get_ulong(a, &o->value_len), bit = T_VALUE_LEN; break;
		case CKA_PARAMETER_SET: rv = get_ulong(a, &o->param_set), bit = T_PARAM_SET; break;
		case CKA_TOKEN: rv = get_bool(a, &o->token), bit = T_TOKEN; break;
		case CKA_PRIVATE: rv = get_bool(a, &o->private_), bit = T_PRIVATE; break;
		case CKA_SENSITIVE: rv = get_bool(a, &o->sensitive), bit = T_SENSITIVE; break;
		case CKA_EXTRACTABLE: rv = get_bool(a, &o->extractable), bit = T_EXTRACTABLE; break;
		case CKA_VALUE: o->value = a, bit = T_VALUE; break;
		case CKA_LABEL: o->label = a, bit = T_LABEL; break;
		case CKA_ID: o->id = a, bit = T_ID; break;
		case CKA_APPLICATION: o->application = a, bit = T_APPLICATION; break;
		case CKA_LOCAL: return CKR_ATTRIBUTE_READ_ONLY;
		default: {
			CK_ULONG u = 0;
			CK_BBOOL b = CK_FALSE;

			for (size_t j = 0; j < sizeof usage_attrs / sizeof usage_attrs[0]; j++)
				if (usage_attrs[j] == a->type)
					u = 1UL << j;
			if (!u)
				return CKR_ATTRIBUTE_TYPE_INVALID;
			if ((rv = get_bool(a, &b)) != CKR_OK)
				return rv;
			o->usage_seen |= u;
			o->usage = b ? o->usage | u : o->usage & ~u;
		}
		}
		if (rv != CKR_OK)
			return rv;
		o->seen |= bit;
	}
	return CKR_OK;
}

/* ------------------------------------------------------------------ */
/* Sessions and their operations.                                     */

/* C_Sign* and C_Verify*: the hash of (private value || context || data) so far. */
struct sig_op {
	bool active, updated;
	bool no_priv; /* verifying with a public key we hold no private value for */
	struct p11i_sha256 h;
};

/* C_VerifySignature*: as sig_op, with the signature given at init. */
struct vsig_op {
	bool active, updated, no_priv;
	struct p11i_sha256 h;
	uint8_t sig[SIG_LEN];
	CK_ULONG sig_n;
};

/* Message-based signing and verifying with CKM_ML_DSA. */
struct msig_op {
	bool active, in_msg, no_priv;
	uint8_t priv[PRIV_LEN];
	uint8_t ctx[MAX_CTX]; /* the default context, from the init's parameter */
	CK_ULONG ctx_n;
	struct p11i_sha256 h; /* the message begun by ...Begin */
};

/* Message-based encryption and decryption with CKM_AES_GCM. */
struct menc_op {
	bool active, in_msg;
	CK_OBJECT_HANDLE key;
	uint8_t key_value[MAX_KEY];
	size_t key_n;
	struct aead a; /* the message begun by ...Begin */
	CK_ULONG tag_bits;
};

struct find_op {
	bool active;
	CK_OBJECT_HANDLE *h;
	CK_ULONG n, pos;
};

struct session {
	CK_SESSION_HANDLE handle; /* 0: free */
	CK_FLAGS flags;
	struct sig_op sign, verify;
	struct vsig_op vsig;
	struct msig_op msign, mverify;
	struct menc_op menc, mdec;
	struct find_op find;
	CK_FLAGS last_validation; /* C_GetSessionValidationFlags' answer */
};

static struct session sessions[MAX_SESSIONS];
static CK_SESSION_HANDLE next_session;

/* An asynchronous call in progress: its result is computed when it is
 * made and delivered by the C_AsyncComplete after ASYNC_POLLS polls. */
struct pending {
	bool used;
	const char *fn; /* "C_Sign" or "C_GenerateKey" */
	CK_SESSION_HANDLE owner; /* 0 while detached by C_AsyncGetID */
	CK_ULONG id; /* 0 until C_AsyncGetID */
	int polls; /* how many more polls answer CKR_PENDING */
	CK_BYTE_PTR out; /* the caller's output buffer */
	uint8_t result[SIG_LEN];
	CK_ULONG result_n; /* 0: the function has no output buffer */
	CK_OBJECT_HANDLE obj; /* the key C_GenerateKey made */
};

static struct pending pendings[MAX_PENDING];
static CK_ULONG next_async_id;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static bool initialized;

static struct session *find_session(CK_SESSION_HANDLE h)
{
	if (h == 0)
		return NULL;
	for (int i = 0; i < MAX_SESSIONS; i++)
		if (sessions[i].handle == h)
			return &sessions[i];
	return NULL;
}

static int session_count(bool rw_only)
{
	int n = 0;

	for (int i = 0; i < MAX_SESSIONS; i++)
		if (sessions[i].handle && (!rw_only || (sessions[i].flags & CKF_RW_SESSION)))
			n++;
	return n;
}

/* enter takes the lock and checks that the library is initialized and,
 * if s is not NULL, that h is a session; on failure it lets go. Every
 * entry point after C_Initialize starts with it and ends with leave. */
static CK_RV enter(CK_SESSION_HANDLE h, struct session **s)
{
	pthread_mutex_lock(&mu);
	if (!initialized) {
		pthread_mutex_unlock(&mu);
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	if (s && !(*s = find_session(h))) {
		pthread_mutex_unlock(&mu);
		return CKR_SESSION_HANDLE_INVALID;
	}
	return CKR_OK;
}

static CK_RV leave(CK_RV rv)
{
	pthread_mutex_unlock(&mu);
	return rv;
}

/* new_object makes an object of class cls and key type kt with value
 * val from the template t, after checking that t agrees with them. */
static CK_RV new_object(struct session *s, const struct tmpl *t, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt,
			const uint8_t *val, CK_ULONG val_n, bool local, struct object **out)
{
	struct object *o;
	bool is_key = cls != CKO_DATA;

	if ((t->seen & T_CLASS) && t->cls != cls)
		return CKR_TEMPLATE_INCONSISTENT;
	if (is_key && (t->seen & T_KTYPE) && t->ktype != kt)
		return CKR_TEMPLATE_INCONSISTENT;
	if (!is_key && ((t->seen & (T_KTYPE | T_SENSITIVE | T_EXTRACTABLE | T_ID | T_PARAM_SET)) || t->usage_seen))
		return CKR_TEMPLATE_INCONSISTENT;
	if (cls != CKO_DATA && (t->seen & T_APPLICATION))
		return CKR_TEMPLATE_INCONSISTENT;
	bool token = (t->seen & T_TOKEN) && t->token;
	bool priv = (t->seen & T_PRIVATE) ? t->private_ : (cls == CKO_PRIVATE_KEY || cls == CKO_SECRET_KEY);
	if (token && !(s->flags & CKF_RW_SESSION))
		return CKR_SESSION_READ_ONLY;
	if (priv && login != CKU_USER)
		return CKR_USER_NOT_LOGGED_IN;

	o = calloc(1, sizeof *o);
	if (!o)
		return CKR_HOST_MEMORY;
	o->cls = cls;
	o->ktype = is_key ? kt : CK_UNAVAILABLE_INFORMATION;
	o->token = token;
	o->private_ = priv;
	o->owner = token ? 0 : s->handle;
	o->local = local;
	o->sensitive = (t->seen & T_SENSITIVE) ? t->sensitive : cls == CKO_PRIVATE_KEY;
	o->extractable = (t->seen & T_EXTRACTABLE) ? t->extractable : true;
	o->usage = (U_ALL & ~t->usage_seen) | t->usage;
	o->param_set = (t->seen & T_PARAM_SET) ? t->param_set : 2; /* ML-KEM-768 / ML-DSA-65 */
	bool ok = blob_set(&o->value, val, val_n);
	ok = ok && blob_set(&o->label, t->label ? t->label->pValue : NULL, t->label ? t->label->ulValueLen : 0);
	ok = ok && blob_set(&o->id, t->id ? t->id->pValue : NULL, t->id ? t->id->ulValueLen : 0);
	ok = ok && blob_set(&o->application, t->application ? t->application->pValue : NULL,
			    t->application ? t->application->ulValueLen : 0);
	if (!ok) {
		free_obj(o);
		return CKR_HOST_MEMORY;
	}
	o->handle = next_handle++;
	o->next = objects;
	objects = o;
	*out = o;
	return CKR_OK;
}

/* secret_len_ok says whether n bytes make a key of type kt. */
static bool secret_len_ok(CK_KEY_TYPE kt, CK_ULONG n)
{
	if (kt == CKK_AES)
		return n == 16 || n == 24 || n == 32;
	return n >= 1 && n <= MAX_KEY;
}

static void reset_session(struct session *s)
{
	free(s->find.h);
	memset(s, 0, sizeof *s);
}

static void drop_pending(struct pending *p)
{
	struct object *o = p->obj ? find_any(p->obj) : NULL;

	if (o && o->hidden)
		destroy_obj(o);
	memset(p, 0, sizeof *p);
}

static void close_session(struct session *s)
{
	struct object **pp = &objects;

	for (int i = 0; i < MAX_PENDING; i++)
		if (pendings[i].used && pendings[i].owner == s->handle)
			drop_pending(&pendings[i]);
	while (*pp) {
		struct object *o = *pp;
		if (!o->token && o->owner == s->handle) {
			*pp = o->next;
			free_obj(o);
		} else {
			pp = &o->next;
		}
	}
	reset_session(s);
	if (session_count(false) == 0)
		login = NO_USER; /* closing the last session logs the user out */
}

/* reset_state forgets everything: C_Initialize starts from nothing, so
 * every process that makes the same calls gets the same answers. */
static void reset_state(void)
{
	while (objects) {
		struct object *o = objects;
		objects = o->next;
		free_obj(o);
	}
	for (int i = 0; i < MAX_SESSIONS; i++)
		reset_session(&sessions[i]);
	memset(pendings, 0, sizeof pendings);
	login = NO_USER;
	next_handle = 1;
	next_session = 1;
	next_async_id = 1000;
	det_counter = 0;
}

/* A fork while another thread holds the lock would leave the child's copy
 * locked forever: hold it across fork (CKF_INTERFACE_FORK_SAFE). */
static void fork_prepare(void) { pthread_mutex_lock(&mu); }
static void fork_release(void) { pthread_mutex_unlock(&mu); }

__attribute__((constructor)) static void mod32_init(void)
{
	pthread_atfork(fork_prepare, fork_release, fork_release);
}

/* ------------------------------------------------------------------ */
/* General, slot and token functions.                                 */

static void pad(CK_UTF8CHAR *dst, size_t n, const char *s)
{
	size_t k = strlen(s);

	memset(dst, ' ', n);
	memcpy(dst, s, k < n ? k : n);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR pp)
{
	if (!pp)
		return CKR_ARGUMENTS_BAD;
	*pp = &list_2_40;
	return CKR_OK;
}

CK_RV C_GetInterfaceList(CK_INTERFACE_PTR list, CK_ULONG_PTR count)
{
	if (!count)
		return CKR_ARGUMENTS_BAD;
	if (!list) {
		*count = N_INTERFACES;
		return CKR_OK;
	}
	if (*count < N_INTERFACES) {
		*count = N_INTERFACES;
		return CKR_BUFFER_TOO_SMALL;
	}
	memcpy(list, interfaces, sizeof interfaces);
	*count = N_INTERFACES;
	return CKR_OK;
}

CK_RV C_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version, CK_INTERFACE_PTR_PTR pp, CK_FLAGS flags)
{
	if (!pp)
		return CKR_ARGUMENTS_BAD;
	/* The first that matches: with no name and no version, the default. */
	for (size_t i = 0; i < N_INTERFACES; i++) {
		const CK_INTERFACE *in = &interfaces[i];
		const CK_VERSION *v = in->pFunctionList;

		if (name && strcmp((const char *)name, (const char *)in->pInterfaceName) != 0)
			continue;
		if (version && (version->major != v->major || version->minor != v->minor))
			continue;
		if ((in->flags & flags) != flags)
			continue;
		*pp = &interfaces[i];
		return CKR_OK;
	}
	return CKR_ARGUMENTS_BAD;
}

CK_RV C_Initialize(CK_VOID_PTR pInitArgs)
{
	CK_RV rv = CKR_OK;

	if (pInitArgs) {
		CK_C_INITIALIZE_ARGS *a = pInitArgs;
		int fns = !!a->CreateMutex + !!a->DestroyMutex + !!a->LockMutex + !!a->UnlockMutex;

		if (a->pReserved || (fns != 0 && fns != 4))
			return CKR_ARGUMENTS_BAD;
		/* Given locking functions but not allowed ours: we cannot use them. */
		if (fns == 4 && !(a->flags & CKF_OS_LOCKING_OK))
			return CKR_CANT_LOCK;
	}
	pthread_mutex_lock(&mu);
	if (initialized) {
		rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
	} else {
		reset_state();
		initialized = true;
	}
	pthread_mutex_unlock(&mu);
	return rv;
}

CK_RV C_Finalize(CK_VOID_PTR pReserved)
{
	CK_RV rv;

	if (pReserved)
		return CKR_ARGUMENTS_BAD;
	if ((rv = enter(0, NULL)) != CKR_OK)
		return rv;
	reset_state();
	initialized = false;
	return leave(CKR_OK);
}

CK_RV C_GetInfo(CK_INFO_PTR info)
{
	CK_RV rv;

	if ((rv = enter(0, NULL)) != CKR_OK)
		return rv;
	if (!info)
		return leave(CKR_ARGUMENTS_BAD);
	memset(info, 0, sizeof *info);
	info->cryptokiVersion = (CK_VERSION){ 3, 2 };
	pad(info->manufacturerID, sizeof info->manufacturerID, "p11isolate test");
	pad(info->libraryDescription, sizeof info->libraryDescription, "mod32 PKCS#11 3.2 test module");
	info->libraryVersion = (CK_VERSION){ 1, 0 };
	return leave(CKR_OK);
}

CK_RV C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	CK_RV rv;

	(void)tokenPresent; /* the one slot always holds its token */
	if ((rv = enter(0, NULL)) != CKR_OK)
		return rv;
	if (!count)
		return leave(CKR_ARGUMENTS_BAD);
	if (list && *count < 1)
		rv = CKR_BUFFER_TOO_SMALL;
	else if (list)
		list[0] = SLOT_ID;
	*count = 1;
	return leave(rv);
}

CK_RV C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
	CK_RV rv;

	if ((rv = enter(0, NULL)) != CKR_OK)
		return rv;
	if (slot != SLOT_ID)
		return leave(CKR_SLOT_ID_INVALID);
	if (!info)
		return leave(CKR_ARGUMENTS_BAD);
	memset(info, 0, sizeof *info);
	pad(info->slotDescription, sizeof info->slotDescription, "mod32 slot");
	pad(info->manufacturerID, sizeof info->manufacturerID, "p11isolate test");
	info->flags = CKF_TOKEN_PRESENT;
	info->hardwareVersion = (CK_VERSION){ 1, 0 };
	info->firmwareVersion = (CK_VERSION){ 1, 0 };
	return leave(CKR_OK);
}

CK_RV C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	CK_RV rv;

	if ((rv = enter(0, NULL)) != CKR_OK)
		return rv;
	if (slot != SLOT_ID)
		return leave(CKR_SLOT_ID_INVALID);
	if (!info)
		return leave(CKR_ARGUMENTS_BAD);
	memset(info, 0, sizeof *info);
	pad(info->label, sizeof info->label, "mod32");
	pad(info->manufacturerID, sizeof info->manufacturerID, "p11isolate test");
	pad(info->model, sizeof info->model, "mod32");
	pad(info->serialNumber, sizeof info->serialNumber, "0000000000000001");
	info->flags = CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_TOKEN_INITIALIZED;
	info->ulMaxSessionCount = MAX_SESSIONS;
	info->ulSessionCount = (CK_ULONG)session_count(false);
	info->ulMaxRwSessionCount = MAX_SESSIONS;
	info->ulRwSessionCount = (CK_ULONG)session_count(true);
	info->ulMaxPinLen = 32;
	info->ulMinPinLen = 4;
	info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
	info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
	info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
	info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
	info->hardwareVersion = (CK_VERSION){ 1, 0 };
	info->firmwareVersion = (CK_VERSION){ 1, 0 };
	pad(info->utcTime, sizeof info->utcTime, ""); /* no clock */
	return leave(CKR_OK);
}

static const struct {
	CK_MECHANISM_TYPE type;
	CK_MECHANISM_INFO info;
} mechs[] = {
	{ CKM_ML_KEM_KEY_PAIR_GEN, { 0, 0, CKF_GENERATE_KEY_PAIR } },
	{ CKM_ML_KEM, { 0, 0, CKF_ENCAPSULATE | CKF_DECAPSULATE } },
	{ CKM_ML_DSA_KEY_PAIR_GEN, { 0, 0, CKF_GENERATE_KEY_PAIR } },
	{ CKM_ML_DSA, { 0, 0, CKF_SIGN | CKF_VERIFY | CKF_MESSAGE_SIGN | CKF_MESSAGE_VERIFY } },
	{ CKM_AES_GCM, { 16, 32, CKF_WRAP | CKF_UNWRAP | CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT } },
	{ CKM_AES_KEY_GEN, { 16, 32, CKF_GENERATE } }, /* key sizes in bytes */
	{ CKM_GENERIC_SECRET_KEY_GEN, { 8, 8 * MAX_KEY, CKF_GENERATE } }, /* in bits */
};
#define N_MECHS (sizeof mechs / sizeof mechs[0])

CK_RV C_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
	CK_RV rv;

	if ((rv = enter(0, NULL)) != CKR_OK)
		return rv;
	if (slot != SLOT_ID)
		return leave(CKR_SLOT_ID_INVALID);
	if (!count)
		return leave(CKR_ARGUMENTS_BAD);
	if (list && *count < N_MECHS)
		rv = CKR_BUFFER_TOO_SMALL;
	else if (list)
		for (size_t i = 0; i < N_MECHS; i++)
			list[i] = mechs[i].type;
	*count = N_MECHS;
	return leave(rv);
}

CK_RV C_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
	CK_RV rv;

	if ((rv = enter(0, NULL)) != CKR_OK)
		return rv;
	if (slot != SLOT_ID)
		return leave(CKR_SLOT_ID_INVALID);
	if (!info)
		return leave(CKR_ARGUMENTS_BAD);
	for (size_t i = 0; i < N_MECHS; i++)
		if (mechs[i].type == type) {
			*info = mechs[i].info;
			return leave(CKR_OK);
		}
	return leave(CKR_MECHANISM_INVALID);
}

/* ------------------------------------------------------------------ */
/* Sessions and login.                                                */

CK_RV C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify, CK_SESSION_HANDLE_PTR ph)
{
	CK_RV rv;

	(void)app, (void)notify; /* this module makes no callbacks */
	if ((rv = enter(0, NULL)) != CKR_OK)
		return rv;
	if (slot != SLOT_ID)
		return leave(CKR_SLOT_ID_INVALID);
	if (!ph)
		return leave(CKR_ARGUMENTS_BAD);
	if (!(flags & CKF_SERIAL_SESSION))
		return leave(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
	if (login == CKU_SO && !(flags & CKF_RW_SESSION))
		return leave(CKR_SESSION_READ_WRITE_SO_EXISTS);
	for (int i = 0; i < MAX_SESSIONS; i++)
		if (sessions[i].handle == 0) {
			sessions[i].handle = next_session++;
			sessions[i].flags = flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION | CKF_ASYNC_SESSION);
			*ph = sessions[i].handle;
			return leave(CKR_OK);
		}
	return leave(CKR_SESSION_COUNT);
}

CK_RV C_CloseSession(CK_SESSION_HANDLE h)
{
	struct session *s;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	close_session(s);
	return leave(CKR_OK);
}

CK_RV C_CloseAllSessions(CK_SLOT_ID slot)
{
	CK_RV rv;

	if ((rv = enter(0, NULL)) != CKR_OK)
		return rv;
	if (slot != SLOT_ID)
		return leave(CKR_SLOT_ID_INVALID);
	for (int i = 0; i < MAX_SESSIONS; i++)
		if (sessions[i].handle)
			close_session(&sessions[i]);
	return leave(CKR_OK);
}

CK_RV C_GetSessionInfo(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info)
{
	struct session *s;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!info)
		return leave(CKR_ARGUMENTS_BAD);
	bool rw = s->flags & CKF_RW_SESSION;
	info->slotID = SLOT_ID;
	if (login == CKU_SO)
		info->state = CKS_RW_SO_FUNCTIONS;
	else if (login == CKU_USER)
		info->state = rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
	else
		info->state = rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
	info->flags = s->flags;
	info->ulDeviceError = 0;
	return leave(CKR_OK);
}

static bool same(const CK_UTF8CHAR *p, CK_ULONG n, const char *want)
{
	return n == strlen(want) && memcmp(p, want, n) == 0;
}

/* do_login is C_Login, and C_LoginUser when username is not NULL. */
static CK_RV do_login(CK_USER_TYPE type, CK_UTF8CHAR_PTR pin, CK_ULONG pin_n, CK_UTF8CHAR_PTR username,
		      CK_ULONG username_n)
{
	if (type == CKU_CONTEXT_SPECIFIC)
		return CKR_OPERATION_NOT_INITIALIZED; /* no operation here asks for it */
	if (type != CKU_USER && type != CKU_SO)
		return CKR_USER_TYPE_INVALID;
	if (!pin)
		return CKR_ARGUMENTS_BAD; /* no protected authentication path */
	if (login == type)
		return CKR_USER_ALREADY_LOGGED_IN;
	if (login != NO_USER)
		return CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
	if (type == CKU_SO && session_count(false) != session_count(true))
		return CKR_SESSION_READ_ONLY_EXISTS;
	if (type == CKU_USER && username && !same(username, username_n, "alice"))
		return CKR_PIN_INCORRECT; /* do not tell a wrong name from a wrong PIN */
	if (!same(pin, pin_n, type == CKU_USER ? "1234" : "5678"))
		return CKR_PIN_INCORRECT;
	login = type;
	return CKR_OK;
}

CK_RV C_Login(CK_SESSION_HANDLE h, CK_USER_TYPE type, CK_UTF8CHAR_PTR pin, CK_ULONG pin_n)
{
	struct session *s;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	return leave(do_login(type, pin, pin_n, NULL, 0));
}

CK_RV C_LoginUser(CK_SESSION_HANDLE h, CK_USER_TYPE type, CK_UTF8CHAR_PTR pin, CK_ULONG pin_n,
		  CK_UTF8CHAR_PTR username, CK_ULONG username_n)
{
	struct session *s;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	/* CKU_USER needs a name; for CKU_SO the name is ignored, as C_Login. */
	if (type == CKU_USER && !username)
		return leave(CKR_ARGUMENTS_BAD);
	return leave(do_login(type, pin, pin_n, type == CKU_USER ? username : NULL, username_n));
}

CK_RV C_Logout(CK_SESSION_HANDLE h)
{
	struct session *s;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (login == NO_USER)
		return leave(CKR_USER_NOT_LOGGED_IN);
	login = NO_USER;
	return leave(CKR_OK);
}

/* ------------------------------------------------------------------ */
/* Objects.                                                           */

union scratch {
	CK_ULONG ul;
	CK_BBOOL b;
};

/* attr_value points *p, *n at object o's attribute type. */
static CK_RV attr_value(const struct object *o, CK_ATTRIBUTE_TYPE type, const void **p, CK_ULONG *n,
			union scratch *sc)
{
	bool key = o->cls != CKO_DATA;
	bool ml = o->ktype == CKK_ML_KEM || o->ktype == CKK_ML_DSA;
	bool secret_or_private = o->cls == CKO_SECRET_KEY || o->cls == CKO_PRIVATE_KEY;

#define UL(v) (sc->ul = (v), *p = &sc->ul, *n = sizeof sc->ul, CKR_OK)
#define BOOL(v) (sc->b = (v) ? CK_TRUE : CK_FALSE, *p = &sc->b, *n = sizeof sc->b, CKR_OK)
#define BLOB(bl) (*p = (bl).p, *n = (bl).n, CKR_OK)
	switch (type) {
	case CKA_CLASS: return UL(o->cls);
	case CKA_TOKEN: return BOOL(o->token);
	case CKA_PRIVATE: return BOOL(o->private_);
	case CKA_LABEL: return BLOB(o->label);
	case CKA_VALUE:
		if (secret_or_private && (o->sensitive || !o->extractable))
			return CKR_ATTRIBUTE_SENSITIVE;
		return BLOB(o->value);
	case CKA_APPLICATION:
		if (!key)
			return BLOB(o->application);
		break;
	case CKA_KEY_TYPE:
		if (key)
			return UL(o->ktype);
		break;
	case CKA_ID:
		if (key)
			return BLOB(o->id);
		break;
	case CKA_LOCAL:
		if (key)
			return BOOL(o->local);
		break;
	case CKA_VALUE_LEN:
		if (o->cls == CKO_SECRET_KEY)
			return UL(o->value.n);
		break;
	case CKA_SENSITIVE:
		if (secret_or_private)
			return BOOL(o->sensitive);
		break;
	case CKA_EXTRACTABLE:
		if (secret_or_private)
			return BOOL(o->extractable);
		break;
	case CKA_PARAMETER_SET:
		if (key && ml)
			return UL(o->param_set);
		break;
	default:
		for (size_t j = 0; key && j < sizeof usage_attrs / sizeof usage_attrs[0]; j++)
			if (usage_attrs[j] == type)
				return BOOL(o->usage & (1UL << j));
	}
#undef UL
#undef BOOL
#undef BLOB
	return CKR_ATTRIBUTE_TYPE_INVALID;
}

/* link_private finds the private key an imported public key belongs to. */
static void link_private(struct object *pub)
{
	for (struct object *o = objects; o; o = o->next) {
		uint8_t sum[32];

		if (o->cls != CKO_PRIVATE_KEY || o->ktype != pub->ktype || o->value.n != PRIV_LEN)
			continue;
		sha256_2(sum, o->value.p, PRIV_LEN, NULL, 0);
		if (memcmp(sum, pub->value.p, PUB_LEN) == 0) {
			memcpy(pub->priv, o->value.p, PRIV_LEN);
			pub->has_priv = true;
			return;
		}
	}
}

CK_RV C_CreateObject(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR ph)
{
	struct session *s;
	struct tmpl tp;
	struct object *o;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!ph)
		return leave(CKR_ARGUMENTS_BAD);
	if ((rv = parse_tmpl(t, n, &tp)) != CKR_OK)
		return leave(rv);
	if (!(tp.seen & T_CLASS))
		return leave(CKR_TEMPLATE_INCOMPLETE);
	const uint8_t *val = tp.value ? tp.value->pValue : NULL;
	CK_ULONG val_n = tp.value ? tp.value->ulValueLen : 0;
	switch (tp.cls) {
	case CKO_DATA:
		break;
	case CKO_SECRET_KEY:
		if (!(tp.seen & T_KTYPE) || !tp.value)
			return leave(CKR_TEMPLATE_INCOMPLETE);
		if (tp.ktype != CKK_AES && tp.ktype != CKK_GENERIC_SECRET)
			return leave(CKR_TEMPLATE_INCONSISTENT);
		if (tp.seen & T_VALUE_LEN) /* given by CKA_VALUE, never with it */
			return leave(CKR_TEMPLATE_INCONSISTENT);
		if (!secret_len_ok(tp.ktype, val_n))
			return leave(CKR_ATTRIBUTE_VALUE_INVALID);
		break;
	case CKO_PRIVATE_KEY:
	case CKO_PUBLIC_KEY:
		if (!(tp.seen & T_KTYPE) || !tp.value)
			return leave(CKR_TEMPLATE_INCOMPLETE);
		if (tp.ktype != CKK_ML_KEM && tp.ktype != CKK_ML_DSA)
			return leave(CKR_TEMPLATE_INCONSISTENT);
		if (tp.seen & T_VALUE_LEN)
			return leave(CKR_TEMPLATE_INCONSISTENT);
		if (val_n != (tp.cls == CKO_PRIVATE_KEY ? PRIV_LEN : PUB_LEN))
			return leave(CKR_ATTRIBUTE_VALUE_INVALID);
		break;
	default:
		return leave(CKR_ATTRIBUTE_VALUE_INVALID);
	}
	if ((rv = new_object(s, &tp, tp.cls, tp.ktype, val, val_n, false, &o)) != CKR_OK)
		return leave(rv);
	if (o->cls == CKO_PUBLIC_KEY)
		link_private(o);
	*ph = o->handle;
	return leave(CKR_OK);
}

CK_RV C_DestroyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE ho)
{
	struct session *s;
	struct object *o;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!(o = find_obj(ho)))
		return leave(CKR_OBJECT_HANDLE_INVALID);
	if (o->token && !(s->flags & CKF_RW_SESSION))
		return leave(CKR_SESSION_READ_ONLY);
	destroy_obj(o);
	return leave(CKR_OK);
}

CK_RV C_GetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE ho, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
	struct session *s;
	struct object *o;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!t && n > 0)
		return leave(CKR_ARGUMENTS_BAD);
	if (!(o = find_obj(ho)))
		return leave(CKR_OBJECT_HANDLE_INVALID);
	/* Every attribute gets its answer; the first failure is the result. */
	for (CK_ULONG i = 0; i < n; i++) {
		union scratch sc;
		const void *p;
		CK_ULONG len;
		CK_RV r = attr_value(o, t[i].type, &p, &len, &sc);

		if (r == CKR_OK && t[i].pValue && t[i].ulValueLen < len)
			r = CKR_BUFFER_TOO_SMALL;
		if (r != CKR_OK) {
			t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			if (rv == CKR_OK)
				rv = r;
			continue;
		}
		if (t[i].pValue && len)
			memcpy(t[i].pValue, p, len);
		t[i].ulValueLen = len;
	}
	return leave(rv);
}

static bool matches(const struct object *o, const CK_ATTRIBUTE *t, CK_ULONG n)
{
	for (CK_ULONG i = 0; i < n; i++) {
		union scratch sc;
		const void *p;
		CK_ULONG len;

		if (attr_value(o, t[i].type, &p, &len, &sc) != CKR_OK || len != t[i].ulValueLen ||
		    (len && memcmp(p, t[i].pValue, len) != 0))
			return false;
	}
	return true;
}

CK_RV C_FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
	struct session *s;
	CK_ULONG count = 0;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (s->find.active)
		return leave(CKR_OPERATION_ACTIVE);
	if (!t && n > 0)
		return leave(CKR_ARGUMENTS_BAD);
	for (CK_ULONG i = 0; i < n; i++)
		if (!t[i].pValue && t[i].ulValueLen > 0)
			return leave(CKR_ATTRIBUTE_VALUE_INVALID);
	for (struct object *o = objects; o; o = o->next)
		count++;
	s->find.h = malloc((count ? count : 1) * sizeof *s->find.h);
	if (!s->find.h)
		return leave(CKR_HOST_MEMORY);
	/* The objects are listed newest first; answer oldest first. */
	s->find.n = 0;
	for (struct object *o = objects; o; o = o->next)
		if (visible(o) && matches(o, t, n))
			s->find.h[s->find.n++] = o->handle;
	for (CK_ULONG i = 0; i < s->find.n / 2; i++) {
		CK_OBJECT_HANDLE x = s->find.h[i];
		s->find.h[i] = s->find.h[s->find.n - 1 - i];
		s->find.h[s->find.n - 1 - i] = x;
	}
	s->find.pos = 0;
	s->find.active = true;
	return leave(CKR_OK);
}

CK_RV C_FindObjects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR ph, CK_ULONG max, CK_ULONG_PTR count)
{
	struct session *s;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!s->find.active)
		return leave(CKR_OPERATION_NOT_INITIALIZED);
	if (!ph || !count)
		return leave(CKR_ARGUMENTS_BAD);
	*count = 0;
	while (*count < max && s->find.pos < s->find.n)
		ph[(*count)++] = s->find.h[s->find.pos++];
	return leave(CKR_OK);
}

CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE h)
{
	struct session *s;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!s->find.active)
		return leave(CKR_OPERATION_NOT_INITIALIZED);
	free(s->find.h);
	memset(&s->find, 0, sizeof s->find);
	return leave(CKR_OK);
}

/* ------------------------------------------------------------------ */
/* Key generation.                                                    */

static struct pending *pending_of(CK_SESSION_HANDLE owner, const char *fn)
{
	for (int i = 0; i < MAX_PENDING; i++)
		if (pendings[i].used && pendings[i].owner == owner && strcmp(pendings[i].fn, fn) == 0)
			return &pendings[i];
	return NULL;
}

static struct pending *new_pending(struct session *s, const char *fn)
{
	for (int i = 0; i < MAX_PENDING; i++)
		if (!pendings[i].used) {
			struct pending *p = &pendings[i];
			memset(p, 0, sizeof *p);
			p->used = true;
			p->fn = fn;
			p->owner = s->handle;
			p->polls = ASYNC_POLLS;
			return p;
		}
	return NULL;
}

CK_RV C_GenerateKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t, CK_ULONG n,
		    CK_OBJECT_HANDLE_PTR ph)
{
	struct session *s;
	struct tmpl tp;
	struct object *o;
	struct pending *p = NULL;
	uint8_t value[MAX_KEY];
	CK_KEY_TYPE kt;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!m || !ph)
		return leave(CKR_ARGUMENTS_BAD);
	if (m->mechanism == CKM_AES_KEY_GEN)
		kt = CKK_AES;
	else if (m->mechanism == CKM_GENERIC_SECRET_KEY_GEN)
		kt = CKK_GENERIC_SECRET;
	else
		return leave(CKR_MECHANISM_INVALID);
	if (m->pParameter || m->ulParameterLen)
		return leave(CKR_MECHANISM_PARAM_INVALID);
	if ((rv = parse_tmpl(t, n, &tp)) != CKR_OK)
		return leave(rv);
	if (tp.seen & T_VALUE)
		return leave(CKR_TEMPLATE_INCONSISTENT);
	if (!(tp.seen & T_VALUE_LEN))
		return leave(CKR_TEMPLATE_INCOMPLETE);
	if (!secret_len_ok(kt, tp.value_len))
		return leave(CKR_ATTRIBUTE_VALUE_INVALID);
	if (s->flags & CKF_ASYNC_SESSION) {
		if (pending_of(s->handle, "C_GenerateKey"))
			return leave(CKR_OPERATION_ACTIVE);
		if (!(p = new_pending(s, "C_GenerateKey")))
			return leave(CKR_DEVICE_MEMORY);
	}
	det_bytes(value, tp.value_len);
	if ((rv = new_object(s, &tp, CKO_SECRET_KEY, kt, value, tp.value_len, true, &o)) != CKR_OK) {
		if (p)
			memset(p, 0, sizeof *p);
		return leave(rv);
	}
	s->last_validation = 0;
	if (p) {
		/* The key exists once C_AsyncComplete says so; the handle comes
		 * back in CK_ASYNC_DATA.hObject, *ph stays as it is. */
		o->hidden = true;
		p->obj = o->handle;
		return leave(CKR_PENDING);
	}
	*ph = o->handle;
	return leave(CKR_OK);
}

CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pubt, CK_ULONG pubn,
			CK_ATTRIBUTE_PTR privt, CK_ULONG privn, CK_OBJECT_HANDLE_PTR phpub, CK_OBJECT_HANDLE_PTR phpriv)
{
	struct session *s;
	struct tmpl tpub, tpriv;
	struct object *opub, *opriv;
	uint8_t priv[PRIV_LEN], pub[PUB_LEN];
	CK_KEY_TYPE kt;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!m || !phpub || !phpriv)
		return leave(CKR_ARGUMENTS_BAD);
	if (m->mechanism == CKM_ML_KEM_KEY_PAIR_GEN)
		kt = CKK_ML_KEM;
	else if (m->mechanism == CKM_ML_DSA_KEY_PAIR_GEN)
		kt = CKK_ML_DSA;
	else
		return leave(CKR_MECHANISM_INVALID);
	if (m->pParameter || m->ulParameterLen)
		return leave(CKR_MECHANISM_PARAM_INVALID);
	if ((rv = parse_tmpl(pubt, pubn, &tpub)) != CKR_OK || (rv = parse_tmpl(privt, privn, &tpriv)) != CKR_OK)
		return leave(rv);
	if ((tpub.seen | tpriv.seen) & (T_VALUE | T_VALUE_LEN))
		return leave(CKR_TEMPLATE_INCONSISTENT);
	det_bytes(priv, sizeof priv);
	sha256_2(pub, priv, sizeof priv, NULL, 0);
	if ((rv = new_object(s, &tpriv, CKO_PRIVATE_KEY, kt, priv, sizeof priv, true, &opriv)) != CKR_OK)
		return leave(rv);
	if ((rv = new_object(s, &tpub, CKO_PUBLIC_KEY, kt, pub, sizeof pub, true, &opub)) != CKR_OK) {
		destroy_obj(opriv);
		return leave(rv);
	}
	memcpy(opub->priv, priv, sizeof priv);
	opub->has_priv = true;
	s->last_validation = 0;
	*phpub = opub->handle;
	*phpriv = opriv->handle;
	return leave(CKR_OK);
}

/* ------------------------------------------------------------------ */
/* ML-DSA (toy): signature = h || SHA-256(h), h = SHA-256(private value ||
 * context || data).                                                  */

/* sign_context reads an optional CK_SIGN_ADDITIONAL_CONTEXT. */
static CK_RV sign_context(const void *param, CK_ULONG len, const uint8_t **ctx, CK_ULONG *ctx_n)
{
	CK_SIGN_ADDITIONAL_CONTEXT c;

	*ctx = NULL;
	*ctx_n = 0;
	if (!param && len == 0)
		return CKR_OK;
	if (!param || len != sizeof c)
		return CKR_MECHANISM_PARAM_INVALID;
	memcpy(&c, param, sizeof c);
	if (c.hedgeVariant > CKH_DETERMINISTIC_REQUIRED || c.ulContextLen > MAX_CTX ||
	    (!c.pContext && c.ulContextLen > 0))
		return CKR_MECHANISM_PARAM_INVALID;
	*ctx = c.pContext;
	*ctx_n = c.ulContextLen;
	return CKR_OK;
}

/* dsa_key finds the private value behind a signing (private) or verifying
 * (public) ML-DSA key; *priv is NULL for a public key we cannot link. */
static CK_RV dsa_key(CK_OBJECT_HANDLE hk, bool sign, const uint8_t **priv)
{
	struct object *o = find_obj(hk);

	if (!o)
		return CKR_KEY_HANDLE_INVALID;
	if (o->ktype != CKK_ML_DSA || o->cls != (sign ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY))
		return CKR_KEY_TYPE_INCONSISTENT;
	if (!(o->usage & (sign ? U_SIGN : U_VERIFY)))
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	*priv = sign ? o->value.p : o->has_priv ? o->priv : NULL;
	return CKR_OK;
}

static void dsa_start(struct p11i_sha256 *h, const uint8_t *priv, const uint8_t *ctx, CK_ULONG ctx_n)
{
	static const uint8_t none[PRIV_LEN];

	p11i_sha256_init(h);
	sha_update(h, priv ? priv : none, PRIV_LEN);
	sha_update(h, ctx, ctx_n);
}

/* dsa_finish makes the signature of what h absorbed (h is used up). */
static void dsa_finish(struct p11i_sha256 *h, uint8_t sig[SIG_LEN])
{
	p11i_sha256_final(h, sig);
	sha256_2(sig + 32, sig, 32, NULL, 0);
}

/* dsa_init starts a C_SignInit/C_VerifyInit/C_VerifySignatureInit
 * operation in h. */
static CK_RV dsa_init(CK_MECHANISM_PTR m, CK_OBJECT_HANDLE hk, bool sign, struct p11i_sha256 *h, bool *no_priv)
{
	const uint8_t *ctx, *priv;
	CK_ULONG ctx_n;
	CK_RV rv;

	if (m->mechanism != CKM_ML_DSA)
		return CKR_MECHANISM_INVALID;
	if ((rv = sign_context(m->pParameter, m->ulParameterLen, &ctx, &ctx_n)) != CKR_OK)
		return rv;
	if ((rv = dsa_key(hk, sign, &priv)) != CKR_OK)
		return rv;
	dsa_start(h, priv, ctx, ctx_n);
	*no_priv = !priv;
	return CKR_OK;
}

/* A NULL mechanism ends the active operation (3.0). */
static CK_RV sig_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE hk, bool sign)
{
	struct session *s;
	struct sig_op *op;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	op = sign ? &s->sign : &s->verify;
	if (!m) {
		memset(op, 0, sizeof *op);
		return leave(CKR_OK);
	}
	if (op->active)
		return leave(CKR_OPERATION_ACTIVE);
	if ((rv = dsa_init(m, hk, sign, &op->h, &op->no_priv)) != CKR_OK)
		return leave(rv);
	op->active = true;
	op->updated = false;
	return leave(CKR_OK);
}

CK_RV C_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE hk) { return sig_init(h, m, hk, true); }
CK_RV C_VerifyInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE hk) { return sig_init(h, m, hk, false); }

/* sign_out follows the length conventions for a signature; it answers
 * CKR_OK with sig != NULL when the caller's buffer takes a signature. */
static CK_RV sign_out(CK_BYTE_PTR sig, CK_ULONG_PTR sig_n)
{
	if (!sig) {
		*sig_n = SIG_LEN;
		return CKR_OK;
	}
	if (*sig_n < SIG_LEN) {
		*sig_n = SIG_LEN;
		return CKR_BUFFER_TOO_SMALL;
	}
	return CKR_OK;
}

/* sign_final ends a C_Sign or C_SignFinal, data is the last part (C_Sign). */
static CK_RV sign_final(struct session *s, const char *fn, CK_BYTE_PTR data, CK_ULONG data_n, CK_BYTE_PTR sig,
			CK_ULONG_PTR sig_n)
{
	uint8_t out[SIG_LEN];
	struct pending *p = NULL;
	CK_RV rv;

	if (!sig_n || (!data && data_n)) {
		s->sign.active = false;
		return CKR_ARGUMENTS_BAD;
	}
	if ((rv = sign_out(sig, sig_n)) != CKR_OK || !sig)
		return rv; /* a length query or a short buffer leaves the operation be */
	bool async = (s->flags & CKF_ASYNC_SESSION) && strcmp(fn, "C_Sign") == 0;
	if (async) {
		if (pending_of(s->handle, fn))
			return CKR_OPERATION_ACTIVE; /* one C_Sign in flight per session */
		if (!(p = new_pending(s, fn)))
			return CKR_DEVICE_MEMORY;
	}
	sha_update(&s->sign.h, data, data_n);
	dsa_finish(&s->sign.h, out);
	s->sign.active = false;
	if (p) {
		/* Delivered into sig by C_AsyncComplete; *sig_n stays as it is. */
		p->out = sig;
		memcpy(p->result, out, SIG_LEN);
		p->result_n = SIG_LEN;
		return CKR_PENDING;
	}
	memcpy(sig, out, SIG_LEN);
	*sig_n = SIG_LEN;
	s->last_validation = MOD32_VALIDATED;
	return CKR_OK;
}

CK_RV C_Sign(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG data_n, CK_BYTE_PTR sig, CK_ULONG_PTR sig_n)
{
	struct session *s;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!s->sign.active)
		return leave(CKR_OPERATION_NOT_INITIALIZED);
	if (s->sign.updated) /* C_Sign cannot finish a multi-part operation */
		return leave(CKR_OPERATION_ACTIVE);
	return leave(sign_final(s, "C_Sign", data, data_n, sig, sig_n));
}

static CK_RV sig_update(CK_SESSION_HANDLE h, CK_BYTE_PTR part, CK_ULONG part_n, bool sign)
{
	struct session *s;
	struct sig_op *op;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	op = sign ? &s->sign : &s->verify;
	if (!op->active)
		return leave(CKR_OPERATION_NOT_INITIALIZED);
	if (!part && part_n) {
		op->active = false;
		return leave(CKR_ARGUMENTS_BAD);
	}
	sha_update(&op->h, part, part_n);
	op->updated = true;
	return leave(CKR_OK);
}

CK_RV C_SignUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR part, CK_ULONG part_n) { return sig_update(h, part, part_n, true); }
CK_RV C_VerifyUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR part, CK_ULONG part_n) { return sig_update(h, part, part_n, false); }

CK_RV C_SignFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG_PTR sig_n)
{
	struct session *s;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!s->sign.active)
		return leave(CKR_OPERATION_NOT_INITIALIZED);
	return leave(sign_final(s, "C_SignFinal", NULL, 0, sig, sig_n));
}

/* verify_final checks sig against what h absorbed (h is used up). */
static CK_RV verify_final(struct p11i_sha256 *h, bool no_priv, const uint8_t *sig, CK_ULONG sig_n)
{
	uint8_t want[SIG_LEN];

	if (sig_n != SIG_LEN)
		return CKR_SIGNATURE_LEN_RANGE;
	dsa_finish(h, want);
	if (no_priv || memcmp(want, sig, SIG_LEN) != 0)
		return CKR_SIGNATURE_INVALID;
	return CKR_OK;
}

CK_RV C_Verify(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG data_n, CK_BYTE_PTR sig, CK_ULONG sig_n)
{
	struct session *s;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!s->verify.active)
		return leave(CKR_OPERATION_NOT_INITIALIZED);
	if (s->verify.updated)
		return leave(CKR_OPERATION_ACTIVE);
	s->verify.active = false; /* C_Verify always ends the operation */
	if ((!data && data_n) || !sig)
		return leave(CKR_ARGUMENTS_BAD);
	sha_update(&s->verify.h, data, data_n);
	s->last_validation = 0;
	return leave(verify_final(&s->verify.h, s->verify.no_priv, sig, sig_n));
}

CK_RV C_VerifyFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG sig_n)
{
	struct session *s;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!s->verify.active)
		return leave(CKR_OPERATION_NOT_INITIALIZED);
	s->verify.active = false;
	if (!sig)
		return leave(CKR_ARGUMENTS_BAD);
	s->last_validation = 0;
	return leave(verify_final(&s->verify.h, s->verify.no_priv, sig, sig_n));
}

/* The 3.2 verification that takes the signature first. */
CK_RV C_VerifySignatureInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE hk, CK_BYTE_PTR sig,
			    CK_ULONG sig_n)
{
	struct session *s;
	struct vsig_op *op;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	op = &s->vsig;
	if (!m) {
		memset(op, 0, sizeof *op);
		return leave(CKR_OK);
	}
	if (op->active)
		return leave(CKR_OPERATION_ACTIVE);
	if (!sig)
		return leave(CKR_ARGUMENTS_BAD);
	if ((rv = dsa_init(m, hk, false, &op->h, &op->no_priv)) != CKR_OK)
		return leave(rv);
	/* The length is judged when the data is: keep what a check needs. */
	op->sig_n = sig_n;
	memcpy(op->sig, sig, sig_n < SIG_LEN ? sig_n : SIG_LEN);
	op->active = true;
	op->updated = false;
	return leave(CKR_OK);
}

CK_RV C_VerifySignature(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG data_n)
{
	struct session *s;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!s->vsig.active)
		return leave(CKR_OPERATION_NOT_INITIALIZED);
	if (s->vsig.updated)
		return leave(CKR_OPERATION_ACTIVE);
	s->vsig.active = false;
	if (!data && data_n)
		return leave(CKR_ARGUMENTS_BAD);
	sha_update(&s->vsig.h, data, data_n);
	s->last_validation = 0;
	return leave(verify_final(&s->vsig.h, s->vsig.no_priv, s->vsig.sig, s->vsig.sig_n));
}

CK_RV C_VerifySignatureUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR part, CK_ULONG part_n)
{
	struct session *s;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!s->vsig.active)
		return leave(CKR_OPERATION_NOT_INITIALIZED);
	if (!part && part_n) {
		s->vsig.active = false;
		return leave(CKR_ARGUMENTS_BAD);
	}
	sha_update(&s->vsig.h, part, part_n);
	s->vsig.updated = true;
	return leave(CKR_OK);
}

CK_RV C_VerifySignatureFinal(CK_SESSION_HANDLE h)
{
	struct session *s;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!s->vsig.active)
		return leave(CKR_OPERATION_NOT_INITIALIZED);
	s->vsig.active = false;
	s->last_validation = 0;
	return leave(verify_final(&s->vsig.h, s->vsig.no_priv, s->vsig.sig, s->vsig.sig_n));
}

/* ------------------------------------------------------------------ */
/* Message-based signing and verifying with CKM_ML_DSA. The init's
 * parameter (optional) is the default context of the messages; a
 * message's own CK_SIGN_ADDITIONAL_CONTEXT replaces it. The signature is
 * the one C_Sign makes with that context.                            */

static CK_RV msig_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE hk, bool sign)
{
	struct session *s;
	struct msig_op *op;
	const uint8_t *ctx, *priv;
	CK_ULONG ctx_n;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	op = sign ? &s->msign : &s->mverify;
	if (!m)
		return leave(CKR_ARGUMENTS_BAD);
	if (op->active)
		return leave(CKR_OPERATION_ACTIVE);
	if (m->mechanism != CKM_ML_DSA)
		return leave(CKR_MECHANISM_INVALID);
	if ((rv = sign_context(m->pParameter, m->ulParameterLen, &ctx, &ctx_n)) != CKR_OK)
		return leave(rv);
	if ((rv = dsa_key(hk, sign, &priv)) != CKR_OK)
		return leave(rv);
	memset(op, 0, sizeof *op);
	op->no_priv = !priv;
	if (priv)
		memcpy(op->priv, priv, PRIV_LEN);
	if (ctx_n)
		memcpy(op->ctx, ctx, ctx_n);
	op->ctx_n = ctx_n;
	op->active = true;
	return leave(CKR_OK);
}

CK_RV C_MessageSignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE hk) { return msig_init(h, m, hk, true); }
CK_RV C_MessageVerifyInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE hk) { return msig_init(h, m, hk, false); }

/* msg_start begins a message's hash with its context: its own parameter
 * if it has one, else the operation's default. */
static CK_RV msg_start(struct msig_op *op, const void *param, CK_ULONG param_n, struct p11i_sha256 *h)
{
	const uint8_t *ctx = op->ctx;
	CK_ULONG ctx_n = op->ctx_n;
	CK_RV rv;

	if (param || param_n)
		if ((rv = sign_context(param, param_n, &ctx, &ctx_n)) != CKR_OK)
			return rv;
	dsa_start(h, op->no_priv ? NULL : op->priv, ctx, ctx_n);
	return CKR_OK;
}

/* The message functions' common entry: the operation is active and no
 * message is begun (begun false) or one is (begun true). */
static CK_RV msg_enter(CK_SESSION_HANDLE h, bool sign, bool begun, struct session **s, struct msig_op **op)
{
	CK_RV rv;

	if ((rv = enter(h, s)) != CKR_OK)
		return rv;
	*op = sign ? &(*s)->msign : &(*s)->mverify;
	if (!(*op)->active || (begun && !(*op)->in_msg))
		return leave(CKR_OPERATION_NOT_INITIALIZED);
	if (!begun && (*op)->in_msg)
		return leave(CKR_OPERATION_ACTIVE);
	return CKR_OK;
}

CK_RV C_SignMessage(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_n, CK_BYTE_PTR data, CK_ULONG data_n,
		    CK_BYTE_PTR sig, CK_ULONG_PTR sig_n)
{
	struct session *s;
	struct msig_op *op;
	struct p11i_sha256 hh;
	CK_RV rv;

	if ((rv = msg_enter(h, true, false, &s, &op)) != CKR_OK)
		return rv;
	if (!sig_n || (!data && data_n))
		return leave(CKR_ARGUMENTS_BAD);
	if ((rv = msg_start(op, param, param_n, &hh)) != CKR_OK)
		return leave(rv);
	if ((rv = sign_out(sig, sig_n)) != CKR_OK || !sig)
		return leave(rv);
	sha_update(&hh, data, data_n);
	dsa_finish(&hh, sig);
	*sig_n = SIG_LEN;
	s->last_validation = MOD32_VALIDATED;
	return leave(CKR_OK);
}

static CK_RV msg_begin(CK_SESSION_HANDLE h, bool sign, CK_VOID_PTR param, CK_ULONG param_n)
{
	struct session *s;
	struct msig_op *op;
	CK_RV rv;

	if ((rv = msg_enter(h, sign, false, &s, &op)) != CKR_OK)
		return rv;
	if ((rv = msg_start(op, param, param_n, &op->h)) != CKR_OK)
		return leave(rv);
	op->in_msg = true;
	return leave(CKR_OK);
}

CK_RV C_SignMessageBegin(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_n) { return msg_begin(h, true, param, param_n); }
CK_RV C_VerifyMessageBegin(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_n) { return msg_begin(h, false, param, param_n); }

/* In the ...Next functions the message's parameter is the one given to
 * ...Begin; theirs is not read. */
CK_RV C_SignMessageNext(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_n, CK_BYTE_PTR data, CK_ULONG data_n,
			CK_BYTE_PTR sig, CK_ULONG_PTR sig_n)
{
	struct session *s;
	struct msig_op *op;
	struct p11i_sha256 hh;
	CK_RV rv;

	(void)param, (void)param_n;
	if ((rv = msg_enter(h, true, true, &s, &op)) != CKR_OK)
		return rv;
	if (!data && data_n)
		return leave(CKR_ARGUMENTS_BAD);
	if (!sig_n) { /* not the last part */
		sha_update(&op->h, data, data_n);
		return leave(CKR_OK);
	}
	if ((rv = sign_out(sig, sig_n)) != CKR_OK || !sig)
		return leave(rv); /* the caller repeats the call with the same part */
	hh = op->h;
	sha_update(&hh, data, data_n);
	dsa_finish(&hh, sig);
	*sig_n = SIG_LEN;
	op->in_msg = false;
	s->last_validation = MOD32_VALIDATED;
	return leave(CKR_OK);
}

CK_RV C_VerifyMessage(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_n, CK_BYTE_PTR data, CK_ULONG data_n,
		      CK_BYTE_PTR sig, CK_ULONG sig_n)
{
	struct session *s;
	struct msig_op *op;
	struct p11i_sha256 hh;
	CK_RV rv;

	if ((rv = msg_enter(h, false, false, &s, &op)) != CKR_OK)
		return rv;
	if ((!data && data_n) || !sig)
		return leave(CKR_ARGUMENTS_BAD);
	if ((rv = msg_start(op, param, param_n, &hh)) != CKR_OK)
		return leave(rv);
	sha_update(&hh, data, data_n);
	s->last_validation = 0;
	return leave(verify_final(&hh, op->no_priv, sig, sig_n));
}

CK_RV C_VerifyMessageNext(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_n, CK_BYTE_PTR data,
			  CK_ULONG data_n, CK_BYTE_PTR sig, CK_ULONG sig_n)
{
	struct session *s;
	struct msig_op *op;
	CK_RV rv;

	(void)param, (void)param_n;
	if ((rv = msg_enter(h, false, true, &s, &op)) != CKR_OK)
		return rv;
	if (!data && data_n)
		return leave(CKR_ARGUMENTS_BAD);
	sha_update(&op->h, data, data_n);
	if (!sig) /* not the last part */
		return leave(CKR_OK);
	op->in_msg = false;
	s->last_validation = 0;
	return leave(verify_final(&op->h, op->no_priv, sig, sig_n));
}

static CK_RV msg_final(CK_SESSION_HANDLE h, bool sign)
{
	struct session *s;
	struct msig_op *op;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	op = sign ? &s->msign : &s->mverify;
	if (!op->active)
		return leave(CKR_OPERATION_NOT_INITIALIZED);
	memset(op, 0, sizeof *op);
	return leave(CKR_OK);
}

CK_RV C_MessageSignFinal(CK_SESSION_HANDLE h) { return msg_final(h, true); }
CK_RV C_MessageVerifyFinal(CK_SESSION_HANDLE h) { return msg_final(h, false); }

/* ------------------------------------------------------------------ */
/* Message-based encryption with CKM_AES_GCM (the toy AEAD).          */

static CK_RV gcm_params(const void *param, CK_ULONG len, CK_GCM_MESSAGE_PARAMS *g)
{
	if (!param || len != sizeof *g)
		return CKR_MECHANISM_PARAM_INVALID;
	memcpy(g, param, sizeof *g);
	if (!g->pIv || g->ulIvLen == 0 || g->ulIvLen > MAX_IV || g->ulIvFixedBits > 8 * g->ulIvLen)
		return CKR_MECHANISM_PARAM_INVALID;
	if (!g->pTag || g->ulTagBits < 32 || g->ulTagBits > 128 || g->ulTagBits % 8)
		return CKR_MECHANISM_PARAM_INVALID;
	if (g->ivGenerator > CKG_GENERATE_COUNTER_XOR)
		return CKR_MECHANISM_PARAM_INVALID;
	return CKR_OK;
}

/* make_iv writes the message's IV into the caller's pIv: the first
 * ulIvFixedBits bits are the caller's, the rest come from the key's
 * counter (CKG_GENERATE, CKG_GENERATE_COUNTER: the counter, big-endian,
 * in the last bytes; CKG_GENERATE_COUNTER_XOR: XORed into the caller's;
 * CKG_GENERATE_RANDOM: SHA-256(key || counter)). */
static CK_RV make_iv(struct menc_op *op, const CK_GCM_MESSAGE_PARAMS *g)
{
	struct object *k = find_obj(op->key);
	uint8_t gen[MAX_IV] = { 0 };
	CK_ULONG n = g->ulIvLen;

	if (g->ivGenerator == CKG_NO_GENERATE)
		return CKR_OK;
	if (!k)
		return CKR_KEY_HANDLE_INVALID;
	uint64_t c = ++k->iv_counter;
	if (g->ivGenerator == CKG_GENERATE_RANDOM) {
		uint8_t ctr[8], sum[32];
		for (CK_ULONG i = 0; i < n; i += 32) {
			put_be64(ctr, c << 8 | i / 32);
			sha256_2(sum, k->value.p, k->value.n, ctr, sizeof ctr);
			memcpy(gen + i, sum, n - i < 32 ? n - i : 32);
		}
	} else {
		for (CK_ULONG i = 0; i < 8 && i < n; i++)
			gen[n - 1 - i] = (uint8_t)(c >> (8 * i));
	}
	for (CK_ULONG i = 0; i < n; i++) {
		CK_ULONG fixed = g->ulIvFixedBits;
		uint8_t keep = fixed >= 8 * (i + 1) ? 0xff : fixed <= 8 * i ? 0 : (uint8_t)(0xff << (8 - (fixed - 8 * i)));
		if (g->ivGenerator == CKG_GENERATE_COUNTER_XOR)
			g->pIv[i] ^= gen[i] & (uint8_t)~keep;
		else
			g->pIv[i] = (g->pIv[i] & keep) | (gen[i] & (uint8_t)~keep);
	}
	return CKR_OK;
}

static CK_RV menc_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE hk, bool enc)
{
	struct session *s;
	struct menc_op *op;
	struct object *k;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	op = enc ? &s->menc : &s->mdec;
	if (!m)
		return leave(CKR_ARGUMENTS_BAD);
	if (op->active)
		return leave(CKR_OPERATION_ACTIVE);
	if (m->mechanism != CKM_AES_GCM)
		return leave(CKR_MECHANISM_INVALID);
	if (m->pParameter || m->ulParameterLen) /* the parameters come with each message */
		return leave(CKR_MECHANISM_PARAM_INVALID);
	if (!(k = find_obj(hk)))
		return leave(CKR_KEY_HANDLE_INVALID);
	if (k->cls != CKO_SECRET_KEY || k->ktype != CKK_AES)
		return leave(CKR_KEY_TYPE_INCONSISTENT);
	if (!(k->usage & (enc ? U_ENCRYPT : U_DECRYPT)))
		return leave(CKR_KEY_FUNCTION_NOT_PERMITTED);
	memset(op, 0, sizeof *op);
	op->key = hk;
	memcpy(op->key_value, k->value.p, k->value.n);
	op->key_n = k->value.n;
	op->active = true;
	return leave(CKR_OK);
}

CK_RV C_MessageEncryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE hk) { return menc_init(h, m, hk, true); }
CK_RV C_MessageDecryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE hk) { return menc_init(h, m, hk, false); }

static CK_RV menc_enter(CK_SESSION_HANDLE h, bool enc, bool begun, struct session **s, struct menc_op **op)
{
	CK_RV rv;

	if ((rv = enter(h, s)) != CKR_OK)
		return rv;
	*op = enc ? &(*s)->menc : &(*s)->mdec;
	if (!(*op)->active || (begun && !(*op)->in_msg))
		return leave(CKR_OPERATION_NOT_INITIALIZED);
	if (!begun && (*op)->in_msg)
		return leave(CKR_OPERATION_ACTIVE);
	return CKR_OK;
}

/* out_len follows the length conventions for an output of need bytes;
 * CKR_OK with out != NULL means the output fits. */
static CK_RV out_len(CK_BYTE_PTR out, CK_ULONG_PTR out_n, CK_ULONG need)
{
	if (!out) {
		*out_n = need;
		return CKR_OK;
	}
	if (*out_n < need) {
		*out_n = need;
		return CKR_BUFFER_TOO_SMALL;
	}
	return CKR_OK;
}

/* gcm_one is C_EncryptMessage and C_DecryptMessage. */
static CK_RV gcm_one(CK_SESSION_HANDLE h, bool enc, CK_VOID_PTR param, CK_ULONG param_n, CK_BYTE_PTR aad,
		     CK_ULONG aad_n, CK_BYTE_PTR in, CK_ULONG in_n, CK_BYTE_PTR out, CK_ULONG_PTR out_n)
{
	struct session *s;
	struct menc_op *op;
	CK_GCM_MESSAGE_PARAMS g;
	struct aead a;
	CK_RV rv;

	if ((rv = menc_enter(h, enc, false, &s, &op)) != CKR_OK)
		return rv;
	if ((rv = gcm_params(param, param_n, &g)) != CKR_OK)
		return leave(rv);
	if ((!aad && aad_n) || (!in && in_n) || !out_n)
		return leave(CKR_ARGUMENTS_BAD);
	if ((rv = out_len(out, out_n, in_n)) != CKR_OK || !out)
		return leave(rv); /* no IV is made for a length query */
	if (enc && (rv = make_iv(op, &g)) != CKR_OK)
		return leave(rv);
	aead_start(&a, op->key_value, op->key_n, g.pIv, g.ulIvLen, aad, aad_n);
	if (enc) {
		aead_xor(&a, in, out, in_n);
		sha_update(&a.tag, out, in_n);
		aead_tag(&a, g.pTag, g.ulTagBits / 8);
	} else {
		uint8_t tag[32];
		sha_update(&a.tag, in, in_n);
		aead_tag(&a, tag, g.ulTagBits / 8);
		if (memcmp(tag, g.pTag, g.ulTagBits / 8) != 0)
			return leave(CKR_ENCRYPTED_DATA_INVALID); /* no plaintext for a bad tag */
		aead_xor(&a, in, out, in_n);
	}
	*out_n = in_n;
	s->last_validation = 0;
	return leave(CKR_OK);
}

CK_RV C_EncryptMessage(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_n, CK_BYTE_PTR aad, CK_ULONG aad_n,
		       CK_BYTE_PTR pt, CK_ULONG pt_n, CK_BYTE_PTR ct, CK_ULONG_PTR ct_n)
{
	return gcm_one(h, true, param, param_n, aad, aad_n, pt, pt_n, ct, ct_n);
}

CK_RV C_DecryptMessage(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_n, CK_BYTE_PTR aad, CK_ULONG aad_n,
		       CK_BYTE_PTR ct, CK_ULONG ct_n, CK_BYTE_PTR pt, CK_ULONG_PTR pt_n)
{
	return gcm_one(h, false, param, param_n, aad, aad_n, ct, ct_n, pt, pt_n);
}

/* ...Begin takes the IV (and makes it, encrypting) and the associated data. */
static CK_RV gcm_begin(CK_SESSION_HANDLE h, bool enc, CK_VOID_PTR param, CK_ULONG param_n, CK_BYTE_PTR aad,
		       CK_ULONG aad_n)
{
	struct session *s;
	struct menc_op *op;
	CK_GCM_MESSAGE_PARAMS g;
	CK_RV rv;

	if ((rv = menc_enter(h, enc, false, &s, &op)) != CKR_OK)
		return rv;
	if ((rv = gcm_params(param, param_n, &g)) != CKR_OK)
		return leave(rv);
	if (!aad && aad_n)
		return leave(CKR_ARGUMENTS_BAD);
	if (enc && (rv = make_iv(op, &g)) != CKR_OK)
		return leave(rv);
	aead_start(&op->a, op->key_value, op->key_n, g.pIv, g.ulIvLen, aad, aad_n);
	op->tag_bits = g.ulTagBits;
	op->in_msg = true;
	return leave(CKR_OK);
}

CK_RV C_EncryptMessageBegin(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_n, CK_BYTE_PTR aad, CK_ULONG aad_n)
{
	return gcm_begin(h, true, param, param_n, aad, aad_n);
}

CK_RV C_DecryptMessageBegin(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_n, CK_BYTE_PTR aad, CK_ULONG aad_n)
{
	return gcm_begin(h, false, param, param_n, aad, aad_n);
}

/* ...Next: the parameter is read on the last part only (flags has
 * CKF_END_OF_MESSAGE): its pTag receives the tag (encrypting) or holds
 * it (decrypting); the tag length is the one given to ...Begin. */
static CK_RV gcm_next(CK_SESSION_HANDLE h, bool enc, CK_VOID_PTR param, CK_ULONG param_n, CK_BYTE_PTR in,
		      CK_ULONG in_n, CK_BYTE_PTR out, CK_ULONG_PTR out_n, CK_FLAGS flags)
{
	struct session *s;
	struct menc_op *op;
	CK_GCM_MESSAGE_PARAMS g;
	bool last = flags & CKF_END_OF_MESSAGE;
	CK_RV rv;

	if ((rv = menc_enter(h, enc, true, &s, &op)) != CKR_OK)
		return rv;
	if ((flags & ~CKF_END_OF_MESSAGE) || (!in && in_n) || !out_n)
		return leave(CKR_ARGUMENTS_BAD);
	if (last && (rv = gcm_params(param, param_n, &g)) != CKR_OK)
		return leave(rv);
	if ((rv = out_len(out, out_n, in_n)) != CKR_OK || !out)
		return leave(rv);
	if (enc) {
		aead_xor(&op->a, in, out, in_n);
		sha_update(&op->a.tag, out, in_n);
		if (last)
			aead_tag(&op->a, g.pTag, op->tag_bits / 8);
	} else {
		sha_update(&op->a.tag, in, in_n);
		if (last) {
			uint8_t tag[32];
			aead_tag(&op->a, tag, op->tag_bits / 8);
			if (memcmp(tag, g.pTag, op->tag_bits / 8) != 0) {
				op->in_msg = false;
				return leave(CKR_ENCRYPTED_DATA_INVALID);
			}
		}
		aead_xor(&op->a, in, out, in_n);
	}
	*out_n = in_n;
	if (last) {
		op->in_msg = false;
		s->last_validation = 0;
	}
	return leave(CKR_OK);
}

CK_RV C_EncryptMessageNext(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_n, CK_BYTE_PTR pt, CK_ULONG pt_n,
			   CK_BYTE_PTR ct, CK_ULONG_PTR ct_n, CK_FLAGS flags)
{
	return gcm_next(h, true, param, param_n, pt, pt_n, ct, ct_n, flags);
}

CK_RV C_DecryptMessageNext(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_n, CK_BYTE_PTR ct, CK_ULONG ct_n,
			   CK_BYTE_PTR pt, CK_ULONG_PTR pt_n, CK_FLAGS flags)
{
	return gcm_next(h, false, param, param_n, ct, ct_n, pt, pt_n, flags);
}

static CK_RV menc_final(CK_SESSION_HANDLE h, bool enc)
{
	struct session *s;
	struct menc_op *op;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	op = enc ? &s->menc : &s->mdec;
	if (!op->active)
		return leave(CKR_OPERATION_NOT_INITIALIZED);
	memset(op, 0, sizeof *op);
	return leave(CKR_OK);
}

CK_RV C_MessageEncryptFinal(CK_SESSION_HANDLE h) { return menc_final(h, true); }
CK_RV C_MessageDecryptFinal(CK_SESSION_HANDLE h) { return menc_final(h, false); }

/* ------------------------------------------------------------------ */
/* Toy ML-KEM: ciphertext = 48 deterministic bytes, shared secret =
 * SHA-256(public value || ciphertext), public value = SHA-256(private).  */

/* kem_tmpl reads the template of the secret key made: a CKK_GENERIC_SECRET
 * (default) or CKK_AES key of CKA_VALUE_LEN (default 32) bytes, the
 * first bytes of the shared secret. */
static CK_RV kem_tmpl(CK_ATTRIBUTE_PTR t, CK_ULONG n, struct tmpl *tp, CK_KEY_TYPE *kt, CK_ULONG *len)
{
	CK_RV rv;

	if ((rv = parse_tmpl(t, n, tp)) != CKR_OK)
		return rv;
	if ((tp->seen & T_CLASS) && tp->cls != CKO_SECRET_KEY)
		return CKR_TEMPLATE_INCONSISTENT;
	*kt = (tp->seen & T_KTYPE) ? tp->ktype : CKK_GENERIC_SECRET;
	if (*kt != CKK_GENERIC_SECRET && *kt != CKK_AES)
		return CKR_TEMPLATE_INCONSISTENT;
	if (tp->seen & T_VALUE)
		return CKR_TEMPLATE_INCONSISTENT;
	*len = (tp->seen & T_VALUE_LEN) ? tp->value_len : KEM_SS_LEN;
	if (*len > KEM_SS_LEN || !secret_len_ok(*kt, *len))
		return CKR_ATTRIBUTE_VALUE_INVALID;
	return CKR_OK;
}

static CK_RV kem_mech(CK_MECHANISM_PTR m)
{
	if (m->mechanism != CKM_ML_KEM)
		return CKR_MECHANISM_INVALID;
	if (m->pParameter || m->ulParameterLen)
		return CKR_MECHANISM_PARAM_INVALID;
	return CKR_OK;
}

CK_RV C_EncapsulateKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE hpub, CK_ATTRIBUTE_PTR t,
		       CK_ULONG n, CK_BYTE_PTR ct, CK_ULONG_PTR ct_n, CK_OBJECT_HANDLE_PTR ph)
{
	struct session *s;
	struct object *pub, *o;
	struct tmpl tp;
	CK_KEY_TYPE kt;
	CK_ULONG len;
	uint8_t c[KEM_CT_LEN], ss[32];
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!m || !ct_n || !ph)
		return leave(CKR_ARGUMENTS_BAD);
	if ((rv = kem_mech(m)) != CKR_OK)
		return leave(rv);
	if (!(pub = find_obj(hpub)))
		return leave(CKR_KEY_HANDLE_INVALID);
	if (pub->cls != CKO_PUBLIC_KEY || pub->ktype != CKK_ML_KEM)
		return leave(CKR_KEY_TYPE_INCONSISTENT);
	if ((rv = kem_tmpl(t, n, &tp, &kt, &len)) != CKR_OK)
		return leave(rv);
	if ((rv = out_len(ct, ct_n, KEM_CT_LEN)) != CKR_OK || !ct)
		return leave(rv); /* a length query makes no key */
	uint64_t saved = det_counter;
	det_bytes(c, sizeof c);
	sha256_2(ss, pub->value.p, pub->value.n, c, sizeof c);
	if ((rv = new_object(s, &tp, CKO_SECRET_KEY, kt, ss, len, false, &o)) != CKR_OK) {
		det_counter = saved; /* a failed call leaves no trace */
		return leave(rv);
	}
	memcpy(ct, c, sizeof c);
	*ct_n = KEM_CT_LEN;
	*ph = o->handle;
	s->last_validation = 0;
	return leave(CKR_OK);
}

CK_RV C_DecapsulateKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE hpriv, CK_ATTRIBUTE_PTR t,
		       CK_ULONG n, CK_BYTE_PTR ct, CK_ULONG ct_n, CK_OBJECT_HANDLE_PTR ph)
{
	struct session *s;
	struct object *priv, *o;
	struct tmpl tp;
	CK_KEY_TYPE kt;
	CK_ULONG len;
	uint8_t pub[PUB_LEN], ss[32];
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!m || !ct || !ph)
		return leave(CKR_ARGUMENTS_BAD);
	if ((rv = kem_mech(m)) != CKR_OK)
		return leave(rv);
	if (!(priv = find_obj(hpriv)))
		return leave(CKR_KEY_HANDLE_INVALID);
	if (priv->cls != CKO_PRIVATE_KEY || priv->ktype != CKK_ML_KEM)
		return leave(CKR_KEY_TYPE_INCONSISTENT);
	if ((rv = kem_tmpl(t, n, &tp, &kt, &len)) != CKR_OK)
		return leave(rv);
	if (ct_n != KEM_CT_LEN)
		return leave(CKR_ENCRYPTED_DATA_LEN_RANGE);
	sha256_2(pub, priv->value.p, priv->value.n, NULL, 0);
	sha256_2(ss, pub, sizeof pub, ct, ct_n);
	if ((rv = new_object(s, &tp, CKO_SECRET_KEY, kt, ss, len, false, &o)) != CKR_OK)
		return leave(rv);
	*ph = o->handle;
	s->last_validation = 0;
	return leave(CKR_OK);
}

/* ------------------------------------------------------------------ */
/* Authenticated key wrapping with CKM_AES_GCM: the mechanism parameter is
 * the 12-byte IV itself; wrapped = toy AEAD ciphertext of the key's value
 * || 16-byte tag, the associated data authenticated.                 */

static CK_RV wrap_mech(CK_MECHANISM_PTR m)
{
	if (m->mechanism != CKM_AES_GCM)
		return CKR_MECHANISM_INVALID;
	if (!m->pParameter || m->ulParameterLen != WRAP_IV_LEN)
		return CKR_MECHANISM_PARAM_INVALID;
	return CKR_OK;
}

CK_RV C_WrapKeyAuthenticated(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE hw, CK_OBJECT_HANDLE hk,
			     CK_BYTE_PTR aad, CK_ULONG aad_n, CK_BYTE_PTR out, CK_ULONG_PTR out_n)
{
	struct session *s;
	struct object *w, *k;
	struct aead a;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!m || !out_n || (!aad && aad_n))
		return leave(CKR_ARGUMENTS_BAD);
	if ((rv = wrap_mech(m)) != CKR_OK)
		return leave(rv);
	if (!(w = find_obj(hw)))
		return leave(CKR_WRAPPING_KEY_HANDLE_INVALID);
	if (w->cls != CKO_SECRET_KEY || w->ktype != CKK_AES)
		return leave(CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
	if (!(w->usage & U_WRAP))
		return leave(CKR_KEY_FUNCTION_NOT_PERMITTED);
	if (!(k = find_obj(hk)))
		return leave(CKR_KEY_HANDLE_INVALID);
	if (k->cls != CKO_SECRET_KEY)
		return leave(CKR_KEY_NOT_WRAPPABLE);
	if (!k->extractable)
		return leave(CKR_KEY_UNEXTRACTABLE);
	CK_ULONG need = k->value.n + WRAP_TAG_LEN;
	if ((rv = out_len(out, out_n, need)) != CKR_OK || !out)
		return leave(rv);
	aead_start(&a, w->value.p, w->value.n, m->pParameter, WRAP_IV_LEN, aad, aad_n);
	aead_xor(&a, k->value.p, out, k->value.n);
	sha_update(&a.tag, out, k->value.n);
	aead_tag(&a, out + k->value.n, WRAP_TAG_LEN);
	*out_n = need;
	s->last_validation = 0;
	return leave(CKR_OK);
}

CK_RV C_UnwrapKeyAuthenticated(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE hu, CK_BYTE_PTR wrapped,
			       CK_ULONG wrapped_n, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_BYTE_PTR aad, CK_ULONG aad_n,
			       CK_OBJECT_HANDLE_PTR ph)
{
	struct session *s;
	struct object *u, *o;
	struct tmpl tp;
	struct aead a;
	uint8_t tag[WRAP_TAG_LEN], value[MAX_KEY];
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!m || !wrapped || !ph || (!aad && aad_n))
		return leave(CKR_ARGUMENTS_BAD);
	if ((rv = wrap_mech(m)) != CKR_OK)
		return leave(rv);
	if (!(u = find_obj(hu)))
		return leave(CKR_UNWRAPPING_KEY_HANDLE_INVALID);
	if (u->cls != CKO_SECRET_KEY || u->ktype != CKK_AES)
		return leave(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT);
	if (!(u->usage & U_UNWRAP))
		return leave(CKR_KEY_FUNCTION_NOT_PERMITTED);
	if ((rv = parse_tmpl(t, n, &tp)) != CKR_OK)
		return leave(rv);
	/* Raw key bytes say nothing of the key: the template must. */
	if (!(tp.seen & T_CLASS) || !(tp.seen & T_KTYPE))
		return leave(CKR_TEMPLATE_INCOMPLETE);
	if (tp.cls != CKO_SECRET_KEY || (tp.ktype != CKK_AES && tp.ktype != CKK_GENERIC_SECRET) ||
	    (tp.seen & T_VALUE))
		return leave(CKR_TEMPLATE_INCONSISTENT);
	if (wrapped_n <= WRAP_TAG_LEN || wrapped_n - WRAP_TAG_LEN > MAX_KEY ||
	    !secret_len_ok(tp.ktype, wrapped_n - WRAP_TAG_LEN))
		return leave(CKR_WRAPPED_KEY_LEN_RANGE);
	CK_ULONG len = wrapped_n - WRAP_TAG_LEN;
	if ((tp.seen & T_VALUE_LEN) && tp.value_len != len)
		return leave(CKR_TEMPLATE_INCONSISTENT);
	aead_start(&a, u->value.p, u->value.n, m->pParameter, WRAP_IV_LEN, aad, aad_n);
	sha_update(&a.tag, wrapped, len);
	aead_tag(&a, tag, WRAP_TAG_LEN);
	if (memcmp(tag, wrapped + len, WRAP_TAG_LEN) != 0)
		return leave(CKR_WRAPPED_KEY_INVALID);
	aead_xor(&a, wrapped, value, len);
	if ((rv = new_object(s, &tp, CKO_SECRET_KEY, tp.ktype, value, len, false, &o)) != CKR_OK)
		return leave(rv);
	*ph = o->handle;
	s->last_validation = 0;
	return leave(CKR_OK);
}

/* ------------------------------------------------------------------ */
/* Session cancel, validation flags, asynchronous calls.              */

CK_RV C_SessionCancel(CK_SESSION_HANDLE h, CK_FLAGS flags)
{
	struct session *s;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (flags & CKF_SIGN) {
		memset(&s->sign, 0, sizeof s->sign);
		struct pending *p = pending_of(s->handle, "C_Sign");
		if (p)
			drop_pending(p);
	}
	if (flags & CKF_VERIFY) {
		memset(&s->verify, 0, sizeof s->verify);
		memset(&s->vsig, 0, sizeof s->vsig);
	}
	if (flags & CKF_MESSAGE_SIGN)
		memset(&s->msign, 0, sizeof s->msign);
	if (flags & CKF_MESSAGE_VERIFY)
		memset(&s->mverify, 0, sizeof s->mverify);
	if (flags & CKF_MESSAGE_ENCRYPT)
		memset(&s->menc, 0, sizeof s->menc);
	if (flags & CKF_MESSAGE_DECRYPT)
		memset(&s->mdec, 0, sizeof s->mdec);
	if ((flags & CKF_FIND_OBJECTS) && s->find.active) {
		free(s->find.h);
		memset(&s->find, 0, sizeof s->find);
	}
	if (flags & CKF_GENERATE) {
		struct pending *p = pending_of(s->handle, "C_GenerateKey");
		if (p)
			drop_pending(p);
	}
	/* CKF_ENCAPSULATE, CKF_DECAPSULATE, CKF_WRAP ... are single calls:
	 * there is never anything of theirs left to cancel. */
	return leave(CKR_OK);
}

CK_RV C_GetSessionValidationFlags(CK_SESSION_HANDLE h, CK_SESSION_VALIDATION_FLAGS_TYPE type, CK_FLAGS *flags)
{
	struct session *s;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!flags || type != CKS_LAST_VALIDATION_OK)
		return leave(CKR_ARGUMENTS_BAD);
	*flags = s->last_validation;
	return leave(CKR_OK);
}

/* function_name returns our copy of a known function's name, or NULL. */
static const char *function_name(const CK_UTF8CHAR *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof function_names / sizeof function_names[0]; i++)
		if (strncmp((const char *)name, function_names[i], 64) == 0)
			return function_names[i];
	return NULL;
}

CK_RV C_AsyncComplete(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR name, CK_ASYNC_DATA_PTR result)
{
	struct session *s;
	struct pending *p;
	const char *fn;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!(fn = function_name(name)))
		return leave(CKR_ARGUMENTS_BAD);
	if (!(p = pending_of(s->handle, fn)))
		return leave(CKR_OPERATION_NOT_INITIALIZED);
	if (p->polls > 0) {
		p->polls--;
		return leave(CKR_PENDING); /* result untouched */
	}
	if (p->out)
		memcpy(p->out, p->result, p->result_n);
	struct object *o = p->obj ? find_any(p->obj) : NULL;
	if (o) {
		o->hidden = false;
		if (!o->token)
			o->owner = s->handle;
	}
	if (result) {
		result->ulVersion = 0;
		result->pValue = p->out;
		result->ulValue = p->result_n;
		result->hObject = p->obj;
		result->hAdditionalObject = CK_INVALID_HANDLE;
	}
	s->last_validation = strcmp(fn, "C_Sign") == 0 ? MOD32_VALIDATED : 0;
	memset(p, 0, sizeof *p);
	return leave(CKR_OK);
}

/* C_AsyncGetID detaches the call from its session and from the caller's
 * buffer (the caller may free it now); C_AsyncJoin attaches it again. */
CK_RV C_AsyncGetID(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR name, CK_ULONG_PTR id)
{
	struct session *s;
	struct pending *p;
	const char *fn;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!(fn = function_name(name)) || !id)
		return leave(CKR_ARGUMENTS_BAD);
	if (!(p = pending_of(s->handle, fn)))
		return leave(CKR_OPERATION_NOT_INITIALIZED);
	p->id = next_async_id++;
	p->owner = 0;
	p->out = NULL;
	struct object *o = p->obj ? find_any(p->obj) : NULL;
	if (o && !o->token)
		o->owner = 0;
	*id = p->id;
	return leave(CKR_OK);
}

CK_RV C_AsyncJoin(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR name, CK_ULONG id, CK_BYTE_PTR data, CK_ULONG data_n)
{
	struct session *s;
	struct pending *p = NULL;
	const char *fn;
	CK_RV rv;

	if ((rv = enter(h, &s)) != CKR_OK)
		return rv;
	if (!(fn = function_name(name)))
		return leave(CKR_ARGUMENTS_BAD);
	for (int i = 0; i < MAX_PENDING && !p; i++)
		if (pendings[i].used && pendings[i].id == id && pendings[i].owner == 0 &&
		    strcmp(pendings[i].fn, fn) == 0)
			p = &pendings[i];
	if (!p || id == 0)
		return leave(CKR_SAVED_STATE_INVALID);
	if (pending_of(s->handle, fn))
		return leave(CKR_OPERATION_ACTIVE);
	if (p->result_n > 0) {
		/* ulData is passed by value: no length can come back, so a NULL
		 * buffer is an error rather than a length query. */
		if (!data)
			return leave(CKR_ARGUMENTS_BAD);
		if (data_n < p->result_n)
			return leave(CKR_BUFFER_TOO_SMALL);
		p->out = data;
	}
	p->owner = s->handle;
	struct object *o = p->obj ? find_any(p->obj) : NULL;
	if (o && !o->token)
		o->owner = s->handle;
	return leave(CKR_OK);
}

/* ------------------------------------------------------------------ */
/* Everything else: present in the lists, not supported.              */

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"

#define UNSUPPORTED(name, args)                \
	CK_RV name args                        \
	{                                      \
		return CKR_FUNCTION_NOT_SUPPORTED; \
	}

UNSUPPORTED(C_InitToken, (CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_n, CK_UTF8CHAR_PTR label))
UNSUPPORTED(C_InitPIN, (CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR pin, CK_ULONG pin_n))
UNSUPPORTED(C_SetPIN, (CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR old, CK_ULONG old_n, CK_UTF8CHAR_PTR pin, CK_ULONG pin_n))
UNSUPPORTED(C_GetOperationState, (CK_SESSION_HANDLE h, CK_BYTE_PTR state, CK_ULONG_PTR state_n))
UNSUPPORTED(C_SetOperationState, (CK_SESSION_HANDLE h, CK_BYTE_PTR state, CK_ULONG state_n, CK_OBJECT_HANDLE ek,
				  CK_OBJECT_HANDLE ak))
UNSUPPORTED(C_CopyObject, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n,
			   CK_OBJECT_HANDLE_PTR ph))
UNSUPPORTED(C_GetObjectSize, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ULONG_PTR size))
UNSUPPORTED(C_SetAttributeValue, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n))
UNSUPPORTED(C_EncryptInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k))
UNSUPPORTED(C_Encrypt, (CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_n, CK_BYTE_PTR out, CK_ULONG_PTR out_n))
UNSUPPORTED(C_EncryptUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_n, CK_BYTE_PTR out, CK_ULONG_PTR out_n))
UNSUPPORTED(C_EncryptFinal, (CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR out_n))
UNSUPPORTED(C_DecryptInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k))
UNSUPPORTED(C_Decrypt, (CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_n, CK_BYTE_PTR out, CK_ULONG_PTR out_n))
UNSUPPORTED(C_DecryptUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_n, CK_BYTE_PTR out, CK_ULONG_PTR out_n))
UNSUPPORTED(C_DecryptFinal, (CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR out_n))
UNSUPPORTED(C_DigestInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m))
UNSUPPORTED(C_Digest, (CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_n, CK_BYTE_PTR out, CK_ULONG_PTR out_n))
UNSUPPORTED(C_DigestUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_n))
UNSUPPORTED(C_DigestKey, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE k))
UNSUPPORTED(C_DigestFinal, (CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR out_n))
UNSUPPORTED(C_SignRecoverInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k))
UNSUPPORTED(C_SignRecover, (CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_n, CK_BYTE_PTR out, CK_ULONG_PTR out_n))
UNSUPPORTED(C_VerifyRecoverInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k))
UNSUPPORTED(C_VerifyRecover, (CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_n, CK_BYTE_PTR out, CK_ULONG_PTR out_n))
UNSUPPORTED(C_DigestEncryptUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_n, CK_BYTE_PTR out,
				    CK_ULONG_PTR out_n))
UNSUPPORTED(C_DecryptDigestUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_n, CK_BYTE_PTR out,
				    CK_ULONG_PTR out_n))
UNSUPPORTED(C_SignEncryptUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_n, CK_BYTE_PTR out,
				  CK_ULONG_PTR out_n))
UNSUPPORTED(C_DecryptVerifyUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_n, CK_BYTE_PTR out,
				    CK_ULONG_PTR out_n))
UNSUPPORTED(C_WrapKey, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE w, CK_OBJECT_HANDLE k,
			CK_BYTE_PTR out, CK_ULONG_PTR out_n))
UNSUPPORTED(C_UnwrapKey, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE u, CK_BYTE_PTR in,
			  CK_ULONG in_n, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR ph))
UNSUPPORTED(C_DeriveKey, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k, CK_ATTRIBUTE_PTR t,
			  CK_ULONG n, CK_OBJECT_HANDLE_PTR ph))
UNSUPPORTED(C_SeedRandom, (CK_SESSION_HANDLE h, CK_BYTE_PTR seed_, CK_ULONG seed_n))
UNSUPPORTED(C_GenerateRandom, (CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG out_n))
UNSUPPORTED(C_WaitForSlotEvent, (CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved))

/* The legacy parallel-function calls answer what 2.40 prescribes. */
CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE h) { return CKR_FUNCTION_NOT_PARALLEL; }
CK_RV C_CancelFunction(CK_SESSION_HANDLE h) { return CKR_FUNCTION_NOT_PARALLEL; }

#pragma GCC diagnostic pop
