package s3_test

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/s3"
	"github.com/blobcache/blobcache/internal/s3test"
)

// opCounter counts requests by S3 operation with atomic adds (it keeps no
// record of each request, unlike s3test.CountingTransport, which would hold
// hundreds of thousands here).
type opCounter struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    map[s3test.Op]*atomic.Int64
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

// envScale enables TestScale; envScaleN changes its entry count.
const (
	envScale  = "BLOBCACHE_SCALE"
	envScaleN = "BLOBCACHE_SCALE_N"
)

// TestScale is the scale run on MinIO, skipped unless
// BLOBCACHE_SCALE=1 (it writes about 230,000 objects and deletes 100,000 one
// at a time: several minutes):
//
//	BLOBCACHE_SCALE=1 go run ./internal/cmd/testall -race=false -timeout 60m -run TestScale -v ./drivers/s3/
//
// With n = 100,000 entries (BLOBCACHE_SCALE_N changes it):
//
//   - Cull: a cache with max_entries n over a location holding n entries
//     makes one write; that write lists the location (at most n/1000
//     LISTs) and culls a third with ceil(culled/1000) DeleteObjects.
//   - Clear of n entries costs at most 2*ceil(n/1000) requests (LISTs and
//     DeleteObjects) and is at least 10x faster than deleting the same n
//     objects one at a time (one DeleteObject each, in sequence) after the
//     same listing.
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
	cfg := s3test.Env(t)
	bucket := s3test.NewBucket(t, cfg)
	ctr := newOpCounter(benchTransport)
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
	c := newCache(cache.WithMaxEntries(n))
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
	if l := cullReqs[s3test.ListObjectsV2]; l > pages {
		t.Errorf("cull: %d LISTs, want at most %d", l, pages)
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

	// Clear of n entries: top the location up to exactly n, then clear
	// with a fresh cache.
	live := map[string]bool{}
	d := open()
	defer d.Close()
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
		t.Fatalf("Len before Clear = %d, %v; want %d", got, err, n)
	}
	clearer := newCache(cache.WithMaxEntries(0))
	before = ctr.snapshot()
	start = time.Now()
	if err := clearer.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	clearTook := time.Since(start)
	clearReqs := ctr.since(before)
	t.Logf("Clear of %d entries: %v, %d requests %v", n, clearTook.Round(time.Millisecond), total(clearReqs), clearReqs)
	if got := total(clearReqs); got > 2*pages {
		t.Errorf("Clear: %d requests, want at most %d", got, 2*pages)
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
	if speedup < 10 {
		t.Errorf("Clear is %.1fx faster than deleting one at a time, want at least 10x", speedup)
	}
}
