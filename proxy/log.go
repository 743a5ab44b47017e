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

// The log is the C side's (cshim/log.c), one for the whole process: Go
// writes its lines through it. It never sees PINs or key material:
// callers log names, codes and paths only.

// logf writes one line.
func logf(format string, args ...any) {
	cs := C.CString(fmt.Sprintf(format, args...))
	defer C.free(unsafe.Pointer(cs))
	C.p11i_log_line(cs)
}
