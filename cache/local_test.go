package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
)

// TestLocalTierHits: a second read of a value is served from memory with no
// request; a read of another key, or after the staleness bound, asks the
// store.
func TestLocalTierHits(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	c := fleet(t, 1, cache.WithLocalTier(1<<20, time.Second), clock.option())[0]
	must(t, c.Set(ctx, "k", []byte("v"), time.Hour))
	for range 3 {
		if v, err := c.Get(ctx, "k"); string(v) != "v" || err != nil {
			t.Fatalf("Get = %q, %v", v, err)
		}
	}
	if s := c.Stats(); s.Reads != 1 || s.LocalHits != 2 || s.LocalMisses != 1 || s.Hits != 3 {
		t.Errorf("3 Gets: %d reads, %d local hits, %d local misses, %d hits; want 1, 2, 1, 3", s.Reads, s.LocalHits, s.LocalMisses, s.Hits)
	}
	v, _ := c.Get(ctx, "k")
	v[0] = 'X' // the caller owns what it gets
	if v, _ := c.Get(ctx, "k"); string(v) != "v" {
		t.Errorf("a caller's change to a returned value reached the tier: %q", v)
	}
	clock.add(time.Second)
	before := c.Stats().Reads
	c.Get(ctx, "k")
	if c.Stats().Reads != before+1 {
		t.Errorf("a copy older than the staleness bound was served")
	}
	// GetMany and GetOrSet read through the tier too.
	got, err := c.GetMany(ctx, []string{"k"})
	if err != nil || string(got["k"]) != "v" {
		t.Fatal(got, err)
	}
	before = c.Stats().Reads
	if v, err := c.GetOrSet(ctx, "k", time.Hour, fillWith("other")); string(v) != "v" || err != nil {
		t.Fatal(v, err)
	}
	if c.Stats().Reads != before {
		t.Errorf("GetOrSet of a value in the tier read the store")
	}
}

// TestLocalTierStaleness: another process's write is seen once the
// staleness bound has passed since the copy was read, not before and not
// later; a copy never outlives its entry's expiry.
func TestLocalTierStaleness(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	cs := fleet(t, 2, cache.WithLocalTier(1<<20, 500*time.Millisecond), clock.option())
	a, b := cs[0], cs[1]
	must(t, b.Set(ctx, "k", []byte("v1"), time.Hour))
	if v, _ := a.Get(ctx, "k"); string(v) != "v1" {
		t.Fatal(string(v))
	}
	must(t, b.Set(ctx, "k", []byte("v2"), time.Hour))
	clock.add(499 * time.Millisecond)
	if v, _ := a.Get(ctx, "k"); string(v) != "v1" {
		t.Errorf("within the staleness bound a = %q, want the copy v1", v)
	}
	clock.add(time.Millisecond)
	if v, _ := a.Get(ctx, "k"); string(v) != "v2" {
		t.Errorf("at the staleness bound a = %q, want b's v2", v)
	}

	must(t, b.Set(ctx, "short", []byte("s"), 100*time.Millisecond))
	if v, _ := a.Get(ctx, "short"); string(v) != "s" {
		t.Fatal(string(v))
	}
	clock.add(100 * time.Millisecond)
	if _, err := a.Get(ctx, "short"); !errors.Is(err, cache.ErrMiss) {
		t.Errorf("a copy outlived its entry's expiry: %v", err)
	}
}

