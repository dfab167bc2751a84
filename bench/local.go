package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	_ "github.com/blobcache/blobcache/drivers/file" // the disk tier's driver (impl=disk)
)

// The LocalTier benchmarks' sizes: a keyspace ten times what the tier holds.
const (
	zipfKeys      = 5000
	zipfS         = 1.1         // Zipf's exponent: key i is read about 1/(i+1)^1.1 as often as key 0
	zipfTierBytes = 500 * 1200  // about 500 of the 1 KiB values, with names and overhead
	localStale    = time.Second // the tier's staleness bound
	diskStale     = time.Minute // the staleness bound of impl=disk
)

// benchLocalTier reads zipfKeys keys of 1 KiB with a Zipf distribution,
// each impl through its own cache over its own driver: impl=cache without a
// local tier; impl=tier with one of about a tenth of the keyspace
// (WithLocalTier(zipfTierBytes, 1s)); impl=tier-1m the same with a
// staleness bound of a minute (diskStale); impl=disk that tier with a disk
// tier behind it holding the whole keyspace (WithDiskTier(a temporary
// directory, 64 MiB)), filled by reads of every key before the timer
// starts. The disk tier pays off where a longer bound is acceptable: at 1s
// a key of the Zipf tail is rarely read twice within the bound. It reports
// req/op and the tiers' hit ratios (local-hits/op, disk-hits/op). The keys
// are filled in the store once.
func benchLocalTier(b *testing.B, maker HarnessMaker) {
	e := newGroup(b, maker, cache.WithMaxEntries(0))
	keys := make([]string, zipfKeys)
	value := randomValue(smallValueSize)
	for i := range keys {
		keys[i] = fmt.Sprintf("zipf-%05d", i)
	}
	if err := parallel(e.ctx, len(keys), benchFillConc, func(ctx context.Context, i int) error {
		return e.c.Set(ctx, keys[i], value, cache.NoExpiry)
	}); err != nil {
		b.Fatalf("filling the store: %v", err)
	}
	for _, impl := range []string{ImplCache, "tier", "tier-1m", "disk"} {
		e.leaf(b, impl, func(b *testing.B) {
			var opts []cache.Option
			switch impl {
			case "tier":
				opts = append(opts, cache.WithLocalTier(zipfTierBytes, localStale))
			case "tier-1m":
				opts = append(opts, cache.WithLocalTier(zipfTierBytes, diskStale))
			case "disk":
				opts = append(opts, cache.WithLocalTier(zipfTierBytes, diskStale), cache.WithDiskTier(b.TempDir(), 64<<20))
			}
			var c *cache.Cache
			e.pause(b, func() {
				c = e.newCache(b, append(opts, cache.WithMaxEntries(0))...)
				if impl == "disk" {
					fillDiskTier(b, c, keys)
				}
			})
			s0 := c.Stats()
			zipf := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), zipfS, 1, zipfKeys-1)
			for b.Loop() {
				if _, err := c.Get(e.ctx, keys[zipf.Uint64()]); err != nil {
					b.Fatalf("Get: %v", err)
				}
			}
			s := c.Stats()
			b.ReportMetric(float64(s.LocalHits-s0.LocalHits)/float64(b.N), "local-hits/op")
			if impl == "disk" {
				b.ReportMetric(float64(s.DiskHits-s0.DiskHits)/float64(b.N), "disk-hits/op")
			}
		})
	}
}

// fillDiskTier reads every key through c until c's disk tier holds a
// copy of nearly each (copies are written in the background, and given up
// while its queue is full, so a pass over the keys is repeated until the
// disk has caught up), or ten passes.
func fillDiskTier(b *testing.B, c *cache.Cache, keys []string) {
	ctx := context.Background()
	for range 10 {
		for _, k := range keys {
			if _, err := c.Get(ctx, k); err != nil {
				b.Fatalf("Get: %v", err)
			}
		}
		// Wait for the queue to drain: the bytes stop growing.
		last := int64(-1)
		for n := c.Stats().DiskBytes; n != last; n = c.Stats().DiskBytes {
			last = n
			time.Sleep(100 * time.Millisecond)
		}
		if last >= int64(len(keys))*95/100*4096 {
			return
		}
	}
}

// benchLocalStaleness measures how long a write by another process takes
// to be seen through a local tier (WithLocalTier(..., 1s)): the reader
// polls a key it has read, every millisecond, while a second cache over its
// own driver (another process, as far as the tier knows) overwrites it. It
// reports the mean and the largest delay (stale-ms, max-stale-ms), which
// the staleness bound caps (plus one poll and one read).
func benchLocalStaleness(b *testing.B, maker HarnessMaker) {
	e := newGroup(b, maker, cache.WithMaxEntries(0))
	e.leaf(b, "tier", func(b *testing.B) {
		var reader *cache.Cache
		e.pause(b, func() {
			reader = e.newCache(b, cache.WithMaxEntries(0), cache.WithLocalTier(1<<20, localStale))
		})
		var total, worst time.Duration
		for i := 0; b.Loop(); i++ {
			old, next := fmt.Sprint("v", i), fmt.Sprint("v", i+1)
			if err := e.c.Set(e.ctx, "stale", []byte(old), cache.NoExpiry); err != nil {
				b.Fatal(err)
			}
			// Read until the old value is in the tier, then overwrite it
			// through the other cache.
			for {
				v, err := reader.Get(e.ctx, "stale")
				if err != nil {
					b.Fatal(err)
				}
				if string(v) == old {
					break
				}
			}
			if err := e.c.Set(e.ctx, "stale", []byte(next), cache.NoExpiry); err != nil {
				b.Fatal(err)
			}
			written := time.Now()
			for {
				v, err := reader.Get(e.ctx, "stale")
				if err != nil {
					b.Fatal(err)
				}
				if string(v) == next {
					break
				}
				time.Sleep(time.Millisecond)
			}
			d := time.Since(written)
			total += d
			worst = max(worst, d)
			if d > localStale+time.Second {
				b.Fatalf("another process's write took %v to be seen, past the staleness bound of %v", d, localStale)
			}
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "stale-ms")
		b.ReportMetric(float64(worst.Milliseconds()), "max-stale-ms")
	})
}
