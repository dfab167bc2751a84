package mem_test

import (
	"context"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/conformance"
	"github.com/blobcache/blobcache/driver"
	_ "github.com/blobcache/blobcache/drivers/file" // the disk tier's driver
	"github.com/blobcache/blobcache/drivers/mem"
)

// harness is one named in-memory store; every MakeDriver is a new handle on
// it, as a second client would be.
type harness struct{ name string }

func (h *harness) MakeDriver(context.Context) (driver.Driver, error) { return mem.Open(h.name), nil }
func (h *harness) Close()                                            {}

func makeHarness(ctx context.Context, t *testing.T) (conformance.Harness, error) {
	return &harness{name: t.Name()}, nil
}

func TestConformance(t *testing.T) {
	conformance.Run(t, makeHarness)
}

// TestConformanceLocalTier runs the cache section with a local tier in
// front of the store.
func TestConformanceLocalTier(t *testing.T) {
	conformance.RunCacheWith(t, makeHarness, "CacheLocalTier", cache.WithLocalTier(64<<20, time.Hour))
}

// TestConformanceDiskTier runs the cache section with a disk tier (in one
// directory for every cache of the run) behind a memory tier too small to
// keep any value, so that every read the tiers serve comes from the disk.
func TestConformanceDiskTier(t *testing.T) {
	conformance.RunCacheWith(t, makeHarness, "CacheDiskTier", cache.WithLocalTier(2, time.Hour), cache.WithDiskTier(t.TempDir(), 64<<20))
}
