package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"strconv"
	"testing"

	"github.com/blobcache/blobcache/driver"
)

// nullDriver costs nothing: Write drains the body into io.Discard (no copy of
// the value), Read returns one stored object without copying it. Over it, a
// benchmark or a memory measurement sees the cache core alone.
type nullDriver struct {
	obj   []byte // what every Read returns
	reads int
}

func (d *nullDriver) Read(_ context.Context, _ string, off, n int64) ([]byte, driver.Attributes, error) {
	d.reads++
	if d.obj == nil {
		return nil, driver.Attributes{}, driver.ErrNotFound
	}
	b := d.obj[min(off, int64(len(d.obj))):]
	if n >= 0 && n < int64(len(b)) {
		b = b[:n]
	}
	return b, driver.Attributes{Size: int64(len(d.obj)), ETag: `"1"`}, nil
}

func (d *nullDriver) Write(_ context.Context, _ string, r io.Reader, _ *driver.WriteOptions) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

func (d *nullDriver) Replace(ctx context.Context, name string, r io.Reader, _ string, o *driver.WriteOptions) error {
	return d.Write(ctx, name, r, o)
}

func (d *nullDriver) Delete(context.Context, string) error { return nil }
func (d *nullDriver) List(context.Context, *driver.ListOptions) (*driver.ListPage, error) {
	return &driver.ListPage{}, nil
}
func (d *nullDriver) Close() error { return nil }

// newNullCache returns a cache over a nullDriver whose objects hold value,
// encoded as the cache would.
func newNullCache(tb testing.TB, value []byte, opts ...Option) (*Cache, *nullDriver) {
	tb.Helper()
	d := &nullDriver{}
	c, err := New(d, append([]Option{WithLocation("cache")}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	if value != nil {
		e, err := encodeEntry(value, 0, 0, c.gzip, "", nil)
		if err != nil {
			tb.Fatal(err)
		}
		d.obj, err = io.ReadAll(e.reader())
		e.release()
		if err != nil {
			tb.Fatal(err)
		}
	}
	return c, d
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// compressible returns n bytes that gzip shrinks about 4x.
func compressible(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "entry %d of a log line with a timestamp %x and some words\n", i, i*2654435761)
	}
	return b.Bytes()[:n]
}

// The cache core's cost per call, without storage. Compare with the
// conformance benchmarks (drivers/*/bench_test.go) for the share of a real
// call:
//
//	go test -run XXX -bench Core -benchmem ./cache/
func BenchmarkCore(b *testing.B) {
	ctx := context.Background()
	for _, size := range []int{1 << 10, 64 << 10} {
		for _, gz := range []bool{false, true} {
			value := compressible(size)
			name := fmt.Sprintf("size=%dKiB/gzip=%v", size>>10, gz)
			b.Run("Get/"+name, func(b *testing.B) {
				c, _ := newNullCache(b, value, WithGzip(gz))
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for b.Loop() {
					if v, err := c.Get(ctx, "key"); err != nil || len(v) != size {
						b.Fatalf("Get: %d bytes, %v", len(v), err)
					}
				}
			})
			b.Run("Set/"+name, func(b *testing.B) {
				c, _ := newNullCache(b, nil, WithGzip(gz), WithMaxEntries(0))
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for b.Loop() {
					if err := c.Set(ctx, "key", value, DefaultTTL); err != nil {
						b.Fatalf("Set: %v", err)
					}
				}
			})
		}
	}
	b.Run("Get/miss", func(b *testing.B) {
		c, _ := newNullCache(b, nil)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Get(ctx, "key"); err == nil {
				b.Fatal("hit")
			}
		}
	})
	b.Run("Set/max_entries=300", func(b *testing.B) {
		c, _ := newNullCache(b, nil)
		value := compressible(1 << 10)
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Set(ctx, "key", value, DefaultTTL); err != nil {
				b.Fatalf("Set: %v", err)
			}
		}
	})
	b.Run("Has", func(b *testing.B) {
		c, _ := newNullCache(b, compressible(1<<10))
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := c.Has(ctx, "key"); err != nil || !ok {
				b.Fatalf("Has: %v, %v", ok, err)
			}
		}
	})
	b.Run("Incr", func(b *testing.B) {
		c, _ := newNullCache(b, []byte("12345"))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Incr(ctx, "key", 1); err != nil {
				b.Fatalf("Incr: %v", err)
			}
		}
	})
	b.Run("ObjectName", func(b *testing.B) {
		c, _ := newNullCache(b, nil)
		b.ReportAllocs()
		for b.Loop() {
			_ = c.objectName("user:42:profile")
		}
	})
}

// allocated returns the bytes allocated while f ran.
func allocated(f func()) uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	runtime.GC()
	metrics.Read(s)
	before := s[0].Value.Uint64()
	f()
	metrics.Read(s)
	return s[0].Value.Uint64() - before
}

// TestLargeValueCoreMemory bounds what the cache core itself allocates to
// Set and Get a 64 MiB value, gzip off and on, with a driver that neither
// copies nor keeps anything: at most the value once more (the compressed
// entry for a gzip Set, the decompressed value for a gzip Get), and nothing
// of the value's size without gzip. What a real driver adds is measured per
// driver (bench.ValueMemory in drivers/*/bench_test.go).
func TestLargeValueCoreMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB values")
	}
	const size = 64 << 20
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		value []byte
		gz    bool
		// limits, as multiples of size
		set, get float64
	}{
		{"gzip=off", randomBytes(size), false, 0.01, 0.01},
		// Random bytes do not compress: the entry is as large as the value.
		{"gzip=on/incompressible", randomBytes(size), true, 1.05, 1.05},
		{"gzip=on/compressible", compressible(size), true, 1.05, 1.05},
	} {
		t.Run(c.name, func(t *testing.T) {
			cc, d := newNullCache(t, c.value, WithGzip(c.gz), WithMaxEntries(0))
			// Warm the pools.
			if err := cc.Set(ctx, "warm", c.value[:1<<20], NoExpiry); err != nil {
				t.Fatal(err)
			}
			var err error
			set := allocated(func() { err = cc.Set(ctx, "big", c.value, NoExpiry) })
			if err != nil {
				t.Fatal(err)
			}
			var v []byte
			get := allocated(func() { v, err = cc.Get(ctx, "big") })
			if err != nil || !bytes.Equal(v, c.value) {
				t.Fatalf("Get: %d bytes, %v", len(v), err)
			}
			t.Logf("stored entry %.3fx the value; core allocations: Set %.3fx, Get %.3fx (%s of %d MiB)",
				float64(len(d.obj))/size, float64(set)/size, float64(get)/size, strconv.Itoa(size>>20)+" MiB", size>>20)
			if float64(set) > c.set*size {
				t.Errorf("Set allocated %.2fx the value, want at most %.2fx", float64(set)/size, c.set)
			}
			if float64(get) > c.get*size {
				t.Errorf("Get allocated %.2fx the value, want at most %.2fx", float64(get)/size, c.get)
			}
		})
	}
}
