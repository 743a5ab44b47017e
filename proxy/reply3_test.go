package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/p11isolate/p11isolate/internal/wire"
)

// Scenes of the PKCS#11 3.0 and 3.2 functions (IDs 68-103), held to the
// rules of reply_test.go: a refused reply writes nothing, an accepted one
// stays inside the application's buffers. Their kinds need what the proxy
// remembers of a session (cshim/sessions.c): the mechanism of a message
// operation (kind M), the buffer of a call that went pending (kind D). A
// scene makes that state as the application and an honest host would, by
// the calls before it (prime), when it is built: scenes() gives scenes
// ready to run, each on a session of its own.

const (
	ckmAESGCM         = 0x1087
	ckmMLKEM          = 0x17
	ckmAESKeyWrapKWP  = 0x210b
	ckmVendor         = 0x80000123
	ckrPending        = 0x204
	ckrBufferTooSmall = 0x150
	ckrOpNotInit      = 0x91
	ckrArgumentsBad   = 0x7
	ckfMessageEncrypt = 0x2
	ckfMessageDecrypt = 0x4
	ckgGenerate       = 1
)

// scratch holds the priming calls' own arguments (an out session handle,
// a CK_MECHANISM): package memory, which stays where it is.
var scratch [64]uint64

func scratchAt(i int) uintptr { return uintptr(unsafe.Pointer(&scratch[i])) }

func putPtr(b []byte, p uintptr) { *(*uintptr)(unsafe.Pointer(&b[0])) = p }

func ulongAt(b []byte) uint64 { return *(*uint64)(unsafe.Pointer(&b[0])) }

// mustCall makes the call name(args...) with the host's honest reply on a
// channel of its own: the proxy keeps what it learns (track in plane.c).
func mustCall(name string, args []uintptr, reply []byte) {
	ch := newChannel(-1, nil, 0)
	defer ch.free()
	f := funcByName(name)
	if r, bad := ch.encode(f, args); bad {
		panic(fmt.Sprintf("priming %s: encode refused: 0x%x", name, r))
	}
	if _, err := ch.decode(f, args, reply); err != nil {
		panic(fmt.Sprintf("priming %s: honest reply refused: %v", name, err))
	}
}

// openSession is a successful C_OpenSession that returned h: the proxy
// registers the session (afresh: nothing pending, no message operation).
func openSession(h uint64) {
	mustCall("C_OpenSession", []uintptr{1, 6 | 8, 0, 0, scratchAt(0)}, frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(h) }))
}

// beginMessages is a successful C_Message*Init (init) of mechanism mech on
// session h.
func beginMessages(h uint64, init string, mech uint64) {
	scratch[8], scratch[9], scratch[10] = mech, 0, 0 // CK_MECHANISM{mech, NULL, 0}
	mustCall(init, []uintptr{uintptr(h), scratchAt(8), 9}, frame(func(e *wire.Encoder) { e.Uint(0) }))
}

// gcmMessage lays out a CK_GCM_MESSAGE_PARAMS at off: an IV of ivLen bytes
// at iv (made by the vendor), a tag of tagBits at tag.
func (s *scene) gcmMessage(off int, iv uintptr, ivLen uint64, tag uintptr, tagBits uint64) uintptr {
	putPtr(s.arena[off:], iv)
	putUlong(s.arena[off+8:], ivLen)
	putUlong(s.arena[off+16:], 0)
	putUlong(s.arena[off+24:], ckgGenerate)
	putPtr(s.arena[off+32:], tag)
	putUlong(s.arena[off+40:], tagBits)
	return s.at(off)
}

// asyncData is the application's CK_ASYNC_DATA at asyncAt: ulValue 0, the
// rest as the arena has it.
func (s *scene) asyncData() uintptr {
	putUlong(s.arena[asyncAt+16:], 0)
	return s.own(asyncAt, 40)
}

// cString puts a NUL-terminated name at off.
func (s *scene) cString(off int, name string) uintptr {
	copy(s.arena[off:], name+"\x00")
	return s.at(off)
}

// mechanism puts CK_MECHANISM{mech, NULL, 0} at off.
func (s *scene) mechanism(off int, mech uint64) uintptr {
	putUlong(s.arena[off:], mech)
	putUlong(s.arena[off+8:], 0)
	putUlong(s.arena[off+16:], 0)
	return s.at(off)
}

// template2 puts {CKA_CLASS, CKA_KEY_TYPE} with their values at off.
func (s *scene) template2(off int) uintptr {
	for i, typ := range []uint64{0, 0x100} {
		putUlong(s.arena[off+24*i:], typ)
		putPtr(s.arena[off+24*i+8:], s.at(off+48+8*i))
		putUlong(s.arena[off+24*i+16:], 8)
		putUlong(s.arena[off+48+8*i:], uint64(4+i))
	}
	return s.at(off)
}

// The memory of the message scenes: IV (12) at 64, tag (16) at 96, output
// (32) at 128 with its length at 200; the parameter structure at 1024.
const (
	ivAt, ivLen   = 64, 12
	tagAt, tagLen = 96, 16
	outAt, outCap = 128, 32
	outLenAt      = 200
	keyAt         = 208 // an out object handle
	asyncAt       = 256 // a CK_ASYNC_DATA (40 bytes)
	joinAt        = 512 // C_AsyncJoin's buffer (64)
	joinCap       = 64
	sigCap        = 16 // the pending C_Sign's buffer, at outAt
)

var (
	gcmIV  = []byte("twelve-byte!")
	gcmTag = []byte("sixteen-byte-tag")
)

// gcmOuts is CK_GCM_MESSAGE_PARAMS's outputs as the host sends them.
func gcmOuts(e *wire.Encoder, iv, tag []byte) {
	e.ArrayLen(2)
	e.Bytes(iv)
	e.Bytes(tag)
}

// asyncResult is C_AsyncComplete's result as the host sends it (host/async.go):
// [result, output], result [ulVersion, pValue set, ulValue, hObject,
// hAdditionalObject], output the bytes the vendor wrote into the pending
// call's buffer (nil: none).
func asyncResult(e *wire.Encoder, out []byte, ulValue uint64) {
	e.ArrayLen(2)
	e.ArrayLen(5)
	e.Uint(1)
	e.Bool(true)
	e.Uint(ulValue)
	e.Uint(0)
	e.Uint(0)
	if out == nil {
		e.Nil()
	} else {
		e.Bytes(out)
	}
}

// scene3 is a 3.x scene: how to build it on session h, and the host's
// honest reply to its call.
type scene3 struct {
	build func(h uint64) *scene
	seed  func() []byte
}

func mk3(name string) *scene {
	return &scene{f: funcByName(name), arena: bytes.Repeat([]byte{guard}, 4096)}
}

// gcmScene: a message function of a session whose message operation (begun
// by init) is CKM_AES_GCM, with a CK_GCM_MESSAGE_PARAMS whose IV and tag
// come back.
func gcmScene(name, init string, h uint64) (*scene, uintptr) {
	openSession(h)
	beginMessages(h, init, ckmAESGCM)
	s := mk3(name)
	return s, s.gcmMessage(1024, s.own(ivAt, ivLen), ivLen, s.own(tagAt, tagLen), 8*tagLen)
}

// Indices of the 3.x scenes, in threeScenes' order.
const (
	scEncryptMessage = iota
	scDecryptMessage
	scSignMessage
	scSignMessageNext
	scEncapsulateKey
	scDecapsulateKey
	scWrapKeyAuthenticated
	scUnwrapKeyAuthenticated
	scGetSessionValidationFlags
	scLoginUser
	scSessionCancel
	scAsyncComplete
	scAsyncCompleteNone
	scAsyncCompleteJoined
	scAsyncJoin
	scAsyncGetID
	scAsyncCompleteRandom
	scEncryptMessageNext
	scEncryptMessageBegin
	scVerifyMessage
	scWrapKeyAuthenticatedGCM
)

