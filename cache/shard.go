package cache

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

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
//   - It counts only its sample: its first m shards (in name order), the
//     fewest that hold sampleEntries entries at max_entries, or half
//     of max_entries when that is less. The cache is full when the sample
//     holds max_entries*m/16^k entries or more. The entry counter holds the
//     names of the sample only.
//   - A write that finds the cache full lists the sample, culls each of
//     its shards by the policy (as a whole location is culled) and goes
//     on; once its own write is done, the other shards are culled the same
//     way, passListers at a time, by one background pass (one at a time
//     per cache; a cull that finds a pass running asks for one more after
//     it). Close stops the pass; WaitCulls waits for it.
//   - Cull culls every shard before it returns, the same way.
//
// So a write's work is bounded by the sample's listing and deletes (fewer
// than 2*sampleEntries entries, a few pages), the client holds at most the
// sample's names and passListers shards' listings, and after a cull the same entries
// are left on every store. The count is an estimate from the sample, with a
// relative error of about 1/sqrt(sampleEntries) (1.6%), and while a pass
// runs the other shards keep their entries: the location may hold
// max_entries plus the writes made during the pass, plus the sample's
// error, until the pass is done.
const (
	// exactCullLimit is the largest max_entries culled as one location by
	// default (WithCullShards not given): 10 listing pages.
	exactCullLimit = 10_000
	// maxShardEntries bounds the entries of a shard at max_entries for the
	// automatic choice of shards.
	maxShardEntries = 4096
	// sampleEntries is the entries the sample holds at max_entries (or a
	// half of max_entries when that is less).
	sampleEntries = 4096
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

// sampleShards returns how many of the first shards of 16^digits make the
// sample of a cache of maxEntries: the fewest that hold sampleEntries
// entries at maxEntries, or maxEntries/2 when that is less; 1 for a cache
// culled as one.
func sampleShards(maxEntries, digits int) int {
	if digits == 0 || maxEntries == 0 {
		return 1
	}
	shards := 1 << (4 * digits)
	target := min(sampleEntries, max(maxEntries/2, 1))
	// The fewest m with m*maxEntries/shards >= target.
	m := (target*shards + maxEntries - 1) / maxEntries
	return min(max(m, 1), shards)
}

// sample is the names an entry counter tracks: those under prefix whose
// first digits hex digits (after prefix) are below end (all of them when
// digits is 0).
type sample struct {
	prefix string
	digits int
	end    string // the first shard not in the sample, or "" for all
}

func newSample(prefix string, digits, shards int) sample {
	smp := sample{prefix: prefix, digits: digits}
	if digits > 0 && shards < 1<<(4*digits) {
		smp.end = fmt.Sprintf("%0*x", digits, shards)
	}
	return smp
}

// has reports whether name is in the sample.
func (s sample) has(name string) bool {
	if !strings.HasPrefix(name, s.prefix) {
		return false
	}
	if s.end == "" {
		return true
	}
	return len(name) >= len(s.prefix)+s.digits && name[len(s.prefix):len(s.prefix)+s.digits] < s.end
}

// inSample reports whether the shard listed with prefix p is in the sample.
func (c *Cache) inSample(p string) bool {
	return c.shardDigits == 0 || c.counter.domain.has(p)
}

// WithCullShards makes the cache count and cull its location by 16^digits
// shards (1 to 8 digits; New refuses more shards than max(max_entries, 16)),
// or as one (0: every count and cull lists the
// whole location, at any max_entries). Without it, a cache culls as one up
// to max_entries 10,000, and above by the fewest shards that hold at most
// 4096 entries each at max_entries. Either way it counts a sample of its
// first shards holding about 4096 entries at max_entries (or half of
// max_entries when that is less). See the README's "Culling at scale".
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

// countLimit is the count of the counter's sample at which the cache is
// full: max_entries times the sample's share of the shards.
func (c *Cache) countLimit() float64 {
	return float64(c.maxEntries) * float64(c.sampleShards) / float64(uint64(1)<<(4*c.shardDigits))
}

// samplePrefixes returns the listing prefixes of the sample's shards, in
// name order.
func (c *Cache) samplePrefixes() []string {
	var out []string
	for p := range c.shardPrefixes {
		if !c.inSample(p) {
			break
		}
		out = append(out, p)
	}
	return out
}

// cullByShard returns the names the policy culls from entries (in name
// order, of one or more whole shards), applied to each shard's entries on
// their own.
func (c *Cache) cullByShard(entries []cull.Entry) []string {
	var out []string
	p, k := len(c.prefix), c.shardDigits
	for len(entries) > 0 {
		n := 1
		for n < len(entries) && k > 0 && entries[n].Name[p:p+k] == entries[0].Name[p:p+k] {
			n++
		}
		if k == 0 {
			n = len(entries)
		}
		out = append(out, c.policy.Cull(entries[:n])...)
		entries = entries[n:]
	}
	return out
}

// cullPass is the state of the background pass that culls the shards
// outside the sample.
type cullPass struct {
	mu      sync.Mutex
	running bool
	again   bool          // a cull asked for another pass while one ran
	done    chan struct{} // closed when the running pass ends
}

// WaitCulls waits until no background cull of this cache runs (culling by
// shards, see WithCullShards: a write that finds the cache full culls its
// sample of the shards and leaves the others to a background pass), or
// until ctx is done.
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

// startCullPass starts the background pass over the shards outside the
// sample, which was just culled (listed entries, removed of them), or asks
// the running one for another pass.
func (c *Cache) startCullPass(listed, removed int) {
	p := &c.pass
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.closed.Load() {
		// Close, which sets closed before it looks for a pass under p.mu,
		// would not wait for this one.
		return
	}
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

// passListers is how many shards a pass (the background one, or Cull's)
// lists at once. The shards are independent and each listing is a round
// trip or a few, so on a store across a network the pass takes about
// 1/passListers of the time one lister would; its full batches of victims
// are deleted deleteParallelism at a time. The client then holds at most
// passListers shards' listings and deleteParallelism+2 batches of victims.
const passListers = 8

// cullShards culls every shard outside the sample (and the sample too when
// sample is set: its caller holds counter.listMu) by the policy, each from
// a listing of its own, passListers shards at a time; the victims are
// deleted in full batches as they accumulate, deleteParallelism batches at
// a time. It returns the entries listed and removed.
func (c *Cache) cullShards(ctx context.Context, sample bool) (listed, removed int, err error) {
	if sample {
		l, victims, err := c.sweep(ctx, c.samplePrefixes(), func(entries []cull.Entry) []string {
			return c.cullByShard(entries)
		})
		listed, removed = l, len(victims)
		if err != nil {
			return listed, removed, err
		}
	}
	// passListers goroutines list and cull the shards, each shard on its
	// own; this goroutine collects their victims into full batches as they
	// accumulate (a shard culls a few hundred entries, a batch takes
	// driver.MaxBatchDelete).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	prefixes := make(chan string)
	g.Go(func() error {
		defer close(prefixes)
		for prefix := range c.shardPrefixes {
			if c.inSample(prefix) {
				continue
			}
			select {
			case prefixes <- prefix:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	type shardCull struct {
		listed  int
		victims []string
	}
	results := make(chan shardCull)
	for range passListers {
		g.Go(func() error {
			for prefix := range prefixes {
				entries, err := c.list(gctx, []string{prefix})
				if err != nil {
					return err
				}
				r := shardCull{listed: len(entries)}
				if len(entries) > 0 {
					r.victims = c.policy.Cull(entries)
				}
				select {
				case results <- r:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
	}
	var listErr error
	go func() {
		listErr = g.Wait()
		close(results)
	}()
	// Full batches are deleted deleteParallelism at a time; this goroutine
	// waits for a free slot before it takes the next shard's victims, so
	// it holds at most a batch more than those in flight.
	dg, dctx := errgroup.WithContext(ctx)
	dg.SetLimit(deleteParallelism)
	var deleted atomic.Int64
	send := func(batch []string) {
		dg.Go(func() error {
			if err := c.deleteNames(dctx, batch); err != nil {
				return err
			}
			deleted.Add(int64(len(batch)))
			return nil
		})
	}
	var pending []string
	for r := range results {
		listed += r.listed
		pending = append(pending, r.victims...)
		for len(pending) >= driver.MaxBatchDelete {
			send(slices.Clone(pending[:driver.MaxBatchDelete]))
			pending = append(pending[:0], pending[driver.MaxBatchDelete:]...)
		}
		if dctx.Err() != nil { // a delete failed: stop the listers
			cancel()
			for range results { // they stop at their next send
			}
		}
	}
	if listErr == nil && dctx.Err() == nil && len(pending) > 0 { // listErr is set before results was closed
		send(pending)
	}
	derr := dg.Wait()
	removed += int(deleted.Load())
	if derr != nil {
		return listed, removed, derr
	}
	return listed, removed, listErr
}

// countAll counts the entries under the location a page at a time, holding
// no names.
func (c *Cache) countAll(ctx context.Context) (int, error) {
	n := 0
	opts := &driver.ListOptions{Prefix: c.prefix, PageSize: driver.MaxListPageSize, NamesOnly: true}
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
