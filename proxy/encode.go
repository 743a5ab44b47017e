package main

/*
#include "../cshim/shim.h"
*/
import "C"

import (
	"errors"
	"sync"
	"unsafe"

	"github.com/p11isolate/p11isolate/internal/ckr"
	"github.com/p11isolate/p11isolate/internal/mechparams"
	"github.com/p11isolate/p11isolate/internal/p11calls"
	"github.com/p11isolate/p11isolate/internal/wire"
)

const (
	attrSize = C.sizeof_CK_ATTRIBUTE
	// unavailable is CK_UNAVAILABLE_INFORMATION.
	unavailable = ^uint64(0)
)

func ulongAt(p uintptr) uint64           { return uint64(*(*C.CK_ULONG)(ptr(p))) }
func bytesAt(p uintptr, n uint64) []byte { return unsafe.Slice((*byte)(ptr(p)), n) }

// plausible reports whether [p, p+n) can be application memory at all: not
// in the first page and not past any user address space. The proxy reads
// an output variable's current value (the vendor starts from the
// application's bytes) only through plausible pointers: a conformance
// suite's (CK_VOID_PTR)1 is never read, and the vendor gets zeros, so a
// call that fails before touching the output fails through the proxy too,
// instead of faulting in it. Telling every unmapped pointer apart would
// take a system call per output (~1.6 µs here).
func plausible(p uintptr, n uint64) bool {
	return p >= 4096 && uint64(p)+n >= uint64(p) && uint64(p)+n <= 1<<56
}

// prefill is an output variable's current value, or 0 behind a pointer
// that cannot be read.
func prefill(p uintptr) uint64 {
	if !plausible(p, 8) {
		return 0
	}
	return ulongAt(p)
}

// zeros stands in for an output structure behind a pointer that cannot be read.
var zeros [256]byte

func isNested(t uint64) bool {
	return t == C.CKA_WRAP_TEMPLATE || t == C.CKA_UNWRAP_TEMPLATE || t == C.CKA_DERIVE_TEMPLATE
}

// nestedCount says whether an attribute's value crosses as a nested template
// and how many attributes it holds: only the template-valued types, and only
// when the length is a whole number of CK_ATTRIBUTEs.
func nestedCount(t uint64, p unsafe.Pointer, n uint64) (uint64, bool) {
	if !isNested(t) || p == nil {
		return 0, false
	}
	// A length that is not a whole number of CK_ATTRIBUTEs still holds
	// n/sizeof(CK_ATTRIBUTE) of them, as the vendor would read it; the
	// array must never cross as raw bytes (it holds the application's
	// pointers).
	return n / attrSize, true
}

// maxPrefill bounds the nested value buffers whose contents cross with a
// C_GetAttributeValue request.
const maxPrefill = 64 << 10

func (h *host) toVendor(v uint64) (uint64, bool) { return handles.toVendor(h.gen, v), true }

func (h *host) toApp(v uint64) uint64 { return handles.toApp(h.gen, v) }

