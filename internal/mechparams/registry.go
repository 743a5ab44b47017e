// Package mechparams is the one registry of PKCS#11 mechanism-parameter
// layouts. The proxy's C data plane walks a layout (cmd/p11gen writes the
// registry as C tables) to read the application's parameter and encode it;
// the host walks the same layout to rebuild the structure in its own memory
// for the vendor, and both walk it again for the fields the vendor writes
// back.
//
// Layouts are for LP64 (CK_ULONG and pointers are 8 bytes); offsets follow
// the C rules. The package's tests compile C programs against the PKCS#11
// 2.40 headers, NSS's 3.0 headers and cshim/pkcs11_3x.h (3.0 and 3.2) and
// check every size and offset; the generated host C also static-asserts
// the sizes of the structures the p11-kit header defines.
//
// Every mechanism of PKCS#11 2.40, 3.0 and 3.2 is classified (registry.go
// for 2.40, registry3.go for 3.x): it takes a structure (a Layout), or a
// parameter that is opaque bytes (an IV, an OID, a public value), or no
// parameter at all (its parameter, if an application passes one anyway,
// crosses as opaque bytes for the vendor to judge). Mechanisms at or above
// CKM_VENDOR_DEFINED cross as opaque bytes. Anything else is refused, and
// so are the few 3.0 mechanisms whose structures hold pointers without
// lengths (see unclassified in registry3.go).
//
// Two more tables: a mechanism may take other structures told apart by
// size (LookupSize: 3.2's CK_GCM_WRAP_PARAMS beside CK_GCM_PARAMS), and the
// message-based functions of 3.0 take a per-message parameter by the
// operation's mechanism (MessageLookup).
package mechparams

import (
	"fmt"
	"sort"

	p11 "github.com/miekg/pkcs11"
)

// Kind is the type of one field of a parameter structure.
type Kind uint8

const (
	Ulong       Kind = iota // CK_ULONG and its aliases, 8 bytes
	Handle                  // CK_OBJECT_HANDLE, 8 bytes; the proxy remaps it
	Byte                    // CK_BYTE or CK_BBOOL, 1 byte
	Inline                  // CK_BYTE[N] inside the structure
	Ptr                     // CK_BYTE_PTR (CK_VOID_PTR, CK_UTF8CHAR_PTR) to a buffer; see Field.Len
	UlongPtr                // CK_ULONG_PTR to one CK_ULONG
	UlongOrPtr              // CK_PKCS5_PBKD2_PARAMS.ulPasswordLen: a CK_ULONG_PTR, or a CK_ULONG in ..._PARAMS2
	CString                 // CK_UTF8CHAR_PTR to a NUL-terminated string
	Struct                  // a structure (Field.Sub) inside the structure
	StructPtr               // a pointer to a structure (Field.Sub)
	StructArray             // a pointer to Field.Len's count of structures (Field.Sub)
	MechPtr                 // CK_MECHANISM_PTR: a nested mechanism with its own parameter
	UnionPtr                // CK_VOID_PTR whose layout Field.Cases picks by the value of field Field.Sel
	Template                // CK_ATTRIBUTE_PTR: Field.Len's count of attributes, values as bytes
	HandlePtr               // CK_OBJECT_HANDLE_PTR: a handle the vendor writes (always Out and Only)

	NumKinds = iota // the number of kinds (the generator's enumeration)
)

// Fixed as Field.Len means the buffer's length is Field.N, not another field.
const Fixed = -1

// Field is one member of a parameter structure. Name is the member's name in
// the PKCS#11 headers (the tests use it with offsetof).
type Field struct {
	Name string
	Kind Kind
	N    int // Inline: the array length; Ptr with Len == Fixed: the buffer's length
	// Len, for Ptr and StructArray: the index of the field holding the
	// buffer's length in bytes (or the array's count): a Ulong, a UlongPtr
	// (the length is the pointed-to value) or a UlongOrPtr; Fixed for N.
	// For Template (the attribute count) and UnionPtr (the pointed-to
	// size in bytes): a Ulong.
	Len  int
	Up   bool    // the length is a field of the enclosing structure (CK_SSL3_KEY_MAT_OUT's IVs)
	Bits bool    // the length field counts bits (ulIVSizeInBits): bytes = bits/8
	Out  bool    // the vendor writes it (or something inside it); its value crosses back
	Only bool    // Out only: the application's value does not cross in (a Ptr sends its capacity)
	Sub  *Layout // Struct, StructPtr, StructArray: the nested structure
	// Sel, for UnionPtr: the index of an earlier Ulong field whose value
	// picks one of Cases; Len is then the field holding the pointed-to
	// size in bytes (a structure's size, or a buffer's length).
	Sel   int
	Cases []Case
	Off   uintptr

	slot    uintptr // offset of the field's record in its structure's shadow (see Build)
	lenName string  // Up: the name of the enclosing structure's length field
}

// Case is one form a UnionPtr's pointer takes: for the selector value
// Value, a structure of layout Sub, or (Sub nil) a buffer of bytes. A
// selector value no case names is refused, as the pointed-to memory's shape
// is then unknown.
type Case struct {
	Value uint64
	Sub   *Layout
}

// Layout is one parameter structure.
type Layout struct {
	Name   string
	Fields []Field
	Size   uintptr
	Align  uintptr

	outs   int      // the number of Out fields
	shadow uintptr  // size of the host's record of the pointers it set (see Build)
	ups    []string // names of the enclosing structure's fields that Up lengths read
}

// Outs is the number of fields whose values cross back after the call.
func (l *Layout) Outs() int { return l.outs }

// size and alignment of a field on LP64.
func (f *Field) sizeAlign() (uintptr, uintptr) {
	switch f.Kind {
	case Byte:
		return 1, 1
	case Inline:
		return uintptr(f.N), 1
	case Struct:
		return f.Sub.Size, f.Sub.Align
	default:
		return 8, 8
	}
}

// slotSize is the shadow room a field takes: a pointer and a length for
// every pointer field, the nested record for a nested structure.
func (f *Field) slotSize() uintptr {
	switch f.Kind {
	case Ulong, Handle, Byte, Inline:
		return 0
	case Struct:
		return f.Sub.shadow
	default:
		return 16
	}
}

// layout computes offsets and checks the description; a mistake panics at
// init, so the tests catch it.
func layout(name string, fields ...Field) *Layout {
	l := &Layout{Name: name, Fields: fields}
	var off, slot, maxAlign uintptr = 0, 0, 1
	for i := range l.Fields {
		f := &l.Fields[i]
		l.check(i)
		size, align := f.sizeAlign()
		off = (off + align - 1) &^ (align - 1)
		f.Off = off
		off += size
		maxAlign = max(maxAlign, align)
		f.slot = slot
		slot += f.slotSize()
		if f.Sub != nil && f.Sub.outs > 0 {
			f.Out = true
		}
		if f.Out {
			l.outs++
		}
		if f.Kind == Ptr && f.Up {
			l.ups = append(l.ups, f.lenName)
		}
	}
	l.Size = (off + maxAlign - 1) &^ (maxAlign - 1)
	l.Align = maxAlign
	l.shadow = slot
	return l
}

