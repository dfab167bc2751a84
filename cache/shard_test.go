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

	"github.com/google/go-cmp/cmp"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/cull"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/mem"
)

// The automatic choice culls as one up to max_entries 10,000, and above by
// the fewest shards of at most 4096 entries; WithCullShards (cull_shards)
// overrides it, from 0 to 8 digits.
func TestCullShardsChoice(t *testing.T) {
	// The sample: the fewest first shards holding 4096 entries at
	// max_entries (half of max_entries when less).
	for _, tc := range []struct{ maxEntries, digits, sample int }{
		{300, 0, 1}, {10_000, 0, 1}, {10_001, 1, 7}, {65_536, 1, 1}, {65_537, 2, 16}, {100_000, 2, 11},
		{1_000_000, 2, 2}, {10_000_000, 3, 2}, {100_000_000, 4, 3},
	} {
		c, err := cache.New(mem.New(), cache.WithMaxEntries(tc.maxEntries))
		must(t, err)
		if got, smp := cache.ShardDigits(c), cache.SampleShards(c); got != tc.digits || smp != tc.sample {
			t.Errorf("max_entries %d: %d shard digits, a sample of %d; want %d and %d", tc.maxEntries, got, smp, tc.digits, tc.sample)
		}
		c.Close()
	}
	for _, tc := range []struct{ maxEntries, digits, sample int }{{64, 1, 8}, {0, 1, 1}, {1600, 1, 8}, {300, 2, 128}} {
		c, err := cache.New(mem.New(), cache.WithMaxEntries(tc.maxEntries), cache.WithCullShards(tc.digits))
		must(t, err)
		if smp := cache.SampleShards(c); smp != tc.sample {
			t.Errorf("max_entries %d, cull_shards %d: a sample of %d shards, want %d", tc.maxEntries, tc.digits, smp, tc.sample)
		}
		c.Close()
	}
	c, err := cache.Open(t.Context(), "mem://?max_entries=300&cull_shards=2")
	must(t, err)
	if got := cache.ShardDigits(c); got != 2 {
		t.Errorf("cull_shards=2: %d digits", got)
	}
	c.Close()
	// More shards than entries is refused: cull_shards=8 is 2^32 prefixes.
	for _, bad := range []string{"9", "-1", "x", "8", "3&max_entries=300", "2&max_entries=0"} {
		_, err := cache.Open(t.Context(), "mem://?cull_shards="+bad)
		if !errors.Is(err, cache.ErrInvalidOption) || !strings.Contains(err.Error(), "cull_shards") {
			t.Errorf("cull_shards=%s: %v, want ErrInvalidOption naming it", bad, err)
		}
	}
}

// gated is a store whose listings of prefixes other than the allowed ones
// wait until the gate opens (or their context ends), and which counts its
// calls: listings of allowed prefixes in lists, the others in held (a
// background pass may start one of those at any time, so they are counted
// apart from what a caller did).
type gated struct {
	driver.Driver
	allowed []string
	open    chan struct{}
	mu      sync.Mutex
	lists   map[string]int
	held    map[string]int
	writes  int
	batches int
}

