package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/mem"
)

// script makes a known mix of calls and returns how many hits and misses it
// made.
func script(t *testing.T, c *cache.Cache) {
	t.Helper()
	ctx := context.Background()
	must(t, c.Set(ctx, "a", []byte("1"), cache.DefaultTTL))                                           // set
	must(t, c.Set(ctx, "b", []byte("x"), cache.DefaultTTL))                                           // set
	_, _ = c.Get(ctx, "a")                                                                            // hit
	_, _ = c.Get(ctx, "nope")                                                                         // miss
	_, _ = c.GetMany(ctx, []string{"a", "b", "c"})                                                    // 2 hits, 1 miss
	_, _ = c.Add(ctx, "a", []byte("2"), cache.DefaultTTL)                                             // add, not added
	_, _ = c.Add(ctx, "n", []byte("5"), cache.DefaultTTL)                                             // add, added
	_, _ = c.Incr(ctx, "n", 1)                                                                        // incr
	_, _ = c.Incr(ctx, "b", 1)                                                                        // incr, error (not an integer)
	_, _ = c.Touch(ctx, "a", time.Hour)                                                               // touch
	_, _ = c.Delete(ctx, "b")                                                                         // delete
	_, _ = c.GetOrSet(ctx, "g", 0, func(context.Context) ([]byte, error) { return []byte("f"), nil }) // miss, add
	_, _ = c.GetOrSet(ctx, "g", 0, nil)                                                               // hit
}

func TestStatsCountExactly(t *testing.T) {
	c, err := cache.New(mem.New(), cache.WithMaxEntries(0))
	must(t, err)
	script(t, c)
	got := c.Stats()
	want := cache.Stats{
		Hits: 4, Misses: 3, Sets: 2, Adds: 3, Added: 2, Deletes: 1, Touches: 1, Incrs: 2, Errors: 1,
		// Reads: 2 Get + 3 GetMany + Add(live) header + 2 Incr + Touch + 2 GetOrSet Get
		// before fill (outer and inner) + 1 final GetOrSet Get = 12. The Delete is
		// one ReadDelete (mem is a driver.ReadDeleter): a delete request, no read.
		Reads: 12,
		// Writes: 2 Set + 2 Add attempts + 1 Incr + 1 Touch + 1 GetOrSet add = 7.
		Writes: 7, DeleteRequests: 1,
		Fills: 1, // the one GetOrSet miss; no fill lease, so no FillWaits
	}
	got.BytesRead, got.BytesWritten = 0, 0
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	if s := c.Stats(); s.BytesWritten == 0 || s.BytesRead == 0 {
		t.Errorf("bytes not counted: %+v", s)
	}
}

func TestOpenTelemetryMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	c, err := cache.New(mem.New(), cache.WithLocation("otel"), cache.WithMeterProvider(mp), cache.WithMaxEntries(0))
	must(t, err)
	script(t, c)
	// 3 entries (a, n, g): a cull removes ceil(3/3) = 1.
	if n, err := c.Cull(context.Background()); err != nil || n != 1 {
		t.Fatalf("Cull = %d, %v", n, err)
	}
	var rm metricdata.ResourceMetrics
	must(t, reader.Collect(context.Background(), &rm))
	sums := map[string]int64{}
	ops := map[string]int64{}
	var durations uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					sums[m.Name] += p.Value
					if m.Name == "blobcache.operations" {
						op, _ := p.Attributes.Value("blobcache.op")
						res, _ := p.Attributes.Value("blobcache.result")
						ops[op.AsString()+"/"+res.AsString()] += p.Value
					}
					if loc, _ := p.Attributes.Value("blobcache.location"); loc.AsString() != "otel/" {
						t.Errorf("%s: location attribute %q", m.Name, loc.AsString())
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					durations += p.Count
				}
			}
		}
	}
	if sums["blobcache.hits"] != 4 || sums["blobcache.misses"] != 3 {
		t.Errorf("hits %d misses %d, want 4 and 3", sums["blobcache.hits"], sums["blobcache.misses"])
	}
	if sums["blobcache.culls"] != 1 || sums["blobcache.entries_culled"] != 1 {
		t.Errorf("culls %d, entries culled %d", sums["blobcache.culls"], sums["blobcache.entries_culled"])
	}
	if st := c.Stats(); sums["blobcache.culls"] != st.Culls || sums["blobcache.bytes_written"] != st.BytesWritten || sums["blobcache.bytes_read"] != st.BytesRead {
		t.Errorf("metrics %v disagree with Stats %+v", sums, st)
	}
	wantOps := map[string]int64{"set/ok": 2, "get/ok": 2, "get_many/ok": 1, "add/ok": 2, "incr/ok": 1, "incr/error": 1,
		"touch/ok": 1, "delete/ok": 1, "get_or_set/ok": 2, "cull/ok": 1}
	if diff := cmp.Diff(wantOps, ops); diff != "" {
		t.Errorf("operations by op/result (-want +got):\n%s", diff)
	}
	if durations != 14 {
		t.Errorf("duration histogram has %d points, want 14 calls", durations)
	}
}

