package bench_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/blobcache/blobcache/bench"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/driver/counting"
	"github.com/blobcache/blobcache/drivers/mem"
)

// harness is a driver author's harness: a fresh store per harness. Every
// driver it makes is counted with counting.Wrap, so the harness is a
// bench.RequestCounter and the benchmarks report req/op.
type harness struct {
	name     string
	counters []*counting.Counter
}

var stores atomic.Int64

func newHarness(context.Context, testing.TB) (bench.Harness, error) {
	return &harness{name: fmt.Sprintf("example-%d", stores.Add(1))}, nil
}

func (h *harness) MakeDriver(context.Context) (driver.Driver, error) {
	d, n := counting.Wrap(mem.Open(h.name))
	h.counters = append(h.counters, n)
	return d, nil
}

func (h *harness) Requests() int64 {
	var sum int64
	for _, n := range h.counters {
		sum += n.Requests()
	}
	return sum
}

func (h *harness) Close() {}

// A driver's test benchmarks the cache over its driver with one call; the
// harness is the one its conformance test uses (Harness has the same
// methods). In the driver's _test.go file:
//
//	func BenchmarkCache(b *testing.B) { bench.RunBenchmarks(b, newHarness) }
//
// and then: go test -run XXX -bench Cache -benchmem -count 5 ./yourdriver/
func ExampleRunBenchmarks() {
	benchmarkCache := func(b *testing.B) { bench.RunBenchmarks(b, newHarness) }
	_ = benchmarkCache
}
