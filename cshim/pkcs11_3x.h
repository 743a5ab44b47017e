/* The PKCS#11 3.0 and 3.2 definitions p11isolate uses that Debian's
 * <p11-kit/pkcs11.h> (0.24, a 2.40 header with a few 3.0 constants) lacks,
 * written from the OASIS specifications: PKCS#11 Base 3.0 and 3.2 and
 * Current Mechanisms 3.0 and 3.2. The function lists of 3.0 and 3.2 are not
 * here: cmd/p11gen writes them from the one table (cshim/flists_gen.h).
 *
 * Layouts are the specifications' (LP64: CK_ULONG and pointers 8 bytes).
 * internal/mechparams' layout test compiles the parameter structures below
 * and checks them against its registry, and the 3.0 ones against NSS's
 * <nss/pkcs11t.h> as well. */
#ifndef P11ISOLATE_PKCS11_3X_H
#define P11ISOLATE_PKCS11_3X_H

#include <p11-kit/pkcs11.h>

#ifndef CKF_INTERFACE_FORK_SAFE
/* ---- PKCS#11 3.0 ---- */

/* C_GetInterfaceList and C_GetInterface. */
typedef struct CK_INTERFACE {
	CK_UTF8CHAR_PTR pInterfaceName;
	CK_VOID_PTR pFunctionList; /* a function list whose first field is its CK_VERSION */
	CK_FLAGS flags;
} CK_INTERFACE;
typedef CK_INTERFACE *CK_INTERFACE_PTR;
typedef CK_INTERFACE_PTR *CK_INTERFACE_PTR_PTR;
#define CKF_INTERFACE_FORK_SAFE 0x00000001UL

/* The message-based functions. */
#define CKF_END_OF_MESSAGE 0x00000001UL
typedef CK_ULONG CK_GENERATOR_FUNCTION;
#define CKG_NO_GENERATE 0x00000000UL
#define CKG_GENERATE 0x00000001UL
#define CKG_GENERATE_COUNTER 0x00000002UL
#define CKG_GENERATE_RANDOM 0x00000003UL
#define CKG_GENERATE_COUNTER_XOR 0x00000004UL

/* Mechanism-info flags of the message-based functions. */
#define CKF_MESSAGE_ENCRYPT 0x00000002UL
#define CKF_MESSAGE_DECRYPT 0x00000004UL
#define CKF_MESSAGE_SIGN 0x00000008UL
#define CKF_MESSAGE_VERIFY 0x00000010UL
#define CKF_MULTI_MESSAGE 0x00000020UL
#define CKF_FIND_OBJECTS 0x00000040UL

/* C_SessionCancel's flags are the mechanism-info flags of the operations
 * cancelled (CKF_ENCRYPT, CKF_MESSAGE_SIGN, ...). */

typedef struct CK_GCM_MESSAGE_PARAMS {
	CK_BYTE_PTR pIv;
	CK_ULONG ulIvLen;
	CK_ULONG ulIvFixedBits;
	CK_GENERATOR_FUNCTION ivGenerator;
	CK_BYTE_PTR pTag;
	CK_ULONG ulTagBits;
} CK_GCM_MESSAGE_PARAMS;

typedef struct CK_CCM_MESSAGE_PARAMS {
	CK_ULONG ulDataLen;
	CK_BYTE_PTR pNonce;
	CK_ULONG ulNonceLen;
	CK_ULONG ulNonceFixedBits;
	CK_GENERATOR_FUNCTION nonceGenerator;
	CK_BYTE_PTR pMAC;
	CK_ULONG ulMACLen;
} CK_CCM_MESSAGE_PARAMS;

typedef struct CK_CHACHA20_PARAMS {
	CK_BYTE_PTR pBlockCounter;
	CK_ULONG blockCounterBits;
	CK_BYTE_PTR pNonce;
	CK_ULONG ulNonceBits;
} CK_CHACHA20_PARAMS;

typedef struct CK_SALSA20_PARAMS {
	CK_BYTE_PTR pBlockCounter;
	CK_BYTE_PTR pNonce;
	CK_ULONG ulNonceBits;
} CK_SALSA20_PARAMS;

typedef struct CK_SALSA20_CHACHA20_POLY1305_PARAMS {
	CK_BYTE_PTR pNonce;
	CK_ULONG ulNonceLen;
	CK_BYTE_PTR pAAD;
	CK_ULONG ulAADLen;
} CK_SALSA20_CHACHA20_POLY1305_PARAMS;

