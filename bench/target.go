package bench

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/driver/counting"
)

// Target is what a run drives: the cache, or the raw driver.
type Target interface {
	// Name describes the target in reports.
	Name() string
	// Do performs op on key number k of the keyspace and reports whether
	// it found what it looked for: false for a get or has of an absent key,
	// an add of a present one, a delete or incr of an absent one.
	Do(ctx context.Context, op Op, k int, value []byte) (hit bool, err error)
	// Requests returns how many store requests the target has made so
	// far, or -1 when it cannot tell.
	Requests() int64
	// Keyspace is the number of keys the target was made for.
	Keyspace() int
}

// cacheTarget runs operations on a cache.
type cacheTarget struct {
	c        *cache.Cache
	keys     []string
	counters []string
	ttl      time.Duration
}

// CacheTarget returns a Target running the operations on c with keys
// "loadgen-<k>" (and "loadgen-ctr-<k>" for incr). Its requests are the
// driver calls c.Stats counts.
func CacheTarget(c *cache.Cache, keyspace int, ttl time.Duration) Target {
	t := &cacheTarget{c: c, ttl: ttl}
	for k := range keyspace {
		t.keys = append(t.keys, "loadgen-"+strconv.Itoa(k))
		t.counters = append(t.counters, "loadgen-ctr-"+strconv.Itoa(k))
	}
	return t
}

// Name implements Target.
func (t *cacheTarget) Name() string { return "cache" }

// Keyspace implements Target.
func (t *cacheTarget) Keyspace() int { return len(t.keys) }

// Requests implements Target.
func (t *cacheTarget) Requests() int64 {
	s := t.c.Stats()
	return s.Reads + s.Writes + s.DeleteRequests + s.BatchDeletes + s.Lists
}

// Do implements Target.
func (t *cacheTarget) Do(ctx context.Context, op Op, k int, value []byte) (bool, error) {
	key := t.keys[k]
	switch op {
	case OpGet:
		_, err := t.c.Get(ctx, key)
		if errors.Is(err, cache.ErrMiss) {
			return false, nil
		}
		return err == nil, err
	case OpSet:
		return true, t.c.Set(ctx, key, value, t.ttl)
	case OpAdd:
		return t.c.Add(ctx, key, value, t.ttl)
	case OpHas:
		return t.c.Has(ctx, key)
	case OpDelete:
		return t.c.Delete(ctx, key)
	case OpIncr:
		_, err := t.c.Incr(ctx, t.counters[k], 1)
		if errors.Is(err, cache.ErrMiss) {
			_, err = t.c.Add(ctx, t.counters[k], []byte("1"), t.ttl)
			return false, err
		}
		return err == nil, err
	}
	return false, fmt.Errorf("loadgen: unknown operation %q", op)
}

// Cleanup deletes everything a run on t may have written: every key (or
// object) and counter of its keyspace. It is for Targets made by CacheTarget
// and DriverTarget; others have nothing to delete and get nil. It uses ctx
// as given: after a cancelled run, pass a fresh one (see CleanupContext).
func Cleanup(ctx context.Context, t Target) error {
	if c, ok := t.(interface{ cleanup(context.Context) error }); ok {
		return c.cleanup(ctx)
	}
	return nil
}

// CleanupContext returns the context a cleanup after a run on ctx uses:
// ctx's values without its cancellation (a cancelled run must still delete
// what it wrote), bounded by timeout (DefaultCleanupTimeout when not
// positive) so that a store that stopped answering cannot hang it.
func CleanupContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		timeout = DefaultCleanupTimeout
	}
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}

// cleanup deletes every key and counter of the keyspace.
func (t *cacheTarget) cleanup(ctx context.Context) error {
	return t.c.DeleteMany(ctx, append(slices.Clone(t.keys), t.counters...))
}

// driverTarget does the same storage work on the raw driver.
type driverTarget struct {
	d        driver.Driver
	replacer driver.Replacer
	names    []string
	counters []string
	requests *counting.Counter
}