func (g *gated) List(ctx context.Context, o *driver.ListOptions) (*driver.ListPage, error) {
	allowed := slices.Contains(g.allowed, o.Prefix)
	g.mu.Lock()
	if allowed {
		g.lists[o.Prefix]++
	} else {
		if g.held == nil {
			g.held = map[string]int{}
		}
		g.held[o.Prefix]++
	}
	g.mu.Unlock()
	if !allowed {
		select {
		case <-g.open:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Driver.List(ctx, o)
}

func (g *gated) DeleteBatch(ctx context.Context, names []string) error {
	g.mu.Lock()
	g.batches++
	g.mu.Unlock()
	return g.Driver.(driver.BatchDeleter).DeleteBatch(ctx, names)
}

// heldLists returns how often each gated prefix was listed.
func (g *gated) heldLists() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := map[string]int{}
	for k, v := range g.held {
		l[k] = v
	}
	return l
}

// snapshot returns and resets the listings of allowed prefixes and the
// batch deletes.
func (g *gated) snapshot() (lists map[string]int, batches int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := map[string]int{}
	for k, v := range g.lists {
		l[k] = v
	}
	g.lists = map[string]int{}
	b := g.batches
	g.batches = 0
	return l, b
}

// preload writes n entries under location "loc" of the named mem store,
// through a cache that never culls.
func preload(t *testing.T, store string, n int) {
	t.Helper()
	pre, err := cache.New(mem.Open(store), cache.WithLocation("loc"), cache.WithMaxEntries(0))
	must(t, err)
	items := map[string][]byte{}
	for i := range n {
		items[fmt.Sprint("pre-", i)] = []byte("v")
	}
	must(t, pre.SetMany(t.Context(), items, cache.NoExpiry))
}

// byShard groups entry names by their first hex digit after "loc/".
func byShard(names []string) map[byte][]cull.Entry {
	out := map[byte][]cull.Entry{}
	for _, n := range names {
		s := n[len("loc/")]
		out[s] = append(out[s], cull.Entry{Name: n})
	}
	return out
}

// A write that finds a sharded cache full lists and culls its sample only
// (the first 8 of 16 shards here: a LIST each, one batch delete) and returns while the other shards are
// still to be culled; the background pass then culls each of them by the
// policy, from its own listing, leaving exactly the entries that rule
// leaves; the counter holds the sample's names only.
func TestShardedCullWriteIsBounded(t *testing.T) {
	ctx := t.Context()
	store := fmt.Sprintf("shards-%d", time.Now().UnixNano())
	preload(t, store, 2000) // about 125 a shard, against a limit of 100
	d := mem.Open(store)
	sample := []string{"loc/0", "loc/1", "loc/2", "loc/3", "loc/4", "loc/5", "loc/6", "loc/7"} // 8 shards of 100 at max_entries
	g := &gated{Driver: d, allowed: sample, open: make(chan struct{}), lists: map[string]int{}}
	c, err := cache.New(g, cache.WithLocation("loc"), cache.WithMaxEntries(1600), cache.WithCullFrequency(4), cache.WithCullShards(1))
	must(t, err)
	defer c.Close()

	must(t, c.Set(ctx, "new", []byte("v"), cache.NoExpiry))
	// The Set returned although every other shard's listing is blocked.
	lists, batches := g.snapshot()
	wantLists := map[string]int{}
	for _, p := range sample {
		wantLists[p] = 1
	}
	if diff := cmp.Diff(wantLists, lists); diff != "" || batches != 1 {
		t.Errorf("the Set listed %v and sent %d batch deletes; want one listing of each sample shard and one batch (-want +got):\n%s", lists, batches, diff)
	}
	if s := c.Stats(); s.Culls != 0 {
		t.Errorf("Stats().Culls = %d before the pass ended, want 0", s.Culls)
	}
	before := allNames(t, d)
	want := map[string]bool{}
	shards := byShard(entryOnly(before))
	for s, entries := range shards {
		drop := map[string]bool{}
		if s >= '8' {
			for _, n := range cull.Frequency(4).Cull(entries) {
				drop[n] = true
			}
		}
		for _, e := range entries {
			if !drop[e.Name] {
				want[e.Name] = true
			}
		}
	}
	inSample := 0
	for s := byte('0'); s < '8'; s++ {
		inSample += len(shards[s])
	}
	if n := cache.TrackedNames(c); n > inSample+1 {
		t.Errorf("the counter holds %d names, more than the sample's %d", n, inSample)
	}
	close(g.open)
	must(t, c.WaitCulls(ctx))
	got := map[string]bool{}
	for _, n := range entryOnly(allNames(t, d)) {
		got[n] = true
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries after the pass differ from the per-shard rule (-want +got):\n%s", diff)
	}
	s := c.Stats()
	if s.Culls != 1 || int(s.EntriesCulled) != 2001-len(got) {
		t.Errorf("Stats: %d culls, %d entries culled; want 1 and %d", s.Culls, s.EntriesCulled, 2001-len(got))
	}
	lists = g.heldLists()
	for _, p := range []string{"loc/8", "loc/f"} {
		if lists[p] != 1 {
			t.Errorf("the pass listed %s %d times, want once (all: %v)", p, lists[p], lists)
		}
	}
}

// allNames lists every object of d, page after page.
func allNames(t *testing.T, d driver.Driver) []string {
	t.Helper()
	var names []string
	o := &driver.ListOptions{}
	for {
		page, err := d.List(t.Context(), o)
		must(t, err)
		for _, obj := range page.Objects {
			names = append(names, obj.Name)
		}
		if page.NextPageToken == "" {
			return names
		}
		o.PageToken = page.NextPageToken
	}
}

func entryOnly(names []string) []string {
	return slices.DeleteFunc(names, func(n string) bool { return !strings.HasPrefix(n, "loc/") || len(n) != len("loc/")+40 })
}

// Close stops a background pass that is waiting on the store, and returns.
func TestShardedCullCloseStopsPass(t *testing.T) {
	store := fmt.Sprintf("shards-close-%d", time.Now().UnixNano())
	preload(t, store, 2000)
	g := &gated{Driver: mem.Open(store), allowed: []string{"loc/0", "loc/1", "loc/2", "loc/3", "loc/4", "loc/5", "loc/6", "loc/7"}, open: make(chan struct{}), lists: map[string]int{}}
	c, err := cache.New(g, cache.WithLocation("loc"), cache.WithMaxEntries(1600), cache.WithCullShards(1))
	must(t, err)
	must(t, c.Set(t.Context(), "new", []byte("v"), cache.NoExpiry))
	done := make(chan error)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(time.Minute):
		t.Fatal("Close did not return while the pass waited on a listing")
	}
	if s := c.Stats(); s.Errors != 0 {
		t.Errorf("a pass stopped by Close counted %d errors", s.Errors)
	}
}

