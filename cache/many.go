package cache

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// manyLimit bounds the concurrent requests of the *Many calls.
const manyLimit = 16

// GetMany returns the values of the keys that have live entries; missing keys
// are absent from the map.
func (c *Cache) GetMany(ctx context.Context, keys []string) (_ map[string][]byte, err error) {
	ctx, cl := c.begin(ctx, opGetMany)
	defer func() { cl.end(ctx, err) }()
	if err := c.check(ctx); err != nil {
		return nil, fail("get_many", "", err)
	}
	var mu sync.Mutex
	out := make(map[string][]byte, len(keys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(manyLimit)
	for _, key := range keys {
		g.Go(func() error {
			_, v, _, err := c.readValue(gctx, c.objectName(key))
			if cleanMiss(err) {
				c.lookup(ctx, false)
				return nil
			}
			if err != nil {
				return fail("get_many", key, err)
			}
			c.lookup(ctx, true)
			mu.Lock()
			out[key] = v
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// SetMany stores every item with the same ttl, as Set would. The writes run
// concurrently, except when the batch may fill the cache: then they run one
// after the other in key order, so that culling removes exactly what that
// sequence of Sets would. On error some items may have been stored.
func (c *Cache) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) (err error) {
	ctx, cl := c.begin(ctx, opSetMany)
	defer func() { cl.end(ctx, err) }()
	if err := c.check(ctx); err != nil {
		return fail("set_many", "", err)
	}
	if _, err := c.expiry(ttl); err != nil {
		return fail("set_many", "", err)
	}
	keys := slices.Sorted(maps.Keys(items))
	names := make([]string, len(keys))
	for i, key := range keys {
		names[i] = c.objectName(key)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(manyLimit)
	// Only names the counter does not know add entries: a batch of
	// overwrites stays concurrent however full the cache is.
	if c.maxEntries > 0 && c.counter.mayNeedListing(c.countLimit(), c.counter.unknown(names)) {
		g.SetLimit(1)
	}
	for i, key := range keys {
		value := items[key]
		g.Go(func() error {
			if err := c.setNamed(gctx, names[i], value, ttl, c.staleGrace); err != nil {
				return fail("set_many", key, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// DeleteMany removes the keys' entries, in bulk where the driver allows.
func (c *Cache) DeleteMany(ctx context.Context, keys []string) (err error) {
	ctx, cl := c.begin(ctx, opDeleteMany)
	defer func() { cl.end(ctx, err) }()
	c.stats.deletes.Add(int64(len(keys)))
	if err := c.check(ctx); err != nil {
		return fail("delete_many", "", err)
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = c.objectName(k)
	}
	if err := c.deleteNames(ctx, names); err != nil {
		return fail("delete_many", "", err)
	}
	return nil
}
