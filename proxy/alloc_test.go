package main

import (
	"bytes"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/p11isolate/p11isolate/internal/p11calls"
	"github.com/p11isolate/p11isolate/internal/wire"
)

// The call path allocates nothing per call beyond its pooled buffers: these
// benchmarks run encode + decode (the C data plane) of the common calls against
// canned honest replies and report allocs/op, which must stay 0
// (TestNoAllocs checks that in every `go test`).

// benchCall is one call with its application memory and the host's reply.
type benchCall struct {
	name  string
	f     p11calls.Func
	mem   []byte // the application's memory the arguments point into
	args  []uintptr
	reply []byte // reply body
}

func funcByName(name string) p11calls.Func {
	f, ok := p11calls.ByName(name)
	if !ok {
		panic(name)
	}
	return f
}

func replyBody(parts func(e *wire.Encoder)) []byte {
	e := wire.NewEncoder()
	parts(e)
	return bytes.Clone(e.Frame()[wire.HeaderSize:])
}

func benchCalls() []*benchCall {
	var out []*benchCall
	mk := func(name, fn string, size int) *benchCall {
		c := &benchCall{name: name, f: funcByName(fn), mem: make([]byte, size)}
		out = append(out, c)
		return c
	}
	at := func(c *benchCall, off int) uintptr { return uintptr(unsafe.Pointer(&c.mem[off])) }

	c := mk("GenerateRandom32", "C_GenerateRandom", 4096)
	c.args = []uintptr{1, at(c, 0), 32}
	c.reply = replyBody(func(e *wire.Encoder) { e.Uint(0); e.Bytes(make([]byte, 32)) })

	c = mk("SignRSA2048", "C_Sign", 4096)
	putUlong(c.mem[1024:], 256)
	c.args = []uintptr{1, at(c, 0), 32, at(c, 2048), at(c, 1024)}
	c.reply = replyBody(func(e *wire.Encoder) { e.Uint(0); e.Uint(256); e.Bytes(make([]byte, 256)) })

	c = mk("GetAttributeValue2", "C_GetAttributeValue", 4096)
	// {CKA_LABEL, buf@1024 cap 64}, {CKA_ID, buf@2048 cap 64}
	for i, off := range []int{1024, 2048} {
		putUlong(c.mem[i*24:], uint64([]int{3, 0x102}[i]))
		*(*uintptr)(unsafe.Pointer(&c.mem[i*24+8])) = at(c, off)
		putUlong(c.mem[i*24+16:], 64)
	}
	c.args = []uintptr{1, 2, at(c, 0), 2}
	c.reply = replyBody(func(e *wire.Encoder) {
		e.Uint(0)
		e.ArrayLen(2)
		e.Uint(3) // CKA_LABEL
		e.Uint(13)
		e.Bytes([]byte("bench-aes-256"))
		e.Uint(0x102) // CKA_ID
		e.Uint(3)
		e.Bytes([]byte{1, 2, 3})
	})

	c = mk("FindObjects4", "C_FindObjects", 4096)
	c.args = []uintptr{1, at(c, 0), 4, at(c, 1024)}
	c.reply = replyBody(func(e *wire.Encoder) { e.Uint(0); e.Uint(1); e.ArrayLen(1); e.Uint(42) })

	c = mk("EncryptInitGCM", "C_EncryptInit", 4096)
	// CK_MECHANISM{CKM_AES_GCM, &params@64, 48} and CK_GCM_PARAMS{iv@512, 12,
	// 96, NULL, 0, 128}
	putUlong(c.mem[0:], 0x1087)
	*(*uintptr)(unsafe.Pointer(&c.mem[8])) = at(c, 64)
	putUlong(c.mem[16:], 48)
	*(*uintptr)(unsafe.Pointer(&c.mem[64])) = at(c, 512)
	putUlong(c.mem[72:], 12)
	putUlong(c.mem[80:], 96)
	putUlong(c.mem[104:], 128)
	c.args = []uintptr{1, at(c, 0), 7}
	c.reply = replyBody(func(e *wire.Encoder) { e.Uint(0) })

	c = mk("DigestUpdate64K", "C_DigestUpdate", 64<<10)
	c.args = []uintptr{1, at(c, 0), 64 << 10}
	c.reply = replyBody(func(e *wire.Encoder) { e.Uint(0) })

	// PKCS#11 3.x: a message of a session whose message encryption is
	// CKM_AES_GCM (the session primed as reply3_test.go's scenes are), its
	// IV and tag coming back; a key encapsulation; a login with a user name.
	const session = 0x3300
	openSession(session)
	beginMessages(session, "C_MessageEncryptInit", ckmAESGCM)
	c = mk("EncryptMessageGCM", "C_EncryptMessage", 4096)
	// CK_GCM_MESSAGE_PARAMS{iv@512, 12, 0, CKG_GENERATE, tag@576, 128}
	*(*uintptr)(unsafe.Pointer(&c.mem[0])) = at(c, 512)
	putUlong(c.mem[8:], 12)
	putUlong(c.mem[24:], ckgGenerate)
	*(*uintptr)(unsafe.Pointer(&c.mem[32])) = at(c, 576)
	putUlong(c.mem[40:], 128)
	putUlong(c.mem[1024:], 256)
	c.args = []uintptr{session, at(c, 0), 48, at(c, 640), 16, at(c, 2048), 256, at(c, 3072), at(c, 1024)}
	c.reply = replyBody(func(e *wire.Encoder) {
		e.Uint(0)
		gcmOuts(e, gcmIV, gcmTag)
		e.Uint(256)
		e.Bytes(make([]byte, 256))
	})

	c = mk("EncapsulateKeyMLKEM768", "C_EncapsulateKey", 4096)
	// CK_MECHANISM{CKM_ML_KEM, NULL, 0}; {CKA_CLASS, CKA_KEY_TYPE} at 64
	putUlong(c.mem[0:], ckmMLKEM)
	for i, typ := range []uint64{0, 0x100} {
		putUlong(c.mem[64+24*i:], typ)
		*(*uintptr)(unsafe.Pointer(&c.mem[64+24*i+8])) = at(c, 256+8*i)
		putUlong(c.mem[64+24*i+16:], 8)
	}
	putUlong(c.mem[1024:], 1088)
	c.args = []uintptr{session, at(c, 0), 5, at(c, 64), 2, at(c, 2048), at(c, 1024), at(c, 1032)}
	c.reply = replyBody(func(e *wire.Encoder) { e.Uint(0); e.Uint(1088); e.Bytes(make([]byte, 1088)); e.Uint(0x77) })

	c = mk("LoginUser", "C_LoginUser", 4096)
	copy(c.mem[0:], "123456")
	copy(c.mem[64:], "alice")
	c.args = []uintptr{session, 1, at(c, 0), 6, at(c, 64), 5}
	c.reply = replyBody(func(e *wire.Encoder) { e.Uint(0) })
	return out
}