func (l *Layout) check(i int) {
	f := &l.Fields[i]
	bad := func(format string, args ...any) {
		panic(fmt.Sprintf("mechparams: %s.%s: %s", l.Name, f.Name, fmt.Sprintf(format, args...)))
	}
	if l.index(f.Name) != i {
		bad("a second field of that name")
	}
	if (f.Sub != nil) != (f.Kind == Struct || f.Kind == StructPtr || f.Kind == StructArray) {
		bad("Sub goes with the structure kinds")
	}
	if (len(f.Cases) > 0) != (f.Kind == UnionPtr) {
		bad("Cases go with UnionPtr, which needs at least one")
	}
	if f.Only && !f.Out {
		bad("Only without Out")
	}
	switch f.Kind {
	case UlongOrPtr, CString, MechPtr, UnionPtr, Template:
		// Nothing the vendor writes through them comes back: the
		// walkers on both sides carry them in only.
		if f.Out {
			bad("outputs of this kind are not carried back")
		}
	case StructArray:
		// An array's outputs are its elements' (Out is set from them).
		if f.Out {
			bad("an array is an output only through its elements")
		}
	case UlongPtr, Struct, StructPtr:
		if f.Only {
			bad("Only is for scalars and buffers")
		}
	case HandlePtr:
		// The pointed-to value is the vendor's new handle: the
		// application's garbage there must neither cross nor be mapped.
		if !f.Out || !f.Only {
			bad("a handle pointer is the vendor's output only")
		}
	}
	if f.Sub != nil {
		// An array's elements are not an enclosing structure: their own
		// lengths are theirs. Their outputs cross back element by
		// element (CK_DERIVED_KEY.phKey).
		if f.Kind == StructArray && len(f.Sub.ups) > 0 {
			bad("array elements read no lengths of the enclosing structure")
		}
		for _, up := range f.Sub.ups {
			j := l.index(up)
			if j < 0 || j >= i || l.Fields[j].Kind != Ulong {
				bad("nested length %s must be an earlier Ulong of %s", up, l.Name)
			}
		}
	}
	if f.Kind == UnionPtr {
		l.checkUnion(i)
	}
	if f.Kind != Ptr && f.Kind != StructArray && f.Kind != Template && f.Kind != UnionPtr {
		return
	}
	if f.Len == Fixed {
		if f.Up || f.Bits || f.Kind != Ptr {
			bad("a fixed length is a plain Ptr's")
		}
		return
	}
	if f.Up {
		if f.Kind != Ptr || f.lenName == "" {
			bad("an enclosing structure's length needs its name")
		}
		return
	}
	if f.Bits && f.Kind != Ptr {
		bad("a length in bits is a byte buffer's")
	}
	if f.Len < 0 || f.Len >= len(l.Fields) || f.Len == i {
		bad("length index %d", f.Len)
	}
	src := &l.Fields[f.Len]
	switch src.Kind {
	case Ulong, UlongPtr, UlongOrPtr:
	default:
		bad("length field %s is not a length", src.Name)
	}
	if (f.Kind == Template || f.Kind == UnionPtr) && src.Kind != Ulong {
		// The walkers read these counts and sizes from the structure
		// itself, never through a pointer.
		bad("length field %s must be a Ulong", src.Name)
	}
	if src.Out && (!f.Out || f.Kind != Ptr || f.Bits) {
		bad("a length the vendor writes goes with a byte buffer it writes")
	}
}

// checkUnion checks a UnionPtr: its selector is an earlier Ulong the vendor
// does not write (the host picks the case from the value it has already
// built), and its cases are distinct and carry nothing back.
func (l *Layout) checkUnion(i int) {
	f := &l.Fields[i]
	bad := func(format string, args ...any) {
		panic(fmt.Sprintf("mechparams: %s.%s: %s", l.Name, f.Name, fmt.Sprintf(format, args...)))
	}
	if f.Sel < 0 || f.Sel >= i || l.Fields[f.Sel].Kind != Ulong || l.Fields[f.Sel].Out {
		bad("selector index %d is not an earlier input Ulong", f.Sel)
	}
	if f.Bits || f.Up || f.Len == Fixed {
		bad("a union's size is a Ulong field in bytes")
	}
	seen := map[uint64]bool{}
	for _, c := range f.Cases {
		if seen[c.Value] {
			bad("case %d twice", c.Value)
		}
		seen[c.Value] = true
		if c.Sub != nil && (c.Sub.outs > 0 || len(c.Sub.ups) > 0) {
			bad("case %d: %s carries outputs or enclosing lengths", c.Value, c.Sub.Name)
		}
	}
}

// Case returns the case of a UnionPtr for the selector value v.
func (f *Field) Case(v uint64) (Case, bool) {
	for _, c := range f.Cases {
		if c.Value == v {
			return c, true
		}
	}
	return Case{}, false
}

func (l *Layout) index(name string) int {
	for i := range l.Fields {
		if l.Fields[i].Name == name {
			return i
		}
	}
	return -1
}

// Field constructors. A buffer's length names a field of the same structure
// by index.
func ulong(name string) Field         { return Field{Name: name, Kind: Ulong} }
func handle(name string) Field        { return Field{Name: name, Kind: Handle} }
func byteField(name string) Field     { return Field{Name: name, Kind: Byte} }
func inline(name string, n int) Field { return Field{Name: name, Kind: Inline, N: n} }
func ulongPtr(name string) Field      { return Field{Name: name, Kind: UlongPtr} }
func cstring(name string) Field       { return Field{Name: name, Kind: CString} }
func mechPtr(name string) Field       { return Field{Name: name, Kind: MechPtr} }

// ptr is an input buffer of the length field lenIdx holds.
func ptr(name string, lenIdx int) Field { return Field{Name: name, Kind: Ptr, Len: lenIdx} }

// fixedPtr is a buffer of n bytes.
func fixedPtr(name string, n int) Field { return Field{Name: name, Kind: Ptr, Len: Fixed, N: n} }

// upPtr is a buffer whose length (in bits) is the enclosing structure's field lenName.
func upPtr(name, lenName string) Field {
	return Field{Name: name, Kind: Ptr, Up: true, Bits: true, lenName: lenName}
}

// bitsPtr is a buffer whose length in bits the field lenIdx holds:
// bytes = bits/8 (CK_GCM_MESSAGE_PARAMS.pTag, ulTagBits).
func bitsPtr(name string, lenIdx int) Field {
	return Field{Name: name, Kind: Ptr, Len: lenIdx, Bits: true}
}

// union is a pointer whose layout the value of field selIdx picks among
// cases; field sizeIdx holds the pointed-to size in bytes.
func union(name string, selIdx, sizeIdx int, cases ...Case) Field {
	return Field{Name: name, Kind: UnionPtr, Sel: selIdx, Len: sizeIdx, Cases: cases}
}

// template is an input attribute template of countIdx's count.
func template(name string, countIdx int) Field {
	return Field{Name: name, Kind: Template, Len: countIdx}
}

// handleOut is a CK_OBJECT_HANDLE_PTR the vendor writes a new handle into.
func handleOut(name string) Field { return Field{Name: name, Kind: HandlePtr, Out: true, Only: true} }

func nested(name string, l *Layout) Field    { return Field{Name: name, Kind: Struct, Sub: l} }
func nestedPtr(name string, l *Layout) Field { return Field{Name: name, Kind: StructPtr, Sub: l} }
func array(name string, l *Layout, countIdx int) Field {
	return Field{Name: name, Kind: StructArray, Sub: l, Len: countIdx}
}

// inOut marks a field the vendor may rewrite: its value crosses in and back.
func (f Field) inOut() Field { f.Out = true; return f }

// out marks a field only the vendor writes: it crosses back, and in only as
// a buffer's capacity.
func (f Field) out() Field { f.Out, f.Only = true, true; return f }

