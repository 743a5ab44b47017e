package main

/*
#include <stdlib.h>
#include "../cshim/shim.h"
extern char **environ;
*/
import "C"

import (
	"os"
	"unsafe"

	"github.com/p11isolate/p11isolate/internal/config"
)

type rv = uint64

// initArgs is what crosses of CK_C_INITIALIZE_ARGS.
type initArgs struct {
	null     bool
	flags    uint64
	mutexes  uint64 // bit i: the i-th mutex callback was non-NULL
	reserved *string
}

// initialize is C_Initialize in the process that loaded the library: it
// reads the application's arguments, resolves the settings and hands them
// to the C side (p11i_sup_initialize), which starts the first host.
func initialize(argp uintptr) rv {
	var init initArgs
	var reserved *string
	if argp == 0 {
		init.null = true
	} else {
		// The proxy reads the arguments for itself (the vendor sees a
		// replay), so it reads them with a copy that cannot fault: a
		// pointer the application got wrong is its CKR_ARGUMENTS_BAD,
		// never a crash in the proxy.
		var args C.CK_C_INITIALIZE_ARGS
		if C.p11i_copy_in(unsafe.Pointer(&args), ptr(argp), C.sizeof_CK_C_INITIALIZE_ARGS) != 0 {
			logf("C_Initialize: pInitArgs points at memory that cannot be read: returning CKR_ARGUMENTS_BAD")
			return C.CKR_ARGUMENTS_BAD
		}
		init.flags = uint64(args.flags)
		for i, set := range []bool{args.CreateMutex != nil, args.DestroyMutex != nil, args.LockMutex != nil, args.UnlockMutex != nil} {
			if set {
				init.mutexes |= 1 << i
			}
		}
		if args.pReserved != nil {
			s, ok := readReserved(args.pReserved)
			if !ok {
				logf("C_Initialize: pReserved is neither NULL nor a readable string of less than %d bytes: returning CKR_ARGUMENTS_BAD", maxReserved)
				return C.CKR_ARGUMENTS_BAD
			}
			reserved = &s
		}
		// CKF_LIBRARY_CANT_CREATE_OS_THREADS crosses like every other flag
		// and the vendor answers it. The application's threads create no
		// threads in the proxy but a host's log relay; the host is a
		// separate process. (GnuTLS and NSS always pass the flag;
		// refusing it would lock GnuTLS out and serialize NSS.)
	}

	// Settings are resolved only for a first C_Initialize; the C side
	// checks again under its lock.
	if C.p11i_sup_initialized() != 0 {
		return C.CKR_CRYPTOKI_ALREADY_INITIALIZED
	}
	env := environ()
	cfg, err := config.Resolve(env, reserved)
	if err != nil {
		logf("%v", err)
		return C.CKR_GENERAL_ERROR
	}
	if err := logOpen(cfg.Log); err != nil {
		logf("%v", err)
		return C.CKR_GENERAL_ERROR
	}
	if cfg.Module == "" {
		logf("no vendor module is configured: set P11ISOLATE_MODULE=/path/to/vendor.so (or module=... in C_Initialize's pReserved or the P11ISOLATE_CONFIG file)")
		return C.CKR_GENERAL_ERROR
	}
	if st, err := os.Stat(cfg.Module); err != nil || st.IsDir() {
		logf("the vendor module %s (from %s) does not exist or is not a file: set module to the path of a PKCS#11 .so", cfg.Module, cfg.Source["module"])
		return C.CKR_GENERAL_ERROR
	}
	init.reserved = cfg.VendorReserved
	k, err := newKit(cfg, env, init)
	if err != nil {
		logf("%v", err)
		return C.CKR_GENERAL_ERROR
	}
	return rv(C.p11i_sup_initialize(k))
}

// maxReserved bounds the pReserved string: p11isolate's settings and a
// vendor's own configuration string are far shorter.
const maxReserved = 64 << 10

// readReserved copies C_Initialize's pReserved string without faulting.
func readReserved(p unsafe.Pointer) (string, bool) {
	buf := make([]byte, maxReserved)
	n := C.p11i_copy_string((*C.char)(unsafe.Pointer(&buf[0])), p, C.size_t(len(buf)))
	if n < 0 {
		return "", false
	}
	return string(buf[:n]), true
}

// environ returns C's environment now, not Go's copy from load time: an
// application's setenv before C_Initialize must count.
func environ() []string {
	var env []string
	for p := C.environ; p != nil && *p != nil; p = (**C.char)(unsafe.Add(unsafe.Pointer(p), unsafe.Sizeof(p))) {
		env = append(env, C.GoString(*p))
	}
	return env
}

// ptr turns an address of the application's memory into a pointer.
func ptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }
