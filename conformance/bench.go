package conformance

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
)

// BenchHarnessMaker makes a fresh harness (an empty store) for one group of
// benchmarks: HarnessMaker for a *testing.B. RunBenchmarks calls it once per
// group (operation and size), never per iteration; go test -count runs the
// group's benchmarks again on the same store.
type BenchHarnessMaker func(ctx context.Context, b *testing.B) (Harness, error)

// RequestCounter is implemented by harnesses that count the requests sent to
// the store by every driver and bucket they make (on S3: HTTP requests, with
// a counting http.RoundTripper). RunBenchmarks then reports req/op.
type RequestCounter interface {
	// Requests returns how many requests were sent so far. It only grows.
	Requests() int64
}

// BucketHarness is implemented by harnesses that can open a Go CDK bucket
// (gocloud.dev/blob) on the same store, or on a store of the same kind where
// the driver is native (fileblob beside the file driver). RunBenchmarks then
// runs the Go CDK's own operation beside each cache operation, as
// impl=gocloud.
type BucketHarness interface {
	// OpenBucket returns a bucket the benchmark closes. Its requests must be
	// counted by RequestCounter when the harness implements it.
	OpenBucket(ctx context.Context) (*blob.Bucket, error)
}

// The implementations every benchmark of RunBenchmarks compares, as the last
// element of its name (impl=...), so that
//
//	benchstat -col /impl results.txt
//
// puts them side by side.
const (
	// ImplCache is the *cache.Cache call.
	ImplCache = "cache"
	// ImplDriver is the raw driver call(s) doing the same storage work:
	// Read for Get, Write for Set, an IfAbsent Write for Add, a range Read
	// for Has, Read then Replace for Incr, List and DeleteBatch for Clear.
	ImplDriver = "driver"
	// ImplGoCDK is the Go CDK bucket doing the same work with its portable
	// API (ReadAll, WriteAll, NewRangeReader, List and Delete one by one);
	// only with a BucketHarness.
	ImplGoCDK = "gocloud"
)

