package main

import (
	"strings"
	"testing"

	"github.com/p11isolate/p11isolate/internal/elfid"
)

// A log as a vetting run writes it: the proxy's lines and the watch
// shim's, relayed from the host's stderr.
const sampleLog = `p11isolate: sandbox=default (from default): pid namespace, seccomp filter; environment: 3 of 9 variables passed
p11isolate: host[41]: p11isolate-watch {"ev":"open","path":"/etc/passwd","flags":"r","ok":true,"by":"/x/libhostile.so"}
p11isolate: host[41]: p11isolate-watch {"ev":"open","path":"/etc/passwd","flags":"r","ok":true,"by":"/x/libhostile.so"}
p11isolate: host[41]: p11isolate-watch {"ev":"connect","addr":"127.0.0.1:7","ok":false,"errno":"ENETUNREACH","by":"/x/libhostile.so"}
p11isolate: host[41]: p11isolate-watch {"ev":"getenv","name":"HOME","set":true,"by":"/x/libhostile.so"}
p11isolate: host[41]: p11isolate-watch {"ev":"getenv","name":"HOME","set":true,"by":"/x/libhostile.so"}
p11isolate: host[41]: p11isolate-watch {"ev":"fork","ok":true,"by":"/x/libhostile.so"}
p11isolate: host[41]: p11isolate-watch {"ev":"thread","ok":true,"by":"/x/libhostile.so"}
p11isolate: host[41]: p11isolate-watch {"ev":"signal","sig":"SIGUSR1","handler":"function","by":"/x/libhostile.so"}
p11isolate: host[41]: p11isolate-watch not json
p11isolate: the host (pid 41) running /x/libfaultmod.so died during C_Sign: it was killed by signal SIGSEGV; the next call starts a new one
p11isolate: C_FindObjects in /x/libfaultmod.so (host pid 57) passed its deadline: killing the host; the next call starts a new one
p11isolate: C_GetAttributeValue: the reply of /x/libfaultmod.so (host pid 60) cannot be true: CKA_LABEL's length 4128 is more than the 32 bytes the application gave; returning CKR_DEVICE_ERROR and killing the host, the next call starts a new one
p11isolate: C_GenerateRandom: the vendor module returned 0x7ffffff0, a code no PKCS#11 version defines (/x/libfaultmod.so): returning CKR_GENERAL_ERROR
`

func TestBehaviourFromLog(t *testing.T) {
	b, sandbox := behaviour(sampleLog)
	if !b.Watched || !strings.HasPrefix(sandbox, "sandbox=default") {
		t.Fatalf("watched %v, sandbox %q", b.Watched, sandbox)
	}
	if len(b.Files) != 1 || b.Files[0].Path != "/etc/passwd" || b.Files[0].Count != 2 {
		t.Errorf("files: %+v", b.Files)
	}
	if len(b.Network) != 1 || b.Network[0].Addr != "127.0.0.1:7" || b.Network[0].Errno != "ENETUNREACH" {
		t.Errorf("network: %+v", b.Network)
	}
	if len(b.Processes) != 1 || b.Threads != 1 || len(b.Signals) != 1 || b.Signals[0].Sig != "SIGUSR1" {
		t.Errorf("processes %+v threads %d signals %+v", b.Processes, b.Threads, b.Signals)
	}
	if strings.Join(b.Env, ",") != "HOME" {
		t.Errorf("environment: %v", b.Env)
	}
}

func TestLoggedFaultsAndPolicy(t *testing.T) {
	r := &Report{Identity: &elfid.Identity{}}
	r.Facts.Robustness.Outcomes = map[string]int{"crash": 1}
	r.Facts.Robustness.Findings = []Finding{{Function: "C_Sign", Outcome: "crash", Call: "C_Sign(...)",
		Log: "p11isolate: the host (pid 41) running /x/libfaultmod.so died during C_Sign: it was killed by signal SIGSEGV; the next call starts a new one"}}
	addLoggedFaults(r, sampleLog)
	o := r.Facts.Robustness.Outcomes
	if o["crash"] != 1 || o["hang"] != 1 || o["lie"] != 1 || o["undefined"] != 1 {
		t.Errorf("outcomes %v", o)
	}
	if n := len(r.Facts.Robustness.Findings); n != 4 {
		t.Errorf("%d findings, want the driver's crash and three from the log: %+v", n, r.Facts.Robustness.Findings)
	}
	r.Behaviour, _ = behaviour(sampleLog)
	pol, err := parsePolicy("crash,network,leak")
	if err != nil {
		t.Fatal(err)
	}
	got := evaluate(r, pol)
	if strings.Join(got.Failed, ",") != "crash,network" {
		t.Errorf("failed %v", got.Failed)
	}
	if _, err := parsePolicy("crash,bogus"); err == nil {
		t.Error("an unknown category was accepted")
	}
	md := string(markdown(r))
	for _, want := range []string{"## Robustness", "1 crashed, 1 hung, 1 lied, 1 returned undefined codes", "`/etc/passwd`", "127.0.0.1:7 (failed: ENETUNREACH", "SIGUSR1 → function"} {
		if !strings.Contains(md, want) {
			t.Errorf("the Markdown lacks %q", want)
		}
	}
}
