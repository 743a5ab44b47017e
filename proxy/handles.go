package main

import "sync"

// handleTable gives the application session and object handles that keep
// their meaning across host restarts. The first host's handles pass
// unchanged, so a module behind the proxy shows its own numbers. Every later
// host's handles are mapped to fresh numbers above any the application has
// seen, so a handle of a dead (or finalized) host can never name an object
// of the new one; it is sent to the vendor as CK_INVALID_HANDLE, which the
// vendor refuses with its own code for that argument. Handles stay in the
// vendor's 32-bit range in practice: only the counter grows.
type handleTable struct {
	mu      sync.Mutex
	gen     uint64            // generation of the host the maps belong to
	toV     map[uint64]uint64 // application handle -> vendor handle
	toA     map[uint64]uint64 // vendor handle -> application handle
	highest uint64            // highest handle the application has been given
}

var handles = &handleTable{}

// toVendor translates an application handle for a host of generation gen.
func (t *handleTable) toVendor(gen, v uint64) uint64 {
	if v == 0 {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if gen == 0 {
		return v
	}
	if gen != t.gen {
		return 0
	}
	return t.toV[v] // 0 for a handle this host never issued
}

// toApp translates a vendor handle of a host of generation gen.
func (t *handleTable) toApp(gen, v uint64) uint64 {
	if v == 0 {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if gen == 0 {
		t.highest = max(t.highest, v)
		return v
	}
	if gen != t.gen {
		// A new host: the previous host's handles are all dead.
		t.gen, t.toV, t.toA = gen, map[uint64]uint64{}, map[uint64]uint64{}
	}
	if a, ok := t.toA[v]; ok {
		return a
	}
	t.highest++
	a := t.highest
	t.toV[a], t.toA[v] = v, a
	return a
}
