package main

/*
#include <stdlib.h>
#include "host.h"
*/
import "C"

import (
	"bytes"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/p11isolate/p11isolate/internal/p11calls"
	"github.com/p11isolate/p11isolate/internal/wire"
)

// Asynchronous sessions (PKCS#11 3.2 §5.20). On a session opened with
// CKF_ASYNC_SESSION a call may return CKR_PENDING and the vendor writes
// its output later, into the buffer the call gave it (or the one
// C_AsyncJoin gave); C_AsyncComplete then returns that buffer's address in
// its CK_ASYNC_DATA. So the output buffers of calls on such a session are
// C memory of their own, not the call's arena or the shared region that
// the next call reuses: a pending call's buffer is kept, by session and
// function, until C_AsyncComplete returns its result, C_AsyncGetID hands
// the operation over, or the session closes.
var async struct {
	sync.Mutex
	sessions map[uint64]uint64 // asynchronous session -> its slot
	kept     map[asyncKey]keptBuf
	// open counts the asynchronous sessions: with none, which is every
	// 2.40 application, a call pays one atomic load for all this.
	open atomic.Int32
}

type asyncKey struct {
	session uint64
	fn      int
}

// keptBuf is a buffer the vendor may write after the call returns.
type keptBuf struct {
	p    unsafe.Pointer
	cap  uint64
	kind byte // 'Y' or 'G': a call's output; 'B': C_AsyncJoin's
}

func (k keptBuf) free() { C.free(k.p) }

func isAsyncSession(s uint64) bool {
	if async.open.Load() == 0 {
		return false
	}
	async.Lock()
	defer async.Unlock()
	_, ok := async.sessions[s]
	return ok
}

// keep allocates a buffer of n bytes that outlives the call.
func (c *call) keep(n uint64, kind byte) uintptr {
	p := C.calloc(1, C.size_t(max(n, 1)))
	if p == nil {
		fatal("out of memory allocating %d bytes", n)
	}
	c.kept = append(c.kept, keptBuf{p, n, kind})
	return uintptr(p)
}

// outputBuf is an output buffer of n bytes for the call being decoded: of
// its own on an asynchronous session (its first argument), else from the
// region or the arena.
func (c *call) outputBuf(n uint64) uintptr {
	if isAsyncSession(uint64(c.args[0])) {
		return c.keep(n, 'Y')
	}
	return c.outBuf(n)
}

// releaseKept frees the buffers of the last call that no pending
// operation holds.
func (c *call) releaseKept() {
	for _, k := range c.kept {
		k.free()
	}
	clear(c.kept)
	c.kept = c.kept[:0]
}

// hold moves the call's buffers of kind into the record of session s's
// pending operation fn, freeing any earlier one.
func (c *call) hold(s uint64, fn int, kinds string) {
	rest := c.kept[:0]
	for _, k := range c.kept {
		if bytes.IndexByte([]byte(kinds), k.kind) < 0 {
			rest = append(rest, k)
			continue
		}
		key := asyncKey{s, fn}
		if old, ok := async.kept[key]; ok {
			old.free()
		}
		if async.kept == nil {
			async.kept = map[asyncKey]keptBuf{}
		}
		async.kept[key] = k
	}
	c.kept = rest
}

// dropSessions forgets the asynchronous sessions match picks and frees
// what their operations kept (async.Mutex held).
func dropSessions(match func(session, slot uint64) bool) {
	gone := map[uint64]bool{}
	for s, slot := range async.sessions {
		if match(s, slot) {
			gone[s] = true
			delete(async.sessions, s)
		}
	}
	for key, k := range async.kept {
		if gone[key.session] {
			k.free()
			delete(async.kept, key)
		}
	}
	async.open.Store(int32(len(async.sessions)))
}

