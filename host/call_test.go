package main

import (
	"bytes"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/p11isolate/p11isolate/internal/cwire"
	"github.com/p11isolate/p11isolate/internal/mechparams"
	"github.com/p11isolate/p11isolate/internal/p11calls"
	"github.com/p11isolate/p11isolate/internal/wire"
)

// These tests drive the host's request decoder and reply encoder with the
// vendor played by Go code that writes into the arguments, as the vendor
// would: run() minus the C call.

func funcID(name string) uint64 {
	f, ok := p11calls.ByName(name)
	if !ok {
		panic(name)
	}
	return uint64(f.ID)
}

func setUlong(p uintptr, v uint64) { *(*uint64)(ptr(p)) = v }
func getUlong(p uintptr) uint64    { return *(*uint64)(ptr(p)) }
func mem(p uintptr, n int) []byte  { return unsafe.Slice((*byte)(ptr(p)), n) }

// testRegion maps an anonymous shared region like the proxy's memfd.
func testRegion(tb testing.TB) []byte {
	m, err := unix.Mmap(-1, 0, wire.RegionSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Munmap(m) })
	return m
}

// hostCase is one request, the vendor's doing and a check of the reply.
type hostCase struct {
	name    string
	request func(e *wire.Encoder, region []byte)
	vendor  func(a []uintptr)
	check   func(t testing.TB, d *wire.Decoder)
}

func hostCases() []hostCase {
	big := bytes.Repeat([]byte{0x5a}, 64<<10)
	sevens := bytes.Repeat([]byte{7}, 32)
	return []hostCase{
		{"GenerateRandom32", func(e *wire.Encoder, _ []byte) {
			e.Uint(funcID("C_GenerateRandom"))
			e.Uint(1)
			e.Bool(true)
			e.Uint(32)
		}, func(a []uintptr) {
			copy(mem(a[1], 32), sevens)
		}, func(t testing.TB, d *wire.Decoder) {
			if d.Uint() != 0 || !bytes.Equal(d.Data(), sevens) {
				t.Error("random bytes")
			}
		}},
		{"SignRSA2048", func(e *wire.Encoder, _ []byte) {
			e.Uint(funcID("C_Sign"))
			e.Uint(1)
			e.Bytes(make([]byte, 32))
			e.Uint(256)
			e.Bool(true)
		}, func(a []uintptr) {
			setUlong(a[4], 256)
			mem(a[3], 256)[0] = 9
		}, func(t testing.TB, d *wire.Decoder) {
			if d.Uint() != 0 || d.Uint() != 256 || d.Data()[0] != 9 {
				t.Error("signature")
			}
		}},
		{"GetAttributeValue2", func(e *wire.Encoder, _ []byte) {
			e.Uint(funcID("C_GetAttributeValue"))
			e.Uint(1)
			e.Uint(2)
			e.ArrayLen(2)
			e.Uint(3)
			e.Uint(64)
			e.Uint(0x102)
			e.Uint(64)
		}, func(a []uintptr) {
			attrs := unsafe.Slice((*[3]uint64)(ptr(a[2])), 2)
			attrs[0][2] = 13
			copy(mem(uintptr(attrs[0][1]), 13), "bench-aes-256")
			attrs[1][2] = 3
		}, func(t testing.TB, d *wire.Decoder) {
			if d.Uint() != 0 || d.ArrayLen(2) != 2 || d.Uint() != 3 || d.Uint() != 13 || string(d.Data()) != "bench-aes-256" ||
				d.Uint() != 0x102 || d.Uint() != 3 || len(d.Data()) != 3 {
				t.Error("attributes")
			}
		}},
		{"FindObjects4", func(e *wire.Encoder, _ []byte) {
			e.Uint(funcID("C_FindObjects"))
			e.Uint(1)
			e.Bool(true)
			e.Uint(4)
			e.Uint(0)
		}, func(a []uintptr) {
			setUlong(a[1], 42)
			setUlong(a[3], 1)
		}, func(t testing.TB, d *wire.Decoder) {
			if d.Uint() != 0 || d.Uint() != 1 || d.ArrayLen(4) != 1 || d.Uint() != 42 {
				t.Error("handles")
			}
		}},
		{"EncryptInitGCM", func(e *wire.Encoder, _ []byte) {
			e.Uint(funcID("C_EncryptInit"))
			e.Uint(1)
			// The proxy's encoding of CK_MECHANISM{CKM_AES_GCM, &params}.
			const gcm = 0x1087
			iv := make([]byte, 12)
			params := [6]uintptr{uintptr(unsafe.Pointer(&iv[0])), 12, 96, 0, 0, 128}
			l, _, _ := mechparams.Lookup(gcm)
			e.Uint(gcm)
			e.ArrayLen(2)
			e.Uint(uint64(l.Size))
			body, ok := cwire.EncodeParam(l.Index(), unsafe.Pointer(&params))
			if !ok {
				panic("the C walker refused CK_GCM_PARAMS")
			}
			e.Write(body)
			e.Uint(7)
		}, func(a []uintptr) {
			if a[2] != 7 || *(*uint64)(ptr(a[1])) != 0x1087 {
				panic("mechanism")
			}
		}, func(t testing.TB, d *wire.Decoder) {
			if d.Uint() != 0 {
				t.Error("rv")
			}
		}},
		{"DigestUpdate64K", func(e *wire.Encoder, region []byte) {
			e.Uint(funcID("C_DigestUpdate"))
			e.Uint(1)
			e.Data(big) // into the region
		}, func(a []uintptr) {
			if a[2] != 64<<10 || !bytes.Equal(mem(a[1], 64<<10), big) {
				panic("digest input")
			}
		}, func(t testing.TB, d *wire.Decoder) {
			if d.Uint() != 0 {
				t.Error("rv")
			}
		}},
		{"Encrypt64K", func(e *wire.Encoder, region []byte) {
			e.Uint(funcID("C_Encrypt"))
			e.Uint(1)
			e.Data(big)
			e.Uint(64<<10 + 16)
			e.Bool(true)
		}, func(a []uintptr) {
			copy(mem(a[3], 64<<10), mem(a[1], 64<<10))
			setUlong(a[4], 64<<10)
		}, func(t testing.TB, d *wire.Decoder) {
			if d.Uint() != 0 || d.Uint() != 64<<10 || !bytes.Equal(d.Data(), big) {
				t.Error("ciphertext")
			}
		}},
	}
}