// testChannel is a channel without a socket but with a shared region.
func testChannel(tb testing.TB) *channel {
	mem, memfd, err := newRegion()
	if err != nil {
		tb.Fatal(err)
	}
	unix.Close(memfd)
	ch := newChannel(-1, mem, 0)
	tb.Cleanup(ch.free)
	return ch
}

// roundTrip encodes the request and decodes the canned reply, as forward
// does around the socket.
func (c *benchCall) roundTrip(tb testing.TB, ch *channel) {
	if r, bad := ch.encode(c.f, c.args); bad {
		tb.Fatalf("%s: encode refused: 0x%x", c.name, r)
	}
	if r, err := ch.decode(c.f, c.args, c.reply); err != nil || r != 0 {
		tb.Fatalf("%s: decode: 0x%x %v", c.name, r, err)
	}
}

func BenchmarkEncodeDecode(b *testing.B) {
	for _, c := range benchCalls() {
		b.Run(c.name, func(b *testing.B) {
			ch := testChannel(b)
			c.roundTrip(b, ch)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c.roundTrip(b, ch)
			}
		})
	}
}

func TestNoAllocs(t *testing.T) {
	for _, c := range benchCalls() {
		ch := testChannel(t)
		c.roundTrip(t, ch)
		if n := testing.AllocsPerRun(100, func() { c.roundTrip(t, ch) }); n != 0 {
			t.Errorf("%s: %.1f allocations per call", c.name, n)
		}
	}
}

// fakeHost answers every frame on fd with reply until fd closes.
func fakeHost(fd int, reply []byte) {
	var r wire.Reader
	e := wire.NewEncoder()
	e.Write(reply)
	frame := e.Frame()
	for {
		if _, err := r.ReadFrame(fd); err != nil {
			return
		}
		if err := wire.WriteFrame(fd, frame); err != nil {
			return
		}
	}
}

// BenchmarkRun runs whole calls through p11i_run, socket I/O included,
// against a fake host goroutine on the other end of a socketpair.
func BenchmarkRun(b *testing.B) {
	for _, c := range benchCalls() {
		b.Run(c.name, func(b *testing.B) {
			ch, stop := fakeChannel(b, c.reply)
			defer stop()
			ch.run(c.f, c.args, time.Second)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if r, err := ch.run(c.f, c.args, time.Second); r != 0 || err != nil {
					b.Fatalf("run: 0x%x %v", r, err)
				}
			}
		})
	}
}

// TestRunNoAllocs: a call through the data plane allocates nothing in Go.
func TestRunNoAllocs(t *testing.T) {
	for _, c := range benchCalls() {
		ch, stop := fakeChannel(t, c.reply)
		ch.run(c.f, c.args, time.Second)
		if n := testing.AllocsPerRun(100, func() { ch.run(c.f, c.args, time.Second) }); n != 0 {
			t.Errorf("%s: %.1f allocations per call", c.name, n)
		}
		stop()
	}
}

// fakeChannel returns a channel (with a shared region) answered by
// fakeHost.
func fakeChannel(tb testing.TB, reply []byte) (*channel, func()) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	mem, memfd, err := newRegion()
	if err != nil {
		tb.Fatal(err)
	}
	unix.Close(memfd)
	done := make(chan struct{})
	go func() {
		fakeHost(fds[1], reply)
		close(done)
	}()
	ch := newChannel(fds[0], mem, 0)
	// The fake host's end closes only once it stopped reading: a number
	// closed under a reader could be reused by the next test's socket.
	return ch, func() { ch.close(); <-done; unix.Close(fds[1]) }
}