// Benchmark sizes.
const (
	benchKeys      = 100      // keys cycled through by Get, Set, Has
	benchManyKeys  = 100      // keys of one GetMany / SetMany
	benchClearN    = 1000     // entries removed by one Clear
	benchAddWindow = 4096     // Adds between two (untimed) clean-ups
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
//	Set/size=64KiB, Add, Has, Incr, GetMany/n=100, SetMany/n=100,
//	Clear/n=1000, and Big (Set and Get of 64 MiB, gzip off and on)
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
//		conformance.RunBenchmarks(b, func(ctx context.Context, b *testing.B) (conformance.Harness, error) {
//			return &harness{dir: b.TempDir()}, nil
//		})
//	}
//
// and runs it with go test -run XXX -bench Cache -benchmem -count 5.
func RunBenchmarks(b *testing.B, maker BenchHarnessMaker) {
	b.Helper()
	for _, size := range []int{smallValueSize, largeValueSize} {
		b.Run("Get/hit/size="+sizeName(size), func(b *testing.B) { benchGetHit(b, maker, size) })
	}
	b.Run("Get/miss", func(b *testing.B) { benchGetMiss(b, maker) })
	for _, size := range []int{smallValueSize, largeValueSize} {
		b.Run("Set/size="+sizeName(size), func(b *testing.B) { benchSet(b, maker, size) })
	}
	b.Run("Add", func(b *testing.B) { benchAdd(b, maker) })
	b.Run("Has", func(b *testing.B) { benchHas(b, maker) })
	b.Run("Incr", func(b *testing.B) { benchIncr(b, maker) })
	b.Run(fmt.Sprintf("GetMany/n=%d", benchManyKeys), func(b *testing.B) { benchGetMany(b, maker) })
	b.Run(fmt.Sprintf("SetMany/n=%d", benchManyKeys), func(b *testing.B) { benchSetMany(b, maker) })
	b.Run(fmt.Sprintf("Clear/n=%d", benchClearN), func(b *testing.B) { benchClear(b, maker) })
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

// bench is one group's store: a cache over its own driver, a second driver
// for the raw operations, and the Go CDK bucket when the harness has one.
type bench struct {
	ctx context.Context
	h   Harness
	c   *cache.Cache
	d   driver.Driver
	bkt *blob.Bucket
	rc  RequestCounter

	untimed int64 // requests made while the timer was stopped
}

func newBench(b *testing.B, maker BenchHarnessMaker, opts ...cache.Option) *bench {
	b.Helper()
	ctx := b.Context()
	h, err := maker(ctx, b)
	if err != nil {
		b.Fatalf("BenchHarnessMaker: %v", err)
	}
	if h == nil {
		b.Fatalf("BenchHarnessMaker returned a nil Harness")
	}
	b.Cleanup(h.Close)
	e := &bench{ctx: ctx, h: h}
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

func (e *bench) driver(b *testing.B) driver.Driver {
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
func (e *bench) newCache(b *testing.B, opts ...cache.Option) *cache.Cache {
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

func (e *bench) requests() int64 {
	if e.rc == nil {
		return 0
	}
	return e.rc.Requests()
}

// leaf runs one implementation's benchmark, reporting allocations and, where
// the harness counts them, requests per operation (those made while the
// timer was stopped excluded).
func (e *bench) leaf(b *testing.B, impl string, body func(b *testing.B)) {
	b.Run("impl="+impl, func(b *testing.B) {
		if impl == ImplGoCDK && e.bkt == nil {
			b.Skip("the harness opens no Go CDK bucket (conformance.BucketHarness)")
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
func (e *bench) pause(b *testing.B, f func()) {
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
func gcdkWriteOptions(value []byte) *blob.WriterOptions {
	sum := md5.Sum(value)
	return &blob.WriterOptions{ContentType: contentType, ContentMD5: sum[:]}
}

// fill stores value under every key of ks through the cache, the driver and
// the bucket.
func (e *bench) fill(b *testing.B, ks keySet, value []byte) {
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

func benchGetHit(b *testing.B, maker BenchHarnessMaker, size int) {
	e := newBench(b, maker)
	ks := makeKeys("get", benchKeys)
	e.fill(b, ks, randomValue(size))
	ctx := e.ctx
	e.leaf(b, ImplCache, func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			v, err := e.c.Get(ctx, ks.keys[i%benchKeys])
			if err != nil || len(v) != size {
				b.Fatalf("Get: %d bytes, %v", len(v), err)
			}
		}
	})
	e.leaf(b, ImplDriver, func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			v, _, err := e.d.Read(ctx, ks.raw[i%benchKeys], 0, -1)
			if err != nil || len(v) != size {
				b.Fatalf("Read: %d bytes, %v", len(v), err)
			}
		}
	})
	e.leaf(b, ImplGoCDK, func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			v, err := e.bkt.ReadAll(ctx, ks.gcdk[i%benchKeys])
			if err != nil || len(v) != size {
				b.Fatalf("ReadAll: %d bytes, %v", len(v), err)
			}
		}
	})
}

func benchGetMiss(b *testing.B, maker BenchHarnessMaker) {
	e := newBench(b, maker)
	ks := makeKeys("miss", benchKeys)
	ctx := e.ctx
	e.leaf(b, ImplCache, func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := e.c.Get(ctx, ks.keys[i%benchKeys]); !errors.Is(err, cache.ErrMiss) {
				b.Fatalf("Get of an absent key: %v, want ErrMiss", err)
			}
		}
	})
	e.leaf(b, ImplDriver, func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, _, err := e.d.Read(ctx, ks.raw[i%benchKeys], 0, -1); !errors.Is(err, driver.ErrNotFound) {
				b.Fatalf("Read of an absent object: %v, want ErrNotFound", err)
			}
		}
	})
	e.leaf(b, ImplGoCDK, func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := e.bkt.ReadAll(ctx, ks.gcdk[i%benchKeys]); gcerrors.Code(err) != gcerrors.NotFound {
				b.Fatalf("ReadAll of an absent object: %v, want NotFound", err)
			}
		}
	})
}

