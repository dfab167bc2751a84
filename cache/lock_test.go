package cache_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/mem"
)

// Lock takes a lease only one caller in the fleet holds; only the holder
// extends or releases it.
func ExampleCache_Lock() {
	ctx := context.Background()
	c, err := cache.Open(ctx, "mem://?location=app")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	l, err := c.Lock(ctx, "nightly-report", time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Lock(ctx, "nightly-report", time.Minute)
	fmt.Println(errors.Is(err, cache.ErrLocked))
	// ... the work, extending the lease before it passes:
	fmt.Println(l.Extend(ctx, time.Minute))
	fmt.Println(l.Release(ctx))
	_, err = c.Lock(ctx, "nightly-report", time.Minute)
	fmt.Println(err)
	// Output:
	// true
	// <nil>
	// <nil>
	// <nil>
}

// noReplacer hides mem's Replacer.
type noReplacer struct{ driver.Driver }

func TestLockArguments(t *testing.T) {
	ctx := t.Context()
	c, err := cache.New(mem.New(), cache.WithLocation("app"))
	must(t, err)
	defer c.Close()
	for _, ttl := range []time.Duration{0, -time.Second, cache.NoExpiry} {
		if _, err := c.Lock(ctx, "n", ttl); !errors.Is(err, cache.ErrInvalidTTL) {
			t.Errorf("Lock with ttl %v = %v, want ErrInvalidTTL (a lease always expires)", ttl, err)
		}
	}
	l, err := c.Lock(ctx, "n", time.Minute)
	must(t, err)
	if err := l.Extend(ctx, 0); !errors.Is(err, cache.ErrInvalidTTL) {
		t.Errorf("Extend(0) = %v, want ErrInvalidTTL", err)
	}
	nr, err := cache.New(noReplacer{mem.New()})
	must(t, err)
	if _, err := nr.Lock(ctx, "n", time.Minute); !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "driver.Replacer") {
		t.Errorf("Lock over a driver without Replacer = %v, want errors.ErrUnsupported naming driver.Replacer", err)
	}
	must(t, c.Close())
	if _, err := c.Lock(ctx, "n", time.Minute); !errors.Is(err, cache.ErrClosed) {
		t.Errorf("Lock on a closed cache = %v, want ErrClosed", err)
	}
	if err := l.Release(ctx); !errors.Is(err, cache.ErrClosed) {
		t.Errorf("Release on a closed cache = %v, want ErrClosed", err)
	}
}

// TestLockLease checks the lease's object, its token and expiry, and that a
// name locked is no key.
func TestLockLease(t *testing.T) {
	ctx := t.Context()
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	d := mem.New()
	c, err := cache.New(d, cache.WithLocation("app"), cache.WithClock(clk.Now))
	must(t, err)
	defer c.Close()
	must(t, c.Set(ctx, "n", []byte("a value under the same name"), cache.NoExpiry))
	l, err := c.Lock(ctx, "n", time.Minute)
	must(t, err)
	if got, want := l.Expires(), clk.Now().Add(time.Minute); !got.Equal(want) {
		t.Errorf("Expires = %v, want %v", got, want)
	}
	if len(l.Token()) != 32 || l.Name() != "n" {
		t.Errorf("Token %q (want 32 hex digits), Name %q", l.Token(), l.Name())
	}
	want := "app/lock/" + strings.TrimPrefix(c.ObjectName("n"), "app/")
	if got := names(t, d, "app/lock/"); len(got) != 1 || got[0] != want {
		t.Errorf("lease objects = %q, want [%q]", got, want)
	}
	if v, err := c.Get(ctx, "n"); err != nil || string(v) != "a value under the same name" {
		t.Errorf("Get of the key named like the lock = %q, %v", v, err)
	}
	if n, err := c.Len(ctx); err != nil || n != 1 {
		t.Errorf("Len = %d, %v; want 1: the lease is no entry", n, err)
	}
	clk.Advance(30 * time.Second)
	must(t, l.Extend(ctx, time.Minute))
	if got, want := l.Expires(), clk.Now().Add(time.Minute); !got.Equal(want) {
		t.Errorf("Expires after Extend = %v, want %v", got, want)
	}
	// Two leases never share a token.
	l2, err := c.Lock(ctx, "other", time.Minute)
	must(t, err)
	if l2.Token() == l.Token() {
		t.Errorf("two leases share the token %q", l.Token())
	}
	// A lease whose object was replaced behind the cache's back is lost.
	must(t, d.Write(ctx, want, strings.NewReader("not a lease"), &driver.WriteOptions{}))
	if err := l.Release(ctx); !errors.Is(err, cache.ErrLockLost) {
		t.Errorf("Release of a lease overwritten behind the cache's back = %v, want ErrLockLost", err)
	}
	// ... and its name can be locked again: the object is no live lease.
	if _, err := c.Lock(ctx, "n", time.Minute); err != nil {
		t.Errorf("Lock over an object that is no lease = %v, want nil", err)
	}
	s := c.Stats()
	if s.Errors != 1 {
		t.Errorf("Stats.Errors = %d, want 1 (the lost Release)", s.Errors)
	}
}

// TestTypedLock checks that a Typed cache's Lock is its Cache's.
func TestTypedLock(t *testing.T) {
	ctx := t.Context()
	c, err := cache.New(mem.New())
	must(t, err)
	defer c.Close()
	tc := cache.NewTyped[int](c, nil)
	l, err := tc.Lock(ctx, "job", time.Minute)
	must(t, err)
	if _, err := c.Lock(ctx, "job", time.Minute); !errors.Is(err, cache.ErrLocked) {
		t.Errorf("Cache.Lock of a name Typed locked = %v, want ErrLocked", err)
	}
	must(t, l.Release(ctx))
	var nilTyped *cache.Typed[int]
	if _, err := nilTyped.Lock(ctx, "job", time.Minute); err == nil {
		t.Errorf("Lock on a nil Typed succeeded")
	}
}

// TestLockHugeTTL: a lease of the longest ttl is held, not overflowed into
// one another caller can take over.
func TestLockHugeTTL(t *testing.T) {
	ctx := t.Context()
	cs := fleet(t, 2)
	l, err := cs[0].Lock(ctx, "job", time.Duration(math.MaxInt64))
	must(t, err)
	if _, err := cs[1].Lock(ctx, "job", time.Minute); !errors.Is(err, cache.ErrLocked) {
		t.Errorf("a second Lock of a lease with the longest ttl = %v, want ErrLocked", err)
	}
	must(t, l.Extend(ctx, time.Duration(math.MaxInt64)))
	if _, err := cs[1].Lock(ctx, "job", time.Minute); !errors.Is(err, cache.ErrLocked) {
		t.Errorf("after Extend by the longest ttl, a second Lock = %v, want ErrLocked", err)
	}
	must(t, l.Release(ctx))
}
