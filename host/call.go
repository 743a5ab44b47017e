package main

/*
#include <stdlib.h>
#include <string.h>
#include "host.h"
*/
import "C"

import (
	"bytes"
	"fmt"
	"unsafe"

	"github.com/p11isolate/p11isolate/internal/mechparams"
	"github.com/p11isolate/p11isolate/internal/p11calls"
	"github.com/p11isolate/p11isolate/internal/wire"
)

const (
	ulongSize = 8
	attrSize  = C.sizeof_CK_ATTRIBUTE
	// maxOut clamps an output capacity the application declares (an
	// application may pass a huge buffer for a small result): the vendor is
	// told the clamped capacity, the size of the buffer it gets, which stays
	// well inside the host's default memory limit.
	maxOut = 256 << 20
)

// call holds one call's decoded state; it is reused for every call on a
// channel. Memory handed to the vendor comes from the arena, or points into
// the request frame, which is C memory too, or into the channel's shared
// region (large input and output buffers).
type call struct {
	arena  arena
	region *wire.Region // nil: the channel has none
	d      *wire.Decoder
	args   [p11calls.MaxArgs]uintptr
	outs   []out
	attrs  []attr // records of the templates being read back, reused

	// A mechanism whose parameter the proxy could not carry: the vendor is
	// only asked whether it knows the mechanism.
	uncarried    uint64
	hasUncarried bool

	// Output buffers of a call on an asynchronous session: C memory of
	// their own, which the vendor may still fill after the call returned
	// CKR_PENDING (async.go).
	kept  []keptBuf
	fname int // C_Async*'s function, by ID; -1: none or unknown
}

// out remembers what an output argument needs for the reply.
type out struct {
	kind  byte
	p, n  uintptr // buffer (or struct) and length pointer / value, by kind
	cap   uint64  // capacity the application declared
	given uint64  // Y: the length the vendor was given (cap, clamped for a buffer)
	tmpl  []attr  // A: the template
	none  bool    // A: no template (NULL); D: the application passed NULL
	mech  *mechparams.Layout
	param unsafe.Pointer
	// i j k e q: the application's bytes, in the request frame (valid
	// until the reply is sent)
	before []byte
}

// attr is one CK_ATTRIBUTE of a template being read back.
type attr struct {
	a      *C.CK_ATTRIBUTE
	cap    uint64
	given  C.CK_ULONG // ulValueLen as the vendor got it
	nested []attr
}

// newCall makes a call of a channel whose shared region is mem (nil: none).
func newCall(mem []byte) *call {
	c := &call{d: wire.NewDecoder(), region: wire.NewRegion(mem), fname: -1}
	c.d.SetRegion(c.region)
	return c
}

func (c *call) free() { c.arena.release() }

// reset makes the call ready for the next one; the memory stays.
func (c *call) reset() {
	c.arena.reset()
	c.region.Reset()
	clear(c.outs)
	c.outs = c.outs[:0]
	clear(c.attrs)
	c.attrs = c.attrs[:0]
	c.hasUncarried = false
	c.releaseKept()
	c.fname = -1
	if cap(c.attrs) > 4096 {
		c.attrs = nil // a huge template once; not kept
	}
}

// run decodes one request from body, calls the vendor and encodes the reply;
// it returns the function's ID. An error means the request was malformed:
// the host stops.
func (c *call) run(lists *routeLists, body []byte, e *wire.Encoder) (int, error) {
	defer c.reset()
	f, route, err := c.decode(body)
	if err != nil {
		return 0, err
	}
	// A route's own list may lack the function (a 3.x function called by
	// its exported name): then the widest list has it, if any has.
	list, nfuncs := lists.list[route], lists.nfuncs[route]
	if f.ID >= int(nfuncs) {
		list, nfuncs = lists.list[0], lists.nfuncs[0]
		for r := range lists.list {
			if lists.nfuncs[r] > nfuncs {
				list, nfuncs = lists.list[r], lists.nfuncs[r]
			}
		}
	}
	rv := C.CK_RV(C.CKR_GENERAL_ERROR)
	switch {
	case list == nil:
	case c.hasUncarried:
		// Every function with a mechanism takes the session first.
		rv = C.p11h_mechanism_known((*C.CK_FUNCTION_LIST)(unsafe.Pointer(list)), C.CK_SESSION_HANDLE(c.args[0]), C.CK_MECHANISM_TYPE(c.uncarried))
		if rv == C.CKR_OK {
			rv = C.CKR_MECHANISM_PARAM_INVALID
		}
	default:
		rv = C.p11h_invoke(list, nfuncs, C.int(f.ID), (*C.uintptr_t)(unsafe.Pointer(&c.args[0])))
	}
	if f.CarriesSecret() {
		clear(body) // the PIN crossed in this frame
	}
	c.encodeReply(e, uint64(rv))
	c.asyncAfter(f, uint64(rv))
	return f.ID, e.Err()
}