var threes = []scene3{
	scEncryptMessage: {func(h uint64) *scene {
		s, p := gcmScene("C_EncryptMessage", "C_MessageEncryptInit", h)
		putUlong(s.arena[outLenAt:], outCap)
		s.args = []uintptr{uintptr(h), p, 48, s.at(1100), 8, s.at(1200), 32, s.own(outAt, outCap), s.own(outLenAt, 8)}
		s.bound(outLenAt, outCap)
		return s
	}, func() []byte {
		return frame(func(e *wire.Encoder) {
			e.Uint(0)
			gcmOuts(e, gcmIV, gcmTag)
			e.Uint(32)
			e.Bytes(bytes.Repeat([]byte{'c'}, 32))
		})
	}},
	scDecryptMessage: {func(h uint64) *scene {
		s, p := gcmScene("C_DecryptMessage", "C_MessageDecryptInit", h)
		putUlong(s.arena[outLenAt:], outCap)
		s.args = []uintptr{uintptr(h), p, 48, s.at(1100), 8, s.at(1200), 32, s.own(outAt, outCap), s.own(outLenAt, 8)}
		s.bound(outLenAt, outCap)
		return s
	}, func() []byte {
		return frame(func(e *wire.Encoder) {
			e.Uint(0)
			gcmOuts(e, gcmIV, gcmTag)
			e.Uint(30)
			e.Bytes(bytes.Repeat([]byte{'p'}, 30))
		})
	}},
	// A vendor-defined message mechanism: its parameter crosses as bytes
	// and nothing of it comes back. pulSignatureLen is NULL: the vendor
	// refuses the call.
	scSignMessage: {func(h uint64) *scene {
		openSession(h)
		beginMessages(h, "C_MessageSignInit", ckmVendor)
		s := mk3("C_SignMessage")
		s.args = []uintptr{uintptr(h), s.at(1024), 8, s.at(1100), 16, s.own(outAt, 64), 0}
		return s
	}, func() []byte { return frame(func(e *wire.Encoder) { e.Uint(ckrArgumentsBad); e.Nil(); e.Nil() }) }},
	// A part of a multi-part message: pSignature and pulSignatureLen NULL.
	scSignMessageNext: {func(h uint64) *scene {
		s, p := gcmScene("C_SignMessageNext", "C_MessageSignInit", h)
		s.args = []uintptr{uintptr(h), p, 48, s.at(1100), 16, 0, 0}
		return s
	}, func() []byte {
		return frame(func(e *wire.Encoder) { e.Uint(0); gcmOuts(e, gcmIV, gcmTag); e.Nil(); e.Nil() })
	}},
	scEncapsulateKey: {func(h uint64) *scene {
		openSession(h)
		s := mk3("C_EncapsulateKey")
		putUlong(s.arena[outLenAt:], 64)
		s.args = []uintptr{uintptr(h), s.mechanism(1024, ckmMLKEM), 5, s.template2(1100), 2,
			s.own(outAt, 64), s.own(outLenAt, 8), s.own(keyAt, 8)}
		s.bound(outLenAt, 64)
		return s
	}, func() []byte {
		return frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(48); e.Bytes(bytes.Repeat([]byte{'k'}, 48)); e.Uint(0x77) })
	}},
	scDecapsulateKey: {func(h uint64) *scene {
		openSession(h)
		s := mk3("C_DecapsulateKey")
		s.args = []uintptr{uintptr(h), s.mechanism(1024, ckmMLKEM), 6, s.template2(1100), 2, s.at(1300), 48, s.own(keyAt, 8)}
		return s
	}, func() []byte { return frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(0x78) }) }},
	scWrapKeyAuthenticated: {func(h uint64) *scene {
		openSession(h)
		s := mk3("C_WrapKeyAuthenticated")
		putUlong(s.arena[outLenAt:], 64)
		s.args = []uintptr{uintptr(h), s.mechanism(1024, ckmAESKeyWrapKWP), 7, 8, s.at(1100), 8, s.own(outAt, 64), s.own(outLenAt, 8)}
		s.bound(outLenAt, 64)
		return s
	}, func() []byte {
		return frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(40); e.Bytes(bytes.Repeat([]byte{'w'}, 40)) })
	}},
	// Ten C arguments.
	scUnwrapKeyAuthenticated: {func(h uint64) *scene {
		openSession(h)
		s := mk3("C_UnwrapKeyAuthenticated")
		s.args = []uintptr{uintptr(h), s.mechanism(1024, ckmAESKeyWrapKWP), 7, s.at(1300), 40, s.template2(1100), 2,
			s.at(1400), 8, s.own(keyAt, 8)}
		return s
	}, func() []byte { return frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(0x79) }) }},
	scGetSessionValidationFlags: {func(h uint64) *scene {
		openSession(h)
		s := mk3("C_GetSessionValidationFlags")
		s.args = []uintptr{uintptr(h), 0, s.own(64, 8)}
		return s
	}, func() []byte { return frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(1) }) }},
	scLoginUser: {func(h uint64) *scene {
		openSession(h)
		s := mk3("C_LoginUser")
		copy(s.arena[1100:], "123456")
		copy(s.arena[1200:], "alice")
		s.args = []uintptr{uintptr(h), 1, s.at(1100), 6, s.at(1200), 5}
		return s
	}, func() []byte { return frame(func(e *wire.Encoder) { e.Uint(0) }) }},
	scSessionCancel: {func(h uint64) *scene {
		openSession(h)
		beginMessages(h, "C_MessageEncryptInit", ckmAESGCM)
		s := mk3("C_SessionCancel")
		s.args = []uintptr{uintptr(h), ckfMessageEncrypt}
		return s
	}, func() []byte { return frame(func(e *wire.Encoder) { e.Uint(0) }) }},
	// C_AsyncComplete("C_Sign") after a C_Sign into 16 bytes at 128 went
	// pending: the signature lands there.
	scAsyncComplete: {func(h uint64) *scene {
		s := pendingSign(h)
		s.owned = append(s.owned, [2]int{outAt, outAt + sigCap})
		s.args = []uintptr{uintptr(h), s.cString(1300, "C_Sign"), s.asyncData()}
		s.bound(asyncAt+16, sigCap) // ulValue: the length of what pValue names
		return s
	}, func() []byte { return frame(func(e *wire.Encoder) { e.Uint(0); asyncResult(e, []byte("sig!!"), 5) }) }},
	// Nothing pending on the session: the vendor says so.
	scAsyncCompleteNone: {func(h uint64) *scene {
		openSession(h)
		s := mk3("C_AsyncComplete")
		s.args = []uintptr{uintptr(h), s.cString(1300, "C_Sign"), s.asyncData()}
		return s
	}, func() []byte { return frame(func(e *wire.Encoder) { e.Uint(ckrOpNotInit); e.Nil() }) }},
	// C_AsyncJoin gave the pending C_Sign a buffer of 64 at 512: the output
	// lands there, never in the C_Sign's 16 bytes at 128.
	scAsyncCompleteJoined: {func(h uint64) *scene {
		s := pendingSign(h)
		mustCall("C_AsyncJoin", []uintptr{uintptr(h), s.cString(1300, "C_Sign"), 0, s.at(joinAt), joinCap},
			frame(func(e *wire.Encoder) { e.Uint(0) }))
		s.owned = append(s.owned, [2]int{joinAt, joinAt + joinCap})
		s.args = []uintptr{uintptr(h), s.at(1300), s.asyncData()}
		s.bound(asyncAt+16, joinCap)
		return s
	}, func() []byte {
		return frame(func(e *wire.Encoder) { e.Uint(0); asyncResult(e, bytes.Repeat([]byte{'j'}, 40), 40) })
	}},
	scAsyncJoin: {func(h uint64) *scene {
		s := pendingSign(h)
		s.f = funcByName("C_AsyncJoin")
		s.args = []uintptr{uintptr(h), s.cString(1300, "C_Sign"), 0, s.at(joinAt), joinCap}
		return s
	}, func() []byte { return frame(func(e *wire.Encoder) { e.Uint(0) }) }},
	scAsyncGetID: {func(h uint64) *scene {
		s := pendingSign(h)
		s.f = funcByName("C_AsyncGetID")
		s.args = []uintptr{uintptr(h), s.cString(1300, "C_Sign"), s.own(64, 8)}
		return s
	}, func() []byte { return frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(0x1234) }) }},
	// A C_GenerateRandom of 32 bytes at 128 went pending (kind G).
	scAsyncCompleteRandom: {func(h uint64) *scene {
		openSession(h)
		s := mk3("C_AsyncComplete")
		mustCall("C_GenerateRandom", []uintptr{uintptr(h), s.at(outAt), 32}, frame(func(e *wire.Encoder) { e.Uint(ckrPending); e.Nil() }))
		s.owned = append(s.owned, [2]int{outAt, outAt + 32})
		s.args = []uintptr{uintptr(h), s.cString(1300, "C_GenerateRandom"), s.asyncData()}
		s.bound(asyncAt+16, 32)
		return s
	}, func() []byte {
		return frame(func(e *wire.Encoder) { e.Uint(0); asyncResult(e, bytes.Repeat([]byte{'r'}, 32), 32) })
	}},
	scEncryptMessageNext: {func(h uint64) *scene {
		s, p := gcmScene("C_EncryptMessageNext", "C_MessageEncryptInit", h)
		putUlong(s.arena[outLenAt:], outCap)
		s.args = []uintptr{uintptr(h), p, 48, s.at(1200), 32, s.own(outAt, outCap), s.own(outLenAt, 8), 1}
		s.bound(outLenAt, outCap)
		return s
	}, func() []byte {
		return frame(func(e *wire.Encoder) {
			e.Uint(0)
			gcmOuts(e, gcmIV, gcmTag)
			e.Uint(32)
			e.Bytes(bytes.Repeat([]byte{'n'}, 32))
		})
	}},
	scEncryptMessageBegin: {func(h uint64) *scene {
		s, p := gcmScene("C_EncryptMessageBegin", "C_MessageEncryptInit", h)
		s.args = []uintptr{uintptr(h), p, 48, s.at(1100), 8}
		return s
	}, func() []byte { return frame(func(e *wire.Encoder) { e.Uint(0); gcmOuts(e, gcmIV, gcmTag) }) }},
	// CKM_AES_GCM with a CK_GCM_WRAP_PARAMS: the IV the vendor generates
	// comes back (the mechanism's output), then the wrapped key.
	scWrapKeyAuthenticatedGCM: {func(h uint64) *scene {
		s := gcmWrapScene("C_WrapKeyAuthenticated")
		s.args[0] = uintptr(h)
		s.bound(outLenAt, 64)
		return s
	}, func() []byte {
		return frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.ArrayLen(1)
			e.Bytes(gcmIV)
			e.Uint(40)
			e.Bytes(bytes.Repeat([]byte{'w'}, 40))
		})
	}},
	scVerifyMessage: {func(h uint64) *scene {
		s, p := gcmScene("C_VerifyMessage", "C_MessageVerifyInit", h)
		s.args = []uintptr{uintptr(h), p, 48, s.at(1100), 8, s.at(1200), 16}
		return s
	}, func() []byte { return frame(func(e *wire.Encoder) { e.Uint(0); gcmOuts(e, gcmIV, gcmTag) }) }},
}

