// Command p11isolate-host loads a vendor PKCS#11 module and serves calls on
// the channels the proxy hands it. It is small and fail-stop: malformed input
// from the proxy ends it, and so does the proxy closing the control channel.
//
// It is started by libp11isolate.so with fd 3 as the control channel; it is
// not meant to be run by hand.
//
//go:debug updatemaxprocs=0
//go:debug containermaxprocs=0
package main

/*
#cgo CFLAGS: -I/usr/include/p11-kit-1 -Wall -Wextra -Werror -Wno-unused-parameter
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "host.h"
*/
import "C"

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/p11isolate/p11isolate/internal/p11calls"
	"github.com/p11isolate/p11isolate/internal/plan"
	"github.com/p11isolate/p11isolate/internal/wire"
)

// buildID is set at link time (-X) to the same value as the proxy's; the
// handshake refuses a host from another build.
var buildID = "dev"

// vendor is the loaded module's function list, set once by OpOpen: the
// list of the highest version it offers, holding nfuncs functions.
var vendor struct {
	sync.Mutex
	lists routeLists
	path  string
	reply wire.OpenReply
}

// routeLists are the vendor's function lists a call of each route goes
// through (p11calls.Route*), with their numbers of functions: the list of
// the route's version, or the widest the vendor offers.
type routeLists struct {
	list   [p11calls.NRoutes]*C.struct_p11i_flist
	nfuncs [p11calls.NRoutes]C.int
}

func (r *routeLists) ready() bool { return r.list[0] != nil }

// exitGroup ends the host and every process the vendor started: they share
// the process group the host leads.
func exitGroup() {
	killGroup()
	os.Exit(0)
}

// killGroup kills the host's process group, but only when the host leads it:
// otherwise the group is the application's.
func killGroup() {
	if unix.Getpgrp() == os.Getpid() {
		unix.Kill(0, unix.SIGKILL)
	}
}

// servePlan writes the plan of a C_Initialize with pReserved args[0] (none:
// NULL) and this process's environment, which is the application's.
func servePlan(args []string) {
	var reserved *string
	if len(args) > 0 {
		reserved = &args[0]
	}
	b, err := plan.Make(os.Environ(), reserved).Encode()
	if err != nil {
		fatal("plan: %v", err)
	}
	e := wire.NewEncoder()
	e.Write(b)
	if err := wire.WriteFrame(C.P11H_CONTROL_FD, e.Frame()); err != nil {
		fatal("plan: %v", err)
	}
}

func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "p11isolate-host[%d]: %s\n", os.Getpid(), fmt.Sprintf(format, args...))
	killGroup()
	os.Exit(2)
}

func main() {
	// "--plan [RESERVED]": a process forked after libp11isolate.so was
	// loaded cannot run Go, so its C_Initialize has this image resolve
	// its settings (internal/plan) and reads the plan from the control
	// channel; no module is loaded.
	if len(os.Args) > 1 && os.Args[1] == plan.Arg && len(os.Args) <= 3 {
		servePlan(os.Args[2:])
		return
	}
	// "--init": the host runs as pid 2 under its own init (host.c), in a
	// pid namespace of its own.
	if len(os.Args) > 1 && (len(os.Args) > 2 || os.Args[1] != C.P11H_INIT_ARG) {
		fmt.Fprintln(os.Stderr, "p11isolate-host is started by libp11isolate.so; it takes no arguments")
		os.Exit(2)
	}
	C.p11h_default_fault_signals()
	ctl := C.P11H_CONTROL_FD
	C.p11h_fd_register(C.int(ctl))
	e := wire.NewEncoder()
	e.Value(wire.Hello{Protocol: wire.ProtocolVersion, BuildID: buildID, Pid: os.Getpid()})
	if err := wire.WriteFrame(ctl, e.Frame()); err != nil {
		fatal("handshake: %v", err)
	}
	go watchProxy(ctl)
	var r wire.Reader
	d := wire.NewDecoder()
	for {
		body, fds, err := r.ReadFrameFD(ctl)
		if err == wire.ErrClosed {
			// The proxy finalized, or the application is gone: take the
			// vendor's own child processes along (the host leads their
			// process group).
			exitGroup()
		}
		if err != nil {
			fatal("control channel: %v", err)
		}
		d.Reset(body)
		switch op := d.Uint(); op {
		case wire.OpOpen:
			closeAll(fds)
			var req wire.Open
			d.Value(&req)
			if err := d.Finish(); err != nil {
				fatal("open request: %v", err)
			}
			e.Reset()
			e.Value(open(req))
			if err := wire.WriteFrame(ctl, e.Frame()); err != nil {
				fatal("control channel: %v", err)
			}
		case wire.OpChannel:
			// The socket, and the shared region if the size is not 0.
			size := d.UintMax(maxRegion, "region size")
			if err := d.Finish(); err != nil || len(fds) != 1+min(int(size), 1) {
				fatal("channel request with %d descriptors: %v", len(fds), err)
			}
			var region []byte
			if size > 0 {
				if region, err = mapRegion(fds[1], size); err != nil {
					fatal("%v", err)
				}
			}
			go serve(fds[0], region)
		default:
			fatal("unknown control operation %d", op)
		}
	}
}

