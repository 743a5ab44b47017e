// Package elfid describes a PKCS#11 module's shared object for the vetting
// report (p11isolate vet MODULE, "Identity" section): which file it is (path,
// SHA-256, size), what it was built as, how it was hardened, where it looks for
// its own dependencies, and what it exports beyond PKCS#11.
//
// Everything is read from the file with debug/elf; nothing is loaded, so a
// module can be vetted on a machine where it would not even run.
package elfid

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/p11isolate/p11isolate/internal/p11calls"
)

// ErrNotELF is wrapped by Inspect's error when the file does not start with the
// ELF magic number.
var ErrNotELF = errors.New("not an ELF file")

// Identity describes one ELF file.
type Identity struct {
	Path          string    `json:"path"`               // as given
	Resolved      string    `json:"resolved,omitempty"` // filepath.EvalSymlinks(Path), when it differs
	SHA256        string    `json:"sha256"`             // hex
	Size          int64     `json:"size"`
	Class         string    `json:"class"`   // "ELF64", "ELF32"
	Machine       string    `json:"machine"` // "x86-64", "aarch64", ...
	Type          string    `json:"type"`    // "shared object", "PIE executable", "executable", ...
	Hardening     Hardening `json:"hardening"`
	RPath         []string  `json:"rpath,omitempty"`   // DT_RPATH entries
	RunPath       []string  `json:"runpath,omitempty"` // DT_RUNPATH entries
	Needed        []string  `json:"needed"`            // DT_NEEDED, in the file's order
	SOName        string    `json:"soname,omitempty"`
	PKCS11Exports []string  `json:"pkcs11_exports"`        // exported functions named in Functions, sorted
	OtherExports  []string  `json:"other_exports"`         // every other exported function or object, sorted
	Interfaces30  bool      `json:"exports_get_interface"` // C_GetInterfaceList and C_GetInterface both exported
}

// Hardening is what the toolchain did, or did not do, to the module.
type Hardening struct {
	RELRO            string   `json:"relro"`                 // "full", "partial" or "none"
	NXStack          bool     `json:"nx_stack"`              // PT_GNU_STACK present, without PF_X
	StackProtector   bool     `json:"stack_protector"`       // imports the stack protector's failure hook or guard
	Fortify          bool     `json:"fortify"`               // imports at least one __*_chk function
	FortifiedFuncs   []string `json:"fortified,omitempty"`   // the __*_chk imports, sorted
	UnfortifiedFuncs []string `json:"unfortified,omitempty"` // imports that have a __*_chk variant not imported, sorted
	TextRel          bool     `json:"textrel"`               // DT_TEXTREL or DF_TEXTREL
	Stripped         bool     `json:"stripped"`              // no .symtab
}

// The RELRO levels.
const (
	RELROFull    = "full"
	RELROPartial = "partial"
	RELRONone    = "none"
)

// Functions is every PKCS#11 function name of versions 2.40, 3.0 and 3.2,
// sorted, from p11calls, the project's one table of them.
var Functions = func() []string {
	names := make([]string, 0, len(p11calls.Funcs))
	for _, f := range p11calls.Funcs {
		names = append(names, f.Name)
	}
	slices.Sort(names)
	return names
}()

// IsFunction reports whether name is a PKCS#11 function.
func IsFunction(name string) bool {
	_, ok := slices.BinarySearch(Functions, name)
	return ok
}

// toolchain is what the linker and the C runtime's start files export from
// every object: not the vendor's choice, so not worth a line in the report.
var toolchain = map[string]bool{
	"_init": true, "_fini": true, "_edata": true, "_end": true, "__bss_start": true,
	"__bss_start__": true, "__bss_end__": true, "_bss_end__": true, "__end__": true,
	"__gmon_start__": true, "__TMC_END__": true, "__dso_handle": true, "_DYNAMIC": true,
	"_GLOBAL_OFFSET_TABLE_": true, "_IO_stdin_used": true, "__data_start": true, "data_start": true,
	"__libc_csu_init": true, "__libc_csu_fini": true, "_start": true, "_fp_hw": true,
}