// pendingSign opens session h and makes a C_Sign into 16 bytes at 128
// (its length at 1024) that returned CKR_PENDING; the scene is a
// C_AsyncComplete's, whose output buffer the test decides on.
func pendingSign(h uint64) *scene {
	openSession(h)
	s := mk3("C_AsyncComplete")
	putUlong(s.arena[1024:], sigCap)
	mustCall("C_Sign", []uintptr{uintptr(h), s.at(1100), 4, s.at(outAt), s.at(1024)},
		frame(func(e *wire.Encoder) { e.Uint(ckrPending); e.Uint(sigCap); e.Nil() }))
	return s
}

// sessionOf is the session of the 3.x scene i.
func sessionOf(i int) uint64 { return 0x3200 + uint64(i) }

// threeScene builds the 3.x scene i (its session primed).
func threeScene(i int) *scene { return threes[i].build(sessionOf(i)) }

func threeScenes() []*scene {
	out := make([]*scene, len(threes))
	for i := range threes {
		out[i] = threeScene(i)
	}
	return out
}

func threeSeeds() [][]byte {
	out := make([][]byte, len(threes))
	for i, t := range threes {
		out[i] = t.seed()
	}
	return out
}

// refused fails unless the reply to scene s is refused with the
// application's memory as it was.
func refused(t *testing.T, s *scene, what string, reply []byte) error {
	t.Helper()
	before := bytes.Clone(s.arena)
	_, err := run(s, reply)
	if err == nil {
		t.Errorf("%s: %s accepted", s.f.Name, what)
	}
	if !bytes.Equal(before, s.arena) {
		t.Errorf("%s: %s: a refused reply changed the application's memory", s.f.Name, what)
	}
	return err
}

// accepted fails unless the reply to scene s is accepted, in bounds, with
// code want.
func accepted(t *testing.T, s *scene, what string, reply []byte, want uint64) {
	t.Helper()
	r, err := run(s, reply)
	if err != nil || r != want {
		t.Fatalf("%s: %s: 0x%x %v, want 0x%x", s.f.Name, what, r, err, want)
	}
	s.check(t, reply)
	if r == 0 {
		s.checkBounds(t, reply)
	}
}

// codeOf is the return code a reply carries.
func codeOf(reply []byte) uint64 {
	d := wire.NewDecoder()
	d.Reset(reply)
	return d.Uint()
}

func TestHonestReplies3(t *testing.T) {
	for i, t3 := range threes {
		accepted(t, threeScene(i), "honest reply", t3.seed(), codeOf(t3.seed()))
	}
}

func TestMessageParameterOutputs(t *testing.T) {
	for _, i := range []int{scEncryptMessage, scDecryptMessage, scEncryptMessageNext} {
		s := threeScene(i)
		if _, err := run(s, threes[i].seed()); err != nil {
			t.Fatalf("%s: %v", s.f.Name, err)
		}
		if !bytes.Equal(s.arena[ivAt:ivAt+ivLen], gcmIV) || !bytes.Equal(s.arena[tagAt:tagAt+tagLen], gcmTag) {
			t.Errorf("%s: IV %q, tag %q: the vendor's not written", s.f.Name, s.arena[ivAt:ivAt+ivLen], s.arena[tagAt:tagAt+tagLen])
		}
		n := ulongAt(s.arena[outLenAt:])
		if n == 0 || n > outCap || s.arena[outAt] == guard || s.arena[outAt+int(n)-1] == guard {
			t.Errorf("%s: output of %d not written", s.f.Name, n)
		}
	}
	// Begin and a verify bring the IV and tag back too.
	for _, i := range []int{scEncryptMessageBegin, scVerifyMessage, scSignMessageNext} {
		s := threeScene(i)
		if _, err := run(s, threes[i].seed()); err != nil {
			t.Fatalf("%s: %v", s.f.Name, err)
		}
		if !bytes.Equal(s.arena[ivAt:ivAt+ivLen], gcmIV) || !bytes.Equal(s.arena[tagAt:tagAt+tagLen], gcmTag) {
			t.Errorf("%s: IV and tag not written", s.f.Name)
		}
	}
}

// lie3 is a reply to a 3.x scene that cannot be true.
type lie3 struct {
	scene int
	what  string
	reply []byte
}

func TestLyingReplies3(t *testing.T) {
	for _, l := range lies3() {
		refused(t, threeScene(l.scene), l.what, l.reply)
	}
}