// Parameter structures, by their PKCS#11 names.
var (
	GCMParams = layout("CK_GCM_PARAMS",
		ptr("pIv", 1), ulong("ulIvLen"), ulong("ulIvBits"),
		ptr("pAAD", 4), ulong("ulAADLen"), ulong("ulTagBits"))
	CCMParams = layout("CK_CCM_PARAMS",
		ulong("ulDataLen"), ptr("pNonce", 2), ulong("ulNonceLen"),
		ptr("pAAD", 4), ulong("ulAADLen"), ulong("ulMACLen"))
	AESCTRParams      = layout("CK_AES_CTR_PARAMS", ulong("ulCounterBits"), inline("cb", 16))
	CamelliaCTRParams = layout("CK_CAMELLIA_CTR_PARAMS", ulong("ulCounterBits"), inline("cb", 16))

	RSAPKCSOAEPParams = layout("CK_RSA_PKCS_OAEP_PARAMS",
		ulong("hashAlg"), ulong("mgf"), ulong("source"),
		ptr("pSourceData", 4), ulong("ulSourceDataLen"))
	RSAPKCSPSSParams    = layout("CK_RSA_PKCS_PSS_PARAMS", ulong("hashAlg"), ulong("mgf"), ulong("sLen"))
	RSAAESKeyWrapParams = layout("CK_RSA_AES_KEY_WRAP_PARAMS",
		ulong("ulAESKeyBits"), nestedPtr("pOAEPParams", RSAPKCSOAEPParams))
	KeyWrapSetOAEPParams = layout("CK_KEY_WRAP_SET_OAEP_PARAMS",
		// Unwrapping returns the extra data in pX (the usual output
		// convention, ulXLen in/out) and may rewrite bBC.
		byteField("bBC").inOut(), ptr("pX", 2).inOut(), ulong("ulXLen").inOut())

	ECDH1DeriveParams = layout("CK_ECDH1_DERIVE_PARAMS",
		ulong("kdf"), ulong("ulSharedDataLen"), ptr("pSharedData", 1),
		ulong("ulPublicDataLen"), ptr("pPublicData", 3))
	ECDH2DeriveParams = layout("CK_ECDH2_DERIVE_PARAMS",
		ulong("kdf"), ulong("ulSharedDataLen"), ptr("pSharedData", 1),
		ulong("ulPublicDataLen"), ptr("pPublicData", 3),
		ulong("ulPrivateDataLen"), handle("hPrivateData"),
		ulong("ulPublicDataLen2"), ptr("pPublicData2", 7))
	ECMQVDeriveParams = layout("CK_ECMQV_DERIVE_PARAMS",
		ulong("kdf"), ulong("ulSharedDataLen"), ptr("pSharedData", 1),
		ulong("ulPublicDataLen"), ptr("pPublicData", 3),
		ulong("ulPrivateDataLen"), handle("hPrivateData"),
		ulong("ulPublicDataLen2"), ptr("pPublicData2", 7), handle("publicKey"))
	ECDHAESKeyWrapParams = layout("CK_ECDH_AES_KEY_WRAP_PARAMS",
		ulong("ulAESKeyBits"), ulong("kdf"), ulong("ulSharedDataLen"), ptr("pSharedData", 2))
	EDDSAParams = layout("CK_EDDSA_PARAMS",
		byteField("phFlag"), ulong("ulContextDataLen"), ptr("pContextData", 1))

	X942DH1DeriveParams = layout("CK_X9_42_DH1_DERIVE_PARAMS",
		ulong("kdf"), ulong("ulOtherInfoLen"), ptr("pOtherInfo", 1),
		ulong("ulPublicDataLen"), ptr("pPublicData", 3))
	X942DH2DeriveParams = layout("CK_X9_42_DH2_DERIVE_PARAMS",
		ulong("kdf"), ulong("ulOtherInfoLen"), ptr("pOtherInfo", 1),
		ulong("ulPublicDataLen"), ptr("pPublicData", 3),
		ulong("ulPrivateDataLen"), handle("hPrivateData"),
		ulong("ulPublicDataLen2"), ptr("pPublicData2", 7))
	X942MQVDeriveParams = layout("CK_X9_42_MQV_DERIVE_PARAMS",
		ulong("kdf"), ulong("ulOtherInfoLen"), ptr("pOtherInfo", 1),
		ulong("ulPublicDataLen"), ptr("pPublicData", 3),
		ulong("ulPrivateDataLen"), handle("hPrivateData"),
		ulong("ulPublicDataLen2"), ptr("pPublicData2", 7), handle("publicKey"))
	KEADeriveParams = layout("CK_KEA_DERIVE_PARAMS",
		// The sender's token computes Ra into pRandomA.
		byteField("isSender"), ulong("ulRandomLen"),
		ptr("pRandomA", 1).inOut(), ptr("pRandomB", 1),
		ulong("ulPublicDataLen"), ptr("pPublicData", 4))
	DSAParameterGenParam = layout("CK_DSA_PARAMETER_GEN_PARAM",
		// The probabilistic and Shawe-Taylor generations return the seed;
		// CKM_DSA_FIPS_G_GEN takes it.
		ulong("hash"), ptr("pSeed", 2).inOut(), ulong("ulSeedLen").inOut(), ulong("ulIndex"))

	RC2Params           = layout("CK_RC2_PARAMS", ulong("ulEffectiveBits"))
	RC2CBCParams        = layout("CK_RC2_CBC_PARAMS", ulong("ulEffectiveBits"), inline("iv", 8))
	RC2MACGeneralParams = layout("CK_RC2_MAC_GENERAL_PARAMS", ulong("ulEffectiveBits"), ulong("ulMacLength"))
	RC5Params           = layout("CK_RC5_PARAMS", ulong("ulWordsize"), ulong("ulRounds"))
	RC5CBCParams        = layout("CK_RC5_CBC_PARAMS",
		ulong("ulWordsize"), ulong("ulRounds"), ptr("pIv", 3), ulong("ulIvLen"))
	RC5MACGeneralParams = layout("CK_RC5_MAC_GENERAL_PARAMS",
		ulong("ulWordsize"), ulong("ulRounds"), ulong("ulMacLength"))
	MACGeneralParams = layout("CK_MAC_GENERAL_PARAMS", ulong("ulMacLength"))
	ExtractParams    = layout("CK_EXTRACT_PARAMS", ulong("ulBit"))
	// ObjectHandleParam is CKM_CONCATENATE_BASE_AND_KEY's parameter.
	ObjectHandleParam = layout("CK_OBJECT_HANDLE", handle("hKey"))
	// Version is CKM_SSL3/TLS_PRE_MASTER_KEY_GEN's parameter.
	Version = layout("CK_VERSION", byteField("major"), byteField("minor"))
	// versionOut is the CK_VERSION a master key derivation writes.
	versionOut = layout("CK_VERSION", byteField("major").out(), byteField("minor").out())
	// FortezzaIV is the 24-byte IV of SKIPJACK, BATON and JUNIPER modes: the
	// token generates it when encrypting, and it crosses back.
	FortezzaIV = layout("CK_BYTE[24]", inline("iv", 24).inOut())

	KeyDerivationStringData = layout("CK_KEY_DERIVATION_STRING_DATA", ptr("pData", 1), ulong("ulLen"))
	DESCBCEncryptDataParams = layout("CK_DES_CBC_ENCRYPT_DATA_PARAMS",
		inline("iv", 8), ptr("pData", 2), ulong("length"))
	AESCBCEncryptDataParams = layout("CK_AES_CBC_ENCRYPT_DATA_PARAMS",
		inline("iv", 16), ptr("pData", 2), ulong("length"))
	CamelliaCBCEncryptDataParams = layout("CK_CAMELLIA_CBC_ENCRYPT_DATA_PARAMS",
		inline("iv", 16), ptr("pData", 2), ulong("length"))
	ARIACBCEncryptDataParams = layout("CK_ARIA_CBC_ENCRYPT_DATA_PARAMS",
		inline("iv", 16), ptr("pData", 2), ulong("length"))
	SEEDCBCEncryptDataParams = layout("CK_SEED_CBC_ENCRYPT_DATA_PARAMS",
		inline("iv", 16), ptr("pData", 2), ulong("length"))

	SkipjackPrivateWrapParams = layout("CK_SKIPJACK_PRIVATE_WRAP_PARAMS",
		ulong("ulPasswordLen"), ptr("pPassword", 0),
		ulong("ulPublicDataLen"), ptr("pPublicData", 2),
		ulong("ulPAndGLen"), ulong("ulQLen"), ulong("ulRandomLen"),
		ptr("pRandomA", 6), ptr("pPrimeP", 4), ptr("pBaseG", 4), ptr("pSubprimeQ", 5))
	SkipjackRelayxParams = layout("CK_SKIPJACK_RELAYX_PARAMS",
		ulong("ulOldWrappedXLen"), ptr("pOldWrappedX", 0),
		ulong("ulOldPasswordLen"), ptr("pOldPassword", 2),
		ulong("ulOldPublicDataLen"), ptr("pOldPublicData", 4),
		ulong("ulOldRandomLen"), ptr("pOldRandomA", 6),
		ulong("ulNewPasswordLen"), ptr("pNewPassword", 8),
		ulong("ulNewPublicDataLen"), ptr("pNewPublicData", 10),
		ulong("ulNewRandomLen"), ptr("pNewRandomA", 12))

	PBEParams = layout("CK_PBE_PARAMS",
		fixedPtr("pInitVector", 8).out(), ptr("pPassword", 2), ulong("ulPasswordLen"),
		ptr("pSalt", 4), ulong("ulSaltLen"), ulong("ulIteration"))
	// PKCS5PBKD2Params is CK_PKCS5_PBKD2_PARAMS and, with ulPasswordLen a
	// CK_ULONG, CK_PKCS5_PBKD2_PARAMS2: same size, told apart by value.
	PKCS5PBKD2Params = layout("CK_PKCS5_PBKD2_PARAMS",
		ulong("saltSource"), ptr("pSaltSourceData", 2), ulong("ulSaltSourceDataLen"),
		ulong("iterations"), ulong("prf"), ptr("pPrfData", 6), ulong("ulPrfDataLen"),
		ptr("pPassword", 8), Field{Name: "ulPasswordLen", Kind: UlongOrPtr})

	SSL3RandomData = layout("CK_SSL3_RANDOM_DATA",
		ptr("pClientRandom", 1), ulong("ulClientRandomLen"),
		ptr("pServerRandom", 3), ulong("ulServerRandomLen"))
	SSL3MasterKeyDeriveParams = layout("CK_SSL3_MASTER_KEY_DERIVE_PARAMS",
		nested("RandomInfo", SSL3RandomData), nestedPtr("pVersion", versionOut))
	SSL3KeyMatOut = layout("CK_SSL3_KEY_MAT_OUT",
		handle("hClientMacSecret").out(), handle("hServerMacSecret").out(),
		handle("hClientKey").out(), handle("hServerKey").out(),
		upPtr("pIVClient", "ulIVSizeInBits").out(), upPtr("pIVServer", "ulIVSizeInBits").out())
	SSL3KeyMatParams = layout("CK_SSL3_KEY_MAT_PARAMS",
		ulong("ulMacSizeInBits"), ulong("ulKeySizeInBits"), ulong("ulIVSizeInBits"),
		byteField("bIsExport"), nested("RandomInfo", SSL3RandomData),
		nestedPtr("pReturnedKeyMaterial", SSL3KeyMatOut))
	TLSPRFParams = layout("CK_TLS_PRF_PARAMS",
		ptr("pSeed", 1), ulong("ulSeedLen"), ptr("pLabel", 3), ulong("ulLabelLen"),
		ptr("pOutput", 5).out(), ulongPtr("pulOutputLen").inOut())
	TLS12MasterKeyDeriveParams = layout("CK_TLS12_MASTER_KEY_DERIVE_PARAMS",
		nested("RandomInfo", SSL3RandomData), nestedPtr("pVersion", versionOut),
		ulong("prfHashMechanism"))
	TLS12KeyMatParams = layout("CK_TLS12_KEY_MAT_PARAMS",
		ulong("ulMacSizeInBits"), ulong("ulKeySizeInBits"), ulong("ulIVSizeInBits"),
		byteField("bIsExport"), nested("RandomInfo", SSL3RandomData),
		nestedPtr("pReturnedKeyMaterial", SSL3KeyMatOut), ulong("prfHashMechanism"))
	TLSKDFParams = layout("CK_TLS_KDF_PARAMS",
		ulong("prfMechanism"), ptr("pLabel", 2), ulong("ulLabelLength"),
		nested("RandomInfo", SSL3RandomData), ptr("pContextData", 5), ulong("ulContextDataLength"))
	TLSMACParams = layout("CK_TLS_MAC_PARAMS",
		ulong("prfHashMechanism"), ulong("ulMacLength"), ulong("ulServerOrClient"))

	WTLSRandomData = layout("CK_WTLS_RANDOM_DATA",
		ptr("pClientRandom", 1), ulong("ulClientRandomLen"),
		ptr("pServerRandom", 3), ulong("ulServerRandomLen"))
	WTLSMasterKeyDeriveParams = layout("CK_WTLS_MASTER_KEY_DERIVE_PARAMS",
		ulong("DigestMechanism"), nested("RandomInfo", WTLSRandomData),
		fixedPtr("pVersion", 1).out())
	WTLSPRFParams = layout("CK_WTLS_PRF_PARAMS",
		ulong("DigestMechanism"), ptr("pSeed", 2), ulong("ulSeedLen"),
		ptr("pLabel", 4), ulong("ulLabelLen"),
		ptr("pOutput", 6).out(), ulongPtr("pulOutputLen").inOut())
	WTLSKeyMatOut = layout("CK_WTLS_KEY_MAT_OUT",
		handle("hMacSecret").out(), handle("hKey").out(), upPtr("pIV", "ulIVSizeInBits").out())
	WTLSKeyMatParams = layout("CK_WTLS_KEY_MAT_PARAMS",
		ulong("DigestMechanism"), ulong("ulMacSizeInBits"), ulong("ulKeySizeInBits"),
		ulong("ulIVSizeInBits"), ulong("ulSequenceNumber"), byteField("bIsExport"),
		nested("RandomInfo", WTLSRandomData), nestedPtr("pReturnedKeyMaterial", WTLSKeyMatOut))

	CMSSigParams = layout("CK_CMS_SIG_PARAMS",
		handle("certificateHandle"), mechPtr("pSigningMechanism"), mechPtr("pDigestMechanism"),
		cstring("pContentType"),
		ptr("pRequestedAttributes", 5), ulong("ulRequestedAttributesLen"),
		ptr("pRequiredAttributes", 7), ulong("ulRequiredAttributesLen"))
	KIPParams = layout("CK_KIP_PARAMS",
		mechPtr("pMechanism"), handle("hKey"), ptr("pSeed", 3), ulong("ulSeedLen"))
	OTPParam  = layout("CK_OTP_PARAM", ulong("type"), ptr("pValue", 2), ulong("ulValueLen"))
	OTPParams = layout("CK_OTP_PARAMS", array("pParams", OTPParam, 1), ulong("ulCount"))

	GOSTR3410DeriveParams = layout("CK_GOSTR3410_DERIVE_PARAMS",
		ulong("kdf"), ptr("pPublicData", 2), ulong("ulPublicDataLen"), ptr("pUKM", 4), ulong("ulUKMLen"))
	GOSTR3410KeyWrapParams = layout("CK_GOSTR3410_KEY_WRAP_PARAMS",
		ptr("pWrapOID", 1), ulong("ulWrapOIDLen"), ptr("pUKM", 3), ulong("ulUKMLen"), handle("hKey"))

	// mechanism is CK_MECHANISM, which MechPtr fields point to; its
	// parameter is walked by the nested mechanism's own layout.
	mechanism = layout("CK_MECHANISM", ulong("mechanism"), ulong("pParameter"), ulong("ulParameterLen"))
	// attribute is CK_ATTRIBUTE, the element of a Template; its pValue is
	// the attribute's bytes or, for CKA_WRAP_TEMPLATE and its kin, a
	// nested template.
	attribute = layout("CK_ATTRIBUTE", ulong("type"), ulong("pValue"), ulong("ulValueLen"))
)

