package cache_test

// Bad input at every public entry of *cache.Cache, on the memory and file
// drivers: nil and empty values, empty, huge and invalid UTF-8 keys,
// negative TTLs other than NoExpiry, overflowing deltas, done contexts and
// a closed cache. Each case pins the defined behaviour that RELIABILITY.md
// tabulates.

import (
	"context"
	"errors"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/file"
	"github.com/blobcache/blobcache/drivers/mem"
)

// relDrivers makes a fresh store of each kind the input tests run on.
var relDrivers = []struct {
	name string
	open func(t *testing.T) driver.Driver
}{
	{"mem", func(t *testing.T) driver.Driver { return mem.New() }},
	{"file", func(t *testing.T) driver.Driver {
		d, err := file.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return d
	}},
}

// relEach runs f on a fresh cache over each driver.
func relEach(t *testing.T, f func(t *testing.T, c *cache.Cache), opts ...cache.Option) {
	for _, dr := range relDrivers {
		t.Run(dr.name, func(t *testing.T) {
			c, err := cache.New(dr.open(t), append([]cache.Option{cache.WithLocation("input")}, opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			f(t, c)
		})
	}
}

// relObjects returns how many objects the cache's store holds under its
// location.
func relObjects(t *testing.T, c *cache.Cache) int {
	t.Helper()
	page, err := c.Driver().List(t.Context(), &driver.ListOptions{Prefix: c.Location()})
	if err != nil {
		t.Fatal(err)
	}
	return len(page.Objects)
}

func TestReliabilityInputValues(t *testing.T) {
	relEach(t, func(t *testing.T, c *cache.Cache) {
		ctx := t.Context()
		// nil and empty values are stored and read back as empty, non-nil
		// values: a hit, not a miss.
		for _, v := range [][]byte{nil, {}} {
			if err := c.Set(ctx, "empty", v, cache.NoExpiry); err != nil {
				t.Fatalf("Set(%#v): %v", v, err)
			}
			got, err := c.Get(ctx, "empty")
			if err != nil || got == nil || len(got) != 0 {
				t.Errorf("Get after Set(%#v) = %#v, %v; want an empty non-nil value", v, got, err)
			}
			if ok, err := c.Has(ctx, "empty"); !ok || err != nil {
				t.Errorf("Has after Set(%#v) = %v, %v; want true", v, ok, err)
			}
		}
		if added, err := c.Add(ctx, "add-nil", nil, cache.NoExpiry); !added || err != nil {
			t.Errorf("Add(nil) = %v, %v; want true", added, err)
		}
		if got, err := c.Get(ctx, "add-nil"); err != nil || len(got) != 0 {
			t.Errorf("Get after Add(nil) = %q, %v", got, err)
		}
		if err := c.SetMany(ctx, map[string][]byte{"many-nil": nil, "many-empty": {}}, cache.NoExpiry); err != nil {
			t.Errorf("SetMany with nil and empty values: %v", err)
		}
		if m, err := c.GetMany(ctx, []string{"many-nil", "many-empty"}); err != nil || len(m) != 2 || m["many-nil"] == nil {
			t.Errorf("GetMany of nil and empty values = %#v, %v; want two empty hits", m, err)
		}
		got, err := c.GetOrSet(ctx, "fill-nil", cache.NoExpiry, func(context.Context) ([]byte, error) { return nil, nil })
		if err != nil || len(got) != 0 {
			t.Errorf("GetOrSet with a fill returning nil = %q, %v", got, err)
		}
		if got, err := c.Get(ctx, "fill-nil"); err != nil || len(got) != 0 {
			t.Errorf("Get after GetOrSet filled nil = %q, %v; want an empty hit", got, err)
		}
		// Incr on an empty value: not an integer.
		if _, err := c.Incr(ctx, "empty", 1); !errors.Is(err, cache.ErrNotInteger) {
			t.Errorf("Incr of an empty value = %v, want ErrNotInteger", err)
		}
		// Empty and nil batches are no-ops.
		if m, err := c.GetMany(ctx, nil); err != nil || m == nil || len(m) != 0 {
			t.Errorf("GetMany(nil) = %#v, %v; want an empty map", m, err)
		}
		if err := c.SetMany(ctx, nil, cache.NoExpiry); err != nil {
			t.Errorf("SetMany(nil) = %v", err)
		}
		if err := c.DeleteMany(ctx, nil); err != nil {
			t.Errorf("DeleteMany(nil) = %v", err)
		}
		if m, err := c.GetMany(ctx, []string{"empty", "empty", "absent"}); err != nil || len(m) != 1 {
			t.Errorf("GetMany with a duplicate and an absent key = %#v, %v; want one hit", m, err)
		}
	})
}

func TestReliabilityInputKeys(t *testing.T) {
	huge := strings.Repeat("k", 1<<20)
	keys := map[string]string{
		"empty":          "",
		"space":          " ",
		"1 MiB":          huge,
		"1 MiB + 1":      huge + "x",
		"invalid UTF-8":  "\xff\xfe\xfd",
		"invalid UTF-8'": "\xff\xfe\xfc",
		"NUL and ctrl":   "a\x00b\x01\n",
		"path-like":      "../../etc/passwd",
		"slashes":        "/a//b/",
		"unicode":        "clé-ключ-鍵",
	}
	relEach(t, func(t *testing.T, c *cache.Cache) {
		ctx := t.Context()
		// Every string is a key: each gets its own entry, named by the hash
		// of the made key, inside the location.
		for what, k := range keys {
			if err := c.Set(ctx, k, []byte("value of "+what), cache.NoExpiry); err != nil {
				t.Fatalf("Set(%s key): %v", what, err)
			}
			if name := c.ObjectName(k); !strings.HasPrefix(name, c.Location()) || driver.ValidateName(name) != nil {
				t.Errorf("%s key: object name %q is not a valid name inside the location", what, name)
			}
		}
		for what, k := range keys {
			got, err := c.Get(ctx, k)
			if err != nil || string(got) != "value of "+what {
				t.Errorf("Get(%s key) = %q, %v", what, got, err)
			}
		}
		if n := relObjects(t, c); n != len(keys) {
			t.Errorf("%d objects for %d distinct keys", n, len(keys))
		}
		for what, k := range keys {
			if n, err := c.Incr(ctx, k, 1); !errors.Is(err, cache.ErrNotInteger) {
				t.Errorf("Incr(%s key) on text = %d, %v; want ErrNotInteger", what, n, err)
			} else if len(err.Error()) > 200 {
				t.Errorf("the error for a %s key is %d bytes long; keys in errors must be shortened", what, len(err.Error()))
			}
			if ok, err := c.Delete(ctx, k); !ok || err != nil {
				t.Errorf("Delete(%s key) = %v, %v", what, ok, err)
			}
		}
		if n := relObjects(t, c); n != 0 {
			t.Errorf("%d objects left after deleting every key", n)
		}
	})
}

func TestReliabilityInputTTL(t *testing.T) {
	bad := []time.Duration{-2, -time.Second, -time.Hour, math.MinInt64}
	relEach(t, func(t *testing.T, c *cache.Cache) {
		ctx := t.Context()
		if err := c.Set(ctx, "live", []byte("v"), cache.NoExpiry); err != nil {
			t.Fatal(err)
		}
		for _, ttl := range bad {
			if err := c.Set(ctx, "k", []byte("v"), ttl); !errors.Is(err, cache.ErrInvalidTTL) {
				t.Errorf("Set with ttl %v = %v, want ErrInvalidTTL", ttl, err)
			}
			if added, err := c.Add(ctx, "k", []byte("v"), ttl); added || !errors.Is(err, cache.ErrInvalidTTL) {
				t.Errorf("Add with ttl %v = %v, %v; want ErrInvalidTTL", ttl, added, err)
			}
			if ok, err := c.Touch(ctx, "live", ttl); ok || !errors.Is(err, cache.ErrInvalidTTL) {
				t.Errorf("Touch with ttl %v = %v, %v; want ErrInvalidTTL", ttl, ok, err)
			}
			if err := c.SetMany(ctx, map[string][]byte{"k": []byte("v")}, ttl); !errors.Is(err, cache.ErrInvalidTTL) {
				t.Errorf("SetMany with ttl %v = %v, want ErrInvalidTTL", ttl, err)
			}
			var fills atomic.Int32
			_, err := c.GetOrSet(ctx, "k", ttl, func(context.Context) ([]byte, error) { fills.Add(1); return []byte("v"), nil })
			if !errors.Is(err, cache.ErrInvalidTTL) {
				t.Errorf("GetOrSet with ttl %v = %v, want ErrInvalidTTL", ttl, err)
			}
			t.Logf("GetOrSet with ttl %v: fill ran %d times before the TTL was refused", ttl, fills.Load())
		}
		// Nothing was stored by a refused call, and the live entry kept its
		// expiry (never).
		if n := relObjects(t, c); n != 1 {
			t.Errorf("%d objects after refused writes, want 1", n)
		}
		// The largest TTL saturates to "never"; the smallest positive one
		// expires at once.
		if err := c.Set(ctx, "forever", []byte("v"), math.MaxInt64); err != nil {
			t.Errorf("Set with ttl MaxInt64: %v", err)
		} else if _, err := c.Get(ctx, "forever"); err != nil {
			t.Errorf("Get of a MaxInt64-TTL entry: %v", err)
		}
		if err := c.Set(ctx, "blink", []byte("v"), time.Nanosecond); err != nil {
			t.Errorf("Set with ttl 1ns: %v", err)
		}
		time.Sleep(time.Millisecond)
		if _, err := c.Get(ctx, "blink"); !errors.Is(err, cache.ErrMiss) {
			t.Errorf("Get of a 1ns-TTL entry 1ms later = %v, want a miss", err)
		}
	})
}

func TestReliabilityInputIncr(t *testing.T) {
	const maxS, minS = "9223372036854775807", "-9223372036854775808"
	cases := []struct {
		stored string
		decr   bool
		delta  int64
		want   int64
		err    error
	}{
		{maxS, false, 1, 0, cache.ErrOverflow},
		{"1", false, math.MaxInt64, 0, cache.ErrOverflow},
		{"0", false, math.MaxInt64, math.MaxInt64, nil},
		{minS, true, 1, 0, cache.ErrOverflow},
		{minS, false, -1, 0, cache.ErrOverflow},
		{"-1", false, math.MinInt64, 0, cache.ErrOverflow},
		{"0", false, math.MinInt64, math.MinInt64, nil},
		{"0", true, math.MinInt64, 0, cache.ErrOverflow},
		{"-1", true, math.MaxInt64, math.MinInt64, nil},
		{"-2", true, math.MaxInt64, 0, cache.ErrOverflow},
		{maxS, false, 0, math.MaxInt64, nil},
		{"+5", false, 1, 6, nil},
		{"007", false, 1, 8, nil},
		{"-0", false, 1, 1, nil},
		{" 5", false, 1, 0, cache.ErrNotInteger},
		{"5\n", false, 1, 0, cache.ErrNotInteger},
		{"0x10", false, 1, 0, cache.ErrNotInteger},
		{"1e3", false, 1, 0, cache.ErrNotInteger},
		{"99999999999999999999", false, 1, 0, cache.ErrNotInteger},
		{"١٢", false, 1, 0, cache.ErrNotInteger},
	}
	relEach(t, func(t *testing.T, c *cache.Cache) {
		ctx := t.Context()
		for _, tc := range cases {
			if err := c.Set(ctx, "n", []byte(tc.stored), cache.NoExpiry); err != nil {
				t.Fatal(err)
			}
			op, call := "Incr", c.Incr
			if tc.decr {
				op, call = "Decr", c.Decr
			}
			got, err := call(ctx, "n", tc.delta)
			if !errors.Is(err, tc.err) || (tc.err == nil && got != tc.want) {
				t.Errorf("%s(%d) of %q = %d, %v; want %d, %v", op, tc.delta, tc.stored, got, err, tc.want, tc.err)
			}
			stored, gerr := c.Get(ctx, "n")
			switch {
			case gerr != nil:
				t.Errorf("Get after %s: %v", op, gerr)
			case err != nil && string(stored) != tc.stored:
				t.Errorf("%s(%d) of %q failed but changed the value to %q", op, tc.delta, tc.stored, stored)
			case err == nil && string(stored) != strconv.FormatInt(tc.want, 10):
				t.Errorf("%s(%d) of %q stored %q, want the canonical %d", op, tc.delta, tc.stored, stored, tc.want)
			}
		}
		if _, err := c.Incr(ctx, "absent", 1); !errors.Is(err, cache.ErrMiss) {
			t.Errorf("Incr of an absent key = %v, want ErrMiss", err)
		}
		if n := relObjects(t, c); n != 1 {
			t.Errorf("Incr of an absent key created an entry: %d objects", n)
		}
	})
}

// TestReliabilityDecrMinInt64 is the one overflow case the cache gets wrong:
// Decr(key, math.MinInt64) is refused even when the result fits (-1 minus
// MinInt64 is MaxInt64). A regression test: the bug is fixed.
func TestReliabilityDecrMinInt64(t *testing.T) {
	relEach(t, func(t *testing.T, c *cache.Cache) {
		ctx := t.Context()
		if err := c.Set(ctx, "n", []byte("-1"), cache.NoExpiry); err != nil {
			t.Fatal(err)
		}
		if got, err := c.Decr(ctx, "n", math.MinInt64); err != nil || got != math.MaxInt64 {
			t.Errorf("Decr(MinInt64) of -1 = %d, %v; want MaxInt64", got, err)
		}
	})
}

func TestReliabilityInputContext(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, cc := range []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"cancelled", cancelled, context.Canceled},
		{"deadline", expired, context.DeadlineExceeded},
		{"nil", nil, cache.ErrInvalidArgument},
	} {
		t.Run(cc.name, func(t *testing.T) {
			relEach(t, func(t *testing.T, c *cache.Cache) {
				live := t.Context()
				if err := c.Set(live, "k", []byte("1"), cache.NoExpiry); err != nil {
					t.Fatal(err)
				}
				ctx := cc.ctx
				var fills atomic.Int32
				fill := func(context.Context) ([]byte, error) { fills.Add(1); return []byte("x"), nil }
				calls := map[string]func() error{
					"Get":        func() error { _, err := c.Get(ctx, "k"); return err },
					"Has":        func() error { _, err := c.Has(ctx, "k"); return err },
					"Set":        func() error { return c.Set(ctx, "new", []byte("v"), cache.NoExpiry) },
					"Add":        func() error { _, err := c.Add(ctx, "new", []byte("v"), cache.NoExpiry); return err },
					"Delete":     func() error { _, err := c.Delete(ctx, "k"); return err },
					"Touch":      func() error { _, err := c.Touch(ctx, "k", time.Hour); return err },
					"Incr":       func() error { _, err := c.Incr(ctx, "k", 1); return err },
					"Decr":       func() error { _, err := c.Decr(ctx, "k", 1); return err },
					"GetMany":    func() error { _, err := c.GetMany(ctx, []string{"k"}); return err },
					"SetMany":    func() error { return c.SetMany(ctx, map[string][]byte{"new": nil}, cache.NoExpiry) },
					"DeleteMany": func() error { return c.DeleteMany(ctx, []string{"k"}) },
					"GetOrSet":   func() error { _, err := c.GetOrSet(ctx, "new", cache.NoExpiry, fill); return err },
					"Clear":      func() error { return c.Clear(ctx) },
					"Len":        func() error { _, err := c.Len(ctx); return err },
					"Cull":       func() error { _, err := c.Cull(ctx); return err },
				}
				for name, call := range calls {
					if err := call(); !errors.Is(err, cc.want) {
						t.Errorf("%s with a %s context = %v, want an error satisfying errors.Is(err, %v)", name, cc.name, err, cc.want)
					}
				}
				if fills.Load() != 0 {
					t.Errorf("GetOrSet with a %s context ran fill", cc.name)
				}
				// Nothing changed.
				if v, err := c.Get(live, "k"); err != nil || string(v) != "1" {
					t.Errorf("after calls with a %s context: k = %q, %v; want 1", cc.name, v, err)
				}
				if n := relObjects(t, c); n != 1 {
					t.Errorf("after calls with a %s context: %d objects, want 1", cc.name, n)
				}
			})
		})
	}
}