func benchSet(b *testing.B, maker BenchHarnessMaker, size int) {
	e := newBench(b, maker)
	ks := makeKeys("set", benchKeys)
	value := randomValue(size)
	// The first write of a cache lists its location; a store with the keys
	// already there is the steady state.
	e.fill(b, ks, value)
	ctx := e.ctx
	e.leaf(b, ImplCache, func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := e.c.Set(ctx, ks.keys[i%benchKeys], value, cache.DefaultTTL); err != nil {
				b.Fatalf("Set: %v", err)
			}
		}
	})
	e.leaf(b, ImplDriver, func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := e.d.Write(ctx, ks.raw[i%benchKeys], bytes.NewReader(value), &driver.WriteOptions{}); err != nil {
				b.Fatalf("Write: %v", err)
			}
		}
	})
	opts := gcdkWriteOptions(value)
	e.leaf(b, ImplGoCDK, func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := e.bkt.WriteAll(ctx, ks.gcdk[i%benchKeys], value, opts); err != nil {
				b.Fatalf("WriteAll: %v", err)
			}
		}
	})
}

func benchAdd(b *testing.B, maker BenchHarnessMaker) {
	e := newBench(b, maker, cache.WithMaxEntries(0))
	value := randomValue(smallValueSize)
	ctx := e.ctx
	// Every Add is of a new key: the numbers go on across the runs of a
	// leaf (go test -count runs a leaf again on the same store). Every
	// benchAddWindow Adds the store is emptied with the timer stopped, so
	// memory stores stay small.
	var next int
	e.leaf(b, ImplCache, func(b *testing.B) {
		for b.Loop() {
			if next++; next%benchAddWindow == 0 {
				e.pause(b, func() {
					if err := e.c.Clear(ctx); err != nil {
						b.Fatalf("Clear: %v", err)
					}
				})
			}
			added, err := e.c.Add(ctx, "add-"+strconv.Itoa(next), value, cache.DefaultTTL)
			if err != nil || !added {
				b.Fatalf("Add of a new key: %v, %v", added, err)
			}
		}
	})
	e.leaf(b, ImplDriver, func(b *testing.B) {
		for b.Loop() {
			if next++; next%benchAddWindow == 0 {
				e.pause(b, func() { e.clearRaw(b, "raw/") })
			}
			err := e.d.Write(ctx, "raw/add-"+strconv.Itoa(next), bytes.NewReader(value), &driver.WriteOptions{IfAbsent: true})
			if err != nil {
				b.Fatalf("IfAbsent Write of a new name: %v", err)
			}
		}
	})
	e.leaf(b, ImplGoCDK, func(b *testing.B) {
		opts := gcdkWriteOptions(value)
		opts.IfNotExist = true
		for b.Loop() {
			if next++; next%benchAddWindow == 0 {
				e.pause(b, func() { e.clearGoCDK(b, "gocloud/") })
			}
			if err := e.bkt.WriteAll(ctx, "gocloud/add-"+strconv.Itoa(next), value, opts); err != nil {
				b.Fatalf("IfNotExist WriteAll of a new key: %v", err)
			}
		}
	})
}

