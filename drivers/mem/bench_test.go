package mem_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"gocloud.dev/blob/memblob"

	"github.com/blobcache/blobcache/bench"
	"github.com/blobcache/blobcache/bench/gocdk"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/mem"
)

// benchHarness is one named in-memory store, emptied by Close (named stores
// live as long as the process). Its Go CDK bucket is a memblob bucket
// configured as the driver's (no MD5).
type benchHarness struct{ harness }

func (h *benchHarness) OpenBucket(context.Context) (bench.Bucket, error) {
	return gocdk.Wrap(memblob.OpenBucket(&memblob.Options{NoMD5: true})), nil
}

func (h *benchHarness) Close() {
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
		if err := d.DeleteBatch(ctx, names); err != nil {
			return
		}
	}
}

var benchStores atomic.Int64

func benchMaker(context.Context, testing.TB) (bench.Harness, error) {
	return &benchHarness{harness{name: fmt.Sprintf("bench-%d", benchStores.Add(1))}}, nil
}

// BenchmarkCache runs the benchmarks of package bench on the memory driver:
//
//	go test -run XXX -bench Cache -benchmem -count 5 ./drivers/mem/ | tee mem.txt
//	benchstat -col /impl mem.txt
func BenchmarkCache(b *testing.B) {
	bench.RunBenchmarks(b, benchMaker)
}

// TestValueMemory measures Set and Get of a 64 MiB value in memory, gzip off
// and on, and holds the bound: every byte allocated during the call
// (an upper bound of the peak heap growth, and here including the copy the
// store keeps) stays under 3x the value. The race detector allocates more
// (it drops sync.Pool items at random), so the bound holds without -race.
func TestValueMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB values")
	}
	const size = 64 << 20
	got := bench.ValueMemory(t, benchMaker, size)
	if raceEnabled {
		t.Log("race detector on: allocations logged, the 3x bound not asserted")
		return
	}
	for what, m := range got {
		if m.Allocated >= 3*size {
			t.Errorf("%s allocated %.2fx the value, want under 3x", what, float64(m.Allocated)/size)
		}
	}
}