// TestReliabilityInputNil: a nil context, a nil fill and a nil Option are
// errors naming the problem, never panics, also with telemetry on (where a
// nil context would reach the tracer).
func TestReliabilityInputNil(t *testing.T) {
	tel := []cache.Option{
		cache.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))),
		cache.WithTracerProvider(sdktrace.NewTracerProvider()),
	}
	relEach(t, func(t *testing.T, c *cache.Cache) {
		var nilCtx context.Context
		_, err := c.Get(nilCtx, "k")
		if !errors.Is(err, cache.ErrInvalidArgument) || !strings.Contains(err.Error(), "nil context") {
			t.Errorf("Get(nil ctx) = %v, want ErrInvalidArgument saying nil context", err)
		}
		if err := c.Set(nilCtx, "k", []byte("v"), cache.NoExpiry); !errors.Is(err, cache.ErrInvalidArgument) {
			t.Errorf("Set(nil ctx) = %v, want ErrInvalidArgument", err)
		}
		_, err = c.GetOrSet(t.Context(), "k", cache.NoExpiry, nil)
		if !errors.Is(err, cache.ErrInvalidArgument) || !strings.Contains(err.Error(), "nil fill") {
			t.Errorf("GetOrSet(nil fill) = %v, want ErrInvalidArgument saying nil fill", err)
		}
		if n := relObjects(t, c); n != 0 {
			t.Errorf("%d objects after calls with nil arguments, want 0", n)
		}
		if s := c.Stats(); s.Errors != 3 {
			t.Errorf("Stats().Errors = %d after 3 failed calls, want 3", s.Errors)
		}
	}, tel...)
	_, err := cache.New(mem.New(), cache.WithMaxEntries(10), nil)
	if !errors.Is(err, cache.ErrInvalidOption) || !strings.Contains(err.Error(), "option 2 of 2 is nil") {
		t.Errorf("New with a nil Option = %v, want ErrInvalidOption naming option 2", err)
	}
	_, err = cache.Open(t.Context(), "mem://?max_entries=5&location=x", cache.WithGzip(true), nil)
	if !errors.Is(err, cache.ErrInvalidOption) || !strings.Contains(err.Error(), "option 2 of 2 is nil") {
		t.Errorf("Open with a nil Option = %v, want ErrInvalidOption naming option 2 of the Go options", err)
	}
	var nilCtx context.Context
	if _, err := cache.Open(nilCtx, "mem://"); !errors.Is(err, cache.ErrInvalidArgument) {
		t.Errorf("Open(nil ctx) = %v, want ErrInvalidArgument", err)
	}
}

