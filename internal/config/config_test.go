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
