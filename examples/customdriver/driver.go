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
//  1. Implement [driver.Driver]. The doc comments of package driver are the
//     whole contract; read them all, and these parts first: the package's
//     "Errors" section (one convention: wrap the kind, keep the store's
//     error, start the message with the package name, the operation and the
//     quoted name); [driver.Attributes] (Name, Size and ModTime always set,
//     ETag for a Replacer); [driver.ListOptions].PageToken, which has
//     start-after semantics (the next page starts strictly after the last
//     name returned, so a token is a name, never an offset); ModTime
//     ([driver.Attributes].ModTime: never zero, never earlier after an
//     overwrite); [driver.Driver].Close and [driver.ErrClosed] (every call
//     after Close returns an error wrapping it and touches nothing); and the
//     optional interfaces: [driver.Replacer] (needed for Incr, Decr, Touch
//     and an Add over an expired entry to be atomic, also across processes;
//     it ignores WriteOptions.IfAbsent, and a failing body stores nothing), [driver.BatchDeleter] (Clear and culling
//     in fewer requests) and [driver.NameValidator] (for a store that
//     rewrites some names). Read's bytes belong to the caller: return a
//     copy, as [Driver.Read] does.
//  2. If the store departs from the contract in a known, documented way
//     (MinIO cannot list an object "a" beside objects under "a/"), make the
//     harness of step 3 implement the methods of conformance.StoreLimits it
//     needs: the suite then leaves out what the store cannot do, and each
//     case it skips says which limit it skips for. This driver has no such
//     limit.
//  3. Call conformance.Run from the driver's test with a harness that makes
//     an empty store, as TestConformance in driver_test.go does. Every
//     MakeDriver of one harness reaches the same store, as a second client
//     would.
//  4. If other processes can open the store, make the harness a
//     conformance.ProcessHarness (Locator and OpenLocator): the suite then
//     races writers in separate OS processes too. This store lives in one
//     process, so those cases skip here, saying so.
//  5. Run conformance.Compare with the driver beside the built-in ones, as
//     TestCompare does with drivers/mem and drivers/file: one scripted
//     sequence of cache operations on each, failing with a go-cmp diff
//     where two outcomes differ (culling, surviving entries, counts,
//     prefix-safe clearing).
//  6. Register a URL scheme in an init function with [driver.Register], as
//     register.go in this package does for slowmem://: the driver's package
//     owns its parameters, their checks, its secrets and its Django BACKEND
//     names. Importing the package then makes cache.Open, cache.OpenConfig
//     and the blobcache command open its URLs (TestOpenByURL, and Example
//     in example_test.go).
//  7. Read a failure by its name and message. A failing case is the subtest
//     TestConformance/Driver/<Case>/<root|prefix> (Cache and Hostile for
//     the other two sections; "prefix" runs the case under "pfx/" beside
//     decoys it must not touch). Its message names the call and what was
//     expected and quotes the contract clause it checks; where a listing is
//     wrong, a go-cmp diff (-want +got) shows the names missing (-) and
//     extra (+). Run one case alone with
//     go test -run 'TestConformance/Driver/Pagination' ./yourdriver/.
//
// When go test -race passes, the driver behaves like the others: same
// culling, same prefix-safe clearing, same expiry. Use it by URL, or with
// cache.New(yourDriver, options...). BenchmarkCache in bench_test.go runs
// package bench's benchmarks with the same harness.
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

// ErrClosed is what every call on a Driver after its Close returns, wrapped
// with the operation and the name. It wraps [driver.ErrClosed], as the
// contract asks, so errors.Is finds either.
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

// live returns ErrClosed after Close, else the context's error (nil while
// it is live). Every method starts with it, through delay, so a call made
// after Close touches nothing.
func (d *Driver) live(ctx context.Context) error {
	if d.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// delay checks that the driver is open and the context live, then sleeps the
// configured latency, returning early with the context's error. It checks
// again after the wait: a call that was sleeping when Close ran does
// nothing either.
func (d *Driver) delay(ctx context.Context) error {
	if err := d.live(ctx); err != nil {
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
		return d.live(ctx)
	}
}

func etagOf(version uint64) string { return `"` + strconv.FormatUint(version, 10) + `"` }

// Read implements driver.Driver. It returns a copy of the requested range
// (the bytes belong to the caller, who may change them) and the object's
// attributes, with its version as the ETag.
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
// As with Write, the body is read whole first, so a failing body stores
// nothing. opts.IfAbsent is ignored, as the contract asks: the etag is
// Replace's condition.
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
