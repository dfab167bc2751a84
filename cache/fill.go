package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// FillOption configures one GetOrSet call, overriding the cache's setting.
type FillOption func(*fillSettings) error

// fillSettings are one GetOrSet call's settings.
type fillSettings struct {
	lease time.Duration // 0: the fill is shared within this Cache only
	grace time.Duration // the grace period of the entry the fill stores
}

// FillLease sets the fill lease for one GetOrSet call (see WithFillLease):
// d > 0 makes the call's fill one for the whole fleet, 0 one for this Cache
// only, whatever the cache's setting. d must not be negative.
func FillLease(d time.Duration) FillOption {
	return func(s *fillSettings) error {
		if d != 0 && d < MinFillLease {
			return fmt.Errorf("%w: FillLease(%v): want 0 (off) or at least %v", ErrInvalidArgument, d, MinFillLease)
		}
		s.lease = d
		return nil
	}
}

// StaleGrace sets the grace period of the entry one GetOrSet call stores
// (see WithStaleGrace), whatever the cache's setting: 0 for none. It does
// not change whether the call serves a stale entry: that is up to the grace
// period the entry was stored with. d must not be negative.
func StaleGrace(d time.Duration) FillOption {
	return func(s *fillSettings) error {
		if d < 0 {
			return fmt.Errorf("%w: StaleGrace(%v): want 0 (none) or a positive duration", ErrInvalidArgument, d)
		}
		s.grace = d
		return nil
	}
}

// fillSettings returns the settings of a GetOrSet call: the cache's, then
// opts in order.
func (c *Cache) fillSettings(opts []FillOption) (fillSettings, error) {
	fs := fillSettings{lease: c.fillLease, grace: c.staleGrace}
	for i, o := range opts {
		if o == nil {
			return fillSettings{}, fmt.Errorf("%w: fill option %d of %d is nil", ErrInvalidArgument, i+1, len(opts))
		}
		if err := o(&fs); err != nil {
			return fillSettings{}, err
		}
	}
	if fs.lease > 0 && c.replacer == nil {
		return fillSettings{}, fmt.Errorf("%w: fill leases need a driver that implements driver.Replacer, and %T does not", errors.ErrUnsupported, c.d)
	}
	return fs, nil
}

