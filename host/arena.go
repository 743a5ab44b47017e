package main

/*
#include <stdlib.h>
*/
import "C"

import "unsafe"

// arena hands out C memory for one call's arguments and takes it all back
// when the call is done. Memory is zeroed, so structures start clean.
type arena struct {
	chunks []unsafe.Pointer // chunks[0] is kept between calls
	cur    unsafe.Pointer
	off    uintptr
	size   uintptr
}

const arenaChunk = 64 << 10

func (a *arena) alloc(n uintptr) unsafe.Pointer {
	n = (n + 15) &^ 15
	if a.cur == nil || a.off+n > a.size {
		size := max(uintptr(arenaChunk), n)
		p := C.calloc(1, C.size_t(size))
		if p == nil {
			fatal("out of memory allocating %d bytes", size)
		}
		a.chunks = append(a.chunks, p)
		a.cur, a.off, a.size = p, 0, size
	}
	p := unsafe.Add(a.cur, a.off)
	a.off += n
	return p
}

// reset frees everything but the first chunk, which is zeroed for reuse.
func (a *arena) reset() {
	if len(a.chunks) == 0 {
		return
	}
	for _, p := range a.chunks[1:] {
		C.free(p)
	}
	first := a.chunks[0]
	used := a.off
	if len(a.chunks) > 1 {
		used = arenaChunk
	}
	clear(unsafe.Slice((*byte)(first), used))
	a.chunks = a.chunks[:1]
	a.cur, a.off, a.size = first, 0, arenaChunk
}

func (a *arena) release() {
	for _, p := range a.chunks {
		C.free(p)
	}
	*a = arena{}
}
