package main

import (
	"bytes"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

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
	// bounds are the lengths and counts the call reports (arena offset of
	// the CK_ULONG) with the capacity each may not exceed after CKR_OK.
	bounds [][2]uint64
}

// bound records that the CK_ULONG at off may not exceed capacity after a
// successful call.
func (s *scene) bound(off int, capacity uint64) {
	s.bounds = append(s.bounds, [2]uint64{uint64(off), capacity})
}

// checkBounds fails when a successful call reported a length or count
// beyond what the application has room for.
func (s *scene) checkBounds(t *testing.T, reply []byte) {
	for _, b := range s.bounds {
		if v := *(*uint64)(unsafe.Pointer(&s.arena[b[0]])); v > b[1] {
			t.Fatalf("%s: reply %x reported %d at %d, room for %d", s.f.Name, reply, v, b[0], b[1])
		}
	}
}

func (s *scene) at(off int) uintptr { return uintptr(unsafe.Pointer(&s.arena[off])) }

func (s *scene) own(off, n int) uintptr {
	s.owned = append(s.owned, [2]int{off, off + n})
	return s.at(off)
}

func putUlong(b []byte, v uint64) { *(*uint64)(unsafe.Pointer(&b[0])) = v }

// scenes builds fresh scenes: C_Sign into 16 bytes, C_GetAttributeValue of a
// plain, a NULL and a nested attribute, C_GetSlotList into room for 2,
// C_FindObjects into room for 3, C_GetTokenInfo, C_GenerateKeyPair; then
// the region's (regionScenes) and the 3.x functions' (threeScenes, their
// sessions primed).
func scenes() []*scene {
	fn := funcByName
	mk := func(name string) *scene {
		s := &scene{f: fn(name), arena: bytes.Repeat([]byte{guard}, 4096)}
		return s
	}
	var out []*scene

	s := mk("C_Sign")
	putUlong(s.arena[64:], 16)
	s.args = []uintptr{1, s.at(1024), 4, s.own(128, 16), s.own(64, 8)}
	s.bound(64, 16)
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
	s.bound(256+16, 8)
	s.bound(304+16, 24)
	s.bound(768+16, 8)
	out = append(out, s)

	s = mk("C_GetSlotList")
	putUlong(s.arena[64:], 2)
	s.args = []uintptr{1, s.own(128, 16), s.own(64, 8)}
	s.bound(64, 2)
	out = append(out, s)

	s = mk("C_FindObjects")
	s.args = []uintptr{1, s.own(128, 24), 3, s.own(64, 8)}
	s.bound(64, 3)
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
	out = append(out, regionScenes()...)
	return append(out, threeScenes()...) // reply3_test.go
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
	s.bound(bigInputs+16, bigOut)
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

// testRegionMem is the shared region of every test channel: an anonymous
// mapping (the C data plane keeps a pointer to it, which Go memory must
// not be), which the proxy treats as memory the host may write at any time.
var testRegionMem = func() []byte {
	mem, err := unix.Mmap(-1, 0, wire.RegionSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		panic(err)
	}
	return mem
}()

// testChannelOn is a channel without a socket on region mem (nil: none);
// its C state is released at the end of the test.
func testChannelOn(tb testing.TB, mem []byte) *channel {
	ch := newChannel(-1, mem, 0)
	tb.Cleanup(func() { ch.mem = nil; ch.free() })
	return ch
}

func run(s *scene, reply []byte) (rv, error) {
	ch := newChannel(-1, testRegionMem, 0)
	defer func() { ch.mem = nil; ch.free() }()
	if r, bad := ch.encode(s.f, s.args); bad {
		return r, nil
	}
	return ch.decode(s.f, s.args, reply)
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
	}, append(regionSeeds(), threeSeeds()...)...)
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
	ch := testChannelOn(t, nil)
	ch.encode(s.f, s.args)
	if _, err := ch.decode(s.f, s.args, regionSeeds()[1]); err == nil {
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
		// The user name too: both stay in the wiped frame.
		{"C_LoginUser", []uintptr{1, 1, uintptr(unsafe.Pointer(&pin[0])), uintptr(len(pin)), uintptr(unsafe.Pointer(&data[0])), uintptr(len(data))}, true},
		{"C_DigestUpdate", []uintptr{1, uintptr(unsafe.Pointer(&data[0])), uintptr(len(data))}, false},
	} {
		ch := testChannelOn(t, testRegionMem)
		if _, bad := ch.encode(funcByName(c.f), c.args); bad {
			t.Fatal(c.f)
		}
		if inline := len(ch.frame()) > len(data); inline != c.inline {
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
		before := bytes.Clone(s.arena)
		if _, err := run(s, l.reply); err == nil {
			t.Errorf("lie %d (%s) accepted", i, s.f.Name)
		}
		if !bytes.Equal(before, s.arena) {
			t.Errorf("lie %d (%s): a refused reply changed the application's memory", i, s.f.Name)
		}
	}
}

