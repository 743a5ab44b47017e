package main

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/p11isolate/p11isolate/internal/wire"
)

// maxRegion bounds the shared region a channel may come with.
const maxRegion = 1 << 30

// mapRegion maps a channel's shared region (see wire.Region) from the memfd
// the proxy passed, and closes the fd. The proxy sealed it against
// shrinking: checking the seal means no page of the mapping can vanish
// under the vendor.
func mapRegion(fd int, size uint64) ([]byte, error) {
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("region: fstat: %w", err)
	}
	if uint64(st.Size) != size {
		return nil, fmt.Errorf("region: %d bytes where the proxy announced %d", st.Size, size)
	}
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil || seals&unix.F_SEAL_SHRINK == 0 {
		return nil, fmt.Errorf("region: not sealed against shrinking (%v)", err)
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("region: mmap: %w", err)
	}
	// Whatever the vendor forks does not get the channel's data.
	unix.Madvise(mem, unix.MADV_DONTFORK)
	return mem, nil
}

// outBuf returns a buffer of n bytes for the vendor to write into: in the
// region when it is large and fits, so it goes back as a reference without
// a copy here, else in the arena. Region memory is not zeroed: what it may
// hold is this channel's earlier data, the same application's.
func (c *call) outBuf(n uint64) uintptr {
	if n >= wire.RegionMin {
		if off, ok := c.region.Alloc(n); ok {
			return uintptr(unsafe.Pointer(&c.region.Mem()[off]))
		}
	}
	return uintptr(c.arena.alloc(uintptr(max(n, 1))))
}

// putData encodes the n bytes at p the vendor wrote: a reference when they
// are in the region, else inline.
func (c *call) putData(e *wire.Encoder, p uintptr, n uint64) {
	if off, ok := c.region.Offset(ptr(p), n); ok {
		e.Ref(off, n)
		return
	}
	e.Bytes(unsafe.Slice((*byte)(ptr(p)), n))
}