// Mechanisms miekg/pkcs11's 2.40 table lacks.
const (
	ckmDSAFIPSGGen            = 0x2005 // CKM_DSA_FIPS_G_GEN (2.40)
	ckmECEdwardsKeyPairGen    = 0x1055 // CKM_EC_EDWARDS_KEY_PAIR_GEN (3.0, SoftHSM 2.6)
	ckmECMontgomeryKeyPairGen = 0x1056 // CKM_EC_MONTGOMERY_KEY_PAIR_GEN (3.0, SoftHSM 2.6)
	ckmEDDSA                  = 0x1057 // CKM_EDDSA (3.0, SoftHSM 2.6: NULL or CK_EDDSA_PARAMS)
)

// structured maps each layout to the mechanisms that take it.
var structured = []struct {
	l     *Layout
	mechs []uint64
}{
	{GCMParams, []uint64{p11.CKM_AES_GCM}},
	{CCMParams, []uint64{p11.CKM_AES_CCM}},
	{AESCTRParams, []uint64{p11.CKM_AES_CTR}},
	{CamelliaCTRParams, []uint64{p11.CKM_CAMELLIA_CTR}},
	{RSAPKCSOAEPParams, []uint64{p11.CKM_RSA_PKCS_OAEP}},
	{RSAPKCSPSSParams, []uint64{
		p11.CKM_RSA_PKCS_PSS, p11.CKM_SHA1_RSA_PKCS_PSS, p11.CKM_SHA224_RSA_PKCS_PSS,
		p11.CKM_SHA256_RSA_PKCS_PSS, p11.CKM_SHA384_RSA_PKCS_PSS, p11.CKM_SHA512_RSA_PKCS_PSS,
		p11.CKM_SHA3_224_RSA_PKCS_PSS, p11.CKM_SHA3_256_RSA_PKCS_PSS,
		p11.CKM_SHA3_384_RSA_PKCS_PSS, p11.CKM_SHA3_512_RSA_PKCS_PSS}},
	{RSAAESKeyWrapParams, []uint64{p11.CKM_RSA_AES_KEY_WRAP}},
	{KeyWrapSetOAEPParams, []uint64{p11.CKM_KEY_WRAP_SET_OAEP}},
	{ECDH1DeriveParams, []uint64{p11.CKM_ECDH1_DERIVE, p11.CKM_ECDH1_COFACTOR_DERIVE}},
	{ECMQVDeriveParams, []uint64{p11.CKM_ECMQV_DERIVE}},
	{ECDHAESKeyWrapParams, []uint64{p11.CKM_ECDH_AES_KEY_WRAP}},
	{EDDSAParams, []uint64{ckmEDDSA}},
	{X942DH1DeriveParams, []uint64{p11.CKM_X9_42_DH_DERIVE}},
	{X942DH2DeriveParams, []uint64{p11.CKM_X9_42_DH_HYBRID_DERIVE}},
	{X942MQVDeriveParams, []uint64{p11.CKM_X9_42_MQV_DERIVE}},
	{KEADeriveParams, []uint64{p11.CKM_KEA_KEY_DERIVE, p11.CKM_KEA_DERIVE}},
	{DSAParameterGenParam, []uint64{
		p11.CKM_DSA_PROBABLISTIC_PARAMETER_GEN, p11.CKM_DSA_SHAWE_TAYLOR_PARAMETER_GEN, ckmDSAFIPSGGen}},
	{RC2Params, []uint64{p11.CKM_RC2_ECB, p11.CKM_RC2_MAC}},
	{RC2CBCParams, []uint64{p11.CKM_RC2_CBC, p11.CKM_RC2_CBC_PAD}},
	{RC2MACGeneralParams, []uint64{p11.CKM_RC2_MAC_GENERAL}},
	{RC5Params, []uint64{p11.CKM_RC5_ECB, p11.CKM_RC5_MAC}},
	{RC5CBCParams, []uint64{p11.CKM_RC5_CBC, p11.CKM_RC5_CBC_PAD}},
	{RC5MACGeneralParams, []uint64{p11.CKM_RC5_MAC_GENERAL}},
	{MACGeneralParams, []uint64{
		// The block ciphers' MAC_GENERAL modes.
		p11.CKM_DES_MAC_GENERAL, p11.CKM_DES3_MAC_GENERAL, p11.CKM_DES3_CMAC_GENERAL,
		p11.CKM_CDMF_MAC_GENERAL, p11.CKM_AES_MAC_GENERAL, p11.CKM_AES_CMAC_GENERAL,
		p11.CKM_CAST_MAC_GENERAL, p11.CKM_CAST3_MAC_GENERAL, p11.CKM_CAST5_MAC_GENERAL,
		p11.CKM_IDEA_MAC_GENERAL, p11.CKM_CAMELLIA_MAC_GENERAL, p11.CKM_ARIA_MAC_GENERAL,
		p11.CKM_SEED_MAC_GENERAL,
		// The digests' HMAC_GENERAL modes.
		p11.CKM_MD2_HMAC_GENERAL, p11.CKM_MD5_HMAC_GENERAL, p11.CKM_SHA_1_HMAC_GENERAL,
		p11.CKM_RIPEMD128_HMAC_GENERAL, p11.CKM_RIPEMD160_HMAC_GENERAL,
		p11.CKM_SHA224_HMAC_GENERAL, p11.CKM_SHA256_HMAC_GENERAL, p11.CKM_SHA384_HMAC_GENERAL,
		p11.CKM_SHA512_HMAC_GENERAL, p11.CKM_SHA512_224_HMAC_GENERAL,
		p11.CKM_SHA512_256_HMAC_GENERAL,
		p11.CKM_SHA3_224_HMAC_GENERAL, p11.CKM_SHA3_256_HMAC_GENERAL,
		p11.CKM_SHA3_384_HMAC_GENERAL, p11.CKM_SHA3_512_HMAC_GENERAL,
		// SHA-512/t: the parameter holds t.
		p11.CKM_SHA512_T, p11.CKM_SHA512_T_HMAC, p11.CKM_SHA512_T_HMAC_GENERAL,
		p11.CKM_SHA512_T_KEY_DERIVATION,
		// SSL 3.0 and TLS 1.0 MACs: the MAC's length.
		p11.CKM_SSL3_MD5_MAC, p11.CKM_SSL3_SHA1_MAC,
		p11.CKM_TLS10_MAC_SERVER, p11.CKM_TLS10_MAC_CLIENT}},
	{ExtractParams, []uint64{p11.CKM_EXTRACT_KEY_FROM_KEY}},
	{ObjectHandleParam, []uint64{p11.CKM_CONCATENATE_BASE_AND_KEY}},
	{Version, []uint64{p11.CKM_SSL3_PRE_MASTER_KEY_GEN, p11.CKM_TLS_PRE_MASTER_KEY_GEN}},
	{FortezzaIV, []uint64{
		p11.CKM_SKIPJACK_ECB64, p11.CKM_SKIPJACK_CBC64, p11.CKM_SKIPJACK_OFB64,
		p11.CKM_SKIPJACK_CFB64, p11.CKM_SKIPJACK_CFB32, p11.CKM_SKIPJACK_CFB16,
		p11.CKM_SKIPJACK_CFB8,
		p11.CKM_BATON_ECB128, p11.CKM_BATON_ECB96, p11.CKM_BATON_CBC128,
		p11.CKM_BATON_COUNTER, p11.CKM_BATON_SHUFFLE,
		p11.CKM_JUNIPER_ECB128, p11.CKM_JUNIPER_CBC128, p11.CKM_JUNIPER_COUNTER,
		p11.CKM_JUNIPER_SHUFFLE}},
	{KeyDerivationStringData, []uint64{
		p11.CKM_CONCATENATE_BASE_AND_DATA, p11.CKM_CONCATENATE_DATA_AND_BASE,
		p11.CKM_XOR_BASE_AND_DATA,
		p11.CKM_DES_ECB_ENCRYPT_DATA, p11.CKM_DES3_ECB_ENCRYPT_DATA, p11.CKM_AES_ECB_ENCRYPT_DATA,
		p11.CKM_CAMELLIA_ECB_ENCRYPT_DATA, p11.CKM_ARIA_ECB_ENCRYPT_DATA,
		p11.CKM_SEED_ECB_ENCRYPT_DATA}},
	{DESCBCEncryptDataParams, []uint64{p11.CKM_DES_CBC_ENCRYPT_DATA, p11.CKM_DES3_CBC_ENCRYPT_DATA}},
	{AESCBCEncryptDataParams, []uint64{p11.CKM_AES_CBC_ENCRYPT_DATA}},
	{CamelliaCBCEncryptDataParams, []uint64{p11.CKM_CAMELLIA_CBC_ENCRYPT_DATA}},
	{ARIACBCEncryptDataParams, []uint64{p11.CKM_ARIA_CBC_ENCRYPT_DATA}},
	{SEEDCBCEncryptDataParams, []uint64{p11.CKM_SEED_CBC_ENCRYPT_DATA}},
	{SkipjackPrivateWrapParams, []uint64{p11.CKM_SKIPJACK_PRIVATE_WRAP}},
	{SkipjackRelayxParams, []uint64{p11.CKM_SKIPJACK_RELAYX}},
	{PBEParams, []uint64{
		p11.CKM_PBE_MD2_DES_CBC, p11.CKM_PBE_MD5_DES_CBC, p11.CKM_PBE_MD5_CAST_CBC,
		p11.CKM_PBE_MD5_CAST3_CBC, p11.CKM_PBE_MD5_CAST5_CBC, p11.CKM_PBE_SHA1_CAST5_CBC,
		p11.CKM_PBE_SHA1_RC4_128, p11.CKM_PBE_SHA1_RC4_40, p11.CKM_PBE_SHA1_DES3_EDE_CBC,
		p11.CKM_PBE_SHA1_DES2_EDE_CBC, p11.CKM_PBE_SHA1_RC2_128_CBC, p11.CKM_PBE_SHA1_RC2_40_CBC,
		p11.CKM_PBA_SHA1_WITH_SHA1_HMAC}},
	{PKCS5PBKD2Params, []uint64{p11.CKM_PKCS5_PBKD2}},
	{SSL3MasterKeyDeriveParams, []uint64{
		p11.CKM_SSL3_MASTER_KEY_DERIVE, p11.CKM_SSL3_MASTER_KEY_DERIVE_DH,
		p11.CKM_TLS_MASTER_KEY_DERIVE, p11.CKM_TLS_MASTER_KEY_DERIVE_DH}},
	{SSL3KeyMatParams, []uint64{p11.CKM_SSL3_KEY_AND_MAC_DERIVE, p11.CKM_TLS_KEY_AND_MAC_DERIVE}},
	{TLSPRFParams, []uint64{p11.CKM_TLS_PRF}},
	{TLS12MasterKeyDeriveParams, []uint64{p11.CKM_TLS12_MASTER_KEY_DERIVE, p11.CKM_TLS12_MASTER_KEY_DERIVE_DH}},
	{TLS12KeyMatParams, []uint64{p11.CKM_TLS12_KEY_AND_MAC_DERIVE, p11.CKM_TLS12_KEY_SAFE_DERIVE}},
	{TLSKDFParams, []uint64{p11.CKM_TLS_KDF, p11.CKM_TLS12_KDF}},
	{TLSMACParams, []uint64{p11.CKM_TLS_MAC, p11.CKM_TLS12_MAC}},
	{WTLSMasterKeyDeriveParams, []uint64{p11.CKM_WTLS_MASTER_KEY_DERIVE, p11.CKM_WTLS_MASTER_KEY_DERIVE_DH_ECC}},
	{WTLSPRFParams, []uint64{p11.CKM_WTLS_PRF}},
	{WTLSKeyMatParams, []uint64{p11.CKM_WTLS_SERVER_KEY_AND_MAC_DERIVE, p11.CKM_WTLS_CLIENT_KEY_AND_MAC_DERIVE}},
	{CMSSigParams, []uint64{p11.CKM_CMS_SIG}},
	{KIPParams, []uint64{p11.CKM_KIP_DERIVE, p11.CKM_KIP_WRAP, p11.CKM_KIP_MAC}},
	{OTPParams, []uint64{p11.CKM_SECURID, p11.CKM_HOTP, p11.CKM_ACTI}},
	{GOSTR3410DeriveParams, []uint64{p11.CKM_GOSTR3410_DERIVE}},
	{GOSTR3410KeyWrapParams, []uint64{p11.CKM_GOSTR3410_KEY_WRAP}},
}

