package cache

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/blobcache/blobcache/driver"
)

// GetStale returns key's value as Get does, except that an entry past its
// expiry but within its grace period (WithStaleGrace) is returned too, with
// stale true, and counted as a hit and in Stats.Stale. It neither refreshes
// nor deletes a stale entry (GetOrSet refreshes one). It returns an error
// satisfying errors.Is(err, ErrMiss) when the key has no entry, or one past
// its grace period, as Get does.
func (c *Cache) GetStale(ctx context.Context, key string) (_ []byte, stale bool, err error) {
	ctx, cl := c.begin(ctx, opGetStale)
	defer func() { cl.end(ctx, err) }()
	if err := c.check(ctx); err != nil {
		return nil, false, fail("get_stale", key, err)
	}
	_, v, _, err := c.readValue(ctx, c.objectName(key))
	switch {
	case err == nil:
		c.lookup(ctx, true)
		return v, false, nil
	case errors.Is(err, errStale):
		c.lookup(ctx, true)
		c.count(ctx, &c.stats.stale, telStale)
		return v, true, nil
	case errors.Is(err, ErrMiss):
		c.lookup(ctx, false)
	}
	return nil, false, fail("get_stale", key, err)
}

// refreshes tracks the keys a Cache is refreshing in the background.
type refreshes struct {
	mu      sync.Mutex
	running map[string]bool
}

// start marks name as refreshing, reporting false if it already was.
func (r *refreshes) start(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running[name] {
		return false
	}
	if r.running == nil {
		r.running = make(map[string]bool)
	}
	r.running[name] = true
	return true
}

func (r *refreshes) done(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.running, name)
}

// refresh starts a background refresh of key's stale entry at name, read
// with etag, unless one is running in this Cache (see GetOrSet). It returns
// at once.
func (c *Cache) refresh(ctx context.Context, key, name string, ttl time.Duration, fs fillSettings, fill func(context.Context) ([]byte, error), etag string) {
	if !c.refreshes.start(name) {
		return
	}
	go func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.fillTimeout)
		defer cancel()
		defer context.AfterFunc(c.closing, cancel)()
		err := func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("fill panicked: %v\n%s", p, debug.Stack())
				}
			}()
			return c.refreshStale(rctx, key, name, ttl, fs, fill, etag)
		}()
		if err != nil {
			c.stats.errors.Add(1)
			if c.logger != nil {
				c.logger.WarnContext(rctx, "blobcache: stale entry not refreshed", "location", c.prefix, "key", key, "object", name, "err", err)
			}
		}
		// Counted once the key is free: a caller that sees the count can
		// start the next refresh.
		c.refreshes.done(name)
		c.count(rctx, &c.stats.refreshes, telRefreshes)
	}()
}

// refreshStale fills key and stores the value over its stale entry, read
// with etag; with a fill lease, only if it takes the key's lease (another
// holder is refreshing it, or filling it, otherwise).
func (c *Cache) refreshStale(ctx context.Context, key, name string, ttl time.Duration, fs fillSettings, fill func(context.Context) ([]byte, error), etag string) error {
	if fs.lease == 0 {
		return c.refill(ctx, name, ttl, fs.grace, fill, etag)
	}
	l, err := c.lock(ctx, key, c.fillLeaseObject(name), fs.lease)
	switch {
	case errors.Is(err, ErrLocked), errors.Is(err, ErrConflict):
		return nil // another process holds it: its refresh, or its fill
	case err != nil:
		return err
	}
	_, err = c.holdLease(ctx, l, fs.lease, func() ([]byte, error) {
		// The previous holder may have refreshed it already.
		_, v, attrs, err := c.read(ctx, name)
		switch {
		case err == nil:
			return v, nil
		case errors.Is(err, errStale):
			return nil, c.refill(ctx, name, ttl, fs.grace, fill, attrs.ETag)
		case errors.Is(err, ErrMiss):
			return c.fillAndAdd(ctx, key, name, ttl, fs.grace, fill)
		}
		return nil, err
	})
	return err
}

// refill runs fill and stores its value over the entry read with etag; a
// write that finds the entry changed (someone stored a value, or deleted
// it) stores nothing and is no error.
func (c *Cache) refill(ctx context.Context, name string, ttl, grace time.Duration, fill func(context.Context) ([]byte, error), etag string) error {
	c.count(ctx, &c.stats.fills, telFills)
	v, err := fill(ctx)
	if err != nil {
		return err
	}
	exp, err := c.expiry(ttl)
	if err != nil {
		return err
	}
	err = c.replace(ctx, name, v, exp, int64(grace), etag)
	if errors.Is(err, driver.ErrPreconditionFailed) || errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	return err
}