// decode decodes a request into c.args, the vendor's arguments, and
// returns its function and route.
func (c *call) decode(body []byte) (p11calls.Func, int, error) {
	d := c.d
	d.Reset(body)
	v := d.UintMax(p11calls.RouteStride*p11calls.NRoutes-1, "function")
	id, route := int(v%p11calls.RouteStride), int(v/p11calls.RouteStride)
	if id >= len(p11calls.Funcs) {
		d.Fail("function %d", id)
		id = 0
	}
	f := p11calls.Funcs[id]
	if f.Local() {
		d.Fail("%s is answered by the proxy", f.Name)
	}
	n := 0
	for i := 0; i < len(f.Args) && d.Ok(); i++ {
		n += c.decodeArg(f.Args[i], c.args[n:])
	}
	if err := d.Finish(); err != nil {
		return f, route, fmt.Errorf("%s: %w", f.Name, err)
	}
	return f, route, nil
}

// encodeReply encodes the vendor's answer rv and the outputs.
func (c *call) encodeReply(e *wire.Encoder, rv uint64) {
	e.Uint(rv)
	for i := range c.outs {
		c.encodeOut(e, &c.outs[i], rv)
	}
}

func (c *call) ulong(v uint64) uintptr {
	p := c.arena.alloc(ulongSize)
	*(*C.CK_ULONG)(p) = C.CK_ULONG(v)
	return uintptr(p)
}

// bytesArg returns a pointer the vendor can read b through: into the frame,
// or a one-byte allocation for an empty but non-NULL buffer.
func (c *call) bytesArg(b []byte) uintptr {
	if len(b) == 0 {
		return uintptr(c.arena.alloc(1))
	}
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))
}

func clamp(n uint64) uint64 { return min(n, maxOut) }

