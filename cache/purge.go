package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/blobcache/blobcache/driver"
)

// PurgeProgress is what a Purge has done so far.
type PurgeProgress struct {
	// Listed counts the entries listed; Examined those whose header was
	// read (or that had gone when it was).
	Listed, Examined int
	// Deleted counts the dead entries deleted: past their expiry and any
	// grace period, or whose header does not decode (or, with signing
	// keys, is not signed). Stale counts those kept within their grace
	// period (WithStaleGrace); Live the others kept.
	Deleted, Stale, Live int
}

// DefaultPurgeConcurrency is how many header reads and deletes a Purge
// runs at once unless told otherwise.
const DefaultPurgeConcurrency = 32

// Purge deletes the dead entries under the location, for stores that hold
// expired entries until someone reads them (with max_entries 0 nothing
// else ever deletes an expired entry nobody reads again). It lists the
// location a page at a time and reads the header of each entry (a range
// read of EntryHeaderSize bytes, never the value), concurrency at a time
// (DefaultPurgeConcurrency when concurrency is 0), deleting those that are
// past their expiry and grace period or whose header is not an entry's
// (as a read of them would). Only objects named as entries are read or
// deleted; memory stays within one listing page and concurrency headers,
// whatever the size of the cache. progress, if not nil, is called (never
// concurrently) after each entry is examined, and once at the end.
//
// As with the delete of an expired entry on read, an entry rewritten
// between its header read and its delete is lost (the store offers no
// conditional delete): Purge is for entries that have expired, not for a
// key written at that very moment, which then misses once. It returns what
// it did, also when it fails.
func (c *Cache) Purge(ctx context.Context, concurrency int, progress func(PurgeProgress)) (_ PurgeProgress, err error) {
	ctx, cl := c.begin(ctx, opPurge)
	defer func() { cl.end(ctx, err) }()
	var p PurgeProgress
	if err := c.check(ctx); err != nil {
		return p, fail("purge", "", err)
	}
	if concurrency == 0 {
		concurrency = DefaultPurgeConcurrency
	}
	if concurrency < 0 || concurrency > 1024 {
		return p, fail("purge", "", fmt.Errorf("%w: concurrency %d: want 1 to 1024 (0 for %d)", ErrInvalidArgument, concurrency, DefaultPurgeConcurrency))
	}
	var mu sync.Mutex
	report := func(f func(*PurgeProgress)) {
		mu.Lock()
		defer mu.Unlock()
		f(&p)
		if progress != nil {
			progress(p)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	opts := &driver.ListOptions{Prefix: c.prefix, PageSize: driver.MaxListPageSize, NamesOnly: true}
	var listErr error
	for {
		page, err := c.storeList(gctx, opts)
		if err != nil {
			listErr = err
			break
		}
		for _, o := range page.Objects {
			if !isEntryName(c.prefix, o.Name) {
				continue
			}
			mu.Lock()
			p.Listed++
			mu.Unlock()
			name := o.Name
			g.Go(func() error {
				verdict, err := c.purgeOne(gctx, name)
				if err != nil {
					return err
				}
				report(func(p *PurgeProgress) {
					p.Examined++
					switch verdict {
					case purgeDeleted:
						p.Deleted++
					case purgeStale:
						p.Stale++
					case purgeLive:
						p.Live++
					}
				})
				return nil
			})
		}
		if page.NextPageToken == "" {
			break
		}
		opts.PageToken = page.NextPageToken
	}
	if werr := g.Wait(); werr != nil {
		listErr = werr // the cause: it cancelled gctx, and so the listing
	}
	report(func(*PurgeProgress) {})
	if listErr != nil {
		return p, fail("purge", "", listErr)
	}
	if c.logger != nil {
		c.logger.LogAttrs(ctx, slog.LevelInfo, "blobcache: purged", slog.String("location", c.prefix),
			slog.Int("examined", p.Examined), slog.Int("deleted", p.Deleted), slog.Int("stale", p.Stale))
	}
	return p, nil
}

// purgeVerdict is what Purge did with one entry.
type purgeVerdict int

const (
	purgeGone purgeVerdict = iota // already gone when read
	purgeDeleted
	purgeStale
	purgeLive
)

// purgeOne reads name's header and deletes the entry if it is dead, as
// readHeader would (without telling an absent entry from a deleted one).
func (c *Cache) purgeOne(ctx context.Context, name string) (purgeVerdict, error) {
	data, _, err := c.storeRead(ctx, name, 0, headerReadLen)
	switch {
	case errors.Is(err, driver.ErrNotFound):
		return purgeGone, nil
	case err != nil:
		return 0, err
	}
	h, reason := parseEntryHeader(data)
	if reason == nil {
		reason = c.keys.checkSigned(h)
	}
	now := c.now()
	switch {
	case reason == nil && !h.expired(now):
		return purgeLive, nil
	case reason == nil && h.stale(now):
		return purgeStale, nil
	}
	if err := c.drop(ctx, name); err != nil && !errors.Is(err, driver.ErrNotFound) {
		return 0, &DeadEntryError{Name: name, Err: err}
	}
	c.droppedDead(ctx, name, reason)
	return purgeDeleted, nil
}
