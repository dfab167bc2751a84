// Package customdriver is a complete blobcache storage driver written from
// scratch, as a contributor adding a driver would write one: a sorted map in
// memory with configurable artificial latency, so that the contract of
// package driver is visible without any store's API in the way.
//
// A [Store] holds the objects; every [Driver] made on it with [New] is one
// client of that store, as two S3 clients on one bucket are. The latency
// (Options.Latency, plus up to Options.Jitter) is slept at the start of every
// call, honouring the context, which makes the driver useful for seeing how
// the cache behaves on a slow store:
//
//	store := customdriver.NewStore()
//	c, err := cache.New(customdriver.New(store, customdriver.Options{Latency: 20 * time.Millisecond}),
//		cache.WithLocation("app"))
//
// A [*Driver] implements [driver.Driver], [driver.Replacer] (replace if the
// object's version is unchanged; the version, a counter that never repeats
// within a store, is the ETag) and [driver.BatchDeleter] (every name deleted
// in one step). Every change runs under the store's lock, so IfAbsent writes
// and Replace are atomic and all changes are linearizable. The store is not
// visible to other processes, so the conformance suite's cross-process cases
// skip.
//
// # Adding a driver to blobcache
//
//  1. Implement [driver.Driver]. Read the doc comments in package driver:
//     they are the whole contract (range reads, atomic writes, IfAbsent,
//     byte-wise sorted listings with page tokens, ErrNotFound and
//     ErrPreconditionFailed, context cancellation). Where the store can,
//     also implement [driver.Replacer] (needed for Add, Incr and Touch to be
//     atomic across processes) and [driver.BatchDeleter] (Clear and culling
//     in fewer requests).
//  2. Call the conformance suite from the driver's test with a harness that
//     makes an empty store, as driver_test.go in this package does. Make the
//     harness a conformance.ProcessHarness if other processes can open the
//     store; the suite then races writers in separate OS processes too.
//  3. Register a URL scheme in an init function with [driver.Register], as
//     register.go in this package does for slowmem://: the driver's package
//     owns its parameters, their checks, its secrets and its Django BACKEND
//     names. Importing the package then makes cache.Open, cache.OpenConfig
//     and the blobcache command open its URLs.
//  4. When `go test -race` passes, the driver behaves like the others: same
//     culling, same prefix-safe clearing, same expiry. Use it by URL, or
//     with cache.New(yourDriver, options...).
package customdriver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blobcache/blobcache/driver"
)

// Compile-time checks that Driver has the capabilities it claims.
var (
	_ driver.Driver       = (*Driver)(nil)
	_ driver.Replacer     = (*Driver)(nil)
	_ driver.BatchDeleter = (*Driver)(nil)
)

// ErrClosed is returned by calls on a Driver after its Close.
// It wraps [driver.ErrClosed], as the contract asks.
var ErrClosed = fmt.Errorf("customdriver: %w", driver.ErrClosed)

// object is one stored object. Its fields never change after it is stored:
// a write replaces the whole *object, so a reader holding one sees a
// consistent version.
type object struct {
	data     []byte
	modTime  time.Time
	version  uint64
	encoding string // Content-Encoding; kept, never applied
}

// Store is the shared state of the drivers made on it: objects by name and a
// sorted index of the names for listings. Its zero value is not usable; make
// one with NewStore. A Store is safe for concurrent use.
type Store struct {
	mu      sync.RWMutex
	objects map[string]*object
	names   []string // sorted byte-wise; exactly the keys of objects
	gen     uint64   // last version handed out
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{objects: map[string]*object{}}
}

// Len returns the number of objects in the store.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.objects)
}

// Options configure a Driver.
type Options struct {
	// Latency is slept at the start of every call (Read, Write, Replace,
	// Delete, DeleteBatch, List). Zero means none.
	Latency time.Duration
	// Jitter adds a random extra delay in [0, Jitter) to every call.
	Jitter time.Duration
}

// Driver is one client of a Store. It is safe for concurrent use.
type Driver struct {
	s      *Store
	opts   Options
	closed atomic.Bool
}

// New returns a driver on s.
func New(s *Store, opts Options) *Driver {
	return &Driver{s: s, opts: opts}
}

