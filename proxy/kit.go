package main

/*
#include <stdlib.h>
#include "../cshim/shim.h"
*/
import "C"

import (
	"sync"

	"golang.org/x/sys/unix"

	"github.com/p11isolate/p11isolate/internal/config"
	"github.com/p11isolate/p11isolate/internal/wire"
)

// A process forked after the library was loaded cannot run Go: its calls
// take the C path (cshim/child.c), which starts a host of its own from the
// kit the parent leaves at each C_Initialize. The kit is C memory and stays
// valid while it is current; a child holds its own copy of it from the fork.

var kitMu sync.Mutex

// current is the kit installed last (nil: none yet).
var current *C.struct_p11i_kit

// leaveKit installs a kit for children from the settings the parent just
// started a host with. Without one (the host image cannot be opened), a
// child's C_Initialize fails with a log line.
func (p *proxy) leaveKit() {
	exe, err := hostExecutable(p.cfg.Host)
	if err != nil {
		return
	}
	plan, err := planSandbox(p.cfg)
	if err != nil {
		return
	}
	// plan's lists stay allocated: the kit points into them.
	given, _, _ := config.FilterEnv(p.env, p.cfg.Env)
	k := (*C.struct_p11i_kit)(C.calloc(1, C.sizeof_struct_p11i_kit))
	k.parent_initialized = 1
	k.exe_fd = C.int(exe)
	k.argv = &cStrings([]string{hostName})[0]
	k.envp = &cStrings(given)[0]
	k.sb = plan.sb
	k.sb.status_fd = -1
	k.timeout_ns = C.int64_t(p.cfg.Timeout)
	k.keygen_ns = C.int64_t(p.cfg.KeygenTimeout)
	k.module = C.CString(p.cfg.Module)
	k.module_sha256 = C.CString(p.cfg.ModuleSHA256)
	k.memory_limit = C.uint64_t(p.cfg.MemoryLimit)
	if p.cfg.Log != "" && p.cfg.Log != "stderr" {
		k.log_path = C.CString(p.cfg.Log)
	}
	k.build_id = C.CString(buildID)
	k.protocol = wire.ProtocolVersion
	// The replay every host of the parent gets; it stays allocated with
	// the kit.
	k.init_args = p.replayArgs().args
	kitMu.Lock()
	old := current
	current = k
	C.p11i_kit_set(k)
	kitMu.Unlock()
	// A child forked from now on gets the new kit; one forked before has
	// its own copy of the old one, fds included, so the old image can go.
	// The old kit's memory stays: it is small, and only a new
	// C_Initialize replaces it.
	if old != nil {
		unix.Close(int(old.exe_fd))
	}
}

// kitFinalized tells children forked from now on that the parent is no
// longer initialized: they get CKR_OK from their own C_Initialize.
func kitFinalized() {
	kitMu.Lock()
	if current != nil {
		current.parent_initialized = 0
	}
	kitMu.Unlock()
}