// runCase decodes the request in body, plays the vendor, encodes the reply
// into e and checks it.
func runCase(tb testing.TB, c *call, hc *hostCase, body []byte, e *wire.Encoder, d *wire.Decoder) {
	defer c.reset()
	if _, _, err := c.decode(body); err != nil {
		tb.Fatalf("%s: %v", hc.name, err)
	}
	hc.vendor(c.args[:])
	e.Reset()
	c.encodeReply(e, 0)
	if hc.check != nil {
		d.Reset(e.Frame()[wire.HeaderSize:])
		hc.check(tb, d)
		if err := d.Finish(); err != nil {
			tb.Fatalf("%s: reply: %v", hc.name, err)
		}
	}
}

// setup makes a call with a region, and the request body as the proxy
// would encode it into the same region.
func setup(tb testing.TB, hc *hostCase) (*call, []byte, *wire.Decoder) {
	region := testRegion(tb)
	c := newCall(region)
	tb.Cleanup(c.free)
	r := wire.NewRegion(region)
	pe := wire.NewEncoder()
	pe.SetRegion(r)
	hc.request(pe, region)
	body := bytes.Clone(pe.Frame()[wire.HeaderSize:])
	d := wire.NewDecoder()
	d.SetRegion(r)
	return c, body, d
}

func TestCalls(t *testing.T) {
	for _, hc := range hostCases() {
		c, body, d := setup(t, &hc)
		runCase(t, c, &hc, body, wire.NewEncoder(), d)
	}
}

func TestNoAllocs(t *testing.T) {
	for _, hc := range hostCases() {
		c, body, d := setup(t, &hc)
		e := wire.NewEncoder()
		hc.check = nil
		runCase(t, c, &hc, body, e, d)
		if n := testing.AllocsPerRun(100, func() { runCase(t, c, &hc, body, e, d) }); n != 0 {
			t.Errorf("%s: %.1f allocations per call", hc.name, n)
		}
	}
}

func BenchmarkCall(b *testing.B) {
	for _, hc := range hostCases() {
		b.Run(hc.name, func(b *testing.B) {
			c, body, d := setup(b, &hc)
			e := wire.NewEncoder()
			hc.check = nil
			b.ReportAllocs()
			for range b.N {
				runCase(b, c, &hc, body, e, d)
			}
		})
	}
}

// Large buffers cross through the region both ways: the vendor reads the
// input where the proxy put it, and writes the output after it.
func TestRegionPlacement(t *testing.T) {
	var hc hostCase
	for _, c := range hostCases() {
		if c.name == "Encrypt64K" {
			hc = c
		}
	}
	c, body, _ := setup(t, &hc)
	if len(body) > 64 {
		t.Fatalf("a 64 KiB input crossed inline (%d-byte request)", len(body))
	}
	if _, _, err := c.decode(body); err != nil {
		t.Fatal(err)
	}
	base := uintptr(unsafe.Pointer(&c.region.Mem()[0]))
	in, out := c.args[1]-base, c.args[3]-base
	if in != 0 || out < 64<<10 || out+64<<10+16 > wire.RegionSize {
		t.Errorf("input at %d, output at %d", in, out)
	}
	hc.vendor(c.args[:])
	e := wire.NewEncoder()
	c.encodeReply(e, 0)
	if e.Len() > 64 {
		t.Errorf("a 64 KiB output crossed inline (%d-byte reply)", e.Len())
	}
	c.reset()

	// A reference past the region is malformed.
	e.Reset()
	e.Uint(funcID("C_DigestUpdate"))
	e.Uint(1)
	e.Ref(wire.RegionSize-8, 16)
	if _, _, err := c.decode(e.Frame()[wire.HeaderSize:]); err == nil {
		t.Error("a reference past the region was accepted")
	}
	c.reset()

	// Without a region, a reference is malformed and outputs go to the arena.
	c = newCall(nil)
	defer c.free()
	if _, _, err := c.decode(body); err == nil {
		t.Error("a reference was accepted without a region")
	}
}

// A NULL template comes back as nil, whatever its count; an empty one as an
// empty array.
func TestNullTemplate(t *testing.T) {
	c := newCall(nil)
	defer c.free()
	for _, n := range []uint64{0, 3} {
		e := wire.NewEncoder()
		e.Uint(funcID("C_GetAttributeValue"))
		e.Uint(1)
		e.Uint(2)
		e.Nil()
		e.Uint(n)
		if _, _, err := c.decode(e.Frame()[wire.HeaderSize:]); err != nil {
			t.Fatal(err)
		}
		e.Reset()
		c.encodeReply(e, 0)
		d := wire.NewDecoder()
		d.Reset(e.Frame()[wire.HeaderSize:])
		if d.Uint() != 0 || !d.IsNil() || d.Finish() != nil {
			t.Errorf("NULL template of %d: reply %x", n, e.Frame())
		}
		c.reset()
	}
}
