package mechparams

import (
	"bytes"
	"runtime"
	"testing"
	"unsafe"

	p11 "github.com/miekg/pkcs11"

	"github.com/p11isolate/p11isolate/internal/cwire"
	"github.com/p11isolate/p11isolate/internal/wire"
)

// mem stands in for C memory: zeroed, 16-byte aligned Go allocations kept
// alive for the test (pointers stored inside them are invisible to the GC).
type mem struct{ keep [][]uint64 }

func (m *mem) alloc(n uintptr) unsafe.Pointer {
	b := make([]uint64, (n+15)/8+2)
	m.keep = append(m.keep, b)
	p := unsafe.Pointer(&b[0])
	return unsafe.Add(p, (16-uintptr(p)%16)%16)
}

func (m *mem) bytes(b []byte) unsafe.Pointer {
	p := m.alloc(uintptr(len(b)))
	copy(unsafe.Slice((*byte)(p), len(b)), b)
	return p
}

func (m *mem) cstring(s string) unsafe.Pointer { return m.bytes(append([]byte(s), 0)) }

const guardLen = 16

// guarded returns an n-byte buffer filled with fill and followed by a
// canary; intact reports whether the canary survived.
func (m *mem) guarded(n int, fill byte) unsafe.Pointer {
	p := m.alloc(uintptr(n + guardLen))
	b := unsafe.Slice((*byte)(p), n+guardLen)
	for i := range b {
		b[i] = fill
		if i >= n {
			b[i] = 0xA5
		}
	}
	return p
}

func intact(p unsafe.Pointer, n int) bool {
	for _, c := range unsafe.Slice((*byte)(unsafe.Add(p, n)), guardLen) {
		if c != 0xA5 {
			return false
		}
	}
	return true
}

func view(p unsafe.Pointer, n int) []byte { return unsafe.Slice((*byte)(p), n) }

// fld finds a field of l by name.
func fld(t testing.TB, l *Layout, name string) *Field {
	t.Helper()
	i := l.index(name)
	if i < 0 {
		t.Fatalf("%s has no field %s", l.Name, name)
	}
	return &l.Fields[i]
}

func setU(t testing.TB, l *Layout, p unsafe.Pointer, name string, v uint64) {
	f := fld(t, l, name)
	if f.Kind == Byte {
		*at[byte](p, f.Off) = byte(v)
	} else {
		*at[uint](p, f.Off) = uint(v)
	}
}

func getU(t testing.TB, l *Layout, p unsafe.Pointer, name string) uint64 {
	f := fld(t, l, name)
	if f.Kind == Byte {
		return uint64(*at[byte](p, f.Off))
	}
	return uint64(*at[uint](p, f.Off))
}

func setP(t testing.TB, l *Layout, p unsafe.Pointer, name string, q unsafe.Pointer) {
	*at[unsafe.Pointer](p, fld(t, l, name).Off) = q
}

func getP(t testing.TB, l *Layout, p unsafe.Pointer, name string) unsafe.Pointer {
	return *at[unsafe.Pointer](p, fld(t, l, name).Off)
}

// unknownMech is a mechanism below CKM_VENDOR_DEFINED that no version of
// PKCS#11 defines: the registry refuses its parameter.
const unknownMech = 0x7fff0001

// Handles cross with a generation tag, as after a host restart: the
// application's carry bit 48, the vendor's do not.
const gen = uint64(1) << 48

func toApp(h uint64) uint64 {
	if h == 0 {
		return 0
	}
	return h | gen
}

func body(e *wire.Encoder) []byte { return e.Frame()[wire.HeaderSize:] }

// crossing is one parameter's trip: encoded by the proxy, built by the
// host, called, and answered.
type crossing struct {
	t       *testing.T
	l       *Layout
	app     unsafe.Pointer
	host    mem
	request []byte
	hp      unsafe.Pointer
}

// send encodes the application's structure (with the C data plane's walker,
// which the proxy runs) and builds the host's.
func send(t *testing.T, l *Layout, app unsafe.Pointer) *crossing {
	t.Helper()
	request, ok := cwire.EncodeParam(layoutIndex(l), app)
	if !ok {
		t.Fatalf("%s: the C walker refused it", l.Name)
	}
	c := &crossing{t: t, l: l, app: app, request: request}
	d := wire.NewDecoder()
	d.Reset(c.request)
	c.hp = Build(d, l, c.host.alloc)
	if err := d.Finish(); err != nil || c.hp == nil {
		t.Fatalf("%s: Build: %v", l.Name, err)
	}
	return c
}

// reply encodes the host's outputs (after the "vendor" wrote them).
func (c *crossing) reply() []byte {
	e := wire.NewEncoder()
	EncodeOut(e, c.l, c.hp)
	if e.Err() != nil {
		c.t.Fatal(e.Err())
	}
	runtime.KeepAlive(c.request)
	return bytes.Clone(body(e))
}

// deliver decodes a reply into the application's structure.
func deliver(l *Layout, app unsafe.Pointer, reply []byte) error {
	return deliverRV(l, app, reply, true)
}

// deliverRV is deliver for a call that returned CKR_OK (ok) or an error:
// the C data plane's walker checks the reply and, if it can be true,
// applies it.
func deliverRV(l *Layout, app unsafe.Pointer, reply []byte, ok bool) error {
	return cwire.DecodeParamOut(layoutIndex(l), app, reply, ok)
}