// lies3 are the lies TestLyingReplies3 tells; FuzzReply starts from them too.
func lies3() []lie3 {
	ct := func(n int) []byte { return bytes.Repeat([]byte{'c'}, n) }
	msg := func(iv, tag []byte, n uint64, out []byte) []byte {
		return frame(func(e *wire.Encoder) {
			e.Uint(0)
			gcmOuts(e, iv, tag)
			e.Uint(n)
			if out == nil {
				e.Nil()
			} else {
				e.Bytes(out)
			}
		})
	}
	iv13, tag17 := append(bytes.Clone(gcmIV), 'x'), append(bytes.Clone(gcmTag), 'x')
	return []lie3{
		{scEncryptMessage, "an IV of 13 for 12", msg(iv13, gcmTag, 32, ct(32))},
		{scEncryptMessage, "an IV of 11 for 12", msg(gcmIV[:11], gcmTag, 32, ct(32))},
		{scEncryptMessage, "a tag of 17 for 16", msg(gcmIV, tag17, 32, ct(32))},
		{scEncryptMessage, "a tag of 15 for 16", msg(gcmIV, gcmTag[:15], 32, ct(32))},
		{scEncryptMessage, "a ciphertext of 33 for 32", msg(gcmIV, gcmTag, 33, ct(33))},
		{scEncryptMessage, "a ciphertext whose length disagrees", msg(gcmIV, gcmTag, 31, ct(32))},
		{scEncryptMessage, "CKR_OK with 33 bytes and none sent", msg(gcmIV, gcmTag, 33, nil)},
		{scEncryptMessage, "an IV of 13 with an error", frame(func(e *wire.Encoder) {
			e.Uint(ckrBufferTooSmall)
			gcmOuts(e, iv13, gcmTag)
			e.Uint(64)
			e.Nil()
		})},
		{scEncryptMessage, "one output field", frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.ArrayLen(1)
			e.Bytes(gcmIV)
			e.Uint(32)
			e.Bytes(ct(32))
		})},
		{scEncryptMessage, "three output fields", frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.ArrayLen(3)
			e.Bytes(gcmIV)
			e.Bytes(gcmTag)
			e.Bytes(gcmTag)
			e.Uint(32)
			e.Bytes(ct(32))
		})},
		{scEncryptMessage, "no output fields", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(32); e.Bytes(ct(32)) })},
		{scEncryptMessage, "nil for the output fields", frame(func(e *wire.Encoder) { e.Uint(0); e.Nil(); e.Uint(32); e.Bytes(ct(32)) })},
		{scEncryptMessage, "an IV as a region reference", frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.ArrayLen(2)
			e.Ref(0, ivLen)
			e.Bytes(gcmTag)
			e.Uint(32)
			e.Bytes(ct(32))
		})},
		{scEncryptMessage, "a ciphertext of 33 by reference", frame(func(e *wire.Encoder) {
			e.Uint(0)
			gcmOuts(e, gcmIV, gcmTag)
			e.Uint(33)
			e.Ref(0, 33)
		})},
		{scEncryptMessage, "a trailing value", append(msg(gcmIV, gcmTag, 32, ct(32)), 0xc0)},
		{scDecryptMessage, "an IV of 13 for 12", msg(iv13, gcmTag, 32, ct(32))},
		{scDecryptMessage, "a tag of 17 for 16", msg(gcmIV, tag17, 32, ct(32))},
		{scDecryptMessage, "a plaintext of 33 for 32", msg(gcmIV, gcmTag, 33, ct(33))},
		{scEncryptMessageNext, "a tag of 17 for 16", msg(gcmIV, tag17, 32, ct(32))},
		{scEncryptMessageNext, "a ciphertext of 33 for 32", msg(gcmIV, gcmTag, 33, ct(33))},
		{scEncryptMessageBegin, "an IV of 13 for 12", frame(func(e *wire.Encoder) { e.Uint(0); gcmOuts(e, iv13, gcmTag) })},
		{scVerifyMessage, "a tag of 17 for 16", frame(func(e *wire.Encoder) { e.Uint(0); gcmOuts(e, gcmIV, tag17) })},

		{scSignMessage, "a length for a NULL pulSignatureLen", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(5); e.Bytes(ct(5)) })},
		{scSignMessage, "a signature without its length", frame(func(e *wire.Encoder) { e.Uint(0); e.Nil(); e.Bytes(ct(5)) })},
		{scSignMessage, "parameter outputs where the mechanism has none", frame(func(e *wire.Encoder) {
			e.Uint(0)
			gcmOuts(e, gcmIV, gcmTag)
			e.Nil()
			e.Nil()
		})},
		{scSignMessageNext, "a length for a NULL pulSignatureLen", msg(gcmIV, gcmTag, 16, nil)},
		{scSignMessageNext, "a signature for a NULL pSignature", frame(func(e *wire.Encoder) {
			e.Uint(0)
			gcmOuts(e, gcmIV, gcmTag)
			e.Nil()
			e.Bytes(ct(16))
		})},
		{scSignMessageNext, "an IV of 13 for 12", frame(func(e *wire.Encoder) { e.Uint(0); gcmOuts(e, iv13, gcmTag); e.Nil(); e.Nil() })},

		{scEncapsulateKey, "a ciphertext of 65 for 64", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(65); e.Bytes(ct(65)); e.Uint(0x77) })},
		{scEncapsulateKey, "a ciphertext whose length disagrees", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(48); e.Bytes(ct(47)); e.Uint(0x77) })},
		{scEncapsulateKey, "CKR_OK with a ciphertext of 1088 and none sent", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(1088); e.Nil(); e.Uint(0x77) })},
		{scEncapsulateKey, "CKR_OK with 48 bytes and none sent", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(48); e.Nil(); e.Uint(0x77) })},
		{scEncapsulateKey, "a ciphertext with an error", frame(func(e *wire.Encoder) { e.Uint(0x5); e.Uint(48); e.Bytes(ct(48)); e.Uint(0x77) })},
		{scEncapsulateKey, "no key handle", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(48); e.Bytes(ct(48)) })},
		{scEncapsulateKey, "a template where none comes back", frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.ArrayLen(0)
			e.Uint(48)
			e.Bytes(ct(48))
			e.Uint(0x77)
		})},
		{scDecapsulateKey, "a trailing value", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(0x78); e.Uint(0) })},
		{scDecapsulateKey, "bytes for a handle", frame(func(e *wire.Encoder) { e.Uint(0); e.Bytes(ct(8)) })},
		{scWrapKeyAuthenticated, "a wrapped key of 65 for 64", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(65); e.Bytes(ct(65)) })},
		{scWrapKeyAuthenticated, "CKR_OK with 4224 and none sent", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(4224); e.Nil() })},
		{scUnwrapKeyAuthenticated, "a trailing value", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(0x79); e.Nil() })},
		{scUnwrapKeyAuthenticated, "a handle for every input", frame(func(e *wire.Encoder) {
			e.Uint(0)
			for range 6 {
				e.Uint(0x79)
			}
		})},
		{scGetSessionValidationFlags, "bytes for flags", frame(func(e *wire.Encoder) { e.Uint(0); e.Bytes(ct(8)) })},
		{scGetSessionValidationFlags, "a trailing value", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(1); e.Uint(1) })},
		{scLoginUser, "an output where there is none", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(0) })},
		{scSessionCancel, "an output where there is none", frame(func(e *wire.Encoder) { e.Uint(0); e.Nil() })},

		{scAsyncComplete, "17 bytes for the C_Sign's 16", frame(func(e *wire.Encoder) { e.Uint(0); asyncResult(e, ct(17), 17) })},
		{scAsyncComplete, "a result while CKR_PENDING", frame(func(e *wire.Encoder) { e.Uint(ckrPending); asyncResult(e, []byte("sig!!"), 5) })},
		{scAsyncComplete, "a result without output while CKR_PENDING", frame(func(e *wire.Encoder) { e.Uint(ckrPending); asyncResult(e, nil, 0) })},
		{scAsyncComplete, "an output whose length disagrees", frame(func(e *wire.Encoder) { e.Uint(0); asyncResult(e, []byte("sig!!"), 6) })},
		{scAsyncComplete, "a result of 4 fields", frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.ArrayLen(2)
			e.ArrayLen(4)
			e.Uint(1)
			e.Bool(true)
			e.Uint(5)
			e.Uint(0)
			e.Bytes(ct(5))
		})},
		{scAsyncComplete, "a result of 6 fields", frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.ArrayLen(2)
			e.ArrayLen(6)
			e.Uint(1)
			e.Bool(true)
			e.Uint(5)
			e.Uint(0)
			e.Uint(0)
			e.Uint(0)
			e.Bytes(ct(5))
		})},
		{scAsyncComplete, "a reply of 3", frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.ArrayLen(3)
			e.Nil()
			e.Bytes(ct(5))
			e.Nil()
		})},
		{scAsyncComplete, "a reply of 1", frame(func(e *wire.Encoder) { e.Uint(0); e.ArrayLen(1); e.Nil() })},
		{scAsyncComplete, "the old shape of 6", frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.ArrayLen(6)
			e.Uint(1)
			e.Bool(true)
			e.Bytes(ct(5))
			e.Uint(5)
			e.Uint(0)
			e.Uint(0)
		})},
		{scAsyncComplete, "17 bytes by reference", frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.ArrayLen(2)
			e.Nil()
			e.Ref(0, 17)
		})},
		{scAsyncComplete, "a reference past the region", frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.ArrayLen(2)
			e.Nil()
			e.Ref(wire.RegionSize-2, 5)
		})},
		{scAsyncComplete, "17 bytes without a result", frame(func(e *wire.Encoder) { e.Uint(0); e.ArrayLen(2); e.Nil(); e.Bytes(ct(17)) })},
		{scAsyncComplete, "a result while CKR_PENDING, output alone", frame(func(e *wire.Encoder) {
			e.Uint(ckrPending)
			e.ArrayLen(2)
			e.Nil()
			e.Bytes(ct(5))
		})},
		{scAsyncComplete, "an empty result while CKR_PENDING", frame(func(e *wire.Encoder) { e.Uint(ckrPending); e.ArrayLen(2); e.Nil(); e.Nil() })},
		{scAsyncComplete, "a trailing value", append(frame(func(e *wire.Encoder) { e.Uint(0); asyncResult(e, []byte("sig!!"), 5) }), 0xc0)},
		{scAsyncCompleteNone, "output with no pending call", frame(func(e *wire.Encoder) { e.Uint(0); asyncResult(e, []byte("sig!!"), 5) })},
		{scAsyncCompleteNone, "empty output with no pending call", frame(func(e *wire.Encoder) { e.Uint(0); asyncResult(e, []byte{}, 0) })},
		{scAsyncCompleteNone, "output alone with no pending call", frame(func(e *wire.Encoder) { e.Uint(0); e.ArrayLen(2); e.Nil(); e.Bytes(ct(5)) })},
		{scAsyncCompleteJoined, "65 bytes for the joined 64", frame(func(e *wire.Encoder) { e.Uint(0); asyncResult(e, ct(65), 65) })},
		{scAsyncCompleteRandom, "33 random bytes for 32", frame(func(e *wire.Encoder) { e.Uint(0); asyncResult(e, ct(33), 33) })},
		{scAsyncJoin, "an output where there is none", frame(func(e *wire.Encoder) { e.Uint(0); e.Bytes(ct(5)) })},
		{scAsyncGetID, "bytes for the ID", frame(func(e *wire.Encoder) { e.Uint(0); e.Bytes(ct(8)) })},
		{scWrapKeyAuthenticatedGCM, "an IV of 13 for 12", frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.ArrayLen(1)
			e.Bytes(iv13)
			e.Uint(40)
			e.Bytes(ct(40))
		})},
		{scWrapKeyAuthenticatedGCM, "no IV", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(40); e.Bytes(ct(40)) })},
		{scWrapKeyAuthenticatedGCM, "IV and AAD", frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.ArrayLen(2)
			e.Bytes(gcmIV)
			e.Bytes(ct(4))
			e.Uint(40)
			e.Bytes(ct(40))
		})},
		{scWrapKeyAuthenticatedGCM, "a wrapped key of 65 for 64", frame(func(e *wire.Encoder) {
			e.Uint(0)
			e.ArrayLen(1)
			e.Bytes(gcmIV)
			e.Uint(65)
			e.Bytes(ct(65))
		})},
	}
}

