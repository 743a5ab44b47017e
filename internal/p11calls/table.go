// Package p11calls is the single table of PKCS#11 functions. It drives the C
// shim's exported symbols and function list, the proxy's request encoder, the
// host's decoder and its call into the vendor's CK_FUNCTION_LIST: nothing else
// lists the functions by hand.
//
// Each function's arguments are a string over this alphabet. A kind stands for
// one or more consecutive C parameters (the count is in brackets):
//
//	in   u  CK_ULONG value: flags, user type, mechanism type              [1]
//	     b  CK_BBOOL value                                                [1]
//	     l  CK_SLOT_ID                                                    [1]
//	     s  CK_SESSION_HANDLE (the proxy may remap it)                    [1]
//	     o  CK_OBJECT_HANDLE (the proxy may remap it)                     [1]
//	     y  input bytes: CK_BYTE_PTR, CK_ULONG length                     [2]
//	     z  32-byte blank-padded label, CK_UTF8CHAR_PTR (C_InitToken)     [1]
//	     a  input template: CK_ATTRIBUTE_PTR, CK_ULONG count              [2]
//	     m  CK_MECHANISM_PTR; parameter output fields come back           [1]
//	     M  a message's parameter: CK_VOID_PTR, CK_ULONG length; laid out [2]
//	        as the session's message mechanism's (C_MessageEncryptInit,
//	        ...) per-message parameter; output fields come back
//	     N  CK_UTF8CHAR_PTR, a NUL-terminated function name (C_Async*)    [1]
//	     x  reserved pointer: only NULL or not crosses                    [1]
//	     n  C_OpenSession's pApplication and Notify: never cross          [2]
//	     I  C_Initialize's CK_C_INITIALIZE_ARGS_PTR                       [1]
//	out  Y  output bytes: CK_BYTE_PTR, CK_ULONG_PTR length in/out         [2]
//	     G  output bytes of the caller's length: CK_BYTE_PTR, CK_ULONG    [2]
//	     A  template filled in place: CK_ATTRIBUTE_PTR, CK_ULONG count    [2]
//	     L  slot list: CK_SLOT_ID_PTR, CK_ULONG_PTR count in/out          [2]
//	     K  mechanism list: CK_MECHANISM_TYPE_PTR, CK_ULONG_PTR count     [2]
//	     F  object handles: CK_OBJECT_HANDLE_PTR, CK_ULONG max, CK_ULONG_PTR [3]
//	     U  CK_ULONG_PTR                                                  [1]
//	     P  CK_SLOT_ID_PTR                                                [1]
//	     S  CK_SESSION_HANDLE_PTR                                         [1]
//	     O  CK_OBJECT_HANDLE_PTR                                          [1]
//	     i  CK_INFO_PTR                                                   [1]
//	     j  CK_SLOT_INFO_PTR                                              [1]
//	     k  CK_TOKEN_INFO_PTR                                             [1]
//	     e  CK_SESSION_INFO_PTR                                           [1]
//	     q  CK_MECHANISM_INFO_PTR                                         [1]
//	     D  CK_ASYNC_DATA_PTR: a completed call's output and handles      [1]
//	     B  an output buffer the vendor fills later (C_AsyncJoin):        [2]
//	        CK_BYTE_PTR, CK_ULONG capacity
//	local (answered by the C shim alone, never on the wire)
//	     Q  CK_FUNCTION_LIST_PTR_PTR (C_GetFunctionList)                  [1]
//	     W  CK_INTERFACE_PTR, CK_ULONG_PTR count in/out                   [2]
//	     J  CK_UTF8CHAR_PTR name, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR    [3]
//
// A call that returns CKR_PENDING on an asynchronous session (3.2) keeps
// its output buffer: the vendor writes the result there when the operation
// completes, and C_AsyncComplete tells where (see cshim/sessions.c).
// Every pointer crosses as "NULL" or as its value, so the vendor sees the call
// shape the application made and gives its own answer.
package p11calls

import "fmt"

// Func is one PKCS#11 function.
type Func struct {
	ID   int    // position in CK_FUNCTION_LIST after the version field
	Name string // C name, e.g. "C_Sign"
	Args string // argument kinds, see the package comment
}

// Version is the Cryptoki version of the function list C_GetFunctionList
// returns; C_GetInterface's lists carry the vendor's versions.
const (
	VersionMajor = 2
	VersionMinor = 40
)

// GetFunctionList is answered by the C shim alone and never crosses the wire.
const GetFunctionList = "C_GetFunctionList"

// How many functions each version's function list holds: the lists are
// prefixes of one another (3.1's is 3.0's).
const (
	N240 = 68  // CK_FUNCTION_LIST
	N30  = 92  // CK_FUNCTION_LIST_3_0
	N32  = 104 // CK_FUNCTION_LIST_3_2
)

