package main

/*
#include "../cshim/plane.h"
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/p11isolate/p11isolate/internal/p11calls"
	"github.com/p11isolate/p11isolate/internal/wire"
)

// The call itself runs in C (cshim/plane.c, on the tables p11gen writes
// from internal/p11calls and internal/mechparams): the encoding of the
// request from the application's arguments, and the reply's checks and
// writes. Go keeps what a call needs around it: the channel, the deadline,
// the log.

// encode encodes the call f(a...) into the channel's frame. bad is true
// when the proxy answers by itself with r: a parameter the registry cannot
// carry, a request past the frame cap.
func (ch *channel) encode(f p11calls.Func, a []uintptr) (r rv, bad bool) {
	r = rv(C.p11i_encode(ch.c, C.int(f.ID), argsPtr(a)))
	if ch.c.has_uncarried != 0 {
		logUncarriable(f.Name, uint64(ch.c.uncarried))
	}
	if r != C.CKR_OK {
		if ch.c.why[0] != 0 {
			logs.printf("%s", C.GoString(&ch.c.why[0]))
		}
		return r, true
	}
	return C.CKR_OK, false
}

// frame is the encoded request, length prefix included (C memory).
func (ch *channel) frame() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(ch.c.w.buf)), ch.c.w.len)
}

// decode checks the reply to f(a...) whole and, if it can be true, writes
// its outputs into the application's memory (see p11i_decode and README,
// "What the application can observe"). An error means the host lied or
// broke: nothing was written.
func (ch *channel) decode(h *host, f p11calls.Func, a []uintptr, body []byte) (rv, error) {
	var p unsafe.Pointer
	if len(body) > 0 {
		p = unsafe.Pointer(&body[0])
	}
	// The code goes through C memory: a Go variable whose address C gets
	// would be allocated on every call.
	r := &ch.c.code
	ch.c.why[0] = 0
	if C.p11i_decode(ch.c, C.int(f.ID), argsPtr(a), p, C.size_t(len(body)), r) != 0 {
		return C.CKR_DEVICE_ERROR, fmt.Errorf("%w: %s", wire.ErrMalformed, C.GoString(&ch.c.why[0]))
	}
	if ch.c.why[0] != 0 { // a code no PKCS#11 version defines
		logs.printf("%s (%s): returning CKR_GENERAL_ERROR", C.GoString(&ch.c.why[0]), h.module)
	}
	return rv(*r), nil
}

func argsPtr(a []uintptr) *C.uintptr_t {
	if len(a) == 0 {
		return nil
	}
	return (*C.uintptr_t)(unsafe.Pointer(&a[0]))
}

var uncarriable sync.Map // mechanism types already logged

// logUncarriable logs, once per mechanism, that its parameter cannot cross.
func logUncarriable(fn string, typ uint64) {
	if _, seen := uncarriable.LoadOrStore(typ, true); !seen {
		logs.printf("%s: mechanism 0x%x takes a parameter p11isolate does not know how to carry: calls with it get CKR_MECHANISM_PARAM_INVALID (or the vendor's CKR_MECHANISM_INVALID)", fn, typ)
	}
}