// Replies that keep to the frame format but claim, with CKR_OK, more than
// the application has room for: refused whole, nothing written, whichever
// output carries the claim.
func TestOverclaimingReplies(t *testing.T) {
	const huge = ^uint64(0) - 15
	attrs := func(rv uint64, label, labelLen uint64, inner uint64) []byte {
		return frame(func(e *wire.Encoder) {
			e.Uint(rv)
			e.ArrayLen(3)
			e.Uint(3)
			e.Uint(labelLen)
			if labelLen <= 8 {
				e.Bytes(make([]byte, labelLen))
			} else {
				e.Nil()
			}
			e.Uint(0x102)
			e.Uint(20)
			e.Nil()
			e.Uint(0x40000211)
			e.Uint(24)
			e.ArrayLen(1)
			e.Uint(0)
			e.Uint(inner)
			if inner <= 8 {
				e.Bytes(make([]byte, inner))
			} else {
				e.Nil()
			}
		})
	}
	lies := []struct {
		scene int
		what  string
		reply []byte
	}{
		{0, "signature of 4224 for 16", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(4224); e.Nil() })},
		{0, "signature of 2^64-16 for 16", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(huge); e.Nil() })},
		{1, "attribute of 4224 for 8", attrs(0, 0, 4224, 8)},
		{1, "attribute of 2^64-16 for 8", attrs(0, 0, huge, 8)},
		{1, "attribute unavailable with CKR_OK", attrs(0, 0, ^uint64(0), 8)},
		{1, "nested attribute of 4224 for 8", attrs(0, 0, 8, 4224)},
		{2, "slot count 516 for 2", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(516); e.Nil() })},
		{3, "object count 516 for 3", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(516); e.Nil() })},
		{6, "ciphertext of 4224 past a 32 KiB buffer", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(bigOut + 4224); e.Nil() })},
	}
	for _, l := range lies {
		s := scenes()[l.scene]
		before := bytes.Clone(s.arena)
		if _, err := run(s, l.reply); err == nil {
			t.Errorf("%s: %s accepted", s.f.Name, l.what)
		} else if !strings.Contains(err.Error(), " for ") {
			t.Errorf("%s: %s: the error does not say what was claimed for what: %v", s.f.Name, l.what, err)
		}
		if !bytes.Equal(before, s.arena) {
			t.Errorf("%s: %s: a refused reply changed the application's memory", s.f.Name, l.what)
		}
	}

	// What an error lets through: the size a length query or a too-small
	// buffer needs.
	s := scenes()[0]
	if r, err := run(s, frame(func(e *wire.Encoder) { e.Uint(0x150); e.Uint(4224); e.Nil() })); err != nil || r != 0x150 {
		t.Errorf("C_Sign: CKR_BUFFER_TOO_SMALL with the needed length refused: %v", err)
	} else if got := *(*uint64)(unsafe.Pointer(&s.arena[64])); got != 4224 {
		t.Errorf("C_Sign: needed length %d, want 4224", got)
	}
	// A failed C_FindObjects may leave the count as the application had it.
	s = scenes()[3]
	if r, err := run(s, frame(func(e *wire.Encoder) { e.Uint(0x91); e.Uint(77); e.Nil() })); err != nil || r != 0x91 {
		t.Errorf("C_FindObjects: CKR_OPERATION_NOT_INITIALIZED with the count left alone refused: %v", err)
	}
	s = scenes()[2]
	if r, err := run(s, frame(func(e *wire.Encoder) { e.Uint(0x150); e.Uint(516); e.Nil() })); err != nil || r != 0x150 {
		t.Errorf("C_GetSlotList: CKR_BUFFER_TOO_SMALL with the needed count refused: %v", err)
	}

	// The spec's rule where a vendor breaks it: with an error, an attribute
	// whose buffer was too small is CK_UNAVAILABLE_INFORMATION, whatever
	// length the vendor wrote; a NULL pValue gets the length.
	s = scenes()[1]
	r, err := run(s, frame(func(e *wire.Encoder) {
		e.Uint(0x150)
		e.ArrayLen(3)
		e.Uint(3)
		e.Uint(4224)
		e.Nil()
		e.Uint(0x102)
		e.Uint(20)
		e.Nil()
		e.Uint(0x40000211)
		e.Uint(240)
		e.Nil()
	}))
	if err != nil || r != 0x150 {
		t.Fatalf("CKR_BUFFER_TOO_SMALL refused: %v", err)
	}
	for _, c := range []struct {
		off  int
		want uint64
	}{{256 + 16, ^uint64(0)}, {280 + 16, 20}, {304 + 16, ^uint64(0)}} {
		if got := *(*uint64)(unsafe.Pointer(&s.arena[c.off])); got != c.want {
			t.Errorf("attribute at %d: ulValueLen %#x, want %#x", c.off, got, c.want)
		}
	}
}

