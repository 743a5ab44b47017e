package mechparams

// The parameters of PKCS#11 3.0 and 3.2 (Current Mechanisms 3.0 and 3.2):
// their layouts, the mechanisms that take them, and the message-based
// functions' per-message parameters. cshim/pkcs11_3x.h defines the C side;
// the layout tests compile these against it and against NSS's 3.0 header.

import p11 "github.com/miekg/pkcs11"

// Mechanisms of PKCS#11 3.0 and 3.2 that miekg/pkcs11's 2.40 table lacks.
const (
	// 3.0
	ckmSP800108CounterKDF        = 0x3ac
	ckmSP800108FeedbackKDF       = 0x3ad
	ckmSP800108DoublePipelineKDF = 0x3ae
	ckmECDSASHA3_224             = 0x1047
	ckmECDSASHA3_256             = 0x1048
	ckmECDSASHA3_384             = 0x1049
	ckmECDSASHA3_512             = 0x104a
	ckmECKeyPairGenWExtraBits    = 0x140b
	ckmChaCha20KeyGen            = 0x1225
	ckmChaCha20                  = 0x1226
	ckmPoly1305KeyGen            = 0x1227
	ckmPoly1305                  = 0x1228
	ckmAESKeyWrapKWP             = 0x210b
	ckmSHA1KeyGen                = 0x4003
	ckmSHA224KeyGen              = 0x4004
	ckmSHA256KeyGen              = 0x4005
	ckmSHA384KeyGen              = 0x4006
	ckmSHA512KeyGen              = 0x4007
	ckmSHA512_224KeyGen          = 0x4008
	ckmSHA512_256KeyGen          = 0x4009
	ckmSHA512TKeyGen             = 0x400a
	ckmNull                      = 0x400b
	ckmBLAKE2b160                = 0x400c // the BLAKE2b family: digest, HMAC, HMAC_GENERAL, KEY_DERIVE, KEY_GEN
	ckmBLAKE2b256                = 0x4011
	ckmBLAKE2b384                = 0x4016
	ckmBLAKE2b512                = 0x401b
	ckmSalsa20                   = 0x4020
	ckmChaCha20Poly1305          = 0x4021
	ckmSalsa20Poly1305           = 0x4022
	ckmX3DHInitialize            = 0x4023
	ckmX3DHRespond               = 0x4024
	ckmX2RatchetInitialize       = 0x4025
	ckmX2RatchetRespond          = 0x4026
	ckmX2RatchetEncrypt          = 0x4027
	ckmX2RatchetDecrypt          = 0x4028
	ckmXEdDSA                    = 0x4029
	ckmHKDFDerive                = 0x402a
	ckmHKDFData                  = 0x402b
	ckmHKDFKeyGen                = 0x402c
	ckmSalsa20KeyGen             = 0x402d
	ckmIKE2PRFPlusDerive         = 0x402e
	ckmIKEPRFDerive              = 0x402f
	ckmIKE1PRFDerive             = 0x4030
	ckmIKE1ExtendedDerive        = 0x4031
	ckmHSSKeyPairGen             = 0x4032
	ckmHSS                       = 0x4033
	ckmXMSSKeyPairGen            = 0x4034
	ckmXMSSMTKeyPairGen          = 0x4035
	ckmXMSS                      = 0x4036
	ckmXMSSMT                    = 0x4037
	ckmECDHXAESKeyWrap           = 0x4038
	ckmECDHCofAESKeyWrap         = 0x4039
	ckmPubKeyFromPrivKey         = 0x403a

	// 3.2
	ckmMLKEMKeyPairGen                = 0x0f
	ckmMLKEM                          = 0x17
	ckmMLDSAKeyPairGen                = 0x1c
	ckmMLDSA                          = 0x1d
	ckmHashMLDSA                      = 0x1f
	ckmHashMLDSASHA224                = 0x23 // through 0x2c: SHA-2, SHA-3 and SHAKE pre-hashes
	ckmHashMLDSASHAKE256              = 0x2c
	ckmSLHDSAKeyPairGen               = 0x2d
	ckmSLHDSA                         = 0x2e
	ckmHashSLHDSA                     = 0x34
	ckmHashSLHDSASHA224               = 0x36 // through 0x3f, as ML-DSA's
	ckmHashSLHDSASHAKE256             = 0x3f
	ckmTLS12ExtendedMasterKeyDerive   = 0x56
	ckmTLS12ExtendedMasterKeyDeriveDH = 0x57
	ckmAESXTS                         = 0x1071
	ckmAESXTSKeyGen                   = 0x1072
	ckmAESKeyWrapPKCS7                = 0x210c
)