// encodeRequest encodes the call f(a...). bad is true when the proxy must
// answer by itself with r: a handle of a dead host, or a mechanism parameter
// the registry cannot carry.
func (ch *channel) encodeRequest(h *host, f p11calls.Func, a []uintptr) (r rv, bad bool) {
	e := ch.enc
	e.Reset()
	ch.region.Reset()
	e.Uint(uint64(f.ID))
	ch.caps = ch.caps[:0]
	ch.outMech = ch.outMech[:0]
	afterMech := false
	for i := 0; i < len(f.Args); i++ {
		k := f.Args[i]
		switch k {
		case 'u', 'b', 'l':
			e.Uint(uint64(a[0]))
		case 's':
			v, ok := h.toVendor(uint64(a[0]))
			if !ok {
				return C.CKR_SESSION_HANDLE_INVALID, true
			}
			e.Uint(v)
		case 'o':
			v, ok := h.toVendor(uint64(a[0]))
			if !ok {
				if afterMech {
					return C.CKR_KEY_HANDLE_INVALID, true
				}
				return C.CKR_OBJECT_HANDLE_INVALID, true
			}
			e.Uint(v)
		case 'y':
			if a[0] == 0 {
				e.Nil()
				e.Uint(uint64(a[1]))
			} else if f.CarriesSecret() {
				// A PIN stays in the frame, which is wiped after sending.
				e.Bytes(bytesAt(a[0], uint64(a[1])))
			} else {
				e.Data(bytesAt(a[0], uint64(a[1])))
			}
		case 'z':
			if a[0] == 0 {
				e.Nil()
			} else {
				e.Bytes(bytesAt(a[0], 32))
			}
		case 'x':
			e.Bool(a[0] != 0)
		case 'n':
		case 'I':
			ch.encodeInit(a[0])
		case 'a':
			if !ch.encodeTemplate(h, ptr(a[0]), uint64(a[1]), 0) {
				return C.CKR_ATTRIBUTE_VALUE_INVALID, true
			}
		case 'm':
			afterMech = true
			if r, bad := ch.encodeMechanism(h, f, a[0]); bad {
				return r, true
			}
		case 'Y':
			if a[1] == 0 {
				e.Nil()
				ch.caps = append(ch.caps, 0)
			} else {
				c := prefill(a[1])
				e.Uint(c)
				ch.caps = append(ch.caps, c)
			}
			e.Bool(a[0] != 0)
		case 'G':
			if uint64(a[1]) > wire.MaxBuffer {
				logs.printf("%s: %d bytes asked for, more than one call carries (%d)", f.Name, a[1], wire.MaxBuffer)
				return C.CKR_HOST_MEMORY, true
			}
			e.Bool(a[0] != 0)
			e.Uint(uint64(a[1]))
		case 'A':
			ch.encodeGetTemplate(ptr(a[0]), uint64(a[1]), 0)
		case 'L', 'K':
			e.Bool(a[0] != 0)
			if a[1] == 0 {
				e.Nil()
				ch.caps = append(ch.caps, 0)
			} else {
				c := prefill(a[1])
				e.Uint(c)
				ch.caps = append(ch.caps, c)
			}
		case 'F':
			e.Bool(a[0] != 0)
			e.Uint(uint64(a[1]))
			ch.encodeOutUlong(a[2])
		case 'U', 'P', 'S', 'O':
			ch.encodeOutUlong(a[0])
		default: // i j k e q: output structures
			// The vendor fills in the application's own bytes: some
			// (SoftHSM2's C_GetMechanismInfo) OR flags into them.
			size := uint64(p11calls.InfoStructs[k].Size)
			switch {
			case a[0] == 0:
				e.Nil()
			case plausible(a[0], size):
				e.Bytes(bytesAt(a[0], size))
			default:
				e.Bytes(zeros[:size])
			}
		}
		a = a[len(p11calls.CTypes[k]):]
	}
	if err := e.Err(); err != nil {
		logs.printf("%s: encoding: %v", f.Name, err)
		return C.CKR_GENERAL_ERROR, true
	}
	if e.Len() > wire.MaxFrame {
		logs.printf("%s: the call carries %d bytes, more than the %d-byte frame cap", f.Name, e.Len(), wire.MaxFrame)
		return C.CKR_HOST_MEMORY, true
	}
	return C.CKR_OK, false
}

// encodeOutUlong sends an output CK_ULONG's current value, so the vendor
// starts from what the application's variable holds and a call that leaves
// it alone leaves it alone through the proxy too.
func (ch *channel) encodeOutUlong(p uintptr) {
	if p == 0 {
		ch.enc.Nil()
	} else {
		ch.enc.Uint(prefill(p))
	}
}

func (ch *channel) encodeInit(p uintptr) {
	e := ch.enc
	if p == 0 {
		e.Nil()
		return
	}
	// initialize() resolved what crosses; this is the replay of px.init.
	args := (*C.CK_C_INITIALIZE_ARGS)(ptr(p))
	e.ArrayLen(3)
	e.Uint(uint64(args.flags))
	var mask uint64
	for i, set := range []bool{args.CreateMutex != nil, args.DestroyMutex != nil, args.LockMutex != nil, args.UnlockMutex != nil} {
		if set {
			mask |= 1 << i
		}
	}
	e.Uint(mask)
	if args.pReserved == nil {
		e.Nil()
	} else {
		e.String(C.GoString((*C.char)(args.pReserved)))
	}
}

// encodeTemplate encodes an input template. It returns false for a template
// nested too deep to be anything but a mistake.
func (ch *channel) encodeTemplate(h *host, p unsafe.Pointer, n uint64, depth int) bool {
	e := ch.enc
	if p == nil {
		e.Nil()
		e.Uint(n)
		return true
	}
	if depth > wire.MaxNesting || n > wire.MaxTemplate {
		return false
	}
	e.ArrayLen(int(n))
	for _, at := range unsafe.Slice((*C.CK_ATTRIBUTE)(p), n) {
		t := uint64(at._type)
		e.Uint(t)
		switch m, nested := nestedCount(t, at.pValue, uint64(at.ulValueLen)); {
		case at.pValue == nil:
			e.Nil()
			e.Uint(uint64(at.ulValueLen))
		case nested:
			if !ch.encodeTemplate(h, at.pValue, m, depth+1) {
				return false
			}
		default:
			e.Data(unsafe.Slice((*byte)(at.pValue), at.ulValueLen))
		}
	}
	return true
}