// GetOrSet returns key's value; on a miss it calls fill, stores the result
// with Add semantics and returns the value then stored (another process may
// have added one first). Within one Cache, concurrent callers for the same key
// share one fill call and its result (the first caller's options apply to
// it). A nil fill is an ErrInvalidArgument error when the key misses.
//
// The fill, and the reads and the write around it, run under a context of
// their own: the first caller's values (trace spans, say) without its
// cancellation or deadline, ending after the fill timeout (WithFillTimeout,
// DefaultFillTimeout). So a caller whose context ends fails alone, with its
// context's error, as soon as it ends: the other callers still get the value,
// and it is stored even when every caller has gone. A fill that panics
// panics in every caller still waiting for it.
//
// With a fill lease (WithFillLease, FillLease), one caller in the whole
// fleet fills a missing key: the Cache that misses takes a lease on the key
// (an object of its own, "<location>/fill/<hash>", never an entry) with a
// create-if-absent write, extends it while the fill runs, and deletes it
// once the value is stored. Every other Cache that misses the key meanwhile
// finds the lease taken and waits: it reads the entry and the lease (2
// requests) after 5 ms, then at intervals growing by half up to 500 ms, with
// jitter, until the value is there (which it returns), the lease is gone or
// dead without a value (then it takes the lease and fills: the holder
// failed or died), the fill timeout passes, or all its callers have left.
// The fill's holder pays 3 requests more than without a lease (the lease's
// write, a read of the entry after it, the lease's delete). A holder that
// dies holds up the key's waiters for at most the lease's duration.
//
// An entry past its expiry but within its grace period (WithStaleGrace,
// StaleGrace) is stale: GetOrSet returns its value at once, counted as a
// hit and in Stats.Stale, and refreshes it in the background: one refresh
// per key at a time in this Cache, and, with a fill lease, one in the whole
// fleet (a Cache that finds the key's lease taken leaves the refresh to its
// holder). The refresh runs fill under a context like the one above (ending
// after the fill timeout, or when the Cache is closed) and stores the value
// with a replace-if-unchanged write over the stale entry, so a value stored
// meanwhile by anyone else is kept; it costs that write (and, with a lease,
// the lease's write, a read and the lease's delete). A refresh that fails
// is logged (WithLogger) and the stale value is served, and a refresh tried
// again on the next call, until the grace period ends; a fill that panics
// in a refresh is recovered and logged with its stack.
func (c *Cache) GetOrSet(ctx context.Context, key string, ttl time.Duration, fill func(context.Context) ([]byte, error), opts ...FillOption) (_ []byte, err error) {
	ctx, cl := c.begin(ctx, opGetOrSet)
	defer func() { cl.end(ctx, err) }()
	// Refuse a bad TTL or option before fill runs, not after.
	if _, err := c.expiry(ttl); err != nil {
		return nil, fail("get_or_set", key, err)
	}
	fs, err := c.fillSettings(opts)
	if err != nil {
		return nil, fail("get_or_set", key, err)
	}
	if err := c.check(ctx); err != nil {
		return nil, fail("get_or_set", key, err)
	}
	name := c.objectName(key)
	_, v, attrs, err := c.readValue(ctx, name)
	switch {
	case err == nil:
		c.lookup(ctx, true)
		return v, nil
	case errors.Is(err, errStale):
		if fill == nil {
			return nil, fail("get_or_set", key, errNilFill)
		}
		c.lookup(ctx, true)
		c.count(ctx, &c.stats.stale, telStale)
		c.refresh(ctx, key, name, ttl, fs, fill, attrs.ETag)
		return v, nil
	case !errors.Is(err, ErrMiss):
		return nil, fail("get_or_set", key, err)
	}
	c.lookup(ctx, false)
	if fill == nil { // only an error when it would be called
		return nil, fail("get_or_set", key, errNilFill)
	}
	res, err := c.shareFill(ctx, name, func(ctx context.Context) (any, error) {
		// A caller that just finished a fill may have stored the value.
		if _, v, _, err := c.read(ctx, name); err == nil || !errors.Is(err, ErrMiss) {
			return v, err
		}
		if fs.lease > 0 {
			return c.fleetFill(ctx, key, name, ttl, fs, fill)
		}
		return c.fillAndAdd(ctx, key, name, ttl, fs.grace, fill)
	})
	if err != nil {
		return nil, fail("get_or_set", key, err)
	}
	return bytes.Clone(res.([]byte)), nil
}

// fillAndAdd runs fill and adds its value with a grace period of grace,
// returning the value then stored.
func (c *Cache) fillAndAdd(ctx context.Context, key, name string, ttl, grace time.Duration, fill func(context.Context) ([]byte, error)) ([]byte, error) {
	c.count(ctx, &c.stats.fills, telFills)
	v, err := fill(ctx)
	if err != nil {
		return nil, err
	}
	c.stats.adds.Add(1)
	added, err := c.add(ctx, key, v, ttl, grace)
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
}

// errCallersGone ends a flight that was only waiting, for callers that
// have all left.
var errCallersGone = errors.New("every caller of the fill has left")

// shareFill runs fn once for all concurrent callers with the same flight
// key, under a context detached from every caller's cancellation (see
// GetOrSet), and returns its result to each caller, or the caller's own
// context error as soon as that context ends. A panic in fn is raised again
// in each caller still waiting. While a caller waits, fillCallers counts it
// under flightKey, so that a flight only waiting for another process can
// stop when nobody is left (errCallersGone); a caller still there that gets
// that error joins a new flight.
func (c *Cache) shareFill(ctx context.Context, flightKey string, fn func(context.Context) (any, error)) (any, error) {
	c.fillCallers.join(flightKey)
	defer c.fillCallers.leave(flightKey)
	for {
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
			if errors.Is(r.Err, errCallersGone) && ctx.Err() == nil {
				continue
			}
			return r.Val, r.Err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// fillPanic carries a fill's panic to the callers waiting for it (a panic in
// a singleflight.DoChan function would crash the process from a goroutine
// of its own).
type fillPanic struct{ v any }

// fillCallers counts the callers waiting on each flight key.
type fillCallers struct {
	mu sync.Mutex
	n  map[string]int
}

func (f *fillCallers) join(k string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = make(map[string]int)
	}
	f.n[k]++
}

func (f *fillCallers) leave(k string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[k]--; f.n[k] <= 0 {
		delete(f.n, k)
	}
}

// any reports whether a caller waits on k.
func (f *fillCallers) any(k string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[k] > 0
}
