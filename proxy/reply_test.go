package main

import (
	"bytes"
	"testing"
	"unsafe"

	"github.com/p11isolate/p11isolate/internal/p11calls"
	"github.com/p11isolate/p11isolate/internal/wire"
)

// The proxy trusts nothing the host says. These tests feed decodeReply
// replies, well-formed and not, for calls whose output buffers sit inside a
// guarded arena, and check that no byte outside the declared buffers changes.

const guard = 0xA5

// scene is one call with its output memory laid out in a guarded arena.
type scene struct {
	f     p11calls.Func
	arena []byte
	args  []uintptr
	// owned are the [start, end) ranges of the arena the call may write.
	owned [][2]int
	// limit: the arena from limit on holds inputs, which are not checked
	// (0: 1024).
	limit int
}

func (s *scene) at(off int) uintptr { return uintptr(unsafe.Pointer(&s.arena[off])) }

func (s *scene) own(off, n int) uintptr {
	s.owned = append(s.owned, [2]int{off, off + n})
	return s.at(off)
}

func putUlong(b []byte, v uint64) { *(*uint64)(unsafe.Pointer(&b[0])) = v }

// scenes builds fresh scenes: C_Sign into 16 bytes, C_GetAttributeValue of a
// plain, a NULL and a nested attribute, C_GetSlotList into room for 2,
// C_FindObjects into room for 3, C_GetTokenInfo, C_GenerateKeyPair.
func scenes() []*scene {
	fn := func(name string) p11calls.Func {
		for _, f := range p11calls.Funcs {
			if f.Name == name {
				return f
			}
		}
		panic(name)
	}
	mk := func(name string) *scene {
		s := &scene{f: fn(name), arena: bytes.Repeat([]byte{guard}, 4096)}
		return s
	}
	var out []*scene

	s := mk("C_Sign")
	putUlong(s.arena[64:], 16)
	s.args = []uintptr{1, s.at(1024), 4, s.own(128, 16), s.own(64, 8)}
	out = append(out, s)

	s = mk("C_GetAttributeValue")
	// template of 3 at 256: {CKA_LABEL, buf@512 cap 8}, {CKA_ID, NULL, 0},
	// {CKA_WRAP_TEMPLATE, inner@768 (1 attr), 24}; inner: {CKA_CLASS, buf@896 cap 8}
	tmpl := func(off int, typ uint64, p uintptr, n uint64) {
		putUlong(s.arena[off:], typ)
		*(*uintptr)(unsafe.Pointer(&s.arena[off+8])) = p
		putUlong(s.arena[off+16:], n)
	}
	tmpl(256, 3, s.own(512, 8), 8)
	tmpl(280, 0x102, 0, 0)
	tmpl(304, 0x40000211, s.at(768), 24)
	tmpl(768, 0, s.own(896, 8), 8)
	s.owned = append(s.owned, [2]int{256, 328}, [2]int{768, 792})
	s.args = []uintptr{1, 2, s.at(256), 3}
	out = append(out, s)

	s = mk("C_GetSlotList")
	putUlong(s.arena[64:], 2)
	s.args = []uintptr{1, s.own(128, 16), s.own(64, 8)}
	out = append(out, s)

	s = mk("C_FindObjects")
	s.args = []uintptr{1, s.own(128, 24), 3, s.own(64, 8)}
	out = append(out, s)

	s = mk("C_GetTokenInfo")
	s.args = []uintptr{0, s.own(128, 208)}
	out = append(out, s)

	s = mk("C_GenerateKeyPair")
	putUlong(s.arena[1024:], 0x1040) // CKM_EC_KEY_PAIR_GEN, no parameter
	putUlong(s.arena[1032:], 0)
	putUlong(s.arena[1040:], 0)
	s.args = []uintptr{1, s.at(1024), 0, 0, 0, 0, s.own(64, 8), s.own(72, 8)}
	out = append(out, s)
	return append(out, regionScenes()...)
}

// Outputs large enough to come back through the shared region: 32 KiB
// buffers in a 128 KiB guarded arena, inputs from 96 KiB on.
const (
	bigOut    = 32 << 10
	bigArena  = 128 << 10
	bigInputs = 96 << 10
)

// regionScenes: C_Encrypt of 64 KiB (the input crosses through the region)
// into 32 KiB, C_GenerateRandom of 32 KiB, C_GetAttributeValue of a 32 KiB
// value.
func regionScenes() []*scene {
	mk := func(name string) *scene {
		return &scene{f: funcByName(name), arena: bytes.Repeat([]byte{guard}, bigArena), limit: bigInputs}
	}
	var out []*scene

	s := mk("C_Encrypt")
	putUlong(s.arena[64:], bigOut)
	s.args = []uintptr{1, s.at(bigInputs), 64 << 10 / 2, s.own(1024, bigOut), s.own(64, 8)}
	out = append(out, s)

	s = mk("C_GenerateRandom")
	s.args = []uintptr{1, s.own(1024, bigOut), bigOut}
	out = append(out, s)

	s = mk("C_GetAttributeValue")
	putUlong(s.arena[bigInputs:], 0x11) // CKA_VALUE
	*(*uintptr)(unsafe.Pointer(&s.arena[bigInputs+8])) = s.own(1024, bigOut)
	putUlong(s.arena[bigInputs+16:], bigOut)
	s.owned = append(s.owned, [2]int{bigInputs, bigInputs + 24})
	s.args = []uintptr{1, 2, s.at(bigInputs), 1}
	out = append(out, s)
	return out
}

