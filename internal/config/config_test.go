package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func strp(s string) *string { return &s }

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p11isolate.conf")
	os.WriteFile(file, []byte("# comment\nmodule = /from/file.so\ntimeout = 7s\nlog = /tmp/x.log\n"), 0o600)
	env := []string{"P11ISOLATE_CONFIG=" + file, "P11ISOLATE_TIMEOUT=3s", "HOME=/root"}
	c, err := Resolve(env, strp("module=/from/reserved.so keygen_timeout=1m"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Module != "/from/reserved.so" || c.Timeout != 3*time.Second || c.KeygenTimeout != time.Minute || c.Log != "/tmp/x.log" {
		t.Fatalf("got %+v", c)
	}
	if c.VendorReserved != nil {
		t.Error("our own pReserved was forwarded to the vendor")
	}
	if c.Source["timeout"] != "P11ISOLATE_TIMEOUT" || !strings.HasPrefix(c.Source["log"], file) {
		t.Errorf("sources %v", c.Source)
	}
}

func TestDefaultsAndVendorReserved(t *testing.T) {
	c, err := Resolve(nil, strp("configdir='sql:/etc/pki/nssdb' flags=readOnly"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeout != 30*time.Second || c.Log != "stderr" || c.Module != "" {
		t.Errorf("defaults %+v", c)
	}
	if c.VendorReserved == nil || *c.VendorReserved != "configdir='sql:/etc/pki/nssdb' flags=readOnly" {
		t.Errorf("vendor pReserved not forwarded: %v", c.VendorReserved)
	}
	c, _ = Resolve([]string{"P11ISOLATE_VENDOR_RESERVED=abc"}, nil)
	if c.VendorReserved == nil || *c.VendorReserved != "abc" {
		t.Error("vendor_reserved setting ignored")
	}
}

func TestErrors(t *testing.T) {
	if _, err := Resolve([]string{"P11ISOLATE_TIMEOUT=soon"}, nil); err == nil || !strings.Contains(err.Error(), "P11ISOLATE_TIMEOUT") {
		t.Errorf("bad duration: %v", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.conf")
	os.WriteFile(file, []byte("modul = x\n"), 0o600)
	if _, err := Resolve([]string{"P11ISOLATE_CONFIG=" + file}, nil); err == nil || !strings.Contains(err.Error(), "bad.conf:1") {
		t.Errorf("unknown setting: %v", err)
	}
	if _, err := Resolve([]string{"P11ISOLATE_CONFIG=/nonexistent"}, nil); err == nil {
		t.Error("missing file accepted")
	}
	if c, _ := Resolve([]string{"P11ISOLATE_TIMEOUT=0"}, nil); c.Timeout != 0 {
		t.Error("0 does not disable")
	}
}

func TestSandboxSettings(t *testing.T) {
	c, err := Resolve(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Sandbox != SandboxDefault || len(c.SandboxPaths) != 0 || len(c.Env) != 0 || c.ModuleSHA256 != "" {
		t.Errorf("defaults %+v", c)
	}
	sum := strings.Repeat("Ab", 32)
	c, err = Resolve([]string{"P11ISOLATE_SANDBOX=Strict", "P11ISOLATE_ENV=FOO, MYHSM_*"},
		strp("module=/m.so sandbox_paths=/var/lib/tok:/dev/bus/usb,/x/ module_sha256="+sum+" env=BAR"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sandbox != SandboxStrict || strings.Join(c.SandboxPaths, " ") != "/var/lib/tok /dev/bus/usb /x" ||
		strings.Join(c.Env, " ") != "FOO MYHSM_*" || c.ModuleSHA256 != strings.ToLower(sum) {
		t.Errorf("got %+v", c)
	}
	for _, bad := range []string{"P11ISOLATE_SANDBOX=tight", "P11ISOLATE_SANDBOX_PATHS=rel/dir", "P11ISOLATE_MODULE_SHA256=abc", "P11ISOLATE_ENV=[x"} {
		if _, err := Resolve([]string{bad}, nil); err == nil || !strings.Contains(err.Error(), strings.ToLower(strings.TrimPrefix(strings.Split(bad, "=")[0], "P11ISOLATE_"))) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestFilterEnv(t *testing.T) {
	env := []string{"PATH=/bin", "SECRET=x", "P11ISOLATE_MODULE=/m.so", "LC_ALL=C", "SOFTHSM2_CONF=/c",
		"MYHSM_A=1", "NFAST_HOME=/opt/nfast", "FAULTMOD_FAULT=segv", "PATH=/second"}
	given, names, withheld := FilterEnv(env, nil)
	if strings.Join(given, " ") != "PATH=/bin LC_ALL=C SOFTHSM2_CONF=/c NFAST_HOME=/opt/nfast" {
		t.Errorf("given %q", given)
	}
	if strings.Join(names, " ") != "LC_ALL NFAST_HOME PATH SOFTHSM2_CONF" || strings.Join(withheld, " ") != "FAULTMOD_FAULT MYHSM_A SECRET" {
		t.Errorf("names %q withheld %q", names, withheld)
	}
	given, _, withheld = FilterEnv(env, []string{"MYHSM_*", "FAULTMOD_FAULT"})
	if len(given) != 6 || strings.Join(withheld, " ") != "SECRET" {
		t.Errorf("with extra: %q %q", given, withheld)
	}
	given, _, withheld = FilterEnv(env, []string{"*"})
	if len(given) != 7 || len(withheld) != 0 {
		t.Errorf("env=*: %q %q", given, withheld)
	}
}
