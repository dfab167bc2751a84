package cache_test

// FuzzStoredEntry stores arbitrary bytes where an entry lives and runs every
// reading call of the public API on them, with and without compression and
// a signing key:
//
//	go test -run='^$' -fuzz='^FuzzStoredEntry$' -fuzztime=60s ./cache/
//
// The entry decoder itself has its own target in entry_test.go:
//
//	go test -run='^$' -fuzz='^FuzzDecodeEntry$' -fuzztime=60s ./cache/

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/mem"
)

var relFuzzKey = []byte("fuzz-signing-key-0123456789abcdef")

// relFuzzMaxValue is the fuzzed caches' max_value_size: no value read may be
// longer, however the stored bytes are made (a gzip bomb, a forged size).
const relFuzzMaxValue = 4096

// relFuzzNow is the fuzzed caches' fixed clock: whether an entry has
// expired does not change between calls.
var relFuzzNow = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// relFuzzCache returns a cache on a fresh memory store; mode bit 0 turns
// gzip on, bit 1 signing; extra options come last.
func relFuzzCache(t testing.TB, mode byte, extra ...cache.Option) (*cache.Cache, driver.Driver) {
	store := mem.New()
	opts := []cache.Option{cache.WithLocation("f"), cache.WithMaxEntries(0), cache.WithGzip(mode&1 != 0),
		cache.WithMaxValueSize(relFuzzMaxValue),
		cache.WithClock(func() time.Time { return relFuzzNow })}
	if mode&2 != 0 {
		opts = append(opts, cache.WithSigningKeys(relFuzzKey))
	}
	opts = append(opts, extra...)
	c, err := cache.New(store, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, store
}

// relStoredSeeds returns entries the cache itself writes, as seeds: without
// a grace period (format versions 1 and 2) and with one (version 3), fresh
// and, written two hours before the fuzzed caches' clock, stale.
func relStoredSeeds(f *testing.F) [][]byte {
	ctx := context.Background()
	var out [][]byte
	earlier := func() time.Time { return relFuzzNow.Add(-2 * time.Hour) }
	variants := [][]cache.Option{nil, {cache.WithStaleGrace(24 * time.Hour)},
		{cache.WithStaleGrace(24 * time.Hour), cache.WithClock(earlier)}}
	for mode := range byte(4) {
		for _, v := range [][]byte{nil, []byte("42"), []byte("a value"), bytes.Repeat([]byte("z"), 300)} {
			for _, ttl := range []time.Duration{cache.NoExpiry, time.Hour} {
				for _, extra := range variants {
					c, store := relFuzzCache(f, mode, extra...)
					if err := c.Set(ctx, "k", v, ttl); err != nil {
						f.Fatal(err)
					}
					b, _, err := store.Read(ctx, c.ObjectName("k"), 0, -1)
					if err != nil {
						f.Fatal(err)
					}
					out = append(out, b)
					c.Close()
				}
			}
		}
	}
	return out
}

func FuzzStoredEntry(f *testing.F) {
	for i, b := range relStoredSeeds(f) {
		f.Add(b, byte(i%4))
	}
	f.Add([]byte("BCE1"), byte(0))
	f.Add([]byte("BCE1\x01\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00"), byte(0))
	f.Add([]byte("BCE1\x01\x02\x00\x30\x00\x00\x00\x00\x00\x00\x00\x00"), byte(2))
	f.Add([]byte("\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x14\x00BC\x10\x00BCE1\x01\x01\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00"), byte(1))
	f.Add([]byte("BCE1\x03\x00\x00\x18\x00\x00\x00\x00\x00\x00\x00\x01\x7f\xff\xff\xff\xff\xff\xff\xff"), byte(0))
	f.Fuzz(func(t *testing.T, data []byte, mode byte) {
		ctx := context.Background()
		c, store := relFuzzCache(t, mode%4)
		defer c.Close()
		name := c.ObjectName("k")
		put := func() {
			if err := store.Write(ctx, name, bytes.NewReader(data), &driver.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		// A stale entry (past its expiry, within its grace period) is a
		// miss that keeps the entry, and GetStale's value; anything else
		// GetStale reads as Get does.
		put()
		sv, stale, serr := c.GetStale(ctx, "k")
		if serr != nil && !errors.Is(serr, cache.ErrMiss) {
			t.Fatalf("GetStale: %v", serr)
		}
		gone := func(what string) {
			_, _, err := store.Read(ctx, name, 0, -1)
			switch {
			case stale && err != nil:
				t.Fatalf("%s: a stale entry was deleted (%v)", what, err)
			case !stale && !errors.Is(err, driver.ErrNotFound):
				t.Fatalf("%s: the entry was refused but not deleted (%v)", what, err)
			}
		}

		// Get: a value, or a miss that deletes the entry. Never another
		// error on a store that cannot fail.
		put()
		v, err := c.Get(ctx, "k")
		hit := err == nil
		switch {
		case hit:
			if len(v) > relFuzzMaxValue {
				t.Fatalf("Get returned %d bytes, more than max_value_size %d", len(v), relFuzzMaxValue)
			}
			again, err := c.Get(ctx, "k")
			if err != nil || !bytes.Equal(again, v) {
				t.Fatalf("second Get = %q, %v; first was %q", again, err, v)
			}
		case errors.Is(err, cache.ErrMiss):
			gone("Get")
		default:
			t.Fatalf("Get: %v", err)
		}
		if hit && (stale || serr != nil || !bytes.Equal(sv, v)) {
			t.Fatalf("Get hit %q but GetStale = %q, stale %v, %v", v, sv, stale, serr)
		}
		if !hit && !stale && serr == nil {
			t.Fatalf("Get missed but GetStale = %q, not stale", sv)
		}
		if stale && len(sv) > relFuzzMaxValue {
			t.Fatalf("GetStale returned %d bytes, more than max_value_size %d", len(sv), relFuzzMaxValue)
		}

		// Has reads the header only: false deletes the entry (unless the
		// header alone is a stale entry's: a body that fails to decode
		// behind it, which GetStale deleted, is found only by the reads of
		// the value), and a hit of Get implies true.
		put()
		ok, err := c.Has(ctx, "k")
		switch {
		case err != nil:
			t.Fatalf("Has: %v", err)
		case !ok:
			if !cache.HeaderStale(c, data) || stale {
				gone("Has")
			} else if _, _, err := store.Read(ctx, name, 0, -1); err != nil {
				t.Fatalf("Has: a stale header's entry was deleted (%v)", err)
			}
			if hit {
				t.Fatalf("Get hit but Has is false")
			}
		}

		// Incr: the number plus one, or not an integer, or a miss.
		put()
		n, err := c.Incr(ctx, "k", 1)
		switch {
		case err == nil:
			if !hit {
				t.Fatalf("Incr succeeded where Get missed")
			}
			want, perr := strconv.ParseInt(string(v), 10, 64)
			if perr != nil || n != want+1 {
				t.Fatalf("Incr of %q = %d", v, n)
			}
		case errors.Is(err, cache.ErrMiss):
			if hit {
				t.Fatalf("Incr missed where Get hit")
			}
		case errors.Is(err, cache.ErrNotInteger), errors.Is(err, cache.ErrOverflow):
			if !hit {
				t.Fatalf("Incr: %v where Get missed", err)
			}
		default:
			t.Fatalf("Incr: %v", err)
		}

		// Touch and Delete report a live entry exactly when Get hits (Delete
		// judges by the header, like Has).
		put()
		if ok, err := c.Touch(ctx, "k", time.Hour); err != nil || ok != hit {
			t.Fatalf("Touch = %v, %v; Get hit: %v", ok, err, hit)
		}
		if hit {
			if got, err := c.Get(ctx, "k"); err != nil || !bytes.Equal(got, v) {
				t.Fatalf("Get after Touch = %q, %v; want %q", got, err, v)
			}
		}
		put()
		if _, err := c.Delete(ctx, "k"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, _, err := store.Read(ctx, name, 0, -1); !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("Delete left the entry (stale: %v): %v", stale, err)
		}

		// Add over it: refused only by an entry Has calls live.
		put()
		added, err := c.Add(ctx, "k", []byte("new"), cache.NoExpiry)
		if err != nil {
			t.Fatalf("Add: %v", err)
		}
		if got, err := c.Get(ctx, "k"); added && (err != nil || string(got) != "new") {
			t.Fatalf("Add succeeded but Get = %q, %v", got, err)
		}

		// A signed entry is bound to its name: the same bytes elsewhere
		// are a miss.
		if mode&2 != 0 && hit {
			other := c.ObjectName("other")
			if err := store.Write(ctx, other, bytes.NewReader(data), &driver.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			if got, err := c.Get(ctx, "other"); !errors.Is(err, cache.ErrMiss) {
				t.Fatalf("a signed entry moved to another name reads as %q, %v", got, err)
			}
		}
	})
}
