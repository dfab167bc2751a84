package cache_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/file"
	"github.com/blobcache/blobcache/drivers/mem"
)

// A memory tier this small keeps no value of diskValue's size (a value
// larger than half the tier is not kept), so every read the tests make
// past it reaches the disk tier.
const tinyMemory = 256

var diskValue = []byte(strings.Repeat("v", 1000))

// diskCache returns a cache over a counted mem store with a disk tier in a
// fresh directory, and the directory.
func diskCache(t *testing.T, staleness time.Duration, diskBytes int64, opts ...cache.Option) (*cache.Cache, string) {
	t.Helper()
	dir := t.TempDir()
	all := append([]cache.Option{cache.WithLocation("app"), cache.WithMaxEntries(0),
		cache.WithLocalTier(tinyMemory, staleness), cache.WithDiskTier(dir, diskBytes)}, opts...)
	c, _ := newCounted(t, mem.New(), all...)
	t.Cleanup(func() { c.Close() })
	return c, dir
}

// flushed waits for the disk tier's background writes and deletions, and
// checks that it holds n copies by its weight (each 4 KiB here).
func flushed(t *testing.T, c *cache.Cache, n int64) {
	t.Helper()
	cache.FlushDiskTier(c)
	if got := c.Stats().DiskBytes; got != n*4096 {
		t.Fatalf("the disk tier holds %d bytes, want %d copies of 4 KiB", got, n)
	}
}

// copyFiles returns the regular files under dir: the copies (the file
// driver's lock files are under a dot directory, its temporary files dot
// files).
func copyFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && p != dir {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") { // not a temporary file
			out = append(out, p)
		}
		return nil
	})
	must(t, err)
	return out
}

// TestDiskTierServes: a value read from the store is copied to disk, and
// the next read the memory tier misses is served from the disk with no
// request; the cache's own Set, Delete and Clear drop the copy at once.
func TestDiskTierServes(t *testing.T) {
	ctx := t.Context()
	c, dir := diskCache(t, time.Hour, 1<<20)
	must(t, c.Set(ctx, "k", diskValue, time.Hour))
	if v, err := c.Get(ctx, "k"); err != nil || string(v) != string(diskValue) {
		t.Fatalf("Get = %d bytes, %v", len(v), err)
	}
	flushed(t, c, 1)
	reads := c.Stats().Reads
	for range 3 {
		if v, err := c.Get(ctx, "k"); err != nil || string(v) != string(diskValue) {
			t.Fatalf("Get from the disk tier = %d bytes, %v", len(v), err)
		}
	}
	s := c.Stats()
	if s.Reads != reads || s.DiskHits != 3 || s.Hits != 4 {
		t.Errorf("3 Gets of a copy on disk: %d store reads, %d disk hits, %d hits; want 0, 3, 4", s.Reads-reads, s.DiskHits, s.Hits)
	}
	if got := len(copyFiles(t, dir)); got != 1 {
		t.Errorf("%d files in the disk tier, want 1", got)
	}

	// The cache's own write is never seen late.
	must(t, c.Set(ctx, "k", []byte("new"), time.Hour))
	if got := len(copyFiles(t, dir)); got != 0 {
		t.Errorf("%d files in the disk tier after the Set dropped the copy, want 0", got)
	}
	if v, err := c.Get(ctx, "k"); err != nil || string(v) != "new" {
		t.Errorf("Get after Set = %q, %v; want the new value", v, err)
	}
	must(t, c.Set(ctx, "k", diskValue, time.Hour))
	c.Get(ctx, "k")
	flushed(t, c, 1)
	if ok, err := c.Delete(ctx, "k"); !ok || err != nil {
		t.Fatalf("Delete = %v, %v", ok, err)
	}
	if _, err := c.Get(ctx, "k"); !errors.Is(err, cache.ErrMiss) {
		t.Errorf("Get after Delete = %v, want a miss", err)
	}
	for i := range 5 {
		k := "c" + strconv.Itoa(i)
		must(t, c.Set(ctx, k, diskValue, time.Hour))
		c.Get(ctx, k)
	}
	flushed(t, c, 5)
	must(t, c.Clear(ctx))
	if s := c.Stats(); s.DiskBytes != 0 {
		t.Errorf("after Clear the disk tier holds %d bytes, want 0", s.DiskBytes)
	}
	if got := copyFiles(t, dir); len(got) != 0 {
		t.Errorf("after Clear the disk tier holds files %q", got)
	}
	if _, err := c.Get(ctx, "c1"); !errors.Is(err, cache.ErrMiss) {
		t.Errorf("Get after Clear = %v, want a miss", err)
	}
}

