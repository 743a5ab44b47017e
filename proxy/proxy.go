package main

/*
#include <stdlib.h>
#include "../cshim/shim.h"
extern char **environ;
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/p11isolate/p11isolate/internal/config"
	"github.com/p11isolate/p11isolate/internal/p11calls"
	"github.com/p11isolate/p11isolate/internal/wire"
)

type rv = uint64

// proxy is the library's state between C_Initialize and C_Finalize.
type proxy struct {
	mu          sync.Mutex // guards the fields below; held across host starts (C_Initialize), never across other calls
	initialized bool
	cfg         *config.Config
	env         []string
	init        initArgs // the application's C_Initialize, replayed into each new host
	host        *host
	gen         uint64 // handle generation of the next host

	// Restarts back off while the vendor keeps dying at start: no fork
	// storm from an application that retries in a loop.
	backoff   time.Duration
	nextStart time.Time
	failed    string // module whose host failed at the last C_Initialize
}

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// initArgs is what crosses of CK_C_INITIALIZE_ARGS.
type initArgs struct {
	null     bool
	flags    uint64
	mutexes  uint64 // bit i: the i-th mutex callback was non-NULL
	reserved *string
}

var px proxy

func (p *proxy) call(f p11calls.Func, a []uintptr) rv {
	switch f.ID {
	case p11calls.IDInitialize:
		return p.initialize(a[0])
	case p11calls.IDFinalize:
		return p.finalize(a)
	}
	h, r := p.current()
	if r != C.CKR_OK {
		return r
	}
	return p.forward(h, f, a)
}

// current returns the running host, starting a fresh one if the last died.
func (p *proxy) current() (*host, rv) {
	waited := false
	for {
		p.mu.Lock()
		if !p.initialized {
			p.mu.Unlock()
			return nil, C.CKR_CRYPTOKI_NOT_INITIALIZED
		}
		if p.host != nil && !p.host.dead.Load() {
			h := p.host
			p.mu.Unlock()
			return h, C.CKR_OK
		}
		if wait := time.Until(p.nextStart); wait > 0 {
			// Callers wait out the back-off instead of failing in a tight
			// loop, once and never past their deadline; then one of them
			// tries again.
			timeout := p.cfg.Timeout
			p.mu.Unlock()
			if waited {
				return nil, C.CKR_DEVICE_ERROR
			}
			time.Sleep(min(wait, backoffWaitCap(timeout)))
			waited = true
			continue
		}
		h, r := p.startLocked()
		if r != C.CKR_OK {
			p.failedStart()
			p.mu.Unlock()
			return nil, C.CKR_DEVICE_ERROR
		}
		p.backoff, p.nextStart = 0, time.Time{}
		p.mu.Unlock()
		return h, C.CKR_OK
	}
}

// backoffWaitCap bounds how long one call waits for the back-off: its
// deadline, or the longest back-off when calls have none.
func backoffWaitCap(timeout time.Duration) time.Duration {
	if timeout <= 0 {
		return maxBackoff
	}
	return timeout
}

// failedStart sets the back-off after a host failed to start: the first
// retry is immediate (a one-off fault must not delay recovery), later ones
// wait 100 ms, 200 ms, ... up to 5 s.
func (p *proxy) failedStart() {
	switch {
	case p.nextStart.IsZero() && p.backoff == 0:
		p.backoff = time.Nanosecond
	default:
		p.backoff = min(max(2*p.backoff, minBackoff), maxBackoff)
	}
	p.nextStart = time.Now().Add(p.backoff)
	if p.backoff >= minBackoff {
		logs.printf("starting a new host for %s failed again; the next attempt waits %v", p.cfg.Module, p.backoff)
	}
}

// startLocked starts a host and replays the application's C_Initialize.
// The whole start (exec, the module's loading, its C_GetFunctionList and
// C_Initialize) is under one deadline, like any call: past it the host is
// killed and the answer is CKR_DEVICE_ERROR.
func (p *proxy) startLocked() (*host, rv) {
	var deadline time.Time
	if p.cfg.Timeout > 0 {
		deadline = time.Now().Add(p.cfg.Timeout)
	}
	h, err := startHost(p.cfg, p.env, p.gen, deadline)
	if err != nil {
		var le *loadError
		switch {
		case errors.As(err, &le):
			logs.printf("%s (set module=/path/to/vendor.so, or P11ISOLATE_MODULE)", le.msg)
		case errors.Is(err, wire.ErrTimeout):
			logs.printf("%v: killed the host; the next call starts a new one", err)
			return nil, C.CKR_DEVICE_ERROR
		default:
			logs.printf("%v", err)
		}
		return nil, C.CKR_GENERAL_ERROR
	}
	args := p.replayArgs()
	defer args.free()
	ia := args.ptr()
	left := time.Duration(0) // no deadline
	if !deadline.IsZero() {
		left = max(time.Until(deadline), time.Microsecond)
	}
	r := p.forwardWithin(h, p11calls.Funcs[p11calls.IDInitialize], []uintptr{ia}, left)
	if r != C.CKR_OK {
		if r != C.CKR_DEVICE_ERROR {
			logs.printf("the vendor module %s returned %s from C_Initialize%s", p.cfg.Module, rvName(r), h.envHint())
		}
		h.kill()
		return nil, r
	}
	p.host = h
	// Only a host that started takes up a handle generation.
	p.gen = (p.gen + 1) % (1 << 16)
	return h, C.CKR_OK
}

func (p *proxy) initialize(argp uintptr) rv {
	var init initArgs
	var reserved *string
	if argp == 0 {
		init.null = true
	} else {
		// The proxy reads the arguments for itself (the vendor sees a
		// replay), so it reads them with a copy that cannot fault: a
		// pointer the application got wrong is its CKR_ARGUMENTS_BAD,
		// never a crash in the proxy.
		var args C.CK_C_INITIALIZE_ARGS
		if C.p11i_copy_in(unsafe.Pointer(&args), ptr(argp), C.sizeof_CK_C_INITIALIZE_ARGS) != 0 {
			logs.printf("C_Initialize: pInitArgs points at memory that cannot be read: returning CKR_ARGUMENTS_BAD")
			return C.CKR_ARGUMENTS_BAD
		}
		init.flags = uint64(args.flags)
		for i, set := range []bool{args.CreateMutex != nil, args.DestroyMutex != nil, args.LockMutex != nil, args.UnlockMutex != nil} {
			if set {
				init.mutexes |= 1 << i
			}
		}
		if args.pReserved != nil {
			s, ok := readReserved(args.pReserved)
			if !ok {
				logs.printf("C_Initialize: pReserved is neither NULL nor a readable string of less than %d bytes: returning CKR_ARGUMENTS_BAD", maxReserved)
				return C.CKR_ARGUMENTS_BAD
			}
			reserved = &s
		}
		// CKF_LIBRARY_CANT_CREATE_OS_THREADS crosses like every other flag
		// and the vendor answers it. The application's threads create no
		// threads in the proxy: its own exist from load time, and the
		// host is a separate process. (GnuTLS and NSS always pass the flag;
		// refusing it would lock GnuTLS out and serialize NSS.)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.initialized {
		return C.CKR_CRYPTOKI_ALREADY_INITIALIZED
	}
	env := environ()
	cfg, err := config.Resolve(env, reserved)
	if err != nil {
		logs.printf("%v", err)
		return C.CKR_GENERAL_ERROR
	}
	if err := logs.open(cfg.Log); err != nil {
		logs.printf("%v", err)
		return C.CKR_GENERAL_ERROR
	}
	if cfg.Module == "" {
		logs.printf("no vendor module is configured: set P11ISOLATE_MODULE=/path/to/vendor.so (or module=... in C_Initialize's pReserved or the P11ISOLATE_CONFIG file)")
		return C.CKR_GENERAL_ERROR
	}
	if st, err := os.Stat(cfg.Module); err != nil || st.IsDir() {
		logs.printf("the vendor module %s (from %s) does not exist or is not a file: set module to the path of a PKCS#11 .so", cfg.Module, cfg.Source["module"])
		return C.CKR_GENERAL_ERROR
	}
	init.reserved = cfg.VendorReserved
	p.cfg, p.env, p.init = cfg, env, init
	// A vendor that dies at every start gets no fork storm from an
	// application retrying C_Initialize in a loop: the same module waits
	// out the back-off after a host failure.
	if p.failed != cfg.Module {
		p.backoff, p.nextStart = 0, time.Time{}
	}
	if wait := time.Until(p.nextStart); wait > 0 {
		// Wait out the back-off, but never past this call's deadline, and
		// without holding the lock.
		p.mu.Unlock()
		time.Sleep(min(wait, backoffWaitCap(cfg.Timeout)))
		p.mu.Lock()
		if p.initialized {
			return C.CKR_CRYPTOKI_ALREADY_INITIALIZED
		}
		if time.Now().Before(p.nextStart) {
			return C.CKR_DEVICE_ERROR
		}
	}
	h, r := p.startLocked()
	if r != C.CKR_OK {
		if r == C.CKR_DEVICE_ERROR || r == C.CKR_GENERAL_ERROR {
			p.failed = cfg.Module
			p.failedStart()
		}
		return r
	}
	p.failed, p.backoff, p.nextStart = "", 0, time.Time{}
	p.host = h
	p.initialized = true
	p.leaveKit()
	return C.CKR_OK
}

// cInitArgs is a replay of the application's C_Initialize arguments in C
// memory: a uintptr into a Go stack would not survive the stack moving.
type cInitArgs struct {
	args     *C.CK_C_INITIALIZE_ARGS // nil: the application passed NULL
	reserved *C.char
}

// replayArgs rebuilds the application's CK_C_INITIALIZE_ARGS for a new host.
func (p *proxy) replayArgs() cInitArgs {
	if p.init.null {
		return cInitArgs{}
	}
	var r cInitArgs
	r.args = (*C.CK_C_INITIALIZE_ARGS)(C.calloc(1, C.sizeof_CK_C_INITIALIZE_ARGS))
	r.args.flags = C.CK_FLAGS(p.init.flags)
	// Only which callbacks were set crosses; any non-NULL value will do.
	marker := unsafe.Pointer(C.p11i_call)
	if p.init.mutexes&1 != 0 {
		r.args.CreateMutex = C.CK_CREATEMUTEX(marker)
	}
	if p.init.mutexes&2 != 0 {
		r.args.DestroyMutex = C.CK_DESTROYMUTEX(marker)
	}
	if p.init.mutexes&4 != 0 {
		r.args.LockMutex = C.CK_LOCKMUTEX(marker)
	}
	if p.init.mutexes&8 != 0 {
		r.args.UnlockMutex = C.CK_UNLOCKMUTEX(marker)
	}
	if p.init.reserved != nil {
		r.reserved = C.CString(*p.init.reserved)
		r.args.pReserved = unsafe.Pointer(r.reserved)
	}
	return r
}

func (r cInitArgs) ptr() uintptr { return uintptr(unsafe.Pointer(r.args)) }

func (r cInitArgs) free() {
	C.free(unsafe.Pointer(r.reserved))
	C.free(unsafe.Pointer(r.args))
}

// maxReserved bounds the pReserved string: p11isolate's settings and a
// vendor's own configuration string are far shorter.
const maxReserved = 64 << 10

// readReserved copies C_Initialize's pReserved string without faulting.
func readReserved(p unsafe.Pointer) (string, bool) {
	buf := make([]byte, maxReserved)
	n := C.p11i_copy_string((*C.char)(unsafe.Pointer(&buf[0])), p, C.size_t(len(buf)))
	if n < 0 {
		return "", false
	}
	return string(buf[:n]), true
}

func (p *proxy) finalize(a []uintptr) rv {
	p.mu.Lock()
	if !p.initialized {
		p.mu.Unlock()
		return C.CKR_CRYPTOKI_NOT_INITIALIZED
	}
	h := p.host
	p.mu.Unlock()

	r := rv(C.CKR_OK)
	if h != nil && !h.dead.Load() {
		r = p.forward(h, p11calls.Funcs[p11calls.IDFinalize], a)
		if r != C.CKR_OK && r != C.CKR_DEVICE_ERROR {
			return r // e.g. CKR_ARGUMENTS_BAD: still initialized
		}
	}
	p.mu.Lock()
	p.initialized = false
	kitFinalized()
	p.host = nil
	p.mu.Unlock()
	if h != nil {
		// Releases any caller still blocked in the host (C_WaitForSlotEvent):
		// its channel sees the host go and it returns NOT_INITIALIZED.
		h.retired.Store(true)
		h.kill()
	}
	return r
}

// forward makes one call through a pooled channel of h, under f's deadline.
func (p *proxy) forward(h *host, f p11calls.Func, a []uintptr) rv {
	return p.forwardWithin(h, f, a, h.timeoutFor(f))
}

// forwardWithin makes one call that must be answered within timeout (0:
// no deadline).
func (p *proxy) forwardWithin(h *host, f p11calls.Func, a []uintptr, timeout time.Duration) rv {
	ch, err := h.get()
	if err != nil {
		logs.printf("%s: %v", f.Name, err)
		return C.CKR_DEVICE_ERROR
	}
	r, err := ch.run(h, f, a, timeout)
	if err != nil {
		return p.lost(h, ch, f, err)
	}
	h.put(ch, true)
	return r
}

// timeoutFor is the deadline of one call of f (0: none).
func (h *host) timeoutFor(f p11calls.Func) time.Duration {
	switch f.Deadline() {
	case p11calls.DeadlineNone:
		return 0
	case p11calls.DeadlineKeygen:
		return h.keygenTimeout
	}
	return h.timeout
}

// lost handles a call whose host died, hung or lied: the host is killed and
// the call fails with CKR_DEVICE_ERROR (CKR_CRYPTOKI_NOT_INITIALIZED when
// C_Finalize took the host away).
func (p *proxy) lost(h *host, ch *channel, f p11calls.Func, err error) rv {
	h.put(ch, false)
	// No p.mu here: lost runs inside C_Initialize and restarts, which
	// hold it.
	if h.retired.Load() && f.ID != p11calls.IDFinalize {
		return C.CKR_CRYPTOKI_NOT_INITIALIZED
	}
	// Every call in flight sees the death; the first to claim it reports
	// it, once, and has the host killed.
	if h.dead.CompareAndSwap(false, true) {
		switch {
		case errors.Is(err, wire.ErrTimeout):
			logs.printf("%s in %s (host pid %d) passed its deadline: killing the host; the next call starts a new one", f.Name, h.module, h.pid)
		case errors.Is(err, wire.ErrClosed):
			logs.printf("the host (pid %d) running %s died during %s%s; the next call starts a new one", h.pid, h.module, f.Name, h.exitStatus())
		default:
			// A reply that breaks the frame format or tells the
			// application more than it has room for: the host's state
			// can no longer be trusted.
			why := strings.TrimPrefix(err.Error(), wire.ErrMalformed.Error()+": ")
			logs.printf("%s: the reply of %s (host pid %d) cannot be true: %s; returning CKR_DEVICE_ERROR and killing the host, the next call starts a new one", f.Name, h.module, h.pid, why)
		}
		h.signal(unix.SIGKILL)
		go h.kill()
	}
	return C.CKR_DEVICE_ERROR
}

// exitStatus describes how the host ended, if it has.
func (h *host) exitStatus() string {
	if !h.waitExit(200 * time.Millisecond) {
		return ""
	}
	return h.status
}

func rvName(r rv) string { return fmt.Sprintf("0x%x", r) }

// environ returns C's environment now, not Go's copy from load time: an
// application's setenv before C_Initialize must count.
func environ() []string {
	var env []string
	for p := C.environ; p != nil && *p != nil; p = (**C.char)(unsafe.Add(unsafe.Pointer(p), unsafe.Sizeof(p))) {
		env = append(env, C.GoString(*p))
	}
	return env
}

// ptr turns an address of the application's memory into a pointer.
func ptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }
