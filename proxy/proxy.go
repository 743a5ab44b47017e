package main

/*
#include <stdlib.h>
#include "../cshim/shim.h"
extern char **environ;
*/
import "C"

import (
	"unsafe"

	"github.com/p11isolate/p11isolate/internal/plan"
)

type rv = uint64

// initialize is C_Initialize in the process that loaded the library: the
// settings are resolved here, in Go (internal/plan), and handed to the C
// side, which starts the first host and makes every later call. A forked
// child resolves them with the same code, run by the host image
// (p11isolate-host --plan).
func initialize(argp uintptr) rv {
	var in C.struct_p11i_init
	if r := C.p11i_init_read(ptr(argp), &in); r != C.CKR_OK {
		return rv(r)
	}
	defer C.p11i_init_free(&in)
	// Settings are resolved only for a first C_Initialize; the C side
	// checks again under its lock.
	if C.p11i_sup_initialized() != 0 {
		return C.CKR_CRYPTOKI_ALREADY_INITIALIZED
	}
	var reserved *string
	if in.reserved != nil {
		s := C.GoString(in.reserved)
		reserved = &s
	}
	b, err := plan.Make(environ(), reserved).Encode()
	if err != nil {
		logf("encoding the settings: %v", err)
		return C.CKR_GENERAL_ERROR
	}
	return rv(C.p11i_sup_initialize(unsafe.Pointer(&b[0]), C.size_t(len(b)), &in, C.uintptr_t(argp)))
}

// p11i_go_plan makes the plan of a C_Initialize without pReserved, for the host a
// C_GetInterface before C_Initialize starts (cshim/supervise.c, probe):
// malloc'd, its length in *n; NULL (logged) when it cannot be made.
//
//export p11i_go_plan
func p11i_go_plan(n *C.size_t) unsafe.Pointer {
	b, err := plan.Make(environ(), nil).Encode()
	if err != nil {
		logf("encoding the settings: %v", err)
		return nil
	}
	p := C.malloc(C.size_t(len(b)))
	if p == nil {
		return nil
	}
	copy(unsafe.Slice((*byte)(p), len(b)), b)
	*n = C.size_t(len(b))
	return p
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
