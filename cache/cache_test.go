package cache_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/cull"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/driver/counting"
	"github.com/blobcache/blobcache/drivers/mem"
)

// newCounted returns a cache over store, every driver call it makes
// counted; the counting wrapper keeps store's optional capabilities.
func newCounted(t testing.TB, store driver.Driver, opts ...cache.Option) (*cache.Cache, *counting.Counter) {
	t.Helper()
	d, n := counting.Wrap(store)
	c, err := cache.New(d, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, n
}

// failingReads fails every Read with err once err is set.
type failingReads struct {
	driver.Driver
	err error
}

func (d *failingReads) Read(ctx context.Context, name string, off, n int64) ([]byte, driver.Attributes, error) {
	if d.err != nil {
		return nil, driver.Attributes{}, d.err
	}
	return d.Driver.Read(ctx, name, off, n)
}

func names(t testing.TB, d driver.Driver, prefix string) []string {
	t.Helper()
	var out []string
	opts := &driver.ListOptions{Prefix: prefix}
	for {
		p, err := d.List(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range p.Objects {
			out = append(out, o.Name)
		}
		if p.NextPageToken == "" {
			return out
		}
		opts.PageToken = p.NextPageToken
	}
}

func TestObjectNameIsDjangoKeyHash(t *testing.T) {
	tests := []struct {
		opts []cache.Option
		key  string
		want string
	}{
		// Values from Python: hashlib.sha1(b":1:key").hexdigest() etc.
		{nil, "key", "87ab15d3080bbeb80cb7eff46064404aa1193cce"},
		{[]cache.Option{cache.WithLocation("/loc/")}, "key", "loc/87ab15d3080bbeb80cb7eff46064404aa1193cce"},
		{[]cache.Option{cache.WithKeyPrefix("p"), cache.WithVersion(2)}, "key", "9a04d12c53bdb6b11cc6edaf12b3ce7215c28551"},
		{[]cache.Option{cache.WithLocation("a/b")}, "ключ", "a/b/8254ba0ff71c792423392d82dcebcb3025b7e966"},
		{[]cache.Option{cache.WithKeyFunc(func(k, p string, v int) string { return ":1:" + strings.ToLower(k) })}, "KEY", "87ab15d3080bbeb80cb7eff46064404aa1193cce"},
	}
	for _, tt := range tests {
		c, err := cache.New(mem.New(), tt.opts...)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.ObjectName(tt.key); got != tt.want {
			t.Errorf("ObjectName(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestLocationValidation(t *testing.T) {
	for _, loc := range []string{"..", "a/../b", "a//b", "./a", "a/.", "bad\x00name", "a/\n"} {
		_, err := cache.New(mem.New(), cache.WithLocation(loc))
		if !errors.Is(err, cache.ErrInvalidOption) || !strings.Contains(err.Error(), "location") {
			t.Errorf("location %q: err = %v, want ErrInvalidOption naming location", loc, err)
		}
	}
	for loc, want := range map[string]string{"": "", "/": "", "cache": "cache/", "/cache/": "cache/", "a/b/": "a/b/"} {
		c, err := cache.New(mem.New(), cache.WithLocation(loc))
		if err != nil {
			t.Fatalf("location %q: %v", loc, err)
		}
		if c.Location() != want {
			t.Errorf("location %q: prefix %q, want %q", loc, c.Location(), want)
		}
	}
}

func TestBadOptionsNameTheOption(t *testing.T) {
	tests := map[string]cache.Option{
		"max_entries":    cache.WithMaxEntries(-1),
		"cull_frequency": cache.WithCullFrequency(-2),
		"timeout":        cache.WithDefaultTTL(-5 * time.Second),
		"cull_policy":    cache.WithCullPolicy(nil),
		"key_function":   cache.WithKeyFunc(nil),
	}
	for name, opt := range tests {
		_, err := cache.New(mem.New(), opt)
		if !errors.Is(err, cache.ErrInvalidOption) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// clock is a manual clock for expiry tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestExpiryDeletesOnRead(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	store := mem.New()
	c, err := cache.New(store, cache.WithClock(clk.Now), cache.WithDefaultTTL(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	must(t, c.Set(ctx, "short", []byte("1"), time.Second))
	must(t, c.Set(ctx, "default", []byte("2"), cache.DefaultTTL))
	must(t, c.Set(ctx, "forever", []byte("3"), cache.NoExpiry))
	clk.Advance(time.Second)
	if _, err := c.Get(ctx, "short"); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get expired: %v", err)
	}
	if n := len(names(t, store, "")); n != 2 {
		t.Fatalf("expired entry not deleted on read: %d objects", n)
	}
	clk.Advance(time.Minute)
	if ok, _ := c.Has(ctx, "default"); ok {
		t.Fatal("default TTL (1m) entry still live after 61s")
	}
	clk.Advance(100 * 365 * 24 * time.Hour)
	if v, err := c.Get(ctx, "forever"); err != nil || string(v) != "3" {
		t.Fatalf("NoExpiry entry: %q, %v", v, err)
	}
	if err := c.Set(ctx, "bad", nil, -2*time.Second); !errors.Is(err, cache.ErrInvalidTTL) {
		t.Fatalf("negative TTL: %v", err)
	}
	// Touch revives the TTL; Incr keeps it.
	must(t, c.Set(ctx, "n", []byte("1"), 10*time.Second))
	clk.Advance(9 * time.Second)
	if ok, err := c.Touch(ctx, "n", 10*time.Second); !ok || err != nil {
		t.Fatalf("Touch: %v %v", ok, err)
	}
	clk.Advance(9 * time.Second)
	if n, err := c.Incr(ctx, "n", 1); n != 2 || err != nil {
		t.Fatalf("Incr: %d %v", n, err)
	}
	clk.Advance(2 * time.Second)
	if _, err := c.Incr(ctx, "n", 1); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Incr kept no expiry: %v", err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// reference counts entries on every write, as django-s3-cache did, and culls with
// the same policy: the outcome the cache's counter must reproduce.
type reference struct {
	live    map[string]bool
	max     int
	freq    int
	culls   int
	maxSeen int
}

func (r *reference) beforeWrite() {
	if r.max > 0 && len(r.live) >= r.max {
		var es []cull.Entry
		for n := range r.live {
			es = append(es, cull.Entry{Name: n})
		}
		for _, n := range cull.Frequency(r.freq).Cull(es) {
			delete(r.live, n)
		}
		r.culls++
	}
}

func TestCullingEqualsCountingEveryWrite(t *testing.T) {
	ctx := context.Background()
	for _, freq := range []int{3, 0, 1, 7} {
		t.Run(fmt.Sprint("cull_frequency=", freq), func(t *testing.T) {
			store := mem.New()
			// A foreign object beside the location must not count or be culled.
			must(t, store.Write(ctx, "locx/foreign", strings.NewReader("x"), &driver.WriteOptions{}))
			must(t, store.Write(ctx, "other", strings.NewReader("x"), &driver.WriteOptions{}))
			c, cd := newCounted(t, store, cache.WithLocation("loc"), cache.WithMaxEntries(30), cache.WithCullFrequency(freq))
			ref := &reference{live: map[string]bool{}, max: 30, freq: freq}
			rng := rand.New(rand.NewPCG(1, uint64(freq)))
			for i := range 3000 {
				key := fmt.Sprint("k", rng.IntN(120))
				name := c.ObjectName(key)
				switch op := rng.IntN(10); {
				case op < 6:
					ref.beforeWrite()
					ref.live[name] = true
					must(t, c.Set(ctx, key, []byte("v"), cache.NoExpiry))
				case op < 8:
					ref.beforeWrite()
					added, err := c.Add(ctx, key, []byte("v"), cache.NoExpiry)
					must(t, err)
					if added == ref.live[name] {
						t.Fatalf("op %d: Add(%s) = %v but reference live = %v", i, key, added, ref.live[name])
					}
					ref.live[name] = true
				default:
					deleted, err := c.Delete(ctx, key)
					must(t, err)
					if deleted != ref.live[name] {
						t.Fatalf("op %d: Delete(%s) = %v, reference live = %v", i, key, deleted, ref.live[name])
					}
					delete(ref.live, name)
				}
				got := names(t, store, "loc/")
				want := make([]string, 0, len(ref.live))
				for n := range ref.live {
					want = append(want, n)
				}
				slices.Sort(want)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("op %d: entries differ from counting on every write (-want +got):\n%s", i, diff)
				}
			}
			// The test's own listings after each op are not the cache's; subtract them.
			cacheLists := cd.Counts().Lists
			t.Logf("3000 ops, %d culls, %d cache LISTs", ref.culls, cacheLists)
			if ref.culls == 0 {
				t.Fatal("the sequence never culled: test is too weak")
			}
			if maxLists := int64(ref.culls + 10); cacheLists > maxLists {
				t.Errorf("%d LISTs for %d culls, want at most %d", cacheLists, ref.culls, maxLists)
			}
			if got := names(t, store, "locx/"); len(got) != 1 {
				t.Errorf("foreign object culled: %v", got)
			}
		})
	}
}

// TestSteadyStateListing is the steady-state run: 10,000 Sets of random
// keys from a keyspace of 3,000, max_entries 300, cull_frequency 3.
func TestSteadyStateListing(t *testing.T) {
	ctx := context.Background()
	for _, procs := range []int{1, 4} {
		t.Run(fmt.Sprint("caches=", procs), func(t *testing.T) {
			store := mem.New()
			var caches []*cache.Cache
			var counters []*counting.Counter
			for range procs {
				// Separate Cache values over one store behave as separate
				// processes: each has its own counter.
				c, cd := newCounted(t, store, cache.WithLocation("steady"), cache.WithMaxEntries(300))
				caches = append(caches, c)
				counters = append(counters, cd)
			}
			rng := rand.New(rand.NewPCG(7, 7))
			maxSeen := 0
			const sets = 10_000
			for i := range sets {
				c := caches[i%procs]
				must(t, c.Set(ctx, fmt.Sprint("key-", rng.IntN(3000)), []byte("v"), cache.NoExpiry))
				{
					if n := len(names(t, store, "steady/")); n > maxSeen {
						maxSeen = n
					}
				}
			}
			var lists int64
			for _, cd := range counters {
				lists += cd.Counts().Lists
			}
			perSet := float64(lists) / sets
			t.Logf("%d cache(s): %d LIST requests for %d Sets = %.4f per Set; max entries observed %d", procs, lists, sets, perSet, maxSeen)
			limit, maxAllowed := 0.02, 300
			if procs > 1 {
				limit, maxAllowed = 0.1, 375
			}
			if perSet > limit {
				t.Errorf("LISTs per Set = %.4f, want <= %v", perSet, limit)
			}
			if maxSeen > maxAllowed {
				t.Errorf("max entries %d, want <= %d", maxSeen, maxAllowed)
			}
		})
	}
}

func TestStorageErrorsAreReturned(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("disk on fire")
	store := &failingReads{Driver: mem.New()}
	c, err := cache.New(store)
	if err != nil {
		t.Fatal(err)
	}
	must(t, c.Set(ctx, "k", []byte("v"), cache.DefaultTTL))
	store.err = boom
	for name, err := range map[string]error{
		"Get":     func() error { _, err := c.Get(ctx, "k"); return err }(),
		"Has":     func() error { _, err := c.Has(ctx, "k"); return err }(),
		"Incr":    func() error { _, err := c.Incr(ctx, "k", 1); return err }(),
		"Touch":   func() error { _, err := c.Touch(ctx, "k", 0); return err }(),
		"Delete":  func() error { _, err := c.Delete(ctx, "k"); return err }(),
		"GetMany": func() error { _, err := c.GetMany(ctx, []string{"k"}); return err }(),
	} {
		var op *cache.OpError
		if !errors.Is(err, boom) || errors.Is(err, cache.ErrMiss) || !errors.As(err, &op) {
			t.Errorf("%s: err = %v, want the storage error, not a miss", name, err)
		}
	}
}

func TestCorruptEntryIsMissAndDeleted(t *testing.T) {
	ctx := context.Background()
	store := mem.New()
	c, err := cache.New(store)
	must(t, err)
	for _, junk := range []string{"", "garbage", "\x80\x04pickle", "BCE1\x09"} {
		must(t, store.Write(ctx, c.ObjectName("k"), strings.NewReader(junk), &driver.WriteOptions{}))
		if _, err := c.Get(ctx, "k"); !errors.Is(err, cache.ErrMiss) {
			t.Fatalf("Get corrupt %q: %v", junk, err)
		}
		if n := len(names(t, store, "")); n != 0 {
			t.Fatalf("corrupt entry %q not deleted", junk)
		}
	}
}

func TestGetOrSetFillsOncePerKey(t *testing.T) {
	ctx := context.Background()
	c, err := cache.New(mem.New())
	must(t, err)
	var fills atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]string, 32)
	for i := range 32 {
		wg.Go(func() {
			v, err := c.GetOrSet(ctx, "k", cache.DefaultTTL, func(context.Context) ([]byte, error) {
				fills.Add(1)
				<-release
				return []byte("filled"), nil
			})
			if err != nil {
				t.Error(err)
			}
			results[i] = string(v)
		})
	}
	time.Sleep(50 * time.Millisecond) // let the callers pile up on the fill
	close(release)
	wg.Wait()
	if fills.Load() != 1 {
		t.Errorf("fill ran %d times, want 1", fills.Load())
	}
	for i, r := range results {
		if r != "filled" {
			t.Fatalf("caller %d got %q", i, r)
		}
	}
	// A fill error is returned and nothing is stored.
	_, err = c.GetOrSet(ctx, "other", 0, func(context.Context) ([]byte, error) { return nil, io.ErrUnexpectedEOF })
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("fill error: %v", err)
	}
	if ok, _ := c.Has(ctx, "other"); ok {
		t.Fatal("failed fill stored a value")
	}
}

type point struct {
	X, Y int
	Tag  string
}

func TestTyped(t *testing.T) {
	ctx := context.Background()
	c, err := cache.New(mem.New())
	must(t, err)
	for name, tc := range map[string]*cache.Typed[point]{
		"json": cache.NewTyped[point](c, nil),
		"gob":  cache.NewTyped[point](c, cache.Gob[point]{}),
	} {
		want := point{1, 2, name}
		must(t, tc.Set(ctx, name, want, cache.DefaultTTL))
		got, err := tc.Get(ctx, name)
		if err != nil || got != want {
			t.Fatalf("%s: got %+v, %v", name, got, err)
		}
		// A value that is not a point is a miss and is deleted.
		must(t, c.Set(ctx, name, []byte("\x00not a point"), cache.DefaultTTL))
		if _, err := tc.Get(ctx, name); !errors.Is(err, cache.ErrMiss) {
			t.Fatalf("%s: undecodable value: %v", name, err)
		}
		if ok, _ := c.Has(ctx, name); ok {
			t.Fatalf("%s: undecodable value not deleted", name)
		}
	}
}

func TestClosed(t *testing.T) {
	c, err := cache.New(mem.New())
	must(t, err)
	must(t, c.Close())
	if _, err := c.Get(context.Background(), "k"); !errors.Is(err, cache.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := c.Close(); !errors.Is(err, cache.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

func sha1Hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// inFlightDriver records the most writes it had in flight at once. Each
// write waits for a moment before it goes on, so that writes issued
// concurrently overlap.
type inFlightDriver struct {
	driver.Driver
	now, most atomic.Int64
}

func (d *inFlightDriver) Write(ctx context.Context, name string, body io.Reader, opts *driver.WriteOptions) error {
	n := d.now.Add(1)
	defer d.now.Add(-1)
	for m := d.most.Load(); n > m && !d.most.CompareAndSwap(m, n); m = d.most.Load() {
	}
	time.Sleep(time.Millisecond)
	return d.Driver.Write(ctx, name, body, opts)
}

// TestSetManyConcurrency: near the limit, a SetMany of new keys writes one
// key at a time in key order (so culling is what that sequence of Sets would
// do), while a SetMany that only overwrites known entries adds none and stays
// concurrent, with no listing.
func TestSetManyConcurrency(t *testing.T) {
	ctx := t.Context()
	d := &inFlightDriver{Driver: mem.New()}
	c, err := cache.New(d, cache.WithMaxEntries(150))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	items := map[string][]byte{}
	for i := range 100 {
		items[fmt.Sprintf("k%03d", i)] = []byte("v")
	}
	if err := c.SetMany(ctx, items, cache.NoExpiry); err != nil {
		t.Fatal(err)
	}
	if got := d.most.Load(); got != 1 {
		t.Errorf("SetMany of 100 new keys near max_entries 150: %d writes in flight at once, want 1", got)
	}
	lists := c.Stats().Lists
	d.most.Store(0)
	if err := c.SetMany(ctx, items, cache.NoExpiry); err != nil {
		t.Fatal(err)
	}
	if got := d.most.Load(); got < 2 {
		t.Errorf("SetMany overwriting 100 known keys: %d writes in flight at once, want several", got)
	}
	if got := c.Stats().Lists - lists; got != 0 {
		t.Errorf("SetMany overwriting 100 known keys listed %d times, want 0", got)
	}
	if n, err := c.Len(ctx); err != nil || n != 100 {
		t.Errorf("Len = %d, %v; want 100", n, err)
	}
}

// hidingDriver lists nothing, as MinIO lists nothing under a location that
// an object named like it hides.
type hidingDriver struct{ driver.Driver }

func (hidingDriver) List(context.Context, *driver.ListOptions) (*driver.ListPage, error) {
	return &driver.ListPage{}, nil
}

// On a store that hides the entries, Clear and Len say so, and writes do
// not list on every Set: the hidden listing counts as an empty one, so the
// cache lists again only when its own writes could have filled it anew.
func TestHiddenEntriesListNotOnEveryWrite(t *testing.T) {
	ctx := t.Context()
	c, cd := newCounted(t, hidingDriver{mem.New()}, cache.WithLocation("loc"), cache.WithMaxEntries(10))
	for i := range 100 {
		must(t, c.Set(ctx, fmt.Sprint(i), []byte("v"), cache.DefaultTTL))
	}
	// The first write lists; after that, at most one listing per 10 own new
	// entries (the limit), never one per write.
	if n := cd.Counts().Lists; n < 2 || n > 12 {
		t.Errorf("100 Sets on a hiding store made %d LISTs, want 2 to 12 (one per max_entries writes)", n)
	}
	if got := c.Stats().Errors; got < 1 {
		t.Errorf("Stats().Errors = %d, want the hidden listings counted", got)
	}
	if _, err := c.Len(ctx); !errors.Is(err, cache.ErrHiddenEntries) {
		t.Errorf("Len = %v, want ErrHiddenEntries", err)
	}
	if err := c.Clear(ctx); !errors.Is(err, cache.ErrHiddenEntries) {
		t.Errorf("Clear = %v, want ErrHiddenEntries", err)
	}
	if v, err := c.Get(ctx, "99"); err != nil || string(v) != "v" {
		t.Errorf("Get after the refused Clear = %q, %v; want the entry kept", v, err)
	}
}