// raw lists mechanisms whose parameter is opaque bytes: IVs, OIDs, public
// values, a version byte.
var raw = []uint64{
	// IVs of CBC, CBC_PAD, CTS, OFB and CFB modes.
	p11.CKM_DES_CBC, p11.CKM_DES_CBC_PAD, p11.CKM_DES3_CBC, p11.CKM_DES3_CBC_PAD,
	p11.CKM_DES_OFB64, p11.CKM_DES_OFB8, p11.CKM_DES_CFB64, p11.CKM_DES_CFB8,
	p11.CKM_CDMF_CBC, p11.CKM_CDMF_CBC_PAD,
	p11.CKM_AES_CBC, p11.CKM_AES_CBC_PAD, p11.CKM_AES_CTS, p11.CKM_AES_OFB,
	p11.CKM_AES_CFB1, p11.CKM_AES_CFB8, p11.CKM_AES_CFB64, p11.CKM_AES_CFB128,
	p11.CKM_CAST_CBC, p11.CKM_CAST_CBC_PAD, p11.CKM_CAST3_CBC, p11.CKM_CAST3_CBC_PAD,
	p11.CKM_CAST5_CBC, p11.CKM_CAST5_CBC_PAD,
	p11.CKM_IDEA_CBC, p11.CKM_IDEA_CBC_PAD,
	p11.CKM_CAMELLIA_CBC, p11.CKM_CAMELLIA_CBC_PAD, p11.CKM_ARIA_CBC, p11.CKM_ARIA_CBC_PAD,
	p11.CKM_SEED_CBC, p11.CKM_SEED_CBC_PAD,
	p11.CKM_BLOWFISH_CBC, p11.CKM_BLOWFISH_CBC_PAD, p11.CKM_TWOFISH_CBC, p11.CKM_TWOFISH_CBC_PAD,
	p11.CKM_GOST28147, p11.CKM_GOST28147_MAC,
	// GMAC's IV; the key wraps' optional IV; GOST key wrap's UKM.
	p11.CKM_AES_GMAC, p11.CKM_AES_KEY_WRAP, p11.CKM_AES_KEY_WRAP_PAD, p11.CKM_GOST28147_KEY_WRAP,
	// DER-encoded OIDs of GOST R 34.11 parameter sets (optional).
	p11.CKM_GOSTR3410_WITH_GOSTR3411, p11.CKM_GOSTR3411, p11.CKM_GOSTR3411_HMAC,
	// The other party's public value; the client's WTLS version byte.
	p11.CKM_DH_PKCS_DERIVE, p11.CKM_WTLS_PRE_MASTER_KEY_GEN,
}

