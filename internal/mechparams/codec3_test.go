package mechparams

// Round trips of the PKCS#11 3.0 and 3.2 parameters: the C data plane's
// walker (through internal/cwire) encodes the application's structure, the
// host builds its own, the "vendor" writes, and the C walker checks the
// reply and applies it.

import (
	"bytes"
	"testing"
	"unsafe"

	p11 "github.com/miekg/pkcs11"

	"github.com/p11isolate/p11isolate/internal/cwire"
	"github.com/p11isolate/p11isolate/internal/wire"
)

const (
	ckaClass        = 0x0
	ckaValueLen     = 0x161
	ckaWrapTemplate = 0x40000211
	attrSize        = 24 // sizeof(CK_ATTRIBUTE) on LP64
)

// attrs lays out a CK_ATTRIBUTE array in m: each value is bytes, nil (a
// NULL pValue with ulValueLen n), or an attrs result (a nested template).
type attr struct {
	typ    uint64
	value  []byte
	n      uint64         // with value nil and nested nil: the NULL pValue's ulValueLen
	nested unsafe.Pointer // a nested template
}

func (m *mem) attrs(as ...attr) unsafe.Pointer {
	a := attribute
	t := m.alloc(uintptr(len(as)) * a.Size)
	for i, x := range as {
		e := unsafe.Add(t, uintptr(i)*a.Size)
		*at[uint](e, a.Fields[0].Off) = uint(x.typ)
		switch {
		case x.nested != nil:
			*at[unsafe.Pointer](e, a.Fields[1].Off) = x.nested
			*at[uint](e, a.Fields[2].Off) = uint(x.n * attrSize)
		case x.value != nil:
			*at[unsafe.Pointer](e, a.Fields[1].Off) = m.bytes(x.value)
			*at[uint](e, a.Fields[2].Off) = uint(len(x.value))
		default:
			*at[uint](e, a.Fields[2].Off) = uint(x.n)
		}
	}
	return t
}

// attrAt reads attribute i of the template at t.
func attrAt(t unsafe.Pointer, i int) (typ uint64, p unsafe.Pointer, n uint64) {
	a := attribute
	e := unsafe.Add(t, uintptr(i)*a.Size)
	return uint64(*at[uint](e, a.Fields[0].Off)), *at[unsafe.Pointer](e, a.Fields[1].Off), uint64(*at[uint](e, a.Fields[2].Off))
}

func TestChaCha20Salsa20Bits(t *testing.T) {
	var m mem
	l := ChaCha20Params
	app := m.alloc(l.Size)
	counter, nonce := []byte{1, 0, 0, 0}, bytes.Repeat([]byte{0x4e}, 12)
	setP(t, l, app, "pBlockCounter", m.bytes(counter))
	setU(t, l, app, "blockCounterBits", 32)
	setP(t, l, app, "pNonce", m.bytes(nonce))
	setU(t, l, app, "ulNonceBits", 96)
	c := send(t, l, app)
	eq(t, "counter", view(getP(t, l, c.hp, "pBlockCounter"), 4), counter)
	eq(t, "nonce", view(getP(t, l, c.hp, "pNonce"), 12), nonce)
	eq(t, "nonce bits", getU(t, l, c.hp, "ulNonceBits"), uint64(96))
	eq(t, "no outputs", l.outs, 0)
	c.back()

	l = Salsa20Params
	app = m.alloc(l.Size)
	setP(t, l, app, "pBlockCounter", m.bytes(bytes.Repeat([]byte{7}, 8)))
	setP(t, l, app, "pNonce", m.bytes(nonce[:8]))
	setU(t, l, app, "ulNonceBits", 64)
	c = send(t, l, app)
	eq(t, "salsa counter", view(getP(t, l, c.hp, "pBlockCounter"), 8), bytes.Repeat([]byte{7}, 8))
	eq(t, "salsa nonce", view(getP(t, l, c.hp, "pNonce"), 8), nonce[:8])
}

// gcmMessage is an application's CK_GCM_MESSAGE_PARAMS with guarded IV and
// tag buffers.
func gcmMessage(t testing.TB, m *mem, iv []byte, tagBits int, generator uint64) (app, ivBuf, tag unsafe.Pointer) {
	l := GCMMessageParams
	app = m.alloc(l.Size)
	ivBuf, tag = m.guarded(len(iv), 0), m.guarded(tagBits/8, 0x33)
	copy(view(ivBuf, len(iv)), iv)
	setP(t, l, app, "pIv", ivBuf)
	setU(t, l, app, "ulIvLen", uint64(len(iv)))
	setU(t, l, app, "ulIvFixedBits", 32)
	setU(t, l, app, "ivGenerator", generator)
	setP(t, l, app, "pTag", tag)
	setU(t, l, app, "ulTagBits", uint64(tagBits))
	return
}