func TestSpansPerCall(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	c, err := cache.New(mem.New(), cache.WithTracerProvider(tp))
	must(t, err)
	ctx := context.Background()
	must(t, c.Set(ctx, "k", []byte("v"), 0))
	_, _ = c.Get(ctx, "k")
	must(t, c.Set(ctx, "s", []byte("text"), 0))
	_, err = c.Incr(ctx, "s", 1)
	if !errors.Is(err, cache.ErrNotInteger) {
		t.Fatal(err)
	}
	var names []string
	for _, s := range rec.Ended() {
		names = append(names, s.Name())
		if s.Name() == "blobcache.incr" && s.Status().Code != codes.Error {
			t.Errorf("failed Incr span status %v", s.Status())
		}
		if s.Name() == "blobcache.get" && s.Status().Code == codes.Error {
			t.Errorf("Get span marked as error")
		}
	}
	if diff := cmp.Diff([]string{"blobcache.set", "blobcache.get", "blobcache.set", "blobcache.incr"}, names); diff != "" {
		t.Errorf("spans (-want +got):\n%s", diff)
	}
}

func TestLogging(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store := mem.New()
	c, err := cache.New(store, cache.WithLogger(logger), cache.WithLocation("logs"), cache.WithMaxEntries(3))
	must(t, err)
	ctx := context.Background()
	const secretValue = "VALUE-NEVER-LOGGED"
	for i := range 4 {
		must(t, c.Set(ctx, fmt.Sprint("k", i), []byte(secretValue), 0))
	}
	must(t, store.Write(ctx, c.ObjectName("bad"), strings.NewReader("junk"), &driver.WriteOptions{}))
	_, _ = c.Get(ctx, "bad")
	must(t, c.Clear(ctx))
	out := buf.String()
	for _, want := range []string{`"msg":"blobcache: culled"`, `"removed":1`, `"entries":3`, `"max_entries":3`,
		`"msg":"blobcache: dropped corrupt entry"`, `"object":"` + c.ObjectName("bad") + `"`, `"msg":"blobcache: cleared"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, secretValue) {
		t.Errorf("a value was logged:\n%s", out)
	}
	// Silent by default.
	quiet, err := cache.New(mem.New(), cache.WithMaxEntries(1))
	must(t, err)
	must(t, quiet.Set(ctx, "a", nil, 0))
	must(t, quiet.Set(ctx, "b", nil, 0))
}

// Telemetry that is off costs no allocation: no-op providers allocate no more
// than no providers at all.
func TestTelemetryOffAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	allocs := func(opts ...cache.Option) float64 {
		c, err := cache.New(mem.New(), opts...)
		must(t, err)
		must(t, c.Set(ctx, "k", []byte("v"), 0))
		return testing.AllocsPerRun(200, func() { _, _ = c.Get(ctx, "k") })
	}
	base := allocs()
	noop := allocs(cache.WithMeterProvider(metricnoop.NewMeterProvider()), cache.WithTracerProvider(tracenoop.NewTracerProvider()))
	if noop > base {
		t.Errorf("Get allocates %.0f times with no-op telemetry, %.0f without", noop, base)
	}
	t.Logf("Get on mem: %.0f allocations without telemetry, %.0f with no-op providers", base, noop)
}

func BenchmarkGetTelemetry(b *testing.B) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts []cache.Option
	}{
		{"none", nil},
		{"noop-providers", []cache.Option{cache.WithMeterProvider(metricnoop.NewMeterProvider()), cache.WithTracerProvider(tracenoop.NewTracerProvider())}},
		{"sdk-metrics", []cache.Option{cache.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())))}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := cache.New(mem.New(), tc.opts...)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Set(ctx, "k", []byte("value"), 0); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Get(ctx, "k"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestOpenTelemetryFleetAndTier: the fill, stale-while-revalidate and local
// tier counters are metrics too, equal to Stats.
func TestOpenTelemetryFleetAndTier(t *testing.T) {
	ctx := t.Context()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	clock := newFakeClock()
	c := fleet(t, 1, cache.WithMeterProvider(mp), cache.WithStaleGrace(time.Hour), cache.WithFillLease(time.Minute),
		cache.WithLocalTier(8<<10, time.Hour), cache.WithMaxEntries(0), clock.option())[0]
	if _, err := c.GetOrSet(ctx, "k", time.Minute, fillWith("v1")); err != nil { // a fill
		t.Fatal(err)
	}
	c.Get(ctx, "k")
	c.Get(ctx, "k") // a local hit
	clock.add(2 * time.Minute)
	if v, err := c.GetOrSet(ctx, "k", time.Minute, fillWith("v2")); string(v) != "v1" || err != nil { // stale, a refresh
		t.Fatal(string(v), err)
	}
	waitFor(t, "the refresh", func() bool { return c.Stats().Refreshes == 1 })
	big := bytes.Repeat([]byte("x"), 1000)
	for i := range 40 { // 40 KB through an 8 KiB tier: evictions
		key := fmt.Sprint("e", i)
		must(t, c.Set(ctx, key, big, time.Hour))
		c.Get(ctx, key)
	}
	if c.Stats().LocalEvictions == 0 {
		t.Fatalf("40 KB read through an 8 KiB tier evicted nothing")
	}
	sums := collect(t, reader)
	s := c.Stats()
	want := map[string]int64{
		"blobcache.fills": s.Fills, "blobcache.fill_waits": s.FillWaits, "blobcache.stale": s.Stale,
		"blobcache.refreshes": s.Refreshes, "blobcache.local.hits": s.LocalHits, "blobcache.local.misses": s.LocalMisses,
		"blobcache.local.evictions": s.LocalEvictions,
	}
	got := map[string]int64{}
	for k := range want {
		got[k] = sums[k]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics against Stats (-Stats +metrics):\n%s", diff)
	}
	if s.Fills != 2 || s.Stale != 1 || s.Refreshes != 1 || s.LocalHits < 1 {
		t.Errorf("Stats %+v: want 2 fills, 1 stale, 1 refresh, local hits", s)
	}
}
