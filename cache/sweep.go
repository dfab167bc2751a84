package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/blobcache/blobcache/cull"
	"github.com/blobcache/blobcache/driver"
)

// Clear deletes every entry under the cache's location and nothing outside it.
func (c *Cache) Clear(ctx context.Context) (err error) {
	ctx, cl := c.begin(ctx, opClear)
	defer func() { cl.end(ctx, err) }()
	c.stats.clears.Add(1)
	if err := c.check(ctx); err != nil {
		return fail("clear", "", err)
	}
	c.counter.listMu.Lock()
	defer c.counter.listMu.Unlock()
	removed, err := c.clearAll(ctx)
	c.local.dropAll()
	if err != nil {
		return fail("clear", "", err)
	}
	if c.logger != nil {
		c.logger.LogAttrs(ctx, slog.LevelInfo, "blobcache: cleared", slog.String("location", c.prefix), slog.Int("removed", removed))
	}
	return nil
}

// clearAll deletes every object under the location and returns how many it
// deleted. Unlike a cull, which needs the whole listing before it can choose,
// it deletes each page of the listing while the next page is listed, so a
// Clear of n entries takes about as long as its deletes alone, and holds
// no more names than a page and the counter's sample. The caller holds
// counter.listMu.
func (c *Cache) clearAll(ctx context.Context) (int, error) {
	probe := c.probe.Load() // written before the listing starts
	c.counter.beginListing()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deleteParallelism)
	var (
		n       int      // entries listed
		tracked []string // those the counter tracks (its sample's)
		listErr error
	)
	opts := &driver.ListOptions{Prefix: c.prefix, PageSize: driver.MaxListPageSize, NamesOnly: true}
	for {
		page, err := c.storeList(gctx, opts)
		if err != nil {
			listErr = err
			break
		}
		names := make([]string, 0, len(page.Objects))
		for _, o := range page.Objects {
			if isEntryName(c.prefix, o.Name) {
				names = append(names, o.Name)
				if !c.counter.off && c.counter.tracks(o.Name) {
					tracked = append(tracked, o.Name)
				}
			}
		}
		n += len(names)
		c.goDelete(gctx, g, names)
		if page.NextPageToken == "" {
			break
		}
		opts.PageToken = page.NextPageToken
	}
	if err := g.Wait(); err != nil {
		// A failed delete cancels gctx, which fails the listing too:
		// report the delete's error, the cause.
		listErr = err
	}
	if listErr == nil {
		listErr = c.checkHidden(ctx, probe, n)
	}
	if listErr != nil {
		c.endFailedListing(listErr)
		return 0, listErr
	}
	c.counter.endListing(tracked, tracked)
	return n, nil
}

// Len returns the number of entries under the cache's location, expired ones
// included (as the store holds them until read or culled).
func (c *Cache) Len(ctx context.Context) (_ int, err error) {
	ctx, cl := c.begin(ctx, opLen)
	defer func() { cl.end(ctx, err) }()
	if err := c.check(ctx); err != nil {
		return 0, fail("len", "", err)
	}
	if c.shardDigits > 0 {
		// A page at a time, holding no names; the counter keeps its sample.
		n, err := c.countAll(ctx)
		if err != nil {
			return 0, fail("len", "", err)
		}
		return n, nil
	}
	c.counter.listMu.Lock()
	defer c.counter.listMu.Unlock()
	n, _, err := c.sweep(ctx, []string{c.prefix}, func([]cull.Entry) []string { return nil })
	if err != nil {
		return 0, fail("len", "", err)
	}
	return n, nil
}