// TestDiskTierCanceledRead: a read of a copy that fails because the
// caller's context ended is a miss that keeps the copy and counts no
// error of the tier's; the next read is served from it.
func TestDiskTierCanceledRead(t *testing.T) {
	ctx := t.Context()
	c, dir := diskCache(t, time.Hour, 1<<20)
	must(t, c.Set(ctx, "k", diskValue, time.Hour))
	c.Get(ctx, "k")
	flushed(t, c, 1)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if cache.ReadDiskTier(canceled, c, "k") {
		t.Fatal("a read with a canceled context was served")
	}
	cache.FlushDiskTier(c)
	if s := c.Stats(); s.DiskErrors != 0 || s.DiskBytes != 4096 {
		t.Errorf("after a canceled read: %d disk errors, %d bytes held; want 0 and 4096", s.DiskErrors, s.DiskBytes)
	}
	if got := len(copyFiles(t, dir)); got != 1 {
		t.Errorf("%d copy files after a canceled read, want 1", got)
	}
	if !cache.ReadDiskTier(ctx, c, "k") {
		t.Error("the copy was not served after a canceled read")
	}
}

// TestDiskTierStaleness: another Cache's write is seen once the staleness
// bound has passed since the copy was read, not before; an entry's expiry
// ends its copy too.
func TestDiskTierStaleness(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	store := mem.New()
	dir := t.TempDir()
	c, err := cache.New(store, cache.WithLocation("app"), clock.option(),
		cache.WithLocalTier(tinyMemory, time.Minute), cache.WithDiskTier(dir, 1<<20))
	must(t, err)
	defer c.Close()
	other, err := cache.New(store, cache.WithLocation("app"), clock.option())
	must(t, err)
	must(t, c.Set(ctx, "k", diskValue, time.Hour))
	c.Get(ctx, "k")
	flushed(t, c, 1)
	must(t, other.Set(ctx, "k", []byte("other"), time.Hour))
	clock.add(59 * time.Second)
	if v, _ := c.Get(ctx, "k"); string(v) != string(diskValue) {
		t.Errorf("within the staleness bound: Get = %q, want the copy (the tier's trade-off)", v)
	}
	clock.add(time.Second)
	if v, _ := c.Get(ctx, "k"); string(v) != "other" {
		t.Errorf("at the staleness bound: Get = %q, want the other Cache's value", v)
	}

	// Expiry: an entry of 10s read now is not served from disk at 10s.
	must(t, c.Set(ctx, "short", diskValue, 10*time.Second))
	c.Get(ctx, "short")
	cache.FlushDiskTier(c)
	clock.add(9 * time.Second)
	if v, err := c.Get(ctx, "short"); err != nil || string(v) != string(diskValue) {
		t.Errorf("before its expiry: Get = %d bytes, %v", len(v), err)
	}
	clock.add(time.Second)
	if _, err := c.Get(ctx, "short"); !errors.Is(err, cache.ErrMiss) {
		t.Errorf("at its expiry: Get = %v, want a miss", err)
	}
}

