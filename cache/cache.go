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
// URL, so an application can cache in S3 in production and in memory in tests
// by changing one string:
//
//	c, err := cache.Open(ctx, "s3://my-bucket?location=cache&max_entries=1000")
//	c, err := cache.Open(ctx, "mem://")
//
// All methods are safe for concurrent use. Add, Incr, Decr and Touch are
// atomic across processes on drivers that implement driver.Replacer (S3, the
// file and memory drivers).
package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/blobcache/blobcache/cull"
	"github.com/blobcache/blobcache/driver"
)

// Cache is a cache over one location of one store. Make one with Open or New.
type Cache struct {
	d        driver.Driver
	replacer driver.Replacer     // nil when the driver cannot replace-if-unchanged
	batch    driver.BatchDeleter // nil when the driver has no bulk delete

	prefix    string // listing prefix of the location: "" or "loc/"
	keyPrefix string
	version   int
	keyFunc   KeyFunc
	// defaultKeyFunc is set when keyFunc is DefaultKeyFunc, whose made key
	// objectName builds without allocating.
	defaultKeyFunc bool
	defaultTTL     time.Duration
	maxEntries     int
	policy         cull.Policy
	gzip           bool
	maxValueSize   int64
	fillTimeout    time.Duration
	keys           *signingKeys // nil: entries are neither signed nor checked
	now            func() time.Time
	desc           string

	counter *entryCounter
	// probe is an entry name this cache wrote since its last listing (nil:
	// none): a listing that finds no entry checks it exists, to tell an
	// empty location from one the store hides (see checkHidden).
	probe  atomic.Pointer[string]
	flight singleflight.Group
	closed  atomic.Bool

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
	s := defaultSettings()
	for _, o := range opts {
		if err := o(&s); err != nil {
			return nil, err
		}
	}
	prefix, err := cleanLocation(s.location)
	if err != nil {
		return nil, err
	}
	if v, ok := d.(driver.NameValidator); ok && prefix != "" {
		// A sample entry name: the store must keep the location as given.
		if err := v.ValidateName(prefix + "0000000000000000000000000000000000000000"); err != nil {
			return nil, fmt.Errorf("%w: location %q: the store cannot keep it as given: %w", ErrInvalidOption, s.location, err)
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
		now:            s.now,
		desc:           s.description,
		counter:        newEntryCounter(s.maxEntries > 0),
		logger:         s.logger,
	}
	if len(s.signingKeys) > 0 {
		c.keys = &signingKeys{keys: s.signingKeys}
	}
	if c.tel, err = newTelemetry(s.meterProvider, s.tracerProvider, prefix); err != nil {
		return nil, fmt.Errorf("cache.New: telemetry: %w", err)
	}
	c.replacer, _ = d.(driver.Replacer)
	c.batch, _ = d.(driver.BatchDeleter)
	return c, nil
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

// Close closes the driver. Calls after Close return ErrClosed.
func (c *Cache) Close() error {
	if c.closed.Swap(true) {
		return ErrClosed
	}
	return c.d.Close()
}

// Driver returns the driver the cache stores through.
func (c *Cache) Driver() driver.Driver { return c.d }

// ObjectName returns the name of the object that holds key's entry.
func (c *Cache) ObjectName(key string) string { return c.objectName(key) }

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

// read fetches and decodes key's entry. A missing, expired or undecodable
// entry is ErrMiss; expired and undecodable entries are deleted.
func (c *Cache) read(ctx context.Context, name string) (header, []byte, driver.Attributes, error) {
	// Never more than the largest entry could be: a store may hold, at an
	// entry's name, an object of any size.
	limit := readLimit(c.maxValueSize)
	data, attrs, err := c.storeRead(ctx, name, 0, limit+1)
	if err != nil {
		if errors.Is(err, driver.ErrNotFound) {
			return header{}, nil, attrs, ErrMiss
		}
		return header{}, nil, attrs, err
	}
	var h header
	var v []byte
	if int64(len(data)) > limit {
		err = fmt.Errorf("%w: object larger than %d bytes, the most an entry of max_value_size %d takes", errCorrupt, limit, c.maxValueSize)
	} else {
		h, v, err = decodeEntry(data, name, c.keys, c.maxValueSize)
	}
	if err != nil || h.expired(c.now()) {
		if derr := c.drop(ctx, name); derr != nil {
			return h, nil, attrs, &DeadEntryError{Name: name, Err: derr}
		}
		c.droppedDead(ctx, name, err)
		return h, nil, attrs, ErrMiss
	}
	return h, v, attrs, nil
}

// readHeader fetches only the header of name's entry where the store allows a
// range read. Expired and corrupt entries are deleted and reported as ErrMiss.
func (c *Cache) readHeader(ctx context.Context, name string) (header, driver.Attributes, error) {
	data, attrs, err := c.storeRead(ctx, name, 0, headerReadLen)
	if err != nil {
		if errors.Is(err, driver.ErrNotFound) {
			return header{}, attrs, ErrMiss
		}
		return header{}, attrs, err
	}
	h, err := parseEntryHeader(data)
	if err == nil {
		err = c.keys.checkSigned(h)
	}
	if err != nil || h.expired(c.now()) {
		if derr := c.drop(ctx, name); derr != nil {
			return h, attrs, &DeadEntryError{Name: name, Err: derr}
		}
		c.droppedDead(ctx, name, err)
		return h, attrs, ErrMiss
	}
	return h, attrs, nil
}

// drop deletes an entry the cache found dead (expired or corrupt).
func (c *Cache) drop(ctx context.Context, name string) error {
	if err := c.storeDelete(ctx, name); err != nil {
		return err
	}
	c.counter.dropped(name)
	return nil
}

// Get returns key's value. It returns an error satisfying errors.Is(err,
// ErrMiss) when the key has no live entry; when that entry was dead (expired,
// corrupt or forged) and deleting it failed, the error is also a
// *DeadEntryError carrying the storage failure.
func (c *Cache) Get(ctx context.Context, key string) (_ []byte, err error) {
	ctx, cl := c.begin(ctx, opGet)
	defer func() { cl.end(ctx, err) }()
	return c.get(ctx, key)
}

func (c *Cache) get(ctx context.Context, key string) ([]byte, error) {
	if err := c.check(ctx); err != nil {
		return nil, fail("get", key, err)
	}
	_, v, _, err := c.read(ctx, c.objectName(key))
	switch {
	case err == nil:
		c.lookup(ctx, true)
		return v, nil
	case errors.Is(err, ErrMiss):
		c.lookup(ctx, false)
	}
	return nil, fail("get", key, err)
}

// Has reports whether key has a live entry. It reads only the entry's header
// where the store allows range reads.
func (c *Cache) Has(ctx context.Context, key string) (_ bool, err error) {
	ctx, cl := c.begin(ctx, opHas)
	defer func() { cl.end(ctx, err) }()
	if err := c.check(ctx); err != nil {
		return false, fail("has", key, err)
	}
	_, _, err = c.readHeader(ctx, c.objectName(key))
	switch {
	case err == nil:
		return true, nil
	case cleanMiss(err):
		return false, nil
	default:
		return false, fail("has", key, err)
	}
}

// Set stores value under key for ttl (DefaultTTL for the configured default,
// NoExpiry for ever), replacing any entry. It may first cull the cache.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) (err error) {
	ctx, cl := c.begin(ctx, opSet)
	defer func() { cl.end(ctx, err) }()
	if err := c.set(ctx, key, value, ttl); err != nil {
		return fail("set", key, err)
	}
	return nil
}

func (c *Cache) set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return c.setNamed(ctx, c.objectName(key), value, ttl)
}