// TestLocalTierOwnChanges: a Cache's own writes, deletes, touches,
// increments, culls and clears are never served late from its tier; Add,
// Incr and Has ask the store.
func TestLocalTierOwnChanges(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	cs := fleet(t, 2, cache.WithLocalTier(1<<20, time.Hour), clock.option(), cache.WithMaxEntries(0))
	a, b := cs[0], cs[1]
	read := func(key string) string {
		t.Helper()
		v, err := a.Get(ctx, key)
		if errors.Is(err, cache.ErrMiss) {
			return "(miss)"
		}
		must(t, err)
		return string(v)
	}
	steps := []struct {
		what string
		do   func()
		want string
	}{
		{"Set", func() { must(t, a.Set(ctx, "k", []byte("2"), time.Hour)) }, "2"},
		{"Incr", func() { _, err := a.Incr(ctx, "k", 3); must(t, err) }, "5"},
		{"Increment", func() { _, err := a.Increment(ctx, "k", 1, 0, time.Hour); must(t, err) }, "6"},
		{"Touch", func() { _, err := a.Touch(ctx, "k", time.Minute); must(t, err) }, "6"},
		{"SetMany", func() { must(t, a.SetMany(ctx, map[string][]byte{"k": []byte("7")}, time.Hour)) }, "7"},
		{"Delete", func() { _, err := a.Delete(ctx, "k"); must(t, err) }, "(miss)"},
		{"Add", func() { _, err := a.Add(ctx, "k", []byte("8"), time.Hour); must(t, err) }, "8"},
		{"DeleteMany", func() { must(t, a.DeleteMany(ctx, []string{"k"})) }, "(miss)"},
		{"Set again", func() { must(t, a.Set(ctx, "k", []byte("9"), time.Hour)) }, "9"},
		{"Clear", func() { must(t, a.Clear(ctx)) }, "(miss)"},
	}
	for _, s := range steps {
		read("k") // the copy is in the tier
		s.do()
		if got := read("k"); got != s.want {
			t.Errorf("after a's %s, a's Get = %s, want %s", s.what, got, s.want)
		}
	}

	// Add, Incr and Has ask the store, whatever the tier holds.
	must(t, a.Set(ctx, "n", []byte("1"), time.Hour))
	read("n")
	must(t, b.Set(ctx, "n", []byte("10"), time.Hour))
	if n, err := a.Incr(ctx, "n", 1); n != 11 || err != nil {
		t.Errorf("Incr with a stale copy in the tier = %d, %v; want 11 from the store", n, err)
	}
	read("n")
	if _, err := b.Delete(ctx, "n"); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.Has(ctx, "n"); ok || err != nil {
		t.Errorf("Has = %v, %v after another's Delete; want false from the store", ok, err)
	}
	if ok, err := a.Add(ctx, "n", []byte("x"), time.Hour); !ok || err != nil {
		t.Errorf("Add after another's Delete = %v, %v; want true from the store", ok, err)
	}
}

// TestLocalTierCull: entries a cull deletes leave the tier.
func TestLocalTierCull(t *testing.T) {
	ctx := t.Context()
	c := fleet(t, 1, cache.WithLocalTier(1<<20, time.Hour), cache.WithMaxEntries(4), cache.WithCullFrequency(0))[0]
	for i := range 4 {
		must(t, c.Set(ctx, fmt.Sprint(i), []byte("v"), time.Hour))
		c.Get(ctx, fmt.Sprint(i))
	}
	must(t, c.Set(ctx, "new", []byte("v"), time.Hour)) // culls all 4
	for i := range 4 {
		if _, err := c.Get(ctx, fmt.Sprint(i)); !errors.Is(err, cache.ErrMiss) {
			t.Errorf("Get(%d) after the cull that deleted it = %v, want a miss", i, err)
		}
	}
}

// TestLocalTierReadYourWrites: one writer and many readers of one key in
// one Cache: once a Set returns, no Get returns an older value, although
// readers keep filling the tier with what they read.
func TestLocalTierReadYourWrites(t *testing.T) {
	ctx := t.Context()
	c := fleet(t, 1, cache.WithLocalTier(1<<20, time.Hour))[0]
	must(t, c.Set(ctx, "k", []byte("0"), time.Hour))
	var latest sync.Map // the last value whose Set returned
	latest.Store("k", 0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				floor, _ := latest.Load("k")
				v, err := c.Get(ctx, "k")
				if err != nil {
					t.Error(err)
					return
				}
				if n, _ := strconv.Atoi(string(v)); n < floor.(int) {
					t.Errorf("Get = %d after Set(%d) returned", n, floor)
					return
				}
			}
		})
	}
	waitFor(t, "the readers to hit the tier", func() bool { return c.Stats().LocalHits > 100 })
	for i := 1; i <= 500; i++ {
		must(t, c.Set(ctx, "k", []byte(strconv.Itoa(i)), time.Hour))
		latest.Store("k", i)
		if v, _ := c.Get(ctx, "k"); string(v) != strconv.Itoa(i) {
			t.Fatalf("the writer's own Get after Set(%d) = %s", i, v)
		}
		if i%25 == 0 {
			// So that the readers race the Sets however loaded the machine
			// is (on two busy cores they once ran not at all while the 500
			// Sets did): the tier serves them between every 25 Sets.
			hits := c.Stats().LocalHits
			waitFor(t, "the readers to hit the tier again", func() bool { return c.Stats().LocalHits > hits })
		}
	}
	close(stop)
	wg.Wait()
}