// TestDiskTierHostileFiles: what is found in the directory is not trusted.
// A copy overwritten with garbage, with a forged far-future bound, or grown
// past the largest entry, is a miss (the value then comes from the store)
// and is deleted.
func TestDiskTierHostileFiles(t *testing.T) {
	ctx := t.Context()
	c, dir := diskCache(t, time.Hour, 1<<20, cache.WithMaxValueSize(4096))
	must(t, c.Set(ctx, "k", diskValue, time.Hour))
	for _, tc := range []struct {
		what  string
		plant func(path string, data []byte) []byte
	}{
		{"garbage", func(string, []byte) []byte { return []byte("garbage") }},
		{"empty", func(string, []byte) []byte { return nil }},
		{"a forged bound of year 2200", func(_ string, data []byte) []byte {
			out := append([]byte(nil), data...)
			copy(out[4:12], []byte{0x7f, 0, 0, 0, 0, 0, 0, 0})
			return out
		}},
		{"a corrupt entry after a good frame", func(_ string, data []byte) []byte {
			out := append([]byte(nil), data[:12]...)
			return append(out, "BCE1 not an entry"...)
		}},
		{"a file larger than any entry", func(_ string, data []byte) []byte {
			return append(append([]byte(nil), data...), make([]byte, 1<<20)...)
		}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			c.Get(ctx, "k")
			flushed(t, c, 1)
			files := copyFiles(t, dir)
			if len(files) != 1 {
				t.Fatalf("%d copies on disk, want 1", len(files))
			}
			data, err := os.ReadFile(files[0])
			must(t, err)
			must(t, os.WriteFile(files[0], tc.plant(files[0], data), 0o600))
			before := c.Stats()
			if v, err := c.Get(ctx, "k"); err != nil || string(v) != string(diskValue) {
				t.Fatalf("Get over a planted copy = %d bytes, %v; want the store's value", len(v), err)
			}
			s := c.Stats()
			if s.DiskHits != before.DiskHits || s.Reads != before.Reads+1 {
				t.Errorf("Get over a planted copy: %d disk hits, %d store reads; want 0 and 1", s.DiskHits-before.DiskHits, s.Reads-before.Reads)
			}
			// The planted file goes, and the store read makes a new copy.
			flushed(t, c, 1)
			if b, err := os.ReadFile(files[0]); err != nil || string(b) != string(data) {
				t.Errorf("after the store read, the copy on disk is %d bytes (%v), want the copy the tier writes", len(b), err)
			}
		})
	}
}

// TestDiskTierBound: the copies never take more than the tier's bytes, by
// its weigher (each file rounded up to 4 KiB), and the evicted files go.
func TestDiskTierBound(t *testing.T) {
	ctx := t.Context()
	const bound = 16 * 4096
	c, dir := diskCache(t, time.Hour, bound)
	for i := range 100 {
		k := "k" + strconv.Itoa(i)
		must(t, c.Set(ctx, k, diskValue, time.Hour))
		c.Get(ctx, k)
		if b := c.Stats().DiskBytes; b > bound {
			t.Fatalf("after %d copies the disk tier holds %d bytes, more than its %d", i+1, b, bound)
		}
	}
	cache.FlushDiskTier(c)
	s := c.Stats()
	// A few copies are given up when a later key's Set bumps their stripe
	// before their write (1 in 4096 per pair), so nearly every one of the
	// 100 is held or was evicted.
	if held := s.DiskBytes / 4096; held+s.DiskEvictions < 90 || held > bound/4096 || s.DiskEvictions == 0 {
		t.Errorf("100 copies in a tier of 16: %d held, %d evicted; want at most 16 held and 90 or more in all", held, s.DiskEvictions)
	}
	if files := len(copyFiles(t, dir)); int64(files) != s.DiskBytes/4096 {
		t.Errorf("%d files on disk, want the %d copies held (the evicted ones deleted)", files, s.DiskBytes/4096)
	}
}

