// Command crypto11-check drives libp11isolate.so with a real Go PKCS#11
// client, github.com/ThalesGroup/crypto11, and checks every result in
// software (crypto/ecdsa, crypto/rsa). It is built and run by
// tests/clients/crypto11.sh and tests/clients/concurrent.sh as a process of
// its own: the library is never loaded into a `go test` process.
//
// Modes:
//
//	-mode check    key generation, signing, lookup and AES-GCM through the token
//	-mode threads  -threads N goroutines, each on an OS thread of its own,
//	               sign concurrently with one ECDSA key
//	-mode keygen   generate an ECDSA P-256 key pair (-id, -label) and write its
//	               public key as PEM to -out
//	-mode sign     sign the SHA-256 digest of -in -n times with the key -id and
//	               write the DER signatures to -out.1 ... -out.N (for openssl
//	               dgst -verify); -lock, -ready and -start line up processes
//	-mode delete   delete the key pairs and secret keys with -label
//
// Each check prints "ok   - ..." or "FAIL - ..."; the exit status is 1 if any
// check failed, 2 on a usage or setup error.
package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/ThalesGroup/crypto11"
)

var (
	lib      = flag.String("lib", "build/libp11isolate.so", "PKCS#11 module to load")
	token    = flag.String("token", "", "token label (required)")
	pin      = flag.String("pin", "1234", "user PIN")
	mode     = flag.String("mode", "check", "check, threads, keygen, sign or delete")
	label    = flag.String("label", "", "label of the objects this run creates (default: a random one)")
	idHex    = flag.String("id", "", "hex CKA_ID of the key (keygen, sign, threads)")
	threads  = flag.Int("threads", 16, "concurrent signers (threads mode)")
	perThr   = flag.Int("n", 20, "signatures per signer (threads mode) or per process (sign mode)")
	inFile   = flag.String("in", "", "input file (sign mode)")
	outFile  = flag.String("out", "", "output file (keygen, sign modes)")
	keepKeys = flag.Bool("keep", false, "do not delete the keys the check mode creates")
	lockFile = flag.String("lock", "", "hold an exclusive flock on this file while logging in")
	ready    = flag.String("ready", "", "sign mode: create this file once logged in and the key is found")
	startArg = flag.String("start", "", "sign mode: read a line from this file (a FIFO) before signing")
)

var failures int

func ok(format string, a ...any) { fmt.Printf("ok   - "+format+"\n", a...) }

func fail(format string, a ...any) {
	fmt.Printf("FAIL - "+format+"\n", a...)
	failures++
}

// check prints ok or FAIL for name depending on err.
func check(name string, err error) bool {
	if err != nil {
		fail("%s: %v", name, err)
		return false
	}
	ok("%s", name)
	return true
}

func die(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "crypto11-check: "+format+"\n", a...)
	os.Exit(2)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		die("reading random bytes: %v", err)
	}
	return hex.EncodeToString(b)
}

func main() {
	flag.Parse()
	if *token == "" {
		die("-token is required")
	}
	if *label == "" {
		*label = "c11-" + randomHex(4)
	}
	unlock := lockLogin()
	ctx, err := crypto11.Configure(&crypto11.Config{Path: *lib, TokenLabel: *token, Pin: *pin})
	unlock()
	if err != nil {
		fmt.Printf("FAIL - crypto11.Configure(%s, token %q): %v\n", *lib, *token, err)
		os.Exit(1)
	}
	switch *mode {
	case "check":
		runCheck(ctx)
	case "threads":
		runThreads(ctx)
	case "keygen":
		runKeygen(ctx)
	case "sign":
		runSign(ctx)
	case "delete":
		deleteLabel(ctx, []byte(*label))
	default:
		die("unknown -mode %q", *mode)
	}
	if err := ctx.Close(); err != nil {
		fail("crypto11 Context.Close: %v", err)
	}
	if failures > 0 {
		os.Exit(1)
	}
}

func keyID() []byte {
	if *idHex == "" {
		die("-id is required in -mode %s", *mode)
	}
	id, err := hex.DecodeString(*idHex)
	if err != nil || len(id) == 0 {
		die("-id %q is not hex", *idHex)
	}
	return id
}

// verifyECDSA checks an ASN.1 ECDSA signature of digest with pub in software.
func verifyECDSA(pub crypto.PublicKey, digest, sig []byte) error {
	ec, isEC := pub.(*ecdsa.PublicKey)
	if !isEC {
		return fmt.Errorf("public key is %T, not *ecdsa.PublicKey", pub)
	}
	if !ecdsa.VerifyASN1(ec, digest, sig) {
		return errors.New("crypto/ecdsa rejects the signature")
	}
	return nil
}

