package mechparams

// The proxy's side of a crossing (walking the application's structure into
// a request, checking the vendor's outputs) runs in the C data plane,
// cshim/mechparams.c, on tables p11gen writes from this registry; this file
// is the host's side (Build, EncodeOut) and the wire format both follow.

import (
	"unsafe"

	"github.com/p11isolate/p11isolate/internal/wire"
)

// The request carries a structure as an array with one value per field:
//
//	Ulong, Handle, Byte  unsigned integer (an Out-only field: nil)
//	Inline               bytes (an Out-only field: nil)
//	Ptr                  nil for NULL; bytes; an Out-only buffer: its capacity
//	UlongPtr             nil for NULL, or the pointed-to value
//	UlongOrPtr           the value (a CK_ULONG), or [value] (a CK_ULONG_PTR)
//	CString              nil for NULL, or the bytes before the NUL
//	Struct               the nested structure's array
//	StructPtr            nil for NULL, or the nested structure's array
//	StructArray          nil for NULL, or an array of the elements' arrays
//	MechPtr              nil for NULL, or [type, ulParameterLen, parameter]
//	                     where parameter is nil, bytes, or a structure's array
//	UnionPtr             nil for NULL; for the case the selector's value
//	                     picks, the structure's array, or bytes
//	Template             nil for NULL, or an array of attributes, each
//	                     [type, value]: value is bytes, the ulValueLen of a
//	                     NULL pValue, or a nested template's attribute array
//	HandlePtr            nil for NULL, or 0: the handle does not cross in
//
// The reply carries an array with one value per Out field:
//
//	Ulong, Handle, Byte  unsigned integer
//	Inline               bytes
//	Ptr                  nil (nothing written), or the bytes written
//	UlongPtr             nil for NULL, or the value
//	HandlePtr            nil for NULL, or the vendor's handle
//	Struct               the nested structure's reply array
//	StructPtr            nil for NULL, or the nested structure's reply array
//	StructArray          nil for NULL, or an array of the elements' reply
//	                     arrays, as many as the request's

// Limits on what one parameter may carry; anything larger is refused.
const (
	maxBuffer  = wire.MaxFrame - 4096 // one buffer's length
	maxElems   = 1 << 16              // elements of a StructArray
	maxCString = 1 << 16              // bytes of a CString, NUL included
	// ptrFloor: a UlongOrPtr value below it is a length, at or above it a
	// pointer. No valid pointer is that low (Linux's mmap_min_addr), and
	// no password is that long.
	ptrFloor = 1 << 16
	// maxTemplate and maxNesting bound a Template as the wire bounds a
	// call's templates.
	maxTemplate = wire.MaxTemplate
	maxNesting  = wire.MaxNesting
)

func at[T any](base unsafe.Pointer, off uintptr) *T { return (*T)(unsafe.Add(base, off)) }

// scope is the enclosing structure, where Up lengths are read.
type scope struct {
	l *Layout
	p unsafe.Pointer
}

// length is the byte length (or element count) field f of the structure at
// p declares, read from memory: the application's on the proxy, the built
// structure on the host.
func length(l *Layout, f *Field, p unsafe.Pointer, up scope) uint64 {
	if f.Len == Fixed {
		return uint64(f.N)
	}
	src, sp := &l.Fields[f.Len], p
	if f.Up {
		src, sp = &up.l.Fields[up.l.index(f.lenName)], up.p
	}
	var v uint64
	switch src.Kind {
	case Ulong:
		v = uint64(*at[uint](sp, src.Off))
	case UlongPtr:
		if q := *at[unsafe.Pointer](sp, src.Off); q != nil {
			v = uint64(*(*uint)(q))
		}
	case UlongOrPtr:
		v = ulongOrPtr(sp, src.Off)
	}
	if f.Bits {
		v /= 8
	}
	return v
}

func ulongOrPtr(p unsafe.Pointer, off uintptr) uint64 {
	if v := uint64(*at[uint](p, off)); v < ptrFloor {
		return v
	}
	return uint64(*(*uint)(*at[unsafe.Pointer](p, off)))
}