// TestGCMMessageIVAndTag: C_EncryptMessage with an IV generator returns the
// IV the vendor made and the tag; C_DecryptMessage's tag goes in and comes
// back as it went.
func TestGCMMessageIVAndTag(t *testing.T) {
	var m mem
	l, _, _ := MessageLookup(p11.CKM_AES_GCM)
	if l != GCMMessageParams {
		t.Fatalf("CKM_AES_GCM's message parameter: %v", l)
	}
	fixed := []byte{0xF1, 0xF2, 0xF3, 0xF4, 0, 0, 0, 0, 0, 0, 0, 0}
	app, iv, tag := gcmMessage(t, &m, fixed, 128, 2 /* CKG_GENERATE_COUNTER */)
	c := send(t, l, app)
	eq(t, "IV in", view(getP(t, l, c.hp, "pIv"), 12), fixed)
	eq(t, "tag buffer in", view(getP(t, l, c.hp, "pTag"), 16), bytes.Repeat([]byte{0x33}, 16))
	// The vendor completes the IV with its counter and writes the tag.
	copy(view(getP(t, l, c.hp, "pIv"), 12)[4:], []byte{0, 0, 0, 0, 0, 0, 0, 9})
	copy(view(getP(t, l, c.hp, "pTag"), 16), bytes.Repeat([]byte{0x7A}, 16))
	c.back()
	eq(t, "generated IV", view(iv, 12), append(fixed[:4:4], 0, 0, 0, 0, 0, 0, 0, 9))
	eq(t, "tag", view(tag, 16), bytes.Repeat([]byte{0x7A}, 16))
	if !intact(iv, 12) || !intact(tag, 16) {
		t.Errorf("written past the IV or the tag")
	}

	// Decryption: a 96-bit tag goes in; the vendor writes nothing.
	app, iv, tag = gcmMessage(t, &m, fixed, 96, 0)
	copy(view(tag, 12), "tag-12-bytes")
	c = send(t, l, app)
	eq(t, "tag in", view(getP(t, l, c.hp, "pTag"), 12), []byte("tag-12-bytes"))
	c.back()
	eq(t, "tag kept", view(tag, 12), []byte("tag-12-bytes"))
	eq(t, "IV kept", view(iv, 12), fixed)
	if !intact(tag, 12) {
		t.Errorf("written past a 96-bit tag")
	}

	// A reply whose tag is longer than ulTagBits/8 is refused whole.
	before := snapshot(&m)
	bad := reply(func(e *wire.Encoder) {
		e.ArrayLen(2)
		e.Bytes(fixed)
		e.Bytes(make([]byte, 16))
	})
	if err := deliver(l, app, bad); err == nil {
		t.Errorf("a 16-byte tag for a 96-bit one: accepted")
	}
	if !unchanged(&m, before) {
		t.Errorf("a refused reply changed the application's memory")
	}
}

func TestCCMAndPoly1305Messages(t *testing.T) {
	var m mem
	l := CCMMessageParams
	app := m.alloc(l.Size)
	nonce, mac := m.guarded(7, 0x11), m.guarded(16, 0)
	setU(t, l, app, "ulDataLen", 100)
	setP(t, l, app, "pNonce", nonce)
	setU(t, l, app, "ulNonceLen", 7)
	setU(t, l, app, "nonceGenerator", 3)
	setP(t, l, app, "pMAC", mac)
	setU(t, l, app, "ulMACLen", 16)
	c := send(t, l, app)
	copy(view(getP(t, l, c.hp, "pNonce"), 7), "nonce!!")
	copy(view(getP(t, l, c.hp, "pMAC"), 16), "mac-of-16-bytes!")
	c.back()
	eq(t, "nonce", view(nonce, 7), []byte("nonce!!"))
	eq(t, "MAC", view(mac, 16), []byte("mac-of-16-bytes!"))
	if !intact(nonce, 7) || !intact(mac, 16) {
		t.Errorf("written past the nonce or the MAC")
	}

	l, _, _ = MessageLookup(ckmChaCha20Poly1305)
	app = m.alloc(l.Size)
	tag := m.guarded(16, 0)
	setP(t, l, app, "pNonce", m.bytes(bytes.Repeat([]byte{1}, 12)))
	setU(t, l, app, "ulNonceLen", 12)
	setP(t, l, app, "pTag", tag)
	c = send(t, l, app)
	copy(view(getP(t, l, c.hp, "pTag"), 16), bytes.Repeat([]byte{0xCC}, 16))
	c.back()
	eq(t, "Poly1305 tag", view(tag, 16), bytes.Repeat([]byte{0xCC}, 16))
	if !intact(tag, 16) {
		t.Errorf("written past the Poly1305 tag")
	}
}

