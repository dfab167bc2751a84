package cache

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/blobcache/blobcache/driver"
)

// Polling of a key whose fill lease another process holds (see GetOrSet).
const (
	fillPollFirst = 5 * time.Millisecond
	fillPollMax   = 500 * time.Millisecond
)

// fillLeaseObject is the object name of the fill lease of the entry name.
func (c *Cache) fillLeaseObject(name string) string {
	return c.prefix + "fill/" + strings.TrimPrefix(name, c.prefix)
}

// fleetFill fills key (whose entry name is name and which has just missed)
// once for the fleet: it takes the key's fill lease and fills, or waits for
// the lease's holder to store the value. See GetOrSet.
func (c *Cache) fleetFill(ctx context.Context, key, name string, ttl time.Duration, fs fillSettings, fill func(context.Context) ([]byte, error)) ([]byte, error) {
	object := c.fillLeaseObject(name)
	wait := fillPollFirst
	for first := true; ; first = false {
		if !first {
			if err := c.fillWait(ctx, name, &wait); err != nil {
				return nil, err
			}
			if _, v, _, err := c.read(ctx, name); err == nil || !errors.Is(err, ErrMiss) {
				return v, err
			}
			_, live, _, err := c.readLease(ctx, object)
			if err != nil && !errors.Is(err, driver.ErrNotFound) {
				return nil, err
			}
			if err == nil && live {
				continue
			}
		}
		l, err := c.lock(ctx, key, object, fs.lease)
		switch {
		case errors.Is(err, ErrLocked), errors.Is(err, ErrConflict):
			continue // held, or lost the race to take it over
		case err != nil:
			return nil, err
		}
		return c.fillHeld(ctx, l, fs, key, name, ttl, fill)
	}
}

// fillWait sleeps before the next poll of a held key: *wait, with jitter,
// then grows *wait by half up to fillPollMax. It fails when ctx ends or no
// caller waits on name any more.
func (c *Cache) fillWait(ctx context.Context, name string, wait *time.Duration) error {
	if !c.fillCallers.any(name) {
		return errCallersGone
	}
	d := *wait/2 + rand.N(*wait/2+1) // in [wait/2, wait]
	*wait = min(*wait*3/2, fillPollMax)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	if !c.fillCallers.any(name) {
		return errCallersGone
	}
	c.count(ctx, &c.stats.fillWaits, telFillWaits)
	return nil
}

// fillHeld fills key while holding its fill lease l (see holdLease).
func (c *Cache) fillHeld(ctx context.Context, l *Lock, fs fillSettings, key, name string, ttl time.Duration, fill func(context.Context) ([]byte, error)) ([]byte, error) {
	return c.holdLease(ctx, l, fs.lease, func() ([]byte, error) {
		// A holder before this one may have stored the value and ended its
		// lease between this cache's miss and its taking the lease.
		if _, v, _, err := c.read(ctx, name); err == nil || !errors.Is(err, ErrMiss) {
			return v, err
		}
		return c.fillAndAdd(ctx, key, name, ttl, fs.grace, fill)
	})
}

// holdLease runs fn while holding the fill lease l, extended every third of
// lease while fn runs. Once fn has stored its value (returned no error) the
// lease is deleted: whoever takes the key's lease next reads the entry
// first. When fn fails (or panics) the lease is released instead, so that a
// waiting process takes it over at once.
func (c *Cache) holdLease(ctx context.Context, l *Lock, lease time.Duration, fn func() ([]byte, error)) (_ []byte, err error) {
	stop := c.keepLease(ctx, l, lease)
	stored := false
	defer func() {
		stop()
		var cerr error
		if stored {
			cerr = c.storeDelete(ctx, l.object)
		} else {
			cerr = c.updateLease(ctx, l, time.Unix(0, 1))
		}
		if cerr != nil && !errors.Is(cerr, driver.ErrNotFound) && c.logger != nil {
			c.logger.WarnContext(ctx, "blobcache: fill lease not ended", "location", c.prefix, "lease", l.object, "err", cerr)
		}
	}()
	v, err := fn()
	stored = err == nil
	return v, err
}

// keepLease extends l by lease every third of lease until stop is called,
// ctx ends or the lease is lost.
func (c *Cache) keepLease(ctx context.Context, l *Lock, lease time.Duration) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(max(lease/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := c.updateLease(ctx, l, c.leaseExpiry(lease))
			if err == nil {
				continue
			}
			if c.logger != nil {
				c.logger.WarnContext(ctx, "blobcache: fill lease not extended", "location", c.prefix, "lease", l.object, "err", err)
			}
			if errors.Is(err, ErrLockLost) {
				return
			}
		}
	}()
	return func() { close(done); <-exited }
}
