package bench

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
)

// hotCounterGoroutines is how many goroutines increment one key at once in
// the HotCounter benchmark.
const hotCounterGoroutines = 64

// benchHotCounter increments one key from hotCounterGoroutines goroutines
// of one process: impl=incr with Cache.Incr (one conditional write per
// increment, retried on every lost race), impl=increment with
// Cache.Increment (concurrent increments combined into one conditional
// write). It reports increments per second, requests and conflicts
// (ErrConflict, an Incr that lost 64 races in a row) per increment, and
// fails on a lost or doubled increment.
func benchHotCounter(b *testing.B, maker HarnessMaker) {
	e := newGroup(b, maker, cache.WithMaxEntries(0))
	for _, impl := range []string{"incr", "increment"} {
		key := "hot-" + impl
		b.Run("impl="+impl, func(b *testing.B) {
			ctx := e.ctx
			e.pause(b, func() {
				if err := e.c.Set(ctx, key, []byte("0"), cache.NoExpiry); err != nil {
					b.Fatalf("Set: %v", err)
				}
			})
			var done, conflicts atomic.Int64
			r0 := e.requests()
			b.SetParallelism((hotCounterGoroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					var err error
					if impl == "incr" {
						_, err = e.c.Incr(ctx, key, 1)
					} else {
						_, err = e.c.Increment(ctx, key, 1, 0, cache.NoExpiry)
					}
					switch {
					case err == nil:
						done.Add(1)
					case errors.Is(err, cache.ErrConflict):
						conflicts.Add(1)
					default:
						b.Errorf("%s: %v", impl, err)
						return
					}
				}
			})
			took := time.Since(start)
			reqs := e.requests() - r0
			v, err := e.c.Get(context.WithoutCancel(ctx), key)
			if err != nil {
				b.Fatalf("Get: %v", err)
			}
			if string(v) != strconv.FormatInt(done.Load(), 10) {
				b.Fatalf("%s: the counter holds %s after %d acknowledged increments: one was lost or doubled", impl, v, done.Load())
			}
			n := float64(b.N)
			b.ReportMetric(float64(done.Load())/took.Seconds(), "incr/s")
			b.ReportMetric(float64(conflicts.Load())/n, "conflicts/op")
			if e.rc != nil {
				b.ReportMetric(float64(reqs)/n, "req/op")
			}
		})
	}
}
