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

// Other C structures a layout describes, with the same members (each
// checked where a header defines it).
var cAliases = map[string][]string{
	"CK_GCM_PARAMS":         {"CK_AES_GCM_PARAMS", "CK_GCM_PARAMS_V3"}, // NSS's name of 3.0's
	"CK_CCM_PARAMS":         {"CK_AES_CCM_PARAMS"},
	"CK_PKCS5_PBKD2_PARAMS": {"CK_PKCS5_PBKD2_PARAMS2"},
}

// Structures of the headers that are not mechanism parameters.
var notParams = map[string]string{
	"CK_INFO":               "C_GetInfo",
	"CK_SLOT_INFO":          "C_GetSlotInfo",
	"CK_TOKEN_INFO":         "C_GetTokenInfo",
	"CK_SESSION_INFO":       "C_GetSessionInfo",
	"CK_DATE":               "an attribute value",
	"CK_MECHANISM_INFO":     "C_GetMechanismInfo",
	"CK_FUNCTION_LIST":      "C_GetFunctionList",
	"CK_C_INITIALIZE_ARGS":  "C_Initialize",
	"CK_OTP_SIGNATURE_INFO": "the format of an OTP mechanism's C_Sign output, not a parameter",
	"CK_INTERFACE":          "C_GetInterfaceList and C_GetInterface (3.0)",
	"CK_ASYNC_DATA":         "C_AsyncComplete (3.2)",
	// The Signal protocol's parameters (3.0): pointers without lengths,
	// so their mechanisms are deliberately unclassified (registry3.go).
	"CK_X3DH_INITIATE_PARAMS":        "CKM_X3DH_INITIALIZE: unclassified",
	"CK_X3DH_RESPOND_PARAMS":         "CKM_X3DH_RESPOND: unclassified",
	"CK_X2RATCHET_INITIALIZE_PARAMS": "CKM_X2RATCHET_INITIALIZE: unclassified",
	"CK_X2RATCHET_RESPOND_PARAMS":    "CKM_X2RATCHET_RESPOND: unclassified",
}

// v3Layouts lists the registry's structures of PKCS#11 3.0 and 3.2 (the
// 2.40 headers lack them), each true when NSS 3.87's pkcs11t.h defines it.
// cshim/pkcs11_3x.h must define every one.
var v3Layouts = map[string]bool{
	"CK_GCM_MESSAGE_PARAMS":                      true,
	"CK_CCM_MESSAGE_PARAMS":                      true,
	"CK_CHACHA20_PARAMS":                         true,
	"CK_SALSA20_PARAMS":                          true,
	"CK_SALSA20_CHACHA20_POLY1305_PARAMS":        true,
	"CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS":    true,
	"CK_HKDF_PARAMS":                             true,
	"CK_PRF_DATA_PARAM":                          true,
	"CK_SP800_108_COUNTER_FORMAT":                true,
	"CK_SP800_108_DKM_LENGTH_FORMAT":             true,
	"CK_SP800_108_KDF_PARAMS":                    true,
	"CK_SP800_108_FEEDBACK_KDF_PARAMS":           true,
	"CK_DERIVED_KEY":                             true,
	"CK_EDDSA_PARAMS":                            true,
	"CK_XEDDSA_PARAMS":                           true,
	"CK_IKE_PRF_DERIVE_PARAMS":                   false,
	"CK_IKE1_PRF_DERIVE_PARAMS":                  false,
	"CK_IKE1_EXTENDED_DERIVE_PARAMS":             false,
	"CK_IKE2_PRF_PLUS_DERIVE_PARAMS":             false,
	"CK_SIGN_ADDITIONAL_CONTEXT":                 false,
	"CK_HASH_SIGN_ADDITIONAL_CONTEXT":            false,
	"CK_GCM_WRAP_PARAMS":                         false,
	"CK_CCM_WRAP_PARAMS":                         false,
	"CK_TLS12_EXTENDED_MASTER_KEY_DERIVE_PARAMS": false,
}

