package main

/*
#include <stdlib.h>
#include "../cshim/plane.h"
#include "../cshim/shim.h"
*/
import "C"

import (
	"unsafe"

	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/p11isolate/p11isolate/internal/wire"
)

// newRegion creates a channel's shared region (p11i_region_new, which the
// forked child's path uses too) and returns the mapping and the memfd,
// which the caller hands to the host and closes.
func newRegion() ([]byte, int, error) {
	var fd C.int
	mem, err := C.p11i_region_new(wire.RegionSize, &fd)
	if mem == nil {
		return nil, -1, fmt.Errorf("shared region: %w", err)
	}
	return unsafe.Slice((*byte)(mem), wire.RegionSize), int(fd), nil
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
