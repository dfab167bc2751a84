package cache

import (
	"context"
	"hash/maphash"
	"math"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/blobcache/blobcache/driver"
)

// The local tier (WithLocalTier) keeps values the cache read from the store
// in process memory, bounded by bytes, each until the earlier of its
// entry's expiry and the staleness bound after it was read. It is filled
// only by reads of values (Get, GetMany, GetOrSet, and Typed's, which use
// them); every write, replace and delete of an object by this Cache drops
// the object's copy once the store call returns (see the store calls in
// telemetry.go), and Clear drops every copy. Add, Incr, Decr, Increment,
// Touch, Has, locks and fill leases always go to the store.
//
// A read that raced a write must not keep the value it read from before the
// write. Each name hashes onto one of localStripes generation counters; a
// drop bumps its name's counter, then removes the copy. A copy carries the
// generation taken before its store read, is stored only if the counter is
// still there, and is served only while the counter still is: so no copy
// read before a drop is ever served after it, whatever the order in which
// the otter cache applies concurrent sets and removals of one key. (A drop
// also makes the copies of the other names of its stripe misses: with 4096
// stripes, a tier loses a copy to another name's write at 1/4096 of the
// write rate.)
//
// The eviction policy is otter's (W-TinyLFU, github.com/maypok86/otter/v2):
// it keeps the keys most likely to be read again when the tier is full
// (better than LRU on the skewed key popularity caches see), bounds memory
// by a weigher rather than a count, and is safe for concurrent use without
// a global lock.
type localTier struct {
	mem       *otter.Cache[string, localValue]
	staleness time.Duration
	maxBytes  int64
	seed      maphash.Seed
	gens      [localStripes]atomic.Uint64

	hits, misses, evictions atomic.Int64

	disk *diskTier // the disk tier behind this one (WithDiskTier), or nil
}

// localStripes is how many generation counters the names share.
const localStripes = 4096

// localOverhead is the weight charged per copy beyond its name and value:
// otter's node, the map's slot and the localValue header, about.
const localOverhead = 96

// localValue is one copy: the value and when it stops being served (Unix
// nanoseconds by the cache's clock).
type localValue struct {
	value []byte
	until int64
	gen   uint64 // the stripe's generation before the value was read
}

// newLocalTier returns a tier of at most maxBytes whose copies live at most
// staleness, calling onEvict after each eviction.
func newLocalTier(maxBytes int64, staleness time.Duration, onEvict func()) (*localTier, error) {
	t := &localTier{staleness: staleness, maxBytes: maxBytes, seed: maphash.MakeSeed()}
	mem, err := otter.New(&otter.Options[string, localValue]{
		MaximumWeight: uint64(maxBytes),
		Weigher: func(name string, v localValue) uint32 {
			return uint32(min(int64(len(name))+int64(len(v.value))+localOverhead, math.MaxUint32))
		},
		// Memory goes back within the bound; whether a copy may be served
		// is decided by until, on the cache's clock.
		ExpiryCalculator: otter.ExpiryWriting[string, localValue](staleness),
		// Deletion events are counted on the goroutine that caused them
		// (they only add to counters, which may run under otter's locks),
		// so the counts are exact when the call returns.
		Executor: func(fn func()) { fn() },
		OnDeletion: func(e otter.DeletionEvent[string, localValue]) {
			if e.WasEvicted() {
				t.evictions.Add(1)
				onEvict()
			}
		},
	})
	if err != nil {
		return nil, err
	}
	t.mem = mem
	return t, nil
}

func (t *localTier) stripe(name string) *atomic.Uint64 {
	return &t.gens[maphash.String(t.seed, name)%localStripes]
}

// generation is the generation of name's stripe, to pass to put.
func (t *localTier) generation(name string) uint64 {
	if t == nil {
		return 0
	}
	return t.stripe(name).Load()
}

// get returns a copy of name's value if the tier holds one to serve at now.
func (t *localTier) get(name string, now time.Time) ([]byte, bool) {
	if t == nil {
		return nil, false
	}
	v, ok := t.mem.GetIfPresent(name)
	if !ok || now.UnixNano() >= v.until || v.gen != t.stripe(name).Load() {
		t.misses.Add(1)
		return nil, false
	}
	t.hits.Add(1)
	return append([]byte(nil), v.value...), true
}

// put keeps a copy of value, read from the store at now with expiry
// (Unix nanoseconds, 0 never), unless name's stripe changed since gen.
func (t *localTier) put(name string, gen uint64, value []byte, expiry int64, now time.Time) {
	if t == nil {
		return
	}
	t.putUntil(name, gen, value, untilOf(now, t.staleness, expiry))
}

