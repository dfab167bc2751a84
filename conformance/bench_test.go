package conformance

import (
	"context"
	"flag"
	"sync/atomic"
	"testing"

	"github.com/blobcache/blobcache/driver"
)

// countingHarness is the reference in-memory store, its driver calls counted
// as requests.
type countingHarness struct {
	memHarness
	n atomic.Int64
}

func (h *countingHarness) MakeDriver(context.Context) (driver.Driver, error) {
	return &callCounter{Driver: &memDriver{s: h.s}, n: &h.n}, nil
}

func (h *countingHarness) Requests() int64 { return h.n.Load() }

// callCounter counts Read calls.
type callCounter struct {
	driver.Driver
	n *atomic.Int64
}

func (c *callCounter) Read(ctx context.Context, name string, off, n int64) ([]byte, driver.Attributes, error) {
	c.n.Add(1)
	return c.Driver.Read(ctx, name, off, n)
}

func newCountingHarness(context.Context, *testing.B) (Harness, error) {
	return &countingHarness{memHarness: memHarness{s: &memStore{objs: map[string]memObject{}}}}, nil
}

// BenchmarkReference runs the benchmarks on the suite's reference driver
// (a map under a mutex, no Replacer or BatchDeleter):
//
//	go test -run XXX -bench Reference -benchmem ./conformance/
func BenchmarkReference(b *testing.B) {
	RunBenchmarks(b, func(context.Context, *testing.B) (Harness, error) {
		return &memHarness{s: &memStore{objs: map[string]memObject{}}}, nil
	})
}

// TestRunBenchmarks runs every benchmark once on the reference driver, with
// requests counted, and checks that each completes and what Get reports.
func TestRunBenchmarks(t *testing.T) {
	bt := flag.Lookup("test.benchtime")
	old := bt.Value.String()
	if err := bt.Value.Set("1x"); err != nil {
		t.Fatal(err)
	}
	defer bt.Value.Set(old)
	defer func(n int) { bigValueSize = n }(bigValueSize)
	bigValueSize = 1 << 20
	var (
		reqPerGet float64
		failed    bool
	)
	testing.Benchmark(func(b *testing.B) {
		RunBenchmarks(b, newCountingHarness)
		b.Run("check", func(b *testing.B) {
			e := newBench(b, newCountingHarness)
			ks := makeKeys("get", 1)
			e.fill(b, ks, []byte("v"))
			r0 := e.requests()
			for b.Loop() {
				if _, err := e.c.Get(e.ctx, ks.keys[0]); err != nil {
					b.Fatal(err)
				}
			}
			reqPerGet = float64(e.requests()-r0) / float64(b.N)
		})
		failed = b.Failed()
	})
	if failed {
		t.Fatal("a benchmark failed (testing.Benchmark hides which: go test -run XXX -bench Reference ./conformance/ shows it)")
	}
	if reqPerGet != 1 {
		t.Errorf("a cache Get made %v counted requests, want 1", reqPerGet)
	}
}
