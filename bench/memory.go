package bench

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/internal/memuse"
)

// benchBig sets or gets one 64 MiB value; B/op is the memory the operation
// allocates (an upper bound of its peak heap growth).
func benchBig(b *testing.B, maker HarnessMaker, op string, gz bool) {
	e := newGroup(b, maker, cache.WithGzip(gz), cache.WithMaxEntries(0))
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
	m, err := memuse.Measure(f)
	return MemoryUse(m), err
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
