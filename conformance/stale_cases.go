package conformance

import (
	"context"
	"errors"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
)

// caseCacheStaleWhileRevalidate: three caches, each over its own driver (as
// three processes), on an entry within its grace period. It is a miss for
// Get and Has and is kept; GetStale returns it; GetOrSet returns it at once
// in every cache while one refresh (with a fill lease, where the driver is
// a Replacer) runs in the background and stores the new value over it;
// past the grace period it is dead and deleted.
func caseCacheStaleWhileRevalidate(e *env) {
	clk := newManualClock()
	opts := []cache.Option{cache.WithClock(clk.Now), cache.WithStaleGrace(time.Hour)}
	probe := e.cache()
	_, leases := probe.Driver().(driver.Replacer)
	if leases {
		opts = append(opts, cache.WithFillLease(time.Minute))
	}
	cs := e.raceCaches(3, opts...)
	e.must(cs[0].Set(e.ctx, "k", []byte("v1"), time.Minute))
	clk.Advance(2 * time.Minute)
	name := cs[0].ObjectName("k")
	for i, c := range cs {
		e.wantMiss(c, "k")
		ok, err := c.Has(e.ctx, "k")
		e.wantBool("Has(stale)", ok, err, false)
		if v, stale, err := c.GetStale(e.ctx, "k"); string(v) != "v1" || !stale || err != nil {
			e.t.Fatalf("cache %d: GetStale = %q, %v, %v; want v1, stale", i, v, stale, err)
		}
	}
	e.read(cs[0].Driver(), name) // kept by all those reads

	started := make(chan struct{}, len(cs))
	release := make(chan struct{})
	fill := func(ctx context.Context) ([]byte, error) {
		started <- struct{}{}
		select {
		case <-release:
			return []byte("v2"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	for i, c := range cs {
		before, start := c.Stats(), time.Now()
		v, err := c.GetOrSet(e.ctx, "k", time.Minute, fill)
		took, after := time.Since(start), c.Stats()
		if string(v) != "v1" || err != nil {
			e.t.Fatalf("cache %d: GetOrSet(stale) = %q, %v; want the stale v1 at once", i, v, err)
		}
		// The fill is still held: what the caller paid is the read.
		e.t.Logf("cache %d: GetOrSet of a stale key returned in %v with its refresh's fill still running; the cache had made %d read(s) by then (1 is the call's own; its refresh's may add)",
			i, took.Round(time.Microsecond), after.Reads-before.Reads)
		if i == 0 || !leases {
			<-started // the cache's refresh fills (holding the lease, if any)
		} else {
			// It finds the lease held and leaves the refresh to its holder.
			e.waitFor("the cache's refresh to end", func() bool { return c.Stats().Refreshes == 1 })
		}
	}
	close(release)
	// Every refresh ends before the reads: without a lease each cache's
	// writes, and a read racing an overwrite is not in the contract.
	for _, c := range cs {
		e.waitFor("the cache's refresh to end", func() bool { return c.Stats().Refreshes == 1 })
	}
	for _, c := range cs {
		e.wantGet(c, "k", "v2")
	}
	fills := 0
	for _, c := range cs {
		fills += int(c.Stats().Fills)
	}
	if leases && fills != 1 {
		e.t.Errorf("with a fill lease the three caches ran %d refresh fills, want 1", fills)
	}
	if fills < 1 || fills > len(cs) {
		e.t.Errorf("the caches ran %d refresh fills, want 1 to %d", fills, len(cs))
	}

	// Past its grace period an entry is dead: a miss that deletes it.
	clk.Advance(time.Minute + time.Hour)
	if _, _, err := cs[1].GetStale(e.ctx, "k"); !errors.Is(err, cache.ErrMiss) {
		e.t.Fatalf("GetStale past the grace period = %v, want ErrMiss", err)
	}
	e.wantAbsent(cs[1].Driver(), name)

	// Delete deletes a stale entry, reporting no live one.
	e.must(cs[2].Set(e.ctx, "d", []byte("x"), time.Minute))
	clk.Advance(2 * time.Minute)
	deleted, err := cs[2].Delete(e.ctx, "d")
	e.wantBool("Delete(stale)", deleted, err, false)
	e.wantAbsent(cs[2].Driver(), cs[2].ObjectName("d"))
}

// waitFor polls cond until it holds, failing the case after a minute.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			e.t.Fatalf("gave up waiting for %s", what)
		}
	}
}