func (c *crossing) back() {
	c.t.Helper()
	if err := deliver(c.l, c.app, c.reply()); err != nil {
		c.t.Fatalf("%s: DecodeOut: %v", c.l.Name, err)
	}
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if g, ok := got.([]byte); ok {
		if !bytes.Equal(g, want.([]byte)) {
			t.Errorf("%s: %x, want %x", what, g, want)
		}
		return
	}
	if got != want {
		t.Errorf("%s: %v, want %v", what, got, want)
	}
}

func TestGCMRoundTrip(t *testing.T) {
	var m mem
	l := GCMParams
	app := m.alloc(l.Size)
	iv, aad := []byte("0123456789ab"), bytes.Repeat([]byte{7}, 20)
	setP(t, l, app, "pIv", m.bytes(iv))
	setU(t, l, app, "ulIvLen", 12)
	setU(t, l, app, "ulIvBits", 96)
	setP(t, l, app, "pAAD", m.bytes(aad))
	setU(t, l, app, "ulAADLen", 20)
	setU(t, l, app, "ulTagBits", 128)
	c := send(t, l, app)
	eq(t, "iv", view(getP(t, l, c.hp, "pIv"), 12), iv)
	eq(t, "aad", view(getP(t, l, c.hp, "pAAD"), 20), aad)
	eq(t, "ulIvBits", getU(t, l, c.hp, "ulIvBits"), uint64(96))
	eq(t, "ulTagBits", getU(t, l, c.hp, "ulTagBits"), uint64(128))
	eq(t, "outputs", l.outs, 0)
	c.back()

	// A NULL AAD stays NULL; a non-NULL empty IV stays non-NULL.
	setP(t, l, app, "pAAD", nil)
	setU(t, l, app, "ulIvLen", 0)
	c = send(t, l, app)
	if getP(t, l, c.hp, "pAAD") != nil || getP(t, l, c.hp, "pIv") == nil {
		t.Errorf("NULL-ness not preserved")
	}
}

func TestOAEPRoundTrip(t *testing.T) {
	var m mem
	oaep := m.alloc(RSAPKCSOAEPParams.Size)
	label := []byte("label")
	setU(t, RSAPKCSOAEPParams, oaep, "hashAlg", p11.CKM_SHA256)
	setU(t, RSAPKCSOAEPParams, oaep, "mgf", p11.CKG_MGF1_SHA256)
	setU(t, RSAPKCSOAEPParams, oaep, "source", p11.CKZ_DATA_SPECIFIED)
	setP(t, RSAPKCSOAEPParams, oaep, "pSourceData", m.bytes(label))
	setU(t, RSAPKCSOAEPParams, oaep, "ulSourceDataLen", 5)
	c := send(t, RSAPKCSOAEPParams, oaep)
	eq(t, "label", view(getP(t, RSAPKCSOAEPParams, c.hp, "pSourceData"), 5), label)
	eq(t, "hashAlg", getU(t, RSAPKCSOAEPParams, c.hp, "hashAlg"), uint64(p11.CKM_SHA256))

	// The same, behind CK_RSA_AES_KEY_WRAP_PARAMS.pOAEPParams.
	l := RSAAESKeyWrapParams
	app := m.alloc(l.Size)
	setU(t, l, app, "ulAESKeyBits", 256)
	setP(t, l, app, "pOAEPParams", oaep)
	c = send(t, l, app)
	hoaep := getP(t, l, c.hp, "pOAEPParams")
	eq(t, "nested label", view(getP(t, RSAPKCSOAEPParams, hoaep, "pSourceData"), 5), label)
	eq(t, "nested mgf", getU(t, RSAPKCSOAEPParams, hoaep, "mgf"), uint64(p11.CKG_MGF1_SHA256))
	eq(t, "ulAESKeyBits", getU(t, l, c.hp, "ulAESKeyBits"), uint64(256))
	c.back()
}

func TestPBEInitVector(t *testing.T) {
	var m mem
	l := PBEParams
	app := m.alloc(l.Size)
	ivBuf := m.guarded(8, 0x77)
	setP(t, l, app, "pInitVector", ivBuf)
	setP(t, l, app, "pPassword", m.bytes([]byte("secret")))
	setU(t, l, app, "ulPasswordLen", 6)
	setP(t, l, app, "pSalt", m.bytes([]byte("saltsalt")))
	setU(t, l, app, "ulSaltLen", 8)
	setU(t, l, app, "ulIteration", 2048)

	c := send(t, l, app)
	eq(t, "password", view(getP(t, l, c.hp, "pPassword"), 6), []byte("secret"))
	eq(t, "salt", view(getP(t, l, c.hp, "pSalt"), 8), []byte("saltsalt"))
	eq(t, "iterations", getU(t, l, c.hp, "ulIteration"), uint64(2048))
	hiv := view(getP(t, l, c.hp, "pInitVector"), 8)
	eq(t, "host IV buffer starts zeroed", hiv, make([]byte, 8))
	// The application's IV buffer content does not cross.
	if bytes.Contains(c.request, bytes.Repeat([]byte{0x77}, 8)) {
		t.Errorf("an output-only buffer's content crossed")
	}
	copy(hiv, "IVIVIVIV")
	c.back()
	eq(t, "application IV", view(ivBuf, 8), []byte("IVIVIVIV"))
	if !intact(ivBuf, 8) {
		t.Errorf("written past the IV")
	}

	// A vendor that writes no IV (PBE_SHA1_RC4_128) leaves it untouched.
	ivBuf = m.guarded(8, 0x77)
	setP(t, l, app, "pInitVector", ivBuf)
	c = send(t, l, app)
	c.back()
	eq(t, "untouched IV", view(ivBuf, 8), bytes.Repeat([]byte{0x77}, 8))
}