// TestGCMWrapParams: 3.2's C_WrapKey parameter of CKM_AES_GCM, by size.
func TestGCMWrapParams(t *testing.T) {
	var m mem
	l, _, _ := LookupSize(p11.CKM_AES_GCM, 56)
	if l != GCMWrapParams {
		t.Fatalf("CKM_AES_GCM, 56 bytes: %v", l)
	}
	app := m.alloc(l.Size)
	iv := m.guarded(12, 0)
	setP(t, l, app, "pIv", iv)
	setU(t, l, app, "ulIvLen", 12)
	setU(t, l, app, "ivGenerator", 3)
	setP(t, l, app, "pAAD", m.bytes([]byte("header")))
	setU(t, l, app, "ulAADLen", 6)
	setU(t, l, app, "ulTagBits", 128)
	c := send(t, l, app)
	eq(t, "AAD", view(getP(t, l, c.hp, "pAAD"), 6), []byte("header"))
	copy(view(getP(t, l, c.hp, "pIv"), 12), "random-iv-12")
	c.back()
	eq(t, "generated IV", view(iv, 12), []byte("random-iv-12"))

	// Nested (KIP's mechanism), the 48-byte form is CK_GCM_PARAMS; the
	// wrapping form has outputs, which nothing brings back from a nested
	// mechanism: refused.
	gcm := m.alloc(GCMParams.Size)
	setP(t, GCMParams, gcm, "pIv", m.bytes(bytes.Repeat([]byte{2}, 12)))
	setU(t, GCMParams, gcm, "ulIvLen", 12)
	kip := func(param unsafe.Pointer, n uintptr) unsafe.Pointer {
		inner := m.alloc(mechanism.Size)
		setU(t, mechanism, inner, "mechanism", p11.CKM_AES_GCM)
		setP(t, mechanism, inner, "pParameter", param)
		setU(t, mechanism, inner, "ulParameterLen", uint64(n))
		app := m.alloc(KIPParams.Size)
		setP(t, KIPParams, app, "pMechanism", inner)
		return app
	}
	c = send(t, KIPParams, kip(gcm, GCMParams.Size))
	hm := getP(t, KIPParams, c.hp, "pMechanism")
	eq(t, "nested GCM IV", view(getP(t, GCMParams, getP(t, mechanism, hm, "pParameter"), "pIv"), 12), bytes.Repeat([]byte{2}, 12))
	if _, ok := cwire.EncodeParam(layoutIndex(KIPParams), kip(app, GCMWrapParams.Size)); ok {
		t.Errorf("a nested CK_GCM_WRAP_PARAMS (outputs) was carried")
	}
}

// TestCLookupsMatchGo holds the C tables to the Go registry through a
// nested mechanism (KIP's pMechanism), which the C walker classifies with
// mp_lookup_size: refused, opaque bytes, or a structure, as LookupSize says.
func TestCLookupsMatchGo(t *testing.T) {
	var m mem
	param := m.alloc(256)
	sizes := map[uint64][]uint64{}
	for _, a := range Alternates() {
		sizes[a.Type] = append(sizes[a.Type], uint64(a.Layout.Size))
	}
	try := func(mech, size uint64) {
		inner := m.alloc(mechanism.Size)
		setU(t, mechanism, inner, "mechanism", mech)
		setP(t, mechanism, inner, "pParameter", param)
		setU(t, mechanism, inner, "ulParameterLen", size)
		app := m.alloc(KIPParams.Size)
		setP(t, KIPParams, app, "pMechanism", inner)
		body, ok := cwire.EncodeParam(layoutIndex(KIPParams), app)
		l, _, gok := LookupSize(mech, size)
		structured := l != nil && uint64(l.Size) == size
		switch {
		case !gok || (structured && l.outs > 0):
			if ok {
				t.Errorf("0x%x (%d bytes): C carried what Go refuses", mech, size)
			}
		case !ok:
			t.Errorf("0x%x (%d bytes): C refused what Go carries", mech, size)
		default:
			// [pMechanism=[type, len, parameter], hKey, pSeed, ulSeedLen]
			d := wire.NewDecoder()
			d.Reset(body)
			d.ArrayLen(4)
			d.ArrayLen(3)
			d.Uint()
			d.Uint()
			if d.PeekArray() != structured {
				t.Errorf("0x%x (%d bytes): C structured %v, Go %v", mech, size, !structured, structured)
			}
		}
	}
	for _, mc := range Mechanisms() {
		try(mc.Type, 8)
		if mc.Layout != nil {
			try(mc.Type, uint64(mc.Layout.Size))
		}
		for _, s := range sizes[mc.Type] {
			try(mc.Type, s)
		}
	}
	try(unknownMech, 8)
	try(VendorDefined|0x1234, 8)
}