// CK_PRF_DATA_PARAM's types (SP 800-108).
const (
	sp800108IterationVariable = 1
	sp800108OptionalCounter   = 2
	sp800108DKMLength         = 3
	sp800108ByteArray         = 4
)

// span lists the mechanisms from first to last.
func span(first, last uint64) []uint64 {
	var out []uint64
	for m := first; m <= last; m++ {
		out = append(out, m)
	}
	return out
}

// blake2b lists the BLAKE2b mechanisms of one digest length (its digest's
// value first): digest, HMAC, HMAC_GENERAL, KEY_DERIVE, KEY_GEN.
func blake2b(digest uint64, which ...int) []uint64 {
	var out []uint64
	for _, i := range which {
		out = append(out, digest+uint64(i))
	}
	return out
}

// The BLAKE2b mechanisms' offsets from their digest's.
const (
	b2Digest, b2HMAC, b2HMACGeneral, b2KeyDerive, b2KeyGen = 0, 1, 2, 3, 4
)

var (
	ChaCha20Params = layout("CK_CHACHA20_PARAMS",
		bitsPtr("pBlockCounter", 1), ulong("blockCounterBits"),
		bitsPtr("pNonce", 3), ulong("ulNonceBits"))
	// Salsa20Params: Salsa20's block counter is 64 bits, always.
	Salsa20Params = layout("CK_SALSA20_PARAMS",
		fixedPtr("pBlockCounter", 8), bitsPtr("pNonce", 2), ulong("ulNonceBits"))
	Salsa20ChaCha20Poly1305Params = layout("CK_SALSA20_CHACHA20_POLY1305_PARAMS",
		ptr("pNonce", 1), ulong("ulNonceLen"), ptr("pAAD", 3), ulong("ulAADLen"))

	HKDFParams = layout("CK_HKDF_PARAMS",
		byteField("bExtract"), byteField("bExpand"), ulong("prfHashMechanism"),
		ulong("ulSaltType"), ptr("pSalt", 5), ulong("ulSaltLen"), handle("hSaltKey"),
		ptr("pInfo", 8), ulong("ulInfoLen"))
	XEdDSAParams = layout("CK_XEDDSA_PARAMS", ulong("hash"))

	IKEPRFDeriveParams = layout("CK_IKE_PRF_DERIVE_PARAMS",
		ulong("prfMechanism"), byteField("bDataAsKey"), byteField("bRekey"),
		ptr("pNi", 4), ulong("ulNiLen"), ptr("pNr", 6), ulong("ulNrLen"), handle("hNewKey"))
	IKE1PRFDeriveParams = layout("CK_IKE1_PRF_DERIVE_PARAMS",
		ulong("prfMechanism"), byteField("bHasPrevKey"), handle("hKeygxy"), handle("hPrevKey"),
		ptr("pCKYi", 5), ulong("ulCKYiLen"), ptr("pCKYr", 7), ulong("ulCKYrLen"), byteField("keyNumber"))
	IKE1ExtendedDeriveParams = layout("CK_IKE1_EXTENDED_DERIVE_PARAMS",
		ulong("prfMechanism"), byteField("bHasKeygxy"), handle("hKeygxy"),
		ptr("pExtraData", 4), ulong("ulExtraDataLen"))
	IKE2PRFPlusDeriveParams = layout("CK_IKE2_PRF_PLUS_DERIVE_PARAMS",
		ulong("prfMechanism"), byteField("bHasSeedKey"), handle("hSeedKey"),
		ptr("pSeedData", 4), ulong("ulSeedDataLen"))

	SignAdditionalContext = layout("CK_SIGN_ADDITIONAL_CONTEXT",
		ulong("hedgeVariant"), ptr("pContext", 2), ulong("ulContextLen"))
	HashSignAdditionalContext = layout("CK_HASH_SIGN_ADDITIONAL_CONTEXT",
		ulong("hedgeVariant"), ptr("pContext", 2), ulong("ulContextLen"), ulong("hash"))

	TLS12ExtendedMasterKeyDeriveParams = layout("CK_TLS12_EXTENDED_MASTER_KEY_DERIVE_PARAMS",
		// pVersion: the client's version the vendor reads from the pre-master
		// secret, as for CKM_TLS12_MASTER_KEY_DERIVE (NULL for the _DH form).
		ulong("prfHashMechanism"), ptr("pSessionHash", 2), ulong("ulSessionHashLen"),
		nestedPtr("pVersion", versionOut))

	// GCMWrapParams and CCMWrapParams are PKCS#11 3.2's parameters of
	// CKM_AES_GCM and CKM_AES_CCM in C_WrapKey and C_UnwrapKey, told from
	// CK_GCM_PARAMS and CK_CCM_PARAMS by size (see LookupSize). With an IV
	// (nonce) generator the vendor writes the IV it made.
	GCMWrapParams = layout("CK_GCM_WRAP_PARAMS",
		ptr("pIv", 1).inOut(), ulong("ulIvLen"), ulong("ulIvFixedBits"), ulong("ivGenerator"),
		ptr("pAAD", 5), ulong("ulAADLen"), ulong("ulTagBits"))
	CCMWrapParams = layout("CK_CCM_WRAP_PARAMS",
		ulong("ulDataLen"), ptr("pNonce", 2).inOut(), ulong("ulNonceLen"), ulong("ulNonceFixedBits"),
		ulong("nonceGenerator"), ptr("pAAD", 6), ulong("ulAADLen"), ulong("ulMACLen"))

	// The message-based functions' per-message parameters. The vendor
	// writes the IV (nonce) when its generator is not CKG_NO_GENERATE, and
	// the tag (MAC) when encrypting; decryption reads the tag. Both cross
	// in and back: a buffer the vendor did not write comes back as it went.
	GCMMessageParams = layout("CK_GCM_MESSAGE_PARAMS",
		ptr("pIv", 1).inOut(), ulong("ulIvLen"), ulong("ulIvFixedBits"), ulong("ivGenerator"),
		bitsPtr("pTag", 5).inOut(), ulong("ulTagBits"))
	CCMMessageParams = layout("CK_CCM_MESSAGE_PARAMS",
		ulong("ulDataLen"), ptr("pNonce", 2).inOut(), ulong("ulNonceLen"),
		ulong("ulNonceFixedBits"), ulong("nonceGenerator"), ptr("pMAC", 6).inOut(), ulong("ulMACLen"))
	// Salsa20ChaCha20Poly1305MsgParams: the Poly1305 tag is 16 bytes.
	Salsa20ChaCha20Poly1305MsgParams = layout("CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS",
		ptr("pNonce", 1), ulong("ulNonceLen"), fixedPtr("pTag", 16).inOut())

	// NIST SP 800-108 key derivation (3.0).
	SP800108CounterFormat = layout("CK_SP800_108_COUNTER_FORMAT",
		byteField("bLittleEndian"), ulong("ulWidthInBits"))
	SP800108DKMLengthFormat = layout("CK_SP800_108_DKM_LENGTH_FORMAT",
		ulong("dkmLengthMethod"), byteField("bLittleEndian"), ulong("ulWidthInBits"))
	// PRFDataParam's pValue is what its type says; the iteration variable
	// of the feedback and double-pipeline modes is NULL (ulValueLen 0),
	// which a UnionPtr carries as NULL whatever the type.
	PRFDataParam = layout("CK_PRF_DATA_PARAM",
		ulong("type"),
		union("pValue", 0, 2,
			Case{sp800108IterationVariable, SP800108CounterFormat},
			Case{sp800108OptionalCounter, SP800108CounterFormat},
			Case{sp800108DKMLength, SP800108DKMLengthFormat},
			Case{sp800108ByteArray, nil}),
		ulong("ulValueLen"))
	// DerivedKey is one additional key a derivation makes: the vendor
	// writes its handle to phKey.
	DerivedKey = layout("CK_DERIVED_KEY",
		template("pTemplate", 1), ulong("ulAttributeCount"), handleOut("phKey"))
	SP800108KDFParams = layout("CK_SP800_108_KDF_PARAMS",
		ulong("prfType"), ulong("ulNumberOfDataParams"), array("pDataParams", PRFDataParam, 1),
		ulong("ulAdditionalDerivedKeys"), array("pAdditionalDerivedKeys", DerivedKey, 3))
	SP800108FeedbackKDFParams = layout("CK_SP800_108_FEEDBACK_KDF_PARAMS",
		ulong("prfType"), ulong("ulNumberOfDataParams"), array("pDataParams", PRFDataParam, 1),
		ulong("ulIVLen"), ptr("pIV", 3),
		ulong("ulAdditionalDerivedKeys"), array("pAdditionalDerivedKeys", DerivedKey, 5))
)