// encodeGetTemplate encodes a template to be filled: for each attribute its
// type and either NULL with the length, the capacity, or a nested template.
func (ch *channel) encodeGetTemplate(p unsafe.Pointer, n uint64, depth int) {
	e := ch.enc
	if p == nil || depth > wire.MaxNesting || n > wire.MaxTemplate {
		e.Nil()
		e.Uint(n)
		return
	}
	e.ArrayLen(int(n))
	for _, at := range unsafe.Slice((*C.CK_ATTRIBUTE)(p), n) {
		t := uint64(at._type)
		e.Uint(t)
		switch m, nested := nestedCount(t, at.pValue, uint64(at.ulValueLen)); {
		case at.pValue == nil:
			e.Nil()
			e.Uint(uint64(at.ulValueLen))
		case nested:
			ch.encodeGetTemplate(at.pValue, m, depth+1)
		case depth > 0 && uint64(at.ulValueLen) <= maxPrefill:
			// Inside a nested template the vendor may leave a buffer
			// alone; its contents cross so that it stays as it was.
			e.Bytes(unsafe.Slice((*byte)(at.pValue), at.ulValueLen))
		default:
			e.Uint(uint64(at.ulValueLen))
		}
	}
}

func (ch *channel) encodeMechanism(h *host, f p11calls.Func, p uintptr) (rv, bool) {
	e := ch.enc
	if p == 0 {
		e.Nil()
		ch.outMech = append(ch.outMech, false)
		return C.CKR_OK, false
	}
	m := (*C.CK_MECHANISM)(ptr(p))
	typ := uint64(m.mechanism)
	e.Uint(typ)
	if m.pParameter == nil {
		e.Nil()
		e.Uint(uint64(m.ulParameterLen))
		ch.outMech = append(ch.outMech, false)
		return C.CKR_OK, false
	}
	l, raw, ok := mechparams.Lookup(typ)
	switch {
	case !ok:
		// The structure is unknown, so its pointers cannot cross. The host
		// asks the vendor whether it knows the mechanism at all: the
		// answer is the vendor's CKR_MECHANISM_INVALID, or
		// CKR_MECHANISM_PARAM_INVALID from p11isolate.
		logUncarriable(f.Name, typ)
		e.Bool(false)
		ch.outMech = append(ch.outMech, false)
	case raw || uint64(m.ulParameterLen) != uint64(l.Size):
		// Opaque bytes; or a structure of the wrong size, which the vendor
		// will refuse as it would refuse it directly.
		e.Bytes(unsafe.Slice((*byte)(m.pParameter), m.ulParameterLen))
		ch.outMech = append(ch.outMech, false)
	default:
		switch err := mechparams.Encode(e, l, m.pParameter, h.toVendor); {
		case errors.Is(err, mechparams.ErrHandle):
			return C.CKR_KEY_HANDLE_INVALID, true
		case err != nil:
			logs.printf("%s: the parameter of mechanism 0x%x cannot be carried (%v): refusing it with CKR_MECHANISM_PARAM_INVALID", f.Name, typ, err)
			return C.CKR_MECHANISM_PARAM_INVALID, true
		}
		ch.outMech = append(ch.outMech, hasOut(l))
	}
	return C.CKR_OK, false
}

var uncarriable sync.Map // mechanism types already logged

// logUncarriable logs, once per mechanism, that its parameter cannot cross.
func logUncarriable(fn string, typ uint64) {
	if _, seen := uncarriable.LoadOrStore(typ, true); !seen {
		logs.printf("%s: mechanism 0x%x takes a parameter p11isolate does not know how to carry: calls with it get CKR_MECHANISM_PARAM_INVALID (or the vendor's CKR_MECHANISM_INVALID)", fn, typ)
	}
}

func hasOut(l *mechparams.Layout) bool {
	for _, f := range l.Fields {
		if f.Out {
			return true
		}
	}
	return false
}

