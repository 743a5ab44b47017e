package main

/*
#include <stdlib.h>
#include "../cshim/shim.h"

static void p11i_log_line(const char *s) { p11i_log("%s", s); }
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// The log is the C side's (cshim/supervise.c), one for the whole process:
// Go writes its lines through it. It never sees PINs or key material:
// callers log names, codes and paths only.

// logOpen points the log at dest ("stderr" or a file path).
func logOpen(dest string) error {
	if dest == "" || dest == "stderr" {
		C.p11i_log_open(nil)
		return nil
	}
	cs := C.CString(dest)
	defer C.free(unsafe.Pointer(cs))
	if r, err := C.p11i_log_open(cs); r != 0 {
		return fmt.Errorf("cannot open the log file %s: %v (set log=stderr or a writable path)", dest, err)
	}
	return nil
}

// logf writes one line.
func logf(format string, args ...any) {
	cs := C.CString(fmt.Sprintf(format, args...))
	defer C.free(unsafe.Pointer(cs))
	C.p11i_log_line(cs)
}
