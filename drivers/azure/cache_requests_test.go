package azure_test

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/drivers/azure"
	"github.com/blobcache/blobcache/internal/azuritetest"
)

// TestCacheRequestCounts asserts the exact Azure requests of each cache
// call, counted on the wire (less those the Azure SDK sent again after a
// server failure, which are logged). The README's cost table is this
// test's output.
func TestCacheRequestCounts(t *testing.T) {
	cfg := azuritetest.Env(t)
	ct := azuritetest.NewCountingTransport(nil)
	opts := cfg.Options()
	opts.HTTPClient = &http.Client{Transport: ct}
	ctx := t.Context()
	d, err := azure.Open(ctx, azuritetest.NewContainer(t, cfg), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := ct.Snapshot(); !maps.Equal(got, map[azuritetest.Op]int{azuritetest.GetContainerProperties: 1}) {
		t.Errorf("Open: requests = %v, want 1 Get Container Properties", got)
	}
	c, err := cache.New(d, cache.WithLocation("costs"), cache.WithMaxEntries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type want = map[azuritetest.Op]int
	var table []string
	step := func(what string, want want, call func() error) {
		t.Helper()
		ct.Reset()
		if err := call(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		// Requests the SDK sent again after a 5xx, 429, 408 or no answer
		// (the server's load, not the driver) are left out, and logged.
		got := ct.Answered()
		if f := ct.Failed(); len(f) > 0 {
			t.Logf("%s: retried after a failure: %v: %q", what, f, ct.Failures())
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: requests = %v, want %v", what, got, want)
		}
		var parts []string
		for _, op := range slices.Sorted(maps.Keys(got)) {
			parts = append(parts, fmt.Sprintf("%d %s", got[op], op))
		}
		table = append(table, fmt.Sprintf("| %s | %s |", what, strings.Join(parts, " + ")))
	}
	get, put, list, del, batch := azuritetest.GetBlob, azuritetest.PutBlob, azuritetest.ListBlobs, azuritetest.DeleteBlob, azuritetest.BlobBatch
	v := []byte("value")

	step("Set", want{put: 1}, func() error { return c.Set(ctx, "k", v, time.Hour) })
	step("Get (hit)", want{get: 1}, func() error { _, err := c.Get(ctx, "k"); return err })
	step("Get (miss)", want{get: 1}, func() error {
		if _, err := c.Get(ctx, "absent"); err == nil {
			return fmt.Errorf("hit on an absent key")
		}
		return nil
	})
	step("Has", want{get: 1}, func() error { _, err := c.Has(ctx, "k"); return err })
	step("Add (new key)", want{put: 1}, func() error { _, err := c.Add(ctx, "a", v, time.Hour); return err })
	step("Add (live key)", want{put: 1, get: 1}, func() error { _, err := c.Add(ctx, "a", v, time.Hour); return err })
	step("Touch", want{get: 1, put: 1}, func() error { _, err := c.Touch(ctx, "k", time.Hour); return err })
	step("Set of an integer", want{put: 1}, func() error { return c.Set(ctx, "n", []byte("1"), time.Hour) })
	step("Incr", want{get: 1, put: 1}, func() error { _, err := c.Incr(ctx, "n", 1); return err })
	step("Delete (live)", want{get: 1, del: 1}, func() error { _, err := c.Delete(ctx, "k"); return err })
	step("Delete (absent)", want{get: 1}, func() error { _, err := c.Delete(ctx, "k"); return err })
	items := map[string][]byte{}
	for i := range 100 {
		items[fmt.Sprint("m", i)] = v
	}
	step("SetMany (100)", want{put: 100}, func() error { return c.SetMany(ctx, items, time.Hour) })
	step("GetMany (100)", want{get: 100}, func() error { _, err := c.GetMany(ctx, slices.Collect(maps.Keys(items))); return err })
	step("DeleteMany (100)", want{batch: 1}, func() error { return c.DeleteMany(ctx, slices.Collect(maps.Keys(items))) })
	step("Len (2 entries)", want{list: 1}, func() error { _, err := c.Len(ctx); return err })

	// Clear of N entries: ceil(N/1000) listings and, per listing of 1000,
	// ceil(1000/256) = 4 batches (the cache hands DeleteBatch 1000 names).
	const n = 2500
	many := map[string][]byte{}
	for i := range n - 2 { // plus "a" and "n"
		many[fmt.Sprint("c", i)] = v
	}
	if err := c.SetMany(ctx, many, time.Hour); err != nil {
		t.Fatal(err)
	}
	step("Clear (2500 entries)", want{list: 3, batch: 10}, func() error { return c.Clear(ctx) })
	t.Logf("request counts:\n| call | Azure requests |\n| --- | --- |\n%s", strings.Join(table, "\n"))
}
