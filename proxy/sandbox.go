package main

/*
#include <stdlib.h>
#include "../cshim/shim.h"
*/
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"github.com/p11isolate/p11isolate/internal/config"
)

// initArg asks the host image to be the init of its pid namespace; it is
// P11H_INIT_ARG of host/host.h.
const initArg = "--init"

// Directories every strict host may read and execute from: the dynamic
// loader, libraries and configuration.
var strictReadOnly = []string{"/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc"}

// Device files every strict host may open for writing, too.
var strictDevices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}

// Directories a strict host gets a fresh tmpfs on, unless sandbox_paths
// lists them (or a directory above them).
var strictPrivate = []string{"/tmp", "/dev/shm"}

// sandboxPlan is a sandbox request for p11i_spawn; its lists live in C
// memory (a Go struct handed to C may hold no Go pointers), and the kit
// that takes them frees them.
type sandboxPlan struct {
	sb     C.struct_p11i_sandbox
	wanted uint32 // layers the profile asks for
}

func layerBits(layers ...int) uint32 {
	var b uint32
	for _, l := range layers {
		b |= 1 << l
	}
	return b
}

func planSandbox(cfg *config.Config) (*sandboxPlan, error) {
	p := &sandboxPlan{}
	p.sb.status_fd = -1
	switch cfg.Sandbox {
	case config.SandboxOff:
		p.sb.profile = C.P11I_SANDBOX_OFF
		return p, nil
	case config.SandboxStrict:
		p.sb.profile = C.P11I_SANDBOX_STRICT
	default:
		p.sb.profile = C.P11I_SANDBOX_DEFAULT
	}
	uid, gid := os.Geteuid(), os.Getegid()
	p.sb.uid, p.sb.gid = C.uint(uid), C.uint(gid)
	p.wanted = layerBits(C.P11I_L_PIDNS, C.P11I_L_MNTNS, C.P11I_L_INIT, C.P11I_L_PROC,
		C.P11I_L_KEYRING, C.P11I_L_SECCOMP, C.P11I_L_LANDLOCK)
	if uid == 0 {
		// Root makes the namespaces itself; a user namespace would take
		// away the capabilities some vendor drivers check.
		p.sb.drop_caps = 1
		p.wanted |= layerBits(C.P11I_L_CAPS)
	} else {
		p.sb.userns = 1
		p.wanted |= layerBits(C.P11I_L_USERNS)
	}
	p.sb.argv_init = cArray([]string{hostName, initArg})
	if cfg.Sandbox != config.SandboxStrict {
		return p, nil
	}

	p.wanted |= layerBits(C.P11I_L_NETNS, C.P11I_L_IPCNS, C.P11I_L_LANDLOCK_FS)
	module, err := filepath.EvalSymlinks(cfg.Module)
	if err != nil {
		return nil, fmt.Errorf("sandbox=strict: the vendor module %s: %v", cfg.Module, err)
	}
	moduleDir := filepath.Dir(module)
	var rw []string
	for _, sp := range cfg.SandboxPaths {
		r, err := filepath.EvalSymlinks(sp)
		if err != nil {
			return nil, fmt.Errorf("sandbox_paths (from %s): %v: list only paths that exist", cfg.Source["sandbox_paths"], err)
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
	var kept []string
	for _, k := range keep {
		nested := false
		for _, o := range keep {
			nested = nested || (o != k && under(k, o))
		}
		if !nested {
			kept = append(kept, k)
		}
	}
	if len(private) > 0 {
		p.wanted |= layerBits(C.P11I_L_PRIVATE)
	}
	p.sb.ro_paths = cArray(append(append([]string(nil), strictReadOnly...), moduleDir))
	p.sb.rw_paths = cArray(rw)
	p.sb.dev_files = cArray(strictDevices)
	p.sb.private_dirs = cArray(private)
	p.sb.keep_paths = cArray(kept)
	return p, nil
}

// under reports whether path is dir or lies beneath it.
func under(path, dir string) bool {
	return path == dir || dir == "/" || strings.HasPrefix(path, dir+"/")
}

// cArray copies list into a NULL-terminated array in C memory.
func cArray(list []string) **C.char {
	a := unsafe.Slice((**C.char)(C.calloc(C.size_t(len(list)+1), C.size_t(unsafe.Sizeof((*C.char)(nil))))), len(list)+1)
	for i, s := range list {
		a[i] = C.CString(s)
	}
	return &a[0]
}
