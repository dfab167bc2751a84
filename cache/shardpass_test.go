package cache_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/mem"
)

// passStore is a store whose first `overlap` listings of shards from
// barrierFrom on after arm wait until that many are in flight at once (or 20 seconds pass, which fails the
// test that waits on them), which records the most listings ever in
// flight, and which fails the listing of failList, and with failPass every
// batch delete of names from barrierFrom on (the pass's, not the sample's),
// with errInjected.
type passStore struct {
	driver.Driver
	overlap  int
	failList string
	failPass bool

	mu       sync.Mutex
	inFlight int
	most     int
	arrived  int
	release  chan struct{}
	timedOut bool
}

var errInjected = errors.New("injected store failure")

// barrierFrom is the first shard whose listing arm's barrier holds: past
// the sample (listed one shard after another), among the shards a pass
// lists.
const barrierFrom = "loc/c0"

func newPassStore(d driver.Driver) *passStore {
	return &passStore{Driver: d, release: make(chan struct{})}
}

// arm makes the next n listings wait for each other, and forgets the most
// in flight so far.
func (p *passStore) arm(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.overlap, p.arrived, p.most = n, 0, 0
}

func (p *passStore) List(ctx context.Context, o *driver.ListOptions) (*driver.ListPage, error) {
	p.mu.Lock()
	p.inFlight++
	p.most = max(p.most, p.inFlight)
	first := p.arrived < p.overlap && o.Prefix >= barrierFrom
	if first {
		p.arrived++
		if p.arrived == p.overlap && !p.timedOut {
			close(p.release)
		}
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inFlight--
		p.mu.Unlock()
	}()
	if first {
		select {
		case <-p.release:
		case <-time.After(20 * time.Second):
			p.mu.Lock()
			if !p.timedOut { // the others need not wait as long
				p.timedOut = true
				close(p.release)
			}
			p.mu.Unlock()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if o.Prefix == p.failList {
		return nil, errInjected
	}
	return p.Driver.List(ctx, o)
}

func (p *passStore) DeleteBatch(ctx context.Context, names []string) error {
	p.mu.Lock()
	fail := p.failPass
	p.mu.Unlock()
	if fail && slices.ContainsFunc(names, func(n string) bool { return n >= barrierFrom }) {
		return errInjected
	}
	return p.Driver.(driver.BatchDeleter).DeleteBatch(ctx, names)
}

// passCache returns a cache of 256 shards over 20,000 preloaded entries
// (about 78 a shard, against a limit of 40: every shard culls) through p's
// store, and p.
func passCache(t *testing.T) (*cache.Cache, *passStore) {
	t.Helper()
	store := fmt.Sprintf("shards-pass-%d", time.Now().UnixNano())
	preload(t, store, 20_000)
	p := newPassStore(mem.Open(store))
	c, err := cache.New(p, cache.WithLocation("loc"), cache.WithMaxEntries(10_240), cache.WithCullShards(2))
	must(t, err)
	t.Cleanup(func() { c.Close() })
	return c, p
}

// A pass lists PassListers shards at once, never more: the first
// PassListers listings of the last quarter of the shards each wait until
// all of them are in flight (one
// lister at a time would wait 20 seconds on the first and fail). What it
// leaves is still the per-shard rule's (TestShardedMemoryAndCull and the
// cross-driver shard phase check that), here its count.
func TestShardedPassListsInParallel(t *testing.T) {
	c, p := passCache(t)
	before, err := c.Len(t.Context())
	must(t, err)
	p.arm(cache.PassListers)
	culled, err := c.Cull(t.Context())
	must(t, err)
	p.mu.Lock()
	most, timedOut := p.most, p.timedOut
	p.mu.Unlock()
	if timedOut || most != cache.PassListers {
		t.Errorf("a Cull of 256 shards had at most %d listings in flight at once (the first %d waited for each other: timed out %v); want %d",
			most, cache.PassListers, timedOut, cache.PassListers)
	}
	if after, _ := c.Len(t.Context()); culled == 0 || after != before-culled {
		t.Errorf("Cull removed %d of %d entries, and %d are left", culled, before, after)
	}
}

// A listing or a batch delete that fails ends the pass with its error,
// promptly, whatever the other listers are doing, and leaks no goroutine.
func TestShardedPassFailures(t *testing.T) {
	for _, tc := range []struct {
		what  string
		setup func(*passStore)
	}{
		{"a shard's listing fails", func(p *passStore) { p.failList = "loc/a7" }},
		{"a batch delete of the pass fails", func(p *passStore) { p.failPass = true }},
	} {
		t.Run(tc.what, func(t *testing.T) {
			c, p := passCache(t)
			tc.setup(p)
			done := make(chan error, 1)
			go func() {
				_, err := c.Cull(t.Context())
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), errInjected.Error()) {
					t.Errorf("Cull = %v, want the store's failure", err)
				}
			case <-time.After(time.Minute):
				t.Fatal("Cull did not return within a minute of a failed store call")
			}
			// The listers have returned: no listing is in flight.
			p.mu.Lock()
			inFlight := p.inFlight
			p.mu.Unlock()
			if inFlight != 0 {
				t.Errorf("%d listings still in flight after Cull returned", inFlight)
			}
		})
	}
}