// Build decodes a structure into memory from alloc, which returns zeroed
// memory that stays valid for the call, and returns the structure for the
// vendor. Input buffers point into the frame; buffers the vendor writes are
// fresh memory. Every length field is checked against the bytes that came
// with it, so the vendor never reads or writes past what was allocated.
//
// Before each structure it allocates a shadow: the pointer and length it
// set for each pointer field. EncodeOut reads those, never the pointers or
// lengths the vendor may have rewritten.
func Build(d *wire.Decoder, l *Layout, alloc func(n uintptr) unsafe.Pointer) unsafe.Pointer {
	b := builder{d: d, alloc: alloc}
	if !d.PeekArray() {
		d.Fail("%s: not a structure", l.Name)
		return nil
	}
	p := b.newStruct(l)
	if !b.structure(l, p, shadowOf(l, p), scope{}, 0) {
		d.Fail("%s: malformed", l.Name)
		return nil
	}
	return p
}

type builder struct {
	d     *wire.Decoder
	alloc func(n uintptr) unsafe.Pointer
}

// newStruct allocates a structure of layout l with its shadow before it.
func (b *builder) newStruct(l *Layout) unsafe.Pointer {
	return unsafe.Add(b.alloc(l.shadow+max(l.Size, 1)), l.shadow)
}

func shadowOf(l *Layout, p unsafe.Pointer) unsafe.Pointer { return unsafe.Add(p, -int(l.shadow)) }

// record is a pointer field's shadow record.
type record struct {
	p unsafe.Pointer
	n uint64 // a buffer's length, an array's count
}

func (b *builder) buffer(n uint64) unsafe.Pointer { return b.alloc(uintptr(max(n, 1))) }

