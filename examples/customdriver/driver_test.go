package customdriver_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
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

// TestContract checks the clauses of the contract this driver keeps by its
// own design: Read's bytes belong to the caller, Replace ignores
// WriteOptions.IfAbsent, a failing Replace body stores nothing, and every
// call after Close returns an error wrapping driver.ErrClosed and touches
// nothing.
func TestContract(t *testing.T) {
	ctx := t.Context()
	store := customdriver.NewStore()
	d := customdriver.New(store, customdriver.Options{})
	write := func(name, data string) {
		t.Helper()
		if err := d.Write(ctx, name, strings.NewReader(data), &driver.WriteOptions{}); err != nil {
			t.Fatalf("Write(%q): %v", name, err)
		}
	}
	read := func(name string) (string, driver.Attributes) {
		t.Helper()
		got, attrs, err := d.Read(ctx, name, 0, -1)
		if err != nil {
			t.Fatalf("Read(%q): %v", name, err)
		}
		return string(got), attrs
	}

	// Read returns a copy: changing it changes nothing stored.
	write("k", "abc")
	got, _, err := d.Read(ctx, "k", 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	got[0] = 'X'
	if v, _ := read("k"); v != "abc" {
		t.Errorf("after changing the bytes Read returned, Read = %q, want \"abc\"", v)
	}

	// Replace ignores IfAbsent: the etag is its condition.
	_, attrs := read("k")
	if err := d.Replace(ctx, "k", strings.NewReader("v2"), attrs.ETag, &driver.WriteOptions{IfAbsent: true}); err != nil {
		t.Errorf("Replace with the current ETag and IfAbsent = %v, want nil", err)
	}
	if v, _ := read("k"); v != "v2" {
		t.Errorf("after Replace, Read = %q, want \"v2\"", v)
	}

	// A failing Replace body stores nothing and returns the body's error.
	errBody := errors.New("body failed")
	_, attrs = read("k")
	body := io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(errBody))
	if err := d.Replace(ctx, "k", body, attrs.ETag, &driver.WriteOptions{}); !errors.Is(err, errBody) {
		t.Errorf("Replace with a failing body = %v, want the body's error", err)
	}
	if v, after := read("k"); v != "v2" || after.ETag != attrs.ETag {
		t.Errorf("after a failed Replace, Read = %q with ETag %s, want \"v2\" with ETag %s", v, after.ETag, attrs.ETag)
	}

	// After Close, every method returns ErrClosed and touches nothing.
	_, attrs = read("k")
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, _, readErr := d.Read(ctx, "k", 0, -1)
	_, listErr := d.List(ctx, &driver.ListOptions{})
	for op, err := range map[string]error{
		"Read":        readErr,
		"Write":       d.Write(ctx, "new", strings.NewReader("x"), &driver.WriteOptions{}),
		"Replace":     d.Replace(ctx, "k", strings.NewReader("x"), attrs.ETag, &driver.WriteOptions{}),
		"Delete":      d.Delete(ctx, "k"),
		"DeleteBatch": d.DeleteBatch(ctx, []string{"k"}),
		"List":        listErr,
		"Close again": d.Close(),
	} {
		if op == "Close again" && err == nil {
			continue // a second Close may return nil
		}
		if !errors.Is(err, driver.ErrClosed) || !errors.Is(err, cache.ErrClosed) {
			t.Errorf("%s after Close = %v, want an error wrapping driver.ErrClosed", op, err)
		}
	}
	d2 := customdriver.New(store, customdriver.Options{})
	defer d2.Close()
	if got, _, err := d2.Read(ctx, "k", 0, -1); err != nil || string(got) != "v2" || store.Len() != 1 {
		t.Errorf("after calls on a closed driver, the store holds %d objects and k = %q, %v; want only k = \"v2\"", store.Len(), got, err)
	}

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
