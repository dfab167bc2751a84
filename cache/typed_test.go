package cache_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/mem"
)

// typedPoint is the value type of the Typed tests.
type typedPoint struct {
	X, Y int
	Tag  string
}

// typedCodecs are the codecs every Typed test runs with.
func typedCodecs() map[string]cache.Codec[typedPoint] {
	return map[string]cache.Codec[typedPoint]{
		"json":    nil, // NewTyped's default
		"gob":     cache.Gob[typedPoint]{},
		"panicky": panickyCodec{},
	}
}

// panickyCodec is JSON, except that it panics on values tagged "boom" and on
// stored bytes starting with "boom": a codec with a bug hostile bytes can
// reach.
type panickyCodec struct{}

// Marshal implements cache.Codec.
func (panickyCodec) Marshal(v typedPoint) ([]byte, error) {
	if v.Tag == "boom" {
		panic("panickyCodec: cannot marshal boom")
	}
	return cache.JSON[typedPoint]{}.Marshal(v)
}

// Unmarshal implements cache.Codec.
func (panickyCodec) Unmarshal(data []byte, v *typedPoint) error {
	if strings.HasPrefix(string(data), "boom") {
		var m map[string]int
		m["x"] = 1 // assignment to entry in nil map
	}
	return cache.JSON[typedPoint]{}.Unmarshal(data, v)
}

// nilPointerCodec is a codec whose methods dereference their nil receiver:
// a typed nil passed to NewTyped is not the nil that means JSON.
type nilPointerCodec struct{ inner cache.JSON[typedPoint] }

// Marshal implements cache.Codec.
func (c *nilPointerCodec) Marshal(v typedPoint) ([]byte, error) { return c.inner.Marshal(v) }

// Unmarshal implements cache.Codec.
func (c *nilPointerCodec) Unmarshal(data []byte, v *typedPoint) error {
	return c.inner.Unmarshal(data, v)
}

// hostileValues are stored values that no codec here decodes as a
// typedPoint: garbage, JSON of another type, truncated JSON, gob of another
// type, the bytes that make panickyCodec panic, nothing at all.
var hostileValues = map[string][]byte{
	"garbage":        []byte("\x00\xff not a point"),
	"json string":    []byte(`"a string, not a point"`),
	"json array":     []byte(`[1,2,3]`),
	"truncated json": []byte(`{"X":1,"Y":`),
	"gob of an int":  gobOf(42),
	"panics codec":   []byte("boom{}"),
	"empty":          {},
}

func gobOf(v any) []byte {
	c := cache.Gob[any]{}
	b, err := c.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// noPanic runs f and fails the test, instead of crashing the test binary,
// when f panics.
func noPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s panicked: %v", what, r)
		}
	}()
	f()
}

// storedAs checks that key's stored value decodes (as JSON or gob) to want.
func storedAs(t *testing.T, c *cache.Cache, key string, want typedPoint) {
	t.Helper()
	raw, err := c.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("the refilled entry: %v", err)
	}
	var got typedPoint
	if err := (cache.JSON[typedPoint]{}).Unmarshal(raw, &got); err != nil {
		if err := (cache.Gob[typedPoint]{}).Unmarshal(raw, &got); err != nil {
			t.Fatalf("the refilled entry %q decodes with neither JSON nor gob", raw)
		}
	}
	if got != want {
		t.Fatalf("the refilled entry holds %+v, want %+v", got, want)
	}
}

// TestTypedGetOrSetRefillsUndecodable: a stored value the codec cannot
// decode is a miss for GetOrSet: fill runs once, its value is returned and
// replaces the entry, and the next GetOrSet is a hit.
func TestTypedGetOrSetRefillsUndecodable(t *testing.T) {
	ctx := t.Context()
	for cname, codec := range typedCodecs() {
		for vname, hostile := range hostileValues {
			t.Run(cname+"/"+vname, func(t *testing.T) {
				c, err := cache.New(mem.New())
				must(t, err)
				tc := cache.NewTyped(c, codec)
				must(t, c.Set(ctx, "k", hostile, cache.NoExpiry))
				want := typedPoint{3, 4, "refilled"}
				var fills atomic.Int32
				fill := func(context.Context) (typedPoint, error) {
					fills.Add(1)
					return want, nil
				}
				noPanic(t, "GetOrSet over an undecodable entry", func() {
					for i := range 3 {
						got, err := tc.GetOrSet(ctx, "k", cache.NoExpiry, fill)
						if err != nil || got != want {
							t.Fatalf("GetOrSet #%d over %q = %+v, %v; want %+v", i+1, hostile, got, err, want)
						}
					}
				})
				if n := fills.Load(); n != 1 {
					t.Errorf("fill ran %d times, want 1 (then hits)", n)
				}
				storedAs(t, c, "k", want)
				noPanic(t, "Get", func() {
					if got, err := tc.Get(ctx, "k"); err != nil || got != want {
						t.Errorf("Get after the refill = %+v, %v; want %+v", got, err, want)
					}
				})
			})
		}
	}
}