func benchHas(b *testing.B, maker BenchHarnessMaker) {
	e := newBench(b, maker)
	ks := makeKeys("has", benchKeys)
	e.fill(b, ks, randomValue(smallValueSize))
	ctx := e.ctx
	// The cache reads at most 32 bytes, enough for either entry framing.
	const headerRead = 32
	e.leaf(b, ImplCache, func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if ok, err := e.c.Has(ctx, ks.keys[i%benchKeys]); err != nil || !ok {
				b.Fatalf("Has: %v, %v", ok, err)
			}
		}
	})
	e.leaf(b, ImplDriver, func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if v, _, err := e.d.Read(ctx, ks.raw[i%benchKeys], 0, headerRead); err != nil || len(v) != headerRead {
				b.Fatalf("range Read: %d bytes, %v", len(v), err)
			}
		}
	})
	e.leaf(b, ImplGoCDK, func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			r, err := e.bkt.NewRangeReader(ctx, ks.gcdk[i%benchKeys], 0, headerRead, nil)
			if err != nil {
				b.Fatalf("NewRangeReader: %v", err)
			}
			v, err := io.ReadAll(r)
			r.Close()
			if err != nil || len(v) != headerRead {
				b.Fatalf("range read: %d bytes, %v", len(v), err)
			}
		}
	})
}

func benchIncr(b *testing.B, maker BenchHarnessMaker) {
	e := newBench(b, maker)
	ctx := e.ctx
	const key = "counter"
	name, gname := rawName("raw/", key), rawName("gocloud/", key)
	e.leaf(b, ImplCache, func(b *testing.B) {
		e.pause(b, func() {
			if err := e.c.Set(ctx, key, []byte("0"), cache.NoExpiry); err != nil {
				b.Fatalf("Set: %v", err)
			}
		})
		for b.Loop() {
			if _, err := e.c.Incr(ctx, key, 1); err != nil {
				b.Fatalf("Incr: %v", err)
			}
		}
	})
	replacer, _ := e.d.(driver.Replacer)
	e.leaf(b, ImplDriver, func(b *testing.B) {
		e.pause(b, func() {
			if err := e.d.Write(ctx, name, bytes.NewReader([]byte("0")), &driver.WriteOptions{}); err != nil {
				b.Fatalf("Write: %v", err)
			}
		})
		var buf [20]byte
		for b.Loop() {
			data, attrs, err := e.d.Read(ctx, name, 0, -1)
			if err != nil {
				b.Fatalf("Read: %v", err)
			}
			n, err := strconv.ParseInt(string(data), 10, 64)
			if err != nil {
				b.Fatalf("stored counter %q: %v", data, err)
			}
			body := bytes.NewReader(strconv.AppendInt(buf[:0], n+1, 10))
			if replacer != nil {
				err = replacer.Replace(ctx, name, body, attrs.ETag, &driver.WriteOptions{})
			} else {
				err = e.d.Write(ctx, name, body, &driver.WriteOptions{})
			}
			if err != nil {
				b.Fatalf("write back: %v", err)
			}
		}
	})
	e.leaf(b, ImplGoCDK, func(b *testing.B) {
		opts := &blob.WriterOptions{ContentType: contentType}
		e.pause(b, func() {
			if err := e.bkt.WriteAll(ctx, gname, []byte("0"), opts); err != nil {
				b.Fatalf("WriteAll: %v", err)
			}
		})
		var buf [20]byte
		for b.Loop() {
			data, err := e.bkt.ReadAll(ctx, gname)
			if err != nil {
				b.Fatalf("ReadAll: %v", err)
			}
			n, err := strconv.ParseInt(string(data), 10, 64)
			if err != nil {
				b.Fatalf("stored counter %q: %v", data, err)
			}
			// Not conditional: the Go CDK's portable API has no
			// replace-if-unchanged.
			if err := e.bkt.WriteAll(ctx, gname, strconv.AppendInt(buf[:0], n+1, 10), opts); err != nil {
				b.Fatalf("WriteAll: %v", err)
			}
		}
	})
}

