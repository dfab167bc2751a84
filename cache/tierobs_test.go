package cache_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/blobcache/blobcache/cache"
)

// collect returns every int64 sum and gauge mp's reader holds, by name
// (summed over attribute sets).
func collect(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	must(t, reader.Collect(t.Context(), &rm))
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[m.Name] += p.Value
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[m.Name] += p.Value
				}
			}
		}
	}
	return out
}

// TestTiersObserved: every tier counter of Stats is an OpenTelemetry
// metric equal to it (hits, misses and evictions counted, bytes held and
// the disk tier's errors observed at collection), none of them 0 here; at
// Close each tier logs its summary, the same numbers, and the observed
// instruments are no longer reported.
func TestTiersObserved(t *testing.T) {
	ctx := t.Context()
	reader := sdkmetric.NewManualReader()
	var logs bytes.Buffer
	// A memory tier that keeps small values but not diskValue, and a disk
	// tier of 4 copies.
	c, dir := diskCache(t, time.Hour, 4*4096, cache.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		cache.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))), cache.WithLocalTier(2048, time.Hour))
	for i := range 8 { // 8 copies through a disk tier of 4: evictions
		k := "k" + strconv.Itoa(i)
		must(t, c.Set(ctx, k, diskValue, time.Hour))
		c.Get(ctx, k) // a disk miss: the store's value, copied
		cache.FlushDiskTier(c)
		if i == 1 {
			c.Get(ctx, "k0") // a disk hit: nothing evicted yet
		}
	}
	must(t, c.Set(ctx, "small", []byte("v"), time.Hour))
	c.Get(ctx, "small")
	c.Get(ctx, "small") // a local hit
	// The location's directory (the file driver's "app~") replaced by a
	// file: the next copy cannot be written, a failure of the tier's own.
	cache.FlushDiskTier(c)
	loc := filepath.Join(dir, "app~")
	must(t, os.RemoveAll(loc))
	must(t, os.WriteFile(loc, nil, 0o600))
	must(t, c.Set(ctx, "k8", diskValue, time.Hour))
	c.Get(ctx, "k8")
	cache.FlushDiskTier(c)

	s := c.Stats()
	want := map[string]int64{
		"blobcache.local.hits": s.LocalHits, "blobcache.local.misses": s.LocalMisses,
		"blobcache.local.evictions": s.LocalEvictions, "blobcache.local.bytes": s.LocalBytes,
		"blobcache.disk.hits": s.DiskHits, "blobcache.disk.misses": s.DiskMisses,
		"blobcache.disk.evictions": s.DiskEvictions, "blobcache.disk.bytes": s.DiskBytes,
		"blobcache.disk.errors": s.DiskErrors,
	}
	for name, v := range want {
		if v == 0 && name != "blobcache.local.evictions" { // the memory tier holds one small value
			t.Errorf("Stats: %s is 0; the test should have made it positive (%+v)", name, s)
		}
	}
	got := collect(t, reader)
	if diff := cmp.Diff(want, pick(got, want)); diff != "" {
		t.Errorf("tier metrics against Stats (-Stats +metrics):\n%s", diff)
	}

	must(t, c.Close())
	summaries := map[string]map[string]any{}
	sc := bufio.NewScanner(&logs)
	for sc.Scan() {
		var rec map[string]any
		must(t, json.Unmarshal(sc.Bytes(), &rec))
		if msg, _ := rec["msg"].(string); msg == "blobcache: local tier at close" || msg == "blobcache: disk tier at close" {
			summaries[msg] = rec
		}
	}
	s = c.Stats() // the tiers are empty now, but their counts stay
	num := func(v int64) any { return float64(v) }
	wantLogs := map[string]map[string]any{
		"blobcache: local tier at close": {"location": "app/", "hits": num(s.LocalHits), "misses": num(s.LocalMisses),
			"evictions": num(s.LocalEvictions), "bytes": num(want["blobcache.local.bytes"])},
		"blobcache: disk tier at close": {"location": "app/", "hits": num(s.DiskHits), "misses": num(s.DiskMisses),
			"evictions": num(s.DiskEvictions), "bytes": num(want["blobcache.disk.bytes"]), "errors": num(s.DiskErrors)},
	}
	for msg, rec := range summaries {
		delete(rec, "time")
		delete(rec, "level")
		delete(rec, "msg")
		summaries[msg] = rec
	}
	if diff := cmp.Diff(wantLogs, summaries); diff != "" {
		t.Errorf("the tiers' summaries at Close (-want +got):\n%s", diff)
	}
	after := collect(t, reader)
	for _, name := range []string{"blobcache.local.bytes", "blobcache.disk.bytes", "blobcache.disk.errors"} {
		if v, ok := after[name]; ok {
			t.Errorf("after Close, %s is still observed (%d)", name, v)
		}
	}
}

// pick returns the entries of m named in keys.
func pick(m, keys map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k := range keys {
		out[k] = m[k] // a counter never added to is not reported: 0

	}
	return out
}