// watchProxy ends the host as soon as the proxy's end of the control
// channel closes (the application finalized, exited or was killed), even
// while the control loop is stuck in vendor code that never returns (an ELF
// constructor, C_GetFunctionList): it polls on a thread of its own and reads
// nothing. Under a namespace init the init watches too (host.c), for a host
// whose Go runtime no longer runs at all.
func watchProxy(ctl int) {
	fds := []unix.PollFd{{Fd: int32(ctl), Events: unix.POLLRDHUP}}
	for {
		n, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			fatal("watching the control channel: %v", err)
		}
		if n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
			exitGroup()
		}
	}
}

func open(req wire.Open) wire.OpenReply {
	path := req.Module
	vendor.Lock()
	defer vendor.Unlock()
	if vendor.lists.ready() {
		if path == vendor.path {
			return vendor.reply
		}
		return wire.OpenReply{Error: "a host serves one module; this one already loaded " + vendor.path}
	}
	if req.MemoryLimit > 0 {
		lim := unix.Rlimit{Cur: req.MemoryLimit, Max: req.MemoryLimit}
		if err := unix.Setrlimit(unix.RLIMIT_DATA, &lim); err != nil {
			return wire.OpenReply{Error: fmt.Sprintf("cannot set the host's memory limit: %v", err)}
		}
	}
	load := path
	if req.ModuleSHA256 != "" {
		fd, err := pinned(path, req.ModuleSHA256)
		if err != nil {
			return wire.OpenReply{Error: err.Error()}
		}
		// dlopen maps the file it opens through /proc/self/fd/N: the
		// very file that was hashed, even if path is replaced meanwhile.
		defer unix.Close(fd)
		load = fmt.Sprintf("/proc/self/fd/%d", fd)
	}
	cpath := C.CString(load)
	defer C.free(unsafe.Pointer(cpath))
	var errbuf [512]C.char
	var m C.struct_p11h_module
	if C.p11h_load(cpath, &errbuf[0], C.size_t(len(errbuf)), &m) != 0 {
		return wire.OpenReply{Error: strings.ReplaceAll(C.GoString(&errbuf[0]), load, path)}
	}
	for r := range vendor.lists.list {
		vendor.lists.list[r], vendor.lists.nfuncs[r] = m.list, m.nfuncs
		if m.route[r] != nil {
			vendor.lists.list[r], vendor.lists.nfuncs[r] = m.route[r], C.int(p11calls.Routes[r])
		}
	}
	vendor.path = path
	reply := wire.OpenReply{OK: true, Default: int(m.def)}
	for _, in := range m.iface[:m.n] {
		reply.Interfaces = append(reply.Interfaces, [3]uint64{uint64(in.major), uint64(in.minor), uint64(in.flags)})
	}
	vendor.reply = reply
	return reply
}

// pinned opens the module at path and checks its SHA-256 through that fd,
// which it returns for loading.
func pinned(path, want string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("module_sha256: cannot open %s to check its hash: %v", path, err)
	}
	sum := sha256.New()
	buf := make([]byte, 256<<10)
	for off := int64(0); ; {
		n, err := unix.Pread(fd, buf, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("module_sha256: cannot read %s: %v", path, err)
		}
		if n == 0 {
			break
		}
		sum.Write(buf[:n])
		off += int64(n)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != want {
		unix.Close(fd)
		return -1, fmt.Errorf("module_sha256: %s has SHA-256 %s, but module_sha256 pins %s: refusing to load it (a changed or replaced module; update the pin only if the new module is trusted)", path, got, want)
	}
	return fd, nil
}

