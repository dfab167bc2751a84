package file_test

import (
	"context"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/conformance"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/file"
)

// harness is one fresh directory; other processes open it by its path.
type harness struct{ dir string }

func (h *harness) MakeDriver(context.Context) (driver.Driver, error) { return file.New(h.dir) }
func (h *harness) Locator() string                                   { return h.dir }
func (h *harness) OpenLocator(_ context.Context, dir string) (driver.Driver, error) {
	return file.New(dir)
}
func (h *harness) Close() {}

func makeHarness(ctx context.Context, t *testing.T) (conformance.Harness, error) {
	return &harness{dir: t.TempDir()}, nil
}

func TestConformance(t *testing.T) {
	conformance.Run(t, makeHarness)
}

// TestConformanceLocalTier runs the cache section with a local tier in
// front of the directory.
func TestConformanceLocalTier(t *testing.T) {
	conformance.RunCacheWith(t, makeHarness, "CacheLocalTier", cache.WithLocalTier(64<<20, time.Hour))
}

// TestConformanceDiskTier runs the cache section with a disk tier (in one
// directory for every cache of the run) behind a memory tier too small to
// keep any value, so that every read the tiers serve comes from the disk.
func TestConformanceDiskTier(t *testing.T) {
	conformance.RunCacheWith(t, makeHarness, "CacheDiskTier", cache.WithLocalTier(2, time.Hour), cache.WithDiskTier(t.TempDir(), 64<<20))
}