// missingFrom3x: structures cshim/pkcs11_3x.h does not define yet, written
// here from the specification (Current Mechanisms 3.2) so they are still
// checked. Each is a finding against that header; the test uses the
// header's own definition as soon as it has one.
var missingFrom3x = map[string]string{
	"CK_TLS12_EXTENDED_MASTER_KEY_DERIVE_PARAMS": `typedef struct CK_TLS12_EXTENDED_MASTER_KEY_DERIVE_PARAMS {
	CK_MECHANISM_TYPE prfHashMechanism;
	CK_BYTE_PTR pSessionHash;
	CK_ULONG ulSessionHashLen;
	CK_VERSION_PTR pVersion;
} CK_TLS12_EXTENDED_MASTER_KEY_DERIVE_PARAMS;`,
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

// The other headers: NSS's (libnss3-dev, libnspr4-dev), p11-kit's
// (libp11-kit-dev) and the project's own 3.x header. `make test` installs
// the packages; a missing header fails the test, never skips it.
const (
	nssDir  = "/usr/include/nss"
	nsprDir = "/usr/include/nspr"
	p11kit  = "/usr/include/p11-kit-1"
	own3x   = "../../cshim/pkcs11_3x.h"
)

func readHeader(t *testing.T, path, pkg string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (install %s)", err, pkg)
	}
	return string(b)
}

func nssHeaders(t *testing.T) string {
	t.Helper()
	readHeader(t, filepath.Join(nsprDir, "prtypes.h"), "libnspr4-dev")
	return readHeader(t, filepath.Join(nssDir, "pkcs11t.h"), "libnss3-dev") +
		readHeader(t, filepath.Join(nssDir, "pkcs11n.h"), "libnss3-dev")
}

func own3xHeader(t *testing.T) string {
	t.Helper()
	readHeader(t, filepath.Join(p11kit, "p11-kit", "pkcs11.h"), "libp11-kit-dev")
	return readHeader(t, own3x, "the repository's cshim/pkcs11_3x.h")
}

// defines reports whether a header's text defines the C type name: a
// structure's typedef, or a typedef of another type ("CK_BYTE[24]" is C).
func defines(hdr, name string) bool {
	if strings.Contains(name, "[") {
		return true
	}
	q := regexp.QuoteMeta(name)
	return regexp.MustCompile(`\}\s*`+q+`\s*;`).MatchString(hdr) ||
		regexp.MustCompile(`typedef\s[^;{}]*\b`+q+`\s*;`).MatchString(hdr)
}

// layoutCheck is one C type compared with a layout.
type layoutCheck struct {
	l     *Layout
	ctype string
}

// checksFor lists the layouts (and their aliases) that pick selects and
// the header text defines.
func checksFor(hdr string, pick func(l *Layout) bool) []layoutCheck {
	var out []layoutCheck
	for _, l := range AllLayouts() {
		if !pick(l) {
			continue
		}
		for _, name := range append([]string{l.Name}, cAliases[l.Name]...) {
			if defines(hdr, name) {
				out = append(out, layoutCheck{l, name})
			}
		}
	}
	return out
}

// matchC compiles a program (prelude, then code printing the size,
// alignment and member offsets of every check) with the compiler flags,
// runs it, and compares what it prints with the layouts: the number of
// sizes and offsets compared.
func matchC(t *testing.T, what, prelude string, flags []string, checks []layoutCheck) int {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatalf("gcc is required to check the layouts against the C headers: %v", err)
	}
	var src strings.Builder
	src.WriteString("#include <stdio.h>\n#include <stddef.h>\n")
	src.WriteString(prelude)
	src.WriteString("\nint main(void)\n{\n")
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
	args := append([]string{"-std=c11", "-Wall", "-Werror"}, flags...)
	if out, err := exec.Command(gcc, append(args, "-o", bin, cfile)...).CombinedOutput(); err != nil {
		t.Fatalf("%s: gcc: %v\n%s", what, err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("%s: running the layout program: %v", what, err)
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
			t.Errorf("%s: %s: C size %d align %d; layout %s has %d, %d", what, c.ctype, s[0], s[1], c.l.Name, c.l.Size, c.l.Align)
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
				t.Errorf("%s: %s.%s: C offset %d size %d; layout has %d, %d", what, c.ctype, f.Name, o[0], o[1], f.Off, size)
			}
			n++
		}
	}
	t.Logf("%s: %d structures, %d sizes and offsets checked", what, len(checks), n)
	return n
}