func TestTLSPRFOutput(t *testing.T) {
	var m mem
	l := TLSPRFParams
	app := m.alloc(l.Size)
	out := m.guarded(32, 0)
	outLen := m.alloc(8)
	*(*uint)(outLen) = 32
	setP(t, l, app, "pSeed", m.bytes([]byte("seed")))
	setU(t, l, app, "ulSeedLen", 4)
	setP(t, l, app, "pLabel", m.bytes([]byte("master secret")))
	setU(t, l, app, "ulLabelLen", 13)
	setP(t, l, app, "pOutput", out)
	setP(t, l, app, "pulOutputLen", outLen)

	c := send(t, l, app)
	eq(t, "label", view(getP(t, l, c.hp, "pLabel"), 13), []byte("master secret"))
	hlen := (*uint)(getP(t, l, c.hp, "pulOutputLen"))
	eq(t, "host capacity", *hlen, uint(32))
	copy(view(getP(t, l, c.hp, "pOutput"), 32), bytes.Repeat([]byte{0xEE}, 20))
	*hlen = 20
	c.back()
	eq(t, "output length", *(*uint)(outLen), uint(20))
	eq(t, "output", view(out, 20), bytes.Repeat([]byte{0xEE}, 20))
	eq(t, "rest of output", view(out, 32)[20:], make([]byte, 12))
	if !intact(out, 32) {
		t.Errorf("written past the output")
	}

	// Too small: the vendor reports the length it needs and writes nothing.
	*(*uint)(outLen) = 32
	out = m.guarded(32, 0x11)
	setP(t, l, app, "pOutput", out)
	c = send(t, l, app)
	*(*uint)(getP(t, l, c.hp, "pulOutputLen")) = 48
	// With CKR_OK, a length past the buffer is a lie and changes nothing.
	if err := deliverRV(l, app, c.reply(), true); err == nil {
		t.Errorf("CKR_OK with 48 bytes for a 32-byte buffer accepted")
	}
	eq(t, "length after a refused reply", *(*uint)(outLen), uint(32))
	if err := deliverRV(l, app, c.reply(), false); err != nil {
		t.Fatalf("CKR_BUFFER_TOO_SMALL refused: %v", err)
	}
	eq(t, "needed length", *(*uint)(outLen), uint(48))
	eq(t, "untouched output", view(out, 32), bytes.Repeat([]byte{0x11}, 32))
	if !intact(out, 32) {
		t.Errorf("written past the output")
	}

	// A NULL pulOutputLen crosses as NULL.
	setP(t, l, app, "pulOutputLen", nil)
	c = send(t, l, app)
	if getP(t, l, c.hp, "pulOutputLen") != nil {
		t.Errorf("NULL pulOutputLen became non-NULL")
	}
	c.back()
}

// sslKeyMat builds a CK_SSL3_KEY_MAT_PARAMS with guarded IV buffers.
func sslKeyMat(t testing.TB, m *mem, l *Layout, ivBits int) (app, kmo, ivc, ivs unsafe.Pointer) {
	app = m.alloc(l.Size)
	setU(t, l, app, "ulMacSizeInBits", 160)
	setU(t, l, app, "ulKeySizeInBits", 128)
	setU(t, l, app, "ulIVSizeInBits", uint64(ivBits))
	setU(t, l, app, "bIsExport", 0)
	ri := unsafe.Add(app, fld(t, l, "RandomInfo").Off)
	setP(t, SSL3RandomData, ri, "pClientRandom", m.bytes(bytes.Repeat([]byte{'c'}, 32)))
	setU(t, SSL3RandomData, ri, "ulClientRandomLen", 32)
	setP(t, SSL3RandomData, ri, "pServerRandom", m.bytes(bytes.Repeat([]byte{'s'}, 32)))
	setU(t, SSL3RandomData, ri, "ulServerRandomLen", 32)
	kmo = m.alloc(SSL3KeyMatOut.Size)
	for _, h := range []string{"hClientMacSecret", "hServerMacSecret", "hClientKey", "hServerKey"} {
		setU(t, SSL3KeyMatOut, kmo, h, 0xdeadbeef) // garbage an output must not trip over
	}
	ivc, ivs = m.guarded(ivBits/8, 0x55), m.guarded(ivBits/8, 0x55)
	setP(t, SSL3KeyMatOut, kmo, "pIVClient", ivc)
	setP(t, SSL3KeyMatOut, kmo, "pIVServer", ivs)
	setP(t, l, app, "pReturnedKeyMaterial", kmo)
	return
}

// vendorKeyMat plays the vendor of a key and MAC derivation.
func vendorKeyMat(t testing.TB, l *Layout, hp unsafe.Pointer, ivLen int) {
	hk := getP(t, l, hp, "pReturnedKeyMaterial")
	for i, h := range []string{"hClientMacSecret", "hServerMacSecret", "hClientKey", "hServerKey"} {
		setU(t, SSL3KeyMatOut, hk, h, uint64(11+i))
	}
	copy(view(getP(t, SSL3KeyMatOut, hk, "pIVClient"), ivLen), bytes.Repeat([]byte{0xC1}, ivLen))
	copy(view(getP(t, SSL3KeyMatOut, hk, "pIVServer"), ivLen), bytes.Repeat([]byte{0x5E}, ivLen))
}

