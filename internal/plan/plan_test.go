package plan

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestMakeErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, want, log string
		env             []string
	}{
		{"no module", "no vendor module is configured", "", nil},
		{"missing module", "does not exist or is not a file", "", []string{"P11ISOLATE_MODULE=" + dir + "/none.so"}},
		{"a directory", "does not exist or is not a file", dir + "/log", []string{"P11ISOLATE_MODULE=" + dir, "P11ISOLATE_LOG=" + dir + "/log"}},
		{"bad setting", "P11ISOLATE_TIMEOUT", "", []string{"P11ISOLATE_TIMEOUT=soon"}},
	} {
		p := Make(c.env, nil)
		if !strings.Contains(p.Error, c.want) || p.Log != c.log {
			t.Errorf("%s: error %q, log %q; want %q and log %q", c.name, p.Error, p.Log, c.want, c.log)
		}
	}
}

func TestMake(t *testing.T) {
	dir := t.TempDir()
	module := filepath.Join(dir, "vendor.so")
	if err := os.WriteFile(module, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"P11ISOLATE_MODULE=" + module, "P11ISOLATE_SANDBOX=strict", "P11ISOLATE_SANDBOX_PATHS=" + dir,
		"P11ISOLATE_TIMEOUT=7s", "SECRET=x", "HOME=/root"}
	reserved := "foo"
	p := Make(env, &reserved)
	if p.Error != "" {
		t.Fatal(p.Error)
	}
	if p.Module != module || p.Timeout != 7e9 || p.Vendor == nil || *p.Vendor != "foo" || p.Profile != ProfileStrict {
		t.Errorf("settings: %+v", p)
	}
	if slices.ContainsFunc(p.Env, func(e string) bool { return strings.HasPrefix(e, "SECRET=") }) ||
		p.EnvTotal != 2 || !strings.Contains(p.EnvHint, "SECRET") {
		t.Errorf("environment: %q of %d, hint %q", p.Env, p.EnvTotal, p.EnvHint)
	}
	real, _ := filepath.EvalSymlinks(dir)
	if !slices.Contains(p.ReadOnly, real) || !slices.Contains(p.ReadWrite, real) || len(p.ArgvInit) != 2 {
		t.Errorf("sandbox: ro %q rw %q argv %q", p.ReadOnly, p.ReadWrite, p.ArgvInit)
	}
	// What C reads of the encoding (cshim/kit.c, its keys generated from
	// Plan's tags) is exercised by every C_Initialize of the integration
	// tests: a key C did not know would fail them all.
	if _, err := p.Encode(); err != nil {
		t.Fatal(err)
	}
}