// What an error lets through: the length a query or a too-small buffer
// needs (PKCS#11 3.2 §5.2), for C_EncapsulateKey's ciphertext too.
func TestEncapsulateKeyLengths(t *testing.T) {
	const prefill = 0xa5a5a5a5a5a5a5a5 // the application's phKey, which the vendor leaves alone
	// A query: pCiphertext NULL.
	s := threeScene(scEncapsulateKey)
	s.args[5] = 0
	s.bounds = nil // no buffer: the length may be any
	accepted(t, s, "a length query", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(1088); e.Nil(); e.Uint(prefill) }), 0)
	if got := ulongAt(s.arena[outLenAt:]); got != 1088 {
		t.Errorf("length query: %d, want 1088", got)
	}
	s = threeScene(scEncapsulateKey)
	s.args[5] = 0
	refused(t, s, "a ciphertext for a NULL pCiphertext", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(48); e.Bytes(make([]byte, 48)); e.Uint(0x77) }))

	// A buffer too small.
	s = threeScene(scEncapsulateKey)
	accepted(t, s, "CKR_BUFFER_TOO_SMALL", frame(func(e *wire.Encoder) { e.Uint(ckrBufferTooSmall); e.Uint(1088); e.Nil(); e.Nil() }), ckrBufferTooSmall)
	if got := ulongAt(s.arena[outLenAt:]); got != 1088 {
		t.Errorf("too small: length %d, want 1088", got)
	}
	if s.arena[outAt] != guard || s.arena[keyAt] != guard {
		t.Error("too small: the ciphertext buffer or the key handle written")
	}

	// CKR_OK with more than the buffer holds: the error names the claim.
	s = threeScene(scEncapsulateKey)
	if err := refused(t, s, "a ciphertext of 1088 for 64", frame(func(e *wire.Encoder) { e.Uint(0); e.Uint(1088); e.Nil(); e.Uint(0x77) })); err != nil && !strings.Contains(err.Error(), " for ") {
		t.Errorf("the error does not say what was claimed for what: %v", err)
	}

	// A handle for a NULL phKey.
	s = threeScene(scEncapsulateKey)
	s.args[7] = 0
	refused(t, s, "a key handle for a NULL phKey", threes[scEncapsulateKey].seed())

	// The honest reply: ciphertext, length and handle.
	s = threeScene(scEncapsulateKey)
	accepted(t, s, "honest", threes[scEncapsulateKey].seed(), 0)
	if ulongAt(s.arena[outLenAt:]) != 48 || s.arena[outAt+47] != 'k' || ulongAt(s.arena[keyAt:]) != 0x77 {
		t.Errorf("honest: length %d, key %#x", ulongAt(s.arena[outLenAt:]), ulongAt(s.arena[keyAt:]))
	}
}

// The key handles C_EncapsulateKey, C_DecapsulateKey and
// C_UnwrapKeyAuthenticated return are a host's: mapped to the
// application's numbers for a later host, and back on the way out.
func TestNewKeyHandlesMapped(t *testing.T) {
	const gen = 0x3233
	for _, i := range []int{scEncapsulateKey, scDecapsulateKey, scUnwrapKeyAuthenticated} {
		s := threeScene(i)
		ch := newChannel(-1, nil, gen)
		if _, bad := ch.encode(s.f, s.args); bad {
			t.Fatal(s.f.Name)
		}
		if _, err := ch.decode(s.f, s.args, threes[i].seed()); err != nil {
			t.Fatalf("%s: %v", s.f.Name, err)
		}
		vendor := map[int]uint64{scEncapsulateKey: 0x77, scDecapsulateKey: 0x78, scUnwrapKeyAuthenticated: 0x79}[i]
		app := ulongAt(s.arena[keyAt:])
		if app == 0 || app == vendor {
			t.Errorf("%s: handle %#x of a later host's %#x: not mapped", s.f.Name, app, vendor)
		}
		// C_DestroyObject of it reaches the host as the host's number.
		if _, bad := ch.encode(funcByName("C_DestroyObject"), []uintptr{uintptr(sessionOf(i)), uintptr(app)}); bad {
			t.Fatal("C_DestroyObject")
		}
		d := wire.NewDecoder()
		d.Reset(bytes.Clone(ch.frame()[wire.HeaderSize:]))
		d.Uint()
		d.Uint()
		if got := d.Uint(); got != vendor {
			t.Errorf("%s: handle %#x crossed back as %#x, want %#x", s.f.Name, app, got, vendor)
		}
		ch.free()
	}
}

// requestMechanism is the mechanism a message function's request carries
// for its parameter, and whether the parameter crossed laid out.
func requestMechanism(t *testing.T, s *scene) (uint64, bool) {
	t.Helper()
	ch := testChannelOn(t, nil)
	if r, bad := ch.encode(s.f, s.args); bad {
		t.Fatalf("%s: encode refused: 0x%x", s.f.Name, r)
	}
	d := wire.NewDecoder()
	d.Reset(bytes.Clone(ch.frame()[wire.HeaderSize:]))
	d.Uint() // function
	d.Uint() // session
	mech := d.Uint()
	return mech, d.PeekArray()
}