func TestSSL3KeyMatReturned(t *testing.T) {
	for _, l := range []*Layout{SSL3KeyMatParams, TLS12KeyMatParams} {
		var m mem
		app, kmo, ivc, ivs := sslKeyMat(t, &m, l, 128)
		c := send(t, l, app)
		hri := unsafe.Add(c.hp, fld(t, l, "RandomInfo").Off)
		eq(t, "client random", view(getP(t, SSL3RandomData, hri, "pClientRandom"), 32), bytes.Repeat([]byte{'c'}, 32))
		eq(t, "server random", view(getP(t, SSL3RandomData, hri, "pServerRandom"), 32), bytes.Repeat([]byte{'s'}, 32))
		eq(t, "IV bits", getU(t, l, c.hp, "ulIVSizeInBits"), uint64(128))
		hk := getP(t, l, c.hp, "pReturnedKeyMaterial")
		eq(t, "output handle starts at 0", getU(t, SSL3KeyMatOut, hk, "hClientKey"), uint64(0))
		vendorKeyMat(t, l, c.hp, 16)
		c.back()
		for i, h := range []string{"hClientMacSecret", "hServerMacSecret", "hClientKey", "hServerKey"} {
			eq(t, h, getU(t, SSL3KeyMatOut, kmo, h), uint64(11+i)|gen)
		}
		eq(t, "client IV", view(ivc, 16), bytes.Repeat([]byte{0xC1}, 16))
		eq(t, "server IV", view(ivs, 16), bytes.Repeat([]byte{0x5E}, 16))
		if !intact(ivc, 16) || !intact(ivs, 16) {
			t.Errorf("written past an IV")
		}
	}
}

func TestWTLSKeyMatReturned(t *testing.T) {
	var m mem
	l := WTLSKeyMatParams
	app := m.alloc(l.Size)
	setU(t, l, app, "DigestMechanism", p11.CKM_SHA_1)
	setU(t, l, app, "ulIVSizeInBits", 64)
	ri := unsafe.Add(app, fld(t, l, "RandomInfo").Off)
	setP(t, WTLSRandomData, ri, "pClientRandom", m.bytes([]byte("cccc")))
	setU(t, WTLSRandomData, ri, "ulClientRandomLen", 4)
	kmo := m.alloc(WTLSKeyMatOut.Size)
	iv := m.guarded(8, 0)
	setP(t, WTLSKeyMatOut, kmo, "pIV", iv)
	setP(t, l, app, "pReturnedKeyMaterial", kmo)
	c := send(t, l, app)
	hk := getP(t, l, c.hp, "pReturnedKeyMaterial")
	setU(t, WTLSKeyMatOut, hk, "hKey", 42)
	copy(view(getP(t, WTLSKeyMatOut, hk, "pIV"), 8), "wtls-iv!")
	c.back()
	eq(t, "hKey", getU(t, WTLSKeyMatOut, kmo, "hKey"), 42|gen)
	eq(t, "hMacSecret", getU(t, WTLSKeyMatOut, kmo, "hMacSecret"), uint64(0))
	eq(t, "IV", view(iv, 8), []byte("wtls-iv!"))
	if !intact(iv, 8) {
		t.Errorf("written past the IV")
	}
}

func TestMasterKeyVersion(t *testing.T) {
	var m mem
	l := TLS12MasterKeyDeriveParams
	app := m.alloc(l.Size)
	ver := m.alloc(2)
	setP(t, l, app, "pVersion", ver)
	setU(t, l, app, "prfHashMechanism", p11.CKM_SHA256)
	c := send(t, l, app)
	hv := getP(t, l, c.hp, "pVersion")
	*(*[2]byte)(hv) = [2]byte{3, 3}
	c.back()
	eq(t, "version", *(*[2]byte)(ver), [2]byte{3, 3})

	// The _DH variants pass a NULL pVersion.
	setP(t, l, app, "pVersion", nil)
	c = send(t, l, app)
	c.back()
}

