//go:build scale

// The scale run is opt-in (build tag "scale"), so the default run has no
// skipped MinIO test: go test -tags scale -run TestScale ./drivers/s3/

package s3_test

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/blobcache/blobcache/bench"
	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/s3"
	"github.com/blobcache/blobcache/internal/s3test"
)

// opCounter counts requests by S3 operation with atomic adds (it keeps no
// record of each request, unlike s3test.CountingTransport, which would hold
// hundreds of thousands here).
type opCounter struct {
	base  http.RoundTripper
	delay time.Duration // added to every request, to emulate a distant store
	n     map[s3test.Op]*atomic.Int64
}

func newOpCounter(base http.RoundTripper) *opCounter {
	c := &opCounter{base: base, n: map[s3test.Op]*atomic.Int64{}}
	for _, op := range []s3test.Op{s3test.GetObject, s3test.HeadObject, s3test.PutObject, s3test.DeleteObject,
		s3test.DeleteObjects, s3test.ListObjectsV2, s3test.HeadBucket, s3test.CreateBucket, s3test.DeleteBucket, s3test.Other} {
		c.n[op] = new(atomic.Int64)
	}
	return c
}

func (c *opCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n[s3test.Classify(req)].Add(1)
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
	return c.base.RoundTrip(req)
}

// snapshot returns the counts, leaving out operations not seen.
func (c *opCounter) snapshot() map[s3test.Op]int64 {
	out := map[s3test.Op]int64{}
	for op, n := range c.n {
		if v := n.Load(); v > 0 {
			out[op] = v
		}
	}
	return out
}

// since returns the counts now minus before.
func (c *opCounter) since(before map[s3test.Op]int64) map[s3test.Op]int64 {
	out := c.snapshot()
	for op, v := range before {
		out[op] -= v
		if out[op] == 0 {
			delete(out, op)
		}
	}
	return out
}

