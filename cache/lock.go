package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/blobcache/blobcache/driver"
)

// Errors of locks.
var (
	// ErrLocked means Lock found the name held: another holder's lease on
	// it is live.
	ErrLocked = errors.New("locked by another holder")
	// ErrLockLost means a Lock is no longer its holder's: its lease
	// expired (and may since be another holder's), or its object was
	// deleted or changed behind the cache's back. Whatever the lock was
	// protecting may have run unprotected; Extend and Release refuse.
	ErrLockLost = errors.New("lock lost")
)

// Lock is a lease on a name, held by at most one caller across every
// process sharing the store, until it is released or its TTL passes. It is
// not a mutex: a holder that stalls past its TTL (a GC pause, a partition)
// loses the lease without being told, and another caller may then take it;
// Extend and Release then fail with ErrLockLost. Keep the TTL well above the
// work it covers, Extend before it passes, and treat ErrLockLost as "the
// work may have overlapped another holder's".
//
// Only the holder can extend or release it: both are replace-if-unchanged
// writes (driver.Replacer) that succeed only while the stored lease is still
// this Lock's (its token and its version). The lease is an object of its
// own under the cache's location ("<location>/lock/<hash of name>"), not an
// entry: Get, Delete, Clear, Len and culling never see or remove it, and a
// name locked never collides with a key.
//
// A Lock's methods are safe for concurrent use.
type Lock struct {
	c       *Cache
	name    string // the caller's name
	object  string // the lease's object name
	token   string
	expires atomic.Int64 // Unix nanoseconds
}

// Name returns the name the lock was taken on.
func (l *Lock) Name() string { return l.name }

// Token returns the lease's random token: the same in every process only
// for the one holder, so it can fence the work the lock covers (write it
// beside the result, compare before acting).
func (l *Lock) Token() string { return l.token }

// Expires returns when the lease passes, by the cache's clock, as of the
// last Lock or Extend.
func (l *Lock) Expires() time.Time { return time.Unix(0, l.expires.Load()) }

// lockValue is what a lease's entry holds.
func lockValue(token string) []byte { return []byte("blobcache-lock " + token) }

// lockObject is the object name of name's lease.
func (c *Cache) lockObject(name string) string {
	return c.prefix + "lock/" + strings.TrimPrefix(c.objectName(name), c.prefix)
}

// Lock takes a lease on name for ttl (a positive duration: a lease always
// expires). It returns ErrLocked when another holder's lease on name is
// live; a lease that expired, or was released, is taken over. It needs a
// driver that implements driver.Replacer (it is an error wrapping
// errors.ErrUnsupported otherwise): without one, release could not be made
// safe.
//
// It costs one create-if-absent write when name is free, and a header read
// plus a replace-if-unchanged write to take over a dead lease.
func (c *Cache) Lock(ctx context.Context, name string, ttl time.Duration) (_ *Lock, err error) {
	ctx, cl := c.begin(ctx, opLock)
	defer func() { cl.end(ctx, err) }()
	l, err := c.lock(ctx, name, c.lockObject(name), ttl)
	if err != nil {
		return nil, fail("lock", name, err)
	}
	return l, nil
}

// leaseExpiry is when a lease of ttl taken now passes: at the latest the
// last instant an entry's header can hold (in the year 2262), so that a
// huge ttl makes a long lease, never one whose expiry overflows into the
// past or into an undecodable header (a lease anyone could take over).
func (c *Cache) leaseExpiry(ttl time.Duration) time.Time {
	now := c.now().UnixNano()
	if int64(ttl) > math.MaxInt64-now {
		return time.Unix(0, math.MaxInt64)
	}
	return time.Unix(0, now+int64(ttl))
}

