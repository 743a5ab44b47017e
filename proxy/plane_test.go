package main

import (
	"bytes"
	"testing"
	"unsafe"

	"github.com/p11isolate/p11isolate/internal/wire"
)

// The C data plane (cshim/plane.c) against the Go encoder and decoder it is
// to replace: the same arguments give the same request, byte for byte, and
// the same reply gives the same writes, the same code or the same refusal.

// inputScenes are calls with inputs only, in guarded arenas.
func inputScenes() []*scene {
	var out []*scene
	mk := func(name string) *scene {
		return &scene{f: funcByName(name), arena: bytes.Repeat([]byte{guard}, 1<<17)}
	}
	put := func(s *scene, off int, typ uint64, p uintptr, n uint64) {
		putUlong(s.arena[off:], typ)
		*(*uintptr)(unsafe.Pointer(&s.arena[off+8])) = p
		putUlong(s.arena[off+16:], n)
	}

	s := mk("C_Login")
	copy(s.arena[512:], "123456")
	s.args = []uintptr{7, 1, s.at(512), 6}
	out = append(out, s)

	s = mk("C_InitToken")
	copy(s.arena[512:], "1234")
	copy(s.arena[600:], bytes.Repeat([]byte{' '}, 32))
	s.args = []uintptr{3, s.at(512), 4, s.at(600)}
	out = append(out, s)

	s = mk("C_FindObjectsInit") // {CKA_LABEL "k1"}, {CKA_WRAP_TEMPLATE {CKA_CLASS 4}}, {CKA_ID NULL 5}
	copy(s.arena[1024:], "k1")
	putUlong(s.arena[1100:], 4)
	put(s, 256, 3, s.at(1024), 2)
	put(s, 280, 0x40000211, s.at(768), 24)
	put(s, 304, 0x102, 0, 5)
	put(s, 768, 0, s.at(1100), 8)
	s.args = []uintptr{7, s.at(256), 3}
	out = append(out, s)

	s = mk("C_DigestUpdate") // large: through the region
	s.args = []uintptr{7, s.at(4096), 64 << 10}
	out = append(out, s)

	s = mk("C_SeedRandom") // NULL with a length
	s.args = []uintptr{7, 0, 9}
	out = append(out, s)

	s = mk("C_Finalize")
	s.args = []uintptr{1}
	out = append(out, s)

	s = mk("C_WaitForSlotEvent")
	s.args = []uintptr{1, s.own(64, 8), 0}
	out = append(out, s)

	s = mk("C_OpenSession")
	putUlong(s.arena[64:], 99)
	s.args = []uintptr{1, 6, 0, 0, s.own(64, 8)}
	out = append(out, s)

	s = mk("C_GetMechanismInfo")
	s.args = []uintptr{1, 0x250, 1} // an unreadable output: zeros cross
	out = append(out, s)

	// Mechanisms: a structure (CK_GCM_PARAMS), opaque bytes (an IV), one
	// the registry cannot carry, a vendor's, a wrong-sized structure.
	mech := func(s *scene, off int, typ uint64, p uintptr, n uint64) uintptr {
		putUlong(s.arena[off:], typ)
		*(*uintptr)(unsafe.Pointer(&s.arena[off+8])) = p
		putUlong(s.arena[off+16:], n)
		return s.at(off)
	}
	for _, c := range []struct {
		typ uint64
		n   uint64
	}{{0x1087, 48}, {0x1082, 16}, {0x4021, 1}, {0x80001234, 5}, {0x1087, 40}} {
		s = mk("C_EncryptInit")
		copy(s.arena[2048:], "0123456789ab")         // IV
		copy(s.arena[2100:], "additional data")      // AAD
		putUlong(s.arena[3000:], uint64(s.at(2048))) // pIv
		putUlong(s.arena[3008:], 12)
		putUlong(s.arena[3016:], 96)
		putUlong(s.arena[3024:], uint64(s.at(2100))) // pAAD
		putUlong(s.arena[3032:], 15)
		putUlong(s.arena[3040:], 128)
		param := s.at(3000)
		if c.typ == 0x1082 {
			param = s.at(2048)
		}
		s.args = []uintptr{7, mech(s, 256, c.typ, param, c.n), 9}
		out = append(out, s)
	}
	return out
}

// prfScene is C_DeriveKey with CKM_TLS_PRF, whose parameter the vendor
// writes: 32 bytes of output and their length.
func prfScene() *scene {
	s := &scene{f: funcByName("C_DeriveKey"), arena: bytes.Repeat([]byte{guard}, 4096)}
	copy(s.arena[1024:], "seed")
	copy(s.arena[1040:], "label")
	putUlong(s.arena[64:], 32)                       // *pulOutputLen
	putUlong(s.arena[1100:], uint64(s.at(1024)))     // pSeed
	putUlong(s.arena[1108:], 4)                      // ulSeedLen
	putUlong(s.arena[1116:], uint64(s.at(1040)))     // pLabel
	putUlong(s.arena[1124:], 5)                      // ulLabelLen
	putUlong(s.arena[1132:], uint64(s.own(128, 32))) // pOutput
	putUlong(s.arena[1140:], uint64(s.own(64, 8)))   // pulOutputLen
	putUlong(s.arena[1200:], 0x378)                  // CKM_TLS_PRF
	putUlong(s.arena[1208:], uint64(s.at(1100)))
	putUlong(s.arena[1216:], 48)
	s.args = []uintptr{7, s.at(1200), 9, 0, 0, s.own(72, 8)}
	return s
}

