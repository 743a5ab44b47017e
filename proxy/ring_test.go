package main

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/p11isolate/p11isolate/internal/wire"
)

// ringHost is a fake host on the ring of a channel (cshim/ring.h): it
// sees the requests the proxy puts there and answers as a test says.
type ringHost struct {
	mem  []byte // the ring: the region's last ringSize bytes
	sock int    // the host's end of the channel
}

func (h *ringHost) u32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&h.mem[off])) }

// request waits for request number seq in the ring and returns its body.
func (h *ringHost) request(seq uint32) []byte {
	for atomic.LoadUint32(h.u32(ringReqSeq)) != seq {
		time.Sleep(10 * time.Microsecond)
	}
	n := atomic.LoadUint32(h.u32(ringReqLen))
	return append([]byte(nil), h.mem[ringReqOff:ringReqOff+int(n)]...)
}

// requestNow is request without sleeping between looks (a sleep of 10 µs
// may last a millisecond on a virtual machine): for timing what the proxy
// does right after it sent.
func (h *ringHost) requestNow(seq uint32) {
	for atomic.LoadUint32(h.u32(ringReqSeq)) != seq {
	}
}

// reply puts body in the reply slot as the answer to seq, with length n
// (a lie when it is not len(body)), and rings the proxy if it sleeps.
func (h *ringHost) reply(seq uint32, body []byte, n uint32) {
	copy(h.mem[ringRepOff:], body)
	atomic.StoreUint32(h.u32(ringRepLen), n)
	atomic.StoreUint32(h.u32(ringRepSeq), seq)
	if atomic.LoadUint32(h.u32(ringProxySleeping)) != 0 {
		unix.Write(h.sock, make([]byte, wire.HeaderSize))
	}
}

// newRingChannel makes a channel with a region and a ring, as the
// library's channels are, and the fake host's side of it.
func newRingChannel(t *testing.T) (*channel, *ringHost) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mem, memfd, err := newRegion()
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(memfd)
	ch := newChannel(fds[0], mem, 0)
	ch.useRing()
	return ch, &ringHost{mem: mem[len(mem)-ringSize:], sock: fds[1]}
}

// ringRun makes one C_GetInfo through a channel with a ring against a fake
// host that does what answer says with request number 1.
func ringRun(t *testing.T, timeout time.Duration, answer func(h *ringHost)) (rv, error, []byte) {
	ch, h := newRingChannel(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		answer(h)
	}()
	var info [88]byte
	r, err := ch.run(funcByName("C_GetInfo"), []uintptr{uintptr(unsafe.Pointer(&info[0]))}, timeout)
	ch.close()
	<-done
	unix.Close(h.sock)
	return r, err, info[:]
}

func TestRing(t *testing.T) {
	honest := honestInfo()
	frameOf := func(body []byte) []byte {
		f := make([]byte, wire.HeaderSize+len(body))
		binary.LittleEndian.PutUint32(f, uint32(len(body)))
		copy(f[wire.HeaderSize:], body)
		return f
	}
	for _, c := range []struct {
		name    string
		timeout time.Duration
		answer  func(h *ringHost)
		want    error
	}{
		{"honest, at once", time.Second, func(h *ringHost) { h.request(1); h.reply(1, honest, uint32(len(honest))) }, nil},
		{"honest, after the proxy slept", time.Second, func(h *ringHost) {
			h.request(1)
			time.Sleep(20 * time.Millisecond)
			h.reply(1, honest, uint32(len(honest)))
		}, nil},
		{"through the socket, after stale doorbells", time.Second, func(h *ringHost) {
			h.request(1)
			unix.Write(h.sock, make([]byte, 2*wire.HeaderSize))
			unix.Write(h.sock, frameOf(honest))
		}, nil},
		{"a length past the slot", time.Second, func(h *ringHost) { h.request(1); h.reply(1, honest, ringRepCap+1) }, wire.ErrMalformed},
		{"a length past the bytes", time.Second, func(h *ringHost) { h.request(1); h.reply(1, honest, uint32(len(honest))+7) }, wire.ErrMalformed},
		{"another request's number", 100 * time.Millisecond, func(h *ringHost) {
			h.request(1)
			h.reply(7, honest, uint32(len(honest)))
			unix.Write(h.sock, make([]byte, wire.HeaderSize))
		}, wire.ErrTimeout},
		{"silent", 50 * time.Millisecond, func(h *ringHost) { h.request(1); time.Sleep(200 * time.Millisecond) }, wire.ErrTimeout},
		{"gone", time.Second, func(h *ringHost) { h.request(1); unix.Shutdown(h.sock, unix.SHUT_WR) }, wire.ErrClosed},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err, info := ringRun(t, c.timeout, c.answer)
			if !errors.Is(err, c.want) {
				t.Fatalf("rv 0x%x, error %v; want %v", r, err, c.want)
			}
			if c.want == nil && (r != 0 || info[0] != 2 || info[1] != 40) {
				t.Errorf("rv 0x%x, version %d.%d; want 0 and 2.40", r, info[0], info[1])
			}
			if c.want != nil && (info[0] != 0 || info[1] != 0) {
				t.Errorf("a refused reply wrote into the application's memory: % x", info[:2])
			}
		})
	}
}