// The message mechanism is the session's from a successful init until its
// final, a cancel of its operation, or the session's close; by operation.
func TestMessageMechanismTracked(t *testing.T) {
	s := threeScene(scEncryptMessage)
	if mech, laid := requestMechanism(t, s); mech != ckmAESGCM || !laid {
		t.Fatalf("after C_MessageEncryptInit: mechanism %#x, laid out %v", mech, laid)
	}
	h := sessionOf(scEncryptMessage)
	ok := frame(func(e *wire.Encoder) { e.Uint(0) })
	forgotten := func(what string) {
		t.Helper()
		s := threeScene(scEncryptMessage)
		switch what {
		case "C_MessageEncryptFinal":
			mustCall(what, []uintptr{uintptr(h)}, ok)
		case "C_SessionCancel":
			mustCall(what, []uintptr{uintptr(h), ckfMessageEncrypt | ckfMessageDecrypt}, ok)
		case "C_CloseSession":
			mustCall(what, []uintptr{uintptr(h)}, ok)
		case "C_CloseAllSessions":
			mustCall(what, []uintptr{1}, ok)
		case "a failed C_MessageEncryptInit":
			openSession(h)
			scratch[8], scratch[9], scratch[10] = ckmAESGCM, 0, 0
			mustCall("C_MessageEncryptInit", []uintptr{uintptr(h), scratchAt(8), 9}, frame(func(e *wire.Encoder) { e.Uint(0x70) }))
		}
		if mech, laid := requestMechanism(t, s); mech != 0 || laid {
			t.Errorf("after %s: mechanism %#x, laid out %v", what, mech, laid)
		}
		// The parameter crossed as bytes: outputs for it are a lie.
		refused(t, s, "IV and tag after "+what, threes[scEncryptMessage].seed())
		// Its own outputs alone are the honest reply.
		accepted(t, s, "a reply without parameter outputs after "+what,
			frame(func(e *wire.Encoder) { e.Uint(0x91); e.Uint(32); e.Nil() }), 0x91)
		if s.arena[ivAt] != guard || s.arena[tagAt] != guard {
			t.Errorf("after %s: IV or tag written", what)
		}
	}
	for _, what := range []string{"C_MessageEncryptFinal", "C_SessionCancel", "C_CloseSession", "C_CloseAllSessions", "a failed C_MessageEncryptInit"} {
		forgotten(what)
	}

	// A cancel of the decryption leaves the encryption alone, and the
	// failed cancel leaves both.
	s = threeScene(scEncryptMessage)
	mustCall("C_SessionCancel", []uintptr{uintptr(h), ckfMessageDecrypt}, ok)
	mustCall("C_SessionCancel", []uintptr{uintptr(h), ckfMessageEncrypt}, frame(func(e *wire.Encoder) { e.Uint(0x202) }))
	if mech, laid := requestMechanism(t, s); mech != ckmAESGCM || !laid {
		t.Errorf("after other cancels: mechanism %#x, laid out %v", mech, laid)
	}
	accepted(t, s, "honest", threes[scEncryptMessage].seed(), 0)

	// The scene of C_SessionCancel itself ends the encryption.
	s = threeScene(scSessionCancel)
	accepted(t, s, "C_SessionCancel", threes[scSessionCancel].seed(), 0)
	e := mk3("C_EncryptMessage")
	e.args = []uintptr{uintptr(sessionOf(scSessionCancel)), e.gcmMessage(1024, e.own(ivAt, ivLen), ivLen, e.own(tagAt, tagLen), 128), 48, 0, 0, 0, 0, 0, 0}
	if mech, _ := requestMechanism(t, e); mech != 0 {
		t.Errorf("after the C_SessionCancel scene: mechanism %#x", mech)
	}
}

// C_AsyncComplete: the output lands in the buffer of the call that went
// pending, which pValue names; once completed, nothing is pending.
func TestAsyncComplete(t *testing.T) {
	s := threeScene(scAsyncComplete)
	accepted(t, s, "honest", threes[scAsyncComplete].seed(), 0)
	d := s.arena[asyncAt:]
	if string(s.arena[outAt:outAt+5]) != "sig!!" || s.arena[outAt+5] != guard {
		t.Errorf("signature %q not in the C_Sign's buffer", s.arena[outAt:outAt+6])
	}
	if ulongAt(d) != 1 || uintptr(ulongAt(d[8:])) != s.at(outAt) || ulongAt(d[16:]) != 5 {
		t.Errorf("CK_ASYNC_DATA {%d, %#x, %d}, want {1, %#x, 5}", ulongAt(d), ulongAt(d[8:]), ulongAt(d[16:]), s.at(outAt))
	}
	// Completed: a second result has nowhere to go.
	again := bytes.Clone(s.arena)
	if _, err := run(s, threes[scAsyncComplete].seed()); err == nil {
		t.Error("a second result for a completed C_Sign accepted")
	}
	if !bytes.Equal(again, s.arena) {
		t.Error("a refused second result changed the application's memory")
	}

	// A nil result writes nothing, with CKR_OK or CKR_PENDING, and the
	// call stays pending after CKR_PENDING.
	for _, code := range []uint64{0, ckrPending, ckrOpNotInit} {
		s := threeScene(scAsyncComplete)
		before := bytes.Clone(s.arena)
		r, err := run(s, frame(func(e *wire.Encoder) { e.Uint(code); e.Nil() }))
		if err != nil || r != code {
			t.Errorf("nil result with 0x%x: 0x%x %v", code, r, err)
		}
		if !bytes.Equal(before, s.arena) {
			t.Errorf("nil result with 0x%x wrote", code)
		}
		if code == ckrPending {
			accepted(t, s, "the result after CKR_PENDING", threes[scAsyncComplete].seed(), 0)
		}
	}

	// pValue set by the vendor but no pending call: NULL.
	s = threeScene(scAsyncCompleteNone)
	accepted(t, s, "a result without output and no pending call", frame(func(e *wire.Encoder) { e.Uint(0); asyncResult(e, nil, 0) }), 0)
	if p := ulongAt(s.arena[asyncAt+8:]); p != 0 {
		t.Errorf("pValue %#x with nothing pending", p)
	}

	// Another function's pending call is not this one's.
	s = threeScene(scAsyncComplete)
	s.args[1] = s.cString(1300, "C_Encrypt")
	refused(t, s, "output for C_Encrypt, with C_Sign pending", threes[scAsyncComplete].seed())
	s.args[1] = s.cString(1300, "C_NoSuchFunction")
	refused(t, s, "output for an unknown function", threes[scAsyncComplete].seed())
	s.args[1] = 0
	refused(t, s, "output for a NULL function name", threes[scAsyncComplete].seed())
	// Another session's pending call neither.
	s.args[0], s.args[1] = uintptr(sessionOf(scAsyncCompleteNone)), s.at(1300)
	s.cString(1300, "C_Sign")
	refused(t, s, "output for a session with nothing pending", threes[scAsyncComplete].seed())
	// Nor a closed session's.
	s = threeScene(scAsyncComplete)
	mustCall("C_CloseSession", []uintptr{uintptr(sessionOf(scAsyncComplete))}, frame(func(e *wire.Encoder) { e.Uint(0) }))
	refused(t, s, "output after the session closed", threes[scAsyncComplete].seed())
	// A NULL pAsyncData takes no result, but the output still lands.
	s = threeScene(scAsyncComplete)
	s.args[2] = 0
	refused(t, s, "a result for a NULL pAsyncData", threes[scAsyncComplete].seed())
	accepted(t, s, "output alone for a NULL pAsyncData", frame(func(e *wire.Encoder) { e.Uint(0); e.ArrayLen(2); e.Nil(); e.Bytes([]byte("sig!!")) }), 0)
	if string(s.arena[outAt:outAt+5]) != "sig!!" || s.arena[asyncAt] != guard {
		t.Errorf("output alone: buffer %q, structure written %v", s.arena[outAt:outAt+5], s.arena[asyncAt] != guard)
	}
	// The vendor left the structure alone: the output alone lands.
	s = threeScene(scAsyncComplete)
	accepted(t, s, "output alone", frame(func(e *wire.Encoder) { e.Uint(0); e.ArrayLen(2); e.Nil(); e.Bytes(bytes.Repeat([]byte{'s'}, sigCap)) }), 0)
	if s.arena[outAt+sigCap-1] != 's' || s.arena[asyncAt] != guard {
		t.Error("output alone: not in the buffer, or the structure written")
	}

	// C_AsyncGetID hands the operation over: nothing pending after it.
	s = threeScene(scAsyncGetID)
	accepted(t, s, "C_AsyncGetID", threes[scAsyncGetID].seed(), 0)
	c := mk3("C_AsyncComplete")
	c.args = []uintptr{uintptr(sessionOf(scAsyncGetID)), c.cString(1300, "C_Sign"), c.own(asyncAt, 40)}
	c.owned = append(c.owned, [2]int{outAt, outAt + sigCap})
	refused(t, c, "output after C_AsyncGetID", threes[scAsyncComplete].seed())

	// C_AsyncJoin's buffer takes the output, up to its own capacity.
	s = threeScene(scAsyncCompleteJoined)
	accepted(t, s, "into the joined buffer", threes[scAsyncCompleteJoined].seed(), 0)
	if s.arena[joinAt+39] != 'j' || uintptr(ulongAt(s.arena[asyncAt+8:])) != s.at(joinAt) {
		t.Error("the output did not land in C_AsyncJoin's buffer")
	}
	// The join scene itself moves the pending buffer.
	s = threeScene(scAsyncJoin)
	accepted(t, s, "C_AsyncJoin", threes[scAsyncJoin].seed(), 0)
	c = mk3("C_AsyncComplete")
	c.args = []uintptr{uintptr(sessionOf(scAsyncJoin)), c.cString(1300, "C_Sign"), c.own(asyncAt, 40)}
	before := bytes.Clone(s.arena)
	if _, err := run(c, frame(func(e *wire.Encoder) { e.Uint(0); asyncResult(e, bytes.Repeat([]byte{'J'}, 64), 64) })); err != nil {
		t.Fatalf("64 bytes into the joined 64: %v", err)
	}
	if s.arena[joinAt] != 'J' || s.arena[joinAt+63] != 'J' || !bytes.Equal(before[:joinAt], s.arena[:joinAt]) || !bytes.Equal(before[joinAt+64:], s.arena[joinAt+64:]) {
		t.Error("the output did not land in the joined buffer alone")
	}
}

