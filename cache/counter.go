package cache

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/blobcache/blobcache/driver"
)

// Increment adds delta to key's integer value and returns the result, as
// Incr does, except that a key with no live entry is created holding
// initial+delta, expiring after ttl: the one atomic step a rate limiter or a
// windowed counter needs (Django's incr fails on a missing key, so that
// would take an Incr, Add, Incr loop in which the key can expire between
// steps). An existing entry keeps its expiry; ttl applies only when the key
// is created. It returns ErrNotInteger for a value that is not an integer
// and ErrOverflow when the result would not fit an int64.
//
// Concurrent Increments of one key in one process, with the same initial
// and ttl, are combined: while one conditional write is in flight, the
// others queue, and the next write applies their sum at once. Each caller
// still gets its own result, as if the increments had run one after
// another in the order they queued (distinct results, none lost, none
// doubled), and a caller whose context ends while it waits returns with
// its context's error, its increment then applied or not. Across processes
// the update is atomic where the driver implements Replacer.
func (c *Cache) Increment(ctx context.Context, key string, delta, initial int64, ttl time.Duration) (_ int64, err error) {
	ctx, cl := c.begin(ctx, opIncrement)
	defer func() { cl.end(ctx, err) }()
	c.stats.incrs.Add(1)
	n, err := c.increment(ctx, key, delta, initial, ttl)
	if err != nil {
		return 0, fail("increment", key, err)
	}
	return n, nil
}

// counterKey names a queue of combinable increments: same object, same
// starting value and expiry when created.
type counterKey struct {
	name    string
	initial int64
	ttl     time.Duration
}

// counterBatch is the increments queued while a write was in flight.
type counterBatch struct {
	deltas  []int64
	results []int64
	err     error
	done    chan struct{}
}

// counterQueue is one key's queue: the batch filling, and whether a writer
// goroutine is applying batches.
type counterQueue struct {
	pending *counterBatch
	running bool
}

// counters are a cache's increment queues, by counterKey.
type counters struct {
	mu     sync.Mutex
	queues map[counterKey]*counterQueue
}

func (c *Cache) increment(ctx context.Context, key string, delta, initial int64, ttl time.Duration) (int64, error) {
	if err := c.check(ctx); err != nil {
		return 0, err
	}
	if _, err := c.expiry(ttl); err != nil {
		return 0, err
	}
	k := counterKey{name: c.objectName(key), initial: initial, ttl: ttl}
	c.counters.mu.Lock()
	if c.counters.queues == nil {
		c.counters.queues = map[counterKey]*counterQueue{}
	}
	q := c.counters.queues[k]
	if q == nil {
		q = &counterQueue{}
		c.counters.queues[k] = q
	}
	if q.pending == nil {
		q.pending = &counterBatch{done: make(chan struct{})}
	}
	b := q.pending
	i := len(b.deltas)
	b.deltas = append(b.deltas, delta)
	if !q.running {
		q.running = true
		// The writer outlives a caller that gives up; it keeps the first
		// caller's values (trace, deadline aside).
		go c.applyCounter(context.WithoutCancel(ctx), k, q)
	}
	c.counters.mu.Unlock()
	select {
	case <-b.done:
		if b.err != nil {
			return 0, b.err
		}
		return b.results[i], nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// counterTimeout bounds one batch's writes, so that a store that hangs
// does not keep a writer goroutine for ever (callers leave by their
// contexts).
const counterTimeout = 5 * time.Minute

// applyCounter applies k's batches one after another until none is queued.
func (c *Cache) applyCounter(ctx context.Context, k counterKey, q *counterQueue) {
	for {
		c.counters.mu.Lock()
		b := q.pending
		q.pending = nil
		if b == nil {
			q.running = false
			delete(c.counters.queues, k)
			c.counters.mu.Unlock()
			return
		}
		c.counters.mu.Unlock()
		bctx, cancel := context.WithTimeout(ctx, counterTimeout)
		base, err := c.applyBatch(bctx, k, b.deltas)
		cancel()
		if err == nil {
			b.results = make([]int64, len(b.deltas))
			sum := base
			for i, d := range b.deltas {
				sum += d // no overflow: applyBatch checked every prefix
				b.results[i] = sum
			}
		}
		b.err = err
		close(b.done)
	}
}

// addChecked returns n+d, or false when it overflows.
func addChecked(n, d int64) (int64, bool) {
	s := n + d
	return s, !((d > 0 && s < n) || (d < 0 && s > n))
}

// applyBatch adds the sum of deltas to k's counter in one conditional
// write, creating it from k.initial when it has no live entry, and returns
// the value before the batch. Every prefix sum is checked for overflow.
func (c *Cache) applyBatch(ctx context.Context, k counterKey, deltas []int64) (int64, error) {
	total := func(base int64) (int64, error) {
		sum := base
		for _, d := range deltas {
			var ok bool
			if sum, ok = addChecked(sum, d); !ok {
				return 0, ErrOverflow
			}
		}
		return sum, nil
	}
	var buf [20]byte
	for attempt := range maxAttempts {
		if attempt > 0 {
			c.retried(ctx, opIncrement, k.name, attempt)
		}
		h, v, attrs, err := c.read(ctx, k.name)
		var dead *DeadEntryError
		if errors.As(err, &dead) {
			return 0, err // a dead entry in the way that cannot be deleted
		}
		if errors.Is(err, ErrMiss) {
			stale := errors.Is(err, errStale)
			sum, err := total(k.initial)
			if err != nil {
				return 0, err
			}
			exp, _ := c.expiry(k.ttl) // checked by increment
			startPass, err := c.cullIfFull(ctx)
			if err != nil {
				return 0, err
			}
			value := strconv.AppendInt(buf[:0], sum, 10)
			if stale {
				// A stale entry (WithStaleGrace) is in the way: over it.
				err = c.replace(ctx, k.name, value, exp, 0, attrs.ETag)
			} else {
				err = c.write(ctx, k.name, value, exp, 0, &driver.WriteOptions{IfAbsent: true})
			}
			startPass()
			if err == nil {
				return k.initial, nil
			}
			if !errors.Is(err, driver.ErrPreconditionFailed) && !errors.Is(err, driver.ErrNotFound) {
				return 0, err
			}
			continue // created or changed meanwhile: add to it
		}
		if err != nil {
			return 0, err
		}
		n, perr := strconv.ParseInt(string(v), 10, 64)
		if perr != nil {
			return 0, ErrNotInteger
		}
		sum, err := total(n)
		if err != nil {
			return 0, err
		}
		err = c.replace(ctx, k.name, strconv.AppendInt(buf[:0], sum, 10), h.expiry, h.grace, attrs.ETag)
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, driver.ErrPreconditionFailed), errors.Is(err, driver.ErrNotFound):
			continue
		default:
			return 0, err
		}
	}
	return 0, ErrConflict
}