func benchGetMany(b *testing.B, maker BenchHarnessMaker) {
	e := newBench(b, maker)
	ks := makeKeys("many", benchManyKeys)
	e.fill(b, ks, randomValue(smallValueSize))
	ctx := e.ctx
	e.leaf(b, ImplCache, func(b *testing.B) {
		for b.Loop() {
			m, err := e.c.GetMany(ctx, ks.keys)
			if err != nil || len(m) != benchManyKeys {
				b.Fatalf("GetMany: %d values, %v", len(m), err)
			}
		}
	})
	e.leaf(b, ImplDriver, func(b *testing.B) {
		for b.Loop() {
			err := parallel(ctx, benchManyKeys, benchManyConc, func(ctx context.Context, i int) error {
				_, _, err := e.d.Read(ctx, ks.raw[i], 0, -1)
				return err
			})
			if err != nil {
				b.Fatalf("Read: %v", err)
			}
		}
	})
	e.leaf(b, ImplGoCDK, func(b *testing.B) {
		for b.Loop() {
			err := parallel(ctx, benchManyKeys, benchManyConc, func(ctx context.Context, i int) error {
				_, err := e.bkt.ReadAll(ctx, ks.gcdk[i])
				return err
			})
			if err != nil {
				b.Fatalf("ReadAll: %v", err)
			}
		}
	})
}

func benchSetMany(b *testing.B, maker BenchHarnessMaker) {
	e := newBench(b, maker)
	ks := makeKeys("many", benchManyKeys)
	value := randomValue(smallValueSize)
	e.fill(b, ks, value)
	items := make(map[string][]byte, benchManyKeys)
	for _, k := range ks.keys {
		items[k] = value
	}
	ctx := e.ctx
	e.leaf(b, ImplCache, func(b *testing.B) {
		for b.Loop() {
			if err := e.c.SetMany(ctx, items, cache.DefaultTTL); err != nil {
				b.Fatalf("SetMany: %v", err)
			}
		}
	})
	e.leaf(b, ImplDriver, func(b *testing.B) {
		for b.Loop() {
			err := parallel(ctx, benchManyKeys, benchManyConc, func(ctx context.Context, i int) error {
				return e.d.Write(ctx, ks.raw[i], bytes.NewReader(value), &driver.WriteOptions{})
			})
			if err != nil {
				b.Fatalf("Write: %v", err)
			}
		}
	})
	opts := gcdkWriteOptions(value)
	e.leaf(b, ImplGoCDK, func(b *testing.B) {
		for b.Loop() {
			err := parallel(ctx, benchManyKeys, benchManyConc, func(ctx context.Context, i int) error {
				return e.bkt.WriteAll(ctx, ks.gcdk[i], value, opts)
			})
			if err != nil {
				b.Fatalf("WriteAll: %v", err)
			}
		}
	})
}

// benchClear times the removal of benchClearN entries; the store is refilled
// with the timer stopped before every iteration. impl=gocloud deletes one
// object at a time, as the Go CDK's portable API does.
func benchClear(b *testing.B, maker BenchHarnessMaker) {
	e := newBench(b, maker, cache.WithMaxEntries(0))
	filler := e.newCache(b, cache.WithMaxEntries(0))
	ks := makeKeys("clear", benchClearN)
	value := []byte("v")
	ctx := e.ctx
	fillWith := func(b *testing.B, f func(ctx context.Context, i int) error) {
		if err := parallel(ctx, benchClearN, benchFillConc, f); err != nil {
			b.Fatalf("filling the store: %v", err)
		}
	}
	e.leaf(b, ImplCache, func(b *testing.B) {
		for b.Loop() {
			e.pause(b, func() {
				fillWith(b, func(ctx context.Context, i int) error {
					return filler.Set(ctx, ks.keys[i], value, cache.NoExpiry)
				})
			})
			if err := e.c.Clear(ctx); err != nil {
				b.Fatalf("Clear: %v", err)
			}
		}
	})
	e.leaf(b, ImplDriver, func(b *testing.B) {
		for b.Loop() {
			e.pause(b, func() {
				fillWith(b, func(ctx context.Context, i int) error {
					return e.d.Write(ctx, ks.raw[i], bytes.NewReader(value), &driver.WriteOptions{})
				})
			})
			e.clearRaw(b, "raw/")
		}
	})
	e.leaf(b, ImplGoCDK, func(b *testing.B) {
		opts := &blob.WriterOptions{ContentType: contentType}
		for b.Loop() {
			e.pause(b, func() {
				fillWith(b, func(ctx context.Context, i int) error {
					return e.bkt.WriteAll(ctx, ks.gcdk[i], value, opts)
				})
			})
			e.clearGoCDK(b, "gocloud/")
		}
	})
}