// ulValue is the length of the output pValue names: a reply whose ulValue
// says more than that buffer holds makes the application read past it.
func TestAsyncResultLengthInBounds(t *testing.T) {
	for _, c := range []struct {
		what  string
		reply []byte
	}{
		{"ulValue 1000 for 16, no output sent", frame(func(e *wire.Encoder) { e.Uint(0); asyncResult(e, nil, 1000) })},
		{"ulValue 2^64-1 for 16, no output sent", frame(func(e *wire.Encoder) { e.Uint(0); asyncResult(e, nil, ^uint64(0)) })},
	} {
		s := threeScene(scAsyncComplete)
		r, err := run(s, c.reply)
		if err != nil {
			continue // refused: the rule holds
		}
		d := s.arena[asyncAt:]
		if p, n := ulongAt(d[8:]), ulongAt(d[16:]); r == 0 && p != 0 && n > sigCap {
			t.Errorf("%s: accepted: pValue %#x (the C_Sign's %d bytes), ulValue %d", c.what, p, sigCap, n)
		}
	}
}

// The PIN (and the user name) of C_Login and C_LoginUser do not outlive
// the call in the request frame, nor in the ring's request slot.
var (
	secretPIN  = []byte("secret-pin-4711")
	secretUser = []byte("alice-the-user")
)

func TestSecretsWiped(t *testing.T) {
	// Package memory: a local's could move with the stack, the uintptrs not.
	pin, user := secretPIN, secretUser
	calls := []struct {
		f    string
		args []uintptr
	}{
		{"C_Login", []uintptr{1, 1, uintptr(unsafe.Pointer(&pin[0])), uintptr(len(pin))}},
		{"C_LoginUser", []uintptr{1, 1, uintptr(unsafe.Pointer(&pin[0])), uintptr(len(pin)), uintptr(unsafe.Pointer(&user[0])), uintptr(len(user))}},
	}
	ok := replyBody(func(e *wire.Encoder) { e.Uint(0) })
	for _, c := range calls {
		// Through the socket.
		ch, stop := fakeChannel(t, ok)
		if r, err := ch.run(funcByName(c.f), c.args, 0); err != nil || r != 0 {
			t.Fatalf("%s: 0x%x %v", c.f, r, err)
		}
		if bytes.Contains(ch.frame(), pin[:8]) || bytes.Contains(ch.frame(), user[:8]) {
			t.Errorf("%s: the request frame still holds the PIN", c.f)
		}
		stop()

		// Through the ring.
		rc, h := newRingChannel(t)
		seen := make(chan []byte, 1)
		go func() {
			req := h.request(1)
			seen <- req
			h.reply(1, ok, uint32(len(ok)))
		}()
		if r, err := rc.run(funcByName(c.f), c.args, 0); err != nil || r != 0 {
			t.Fatalf("%s by ring: 0x%x %v", c.f, r, err)
		}
		if req := <-seen; !bytes.Contains(req, pin) {
			t.Fatalf("%s: the PIN did not cross in the ring (%x)", c.f, req)
		}
		slot := h.mem[ringReqOff : ringReqOff+256]
		if bytes.Contains(slot, pin[:8]) || bytes.Contains(slot, user[:8]) {
			t.Errorf("%s: the ring's request slot still holds the PIN", c.f)
		}
		if bytes.Contains(rc.frame(), pin[:8]) {
			t.Errorf("%s by ring: the request frame still holds the PIN", c.f)
		}
		rc.close()
		unix.Close(h.sock)
	}
}

// mutations are the bytes a mutated reply puts in place of one of an honest
// reply's: msgpack's nil, false, true, the markers of lengths and arrays,
// small and large numbers, a region reference's marker.
var mutations = []byte{0x00, 0x01, 0x05, 0x0c, 0x0d, 0x10, 0x11, 0x20, 0x21, 0x40, 0x41, 0x7f, 0x80,
	0x90, 0x91, 0x92, 0x93, 0x95, 0x96, 0x97, 0xc0, 0xc2, 0xc3, 0xc4, 0xc5, 0xcc, 0xcd, 0xce, 0xcf,
	0xd8, 0xdc, 0xff}

// Go's fuzzer is guided by the coverage of Go code only, and the decoder
// is C: FuzzReply mutates blind. Every honest 3.x reply with each byte
// replaced by each of mutations, cut short at each byte, and with each
// byte dropped, is held to the rules here.
func TestMutatedReplies3(t *testing.T) {
	for i, t3 := range threes {
		seed := t3.seed()
		var replies [][]byte
		for at := range seed {
			for _, m := range mutations {
				if m != seed[at] {
					r := bytes.Clone(seed)
					r[at] = m
					replies = append(replies, r)
				}
			}
			replies = append(replies, seed[:at], append(bytes.Clone(seed[:at]), seed[at+1:]...))
		}
		for _, r := range replies {
			s := threeScene(i)
			if !holds(t, s, r) {
				break // one failure per scene
			}
		}
	}
}

// holds runs reply on scene s and checks FuzzReply's rules: nothing written
// outside the application's buffers, nothing at all when refused, no length
// past its capacity after CKR_OK.
func holds(t *testing.T, s *scene, reply []byte) bool {
	t.Helper()
	before := bytes.Clone(s.arena)
	r, err := run(s, reply)
	for i, b := range s.arena {
		if b == before[i] {
			continue
		}
		inside := false
		for _, o := range s.owned {
			inside = inside || (i >= o[0] && i < o[1])
		}
		if err != nil || (!inside && i < 1024) {
			t.Errorf("%s: reply %x (refused: %v) wrote byte %d", s.f.Name, reply, err != nil, i)
			return false
		}
	}
	if err == nil && r == 0 {
		for _, b := range s.bounds {
			if v := ulongAt(s.arena[b[0]:]); v > b[1] {
				t.Errorf("%s: reply %x reported %d at %d, room for %d", s.f.Name, reply, v, b[0], b[1])
				return false
			}
		}
	}
	return true
}

