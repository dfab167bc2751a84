package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
)

// staleEntry makes key stale in the caches (one shared store and clock):
// stored with value "v1" for a minute with an hour's grace, then the clock
// moved two minutes on.
func staleEntry(t *testing.T, clock *fakeClock, c *cache.Cache, key string) {
	t.Helper()
	if err := c.Set(t.Context(), key, []byte("v1"), time.Minute); err != nil {
		t.Fatal(err)
	}
	clock.add(2 * time.Minute)
}

// gatedFill returns a fill that reports each call on started and returns v
// once release is closed (or its context ends).
func gatedFill(v string, started chan<- struct{}, release <-chan struct{}) func(context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		started <- struct{}{}
		select {
		case <-release:
			return []byte(v), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// TestStaleWhileRevalidate: within its grace period an entry is a miss for
// Get, Has, Touch and Incr, and kept; GetOrSet returns the stale value at
// once while one background refresh stores the new one, with one write.
func TestStaleWhileRevalidate(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	c := fleet(t, 1, cache.WithStaleGrace(time.Hour), clock.option())[0]
	staleEntry(t, clock, c, "k")
	if _, err := c.Get(ctx, "k"); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get(stale) = %v, want ErrMiss", err)
	}
	if ok, err := c.Has(ctx, "k"); ok || err != nil {
		t.Fatalf("Has(stale) = %v, %v; want false", ok, err)
	}
	if ok, err := c.Touch(ctx, "k", time.Hour); ok || err != nil {
		t.Fatalf("Touch(stale) = %v, %v; want false", ok, err)
	}
	if _, err := c.Incr(ctx, "k", 1); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Incr(stale) = %v, want ErrMiss", err)
	}
	if v, stale, err := c.GetStale(ctx, "k"); string(v) != "v1" || !stale || err != nil {
		t.Fatalf("GetStale = %q, %v, %v; want v1, stale", v, stale, err)
	}
	if s := c.Stats(); s.Expired != 0 || s.DeleteRequests != 0 {
		t.Fatalf("reading a stale entry deleted it: %+v", s)
	}

	started, release := make(chan struct{}, 16), make(chan struct{})
	fill := gatedFill("v2", started, release)
	before := c.Stats()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.GetOrSet(ctx, "k", time.Minute, fill)
			if string(v) != "v1" || err != nil {
				t.Errorf("GetOrSet(stale) = %q, %v; want the stale v1 at once", v, err)
			}
		}()
	}
	wg.Wait() // every caller returned while the refresh is still held
	<-started
	close(release)
	waitFor(t, "the refresh to store v2", func() bool { v, err := c.Get(ctx, "k"); return err == nil && string(v) == "v2" })
	after := c.Stats()
	if n := after.Fills - before.Fills; n != 1 {
		t.Errorf("16 GetOrSets of a stale key ran %d fills, want 1", n)
	}
	if n := after.Stale - before.Stale; n != 16 {
		t.Errorf("Stats.Stale grew by %d, want 16", n)
	}
	// Requests: 16 reads by the callers, 1 write by the refresh, and the
	// reads of waitFor's Gets.
	if n := after.Writes - before.Writes; n != 1 {
		t.Errorf("the refresh made %d writes, want 1", n)
	}
	if after.DeleteRequests != before.DeleteRequests {
		t.Errorf("the refresh deleted %d objects, want none", after.DeleteRequests-before.DeleteRequests)
	}
	info, err := cache.InspectEntry(readObject(t, c, "k"))
	if err != nil || info.Grace != time.Hour {
		t.Errorf("refreshed entry: %+v, %v; want the cache's grace of 1h", info, err)
	}
}

