package cache

import (
	"context"
	"log/slog"
	"sync"

	"github.com/blobcache/blobcache/cull"
	"github.com/blobcache/blobcache/driver"
)

// Culling shard by shard.
//
// An entry's name is the location's prefix and 40 hex digits of a hash, so
// the names that share their first k digits (a shard: 16^k of them
// partition the location) are a uniform sample of all the entries, and one
// shard is listed with one prefix, in pages, like the whole location. A
// cache whose max_entries is above exactCullLimit (or that asks with
// WithCullShards) therefore counts and culls by shards:
//
//   - It counts only the sample shard, the first one (k zeros): the cache is
//     full when that shard holds max_entries/16^k entries or more. The
//     entry counter holds the names of that shard only.
//   - A write that finds the cache full lists the sample shard, culls it by
//     the policy (as a whole location is culled) and goes on; the other
//     shards are culled the same way, one after the other, in name order,
//     by one background pass (one at a time per cache; a cull that finds a
//     pass running asks for one more after it). Close stops the pass.
//   - Cull culls every shard before it returns, the same way.
//
// So a write's work is bounded by one shard's listing and deletes (about
// max_entries/16^k entries, at most maxShardEntries for the automatic
// choice), the client holds at most one shard's names (the counter's and a
// pass's listing), and after a cull of an untouched cache the same entries
// are left on every store, as with one listing. The count is an estimate
// from a sample (its relative error is about 1/sqrt(max_entries/16^k), 1.6%
// at 4096 entries a shard), and while a pass runs the other shards keep
// their entries: the location may hold max_entries plus the writes made
// during the pass, plus the sample's error, until the pass is done.
const (
	// exactCullLimit is the largest max_entries culled as one location by
	// default (WithCullShards not given): 10 listing pages.
	exactCullLimit = 10_000
	// maxShardEntries bounds the entries of a shard at max_entries for the
	// automatic choice of shards.
	maxShardEntries = 4096
	// maxCullShardDigits bounds WithCullShards: 16^8 shards.
	maxCullShardDigits = 8
)

// shardDigits returns the number of hex digits that name a shard for a
// cache of maxEntries: digits when set (>= 0), else the automatic choice.
func shardDigits(maxEntries, digits int) int {
	if digits >= 0 || maxEntries == 0 {
		return max(digits, 0)
	}
	if maxEntries <= exactCullLimit {
		return 0
	}
	k, shards := 1, 16
	for (maxEntries+shards-1)/shards > maxShardEntries && k < maxCullShardDigits {
		k++
		shards *= 16
	}
	return k
}

// WithCullShards makes the cache count and cull its location by 16^digits
// shards (1 to 8 digits), or as one (0: every count and cull lists the
// whole location, at any max_entries). Without it, a cache culls as one up
// to max_entries 10,000, and above by the fewest shards that hold at most
// 4096 entries each at max_entries. See the README's "Culling at scale".
func WithCullShards(digits int) Option {
	return func(s *settings) error {
		if digits < 0 || digits > maxCullShardDigits {
			return optionError("cull_shards", "%d is not a number of hex digits from 0 to %d", digits, maxCullShardDigits)
		}
		s.cullShards = digits
		return nil
	}
}

// shardPrefixes calls yield with the listing prefix of every shard, in
// name order.
func (c *Cache) shardPrefixes(yield func(string) bool) {
	if c.shardDigits == 0 {
		yield(c.prefix)
		return
	}
	digits := make([]byte, c.shardDigits)
	var walk func(i int) bool
	walk = func(i int) bool {
		if i == len(digits) {
			return yield(c.prefix + string(digits))
		}
		for _, d := range "0123456789abcdef" {
			digits[i] = byte(d)
			if !walk(i + 1) {
				return false
			}
		}
		return true
	}
	walk(0)
}

// countLimit is the count of the counter's domain at which the cache is
// full: max_entries over the number of shards.
func (c *Cache) countLimit() float64 {
	return float64(c.maxEntries) / float64(uint64(1)<<(4*c.shardDigits))
}

// cullPass is the state of the background pass that culls the shards other
// than the sample one.
type cullPass struct {
	mu      sync.Mutex
	running bool
	again   bool          // a cull asked for another pass while one ran
	done    chan struct{} // closed when the running pass ends
}

// WaitCulls waits until no background cull of this cache runs (culling by
// shards, see WithCullShards: a write that finds the cache full culls one
// shard and leaves the others to a background pass), or until ctx is done.
// Close waits for it too. A cache that culls as one never culls in the
// background: WaitCulls returns at once.
func (c *Cache) WaitCulls(ctx context.Context) error {
	c.pass.mu.Lock()
	done := c.pass.done
	c.pass.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startCullPass starts the background pass over the other shards, whose
// sample shard was just culled (listed entries, removed of them), or asks
// the running one for another pass.
func (c *Cache) startCullPass(listed, removed int) {
	p := &c.pass
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		p.again = true
		c.culled(c.closing, listed, removed)
		return
	}
	p.running = true
	done := make(chan struct{})
	p.done = done
	go func() {
		defer close(done)
		for {
			l, r, err := c.cullShards(c.closing, false)
			c.culled(c.closing, listed+l, removed+r)
			listed, removed = 0, 0
			if err != nil && c.closing.Err() == nil {
				c.stats.errors.Add(1)
				if c.logger != nil {
					c.logger.LogAttrs(c.closing, slog.LevelWarn, "blobcache: background cull failed", slog.String("location", c.prefix), slog.String("reason", err.Error()))
				}
			}
			p.mu.Lock()
			if !p.again || c.closing.Err() != nil {
				p.running = false
				p.mu.Unlock()
				return
			}
			p.again = false
			p.mu.Unlock()
		}
	}()
}

// cullShards culls every shard but the sample one (and that one too when
// sample is set: its caller holds counter.listMu) by the policy, in name
// order, each from a listing of its own. It returns the entries listed and
// removed.
func (c *Cache) cullShards(ctx context.Context, sample bool) (listed, removed int, err error) {
	for prefix := range c.shardPrefixes {
		if prefix == c.counter.domain {
			if !sample {
				continue
			}
			l, victims, err := c.sweep(ctx, prefix, func(entries []cull.Entry) []string {
				if len(entries) == 0 {
					return nil
				}
				return c.policy.Cull(entries)
			})
			listed, removed = listed+l, removed+len(victims)
			if err != nil {
				return listed, removed, err
			}
			continue
		}
		entries, err := c.list(ctx, prefix)
		if err != nil {
			return listed, removed, err
		}
		listed += len(entries)
		if len(entries) == 0 {
			continue
		}
		victims := c.policy.Cull(entries)
		if err := c.deleteNames(ctx, victims); err != nil {
			return listed, removed, err
		}
		removed += len(victims)
	}
	return listed, removed, nil
}

// countAll counts the entries under the location a page at a time, holding
// no names.
func (c *Cache) countAll(ctx context.Context) (int, error) {
	n := 0
	opts := &driver.ListOptions{Prefix: c.prefix, PageSize: driver.MaxListPageSize}
	for {
		page, err := c.storeList(ctx, opts)
		if err != nil {
			return 0, err
		}
		for _, o := range page.Objects {
			if isEntryName(c.prefix, o.Name) {
				n++
			}
		}
		if page.NextPageToken == "" {
			return n, nil
		}
		opts.PageToken = page.NextPageToken
	}
}
