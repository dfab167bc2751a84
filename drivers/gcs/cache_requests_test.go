package gcs_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/drivers/gcs"
	"github.com/blobcache/blobcache/internal/gcstest"
)

// env is one fake-gcs-server bucket with a counting transport.
type env struct {
	srv    *gcstest.Server
	bucket string
	ct     *gcstest.CountingTransport
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := gcstest.Start(t)
	return &env{srv: srv, bucket: srv.NewBucket(), ct: &gcstest.CountingTransport{}}
}

// open opens a driver through the counting transport and resets the counts.
func (e *env) open(t *testing.T) *gcs.Driver {
	t.Helper()
	d, err := e.srv.Open(t.Context(), e.bucket, e.ct)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	e.ct.Reset()
	return d
}

// counts asserts the requests since the last Reset, then resets.
func (e *env) counts(t *testing.T, what string, want map[gcstest.Op]int) {
	t.Helper()
	if got := e.ct.Snapshot(); !maps.Equal(got, want) {
		t.Errorf("%s: requests = %v, want %v", what, got, want)
	}
	e.ct.Reset()
}

// TestCacheRequestCounts asserts the exact GCS requests of each cache call,
// counted on the wire. The README's GCS cost table is this test's output.
func TestCacheRequestCounts(t *testing.T) {
	e := newEnv(t)
	d := e.open(t)
	c, err := cache.New(d, cache.WithLocation("costs"), cache.WithMaxEntries(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var table []string
	step := func(what string, want map[gcstest.Op]int, call func() error) {
		t.Helper()
		e.ct.Reset()
		if err := call(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got := e.ct.Snapshot()
		if !maps.Equal(got, want) {
			t.Errorf("%s: requests = %v, want %v", what, got, want)
		}
		var parts []string
		for _, op := range slices.Sorted(maps.Keys(got)) {
			parts = append(parts, fmt.Sprintf("%d %s", got[op], op))
		}
		table = append(table, fmt.Sprintf("| %s | %s |", what, strings.Join(parts, " + ")))
	}
	get, put, list, del := gcstest.Download, gcstest.Insert, gcstest.List, gcstest.Delete
	v := []byte("value")

	step("Set", map[gcstest.Op]int{put: 1}, func() error { return c.Set(ctx, "k", v, time.Hour) })
	step("Get (hit)", map[gcstest.Op]int{get: 1}, func() error { _, err := c.Get(ctx, "k"); return err })
	step("Get (miss)", map[gcstest.Op]int{get: 1}, func() error {
		if _, err := c.Get(ctx, "absent"); err == nil {
			return fmt.Errorf("hit on an absent key")
		}
		return nil
	})
	step("Has", map[gcstest.Op]int{get: 1}, func() error { _, err := c.Has(ctx, "k"); return err })
	step("Add (new key)", map[gcstest.Op]int{put: 1}, func() error {
		if ok, err := c.Add(ctx, "a", v, time.Hour); err != nil || !ok {
			return fmt.Errorf("Add = %v, %v; want true", ok, err)
		}
		return nil
	})
	step("Add (live key)", map[gcstest.Op]int{put: 1, get: 1}, func() error {
		if ok, err := c.Add(ctx, "a", v, time.Hour); err != nil || ok {
			return fmt.Errorf("Add = %v, %v; want false", ok, err)
		}
		return nil
	})
	step("Touch", map[gcstest.Op]int{get: 1, put: 1}, func() error { _, err := c.Touch(ctx, "k", time.Hour); return err })
	step("Set of an integer", map[gcstest.Op]int{put: 1}, func() error { return c.Set(ctx, "n", []byte("1"), time.Hour) })
	step("Incr", map[gcstest.Op]int{get: 1, put: 1}, func() error {
		if n, err := c.Incr(ctx, "n", 1); err != nil || n != 2 {
			return fmt.Errorf("Incr = %d, %v; want 2", n, err)
		}
		return nil
	})
	step("Delete (live)", map[gcstest.Op]int{get: 1, del: 1}, func() error { _, err := c.Delete(ctx, "k"); return err })
	step("Delete (absent)", map[gcstest.Op]int{get: 1}, func() error { _, err := c.Delete(ctx, "k"); return err })
	items := map[string][]byte{}
	for i := range 100 {
		items[fmt.Sprint("m", i)] = v
	}
	step("SetMany (100)", map[gcstest.Op]int{put: 100}, func() error { return c.SetMany(ctx, items, time.Hour) })
	step("GetMany (100)", map[gcstest.Op]int{get: 100}, func() error { _, err := c.GetMany(ctx, slices.Collect(maps.Keys(items))); return err })
	step("DeleteMany (100)", map[gcstest.Op]int{gcstest.Batch: 1}, func() error { return c.DeleteMany(ctx, slices.Collect(maps.Keys(items))) })
	step("Len (2 entries)", map[gcstest.Op]int{list: 1}, func() error { _, err := c.Len(ctx); return err })

	// Clear of N entries: ceil(N/1000) listings and ceil(N/100) batch
	// requests (the cache hands the driver 1000 names at a time, the driver
	// sends them 100 a request).
	const n = 2500
	many := map[string][]byte{}
	for i := range n - 2 { // plus "a" and "n"
		many[fmt.Sprint("c", i)] = v
	}
	if err := c.SetMany(ctx, many, time.Hour); err != nil {
		t.Fatal(err)
	}
	step("Clear (2500 entries)", map[gcstest.Op]int{list: 3, gcstest.Batch: n / gcs.MaxBatch}, func() error { return c.Clear(ctx) })
	if got, err := c.Len(ctx); err != nil || got != 0 {
		t.Errorf("after Clear: Len = %d, %v; want 0", got, err)
	}
	t.Logf("request counts:\n| call | GCS requests |\n| --- | --- |\n%s", strings.Join(table, "\n"))
}
