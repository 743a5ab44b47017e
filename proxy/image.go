package main

/*
#include "../cshim/shim.h"
*/
import "C"

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
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

const hostName = "p11isolate-host"

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