// Routes: the function list a call came through, which the host calls
// the vendor through in turn (a module may answer differently per version:
// NSS's C_GetInfo of its 2.40 list reports 2.40, of its 3.0 list 3.0). A
// request's first number is ID + RouteStride*route.
const (
	Route240    = 0 // C_GetFunctionList's list, and a 2.x interface's
	Route30     = 1 // a 3.0 or 3.1 interface's list
	Route32     = 2 // a 3.2 (or later 3.x) interface's list
	NRoutes     = 3
	RouteStride = 256
)

// Routes gives the number of functions the list of each route holds.
var Routes = [NRoutes]int{N240, N30, N32}

// Funcs is every PKCS#11 function in the order of the 3.2 function list,
// which extends 3.0's, which extends 2.40's (the OASIS headers' order).
var Funcs = []Func{
	{0, "C_Initialize", "I"},
	{1, "C_Finalize", "x"},
	{2, "C_GetInfo", "i"},
	{3, "C_GetFunctionList", "Q"},
	{4, "C_GetSlotList", "bL"},
	{5, "C_GetSlotInfo", "lj"},
	{6, "C_GetTokenInfo", "lk"},
	{7, "C_GetMechanismList", "lK"},
	{8, "C_GetMechanismInfo", "luq"},
	{9, "C_InitToken", "lyz"},
	{10, "C_InitPIN", "sy"},
	{11, "C_SetPIN", "syy"},
	{12, "C_OpenSession", "lunS"},
	{13, "C_CloseSession", "s"},
	{14, "C_CloseAllSessions", "l"},
	{15, "C_GetSessionInfo", "se"},
	{16, "C_GetOperationState", "sY"},
	{17, "C_SetOperationState", "syoo"},
	{18, "C_Login", "suy"},
	{19, "C_Logout", "s"},
	{20, "C_CreateObject", "saO"},
	{21, "C_CopyObject", "soaO"},
	{22, "C_DestroyObject", "so"},
	{23, "C_GetObjectSize", "soU"},
	{24, "C_GetAttributeValue", "soA"},
	{25, "C_SetAttributeValue", "soa"},
	{26, "C_FindObjectsInit", "sa"},
	{27, "C_FindObjects", "sF"},
	{28, "C_FindObjectsFinal", "s"},
	{29, "C_EncryptInit", "smo"},
	{30, "C_Encrypt", "syY"},
	{31, "C_EncryptUpdate", "syY"},
	{32, "C_EncryptFinal", "sY"},
	{33, "C_DecryptInit", "smo"},
	{34, "C_Decrypt", "syY"},
	{35, "C_DecryptUpdate", "syY"},
	{36, "C_DecryptFinal", "sY"},
	{37, "C_DigestInit", "sm"},
	{38, "C_Digest", "syY"},
	{39, "C_DigestUpdate", "sy"},
	{40, "C_DigestKey", "so"},
	{41, "C_DigestFinal", "sY"},
	{42, "C_SignInit", "smo"},
	{43, "C_Sign", "syY"},
	{44, "C_SignUpdate", "sy"},
	{45, "C_SignFinal", "sY"},
	{46, "C_SignRecoverInit", "smo"},
	{47, "C_SignRecover", "syY"},
	{48, "C_VerifyInit", "smo"},
	{49, "C_Verify", "syy"},
	{50, "C_VerifyUpdate", "sy"},
	{51, "C_VerifyFinal", "sy"},
	{52, "C_VerifyRecoverInit", "smo"},
	{53, "C_VerifyRecover", "syY"},
	{54, "C_DigestEncryptUpdate", "syY"},
	{55, "C_DecryptDigestUpdate", "syY"},
	{56, "C_SignEncryptUpdate", "syY"},
	{57, "C_DecryptVerifyUpdate", "syY"},
	{58, "C_GenerateKey", "smaO"},
	{59, "C_GenerateKeyPair", "smaaOO"},
	{60, "C_WrapKey", "smooY"},
	{61, "C_UnwrapKey", "smoyaO"},
	{62, "C_DeriveKey", "smoaO"},
	{63, "C_SeedRandom", "sy"},
	{64, "C_GenerateRandom", "sG"},
	{65, "C_GetFunctionStatus", "s"},
	{66, "C_CancelFunction", "s"},
	{67, "C_WaitForSlotEvent", "uPx"},
	// PKCS#11 3.0
	{68, "C_GetInterfaceList", "W"},
	{69, "C_GetInterface", "Ju"},
	{70, "C_LoginUser", "suyy"},
	{71, "C_SessionCancel", "su"},
	{72, "C_MessageEncryptInit", "smo"},
	{73, "C_EncryptMessage", "sMyyY"},
	{74, "C_EncryptMessageBegin", "sMy"},
	{75, "C_EncryptMessageNext", "sMyYu"},
	{76, "C_MessageEncryptFinal", "s"},
	{77, "C_MessageDecryptInit", "smo"},
	{78, "C_DecryptMessage", "sMyyY"},
	{79, "C_DecryptMessageBegin", "sMy"},
	{80, "C_DecryptMessageNext", "sMyYu"},
	{81, "C_MessageDecryptFinal", "s"},
	{82, "C_MessageSignInit", "smo"},
	{83, "C_SignMessage", "sMyY"},
	{84, "C_SignMessageBegin", "sM"},
	{85, "C_SignMessageNext", "sMyY"},
	{86, "C_MessageSignFinal", "s"},
	{87, "C_MessageVerifyInit", "smo"},
	{88, "C_VerifyMessage", "sMyy"},
	{89, "C_VerifyMessageBegin", "sM"},
	{90, "C_VerifyMessageNext", "sMyy"},
	{91, "C_MessageVerifyFinal", "s"},
	// PKCS#11 3.2
	{92, "C_EncapsulateKey", "smoaYO"},
	{93, "C_DecapsulateKey", "smoayO"},
	{94, "C_VerifySignatureInit", "smoy"},
	{95, "C_VerifySignature", "sy"},
	{96, "C_VerifySignatureUpdate", "sy"},
	{97, "C_VerifySignatureFinal", "s"},
	{98, "C_GetSessionValidationFlags", "suU"},
	{99, "C_AsyncComplete", "sND"},
	{100, "C_AsyncGetID", "sNU"},
	{101, "C_AsyncJoin", "sNuB"},
	{102, "C_WrapKeyAuthenticated", "smooyY"},
	{103, "C_UnwrapKeyAuthenticated", "smoyayO"},
}