// isToolchain also covers the transactional-memory clone table hooks
// (_ITM_registerTMCloneTable, ...) that crtbegin references in every object.
func isToolchain(name string) bool {
	return toolchain[name] || strings.HasPrefix(name, "_ITM_")
}

// stackProtector is what code built with -fstack-protector* imports: glibc's
// failure hook, the guard variable of ABIs without a TLS canary, and ICC's.
var stackProtector = []string{"__stack_chk_fail", "__stack_chk_guard", "__intel_security_cookie"}

// chkVariant is every glibc function _FORTIFY_SOURCE can replace with a
// __NAME_chk variant. An import of one of these without its variant means the
// module calls it unchecked everywhere (or was not built with fortify at all).
var chkVariant = map[string]bool{
	"memcpy": true, "memmove": true, "mempcpy": true, "memset": true, "explicit_bzero": true,
	"stpcpy": true, "stpncpy": true, "strcpy": true, "strncpy": true, "strcat": true, "strncat": true,
	"strlcpy": true, "strlcat": true,
	"sprintf": true, "snprintf": true, "vsprintf": true, "vsnprintf": true,
	"printf": true, "vprintf": true, "fprintf": true, "vfprintf": true, "dprintf": true, "vdprintf": true,
	"asprintf": true, "vasprintf": true, "obstack_printf": true, "obstack_vprintf": true,
	"syslog": true, "vsyslog": true,
	"gets": true, "fgets": true, "fgets_unlocked": true, "fread": true, "fread_unlocked": true,
	"read": true, "pread": true, "pread64": true, "recv": true, "recvfrom": true,
	"readlink": true, "readlinkat": true, "getcwd": true, "getwd": true, "realpath": true,
	"confstr": true, "getgroups": true, "gethostname": true, "getdomainname": true,
	"getlogin_r": true, "ttyname_r": true, "ptsname_r": true,
	"poll": true, "ppoll": true, "longjmp": true,
	"mbstowcs": true, "wcstombs": true, "mbsrtowcs": true, "wcsrtombs": true,
	"mbsnrtowcs": true, "wcsnrtombs": true, "wcrtomb": true, "wctomb": true,
	"wmemcpy": true, "wmemmove": true, "wmempcpy": true, "wmemset": true,
	"wcscpy": true, "wcpcpy": true, "wcsncpy": true, "wcpncpy": true, "wcscat": true, "wcsncat": true,
	"swprintf": true, "vswprintf": true, "wprintf": true, "vwprintf": true, "fwprintf": true, "vfwprintf": true,
	"fgetws": true, "fgetws_unlocked": true,
}

// stbGNUUnique is STB_GNU_UNIQUE (C++ inline statics and template statics):
// debug/elf calls it only STB_LOOS, but such a symbol is as exported as a
// global one.
const stbGNUUnique = elf.STB_LOOS

// Inspect reads the ELF file at path.
//
// The hash and the ELF structures come from one open file, so they describe
// the same bytes even if the path is replaced meanwhile.
func Inspect(path string) (*Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError: already names the path
	}
	defer f.Close()

	id := &Identity{Path: path}
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if resolved != filepath.Clean(path) {
		id.Resolved = resolved
	}

	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w: not a regular file", path, ErrNotELF)
	}
	id.Size = st.Size()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	id.SHA256 = hex.EncodeToString(h.Sum(nil))

	// Checked here so that a script or a text file gets a plain answer rather
	// than debug/elf's "bad magic number".
	magic := make([]byte, len(elf.ELFMAG))
	if n, _ := f.ReadAt(magic, 0); n < len(magic) || !bytes.Equal(magic, []byte(elf.ELFMAG)) {
		return nil, fmt.Errorf("%s: %w", path, ErrNotELF)
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return nil, fmt.Errorf("%s: malformed ELF file: %w", path, err)
	}
	if err := id.read(ef); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return id, nil
}

