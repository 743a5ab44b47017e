// Package wire is the framing and encoding shared by the proxy and the host:
// length-prefixed msgpack frames over a stream socket, read and written with
// blocking system calls on the calling thread.
package wire

import (
	"errors"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Encoder builds one frame. The first HeaderSize bytes of Frame() are the
// length prefix, filled in by Frame.
type Encoder struct {
	buf    []byte
	enc    *msgpack.Encoder
	err    error
	region *Region // where Data puts large buffers; nil: inline only
}

// NewEncoder returns an empty encoder.
func NewEncoder() *Encoder {
	e := &Encoder{buf: make([]byte, HeaderSize, 4096)}
	e.enc = msgpack.NewEncoder(e)
	return e
}

// Reset empties the encoder, keeping its memory unless it grew past keep bytes.
func (e *Encoder) Reset() {
	if cap(e.buf) > keepBuffer {
		e.buf = make([]byte, HeaderSize, 4096)
	}
	e.buf = e.buf[:HeaderSize]
	e.err = nil
}

// Write appends p; it makes Encoder the msgpack encoder's writer.
func (e *Encoder) Write(p []byte) (int, error) {
	e.buf = append(e.buf, p...)
	return len(p), nil
}

// WriteByte appends c.
func (e *Encoder) WriteByte(c byte) error {
	e.buf = append(e.buf, c)
	return nil
}

func (e *Encoder) keep(err error) {
	if e.err == nil && err != nil {
		e.err = err
	}
}

// Uint encodes an unsigned integer.
func (e *Encoder) Uint(v uint64) { e.keep(e.enc.EncodeUint(v)) }

// Nil encodes nil, the wire's NULL.
func (e *Encoder) Nil() { e.keep(e.enc.EncodeNil()) }

// Bool encodes a boolean.
func (e *Encoder) Bool(v bool) { e.keep(e.enc.EncodeBool(v)) }

// Bytes encodes b as a binary value; a nil b is encoded as empty bytes, never
// as NULL (use Nil for that).
func (e *Encoder) Bytes(b []byte) {
	e.keep(e.enc.EncodeBytesLen(len(b)))
	e.buf = append(e.buf, b...)
}

// String encodes s.
func (e *Encoder) String(s string) { e.keep(e.enc.EncodeString(s)) }

// ArrayLen encodes an array header of n elements.
func (e *Encoder) ArrayLen(n int) { e.keep(e.enc.EncodeArrayLen(n)) }

// Value encodes v with msgpack's reflection (for control messages only).
func (e *Encoder) Value(v any) { e.keep(e.enc.Encode(v)) }

// Wipe zeroes the encoded bytes: frames that carried a PIN do not linger in
// the pooled buffer.
func (e *Encoder) Wipe() { clear(e.buf) }

// Err is the first error met while encoding.
func (e *Encoder) Err() error { return e.err }

// Len is the size of the encoded body, without the length prefix.
func (e *Encoder) Len() int { return len(e.buf) - HeaderSize }

// Frame returns the whole frame, length prefix included.
func (e *Encoder) Frame() []byte {
	putHeader(e.buf, len(e.buf)-HeaderSize)
	return e.buf
}

// ErrMalformed wraps every decoding failure: the peer sent something that is
// not a well-formed message of the protocol.
var ErrMalformed = errors.New("malformed message")

// Decoder reads one frame's body. Errors are sticky: after the first, every
// method returns a zero value, and Finish reports the error. Byte strings are
// returned as views into the frame, never copied.
type Decoder struct {
	buf    []byte
	pos    int
	dec    *msgpack.Decoder
	err    error
	region *Region // where Data's references point; nil: refused
}

// NewDecoder returns a decoder; call Reset before use.
func NewDecoder() *Decoder {
	d := &Decoder{}
	d.dec = msgpack.NewDecoder(d)
	return d
}

// Reset makes d read body.
func (d *Decoder) Reset(body []byte) {
	d.buf, d.pos, d.err = body, 0, nil
	d.dec.ResetReader(d)
}

// Read implements io.Reader over the body for the msgpack decoder.
func (d *Decoder) Read(p []byte) (int, error) {
	if d.pos >= len(d.buf) {
		return 0, io.EOF
	}
	n := copy(p, d.buf[d.pos:])
	d.pos += n
	return n, nil
}

// ReadByte implements io.ByteScanner.
func (d *Decoder) ReadByte() (byte, error) {
	if d.pos >= len(d.buf) {
		return 0, io.EOF
	}
	d.pos++
	return d.buf[d.pos-1], nil
}

// UnreadByte implements io.ByteScanner.
func (d *Decoder) UnreadByte() error {
	if d.pos == 0 {
		return errors.New("wire: unread at start")
	}
	d.pos--
	return nil
}

// Fail records err (wrapped as malformed) unless an error is already kept.
func (d *Decoder) Fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
}