// decodeArg decodes one argument of kind k into a and returns how many C
// parameters it filled.
func (c *call) decodeArg(k byte, a []uintptr) int {
	d := c.d
	switch k {
	case 'u', 'b', 'l', 's', 'o':
		a[0] = uintptr(d.Uint())
		return 1
	case 'y':
		if d.IsNil() {
			a[0], a[1] = 0, uintptr(d.Uint())
		} else {
			b := d.Data()
			a[0], a[1] = c.bytesArg(b), uintptr(len(b))
		}
		return 2
	case 'z':
		a[0] = 0
		if !d.IsNil() {
			b := d.Bytes()
			if len(b) != 32 {
				d.Fail("label of %d bytes", len(b))
			}
			a[0] = c.bytesArg(b)
		}
		return 1
	case 'x':
		a[0] = 0
		if d.Bool() {
			a[0] = uintptr(c.arena.alloc(64))
		}
		return 1
	case 'n':
		a[0], a[1] = 0, 0
		return 2
	case 'I':
		a[0] = 0
		if !d.IsNil() {
			if d.ArrayLen(3) != 3 {
				d.Fail("init args")
				return 1
			}
			flags, mask := d.Uint(), d.UintMax(15, "mutex mask")
			var reserved *C.char
			if !d.IsNil() {
				// Kept for the module's lifetime: a vendor may hold on to it.
				reserved = C.CString(d.String())
			}
			p := (*C.CK_C_INITIALIZE_ARGS)(c.arena.alloc(C.sizeof_CK_C_INITIALIZE_ARGS))
			C.p11h_init_args(p, C.unsigned(mask), C.CK_FLAGS(flags), reserved)
			a[0] = uintptr(unsafe.Pointer(p))
		}
		return 1
	case 'a':
		a[0], a[1] = c.template(0)
		return 2
	case 'm':
		a[0] = c.mechanism()
		return 1
	case 'M':
		a[0], a[1] = c.messageParam()
		return 2
	case 'N':
		a[0] = 0
		c.fname = -1
		if !d.IsNil() {
			name := d.String()
			if f, ok := p11calls.ByName(name); ok {
				c.fname = f.ID
			}
			a[0] = c.bytesArg(append([]byte(name), 0))
		}
		return 1
	case 'D':
		// C_AsyncComplete's result. When the application passed NULL but
		// the operation has an output buffer, the vendor gets a structure
		// of the host's all the same: the result lands in the buffer
		// either way, and only ulValue tells how much of it to bring back.
		o := out{kind: k}
		given := !d.IsNil()
		if given && d.ArrayLen(2) != 2 {
			d.Fail("asynchronous data")
			return 1
		}
		if given || c.keptFor(uint64(c.args[0]), c.fname) {
			p := (*C.CK_ASYNC_DATA)(c.arena.alloc(C.sizeof_CK_ASYNC_DATA))
			if given {
				p.ulVersion, p.ulValue = C.CK_ULONG(d.Uint()), C.CK_ULONG(d.Uint())
			}
			o.p = uintptr(unsafe.Pointer(p))
			o.none = !given
			o.before = bytes.Clone(unsafe.Slice((*byte)(unsafe.Pointer(p)), C.sizeof_CK_ASYNC_DATA))
		}
		a[0] = o.p
		c.outs = append(c.outs, o)
		return 1
	case 'B':
		// C_AsyncJoin's buffer, which the vendor fills when the operation
		// completes: kept past the call (async.go).
		nonNull := d.Bool()
		n := d.Uint()
		a[0], a[1] = 0, uintptr(n)
		if nonNull {
			a[0] = c.keep(clamp(n), 'B')
			a[1] = uintptr(clamp(n))
		}
		return 2
	case 'Y':
		o := out{kind: k}
		hasLen := !d.IsNil()
		if hasLen {
			o.cap = d.Uint()
		}
		// The vendor sees the application's exact length, clamped only
		// when it describes a buffer the host must allocate.
		if d.Bool() {
			o.p = c.outputBuf(clamp(o.cap))
			o.given = clamp(o.cap)
		} else {
			o.given = o.cap
		}
		if hasLen {
			o.n = c.ulong(o.given)
		}
		a[0], a[1] = o.p, o.n
		c.outs = append(c.outs, o)
		return 2
	case 'G':
		o := out{kind: k}
		nonNull := d.Bool()
		o.cap = d.Uint()
		if nonNull {
			if o.cap > wire.MaxBuffer {
				d.Fail("random buffer of %d bytes", o.cap)
				return 2
			}
			o.p = c.outputBuf(o.cap)
		}
		a[0], a[1] = o.p, uintptr(o.cap)
		c.outs = append(c.outs, o)
		return 2
	case 'A':
		o := out{kind: k}
		var p unsafe.Pointer
		p, o.tmpl, o.cap = c.getTemplate(0)
		o.none = p == nil
		a[0], a[1] = uintptr(p), uintptr(o.cap)
		c.outs = append(c.outs, o)
		return 2
	case 'L', 'K':
		o := out{kind: k}
		nonNull := d.Bool()
		if !d.IsNil() {
			o.cap = d.Uint()
			o.given = o.cap
			if nonNull {
				o.given = clamp(o.cap)
			}
			o.n = c.ulong(o.given)
		}
		if nonNull {
			o.p = uintptr(c.arena.alloc(uintptr(max(clamp(o.cap), 1) * ulongSize)))
		}
		a[0], a[1] = o.p, o.n
		c.outs = append(c.outs, o)
		return 2
	case 'F':
		o := out{kind: k}
		nonNull := d.Bool()
		o.cap = d.Uint()
		if nonNull {
			o.p = uintptr(c.arena.alloc(uintptr(max(clamp(o.cap), 1) * ulongSize)))
		}
		if !d.IsNil() {
			o.n = c.ulong(d.Uint())
		}
		a[0], a[1], a[2] = o.p, uintptr(clamp(o.cap)), o.n
		c.outs = append(c.outs, o)
		return 3
	case 'U', 'P', 'S', 'O':
		o := out{kind: k}
		if !d.IsNil() {
			o.cap = d.Uint() // the application's value before the call
			o.p = c.ulong(o.cap)
		}
		a[0] = o.p
		c.outs = append(c.outs, o)
		return 1
	case 'i', 'j', 'k', 'e', 'q':
		// The structure arrives holding the application's bytes: a
		// vendor that ORs flags into it, or leaves a field alone, does so
		// to what the application had.
		o := out{kind: k}
		if !d.IsNil() {
			size := p11calls.InfoStructs[k].Size
			b := d.Bytes()
			if len(b) != size {
				d.Fail("a %d-byte %s", len(b), p11calls.InfoStructs[k].CType)
				return 1
			}
			o.p = uintptr(c.arena.alloc(uintptr(size)))
			copy(unsafe.Slice((*byte)(ptr(o.p)), size), b)
			o.before = b
		}
		a[0] = o.p
		c.outs = append(c.outs, o)
		return 1
	}
	d.Fail("unknown argument kind %q", k)
	return 1
}

