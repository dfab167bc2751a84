package conformance

import (
	"errors"
	"sync"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
)

// caseCacheLock checks cache.Lock over the driver: of racing callers (each
// with its own driver) on a free name and on a name whose lease expired,
// exactly one takes the lease and the others get ErrLocked; only the holder
// extends and releases it; a released lease is free again; and the lease is
// no entry (Len, Clear and culling leave it alone).
func caseCacheLock(e *env) {
	if _, ok := e.driver().(driver.Replacer); !ok {
		e.t.Skipf("driver does not implement driver.Replacer: cache.Lock needs it")
	}
	clk := newManualClock()
	cs := e.raceCaches(cacheRacers, cache.WithClock(clk.Now), cache.WithMaxEntries(3))
	race := func(what string) *cache.Lock {
		e.t.Helper()
		locks := make([]*cache.Lock, len(cs))
		errs := make([]error, len(cs))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, c := range cs {
			wg.Go(func() {
				<-start
				locks[i], errs[i] = c.Lock(e.ctx, "job", 10*time.Second)
			})
		}
		close(start)
		wg.Wait()
		var held []int
		for i, err := range errs {
			switch {
			case err == nil:
				held = append(held, i)
			case !errors.Is(err, cache.ErrLocked):
				e.t.Fatalf("%s: Lock by racer %d = %v, want nil or ErrLocked", what, i, err)
			}
		}
		if len(held) != 1 {
			e.t.Fatalf("%s: %d racers hold the lock (%v), want exactly one", what, len(held), held)
		}
		return locks[held[0]]
	}

	first := race("racing Lock of a free name")
	// The lease is no entry: a full cache culls and clears around it.
	for i := range 6 {
		e.must(cs[0].Set(e.ctx, string(rune('a'+i)), []byte("v"), cache.NoExpiry))
	}
	e.must(cs[0].Clear(e.ctx))
	if _, err := cs[1].Lock(e.ctx, "job", time.Second); !errors.Is(err, cache.ErrLocked) {
		e.t.Fatalf("Lock after Sets that culled and a Clear = %v, want ErrLocked: the lease was removed", err)
	}
	e.must(first.Extend(e.ctx, 10*time.Second))

	// Expired: racers take it over, one of them.
	clk.Advance(11 * time.Second)
	second := race("racing Lock of a name whose lease expired")
	for what, err := range map[string]error{
		"Extend by the holder whose lease expired":  first.Extend(e.ctx, time.Minute),
		"Release by the holder whose lease expired": first.Release(e.ctx),
	} {
		if !errors.Is(err, cache.ErrLockLost) {
			e.t.Errorf("%s = %v, want ErrLockLost", what, err)
		}
	}
	// The new holder's lease survived the old holder's attempts.
	e.must(second.Extend(e.ctx, 10*time.Second))
	e.must(second.Release(e.ctx))
	if err := second.Release(e.ctx); !errors.Is(err, cache.ErrLockLost) {
		e.t.Errorf("a second Release = %v, want ErrLockLost", err)
	}
	// Released: free at once, before its TTL.
	third, err := cs[2].Lock(e.ctx, "job", time.Second)
	e.must(err)
	e.must(third.Release(e.ctx))
}