// decodeReply checks the reply to f(a...) and writes its outputs into the
// application's memory. The whole reply is checked first, against what the
// application declared, and only then written (ch.plan): a reply that fails
// any check leaves the application's memory as it was, and the error makes
// the caller treat the host as broken. Beyond the frame's own consistency,
// with CKR_OK no length or count may exceed the capacity the application
// gave: it would read or copy past its own buffer.
//
// Output bytes may come as references into the channel's shared region
// (Data): the reference's offset and length are in the frame and checked
// like inline bytes; from the region itself only the data bytes are read,
// by the copy into the application's buffer, so a host that rewrites the
// region mid-copy changes data it could have sent anyway, never a length.
func (ch *channel) decodeReply(h *host, f p11calls.Func, a []uintptr, body []byte) (rv, error) {
	d := ch.dec
	d.Reset(body)
	plan := &ch.plan
	plan.Reset()
	r := d.Uint()
	ok := r == C.CKR_OK
	caps := ch.caps
	mechs := ch.outMech
	for i := 0; i < len(f.Args) && d.Ok(); i++ {
		k := f.Args[i]
		switch k {
		case 'm':
			out := mechs[0]
			mechs = mechs[1:]
			if out && a[0] != 0 {
				m := (*C.CK_MECHANISM)(ptr(a[0]))
				l, _, _ := mechparams.Lookup(uint64(m.mechanism))
				mechparams.DecodeOut(d, l, m.pParameter, ok, plan)
			}
		case 'Y':
			c := caps[0]
			caps = caps[1:]
			n := nilOrUint(d, a[1] != 0, "length")
			if d.IsNil() {
				// No bytes: the vendor wrote none, or claimed more than
				// fit (an honest host sends the bytes of every
				// successful call that had a buffer).
				if ok && a[0] != 0 && a[1] != 0 {
					d.Fail("CKR_OK with %d bytes of output for a buffer of %d", n, c)
				}
			} else {
				b := d.Data()
				if a[0] == 0 || a[1] == 0 || !ok || uint64(len(b)) != n || n > c {
					d.Fail("%d output bytes (length %d) for a buffer of %d", len(b), n, c)
					break
				}
				plan.Copy(ptr(a[0]), b)
			}
			if a[1] != 0 {
				plan.Ulong(ptr(a[1]), n)
			}
		case 'G':
			if !d.IsNil() {
				b := d.Data()
				if a[0] == 0 || !ok || uint64(len(b)) != uint64(a[1]) {
					d.Fail("%d random bytes for a request of %d", len(b), a[1])
					break
				}
				plan.Copy(ptr(a[0]), b)
			}
		case 'A':
			ch.decodeTemplate(ptr(a[0]), uint64(a[1]), 0, ok)
		case 'L', 'K', 'F':
			ch.decodeList(h, k, a, &caps, ok)
		case 'U', 'P', 'S', 'O':
			// nil: the vendor left the variable as it was.
			if d.IsNil() {
				break
			}
			v := d.Uint()
			if a[0] == 0 {
				d.Fail("a value for a NULL pointer")
				break
			}
			if k == 'S' || k == 'O' {
				plan.Handle(ptr(a[0]), v)
			} else {
				plan.Ulong(ptr(a[0]), v)
			}
		case 'i', 'j', 'k', 'e', 'q':
			if d.IsNil() {
				if a[0] != 0 && ok {
					d.Fail("no structure for a successful call")
				}
				break
			}
			b := d.Bytes()
			size := p11calls.InfoStructs[k].Size
			if a[0] == 0 || len(b) != size {
				d.Fail("a %d-byte structure where %d fit", len(b), size)
				break
			}
			plan.Copy(ptr(a[0]), b)
		}
		a = a[len(p11calls.CTypes[k]):]
	}
	if err := d.Finish(); err != nil {
		plan.Reset()
		return C.CKR_DEVICE_ERROR, err
	}
	plan.Apply(h.toApp)
	if !ckr.Defined(r) {
		logs.printf("%s: the vendor module %s returned 0x%x, a code no PKCS#11 version defines: returning CKR_GENERAL_ERROR", f.Name, h.module, r)
		r = C.CKR_GENERAL_ERROR
	}
	return r, nil
}