// asyncAfter updates the record of asynchronous sessions after call f
// returned rv; the reply is encoded, so buffers no one holds can go.
func (c *call) asyncAfter(f p11calls.Func, rv uint64) {
	if async.open.Load() == 0 && (f.ID != p11calls.IDOpenSession || c.args[1]&C.CKF_ASYNC_SESSION == 0) {
		return
	}
	s := uint64(c.args[0])
	async.Lock()
	defer async.Unlock()
	switch {
	case f.ID == p11calls.IDOpenSession:
		if rv == C.CKR_OK && c.args[1]&C.CKF_ASYNC_SESSION != 0 && c.args[4] != 0 {
			if async.sessions == nil {
				async.sessions = map[uint64]uint64{}
			}
			async.sessions[ulongAt(c.args[4])] = uint64(c.args[0])
			async.open.Store(int32(len(async.sessions)))
		}
	case f.ID == p11calls.IDCloseSession:
		if rv == C.CKR_OK {
			dropSessions(func(session, _ uint64) bool { return session == s })
		}
	case f.ID == p11calls.IDCloseAllSessions:
		if rv == C.CKR_OK {
			dropSessions(func(_, slot uint64) bool { return slot == s })
		}
	case f.ID == p11calls.IDAsyncComplete:
		if rv != C.CKR_PENDING && c.fname >= 0 {
			if k, ok := async.kept[asyncKey{s, c.fname}]; ok {
				k.free()
				delete(async.kept, asyncKey{s, c.fname})
			}
		}
	case f.ID == p11calls.IDAsyncGetID:
		if rv == C.CKR_OK && c.fname >= 0 {
			if k, ok := async.kept[asyncKey{s, c.fname}]; ok {
				k.free()
				delete(async.kept, asyncKey{s, c.fname})
			}
		}
	case f.ID == p11calls.IDAsyncJoin:
		if rv == C.CKR_OK && c.fname >= 0 {
			c.hold(s, c.fname, "B")
		}
	case rv == C.CKR_PENDING:
		c.hold(s, f.ID, "YG")
	}
}

// keptFor reports whether session s's pending operation fn has an output
// buffer the host keeps.
func (c *call) keptFor(s uint64, fn int) bool {
	if fn < 0 {
		return false
	}
	async.Lock()
	defer async.Unlock()
	_, ok := async.kept[asyncKey{s, fn}]
	return ok
}

// encodeAsyncData sends C_AsyncComplete's result as [result, output]:
// result is nil when the application passed NULL, the operation is still
// pending or the vendor left the structure alone, else [ulVersion, pValue
// set, ulValue, hObject, hAdditionalObject]; output is what the vendor
// wrote into the buffer the host kept for the operation (nil: none),
// which is where the vendor writes it, ulValue bytes.
func (c *call) encodeAsyncData(e *wire.Encoder, o *out, rv uint64) {
	if o.p == 0 || rv == C.CKR_PENDING {
		e.Nil()
		return
	}
	d := (*C.CK_ASYNC_DATA)(ptr(o.p))
	e.ArrayLen(2)
	if o.none || bytes.Equal(unsafe.Slice((*byte)(ptr(o.p)), C.sizeof_CK_ASYNC_DATA), o.before) {
		e.Nil()
	} else {
		e.ArrayLen(5)
		e.Uint(uint64(d.ulVersion))
		e.Bool(d.pValue != nil)
		e.Uint(uint64(d.ulValue))
		e.Uint(uint64(d.hObject))
		e.Uint(uint64(d.hAdditionalObject))
	}
	async.Lock()
	k, ok := async.kept[asyncKey{uint64(c.args[0]), c.fname}]
	async.Unlock()
	if rv == C.CKR_OK && ok && c.fname >= 0 && d.pValue != nil && unsafe.Pointer(d.pValue) == k.p && uint64(d.ulValue) <= k.cap {
		e.Bytes(unsafe.Slice((*byte)(k.p), int(d.ulValue)))
	} else {
		e.Nil()
	}
}