// IDs of the functions the proxy and host treat specially.
const (
	IDInitialize       = 0
	IDFinalize         = 1
	IDGetFunctionList  = 3
	IDGenerateKey      = 58
	IDGenerateKeyPair  = 59
	IDWaitForSlotEvent = 67
	IDGetInterfaceList = 68
	IDGetInterface     = 69
	IDOpenSession      = 12
	IDCloseSession     = 13
	IDCloseAllSessions = 14
	IDAsyncComplete    = 99
	IDAsyncGetID       = 100
	IDAsyncJoin        = 101
)

// NestedAttributes are the attribute types whose value is itself a
// template (an array of CK_ATTRIBUTE): CKA_WRAP_TEMPLATE,
// CKA_UNWRAP_TEMPLATE, CKA_DERIVE_TEMPLATE, and 3.2's
// CKA_ENCAPSULATE_TEMPLATE and CKA_DECAPSULATE_TEMPLATE. The proxy's C
// (generated from this list) and the host walk them as templates.
var NestedAttributes = []uint64{0x40000211, 0x40000212, 0x40000213, 0x62a, 0x62b}

// IsNested reports whether attribute type t's value is a template.
func IsNested(t uint64) bool {
	for _, n := range NestedAttributes {
		if t == n {
			return true
		}
	}
	return false
}

// ByName returns the function named name.
func ByName(name string) (Func, bool) {
	for _, f := range Funcs {
		if f.Name == name {
			return f, true
		}
	}
	return Func{}, false
}

// Local reports whether the C shim answers f alone: the function lists and
// interfaces are the proxy's own.
func (f Func) Local() bool {
	return f.ID == IDGetFunctionList || f.ID == IDGetInterfaceList || f.ID == IDGetInterface
}

// Since is the Cryptoki version that added f: 240, 300 or 320.
func (f Func) Since() int {
	switch {
	case f.ID < N240:
		return 240
	case f.ID < N30:
		return 300
	}
	return 320
}

// MessageOp is the message-based operation (0 encrypt, 1 decrypt, 2 sign,
// 3 verify) whose per-message parameter f takes, or whose mechanism its
// init (op+4) sets and its final (op+8) ends; -1 for other functions.
func (f Func) MessageOp() int {
	if f.ID < 72 || f.ID > 91 {
		return -1
	}
	op, at := (f.ID-72)/5, (f.ID-72)%5
	switch at {
	case 0:
		return op + 4
	case 4:
		return op + 8
	}
	return op
}

// Deadline classes: which of the proxy's deadlines bounds a call of f.
const (
	DeadlineCall   = 0 // the timeout setting
	DeadlineKeygen = 1 // keygen_timeout: key generation may take minutes
	DeadlineNone   = 2 // none: C_WaitForSlotEvent blocks by design (C_Finalize releases it)
)