// TestTypedGetOrSetRefillIsSingleFlight: callers that all find the same
// undecodable entry share one fill.
func TestTypedGetOrSetRefillIsSingleFlight(t *testing.T) {
	const callers = 16
	ctx := t.Context()
	d := &readBarrierDriver{Driver: mem.New(), after: callers, reached: make(chan struct{})}
	c, err := cache.New(d)
	must(t, err)
	must(t, c.Set(ctx, "k", []byte("not json"), cache.NoExpiry))
	d.name = c.ObjectName("k")
	tc := cache.NewTyped[typedPoint](c, nil)
	want := typedPoint{1, 1, "once"}
	var fills atomic.Int32
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			got, err := tc.GetOrSet(ctx, "k", cache.NoExpiry, func(ctx context.Context) (typedPoint, error) {
				fills.Add(1)
				// Every caller has read the undecodable entry before the
				// fill returns: they all want a refill at once.
				select {
				case <-d.reached:
				case <-ctx.Done():
				}
				return want, nil
			})
			if err != nil || got != want {
				t.Errorf("GetOrSet = %+v, %v; want %+v", got, err, want)
			}
		})
	}
	wg.Wait()
	if n := fills.Load(); n != 1 {
		t.Errorf("%d callers over one undecodable entry ran fill %d times, want 1", callers, n)
	}
	storedAs(t, c, "k", want)
}

// readBarrierDriver closes reached once name has been read after times.
type readBarrierDriver struct {
	driver.Driver
	name    string
	after   int64
	reads   atomic.Int64
	reached chan struct{}
	once    sync.Once
}

// Read implements driver.Driver.
func (d *readBarrierDriver) Read(ctx context.Context, name string, off, n int64) ([]byte, driver.Attributes, error) {
	data, attrs, err := d.Driver.Read(ctx, name, off, n)
	if name == d.name && d.reads.Add(1) >= d.after {
		d.once.Do(func() { close(d.reached) })
	}
	return data, attrs, err
}

// TestTypedNilFill: a nil fill is an ErrInvalidArgument error exactly when
// fill would be called (a miss, or an undecodable entry), never a panic; on
// a hit it is not called and not an error.
func TestTypedNilFill(t *testing.T) {
	ctx := t.Context()
	for cname, codec := range typedCodecs() {
		t.Run(cname, func(t *testing.T) {
			c, err := cache.New(mem.New())
			must(t, err)
			tc := cache.NewTyped(c, codec)
			noPanic(t, "GetOrSet(nil fill)", func() {
				_, err := tc.GetOrSet(ctx, "absent", cache.NoExpiry, nil)
				if !errors.Is(err, cache.ErrInvalidArgument) || !strings.Contains(err.Error(), "nil fill") {
					t.Errorf("GetOrSet(nil fill) on a miss = %v, want ErrInvalidArgument saying nil fill", err)
				}
				must(t, c.Set(ctx, "bad", []byte("boom, not a point"), cache.NoExpiry))
				_, err = tc.GetOrSet(ctx, "bad", cache.NoExpiry, nil)
				if !errors.Is(err, cache.ErrInvalidArgument) || !strings.Contains(err.Error(), "nil fill") {
					t.Errorf("GetOrSet(nil fill) over an undecodable entry = %v, want ErrInvalidArgument saying nil fill", err)
				}
				want := typedPoint{7, 8, "hit"}
				must(t, tc.Set(ctx, "hit", want, cache.NoExpiry))
				if got, err := tc.GetOrSet(ctx, "hit", cache.NoExpiry, nil); err != nil || got != want {
					t.Errorf("GetOrSet(nil fill) on a hit = %+v, %v; want %+v", got, err, want)
				}
			})
		})
	}
}

