package mechparams

import (
	"unsafe"

	"github.com/p11isolate/p11isolate/internal/wire"
)

// A parameter structure crosses as an array with one value per field:
// Ulong, Handle and Byte as unsigned integers, Inline as bytes, Ptr as bytes
// or nil for NULL. The reply carries an array with one value per Out field.

func at[T any](base unsafe.Pointer, off uintptr) *T { return (*T)(unsafe.Add(base, off)) }

// HandleMap translates an object handle between the application's and the
// vendor's numbering; ok is false for a handle that is no longer valid.
type HandleMap func(h uint64) (uint64, bool)

// Encode writes the structure at p (l.Size bytes of the application's memory).
// It returns false when a handle field names a handle of a dead host.
func Encode(e *wire.Encoder, l *Layout, p unsafe.Pointer, toVendor HandleMap) bool {
	e.ArrayLen(len(l.Fields))
	for _, f := range l.Fields {
		switch f.Kind {
		case Ulong:
			e.Uint(uint64(*at[uint](p, f.Off)))
		case Handle:
			h, ok := toVendor(uint64(*at[uint](p, f.Off)))
			if !ok {
				return false
			}
			e.Uint(h)
		case Byte:
			e.Uint(uint64(*at[byte](p, f.Off)))
		case Inline:
			e.Bytes(unsafe.Slice(at[byte](p, f.Off), f.N))
		case Ptr:
			data := *at[unsafe.Pointer](p, f.Off)
			n := *at[uint](p, l.Fields[f.Len].Off)
			if data == nil {
				e.Nil()
			} else {
				e.Bytes(unsafe.Slice((*byte)(data), n))
			}
		}
	}
	return true
}

// DecodeOut copies the Out fields of a reply into the application's structure
// at p. A field longer than the application's buffer fails the decoder.
func DecodeOut(d *wire.Decoder, l *Layout, p unsafe.Pointer) {
	n := d.ArrayLen(len(l.Fields))
	if n != l.outs() {
		d.Fail("%s: %d output fields, want %d", l.Name, n, l.outs())
		return
	}
	for _, f := range l.Fields {
		if !f.Out || !d.Ok() {
			continue
		}
		switch f.Kind {
		case Ptr:
			data := *at[unsafe.Pointer](p, f.Off)
			if d.IsNil() {
				continue
			}
			b := d.Bytes()
			if data == nil || uint(len(b)) > *at[uint](p, l.Fields[f.Len].Off) {
				d.Fail("%s.%s: %d bytes for the application's buffer", l.Name, f.Name, len(b))
				return
			}
			copy(unsafe.Slice((*byte)(data), len(b)), b)
		case Ulong:
			*at[uint](p, f.Off) = uint(d.Uint())
		}
	}
}

func (l *Layout) outs() int {
	n := 0
	for _, f := range l.Fields {
		if f.Out {
			n++
		}
	}
	return n
}

// Build decodes a structure into memory from alloc, which returns zeroed
// memory that stays valid for the call; pointer fields point into the frame
// (Out ones into fresh memory, so the vendor writes where it may).
func Build(d *wire.Decoder, l *Layout, alloc func(n uintptr) unsafe.Pointer) unsafe.Pointer {
	if d.ArrayLen(len(l.Fields)) != len(l.Fields) {
		d.Fail("%s: wrong field count", l.Name)
		return nil
	}
	p := alloc(l.Size)
	for _, f := range l.Fields {
		if !d.Ok() {
			return nil
		}
		switch f.Kind {
		case Ulong, Handle:
			*at[uint](p, f.Off) = uint(d.Uint())
		case Byte:
			*at[byte](p, f.Off) = byte(d.UintMax(255, f.Name))
		case Inline:
			b := d.Bytes()
			if len(b) != f.N {
				d.Fail("%s.%s: %d bytes, want %d", l.Name, f.Name, len(b), f.N)
				return nil
			}
			copy(unsafe.Slice(at[byte](p, f.Off), f.N), b)
		case Ptr:
			if d.IsNil() {
				continue
			}
			b := d.Bytes()
			if len(b) == 0 {
				// A non-NULL pointer to nothing: keep it non-NULL.
				*at[unsafe.Pointer](p, f.Off) = alloc(1)
				continue
			}
			if f.Out {
				buf := alloc(uintptr(len(b)))
				copy(unsafe.Slice((*byte)(buf), len(b)), b)
				*at[unsafe.Pointer](p, f.Off) = buf
			} else {
				*at[unsafe.Pointer](p, f.Off) = unsafe.Pointer(&b[0])
			}
		}
	}
	return p
}

// EncodeOut writes the Out fields of the host's structure at p after the call.
func EncodeOut(e *wire.Encoder, l *Layout, p unsafe.Pointer) {
	e.ArrayLen(l.outs())
	for _, f := range l.Fields {
		if !f.Out {
			continue
		}
		switch f.Kind {
		case Ptr:
			data := *at[unsafe.Pointer](p, f.Off)
			if data == nil {
				e.Nil()
				continue
			}
			e.Bytes(unsafe.Slice((*byte)(data), *at[uint](p, l.Fields[f.Len].Off)))
		case Ulong:
			e.Uint(uint64(*at[uint](p, f.Off)))
		}
	}
}
