package conformance

import (
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
)

// caseCacheIncrement checks cache.Increment over the driver: 8 caches (each
// on its own driver), 8 goroutines each, race 10 increments apiece on a key
// that does not exist yet. The first creates it; every caller gets a
// distinct result and the counter ends at the total, none lost or doubled.
func caseCacheIncrement(e *env) {
	if _, ok := e.driver().(driver.Replacer); !ok {
		e.t.Skipf("driver does not implement driver.Replacer: Increment of a live key is not atomic across caches there")
	}
	const caches, goroutines, each = 8, 8, 10
	cs := e.raceCaches(caches)
	var (
		mu       sync.Mutex
		results  []int64
		wg       sync.WaitGroup
		firstErr error
	)
	for _, c := range cs {
		for range goroutines {
			wg.Go(func() {
				for range each {
					n, err := c.Increment(e.ctx, "hits", 1, 0, time.Hour)
					mu.Lock()
					if err != nil && firstErr == nil {
						firstErr = err
					}
					results = append(results, n)
					mu.Unlock()
					if err != nil {
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if firstErr != nil {
		e.t.Fatalf("Increment during the race: %v", firstErr)
	}
	slices.Sort(results)
	const total = caches * goroutines * each
	for i, n := range results {
		if n != int64(i+1) {
			e.t.Fatalf("%d racing Increments returned, sorted, %d at [%d], want %d: an increment was lost or doubled", total, n, i, i+1)
		}
	}
	e.wantGet(cs[0], "hits", strconv.Itoa(total))
	if _, err := cs[0].Increment(e.ctx, "hits", 1, 0, -3*time.Second); !errors.Is(err, cache.ErrInvalidTTL) {
		e.t.Errorf("Increment with a negative ttl = %v, want ErrInvalidTTL", err)
	}
}