func TestHKDFAndIKEHandles(t *testing.T) {
	var m mem
	l := HKDFParams
	app := m.alloc(l.Size)
	setU(t, l, app, "bExtract", 1)
	setU(t, l, app, "bExpand", 1)
	setU(t, l, app, "prfHashMechanism", p11.CKM_SHA256)
	setU(t, l, app, "ulSaltType", 4) // CKF_HKDF_SALT_KEY
	setU(t, l, app, "hSaltKey", 12|gen)
	setP(t, l, app, "pInfo", m.bytes([]byte("info")))
	setU(t, l, app, "ulInfoLen", 4)
	c := send(t, l, app)
	eq(t, "salt key (vendor's)", getU(t, l, c.hp, "hSaltKey"), uint64(12))
	eq(t, "info", view(getP(t, l, c.hp, "pInfo"), 4), []byte("info"))
	eq(t, "bExpand", getU(t, l, c.hp, "bExpand"), uint64(1))
	eq(t, "NULL salt", getP(t, l, c.hp, "pSalt"), unsafe.Pointer(nil))

	l = IKE1PRFDeriveParams
	app = m.alloc(l.Size)
	setU(t, l, app, "hKeygxy", 5|gen)
	setU(t, l, app, "hPrevKey", 6|gen)
	setP(t, l, app, "pCKYi", m.bytes(bytes.Repeat([]byte{'i'}, 8)))
	setU(t, l, app, "ulCKYiLen", 8)
	setU(t, l, app, "keyNumber", 2)
	c = send(t, l, app)
	eq(t, "hKeygxy", getU(t, l, c.hp, "hKeygxy"), uint64(5))
	eq(t, "hPrevKey", getU(t, l, c.hp, "hPrevKey"), uint64(6))
	eq(t, "keyNumber", getU(t, l, c.hp, "keyNumber"), uint64(2))
	eq(t, "CKYi", view(getP(t, l, c.hp, "pCKYi"), 8), bytes.Repeat([]byte{'i'}, 8))
}

func TestSignAdditionalContext(t *testing.T) {
	var m mem
	for _, mech := range []uint64{ckmMLDSA, ckmHashMLDSASHA224 + 1, ckmSLHDSA, ckmHashMLDSA} {
		l, _, _ := Lookup(mech)
		app := m.alloc(l.Size)
		setU(t, l, app, "hedgeVariant", 2)
		setP(t, l, app, "pContext", m.bytes([]byte("ctx")))
		setU(t, l, app, "ulContextLen", 3)
		if l == HashSignAdditionalContext {
			setU(t, l, app, "hash", p11.CKM_SHA256)
		}
		c := send(t, l, app)
		eq(t, "context", view(getP(t, l, c.hp, "pContext"), 3), []byte("ctx"))
		eq(t, "hedge", getU(t, l, c.hp, "hedgeVariant"), uint64(2))
		if l == HashSignAdditionalContext {
			eq(t, "hash", getU(t, l, c.hp, "hash"), uint64(p11.CKM_SHA256))
		}
	}
}

func TestTLS12ExtendedMasterKeyVersion(t *testing.T) {
	var m mem
	l := TLS12ExtendedMasterKeyDeriveParams
	app := m.alloc(l.Size)
	ver := m.alloc(2)
	setU(t, l, app, "prfHashMechanism", p11.CKM_SHA384)
	setP(t, l, app, "pSessionHash", m.bytes(bytes.Repeat([]byte{0x5A}, 48)))
	setU(t, l, app, "ulSessionHashLen", 48)
	setP(t, l, app, "pVersion", ver)
	c := send(t, l, app)
	eq(t, "session hash", view(getP(t, l, c.hp, "pSessionHash"), 48), bytes.Repeat([]byte{0x5A}, 48))
	*(*[2]byte)(getP(t, l, c.hp, "pVersion")) = [2]byte{3, 3}
	c.back()
	eq(t, "version", *(*[2]byte)(ver), [2]byte{3, 3})
	setP(t, l, app, "pVersion", nil) // the _DH form
	send(t, l, app).back()
}

// kdf is an application's SP 800-108 counter-mode derivation: four data
// parameters (the counter, a label, the DKM length, the NULL iteration
// variable's shape of the feedback modes) and two additional keys, the
// second without phKey.
type kdf struct {
	app, keys unsafe.Pointer
	phKey     unsafe.Pointer
}