// DriverTarget returns a Target doing each operation's storage work with d
// itself, on objects prefix + hex(sha1(k)) (and of "ctr-<k>" for incr): get
// is a Read, set a Write, add an IfAbsent Write, has a range Read of 32
// bytes, delete a Delete, incr a Read and a Replace (a Write without a
// Replacer). It counts its requests as driver calls, with counting.Wrap
// (which keeps d's optional capabilities).
func DriverTarget(d driver.Driver, prefix string, keyspace int) Target {
	cd, calls := counting.Wrap(d)
	t := &driverTarget{d: cd, requests: calls}
	t.replacer, _ = cd.(driver.Replacer)
	name := func(s string) string {
		sum := sha1.Sum([]byte(s))
		return prefix + hex.EncodeToString(sum[:])
	}
	for k := range keyspace {
		t.names = append(t.names, name(strconv.Itoa(k)))
		t.counters = append(t.counters, name("ctr-"+strconv.Itoa(k)))
	}
	return t
}

// Name implements Target.
func (t *driverTarget) Name() string { return "raw driver" }

// Keyspace implements Target.
func (t *driverTarget) Keyspace() int { return len(t.names) }

// Requests implements Target.
func (t *driverTarget) Requests() int64 { return t.requests.Requests() }

// headerRead is what a raw has reads: as much as the cache's header read.
const headerRead = 32

// Do implements Target.
func (t *driverTarget) Do(ctx context.Context, op Op, k int, value []byte) (bool, error) {
	name := t.names[k]
	switch op {
	case OpGet, OpHas:
		n := int64(-1)
		if op == OpHas {
			n = headerRead
		}
		_, _, err := t.d.Read(ctx, name, 0, n)
		if errors.Is(err, driver.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	case OpSet:
		return true, t.d.Write(ctx, name, newBytesReader(value), &driver.WriteOptions{})
	case OpAdd:
		err := t.d.Write(ctx, name, newBytesReader(value), &driver.WriteOptions{IfAbsent: true})
		if errors.Is(err, driver.ErrPreconditionFailed) {
			return false, nil
		}
		return err == nil, err
	case OpDelete:
		return true, t.d.Delete(ctx, name)
	case OpIncr:
		name = t.counters[k]
		data, attrs, err := t.d.Read(ctx, name, 0, -1)
		if errors.Is(err, driver.ErrNotFound) {
			err = t.d.Write(ctx, name, newBytesReader([]byte("1")), &driver.WriteOptions{IfAbsent: true})
			if errors.Is(err, driver.ErrPreconditionFailed) {
				err = nil
			}
			return false, err
		}
		if err != nil {
			return false, err
		}
		n, err := strconv.ParseInt(string(data), 10, 64)
		if err != nil {
			return false, fmt.Errorf("loadgen: counter %s holds %q", name, data)
		}
		body := newBytesReader(strconv.AppendInt(nil, n+1, 10))
		if t.replacer != nil {
			err = t.replacer.Replace(ctx, name, body, attrs.ETag, &driver.WriteOptions{})
			if errors.Is(err, driver.ErrPreconditionFailed) || errors.Is(err, driver.ErrNotFound) {
				err = nil // lost a race: as the cache would retry, count it done
			}
		} else {
			err = t.d.Write(ctx, name, body, &driver.WriteOptions{})
		}
		return err == nil, err
	}
	return false, fmt.Errorf("loadgen: unknown operation %q", op)
}

func (t *driverTarget) cleanup(ctx context.Context) error {
	names := append(slices.Clone(t.names), t.counters...)
	if bd, ok := t.d.(driver.BatchDeleter); ok {
		var errs []error
		for chunk := range slices.Chunk(names, driver.MaxBatchDelete) {
			if err := bd.DeleteBatch(ctx, chunk); err != nil {
				errs = append(errs, err)
				if ctx.Err() != nil {
					break
				}
			}
		}
		return errors.Join(errs...)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, n := range names {
		g.Go(func() error { return t.d.Delete(gctx, n) })
	}
	return g.Wait()
}

// errPanic marks the error of an operation that panicked.
var errPanic = errors.New("panic")

// do runs t.Do, turning a panic into an error wrapping errPanic: a worker's
// panic must stop the run, not the process, so that what the run wrote is
// still deleted.
func do(ctx context.Context, t Target, op Op, k int, value []byte) (hit bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			hit, err = false, fmt.Errorf("%w: %v", errPanic, r)
		}
	}()
	return t.Do(ctx, op, k, value)
}

// bytesReader is a minimal io.Reader over a byte slice.
type bytesReader struct{ b []byte }

func newBytesReader(b []byte) *bytesReader { return &bytesReader{b} }

// Read implements io.Reader.
func (r *bytesReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
