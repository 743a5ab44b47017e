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
	return out
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
		if !inside && i < 1024 {
			t.Fatalf("%s: reply %x wrote byte %d outside the caller's buffers", s.f.Name, reply, i)
		}
	}
}

func run(s *scene, reply []byte) (rv, error) {
	h := &host{}
	ch := &channel{enc: wire.NewEncoder(), dec: wire.NewDecoder()}
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
	return [][]byte{
		frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(5); e.Bytes([]byte("sig!!")) }),
		frame(func(e *wire.Encoder) {
			e.Uint(0x11) // CKR_ATTRIBUTE_SENSITIVE
			e.ArrayLen(3)
			e.Uint(4)
			e.Bytes([]byte("lbl!"))
			e.Uint(^uint64(0))
			e.Nil()
			e.Uint(24)
			e.ArrayLen(1)
			e.Uint(8)
			e.Bytes([]byte{1, 0, 0, 0, 0, 0, 0, 0})
		}),
		frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(2); e.ArrayLen(2); e.Uint(7); e.Uint(9) }),
		frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(1); e.ArrayLen(1); e.Uint(42) }),
		frame(func(e *wire.Encoder) { e.Uint(0); e.Bytes(make([]byte, 208)) }),
		frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(5); e.Uint(6) }),
	}
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
		{1, frame(func(e *wire.Encoder) { e.Uint(0); e.ArrayLen(3); e.Uint(9); e.Bytes(make([]byte, 9)) })},
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
