package cache

import (
	"context"
	"fmt"
	"time"
)

// Observed is what a cache's options set, as the cache holds it, for tests
// that check that an option was honoured exactly.
type Observed struct {
	Location     string
	KeyPrefix    string
	Version      int
	DefaultTTL   time.Duration
	MaxEntries   int
	Policy       string // fmt of the cull policy: "frequency(3)", "oldest(0)"
	Gzip         bool
	MaxValueSize int64
	FillTimeout  time.Duration
	FillLease    time.Duration
	StaleGrace   time.Duration
	// LocalBytes and LocalStaleness are the local tier's; 0 without one.
	LocalBytes     int64
	LocalStaleness time.Duration
	SigningKeys    int
}

// Observe returns c's settings.
func Observe(c *Cache) Observed {
	o := Observed{
		Location:     c.prefix,
		KeyPrefix:    c.keyPrefix,
		Version:      c.version,
		DefaultTTL:   c.defaultTTL,
		MaxEntries:   c.maxEntries,
		Policy:       fmt.Sprint(c.policy),
		Gzip:         c.gzip,
		MaxValueSize: c.maxValueSize,
		FillTimeout:  c.fillTimeout,
		FillLease:    c.fillLease,
		StaleGrace:   c.staleGrace,
	}
	if c.local != nil {
		o.LocalBytes, o.LocalStaleness = c.local.maxBytes, c.local.staleness
	}
	if c.keys != nil {
		o.SigningKeys = len(c.keys.keys)
	}
	return o
}

// ShardDigits returns the hex digits of c's cull shards (0: one location).
func ShardDigits(c *Cache) int { return c.shardDigits }

// TrackedNames returns how many names c's entry counter holds.
func TrackedNames(c *Cache) int { return c.counter.count() }

// SampleShards returns how many first shards c's entry counter counts.
func SampleShards(c *Cache) int { return c.sampleShards }

// HeaderStale reports whether data's header, as the header-only calls (Has,
// Add, Delete) read it, is a valid stale entry's for c at c's clock: past
// its expiry, within its grace period, and, when c checks signatures,
// signed.
func HeaderStale(c *Cache, data []byte) bool {
	h, err := parseEntryHeader(data[:min(len(data), headerReadLen)])
	if err == nil {
		err = c.keys.checkSigned(h)
	}
	return err == nil && h.stale(c.now())
}

// ReadDiskTier reads key's copy from c's disk tier as a Get past the
// memory tier does, with ctx, and reports whether it was served.
func ReadDiskTier(ctx context.Context, c *Cache, key string) bool {
	name := c.objectName(key)
	_, ok := c.readDisk(ctx, c.local.diskTier(), name, c.local.generation(name))
	return ok
}

// FlushDiskTier waits until the disk tier's queued writes and deletions
// are done (none without a disk tier).
func FlushDiskTier(c *Cache) {
	if d := c.local.diskTier(); d != nil {
		d.flush()
	}
}

// PassListers is how many shards a cull pass lists at once.
const PassListers = passListers