// has reports whether checks names the C type.
func has(checks []layoutCheck, ctype string) bool {
	for _, c := range checks {
		if c.ctype == ctype {
			return true
		}
	}
	return false
}

// TestLayoutsMatchC compiles a C program against miekg/pkcs11's copy of the
// PKCS#11 2.40 headers that prints the size, alignment and member offsets
// of every 2.40 structure the registry describes, and compares.
func TestLayoutsMatchC(t *testing.T) {
	dir := miekgDir(t)
	hdr := readHeader(t, filepath.Join(dir, "pkcs11t.h"), "github.com/miekg/pkcs11")
	checks := checksFor(hdr, func(l *Layout) bool { return !isV3(l.Name) })
	for _, l := range AllLayouts() {
		if !isV3(l.Name) && !has(checks, l.Name) {
			t.Errorf("%s: neither in the 2.40 header nor in v3Layouts", l.Name)
		}
	}
	matchC(t, "PKCS#11 2.40", `#define CK_PTR *
#define NULL_PTR 0
#define CK_DEFINE_FUNCTION(returnType, name) returnType name
#define CK_DECLARE_FUNCTION(returnType, name) returnType name
#define CK_DECLARE_FUNCTION_POINTER(returnType, name) returnType (* name)
#define CK_CALLBACK_FUNCTION(returnType, name) returnType (* name)
#include "pkcs11.h"
`, []string{"-I", dir}, checks)
}

// isV3 reports whether v3Layouts names the structure.
func isV3(name string) bool { _, ok := v3Layouts[name]; return ok }

// TestLayoutsMatchNSS checks every layout whose structure NSS 3.87's
// PKCS#11 3.0 headers define (2.40's included) against them, and that
// NSS defines every 3.0 structure v3Layouts says it does.
func TestLayoutsMatchNSS(t *testing.T) {
	hdr := nssHeaders(t)
	checks := checksFor(hdr, func(*Layout) bool { return true })
	for name, inNSS := range v3Layouts {
		if inNSS != has(checks, name) {
			t.Errorf("%s: v3Layouts says NSS defines it: %v; it does: %v", name, inNSS, !inNSS)
		}
	}
	if n := matchC(t, "NSS 3.0", "#include <pkcs11t.h>\n#include <pkcs11n.h>\n",
		[]string{"-I", nssDir, "-I", nsprDir}, checks); n < 400 {
		t.Errorf("only %d sizes and offsets checked against NSS", n)
	}
}

// TestLayoutsMatch3x checks every 3.0 and 3.2 layout against the project's
// cshim/pkcs11_3x.h (on p11-kit's 2.40 header), as the C data plane and
// the host compile them. Of two headers that disagree (NSS's and this one)
// one test fails: a finding against one of them.
func TestLayoutsMatch3x(t *testing.T) {
	hdr := own3xHeader(t)
	var prelude strings.Builder
	prelude.WriteString("#include \"pkcs11_3x.h\"\n")
	for name, def := range missingFrom3x {
		if defines(hdr, name) {
			t.Logf("%s: pkcs11_3x.h defines it now: drop it from missingFrom3x", name)
			continue
		}
		t.Logf("finding: cshim/pkcs11_3x.h lacks %s (checked with the test's own definition)", name)
		prelude.WriteString(def + "\n")
		hdr += def
	}
	checks := checksFor(hdr, func(l *Layout) bool { return isV3(l.Name) })
	for name := range v3Layouts {
		if !has(checks, name) {
			t.Errorf("%s: cshim/pkcs11_3x.h does not define it", name)
		}
	}
	matchC(t, "pkcs11_3x.h", prelude.String(), []string{"-I", p11kit, "-I", filepath.Dir(own3x)}, checks)
}

// structures lists the structures a header's text defines.
func structures(hdr string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`typedef struct (\w+)\s*\{`).FindAllStringSubmatch(hdr, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestEveryStructureCovered lists the structures of the 2.40 header, of
// NSS's 3.0 header and of cshim/pkcs11_3x.h: each is a layout (or an alias
// of one), or not a mechanism parameter.
func TestEveryStructureCovered(t *testing.T) {
	covered := map[string]bool{"CK_VERSION": true}
	for _, l := range AllLayouts() {
		covered[l.Name] = true
		for _, a := range cAliases[l.Name] {
			covered[a] = true
		}
	}
	for _, h := range []struct {
		what, text string
		least      int
	}{
		{"2.40 pkcs11t.h", readHeader(t, filepath.Join(miekgDir(t), "pkcs11t.h"), "github.com/miekg/pkcs11"), 60},
		{"NSS pkcs11t.h", readHeader(t, filepath.Join(nssDir, "pkcs11t.h"), "libnss3-dev"), 80},
		{"pkcs11_3x.h", own3xHeader(t), 25},
	} {
		seen := structures(h.text)
		for _, name := range seen {
			if !covered[name] && notParams[name] == "" {
				t.Errorf("%s: %s: no layout", h.what, name)
			}
		}
		if len(seen) < h.least {
			t.Fatalf("found only %d structures in %s", len(seen), h.what)
		}
	}
}

// mechanisms parses a header's hexadecimal CKM_ definitions.
func mechanisms(hdr string) map[string]uint64 {
	out := map[string]uint64{}
	for _, m := range regexp.MustCompile(`#define (CKM_\w+)\s+\(?0x([0-9A-Fa-f]+)UL?\)?`).FindAllStringSubmatch(hdr, -1) {
		v, _ := strconv.ParseUint(m[2], 16, 64)
		out[m[1]] = v
	}
	return out
}

// checkClassified: every mechanism below CKM_VENDOR_DEFINED has a layout,
// an opaque parameter or none (or is deliberately unclassified), and the
// vendor-defined ones are opaque.
func checkClassified(t *testing.T, what string, mechs map[string]uint64) {
	t.Helper()
	for name, v := range mechs {
		l, raw, ok := Lookup(v)
		switch {
		case v >= VendorDefined:
			if l != nil || !raw || !ok {
				t.Errorf("%s: %s: vendor-defined must be opaque", what, name)
			}
		case unclassified[v] != "":
			if ok {
				t.Errorf("%s: %s (0x%x): deliberately unclassified, yet classified", what, name, v)
			}
		case !ok:
			t.Errorf("%s: %s (0x%x): not classified", what, name, v)
		}
	}
}

// TestEveryMechanismClassified checks that every mechanism the 2.40
// header, NSS's 3.0 headers and cshim/pkcs11_3x.h define below
// CKM_VENDOR_DEFINED has a layout, an opaque parameter, or none, and that
// the registry names no mechanism twice.
func TestEveryMechanismClassified(t *testing.T) {
	m240 := mechanisms(readHeader(t, filepath.Join(miekgDir(t), "pkcs11t.h"), "github.com/miekg/pkcs11"))
	if len(m240) < 300 {
		t.Fatalf("found only %d mechanisms in pkcs11t.h", len(m240))
	}
	checkClassified(t, "2.40", m240)

	nssText := nssHeaders(t)
	nss := mechanisms(nssText)
	// NSS's own, defined from CKM_NSS: vendor-defined.
	nssBase := uint64(VendorDefined | 0x4E534350)
	for _, m := range regexp.MustCompile(`#define (CKM_NSS_\w+)\s+\(CKM_NSS \+ (\d+)\)`).FindAllStringSubmatch(nssText, -1) {
		n, _ := strconv.ParseUint(m[2], 10, 64)
		nss[m[1]] = nssBase + n
	}
	if len(nss) < 450 {
		t.Fatalf("found only %d mechanisms in NSS's headers", len(nss))
	}
	checkClassified(t, "NSS", nss)

	own := mechanisms(own3xHeader(t))
	if len(own) < 30 {
		t.Fatalf("found only %d mechanisms in pkcs11_3x.h", len(own))
	}
	checkClassified(t, "pkcs11_3x.h", own)

	// The headers agree with the 3.x table below.
	for name, v := range v3Mechanisms {
		for _, h := range []struct {
			what  string
			mechs map[string]uint64
		}{{"NSS", nss}, {"pkcs11_3x.h", own}} {
			if w, ok := h.mechs[name]; ok && w != v.value {
				t.Errorf("%s: %s is 0x%x, the 3.2 table 0x%x", h.what, name, w, v.value)
			}
		}
	}
	if _, _, ok := Lookup(unknownMech); ok {
		t.Errorf("a mechanism the registry does not know is accepted")
	}
}

// v3Class is how a 3.0 or 3.2 mechanism's parameter crosses: a layout's
// name, "raw", "none", or "refused" (deliberately unclassified).
type v3Class struct {
	value uint64
	want  string
}

// v3Mechanisms: every mechanism PKCS#11 3.0 and 3.2 define below
// CKM_VENDOR_DEFINED that 2.40 lacks, with its value and how its parameter
// crosses, as Current Mechanisms 3.0 and 3.2 describe it.
var v3Mechanisms = map[string]v3Class{
	// 3.0
	"CKM_SP800_108_COUNTER_KDF":         {0x3ac, "CK_SP800_108_KDF_PARAMS"},
	"CKM_SP800_108_FEEDBACK_KDF":        {0x3ad, "CK_SP800_108_FEEDBACK_KDF_PARAMS"},
	"CKM_SP800_108_DOUBLE_PIPELINE_KDF": {0x3ae, "CK_SP800_108_KDF_PARAMS"},
	"CKM_ECDSA_SHA3_224":                {0x1047, "none"},
	"CKM_ECDSA_SHA3_256":                {0x1048, "none"},
	"CKM_ECDSA_SHA3_384":                {0x1049, "none"},
	"CKM_ECDSA_SHA3_512":                {0x104a, "none"},
	"CKM_EC_EDWARDS_KEY_PAIR_GEN":       {0x1055, "none"},
	"CKM_EC_MONTGOMERY_KEY_PAIR_GEN":    {0x1056, "none"},
	"CKM_EDDSA":                         {0x1057, "CK_EDDSA_PARAMS"},
	"CKM_EC_KEY_PAIR_GEN_W_EXTRA_BITS":  {0x140b, "none"},
	"CKM_CHACHA20_KEY_GEN":              {0x1225, "none"},
	"CKM_CHACHA20":                      {0x1226, "CK_CHACHA20_PARAMS"},
	"CKM_POLY1305_KEY_GEN":              {0x1227, "none"},
	"CKM_POLY1305":                      {0x1228, "none"},
	"CKM_AES_KEY_WRAP_KWP":              {0x210b, "raw"},
	"CKM_SHA_1_KEY_GEN":                 {0x4003, "none"},
	"CKM_SHA224_KEY_GEN":                {0x4004, "none"},
	"CKM_SHA256_KEY_GEN":                {0x4005, "none"},
	"CKM_SHA384_KEY_GEN":                {0x4006, "none"},
	"CKM_SHA512_KEY_GEN":                {0x4007, "none"},
	"CKM_SHA512_224_KEY_GEN":            {0x4008, "none"},
	"CKM_SHA512_256_KEY_GEN":            {0x4009, "none"},
	"CKM_SHA512_T_KEY_GEN":              {0x400a, "none"},
	"CKM_NULL":                          {0x400b, "none"},
	"CKM_BLAKE2B_160":                   {0x400c, "none"},
	"CKM_BLAKE2B_160_HMAC":              {0x400d, "none"},
	"CKM_BLAKE2B_160_HMAC_GENERAL":      {0x400e, "CK_MAC_GENERAL_PARAMS"},
	"CKM_BLAKE2B_160_KEY_DERIVE":        {0x400f, "none"},
	"CKM_BLAKE2B_160_KEY_GEN":           {0x4010, "none"},
	"CKM_BLAKE2B_256":                   {0x4011, "none"},
	"CKM_BLAKE2B_256_HMAC":              {0x4012, "none"},
	"CKM_BLAKE2B_256_HMAC_GENERAL":      {0x4013, "CK_MAC_GENERAL_PARAMS"},
	"CKM_BLAKE2B_256_KEY_DERIVE":        {0x4014, "none"},
	"CKM_BLAKE2B_256_KEY_GEN":           {0x4015, "none"},
	"CKM_BLAKE2B_384":                   {0x4016, "none"},
	"CKM_BLAKE2B_384_HMAC":              {0x4017, "none"},
	"CKM_BLAKE2B_384_HMAC_GENERAL":      {0x4018, "CK_MAC_GENERAL_PARAMS"},
	"CKM_BLAKE2B_384_KEY_DERIVE":        {0x4019, "none"},
	"CKM_BLAKE2B_384_KEY_GEN":           {0x401a, "none"},
	"CKM_BLAKE2B_512":                   {0x401b, "none"},
	"CKM_BLAKE2B_512_HMAC":              {0x401c, "none"},
	"CKM_BLAKE2B_512_HMAC_GENERAL":      {0x401d, "CK_MAC_GENERAL_PARAMS"},
	"CKM_BLAKE2B_512_KEY_DERIVE":        {0x401e, "none"},
	"CKM_BLAKE2B_512_KEY_GEN":           {0x401f, "none"},
	"CKM_SALSA20":                       {0x4020, "CK_SALSA20_PARAMS"},
	"CKM_CHACHA20_POLY1305":             {0x4021, "CK_SALSA20_CHACHA20_POLY1305_PARAMS"},
	"CKM_SALSA20_POLY1305":              {0x4022, "CK_SALSA20_CHACHA20_POLY1305_PARAMS"},
	"CKM_X3DH_INITIALIZE":               {0x4023, "refused"},
	"CKM_X3DH_RESPOND":                  {0x4024, "refused"},
	"CKM_X2RATCHET_INITIALIZE":          {0x4025, "refused"},
	"CKM_X2RATCHET_RESPOND":             {0x4026, "refused"},
	"CKM_X2RATCHET_ENCRYPT":             {0x4027, "refused"},
	"CKM_X2RATCHET_DECRYPT":             {0x4028, "refused"},
	"CKM_XEDDSA":                        {0x4029, "CK_XEDDSA_PARAMS"},
	"CKM_HKDF_DERIVE":                   {0x402a, "CK_HKDF_PARAMS"},
	"CKM_HKDF_DATA":                     {0x402b, "CK_HKDF_PARAMS"},
	"CKM_HKDF_KEY_GEN":                  {0x402c, "none"},
	"CKM_SALSA20_KEY_GEN":               {0x402d, "none"},
	"CKM_IKE2_PRF_PLUS_DERIVE":          {0x402e, "CK_IKE2_PRF_PLUS_DERIVE_PARAMS"},
	"CKM_IKE_PRF_DERIVE":                {0x402f, "CK_IKE_PRF_DERIVE_PARAMS"},
	"CKM_IKE1_PRF_DERIVE":               {0x4030, "CK_IKE1_PRF_DERIVE_PARAMS"},
	"CKM_IKE1_EXTENDED_DERIVE":          {0x4031, "CK_IKE1_EXTENDED_DERIVE_PARAMS"},
	"CKM_HSS_KEY_PAIR_GEN":              {0x4032, "none"},
	"CKM_HSS":                           {0x4033, "none"},

	// 3.2
	"CKM_ML_KEM_KEY_PAIR_GEN":                 {0x0f, "none"},
	"CKM_ML_KEM":                              {0x17, "none"},
	"CKM_ML_DSA_KEY_PAIR_GEN":                 {0x1c, "none"},
	"CKM_ML_DSA":                              {0x1d, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_ML_DSA":                         {0x1f, "CK_HASH_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_ML_DSA_SHA224":                  {0x23, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_ML_DSA_SHA256":                  {0x24, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_ML_DSA_SHA384":                  {0x25, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_ML_DSA_SHA512":                  {0x26, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_ML_DSA_SHA3_224":                {0x27, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_ML_DSA_SHA3_256":                {0x28, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_ML_DSA_SHA3_384":                {0x29, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_ML_DSA_SHA3_512":                {0x2a, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_ML_DSA_SHAKE128":                {0x2b, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_ML_DSA_SHAKE256":                {0x2c, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_SLH_DSA_KEY_PAIR_GEN":                {0x2d, "none"},
	"CKM_SLH_DSA":                             {0x2e, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_SLH_DSA":                        {0x34, "CK_HASH_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_SLH_DSA_SHA224":                 {0x36, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_SLH_DSA_SHA256":                 {0x37, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_SLH_DSA_SHA384":                 {0x38, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_SLH_DSA_SHA512":                 {0x39, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_SLH_DSA_SHA3_224":               {0x3a, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_SLH_DSA_SHA3_256":               {0x3b, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_SLH_DSA_SHA3_384":               {0x3c, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_SLH_DSA_SHA3_512":               {0x3d, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_SLH_DSA_SHAKE128":               {0x3e, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_HASH_SLH_DSA_SHAKE256":               {0x3f, "CK_SIGN_ADDITIONAL_CONTEXT"},
	"CKM_TLS12_EXTENDED_MASTER_KEY_DERIVE":    {0x56, "CK_TLS12_EXTENDED_MASTER_KEY_DERIVE_PARAMS"},
	"CKM_TLS12_EXTENDED_MASTER_KEY_DERIVE_DH": {0x57, "CK_TLS12_EXTENDED_MASTER_KEY_DERIVE_PARAMS"},
	"CKM_AES_XTS":                             {0x1071, "raw"},
	"CKM_AES_XTS_KEY_GEN":                     {0x1072, "none"},
	"CKM_AES_KEY_WRAP_PKCS7":                  {0x210c, "raw"},
	"CKM_XMSS_KEY_PAIR_GEN":                   {0x4034, "none"},
	"CKM_XMSSMT_KEY_PAIR_GEN":                 {0x4035, "none"},
	"CKM_XMSS":                                {0x4036, "none"},
	"CKM_XMSSMT":                              {0x4037, "none"},
	"CKM_ECDH_X_AES_KEY_WRAP":                 {0x4038, "CK_ECDH_AES_KEY_WRAP_PARAMS"},
	"CKM_ECDH_COF_AES_KEY_WRAP":               {0x4039, "CK_ECDH_AES_KEY_WRAP_PARAMS"},
	"CKM_PUB_KEY_FROM_PRIV_KEY":               {0x403a, "none"},
}

// TestV3Mechanisms holds the registry to the 3.x table: each mechanism
// crosses as the table says, and the registry refuses no other.
func TestV3Mechanisms(t *testing.T) {
	for name, c := range v3Mechanisms {
		// Lookup answers raw for a mechanism that takes no parameter too
		// (one passed anyway crosses as bytes): the class tells them apart.
		l, _, ok := Lookup(c.value)
		got := "none"
		switch {
		case !ok:
			got = "refused"
		case l != nil:
			got = l.Name
		case classes[c.value].raw:
			got = "raw"
		}
		if got != c.want {
			t.Errorf("%s (0x%x): %s, want %s", name, c.value, got, c.want)
		}
		if (c.want == "refused") != (unclassified[c.value] != "") {
			t.Errorf("%s: refused in the table, unclassified in the registry: they must agree", name)
		}
	}
	for v := range unclassified {
		if _, _, ok := Lookup(v); ok {
			t.Errorf("0x%x: unclassified yet classified", v)
		}
	}
}

// TestMessageLookup: the AEADs have message structures of their own; every
// other mechanism's per-message parameter is its parameter.
func TestMessageLookup(t *testing.T) {
	want := map[uint64]*Layout{
		0x1087:              GCMMessageParams, // CKM_AES_GCM
		0x1088:              CCMMessageParams, // CKM_AES_CCM
		ckmChaCha20Poly1305: Salsa20ChaCha20Poly1305MsgParams,
		ckmSalsa20Poly1305:  Salsa20ChaCha20Poly1305MsgParams,
	}
	for mech, w := range want {
		if l, raw, ok := MessageLookup(mech); l != w || raw || !ok {
			t.Errorf("0x%x: %v %v %v, want %s", mech, l, raw, ok, w.Name)
		}
	}
	for _, m := range Mechanisms() {
		if want[m.Type] != nil {
			continue
		}
		l, raw, ok := MessageLookup(m.Type)
		gl, graw, gok := Lookup(m.Type)
		if l != gl || raw != graw || ok != gok {
			t.Errorf("0x%x: MessageLookup differs from Lookup", m.Type)
		}
	}
	if l, raw, ok := MessageLookup(VendorDefined + 7); l != nil || !raw || !ok {
		t.Errorf("vendor-defined message parameter: not opaque")
	}
	if _, _, ok := MessageLookup(unknownMech); ok {
		t.Errorf("unknown message mechanism: accepted")
	}
	if l, _, _ := MessageLookup(ckmMLDSA); l != SignAdditionalContext {
		t.Errorf("ML-DSA's per-message parameter: %v", l)
	}
	if n := len(MessageMechanisms()); n != len(want) {
		t.Errorf("%d message mechanisms, want %d", n, len(want))
	}
}

// TestLookupSize: CKM_AES_GCM and CKM_AES_CCM take their 3.2 wrapping
// structures by size, and their own otherwise.
func TestLookupSize(t *testing.T) {
	cases := []struct {
		mech, size uint64
		want       *Layout
	}{
		{0x1087, 48, GCMParams}, {0x1087, 56, GCMWrapParams}, {0x1087, 40, GCMParams},
		{0x1088, 48, CCMParams}, {0x1088, 64, CCMWrapParams}, {0x1088, 0, CCMParams},
		{ckmMLDSA, 24, SignAdditionalContext}, {ckmMLDSA, 56, SignAdditionalContext},
	}
	for _, c := range cases {
		if l, raw, ok := LookupSize(c.mech, c.size); l != c.want || raw || !ok {
			t.Errorf("0x%x, %d bytes: %v, want %s", c.mech, c.size, l, c.want.Name)
		}
	}
	if _, raw, ok := LookupSize(unknownMech, 8); ok || raw {
		t.Errorf("unknown mechanism: accepted")
	}
	if got := len(Alternates()); got != 2 {
		t.Errorf("%d alternates, want 2", got)
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
	want := []string{"CK_VERSION", "CK_MECHANISM", "CK_ATTRIBUTE", "CK_SSL3_RANDOM_DATA", "CK_SSL3_KEY_MAT_OUT",
		"CK_OTP_PARAM", "CK_ECDH2_DERIVE_PARAMS", "CK_SP800_108_COUNTER_FORMAT", "CK_SP800_108_DKM_LENGTH_FORMAT",
		"CK_DERIVED_KEY", "CK_GCM_MESSAGE_PARAMS", "CK_GCM_WRAP_PARAMS"}
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
