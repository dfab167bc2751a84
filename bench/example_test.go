package bench_test

import (
	"context"
	"fmt"

	"github.com/blobcache/blobcache/bench"
	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/drivers/mem"
)

// The load generator on the memory driver: a get-only workload over a
// prefilled keyspace is one store request per operation, on the cache as on
// its raw driver.
func ExampleCompare() {
	ctx := context.Background()
	c, err := cache.New(mem.New(), cache.WithLocation("bench"), cache.WithMaxEntries(0))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	mix, err := bench.ParseMix("get=1")
	if err != nil {
		panic(err)
	}
	cmp, err := bench.Compare(ctx, c, bench.Workload{Workers: 2, Ops: 200, Keyspace: 20, Mix: mix, Seed: 1})
	if err != nil {
		panic(err)
	}
	for _, r := range []*bench.Report{cmp.Cache, cmp.Raw} {
		fmt.Printf("%s: %d gets, %d misses, %.3f requests/op\n", r.Target, r.All.Ops, r.All.Misses, r.RequestsPerOp)
	}
	// Output:
	// cache: 200 gets, 0 misses, 1.000 requests/op
	// raw driver: 200 gets, 0 misses, 1.000 requests/op
}