// template decodes an input template: nil and a count for NULL, or an array
// of (type, value) where a value is nil and a length, bytes, or a nested
// template.
func (c *call) template(depth int) (uintptr, uintptr) {
	d := c.d
	if d.IsNil() {
		return 0, uintptr(d.Uint())
	}
	n := d.ArrayLen(wire.MaxTemplate)
	p := c.arena.alloc(uintptr(max(n, 1)) * attrSize)
	attrs := unsafe.Slice((*C.CK_ATTRIBUTE)(p), max(n, 1))
	for i := 0; i < n && d.Ok(); i++ {
		at := &attrs[i]
		at._type = C.CK_ATTRIBUTE_TYPE(d.Uint())
		switch {
		case d.IsNil():
			at.pValue, at.ulValueLen = nil, C.CK_ULONG(d.Uint())
		case d.PeekArray():
			if depth >= wire.MaxNesting {
				d.Fail("templates nested too deep")
				break
			}
			q, m := c.template(depth + 1)
			at.pValue = ptr(q)
			at.ulValueLen = C.CK_ULONG(m * attrSize)
		default:
			b := d.Data()
			at.pValue = ptr(c.bytesArg(b))
			at.ulValueLen = C.CK_ULONG(len(b))
		}
	}
	return uintptr(p), uintptr(n)
}

// attrRecs returns n cleared records from the reused slab. Records of a
// template already handed out stay valid when the slab grows: they keep
// the old array.
func (c *call) attrRecs(n int) []attr {
	if len(c.attrs)+n > cap(c.attrs) {
		c.attrs = make([]attr, 0, max(2*cap(c.attrs), n, 64))
	}
	c.attrs = c.attrs[:len(c.attrs)+n]
	recs := c.attrs[len(c.attrs)-n:]
	clear(recs)
	return recs
}

// getTemplate decodes a template to be filled: nil and a count for NULL, or
// an array of (type, value) where a value is nil and a length (NULL pValue),
// a capacity, or a nested template.
func (c *call) getTemplate(depth int) (unsafe.Pointer, []attr, uint64) {
	d := c.d
	if d.IsNil() {
		return nil, nil, d.Uint()
	}
	n := d.ArrayLen(wire.MaxTemplate)
	p := c.arena.alloc(uintptr(max(n, 1)) * attrSize)
	attrs := unsafe.Slice((*C.CK_ATTRIBUTE)(p), max(n, 1))
	recs := c.attrRecs(n)
	for i := 0; i < n && d.Ok(); i++ {
		at := &attrs[i]
		recs[i].a = at
		at._type = C.CK_ATTRIBUTE_TYPE(d.Uint())
		switch {
		case d.IsNil():
			at.pValue, at.ulValueLen = nil, C.CK_ULONG(d.Uint())
		case d.PeekArray():
			if depth >= wire.MaxNesting {
				d.Fail("templates nested too deep")
				break
			}
			q, nested, m := c.getTemplate(depth + 1)
			at.pValue, recs[i].nested = q, nested
			at.ulValueLen = C.CK_ULONG(m * attrSize)
			recs[i].cap = m * attrSize
		case d.PeekBytes():
			// A nested template's buffer, with the application's
			// contents: what the vendor leaves alone stays as it was.
			b := d.Bytes()
			recs[i].cap = uint64(len(b))
			q := c.arena.alloc(uintptr(max(len(b), 1)))
			copy(unsafe.Slice((*byte)(q), len(b)), b)
			at.pValue, at.ulValueLen = q, C.CK_ULONG(len(b))
		default:
			recs[i].cap = d.Uint()
			at.ulValueLen = C.CK_ULONG(clamp(recs[i].cap))
			at.pValue = ptr(c.outBuf(clamp(recs[i].cap)))
		}
		recs[i].given = at.ulValueLen
	}
	return p, recs, uint64(n)
}