func (d *Decoder) keep(what string, err error) bool {
	if err != nil {
		d.Fail("%s: %v", what, err)
	}
	return d.err == nil
}

// Ok reports whether no error has been met yet.
func (d *Decoder) Ok() bool { return d.err == nil }

// Err is the first error met.
func (d *Decoder) Err() error { return d.err }

// Uint decodes an unsigned integer.
func (d *Decoder) Uint() uint64 {
	if d.err != nil {
		return 0
	}
	c, err := d.dec.PeekCode()
	if !d.keep("uint", err) {
		return 0
	}
	if !msgpcode.IsFixedNum(c) && c != msgpcode.Uint8 && c != msgpcode.Uint16 &&
		c != msgpcode.Uint32 && c != msgpcode.Uint64 || c >= msgpcode.NegFixedNumLow {
		d.Fail("expected unsigned integer, got code 0x%02x", c)
		return 0
	}
	v, err := d.dec.DecodeUint64()
	d.keep("uint", err)
	return v
}

// UintMax decodes an unsigned integer and fails unless it is at most max.
func (d *Decoder) UintMax(max uint64, what string) uint64 {
	v := d.Uint()
	if v > max {
		d.Fail("%s %d exceeds %d", what, v, max)
		return 0
	}
	return v
}

// Bool decodes a boolean: true or false, nothing else (msgpack's decoder
// would take nil for false).
func (d *Decoder) Bool() bool {
	if d.err != nil {
		return false
	}
	c, err := d.dec.PeekCode()
	if !d.keep("bool", err) {
		return false
	}
	if c != msgpcode.True && c != msgpcode.False {
		d.Fail("expected bool, got code 0x%02x", c)
		return false
	}
	v, err := d.dec.DecodeBool()
	d.keep("bool", err)
	return v
}

// IsNil consumes a nil and reports true when the next value is nil (NULL);
// otherwise it consumes nothing.
func (d *Decoder) IsNil() bool {
	if d.err != nil {
		return false
	}
	c, err := d.dec.PeekCode()
	if !d.keep("value", err) {
		return false
	}
	if c != msgpcode.Nil {
		return false
	}
	d.pos++
	return true
}

// Bytes decodes a binary value as a view into the frame.
func (d *Decoder) Bytes() []byte {
	if d.err != nil {
		return nil
	}
	c, err := d.dec.PeekCode()
	if !d.keep("bytes", err) {
		return nil
	}
	if c != msgpcode.Bin8 && c != msgpcode.Bin16 && c != msgpcode.Bin32 {
		d.Fail("expected bytes, got code 0x%02x", c)
		return nil
	}
	n, err := d.dec.DecodeBytesLen()
	if !d.keep("bytes", err) {
		return nil
	}
	if n < 0 || n > len(d.buf)-d.pos {
		d.Fail("bytes length %d past the end of the frame", n)
		return nil
	}
	b := d.buf[d.pos : d.pos+n : d.pos+n]
	d.pos += n
	return b
}

// String decodes a string (copied).
func (d *Decoder) String() string {
	if d.err != nil {
		return ""
	}
	s, err := d.dec.DecodeString()
	d.keep("string", err)
	return s
}

// ArrayLen decodes an array header and fails unless 0 <= n <= max.
func (d *Decoder) ArrayLen(max int) int {
	if d.err != nil {
		return 0
	}
	n, err := d.dec.DecodeArrayLen()
	if !d.keep("array", err) {
		return 0
	}
	if n < 0 || n > max {
		d.Fail("array of %d elements, at most %d allowed", n, max)
		return 0
	}
	return n
}

// Value decodes into v with msgpack's reflection (control messages only).
func (d *Decoder) Value(v any) {
	if d.err != nil {
		return
	}
	d.keep("value", d.dec.Decode(v))
}

// Finish returns the first error, or an error if bytes remain unread.
func (d *Decoder) Finish() error {
	if d.err == nil && d.pos != len(d.buf) {
		d.Fail("%d trailing bytes", len(d.buf)-d.pos)
	}
	return d.err
}

// PeekArray reports whether the next value is an array, consuming nothing.
func (d *Decoder) PeekArray() bool {
	if d.err != nil {
		return false
	}
	c, err := d.dec.PeekCode()
	if err != nil {
		return false
	}
	return msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32
}

// PeekBytes reports whether the next value is a binary string, consuming
// nothing.
func (d *Decoder) PeekBytes() bool {
	if d.err != nil {
		return false
	}
	c, err := d.dec.PeekCode()
	if err != nil {
		return false
	}
	return c == msgpcode.Bin8 || c == msgpcode.Bin16 || c == msgpcode.Bin32
}

// IsFalse consumes a false and reports true when the next value is false;
// otherwise it consumes nothing.
func (d *Decoder) IsFalse() bool {
	if d.err != nil {
		return false
	}
	c, err := d.dec.PeekCode()
	if err != nil || c != msgpcode.False {
		return false
	}
	d.pos++
	return true
}
