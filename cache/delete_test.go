package cache_test

import (
	"strings"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/file"
	"github.com/blobcache/blobcache/drivers/mem"
)

// plainDriver hides every optional capability of its driver.
type plainDriver struct{ driver.Driver }

// TestDeleteResultAndRequests: Delete reports a live entry only, removes a
// dead one (expired, within its stale grace, corrupt) all the same, and
// costs one call on a driver.ReadDeleter (mem, file) where it costs a read
// and a delete on a driver without one.
func TestDeleteResultAndRequests(t *testing.T) {
	fileStore := func(t *testing.T) driver.Driver {
		d, err := file.New(t.TempDir())
		must(t, err)
		return d
	}
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) driver.Driver
		// calls per Delete of a present object: reads, deletes.
		reads, deletes int64
	}{
		{"mem", func(*testing.T) driver.Driver { return mem.New() }, 0, 1},
		{"file", fileStore, 0, 1},
		{"mem-without-ReadDeleter", func(*testing.T) driver.Driver { return plainDriver{mem.New()} }, 1, 1},
		{"file-without-ReadDeleter", func(t *testing.T) driver.Driver { return plainDriver{fileStore(t)} }, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			clock := newFakeClock()
			store := tc.store(t)
			c, n := newCounted(t, store, clock.option(), cache.WithStaleGrace(time.Minute), cache.WithMaxEntries(0))
			defer c.Close()
			delete := func(key string, want bool, reads, deletes int64) {
				t.Helper()
				before := n.Counts()
				ok, err := c.Delete(ctx, key)
				if err != nil || ok != want {
					t.Errorf("Delete(%q) = %v, %v; want %v", key, ok, err, want)
				}
				got := n.Counts()
				if r, d := got.Reads-before.Reads, got.Deletes-before.Deletes; r != reads || d != deletes || got.Requests()-before.Requests() != reads+deletes {
					t.Errorf("Delete(%q): %d reads and %d deletes (%d calls), want %d and %d", key, r, d, got.Requests()-before.Requests(), reads, deletes)
				}
				if _, _, err := store.Read(ctx, c.ObjectName(key), 0, -1); err == nil {
					t.Errorf("after Delete(%q) its object is still there", key)
				}
			}
			must(t, c.Set(ctx, "live", []byte("v"), time.Hour))
			delete("live", true, tc.reads, tc.deletes)
			// Absent: the one ReadDelete finds nothing, or the read does and
			// nothing is deleted.
			delete("live", false, tc.reads, 1-tc.reads)

			must(t, c.Set(ctx, "stale", []byte("v"), time.Second))
			must(t, c.Set(ctx, "expired", []byte("v"), time.Second))
			clock.add(2 * time.Second) // both expired, within the grace
			delete("stale", false, tc.reads, tc.deletes)
			clock.add(2 * time.Minute) // past the grace: dead
			expiredBefore := c.Stats().Expired
			delete("expired", false, tc.reads, tc.deletes)
			if got := c.Stats().Expired - expiredBefore; got != 1 {
				t.Errorf("Stats().Expired grew by %d for the dead entry Delete removed, want 1", got)
			}

			must(t, store.Write(ctx, c.ObjectName("corrupt"), strings.NewReader("not an entry"), &driver.WriteOptions{}))
			corruptBefore := c.Stats().Corrupt
			delete("corrupt", false, tc.reads, tc.deletes)
			if got := c.Stats().Corrupt - corruptBefore; got != 1 {
				t.Errorf("Stats().Corrupt grew by %d for the corrupt object Delete removed, want 1", got)
			}
			if s := c.Stats(); s.DeleteRequests == 0 {
				t.Errorf("Stats().DeleteRequests = 0, want the deletes counted")
			}
		})
	}
}