// setNamed is set with the key's object name already made.
func (c *Cache) setNamed(ctx context.Context, name string, value []byte, ttl time.Duration) error {
	c.stats.sets.Add(1)
	if err := c.check(ctx); err != nil {
		return err
	}
	exp, err := c.expiry(ttl)
	if err != nil {
		return err
	}
	if err := c.cullIfFull(ctx); err != nil {
		return err
	}
	return c.write(ctx, name, value, exp, &driver.WriteOptions{})
}

// write encodes and stores an entry.
func (c *Cache) write(ctx context.Context, name string, value []byte, exp int64, opts *driver.WriteOptions) error {
	if err := c.checkSize(value); err != nil {
		return err
	}
	e, err := encodeEntry(value, exp, c.gzip, name, c.keys)
	if err != nil {
		return err
	}
	defer e.release()
	opts.ContentEncoding = e.contentEncoding()
	err = c.d.Write(ctx, name, e.reader(), opts)
	c.countWrite(ctx, e.written)
	if err != nil {
		return err
	}
	c.wrote(name)
	return nil
}

// checkSize refuses a value larger than max_value_size.
func (c *Cache) checkSize(value []byte) error {
	if int64(len(value)) > c.maxValueSize {
		return fmt.Errorf("%w: %d bytes, more than max_value_size %d", ErrValueTooLarge, len(value), c.maxValueSize)
	}
	return nil
}