func (b *builder) structure(l *Layout, p, sh unsafe.Pointer, up scope, depth int) bool {
	d := b.d
	if d.ArrayLen(len(l.Fields)) != len(l.Fields) || !d.Ok() {
		d.Fail("%s: wrong field count", l.Name)
		return false
	}
	for i := range l.Fields {
		f := &l.Fields[i]
		if !d.Ok() {
			return false
		}
		rec := at[record](sh, f.slot)
		if f.Only && f.Kind != Ptr && f.Kind != HandlePtr {
			if !d.IsNil() {
				d.Fail("%s.%s: an output-only field with a value", l.Name, f.Name)
			}
			continue
		}
		switch f.Kind {
		case Ulong, Handle:
			*at[uint](p, f.Off) = uint(d.Uint())
		case Byte:
			*at[byte](p, f.Off) = byte(d.UintMax(255, f.Name))
		case Inline:
			v := d.Bytes()
			if len(v) != f.N {
				d.Fail("%s.%s: %d bytes, want %d", l.Name, f.Name, len(v), f.N)
				return false
			}
			copy(unsafe.Slice(at[byte](p, f.Off), f.N), v)
		case Ptr:
			if d.IsNil() {
				continue
			}
			var n uint64
			switch {
			case f.Only:
				n = d.UintMax(maxBuffer, f.Name)
				if f.Len == Fixed && n != uint64(f.N) {
					// Refused before anything is allocated for it.
					d.Fail("%s.%s: a capacity of %d for a %d-byte buffer", l.Name, f.Name, n, f.N)
					return false
				}
				rec.p = b.buffer(n)
			default:
				v := d.Bytes()
				n = uint64(len(v))
				switch {
				case f.Out || n == 0:
					// The vendor writes here, or a non-NULL pointer to
					// nothing must stay non-NULL.
					rec.p = b.buffer(n)
					copy(unsafe.Slice((*byte)(rec.p), n), v)
				default:
					rec.p = unsafe.Pointer(unsafe.SliceData(v))
				}
			}
			rec.n = n
			*at[unsafe.Pointer](p, f.Off) = rec.p
		case UlongPtr:
			if d.IsNil() {
				continue
			}
			rec.p = b.buffer(8)
			*(*uint)(rec.p) = uint(d.Uint())
			*at[unsafe.Pointer](p, f.Off) = rec.p
		case UlongOrPtr:
			if !d.PeekArray() {
				*at[uint](p, f.Off) = uint(d.UintMax(ptrFloor-1, f.Name))
				continue
			}
			if d.ArrayLen(1) != 1 {
				d.Fail("%s.%s: want [value]", l.Name, f.Name)
				return false
			}
			rec.p = b.buffer(8)
			*(*uint)(rec.p) = uint(d.Uint())
			*at[unsafe.Pointer](p, f.Off) = rec.p
		case CString:
			if d.IsNil() {
				continue
			}
			v := d.Bytes()
			if len(v) >= maxCString || containsNUL(v) {
				d.Fail("%s.%s: not a C string", l.Name, f.Name)
				return false
			}
			rec.p, rec.n = b.buffer(uint64(len(v))+1), uint64(len(v))
			copy(unsafe.Slice((*byte)(rec.p), len(v)), v)
			*at[unsafe.Pointer](p, f.Off) = rec.p
		case Struct:
			if !b.structure(f.Sub, unsafe.Add(p, f.Off), unsafe.Pointer(rec), scope{l, p}, depth) {
				return false
			}
		case StructPtr:
			if d.IsNil() {
				continue
			}
			rec.p = b.newStruct(f.Sub)
			if !b.structure(f.Sub, rec.p, shadowOf(f.Sub, rec.p), scope{l, p}, depth) {
				return false
			}
			*at[unsafe.Pointer](p, f.Off) = rec.p
		case StructArray:
			if d.IsNil() {
				continue
			}
			n := d.ArrayLen(maxElems)
			if !d.Ok() {
				return false
			}
			s := f.Sub
			base := b.alloc(uintptr(n)*s.shadow + max(uintptr(n)*s.Size, 1))
			rec.p, rec.n = unsafe.Add(base, uintptr(n)*s.shadow), uint64(n)
			for j := uintptr(0); j < uintptr(n); j++ {
				if !b.structure(s, unsafe.Add(rec.p, j*s.Size), unsafe.Add(base, j*s.shadow), scope{}, depth) {
					return false
				}
			}
			*at[unsafe.Pointer](p, f.Off) = rec.p
		case MechPtr:
			rec.p = b.mechanism(depth + 1)
			*at[unsafe.Pointer](p, f.Off) = rec.p
		case UnionPtr:
			if d.IsNil() {
				continue
			}
			// The selector is an earlier field, already built.
			sel := uint64(*at[uint](p, l.Fields[f.Sel].Off))
			c, ok := f.Case(sel)
			if !ok {
				d.Fail("%s.%s: no layout for %s %d", l.Name, f.Name, l.Fields[f.Sel].Name, sel)
				return false
			}
			if c.Sub == nil {
				rec.p, rec.n = b.input(d.Bytes())
			} else {
				if !d.PeekArray() {
					d.Fail("%s.%s: %s %d wants a structure", l.Name, f.Name, l.Fields[f.Sel].Name, sel)
					return false
				}
				rec.p, rec.n = b.newStruct(c.Sub), uint64(c.Sub.Size)
				if !b.structure(c.Sub, rec.p, shadowOf(c.Sub, rec.p), scope{l, p}, depth) {
					return false
				}
			}
			*at[unsafe.Pointer](p, f.Off) = rec.p
		case Template:
			if d.IsNil() {
				continue
			}
			var n uint64
			if rec.p, n = b.template(l.Name+"."+f.Name, 0); rec.p == nil {
				return false
			}
			rec.n = n
			*at[unsafe.Pointer](p, f.Off) = rec.p
		case HandlePtr:
			if d.IsNil() {
				continue
			}
			d.UintMax(0, f.Name)
			rec.p = b.buffer(8)
			*at[unsafe.Pointer](p, f.Off) = rec.p
		}
	}
	if !d.Ok() {
		return false
	}
	return b.check(l, p, sh, up)
}

