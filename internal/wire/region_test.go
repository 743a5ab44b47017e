package wire

import (
	"bytes"
	"errors"
	"testing"
	"unsafe"
)

func TestRegionRoundTrip(t *testing.T) {
	mem := make([]byte, 1<<20)
	r := NewRegion(mem)
	e := NewEncoder()
	e.SetRegion(r)
	small := []byte("small")
	big1 := bytes.Repeat([]byte{1}, RegionMin)
	big2 := bytes.Repeat([]byte{2}, RegionMin+1)
	huge := bytes.Repeat([]byte{3}, len(mem)) // does not fit after big1, big2
	e.Data(small)
	e.Data(big1)
	e.Data(big2)
	e.Data(huge)
	body := e.Frame()[HeaderSize:]
	if len(body) > len(huge)+64 {
		t.Fatalf("body of %d bytes: the two large buffers crossed inline", len(body))
	}
	if len(body) < len(huge) {
		t.Fatal("a buffer larger than the region's room was not sent inline")
	}

	d := NewDecoder()
	d.SetRegion(r)
	d.Reset(body)
	for _, want := range [][]byte{small, big1, big2, huge} {
		if got := d.Data(); !bytes.Equal(got, want) {
			t.Fatalf("data of %d bytes came back as %d", len(want), len(got))
		}
	}
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
	// big2 is cache-line aligned after big1.
	d.Reset(body)
	d.Data()
	b1, b2 := d.Data(), d.Data()
	off1 := uintptr(unsafe.Pointer(&b1[0])) - uintptr(unsafe.Pointer(&mem[0]))
	off2 := uintptr(unsafe.Pointer(&b2[0])) - uintptr(unsafe.Pointer(&mem[0]))
	if off1 != 0 || off2 != RegionMin {
		t.Errorf("offsets %d, %d", off1, off2)
	}

	// The receiver's next allocation comes after what the references used.
	r.Reset()
	d.Reset(body)
	d.Data()
	d.Data()
	d.Data()
	if off, ok := r.Alloc(1); !ok || off < 2*RegionMin+1 {
		t.Errorf("allocation at %d overlaps the inputs", off)
	}
	if off, ok := r.Offset(unsafe.Pointer(&mem[100]), 10); !ok || off != 100 {
		t.Error("Offset inside")
	}
	if _, ok := r.Offset(unsafe.Pointer(&mem[len(mem)-4]), 10); ok {
		t.Error("Offset past the end")
	}
	if _, ok := r.Offset(unsafe.Pointer(&small[0]), 1); ok {
		t.Error("Offset of memory elsewhere")
	}
}

func TestRegionRejects(t *testing.T) {
	ref := func(off, n uint64) []byte {
		e := NewEncoder()
		e.Ref(off, n)
		return bytes.Clone(e.Frame()[HeaderSize:])
	}
	r := NewRegion(make([]byte, 4096))
	cases := map[string]struct {
		region *Region
		body   []byte
	}{
		"no region":          {nil, ref(0, 1)},
		"offset past end":    {r, ref(4097, 0)},
		"length past end":    {r, ref(4000, 97)},
		"wrapping length":    {r, ref(8, ^uint64(0))},
		"wrapping offset":    {r, ref(^uint64(0), 2)},
		"other ext type":     {r, append([]byte{0xd8, 2}, make([]byte, 16)...)},
		"truncated ref":      {r, ref(0, 1)[:10]},
		"ext for plain data": {r, []byte{0xd4, 1, 0}},
	}
	for name, c := range cases {
		d := NewDecoder()
		d.SetRegion(c.region)
		d.Reset(c.body)
		if b := d.Data(); b != nil {
			t.Errorf("%s: got %d bytes", name, len(b))
		}
		if err := d.Finish(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	// The whole region, and an empty reference at its end, are fine.
	for _, b := range [][]byte{ref(0, 4096), ref(4096, 0)} {
		d := NewDecoder()
		d.SetRegion(r)
		d.Reset(b)
		d.Data()
		if err := d.Finish(); err != nil {
			t.Error(err)
		}
	}
	// Bytes never follows a reference.
	d := NewDecoder()
	d.SetRegion(r)
	d.Reset(ref(0, 1))
	d.Bytes()
	if d.Finish() == nil {
		t.Error("Bytes accepted a reference")
	}
}

func FuzzRegion(f *testing.F) {
	f.Add([]byte{0xd8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xc4, 0x01, 0x00})
	mem := make([]byte, 4096)
	f.Fuzz(func(t *testing.T, body []byte) {
		d := NewDecoder()
		d.SetRegion(NewRegion(mem))
		d.Reset(body)
		for i := 0; i < 16 && d.Ok(); i++ {
			b := d.Data()
			if !d.Ok() || len(b) == 0 {
				continue
			}
			p := uintptr(unsafe.Pointer(&b[0]))
			inFrame := p >= uintptr(unsafe.Pointer(&body[0])) && p+uintptr(len(b)) <= uintptr(unsafe.Pointer(&body[0]))+uintptr(len(body))
			inRegion := p >= uintptr(unsafe.Pointer(&mem[0])) && p+uintptr(len(b)) <= uintptr(unsafe.Pointer(&mem[0]))+uintptr(len(mem))
			if !inFrame && !inRegion {
				t.Fatalf("a view of %d bytes outside the frame and the region", len(b))
			}
		}
		d.Finish()
	})
}