// replace stores an entry over the one read with etag: atomically where the
// driver implements Replacer, otherwise as a plain write.
func (c *Cache) replace(ctx context.Context, name string, value []byte, exp int64, etag string) error {
	if c.replacer == nil {
		return c.write(ctx, name, value, exp, &driver.WriteOptions{})
	}
	if err := c.checkSize(value); err != nil {
		return err
	}
	e, err := encodeEntry(value, exp, c.gzip, name, c.keys)
	if err != nil {
		return err
	}
	defer e.release()
	err = c.replacer.Replace(ctx, name, e.reader(), etag, &driver.WriteOptions{ContentEncoding: e.contentEncoding()})
	c.countWrite(ctx, e.written)
	if err != nil {
		return err
	}
	c.wrote(name)
	return nil
}

// wrote records a successful write of name: in the entry counter, and as the
// probe if none is set (one atomic load once it is).
func (c *Cache) wrote(name string) {
	c.counter.wrote(name)
	if c.probe.Load() == nil {
		c.probe.CompareAndSwap(nil, &name)
	}
}

// maxAttempts bounds the retries of a conditional update that keeps losing
// races; ErrConflict is returned after that.
const maxAttempts = 64

// Add stores value under key only if the key has no live entry, and reports
// whether it did. The check and the write are one atomic step (a
// create-if-absent write; an expired or corrupt entry in the way is replaced
// with a replace-if-unchanged write where the driver has one).
func (c *Cache) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (_ bool, err error) {
	ctx, cl := c.begin(ctx, opAdd)
	defer func() { cl.end(ctx, err) }()
	c.stats.adds.Add(1)
	added, err := c.add(ctx, key, value, ttl)
	if added {
		c.stats.added.Add(1)
	}
	if err != nil {
		return false, fail("add", key, err)
	}
	return added, nil
}

func (c *Cache) add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := c.check(ctx); err != nil {
		return false, err
	}
	exp, err := c.expiry(ttl)
	if err != nil {
		return false, err
	}
	name := c.objectName(key)
	if err := c.cullIfFull(ctx); err != nil {
		return false, err
	}
	for attempt := range maxAttempts {
		if attempt > 0 {
			c.retried(ctx, opAdd, name, attempt)
		}
		err := c.write(ctx, name, value, exp, &driver.WriteOptions{IfAbsent: true})
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, driver.ErrPreconditionFailed) {
			return false, err
		}
		// Something is there: live, or dead and replaceable.
		data, attrs, err := c.storeRead(ctx, name, 0, headerReadLen)
		if errors.Is(err, driver.ErrNotFound) {
			continue // deleted meanwhile: try creating again
		}
		if err != nil {
			return false, err
		}
		h, herr := parseEntryHeader(data)
		if herr == nil {
			herr = c.keys.checkSigned(h)
		}
		if herr == nil && !h.expired(c.now()) {
			return false, nil
		}
		if c.replacer == nil {
			// Not atomic: another process may add between these calls.
			if err := c.drop(ctx, name); err != nil {
				return false, err
			}
			continue
		}
		err = c.replace(ctx, name, value, exp, attrs.ETag)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, driver.ErrPreconditionFailed) && !errors.Is(err, driver.ErrNotFound) {
			return false, err
		}
	}
	return false, ErrConflict
}

