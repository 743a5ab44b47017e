package mechparams

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Layouts that are a C scalar or array type, not a structure: sizeof only.
var cScalar = map[string]bool{
	"CK_RC2_PARAMS": true, "CK_MAC_GENERAL_PARAMS": true, "CK_EXTRACT_PARAMS": true,
	"CK_OBJECT_HANDLE": true, "CK_BYTE[24]": true,
}

// Other C structures a layout describes, with the same members.
var cAliases = map[string][]string{
	"CK_GCM_PARAMS":         {"CK_AES_GCM_PARAMS"},
	"CK_CCM_PARAMS":         {"CK_AES_CCM_PARAMS"},
	"CK_PKCS5_PBKD2_PARAMS": {"CK_PKCS5_PBKD2_PARAMS2"},
}

// Structures of the 2.40 headers that are not mechanism parameters.
var notParams = map[string]string{
	"CK_INFO":               "C_GetInfo",
	"CK_SLOT_INFO":          "C_GetSlotInfo",
	"CK_TOKEN_INFO":         "C_GetTokenInfo",
	"CK_SESSION_INFO":       "C_GetSessionInfo",
	"CK_ATTRIBUTE":          "templates",
	"CK_DATE":               "an attribute value",
	"CK_MECHANISM_INFO":     "C_GetMechanismInfo",
	"CK_FUNCTION_LIST":      "C_GetFunctionList",
	"CK_C_INITIALIZE_ARGS":  "C_Initialize",
	"CK_OTP_SIGNATURE_INFO": "the format of an OTP mechanism's C_Sign output, not a parameter",
}

func miekgDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/miekg/pkcs11").Output()
	if err != nil {
		t.Fatalf("locating github.com/miekg/pkcs11: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(dir, "pkcs11t.h")); err != nil {
		t.Fatalf("miekg/pkcs11 headers: %v", err)
	}
	return dir
}

// TestLayoutsMatchC compiles a C program against miekg/pkcs11's copy of the
// PKCS#11 2.40 headers that prints the size, alignment and member offsets
// of every structure the registry describes, and compares.
func TestLayoutsMatchC(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatalf("gcc is required to check the layouts against the C headers: %v", err)
	}
	dir := miekgDir(t)

	type check struct {
		l     *Layout
		ctype string
	}
	var checks []check
	for _, l := range AllLayouts() {
		checks = append(checks, check{l, l.Name})
		for _, a := range cAliases[l.Name] {
			checks = append(checks, check{l, a})
		}
	}

	var src strings.Builder
	src.WriteString(`#include <stdio.h>
#include <stddef.h>
#define CK_PTR *
#define NULL_PTR 0
#define CK_DEFINE_FUNCTION(returnType, name) returnType name
#define CK_DECLARE_FUNCTION(returnType, name) returnType name
#define CK_DECLARE_FUNCTION_POINTER(returnType, name) returnType (* name)
#define CK_CALLBACK_FUNCTION(returnType, name) returnType (* name)
#include "pkcs11.h"

/* PKCS#11 3.0's, which the 2.40 headers lack. */
typedef struct CK_EDDSA_PARAMS {
	CK_BBOOL phFlag;
	CK_ULONG ulContextDataLen;
	CK_BYTE_PTR pContextData;
} CK_EDDSA_PARAMS;

int main(void)
{
`)
	for _, c := range checks {
		fmt.Fprintf(&src, "\tprintf(\"size %s %%zu %%zu\\n\", sizeof(%s), _Alignof(%s));\n", c.ctype, c.ctype, c.ctype)
		if cScalar[c.l.Name] {
			continue
		}
		for _, f := range c.l.Fields {
			fmt.Fprintf(&src, "\tprintf(\"off %s.%s %%zu %%zu\\n\", offsetof(%s, %s), sizeof(((%s *)0)->%s));\n",
				c.ctype, f.Name, c.ctype, f.Name, c.ctype, f.Name)
		}
	}
	src.WriteString("\treturn 0;\n}\n")

	tmp := t.TempDir()
	cfile, bin := filepath.Join(tmp, "layouts.c"), filepath.Join(tmp, "layouts")
	if err := os.WriteFile(cfile, []byte(src.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-std=c11", "-Wall", "-Werror", "-I", dir, "-o", bin, cfile).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("running the layout program: %v", err)
	}
	got := map[string][2]uintptr{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		a, _ := strconv.ParseUint(w[2], 10, 64)
		b, _ := strconv.ParseUint(w[3], 10, 64)
		got[w[0]+" "+w[1]] = [2]uintptr{uintptr(a), uintptr(b)}
	}
	n := 0
	for _, c := range checks {
		s := got["size "+c.ctype]
		if s[0] != c.l.Size || s[1] != c.l.Align {
			t.Errorf("%s: C size %d align %d; layout %s has %d, %d", c.ctype, s[0], s[1], c.l.Name, c.l.Size, c.l.Align)
		}
		n++
		if cScalar[c.l.Name] {
			if len(c.l.Fields) != 1 || c.l.Fields[0].Off != 0 {
				t.Errorf("%s: a scalar's layout has one field at 0", c.ctype)
			}
			continue
		}
		for i := range c.l.Fields {
			f := &c.l.Fields[i]
			o := got["off "+c.ctype+"."+f.Name]
			size, _ := f.sizeAlign()
			if o[0] != f.Off || o[1] != size {
				t.Errorf("%s.%s: C offset %d size %d; layout has %d, %d", c.ctype, f.Name, o[0], o[1], f.Off, size)
			}
			n++
		}
	}
	t.Logf("%d structures, %d sizes and offsets checked against the C headers", len(checks), n)
}