func TestCMSSigNestedMechanisms(t *testing.T) {
	var m mem
	pss := m.alloc(RSAPKCSPSSParams.Size)
	setU(t, RSAPKCSPSSParams, pss, "hashAlg", p11.CKM_SHA256)
	setU(t, RSAPKCSPSSParams, pss, "mgf", p11.CKG_MGF1_SHA256)
	setU(t, RSAPKCSPSSParams, pss, "sLen", 32)
	mech := func(typ uint64, param unsafe.Pointer, n uintptr) unsafe.Pointer {
		p := m.alloc(mechanism.Size)
		setU(t, mechanism, p, "mechanism", typ)
		setP(t, mechanism, p, "pParameter", param)
		setU(t, mechanism, p, "ulParameterLen", uint64(n))
		return p
	}
	l := CMSSigParams
	app := m.alloc(l.Size)
	setU(t, l, app, "certificateHandle", 7|gen)
	setP(t, l, app, "pSigningMechanism", mech(p11.CKM_SHA256_RSA_PKCS_PSS, pss, RSAPKCSPSSParams.Size))
	setP(t, l, app, "pDigestMechanism", mech(p11.CKM_SHA256, nil, 0))
	setP(t, l, app, "pContentType", m.cstring("application/pkcs7-mime"))
	setP(t, l, app, "pRequestedAttributes", m.bytes([]byte{0x30, 0x00}))
	setU(t, l, app, "ulRequestedAttributesLen", 2)

	c := send(t, l, app)
	eq(t, "certificate handle (vendor's)", getU(t, l, c.hp, "certificateHandle"), uint64(7))
	hs := getP(t, l, c.hp, "pSigningMechanism")
	eq(t, "signing mechanism", getU(t, mechanism, hs, "mechanism"), uint64(p11.CKM_SHA256_RSA_PKCS_PSS))
	eq(t, "signing parameter length", getU(t, mechanism, hs, "ulParameterLen"), uint64(RSAPKCSPSSParams.Size))
	hpss := getP(t, mechanism, hs, "pParameter")
	eq(t, "PSS sLen", getU(t, RSAPKCSPSSParams, hpss, "sLen"), uint64(32))
	eq(t, "PSS hash", getU(t, RSAPKCSPSSParams, hpss, "hashAlg"), uint64(p11.CKM_SHA256))
	hd := getP(t, l, c.hp, "pDigestMechanism")
	eq(t, "digest mechanism", getU(t, mechanism, hd, "mechanism"), uint64(p11.CKM_SHA256))
	if getP(t, mechanism, hd, "pParameter") != nil {
		t.Errorf("a NULL nested parameter became non-NULL")
	}
	ct := getP(t, l, c.hp, "pContentType")
	eq(t, "content type", view(ct, 23), []byte("application/pkcs7-mime\x00"))
	eq(t, "requested attributes", view(getP(t, l, c.hp, "pRequestedAttributes"), 2), []byte{0x30, 0})
	if getP(t, l, c.hp, "pRequiredAttributes") != nil {
		t.Errorf("NULL required attributes became non-NULL")
	}
	c.back()

	// A nested mechanism the registry does not know is refused, as is a
	// handle of a dead host, and nesting past the limit.
	setP(t, l, app, "pDigestMechanism", mech(unknownMech, m.bytes([]byte{1}), 1))
	if _, ok := cwire.EncodeParam(layoutIndex(l), app); ok {
		t.Errorf("unknown nested mechanism: carried")
	}
	setP(t, l, app, "pDigestMechanism", nil)
	inner := app
	for range wire.MaxNesting + 1 {
		outer := m.alloc(l.Size)
		setP(t, l, outer, "pSigningMechanism", mech(p11.CKM_CMS_SIG, inner, l.Size))
		inner = outer
	}
	if _, ok := cwire.EncodeParam(layoutIndex(l), inner); ok {
		t.Errorf("nesting past the limit: carried")
	}
}

func TestKIPNestedMechanism(t *testing.T) {
	var m mem
	l := KIPParams
	iv := m.bytes(bytes.Repeat([]byte{9}, 16))
	inner := m.alloc(mechanism.Size)
	setU(t, mechanism, inner, "mechanism", p11.CKM_AES_CBC)
	setP(t, mechanism, inner, "pParameter", iv)
	setU(t, mechanism, inner, "ulParameterLen", 16)
	app := m.alloc(l.Size)
	setP(t, l, app, "pMechanism", inner)
	setU(t, l, app, "hKey", 5|gen)
	c := send(t, l, app)
	hm := getP(t, l, c.hp, "pMechanism")
	eq(t, "raw nested IV", view(getP(t, mechanism, hm, "pParameter"), 16), bytes.Repeat([]byte{9}, 16))
	eq(t, "hKey", getU(t, l, c.hp, "hKey"), uint64(5))
}

func TestPBKD2PasswordLength(t *testing.T) {
	var m mem
	l := PKCS5PBKD2Params
	pw := []byte("correct horse")
	fill := func(app unsafe.Pointer) {
		setU(t, l, app, "saltSource", p11.CKZ_SALT_SPECIFIED)
		setP(t, l, app, "pSaltSourceData", m.bytes([]byte("NaCl")))
		setU(t, l, app, "ulSaltSourceDataLen", 4)
		setU(t, l, app, "iterations", 1000)
		setU(t, l, app, "prf", p11.CKP_PKCS5_PBKD2_HMAC_SHA256)
		setP(t, l, app, "pPassword", m.bytes(pw))
	}

	// CK_PKCS5_PBKD2_PARAMS: ulPasswordLen is a CK_ULONG_PTR.
	app := m.alloc(l.Size)
	fill(app)
	n := m.alloc(8)
	*(*uint)(n) = uint(len(pw))
	setP(t, l, app, "ulPasswordLen", n)
	c := send(t, l, app)
	hn := getP(t, l, c.hp, "ulPasswordLen")
	if hn == nil || hn == n {
		t.Fatalf("the password length pointer was not deep-copied")
	}
	eq(t, "password length", *(*uint)(hn), uint(len(pw)))
	eq(t, "password", view(getP(t, l, c.hp, "pPassword"), len(pw)), pw)
	eq(t, "salt", view(getP(t, l, c.hp, "pSaltSourceData"), 4), []byte("NaCl"))
	eq(t, "no prf data", getP(t, l, c.hp, "pPrfData"), unsafe.Pointer(nil))

	// CK_PKCS5_PBKD2_PARAMS2: the same bytes hold the length itself.
	app = m.alloc(l.Size)
	fill(app)
	setU(t, l, app, "ulPasswordLen", uint64(len(pw)))
	c = send(t, l, app)
	eq(t, "PARAMS2 password length", getU(t, l, c.hp, "ulPasswordLen"), uint64(len(pw)))
	eq(t, "PARAMS2 password", view(getP(t, l, c.hp, "pPassword"), len(pw)), pw)
}

