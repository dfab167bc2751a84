package cache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/blobcache/blobcache/driver"
)

// errStale is the miss of an entry past its expiry but within its grace
// period (WithStaleGrace): it is not deleted, since GetOrSet may still serve
// it while it refreshes it. read and readHeader return the entry's header
// (and value, attributes) with it.
var errStale = fmt.Errorf("%w (expired, within its grace period)", ErrMiss)

// read fetches and decodes key's entry. A missing, expired or undecodable
// entry is ErrMiss; undecodable entries and those past their grace period
// are deleted. An entry within its grace period is errStale, returned with
// its header, value and attributes.
func (c *Cache) read(ctx context.Context, name string) (header, []byte, driver.Attributes, error) {
	h, v, _, attrs, err := c.readRaw(ctx, name)
	return h, v, attrs, err
}

// readRaw is read, also returning the entry's bytes as stored.
func (c *Cache) readRaw(ctx context.Context, name string) (header, []byte, []byte, driver.Attributes, error) {
	// Never more than the largest entry could be: a store may hold, at an
	// entry's name, an object of any size.
	limit := readLimit(c.maxValueSize)
	data, attrs, err := c.storeRead(ctx, name, 0, limit+1)
	if err != nil {
		if errors.Is(err, driver.ErrNotFound) {
			return header{}, nil, nil, attrs, ErrMiss
		}
		return header{}, nil, nil, attrs, err
	}
	var h header
	var v []byte
	if int64(len(data)) > limit {
		err = fmt.Errorf("%w: object larger than %d bytes, the most an entry of max_value_size %d takes", errCorrupt, limit, c.maxValueSize)
	} else {
		h, v, err = decodeEntry(data, name, c.keys, c.maxValueSize)
	}
	now := c.now()
	if err == nil && h.stale(now) {
		return h, v, nil, attrs, errStale
	}
	if err != nil || h.expired(now) {
		if derr := c.drop(ctx, name); derr != nil {
			return h, nil, nil, attrs, &DeadEntryError{Name: name, Err: derr}
		}
		c.droppedDead(ctx, name, err)
		return h, nil, nil, attrs, ErrMiss
	}
	return h, v, data, attrs, nil
}

// readHeader fetches only the header of name's entry where the store allows a
// range read. Expired and corrupt entries are reported as ErrMiss and
// deleted, except those within their grace period (errStale, see read).
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
	now := c.now()
	if err == nil && h.stale(now) {
		return h, attrs, errStale
	}
	if err != nil || h.expired(now) {
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
	_, v, _, err := c.readValue(ctx, c.objectName(key))
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
	return c.setNamed(ctx, c.objectName(key), value, ttl, c.staleGrace)
}

// setNamed is set with the key's object name already made, writing an
// entry with the given grace period.
func (c *Cache) setNamed(ctx context.Context, name string, value []byte, ttl, grace time.Duration) error {
	c.stats.sets.Add(1)
	if err := c.check(ctx); err != nil {
		return err
	}
	exp, err := c.expiry(ttl)
	if err != nil {
		return err
	}
	startPass, err := c.cullIfFull(ctx)
	if err != nil {
		return err
	}
	defer startPass()
	return c.write(ctx, name, value, exp, int64(grace), &driver.WriteOptions{})
}

// write encodes and stores an entry expiring at exp (Unix nanoseconds, 0
// never) with a grace period of grace nanoseconds.
func (c *Cache) write(ctx context.Context, name string, value []byte, exp, grace int64, opts *driver.WriteOptions) error {
	if err := c.checkSize(value); err != nil {
		return err
	}
	e, err := encodeEntry(value, exp, grace, c.gzip, name, c.keys)
	if err != nil {
		return err
	}
	defer e.release()
	opts.ContentEncoding = e.contentEncoding()
	opts.DeleteAfter = deadAt(exp, grace)
	if err := c.storeWrite(ctx, name, e, opts); err != nil {
		return err
	}
	c.wrote(name)
	return nil
}

// deadAt is the instant after which an entry expiring at exp (Unix
// nanoseconds, 0 never) with grace nanoseconds of grace is dead: the
// WriteOptions.DeleteAfter of its write. It is zero for an entry that never
// expires, and saturates rather than wraps.
func deadAt(exp, grace int64) time.Time {
	if exp == 0 {
		return time.Time{}
	}
	if grace > 0 && exp > math.MaxInt64-grace {
		return time.Unix(0, math.MaxInt64)
	}
	return time.Unix(0, exp+max(grace, 0))
}

