package main

/*
#include "../cshim/plane.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/p11isolate/p11isolate/internal/p11calls"
	"github.com/p11isolate/p11isolate/internal/wire"
)

// The call itself runs in C (cshim/plane.c, on the tables p11gen writes
// from internal/p11calls and internal/mechparams): the encoding of the
// request from the application's arguments, and the reply's checks and
// writes. Go keeps what a call needs around it: the channel, the deadline,
// the log.

// run makes the call f(a...) on the channel, in C and in one crossing:
// encoding, sending, waiting at most timeout (0: forever), checking and
// writing the reply (see p11i_run and README, "What the application can
// observe"). An error means the host died, hung, lied or broke (nothing of
// its reply was written): the caller hands it to lost.
func (ch *channel) run(h *host, f p11calls.Func, a []uintptr, timeout time.Duration) (rv, error) {
	st := C.p11i_run(ch.c, C.int(ch.fd), C.int(f.ID), argsPtr(a), C.int64_t(timeout))
	if ch.c.has_uncarried != 0 {
		logUncarriable(f.Name, uint64(ch.c.uncarried))
	}
	switch st {
	case C.P11I_RUN_OK:
		if ch.c.why[0] != 0 { // a code no PKCS#11 version defines
			logs.printf("%s (%s): returning CKR_GENERAL_ERROR", C.GoString(&ch.c.why[0]), h.module)
		}
		return rv(ch.c.code), nil
	case C.P11I_RUN_ANSWER:
		if ch.c.why[0] != 0 {
			logs.printf("%s", C.GoString(&ch.c.why[0]))
		}
		return rv(ch.c.code), nil
	case C.P11I_RUN_TIMEOUT:
		return C.CKR_DEVICE_ERROR, wire.ErrTimeout
	case C.P11I_RUN_CLOSED:
		return C.CKR_DEVICE_ERROR, wire.ErrClosed
	case C.P11I_RUN_BAD:
		return C.CKR_DEVICE_ERROR, fmt.Errorf("%w: %s", wire.ErrMalformed, C.GoString(&ch.c.why[0]))
	}
	return C.CKR_DEVICE_ERROR, errors.New(C.GoString(&ch.c.why[0]))
}

// encode and decode are run's two halves without the socket, for the
// tests of what a reply may do (reply_test.go).
func (ch *channel) encode(f p11calls.Func, a []uintptr) (r rv, bad bool) {
	r = rv(C.p11i_encode(ch.c, C.int(f.ID), argsPtr(a)))
	return r, r != C.CKR_OK
}

// frame is the encoded request, length prefix included (C memory).
func (ch *channel) frame() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(ch.c.w.buf)), ch.c.w.len)
}

func (ch *channel) decode(f p11calls.Func, a []uintptr, body []byte) (rv, error) {
	var p unsafe.Pointer
	if len(body) > 0 {
		p = unsafe.Pointer(&body[0])
	}
	ch.c.why[0] = 0
	if C.p11i_decode(ch.c, C.int(f.ID), argsPtr(a), p, C.size_t(len(body)), &ch.c.code) != 0 {
		return C.CKR_DEVICE_ERROR, fmt.Errorf("%w: %s", wire.ErrMalformed, C.GoString(&ch.c.why[0]))
	}
	return rv(ch.c.code), nil
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