// lock takes a lease on name, stored at object (a lock's or a fill's).
func (c *Cache) lock(ctx context.Context, name, object string, ttl time.Duration) (*Lock, error) {
	if err := c.check(ctx); err != nil {
		return nil, err
	}
	if c.replacer == nil {
		return nil, fmt.Errorf("%w: locks need a driver that implements driver.Replacer, and %T does not", errors.ErrUnsupported, c.d)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("%w: a lock's ttl must be positive (a lease always expires), got %v", ErrInvalidTTL, ttl)
	}
	var b [16]byte
	rand.Read(b[:])
	l := &Lock{c: c, name: name, object: object, token: hex.EncodeToString(b[:])}
	for attempt := range maxAttempts {
		if attempt > 0 {
			c.retried(ctx, opLock, l.object, attempt)
		}
		expires := c.leaseExpiry(ttl)
		err := c.writeLease(ctx, l, expires, "", true)
		if err == nil {
			l.expires.Store(expires.UnixNano())
			return l, nil
		}
		if !errors.Is(err, driver.ErrPreconditionFailed) {
			return nil, err
		}
		// A lease is there: live, or dead and to be taken over.
		_, live, etag, err := c.readLease(ctx, l.object)
		if errors.Is(err, driver.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if live {
			return nil, ErrLocked
		}
		err = c.writeLease(ctx, l, expires, etag, false)
		if err == nil {
			l.expires.Store(expires.UnixNano())
			return l, nil
		}
		if !errors.Is(err, driver.ErrPreconditionFailed) && !errors.Is(err, driver.ErrNotFound) {
			return nil, err
		}
	}
	return nil, ErrConflict
}

// Extend makes the lease pass ttl from now, if it is still this Lock's;
// otherwise it returns ErrLockLost. It costs a read and a
// replace-if-unchanged write.
func (l *Lock) Extend(ctx context.Context, ttl time.Duration) (err error) {
	c := l.c
	ctx, cl := c.begin(ctx, opLockExtend)
	defer func() { cl.end(ctx, err) }()
	if err := c.check(ctx); err != nil {
		return fail("extend lock", l.name, err)
	}
	if ttl <= 0 {
		return fail("extend lock", l.name, fmt.Errorf("%w: a lock's ttl must be positive, got %v", ErrInvalidTTL, ttl))
	}
	expires := c.leaseExpiry(ttl)
	if err := c.updateLease(ctx, l, expires); err != nil {
		return fail("extend lock", l.name, err)
	}
	l.expires.Store(expires.UnixNano())
	return nil
}

// Release ends the lease, if it is still this Lock's, so that the next Lock
// of the name takes it at once; otherwise it returns ErrLockLost (the lease
// expired first). It costs a read and a replace-if-unchanged write; the
// released lease stays, expired, until the name is locked again.
func (l *Lock) Release(ctx context.Context) (err error) {
	c := l.c
	ctx, cl := c.begin(ctx, opLockRelease)
	defer func() { cl.end(ctx, err) }()
	if err := c.check(ctx); err != nil {
		return fail("release lock", l.name, err)
	}
	// Expired since the epoch: a Lock of the name takes it over.
	if err := c.updateLease(ctx, l, time.Unix(0, 1)); err != nil {
		return fail("release lock", l.name, err)
	}
	return nil
}

// updateLease rewrites l's lease to pass at expires, if the stored lease is
// still l's and live.
func (c *Cache) updateLease(ctx context.Context, l *Lock, expires time.Time) error {
	token, live, etag, err := c.readLease(ctx, l.object)
	switch {
	case errors.Is(err, driver.ErrNotFound):
		return fmt.Errorf("%w: the lease is gone", ErrLockLost)
	case err != nil:
		return err
	case token != l.token:
		return fmt.Errorf("%w: the lease is another holder's", ErrLockLost)
	case !live:
		return fmt.Errorf("%w: the lease expired", ErrLockLost)
	}
	err = c.writeLease(ctx, l, expires, etag, false)
	if errors.Is(err, driver.ErrPreconditionFailed) || errors.Is(err, driver.ErrNotFound) {
		return fmt.Errorf("%w: the lease changed while it was updated", ErrLockLost)
	}
	return err
}

// readLease reads the lease at object without ever deleting it (a dead
// entry's usual drop could delete a lease another holder just took over).
// token is "" for an object that is no lease of this cache's.
func (c *Cache) readLease(ctx context.Context, object string) (token string, live bool, etag string, err error) {
	data, attrs, err := c.storeRead(ctx, object, 0, readLimit(int64(len(lockValue(""))+64)))
	if err != nil {
		return "", false, "", err
	}
	h, v, derr := decodeEntry(data, object, c.keys, c.maxValueSize)
	if derr != nil {
		return "", false, attrs.ETag, nil // undecodable: dead, to be taken over
	}
	token, ok := strings.CutPrefix(string(v), string(lockValue("")))
	if !ok {
		token = ""
	}
	return token, !h.expired(c.now()), attrs.ETag, nil
}

// writeLease stores l's lease passing at expires: create-if-absent when
// create, else over the lease read with etag.
func (c *Cache) writeLease(ctx context.Context, l *Lock, expires time.Time, etag string, create bool) error {
	e, err := encodeEntry(lockValue(l.token), expires.UnixNano(), 0, false, l.object, c.keys)
	if err != nil {
		return err
	}
	defer e.release()
	if create {
		return c.storeWrite(ctx, l.object, e, &driver.WriteOptions{IfAbsent: true})
	}
	return c.storeReplace(ctx, l.object, e, etag, &driver.WriteOptions{})
}