// inArena reports the offset of the first 8 bytes of b that hold an address
// inside s's arena, or -1.
func inArena(s *scene, b []byte) int {
	lo, hi := uint64(s.at(0)), uint64(s.at(len(s.arena)-1))
	for i := 0; i+8 <= len(b); i++ {
		if v := ulongAt(b[i:]); v >= lo && v <= hi {
			return i
		}
	}
	return -1
}

// The application's addresses mean nothing to the host: no request carries
// one, whatever structure holds it.
func TestNoAddressesCross(t *testing.T) {
	for _, s := range scenes() {
		ch := testChannelOn(t, nil)
		if r, bad := ch.encode(s.f, s.args); bad {
			t.Fatalf("%s: encode refused: 0x%x", s.f.Name, r)
		}
		if at := inArena(s, ch.frame()); at >= 0 {
			t.Errorf("%s: the request carries an address of the application's at byte %d: %x", s.f.Name, at, ch.frame())
		}
	}
}

// gcmWrapScene is fn (C_WrapKey or C_WrapKeyAuthenticated) with CKM_AES_GCM
// and a CK_GCM_WRAP_PARAMS (PKCS#11 3.2, 56 bytes: pIv, ulIvLen,
// ulIvFixedBits, ivGenerator, pAAD, ulAADLen, ulTagBits) whose IV (12 bytes
// at 64) the vendor generates, wrapping into 64 bytes at 128.
func gcmWrapScene(fn string) *scene {
	s := mk3(fn)
	putPtr(s.arena[1100:], s.own(ivAt, ivLen))
	putUlong(s.arena[1108:], ivLen)
	putUlong(s.arena[1116:], 0)
	putUlong(s.arena[1124:], ckgGenerate)
	putPtr(s.arena[1132:], s.at(1300))
	putUlong(s.arena[1140:], 4)
	putUlong(s.arena[1148:], 128)
	putUlong(s.arena[1024:], ckmAESGCM)
	putPtr(s.arena[1032:], s.at(1100))
	putUlong(s.arena[1040:], 56)
	putUlong(s.arena[outLenAt:], 64)
	if fn == "C_WrapKey" {
		s.args = []uintptr{1, s.at(1024), 7, 8, s.own(outAt, 64), s.own(outLenAt, 8)}
	} else {
		s.args = []uintptr{1, s.at(1024), 7, 8, s.at(1400), 4, s.own(outAt, 64), s.own(outLenAt, 8)}
	}
	return s
}

// CKM_AES_GCM's CK_GCM_WRAP_PARAMS (told from CK_GCM_PARAMS by its size,
// mechparams.LookupSize) crosses laid out, its pointers' bytes and not the
// pointers, and the IV the vendor generates can come back.
func TestGCMWrapParamsLaidOut(t *testing.T) {
	for _, fn := range []string{"C_WrapKey", "C_WrapKeyAuthenticated"} {
		s := gcmWrapScene(fn)
		ch := testChannelOn(t, nil)
		if r, bad := ch.encode(s.f, s.args); bad {
			t.Fatalf("%s: encode refused: 0x%x", fn, r)
		}
		if at := inArena(s, ch.frame()); at >= 0 {
			t.Errorf("%s: CK_GCM_WRAP_PARAMS crossed as its raw bytes, the application's pIv and pAAD with them (at byte %d): %x",
				fn, at, ch.frame())
		}
	}
	s := threeScene(scWrapKeyAuthenticatedGCM)
	accepted(t, s, "honest", threes[scWrapKeyAuthenticatedGCM].seed(), 0)
	if !bytes.Equal(s.arena[ivAt:ivAt+ivLen], gcmIV) || ulongAt(s.arena[outLenAt:]) != 40 {
		t.Errorf("the generated IV (%q) or the wrapped key's length (%d) not written", s.arena[ivAt:ivAt+ivLen], ulongAt(s.arena[outLenAt:]))
	}
}

// scalars returns where each scalar value of a reply lies ([start, end): a
// number, nil, a boolean, bytes, a string, a region reference), in order;
// arrays are walked into.
func scalars(b []byte) [][2]int {
	var out [][2]int
	be := func(i, n int) int {
		v := 0
		for j := 0; j < n && i+j < len(b); j++ {
			v = v<<8 | int(b[i+j])
		}
		return v
	}
	for i := 0; i < len(b); {
		c, n := b[i], 0
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
			n = 1
		case c >= 0x90 && c <= 0x9f:
			i++
			continue
		case c == 0xdc:
			i += 3
			continue
		case c == 0xdd:
			i += 5
			continue
		case c >= 0xa0 && c <= 0xbf:
			n = 1 + int(c&0x1f)
		case c == 0xc4 || c == 0xd9:
			n = 2 + be(i+1, 1)
		case c == 0xc5 || c == 0xda:
			n = 3 + be(i+1, 2)
		case c == 0xc6 || c == 0xdb:
			n = 5 + be(i+1, 4)
		case c >= 0xcc && c <= 0xcf:
			n = 1 + 1<<(c-0xcc)
		case c == 0xd8:
			n = 18
		default:
			return out
		}
		if i+n > len(b) {
			return out
		}
		out = append(out, [2]int{i, i + n})
		i += n
	}
	return out
}

// substitute is reply with its scalars at (indices into at) replaced.
func substitute(reply []byte, at [][2]int, repl map[int][]byte) []byte {
	var out []byte
	from := 0
	for i, a := range at {
		if r, ok := repl[i]; ok {
			out = append(append(out, reply[from:a[0]]...), r...)
			from = a[1]
		}
	}
	return append(out, reply[from:]...)
}

// value is one value's encoding.
func value(put func(e *wire.Encoder)) []byte { return frame(put) }

// boundaries are the values a substituted reply puts in place of an honest
// one's: nothing, numbers and byte strings about the scenes' capacities
// (12, 16, 32, 64), and the largest number.
func boundaries(all bool) [][]byte {
	out := [][]byte{value(func(e *wire.Encoder) { e.Nil() })}
	nums := []uint64{0, 17, 65, 1000, ^uint64(0)}
	lens := []int{17, 65}
	if all {
		nums = append(nums, 1, 5, 11, 12, 13, 15, 16, 31, 32, 33, 63, 64, ckrPending, ckrBufferTooSmall, 1<<32)
		lens = append(lens, 0, 5, 11, 12, 13, 15, 16, 31, 32, 33, 63, 64)
		out = append(out, value(func(e *wire.Encoder) { e.Bool(false) }), value(func(e *wire.Encoder) { e.Bool(true) }),
			value(func(e *wire.Encoder) { e.ArrayLen(0) }))
	}
	for _, n := range nums {
		out = append(out, value(func(e *wire.Encoder) { e.Uint(n) }))
	}
	for _, n := range lens {
		out = append(out, value(func(e *wire.Encoder) { e.Bytes(bytes.Repeat([]byte{'v'}, n)) }))
	}
	return out
}

// A lie may take two changes to an honest reply (a length raised and the
// bytes it counts dropped), which blind byte mutation seldom makes: every
// scalar of every honest 3.x reply replaced by each boundary value, and
// every pair of them by each pair of a few, is held to the rules.
func TestSubstitutedReplies3(t *testing.T) {
	all, few := boundaries(true), boundaries(false)
	for i, t3 := range threes {
		seed := t3.seed()
		at := scalars(seed)
		try := func(repl map[int][]byte) bool { return holds(t, threeScene(i), substitute(seed, at, repl)) }
		ok := true
		for j := range at {
			for _, v := range all {
				if ok = try(map[int][]byte{j: v}); !ok {
					break
				}
			}
			if !ok {
				break
			}
		}
		if testing.Short() {
			continue
		}
		for j := 0; j < len(at) && ok; j++ {
			for k := j + 1; k < len(at) && ok; k++ {
				for _, v := range few {
					for _, w := range few {
						if ok = try(map[int][]byte{j: v, k: w}); !ok {
							break
						}
					}
					if !ok {
						break
					}
				}
			}
		}
	}
}
