package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/p11isolate/p11isolate/internal/ckname"
)

// Flag names by context: the same bit means different things in a token's,
// a slot's and a mechanism's flags, so these are kept per context.
var (
	slotFlags  = []flagName{{0x1, "TOKEN_PRESENT"}, {0x2, "REMOVABLE_DEVICE"}, {0x4, "HW_SLOT"}}
	tokenFlags = []flagName{{0x1, "RNG"}, {0x2, "WRITE_PROTECTED"}, {0x4, "LOGIN_REQUIRED"},
		{0x8, "USER_PIN_INITIALIZED"}, {0x20, "RESTORE_KEY_NOT_NEEDED"}, {0x40, "CLOCK_ON_TOKEN"},
		{0x100, "PROTECTED_AUTHENTICATION_PATH"}, {0x200, "DUAL_CRYPTO_OPERATIONS"}, {0x400, "TOKEN_INITIALIZED"},
		{0x800, "SECONDARY_AUTHENTICATION"}, {0x10000, "USER_PIN_COUNT_LOW"}, {0x20000, "USER_PIN_FINAL_TRY"},
		{0x40000, "USER_PIN_LOCKED"}, {0x80000, "USER_PIN_TO_BE_CHANGED"}, {0x100000, "SO_PIN_COUNT_LOW"},
		{0x200000, "SO_PIN_FINAL_TRY"}, {0x400000, "SO_PIN_LOCKED"}, {0x800000, "SO_PIN_TO_BE_CHANGED"},
		{0x1000000, "ERROR_STATE"}}
	mechFlags = []flagName{{0x1, "HW"}, {0x100, "ENCRYPT"}, {0x200, "DECRYPT"}, {0x400, "DIGEST"}, {0x800, "SIGN"},
		{0x1000, "SIGN_RECOVER"}, {0x2000, "VERIFY"}, {0x4000, "VERIFY_RECOVER"}, {0x8000, "GENERATE"},
		{0x10000, "GENERATE_KEY_PAIR"}, {0x20000, "WRAP"}, {0x40000, "UNWRAP"}, {0x80000, "DERIVE"},
		{0x100000, "EC_F_P"}, {0x200000, "EC_F_2M"}, {0x400000, "EC_ECPARAMETERS"}, {0x800000, "EC_NAMEDCURVE"},
		{0x1000000, "EC_UNCOMPRESS"}, {0x2000000, "EC_COMPRESS"}, {0x80000000, "EXTENSION"}}
)

type flagName struct {
	bit  uint64
	name string
}

func flags(v uint64, names []flagName) string {
	var out []string
	for _, f := range names {
		if v&f.bit != 0 {
			out = append(out, f.name)
			v &^= f.bit
		}
	}
	if v != 0 {
		out = append(out, fmt.Sprintf("0x%x", v))
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, " ")
}

// cell makes s safe in a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

