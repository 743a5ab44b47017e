// Package cwire binds the C data plane's msgpack codec (cshim/mp.c) and the
// C side's other hand-written primitives (the handle table, SHA-256) to Go,
// so that its tests can hold it to internal/wire's encoder and decoder byte
// for byte, and fuzz the two decoders side by side. The library itself
// calls the C code directly; nothing else imports this package.
package cwire

/*
#cgo CFLAGS: -std=gnu11 -Wall -Wextra -Werror -I/usr/include/p11-kit-1
#define _GNU_SOURCE
#include <stdlib.h>
#include "../../cshim/mp.c"
#include "../../cshim/spin.c"
#include "../../cshim/plane.c"
#include "../../cshim/handles.c"
#include "../../cshim/sessions.c"
#include "../../cshim/sha256.c"

// p11i_copy_string is the shim's (cshim/shim.c), which this package does
// not build: here, a plain copy.
long p11i_copy_string(char *dst, const void *src, size_t max)
{
	size_t n = strnlen(src, max);
	if (n == max)
		return -2;
	memcpy(dst, src, n + 1);
	return (long)n;
}

// The handle numbering of internal/mechparams' tests: bit 48 marks an
// application handle.
static uint64_t cw_to_vendor(uint64_t gen, uint64_t h) { (void)gen; return h & ~(1ULL << 48); }
static uint64_t cw_to_app(uint64_t gen, uint64_t h) { (void)gen; return h ? h | (1ULL << 48) : 0; }

// cw_encode_struct writes the structure at p of layout l: 0, or -1 when it
// cannot be carried. The body is left in c->w.
static int cw_encode_struct(struct p11i_call *c, int l, const void *p)
{
	c->to_vendor = cw_to_vendor;
	p11i_mpw_reset(&c->w);
	return mp_structure(c, &p11i_layouts[l], p, (struct mp_scope){ NULL, NULL }, 0) == MP_OK && c->w.err == 0 ? 0 : -1;
}

// cw_decode_out checks a reply for the structure at p and applies it: 0, or
// -1 with c->why.
static int cw_decode_out(struct p11i_call *c, int l, void *p, const void *body, size_t len, int ok)
{
	struct p11i_mpr r;

	c->to_app = cw_to_app;
	c->nplan = 0;
	p11i_mpr_init(&r, body, len, NULL, 0);
	mp_decode_out(c, &r, &p11i_layouts[l], p, (struct mp_scope){ NULL, NULL }, ok);
	if (p11i_mpr_finish(&r) != 0) {
		snprintf(c->why, sizeof c->why, "%s", r.why);
		c->nplan = 0;
		return -1;
	}
	apply(c);
	return 0;
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// Writer is a C writer.
type Writer struct{ w C.struct_p11i_mpw }

func (w *Writer) Reset()            { C.p11i_mpw_reset(&w.w) }
func (w *Writer) Free()             { C.p11i_mpw_free(&w.w) }
func (w *Writer) Uint(v uint64)     { C.p11i_mpw_uint(&w.w, C.uint64_t(v)) }
func (w *Writer) Nil()              { C.p11i_mpw_nil(&w.w) }
func (w *Writer) ArrayLen(n int)    { C.p11i_mpw_array(&w.w, C.uint32_t(n)) }
func (w *Writer) MapLen(n int)      { C.p11i_mpw_map(&w.w, C.uint32_t(n)) }
func (w *Writer) Ref(off, n uint64) { C.p11i_mpw_ref(&w.w, C.uint64_t(off), C.uint64_t(n)) }

func (w *Writer) Bool(v bool) {
	c := C.int(0)
	if v {
		c = 1
	}
	C.p11i_mpw_bool(&w.w, c)
}

func (w *Writer) Bytes(b []byte) {
	p := C.CBytes(b)
	defer C.free(p)
	C.p11i_mpw_bytes(&w.w, p, C.size_t(len(b)))
}

func (w *Writer) String(s string) {
	p := C.CString(s)
	defer C.free(unsafe.Pointer(p))
	C.p11i_mpw_str(&w.w, p, C.size_t(len(s)))
}

// Frame is the whole frame, length prefix included (copied out of C).
func (w *Writer) Frame() []byte {
	C.p11i_mpw_frame(&w.w)
	if w.w.err != 0 || w.w.buf == nil {
		return nil
	}
	return C.GoBytes(unsafe.Pointer(w.w.buf), C.int(w.w.len))
}

// Reader is a C reader of one body; its memory lives in C for the
// reader's lifetime (Free).
type Reader struct {
	r      C.struct_p11i_mpr
	body   unsafe.Pointer
	region unsafe.Pointer
}

// NewReader copies body and region into C memory and starts reading.
func NewReader(body, region []byte) *Reader {
	r := &Reader{body: C.CBytes(append([]byte{0}, body...))}
	var reg unsafe.Pointer
	if region != nil {
		r.region = C.CBytes(region)
		reg = r.region
	}
	C.p11i_mpr_init(&r.r, unsafe.Add(r.body, 1), C.size_t(len(body)), reg, C.size_t(len(region)))
	return r
}

func (r *Reader) Free() {
	C.free(r.body)
	if r.region != nil {
		C.free(r.region)
	}
}

func (r *Reader) Ok() bool        { return r.r.failed == 0 }
func (r *Reader) Uint() uint64    { return uint64(C.p11i_mpr_uint(&r.r)) }
func (r *Reader) Bool() bool      { return C.p11i_mpr_bool(&r.r) != 0 }
func (r *Reader) IsNil() bool     { return C.p11i_mpr_is_nil(&r.r) != 0 }
func (r *Reader) IsFalse() bool   { return C.p11i_mpr_is_false(&r.r) != 0 }
func (r *Reader) PeekArray() bool { return C.p11i_mpr_peek_array(&r.r) != 0 }
func (r *Reader) PeekBytes() bool { return C.p11i_mpr_peek_bytes(&r.r) != 0 }
func (r *Reader) Skip()           { C.p11i_mpr_skip(&r.r) }

func (r *Reader) UintMax(max uint64) uint64 {
	what := C.CString("value")
	defer C.free(unsafe.Pointer(what))
	return uint64(C.p11i_mpr_uint_max(&r.r, C.uint64_t(max), what))
}

func (r *Reader) ArrayLen(max int) int { return int(C.p11i_mpr_array(&r.r, C.uint32_t(max))) }
func (r *Reader) MapLen(max int) int   { return int(C.p11i_mpr_map(&r.r, C.uint32_t(max))) }

func (r *Reader) Bytes() []byte {
	var n C.size_t
	p := C.p11i_mpr_bytes(&r.r, &n)
	if p == nil {
		return nil
	}
	return C.GoBytes(unsafe.Pointer(p), C.int(n))
}

func (r *Reader) Data() []byte {
	var n C.size_t
	p := C.p11i_mpr_data(&r.r, &n)
	if p == nil {
		return nil
	}
	return C.GoBytes(unsafe.Pointer(p), C.int(n))
}

func (r *Reader) String() string {
	var n C.size_t
	p := C.p11i_mpr_str(&r.r, &n)
	if p == nil {
		return ""
	}
	return C.GoStringN(p, C.int(n))
}

// Finish is nil, or the reader's error (trailing bytes too).
func (r *Reader) Finish() error {
	if C.p11i_mpr_finish(&r.r) == 0 {
		return nil
	}
	return errors.New(C.GoString(&r.r.why[0]))
}

// EncodeParam runs the C walker over the parameter structure at p, whose
// layout is internal/mechparams.AllLayouts()[layout], and returns the
// encoded body; ok is false when the walker refuses it.
func EncodeParam(layout int, p unsafe.Pointer) (body []byte, ok bool) {
	c := (*C.struct_p11i_call)(C.calloc(1, C.sizeof_struct_p11i_call))
	defer C.free(unsafe.Pointer(c))
	defer C.p11i_call_free(c)
	if C.cw_encode_struct(c, C.int(layout), p) != 0 {
		return nil, false
	}
	return C.GoBytes(unsafe.Add(unsafe.Pointer(c.w.buf), C.P11I_MP_HEADER), C.int(c.w.len-C.P11I_MP_HEADER)), true
}

// DecodeParamOut runs the C walker over a reply's output fields for the
// structure at p and, when the reply checks, applies it.
func DecodeParamOut(layout int, p unsafe.Pointer, reply []byte, ok bool) error {
	c := (*C.struct_p11i_call)(C.calloc(1, C.sizeof_struct_p11i_call))
	defer C.free(unsafe.Pointer(c))
	defer C.p11i_call_free(c)
	body := C.CBytes(append([]byte{0}, reply...))
	defer C.free(body)
	k := C.int(0)
	if ok {
		k = 1
	}
	if C.cw_decode_out(c, C.int(layout), p, unsafe.Add(body, 1), C.size_t(len(reply)), k) != 0 {
		return errors.New(C.GoString(&c.why[0]))
	}
	return nil
}

// HandleToVendor and HandleToApp are the handle table of the C data plane
// (cshim/handles.c), for a host of handle generation gen.
func HandleToVendor(gen, v uint64) uint64 {
	return uint64(C.p11i_handle_to_vendor(C.uint64_t(gen), C.uint64_t(v)))
}

func HandleToApp(gen, v uint64) uint64 {
	return uint64(C.p11i_handle_to_app(C.uint64_t(gen), C.uint64_t(v)))
}

// CKRDefined is the proxy's check of a vendor's return code (p11i_ckr_defined).
func CKRDefined(v uint64) bool { return C.p11i_ckr_defined(C.CK_RV(v)) != 0 }

// SHA256 is the host image's hash as the C side computes it (cshim/sha256.c).
func SHA256(b []byte) [32]byte {
	var s C.struct_p11i_sha256
	var out [32]byte
	C.p11i_sha256_init(&s)
	// In pieces of varying size, as a file is read.
	for len(b) > 0 {
		n := min(len(b), 1+len(b)%97)
		C.p11i_sha256_update(&s, unsafe.Pointer(&b[0]), C.size_t(n))
		b = b[n:]
	}
	C.p11i_sha256_final(&s, (*C.uint8_t)(unsafe.Pointer(&out[0])))
	return out
}

// Spin is one kind of wait's record in the C side's poll-before-sleep
// policy (cshim/spin.c).
type Spin struct{ s C.struct_p11i_spin }

// Window is until when a wait of this kind polls while busy waits and
// workers need a CPU each (0: it sleeps at once), for a waiter whose cap is
// SpinCap (the host) or SpinReplyCap (a caller).
func (s *Spin) Window(busy int, cap int64) int64 {
	return int64(C.p11i_spin_window(&s.s, C.int(busy), C.int64_t(cap)))
}

// Doze is how long a wait with that window sleeps before it polls.
func (s *Spin) Doze(window int64) int64 {
	return int64(C.p11i_spin_doze(&s.s, C.int64_t(window)))
}

// Done records a wait of waited ns that polled until window ns.
func (s *Spin) Done(waited, window, cap int64) {
	C.p11i_spin_done(&s.s, C.int64_t(waited), C.int64_t(window), C.int64_t(cap))
}

// SpinDozed records a doze asked for asked ns that slept slept ns.
func SpinDozed(asked, slept int64) { C.p11i_spin_dozed(C.int64_t(asked), C.int64_t(slept)) }

// SpinCPUs is the CPUs the policy counts on.
func SpinCPUs() int { return int(C.p11i_spin_cpus()) }

// SpinPoll polls fd for up to window ns (p11i_spin_wait without shared
// memory): whether it became readable.
func SpinPoll(fd int, window int64) bool {
	return C.p11i_spin_wait(C.int(fd), C.int64_t(window), nil, nil, nil) == C.P11I_SPIN_READABLE
}

// The caps and the doze threshold of spin.h.
const (
	SpinCap      = C.P11I_SPIN_CAP_NS
	SpinReplyCap = C.P11I_SPIN_REPLY_CAP_NS
	SpinDozeMin  = C.P11I_SPIN_DOZE_MIN_NS
)