// none lists the 2.40 mechanisms that take no parameter. An application
// passing one anyway gets it forwarded as opaque bytes, as the vendor would
// see it directly.
var none = []uint64{
	p11.CKM_RSA_PKCS_KEY_PAIR_GEN, p11.CKM_RSA_PKCS, p11.CKM_RSA_9796, p11.CKM_RSA_X_509,
	p11.CKM_MD2_RSA_PKCS, p11.CKM_MD5_RSA_PKCS, p11.CKM_SHA1_RSA_PKCS,
	p11.CKM_RIPEMD128_RSA_PKCS, p11.CKM_RIPEMD160_RSA_PKCS,
	p11.CKM_RSA_X9_31_KEY_PAIR_GEN, p11.CKM_RSA_X9_31, p11.CKM_SHA1_RSA_X9_31,
	p11.CKM_SHA224_RSA_PKCS, p11.CKM_SHA256_RSA_PKCS, p11.CKM_SHA384_RSA_PKCS, p11.CKM_SHA512_RSA_PKCS,
	p11.CKM_SHA3_224_RSA_PKCS, p11.CKM_SHA3_256_RSA_PKCS, p11.CKM_SHA3_384_RSA_PKCS, p11.CKM_SHA3_512_RSA_PKCS,
	p11.CKM_RSA_PKCS_TPM_1_1, p11.CKM_RSA_PKCS_OAEP_TPM_1_1,
	p11.CKM_DSA_KEY_PAIR_GEN, p11.CKM_DSA, p11.CKM_DSA_SHA1, p11.CKM_DSA_SHA224, p11.CKM_DSA_SHA256,
	p11.CKM_DSA_SHA384, p11.CKM_DSA_SHA512, p11.CKM_DSA_SHA3_224, p11.CKM_DSA_SHA3_256,
	p11.CKM_DSA_SHA3_384, p11.CKM_DSA_SHA3_512,
	p11.CKM_DSA_PARAMETER_GEN, p11.CKM_DH_PKCS_PARAMETER_GEN, p11.CKM_X9_42_DH_PARAMETER_GEN,
	p11.CKM_DH_PKCS_KEY_PAIR_GEN, p11.CKM_X9_42_DH_KEY_PAIR_GEN,
	p11.CKM_EC_KEY_PAIR_GEN, p11.CKM_ECDSA, p11.CKM_ECDSA_SHA1, p11.CKM_ECDSA_SHA224,
	p11.CKM_ECDSA_SHA256, p11.CKM_ECDSA_SHA384, p11.CKM_ECDSA_SHA512,
	ckmECEdwardsKeyPairGen, ckmECMontgomeryKeyPairGen,
	p11.CKM_KEA_KEY_PAIR_GEN, p11.CKM_FORTEZZA_TIMESTAMP,
	// Key generation.
	p11.CKM_RC2_KEY_GEN, p11.CKM_RC4_KEY_GEN, p11.CKM_DES_KEY_GEN, p11.CKM_DES2_KEY_GEN,
	p11.CKM_DES3_KEY_GEN, p11.CKM_CDMF_KEY_GEN, p11.CKM_CAST_KEY_GEN, p11.CKM_CAST3_KEY_GEN,
	p11.CKM_CAST5_KEY_GEN, p11.CKM_RC5_KEY_GEN, p11.CKM_IDEA_KEY_GEN, p11.CKM_GENERIC_SECRET_KEY_GEN,
	p11.CKM_SECURID_KEY_GEN, p11.CKM_HOTP_KEY_GEN, p11.CKM_ACTI_KEY_GEN,
	p11.CKM_SHA3_224_KEY_GEN, p11.CKM_SHA3_256_KEY_GEN, p11.CKM_SHA3_384_KEY_GEN, p11.CKM_SHA3_512_KEY_GEN,
	p11.CKM_CAMELLIA_KEY_GEN, p11.CKM_ARIA_KEY_GEN, p11.CKM_SEED_KEY_GEN, p11.CKM_SKIPJACK_KEY_GEN,
	p11.CKM_BATON_KEY_GEN, p11.CKM_JUNIPER_KEY_GEN, p11.CKM_AES_KEY_GEN, p11.CKM_BLOWFISH_KEY_GEN,
	p11.CKM_TWOFISH_KEY_GEN, p11.CKM_GOSTR3410_KEY_PAIR_GEN, p11.CKM_GOST28147_KEY_GEN,
	// ECB modes, RC4, fixed-length MACs and CMACs, digests, HMACs, digest
	// key derivations, signatures and key wraps without parameters.
	p11.CKM_RC4, p11.CKM_DES_ECB, p11.CKM_DES_MAC, p11.CKM_DES3_ECB, p11.CKM_DES3_MAC, p11.CKM_DES3_CMAC,
	p11.CKM_CDMF_ECB, p11.CKM_CDMF_MAC, p11.CKM_CAST_ECB, p11.CKM_CAST_MAC, p11.CKM_CAST3_ECB,
	p11.CKM_CAST3_MAC, p11.CKM_CAST5_ECB, p11.CKM_CAST5_MAC, p11.CKM_IDEA_ECB, p11.CKM_IDEA_MAC,
	p11.CKM_CAMELLIA_ECB, p11.CKM_CAMELLIA_MAC, p11.CKM_ARIA_ECB, p11.CKM_ARIA_MAC,
	p11.CKM_SEED_ECB, p11.CKM_SEED_MAC, p11.CKM_AES_ECB, p11.CKM_AES_MAC, p11.CKM_AES_CMAC,
	p11.CKM_AES_XCBC_MAC, p11.CKM_AES_XCBC_MAC_96, p11.CKM_GOST28147_ECB,
	p11.CKM_MD2, p11.CKM_MD2_HMAC, p11.CKM_MD5, p11.CKM_MD5_HMAC, p11.CKM_SHA_1, p11.CKM_SHA_1_HMAC,
	p11.CKM_RIPEMD128, p11.CKM_RIPEMD128_HMAC, p11.CKM_RIPEMD160, p11.CKM_RIPEMD160_HMAC,
	p11.CKM_SHA224, p11.CKM_SHA224_HMAC, p11.CKM_SHA256, p11.CKM_SHA256_HMAC,
	p11.CKM_SHA384, p11.CKM_SHA384_HMAC, p11.CKM_SHA512, p11.CKM_SHA512_HMAC,
	p11.CKM_SHA512_224, p11.CKM_SHA512_224_HMAC, p11.CKM_SHA512_256, p11.CKM_SHA512_256_HMAC,
	p11.CKM_SHA3_224, p11.CKM_SHA3_224_HMAC, p11.CKM_SHA3_256, p11.CKM_SHA3_256_HMAC,
	p11.CKM_SHA3_384, p11.CKM_SHA3_384_HMAC, p11.CKM_SHA3_512, p11.CKM_SHA3_512_HMAC,
	p11.CKM_FASTHASH, p11.CKM_GOSTR3410,
	p11.CKM_MD2_KEY_DERIVATION, p11.CKM_MD5_KEY_DERIVATION, p11.CKM_SHA1_KEY_DERIVATION,
	p11.CKM_SHA224_KEY_DERIVATION, p11.CKM_SHA256_KEY_DERIVATION, p11.CKM_SHA384_KEY_DERIVATION,
	p11.CKM_SHA512_KEY_DERIVATION, p11.CKM_SHA512_224_KEY_DERIVATION, p11.CKM_SHA512_256_KEY_DERIVATION,
	p11.CKM_SHA3_224_KEY_DERIVE, p11.CKM_SHA3_256_KEY_DERIVE, p11.CKM_SHA3_384_KEY_DERIVE,
	p11.CKM_SHA3_512_KEY_DERIVE, p11.CKM_SHAKE_128_KEY_DERIVE, p11.CKM_SHAKE_256_KEY_DERIVE,
	p11.CKM_KEY_WRAP_LYNKS, p11.CKM_SKIPJACK_WRAP, p11.CKM_BATON_WRAP, p11.CKM_JUNIPER_WRAP,
}