func sp800108(t testing.TB, m *mem, l *Layout) kdf {
	counter := m.alloc(SP800108CounterFormat.Size)
	setU(t, SP800108CounterFormat, counter, "bLittleEndian", 0)
	setU(t, SP800108CounterFormat, counter, "ulWidthInBits", 16)
	dkm := m.alloc(SP800108DKMLengthFormat.Size)
	setU(t, SP800108DKMLengthFormat, dkm, "dkmLengthMethod", 1)
	setU(t, SP800108DKMLengthFormat, dkm, "bLittleEndian", 1)
	setU(t, SP800108DKMLengthFormat, dkm, "ulWidthInBits", 32)
	dp := PRFDataParam
	data := m.alloc(4 * dp.Size)
	set := func(i int, typ uint64, p unsafe.Pointer, n uint64) {
		e := unsafe.Add(data, uintptr(i)*dp.Size)
		setU(t, dp, e, "type", typ)
		setP(t, dp, e, "pValue", p)
		setU(t, dp, e, "ulValueLen", n)
	}
	set(0, sp800108IterationVariable, counter, uint64(SP800108CounterFormat.Size))
	set(1, sp800108ByteArray, m.bytes([]byte("label")), 5)
	set(2, sp800108DKMLength, dkm, uint64(SP800108DKMLengthFormat.Size))
	set(3, sp800108IterationVariable, nil, 0)

	inner := m.attrs(attr{typ: ckaClass, value: []byte{4, 0, 0, 0, 0, 0, 0, 0}})
	dk := DerivedKey
	keys := m.alloc(2 * dk.Size)
	phKey := m.guarded(8, 0)
	*(*uint)(phKey) = 0xdeadbeef // garbage the output must not trip over
	setP(t, dk, keys, "pTemplate", m.attrs(
		attr{typ: ckaValueLen, value: []byte{32, 0, 0, 0, 0, 0, 0, 0}},
		attr{typ: ckaWrapTemplate, nested: inner, n: 1},
		attr{typ: 0x3, n: 7})) // CKA_LABEL with a NULL pValue
	setU(t, dk, keys, "ulAttributeCount", 3)
	setP(t, dk, keys, "phKey", phKey)
	second := unsafe.Add(keys, dk.Size)
	setP(t, dk, second, "pTemplate", m.attrs())
	setU(t, dk, second, "ulAttributeCount", 0)

	app := m.alloc(l.Size)
	setU(t, l, app, "prfType", p11.CKM_SHA256_HMAC)
	setP(t, l, app, "pDataParams", data)
	setU(t, l, app, "ulNumberOfDataParams", 4)
	setP(t, l, app, "pAdditionalDerivedKeys", keys)
	setU(t, l, app, "ulAdditionalDerivedKeys", 2)
	if l == SP800108FeedbackKDFParams {
		setP(t, l, app, "pIV", m.bytes(bytes.Repeat([]byte{0x1F}, 32)))
		setU(t, l, app, "ulIVLen", 32)
	}
	return kdf{app, keys, phKey}
}

// vendorKDF plays the vendor: a new handle for each additional key.
func vendorKDF(t testing.TB, l *Layout, hp unsafe.Pointer) {
	keys := getP(t, l, hp, "pAdditionalDerivedKeys")
	*(*uint)(getP(t, DerivedKey, keys, "phKey")) = 77
}

func TestSP800108KDF(t *testing.T) {
	for _, l := range []*Layout{SP800108KDFParams, SP800108FeedbackKDFParams} {
		var m mem
		k := sp800108(t, &m, l)
		c := send(t, l, k.app)
		if l == SP800108FeedbackKDFParams {
			eq(t, "IV", view(getP(t, l, c.hp, "pIV"), 32), bytes.Repeat([]byte{0x1F}, 32))
		}
		dp, hdata := PRFDataParam, getP(t, l, c.hp, "pDataParams")
		e := func(i int) unsafe.Pointer { return unsafe.Add(hdata, uintptr(i)*dp.Size) }
		hc := getP(t, dp, e(0), "pValue")
		eq(t, "counter width", getU(t, SP800108CounterFormat, hc, "ulWidthInBits"), uint64(16))
		eq(t, "label", view(getP(t, dp, e(1), "pValue"), 5), []byte("label"))
		eq(t, "label length", getU(t, dp, e(1), "ulValueLen"), uint64(5))
		hd := getP(t, dp, e(2), "pValue")
		eq(t, "DKM method", getU(t, SP800108DKMLengthFormat, hd, "dkmLengthMethod"), uint64(1))
		eq(t, "DKM little-endian", getU(t, SP800108DKMLengthFormat, hd, "bLittleEndian"), uint64(1))
		eq(t, "DKM width", getU(t, SP800108DKMLengthFormat, hd, "ulWidthInBits"), uint64(32))
		eq(t, "NULL iteration variable", getP(t, dp, e(3), "pValue"), unsafe.Pointer(nil))

		dk, hkeys := DerivedKey, getP(t, l, c.hp, "pAdditionalDerivedKeys")
		tmpl := getP(t, dk, hkeys, "pTemplate")
		typ, p, n := attrAt(tmpl, 0)
		eq(t, "attribute type", typ, uint64(ckaValueLen))
		eq(t, "attribute value", view(p, int(n)), []byte{32, 0, 0, 0, 0, 0, 0, 0})
		typ, p, n = attrAt(tmpl, 1)
		eq(t, "nested template size", n, uint64(attrSize))
		if typ != ckaWrapTemplate || p == nil {
			t.Fatalf("nested template: type 0x%x at %v", typ, p)
		}
		ityp, ip, in := attrAt(p, 0)
		eq(t, "nested attribute", ityp, uint64(ckaClass))
		eq(t, "nested value", view(ip, int(in)), []byte{4, 0, 0, 0, 0, 0, 0, 0})
		_, p, n = attrAt(tmpl, 2)
		if p != nil || n != 7 {
			t.Errorf("NULL pValue: %v, length %d", p, n)
		}
		hph := getP(t, dk, hkeys, "phKey")
		eq(t, "phKey starts at 0 (the garbage did not cross)", *(*uint)(hph), uint(0))
		second := unsafe.Add(hkeys, dk.Size)
		if getP(t, dk, second, "phKey") != nil || getP(t, dk, second, "pTemplate") == nil {
			t.Errorf("the second key's NULL phKey or empty template not preserved")
		}
		vendorKDF(t, l, c.hp)
		c.back()
		eq(t, "new key's handle (the application's)", *(*uint)(k.phKey), uint(77|gen))
	}
}