typedef struct CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS {
	CK_BYTE_PTR pNonce;
	CK_ULONG ulNonceLen;
	CK_BYTE_PTR pTag; /* 16 bytes */
} CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS;

#define CKF_HKDF_SALT_NULL 0x00000001UL
#define CKF_HKDF_SALT_DATA 0x00000002UL
#define CKF_HKDF_SALT_KEY 0x00000004UL
typedef struct CK_HKDF_PARAMS {
	CK_BBOOL bExtract;
	CK_BBOOL bExpand;
	CK_MECHANISM_TYPE prfHashMechanism;
	CK_ULONG ulSaltType;
	CK_BYTE_PTR pSalt;
	CK_ULONG ulSaltLen;
	CK_OBJECT_HANDLE hSaltKey;
	CK_BYTE_PTR pInfo;
	CK_ULONG ulInfoLen;
} CK_HKDF_PARAMS;

/* NIST SP 800-108 key derivation. A data parameter's pValue is, by type:
 * a CK_SP800_108_COUNTER_FORMAT (ITERATION_VARIABLE in counter mode, or
 * NULL in the feedback and pipeline modes; OPTIONAL_COUNTER), a
 * CK_SP800_108_DKM_LENGTH_FORMAT, or ulValueLen bytes (BYTE_ARRAY). */
typedef CK_ULONG CK_PRF_DATA_TYPE;
typedef CK_MECHANISM_TYPE CK_SP800_108_PRF_TYPE;
#define CK_SP800_108_ITERATION_VARIABLE 0x00000001UL
#define CK_SP800_108_OPTIONAL_COUNTER 0x00000002UL
#define CK_SP800_108_DKM_LENGTH 0x00000003UL
#define CK_SP800_108_BYTE_ARRAY 0x00000004UL
typedef struct CK_PRF_DATA_PARAM {
	CK_PRF_DATA_TYPE type;
	CK_VOID_PTR pValue;
	CK_ULONG ulValueLen;
} CK_PRF_DATA_PARAM;

typedef struct CK_SP800_108_COUNTER_FORMAT {
	CK_BBOOL bLittleEndian;
	CK_ULONG ulWidthInBits;
} CK_SP800_108_COUNTER_FORMAT;

typedef CK_ULONG CK_SP800_108_DKM_LENGTH_METHOD;
#define CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS 0x00000001UL
#define CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS 0x00000002UL
typedef struct CK_SP800_108_DKM_LENGTH_FORMAT {
	CK_SP800_108_DKM_LENGTH_METHOD dkmLengthMethod;
	CK_BBOOL bLittleEndian;
	CK_ULONG ulWidthInBits;
} CK_SP800_108_DKM_LENGTH_FORMAT;

/* An additional key a derivation makes: its template, and where its
 * handle goes. */
typedef struct CK_DERIVED_KEY {
	CK_ATTRIBUTE_PTR pTemplate;
	CK_ULONG ulAttributeCount;
	CK_OBJECT_HANDLE_PTR phKey;
} CK_DERIVED_KEY;

typedef struct CK_SP800_108_KDF_PARAMS {
	CK_SP800_108_PRF_TYPE prfType;
	CK_ULONG ulNumberOfDataParams;
	CK_PRF_DATA_PARAM *pDataParams;
	CK_ULONG ulAdditionalDerivedKeys;
	CK_DERIVED_KEY *pAdditionalDerivedKeys;
} CK_SP800_108_KDF_PARAMS;

typedef struct CK_SP800_108_FEEDBACK_KDF_PARAMS {
	CK_SP800_108_PRF_TYPE prfType;
	CK_ULONG ulNumberOfDataParams;
	CK_PRF_DATA_PARAM *pDataParams;
	CK_ULONG ulIVLen;
	CK_BYTE_PTR pIV;
	CK_ULONG ulAdditionalDerivedKeys;
	CK_DERIVED_KEY *pAdditionalDerivedKeys;
} CK_SP800_108_FEEDBACK_KDF_PARAMS;

#ifndef CKM_EDDSA
#define CKM_EDDSA 0x00001057UL
#endif
typedef struct CK_EDDSA_PARAMS {
	CK_BBOOL phFlag;
	CK_ULONG ulContextDataLen;
	CK_BYTE_PTR pContextData;
} CK_EDDSA_PARAMS;