func TestReliabilityInputClosed(t *testing.T) {
	relEach(t, func(t *testing.T, c *cache.Cache) {
		ctx := t.Context()
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := c.Close(); !errors.Is(err, cache.ErrClosed) {
			t.Errorf("second Close = %v, want ErrClosed", err)
		}
		calls := map[string]func() error{
			"Get":    func() error { _, err := c.Get(ctx, "k"); return err },
			"Set":    func() error { return c.Set(ctx, "k", nil, 0) },
			"Add":    func() error { _, err := c.Add(ctx, "k", nil, 0); return err },
			"Incr":   func() error { _, err := c.Incr(ctx, "k", 1); return err },
			"Delete": func() error { _, err := c.Delete(ctx, "k"); return err },
			"Len":    func() error { _, err := c.Len(ctx); return err },
			"GetOrSet": func() error {
				_, err := c.GetOrSet(ctx, "k", 0, func(context.Context) ([]byte, error) { return nil, nil })
				return err
			},
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, cache.ErrClosed) {
				t.Errorf("%s after Close = %v, want ErrClosed", name, err)
			}
		}
	})
}

func TestReliabilityInputOptions(t *testing.T) {
	bad := map[string]cache.Option{
		"max_entries -1":     cache.WithMaxEntries(-1),
		"cull_frequency -1":  cache.WithCullFrequency(-1),
		"timeout -5s":        cache.WithDefaultTTL(-5 * time.Second),
		"timeout 0":          cache.WithDefaultTTL(0),
		"location ..":        cache.WithLocation("a/../b"),
		"location //":        cache.WithLocation("a//b"),
		"location NUL":       cache.WithLocation("a\x00b"),
		"location bad UTF-8": cache.WithLocation("a\xffb"),
		"location 1 KiB":     cache.WithLocation(strings.Repeat("l", 1024)),
		"key function nil":   cache.WithKeyFunc(nil),
		"cull policy nil":    cache.WithCullPolicy(nil),
		"clock nil":          cache.WithClock(nil),
		"no signing keys":    cache.WithSigningKeys(),
		"signing key empty":  cache.WithSigningKeys([]byte{}),
	}
	for name, o := range bad {
		c, err := cache.New(mem.New(), o)
		switch {
		case err == nil:
			c.Close()
			t.Logf("New with %s: accepted", name)
		case !errors.Is(err, cache.ErrInvalidOption):
			t.Errorf("New with %s = %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := cache.New(nil); err == nil {
		t.Errorf("New(nil driver) succeeded")
	}
}

// TestReliabilityConfigURLParses: Config.URL must return a URL that Open
// can parse, or an error naming the option. A Django LocMemCache LOCATION
// with a space (or any ASCII character a URL host cannot hold) or such an
// S3 bucket name gives a URL that does not parse, and OpenConfig fails with
// "cache URL: invalid URL escape" instead of naming the option. Found by
// FuzzConfigURL; a regression test, the bug is fixed.
func TestReliabilityConfigURLParses(t *testing.T) {
	for _, cfg := range []cache.Config{
		{"backend": "locmem", "location": "unique snowflake"},
		{"backend": "mem", "location": "a|b"},
		{"backend": "s3", "options": map[string]any{"bucket_name": "my bucket"}},
	} {
		u, err := cfg.URL()
		if err != nil {
			if !errors.Is(err, cache.ErrInvalidOption) || !strings.Contains(err.Error(), "location") && !strings.Contains(err.Error(), "bucket") {
				t.Errorf("%v: URL() = %v; want an invalid option naming it", cfg, err)
			}
			continue
		}
		if _, perr := url.Parse(u); perr != nil {
			_, oerr := cache.OpenConfig(t.Context(), cfg)
			t.Errorf("%v: URL() = %q, which does not parse (%v); OpenConfig: %v", cfg, u, perr, oerr)
		}
	}
}

// TestReliabilitySecretInBlobOpenError: a cache URL of a scheme the cache
// hands to the Go CDK (any but mem, file and s3) that the Go CDK cannot open
// (a typo, or a driver package not imported) fails with the Go CDK's error,
// which quotes the whole URL, secret_key included. Found by FuzzConfigURL;
// a regression test, the bug is fixed.
func TestReliabilitySecretInBlobOpenError(t *testing.T) {
	for _, raw := range []string{
		"s4://bucket?access_key=AKIA&secret_key=hunter2hunter2",
		"gs://bucket?secret_key=hunter2hunter2",
		"azblob://c?location=x&secret_access_key=hunter2hunter2",
	} {
		_, err := cache.Open(t.Context(), raw)
		if err == nil {
			t.Errorf("Open(%q) succeeded", raw)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q): the error shows the secret: %v", raw, err)
		}
	}
}