// structured3 maps each 3.x layout to the mechanisms that take it.
var structured3 = []struct {
	l     *Layout
	mechs []uint64
}{
	{ChaCha20Params, []uint64{ckmChaCha20}},
	{Salsa20Params, []uint64{ckmSalsa20}},
	{Salsa20ChaCha20Poly1305Params, []uint64{ckmChaCha20Poly1305, ckmSalsa20Poly1305}},
	{HKDFParams, []uint64{ckmHKDFDerive, ckmHKDFData}},
	{XEdDSAParams, []uint64{ckmXEdDSA}},
	{IKEPRFDeriveParams, []uint64{ckmIKEPRFDerive}},
	{IKE1PRFDeriveParams, []uint64{ckmIKE1PRFDerive}},
	{IKE1ExtendedDeriveParams, []uint64{ckmIKE1ExtendedDerive}},
	{IKE2PRFPlusDeriveParams, []uint64{ckmIKE2PRFPlusDerive}},
	// ML-DSA and SLH-DSA, pure or signing a message they hash themselves
	// (HASH_ML_DSA_SHA256, ...): a context and the hedging.
	{SignAdditionalContext, append(append([]uint64{ckmMLDSA, ckmSLHDSA},
		span(ckmHashMLDSASHA224, ckmHashMLDSASHAKE256)...), span(ckmHashSLHDSASHA224, ckmHashSLHDSASHAKE256)...)},
	// The pre-hashed forms: the caller names the hash it used.
	{HashSignAdditionalContext, []uint64{ckmHashMLDSA, ckmHashSLHDSA}},
	{TLS12ExtendedMasterKeyDeriveParams, []uint64{ckmTLS12ExtendedMasterKeyDerive, ckmTLS12ExtendedMasterKeyDeriveDH}},
	// 3.2's Montgomery and cofactor forms of CKM_ECDH_AES_KEY_WRAP.
	{ECDHAESKeyWrapParams, []uint64{ckmECDHXAESKeyWrap, ckmECDHCofAESKeyWrap}},
	{MACGeneralParams, []uint64{
		ckmBLAKE2b160 + b2HMACGeneral, ckmBLAKE2b256 + b2HMACGeneral,
		ckmBLAKE2b384 + b2HMACGeneral, ckmBLAKE2b512 + b2HMACGeneral}},
	{SP800108KDFParams, []uint64{ckmSP800108CounterKDF, ckmSP800108DoublePipelineKDF}},
	{SP800108FeedbackKDFParams, []uint64{ckmSP800108FeedbackKDF}},
}

