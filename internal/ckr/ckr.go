// Package ckr knows the PKCS#11 return codes: which values any version of
// the standard defines, and their names. Applications switch on CKR values,
// so a value no version defines (and below CKR_VENDOR_DEFINED) is a vendor
// bug the proxy does not pass on.
package ckr

import "slices"

// VendorDefined is CKR_VENDOR_DEFINED: it and every value above it belong
// to vendors, and pass. The proxy's check runs in C (p11i_ckr_defined, on
// the table cmd/p11gen writes from Codes); internal/cwire tests it.
const VendorDefined = 0x80000000

// names holds every code of PKCS#11 2.01 through 3.2 (OASIS pkcs11t.h of
// each published version; codes later withdrawn stay, as modules built
// against an old header still return them), with the version that
// introduced it.
var names = map[uint64]string{
	0x0:   "CKR_OK",                               // 2.01
	0x1:   "CKR_CANCEL",                           // 2.01
	0x2:   "CKR_HOST_MEMORY",                      // 2.01
	0x3:   "CKR_SLOT_ID_INVALID",                  // 2.01
	0x5:   "CKR_GENERAL_ERROR",                    // 2.01
	0x6:   "CKR_FUNCTION_FAILED",                  // 2.01
	0x7:   "CKR_ARGUMENTS_BAD",                    // 2.01
	0x8:   "CKR_NO_EVENT",                         // 2.01
	0x9:   "CKR_NEED_TO_CREATE_THREADS",           // 2.01
	0xa:   "CKR_CANT_LOCK",                        // 2.01
	0x10:  "CKR_ATTRIBUTE_READ_ONLY",              // 2.01
	0x11:  "CKR_ATTRIBUTE_SENSITIVE",              // 2.01
	0x12:  "CKR_ATTRIBUTE_TYPE_INVALID",           // 2.01
	0x13:  "CKR_ATTRIBUTE_VALUE_INVALID",          // 2.01
	0x1b:  "CKR_ACTION_PROHIBITED",                // 2.40
	0x20:  "CKR_DATA_INVALID",                     // 2.01
	0x21:  "CKR_DATA_LEN_RANGE",                   // 2.01
	0x30:  "CKR_DEVICE_ERROR",                     // 2.01
	0x31:  "CKR_DEVICE_MEMORY",                    // 2.01
	0x32:  "CKR_DEVICE_REMOVED",                   // 2.01
	0x40:  "CKR_ENCRYPTED_DATA_INVALID",           // 2.01
	0x41:  "CKR_ENCRYPTED_DATA_LEN_RANGE",         // 2.01
	0x42:  "CKR_AEAD_DECRYPT_FAILED",              // 3.0
	0x50:  "CKR_FUNCTION_CANCELED",                // 2.01
	0x51:  "CKR_FUNCTION_NOT_PARALLEL",            // 2.01
	0x54:  "CKR_FUNCTION_NOT_SUPPORTED",           // 2.01
	0x60:  "CKR_KEY_HANDLE_INVALID",               // 2.01
	0x62:  "CKR_KEY_SIZE_RANGE",                   // 2.01
	0x63:  "CKR_KEY_TYPE_INCONSISTENT",            // 2.01
	0x64:  "CKR_KEY_NOT_NEEDED",                   // 2.01
	0x65:  "CKR_KEY_CHANGED",                      // 2.01
	0x66:  "CKR_KEY_NEEDED",                       // 2.01
	0x67:  "CKR_KEY_INDIGESTIBLE",                 // 2.01
	0x68:  "CKR_KEY_FUNCTION_NOT_PERMITTED",       // 2.01
	0x69:  "CKR_KEY_NOT_WRAPPABLE",                // 2.01
	0x6a:  "CKR_KEY_UNEXTRACTABLE",                // 2.01
	0x70:  "CKR_MECHANISM_INVALID",                // 2.01
	0x71:  "CKR_MECHANISM_PARAM_INVALID",          // 2.01
	0x82:  "CKR_OBJECT_HANDLE_INVALID",            // 2.01
	0x90:  "CKR_OPERATION_ACTIVE",                 // 2.01
	0x91:  "CKR_OPERATION_NOT_INITIALIZED",        // 2.01
	0xa0:  "CKR_PIN_INCORRECT",                    // 2.01
	0xa1:  "CKR_PIN_INVALID",                      // 2.01
	0xa2:  "CKR_PIN_LEN_RANGE",                    // 2.01
	0xa3:  "CKR_PIN_EXPIRED",                      // 2.01
	0xa4:  "CKR_PIN_LOCKED",                       // 2.01
	0xb0:  "CKR_SESSION_CLOSED",                   // 2.01
	0xb1:  "CKR_SESSION_COUNT",                    // 2.01
	0xb3:  "CKR_SESSION_HANDLE_INVALID",           // 2.01
	0xb4:  "CKR_SESSION_PARALLEL_NOT_SUPPORTED",   // 2.01
	0xb5:  "CKR_SESSION_READ_ONLY",                // 2.01
	0xb6:  "CKR_SESSION_EXISTS",                   // 2.01
	0xb7:  "CKR_SESSION_READ_ONLY_EXISTS",         // 2.01
	0xb8:  "CKR_SESSION_READ_WRITE_SO_EXISTS",     // 2.01
	0xc0:  "CKR_SIGNATURE_INVALID",                // 2.01
	0xc1:  "CKR_SIGNATURE_LEN_RANGE",              // 2.01
	0xd0:  "CKR_TEMPLATE_INCOMPLETE",              // 2.01
	0xd1:  "CKR_TEMPLATE_INCONSISTENT",            // 2.01
	0xe0:  "CKR_TOKEN_NOT_PRESENT",                // 2.01
	0xe1:  "CKR_TOKEN_NOT_RECOGNIZED",             // 2.01
	0xe2:  "CKR_TOKEN_WRITE_PROTECTED",            // 2.01
	0xf0:  "CKR_UNWRAPPING_KEY_HANDLE_INVALID",    // 2.01
	0xf1:  "CKR_UNWRAPPING_KEY_SIZE_RANGE",        // 2.01
	0xf2:  "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT", // 2.01
	0x100: "CKR_USER_ALREADY_LOGGED_IN",           // 2.01
	0x101: "CKR_USER_NOT_LOGGED_IN",               // 2.01
	0x102: "CKR_USER_PIN_NOT_INITIALIZED",         // 2.01
	0x103: "CKR_USER_TYPE_INVALID",                // 2.01
	0x104: "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",   // 2.01
	0x105: "CKR_USER_TOO_MANY_TYPES",              // 2.01
	0x110: "CKR_WRAPPED_KEY_INVALID",              // 2.01
	0x112: "CKR_WRAPPED_KEY_LEN_RANGE",            // 2.01
	0x113: "CKR_WRAPPING_KEY_HANDLE_INVALID",      // 2.01
	0x114: "CKR_WRAPPING_KEY_SIZE_RANGE",          // 2.01
	0x115: "CKR_WRAPPING_KEY_TYPE_INCONSISTENT",   // 2.01
	0x120: "CKR_RANDOM_SEED_NOT_SUPPORTED",        // 2.01
	0x121: "CKR_RANDOM_NO_RNG",                    // 2.01
	0x130: "CKR_DOMAIN_PARAMS_INVALID",            // 2.11
	0x140: "CKR_CURVE_NOT_SUPPORTED",              // 2.40
	0x150: "CKR_BUFFER_TOO_SMALL",                 // 2.01
	0x160: "CKR_SAVED_STATE_INVALID",              // 2.01
	0x170: "CKR_INFORMATION_SENSITIVE",            // 2.01
	0x180: "CKR_STATE_UNSAVEABLE",                 // 2.01
	0x190: "CKR_CRYPTOKI_NOT_INITIALIZED",         // 2.01
	0x191: "CKR_CRYPTOKI_ALREADY_INITIALIZED",     // 2.01
	0x1a0: "CKR_MUTEX_BAD",                        // 2.01
	0x1a1: "CKR_MUTEX_NOT_LOCKED",                 // 2.01
	0x1b0: "CKR_NEW_PIN_MODE",                     // 2.20-amd3
	0x1b1: "CKR_NEXT_OTP",                         // 2.20-amd3
	0x1b5: "CKR_EXCEEDED_MAX_ITERATIONS",          // 2.40
	0x1b6: "CKR_FIPS_SELF_TEST_FAILED",            // 2.40
	0x1b7: "CKR_LIBRARY_LOAD_FAILED",              // 2.40
	0x1b8: "CKR_PIN_TOO_WEAK",                     // 2.40
	0x1b9: "CKR_PUBLIC_KEY_INVALID",               // 2.40
	0x200: "CKR_FUNCTION_REJECTED",                // 2.20
	0x201: "CKR_TOKEN_RESOURCE_EXCEEDED",          // 3.0
	0x202: "CKR_OPERATION_CANCEL_FAILED",          // 3.0
	0x203: "CKR_KEY_EXHAUSTED",                    // 3.1
	0x204: "CKR_PENDING",                          // 3.2
	0x205: "CKR_SESSION_ASYNC_NOT_SUPPORTED",      // 3.2
	0x206: "CKR_SEED_RANDOM_REQUIRED",             // 3.2
	0x207: "CKR_OPERATION_NOT_VALIDATED",          // 3.2
	0x208: "CKR_TOKEN_NOT_INITIALIZED",            // 3.2
	0x209: "CKR_PARAMETER_SET_NOT_SUPPORTED",      // 3.2

	// PKCS#11 1.0's codes that 2.0 withdrew.
	0x4:  "CKR_FLAGS_INVALID",
	0x61: "CKR_KEY_SENSITIVE",
	0x80: "CKR_OBJECT_CLASS_INCONSISTENT",
	0x81: "CKR_OBJECT_CLASS_INVALID",

	// p11-kit's pkcs11.h (Debian's libp11-kit-dev, which many modules
	// build against) gives 2.40's five newest codes other values than
	// OASIS's header; both stand for the same errors.
	0x1c0: "CKR_EXCEEDED_MAX_ITERATIONS",
	0x1c1: "CKR_FIPS_SELF_TEST_FAILED",
	0x1c2: "CKR_LIBRARY_LOAD_FAILED",
	0x1c3: "CKR_PIN_TOO_WEAK",
	0x1c4: "CKR_PUBLIC_KEY_INVALID",
}

// Codes returns every defined code below VendorDefined, in ascending order.
func Codes() []uint64 {
	out := make([]uint64, 0, len(names))
	for v := range names {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// Name returns the name of a defined code, or "" for one no version defines.
func Name(v uint64) string { return names[v] }