// TestSP800108Refused: what the C walker cannot carry, and what the host
// refuses to build.
func TestSP800108Refused(t *testing.T) {
	var m mem
	l := SP800108KDFParams
	k := sp800108(t, &m, l)
	data := getP(t, l, k.app, "pDataParams")
	dp := PRFDataParam

	// A type no case names: the pointed-to memory's shape is unknown.
	setU(t, dp, data, "type", 9)
	if _, ok := cwire.EncodeParam(layoutIndex(l), k.app); ok {
		t.Errorf("an unknown data parameter type: carried")
	}
	// A structure's size unlike ulValueLen.
	setU(t, dp, data, "type", sp800108OptionalCounter)
	setU(t, dp, data, "ulValueLen", 8)
	if _, ok := cwire.EncodeParam(layoutIndex(l), k.app); ok {
		t.Errorf("a counter format of 8 bytes: carried")
	}
	setU(t, dp, data, "ulValueLen", uint64(SP800108CounterFormat.Size))
	if _, ok := cwire.EncodeParam(layoutIndex(l), k.app); !ok {
		t.Errorf("the optional counter: refused")
	}
	// Templates nested past the limit.
	inner := m.attrs(attr{typ: ckaClass, value: []byte{1}})
	for range wire.MaxNesting + 1 {
		inner = m.attrs(attr{typ: ckaWrapTemplate, nested: inner, n: 1})
	}
	setP(t, DerivedKey, k.keys, "pTemplate", inner)
	setU(t, DerivedKey, k.keys, "ulAttributeCount", 1)
	if _, ok := cwire.EncodeParam(layoutIndex(l), k.app); ok {
		t.Errorf("templates nested past the limit: carried")
	}

	// The host's side.
	kdfReq := func(dataParam, key func(e *wire.Encoder)) []byte {
		return reply(func(e *wire.Encoder) {
			e.ArrayLen(5)
			e.Uint(p11.CKM_SHA256_HMAC)
			e.Uint(1)
			e.ArrayLen(1)
			dataParam(e)
			e.Uint(1)
			e.ArrayLen(1)
			key(e)
		})
	}
	goodData := func(e *wire.Encoder) {
		e.ArrayLen(3)
		e.Uint(sp800108ByteArray)
		e.Bytes([]byte("ab"))
		e.Uint(2)
	}
	goodKey := func(e *wire.Encoder) {
		e.ArrayLen(3)
		e.ArrayLen(1)
		e.ArrayLen(2)
		e.Uint(ckaClass)
		e.Bytes([]byte{4})
		e.Uint(1)
		e.Uint(0)
	}
	cases := []struct {
		name string
		req  []byte
		ok   bool
	}{
		{"well formed", kdfReq(goodData, goodKey), true},
		{"bytes for a counter format", kdfReq(func(e *wire.Encoder) {
			e.ArrayLen(3)
			e.Uint(sp800108OptionalCounter)
			e.Bytes(make([]byte, 16))
			e.Uint(16)
		}, goodKey), false},
		{"a counter format for bytes", kdfReq(func(e *wire.Encoder) {
			e.ArrayLen(3)
			e.Uint(sp800108ByteArray)
			e.ArrayLen(2)
			e.Uint(0)
			e.Uint(8)
			e.Uint(16)
		}, goodKey), false},
		{"unknown type", kdfReq(func(e *wire.Encoder) {
			e.ArrayLen(3)
			e.Uint(7)
			e.Bytes([]byte("ab"))
			e.Uint(2)
		}, goodKey), false},
		{"counter format size unlike ulValueLen", kdfReq(func(e *wire.Encoder) {
			e.ArrayLen(3)
			e.Uint(sp800108IterationVariable)
			e.ArrayLen(2)
			e.Uint(0)
			e.Uint(8)
			e.Uint(24)
		}, goodKey), false},
		{"bytes unlike ulValueLen", kdfReq(func(e *wire.Encoder) {
			e.ArrayLen(3)
			e.Uint(sp800108ByteArray)
			e.Bytes([]byte("abc"))
			e.Uint(2)
		}, goodKey), false},
		{"template count unlike ulAttributeCount", kdfReq(goodData, func(e *wire.Encoder) {
			e.ArrayLen(3)
			e.ArrayLen(1)
			e.ArrayLen(2)
			e.Uint(ckaClass)
			e.Bytes([]byte{4})
			e.Uint(2)
			e.Uint(0)
		}), false},
		{"an attribute of three", kdfReq(goodData, func(e *wire.Encoder) {
			e.ArrayLen(3)
			e.ArrayLen(1)
			e.ArrayLen(3)
			e.Uint(ckaClass)
			e.Bytes([]byte{4})
			e.Uint(1)
			e.Uint(1)
			e.Uint(0)
		}), false},
		{"a handle that crosses in", kdfReq(goodData, func(e *wire.Encoder) {
			e.ArrayLen(3)
			e.Nil()
			e.Uint(0)
			e.Uint(42)
		}), false},
		{"templates nested too deep", kdfReq(goodData, func(e *wire.Encoder) {
			e.ArrayLen(3)
			for range maxNesting + 1 {
				e.ArrayLen(1)
				e.ArrayLen(2)
				e.Uint(ckaWrapTemplate)
			}
			e.ArrayLen(0)
			e.Uint(1)
			e.Uint(0)
		}), false},
	}
	for _, c := range cases {
		var hm mem
		d := wire.NewDecoder()
		d.Reset(c.req)
		p := Build(d, l, hm.alloc)
		if err := d.Finish(); (p != nil && err == nil) != c.ok {
			t.Errorf("%s: built %v, error %v", c.name, p != nil, err)
		}
	}

	// Lying replies: the elements' count, a handle for a NULL phKey.
	k = sp800108(t, &m, l)
	cases2 := []struct {
		name  string
		reply []byte
	}{
		{"one key for two", reply(func(e *wire.Encoder) {
			e.ArrayLen(1)
			e.ArrayLen(1)
			e.ArrayLen(1)
			e.Uint(77)
		})},
		{"a handle for the NULL phKey", reply(func(e *wire.Encoder) {
			e.ArrayLen(1)
			e.ArrayLen(2)
			e.ArrayLen(1)
			e.Uint(77)
			e.ArrayLen(1)
			e.Uint(78)
		})},
		{"no handle for a non-NULL phKey", reply(func(e *wire.Encoder) {
			e.ArrayLen(1)
			e.ArrayLen(2)
			e.ArrayLen(1)
			e.Nil()
			e.ArrayLen(1)
			e.Nil()
		})},
		{"no keys for a non-NULL array", reply(func(e *wire.Encoder) {
			e.ArrayLen(1)
			e.Nil()
		})},
	}
	for _, c := range cases2 {
		before := snapshot(&m)
		if err := deliver(l, k.app, c.reply); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
		if !unchanged(&m, before) {
			t.Errorf("%s: the application's memory changed", c.name)
		}
	}
	good := reply(func(e *wire.Encoder) {
		e.ArrayLen(1)
		e.ArrayLen(2)
		e.ArrayLen(1)
		e.Uint(77)
		e.ArrayLen(1)
		e.Nil()
	})
	if err := deliver(l, k.app, good); err != nil {
		t.Fatalf("a true reply: %v", err)
	}
	eq(t, "handle", *(*uint)(k.phKey), uint(77|gen))

	// No additional keys at all: nothing to bring back.
	setP(t, l, k.app, "pAdditionalDerivedKeys", nil)
	setU(t, l, k.app, "ulAdditionalDerivedKeys", 0)
	send(t, l, k.app).back()
}

