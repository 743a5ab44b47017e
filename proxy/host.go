package main

/*
#include <stdlib.h>
#include "../cshim/shim.h"
*/
import "C"

import (
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/p11isolate/p11isolate/internal/config"
	"github.com/p11isolate/p11isolate/internal/wire"
)

// The host program, built first and embedded here by the Makefile, and the
// hex SHA-256 and build ID recorded at build time (-X).
//
//go:embed hostimage/p11isolate-host
var hostImage []byte

var (
	hostSHA256 string
	buildID    = "dev"
)

const (
	startTimeout = 10 * time.Second // spawn to handshake and module load
	killGrace    = 2 * time.Second  // from closing the control channel to SIGKILL
	hostName     = "p11isolate-host"
)

// host is one running host process. Its channels are pooled: a caller takes
// one for the length of a call, so concurrent callers never share a socket.
type host struct {
	pid    int
	pidfd  int
	ctl    int
	gen    uint64 // handle generation of this host
	module string

	timeout, keygenTimeout time.Duration
	memoryLimit            uint64

	pidMu   sync.Mutex // guards pidfd's closing against signals through it
	ctlMu   sync.Mutex
	dead    atomic.Bool
	retired atomic.Bool // C_Finalize took this host away
	once    sync.Once

	mu    sync.Mutex
	idle  []*channel
	count int

	statusMu sync.Mutex
	exited   bool
	status   string // how the host ended, for the log
}

// channel is one call socket with its buffers.
type channel struct {
	fd      int
	timeout time.Duration // receive timeout currently set on fd
	enc     *wire.Encoder
	dec     *wire.Decoder
	r       wire.Reader
	caps    []uint64 // per-argument capacities, saved between encode and decode
	outMech []bool   // per 'm' argument: a parameter output is expected
}

// startHost spawns a host, checks its handshake and has it load module.
// It is idempotent per proxy state; the caller holds px.mu.
func startHost(cfg *config.Config, env []string, gen uint64) (*host, error) {
	module := cfg.Module
	exe, err := hostExecutable(cfg.Host)
	if err != nil {
		return nil, err
	}
	defer unix.Close(exe)

	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	hostEnd := pair[1]
	defer func() {
		if hostEnd >= 0 {
			unix.Close(hostEnd)
		}
	}()
	logR, logW, err := os.Pipe()
	if err != nil {
		unix.Close(pair[0])
		return nil, fmt.Errorf("pipe: %w", err)
	}
	defer logW.Close()
	null, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(pair[0])
		logR.Close()
		return nil, fmt.Errorf("open /dev/null: %w", err)
	}
	defer unix.Close(null)

	argv := cStrings([]string{hostName})
	defer freeCStrings(argv)
	envp := cStrings(env)
	defer freeCStrings(envp)
	var pidfd, errno C.int
	pid := C.p11i_spawn(C.int(exe), C.int(hostEnd), C.int(logW.Fd()), C.int(null),
		&argv[0], &envp[0], &pidfd, &errno)
	// Only the host may hold its ends: the host's death must read as EOF
	// on the control channel and on its stderr right away.
	unix.Close(hostEnd)
	hostEnd = -1
	logW.Close()
	if pid < 0 {
		unix.Close(pair[0])
		logR.Close()
		return nil, fmt.Errorf("cannot start the host: clone3: %w", unix.Errno(errno))
	}
	h := &host{pid: int(pid), pidfd: int(pidfd), ctl: pair[0], gen: gen, module: module,
		timeout: cfg.Timeout, keygenTimeout: cfg.KeygenTimeout, memoryLimit: cfg.MemoryLimit}
	C.p11i_fd_register(C.int(h.ctl))
	go logs.relay(logR, h.pid)

	if err := h.handshake(module); err != nil {
		h.kill()
		return nil, err
	}
	return h, nil
}

