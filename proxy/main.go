// Command libp11isolate is built with -buildmode=c-shared into
// libp11isolate.so, a PKCS#11 module that forwards every call to a host
// process which loads the real (vendor) module. The C shim (cshim/) exports
// the function list and makes the calls: the data plane, the host's start
// and supervision are C, which is all a process forked after the library
// was loaded can run. Go resolves the settings at C_Initialize (this
// package) and hands them to the C side as a kit.
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

func main() {}

//export p11i_go_initialize
func p11i_go_initialize(args *C.uintptr_t) C.CK_RV {
	return C.CK_RV(initialize(uintptr(*args)))
}
