package cwire

import (
	"crypto/sha256"
	"testing"
)

// TestSHA256 holds the C SHA-256 that verifies the host image to Go's, on
// every length around the block and padding boundaries and a large input.
func TestSHA256(t *testing.T) {
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i*131 + i>>8)
	}
	lengths := []int{len(data), 1 << 20}
	for n := 0; n <= 300; n++ {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		if got, want := SHA256(data[:n]), sha256.Sum256(data[:n]); got != want {
			t.Fatalf("%d bytes: C %x, Go %x", n, got, want)
		}
	}
}

func FuzzSHA256(f *testing.F) {
	f.Add([]byte("abc"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := SHA256(b), sha256.Sum256(b); got != want {
			t.Fatalf("C %x, Go %x", got, want)
		}
	})
}
