package main

import (
	"errors"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/p11isolate/p11isolate/internal/wire"
)

// runAgainst makes one C_GetInfo through p11i_run against a peer that
// reads the request and then does what answer says.
func runAgainst(t *testing.T, timeout time.Duration, answer func(fd int)) (rv, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var r wire.Reader
		if _, err := r.ReadFrame(fds[1]); err == nil {
			answer(fds[1])
		}
	}()
	ch := newChannel(fds[0], nil, 0)
	var info [88]byte
	r, err := ch.run(funcByName("C_GetInfo"), []uintptr{uintptr(unsafe.Pointer(&info[0]))}, timeout)
	ch.close()
	<-done
	unix.Close(fds[1])
	return r, err
}

func TestRunFraming(t *testing.T) {
	honest := replyBody(func(e *wire.Encoder) { e.Uint(0); e.Bytes(make([]byte, 88)) })
	frameOf := func(body []byte) []byte {
		e := wire.NewEncoder()
		e.Write(body)
		return append([]byte(nil), e.Frame()...)
	}
	for _, c := range []struct {
		name    string
		timeout time.Duration
		answer  func(fd int)
		want    error // nil: CKR_OK
	}{
		{"honest", time.Second, func(fd int) { unix.Write(fd, frameOf(honest)) }, nil},
		{"in pieces", time.Second, func(fd int) {
			f := frameOf(honest)
			for i := range f {
				unix.Write(fd, f[i:i+1])
			}
		}, nil},
		{"bytes after the frame", time.Second, func(fd int) { unix.Write(fd, append(frameOf(honest), 0xc0)) }, wire.ErrMalformed},
		{"a frame past the cap", time.Second, func(fd int) { unix.Write(fd, []byte{1, 0, 0, 0x41}) }, wire.ErrMalformed},
		{"closed", time.Second, func(fd int) { unix.Shutdown(fd, unix.SHUT_WR) }, wire.ErrClosed},
		{"closed mid-frame", time.Second, func(fd int) {
			unix.Write(fd, frameOf(honest)[:10])
			unix.Shutdown(fd, unix.SHUT_WR)
		}, wire.ErrClosed},
		{"silent", 50 * time.Millisecond, func(fd int) { time.Sleep(300 * time.Millisecond) }, wire.ErrTimeout},
	} {
		r, err := runAgainst(t, c.timeout, c.answer)
		switch {
		case c.want == nil && (err != nil || r != 0):
			t.Errorf("%s: 0x%x, %v", c.name, r, err)
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}