// readObject returns the stored bytes of key's entry.
func readObject(t *testing.T, c *cache.Cache, key string) []byte {
	t.Helper()
	b, _, err := c.Driver().Read(t.Context(), c.ObjectName(key), 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStaleFleetRefreshOnce: with a fill lease, one refresh in the whole
// fleet; every cache serves the stale value meanwhile.
func TestStaleFleetRefreshOnce(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	cs := fleet(t, 6, cache.WithStaleGrace(time.Hour), cache.WithFillLease(time.Hour), clock.option())
	staleEntry(t, clock, cs[0], "k")
	started, release := make(chan struct{}, 64), make(chan struct{})
	fill := gatedFill("v2", started, release)
	if v, err := cs[0].GetOrSet(ctx, "k", time.Minute, fill); string(v) != "v1" || err != nil {
		t.Fatalf("GetOrSet(stale) = %q, %v", v, err)
	}
	<-started // cs[0] holds the lease and fills
	for _, c := range cs[1:] {
		if v, err := c.GetOrSet(ctx, "k", time.Minute, fill); string(v) != "v1" || err != nil {
			t.Fatalf("GetOrSet(stale) = %q, %v", v, err)
		}
		waitFor(t, "the refresh attempt", func() bool { return c.Stats().Refreshes == 1 })
	}
	close(release)
	for _, c := range cs {
		waitFor(t, "v2", func() bool { v, err := c.Get(ctx, "k"); return err == nil && string(v) == "v2" })
	}
	fills := 0
	for _, c := range cs {
		fills += int(c.Stats().Fills)
	}
	if fills != 1 {
		t.Errorf("the fleet ran %d fills, want 1", fills)
	}
	waitFor(t, "the lease to be deleted", func() bool { return len(storeNames(t, cs[0])) == 1 })
}

// TestStalePastGrace: once the grace period ends the entry is dead: GetOrSet
// fills as on a miss (and waits for it), and the dead entry was deleted.
func TestStalePastGrace(t *testing.T) {
	clock := newFakeClock()
	c := fleet(t, 1, cache.WithStaleGrace(time.Hour), clock.option())[0]
	staleEntry(t, clock, c, "k")
	clock.add(time.Hour)
	if _, _, err := c.GetStale(t.Context(), "k"); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("GetStale past the grace period = %v, want ErrMiss", err)
	}
	if s := c.Stats(); s.Expired != 1 {
		t.Errorf("the dead entry was not deleted: Expired = %d", s.Expired)
	}
	v, err := c.GetOrSet(t.Context(), "k", time.Minute, fillWith("v2"))
	if string(v) != "v2" || err != nil {
		t.Fatalf("GetOrSet past grace = %q, %v; want the new value", v, err)
	}
}

// TestStaleRefreshFails: a failed or panicking refresh is logged, the stale
// value is still served, and the next call tries again.
func TestStaleRefreshFails(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	var logs syncBuffer
	c := fleet(t, 1, cache.WithStaleGrace(time.Hour), clock.option(),
		cache.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))[0]
	staleEntry(t, clock, c, "k")
	fails := []func(context.Context) ([]byte, error){
		func(context.Context) ([]byte, error) { return nil, errors.New("backend down") },
		func(context.Context) ([]byte, error) { panic("fill bug") },
	}
	for i, fill := range fails {
		if v, err := c.GetOrSet(ctx, "k", time.Minute, fill); string(v) != "v1" || err != nil {
			t.Fatalf("GetOrSet(stale) = %q, %v", v, err)
		}
		waitFor(t, "the refresh to fail", func() bool { return c.Stats().Refreshes == int64(i+1) && c.Stats().Errors == int64(i+1) })
	}
	waitFor(t, "the logs", func() bool {
		l := logs.String()
		return strings.Contains(l, "backend down") && strings.Contains(l, "fill panicked: fill bug") && strings.Contains(l, "stale_test.go")
	})
	if v, stale, err := c.GetStale(ctx, "k"); string(v) != "v1" || !stale || err != nil {
		t.Fatalf("after failed refreshes GetStale = %q, %v, %v; want v1 still", v, stale, err)
	}
}

// TestStaleRefreshKeepsNewerValue: a refresh does not overwrite a value
// stored while it ran.
func TestStaleRefreshKeepsNewerValue(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	c := fleet(t, 1, cache.WithStaleGrace(time.Hour), clock.option())[0]
	staleEntry(t, clock, c, "k")
	started, release := make(chan struct{}, 1), make(chan struct{})
	if _, err := c.GetOrSet(ctx, "k", time.Minute, gatedFill("refreshed", started, release)); err != nil {
		t.Fatal(err)
	}
	<-started
	must(t, c.Set(ctx, "k", []byte("newer"), time.Hour))
	close(release)
	waitFor(t, "the refresh to end", func() bool { return c.Stats().Refreshes == 1 })
	if v, err := c.Get(ctx, "k"); string(v) != "newer" || err != nil {
		t.Fatalf("after the refresh Get = %q, %v; want the value Set meanwhile", v, err)
	}
}

