// Command libp11isolate is built with -buildmode=c-shared into
// libp11isolate.so, a PKCS#11 module that forwards every call to a host
// process which loads the real (vendor) module. The C shim (cshim/) exports
// the function list and guards against use after fork; this package does
// the rest: configuration, the host's lifecycle, and the calls.
//
//go:debug updatemaxprocs=0
//go:debug containermaxprocs=0
package main

/*
#cgo CFLAGS: -I/usr/include/p11-kit-1 -Wall -Wextra -Werror -Wno-unused-parameter
#cgo LDFLAGS: -ldl
#include "../cshim/shim.h"
*/
import "C"

import (
	"unsafe"

	"github.com/p11isolate/p11isolate/internal/p11calls"
)

func main() {}

//export p11i_go_call
func p11i_go_call(id C.int, args *C.uintptr_t) C.CK_RV {
	f, ok := p11calls.ByID(int(id))
	if !ok {
		return C.CKR_FUNCTION_NOT_SUPPORTED
	}
	var a []uintptr
	if n := f.NArgs(); n > 0 {
		a = unsafe.Slice((*uintptr)(unsafe.Pointer(args)), n)
	}
	return C.CK_RV(px.call(f, a))
}