// checkSize refuses a value larger than max_value_size.
func (c *Cache) checkSize(value []byte) error {
	if int64(len(value)) > c.maxValueSize {
		return fmt.Errorf("%w: %d bytes, more than max_value_size %d", ErrValueTooLarge, len(value), c.maxValueSize)
	}
	return nil
}

// replace stores an entry (see write) over the one read with etag:
// atomically where the driver implements Replacer, otherwise as a plain
// write.
func (c *Cache) replace(ctx context.Context, name string, value []byte, exp, grace int64, etag string) error {
	if c.replacer == nil {
		return c.write(ctx, name, value, exp, grace, &driver.WriteOptions{})
	}
	if err := c.checkSize(value); err != nil {
		return err
	}
	e, err := encodeEntry(value, exp, grace, c.gzip, name, c.keys)
	if err != nil {
		return err
	}
	defer e.release()
	if err := c.storeReplace(ctx, name, e, etag, &driver.WriteOptions{ContentEncoding: e.contentEncoding(), DeleteAfter: deadAt(exp, grace)}); err != nil {
		return err
	}
	c.wrote(name)
	return nil
}

// wrote records a successful write of name: in the entry counter, and as the
// probe if none is set and the counter tracks it (the probe must be in what
// the counter lists; one atomic load once it is set).
func (c *Cache) wrote(name string) {
	c.counter.wrote(name)
	if c.probe.Load() == nil && c.counter.tracks(name) {
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
	added, err := c.add(ctx, key, value, ttl, c.staleGrace)
	if added {
		c.stats.added.Add(1)
	}
	if err != nil {
		return false, fail("add", key, err)
	}
	return added, nil
}

// add is Add, writing an entry with the given grace period.
func (c *Cache) add(ctx context.Context, key string, value []byte, ttl, grace time.Duration) (bool, error) {
	if err := c.check(ctx); err != nil {
		return false, err
	}
	exp, err := c.expiry(ttl)
	if err != nil {
		return false, err
	}
	name := c.objectName(key)
	startPass, err := c.cullIfFull(ctx)
	if err != nil {
		return false, err
	}
	defer startPass()
	for attempt := range maxAttempts {
		if attempt > 0 {
			c.retried(ctx, opAdd, name, attempt)
		}
		err := c.write(ctx, name, value, exp, int64(grace), &driver.WriteOptions{IfAbsent: true})
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
		err = c.replace(ctx, name, value, exp, int64(grace), attrs.ETag)
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
	if c.takes != nil {
		live, err := c.deleteTaking(ctx, name)
		if err != nil {
			return false, fail("delete", key, err)
		}
		return live, nil
	}
	_, _, err = c.readHeader(ctx, name)
	if errors.Is(err, errStale) {
		// Not live, but GetOrSet could still serve it: it goes too.
		if err := c.drop(ctx, name); err != nil && !errors.Is(err, driver.ErrNotFound) {
			return false, fail("delete", key, err)
		}
		return false, nil
	}
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

// deleteTaking is Delete on a driver.ReadDeleter: one call removes the
// entry and returns its header, which says whether it was live. A dead
// entry's removal is recorded as readHeader records it.
func (c *Cache) deleteTaking(ctx context.Context, name string) (bool, error) {
	data, err := c.storeReadDelete(ctx, name, headerReadLen)
	if errors.Is(err, driver.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	c.counter.dropped(name)
	h, err := parseEntryHeader(data)
	if err == nil {
		err = c.keys.checkSigned(h)
	}
	now := c.now()
	switch {
	case err == nil && h.stale(now):
		return false, nil
	case err != nil || h.expired(now):
		c.droppedDead(ctx, name, err)
		return false, nil
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
		h, v, attrs, err := c.read(ctx, name)
		if cleanMiss(err) {
			return false, nil
		}
		if err != nil {
			return false, fail("touch", key, err)
		}
		err = c.replace(ctx, name, v, exp, h.grace, attrs.ETag)
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
		err = c.replace(ctx, name, strconv.AppendInt(buf[:0], sum, 10), h.expiry, h.grace, attrs.ETag)
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
