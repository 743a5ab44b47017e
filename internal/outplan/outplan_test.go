package outplan

import (
	"bytes"
	"testing"
	"unsafe"
)

func TestApply(t *testing.T) {
	var mem [32]byte
	var p Plan
	p.Copy(unsafe.Pointer(&mem[0]), []byte("abc"))
	p.Ulong(unsafe.Pointer(&mem[8]), 7)
	p.Handle(unsafe.Pointer(&mem[16]), 5)
	p.Byte(unsafe.Pointer(&mem[24]), 9)
	p.Copy(unsafe.Pointer(&mem[25]), nil) // nothing to copy: no write
	if p.Len() != 4 {
		t.Fatalf("%d writes queued, want 4", p.Len())
	}
	if mem != [32]byte{} {
		t.Fatal("queued writes touched memory before Apply")
	}
	p.Apply(func(v uint64) uint64 { return v + 100 })
	want := [32]byte{'a', 'b', 'c', 8: 7, 16: 105, 24: 9}
	if !bytes.Equal(mem[:], want[:]) {
		t.Errorf("memory %v, want %v", mem, want)
	}
	if p.Len() != 0 {
		t.Error("the plan is not empty after Apply")
	}
	p.Ulong(unsafe.Pointer(&mem[8]), 1)
	p.Reset()
	p.Apply(nil)
	if mem[8] != 7 {
		t.Error("a reset plan still wrote")
	}
}
