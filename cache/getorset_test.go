package cache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/drivers/mem"
)

// A caller whose context ends while the shared fill runs fails alone: it
// returns its own context's error at once, the other caller gets the value,
// and the value is stored.
func TestGetOrSetCancelledCallerFailsAlone(t *testing.T) {
	c, err := cache.New(mem.New())
	must(t, err)
	started, release := make(chan struct{}), make(chan struct{})
	fill := func(ctx context.Context) ([]byte, error) {
		close(started)
		select {
		case <-release:
			return []byte("filled"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	first, cancel := context.WithCancel(t.Context())
	firstDone := make(chan error, 1)
	go func() {
		_, err := c.GetOrSet(first, "k", cache.NoExpiry, fill)
		firstDone <- err
	}()
	<-started
	secondDone := make(chan []byte, 1)
	go func() {
		v, err := c.GetOrSet(t.Context(), "k", cache.NoExpiry, func(context.Context) ([]byte, error) {
			t.Error("a second fill ran while the first was in flight")
			return nil, nil
		})
		if err != nil {
			t.Errorf("second caller: %v", err)
		}
		secondDone <- v
	}()
	cancel()
	if err := <-firstDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller after its context was cancelled: %v, want context.Canceled", err)
	}
	// The first caller returned while the fill is still blocked: the fill
	// did not see the first caller's cancellation.
	close(release)
	if v := <-secondDone; string(v) != "filled" {
		t.Fatalf("second caller got %q, want the filled value", v)
	}
	if v, err := c.Get(t.Context(), "k"); err != nil || string(v) != "filled" {
		t.Fatalf("Get after the fill = %q, %v; want it stored", v, err)
	}
}

// When every caller has gone, the fill still completes and stores its value.
func TestGetOrSetFillOutlivesItsCallers(t *testing.T) {
	c, err := cache.New(mem.New())
	must(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	started, release, filled := make(chan struct{}), make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := c.GetOrSet(ctx, "k", cache.NoExpiry, func(context.Context) ([]byte, error) {
			close(started)
			<-release
			defer close(filled)
			return []byte("v"), nil
		})
		done <- err
	}()
	<-started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("GetOrSet = %v, want context.Canceled", err)
	}
	close(release)
	<-filled
	// The store happens after fill returns: wait for it through the
	// flight (a new caller joins it or finds the value).
	v, err := c.GetOrSet(t.Context(), "k", cache.NoExpiry, func(context.Context) ([]byte, error) {
		return nil, errors.New("a second fill ran: the first one's value was not stored")
	})
	if err != nil || string(v) != "v" {
		t.Fatalf("GetOrSet after the callers left = %q, %v; want the first fill's value", v, err)
	}
}

// The fill's context has the fill timeout as its deadline, not the caller's.
func TestGetOrSetFillTimeout(t *testing.T) {
	c, err := cache.New(mem.New(), cache.WithFillTimeout(20*time.Millisecond))
	must(t, err)
	var fillDeadline time.Time
	_, err = c.GetOrSet(t.Context(), "k", cache.NoExpiry, func(ctx context.Context) ([]byte, error) {
		fillDeadline, _ = ctx.Deadline()
		<-ctx.Done()
		return nil, ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetOrSet with a fill that outlasts the fill timeout = %v, want context.DeadlineExceeded", err)
	}
	if fillDeadline.IsZero() {
		t.Fatal("the fill's context has no deadline")
	}
	if _, err := cache.New(mem.New(), cache.WithFillTimeout(0)); !errors.Is(err, cache.ErrInvalidOption) {
		t.Errorf("WithFillTimeout(0) = %v, want ErrInvalidOption", err)
	}
}

// A fill that panics panics in the caller, as a direct call would, and does
// not crash the process from another goroutine.
func TestGetOrSetFillPanics(t *testing.T) {
	c, err := cache.New(mem.New())
	must(t, err)
	defer func() {
		if p := recover(); p != "boom" {
			t.Fatalf("recovered %v, want the fill's panic", p)
		}
		// The key is not stuck: the next call fills again.
		v, err := c.GetOrSet(t.Context(), "k", cache.NoExpiry, func(context.Context) ([]byte, error) { return []byte("ok"), nil })
		if err != nil || string(v) != "ok" {
			t.Fatalf("GetOrSet after a panicking fill = %q, %v", v, err)
		}
	}()
	c.GetOrSet(t.Context(), "k", cache.NoExpiry, func(context.Context) ([]byte, error) { panic("boom") })
	t.Fatal("GetOrSet returned after its fill panicked")
}
