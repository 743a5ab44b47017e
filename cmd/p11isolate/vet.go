package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/p11isolate/p11isolate/internal/elfid"
)

// vet runs a module only inside the host and reports on it. The module's
// file is read here (identity); everything that calls it runs in
// p11isolate-vet-driver, a C program that loads libp11isolate.so as an
// application would, and the host's behaviour comes from
// libp11isolate-watch.so, preloaded into the host alone. Both sit beside
// the library.
func vet(args []string, stdout io.Writer) int {
	fs := flag.NewFlagSet("vet", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	var o vetOptions
	fs.StringVar(&o.library, "library", "", "the libp11isolate.so to run the module behind (default: the one installed beside this command)")
	fs.StringVar(&o.slot, "slot", "", "slot ID to vet (default: the first with an initialized token)")
	fs.StringVar(&o.pinFile, "pin-file", "", "file whose first line is the user PIN (or P11ISOLATE_VET_PIN)")
	fs.StringVar(&o.soPinFile, "so-pin-file", "", "file whose first line is the SO PIN (or P11ISOLATE_VET_SO_PIN)")
	fs.BoolVar(&o.throwaway, "throwaway-token", false, "make a throwaway token to vet: in a free slot (C_InitToken with generated PINs); for SoftHSM2 in a token directory of its own")
	fs.StringVar(&o.env, "env", "", "environment variables the module needs, as the env setting takes them (FOO,VENDOR_*)")
	fs.StringVar(&o.jsonOut, "json", "", "write the report as JSON to this file (- for stdout)")
	fs.StringVar(&o.mdOut, "markdown", "-", "write the report as Markdown to this file (- for stdout, empty for none)")
	fs.StringVar(&o.failOn, "fail-on", "crash,hang,lie,undefined", "exit 1 when the report has any of: "+strings.Join(policyNames(), ","))
	fs.IntVar(&o.calls, "calls", 10000, "calls of the leak check")
	fs.StringVar(&o.skip, "skip", "", "sections not to run: any of conformance,robustness,leaks,cost")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "per-call deadline while vetting: a call that takes longer counts as a hang")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: p11isolate vet [options] MODULE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	o.module = fs.Arg(0)
	policy, err := parsePolicy(o.failOn)
	if err != nil {
		fmt.Fprintf(os.Stderr, "p11isolate vet: %v\n", err)
		return 2
	}
	rep, err := runVet(&o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "p11isolate vet: %v\n", err)
		return 2
	}
	rep.Policy = evaluate(rep, policy)
	if err := writeReports(rep, &o, stdout); err != nil {
		fmt.Fprintf(os.Stderr, "p11isolate vet: %v\n", err)
		return 2
	}
	if len(rep.Policy.Failed) > 0 {
		return 1
	}
	return 0
}

type vetOptions struct {
	library, module, slot, pinFile, soPinFile, env, jsonOut, mdOut, failOn, skip string
	throwaway                                                                    bool
	calls                                                                        int
	timeout                                                                      time.Duration
}

// Report is the vetting report; the Markdown and the JSON carry the same
// facts.
type Report struct {
	Tool      string            `json:"tool"`
	Date      string            `json:"date"`
	Module    string            `json:"module"`
	Identity  *elfid.Identity   `json:"identity"`
	Weakness  []string          `json:"identity_findings"`
	Sandbox   string            `json:"sandbox"`
	Facts     driverFacts       `json:"calls"`
	Behaviour Behaviour         `json:"behaviour"`
	Policy    PolicyResult      `json:"policy"`
	Notes     []string          `json:"notes,omitempty"`
	Settings  map[string]string `json:"settings"`
}

