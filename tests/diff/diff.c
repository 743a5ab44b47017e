/* diff: differential harness for libp11isolate.so.
 *
 *   diff run MODULE LOG        run the scripted call sequences against MODULE
 *                              (SoftHSM2 itself, or libp11isolate.so in front of
 *                              it) and write one observation per line to LOG
 *   diff run3 TARGET MODULE LOG
 *                              the PKCS#11 3.x script against MODULE (TARGET
 *                              softokn: NSS softokn, 3.0; mod32: tests/mod32,
 *                              3.2; or libp11isolate.so in front of it); the
 *                              vendor's C_Initialize pReserved, if any, comes
 *                              from DIFF_INIT_RESERVED
 *   diff run3-forked TARGET MODULE LOG
 *                              the same script and probes in processes
 *                              forked from a parent that used MODULE first
 *                              (two parents: see below)
 *   diff compare LOG_A LOG_B   compare two logs line by line, print every
 *                              difference and a summary per area
 *
 * The same script runs on both sides, each in its own process on its own
 * freshly made token (same label and PINs). A log line is
 *   AREA <TAB> STEP <TAB> OBSERVATION
 * Observations hold CKR names, returned lengths and counts, output bytes in
 * hex where the output is deterministic (fixed keys, fixed IVs), attribute
 * values and lengths. Non-deterministic results are normalized: slot IDs
 * and token serials (SoftHSM derives slot IDs from random serials) are
 * replaced by names, object and session handles are recorded as "set" or
 * by the name of the object they denote, random outputs by their length,
 * and randomized signatures and ciphertexts are checked on the side that
 * made them (verify / decrypt there, record the CKR or the plaintext).
 * Lines starting with '#' are notes: printed by compare, never counted.
 *
 * A run is a supervisor process that never loads the module. It forks one
 * process for the main script (every area, in order, on one token) and one
 * per probe (a call that crashed a process during development, alone in a
 * fresh process: initialized, logged in, with an AES and an RSA key), and
 * records how each process ended ("supervisor" area). A crash of the module,
 * or of the proxy inside the application, is thereby an observation.
 * "run-forked" is the same run with a supervisor that loads, initializes,
 * uses and finalizes the module first: every process of the run is then a
 * child forked after the module was loaded (libp11isolate.so runs there
 * without Go, on its C path).
 *
 * Areas: preinit (every function before C_Initialize), initargs
 * (C_Initialize's arguments, C_Finalize), general (info, slots, tokens,
 * C_WaitForSlotEvent), mechinfo, token (C_InitToken on the free slot,
 * C_InitPIN, C_SetPIN), session (sessions, login, every function with
 * handles that name nothing), objects (fixed keys, attributes, nested
 * templates, C_SetAttributeValue, C_CopyObject, C_GetObjectSize,
 * C_DestroyObject), find, digest, cipher, sign (with recovery), wrap,
 * derive, keygen, random, state (C_Get/SetOperationState), dual,
 * parallel (C_GetFunctionStatus, C_CancelFunction), finalize (and a second
 * C_Initialize), coverage (functions called; each listed mechanism
 * exercised, refused by the vendor, or not exercised), probes.
 *
 * run3 (PKCS#11 3.0 and 3.2) is a script of its own, for a module that
 * offers a "PKCS 11" interface of version 3.0 or later: areas interfaces
 * (C_GetInterfaceList with the probe protocol, each "PKCS 11" interface's
 * version, flags and function count; C_GetInterface by name, version and
 * flags; vendor-defined interfaces, which the proxy does not offer, are
 * notes), init (C_Initialize through the 3.x list, C_GetInfo through
 * every interface's list, slots, tokens), session, login (C_LoginUser),
 * keys (fixed values), gcm (message-based AES-GCM: counter, random and
 * the caller's IVs, the IV and tag written back, decryption, wrong tags),
 * chacha (ChaCha20-Poly1305 messages), multipart (C_EncryptMessageBegin/
 * Next, CKF_END_OF_MESSAGE), cancel (C_SessionCancel, then the next call),
 * noinit (every message function with no operation), and on a 3.2 list:
 * pairs (ML-KEM, ML-DSA), kem (C_EncapsulateKey/C_DecapsulateKey: both
 * secrets' values), mldsa, verifysig (C_VerifySignature*), validation
 * (C_GetSessionValidationFlags), msgsign, wrapauth (C_WrapKeyAuthenticated,
 * C_UnwrapKeyAuthenticated), async (CKF_ASYNC_SESSION: CKR_PENDING,
 * C_AsyncComplete, C_AsyncGetID, C_AsyncJoin: the result in the caller's
 * buffer, CK_ASYNC_DATA.pValue naming it); then finalize and coverage.
 * Handles are logged as "new", "unchanged" or "same object as NAME".
 *
 * run3-forked runs the 3.x script and its probes in children of two
 * parent processes (each forked by the supervisor, which still never loads
 * the module), their areas prefixed with the parent's name: "ifparent/"
 * (the parent called C_GetInterfaceList and C_GetInterface only: through
 * the proxy, a host started just to learn the interfaces, which a child
 * must not use; after its children it asks again and initializes) and
 * "initparent/" (the parent initialized the module through the 3.x list,
 * opened a session and encrypted a message with AES-GCM, the session and
 * the message operation kept across the fork; after its children it
 * encrypts the same message in that session again, compared with the
 * first). The child of an initialized parent takes
 * CKR_CRYPTOKI_ALREADY_INITIALIZED from its C_Initialize as success, the
 * code itself compared (SoftHSM2, softokn and mod32 directly answer so;
 * the proxy answers so by design), and notes what the state it inherited
 * is to it: a module loaded directly may let the child use it, the proxy
 * does not (README). A parent's area "parent" holds its own observations.
 *
 * Output calls follow a probe protocol (see yrun): a NULL-buffer length
 * query, capacity 0, capacity one short (each must leave the buffer alone
 * and return the required length), then the exact capacity; the bytes past
 * the returned length must stay untouched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "pkcs11_3x.h" /* cshim/: the 3.0 and 3.2 types and constants */
#ifndef CKA_PARAMETER_SET
#define CKA_PARAMETER_SET 0x0000061dUL
#endif
#ifndef CKS_LAST_VALIDATION_OK
#define CKS_LAST_VALIDATION_OK 0x00000001UL /* the one CK_SESSION_VALIDATION_FLAGS_TYPE of 3.2 */
#endif

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define NAME_TABLE_CKR \
	N(CKR_OK) N(CKR_CANCEL) N(CKR_HOST_MEMORY) \
	N(CKR_SLOT_ID_INVALID) N(CKR_GENERAL_ERROR) N(CKR_FUNCTION_FAILED) \
	N(CKR_ARGUMENTS_BAD) N(CKR_NO_EVENT) N(CKR_NEED_TO_CREATE_THREADS) \
	N(CKR_CANT_LOCK) N(CKR_ATTRIBUTE_READ_ONLY) N(CKR_ATTRIBUTE_SENSITIVE) \
	N(CKR_ATTRIBUTE_TYPE_INVALID) N(CKR_ATTRIBUTE_VALUE_INVALID) N(CKR_ACTION_PROHIBITED) \
	N(CKR_DATA_INVALID) N(CKR_DATA_LEN_RANGE) N(CKR_DEVICE_ERROR) \
	N(CKR_DEVICE_MEMORY) N(CKR_DEVICE_REMOVED) N(CKR_ENCRYPTED_DATA_INVALID) \
	N(CKR_ENCRYPTED_DATA_LEN_RANGE) N(CKR_FUNCTION_CANCELED) N(CKR_FUNCTION_NOT_PARALLEL) \
	N(CKR_FUNCTION_NOT_SUPPORTED) N(CKR_KEY_HANDLE_INVALID) N(CKR_KEY_SIZE_RANGE) \
	N(CKR_KEY_TYPE_INCONSISTENT) N(CKR_KEY_NOT_NEEDED) N(CKR_KEY_CHANGED) \
	N(CKR_KEY_NEEDED) N(CKR_KEY_INDIGESTIBLE) N(CKR_KEY_FUNCTION_NOT_PERMITTED) \
	N(CKR_KEY_NOT_WRAPPABLE) N(CKR_KEY_UNEXTRACTABLE) N(CKR_MECHANISM_INVALID) \
	N(CKR_MECHANISM_PARAM_INVALID) N(CKR_OBJECT_HANDLE_INVALID) N(CKR_OPERATION_ACTIVE) \
	N(CKR_OPERATION_NOT_INITIALIZED) N(CKR_PIN_INCORRECT) N(CKR_PIN_INVALID) \
	N(CKR_PIN_LEN_RANGE) N(CKR_PIN_EXPIRED) N(CKR_PIN_LOCKED) \
	N(CKR_SESSION_CLOSED) N(CKR_SESSION_COUNT) N(CKR_SESSION_HANDLE_INVALID) \
	N(CKR_SESSION_PARALLEL_NOT_SUPPORTED) N(CKR_SESSION_READ_ONLY) N(CKR_SESSION_EXISTS) \
	N(CKR_SESSION_READ_ONLY_EXISTS) N(CKR_SESSION_READ_WRITE_SO_EXISTS) N(CKR_SIGNATURE_INVALID) \
	N(CKR_SIGNATURE_LEN_RANGE) N(CKR_TEMPLATE_INCOMPLETE) N(CKR_TEMPLATE_INCONSISTENT) \
	N(CKR_TOKEN_NOT_PRESENT) N(CKR_TOKEN_NOT_RECOGNIZED) N(CKR_TOKEN_WRITE_PROTECTED) \
	N(CKR_UNWRAPPING_KEY_SIZE_RANGE) N(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT) N(CKR_USER_ALREADY_LOGGED_IN) \
	N(CKR_USER_NOT_LOGGED_IN) N(CKR_USER_PIN_NOT_INITIALIZED) N(CKR_USER_TYPE_INVALID) \
	N(CKR_USER_ANOTHER_ALREADY_LOGGED_IN) N(CKR_USER_TOO_MANY_TYPES) N(CKR_WRAPPED_KEY_INVALID) \
	N(CKR_WRAPPED_KEY_LEN_RANGE) N(CKR_WRAPPING_KEY_HANDLE_INVALID) N(CKR_WRAPPING_KEY_SIZE_RANGE) \
	N(CKR_WRAPPING_KEY_TYPE_INCONSISTENT) N(CKR_RANDOM_SEED_NOT_SUPPORTED) N(CKR_RANDOM_NO_RNG) \
	N(CKR_DOMAIN_PARAMS_INVALID) N(CKR_CURVE_NOT_SUPPORTED) N(CKR_BUFFER_TOO_SMALL) \
	N(CKR_SAVED_STATE_INVALID) N(CKR_INFORMATION_SENSITIVE) N(CKR_STATE_UNSAVEABLE) \
	N(CKR_CRYPTOKI_NOT_INITIALIZED) N(CKR_CRYPTOKI_ALREADY_INITIALIZED) N(CKR_MUTEX_BAD) \
	N(CKR_MUTEX_NOT_LOCKED) N(CKR_NEW_PIN_MODE) N(CKR_NEXT_OTP) \
	N(CKR_EXCEEDED_MAX_ITERATIONS) N(CKR_FIPS_SELF_TEST_FAILED) N(CKR_LIBRARY_LOAD_FAILED) \
	N(CKR_PIN_TOO_WEAK) N(CKR_PUBLIC_KEY_INVALID) N(CKR_FUNCTION_REJECTED) \
	

#define NAME_TABLE_CKM \
	N(CKM_RSA_PKCS_KEY_PAIR_GEN) N(CKM_RSA_PKCS) N(CKM_RSA_9796) \
	N(CKM_RSA_X_509) N(CKM_MD2_RSA_PKCS) N(CKM_MD5_RSA_PKCS) \
	N(CKM_SHA1_RSA_PKCS) N(CKM_RIPEMD128_RSA_PKCS) N(CKM_RIPEMD160_RSA_PKCS) \
	N(CKM_RSA_PKCS_OAEP) N(CKM_RSA_X9_31_KEY_PAIR_GEN) N(CKM_RSA_X9_31) \
	N(CKM_SHA1_RSA_X9_31) N(CKM_RSA_PKCS_PSS) N(CKM_SHA1_RSA_PKCS_PSS) \
	N(CKM_DSA_KEY_PAIR_GEN) N(CKM_DSA_SHA1) N(CKM_DSA_SHA224) \
	N(CKM_DSA_SHA256) N(CKM_DSA_SHA384) N(CKM_DSA_SHA512) \
	N(CKM_DH_PKCS_KEY_PAIR_GEN) N(CKM_DH_PKCS_DERIVE) N(CKM_X9_42_DH_DERIVE) \
	N(CKM_X9_42_DH_HYBRID_DERIVE) N(CKM_X9_42_MQV_DERIVE) N(CKM_SHA256_RSA_PKCS) \
	N(CKM_SHA384_RSA_PKCS) N(CKM_SHA512_RSA_PKCS) N(CKM_SHA256_RSA_PKCS_PSS) \
	N(CKM_SHA384_RSA_PKCS_PSS) N(CKM_SHA512_RSA_PKCS_PSS) N(CKM_SHA512_224) \
	N(CKM_SHA512_224_HMAC) N(CKM_SHA512_224_HMAC_GENERAL) N(CKM_SHA512_224_KEY_DERIVATION) \
	N(CKM_SHA512_256) N(CKM_SHA512_256_HMAC) N(CKM_SHA512_256_HMAC_GENERAL) \
	N(CKM_SHA512_256_KEY_DERIVATION) N(CKM_SHA512_T) N(CKM_SHA512_T_HMAC) \
	N(CKM_SHA512_T_HMAC_GENERAL) N(CKM_SHA512_T_KEY_DERIVATION) N(CKM_RC2_KEY_GEN) \
	N(CKM_RC2_ECB) N(CKM_RC2_MAC_GENERAL) N(CKM_RC2_CBC_PAD) \
	N(CKM_RC4_KEY_GEN) N(CKM_RC4) N(CKM_DES_KEY_GEN) \
	N(CKM_DES_ECB) N(CKM_DES_CBC) N(CKM_DES_MAC) \
	N(CKM_DES_MAC_GENERAL) N(CKM_DES_CBC_PAD) N(CKM_DES2_KEY_GEN) \
	N(CKM_DES3_KEY_GEN) N(CKM_DES3_ECB) N(CKM_DES3_CBC) \
	N(CKM_DES3_MAC) N(CKM_DES3_MAC_GENERAL) N(CKM_DES3_CBC_PAD) \
	N(CKM_DES3_CMAC_GENERAL) N(CKM_DES3_CMAC) N(CKM_CDMF_KEY_GEN) \
	N(CKM_CDMF_ECB) N(CKM_CDMF_CBC) N(CKM_CDMF_MAC) \
	N(CKM_CDMF_MAC_GENERAL) N(CKM_CDMF_CBC_PAD) N(CKM_DES_OFB64) \
	N(CKM_DES_OFB8) N(CKM_DES_CFB64) N(CKM_DES_CFB8) \
	N(CKM_MD2) N(CKM_MD2_HMAC) N(CKM_MD2_HMAC_GENERAL) \
	N(CKM_MD5) N(CKM_MD5_HMAC) N(CKM_MD5_HMAC_GENERAL) \
	N(CKM_SHA_1) N(CKM_SHA_1_HMAC) N(CKM_SHA_1_HMAC_GENERAL) \
	N(CKM_RIPEMD128) N(CKM_RIPEMD128_HMAC) N(CKM_RIPEMD128_HMAC_GENERAL) \
	N(CKM_RIPEMD160) N(CKM_RIPEMD160_HMAC) N(CKM_RIPEMD160_HMAC_GENERAL) \
	N(CKM_SHA256) N(CKM_SHA256_HMAC) N(CKM_SHA256_HMAC_GENERAL) \
	N(CKM_SHA384) N(CKM_SHA384_HMAC) N(CKM_SHA384_HMAC_GENERAL) \
	N(CKM_SHA512) N(CKM_SHA512_HMAC) N(CKM_SHA512_HMAC_GENERAL) \
	N(CKM_SECURID_KEY_GEN) N(CKM_SECURID) N(CKM_HOTP_KEY_GEN) \
	N(CKM_HOTP) N(CKM_ACTI) N(CKM_ACTI_KEY_GEN) \
	N(CKM_CAST_KEY_GEN) N(CKM_CAST_ECB) N(CKM_CAST_CBC) \
	N(CKM_CAST_MAC) N(CKM_CAST_MAC_GENERAL) N(CKM_CAST_CBC_PAD) \
	N(CKM_CAST3_KEY_GEN) N(CKM_CAST3_ECB) N(CKM_CAST3_CBC) \
	N(CKM_CAST3_MAC) N(CKM_CAST3_MAC_GENERAL) N(CKM_CAST3_CBC_PAD) \
	N(CKM_CAST5_KEY_GEN) N(CKM_CAST128_KEY_GEN) N(CKM_CAST5_ECB) \
	N(CKM_CAST128_ECB) N(CKM_CAST5_CBC) N(CKM_CAST128_CBC) \
	N(CKM_CAST5_MAC) N(CKM_CAST5_MAC_GENERAL) N(CKM_CAST128_MAC_GENERAL) \
	N(CKM_CAST5_CBC_PAD) N(CKM_CAST128_CBC_PAD) N(CKM_RC5_KEY_GEN) \
	N(CKM_RC5_ECB) N(CKM_RC5_CBC) N(CKM_RC5_MAC) \
	N(CKM_RC5_MAC_GENERAL) N(CKM_RC5_CBC_PAD) N(CKM_IDEA_KEY_GEN) \
	N(CKM_IDEA_ECB) N(CKM_IDEA_MAC) N(CKM_IDEA_MAC_GENERAL) \
	N(CKM_IDEA_CBC_PAD) N(CKM_GENERIC_SECRET_KEY_GEN) N(CKM_CONCATENATE_BASE_AND_KEY) \
	N(CKM_CONCATENATE_BASE_AND_DATA) N(CKM_CONCATENATE_DATA_AND_BASE) N(CKM_XOR_BASE_AND_DATA) \
	N(CKM_EXTRACT_KEY_FROM_KEY) N(CKM_SSL3_PRE_MASTER_KEY_GEN) N(CKM_SSL3_MASTER_KEY_DERIVE) \
	N(CKM_SSL3_KEY_AND_MAC_DERIVE) N(CKM_SSL3_MASTER_KEY_DERIVE_DH) N(CKM_TLS_PRE_MASTER_KEY_GEN) \
	N(CKM_TLS_MASTER_KEY_DERIVE) N(CKM_TLS_KEY_AND_MAC_DERIVE) N(CKM_TLS_MASTER_KEY_DERIVE_DH) \
	N(CKM_TLS_PRF) N(CKM_SSL3_MD5_MAC) N(CKM_SSL3_SHA1_MAC) \
	N(CKM_MD5_KEY_DERIVATION) N(CKM_MD2_KEY_DERIVATION) N(CKM_SHA1_KEY_DERIVATION) \
	N(CKM_SHA256_KEY_DERIVATION) N(CKM_SHA384_KEY_DERIVATION) N(CKM_SHA512_KEY_DERIVATION) \
	N(CKM_PBE_MD2_DES_CBC) N(CKM_PBE_MD5_DES_CBC) N(CKM_PBE_MD5_CAST_CBC) \
	N(CKM_PBE_MD5_CAST3_CBC) N(CKM_PBE_MD5_CAST5_CBC) N(CKM_PBE_MD5_CAST128_CBC) \
	N(CKM_PBE_SHA1_CAST5_CBC) N(CKM_PBE_SHA1_CAST128_CBC) N(CKM_PBE_SHA1_RC4_128) \
	N(CKM_PBE_SHA1_RC4_40) N(CKM_PBE_SHA1_DES3_EDE_CBC) N(CKM_PBE_SHA1_DES2_EDE_CBC) \
	N(CKM_PBE_SHA1_RC2_128_CBC) N(CKM_PBE_SHA1_RC2_40_CBC) N(CKM_PKCS5_PBKD2) \
	N(CKM_PBA_SHA1_WITH_SHA1_HMAC) N(CKM_WTLS_PRE_MASTER_KEY_GEN) N(CKM_WTLS_MASTER_KEY_DERIVE) \
	N(CKM_WTLS_MASTER_KEY_DERIVE_DH_ECC) N(CKM_WTLS_PRF) N(CKM_WTLS_SERVER_KEY_AND_MAC_DERIVE) \
	N(CKM_WTLS_CLIENT_KEY_AND_MAC_DERIVE) N(CKM_TLS10_MAC_SERVER) N(CKM_TLS10_MAC_CLIENT) \
	N(CKM_TLS12_MAC) N(CKM_TLS12_KDF) N(CKM_TLS12_MASTER_KEY_DERIVE) \
	N(CKM_TLS12_KEY_AND_MAC_DERIVE) N(CKM_TLS12_MASTER_KEY_DERIVE_DH) N(CKM_TLS12_KEY_SAFE_DERIVE) \
	N(CKM_TLS_MAC) N(CKM_TLS_KDF) N(CKM_KEY_WRAP_LYNKS) \
	N(CKM_KEY_WRAP_SET_OAEP) N(CKM_CMS_SIG) N(CKM_KIP_DERIVE) \
	N(CKM_KIP_WRAP) N(CKM_KIP_MAC) N(CKM_ARIA_KEY_GEN) \
	N(CKM_ARIA_ECB) N(CKM_ARIA_CBC) N(CKM_ARIA_MAC) \
	N(CKM_ARIA_MAC_GENERAL) N(CKM_ARIA_CBC_PAD) N(CKM_ARIA_ECB_ENCRYPT_DATA) \
	N(CKM_ARIA_CBC_ENCRYPT_DATA) N(CKM_SEED_KEY_GEN) N(CKM_SEED_ECB) \
	N(CKM_SEED_CBC) N(CKM_SEED_MAC) N(CKM_SEED_MAC_GENERAL) \
	N(CKM_SEED_CBC_PAD) N(CKM_SEED_ECB_ENCRYPT_DATA) N(CKM_SEED_CBC_ENCRYPT_DATA) \
	N(CKM_SKIPJACK_KEY_GEN) N(CKM_SKIPJACK_ECB64) N(CKM_SKIPJACK_CBC64) \
	N(CKM_SKIPJACK_OFB64) N(CKM_SKIPJACK_CFB64) N(CKM_SKIPJACK_CFB32) \
	N(CKM_SKIPJACK_CFB16) N(CKM_SKIPJACK_CFB8) N(CKM_SKIPJACK_WRAP) \
	N(CKM_SKIPJACK_PRIVATE_WRAP) N(CKM_SKIPJACK_RELAYX) N(CKM_KEA_KEY_PAIR_GEN) \
	N(CKM_KEA_KEY_DERIVE) N(CKM_FORTEZZA_TIMESTAMP) N(CKM_BATON_KEY_GEN) \
	N(CKM_BATON_ECB128) N(CKM_BATON_ECB96) N(CKM_BATON_CBC128) \
	N(CKM_BATON_COUNTER) N(CKM_BATON_SHUFFLE) N(CKM_BATON_WRAP) \
	N(CKM_ECDSA_KEY_PAIR_GEN) N(CKM_EC_KEY_PAIR_GEN) N(CKM_ECDSA) \
	N(CKM_ECDSA_SHA1) N(CKM_ECDSA_SHA224) N(CKM_ECDSA_SHA256) \
	N(CKM_ECDSA_SHA384) N(CKM_ECDSA_SHA512) N(CKM_ECDH1_DERIVE) \
	N(CKM_ECDH1_COFACTOR_DERIVE) N(CKM_ECMQV_DERIVE) N(CKM_ECDH_AES_KEY_WRAP) \
	N(CKM_RSA_AES_KEY_WRAP) N(CKM_JUNIPER_KEY_GEN) N(CKM_JUNIPER_ECB128) \
	N(CKM_JUNIPER_CBC128) N(CKM_JUNIPER_COUNTER) N(CKM_JUNIPER_SHUFFLE) \
	N(CKM_JUNIPER_WRAP) N(CKM_FASTHASH) N(CKM_AES_KEY_GEN) \
	N(CKM_AES_ECB) N(CKM_AES_CBC) N(CKM_AES_MAC) \
	N(CKM_AES_MAC_GENERAL) N(CKM_AES_CBC_PAD) N(CKM_AES_CTR) \
	N(CKM_AES_GCM) N(CKM_AES_CCM) N(CKM_AES_CTS) \
	N(CKM_AES_CMAC) N(CKM_AES_CMAC_GENERAL) N(CKM_AES_XCBC_MAC) \
	N(CKM_AES_XCBC_MAC_96) N(CKM_AES_GMAC) N(CKM_BLOWFISH_KEY_GEN) \
	N(CKM_BLOWFISH_CBC) N(CKM_TWOFISH_KEY_GEN) N(CKM_TWOFISH_CBC) \
	N(CKM_BLOWFISH_CBC_PAD) N(CKM_TWOFISH_CBC_PAD) N(CKM_DES_ECB_ENCRYPT_DATA) \
	N(CKM_DES_CBC_ENCRYPT_DATA) N(CKM_DES3_ECB_ENCRYPT_DATA) N(CKM_DES3_CBC_ENCRYPT_DATA) \
	N(CKM_AES_ECB_ENCRYPT_DATA) N(CKM_AES_CBC_ENCRYPT_DATA) N(CKM_GOSTR3410_KEY_PAIR_GEN) \
	N(CKM_GOSTR3410) N(CKM_GOSTR3410_WITH_GOSTR3411) N(CKM_GOSTR3410_KEY_WRAP) \
	N(CKM_GOSTR3410_DERIVE) N(CKM_GOSTR3411) N(CKM_GOSTR3411_HMAC) \
	N(CKM_GOST28147_KEY_GEN) N(CKM_GOST28147_ECB) N(CKM_GOST28147) \
	N(CKM_GOST28147_MAC) N(CKM_GOST28147_KEY_WRAP) N(CKM_DSA_PARAMETER_GEN) \
	N(CKM_DH_PKCS_PARAMETER_GEN) N(CKM_X9_42_DH_PARAMETER_GEN) N(CKM_DSA_PROBABLISTIC_PARAMETER_GEN) \
	N(CKM_DSA_SHAWE_TAYLOR_PARAMETER_GEN) N(CKM_AES_OFB) N(CKM_AES_CFB64) \
	N(CKM_AES_CFB8) N(CKM_AES_CFB128) N(CKM_AES_CFB1) \
	N(CKM_SHA224) N(CKM_SHA224_HMAC) N(CKM_SHA224_HMAC_GENERAL) \
	N(CKM_SHA224_RSA_PKCS) N(CKM_SHA224_RSA_PKCS_PSS) N(CKM_SHA224_KEY_DERIVATION) \
	N(CKM_CAMELLIA_KEY_GEN) N(CKM_CAMELLIA_ECB) N(CKM_CAMELLIA_CBC) \
	N(CKM_CAMELLIA_MAC) N(CKM_CAMELLIA_MAC_GENERAL) N(CKM_CAMELLIA_CBC_PAD) \
	N(CKM_CAMELLIA_ECB_ENCRYPT_DATA) N(CKM_CAMELLIA_CBC_ENCRYPT_DATA) N(CKM_CAMELLIA_CTR) \
	N(CKM_AES_KEY_WRAP) N(CKM_AES_KEY_WRAP_PAD) N(CKM_RSA_PKCS_TPM_1_1) \
	N(CKM_RSA_PKCS_OAEP_TPM_1_1) N(CKM_EC_EDWARDS_KEY_PAIR_GEN) N(CKM_EDDSA) \
	

#define NAME_TABLE_CKA \
	N(CKA_CLASS) N(CKA_TOKEN) N(CKA_PRIVATE) \
	N(CKA_LABEL) N(CKA_APPLICATION) N(CKA_VALUE) \
	N(CKA_OBJECT_ID) N(CKA_CERTIFICATE_TYPE) N(CKA_ISSUER) \
	N(CKA_SERIAL_NUMBER) N(CKA_AC_ISSUER) N(CKA_OWNER) \
	N(CKA_ATTR_TYPES) N(CKA_TRUSTED) N(CKA_CERTIFICATE_CATEGORY) \
	N(CKA_JAVA_MIDP_SECURITY_DOMAIN) N(CKA_URL) N(CKA_HASH_OF_SUBJECT_PUBLIC_KEY) \
	N(CKA_HASH_OF_ISSUER_PUBLIC_KEY) N(CKA_NAME_HASH_ALGORITHM) N(CKA_CHECK_VALUE) \
	N(CKA_KEY_TYPE) N(CKA_SUBJECT) N(CKA_ID) \
	N(CKA_SENSITIVE) N(CKA_ENCRYPT) N(CKA_DECRYPT) \
	N(CKA_WRAP) N(CKA_UNWRAP) N(CKA_SIGN) \
	N(CKA_SIGN_RECOVER) N(CKA_VERIFY) N(CKA_VERIFY_RECOVER) \
	N(CKA_DERIVE) N(CKA_START_DATE) N(CKA_END_DATE) \
	N(CKA_MODULUS) N(CKA_MODULUS_BITS) N(CKA_PUBLIC_EXPONENT) \
	N(CKA_PRIVATE_EXPONENT) N(CKA_PRIME_1) N(CKA_PRIME_2) \
	N(CKA_EXPONENT_1) N(CKA_EXPONENT_2) N(CKA_COEFFICIENT) \
	N(CKA_PUBLIC_KEY_INFO) N(CKA_PRIME) N(CKA_SUBPRIME) \
	N(CKA_BASE) N(CKA_PRIME_BITS) N(CKA_SUB_PRIME_BITS) \
	N(CKA_VALUE_BITS) N(CKA_VALUE_LEN) N(CKA_EXTRACTABLE) \
	N(CKA_LOCAL) N(CKA_NEVER_EXTRACTABLE) N(CKA_ALWAYS_SENSITIVE) \
	N(CKA_KEY_GEN_MECHANISM) N(CKA_MODIFIABLE) N(CKA_COPYABLE) \
	N(CKA_DESTROYABLE) N(CKA_ECDSA_PARAMS) N(CKA_EC_PARAMS) \
	N(CKA_EC_POINT) N(CKA_SECONDARY_AUTH) N(CKA_AUTH_PIN_FLAGS) \
	N(CKA_ALWAYS_AUTHENTICATE) N(CKA_WRAP_WITH_TRUSTED) N(CKA_OTP_FORMAT) \
	N(CKA_OTP_LENGTH) N(CKA_OTP_TIME_INTERVAL) N(CKA_OTP_USER_FRIENDLY_MODE) \
	N(CKA_OTP_CHALLENGE_REQUIREMENT) N(CKA_OTP_TIME_REQUIREMENT) N(CKA_OTP_COUNTER_REQUIREMENT) \
	N(CKA_OTP_PIN_REQUIREMENT) N(CKA_OTP_USER_IDENTIFIER) N(CKA_OTP_SERVICE_IDENTIFIER) \
	N(CKA_OTP_SERVICE_LOGO) N(CKA_OTP_SERVICE_LOGO_TYPE) N(CKA_OTP_COUNTER) \
	N(CKA_OTP_TIME) N(CKA_GOSTR3410_PARAMS) N(CKA_GOSTR3411_PARAMS) \
	N(CKA_GOST28147_PARAMS) N(CKA_HW_FEATURE_TYPE) N(CKA_RESET_ON_INIT) \
	N(CKA_HAS_RESET) N(CKA_PIXEL_X) N(CKA_PIXEL_Y) \
	N(CKA_RESOLUTION) N(CKA_CHAR_ROWS) N(CKA_CHAR_COLUMNS) \
	N(CKA_COLOR) N(CKA_BITS_PER_PIXEL) N(CKA_CHAR_SETS) \
	N(CKA_ENCODING_METHODS) N(CKA_MIME_TYPES) N(CKA_MECHANISM_TYPE) \
	N(CKA_REQUIRED_CMS_ATTRIBUTES) N(CKA_DEFAULT_CMS_ATTRIBUTES) N(CKA_SUPPORTED_CMS_ATTRIBUTES) \
	N(CKA_WRAP_TEMPLATE) N(CKA_UNWRAP_TEMPLATE) N(CKA_DERIVE_TEMPLATE) \
	N(CKA_ALLOWED_MECHANISMS)

struct name {
	unsigned long v;
	const char *n;
};
#define N(x) {x, #x},
static const struct name ckr_names[] = {
	NAME_TABLE_CKR
	/* 2.40 values <p11-kit/pkcs11.h> does not name */
	{0xf0UL, "CKR_UNWRAPPING_KEY_HANDLE_INVALID"},
	{0x1b8UL, "CKR_TOKEN_RESOURCE_EXCEEDED"},
	/* 3.0 and 3.2 */
	{0x201UL, "CKR_TOKEN_RESOURCE_EXCEEDED"},
	{0x202UL, "CKR_OPERATION_CANCEL_FAILED"},
	{0x203UL, "CKR_KEY_EXHAUSTED"},
	{0x204UL, "CKR_PENDING"},
	{0x205UL, "CKR_SESSION_ASYNC_NOT_SUPPORTED"},
	{0x206UL, "CKR_SEED_RANDOM_REQUIRED"},
	{0x207UL, "CKR_OPERATION_NOT_VALIDATED"},
	{0x208UL, "CKR_TOKEN_NOT_INITIALIZED"},
	{0x209UL, "CKR_PARAMETER_SET_NOT_SUPPORTED"},
};
static const struct name ckm_names[] = {
	NAME_TABLE_CKM
	/* 3.0 and 3.2 mechanisms the 3.x script uses */
	N(CKM_CHACHA20_KEY_GEN) N(CKM_CHACHA20_POLY1305) N(CKM_ML_KEM_KEY_PAIR_GEN) N(CKM_ML_KEM)
	N(CKM_ML_DSA_KEY_PAIR_GEN) N(CKM_ML_DSA) N(CKM_HASH_ML_DSA_SHA256)
};
static const struct name cka_names[] = {
	NAME_TABLE_CKA
	/* 3.2 attributes the 3.x script reads */
	N(CKA_PARAMETER_SET)
};
#undef N

/* A small pool of rotating string buffers for formatted values. */
static char *pool_take(size_t n)
{
	static char *bufs[4096];
	static unsigned idx;
	idx = (idx + 1) % ARRAY_LEN(bufs);
	free(bufs[idx]);
	bufs[idx] = malloc(n);
	if (!bufs[idx]) {
		fprintf(stderr, "diff: out of memory\n");
		exit(2);
	}
	return bufs[idx];
}

static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...)
{
	va_list ap;
	char probe_buf[1];
	va_start(ap, f);
	int n = vsnprintf(probe_buf, sizeof probe_buf, f, ap);
	va_end(ap);
	char *s = pool_take((size_t)n + 1);
	va_start(ap, f);
	vsnprintf(s, (size_t)n + 1, f, ap);
	va_end(ap);
	return s;
}

static const char *lookup(const struct name *t, size_t n, unsigned long v, const char *pfx)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].v == v)
			return t[i].n;
	return fmt("%s0x%lx", pfx, v);
}
static const char *rvn(CK_RV rv) { return lookup(ckr_names, ARRAY_LEN(ckr_names), rv, "CKR_"); }
static const char *mechn(CK_MECHANISM_TYPE m) { return lookup(ckm_names, ARRAY_LEN(ckm_names), m, "CKM_"); }
static const char *attrn(CK_ATTRIBUTE_TYPE a) { return lookup(cka_names, ARRAY_LEN(cka_names), a, "CKA_"); }

static const char *hex(const void *p, size_t n)
{
	const unsigned char *b = p;
	if (!p)
		return "NULL";
	char *s = pool_take(2 * n + 2);
	for (size_t i = 0; i < n; i++)
		sprintf(s + 2 * i, "%02x", b[i]);
	if (n == 0)
		strcpy(s, "-");
	return s;
}

/* A fixed-width PKCS#11 text field, trailing blanks cut, quoted. */
static const char *txt(const unsigned char *p, size_t n)
{
	while (n > 0 && p[n - 1] == ' ')
		n--;
	char *s = pool_take(n * 4 + 3);
	size_t j = 0;
	s[j++] = '"';
	for (size_t i = 0; i < n; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
			s[j++] = (char)p[i];
		else
			j += (size_t)sprintf(s + j, "\\x%02x", p[i]);
	}
	s[j++] = '"';
	s[j] = 0;
	return s;
}

static const char *ulong_s(CK_ULONG v)
{
	if (v == CK_UNAVAILABLE_INFORMATION)
		return "UNAVAILABLE";
	return fmt("%lu", v);
}

/* ------------------------------------------------------------------ */
/* The log                                                             */

static FILE *logf_;
static const char *cur_area = "start";
static char area_prefix[32]; /* run3-forked: the parent's behaviour, before every area's name */
static char area_buf[96];
static char last_step[160];
static unsigned long n_lines;

static void rec(const char *step, const char *f, ...) __attribute__((format(printf, 2, 3)));
static void rec(const char *step, const char *f, ...)
{
	va_list ap;
	fprintf(logf_, "%s\t%s\t", cur_area, step);
	va_start(ap, f);
	vfprintf(logf_, f, ap);
	va_end(ap);
	fputc('\n', logf_);
	fflush(logf_);
	snprintf(last_step, sizeof last_step, "%s", step);
	n_lines++;
}

/* A note: shown by compare when the sides differ, never counted. */
static void note(const char *step, const char *f, ...) __attribute__((format(printf, 2, 3)));
static void note(const char *step, const char *f, ...)
{
	va_list ap;
	fprintf(logf_, "#%s\t%s\t", cur_area, step);
	va_start(ap, f);
	vfprintf(logf_, f, ap);
	va_end(ap);
	fputc('\n', logf_);
	fflush(logf_);
}

static void rrv(const char *step, CK_RV rv) { rec(step, "rv=%s", rvn(rv)); }

/* rec, or note when as_note: an observation where the vendor itself
 * departs from the specification and the proxy, by design, does not. */
static void rec_or_note(int as_note, const char *step, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void rec_or_note(int as_note, const char *step, const char *f, ...)
{
	char buf[8192];
	va_list ap;
	va_start(ap, f);
	vsnprintf(buf, sizeof buf, f, ap);
	va_end(ap);
	if (as_note)
		note(step, "%s", buf);
	else
		rec(step, "%s", buf);
}

/* A hang is an observation too: the watchdog writes where it happened. */
static void on_alarm(int sig)
{
	(void)sig;
	char buf[400];
	int n = snprintf(buf, sizeof buf, "%s\twatchdog\tTIMEOUT after step %s\n", cur_area, last_step);
	if (n > 0 && logf_)
		(void)!write(fileno(logf_), buf, (size_t)n);
	_exit(3);
}

static void set_area(const char *a, unsigned seconds)
{
	snprintf(area_buf, sizeof area_buf, "%s%s", area_prefix, a);
	cur_area = area_buf;
	snprintf(last_step, sizeof last_step, "(start of area)");
	alarm(seconds);
}

/* ------------------------------------------------------------------ */
/* Function coverage: every call goes through P(name).                 */

static const char *const func_names[] = {
	"C_Initialize", "C_Finalize", "C_GetInfo", "C_GetFunctionList", "C_GetSlotList",
	"C_GetSlotInfo", "C_GetTokenInfo", "C_GetMechanismList", "C_GetMechanismInfo",
	"C_InitToken", "C_InitPIN", "C_SetPIN", "C_OpenSession", "C_CloseSession",
	"C_CloseAllSessions", "C_GetSessionInfo", "C_GetOperationState", "C_SetOperationState",
	"C_Login", "C_Logout", "C_CreateObject", "C_CopyObject", "C_DestroyObject",
	"C_GetObjectSize", "C_GetAttributeValue", "C_SetAttributeValue", "C_FindObjectsInit",
	"C_FindObjects", "C_FindObjectsFinal", "C_EncryptInit", "C_Encrypt", "C_EncryptUpdate",
	"C_EncryptFinal", "C_DecryptInit", "C_Decrypt", "C_DecryptUpdate", "C_DecryptFinal",
	"C_DigestInit", "C_Digest", "C_DigestUpdate", "C_DigestKey", "C_DigestFinal",
	"C_SignInit", "C_Sign", "C_SignUpdate", "C_SignFinal", "C_SignRecoverInit",
	"C_SignRecover", "C_VerifyInit", "C_Verify", "C_VerifyUpdate", "C_VerifyFinal",
	"C_VerifyRecoverInit", "C_VerifyRecover", "C_DigestEncryptUpdate",
	"C_DecryptDigestUpdate", "C_SignEncryptUpdate", "C_DecryptVerifyUpdate",
	"C_GenerateKey", "C_GenerateKeyPair", "C_WrapKey", "C_UnwrapKey", "C_DeriveKey",
	"C_SeedRandom", "C_GenerateRandom", "C_GetFunctionStatus", "C_CancelFunction",
	"C_WaitForSlotEvent",
};
static unsigned long func_calls[ARRAY_LEN(func_names)];

/* tally counts a call of name in a coverage table (names, calls, n). */
static void tally(const char *const *names, unsigned long *calls, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0) {
			calls[i]++;
			return;
		}
	fprintf(stderr, "diff: unknown function %s\n", name);
	exit(2);
}

static void hit(const char *name) { tally(func_names, func_calls, ARRAY_LEN(func_names), name); }

static CK_FUNCTION_LIST_PTR F;
#define P(fn) (hit(#fn), F->fn)

/* ------------------------------------------------------------------ */
/* Mechanism coverage                                                  */

#define MAX_MECHS 256
static CK_MECHANISM_TYPE listed[MAX_MECHS];
static CK_ULONG n_listed;
static struct mech_use {
	CK_MECHANISM_TYPE m;
	unsigned ok, refused;
	CK_RV last_refusal;
} uses[MAX_MECHS];
static size_t n_uses;

static void mech_used(CK_MECHANISM_TYPE m, CK_RV rv)
{
	size_t i;
	for (i = 0; i < n_uses; i++)
		if (uses[i].m == m)
			break;
	if (i == n_uses) {
		if (n_uses == MAX_MECHS)
			return;
		uses[n_uses++].m = m;
	}
	if (rv == CKR_OK)
		uses[i].ok++;
	else {
		uses[i].refused++;
		uses[i].last_refusal = rv;
	}
}

static int is_listed(CK_MECHANISM_TYPE m)
{
	for (CK_ULONG i = 0; i < n_listed; i++)
		if (listed[i] == m)
			return 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Fixed key material (generated once with OpenSSL; test keys only)   */

static const CK_BYTE rsa_n[256] = {
	0xc0, 0x0e, 0x57, 0x2b, 0x44, 0x60, 0x76, 0x87, 0x73, 0x34, 0x53, 0xb8, 0xef, 0xb4, 0xa7, 0xce,
	0x5c, 0x2d, 0xfe, 0x92, 0x7f, 0x83, 0x17, 0xda, 0xde, 0x2c, 0xdd, 0xf2, 0x7a, 0x25, 0xb6, 0xdd,
	0x31, 0x21, 0x85, 0x90, 0xa7, 0xcf, 0x73, 0xe4, 0xb3, 0x37, 0xa3, 0xf8, 0xa2, 0xa8, 0xe0, 0x5c,
	0x76, 0x7f, 0xb3, 0xe5, 0xbb, 0x92, 0x42, 0x42, 0x47, 0x21, 0x43, 0x77, 0xbd, 0x22, 0x73, 0x60,
	0xb9, 0xbb, 0x5b, 0x4a, 0xfe, 0x6c, 0xaf, 0xdc, 0x21, 0x8a, 0x4d, 0x7b, 0x7f, 0x57, 0x0a, 0xe9,
	0x21, 0x57, 0x7d, 0x8f, 0x6b, 0x3d, 0xb5, 0x2f, 0x94, 0xda, 0xbf, 0x89, 0x52, 0x0e, 0x38, 0x7b,
	0x80, 0x3d, 0xa0, 0x04, 0xe2, 0x98, 0xa6, 0x7b, 0xd8, 0x5f, 0x14, 0xd2, 0x8c, 0xae, 0xe6, 0xab,
	0x65, 0x32, 0x3d, 0x22, 0x7a, 0x18, 0x96, 0x96, 0x53, 0x3f, 0xbc, 0xeb, 0x7d, 0xe3, 0x18, 0x25,
	0x39, 0x8d, 0x74, 0xb8, 0x04, 0x99, 0x1e, 0x9b, 0xfd, 0x95, 0x4f, 0x50, 0x54, 0x82, 0xe1, 0xd9,
	0x9a, 0x86, 0x13, 0x23, 0x0d, 0xd3, 0x1c, 0x71, 0x54, 0x52, 0x6d, 0x1c, 0x75, 0xe0, 0xc2, 0x9d,
	0x7a, 0x2b, 0x1c, 0x0c, 0xd2, 0x07, 0x27, 0x38, 0xeb, 0xd4, 0xd3, 0x91, 0x8b, 0x40, 0xcc, 0x74,
	0x32, 0x56, 0xaf, 0x0d, 0x87, 0x2c, 0x44, 0xfb, 0x99, 0x3a, 0xaf, 0x41, 0x97, 0x88, 0xe9, 0xa0,
	0xb5, 0xf3, 0x51, 0xee, 0x80, 0xbe, 0x39, 0x0f, 0x92, 0xe2, 0xa9, 0x61, 0xde, 0x8e, 0x3e, 0xe0,
	0xbe, 0x57, 0x85, 0x2a, 0x40, 0x40, 0x98, 0x9f, 0xfa, 0x13, 0x0c, 0x38, 0x24, 0x20, 0xae, 0x58,
	0x42, 0x46, 0x32, 0x89, 0x3f, 0xfa, 0x0b, 0xe6, 0x80, 0x4e, 0x6e, 0xff, 0x5d, 0xde, 0x49, 0x15,
	0xf9, 0xad, 0x48, 0x0e, 0x27, 0x65, 0xf3, 0xff, 0x53, 0xe6, 0xac, 0x80, 0x24, 0x73, 0x24, 0x19,
};
static const CK_BYTE rsa_e[3] = {
	0x01, 0x00, 0x01,
};
static const CK_BYTE rsa_d[256] = {
	0x00, 0x62, 0xd6, 0xfe, 0x85, 0x85, 0xeb, 0x1f, 0x15, 0x16, 0x75, 0x17, 0xa1, 0x55, 0xbb, 0xe3,
	0xa0, 0x90, 0x50, 0x1b, 0x73, 0xc9, 0xab, 0xed, 0xda, 0xf5, 0xfc, 0xa1, 0x3c, 0xe9, 0x1f, 0xff,
	0xbc, 0x56, 0x4c, 0xaa, 0x30, 0x88, 0x2c, 0x7b, 0xb8, 0x77, 0x83, 0x6b, 0x1f, 0xca, 0x96, 0x9e,
	0xe0, 0xf7, 0x1b, 0x41, 0xba, 0x39, 0x8e, 0x4c, 0x0b, 0x50, 0x10, 0x0e, 0x68, 0xd1, 0x2d, 0xa9,
	0xb3, 0x5d, 0xe2, 0xce, 0x59, 0x0a, 0x17, 0x65, 0x6a, 0x24, 0xd8, 0xc8, 0x87, 0x86, 0x41, 0x85,
	0x9b, 0xf5, 0x4c, 0xd1, 0x91, 0xbd, 0xdf, 0x44, 0x1f, 0xf8, 0xbb, 0x9b, 0x57, 0x50, 0xa3, 0x80,
	0xee, 0x0e, 0x51, 0xa8, 0xc8, 0xda, 0xd5, 0x34, 0xd9, 0x07, 0xc1, 0xe7, 0x35, 0x74, 0xb1, 0x8e,
	0x85, 0x26, 0xcf, 0x74, 0x27, 0x0a, 0x2f, 0x1d, 0x50, 0xc0, 0x07, 0x4d, 0x72, 0xe4, 0x96, 0xbb,
	0x15, 0x88, 0x90, 0x40, 0x06, 0x9e, 0xc5, 0xf4, 0x11, 0xce, 0x43, 0x7d, 0xc3, 0xdf, 0x3a, 0x33,
	0xcb, 0x2e, 0x2a, 0x9c, 0x59, 0xa1, 0xf0, 0x03, 0xdc, 0x69, 0x54, 0x8e, 0xdf, 0x51, 0x6c, 0x7b,
	0x90, 0xa1, 0xa8, 0x84, 0x32, 0x15, 0xee, 0x92, 0x3a, 0x13, 0xcd, 0xee, 0x63, 0x2d, 0xb3, 0xae,
	0x35, 0xc2, 0xd0, 0x53, 0xfe, 0x44, 0xa2, 0x09, 0xdb, 0x4e, 0xce, 0x52, 0x82, 0x26, 0x22, 0xd2,
	0xbc, 0x9b, 0x81, 0xc0, 0xab, 0x45, 0x3a, 0x05, 0x80, 0x55, 0xb5, 0x8d, 0x35, 0x65, 0x56, 0x15,
	0x54, 0x50, 0xa5, 0x19, 0x7f, 0xfe, 0x1d, 0x03, 0x81, 0xd5, 0xcc, 0x00, 0x8f, 0xf7, 0xd1, 0x54,
	0x44, 0x01, 0x14, 0x6c, 0x34, 0xa6, 0x79, 0xda, 0x82, 0x26, 0x7d, 0x8e, 0x9a, 0x40, 0xd3, 0x15,
	0xe0, 0x7e, 0x4c, 0xee, 0x17, 0x37, 0x71, 0x23, 0xf3, 0xae, 0x6a, 0x70, 0x98, 0xff, 0x1e, 0x81,
};
static const CK_BYTE rsa_p[128] = {
	0xec, 0xc2, 0xb4, 0xa8, 0x44, 0x3e, 0x77, 0xef, 0xa3, 0x68, 0x39, 0x88, 0xb7, 0xa8, 0x0c, 0x99,
	0x04, 0xa1, 0x1f, 0x99, 0x7a, 0xed, 0x81, 0x97, 0xfc, 0x24, 0xe1, 0xb6, 0x06, 0xbf, 0x26, 0xc0,
	0x57, 0xbc, 0x4d, 0x2c, 0xa0, 0x63, 0x64, 0x83, 0x86, 0x09, 0x70, 0x1a, 0x1a, 0x4a, 0x6f, 0xe7,
	0x8f, 0x02, 0xce, 0x87, 0xf6, 0xda, 0xf3, 0xa3, 0x4d, 0xbc, 0x3c, 0xc1, 0x08, 0xcd, 0x58, 0xa7,
	0xcd, 0xc5, 0x0e, 0x37, 0xc0, 0xd0, 0x5d, 0xa9, 0xe7, 0xc2, 0xd3, 0xf4, 0x12, 0x9e, 0x9a, 0x59,
	0x77, 0xc5, 0xe8, 0x7d, 0xad, 0xb2, 0xe5, 0x2a, 0x2c, 0x89, 0xf0, 0x5c, 0x45, 0x52, 0xae, 0x30,
	0x6f, 0x85, 0x0b, 0xf6, 0x2b, 0xf9, 0x43, 0x09, 0x89, 0xf3, 0x48, 0x02, 0x84, 0x25, 0x72, 0xdf,
	0x89, 0xf8, 0xfc, 0x6e, 0x1e, 0x23, 0x5d, 0x2c, 0xf4, 0x7f, 0xe9, 0x03, 0xa3, 0x17, 0x43, 0xd9,
};
static const CK_BYTE rsa_q[128] = {
	0xcf, 0xa9, 0xa7, 0x1d, 0x1e, 0x7f, 0x6d, 0x2c, 0x17, 0x76, 0xd4, 0xa1, 0x80, 0xb1, 0xe2, 0x53,
	0xc2, 0x2d, 0x40, 0x41, 0xb1, 0x6d, 0x55, 0x4a, 0x2f, 0x7c, 0xc8, 0xb2, 0xf0, 0xbd, 0xed, 0x7e,
	0xac, 0x71, 0x6f, 0x76, 0x95, 0x75, 0xcb, 0x24, 0xd5, 0xf2, 0x3b, 0xbf, 0x1f, 0x2e, 0x03, 0x56,
	0xd4, 0xd4, 0x6e, 0xbd, 0xb9, 0xd9, 0x39, 0x13, 0x9d, 0x45, 0xd8, 0x63, 0x77, 0x9e, 0xf5, 0xc6,
	0x09, 0x39, 0xb5, 0x87, 0x19, 0x83, 0x64, 0x6d, 0x3b, 0xf5, 0xca, 0xe6, 0xda, 0xe8, 0x65, 0x8a,
	0xdf, 0xa2, 0xc7, 0xa0, 0x3f, 0xc0, 0xb1, 0xc4, 0xca, 0x84, 0x14, 0xd8, 0x87, 0x1d, 0x16, 0xd3,
	0x23, 0x34, 0xe7, 0xd7, 0x6e, 0x00, 0xc6, 0xf3, 0x4c, 0xd3, 0x38, 0x4b, 0x6d, 0x89, 0x8b, 0x7f,
	0xa2, 0x5d, 0x7d, 0xde, 0xe6, 0xb5, 0x05, 0xc8, 0x84, 0x93, 0xb4, 0x66, 0xc4, 0xf1, 0xfa, 0x41,
};
static const CK_BYTE rsa_dp[128] = {
	0x36, 0x2c, 0xc7, 0x51, 0xc9, 0x6b, 0xd1, 0xdd, 0xcf, 0xb2, 0x45, 0x97, 0xf7, 0x0e, 0x48, 0xf3,
	0xaa, 0x8f, 0x83, 0xbf, 0x86, 0xd5, 0x59, 0xd6, 0x01, 0x28, 0x1f, 0x4d, 0x9b, 0x75, 0x99, 0xd4,
	0x61, 0x3f, 0x01, 0x19, 0xb9, 0x09, 0x85, 0x32, 0x63, 0x35, 0x3d, 0xa5, 0x7b, 0x66, 0x94, 0xfc,
	0x93, 0x48, 0xbd, 0x21, 0x77, 0x66, 0xda, 0x60, 0xff, 0xa4, 0x96, 0xf2, 0x44, 0xa5, 0x58, 0x27,
	0xed, 0x79, 0xad, 0xab, 0x2c, 0x3f, 0x81, 0x6f, 0x23, 0x4c, 0xfd, 0x5a, 0xd7, 0xf7, 0xda, 0xb1,
	0xa6, 0x2a, 0x6e, 0xec, 0x73, 0x16, 0x80, 0x41, 0x8a, 0x37, 0x75, 0xfc, 0x67, 0x10, 0x68, 0x33,
	0x45, 0x11, 0x58, 0x8f, 0x57, 0xb8, 0x8d, 0x92, 0x5d, 0x32, 0x81, 0xc3, 0xb1, 0xa1, 0x30, 0x0b,
	0xde, 0x72, 0x4e, 0xb0, 0x93, 0xcc, 0xdb, 0xc1, 0x31, 0xa1, 0x23, 0x1c, 0x65, 0xf1, 0x28, 0xe1,
};
static const CK_BYTE rsa_dq[128] = {
	0x82, 0xc6, 0x9c, 0x6f, 0x42, 0x1d, 0x8d, 0x6b, 0x0e, 0xfb, 0xce, 0xbc, 0x46, 0x87, 0xbf, 0xb8,
	0x6f, 0xb8, 0x7f, 0x96, 0xdf, 0x5d, 0xb3, 0x30, 0x9c, 0xe7, 0x40, 0x9d, 0x2f, 0xee, 0xeb, 0xf9,
	0xb2, 0x2f, 0x5d, 0xba, 0x98, 0x35, 0x2e, 0x51, 0x6c, 0x4a, 0xb8, 0x45, 0x8c, 0x25, 0x36, 0x05,
	0x20, 0xd3, 0x07, 0x4a, 0x84, 0x17, 0xc0, 0x52, 0x11, 0xe1, 0x42, 0x7c, 0xa1, 0x80, 0x81, 0xd6,
	0xcd, 0x48, 0x82, 0x81, 0x2a, 0x18, 0x0c, 0xce, 0x9d, 0xcc, 0x14, 0x93, 0x7d, 0x98, 0x8d, 0x19,
	0xff, 0xec, 0x4b, 0x3b, 0x27, 0xea, 0xfa, 0x08, 0xac, 0x60, 0xb1, 0xa0, 0x0a, 0xb6, 0xcf, 0x00,
	0xf8, 0x53, 0x01, 0x0e, 0x32, 0x40, 0x5b, 0x0a, 0x2d, 0x7f, 0x77, 0x1c, 0x49, 0x47, 0x2d, 0x8a,
	0x9b, 0x7d, 0xb5, 0x1f, 0x02, 0xbb, 0x4d, 0x81, 0x11, 0xbc, 0xd3, 0x07, 0x45, 0x4f, 0xfe, 0x01,
};
static const CK_BYTE rsa_qinv[128] = {
	0xb9, 0x5e, 0x73, 0x93, 0x76, 0x18, 0x31, 0xb9, 0xd9, 0x55, 0xc0, 0x6a, 0x78, 0xf4, 0x75, 0xc4,
	0x5c, 0x36, 0x99, 0x56, 0x90, 0x29, 0xb8, 0xca, 0x11, 0xfc, 0xd1, 0x54, 0xc2, 0xff, 0x3b, 0x19,
	0xe8, 0xac, 0x93, 0xd5, 0xb0, 0xa7, 0xc6, 0x56, 0x2a, 0x67, 0x7b, 0x70, 0xf8, 0x6b, 0x9c, 0x76,
	0x10, 0xaa, 0x1e, 0xd5, 0xf2, 0x07, 0x91, 0xb2, 0x66, 0x94, 0x74, 0x25, 0xaa, 0x59, 0xa1, 0x67,
	0x02, 0x03, 0x34, 0x38, 0xfc, 0x3f, 0x71, 0xfe, 0x4f, 0xc4, 0x55, 0x1f, 0x88, 0xf6, 0x46, 0x26,
	0x28, 0x4e, 0xe6, 0x08, 0xea, 0x65, 0xe2, 0x9e, 0x6b, 0x13, 0x89, 0x54, 0x0f, 0x2c, 0xd1, 0x08,
	0xe2, 0x92, 0xaa, 0x87, 0x49, 0xd4, 0xe3, 0xbc, 0x10, 0xb5, 0x11, 0xc0, 0xf9, 0x40, 0x0e, 0x75,
	0x0c, 0x01, 0x9f, 0xd6, 0x2d, 0xbe, 0xcb, 0xc7, 0xfb, 0xbc, 0xfd, 0x1a, 0x11, 0xe1, 0xa9, 0x3e,
};
static const CK_BYTE ec_d[32] = {
	0x15, 0x16, 0x70, 0x75, 0xc7, 0x93, 0xaf, 0xbc, 0xd4, 0xb1, 0x9a, 0x20, 0x7c, 0x56, 0x3c, 0xda,
	0xbc, 0xb6, 0x93, 0xb0, 0x1d, 0xdd, 0x88, 0x7b, 0x14, 0xb3, 0x67, 0x08, 0xfe, 0xbc, 0xb6, 0xa5,
};
static const CK_BYTE ec_point[67] = {
	0x04, 0x41, 0x04, 0x97, 0xc2, 0x34, 0xf3, 0x02, 0x45, 0x7c, 0xb5, 0x1a, 0xaf, 0xe2, 0x93, 0xea,
	0x36, 0x76, 0xb2, 0x76, 0xab, 0x9b, 0xeb, 0x50, 0x92, 0x71, 0x8d, 0x1d, 0x06, 0x3f, 0xd6, 0x37,
	0x02, 0x81, 0xd2, 0xa2, 0x96, 0x6b, 0xbf, 0xe5, 0xdd, 0x5f, 0x50, 0x45, 0x8a, 0xae, 0x39, 0xa0,
	0xbc, 0x47, 0x8c, 0xf4, 0x30, 0xea, 0x8f, 0x61, 0xd7, 0x9c, 0x3c, 0x7b, 0xd4, 0x35, 0x17, 0xb3,
	0x83, 0x80, 0xb8,
};
static const CK_BYTE ec_peer_point[65] = {
	0x04, 0x3f, 0xd4, 0x9f, 0xaa, 0xaf, 0xa1, 0xc0, 0xf9, 0xfe, 0x8f, 0x56, 0x63, 0x25, 0x76, 0x2d,
	0x69, 0xf7, 0x96, 0x39, 0x29, 0x9f, 0xf8, 0xc3, 0x30, 0x90, 0xd8, 0x11, 0x16, 0x01, 0x24, 0xed,
	0x1f, 0x01, 0x13, 0xcc, 0xf2, 0xe6, 0x1b, 0x36, 0xc8, 0x62, 0x47, 0xda, 0x85, 0x2c, 0x88, 0x34,
	0x57, 0x12, 0xa4, 0xf1, 0x2c, 0x9b, 0x80, 0x26, 0x0a, 0x1a, 0x02, 0xbf, 0xf2, 0x80, 0x76, 0x13,
	0xc8,
};
static const CK_BYTE ed_priv[32] = {
	0x71, 0x41, 0xbf, 0x2b, 0xf5, 0xfa, 0x89, 0x10, 0x8b, 0x8e, 0x4b, 0xc4, 0x6e, 0x64, 0x05, 0x9d,
	0xbf, 0xb4, 0xa2, 0xc3, 0x53, 0xba, 0x07, 0xd6, 0x7b, 0x96, 0x77, 0x5c, 0xb3, 0x17, 0xf8, 0xb2,
};
static const CK_BYTE ed_pub[34] = {
	0x04, 0x20, 0x5e, 0x18, 0x5c, 0x22, 0xc5, 0x6d, 0x8a, 0x35, 0x92, 0xa4, 0x8b, 0x2a, 0x6f, 0x19,
	0x0b, 0x9c, 0x08, 0xca, 0x7c, 0x42, 0xf1, 0x27, 0xab, 0x07, 0xab, 0xae, 0xca, 0x15, 0xd8, 0x97,
	0x17, 0x08,
};
static const CK_BYTE dsa_p[128] = {
	0x87, 0xf9, 0xb1, 0x35, 0xa6, 0x4e, 0x37, 0xe2, 0xc1, 0xff, 0x07, 0xab, 0xa4, 0xce, 0xff, 0x6e,
	0x0b, 0x9e, 0x33, 0x84, 0x52, 0x58, 0xe3, 0xa3, 0x31, 0x7e, 0xcb, 0x1e, 0x85, 0x13, 0x76, 0x35,
	0xee, 0xe5, 0x2c, 0x60, 0x15, 0x12, 0x89, 0x21, 0x4e, 0x18, 0xaa, 0xf0, 0x08, 0x3a, 0x32, 0xe6,
	0xe7, 0xf2, 0xce, 0x5d, 0x6a, 0x99, 0xd5, 0xfe, 0xeb, 0x0b, 0xd4, 0x18, 0x67, 0xa5, 0xb4, 0x94,
	0x58, 0x39, 0xa5, 0xab, 0x97, 0xcd, 0x30, 0x7d, 0x4f, 0xdb, 0x8f, 0xf9, 0x3e, 0x15, 0xd6, 0xac,
	0x82, 0x1a, 0x22, 0xe1, 0x6d, 0x87, 0xed, 0x74, 0x00, 0x49, 0xa4, 0xcd, 0xf1, 0xe7, 0x6a, 0xac,
	0x66, 0xad, 0xf9, 0xc2, 0xe0, 0x0c, 0x97, 0xbe, 0x03, 0xe5, 0xb1, 0x8b, 0xd7, 0x77, 0x1b, 0x2c,
	0xbd, 0xee, 0x67, 0x86, 0x73, 0xda, 0xb0, 0x49, 0xcc, 0x19, 0x74, 0x81, 0xd7, 0x7d, 0x46, 0x0f,
};
static const CK_BYTE dsa_q[28] = {
	0xf6, 0x7f, 0x0b, 0x13, 0x33, 0x4c, 0xe0, 0x69, 0x34, 0xfc, 0x7e, 0x59, 0x1a, 0xe6, 0x1a, 0x8d,
	0x69, 0x25, 0x2d, 0xd9, 0xff, 0x59, 0xb8, 0xe7, 0x49, 0xc3, 0xac, 0xb1,
};
static const CK_BYTE dsa_g[128] = {
	0x07, 0xf7, 0x0a, 0x77, 0x5e, 0x68, 0x28, 0x1e, 0xec, 0x70, 0x7b, 0xfd, 0x02, 0x89, 0x18, 0x63,
	0x94, 0x88, 0xa1, 0xf9, 0x1b, 0x47, 0x3d, 0xfc, 0x47, 0xa3, 0x38, 0xfa, 0xa5, 0x34, 0x35, 0xb7,
	0xbb, 0x40, 0x8d, 0xd2, 0x9e, 0x70, 0x1e, 0xf7, 0x33, 0xaf, 0xc3, 0x57, 0xbb, 0x12, 0x4f, 0xa0,
	0x3a, 0x52, 0x03, 0x93, 0x78, 0x04, 0xca, 0x02, 0xd2, 0x80, 0xe5, 0x95, 0x63, 0xc9, 0xae, 0x43,
	0xd0, 0xaf, 0x32, 0x49, 0xff, 0xba, 0x23, 0xc7, 0x78, 0x84, 0xa3, 0x1a, 0x4c, 0x4b, 0x73, 0x0d,
	0xa9, 0x78, 0x2e, 0x94, 0xad, 0xd1, 0xbc, 0xcc, 0xcb, 0x6b, 0xd1, 0x1d, 0x94, 0xe4, 0xd8, 0x23,
	0x1a, 0x3c, 0x55, 0x7d, 0x8d, 0x51, 0x05, 0x53, 0x72, 0x93, 0x28, 0xc6, 0xf9, 0xae, 0x67, 0x35,
	0x63, 0xfb, 0xb2, 0xad, 0xba, 0xd9, 0x85, 0x4e, 0x11, 0x20, 0x1e, 0xd8, 0xfa, 0x2b, 0xa7, 0xe0,
};
static const CK_BYTE dsa_x[28] = {
	0x36, 0x9f, 0xbc, 0x35, 0x5c, 0x9c, 0x95, 0xfe, 0xc6, 0xba, 0x20, 0xb9, 0x68, 0xa5, 0xf9, 0x33,
	0x48, 0xfa, 0x20, 0x38, 0x08, 0x68, 0x4f, 0x99, 0xe2, 0x46, 0x43, 0x68,
};
static const CK_BYTE dsa_y[128] = {
	0x07, 0xd9, 0x7b, 0xb2, 0x88, 0xae, 0x88, 0x62, 0x81, 0xa5, 0xab, 0x5c, 0x3d, 0xee, 0x57, 0xa4,
	0x30, 0xee, 0xba, 0x0f, 0x6c, 0x77, 0x91, 0xd6, 0x46, 0xe5, 0x6b, 0x7c, 0xb5, 0x4f, 0x75, 0x32,
	0xb9, 0x2e, 0x3d, 0x86, 0x5d, 0x4e, 0xd3, 0x2e, 0xb4, 0xf4, 0x44, 0x30, 0x2a, 0xb0, 0xc2, 0x39,
	0xbe, 0x1f, 0xa5, 0xa3, 0x0a, 0x51, 0x72, 0x09, 0x31, 0x83, 0xca, 0xb1, 0x3a, 0x05, 0x3c, 0x55,
	0x0e, 0x6e, 0x4f, 0x53, 0xae, 0x74, 0x1e, 0x05, 0x87, 0x9f, 0x98, 0x63, 0x62, 0xe4, 0xa4, 0xf3,
	0xdc, 0xed, 0xea, 0x17, 0xa5, 0x61, 0x54, 0x06, 0xd3, 0xdc, 0x28, 0x14, 0x9b, 0xe7, 0xc4, 0x68,
	0xc3, 0x51, 0xee, 0x87, 0xe1, 0x18, 0x18, 0xad, 0xdd, 0x8d, 0x0b, 0xeb, 0x39, 0x61, 0x39, 0xf9,
	0x01, 0x35, 0xb8, 0x8c, 0x56, 0x80, 0x6f, 0xd7, 0xdb, 0x98, 0x40, 0x80, 0x3a, 0x56, 0xd8, 0x29,
};
static const CK_BYTE dh_p[128] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc9, 0x0f, 0xda, 0xa2, 0x21, 0x68, 0xc2, 0x34,
	0xc4, 0xc6, 0x62, 0x8b, 0x80, 0xdc, 0x1c, 0xd1, 0x29, 0x02, 0x4e, 0x08, 0x8a, 0x67, 0xcc, 0x74,
	0x02, 0x0b, 0xbe, 0xa6, 0x3b, 0x13, 0x9b, 0x22, 0x51, 0x4a, 0x08, 0x79, 0x8e, 0x34, 0x04, 0xdd,
	0xef, 0x95, 0x19, 0xb3, 0xcd, 0x3a, 0x43, 0x1b, 0x30, 0x2b, 0x0a, 0x6d, 0xf2, 0x5f, 0x14, 0x37,
	0x4f, 0xe1, 0x35, 0x6d, 0x6d, 0x51, 0xc2, 0x45, 0xe4, 0x85, 0xb5, 0x76, 0x62, 0x5e, 0x7e, 0xc6,
	0xf4, 0x4c, 0x42, 0xe9, 0xa6, 0x37, 0xed, 0x6b, 0x0b, 0xff, 0x5c, 0xb6, 0xf4, 0x06, 0xb7, 0xed,
	0xee, 0x38, 0x6b, 0xfb, 0x5a, 0x89, 0x9f, 0xa5, 0xae, 0x9f, 0x24, 0x11, 0x7c, 0x4b, 0x1f, 0xe6,
	0x49, 0x28, 0x66, 0x51, 0xec, 0xe6, 0x53, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};
static const CK_BYTE dh_x1[64] = {
	0xd4, 0xc9, 0x00, 0xf3, 0x61, 0x73, 0xce, 0xc5, 0x4f, 0x5f, 0x61, 0xf1, 0x38, 0xb7, 0x36, 0x73,
	0x9c, 0x25, 0xe3, 0xe3, 0xac, 0x35, 0x35, 0x56, 0x5a, 0x25, 0x31, 0x50, 0x27, 0xaa, 0x57, 0xb4,
	0xd4, 0xc9, 0x00, 0xf3, 0x61, 0x73, 0xce, 0xc5, 0x4f, 0x5f, 0x61, 0xf1, 0x38, 0xb7, 0x36, 0x73,
	0x9c, 0x25, 0xe3, 0xe3, 0xac, 0x35, 0x35, 0x56, 0x5a, 0x25, 0x31, 0x50, 0x27, 0xaa, 0x57, 0xb6,
};
static const CK_BYTE dh_y1[128] = {
	0x06, 0x5b, 0x4f, 0x7c, 0xac, 0x55, 0x0b, 0xa2, 0x57, 0x1a, 0xb2, 0xc9, 0xff, 0x8b, 0x6b, 0x41,
	0x59, 0x63, 0x79, 0xfe, 0x64, 0xf4, 0x16, 0x32, 0x39, 0x37, 0x93, 0xdd, 0x9e, 0x09, 0x15, 0x4a,
	0xbf, 0xf6, 0x70, 0xa0, 0xcf, 0x76, 0x6e, 0xed, 0x8b, 0x1b, 0xba, 0x83, 0x45, 0x8a, 0x89, 0x48,
	0xd4, 0xfe, 0x60, 0x20, 0xe9, 0x57, 0x87, 0x59, 0x0a, 0x58, 0xc6, 0x3c, 0x3d, 0x4a, 0x3f, 0xb0,
	0xfb, 0x7f, 0x9e, 0xee, 0x18, 0x4b, 0x3c, 0xf4, 0x68, 0x6b, 0x72, 0x18, 0x0b, 0x99, 0xac, 0xaa,
	0x07, 0xf4, 0xa1, 0xef, 0xf3, 0xf2, 0x17, 0xdd, 0xbc, 0xd8, 0x58, 0x64, 0xe1, 0x4a, 0x3f, 0x84,
	0x7f, 0x33, 0x1b, 0xe1, 0xcc, 0xef, 0xc2, 0xc4, 0xd8, 0x8a, 0x2f, 0xdc, 0x24, 0xda, 0xdd, 0x4d,
	0x69, 0xaa, 0xd4, 0xe1, 0x8e, 0xd7, 0xbd, 0xfc, 0xf3, 0x41, 0x10, 0xd7, 0x3e, 0x6e, 0x45, 0xe7,
};
static const CK_BYTE dh_x2[64] = {
	0x48, 0xce, 0xb5, 0x66, 0x98, 0xd2, 0x86, 0x31, 0xbe, 0x34, 0x0c, 0x37, 0xa1, 0x76, 0xfb, 0x66,
	0xe6, 0x97, 0x8d, 0xbc, 0x6a, 0x04, 0xe2, 0xfb, 0xe7, 0xd7, 0xd3, 0x43, 0x2c, 0xe7, 0x76, 0x69,
	0x48, 0xce, 0xb5, 0x66, 0x98, 0xd2, 0x86, 0x31, 0xbe, 0x34, 0x0c, 0x37, 0xa1, 0x76, 0xfb, 0x66,
	0xe6, 0x97, 0x8d, 0xbc, 0x6a, 0x04, 0xe2, 0xfb, 0xe7, 0xd7, 0xd3, 0x43, 0x2c, 0xe7, 0x76, 0x6b,
};
static const CK_BYTE dh_y2[128] = {
	0x29, 0xe9, 0xb7, 0xc7, 0x45, 0x4d, 0x03, 0xdb, 0x0a, 0x1b, 0x3b, 0x12, 0xdd, 0xa5, 0x2b, 0x74,
	0x9a, 0xff, 0xa5, 0x5b, 0xd8, 0x46, 0x73, 0x9d, 0x95, 0x3f, 0xf8, 0x9c, 0xb8, 0x48, 0xee, 0x35,
	0xe0, 0xa0, 0xb4, 0xb4, 0x56, 0x0e, 0x7f, 0x34, 0x65, 0x68, 0x5d, 0x45, 0x1f, 0xf8, 0x28, 0x1c,
	0x82, 0x6f, 0x1b, 0xaf, 0x70, 0x1f, 0xdd, 0x4b, 0xa7, 0x44, 0x66, 0x8d, 0x69, 0xce, 0x34, 0xb8,
	0xf5, 0x99, 0x56, 0x52, 0x4c, 0x63, 0x9a, 0x7b, 0x3b, 0xf9, 0x8b, 0xa1, 0x0b, 0x6e, 0x6b, 0xd6,
	0x41, 0xc2, 0xd6, 0x41, 0x6e, 0xed, 0x46, 0xec, 0x38, 0x45, 0x4e, 0x0f, 0x84, 0xa0, 0xec, 0xe1,
	0xcb, 0xd2, 0xb0, 0xe8, 0x85, 0xd9, 0x36, 0x86, 0xa8, 0x76, 0x50, 0xe1, 0xc6, 0xe1, 0x34, 0xcb,
	0xfe, 0xa4, 0xdf, 0xd9, 0x94, 0x6e, 0x32, 0xd5, 0x4a, 0xc1, 0x32, 0xbd, 0xf5, 0xfd, 0x63, 0x18,
};

static const CK_BYTE aes128_v[16] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
				     0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
static const CK_BYTE aes256_v[32] = {0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae,
				     0xf0, 0x85, 0x7d, 0x77, 0x81, 0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61,
				     0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4};
/* DES keys with odd parity in every byte. */
static const CK_BYTE des_v[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
static const CK_BYTE des2_v[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
				   0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10};
static const CK_BYTE des3_v[24] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
				   0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01,
				   0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23};
static const CK_BYTE oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const CK_BYTE oid_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
static const CK_BYTE oid_ed448[] = {0x06, 0x03, 0x2b, 0x65, 0x71};
static const CK_BYTE dh_g[] = {0x02};

static CK_BYTE generic_v[64];  /* filled from a counter at start */
static CK_BYTE msg[200];       /* the message every operation works on */
static CK_BYTE iv16[16], iv8[8], iv12[12], aad[20];

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static CK_OBJECT_CLASS cls_secret = CKO_SECRET_KEY, cls_pub = CKO_PUBLIC_KEY, cls_priv = CKO_PRIVATE_KEY,
		       cls_data = CKO_DATA;
static CK_KEY_TYPE kt_aes = CKK_AES, kt_des = CKK_DES, kt_des2 = CKK_DES2, kt_des3 = CKK_DES3,
		   kt_gen = CKK_GENERIC_SECRET, kt_rsa = CKK_RSA, kt_ec = CKK_EC, kt_ed = CKK_EC_EDWARDS,
		   kt_dsa = CKK_DSA, kt_dh = CKK_DH;

#define AV(t, v) {(t), (void *)&(v), sizeof(v)}
#define AP(t, p, n) {(t), (void *)(p), (n)}
#define AS(t, s) {(t), (void *)(s), sizeof(s) - 1}

/* ------------------------------------------------------------------ */
/* Names for handles and slots                                         */

static struct {
	char name[48];
	CK_OBJECT_HANDLE h;
} objs[512];
static size_t n_objs;

static void reg(const char *name, CK_OBJECT_HANDLE h)
{
	if (n_objs < ARRAY_LEN(objs)) {
		snprintf(objs[n_objs].name, sizeof objs[n_objs].name, "%s", name);
		objs[n_objs++].h = h;
	}
}

static const char *objname(CK_OBJECT_HANDLE h)
{
	for (size_t i = n_objs; i-- > 0;)
		if (objs[i].h == h)
			return objs[i].name;
	return "unknown";
}

static void unreg(CK_OBJECT_HANDLE h)
{
	for (size_t i = 0; i < n_objs; i++)
		if (objs[i].h == h)
			objs[i].h = CK_INVALID_HANDLE, snprintf(objs[i].name, sizeof objs[i].name, "gone");
}

static struct {
	CK_SLOT_ID id;
	char name[48];
} slots[16];
static size_t n_slots;
static CK_SLOT_ID main_slot, free_slot;
static const CK_SLOT_ID BAD_SLOT = 0x7eadbeefUL;
static const CK_SESSION_HANDLE BAD_SESSION = 0x7eadbeefUL;
static const CK_OBJECT_HANDLE BAD_OBJECT = 0x7eadbeefUL;

static const char *slotn(CK_SLOT_ID id)
{
	for (size_t i = 0; i < n_slots; i++)
		if (slots[i].id == id)
			return slots[i].name;
	return id == BAD_SLOT ? "BAD_SLOT" : "unknown";
}

/* Slot IDs of SoftHSM come from random token serials: name each slot by
 * its token's label, or "free" for the uninitialized one. */
static void refresh_slots(void)
{
	CK_SLOT_ID ids[16];
	CK_ULONG n = ARRAY_LEN(ids);
	n_slots = 0;
	if (P(C_GetSlotList)(CK_FALSE, ids, &n) != CKR_OK)
		return;
	int nfree = 0;
	for (CK_ULONG i = 0; i < n && i < ARRAY_LEN(slots); i++) {
		CK_TOKEN_INFO ti;
		slots[n_slots].id = ids[i];
		if (P(C_GetTokenInfo)(ids[i], &ti) == CKR_OK && (ti.flags & CKF_TOKEN_INITIALIZED)) {
			const char *l = txt(ti.label, sizeof ti.label);
			snprintf(slots[n_slots].name, sizeof slots[n_slots].name, "tok:%s", l);
		} else {
			snprintf(slots[n_slots].name, sizeof slots[n_slots].name, nfree ? "free%d" : "free",
				 nfree + 1);
			nfree++;
		}
		n_slots++;
	}
}

static CK_SLOT_ID slot_by_name(const char *name)
{
	for (size_t i = 0; i < n_slots; i++)
		if (strcmp(slots[i].name, name) == 0)
			return slots[i].id;
	return BAD_SLOT;
}

/* Sorted names of a slot list: SoftHSM's order follows the IDs. */
static const char *slot_list_names(const CK_SLOT_ID *ids, CK_ULONG n)
{
	const char *names[16];
	CK_ULONG m = n < 16 ? n : 16;
	for (CK_ULONG i = 0; i < m; i++)
		names[i] = slotn(ids[i]);
	for (CK_ULONG i = 0; i < m; i++)
		for (CK_ULONG j = i + 1; j < m; j++)
			if (strcmp(names[j], names[i]) < 0) {
				const char *t = names[i];
				names[i] = names[j];
				names[j] = t;
			}
	char *s = pool_take(16 * 52 + 4);
	s[0] = 0;
	for (CK_ULONG i = 0; i < m; i++) {
		strcat(s, i ? "," : "[");
		strcat(s, names[i]);
	}
	strcat(s, m ? "]" : "[]");
	return s;
}

/* ------------------------------------------------------------------ */
/* Output calls: the probe protocol                                    */

typedef CK_RV (*yfn)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
typedef CK_RV (*ofn)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG_PTR);

struct ycall {
	yfn f;                   /* in and out: C_Encrypt, C_Sign, C_EncryptUpdate, ... */
	ofn g;                   /* out only: C_*Final, C_GetOperationState */
	int wrap;                /* C_WrapKey */
	CK_SESSION_HANDLE s;
	const CK_BYTE *in;
	CK_ULONG inlen;
	CK_MECHANISM *m;
	CK_OBJECT_HANDLE k1, k2;
};

static CK_RV ydo(const struct ycall *c, CK_BYTE *out, CK_ULONG *len)
{
	if (c->wrap)
		return P(C_WrapKey)(c->s, c->m, c->k1, c->k2, out, len);
	if (c->g)
		return c->g(c->s, out, len);
	return c->f(c->s, (CK_BYTE_PTR)c->in, c->inlen, out, len);
}

#define OUTCAP 4096
#define CANARY 0xA5
#define SENTINEL_LEN ((CK_ULONG)0x5A5A5A5AUL)

/* Y_PROBE: a NULL-buffer length query, capacity 0, capacity one short of
 * the answer (each must be CKR_BUFFER_TOO_SMALL with the buffer untouched and
 * the required length back), then the exact capacity. Y_DET: the output is
 * deterministic, its bytes are recorded. Without Y_DET only its length. */
#define Y_PROBE 1
#define Y_DET 2
/* The same, for the 3.x script's message calls, and more. */
#define M_PROBE 1     /* query, capacity 0, one short, then the exact capacity */
#define M_DET 2	      /* output and tag bytes compared */
#define M_DET_IV 4    /* a generated IV's bytes compared (counter) */
#define M_BUF_NOTE 8  /* a failed call: its rv (and IV, tag) counted, what it left in the buffer a note */
#define M_NOTE 16     /* every observation of the run a note */

static CK_BYTE ybuf[OUTCAP + 64];

static int untouched(const CK_BYTE *b, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (b[i] != CANARY)
			return 0;
	return 1;
}

static const char *lens(CK_ULONG l)
{
	if (l == SENTINEL_LEN)
		return "unchanged";
	return ulong_s(l);
}

/* The probe protocol (Y_PROBE) for any output call: call(ctx, out, &len),
 * with state(ctx) (what the call did beyond its output; may be NULL)
 * after every observation. */
typedef CK_RV (*gcall_fn)(void *ctx, CK_BYTE_PTR out, CK_ULONG_PTR len);
typedef const char *(*gstate_fn)(void *ctx);

static const char *gst(gstate_fn state, void *ctx)
{
	const char *st = state ? state(ctx) : "";
	return *st ? fmt(" %s", st) : "";
}

/* What a call that failed left in a buffer filled with CANARY. */
static const char *wdesc(const CK_BYTE *b, size_t n)
{
	size_t first = n, last = 0, zeros = 0;
	for (size_t i = 0; i < n; i++)
		if (b[i] != CANARY) {
			if (first == n)
				first = i;
			last = i;
			zeros += b[i] == 0;
		}
	if (first == n)
		return "untouched";
	return fmt("WRITTEN(bytes %zu..%zu, %s)", first, last, zeros == last - first + 1 ? "zeros" : "not all zero");
}

static CK_RV grun(const char *step, gcall_fn call, gstate_fn state, void *ctx, int flags, CK_BYTE *out,
		  CK_ULONG *outlen)
{
	CK_RV rv;
	CK_ULONG len, cap = OUTCAP;
	if (outlen)
		*outlen = 0;
	if (flags & M_PROBE) {
		len = SENTINEL_LEN;
		rv = call(ctx, NULL, &len);
		rec_or_note(flags & M_NOTE, fmt("%s query", step), "rv=%s len=%s%s", rvn(rv), lens(len),
			    gst(state, ctx));
		if (rv != CKR_OK)
			return rv;
		CK_ULONG need = len;
		if (need > OUTCAP) {
			rec_or_note(flags & M_NOTE, step, "required length %lu beyond the harness's buffer", need);
			return CKR_GENERAL_ERROR;
		}
		if (need > 0) {
			memset(ybuf, CANARY, sizeof ybuf);
			len = 0;
			rv = call(ctx, ybuf, &len);
			if (rv == CKR_OK)
				goto done;
			rec_or_note(flags & M_NOTE, fmt("%s cap0", step), "rv=%s len=%s buffer=%s%s", rvn(rv),
				    lens(len), wdesc(ybuf, sizeof ybuf), gst(state, ctx));
			if (rv != CKR_BUFFER_TOO_SMALL)
				return rv;
			if (len > need && len <= OUTCAP)
				need = len;
			if (need > 1) {
				memset(ybuf, CANARY, sizeof ybuf);
				len = need - 1;
				rv = call(ctx, ybuf, &len);
				if (rv == CKR_OK)
					goto done;
				rec_or_note(flags & M_NOTE, fmt("%s short", step), "rv=%s len=%s buffer=%s%s",
					    rvn(rv), lens(len), wdesc(ybuf, sizeof ybuf), gst(state, ctx));
				if (rv != CKR_BUFFER_TOO_SMALL)
					return rv;
				if (len > need && len <= OUTCAP)
					need = len;
			}
		}
		cap = need;
	}
	memset(ybuf, CANARY, sizeof ybuf);
	len = cap;
	rv = call(ctx, ybuf, &len);
done:
	if (rv == CKR_OK && len <= OUTCAP) {
		const char *tail = untouched(ybuf, len, sizeof ybuf) ? "untouched" : "WRITTEN";
		rec_or_note(flags & M_NOTE, step, "rv=%s len=%lu out=%s tail=%s%s", rvn(rv), len,
			    flags & M_DET ? hex(ybuf, len) : "(not compared)", tail, gst(state, ctx));
		if (out)
			memcpy(out, ybuf, len);
		if (outlen)
			*outlen = len;
	} else if (flags & M_BUF_NOTE) {
		rec(step, "rv=%s len=%s%s", rvn(rv), lens(len), gst(state, ctx));
		note(fmt("%s: the output buffer", step), "buffer=%s", wdesc(ybuf, sizeof ybuf));
	} else
		rec_or_note(flags & M_NOTE, step, "rv=%s len=%s buffer=%s%s", rvn(rv), lens(len),
			    wdesc(ybuf, sizeof ybuf), gst(state, ctx));
	return rv;
}

static CK_RV ydo_cb(void *ctx, CK_BYTE_PTR out, CK_ULONG_PTR len) { return ydo(ctx, out, len); }

static CK_RV yrun(const char *step, const struct ycall *c, int flags, CK_BYTE *out, CK_ULONG *outlen)
{
	return grun(step, ydo_cb, NULL, (void *)c, flags, out, outlen);
}

static CK_SESSION_HANDLE S, R; /* the RW session (user logged in) and a RO one */

static CK_RV yio(const char *step, yfn f, const CK_BYTE *in, CK_ULONG inlen, int flags, CK_BYTE *out,
		CK_ULONG *outlen)
{
	struct ycall c = {.f = f, .s = S, .in = in, .inlen = inlen};
	return yrun(step, &c, flags, out, outlen);
}

static CK_RV yout(const char *step, ofn g, int flags, CK_BYTE *out, CK_ULONG *outlen)
{
	struct ycall c = {.g = g, .s = S};
	return yrun(step, &c, flags, out, outlen);
}

typedef CK_RV (*initfn)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);

static CK_RV minit(const char *step, initfn f, CK_MECHANISM_TYPE mt, void *param, CK_ULONG plen,
		   CK_OBJECT_HANDLE key)
{
	CK_MECHANISM m = {mt, param, plen};
	CK_RV rv = f(S, &m, key);
	mech_used(mt, rv);
	rec(step, "rv=%s", rvn(rv));
	return rv;
}

/* ------------------------------------------------------------------ */
/* Attributes                                                          */

static int ulong_attr(CK_ATTRIBUTE_TYPE t)
{
	switch (t) {
	case CKA_CLASS: case CKA_KEY_TYPE: case CKA_CERTIFICATE_TYPE: case CKA_MODULUS_BITS:
	case CKA_VALUE_BITS: case CKA_VALUE_LEN: case CKA_KEY_GEN_MECHANISM: case CKA_PRIME_BITS:
	case CKA_SUB_PRIME_BITS: case CKA_CERTIFICATE_CATEGORY: case CKA_NAME_HASH_ALGORITHM:
	case CKA_PARAMETER_SET:
		return 1;
	}
	return 0;
}

/* Attributes whose values are random in a generated object. */
static int random_attr(CK_ATTRIBUTE_TYPE t)
{
	switch (t) {
	case CKA_VALUE: case CKA_MODULUS: case CKA_PRIVATE_EXPONENT: case CKA_PRIME_1: case CKA_PRIME_2:
	case CKA_EXPONENT_1: case CKA_EXPONENT_2: case CKA_COEFFICIENT: case CKA_EC_POINT:
	case CKA_CHECK_VALUE: case CKA_PUBLIC_KEY_INFO: case CKA_PRIME: case CKA_SUBPRIME: case CKA_BASE:
		return 1;
	}
	return 0;
}

static const char *attr_val(CK_ATTRIBUTE_TYPE t, const void *p, CK_ULONG len, int det)
{
	if (!det && random_attr(t))
		/* random big numbers lose leading zero bytes: round the length */
		return fmt("random(len~%lu)", (len + 7) / 8 * 8);
	if (ulong_attr(t) && len == sizeof(CK_ULONG)) {
		CK_ULONG v;
		memcpy(&v, p, sizeof v);
		if (t == CKA_KEY_GEN_MECHANISM)
			return v == CK_UNAVAILABLE_INFORMATION ? "UNAVAILABLE" : mechn(v);
		return ulong_s(v);
	}
	if (t == CKA_ALLOWED_MECHANISMS && len % sizeof(CK_MECHANISM_TYPE) == 0) {
		char *s = pool_take(len / sizeof(CK_ULONG) * 48 + 4);
		strcpy(s, "[");
		for (CK_ULONG i = 0; i < len / sizeof(CK_ULONG); i++) {
			CK_MECHANISM_TYPE m;
			memcpy(&m, (const char *)p + i * sizeof m, sizeof m);
			if (i)
				strcat(s, ",");
			strcat(s, mechn(m));
		}
		strcat(s, "]");
		return s;
	}
	return hex(p, len);
}

static const CK_ATTRIBUTE_TYPE dump_types[] = {
	CKA_CLASS, CKA_TOKEN, CKA_PRIVATE, CKA_LABEL, CKA_APPLICATION, CKA_VALUE, CKA_OBJECT_ID,
	CKA_CERTIFICATE_TYPE, CKA_KEY_TYPE, CKA_SUBJECT, CKA_ID, CKA_SENSITIVE, CKA_ENCRYPT,
	CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP, CKA_SIGN, CKA_SIGN_RECOVER, CKA_VERIFY, CKA_VERIFY_RECOVER,
	CKA_DERIVE, CKA_START_DATE, CKA_END_DATE, CKA_MODULUS, CKA_MODULUS_BITS, CKA_PUBLIC_EXPONENT,
	CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1, CKA_EXPONENT_2,
	CKA_COEFFICIENT, CKA_PUBLIC_KEY_INFO, CKA_PRIME, CKA_SUBPRIME, CKA_BASE, CKA_PRIME_BITS,
	CKA_SUB_PRIME_BITS, CKA_VALUE_BITS, CKA_VALUE_LEN, CKA_EXTRACTABLE, CKA_LOCAL,
	CKA_NEVER_EXTRACTABLE, CKA_ALWAYS_SENSITIVE, CKA_KEY_GEN_MECHANISM, CKA_MODIFIABLE,
	CKA_COPYABLE, CKA_DESTROYABLE, CKA_EC_PARAMS, CKA_EC_POINT, CKA_ALWAYS_AUTHENTICATE,
	CKA_WRAP_WITH_TRUSTED, CKA_TRUSTED, CKA_CHECK_VALUE, CKA_ALLOWED_MECHANISMS,
	0x7fff0001UL, CKA_VENDOR_DEFINED | 0x4242,
};

/* Every attribute of dump_types: a length query (all pValue NULL), then a
 * read into buffers of exactly the lengths returned (with a canary after). */
static void dump_obj(const char *tag0, CK_OBJECT_HANDLE h, int det)
{
	char tag[256];
	snprintf(tag, sizeof tag, "%s", tag0);
	enum { NT = ARRAY_LEN(dump_types) };
	CK_ATTRIBUTE t[NT];
	CK_ULONG qlen[NT];
	CK_BYTE *bufs[NT];
	for (size_t i = 0; i < NT; i++)
		t[i] = (CK_ATTRIBUTE){dump_types[i], NULL, SENTINEL_LEN};
	CK_RV rv = P(C_GetAttributeValue)(S, h, t, NT);
	rec(fmt("%s lengths", tag), "rv=%s", rvn(rv));
	for (size_t i = 0; i < NT; i++) {
		qlen[i] = t[i].ulValueLen;
		bufs[i] = NULL;
		if (qlen[i] != CK_UNAVAILABLE_INFORMATION && qlen[i] != SENTINEL_LEN && qlen[i] < 65536) {
			bufs[i] = malloc(qlen[i] + 8);
			memset(bufs[i], CANARY, qlen[i] + 8);
		}
		t[i].pValue = bufs[i];
		t[i].ulValueLen = bufs[i] ? qlen[i] : 0;
	}
	rv = P(C_GetAttributeValue)(S, h, t, NT);
	rec(fmt("%s values", tag), "rv=%s", rvn(rv));
	for (size_t i = 0; i < NT; i++) {
		const char *q = det || !random_attr(dump_types[i]) || qlen[i] == CK_UNAVAILABLE_INFORMATION ||
					qlen[i] == SENTINEL_LEN
				    ? lens(qlen[i])
				    : fmt("~%lu", (qlen[i] + 7) / 8 * 8);
		if (!bufs[i]) {
			rec(fmt("%s %s", tag, attrn(dump_types[i])), "qlen=%s len=%s", q, lens(t[i].ulValueLen));
			continue;
		}
		CK_ULONG l = t[i].ulValueLen;
		if (l <= qlen[i])
			rec(fmt("%s %s", tag, attrn(dump_types[i])), "qlen=%s len=%s val=%s tail=%s", q,
			    det || !random_attr(dump_types[i]) ? lens(l) : "~",
			    attr_val(dump_types[i], bufs[i], l, det),
			    untouched(bufs[i], l, qlen[i] + 8) ? "untouched" : "WRITTEN");
		else
			rec(fmt("%s %s", tag, attrn(dump_types[i])), "qlen=%s len=%s", q, lens(l));
		free(bufs[i]);
	}
}

/* One attribute, read into buf (capacity cap): returns its length or -1. */
static long get_attr(CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, void *buf, CK_ULONG cap)
{
	CK_ATTRIBUTE a = {type, buf, cap};
	if (P(C_GetAttributeValue)(S, h, &a, 1) != CKR_OK)
		return -1;
	return (long)a.ulValueLen;
}

static void rec_attr(const char *step, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, int det)
{
	CK_BYTE buf[1024];
	CK_ATTRIBUTE a = {type, buf, sizeof buf};
	CK_RV rv = P(C_GetAttributeValue)(S, h, &a, 1);
	if (rv == CKR_OK)
		rec(step, "rv=%s %s=%s", rvn(rv), attrn(type), attr_val(type, buf, a.ulValueLen, det));
	else
		rec(step, "rv=%s len=%s", rvn(rv), lens(a.ulValueLen));
}

static CK_OBJECT_HANDLE create_in(CK_SESSION_HANDLE s, const char *name, CK_ATTRIBUTE *t, CK_ULONG n)
{
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv = P(C_CreateObject)(s, t, n, &h);
	rec(fmt("create %s", name), "rv=%s handle=%s", rvn(rv), h != CK_INVALID_HANDLE ? "set" : "unset");
	if (rv != CKR_OK)
		return CK_INVALID_HANDLE;
	reg(name, h);
	return h;
}

static CK_OBJECT_HANDLE create(const char *name, CK_ATTRIBUTE *t, CK_ULONG n)
{
	return create_in(S, name, t, n);
}

static CK_OBJECT_HANDLE gen_key(const char *name, CK_MECHANISM_TYPE mt, void *param, CK_ULONG plen,
				CK_ATTRIBUTE *t, CK_ULONG n)
{
	CK_MECHANISM m = {mt, param, plen};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv = P(C_GenerateKey)(S, &m, t, n, &h);
	mech_used(mt, rv);
	rec(fmt("generate %s", name), "rv=%s handle=%s", rvn(rv), h != CK_INVALID_HANDLE ? "set" : "unset");
	if (rv != CKR_OK)
		return CK_INVALID_HANDLE;
	reg(name, h);
	return h;
}

static CK_RV gen_pair(const char *name, CK_MECHANISM_TYPE mt, CK_ATTRIBUTE *pubt, CK_ULONG npub,
		      CK_ATTRIBUTE *privt, CK_ULONG npriv, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	CK_MECHANISM m = {mt, NULL, 0};
	*pub = *priv = CK_INVALID_HANDLE;
	CK_RV rv = P(C_GenerateKeyPair)(S, &m, pubt, npub, privt, npriv, pub, priv);
	mech_used(mt, rv);
	rec(fmt("generate %s", name), "rv=%s pub=%s priv=%s", rvn(rv), *pub ? "set" : "unset",
	    *priv ? "set" : "unset");
	if (rv != CKR_OK) {
		*pub = *priv = CK_INVALID_HANDLE;
		return rv;
	}
	reg(fmt("%s.pub", name), *pub);
	reg(fmt("%s.priv", name), *priv);
	return rv;
}

static void destroy(const char *step, CK_OBJECT_HANDLE h)
{
	CK_RV rv = P(C_DestroyObject)(S, h);
	rrv(step, rv);
	if (rv == CKR_OK)
		unreg(h);
}

/* ------------------------------------------------------------------ */
/* Every function with handles that name nothing                       */

static void sweep(const char *tag, CK_SESSION_HANDLE s, CK_SLOT_ID slot, CK_OBJECT_HANDLE o)
{
	CK_BYTE buf[64], out[512], label[32];
	CK_ULONG len, cnt;
	CK_MECHANISM m = {CKM_SHA256, NULL, 0};
	CK_ATTRIBUTE a = {CKA_LABEL, buf, 4};
	CK_OBJECT_HANDLE oh, oh2;
	CK_INFO info;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_SESSION_INFO sei;
	CK_MECHANISM_INFO mi;
	CK_SLOT_ID sl[8];
	CK_SESSION_HANDLE sh;
	CK_MECHANISM_TYPE mt[8];
	memset(buf, 'x', sizeof buf);
	memset(label, ' ', sizeof label);
#define SW(fn, ...) rrv(fmt("%s %s", tag, #fn), P(fn)(__VA_ARGS__))
#define L (len = sizeof out, &len)
	SW(C_GetInfo, &info);
	cnt = ARRAY_LEN(sl);
	SW(C_GetSlotList, CK_FALSE, sl, &cnt);
	SW(C_GetSlotInfo, slot, &si);
	SW(C_GetTokenInfo, slot, &ti);
	cnt = ARRAY_LEN(mt);
	SW(C_GetMechanismList, slot, mt, &cnt);
	SW(C_GetMechanismInfo, slot, CKM_SHA256, &mi);
	SW(C_InitToken, slot, (CK_UTF8CHAR_PTR) "12345678", 8, label);
	SW(C_InitPIN, s, (CK_UTF8CHAR_PTR) "1234", 4);
	SW(C_SetPIN, s, (CK_UTF8CHAR_PTR) "1234", 4, (CK_UTF8CHAR_PTR) "4321", 4);
	SW(C_OpenSession, slot, CKF_SERIAL_SESSION, NULL, NULL, &sh);
	SW(C_CloseSession, s);
	SW(C_CloseAllSessions, slot);
	SW(C_GetSessionInfo, s, &sei);
	SW(C_GetOperationState, s, out, L);
	SW(C_SetOperationState, s, buf, 16, 0, 0);
	SW(C_Login, s, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4);
	SW(C_Logout, s);
	SW(C_CreateObject, s, &a, 1, &oh);
	SW(C_CopyObject, s, o, &a, 1, &oh);
	SW(C_DestroyObject, s, o);
	SW(C_GetObjectSize, s, o, &len);
	SW(C_GetAttributeValue, s, o, &a, 1);
	SW(C_SetAttributeValue, s, o, &a, 1);
	SW(C_FindObjectsInit, s, &a, 1);
	SW(C_FindObjects, s, &oh, 1, &cnt);
	SW(C_FindObjectsFinal, s);
	SW(C_EncryptInit, s, &m, o);
	SW(C_Encrypt, s, buf, 16, out, L);
	SW(C_EncryptUpdate, s, buf, 16, out, L);
	SW(C_EncryptFinal, s, out, L);
	SW(C_DecryptInit, s, &m, o);
	SW(C_Decrypt, s, buf, 16, out, L);
	SW(C_DecryptUpdate, s, buf, 16, out, L);
	SW(C_DecryptFinal, s, out, L);
	SW(C_DigestInit, s, &m);
	SW(C_Digest, s, buf, 16, out, L);
	SW(C_DigestUpdate, s, buf, 16);
	SW(C_DigestKey, s, o);
	SW(C_DigestFinal, s, out, L);
	SW(C_SignInit, s, &m, o);
	SW(C_Sign, s, buf, 16, out, L);
	SW(C_SignUpdate, s, buf, 16);
	SW(C_SignFinal, s, out, L);
	SW(C_SignRecoverInit, s, &m, o);
	SW(C_SignRecover, s, buf, 16, out, L);
	SW(C_VerifyInit, s, &m, o);
	SW(C_Verify, s, buf, 16, buf, 16);
	SW(C_VerifyUpdate, s, buf, 16);
	SW(C_VerifyFinal, s, buf, 16);
	SW(C_VerifyRecoverInit, s, &m, o);
	SW(C_VerifyRecover, s, buf, 16, out, L);
	SW(C_DigestEncryptUpdate, s, buf, 16, out, L);
	SW(C_DecryptDigestUpdate, s, buf, 16, out, L);
	SW(C_SignEncryptUpdate, s, buf, 16, out, L);
	SW(C_DecryptVerifyUpdate, s, buf, 16, out, L);
	SW(C_GenerateKey, s, &m, &a, 1, &oh);
	SW(C_GenerateKeyPair, s, &m, &a, 1, &a, 1, &oh, &oh2);
	SW(C_WrapKey, s, &m, o, o, out, L);
	SW(C_UnwrapKey, s, &m, o, buf, 16, &a, 1, &oh);
	SW(C_DeriveKey, s, &m, o, &a, 1, &oh);
	SW(C_SeedRandom, s, buf, 16);
	SW(C_GenerateRandom, s, out, 16);
	SW(C_GetFunctionStatus, s);
	SW(C_CancelFunction, s);
	SW(C_WaitForSlotEvent, CKF_DONT_BLOCK, sl, NULL);
#undef L
#undef SW
}

/* ------------------------------------------------------------------ */
/* Area: before C_Initialize                                           */

static CK_C_GetFunctionList get_function_list;

static void area_preinit(void)
{
	set_area("preinit", 60);
	hit("C_GetFunctionList");
	rrv("C_GetFunctionList(NULL)", get_function_list(NULL));
	CK_FUNCTION_LIST_PTR f2 = NULL;
	hit("C_GetFunctionList");
	CK_RV rv = get_function_list(&f2);
	int nonnull = 0;
	if (rv == CKR_OK && f2) {
		void **p = (void **)&f2->C_Initialize;
		for (int i = 0; i < 68; i++)
			nonnull += p[i] != NULL;
	}
	rec("C_GetFunctionList", "rv=%s same=%s version=%d.%d nonnull=%d", rvn(rv), f2 == F ? "yes" : "no",
	    f2 ? f2->version.major : -1, f2 ? f2->version.minor : -1, nonnull);
	sweep("before C_Initialize", BAD_SESSION, BAD_SLOT, BAD_OBJECT);
	rrv("C_Finalize(NULL) before C_Initialize", P(C_Finalize)(NULL));
}

/* ------------------------------------------------------------------ */
/* Area: C_Initialize's arguments                                      */

static int mutex_calls;
static CK_RV mx_create(CK_VOID_PTR_PTR pp)
{
	pthread_mutex_t *m = malloc(sizeof *m);
	if (!m)
		return CKR_HOST_MEMORY;
	pthread_mutex_init(m, NULL);
	*pp = m;
	__atomic_add_fetch(&mutex_calls, 1, __ATOMIC_RELAXED);
	return CKR_OK;
}
static CK_RV mx_destroy(CK_VOID_PTR p)
{
	pthread_mutex_destroy(p);
	free(p);
	__atomic_add_fetch(&mutex_calls, 1, __ATOMIC_RELAXED);
	return CKR_OK;
}
static CK_RV mx_lock(CK_VOID_PTR p)
{
	__atomic_add_fetch(&mutex_calls, 1, __ATOMIC_RELAXED);
	return pthread_mutex_lock(p) ? CKR_GENERAL_ERROR : CKR_OK;
}
static CK_RV mx_unlock(CK_VOID_PTR p)
{
	__atomic_add_fetch(&mutex_calls, 1, __ATOMIC_RELAXED);
	return pthread_mutex_unlock(p) ? CKR_GENERAL_ERROR : CKR_OK;
}

static void init_case(const char *name, CK_C_INITIALIZE_ARGS *a)
{
	__atomic_store_n(&mutex_calls, 0, __ATOMIC_RELAXED);
	CK_RV rv = P(C_Initialize)(a);
	rec(fmt("%s: C_Initialize", name), "rv=%s", rvn(rv));
	if (rv == CKR_OK) {
		CK_INFO info;
		rrv(fmt("%s: C_GetInfo", name), P(C_GetInfo)(&info));
		CK_ULONG n = SENTINEL_LEN;
		rv = P(C_GetSlotList)(CK_TRUE, NULL, &n);
		rec(fmt("%s: C_GetSlotList count", name), "rv=%s count=%s", rvn(rv), lens(n));
		CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
		refresh_slots();
		rv = P(C_OpenSession)(slot_by_name("tok:\"difftok\""), CKF_SERIAL_SESSION, NULL, NULL, &h);
		rec(fmt("%s: C_OpenSession", name), "rv=%s handle=%s", rvn(rv), h ? "set" : "unset");
		if (rv == CKR_OK)
			rrv(fmt("%s: C_CloseSession", name), P(C_CloseSession)(h));
		rrv(fmt("%s: C_Finalize", name), P(C_Finalize)(NULL));
	}
	/* Through the proxy the host's own callbacks replace the application's
	 * (README: "What the application can observe"): a note, not compared. */
	note(fmt("%s: mutex callbacks", name), "%s", __atomic_load_n(&mutex_calls, __ATOMIC_RELAXED) ? "called" : "not called");
}

static void area_initargs(void)
{
	set_area("initargs", 120);
	init_case("NULL", NULL);
	CK_C_INITIALIZE_ARGS a;
	memset(&a, 0, sizeof a);
	init_case("zeroed args", &a);
	a.flags = CKF_OS_LOCKING_OK;
	init_case("CKF_OS_LOCKING_OK", &a);
	memset(&a, 0, sizeof a);
	a.CreateMutex = mx_create, a.DestroyMutex = mx_destroy, a.LockMutex = mx_lock, a.UnlockMutex = mx_unlock;
	init_case("app mutex callbacks, no OS locking", &a);
	a.flags = CKF_OS_LOCKING_OK;
	init_case("app mutex callbacks and CKF_OS_LOCKING_OK", &a);
	memset(&a, 0, sizeof a);
	a.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS;
	init_case("CKF_LIBRARY_CANT_CREATE_OS_THREADS", &a);
	a.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK;
	init_case("CKF_LIBRARY_CANT_CREATE_OS_THREADS|CKF_OS_LOCKING_OK", &a);
	memset(&a, 0, sizeof a);
	a.CreateMutex = mx_create;
	init_case("only CreateMutex", &a);
	a.DestroyMutex = mx_destroy, a.LockMutex = mx_lock;
	init_case("three of four mutex callbacks", &a);
	a.CreateMutex = NULL, a.UnlockMutex = mx_unlock, a.flags = CKF_OS_LOCKING_OK;
	init_case("three of four mutex callbacks and CKF_OS_LOCKING_OK", &a);
	memset(&a, 0, sizeof a);
	a.pReserved = (void *)"foo";
	init_case("pReserved \"foo\"", &a);
	a.flags = CKF_OS_LOCKING_OK;
	init_case("pReserved \"foo\" and CKF_OS_LOCKING_OK", &a);
	memset(&a, 0, sizeof a);
	a.flags = 0xff00UL;
	init_case("unknown flags 0xff00", &a);

	/* Twice, and C_Finalize's pReserved. */
	rrv("C_Initialize(NULL)", P(C_Initialize)(NULL));
	rrv("C_Initialize(NULL) again", P(C_Initialize)(NULL));
	memset(&a, 0, sizeof a);
	a.flags = CKF_OS_LOCKING_OK;
	rrv("C_Initialize(CKF_OS_LOCKING_OK) again", P(C_Initialize)(&a));
	rrv("C_Finalize(non-NULL)", P(C_Finalize)((void *)"foo"));
	CK_INFO info;
	rrv("C_GetInfo after refused C_Finalize", P(C_GetInfo)(&info));
	rrv("C_Finalize(NULL)", P(C_Finalize)(NULL));
	rrv("C_Finalize(NULL) again", P(C_Finalize)(NULL));
	rrv("C_GetInfo after C_Finalize", P(C_GetInfo)(&info));
}

/* ------------------------------------------------------------------ */
/* Area: library, slots, tokens                                        */

#define MAIN_LABEL "difftok"
#define SO_PIN "12345678"
#define USER_PIN "1234"

static void rec_token_info(const char *step, CK_SLOT_ID slot)
{
	CK_TOKEN_INFO ti;
	memset(&ti, CANARY, sizeof ti);
	CK_RV rv = P(C_GetTokenInfo)(slot, &ti);
	if (rv != CKR_OK) {
		rrv(step, rv);
		return;
	}
	/* The serial is random; the clock is a time. */
	size_t sl = sizeof ti.serialNumber;
	while (sl > 0 && ti.serialNumber[sl - 1] == ' ')
		sl--;
	int utc_blank = 1;
	for (size_t i = 0; i < sizeof ti.utcTime; i++)
		utc_blank &= ti.utcTime[i] == ' ' || ti.utcTime[i] == 0;
	rec(step,
	    "rv=%s label=%s manufacturer=%s model=%s serial=(%zu chars) flags=0x%lx maxSessions=%s "
	    "sessions=%s maxRw=%s rw=%s pin=%s..%s pubMem=%s/%s privMem=%s/%s hw=%d.%d fw=%d.%d utc=%s",
	    rvn(rv), txt(ti.label, sizeof ti.label), txt(ti.manufacturerID, sizeof ti.manufacturerID),
	    txt(ti.model, sizeof ti.model), sl, ti.flags, ulong_s(ti.ulMaxSessionCount),
	    ulong_s(ti.ulSessionCount), ulong_s(ti.ulMaxRwSessionCount), ulong_s(ti.ulRwSessionCount),
	    ulong_s(ti.ulMinPinLen), ulong_s(ti.ulMaxPinLen), ulong_s(ti.ulFreePublicMemory),
	    ulong_s(ti.ulTotalPublicMemory), ulong_s(ti.ulFreePrivateMemory), ulong_s(ti.ulTotalPrivateMemory),
	    ti.hardwareVersion.major, ti.hardwareVersion.minor, ti.firmwareVersion.major,
	    ti.firmwareVersion.minor, utc_blank ? "blank" : "(a time)");
}

static void rec_slot_info(const char *step, CK_SLOT_ID slot)
{
	CK_SLOT_INFO si;
	memset(&si, CANARY, sizeof si);
	CK_RV rv = P(C_GetSlotInfo)(slot, &si);
	if (rv != CKR_OK) {
		rrv(step, rv);
		return;
	}
	/* SoftHSM's description holds the (random) slot ID. */
	char raw[sizeof si.slotDescription + 1], desc[sizeof si.slotDescription + 16], id[32];
	memcpy(raw, si.slotDescription, sizeof si.slotDescription);
	raw[sizeof si.slotDescription] = 0;
	snprintf(id, sizeof id, "0x%lx", slot);
	char *p = strstr(raw, id);
	if (p) {
		*p = 0;
		snprintf(desc, sizeof desc, "%s<slot>%s", raw, p + strlen(id));
	} else
		snprintf(desc, sizeof desc, "%s", raw);
	rec(step, "rv=%s description=%s manufacturer=%s flags=0x%lx hw=%d.%d fw=%d.%d", rvn(rv),
	    txt((const unsigned char *)desc, strlen(desc)), txt(si.manufacturerID, sizeof si.manufacturerID),
	    si.flags, si.hardwareVersion.major, si.hardwareVersion.minor, si.firmwareVersion.major,
	    si.firmwareVersion.minor);
}

static void area_general(void)
{
	set_area("general", 60);
	CK_INFO info;
	memset(&info, CANARY, sizeof info);
	rrv("C_GetInfo(NULL)", P(C_GetInfo)(NULL));
	CK_RV rv = P(C_GetInfo)(&info);
	rec("C_GetInfo", "rv=%s cryptoki=%d.%d manufacturer=%s flags=0x%lx description=%s library=%d.%d", rvn(rv),
	    info.cryptokiVersion.major, info.cryptokiVersion.minor,
	    txt(info.manufacturerID, sizeof info.manufacturerID), info.flags,
	    txt(info.libraryDescription, sizeof info.libraryDescription), info.libraryVersion.major,
	    info.libraryVersion.minor);
	/* Every byte, padding included: what the vendor leaves alone keeps
	 * the caller's bytes. */
	rec("C_GetInfo into a non-zeroed structure", "bytes=%s", hex(&info, sizeof info));

	refresh_slots();
	main_slot = slot_by_name("tok:\"" MAIN_LABEL "\"");
	free_slot = slot_by_name("free");
	rec("slots found", "main=%s free=%s", main_slot != BAD_SLOT ? "yes" : "no",
	    free_slot != BAD_SLOT ? "yes" : "no");

	CK_SLOT_ID ids[16];
	CK_ULONG n, need;
	rrv("C_GetSlotList(NULL, NULL)", P(C_GetSlotList)(CK_FALSE, NULL, NULL));
	rrv("C_GetSlotList(buf, NULL)", P(C_GetSlotList)(CK_FALSE, ids, NULL));
	for (int present = 0; present < 2; present++) {
		const char *tp = present ? "present" : "all";
		n = SENTINEL_LEN;
		rv = P(C_GetSlotList)((CK_BBOOL)present, NULL, &n);
		rec(fmt("C_GetSlotList %s count", tp), "rv=%s count=%s", rvn(rv), lens(n));
		need = n;
		if (rv != CKR_OK || need > 12)
			continue;
		memset(ids, CANARY, sizeof ids);
		n = 0;
		rv = P(C_GetSlotList)((CK_BBOOL)present, ids, &n);
		rec(fmt("C_GetSlotList %s capacity 0", tp), "rv=%s count=%s buffer=%s", rvn(rv), lens(n),
		    untouched((CK_BYTE *)ids, 0, sizeof ids) ? "untouched" : "WRITTEN");
		if (need > 0) {
			memset(ids, CANARY, sizeof ids);
			n = need - 1;
			rv = P(C_GetSlotList)((CK_BBOOL)present, ids, &n);
			rec(fmt("C_GetSlotList %s capacity count-1", tp), "rv=%s count=%s buffer=%s", rvn(rv),
			    lens(n), untouched((CK_BYTE *)ids, 0, sizeof ids) ? "untouched" : "WRITTEN");
		}
		memset(ids, CANARY, sizeof ids);
		n = need;
		rv = P(C_GetSlotList)((CK_BBOOL)present, ids, &n);
		rec(fmt("C_GetSlotList %s exact", tp), "rv=%s count=%s slots=%s tail=%s", rvn(rv), lens(n),
		    rv == CKR_OK ? slot_list_names(ids, n) : "-",
		    rv == CKR_OK && n <= 16 && untouched((CK_BYTE *)ids, n * sizeof ids[0], sizeof ids) ? "untouched" : "WRITTEN");
		memset(ids, CANARY, sizeof ids);
		n = need + 3;
		rv = P(C_GetSlotList)((CK_BBOOL)present, ids, &n);
		rec(fmt("C_GetSlotList %s larger", tp), "rv=%s count=%s slots=%s tail=%s", rvn(rv), lens(n),
		    rv == CKR_OK ? slot_list_names(ids, n) : "-",
		    rv == CKR_OK && n <= 16 && untouched((CK_BYTE *)ids, n * sizeof ids[0], sizeof ids) ? "untouched" : "WRITTEN");
	}

	for (size_t i = 0; i < n_slots; i++) {
		rec_slot_info(fmt("C_GetSlotInfo %s", slots[i].name), slots[i].id);
		rec_token_info(fmt("C_GetTokenInfo %s", slots[i].name), slots[i].id);
	}
	rrv("C_GetSlotInfo(main, NULL)", P(C_GetSlotInfo)(main_slot, NULL));
	rec_slot_info("C_GetSlotInfo(bad slot)", BAD_SLOT);
	rrv("C_GetTokenInfo(main, NULL)", P(C_GetTokenInfo)(main_slot, NULL));
	rec_token_info("C_GetTokenInfo(bad slot)", BAD_SLOT);

	CK_SLOT_ID ev = SENTINEL_LEN;
	rv = P(C_WaitForSlotEvent)(CKF_DONT_BLOCK, &ev, NULL);
	rec("C_WaitForSlotEvent(CKF_DONT_BLOCK)", "rv=%s slot=%s", rvn(rv),
	    ev == SENTINEL_LEN ? "unchanged" : slotn(ev));
	rrv("C_WaitForSlotEvent(CKF_DONT_BLOCK, NULL slot)", P(C_WaitForSlotEvent)(CKF_DONT_BLOCK, NULL, NULL));
	rrv("C_WaitForSlotEvent(CKF_DONT_BLOCK, reserved)",
	    P(C_WaitForSlotEvent)(CKF_DONT_BLOCK, &ev, (void *)"x"));
	/* SoftHSM answers at once even without CKF_DONT_BLOCK; the watchdog
	 * records a hang. */
	ev = SENTINEL_LEN;
	rv = P(C_WaitForSlotEvent)(0, &ev, NULL);
	rec("C_WaitForSlotEvent(blocking)", "rv=%s slot=%s", rvn(rv), ev == SENTINEL_LEN ? "unchanged" : slotn(ev));
}

/* ------------------------------------------------------------------ */
/* Area: mechanism list and infos                                      */

static void area_mechinfo(void)
{
	set_area("mechinfo", 60);
	CK_MECHANISM_TYPE *ml = calloc(MAX_MECHS + 8, sizeof *ml);
	CK_ULONG n, need;
	CK_RV rv;
	rrv("C_GetMechanismList(NULL, NULL)", P(C_GetMechanismList)(main_slot, NULL, NULL));
	rrv("C_GetMechanismList(buf, NULL)", P(C_GetMechanismList)(main_slot, ml, NULL));
	n = SENTINEL_LEN;
	rv = P(C_GetMechanismList)(BAD_SLOT, NULL, &n);
	rec("C_GetMechanismList(bad slot)", "rv=%s count=%s", rvn(rv), lens(n));
	n = SENTINEL_LEN;
	rv = P(C_GetMechanismList)(free_slot, NULL, &n);
	rec("C_GetMechanismList(free slot) count", "rv=%s count=%s", rvn(rv), lens(n));
	n = SENTINEL_LEN;
	rv = P(C_GetMechanismList)(main_slot, NULL, &n);
	rec("C_GetMechanismList count", "rv=%s count=%s", rvn(rv), lens(n));
	need = n;
	if (rv != CKR_OK || need == 0 || need > MAX_MECHS) {
		free(ml);
		return;
	}
	size_t bytes = (MAX_MECHS + 8) * sizeof *ml;
	memset(ml, CANARY, bytes);
	n = 0;
	rv = P(C_GetMechanismList)(main_slot, ml, &n);
	rec("C_GetMechanismList capacity 0", "rv=%s count=%s buffer=%s", rvn(rv), lens(n),
	    untouched((CK_BYTE *)ml, 0, bytes) ? "untouched" : "WRITTEN");
	memset(ml, CANARY, bytes);
	n = need - 1;
	rv = P(C_GetMechanismList)(main_slot, ml, &n);
	rec("C_GetMechanismList capacity count-1", "rv=%s count=%s buffer=%s", rvn(rv), lens(n),
	    untouched((CK_BYTE *)ml, 0, bytes) ? "untouched" : "WRITTEN");
	memset(ml, CANARY, bytes);
	n = need + 5;
	rv = P(C_GetMechanismList)(main_slot, ml, &n);
	rec("C_GetMechanismList larger", "rv=%s count=%s tail=%s", rvn(rv), lens(n),
	    rv == CKR_OK && n <= need && untouched((CK_BYTE *)ml, n * sizeof *ml, bytes) ? "untouched" : "WRITTEN");
	memset(ml, CANARY, bytes);
	n = need;
	rv = P(C_GetMechanismList)(main_slot, ml, &n);
	rec("C_GetMechanismList exact", "rv=%s count=%s", rvn(rv), lens(n));
	if (rv == CKR_OK) {
		n_listed = n;
		memcpy(listed, ml, n * sizeof *ml);
		for (CK_ULONG i = 0; i < n; i++) {
			CK_MECHANISM_INFO mi;
			memset(&mi, 0, sizeof mi);
			rv = P(C_GetMechanismInfo)(main_slot, ml[i], &mi);
			rec(fmt("C_GetMechanismInfo %s", mechn(ml[i])), "rv=%s position=%lu min=%s max=%s flags=0x%lx",
			    rvn(rv), i, ulong_s(mi.ulMinKeySize), ulong_s(mi.ulMaxKeySize), mi.flags);
			/* SoftHSM ORs flags into what the caller's structure
			 * held: the vendor must start from the application's
			 * bytes through the proxy too (every byte compared). */
			memset(&mi, CANARY, sizeof mi);
			rv = P(C_GetMechanismInfo)(main_slot, ml[i], &mi);
			rec(fmt("C_GetMechanismInfo %s into a non-zeroed structure", mechn(ml[i])), "rv=%s flags=0x%lx bytes=%s",
			    rvn(rv), mi.flags, hex(&mi, sizeof mi));
		}
	}
	CK_MECHANISM_INFO mi;
	rrv("C_GetMechanismInfo(SHA256, NULL)", P(C_GetMechanismInfo)(main_slot, CKM_SHA256, NULL));
	rrv("C_GetMechanismInfo(unknown)", P(C_GetMechanismInfo)(main_slot, 0x7ffffff0UL, &mi));
	rrv("C_GetMechanismInfo(vendor defined)", P(C_GetMechanismInfo)(main_slot, CKM_VENDOR_DEFINED | 0x1234, &mi));
	rrv("C_GetMechanismInfo(bad slot)", P(C_GetMechanismInfo)(BAD_SLOT, CKM_SHA256, &mi));
	rv = P(C_GetMechanismInfo)(free_slot, CKM_SHA256, &mi);
	rec("C_GetMechanismInfo(free slot, SHA256)", "rv=%s flags=0x%lx", rvn(rv), rv == CKR_OK ? mi.flags : 0);
	free(ml);
}

/* ------------------------------------------------------------------ */
/* Area: C_InitToken, C_InitPIN, C_SetPIN (second slot's token)        */

static void pad32(CK_UTF8CHAR *l, const char *s)
{
	memset(l, ' ', 32);
	memcpy(l, s, strlen(s));
}

static void rec_session_info(const char *step, CK_SESSION_HANDLE h)
{
	CK_SESSION_INFO si;
	memset(&si, CANARY, sizeof si);
	CK_RV rv = P(C_GetSessionInfo)(h, &si);
	if (rv != CKR_OK)
		rrv(step, rv);
	else
		rec(step, "rv=%s slot=%s state=%lu flags=0x%lx deviceError=%lu", rvn(rv), slotn(si.slotID),
		    si.state, si.flags, si.ulDeviceError);
}

#define PIN(s) (CK_UTF8CHAR_PTR)(s), (CK_ULONG)(sizeof(s) - 1)

static void area_token(void)
{
	set_area("token", 120);
	CK_UTF8CHAR label[32], mlabel[32];
	pad32(label, "second");
	pad32(mlabel, MAIN_LABEL);
	rrv("C_InitToken(free, NULL pin)", P(C_InitToken)(free_slot, NULL, 8, label));
	rrv("C_InitToken(free, NULL label)", P(C_InitToken)(free_slot, PIN("87654321"), NULL));
	rrv("C_InitToken(bad slot)", P(C_InitToken)(BAD_SLOT, PIN("87654321"), label));
	rrv("C_InitToken(main, wrong SO PIN)", P(C_InitToken)(main_slot, PIN("00000000"), mlabel));
	rec_token_info("main token after wrong SO PIN", main_slot);
	rrv("C_InitToken(free, too short SO PIN)", P(C_InitToken)(free_slot, PIN("87"), label));
	rrv("C_InitToken(free)", P(C_InitToken)(free_slot, PIN("87654321"), label));
	rec_token_info("second token after C_InitToken", free_slot);
	rec_slot_info("second slot after C_InitToken", free_slot);

	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv = P(C_OpenSession)(free_slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h);
	rec("C_OpenSession(second, RW)", "rv=%s handle=%s", rvn(rv), h ? "set" : "unset");
	rrv("C_InitPIN before login", P(C_InitPIN)(h, PIN("1111")));
	rrv("C_Login(SO, wrong)", P(C_Login)(h, CKU_SO, PIN("00000000")));
	rrv("C_Login(SO)", P(C_Login)(h, CKU_SO, PIN("87654321")));
	rec_session_info("session info as SO", h);
	rrv("C_InitPIN(NULL)", P(C_InitPIN)(h, NULL, 4));
	rrv("C_InitPIN(too short)", P(C_InitPIN)(h, PIN("11")));
	rrv("C_InitPIN", P(C_InitPIN)(h, PIN("1111")));
	rrv("C_SetPIN(SO)", P(C_SetPIN)(h, PIN("87654321"), PIN("11223344")));
	rrv("C_Logout(SO)", P(C_Logout)(h));
	rec_token_info("second token after C_InitPIN", free_slot);
	rrv("C_Login(user)", P(C_Login)(h, CKU_USER, PIN("1111")));
	rec_session_info("session info as user", h);
	rrv("C_SetPIN(NULL old)", P(C_SetPIN)(h, NULL, 4, PIN("2222")));
	rrv("C_SetPIN(NULL new)", P(C_SetPIN)(h, PIN("1111"), NULL, 4));
	rrv("C_SetPIN(wrong old)", P(C_SetPIN)(h, PIN("9999"), PIN("2222")));
	rrv("C_SetPIN(too short new)", P(C_SetPIN)(h, PIN("1111"), PIN("22")));
	rrv("C_SetPIN", P(C_SetPIN)(h, PIN("1111"), PIN("2222")));
	rrv("C_Logout(user)", P(C_Logout)(h));
	rrv("C_Login(user, old PIN)", P(C_Login)(h, CKU_USER, PIN("1111")));
	rec_token_info("second token after a wrong PIN", free_slot);
	rrv("C_Login(user, new PIN)", P(C_Login)(h, CKU_USER, PIN("2222")));
	rrv("C_Logout(user) 2", P(C_Logout)(h));
	rrv("C_Login(SO, new SO PIN)", P(C_Login)(h, CKU_SO, PIN("11223344")));
	rrv("C_Logout(SO) 2", P(C_Logout)(h));
	rrv("C_CloseSession(second)", P(C_CloseSession)(h));

	CK_SESSION_HANDLE ro = CK_INVALID_HANDLE;
	rv = P(C_OpenSession)(free_slot, CKF_SERIAL_SESSION, NULL, NULL, &ro);
	rec("C_OpenSession(second, RO)", "rv=%s handle=%s", rvn(rv), ro ? "set" : "unset");
	rrv("C_SetPIN in a RO session", P(C_SetPIN)(ro, PIN("2222"), PIN("3333")));
	rrv("C_InitToken with a session open", P(C_InitToken)(free_slot, PIN("11223344"), label));
	rrv("C_CloseAllSessions(second)", P(C_CloseAllSessions)(free_slot));
	rec_session_info("session info after C_CloseAllSessions", ro);
	rrv("C_InitToken(second, wrong SO PIN)", P(C_InitToken)(free_slot, PIN("87654321"), label));
	pad32(label, "second-again");
	rrv("C_InitToken(second) again", P(C_InitToken)(free_slot, PIN("11223344"), label));
	rec_token_info("second token after re-initialization", free_slot);
}

/* ------------------------------------------------------------------ */
/* Area: sessions and login                                            */

static int notify_calls;
static CK_RV notify_cb(CK_SESSION_HANDLE h, CK_NOTIFICATION ev, CK_VOID_PTR app)
{
	(void)h, (void)ev, (void)app;
	notify_calls++;
	return CKR_OK;
}

static void area_session(void)
{
	set_area("session", 60);
	CK_SESSION_HANDLE ro = CK_INVALID_HANDLE, rw = CK_INVALID_HANDLE, h2 = CK_INVALID_HANDLE;
	CK_RV rv;
	rrv("C_OpenSession(NULL phSession)", P(C_OpenSession)(main_slot, CKF_SERIAL_SESSION, NULL, NULL, NULL));
	rv = P(C_OpenSession)(main_slot, 0, NULL, NULL, &h2);
	rec("C_OpenSession(no CKF_SERIAL_SESSION)", "rv=%s handle=%s", rvn(rv), h2 ? "set" : "unset");
	rv = P(C_OpenSession)(BAD_SLOT, CKF_SERIAL_SESSION, NULL, NULL, &h2);
	rec("C_OpenSession(bad slot)", "rv=%s handle=%s", rvn(rv), h2 ? "set" : "unset");
	rv = P(C_OpenSession)(main_slot, CKF_SERIAL_SESSION, NULL, NULL, &ro);
	rec("C_OpenSession(RO)", "rv=%s handle=%s", rvn(rv), ro ? "set" : "unset");
	rv = P(C_OpenSession)(main_slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, (void *)"app", notify_cb, &rw);
	rec("C_OpenSession(RW, with notify)", "rv=%s handle=%s distinct=%s", rvn(rv), rw ? "set" : "unset",
	    rw != ro ? "yes" : "no");
	rec_session_info("session info RO", ro);
	rec_session_info("session info RW", rw);
	rrv("C_GetSessionInfo(NULL)", P(C_GetSessionInfo)(ro, NULL));
	rec_session_info("session info handle 0", CK_INVALID_HANDLE);
	rec_session_info("session info bad handle", BAD_SESSION);
	rec_token_info("token info with 2 sessions", main_slot);

	rrv("C_Login(SO) with a RO session open", P(C_Login)(rw, CKU_SO, PIN(SO_PIN)));
	rrv("C_Login(user, NULL PIN)", P(C_Login)(ro, CKU_USER, NULL, 4));
	rrv("C_Login(user, wrong PIN)", P(C_Login)(ro, CKU_USER, PIN("0000")));
	rrv("C_Login(bad user type)", P(C_Login)(ro, 99, PIN(USER_PIN)));
	rrv("C_Login(context specific, no operation)", P(C_Login)(ro, CKU_CONTEXT_SPECIFIC, PIN(USER_PIN)));
	rrv("C_Logout before login", P(C_Logout)(ro));
	rrv("C_Login(user)", P(C_Login)(ro, CKU_USER, PIN(USER_PIN)));
	rrv("C_Login(user) again", P(C_Login)(rw, CKU_USER, PIN(USER_PIN)));
	rrv("C_Login(SO) while user", P(C_Login)(rw, CKU_SO, PIN(SO_PIN)));
	rec_session_info("session info RO after login", ro);
	rec_session_info("session info RW after login", rw);
	rrv("C_Logout", P(C_Logout)(rw));
	rrv("C_Logout again", P(C_Logout)(ro));
	rec_session_info("session info RO after logout", ro);
	rrv("C_CloseSession(RO)", P(C_CloseSession)(ro));
	rrv("C_CloseSession(RO) again", P(C_CloseSession)(ro));
	rec_session_info("session info of closed session", ro);
	rrv("C_CloseSession(bad)", P(C_CloseSession)(BAD_SESSION));
	rrv("C_CloseSession(0)", P(C_CloseSession)(CK_INVALID_HANDLE));
	rrv("C_Login(SO) with only RW sessions", P(C_Login)(rw, CKU_SO, PIN(SO_PIN)));
	rec_session_info("session info RW as SO", rw);
	rrv("C_OpenSession(RO) while SO", P(C_OpenSession)(main_slot, CKF_SERIAL_SESSION, NULL, NULL, &h2));
	rrv("C_Logout(SO)", P(C_Logout)(rw));
	rrv("C_CloseAllSessions(bad slot)", P(C_CloseAllSessions)(BAD_SLOT));
	rrv("C_CloseAllSessions(main)", P(C_CloseAllSessions)(main_slot));
	rec_session_info("session info RW after C_CloseAllSessions", rw);
	rec_token_info("token info after C_CloseAllSessions", main_slot);
	note("notify callback", "%s", notify_calls ? "called" : "not called");

	sweep("bad handles", BAD_SESSION, BAD_SLOT, BAD_OBJECT);

	/* The sessions the rest of the script uses. */
	rv = P(C_OpenSession)(main_slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &S);
	rec("open S", "rv=%s", rvn(rv));
	rv = P(C_OpenSession)(main_slot, CKF_SERIAL_SESSION, NULL, NULL, &R);
	rec("open R", "rv=%s", rvn(rv));
	rrv("login S", P(C_Login)(S, CKU_USER, PIN(USER_PIN)));
}

/* ------------------------------------------------------------------ */
/* Area: objects (fixed keys), attributes, find                        */

static CK_OBJECT_HANDLE k_aes128, k_aes256, k_aes_sens, k_des, k_des2, k_des3, k_gen, k_rsa_priv, k_rsa_pub,
	k_ec_priv, k_ec_pub, k_ed_priv, k_ed_pub, k_dsa_priv, k_dsa_pub, k_dh1, k_dh2, k_data, k_tokaes,
	k_wrapper, k_limited, k_noenc, k_deriver;

static CK_ULONG sixteen = 16;
static CK_ATTRIBUTE wt[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_EXTRACTABLE, yes)};
static CK_ATTRIBUTE ut[] = {AV(CKA_SENSITIVE, no), AS(CKA_LABEL, "unwrapped"), AV(CKA_EXTRACTABLE, yes),
			    AV(CKA_ENCRYPT, yes)};
static CK_ATTRIBUTE dt[] = {AV(CKA_VALUE_LEN, sixteen), AV(CKA_ENCRYPT, yes)};

static CK_OBJECT_HANDLE secret_key(const char *name, CK_KEY_TYPE *kt, const CK_BYTE *v, CK_ULONG vlen,
				   CK_BBOOL *sensitive, CK_BBOOL *token)
{
	CK_ATTRIBUTE t[] = {
		AV(CKA_CLASS, cls_secret), AP(CKA_KEY_TYPE, kt, sizeof *kt), AP(CKA_TOKEN, token, 1),
		AP(CKA_LABEL, name, strlen(name)), AP(CKA_VALUE, v, vlen), AV(CKA_ENCRYPT, yes),
		AV(CKA_DECRYPT, yes), AV(CKA_WRAP, yes), AV(CKA_UNWRAP, yes), AV(CKA_SIGN, yes),
		AV(CKA_VERIFY, yes), AV(CKA_DERIVE, yes), AP(CKA_SENSITIVE, sensitive, 1),
		AP(CKA_EXTRACTABLE, sensitive == &yes ? &no : &yes, 1),
	};
	return create(name, t, ARRAY_LEN(t));
}

static void create_fixed_keys(void)
{
	k_aes128 = secret_key("aes128", &kt_aes, aes128_v, 16, &no, &no);
	k_aes256 = secret_key("aes256", &kt_aes, aes256_v, 32, &no, &no);
	k_aes_sens = secret_key("aes-sensitive", &kt_aes, aes256_v, 32, &yes, &no);
	k_des = secret_key("des", &kt_des, des_v, 8, &no, &no);
	k_des2 = secret_key("des2", &kt_des2, des2_v, 16, &no, &no);
	k_des3 = secret_key("des3", &kt_des3, des3_v, 24, &no, &no);
	k_gen = secret_key("generic64", &kt_gen, generic_v, 64, &no, &no);
	k_tokaes = secret_key("token-aes", &kt_aes, aes128_v, 16, &no, &yes);

	CK_ATTRIBUTE rpriv[] = {
		AV(CKA_CLASS, cls_priv), AV(CKA_KEY_TYPE, kt_rsa), AV(CKA_TOKEN, no), AV(CKA_PRIVATE, yes),
		AS(CKA_LABEL, "rsa"), AV(CKA_MODULUS, rsa_n), AV(CKA_PUBLIC_EXPONENT, rsa_e),
		AV(CKA_PRIVATE_EXPONENT, rsa_d), AV(CKA_PRIME_1, rsa_p), AV(CKA_PRIME_2, rsa_q),
		AV(CKA_EXPONENT_1, rsa_dp), AV(CKA_EXPONENT_2, rsa_dq), AV(CKA_COEFFICIENT, rsa_qinv),
		AV(CKA_SIGN, yes), AV(CKA_SIGN_RECOVER, yes), AV(CKA_DECRYPT, yes), AV(CKA_UNWRAP, yes),
		AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes),
	};
	k_rsa_priv = create("rsa.priv", rpriv, ARRAY_LEN(rpriv));
	CK_ATTRIBUTE rpub[] = {
		AV(CKA_CLASS, cls_pub), AV(CKA_KEY_TYPE, kt_rsa), AV(CKA_TOKEN, no), AS(CKA_LABEL, "rsa"),
		AV(CKA_MODULUS, rsa_n), AV(CKA_PUBLIC_EXPONENT, rsa_e), AV(CKA_VERIFY, yes),
		AV(CKA_VERIFY_RECOVER, yes), AV(CKA_ENCRYPT, yes), AV(CKA_WRAP, yes),
	};
	k_rsa_pub = create("rsa.pub", rpub, ARRAY_LEN(rpub));

	CK_ATTRIBUTE epriv[] = {
		AV(CKA_CLASS, cls_priv), AV(CKA_KEY_TYPE, kt_ec), AV(CKA_TOKEN, no), AS(CKA_LABEL, "ec"),
		AV(CKA_EC_PARAMS, oid_p256), AV(CKA_VALUE, ec_d), AV(CKA_SIGN, yes), AV(CKA_DERIVE, yes),
		AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes),
	};
	k_ec_priv = create("ec.priv", epriv, ARRAY_LEN(epriv));
	CK_ATTRIBUTE epub[] = {
		AV(CKA_CLASS, cls_pub), AV(CKA_KEY_TYPE, kt_ec), AV(CKA_TOKEN, no), AS(CKA_LABEL, "ec"),
		AV(CKA_EC_PARAMS, oid_p256), AV(CKA_EC_POINT, ec_point), AV(CKA_VERIFY, yes),
	};
	k_ec_pub = create("ec.pub", epub, ARRAY_LEN(epub));

	CK_ATTRIBUTE dpriv[] = {
		AV(CKA_CLASS, cls_priv), AV(CKA_KEY_TYPE, kt_ed), AV(CKA_TOKEN, no), AS(CKA_LABEL, "ed25519"),
		AV(CKA_EC_PARAMS, oid_ed25519), AV(CKA_VALUE, ed_priv), AV(CKA_SIGN, yes),
		AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes),
	};
	k_ed_priv = create("ed25519.priv", dpriv, ARRAY_LEN(dpriv));
	CK_ATTRIBUTE dpub[] = {
		AV(CKA_CLASS, cls_pub), AV(CKA_KEY_TYPE, kt_ed), AV(CKA_TOKEN, no), AS(CKA_LABEL, "ed25519"),
		AV(CKA_EC_PARAMS, oid_ed25519), AV(CKA_EC_POINT, ed_pub), AV(CKA_VERIFY, yes),
	};
	k_ed_pub = create("ed25519.pub", dpub, ARRAY_LEN(dpub));

	CK_ATTRIBUTE spriv[] = {
		AV(CKA_CLASS, cls_priv), AV(CKA_KEY_TYPE, kt_dsa), AV(CKA_TOKEN, no), AS(CKA_LABEL, "dsa"),
		AV(CKA_PRIME, dsa_p), AV(CKA_SUBPRIME, dsa_q), AV(CKA_BASE, dsa_g), AV(CKA_VALUE, dsa_x),
		AV(CKA_SIGN, yes), AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes),
	};
	k_dsa_priv = create("dsa.priv", spriv, ARRAY_LEN(spriv));
	CK_ATTRIBUTE spub[] = {
		AV(CKA_CLASS, cls_pub), AV(CKA_KEY_TYPE, kt_dsa), AV(CKA_TOKEN, no), AS(CKA_LABEL, "dsa"),
		AV(CKA_PRIME, dsa_p), AV(CKA_SUBPRIME, dsa_q), AV(CKA_BASE, dsa_g), AV(CKA_VALUE, dsa_y),
		AV(CKA_VERIFY, yes),
	};
	k_dsa_pub = create("dsa.pub", spub, ARRAY_LEN(spub));

	CK_ATTRIBUTE h1[] = {
		AV(CKA_CLASS, cls_priv), AV(CKA_KEY_TYPE, kt_dh), AV(CKA_TOKEN, no), AS(CKA_LABEL, "dh1"),
		AV(CKA_PRIME, dh_p), AV(CKA_BASE, dh_g), AV(CKA_VALUE, dh_x1), AV(CKA_DERIVE, yes),
		AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes),
	};
	k_dh1 = create("dh1.priv", h1, ARRAY_LEN(h1));
	CK_ATTRIBUTE h2[] = {
		AV(CKA_CLASS, cls_priv), AV(CKA_KEY_TYPE, kt_dh), AV(CKA_TOKEN, no), AS(CKA_LABEL, "dh2"),
		AV(CKA_PRIME, dh_p), AV(CKA_BASE, dh_g), AV(CKA_VALUE, dh_x2), AV(CKA_DERIVE, yes),
		AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes),
	};
	k_dh2 = create("dh2.priv", h2, ARRAY_LEN(h2));

	static const char app[] = "diff harness";
	CK_ATTRIBUTE d[] = {
		AV(CKA_CLASS, cls_data), AV(CKA_TOKEN, yes), AV(CKA_PRIVATE, no), AS(CKA_LABEL, "data"),
		AS(CKA_APPLICATION, app), AP(CKA_VALUE, msg, 100),
	};
	k_data = create("data", d, ARRAY_LEN(d));

	/* A key that may not encrypt, a key limited to two mechanisms. */
	CK_ATTRIBUTE ne[] = {
		AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no), AS(CKA_LABEL, "aes-noenc"),
		AV(CKA_VALUE, aes128_v), AV(CKA_ENCRYPT, no), AV(CKA_DECRYPT, no), AV(CKA_SIGN, no),
		AV(CKA_WRAP, no), AV(CKA_DERIVE, no), AV(CKA_EXTRACTABLE, no), AV(CKA_SENSITIVE, yes),
		AV(CKA_COPYABLE, no), AV(CKA_DESTROYABLE, no), AV(CKA_MODIFIABLE, no),
	};
	k_noenc = create("aes-noenc", ne, ARRAY_LEN(ne));
	CK_MECHANISM_TYPE allowed[] = {CKM_AES_CBC, CKM_AES_ECB};
	CK_ATTRIBUTE lim[] = {
		AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no), AS(CKA_LABEL, "aes-limited"),
		AV(CKA_VALUE, aes128_v), AV(CKA_ENCRYPT, yes), AV(CKA_DECRYPT, yes),
		AV(CKA_ALLOWED_MECHANISMS, allowed),
	};
	k_limited = create("aes-limited", lim, ARRAY_LEN(lim));

	/* Nested templates (wt, ut, dt: file scope, nested_read knows them). */
	CK_ATTRIBUTE w[] = {
		AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no), AS(CKA_LABEL, "wrapper"),
		AV(CKA_VALUE, aes256_v), AV(CKA_WRAP, yes), AV(CKA_UNWRAP, yes), AV(CKA_DERIVE, yes),
		AV(CKA_ENCRYPT, yes), AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes),
		AV(CKA_WRAP_TEMPLATE, wt), AV(CKA_UNWRAP_TEMPLATE, ut),
	};
	k_wrapper = create("wrapper", w, ARRAY_LEN(w));
	CK_ATTRIBUTE dk[] = {
		AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no), AS(CKA_LABEL, "deriver"),
		AV(CKA_VALUE, aes256_v), AV(CKA_DERIVE, yes), AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes),
		AV(CKA_DERIVE_TEMPLATE, dt),
	};
	k_deriver = create("deriver (DERIVE_TEMPLATE)", dk, ARRAY_LEN(dk));
	CK_ATTRIBUTE wo[] = {
		AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no), AS(CKA_LABEL, "wrapper-only"),
		AV(CKA_VALUE, aes256_v), AV(CKA_WRAP, yes), AV(CKA_WRAP_TEMPLATE, wt),
	};
	create("wrapper with only WRAP_TEMPLATE", wo, ARRAY_LEN(wo));
}

/* A nested template: its length; the outer buffer one entry short; types
 * and lengths (every nested pValue NULL); the values, asked in reverse order
 * of what the script wrote (known, nknown) with buffers of exactly the
 * written lengths; the first one a byte short; a type it does not hold.
 * The later steps use the written types, not what an earlier step returned,
 * so one difference does not cascade. */
static void nested_read(const char *tag0, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, const CK_ATTRIBUTE *known,
			size_t nknown)
{
	char tag[256];
	snprintf(tag, sizeof tag, "%s", tag0);
	enum { MAXN = 16 };
	CK_ATTRIBUTE a = {type, NULL, SENTINEL_LEN};
	CK_RV rv = P(C_GetAttributeValue)(S, h, &a, 1);
	rec(fmt("%s length", tag), "rv=%s len=%s", rvn(rv), lens(a.ulValueLen));
	CK_ULONG len = a.ulValueLen;
	if (rv != CKR_OK || len % sizeof(CK_ATTRIBUTE) || len > MAXN * sizeof(CK_ATTRIBUTE))
		return;
	size_t n = len / sizeof(CK_ATTRIBUTE);
	CK_ATTRIBUTE in[MAXN + 1];

	if (n > 0) {
		memset(in, CANARY, sizeof in);
		for (size_t i = 0; i < n; i++)
			in[i] = (CK_ATTRIBUTE){SENTINEL_LEN, NULL, SENTINEL_LEN};
		a = (CK_ATTRIBUTE){type, in, (n - 1) * sizeof(CK_ATTRIBUTE)};
		rv = P(C_GetAttributeValue)(S, h, &a, 1);
		rec(fmt("%s outer buffer one entry short", tag), "rv=%s len=%s first=%s", rvn(rv), lens(a.ulValueLen),
		    in[0].type == SENTINEL_LEN ? "untouched" : "WRITTEN");
	}

	/* Types and lengths: every nested pValue NULL. */
	memset(in, CANARY, sizeof in);
	for (size_t i = 0; i < n; i++)
		in[i] = (CK_ATTRIBUTE){SENTINEL_LEN, NULL, SENTINEL_LEN};
	a = (CK_ATTRIBUTE){type, in, len};
	rv = P(C_GetAttributeValue)(S, h, &a, 1);
	rec(fmt("%s types and lengths", tag), "rv=%s len=%s extra=%s", rvn(rv), lens(a.ulValueLen),
	    untouched((CK_BYTE *)&in[n], 0, sizeof in[n]) ? "untouched" : "WRITTEN");
	for (size_t i = 0; i < n; i++)
		rec(fmt("%s [%zu]", tag, i), "type=%s len=%s pValue=%s",
		    in[i].type == SENTINEL_LEN ? "unchanged" : attrn(in[i].type), lens(in[i].ulValueLen),
		    in[i].pValue ? "set" : "NULL");

	/* Values, asked in reverse order, each buffer exactly long enough. */
	CK_ATTRIBUTE fill[MAXN];
	CK_ULONG cap[MAXN];
	n = nknown < MAXN ? nknown : MAXN;
	len = n * sizeof(CK_ATTRIBUTE);
	for (size_t i = 0; i < n; i++) {
		CK_ULONG l = known[n - 1 - i].ulValueLen;
		cap[i] = l < 4096 ? l : 0;
		fill[i].type = known[n - 1 - i].type;
		fill[i].pValue = malloc(cap[i] + 8);
		memset(fill[i].pValue, CANARY, cap[i] + 8);
		fill[i].ulValueLen = cap[i];
	}
	a = (CK_ATTRIBUTE){type, fill, len};
	rv = P(C_GetAttributeValue)(S, h, &a, 1);
	rec(fmt("%s values", tag), "rv=%s len=%s", rvn(rv), lens(a.ulValueLen));
	for (size_t i = 0; i < n; i++)
		rec(fmt("%s value [%zu]", tag, i), "type=%s len=%s val=%s tail=%s", attrn(fill[i].type),
		    lens(fill[i].ulValueLen),
		    fill[i].ulValueLen <= cap[i] ? attr_val(fill[i].type, fill[i].pValue, fill[i].ulValueLen, 1) : "-",
		    untouched(fill[i].pValue, fill[i].ulValueLen <= cap[i] ? fill[i].ulValueLen : 0, cap[i] + 8)
			    ? "untouched"
			    : "WRITTEN");

	/* The first nested buffer one byte short. */
	if (n > 0 && cap[0] > 0) {
		for (size_t i = 0; i < n; i++) {
			memset(fill[i].pValue, CANARY, cap[i] + 8);
			fill[i].ulValueLen = cap[i];
		}
		fill[0].ulValueLen = cap[0] - 1;
		rv = P(C_GetAttributeValue)(S, h, &a, 1);
		rec(fmt("%s first value one byte short", tag), "rv=%s len=%s nested0=%s nested0buf=%s", rvn(rv),
		    lens(a.ulValueLen), lens(fill[0].ulValueLen),
		    untouched(fill[0].pValue, 0, cap[0] + 8) ? "untouched" : "WRITTEN");
	}
	/* A nested type the template does not hold. */
	if (n > 0) {
		for (size_t i = 0; i < n; i++) {
			memset(fill[i].pValue, CANARY, cap[i] + 8);
			fill[i].ulValueLen = cap[i];
		}
		CK_ATTRIBUTE_TYPE keep = fill[n - 1].type;
		fill[n - 1].type = CKA_MODULUS;
		rv = P(C_GetAttributeValue)(S, h, &a, 1);
		rec(fmt("%s unknown nested type", tag), "rv=%s len=%s last=%s", rvn(rv), lens(a.ulValueLen),
		    lens(fill[n - 1].ulValueLen));
		fill[n - 1].type = keep;
	}
	/* The outer length 5 bytes more than a whole number of CK_ATTRIBUTEs:
	 * the vendor reads the buffer as a template all the same. */
	if (n > 0) {
		void *keep[MAXN];
		for (size_t i = 0; i < n; i++) {
			memset(fill[i].pValue, CANARY, cap[i] + 8);
			fill[i].ulValueLen = cap[i];
			keep[i] = fill[i].pValue;
		}
		a = (CK_ATTRIBUTE){type, fill, len + 5};
		rv = P(C_GetAttributeValue)(S, h, &a, 1);
		rec(fmt("%s outer length not a whole number of attributes", tag), "rv=%s len=%s", rvn(rv),
		    lens(a.ulValueLen));
		for (size_t i = 0; i < n; i++) {
			int kept = fill[i].pValue == keep[i];
			rec(fmt("%s odd outer length [%zu]", tag, i), "type=%s len=%s pValue=%s val=%s", attrn(fill[i].type),
			    lens(fill[i].ulValueLen), kept ? "kept" : fill[i].pValue ? "CHANGED to another pointer" : "CHANGED to NULL",
			    kept && fill[i].ulValueLen <= cap[i] ? attr_val(fill[i].type, keep[i], fill[i].ulValueLen, 1) : "-");
			fill[i].pValue = keep[i];
		}
	}
	for (size_t i = 0; i < n; i++)
		free(fill[i].pValue);
}

static void area_objects(void)
{
	set_area("objects", 120);
	create_fixed_keys();

	/* Creation edge cases. */
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ATTRIBUTE ok[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no),
			     AV(CKA_VALUE, aes128_v)};
	rrv("C_CreateObject(NULL phObject)", P(C_CreateObject)(S, ok, ARRAY_LEN(ok), NULL));
	rrv("C_CreateObject(NULL template)", P(C_CreateObject)(S, NULL, 3, &h));
	CK_ATTRIBUTE incomplete[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no)};
	create("incomplete secret", incomplete, ARRAY_LEN(incomplete));
	CK_ATTRIBUTE badlen[] = {AP(CKA_CLASS, &cls_secret, 3), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_VALUE, aes128_v)};
	create("class of 3 bytes", badlen, ARRAY_LEN(badlen));
	CK_ATTRIBUTE badaes[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no),
				 AP(CKA_VALUE, aes128_v, 15)};
	create("aes of 15 bytes", badaes, ARRAY_LEN(badaes));
	CK_ATTRIBUTE badtype[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no),
				  AV(CKA_VALUE, aes128_v), AP(0x7fff0001UL, "x", 1)};
	create("unknown attribute type", badtype, ARRAY_LEN(badtype));
	CK_ATTRIBUTE nullval[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no),
				  AP(CKA_VALUE, NULL, 16)};
	create("VALUE pointer NULL", nullval, ARRAY_LEN(nullval));
	CK_ATTRIBUTE tokobj[] = {AV(CKA_CLASS, cls_data), AV(CKA_TOKEN, yes), AS(CKA_LABEL, "ro")};
	create_in(R, "token object in a RO session", tokobj, ARRAY_LEN(tokobj));
	CK_ATTRIBUTE sessobj[] = {AV(CKA_CLASS, cls_data), AV(CKA_TOKEN, no), AV(CKA_PRIVATE, no),
				  AS(CKA_LABEL, "ro-session")};
	create_in(R, "session object in a RO session", sessobj, ARRAY_LEN(sessobj));

	/* Every attribute of every fixed object. */
	static const struct {
		const char *n;
		CK_OBJECT_HANDLE *h;
	} all[] = {
		{"aes128", &k_aes128}, {"aes-sensitive", &k_aes_sens}, {"des", &k_des}, {"des2", &k_des2},
		{"des3", &k_des3}, {"generic64", &k_gen}, {"token-aes", &k_tokaes}, {"rsa.priv", &k_rsa_priv},
		{"rsa.pub", &k_rsa_pub}, {"ec.priv", &k_ec_priv}, {"ec.pub", &k_ec_pub},
		{"ed25519.priv", &k_ed_priv}, {"ed25519.pub", &k_ed_pub}, {"dsa.priv", &k_dsa_priv},
		{"dsa.pub", &k_dsa_pub}, {"dh1.priv", &k_dh1}, {"data", &k_data}, {"aes-noenc", &k_noenc},
		{"aes-limited", &k_limited}, {"wrapper", &k_wrapper},
	};
	for (size_t i = 0; i < ARRAY_LEN(all); i++)
		dump_obj(fmt("attrs %s", all[i].n), *all[i].h, 1);

	/* One template mixing a readable attribute, a sensitive one, an
	 * invalid type, a short buffer and a length query. */
	{
		CK_OBJECT_CLASS c = SENTINEL_LEN;
		CK_BYTE v[40], lab[8], kt[16];
		CK_ULONG vl = SENTINEL_LEN;
		memset(v, CANARY, sizeof v), memset(lab, CANARY, sizeof lab), memset(kt, CANARY, sizeof kt);
		CK_ATTRIBUTE t[] = {
			AV(CKA_CLASS, c), AP(CKA_VALUE, v, 32), AP(0x7fff0001UL, kt, 8),
			AP(CKA_LABEL, lab, 5), AP(CKA_KEY_TYPE, NULL, 0), AV(CKA_VALUE_LEN, vl),
		};
		CK_RV rv = P(C_GetAttributeValue)(S, k_aes_sens, t, ARRAY_LEN(t));
		rec("mixed template", "rv=%s", rvn(rv));
		rec("mixed CLASS", "len=%s val=%s", lens(t[0].ulValueLen), ulong_s(c));
		rec("mixed VALUE (sensitive)", "len=%s buffer=%s", lens(t[1].ulValueLen),
		    untouched(v, 0, sizeof v) ? "untouched" : "WRITTEN");
		rec("mixed invalid type", "len=%s buffer=%s", lens(t[2].ulValueLen),
		    untouched(kt, 0, sizeof kt) ? "untouched" : "WRITTEN");
		rec("mixed LABEL (5-byte buffer)", "len=%s buffer=%s", lens(t[3].ulValueLen),
		    untouched(lab, 0, sizeof lab) ? "untouched" : "WRITTEN");
		rec("mixed KEY_TYPE (length query)", "len=%s pValue=%s", lens(t[4].ulValueLen),
		    t[4].pValue ? "set" : "NULL");
		rec("mixed VALUE_LEN", "len=%s val=%s", lens(t[5].ulValueLen), ulong_s(vl));
	}
	rec_attr("sensitive VALUE alone", k_aes_sens, CKA_VALUE, 1);
	rec_attr("invalid type alone", k_aes128, 0x7fff0001UL, 1);
	{
		CK_BYTE b[4];
		memset(b, CANARY, sizeof b);
		CK_ATTRIBUTE a = {CKA_VALUE, b, 4};
		CK_RV rv = P(C_GetAttributeValue)(S, k_aes128, &a, 1);
		rec("short buffer alone", "rv=%s len=%s buffer=%s", rvn(rv), lens(a.ulValueLen),
		    untouched(b, 0, 4) ? "untouched" : "WRITTEN");
		a = (CK_ATTRIBUTE){CKA_VALUE, b, 0};
		rv = P(C_GetAttributeValue)(S, k_aes128, &a, 1);
		rec("zero buffer alone", "rv=%s len=%s", rvn(rv), lens(a.ulValueLen));
		CK_BYTE big[64];
		memset(big, CANARY, sizeof big);
		a = (CK_ATTRIBUTE){CKA_VALUE, big, sizeof big};
		rv = P(C_GetAttributeValue)(S, k_aes128, &a, 1);
		rec("larger buffer alone", "rv=%s len=%s val=%s tail=%s", rvn(rv), lens(a.ulValueLen),
		    a.ulValueLen <= sizeof big ? hex(big, a.ulValueLen) : "-",
		    a.ulValueLen <= sizeof big && untouched(big, a.ulValueLen, sizeof big) ? "untouched" : "WRITTEN");
	}
	rrv("C_GetAttributeValue(NULL template)", P(C_GetAttributeValue)(S, k_aes128, NULL, 1));
	{
		CK_ATTRIBUTE a = {CKA_CLASS, NULL, 0};
		rrv("C_GetAttributeValue(count 0)", P(C_GetAttributeValue)(S, k_aes128, &a, 0));
		rrv("C_GetAttributeValue(bad object)", P(C_GetAttributeValue)(S, BAD_OBJECT, &a, 1));
		rrv("C_GetAttributeValue(object 0)", P(C_GetAttributeValue)(S, CK_INVALID_HANDLE, &a, 1));
		rrv("C_GetAttributeValue(private key, RO session, public only)",
		    P(C_GetAttributeValue)(R, k_rsa_priv, &a, 1));
	}

	/* Nested templates and the allowed mechanisms. */
	nested_read("WRAP_TEMPLATE", k_wrapper, CKA_WRAP_TEMPLATE, wt, ARRAY_LEN(wt));
	nested_read("UNWRAP_TEMPLATE", k_wrapper, CKA_UNWRAP_TEMPLATE, ut, ARRAY_LEN(ut));
	nested_read("DERIVE_TEMPLATE", k_wrapper, CKA_DERIVE_TEMPLATE, NULL, 0);
	nested_read("DERIVE_TEMPLATE of deriver", k_deriver, CKA_DERIVE_TEMPLATE, dt, ARRAY_LEN(dt));
	nested_read("WRAP_TEMPLATE of a key without one", k_aes128, CKA_WRAP_TEMPLATE, NULL, 0);
	{
		CK_MECHANISM_TYPE m[4];
		memset(m, CANARY, sizeof m);
		CK_ATTRIBUTE a = {CKA_ALLOWED_MECHANISMS, NULL, SENTINEL_LEN};
		CK_RV rv = P(C_GetAttributeValue)(S, k_limited, &a, 1);
		rec("ALLOWED_MECHANISMS length", "rv=%s len=%s", rvn(rv), lens(a.ulValueLen));
		a = (CK_ATTRIBUTE){CKA_ALLOWED_MECHANISMS, m, sizeof m[0]};
		rv = P(C_GetAttributeValue)(S, k_limited, &a, 1);
		rec("ALLOWED_MECHANISMS short", "rv=%s len=%s buffer=%s", rvn(rv), lens(a.ulValueLen),
		    untouched((CK_BYTE *)m, 0, sizeof m) ? "untouched" : "WRITTEN");
		a = (CK_ATTRIBUTE){CKA_ALLOWED_MECHANISMS, m, sizeof m};
		rv = P(C_GetAttributeValue)(S, k_limited, &a, 1);
		rec("ALLOWED_MECHANISMS", "rv=%s len=%s val=%s", rvn(rv), lens(a.ulValueLen),
		    rv == CKR_OK ? attr_val(CKA_ALLOWED_MECHANISMS, m, a.ulValueLen, 1) : "-");
		minit("limited key: EncryptInit AES_CTR (not allowed)", P(C_EncryptInit), CKM_AES_CTR, NULL, 0, k_limited);
		if (minit("limited key: EncryptInit AES_ECB (allowed)", P(C_EncryptInit), CKM_AES_ECB, NULL, 0,
			  k_limited) == CKR_OK)
			yio("limited key: Encrypt", P(C_Encrypt), msg, 16, Y_DET, NULL, NULL);
	}

	/* C_SetAttributeValue */
	{
		CK_ATTRIBUTE a[] = {AS(CKA_LABEL, "relabelled")};
		rrv("C_SetAttributeValue(LABEL)", P(C_SetAttributeValue)(S, k_aes128, a, 1));
		rec_attr("LABEL after set", k_aes128, CKA_LABEL, 1);
		CK_ATTRIBUTE v[] = {AV(CKA_VALUE, aes256_v)};
		rrv("C_SetAttributeValue(VALUE)", P(C_SetAttributeValue)(S, k_aes128, v, 1));
		CK_ATTRIBUTE c[] = {AV(CKA_CLASS, cls_data)};
		rrv("C_SetAttributeValue(CLASS)", P(C_SetAttributeValue)(S, k_aes128, c, 1));
		CK_ATTRIBUTE s1[] = {AV(CKA_SENSITIVE, yes)};
		CK_ATTRIBUTE s0[] = {AV(CKA_SENSITIVE, no)};
		rrv("C_SetAttributeValue(SENSITIVE true)", P(C_SetAttributeValue)(S, k_aes256, s1, 1));
		rrv("C_SetAttributeValue(SENSITIVE false)", P(C_SetAttributeValue)(S, k_aes256, s0, 1));
		rrv("C_SetAttributeValue(SENSITIVE back to false on aes256)", P(C_SetAttributeValue)(S, k_aes256, s0, 1));
		rrv("C_SetAttributeValue(unmodifiable key)", P(C_SetAttributeValue)(S, k_noenc, a, 1));
		rrv("C_SetAttributeValue(NULL template)", P(C_SetAttributeValue)(S, k_aes128, NULL, 1));
		rrv("C_SetAttributeValue(bad object)", P(C_SetAttributeValue)(S, BAD_OBJECT, a, 1));
		rrv("C_SetAttributeValue(token object in RO session)", P(C_SetAttributeValue)(R, k_tokaes, a, 1));
		CK_ATTRIBUTE two[] = {AS(CKA_LABEL, "two"), AV(CKA_VALUE, aes256_v)};
		rrv("C_SetAttributeValue(LABEL and VALUE)", P(C_SetAttributeValue)(S, k_aes128, two, 2));
		rec_attr("LABEL after refused set", k_aes128, CKA_LABEL, 1);
		CK_MECHANISM_TYPE am[] = {CKM_AES_ECB};
		CK_ATTRIBUTE al[] = {AV(CKA_ALLOWED_MECHANISMS, am)};
		rrv("C_SetAttributeValue(ALLOWED_MECHANISMS)", P(C_SetAttributeValue)(S, k_limited, al, 1));
		rec_attr("ALLOWED_MECHANISMS after set", k_limited, CKA_ALLOWED_MECHANISMS, 1);
		CK_ATTRIBUTE wt2[] = {AV(CKA_KEY_TYPE, kt_aes), AV(CKA_SENSITIVE, no)};
		CK_ATTRIBUTE st[] = {AV(CKA_WRAP_TEMPLATE, wt2)};
		rrv("C_SetAttributeValue(WRAP_TEMPLATE)", P(C_SetAttributeValue)(S, k_aes256, st, 1));
		nested_read("WRAP_TEMPLATE after set", k_aes256, CKA_WRAP_TEMPLATE, wt2, ARRAY_LEN(wt2));
		CK_ATTRIBUTE empty[] = {AP(CKA_WRAP_TEMPLATE, NULL, 0)};
		rrv("C_SetAttributeValue(empty WRAP_TEMPLATE)", P(C_SetAttributeValue)(S, k_aes256, empty, 1));
		nested_read("WRAP_TEMPLATE after emptying", k_aes256, CKA_WRAP_TEMPLATE, NULL, 0);
	}

	/* C_CopyObject, C_GetObjectSize, C_DestroyObject */
	{
		CK_OBJECT_HANDLE c = CK_INVALID_HANDLE;
		CK_ATTRIBUTE a[] = {AS(CKA_LABEL, "copy")};
		CK_RV rv = P(C_CopyObject)(S, k_aes128, a, 1, &c);
		rec("C_CopyObject", "rv=%s handle=%s distinct=%s", rvn(rv), c ? "set" : "unset",
		    c != k_aes128 ? "yes" : "no");
		if (rv == CKR_OK) {
			reg("copy", c);
			rec_attr("copy LABEL", c, CKA_LABEL, 1);
			rec_attr("copy VALUE", c, CKA_VALUE, 1);
		}
		rrv("C_CopyObject(NULL phNewObject)", P(C_CopyObject)(S, k_aes128, a, 1, NULL));
		CK_OBJECT_HANDLE c2 = CK_INVALID_HANDLE;
		rrv("C_CopyObject(bad object)", P(C_CopyObject)(S, BAD_OBJECT, a, 1, &c2));
		rrv("C_CopyObject(uncopyable)", P(C_CopyObject)(S, k_noenc, a, 1, &c2));
		CK_ATTRIBUTE cl[] = {AV(CKA_CLASS, cls_data)};
		rrv("C_CopyObject(change CLASS)", P(C_CopyObject)(S, k_aes128, cl, 1, &c2));
		CK_OBJECT_HANDLE c3 = CK_INVALID_HANDLE;
		rv = P(C_CopyObject)(S, k_aes128, NULL, 0, &c3);
		rec("C_CopyObject(no template)", "rv=%s handle=%s", rvn(rv), c3 ? "set" : "unset");
		if (rv == CKR_OK)
			reg("copy2", c3);
		CK_ATTRIBUTE cwt[] = {AS(CKA_LABEL, "copy-with-template"), AV(CKA_WRAP_TEMPLATE, wt)};
		CK_OBJECT_HANDLE c5 = CK_INVALID_HANDLE;
		rv = P(C_CopyObject)(S, k_aes128, cwt, 2, &c5);
		rec("C_CopyObject(with a WRAP_TEMPLATE)", "rv=%s handle=%s", rvn(rv), c5 ? "set" : "unset");
		if (rv == CKR_OK) {
			reg("copy-with-template", c5);
			nested_read("copy's WRAP_TEMPLATE", c5, CKA_WRAP_TEMPLATE, wt, ARRAY_LEN(wt));
		}
		CK_ATTRIBUTE tok[] = {AV(CKA_TOKEN, yes)};
		CK_OBJECT_HANDLE c4 = CK_INVALID_HANDLE;
		rv = P(C_CopyObject)(S, k_aes128, tok, 1, &c4);
		rec("C_CopyObject(to token)", "rv=%s handle=%s", rvn(rv), c4 ? "set" : "unset");
		if (rv == CKR_OK)
			reg("copy-token", c4);

		static const struct {
			const char *n;
			CK_OBJECT_HANDLE *h;
		} sz[] = {{"aes128", &k_aes128}, {"rsa.priv", &k_rsa_priv}, {"data", &k_data}, {"token-aes", &k_tokaes}};
		for (size_t i = 0; i < ARRAY_LEN(sz); i++) {
			CK_ULONG size = SENTINEL_LEN;
			rv = P(C_GetObjectSize)(S, *sz[i].h, &size);
			rec(fmt("C_GetObjectSize %s", sz[i].n), "rv=%s size=%s", rvn(rv), lens(size));
		}
		rrv("C_GetObjectSize(NULL)", P(C_GetObjectSize)(S, k_aes128, NULL));
		CK_ULONG size;
		rrv("C_GetObjectSize(bad object)", P(C_GetObjectSize)(S, BAD_OBJECT, &size));

		if (c4)
			destroy("C_DestroyObject(token copy)", c4);
		if (c)
			destroy("C_DestroyObject(copy)", c);
		rrv("C_DestroyObject(copy) again", P(C_DestroyObject)(S, c));
		/* A refused C_GetAttributeValue (a destroyed object, a bad
		 * session) leaves the template alone: its lengths as the
		 * application set them, no byte of its buffers written. */
		static const struct {
			const char *n;
			CK_SESSION_HANDLE s;
		} refused[] = {{"destroyed object", 0}, {"bad session", BAD_SESSION}};
		for (size_t i = 0; i < ARRAY_LEN(refused); i++) {
			CK_BYTE vbuf[64];
			memset(vbuf, CANARY, sizeof vbuf);
			CK_ATTRIBUTE ra[2] = {{CKA_LABEL, vbuf, 16}, {CKA_ID, vbuf + 32, 16}};
			rv = P(C_GetAttributeValue)(refused[i].s ? refused[i].s : S, c, ra, 2);
			rec(fmt("C_GetAttributeValue(%s)", refused[i].n), "rv=%s lens=%s,%s buffers=%s", rvn(rv),
			    ulong_s(ra[0].ulValueLen), ulong_s(ra[1].ulValueLen), untouched(vbuf, 0, sizeof vbuf) ? "untouched" : "written");
		}
		rrv("C_DestroyObject(bad object)", P(C_DestroyObject)(S, BAD_OBJECT));
		rrv("C_DestroyObject(undestroyable)", P(C_DestroyObject)(S, k_noenc));
		rrv("C_DestroyObject(token object in RO session)", P(C_DestroyObject)(R, k_tokaes));
		rec_attr("copy2 still there", c3, CKA_LABEL, 1);
	}
}

/* Names of the objects a search finds, sorted. */
static const char *names_of(const CK_OBJECT_HANDLE *h, CK_ULONG n)
{
	const char **v = calloc(n + 1, sizeof *v);
	size_t total = 3;
	for (CK_ULONG i = 0; i < n; i++) {
		v[i] = objname(h[i]);
		if (strcmp(v[i], "unknown") == 0) {
			/* an object the script did not register: its label */
			CK_BYTE b[64];
			long l = get_attr(h[i], CKA_LABEL, b, sizeof b);
			v[i] = l >= 0 ? fmt("unregistered%s", txt(b, (size_t)l)) : "unregistered";
		}
		total += strlen(v[i]) + 1;
	}
	for (CK_ULONG i = 0; i < n; i++)
		for (CK_ULONG j = i + 1; j < n; j++)
			if (strcmp(v[j], v[i]) < 0) {
				const char *t = v[i];
				v[i] = v[j];
				v[j] = t;
			}
	char *s = pool_take(total);
	strcpy(s, "[");
	for (CK_ULONG i = 0; i < n; i++) {
		if (i)
			strcat(s, ",");
		strcat(s, v[i]);
	}
	strcat(s, "]");
	free(v);
	return s;
}

static void find(const char *tag, CK_SESSION_HANDLE s, CK_ATTRIBUTE *t, CK_ULONG n, CK_ULONG max)
{
	CK_OBJECT_HANDLE all[256], buf[16];
	CK_ULONG total = 0;
	CK_RV rv = P(C_FindObjectsInit)(s, t, n);
	rrv(fmt("%s init", tag), rv);
	if (rv != CKR_OK)
		return;
	for (int call = 0; call < 100; call++) {
		CK_ULONG cnt = SENTINEL_LEN;
		memset(buf, CANARY, sizeof buf);
		rv = P(C_FindObjects)(s, buf, max, &cnt);
		int tail = cnt <= max && untouched((CK_BYTE *)buf, cnt * sizeof buf[0], sizeof buf);
		rec(fmt("%s call %d", tag, call), "rv=%s count=%s tail=%s", rvn(rv), lens(cnt),
		    tail ? "untouched" : "WRITTEN");
		if (rv != CKR_OK || cnt == 0 || cnt > max)
			break;
		for (CK_ULONG i = 0; i < cnt && total < ARRAY_LEN(all); i++)
			all[total++] = buf[i];
	}
	rec(fmt("%s found", tag), "count=%lu objects=%s", total, names_of(all, total));
	rrv(fmt("%s final", tag), P(C_FindObjectsFinal)(s));
}

static void area_find(void)
{
	set_area("find", 60);
	CK_ATTRIBUTE secret[] = {AV(CKA_CLASS, cls_secret)};
	find("secret keys, 2 at a time", S, secret, 1, 2);
	find("secret keys, 1 at a time", S, secret, 1, 1);
	find("all objects, 5 at a time", S, NULL, 0, 5);
	find("all objects from the RO session", R, NULL, 0, 16);
	CK_ATTRIBUTE lab[] = {AS(CKA_LABEL, "rsa")};
	find("label rsa", S, lab, 1, 16);
	CK_ATTRIBUTE tok[] = {AV(CKA_TOKEN, yes)};
	find("token objects", S, tok, 1, 16);
	CK_ATTRIBUTE none[] = {AS(CKA_LABEL, "no such object")};
	find("no match", S, none, 1, 16);
	CK_ATTRIBUTE bad[] = {AP(0x7fff0001UL, "x", 1)};
	find("unknown attribute type", S, bad, 1, 16);
	CK_ATTRIBUTE two[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes)};
	find("AES secret keys", S, two, 2, 3);
	CK_ATTRIBUTE bywt[] = {AV(CKA_WRAP_TEMPLATE, wt)};
	find("by WRAP_TEMPLATE (a nested template)", S, bywt, 1, 16);
	CK_ATTRIBUTE bywt2[] = {AP(CKA_WRAP_TEMPLATE, wt, sizeof wt - sizeof wt[0])};
	find("by a WRAP_TEMPLATE of one attribute less", S, bywt2, 1, 16);

	CK_OBJECT_HANDLE h[4];
	CK_ULONG cnt;
	rrv("C_FindObjects without init", P(C_FindObjects)(S, h, 4, &cnt));
	rrv("C_FindObjectsFinal without init", P(C_FindObjectsFinal)(S));
	rrv("C_FindObjectsInit(NULL, 1)", P(C_FindObjectsInit)(S, NULL, 1));
	rrv("C_FindObjectsInit", P(C_FindObjectsInit)(S, secret, 1));
	rrv("C_FindObjectsInit again", P(C_FindObjectsInit)(S, secret, 1));
	rrv("C_FindObjects(NULL handles)", P(C_FindObjects)(S, NULL, 4, &cnt));
	rrv("C_FindObjects(NULL count)", P(C_FindObjects)(S, h, 4, NULL));
	cnt = SENTINEL_LEN;
	CK_RV rv = P(C_FindObjects)(S, h, 0, &cnt);
	rec("C_FindObjects(max 0)", "rv=%s count=%s", rvn(rv), lens(cnt));
	cnt = SENTINEL_LEN;
	rv = P(C_FindObjects)(S, h, 4, &cnt);
	rec("C_FindObjects after the edge cases", "rv=%s count=%s", rvn(rv), lens(cnt));
	rrv("C_FindObjectsFinal", P(C_FindObjectsFinal)(S));
	rrv("C_FindObjectsFinal again", P(C_FindObjectsFinal)(S));
}

/* ------------------------------------------------------------------ */
/* Ending whatever operation is active (SoftHSM keeps one per session)   */

static const char *short_rv(CK_RV rv)
{
	const char *n = rvn(rv);
	return strncmp(n, "CKR_", 4) == 0 ? n + 4 : n;
}

/* Every way an operation ends; the answers say which one was active. */
static void clear_ops(const char *step)
{
	static CK_BYTE b[OUTCAP], in[256];
	CK_ULONG l;
	CK_RV r[13];
	l = sizeof b, r[0] = P(C_EncryptFinal)(S, b, &l);
	l = sizeof b, r[1] = P(C_DecryptFinal)(S, b, &l);
	l = sizeof b, r[2] = P(C_DigestFinal)(S, b, &l);
	l = sizeof b, r[3] = P(C_SignFinal)(S, b, &l);
	r[4] = P(C_VerifyFinal)(S, in, 64);
	l = sizeof b, r[5] = P(C_SignRecover)(S, in, 16, b, &l);
	l = sizeof b, r[6] = P(C_VerifyRecover)(S, in, sizeof in, b, &l);
	r[7] = P(C_FindObjectsFinal)(S);
	/* Operations that have no multi-part form end only by their single-part call. */
	l = sizeof b, r[8] = P(C_Encrypt)(S, in, 16, b, &l);
	l = sizeof b, r[9] = P(C_Decrypt)(S, in, sizeof in, b, &l);
	l = sizeof b, r[10] = P(C_Digest)(S, in, 16, b, &l);
	l = sizeof b, r[11] = P(C_Sign)(S, in, 16, b, &l);
	r[12] = P(C_Verify)(S, in, 16, in, 64);
	rec(step,
	    "final: encrypt=%s decrypt=%s digest=%s sign=%s verify=%s; signrecover=%s verifyrecover=%s find=%s; "
	    "single: encrypt=%s decrypt=%s digest=%s sign=%s verify=%s",
	    short_rv(r[0]), short_rv(r[1]), short_rv(r[2]), short_rv(r[3]), short_rv(r[4]), short_rv(r[5]),
	    short_rv(r[6]), short_rv(r[7]), short_rv(r[8]), short_rv(r[9]), short_rv(r[10]), short_rv(r[11]),
	    short_rv(r[12]));
}

/* ------------------------------------------------------------------ */
/* Area: digests                                                       */

static const CK_MECHANISM_TYPE digest_mechs[] = {CKM_MD5, CKM_SHA_1, CKM_SHA224, CKM_SHA256, CKM_SHA384,
						  CKM_SHA512, CKM_SHA512_224, CKM_SHA512_256};

static CK_RV dinit(const char *step, CK_MECHANISM_TYPE mt)
{
	CK_MECHANISM m = {mt, NULL, 0};
	CK_RV rv = P(C_DigestInit)(S, &m);
	mech_used(mt, rv);
	rrv(step, rv);
	return rv;
}

/* End whatever operation an edge case may have left active (recorded: the
 * answer says whether one was). */
static void end_digest(const char *step)
{
	CK_BYTE b[128];
	CK_ULONG l = sizeof b;
	rrv(step, P(C_DigestFinal)(S, b, &l));
}

static void area_digest(void)
{
	set_area("digest", 60);
	clear_ops("operations active at the start");
	for (size_t i = 0; i < ARRAY_LEN(digest_mechs); i++) {
		const char *n = mechn(digest_mechs[i]);
		if (dinit(fmt("%s DigestInit", n), digest_mechs[i]) != CKR_OK)
			continue;
		yio(fmt("%s Digest", n), P(C_Digest), msg, 100, Y_PROBE | Y_DET, NULL, NULL);
		dinit(fmt("%s DigestInit (parts)", n), digest_mechs[i]);
		rrv(fmt("%s DigestUpdate 1", n), P(C_DigestUpdate)(S, msg, 30));
		rrv(fmt("%s DigestUpdate 2", n), P(C_DigestUpdate)(S, msg + 30, 70));
		yout(fmt("%s DigestFinal", n), P(C_DigestFinal), Y_PROBE | Y_DET, NULL, NULL);
		dinit(fmt("%s DigestInit (key)", n), digest_mechs[i]);
		rrv(fmt("%s DigestUpdate", n), P(C_DigestUpdate)(S, msg, 10));
		rrv(fmt("%s DigestKey(aes128)", n), P(C_DigestKey)(S, k_aes128));
		yout(fmt("%s DigestFinal (key)", n), P(C_DigestFinal), Y_DET, NULL, NULL);
	}
	dinit("DigestInit", CKM_SHA256);
	dinit("DigestInit again", CKM_SHA256);
	yio("Digest after double init", P(C_Digest), msg, 10, Y_DET, NULL, NULL);
	yio("Digest without init", P(C_Digest), msg, 10, Y_DET, NULL, NULL);
	rrv("DigestUpdate without init", P(C_DigestUpdate)(S, msg, 10));
	rrv("DigestKey without init", P(C_DigestKey)(S, k_aes128));
	yout("DigestFinal without init", P(C_DigestFinal), 0, NULL, NULL);
	dinit("DigestInit(AES_ECB)", CKM_AES_ECB);
	{
		CK_BYTE junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
		CK_MECHANISM m = {CKM_SHA256, junk, sizeof junk};
		CK_RV rv = P(C_DigestInit)(S, &m);
		rrv("DigestInit(SHA256 with a parameter)", rv);
		if (rv == CKR_OK)
			end_digest("end SHA256-with-parameter digest");
	}
	dinit("DigestInit for NULL length", CKM_SHA256);
	rrv("Digest(NULL pulDigestLen)", P(C_Digest)(S, msg, 10, ybuf, NULL));
	yio("Digest after NULL pulDigestLen", P(C_Digest), msg, 10, Y_DET, NULL, NULL);
	dinit("DigestInit for NULL data", CKM_SHA256);
	yio("Digest(NULL data, 0)", P(C_Digest), NULL, 0, Y_DET, NULL, NULL);
	dinit("DigestInit for NULL data 2", CKM_SHA256);
	yio("Digest(NULL data, 10)", P(C_Digest), NULL, 10, Y_DET, NULL, NULL);
	end_digest("end digest after NULL data");
	dinit("DigestInit for empty", CKM_SHA256);
	yio("Digest(empty)", P(C_Digest), msg, 0, Y_DET, NULL, NULL);
	dinit("DigestInit then Update", CKM_SHA256);
	rrv("DigestUpdate", P(C_DigestUpdate)(S, msg, 10));
	yio("Digest after DigestUpdate", P(C_Digest), msg, 10, Y_DET, NULL, NULL);
	end_digest("end digest after Update+Digest");
	dinit("DigestInit for keys", CKM_SHA256);
	rrv("DigestKey(sensitive key)", P(C_DigestKey)(S, k_aes_sens));
	end_digest("end digest after sensitive DigestKey");
	dinit("DigestInit for keys 2", CKM_SHA256);
	rrv("DigestKey(RSA public key)", P(C_DigestKey)(S, k_rsa_pub));
	end_digest("end digest after RSA DigestKey");
	dinit("DigestInit for keys 3", CKM_SHA256);
	rrv("DigestKey(bad object)", P(C_DigestKey)(S, BAD_OBJECT));
	end_digest("end digest after bad DigestKey");
	dinit("DigestInit for NULL final", CKM_SHA256);
	rrv("DigestFinal(NULL pulDigestLen)", P(C_DigestFinal)(S, ybuf, NULL));
	end_digest("end digest after NULL final");
	dinit("DigestInit in the RO session", CKM_SHA256);
	{
		CK_MECHANISM m = {CKM_SHA256, NULL, 0};
		rrv("DigestInit(R)", P(C_DigestInit)(R, &m));
		CK_BYTE b[64];
		CK_ULONG l = sizeof b;
		CK_RV rv = P(C_Digest)(R, msg, 100, b, &l);
		rec("Digest(R)", "rv=%s out=%s", rvn(rv), rv == CKR_OK ? hex(b, l) : "-");
	}
	yio("Digest(S) alongside R", P(C_Digest), msg, 100, Y_DET, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* Area: encryption and decryption                                     */

static CK_AES_CTR_PARAMS ctr_params;
static CK_GCM_PARAMS gcm_params, gcm_params2;

struct symcase {
	const char *name;
	CK_MECHANISM_TYPE m;
	void *param;
	CK_ULONG plen;
	CK_OBJECT_HANDLE *key;
	CK_ULONG len;
};

/* Multi-part: updates over [0,7), [7,20), [20,len), then Final; returns the
 * concatenated output. */
static CK_RV parts(const char *tag0, yfn upd, ofn fin, const CK_BYTE *in, CK_ULONG len, CK_BYTE *out,
		   CK_ULONG *outlen)
{
	char tag[256];
	snprintf(tag, sizeof tag, "%s", tag0);
	static const CK_ULONG cuts[] = {7, 20};
	CK_ULONG at = 0, total = 0, l;
	CK_RV rv = CKR_OK;
	for (size_t i = 0; i <= ARRAY_LEN(cuts); i++) {
		CK_ULONG end = i < ARRAY_LEN(cuts) ? (cuts[i] < len ? cuts[i] : len) : len;
		rv = yio(fmt("%s update %zu", tag, i), upd, in + at, end - at, Y_PROBE | Y_DET, out + total, &l);
		if (rv != CKR_OK)
			break;
		total += l;
		at = end;
	}
	if (rv == CKR_OK) {
		rv = yout(fmt("%s final", tag), fin, Y_PROBE | Y_DET, out + total, &l);
		if (rv == CKR_OK)
			total += l;
	}
	*outlen = total;
	return rv;
}

static void sym_case(const struct symcase *c)
{
	CK_BYTE ct[1024], pt[1024], ct2[1024], pt2[1024];
	CK_ULONG ctl = 0, ptl = 0, ct2l = 0, pt2l = 0;
	const char *n = c->name;
	clear_ops(fmt("%s: operations active before", n));
	if (minit(fmt("%s EncryptInit", n), P(C_EncryptInit), c->m, c->param, c->plen, *c->key) == CKR_OK)
		yio(fmt("%s Encrypt", n), P(C_Encrypt), msg, c->len, Y_PROBE | Y_DET, ct, &ctl);
	if (minit(fmt("%s DecryptInit", n), P(C_DecryptInit), c->m, c->param, c->plen, *c->key) == CKR_OK)
		yio(fmt("%s Decrypt", n), P(C_Decrypt), ct, ctl, Y_PROBE | Y_DET, pt, &ptl);
	rec(fmt("%s round trip", n), "%s", ptl == c->len && memcmp(pt, msg, ptl) == 0 ? "plaintext back" : "MISMATCH");
	if (minit(fmt("%s EncryptInit (parts)", n), P(C_EncryptInit), c->m, c->param, c->plen, *c->key) == CKR_OK) {
		CK_RV rv = parts(fmt("%s EncryptUpdate", n), P(C_EncryptUpdate), P(C_EncryptFinal), msg, c->len, ct2, &ct2l);
		rec(fmt("%s Encrypt in parts", n), "rv=%s out=%s same-as-single=%s", rvn(rv), hex(ct2, ct2l),
		    ct2l == ctl && memcmp(ct, ct2, ctl) == 0 ? "yes" : "no");
	}
	if (minit(fmt("%s DecryptInit (parts)", n), P(C_DecryptInit), c->m, c->param, c->plen, *c->key) == CKR_OK) {
		CK_RV rv = parts(fmt("%s DecryptUpdate", n), P(C_DecryptUpdate), P(C_DecryptFinal), ct, ctl, pt2, &pt2l);
		rec(fmt("%s Decrypt in parts", n), "rv=%s out=%s same-as-plaintext=%s", rvn(rv), hex(pt2, pt2l),
		    pt2l == c->len && memcmp(pt2, msg, pt2l) == 0 ? "yes" : "no");
	}
}

static void end_encrypt(const char *step)
{
	CK_BYTE b[OUTCAP];
	CK_ULONG l = sizeof b;
	rrv(step, P(C_EncryptFinal)(S, b, &l));
}
static void end_decrypt(const char *step)
{
	CK_BYTE b[OUTCAP];
	CK_ULONG l = sizeof b;
	rrv(step, P(C_DecryptFinal)(S, b, &l));
}

static void area_cipher(void)
{
	set_area("cipher", 120);
	clear_ops("operations active at the start");
	ctr_params.ulCounterBits = 128;
	memcpy(ctr_params.cb, iv16, 16);
	gcm_params = (CK_GCM_PARAMS){iv12, 12, 96, aad, sizeof aad, 128};
	gcm_params2 = (CK_GCM_PARAMS){iv16, 16, 128, NULL, 0, 96};
	const struct symcase cases[] = {
		{"AES_ECB aes128", CKM_AES_ECB, NULL, 0, &k_aes128, 64},
		{"AES_ECB aes256", CKM_AES_ECB, NULL, 0, &k_aes256, 64},
		{"AES_CBC", CKM_AES_CBC, iv16, 16, &k_aes128, 64},
		{"AES_CBC_PAD 37", CKM_AES_CBC_PAD, iv16, 16, &k_aes128, 37},
		{"AES_CBC_PAD 64", CKM_AES_CBC_PAD, iv16, 16, &k_aes256, 64},
		{"AES_CTR", CKM_AES_CTR, &ctr_params, sizeof ctr_params, &k_aes256, 37},
		{"AES_GCM", CKM_AES_GCM, &gcm_params, sizeof gcm_params, &k_aes128, 37},
		{"AES_GCM 16-byte IV, no AAD, 96-bit tag", CKM_AES_GCM, &gcm_params2, sizeof gcm_params2, &k_aes256, 50},
		{"DES3_ECB", CKM_DES3_ECB, NULL, 0, &k_des3, 32},
		{"DES3_ECB des2", CKM_DES3_ECB, NULL, 0, &k_des2, 32},
		{"DES3_CBC", CKM_DES3_CBC, iv8, 8, &k_des3, 32},
		{"DES3_CBC_PAD", CKM_DES3_CBC_PAD, iv8, 8, &k_des3, 21},
		{"DES_ECB", CKM_DES_ECB, NULL, 0, &k_des, 32},
		{"DES_CBC", CKM_DES_CBC, iv8, 8, &k_des, 32},
		{"DES_CBC_PAD", CKM_DES_CBC_PAD, iv8, 8, &k_des, 21},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		sym_case(&cases[i]);

	/* Operation state and argument edge cases. */
	clear_ops("operations active before the edge cases");
	minit("EncryptInit", P(C_EncryptInit), CKM_AES_ECB, NULL, 0, k_aes128);
	minit("EncryptInit again", P(C_EncryptInit), CKM_AES_ECB, NULL, 0, k_aes128);
	yio("Encrypt after double init", P(C_Encrypt), msg, 16, Y_DET, NULL, NULL);
	yio("Encrypt without init", P(C_Encrypt), msg, 16, Y_DET, NULL, NULL);
	yio("EncryptUpdate without init", P(C_EncryptUpdate), msg, 16, Y_DET, NULL, NULL);
	yout("EncryptFinal without init", P(C_EncryptFinal), Y_DET, NULL, NULL);
	yio("Decrypt without init", P(C_Decrypt), msg, 16, Y_DET, NULL, NULL);
	yio("DecryptUpdate without init", P(C_DecryptUpdate), msg, 16, Y_DET, NULL, NULL);
	yout("DecryptFinal without init", P(C_DecryptFinal), Y_DET, NULL, NULL);
	minit("EncryptInit AES_ECB for 15 bytes", P(C_EncryptInit), CKM_AES_ECB, NULL, 0, k_aes128);
	yio("Encrypt 15 bytes with AES_ECB", P(C_Encrypt), msg, 15, Y_DET, NULL, NULL);
	yio("Encrypt after DATA_LEN_RANGE", P(C_Encrypt), msg, 16, Y_DET, NULL, NULL);
	minit("EncryptInit for NULL length", P(C_EncryptInit), CKM_AES_ECB, NULL, 0, k_aes128);
	rrv("Encrypt(NULL pulEncryptedDataLen)", P(C_Encrypt)(S, msg, 16, ybuf, NULL));
	yio("Encrypt after NULL pulEncryptedDataLen", P(C_Encrypt), msg, 16, Y_DET, NULL, NULL);
	end_encrypt("end encrypt after NULL length");
	minit("EncryptInit for NULL data", P(C_EncryptInit), CKM_AES_ECB, NULL, 0, k_aes128);
	yio("Encrypt(NULL data, 16)", P(C_Encrypt), NULL, 16, Y_DET, NULL, NULL);
	end_encrypt("end encrypt after NULL data");
	minit("EncryptInit then Update", P(C_EncryptInit), CKM_AES_ECB, NULL, 0, k_aes128);
	yio("EncryptUpdate 16", P(C_EncryptUpdate), msg, 16, Y_DET, NULL, NULL);
	yio("Encrypt after EncryptUpdate", P(C_Encrypt), msg, 16, Y_DET, NULL, NULL);
	end_encrypt("end encrypt after Update+Encrypt");
	minit("EncryptInit CBC for update edge", P(C_EncryptInit), CKM_AES_CBC, iv16, 16, k_aes128);
	yio("EncryptUpdate 5 bytes (no output yet)", P(C_EncryptUpdate), msg, 5, Y_PROBE | Y_DET, NULL, NULL);
	yio("EncryptUpdate 0 bytes", P(C_EncryptUpdate), msg, 0, Y_PROBE | Y_DET, NULL, NULL);
	yio("EncryptUpdate 11 bytes (a block)", P(C_EncryptUpdate), msg + 5, 11, Y_PROBE | Y_DET, NULL, NULL);
	rrv("EncryptUpdate(NULL length)", P(C_EncryptUpdate)(S, msg, 16, ybuf, NULL));
	end_encrypt("end CBC encrypt");
	minit("EncryptInit for NULL final length", P(C_EncryptInit), CKM_AES_CBC_PAD, iv16, 16, k_aes128);
	yio("EncryptUpdate before NULL final length", P(C_EncryptUpdate), msg, 20, Y_DET, NULL, NULL);
	rrv("EncryptFinal(NULL length)", P(C_EncryptFinal)(S, ybuf, NULL));
	yout("EncryptFinal after NULL length", P(C_EncryptFinal), Y_DET, NULL, NULL);
	end_encrypt("end after NULL final length");
	{
		CK_BYTE ct[64];
		CK_ULONG l = 0;
		minit("EncryptInit for the NULL-length decryptions", P(C_EncryptInit), CKM_AES_CBC_PAD, iv16, 16, k_aes128);
		yio("Encrypt for the NULL-length decryptions", P(C_Encrypt), msg, 20, Y_DET, ct, &l);
		minit("DecryptInit for NULL length", P(C_DecryptInit), CKM_AES_CBC_PAD, iv16, 16, k_aes128);
		rrv("Decrypt(NULL length)", P(C_Decrypt)(S, ct, l, ybuf, NULL));
		yio("Decrypt after NULL length", P(C_Decrypt), ct, l, Y_DET, NULL, NULL);
		end_decrypt("end after Decrypt NULL length");
		minit("DecryptInit for NULL update length", P(C_DecryptInit), CKM_AES_CBC_PAD, iv16, 16, k_aes128);
		rrv("DecryptUpdate(NULL length)", P(C_DecryptUpdate)(S, ct, l, ybuf, NULL));
		yio("DecryptUpdate after NULL length", P(C_DecryptUpdate), ct, l, Y_DET, NULL, NULL);
		rrv("DecryptFinal(NULL length)", P(C_DecryptFinal)(S, ybuf, NULL));
		yout("DecryptFinal after NULL length", P(C_DecryptFinal), Y_DET, NULL, NULL);
		end_decrypt("end after DecryptFinal NULL length");
	}
	minit("EncryptInit CBC for a partial final", P(C_EncryptInit), CKM_AES_CBC, iv16, 16, k_aes128);
	yio("EncryptUpdate 20 bytes", P(C_EncryptUpdate), msg, 20, Y_PROBE | Y_DET, NULL, NULL);
	yout("EncryptFinal with 4 bytes pending", P(C_EncryptFinal), Y_PROBE | Y_DET, NULL, NULL);
	end_encrypt("end encrypt after partial final");

	minit("EncryptInit AES_CBC, 8-byte IV", P(C_EncryptInit), CKM_AES_CBC, iv8, 8, k_aes128);
	minit("EncryptInit AES_CBC, no IV", P(C_EncryptInit), CKM_AES_CBC, NULL, 0, k_aes128);
	minit("EncryptInit AES_CBC, NULL IV of 16", P(C_EncryptInit), CKM_AES_CBC, NULL, 16, k_aes128);
	minit("EncryptInit AES_ECB with a parameter", P(C_EncryptInit), CKM_AES_ECB, iv16, 16, k_aes128);
	end_encrypt("end after ECB with a parameter");
	minit("EncryptInit AES_GCM, short parameter length", P(C_EncryptInit), CKM_AES_GCM, &gcm_params,
	      sizeof gcm_params - 8, k_aes128);
	minit("EncryptInit AES_GCM, NULL parameter", P(C_EncryptInit), CKM_AES_GCM, NULL, 0, k_aes128);
	{
		CK_GCM_PARAMS g = {NULL, 0, 0, NULL, 0, 128};
		minit("EncryptInit AES_GCM, no IV", P(C_EncryptInit), CKM_AES_GCM, &g, sizeof g, k_aes128);
		end_encrypt("end after GCM without IV");
		g = (CK_GCM_PARAMS){iv12, 12, 96, aad, sizeof aad, 130};
		minit("EncryptInit AES_GCM, 130-bit tag", P(C_EncryptInit), CKM_AES_GCM, &g, sizeof g, k_aes128);
		end_encrypt("end after GCM 130-bit tag");
		/* (A NULL pIv or pAAD with a length crashes SoftHSM itself.) */
		CK_AES_CTR_PARAMS c = {0, {0}};
		minit("EncryptInit AES_CTR, counter bits 0", P(C_EncryptInit), CKM_AES_CTR, &c, sizeof c, k_aes128);
		end_encrypt("end after CTR 0 bits");
		c.ulCounterBits = 129;
		minit("EncryptInit AES_CTR, counter bits 129", P(C_EncryptInit), CKM_AES_CTR, &c, sizeof c, k_aes128);
		end_encrypt("end after CTR 129 bits");
		minit("EncryptInit AES_CTR, parameter 16 bytes", P(C_EncryptInit), CKM_AES_CTR, iv16, 16, k_aes128);
		end_encrypt("end after CTR 16-byte parameter");
		c.ulCounterBits = 32;
		minit("EncryptInit AES_CTR, counter bits 32", P(C_EncryptInit), CKM_AES_CTR, &c, sizeof c, k_aes128);
		yio("Encrypt AES_CTR 32-bit counter", P(C_Encrypt), msg, 40, Y_DET, NULL, NULL);
	}
	minit("EncryptInit with a key that may not encrypt", P(C_EncryptInit), CKM_AES_ECB, NULL, 0, k_noenc);
	minit("EncryptInit AES_ECB with a DES3 key", P(C_EncryptInit), CKM_AES_ECB, NULL, 0, k_des3);
	minit("EncryptInit bad key", P(C_EncryptInit), CKM_AES_ECB, NULL, 0, BAD_OBJECT);
	minit("EncryptInit key 0", P(C_EncryptInit), CKM_AES_ECB, NULL, 0, CK_INVALID_HANDLE);
	minit("EncryptInit unknown mechanism", P(C_EncryptInit), 0x7ffffff0UL, NULL, 0, k_aes128);
	minit("EncryptInit vendor mechanism", P(C_EncryptInit), CKM_VENDOR_DEFINED | 7, msg, 5, k_aes128);
	minit("EncryptInit unknown mechanism with a parameter", P(C_EncryptInit), 0x7ffffff0UL, iv16, 16, k_aes128);
	minit("EncryptInit AES_XTS (PKCS#11 3.0) with a parameter", P(C_EncryptInit), 0x1071UL, iv16, 16, k_aes128);
	minit("EncryptInit AES_ECB with an unknown-size parameter", P(C_EncryptInit), CKM_AES_ECB, iv16, 3, k_aes128);
	end_encrypt("end after unknown mechanisms");
	minit("EncryptInit SHA256 (a digest)", P(C_EncryptInit), CKM_SHA256, NULL, 0, k_aes128);
	end_encrypt("end encrypt after Init edge cases");

	clear_ops("operations active before bad ciphertexts");
	{
		CK_BYTE ct[64];
		CK_ULONG l = 0;
		minit("EncryptInit CBC_PAD for bad padding", P(C_EncryptInit), CKM_AES_CBC, iv16, 16, k_aes128);
		yio("Encrypt 32 bytes no padding", P(C_Encrypt), msg, 32, Y_DET, ct, &l);
		minit("DecryptInit CBC_PAD over unpadded", P(C_DecryptInit), CKM_AES_CBC_PAD, iv16, 16, k_aes128);
		yio("Decrypt bad padding", P(C_Decrypt), ct, l, Y_PROBE | Y_DET, NULL, NULL);
		end_decrypt("end decrypt after bad padding");
		minit("DecryptInit CBC for 15 bytes", P(C_DecryptInit), CKM_AES_CBC, iv16, 16, k_aes128);
		yio("Decrypt 15 bytes", P(C_Decrypt), ct, 15, Y_DET, NULL, NULL);
		end_decrypt("end decrypt after 15 bytes");
		minit("EncryptInit GCM for tag", P(C_EncryptInit), CKM_AES_GCM, &gcm_params, sizeof gcm_params, k_aes128);
		yio("Encrypt GCM 16", P(C_Encrypt), msg, 16, Y_DET, ct, &l);
		if (l > 0)
			ct[l - 1] ^= 1;
		minit("DecryptInit GCM for a bad tag", P(C_DecryptInit), CKM_AES_GCM, &gcm_params, sizeof gcm_params, k_aes128);
		yio("Decrypt GCM with a bad tag", P(C_Decrypt), ct, l, Y_PROBE | Y_DET, NULL, NULL);
		end_decrypt("end decrypt after GCM bad tag");
		minit("DecryptInit GCM parts bad tag", P(C_DecryptInit), CKM_AES_GCM, &gcm_params, sizeof gcm_params, k_aes128);
		yio("DecryptUpdate GCM bad tag", P(C_DecryptUpdate), ct, l, Y_PROBE | Y_DET, NULL, NULL);
		yout("DecryptFinal GCM bad tag", P(C_DecryptFinal), Y_PROBE | Y_DET, NULL, NULL);
		end_decrypt("end decrypt after GCM parts");
	}

	clear_ops("operations active before 1 MiB");
	/* Large data: 1 MiB through AES_CTR, one part and in 64 KiB parts; the
	 * ciphertext is compared by its SHA-256 (taken on the same side). */
	{
		enum { BIG = 1 << 20 };
		CK_BYTE *in = malloc(BIG), *out = malloc(BIG + 64), *out2 = malloc(BIG + 64);
		for (size_t i = 0; i < BIG; i++)
			in[i] = (CK_BYTE)(i * 31 + (i >> 8));
		CK_ULONG ol = BIG + 64, o2 = 0;
		minit("1 MiB AES_CTR EncryptInit", P(C_EncryptInit), CKM_AES_CTR, &ctr_params, sizeof ctr_params, k_aes256);
		CK_RV rv = P(C_Encrypt)(S, in, BIG, out, &ol);
		rec("1 MiB AES_CTR Encrypt", "rv=%s len=%s", rvn(rv), lens(ol));
		minit("1 MiB AES_CTR EncryptInit (parts)", P(C_EncryptInit), CKM_AES_CTR, &ctr_params, sizeof ctr_params, k_aes256);
		for (size_t at = 0; at < BIG && rv == CKR_OK; at += 65536) {
			CK_ULONG l = BIG + 64 - o2;
			rv = P(C_EncryptUpdate)(S, in + at, 65536, out2 + o2, &l);
			o2 += l;
		}
		CK_ULONG l = BIG + 64 - o2;
		if (rv == CKR_OK)
			rv = P(C_EncryptFinal)(S, out2 + o2, &l), o2 += l;
		rec("1 MiB AES_CTR in parts", "rv=%s len=%lu same-as-single=%s", rvn(rv), o2,
		    o2 == ol && memcmp(out, out2, ol) == 0 ? "yes" : "no");
		CK_BYTE d[32];
		CK_ULONG dl = sizeof d;
		dinit("1 MiB SHA256 DigestInit", CKM_SHA256);
		rv = P(C_Digest)(S, out, ol, d, &dl);
		rec("1 MiB ciphertext SHA256", "rv=%s out=%s", rvn(rv), rv == CKR_OK ? hex(d, dl) : "-");
		minit("1 MiB AES_CTR DecryptInit", P(C_DecryptInit), CKM_AES_CTR, &ctr_params, sizeof ctr_params, k_aes256);
		CK_ULONG pl = BIG + 64;
		rv = P(C_Decrypt)(S, out, ol, out2, &pl);
		rec("1 MiB AES_CTR Decrypt", "rv=%s len=%s plaintext=%s", rvn(rv), lens(pl),
		    pl == BIG && memcmp(in, out2, BIG) == 0 ? "back" : "MISMATCH");
		free(in), free(out), free(out2);
	}

	/* RSA */
	{
		CK_BYTE ct[512], pt[512], big[256];
		CK_ULONG ctl = 0, ptl = 0;
		CK_RSA_PKCS_OAEP_PARAMS oaep1 = {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};
		CK_RSA_PKCS_OAEP_PARAMS oaep256 = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, (void *)"label", 5};
		CK_RSA_PKCS_OAEP_PARAMS oaep1l = {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, (void *)"label", 5};
		CK_RSA_PKCS_OAEP_PARAMS oaepbad = {CKM_SHA256, CKG_MGF1_SHA1, 7, NULL, 0};
		const struct {
			const char *n;
			CK_MECHANISM_TYPE m;
			void *p;
			CK_ULONG pl;
			CK_ULONG len;
			int det;
		} rc[] = {
			{"RSA_PKCS", CKM_RSA_PKCS, NULL, 0, 40, 0},
			{"RSA_X_509", CKM_RSA_X_509, NULL, 0, 256, 1},
			{"RSA_X_509 short input", CKM_RSA_X_509, NULL, 0, 20, 1},
			{"RSA_PKCS_OAEP SHA1", CKM_RSA_PKCS_OAEP, &oaep1, sizeof oaep1, 40, 0},
			{"RSA_PKCS_OAEP SHA1 with label", CKM_RSA_PKCS_OAEP, &oaep1l, sizeof oaep1l, 40, 0},
			{"RSA_PKCS_OAEP SHA256 with label", CKM_RSA_PKCS_OAEP, &oaep256, sizeof oaep256, 40, 0},
			{"RSA_PKCS_OAEP bad parameters", CKM_RSA_PKCS_OAEP, &oaepbad, sizeof oaepbad, 40, 0},
			{"RSA_PKCS_OAEP no parameter", CKM_RSA_PKCS_OAEP, NULL, 0, 40, 0},
		};
		memcpy(big, msg, sizeof big < sizeof msg ? sizeof big : sizeof msg);
		memset(big + sizeof msg, 0x77, sizeof big - sizeof msg);
		big[0] = 0; /* below the modulus */
		for (size_t i = 0; i < ARRAY_LEN(rc); i++) {
			const char *n = rc[i].n;
			const CK_BYTE *in = rc[i].len == 256 ? big : msg;
			ctl = ptl = 0;
			clear_ops(fmt("%s: operations active before", n));
			if (minit(fmt("%s EncryptInit", n), P(C_EncryptInit), rc[i].m, rc[i].p, rc[i].pl, k_rsa_pub) == CKR_OK)
				yio(fmt("%s Encrypt", n), P(C_Encrypt), in, rc[i].len, Y_PROBE | (rc[i].det ? Y_DET : 0), ct, &ctl);
			if (minit(fmt("%s DecryptInit", n), P(C_DecryptInit), rc[i].m, rc[i].p, rc[i].pl, k_rsa_priv) == CKR_OK)
				yio(fmt("%s Decrypt", n), P(C_Decrypt), ct, ctl, Y_PROBE | Y_DET, pt, &ptl);
			rec(fmt("%s round trip", n), "%s", ptl >= rc[i].len && memcmp(pt + ptl - rc[i].len, in, rc[i].len) == 0 ? "plaintext back" : "MISMATCH");
		}
		clear_ops("operations active before RSA edge cases");
		minit("RSA_PKCS EncryptInit for too long", P(C_EncryptInit), CKM_RSA_PKCS, NULL, 0, k_rsa_pub);
		yio("RSA_PKCS Encrypt 250 bytes", P(C_Encrypt), big, 250, Y_DET, NULL, NULL);
		end_encrypt("end after RSA too long");
		minit("RSA_PKCS EncryptInit for parts", P(C_EncryptInit), CKM_RSA_PKCS, NULL, 0, k_rsa_pub);
		yio("RSA_PKCS EncryptUpdate", P(C_EncryptUpdate), msg, 20, Y_DET, NULL, NULL);
		end_encrypt("end after RSA EncryptUpdate");
		minit("RSA_PKCS DecryptInit for garbage", P(C_DecryptInit), CKM_RSA_PKCS, NULL, 0, k_rsa_priv);
		yio("RSA_PKCS Decrypt garbage", P(C_Decrypt), big, 256, Y_PROBE | Y_DET, NULL, NULL);
		end_decrypt("end after RSA garbage");
		minit("RSA_PKCS DecryptInit for 255 bytes", P(C_DecryptInit), CKM_RSA_PKCS, NULL, 0, k_rsa_priv);
		yio("RSA_PKCS Decrypt 255 bytes", P(C_Decrypt), big, 255, Y_DET, NULL, NULL);
		end_decrypt("end after RSA 255");
		minit("RSA_PKCS EncryptInit with private key", P(C_EncryptInit), CKM_RSA_PKCS, NULL, 0, k_rsa_priv);
		end_encrypt("end after RSA private EncryptInit");
		minit("RSA_PKCS DecryptInit with public key", P(C_DecryptInit), CKM_RSA_PKCS, NULL, 0, k_rsa_pub);
		end_decrypt("end after RSA public DecryptInit");
	}
}

/* ------------------------------------------------------------------ */
/* Area: signatures and MACs                                           */

static void end_sign(const char *step)
{
	CK_BYTE b[OUTCAP];
	CK_ULONG l = sizeof b;
	rrv(step, P(C_SignFinal)(S, b, &l));
}
static void end_verify(const char *step)
{
	CK_BYTE b[512] = {0};
	rrv(step, P(C_VerifyFinal)(S, b, 64));
}

/* Sign (single part, probe protocol), verify it, verify a corrupted and a
 * short signature; with parts: the same in three updates. Deterministic
 * signatures are compared as bytes; the others only verified. */
static void sign_case(const char *n0, CK_MECHANISM_TYPE m, void *param, CK_ULONG plen, CK_OBJECT_HANDLE priv,
		      CK_OBJECT_HANDLE pub, const CK_BYTE *data, CK_ULONG dlen, int det, int multi)
{
	char n[256];
	snprintf(n, sizeof n, "%s", n0);
	CK_BYTE sig[1024], sig2[1024];
	CK_ULONG sl = 0, sl2 = 0;
	int flags = Y_PROBE | (det ? Y_DET : 0);
	clear_ops(fmt("%s: operations active before", n));
	if (minit(fmt("%s SignInit", n), P(C_SignInit), m, param, plen, priv) == CKR_OK)
		yio(fmt("%s Sign", n), P(C_Sign), data, dlen, flags, sig, &sl);
	if (minit(fmt("%s VerifyInit", n), P(C_VerifyInit), m, param, plen, pub) == CKR_OK)
		rrv(fmt("%s Verify", n), P(C_Verify)(S, (CK_BYTE_PTR)data, dlen, sig, sl));
	if (sl > 0) {
		sig[sl / 2] ^= 0x40;
		if (minit(fmt("%s VerifyInit (corrupted)", n), P(C_VerifyInit), m, param, plen, pub) == CKR_OK)
			rrv(fmt("%s Verify corrupted", n), P(C_Verify)(S, (CK_BYTE_PTR)data, dlen, sig, sl));
		sig[sl / 2] ^= 0x40;
		if (minit(fmt("%s VerifyInit (short)", n), P(C_VerifyInit), m, param, plen, pub) == CKR_OK)
			rrv(fmt("%s Verify short", n), P(C_Verify)(S, (CK_BYTE_PTR)data, dlen, sig, sl - 1));
	}
	if (!multi)
		return;
	if (minit(fmt("%s SignInit (parts)", n), P(C_SignInit), m, param, plen, priv) == CKR_OK) {
		CK_RV rv = P(C_SignUpdate)(S, (CK_BYTE_PTR)data, 5);
		rrv(fmt("%s SignUpdate 1", n), rv);
		if (rv == CKR_OK) {
			rrv(fmt("%s SignUpdate 2", n), P(C_SignUpdate)(S, (CK_BYTE_PTR)data + 5, 0));
			rrv(fmt("%s SignUpdate 3", n), P(C_SignUpdate)(S, (CK_BYTE_PTR)data + 5, dlen - 5));
			rv = yout(fmt("%s SignFinal", n), P(C_SignFinal), flags, sig2, &sl2);
			if (rv == CKR_OK && det)
				rec(fmt("%s parts equal single", n), "%s", sl == sl2 && memcmp(sig, sig2, sl) == 0 ? "yes" : "no");
		} else
			end_sign(fmt("%s end sign", n));
	}
	if (minit(fmt("%s VerifyInit (parts)", n), P(C_VerifyInit), m, param, plen, pub) == CKR_OK) {
		CK_RV rv = P(C_VerifyUpdate)(S, (CK_BYTE_PTR)data, 5);
		rrv(fmt("%s VerifyUpdate 1", n), rv);
		if (rv == CKR_OK) {
			rrv(fmt("%s VerifyUpdate 2", n), P(C_VerifyUpdate)(S, (CK_BYTE_PTR)data + 5, dlen - 5));
			rrv(fmt("%s VerifyFinal", n), P(C_VerifyFinal)(S, sig2, sl2));
		} else
			end_verify(fmt("%s end verify", n));
	}
	if (sl2 > 0 && minit(fmt("%s VerifyInit (parts, corrupted)", n), P(C_VerifyInit), m, param, plen, pub) == CKR_OK) {
		sig2[0] ^= 1;
		rrv(fmt("%s VerifyUpdate (corrupted)", n), P(C_VerifyUpdate)(S, (CK_BYTE_PTR)data, dlen));
		rrv(fmt("%s VerifyFinal corrupted", n), P(C_VerifyFinal)(S, sig2, sl2));
	}
}

static CK_ULONG hash_len(CK_MECHANISM_TYPE h)
{
	switch (h) {
	case CKM_SHA_1: return 20;
	case CKM_SHA224: return 28;
	case CKM_SHA256: return 32;
	case CKM_SHA384: return 48;
	case CKM_SHA512: return 64;
	}
	return 0;
}

static void area_sign(void)
{
	set_area("sign", 180);
	clear_ops("operations active at the start");
	static const CK_MECHANISM_TYPE hmacs[] = {CKM_MD5_HMAC, CKM_SHA_1_HMAC, CKM_SHA224_HMAC, CKM_SHA256_HMAC,
						  CKM_SHA384_HMAC, CKM_SHA512_HMAC};
	for (size_t i = 0; i < ARRAY_LEN(hmacs); i++)
		sign_case(mechn(hmacs[i]), hmacs[i], NULL, 0, k_gen, k_gen, msg, 100, 1, 1);
	sign_case("SHA256_HMAC aes key", CKM_SHA256_HMAC, NULL, 0, k_aes256, k_aes256, msg, 100, 1, 0);
	sign_case("AES_CMAC", CKM_AES_CMAC, NULL, 0, k_aes128, k_aes128, msg, 100, 1, 1);
	sign_case("AES_CMAC aes256", CKM_AES_CMAC, NULL, 0, k_aes256, k_aes256, msg, 64, 1, 1);
	sign_case("DES3_CMAC", CKM_DES3_CMAC, NULL, 0, k_des3, k_des3, msg, 100, 1, 1);
	CK_ULONG maclen = 8;
	sign_case("SHA256_HMAC_GENERAL", CKM_SHA256_HMAC_GENERAL, &maclen, sizeof maclen, k_gen, k_gen, msg, 100, 1, 1);
	sign_case("AES_CMAC_GENERAL", CKM_AES_CMAC_GENERAL, &maclen, sizeof maclen, k_aes128, k_aes128, msg, 100, 1, 1);

	sign_case("RSA_PKCS", CKM_RSA_PKCS, NULL, 0, k_rsa_priv, k_rsa_pub, msg, 36, 1, 1);
	{
		CK_BYTE big[256];
		memcpy(big, msg, sizeof msg);
		memset(big + sizeof msg, 0x55, sizeof big - sizeof msg);
		big[0] = 0;
		sign_case("RSA_X_509", CKM_RSA_X_509, NULL, 0, k_rsa_priv, k_rsa_pub, big, 256, 1, 1);
		sign_case("RSA_X_509 short input", CKM_RSA_X_509, NULL, 0, k_rsa_priv, k_rsa_pub, msg, 30, 1, 0);
	}
	static const CK_MECHANISM_TYPE rsah[] = {CKM_MD5_RSA_PKCS, CKM_SHA1_RSA_PKCS, CKM_SHA224_RSA_PKCS,
						 CKM_SHA256_RSA_PKCS, CKM_SHA384_RSA_PKCS, CKM_SHA512_RSA_PKCS};
	for (size_t i = 0; i < ARRAY_LEN(rsah); i++)
		sign_case(mechn(rsah[i]), rsah[i], NULL, 0, k_rsa_priv, k_rsa_pub, msg, 100, 1, 1);

	static const struct {
		CK_MECHANISM_TYPE m, h;
		CK_RSA_PKCS_MGF_TYPE mgf;
	} pss[] = {
		{CKM_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256}, {CKM_RSA_PKCS_PSS, CKM_SHA_1, CKG_MGF1_SHA1},
		{CKM_SHA1_RSA_PKCS_PSS, CKM_SHA_1, CKG_MGF1_SHA1}, {CKM_SHA224_RSA_PKCS_PSS, CKM_SHA224, CKG_MGF1_SHA224},
		{CKM_SHA256_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256}, {CKM_SHA384_RSA_PKCS_PSS, CKM_SHA384, CKG_MGF1_SHA384},
		{CKM_SHA512_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA512},
	};
	for (size_t i = 0; i < ARRAY_LEN(pss); i++) {
		CK_ULONG hl = hash_len(pss[i].h);
		/* RSA_PKCS_PSS signs a hash; the others hash the message. */
		CK_ULONG dl = pss[i].m == CKM_RSA_PKCS_PSS ? hl : 100;
		int multi = pss[i].m != CKM_RSA_PKCS_PSS;
		CK_RSA_PKCS_PSS_PARAMS p0 = {pss[i].h, pss[i].mgf, 0}, ph = {pss[i].h, pss[i].mgf, hl};
		sign_case(fmt("%s %s salt 0", mechn(pss[i].m), mechn(pss[i].h)), pss[i].m, &p0, sizeof p0, k_rsa_priv,
			  k_rsa_pub, msg, dl, 1, multi);
		sign_case(fmt("%s %s salt %lu", mechn(pss[i].m), mechn(pss[i].h), hl), pss[i].m, &ph, sizeof ph,
			  k_rsa_priv, k_rsa_pub, msg, dl, 0, multi);
	}
	{
		CK_RSA_PKCS_PSS_PARAMS bad = {CKM_SHA_1, CKG_MGF1_SHA1, 20};
		minit("SHA256_RSA_PKCS_PSS SignInit with SHA-1 parameters", P(C_SignInit), CKM_SHA256_RSA_PKCS_PSS, &bad,
		      sizeof bad, k_rsa_priv);
		end_sign("end after PSS mismatched parameters");
		minit("RSA_PKCS_PSS SignInit without parameter", P(C_SignInit), CKM_RSA_PKCS_PSS, NULL, 0, k_rsa_priv);
		end_sign("end after PSS without parameter");
		minit("RSA_PKCS_PSS SignInit short parameter", P(C_SignInit), CKM_RSA_PKCS_PSS, &bad, sizeof bad - 8,
		      k_rsa_priv);
		end_sign("end after PSS short parameter");
		CK_RSA_PKCS_PSS_PARAMS p = {CKM_SHA256, CKG_MGF1_SHA256, 32};
		minit("RSA_PKCS_PSS SignInit for a wrong-length hash", P(C_SignInit), CKM_RSA_PKCS_PSS, &p, sizeof p,
		      k_rsa_priv);
		yio("RSA_PKCS_PSS Sign 20-byte input with SHA256", P(C_Sign), msg, 20, Y_DET, NULL, NULL);
		end_sign("end after PSS wrong-length hash");
	}

	sign_case("ECDSA", CKM_ECDSA, NULL, 0, k_ec_priv, k_ec_pub, msg, 32, 0, 1);
	sign_case("ECDSA 20-byte input", CKM_ECDSA, NULL, 0, k_ec_priv, k_ec_pub, msg, 20, 0, 0);
	sign_case("ECDSA 64-byte input", CKM_ECDSA, NULL, 0, k_ec_priv, k_ec_pub, msg, 64, 0, 0);
	static const CK_MECHANISM_TYPE ecdsah[] = {CKM_ECDSA_SHA1, CKM_ECDSA_SHA224, CKM_ECDSA_SHA256,
						   CKM_ECDSA_SHA384, CKM_ECDSA_SHA512};
	for (size_t i = 0; i < ARRAY_LEN(ecdsah); i++)
		sign_case(mechn(ecdsah[i]), ecdsah[i], NULL, 0, k_ec_priv, k_ec_pub, msg, 100, 0, 1);
	sign_case("EDDSA Ed25519", CKM_EDDSA, NULL, 0, k_ed_priv, k_ed_pub, msg, 100, 1, 1);
	sign_case("EDDSA Ed25519 empty message", CKM_EDDSA, NULL, 0, k_ed_priv, k_ed_pub, msg, 0, 1, 0);
	sign_case("DSA", CKM_DSA, NULL, 0, k_dsa_priv, k_dsa_pub, msg, 28, 0, 1);
	sign_case("DSA 20-byte input", CKM_DSA, NULL, 0, k_dsa_priv, k_dsa_pub, msg, 20, 0, 0);
	static const CK_MECHANISM_TYPE dsah[] = {CKM_DSA_SHA1, CKM_DSA_SHA224, CKM_DSA_SHA256, CKM_DSA_SHA384,
						 CKM_DSA_SHA512};
	for (size_t i = 0; i < ARRAY_LEN(dsah); i++)
		sign_case(mechn(dsah[i]), dsah[i], NULL, 0, k_dsa_priv, k_dsa_pub, msg, 100, 0, 1);

	/* Operation state and argument edge cases. */
	clear_ops("operations active before the edge cases");
	minit("SignInit", P(C_SignInit), CKM_SHA256_HMAC, NULL, 0, k_gen);
	minit("SignInit again", P(C_SignInit), CKM_SHA256_HMAC, NULL, 0, k_gen);
	rrv("C_Login(context specific) during a signature", P(C_Login)(S, CKU_CONTEXT_SPECIFIC, PIN(USER_PIN)));
	rrv("Sign(NULL pulSignatureLen)", P(C_Sign)(S, msg, 10, ybuf, NULL));
	yio("Sign after NULL pulSignatureLen", P(C_Sign), msg, 10, Y_DET, NULL, NULL);
	end_sign("end sign 1");
	minit("SignInit for Update+Sign", P(C_SignInit), CKM_SHA256_HMAC, NULL, 0, k_gen);
	rrv("SignUpdate", P(C_SignUpdate)(S, msg, 10));
	yio("Sign after SignUpdate", P(C_Sign), msg, 10, Y_DET, NULL, NULL);
	end_sign("end sign 2");
	minit("SignInit for NULL data", P(C_SignInit), CKM_SHA256_HMAC, NULL, 0, k_gen);
	yio("Sign(NULL data, 10)", P(C_Sign), NULL, 10, Y_DET, NULL, NULL);
	end_sign("end sign 3");
	minit("SignInit for NULL final", P(C_SignInit), CKM_SHA256_HMAC, NULL, 0, k_gen);
	rrv("SignUpdate for NULL final", P(C_SignUpdate)(S, msg, 10));
	rrv("SignFinal(NULL pulSignatureLen)", P(C_SignFinal)(S, ybuf, NULL));
	end_sign("end sign 4");
	yio("Sign without init", P(C_Sign), msg, 10, Y_DET, NULL, NULL);
	rrv("SignUpdate without init", P(C_SignUpdate)(S, msg, 10));
	yout("SignFinal without init", P(C_SignFinal), Y_DET, NULL, NULL);
	rrv("Verify without init", P(C_Verify)(S, msg, 10, msg, 32));
	rrv("VerifyUpdate without init", P(C_VerifyUpdate)(S, msg, 10));
	rrv("VerifyFinal without init", P(C_VerifyFinal)(S, msg, 32));
	minit("SignInit with a public key", P(C_SignInit), CKM_SHA256_RSA_PKCS, NULL, 0, k_rsa_pub);
	end_sign("end sign 5");
	minit("SignInit with a key that may not sign", P(C_SignInit), CKM_SHA256_HMAC, NULL, 0, k_noenc);
	minit("SignInit RSA mechanism with an EC key", P(C_SignInit), CKM_SHA256_RSA_PKCS, NULL, 0, k_ec_priv);
	minit("SignInit bad key", P(C_SignInit), CKM_SHA256_HMAC, NULL, 0, BAD_OBJECT);
	minit("VerifyInit with a private key", P(C_VerifyInit), CKM_SHA256_RSA_PKCS, NULL, 0, k_rsa_priv);
	end_verify("end verify 1");
	minit("VerifyInit for NULL signature", P(C_VerifyInit), CKM_SHA256_HMAC, NULL, 0, k_gen);
	rrv("Verify(NULL signature)", P(C_Verify)(S, msg, 10, NULL, 32));
	end_verify("end verify 2");
	minit("VerifyInit twice", P(C_VerifyInit), CKM_SHA256_HMAC, NULL, 0, k_gen);
	minit("VerifyInit twice 2", P(C_VerifyInit), CKM_SHA256_HMAC, NULL, 0, k_gen);
	end_verify("end verify 3");
	minit("HMAC SignInit with RSA key", P(C_SignInit), CKM_SHA256_HMAC, NULL, 0, k_rsa_priv);
	minit("EDDSA SignInit with EC key", P(C_SignInit), CKM_EDDSA, NULL, 0, k_ec_priv);
	end_sign("end sign 6");

	/* Sign and verify with recovery. */
	clear_ops("operations active before recovery");
	{
		CK_BYTE sig[512];
		CK_ULONG sl = 0;
		minit("RSA_PKCS SignInit for recovery", P(C_SignInit), CKM_RSA_PKCS, NULL, 0, k_rsa_priv);
		yio("RSA_PKCS Sign for recovery", P(C_Sign), msg, 36, Y_DET, sig, &sl);
		static const CK_MECHANISM_TYPE rm[] = {CKM_RSA_PKCS, CKM_RSA_X_509};
		for (size_t i = 0; i < ARRAY_LEN(rm); i++) {
			const char *n = mechn(rm[i]);
			minit(fmt("%s SignRecoverInit", n), P(C_SignRecoverInit), rm[i], NULL, 0, k_rsa_priv);
			yio(fmt("%s SignRecover", n), P(C_SignRecover), msg, 36, Y_PROBE | Y_DET, NULL, NULL);
			minit(fmt("%s VerifyRecoverInit", n), P(C_VerifyRecoverInit), rm[i], NULL, 0, k_rsa_pub);
			yio(fmt("%s VerifyRecover", n), P(C_VerifyRecover), sig, sl, Y_PROBE | Y_DET, NULL, NULL);
		}
		minit("SignRecoverInit with HMAC", P(C_SignRecoverInit), CKM_SHA256_HMAC, NULL, 0, k_gen);
		minit("RSA_PKCS SignRecoverInit for NULL length", P(C_SignRecoverInit), CKM_RSA_PKCS, NULL, 0, k_rsa_priv);
		rrv("SignRecover(NULL length)", P(C_SignRecover)(S, msg, 36, ybuf, NULL));
		minit("RSA_PKCS VerifyRecoverInit for NULL length", P(C_VerifyRecoverInit), CKM_RSA_PKCS, NULL, 0, k_rsa_pub);
		rrv("VerifyRecover(NULL length)", P(C_VerifyRecover)(S, sig, sl, ybuf, NULL));
	}
}

/* ------------------------------------------------------------------ */
/* Area: wrapping and unwrapping                                       */

/* The key material of a key, for comparing an unwrapped key with its
 * original on the same side. */
static const char *material(CK_OBJECT_HANDLE h)
{
	static const CK_ATTRIBUTE_TYPE types[] = {CKA_VALUE, CKA_PRIVATE_EXPONENT};
	for (size_t i = 0; i < ARRAY_LEN(types); i++) {
		CK_BYTE b[1024];
		long l = get_attr(h, types[i], b, sizeof b);
		if (l >= 0)
			return hex(b, (size_t)l);
	}
	return "(unreadable)";
}

static CK_OBJECT_HANDLE unwrap(const char *step, CK_MECHANISM *m, CK_OBJECT_HANDLE unwrapper, CK_BYTE *w,
			       CK_ULONG wl, CK_ATTRIBUTE *t, CK_ULONG n)
{
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv = P(C_UnwrapKey)(S, m, unwrapper, w, wl, t, n, &h);
	mech_used(m->mechanism, rv);
	rec(step, "rv=%s handle=%s", rvn(rv), h ? "set" : "unset");
	if (rv != CKR_OK)
		return CK_INVALID_HANDLE;
	reg(step, h);
	return h;
}

static void wrap_case(const char *n0, CK_MECHANISM_TYPE mt, void *param, CK_ULONG plen, CK_OBJECT_HANDLE wrapping,
		      CK_OBJECT_HANDLE unwrapping, CK_OBJECT_HANDLE target, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt, int det)
{
	char n[256];
	snprintf(n, sizeof n, "%s", n0);
	CK_MECHANISM m = {mt, param, plen};
	CK_BYTE w[OUTCAP];
	CK_ULONG wl = 0;
	clear_ops(fmt("%s: operations active before", n));
	struct ycall c = {.wrap = 1, .s = S, .m = &m, .k1 = wrapping, .k2 = target};
	CK_RV rv = yrun(fmt("%s WrapKey", n), &c, Y_PROBE | (det ? Y_DET : 0), w, &wl);
	mech_used(mt, rv);
	CK_ATTRIBUTE t[] = {AV(CKA_CLASS, cls), AV(CKA_KEY_TYPE, kt), AV(CKA_TOKEN, no), AV(CKA_SENSITIVE, no),
			    AV(CKA_EXTRACTABLE, yes), AS(CKA_LABEL, "unwrapped")};
	CK_OBJECT_HANDLE h = unwrap(fmt("%s UnwrapKey", n), &m, unwrapping, w, wl, t, ARRAY_LEN(t));
	if (h) {
		const char *a = material(h), *b = material(target);
		rec(fmt("%s unwrapped key", n), "material=%s same-as-original=%s", a, strcmp(a, b) == 0 ? "yes" : "no");
		destroy(fmt("%s destroy unwrapped", n), h);
	}
}

static void area_wrap(void)
{
	set_area("wrap", 120);
	clear_ops("operations active at the start");
	static CK_BYTE a6[8] = {0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6};
	static CK_BYTE gen20_v[20];
	for (size_t i = 0; i < sizeof gen20_v; i++)
		gen20_v[i] = (CK_BYTE)(0xc0 + i);
	CK_OBJECT_HANDLE gen20 = secret_key("generic20", &kt_gen, gen20_v, 20, &no, &no);
	CK_RSA_PKCS_OAEP_PARAMS oaep = {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};

	wrap_case("AES_KEY_WRAP aes128 by aes256", CKM_AES_KEY_WRAP, NULL, 0, k_aes256, k_aes256, k_aes128,
		  CKO_SECRET_KEY, CKK_AES, 1);
	wrap_case("AES_KEY_WRAP generic64 by aes128", CKM_AES_KEY_WRAP, NULL, 0, k_aes128, k_aes128, k_gen,
		  CKO_SECRET_KEY, CKK_GENERIC_SECRET, 1);
	wrap_case("AES_KEY_WRAP with the default IV", CKM_AES_KEY_WRAP, a6, 8, k_aes256, k_aes256, k_aes128,
		  CKO_SECRET_KEY, CKK_AES, 1);
	wrap_case("AES_KEY_WRAP of a 20-byte key", CKM_AES_KEY_WRAP, NULL, 0, k_aes256, k_aes256, gen20,
		  CKO_SECRET_KEY, CKK_GENERIC_SECRET, 1);
	wrap_case("AES_KEY_WRAP_PAD generic20", CKM_AES_KEY_WRAP_PAD, NULL, 0, k_aes256, k_aes256, gen20,
		  CKO_SECRET_KEY, CKK_GENERIC_SECRET, 1);
	wrap_case("AES_KEY_WRAP_PAD aes128", CKM_AES_KEY_WRAP_PAD, NULL, 0, k_aes256, k_aes256, k_aes128,
		  CKO_SECRET_KEY, CKK_AES, 1);
	wrap_case("AES_KEY_WRAP_PAD rsa.priv", CKM_AES_KEY_WRAP_PAD, NULL, 0, k_aes256, k_aes256, k_rsa_priv,
		  CKO_PRIVATE_KEY, CKK_RSA, 1);
	wrap_case("AES_KEY_WRAP_PAD ec.priv", CKM_AES_KEY_WRAP_PAD, NULL, 0, k_aes256, k_aes256, k_ec_priv,
		  CKO_PRIVATE_KEY, CKK_EC, 1);
	wrap_case("AES_KEY_WRAP_PAD dsa.priv", CKM_AES_KEY_WRAP_PAD, NULL, 0, k_aes256, k_aes256, k_dsa_priv,
		  CKO_PRIVATE_KEY, CKK_DSA, 1);
	wrap_case("AES_KEY_WRAP_PAD ed25519.priv", CKM_AES_KEY_WRAP_PAD, NULL, 0, k_aes256, k_aes256, k_ed_priv,
		  CKO_PRIVATE_KEY, CKK_EC_EDWARDS, 1);
	wrap_case("AES_CBC aes128 by aes256", CKM_AES_CBC, iv16, 16, k_aes256, k_aes256, k_aes128, CKO_SECRET_KEY,
		  CKK_AES, 1);
	wrap_case("AES_CBC_PAD generic20 by aes256", CKM_AES_CBC_PAD, iv16, 16, k_aes256, k_aes256, gen20,
		  CKO_SECRET_KEY, CKK_GENERIC_SECRET, 1);
	wrap_case("AES_ECB aes128 by aes256", CKM_AES_ECB, NULL, 0, k_aes256, k_aes256, k_aes128, CKO_SECRET_KEY,
		  CKK_AES, 1);
	wrap_case("DES3_CBC aes128 by des3", CKM_DES3_CBC, iv8, 8, k_des3, k_des3, k_aes128, CKO_SECRET_KEY, CKK_AES, 1);
	wrap_case("DES3_ECB aes128 by des3", CKM_DES3_ECB, NULL, 0, k_des3, k_des3, k_aes128, CKO_SECRET_KEY, CKK_AES, 1);
	wrap_case("DES_ECB aes128 by des", CKM_DES_ECB, NULL, 0, k_des, k_des, k_aes128, CKO_SECRET_KEY, CKK_AES, 1);
	wrap_case("DES_CBC aes128 by des", CKM_DES_CBC, iv8, 8, k_des, k_des, k_aes128, CKO_SECRET_KEY, CKK_AES, 1);
	wrap_case("DES_CBC_PAD generic20 by des", CKM_DES_CBC_PAD, iv8, 8, k_des, k_des, gen20, CKO_SECRET_KEY,
		  CKK_GENERIC_SECRET, 1);
	wrap_case("RSA_PKCS aes128 by rsa", CKM_RSA_PKCS, NULL, 0, k_rsa_pub, k_rsa_priv, k_aes128, CKO_SECRET_KEY,
		  CKK_AES, 0);
	wrap_case("RSA_PKCS_OAEP aes256 by rsa", CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep, k_rsa_pub, k_rsa_priv,
		  k_aes256, CKO_SECRET_KEY, CKK_AES, 0);
	{
		/* CK_RSA_AES_KEY_WRAP_PARAMS (not in <p11-kit/pkcs11.h>); SoftHSM
		 * does not list the mechanism, the parameter still crosses. */
		struct {
			CK_ULONG ulAESKeyBits;
			CK_RSA_PKCS_OAEP_PARAMS *pOAEPParams;
		} rsa_aes = {256, &oaep};
		wrap_case("RSA_AES_KEY_WRAP aes128 by rsa", 0x1054UL, &rsa_aes, sizeof rsa_aes, k_rsa_pub, k_rsa_priv,
			  k_aes128, CKO_SECRET_KEY, CKK_AES, 0);
	}
	wrap_case("RSA_X_509 aes128 by rsa", CKM_RSA_X_509, NULL, 0, k_rsa_pub, k_rsa_priv, k_aes128,
		  CKO_SECRET_KEY, CKK_AES, 1);

	/* Templates of the wrapping key. */
	/* (wrapper holds aes256's value: aes256 unwraps what it wraps) */
	wrap_case("WRAP_TEMPLATE met (aes128)", CKM_AES_KEY_WRAP, NULL, 0, k_wrapper, k_aes256, k_aes128,
		  CKO_SECRET_KEY, CKK_AES, 1);
	wrap_case("WRAP_TEMPLATE not met (des3)", CKM_AES_KEY_WRAP, NULL, 0, k_wrapper, k_aes256, k_des3,
		  CKO_SECRET_KEY, CKK_DES3, 1);
	{
		CK_MECHANISM m = {CKM_AES_KEY_WRAP, NULL, 0};
		CK_BYTE w[64];
		CK_ULONG wl = sizeof w;
		CK_RV rv = P(C_WrapKey)(S, &m, k_wrapper, k_aes128, w, &wl);
		rec("wrap for UNWRAP_TEMPLATE", "rv=%s len=%s out=%s", rvn(rv), lens(wl), rv == CKR_OK ? hex(w, wl) : "-");
		CK_ATTRIBUTE ok[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no)};
		CK_ATTRIBUTE meets[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no),
					AV(CKA_SENSITIVE, no), AS(CKA_LABEL, "unwrapped"), AV(CKA_EXTRACTABLE, yes),
					AV(CKA_ENCRYPT, yes)};
		unwrap("UnwrapKey with a template lacking UNWRAP_TEMPLATE's attributes", &m, k_wrapper, w, wl, ok,
		       ARRAY_LEN(ok));
		CK_OBJECT_HANDLE h = unwrap("UnwrapKey meeting UNWRAP_TEMPLATE", &m, k_wrapper, w, wl, meets, ARRAY_LEN(meets));
		if (h) {
			rec_attr("unwrapped LABEL from UNWRAP_TEMPLATE", h, CKA_LABEL, 1);
			rec_attr("unwrapped SENSITIVE from UNWRAP_TEMPLATE", h, CKA_SENSITIVE, 1);
			rec_attr("unwrapped VALUE", h, CKA_VALUE, 1);
		}
		CK_ATTRIBUTE bad[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no),
				      AV(CKA_SENSITIVE, yes), AS(CKA_LABEL, "unwrapped"), AV(CKA_EXTRACTABLE, yes),
				      AV(CKA_ENCRYPT, yes)};
		unwrap("UnwrapKey against UNWRAP_TEMPLATE", &m, k_wrapper, w, wl, bad, ARRAY_LEN(bad));

		/* Argument edge cases. */
		wl = sizeof w;
		rv = P(C_WrapKey)(S, &m, k_aes256, k_aes128, w, &wl);
		rec("WrapKey for edge cases", "rv=%s len=%s", rvn(rv), lens(wl));
		CK_OBJECT_HANDLE h2 = CK_INVALID_HANDLE;
		rrv("UnwrapKey(NULL phKey)", P(C_UnwrapKey)(S, &m, k_aes256, w, wl, ok, ARRAY_LEN(ok), NULL));
		rrv("UnwrapKey(NULL wrapped key)", P(C_UnwrapKey)(S, &m, k_aes256, NULL, wl, ok, ARRAY_LEN(ok), &h2));
		unwrap("UnwrapKey 23 bytes", &m, k_aes256, w, 23, ok, ARRAY_LEN(ok));
		w[3] ^= 1;
		unwrap("UnwrapKey corrupted", &m, k_aes256, w, wl, ok, ARRAY_LEN(ok));
		w[3] ^= 1;
		CK_ATTRIBUTE noclass[] = {AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no)};
		unwrap("UnwrapKey without CLASS", &m, k_aes256, w, wl, noclass, ARRAY_LEN(noclass));
		unwrap("UnwrapKey bad unwrapping key", &m, BAD_OBJECT, w, wl, ok, ARRAY_LEN(ok));
		unwrap("UnwrapKey with a key that may not unwrap", &m, k_noenc, w, wl, ok, ARRAY_LEN(ok));
		CK_ATTRIBUTE tok[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, yes)};
		h2 = CK_INVALID_HANDLE;
		rv = P(C_UnwrapKey)(R, &m, k_aes256, w, wl, tok, ARRAY_LEN(tok), &h2);
		rec("UnwrapKey token key in RO session", "rv=%s handle=%s", rvn(rv), h2 ? "set" : "unset");
		rrv("WrapKey(NULL pulWrappedKeyLen)", P(C_WrapKey)(S, &m, k_aes256, k_aes128, w, NULL));
		wl = sizeof w;
		rrv("WrapKey unextractable key", P(C_WrapKey)(S, &m, k_aes256, k_aes_sens, w, &wl));
		wl = sizeof w;
		rrv("WrapKey with a key that may not wrap", P(C_WrapKey)(S, &m, k_noenc, k_aes128, w, &wl));
		wl = sizeof w;
		rrv("WrapKey bad wrapping key", P(C_WrapKey)(S, &m, BAD_OBJECT, k_aes128, w, &wl));
		wl = sizeof w;
		rrv("WrapKey bad key", P(C_WrapKey)(S, &m, k_aes256, BAD_OBJECT, w, &wl));
		wl = sizeof w;
		rrv("WrapKey AES_KEY_WRAP with an RSA key", P(C_WrapKey)(S, &m, k_rsa_pub, k_aes128, w, &wl));
		CK_MECHANISM bad_iv = {CKM_AES_KEY_WRAP, iv16, 16};
		wl = sizeof w;
		rrv("WrapKey AES_KEY_WRAP 16-byte IV", P(C_WrapKey)(S, &bad_iv, k_aes256, k_aes128, w, &wl));
	}
}

/* ------------------------------------------------------------------ */
/* Area: key derivation                                                */

static CK_OBJECT_HANDLE derive(const char *n, CK_MECHANISM_TYPE mt, void *param, CK_ULONG plen,
			       CK_OBJECT_HANDLE base, CK_ATTRIBUTE *t, CK_ULONG nt, int det)
{
	CK_MECHANISM m = {mt, param, plen};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv = P(C_DeriveKey)(S, &m, base, t, nt, &h);
	mech_used(mt, rv);
	rec(fmt("%s DeriveKey", n), "rv=%s handle=%s", rvn(rv), h ? "set" : "unset");
	if (rv != CKR_OK)
		return CK_INVALID_HANDLE;
	reg(n, h);
	rec_attr(fmt("%s derived VALUE", n), h, CKA_VALUE, det);
	rec_attr(fmt("%s derived KEY_TYPE", n), h, CKA_KEY_TYPE, 1);
	rec_attr(fmt("%s derived VALUE_LEN", n), h, CKA_VALUE_LEN, 1);
	return h;
}

static CK_ULONG u16 = 16, u24 = 24, u32 = 32, u128 = 128;

static void area_derive(void)
{
	set_area("derive", 120);
	clear_ops("operations active at the start");
	CK_ATTRIBUTE g32[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_gen), AV(CKA_TOKEN, no),
			      AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes), AV(CKA_VALUE_LEN, u32)};
	CK_ATTRIBUTE gall[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_gen), AV(CKA_TOKEN, no),
			       AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes)};
	CK_ATTRIBUTE a16[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no),
			      AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes), AV(CKA_VALUE_LEN, u16)};
	CK_ATTRIBUTE a32[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no),
			      AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes), AV(CKA_VALUE_LEN, u32)};
	CK_ATTRIBUTE aes_nolen[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no),
				    AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes)};
	CK_ATTRIBUTE d3[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_des3), AV(CKA_TOKEN, no),
			     AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes)};
	CK_ATTRIBUTE g24[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_gen), AV(CKA_TOKEN, no),
			      AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes), AV(CKA_VALUE_LEN, u24)};
	CK_ATTRIBUTE g128[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_gen), AV(CKA_TOKEN, no),
			       AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes), AV(CKA_VALUE_LEN, u128)};

	/* ECDH with a fixed key pair and a fixed peer: a deterministic secret. */
	CK_BYTE der_peer[67] = {0x04, 0x41};
	memcpy(der_peer + 2, ec_peer_point, 65);
	CK_ECDH1_DERIVE_PARAMS e = {CKD_NULL, 0, NULL, sizeof ec_peer_point, (CK_BYTE *)ec_peer_point};
	derive("ECDH1 raw peer point", CKM_ECDH1_DERIVE, &e, sizeof e, k_ec_priv, g32, ARRAY_LEN(g32), 1);
	derive("ECDH1 whole secret", CKM_ECDH1_DERIVE, &e, sizeof e, k_ec_priv, gall, ARRAY_LEN(gall), 1);
	derive("ECDH1 into AES-128", CKM_ECDH1_DERIVE, &e, sizeof e, k_ec_priv, a16, ARRAY_LEN(a16), 1);
	CK_ECDH1_DERIVE_PARAMS e2 = {CKD_NULL, 0, NULL, sizeof der_peer, der_peer};
	derive("ECDH1 DER peer point", CKM_ECDH1_DERIVE, &e2, sizeof e2, k_ec_priv, g32, ARRAY_LEN(g32), 1);
	CK_ECDH1_DERIVE_PARAMS e3 = {CKD_SHA1_KDF, 5, (CK_BYTE *)"extra", sizeof ec_peer_point, (CK_BYTE *)ec_peer_point};
	derive("ECDH1 SHA1 KDF", CKM_ECDH1_DERIVE, &e3, sizeof e3, k_ec_priv, g32, ARRAY_LEN(g32), 1);
	CK_ECDH1_DERIVE_PARAMS e4 = {CKD_SHA256_KDF, 0, NULL, sizeof ec_peer_point, (CK_BYTE *)ec_peer_point};
	derive("ECDH1 SHA256 KDF", CKM_ECDH1_DERIVE, &e4, sizeof e4, k_ec_priv, g32, ARRAY_LEN(g32), 1);
	CK_ECDH1_DERIVE_PARAMS e5 = {CKD_NULL, 5, (CK_BYTE *)"extra", sizeof ec_peer_point, (CK_BYTE *)ec_peer_point};
	derive("ECDH1 NULL KDF with shared data", CKM_ECDH1_DERIVE, &e5, sizeof e5, k_ec_priv, g32, ARRAY_LEN(g32), 1);
	derive("ECDH1 short parameter", CKM_ECDH1_DERIVE, &e, sizeof e - 8, k_ec_priv, g32, ARRAY_LEN(g32), 1);
	derive("ECDH1 no parameter", CKM_ECDH1_DERIVE, NULL, 0, k_ec_priv, g32, ARRAY_LEN(g32), 1);
	CK_ECDH1_DERIVE_PARAMS e6 = {CKD_NULL, 0, NULL, 10, (CK_BYTE *)ec_peer_point};
	derive("ECDH1 truncated peer point", CKM_ECDH1_DERIVE, &e6, sizeof e6, k_ec_priv, g32, ARRAY_LEN(g32), 1);
	derive("ECDH1 with an RSA key", CKM_ECDH1_DERIVE, &e, sizeof e, k_rsa_priv, g32, ARRAY_LEN(g32), 1);

	/* DH with two fixed private keys: both directions give one secret. */
	CK_OBJECT_HANDLE s1 = derive("DH dh1 with y2", CKM_DH_PKCS_DERIVE, (void *)dh_y2, sizeof dh_y2, k_dh1, g128,
				     ARRAY_LEN(g128), 1);
	CK_OBJECT_HANDLE s2 = derive("DH dh2 with y1", CKM_DH_PKCS_DERIVE, (void *)dh_y1, sizeof dh_y1, k_dh2, g128,
				     ARRAY_LEN(g128), 1);
	derive("DH without VALUE_LEN", CKM_DH_PKCS_DERIVE, (void *)dh_y2, sizeof dh_y2, k_dh1, gall, ARRAY_LEN(gall), 1);
	if (s1 && s2) {
		const char *a = material(s1), *b = material(s2);
		rec("DH both directions", "%s", strcmp(a, b) == 0 ? "same secret" : "DIFFERENT");
	}
	derive("DH into AES-128", CKM_DH_PKCS_DERIVE, (void *)dh_y2, sizeof dh_y2, k_dh1, a16, ARRAY_LEN(a16), 1);
	derive("DH no public value", CKM_DH_PKCS_DERIVE, NULL, 0, k_dh1, gall, ARRAY_LEN(gall), 1);

	/* Encryption of data as derivation. */
	CK_KEY_DERIVATION_STRING_DATA sd32 = {msg, 32}, sd24 = {msg, 24}, sd20 = {msg, 20};
	CK_AES_CBC_ENCRYPT_DATA_PARAMS acbc;
	memcpy(acbc.iv, iv16, 16);
	acbc.pData = msg, acbc.length = 32;
	CK_DES_CBC_ENCRYPT_DATA_PARAMS dcbc;
	memcpy(dcbc.iv, iv8, 8);
	dcbc.pData = msg, dcbc.length = 24;
	derive("AES_ECB_ENCRYPT_DATA into AES", CKM_AES_ECB_ENCRYPT_DATA, &sd32, sizeof sd32, k_aes128, aes_nolen,
	       ARRAY_LEN(aes_nolen), 1);
	derive("AES_ECB_ENCRYPT_DATA into AES-256", CKM_AES_ECB_ENCRYPT_DATA, &sd32, sizeof sd32, k_aes128, a32,
	       ARRAY_LEN(a32), 1);
	derive("AES_ECB_ENCRYPT_DATA into generic 24", CKM_AES_ECB_ENCRYPT_DATA, &sd32, sizeof sd32, k_aes256, g24,
	       ARRAY_LEN(g24), 1);
	derive("AES_ECB_ENCRYPT_DATA 20 bytes", CKM_AES_ECB_ENCRYPT_DATA, &sd20, sizeof sd20, k_aes128, aes_nolen,
	       ARRAY_LEN(aes_nolen), 1);
	derive("AES_CBC_ENCRYPT_DATA into AES", CKM_AES_CBC_ENCRYPT_DATA, &acbc, sizeof acbc, k_aes128, aes_nolen,
	       ARRAY_LEN(aes_nolen), 1);
	derive("AES_CBC_ENCRYPT_DATA into AES-128", CKM_AES_CBC_ENCRYPT_DATA, &acbc, sizeof acbc, k_aes256, a16,
	       ARRAY_LEN(a16), 1);
	derive("DES_ECB_ENCRYPT_DATA into DES3", CKM_DES_ECB_ENCRYPT_DATA, &sd24, sizeof sd24, k_des, d3,
	       ARRAY_LEN(d3), 1);
	derive("DES_CBC_ENCRYPT_DATA into DES3", CKM_DES_CBC_ENCRYPT_DATA, &dcbc, sizeof dcbc, k_des, d3,
	       ARRAY_LEN(d3), 1);
	derive("DES3_ECB_ENCRYPT_DATA into DES3", CKM_DES3_ECB_ENCRYPT_DATA, &sd24, sizeof sd24, k_des3, d3,
	       ARRAY_LEN(d3), 1);
	derive("DES3_ECB_ENCRYPT_DATA into generic 24", CKM_DES3_ECB_ENCRYPT_DATA, &sd24, sizeof sd24, k_des3, g24,
	       ARRAY_LEN(g24), 1);
	derive("DES3_CBC_ENCRYPT_DATA into DES3", CKM_DES3_CBC_ENCRYPT_DATA, &dcbc, sizeof dcbc, k_des3, d3,
	       ARRAY_LEN(d3), 1);
	derive("AES_ECB_ENCRYPT_DATA short parameter", CKM_AES_ECB_ENCRYPT_DATA, &sd32, sizeof sd32 - 8, k_aes128,
	       aes_nolen, ARRAY_LEN(aes_nolen), 1);
	derive("AES_CBC_ENCRYPT_DATA with a DES key", CKM_AES_CBC_ENCRYPT_DATA, &acbc, sizeof acbc, k_des3, aes_nolen,
	       ARRAY_LEN(aes_nolen), 1);

	/* Mechanisms SoftHSM does not list: the parameters still cross. */
	CK_OBJECT_HANDLE other = k_aes256, bad_other = BAD_OBJECT;
	derive("CONCATENATE_BASE_AND_KEY", CKM_CONCATENATE_BASE_AND_KEY, &other, sizeof other, k_aes128, gall,
	       ARRAY_LEN(gall), 1);
	derive("CONCATENATE_BASE_AND_KEY with a bad key in the parameter", CKM_CONCATENATE_BASE_AND_KEY, &bad_other,
	       sizeof bad_other, k_aes128, gall, ARRAY_LEN(gall), 1);
	derive("CONCATENATE_BASE_AND_DATA", CKM_CONCATENATE_BASE_AND_DATA, &sd20, sizeof sd20, k_aes128, gall,
	       ARRAY_LEN(gall), 1);
	derive("CONCATENATE_DATA_AND_BASE", CKM_CONCATENATE_DATA_AND_BASE, &sd20, sizeof sd20, k_aes128, gall,
	       ARRAY_LEN(gall), 1);
	derive("XOR_BASE_AND_DATA", CKM_XOR_BASE_AND_DATA, &sd20, sizeof sd20, k_aes128, gall, ARRAY_LEN(gall), 1);
	derive("SHA256_KEY_DERIVATION", CKM_SHA256_KEY_DERIVATION, NULL, 0, k_aes128, gall, ARRAY_LEN(gall), 1);

	/* The base key's DERIVE_TEMPLATE (VALUE_LEN 16, ENCRYPT true); SoftHSM
	 * 2.6 refuses the attribute, so the base key may not exist. */
	CK_ATTRIBUTE meets[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no),
				AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes)};
	CK_ATTRIBUTE against[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no),
				  AV(CKA_ENCRYPT, no), AV(CKA_VALUE_LEN, u16)};
	CK_OBJECT_HANDLE t = derive("DERIVE_TEMPLATE met", CKM_AES_ECB_ENCRYPT_DATA, &sd32, sizeof sd32, k_deriver,
				    meets, ARRAY_LEN(meets), 1);
	if (t)
		rec_attr("DERIVE_TEMPLATE met: ENCRYPT", t, CKA_ENCRYPT, 1);
	derive("DERIVE_TEMPLATE not met", CKM_AES_ECB_ENCRYPT_DATA, &sd32, sizeof sd32, k_deriver, against,
	       ARRAY_LEN(against), 1);

	/* A derived key, every attribute. */
	CK_OBJECT_HANDLE d = derive("AES_ECB_ENCRYPT_DATA for dump", CKM_AES_ECB_ENCRYPT_DATA, &sd32, sizeof sd32,
				    k_aes128, a16, ARRAY_LEN(a16), 1);
	if (d)
		dump_obj("attrs of a derived key", d, 1);

	CK_MECHANISM m = {CKM_AES_ECB_ENCRYPT_DATA, &sd32, sizeof sd32};
	CK_OBJECT_HANDLE h;
	rrv("DeriveKey(NULL phKey)", P(C_DeriveKey)(S, &m, k_aes128, a16, ARRAY_LEN(a16), NULL));
	derive("DeriveKey base may not derive", CKM_AES_ECB_ENCRYPT_DATA, &sd32, sizeof sd32, k_noenc, aes_nolen,
	       ARRAY_LEN(aes_nolen), 1);
	derive("DeriveKey bad base", CKM_AES_ECB_ENCRYPT_DATA, &sd32, sizeof sd32, BAD_OBJECT, aes_nolen,
	       ARRAY_LEN(aes_nolen), 1);
	derive("DeriveKey no template", CKM_AES_ECB_ENCRYPT_DATA, &sd32, sizeof sd32, k_aes128, NULL, 0, 1);
	CK_ATTRIBUTE tok[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, yes)};
	h = CK_INVALID_HANDLE;
	CK_RV rv = P(C_DeriveKey)(R, &m, k_aes128, tok, ARRAY_LEN(tok), &h);
	rec("DeriveKey token key in RO session", "rv=%s handle=%s", rvn(rv), h ? "set" : "unset");
}

/* ------------------------------------------------------------------ */
/* Area: key generation (random keys: lengths, and use on one side)    */

/* Sign with a generated key and verify on the same side. */
static void use_pair(const char *n, CK_MECHANISM_TYPE mt, void *param, CK_ULONG plen, CK_OBJECT_HANDLE priv,
		     CK_OBJECT_HANDLE pub)
{
	if (!priv || !pub)
		return;
	sign_case(n, mt, param, plen, priv, pub, msg, mt == CKM_ECDSA || mt == CKM_DSA ? 20 : 100, 0, 0);
}

static void use_secret(const char *n, CK_MECHANISM_TYPE mt, void *param, CK_ULONG plen, CK_OBJECT_HANDLE k)
{
	if (!k)
		return;
	CK_BYTE ct[256], pt[256];
	CK_ULONG cl = 0, pl = 0;
	if (minit(fmt("%s EncryptInit", n), P(C_EncryptInit), mt, param, plen, k) == CKR_OK)
		yio(fmt("%s Encrypt", n), P(C_Encrypt), msg, 32, 0, ct, &cl);
	if (minit(fmt("%s DecryptInit", n), P(C_DecryptInit), mt, param, plen, k) == CKR_OK)
		yio(fmt("%s Decrypt", n), P(C_Decrypt), ct, cl, 0, pt, &pl);
	rec(fmt("%s round trip", n), "%s", pl == 32 && memcmp(pt, msg, 32) == 0 ? "plaintext back" : "MISMATCH");
}

static void area_keygen(void)
{
	set_area("keygen", 300);
	clear_ops("operations active at the start");
	CK_ULONG l16 = 16, l17 = 17, l20 = 20, l32 = 32, l0 = 0;
	CK_ATTRIBUTE aes16[] = {AV(CKA_TOKEN, no), AV(CKA_VALUE_LEN, l16), AV(CKA_ENCRYPT, yes), AV(CKA_DECRYPT, yes),
				AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes)};
	CK_OBJECT_HANDLE a = gen_key("AES-128", CKM_AES_KEY_GEN, NULL, 0, aes16, ARRAY_LEN(aes16));
	if (a)
		dump_obj("attrs of a generated AES key", a, 0);
	use_secret("generated AES-128 AES_CBC_PAD", CKM_AES_CBC_PAD, iv16, 16, a);
	{
		CK_ATTRIBUTE gwt[] = {AV(CKA_KEY_TYPE, kt_aes), AV(CKA_VALUE_LEN, l16)};
		CK_ATTRIBUTE gut[] = {AV(CKA_TOKEN, no), AS(CKA_LABEL, "from-generated-wrapper")};
		CK_ATTRIBUTE gw[] = {AV(CKA_TOKEN, no), AV(CKA_VALUE_LEN, l32), AV(CKA_WRAP, yes), AV(CKA_UNWRAP, yes),
				     AV(CKA_WRAP_TEMPLATE, gwt), AV(CKA_UNWRAP_TEMPLATE, gut)};
		CK_OBJECT_HANDLE w = gen_key("AES-256 with wrap/unwrap templates", CKM_AES_KEY_GEN, NULL, 0, gw, ARRAY_LEN(gw));
		if (w) {
			nested_read("generated key WRAP_TEMPLATE", w, CKA_WRAP_TEMPLATE, gwt, ARRAY_LEN(gwt));
			nested_read("generated key UNWRAP_TEMPLATE", w, CKA_UNWRAP_TEMPLATE, gut, ARRAY_LEN(gut));
		}
		CK_ATTRIBUTE gd[] = {AV(CKA_TOKEN, no), AV(CKA_VALUE_LEN, l32), AV(CKA_DERIVE, yes),
				     AV(CKA_DERIVE_TEMPLATE, gwt)};
		gen_key("AES-256 with a derive template", CKM_AES_KEY_GEN, NULL, 0, gd, ARRAY_LEN(gd));
		CK_MECHANISM_TYPE am[] = {CKM_AES_GCM, CKM_AES_CTR, CKM_AES_CMAC};
		CK_ATTRIBUTE ga[] = {AV(CKA_TOKEN, no), AV(CKA_VALUE_LEN, l16), AV(CKA_ALLOWED_MECHANISMS, am)};
		CK_OBJECT_HANDLE g = gen_key("AES-128 with allowed mechanisms", CKM_AES_KEY_GEN, NULL, 0, ga, ARRAY_LEN(ga));
		if (g)
			rec_attr("generated key ALLOWED_MECHANISMS", g, CKA_ALLOWED_MECHANISMS, 1);
	}
	CK_ATTRIBUTE aes32[] = {AV(CKA_TOKEN, no), AV(CKA_VALUE_LEN, l32), AV(CKA_ENCRYPT, yes), AV(CKA_DECRYPT, yes)};
	use_secret("generated AES-256 AES_ECB", CKM_AES_ECB, NULL, 0,
		   gen_key("AES-256", CKM_AES_KEY_GEN, NULL, 0, aes32, ARRAY_LEN(aes32)));
	CK_ATTRIBUTE aes17[] = {AV(CKA_TOKEN, no), AV(CKA_VALUE_LEN, l17)};
	gen_key("AES of 17 bytes", CKM_AES_KEY_GEN, NULL, 0, aes17, ARRAY_LEN(aes17));
	CK_ATTRIBUTE nolen[] = {AV(CKA_TOKEN, no)};
	gen_key("AES without VALUE_LEN", CKM_AES_KEY_GEN, NULL, 0, nolen, ARRAY_LEN(nolen));
	CK_ATTRIBUTE pubcls[] = {AV(CKA_CLASS, cls_pub), AV(CKA_TOKEN, no), AV(CKA_VALUE_LEN, l16)};
	gen_key("AES with CLASS public key", CKM_AES_KEY_GEN, NULL, 0, pubcls, ARRAY_LEN(pubcls));
	CK_ATTRIBUTE withval[] = {AV(CKA_TOKEN, no), AV(CKA_VALUE_LEN, l16), AV(CKA_VALUE, aes128_v)};
	gen_key("AES with a VALUE", CKM_AES_KEY_GEN, NULL, 0, withval, ARRAY_LEN(withval));
	CK_ATTRIBUTE wrongkt[] = {AV(CKA_TOKEN, no), AV(CKA_VALUE_LEN, l16), AV(CKA_KEY_TYPE, kt_des3)};
	gen_key("AES with KEY_TYPE DES3", CKM_AES_KEY_GEN, NULL, 0, wrongkt, ARRAY_LEN(wrongkt));
	CK_ATTRIBUTE des[] = {AV(CKA_TOKEN, no), AV(CKA_ENCRYPT, yes), AV(CKA_DECRYPT, yes), AV(CKA_SENSITIVE, no)};
	CK_OBJECT_HANDLE k = gen_key("DES", CKM_DES_KEY_GEN, NULL, 0, des, ARRAY_LEN(des));
	if (k)
		dump_obj("attrs of a generated DES key", k, 0);
	use_secret("generated DES DES_CBC", CKM_DES_CBC, iv8, 8, k);
	k = gen_key("DES2", CKM_DES2_KEY_GEN, NULL, 0, des, ARRAY_LEN(des));
	use_secret("generated DES2 DES3_ECB", CKM_DES3_ECB, NULL, 0, k);
	k = gen_key("DES3", CKM_DES3_KEY_GEN, NULL, 0, des, ARRAY_LEN(des));
	if (k)
		dump_obj("attrs of a generated DES3 key", k, 0);
	use_secret("generated DES3 DES3_CBC", CKM_DES3_CBC, iv8, 8, k);
	CK_ATTRIBUTE g20[] = {AV(CKA_TOKEN, no), AV(CKA_VALUE_LEN, l20), AV(CKA_SIGN, yes), AV(CKA_VERIFY, yes),
			      AV(CKA_SENSITIVE, no)};
	k = gen_key("generic secret 20", CKM_GENERIC_SECRET_KEY_GEN, NULL, 0, g20, ARRAY_LEN(g20));
	if (k) {
		dump_obj("attrs of a generated generic secret", k, 0);
		sign_case("generated generic SHA_1_HMAC", CKM_SHA_1_HMAC, NULL, 0, k, k, msg, 100, 0, 0);
	}
	CK_ATTRIBUTE g0[] = {AV(CKA_TOKEN, no), AV(CKA_VALUE_LEN, l0)};
	gen_key("generic secret 0", CKM_GENERIC_SECRET_KEY_GEN, NULL, 0, g0, ARRAY_LEN(g0));
	CK_ATTRIBUTE toktmpl[] = {AV(CKA_TOKEN, yes), AV(CKA_VALUE_LEN, l16)};
	CK_MECHANISM agm = {CKM_AES_KEY_GEN, NULL, 0};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv = P(C_GenerateKey)(R, &agm, toktmpl, ARRAY_LEN(toktmpl), &h);
	rec("GenerateKey token key in RO session", "rv=%s handle=%s", rvn(rv), h ? "set" : "unset");
	k = gen_key("token AES", CKM_AES_KEY_GEN, NULL, 0, toktmpl, ARRAY_LEN(toktmpl));
	if (k)
		destroy("destroy generated token AES", k);
	rrv("GenerateKey(NULL phKey)", P(C_GenerateKey)(S, &agm, aes16, ARRAY_LEN(aes16), NULL));
	rrv("GenerateKey(NULL template, 2)", P(C_GenerateKey)(S, &agm, NULL, 2, &h));
	gen_key("GenerateKey with a key-pair mechanism", CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0, aes16, ARRAY_LEN(aes16));
	gen_key("GenerateKey with a cipher mechanism", CKM_AES_ECB, NULL, 0, aes16, ARRAY_LEN(aes16));

	/* Key pairs. */
	CK_ULONG bits1024 = 1024, bits100 = 100;
	static const CK_BYTE f4[] = {0x01, 0x00, 0x01};
	CK_ATTRIBUTE rpub[] = {AV(CKA_TOKEN, no), AV(CKA_MODULUS_BITS, bits1024), AV(CKA_PUBLIC_EXPONENT, f4),
			       AV(CKA_VERIFY, yes), AV(CKA_ENCRYPT, yes)};
	CK_ATTRIBUTE rpriv[] = {AV(CKA_TOKEN, no), AV(CKA_SIGN, yes), AV(CKA_DECRYPT, yes), AV(CKA_SENSITIVE, no),
				AV(CKA_EXTRACTABLE, yes)};
	CK_OBJECT_HANDLE pub, priv;
	if (gen_pair("RSA-1024", CKM_RSA_PKCS_KEY_PAIR_GEN, rpub, ARRAY_LEN(rpub), rpriv, ARRAY_LEN(rpriv), &pub,
		     &priv) == CKR_OK) {
		dump_obj("attrs of a generated RSA public key", pub, 0);
		dump_obj("attrs of a generated RSA private key", priv, 0);
		use_pair("generated RSA SHA256_RSA_PKCS", CKM_SHA256_RSA_PKCS, NULL, 0, priv, pub);
	}
	{
		CK_ATTRIBUTE put[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_EXTRACTABLE, yes)};
		CK_ATTRIBUTE privt[] = {AV(CKA_TOKEN, no), AV(CKA_UNWRAP, yes), AV(CKA_DECRYPT, yes),
					AV(CKA_UNWRAP_TEMPLATE, put)};
		CK_ATTRIBUTE pubt[] = {AV(CKA_TOKEN, no), AV(CKA_MODULUS_BITS, bits1024), AV(CKA_PUBLIC_EXPONENT, f4),
				       AV(CKA_WRAP, yes), AV(CKA_WRAP_TEMPLATE, put)};
		if (gen_pair("RSA-1024 with wrap/unwrap templates", CKM_RSA_PKCS_KEY_PAIR_GEN, pubt, ARRAY_LEN(pubt), privt,
			     ARRAY_LEN(privt), &pub, &priv) == CKR_OK) {
			nested_read("generated public key WRAP_TEMPLATE", pub, CKA_WRAP_TEMPLATE, put, ARRAY_LEN(put));
			nested_read("generated private key UNWRAP_TEMPLATE", priv, CKA_UNWRAP_TEMPLATE, put, ARRAY_LEN(put));
		}
	}
	CK_ATTRIBUTE rpub_noexp[] = {AV(CKA_TOKEN, no), AV(CKA_MODULUS_BITS, bits1024), AV(CKA_VERIFY, yes)};
	if (gen_pair("RSA-1024 without exponent", CKM_RSA_PKCS_KEY_PAIR_GEN, rpub_noexp, ARRAY_LEN(rpub_noexp), rpriv,
		     ARRAY_LEN(rpriv), &pub, &priv) == CKR_OK)
		rec_attr("default public exponent", pub, CKA_PUBLIC_EXPONENT, 1);
	CK_ATTRIBUTE rpub_small[] = {AV(CKA_TOKEN, no), AV(CKA_MODULUS_BITS, bits100), AV(CKA_PUBLIC_EXPONENT, f4)};
	gen_pair("RSA-100", CKM_RSA_PKCS_KEY_PAIR_GEN, rpub_small, ARRAY_LEN(rpub_small), rpriv, ARRAY_LEN(rpriv), &pub,
		 &priv);
	CK_ATTRIBUTE rpub_nobits[] = {AV(CKA_TOKEN, no), AV(CKA_PUBLIC_EXPONENT, f4)};
	gen_pair("RSA without MODULUS_BITS", CKM_RSA_PKCS_KEY_PAIR_GEN, rpub_nobits, ARRAY_LEN(rpub_nobits), rpriv,
		 ARRAY_LEN(rpriv), &pub, &priv);

	static const CK_BYTE oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
	static const CK_BYTE oid_p521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
	static const CK_BYTE oid_bogus[] = {0x06, 0x03, 0x2a, 0x03, 0x04};
	static const struct {
		const char *n;
		const CK_BYTE *oid;
		size_t len;
		CK_MECHANISM_TYPE gen, sig;
	} curves[] = {
		{"EC P-256", oid_p256, sizeof oid_p256, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA},
		{"EC P-384", oid_p384, sizeof oid_p384, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA},
		{"EC P-521", oid_p521, sizeof oid_p521, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA},
		{"EC unknown curve", oid_bogus, sizeof oid_bogus, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA},
		{"Ed25519", oid_ed25519, sizeof oid_ed25519, CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA},
		{"Ed448", oid_ed448, sizeof oid_ed448, CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA},
		{"Ed25519 with the EC mechanism", oid_ed25519, sizeof oid_ed25519, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA},
	};
	for (size_t i = 0; i < ARRAY_LEN(curves); i++) {
		CK_ATTRIBUTE ep[] = {AV(CKA_TOKEN, no), AP(CKA_EC_PARAMS, curves[i].oid, curves[i].len), AV(CKA_VERIFY, yes)};
		CK_ATTRIBUTE es[] = {AV(CKA_TOKEN, no), AV(CKA_SIGN, yes), AV(CKA_DERIVE, yes), AV(CKA_SENSITIVE, no)};
		if (gen_pair(curves[i].n, curves[i].gen, ep, ARRAY_LEN(ep), es, ARRAY_LEN(es), &pub, &priv) != CKR_OK)
			continue;
		dump_obj(fmt("attrs of a generated %s public key", curves[i].n), pub, 0);
		dump_obj(fmt("attrs of a generated %s private key", curves[i].n), priv, 0);
		use_pair(fmt("generated %s", curves[i].n), curves[i].sig, NULL, 0, priv, pub);
	}

	/* DSA: parameters, then a pair over the fixed parameters. */
	CK_ATTRIBUTE dp[] = {AV(CKA_TOKEN, no), AV(CKA_PRIME_BITS, bits1024)};
	CK_OBJECT_HANDLE dom = gen_key("DSA parameters 1024", CKM_DSA_PARAMETER_GEN, NULL, 0, dp, ARRAY_LEN(dp));
	if (dom)
		dump_obj("attrs of generated DSA parameters", dom, 0);
	CK_ATTRIBUTE dsapub[] = {AV(CKA_TOKEN, no), AV(CKA_PRIME, dsa_p), AV(CKA_SUBPRIME, dsa_q), AV(CKA_BASE, dsa_g),
				 AV(CKA_VERIFY, yes)};
	CK_ATTRIBUTE dsapriv[] = {AV(CKA_TOKEN, no), AV(CKA_SIGN, yes), AV(CKA_SENSITIVE, no)};
	if (gen_pair("DSA", CKM_DSA_KEY_PAIR_GEN, dsapub, ARRAY_LEN(dsapub), dsapriv, ARRAY_LEN(dsapriv), &pub,
		     &priv) == CKR_OK) {
		dump_obj("attrs of a generated DSA public key", pub, 0);
		use_pair("generated DSA DSA_SHA256", CKM_DSA_SHA256, NULL, 0, priv, pub);
	}
	CK_ATTRIBUTE dsanop[] = {AV(CKA_TOKEN, no), AV(CKA_VERIFY, yes)};
	gen_pair("DSA without parameters", CKM_DSA_KEY_PAIR_GEN, dsanop, ARRAY_LEN(dsanop), dsapriv, ARRAY_LEN(dsapriv),
		 &pub, &priv);

	/* DH: parameters, then two pairs over the fixed group; each side
	 * derives from the other's public value. */
	CK_ULONG bits512 = 512;
	CK_ATTRIBUTE dhp[] = {AV(CKA_TOKEN, no), AV(CKA_PRIME_BITS, bits512)};
	dom = gen_key("DH parameters 512", CKM_DH_PKCS_PARAMETER_GEN, NULL, 0, dhp, ARRAY_LEN(dhp));
	if (dom)
		dump_obj("attrs of generated DH parameters", dom, 0);
	CK_ATTRIBUTE dhpub[] = {AV(CKA_TOKEN, no), AV(CKA_PRIME, dh_p), AV(CKA_BASE, dh_g)};
	CK_ATTRIBUTE dhpriv[] = {AV(CKA_TOKEN, no), AV(CKA_DERIVE, yes), AV(CKA_SENSITIVE, no)};
	CK_OBJECT_HANDLE pa, sa, pb, sb;
	if (gen_pair("DH A", CKM_DH_PKCS_KEY_PAIR_GEN, dhpub, ARRAY_LEN(dhpub), dhpriv, ARRAY_LEN(dhpriv), &pa, &sa) ==
		    CKR_OK &&
	    gen_pair("DH B", CKM_DH_PKCS_KEY_PAIR_GEN, dhpub, ARRAY_LEN(dhpub), dhpriv, ARRAY_LEN(dhpriv), &pb, &sb) ==
		    CKR_OK) {
		dump_obj("attrs of a generated DH public key", pa, 0);
		dump_obj("attrs of a generated DH private key", sa, 0);
		CK_BYTE ya[512], yb[512];
		long la = get_attr(pa, CKA_VALUE, ya, sizeof ya), lb = get_attr(pb, CKA_VALUE, yb, sizeof yb);
		CK_ATTRIBUTE gall[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_gen), AV(CKA_TOKEN, no),
				       AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes), AV(CKA_VALUE_LEN, u128)};
		if (la > 0 && lb > 0) {
			CK_OBJECT_HANDLE x = derive("generated DH A with B", CKM_DH_PKCS_DERIVE, yb, (CK_ULONG)lb, sa, gall,
						    ARRAY_LEN(gall), 0);
			CK_OBJECT_HANDLE y = derive("generated DH B with A", CKM_DH_PKCS_DERIVE, ya, (CK_ULONG)la, sb, gall,
						    ARRAY_LEN(gall), 0);
			if (x && y)
				rec("generated DH both directions", "%s",
				    strcmp(material(x), material(y)) == 0 ? "same secret" : "DIFFERENT");
		}
	}
	/* ECDH between two generated P-256 pairs. */
	{
		CK_ATTRIBUTE ep[] = {AV(CKA_TOKEN, no), AV(CKA_EC_PARAMS, oid_p256)};
		CK_ATTRIBUTE es[] = {AV(CKA_TOKEN, no), AV(CKA_DERIVE, yes), AV(CKA_SENSITIVE, no)};
		if (gen_pair("ECDH A", CKM_EC_KEY_PAIR_GEN, ep, ARRAY_LEN(ep), es, ARRAY_LEN(es), &pa, &sa) == CKR_OK &&
		    gen_pair("ECDH B", CKM_EC_KEY_PAIR_GEN, ep, ARRAY_LEN(ep), es, ARRAY_LEN(es), &pb, &sb) == CKR_OK) {
			CK_BYTE qa[128], qb[128];
			long la = get_attr(pa, CKA_EC_POINT, qa, sizeof qa), lb = get_attr(pb, CKA_EC_POINT, qb, sizeof qb);
			CK_ATTRIBUTE g32[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_gen), AV(CKA_TOKEN, no),
					      AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes), AV(CKA_VALUE_LEN, l32)};
			if (la > 2 && lb > 2) {
				/* CKA_EC_POINT is a DER OCTET STRING; ECDH takes the raw point. */
				CK_ECDH1_DERIVE_PARAMS ea = {CKD_NULL, 0, NULL, (CK_ULONG)lb - 2, qb + 2};
				CK_ECDH1_DERIVE_PARAMS eb = {CKD_NULL, 0, NULL, (CK_ULONG)la - 2, qa + 2};
				CK_OBJECT_HANDLE x = derive("generated ECDH A with B", CKM_ECDH1_DERIVE, &ea, sizeof ea, sa, g32,
							    ARRAY_LEN(g32), 0);
				CK_OBJECT_HANDLE y = derive("generated ECDH B with A", CKM_ECDH1_DERIVE, &eb, sizeof eb, sb, g32,
							    ARRAY_LEN(g32), 0);
				if (x && y)
					rec("generated ECDH both directions", "%s",
					    strcmp(material(x), material(y)) == 0 ? "same secret" : "DIFFERENT");
			}
		}
	}

	CK_MECHANISM rm = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
	rrv("GenerateKeyPair(NULL phPublicKey)",
	    P(C_GenerateKeyPair)(S, &rm, rpub, ARRAY_LEN(rpub), rpriv, ARRAY_LEN(rpriv), NULL, &priv));
	rrv("GenerateKeyPair(NULL phPrivateKey)",
	    P(C_GenerateKeyPair)(S, &rm, rpub, ARRAY_LEN(rpub), rpriv, ARRAY_LEN(rpriv), &pub, NULL));
	gen_pair("GenerateKeyPair with a secret-key mechanism", CKM_AES_KEY_GEN, rpub, ARRAY_LEN(rpub), rpriv,
		 ARRAY_LEN(rpriv), &pub, &priv);
	gen_pair("GenerateKeyPair with a signature mechanism", CKM_ECDSA, rpub, ARRAY_LEN(rpub), rpriv,
		 ARRAY_LEN(rpriv), &pub, &priv);
}

/* ------------------------------------------------------------------ */
/* Area: random numbers                                                */

static void area_random(void)
{
	set_area("random", 60);
	static const CK_BYTE seed[16] = "0123456789abcdef";
	rrv("SeedRandom", P(C_SeedRandom)(S, (CK_BYTE_PTR)seed, sizeof seed));
	rrv("SeedRandom(NULL)", P(C_SeedRandom)(S, NULL, 16));
	rrv("SeedRandom(empty)", P(C_SeedRandom)(S, (CK_BYTE_PTR)seed, 0));
	rrv("SeedRandom(R)", P(C_SeedRandom)(R, (CK_BYTE_PTR)seed, sizeof seed));
	rrv("SeedRandom(bad session)", P(C_SeedRandom)(BAD_SESSION, (CK_BYTE_PTR)seed, sizeof seed));
	static const CK_ULONG sizes[] = {1, 16, 32, 1000, 4096};
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		memset(ybuf, CANARY, sizeof ybuf);
		CK_RV rv = P(C_GenerateRandom)(S, ybuf, sizes[i]);
		/* Random bytes: only that the buffer was filled up to the length
		 * (some byte before it differs from the canary, none after). */
		int filled = 0;
		for (CK_ULONG j = 0; j < sizes[i]; j++)
			filled |= ybuf[j] != CANARY;
		rec(fmt("GenerateRandom %lu", sizes[i]), "rv=%s filled=%s tail=%s", rvn(rv),
		    sizes[i] < 8 ? "(too short to tell)" : filled ? "yes" : "no",
		    untouched(ybuf, sizes[i], sizeof ybuf) ? "untouched" : "WRITTEN");
	}
	CK_BYTE a[32], b[32];
	P(C_GenerateRandom)(S, a, sizeof a);
	P(C_GenerateRandom)(S, b, sizeof b);
	rec("two GenerateRandom calls differ", "%s", memcmp(a, b, sizeof a) ? "yes" : "no");
	memset(ybuf, CANARY, sizeof ybuf);
	rec("GenerateRandom 0", "rv=%s buffer=%s", rvn(P(C_GenerateRandom)(S, ybuf, 0)),
	    untouched(ybuf, 0, sizeof ybuf) ? "untouched" : "WRITTEN");
	rrv("GenerateRandom(NULL, 16)", P(C_GenerateRandom)(S, NULL, 16));
	rrv("GenerateRandom(R)", P(C_GenerateRandom)(R, a, sizeof a));
	rrv("GenerateRandom(bad session)", P(C_GenerateRandom)(BAD_SESSION, a, sizeof a));
	CK_BYTE *big = malloc(1 << 20);
	rrv("GenerateRandom 1 MiB", P(C_GenerateRandom)(S, big, 1 << 20));
	free(big);
}

/* ------------------------------------------------------------------ */
/* Area: operation state                                               */

static void area_state(void)
{
	set_area("state", 60);
	clear_ops("operations active at the start");
	CK_BYTE st[OUTCAP];
	CK_ULONG sl = 0;
	rrv("GetOperationState with no operation", P(C_GetOperationState)(S, NULL, &sl));
	dinit("DigestInit", CKM_SHA256);
	rrv("DigestUpdate", P(C_DigestUpdate)(S, msg, 50));
	CK_RV rv = yout("GetOperationState during a digest", P(C_GetOperationState), Y_PROBE, st, &sl);
	rrv("GetOperationState(NULL pulOperationStateLen)", P(C_GetOperationState)(S, st, NULL));
	end_digest("DigestFinal after GetOperationState");
	dinit("DigestInit for SetOperationState", CKM_SHA256);
	CK_BYTE fake[64];
	memset(fake, 0x11, sizeof fake);
	rrv("SetOperationState", P(C_SetOperationState)(S, rv == CKR_OK ? st : fake, rv == CKR_OK ? sl : sizeof fake, 0, 0));
	rrv("SetOperationState with keys", P(C_SetOperationState)(S, fake, sizeof fake, k_aes128, k_gen));
	rrv("SetOperationState(NULL)", P(C_SetOperationState)(S, NULL, 0, 0, 0));
	rrv("SetOperationState(bad session)", P(C_SetOperationState)(BAD_SESSION, fake, sizeof fake, 0, 0));
	end_digest("DigestFinal after SetOperationState");
	minit("SignInit", P(C_SignInit), CKM_SHA256_HMAC, NULL, 0, k_gen);
	yout("GetOperationState during a signature", P(C_GetOperationState), Y_PROBE, NULL, NULL);
	end_sign("SignFinal after GetOperationState");
}

/* ------------------------------------------------------------------ */
/* Area: dual-function calls                                           */

static void area_dual(void)
{
	set_area("dual", 60);
	clear_ops("operations active at the start");
	const struct {
		const char *n;
		yfn f;
	} fs[] = {
		{"DigestEncryptUpdate", P(C_DigestEncryptUpdate)},
		{"DecryptDigestUpdate", P(C_DecryptDigestUpdate)},
		{"SignEncryptUpdate", P(C_SignEncryptUpdate)},
		{"DecryptVerifyUpdate", P(C_DecryptVerifyUpdate)},
	};
	for (size_t i = 0; i < ARRAY_LEN(fs); i++) {
		const char *n = fs[i].n;
		yio(fmt("%s with no operation", n), fs[i].f, msg, 32, Y_DET, NULL, NULL);
		/* Both operations active. */
		if (strstr(n, "Digest"))
			dinit(fmt("%s DigestInit", n), CKM_SHA256);
		if (strstr(n, "Sign"))
			minit(fmt("%s SignInit", n), P(C_SignInit), CKM_SHA256_HMAC, NULL, 0, k_gen);
		if (strstr(n, "Verify"))
			minit(fmt("%s VerifyInit", n), P(C_VerifyInit), CKM_SHA256_HMAC, NULL, 0, k_gen);
		if (strstr(n, "Encrypt"))
			minit(fmt("%s EncryptInit", n), P(C_EncryptInit), CKM_AES_CBC, iv16, 16, k_aes128);
		if (strstr(n, "Decrypt"))
			minit(fmt("%s DecryptInit", n), P(C_DecryptInit), CKM_AES_CBC, iv16, 16, k_aes128);
		yio(fmt("%s", n), fs[i].f, msg, 32, Y_PROBE | Y_DET, NULL, NULL);
		rrv(fmt("%s NULL length", n), fs[i].f(S, msg, 32, ybuf, NULL));
		struct ycall bad = {.f = fs[i].f, .s = BAD_SESSION, .in = msg, .inlen = 32};
		yrun(fmt("%s bad session", n), &bad, Y_DET, NULL, NULL);
		if (strstr(n, "Digest"))
			end_digest(fmt("%s end digest", n));
		if (strstr(n, "Sign"))
			end_sign(fmt("%s end sign", n));
		if (strstr(n, "Verify"))
			end_verify(fmt("%s end verify", n));
		if (strstr(n, "Encrypt"))
			end_encrypt(fmt("%s end encrypt", n));
		if (strstr(n, "Decrypt"))
			end_decrypt(fmt("%s end decrypt", n));
	}
}

/* ------------------------------------------------------------------ */
/* Area: parallel functions (legacy)                                   */

static void area_parallel(void)
{
	set_area("parallel", 60);
	clear_ops("operations active at the start");
	rrv("GetFunctionStatus", P(C_GetFunctionStatus)(S));
	rrv("CancelFunction", P(C_CancelFunction)(S));
	rrv("GetFunctionStatus(R)", P(C_GetFunctionStatus)(R));
	rrv("CancelFunction(R)", P(C_CancelFunction)(R));
	rrv("GetFunctionStatus(bad session)", P(C_GetFunctionStatus)(BAD_SESSION));
	rrv("CancelFunction(bad session)", P(C_CancelFunction)(BAD_SESSION));
	dinit("DigestInit", CKM_SHA256);
	rrv("GetFunctionStatus during a digest", P(C_GetFunctionStatus)(S));
	rrv("CancelFunction during a digest", P(C_CancelFunction)(S));
	end_digest("DigestFinal after CancelFunction");
}

/* ------------------------------------------------------------------ */
/* Area: C_Finalize and a second life                                  */

static const char *labels_of_all(CK_SESSION_HANDLE s)
{
	CK_OBJECT_HANDLE h[64];
	CK_ULONG n = 0;
	if (P(C_FindObjectsInit)(s, NULL, 0) != CKR_OK)
		return "(find failed)";
	if (P(C_FindObjects)(s, h, 64, &n) != CKR_OK)
		n = 0;
	P(C_FindObjectsFinal)(s);
	char *labels[64];
	for (CK_ULONG i = 0; i < n; i++) {
		CK_BYTE b[128];
		CK_ATTRIBUTE a = {CKA_LABEL, b, sizeof b};
		CK_RV rv = P(C_GetAttributeValue)(s, h[i], &a, 1);
		labels[i] = strdup(rv == CKR_OK ? txt(b, a.ulValueLen) : "?");
	}
	for (CK_ULONG i = 0; i < n; i++)
		for (CK_ULONG j = i + 1; j < n; j++)
			if (strcmp(labels[j], labels[i]) < 0) {
				char *t = labels[i];
				labels[i] = labels[j];
				labels[j] = t;
			}
	char *out = pool_take(n * 140 + 4);
	strcpy(out, "[");
	for (CK_ULONG i = 0; i < n; i++) {
		if (i)
			strcat(out, ",");
		strcat(out, labels[i]);
		free(labels[i]);
	}
	strcat(out, "]");
	return out;
}

static void area_finalize(void)
{
	set_area("finalize", 120);
	CK_SESSION_HANDLE old = S;
	rrv("C_Finalize(non-NULL)", P(C_Finalize)((void *)"x"));
	rec_session_info("session after refused C_Finalize", S);
	rrv("C_Finalize with sessions open", P(C_Finalize)(NULL));
	sweep("after C_Finalize", S, BAD_SLOT, k_aes128);
	rrv("C_Initialize again", P(C_Initialize)(NULL));
	refresh_slots();
	CK_SLOT_ID ids[16];
	CK_ULONG n = ARRAY_LEN(ids);
	CK_RV rv = P(C_GetSlotList)(CK_FALSE, ids, &n);
	rec("slots after re-initialization", "rv=%s count=%s slots=%s", rvn(rv), lens(n),
	    rv == CKR_OK ? slot_list_names(ids, n) : "-");
	for (size_t i = 0; i < n_slots; i++)
		rec_token_info(fmt("token %s after re-initialization", slots[i].name), slots[i].id);
	rec_session_info("old session after re-initialization", old);
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	main_slot = slot_by_name("tok:\"" MAIN_LABEL "\"");
	rv = P(C_OpenSession)(main_slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	rec("open a session after re-initialization", "rv=%s", rvn(rv));
	rec("public token objects", "%s", labels_of_all(s));
	rrv("login after re-initialization", P(C_Login)(s, CKU_USER, PIN(USER_PIN)));
	rec("all token objects", "%s", labels_of_all(s));
	CK_SLOT_ID second = slot_by_name("tok:\"second-again\"");
	CK_SESSION_HANDLE s2 = CK_INVALID_HANDLE;
	rv = P(C_OpenSession)(second, CKF_SERIAL_SESSION, NULL, NULL, &s2);
	rec("open a session on the second token", "rv=%s", rvn(rv));
	rrv("login to the second token with its old user PIN", P(C_Login)(s2, CKU_USER, PIN("2222")));
	rrv("login to the second token as SO", P(C_Login)(s2, CKU_SO, PIN("11223344")));
	rrv("C_Finalize", P(C_Finalize)(NULL));
	rrv("C_Finalize again", P(C_Finalize)(NULL));
}

/* ------------------------------------------------------------------ */
/* Area: coverage of functions and mechanisms                          */

/* Why a listed mechanism is not exercised (none expected). */
static const char *not_exercised_reason(CK_MECHANISM_TYPE m)
{
	(void)m;
	return "no test in the script";
}

static void area_coverage(void)
{
	set_area("coverage", 10);
	for (size_t i = 0; i < ARRAY_LEN(func_names); i++)
		rec(func_names[i], "%s", func_calls[i] ? "called" : "NOT CALLED");
	for (CK_ULONG i = 0; i < n_listed; i++) {
		size_t j;
		for (j = 0; j < n_uses; j++)
			if (uses[j].m == listed[i])
				break;
		if (j < n_uses && uses[j].ok)
			rec(fmt("listed %s", mechn(listed[i])), "exercised");
		else if (j < n_uses)
			rec(fmt("listed %s", mechn(listed[i])), "attempted, every use refused (last %s)",
			    rvn(uses[j].last_refusal));
		else
			rec(fmt("listed %s", mechn(listed[i])), "not exercised: %s", not_exercised_reason(listed[i]));
	}
	for (size_t j = 0; j < n_uses; j++)
		if (!is_listed(uses[j].m))
			rec(fmt("unlisted %s", mechn(uses[j].m)), "tried: ok=%u refused=%u (last %s)", uses[j].ok,
			    uses[j].refused, uses[j].refused ? rvn(uses[j].last_refusal) : "-");
}

/* ------------------------------------------------------------------ */
/* run: a supervisor process that never loads the module forks one      */
/* process for the main script and one per isolated probe, and records  */
/* how each ended: a crash of the module (or of the proxy in the        */
/* application's process) is an observation, not the end of the run.   */

static const char *module_path;

static int load_module(void)
{
	void *lib = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		rec("dlopen", "failed");
		fprintf(stderr, "diff: dlopen %s: %s\n", module_path, dlerror());
		return -1;
	}
	get_function_list = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	if (!get_function_list) {
		rec("dlsym C_GetFunctionList", "missing");
		return -1;
	}
	hit("C_GetFunctionList");
	CK_RV rv = get_function_list(&F);
	if (rv != CKR_OK) {
		rec("C_GetFunctionList", "rv=%s", rvn(rv));
		return -1;
	}
	return 0;
}

static void main_script(const void *arg)
{
	(void)arg;
	set_area("load", 30);
	if (load_module())
		_exit(2);
	rec("C_GetFunctionList", "rv=CKR_OK");
	area_preinit();
	area_initargs();
	set_area("main", 60);
	CK_C_INITIALIZE_ARGS a;
	memset(&a, 0, sizeof a);
	a.flags = CKF_OS_LOCKING_OK;
	CK_RV rv = P(C_Initialize)(&a);
	rrv("C_Initialize(CKF_OS_LOCKING_OK)", rv);
	if (rv != CKR_OK)
		_exit(2);
	area_general();
	area_mechinfo();
	area_token();
	area_session();
	area_objects();
	area_find();
	area_digest();
	area_cipher();
	area_sign();
	area_wrap();
	area_derive();
	area_keygen();
	area_random();
	area_state();
	area_dual();
	area_parallel();
	area_finalize();
	area_coverage();
}

/* Probes: calls that crashed a process during development, each alone in
 * a fresh process (initialized, logged in, with an AES and an RSA key). */
enum probe_id {
	PR_DIGEST_INIT, PR_ENCRYPT_INIT, PR_DECRYPT_INIT, PR_SIGN_INIT, PR_VERIFY_INIT, PR_SIGN_RECOVER_INIT,
	PR_VERIFY_RECOVER_INIT, PR_GENERATE_KEY, PR_GENERATE_KEY_PAIR, PR_WRAP_KEY, PR_UNWRAP_KEY, PR_DERIVE_KEY,
	PR_BAD_HANDLES_FIRST, PR_BAD_HANDLES_REINIT, PR_BIG_DIGEST, PR_BIG_DIGEST_UPDATE, PR_BIG_ENCRYPT_CAP,
	PR_BIG_ATTR_CAP, PR_BIG_RANDOM,
};
static const struct {
	enum probe_id id;
	const char *name;
} probes[] = {
	{PR_DIGEST_INIT, "C_DigestInit(NULL mechanism)"},
	{PR_ENCRYPT_INIT, "C_EncryptInit(NULL mechanism)"},
	{PR_DECRYPT_INIT, "C_DecryptInit(NULL mechanism)"},
	{PR_SIGN_INIT, "C_SignInit(NULL mechanism)"},
	{PR_VERIFY_INIT, "C_VerifyInit(NULL mechanism)"},
	{PR_SIGN_RECOVER_INIT, "C_SignRecoverInit(NULL mechanism)"},
	{PR_VERIFY_RECOVER_INIT, "C_VerifyRecoverInit(NULL mechanism)"},
	{PR_GENERATE_KEY, "C_GenerateKey(NULL mechanism)"},
	{PR_GENERATE_KEY_PAIR, "C_GenerateKeyPair(NULL mechanism)"},
	{PR_WRAP_KEY, "C_WrapKey(NULL mechanism)"},
	{PR_UNWRAP_KEY, "C_UnwrapKey(NULL mechanism)"},
	{PR_DERIVE_KEY, "C_DeriveKey(NULL mechanism)"},
	{PR_BAD_HANDLES_FIRST, "bad key handles, first C_Initialize"},
	{PR_BAD_HANDLES_REINIT, "bad key handles, after C_Finalize and C_Initialize"},
	{PR_BIG_DIGEST, "C_Digest of 300 MiB"},
	{PR_BIG_DIGEST_UPDATE, "C_DigestUpdate of 300 MiB"},
	{PR_BIG_ENCRYPT_CAP, "C_Encrypt of 16 bytes into a 300 MiB buffer"},
	{PR_BIG_ATTR_CAP, "C_GetAttributeValue of 16 bytes into a 300 MiB buffer"},
	{PR_BIG_RANDOM, "C_GenerateRandom of 300 MiB"},
};

/* Inputs, outputs and output capacities past 256 MiB (the proxy's frame
 * cap): the vendor handles them; an application may have such buffers.
 * Each in its own process; then whether the session and its operation
 * state are as they would be. */
static void big(const char *n, enum probe_id id, CK_OBJECT_HANDLE aes)
{
	const size_t BIG = (size_t)300 << 20;
	CK_BYTE *b = malloc(BIG);
	if (!b) {
		rec(n, "no memory for the test");
		return;
	}
	memset(b, 0x5c, BIG);
	CK_MECHANISM sha = {CKM_SHA256, NULL, 0}, ecb = {CKM_AES_ECB, NULL, 0};
	CK_BYTE d[32];
	CK_ULONG dl = sizeof d, ol = BIG;
	CK_ATTRIBUTE a = {CKA_VALUE, b, BIG};
	CK_RV rv;
	int filled = 0;
	switch (id) {
	case PR_BIG_DIGEST:
		rrv(fmt("%s: C_DigestInit", n), P(C_DigestInit)(S, &sha));
		rv = P(C_Digest)(S, b, BIG, d, &dl);
		rec(n, "rv=%s out=%s", rvn(rv), rv == CKR_OK ? hex(d, dl) : "-");
		break;
	case PR_BIG_DIGEST_UPDATE:
		rrv(fmt("%s: C_DigestInit", n), P(C_DigestInit)(S, &sha));
		rrv(n, P(C_DigestUpdate)(S, b, BIG));
		rv = P(C_DigestFinal)(S, d, &dl);
		rec(fmt("%s: C_DigestFinal", n), "rv=%s out=%s", rvn(rv), rv == CKR_OK ? hex(d, dl) : "-");
		break;
	case PR_BIG_ENCRYPT_CAP:
		memset(b, CANARY, 64);
		rrv(fmt("%s: C_EncryptInit", n), P(C_EncryptInit)(S, &ecb, aes));
		rv = P(C_Encrypt)(S, msg, 16, b, &ol);
		rec(n, "rv=%s len=%s out=%s", rvn(rv), lens(ol), rv == CKR_OK && ol <= 64 ? hex(b, ol) : "-");
		break;
	case PR_BIG_ATTR_CAP:
		memset(b, CANARY, 64);
		rv = P(C_GetAttributeValue)(S, aes, &a, 1);
		rec(n, "rv=%s len=%s out=%s", rvn(rv), lens(a.ulValueLen),
		    rv == CKR_OK && a.ulValueLen <= 64 ? hex(b, a.ulValueLen) : "-");
		break;
	case PR_BIG_RANDOM:
		memset(b + BIG - 64, CANARY, 64);
		rv = P(C_GenerateRandom)(S, b, BIG);
		for (size_t i = BIG - 64; i < BIG; i++)
			filled |= b[i] != CANARY;
		rec(n, "rv=%s end filled=%s", rvn(rv), filled ? "yes" : "no");
		break;
	default:
		break;
	}
	/* An operation the vendor still holds answers the next Init. */
	rv = P(C_DigestInit)(S, &sha);
	rrv(fmt("%s, then C_DigestInit", n), rv);
	dl = sizeof d;
	rv = P(C_Digest)(S, msg, 16, d, &dl);
	rec(fmt("%s, then C_Digest", n), "rv=%s out=%s", rvn(rv), rv == CKR_OK ? hex(d, dl) : "-");
	free(b);
}

/* Handles that name nothing, where the vendor's answer depends on the
 * function (and on what else is wrong). */
static void bad_handles(const char *n, CK_OBJECT_HANDLE aes)
{
	CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0}, ecb = {CKM_AES_ECB, NULL, 0}, hm = {CKM_SHA256_HMAC, NULL, 0},
		     sha = {CKM_SHA256, NULL, 0};
	CK_KEY_DERIVATION_STRING_DATA sd = {msg, 32};
	CK_MECHANISM der = {CKM_AES_ECB_ENCRYPT_DATA, &sd, sizeof sd};
	CK_BYTE w[64];
	CK_ULONG wl = sizeof w;
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ATTRIBUTE t[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no)};
	CK_SESSION_INFO si;
	rec(fmt("%s: session handle fits in 32 bits", n), "%s", S >> 32 ? "no" : "yes");
	rec(fmt("%s: object handle fits in 32 bits", n), "%s", aes >> 32 ? "no" : "yes");
	rrv(fmt("%s: C_WrapKey, bad wrapping key", n), P(C_WrapKey)(S, &kw, BAD_OBJECT, aes, w, &wl));
	wl = sizeof w;
	rrv(fmt("%s: C_WrapKey, bad key", n), P(C_WrapKey)(S, &kw, aes, BAD_OBJECT, w, &wl));
	wl = sizeof w;
	rrv(fmt("%s: C_WrapKey", n), P(C_WrapKey)(S, &kw, aes, aes, w, &wl));
	rrv(fmt("%s: C_UnwrapKey, bad unwrapping key", n), P(C_UnwrapKey)(S, &kw, BAD_OBJECT, w, wl, t, 3, &h));
	rrv(fmt("%s: C_EncryptInit, bad key", n), P(C_EncryptInit)(S, &ecb, BAD_OBJECT));
	rrv(fmt("%s: C_DeriveKey, bad base key", n), P(C_DeriveKey)(S, &der, BAD_OBJECT, t, 3, &h));
	rrv(fmt("%s: C_DigestInit", n), P(C_DigestInit)(S, &sha));
	rrv(fmt("%s: C_DigestKey, bad key", n), P(C_DigestKey)(S, BAD_OBJECT));
	rrv(fmt("%s: C_SignInit", n), P(C_SignInit)(S, &hm, aes));
	rrv(fmt("%s: C_SignInit again, bad key", n), P(C_SignInit)(S, &hm, BAD_OBJECT));
	rrv(fmt("%s: C_GetAttributeValue, bad object", n), P(C_GetAttributeValue)(S, BAD_OBJECT, t, 1));
	rrv(fmt("%s: C_DestroyObject, bad object", n), P(C_DestroyObject)(S, BAD_OBJECT));
	rrv(fmt("%s: C_GetSessionInfo, bad session", n), P(C_GetSessionInfo)(BAD_SESSION, &si));
	rrv(fmt("%s: C_CloseSession, bad session", n), P(C_CloseSession)(BAD_SESSION));
}

static CK_OBJECT_HANDLE quiet_create(CK_ATTRIBUTE *t, CK_ULONG n)
{
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	if (P(C_CreateObject)(S, t, n, &h) != CKR_OK)
		rec("probe setup", "C_CreateObject failed");
	return h;
}

static void probe(const void *arg)
{
	size_t i = *(const size_t *)arg;
	const char *n = probes[i].name;
	set_area("probes", 60);
	if (load_module())
		_exit(2);
	CK_RV rv = P(C_Initialize)(NULL);
	if (rv == CKR_OK && probes[i].id == PR_BAD_HANDLES_REINIT) {
		rrv(fmt("%s setup: C_Finalize", n), P(C_Finalize)(NULL));
		rrv(fmt("%s setup: C_Initialize", n), rv = P(C_Initialize)(NULL));
	}
	refresh_slots();
	main_slot = slot_by_name("tok:\"" MAIN_LABEL "\"");
	if (rv == CKR_OK)
		rv = P(C_OpenSession)(main_slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &S);
	if (rv == CKR_OK)
		rv = P(C_Login)(S, CKU_USER, PIN(USER_PIN));
	if (rv != CKR_OK) {
		rec(fmt("%s setup", n), "rv=%s", rvn(rv));
		_exit(2);
	}
	CK_ATTRIBUTE ta[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no),
			     AV(CKA_VALUE, aes128_v), AV(CKA_ENCRYPT, yes), AV(CKA_DECRYPT, yes), AV(CKA_SIGN, yes),
			     AV(CKA_VERIFY, yes), AV(CKA_WRAP, yes), AV(CKA_UNWRAP, yes), AV(CKA_DERIVE, yes),
			     AV(CKA_EXTRACTABLE, yes)};
	CK_OBJECT_HANDLE aes = quiet_create(ta, ARRAY_LEN(ta));
	CK_ATTRIBUTE tp[] = {AV(CKA_CLASS, cls_pub), AV(CKA_KEY_TYPE, kt_rsa), AV(CKA_TOKEN, no),
			     AV(CKA_MODULUS, rsa_n), AV(CKA_PUBLIC_EXPONENT, rsa_e), AV(CKA_VERIFY_RECOVER, yes)};
	CK_OBJECT_HANDLE pub = quiet_create(tp, ARRAY_LEN(tp));
	CK_BYTE w[64] = {0};
	CK_ULONG wl = sizeof w;
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE, h2 = CK_INVALID_HANDLE;
	CK_ULONG l16 = 16;
	CK_ATTRIBUTE t[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no),
			    AV(CKA_VALUE_LEN, l16)};
	CK_ATTRIBUTE tpub[] = {AV(CKA_TOKEN, no)};
	switch (probes[i].id) {
	case PR_DIGEST_INIT: rv = P(C_DigestInit)(S, NULL); break;
	case PR_ENCRYPT_INIT: rv = P(C_EncryptInit)(S, NULL, aes); break;
	case PR_DECRYPT_INIT: rv = P(C_DecryptInit)(S, NULL, aes); break;
	case PR_SIGN_INIT: rv = P(C_SignInit)(S, NULL, aes); break;
	case PR_VERIFY_INIT: rv = P(C_VerifyInit)(S, NULL, aes); break;
	case PR_SIGN_RECOVER_INIT: rv = P(C_SignRecoverInit)(S, NULL, aes); break;
	case PR_VERIFY_RECOVER_INIT: rv = P(C_VerifyRecoverInit)(S, NULL, pub); break;
	case PR_GENERATE_KEY: rv = P(C_GenerateKey)(S, NULL, t, ARRAY_LEN(t), &h); break;
	case PR_GENERATE_KEY_PAIR: rv = P(C_GenerateKeyPair)(S, NULL, tpub, 1, tpub, 1, &h, &h2); break;
	case PR_WRAP_KEY: rv = P(C_WrapKey)(S, NULL, aes, aes, w, &wl); break;
	case PR_UNWRAP_KEY: rv = P(C_UnwrapKey)(S, NULL, aes, w, 24, t, ARRAY_LEN(t), &h); break;
	case PR_DERIVE_KEY: rv = P(C_DeriveKey)(S, NULL, aes, t, ARRAY_LEN(t), &h); break;
	case PR_BAD_HANDLES_FIRST:
	case PR_BAD_HANDLES_REINIT:
		bad_handles(n, aes);
		rv = CKR_OK;
		break;
	case PR_BIG_DIGEST:
	case PR_BIG_DIGEST_UPDATE:
	case PR_BIG_ENCRYPT_CAP:
	case PR_BIG_ATTR_CAP:
	case PR_BIG_RANDOM:
		big(n, probes[i].id, aes);
		rv = CKR_OK;
		break;
	}
	rrv(n, rv);
	CK_SESSION_INFO si;
	rrv(fmt("%s, then C_GetSessionInfo", n), P(C_GetSessionInfo)(S, &si));
	rrv(fmt("%s, then C_Finalize", n), P(C_Finalize)(NULL));
}

static void supervise(const char *what, void (*fn)(const void *), const void *arg)
{
	fflush(logf_);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "diff: fork: %s\n", strerror(errno));
		exit(2);
	}
	if (pid == 0) {
		fn(arg);
		alarm(0);
		fflush(logf_);
		_exit(0);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	cur_area = "supervisor";
	if (WIFEXITED(st))
		rec(what, "process exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		rec(what, "process killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		rec(what, "process ended with status 0x%x", st);
}

/* preload is the supervisor's own use of the module before it forks the
 * script's processes (run-forked): it loads it, initializes it, makes a
 * call and finalizes it, so that every process of the run is a child
 * forked after the module was loaded and used in its parent. */
static int preload(void)
{
	CK_C_GetFunctionList get;
	CK_FUNCTION_LIST_PTR f;
	CK_INFO info;
	CK_RV rv;
	void *lib = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);

	if (!lib || !(get = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList")) || get(&f) != CKR_OK) {
		fprintf(stderr, "diff: run-forked: cannot load %s\n", module_path);
		return -1;
	}
	if ((rv = f->C_Initialize(NULL)) != CKR_OK || (rv = f->C_GetInfo(&info)) != CKR_OK ||
	    (rv = f->C_Finalize(NULL)) != CKR_OK) {
		fprintf(stderr, "diff: run-forked: the parent's own use of %s failed: 0x%lx\n", module_path,
			(unsigned long)rv);
		return -1;
	}
	return 0;
}

/* The inputs every script works on. */
static void fill_inputs(void)
{
	for (size_t i = 0; i < sizeof msg; i++)
		msg[i] = (CK_BYTE)(i * 7 + 3);
	for (size_t i = 0; i < sizeof iv16; i++)
		iv16[i] = (CK_BYTE)(0xf0 + i);
	for (size_t i = 0; i < sizeof iv8; i++)
		iv8[i] = (CK_BYTE)(0x10 + i);
	for (size_t i = 0; i < sizeof iv12; i++)
		iv12[i] = (CK_BYTE)(0xca + i);
	for (size_t i = 0; i < sizeof aad; i++)
		aad[i] = (CK_BYTE)(0x40 + i);
	for (size_t i = 0; i < sizeof generic_v; i++)
		generic_v[i] = (CK_BYTE)(0x30 + i);
}

static int run_side(const char *module, const char *log, int forked)
{
	module_path = module;
	if (forked && preload() != 0)
		return 2;
	logf_ = fopen(log, "a");
	if (!logf_) {
		fprintf(stderr, "diff: %s: %s\n", log, strerror(errno));
		return 2;
	}
	signal(SIGALRM, on_alarm);
	fill_inputs();

	supervise("main script", main_script, NULL);
	for (size_t i = 0; i < ARRAY_LEN(probes); i++)
		supervise(fmt("probe %s", probes[i].name), probe, &i);
	fclose(logf_);
	return 0;
}

/* ================================================================== */
/* run3: PKCS#11 3.0 and 3.2                                           */
/*                                                                     */
/* A second script, for a module that offers a "PKCS 11" interface of  */
/* version 3.0 or later: NSS softokn (3.0) and the test module         */
/* tests/mod32 (3.2). The interface list and C_GetInterface first, then */
/* everything through the function list of the highest "PKCS 11"       */
/* interface (its 2.40 part too: F points into it), the 3.0 functions   */
/* and, on a 3.2 list, the 3.2 functions.                               */

#ifndef CKK_CHACHA20
#define CKK_CHACHA20 0x00000033UL
#endif

typedef CK_RV (*msgcrypt_fn)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG,
			     CK_BYTE_PTR, CK_ULONG_PTR);
typedef CK_RV (*msgbegin_fn)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG);
typedef CK_RV (*msgnext_fn)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR,
			    CK_FLAGS);
typedef CK_RV (*sess_fn)(CK_SESSION_HANDLE);
typedef CK_RV (*minit_fn)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
typedef CK_RV (*get_interface_list_fn)(CK_INTERFACE_PTR, CK_ULONG_PTR);
typedef CK_RV (*get_interface_fn)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS);

/* The function lists of 3.0 and 3.2 (OASIS order): the version and the
 * 2.40 functions, laid out as CK_FUNCTION_LIST, then the 3.0 functions,
 * then the 3.2 ones. */
#define FL30_MEMBERS \
	CK_FUNCTION_LIST v2; \
	get_interface_list_fn C_GetInterfaceList; \
	get_interface_fn C_GetInterface; \
	CK_RV (*C_LoginUser)(CK_SESSION_HANDLE, CK_USER_TYPE, CK_UTF8CHAR_PTR, CK_ULONG, CK_UTF8CHAR_PTR, CK_ULONG); \
	CK_RV (*C_SessionCancel)(CK_SESSION_HANDLE, CK_FLAGS); \
	minit_fn C_MessageEncryptInit; \
	msgcrypt_fn C_EncryptMessage; \
	msgbegin_fn C_EncryptMessageBegin; \
	msgnext_fn C_EncryptMessageNext; \
	sess_fn C_MessageEncryptFinal; \
	minit_fn C_MessageDecryptInit; \
	msgcrypt_fn C_DecryptMessage; \
	msgbegin_fn C_DecryptMessageBegin; \
	msgnext_fn C_DecryptMessageNext; \
	sess_fn C_MessageDecryptFinal; \
	minit_fn C_MessageSignInit; \
	CK_RV (*C_SignMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR); \
	CK_RV (*C_SignMessageBegin)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG); \
	CK_RV (*C_SignMessageNext)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, \
				   CK_ULONG_PTR); \
	sess_fn C_MessageSignFinal; \
	minit_fn C_MessageVerifyInit; \
	CK_RV (*C_VerifyMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG); \
	CK_RV (*C_VerifyMessageBegin)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG); \
	CK_RV (*C_VerifyMessageNext)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, \
				     CK_ULONG); \
	sess_fn C_MessageVerifyFinal;

struct fl30 {
	FL30_MEMBERS
};

struct fl32 {
	FL30_MEMBERS
	CK_RV (*C_EncapsulateKey)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE, CK_ATTRIBUTE_PTR, CK_ULONG,
				  CK_BYTE_PTR, CK_ULONG_PTR, CK_OBJECT_HANDLE_PTR);
	CK_RV (*C_DecapsulateKey)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE, CK_ATTRIBUTE_PTR, CK_ULONG,
				  CK_BYTE_PTR, CK_ULONG, CK_OBJECT_HANDLE_PTR);
	CK_RV (*C_VerifySignatureInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE, CK_BYTE_PTR, CK_ULONG);
	CK_RV (*C_VerifySignature)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG);
	CK_RV (*C_VerifySignatureUpdate)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG);
	sess_fn C_VerifySignatureFinal;
	CK_RV (*C_GetSessionValidationFlags)(CK_SESSION_HANDLE, CK_SESSION_VALIDATION_FLAGS_TYPE, CK_FLAGS *);
	CK_RV (*C_AsyncComplete)(CK_SESSION_HANDLE, CK_UTF8CHAR_PTR, CK_ASYNC_DATA_PTR);
	CK_RV (*C_AsyncGetID)(CK_SESSION_HANDLE, CK_UTF8CHAR_PTR, CK_ULONG_PTR);
	CK_RV (*C_AsyncJoin)(CK_SESSION_HANDLE, CK_UTF8CHAR_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG);
	CK_RV (*C_WrapKeyAuthenticated)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE,
					CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
	CK_RV (*C_UnwrapKeyAuthenticated)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE, CK_BYTE_PTR, CK_ULONG,
					  CK_ATTRIBUTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_OBJECT_HANDLE_PTR);
};

_Static_assert(offsetof(struct fl30, C_GetInterfaceList) == sizeof(CK_FUNCTION_LIST), "3.0 list layout");
_Static_assert(sizeof(struct fl30) == sizeof(CK_FUNCTION_LIST) + 24 * sizeof(void *), "3.0 list size");
_Static_assert(sizeof(struct fl32) == sizeof(struct fl30) + 12 * sizeof(void *), "3.2 list size");
_Static_assert(offsetof(struct fl32, C_MessageVerifyFinal) == offsetof(struct fl30, C_MessageVerifyFinal),
	       "3.2 list starts as the 3.0 list");

/* Coverage of the 3.x functions (the 2.40 ones count in func_calls). */
static const char *const func3_names[] = {
	"C_GetInterfaceList", "C_GetInterface", "C_LoginUser", "C_SessionCancel", "C_MessageEncryptInit",
	"C_EncryptMessage", "C_EncryptMessageBegin", "C_EncryptMessageNext", "C_MessageEncryptFinal",
	"C_MessageDecryptInit", "C_DecryptMessage", "C_DecryptMessageBegin", "C_DecryptMessageNext",
	"C_MessageDecryptFinal", "C_MessageSignInit", "C_SignMessage", "C_SignMessageBegin", "C_SignMessageNext",
	"C_MessageSignFinal", "C_MessageVerifyInit", "C_VerifyMessage", "C_VerifyMessageBegin",
	"C_VerifyMessageNext", "C_MessageVerifyFinal",
	/* 3.2 */
	"C_EncapsulateKey", "C_DecapsulateKey", "C_VerifySignatureInit", "C_VerifySignature",
	"C_VerifySignatureUpdate", "C_VerifySignatureFinal", "C_GetSessionValidationFlags", "C_AsyncComplete",
	"C_AsyncGetID", "C_AsyncJoin", "C_WrapKeyAuthenticated", "C_UnwrapKeyAuthenticated",
};
#define N_FUNC30 24
static unsigned long func3_calls[ARRAY_LEN(func3_names)];

static void hit3(const char *name) { tally(func3_names, func3_calls, ARRAY_LEN(func3_names), name); }

static struct fl32 *F3;		    /* the highest "PKCS 11" interface's list (3.2 members: only if v32) */
static int v32;			    /* F3 is a 3.2 list */
static CK_FUNCTION_LIST_PTR F240; /* C_GetFunctionList's list */
static get_interface_list_fn get_interface_list;
static get_interface_fn get_interface;
#define Q(fn) (hit3(#fn), F3->fn)

/* What a target's script needs to know. */
struct target {
	const char *name;
	const char *pin;  /* the user PIN (softokn: the database's password, set by run.sh) */
	const char *user; /* the username C_LoginUser is given */
	const char *slot; /* the slot of the script as refresh_slots names it; NULL: the first */
	int crypto240;	  /* AES-ECB, SHA-256 and HMAC through the 2.40 functions (C_SessionCancel's subjects) */
	int departs;	  /* the vendor departs from the specification where the proxy, by design, does not:
			     those observations are notes (C_GetInterface's flags, a failed C_DecryptMessage's
			     buffer, C_GetInfo and C_LoginUser after C_Finalize, the ChaCha20-Poly1305 probes) */
};
static const struct target targets[] = {
	{"softokn", "diff-nss-pw", "diffuser", "tok:\"NSS Certificate DB\"", 1, 1}, /* NSS softokn 3.87 */
	{"mod32", "1234", "alice", NULL, 0, 0},
};
static const struct target *T;

/* run3-forked: in a process forked from a parent that used the module,
 * what that parent did (FORK_IFS: C_GetInterfaceList and C_GetInterface
 * only; FORK_INIT: C_Initialize, a session and a message encryption, the
 * session kept), and FORK_INIT's session, which the child inherits the
 * handle of. */
enum { FORK_NONE, FORK_IFS, FORK_INIT };
static int fork_mode;
static CK_SESSION_HANDLE parent_s = CK_INVALID_HANDLE;

/* A C_Initialize that initialized: in a child of an initialized parent,
 * CKR_CRYPTOKI_ALREADY_INITIALIZED counts as success (the state inherited
 * stands: SoftHSM2 and mod32 directly, libp11 and p11-kit take it so). */
static int init_ok(CK_RV rv)
{
	return rv == CKR_OK || (fork_mode == FORK_INIT && rv == CKR_CRYPTOKI_ALREADY_INITIALIZED);
}

static int ver_ge(CK_VERSION v, int major, int minor)
{
	return v.major > major || (v.major == major && v.minor >= minor);
}

static CK_VERSION list_version(const void *fl)
{
	CK_VERSION v = {0xff, 0xff};
	if (fl)
		memcpy(&v, fl, sizeof v);
	return v;
}

/* How many functions a list of its version holds, and how many of them
 * are not NULL. */
static size_t list_len(CK_VERSION v)
{
	return 68 + (ver_ge(v, 3, 0) ? 24 : 0) + (ver_ge(v, 3, 2) ? 12 : 0);
}

static size_t nonnull_fns(const void *fl)
{
	size_t n = list_len(list_version(fl)), k = 0;
	const char *p = (const char *)fl + offsetof(CK_FUNCTION_LIST, C_Initialize);
	for (size_t i = 0; i < n; i++) {
		void *q;
		memcpy(&q, p + i * sizeof q, sizeof q);
		k += q != NULL;
	}
	return k;
}

/* ------------------------------------------------------------------ */
/* Area: the interface list and C_GetInterface                          */

#define MAX_IFS 16
static CK_INTERFACE ifl[MAX_IFS]; /* C_GetInterfaceList's answer */
static CK_ULONG n_ifl;

static int std_if(const CK_INTERFACE *i)
{
	return i->pInterfaceName && strcmp((const char *)i->pInterfaceName, "PKCS 11") == 0;
}

static const char *if_name(const CK_INTERFACE *i)
{
	return i->pInterfaceName ? txt(i->pInterfaceName, strlen((const char *)i->pInterfaceName)) : "NULL";
}

/* Which entry of the list has this function list: "PKCS 11 #k" (k-th of
 * the "PKCS 11" ones), never an address. */
static const char *if_entry(const void *fl)
{
	unsigned k = 0;
	for (CK_ULONG i = 0; i < n_ifl; i++) {
		k += std_if(&ifl[i]);
		if (ifl[i].pFunctionList == fl)
			return std_if(&ifl[i]) ? fmt("PKCS 11 #%u", k) : "a vendor interface's";
	}
	return "none of the list's";
}

/* Only a "PKCS 11" interface's list has a known layout: a vendor's is
 * described by its version alone. */
static const char *if_desc(const CK_INTERFACE *i)
{
	if (!i->pFunctionList)
		return fmt("name=%s functionList=NULL flags=0x%lx", if_name(i), i->flags);
	CK_VERSION v = list_version(i->pFunctionList);
	if (!std_if(i))
		return fmt("name=%s version=%d.%d flags=0x%lx list=%s", if_name(i), v.major, v.minor, i->flags,
			   if_entry(i->pFunctionList));
	return fmt("name=%s version=%d.%d flags=0x%lx functions=%zu/%zu list=%s", if_name(i), v.major, v.minor,
		   i->flags, nonnull_fns(i->pFunctionList), list_len(v), if_entry(i->pFunctionList));
}

/* The entries of a list answer against ifl: same names, lists, flags. */
static int same_entries(const CK_INTERFACE *a, CK_ULONG n)
{
	if (n != n_ifl)
		return 0;
	for (CK_ULONG i = 0; i < n; i++)
		if (!a[i].pInterfaceName || !ifl[i].pInterfaceName ||
		    strcmp((const char *)a[i].pInterfaceName, (const char *)ifl[i].pInterfaceName) != 0 ||
		    a[i].pFunctionList != ifl[i].pFunctionList || a[i].flags != ifl[i].flags)
			return 0;
	return 1;
}

static CK_INTERFACE_PTR gi_case(const char *step, const char *name, const CK_VERSION *v, CK_FLAGS flags,
				int as_note)
{
	CK_INTERFACE_PTR p = NULL;
	CK_VERSION vv = {0, 0};
	if (v)
		vv = *v;
	hit3("C_GetInterface");
	CK_RV rv = get_interface((CK_UTF8CHAR_PTR)name, v ? &vv : NULL, &p, flags);
	const char *s = rv == CKR_OK && p ? fmt("rv=%s %s", rvn(rv), if_desc(p))
					  : fmt("rv=%s interface=%s", rvn(rv), p ? "set" : "NULL");
	if (as_note)
		note(step, "%s", s);
	else
		rec(step, "%s", s);
	return rv == CKR_OK ? p : NULL;
}

static void area_interfaces(void)
{
	set_area("interfaces", 30);
	CK_ULONG n = SENTINEL_LEN, total;
	hit3("C_GetInterfaceList");
	CK_RV rv = get_interface_list(NULL, &n);
	rec("C_GetInterfaceList(NULL) before C_Initialize", "rv=%s", rvn(rv));
	/* The proxy offers the "PKCS 11" interfaces only (README): the
	 * count of all is a note, the "PKCS 11" ones are compared below. */
	note("C_GetInterfaceList(NULL) count", "%s", lens(n));
	if (rv != CKR_OK || n == 0 || n > MAX_IFS) {
		rec("C_GetInterfaceList count", "%s out of range", lens(n));
		return;
	}
	total = n;
	memset(ifl, CANARY, sizeof ifl);
	n = total;
	hit3("C_GetInterfaceList");
	rv = get_interface_list(ifl, &n);
	rec("C_GetInterfaceList exact", "rv=%s count=%s tail=%s", rvn(rv), n == total ? "as queried" : lens(n),
	    untouched((CK_BYTE *)ifl, total * sizeof *ifl, sizeof ifl) ? "untouched" : "WRITTEN");
	if (rv != CKR_OK)
		return;
	n_ifl = n;
	unsigned k = 0;
	char vers[256] = "";
	for (CK_ULONG i = 0; i < n_ifl; i++) {
		if (std_if(&ifl[i])) {
			rec(fmt("PKCS 11 interface #%u", ++k), "%s", if_desc(&ifl[i]));
			CK_VERSION v = list_version(ifl[i].pFunctionList);
			snprintf(vers + strlen(vers), sizeof vers - strlen(vers), "%s%d.%d", k > 1 ? "," : "", v.major,
				 v.minor);
		} else
			note(fmt("vendor interface %s", if_name(&ifl[i])), "%s (not offered through the proxy)",
			     if_desc(&ifl[i]));
	}
	rec("PKCS 11 interfaces", "count=%u versions=[%s]", k, vers);

	CK_INTERFACE tmp[MAX_IFS + 4];
	memset(tmp, CANARY, sizeof tmp);
	n = 0;
	hit3("C_GetInterfaceList");
	rv = get_interface_list(tmp, &n);
	rec("C_GetInterfaceList capacity 0", "rv=%s count=%s buffer=%s", rvn(rv), n == total ? "the full count" : lens(n),
	    untouched((CK_BYTE *)tmp, 0, sizeof tmp) ? "untouched" : "WRITTEN");
	memset(tmp, CANARY, sizeof tmp);
	n = total - 1;
	hit3("C_GetInterfaceList");
	rv = get_interface_list(tmp, &n);
	rec("C_GetInterfaceList capacity count-1", "rv=%s count=%s buffer=%s", rvn(rv),
	    n == total ? "the full count" : lens(n), untouched((CK_BYTE *)tmp, 0, sizeof tmp) ? "untouched" : "WRITTEN");
	memset(tmp, CANARY, sizeof tmp);
	n = total + 3;
	hit3("C_GetInterfaceList");
	rv = get_interface_list(tmp, &n);
	rec("C_GetInterfaceList larger", "rv=%s count=%s entries=%s tail=%s", rvn(rv),
	    n == total ? "the full count" : lens(n), rv == CKR_OK && same_entries(tmp, n) ? "the same" : "DIFFERENT",
	    rv == CKR_OK && n <= MAX_IFS && untouched((CK_BYTE *)tmp, n * sizeof *tmp, sizeof tmp) ? "untouched"
											 : "WRITTEN");

	/* C_GetInterface */
	static const CK_VERSION ver20 = {2, 20}, ver240 = {2, 40}, ver30 = {3, 0}, ver31 = {3, 1}, ver32 = {3, 2},
				ver99 = {9, 9};
	gi_case("C_GetInterface(NULL name, NULL version)", NULL, NULL, 0, 0);
	gi_case("C_GetInterface(\"PKCS 11\", NULL version)", "PKCS 11", NULL, 0, 0);
	gi_case("C_GetInterface(\"PKCS 11\", 3.0)", "PKCS 11", &ver30, 0, 0);
	gi_case("C_GetInterface(\"PKCS 11\", 2.40)", "PKCS 11", &ver240, 0, 0);
	gi_case("C_GetInterface(\"PKCS 11\", 3.2)", "PKCS 11", &ver32, 0, 0);
	gi_case("C_GetInterface(\"PKCS 11\", 3.1) (no module has it)", "PKCS 11", &ver31, 0, 0);
	gi_case("C_GetInterface(\"PKCS 11\", 2.20)", "PKCS 11", &ver20, 0, 0);
	gi_case("C_GetInterface(\"PKCS 11\", 9.9)", "PKCS 11", &ver99, 0, 0);
	gi_case("C_GetInterface(NULL name, 2.40)", NULL, &ver240, 0, 0);
	gi_case("C_GetInterface(\"PKCS 11\", 3.0, CKF_INTERFACE_FORK_SAFE)", "PKCS 11", &ver30, CKF_INTERFACE_FORK_SAFE, 0);
	/* NSS returns an interface lacking the flags; the proxy: CKR_ARGUMENTS_BAD, it must have every flag asked. */
	gi_case("C_GetInterface(\"PKCS 11\", 3.0, flags 0x2 (no interface has it))", "PKCS 11", &ver30, 0x2,
		T->departs);
	/* As above: no interface has every flag asked for, so the proxy answers CKR_ARGUMENTS_BAD (NSS: CKR_OK). */
	gi_case("C_GetInterface(\"PKCS 11\", NULL version, flags 0x80000000)", "PKCS 11", NULL, 0x80000000UL,
		T->departs);
	gi_case("C_GetInterface(NULL name, NULL version, flags 0x3)", NULL, NULL, 0x3, 0);
	gi_case("C_GetInterface(\"Vendor p11isolate-diff\") (no module has it)", "Vendor p11isolate-diff", NULL, 0, 0);
	gi_case("C_GetInterface(\"pkcs 11\")", "pkcs 11", NULL, 0, 0);
	gi_case("C_GetInterface(\"PKCS 11 \")", "PKCS 11 ", NULL, 0, 0);
	for (CK_ULONG i = 0; i < n_ifl; i++)
		if (!std_if(&ifl[i]) && ifl[i].pInterfaceName) {
			CK_VERSION v = list_version(ifl[i].pFunctionList);
			gi_case(fmt("C_GetInterface(%s) (not offered through the proxy)", if_name(&ifl[i])),
				(const char *)ifl[i].pInterfaceName, &v, 0, 1);
		}

	/* The highest "PKCS 11" interface of version 3.0 or later: the rest
	 * of the script runs through its list. */
	CK_VERSION best = {0, 0};
	for (CK_ULONG i = 0; i < n_ifl; i++)
		if (std_if(&ifl[i]) && ifl[i].pFunctionList) {
			CK_VERSION v = list_version(ifl[i].pFunctionList);
			if (ver_ge(v, best.major, best.minor))
				best = v;
		}
	if (!ver_ge(best, 3, 0)) {
		rec("3.x interface", "none (highest \"PKCS 11\" version %d.%d)", best.major, best.minor);
		return;
	}
	CK_INTERFACE_PTR p = gi_case(fmt("C_GetInterface(\"PKCS 11\", %d.%d) for the script", best.major, best.minor),
				     "PKCS 11", &best, 0, 0);
	if (!p || !p->pFunctionList)
		return;
	F3 = p->pFunctionList;
	v32 = ver_ge(list_version(F3), 3, 2);
	F = &F3->v2;
	rec("the script's list", "version=%d.%d", F3->v2.version.major, F3->v2.version.minor);
}

/* ------------------------------------------------------------------ */
/* Area: C_Initialize through the 3.x list; 2.40 calls through it       */

/* In a child of an initialized parent (run3-forked): what the parent's
 * library state and session are in the child, before and after the
 * child's own C_Initialize. Notes: a module loaded directly may let the
 * child use the state it inherited (mod32 does: the parent's session, and
 * every call before C_Initialize), while through the proxy the child's
 * calls before its C_Initialize answer CKR_CRYPTOKI_NOT_INITIALIZED and
 * the parent's handles are not valid in the child (README: a process
 * forked after the library was loaded). The parent's session is then
 * closed in the child, so that what follows starts from the same state
 * on both sides (directly, only the child's copy of it is closed; the
 * parent checks its own after the child: initparent/parent). */
static void inherited(const char *when)
{
	CK_INFO info;
	memset(&info, 0, sizeof info);
	note(fmt("C_GetInfo %s", when), "rv=%s", rvn(P(C_GetInfo)(&info)));
	CK_SESSION_INFO si;
	memset(&si, 0, sizeof si);
	CK_RV rv = P(C_GetSessionInfo)(parent_s, &si);
	note(fmt("the parent's session %s: C_GetSessionInfo", when), "rv=%s", rvn(rv));
	if (strstr(when, "after"))
		note(fmt("the parent's session %s: C_CloseSession", when), "rv=%s", rvn(P(C_CloseSession)(parent_s)));
}

static void area_init3(void)
{
	set_area("init", 60);
	CK_C_INITIALIZE_ARGS a;
	memset(&a, 0, sizeof a);
	a.flags = CKF_OS_LOCKING_OK;
	/* softokn's configuration: given directly as pReserved; through the
	 * proxy the host passes P11ISOLATE_VENDOR_RESERVED (run.sh). */
	a.pReserved = getenv("DIFF_INIT_RESERVED");
	note("pReserved", "%s", a.pReserved ? "the vendor's configuration string" : "NULL");
	if (fork_mode == FORK_INIT)
		inherited("before the child's C_Initialize");
	CK_RV rv = P(C_Initialize)(&a);
	rrv("C_Initialize through the 3.x list", rv);
	if (!init_ok(rv))
		_exit(2);
	if (fork_mode == FORK_INIT)
		inherited("after the child's C_Initialize");

	/* The interface list after C_Initialize, and through the list. */
	CK_INTERFACE tmp[MAX_IFS];
	CK_ULONG n = MAX_IFS;
	hit3("C_GetInterfaceList");
	rv = get_interface_list(tmp, &n);
	rec("C_GetInterfaceList after C_Initialize", "rv=%s entries=%s", rvn(rv),
	    rv == CKR_OK && same_entries(tmp, n) ? "as before C_Initialize" : "DIFFERENT");
	n = MAX_IFS;
	rv = Q(C_GetInterfaceList)(tmp, &n);
	rec("C_GetInterfaceList through the 3.x list", "rv=%s entries=%s", rvn(rv),
	    rv == CKR_OK && same_entries(tmp, n) ? "as exported" : "DIFFERENT");
	CK_INTERFACE_PTR p = NULL;
	rv = Q(C_GetInterface)((CK_UTF8CHAR_PTR) "PKCS 11", NULL, &p, 0);
	rec("C_GetInterface(\"PKCS 11\") through the 3.x list", "%s",
	    rv == CKR_OK && p ? fmt("rv=%s %s", rvn(rv), if_desc(p)) : fmt("rv=%s", rvn(rv)));

	/* C_GetInfo through every "PKCS 11" interface's list and through
	 * C_GetFunctionList's: each reports its own version. */
	CK_INFO info;
	unsigned k = 0;
	for (CK_ULONG i = 0; i < n_ifl; i++) {
		if (!std_if(&ifl[i]) || !ifl[i].pFunctionList)
			continue;
		k++;
		CK_FUNCTION_LIST_PTR l = ifl[i].pFunctionList;
		memset(&info, 0, sizeof info);
		hit("C_GetInfo");
		rv = l->C_GetInfo(&info);
		rec(fmt("C_GetInfo through PKCS 11 #%u (%d.%d)", k, l->version.major, l->version.minor),
		    "rv=%s cryptoki=%d.%d", rvn(rv), info.cryptokiVersion.major, info.cryptokiVersion.minor);
	}
	memset(&info, 0, sizeof info);
	hit("C_GetInfo");
	rv = F240->C_GetInfo(&info);
	rec("C_GetInfo through C_GetFunctionList's list", "rv=%s cryptoki=%d.%d", rvn(rv), info.cryptokiVersion.major,
	    info.cryptokiVersion.minor);
	memset(&info, CANARY, sizeof info);
	rv = P(C_GetInfo)(&info);
	rec("C_GetInfo", "rv=%s cryptoki=%d.%d manufacturer=%s flags=0x%lx description=%s library=%d.%d", rvn(rv),
	    info.cryptokiVersion.major, info.cryptokiVersion.minor, txt(info.manufacturerID, sizeof info.manufacturerID),
	    info.flags, txt(info.libraryDescription, sizeof info.libraryDescription), info.libraryVersion.major,
	    info.libraryVersion.minor);
	CK_FUNCTION_LIST_PTR fl = NULL;
	rv = P(C_GetFunctionList)(&fl);
	rec("C_GetFunctionList through the 3.x list", "rv=%s version=%d.%d", rvn(rv), fl ? fl->version.major : -1,
	    fl ? fl->version.minor : -1);
	note("C_GetFunctionList through the 3.x list: which list", "%s",
	     fl == F240 ? "C_GetFunctionList's" : if_entry(fl));

	/* Slots and tokens. */
	refresh_slots();
	CK_SLOT_ID ids[16];
	n = ARRAY_LEN(ids);
	rv = P(C_GetSlotList)(CK_TRUE, ids, &n);
	rec("C_GetSlotList(present)", "rv=%s count=%s slots=%s", rvn(rv), lens(n),
	    rv == CKR_OK ? slot_list_names(ids, n) : "-");
	for (size_t i = 0; i < n_slots; i++) {
		rec_slot_info(fmt("C_GetSlotInfo %s", slots[i].name), slots[i].id);
		rec_token_info(fmt("C_GetTokenInfo %s", slots[i].name), slots[i].id);
	}
	main_slot = T->slot ? slot_by_name(T->slot) : n_slots ? slots[0].id : BAD_SLOT;
	rec("the script's slot", "%s", slotn(main_slot));
	n = SENTINEL_LEN;
	rv = P(C_GetMechanismList)(main_slot, NULL, &n);
	rec("C_GetMechanismList count", "rv=%s count=%s", rvn(rv), lens(n));
}

/* The mechanisms the 3.x script uses, as C_GetMechanismInfo reports them. */
static const CK_MECHANISM_TYPE mechs3[] = {
	CKM_AES_GCM, CKM_CHACHA20_POLY1305, CKM_AES_KEY_GEN, CKM_CHACHA20_KEY_GEN, CKM_SHA256_HMAC, CKM_SHA256,
	CKM_AES_ECB, CKM_ML_KEM_KEY_PAIR_GEN, CKM_ML_KEM, CKM_ML_DSA_KEY_PAIR_GEN, CKM_ML_DSA, CKM_HASH_ML_DSA_SHA256,
};
static CK_FLAGS mech3_flags[ARRAY_LEN(mechs3)];

static CK_FLAGS mflags(CK_MECHANISM_TYPE m)
{
	for (size_t i = 0; i < ARRAY_LEN(mechs3); i++)
		if (mechs3[i] == m)
			return mech3_flags[i];
	return 0;
}

static void area_session3(void)
{
	set_area("session", 60);
	for (size_t i = 0; i < ARRAY_LEN(mechs3); i++) {
		CK_MECHANISM_INFO mi;
		memset(&mi, 0, sizeof mi);
		CK_RV rv = P(C_GetMechanismInfo)(main_slot, mechs3[i], &mi);
		mech3_flags[i] = rv == CKR_OK ? mi.flags : 0;
		rec(fmt("C_GetMechanismInfo %s", mechn(mechs3[i])), "rv=%s min=%s max=%s flags=0x%lx", rvn(rv),
		    ulong_s(mi.ulMinKeySize), ulong_s(mi.ulMaxKeySize), mi.flags);
	}
	CK_RV rv = P(C_OpenSession)(main_slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &S);
	rec("open S (RW)", "rv=%s", rvn(rv));
	rv = P(C_OpenSession)(main_slot, CKF_SERIAL_SESSION, NULL, NULL, &R);
	rec("open R (RO)", "rv=%s distinct=%s", rvn(rv), R != S ? "yes" : "no");
	rec_session_info("session info S", S);
	rec_session_info("session info R", R);
}

/* ------------------------------------------------------------------ */
/* Area: C_LoginUser                                                   */

#define UPIN(s) (CK_UTF8CHAR_PTR)(s), (CK_ULONG)strlen(s)

static void area_login3(void)
{
	set_area("login", 60);
	rrv("C_LoginUser(user, PIN, username)", Q(C_LoginUser)(S, CKU_USER, UPIN(T->pin), UPIN(T->user)));
	rec_session_info("session info after C_LoginUser", S);
	rrv("C_Logout after C_LoginUser", P(C_Logout)(S));
	rrv("C_LoginUser(user, wrong PIN)", Q(C_LoginUser)(S, CKU_USER, UPIN("0000-wrong"), UPIN(T->user)));
	rrv("C_LoginUser(user, unknown username)", Q(C_LoginUser)(S, CKU_USER, UPIN(T->pin), UPIN("mallory")));
	rrv("C_LoginUser(user, empty username)", Q(C_LoginUser)(S, CKU_USER, UPIN(T->pin), (CK_UTF8CHAR_PTR)T->user, 0));
	rrv("C_LoginUser(user, NULL username)", Q(C_LoginUser)(S, CKU_USER, UPIN(T->pin), NULL, 0));
	rrv("C_LoginUser(bad user type)", Q(C_LoginUser)(S, 99, UPIN(T->pin), UPIN(T->user)));
	rrv("C_LoginUser(bad session)", Q(C_LoginUser)(BAD_SESSION, CKU_USER, UPIN(T->pin), UPIN(T->user)));
	rec_session_info("session info before C_Login", S);
	rrv("C_Login(user)", P(C_Login)(S, CKU_USER, UPIN(T->pin)));
	rrv("C_LoginUser(user) while logged in", Q(C_LoginUser)(S, CKU_USER, UPIN(T->pin), UPIN(T->user)));
	rec_session_info("session info S", S);
	rec_session_info("session info R", R);
}

/* ------------------------------------------------------------------ */
/* Keys of fixed value: the ciphertexts compare equal between sides.   */

static CK_OBJECT_HANDLE k3_aes, k3_aes256, k3_hmac, k3_chacha;

static CK_OBJECT_HANDLE secret3(const char *name, CK_KEY_TYPE *kt, const CK_BYTE *v, CK_ULONG vlen)
{
	CK_ATTRIBUTE t[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, *kt), AV(CKA_TOKEN, no), AP(CKA_VALUE, v, vlen),
			    AV(CKA_ENCRYPT, yes), AV(CKA_DECRYPT, yes), AV(CKA_SIGN, yes), AV(CKA_VERIFY, yes),
			    AV(CKA_EXTRACTABLE, yes), AV(CKA_SENSITIVE, no)};
	return create(name, t, ARRAY_LEN(t));
}

static CK_KEY_TYPE kt_chacha = CKK_CHACHA20;

static void area_keys3(void)
{
	set_area("keys", 60);
	k3_aes = secret3("aes128", &kt_aes, aes128_v, sizeof aes128_v);
	k3_aes256 = secret3("aes256", &kt_aes, aes256_v, sizeof aes256_v);
	k3_hmac = secret3("hmac", &kt_gen, generic_v, 32);
	if (mflags(CKM_CHACHA20_POLY1305) & CKF_MESSAGE_ENCRYPT) {
		k3_chacha = secret3("chacha20", &kt_chacha, generic_v + 32, 32);
		rec_attr("chacha20 key type", k3_chacha, CKA_KEY_TYPE, 1);
		rec_attr("chacha20 value", k3_chacha, CKA_VALUE, 1);
	}
}

/* ------------------------------------------------------------------ */
/* Message-based encryption and decryption: the probe protocol of yrun  */
/* (NULL-buffer length query, capacity 0, one short, exact), and the    */
/* parameter's buffers: the IV (generated on encryption: restored to    */
/* the caller's bytes before each call) and the tag (written on         */
/* encryption: reset before each call).                                 */

typedef CK_RV (*msgsign_fn)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);

struct mcall {
	const char *fname; /* for coverage */
	msgcrypt_fn f;	   /* C_EncryptMessage, C_DecryptMessage */
	msgnext_fn nf;	   /* or C_EncryptMessageNext, C_DecryptMessageNext */
	msgsign_fn sf;	   /* or C_SignMessage, C_SignMessageNext */
	CK_FLAGS nflags;
	int flags; /* M_ flags of the run */
	CK_SESSION_HANDLE s;
	void *param;
	CK_ULONG plen;
	CK_BYTE *aad;
	CK_ULONG aadlen;
	const CK_BYTE *in;
	CK_ULONG inlen;
	CK_BYTE *iv;	    /* the IV or nonce buffer of param */
	const CK_BYTE *iv0; /* the caller's bytes put there before each call */
	CK_ULONG ivlen, fixedbits;
	CK_BYTE *tag; /* the tag buffer of param */
	CK_ULONG taglen;
	int tag_out; /* the call writes the tag */
};


static CK_RV mdo(const struct mcall *c, CK_BYTE *out, CK_ULONG *len)
{
	if (c->iv && c->iv0)
		memcpy(c->iv, c->iv0, c->ivlen);
	if (c->tag && c->tag_out)
		memset(c->tag, CANARY, c->taglen);
	hit3(c->fname);
	if (c->nf)
		return c->nf(c->s, c->param, c->plen, (CK_BYTE_PTR)c->in, c->inlen, out, len, c->nflags);
	if (c->sf)
		return c->sf(c->s, c->param, c->plen, (CK_BYTE_PTR)c->in, c->inlen, out, len);
	return c->f(c->s, c->param, c->plen, c->aad, c->aadlen, (CK_BYTE_PTR)c->in, c->inlen, out, len);
}

/* What the call did to the IV and the tag. A random IV is described by
 * what is deterministic: its fixed bytes kept, the rest changed. */
static const char *mstate(const struct mcall *c, int flags)
{
	const char *iv = "-", *tag = "-";
	if (c->iv && c->iv0) {
		size_t fb = c->fixedbits / 8;
		if (memcmp(c->iv, c->iv0, c->ivlen) == 0)
			iv = "unchanged";
		else if (flags & M_DET_IV)
			iv = hex(c->iv, c->ivlen);
		else
			iv = fmt("generated(len=%lu, fixed %zu bytes %s, the other %lu %s)", c->ivlen, fb,
				 memcmp(c->iv, c->iv0, fb) == 0 ? "kept" : "CHANGED", c->ivlen - fb,
				 memcmp(c->iv + fb, c->iv0 + fb, c->ivlen - fb) ? "changed" : "unchanged");
	}
	if (c->tag && c->tag_out) {
		if (untouched(c->tag, 0, c->taglen))
			tag = "untouched";
		else
			tag = flags & M_DET ? hex(c->tag, c->taglen) : fmt("written(%lu bytes, not compared)", c->taglen);
	}
	if (!c->iv && !c->tag)
		return "";
	return fmt("iv=%s tag=%s", iv, tag);
}

static CK_RV mdo_cb(void *ctx, CK_BYTE_PTR out, CK_ULONG_PTR len)
{
	return mdo(ctx, out, len);
}

static const char *mstate_cb(void *ctx)
{
	const struct mcall *c = ctx;
	return mstate(c, c->flags);
}

static CK_RV mrun(const char *step, struct mcall *c, int flags, CK_BYTE *out, CK_ULONG *outlen)
{
	c->flags = flags;
	return grun(step, mdo_cb, mstate_cb, c, flags, out, outlen);
}

static void plain_check(const char *step, CK_RV rv, const CK_BYTE *pt, CK_ULONG ptlen, const CK_BYTE *want,
			CK_ULONG wantlen)
{
	if (rv == CKR_OK)
		rec(step, "%s", ptlen == wantlen && memcmp(pt, want, wantlen) == 0 ? "the message" : "NOT the message");
}

/* One sealed message: what decryption needs. */
struct sealed {
	CK_BYTE ct[256], iv[16], tag[16];
	CK_ULONG ctlen, ivlen;
	CK_BYTE *aad;
	CK_ULONG aadlen;
	CK_ULONG ptlen;
	int ok;
};

static void seal(struct sealed *m, const struct mcall *c, CK_RV rv, const CK_BYTE *ct, CK_ULONG ctlen)
{
	memset(m, 0, sizeof *m);
	m->ok = rv == CKR_OK && ctlen <= sizeof m->ct;
	if (!m->ok)
		return;
	memcpy(m->ct, ct, ctlen);
	m->ctlen = ctlen;
	m->ivlen = c->ivlen;
	memcpy(m->iv, c->iv, c->ivlen);
	memcpy(m->tag, c->tag, c->taglen);
	m->aad = c->aad;
	m->aadlen = c->aadlen;
	m->ptlen = c->inlen;
}

/* ------------------------------------------------------------------ */
/* Area: AES-GCM message encryption, the vendor generating the IVs      */

#define GCM_LEN 37 /* not a multiple of the block size */

static CK_GCM_MESSAGE_PARAMS gmp;
static CK_BYTE giv[12], gtag[16], giv0[12];
static struct mcall gcm_enc(void)
{
	struct mcall c = {.fname = "C_EncryptMessage", .f = F3->C_EncryptMessage, .s = S, .param = &gmp,
			  .plen = sizeof gmp, .aad = aad, .aadlen = sizeof aad, .in = msg, .inlen = GCM_LEN,
			  .iv = giv, .iv0 = giv0, .ivlen = sizeof giv, .fixedbits = gmp.ulIvFixedBits,
			  .tag = gtag, .taglen = sizeof gtag, .tag_out = 1};
	return c;
}

static void gcm_decrypt(const char *step, const struct sealed *m, int flags)
{
	if (!m->ok) {
		rec(step, "not run: no ciphertext");
		return;
	}
	CK_BYTE iv[16], tag[16], pt[OUTCAP];
	CK_ULONG ptlen;
	memcpy(iv, m->iv, m->ivlen);
	memcpy(tag, m->tag, sizeof tag);
	CK_GCM_MESSAGE_PARAMS p = {iv, m->ivlen, 0, CKG_NO_GENERATE, tag, 128};
	struct mcall c = {.fname = "C_DecryptMessage", .f = F3->C_DecryptMessage, .s = S, .param = &p,
			  .plen = sizeof p, .aad = m->aad, .aadlen = m->aadlen, .in = m->ct, .inlen = m->ctlen,
			  .iv = iv, .iv0 = m->iv, .ivlen = m->ivlen, .tag = tag, .taglen = sizeof tag};
	CK_RV rv = mrun(step, &c, flags | M_DET, pt, &ptlen);
	plain_check(fmt("%s: plaintext", step), rv, pt, ptlen, msg, m->ptlen);
}

static void area_gcm(void)
{
	set_area("gcm", 60);
	if (!(mflags(CKM_AES_GCM) & CKF_MESSAGE_ENCRYPT)) {
		rec("AES-GCM message encryption", "not offered: CKF_MESSAGE_ENCRYPT not in its flags");
		return;
	}
	CK_MECHANISM m = {CKM_AES_GCM, NULL, 0};
	static struct sealed s1, s2, s4, s5, s6, s7;
	CK_BYTE ct[OUTCAP];
	CK_ULONG ctlen;
	CK_RV rv;
	struct mcall c;
	memcpy(giv0, iv12, sizeof giv0);

	/* Counter IVs: 32 fixed bits (the caller's), the other 64 the
	 * vendor's counter: deterministic. */
	rrv("C_MessageEncryptInit(AES-GCM, counter IVs)", Q(C_MessageEncryptInit)(S, &m, k3_aes));
	gmp = (CK_GCM_MESSAGE_PARAMS){giv, sizeof giv, 32, CKG_GENERATE_COUNTER, gtag, 128};
	c = gcm_enc();
	rv = mrun("message 1: counter IV, 32 fixed bits", &c, M_PROBE | M_DET | M_DET_IV, ct, &ctlen);
	seal(&s1, &c, rv, ct, ctlen);
	rv = mrun("message 2: counter IV", &c, M_DET | M_DET_IV, ct, &ctlen);
	seal(&s2, &c, rv, ct, ctlen);
	gmp.ivGenerator = CKG_GENERATE_RANDOM;
	c = gcm_enc();
	mrun("message 3: a random IV in the counter IVs' operation", &c, M_DET | M_DET_IV, NULL, NULL);
	gmp.ivGenerator = CKG_GENERATE_COUNTER;
	/* A parameter of the wrong length: probes (a fresh process each). */
	c = gcm_enc();
	c.aad = NULL, c.aadlen = 0;
	rv = mrun("message 4: counter IV, no AAD", &c, M_PROBE | M_DET | M_DET_IV, ct, &ctlen);
	seal(&s4, &c, rv, ct, ctlen);
	rrv("C_MessageEncryptFinal", Q(C_MessageEncryptFinal)(S));
	rrv("C_MessageEncryptFinal again", Q(C_MessageEncryptFinal)(S));
	c = gcm_enc();
	mrun("C_EncryptMessage after C_MessageEncryptFinal", &c, M_DET | M_DET_IV, NULL, NULL);

	/* Random IVs: 16 fixed bits, 80 random: lengths and what changed. */
	rrv("C_MessageEncryptInit(AES-GCM, random IVs)", Q(C_MessageEncryptInit)(S, &m, k3_aes256));
	gmp = (CK_GCM_MESSAGE_PARAMS){giv, sizeof giv, 16, CKG_GENERATE_RANDOM, gtag, 128};
	c = gcm_enc();
	rv = mrun("message 5: random IV, 16 fixed bits", &c, M_PROBE, ct, &ctlen);
	seal(&s5, &c, rv, ct, ctlen);
	rv = mrun("message 6: random IV", &c, 0, ct, &ctlen);
	seal(&s6, &c, rv, ct, ctlen);
	if (s5.ok && s6.ok)
		rec("message 6: IV differs from message 5's", "%s", memcmp(s5.iv, s6.iv, sizeof giv) ? "yes" : "no");
	rrv("C_MessageEncryptFinal (random IVs)", Q(C_MessageEncryptFinal)(S));

	/* Random IVs with too few random bits (NSS wants more than 64). */
	rrv("C_MessageEncryptInit(AES-GCM, random IVs, 64 fixed bits)", Q(C_MessageEncryptInit)(S, &m, k3_aes256));
	gmp = (CK_GCM_MESSAGE_PARAMS){giv, sizeof giv, 64, CKG_GENERATE_RANDOM, gtag, 128};
	c = gcm_enc();
	mrun("random IV, 64 fixed bits", &c, 0, NULL, NULL);
	rrv("C_MessageEncryptFinal (64 fixed bits)", Q(C_MessageEncryptFinal)(S));

	/* The caller's IV. */
	rrv("C_MessageEncryptInit(AES-GCM, the caller's IV)", Q(C_MessageEncryptInit)(S, &m, k3_aes));
	gmp = (CK_GCM_MESSAGE_PARAMS){giv, sizeof giv, 0, CKG_NO_GENERATE, gtag, 128};
	c = gcm_enc();
	rv = mrun("message 7: the caller's IV", &c, M_PROBE | M_DET, ct, &ctlen);
	seal(&s7, &c, rv, ct, ctlen);
	gmp.ulTagBits = 96;
	c = gcm_enc();
	mrun("message 7 with a 96-bit tag", &c, M_DET, NULL, NULL);
	rrv("C_MessageEncryptFinal (the caller's IV)", Q(C_MessageEncryptFinal)(S));

	/* Decryption: C_DecryptMessage with each message's IV and tag. */
	rrv("C_MessageDecryptInit(AES-GCM)", Q(C_MessageDecryptInit)(S, &m, k3_aes));
	gcm_decrypt("decrypt message 1", &s1, M_PROBE);
	gcm_decrypt("decrypt message 2", &s2, 0);
	gcm_decrypt("decrypt message 4", &s4, 0);
	gcm_decrypt("decrypt message 7", &s7, 0);
	/* A failed tag check: NSS zeroes part of the output; the proxy writes an output buffer only with CKR_OK. */
	const int tagfail = T->departs ? M_BUF_NOTE : 0;
	struct sealed bad = s1;
	bad.tag[0] ^= 0x01;
	gcm_decrypt("decrypt message 1 with a wrong tag", &bad, tagfail);
	bad = s1;
	bad.aad = aad + 1;
	gcm_decrypt("decrypt message 1 with another AAD", &bad, tagfail);
	bad = s1;
	bad.iv[11] ^= 0x01;
	gcm_decrypt("decrypt message 1 with another IV", &bad, tagfail);
	gcm_decrypt("decrypt message 1 again", &s1, 0);
	rrv("C_MessageDecryptFinal", Q(C_MessageDecryptFinal)(S));
	rrv("C_MessageDecryptFinal again", Q(C_MessageDecryptFinal)(S));
	gcm_decrypt("C_DecryptMessage after C_MessageDecryptFinal", &s1, 0);
	rrv("C_MessageDecryptInit(AES-GCM, the 256-bit key)", Q(C_MessageDecryptInit)(S, &m, k3_aes256));
	gcm_decrypt("decrypt message 5 (random IV)", &s5, M_PROBE);
	gcm_decrypt("decrypt message 6 (random IV)", &s6, 0);
	gcm_decrypt("decrypt message 1 with the other key", &s1, tagfail); /* a failed tag check, as above */
	rrv("C_MessageDecryptFinal (256-bit key)", Q(C_MessageDecryptFinal)(S));
}

/* ------------------------------------------------------------------ */
/* Area: ChaCha20-Poly1305 message encryption                           */

#define CHACHA_LEN 50

static void area_chacha(void)
{
	set_area("chacha", 60);
	if (!(mflags(CKM_CHACHA20_POLY1305) & CKF_MESSAGE_ENCRYPT)) {
		rec("ChaCha20-Poly1305 message encryption", "not offered: CKF_MESSAGE_ENCRYPT not in its flags");
		return;
	}
	CK_MECHANISM m = {CKM_CHACHA20_POLY1305, NULL, 0};
	CK_BYTE nonce[12], nonce0[12], tag[16], ct[OUTCAP], pt[OUTCAP];
	CK_ULONG ctlen, ptlen;
	CK_RV rv;
	static struct sealed s1, s2, s3;
	memcpy(nonce0, iv12, sizeof nonce0);
	CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS p = {nonce, sizeof nonce, tag};
	struct mcall c = {.fname = "C_EncryptMessage", .f = F3->C_EncryptMessage, .s = S, .param = &p,
			  .plen = sizeof p, .aad = aad, .aadlen = sizeof aad, .in = msg, .inlen = CHACHA_LEN,
			  .iv = nonce, .iv0 = nonce0, .ivlen = sizeof nonce, .tag = tag, .taglen = sizeof tag,
			  .tag_out = 1};
	rrv("C_MessageEncryptInit(ChaCha20-Poly1305)", Q(C_MessageEncryptInit)(S, &m, k3_chacha));
	rv = mrun("message 1", &c, M_PROBE | M_DET, ct, &ctlen);
	seal(&s1, &c, rv, ct, ctlen);
	nonce0[11] ^= 0x01;
	rv = mrun("message 2: another nonce", &c, M_DET, ct, &ctlen);
	seal(&s2, &c, rv, ct, ctlen);
	nonce0[11] ^= 0x02;
	c.aad = NULL, c.aadlen = 0;
	rv = mrun("message 3: no AAD", &c, M_DET, ct, &ctlen);
	seal(&s3, &c, rv, ct, ctlen);
	c.aad = aad, c.aadlen = sizeof aad;
	p.ulNonceLen = 8;
	c.ivlen = 8;
	mrun("an 8-byte nonce", &c, M_DET, NULL, NULL);
	p.ulNonceLen = sizeof nonce;
	c.ivlen = sizeof nonce;
	rrv("C_MessageEncryptFinal", Q(C_MessageEncryptFinal)(S));

	rrv("C_MessageDecryptInit(ChaCha20-Poly1305)", Q(C_MessageDecryptInit)(S, &m, k3_chacha));
	const struct sealed *ms[] = {&s1, &s2, &s3};
	for (int i = 0; i < 3; i++) {
		const char *step = fmt("decrypt message %d", i + 1);
		if (!ms[i]->ok) {
			rec(step, "not run: no ciphertext");
			continue;
		}
		for (int wrong = 0; wrong < 2; wrong++) {
			memcpy(nonce, ms[i]->iv, sizeof nonce);
			memcpy(tag, ms[i]->tag, sizeof tag);
			tag[15] ^= (CK_BYTE)wrong;
			p = (CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS){nonce, sizeof nonce, tag};
			struct mcall d = {.fname = "C_DecryptMessage", .f = F3->C_DecryptMessage, .s = S, .param = &p,
					  .plen = sizeof p, .aad = ms[i]->aad, .aadlen = ms[i]->aadlen, .in = ms[i]->ct,
					  .inlen = ms[i]->ctlen, .iv = nonce, .iv0 = ms[i]->iv, .ivlen = sizeof nonce,
					  .tag = tag, .taglen = sizeof tag};
			const char *st = wrong ? fmt("%s with a wrong tag", step) : step;
			rv = mrun(st, &d, (i == 0 && !wrong ? M_PROBE : 0) | M_DET, pt, &ptlen);
			if (!wrong)
				plain_check(fmt("%s: plaintext", st), rv, pt, ptlen, msg, ms[i]->ptlen);
		}
	}
	rrv("C_MessageDecryptFinal", Q(C_MessageDecryptFinal)(S));
}

/* ------------------------------------------------------------------ */
/* Area: multi-part messages (C_EncryptMessageBegin/Next)              */

static void area_multipart(void)
{
	set_area("multipart", 60);
	if (!(mflags(CKM_AES_GCM) & CKF_MESSAGE_ENCRYPT)) {
		rec("AES-GCM message encryption", "not offered");
		return;
	}
	CK_MECHANISM m = {CKM_AES_GCM, NULL, 0};
	CK_BYTE ct[OUTCAP], pt[OUTCAP];
	CK_ULONG l1 = 0, l2 = 0, p1 = 0, p2 = 0;
	CK_RV rv;
	memcpy(giv0, iv12, sizeof giv0);
	giv0[0] ^= 0x80;
	rrv("C_MessageEncryptInit(AES-GCM, counter IVs)", Q(C_MessageEncryptInit)(S, &m, k3_aes));
	gmp = (CK_GCM_MESSAGE_PARAMS){giv, sizeof giv, 32, CKG_GENERATE_COUNTER, gtag, 128};
	struct mcall c = gcm_enc();
	memcpy(giv, giv0, sizeof giv);
	memset(gtag, CANARY, sizeof gtag);
	rv = Q(C_EncryptMessageBegin)(S, &gmp, sizeof gmp, aad, sizeof aad);
	rec("C_EncryptMessageBegin", "rv=%s %s", rvn(rv), mstate(&c, M_DET | M_DET_IV));
	/* The IV is the vendor's from Begin on: not restored by mdo now. */
	c.iv0 = NULL;
	c.fname = "C_EncryptMessageNext";
	c.nf = F3->C_EncryptMessageNext;
	c.in = msg, c.inlen = 16, c.nflags = 0;
	c.tag_out = 0;
	rv = mrun("C_EncryptMessageNext part 1", &c, M_PROBE | M_DET, ct, &l1);
	c.in = msg + 16, c.inlen = GCM_LEN - 16, c.nflags = CKF_END_OF_MESSAGE;
	rv = mrun("C_EncryptMessageNext part 2, CKF_END_OF_MESSAGE", &c, M_PROBE | M_DET, ct + l1, &l2);
	rec("after the last part", "iv=%s tag=%s", memcmp(giv, giv0, sizeof giv) ? hex(giv, sizeof giv) : "unchanged",
	    untouched(gtag, 0, sizeof gtag) ? "untouched" : hex(gtag, sizeof gtag));
	rrv("C_MessageEncryptFinal", Q(C_MessageEncryptFinal)(S));
	if (rv == CKR_OK) {
		struct sealed s = {.ctlen = l1 + l2, .ivlen = sizeof giv, .aad = aad, .aadlen = sizeof aad,
				   .ptlen = GCM_LEN, .ok = l1 + l2 <= sizeof s.ct};
		if (s.ok) {
			memcpy(s.ct, ct, l1 + l2);
			memcpy(s.iv, giv, sizeof giv);
			memcpy(s.tag, gtag, sizeof gtag);
		}
		rrv("C_MessageDecryptInit(AES-GCM)", Q(C_MessageDecryptInit)(S, &m, k3_aes));
		gcm_decrypt("C_DecryptMessage of the parts", &s, 0);
		rrv("C_MessageDecryptFinal", Q(C_MessageDecryptFinal)(S));
		memcpy(giv, s.iv, sizeof giv);
	}

	/* Decryption in parts. */
	CK_BYTE dtag[16];
	memcpy(dtag, gtag, sizeof dtag);
	CK_GCM_MESSAGE_PARAMS dp = {giv, sizeof giv, 0, CKG_NO_GENERATE, dtag, 128};
	rrv("C_MessageDecryptInit(AES-GCM) for parts", Q(C_MessageDecryptInit)(S, &m, k3_aes));
	rrv("C_DecryptMessageBegin", Q(C_DecryptMessageBegin)(S, &dp, sizeof dp, aad, sizeof aad));
	struct mcall d = {.fname = "C_DecryptMessageNext", .nf = F3->C_DecryptMessageNext, .s = S, .param = &dp,
			  .plen = sizeof dp, .in = ct, .inlen = 16};
	rv = mrun("C_DecryptMessageNext part 1", &d, M_PROBE | M_DET, pt, &p1);
	d.in = ct + 16, d.inlen = (l1 + l2 > 16 ? l1 + l2 - 16 : 21), d.nflags = CKF_END_OF_MESSAGE;
	rv = mrun("C_DecryptMessageNext part 2, CKF_END_OF_MESSAGE", &d, M_PROBE | M_DET, pt + p1, &p2);
	plain_check("C_DecryptMessageNext: plaintext", rv, pt, p1 + p2, msg, GCM_LEN);
	rrv("C_MessageDecryptFinal for parts", Q(C_MessageDecryptFinal)(S));
}

/* ------------------------------------------------------------------ */
/* Area: C_SessionCancel                                               */

static void area_cancel(void)
{
	set_area("cancel", 60);
	CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0}, sha = {CKM_SHA256, NULL, 0}, hm = {CKM_SHA256_HMAC, NULL, 0},
		     gcm = {CKM_AES_GCM, NULL, 0};
	CK_BYTE out[256];
	CK_ULONG len;
	CK_OBJECT_HANDLE h;
	CK_ULONG cnt;
	CK_ATTRIBUTE ft[] = {AV(CKA_CLASS, cls_secret)};
	CK_RV rv;
#define L (len = sizeof out, &len)

	/* The 2.40 operations (the 3.2 module's signing ones: area mldsa). */
	if (T->crypto240) {
		rrv("C_EncryptInit", P(C_EncryptInit)(S, &ecb, k3_aes));
		rrv("C_SessionCancel(CKF_ENCRYPT)", Q(C_SessionCancel)(S, CKF_ENCRYPT));
		rrv("C_Encrypt after the cancel", P(C_Encrypt)(S, msg, 16, out, L));
		rrv("C_EncryptInit after the cancel", P(C_EncryptInit)(S, &ecb, k3_aes));
		rv = P(C_Encrypt)(S, msg, 16, out, L);
		rec("C_Encrypt", "rv=%s out=%s", rvn(rv), rv == CKR_OK ? hex(out, len) : "-");

		rrv("C_DigestInit", P(C_DigestInit)(S, &sha));
		rrv("C_DigestUpdate", P(C_DigestUpdate)(S, msg, 16));
		rrv("C_SessionCancel(CKF_DIGEST)", Q(C_SessionCancel)(S, CKF_DIGEST));
		rrv("C_DigestUpdate after the cancel", P(C_DigestUpdate)(S, msg, 16));

		rrv("C_SignInit(HMAC)", P(C_SignInit)(S, &hm, k3_hmac));
		rrv("C_SignUpdate", P(C_SignUpdate)(S, msg, 16));
		rrv("C_SessionCancel(CKF_SIGN)", Q(C_SessionCancel)(S, CKF_SIGN));
		rrv("C_SignFinal after the cancel", P(C_SignFinal)(S, out, L));

		rrv("C_DecryptInit", P(C_DecryptInit)(S, &ecb, k3_aes));
		rrv("C_DigestInit (with a decryption active)", P(C_DigestInit)(S, &sha));
		rrv("C_SessionCancel(CKF_DECRYPT|CKF_DIGEST)", Q(C_SessionCancel)(S, CKF_DECRYPT | CKF_DIGEST));
		rrv("C_Decrypt after the cancel", P(C_Decrypt)(S, out, 16, out + 64, L));
		rrv("C_Digest after the cancel", P(C_Digest)(S, msg, 16, out, L));

		rrv("C_VerifyInit(HMAC)", P(C_VerifyInit)(S, &hm, k3_hmac));
		rrv("C_SessionCancel(CKF_VERIFY)", Q(C_SessionCancel)(S, CKF_VERIFY));
		rrv("C_VerifyUpdate after the cancel", P(C_VerifyUpdate)(S, msg, 16));
	}

	rrv("C_MessageEncryptInit(AES-GCM)", Q(C_MessageEncryptInit)(S, &gcm, k3_aes));
	rrv("C_SessionCancel(CKF_MESSAGE_ENCRYPT)", Q(C_SessionCancel)(S, CKF_MESSAGE_ENCRYPT));
	memcpy(giv0, iv12, sizeof giv0);
	gmp = (CK_GCM_MESSAGE_PARAMS){giv, sizeof giv, 0, CKG_NO_GENERATE, gtag, 128};
	struct mcall c = gcm_enc();
	mrun("C_EncryptMessage after the cancel", &c, M_DET | M_DET_IV, NULL, NULL);
	rrv("C_MessageEncryptInit after the cancel", Q(C_MessageEncryptInit)(S, &gcm, k3_aes));
	mrun("C_EncryptMessage", &c, M_DET | M_DET_IV, NULL, NULL);
	rrv("C_MessageEncryptFinal", Q(C_MessageEncryptFinal)(S));

	rrv("C_MessageDecryptInit(AES-GCM)", Q(C_MessageDecryptInit)(S, &gcm, k3_aes));
	rrv("C_SessionCancel(CKF_MESSAGE_DECRYPT)", Q(C_SessionCancel)(S, CKF_MESSAGE_DECRYPT));
	rrv("C_MessageDecryptFinal after the cancel", Q(C_MessageDecryptFinal)(S));

	rrv("C_FindObjectsInit", P(C_FindObjectsInit)(S, ft, 1));
	rrv("C_SessionCancel(CKF_FIND_OBJECTS)", Q(C_SessionCancel)(S, CKF_FIND_OBJECTS));
	cnt = SENTINEL_LEN;
	rv = P(C_FindObjects)(S, &h, 1, &cnt);
	rec("C_FindObjects after the cancel", "rv=%s count=%s", rvn(rv), lens(cnt));
	rrv("C_FindObjectsInit after the cancel", P(C_FindObjectsInit)(S, ft, 1));
	rrv("C_FindObjectsFinal", P(C_FindObjectsFinal)(S));

	rrv("C_SessionCancel(CKF_ENCRYPT), nothing active", Q(C_SessionCancel)(S, CKF_ENCRYPT));
	rrv("C_SessionCancel(0)", Q(C_SessionCancel)(S, 0));
	if (T->crypto240) {
		rrv("C_EncryptInit", P(C_EncryptInit)(S, &ecb, k3_aes));
		rrv("C_SessionCancel(0x80000000)", Q(C_SessionCancel)(S, 0x80000000UL));
		rrv("C_Encrypt after C_SessionCancel(0x80000000)", P(C_Encrypt)(S, msg, 16, out, L));
	} else
		rrv("C_SessionCancel(0x80000000)", Q(C_SessionCancel)(S, 0x80000000UL));
	rrv("C_SessionCancel(bad session)", Q(C_SessionCancel)(BAD_SESSION, CKF_ENCRYPT));
	rrv("C_SessionCancel in R (nothing active)", Q(C_SessionCancel)(R, CKF_SIGN));
#undef L
}

/* ------------------------------------------------------------------ */
/* Area: the message functions with no operation initialized            */

static void area_noinit(void)
{
	set_area("noinit", 60);
	CK_BYTE out[256], sig[64], iv[12], tag[16];
	CK_ULONG len;
	memset(sig, 0x11, sizeof sig);
	memcpy(iv, iv12, sizeof iv);
	CK_GCM_MESSAGE_PARAMS p = {iv, sizeof iv, 0, CKG_NO_GENERATE, tag, 128};
	CK_MECHANISM gcm = {CKM_AES_GCM, NULL, 0};
#define L (len = sizeof out, &len)
	for (int withp = 0; withp < 2; withp++) {
		void *pp = withp ? &p : NULL;
		CK_ULONG pl = withp ? sizeof p : 0;
		const char *t = withp ? ", GCM parameters" : ", no parameter";
		memset(tag, 0, sizeof tag);
		rrv(fmt("C_EncryptMessage%s", t), Q(C_EncryptMessage)(R, pp, pl, aad, sizeof aad, msg, 16, out, L));
		rrv(fmt("C_EncryptMessageBegin%s", t), Q(C_EncryptMessageBegin)(R, pp, pl, aad, sizeof aad));
		rrv(fmt("C_EncryptMessageNext%s", t),
		    Q(C_EncryptMessageNext)(R, pp, pl, msg, 16, out, L, CKF_END_OF_MESSAGE));
		rrv(fmt("C_DecryptMessage%s", t), Q(C_DecryptMessage)(R, pp, pl, aad, sizeof aad, msg, 16, out, L));
		rrv(fmt("C_DecryptMessageBegin%s", t), Q(C_DecryptMessageBegin)(R, pp, pl, aad, sizeof aad));
		rrv(fmt("C_DecryptMessageNext%s", t),
		    Q(C_DecryptMessageNext)(R, pp, pl, msg, 16, out, L, CKF_END_OF_MESSAGE));
	}
	rrv("C_MessageEncryptFinal", Q(C_MessageEncryptFinal)(R));
	rrv("C_MessageDecryptFinal", Q(C_MessageDecryptFinal)(R));
	rrv("C_SignMessage", Q(C_SignMessage)(R, NULL, 0, msg, 16, out, L));
	rrv("C_SignMessageBegin", Q(C_SignMessageBegin)(R, NULL, 0));
	rrv("C_SignMessageNext", Q(C_SignMessageNext)(R, NULL, 0, msg, 16, out, L));
	rrv("C_MessageSignFinal", Q(C_MessageSignFinal)(R));
	rrv("C_VerifyMessage", Q(C_VerifyMessage)(R, NULL, 0, msg, 16, sig, 32));
	rrv("C_VerifyMessageBegin", Q(C_VerifyMessageBegin)(R, NULL, 0));
	rrv("C_VerifyMessageNext", Q(C_VerifyMessageNext)(R, NULL, 0, msg, 16, sig, 32));
	rrv("C_MessageVerifyFinal", Q(C_MessageVerifyFinal)(R));
	if (v32) {
		rrv("C_VerifySignature", Q(C_VerifySignature)(R, msg, 16));
		rrv("C_VerifySignatureUpdate", Q(C_VerifySignatureUpdate)(R, msg, 16));
		rrv("C_VerifySignatureFinal", Q(C_VerifySignatureFinal)(R));
	}
	/* Bad sessions. */
	rrv("C_MessageEncryptInit(bad session)", Q(C_MessageEncryptInit)(BAD_SESSION, &gcm, k3_aes));
	rrv("C_EncryptMessage(bad session)",
	    Q(C_EncryptMessage)(BAD_SESSION, &p, sizeof p, aad, sizeof aad, msg, 16, out, L));
	rrv("C_MessageDecryptInit(bad session)", Q(C_MessageDecryptInit)(BAD_SESSION, &gcm, k3_aes));
	rrv("C_MessageEncryptFinal(bad session)", Q(C_MessageEncryptFinal)(BAD_SESSION));
	/* A bad key, and a key of another kind. */
	rrv("C_MessageEncryptInit(bad key)", Q(C_MessageEncryptInit)(S, &gcm, BAD_OBJECT));
	rrv("C_MessageEncryptInit(NULL mechanism)", Q(C_MessageEncryptInit)(S, NULL, k3_aes));
	rrv("C_MessageEncryptFinal after the refused inits", Q(C_MessageEncryptFinal)(S));
	/* softokn has no message signing: its C_MessageSignInit answers. */
	CK_MECHANISM hm = {CKM_SHA256_HMAC, NULL, 0};
	rrv("C_MessageSignInit(HMAC)", Q(C_MessageSignInit)(S, &hm, k3_hmac));
	rrv("C_MessageSignFinal after it", Q(C_MessageSignFinal)(S));
	rrv("C_MessageVerifyInit(HMAC)", Q(C_MessageVerifyInit)(S, &hm, k3_hmac));
	rrv("C_MessageVerifyFinal after it", Q(C_MessageVerifyFinal)(S));
#undef L
}

/* ------------------------------------------------------------------ */
/* Areas: the 3.2 functions (tests/mod32, deterministic: every output   */
/* is compared)                                                         */

/* A handle as the log shows it, never its value: the caller sets it to
 * BAD_OBJECT before the call. */
static const char *hdesc(CK_OBJECT_HANDLE h)
{
	if (h == BAD_OBJECT)
		return "unchanged";
	if (h == CK_INVALID_HANDLE)
		return "unset";
	const char *n = objname(h);
	return strcmp(n, "unknown") != 0 ? fmt("same object as %s", n) : "new";
}

static CK_OBJECT_HANDLE obj_by_name(const char *name)
{
	for (size_t i = n_objs; i-- > 0;)
		if (strcmp(objs[i].name, name) == 0)
			return objs[i].h;
	return CK_INVALID_HANDLE;
}

/* Which object a find by label returns, by name. */
static void find_label(const char *step, const char *label)
{
	CK_ATTRIBUTE t[] = {AP(CKA_LABEL, label, strlen(label))};
	CK_OBJECT_HANDLE h[4];
	CK_ULONG n = 0;
	CK_RV rv = P(C_FindObjectsInit)(S, t, 1);
	if (rv == CKR_OK)
		rv = P(C_FindObjects)(S, h, 4, &n);
	P(C_FindObjectsFinal)(S);
	rec(step, "rv=%s count=%lu first=%s", rvn(rv), n, n ? hdesc(h[0]) : "-");
}

static CK_OBJECT_HANDLE dsa_pub, dsa_priv, kem_pub, kem_priv;
static CK_BYTE sig_plain[64], sig_ctx[64];
static CK_ULONG sig_plain_n, sig_ctx_n;
static CK_BYTE ctx_bytes[] = "p11isolate diff";
static CK_SIGN_ADDITIONAL_CONTEXT sctx = {CKH_DETERMINISTIC_REQUIRED, ctx_bytes, sizeof ctx_bytes - 1};
#define SIGNED_LEN 64 /* the bytes of msg that are signed */

static void same_bytes(const char *step, const CK_BYTE *a, CK_ULONG an, const CK_BYTE *b, CK_ULONG bn)
{
	rec(step, "%s", an == bn && an && memcmp(a, b, an) == 0 ? "yes" : "NO");
}

static void vflags(const char *step, CK_SESSION_HANDLE s)
{
	CK_FLAGS f = SENTINEL_LEN;
	CK_RV rv = Q(C_GetSessionValidationFlags)(s, CKS_LAST_VALIDATION_OK, &f);
	rec(step, "rv=%s flags=%s", rvn(rv), f == SENTINEL_LEN ? "unchanged" : fmt("0x%lx", f));
}

/* Key pairs: ML-KEM and ML-DSA. */
static void area_pairs(void)
{
	set_area("pairs", 60);
	CK_ATTRIBUTE kpub[] = {AV(CKA_TOKEN, no), AS(CKA_LABEL, "kem pub")};
	CK_ATTRIBUTE kpriv[] = {AV(CKA_TOKEN, no), AS(CKA_LABEL, "kem priv"), AV(CKA_SENSITIVE, yes)};
	gen_pair("kem", CKM_ML_KEM_KEY_PAIR_GEN, kpub, ARRAY_LEN(kpub), kpriv, ARRAY_LEN(kpriv), &kem_pub, &kem_priv);
	CK_ATTRIBUTE dpub[] = {AV(CKA_TOKEN, no), AV(CKA_VERIFY, yes), AS(CKA_LABEL, "dsa pub")};
	CK_ATTRIBUTE dpriv[] = {AV(CKA_TOKEN, no), AV(CKA_SIGN, yes), AS(CKA_LABEL, "dsa priv")};
	gen_pair("dsa", CKM_ML_DSA_KEY_PAIR_GEN, dpub, ARRAY_LEN(dpub), dpriv, ARRAY_LEN(dpriv), &dsa_pub, &dsa_priv);
	const CK_ATTRIBUTE_TYPE show[] = {CKA_CLASS, CKA_KEY_TYPE, CKA_PARAMETER_SET, CKA_LOCAL, CKA_VALUE};
	const CK_OBJECT_HANDLE keys[] = {kem_pub, kem_priv, dsa_pub, dsa_priv};
	const char *names[] = {"kem.pub", "kem.priv", "dsa.pub", "dsa.priv"};
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		for (size_t j = 0; j < ARRAY_LEN(show); j++)
			rec_attr(fmt("%s %s", names[i], attrn(show[j])), keys[i], show[j], 1);
	find_label("find \"dsa priv\"", "dsa priv");
}

/* C_EncapsulateKey: the ciphertext by the probe protocol; the key it
 * makes, by name. */
struct kemcall {
	CK_MECHANISM *m;
	CK_OBJECT_HANDLE pub;
	CK_ATTRIBUTE *t;
	CK_ULONG n;
	CK_OBJECT_HANDLE h;
};

static CK_RV kem_do(void *ctx, CK_BYTE_PTR out, CK_ULONG_PTR len)
{
	struct kemcall *k = ctx;
	k->h = BAD_OBJECT;
	return Q(C_EncapsulateKey)(S, k->m, k->pub, k->t, k->n, out, len, &k->h);
}

static const char *kem_state(void *ctx)
{
	return fmt("key=%s", hdesc(((struct kemcall *)ctx)->h));
}

static CK_OBJECT_HANDLE decap(const char *step, CK_MECHANISM *m, CK_OBJECT_HANDLE priv, CK_ATTRIBUTE *t, CK_ULONG n,
			      CK_BYTE *ct, CK_ULONG ctlen, const char *name)
{
	CK_OBJECT_HANDLE h = BAD_OBJECT;
	CK_RV rv = Q(C_DecapsulateKey)(S, m, priv, t, n, ct, ctlen, &h);
	rec(step, "rv=%s key=%s", rvn(rv), hdesc(h));
	if (rv != CKR_OK)
		return CK_INVALID_HANDLE;
	if (name)
		reg(name, h);
	return h;
}

static void secrets_equal(const char *step, CK_OBJECT_HANDLE a, CK_OBJECT_HANDLE b)
{
	CK_BYTE va[64], vb[64];
	long la = get_attr(a, CKA_VALUE, va, sizeof va), lb = get_attr(b, CKA_VALUE, vb, sizeof vb);
	if (la < 0 || lb < 0) {
		rec(step, "values not readable (%ld, %ld)", la, lb);
		return;
	}
	rec(step, "equal=%s value=%s", la == lb && memcmp(va, vb, (size_t)la) == 0 ? "yes" : "NO", hex(va, (size_t)la));
}

static CK_ULONG u16v = 16, u64v = 64;

static void area_kem(void)
{
	set_area("kem", 60);
	CK_MECHANISM m = {CKM_ML_KEM, NULL, 0};
	CK_ATTRIBUTE t[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_gen), AV(CKA_TOKEN, no),
			    AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes), AS(CKA_LABEL, "kem secret")};
	CK_ATTRIBUTE ta[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_VALUE_LEN, u16v),
			     AV(CKA_TOKEN, no), AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes)};
	CK_BYTE ct[256], ct2[256];
	CK_ULONG ctlen, ct2len;
	struct kemcall k = {&m, kem_pub, t, ARRAY_LEN(t), BAD_OBJECT};

	CK_RV rv = grun("C_EncapsulateKey", kem_do, kem_state, &k, M_PROBE | M_DET, ct, &ctlen);
	CK_OBJECT_HANDLE s1 = rv == CKR_OK ? k.h : CK_INVALID_HANDLE;
	if (s1)
		reg("encapsulated secret", s1);
	CK_OBJECT_HANDLE s2 = decap("C_DecapsulateKey", &m, kem_priv, t, ARRAY_LEN(t), ct, ctlen, "decapsulated secret");
	secrets_equal("the two secrets' CKA_VALUE", s1, s2);
	rec_attr("encapsulated secret CKA_KEY_TYPE", s1, CKA_KEY_TYPE, 1);
	rec_attr("encapsulated secret CKA_VALUE_LEN", s1, CKA_VALUE_LEN, 1);
	find_label("find \"kem secret\"", "kem secret");

	/* A 16-byte AES key from the secret, both sides. */
	k.t = ta, k.n = ARRAY_LEN(ta);
	rv = grun("C_EncapsulateKey(AES, 16 bytes)", kem_do, kem_state, &k, M_DET, ct2, &ct2len);
	CK_OBJECT_HANDLE a1 = rv == CKR_OK ? k.h : CK_INVALID_HANDLE;
	if (a1)
		reg("encapsulated AES key", a1);
	CK_OBJECT_HANDLE a2 = decap("C_DecapsulateKey(AES, 16 bytes)", &m, kem_priv, ta, ARRAY_LEN(ta), ct2, ct2len,
				    "decapsulated AES key");
	secrets_equal("the two AES keys' CKA_VALUE", a1, a2);
	rec("the second ciphertext differs from the first", "%s",
	    ctlen == ct2len && memcmp(ct, ct2, ctlen) == 0 ? "no" : "yes");

	/* Decapsulation of what is not the ciphertext. */
	ct[0] ^= 0x01;
	CK_OBJECT_HANDLE bad = decap("C_DecapsulateKey(altered ciphertext)", &m, kem_priv, t, ARRAY_LEN(t), ct, ctlen,
				     "secret of an altered ciphertext");
	secrets_equal("altered ciphertext: secret equal to the encapsulated one", s1, bad);
	ct[0] ^= 0x01;
	decap("C_DecapsulateKey(ciphertext one short)", &m, kem_priv, t, ARRAY_LEN(t), ct, ctlen - 1, NULL);
	decap("C_DecapsulateKey(NULL ciphertext)", &m, kem_priv, t, ARRAY_LEN(t), NULL, ctlen, NULL);
	decap("C_DecapsulateKey(the public key)", &m, kem_pub, t, ARRAY_LEN(t), ct, ctlen, NULL);
	decap("C_DecapsulateKey(bad key)", &m, BAD_OBJECT, t, ARRAY_LEN(t), ct, ctlen, NULL);
	rv = Q(C_DecapsulateKey)(S, &m, kem_priv, t, ARRAY_LEN(t), ct, ctlen, NULL);
	rrv("C_DecapsulateKey(NULL phKey)", rv);

	/* C_EncapsulateKey's refusals: the key, the mechanism, the template,
	 * the pointers. */
	CK_OBJECT_HANDLE h = BAD_OBJECT;
	CK_ULONG len = sizeof ct;
	rv = Q(C_EncapsulateKey)(S, &m, kem_priv, t, ARRAY_LEN(t), ct, &len, &h);
	rec("C_EncapsulateKey(the private key)", "rv=%s len=%s key=%s", rvn(rv), lens(len), hdesc(h));
	h = BAD_OBJECT, len = sizeof ct;
	rv = Q(C_EncapsulateKey)(S, &m, dsa_pub, t, ARRAY_LEN(t), ct, &len, &h);
	rec("C_EncapsulateKey(an ML-DSA key)", "rv=%s len=%s key=%s", rvn(rv), lens(len), hdesc(h));
	h = BAD_OBJECT, len = sizeof ct;
	rv = Q(C_EncapsulateKey)(S, &m, BAD_OBJECT, t, ARRAY_LEN(t), ct, &len, &h);
	rec("C_EncapsulateKey(bad key)", "rv=%s len=%s key=%s", rvn(rv), lens(len), hdesc(h));
	CK_MECHANISM mp = {CKM_ML_KEM, ctx_bytes, 4};
	h = BAD_OBJECT, len = sizeof ct;
	rv = Q(C_EncapsulateKey)(S, &mp, kem_pub, t, ARRAY_LEN(t), ct, &len, &h);
	rec("C_EncapsulateKey(a mechanism parameter)", "rv=%s len=%s key=%s", rvn(rv), lens(len), hdesc(h));
	CK_MECHANISM mdsa = {CKM_ML_DSA, NULL, 0};
	h = BAD_OBJECT, len = sizeof ct;
	rv = Q(C_EncapsulateKey)(S, &mdsa, kem_pub, t, ARRAY_LEN(t), ct, &len, &h);
	rec("C_EncapsulateKey(CKM_ML_DSA)", "rv=%s len=%s key=%s", rvn(rv), lens(len), hdesc(h));
	CK_ATTRIBUTE tl[] = {AV(CKA_CLASS, cls_secret), AV(CKA_VALUE_LEN, u64v), AV(CKA_TOKEN, no)};
	h = BAD_OBJECT, len = sizeof ct;
	rv = Q(C_EncapsulateKey)(S, &m, kem_pub, tl, ARRAY_LEN(tl), ct, &len, &h);
	rec("C_EncapsulateKey(CKA_VALUE_LEN 64)", "rv=%s len=%s key=%s", rvn(rv), lens(len), hdesc(h));
	CK_ATTRIBUTE tc[] = {AV(CKA_CLASS, cls_pub)};
	h = BAD_OBJECT, len = sizeof ct;
	rv = Q(C_EncapsulateKey)(S, &m, kem_pub, tc, ARRAY_LEN(tc), ct, &len, &h);
	rec("C_EncapsulateKey(CKA_CLASS public key)", "rv=%s len=%s key=%s", rvn(rv), lens(len), hdesc(h));
	h = BAD_OBJECT;
	rv = Q(C_EncapsulateKey)(S, &m, kem_pub, t, ARRAY_LEN(t), ct, NULL, &h);
	rec("C_EncapsulateKey(NULL length)", "rv=%s key=%s", rvn(rv), hdesc(h));
	len = sizeof ct;
	rv = Q(C_EncapsulateKey)(S, &m, kem_pub, t, ARRAY_LEN(t), ct, &len, NULL);
	rec("C_EncapsulateKey(NULL phKey)", "rv=%s len=%s", rvn(rv), lens(len));
	h = BAD_OBJECT, len = sizeof ct;
	rv = Q(C_EncapsulateKey)(S, NULL, kem_pub, t, ARRAY_LEN(t), ct, &len, &h);
	rec("C_EncapsulateKey(NULL mechanism)", "rv=%s len=%s key=%s", rvn(rv), lens(len), hdesc(h));
	h = BAD_OBJECT, len = sizeof ct;
	rv = Q(C_EncapsulateKey)(R, &m, kem_pub, t, ARRAY_LEN(t), ct, &len, &h);
	rec("C_EncapsulateKey in R (read-only)", "rv=%s len=%s out=%s key=%s", rvn(rv), lens(len),
	    rv == CKR_OK && len <= sizeof ct ? hex(ct, len) : "-", hdesc(h));
	if (rv == CKR_OK)
		reg("secret made in R", h);
	/* After the refusals the next encapsulation is as it would have been. */
	k.t = t, k.n = ARRAY_LEN(t);
	rv = grun("C_EncapsulateKey after the refusals", kem_do, kem_state, &k, M_DET, ct, &ctlen);
	if (rv == CKR_OK)
		reg("third secret", k.h);
	h = decap("C_DecapsulateKey of the third", &m, kem_priv, t, ARRAY_LEN(t), ct, ctlen, "third decapsulated");
	secrets_equal("the third secrets' CKA_VALUE", rv == CKR_OK ? k.h : CK_INVALID_HANDLE, h);
}

/* ML-DSA with the 2.40 functions, then C_VerifySignature*. */
static void area_mldsa(void)
{
	set_area("mldsa", 60);
	CK_BYTE out[256];
	CK_ULONG n;
	minit("C_SignInit(ML-DSA)", P(C_SignInit), CKM_ML_DSA, NULL, 0, dsa_priv);
	yio("C_Sign", P(C_Sign), msg, SIGNED_LEN, Y_PROBE | Y_DET, sig_plain, &sig_plain_n);
	minit("C_SignInit(ML-DSA, context)", P(C_SignInit), CKM_ML_DSA, &sctx, sizeof sctx, dsa_priv);
	yio("C_Sign with a context", P(C_Sign), msg, SIGNED_LEN, Y_DET, sig_ctx, &sig_ctx_n);
	rec("the context changes the signature", "%s",
	    sig_plain_n == sig_ctx_n && memcmp(sig_plain, sig_ctx, sig_ctx_n) == 0 ? "no" : "yes");
	minit("C_SignInit(ML-DSA) for parts", P(C_SignInit), CKM_ML_DSA, NULL, 0, dsa_priv);
	rrv("C_SignUpdate part 1", P(C_SignUpdate)(S, msg, 20));
	rrv("C_SignUpdate part 2", P(C_SignUpdate)(S, msg + 20, SIGNED_LEN - 20));
	yout("C_SignFinal", P(C_SignFinal), Y_PROBE | Y_DET, out, &n);
	same_bytes("C_SignFinal's signature is C_Sign's", out, n, sig_plain, sig_plain_n);
	vflags("C_GetSessionValidationFlags after a signature", S);

	minit("C_VerifyInit(ML-DSA)", P(C_VerifyInit), CKM_ML_DSA, NULL, 0, dsa_pub);
	rrv("C_Verify", P(C_Verify)(S, msg, SIGNED_LEN, sig_plain, sig_plain_n));
	vflags("C_GetSessionValidationFlags after a verification", S);
	minit("C_VerifyInit(ML-DSA, context)", P(C_VerifyInit), CKM_ML_DSA, &sctx, sizeof sctx, dsa_pub);
	rrv("C_Verify with a context", P(C_Verify)(S, msg, SIGNED_LEN, sig_ctx, sig_ctx_n));
	minit("C_VerifyInit(ML-DSA, context) again", P(C_VerifyInit), CKM_ML_DSA, &sctx, sizeof sctx, dsa_pub);
	rrv("C_Verify with a context, the signature without", P(C_Verify)(S, msg, SIGNED_LEN, sig_plain, sig_plain_n));
	minit("C_VerifyInit(ML-DSA) for a short signature", P(C_VerifyInit), CKM_ML_DSA, NULL, 0, dsa_pub);
	rrv("C_Verify, signature one short", P(C_Verify)(S, msg, SIGNED_LEN, sig_plain, sig_plain_n - 1));

	minit("C_SignInit(ML-DSA, parameter one short)", P(C_SignInit), CKM_ML_DSA, &sctx, sizeof sctx - 1, dsa_priv);
	CK_SIGN_ADDITIONAL_CONTEXT bad = {7, ctx_bytes, 3};
	minit("C_SignInit(ML-DSA, hedge variant 7)", P(C_SignInit), CKM_ML_DSA, &bad, sizeof bad, dsa_priv);
	minit("C_SignInit(ML-DSA, the public key)", P(C_SignInit), CKM_ML_DSA, NULL, 0, dsa_pub);
	minit("C_SignInit(ML-DSA, an ML-KEM key)", P(C_SignInit), CKM_ML_DSA, NULL, 0, kem_priv);
	/* 3.0: a NULL mechanism ends the active operation. */
	minit("C_SignInit(ML-DSA) to end", P(C_SignInit), CKM_ML_DSA, NULL, 0, dsa_priv);
	rrv("C_SignInit(NULL mechanism)", P(C_SignInit)(S, NULL, dsa_priv));
	n = sizeof out;
	rrv("C_Sign after it", P(C_Sign)(S, msg, SIGNED_LEN, out, &n));
}

static void area_verifysig(void)
{
	set_area("verifysig", 60);
	CK_MECHANISM m = {CKM_ML_DSA, NULL, 0}, mc = {CKM_ML_DSA, &sctx, sizeof sctx};
	CK_BYTE wrong[64];
	memcpy(wrong, sig_plain, sizeof wrong);
	wrong[10] ^= 0x04;
#define VSI(step, mech, key, sig, len) rrv(step, Q(C_VerifySignatureInit)(S, mech, key, sig, len))
	VSI("C_VerifySignatureInit", &m, dsa_pub, sig_plain, sig_plain_n);
	rrv("C_VerifySignature", Q(C_VerifySignature)(S, msg, SIGNED_LEN));
	rrv("C_VerifySignature again (the operation ended)", Q(C_VerifySignature)(S, msg, SIGNED_LEN));
	vflags("C_GetSessionValidationFlags after C_VerifySignature", S);
	VSI("C_VerifySignatureInit(a wrong signature)", &m, dsa_pub, wrong, sizeof wrong);
	rrv("C_VerifySignature of a wrong signature", Q(C_VerifySignature)(S, msg, SIGNED_LEN));
	VSI("C_VerifySignatureInit(signature one short)", &m, dsa_pub, sig_plain, sig_plain_n - 1);
	rrv("C_VerifySignature, signature one short", Q(C_VerifySignature)(S, msg, SIGNED_LEN));
	VSI("C_VerifySignatureInit(other data)", &m, dsa_pub, sig_plain, sig_plain_n);
	rrv("C_VerifySignature of other data", Q(C_VerifySignature)(S, msg + 1, SIGNED_LEN));

	VSI("C_VerifySignatureInit(context) for parts", &mc, dsa_pub, sig_ctx, sig_ctx_n);
	rrv("C_VerifySignatureUpdate part 1", Q(C_VerifySignatureUpdate)(S, msg, 20));
	rrv("C_VerifySignatureUpdate part 2", Q(C_VerifySignatureUpdate)(S, msg + 20, SIGNED_LEN - 20));
	rrv("C_VerifySignatureFinal", Q(C_VerifySignatureFinal)(S));
	rrv("C_VerifySignatureFinal again", Q(C_VerifySignatureFinal)(S));
	VSI("C_VerifySignatureInit(context, the signature without) for parts", &mc, dsa_pub, sig_plain, sig_plain_n);
	rrv("C_VerifySignatureUpdate", Q(C_VerifySignatureUpdate)(S, msg, SIGNED_LEN));
	rrv("C_VerifySignatureFinal of a wrong signature", Q(C_VerifySignatureFinal)(S));

	VSI("C_VerifySignatureInit for update then one-shot", &m, dsa_pub, sig_plain, sig_plain_n);
	rrv("C_VerifySignatureUpdate", Q(C_VerifySignatureUpdate)(S, msg, 20));
	rrv("C_VerifySignature after an update", Q(C_VerifySignature)(S, msg, SIGNED_LEN));
	VSI("C_VerifySignatureInit while one is active", &m, dsa_pub, sig_plain, sig_plain_n);
	rrv("C_VerifySignatureInit(NULL mechanism) ends it", Q(C_VerifySignatureInit)(S, NULL, dsa_pub, NULL, 0));
	rrv("C_VerifySignatureFinal after the end", Q(C_VerifySignatureFinal)(S));

	VSI("C_VerifySignatureInit(NULL signature)", &m, dsa_pub, NULL, 64);
	VSI("C_VerifySignatureInit(the private key)", &m, dsa_priv, sig_plain, sig_plain_n);
	VSI("C_VerifySignatureInit(bad key)", &m, BAD_OBJECT, sig_plain, sig_plain_n);
	rrv("C_VerifySignatureInit(bad session)",
	    Q(C_VerifySignatureInit)(BAD_SESSION, &m, dsa_pub, sig_plain, sig_plain_n));
	CK_MECHANISM mbad = {CKM_ML_DSA, &sctx, sizeof sctx - 1};
	VSI("C_VerifySignatureInit(parameter one short)", &mbad, dsa_pub, sig_plain, sig_plain_n);

	/* C_SessionCancel(CKF_VERIFY) ends a C_VerifySignature operation. */
	VSI("C_VerifySignatureInit to cancel", &m, dsa_pub, sig_plain, sig_plain_n);
	rrv("C_VerifySignatureUpdate", Q(C_VerifySignatureUpdate)(S, msg, 20));
	rrv("C_SessionCancel(CKF_VERIFY)", Q(C_SessionCancel)(S, CKF_VERIFY));
	rrv("C_VerifySignatureUpdate after the cancel", Q(C_VerifySignatureUpdate)(S, msg, 20));
	VSI("C_VerifySignatureInit after the cancel", &m, dsa_pub, sig_plain, sig_plain_n);
	rrv("C_VerifySignature", Q(C_VerifySignature)(S, msg, SIGNED_LEN));
#undef VSI

	/* C_SessionCancel(CKF_SIGN) ends a signing operation. */
	minit("C_SignInit(ML-DSA) to cancel", P(C_SignInit), CKM_ML_DSA, NULL, 0, dsa_priv);
	rrv("C_SignUpdate", P(C_SignUpdate)(S, msg, 20));
	rrv("C_SessionCancel(CKF_SIGN)", Q(C_SessionCancel)(S, CKF_SIGN));
	CK_BYTE out[128];
	CK_ULONG n = sizeof out;
	rrv("C_SignFinal after the cancel", P(C_SignFinal)(S, out, &n));
	minit("C_SignInit(ML-DSA) after the cancel", P(C_SignInit), CKM_ML_DSA, NULL, 0, dsa_priv);
	n = sizeof out;
	CK_RV rv = P(C_Sign)(S, msg, SIGNED_LEN, out, &n);
	rec("C_Sign after the cancel", "rv=%s signature=%s", rvn(rv),
	    rv == CKR_OK && n == sig_plain_n && memcmp(out, sig_plain, n) == 0 ? "C_Sign's" : hex(out, n));
}

/* C_GetSessionValidationFlags' arguments. */
static void area_validation(void)
{
	set_area("validation", 60);
	vflags("S", S);
	vflags("R", R);
	CK_FLAGS f = SENTINEL_LEN;
	CK_RV rv = Q(C_GetSessionValidationFlags)(S, 0, &f);
	rec("type 0", "rv=%s flags=%s", rvn(rv), f == SENTINEL_LEN ? "unchanged" : fmt("0x%lx", f));
	f = SENTINEL_LEN;
	rv = Q(C_GetSessionValidationFlags)(S, 2, &f);
	rec("type 2", "rv=%s flags=%s", rvn(rv), f == SENTINEL_LEN ? "unchanged" : fmt("0x%lx", f));
	rrv("NULL flags", Q(C_GetSessionValidationFlags)(S, CKS_LAST_VALIDATION_OK, NULL));
	f = SENTINEL_LEN;
	rv = Q(C_GetSessionValidationFlags)(BAD_SESSION, CKS_LAST_VALIDATION_OK, &f);
	rec("bad session", "rv=%s flags=%s", rvn(rv), f == SENTINEL_LEN ? "unchanged" : fmt("0x%lx", f));
	/* Signed, then something else: the flag follows the last call. */
	minit("C_SignInit(ML-DSA)", P(C_SignInit), CKM_ML_DSA, NULL, 0, dsa_priv);
	CK_BYTE out[128];
	CK_ULONG n = sizeof out;
	rrv("C_Sign", P(C_Sign)(S, msg, SIGNED_LEN, out, &n));
	vflags("after C_Sign", S);
	vflags("R after S's C_Sign", R);
	CK_ULONG l16 = 16;
	CK_ATTRIBUTE t[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_VALUE_LEN, l16),
			    AV(CKA_TOKEN, no)};
	gen_key("validation aes", CKM_AES_KEY_GEN, NULL, 0, t, ARRAY_LEN(t));
	vflags("after C_GenerateKey", S);
}

/* Message-based signing and verifying with ML-DSA. */
static void area_msgsign(void)
{
	set_area("msgsign", 60);
	if (!(mflags(CKM_ML_DSA) & CKF_MESSAGE_SIGN)) {
		rec("ML-DSA message signing", "not offered");
		return;
	}
	CK_MECHANISM m = {CKM_ML_DSA, NULL, 0}, mc = {CKM_ML_DSA, &sctx, sizeof sctx};
	CK_BYTE out[256];
	CK_ULONG n;
	CK_RV rv;
	struct mcall c = {.fname = "C_SignMessage", .sf = F3->C_SignMessage, .s = S, .in = msg, .inlen = SIGNED_LEN};
	rrv("C_MessageSignInit(ML-DSA)", Q(C_MessageSignInit)(S, &m, dsa_priv));
	rv = mrun("C_SignMessage", &c, M_PROBE | M_DET, out, &n);
	if (rv == CKR_OK)
		same_bytes("C_SignMessage's signature is C_Sign's", out, n, sig_plain, sig_plain_n);
	vflags("C_GetSessionValidationFlags after C_SignMessage", S);
	c.param = &sctx, c.plen = sizeof sctx;
	rv = mrun("C_SignMessage with a context", &c, M_PROBE | M_DET, out, &n);
	if (rv == CKR_OK)
		same_bytes("C_SignMessage's signature with a context is C_Sign's", out, n, sig_ctx, sig_ctx_n);
	c.plen = sizeof sctx - 1;
	mrun("C_SignMessage, parameter one short", &c, M_DET, NULL, NULL);
	c.plen = sizeof sctx;
	rv = Q(C_SignMessage)(S, &sctx, sizeof sctx, msg, SIGNED_LEN, out, NULL);
	rrv("C_SignMessage(NULL length)", rv);

	/* A message in parts: Begin, Next without a length pointer (not the
	 * last part), Next with one (the last: the probe protocol). */
	rrv("C_SignMessageBegin(context)", Q(C_SignMessageBegin)(S, &sctx, sizeof sctx));
	rrv("C_SignMessageNext part 1", Q(C_SignMessageNext)(S, &sctx, sizeof sctx, msg, 20, NULL, NULL));
	mrun("C_SignMessage while a message is begun", &c, M_DET, NULL, NULL);
	rrv("C_SignMessageBegin while a message is begun", Q(C_SignMessageBegin)(S, &sctx, sizeof sctx));
	struct mcall cn = {.fname = "C_SignMessageNext", .sf = F3->C_SignMessageNext, .s = S, .param = &sctx,
			   .plen = sizeof sctx, .in = msg + 20, .inlen = SIGNED_LEN - 20};
	rv = mrun("C_SignMessageNext, last part", &cn, M_PROBE | M_DET, out, &n);
	if (rv == CKR_OK)
		same_bytes("C_SignMessageNext's signature is C_Sign's with the context", out, n, sig_ctx, sig_ctx_n);
	n = sizeof out;
	rrv("C_SignMessageNext with no message begun", Q(C_SignMessageNext)(S, NULL, 0, msg, 4, out, &n));
	rrv("C_MessageSignFinal", Q(C_MessageSignFinal)(S));
	rrv("C_MessageSignFinal again", Q(C_MessageSignFinal)(S));

	/* The init's context is the messages' default. */
	rrv("C_MessageSignInit(ML-DSA, context)", Q(C_MessageSignInit)(S, &mc, dsa_priv));
	c.param = NULL, c.plen = 0;
	rv = mrun("C_SignMessage under the init's context", &c, M_DET, out, &n);
	if (rv == CKR_OK)
		same_bytes("its signature is C_Sign's with the context", out, n, sig_ctx, sig_ctx_n);
	rrv("C_MessageSignInit while active", Q(C_MessageSignInit)(S, &m, dsa_priv));
	rrv("C_SessionCancel(CKF_MESSAGE_SIGN)", Q(C_SessionCancel)(S, CKF_MESSAGE_SIGN));
	mrun("C_SignMessage after the cancel", &c, M_DET, NULL, NULL);
	rrv("C_MessageSignInit(the public key)", Q(C_MessageSignInit)(S, &m, dsa_pub));
	rrv("C_MessageSignInit(NULL mechanism)", Q(C_MessageSignInit)(S, NULL, dsa_priv));

	/* Verification. */
	rrv("C_MessageVerifyInit(ML-DSA)", Q(C_MessageVerifyInit)(S, &m, dsa_pub));
	rrv("C_VerifyMessage", Q(C_VerifyMessage)(S, NULL, 0, msg, SIGNED_LEN, sig_plain, sig_plain_n));
	rrv("C_VerifyMessage with a context",
	    Q(C_VerifyMessage)(S, &sctx, sizeof sctx, msg, SIGNED_LEN, sig_ctx, sig_ctx_n));
	rrv("C_VerifyMessage, the context's signature without it",
	    Q(C_VerifyMessage)(S, NULL, 0, msg, SIGNED_LEN, sig_ctx, sig_ctx_n));
	rrv("C_VerifyMessage, signature one short",
	    Q(C_VerifyMessage)(S, NULL, 0, msg, SIGNED_LEN, sig_plain, sig_plain_n - 1));
	rrv("C_VerifyMessageBegin(context)", Q(C_VerifyMessageBegin)(S, &sctx, sizeof sctx));
	rrv("C_VerifyMessageNext part 1", Q(C_VerifyMessageNext)(S, &sctx, sizeof sctx, msg, 20, NULL, 0));
	rrv("C_VerifyMessageNext, last part",
	    Q(C_VerifyMessageNext)(S, &sctx, sizeof sctx, msg + 20, SIGNED_LEN - 20, sig_ctx, sig_ctx_n));
	rrv("C_VerifyMessageBegin", Q(C_VerifyMessageBegin)(S, NULL, 0));
	rrv("C_VerifyMessageNext part 1", Q(C_VerifyMessageNext)(S, NULL, 0, msg, 20, NULL, 0));
	rrv("C_VerifyMessageNext, last part, wrong signature",
	    Q(C_VerifyMessageNext)(S, NULL, 0, msg + 20, SIGNED_LEN - 20, sig_ctx, sig_ctx_n));
	rrv("C_SessionCancel(CKF_MESSAGE_VERIFY)", Q(C_SessionCancel)(S, CKF_MESSAGE_VERIFY));
	rrv("C_VerifyMessage after the cancel", Q(C_VerifyMessage)(S, NULL, 0, msg, SIGNED_LEN, sig_plain, sig_plain_n));
	rrv("C_MessageVerifyFinal after the cancel", Q(C_MessageVerifyFinal)(S));
	rrv("C_MessageVerifyInit(ML-DSA) again", Q(C_MessageVerifyInit)(S, &m, dsa_pub));
	rrv("C_MessageVerifyFinal", Q(C_MessageVerifyFinal)(S));
}

/* C_WrapKeyAuthenticated and C_UnwrapKeyAuthenticated (AES-GCM, the
 * mechanism parameter the IV). */
struct wrapcall {
	CK_MECHANISM *m;
	CK_OBJECT_HANDLE wrapping, key;
	CK_BYTE *aad;
	CK_ULONG aadlen;
};

static CK_RV wrap_do(void *ctx, CK_BYTE_PTR out, CK_ULONG_PTR len)
{
	struct wrapcall *w = ctx;
	return Q(C_WrapKeyAuthenticated)(S, w->m, w->wrapping, w->key, w->aad, w->aadlen, out, len);
}

static CK_OBJECT_HANDLE unwrap_auth(const char *step, CK_MECHANISM *m, CK_OBJECT_HANDLE u, CK_BYTE *w, CK_ULONG wl,
				    CK_ATTRIBUTE *t, CK_ULONG n, CK_BYTE *a, CK_ULONG al, const char *name)
{
	CK_OBJECT_HANDLE h = BAD_OBJECT;
	CK_RV rv = Q(C_UnwrapKeyAuthenticated)(S, m, u, w, wl, t, n, a, al, &h);
	rec(step, "rv=%s key=%s", rvn(rv), hdesc(h));
	if (rv != CKR_OK)
		return CK_INVALID_HANDLE;
	if (name)
		reg(name, h);
	return h;
}

static void area_wrapauth(void)
{
	set_area("wrapauth", 60);
	CK_MECHANISM m = {CKM_AES_GCM, iv12, sizeof iv12};
	CK_BYTE w[256], w2[256];
	CK_ULONG wl = 0, wl2 = 0;
	struct wrapcall wc = {&m, k3_aes256, k3_aes, aad, sizeof aad};
	CK_ATTRIBUTE t[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no),
			    AV(CKA_SENSITIVE, no), AV(CKA_EXTRACTABLE, yes), AS(CKA_LABEL, "unwrapped")};
	CK_RV rv = grun("C_WrapKeyAuthenticated", wrap_do, NULL, &wc, M_PROBE | M_DET, w, &wl);
	CK_OBJECT_HANDLE h = unwrap_auth("C_UnwrapKeyAuthenticated", &m, k3_aes256, w, wl, t, ARRAY_LEN(t), aad,
					 sizeof aad, "unwrapped");
	if (h) {
		CK_BYTE v[64];
		long l = get_attr(h, CKA_VALUE, v, sizeof v);
		rec("the unwrapped key's value is the wrapped key's", "%s",
		    l == sizeof aes128_v && memcmp(v, aes128_v, sizeof aes128_v) == 0 ? "yes" : "NO");
		find_label("find \"unwrapped\"", "unwrapped");
	}
	/* Without associated data. */
	wc.aad = NULL, wc.aadlen = 0;
	rv = grun("C_WrapKeyAuthenticated, no AAD", wrap_do, NULL, &wc, M_DET, w2, &wl2);
	rec("the AAD changes the wrapped key", "%s", rv == CKR_OK && wl2 == wl && memcmp(w, w2, wl) == 0 ? "no" : "yes");
	unwrap_auth("C_UnwrapKeyAuthenticated, no AAD", &m, k3_aes256, w2, wl2, t, ARRAY_LEN(t), NULL, 0,
		    "unwrapped without AAD");
	unwrap_auth("C_UnwrapKeyAuthenticated, AAD it was not wrapped with", &m, k3_aes256, w2, wl2, t, ARRAY_LEN(t),
		    aad, sizeof aad, NULL);
	unwrap_auth("C_UnwrapKeyAuthenticated, another AAD", &m, k3_aes256, w, wl, t, ARRAY_LEN(t), aad + 1,
		    sizeof aad - 1, NULL);
	w[0] ^= 0x01;
	unwrap_auth("C_UnwrapKeyAuthenticated, altered", &m, k3_aes256, w, wl, t, ARRAY_LEN(t), aad, sizeof aad, NULL);
	w[0] ^= 0x01;
	unwrap_auth("C_UnwrapKeyAuthenticated, one short", &m, k3_aes256, w, wl - 1, t, ARRAY_LEN(t), aad, sizeof aad,
		    NULL);
	unwrap_auth("C_UnwrapKeyAuthenticated, another key", &m, k3_aes, w, wl, t, ARRAY_LEN(t), aad, sizeof aad, NULL);
	CK_ATTRIBUTE tn[] = {AV(CKA_TOKEN, no)};
	unwrap_auth("C_UnwrapKeyAuthenticated, template without class", &m, k3_aes256, w, wl, tn, ARRAY_LEN(tn), aad,
		    sizeof aad, NULL);
	CK_MECHANISM m8 = {CKM_AES_GCM, iv12, 8};
	unwrap_auth("C_UnwrapKeyAuthenticated, 8-byte IV", &m8, k3_aes256, w, wl, t, ARRAY_LEN(t), aad, sizeof aad,
		    NULL);
	rv = Q(C_UnwrapKeyAuthenticated)(S, &m, k3_aes256, w, wl, t, ARRAY_LEN(t), aad, sizeof aad, NULL);
	rrv("C_UnwrapKeyAuthenticated(NULL phKey)", rv);
	unwrap_auth("C_UnwrapKeyAuthenticated, NULL AAD with a length", &m, k3_aes256, w, wl, t, ARRAY_LEN(t), NULL,
		    sizeof aad, NULL);

	/* C_WrapKeyAuthenticated's refusals. */
	wc.aad = aad, wc.aadlen = sizeof aad;
	wc.m = &m8;
	grun("C_WrapKeyAuthenticated, 8-byte IV", wrap_do, NULL, &wc, M_DET, NULL, NULL);
	wc.m = &m;
	wc.wrapping = BAD_OBJECT;
	grun("C_WrapKeyAuthenticated, bad wrapping key", wrap_do, NULL, &wc, M_DET, NULL, NULL);
	wc.wrapping = k3_aes256, wc.key = BAD_OBJECT;
	grun("C_WrapKeyAuthenticated, bad key", wrap_do, NULL, &wc, M_DET, NULL, NULL);
	wc.key = dsa_pub;
	grun("C_WrapKeyAuthenticated, a public key", wrap_do, NULL, &wc, M_DET, NULL, NULL);
	CK_ATTRIBUTE tu[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no),
			     AV(CKA_VALUE, aes128_v), AV(CKA_EXTRACTABLE, no)};
	wc.key = create("unextractable", tu, ARRAY_LEN(tu));
	grun("C_WrapKeyAuthenticated, an unextractable key", wrap_do, NULL, &wc, M_DET, NULL, NULL);
	wc.key = k3_aes, wc.aad = NULL;
	grun("C_WrapKeyAuthenticated, NULL AAD with a length", wrap_do, NULL, &wc, M_DET, NULL, NULL);
	wc.aad = aad;
	CK_ULONG len = sizeof w;
	rrv("C_WrapKeyAuthenticated(NULL mechanism)",
	    Q(C_WrapKeyAuthenticated)(S, NULL, k3_aes256, k3_aes, aad, sizeof aad, w, &len));
	rrv("C_WrapKeyAuthenticated(NULL length)",
	    Q(C_WrapKeyAuthenticated)(S, &m, k3_aes256, k3_aes, aad, sizeof aad, w, NULL));
	/* The key made by the KEM, wrapped. */
	wc.key = obj_by_name("encapsulated AES key");
	grun("C_WrapKeyAuthenticated, the encapsulated AES key", wrap_do, NULL, &wc, M_DET, NULL, NULL);
}

/* Asynchronous sessions: C_Sign and C_GenerateKey answer CKR_PENDING;
 * C_AsyncComplete polls, then puts the result into the buffer given to
 * C_Sign (or to C_AsyncJoin) and names it in CK_ASYNC_DATA.pValue. */
static const char *adata(const CK_ASYNC_DATA *d, const CK_BYTE *buf, const char *bufname)
{
	const char *pv = d->pValue == NULL ? "NULL" : d->pValue == buf ? bufname : "ANOTHER BUFFER";
	return fmt("ulVersion=%lu pValue=%s ulValue=%lu hObject=%s hAdditionalObject=%s", d->ulVersion, pv, d->ulValue,
		   hdesc(d->hObject), hdesc(d->hAdditionalObject));
}

/* Polls until the answer is not CKR_PENDING (at most 8 times). */
static CK_RV complete(const char *step, CK_SESSION_HANDLE a, const char *fn, CK_ASYNC_DATA *d, const CK_BYTE *buf,
		      size_t buflen, const char *bufname)
{
	CK_RV rv = CKR_PENDING;
	for (int i = 1; i <= 8 && rv == CKR_PENDING; i++) {
		if (d)
			memset(d, CANARY, sizeof *d);
		rv = Q(C_AsyncComplete)(a, (CK_UTF8CHAR_PTR)fn, d);
		if (rv == CKR_PENDING)
			rec(fmt("%s poll %d", step, i), "rv=%s data=%s buffer=%s", rvn(rv),
			    !d ? "NULL" : untouched((const CK_BYTE *)d, 0, sizeof *d) ? "untouched" : "WRITTEN",
			    buf ? (untouched(buf, 0, buflen) ? "untouched" : "WRITTEN") : "-");
		else if (rv == CKR_OK && d) {
			d->hObject = d->hObject == (CK_OBJECT_HANDLE)0xA5A5A5A5A5A5A5A5UL ? BAD_OBJECT : d->hObject;
			d->hAdditionalObject = d->hAdditionalObject == (CK_OBJECT_HANDLE)0xA5A5A5A5A5A5A5A5UL
						       ? BAD_OBJECT
						       : d->hAdditionalObject;
			rec(fmt("%s poll %d", step, i), "rv=%s %s", rvn(rv), adata(d, buf, bufname));
		} else
			rec(fmt("%s poll %d", step, i), "rv=%s", rvn(rv));
	}
	return rv;
}

#define ABUF 80 /* a signature's 64 bytes and 16 that must stay untouched */

static void area_async(void)
{
	set_area("async", 60);
	CK_MECHANISM m = {CKM_ML_DSA, NULL, 0};
	CK_SESSION_HANDLE A = CK_INVALID_HANDLE, A2 = CK_INVALID_HANDLE;
	static CK_BYTE b1[ABUF], b2[ABUF];
	CK_ASYNC_DATA d;
	CK_ULONG len, id;
	CK_RV rv;
	rv = P(C_OpenSession)(main_slot, CKF_SERIAL_SESSION | CKF_RW_SESSION | CKF_ASYNC_SESSION, NULL, NULL, &A);
	rec("C_OpenSession(CKF_ASYNC_SESSION)", "rv=%s distinct=%s", rvn(rv), A != S && A != R ? "yes" : "no");
	rec_session_info("session info A", A);
	rv = P(C_OpenSession)(main_slot, CKF_SERIAL_SESSION | CKF_ASYNC_SESSION, NULL, NULL, &A2);
	rec("C_OpenSession(RO, CKF_ASYNC_SESSION)", "rv=%s", rvn(rv));

	/* C_Sign: the length query answers at once; the signature is pending. */
	rrv("C_SignInit in A", P(C_SignInit)(A, &m, dsa_priv));
	len = SENTINEL_LEN;
	rv = P(C_Sign)(A, msg, SIGNED_LEN, NULL, &len);
	rec("C_Sign query", "rv=%s len=%s", rvn(rv), lens(len));
	memset(b1, CANARY, sizeof b1);
	len = 63;
	rv = P(C_Sign)(A, msg, SIGNED_LEN, b1, &len);
	rec("C_Sign short", "rv=%s len=%s buffer=%s", rvn(rv), lens(len), untouched(b1, 0, sizeof b1) ? "untouched" : "WRITTEN");
	len = 64;
	rv = P(C_Sign)(A, msg, SIGNED_LEN, b1, &len);
	rec("C_Sign", "rv=%s len=%s buffer=%s", rvn(rv), lens(len), untouched(b1, 0, sizeof b1) ? "untouched" : "WRITTEN");
	len = 64;
	rv = P(C_Sign)(A, msg, SIGNED_LEN, b2, &len);
	rrv("C_Sign again while pending", rv);
	rv = complete("C_AsyncComplete(C_Sign)", A, "C_Sign", &d, b1, 64, "the C_Sign buffer");
	if (rv == CKR_OK) {
		same_bytes("the C_Sign buffer holds the synchronous signature", b1, 64, sig_plain, sig_plain_n);
		rec("the C_Sign buffer's tail", "%s", untouched(b1, 64, sizeof b1) ? "untouched" : "WRITTEN");
	}
	rrv("C_AsyncComplete(C_Sign) again", Q(C_AsyncComplete)(A, (CK_UTF8CHAR_PTR) "C_Sign", &d));
	vflags("C_GetSessionValidationFlags(A) after the asynchronous C_Sign", A);

	/* C_AsyncGetID detaches the call; C_AsyncJoin in another session
	 * attaches it to another buffer. */
	rrv("C_SignInit in A (for C_AsyncGetID)", P(C_SignInit)(A, &m, dsa_priv));
	memset(b1, CANARY, sizeof b1);
	memset(b2, CANARY, sizeof b2);
	len = 64;
	rrv("C_Sign (to detach)", P(C_Sign)(A, msg, SIGNED_LEN, b1, &len));
	id = SENTINEL_LEN;
	rv = Q(C_AsyncGetID)(A, (CK_UTF8CHAR_PTR) "C_Sign", &id);
	rec("C_AsyncGetID(C_Sign)", "rv=%s id=%s", rvn(rv), id == SENTINEL_LEN ? "unchanged" : "set");
	note("C_AsyncGetID(C_Sign) id", "%lu", id);
	rrv("C_AsyncComplete(C_Sign) after C_AsyncGetID", Q(C_AsyncComplete)(A, (CK_UTF8CHAR_PTR) "C_Sign", &d));
	rrv("C_AsyncJoin(wrong id)", Q(C_AsyncJoin)(A2, (CK_UTF8CHAR_PTR) "C_Sign", id + 1, b2, 64));
	rrv("C_AsyncJoin(another function)", Q(C_AsyncJoin)(A2, (CK_UTF8CHAR_PTR) "C_GenerateKey", id, b2, 64));
	rrv("C_AsyncJoin(NULL buffer)", Q(C_AsyncJoin)(A2, (CK_UTF8CHAR_PTR) "C_Sign", id, NULL, 0));
	rrv("C_AsyncJoin(buffer one short)", Q(C_AsyncJoin)(A2, (CK_UTF8CHAR_PTR) "C_Sign", id, b2, 63));
	rrv("C_AsyncJoin in A2", Q(C_AsyncJoin)(A2, (CK_UTF8CHAR_PTR) "C_Sign", id, b2, 64));
	rrv("C_AsyncJoin in A2 again", Q(C_AsyncJoin)(A2, (CK_UTF8CHAR_PTR) "C_Sign", id, b2, 64));
	rrv("C_AsyncComplete(C_Sign) in A after the join", Q(C_AsyncComplete)(A, (CK_UTF8CHAR_PTR) "C_Sign", &d));
	rv = complete("C_AsyncComplete(C_Sign) in A2", A2, "C_Sign", &d, b2, 64, "the C_AsyncJoin buffer");
	if (rv == CKR_OK)
		same_bytes("the C_AsyncJoin buffer holds the synchronous signature", b2, 64, sig_plain, sig_plain_n);
	rec("the first C_Sign buffer", "%s", untouched(b1, 0, sizeof b1) ? "untouched" : "WRITTEN");

	/* C_GenerateKey: the handle comes in CK_ASYNC_DATA.hObject. */
	CK_ULONG l16 = 16;
	CK_ATTRIBUTE t[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_VALUE_LEN, l16),
			    AV(CKA_TOKEN, no), AV(CKA_SENSITIVE, no), AS(CKA_LABEL, "async key")};
	CK_MECHANISM gm = {CKM_AES_KEY_GEN, NULL, 0};
	CK_OBJECT_HANDLE h = BAD_OBJECT;
	rv = P(C_GenerateKey)(A, &gm, t, ARRAY_LEN(t), &h);
	rec("C_GenerateKey in A", "rv=%s key=%s", rvn(rv), hdesc(h));
	find_label("find \"async key\" while pending", "async key");
	rv = complete("C_AsyncComplete(C_GenerateKey)", A, "C_GenerateKey", &d, NULL, 0, "-");
	if (rv == CKR_OK && d.hObject != BAD_OBJECT && d.hObject != CK_INVALID_HANDLE) {
		reg("async key", d.hObject);
		rec_attr("async key CKA_VALUE_LEN", d.hObject, CKA_VALUE_LEN, 1);
		rec_attr("async key CKA_VALUE", d.hObject, CKA_VALUE, 1);
		find_label("find \"async key\"", "async key");
	}

	/* C_SessionCancel ends a pending call. */
	rrv("C_SignInit in A (to cancel)", P(C_SignInit)(A, &m, dsa_priv));
	memset(b1, CANARY, sizeof b1);
	len = 64;
	rrv("C_Sign (to cancel)", P(C_Sign)(A, msg, SIGNED_LEN, b1, &len));
	rrv("C_SessionCancel(CKF_SIGN)", Q(C_SessionCancel)(A, CKF_SIGN));
	rrv("C_AsyncComplete(C_Sign) after the cancel", Q(C_AsyncComplete)(A, (CK_UTF8CHAR_PTR) "C_Sign", &d));
	rec("the cancelled C_Sign's buffer", "%s", untouched(b1, 0, sizeof b1) ? "untouched" : "WRITTEN");

	/* CK_ASYNC_DATA NULL: the result still lands in the buffer. */
	rrv("C_SignInit in A (NULL data)", P(C_SignInit)(A, &m, dsa_priv));
	memset(b1, CANARY, sizeof b1);
	len = 64;
	rrv("C_Sign (NULL data)", P(C_Sign)(A, msg, SIGNED_LEN, b1, &len));
	rv = complete("C_AsyncComplete(C_Sign, NULL data)", A, "C_Sign", NULL, b1, 64, "-");
	if (rv == CKR_OK)
		same_bytes("the C_Sign buffer holds the synchronous signature (NULL data)", b1, 64, sig_plain,
			   sig_plain_n);

	/* Names and sessions. */
	rrv("C_AsyncComplete(NULL name)", Q(C_AsyncComplete)(A, NULL, &d));
	rrv("C_AsyncComplete(\"C_Bogus\")", Q(C_AsyncComplete)(A, (CK_UTF8CHAR_PTR) "C_Bogus", &d));
	rrv("C_AsyncComplete(C_Sign), nothing pending", Q(C_AsyncComplete)(A, (CK_UTF8CHAR_PTR) "C_Sign", &d));
	rrv("C_AsyncComplete(C_Sign) in a synchronous session", Q(C_AsyncComplete)(S, (CK_UTF8CHAR_PTR) "C_Sign", &d));
	rrv("C_AsyncComplete(bad session)", Q(C_AsyncComplete)(BAD_SESSION, (CK_UTF8CHAR_PTR) "C_Sign", &d));
	rrv("C_AsyncGetID(NULL id)", Q(C_AsyncGetID)(A, (CK_UTF8CHAR_PTR) "C_Sign", NULL));
	id = SENTINEL_LEN;
	rv = Q(C_AsyncGetID)(A, (CK_UTF8CHAR_PTR) "C_Sign", &id);
	rec("C_AsyncGetID(C_Sign), nothing pending", "rv=%s id=%s", rvn(rv), id == SENTINEL_LEN ? "unchanged" : "set");
	rrv("C_AsyncJoin(id 0)", Q(C_AsyncJoin)(A, (CK_UTF8CHAR_PTR) "C_Sign", 0, b2, 64));
	rrv("C_AsyncJoin(NULL name)", Q(C_AsyncJoin)(A, NULL, 1, b2, 64));

	/* A pending call dies with its session. */
	rrv("C_SignInit in A2", P(C_SignInit)(A2, &m, dsa_priv));
	len = 64;
	rrv("C_Sign in A2", P(C_Sign)(A2, msg, SIGNED_LEN, b2, &len));
	rrv("C_CloseSession(A2) with a call pending", P(C_CloseSession)(A2));
	rrv("C_AsyncComplete in the closed A2", Q(C_AsyncComplete)(A2, (CK_UTF8CHAR_PTR) "C_Sign", &d));
	rrv("C_CloseSession(A)", P(C_CloseSession)(A));
}

static void area_v32(void)
{
	area_pairs();
	area_kem();
	area_mldsa();
	area_verifysig();
	area_validation();
	area_msgsign();
	area_wrapauth();
	area_async();
}

/* ------------------------------------------------------------------ */
/* Area: C_Finalize; the interface functions after it                   */

static void area_finalize3(void)
{
	set_area("finalize", 60);
	CK_INFO info;
	rrv("C_CloseAllSessions", P(C_CloseAllSessions)(main_slot));
	rrv("C_Finalize through the 3.x list", P(C_Finalize)(NULL));
	CK_ULONG n = SENTINEL_LEN;
	hit3("C_GetInterfaceList");
	CK_RV rv = get_interface_list(NULL, &n);
	rec("C_GetInterfaceList(NULL) after C_Finalize", "rv=%s", rvn(rv));
	CK_INTERFACE tmp[MAX_IFS];
	n = MAX_IFS;
	hit3("C_GetInterfaceList");
	rv = get_interface_list(tmp, &n);
	rec("C_GetInterfaceList after C_Finalize", "rv=%s entries=%s", rvn(rv),
	    rv == CKR_OK && same_entries(tmp, n) ? "as before" : "DIFFERENT");
	gi_case("C_GetInterface(\"PKCS 11\") after C_Finalize", "PKCS 11", NULL, 0, 0);
	/* Finalized, the proxy has no host: CKR_CRYPTOKI_NOT_INITIALIZED, as the spec requires (NSS: CKR_OK). */
	rec_or_note(T->departs, "C_GetInfo after C_Finalize", "rv=%s", rvn(P(C_GetInfo)(&info)));
	/* As above: CKR_CRYPTOKI_NOT_INITIALIZED through the proxy (NSS: its fixed CKR_OPERATION_NOT_INITIALIZED). */
	rec_or_note(T->departs, "C_LoginUser after C_Finalize", "rv=%s",
		    rvn(Q(C_LoginUser)(S, CKU_USER, UPIN(T->pin), UPIN(T->user))));
	/* A second life through the same list. */
	CK_C_INITIALIZE_ARGS a;
	memset(&a, 0, sizeof a);
	a.flags = CKF_OS_LOCKING_OK;
	a.pReserved = getenv("DIFF_INIT_RESERVED");
	rrv("C_Initialize again", rv = P(C_Initialize)(&a));
	if (rv == CKR_OK) {
		memset(&info, 0, sizeof info);
		rv = P(C_GetInfo)(&info);
		rec("C_GetInfo", "rv=%s cryptoki=%d.%d", rvn(rv), info.cryptokiVersion.major, info.cryptokiVersion.minor);
		rv = P(C_OpenSession)(main_slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &S);
		rec("C_OpenSession", "rv=%s", rvn(rv));
		rrv("C_LoginUser", Q(C_LoginUser)(S, CKU_USER, UPIN(T->pin), UPIN(T->user)));
		rrv("C_SessionCancel(CKF_ENCRYPT), nothing active", Q(C_SessionCancel)(S, CKF_ENCRYPT));
		rrv("C_Finalize", P(C_Finalize)(NULL));
	}
}

/* ------------------------------------------------------------------ */
/* Area: coverage of the 3.x functions                                  */

static void area_coverage3(void)
{
	set_area("coverage", 10);
	/* The 3.2 functions only when the list has them. */
	for (size_t i = 0; i < (v32 ? ARRAY_LEN(func3_names) : N_FUNC30); i++)
		rec(func3_names[i], "%s", func3_calls[i] ? "called" : "NOT CALLED");
}

/* ------------------------------------------------------------------ */
/* The 3.x script and its supervisor                                    */

/* Loads the module (quiet: no log lines, for probes). */
static int load3(int quiet)
{
	if (!quiet)
		set_area("load", 30);
	void *lib = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		rec("dlopen", "failed");
		fprintf(stderr, "diff: dlopen %s: %s\n", module_path, dlerror());
		return -1;
	}
	get_function_list = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	get_interface_list = (get_interface_list_fn)dlsym(lib, "C_GetInterfaceList");
	get_interface = (get_interface_fn)dlsym(lib, "C_GetInterface");
	if (!quiet)
		rec("exported", "C_GetFunctionList=%s C_GetInterfaceList=%s C_GetInterface=%s",
		    get_function_list ? "yes" : "MISSING", get_interface_list ? "yes" : "MISSING",
		    get_interface ? "yes" : "MISSING");
	if (!get_function_list)
		return -1;
	hit("C_GetFunctionList");
	CK_RV rv = get_function_list(&F240);
	if (!quiet)
		rec("C_GetFunctionList", "rv=%s version=%d.%d", rvn(rv), rv == CKR_OK && F240 ? F240->version.major : -1,
		    rv == CKR_OK && F240 ? F240->version.minor : -1);
	if (rv != CKR_OK || !F240)
		return -1;
	F = F240;
	return 0;
}

/* A probe's choice of the 3.x list, with no log lines: as area_interfaces'. */
static int select3(void)
{
	CK_INTERFACE l[MAX_IFS];
	CK_ULONG n = MAX_IFS;
	CK_VERSION best = {0, 0};
	if (!get_interface_list || !get_interface || get_interface_list(l, &n) != CKR_OK)
		return -1;
	for (CK_ULONG i = 0; i < n && i < MAX_IFS; i++)
		if (std_if(&l[i]) && l[i].pFunctionList && ver_ge(list_version(l[i].pFunctionList), best.major, best.minor))
			best = list_version(l[i].pFunctionList);
	CK_INTERFACE_PTR p = NULL;
	if (!ver_ge(best, 3, 0) || get_interface((CK_UTF8CHAR_PTR) "PKCS 11", &best, &p, 0) != CKR_OK || !p ||
	    !p->pFunctionList)
		return -1;
	F3 = p->pFunctionList;
	v32 = ver_ge(list_version(F3), 3, 2);
	F = &F3->v2;
	return 0;
}

/* Probes: calls that ended a host during development, each alone in a
 * fresh process (initialized, logged in, a message encryption begun). A
 * message parameter whose length is not its structure's: the vendor
 * answers it (softokn reads a ChaCha20-Poly1305 parameter whatever its
 * length), the proxy must not misread it. */
static const struct probe3 {
	const char *name;
	CK_MECHANISM_TYPE mech;
	long delta; /* ulParameterLen - sizeof the parameter */
} probes3[] = {
	{"AES-GCM C_EncryptMessage, parameter length one short", CKM_AES_GCM, -1},
	{"AES-GCM C_EncryptMessage, parameter length 8 long", CKM_AES_GCM, 8},
	{"ChaCha20-Poly1305 C_EncryptMessage, parameter length one short", CKM_CHACHA20_POLY1305, -1},
	{"ChaCha20-Poly1305 C_EncryptMessage, parameter length 8 long", CKM_CHACHA20_POLY1305, 8},
};

static void probe3(const void *arg)
{
	const struct probe3 *pr = &probes3[*(const size_t *)arg];
	const char *n = pr->name;
	set_area("probes", 60);
	if (load3(1) || select3()) {
		rec(fmt("%s setup", n), "no 3.x list");
		_exit(2);
	}
	CK_C_INITIALIZE_ARGS a;
	memset(&a, 0, sizeof a);
	a.flags = CKF_OS_LOCKING_OK;
	a.pReserved = getenv("DIFF_INIT_RESERVED");
	CK_RV rv = P(C_Initialize)(&a);
	if (fork_mode != FORK_NONE)
		rrv(fmt("%s setup: C_Initialize in the forked child", n), rv);
	if (init_ok(rv))
		rv = CKR_OK;
	refresh_slots();
	main_slot = T->slot ? slot_by_name(T->slot) : n_slots ? slots[0].id : BAD_SLOT;
	if (rv == CKR_OK)
		rv = P(C_OpenSession)(main_slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &S);
	if (rv == CKR_OK)
		rv = P(C_Login)(S, CKU_USER, UPIN(T->pin));
	if (rv != CKR_OK) {
		rec(fmt("%s setup", n), "rv=%s", rvn(rv));
		_exit(2);
	}
	CK_MECHANISM_INFO mi;
	memset(&mi, 0, sizeof mi);
	if (P(C_GetMechanismInfo)(main_slot, pr->mech, &mi) != CKR_OK || !(mi.flags & CKF_MESSAGE_ENCRYPT)) {
		rec(n, "not offered");
		P(C_Finalize)(NULL);
		return;
	}
	CK_KEY_TYPE kt = pr->mech == CKM_AES_GCM ? CKK_AES : CKK_CHACHA20;
	CK_ATTRIBUTE t[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt), AV(CKA_TOKEN, no),
			    AP(CKA_VALUE, kt == CKK_AES ? aes128_v : generic_v + 32, kt == CKK_AES ? 16 : 32),
			    AV(CKA_ENCRYPT, yes), AV(CKA_DECRYPT, yes)};
	CK_OBJECT_HANDLE key = quiet_create(t, ARRAY_LEN(t));
	CK_MECHANISM m = {pr->mech, NULL, 0};
	rrv(fmt("%s: C_MessageEncryptInit", n), Q(C_MessageEncryptInit)(S, &m, key));
	CK_BYTE iv[12], tag[16];
	/* Room past the structure for the longer length. */
	union {
		CK_GCM_MESSAGE_PARAMS g;
		CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS c;
		CK_BYTE room[sizeof(CK_GCM_MESSAGE_PARAMS) + 16];
	} prm;
	memset(&prm, 0, sizeof prm);
	CK_ULONG size;
	if (kt == CKK_AES) {
		prm.g = (CK_GCM_MESSAGE_PARAMS){iv, sizeof iv, 0, CKG_NO_GENERATE, tag, 128};
		size = sizeof prm.g;
	} else {
		prm.c = (CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS){iv, sizeof iv, tag};
		size = sizeof prm.c;
	}
	struct mcall c = {.fname = "C_EncryptMessage", .f = F3->C_EncryptMessage, .s = S, .param = &prm,
			  .plen = (CK_ULONG)((long)size + pr->delta), .aad = aad, .aadlen = sizeof aad, .in = msg,
			  .inlen = 32, .iv = iv, .iv0 = iv12, .ivlen = sizeof iv, .tag = tag, .taglen = sizeof tag,
			  .tag_out = 1};
	/* softokn ignores the length; through the proxy the parameter crosses as opaque bytes, its pointers cleared. */
	const int opaque = T->departs && pr->mech == CKM_CHACHA20_POLY1305;
	mrun(n, &c, M_DET | (opaque ? M_NOTE : 0), NULL, NULL);
	c.plen = size;
	/* The vendor got NULL pointers: what it answered (or a dead host: CKR_DEVICE_ERROR) decides what follows. */
	mrun(fmt("%s, then C_EncryptMessage", n), &c, M_DET | (opaque ? M_NOTE : 0), NULL, NULL);
	CK_SESSION_INFO si;
	/* As above: the session is gone if the host died (a fresh host knows none of the old ones). */
	rec_or_note(opaque, fmt("%s, then C_GetSessionInfo", n), "rv=%s", rvn(P(C_GetSessionInfo)(S, &si)));
	/* Counted on every probe: the application's process lives on, and a fresh session works (on a new host if the
	 * old one died: the proxy starts one at the next call). */
	rec(fmt("%s, then the application's process", n), "alive");
	CK_SESSION_HANDLE s2 = CK_INVALID_HANDLE;
	rv = P(C_OpenSession)(main_slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s2);
	rec(fmt("%s, then a fresh session: C_OpenSession", n), "rv=%s handle=%s", rvn(rv),
	    s2 != CK_INVALID_HANDLE ? "set" : "unset");
	memset(&si, 0, sizeof si);
	rv = P(C_GetSessionInfo)(s2, &si);
	rec(fmt("%s, then a fresh session: C_GetSessionInfo", n), "rv=%s slot=%s flags=0x%lx", rvn(rv),
	    rv == CKR_OK ? slotn(si.slotID) : "-", rv == CKR_OK ? si.flags : 0);
	rrv(fmt("%s, then C_Finalize", n), P(C_Finalize)(NULL));
}

static void run3_script(const void *arg)
{
	(void)arg;
	if (load3(0))
		_exit(2);
	if (!get_interface_list || !get_interface) {
		rec("3.x section", "not run: the module exports no C_GetInterfaceList or C_GetInterface");
		_exit(2);
	}
	area_interfaces();
	if (!F3) {
		set_area("load", 30);
		rec("3.x section", "not run: no \"PKCS 11\" interface of version 3.0 or later");
		_exit(2);
	}
	area_init3();
	area_session3();
	area_login3();
	area_keys3();
	area_gcm();
	area_chacha();
	area_multipart();
	area_cancel();
	area_noinit();
	if (v32)
		area_v32();
	area_finalize3();
	area_coverage3();
}

/* ------------------------------------------------------------------ */
/* run3-forked: the 3.x script in children of a parent that used the    */
/* module. Two parents, each a process of the supervisor's (which still */
/* never loads the module), each with its own prefix on its areas:      */
/*   ifparent/    C_GetInterfaceList and C_GetInterface, no             */
/*                C_Initialize (through the proxy: a host started only  */
/*                to learn the interfaces, which a child must not use); */
/*                after the children, the list again and a C_Initialize */
/*   initparent/  C_Initialize through the 3.x list, a session, an      */
/*                AES-GCM message encryption (the caller's IV: the same */
/*                bytes every time), the session and the operation kept */
/*                across the fork; after the children, the same message */
/*                again in that session, compared with the first        */
/* Each forks the whole script and every probe, as run3 does.           */

struct fork_parent {
	int mode;
	const char *prefix;
};
static const struct fork_parent fork_parents[] = {
	{FORK_IFS, "ifparent/"},
	{FORK_INIT, "initparent/"},
};

/* A child's start: the parent's tallies and names are not the child's. */
static void child_reset(int mode)
{
	fork_mode = mode;
	memset(func_calls, 0, sizeof func_calls);
	memset(func3_calls, 0, sizeof func3_calls);
	n_objs = 0;
	F3 = NULL, F = NULL, v32 = 0;
	n_ifl = 0;
}

static const struct fork_parent *cur_parent; /* set by parent3 before it forks */

static void forked_script(const void *arg)
{
	child_reset(cur_parent->mode);
	run3_script(arg);
}

static void forked_probe(const void *arg)
{
	child_reset(cur_parent->mode);
	probe3(arg);
}

/* The parent's message: AES-GCM, the caller's IV, in parent_s. */
static CK_RV parent_message(const char *step, CK_BYTE *ct, CK_ULONG *ctlen, CK_BYTE *tag)
{
	CK_BYTE iv[12];
	CK_GCM_MESSAGE_PARAMS p = {iv, sizeof iv, 0, CKG_NO_GENERATE, tag, 128};
	struct mcall c = {.fname = "C_EncryptMessage", .f = F3->C_EncryptMessage, .s = parent_s, .param = &p,
			  .plen = sizeof p, .aad = aad, .aadlen = sizeof aad, .in = msg, .inlen = GCM_LEN,
			  .iv = iv, .iv0 = iv12, .ivlen = sizeof iv, .tag = tag, .taglen = 16, .tag_out = 1};
	return mrun(step, &c, M_DET, ct, ctlen);
}

static void parent3(const void *arg)
{
	const struct fork_parent *fp = arg;
	cur_parent = fp;
	snprintf(area_prefix, sizeof area_prefix, "%s", fp->prefix);
	set_area("parent", 60);
	if (load3(1) || !get_interface_list || !get_interface) {
		rec("load", "failed");
		_exit(2);
	}
	CK_ULONG n = SENTINEL_LEN;
	hit3("C_GetInterfaceList");
	CK_RV rv = get_interface_list(NULL, &n);
	rec("C_GetInterfaceList(NULL)", "rv=%s", rvn(rv));
	note("C_GetInterfaceList(NULL) count", "%s", lens(n)); /* the proxy offers the "PKCS 11" ones only */
	CK_INTERFACE before[MAX_IFS], after[MAX_IFS];
	CK_ULONG n_before = MAX_IFS, n_after = MAX_IFS;
	hit3("C_GetInterfaceList");
	rv = get_interface_list(before, &n_before);
	rec("C_GetInterfaceList", "rv=%s", rvn(rv));
	if (rv != CKR_OK)
		n_before = 0;
	if (select3()) {
		rec("the 3.x list", "none");
		_exit(2);
	}
	rec("C_GetInterface(\"PKCS 11\", the highest version)", "rv=CKR_OK version=%d.%d functions=%zu/%zu",
	    F3->v2.version.major, F3->v2.version.minor, nonnull_fns(F3), list_len(list_version(F3)));

	CK_BYTE ct0[OUTCAP], tag0[16], ct1[OUTCAP], tag1[16];
	CK_ULONG ct0len = 0, ct1len = 0;
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
	CK_RV rv0 = CKR_GENERAL_ERROR;
	if (fp->mode == FORK_INIT) {
		CK_C_INITIALIZE_ARGS a;
		memset(&a, 0, sizeof a);
		a.flags = CKF_OS_LOCKING_OK;
		a.pReserved = getenv("DIFF_INIT_RESERVED");
		rrv("C_Initialize through the 3.x list", rv = P(C_Initialize)(&a));
		if (rv != CKR_OK)
			_exit(2);
		refresh_slots();
		main_slot = T->slot ? slot_by_name(T->slot) : n_slots ? slots[0].id : BAD_SLOT;
		rec("the parent's slot", "%s", slotn(main_slot));
		rv = P(C_OpenSession)(main_slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &parent_s);
		rec("C_OpenSession", "rv=%s", rvn(rv));
		CK_ATTRIBUTE t[] = {AV(CKA_CLASS, cls_secret), AV(CKA_KEY_TYPE, kt_aes), AV(CKA_TOKEN, no),
				    AV(CKA_PRIVATE, no), AV(CKA_VALUE, aes128_v), AV(CKA_ENCRYPT, yes),
				    AV(CKA_DECRYPT, yes)};
		rv = P(C_CreateObject)(parent_s, t, ARRAY_LEN(t), &key);
		rec("C_CreateObject (AES-128, a session object)", "rv=%s", rvn(rv));
		CK_MECHANISM m = {CKM_AES_GCM, NULL, 0};
		rrv("C_MessageEncryptInit(AES-GCM)", Q(C_MessageEncryptInit)(parent_s, &m, key));
		rv0 = parent_message("C_EncryptMessage before the fork", ct0, &ct0len, tag0);
	}

	/* The children: the script, then every probe. */
	alarm(0);
	supervise(fmt("%s%s 3.x script", fp->prefix, T->name), forked_script, NULL);
	for (size_t i = 0; i < ARRAY_LEN(probes3); i++)
		supervise(fmt("%sprobe %s", fp->prefix, probes3[i].name), forked_probe, &i);

	/* The parent after its children. */
	set_area("parent", 60);
	hit3("C_GetInterfaceList");
	rv = get_interface_list(after, &n_after);
	int same = rv == CKR_OK && n_after == n_before;
	for (CK_ULONG i = 0; same && i < n_after; i++)
		same = after[i].pFunctionList == before[i].pFunctionList && after[i].flags == before[i].flags &&
		       after[i].pInterfaceName && before[i].pInterfaceName &&
		       strcmp((const char *)after[i].pInterfaceName, (const char *)before[i].pInterfaceName) == 0;
	rec("after the children: C_GetInterfaceList", "rv=%s entries=%s", rvn(rv), same ? "as before" : "DIFFERENT");
	CK_INFO info;
	if (fp->mode == FORK_IFS) {
		CK_C_INITIALIZE_ARGS a;
		memset(&a, 0, sizeof a);
		a.flags = CKF_OS_LOCKING_OK;
		a.pReserved = getenv("DIFF_INIT_RESERVED");
		rrv("after the children: C_Initialize through the 3.x list", rv = P(C_Initialize)(&a));
		if (rv == CKR_OK) {
			memset(&info, 0, sizeof info);
			rv = P(C_GetInfo)(&info);
			rec("after the children: C_GetInfo", "rv=%s cryptoki=%d.%d", rvn(rv), info.cryptokiVersion.major,
			    info.cryptokiVersion.minor);
			rrv("after the children: C_Finalize", P(C_Finalize)(NULL));
		}
		return;
	}
	CK_SESSION_INFO si;
	memset(&si, 0, sizeof si);
	rv = P(C_GetSessionInfo)(parent_s, &si);
	rec("after the children: C_GetSessionInfo", "rv=%s slot=%s state=%lu flags=0x%lx", rvn(rv),
	    rv == CKR_OK ? slotn(si.slotID) : "-", si.state, si.flags);
	rv = parent_message("after the children: C_EncryptMessage", ct1, &ct1len, tag1);
	if (rv0 == CKR_OK && rv == CKR_OK)
		rec("after the children: the message", "%s",
		    ct1len == ct0len && memcmp(ct0, ct1, ct0len) == 0 && memcmp(tag0, tag1, sizeof tag0) == 0
			    ? "the same ciphertext and tag as before the fork"
			    : "DIFFERENT from before the fork");
	rrv("after the children: C_MessageEncryptFinal", Q(C_MessageEncryptFinal)(parent_s));
	rrv("after the children: C_CloseSession", P(C_CloseSession)(parent_s));
	rrv("after the children: C_Finalize", P(C_Finalize)(NULL));
}

static int run3_side(const char *target, const char *module, const char *log, int forked)
{
	for (size_t i = 0; i < ARRAY_LEN(targets); i++)
		if (strcmp(targets[i].name, target) == 0)
			T = &targets[i];
	if (!T) {
		fprintf(stderr, "diff: unknown target %s\n", target);
		return 2;
	}
	module_path = module;
	logf_ = fopen(log, "a");
	if (!logf_) {
		fprintf(stderr, "diff: %s: %s\n", log, strerror(errno));
		return 2;
	}
	signal(SIGALRM, on_alarm);
	fill_inputs();
	if (forked) {
		for (size_t i = 0; i < ARRAY_LEN(fork_parents); i++)
			supervise(fmt("%sparent", fork_parents[i].prefix), parent3, &fork_parents[i]);
	} else {
		supervise(fmt("%s 3.x script", T->name), run3_script, NULL);
		for (size_t i = 0; i < ARRAY_LEN(probes3); i++)
			supervise(fmt("probe %s", probes3[i].name), probe3, &i);
	}
	fclose(logf_);
	return 0;
}

/* ------------------------------------------------------------------ */
/* compare                                                             */

struct line {
	char *area, *step, *val;
	size_t idx, occ;
	int note;
	struct line *peer;
};

struct log {
	struct line *l;
	size_t n;
};

static int load_log(const char *path, struct log *lg)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "diff: %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t cap = 1024;
	lg->l = calloc(cap, sizeof *lg->l);
	lg->n = 0;
	char *buf = NULL;
	size_t bcap = 0;
	ssize_t len;
	while ((len = getline(&buf, &bcap, f)) >= 0) {
		if (len > 0 && buf[len - 1] == '\n')
			buf[--len] = 0;
		if (len == 0)
			continue;
		if (lg->n == cap) {
			cap *= 2;
			lg->l = realloc(lg->l, cap * sizeof *lg->l);
		}
		struct line *ln = &lg->l[lg->n];
		memset(ln, 0, sizeof *ln);
		char *s = buf;
		if (*s == '#')
			ln->note = 1, s++;
		char *t1 = strchr(s, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
		if (!t2) { /* a line not of the harness: keep it whole */
			ln->area = strdup("?");
			ln->step = strdup(s);
			ln->val = strdup("");
		} else {
			*t1 = *t2 = 0;
			ln->area = strdup(s);
			ln->step = strdup(t1 + 1);
			ln->val = strdup(t2 + 1);
		}
		ln->idx = lg->n++;
	}
	free(buf);
	fclose(f);
	return 0;
}

static int key_cmp(const struct line *a, const struct line *b)
{
	int c = a->note - b->note;
	if (!c)
		c = strcmp(a->area, b->area);
	if (!c)
		c = strcmp(a->step, b->step);
	return c;
}
static int by_key_idx(const void *x, const void *y)
{
	const struct line *a = *(struct line *const *)x, *b = *(struct line *const *)y;
	int c = key_cmp(a, b);
	return c ? c : (a->idx > b->idx) - (a->idx < b->idx);
}
static int by_key_occ(const void *x, const void *y)
{
	const struct line *a = *(struct line *const *)x, *b = *(struct line *const *)y;
	int c = key_cmp(a, b);
	return c ? c : (a->occ > b->occ) - (a->occ < b->occ);
}

static struct line **sorted(struct log *lg)
{
	struct line **p = calloc(lg->n + 1, sizeof *p);
	for (size_t i = 0; i < lg->n; i++)
		p[i] = &lg->l[i];
	qsort(p, lg->n, sizeof *p, by_key_idx);
	for (size_t i = 0; i < lg->n; i++)
		p[i]->occ = i > 0 && key_cmp(p[i - 1], p[i]) == 0 ? p[i - 1]->occ + 1 : 0;
	return p;
}

struct area_count {
	char *name;
	unsigned long obs, diffs;
};
static struct area_count areas[64];
static size_t n_areas;

static struct area_count *area_of(const char *name)
{
	for (size_t i = 0; i < n_areas; i++)
		if (strcmp(areas[i].name, name) == 0)
			return &areas[i];
	if (n_areas == ARRAY_LEN(areas))
		return &areas[n_areas - 1];
	areas[n_areas].name = strdup(name);
	return &areas[n_areas++];
}

static int compare(const char *pa, const char *pb)
{
	struct log A, B;
	if (load_log(pa, &A) || load_log(pb, &B))
		return 2;
	struct line **sa = sorted(&A), **sb = sorted(&B);
	for (size_t i = 0; i < A.n; i++)
		sa[i]->occ = sa[i]->occ; /* (assigned by sorted) */
	qsort(sa, A.n, sizeof *sa, by_key_occ);
	qsort(sb, B.n, sizeof *sb, by_key_occ);
	size_t i = 0, j = 0;
	while (i < A.n && j < B.n) {
		int c = by_key_occ(&sa[i], &sb[j]);
		if (c == 0) {
			sa[i]->peer = sb[j];
			sb[j]->peer = sa[i];
			i++, j++;
		} else if (c < 0)
			i++;
		else
			j++;
	}
	unsigned long obs = 0, diffs = 0, notes = 0;
	for (size_t k = 0; k < A.n; k++) {
		struct line *a = &A.l[k];
		if (a->note) {
			if (a->peer && strcmp(a->val, a->peer->val) != 0) {
				printf("note (not counted) %s / %s\n  direct: %s\n  proxy:  %s\n", a->area, a->step, a->val,
				       a->peer->val);
				notes++;
			}
			continue;
		}
		struct area_count *ac = area_of(a->area);
		ac->obs++, obs++;
		if (!a->peer) {
			printf("DIFFERENCE %s / %s%s\n  direct: %s\n  proxy:  (no such observation)\n", a->area, a->step,
			       a->occ ? fmt(" (#%zu)", a->occ + 1) : "", a->val);
			ac->diffs++, diffs++;
		} else if (strcmp(a->val, a->peer->val) != 0) {
			printf("DIFFERENCE %s / %s%s\n  direct: %s\n  proxy:  %s\n", a->area, a->step,
			       a->occ ? fmt(" (#%zu)", a->occ + 1) : "", a->val, a->peer->val);
			ac->diffs++, diffs++;
		}
	}
	for (size_t k = 0; k < B.n; k++) {
		struct line *b = &B.l[k];
		if (b->note || b->peer)
			continue;
		struct area_count *ac = area_of(b->area);
		ac->obs++, obs++;
		printf("DIFFERENCE %s / %s%s\n  direct: (no such observation)\n  proxy:  %s\n", b->area, b->step,
		       b->occ ? fmt(" (#%zu)", b->occ + 1) : "", b->val);
		ac->diffs++, diffs++;
	}
	/* Coverage, as the direct side recorded it: the area "coverage", or
	 * (run3-forked, the same script under each parent) the first
	 * "PREFIX/coverage". */
	unsigned long fcalled = 0, fall = 0, mex = 0, mref = 0, mnot = 0;
	char refused[2048] = "", notex[2048] = "";
	const char *cov = NULL;
	for (size_t k = 0; k < A.n && !cov; k++) {
		const char *slash = strrchr(A.l[k].area, '/');
		if (!A.l[k].note && strcmp(slash ? slash + 1 : A.l[k].area, "coverage") == 0)
			cov = A.l[k].area;
	}
	for (size_t k = 0; k < A.n; k++) {
		struct line *a = &A.l[k];
		if (a->note || !cov || strcmp(a->area, cov) != 0)
			continue;
		if (strncmp(a->step, "C_", 2) == 0) {
			fall++;
			fcalled += strcmp(a->val, "called") == 0;
		} else if (strncmp(a->step, "listed ", 7) == 0) {
			const char *m = a->step + 7;
			if (strcmp(a->val, "exercised") == 0)
				mex++;
			else if (strncmp(a->val, "attempted", 9) == 0) {
				mref++;
				if (strlen(refused) + strlen(m) + 3 < sizeof refused)
					strcat(strcat(refused, " "), m);
			} else {
				mnot++;
				if (strlen(notex) + strlen(m) + 3 < sizeof notex)
					strcat(strcat(notex, " "), m);
			}
		}
	}
	printf("\ncoverage (direct side): %lu of %lu functions called; %lu mechanisms listed: %lu exercised, "
	       "%lu refused by the vendor at every use%s%s%s, %lu not exercised%s%s%s\n",
	       fcalled, fall, mex + mref + mnot, mex, mref, mref ? " (" : "", refused + (mref ? 1 : 0), mref ? ")" : "",
	       mnot, mnot ? " (" : "", notex + (mnot ? 1 : 0), mnot ? ")" : "");
	printf("\nper area:\n");
	for (size_t k = 0; k < n_areas; k++)
		printf("  %-10s %6lu observations, %lu differences\n", areas[k].name, areas[k].obs, areas[k].diffs);
	if (notes)
		printf("%lu notes differ (documented behaviour, not counted)\n", notes);
	printf("%lu observations, %lu differences\n", obs, diffs);
	return diffs ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "run") == 0)
		return run_side(argv[2], argv[3], 0);
	if (argc == 4 && strcmp(argv[1], "run-forked") == 0)
		return run_side(argv[2], argv[3], 1);
	if (argc == 5 && strcmp(argv[1], "run3") == 0)
		return run3_side(argv[2], argv[3], argv[4], 0);
	if (argc == 5 && strcmp(argv[1], "run3-forked") == 0)
		return run3_side(argv[2], argv[3], argv[4], 1);
	if (argc == 4 && strcmp(argv[1], "compare") == 0)
		return compare(argv[2], argv[3]);
	fprintf(stderr, "usage: %s run|run-forked MODULE LOG | run3|run3-forked softokn|mod32 MODULE LOG | compare DIRECT_LOG PROXY_LOG\n",
		argv[0]);
	return 2;
}
