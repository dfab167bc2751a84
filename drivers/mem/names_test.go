package mem_test

import (
	"slices"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/mem"
	"github.com/blobcache/blobcache/internal/s3test"
)

// TestTrickyNames: the store keeps and lists names as they are (no escaping,
// no unescaping), so every name driver.ValidateName accepts round-trips
// exactly, and only invalid names are refused, by ValidateName and by every
// method, with driver.ErrInvalidName.
func TestTrickyNames(t *testing.T) {
	d := mem.New()
	defer d.Close()
	var valid []string
	for _, n := range s3test.TrickyNames {
		if driver.ValidateName(n) == nil {
			valid = append(valid, n)
		}
	}
	if got := s3test.CheckNames(t, d, "", s3test.TrickyNames, nil); !slices.Equal(got, valid) {
		t.Errorf("accepted %q,\nwant every valid name %q", got, valid)
	}
	// Under a folder too (the names then share a listing prefix).
	s3test.CheckNames(t, d, "loc/", s3test.TrickyNames, nil)
}

// TestTrickyLocations: a location that other stores would rewrite (s3blob's
// "../" and "__0x..__" escapes) is kept as given here, so the cache accepts
// it and its entries are listed and cleared.
func TestTrickyLocations(t *testing.T) {
	for _, loc := range []string{"a..", "x__0x2f__y", "__0x41__", "a b/ü"} {
		d := mem.New()
		c, err := cache.New(d, cache.WithLocation(loc), cache.WithMaxEntries(3))
		if err != nil {
			t.Fatalf("location %q: %v", loc, err)
		}
		ctx := t.Context()
		for i := range 5 {
			if err := c.Set(ctx, string(rune('a'+i)), []byte("v"), time.Hour); err != nil {
				t.Fatalf("location %q: Set: %v", loc, err)
			}
		}
		if n, err := c.Len(ctx); err != nil || n == 0 || n > 3 {
			t.Errorf("location %q: Len = %d, %v", loc, n, err)
		}
		if err := c.Clear(ctx); err != nil {
			t.Errorf("location %q: Clear: %v", loc, err)
		}
		if names, err := s3test.ListAll(ctx, d, ""); err != nil || len(names) != 0 {
			t.Errorf("location %q: left %q, %v", loc, names, err)
		}
		c.Close()
	}
}