// TestStaleWritesAndDelete: Add replaces a stale entry, Delete deletes it
// (reporting false), Increment creates a counter over it, Touch of a live
// entry keeps its grace period.
func TestStaleWritesAndDelete(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	c := fleet(t, 1, cache.WithStaleGrace(time.Hour), clock.option())[0]
	staleEntry(t, clock, c, "a")
	if ok, err := c.Add(ctx, "a", []byte("added"), time.Minute); !ok || err != nil {
		t.Errorf("Add over a stale entry = %v, %v; want true", ok, err)
	}
	staleEntry(t, clock, c, "d")
	if ok, err := c.Delete(ctx, "d"); ok || err != nil {
		t.Errorf("Delete(stale) = %v, %v; want false", ok, err)
	}
	if _, _, err := c.GetStale(ctx, "d"); !errors.Is(err, cache.ErrMiss) {
		t.Errorf("after Delete GetStale = %v, want ErrMiss", err)
	}
	staleEntry(t, clock, c, "n")
	if n, err := c.Increment(ctx, "n", 1, 10, time.Minute); n != 11 || err != nil {
		t.Errorf("Increment over a stale entry = %d, %v; want 11", n, err)
	}
	if info, err := cache.InspectEntry(readObject(t, c, "n")); err != nil || info.Grace != 0 {
		t.Errorf("a counter created by Increment: %+v, %v; want no grace period", info, err)
	}
	must(t, c.Set(ctx, "t", []byte("x"), time.Minute))
	if ok, err := c.Touch(ctx, "t", 5*time.Minute); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if info, err := cache.InspectEntry(readObject(t, c, "t")); err != nil || info.Grace != time.Hour {
		t.Errorf("after Touch: %+v, %v; want the grace period kept", info, err)
	}
	if err := c.Set(ctx, "forever", []byte("x"), cache.NoExpiry); err != nil {
		t.Fatal(err)
	}
	if info, err := cache.InspectEntry(readObject(t, c, "forever")); err != nil || info.Grace != 0 {
		t.Errorf("an entry that never expires: %+v, %v; want no grace period", info, err)
	}
}

