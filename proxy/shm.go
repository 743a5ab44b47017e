package main

/*
#include <stdlib.h>
#include "../cshim/plane.h"
*/
import "C"

import (
	"unsafe"

	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/p11isolate/p11isolate/internal/wire"
)

// newRegion creates a channel's shared region (see wire.Region): a memfd of
// wire.RegionSize bytes, mapped shared here. It is sealed against shrinking
// and growing before the host ever sees it: a host that could shrink the
// file would make the application's next touch of a page past the new end a
// SIGBUS. It returns the mapping and the memfd, which the caller hands to
// the host and closes.
func newRegion() ([]byte, int, error) {
	fd, err := unix.MemfdCreate("p11isolate-region", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, -1, fmt.Errorf("memfd_create: %w", err)
	}
	fail := func(what string, err error) ([]byte, int, error) {
		unix.Close(fd)
		return nil, -1, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.Ftruncate(fd, wire.RegionSize); err != nil {
		return fail("ftruncate", err)
	}
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return fail("sealing", err)
	}
	mem, err := unix.Mmap(fd, 0, wire.RegionSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail("mmap", err)
	}
	// A child the application forks does not inherit memory the host can
	// write (it cannot run the proxy anyway).
	unix.Madvise(mem, unix.MADV_DONTFORK)
	return mem, fd, nil
}

// regionOnce logs, once per process, that channels go without a region.
var regionOnce sync.Once

// openRegion is newRegion for get(): without a region the channel still
// works, with every buffer inline.
func openRegion() ([]byte, int) {
	mem, fd, err := newRegion()
	if err != nil {
		regionOnce.Do(func() {
			logs.printf("no shared memory for bulk data (%v): large buffers cross through the socket", err)
		})
		return nil, -1
	}
	return mem, fd
}

// close closes the channel's socket and unmaps its region.
func (ch *channel) close() {
	closeChannelFD(ch.fd)
	ch.free()
}

// free releases the channel's memory.
func (ch *channel) free() {
	if ch.c != nil {
		C.p11i_call_free(ch.c)
		C.free(unsafe.Pointer(ch.c))
		ch.c = nil
	}
	if ch.mem != nil {
		unix.Munmap(ch.mem)
		ch.mem = nil
	}
}

// newChannel makes a channel of socket fd and region mem (an mmap; nil:
// none) for a host of handle generation gen.
func newChannel(fd int, mem []byte, gen uint64) *channel {
	ch := &channel{fd: fd, mem: mem}
	ch.c = (*C.struct_p11i_call)(C.malloc(C.sizeof_struct_p11i_call))
	var region unsafe.Pointer
	if len(mem) > 0 {
		region = unsafe.Pointer(&mem[0])
	}
	C.p11i_call_init(ch.c, region, C.size_t(len(mem)), C.uint64_t(gen))
	return ch
}