// Deadline is f's deadline class.
func (f Func) Deadline() int {
	switch f.ID {
	case IDGenerateKey, IDGenerateKeyPair:
		return DeadlineKeygen
	case IDWaitForSlotEvent:
		return DeadlineNone
	}
	return DeadlineCall
}

// CarriesSecret reports whether f's arguments include a PIN, so the buffers
// that held its request are wiped after use.
func (f Func) CarriesSecret() bool {
	switch f.Name {
	case "C_InitToken", "C_InitPIN", "C_SetPIN", "C_Login", "C_LoginUser":
		return true
	}
	return false
}

// CTypes gives, for each kind, the C types of the parameters it stands for.
var CTypes = map[byte][]string{
	'u': {"CK_ULONG"},
	'b': {"CK_BBOOL"},
	'l': {"CK_SLOT_ID"},
	's': {"CK_SESSION_HANDLE"},
	'o': {"CK_OBJECT_HANDLE"},
	'y': {"CK_BYTE_PTR", "CK_ULONG"},
	'z': {"CK_UTF8CHAR_PTR"},
	'a': {"CK_ATTRIBUTE_PTR", "CK_ULONG"},
	'm': {"CK_MECHANISM_PTR"},
	'x': {"CK_VOID_PTR"},
	'n': {"CK_VOID_PTR", "CK_NOTIFY"},
	'I': {"CK_VOID_PTR"},
	'Y': {"CK_BYTE_PTR", "CK_ULONG_PTR"},
	'G': {"CK_BYTE_PTR", "CK_ULONG"},
	'A': {"CK_ATTRIBUTE_PTR", "CK_ULONG"},
	'L': {"CK_SLOT_ID_PTR", "CK_ULONG_PTR"},
	'K': {"CK_MECHANISM_TYPE_PTR", "CK_ULONG_PTR"},
	'F': {"CK_OBJECT_HANDLE_PTR", "CK_ULONG", "CK_ULONG_PTR"},
	'U': {"CK_ULONG_PTR"},
	'P': {"CK_SLOT_ID_PTR"},
	'S': {"CK_SESSION_HANDLE_PTR"},
	'O': {"CK_OBJECT_HANDLE_PTR"},
	'i': {"CK_INFO_PTR"},
	'j': {"CK_SLOT_INFO_PTR"},
	'k': {"CK_TOKEN_INFO_PTR"},
	'e': {"CK_SESSION_INFO_PTR"},
	'q': {"CK_MECHANISM_INFO_PTR"},
	'M': {"CK_VOID_PTR", "CK_ULONG"},
	'N': {"CK_UTF8CHAR_PTR"},
	'D': {"CK_ASYNC_DATA_PTR"},
	'B': {"CK_BYTE_PTR", "CK_ULONG"},
	'Q': {"CK_FUNCTION_LIST_PTR_PTR"},
	'W': {"CK_INTERFACE_PTR", "CK_ULONG_PTR"},
	'J': {"CK_UTF8CHAR_PTR", "CK_VERSION_PTR", "CK_INTERFACE_PTR_PTR"},
}

// InfoStructs are the fixed, pointer-free structures the out kinds i j k e q
// fill: they cross as their raw bytes, whose size the generated C checks.
var InfoStructs = map[byte]struct {
	CType string
	Size  int
}{
	'i': {"CK_INFO", 88},
	'j': {"CK_SLOT_INFO", 112},
	'k': {"CK_TOKEN_INFO", 208},
	'e': {"CK_SESSION_INFO", 32},
	'q': {"CK_MECHANISM_INFO", 24},
}

// NArgs is the number of C parameters of f.
func (f Func) NArgs() int {
	n := 0
	for i := 0; i < len(f.Args); i++ {
		n += len(CTypes[f.Args[i]])
	}
	return n
}

// MaxArgs bounds NArgs over the table; the shim's argument arrays use it.
const MaxArgs = 10

// ByID returns the function with the given ID.
func ByID(id int) (Func, bool) {
	if id < 0 || id >= len(Funcs) {
		return Func{}, false
	}
	return Funcs[id], true
}

// Check validates the table: IDs in order, every kind known. Tests and the
// generator call it.
func Check() error {
	for i, f := range Funcs {
		if f.ID != i {
			return fmt.Errorf("p11calls: %s has ID %d, want %d", f.Name, f.ID, i)
		}
		for j := 0; j < len(f.Args); j++ {
			if _, ok := CTypes[f.Args[j]]; !ok {
				return fmt.Errorf("p11calls: %s: unknown kind %q", f.Name, f.Args[j])
			}
		}
		if f.NArgs() > MaxArgs {
			return fmt.Errorf("p11calls: %s has %d C parameters, more than MaxArgs", f.Name, f.NArgs())
		}
	}
	return nil
}
