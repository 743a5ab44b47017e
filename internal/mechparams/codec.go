package mechparams

import (
	"errors"
	"unsafe"

	"github.com/p11isolate/p11isolate/internal/outplan"
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
//
// The reply carries an array with one value per Out field:
//
//	Ulong, Handle, Byte  unsigned integer
//	Inline               bytes
//	Ptr                  nil (nothing written), or the bytes written
//	UlongPtr             nil for NULL, or the value
//	Struct               the nested structure's reply array
//	StructPtr            nil for NULL, or the nested structure's reply array

// Limits on what one parameter may carry; anything larger is refused.
const (
	maxBuffer  = wire.MaxFrame - 4096 // one buffer's length
	maxElems   = 1 << 16              // elements of a StructArray
	maxCString = 1 << 16              // bytes of a CString, NUL included
	// ptrFloor: a UlongOrPtr value below it is a length, at or above it a
	// pointer. No valid pointer is that low (Linux's mmap_min_addr), and
	// no password is that long.
	ptrFloor = 1 << 16
)

// Errors of EncodeParam.
var (
	// ErrHandle: a handle field names an object of a dead host.
	ErrHandle = errors.New("mechanism parameter names a handle of a dead host")
	// ErrParam: the parameter cannot be carried (a nested mechanism the
	// registry does not know, nesting too deep, a length past the limits).
	ErrParam = errors.New("mechanism parameter cannot be carried")
)

func at[T any](base unsafe.Pointer, off uintptr) *T { return (*T)(unsafe.Add(base, off)) }

// HandleMap translates an object handle between the application's and the
// vendor's numbering; ok is false for a handle that is no longer valid.
type HandleMap func(h uint64) (uint64, bool)

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

// Encode writes the structure at p (l.Size bytes of the application's
// memory), following every pointer. A refusal says why: ErrHandle (answer
// CKR_KEY_HANDLE_INVALID) or ErrParam (CKR_MECHANISM_PARAM_INVALID). After
// an error the encoder holds a partial message.
func Encode(e *wire.Encoder, l *Layout, p unsafe.Pointer, toVendor HandleMap) error {
	c := encoder{e: e, toVendor: toVendor}
	return c.structure(l, p, scope{}, 0)
}

type encoder struct {
	e        *wire.Encoder
	toVendor HandleMap
}

func (c *encoder) structure(l *Layout, p unsafe.Pointer, up scope, depth int) error {
	e := c.e
	e.ArrayLen(len(l.Fields))
	for i := range l.Fields {
		f := &l.Fields[i]
		if f.Only && f.Kind != Ptr {
			e.Nil()
			continue
		}
		var q unsafe.Pointer
		if f.Kind >= Ptr && f.Kind != Struct {
			q = *at[unsafe.Pointer](p, f.Off)
		}
		switch f.Kind {
		case Ulong:
			e.Uint(uint64(*at[uint](p, f.Off)))
		case Handle:
			h, ok := c.toVendor(uint64(*at[uint](p, f.Off)))
			if !ok {
				return ErrHandle
			}
			e.Uint(h)
		case Byte:
			e.Uint(uint64(*at[byte](p, f.Off)))
		case Inline:
			e.Bytes(unsafe.Slice(at[byte](p, f.Off), f.N))
		case Ptr:
			if q == nil {
				e.Nil()
				continue
			}
			n := length(l, f, p, up)
			if n > maxBuffer {
				return ErrParam
			}
			if f.Only {
				e.Uint(n)
			} else {
				e.Bytes(unsafe.Slice((*byte)(q), n))
			}
		case UlongPtr:
			if q == nil {
				e.Nil()
			} else {
				e.Uint(uint64(*(*uint)(q)))
			}
		case UlongOrPtr:
			if v := uint64(*at[uint](p, f.Off)); v < ptrFloor {
				e.Uint(v)
			} else {
				e.ArrayLen(1)
				e.Uint(uint64(*(*uint)(q)))
			}
		case CString:
			if q == nil {
				e.Nil()
				continue
			}
			n := 0
			for n < maxCString && *(*byte)(unsafe.Add(q, n)) != 0 {
				n++
			}
			if n == maxCString {
				return ErrParam
			}
			e.Bytes(unsafe.Slice((*byte)(q), n))
		case Struct:
			if err := c.structure(f.Sub, unsafe.Add(p, f.Off), scope{l, p}, depth); err != nil {
				return err
			}
		case StructPtr:
			if q == nil {
				e.Nil()
				continue
			}
			if err := c.structure(f.Sub, q, scope{l, p}, depth); err != nil {
				return err
			}
		case StructArray:
			if q == nil {
				e.Nil()
				continue
			}
			n := length(l, f, p, up)
			if n > maxElems {
				return ErrParam
			}
			e.ArrayLen(int(n))
			for j := uintptr(0); j < uintptr(n); j++ {
				if err := c.structure(f.Sub, unsafe.Add(q, j*f.Sub.Size), scope{}, depth); err != nil {
					return err
				}
			}
		case MechPtr:
			if err := c.mechanism(q, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// mechanism writes the CK_MECHANISM at m, nested depth deep.
func (c *encoder) mechanism(m unsafe.Pointer, depth int) error {
	e := c.e
	if m == nil {
		e.Nil()
		return nil
	}
	if depth > wire.MaxNesting {
		return ErrParam
	}
	f := mechanism.Fields
	typ := uint64(*at[uint](m, f[0].Off))
	param := *at[unsafe.Pointer](m, f[1].Off)
	n := uint64(*at[uint](m, f[2].Off))
	e.ArrayLen(3)
	e.Uint(typ)
	e.Uint(n)
	if param == nil {
		e.Nil()
		return nil
	}
	l, raw, ok := Lookup(typ)
	switch {
	case !ok:
		return ErrParam
	case raw || n != uint64(l.Size):
		if n > maxBuffer {
			return ErrParam
		}
		e.Bytes(unsafe.Slice((*byte)(param), n))
	case l.outs > 0:
		// Nothing brings a nested mechanism's outputs back.
		return ErrParam
	default:
		return c.structure(l, param, scope{}, depth)
	}
	return nil
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
		if f.Only && f.Kind != Ptr {
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
		}
	}
	if !d.Ok() {
		return false
	}
	return b.check(l, p, sh, up)
}

// check compares each buffer's and array's declared length with what was
// built for it.
func (b *builder) check(l *Layout, p, sh unsafe.Pointer, up scope) bool {
	for i := range l.Fields {
		f := &l.Fields[i]
		if f.Kind != Ptr && f.Kind != StructArray {
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
		l, _, _ := Lookup(typ)
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
		case UlongPtr:
			if rec.p == nil {
				e.Nil()
			} else {
				e.Uint(uint64(*(*uint)(rec.p)))
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

// DecodeOut checks the Out fields of a reply against the application's
// structure at p and queues their writes in plan; the caller applies the
// plan once the whole reply is checked, so a refused reply writes nothing.
// A buffer longer (or shorter) than the application declared, a value for a
// NULL pointer, a length that disagrees with its bytes fail the decoder.
// ok says the call returned CKR_OK: then no length the vendor reports for a
// buffer may exceed the buffer's capacity, bytes or not (with an error, a
// longer length is the size the vendor needs). Output handles are queued
// for translation (outplan.Plan.Handle).
func DecodeOut(d *wire.Decoder, l *Layout, p unsafe.Pointer, ok bool, plan *outplan.Plan) {
	o := outDecoder{d: d, ok: ok, plan: plan}
	o.structure(l, p, scope{})
}

type outDecoder struct {
	d    *wire.Decoder
	ok   bool
	plan *outplan.Plan
}

// outValue is one decoded Out field, kept until its structure is checked.
type outValue struct {
	null bool
	v    uint64
	b    []byte
}

func (o *outDecoder) structure(l *Layout, p unsafe.Pointer, up scope) bool {
	d := o.d
	n := d.ArrayLen(len(l.Fields))
	if !d.Ok() {
		return false
	}
	if n != l.outs {
		d.Fail("%s: %d output fields, want %d", l.Name, n, l.outs)
		return false
	}
	vals := make([]outValue, len(l.Fields))
	for i := range l.Fields {
		f := &l.Fields[i]
		if !f.Out {
			continue
		}
		v := &vals[i]
		switch f.Kind {
		case Ulong, Handle:
			v.v = d.Uint()
		case Byte:
			v.v = d.UintMax(255, f.Name)
		case Inline:
			v.b = d.Bytes()
			if d.Ok() && len(v.b) != f.N {
				d.Fail("%s.%s: %d bytes, want %d", l.Name, f.Name, len(v.b), f.N)
			}
		case Ptr:
			if v.null = d.IsNil(); !v.null {
				v.b = d.Bytes()
			}
		case UlongPtr:
			if v.null = d.IsNil(); !v.null {
				v.v = d.Uint()
			}
		case Struct:
			if !o.structure(f.Sub, unsafe.Add(p, f.Off), scope{l, p}) {
				return false
			}
		case StructPtr:
			q := *at[unsafe.Pointer](p, f.Off)
			if d.IsNil() != (q == nil) {
				d.Fail("%s.%s: a structure for a NULL pointer, or none for a non-NULL one", l.Name, f.Name)
				return false
			}
			if q != nil && !o.structure(f.Sub, q, scope{l, p}) {
				return false
			}
		}
		if !d.Ok() {
			return false
		}
	}
	// Every value is decoded: check them against what the application
	// declared (its memory is untouched until the end) and queue the writes.
	for i := range l.Fields {
		f := &l.Fields[i]
		if !f.Out {
			continue
		}
		v := &vals[i]
		var q unsafe.Pointer
		if f.Kind == Ptr || f.Kind == UlongPtr {
			q = *at[unsafe.Pointer](p, f.Off)
		}
		switch f.Kind {
		case Ulong:
			o.plan.Ulong(unsafe.Add(p, f.Off), v.v)
		case Handle:
			o.plan.Handle(unsafe.Add(p, f.Off), v.v)
		case Byte:
			o.plan.Byte(unsafe.Add(p, f.Off), byte(v.v))
		case Inline:
			o.plan.Copy(unsafe.Add(p, f.Off), v.b)
		case UlongPtr:
			if v.null != (q == nil) {
				d.Fail("%s.%s: a value for a NULL pointer, or none for a non-NULL one", l.Name, f.Name)
				return false
			}
			if q != nil {
				o.plan.Ulong(q, v.v)
			}
		case Ptr:
			capacity := length(l, f, p, up)
			want := capacity
			src := f.outLen(l)
			if src != nil && !vals[f.Len].null {
				want = vals[f.Len].v
			}
			if v.null {
				// No bytes: the vendor wrote none, or reported more than
				// fit. With CKR_OK the application would take the length
				// as what its buffer now holds.
				if o.ok && q != nil && want > capacity {
					d.Fail("%s.%s: CKR_OK with a length of %d for a buffer of %d", l.Name, f.Name, want, capacity)
					return false
				}
				continue
			}
			if src != nil && vals[f.Len].null {
				d.Fail("%s.%s: bytes without their length", l.Name, f.Name)
				return false
			}
			if q == nil || want > capacity || uint64(len(v.b)) != want {
				d.Fail("%s.%s: %d bytes (length %d) for a buffer of %d", l.Name, f.Name, len(v.b), want, capacity)
				return false
			}
			o.plan.Copy(q, v.b)
		}
	}
	return true
}