func (id *Identity) read(ef *elf.File) error {
	switch ef.Class {
	case elf.ELFCLASS64:
		id.Class = "ELF64"
	case elf.ELFCLASS32:
		id.Class = "ELF32"
	default:
		id.Class = ef.Class.String()
	}
	id.Machine = machineName(ef.Machine)

	dynFlags, err := dynWord(ef, elf.DT_FLAGS)
	if err != nil {
		return err
	}
	dynFlags1, err := dynWord(ef, elf.DT_FLAGS_1)
	if err != nil {
		return err
	}
	bindNowTag, err := dynHas(ef, elf.DT_BIND_NOW)
	if err != nil {
		return err
	}
	textRelTag, err := dynHas(ef, elf.DT_TEXTREL)
	if err != nil {
		return err
	}
	if id.Needed, err = dynStrings(ef, elf.DT_NEEDED); err != nil {
		return err
	}
	if id.Needed == nil {
		id.Needed = []string{} // "needed": [] in the report, not null
	}
	soname, err := dynStrings(ef, elf.DT_SONAME)
	if err != nil {
		return err
	}
	if len(soname) > 0 {
		id.SOName = soname[0]
	}
	if id.RPath, err = searchPath(ef, elf.DT_RPATH); err != nil {
		return err
	}
	if id.RunPath, err = searchPath(ef, elf.DT_RUNPATH); err != nil {
		return err
	}

	var relro, interp, stackSeen, stackExec bool
	for _, p := range ef.Progs {
		switch p.Type {
		case elf.PT_GNU_RELRO:
			relro = true
		case elf.PT_INTERP:
			interp = true
		case elf.PT_GNU_STACK:
			stackSeen = true
			stackExec = p.Flags&elf.PF_X != 0
		}
	}

	switch ef.Type {
	case elf.ET_DYN:
		// DF_1_PIE is set by binutils 2.33 and later; before that, a PIE
		// is an ET_DYN with an interpreter and no SONAME (a library that
		// can also be run, like libc.so.6, has a SONAME).
		if elf.DynFlag1(dynFlags1)&elf.DF_1_PIE != 0 || (interp && id.SOName == "") {
			id.Type = "PIE executable"
		} else {
			id.Type = "shared object"
		}
	case elf.ET_EXEC:
		id.Type = "executable"
	case elf.ET_REL:
		id.Type = "relocatable object"
	case elf.ET_CORE:
		id.Type = "core file"
	default:
		id.Type = ef.Type.String()
	}

	hd := &id.Hardening
	bindNow := bindNowTag || elf.DynFlag(dynFlags)&elf.DF_BIND_NOW != 0 || elf.DynFlag1(dynFlags1)&elf.DF_1_NOW != 0
	switch {
	case relro && bindNow:
		hd.RELRO = RELROFull
	case relro:
		// The GOT's PLT part stays writable for lazy binding.
		hd.RELRO = RELROPartial
	default:
		hd.RELRO = RELRONone
	}
	// Without PT_GNU_STACK the loader assumes old code that may need an
	// executable stack (on x86, the default), so only an explicit non-PF_X
	// segment counts.
	hd.NXStack = stackSeen && !stackExec
	hd.TextRel = textRelTag || elf.DynFlag(dynFlags)&elf.DF_TEXTREL != 0
	hd.Stripped = ef.SectionByType(elf.SHT_SYMTAB) == nil

	syms, err := ef.DynamicSymbols()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return fmt.Errorf("dynamic symbols: %w", err)
	}
	imports := map[string]bool{}
	pkcs11 := map[string]bool{}
	other := map[string]bool{}
	for _, s := range syms {
		// debug/elf keeps versions apart, but a name read by other tools
		// may carry one (memcpy@GLIBC_2.14, foo@@V2).
		name, _, _ := strings.Cut(s.Name, "@")
		if name == "" {
			continue
		}
		if s.Section == elf.SHN_UNDEF {
			imports[name] = true
			continue
		}
		if !exported(s) {
			continue
		}
		typ := elf.ST_TYPE(s.Info)
		switch {
		case (typ == elf.STT_FUNC || typ == elf.STT_GNU_IFUNC) && IsFunction(name):
			pkcs11[name] = true
		case isToolchain(name):
		default:
			other[name] = true
		}
	}
	id.PKCS11Exports = sortedKeys(pkcs11)
	id.OtherExports = sortedKeys(other)
	id.Interfaces30 = pkcs11["C_GetInterfaceList"] && pkcs11["C_GetInterface"]

	for _, n := range stackProtector {
		hd.StackProtector = hd.StackProtector || imports[n]
	}
	for n := range imports {
		if strings.HasPrefix(n, "__") && strings.HasSuffix(n, "_chk") {
			hd.FortifiedFuncs = append(hd.FortifiedFuncs, n)
		} else if chkVariant[n] && !imports["__"+n+"_chk"] {
			hd.UnfortifiedFuncs = append(hd.UnfortifiedFuncs, n)
		}
	}
	slices.Sort(hd.FortifiedFuncs)
	slices.Sort(hd.UnfortifiedFuncs)
	hd.Fortify = len(hd.FortifiedFuncs) > 0
	return nil
}

