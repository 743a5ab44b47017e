// Command p11isolate is the operator's command for libp11isolate.so:
//
//	p11isolate version   the build (its ID is the one the library and host share)
//	p11isolate help      the settings, their defaults and where they are read from
//	p11isolate check     the settings in force and where each came from, the
//	                     environment names the host gets, then the configured
//	                     module loaded through the library exactly as an
//	                     application would load it: its identity, its slots,
//	                     and the sandbox the host obtained and missed
//	p11isolate vet       a report on a vendor module run only in the host
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/p11isolate/p11isolate/internal/config"
	"github.com/p11isolate/p11isolate/internal/plan"
	"github.com/p11isolate/p11isolate/internal/wire"
)

// version and buildID are set at link time (-X) by the Makefile; buildID
// is the library's and the host's.
var (
	version = "dev"
	buildID = "dev"
)

func main() {
	args := os.Args[1:]
	if len(args) == 0 {
		usage(os.Stderr)
		os.Exit(2)
	}
	switch args[0] {
	case "version", "--version":
		fmt.Printf("p11isolate %s (build %s, wire protocol %d, %s)\n", version, buildID, wire.ProtocolVersion, runtime.Version())
	case "help", "--help", "-h":
		usage(os.Stdout)
	case "check":
		os.Exit(check(args[1:], os.Stdout))
	case "vet":
		os.Exit(vet(args[1:], os.Stdout))
	default:
		fmt.Fprintf(os.Stderr, "p11isolate: unknown command %q: run 'p11isolate help'\n", args[0])
		os.Exit(2)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: p11isolate version | help | check [--library PATH] | vet [options] MODULE

p11isolate runs a vendor's PKCS#11 module in a sandboxed host process behind
libp11isolate.so, a drop-in PKCS#11 module: point the application at
libp11isolate.so and p11isolate at the vendor's module.

  version   print the version and the build ID the library and host share
  help      print this
  check     print the settings in force and where each came from, the
            environment variables the host gets (names only), then load the
            configured module through libp11isolate.so as an application
            would, and print the module's identity, its slots and tokens, and
            the sandbox layers the host obtained and missed. --library names
            the libp11isolate.so to load (default: the one installed beside
            this command). Exit status 0 when the module loaded and answered.
  vet       vet a vendor module before trusting it: run it only inside the
            host and report its identity (hash, ELF hardening, exports),
            inventory (slots, tokens, mechanisms), conformance to the
            spec's call rules, robustness under malformed arguments
            (crashes, hangs, lies, undefined codes, each with a
            reproducer), behaviour (files, network, processes, threads,
            environment, signal handlers, leaks over many calls) and cost.
            Markdown (--markdown FILE, default stdout) and JSON (--json
            FILE); exit status 1 when a --fail-on category has findings
            (default crash,hang,lie,undefined). 'p11isolate vet -h' lists
            the options; PINs come from files or P11ISOLATE_VET_PIN and
            P11ISOLATE_VET_SO_PIN, never the command line.

Settings are read, highest first, from the environment (P11ISOLATE_<NAME>),
from C_Initialize's pReserved string ("module=/path/vendor.so name=value ..."),
from the file named by P11ISOLATE_CONFIG (lines "name = value", # comments),
and from the defaults:

`)
	for _, s := range config.Settings {
		def := s.Default
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(w, "  %-16s %-8s %s\n", s.Name, def, s.Doc)
	}
	fmt.Fprint(w, `
A p11-kit module file (/etc/pkcs11/modules/p11isolate.module) that loads the
vendor module through p11isolate:

  module: /usr/local/lib/p11isolate/libp11isolate.so
  x-init-reserved: module=/usr/lib/vendor/libvendor-pkcs11.so
`)
}

// check prints the resolved settings and the host's environment names,
// then runs p11isolate-probe on the library with the log sent to a
// temporary file, whose sandbox line it reports.
func check(args []string, out io.Writer) int {
	lib := ""
	switch {
	case len(args) == 2 && args[0] == "--library":
		lib = args[1]
	case len(args) == 0:
		var err error
		if lib, err = installedLibrary(); err != nil {
			fmt.Fprintf(os.Stderr, "p11isolate check: %v\n", err)
			return 2
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: p11isolate check [--library PATH]")
		return 2
	}
	environ := os.Environ()
	cfg, err := config.Resolve(environ, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "p11isolate check: %v\n", err)
		return 2
	}
	fmt.Fprintf(out, "library  %s\n\nsettings (value, and where it came from):\n", lib)
	for _, s := range config.Settings {
		v := settingValue(cfg, s.Name)
		fmt.Fprintf(out, "  %-16s %-40s %s\n", s.Name, v, cfg.Source[s.Name])
	}
	p := plan.Make(environ, nil)
	if p.Error != "" {
		fmt.Fprintf(out, "\nthe library would refuse these settings: %s\n", p.Error)
		return 1
	}
	names := make([]string, 0, len(p.Env))
	for _, kv := range p.Env {
		name, _, _ := strings.Cut(kv, "=")
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintf(out, "\nenvironment: the host gets %d of %d variables: %s\n", len(names), p.EnvTotal, strings.Join(names, " "))
	if hint := strings.TrimPrefix(p.EnvHint, "; "); hint != "" {
		fmt.Fprintf(out, "  %s\n", hint)
	}

	probe, err := probePath(lib)
	if err != nil {
		fmt.Fprintf(os.Stderr, "p11isolate check: %v\n", err)
		return 2
	}
	logf, err := os.CreateTemp("", "p11isolate-check-*.log")
	if err != nil {
		fmt.Fprintf(os.Stderr, "p11isolate check: a temporary log file: %v\n", err)
		return 2
	}
	defer os.Remove(logf.Name())
	logf.Close()
	cmd := exec.Command(probe, lib)
	// The settings as resolved above, but the log: this run's lines are
	// read back from a file of its own.
	cmd.Env = append(os.Environ(), "P11ISOLATE_LOG="+logf.Name())
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	runErr := cmd.Run()
	fmt.Fprintf(out, "\nloaded through the library (log lines of this run):\n")
	logged, _ := os.ReadFile(logf.Name())
	for _, line := range strings.Split(strings.TrimSpace(string(logged)), "\n") {
		if line != "" {
			fmt.Fprintf(out, "  %s\n", line)
		}
	}
	fmt.Fprintf(out, "\nthe module:\n")
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if line != "" {
			fmt.Fprintf(out, "  %s\n", line)
		}
	}
	var exit *exec.ExitError
	switch {
	case runErr == nil:
		return 0
	case errors.As(runErr, &exit):
		fmt.Fprintf(out, "\nthe module did not load or answer (see above)\n")
		return 1
	default:
		fmt.Fprintf(os.Stderr, "p11isolate check: running %s: %v\n", probe, runErr)
		return 2
	}
}

// settingValue is a setting as it was written, or what its absence means.
func settingValue(c *config.Config, name string) string {
	v := c.Values[name]
	switch {
	case v != "":
		return v
	case name == "vendor_reserved":
		return "(none: NULL)"
	case name == "host":
		return "(the embedded image)"
	}
	return ""
}

// installedLibrary is the library installed with this command:
// PREFIX/lib/p11isolate/libp11isolate.so for PREFIX/bin/p11isolate, or the
// build tree's build/libp11isolate.so beside build/p11isolate.
func installedLibrary() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot find this command's path: %v; name the library with --library", err)
	}
	dir := filepath.Dir(exe)
	for _, p := range []string{
		filepath.Join(dir, "..", "lib", "p11isolate", "libp11isolate.so"),
		filepath.Join(dir, "libp11isolate.so"),
	} {
		if _, err := os.Stat(p); err == nil {
			return filepath.Clean(p), nil
		}
	}
	return "", fmt.Errorf("no libp11isolate.so beside %s (looked in ../lib/p11isolate and .): name it with --library", exe)
}

// probePath is p11isolate-probe, installed beside the library.
func probePath(lib string) (string, error) {
	p := filepath.Join(filepath.Dir(lib), "p11isolate-probe")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s is missing (make install puts it beside the library): %v", p, err)
	}
	return p, nil
}
