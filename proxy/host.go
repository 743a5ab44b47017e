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
	"strings"
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
	killGrace = 2 * time.Second // from closing the control channel to SIGKILL
	hostName  = "p11isolate-host"
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
	moduleSHA256           string

	// statusR reads the host's wait status from its init (a new pid
	// namespace); -1 when the host is not under an init.
	statusR int
	// The environment the host got, by name, and what it did not get.
	envNames, envWithheld []string

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

// channel is one call socket with its C data plane state (cshim/plane.c):
// the request it encodes, the capacities it saved, the reply's writes.
type channel struct {
	fd  int
	c   *C.struct_p11i_call // C memory; the receive timeout set on fd is its own
	mem []byte              // the shared region (an mmap), nil: none
}

// startHost spawns a host, checks its handshake and has it load module,
// all before deadline (zero: none): a vendor that never returns from its
// ELF constructor or C_GetFunctionList fails the start like a hung call
// (wire.ErrTimeout). The caller holds px.mu. env is the application's
// environment; the host gets the part config.FilterEnv lets through.
func startHost(cfg *config.Config, env []string, gen uint64, deadline time.Time) (*host, error) {
	module := cfg.Module
	exe, err := hostExecutable(cfg.Host)
	if err != nil {
		return nil, err
	}
	defer unix.Close(exe)
	given, names, withheld := config.FilterEnv(env, cfg.Env)
	plan, err := planSandbox(cfg)
	if err != nil {
		return nil, err
	}
	defer plan.free()

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
	// The init of a new pid namespace reports the host's wait status here.
	status := []int{-1, -1}
	if cfg.Sandbox != config.SandboxOff {
		if err := unix.Pipe2(status, unix.O_CLOEXEC); err != nil {
			unix.Close(pair[0])
			logR.Close()
			return nil, fmt.Errorf("pipe: %w", err)
		}
	}
	plan.sb.status_fd = C.int(status[1])

	argv := cStrings([]string{hostName})
	defer freeCStrings(argv)
	envp := cStrings(given)
	defer freeCStrings(envp)
	var pidfd, errno C.int
	var rep C.struct_p11i_report
	pid := C.p11i_spawn(C.int(exe), C.int(hostEnd), C.int(logW.Fd()), C.int(null),
		&argv[0], &envp[0], &plan.sb, &rep, &pidfd, &errno)
	// Only the host may hold its ends: the host's death must read as EOF
	// on the control channel and on its stderr right away.
	unix.Close(hostEnd)
	hostEnd = -1
	logW.Close()
	if status[1] >= 0 {
		unix.Close(status[1])
	}
	if pid < 0 {
		unix.Close(pair[0])
		logR.Close()
		if status[0] >= 0 {
			unix.Close(status[0])
		}
		return nil, fmt.Errorf("cannot start the host: clone3: %w", unix.Errno(errno))
	}
	if status[0] >= 0 && rep.layers&(1<<C.P11I_L_INIT) == 0 {
		unix.Close(status[0])
		status[0] = -1
	}
	if status[0] >= 0 {
		unix.SetNonblock(status[0], true)
	}
	h := &host{pid: int(pid), pidfd: int(pidfd), ctl: pair[0], gen: gen, module: module,
		timeout: cfg.Timeout, keygenTimeout: cfg.KeygenTimeout, memoryLimit: cfg.MemoryLimit,
		moduleSHA256: cfg.ModuleSHA256, statusR: status[0], envNames: names, envWithheld: withheld}
	C.p11i_fd_register(C.int(h.ctl))
	go logs.relay(logR, h.pid)

	if err := plan.check(cfg, &rep, len(given), len(given)+len(withheld)); err != nil {
		h.kill()
		return nil, err
	}
	if err := h.handshake(module, deadline); err != nil {
		// Nothing of a host that failed its start is worth a grace period.
		h.signal(unix.SIGKILL)
		h.kill()
		return nil, err
	}
	return h, nil
}