func TestOTPArray(t *testing.T) {
	var m mem
	l := OTPParams
	vals := [][]byte{[]byte("123456"), nil, {0, 0, 0, 0, 0, 0, 0, 42}}
	arr := m.alloc(3 * OTPParam.Size)
	for i, v := range vals {
		e := unsafe.Add(arr, uintptr(i)*OTPParam.Size)
		setU(t, OTPParam, e, "type", uint64(i+1))
		if v != nil {
			setP(t, OTPParam, e, "pValue", m.bytes(v))
		}
		setU(t, OTPParam, e, "ulValueLen", uint64(len(v)))
	}
	app := m.alloc(l.Size)
	setP(t, l, app, "pParams", arr)
	setU(t, l, app, "ulCount", 3)
	c := send(t, l, app)
	eq(t, "count", getU(t, l, c.hp, "ulCount"), uint64(3))
	harr := getP(t, l, c.hp, "pParams")
	if harr == arr {
		t.Fatal("the array was not deep-copied")
	}
	for i, v := range vals {
		e := unsafe.Add(harr, uintptr(i)*OTPParam.Size)
		eq(t, "type", getU(t, OTPParam, e, "type"), uint64(i+1))
		eq(t, "value length", getU(t, OTPParam, e, "ulValueLen"), uint64(len(v)))
		if v == nil {
			eq(t, "NULL value", getP(t, OTPParam, e, "pValue"), unsafe.Pointer(nil))
		} else {
			eq(t, "value", view(getP(t, OTPParam, e, "pValue"), len(v)), v)
		}
	}
	c.back()
}

func TestKeyWrapSetOAEPInOut(t *testing.T) {
	var m mem
	l := KeyWrapSetOAEPParams
	app := m.alloc(l.Size)
	x := m.guarded(128, 0)
	copy(view(x, 4), "wrap")
	setU(t, l, app, "bBC", 1)
	setP(t, l, app, "pX", x)
	setU(t, l, app, "ulXLen", 128)
	c := send(t, l, app)
	eq(t, "input pX", view(getP(t, l, c.hp, "pX"), 4), []byte("wrap"))
	// Unwrapping: the vendor returns 20 bytes of extra data and a new bBC.
	copy(view(getP(t, l, c.hp, "pX"), 128), bytes.Repeat([]byte{0xAB}, 20))
	setU(t, l, c.hp, "ulXLen", 20)
	setU(t, l, c.hp, "bBC", 2)
	c.back()
	eq(t, "ulXLen", getU(t, l, app, "ulXLen"), uint64(20))
	eq(t, "bBC", getU(t, l, app, "bBC"), uint64(2))
	eq(t, "pX", view(x, 20), bytes.Repeat([]byte{0xAB}, 20))
	if !intact(x, 128) {
		t.Errorf("written past pX")
	}
}

func TestFortezzaIV(t *testing.T) {
	var m mem
	l, _, _ := Lookup(p11.CKM_SKIPJACK_CBC64)
	app := m.alloc(24)
	c := send(t, l, app)
	copy(view(c.hp, 24), bytes.Repeat([]byte{0x24}, 24))
	c.back()
	eq(t, "generated IV", view(app, 24), bytes.Repeat([]byte{0x24}, 24))
}

// reply builds a reply by hand.
func reply(f func(e *wire.Encoder)) []byte {
	e := wire.NewEncoder()
	f(e)
	return bytes.Clone(body(e))
}

// snapshot copies every application buffer of a test, to prove a failed
// DecodeOut wrote nothing.
func snapshot(m *mem) [][]uint64 {
	s := make([][]uint64, len(m.keep))
	for i, b := range m.keep {
		s[i] = append([]uint64(nil), b...)
	}
	return s
}

// layoutIndex is l's index in the C tables.
func layoutIndex(l *Layout) int { return l.Index() }

func unchanged(m *mem, s [][]uint64) bool {
	for i, b := range m.keep {
		for j := range b {
			if b[j] != s[i][j] {
				return false
			}
		}
	}
	return true
}

