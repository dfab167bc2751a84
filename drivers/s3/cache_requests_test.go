package s3_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/internal/s3test"
)

// TestCacheRequestCounts asserts the exact S3 requests of each cache call,
// counted on the wire. The README's cost table is this test's output.
func TestCacheRequestCounts(t *testing.T) {
	e := newEnv(t)
	d := e.open(t, nil)
	c, err := cache.New(d, cache.WithLocation("costs"), cache.WithMaxEntries(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var table []string
	step := func(what string, want map[s3test.Op]int, call func() error) {
		t.Helper()
		e.ct.Reset()
		if err := call(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got := e.ct.Snapshot()
		if !mapsEqual(got, want) {
			t.Errorf("%s: requests = %v, want %v", what, got, want)
		}
		var parts []string
		for _, op := range slices.Sorted(maps.Keys(got)) {
			parts = append(parts, fmt.Sprintf("%d %s", got[op], op))
		}
		table = append(table, fmt.Sprintf("| %s | %s |", what, strings.Join(parts, " + ")))
	}
	get, put, list, del, batch := s3test.GetObject, s3test.PutObject, s3test.ListObjectsV2, s3test.DeleteObject, s3test.DeleteObjects
	v := []byte("value")

	step("Set", map[s3test.Op]int{put: 1}, func() error { return c.Set(ctx, "k", v, time.Hour) })
	step("Get (hit)", map[s3test.Op]int{get: 1}, func() error { _, err := c.Get(ctx, "k"); return err })
	step("Get (miss)", map[s3test.Op]int{get: 1}, func() error {
		if _, err := c.Get(ctx, "absent"); err == nil {
			return fmt.Errorf("hit on an absent key")
		}
		return nil
	})
	step("Has", map[s3test.Op]int{get: 1}, func() error { _, err := c.Has(ctx, "k"); return err })
	step("Add (new key)", map[s3test.Op]int{put: 1}, func() error { _, err := c.Add(ctx, "a", v, time.Hour); return err })
	step("Add (live key)", map[s3test.Op]int{put: 1, get: 1}, func() error { _, err := c.Add(ctx, "a", v, time.Hour); return err })
	step("Touch", map[s3test.Op]int{get: 1, put: 1}, func() error { _, err := c.Touch(ctx, "k", time.Hour); return err })
	step("Set of an integer", map[s3test.Op]int{put: 1}, func() error { return c.Set(ctx, "n", []byte("1"), time.Hour) })
	step("Incr", map[s3test.Op]int{get: 1, put: 1}, func() error { _, err := c.Incr(ctx, "n", 1); return err })
	step("Delete (live)", map[s3test.Op]int{get: 1, del: 1}, func() error { _, err := c.Delete(ctx, "k"); return err })
	step("Delete (absent)", map[s3test.Op]int{get: 1}, func() error { _, err := c.Delete(ctx, "k"); return err })
	step("Set", map[s3test.Op]int{put: 1}, func() error { return c.Set(ctx, "k", v, time.Hour) })
	step("DeleteMany (1), Delete without its result", map[s3test.Op]int{batch: 1}, func() error { return c.DeleteMany(ctx, []string{"k"}) })
	items := map[string][]byte{}
	for i := range 100 {
		items[fmt.Sprint("m", i)] = v
	}
	step("SetMany (100)", map[s3test.Op]int{put: 100}, func() error { return c.SetMany(ctx, items, time.Hour) })
	step("GetMany (100)", map[s3test.Op]int{get: 100}, func() error { _, err := c.GetMany(ctx, slices.Collect(maps.Keys(items))); return err })
	step("DeleteMany (100)", map[s3test.Op]int{batch: 1}, func() error { return c.DeleteMany(ctx, slices.Collect(maps.Keys(items))) })
	step("Len (2 entries)", map[s3test.Op]int{list: 1}, func() error { _, err := c.Len(ctx); return err })

	// Clear of N entries: ceil(N/1000) listings and ceil(N/1000) batch deletes.
	const n = 2500
	many := map[string][]byte{}
	for i := range n - 2 { // plus "a" and "n"
		many[fmt.Sprint("c", i)] = v
	}
	if err := c.SetMany(ctx, many, time.Hour); err != nil {
		t.Fatal(err)
	}
	step("Clear (2500 entries)", map[s3test.Op]int{list: 3, batch: 3}, func() error { return c.Clear(ctx) })
	t.Logf("request counts:\n| call | S3 requests |\n| --- | --- |\n%s", strings.Join(table, "\n"))
}

// TestCacheListingShare checks that writes list only as culling needs: the
// first write lists once; later writes list again only near max_entries.
func TestCacheListingShare(t *testing.T) {
	e := newEnv(t)
	d := e.open(t, nil)
	c, err := cache.New(d, cache.WithLocation("share"), cache.WithMaxEntries(50))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for i := range 200 {
		if err := c.Set(ctx, fmt.Sprint("k", i), []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	got := e.ct.Snapshot()
	// 200 sets into 50 entries culled by a third: culls at sets 51, 68, 85,
	// ... (every 17 sets): 9 culls, each one LIST and one DeleteObjects, plus
	// the first write's LIST and the early listings of a new process.
	if got[s3test.PutObject] != 200 {
		t.Errorf("PutObject = %d, want 200", got[s3test.PutObject])
	}
	if got[s3test.DeleteObjects] != 9 {
		t.Errorf("DeleteObjects = %d, want 9 culls", got[s3test.DeleteObjects])
	}
	if l := got[s3test.ListObjectsV2]; l < 10 || l > 20 {
		t.Errorf("ListObjectsV2 = %d for 200 sets and 9 culls, want 10..20", l)
	}
	t.Logf("200 sets, max_entries 50: %v", got)
	// After the cull at set 187 34 entries remain; 13 more sets make 47.
	if n, err := c.Len(ctx); err != nil || n != 47 {
		t.Errorf("Len = %d, %v; want 47", n, err)
	}
}