// sameKey reports whether the public key read back from the token is the one
// the key pair was generated with.
func sameKey(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, isEq := a.(equaler)
	return isEq && e.Equal(b)
}

func runCheck(ctx *crypto11.Context) {
	lbl := []byte(*label)
	if !*keepKeys {
		defer deleteLabel(ctx, lbl)
	}

	// --- ECDSA P-256 ---------------------------------------------------------
	ecID := []byte(*label + "-ec")
	ec, err := ctx.GenerateECDSAKeyPairWithLabel(ecID, lbl, elliptic.P256())
	if !check("crypto11: ECDSA P-256 key pair generated on the token", err) {
		return
	}
	pub, isEC := ec.Public().(*ecdsa.PublicKey)
	if isEC && pub.Curve == elliptic.P256() && pub.Curve.IsOnCurve(pub.X, pub.Y) {
		ok("crypto11: the token's EC public key is a point on P-256")
	} else {
		fail("crypto11: the token's EC public key is a point on P-256 (got %T)", ec.Public())
	}

	msg := make([]byte, 3000)
	rand.Read(msg)
	digest := sha256.Sum256(msg)
	sig, err := ec.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err == nil {
		err = verifyECDSA(ec.Public(), digest[:], sig)
	}
	check("crypto11: ECDSA signature of a SHA-256 digest made on the token verifies with crypto/ecdsa", err)
	if err == nil {
		bad := sha256.Sum256(append([]byte{1}, msg...))
		if verifyECDSA(ec.Public(), bad[:], sig) == nil {
			fail("crypto/ecdsa rejects the token's signature for another digest")
		} else {
			ok("crypto/ecdsa rejects the token's signature for another digest")
		}
	}

	// A fresh lookup: crypto11 finds the pair by CKA_ID and reads its public
	// key again (C_FindObjects, C_GetAttributeValue).
	found, err := ctx.FindKeyPair(ecID, nil)
	switch {
	case err != nil:
		fail("crypto11: FindKeyPair by CKA_ID: %v", err)
	case found == nil:
		fail("crypto11: FindKeyPair by CKA_ID found nothing")
	case !sameKey(found.Public(), ec.Public()):
		fail("crypto11: FindKeyPair by CKA_ID returned another public key")
	default:
		sig2, err := found.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err == nil {
			err = verifyECDSA(ec.Public(), digest[:], sig2)
		}
		check("crypto11: FindKeyPair by CKA_ID finds the same key pair, and its signature verifies", err)
	}

	// --- RSA-2048 ------------------------------------------------------------
	rsaID := []byte(*label + "-rsa")
	rk, err := ctx.GenerateRSAKeyPairWithLabel(rsaID, lbl, 2048)
	if check("crypto11: RSA-2048 key pair generated on the token", err) {
		rpub, isRSA := rk.Public().(*rsa.PublicKey)
		if !isRSA {
			fail("crypto11: RSA public key is %T", rk.Public())
		} else {
			sig, err := rk.Sign(rand.Reader, digest[:], crypto.SHA256)
			if err == nil {
				err = rsa.VerifyPKCS1v15(rpub, crypto.SHA256, digest[:], sig)
			}
			check("crypto11: RSA PKCS#1 v1.5 SHA-256 signature made on the token verifies with crypto/rsa", err)
			pss := &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}
			sig, err = rk.Sign(rand.Reader, digest[:], pss)
			if err == nil {
				err = rsa.VerifyPSS(rpub, crypto.SHA256, digest[:], sig, pss)
			}
			check("crypto11: RSA-PSS SHA-256 signature made on the token (CK_RSA_PKCS_PSS_PARAMS) verifies with crypto/rsa", err)
		}
	}

	// --- lookup of several objects at once -------------------------------------
	// Three key pairs share one label: one C_FindObjects call returns more
	// than two handles.
	ec2, err2 := ctx.GenerateECDSAKeyPairWithLabel([]byte(*label+"-ec2"), lbl, elliptic.P256())
	if err2 != nil {
		fail("crypto11: a second ECDSA key pair generated: %v", err2)
	} else {
		pairs, err := ctx.FindKeyPairs(nil, lbl)
		names := []string{"EC#1", "EC#2"}
		want := []crypto.PublicKey{ec.Public(), ec2.Public()}
		if rk != nil {
			names = append(names, "RSA")
			want = append(want, rk.Public())
		}
		// got names each pair found by the key it carries.
		var got []string
		for _, p := range pairs {
			name := "another key"
			for i, w := range want {
				if sameKey(p.Public(), w) {
					name = names[i]
				}
			}
			got = append(got, name)
		}
		seen := map[string]bool{}
		for _, g := range got {
			seen[g] = true
		}
		allSeen := len(got) == len(want)
		for _, n := range names {
			allSeen = allSeen && seen[n]
		}
		switch {
		case err != nil:
			fail("crypto11: FindKeyPairs by label finds the %d key pairs of this run: %v", len(want), err)
		case allSeen:
			ok("crypto11: FindKeyPairs by label finds the %d key pairs of this run (%v), with their public keys", len(want), got)
		default:
			fail("crypto11: FindKeyPairs by label finds the %d key pairs of this run %v: it found %d: %v",
				len(want), names, len(got), got)
		}
	}

	// --- AES-256-GCM -------------------------------------------------------------
	aesKey, err := ctx.GenerateSecretKeyWithLabel([]byte(*label+"-aes"), lbl, 256, crypto11.CipherAES)
	if !check("crypto11: AES-256 key generated on the token", err) {
		return
	}
	gcm, err := aesKey.NewGCM()
	if !check("crypto11: NewGCM on the token's AES key", err) {
		return
	}
	plain := make([]byte, 5000)
	rand.Read(plain)
	aad := []byte("p11isolate additional data")
	nonce := make([]byte, gcm.NonceSize())
	rand.Read(nonce)
	ct, err := seal(gcm, nonce, plain, aad)
	if !check("crypto11: AES-GCM Seal of 5000 bytes on the token", err) {
		return
	}
	if len(ct) == len(plain)+gcm.Overhead() && !bytes.Equal(ct[:len(plain)], plain) {
		ok("crypto11: the GCM ciphertext is %d bytes (plaintext + %d-byte tag) and is not the plaintext", len(ct), gcm.Overhead())
	} else {
		fail("crypto11: the GCM ciphertext is %d bytes, want %d, and differs from the plaintext", len(ct), len(plain)+gcm.Overhead())
	}
	back, err := gcm.Open(nil, nonce, ct, aad)
	if err == nil && !bytes.Equal(back, plain) {
		err = errors.New("the opened plaintext differs from the sealed one")
	}
	check("crypto11: AES-GCM Open on the token returns the plaintext", err)

	ct2, err := seal(gcm, nonce, plain, aad)
	if err == nil && !bytes.Equal(ct, ct2) {
		err = errors.New("two Seals with the same key, nonce and data differ")
	}
	check("crypto11: AES-GCM is deterministic for one nonce (the same ciphertext twice)", err)

	tampered := append([]byte(nil), ct...)
	tampered[100] ^= 0x01
	if _, err := gcm.Open(nil, nonce, tampered, aad); err != nil {
		ok("crypto11: AES-GCM Open of a tampered ciphertext fails (%v)", err)
	} else {
		fail("crypto11: AES-GCM Open of a tampered ciphertext fails (it succeeded)")
	}
	if _, err := gcm.Open(nil, nonce, ct, []byte("other additional data")); err != nil {
		ok("crypto11: AES-GCM Open with other additional data fails")
	} else {
		fail("crypto11: AES-GCM Open with other additional data fails (it succeeded)")
	}
	// The token's session is usable after the failed decryptions.
	back, err = gcm.Open(nil, nonce, ct, aad)
	if err == nil && !bytes.Equal(back, plain) {
		err = errors.New("the opened plaintext differs")
	}
	check("crypto11: after the failed Opens, the genuine ciphertext opens again", err)
}

