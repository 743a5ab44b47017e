package ckr

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

// Every code of the PKCS#11 header the project builds against is defined.
func TestHeaderCodesDefined(t *testing.T) {
	const header = "/usr/include/p11-kit-1/p11-kit/pkcs11.h"
	src, err := os.ReadFile(header)
	if err != nil {
		t.Fatalf("%v: install libp11-kit-dev (make deps)", err)
	}
	re := regexp.MustCompile(`#define\s+(CKR_\w+)\s+\((0x[0-9a-fA-F]+|\d+)UL\)`)
	n := 0
	for _, m := range re.FindAllSubmatch(src, -1) {
		v, err := strconv.ParseUint(string(m[2]), 0, 64)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if !Defined(v) {
			t.Errorf("%s (0x%x) is in %s but not defined here", m[1], v, header)
		} else if names[v] != string(m[1]) {
			t.Errorf("0x%x is %s here, %s in the header", v, names[v], m[1])
		}
	}
	if n < 90 {
		t.Fatalf("found only %d CKR codes in %s", n, header)
	}
}

func TestDefined(t *testing.T) {
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
		if got := Defined(c.v); got != c.want {
			t.Errorf("Defined(0x%x) = %v, want %v", c.v, got, c.want)
		}
	}
	if Name(0x150) != "CKR_BUFFER_TOO_SMALL" || Name(0x80000001) != "CKR_VENDOR_DEFINED+0x1" || Name(0x7fffffff) != "0x7fffffff" {
		t.Errorf("names: %s %s %s", Name(0x150), Name(0x80000001), Name(0x7fffffff))
	}
}