// honestInfo is a host's reply to C_GetInfo: CKR_OK and version 2.40.
func honestInfo() []byte {
	return replyBody(func(e *wire.Encoder) { e.Uint(0); e.Bytes(append([]byte{2, 40}, make([]byte, 86)...)) })
}

// teachReplyTime makes 30 C_GetInfo calls whose replies come after d, so
// the caller's policy (spin.c) expects that of C_GetInfo.
func teachReplyTime(t *testing.T, d time.Duration) {
	honest := honestInfo()
	ch, h := newRingChannel(t)
	go func() {
		for seq := uint32(1); seq <= 30; seq++ {
			h.requestNow(seq)
			for t0 := time.Now(); time.Since(t0) < d; {
			}
			h.reply(seq, honest, uint32(len(honest)))
		}
	}()
	var info [88]byte
	for range 30 {
		r, err := ch.run(funcByName("C_GetInfo"), []uintptr{uintptr(unsafe.Pointer(&info[0]))}, time.Second)
		if r != 0 || err != nil {
			t.Fatalf("training call: rv 0x%x, %v", r, err)
		}
	}
	ch.close()
	unix.Close(h.sock)
}

// TestRingDoze: a caller that expects its reply late waits asleep first (a
// doze, with its "sleeping" line raised), then polls. A reply, a lie or the
// host's death during the doze is met as it is while polling: the doorbell
// or the socket wakes the caller, and the reply is checked the same way.
func TestRingDoze(t *testing.T) {
	if spinCPUs() < 2 {
		t.Skipf("%d CPU: the policy never polls, so it never dozes", spinCPUs())
	}
	honest := honestInfo()
	teachReplyTime(t, 400*time.Microsecond)

	// dozing waits until the caller says it sleeps: how long that took.
	// A doze says so at once; a caller that polled first would say so
	// only when its window ended, twice the expected 400 µs later.
	dozing := func(h *ringHost) time.Duration {
		t0 := time.Now()
		for time.Since(t0) < time.Second && atomic.LoadUint32(h.u32(ringProxySleeping)) == 0 {
		}
		return time.Since(t0)
	}
	for _, c := range []struct {
		name string
		act  func(h *ringHost)
		want error
	}{
		{"a reply during the doze", func(h *ringHost) { h.reply(1, honest, uint32(len(honest))) }, nil},
		{"a length past the slot during the doze", func(h *ringHost) { h.reply(1, honest, ringRepCap+1) }, wire.ErrMalformed},
		{"the host gone during the doze", func(h *ringHost) { unix.Shutdown(h.sock, unix.SHUT_WR) }, wire.ErrClosed},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A hypervisor's stall can delay the caller's word past
			// 500 µs once; a caller that does not doze, every time.
			var r rv
			var err error
			var info []byte
			slept := time.Hour
			for try := 0; try < 3 && slept > 500*time.Microsecond; try++ {
				r, err, info = ringRun(t, time.Second, func(h *ringHost) {
					h.requestNow(1)
					slept = min(slept, dozing(h))
					c.act(h)
				})
			}
			if slept > 500*time.Microsecond {
				t.Errorf("the caller said it slept %v after its request, not at once (replies take 400 µs)", slept)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("rv 0x%x, error %v; want %v", r, err, c.want)
			}
			if c.want == nil && (r != 0 || info[0] != 2 || info[1] != 40) {
				t.Errorf("rv 0x%x, version %d.%d; want 0 and 2.40", r, info[0], info[1])
			}
		})
	}
}