// Cull removes entries as a full cache would, now, whatever the count, and
// returns how many it removed. A cache that culls by shards (see
// WithCullShards) culls every shard before Cull returns, after any
// background cull running.
func (c *Cache) Cull(ctx context.Context) (_ int, err error) {
	ctx, cl := c.begin(ctx, opCull)
	defer func() { cl.end(ctx, err) }()
	if err := c.check(ctx); err != nil {
		return 0, fail("cull", "", err)
	}
	// A background pass culls as this call would: let it end first, so
	// that no shard is culled twice over.
	if err := c.WaitCulls(ctx); err != nil {
		return 0, fail("cull", "", err)
	}
	c.counter.listMu.Lock()
	defer c.counter.listMu.Unlock()
	listed, removed, err := c.cullShards(ctx, true)
	if removed > 0 {
		c.culled(ctx, listed, removed)
	}
	if err != nil {
		return removed, fail("cull", "", err)
	}
	return removed, nil
}

// cullIfFull runs before every write: when the location may hold max_entries
// entries it lists them and, if it does, culls. A cache that culls by shards
// lists and culls its sample here; the pass over the others (see
// shard.go) is what the returned function starts, in the background: the
// writer calls it once its write is done, so that the pass sees that write
// on every store (never nil; it does nothing when there is no pass to
// start).
func (c *Cache) cullIfFull(ctx context.Context) (startPass func(), err error) {
	if c.maxEntries == 0 || !c.counter.needsListing(c.countLimit()) {
		return noPass, nil
	}
	c.counter.listMu.Lock()
	defer c.counter.listMu.Unlock()
	// Another caller may have listed while this one waited.
	if !c.counter.needsListing(c.countLimit()) {
		return noPass, nil
	}
	startPass = noPass
	listed, removed, err := c.listAndCull(ctx, c.countLimit())
	if removed > 0 {
		if c.shardDigits == 0 {
			c.culled(ctx, listed, removed)
		} else {
			startPass = func() { c.startCullPass(listed, removed) }
		}
	}
	if errors.Is(err, ErrHiddenEntries) {
		// Not the write's fault: it goes ahead, and the cache cannot cull
		// until the store lists its entries again. Said loudly.
		c.stats.errors.Add(1)
		if c.logger != nil {
			c.logger.LogAttrs(ctx, slog.LevelWarn, "blobcache: cannot cull", slog.String("location", c.prefix), slog.String("reason", err.Error()))
		}
		return startPass, nil
	}
	if err != nil {
		return noPass, err
	}
	return startPass, nil
}

func noPass() {}

// endFailedListing ends a listing that failed with err. A store that hides
// the entries answered, with nothing: the counter takes that answer, so that
// writes list again only when they could have filled the cache anew, not on
// every write (each would pay a LIST, a header read and a warning). Any other
// failure leaves the counter as it was, to list again on the next write.
func (c *Cache) endFailedListing(err error) {
	if errors.Is(err, ErrHiddenEntries) {
		c.counter.endListing(nil, nil)
		return
	}
	c.counter.abortListing()
}

// checkHidden runs after every listing of the location, which found listed
// entries. probe is an entry this cache wrote before the listing began (nil:
// none). A listing that found entries shows the store lists the location:
// the probe is reset, and the next write sets a new one. A listing that
// found none while the probe still exists means the store hides the location's objects from listings (MinIO does when an
// object is named exactly like the location): an error wrapping
// ErrHiddenEntries, never a silent empty Clear. One header read, only after
// an empty listing.
func (c *Cache) checkHidden(ctx context.Context, probe *string, listed int) error {
	if probe == nil {
		return nil
	}
	if listed > 0 {
		c.probe.CompareAndSwap(probe, nil)
		return nil
	}
	_, _, err := c.storeRead(ctx, *probe, 0, 0)
	switch {
	case errors.Is(err, driver.ErrNotFound):
		// Deleted by someone else: the location is empty. The next write
		// becomes the probe.
		c.probe.CompareAndSwap(probe, nil)
		return nil
	case err != nil:
		return err
	}
	why := ""
	if loc := strings.TrimSuffix(c.prefix, "/"); loc != "" {
		if _, _, err := c.storeRead(ctx, loc, 0, 0); err == nil {
			why = fmt.Sprintf(" An object is named %q, exactly like the location: on MinIO it hides every object under %q from listings; delete or rename it.", loc, c.prefix)
		}
	}
	return fmt.Errorf("%w: the store listed no entry under %q, but the entry %q this cache wrote exists.%s", ErrHiddenEntries, c.prefix, *probe, why)
}

