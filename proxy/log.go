package main

/*
#include <stdlib.h>
#include "../cshim/shim.h"
*/
import "C"

import (
	"unsafe"

	"bufio"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// logger writes one line per event to the configured destination. It never
// sees PINs or key material: callers log names, codes and paths only.
type logger struct {
	mu sync.Mutex
	fd int
}

var logs = &logger{fd: 2}

// open points the log at dest ("stderr" or a file path).
func (l *logger) open(dest string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fd > 2 {
		unix.Close(l.fd)
	}
	l.fd = 2
	if dest == "" || dest == "stderr" {
		return nil
	}
	fd, err := unix.Open(dest, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("cannot open the log file %s: %v (set log=stderr or a writable path)", dest, err)
	}
	l.fd = fd
	return nil
}

func (l *logger) printf(format string, args ...any) {
	line := "p11isolate: " + fmt.Sprintf(format, args...) + "\n"
	l.mu.Lock()
	defer l.mu.Unlock()
	cs := C.CString(line)
	defer C.free(unsafe.Pointer(cs))
	C.p11i_log_write(C.int(l.fd), cs, C.size_t(len(line)))
}

// relay copies the host's stderr, line by line, into the log.
func (l *logger) relay(r *os.File, pid int) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		l.printf("host[%d]: %s", pid, sc.Text())
	}
}