// Codes no PKCS#11 version defines become CKR_GENERAL_ERROR; defined and
// vendor-defined ones pass unchanged.
func TestUndefinedReturnCodes(t *testing.T) {
	for _, c := range []struct{ got, want uint64 }{
		{0x7fffffff, 0x5},
		{0x14, 0x5},
		{0x20a, 0x5},
		{0xa3, 0xa3},
		{0x209, 0x209},
		{0x80000123, 0x80000123},
	} {
		s := scenes()[0]
		r, err := run(s, frame(func(e *wire.Encoder) { e.Uint(c.got); e.Uint(16); e.Nil() }))
		if err != nil || uint64(r) != c.want {
			t.Errorf("vendor code 0x%x: got 0x%x (%v), want 0x%x", c.got, r, err, c.want)
		}
	}
}

// Output structures reach the vendor holding the application's bytes.
func TestInfoStructuresCrossWithTheApplicationsBytes(t *testing.T) {
	s := scenes()[4] // C_GetTokenInfo
	for i := 128; i < 128+208; i++ {
		s.arena[i] = byte(i)
	}
	ch := testChannelOn(t, testRegionMem)
	if _, bad := ch.encode(s.f, s.args); bad {
		t.Fatal("refused")
	}
	if !bytes.Contains(ch.frame(), s.arena[128:128+208]) {
		t.Error("the application's CK_TOKEN_INFO bytes did not cross")
	}
	// An unreadable pointer crosses as zeros instead of faulting.
	s.args[1] = 1
	ch = testChannelOn(t, testRegionMem)
	if _, bad := ch.encode(s.f, s.args); bad {
		t.Fatal("refused")
	}
	if !bytes.Contains(ch.frame(), make([]byte, 208)) {
		t.Error("no zeros for an unreadable CK_TOKEN_INFO")
	}
}

func FuzzReply(f *testing.F) {
	for i, s := range seeds() {
		f.Add(uint8(i), s)
	}
	base := len(scenes()) - len(threes)
	for _, l := range lies3() {
		f.Add(uint8(base+l.scene), l.reply)
	}
	f.Fuzz(func(t *testing.T, which uint8, reply []byte) {
		all := scenes()
		s := all[int(which)%len(all)]
		before := bytes.Clone(s.arena)
		r, err := run(s, reply)
		s.check(t, reply)
		switch {
		case err != nil && !bytes.Equal(before, s.arena):
			t.Fatalf("%s: refused reply %x changed the application's memory", s.f.Name, reply)
		case err == nil && r == 0:
			s.checkBounds(t, reply)
		}
	})
}
