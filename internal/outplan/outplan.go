// Package outplan holds the writes a reply makes into the application's
// memory until the whole reply has been checked. A reply that fails any
// check leaves the application's memory exactly as it was: the decoder
// queues each write here and the caller applies them only when the decoder
// finished without error.
package outplan

import "unsafe"

// Write is one checked write into the application's memory.
type Write struct {
	Dst   unsafe.Pointer
	Bytes []byte // copied to Dst when not nil; otherwise Value is stored
	Value uint64
	Size  int  // of Value: 8 (a CK_ULONG) or 1 (a CK_BYTE)
	Map   bool // Value is a vendor handle: translated when applied
}

// Plan is a reusable queue of writes.
type Plan struct{ writes []Write }

// Reset empties the plan, keeping its memory.
func (p *Plan) Reset() {
	clear(p.writes)
	p.writes = p.writes[:0]
}

// Len is the number of queued writes.
func (p *Plan) Len() int { return len(p.writes) }

// Copy queues copying b to dst. b must stay valid until Apply.
func (p *Plan) Copy(dst unsafe.Pointer, b []byte) {
	if len(b) > 0 {
		p.writes = append(p.writes, Write{Dst: dst, Bytes: b})
	}
}

// Ulong queues storing v as a CK_ULONG at dst.
func (p *Plan) Ulong(dst unsafe.Pointer, v uint64) {
	p.writes = append(p.writes, Write{Dst: dst, Value: v, Size: 8})
}

// Byte queues storing v at dst.
func (p *Plan) Byte(dst unsafe.Pointer, v byte) {
	p.writes = append(p.writes, Write{Dst: dst, Value: uint64(v), Size: 1})
}

// Handle queues storing the vendor handle v, translated when applied, as a
// CK_ULONG at dst. Translation waits for Apply: a refused reply must not
// leave handles allocated in the proxy's table either.
func (p *Plan) Handle(dst unsafe.Pointer, v uint64) {
	p.writes = append(p.writes, Write{Dst: dst, Value: v, Size: 8, Map: true})
}

// Apply performs the queued writes in order; toApp translates handles (nil:
// unchanged). The plan is empty afterwards.
func (p *Plan) Apply(toApp func(uint64) uint64) {
	for _, w := range p.writes {
		switch {
		case w.Bytes != nil:
			copy(unsafe.Slice((*byte)(w.Dst), len(w.Bytes)), w.Bytes)
		case w.Size == 1:
			*(*byte)(w.Dst) = byte(w.Value)
		default:
			v := w.Value
			if w.Map && toApp != nil {
				v = toApp(v)
			}
			*(*uint64)(w.Dst) = v
		}
	}
	p.Reset()
}