// serve answers calls on one channel until the proxy closes it. The
// goroutine keeps its OS thread, so a vendor that keeps per-thread state sees
// one thread per channel, as it would see one application thread.
func serve(fd int, region []byte) {
	runtime.LockOSThread()
	// A process the vendor forks must not keep this channel open: the
	// application sees the host's death as EOF only once every copy is gone.
	C.p11h_fd_register(C.int(fd))
	defer func() {
		C.p11h_fd_unregister(C.int(fd))
		unix.Close(fd)
	}()
	if region != nil {
		defer unix.Munmap(region)
	}
	// The region's last bytes are the channel's ring (cshim/ring.h), as
	// the proxy sees it for a region of this size.
	var ring *C.struct_p11i_ring
	var slot unsafe.Pointer // a request copied out of the ring (C memory)
	if len(region) >= C.P11I_RING_SIZE+wire.RegionMin {
		ring = (*C.struct_p11i_ring)(unsafe.Pointer(&region[len(region)-C.P11I_RING_SIZE]))
		region = region[:len(region)-C.P11I_RING_SIZE]
		slot = C.malloc(C.P11I_RING_REQ_CAP)
		defer C.free(slot)
	}
	c := newCall(region)
	defer c.free()
	r := wire.Reader{Alloc: cAlloc, Free: cFree, Exact: ring != nil}
	defer r.Release()
	e := wire.NewEncoder()
	// Poll for the next request before sleeping on it, when that pays
	// (host/spin.c).
	w := C.p11h_wait_new()
	defer C.free(unsafe.Pointer(w))
	after := C.int(0) // 1 + the function answered last
	yielded := time.Now()
	for {
		// A goroutine that has not been through the scheduler for 10 ms
		// is one the runtime's monitor (sysmon) thinks runs too long: it
		// then takes the P away at every cgo call it sees, every 20 µs,
		// and wakes a thread that finds nothing to do. With the caller
		// polling on the other CPU, those threads run on the vendor's
		// (measured: ~1 700 futex calls a second, C_DigestUpdate of 64 KiB
		// 47 µs in the host against 41 µs directly; 43 µs with this).
		// A yield between calls every 5 ms keeps the monitor asleep.
		if time.Since(yielded) > 5*time.Millisecond {
			runtime.Gosched()
			yielded = time.Now()
		}
		var body []byte
		n := C.p11h_next(C.int(fd), w, ring, (*C.uint8_t)(slot), after)
		after = 0
		switch {
		case n > 0:
			body = unsafe.Slice((*byte)(slot), int(n))
		case n < 0:
			fatal("call channel: a request longer than the ring's slot")
		default:
			var err error
			body, err = r.ReadFrame(fd)
			if err == wire.ErrClosed {
				return
			}
			if err != nil {
				fatal("call channel: %v", err)
			}
			if len(body) == 0 {
				continue // a doorbell: the request is in the ring
			}
		}
		C.p11h_busy(w)
		vendor.Lock()
		lists := vendor.lists
		vendor.Unlock()
		e.Reset()
		id, err := c.run(&lists, body, e)
		if err != nil {
			fatal("call: %v", err)
		}
		after = C.int(1 + id)
		frame := e.Frame()
		switch C.p11h_reply(C.int(fd), w, ring, (*C.uint8_t)(unsafe.Pointer(&frame[wire.HeaderSize])), C.size_t(len(frame)-wire.HeaderSize)) {
		case 1:
			continue
		case -1:
			return // the proxy is gone
		}
		if err := wire.WriteFrame(fd, frame); err != nil {
			if err == wire.ErrClosed {
				return
			}
			fatal("call channel: %v", err)
		}
	}
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// cAlloc and cFree give the frame reader C memory, so arguments can be
// handed to the vendor as pointers into the frame without a copy.
func cAlloc(n int) []byte {
	return unsafe.Slice((*byte)(C.malloc(C.size_t(n))), n)
}

func cFree(b []byte) {
	C.free(unsafe.Pointer(unsafe.SliceData(b)))
}
