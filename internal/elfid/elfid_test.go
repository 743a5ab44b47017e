package elfid

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/p11isolate/p11isolate/internal/p11calls"
)

const softhsm = "/usr/lib/softhsm/libsofthsm2.so"

// The list is what IsFunction's binary search needs, and has every version.
func TestFunctions(t *testing.T) {
	if !slices.IsSorted(Functions) {
		t.Error("Functions is not sorted")
	}
	if len(Functions) != 68+24+12 || len(slices.Compact(slices.Clone(Functions))) != len(Functions) {
		t.Errorf("%d functions, want 68 + 24 + 12, no duplicates", len(Functions))
	}
	for _, n := range []string{"C_GetFunctionList", "C_WaitForSlotEvent", "C_GetInterface", "C_MessageVerifyFinal", "C_EncapsulateKey", "C_AsyncJoin", "C_UnwrapKeyAuthenticated"} {
		if !IsFunction(n) {
			t.Errorf("IsFunction(%q) = false", n)
		}
	}
	for _, n := range []string{"C_", "C_GetFunctionListX", "vendor_debug_dump", "c_initialize"} {
		if IsFunction(n) {
			t.Errorf("IsFunction(%q) = true", n)
		}
	}
}

// What readelf -ld and --dyn-syms say of Debian's SoftHSM 2.6: GNU_RELRO with
// BIND_NOW and FLAGS_1 NOW, GNU_STACK RW, __stack_chk_fail and five __*_chk
// imports, no .symtab (split debug info), all 68 2.40 functions exported, plus
// 24 weak C++ template instantiations.
func TestSoftHSM(t *testing.T) {
	st, err := os.Stat(softhsm)
	if err != nil {
		t.Fatalf("%v: install SoftHSM2 (make deps)", err)
	}
	id, err := Inspect(softhsm)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(softhsm)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if want := hex.EncodeToString(sum[:]); id.SHA256 != want {
		t.Errorf("SHA256 = %s, want %s", id.SHA256, want)
	}
	if id.Size != st.Size() {
		t.Errorf("Size = %d, want %d", id.Size, st.Size())
	}
	if id.Type != "shared object" {
		t.Errorf("Type = %q", id.Type)
	}
	if id.SOName != "libsofthsm2.so" {
		t.Errorf("SOName = %q", id.SOName)
	}
	if !slices.Contains(id.Needed, "libc.so.6") || !slices.Contains(id.Needed, "libcrypto.so.3") {
		t.Errorf("Needed = %v, want libc.so.6 and libcrypto.so.3 among them", id.Needed)
	}
	hd := id.Hardening
	if hd.RELRO != RELROFull || !hd.NXStack || !hd.StackProtector || !hd.Fortify || hd.TextRel || !hd.Stripped {
		t.Errorf("Hardening = %+v, want full RELRO, NX stack, stack protector, fortify, no text relocations, stripped", hd)
	}
	if !slices.Contains(hd.FortifiedFuncs, "__snprintf_chk") {
		t.Errorf("FortifiedFuncs = %v, want __snprintf_chk among them", hd.FortifiedFuncs)
	}
	for _, f := range p11calls.Funcs[:p11calls.N240] { // SoftHSM 2.6 is a 2.40 module
		if !slices.Contains(id.PKCS11Exports, f.Name) {
			t.Errorf("%s not among PKCS11Exports", f.Name)
		}
	}
	// The weak C++ template instantiations (std::map, std::vector of
	// std::string) that the module does not hide.
	if len(id.OtherExports) == 0 {
		t.Error("no OtherExports, want SoftHSM's weak C++ instantiations")
	}
	for _, n := range id.OtherExports {
		if !strings.HasPrefix(n, "_Z") {
			t.Errorf("OtherExports has %s, want only mangled C++ names", n)
		}
	}
	if len(id.RPath)+len(id.RunPath) != 0 {
		t.Errorf("RPath %v, RunPath %v, want none", id.RPath, id.RunPath)
	}
	// Its only weakness is the C++ instantiations it leaks.
	for _, f := range id.Findings() {
		if !strings.HasPrefix(f, "exports ") {
			t.Errorf("finding %q", f)
		}
	}
	t.Logf("%s: %d PKCS#11 exports, %d others, findings %q, unfortified %v", softhsm, len(id.PKCS11Exports), len(id.OtherExports), id.Findings(), hd.UnfortifiedFuncs)
}