func (c *call) mechanism() uintptr {
	d := c.d
	if d.IsNil() {
		return 0
	}
	m := (*C.CK_MECHANISM)(c.arena.alloc(C.sizeof_CK_MECHANISM))
	m.mechanism = C.CK_MECHANISM_TYPE(d.Uint())
	switch {
	case d.IsNil():
		m.pParameter, m.ulParameterLen = nil, C.CK_ULONG(d.Uint())
	case d.IsFalse():
		// A parameter the proxy cannot carry: the vendor is not called.
		c.uncarried = uint64(m.mechanism)
		c.hasUncarried = true
	case d.PeekArray():
		l := c.structure(uint64(m.mechanism), mechparams.LookupSize)
		if l == nil {
			return 0
		}
		p := mechparams.Build(d, l, c.arena.alloc)
		m.pParameter, m.ulParameterLen = p, C.CK_ULONG(l.Size)
		if hasOut(l) {
			c.outs = append(c.outs, out{kind: 'm', mech: l, param: p})
		}
	default:
		// Opaque bytes: a mechanism may take other forms than its
		// structures (an IV alone), which only its vendor judges.
		b := d.Bytes()
		m.pParameter = ptr(c.bytesArg(b))
		m.ulParameterLen = C.CK_ULONG(len(b))
	}
	return uintptr(unsafe.Pointer(m))
}

// messageParam decodes a message's parameter (kind M): the mechanism of
// the session's message-based operation, then the parameter as for a
// mechanism, laid out as that mechanism's per-message structure.
func (c *call) messageParam() (uintptr, uintptr) {
	d := c.d
	mech := d.Uint()
	switch {
	case d.IsNil():
		return 0, uintptr(d.Uint())
	case d.PeekArray():
		l := c.structure(mech, func(mech, _ uint64) (*mechparams.Layout, bool, bool) { return mechparams.MessageLookup(mech) })
		if l == nil {
			return 0, 0
		}
		p := mechparams.Build(d, l, c.arena.alloc)
		if hasOut(l) {
			c.outs = append(c.outs, out{kind: 'm', mech: l, param: p})
		}
		return uintptr(p), uintptr(l.Size)
	default:
		b := d.Bytes()
		l, _, _ := mechparams.MessageLookup(mech)
		misSized(l, b)
		return c.bytesArg(b), uintptr(len(b))
	}
}

// misSized clears the pointers of a message's parameter whose length is
// not its structure's size (b is the request frame's own copy): see
// mechparams.ClearPointers. Only message parameters: they are always the
// mechanism's per-message structure, while a mechanism's own parameter
// may legitimately take another form (CKM_AES_GCM given an IV alone).
func misSized(l *mechparams.Layout, b []byte) {
	if l != nil && uintptr(len(b)) != l.Size {
		mechparams.ClearPointers(l, b)
	}
}

// structure reads the head of a parameter structure, [size, fields], and
// returns the layout lookup gives mech for that size; nil (the decoder
// failed) when the registry has none of it.
func (c *call) structure(mech uint64, lookup func(mech, size uint64) (*mechparams.Layout, bool, bool)) *mechparams.Layout {
	d := c.d
	if d.ArrayLen(2) != 2 {
		d.Fail("a parameter structure is [size, fields]")
		return nil
	}
	size := d.Uint()
	l, _, _ := lookup(mech, size)
	if l == nil || uint64(l.Size) != size {
		d.Fail("a %d-byte parameter structure for mechanism 0x%x, which has no such layout", size, mech)
		return nil
	}
	return l
}

func hasOut(l *mechparams.Layout) bool {
	for _, f := range l.Fields {
		if f.Out {
			return true
		}
	}
	return false
}

func ulongAt(p uintptr) uint64 { return uint64(*(*C.CK_ULONG)(ptr(p))) }

// ptr turns an address of C memory back into a pointer.
func ptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

