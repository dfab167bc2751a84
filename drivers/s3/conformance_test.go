package s3_test

import (
	"context"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/conformance"
	"github.com/blobcache/blobcache/driver"
	_ "github.com/blobcache/blobcache/drivers/file" // the disk tier's driver
	"github.com/blobcache/blobcache/drivers/s3"
	"github.com/blobcache/blobcache/internal/s3test"
)

// harness is one fresh bucket on the test server, made on first use (a
// child process of a cross-process case never needs its own).
type harness struct {
	t      *testing.T
	cfg    s3test.Config
	bucket string
}

func (h *harness) options() s3.Options {
	return s3.Options{
		Endpoint:     h.cfg.Endpoint,
		Region:       h.cfg.Region,
		UsePathStyle: true,
		AccessKey:    h.cfg.AccessKey,
		SecretKey:    h.cfg.SecretKey,
	}
}

func (h *harness) MakeDriver(ctx context.Context) (driver.Driver, error) {
	return s3.Open(ctx, h.Locator(), h.options())
}

func (h *harness) Locator() string {
	if h.bucket == "" {
		h.bucket = s3test.NewBucket(h.t, h.cfg)
	}
	return h.bucket
}

func (h *harness) OpenLocator(ctx context.Context, bucket string) (driver.Driver, error) {
	return s3.Open(ctx, bucket, h.options())
}

func (h *harness) Close() {}

// FolderObjects is false: MinIO hides "a/..." objects from listings while an
// object "a" exists.
func (h *harness) FolderObjects() bool { return false }

func makeHarness(ctx context.Context, t *testing.T) (conformance.Harness, error) {
	return &harness{t: t, cfg: s3test.Env(t)}, nil
}

// The suite runs here as four parallel tests, parallel with
// TestSteadyStateListing too: each waits on MinIO's round trips far more
// than on a core, and each has buckets of its own. They are this package's longest tests, and the
// package is CI's longest. TestConformance and TestConformanceCache are
// together what conformance.Run runs, its cache section apart.

// TestConformance runs the driver and hostile-store sections.
func TestConformance(t *testing.T) {
	t.Parallel()
	conformance.RunDriver(t, makeHarness)
	conformance.RunHostile(t, makeHarness)
}

// TestConformanceCache runs the cache section.
func TestConformanceCache(t *testing.T) {
	t.Parallel()
	conformance.RunCache(t, makeHarness)
}

// TestConformanceLocalTier runs the cache section with a local tier in
// front of the bucket.
func TestConformanceLocalTier(t *testing.T) {
	t.Parallel()
	conformance.RunCacheWith(t, makeHarness, "CacheLocalTier", cache.WithLocalTier(64<<20, time.Hour))
}

// TestConformanceDiskTier runs the cache section with a disk tier (in one
// directory for every cache of the run) behind a memory tier too small to
// keep any value, so that every read the tiers serve comes from the disk.
func TestConformanceDiskTier(t *testing.T) {
	t.Parallel()
	conformance.RunCacheWith(t, makeHarness, "CacheDiskTier", cache.WithLocalTier(2, time.Hour), cache.WithDiskTier(t.TempDir(), 64<<20))
}