func TestLyingReplies(t *testing.T) {
	var m mem
	prf := m.alloc(TLSPRFParams.Size)
	out := m.guarded(32, 0)
	outLen := m.alloc(8)
	*(*uint)(outLen) = 32
	setP(t, TLSPRFParams, prf, "pOutput", out)
	setP(t, TLSPRFParams, prf, "pulOutputLen", outLen)

	pbe := m.alloc(PBEParams.Size)
	iv := m.guarded(8, 0)
	setP(t, PBEParams, pbe, "pInitVector", iv)

	ssl, _, ivc, ivs := sslKeyMat(t, &m, SSL3KeyMatParams, 128)

	pbeNoIV := m.alloc(PBEParams.Size)
	prfNoLen := m.alloc(TLSPRFParams.Size)
	setP(t, TLSPRFParams, prfNoLen, "pOutput", m.guarded(32, 0))
	sslNoOut := m.alloc(SSL3KeyMatParams.Size)

	handles := func(e *wire.Encoder) {
		for i := range 4 {
			e.Uint(uint64(11 + i))
		}
	}
	cases := []struct {
		name  string
		l     *Layout
		app   unsafe.Pointer
		reply []byte
	}{
		{"PRF output past the buffer", TLSPRFParams, prf, reply(func(e *wire.Encoder) {
			e.ArrayLen(2)
			e.Bytes(make([]byte, 40))
			e.Uint(40)
		})},
		{"PRF output longer than its length", TLSPRFParams, prf, reply(func(e *wire.Encoder) {
			e.ArrayLen(2)
			e.Bytes(make([]byte, 20))
			e.Uint(10)
		})},
		{"PRF output without its length", TLSPRFParams, prf, reply(func(e *wire.Encoder) {
			e.ArrayLen(2)
			e.Bytes(make([]byte, 20))
			e.Nil()
		})},
		{"PRF length for a NULL pointer", TLSPRFParams, prfNoLen, reply(func(e *wire.Encoder) {
			e.ArrayLen(2)
			e.Nil()
			e.Uint(20)
		})},
		{"PRF wrong output count", TLSPRFParams, prf, reply(func(e *wire.Encoder) {
			e.ArrayLen(1)
			e.Uint(20)
		})},
		{"PRF too many outputs", TLSPRFParams, prf, reply(func(e *wire.Encoder) {
			e.ArrayLen(3)
			e.Nil()
			e.Uint(20)
			e.Uint(1)
		})},
		{"PBE IV of 9 bytes", PBEParams, pbe, reply(func(e *wire.Encoder) {
			e.ArrayLen(1)
			e.Bytes(make([]byte, 9))
		})},
		{"PBE IV of 7 bytes", PBEParams, pbe, reply(func(e *wire.Encoder) {
			e.ArrayLen(1)
			e.Bytes(make([]byte, 7))
		})},
		{"PBE IV for a NULL pointer", PBEParams, pbeNoIV, reply(func(e *wire.Encoder) {
			e.ArrayLen(1)
			e.Bytes(make([]byte, 8))
		})},
		{"PBE IV as a number", PBEParams, pbe, reply(func(e *wire.Encoder) {
			e.ArrayLen(1)
			e.Uint(8)
		})},
		{"SSL3 server IV past its buffer", SSL3KeyMatParams, ssl, reply(func(e *wire.Encoder) {
			e.ArrayLen(1)
			e.ArrayLen(6)
			handles(e)
			e.Bytes(make([]byte, 16))
			e.Bytes(make([]byte, 17))
		})},
		{"SSL3 key material missing", SSL3KeyMatParams, ssl, reply(func(e *wire.Encoder) {
			e.ArrayLen(1)
			e.Nil()
		})},
		{"SSL3 key material for a NULL pointer", SSL3KeyMatParams, sslNoOut, reply(func(e *wire.Encoder) {
			e.ArrayLen(1)
			e.ArrayLen(6)
			handles(e)
			e.Nil()
			e.Nil()
		})},
		{"SSL3 five outputs for six", SSL3KeyMatParams, ssl, reply(func(e *wire.Encoder) {
			e.ArrayLen(1)
			e.ArrayLen(5)
			handles(e)
			e.Nil()
		})},
		{"SSL3 truncated", SSL3KeyMatParams, ssl, reply(func(e *wire.Encoder) {
			e.ArrayLen(1)
			e.ArrayLen(6)
			handles(e)
		})},
	}
	for _, c := range cases {
		before := snapshot(&m)
		if err := deliver(c.l, c.app, c.reply); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
		if !unchanged(&m, before) {
			t.Errorf("%s: the application's memory changed", c.name)
		}
	}
	if !intact(out, 32) || !intact(iv, 8) || !intact(ivc, 16) || !intact(ivs, 16) {
		t.Errorf("a guard was overwritten")
	}
}

// TestBuildRejects checks the host's side: a request whose lengths
// disagree with its bytes never reaches the vendor.
func TestBuildRejects(t *testing.T) {
	cases := []struct {
		name string
		l    *Layout
		req  []byte
	}{
		{"IV longer than ulIvLen", GCMParams, reply(func(e *wire.Encoder) {
			e.ArrayLen(6)
			e.Bytes(make([]byte, 16))
			e.Uint(12)
			e.Uint(96)
			e.Nil()
			e.Uint(0)
			e.Uint(128)
		})},
		{"PRF capacity unlike *pulOutputLen", TLSPRFParams, reply(func(e *wire.Encoder) {
			e.ArrayLen(6)
			e.Nil()
			e.Uint(0)
			e.Nil()
			e.Uint(0)
			e.Uint(64)
			e.Uint(32)
		})},
		{"SSL3 IV capacity unlike ulIVSizeInBits", SSL3KeyMatParams, reply(func(e *wire.Encoder) {
			e.ArrayLen(6)
			e.Uint(0)
			e.Uint(0)
			e.Uint(64)
			e.Uint(0)
			e.ArrayLen(4)
			e.Nil()
			e.Uint(0)
			e.Nil()
			e.Uint(0)
			e.ArrayLen(6)
			for range 4 {
				e.Nil()
			}
			e.Uint(16)
			e.Uint(16)
		})},
		{"OTP count unlike ulCount", OTPParams, reply(func(e *wire.Encoder) {
			e.ArrayLen(2)
			e.ArrayLen(0)
			e.Uint(1)
		})},
		{"output-only handle with a value", SSL3KeyMatParams, reply(func(e *wire.Encoder) {
			e.ArrayLen(6)
			e.Uint(0)
			e.Uint(0)
			e.Uint(0)
			e.Uint(0)
			e.ArrayLen(4)
			e.Nil()
			e.Uint(0)
			e.Nil()
			e.Uint(0)
			e.ArrayLen(6)
			e.Uint(5)
		})},
		{"PBKD2 length in pointer range as a value", PKCS5PBKD2Params, reply(func(e *wire.Encoder) {
			e.ArrayLen(9)
			for range 7 {
				e.Uint(0)
			}
			e.Nil()
			e.Uint(ptrFloor)
		})},
		{"C string with a NUL", CMSSigParams, reply(func(e *wire.Encoder) {
			e.ArrayLen(8)
			e.Uint(0)
			e.Nil()
			e.Nil()
			e.Bytes([]byte("a\x00b"))
			e.Nil()
			e.Uint(0)
			e.Nil()
			e.Uint(0)
		})},
		{"nested mechanism with an unknown structure", KIPParams, reply(func(e *wire.Encoder) {
			e.ArrayLen(4)
			e.ArrayLen(3)
			e.Uint(unknownMech)
			e.Uint(8)
			e.ArrayLen(1)
			e.Uint(0)
			e.Uint(0)
			e.Nil()
			e.Uint(0)
		})},
	}
	for _, c := range cases {
		var m mem
		d := wire.NewDecoder()
		d.Reset(c.req)
		if p := Build(d, c.l, m.alloc); p != nil || d.Err() == nil {
			t.Errorf("%s: built", c.name)
		}
	}
}

