package main

/*
#include <stdlib.h>
#include "../cshim/shim.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/p11isolate/p11isolate/internal/config"
	"github.com/p11isolate/p11isolate/internal/wire"
)

// newKit turns resolved settings into what the C side starts hosts with
// (struct p11i_kit, cshim/shim.h): the verified host image, its argv and
// filtered environment, the sandbox plan, the deadlines and the
// application's C_Initialize arguments, all in C memory, which the C side
// owns from p11i_sup_initialize on. A forked child keeps a copy of it.
func newKit(cfg *config.Config, env []string, init initArgs) (*C.struct_p11i_kit, error) {
	exe, err := hostExecutable(cfg.Host)
	if err != nil {
		return nil, err
	}
	plan, err := planSandbox(cfg)
	if err != nil {
		unix.Close(exe)
		return nil, err
	}
	given, names, withheld := config.FilterEnv(env, cfg.Env)
	k := (*C.struct_p11i_kit)(C.calloc(1, C.sizeof_struct_p11i_kit))
	k.exe_fd = C.int(exe)
	k.argv = cArray([]string{hostName})
	k.envp = cArray(given)
	k.sb = plan.sb
	k.sb.status_fd = -1
	k.wanted = C.uint(plan.wanted)
	k.sandbox_source = C.CString(cfg.Source["sandbox"])
	k.env_passed = C.int(len(given))
	k.env_total = C.int(len(given) + len(withheld))
	k.env_hint = C.CString(envHint(names, withheld))
	k.timeout_ns = C.int64_t(cfg.Timeout)
	k.keygen_ns = C.int64_t(cfg.KeygenTimeout)
	k.module = C.CString(cfg.Module)
	k.module_sha256 = C.CString(cfg.ModuleSHA256)
	k.memory_limit = C.uint64_t(cfg.MemoryLimit)
	if cfg.Log == "" || cfg.Log == "stderr" {
		k.log_stderr = 1
	}
	k.build_id = C.CString(buildID)
	k.protocol = wire.ProtocolVersion
	k.init_args = replayArgs(init)
	return k, nil
}

// replayArgs rebuilds the application's CK_C_INITIALIZE_ARGS for the
// hosts, in C memory (nil: the application passed NULL).
func replayArgs(init initArgs) *C.CK_C_INITIALIZE_ARGS {
	if init.null {
		return nil
	}
	args := (*C.CK_C_INITIALIZE_ARGS)(C.calloc(1, C.sizeof_CK_C_INITIALIZE_ARGS))
	args.flags = C.CK_FLAGS(init.flags)
	// Only which callbacks were set crosses; any non-NULL value will do.
	marker := unsafe.Pointer(C.p11i_call)
	if init.mutexes&1 != 0 {
		args.CreateMutex = C.CK_CREATEMUTEX(marker)
	}
	if init.mutexes&2 != 0 {
		args.DestroyMutex = C.CK_DESTROYMUTEX(marker)
	}
	if init.mutexes&4 != 0 {
		args.LockMutex = C.CK_LOCKMUTEX(marker)
	}
	if init.mutexes&8 != 0 {
		args.UnlockMutex = C.CK_UNLOCKMUTEX(marker)
	}
	if init.reserved != nil {
		args.pReserved = unsafe.Pointer(C.CString(*init.reserved))
	}
	return args
}

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
	return fmt.Sprintf("; the host got only the environment variables %s (not %s%s): if the module is configured through the environment, pass its variables with env=NAME,PREFIX_* (P11ISOLATE_ENV, C_Initialize pReserved or the P11ISOLATE_CONFIG file), or env=* for all",
		listOrNone(names), strings.Join(withheld, ", "), more)
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}
