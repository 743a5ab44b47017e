// Package mechparams is the one registry of PKCS#11 mechanism-parameter
// layouts. The proxy walks a layout to read the application's parameter out
// of C memory and encode it; the host walks the same layout to rebuild the
// structure in its own memory for the vendor, and both walk it again for the
// fields the vendor writes back.
//
// Layouts are for LP64 (CK_ULONG and pointers are 8 bytes); offsets follow
// the C rules and the generated C checks them against the header where the
// header defines the structure.
package mechparams

import (
	"sort"

	p11 "github.com/miekg/pkcs11"
)

// Kind is the type of one field of a parameter structure.
type Kind uint8

const (
	Ulong  Kind = iota // CK_ULONG and its aliases, 8 bytes
	Handle             // CK_OBJECT_HANDLE, 8 bytes; the proxy remaps it
	Byte               // CK_BYTE or CK_BBOOL, 1 byte
	Inline             // CK_BYTE[N] inside the structure
	Ptr                // CK_BYTE_PTR to Field.Len's value bytes
)

// Field is one member of a parameter structure.
type Field struct {
	Name string
	Kind Kind
	N    int  // Inline: the array length
	Len  int  // Ptr: index of the Ulong field holding the length in bytes
	Out  bool // the vendor writes it; its value crosses back
	Off  uintptr
}

// Layout is one parameter structure. A nil *Layout in the registry means the
// parameter is opaque bytes (an IV, a vendor-defined blob) and crosses as is.
type Layout struct {
	Name   string
	Fields []Field
	Size   uintptr
}

// size and alignment of each kind on LP64.
func (k Kind) sizeAlign(n int) (uintptr, uintptr) {
	switch k {
	case Byte:
		return 1, 1
	case Inline:
		return uintptr(n), 1
	default:
		return 8, 8
	}
}

func layout(name string, fields ...Field) *Layout {
	l := &Layout{Name: name, Fields: fields}
	var off, maxAlign uintptr = 0, 1
	for i := range l.Fields {
		size, align := l.Fields[i].Kind.sizeAlign(l.Fields[i].N)
		off = (off + align - 1) &^ (align - 1)
		l.Fields[i].Off = off
		off += size
		if align > maxAlign {
			maxAlign = align
		}
	}
	l.Size = (off + maxAlign - 1) &^ (maxAlign - 1)
	return l
}

func ulong(name string) Field           { return Field{Name: name, Kind: Ulong} }
func handle(name string) Field          { return Field{Name: name, Kind: Handle} }
func byteField(name string) Field       { return Field{Name: name, Kind: Byte} }
func inline(name string, n int) Field   { return Field{Name: name, Kind: Inline, N: n} }
func ptr(name string, lenIdx int) Field { return Field{Name: name, Kind: Ptr, Len: lenIdx} }
func outPtr(name string, lenIdx int) Field {
	return Field{Name: name, Kind: Ptr, Len: lenIdx, Out: true}
}

// Parameter structures, by their PKCS#11 names.
var (
	GCMParams = layout("CK_GCM_PARAMS",
		ptr("pIv", 1), ulong("ulIvLen"), ulong("ulIvBits"),
		ptr("pAAD", 4), ulong("ulAADLen"), ulong("ulTagBits"))
	CCMParams = layout("CK_CCM_PARAMS",
		ulong("ulDataLen"), ptr("pNonce", 2), ulong("ulNonceLen"),
		ptr("pAAD", 4), ulong("ulAADLen"), ulong("ulMACLen"))
	AESCTRParams      = layout("CK_AES_CTR_PARAMS", ulong("ulCounterBits"), inline("cb", 16))
	RSAPKCSOAEPParams = layout("CK_RSA_PKCS_OAEP_PARAMS",
		ulong("hashAlg"), ulong("mgf"), ulong("source"),
		ptr("pSourceData", 4), ulong("ulSourceDataLen"))
	RSAPKCSPSSParams  = layout("CK_RSA_PKCS_PSS_PARAMS", ulong("hashAlg"), ulong("mgf"), ulong("sLen"))
	ECDH1DeriveParams = layout("CK_ECDH1_DERIVE_PARAMS",
		ulong("kdf"), ulong("ulSharedDataLen"), ptr("pSharedData", 1),
		ulong("ulPublicDataLen"), ptr("pPublicData", 3))
	KeyDerivationStringData = layout("CK_KEY_DERIVATION_STRING_DATA", ptr("pData", 1), ulong("ulLen"))
	AESCBCEncryptDataParams = layout("CK_AES_CBC_ENCRYPT_DATA_PARAMS",
		inline("iv", 16), ptr("pData", 2), ulong("length"))
	DESCBCEncryptDataParams = layout("CK_DES_CBC_ENCRYPT_DATA_PARAMS",
		inline("iv", 8), ptr("pData", 2), ulong("length"))
	MACGeneralParams  = layout("CK_MAC_GENERAL_PARAMS", ulong("ulMacLength"))
	ObjectHandleParam = layout("CK_OBJECT_HANDLE", handle("hKey"))
	ExtractParams     = layout("CK_EXTRACT_PARAMS", ulong("ulBit"))
	EDDSAParams       = layout("CK_EDDSA_PARAMS", byteField("phFlag"), ulong("ulContextDataLen"), ptr("pContextData", 1))
)