// regionSeeds are the honest replies of regionScenes: every output as a
// reference after the request's input (the Encrypt input is at 0).
func regionSeeds() [][]byte {
	after := uint64(64 << 10 / 2)
	return [][]byte{
		frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(bigOut - 16); e.Ref(after, bigOut-16) }),
		frame(func(e *wire.Encoder) { e.Uint(0); e.Ref(0, bigOut) }),
		frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.ArrayLen(1)
			e.Uint(0x11)
			e.Uint(1000)
			e.Ref(wire.RegionSize-1000, 1000)
		}),
	}
}

func (s *scene) check(t *testing.T, reply []byte) {
	for i, b := range s.arena {
		if b == guard {
			continue
		}
		inside := false
		for _, r := range s.owned {
			if i >= r[0] && i < r[1] {
				inside = true
			}
		}
		limit := s.limit
		if limit == 0 {
			limit = 1024
		}
		if !inside && i < limit {
			t.Fatalf("%s: reply %x wrote byte %d outside the caller's buffers", s.f.Name, reply, i)
		}
	}
}

// testRegionMem is the shared region of every test channel (Go memory
// will do: the proxy treats it as memory the host may write at any time).
var testRegionMem = make([]byte, wire.RegionSize)

func run(s *scene, reply []byte) (rv, error) {
	h := &host{}
	ch := newChannel(-1, testRegionMem)
	if r, bad := ch.encodeRequest(h, s.f, s.args); bad {
		return r, nil
	}
	return ch.decodeReply(h, s.f, s.args, reply)
}

func frame(parts func(e *wire.Encoder)) []byte {
	e := wire.NewEncoder()
	parts(e)
	return bytes.Clone(e.Frame()[wire.HeaderSize:])
}

// seeds are honest replies, one per scene, and the basis of the fuzz corpus.
func seeds() [][]byte {
	return append([][]byte{
		frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(5); e.Bytes([]byte("sig!!")) }),
		frame(func(e *wire.Encoder) {
			e.Uint(0x11) // CKR_ATTRIBUTE_SENSITIVE
			e.ArrayLen(3)
			e.Uint(3) // CKA_LABEL
			e.Uint(4)
			e.Bytes([]byte("lbl!"))
			e.Uint(0x102) // CKA_ID
			e.Uint(^uint64(0))
			e.Nil()
			e.Uint(0x40000211) // CKA_WRAP_TEMPLATE
			e.Uint(24)
			e.ArrayLen(1)
			e.Uint(0) // CKA_CLASS, filled in by the vendor
			e.Uint(8)
			e.Bytes([]byte{1, 0, 0, 0, 0, 0, 0, 0})
		}),
		frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(2); e.ArrayLen(2); e.Uint(7); e.Uint(9) }),
		frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(1); e.ArrayLen(1); e.Uint(42) }),
		frame(func(e *wire.Encoder) { e.Uint(0); e.Bytes(make([]byte, 208)) }),
		frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(5); e.Uint(6) }),
	}, regionSeeds()...)
}

func TestHonestReplies(t *testing.T) {
	for i, s := range scenes() {
		reply := seeds()[i]
		if _, err := run(s, reply); err != nil {
			t.Fatalf("%s: honest reply refused: %v", s.f.Name, err)
		}
		s.check(t, reply)
	}
	// The values landed where they belong.
	s := scenes()[0]
	run(s, seeds()[0])
	if string(s.arena[128:133]) != "sig!!" || s.arena[64] != 5 {
		t.Error("C_Sign output not written")
	}
	// Region outputs too, copied out of the region.
	for i, s := range regionScenes() {
		for j := range testRegionMem {
			testRegionMem[j] = byte(j / 4096)
		}
		if _, err := run(s, regionSeeds()[i]); err != nil {
			t.Fatal(err)
		}
		var off, n int
		switch i {
		case 0:
			off, n = 64<<10/2, bigOut-16
			if !bytes.Equal(testRegionMem[:64<<10/2], s.arena[bigInputs:]) {
				t.Error("C_Encrypt input not in the region")
			}
		case 1:
			off, n = 0, bigOut
		case 2:
			off, n = wire.RegionSize-1000, 1000
		}
		if !bytes.Equal(s.arena[1024:1024+n], testRegionMem[off:off+n]) {
			t.Errorf("%s: region output not copied", s.f.Name)
		}
	}
}

// A reference on a channel without a region is a lie too.
func TestReferenceWithoutRegion(t *testing.T) {
	s := regionScenes()[1]
	ch := newChannel(-1, nil)
	ch.encodeRequest(&host{}, s.f, s.args)
	if _, err := ch.decodeReply(&host{}, s.f, s.args, regionSeeds()[1]); err == nil {
		t.Error("accepted")
	}
	s.check(t, regionSeeds()[1])
}