// class is how a mechanism's parameter crosses.
type class struct {
	l   *Layout // a structure; nil: opaque bytes
	raw bool    // a parameter of opaque bytes (false: the mechanism takes none)
}

var classes = func() map[uint64]class {
	m := map[uint64]class{}
	add := func(mech uint64, c class) {
		if old, dup := m[mech]; dup && old != c {
			panic(fmt.Sprintf("mechparams: mechanism 0x%x classified twice", mech))
		}
		m[mech] = c
	}
	for _, s := range append(structured[:len(structured):len(structured)], structured3...) {
		checkTop(s.l)
		for _, mech := range s.mechs {
			add(mech, class{l: s.l})
		}
	}
	for _, mech := range append(raw[:len(raw):len(raw)], raw3...) {
		add(mech, class{raw: true})
	}
	for _, mech := range append(none[:len(none):len(none)], none3...) {
		add(mech, class{})
	}
	return m
}()

// checkTop panics unless l can be a mechanism's whole parameter.
func checkTop(l *Layout) {
	if len(l.ups) > 0 {
		panic("mechparams: " + l.Name + " reads lengths of an enclosing structure it has not")
	}
}

// alts maps a mechanism to the other structures its parameter may be,
// told apart from its own (Lookup's) by size; see LookupSize.
var alts = func() map[uint64][]*Layout {
	m := map[uint64][]*Layout{}
	for _, a := range alternates {
		checkTop(a.l)
		for _, mech := range a.mechs {
			c, ok := classes[mech]
			if !ok || c.l == nil {
				panic(fmt.Sprintf("mechparams: %s: mechanism 0x%x has no structure of its own", a.l.Name, mech))
			}
			for _, o := range append(m[mech], c.l) {
				if o.Size == a.l.Size {
					panic(fmt.Sprintf("mechparams: mechanism 0x%x: %s and %s are both %d bytes", mech, o.Name, a.l.Name, o.Size))
				}
			}
			m[mech] = append(m[mech], a.l)
		}
	}
	return m
}()