// TestEveryStructureCovered lists the structures of the 2.40 header: each
// is a layout (or an alias of one), or not a mechanism parameter.
func TestEveryStructureCovered(t *testing.T) {
	hdr, err := os.ReadFile(filepath.Join(miekgDir(t), "pkcs11t.h"))
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{"CK_VERSION": true}
	for _, l := range AllLayouts() {
		covered[l.Name] = true
		for _, a := range cAliases[l.Name] {
			covered[a] = true
		}
	}
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`typedef struct (\w+)\s*\{`).FindAllSubmatch(hdr, -1) {
		name := string(m[1])
		seen[name] = true
		if !covered[name] && notParams[name] == "" {
			t.Errorf("%s: no layout", name)
		}
	}
	if len(seen) < 60 {
		t.Fatalf("found only %d structures in pkcs11t.h", len(seen))
	}
}

// TestEveryMechanismClassified checks that every mechanism the 2.40 header
// defines below CKM_VENDOR_DEFINED has a layout, an opaque parameter, or
// none, and that the registry names no mechanism twice.
func TestEveryMechanismClassified(t *testing.T) {
	hdr, err := os.ReadFile(filepath.Join(miekgDir(t), "pkcs11t.h"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range regexp.MustCompile(`#define (CKM_\w+)\s+0x([0-9A-Fa-f]+)UL`).FindAllSubmatch(hdr, -1) {
		v, _ := strconv.ParseUint(string(m[2]), 16, 64)
		n++
		if v >= VendorDefined {
			if l, raw, ok := Lookup(v); l != nil || !raw || !ok {
				t.Errorf("%s: vendor-defined must be opaque", m[1])
			}
			continue
		}
		if _, _, ok := Lookup(v); !ok {
			t.Errorf("%s (0x%x): not classified", m[1], v)
		}
	}
	if n < 300 {
		t.Fatalf("found only %d mechanisms in pkcs11t.h", n)
	}
	if _, _, ok := Lookup(0x4021); ok { // CKM_CHACHA20_POLY1305, 3.0
		t.Errorf("a mechanism the registry does not know is accepted")
	}
}

// TestLayoutsList checks what cmd/p11gen sees: distinct names, nested
// structures included, sorted.
func TestLayoutsList(t *testing.T) {
	ls := Layouts()
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.Name
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("not sorted: %v", names)
	}
	want := []string{"CK_VERSION", "CK_MECHANISM", "CK_SSL3_RANDOM_DATA", "CK_SSL3_KEY_MAT_OUT", "CK_OTP_PARAM", "CK_ECDH2_DERIVE_PARAMS"}
	for _, w := range want {
		if i := sort.SearchStrings(names, w); i == len(names) || names[i] != w {
			t.Errorf("%s missing from Layouts()", w)
		}
	}
	for i := 1; i < len(names); i++ {
		if names[i] == names[i-1] {
			t.Errorf("%s twice", names[i])
		}
	}
}
