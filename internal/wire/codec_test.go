package wire

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRoundTrip(t *testing.T) {
	e := NewEncoder()
	e.Uint(0)
	e.Uint(1 << 40)
	e.Nil()
	e.Bytes(nil)
	e.Bytes([]byte("abc"))
	e.Bool(true)
	e.ArrayLen(2)
	e.String("x")
	e.Uint(^uint64(0))
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	d := NewDecoder()
	d.Reset(e.Frame()[HeaderSize:])
	if v := d.Uint(); v != 0 {
		t.Errorf("uint = %d", v)
	}
	if v := d.Uint(); v != 1<<40 {
		t.Errorf("uint = %d", v)
	}
	if !d.IsNil() {
		t.Error("nil not seen")
	}
	if d.IsNil() {
		t.Error("empty bytes read as nil")
	}
	if b := d.Bytes(); b == nil || len(b) != 0 {
		t.Errorf("empty bytes = %v", b)
	}
	if b := d.Bytes(); string(b) != "abc" {
		t.Errorf("bytes = %q", b)
	}
	if !d.Bool() {
		t.Error("bool")
	}
	if !d.PeekArray() || d.ArrayLen(2) != 2 {
		t.Error("array")
	}
	if d.String() != "x" || d.Uint() != ^uint64(0) {
		t.Error("string, max uint")
	}
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
}

func TestDecoderRejects(t *testing.T) {
	enc := func(f func(e *Encoder)) []byte {
		e := NewEncoder()
		f(e)
		return bytes.Clone(e.Frame()[HeaderSize:])
	}
	cases := map[string]struct {
		body []byte
		read func(d *Decoder)
	}{
		"trailing bytes":   {enc(func(e *Encoder) { e.Uint(1); e.Uint(2) }), func(d *Decoder) { d.Uint() }},
		"negative integer": {[]byte{0xff}, func(d *Decoder) { d.Uint() }},
		"int8":             {[]byte{0xd0, 0x01}, func(d *Decoder) { d.Uint() }},
		"string for bytes": {enc(func(e *Encoder) { e.String("x") }), func(d *Decoder) { d.Bytes() }},
		"truncated bytes":  {[]byte{0xc4, 0x05, 'a'}, func(d *Decoder) { d.Bytes() }},
		"array too long":   {enc(func(e *Encoder) { e.ArrayLen(3) }), func(d *Decoder) { d.ArrayLen(2) }},
		"over max":         {enc(func(e *Encoder) { e.Uint(300) }), func(d *Decoder) { d.UintMax(255, "byte") }},
		"empty":            {nil, func(d *Decoder) { d.Uint() }},
	}
	for name, c := range cases {
		d := NewDecoder()
		d.Reset(c.body)
		c.read(d)
		if err := d.Finish(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestStickyError(t *testing.T) {
	d := NewDecoder()
	d.Reset([]byte{0xc0, 0x01}) // nil, then 1
	d.Bytes()                   // fails: nil is not bytes
	if v := d.Uint(); v != 0 {
		t.Errorf("read %d after an error", v)
	}
	if d.Ok() || d.Finish() == nil {
		t.Error("error not kept")
	}
}

func TestFrames(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	big := bytes.Repeat([]byte{7}, 3<<20)
	e := NewEncoder()
	e.Bytes(big)
	go WriteFrame(fds[0], e.Frame())
	var r Reader
	body, err := r.ReadFrame(fds[1])
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder()
	d.Reset(body)
	if !bytes.Equal(d.Bytes(), big) || d.Finish() != nil {
		t.Fatal("large frame corrupted")
	}

	// A frame announcing more than the cap is refused before any allocation.
	unix.Write(fds[0], []byte{0xff, 0xff, 0xff, 0x7f})
	if _, err := r.ReadFrame(fds[1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversized frame: err = %v", err)
	}

	// A closed peer is ErrClosed, and writing to it raises no SIGPIPE.
	unix.Close(fds[0])
	if _, err := r.ReadFrame(fds[1]); err != ErrClosed {
		t.Fatalf("read after close: %v", err)
	}
	if err := WriteFrame(fds[1], e.Frame()); err != ErrClosed {
		t.Fatalf("write after close: %v", err)
	}
}

func FuzzDecoder(f *testing.F) {
	f.Add([]byte{0x01, 0xc0, 0xc4, 0x01, 0x00})
	f.Add([]byte{0x92, 0x01, 0xc4, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) {
		d := NewDecoder()
		d.Reset(body)
		for i := 0; i < 64 && d.Ok(); i++ {
			switch {
			case d.IsNil():
			case d.PeekArray():
				d.ArrayLen(MaxTemplate)
			default:
				if b := d.Bytes(); d.Ok() && len(b) > len(body) {
					t.Fatalf("bytes view of %d from a body of %d", len(b), len(body))
				}
			}
		}
		d.Finish()
	})
}
