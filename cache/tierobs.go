package cache

import (
	"context"
	"errors"
	"log/slog"

	"go.opentelemetry.io/otel/metric"
)

// The tiers' state, observed: what the local and disk tiers hold now, and
// the disk tier's failures, are read from the tiers at each metrics
// collection (observable instruments, so a call pays nothing for them), and
// a summary of each tier is logged when the Cache closes. Hits, misses and
// evictions are counted as they happen (telemetry.go).

// observeTiers registers blobcache.local.bytes and, with a disk tier,
// blobcache.disk.bytes and blobcache.disk.errors, each read from the tier
// at collection, equal to its Stats field. Close unregisters them.
func (c *Cache) observeTiers() error {
	t := c.tel
	if t == nil || t.meter == nil || c.local == nil {
		return nil
	}
	m, d := t.meter, c.local.diskTier()
	localBytes, err := m.Int64ObservableGauge("blobcache.local.bytes",
		metric.WithDescription("Bytes the local tier holds now (WithLocalTier): values, names and about 100 bytes per copy."), metric.WithUnit("By"))
	errs := []error{err}
	observed := []metric.Observable{localBytes}
	var diskBytes metric.Int64ObservableGauge
	var diskErrors metric.Int64ObservableCounter
	if d != nil {
		diskBytes, err = m.Int64ObservableGauge("blobcache.disk.bytes",
			metric.WithDescription("Bytes the disk tier's copies take on disk now (WithDiskTier), each file rounded up to 4 KiB."), metric.WithUnit("By"))
		errs = append(errs, err)
		diskErrors, err = m.Int64ObservableCounter("blobcache.disk.errors",
			metric.WithDescription("Failures of the disk tier's own files (WithDiskTier); each a miss or a copy not made, never a failed call."), metric.WithUnit("{error}"))
		errs = append(errs, err)
		observed = append(observed, diskBytes, diskErrors)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	attrs := metric.WithAttributeSet(t.locSet)
	t.tiers, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(localBytes, c.local.bytes(), attrs)
		if d != nil {
			o.ObserveInt64(diskBytes, d.bytes(), attrs)
			o.ObserveInt64(diskErrors, d.failures.Load(), attrs)
		}
		return nil
	}, observed...)
	return err
}

// endTiers logs each tier's summary (at Info: its hits, misses, evictions
// and bytes held, and the disk tier's errors) and unregisters the tiers'
// observable instruments. Close calls it before it closes the tiers.
func (c *Cache) endTiers() {
	if c.local == nil {
		return
	}
	if c.tel != nil && c.tel.tiers != nil {
		c.tel.tiers.Unregister()
	}
	if c.logger == nil {
		return
	}
	s := c.Stats()
	ctx := context.Background()
	c.logger.LogAttrs(ctx, slog.LevelInfo, "blobcache: local tier at close", slog.String("location", c.prefix),
		slog.Int64("hits", s.LocalHits), slog.Int64("misses", s.LocalMisses),
		slog.Int64("evictions", s.LocalEvictions), slog.Int64("bytes", s.LocalBytes))
	if c.local.diskTier() != nil {
		c.logger.LogAttrs(ctx, slog.LevelInfo, "blobcache: disk tier at close", slog.String("location", c.prefix),
			slog.Int64("hits", s.DiskHits), slog.Int64("misses", s.DiskMisses),
			slog.Int64("evictions", s.DiskEvictions), slog.Int64("bytes", s.DiskBytes), slog.Int64("errors", s.DiskErrors))
	}
}
