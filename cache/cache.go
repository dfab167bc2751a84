// Package cache is a cache with Django's cache semantics whose entries live in
// object storage.
//
// A *Cache stores each entry as one object named location + "/" +
// hex(sha1(made key)), where the made key is key_prefix + ":" + version + ":"
// + key, as Django makes it. Entries carry their own expiry; reading an
// expired entry is a miss and deletes it. When a write finds the location
// holding max_entries entries, the cache culls: it removes the entries its
// cull policy chooses (by default every third name in sorted order, as
// django-s3-cache did).
//
// Where the bytes go is a driver (package driver): S3 or any S3-compatible
// server, a directory, memory, or any gocloud bucket. Open picks one from a
// URL, among the drivers the program registered by importing them, so an
// application can cache in S3 in production and in memory in tests by
// changing one string:
//
//	import _ "github.com/blobcache/blobcache/drivers/all"
//
//	c, err := cache.Open(ctx, "s3://my-bucket?location=cache&max_entries=1000")
//	c, err := cache.Open(ctx, "mem://")
//
// The package imports no driver itself.
//
// The files follow the seams: cache.go (the type, New, Close), ops.go (the
// single-key operations), many.go (GetMany, SetMany, DeleteMany), fill.go
// (GetOrSet), sweep.go (culling, Clear, Len), telemetry.go (Stats, meters,
// spans, and the one layer through which every driver call passes),
// entry.go (the stored format), open.go and config.go (URLs and Django
// configurations), options.go, keys.go, count.go (the entry counter behind
// max_entries), typed.go.
//
// All methods are safe for concurrent use. Add, Incr, Decr and Touch are
// atomic across processes on drivers that implement driver.Replacer (S3, the
// file and memory drivers).
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/blobcache/blobcache/cull"
	"github.com/blobcache/blobcache/driver"
)

// Cache is a cache over one location of one store. Make one with Open or New.
type Cache struct {
	d        driver.Driver
	replacer driver.Replacer     // nil when the driver cannot replace-if-unchanged
	batch    driver.BatchDeleter // nil when the driver has no bulk delete
	takes    driver.ReadDeleter  // nil when the driver cannot read and delete in one step

	prefix    string // listing prefix of the location: "" or "loc/"
	keyPrefix string
	version   int
	keyFunc   KeyFunc
	// defaultKeyFunc is set when keyFunc is DefaultKeyFunc, whose made key
	// objectName builds without allocating.
	defaultKeyFunc bool
	defaultTTL     time.Duration
	maxEntries     int
	shardDigits    int // hex digits of a cull shard's name; 0: one location
	sampleShards   int // the shards the entry counter counts (the first ones)
	policy         cull.Policy
	gzip           bool
	maxValueSize   int64
	fillTimeout    time.Duration
	fillLease      time.Duration // 0: fills are shared within this Cache only
	staleGrace     time.Duration // grace period of the entries written; 0: none
	keys           *signingKeys  // nil: entries are neither signed nor checked
	now            func() time.Time
	desc           string

	counter *entryCounter
	pass    cullPass // the background cull of the shards (see shard.go)
	// probe is an entry name this cache wrote since its last listing (nil:
	// none): a listing that finds no entry checks it exists, to tell an
	// empty location from one the store hides (see checkHidden).
	probe  atomic.Pointer[string]
	flight singleflight.Group
	// fillCallers counts the callers of each flight (see shareFill).
	fillCallers fillCallers
	// counters queue concurrent Increments of one key (see Increment).
	counters counters
	// refreshes are the stale entries being refreshed (see GetOrSet).
	refreshes refreshes
	// local is the local tier (WithLocalTier), nil without one.
	local  *localTier
	closed atomic.Bool
	// closing ends when Close is called: background refreshes stop then.
	closing     context.Context
	stopClosing context.CancelFunc

	stats  stats
	tel    *telemetry // nil when no meter or tracer provider was given
	logger *slog.Logger
}

