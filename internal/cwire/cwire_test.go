package cwire

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/p11isolate/p11isolate/internal/wire"
)

// value is one wire value, written by both encoders.
type value struct {
	kind byte // u n b y s a m r
	u    uint64
	b    []byte
	s    string
}

// writer is what the wire's encoder and the C writer both offer.
type writer interface {
	Uint(uint64)
	Nil()
	Bool(bool)
	Bytes([]byte)
	String(string)
	ArrayLen(int)
	Ref(off, n uint64)
}

// write writes v with w; an empty map is written by emptyMap (only the empty
// one: reflection orders a map's keys its own way).
func (v value) write(w writer, emptyMap func()) {
	switch v.kind {
	case 'u':
		w.Uint(v.u)
	case 'n':
		w.Nil()
	case 'b':
		w.Bool(v.u != 0)
	case 'y':
		w.Bytes(v.b)
	case 's':
		w.String(v.s)
	case 'a':
		w.ArrayLen(int(v.u))
	case 'm':
		emptyMap()
	case 'r':
		w.Ref(v.u, uint64(len(v.b)))
	}
}

func (v value) goWrite(e *wire.Encoder) { v.write(e, func() { e.Value(map[string]uint64{}) }) }

func (v value) cWrite(w *Writer) { v.write(w, func() { w.MapLen(0) }) }

// edges are the lengths and numbers where the encodings change form.
var edges = []uint64{0, 1, 15, 16, 31, 32, 127, 128, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<64 - 1}

func randomValues(r *rand.Rand, n int) []value {
	var vs []value
	for range n {
		e := edges[r.IntN(len(edges))]
		switch r.IntN(8) {
		case 0:
			vs = append(vs, value{kind: 'u', u: e})
		case 1:
			vs = append(vs, value{kind: 'u', u: r.Uint64() >> r.IntN(64)})
		case 2:
			vs = append(vs, value{kind: 'n'})
		case 3:
			vs = append(vs, value{kind: 'b', u: uint64(r.IntN(2))})
		case 4:
			vs = append(vs, value{kind: 'y', b: bytes.Repeat([]byte{byte(r.IntN(256))}, int(min(e, 70000)))})
		case 5:
			vs = append(vs, value{kind: 's', s: string(bytes.Repeat([]byte{'x'}, int(min(e, 70000))))})
		case 6:
			vs = append(vs, value{kind: 'a', u: min(e, 1<<32-1)})
		case 7:
			vs = append(vs, value{kind: 'r', u: r.Uint64(), b: make([]byte, r.IntN(3))})
		}
	}
	return append(vs, value{kind: 'm'})
}

// The C writer writes the very bytes internal/wire's encoder writes.
func TestWriterMatchesWire(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		vs := randomValues(r, 1+r.IntN(20))
		e := wire.NewEncoder()
		var w Writer
		w.Reset()
		for _, v := range vs {
			v.goWrite(e)
			v.cWrite(&w)
		}
		want, got := e.Frame(), w.Frame()
		w.Free()
		if !bytes.Equal(want, got) {
			t.Fatalf("round %d, values %v:\nwire %x\nC    %x", round, vs, want, got)
		}
	}
}

// Every value the C writer wrote, the C reader reads back.
func TestRoundTrip(t *testing.T) {
	region := bytes.Repeat([]byte{7}, 64)
	var w Writer
	w.Reset()
	w.Uint(1 << 40)
	w.Nil()
	w.Bool(true)
	w.Bytes([]byte("abc"))
	w.String("build")
	w.ArrayLen(2)
	w.Ref(60, 4)
	w.MapLen(1)
	frame := w.Frame()
	w.Free()
	rd := NewReader(frame[wire.HeaderSize:], region)
	defer rd.Free()
	if rd.Uint() != 1<<40 || !rd.IsNil() || !rd.Bool() || string(rd.Bytes()) != "abc" || rd.String() != "build" ||
		rd.ArrayLen(2) != 2 || !bytes.Equal(rd.Data(), region[60:]) || rd.MapLen(1) != 1 || rd.Finish() != nil {
		t.Fatalf("round trip failed: %v", rd.Finish())
	}
}

// op is one decoding step, run on both decoders.
func step(op byte, g *wire.Decoder, c *Reader) (any, any) {
	switch op % 11 {
	case 0:
		return g.Uint(), c.Uint()
	case 1:
		return g.UintMax(1000, "value"), c.UintMax(1000)
	case 2:
		return g.Bool(), c.Bool()
	case 3:
		return g.IsNil(), c.IsNil()
	case 4:
		return g.IsFalse(), c.IsFalse()
	case 5:
		return g.PeekArray(), c.PeekArray()
	case 6:
		return g.PeekBytes(), c.PeekBytes()
	case 7:
		return nonNil(g.Bytes()), nonNil(c.Bytes())
	case 8:
		return nonNil(g.Data()), nonNil(c.Data())
	case 9:
		return g.ArrayLen(int(op)), c.ArrayLen(int(op))
	default:
		return g.ArrayLen(1 << 20), c.ArrayLen(1 << 20)
	}
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// FuzzDecoders runs one sequence of decoding steps over one body with the C
// reader and with internal/wire's decoder: the same values, the same
// failures, and the same verdict at the end (trailing bytes included).
func FuzzDecoders(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		vs := randomValues(r, 1+r.IntN(6))
		e := wire.NewEncoder()
		var ops []byte
		for _, v := range vs {
			if v.kind == 's' || v.kind == 'm' {
				continue
			}
			v.goWrite(e)
			ops = append(ops, map[byte]byte{'u': 0, 'n': 3, 'b': 2, 'y': 7, 'a': 10, 'r': 8}[v.kind])
		}
		f.Add(ops, bytes.Clone(e.Frame()[wire.HeaderSize:]))
	}
	f.Add([]byte{0, 0}, []byte{0xcf, 1, 2})
	f.Add([]byte{8}, []byte{0xd8, 1, 60, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0})
	region := make([]byte, 64)
	for i := range region {
		region[i] = byte(i)
	}
	f.Fuzz(func(t *testing.T, ops, body []byte) {
		g := wire.NewDecoder()
		g.SetRegion(wire.NewRegion(region))
		g.Reset(body)
		c := NewReader(body, region)
		defer c.Free()
		for i, op := range ops {
			gv, cv := step(op, g, c)
			if g.Ok() != c.Ok() {
				t.Fatalf("step %d (op %d) on %x: wire ok=%v (%v), C ok=%v (%v)", i, op%11, body, g.Ok(), g.Err(), c.Ok(), c.Finish())
			}
			if g.Ok() && !reflect.DeepEqual(gv, cv) {
				t.Fatalf("step %d (op %d) on %x: wire %v, C %v", i, op%11, body, gv, cv)
			}
		}
		if ge, ce := g.Finish(), c.Finish(); (ge == nil) != (ce == nil) {
			t.Fatalf("finish on %x after %v: wire %v, C %v", body, ops, ge, ce)
		}
	})
}