// input places an input buffer: a view into the frame, or fresh memory for
// an empty one (a non-NULL pointer to nothing must stay non-NULL).
func (b *builder) input(v []byte) (unsafe.Pointer, uint64) {
	if len(v) == 0 {
		return b.buffer(0), 0
	}
	return unsafe.Pointer(unsafe.SliceData(v)), uint64(len(v))
}

// template builds an attribute template (CK_ATTRIBUTE array) and returns it
// with its count; nil after a failure. Values are input bytes in the
// frame; a nested template (CKA_WRAP_TEMPLATE and its kin) is built in
// turn, and its ulValueLen is its size in bytes.
func (b *builder) template(what string, depth int) (unsafe.Pointer, uint64) {
	d, a := b.d, attribute
	n := d.ArrayLen(maxTemplate)
	if !d.Ok() {
		return nil, 0
	}
	t := b.alloc(max(uintptr(n)*a.Size, 1))
	for i := range uintptr(n) {
		e := unsafe.Add(t, i*a.Size)
		if d.ArrayLen(2) != 2 || !d.Ok() {
			d.Fail("%s: attribute %d: want [type, value]", what, i)
			return nil, 0
		}
		*at[uint](e, a.Fields[0].Off) = uint(d.Uint())
		value, length := at[unsafe.Pointer](e, a.Fields[1].Off), at[uint](e, a.Fields[2].Off)
		switch {
		case d.PeekArray():
			if depth >= maxNesting {
				d.Fail("%s: templates nested deeper than %d", what, maxNesting)
				return nil, 0
			}
			q, m := b.template(what, depth+1)
			if q == nil {
				return nil, 0
			}
			*value, *length = q, uint(m*uint64(a.Size))
		case d.PeekBytes():
			q, m := b.input(d.Bytes())
			*value, *length = q, uint(m)
		default:
			// A NULL pValue: only its length crosses.
			*length = uint(d.Uint())
		}
		if !d.Ok() {
			return nil, 0
		}
	}
	return t, uint64(n)
}

// check compares each buffer's and array's declared length with what was
// built for it.
func (b *builder) check(l *Layout, p, sh unsafe.Pointer, up scope) bool {
	for i := range l.Fields {
		f := &l.Fields[i]
		if f.Kind != Ptr && f.Kind != StructArray && f.Kind != UnionPtr && f.Kind != Template {
			continue
		}
		rec := at[record](sh, f.slot)
		if rec.p == nil {
			continue
		}
		if n := length(l, f, p, up); n != rec.n {
			b.d.Fail("%s.%s: %d bytes (or elements) for a declared %d", l.Name, f.Name, rec.n, n)
			return false
		}
	}
	return true
}

func containsNUL(b []byte) bool {
	for _, c := range b {
		if c == 0 {
			return true
		}
	}
	return false
}

// mechanism builds a nested CK_MECHANISM.
func (b *builder) mechanism(depth int) unsafe.Pointer {
	d := b.d
	if d.IsNil() {
		return nil
	}
	if depth > wire.MaxNesting || d.ArrayLen(3) != 3 {
		d.Fail("nested mechanism: too deep or malformed")
		return nil
	}
	f := mechanism.Fields
	m := b.alloc(mechanism.Size)
	typ := d.Uint()
	n := d.Uint()
	*at[uint](m, f[0].Off) = uint(typ)
	*at[uint](m, f[2].Off) = uint(n)
	param := at[unsafe.Pointer](m, f[1].Off)
	switch {
	case d.IsNil():
	case d.PeekArray():
		l, _, _ := LookupSize(typ, n)
		if l == nil || uint64(l.Size) != n || l.outs > 0 {
			d.Fail("nested mechanism 0x%x: no structure of %d bytes", typ, n)
			return nil
		}
		q := b.newStruct(l)
		if !b.structure(l, q, shadowOf(l, q), scope{}, depth) {
			return nil
		}
		*param = q
	default:
		v := d.Bytes()
		if uint64(len(v)) != n {
			d.Fail("nested mechanism 0x%x: %d bytes for a declared %d", typ, len(v), n)
			return nil
		}
		if n == 0 {
			*param = b.buffer(0)
		} else {
			*param = unsafe.Pointer(unsafe.SliceData(v))
		}
	}
	return m
}