// Large inputs cross through the region, except a PIN's, which stays in
// the frame that is wiped after sending.
func TestRegionInputs(t *testing.T) {
	pin := bytes.Repeat([]byte{'1'}, 2*wire.RegionMin)
	data := bytes.Repeat([]byte{'d'}, 2*wire.RegionMin)
	for _, c := range []struct {
		f      string
		args   []uintptr
		inline bool
	}{
		{"C_Login", []uintptr{1, 1, uintptr(unsafe.Pointer(&pin[0])), uintptr(len(pin))}, true},
		{"C_DigestUpdate", []uintptr{1, uintptr(unsafe.Pointer(&data[0])), uintptr(len(data))}, false},
	} {
		ch := newChannel(-1, testRegionMem)
		if _, bad := ch.encodeRequest(&host{}, funcByName(c.f), c.args); bad {
			t.Fatal(c.f)
		}
		if inline := ch.enc.Len() > len(data); inline != c.inline {
			t.Errorf("%s: inline %v, want %v", c.f, inline, c.inline)
		}
	}
}

func TestLyingReplies(t *testing.T) {
	lies := []struct {
		scene int
		reply []byte
	}{
		{0, frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(17); e.Bytes(make([]byte, 17)) })},        // longer than the buffer
		{0, frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(3); e.Bytes(make([]byte, 5)) })},          // length disagrees
		{0, frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(3); e.Bytes(make([]byte, 3)); e.Nil() })}, // trailing
		{2, frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.Uint(3)
			e.ArrayLen(3)
			e.Uint(1)
			e.Uint(2)
			e.Uint(3)
		})},
		{3, frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.Uint(4)
			e.ArrayLen(4)
			e.Uint(1)
			e.Uint(2)
			e.Uint(3)
			e.Uint(4)
		})},
		{4, frame(func(e *wire.Encoder) { e.Uint(0); e.Bytes(make([]byte, 209)) })},
		{1, frame(func(e *wire.Encoder) { e.Uint(0); e.ArrayLen(3); e.Uint(3); e.Uint(9); e.Bytes(make([]byte, 9)) })},
		{1, frame(func(e *wire.Encoder) { e.Uint(0); e.ArrayLen(3); e.Uint(4); e.Uint(1); e.Bytes(make([]byte, 1)) })}, // top-level type changed

		// References into the shared region.
		{0, frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(17); e.Ref(0, 17) })},                                            // past a small buffer
		{6, frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(bigOut); e.Ref(0, bigOut+1) })},                                  // length disagrees
		{6, frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(bigOut + 1); e.Ref(0, bigOut+1) })},                              // past the capacity
		{6, frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(100); e.Ref(wire.RegionSize-50, 100) })},                         // past the region
		{6, frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(100); e.Ref(wire.RegionSize+4096, 100) })},                       // offset past the region
		{6, frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(100); e.Ref(^uint64(0)-10, 100) })},                              // offset wraps
		{6, frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(100); e.Ref(100, ^uint64(0)-50) })},                              // length wraps
		{6, frame(func(e *wire.Encoder) { e.Uint(0x150); e.Uint(bigOut); e.Ref(0, bigOut) })},                                // bytes for a failed call
		{7, frame(func(e *wire.Encoder) { e.Uint(0); e.Ref(0, bigOut-1) })},                                                  // short random
		{7, frame(func(e *wire.Encoder) { e.Uint(0); e.Ref(0, bigOut+1) })},                                                  // long random
		{7, frame(func(e *wire.Encoder) { e.Uint(0); e.Ref(wire.RegionSize, bigOut) })},                                      // at the end
		{8, frame(func(e *wire.Encoder) { e.Uint(0); e.ArrayLen(1); e.Uint(0x11); e.Uint(bigOut + 1); e.Ref(0, bigOut+1) })}, // past the capacity
		{8, frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.ArrayLen(1)
			e.Uint(0x11)
			e.Uint(10)
			e.Ref(wire.RegionSize-5, 10)
		})}, // past the region
		{8, frame(func(e *wire.Encoder) { e.Uint(0); e.ArrayLen(1); e.Uint(0x11); e.Uint(10); e.Ref(0, 11) })}, // length disagrees
		{8, frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.ArrayLen(1)
			e.Uint(0x11)
			e.Uint(10)
			e.WriteByte(0xd8)
			e.WriteByte(1)
			e.Uint(0)
		})}, // truncated
	}
	for i, l := range lies {
		s := scenes()[l.scene]
		if _, err := run(s, l.reply); err == nil {
			t.Errorf("lie %d (%s) accepted", i, s.f.Name)
		}
		s.check(t, l.reply)
	}
}

func FuzzReply(f *testing.F) {
	for i, s := range seeds() {
		f.Add(uint8(i), s)
	}
	f.Fuzz(func(t *testing.T, which uint8, reply []byte) {
		all := scenes()
		s := all[int(which)%len(all)]
		run(s, reply)
		s.check(t, reply)
	})
}