// decodeList checks a slot, mechanism or object handle list (kinds L, K,
// F) and its count. With CKR_OK the count is at most the room the
// application gave (C_FindObjects: its maximum, even without a list). With
// an error the count is the room the vendor needs (CKR_BUFFER_TOO_SMALL) or
// whatever the variable held: a failed call may leave it alone.
func (ch *channel) decodeList(h *host, k byte, a []uintptr, caps *[]uint64, ok bool) {
	d := ch.dec
	var c uint64
	countp := a[1]
	if k == 'F' {
		c, countp = uint64(a[1]), a[2]
	} else {
		c = (*caps)[0]
		*caps = (*caps)[1:]
	}
	n := nilOrUint(d, countp != 0, "count")
	if !d.Ok() {
		return
	}
	if k == 'F' && countp != 0 && ok && n > c {
		d.Fail("CKR_OK with a count of %d objects for room for %d", n, c)
		return
	}
	if countp != 0 {
		ch.plan.Ulong(ptr(countp), n)
	}
	if d.IsNil() {
		if a[0] != 0 && countp != 0 && ok {
			d.Fail("CKR_OK with a count of %d and no list, for room for %d", n, c)
		}
		return
	}
	items := d.ArrayLen(wire.MaxFrame / 8)
	if a[0] == 0 || !ok || uint64(items) != n || n > c {
		d.Fail("a list of %d (count %d) for room for %d", items, n, c)
		return
	}
	list := unsafe.Slice((*C.CK_ULONG)(ptr(a[0])), n)
	for j := range list {
		v := d.Uint()
		if k == 'F' {
			ch.plan.Handle(unsafe.Pointer(&list[j]), v)
		} else {
			ch.plan.Ulong(unsafe.Pointer(&list[j]), v)
		}
	}
}

// nilOrUint reads an optional unsigned value that must be present exactly
// when want is true.
func nilOrUint(d *wire.Decoder, want bool, what string) uint64 {
	if d.IsNil() {
		if want {
			d.Fail("missing %s", what)
		}
		return 0
	}
	v := d.Uint()
	if !want {
		d.Fail("a %s for a NULL pointer", what)
	}
	return v
}

// decodeTemplate checks each attribute's length and value against the
// application's template and queues them. For an attribute with a buffer,
// a length beyond its capacity is, with CKR_OK, a lie (the reply is
// refused); with an error it is what the spec makes it: the attribute's
// ulValueLen is CK_UNAVAILABLE_INFORMATION (CKR_BUFFER_TOO_SMALL,
// CKR_ATTRIBUTE_SENSITIVE), whatever number the vendor wrote.
func (ch *channel) decodeTemplate(p unsafe.Pointer, n uint64, depth int, ok bool) {
	d := ch.dec
	if p == nil || depth > wire.MaxNesting || n > wire.MaxTemplate {
		if !d.IsNil() {
			d.Fail("a template where the application gave none")
		}
		return
	}
	if got := d.ArrayLen(wire.MaxTemplate); uint64(got) != n {
		d.Fail("%d attributes for a template of %d", got, n)
		return
	}
	for i := range unsafe.Slice((*C.CK_ATTRIBUTE)(p), n) {
		at := &unsafe.Slice((*C.CK_ATTRIBUTE)(p), n)[i]
		capacity := uint64(at.ulValueLen)
		m, nested := nestedCount(uint64(at._type), at.pValue, capacity)
		// The vendor fills in the types of a nested template's
		// attributes; at the top level they are the application's own.
		typ := d.Uint()
		if depth == 0 && typ != uint64(at._type) {
			d.Fail("attribute 0x%x came back as 0x%x", uint64(at._type), typ)
			return
		}
		length := d.Uint()
		if !d.Ok() {
			return
		}
		switch {
		case d.IsNil():
			if at.pValue != nil && length > capacity && length != unavailable {
				if ok {
					d.Fail("CKR_OK with attribute 0x%x of %d bytes for a buffer of %d", typ, length, capacity)
					return
				}
				length = unavailable
			} else if at.pValue != nil && ok && length > capacity {
				d.Fail("CKR_OK with attribute 0x%x unavailable (CK_UNAVAILABLE_INFORMATION) for a buffer of %d", typ, capacity)
				return
			}
		case d.PeekArray():
			if !nested {
				d.Fail("a nested template for a plain attribute")
				return
			}
			if length > capacity {
				d.Fail("attribute 0x%x: a nested template of %d bytes for room for %d", typ, length, capacity)
				return
			}
			ch.decodeTemplate(at.pValue, m, depth+1, ok)
		default:
			b := d.Data()
			if at.pValue == nil || nested || uint64(len(b)) != length || length > capacity {
				d.Fail("attribute 0x%x: %d bytes (length %d) for a buffer of %d", typ, len(b), length, capacity)
				return
			}
			ch.plan.Copy(at.pValue, b)
		}
		if !d.Ok() {
			return
		}
		ch.plan.Ulong(unsafe.Pointer(&at._type), typ)
		ch.plan.Ulong(unsafe.Pointer(&at.ulValueLen), length)
	}
}
