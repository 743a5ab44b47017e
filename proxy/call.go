package main

/*
#include <stdlib.h>
#include "../cshim/plane.h"
#include "../cshim/shim.h"
#include "../cshim/spin.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/p11isolate/p11isolate/internal/p11calls"
	"github.com/p11isolate/p11isolate/internal/wire"
)

// channel binds one call channel of the C data plane (cshim/plane.c) for
// the package's tests (proxy/*_test.go): the library's own calls run
// wholly in C (cshim/supervise.c), but a test of what a reply may do needs
// the encoder, the decoder and p11i_run with a fake host on the socket.
type channel struct {
	fd  int
	c   *C.struct_p11i_call // C memory
	mem []byte              // the shared region (an mmap), nil: none
}

// newChannel makes a channel of socket fd and region mem (an mmap; nil:
// none) for a host of handle generation gen.
func newChannel(fd int, mem []byte, gen uint64) *channel {
	ch := &channel{fd: fd, mem: mem}
	ch.c = (*C.struct_p11i_call)(C.malloc(C.sizeof_struct_p11i_call))
	var region unsafe.Pointer
	if len(mem) > 0 {
		region = unsafe.Pointer(&mem[0])
	}
	C.p11i_call_init(ch.c, region, C.size_t(len(mem)), C.uint64_t(gen))
	return ch
}

// free releases the channel's memory (not its socket).
func (ch *channel) free() {
	if ch.c != nil {
		C.p11i_call_free(ch.c)
		C.free(unsafe.Pointer(ch.c))
		ch.c = nil
	}
	if ch.mem != nil {
		unix.Munmap(ch.mem)
		ch.mem = nil
	}
}

// close closes the channel's socket and frees it.
func (ch *channel) close() {
	if ch.fd >= 0 {
		unix.Close(ch.fd)
		ch.fd = -1
	}
	ch.free()
}

// newRegion creates a shared region as the library's channels get them
// (p11i_region_new) and returns the mapping and the memfd.
func newRegion() ([]byte, int, error) {
	var fd C.int
	mem, err := C.p11i_region_new(wire.RegionSize, &fd)
	if mem == nil {
		return nil, -1, fmt.Errorf("shared region: %w", err)
	}
	return unsafe.Slice((*byte)(mem), wire.RegionSize), int(fd), nil
}

// run makes the call f(a...) on the channel with p11i_run: encoding,
// sending, waiting at most timeout (0: forever), checking and writing the
// reply. An error means the host died, hung, lied or broke (nothing of its
// reply was written).
func (ch *channel) run(f p11calls.Func, a []uintptr, timeout time.Duration) (rv, error) {
	switch C.p11i_run(ch.c, C.int(ch.fd), C.int(f.ID), argsPtr(a), C.int64_t(timeout)) {
	case C.P11I_RUN_OK, C.P11I_RUN_ANSWER:
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

// encode and decode are run's two halves without the socket.
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

// The ring's layout (cshim/ring.h), for the tests.
const (
	ringSize   = C.P11I_RING_SIZE
	ringReqOff = C.P11I_RING_REQ_OFF
	ringRepOff = C.P11I_RING_REP_OFF
	ringRepCap = C.P11I_RING_REP_CAP

	ringReqSeq        = int(unsafe.Offsetof(C.struct_p11i_ring{}.req_seq))
	ringReqLen        = int(unsafe.Offsetof(C.struct_p11i_ring{}.req_len))
	ringProxySleeping = int(unsafe.Offsetof(C.struct_p11i_ring{}.proxy_sleeping))
	ringRepSeq        = int(unsafe.Offsetof(C.struct_p11i_ring{}.rep_seq))
	ringRepLen        = int(unsafe.Offsetof(C.struct_p11i_ring{}.rep_len))
	ringHostSleeping  = int(unsafe.Offsetof(C.struct_p11i_ring{}.host_sleeping))
)

// spinCPUs is the CPUs the poll-before-sleep policy counts on (spin.c).
func spinCPUs() int { return int(C.p11i_spin_cpus()) }

// useRing gives the channel a ring at the end of its region, as the
// library's channels have (p11i_call_ring).
func (ch *channel) useRing() { C.p11i_call_ring(ch.c) }