// FuzzBuild feeds arbitrary requests to the host's Build for every layout:
// whatever it accepts, EncodeOut can answer, and nothing it refuses is
// half-built into a structure.
func FuzzBuild(f *testing.F) {
	ls := AllLayouts()
	for _, tg := range fuzzTargets {
		var m mem
		x := tg(&m)
		if body, ok := cwire.EncodeParam(layoutIndex(x.l), x.app); ok {
			f.Add(uint16(layoutIndex(x.l)), body)
		}
	}
	f.Add(uint16(layoutIndex(SP800108KDFParams)), []byte{0x95, 0, 1, 0x91, 0x93, 4, 0xc4, 1, 'a', 1, 0, 0xc0})
	f.Fuzz(func(t *testing.T, which uint16, data []byte) {
		l := ls[int(which)%len(ls)]
		var m mem
		// An output buffer's capacity may legitimately reach
		// wire.MaxBuffer without bytes behind it: more than a fuzzer's
		// process can allocate thousands of times a second.
		budget := uintptr(16 << 20)
		alloc := func(n uintptr) unsafe.Pointer {
			if n > budget {
				t.Skip("past the fuzzer's allocation budget")
			}
			budget -= n
			return m.alloc(n)
		}
		d := wire.NewDecoder()
		d.Reset(data)
		p := Build(d, l, alloc)
		if p == nil {
			if d.Err() == nil {
				t.Fatalf("%s: nothing built and no error", l.Name)
			}
			return
		}
		e := wire.NewEncoder()
		EncodeOut(e, l, p)
		if e.Err() != nil {
			t.Fatalf("%s: EncodeOut: %v", l.Name, e.Err())
		}
	})
}