// TestLocalTierBound: the tier stays within its bytes, evicting; a value of
// more than half of it is never kept.
func TestLocalTierBound(t *testing.T) {
	ctx := t.Context()
	const tier = 64 << 10
	c := fleet(t, 1, cache.WithLocalTier(tier, time.Hour), cache.WithMaxEntries(0))[0]
	value := bytes.Repeat([]byte("x"), 1000)
	for i := range 500 {
		must(t, c.Set(ctx, fmt.Sprint(i), value, time.Hour))
		c.Get(ctx, fmt.Sprint(i))
	}
	waitFor(t, "evictions", func() bool { s := c.Stats(); return s.LocalEvictions > 0 && s.LocalBytes <= tier })
	if s := c.Stats(); s.LocalBytes > tier || s.LocalBytes < tier/2 {
		t.Errorf("a tier of %d bytes holds %d after 500 KB of reads", tier, s.LocalBytes)
	}
	must(t, c.Set(ctx, "big", bytes.Repeat([]byte("b"), tier/2), time.Hour))
	c.Get(ctx, "big")
	before := c.Stats().Reads
	c.Get(ctx, "big")
	if c.Stats().Reads != before+1 {
		t.Errorf("a value of half the tier was kept in it")
	}
}

func TestLocalTierOptions(t *testing.T) {
	ctx := t.Context()
	for _, bad := range []cache.Option{cache.WithLocalTier(0, time.Second), cache.WithLocalTier(1<<20, 0), cache.WithLocalTier(-1, -1)} {
		if _, err := cache.Open(ctx, "mem://", bad); !errors.Is(err, cache.ErrInvalidOption) {
			t.Errorf("bad WithLocalTier: %v, want ErrInvalidOption", err)
		}
	}
	for _, bad := range []string{"mem://?local_tier=0", "mem://?local_tier=lots", "mem://?local_staleness=1s", "mem://?local_tier=1MiB&local_staleness=-1s"} {
		if _, err := cache.Open(ctx, bad); !errors.Is(err, cache.ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrInvalidOption", bad, err)
		}
	}
	c, err := cache.Open(ctx, "mem://?local_tier=8MiB")
	must(t, err)
	defer c.Close()
	if o := cache.Observe(c); o.LocalBytes != 8<<20 || o.LocalStaleness != cache.DefaultLocalStaleness {
		t.Errorf("local_tier=8MiB: %d bytes, staleness %v", o.LocalBytes, o.LocalStaleness)
	}
}

// A local tier serves a value read before from memory, without a request,
// for at most its staleness bound.
func ExampleWithLocalTier() {
	ctx := context.Background()
	c, err := cache.Open(ctx, "mem://example-local?local_tier=64MiB&local_staleness=2s")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(ctx, "user:42", []byte("Ada"), time.Hour); err != nil {
		log.Fatal(err)
	}
	for range 3 {
		v, _ := c.Get(ctx, "user:42")
		fmt.Println(string(v))
	}
	s := c.Stats()
	fmt.Println("store reads:", s.Reads, "local hits:", s.LocalHits)
	// Output:
	// Ada
	// Ada
	// Ada
	// store reads: 1 local hits: 2
}

// TestLocalTierLongStaleness: a staleness bound of centuries does not
// overflow into one that never serves.
func TestLocalTierLongStaleness(t *testing.T) {
	ctx := t.Context()
	c := fleet(t, 1, cache.WithLocalTier(1<<20, time.Duration(math.MaxInt64)))[0]
	must(t, c.Set(ctx, "k", []byte("v"), cache.NoExpiry))
	c.Get(ctx, "k")
	c.Get(ctx, "k")
	if s := c.Stats(); s.LocalHits != 1 {
		t.Errorf("with the longest staleness bound the tier served %d of 2 reads, want 1", s.LocalHits)
	}
}