// FuzzDecodeOut feeds arbitrary replies to DecodeOut for structures with
// outputs. Whatever it accepts, nothing is written past a guarded buffer;
// whatever it refuses, nothing is written at all.
func FuzzDecodeOut(f *testing.F) {
	// Seeds: genuine replies of each target, and a few broken ones.
	for i := range fuzzTargets {
		var m mem
		tg := fuzzTargets[i](&m)
		c := &crossing{t: &testing.T{}, l: tg.l, app: tg.app}
		request, ok := cwire.EncodeParam(layoutIndex(tg.l), tg.app)
		if !ok {
			f.Fatal("seed encode")
		}
		c.request = request
		d := wire.NewDecoder()
		d.Reset(c.request)
		if c.hp = Build(d, tg.l, c.host.alloc); c.hp == nil {
			f.Fatalf("seed build %s: %v", tg.l.Name, d.Err())
		}
		tg.vendor(c.hp)
		r := c.reply()
		f.Add(byte(i), r)
		f.Add(byte(i), r[:len(r)/2])
		f.Add(byte(i), append(bytes.Clone(r), 0xc0))
	}
	f.Add(byte(0), []byte{0x92, 0xc4, 0x28})
	f.Fuzz(func(t *testing.T, which byte, data []byte) {
		var m mem
		tg := fuzzTargets[int(which)%len(fuzzTargets)](&m)
		before := snapshot(&m)
		err := cwire.DecodeParamOut(layoutIndex(tg.l), tg.app, data, which&0x80 == 0)
		for _, g := range tg.guards {
			if !intact(g.p, g.n) {
				t.Fatalf("%s: written past a %d-byte buffer", tg.l.Name, g.n)
			}
		}
		if err != nil && !unchanged(&m, before) {
			t.Fatalf("%s: a refused reply changed the application's memory", tg.l.Name)
		}
	})
}

type guard struct {
	p unsafe.Pointer
	n int
}

type fuzzTarget struct {
	l      *Layout
	app    unsafe.Pointer
	guards []guard
	vendor func(hp unsafe.Pointer)
}

var fuzzTargets = []func(m *mem) fuzzTarget{
	func(m *mem) fuzzTarget {
		t := &testing.T{}
		l := TLSPRFParams
		app := m.alloc(l.Size)
		out := m.guarded(32, 0)
		n := m.alloc(8)
		*(*uint)(n) = 32
		setP(t, l, app, "pOutput", out)
		setP(t, l, app, "pulOutputLen", n)
		return fuzzTarget{l, app, []guard{{out, 32}}, func(hp unsafe.Pointer) {
			copy(view(getP(t, l, hp, "pOutput"), 32), "prf output")
			*(*uint)(getP(t, l, hp, "pulOutputLen")) = 10
		}}
	},
	func(m *mem) fuzzTarget {
		t := &testing.T{}
		l := PBEParams
		app := m.alloc(l.Size)
		iv := m.guarded(8, 0)
		setP(t, l, app, "pInitVector", iv)
		return fuzzTarget{l, app, []guard{{iv, 8}}, func(hp unsafe.Pointer) {
			copy(view(getP(t, l, hp, "pInitVector"), 8), "IVIVIVIV")
		}}
	},
	func(m *mem) fuzzTarget {
		t := &testing.T{}
		l := TLS12KeyMatParams
		app, _, ivc, ivs := sslKeyMat(t, m, l, 64)
		return fuzzTarget{l, app, []guard{{ivc, 8}, {ivs, 8}}, func(hp unsafe.Pointer) {
			vendorKeyMat(t, l, hp, 8)
		}}
	},
	func(m *mem) fuzzTarget {
		t := &testing.T{}
		l := KeyWrapSetOAEPParams
		app := m.alloc(l.Size)
		x := m.guarded(24, 0)
		setP(t, l, app, "pX", x)
		setU(t, l, app, "ulXLen", 24)
		return fuzzTarget{l, app, []guard{{x, 24}}, func(hp unsafe.Pointer) {
			setU(t, l, hp, "ulXLen", 5)
		}}
	},
	func(m *mem) fuzzTarget {
		t := &testing.T{}
		l := WTLSMasterKeyDeriveParams
		app := m.alloc(l.Size)
		v := m.guarded(1, 0)
		setP(t, l, app, "pVersion", v)
		return fuzzTarget{l, app, []guard{{v, 1}}, func(hp unsafe.Pointer) {
			*(*byte)(getP(t, l, hp, "pVersion")) = 1
		}}
	},
	func(m *mem) fuzzTarget {
		t := &testing.T{}
		l := DSAParameterGenParam
		app := m.alloc(l.Size)
		seed := m.guarded(20, 0)
		setP(t, l, app, "pSeed", seed)
		setU(t, l, app, "ulSeedLen", 20)
		return fuzzTarget{l, app, []guard{{seed, 20}}, func(hp unsafe.Pointer) {
			copy(view(getP(t, l, hp, "pSeed"), 20), "0123456789abcdefghij")
		}}
	},
	// PKCS#11 3.x (codec3_test.go): handles in array elements, in/out
	// buffers of lengths in bits, a generated nonce.
	fuzzKDF,
	fuzzGCMMessage,
	fuzzCCMWrap,
}