// clearRaw removes every object under prefix with the driver: list every
// page, then delete in batches (or one by one without a BatchDeleter), 8
// requests at a time, as the cache does.
func (e *bench) clearRaw(b *testing.B, prefix string) {
	b.Helper()
	var names []string
	opts := &driver.ListOptions{Prefix: prefix}
	for {
		page, err := e.d.List(e.ctx, opts)
		if err != nil {
			b.Fatalf("List: %v", err)
		}
		for _, o := range page.Objects {
			names = append(names, o.Name)
		}
		if page.NextPageToken == "" {
			break
		}
		opts.PageToken = page.NextPageToken
	}
	var err error
	if bd, ok := e.d.(driver.BatchDeleter); ok {
		n := (len(names) + driver.MaxBatchDelete - 1) / driver.MaxBatchDelete
		err = parallel(e.ctx, n, 8, func(ctx context.Context, i int) error {
			return bd.DeleteBatch(ctx, names[i*driver.MaxBatchDelete:min(len(names), (i+1)*driver.MaxBatchDelete)])
		})
	} else {
		err = parallel(e.ctx, len(names), 8, func(ctx context.Context, i int) error {
			return e.d.Delete(ctx, names[i])
		})
	}
	if err != nil {
		b.Fatalf("delete: %v", err)
	}
}

// clearGoCDK removes every object under prefix through the Go CDK's portable
// API: a listing and one Delete per object, in sequence.
func (e *bench) clearGoCDK(b *testing.B, prefix string) {
	b.Helper()
	it := e.bkt.List(&blob.ListOptions{Prefix: prefix})
	for {
		o, err := it.Next(e.ctx)
		if err == io.EOF {
			return
		}
		if err != nil {
			b.Fatalf("List: %v", err)
		}
		if err := e.bkt.Delete(e.ctx, o.Key); err != nil {
			b.Fatalf("Delete: %v", err)
		}
	}
}

// benchBig sets or gets one 64 MiB value; B/op is the memory the operation
// allocates (an upper bound of its peak heap growth).
func benchBig(b *testing.B, maker BenchHarnessMaker, op string, gz bool) {
	e := newBench(b, maker, cache.WithGzip(gz), cache.WithMaxEntries(0))
	value := randomValue(bigValueSize)
	ctx := e.ctx
	const key = "big"
	name := rawName("raw/", key)
	b.SetBytes(int64(bigValueSize))
	e.leaf(b, ImplCache, func(b *testing.B) {
		if op == "Get" {
			e.pause(b, func() {
				if err := e.c.Set(ctx, key, value, cache.NoExpiry); err != nil {
					b.Fatalf("Set: %v", err)
				}
			})
		}
		for b.Loop() {
			if op == "Set" {
				if err := e.c.Set(ctx, key, value, cache.NoExpiry); err != nil {
					b.Fatalf("Set: %v", err)
				}
			} else if v, err := e.c.Get(ctx, key); err != nil || len(v) != bigValueSize {
				b.Fatalf("Get: %d bytes, %v", len(v), err)
			}
		}
	})
	e.leaf(b, ImplDriver, func(b *testing.B) {
		if op == "Get" {
			e.pause(b, func() {
				if err := e.d.Write(ctx, name, bytes.NewReader(value), &driver.WriteOptions{}); err != nil {
					b.Fatalf("Write: %v", err)
				}
			})
		}
		for b.Loop() {
			if op == "Set" {
				if err := e.d.Write(ctx, name, bytes.NewReader(value), &driver.WriteOptions{}); err != nil {
					b.Fatalf("Write: %v", err)
				}
			} else if v, _, err := e.d.Read(ctx, name, 0, -1); err != nil || len(v) != bigValueSize {
				b.Fatalf("Read: %d bytes, %v", len(v), err)
			}
		}
	})
}