func total(m map[s3test.Op]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// envScale enables TestScale; envScaleN changes its entry count;
// envScaleRTT adds a delay to every request (a Go duration such as 10ms),
// as a store across a network would have.
const (
	envScale    = "BLOBCACHE_SCALE"
	envScaleN   = "BLOBCACHE_SCALE_N"
	envScaleRTT = "BLOBCACHE_SCALE_RTT"
)

// TestScale is the scale run on MinIO, skipped unless
// BLOBCACHE_SCALE=1 (it writes about 230,000 objects and deletes 100,000 one
// at a time: several minutes):
//
//	BLOBCACHE_SCALE=1 go run ./internal/cmd/testall -tags scale -race=false -timeout 60m -run TestScale -v ./drivers/s3/
//
// With n = 100,000 entries (BLOBCACHE_SCALE_N changes it; BLOBCACHE_SCALE_RTT
// adds a delay to every request, to see the figures of a distant store):
//
//   - Cull: a cache with max_entries n over a location holding n entries
//     makes one write; that write lists the location (at most n/1000
//     LISTs, plus MinIO's empty last page) and culls a third with
//     ceil(culled/1000) DeleteObjects.
//   - Clear of n entries costs ceil(n/1000) DeleteObjects and as many LISTs
//     (one more on MinIO when n is a multiple of 1000: it reports a full
//     last page as truncated). Its time is logged beside that of deleting the
//     same n objects one at a time (one DeleteObject each, in sequence) after
//     the same listing.
func TestScale(t *testing.T) {
	if os.Getenv(envScale) != "1" {
		t.Skipf("scale run skipped: set %s=1 (several minutes on MinIO)", envScale)
	}
	n := 100_000
	if v := os.Getenv(envScaleN); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			t.Fatalf("%s=%q: want an integer of at least 1000", envScaleN, v)
		}
	}
	pages := int64((n + 999) / 1000)
	// MinIO reports a full last page (n a multiple of 1000) as truncated,
	// so listing n entries then costs one more, empty, page; S3 does not.
	listings := pages
	if n%1000 == 0 {
		listings++
	}
	cfg := s3test.Env(t)
	bucket := s3test.NewBucket(t, cfg)
	ctr := newOpCounter(benchTransport)
	if v := os.Getenv(envScaleRTT); v != "" {
		var err error
		if ctr.delay, err = time.ParseDuration(v); err != nil {
			t.Fatalf("%s=%q: %v", envScaleRTT, v, err)
		}
		t.Logf("every request delayed by %v", ctr.delay)
	}
	ctx := t.Context()
	open := func() *s3.Driver {
		d, err := s3.Open(ctx, bucket, s3.Options{Endpoint: cfg.Endpoint, Region: cfg.Region, UsePathStyle: true,
			AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey, HTTPClient: &http.Client{Transport: ctr}})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	newCache := func(opts ...cache.Option) *cache.Cache {
		c, err := cache.New(open(), append([]cache.Option{cache.WithLocation("scale")}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%07d", i)
	}
	value := []byte("v")
	filler := newCache(cache.WithMaxEntries(0))
	// fill sets the keys for which want is true, 64 at a time.
	fill := func(want func(i int) bool) time.Duration {
		start := time.Now()
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(64)
		for i, k := range keys {
			if want(i) {
				g.Go(func() error { return filler.Set(gctx, k, value, cache.NoExpiry) })
			}
		}
		if err := g.Wait(); err != nil {
			t.Fatalf("fill: %v", err)
		}
		return time.Since(start)
	}
	all := func(int) bool { return true }

	// Cull at max_entries n.
	took := fill(all)
	t.Logf("filled %d entries in %v (%.0f PUT/s)", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	c := newCache(cache.WithMaxEntries(n), cache.WithCullShards(0)) // one listing of the whole location
	before := ctr.snapshot()
	start := time.Now()
	// A new key: the write finds n entries, culls, then stores it.
	if err := c.Set(ctx, "trigger", value, cache.NoExpiry); err != nil {
		t.Fatalf("Set at max_entries %d: %v", n, err)
	}
	cullTook := time.Since(start)
	cullReqs := ctr.since(before)
	left, err := c.Len(ctx)
	if err != nil {
		t.Fatal(err)
	}
	culled := int64(n + 1 - left)
	t.Logf("cull at max_entries %d: one Set took %v with %d requests %v; it culled %d entries (%d left)",
		n, cullTook.Round(time.Millisecond), total(cullReqs), cullReqs, culled, left)
	if l := cullReqs[s3test.ListObjectsV2]; l > listings {
		t.Errorf("cull: %d LISTs, want at most %d", l, listings)
	}
	if third := int64(n) / 3; culled < third || culled > third+1 {
		t.Errorf("cull removed %d entries, want a third of %d", culled, n)
	}
	if d := cullReqs[s3test.DeleteObjects]; d != (culled+999)/1000 {
		t.Errorf("cull: %d DeleteObjects for %d culled entries, want ceil(culled/1000) = %d", d, culled, (culled+999)/1000)
	}
	if left > n {
		t.Errorf("%d entries after the cull, more than max_entries %d", left, n)
	}
	if ok, err := c.Delete(ctx, "trigger"); err != nil || !ok {
		t.Fatalf("Delete(trigger) = %v, %v", ok, err)
	}

	// topUp writes the keys culled, so that the location holds exactly n.
	d := open()
	defer d.Close()
	topUp := func(what string) {
		live := map[string]bool{}
		for token := ""; ; {
			p, err := d.List(ctx, &driver.ListOptions{Prefix: c.Location(), PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range p.Objects {
				live[o.Name] = true
			}
			if token = p.NextPageToken; token == "" {
				break
			}
		}
		fill(func(i int) bool { return !live[c.ObjectName(keys[i])] })
		if got, err := c.Len(ctx); err != nil || got != n {
			t.Fatalf("Len before %s = %d, %v; want %d", what, got, err, n)
		}
	}

	// The same cull by shards (the automatic choice at n > 10,000): the
	// Set lists and culls the sample only; the other shards are culled by
	// the background pass, which WaitCulls awaits.
	topUp("the sharded cull")
	// The count is an estimate from a sample of about 4096 entries (1.6%
	// error): a limit 5% below n is reached whatever the sample.
	sc := newCache(cache.WithMaxEntries(n - n/20))
	before = ctr.snapshot()
	start = time.Now()
	if err := sc.Set(ctx, "trigger", value, cache.NoExpiry); err != nil {
		t.Fatalf("Set at max_entries %d, by shards: %v", n, err)
	}
	setTook, setReqs := time.Since(start), ctr.since(before)
	if err := sc.WaitCulls(ctx); err != nil {
		t.Fatal(err)
	}
	passTook, passReqs := time.Since(start), ctr.since(before)
	left, err = sc.Len(ctx)
	if err != nil {
		t.Fatal(err)
	}
	culled = int64(n + 1 - left)
	t.Logf("cull by shards at max_entries %d over %d entries: the Set took %v with %d requests %v; the whole cull %v with %d requests %v; it culled %d entries (%d left)",
		n-n/20, n, setTook.Round(time.Millisecond), total(setReqs), setReqs, passTook.Round(time.Millisecond), total(passReqs), passReqs, culled, left)
	if l := setReqs[s3test.ListObjectsV2]; l > 2*16 {
		t.Errorf("sharded cull: the Set made %d LISTs, want at most 32 (its sample: at most 16 shards of a page or two)", l)
	}
	if third := int64(n) / 3; culled < third || culled > third+4096 {
		t.Errorf("sharded cull removed %d entries, want a third of %d (plus at most one per shard)", culled, n)
	}
	// The pass starts once the Set is done, so its own entry may be culled.
	if _, err := sc.Delete(ctx, "trigger"); err != nil {
		t.Fatalf("Delete(trigger): %v", err)
	}

	// Clear of n entries: top the location up to exactly n, then clear
	// with a fresh cache.
	topUp("Clear")
	clearer := newCache(cache.WithMaxEntries(0))
	before = ctr.snapshot()
	start = time.Now()
	if err := clearer.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	clearTook := time.Since(start)
	clearReqs := ctr.since(before)
	t.Logf("Clear of %d entries: %v, %d requests %v", n, clearTook.Round(time.Millisecond), total(clearReqs), clearReqs)
	if l, d := clearReqs[s3test.ListObjectsV2], clearReqs[s3test.DeleteObjects]; l > listings || d != pages || total(clearReqs) != l+d {
		t.Errorf("Clear: requests %v, want at most %d LISTs and %d DeleteObjects", clearReqs, listings, pages)
	}
	if got, err := clearer.Len(ctx); err != nil || got != 0 {
		t.Errorf("Len after Clear = %d, %v", got, err)
	}

	// The same n objects deleted one at a time, after the same listing.
	took = fill(all)
	t.Logf("filled %d entries again in %v", n, took.Round(time.Millisecond))
	before = ctr.snapshot()
	start = time.Now()
	var names []string
	for token := ""; ; {
		p, err := d.List(ctx, &driver.ListOptions{Prefix: c.Location(), PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range p.Objects {
			names = append(names, o.Name)
		}
		if token = p.NextPageToken; token == "" {
			break
		}
	}
	for _, name := range names {
		if err := d.Delete(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	oneTook := time.Since(start)
	oneReqs := ctr.since(before)
	speedup := oneTook.Seconds() / clearTook.Seconds()
	t.Logf("one at a time: %d objects in %v, %d requests %v; Clear is %.1fx faster", len(names), oneTook.Round(time.Millisecond), total(oneReqs), oneReqs, speedup)
	if len(names) != n {
		t.Errorf("listed %d objects before deleting one at a time, want %d", len(names), n)
	}
	// The speedup is reported, not asserted: it is a timing.
}

// TestLoadThroughput is the throughput run on MinIO, skipped unless
// BLOBCACHE_SCALE=1: 64 workers, 90% gets and 10% sets of 1 KiB values over
// 1,000 keys (max_entries 2,000: no culls), 20 seconds on the cache, then 20
// on its raw driver. It logs both reports and the throughput ratio; it
// asserts only that every operation was one request.
func TestLoadThroughput(t *testing.T) {
	if os.Getenv(envScale) != "1" {
		t.Skipf("load run skipped: set %s=1", envScale)
	}
	h := newBenchHarness(t)
	d, err := h.MakeDriver(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(d, cache.WithLocation("load"), cache.WithMaxEntries(2000))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mix, err := bench.ParseMix("get=90,set=10")
	if err != nil {
		t.Fatal(err)
	}
	cfg := bench.Workload{Workers: 64, Duration: 20 * time.Second, Keyspace: 1000, ValueSize: 1024, Mix: mix}
	cmp, err := bench.Compare(t.Context(), c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", cmp)
	for _, r := range []*bench.Report{cmp.Cache, cmp.Raw} {
		if r.RequestsPerOp > 1.01 {
			t.Errorf("%s: %.3f requests per operation, want 1", r.Target, r.RequestsPerOp)
		}
	}
}