// TestStaleGraceOptions: StaleGrace sets one call's grace period, the
// option and the URL parameter refuse negative values, and a cache without
// a grace period writes format versions 1 and 2 as before.
func TestStaleGraceOptions(t *testing.T) {
	ctx := t.Context()
	c := fleet(t, 1)[0]
	if _, err := c.GetOrSet(ctx, "g", time.Minute, fillWith("v"), cache.StaleGrace(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if info, err := cache.InspectEntry(readObject(t, c, "g")); err != nil || info.Grace != time.Hour {
		t.Errorf("GetOrSet(StaleGrace(1h)): %+v, %v", info, err)
	}
	must(t, c.Set(ctx, "plain", []byte("v"), time.Minute))
	if b := readObject(t, c, "plain"); b[4] != 1 {
		t.Errorf("a cache without grace wrote format version %d, want 1", b[4])
	}
	if _, err := c.GetOrSet(ctx, "x", time.Minute, fillWith("v"), cache.StaleGrace(-1)); !errors.Is(err, cache.ErrInvalidArgument) {
		t.Errorf("StaleGrace(-1) = %v, want ErrInvalidArgument", err)
	}
	if _, err := cache.Open(ctx, "mem://?stale_grace=-1s"); !errors.Is(err, cache.ErrInvalidOption) || !strings.Contains(err.Error(), "stale_grace") {
		t.Errorf("stale_grace=-1s: %v, want ErrInvalidOption naming it", err)
	}
	o, err := cache.Open(ctx, "mem://?stale_grace=90s")
	must(t, err)
	defer o.Close()
	if got := cache.Observe(o).StaleGrace; got != 90*time.Second {
		t.Errorf("stale_grace=90s gives %v", got)
	}
	for _, bad := range []string{"mem://?fill_lease=1ns", "mem://?fill_lease=99ms"} {
		if _, err := cache.Open(ctx, bad); !errors.Is(err, cache.ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrInvalidOption (shorter than MinFillLease)", bad, err)
		}
	}
	if _, err := c.GetOrSet(ctx, "x", time.Minute, fillWith("v"), cache.FillLease(time.Millisecond)); !errors.Is(err, cache.ErrInvalidArgument) {
		t.Errorf("FillLease(1ms) = %v, want ErrInvalidArgument", err)
	}
}

// TestStaleRefreshStopsOnClose: Close cancels a running refresh's context.
func TestStaleRefreshStopsOnClose(t *testing.T) {
	clock := newFakeClock()
	c := fleet(t, 1, cache.WithStaleGrace(time.Hour), clock.option())[0]
	staleEntry(t, clock, c, "k")
	ended := make(chan error, 1)
	_, err := c.GetOrSet(t.Context(), "k", time.Minute, func(ctx context.Context) ([]byte, error) {
		<-ctx.Done()
		ended <- ctx.Err()
		return nil, ctx.Err()
	})
	must(t, err)
	c.Close()
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Errorf("the refresh's context ended with %v, want Canceled", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTypedStale: Typed serves and refreshes stale values as Cache does;
// a stale value that does not decode is a miss, filled once.
func TestTypedStale(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	c := fleet(t, 1, cache.WithStaleGrace(time.Hour), clock.option())[0]
	typed := cache.NewTyped(c, cache.JSON[int]{})
	must(t, typed.Set(ctx, "n", 1, time.Minute))
	clock.add(2 * time.Minute)
	if v, stale, err := typed.GetStale(ctx, "n"); v != 1 || !stale || err != nil {
		t.Fatalf("Typed.GetStale = %d, %v, %v; want 1, stale", v, stale, err)
	}
	started, release := make(chan struct{}, 1), make(chan struct{})
	fill := func(ctx context.Context) (int, error) {
		started <- struct{}{}
		<-release
		return 2, nil
	}
	if v, err := typed.GetOrSet(ctx, "n", time.Minute, fill); v != 1 || err != nil {
		t.Fatalf("Typed.GetOrSet(stale) = %d, %v; want the stale 1", v, err)
	}
	<-started
	close(release)
	waitFor(t, "the refresh", func() bool { return c.Stats().Refreshes == 1 })
	if v, err := typed.Get(ctx, "n"); v != 2 || err != nil {
		t.Fatalf("after the refresh Typed.Get = %d, %v; want 2", v, err)
	}

	// A stale value that is not an int: a miss, and fill runs once even
	// though the refresh also wants it.
	must(t, c.Set(ctx, "bad", []byte("not json"), time.Minute))
	clock.add(2 * time.Minute)
	var calls atomic.Int32
	v, err := typed.GetOrSet(ctx, "bad", time.Minute, func(context.Context) (int, error) { calls.Add(1); return 7, nil }, cache.StaleGrace(time.Minute))
	if v != 7 || err != nil {
		t.Fatalf("Typed.GetOrSet(stale, undecodable) = %d, %v; want 7", v, err)
	}
	waitFor(t, "the refresh", func() bool { return c.Stats().Refreshes == 2 })
	if n := calls.Load(); n != 1 {
		t.Errorf("fill ran %d times in one call, want 1", n)
	}
	if info, err := cache.InspectEntry(readObject(t, c, "bad")); err != nil || info.Grace != time.Minute {
		t.Errorf("the refilled entry: %+v, %v; want the call's grace of 1m", info, err)
	}
}

// With a grace period, a value past its expiry is still served by GetOrSet
// while one refresh runs in the background; Get treats it as a miss.
func ExampleWithStaleGrace() {
	ctx := context.Background()
	var now atomic.Int64 // a clock the example moves
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	c, err := cache.Open(ctx, "mem://example-stale?stale_grace=1h&fill_lease=5s",
		cache.WithClock(func() time.Time { return time.Unix(0, now.Load()) }))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	render := func(version string) func(context.Context) ([]byte, error) {
		return func(context.Context) ([]byte, error) { return []byte("page " + version), nil }
	}

	v, _ := c.GetOrSet(ctx, "home", time.Minute, render("v1"))
	fmt.Println(string(v))
	now.Add(int64(2 * time.Minute)) // expired, within the hour's grace
	_, err = c.Get(ctx, "home")
	fmt.Println("Get:", errors.Is(err, cache.ErrMiss))
	v, _ = c.GetOrSet(ctx, "home", time.Minute, render("v2"))
	fmt.Println("GetOrSet:", string(v)) // at once; v2 is rendered in the background
	for c.Stats().Refreshes == 0 {
		time.Sleep(time.Millisecond)
	}
	v, _ = c.Get(ctx, "home")
	fmt.Println("after the refresh:", string(v))
	// Output:
	// page v1
	// Get: true
	// GetOrSet: page v1
	// after the refresh: page v2
}
