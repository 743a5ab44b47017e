// Package plan turns a C_Initialize's inputs (the environment and the
// pReserved string) into everything the C side of libp11isolate.so needs to
// start hosts: the resolved settings, the environment the host gets, and the
// sandbox request. The library computes it in-process at C_Initialize; a
// process forked after the library was loaded cannot run Go, so its
// C_Initialize runs the host image in plan mode (p11isolate-host --plan),
// which computes the same plan with this same code and writes it back. Both
// hand it to cshim/supervise.c as msgpack (Encode); cshim/kit.c builds a kit
// from it.
package plan

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/p11isolate/p11isolate/internal/config"
)

// Sandbox profiles, as enum P11I_SANDBOX_* of cshim/shim.h.
const (
	ProfileOff = iota
	ProfileDefault
	ProfileStrict
)

// InitArg asks the host image to be the init of its pid namespace
// (P11H_INIT_ARG of host/host.h); Arg asks it for a plan (P11H_PLAN_ARG).
const (
	InitArg  = "--init"
	Arg      = "--plan"
	HostName = "p11isolate-host"
)

// Plan is what cshim/kit.c builds a kit from. Each field's c tag says where
// its value goes in C's struct p11i_kit, as what kind, and the largest
// value C takes: cmd/p11gen writes cshim/plan_keys_gen.h from the tags, so
// the two sides cannot drift. Durations are nanoseconds.
type Plan struct {
	// Error, in plan mode only: the settings could not be resolved (one
	// line for the log); nothing else is set.
	Error string `msgpack:"error" c:"error,K_STR,0"`

	Module        string  `msgpack:"module" c:"module,K_STR,0"`
	ModuleSHA256  string  `msgpack:"module_sha256" c:"module_sha256,K_STR,0"`
	Host          string  `msgpack:"host" c:"host,K_OPT,0"`        // the host binary; "": the embedded image
	Log           string  `msgpack:"log" c:"log_path,K_OPT,0"`     // "": stderr
	Trace         string  `msgpack:"trace" c:"trace_path,K_OPT,0"` // "": off
	Timeout       uint64  `msgpack:"timeout" c:"timeout_ns,K_I64,INT64_MAX"`
	KeygenTimeout uint64  `msgpack:"keygen_timeout" c:"keygen_ns,K_I64,INT64_MAX"`
	MemoryLimit   uint64  `msgpack:"memory_limit" c:"memory_limit,K_U64,UINT64_MAX"`
	Vendor        *string `msgpack:"vendor_reserved" c:"vendor,K_NSTR,0"` // the vendor's pReserved; nil: NULL

	Env      []string `msgpack:"env" c:"envp,K_LIST,0"` // what the host gets
	EnvTotal uint64   `msgpack:"env_total" c:"env_total,K_INT,INT32_MAX"`
	EnvHint  string   `msgpack:"env_hint" c:"env_hint,K_STR,0"`

	Profile       uint64   `msgpack:"profile" c:"sb.profile,K_INT,P11I_SANDBOX_STRICT"`
	SandboxSource string   `msgpack:"sandbox_source" c:"sandbox_source,K_STR,0"`
	UserNS        bool     `msgpack:"userns" c:"sb.userns,K_BOOL,1"`
	DropCaps      bool     `msgpack:"drop_caps" c:"sb.drop_caps,K_BOOL,1"`
	UID           uint64   `msgpack:"uid" c:"sb.uid,K_UINT,UINT32_MAX"`
	GID           uint64   `msgpack:"gid" c:"sb.gid,K_UINT,UINT32_MAX"`
	ArgvInit      []string `msgpack:"argv_init" c:"sb.argv_init,K_LIST,0"`
	ReadOnly      []string `msgpack:"ro_paths" c:"sb.ro_paths,K_LIST,0"`
	ReadWrite     []string `msgpack:"rw_paths" c:"sb.rw_paths,K_LIST,0"`
	Devices       []string `msgpack:"dev_files" c:"sb.dev_files,K_LIST,0"`
	Private       []string `msgpack:"private_dirs" c:"sb.private_dirs,K_LIST,0"`
	Keep          []string `msgpack:"keep_paths" c:"sb.keep_paths,K_LIST,0"`
}