// Delete removes key's entry and reports whether a live entry was deleted.
func (c *Cache) Delete(ctx context.Context, key string) (_ bool, err error) {
	ctx, cl := c.begin(ctx, opDelete)
	defer func() { cl.end(ctx, err) }()
	c.stats.deletes.Add(1)
	if err := c.check(ctx); err != nil {
		return false, fail("delete", key, err)
	}
	name := c.objectName(key)
	_, _, err = c.readHeader(ctx, name)
	if cleanMiss(err) {
		return false, nil
	}
	if err != nil {
		return false, fail("delete", key, err)
	}
	if err := c.drop(ctx, name); err != nil {
		return false, fail("delete", key, err)
	}
	return true, nil
}

// Touch gives key's live entry a new expiry and reports whether there was one.
func (c *Cache) Touch(ctx context.Context, key string, ttl time.Duration) (_ bool, err error) {
	ctx, cl := c.begin(ctx, opTouch)
	defer func() { cl.end(ctx, err) }()
	c.stats.touches.Add(1)
	if err := c.check(ctx); err != nil {
		return false, fail("touch", key, err)
	}
	exp, err := c.expiry(ttl)
	if err != nil {
		return false, fail("touch", key, err)
	}
	name := c.objectName(key)
	for attempt := range maxAttempts {
		if attempt > 0 {
			c.retried(ctx, opTouch, name, attempt)
		}
		_, v, attrs, err := c.read(ctx, name)
		if cleanMiss(err) {
			return false, nil
		}
		if err != nil {
			return false, fail("touch", key, err)
		}
		err = c.replace(ctx, name, v, exp, attrs.ETag)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, driver.ErrNotFound):
			return false, nil
		case !errors.Is(err, driver.ErrPreconditionFailed):
			return false, fail("touch", key, err)
		}
	}
	return false, fail("touch", key, ErrConflict)
}

// Incr adds delta to key's integer value and returns the result. The value is
// stored as base-10 text and keeps its expiry. It returns ErrMiss when the key
// has no live entry, ErrNotInteger when the value is not an integer and
// ErrOverflow when the result does not fit an int64. The update is atomic
// across processes where the driver implements Replacer.
func (c *Cache) Incr(ctx context.Context, key string, delta int64) (_ int64, err error) {
	ctx, cl := c.begin(ctx, opIncr)
	defer func() { cl.end(ctx, err) }()
	n, err := c.incr(ctx, key, delta, false)
	if err != nil {
		return 0, fail("incr", key, err)
	}
	return n, nil
}

// Decr subtracts delta from key's integer value; see Incr.
func (c *Cache) Decr(ctx context.Context, key string, delta int64) (_ int64, err error) {
	ctx, cl := c.begin(ctx, opIncr)
	defer func() { cl.end(ctx, err) }()
	n, err := c.incr(ctx, key, delta, true)
	if err != nil {
		return 0, fail("decr", key, err)
	}
	return n, nil
}

