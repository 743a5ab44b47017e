package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

const (
	// HeaderSize is the size of a frame's little-endian length prefix.
	HeaderSize = 4
	// MaxFrame caps a frame's body: 1 GiB, well above any buffer a PKCS#11
	// call is expected to carry (a 300 MiB C_Digest still crosses) and below
	// what could exhaust memory; a peer that announces more is broken or
	// hostile.
	MaxFrame = 1 << 30
	// MaxBuffer is the largest buffer one call carries in one direction:
	// a frame less room for the rest of the message.
	MaxBuffer = MaxFrame - 4096
	// keepBuffer is the size above which a pooled buffer is dropped after
	// use instead of being kept for the next call.
	keepBuffer = 1 << 20
)

var (
	// ErrClosed means the peer closed the connection (or died).
	ErrClosed = errors.New("connection closed by peer")
	// ErrTimeout means no reply arrived before the deadline.
	ErrTimeout = errors.New("deadline exceeded")
)

func putHeader(b []byte, n int) { binary.LittleEndian.PutUint32(b, uint32(n)) }

// WriteFrame writes a whole frame to fd with blocking sends. MSG_NOSIGNAL
// keeps a dead peer from raising SIGPIPE in the application.
func WriteFrame(fd int, frame []byte) error {
	for len(frame) > 0 {
		n, err := unix.SendmsgN(fd, frame, nil, nil, unix.MSG_NOSIGNAL)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EPIPE || err == unix.ECONNRESET:
			return ErrClosed
		case err != nil:
			return fmt.Errorf("send: %w", err)
		}
		frame = frame[n:]
	}
	return nil
}

// Reader reads frames from one fd into a buffer it reuses.
type Reader struct {
	buf []byte
	// Alloc and Free, when set, provide the buffer's memory (the host reads
	// frames into C memory so the vendor can be handed pointers into it).
	Alloc func(n int) []byte
	Free  func(b []byte)
	// Exact reads no byte past the frame: on a channel with a ring
	// (cshim/ring.h) a doorbell may be followed by another frame.
	Exact bool
}

func (r *Reader) realloc(n int, keep int) {
	var nb []byte
	if r.Alloc != nil {
		nb = r.Alloc(n)
	} else {
		nb = make([]byte, n)
	}
	copy(nb, r.buf[:keep])
	if r.Free != nil && r.buf != nil {
		r.Free(r.buf)
	}
	r.buf = nb
}

// ReadFrame reads one frame and returns its body, valid until the next call.
// A receive timeout set on fd surfaces as ErrTimeout.
func (r *Reader) ReadFrame(fd int) ([]byte, error) {
	if len(r.buf) < 4096 || len(r.buf) > keepBuffer {
		r.realloc(4096, 0)
	}
	have := 0
	need := HeaderSize
	for have < need {
		end := len(r.buf)
		if r.Exact {
			end = need
		}
		n, err := unix.Read(fd, r.buf[have:end])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return nil, ErrTimeout
		case err == unix.ECONNRESET:
			return nil, ErrClosed
		case err != nil:
			return nil, fmt.Errorf("read: %w", err)
		case n == 0:
			return nil, ErrClosed
		}
		have += n
		if need == HeaderSize && have >= HeaderSize {
			size := binary.LittleEndian.Uint32(r.buf)
			if size > MaxFrame {
				return nil, fmt.Errorf("%w: frame of %d bytes exceeds the %d-byte cap", ErrMalformed, size, MaxFrame)
			}
			need = HeaderSize + int(size)
			if need > len(r.buf) {
				r.realloc(need, have)
			}
		}
	}
	if have > need {
		return nil, fmt.Errorf("%w: %d bytes after the frame", ErrMalformed, have-need)
	}
	return r.buf[HeaderSize:need], nil
}

// Release frees the reader's buffer.
func (r *Reader) Release() {
	if r.Free != nil && r.buf != nil {
		r.Free(r.buf)
	}
	r.buf = nil
}

// MaxFDs is the most file descriptors one control frame carries (a call
// channel's socket and its shared region).
const MaxFDs = 2

// ReadFrameFD is ReadFrame for the control channel: it also returns the file
// descriptors passed with the frame as SCM_RIGHTS (at most MaxFDs; any more
// are closed), which the caller owns. The frame must be small (it is read
// with one recvmsg).
func (r *Reader) ReadFrameFD(fd int) ([]byte, []int, error) {
	if len(r.buf) < 4096 {
		r.realloc(4096, 0)
	}
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(fd, r.buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ECONNRESET || err == nil && n == 0 {
			return nil, nil, ErrClosed
		}
		if err != nil {
			return nil, nil, fmt.Errorf("recvmsg: %w", err)
		}
		var passed []int
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return nil, nil, fmt.Errorf("%w: control message: %v", ErrMalformed, err)
			}
			for _, m := range msgs {
				fds, err := unix.ParseUnixRights(&m)
				if err != nil {
					continue
				}
				for _, f := range fds {
					if len(passed) < MaxFDs {
						passed = append(passed, f)
					} else {
						unix.Close(f)
					}
				}
			}
		}
		if n < HeaderSize || int(binary.LittleEndian.Uint32(r.buf)) != n-HeaderSize {
			for _, f := range passed {
				unix.Close(f)
			}
			return nil, nil, fmt.Errorf("%w: control frame split or truncated", ErrMalformed)
		}
		return r.buf[HeaderSize:n], passed, nil
	}
}