// driverFacts is what p11isolate-vet-driver writes (numbers for PKCS#11
// values; the report names them).
type driverFacts struct {
	Info struct {
		Cryptoki       [2]int `json:"cryptoki"`
		Manufacturer   string `json:"manufacturer"`
		Flags          uint64 `json:"flags"`
		Library        string `json:"library"`
		LibraryVersion [2]int `json:"library_version"`
	} `json:"info"`
	Interfaces []struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Flags   uint64 `json:"flags"`
	} `json:"interfaces"`
	Slots []struct {
		ID           uint64 `json:"id"`
		Description  string `json:"description"`
		Manufacturer string `json:"manufacturer"`
		Flags        uint64 `json:"flags"`
		Token        *struct {
			Label        string `json:"label"`
			Manufacturer string `json:"manufacturer"`
			Model        string `json:"model"`
			Serial       string `json:"serial"`
			Flags        uint64 `json:"flags"`
			PinMin       int64  `json:"pin_min"`
			PinMax       int64  `json:"pin_max"`
			MaxSessions  int64  `json:"max_sessions"`
		} `json:"token"`
		Mechanisms []struct {
			Type  uint64 `json:"type"`
			Min   uint64 `json:"min"`
			Max   uint64 `json:"max"`
			Flags uint64 `json:"flags"`
		} `json:"mechanisms"`
	} `json:"slots"`
	Slot        *uint64 `json:"slot"`
	Conformance []struct {
		ID      string `json:"id"`
		Rule    string `json:"rule"`
		Verdict string `json:"verdict"`
		Call    string `json:"call"`
		Got     string `json:"got"`
		Want    string `json:"want"`
		Why     string `json:"why,omitempty"`
	} `json:"conformance"`
	Robustness struct {
		Calls    int            `json:"calls"`
		Outcomes map[string]int `json:"outcomes"`
		Findings []Finding      `json:"findings"`
	} `json:"robustness"`
	Leaks struct {
		Calls   int    `json:"calls"`
		Ops     string `json:"ops"`
		HostPID int    `json:"host_pid"`
		RSSKiB  []int  `json:"rss_kib"`
		FDs     []int  `json:"fds"`
		Threads []int  `json:"threads"`
	} `json:"leaks"`
	Cost []struct {
		Op     string  `json:"op"`
		N      int     `json:"n"`
		P50US  float64 `json:"p50_us"`
		MeanUS float64 `json:"mean_us"`
	} `json:"cost"`
	Errors []string `json:"errors"`
}

// Finding is a robustness call that crashed, hung, lied or returned a
// code no version defines.
type Finding struct {
	Function string `json:"function"`
	Outcome  string `json:"outcome"`
	Call     string `json:"call"` // a one-line reproducer
	RV       uint64 `json:"rv"`
	Log      string `json:"log"` // the proxy's line
}

// Behaviour is what the module did in the host, as the watch shim saw it
// (calls made by the module and the libraries it loaded, never the host's
// own), and what the host grew by.
type Behaviour struct {
	Files     []Event  `json:"files"`
	Network   []Event  `json:"network"`
	Processes []Event  `json:"processes"`
	Threads   int      `json:"threads_started"`
	Env       []string `json:"environment_read"`
	Signals   []Event  `json:"signal_handlers"`
	Libraries []Event  `json:"libraries_loaded"`
	Truncated bool     `json:"truncated,omitempty"`
	Watched   bool     `json:"watched"` // the shim reported: its silence means nothing happened
}

// Event is one line of the watch shim (Count: of the hosts of the run that
// reported it; the shim reports a repeated open, dlopen, connect or
// handler once per process).
type Event struct {
	Ev      string `json:"ev"`
	By      string `json:"by,omitempty"`
	Path    string `json:"path,omitempty"`
	Flags   string `json:"flags,omitempty"`
	Addr    string `json:"addr,omitempty"`
	Name    string `json:"name,omitempty"`
	Set     *bool  `json:"set,omitempty"`
	Sig     string `json:"sig,omitempty"`
	Handler string `json:"handler,omitempty"`
	OK      *bool  `json:"ok,omitempty"`
	Errno   string `json:"errno,omitempty"`
	Count   int    `json:"count,omitempty"`
}