// listAndCull lists the counter's domain (the location, or the sample
// shard) and culls it when it holds at least limit entries. It returns the
// entries listed and removed. The caller holds counter.listMu.
func (c *Cache) listAndCull(ctx context.Context, limit float64) (int, int, error) {
	listed, victims, err := c.sweep(ctx, c.samplePrefixes(), func(entries []cull.Entry) []string {
		if float64(len(entries)) >= limit && len(entries) > 0 {
			return c.cullByShard(entries)
		}
		return nil
	})
	return listed, len(victims), err
}

// sweep lists the entries under prefixes (the counter's domain: the
// location, or the shards of its sample), deletes those choose picks from
// the listing, and brings the entry counter up to date. It returns how many
// entries were listed and the names deleted. The caller holds
// counter.listMu.
func (c *Cache) sweep(ctx context.Context, prefixes []string, choose func([]cull.Entry) []string) (int, []string, error) {
	probe := c.probe.Load() // written before the listing starts
	c.counter.beginListing()
	entries, err := c.list(ctx, prefixes)
	if err == nil {
		err = c.checkHidden(ctx, probe, len(entries))
	}
	if err != nil {
		c.endFailedListing(err)
		return 0, nil, err
	}
	victims := choose(entries)
	if err := c.deleteNames(ctx, victims); err != nil {
		c.counter.abortListing()
		return 0, nil, err
	}
	c.counter.endListing(entryNames(entries), victims)
	return len(entries), victims, nil
}

// list returns every entry under prefixes (the location, or shards of it,
// in name order), in name order.
func (c *Cache) list(ctx context.Context, prefixes []string) ([]cull.Entry, error) {
	var out []cull.Entry
	for _, prefix := range prefixes {
		opts := &driver.ListOptions{Prefix: prefix, PageSize: driver.MaxListPageSize}
		for {
			page, err := c.storeList(ctx, opts)
			if err != nil {
				return nil, err
			}
			for _, o := range page.Objects {
				// Only the cache's own entries: anything else in the store,
				// inside the location or not, is never counted or culled.
				if isEntryName(c.prefix, o.Name) {
					out = append(out, cull.Entry{Name: o.Name, Size: o.Size, ModTime: o.ModTime})
				}
			}
			if page.NextPageToken == "" {
				break
			}
			opts.PageToken = page.NextPageToken
		}
	}
	return out, nil
}

func entryNames(entries []cull.Entry) []string {
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name
	}
	return names
}

// deleteParallelism bounds concurrent delete requests (batches or single
// deletes) of Clear, culling and DeleteMany.
const deleteParallelism = 8

// deleteNames deletes names in batches where the driver allows, concurrently.
func (c *Cache) deleteNames(ctx context.Context, names []string) error {
	switch {
	case len(names) == 0:
		return nil
	case c.batch != nil && len(names) <= driver.MaxBatchDelete:
		// One request: made here, without a goroutine.
		if err := c.storeDeleteBatch(ctx, names); err != nil {
			return err
		}
		c.counter.dropped(names...)
		return nil
	case c.batch == nil && len(names) == 1:
		return c.drop(ctx, names[0])
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deleteParallelism)
	c.goDelete(gctx, g, names)
	return g.Wait()
}

// goDelete schedules the deletion of names on g: batches of at most
// driver.MaxBatchDelete where the driver has a BatchDeleter, one request per
// name otherwise.
func (c *Cache) goDelete(gctx context.Context, g *errgroup.Group, names []string) {
	if c.batch != nil {
		for chunk := range slices.Chunk(names, driver.MaxBatchDelete) {
			g.Go(func() error {
				if err := c.storeDeleteBatch(gctx, chunk); err != nil {
					return err
				}
				c.counter.dropped(chunk...)
				return nil
			})
		}
		return
	}
	for _, name := range names {
		g.Go(func() error { return c.drop(gctx, name) })
	}
}
