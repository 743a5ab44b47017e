package cwire

import "testing"

// The first host's handles pass unchanged; a later host's are fresh numbers
// above any given out, and a dead host's handles reach the new one as
// CK_INVALID_HANDLE (0).
func TestHandleTable(t *testing.T) {
	if HandleToApp(0, 5) != 5 || HandleToApp(0, 900) != 900 || HandleToVendor(0, 900) != 900 {
		t.Fatal("the first host's handles changed")
	}
	a1, a2 := HandleToApp(1, 5), HandleToApp(1, 6)
	if a1 <= 900 || a2 <= 900 || a1 == a2 || HandleToApp(1, 5) != a1 {
		t.Fatalf("second host: 5 -> %d, 6 -> %d", a1, a2)
	}
	if HandleToVendor(1, a1) != 5 || HandleToVendor(1, a2) != 6 {
		t.Error("second host's handles do not map back")
	}
	if HandleToVendor(1, 900) != 0 || HandleToVendor(1, 5) != 0 {
		t.Error("a first host's handle reached the second host")
	}
	// Many handles: the maps grow.
	for v := uint64(1); v <= 5000; v++ {
		a := HandleToApp(2, v)
		if HandleToVendor(2, a) != v {
			t.Fatalf("handle %d of the third host maps to %d and back to %d", v, a, HandleToVendor(2, a))
		}
	}
	if HandleToVendor(2, a1) != 0 || HandleToVendor(1, a1) != 0 {
		t.Error("the second host's handle reached the third host")
	}
	if HandleToApp(2, 0) != 0 || HandleToVendor(2, 0) != 0 {
		t.Error("CK_INVALID_HANDLE changed")
	}
}

// Codes no PKCS#11 version up to 3.2 defines, below CKR_VENDOR_DEFINED, are
// refused; defined and vendor-defined ones pass.
func TestCKRDefined(t *testing.T) {
	for _, c := range []struct {
		v    uint64
		want bool
	}{
		{0, true},
		{0x150, true},       // CKR_BUFFER_TOO_SMALL
		{0x1b8, true},       // CKR_PIN_TOO_WEAK (OASIS)
		{0x1c3, true},       // CKR_PIN_TOO_WEAK (p11-kit's header)
		{0x209, true},       // CKR_PARAMETER_SET_NOT_SUPPORTED, 3.2
		{0x20a, false},      // past 3.2
		{0x4, true},         // CKR_FLAGS_INVALID, 1.0
		{0x7fffffff, false}, // below CKR_VENDOR_DEFINED, defined by no version
		{0x80000000, true},  // CKR_VENDOR_DEFINED
		{0x80000123, true},  // a vendor's
		{^uint64(0), true},  // vendor space on LP64
		{0x14, false},       // a gap
	} {
		if got := CKRDefined(c.v); got != c.want {
			t.Errorf("p11i_ckr_defined(0x%x) = %v, want %v", c.v, got, c.want)
		}
	}
}