// TestRingHostAsleep: a caller whose host sleeps rings it and sleeps too,
// instead of polling through the host's wake-up (the CPU bill of the call
// after a slow one), and its word that it sleeps comes at once.
func TestRingHostAsleep(t *testing.T) {
	if spinCPUs() < 2 {
		t.Skipf("%d CPU: the policy never polls", spinCPUs())
	}
	honest, getInfo := honestInfo(), funcByName("C_GetInfo")
	// Replies of ~40 µs: a caller polls for twice that and more, without
	// a doze.
	teachReplyTime(t, 40*time.Microsecond)
	var info [88]byte

	slept, rang := time.Hour, false
	for try := 0; try < 3 && slept > 50*time.Microsecond; try++ {
		ch, h := newRingChannel(t)
		atomic.StoreUint32(h.u32(ringHostSleeping), 1) // the host sleeps
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.requestNow(1)
			t0 := time.Now()
			for time.Since(t0) < time.Second && atomic.LoadUint32(h.u32(ringProxySleeping)) == 0 {
			}
			slept = min(slept, time.Since(t0))
			var bell [wire.HeaderSize]byte
			n, _ := unix.Read(h.sock, bell[:])
			rang = n == len(bell)
			atomic.StoreUint32(h.u32(ringHostSleeping), 0)
			h.reply(1, honest, uint32(len(honest)))
		}()
		r, err := ch.run(getInfo, []uintptr{uintptr(unsafe.Pointer(&info[0]))}, time.Second)
		<-done
		ch.close()
		unix.Close(h.sock)
		if r != 0 || err != nil || info[1] != 40 {
			t.Fatalf("rv 0x%x, %v, version %d.%d", r, err, info[0], info[1])
		}
		if !rang {
			t.Fatalf("the caller did not ring its sleeping host")
		}
	}
	if slept > 50*time.Microsecond {
		t.Errorf("the caller of a sleeping host said it slept %v after its request; want at once (it polled)", slept)
	}
}

// FuzzRingReply: whatever a host writes in the reply slot, with the right
// number and any length, the proxy answers or refuses; it never writes
// past the application's structure (the guard after it stays intact).
func FuzzRingReply(f *testing.F) {
	f.Add(replyBody(func(e *wire.Encoder) { e.Uint(0); e.Bytes(make([]byte, 88)) }), uint32(0))
	f.Add([]byte{0xc0}, uint32(40000))
	f.Fuzz(func(t *testing.T, body []byte, lie uint32) {
		if len(body) > ringRepCap {
			body = body[:ringRepCap]
		}
		n := uint32(len(body))
		if lie != 0 {
			n = lie
		}
		ch, h := newRingChannel(t)
		go func() { h.request(1); h.reply(1, body, n) }()
		var out [88 + 16]byte
		for i := 88; i < len(out); i++ {
			out[i] = 0xa5
		}
		ch.run(funcByName("C_GetInfo"), []uintptr{uintptr(unsafe.Pointer(&out[0]))}, 200*time.Millisecond)
		ch.close()
		unix.Close(h.sock)
		for i := 88; i < len(out); i++ {
			if out[i] != 0xa5 {
				t.Fatalf("byte %d after the structure changed", i)
			}
		}
	})
}