func (c *call) encodeOut(e *wire.Encoder, o *out, rv uint64) {
	ok := rv == C.CKR_OK
	switch o.kind {
	case 'Y':
		switch {
		case o.n == 0:
			e.Nil()
		case ulongAt(o.n) == o.given:
			e.Uint(o.cap) // untouched: the application's own value
		default:
			e.Uint(ulongAt(o.n))
		}
		if o.p != 0 && o.n != 0 && ok && ulongAt(o.n) <= clamp(o.cap) {
			c.putData(e, o.p, ulongAt(o.n))
		} else {
			e.Nil()
		}
	case 'G':
		if o.p != 0 && ok {
			c.putData(e, o.p, o.cap)
		} else {
			e.Nil()
		}
	case 'A':
		if o.none {
			e.Nil() // the proxy sent none either (NULL, or too large)
			return
		}
		c.encodeTemplate(e, o.tmpl, templateAnswered(rv))
	case 'L', 'K', 'F':
		count := uint64(0)
		switch {
		case o.n == 0:
			e.Nil()
		case o.kind != 'F' && ulongAt(o.n) == o.given:
			count = o.cap // untouched: the application's own value
			e.Uint(count)
		default:
			count = ulongAt(o.n)
			e.Uint(count)
		}
		if o.p != 0 && o.n != 0 && ok && count <= clamp(o.cap) {
			e.ArrayLen(int(count))
			for _, v := range unsafe.Slice((*C.CK_ULONG)(ptr(o.p)), count) {
				e.Uint(uint64(v))
			}
		} else {
			e.Nil()
		}
	case 'U', 'P', 'S', 'O':
		// A call that left the variable alone sends nil. A value goes back
		// when the vendor wrote one; a number (U, P) also with CKR_OK. A
		// handle (S, O) arrived as the vendor's own number for what the
		// application held (0: none), so an unchanged one is a variable
		// left alone: sent back, it would be mapped to a fresh number.
		if o.p != 0 && (ulongAt(o.p) != o.cap || (ok && (o.kind == 'U' || o.kind == 'P'))) {
			e.Uint(ulongAt(o.p))
		} else {
			e.Nil()
		}
	case 'i', 'j', 'k', 'e', 'q':
		// A failed call sends the structure only if the vendor wrote to it.
		var b []byte
		if o.p != 0 {
			b = unsafe.Slice((*byte)(ptr(o.p)), p11calls.InfoStructs[o.kind].Size)
		}
		if b != nil && (ok || !bytes.Equal(b, o.before)) {
			e.Bytes(b)
		} else {
			e.Nil()
		}
	case 'm':
		mechparams.EncodeOut(e, o.mech, o.param)
	case 'D':
		c.encodeAsyncData(e, o, rv)
	}
}

// templateAnswered: whether a C_GetAttributeValue that returned rv has
// answered every attribute of its template (PKCS#11 2.40 §5.7: these four
// codes). After another code the template holds what the vendor wrote, if
// anything.
func templateAnswered(rv uint64) bool {
	switch rv {
	case C.CKR_OK, C.CKR_ATTRIBUTE_SENSITIVE, C.CKR_ATTRIBUTE_TYPE_INVALID, C.CKR_BUFFER_TOO_SMALL:
		return true
	}
	return false
}

// encodeTemplate writes each attribute's ulValueLen and, where the vendor
// filled the application's buffer, the value: bytes, or a nested template.
// When the call did not answer the template (answered false), an attribute
// whose length the vendor left alone sends the application's own length
// and no value: a module loaded directly writes nothing there, and the
// proxy must not write the buffer it was told about, which may be smaller.
func (c *call) encodeTemplate(e *wire.Encoder, t []attr, answered bool) {
	e.ArrayLen(len(t))
	for _, a := range t {
		n := uint64(a.a.ulValueLen)
		untouched := !answered && a.nested == nil && a.a.ulValueLen == a.given
		if untouched && a.a.pValue != nil {
			n = a.cap // the vendor saw it clamped
		}
		e.Uint(uint64(a.a._type))
		e.Uint(n)
		switch {
		case untouched || a.a.pValue == nil || n == uint64(C.CK_UNAVAILABLE_INFORMATION):
			e.Nil()
		case a.nested != nil:
			c.encodeTemplate(e, a.nested, answered)
		case n <= clamp(a.cap):
			c.putData(e, uintptr(a.a.pValue), n)
		default:
			e.Nil()
		}
	}
}