// A large sharded cache holds one shard's names, whatever the location
// holds: through writes, Len, Cull and Clear. Cull culls every shard by
// the rule.
func TestShardedMemoryAndCull(t *testing.T) {
	ctx := t.Context()
	store := fmt.Sprintf("shards-mem-%d", time.Now().UnixNano())
	preload(t, store, 20_000)
	c, err := cache.New(mem.Open(store), cache.WithLocation("loc"), cache.WithMaxEntries(1_000_000), cache.WithCullFrequency(3))
	must(t, err)
	defer c.Close()
	if d := cache.ShardDigits(c); d != 2 {
		t.Fatalf("%d shard digits, want 2", d)
	}
	for i := range 100 {
		must(t, c.Set(ctx, fmt.Sprint("k", i), []byte("v"), cache.NoExpiry))
	}
	n, err := c.Len(ctx)
	must(t, err)
	if n != 20_100 {
		t.Errorf("Len = %d, want 20100", n)
	}
	if tracked := cache.TrackedNames(c); tracked > 400 {
		t.Errorf("the counter holds %d names of 20100 (its sample, 2 shards of 256, is about 157)", tracked)
	}
	// Cull: every shard by the rule, ceil(n/3) of each.
	all := entryOnly(allNames(t, c.Driver()))
	want := 0
	for _, entries := range byShard2(all) {
		want += cull.Count(len(entries), 3)
	}
	culled, err := c.Cull(ctx)
	must(t, err)
	if culled != want {
		t.Errorf("Cull removed %d, want %d (ceil(n/3) of each of 256 shards)", culled, want)
	}
	if n, _ := c.Len(ctx); n != 20_100-want {
		t.Errorf("Len after Cull = %d, want %d", n, 20_100-want)
	}
	must(t, c.Clear(ctx))
	if n, _ := c.Len(ctx); n != 0 || cache.TrackedNames(c) != 0 {
		t.Errorf("after Clear: Len %d, counter %d names", n, cache.TrackedNames(c))
	}
}

// byShard2 groups entry names by their first two hex digits after "loc/".
func byShard2(names []string) map[string][]cull.Entry {
	out := map[string][]cull.Entry{}
	for _, n := range names {
		s := n[len("loc/") : len("loc/")+2]
		out[s] = append(out[s], cull.Entry{Name: n})
	}
	return out
}