// exported reports whether a defined dynamic symbol is visible to other
// objects, and is code or data (not a section, file or version marker).
func exported(s elf.Symbol) bool {
	switch elf.ST_BIND(s.Info) {
	case elf.STB_GLOBAL, elf.STB_WEAK, stbGNUUnique:
	default:
		return false
	}
	switch elf.ST_VISIBILITY(s.Other) {
	case elf.STV_HIDDEN, elf.STV_INTERNAL:
		return false
	}
	switch elf.ST_TYPE(s.Info) {
	case elf.STT_FUNC, elf.STT_GNU_IFUNC:
		return true
	case elf.STT_OBJECT:
		// Linkers before binutils 2.35 put each version definition
		// (LIBFOO_1.0) in .dynsym as an absolute, empty object.
		return !(s.Section == elf.SHN_ABS && s.Size == 0 && s.Value == 0)
	}
	return false
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m)) // [] in the report, not null
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// dynHas reports whether the dynamic section has tag.
func dynHas(ef *elf.File, tag elf.DynTag) (bool, error) {
	v, err := ef.DynValue(tag)
	if err != nil {
		return false, fmt.Errorf("dynamic section, %v: %w", tag, err)
	}
	return len(v) > 0, nil
}

// dynWord is tag's value, or 0 when absent.
func dynWord(ef *elf.File, tag elf.DynTag) (uint64, error) {
	v, err := ef.DynValue(tag)
	if err != nil {
		return 0, fmt.Errorf("dynamic section, %v: %w", tag, err)
	}
	var w uint64
	for _, x := range v {
		w |= x // a repeated flags tag: the loader honours the bits of each
	}
	return w, nil
}

func dynStrings(ef *elf.File, tag elf.DynTag) ([]string, error) {
	v, err := ef.DynString(tag)
	if err != nil {
		return nil, fmt.Errorf("dynamic section, %v: %w", tag, err)
	}
	return v, nil
}

// searchPath splits DT_RPATH or DT_RUNPATH into its entries. Empty entries are
// kept: the loader searches the current directory for them.
func searchPath(ef *elf.File, tag elf.DynTag) ([]string, error) {
	v, err := dynStrings(ef, tag)
	if err != nil {
		return nil, err
	}
	var entries []string
	for _, s := range v {
		entries = append(entries, strings.Split(s, ":")...)
	}
	return entries, nil
}

