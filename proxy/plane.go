package main

/*
#include <stdlib.h>
#include "../cshim/plane.h"
*/
import "C"

import (
	"errors"
	"unsafe"

	"github.com/p11isolate/p11isolate/internal/wire"
)

// cPlane runs one channel's calls through the C data plane (cshim/plane.c).
// The proxy does not call through it yet; plane_test.go holds it to the Go
// encoder and decoder it is to replace.
type cPlane struct {
	c      *C.struct_p11i_call
	region []byte // C memory, the C plane's shared region
}

func newCPlane(withRegion bool) *cPlane {
	p := &cPlane{c: (*C.struct_p11i_call)(C.calloc(1, C.sizeof_struct_p11i_call))}
	if withRegion {
		mem := C.calloc(1, wire.RegionSize)
		p.c.region = (*C.uint8_t)(mem)
		p.c.region_len = wire.RegionSize
		p.region = unsafe.Slice((*byte)(mem), wire.RegionSize)
	}
	return p
}

func (p *cPlane) free() {
	C.p11i_call_free(p.c)
	C.free(unsafe.Pointer(p.c.region))
	C.free(unsafe.Pointer(p.c))
}

// encode returns the request frame of id(a...), or the code the proxy
// answers by itself.
func (p *cPlane) encode(id int, a []uintptr) ([]byte, rv) {
	r := C.p11i_encode(p.c, C.int(id), argsPtr(a))
	if r != C.CKR_OK {
		return nil, rv(r)
	}
	return C.GoBytes(unsafe.Pointer(p.c.w.buf), C.int(p.c.w.len)), C.CKR_OK
}

// decode checks and applies a reply body.
func (p *cPlane) decode(id int, a []uintptr, body []byte) (rv, error) {
	cb := C.CBytes(append([]byte{0}, body...))
	defer C.free(cb)
	var r C.CK_RV
	if C.p11i_decode(p.c, C.int(id), argsPtr(a), unsafe.Add(cb, 1), C.size_t(len(body)), &r) != 0 {
		return C.CKR_DEVICE_ERROR, errors.New(C.GoString(&p.c.why[0]))
	}
	return rv(r), nil
}

func argsPtr(a []uintptr) *C.uintptr_t {
	if len(a) == 0 {
		return nil
	}
	return (*C.uintptr_t)(unsafe.Pointer(&a[0]))
}
