package bench

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
)

// Benchmark sizes.
const (
	benchKeys      = 100      // keys cycled through by Get, Set, Has
	benchManyKeys  = 100      // keys of one GetMany / SetMany
	benchClearN    = 1000     // entries removed by one Clear
	benchAddWindow = 4096     // Adds between two (untimed) clean-ups
	benchDelWindow = 256      // entries written (untimed) for the Deletes that follow
	benchFillConc  = 32       // concurrent writes when filling a store
	benchManyConc  = 16       // concurrency of the raw GetMany/SetMany (the cache's)
	smallValueSize = 1 << 10  // the default value
	largeValueSize = 64 << 10 // the second size of Get and Set
	contentType    = "application/octet-stream"
)

// bigValueSize is the value of the Big benchmarks (a variable so that the
// package's own test can run them small).
var bigValueSize = 64 << 20

// RunBenchmarks benchmarks the cache over the driver a harness makes, each
// cache operation beside the raw driver operation doing the same storage work
// and, with a BucketHarness, the Go CDK's portable operation:
//
//	Get/hit/size=1KiB, Get/hit/size=64KiB, Get/miss, Set/size=1KiB,
//	Set/size=64KiB, Add, Delete (of a live entry), Has, Incr, GetMany/n=100, SetMany/n=100,
//	Clear/n=1000, LocalTier/zipf (Gets of a Zipf-distributed keyspace ten
//	times a local tier's size, with the tier and without),
//	LocalTier/staleness (how long another process's write takes to be seen
//	through a tier), and Big (Set and Get of 64 MiB, gzip off and on)
//
// each ending in impl=cache, impl=driver or impl=gocloud. Every benchmark
// reports allocations and, with a RequestCounter, req/op. The cache uses the
// default options (max_entries 300, no gzip) at location "cache" unless the
// name says otherwise (Add: max_entries 0, since every Add makes a new
// entry); the raw operations use names of the same length under "raw/" and
// "gocloud/".
//
// A driver's test calls it from a benchmark:
//
//	func BenchmarkCache(b *testing.B) {
//		bench.RunBenchmarks(b, func(ctx context.Context, tb testing.TB) (bench.Harness, error) {
//			return &harness{dir: tb.TempDir()}, nil
//		})
//	}
//
// and runs it with go test -run XXX -bench Cache -benchmem -count 5.
func RunBenchmarks(b *testing.B, maker HarnessMaker) {
	b.Helper()
	for _, size := range []int{smallValueSize, largeValueSize} {
		b.Run("Get/hit/size="+sizeName(size), func(b *testing.B) { benchGetHit(b, maker, size) })
	}
	b.Run("Get/miss", func(b *testing.B) { benchGetMiss(b, maker) })
	for _, size := range []int{smallValueSize, largeValueSize} {
		b.Run("Set/size="+sizeName(size), func(b *testing.B) { benchSet(b, maker, size) })
	}
	b.Run("Add", func(b *testing.B) { benchAdd(b, maker) })
	b.Run("Delete", func(b *testing.B) { benchDelete(b, maker) })
	b.Run("Has", func(b *testing.B) { benchHas(b, maker) })
	b.Run("Incr", func(b *testing.B) { benchIncr(b, maker) })
	b.Run(fmt.Sprintf("HotCounter/goroutines=%d", hotCounterGoroutines), func(b *testing.B) { benchHotCounter(b, maker) })
	b.Run(fmt.Sprintf("GetMany/n=%d", benchManyKeys), func(b *testing.B) { benchGetMany(b, maker) })
	b.Run(fmt.Sprintf("SetMany/n=%d", benchManyKeys), func(b *testing.B) { benchSetMany(b, maker) })
	b.Run(fmt.Sprintf("Clear/n=%d", benchClearN), func(b *testing.B) { benchClear(b, maker) })
	b.Run(fmt.Sprintf("LocalTier/zipf/keys=%d", zipfKeys), func(b *testing.B) { benchLocalTier(b, maker) })
	b.Run("LocalTier/staleness", func(b *testing.B) { benchLocalStaleness(b, maker) })
	for _, gz := range []bool{false, true} {
		for _, op := range []string{"Set", "Get"} {
			b.Run(fmt.Sprintf("Big/%s/size=%s/gzip=%v", op, sizeName(bigValueSize), onOff(gz)), func(b *testing.B) {
				benchBig(b, maker, op, gz)
			})
		}
	}
}

