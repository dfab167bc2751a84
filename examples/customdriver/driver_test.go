package customdriver_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/conformance"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/examples/customdriver"
)

// harness is one store; every MakeDriver is a new client on it. Latency stays
// zero here: the suite makes thousands of calls.
type harness struct{ store *customdriver.Store }

func (h *harness) MakeDriver(context.Context) (driver.Driver, error) {
	return customdriver.New(h.store, customdriver.Options{}), nil
}

func (h *harness) Close() {}

// TestConformance is the one call a driver's test makes: the whole suite, on
// a fresh store for every case.
func TestConformance(t *testing.T) {
	conformance.Run(t, func(ctx context.Context, t *testing.T) (conformance.Harness, error) {
		return &harness{store: customdriver.NewStore()}, nil
	})
}

// TestLatency checks the driver's own feature: every call waits the
// configured latency, and a context cancelled during the wait ends the call
// without touching the store.
func TestLatency(t *testing.T) {
	const latency = 30 * time.Millisecond
	store := customdriver.NewStore()
	c, err := cache.New(customdriver.New(store, customdriver.Options{Latency: latency}), cache.WithLocation("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := t.Context()

	start := time.Now()
	if err := c.Set(ctx, "k", []byte("v"), cache.DefaultTTL); err != nil {
		t.Fatal(err)
	}
	// The first Set lists the location once and writes: two calls.
	if took := time.Since(start); took < 2*latency {
		t.Errorf("Set took %v, want at least two calls of %v", took, latency)
	}
	start = time.Now()
	if v, err := c.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if took := time.Since(start); took < latency {
		t.Errorf("Get took %v, want at least %v", took, latency)
	}

	short, cancel := context.WithTimeout(ctx, latency/3)
	defer cancel()
	err = c.Set(short, "late", []byte("never stored"), cache.DefaultTTL)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Set with a deadline shorter than the latency = %v, want DeadlineExceeded", err)
	}
	if n := store.Len(); n != 1 {
		t.Errorf("store holds %d objects after the cancelled Set, want 1", n)
	}
	if !strings.HasPrefix(c.ObjectName("k"), "app/") {
		t.Errorf("ObjectName = %q, want it under app/", c.ObjectName("k"))
	}
}