// ckmEDDSA is CKM_EDDSA, which miekg/pkcs11's table predates.
const ckmEDDSA = 0x1057

// raw lists mechanisms whose parameter is opaque bytes: IVs and the like.
var raw = []uint64{
	p11.CKM_DES_CBC, p11.CKM_DES_CBC_PAD, p11.CKM_DES3_CBC, p11.CKM_DES3_CBC_PAD,
	p11.CKM_AES_CBC, p11.CKM_AES_CBC_PAD, p11.CKM_AES_CTS,
	p11.CKM_AES_OFB, p11.CKM_AES_CFB8, p11.CKM_AES_CFB64, p11.CKM_AES_CFB128,
	p11.CKM_AES_KEY_WRAP, p11.CKM_AES_KEY_WRAP_PAD,
}

// byMechanism maps a mechanism type to its parameter layout.
var byMechanism = map[uint64]*Layout{
	p11.CKM_AES_GCM:                   GCMParams,
	p11.CKM_AES_CCM:                   CCMParams,
	p11.CKM_AES_CTR:                   AESCTRParams,
	p11.CKM_RSA_PKCS_OAEP:             RSAPKCSOAEPParams,
	p11.CKM_RSA_PKCS_PSS:              RSAPKCSPSSParams,
	p11.CKM_SHA1_RSA_PKCS_PSS:         RSAPKCSPSSParams,
	p11.CKM_SHA224_RSA_PKCS_PSS:       RSAPKCSPSSParams,
	p11.CKM_SHA256_RSA_PKCS_PSS:       RSAPKCSPSSParams,
	p11.CKM_SHA384_RSA_PKCS_PSS:       RSAPKCSPSSParams,
	p11.CKM_SHA512_RSA_PKCS_PSS:       RSAPKCSPSSParams,
	p11.CKM_ECDH1_DERIVE:              ECDH1DeriveParams,
	p11.CKM_ECDH1_COFACTOR_DERIVE:     ECDH1DeriveParams,
	p11.CKM_CONCATENATE_BASE_AND_KEY:  ObjectHandleParam,
	p11.CKM_CONCATENATE_BASE_AND_DATA: KeyDerivationStringData,
	p11.CKM_CONCATENATE_DATA_AND_BASE: KeyDerivationStringData,
	p11.CKM_XOR_BASE_AND_DATA:         KeyDerivationStringData,
	p11.CKM_EXTRACT_KEY_FROM_KEY:      ExtractParams,
	p11.CKM_AES_CBC_ENCRYPT_DATA:      AESCBCEncryptDataParams,
	p11.CKM_DES_CBC_ENCRYPT_DATA:      DESCBCEncryptDataParams,
	p11.CKM_DES3_CBC_ENCRYPT_DATA:     DESCBCEncryptDataParams,
	p11.CKM_AES_ECB_ENCRYPT_DATA:      KeyDerivationStringData,
	p11.CKM_DES_ECB_ENCRYPT_DATA:      KeyDerivationStringData,
	p11.CKM_DES3_ECB_ENCRYPT_DATA:     KeyDerivationStringData,
	p11.CKM_AES_MAC_GENERAL:           MACGeneralParams,
	p11.CKM_AES_CMAC_GENERAL:          MACGeneralParams,
	p11.CKM_SHA_1_HMAC_GENERAL:        MACGeneralParams,
	p11.CKM_SHA224_HMAC_GENERAL:       MACGeneralParams,
	p11.CKM_SHA256_HMAC_GENERAL:       MACGeneralParams,
	p11.CKM_SHA384_HMAC_GENERAL:       MACGeneralParams,
	p11.CKM_SHA512_HMAC_GENERAL:       MACGeneralParams,
	p11.CKM_MD5_HMAC_GENERAL:          MACGeneralParams,
	ckmEDDSA:                          EDDSAParams,
}

// VendorDefined is CKM_VENDOR_DEFINED: mechanisms at or above it carry
// parameters only their vendor understands, forwarded verbatim.
const VendorDefined = 1 << 31

// Lookup returns the layout of mech's parameter. raw is true when the
// parameter crosses as opaque bytes; ok is false when the registry cannot
// carry a parameter for mech.
func Lookup(mech uint64) (l *Layout, raw bool, ok bool) {
	if l, found := byMechanism[mech]; found {
		return l, false, true
	}
	if isRaw(mech) || mech >= VendorDefined {
		return nil, true, true
	}
	return nil, false, false
}

func isRaw(mech uint64) bool {
	for _, m := range raw {
		if m == mech {
			return true
		}
	}
	return false
}

// Layouts returns every distinct layout in the registry, sorted by name.
func Layouts() []*Layout {
	seen := map[*Layout]bool{}
	var out []*Layout
	for _, l := range byMechanism {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
