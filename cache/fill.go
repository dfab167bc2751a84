package cache

import (
	"bytes"
	"context"
	"errors"
	"time"
)

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