func runVet(o *vetOptions) (*Report, error) {
	rep := &Report{Tool: "p11isolate " + version, Date: time.Now().UTC().Format(time.RFC3339), Module: o.module,
		Settings: map[string]string{}}
	id, err := elfid.Inspect(o.module)
	if err != nil {
		return nil, fmt.Errorf("%w (name the vendor's PKCS#11 .so)", err)
	}
	rep.Identity, rep.Weakness = id, id.Findings()

	lib := o.library
	if lib == "" {
		if lib, err = installedLibrary(); err != nil {
			return nil, err
		}
	}
	driver := filepath.Join(filepath.Dir(lib), "p11isolate-vet-driver")
	watch := filepath.Join(filepath.Dir(lib), "libp11isolate-watch.so")
	for _, p := range []string{driver, watch} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s is missing (make and make install put it beside the library): %v", p, err)
		}
	}
	work, err := os.MkdirTemp("", "p11isolate-vet-*")
	if err != nil {
		return nil, fmt.Errorf("a temporary directory: %w", err)
	}
	defer os.RemoveAll(work)
	logPath := filepath.Join(work, "vet.log")

	env := []string{}
	for _, kv := range os.Environ() {
		// The module under review gets only what the operator passes;
		// no setting of the caller's leaks into the run.
		if !strings.HasPrefix(kv, "P11ISOLATE_") && !strings.HasPrefix(kv, "LD_PRELOAD=") && !strings.HasPrefix(kv, "VET_") {
			env = append(env, kv)
		}
	}
	pass := []string{"LD_PRELOAD", "P11I_WATCH"}
	if o.env != "" {
		pass = append(pass, o.env)
	}
	set := map[string]string{
		"P11ISOLATE_MODULE":  o.module,
		"P11ISOLATE_LOG":     logPath,
		"P11ISOLATE_TIMEOUT": o.timeout.String(),
		// A hang in key generation costs the same deadline.
		"P11ISOLATE_KEYGEN_TIMEOUT": o.timeout.String(),
		"P11ISOLATE_ENV":            strings.Join(pass, ","),
		"VET_PRELOAD":               watch,
		"VET_LEAK_CALLS":            fmt.Sprint(o.calls),
	}
	if o.slot != "" {
		set["VET_SLOT"] = o.slot
	}
	if o.skip != "" {
		for _, s := range strings.Split(o.skip, ",") {
			if !slices.Contains([]string{"conformance", "robustness", "leaks", "cost"}, s) {
				return nil, fmt.Errorf("--skip: unknown section %q (conformance, robustness, leaks, cost)", s)
			}
		}
		set["VET_SKIP"] = o.skip
	}
	pin, soPin, err := pins(o)
	if err != nil {
		return nil, err
	}
	if o.throwaway {
		if pin == "" {
			pin = randomPIN()
		}
		if soPin == "" {
			soPin = randomPIN()
		}
		set["VET_INIT_TOKEN"] = "1"
		if isSoftHSM(id) {
			conf, err := softhsmConf(work)
			if err != nil {
				return nil, err
			}
			set["SOFTHSM2_CONF"] = conf
			set["P11ISOLATE_ENV"] += ",SOFTHSM2_CONF"
			rep.Notes = append(rep.Notes, "throwaway SoftHSM2 token directory (SOFTHSM2_CONF of this run only)")
		}
	}
	if pin != "" {
		set["VET_PIN"] = pin
	}
	if soPin != "" {
		set["VET_SO_PIN"] = soPin
	}
	// What this run sets replaces the caller's (C's getenv reads the
	// first of two).
	kept := env[:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if _, over := set[name]; !over {
			kept = append(kept, kv)
		}
	}
	env = kept
	for k, v := range set {
		if k != "VET_PIN" && k != "VET_SO_PIN" {
			rep.Settings[k] = v
		}
		env = append(env, k+"="+v)
	}
	sort.Strings(env)

	cmd := exec.Command(driver, lib)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	logged, _ := os.ReadFile(logPath)
	if err := json.Unmarshal(out.Bytes(), &rep.Facts); err != nil {
		msg := strings.TrimSpace(errb.String())
		if runErr != nil {
			return nil, fmt.Errorf("the vetting driver failed (%v): %s\n%s", runErr, msg, tail(string(logged), 20))
		}
		return nil, fmt.Errorf("the vetting driver's report cannot be read: %v\n%s", err, msg)
	}
	for _, s := range []string{pin, soPin} {
		if s != "" && (bytes.Contains(logged, []byte(s)) || bytes.Contains(out.Bytes(), []byte(s))) {
			rep.Notes = append(rep.Notes, "WARNING: a PIN appeared in the module's output; it is not reproduced here")
		}
	}
	rep.Behaviour, rep.Sandbox = behaviour(string(logged))
	addLoggedFaults(rep, string(logged))
	return rep, nil
}

// The proxy's log lines for what a host did wrong (cshim/supervise.c).
var faultLines = []struct {
	outcome string
	re      *regexp.Regexp
}{
	{"crash", regexp.MustCompile(`the host \(pid \d+\) running .* died during (C_\w+)`)},
	{"hang", regexp.MustCompile(`(C_\w+) in .* passed its deadline`)},
	{"hang", regexp.MustCompile(`loading .* did not finish within the deadline`)},
	{"lie", regexp.MustCompile(`(C_\w+): the reply of .* cannot be true`)},
	{"undefined", regexp.MustCompile(`(C_\w+): the vendor module returned 0x[0-9a-f]+, a code no PKCS#11 version defines`)},
}