typedef CK_ULONG CK_XEDDSA_HASH_TYPE;
typedef struct CK_XEDDSA_PARAMS {
	CK_XEDDSA_HASH_TYPE hash;
} CK_XEDDSA_PARAMS;

/* IKE key derivation. */
typedef struct CK_IKE_PRF_DERIVE_PARAMS {
	CK_MECHANISM_TYPE prfMechanism;
	CK_BBOOL bDataAsKey;
	CK_BBOOL bRekey;
	CK_BYTE_PTR pNi;
	CK_ULONG ulNiLen;
	CK_BYTE_PTR pNr;
	CK_ULONG ulNrLen;
	CK_OBJECT_HANDLE hNewKey;
} CK_IKE_PRF_DERIVE_PARAMS;

typedef struct CK_IKE1_PRF_DERIVE_PARAMS {
	CK_MECHANISM_TYPE prfMechanism;
	CK_BBOOL bHasPrevKey;
	CK_OBJECT_HANDLE hKeygxy;
	CK_OBJECT_HANDLE hPrevKey;
	CK_BYTE_PTR pCKYi;
	CK_ULONG ulCKYiLen;
	CK_BYTE_PTR pCKYr;
	CK_ULONG ulCKYrLen;
	CK_BYTE keyNumber;
} CK_IKE1_PRF_DERIVE_PARAMS;

typedef struct CK_IKE1_EXTENDED_DERIVE_PARAMS {
	CK_MECHANISM_TYPE prfMechanism;
	CK_BBOOL bHasKeygxy;
	CK_OBJECT_HANDLE hKeygxy;
	CK_BYTE_PTR pExtraData;
	CK_ULONG ulExtraDataLen;
} CK_IKE1_EXTENDED_DERIVE_PARAMS;

typedef struct CK_IKE2_PRF_PLUS_DERIVE_PARAMS {
	CK_MECHANISM_TYPE prfMechanism;
	CK_BBOOL bHasSeedKey;
	CK_OBJECT_HANDLE hSeedKey;
	CK_BYTE_PTR pSeedData;
	CK_ULONG ulSeedDataLen;
} CK_IKE2_PRF_PLUS_DERIVE_PARAMS;

/* TLS 1.2 extended master secret (RFC 7627). */
typedef struct CK_TLS12_EXTENDED_MASTER_KEY_DERIVE_PARAMS {
	CK_MECHANISM_TYPE prfHashMechanism;
	CK_BYTE_PTR pSessionHash;
	CK_ULONG ulSessionHashLen;
	CK_VERSION_PTR pVersion; /* the vendor writes the version */
} CK_TLS12_EXTENDED_MASTER_KEY_DERIVE_PARAMS;

/* 3.0 mechanisms (those the 2.40 header lacks). */
#define CKM_CHACHA20_KEY_GEN 0x00001225UL
#define CKM_CHACHA20 0x00001226UL
#define CKM_POLY1305_KEY_GEN 0x00001227UL
#define CKM_POLY1305 0x00001228UL
#define CKM_SP800_108_COUNTER_KDF 0x000003acUL
#define CKM_SP800_108_FEEDBACK_KDF 0x000003adUL
#define CKM_SP800_108_DOUBLE_PIPELINE_KDF 0x000003aeUL
#define CKM_SALSA20 0x00004020UL
#define CKM_CHACHA20_POLY1305 0x00004021UL
#define CKM_SALSA20_POLY1305 0x00004022UL
#define CKM_XEDDSA 0x00004029UL
#define CKM_HKDF_DERIVE 0x0000402aUL
#define CKM_HKDF_DATA 0x0000402bUL
#define CKM_HKDF_KEY_GEN 0x0000402cUL
#define CKM_SALSA20_KEY_GEN 0x0000402dUL
#define CKM_IKE2_PRF_PLUS_DERIVE 0x0000402eUL
#define CKM_IKE_PRF_DERIVE 0x0000402fUL
#define CKM_IKE1_PRF_DERIVE 0x00004030UL
#define CKM_IKE1_EXTENDED_DERIVE 0x00004031UL
#endif /* PKCS#11 3.0 */

#ifndef CKR_PENDING
/* ---- PKCS#11 3.2 ---- */