// TestTypedHostileStoredBytes: every read method treats a value its codec
// cannot decode (or panics on) as a miss and deletes it; none panics.
func TestTypedHostileStoredBytes(t *testing.T) {
	ctx := t.Context()
	for cname, codec := range typedCodecs() {
		for vname, hostile := range hostileValues {
			t.Run(cname+"/"+vname, func(t *testing.T) {
				c, err := cache.New(mem.New())
				must(t, err)
				tc := cache.NewTyped(c, codec)
				must(t, c.Set(ctx, "k", hostile, cache.NoExpiry))
				noPanic(t, "Get", func() {
					if v, err := tc.Get(ctx, "k"); !errors.Is(err, cache.ErrMiss) || v != (typedPoint{}) {
						t.Errorf("Get of %q = %+v, %v; want the zero value and ErrMiss", hostile, v, err)
					}
				})
				if ok, err := c.Has(ctx, "k"); ok || err != nil {
					t.Errorf("after Get, the undecodable entry is still there (Has = %v, %v)", ok, err)
				}
				// Add over an undecodable entry: the entry is live for the
				// cache (Add is not a read), so Add reports it present.
				must(t, c.Set(ctx, "k", hostile, cache.NoExpiry))
				noPanic(t, "Add", func() {
					if ok, err := tc.Add(ctx, "k", typedPoint{1, 2, "add"}, cache.NoExpiry); ok || err != nil {
						t.Errorf("Add over a live entry = %v, %v; want false, nil", ok, err)
					}
				})
				noPanic(t, "Delete", func() {
					if ok, err := tc.Delete(ctx, "k"); !ok || err != nil {
						t.Errorf("Delete = %v, %v; want true, nil", ok, err)
					}
				})
			})
		}
	}
}

// TestTypedCodecPanics: a codec that panics on a value is an error of Set,
// Add and GetOrSet naming the panic, not a panic of the caller.
func TestTypedCodecPanics(t *testing.T) {
	ctx := t.Context()
	c, err := cache.New(mem.New())
	must(t, err)
	tc := cache.NewTyped[typedPoint](c, panickyCodec{})
	boom := typedPoint{Tag: "boom"}
	noPanic(t, "Set", func() {
		if err := tc.Set(ctx, "k", boom, cache.NoExpiry); err == nil || !strings.Contains(err.Error(), "panicked") {
			t.Errorf("Set with a panicking codec = %v, want an error saying it panicked", err)
		}
	})
	noPanic(t, "Add", func() {
		if ok, err := tc.Add(ctx, "k", boom, cache.NoExpiry); ok || err == nil || !strings.Contains(err.Error(), "panicked") {
			t.Errorf("Add with a panicking codec = %v, %v; want false and an error saying it panicked", ok, err)
		}
	})
	noPanic(t, "GetOrSet", func() {
		_, err := tc.GetOrSet(ctx, "k", cache.NoExpiry, func(context.Context) (typedPoint, error) { return boom, nil })
		if err == nil || !strings.Contains(err.Error(), "panicked") {
			t.Errorf("GetOrSet with a panicking codec = %v, want an error saying it panicked", err)
		}
	})
	if ok, _ := c.Has(ctx, "k"); ok {
		t.Errorf("a value the codec could not marshal was stored")
	}
	// A typed nil codec is not NewTyped's nil: its methods panic, and the
	// calls fail instead.
	nc := cache.NewTyped[typedPoint](c, (*nilPointerCodec)(nil))
	noPanic(t, "typed nil codec", func() {
		if err := nc.Set(ctx, "k", typedPoint{}, cache.NoExpiry); err == nil {
			t.Errorf("Set with a nil *codec succeeded")
		}
		must(t, c.Set(ctx, "k", []byte(`{"X":1}`), cache.NoExpiry))
		if _, err := nc.Get(ctx, "k"); !errors.Is(err, cache.ErrMiss) {
			t.Errorf("Get with a nil *codec = %v, want a miss", err)
		}
	})
}

// TestTypedFillError: fill's error is returned, wrapped; nothing is stored,
// and an undecodable entry stays a miss for the next call.
func TestTypedFillError(t *testing.T) {
	ctx := t.Context()
	c, err := cache.New(mem.New())
	must(t, err)
	tc := cache.NewTyped[typedPoint](c, nil)
	must(t, c.Set(ctx, "k", []byte("junk"), cache.NoExpiry))
	fail := func(context.Context) (typedPoint, error) { return typedPoint{}, io.ErrUnexpectedEOF }
	if _, err := tc.GetOrSet(ctx, "k", cache.NoExpiry, fail); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("GetOrSet with a failing fill = %v, want its error", err)
	}
	want := typedPoint{Tag: "second try"}
	if got, err := tc.GetOrSet(ctx, "k", cache.NoExpiry, func(context.Context) (typedPoint, error) { return want, nil }); err != nil || got != want {
		t.Errorf("GetOrSet after a failed fill = %+v, %v; want %+v", got, err, want)
	}
}