func markdown(r *Report) []byte {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	f := &r.Facts
	id := r.Identity

	p("# Vetting report: %s\n\n", id.Path)
	p("%s, %s. The module ran only in p11isolate's sandboxed host.\n\n", r.Tool, r.Date)
	if len(r.Policy.Failed) > 0 {
		p("**Verdict: FAIL** (--fail-on %s): %s.\n\n", strings.Join(r.Policy.FailOn, ","), strings.Join(r.Policy.Failed, ", "))
	} else {
		p("**Verdict: pass** (--fail-on %s).\n\n", strings.Join(r.Policy.FailOn, ","))
	}
	for _, n := range r.Notes {
		p("- %s\n", n)
	}
	if len(r.Notes) > 0 {
		p("\n")
	}

	p("## Identity\n\n")
	p("| | |\n|---|---|\n")
	p("| path | `%s`%s |\n", id.Path, map[bool]string{true: " → `" + id.Resolved + "`", false: ""}[id.Resolved != ""])
	p("| SHA-256 | `%s` |\n| size | %d bytes |\n| ELF | %s %s %s |\n", id.SHA256, id.Size, id.Class, id.Machine, id.Type)
	h := id.Hardening
	p("| RELRO | %s |\n| NX stack | %s |\n| stack protector | %s |\n| fortify | %s |\n| text relocations | %s |\n",
		h.RELRO, yes(h.NXStack), yes(h.StackProtector), yes(h.Fortify), map[bool]string{true: "**yes**", false: "no"}[h.TextRel])
	p("| RPATH / RUNPATH | %s / %s |\n", orNone(id.RPath), orNone(id.RunPath))
	p("| needed | %s |\n", cell(strings.Join(id.Needed, ", ")))
	p("| PKCS#11 exports | %d (C_GetInterface: %s) |\n", len(id.PKCS11Exports), map[bool]string{true: "yes", false: "no"}[id.Interfaces30])
	p("| other exports | %d%s |\n", len(id.OtherExports), firstFew(id.OtherExports, 6))
	p("| C_GetInfo | Cryptoki %d.%d, %s, %s %d.%d |\n", f.Info.Cryptoki[0], f.Info.Cryptoki[1], cell(f.Info.Manufacturer),
		cell(f.Info.Library), f.Info.LibraryVersion[0], f.Info.LibraryVersion[1])
	var ifs []string
	for _, in := range f.Interfaces {
		s := in.Name + " " + in.Version
		if in.Flags&1 != 0 {
			s += " (fork-safe)"
		}
		ifs = append(ifs, s)
	}
	if len(ifs) == 0 {
		ifs = []string{"none"}
	}
	p("| interfaces (through the proxy) | %s |\n", cell(strings.Join(ifs, ", ")))
	if len(r.Weakness) > 0 {
		p("\nFindings:\n\n")
		for _, w := range r.Weakness {
			p("- %s\n", w)
		}
	}
	p("\n")

	p("## Inventory\n\n")
	for _, s := range f.Slots {
		p("### Slot %d: %s\n\n", s.ID, s.Description)
		p("Flags: %s.", flags(s.Flags, slotFlags))
		if s.Token != nil {
			t := s.Token
			p(" Token `%s` (%s %s, serial %s): %s; PIN length %d–%d.", t.Label, t.Manufacturer, t.Model, t.Serial,
				flags(t.Flags, tokenFlags), t.PinMin, t.PinMax)
		}
		p("\n\n")
		if len(s.Mechanisms) > 0 {
			p("| mechanism | key sizes | flags |\n|---|---|---|\n")
			for _, m := range s.Mechanisms {
				p("| %s | %d–%d | %s |\n", ckname.Mechanism(m.Type), m.Min, m.Max, flags(m.Flags, mechFlags))
			}
			p("\n")
		}
	}
	if f.Slot != nil {
		p("Vetted slot: %d.\n\n", *f.Slot)
	}

	p("## Conformance\n\n")
	p("%d pass, %d fail, %d skipped.\n\n", countVerdict(r, "pass"), countVerdict(r, "fail"), countVerdict(r, "skip"))
	p("| rule | verdict | call | got | want |\n|---|---|---|---|---|\n")
	for _, c := range f.Conformance {
		v := c.Verdict
		if v == "fail" {
			v = "**FAIL**"
		}
		got := c.Got
		if c.Verdict == "skip" {
			got = c.Why
		}
		p("| %s | %s | `%s` | %s | %s |\n", cell(c.Rule), v, cell(c.Call), cell(got), cell(c.Want))
	}
	p("\n")

	p("## Robustness\n\n")
	o := f.Robustness.Outcomes
	p("%d calls with malformed but well-shaped arguments: %d answered, %d crashed, %d hung, %d lied, %d returned undefined codes.\n\n",
		f.Robustness.Calls, o["ok"], o["crash"], o["hang"], o["lie"], o["undefined"])
	if len(f.Robustness.Findings) > 0 {
		p("| outcome | reproducer | what the proxy saw |\n|---|---|---|\n")
		for _, x := range f.Robustness.Findings {
			p("| %s | `%s` | %s |\n", x.Outcome, cell(x.Call), cell(strings.TrimPrefix(x.Log, "p11isolate: ")))
		}
		p("\n")
	}

	p("## Behaviour while it ran\n\n")
	bh := &r.Behaviour
	if !bh.Watched {
		p("The watch shim reported nothing (it did not load in the host): no behaviour facts.\n\n")
	} else {
		p("Calls made by the module and the libraries it loaded (not by p11isolate's host), from libp11isolate-watch.so preloaded into the host; the sandbox: %s.\n\n", cell(r.Sandbox))
		p("- Files opened: %d%s\n", len(bh.Files), eventList(bh.Files, func(e Event) string {
			return fmt.Sprintf("`%s` (%s, %s%s, by %s)", e.Path, e.Flags, okErr(e), times(e.Count), base(e.By))
		}))
		p("- Network connections tried: %d%s\n", len(bh.Network), eventList(bh.Network, func(e Event) string {
			return fmt.Sprintf("%s (%s, by %s)", e.Addr, okErr(e), base(e.By))
		}))
		p("- Processes started: %d%s\n", len(bh.Processes), eventList(bh.Processes, func(e Event) string {
			if e.Path != "" {
				return fmt.Sprintf("%s `%s` (by %s)", e.Ev, e.Path, base(e.By))
			}
			return fmt.Sprintf("%s (by %s)", e.Ev, base(e.By))
		}))
		p("- Threads started: %d\n", bh.Threads)
		p("- Environment variables asked for: %d%s\n", len(bh.Env), firstFew(bh.Env, 40))
		p("- Signal handlers installed: %d%s\n", len(bh.Signals), eventList(bh.Signals, func(e Event) string {
			return fmt.Sprintf("%s → %s (by %s)", e.Sig, e.Handler, base(e.By))
		}))
		if len(bh.Libraries) > 0 {
			p("- Libraries it loaded: %s\n", eventList(bh.Libraries, func(e Event) string {
				return fmt.Sprintf("`%s` (%s, by %s%s)", e.Path, okErr(e), base(e.By), times(e.Count))
			})[2:])
		}
		if bh.Truncated {
			p("- (more events than the shim reports: the first 1000 are shown)\n")
		}
	}
	l := f.Leaks
	if len(l.RSSKiB) == 2 {
		p("- Over %d calls (%s): resident memory %d → %d KiB, file descriptors %d → %d, threads %d → %d",
			l.Calls, l.Ops, l.RSSKiB[0], l.RSSKiB[1], safe(l.FDs, 0), safe(l.FDs, 1), safe(l.Threads, 0), safe(l.Threads, 1))
		if s := leaked(r); s != "" {
			p(": **%s**", s)
		}
		p(".\n")
	}
	p("\n")

	p("## Cost through the proxy\n\n")
	if len(f.Cost) > 0 {
		p("| operation | calls | median µs | mean µs |\n|---|---|---|---|\n")
		for _, c := range f.Cost {
			p("| %s | %d | %.1f | %.1f |\n", c.Op, c.N, c.P50US, c.MeanUS)
		}
		p("\n")
	}
	if len(f.Errors) > 0 {
		p("## Not checked\n\n")
		for _, e := range f.Errors {
			p("- %s\n", e)
		}
		p("\n")
	}
	return b.Bytes()
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return "**" + cell(strings.Join(l, ":")) + "**"
}