func onOff(v bool) string {
	if v {
		return "on"
	}
	return "off"
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// group is one group of benchmarks and its store: a cache over its own driver, a second driver
// for the raw operations, and the Go CDK bucket when the harness has one.
type group struct {
	ctx context.Context
	h   Harness
	c   *cache.Cache
	d   driver.Driver
	bkt Bucket
	rc  RequestCounter

	untimed int64 // requests made while the timer was stopped
}

func newGroup(b *testing.B, maker HarnessMaker, opts ...cache.Option) *group {
	b.Helper()
	ctx := b.Context()
	h, err := maker(ctx, b)
	if err != nil {
		b.Fatalf("HarnessMaker: %v", err)
	}
	if h == nil {
		b.Fatalf("HarnessMaker returned a nil Harness")
	}
	b.Cleanup(h.Close)
	e := &group{ctx: ctx, h: h}
	e.rc, _ = h.(RequestCounter)
	e.c = e.newCache(b, opts...)
	e.d = e.driver(b)
	if bh, ok := h.(BucketHarness); ok {
		bkt, err := bh.OpenBucket(ctx)
		if err != nil {
			b.Fatalf("OpenBucket: %v", err)
		}
		b.Cleanup(func() { bkt.Close() })
		e.bkt = bkt
	}
	return e
}

func (e *group) driver(b *testing.B) driver.Driver {
	b.Helper()
	d, err := e.h.MakeDriver(e.ctx)
	if err != nil {
		b.Fatalf("MakeDriver: %v", err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}

// newCache returns a cache at location "cache" over a new driver, which it
// owns.
func (e *group) newCache(b *testing.B, opts ...cache.Option) *cache.Cache {
	b.Helper()
	d, err := e.h.MakeDriver(e.ctx)
	if err != nil {
		b.Fatalf("MakeDriver: %v", err)
	}
	c, err := cache.New(d, append([]cache.Option{cache.WithLocation("cache")}, opts...)...)
	if err != nil {
		d.Close()
		b.Fatalf("cache.New: %v", err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

func (e *group) requests() int64 {
	if e.rc == nil {
		return 0
	}
	return e.rc.Requests()
}

// leaf runs one implementation's benchmark, reporting allocations and, where
// the harness counts them, requests per operation (those made while the
// timer was stopped excluded).
func (e *group) leaf(b *testing.B, impl string, body func(b *testing.B)) {
	b.Run("impl="+impl, func(b *testing.B) {
		if impl == ImplGoCDK && e.bkt == nil {
			b.Skip("the harness opens no Go CDK bucket (bench.BucketHarness)")
		}
		b.ReportAllocs()
		e.untimed = 0
		r0 := e.requests()
		body(b)
		if e.rc != nil && b.N > 0 {
			b.ReportMetric(float64(e.requests()-r0-e.untimed)/float64(b.N), "req/op")
		}
	})
}

// pause runs f with the timer stopped; its requests are not counted.
func (e *group) pause(b *testing.B, f func()) {
	b.StopTimer()
	r0 := e.requests()
	f()
	e.untimed += e.requests() - r0
	b.StartTimer()
}

// parallel runs f(0..n-1), conc at a time, and returns the first error.
func parallel(ctx context.Context, n, conc int, f func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	for i := range n {
		g.Go(func() error { return f(gctx, i) })
	}
	return g.Wait()
}

// randomValue returns n random (incompressible) bytes.
func randomValue(n int) []byte {
	v := make([]byte, n)
	rand.Read(v)
	return v
}

// rawName returns prefix + hex(sha1(key)): as long as the cache's names.
func rawName(prefix, key string) string {
	s := sha1.Sum([]byte(key))
	return prefix + hex.EncodeToString(s[:])
}

// keySet is a benchmark's keys and the raw names beside them.
type keySet struct {
	keys, raw, gcdk []string
}

func makeKeys(what string, n int) keySet {
	var ks keySet
	for i := range n {
		k := fmt.Sprintf("%s-%04d", what, i)
		ks.keys = append(ks.keys, k)
		ks.raw = append(ks.raw, rawName("raw/", k))
		ks.gcdk = append(ks.gcdk, rawName("gocloud/", k))
	}
	return ks
}

// gcdkWriteOptions are the Go CDK write options of the raw writes: the
// driver's content type, and a precomputed MD5 so that WriteAll does not hash
// the value in the timed loop (the drivers do not hash either).
func gcdkWriteOptions(value []byte) *WriteOptions {
	sum := md5.Sum(value)
	return &WriteOptions{ContentType: contentType, ContentMD5: sum[:]}
}

// fill stores value under every key of ks through the cache, the driver and
// the bucket.
func (e *group) fill(b *testing.B, ks keySet, value []byte) {
	b.Helper()
	err := parallel(e.ctx, len(ks.keys), benchFillConc, func(ctx context.Context, i int) error {
		if err := e.c.Set(ctx, ks.keys[i], value, cache.NoExpiry); err != nil {
			return err
		}
		if err := e.d.Write(ctx, ks.raw[i], bytes.NewReader(value), &driver.WriteOptions{}); err != nil {
			return err
		}
		if e.bkt != nil {
			return e.bkt.WriteAll(ctx, ks.gcdk[i], value, gcdkWriteOptions(value))
		}
		return nil
	})
	if err != nil {
		b.Fatalf("filling the store: %v", err)
	}
}
