package cache_test

// Hostile stored objects: whatever sits at an entry's name, a read allocates
// within the bound the README states (about the object's real size plus 3
// times its real decompressed size, never more than about 4 x
// max_value_size), is a miss, and never decompresses a signed entry whose MAC
// fails.

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/mem"
)

// allocDuring returns the bytes allocated while f ran.
func allocDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// plant writes data at name behind the cache's back.
func plant(t *testing.T, d driver.Driver, name string, data []byte) {
	t.Helper()
	if err := d.Write(t.Context(), name, bytes.NewReader(data), &driver.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// stored returns the object the cache stored for key.
func stored(t *testing.T, c *cache.Cache, key string) []byte {
	t.Helper()
	b, _, err := c.Driver().Read(t.Context(), c.ObjectName(key), 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantDeadMiss checks that Get of key is a miss, that it allocated at most
// bound bytes, and that the object is gone.
func wantDeadMiss(t *testing.T, c *cache.Cache, key string, bound uint64) {
	t.Helper()
	var err error
	n := allocDuring(func() { _, err = c.Get(t.Context(), key) })
	if !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get = %v, want a miss", err)
	}
	t.Logf("Get allocated %d KiB (bound %d KiB)", n>>10, bound>>10)
	if n > bound {
		t.Errorf("Get allocated %d bytes, want at most %d", n, bound)
	}
	if _, _, err := c.Driver().Read(t.Context(), c.ObjectName(key), 0, 0); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("the dead object is still there: %v", err)
	}
}

func TestHostileGzipForgedSize(t *testing.T) {
	c, err := cache.New(mem.New(), cache.WithGzip(true))
	if err != nil {
		t.Fatal(err)
	}
	// 1 MiB of incompressible bytes: the entry is about 1 MiB. Its ISIZE
	// trailer is forged to claim 4 GiB: before, the reader trusted it up to
	// 1032 times the entry (1 GiB).
	v := make([]byte, 1<<20)
	rand.Read(v)
	must(t, c.Set(t.Context(), "k", v, cache.NoExpiry))
	b := stored(t, c, "k")
	binary.LittleEndian.PutUint32(b[len(b)-4:], 0xffffffff)
	plant(t, c.Driver(), c.ObjectName("k"), b)
	wantDeadMiss(t, c, "k", 24<<20) // 16x the entry to start, plus the entry
}

func TestHostileGzipBomb(t *testing.T) {
	// 64 MiB of zeros deflates to about 64 KiB; with max_value_size 4 MiB
	// the reader stops at 4 MiB.
	c, err := cache.New(mem.New(), cache.WithMaxValueSize(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	// The header a gzip entry of this cache carries (taken from a real one).
	zc, _ := cache.New(mem.New(), cache.WithGzip(true))
	must(t, zc.Set(t.Context(), "k", []byte("x"), cache.NoExpiry))
	real := stored(t, zc, "k")
	zw.Header.Extra = real[12 : 16+16]
	zw.Header.OS = 255
	zero := make([]byte, 1<<20)
	for range 64 {
		zw.Write(zero)
	}
	zw.Close()
	if _, err := cache.InspectEntry(buf.Bytes()); err != nil {
		t.Fatalf("suite bug: the bomb is not an entry: %v", err)
	}
	plant(t, c.Driver(), c.ObjectName("k"), buf.Bytes())
	t.Logf("bomb: %d KiB stored", buf.Len()>>10)
	wantDeadMiss(t, c, "k", 4*4<<20)
}

func TestHostileObjectLargerThanMaxValue(t *testing.T) {
	c, err := cache.New(mem.New(), cache.WithMaxValueSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	// A valid plain entry of 8 MiB, as a writer with a larger limit (or an
	// attacker) would store it: the reader reads at most its limit.
	big, err := cache.New(c.Driver(), cache.WithMaxValueSize(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	must(t, big.Set(t.Context(), "k", make([]byte, 8<<20), cache.NoExpiry))
	wantDeadMiss(t, c, "k", 3<<20)

	// Writes refuse what reads would refuse.
	for _, err := range []error{
		c.Set(t.Context(), "k", make([]byte, 1<<20+1), cache.NoExpiry),
		c.SetMany(t.Context(), map[string][]byte{"a": nil, "b": make([]byte, 2<<20)}, cache.NoExpiry),
		func() error { _, err := c.Add(t.Context(), "k", make([]byte, 2<<20), cache.NoExpiry); return err }(),
	} {
		if !errors.Is(err, cache.ErrValueTooLarge) {
			t.Errorf("write of a value over max_value_size: %v, want ErrValueTooLarge", err)
		}
	}
	must(t, c.Set(t.Context(), "k", make([]byte, 1<<20), cache.NoExpiry))
	if v, err := c.Get(t.Context(), "k"); err != nil || len(v) != 1<<20 {
		t.Errorf("Get of a value of exactly max_value_size: %d bytes, %v", len(v), err)
	}
}

func TestHostileSignedBombIsNotDecompressed(t *testing.T) {
	key := cache.WithSigningKeys([]byte("0123456789abcdef0123456789abcdef"))
	c, err := cache.New(mem.New(), key, cache.WithGzip(true))
	if err != nil {
		t.Fatal(err)
	}
	must(t, c.Set(t.Context(), "k", []byte("x"), cache.NoExpiry))
	real := stored(t, c, "k")
	// A writer without the key copies a signed entry's header (flags, MAC
	// and all) onto a gzip bomb of 32 MiB of zeros.
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Header.Extra = real[12 : 16+48]
	zw.Header.OS = 255
	zero := make([]byte, 1<<20)
	for range 32 {
		zw.Write(zero)
	}
	zw.Close()
	plant(t, c.Driver(), c.ObjectName("k"), buf.Bytes())
	// The MAC is checked over the stored bytes before anything is
	// decompressed: the read costs the object and no more.
	wantDeadMiss(t, c, "k", uint64(2*buf.Len())+1<<20)
	if got := c.Stats().Forged; got != 1 {
		t.Errorf("Stats().Forged = %d, want 1", got)
	}
}

func TestSignedEntriesRoundTrip(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	for _, gz := range []bool{false, true} {
		d := mem.New()
		c, err := cache.New(d, cache.WithSigningKeys(key), cache.WithGzip(gz))
		if err != nil {
			t.Fatal(err)
		}
		v := bytes.Repeat([]byte("value "), 50000)
		must(t, c.Set(t.Context(), "k", v, cache.NoExpiry))
		got, err := c.Get(t.Context(), "k")
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("gzip=%v: Get = %d bytes, %v", gz, len(got), err)
		}
		b := stored(t, c, "k")
		info, err := cache.InspectEntry(b)
		if err != nil || !info.Signed || info.Gzip != gz {
			t.Fatalf("gzip=%v: InspectEntry = %+v, %v", gz, info, err)
		}
		// Every stored byte is covered: flip each region in turn.
		for _, at := range []int{4 + 16*btoi(gz), 9 + 16*btoi(gz), len(b) / 2, len(b) - 1} {
			bad := bytes.Clone(b)
			bad[at] ^= 0x40
			plant(t, d, c.ObjectName("k"), bad)
			if _, err := c.Get(t.Context(), "k"); !errors.Is(err, cache.ErrMiss) {
				t.Errorf("gzip=%v: byte %d of %d flipped: Get = %v, want a miss", gz, at, len(b), err)
			}
		}
		// A version 1 entry claiming to be signed (the old format, whose MAC
		// covered the uncompressed value) is refused.
		old := bytes.Clone(b)
		old[4+16*btoi(gz)] = 1
		if _, err := cache.InspectEntry(old); err == nil {
			t.Errorf("gzip=%v: a signed entry of format version 1 was accepted", gz)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
