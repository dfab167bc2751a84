package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/mem"
)

var (
	keyOld = []byte("old-signing-key-0123456789abcdef")
	keyNew = []byte("new-signing-key-0123456789abcdef")
)

func rawRead(t *testing.T, d driver.Driver, name string) []byte {
	t.Helper()
	b, _, err := d.Read(context.Background(), name, 0, -1)
	must(t, err)
	return b
}

func rawWrite(t *testing.T, d driver.Driver, name string, b []byte) {
	t.Helper()
	must(t, d.Write(context.Background(), name, bytes.NewReader(b), &driver.WriteOptions{}))
}

func TestSignedEntries(t *testing.T) {
	ctx := context.Background()
	for _, gzip := range []bool{false, true} {
		t.Run(fmt.Sprint("gzip=", gzip), func(t *testing.T) {
			store := mem.Open(t.Name())
			signed, err := cache.New(store, cache.WithSigningKeys(keyNew), cache.WithGzip(gzip), cache.WithMaxEntries(0))
			must(t, err)
			plain, err := cache.New(mem.Open(t.Name()), cache.WithGzip(gzip), cache.WithMaxEntries(0))
			must(t, err)

			must(t, signed.Set(ctx, "k", []byte("value"), 0))
			raw := rawRead(t, store, signed.ObjectName("k"))
			off := 0
			if gzip {
				off = 16
			}
			if raw[off+5]&2 == 0 || raw[off+7] != 48 {
				t.Fatalf("signed entry: flags %#x, header length %d; want bit 1 and 48", raw[off+5], raw[off+7])
			}
			if v, err := signed.Get(ctx, "k"); err != nil || string(v) != "value" {
				t.Fatalf("signed Get: %q %v", v, err)
			}
			// Without keys, behaviour is unchanged: signed entries read fine.
			if v, err := plain.Get(ctx, "k"); err != nil || string(v) != "value" {
				t.Fatalf("unsigned cache reading a signed entry: %q %v", v, err)
			}
			n, err := signed.Incr(ctx, "absent", 1)
			if !errors.Is(err, cache.ErrMiss) {
				t.Fatalf("Incr absent: %d %v", n, err)
			}

			forgeries := map[string]func(){
				"unsigned entry": func() { must(t, plain.Set(ctx, "k", []byte("planted"), 0)) },
				"moved from another key": func() {
					must(t, signed.Set(ctx, "other", []byte("other's value"), 0))
					rawWrite(t, store, signed.ObjectName("k"), rawRead(t, store, signed.ObjectName("other")))
				},
				"value changed": func() {
					must(t, signed.Set(ctx, "k", []byte("value"), 0))
					b := rawRead(t, store, signed.ObjectName("k"))
					if !gzip {
						b[len(b)-1] ^= 1
						rawWrite(t, store, signed.ObjectName("k"), b)
						return
					}
					// Re-compress another value under the same header.
					must(t, plain.Set(ctx, "tmp", []byte("valuf"), 0))
					tmp := rawRead(t, store, plain.ObjectName("tmp"))
					rawWrite(t, store, signed.ObjectName("k"), append(append([]byte{}, b[:64]...), tmp[32:]...))
				},
				"expiry changed": func() {
					must(t, signed.Set(ctx, "k", []byte("value"), 0))
					b := rawRead(t, store, signed.ObjectName("k"))
					b[off+15] ^= 1
					rawWrite(t, store, signed.ObjectName("k"), b)
				},
				"signed with an unknown key": func() {
					stranger, err := cache.New(mem.Open(t.Name()), cache.WithSigningKeys([]byte("someone else's key")), cache.WithGzip(gzip))
					must(t, err)
					must(t, stranger.Set(ctx, "k", []byte("planted"), 0))
				},
			}
			for name, forge := range forgeries {
				before := signed.Stats().Forged
				forge()
				if v, err := signed.Get(ctx, "k"); !errors.Is(err, cache.ErrMiss) {
					t.Errorf("%s: Get = %q, %v; want a miss", name, v, err)
				}
				if got := signed.Stats().Forged - before; got != 1 {
					t.Errorf("%s: Forged counted %d, want 1", name, got)
				}
				if _, _, err := store.Read(ctx, signed.ObjectName("k"), 0, -1); !errors.Is(err, driver.ErrNotFound) {
					t.Errorf("%s: forged entry not deleted: %v", name, err)
				}
			}
			// Header-only calls refuse unsigned entries too.
			must(t, plain.Set(ctx, "u", []byte("1"), 0))
			if ok, err := signed.Has(ctx, "u"); ok || err != nil {
				t.Errorf("Has of an unsigned entry = %v, %v", ok, err)
			}
			must(t, plain.Set(ctx, "u", []byte("1"), 0))
			if added, err := signed.Add(ctx, "u", []byte("mine"), 0); !added || err != nil {
				t.Errorf("Add over an unsigned entry = %v, %v; want added", added, err)
			}
		})
	}
}

func TestSigningKeyRotation(t *testing.T) {
	ctx := context.Background()
	name := t.Name()
	old, err := cache.New(mem.Open(name), cache.WithSigningKeys(keyOld))
	must(t, err)
	rotated, err := cache.New(mem.Open(name), cache.WithSigningKeys(keyNew, keyOld))
	must(t, err)
	must(t, old.Set(ctx, "a", []byte("by old"), 0))
	if v, err := rotated.Get(ctx, "a"); err != nil || string(v) != "by old" {
		t.Fatalf("rotated cache reading an old-key entry: %q %v", v, err)
	}
	must(t, rotated.Set(ctx, "b", []byte("by new"), 0))
	if _, err := old.Get(ctx, "b"); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("old-key-only cache read a new-key entry: %v", err)
	}
	if _, err := cache.New(mem.New(), cache.WithSigningKeys()); !errors.Is(err, cache.ErrInvalidOption) {
		t.Errorf("no keys: %v", err)
	}
	if _, err := cache.New(mem.New(), cache.WithSigningKeys(keyNew, nil)); !errors.Is(err, cache.ErrInvalidOption) {
		t.Errorf("empty key: %v", err)
	}
}

func TestSigningKeyFromURLNeverShown(t *testing.T) {
	ctx := context.Background()
	const key = "URL-SIGNING-KEY-SECRET"
	c, err := cache.Open(ctx, "mem://signurl?location=s&signing_key="+key+",older-key")
	must(t, err)
	must(t, c.Set(ctx, "k", []byte("v"), 0))
	check, err := cache.Open(ctx, "mem://signurl?location=s&signing_key=older-key,"+key)
	must(t, err)
	if v, err := check.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("rotation via URL: %q %v", v, err)
	}
	cfg := cache.Config{"backend": "mem", "options": map[string]any{"signing_key": key}}
	for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%+v", cfg), cfg.String()} {
		if strings.Contains(s, key) {
			t.Errorf("signing key shown: %s", s)
		}
	}
}