// The fuzz targets of the 3.x outputs (FuzzDecodeOut).
func fuzzKDF(m *mem) fuzzTarget {
	t := &testing.T{}
	l := SP800108KDFParams
	k := sp800108(t, m, l)
	return fuzzTarget{l, k.app, []guard{{k.phKey, 8}}, func(hp unsafe.Pointer) { vendorKDF(t, l, hp) }}
}

func fuzzGCMMessage(m *mem) fuzzTarget {
	t := &testing.T{}
	l := GCMMessageParams
	app, iv, tag := gcmMessage(t, m, make([]byte, 12), 120, 1)
	return fuzzTarget{l, app, []guard{{iv, 12}, {tag, 15}}, func(hp unsafe.Pointer) {
		copy(view(getP(t, l, hp, "pIv"), 12), "iv-generated")
		copy(view(getP(t, l, hp, "pTag"), 15), "tag-15-bytes!!!")
	}}
}

func fuzzCCMWrap(m *mem) fuzzTarget {
	t := &testing.T{}
	l := CCMWrapParams
	app := m.alloc(l.Size)
	nonce := m.guarded(13, 0)
	setP(t, l, app, "pNonce", nonce)
	setU(t, l, app, "ulNonceLen", 13)
	return fuzzTarget{l, app, []guard{{nonce, 13}}, func(hp unsafe.Pointer) {
		copy(view(getP(t, l, hp, "pNonce"), 13), "nonce-13bytes")
	}}
}

// TestLayoutChecks: the descriptions the registry refuses at init.
func TestLayoutChecks(t *testing.T) {
	withOut := layout("OUT", ulong("n"), ptr("p", 0).inOut())
	cases := []struct {
		name   string
		fields func() []Field
	}{
		{"union selector after the union", func() []Field {
			return []Field{union("u", 1, 2, Case{1, nil}), ulong("type"), ulong("len")}
		}},
		{"union without cases", func() []Field {
			return []Field{ulong("type"), union("u", 0, 2), ulong("len")}
		}},
		{"union case twice", func() []Field {
			return []Field{ulong("type"), union("u", 0, 2, Case{1, nil}, Case{1, SP800108CounterFormat}), ulong("len")}
		}},
		{"union case with outputs", func() []Field {
			return []Field{ulong("type"), union("u", 0, 2, Case{1, withOut}), ulong("len")}
		}},
		{"union selector the vendor writes", func() []Field {
			return []Field{ulong("type").inOut(), union("u", 0, 2, Case{1, nil}), ulong("len")}
		}},
		{"union size through a pointer", func() []Field {
			return []Field{ulong("type"), union("u", 0, 2, Case{1, nil}), ulongPtr("len")}
		}},
		{"union as an output", func() []Field {
			return []Field{ulong("type"), union("u", 0, 2, Case{1, nil}).inOut(), ulong("len")}
		}},
		{"template count through a pointer", func() []Field {
			return []Field{template("t", 1), ulongPtr("n")}
		}},
		{"template as an output", func() []Field { return []Field{template("t", 1).inOut(), ulong("n")} }},
		{"handle pointer the application fills", func() []Field {
			return []Field{{Name: "h", Kind: HandlePtr}}
		}},
		{"array marked as an output", func() []Field {
			return []Field{array("a", OTPParam, 1).inOut(), ulong("n")}
		}},
		{"bits on an array", func() []Field {
			f := array("a", OTPParam, 1)
			f.Bits = true
			return []Field{f, ulong("n")}
		}},
	}
	for _, c := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: accepted", c.name)
				}
			}()
			layout("BAD", c.fields()...)
		}()
	}
	// Elements with outputs are allowed, and make the array an output.
	l := layout("OK", array("a", DerivedKey, 1), ulong("n"))
	if !l.Fields[0].Out || l.Outs() != 1 {
		t.Errorf("an array of elements with outputs is not an output")
	}
}

// A mis-sized parameter keeps its numbers and loses its pointers: those
// wholly inside the bytes given, and no byte past them is touched.
func TestClearPointers(t *testing.T) {
	b := make([]byte, 47) // CK_GCM_MESSAGE_PARAMS is 48 bytes
	for i := range b {
		b[i] = 0xab
	}
	ClearPointers(GCMMessageParams, b)
	for i, v := range b {
		pointer := i < 8 || (i >= 32 && i < 40) // pIv, pTag
		if (v == 0) != pointer {
			t.Fatalf("byte %d is 0x%02x: pointers cleared, the rest kept", i, v)
		}
	}
	short := []byte{1, 2, 3}
	ClearPointers(GCMMessageParams, short)
	if short[0] != 1 || short[2] != 3 {
		t.Errorf("a pointer only partly inside the bytes was touched: %v", short)
	}
}
