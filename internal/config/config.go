// Package config resolves p11isolate's settings. Every setting has one name,
// used everywhere; a value comes from, highest first:
//
//  1. the environment variable P11ISOLATE_<NAME> (upper case);
//  2. C_Initialize's pReserved string "module=/path/vendor.so [name=value ...]";
//  3. the file named by P11ISOLATE_CONFIG: lines "name = value", '#' comments;
//  4. the built-in default.
package config

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Setting documents one setting.
type Setting struct {
	Name    string
	Default string
	Doc     string
}

// Settings is every setting p11isolate reads.
var Settings = []Setting{
	{"module", "", "path of the vendor PKCS#11 module the host loads (required)"},
	{"timeout", "30s", "per-call deadline; past it the host is killed and the call returns CKR_DEVICE_ERROR (0 disables)"},
	{"keygen_timeout", "300s", "deadline of C_GenerateKey and C_GenerateKeyPair (0 disables)"},
	{"log", "stderr", "where log lines go: stderr, or a file path (appended to)"},
	{"trace", "", "file to append one JSON line per PKCS#11 call to (function, arguments with names, result, duration, host pid; never a PIN, key material or a secret attribute's value); empty: off"},
	{"vendor_reserved", "", "string passed to the vendor's C_Initialize as pReserved (NSS softokn takes its configuration this way)"},
	{"host", "", "path of a host binary to run instead of the embedded one (it must match the build's hash)"},
	{"memory_limit", "1G", "the host's memory limit (RLIMIT_DATA); a runaway vendor allocation ends the host, never the application; K, M, G suffixes; 0 disables"},
	{"sandbox", "default", "isolation profile of the host: default (namespaces, seccomp, Landlock scopes where the kernel allows), strict (adds a Landlock filesystem allowlist, private /tmp and /dev/shm, no network), off"},
	{"sandbox_paths", "", "strict profile: extra paths the vendor may read and write (token directories, devices), separated by commas or colons"},
	{"env", "", "application environment variables the host gets beyond the built-in list: names or shell patterns (FOO,MYHSM_*), separated by commas or spaces; * passes all"},
	{"module_sha256", "", "SHA-256 (hex) the vendor module must have; the host hashes the very file it loads and refuses a mismatch"},
}

// Sandbox profiles.
const (
	SandboxOff     = "off"
	SandboxDefault = "default"
	SandboxStrict  = "strict"
)

// Config holds resolved settings.
type Config struct {
	Module         string
	Timeout        time.Duration
	KeygenTimeout  time.Duration
	Log            string
	Trace          string  // "": off
	VendorReserved *string // nil: pass NULL
	Host           string
	MemoryLimit    uint64 // bytes; 0: none
	Sandbox        string // SandboxOff, SandboxDefault or SandboxStrict
	SandboxPaths   []string
	Env            []string // names and patterns added to the built-in list
	ModuleSHA256   string   // lower-case hex, or ""
	// Values and Source give, per setting name, the value as it was
	// written and where it came from (for logs and `p11isolate check`).
	Values map[string]string
	Source map[string]string
}

// IsReservedConfig reports whether a C_Initialize pReserved string is
// p11isolate's own configuration rather than something for the vendor: it
// must consist of name=value words with known names.
func IsReservedConfig(s string) bool {
	words := strings.Fields(s)
	if len(words) == 0 {
		return false
	}
	for _, w := range words {
		name, _, ok := strings.Cut(w, "=")
		if !ok || lookup(name) == nil {
			return false
		}
	}
	return true
}

func lookup(name string) *Setting {
	for i := range Settings {
		if Settings[i].Name == name {
			return &Settings[i]
		}
	}
	return nil
}