// Make resolves the settings from environ and reserved (nil: NULL) and
// plans the host. Settings that cannot work come back as Error, one line
// for the log saying what to fix, with Log set when it is known (the line
// goes to the log the settings name).
func Make(environ []string, reserved *string) *Plan {
	cfg, err := config.Resolve(environ, reserved)
	if err != nil {
		return &Plan{Error: err.Error()}
	}
	p := &Plan{
		Module:        cfg.Module,
		ModuleSHA256:  cfg.ModuleSHA256,
		Host:          cfg.Host,
		Timeout:       uint64(max(cfg.Timeout, 0)),
		KeygenTimeout: uint64(max(cfg.KeygenTimeout, 0)),
		MemoryLimit:   cfg.MemoryLimit,
		Trace:         cfg.Trace,
		Vendor:        cfg.VendorReserved,
		SandboxSource: cfg.Source["sandbox"],
	}
	if cfg.Log != "stderr" {
		p.Log = cfg.Log
	}
	fail := func(err error) *Plan { return &Plan{Error: err.Error(), Log: p.Log} }
	if cfg.Module == "" {
		return fail(errors.New("no vendor module is configured: set P11ISOLATE_MODULE=/path/to/vendor.so (or module=... in C_Initialize's pReserved or the P11ISOLATE_CONFIG file)"))
	}
	if st, err := os.Stat(cfg.Module); err != nil || st.IsDir() {
		return fail(fmt.Errorf("the vendor module %s (from %s) does not exist or is not a file: set module to the path of a PKCS#11 .so", cfg.Module, cfg.Source["module"]))
	}
	given, names, withheld := config.FilterEnv(environ, cfg.Env)
	p.Env = given
	p.EnvTotal = uint64(len(given) + len(withheld))
	p.EnvHint = envHint(names, withheld)
	if err := p.sandbox(cfg); err != nil {
		return fail(err)
	}
	return p
}

// Encode is the plan as cshim/kit.c reads it.
func (p *Plan) Encode() ([]byte, error) { return msgpack.Marshal(p) }

// envHint completes the log line of a vendor C_Initialize that failed: a
// module configured through the environment may be missing its variables.
// It names variables, never values.
func envHint(names, withheld []string) string {
	if len(withheld) == 0 {
		return ""
	}
	more := ""
	if len(withheld) > 10 {
		more = fmt.Sprintf(" and %d more", len(withheld)-10)
		withheld = withheld[:10]
	}
	given := "(none)"
	if len(names) > 0 {
		given = strings.Join(names, ", ")
	}
	return fmt.Sprintf("; the host got only the environment variables %s (not %s%s): if the module is configured through the environment, pass its variables with env=NAME,PREFIX_* (P11ISOLATE_ENV, C_Initialize pReserved or the P11ISOLATE_CONFIG file), or env=* for all",
		given, strings.Join(withheld, ", "), more)
}

// Directories every strict host may read and execute from: the dynamic
// loader, libraries and configuration.
var strictReadOnly = []string{"/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc"}

// Device files every strict host may open for writing, too.
var strictDevices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}

// Directories a strict host gets a fresh tmpfs on, unless sandbox_paths
// lists them (or a directory above them).
var strictPrivate = []string{"/tmp", "/dev/shm"}

// sandbox plans the host's sandbox (README.md, "Isolation"); which layers
// a profile wants follows from these fields (cshim/kit.c, wanted_layers).
func (p *Plan) sandbox(cfg *config.Config) error {
	switch cfg.Sandbox {
	case config.SandboxOff:
		p.Profile = ProfileOff
		return nil
	case config.SandboxStrict:
		p.Profile = ProfileStrict
	default:
		p.Profile = ProfileDefault
	}
	uid, gid := os.Geteuid(), os.Getegid()
	p.UID, p.GID = uint64(uid), uint64(gid)
	// Root makes the namespaces itself; a user namespace would take away
	// the capabilities some vendor drivers check.
	p.DropCaps = uid == 0
	p.UserNS = uid != 0
	p.ArgvInit = []string{HostName, InitArg}
	if cfg.Sandbox != config.SandboxStrict {
		return nil
	}

	module, err := filepath.EvalSymlinks(cfg.Module)
	if err != nil {
		return fmt.Errorf("sandbox=strict: the vendor module %s: %v", cfg.Module, err)
	}
	moduleDir := filepath.Dir(module)
	var rw []string
	for _, sp := range cfg.SandboxPaths {
		r, err := filepath.EvalSymlinks(sp)
		if err != nil {
			return fmt.Errorf("sandbox_paths (from %s): %v: list only paths that exist", cfg.Source["sandbox_paths"], err)
		}
		rw = append(rw, r)
	}
	var private, keep []string
	for _, d := range strictPrivate {
		listed := false
		for _, r := range rw {
			listed = listed || under(d, r)
		}
		if listed {
			continue
		}
		private = append(private, d)
		// What lies beneath the new tmpfs but must stay visible.
		for _, k := range rw {
			if under(k, d) && k != d {
				keep = append(keep, k)
			}
		}
		if moduleDir == d {
			keep = append(keep, module)
		} else if under(moduleDir, d) {
			keep = append(keep, moduleDir)
		}
	}
	// A path beneath another kept one comes along with it.
	for _, k := range keep {
		nested := false
		for _, o := range keep {
			nested = nested || (o != k && under(k, o))
		}
		if !nested {
			p.Keep = append(p.Keep, k)
		}
	}
	p.ReadOnly = append(append([]string(nil), strictReadOnly...), moduleDir)
	p.ReadWrite = rw
	p.Devices = strictDevices
	p.Private = private
	return nil
}

// under reports whether path is dir or lies beneath it.
func under(path, dir string) bool {
	return path == dir || dir == "/" || strings.HasPrefix(path, dir+"/")
}