// addLoggedFaults counts every crash, hang, lie and undefined code the log
// holds, wherever in the run it happened: the driver attributes those of
// its robustness calls to a reproducer, and one during the inventory or
// the conformance checks is a finding too.
func addLoggedFaults(rep *Report, log string) {
	rb := &rep.Facts.Robustness
	if rb.Outcomes == nil {
		rb.Outcomes = map[string]int{}
	}
	known := map[string]bool{}
	for _, f := range rb.Findings {
		known[strings.TrimSpace(f.Log)] = true
	}
	seen := map[string]int{}
	for _, line := range strings.Split(log, "\n") {
		line = strings.TrimSpace(line)
		for _, fl := range faultLines {
			m := fl.re.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			seen[fl.outcome]++
			if known[line] || known[strings.TrimPrefix(line, "p11isolate: ")] {
				break
			}
			fn := "C_Initialize"
			if len(m) > 1 {
				fn = m[1]
			}
			rb.Findings = append(rb.Findings, Finding{fn, fl.outcome, fn + " (a well-formed call of the inventory, conformance, leak or cost checks)", 0, line})
			break
		}
	}
	for k, n := range seen {
		if n > rb.Outcomes[k] {
			rb.Outcomes[k] = n
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// pins reads the PINs from their files or the environment.
func pins(o *vetOptions) (pin, soPin string, err error) {
	read := func(file, env string) (string, error) {
		if file == "" {
			return os.Getenv(env), nil
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading the PIN file: %w", err)
		}
		first, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimRight(first, "\r"), nil
	}
	if pin, err = read(o.pinFile, "P11ISOLATE_VET_PIN"); err != nil {
		return "", "", err
	}
	soPin, err = read(o.soPinFile, "P11ISOLATE_VET_SO_PIN")
	return pin, soPin, err
}

func randomPIN() string {
	b := make([]byte, 8)
	f, err := os.Open("/dev/urandom")
	if err == nil {
		io.ReadFull(f, b)
		f.Close()
	}
	return fmt.Sprintf("vet-%x", b)
}

func isSoftHSM(id *elfid.Identity) bool {
	return strings.Contains(strings.ToLower(filepath.Base(id.Path)), "softhsm") ||
		strings.Contains(strings.ToLower(id.SOName), "softhsm")
}

// softhsmConf writes a SoftHSM2 configuration whose token directory is
// work's own.
func softhsmConf(work string) (string, error) {
	dir := filepath.Join(work, "tokens")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("a throwaway token directory: %w", err)
	}
	conf := filepath.Join(work, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", dir)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return "", fmt.Errorf("a throwaway SoftHSM2 configuration: %w", err)
	}
	return conf, nil
}

var watchLine = regexp.MustCompile(`host\[\d+\]: p11isolate-watch (\{.*\})\s*$`)

// tally merges events that say the same (the key), counting the hosts
// that reported them.
type tally map[string]*Event

func (t tally) add(e Event, key string) {
	if f, ok := t[key]; ok {
		f.Count++
		return
	}
	e.Count = 1
	t[key] = &e
}

func (t tally) sorted() []Event {
	var out []Event
	for _, e := range t {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// behaviour gathers the watch shim's events from the log, and the
// sandbox line.
func behaviour(log string) (Behaviour, string) {
	var b Behaviour
	sandbox := ""
	files, libs := tally{}, tally{}
	envs := map[string]bool{}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "sandbox=") && sandbox == "" {
			_, sandbox, _ = strings.Cut(line, ": ")
		}
		m := watchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var e Event
		if json.Unmarshal([]byte(m[1]), &e) != nil {
			continue
		}
		b.Watched = true
		switch e.Ev {
		case "open":
			files.add(e, e.Path+"\x00"+e.Flags+"\x00"+e.By)
		case "connect":
			b.Network = append(b.Network, e)
		case "fork", "exec", "spawn":
			b.Processes = append(b.Processes, e)
		case "thread":
			b.Threads++
		case "getenv":
			if !envs[e.Name] {
				envs[e.Name] = true
				b.Env = append(b.Env, e.Name)
			}
		case "signal":
			b.Signals = append(b.Signals, e)
		case "dlopen":
			libs.add(e, e.Path+"\x00"+e.By)
		case "truncated":
			b.Truncated = true
		case "watching":
		}
	}
	b.Files, b.Libraries = files.sorted(), libs.sorted()
	sort.Strings(b.Env)
	return b, sandbox
}

// PolicyResult is the exit status's reason.
type PolicyResult struct {
	FailOn []string `json:"fail_on"`
	Failed []string `json:"failed"` // the categories with findings
}

// policies are the categories --fail-on takes, and whether a report has
// findings in each.
var policies = map[string]func(*Report) bool{
	"crash":       func(r *Report) bool { return r.Facts.Robustness.Outcomes["crash"] > 0 },
	"hang":        func(r *Report) bool { return r.Facts.Robustness.Outcomes["hang"] > 0 },
	"lie":         func(r *Report) bool { return r.Facts.Robustness.Outcomes["lie"] > 0 },
	"undefined":   func(r *Report) bool { return r.Facts.Robustness.Outcomes["undefined"] > 0 },
	"conformance": func(r *Report) bool { return countVerdict(r, "fail") > 0 },
	"hardening":   func(r *Report) bool { return len(hardeningFindings(r)) > 0 },
	"exports":     func(r *Report) bool { return len(r.Identity.OtherExports) > 0 },
	"network":     func(r *Report) bool { return len(r.Behaviour.Network) > 0 },
	"process":     func(r *Report) bool { return len(r.Behaviour.Processes) > 0 },
	"thread":      func(r *Report) bool { return r.Behaviour.Threads > 0 },
	"signal":      func(r *Report) bool { return len(r.Behaviour.Signals) > 0 },
	"leak":        func(r *Report) bool { return leaked(r) != "" },
}

func policyNames() []string {
	var n []string
	for k := range policies {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func parsePolicy(s string) ([]string, error) {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if _, ok := policies[p]; !ok {
			return nil, fmt.Errorf("--fail-on: unknown category %q (known: %s)", p, strings.Join(policyNames(), ","))
		}
		out = append(out, p)
	}
	return out, nil
}

func evaluate(r *Report, failOn []string) PolicyResult {
	res := PolicyResult{FailOn: failOn, Failed: []string{}}
	for _, p := range failOn {
		if policies[p](r) {
			res.Failed = append(res.Failed, p)
		}
	}
	return res
}

func countVerdict(r *Report, v string) int {
	n := 0
	for _, c := range r.Facts.Conformance {
		if c.Verdict == v {
			n++
		}
	}
	return n
}

// hardeningFindings are the identity findings about how the module was
// built (not what it exports).
func hardeningFindings(r *Report) []string {
	var out []string
	for _, f := range r.Weakness {
		if !strings.HasPrefix(f, "exports ") {
			out = append(out, f)
		}
	}
	return out
}

// leaked describes growth over the leak check, or "" for none: any fd,
// or more than 1 MiB of resident memory (allocators grow in steps).
func leaked(r *Report) string {
	l := r.Facts.Leaks
	var parts []string
	if len(l.FDs) == 2 && l.FDs[1] > l.FDs[0] {
		parts = append(parts, fmt.Sprintf("%d file descriptors", l.FDs[1]-l.FDs[0]))
	}
	if len(l.RSSKiB) == 2 && l.RSSKiB[1]-l.RSSKiB[0] > 1024 {
		parts = append(parts, fmt.Sprintf("%d KiB of resident memory", l.RSSKiB[1]-l.RSSKiB[0]))
	}
	if len(l.Threads) == 2 && l.Threads[1] > l.Threads[0] {
		parts = append(parts, fmt.Sprintf("%d threads", l.Threads[1]-l.Threads[0]))
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("grew by %s over %d calls", strings.Join(parts, ", "), l.Calls)
}

func writeReports(r *Report, o *vetOptions, stdout io.Writer) error {
	write := func(path string, body []byte) error {
		if path == "-" {
			_, err := stdout.Write(body)
			return err
		}
		if err := os.WriteFile(path, body, 0o644); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
		return nil
	}
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		if err := write(o.jsonOut, append(b, '\n')); err != nil {
			return err
		}
	}
	if o.mdOut != "" {
		if o.mdOut == "-" && o.jsonOut == "-" {
			return errors.New("--json - and --markdown - both ask for stdout: name a file for one")
		}
		return write(o.mdOut, markdown(r))
	}
	return nil
}