// putUntil keeps a copy of value to serve until until (Unix nanoseconds),
// unless name's stripe changed since gen. A value that would take half the
// tier is not kept.
func (t *localTier) putUntil(name string, gen uint64, value []byte, until int64) {
	if int64(len(value))+int64(len(name))+localOverhead > t.maxBytes/2 {
		return
	}
	s := t.stripe(name)
	if s.Load() != gen {
		return
	}
	t.mem.Set(name, localValue{value: append([]byte(nil), value...), until: until, gen: gen})
	if s.Load() != gen {
		t.mem.Invalidate(name) // dropped while it was stored
	}
}

// untilOf is when a copy read at now of an entry with expiry (Unix
// nanoseconds, 0 never) stops being served: the earlier of the expiry and
// the staleness bound after now.
func untilOf(now time.Time, staleness time.Duration, expiry int64) int64 {
	until := int64(math.MaxInt64) // a staleness bound past 2262 saturates
	if n := now.UnixNano(); int64(staleness) < math.MaxInt64-n {
		until = n + int64(staleness)
	}
	if expiry != 0 && expiry < until {
		until = expiry
	}
	return until
}

// drop removes name's copy and keeps reads that started before from
// storing theirs.
func (t *localTier) drop(name string) {
	if t == nil {
		return
	}
	t.stripe(name).Add(1)
	t.mem.Invalidate(name)
	if t.disk != nil {
		t.disk.drop(name)
	}
}

// dropAll removes every copy.
func (t *localTier) dropAll() {
	if t == nil {
		return
	}
	for i := range t.gens {
		t.gens[i].Add(1)
	}
	t.mem.InvalidateAll()
	if t.disk != nil {
		t.disk.dropAll()
	}
}

// close stops the tier's goroutines and frees its memory, and closes the
// disk tier, deleting its copies.
func (t *localTier) close() error {
	if t == nil {
		return nil
	}
	t.dropAll()
	t.mem.StopAllGoroutines()
	if t.disk != nil {
		return t.disk.close()
	}
	return nil
}

// bytes is the weight the tier holds now.
func (t *localTier) bytes() int64 {
	if t == nil {
		return 0
	}
	return int64(t.mem.WeightedSize())
}

// diskTier is the disk tier behind t, or nil.
func (t *localTier) diskTier() *diskTier {
	if t == nil {
		return nil
	}
	return t.disk
}

func (t *localTier) hitCount() int64 {
	if t == nil {
		return 0
	}
	return t.hits.Load()
}

func (t *localTier) missCount() int64 {
	if t == nil {
		return 0
	}
	return t.misses.Load()
}

func (t *localTier) evictionCount() int64 {
	if t == nil {
		return 0
	}
	return t.evictions.Load()
}

// readValue is read for the calls that return a value (Get, GetMany,
// GetOrSet, GetStale): served by the local tier when it holds the value (the
// header and attributes are then zero), then by the disk tier behind it, and
// kept in both when read from the store.
func (c *Cache) readValue(ctx context.Context, name string) (header, []byte, driver.Attributes, error) {
	if c.local == nil {
		return c.read(ctx, name)
	}
	if v, ok := c.local.get(name, c.now()); ok {
		if c.tel != nil && c.tel.localHits != nil {
			c.tel.localHits.Add(ctx, 1, c.tel.locOpts...)
		}
		return header{}, v, driver.Attributes{}, nil
	}
	if c.tel != nil && c.tel.localMisses != nil {
		c.tel.localMisses.Add(ctx, 1, c.tel.locOpts...)
	}
	gen := c.local.generation(name)
	if disk := c.local.disk; disk != nil {
		if v, ok := c.readDisk(ctx, disk, name, gen); ok {
			return header{}, v, driver.Attributes{}, nil
		}
	}
	h, v, raw, attrs, err := c.readRaw(ctx, name)
	if err == nil {
		now := c.now()
		c.local.put(name, gen, v, h.expiry, now)
		if c.local.disk != nil {
			c.local.disk.put(name, c.local.stripe(name), gen, raw, h.expiry, now)
		}
	}
	return h, v, attrs, err
}

// readDisk serves name from the disk tier if it holds a live copy read
// since generation gen, and keeps it in the memory tier for as long as the
// disk copy may be served.
func (c *Cache) readDisk(ctx context.Context, disk *diskTier, name string, gen uint64) ([]byte, bool) {
	now := c.now()
	raw, until, ok := disk.get(ctx, name, gen, now)
	if !ok {
		c.count(ctx, &disk.misses, telDiskMisses)
		return nil, false
	}
	h, v, err := decodeEntry(raw, name, c.keys, c.maxValueSize)
	if err != nil || h.stale(now) || h.expired(now) {
		disk.reject(name)
		c.count(ctx, &disk.misses, telDiskMisses)
		return nil, false
	}
	c.count(ctx, &disk.hits, telDiskHits)
	c.local.putUntil(name, gen, v, until)
	return v, true
}
