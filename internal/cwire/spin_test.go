package cwire

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSpinPolicy holds the poll-before-sleep policy to what spin.c says:
// no polling without a CPU for each waiter and worker, a window a little
// longer than the waits of that kind and never past the cap, a doze before
// a long one, slow kinds
// slept through, and sleeping at once after polling kept missing.
func TestSpinPolicy(t *testing.T) {
	cpus := SpinCPUs()
	if cpus < 1 {
		t.Fatalf("SpinCPUs = %d", cpus)
	}
	var s Spin
	if w := s.Window(cpus/2+1, SpinCap); w != 0 {
		t.Errorf("with %d waits in flight on %d CPUs the window is %d ns, want 0", cpus/2+1, cpus, w)
	}
	if cpus < 2 {
		t.Skipf("%d CPU: the policy never polls here", cpus)
	}
	if w := s.Window(1, SpinCap); w <= 0 || w > SpinCap {
		t.Errorf("first window %d ns, want a probe within (0, %d]", w, SpinCap)
	}
	for range 20 {
		s.Done(10000, s.Window(1, SpinCap), SpinCap)
	}
	if w := s.Window(1, SpinCap); w < 20000 || w > 40000 {
		t.Errorf("after waits of 10 µs the window is %d ns, want 20..40 µs", w)
	}
	var slow Spin
	for range 20 {
		slow.Done(2*SpinCap, slow.Window(1, SpinCap), SpinCap)
	}
	if w := slow.Window(1, SpinCap); w != 0 {
		t.Errorf("after waits of %d ns (past the cap) the window is %d ns, want 0", 2*SpinCap, w)
	}
	// Polling that keeps missing: the waits come just past the window.
	var miss Spin
	for range 20 {
		miss.Done(10000, miss.Window(1, SpinCap), SpinCap)
	}
	slept := 0
	for range 40 {
		w := miss.Window(1, SpinCap)
		if w == 0 {
			slept++
			continue
		}
		miss.Done(w+1000, w, SpinCap)
	}
	// Given up after a run of misses (8 from a full score), and for good:
	// without giving up, the misses would push the EWMA past the cap
	// only after ~29 of them.
	if slept <= 20 {
		t.Errorf("polling missed 40 times and was given up for only %d waits", slept)
	}
	// A caller's reply past the host's cap but within its own: polled
	// for, after a doze that ends before the reply is due by more than
	// sleepers have been waking late.
	var long Spin
	for range 20 {
		long.Done(500000, long.Window(1, SpinReplyCap), SpinReplyCap)
	}
	w := long.Window(1, SpinReplyCap)
	if w < 500000 || w > SpinReplyCap {
		t.Errorf("after replies of 500 µs the window is %d ns, want 500 µs..%d", w, SpinReplyCap)
	}
	for range 40 {
		SpinDozed(100000, 100000+150000) // sleepers wake 150 µs late
	}
	if d := long.Doze(w); d <= 0 || d+150000 >= 500000 {
		t.Errorf("replies of 500 µs, sleepers 150 µs late: a doze of %d ns, want one that wakes before 500 µs", d)
	}
	for range 40 {
		SpinDozed(100000, 100000+450000)
	}
	if d := long.Doze(w); d != 0 {
		t.Errorf("replies of 500 µs, sleepers 450 µs late: a doze of %d ns, want none", d)
	}
	for range 80 {
		SpinDozed(100000, 100000) // sleepers wake on time: only the threshold stops a doze below
	}
	var short Spin
	for range 20 {
		short.Done(SpinDozeMin/2, short.Window(1, SpinReplyCap), SpinReplyCap)
	}
	if d := short.Doze(short.Window(1, SpinReplyCap)); d != 0 {
		t.Errorf("replies of %d ns: a doze of %d ns, want none", SpinDozeMin/2, d)
	}
	var slower Spin
	for range 20 {
		slower.Done(2*SpinReplyCap, slower.Window(1, SpinReplyCap), SpinReplyCap)
	}
	if w := slower.Window(1, SpinReplyCap); w != 0 {
		t.Errorf("replies of %d ns (past the caller's cap): a window of %d ns, want 0", 2*SpinReplyCap, w)
	}
}

func TestSpinPoll(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	start := time.Now()
	if SpinPoll(fds[0], 200000) {
		t.Fatal("an empty socket polled readable")
	}
	if d := time.Since(start); d < 200*time.Microsecond || d > 50*time.Millisecond {
		t.Errorf("a 200 µs poll took %v", d)
	}
	unix.Write(fds[1], []byte{1})
	if !SpinPoll(fds[0], 200000) {
		t.Error("a socket with data did not poll readable")
	}
	var b [1]byte
	unix.Read(fds[0], b[:])
	unix.Close(fds[1])
	if !SpinPoll(fds[0], 200000) {
		t.Error("a socket whose peer closed did not poll readable (EOF)")
	}
}