// TestDiskTierLeftovers: the copies an earlier process left in the
// directory under the location are never served and are deleted at New;
// files that are not copies (another name, or an entry's name holding
// something else) and what is outside the location stay; Close deletes
// the Cache's own copies and nothing else.
func TestDiskTierLeftovers(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	fd, err := file.New(dir)
	must(t, err)
	store := mem.New()
	c0, err := cache.New(store, cache.WithLocation("app"))
	must(t, err)
	must(t, c0.Set(ctx, "k", diskValue, time.Hour))
	left, notCopy := c0.ObjectName("k"), c0.ObjectName("not a copy")
	planted := map[string]string{
		left:               "BCT1 left by an earlier process",
		c0.ObjectName("j"): "BCT1 another one",
		notCopy:            "an entry's name, but not a copy",
		"app/readme":       "BCT1 not an entry's name",
		"other/keep":       "BCT1 outside the location",
	}
	for name, data := range planted {
		must(t, fd.Write(ctx, name, strings.NewReader(data), &driver.WriteOptions{}))
	}
	c, err := cache.New(store, cache.WithLocation("app"), cache.WithLocalTier(tinyMemory, time.Hour), cache.WithDiskTier(dir, 1<<20))
	must(t, err)
	if v, err := c.Get(ctx, "k"); err != nil || string(v) != string(diskValue) {
		t.Fatalf("Get = %d bytes, %v; want the store's value, not the leftover", len(v), err)
	}
	flushed(t, c, 1) // the sweep, then the new copy of k
	want := []string{"app/readme", left, notCopy, "other/keep"}
	slices.Sort(want)
	if got := names(t, fd, ""); !slices.Equal(got, want) {
		t.Errorf("after the sweep the directory holds %q, want %q (the new copy of k, and what is not a copy)", got, want)
	}
	if b, _, err := fd.Read(ctx, left, 0, -1); err != nil || string(b) == planted[left] {
		t.Errorf("k's file after the sweep and a Get = %q, %v; want the tier's new copy", b, err)
	}
	must(t, c.Close())
	want = slices.DeleteFunc(want, func(n string) bool { return n == left })
	if got := names(t, fd, ""); !slices.Equal(got, want) {
		t.Errorf("after Close the directory holds %q, want %q", got, want)
	}
}

// TestDiskTierOptions: the disk tier's options are checked, by Go option,
// URL and configuration alike.
func TestDiskTierOptions(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	for _, tc := range []struct {
		url  string
		want string
	}{
		{"mem://?local_disk=" + dir + "&local_disk_size=1MiB", "without local_tier"},
		{"mem://?local_tier=1MiB&local_disk=" + dir, "local_disk_size"},
		{"mem://?local_tier=1MiB&local_disk_size=1MiB", "without local_disk"},
		{"mem://?local_tier=1MiB&local_disk=relative/dir&local_disk_size=1MiB", "absolute"},
		{"mem://?local_tier=1MiB&local_disk=" + dir + "&local_disk_size=0", "positive size"},
		{"mem://?local_tier=1MiB&local_disk=" + dir + "&local_disk_size=lots", "positive size"},
	} {
		c, err := cache.Open(ctx, tc.url)
		if err == nil {
			c.Close()
			t.Errorf("Open(%q) succeeded, want an error naming %q", tc.url, tc.want)
			continue
		}
		if !errors.Is(err, cache.ErrInvalidOption) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v, want an ErrInvalidOption naming %q", tc.url, err, tc.want)
		}
	}
	for _, o := range []cache.Option{cache.WithDiskTier("", 1), cache.WithDiskTier("rel", 1), cache.WithDiskTier(dir, 0)} {
		if _, err := cache.New(mem.New(), cache.WithLocalTier(1<<20, time.Second), o); !errors.Is(err, cache.ErrInvalidOption) {
			t.Errorf("New with a bad WithDiskTier = %v, want ErrInvalidOption", err)
		}
	}
	c, err := cache.Open(ctx, "mem://?local_tier=1MiB&local_disk="+dir+"&local_disk_size=1MiB")
	must(t, err)
	must(t, c.Set(ctx, "k", []byte("v"), time.Hour))
	if v, err := c.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Errorf("Get through a cache opened with a disk tier = %q, %v", v, err)
	}
	must(t, c.Close())
}