func firstFew(l []string, n int) string {
	if len(l) == 0 {
		return ""
	}
	more := ""
	if len(l) > n {
		more = fmt.Sprintf(", … %d more", len(l)-n)
		l = l[:n]
	}
	return ": " + cell(strings.Join(l, ", ")) + more
}

func eventList(es []Event, f func(Event) string) string {
	if len(es) == 0 {
		return ""
	}
	var parts []string
	for i, e := range es {
		if i == 20 {
			parts = append(parts, fmt.Sprintf("… %d more", len(es)-20))
			break
		}
		parts = append(parts, f(e))
	}
	return ": " + cell(strings.Join(parts, "; "))
}

func okErr(e Event) string {
	switch {
	case e.OK == nil:
		return "?"
	case *e.OK:
		return "succeeded"
	case e.Errno != "":
		return "failed: " + e.Errno
	}
	return "failed"
}

// times counts the hosts that did the same: the watch shim reports a
// repeated open, dlopen, connect or handler once per process.
func times(n int) string {
	if n > 1 {
		return fmt.Sprintf(", in %d hosts", n)
	}
	return ""
}

func base(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	if p == "" {
		return "?"
	}
	return p
}

func safe(l []int, i int) int {
	if i < len(l) {
		return l[i]
	}
	return -1
}