// Resolve computes the configuration from the environment (as "NAME=value"
// strings, C's environ at C_Initialize) and an optional pReserved string.
func Resolve(environ []string, reserved *string) (*Config, error) {
	values := map[string]string{}
	source := map[string]string{}
	set := func(name, value, from string) {
		values[name], source[name] = value, from
	}
	for _, s := range Settings {
		set(s.Name, s.Default, "default")
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			if _, dup := env[k]; !dup {
				env[k] = v
			}
		}
	}
	if path := env["P11ISOLATE_CONFIG"]; path != "" {
		if err := readFile(path, set); err != nil {
			return nil, err
		}
	}
	if reserved != nil && IsReservedConfig(*reserved) {
		for _, w := range strings.Fields(*reserved) {
			name, value, _ := strings.Cut(w, "=")
			set(name, value, "C_Initialize pReserved")
		}
	}
	for _, s := range Settings {
		if v, ok := env["P11ISOLATE_"+strings.ToUpper(s.Name)]; ok {
			set(s.Name, v, "P11ISOLATE_"+strings.ToUpper(s.Name))
		}
	}

	c := &Config{Module: values["module"], Log: values["log"], Trace: values["trace"], Host: values["host"], Values: values, Source: source}
	var err error
	if c.Timeout, err = duration(values, source, "timeout"); err != nil {
		return nil, err
	}
	if c.KeygenTimeout, err = duration(values, source, "keygen_timeout"); err != nil {
		return nil, err
	}
	if c.MemoryLimit, err = size(values, source, "memory_limit"); err != nil {
		return nil, err
	}
	if c.Sandbox, err = sandbox(values, source); err != nil {
		return nil, err
	}
	if c.SandboxPaths, err = paths(values, source, "sandbox_paths"); err != nil {
		return nil, err
	}
	c.Env = strings.FieldsFunc(values["env"], func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	for _, p := range c.Env {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("setting env=%q (from %s): %q is not a name or shell pattern", values["env"], source["env"], p)
		}
	}
	if c.ModuleSHA256, err = sha256hex(values, source, "module_sha256"); err != nil {
		return nil, err
	}
	if source["vendor_reserved"] != "default" {
		v := values["vendor_reserved"]
		c.VendorReserved = &v
	} else if reserved != nil && !IsReservedConfig(*reserved) {
		// Not ours: the application meant it for the vendor.
		v := *reserved
		c.VendorReserved = &v
	}
	return c, nil
}

func duration(values, source map[string]string, name string) (time.Duration, error) {
	v := values[name]
	if v == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("setting %s=%q (from %s) is not a duration: write it like 5s, 500ms or 2m, or 0 to disable", name, v, source[name])
	}
	return d, nil
}

func sandbox(values, source map[string]string) (string, error) {
	switch v := strings.ToLower(strings.TrimSpace(values["sandbox"])); v {
	case SandboxOff, SandboxDefault, SandboxStrict:
		return v, nil
	}
	return "", fmt.Errorf("setting sandbox=%q (from %s) is not a profile: write default, strict or off", values["sandbox"], source["sandbox"])
}

// paths splits a list of absolute paths at commas and colons.
func paths(values, source map[string]string, name string) ([]string, error) {
	var out []string
	for _, p := range strings.FieldsFunc(values[name], func(r rune) bool { return r == ',' || r == ':' }) {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("setting %s (from %s): %q is not an absolute path", name, source[name], p)
		}
		out = append(out, filepath.Clean(p))
	}
	return out, nil
}

func sha256hex(values, source map[string]string, name string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(values[name]))
	if v == "" {
		return "", nil
	}
	if b, err := hex.DecodeString(v); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("setting %s=%q (from %s) is not a SHA-256: write the 64 hex digits sha256sum prints", name, values[name], source[name])
	}
	return v, nil
}

func size(values, source map[string]string, name string) (uint64, error) {
	v := strings.TrimSpace(values[name])
	mult := uint64(1)
	if n := len(v); n > 0 {
		switch v[n-1] {
		case 'K', 'k':
			mult, v = 1<<10, v[:n-1]
		case 'M', 'm':
			mult, v = 1<<20, v[:n-1]
		case 'G', 'g':
			mult, v = 1<<30, v[:n-1]
		}
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > (1<<63)/mult {
		return 0, fmt.Errorf("setting %s=%q (from %s) is not a size: write it like 512M or 2G, or 0 for no limit", name, values[name], source[name])
	}
	return n * mult, nil
}

func readFile(path string, set func(name, value, from string)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot read the configuration file named by P11ISOLATE_CONFIG: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		name, value, ok := strings.Cut(text, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || lookup(name) == nil {
			return fmt.Errorf("%s:%d: %q is not a setting line: write name = value, with one of %s", path, line, text, names())
		}
		set(name, value, fmt.Sprintf("%s:%d", path, line))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("cannot read %s: %v", path, err)
	}
	return nil
}

func names() string {
	var n []string
	for _, s := range Settings {
		n = append(n, s.Name)
	}
	return strings.Join(n, ", ")
}