// MemoryUse is what one operation on a large value cost in heap memory.
type MemoryUse struct {
	// Allocated is the bytes allocated during the operation (the benchmark's
	// B/op): an upper bound of how much the heap grew.
	Allocated uint64
	// Peak is the largest growth of live heap objects seen while the
	// operation ran, sampled every 100µs: a lower bound of the true peak.
	Peak uint64
}

// MeasureMemory runs f once, after a GC, and reports the memory it used.
// Other goroutines' allocations count too, so run it alone.
func MeasureMemory(f func() error) (MemoryUse, error) {
	samples := []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
	}
	runtime.GC()
	metrics.Read(samples)
	alloc0, live0 := samples[0].Value.Uint64(), samples[1].Value.Uint64()
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(100 * time.Microsecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > live0 && v-live0 > peak.Load() {
				peak.Store(v - live0)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	err := f()
	metrics.Read(samples)
	close(done)
	wg.Wait()
	if v := samples[1].Value.Uint64(); v > live0 && v-live0 > peak.Load() {
		peak.Store(v - live0)
	}
	return MemoryUse{Allocated: samples[0].Value.Uint64() - alloc0, Peak: peak.Load()}, err
}

// ValueMemory measures Set and Get of one value of size random bytes through
// a cache (gzip off and on) and through the raw driver, on a fresh store from
// maker, and returns the results by "op/gzip=.../impl" (for example
// "Set/gzip=on/cache"). A test can assert the memory bound it wants, such as
// Allocated < 3*size.
func ValueMemory(t *testing.T, maker HarnessMaker, size int) map[string]MemoryUse {
	t.Helper()
	ctx := t.Context()
	h, err := maker(ctx, t)
	if err != nil {
		t.Fatalf("HarnessMaker: %v", err)
	}
	t.Cleanup(h.Close)
	open := func() driver.Driver {
		d, err := h.MakeDriver(ctx)
		if err != nil {
			t.Fatalf("MakeDriver: %v", err)
		}
		return d
	}
	value := randomValue(size)
	out := map[string]MemoryUse{}
	measure := func(what string, f func() error) {
		t.Helper()
		m, err := MeasureMemory(f)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		out[what] = m
		t.Logf("%-22s allocated %6.2fx the value (%d MiB), sampled peak %5.2fx", what,
			float64(m.Allocated)/float64(size), m.Allocated>>20, float64(m.Peak)/float64(size))
	}
	for _, gz := range []bool{false, true} {
		c, err := cache.New(open(), cache.WithLocation("mem-"+onOff(gz)), cache.WithGzip(gz), cache.WithMaxEntries(0))
		if err != nil {
			t.Fatal(err)
		}
		// One round first, so that pools and connections are warm.
		if err := c.Set(ctx, "warm", value[:1<<20], cache.NoExpiry); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(ctx, "warm"); err != nil {
			t.Fatal(err)
		}
		suffix := "/gzip=" + onOff(gz) + "/cache"
		measure("Set"+suffix, func() error { return c.Set(ctx, "big", value, cache.NoExpiry) })
		measure("Get"+suffix, func() error {
			v, err := c.Get(ctx, "big")
			if err == nil && !bytes.Equal(v, value) {
				err = errors.New("Get returned other bytes")
			}
			return err
		})
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	d := open()
	defer d.Close()
	name := rawName("raw/", "big")
	measure("Set/driver", func() error { return d.Write(ctx, name, bytes.NewReader(value), &driver.WriteOptions{}) })
	measure("Get/driver", func() error {
		v, _, err := d.Read(ctx, name, 0, -1)
		if err == nil && len(v) != size {
			err = fmt.Errorf("Read returned %d bytes", len(v))
		}
		return err
	})
	return out
}