// TestTypedNilCache: a Typed over no cache (NewTyped(nil, ...), or a nil
// *Typed) fails every call with ErrInvalidArgument instead of panicking.
func TestTypedNilCache(t *testing.T) {
	ctx := t.Context()
	fill := func(context.Context) (typedPoint, error) { return typedPoint{}, nil }
	for name, tc := range map[string]*cache.Typed[typedPoint]{
		"NewTyped(nil)": cache.NewTyped[typedPoint](nil, nil),
		"nil *Typed":    nil,
	} {
		noPanic(t, name, func() {
			_, gerr := tc.Get(ctx, "k")
			serr := tc.Set(ctx, "k", typedPoint{}, cache.NoExpiry)
			_, aerr := tc.Add(ctx, "k", typedPoint{}, cache.NoExpiry)
			_, oerr := tc.GetOrSet(ctx, "k", cache.NoExpiry, fill)
			_, derr := tc.Delete(ctx, "k")
			for i, err := range []error{gerr, serr, aerr, oerr, derr} {
				if !errors.Is(err, cache.ErrInvalidArgument) || !strings.Contains(err.Error(), "nil *Cache") {
					t.Errorf("%s: call %d = %v, want ErrInvalidArgument saying nil *Cache", name, i, err)
				}
			}
			if tc.Cache() != nil {
				t.Errorf("%s: Cache() is not nil", name)
			}
		})
	}
}

// TestTypedDeadEntryNotDeleted: when the undecodable entry cannot be
// deleted, Get's error is still a miss and carries the storage failure, as
// Cache.Get's *DeadEntryError does.
func TestTypedDeadEntryNotDeleted(t *testing.T) {
	ctx := t.Context()
	errRefused := errors.New("delete refused")
	d := &refusingDeleteDriver{Driver: mem.New(), err: errRefused}
	c, err := cache.New(d)
	must(t, err)
	tc := cache.NewTyped[typedPoint](c, nil)
	must(t, c.Set(ctx, "k", []byte("junk"), cache.NoExpiry))
	_, err = tc.Get(ctx, "k")
	var dead *cache.DeadEntryError
	if !errors.Is(err, cache.ErrMiss) || !errors.Is(err, errRefused) || !errors.As(err, &dead) {
		t.Errorf("Get of an undecodable entry that cannot be deleted = %v; want a miss, a *DeadEntryError and the delete's error", err)
	}
	// GetOrSet still refills it: the new value replaces it without a delete.
	want := typedPoint{Tag: "over"}
	if got, err := tc.GetOrSet(ctx, "k", cache.NoExpiry, func(context.Context) (typedPoint, error) { return want, nil }); err != nil || got != want {
		t.Errorf("GetOrSet over an undeletable undecodable entry = %+v, %v; want %+v", got, err, want)
	}
	storedAs(t, c, "k", want)
}

// refusingDeleteDriver fails every Delete with err.
type refusingDeleteDriver struct {
	driver.Driver
	err error
}

// Delete implements driver.Driver.
func (d *refusingDeleteDriver) Delete(context.Context, string) error { return d.err }

// TestTypedFillPanicReachesTheCaller: a fill that panics while refilling an
// undecodable entry panics in the caller, as Cache.GetOrSet's fill does (a
// panic the caller can recover), and stores nothing.
func TestTypedFillPanicReachesTheCaller(t *testing.T) {
	ctx := t.Context()
	c, err := cache.New(mem.New())
	must(t, err)
	tc := cache.NewTyped[typedPoint](c, nil)
	must(t, c.Set(ctx, "k", []byte("junk"), cache.NoExpiry))
	var got any
	func() {
		defer func() { got = recover() }()
		tc.GetOrSet(ctx, "k", cache.NoExpiry, func(context.Context) (typedPoint, error) { panic("fill panics") })
	}()
	if got != "fill panics" {
		t.Errorf("recovered %v, want the fill's panic", got)
	}
	if raw, err := c.Get(ctx, "k"); err != nil || string(raw) != "junk" {
		t.Errorf("after a panicking fill the entry holds %q, %v; want it unchanged", raw, err)
	}
}