// alternates are other structures a mechanism's parameter may be, told
// from its own by size (LookupSize).
var alternates = []struct {
	l     *Layout
	mechs []uint64
}{
	{GCMWrapParams, []uint64{p11.CKM_AES_GCM}},
	{CCMWrapParams, []uint64{p11.CKM_AES_CCM}},
}

// messages maps the message-based AEAD mechanisms to their per-message
// parameters (MessageLookup).
var messages = []struct {
	l     *Layout
	mechs []uint64
}{
	{GCMMessageParams, []uint64{p11.CKM_AES_GCM}},
	{CCMMessageParams, []uint64{p11.CKM_AES_CCM}},
	{Salsa20ChaCha20Poly1305MsgParams, []uint64{ckmChaCha20Poly1305, ckmSalsa20Poly1305}},
}

// raw3: 3.x parameters of opaque bytes.
var raw3 = []uint64{
	// XTS's 16-byte tweak; the key wraps' optional IVs.
	ckmAESXTS, ckmAESKeyWrapKWP, ckmAESKeyWrapPKCS7,
}

// none3: 3.x mechanisms without a parameter.
var none3 = append([]uint64{
	// Key and key-pair generation (the parameter set of ML-KEM, ML-DSA,
	// SLH-DSA, HSS and XMSS is an attribute of the template).
	ckmMLKEMKeyPairGen, ckmMLDSAKeyPairGen, ckmSLHDSAKeyPairGen, ckmECKeyPairGenWExtraBits,
	ckmAESXTSKeyGen, ckmChaCha20KeyGen, ckmPoly1305KeyGen, ckmSalsa20KeyGen, ckmHKDFKeyGen,
	ckmSHA1KeyGen, ckmSHA224KeyGen, ckmSHA256KeyGen, ckmSHA384KeyGen, ckmSHA512KeyGen,
	ckmSHA512_224KeyGen, ckmSHA512_256KeyGen, ckmSHA512TKeyGen,
	ckmHSSKeyPairGen, ckmXMSSKeyPairGen, ckmXMSSMTKeyPairGen,
	// ML-KEM's encapsulation, Poly1305, the null mechanism, signatures
	// without a parameter, and the public key of a private one.
	ckmMLKEM, ckmPoly1305, ckmNull, ckmHSS, ckmXMSS, ckmXMSSMT,
	ckmECDSASHA3_224, ckmECDSASHA3_256, ckmECDSASHA3_384, ckmECDSASHA3_512,
	ckmPubKeyFromPrivKey,
}, append(append(append(
	blake2b(ckmBLAKE2b160, b2Digest, b2HMAC, b2KeyDerive, b2KeyGen),
	blake2b(ckmBLAKE2b256, b2Digest, b2HMAC, b2KeyDerive, b2KeyGen)...),
	blake2b(ckmBLAKE2b384, b2Digest, b2HMAC, b2KeyDerive, b2KeyGen)...),
	blake2b(ckmBLAKE2b512, b2Digest, b2HMAC, b2KeyDerive, b2KeyGen)...)...)

// unclassified lists the 3.x mechanisms below CKM_VENDOR_DEFINED that the
// registry deliberately does not classify, and why: Lookup refuses a
// parameter for them (a NULL parameter still crosses).
var unclassified = map[uint64]string{
	ckmX3DHInitialize: "CK_X3DH_INITIATE_PARAMS: pPrekey_signature and pOnetime_key have no length " +
		"(the curve of keys the proxy cannot see decides it)",
	ckmX3DHRespond: "CK_X3DH_RESPOND_PARAMS: pIdentity_id, pPrekey_id, pOnetime_id and " +
		"pInitiator_ephemeral have no length",
	ckmX2RatchetInitialize: "CK_X2RATCHET_INITIALIZE_PARAMS: the shared secret sk has no length",
	ckmX2RatchetRespond:    "CK_X2RATCHET_RESPOND_PARAMS: the shared secret sk has no length",
	ckmX2RatchetEncrypt:    "the specification leaves the Double Ratchet's message parameter unstated",
	ckmX2RatchetDecrypt:    "the specification leaves the Double Ratchet's message parameter unstated",
}