// incr adds delta to key's value, or subtracts it when sub is set (negating
// delta instead would overflow for math.MinInt64).
func (c *Cache) incr(ctx context.Context, key string, delta int64, sub bool) (int64, error) {
	c.stats.incrs.Add(1)
	if err := c.check(ctx); err != nil {
		return 0, err
	}
	name := c.objectName(key)
	var buf [20]byte
	for attempt := range maxAttempts {
		if attempt > 0 {
			c.retried(ctx, opIncr, name, attempt)
		}
		h, v, attrs, err := c.read(ctx, name)
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, ErrNotInteger
		}
		sum := n + delta
		overflow := (delta > 0 && sum < n) || (delta < 0 && sum > n)
		if sub {
			sum = n - delta
			overflow = (delta > 0 && sum > n) || (delta < 0 && sum < n)
		}
		if overflow {
			return 0, ErrOverflow
		}
		err = c.replace(ctx, name, strconv.AppendInt(buf[:0], sum, 10), h.expiry, attrs.ETag)
		switch {
		case err == nil:
			return sum, nil
		case errors.Is(err, driver.ErrNotFound):
			return 0, ErrMiss
		case !errors.Is(err, driver.ErrPreconditionFailed):
			return 0, err
		}
	}
	return 0, ErrConflict
}

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
			_, v, _, err := c.read(gctx, c.objectName(key))
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
	if c.maxEntries > 0 && c.counter.mayNeedListing(c.maxEntries, c.counter.unknown(names)) {
		g.SetLimit(1)
	}
	for i, key := range keys {
		value := items[key]
		g.Go(func() error {
			if err := c.setNamed(gctx, names[i], value, ttl); err != nil {
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

// GetOrSet returns key's value; on a miss it calls fill, stores the result
// with Add semantics and returns the value then stored (another process may
// have added one first). Within one Cache, concurrent callers for the same key
// share one fill call and its result. A nil fill is an ErrInvalidArgument
// error when the key misses.
//
// The fill, and the reads and the write around it, run under a context of
// their own: the first caller's values (trace spans, say) without its
// cancellation or deadline, ending after the fill timeout (WithFillTimeout,
// DefaultFillTimeout). So a caller whose context ends fails alone, with its
// context's error, as soon as it ends: the other callers still get the value,
// and it is stored even when every caller has gone. A fill that panics
// panics in every caller still waiting for it.
func (c *Cache) GetOrSet(ctx context.Context, key string, ttl time.Duration, fill func(context.Context) ([]byte, error)) (_ []byte, err error) {
	ctx, cl := c.begin(ctx, opGetOrSet)
	defer func() { cl.end(ctx, err) }()
	// Refuse a bad TTL before fill runs, not after.
	if _, err := c.expiry(ttl); err != nil {
		return nil, fail("get_or_set", key, err)
	}
	v, err := c.get(ctx, key)
	if err == nil || !errors.Is(err, ErrMiss) {
		return v, err
	}
	if fill == nil { // only an error when it would be called
		return nil, fail("get_or_set", key, errNilFill)
	}
	name := c.objectName(key)
	res, err := c.shareFill(ctx, name, func(ctx context.Context) (any, error) {
		// A caller that just finished a fill may have stored the value.
		if _, v, _, err := c.read(ctx, name); err == nil || !errors.Is(err, ErrMiss) {
			return v, err
		}
		v, err := fill(ctx)
		if err != nil {
			return nil, err
		}
		c.stats.adds.Add(1)
		added, err := c.add(ctx, key, v, ttl)
		if err != nil {
			return nil, err
		}
		if added {
			c.stats.added.Add(1)
			return v, nil
		}
		_, stored, _, err := c.read(ctx, name)
		switch {
		case errors.Is(err, ErrMiss):
			return v, nil // added by another and already gone
		case err != nil:
			return nil, err
		}
		return stored, nil
	})
	if err != nil {
		return nil, fail("get_or_set", key, err)
	}
	return bytes.Clone(res.([]byte)), nil
}

// shareFill runs fn once for all concurrent callers with the same flight
// key, under a context detached from every caller's cancellation (see
// GetOrSet), and returns its result to each caller, or the caller's own
// context error as soon as that context ends. A panic in fn is raised again
// in each caller still waiting.
func (c *Cache) shareFill(ctx context.Context, flightKey string, fn func(context.Context) (any, error)) (any, error) {
	ch := c.flight.DoChan(flightKey, func() (res any, err error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.fillTimeout)
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				res, err = fillPanic{p}, nil
			}
		}()
		return fn(fctx)
	})
	select {
	case r := <-ch:
		if p, ok := r.Val.(fillPanic); ok {
			panic(p.v)
		}
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fillPanic carries a fill's panic to the callers waiting for it (a panic in
// a singleflight.DoChan function would crash the process from a goroutine
// of its own).
type fillPanic struct{ v any }

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
// Clear of n entries takes about as long as its deletes alone. The caller
// holds counter.listMu.
func (c *Cache) clearAll(ctx context.Context) (int, error) {
	probe := c.probe.Load() // written before the listing starts
	c.counter.beginListing()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deleteParallelism)
	var (
		listed  []string
		listErr error
	)
	opts := &driver.ListOptions{Prefix: c.prefix, PageSize: driver.MaxListPageSize}
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
			}
		}
		listed = append(listed, names...)
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
		listErr = c.checkHidden(ctx, probe, len(listed))
	}
	if listErr != nil {
		c.counter.abortListing()
		return 0, listErr
	}
	c.counter.endListing(listed, listed)
	return len(listed), nil
}