// EncodeOut writes the Out fields of the host's structure at p (from Build)
// after the call. Pointers and capacities come from the shadow; a buffer
// the vendor reports longer than its capacity, or an output-only buffer
// still all zeros (untouched), crosses as nil.
func EncodeOut(e *wire.Encoder, l *Layout, p unsafe.Pointer) {
	encodeOut(e, l, p, shadowOf(l, p))
}

func encodeOut(e *wire.Encoder, l *Layout, p, sh unsafe.Pointer) {
	e.ArrayLen(l.outs)
	for i := range l.Fields {
		f := &l.Fields[i]
		if !f.Out {
			continue
		}
		rec := at[record](sh, f.slot)
		switch f.Kind {
		case Ulong, Handle:
			e.Uint(uint64(*at[uint](p, f.Off)))
		case Byte:
			e.Uint(uint64(*at[byte](p, f.Off)))
		case Inline:
			e.Bytes(unsafe.Slice(at[byte](p, f.Off), f.N))
		case Ptr:
			if rec.p == nil {
				e.Nil()
				continue
			}
			n := rec.n
			if src := f.outLen(l); src != nil {
				switch src.Kind {
				case Ulong:
					n = uint64(*at[uint](p, src.Off))
				case UlongPtr:
					q := at[record](sh, src.slot).p
					if q == nil {
						e.Nil()
						continue
					}
					n = uint64(*(*uint)(q))
				}
				if n > rec.n {
					e.Nil()
					continue
				}
			}
			v := unsafe.Slice((*byte)(rec.p), n)
			if f.Only && allZero(v) {
				e.Nil()
				continue
			}
			e.Bytes(v)
		case UlongPtr, HandlePtr:
			if rec.p == nil {
				e.Nil()
			} else {
				e.Uint(uint64(*(*uint)(rec.p)))
			}
		case StructArray:
			if rec.p == nil {
				e.Nil()
				continue
			}
			// Build put the elements' shadows before the elements, in
			// order.
			s, n := f.Sub, uintptr(rec.n)
			base := unsafe.Add(rec.p, -int(n*s.shadow))
			e.ArrayLen(int(n))
			for j := range n {
				encodeOut(e, s, unsafe.Add(rec.p, j*s.Size), unsafe.Add(base, j*s.shadow))
			}
		case Struct:
			encodeOut(e, f.Sub, unsafe.Add(p, f.Off), unsafe.Pointer(rec))
		case StructPtr:
			if rec.p == nil {
				e.Nil()
			} else {
				encodeOut(e, f.Sub, rec.p, shadowOf(f.Sub, rec.p))
			}
		}
	}
}

// outLen is the field of l holding f's length when the vendor writes that
// length (the usual output convention), nil otherwise.
func (f *Field) outLen(l *Layout) *Field {
	if f.Kind != Ptr || f.Len == Fixed || f.Up || !l.Fields[f.Len].Out {
		return nil
	}
	return &l.Fields[f.Len]
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ClearPointers zeroes, in b, the pointer fields of a structure of layout
// l that lie wholly inside it (nested structures too). A parameter whose
// length is not its structure's size crosses as opaque bytes for the
// vendor to judge; its pointers are the application's addresses, which in
// the host could only lead the vendor into the host's own memory: cleared,
// a vendor that ignores the length reads NULL pointers instead of
// producing output from whatever the host holds there.
func ClearPointers(l *Layout, b []byte) {
	for i := range l.Fields {
		f := &l.Fields[i]
		switch f.Kind {
		case Ulong, Handle, Byte, Inline:
		case Struct:
			if f.Off < uintptr(len(b)) {
				ClearPointers(f.Sub, b[f.Off:])
			}
		default: // every other kind is a pointer
			if f.Off+8 <= uintptr(len(b)) {
				clear(b[f.Off : f.Off+8])
			}
		}
	}
}
