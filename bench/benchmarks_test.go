package bench

import (
	"context"
	"flag"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/driver/counting"
	"github.com/blobcache/blobcache/drivers/mem"
)

// baseOnly hides a driver's optional capabilities.
type baseOnly struct{ driver.Driver }

var stores atomic.Int64

// memHarness is one named in-memory store, its drivers with or without the
// memory driver's capabilities and every call of theirs counted.
type memHarness struct {
	name string
	base bool // hide Replacer and BatchDeleter: the fallback paths
	n    []*counting.Counter
}

func newMemHarness(base bool) HarnessMaker {
	return func(context.Context, testing.TB) (Harness, error) {
		return &memHarness{name: fmt.Sprintf("bench-test-%d", stores.Add(1)), base: base}, nil
	}
}

func (h *memHarness) MakeDriver(context.Context) (driver.Driver, error) {
	var d driver.Driver = mem.Open(h.name)
	if h.base {
		d = baseOnly{d}
	}
	d, n := counting.Wrap(d)
	h.n = append(h.n, n)
	return d, nil
}

// Requests implements RequestCounter.
func (h *memHarness) Requests() int64 {
	var sum int64
	for _, n := range h.n {
		sum += n.Requests()
	}
	return sum
}

func (h *memHarness) Close() {
	d := mem.Open(h.name)
	defer d.Close()
	ctx := context.Background()
	for {
		p, err := d.List(ctx, &driver.ListOptions{})
		if err != nil || len(p.Objects) == 0 {
			return
		}
		names := make([]string, len(p.Objects))
		for i, o := range p.Objects {
			names[i] = o.Name
		}
		if d.DeleteBatch(ctx, names) != nil {
			return
		}
	}
}

// TestRunBenchmarks runs every benchmark once on the memory driver, with and
// without its optional capabilities, requests counted, and checks that each
// completes and that a cache Get is one request.
func TestRunBenchmarks(t *testing.T) {
	bt := flag.Lookup("test.benchtime")
	old := bt.Value.String()
	if err := bt.Value.Set("1x"); err != nil {
		t.Fatal(err)
	}
	defer bt.Value.Set(old)
	defer func(n int) { bigValueSize = n }(bigValueSize)
	bigValueSize = 1 << 20
	for _, base := range []bool{false, true} {
		t.Run(fmt.Sprintf("capabilities=%v", !base), func(t *testing.T) {
			maker := newMemHarness(base)
			var (
				reqPerGet float64
				failed    bool
			)
			testing.Benchmark(func(b *testing.B) {
				RunBenchmarks(b, maker)
				b.Run("check", func(b *testing.B) {
					e := newGroup(b, maker)
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
		})
	}
}

// TestValueMemory measures a small value and checks every measurement is
// there and plausible.
func TestValueMemory(t *testing.T) {
	const size = 1 << 20
	got := ValueMemory(t, newMemHarness(false), size)
	for _, what := range []string{"Set/gzip=off/cache", "Get/gzip=off/cache", "Set/gzip=on/cache", "Get/gzip=on/cache", "Set/driver", "Get/driver"} {
		m, ok := got[what]
		if !ok {
			t.Errorf("no %s measurement", what)
			continue
		}
		if what[:3] == "Get" && m.Allocated < size {
			t.Errorf("%s allocated %d bytes, less than the %d-byte value it returned", what, m.Allocated, size)
		}
	}
}