// envHint completes the log line of a vendor C_Initialize that failed: a
// module configured through the environment may be missing its variables.
// It names variables, never values.
func (h *host) envHint() string {
	if h == nil || len(h.envWithheld) == 0 {
		return ""
	}
	withheld := h.envWithheld
	more := ""
	if len(withheld) > 10 {
		more = fmt.Sprintf(" and %d more", len(withheld)-10)
		withheld = withheld[:10]
	}
	return fmt.Sprintf("; the host got only the environment variables %s (not %s%s): if the module is configured through the environment, pass its variables with env=NAME,PREFIX_* (P11ISOLATE_ENV, C_Initialize pReserved or the P11ISOLATE_CONFIG file), or env=* for all",
		listOrNone(h.envNames), strings.Join(withheld, ", "), more)
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
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

func (h *host) handshake(module string, deadline time.Time) error {
	var r wire.Reader
	r.Deadline = deadline
	body, err := readBefore(&r, h.ctl, deadline)
	if errors.Is(err, wire.ErrTimeout) {
		return fmt.Errorf("the host did not start within the deadline (timeout=%v): %w", h.timeout, err)
	}
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
	e.Value(wire.Open{Module: module, MemoryLimit: h.memoryLimit, ModuleSHA256: h.moduleSHA256})
	if err := wire.WriteFrame(h.ctl, e.Frame()); err != nil {
		return fmt.Errorf("host handshake: %w", err)
	}
	body, err = readBefore(&r, h.ctl, deadline)
	if errors.Is(err, wire.ErrTimeout) {
		return fmt.Errorf("loading %s (its ELF constructors and C_GetFunctionList) did not finish within the deadline (timeout=%v): %w", module, h.timeout, err)
	}
	if err != nil {
		return fmt.Errorf("the host died loading %s (%v): see the host's lines above", module, err)
	}
	d.Reset(body)
	var reply wire.OpenReply
	d.Value(&reply)
	if err := d.Finish(); err != nil {
		return fmt.Errorf("host open reply: %w", err)
	}
	if !reply.OK {
		if strings.HasPrefix(reply.Error, "module_sha256:") {
			return errors.New(reply.Error) // the module is there, but not the pinned one
		}
		return &loadError{reply.Error}
	}
	return wire.SetTimeout(h.ctl, 0)
}

// readBefore reads one frame from fd, giving up at deadline (zero: never).
func readBefore(r *wire.Reader, fd int, deadline time.Time) ([]byte, error) {
	var left time.Duration
	if !deadline.IsZero() {
		if left = time.Until(deadline); left <= 0 {
			return nil, wire.ErrTimeout
		}
	}
	if err := wire.SetTimeout(fd, left); err != nil {
		return nil, err
	}
	return r.ReadFrame(fd)
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
	// The region crosses with the socket, in the same message.
	mem, memfd := openRegion()
	fds := []int{pair[1]}
	if memfd >= 0 {
		fds = append(fds, memfd)
	}
	e := wire.NewEncoder()
	e.Uint(wire.OpChannel)
	e.Uint(uint64(len(mem)))
	h.ctlMu.Lock()
	err = wire.WriteFrameFD(h.ctl, e.Frame(), fds...)
	h.ctlMu.Unlock()
	for _, fd := range fds {
		unix.Close(fd)
	}
	ch := newChannel(pair[0], mem, h.gen)
	if err != nil {
		ch.close()
		h.mu.Lock()
		h.count--
		h.mu.Unlock()
		return nil, fmt.Errorf("handing the host a channel: %w", err)
	}
	return ch, nil
}

// put returns a channel to the pool, or closes it if the host is gone or
// the channel is in an unknown state.
func (h *host) put(ch *channel, healthy bool) {
	if !healthy || h.dead.Load() {
		ch.close()
		h.mu.Lock()
		h.count-- // room for a new channel
		h.mu.Unlock()
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
			ch.close()
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
		if h.pid > 0 { // never kill(0): that is the application's own group
			unix.Kill(-h.pid, unix.SIGKILL)
		}
		h.reap()
		h.pidMu.Lock()
		unix.Close(h.pidfd)
		h.pidfd = -1
		h.pidMu.Unlock()
		h.statusMu.Lock()
		if h.statusR >= 0 {
			unix.Close(h.statusR)
			h.statusR = -1
		}
		h.statusMu.Unlock()
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
	if st, ok := h.initStatus(); ok {
		h.status = st
		return true
	}
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PIDFD, pidfd, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err != nil {
		h.status = " (its exit status went to the application's own child handling)"
		return true
	}
	h.status = describeExit(&info)
	return true
}

// initStatus reads the host's wait status that its init passed on (the
// init's own exit says less: an init cannot die of the host's signal).
func (h *host) initStatus() (string, bool) {
	if h.statusR < 0 {
		return "", false
	}
	var b [4]byte
	if n, err := unix.Read(h.statusR, b[:]); err != nil || n != len(b) {
		return "", false
	}
	ws := syscall.WaitStatus(binary.NativeEndian.Uint32(b[:]))
	switch {
	case ws.Signaled():
		return fmt.Sprintf(": it was killed by signal %s", unix.SignalName(ws.Signal())), true
	case ws.Exited():
		return fmt.Sprintf(": it exited with status %d", ws.ExitStatus()), true
	}
	return "", false
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

// initArg asks the host image to be the init of its pid namespace; it is
// P11H_INIT_ARG of host/host.h.
const initArg = "--init"

// Directories every strict host may read and execute from: the dynamic
// loader, libraries and configuration.
var strictReadOnly = []string{"/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc"}

// Device files every strict host may open for writing, too.
var strictDevices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}

// Directories a strict host gets a fresh tmpfs on, unless sandbox_paths
// lists them (or a directory above them).
var strictPrivate = []string{"/tmp", "/dev/shm"}

// layerNames names the bits of p11i_report.layers for the log.
var layerNames = [C.P11I_L_COUNT]string{
	C.P11I_L_USERNS:      "user namespace",
	C.P11I_L_PIDNS:       "pid namespace",
	C.P11I_L_MNTNS:       "mount namespace",
	C.P11I_L_NETNS:       "network namespace",
	C.P11I_L_IPCNS:       "IPC namespace",
	C.P11I_L_INIT:        "own init",
	C.P11I_L_PROC:        "fresh /proc",
	C.P11I_L_PRIVATE:     "private /tmp and /dev/shm",
	C.P11I_L_CAPS:        "root's ptrace, raw I/O, module, BPF and kill capabilities dropped",
	C.P11I_L_KEYRING:     "own session keyring",
	C.P11I_L_SECCOMP:     "seccomp filter",
	C.P11I_L_LANDLOCK:    "Landlock domain",
	C.P11I_L_LANDLOCK_FS: "Landlock filesystem allowlist",
}

// sandboxPlan is a sandbox request for p11i_spawn; its lists live in C
// memory (a Go struct handed to C may hold no Go pointers).
type sandboxPlan struct {
	sb     C.struct_p11i_sandbox
	arrays [][]*C.char
	wanted uint32 // layers the profile asks for
}

func layerBits(layers ...int) uint32 {
	var b uint32
	for _, l := range layers {
		b |= 1 << l
	}
	return b
}

func planSandbox(cfg *config.Config) (*sandboxPlan, error) {
	p := &sandboxPlan{}
	p.sb.status_fd = -1
	switch cfg.Sandbox {
	case config.SandboxOff:
		p.sb.profile = C.P11I_SANDBOX_OFF
		return p, nil
	case config.SandboxStrict:
		p.sb.profile = C.P11I_SANDBOX_STRICT
	default:
		p.sb.profile = C.P11I_SANDBOX_DEFAULT
	}
	uid, gid := os.Geteuid(), os.Getegid()
	p.sb.uid, p.sb.gid = C.uint(uid), C.uint(gid)
	p.wanted = layerBits(C.P11I_L_PIDNS, C.P11I_L_MNTNS, C.P11I_L_INIT, C.P11I_L_PROC,
		C.P11I_L_KEYRING, C.P11I_L_SECCOMP, C.P11I_L_LANDLOCK)
	if uid == 0 {
		// Root makes the namespaces itself; a user namespace would take
		// away the capabilities some vendor drivers check.
		p.sb.drop_caps = 1
		p.wanted |= layerBits(C.P11I_L_CAPS)
	} else {
		p.sb.userns = 1
		p.wanted |= layerBits(C.P11I_L_USERNS)
	}
	p.sb.argv_init = p.cArray([]string{hostName, initArg})
	if cfg.Sandbox != config.SandboxStrict {
		return p, nil
	}

	p.wanted |= layerBits(C.P11I_L_NETNS, C.P11I_L_IPCNS, C.P11I_L_LANDLOCK_FS)
	module, err := filepath.EvalSymlinks(cfg.Module)
	if err != nil {
		return nil, fmt.Errorf("sandbox=strict: the vendor module %s: %v", cfg.Module, err)
	}
	moduleDir := filepath.Dir(module)
	var rw []string
	for _, sp := range cfg.SandboxPaths {
		r, err := filepath.EvalSymlinks(sp)
		if err != nil {
			return nil, fmt.Errorf("sandbox_paths (from %s): %v: list only paths that exist", cfg.Source["sandbox_paths"], err)
		}
		rw = append(rw, r)
	}
	var private, keep []string
	for _, d := range strictPrivate {
		listed := false
		for _, r := range rw {
			listed = listed || under(d, r)
		}
		if listed {
			continue
		}
		private = append(private, d)
		// What lies beneath the new tmpfs but must stay visible.
		for _, k := range rw {
			if under(k, d) && k != d {
				keep = append(keep, k)
			}
		}
		if moduleDir == d {
			keep = append(keep, module)
		} else if under(moduleDir, d) {
			keep = append(keep, moduleDir)
		}
	}
	// A path beneath another kept one comes along with it.
	var kept []string
	for _, k := range keep {
		nested := false
		for _, o := range keep {
			nested = nested || (o != k && under(k, o))
		}
		if !nested {
			kept = append(kept, k)
		}
	}
	if len(private) > 0 {
		p.wanted |= layerBits(C.P11I_L_PRIVATE)
	}
	p.sb.ro_paths = p.cArray(append(append([]string(nil), strictReadOnly...), moduleDir))
	p.sb.rw_paths = p.cArray(rw)
	p.sb.dev_files = p.cArray(strictDevices)
	p.sb.private_dirs = p.cArray(private)
	p.sb.keep_paths = p.cArray(kept)
	return p, nil
}

// under reports whether path is dir or lies beneath it.
func under(path, dir string) bool {
	return path == dir || dir == "/" || strings.HasPrefix(path, dir+"/")
}

// cArray copies list into a NULL-terminated array in C memory.
func (p *sandboxPlan) cArray(list []string) **C.char {
	a := unsafe.Slice((**C.char)(C.calloc(C.size_t(len(list)+1), C.size_t(unsafe.Sizeof((*C.char)(nil))))), len(list)+1)
	for i, s := range list {
		a[i] = C.CString(s)
	}
	p.arrays = append(p.arrays, a)
	return &a[0]
}

func (p *sandboxPlan) free() {
	for _, a := range p.arrays {
		for _, s := range a {
			if s != nil {
				C.free(unsafe.Pointer(s))
			}
		}
		C.free(unsafe.Pointer(&a[0]))
	}
	p.arrays = nil
}

// sandboxLog remembers the last sandbox report logged: the same sandbox
// is logged once, not at every host start.
var sandboxLog struct {
	sync.Mutex
	last string
}

// check logs which layers the host got (once; on stderr only when one is
// missing or the sandbox is off) and refuses a strict host
// that lacks what strict promises.
func (p *sandboxPlan) check(cfg *config.Config, rep *C.struct_p11i_report, passed, total int) error {
	got := uint32(rep.layers)
	var line string
	if cfg.Sandbox == config.SandboxOff {
		line = fmt.Sprintf("WARNING: sandbox=off (from %s): the vendor module runs without namespaces, seccomp or Landlock; it can read and write this application's memory (/proc/PID/mem, ptrace) and signal it. Only the file descriptors and the environment (%d of %d variables passed) are kept from it",
			cfg.Source["sandbox"], passed, total)
	} else {
		var active, missing []string
		for l := 0; l < C.P11I_L_COUNT; l++ {
			name := layerNames[l]
			if l == C.P11I_L_LANDLOCK && rep.landlock_abi > 0 {
				name = fmt.Sprintf("%s (ABI %d)", name, int(rep.landlock_abi))
			}
			switch {
			case got&(1<<l) != 0:
				active = append(active, name)
			case p.wanted&(1<<l) != 0:
				why := "unavailable"
				if e := unix.Errno(rep.err[l]); e != 0 {
					why = e.Error()
				}
				missing = append(missing, fmt.Sprintf("%s (%s)", name, why))
			}
		}
		line = fmt.Sprintf("sandbox=%s (from %s): %s; environment: %d of %d variables passed",
			cfg.Sandbox, cfg.Source["sandbox"], listOrNone(active), passed, total)
		if len(missing) > 0 {
			line += "; not available here: " + strings.Join(missing, ", ")
		}
	}
	// A sandbox with every layer it asked for is no news on a client's
	// stderr (pkcs11-tool and friends print it); a log file gets it.
	toStderr := cfg.Log == "" || cfg.Log == "stderr"
	complete := cfg.Sandbox != config.SandboxOff && got&p.wanted == p.wanted
	sandboxLog.Lock()
	if line != sandboxLog.last && !(complete && toStderr) {
		sandboxLog.last = line
		logs.printf("%s", line)
	}
	sandboxLog.Unlock()

	if cfg.Sandbox == config.SandboxStrict {
		noNet := got&layerBits(C.P11I_L_NETNS) != 0 || (got&layerBits(C.P11I_L_LANDLOCK_FS) != 0 && rep.landlock_abi >= 4)
		if got&layerBits(C.P11I_L_SECCOMP, C.P11I_L_LANDLOCK_FS) != layerBits(C.P11I_L_SECCOMP, C.P11I_L_LANDLOCK_FS) || !noNet {
			return errors.New("sandbox=strict needs seccomp, a Landlock filesystem allowlist and no network, and this kernel does not give them all (see the sandbox line above): refusing to run the vendor module; use sandbox=default")
		}
	}
	return nil
}