// seal calls gcm.Seal, which panics on a token error.
func seal(gcm interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
}, nonce, plain, aad []byte) (ct []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("Seal panicked: %v", r)
		}
	}()
	return gcm.Seal(nil, nonce, plain, aad), nil
}

func deleteLabel(ctx *crypto11.Context, lbl []byte) {
	n := 0
	if pairs, err := ctx.FindKeyPairs(nil, lbl); err == nil {
		for _, p := range pairs {
			if p.Delete() == nil {
				n++
			}
		}
	}
	if keys, err := ctx.FindKeys(nil, lbl); err == nil {
		for _, k := range keys {
			if k.Delete() == nil {
				n++
			}
		}
	}
	if *mode == "delete" {
		fmt.Printf("# deleted %d keys labelled %s\n", n, lbl)
	}
}

func runKeygen(ctx *crypto11.Context) {
	k, err := ctx.GenerateECDSAKeyPairWithLabel(keyID(), []byte(*label), elliptic.P256())
	if !check("crypto11: ECDSA P-256 key pair generated", err) {
		return
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err == nil && *outFile != "" {
		err = os.WriteFile(*outFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	}
	check("crypto11: public key written", err)
}

func findSigner(ctx *crypto11.Context) crypto11.Signer {
	k, err := ctx.FindKeyPair(keyID(), nil)
	if err == nil && k == nil {
		err = errors.New("no key pair has this CKA_ID")
	}
	if err != nil {
		fail("crypto11: FindKeyPair(id %s): %v", *idHex, err)
		return nil
	}
	return k
}

// lockLogin takes the -lock file's flock, if any, and returns its release.
// SoftHSM2 rewrites its token file at every C_Login, and another process
// reading the token meanwhile can get CKR_GENERAL_ERROR (directly as well as
// through the proxy): signers that are to run at once log in one at a time.
func lockLogin() func() {
	if *lockFile == "" {
		return func() {}
	}
	f, err := os.OpenFile(*lockFile, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		die("%v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		die("flock %s: %v", *lockFile, err)
	}
	return func() { f.Close() }
}

// runSign signs the SHA-256 digest of -in -n times with the key -id and
// writes the DER signatures to -out.1, -out.2, ... With -ready and -start it
// reports that it is logged in and waits for the start signal first.
func runSign(ctx *crypto11.Context) {
	k := findSigner(ctx)
	if k == nil {
		return
	}
	msg, err := os.ReadFile(*inFile)
	if err != nil {
		die("%v", err)
	}
	if *ready != "" {
		if err := os.WriteFile(*ready, nil, 0o644); err != nil {
			die("%v", err)
		}
	}
	if *startArg != "" {
		f, err := os.Open(*startArg)
		if err != nil {
			die("%v", err)
		}
		b := make([]byte, 1)
		for {
			if _, err := f.Read(b); err != nil || b[0] == '\n' {
				break
			}
		}
		f.Close()
	}
	digest := sha256.Sum256(msg)
	made := 0
	for i := 1; i <= *perThr; i++ {
		sig, err := k.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err == nil {
			err = verifyECDSA(k.Public(), digest[:], sig)
		}
		if err == nil && *outFile != "" {
			err = os.WriteFile(fmt.Sprintf("%s.%d", *outFile, i), sig, 0o644)
		}
		if err != nil {
			fail("crypto11 (pid %d): signature %d of %s: %v", os.Getpid(), i, *inFile, err)
			return
		}
		made++
	}
	ok("crypto11 (pid %d): %d signatures of %s made and verified with crypto/ecdsa", os.Getpid(), made, *inFile)
}

// runThreads signs concurrently from -threads goroutines, each locked to an
// OS thread of its own, all with one key; every signature is checked with
// crypto/ecdsa.
func runThreads(ctx *crypto11.Context) {
	var k crypto11.Signer
	if *idHex != "" {
		k = findSigner(ctx)
	} else {
		var err error
		k, err = ctx.GenerateECDSAKeyPairWithLabel([]byte(*label+"-thr"), []byte(*label), elliptic.P256())
		if !check("crypto11: ECDSA P-256 key pair generated for the threads", err) {
			return
		}
		if !*keepKeys {
			defer deleteLabel(ctx, []byte(*label))
		}
	}
	if k == nil {
		return
	}
	pub := k.Public()

	type result struct {
		signed, verified int
		errs             []string
		tid              int
	}
	results := make([]result, *threads)
	start := make(chan struct{})
	var wg, ready sync.WaitGroup
	for t := 0; t < *threads; t++ {
		wg.Add(1)
		ready.Add(1)
		go func(t int) {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			r := &results[t]
			r.tid = gettid()
			ready.Done()
			<-start
			for i := 0; i < *perThr; i++ {
				msg := fmt.Appendf(nil, "thread %d signature %d %s", t, i, randomHex(8))
				digest := sha256.Sum256(msg)
				sig, err := k.Sign(rand.Reader, digest[:], crypto.SHA256)
				if err != nil {
					r.errs = append(r.errs, fmt.Sprintf("Sign: %v", err))
					continue
				}
				r.signed++
				if err := verifyECDSA(pub, digest[:], sig); err != nil {
					r.errs = append(r.errs, err.Error())
					continue
				}
				r.verified++
			}
		}(t)
	}
	// Every signer holds an OS thread of its own before any starts.
	ready.Wait()
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)

	total, verified := 0, 0
	tids := map[int]bool{}
	var errs []string
	for _, r := range results {
		total += r.signed
		verified += r.verified
		tids[r.tid] = true
		errs = append(errs, r.errs...)
	}
	want := *threads * *perThr
	if verified == want && len(errs) == 0 {
		ok("crypto11: %d goroutines on %d OS threads made %d concurrent signatures with one key in %v; crypto/ecdsa verifies all %d",
			*threads, len(tids), want, elapsed.Round(time.Millisecond), verified)
	} else {
		fail("crypto11: %d concurrent signers: %d of %d signatures made, %d verified; first errors: %v",
			*threads, total, want, verified, errs[:min(len(errs), 3)])
	}
	if len(tids) != *threads {
		fail("crypto11: the %d signers ran on %d distinct OS threads", *threads, len(tids))
	}
}

func gettid() int { return syscall.Gettid() }
