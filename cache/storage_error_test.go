package cache_test

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/drivers/mem"
	"github.com/blobcache/blobcache/internal/outage"
)

// TestErrStorage checks that every call failing because the store failed
// matches ErrStorage and keeps the store's error, and that nothing else
// does: misses, the caller's own fill error, a done context, a closed
// cache, bad arguments.
func TestErrStorage(t *testing.T) {
	ctx := t.Context()
	d := outage.New(mem.New())
	c, err := cache.New(d, cache.WithLocation("app"), cache.WithMaxEntries(5))
	must(t, err)
	defer c.Close()
	for i := range 3 {
		must(t, c.Set(ctx, string(rune('a'+i)), []byte("1"), cache.NoExpiry))
	}

	d.Down.Store(true)
	fill := func(context.Context) ([]byte, error) { return []byte("v"), nil }
	for op, call := range map[string]func() error{
		"Get":        func() error { _, err := c.Get(ctx, "a"); return err },
		"Has":        func() error { _, err := c.Has(ctx, "a"); return err },
		"Set":        func() error { return c.Set(ctx, "a", []byte("2"), cache.NoExpiry) },
		"Add":        func() error { _, err := c.Add(ctx, "new", []byte("2"), cache.NoExpiry); return err },
		"Delete":     func() error { _, err := c.Delete(ctx, "a"); return err },
		"Touch":      func() error { _, err := c.Touch(ctx, "a", time.Hour); return err },
		"Incr":       func() error { _, err := c.Incr(ctx, "a", 1); return err },
		"GetOrSet":   func() error { _, err := c.GetOrSet(ctx, "new", cache.NoExpiry, fill); return err },
		"GetMany":    func() error { _, err := c.GetMany(ctx, []string{"a", "b"}); return err },
		"SetMany":    func() error { return c.SetMany(ctx, map[string][]byte{"x": []byte("1")}, cache.NoExpiry) },
		"DeleteMany": func() error { return c.DeleteMany(ctx, []string{"a", "b"}) },
		"Clear":      func() error { return c.Clear(ctx) },
		"Len":        func() error { _, err := c.Len(ctx); return err },
		"Cull":       func() error { _, err := c.Cull(ctx); return err },
	} {
		err := call()
		if !errors.Is(err, cache.ErrStorage) {
			t.Errorf("%s with the store down = %v, want an error satisfying errors.Is(err, cache.ErrStorage)", op, err)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s with the store down = %v, want the store's *net.OpError kept", op, err)
		}
		var ce *cache.OpError
		if !errors.As(err, &ce) {
			t.Errorf("%s with the store down = %T, want an *OpError", op, err)
		}
	}

	// Nothing that is not the store's failure matches.
	d.Down.Store(false)
	errFill := errors.New("the caller's own failure")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	expired, cancel2 := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel2()
	closed, err := cache.New(mem.New())
	must(t, err)
	must(t, closed.Close())
	for what, err := range map[string]error{
		"a miss": func() error { _, err := c.Get(ctx, "absent"); return err }(),
		"a fill error": func() error {
			_, err := c.GetOrSet(ctx, "filled", cache.NoExpiry, func(context.Context) ([]byte, error) { return nil, errFill })
			return err
		}(),
		"a cancelled context": func() error { _, err := c.Get(cancelled, "a"); return err }(),
		"an expired deadline": func() error { return c.Set(expired, "a", []byte("1"), cache.NoExpiry) }(),
		"a closed cache":      func() error { _, err := closed.Get(ctx, "a"); return err }(),
		"an invalid TTL":      c.Set(ctx, "a", []byte("1"), -5*time.Second),
		"a non-integer Incr": func() error {
			must(t, c.Set(ctx, "text", []byte("abc"), cache.NoExpiry))
			_, err := c.Incr(ctx, "text", 1)
			return err
		}(),
	} {
		if err == nil {
			t.Errorf("%s: no error", what)
		} else if errors.Is(err, cache.ErrStorage) {
			t.Errorf("%s = %v matches ErrStorage", what, err)
		}
	}
}

// TestErrStorageDriverClosedUnderTheCache checks that a driver closed under
// a cache reads as a closed cache, not as a storage failure.
func TestErrStorageDriverClosedUnderTheCache(t *testing.T) {
	d := mem.New()
	c, err := cache.New(d)
	must(t, err)
	must(t, d.Close())
	_, err = c.Get(t.Context(), "k")
	if !errors.Is(err, cache.ErrClosed) || errors.Is(err, cache.ErrStorage) {
		t.Errorf("Get over a closed driver = %v, want ErrClosed and not ErrStorage", err)
	}
}