// machineName shortens debug/elf's EM_ names, using the spelling of the
// toolchains (and of readelf) for the common ones.
func machineName(m elf.Machine) string {
	switch m {
	case elf.EM_X86_64:
		return "x86-64"
	case elf.EM_386:
		return "i386"
	case elf.EM_AARCH64:
		return "aarch64"
	case elf.EM_ARM:
		return "arm"
	case elf.EM_RISCV:
		return "riscv"
	case elf.EM_PPC64:
		return "ppc64"
	case elf.EM_PPC:
		return "ppc"
	case elf.EM_S390:
		return "s390"
	case elf.EM_MIPS:
		return "mips"
	case elf.EM_LOONGARCH:
		return "loongarch"
	case elf.EM_SPARCV9:
		return "sparcv9"
	}
	return strings.ToLower(strings.TrimPrefix(m.String(), "EM_"))
}

// worldWritable are directories anyone can write to, so anyone can plant a
// library in them.
var worldWritable = []string{"/tmp", "/var/tmp", "/dev/shm", "/run/shm"}

// Findings returns one short line per weakness, for the report and for a
// vetting policy. It is empty for a well-built module.
func (id *Identity) Findings() []string {
	var out []string
	hd := id.Hardening
	if !hd.NXStack {
		out = append(out, "executable stack (no PT_GNU_STACK, or PT_GNU_STACK with PF_X)")
	}
	switch hd.RELRO {
	case RELROFull:
	case RELROPartial:
		out = append(out, "partial RELRO (no BIND_NOW)")
	default:
		out = append(out, "no RELRO")
	}
	// A module whose functions have no arrays on the stack would not import
	// the hook even if built with -fstack-protector-strong; a PKCS#11 module
	// handles buffers, so the absence is worth a line.
	if !hd.StackProtector {
		out = append(out, "no stack protector")
	}
	// Only when there was something to fortify: a module calling none of
	// the checked functions imports no __*_chk whatever its flags.
	if !hd.Fortify && len(hd.UnfortifiedFuncs) > 0 {
		out = append(out, fmt.Sprintf("not fortified (imports %s without __*_chk)", strings.Join(hd.UnfortifiedFuncs, ", ")))
	}
	if hd.TextRel {
		out = append(out, "text relocations")
	}
	for _, e := range id.RPath {
		note := "searched before LD_LIBRARY_PATH and the system's library paths"
		if len(id.RunPath) > 0 {
			note = "ignored by glibc since RUNPATH is present, not by every loader"
		}
		out = append(out, searchPathFinding("RPATH", e, note))
	}
	for _, e := range id.RunPath {
		out = append(out, searchPathFinding("RUNPATH", e, "searched before the system's library paths"))
	}
	if !slices.Contains(id.PKCS11Exports, p11calls.GetFunctionList) {
		out = append(out, "does not export "+p11calls.GetFunctionList)
	}
	if n := len(id.OtherExports); n > 0 {
		s := "s"
		if n == 1 {
			s = ""
		}
		names := id.OtherExports
		more := ""
		if len(names) > 3 {
			names, more = names[:3], ", ..."
		}
		out = append(out, fmt.Sprintf("exports %d symbol%s beyond PKCS#11 (%s%s)", n, s, strings.Join(names, ", "), more))
	}
	return out
}

// searchPathFinding is the line for one RPATH or RUNPATH entry: every entry is
// a place the module's dependencies may come from, and some are worse.
func searchPathFinding(kind, entry, note string) string {
	notes := []string{note}
	shown := entry
	switch {
	case entry == "":
		shown = `""`
		notes = append(notes, "empty: the current directory")
	case strings.HasPrefix(entry, "$ORIGIN") || strings.HasPrefix(entry, "${ORIGIN}"):
		notes = append(notes, "relative to $ORIGIN")
	case !strings.HasPrefix(entry, "/"):
		notes = append(notes, "relative to the current directory")
	default:
		clean := path.Clean(entry)
		for _, d := range worldWritable {
			if clean == d || strings.HasPrefix(clean, d+"/") {
				notes = append(notes, "world-writable directory")
				break
			}
		}
	}
	return fmt.Sprintf("%s %s (%s)", kind, shown, strings.Join(notes, ", "))
}