// prfSeeds are honest replies to prfScene, with CKR_OK and with
// CKR_BUFFER_TOO_SMALL.
func prfSeeds() [][]byte {
	return [][]byte{
		frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.ArrayLen(2)
			e.Bytes([]byte("prf output"))
			e.Uint(10)
			e.Uint(5)
		}),
		frame(func(e *wire.Encoder) { e.Uint(0x150); e.ArrayLen(2); e.Nil(); e.Uint(48); e.Nil() }),
	}
}

func TestPlaneRequestsMatch(t *testing.T) {
	all := append(append(append(scenes(), inputScenes()...), regionScenes()...), prfScene())
	for _, s := range all {
		ch := newChannel(-1, testRegionMem)
		gr, bad := ch.encodeRequest(&host{}, s.f, s.args)
		p := newCPlane(true)
		frame, cr := p.encode(s.f.ID, s.args)
		switch {
		case bad || cr != 0:
			if gr != cr {
				t.Errorf("%s: Go answers 0x%x itself, C 0x%x", s.f.Name, gr, cr)
			}
		case !bytes.Equal(frame, ch.enc.Frame()):
			t.Errorf("%s: requests differ\nGo %x\nC  %x", s.f.Name, ch.enc.Frame(), frame)
		case !bytes.Equal(p.region[:p.c.region_used], testRegionMem[:p.c.region_used]):
			t.Errorf("%s: the shared regions differ", s.f.Name)
		}
		p.free()
	}
}

// C_Initialize's replay, from the proxy's own C memory.
func TestPlaneInitArgsMatch(t *testing.T) {
	px := proxy{init: initArgs{flags: 2, mutexes: 15}}
	s := "module=/x.so"
	px.init.reserved = &s
	args := px.replayArgs()
	defer args.free()
	a := []uintptr{args.ptr()}
	ch := newChannel(-1, nil)
	ch.encodeRequest(&host{}, funcByName("C_Initialize"), a)
	p := newCPlane(false)
	defer p.free()
	frame, _ := p.encode(0, a)
	if !bytes.Equal(frame, ch.enc.Frame()) {
		t.Errorf("C_Initialize: requests differ\nGo %x\nC  %x", ch.enc.Frame(), frame)
	}
}

// decodeBoth runs one reply through the Go decoder and the C plane, each
// on scene i as it was before (the same addresses), and reports any
// difference.
func decodeBoth(t *testing.T, i int, reply []byte) {
	var s *scene
	if i < len(scenes()) {
		s = scenes()[i]
	} else {
		s = prfScene()
	}
	before := bytes.Clone(s.arena)
	ch := newChannel(-1, testRegionMem)
	if _, bad := ch.encodeRequest(&host{}, s.f, s.args); bad {
		return
	}
	gr, gerr := ch.decodeReply(&host{}, s.f, s.args, reply)
	goWrote := bytes.Clone(s.arena)
	copy(s.arena, before)

	p := newCPlane(i >= 6)
	defer p.free()
	if _, r := p.encode(s.f.ID, s.args); r != 0 {
		t.Fatalf("%s: C refused the request: 0x%x", s.f.Name, r)
	}
	if i >= 6 {
		copy(p.region, testRegionMem)
	}
	cr, cerr := p.decode(s.f.ID, s.args, reply)
	switch {
	case (gerr == nil) != (cerr == nil):
		t.Fatalf("%s: reply %x: Go %v, C %v", s.f.Name, reply, gerr, cerr)
	case gerr == nil && gr != cr:
		t.Fatalf("%s: reply %x: Go code 0x%x, C 0x%x", s.f.Name, reply, gr, cr)
	case !bytes.Equal(goWrote, s.arena):
		at := 0
		for at < len(s.arena) && goWrote[at] == s.arena[at] {
			at++
		}
		t.Fatalf("%s: reply %x: Go and C wrote different bytes, first at %d", s.f.Name, reply, at)
	}
}

func TestPlaneRepliesMatch(t *testing.T) {
	for i, r := range seeds() {
		decodeBoth(t, i, r)
	}
	for i, r := range prfSeeds() {
		decodeBoth(t, len(scenes()), r)
		if _, err := run(prfScene(), r); err != nil {
			t.Errorf("honest CK_TLS_PRF_PARAMS reply %d refused: %v", i, err)
		}
	}
}

func FuzzPlaneReplies(f *testing.F) {
	for i, s := range seeds() {
		f.Add(uint8(i), s)
	}
	for _, s := range prfSeeds() {
		f.Add(uint8(len(scenes())), s)
	}
	f.Fuzz(func(t *testing.T, which uint8, reply []byte) {
		decodeBoth(t, int(which)%(len(scenes())+1), reply)
	})
}
