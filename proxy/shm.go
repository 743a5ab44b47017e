package main

import (
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
	if mem := ch.region.Mem(); mem != nil {
		unix.Munmap(mem)
	}
	ch.region = nil
}

// newChannel makes a channel of socket fd and region mem (nil: none).
func newChannel(fd int, mem []byte) *channel {
	ch := &channel{fd: fd, enc: wire.NewEncoder(), dec: wire.NewDecoder(), region: wire.NewRegion(mem)}
	ch.enc.SetRegion(ch.region)
	ch.dec.SetRegion(ch.region)
	return ch
}