/* Asynchronous sessions (C_OpenSession's flags) and their functions. */
#define CKF_ASYNC_SESSION 0x00000008UL
#define CKR_OPERATION_CANCEL_FAILED 0x00000202UL
#define CKR_PENDING 0x00000204UL
#define CKR_SESSION_ASYNC_NOT_SUPPORTED 0x00000205UL
typedef struct CK_ASYNC_DATA {
	CK_ULONG ulVersion;
	CK_BYTE_PTR pValue; /* the output buffer of the call completed */
	CK_ULONG ulValue;
	CK_OBJECT_HANDLE hObject;
	CK_OBJECT_HANDLE hAdditionalObject;
} CK_ASYNC_DATA;
typedef CK_ASYNC_DATA *CK_ASYNC_DATA_PTR;

typedef CK_ULONG CK_SESSION_VALIDATION_FLAGS_TYPE;

/* Key encapsulation: the templates of the keys C_EncapsulateKey and
 * C_DecapsulateKey make hold nested templates like CKA_WRAP_TEMPLATE. */
#define CKA_ENCAPSULATE_TEMPLATE 0x0000062aUL
#define CKA_DECAPSULATE_TEMPLATE 0x0000062bUL
#define CKF_ENCAPSULATE 0x10000000UL
#define CKF_DECAPSULATE 0x20000000UL

/* Signature context of ML-DSA, SLH-DSA and their pre-hash forms. */
typedef CK_ULONG CK_HEDGE_TYPE;
#define CKH_HEDGE_PREFERRED 0x00000000UL
#define CKH_HEDGE_REQUIRED 0x00000001UL
#define CKH_DETERMINISTIC_REQUIRED 0x00000002UL
typedef struct CK_SIGN_ADDITIONAL_CONTEXT {
	CK_HEDGE_TYPE hedgeVariant;
	CK_BYTE_PTR pContext;
	CK_ULONG ulContextLen;
} CK_SIGN_ADDITIONAL_CONTEXT;

typedef struct CK_HASH_SIGN_ADDITIONAL_CONTEXT {
	CK_HEDGE_TYPE hedgeVariant;
	CK_BYTE_PTR pContext;
	CK_ULONG ulContextLen;
	CK_MECHANISM_TYPE hash;
} CK_HASH_SIGN_ADDITIONAL_CONTEXT;

/* Authenticated key wrapping with AES-GCM and AES-CCM. */
typedef struct CK_GCM_WRAP_PARAMS {
	CK_BYTE_PTR pIv;
	CK_ULONG ulIvLen;
	CK_ULONG ulIvFixedBits;
	CK_GENERATOR_FUNCTION ivGenerator;
	CK_BYTE_PTR pAAD;
	CK_ULONG ulAADLen;
	CK_ULONG ulTagBits;
} CK_GCM_WRAP_PARAMS;

typedef struct CK_CCM_WRAP_PARAMS {
	CK_ULONG ulDataLen;
	CK_BYTE_PTR pNonce;
	CK_ULONG ulNonceLen;
	CK_ULONG ulNonceFixedBits;
	CK_GENERATOR_FUNCTION nonceGenerator;
	CK_BYTE_PTR pAAD;
	CK_ULONG ulAADLen;
	CK_ULONG ulMACLen;
} CK_CCM_WRAP_PARAMS;

/* 3.2 key types and mechanisms. */
#define CKK_ML_KEM 0x00000049UL
#define CKM_ML_KEM_KEY_PAIR_GEN 0x0000000fUL
#define CKM_ML_KEM 0x00000017UL
#define CKM_ML_DSA_KEY_PAIR_GEN 0x0000001cUL
#define CKM_ML_DSA 0x0000001dUL
#define CKM_HASH_ML_DSA 0x0000001fUL
#define CKM_HASH_ML_DSA_SHA224 0x00000023UL
#define CKM_HASH_ML_DSA_SHA256 0x00000024UL
#define CKM_HASH_ML_DSA_SHA384 0x00000025UL
#define CKM_HASH_ML_DSA_SHA512 0x00000026UL
#define CKM_HASH_ML_DSA_SHA3_224 0x00000027UL
#define CKM_HASH_ML_DSA_SHA3_256 0x00000028UL
#define CKM_HASH_ML_DSA_SHA3_384 0x00000029UL
#define CKM_HASH_ML_DSA_SHA3_512 0x0000002aUL
#define CKM_HASH_ML_DSA_SHAKE128 0x0000002bUL
#define CKM_HASH_ML_DSA_SHAKE256 0x0000002cUL
#define CKM_SLH_DSA_KEY_PAIR_GEN 0x0000002dUL
#define CKM_SLH_DSA 0x0000002eUL
#endif /* PKCS#11 3.2 */

#endif