// hostExecutable returns an fd of the verified host binary: a sealed memfd
// of the embedded image or, where executable memfds are refused, the binary
// installed beside this library, hashed through the fd that will be exec'd.
func hostExecutable(override string) (int, error) {
	if hostSHA256 == "" {
		return -1, errors.New("this build recorded no host hash: build libp11isolate.so with make")
	}
	if override == "" {
		fd := C.p11i_memfd_image(unsafe.Pointer(unsafe.SliceData(hostImage)), C.size_t(len(hostImage)))
		if fd >= 0 {
			if err := verify(int(fd)); err != nil {
				unix.Close(int(fd))
				return -1, err
			}
			return int(fd), nil
		}
		var dir [4096]C.char
		if C.p11i_self_dir(&dir[0], C.size_t(len(dir))) != 0 {
			return -1, errors.New("executable memfds are refused here and the library's own directory is unknown: set host=/path/to/p11isolate-host")
		}
		override = filepath.Join(C.GoString(&dir[0]), hostName)
	}
	fd, err := unix.Open(override, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("executable memfds are refused here and the host binary %s cannot be opened: %v (run make install)", override, err)
	}
	if err := verify(fd); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: %w", override, err)
	}
	return fd, nil
}

// verify hashes the file behind fd and compares it with the build's hash.
func verify(fd int) error {
	sum := sha256.New()
	buf := make([]byte, 256<<10)
	for off := int64(0); ; {
		n, err := unix.Pread(fd, buf, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading the host image: %w", err)
		}
		if n == 0 {
			break
		}
		sum.Write(buf[:n])
		off += int64(n)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != hostSHA256 {
		return fmt.Errorf("the host image's SHA-256 is %s, the build recorded %s: refusing to run it (rebuild and reinstall p11isolate)", got, hostSHA256)
	}
	return nil
}

func (h *host) handshake(module string) error {
	if err := wire.SetTimeout(h.ctl, startTimeout); err != nil {
		return err
	}
	var r wire.Reader
	body, err := r.ReadFrame(h.ctl)
	if err != nil {
		return fmt.Errorf("the host did not start (%v): see the host's lines above", err)
	}
	d := wire.NewDecoder()
	d.Reset(body)
	var hello wire.Hello
	d.Value(&hello)
	if err := d.Finish(); err != nil {
		return fmt.Errorf("host handshake: %w", err)
	}
	if hello.Protocol != wire.ProtocolVersion || hello.BuildID != buildID {
		return fmt.Errorf("the host speaks protocol %d of build %q, this library protocol %d of build %q: rebuild both with make", hello.Protocol, hello.BuildID, wire.ProtocolVersion, buildID)
	}
	e := wire.NewEncoder()
	e.Uint(wire.OpOpen)
	e.Value(wire.Open{Module: module, MemoryLimit: h.memoryLimit})
	if err := wire.WriteFrame(h.ctl, e.Frame()); err != nil {
		return fmt.Errorf("host handshake: %w", err)
	}
	if body, err = r.ReadFrame(h.ctl); err != nil {
		return fmt.Errorf("the host died loading %s (%v): see the host's lines above", module, err)
	}
	d.Reset(body)
	var reply wire.OpenReply
	d.Value(&reply)
	if err := d.Finish(); err != nil {
		return fmt.Errorf("host open reply: %w", err)
	}
	if !reply.OK {
		return &loadError{reply.Error}
	}
	return wire.SetTimeout(h.ctl, 0)
}

// loadError is the host's own account of why the module did not load.
type loadError struct{ msg string }

func (e *loadError) Error() string { return e.msg }

// get returns an idle channel, or opens a new one and hands its other end
// to the host.
func (h *host) get() (*channel, error) {
	h.mu.Lock()
	if n := len(h.idle); n > 0 {
		ch := h.idle[n-1]
		h.idle = h.idle[:n-1]
		h.mu.Unlock()
		return ch, nil
	}
	if h.count >= wire.MaxChannelsPerHost {
		h.mu.Unlock()
		return nil, fmt.Errorf("more than %d concurrent calls", wire.MaxChannelsPerHost)
	}
	h.count++
	h.mu.Unlock()

	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		h.mu.Lock()
		h.count--
		h.mu.Unlock()
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	C.p11i_fd_register(C.int(pair[0]))
	e := wire.NewEncoder()
	e.Uint(wire.OpChannel)
	h.ctlMu.Lock()
	err = wire.WriteFrameFD(h.ctl, e.Frame(), pair[1])
	h.ctlMu.Unlock()
	unix.Close(pair[1])
	if err != nil {
		closeChannelFD(pair[0])
		return nil, fmt.Errorf("handing the host a channel: %w", err)
	}
	return &channel{fd: pair[0], enc: wire.NewEncoder(), dec: wire.NewDecoder()}, nil
}

// put returns a channel to the pool, or closes it if the host is gone or
// the channel is in an unknown state.
func (h *host) put(ch *channel, healthy bool) {
	if !healthy || h.dead.Load() {
		closeChannelFD(ch.fd)
		return
	}
	h.mu.Lock()
	h.idle = append(h.idle, ch)
	h.mu.Unlock()
}

func closeChannelFD(fd int) {
	C.p11i_fd_unregister(C.int(fd))
	unix.Close(fd)
}

// kill stops the host: it closes the control channel, which the host takes
// as its cue to exit, waits a grace period, then sends SIGKILL. Idempotent.
func (h *host) kill() {
	h.once.Do(func() {
		h.dead.Store(true)
		h.mu.Lock()
		for _, ch := range h.idle {
			closeChannelFD(ch.fd)
		}
		h.idle = nil
		h.mu.Unlock()
		closeChannelFD(h.ctl)
		if !h.waitExit(killGrace) {
			h.signal(unix.SIGKILL)
			h.waitExit(killGrace)
		}
		// Whatever the vendor forked is in the host's process group. The
		// host is not reaped yet, so its pid (the group's id) cannot have
		// been reused.
		unix.Kill(-h.pid, unix.SIGKILL)
		h.reap()
		h.pidMu.Lock()
		unix.Close(h.pidfd)
		h.pidfd = -1
		h.pidMu.Unlock()
	})
}

// signal sends sig through the pidfd while it is open: once closed, its
// number may already name another process's pidfd.
func (h *host) signal(sig unix.Signal) {
	h.pidMu.Lock()
	defer h.pidMu.Unlock()
	if h.pidfd >= 0 {
		unix.PidfdSendSignal(h.pidfd, sig, nil, 0)
	}
}

// waitExit waits up to d for the host to exit and records how it ended,
// leaving it unreaped (a zombie keeps its pid from being reused). The
// application's own SIGCHLD handling may have reaped it first; the pidfd
// still says it is gone.
func (h *host) waitExit(d time.Duration) bool {
	h.statusMu.Lock()
	defer h.statusMu.Unlock()
	if h.exited {
		return true
	}
	h.pidMu.Lock()
	pidfd := h.pidfd
	h.pidMu.Unlock()
	if pidfd < 0 {
		return true
	}
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	deadline := time.Now().Add(d)
	for {
		n, err := unix.Poll(fds, max(int(time.Until(deadline).Milliseconds()), 0))
		if err == unix.EINTR {
			continue
		}
		if n <= 0 {
			return false
		}
		break
	}
	h.exited = true
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PIDFD, pidfd, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err != nil {
		h.status = " (its exit status went to the application's own child handling)"
		return true
	}
	h.status = describeExit(&info)
	return true
}

// reap collects the exited host, unless the application already did.
func (h *host) reap() {
	var info unix.Siginfo
	unix.Waitid(unix.P_PIDFD, h.pidfd, &info, unix.WEXITED|unix.WNOHANG, nil)
}

// describeExit reads si_code and si_status of a SIGCHLD siginfo.
func describeExit(info *unix.Siginfo) string {
	raw := (*[128]byte)(unsafe.Pointer(info))
	code := int32(binary.NativeEndian.Uint32(raw[8:]))
	status := int32(binary.NativeEndian.Uint32(raw[24:]))
	switch code {
	case 1: // CLD_EXITED
		return fmt.Sprintf(": it exited with status %d", status)
	case 2, 3: // CLD_KILLED, CLD_DUMPED
		return fmt.Sprintf(": it was killed by signal %s", unix.SignalName(syscall.Signal(status)))
	}
	return ""
}

func cStrings(s []string) []*C.char {
	out := make([]*C.char, len(s)+1)
	for i, v := range s {
		out[i] = C.CString(v)
	}
	return out
}

func freeCStrings(p []*C.char) {
	for _, s := range p {
		if s != nil {
			C.free(unsafe.Pointer(s))
		}
	}
}
