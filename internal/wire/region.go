package wire

import (
	"encoding/binary"
	"unsafe"
)

// A channel's bulk data can cross through shared memory instead of the
// socket. The proxy creates a sealed memfd of RegionSize bytes per channel,
// maps it and hands it to the host with the channel socket; the host maps it
// too. Within one call, the proxy copies large input buffers into the region
// from offset 0 up, and the host places large output buffers after the
// inputs. Such a buffer crosses in the frame as a reference instead of bytes:
//
//	fixext16 (0xd8), type ExtRegion, offset (8 bytes LE), length (8 bytes LE)
//
// The frame, never the region, carries every offset and length: the receiver
// checks the reference against the region's bounds, and reads only data
// bytes out of the region. A peer that changes region bytes mid-call can
// change data, which it could send anyway, never where or how much is read
// or written.

const (
	// RegionSize is the size of a channel's shared region. 4 MiB holds the
	// inputs and the output of every common call (a 64 KiB update, a
	// certificate, a 1 MiB encryption with its result) with room to spare;
	// larger buffers cross inline, in frames of up to MaxFrame bytes. Pages
	// are allocated on first use and kept while the channel lives, so a
	// channel costs what its largest call used, at most RegionSize.
	RegionSize = 4 << 20
	// RegionMin is the smallest buffer that crosses through the region.
	// Below it, the copy into the frame and through the socket costs less
	// than the reference's bookkeeping matters; 16 KiB keeps every small
	// call (signatures, random numbers, attribute values) inline.
	RegionMin = 16 << 10
	// ExtRegion is the msgpack extension type of a region reference.
	ExtRegion = 1
	// regionAlign aligns each buffer in the region to a cache line.
	regionAlign = 64
	// refSize is the encoded size of a reference.
	refSize = 18
)

// Region is one channel's shared memory and the part of it the current call
// uses. A nil *Region is a channel without one: every buffer crosses inline.
type Region struct {
	mem  []byte
	used int
}

// NewRegion makes a Region of mem (a shared mapping), or nil for none.
func NewRegion(mem []byte) *Region {
	if len(mem) == 0 {
		return nil
	}
	return &Region{mem: mem}
}

// Mem is the whole mapping.
func (r *Region) Mem() []byte {
	if r == nil {
		return nil
	}
	return r.mem
}

// Reset frees the region for the next call.
func (r *Region) Reset() {
	if r != nil {
		r.used = 0
	}
}

// Alloc reserves n bytes after everything the call used so far and returns
// their offset; ok is false if they do not fit.
func (r *Region) Alloc(n uint64) (off uint64, ok bool) {
	if r == nil {
		return 0, false
	}
	start := (uint64(r.used) + regionAlign - 1) &^ (regionAlign - 1)
	if start > uint64(len(r.mem)) || n > uint64(len(r.mem))-start {
		return 0, false
	}
	r.used = int(start + n)
	return start, true
}

// At is the region's bytes [off, off+n), or ok false if they are not all
// inside it.
func (r *Region) At(off, n uint64) (b []byte, ok bool) {
	if r == nil || off > uint64(len(r.mem)) || n > uint64(len(r.mem))-off {
		return nil, false
	}
	return r.mem[off : off+n : off+n], true
}

// Offset reports whether the n bytes at p lie inside the region, and where.
func (r *Region) Offset(p unsafe.Pointer, n uint64) (uint64, bool) {
	if r == nil || p == nil {
		return 0, false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(r.mem)))
	q := uintptr(p)
	if q < base || q-base > uintptr(len(r.mem)) || n > uint64(len(r.mem))-uint64(q-base) {
		return 0, false
	}
	return uint64(q - base), true
}

// mark records that the call uses the region up to end (a reference
// received): later allocations come after it.
func (r *Region) mark(end uint64) {
	if int(end) > r.used {
		r.used = int(end)
	}
}

// SetRegion makes Data place large buffers in r (nil: never).
func (e *Encoder) SetRegion(r *Region) { e.region = r }

// Data encodes b as bytes or, when it is large and fits in the region, copies
// it there and encodes a reference.
func (e *Encoder) Data(b []byte) {
	if len(b) >= RegionMin {
		if off, ok := e.region.Alloc(uint64(len(b))); ok {
			copy(e.region.mem[off:], b)
			e.Ref(off, uint64(len(b)))
			return
		}
	}
	e.Bytes(b)
}

// Ref encodes a reference to n bytes at offset off of the region.
func (e *Encoder) Ref(off, n uint64) {
	e.buf = append(e.buf, 0xd8, ExtRegion)
	e.buf = binary.LittleEndian.AppendUint64(e.buf, off)
	e.buf = binary.LittleEndian.AppendUint64(e.buf, n)
}

// SetRegion makes Data accept references into r (nil: refuse them).
func (d *Decoder) SetRegion(r *Region) { d.region = r }

// Data decodes a binary value, or a reference into the region, as a view
// (into the frame or the region; never copied). Only the frame says where
// and how long: a reference outside the region is malformed.
func (d *Decoder) Data() []byte {
	if d.err != nil {
		return nil
	}
	if d.pos >= len(d.buf) || d.buf[d.pos] != 0xd8 {
		return d.Bytes()
	}
	if len(d.buf)-d.pos < refSize || d.buf[d.pos+1] != ExtRegion {
		d.Fail("bad region reference")
		return nil
	}
	off := binary.LittleEndian.Uint64(d.buf[d.pos+2:])
	n := binary.LittleEndian.Uint64(d.buf[d.pos+10:])
	d.pos += refSize
	b, ok := d.region.At(off, n)
	if !ok {
		d.Fail("region reference [%d, +%d) outside a region of %d bytes", off, n, len(d.region.Mem()))
		return nil
	}
	d.region.mark(off + n)
	return b
}
