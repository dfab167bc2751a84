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
	"github.com/blobcache/blobcache/drivers/file"
	"github.com/blobcache/blobcache/drivers/mem"
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

// driverFunc makes a harness of a function, for the built-in drivers.
type driverFunc func(ctx context.Context) (driver.Driver, error)

func (f driverFunc) MakeDriver(ctx context.Context) (driver.Driver, error) { return f(ctx) }
func (f driverFunc) Close()                                                {}

// TestCompare runs one scripted sequence of cache operations on this driver
// and on the built-in memory and directory drivers, and fails with a diff
// where the outcomes differ: same culling, same surviving entries and
// counts, same prefix-safe clearing.
func TestCompare(t *testing.T) {
	conformance.Compare(t, map[string]conformance.HarnessMaker{
		"customdriver": func(context.Context, *testing.T) (conformance.Harness, error) {
			return &harness{store: customdriver.NewStore()}, nil
		},
		"mem": func(context.Context, *testing.T) (conformance.Harness, error) {
			return driverFunc(func(context.Context) (driver.Driver, error) { return mem.New(), nil }), nil
		},
		"file": func(_ context.Context, t *testing.T) (conformance.Harness, error) {
			dir := t.TempDir()
			return driverFunc(func(context.Context) (driver.Driver, error) { return file.New(dir) }), nil
		},
	})
}

// TestCloseDuringLatency checks what the suite cannot see from outside:
// a call still sleeping through its latency when Close runs returns
// ErrClosed and writes nothing. (The suite's Close, ReadBytesOwned and
// ReplaceOptions cases check the rest of those clauses.)
func TestCloseDuringLatency(t *testing.T) {
	ctx := t.Context()
	store := customdriver.NewStore()
	d2 := customdriver.New(store, customdriver.Options{})
	defer d2.Close()
	// A call still in its latency when Close runs does nothing either.
	slow := customdriver.New(store, customdriver.Options{Latency: 200 * time.Millisecond})
	done := make(chan error)
	go func() { done <- slow.Write(ctx, "late", strings.NewReader("x"), &driver.WriteOptions{}) }()
	time.Sleep(20 * time.Millisecond)
	slow.Close()
	if err := <-done; !errors.Is(err, driver.ErrClosed) {
		t.Errorf("Write sleeping through Close = %v, want an error wrapping driver.ErrClosed", err)
	}
	if _, _, err := d2.Read(ctx, "late", 0, -1); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Read of the Write cut short by Close = %v, want ErrNotFound", err)
	}
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

// TestOpenByURL opens the registered scheme as an application would: by
// URL, with the cache's options and the driver's own in one query, and by
// configuration; bad parameters are refused naming them.
func TestOpenByURL(t *testing.T) {
	ctx := context.Background()
	c, err := cache.Open(ctx, "slowmem://shared?latency=1ms&location=app&max_entries=10")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(ctx, "k", []byte("v"), cache.DefaultTTL); err != nil {
		t.Fatal(err)
	}
	// A configuration naming the same store is a second client of it:
	// LOCATION names the store, OPTIONS.location the folder.
	c2, err := cache.OpenConfig(ctx, cache.Config{"backend": "slowmem", "location": "shared", "options": map[string]any{"location": "app", "latency": "1ms"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if v, err := c2.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get through the configuration = %q, %v; want \"v\"", v, err)
	}
	// Another store name is another store.
	c3, err := cache.Open(ctx, "slowmem://other?location=app")
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if _, err := c3.Get(ctx, "k"); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get on another store = %v, want ErrMiss", err)
	}
	if got, want := c.String(), "slowmem://shared?location=app&max_entries=10"; !strings.Contains(got, want) {
		t.Errorf("String() = %q, want it to contain %q", got, want)
	}
	for url, want := range map[string]string{
		"slowmem://x?latncy=1ms":   `"latncy" (did you mean "latency"?)`,
		"slowmem://x?latency=fast": `latency: "fast" is not a duration`,
		"slowmem://x?jitter=-1s":   `jitter: "-1s" is not a duration`,
		"slowmem://x/path":         `URL path "/path"`,
	} {
		c, err := cache.Open(ctx, url)
		if err == nil {
			c.Close()
			t.Errorf("Open(%s): no error", url)
			continue
		}
		if !errors.Is(err, cache.ErrInvalidOption) || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%s) = %v, want ErrInvalidOption saying %s", url, err, want)
		}
	}
}
