package ckr

import (
	"os"
	"regexp"
	"slices"
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
		if name, ok := names[v]; !ok {
			t.Errorf("%s (0x%x) is in %s but not defined here", m[1], v, header)
		} else if name != string(m[1]) {
			t.Errorf("0x%x is %s here, %s in the header", v, names[v], m[1])
		}
	}
	if n < 90 {
		t.Fatalf("found only %d CKR codes in %s", n, header)
	}
}

// Codes is the table p11gen writes for the C check: ascending, every name's.
func TestCodes(t *testing.T) {
	c := Codes()
	if len(c) != len(names) || !slices.IsSorted(c) || c[len(c)-1] >= VendorDefined {
		t.Errorf("Codes: %d codes (want %d), sorted %v", len(c), len(names), slices.IsSorted(c))
	}
}
