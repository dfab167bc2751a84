package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/drivers/mem"
)

func TestParseMix(t *testing.T) {
	m, err := ParseMix(" get=90, SET=10 ,has=0")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.String(); got != "get=90,set=10" {
		t.Errorf("String = %q", got)
	}
	counts := map[Op]int{}
	for r := range m.total {
		counts[m.pick(r)]++
	}
	if counts[OpGet] != 90 || counts[OpSet] != 10 || len(counts) != 2 {
		t.Errorf("picks = %v", counts)
	}
	for _, bad := range []string{"", "get", "get=x", "get=-1", "fetch=1", "get=1,get=2", "get=0,set=0"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) succeeded", bad)
		}
	}
}

func TestHistogram(t *testing.T) {
	// Every bucket's midpoint maps back to the bucket, buckets are ordered.
	for i := range histBuckets {
		if v := bucketValue(i); bucket(v) != i {
			t.Fatalf("bucket(bucketValue(%d) = %d) = %d", i, v, bucket(v))
		}
	}
	var h histogram
	rng := rand.New(rand.NewPCG(1, 2))
	var samples []int64
	for range 100_000 {
		v := int64(rng.ExpFloat64() * float64(time.Millisecond))
		samples = append(samples, v)
		h.record(time.Duration(v))
	}
	slices.Sort(samples)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := float64(samples[int(q*float64(len(samples)-1))])
		got := float64(h.quantile(q))
		if math.Abs(got-want)/want > 0.02 {
			t.Errorf("quantile(%v) = %v, want %v within 2%%", q, time.Duration(got), time.Duration(want))
		}
	}
	if h.maxDuration() != time.Duration(samples[len(samples)-1]) {
		t.Errorf("max = %v", h.maxDuration())
	}
}

// TestCompareOnMem runs a small mixed workload on mem:// against the cache
// and its raw driver.
func TestCompareOnMem(t *testing.T) {
	ctx := t.Context()
	c, err := cache.Open(ctx, "mem://?max_entries=0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mix, err := ParseMix("get=60,set=15,add=5,has=10,delete=5,incr=5")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Workload{Workers: 4, Ops: 4000, Keyspace: 200, ValueSize: 512, Mix: mix, Seed: 42}
	cmp, err := Compare(ctx, c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", cmp)
	for _, r := range []*Report{cmp.Cache, cmp.Raw} {
		if r.All.Ops != cfg.Ops || r.All.Errors != 0 {
			t.Errorf("%s: %d ops, %d errors; want %d, 0", r.Target, r.All.Ops, r.All.Errors, cfg.Ops)
		}
		var sum int64
		for _, s := range r.PerOp {
			sum += s.Ops
		}
		if sum != r.All.Ops || len(r.PerOp) != 6 {
			t.Errorf("%s: per-op counts %v do not add up to %d", r.Target, r.PerOp, r.All.Ops)
		}
		if g := r.PerOp[OpGet]; g.Misses == g.Ops {
			t.Errorf("%s: every get missed", r.Target)
		}
		if !(r.All.P50 > 0 && r.All.P50 <= r.All.P99 && r.All.P99 <= r.All.P999 && r.All.P999 <= r.All.Max) {
			t.Errorf("%s: percentiles out of order: %+v", r.Target, r.All)
		}
		// Every operation is one or two store requests (incr: two; a
		// cache delete of a live key: two; add of a live key: two).
		if r.RequestsPerOp < 1 || r.RequestsPerOp > 2 {
			t.Errorf("%s: %.3f requests/op, want 1 to 2", r.Target, r.RequestsPerOp)
		}
		if r.OpsPerSec <= 0 {
			t.Errorf("%s: %v ops/s", r.Target, r.OpsPerSec)
		}
	}
	if cmp.Ratio <= 0 {
		t.Errorf("ratio %v", cmp.Ratio)
	}
	// Both runs cleaned up after themselves.
	if n, err := c.Len(ctx); err != nil || n != 0 {
		t.Errorf("after Compare the store holds %d objects (%v), want 0", n, err)
	}
}

// TestGetOnlyIsOneRequest: a get-only workload on a prefilled keyspace makes
// exactly one store request per operation, on both targets, and always hits.
func TestGetOnlyIsOneRequest(t *testing.T) {
	ctx := t.Context()
	c, err := cache.Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mix, _ := ParseMix("get=1")
	cmp, err := Compare(ctx, c, Workload{Workers: 2, Duration: 100 * time.Millisecond, Keyspace: 50, Mix: mix})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Report{cmp.Cache, cmp.Raw} {
		if r.Requests != r.All.Ops || r.All.Misses != 0 || r.All.Ops == 0 {
			t.Errorf("%s: %d requests, %d misses for %d gets; want one request per get and no miss", r.Target, r.Requests, r.All.Misses, r.All.Ops)
		}
		if r.Elapsed < 100*time.Millisecond || r.Elapsed > 5*time.Second {
			t.Errorf("%s: ran %v for a 100ms duration", r.Target, r.Elapsed)
		}
	}
}

// TestStopsAtFirstError: a failing store stops the run with the error.
func TestStopsAtFirstError(t *testing.T) {
	d := mem.New()
	c, err := cache.New(d, cache.WithMaxEntries(0))
	if err != nil {
		t.Fatal(err)
	}
	d.Close() // every call now fails
	mix, _ := ParseMix("get=1")
	r, err := RunLoad(t.Context(), CacheTarget(c, 10, cache.NoExpiry), Workload{Workers: 2, Duration: time.Minute, Mix: mix, NoPrefill: true})
	if err == nil || r == nil || r.Err == nil || r.Elapsed > 10*time.Second {
		t.Fatalf("Run on a closed store: %v, %v", r, err)
	}
}