// delay checks that the driver is open and the context live, then sleeps the
// configured latency, returning early with the context's error.
func (d *Driver) delay(ctx context.Context) error {
	if d.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	wait := d.opts.Latency
	if d.opts.Jitter > 0 {
		wait += rand.N(d.opts.Jitter)
	}
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func etagOf(version uint64) string { return `"` + strconv.FormatUint(version, 10) + `"` }

// Read implements driver.Driver. It returns a copy of the requested range
// and the object's attributes, with its version as the ETag.
func (d *Driver) Read(ctx context.Context, name string, offset, length int64) ([]byte, driver.Attributes, error) {
	if err := d.delay(ctx); err != nil {
		return nil, driver.Attributes{}, fmt.Errorf("customdriver: read %q: %w", name, err)
	}
	d.s.mu.RLock()
	o, ok := d.s.objects[name]
	d.s.mu.RUnlock()
	if !ok {
		return nil, driver.Attributes{}, fmt.Errorf("customdriver: read %q: %w", name, driver.ErrNotFound)
	}
	size := int64(len(o.data))
	start := min(offset, size)
	end := size
	if length >= 0 {
		end = min(start+length, size)
	}
	attrs := driver.Attributes{Name: name, Size: size, ModTime: o.modTime, ETag: etagOf(o.version)}
	return bytes.Clone(o.data[start:end]), attrs, nil
}

// Write implements driver.Driver. The body is read whole before the store is
// locked, so a failing body or a cancelled context stores nothing; the
// IfAbsent check and the store are one step under the lock.
func (d *Driver) Write(ctx context.Context, name string, body io.Reader, opts *driver.WriteOptions) error {
	return d.put(ctx, "write", name, body, opts, func(old *object) error {
		if opts.IfAbsent && old != nil {
			return fmt.Errorf("customdriver: write %q: %w: an object exists", name, driver.ErrPreconditionFailed)
		}
		return nil
	})
}

// Replace implements driver.Replacer: it stores body only if the object's
// version still equals etag, checked and stored in one step under the lock.
// opts.IfAbsent is ignored.
func (d *Driver) Replace(ctx context.Context, name string, body io.Reader, etag string, opts *driver.WriteOptions) error {
	return d.put(ctx, "replace", name, body, opts, func(old *object) error {
		switch {
		case old == nil:
			return fmt.Errorf("customdriver: replace %q: %w", name, driver.ErrNotFound)
		case etagOf(old.version) != etag:
			return fmt.Errorf("customdriver: replace %q: %w: the object changed", name, driver.ErrPreconditionFailed)
		}
		return nil
	})
}

// put reads body, then under the lock runs check on the current object (nil
// when absent) and, if it passes, stores the new object.
func (d *Driver) put(ctx context.Context, op, name string, body io.Reader, opts *driver.WriteOptions, check func(old *object) error) error {
	if err := d.delay(ctx); err != nil {
		return fmt.Errorf("customdriver: %s %q: %w", op, name, err)
	}
	data, err := readAll(ctx, body)
	if err != nil {
		return fmt.Errorf("customdriver: %s %q: %w", op, name, err)
	}
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	// Checked under the lock: a cancelled write never lands.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("customdriver: %s %q: %w", op, name, err)
	}
	old := s.objects[name]
	if err := check(old); err != nil {
		return err
	}
	s.gen++
	s.objects[name] = &object{data: data, modTime: time.Now(), version: s.gen, encoding: opts.ContentEncoding}
	if old == nil {
		i, _ := slices.BinarySearch(s.names, name)
		s.names = slices.Insert(s.names, i, name)
	}
	return nil
}

// readAll reads body to the end, stopping early when ctx is cancelled.
func readAll(ctx context.Context, body io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	chunk := make([]byte, 32<<10)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, err := body.Read(chunk)
		buf.Write(chunk[:n])
		if err == io.EOF {
			return buf.Bytes(), nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading body: %w", err)
		}
	}
}

// Delete implements driver.Driver. Deleting an absent object returns nil.
func (d *Driver) Delete(ctx context.Context, name string) error {
	if err := d.delay(ctx); err != nil {
		return fmt.Errorf("customdriver: delete %q: %w", name, err)
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	d.s.deleteLocked(name)
	return nil
}

func (s *Store) deleteLocked(name string) {
	if _, ok := s.objects[name]; !ok {
		return
	}
	delete(s.objects, name)
	if i, found := slices.BinarySearch(s.names, name); found {
		s.names = slices.Delete(s.names, i, i+1)
	}
}

// DeleteBatch implements driver.BatchDeleter: every name is deleted in one
// step under the lock. Absent names are not an error.
func (d *Driver) DeleteBatch(ctx context.Context, names []string) error {
	if err := d.delay(ctx); err != nil {
		return fmt.Errorf("customdriver: delete batch: %w", err)
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	if len(names) > 64 {
		// Rebuild the index once rather than shifting it per name.
		for _, name := range names {
			delete(d.s.objects, name)
		}
		d.s.names = slices.DeleteFunc(d.s.names, func(n string) bool {
			_, ok := d.s.objects[n]
			return !ok
		})
		return nil
	}
	for _, name := range names {
		d.s.deleteLocked(name)
	}
	return nil
}

// List implements driver.Driver. The page token is the last name of the
// previous page: the next page starts just after it, so a listing stays
// correct while objects are added or deleted between pages.
func (d *Driver) List(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	if err := d.delay(ctx); err != nil {
		return nil, fmt.Errorf("customdriver: list %q: %w", opts.Prefix, err)
	}
	size := opts.PageSize
	if size <= 0 || size > driver.MaxListPageSize {
		size = driver.MaxListPageSize
	}
	s := d.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, _ := slices.BinarySearch(s.names, opts.Prefix)
	if opts.PageToken != "" {
		// Start after the token's name, whether or not it still exists.
		j, found := slices.BinarySearch(s.names, opts.PageToken)
		if found {
			j++
		}
		i = max(i, j)
	}
	page := &driver.ListPage{}
	for ; i < len(s.names) && strings.HasPrefix(s.names[i], opts.Prefix); i++ {
		if len(page.Objects) == size {
			page.NextPageToken = page.Objects[size-1].Name
			break
		}
		o := s.objects[s.names[i]]
		page.Objects = append(page.Objects, driver.Attributes{
			Name: s.names[i], Size: int64(len(o.data)), ModTime: o.modTime, ETag: etagOf(o.version),
		})
	}
	return page, nil
}

// Close implements driver.Driver. It ends this client only; the store and
// its objects stay for the other drivers on it. A second Close returns
// ErrClosed.
func (d *Driver) Close() error {
	if d.closed.Swap(true) {
		return ErrClosed
	}
	return nil
}