// moduleC is a minimal module: two PKCS#11 functions and one vendor extra.
// The extra has an array on the stack, so -fstack-protector-strong guards it,
// and copies into that array of a length and a source unknown at compile time,
// so _FORTIFY_SOURCE turns them into __memcpy_chk and __strcpy_chk.
const moduleC = `#include <string.h>
typedef unsigned long CK_RV;
CK_RV C_Initialize(void *args) { return args == 0 ? 0 : 7; }
CK_RV C_GetFunctionList(void **list) { if (list) *list = 0; return 0; }
int vendor_debug_dump(const char *src, unsigned long n, char *out) {
	char buf[64];
	memcpy(buf, src, n);
	strcpy(buf + 32, src);
	memcpy(out, buf, sizeof buf);
	return buf[0];
}
`

// build compiles moduleC into a shared object with flags.
func build(t *testing.T, name string, flags ...string) string {
	t.Helper()
	return buildSource(t, name, moduleC, flags...)
}

func buildSource(t *testing.T, name, source string, flags ...string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatalf("%v: install gcc (make deps)", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "module.c")
	if err := os.WriteFile(src, []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	args := append([]string{"-shared", "-fPIC", "-o", out, src}, flags...)
	if b, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out
}

func inspect(t *testing.T, path string) *Identity {
	t.Helper()
	id, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// exportsChecks holds for every build of moduleC.
func exportsChecks(t *testing.T, id *Identity) {
	t.Helper()
	if want := []string{"C_GetFunctionList", "C_Initialize"}; !slices.Equal(id.PKCS11Exports, want) {
		t.Errorf("PKCS11Exports = %v, want %v", id.PKCS11Exports, want)
	}
	if want := []string{"vendor_debug_dump"}; !slices.Equal(id.OtherExports, want) {
		t.Errorf("OtherExports = %v, want %v (no _init, _fini, ...)", id.OtherExports, want)
	}
	if id.Interfaces30 {
		t.Error("Interfaces30 without C_GetInterface")
	}
	if id.Type != "shared object" {
		t.Errorf("Type = %q", id.Type)
	}
	if !slices.Contains(id.Needed, "libc.so.6") {
		t.Errorf("Needed = %v", id.Needed)
	}
}

func TestHardened(t *testing.T) {
	id := inspect(t, build(t, "good.so", "-O2", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong",
		"-Wl,-z,relro,-z,now", "-Wl,-z,noexecstack"))
	exportsChecks(t, id)
	hd := id.Hardening
	if hd.RELRO != RELROFull || !hd.NXStack || !hd.StackProtector || !hd.Fortify || hd.TextRel {
		t.Errorf("Hardening = %+v, want full RELRO, NX stack, stack protector, fortify", hd)
	}
	if want := []string{"__memcpy_chk", "__strcpy_chk"}; !slices.Equal(hd.FortifiedFuncs, want) {
		t.Errorf("FortifiedFuncs = %v, want %v", hd.FortifiedFuncs, want)
	}
	if len(hd.UnfortifiedFuncs) != 0 {
		t.Errorf("UnfortifiedFuncs = %v", hd.UnfortifiedFuncs)
	}
	if hd.Stripped {
		t.Error("Stripped, but gcc left .symtab")
	}
	if want := []string{"exports 1 symbol beyond PKCS#11 (vendor_debug_dump)"}; !slices.Equal(id.Findings(), want) {
		t.Errorf("Findings = %q, want %q", id.Findings(), want)
	}
	if id.Class == "" || id.Machine == "" || id.Machine == "none" {
		t.Errorf("Class %q, Machine %q", id.Class, id.Machine)
	}
}

func TestWeak(t *testing.T) {
	// --disable-new-dtags: Debian's ld writes DT_RUNPATH for -rpath by
	// default, and this build is to have the older, stronger DT_RPATH.
	id := inspect(t, build(t, "bad.so", "-O0", "-fno-stack-protector", "-U_FORTIFY_SOURCE",
		"-Wl,-z,norelro", "-Wl,-z,execstack", "-Wl,--disable-new-dtags", "-Wl,-rpath,/tmp/evil"))
	exportsChecks(t, id)
	hd := id.Hardening
	if hd.RELRO != RELRONone || hd.NXStack || hd.StackProtector || hd.Fortify || len(hd.FortifiedFuncs) != 0 {
		t.Errorf("Hardening = %+v, want no RELRO, executable stack, no stack protector, not fortified", hd)
	}
	if want := []string{"memcpy", "strcpy"}; !slices.Equal(hd.UnfortifiedFuncs, want) {
		t.Errorf("UnfortifiedFuncs = %v, want %v", hd.UnfortifiedFuncs, want)
	}
	if want := []string{"/tmp/evil"}; !slices.Equal(id.RPath, want) || len(id.RunPath) != 0 {
		t.Errorf("RPath %v, RunPath %v, want RPath %v", id.RPath, id.RunPath, want)
	}
	findings := id.Findings()
	for _, want := range []string{
		"executable stack (",
		"no RELRO",
		"no stack protector",
		"not fortified (imports memcpy, strcpy without __*_chk)",
		"RPATH /tmp/evil (searched before LD_LIBRARY_PATH and the system's library paths, world-writable directory)",
		"exports 1 symbol beyond PKCS#11 (vendor_debug_dump)",
	} {
		if !slices.ContainsFunc(findings, func(f string) bool { return strings.HasPrefix(f, want) }) {
			t.Errorf("no finding %q in %q", want, findings)
		}
	}
	if len(findings) != 6 {
		t.Errorf("%d findings, want 6: %q", len(findings), findings)
	}
}

func TestPartialRELRO(t *testing.T) {
	id := inspect(t, build(t, "lazy.so", "-O2", "-Wl,-z,relro,-z,lazy"))
	if id.Hardening.RELRO != RELROPartial {
		t.Errorf("RELRO = %q, want partial", id.Hardening.RELRO)
	}
	if !slices.Contains(id.Findings(), "partial RELRO (no BIND_NOW)") {
		t.Errorf("Findings = %q", id.Findings())
	}
}

func TestRunPath(t *testing.T) {
	so := build(t, "run.so", "-O2", "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/lib")
	id := inspect(t, so)
	if want := []string{"$ORIGIN/lib"}; !slices.Equal(id.RunPath, want) || len(id.RPath) != 0 {
		t.Errorf("RunPath %v, RPath %v, want RunPath %v", id.RunPath, id.RPath, want)
	}
	want := "RUNPATH $ORIGIN/lib (searched before the system's library paths, relative to $ORIGIN)"
	if !slices.Contains(id.Findings(), want) {
		t.Errorf("Findings = %q, want %q among them", id.Findings(), want)
	}

	// Through a symlink: Path as given, Resolved the file, same bytes.
	link := filepath.Join(t.TempDir(), "module.so")
	if err := os.Symlink(so, link); err != nil {
		t.Fatal(err)
	}
	lid := inspect(t, link)
	if lid.Path != link || lid.Resolved != so || lid.SHA256 != id.SHA256 {
		t.Errorf("via symlink: Path %q Resolved %q SHA256 %s, want %q %q %s", lid.Path, lid.Resolved, lid.SHA256, link, so, id.SHA256)
	}
	if id.Resolved != "" {
		t.Errorf("Resolved = %q for a plain file", id.Resolved)
	}
	// The report's JSON has the documented names, and [] rather than null.
	b, err := json.Marshal(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"runpath":["$ORIGIN/lib"]`, `"relro":"partial"`, `"exports_get_interface":false`, `"pkcs11_exports":["C_GetFunctionList","C_Initialize"]`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON has no %s: %s", key, b)
		}
	}
}

// Older toolchains exported the start files' _init and _fini; without the
// start files, defining them by hand gives the same dynamic symbol table.
func TestToolchainExports(t *testing.T) {
	so := buildSource(t, "old.so", moduleC+"void _init(void) {}\nvoid _fini(void) {}\n", "-O2", "-nostartfiles")
	ef, err := elf.Open(so)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	syms, err := ef.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range syms {
		if (s.Name == "_init" || s.Name == "_fini") && s.Section != elf.SHN_UNDEF && exported(s) {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("the build exports %d of _init and _fini, want both: the test proves nothing", n)
	}
	exportsChecks(t, inspect(t, so))
}

// An absolute address in x86-64 code leaves a relocation in .text: ld writes
// DT_TEXTREL. The same module exports an object, a protected function and a
// weak one, and has a three-entry RPATH with an empty entry.
func TestTextRel(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the text relocation is made with x86-64 assembly")
	}
	const extra = `long counter;
__attribute__((visibility("protected"))) int vendor_protected(void) { return 1; }
__attribute__((weak)) int vendor_weak(void) { return 2; }
__asm__(".text\n.globl vendor_abs\n.type vendor_abs,@function\nvendor_abs:\n\tmovabs $counter, %rax\n\tret\n");
`
	id := inspect(t, buildSource(t, "textrel.so", moduleC+extra, "-O2",
		"-Wl,--disable-new-dtags", "-Wl,-rpath,/opt/vendor/lib::lib"))
	if !id.Hardening.TextRel {
		t.Error("TextRel = false")
	}
	if want := []string{"counter", "vendor_abs", "vendor_debug_dump", "vendor_protected", "vendor_weak"}; !slices.Equal(id.OtherExports, want) {
		t.Errorf("OtherExports = %v, want %v", id.OtherExports, want)
	}
	if want := []string{"/opt/vendor/lib", "", "lib"}; !slices.Equal(id.RPath, want) {
		t.Errorf("RPath = %q, want %q", id.RPath, want)
	}
	findings := id.Findings()
	for _, want := range []string{
		"text relocations",
		"RPATH /opt/vendor/lib (searched before LD_LIBRARY_PATH and the system's library paths)",
		`RPATH "" (searched before LD_LIBRARY_PATH and the system's library paths, empty: the current directory)`,
		"RPATH lib (searched before LD_LIBRARY_PATH and the system's library paths, relative to the current directory)",
		"exports 5 symbols beyond PKCS#11 (counter, vendor_abs, vendor_debug_dump, ...)",
	} {
		if !slices.Contains(findings, want) {
			t.Errorf("no finding %q in %q", want, findings)
		}
	}
}

// A module without PT_GNU_STACK gets an executable stack from the loader: the
// hardened build with that program header turned into PT_NULL.
func TestNoGNUStack(t *testing.T) {
	so := build(t, "nostack.so", "-O2", "-Wl,-z,relro,-z,now", "-Wl,-z,noexecstack")
	if id := inspect(t, so); !id.Hardening.NXStack {
		t.Fatal("NXStack = false before the header is removed")
	}
	b, err := os.ReadFile(so)
	if err != nil {
		t.Fatal(err)
	}
	if b[elf.EI_CLASS] != byte(elf.ELFCLASS64) || b[elf.EI_DATA] != byte(elf.ELFDATA2LSB) {
		t.Skip("the program header is patched as ELF64 little-endian")
	}
	phoff := binary.LittleEndian.Uint64(b[0x20:])
	phentsize := uint64(binary.LittleEndian.Uint16(b[0x36:]))
	phnum := uint64(binary.LittleEndian.Uint16(b[0x38:]))
	patched := 0
	for i := range phnum {
		p := b[phoff+i*phentsize:]
		if elf.ProgType(binary.LittleEndian.Uint32(p)) == elf.PT_GNU_STACK {
			binary.LittleEndian.PutUint32(p, uint32(elf.PT_NULL))
			patched++
		}
	}
	if patched != 1 {
		t.Fatalf("%d PT_GNU_STACK headers", patched)
	}
	if err := os.WriteFile(so, b, 0o644); err != nil {
		t.Fatal(err)
	}
	id := inspect(t, so)
	if id.Hardening.NXStack {
		t.Error("NXStack = true without PT_GNU_STACK")
	}
	if !slices.ContainsFunc(id.Findings(), func(f string) bool { return strings.HasPrefix(f, "executable stack") }) {
		t.Errorf("Findings = %q", id.Findings())
	}
}

func TestSearchPathFindings(t *testing.T) {
	id := &Identity{
		Hardening:     Hardening{RELRO: RELROFull, NXStack: true, StackProtector: true},
		PKCS11Exports: []string{"C_GetFunctionList"},
		RPath:         []string{"lib", ""},
		RunPath:       []string{"/var/tmp/x/../y"},
	}
	want := []string{
		"RPATH lib (ignored by glibc since RUNPATH is present, not by every loader, relative to the current directory)",
		`RPATH "" (ignored by glibc since RUNPATH is present, not by every loader, empty: the current directory)`,
		"RUNPATH /var/tmp/x/../y (searched before the system's library paths, world-writable directory)",
	}
	if got := id.Findings(); !slices.Equal(got, want) {
		t.Errorf("Findings = %q, want %q", got, want)
	}
	id.PKCS11Exports = nil
	if got := id.Findings(); !slices.Contains(got, "does not export C_GetFunctionList") {
		t.Errorf("Findings = %q, want the missing C_GetFunctionList", got)
	}
}

func TestNotELF(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"script.so": "#!/bin/sh\necho not a module\n",
		"empty.so":  "",
		"short.so":  "\x7fEL",
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Inspect(p)
		if err == nil || !errors.Is(err, ErrNotELF) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "not an ELF file") {
			t.Errorf("Inspect(%s) = %v, want an error naming the path and saying it is not an ELF file", name, err)
		}
	}
	// The magic number, then garbage: debug/elf's own error, with the path.
	p := filepath.Join(dir, "truncated.so")
	if err := os.WriteFile(p, []byte("\x7fELF\x02\x01\x01garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(p); err == nil || errors.Is(err, ErrNotELF) || !strings.Contains(err.Error(), p) {
		t.Errorf("Inspect(truncated) = %v, want a malformed-ELF error naming the path", err)
	}
	if _, err := Inspect(dir); err == nil || !errors.Is(err, ErrNotELF) || !strings.Contains(err.Error(), dir) {
		t.Errorf("Inspect(directory) = %v, want not an ELF file", err)
	}
	missing := filepath.Join(dir, "missing.so")
	if _, err := Inspect(missing); err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Inspect(missing) = %v", err)
	}
}
