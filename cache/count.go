package cache

import (
	"sync"
)

// entryCounter keeps the number of entries under the location without a
// LIST on every write.
//
// It holds the set of names the last listing returned, updated by this
// process's own writes and deletes. In one process that set is exact, so a
// write lists the store (and culls) exactly when counting on every write
// would find the cache full. Other processes sharing the location add names
// this set cannot see; each listing measures how many appeared per own new
// entry (ratio), and the counter lists early by that projection, so that all
// processes together stay near the limit.
//
// It counts only the names in its domain: the whole location when the
// cache culls it as one, its sample (its first shards, see shard.go) when
// it culls shard by shard. Names outside the domain are not tracked, so its
// memory is bounded by the entries of the sample.
type entryCounter struct {
	// listMu serializes listings: one list-and-cull at a time.
	listMu sync.Mutex

	// off: the cache never culls by count (max_entries 0), so nothing is
	// tracked and wrote, dropped and endListing cost nothing.
	off bool
	// domain is the names tracked.
	domain sample

	mu     sync.Mutex
	valid  bool                // known reflects a listing
	known  map[string]struct{} // names believed to exist
	ownNew int                 // own new names since the last listing
	ratio  float64             // others' new names per own new name, smoothed

	// While a listing runs, own changes are also recorded here, since the
	// listing may or may not have seen them.
	listing     bool
	pendingAdd  map[string]struct{}
	pendingDrop map[string]struct{}
}

// initialRatio is the guess of others' new names per own new name before any
// listing has measured it: as if three other processes were writing. A wrong
// guess costs little: each listing halves the distance to the measured
// ratio, so a lone process pays a few early listings and never a wrong cull
// (culls are decided on the listing, not the guess).
const initialRatio = 3

// newEntryCounter returns a counter of the names in domain; with on false
// (max_entries 0) it tracks nothing.
func newEntryCounter(on bool, domain sample) *entryCounter {
	return &entryCounter{off: !on, domain: domain, known: make(map[string]struct{}), ratio: initialRatio}
}

// tracks reports whether name is in the counter's domain.
func (ec *entryCounter) tracks(name string) bool { return ec.domain.has(name) }

// needsListing reports whether a write must first list the domain, given
// its entry limit: when nothing is known yet, or when the projected count
// has reached the limit.
func (ec *entryCounter) needsListing(limit float64) bool {
	return ec.mayNeedListing(limit, 0)
}

// mayNeedListing reports whether any of the next writes, of n new names
// under the domain and any number elsewhere, plus one more, may have to
// list the domain first.
func (ec *entryCounter) mayNeedListing(limit float64, n int) bool {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	if !ec.valid {
		return true
	}
	projected := float64(len(ec.known)) + ec.ratio*float64(ec.ownNew+n) + float64(n)
	return projected >= limit
}

// unknown returns how many of names are under the domain and not known to
// the counter: the entries that writing all of them could add there.
func (ec *entryCounter) unknown(names []string) int {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	n := 0
	for _, name := range names {
		if !ec.tracks(name) {
			continue
		}
		if _, ok := ec.known[name]; !ok || !ec.valid {
			n++
		}
	}
	return n
}

// wrote records a successful write of name.
func (ec *entryCounter) wrote(name string) {
	if ec.off || !ec.tracks(name) {
		return
	}
	ec.mu.Lock()
	defer ec.mu.Unlock()
	if _, ok := ec.known[name]; !ok {
		ec.known[name] = struct{}{}
		ec.ownNew++
	}
	if ec.listing {
		ec.pendingAdd[name] = struct{}{}
		delete(ec.pendingDrop, name)
	}
}

// dropped records that names no longer exist.
func (ec *entryCounter) dropped(names ...string) {
	if ec.off {
		return
	}
	ec.mu.Lock()
	defer ec.mu.Unlock()
	for _, name := range names {
		if !ec.tracks(name) {
			continue
		}
		delete(ec.known, name)
		if ec.listing {
			ec.pendingDrop[name] = struct{}{}
			delete(ec.pendingAdd, name)
		}
	}
}

// beginListing marks the start of a listing. The caller holds listMu.
func (ec *entryCounter) beginListing() {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	ec.listing = true
	ec.pendingAdd = make(map[string]struct{})
	ec.pendingDrop = make(map[string]struct{})
}

// abortListing ends a listing that failed; what is known stays as it was.
func (ec *entryCounter) abortListing() {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	ec.listing = false
	ec.pendingAdd, ec.pendingDrop = nil, nil
}

// endListing replaces what is known with the listing's names (of the
// domain) minus the culled ones, plus own changes made while the listing
// ran.
func (ec *entryCounter) endListing(listed []string, culled []string) {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	if ec.off {
		ec.listing = false
		ec.pendingAdd, ec.pendingDrop = nil, nil
		return
	}
	if ec.valid {
		unseen := 0 // names others added that this process did not know of
		for _, name := range listed {
			_, known := ec.known[name]
			_, droppedMeanwhile := ec.pendingDrop[name]
			if !known && !droppedMeanwhile {
				unseen++
			}
		}
		sample := float64(unseen) / float64(max(ec.ownNew, 1))
		ec.ratio = (ec.ratio + sample) / 2
	}
	known := make(map[string]struct{}, len(listed))
	for _, name := range listed {
		known[name] = struct{}{}
	}
	for _, name := range culled {
		delete(known, name)
	}
	for name := range ec.pendingAdd {
		known[name] = struct{}{}
	}
	for name := range ec.pendingDrop {
		delete(known, name)
	}
	ec.known = known
	ec.valid = true
	ec.ownNew = 0
	ec.listing = false
	ec.pendingAdd, ec.pendingDrop = nil, nil
}

// count returns the number of names believed to exist.
func (ec *entryCounter) count() int {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	return len(ec.known)
}