// Len returns the number of entries under the cache's location, expired ones
// included (as the store holds them until read or culled).
func (c *Cache) Len(ctx context.Context) (_ int, err error) {
	ctx, cl := c.begin(ctx, opLen)
	defer func() { cl.end(ctx, err) }()
	if err := c.check(ctx); err != nil {
		return 0, fail("len", "", err)
	}
	c.counter.listMu.Lock()
	defer c.counter.listMu.Unlock()
	n, _, err := c.sweep(ctx, func([]cull.Entry) []string { return nil })
	if err != nil {
		return 0, fail("len", "", err)
	}
	return n, nil
}

// Cull removes entries as a full cache would, now, whatever the count, and
// returns how many it removed.
func (c *Cache) Cull(ctx context.Context) (_ int, err error) {
	ctx, cl := c.begin(ctx, opCull)
	defer func() { cl.end(ctx, err) }()
	if err := c.check(ctx); err != nil {
		return 0, fail("cull", "", err)
	}
	c.counter.listMu.Lock()
	defer c.counter.listMu.Unlock()
	n, err := c.listAndCull(ctx, 0)
	if err != nil {
		return 0, fail("cull", "", err)
	}
	return n, nil
}

// cullIfFull runs before every write: when the location may hold max_entries
// entries it lists them and, if it does, culls.
func (c *Cache) cullIfFull(ctx context.Context) error {
	if c.maxEntries == 0 || !c.counter.needsListing(c.maxEntries) {
		return nil
	}
	c.counter.listMu.Lock()
	defer c.counter.listMu.Unlock()
	// Another caller may have listed while this one waited.
	if !c.counter.needsListing(c.maxEntries) {
		return nil
	}
	_, err := c.listAndCull(ctx, c.maxEntries)
	if errors.Is(err, ErrHiddenEntries) {
		// Not the write's fault: it goes ahead, and the cache cannot cull
		// until the store lists its entries again. Said loudly.
		c.stats.errors.Add(1)
		if c.logger != nil {
			c.logger.LogAttrs(ctx, slog.LevelWarn, "blobcache: cannot cull", slog.String("location", c.prefix), slog.String("reason", err.Error()))
		}
		return nil
	}
	return err
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

// listAndCull lists the location and culls when it holds at least limit
// entries. The caller holds counter.listMu.
func (c *Cache) listAndCull(ctx context.Context, limit int) (int, error) {
	listed, victims, err := c.sweep(ctx, func(entries []cull.Entry) []string {
		if len(entries) >= limit && len(entries) > 0 {
			return c.policy.Cull(entries)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if len(victims) > 0 {
		c.culled(ctx, listed, len(victims))
	}
	return len(victims), nil
}

// sweep lists the location, deletes the entries choose picks from the
// listing, and brings the entry counter up to date. It returns how many
// entries were listed and the names deleted. The caller holds
// counter.listMu.
func (c *Cache) sweep(ctx context.Context, choose func([]cull.Entry) []string) (int, []string, error) {
	probe := c.probe.Load() // written before the listing starts
	c.counter.beginListing()
	entries, err := c.list(ctx)
	if err == nil {
		err = c.checkHidden(ctx, probe, len(entries))
	}
	if err != nil {
		c.counter.abortListing()
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

// list returns every object under the location, in name order.
func (c *Cache) list(ctx context.Context) ([]cull.Entry, error) {
	var out []cull.Entry
	opts := &driver.ListOptions{Prefix: c.prefix, PageSize: driver.MaxListPageSize}
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
			return out, nil
		}
		opts.PageToken = page.NextPageToken
	}
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
	if len(names) == 0 {
		return nil
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