// New returns a cache over d. The cache owns d: Close closes it.
func New(d driver.Driver, opts ...Option) (*Cache, error) {
	if d == nil {
		return nil, errors.New("cache.New: nil driver")
	}
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	s, prefix, err := applySettings(opts)
	if err != nil {
		return nil, err
	}
	if v, ok := d.(driver.NameValidator); ok {
		if err := checkLocation(v.ValidateName, s.location, prefix); err != nil {
			return nil, err
		}
	}
	if s.policy == nil {
		s.policy = cull.Frequency(s.cullFrequency)
	}
	defaultKeyFunc := s.keyFunc == nil
	if defaultKeyFunc {
		s.keyFunc = DefaultKeyFunc
	}
	c := &Cache{
		d:              d,
		prefix:         prefix,
		keyPrefix:      s.keyPrefix,
		version:        s.version,
		keyFunc:        s.keyFunc,
		defaultKeyFunc: defaultKeyFunc,
		defaultTTL:     s.defaultTTL,
		maxEntries:     s.maxEntries,
		policy:         s.policy,
		gzip:           s.gzip,
		maxValueSize:   s.maxValueSize,
		fillTimeout:    s.fillTimeout,
		fillLease:      s.fillLease,
		staleGrace:     s.staleGrace,
		now:            s.now,
		desc:           s.description,
		shardDigits:    shardDigits(s.maxEntries, s.cullShards),
		logger:         s.logger,
	}
	if shards := 1 << (4 * c.shardDigits); c.shardDigits > 0 && shards > max(s.maxEntries, 16) {
		// Mostly empty shards: every pass would send a LIST for each, and
		// the sample's prefixes alone could exhaust memory (cull_shards=8
		// is 4,294,967,296 shards).
		return nil, optionError("cull_shards", "%d makes %d shards, more than max_entries %d: at most one shard per entry", c.shardDigits, shards, s.maxEntries)
	}
	c.sampleShards = sampleShards(s.maxEntries, c.shardDigits)
	c.counter = newEntryCounter(s.maxEntries > 0, newSample(prefix, c.shardDigits, c.sampleShards))
	if len(s.signingKeys) > 0 {
		c.keys = &signingKeys{keys: s.signingKeys}
	}
	if c.tel, err = newTelemetry(s.meterProvider, s.tracerProvider, prefix); err != nil {
		return nil, fmt.Errorf("cache.New: telemetry: %w", err)
	}
	c.replacer, _ = d.(driver.Replacer)
	if c.fillLease > 0 && c.replacer == nil {
		return nil, fmt.Errorf("%w: fill_lease: %w: fill leases need a driver that implements driver.Replacer, and %T does not", ErrInvalidOption, errors.ErrUnsupported, d)
	}
	c.batch, _ = d.(driver.BatchDeleter)
	c.takes, _ = d.(driver.ReadDeleter)
	if s.localBytes > 0 {
		onEvict := func() {
			if c.tel != nil && c.tel.localEvictions != nil {
				c.tel.localEvictions.Add(context.Background(), 1, c.tel.locOpts...)
			}
		}
		if c.local, err = newLocalTier(s.localBytes, s.localStale, onEvict); err != nil {
			return nil, fmt.Errorf("%w: local_tier: %w", ErrInvalidOption, err)
		}
	}
	if s.diskDir != "" {
		if err := c.openDiskTier(s, prefix); err != nil {
			c.local.close()
			return nil, err
		}
	}
	if err := c.observeTiers(); err != nil {
		c.local.close()
		return nil, fmt.Errorf("cache.New: telemetry: %w", err)
	}
	c.closing, c.stopClosing = context.WithCancel(context.Background())
	return c, nil
}

// checkLocation asks a driver's (or scheme's) name validator whether the
// store keeps the location's entry names as given, with a sample one.
func checkLocation(validate func(string) error, location, prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := validate(prefix + "0000000000000000000000000000000000000000"); err != nil {
		return fmt.Errorf("%w: location %q: the store cannot keep it as given: %w", ErrInvalidOption, location, err)
	}
	return nil
}

// checkOptions refuses a nil Option, naming its position among opts.
func checkOptions(opts []Option) error {
	for i, o := range opts {
		if o == nil {
			return fmt.Errorf("%w: option %d of %d is nil", ErrInvalidOption, i+1, len(opts))
		}
	}
	return nil
}

// String describes the cache without secrets.
func (c *Cache) String() string {
	if c.desc != "" {
		return "cache(" + c.desc + ")"
	}
	return "cache(location=" + strconv.Quote(c.prefix) + ")"
}

// Close closes the driver. Calls after Close return ErrClosed. With
// WithLogger and a local tier, it first logs each tier's summary.
func (c *Cache) Close() error {
	if c.closed.Swap(true) {
		return ErrClosed
	}
	c.stopClosing()
	c.WaitCulls(context.Background()) // the background cull stops at its next request
	c.endTiers()
	lerr := c.local.close()
	if err := c.d.Close(); err != nil {
		return err
	}
	return lerr
}

// Driver returns the driver the cache stores through.
func (c *Cache) Driver() driver.Driver { return c.d }

// ObjectName returns the name of the object that holds key's entry.
func (c *Cache) ObjectName(key string) string { return c.objectName(key) }

// MaxValueSize returns the largest value the cache stores and reads, its
// max_value_size (WithMaxValueSize).
func (c *Cache) MaxValueSize() int64 { return c.maxValueSize }

// Location returns the listing prefix of the cache's location: "" for the
// store's root, otherwise the location followed by "/".
func (c *Cache) Location() string { return c.prefix }

// fail wraps err as an *OpError, keeping ErrMiss and context errors bare
// enough to test with errors.Is (they are still wrapped).
func fail(op, key string, err error) error {
	return &OpError{Op: op, Key: key, Err: err}
}

func (c *Cache) check(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	if c.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// expiry converts a TTL into the stored expiry (Unix ns, 0 = never).
func (c *Cache) expiry(ttl time.Duration) (int64, error) {
	if ttl == DefaultTTL {
		ttl = c.defaultTTL
	}
	if ttl == NoExpiry {
		return 0, nil
	}
	if ttl < 0 {
		return 0, ErrInvalidTTL
	}
	now := c.now().UnixNano()
	if now > math.MaxInt64-int64(ttl) {
		return 0, nil // beyond year 2262: as good as never
	}
	return now + int64(ttl), nil
}