// messageClasses is the second classification: the per-message parameter
// of C_EncryptMessage, C_DecryptMessage and their Begin and Next forms,
// by the mechanism of C_MessageEncryptInit or C_MessageDecryptInit.
var messageClasses = func() map[uint64]class {
	m := map[uint64]class{}
	for _, s := range messages {
		checkTop(s.l)
		for _, mech := range s.mechs {
			if _, dup := m[mech]; dup {
				panic(fmt.Sprintf("mechparams: message mechanism 0x%x classified twice", mech))
			}
			m[mech] = class{l: s.l}
		}
	}
	return m
}()

// VendorDefined is CKM_VENDOR_DEFINED: mechanisms at or above it carry
// parameters only their vendor understands, forwarded verbatim.
const VendorDefined = 1 << 31

// Lookup returns the layout of mech's parameter. raw is true when the
// parameter crosses as opaque bytes; ok is false when the registry cannot
// carry a parameter for mech.
func Lookup(mech uint64) (l *Layout, raw bool, ok bool) {
	if c, found := classes[mech]; found {
		return c.l, c.l == nil, true
	}
	if mech >= VendorDefined {
		return nil, true, true
	}
	return nil, false, false
}

// LookupSize is Lookup for a parameter of size bytes: when mech takes more
// than one structure (CKM_AES_GCM: CK_GCM_PARAMS, and PKCS#11 3.2's
// CK_GCM_WRAP_PARAMS in C_WrapKey and C_UnwrapKey) it returns the one of
// that size. With none of that size it answers as Lookup does; the caller
// then treats the parameter as it treats any of the wrong size.
func LookupSize(mech, size uint64) (l *Layout, raw bool, ok bool) {
	for _, a := range alts[mech] {
		if uint64(a.Size) == size {
			return a, false, true
		}
	}
	return Lookup(mech)
}

// MessageLookup returns the layout of the per-message parameter (the
// pParameter of C_EncryptMessage, C_SignMessage, ... and their Begin and
// Next forms) for a message operation begun with mech. The contract is
// Lookup's. The AEAD mechanisms have message structures of their own
// (CK_GCM_MESSAGE_PARAMS, ...); any other mechanism's per-message
// parameter is its own parameter (ML-DSA's CK_SIGN_ADDITIONAL_CONTEXT), so
// the answer is Lookup's, vendor-defined mechanisms' opaque bytes included.
func MessageLookup(mech uint64) (l *Layout, raw bool, ok bool) {
	if c, found := messageClasses[mech]; found {
		return c.l, false, true
	}
	return Lookup(mech)
}

// Layouts returns every distinct structure of the registry, nested ones
// included, sorted by name; of several layouts of one C structure (an
// input and an output CK_VERSION) it returns the first.
func Layouts() []*Layout {
	seen := map[string]bool{}
	var out []*Layout
	for _, l := range AllLayouts() {
		if !seen[l.Name] {
			seen[l.Name] = true
			out = append(out, l)
		}
	}
	return out
}

// Index is l's position in AllLayouts: the C tables' numbering.
func (l *Layout) Index() int {
	for i, x := range AllLayouts() {
		if x == l {
			return i
		}
	}
	panic("mechparams: " + l.Name + " is not in AllLayouts")
}

// LenName is the name of the enclosing structure's field an Up length
// reads ("" for other fields).
func (f *Field) LenName() string { return f.lenName }

// Mechanism is how one mechanism's parameter crosses: a structure of
// Layout, opaque bytes (Raw), or none (neither).
type Mechanism struct {
	Type   uint64
	Layout *Layout
	Raw    bool
}

// Mechanisms lists the registry's classification, by mechanism type.
func Mechanisms() []Mechanism { return list(classes) }

// MessageMechanisms lists the message classification (MessageLookup's own
// table, without Lookup's answers it falls back to), by mechanism type.
func MessageMechanisms() []Mechanism { return list(messageClasses) }

// Alternates lists the other structures of LookupSize, by mechanism type
// and then size.
func Alternates() []Mechanism {
	var out []Mechanism
	for mech, ls := range alts {
		for _, l := range ls {
			out = append(out, Mechanism{Type: mech, Layout: l})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Type != out[j].Type {
			return out[i].Type < out[j].Type
		}
		return out[i].Layout.Size < out[j].Layout.Size
	})
	return out
}

func list(m map[uint64]class) []Mechanism {
	out := make([]Mechanism, 0, len(m))
	for mech, c := range m {
		out = append(out, Mechanism{Type: mech, Layout: c.l, Raw: c.raw})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

// AllLayouts returns every layout of the registry, nested ones and
// CK_MECHANISM included, each once even when two share a C name (an input
// and an output CK_VERSION): the ones with the same name in registry order,
// the rest by name.
func AllLayouts() []*Layout {
	seen := map[*Layout]bool{}
	var out []*Layout
	var walk func(l *Layout)
	walk = func(l *Layout) {
		if seen[l] {
			return
		}
		seen[l] = true
		out = append(out, l)
		for _, f := range l.Fields {
			if f.Sub != nil {
				walk(f.Sub)
			}
			for _, c := range f.Cases {
				if c.Sub != nil {
					walk(c.Sub)
				}
			}
		}
	}
	walk(mechanism)
	walk(attribute)
	for _, s := range structured {
		walk(s.l)
	}
	walk(ECDH2DeriveParams)
	for _, s := range structured3 {
		walk(s.l)
	}
	for _, s := range alternates {
		walk(s.l)
	}
	for _, s := range messages {
		walk(s.l)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// MechanismLayout is CK_MECHANISM's layout: a nested mechanism (MechPtr)
// is walked by it.
func MechanismLayout() *Layout { return mechanism }

// AttributeLayout is CK_ATTRIBUTE's layout: the elements of a Template.
func AttributeLayout() *Layout { return attribute }
