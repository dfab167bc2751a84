package bench

import (
	"context"
	"errors"
	"testing"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
)

func benchGetHit(b *testing.B, maker HarnessMaker, size int) {
	e := newGroup(b, maker)
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

func benchGetMiss(b *testing.B, maker HarnessMaker) {
	e := newGroup(b, maker)
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
			if _, err := e.bkt.ReadAll(ctx, ks.gcdk[i%benchKeys]); !errors.Is(err, driver.ErrNotFound) {
				b.Fatalf("ReadAll of an absent object: %v, want NotFound", err)
			}
		}
	})
}

func benchHas(b *testing.B, maker HarnessMaker) {
	e := newGroup(b, maker)
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
			if v, err := e.bkt.ReadRange(ctx, ks.gcdk[i%benchKeys], 0, headerRead); err != nil || len(v) != headerRead {
				b.Fatalf("range read: %d bytes, %v", len(v), err)
			}
		}
	})
}

func benchGetMany(b *testing.B, maker HarnessMaker) {
	e := newGroup(b, maker)
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
