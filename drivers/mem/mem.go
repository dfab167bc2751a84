// Package mem is the in-memory blobcache driver, behind mem:// URLs: a store
// of its own in the process's memory, which depends only on the standard
// library, package driver and an ordered index (github.com/google/btree).
//
// # Design
//
// A store keeps each object as an immutable value (its bytes, its ModTime
// and its version) that a change replaces whole, never edits. Names hash
// (FNV-1a) onto a fixed set of shards; each shard is a lock and a map from
// the names of the shard to their entries, so that a Read is one map lookup
// and writers of different names rarely wait for each other. Besides the
// shards, one B-tree holds every entry in byte-wise order of name, under a
// read-write lock of its own, for List.
//
// Every change to a name (Write, Replace, Delete, DeleteBatch) runs under
// its shard's lock: the check (IfAbsent, Replace's version) and the change
// are one step, which makes IfAbsent and Replace atomic and the changes to
// each name linearizable. An overwrite swaps the entry's value atomically;
// creating or deleting a name also updates the B-tree, under its lock,
// taken after the shard's lock. DeleteBatch holds the locks of all the
// shards of its names (in shard order, so batches never deadlock) and the
// B-tree's lock at once, so a batch is one step for readers and listers
// alike. A body is read into a buffer of the store's own before any lock is
// taken; a body that fails stores nothing.
//
// The version of an object is a number from a counter that never repeats
// within the store; it is the ETag that Read returns and Replace compares.
// Writing the same bytes again is a new version.
//
// A List page walks the B-tree from its start under the B-tree's read lock:
// O(page + log n), never a sort of the store. The page token is the last
// name of the page, encoded; the next page starts strictly after it, so
// while writers run concurrently, a name present throughout a listing is
// listed exactly once, and names come in strictly increasing order.
//
// Data is never aliased: Write copies the body into memory only the store
// holds, and Read returns a fresh copy of the range asked for, allocating
// exactly min(size-offset, length) bytes (size-offset for a negative
// length, none past the end). The store keeps a body's bytes in a buffer of
// their size, never in one grown to up to twice it.
//
// # Names
//
// Names are kept and listed as given, so every name that
// [driver.ValidateName] accepts is stored, listed and deleted exactly as
// given, including names that other stores rewrite, such as "a../b" or
// "x__0x2f__y". Invalid names are refused by every method with
// [driver.ErrInvalidName] ([Driver.ValidateName]). List prefixes are
// compared byte for byte and need not be valid names.
//
// # Stores and handles
//
// [New] returns a handle on a private store, freed by its Close. [Open]
// returns a handle on a store named in the process, shared by every handle
// opened with the name, which lives as long as the process. Calls on a
// closed handle fail.
//
// A [*Driver] implements [driver.Driver], [driver.BatchDeleter],
// [driver.Replacer] and [driver.NameValidator], and is safe for concurrent
// use.
package mem

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/google/btree"

	"github.com/blobcache/blobcache/driver"
)

// errClosed is returned by calls made after Close.
var errClosed = fmt.Errorf("mem: %w", driver.ErrClosed)

// shardCount is the number of shards (and name locks) of a store.
const shardCount = 64

// treeDegree is the B-tree's degree: nodes of 31 to 63 entries.
const treeDegree = 32

// object is one version of an object. It is never modified once stored.
type object struct {
	data    []byte
	modTime time.Time
	etag    string // the version, quoted
}

// entry is a name that has an object. It is in its shard's map and in the
// B-tree exactly while the name has an object; obj is never nil.
type entry struct {
	name string
	obj  atomic.Pointer[object]
}

// shard holds the entries of the names that hash onto it.
type shard struct {
	// mu is held for writing across every change of a name of the shard
	// and for reading across a lookup in m.
	mu sync.RWMutex
	m  map[string]*entry
	// Padding to a 64-byte cache line, so that shards' locks share none.
	_ [(64 - (unsafe.Sizeof(sync.RWMutex{})+unsafe.Sizeof(map[string]*entry(nil)))%64) % 64]byte
}

// store is one in-memory store.
type store struct {
	shards [shardCount]shard

	// treeMu guards tree. It is taken after a shard's lock, never before.
	treeMu sync.RWMutex
	tree   *btree.BTreeG[*entry] // every entry, by name

	gen atomic.Uint64 // last version handed out
}

func entryLess(a, b *entry) bool { return a.name < b.name }

func newStore() *store {
	s := &store{tree: btree.NewG(treeDegree, entryLess)}
	for i := range s.shards {
		s.shards[i].m = map[string]*entry{}
	}
	return s
}

// shardIndex returns the index of name's shard (FNV-1a).
func shardIndex(name string) int {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	return int(h % shardCount)
}

// newObject returns a new version holding data.
func (s *store) newObject(data []byte) *object {
	v := s.gen.Add(1)
	var b [24]byte
	etag := strconv.AppendUint(append(b[:0], '"'), v, 10)
	return &object{data: data, modTime: time.Now(), etag: string(append(etag, '"'))}
}

// insertLocked adds a new entry for name, which has none; the caller holds
// the lock of sh, name's shard.
func (s *store) insertLocked(sh *shard, name string, o *object) {
	e := &entry{name: name}
	e.obj.Store(o)
	s.treeMu.Lock()
	s.tree.ReplaceOrInsert(e)
	s.treeMu.Unlock()
	sh.m[name] = e
}

// free drops every object of the store.
func (s *store) free() {
	for i := range s.shards {
		s.shards[i].mu.Lock()
		defer s.shards[i].mu.Unlock()
	}
	s.treeMu.Lock()
	defer s.treeMu.Unlock()
	for i := range s.shards {
		s.shards[i].m = map[string]*entry{}
	}
	s.tree.Clear(false)
}

var (
	namedMu sync.Mutex
	named   = map[string]*store{}
)

// Driver is a handle on an in-memory store.
type Driver struct {
	s       *store
	private bool
	closed  atomic.Bool
}

// Compile-time checks.
var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.BatchDeleter  = (*Driver)(nil)
	_ driver.Replacer      = (*Driver)(nil)
	_ driver.NameValidator = (*Driver)(nil)
)

// New returns a driver on a fresh store that nothing else shares. Close
// frees it.
func New() *Driver {
	return &Driver{s: newStore(), private: true}
}

// Open returns a driver on the store called name, which every Open with the
// same name in this process shares, as mem://name URLs do. The store lives as
// long as the process; Close ends only this handle. An empty name is a fresh
// private store, as [New].
func Open(name string) *Driver {
	if name == "" {
		return New()
	}
	namedMu.Lock()
	defer namedMu.Unlock()
	s, ok := named[name]
	if !ok {
		s = newStore()
		named[name] = s
	}
	return &Driver{s: s}
}

// ValidateName implements [driver.NameValidator]. Names are stored and
// listed as given, so this is [driver.ValidateName]: every valid name
// round-trips exactly. Every method refuses an invalid name with this error.
func (d *Driver) ValidateName(name string) error {
	return driver.ValidateName(name)
}

// opError is the error of an operation on a name: cheap to make, as a miss
// is a common outcome of Read.
type opError struct {
	op, name string
	err      error
}

// Error implements error.
func (e *opError) Error() string {
	return "mem: " + e.op + " " + strconv.Quote(e.name) + ": " + e.err.Error()
}

// Unwrap returns the error's kind or cause.
func (e *opError) Unwrap() error { return e.err }

// begin checks what every call on a name checks first: the handle is open,
// the context is not done and the name is valid.
func (d *Driver) begin(ctx context.Context, op, name string) error {
	if d.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return &opError{op, name, err}
	}
	if err := driver.ValidateName(name); err != nil {
		return fmt.Errorf("mem: %s: %w", op, err)
	}
	return nil
}

// Read implements [driver.Driver]. The bytes are a copy of the range only
// the caller holds; Attributes.ETag is the object's version.
func (d *Driver) Read(ctx context.Context, name string, offset, length int64) ([]byte, driver.Attributes, error) {
	if err := d.begin(ctx, "read", name); err != nil {
		return nil, driver.Attributes{}, err
	}
	sh := &d.s.shards[shardIndex(name)]
	sh.mu.RLock()
	e := sh.m[name]
	var o *object
	if e != nil {
		o = e.obj.Load()
	}
	sh.mu.RUnlock()
	if o == nil {
		return nil, driver.Attributes{}, &opError{"read", name, driver.ErrNotFound}
	}
	size := int64(len(o.data))
	n := max(size-offset, 0)
	if length >= 0 && length < n {
		n = length
	}
	buf := make([]byte, n)
	if n > 0 {
		copy(buf, o.data[offset:])
	}
	return buf, driver.Attributes{Name: name, Size: size, ModTime: o.modTime, ETag: o.etag}, nil
}

// Write implements [driver.Driver]. The body is read into the store's own
// buffer before any lock is taken; IfAbsent is checked and the object
// stored in one step under the name's lock.
func (d *Driver) Write(ctx context.Context, name string, body io.Reader, opts *driver.WriteOptions) error {
	return d.put(ctx, "write", name, body, func(cur *object) error {
		if opts.IfAbsent && cur != nil {
			return &opError{"write", name, errExists}
		}
		return nil
	})
}

// errExists is why an IfAbsent write is refused.
var errExists = fmt.Errorf("%w: an object exists", driver.ErrPreconditionFailed)

// errChanged is why a Replace with a stale ETag is refused.
var errChanged = fmt.Errorf("%w: the object changed", driver.ErrPreconditionFailed)

// Replace implements [driver.Replacer]: under the name's lock it compares
// etag with the object's version and stores the body only if they are
// equal. opts.IfAbsent is ignored.
func (d *Driver) Replace(ctx context.Context, name string, body io.Reader, etag string, opts *driver.WriteOptions) error {
	return d.put(ctx, "replace", name, body, func(cur *object) error {
		switch {
		case cur == nil:
			return &opError{"replace", name, driver.ErrNotFound}
		case etag != cur.etag:
			return &opError{"replace", name, errChanged}
		}
		return nil
	})
}

// put reads body, then under the name's lock runs check on the current
// object (nil if none) and, if it passes, stores the new one.
func (d *Driver) put(ctx context.Context, op, name string, body io.Reader, check func(cur *object) error) error {
	if err := d.begin(ctx, op, name); err != nil {
		return err
	}
	buf := buffer{ctx: ctx}
	if _, err := io.Copy(&buf, body); err != nil {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			return fmt.Errorf("mem: %s %q: %w (reading body: %w)", op, name, cerr, err)
		}
		return fmt.Errorf("mem: %s %q: reading body: %w", op, name, err)
	}
	if err := ctx.Err(); err != nil {
		return &opError{op, name, err}
	}
	s := d.s
	sh := &s.shards[shardIndex(name)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if d.closed.Load() {
		return errClosed // and a private store stays freed
	}
	e := sh.m[name]
	var cur *object
	if e != nil {
		cur = e.obj.Load()
	}
	if err := check(cur); err != nil {
		return err
	}
	o := s.newObject(buf.bytes())
	if e != nil {
		e.obj.Store(o)
		return nil
	}
	s.insertLocked(sh, name, o)
	return nil
}

// Delete implements [driver.Driver].
func (d *Driver) Delete(ctx context.Context, name string) error {
	if err := d.begin(ctx, "delete", name); err != nil {
		return err
	}
	s := d.s
	sh := &s.shards[shardIndex(name)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.m[name]; e != nil {
		s.treeMu.Lock()
		s.tree.Delete(e)
		s.treeMu.Unlock()
		delete(sh.m, name)
	}
	return nil
}

// ReadDelete implements [driver.ReadDeleter]: the object is read and
// removed in one step under the name's lock.
func (d *Driver) ReadDelete(ctx context.Context, name string, length int64) ([]byte, driver.Attributes, error) {
	if err := d.begin(ctx, "read and delete", name); err != nil {
		return nil, driver.Attributes{}, err
	}
	s := d.s
	sh := &s.shards[shardIndex(name)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[name]
	var o *object
	if e != nil {
		o = e.obj.Load()
	}
	if o == nil {
		return nil, driver.Attributes{}, &opError{"read and delete", name, driver.ErrNotFound}
	}
	buf := make([]byte, min(int64(len(o.data)), max(length, 0)))
	copy(buf, o.data)
	s.treeMu.Lock()
	s.tree.Delete(e)
	s.treeMu.Unlock()
	delete(sh.m, name)
	return buf, driver.Attributes{Name: name, Size: int64(len(o.data)), ModTime: o.modTime, ETag: o.etag}, nil
}

// DeleteBatch implements [driver.BatchDeleter]: every name is deleted in one
// step, under the locks of all the names' shards and the B-tree's lock. An
// invalid name fails the batch before anything is deleted.
func (d *Driver) DeleteBatch(ctx context.Context, names []string) error {
	if d.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem: delete batch: %w", err)
	}
	for _, name := range names {
		if err := driver.ValidateName(name); err != nil {
			return fmt.Errorf("mem: delete batch: %w", err) // nothing deleted
		}
	}
	s := d.s
	// Take the locks of all the shards, in index order (no deadlock with
	// another batch), so that the batch is one step.
	var held [shardCount]bool
	for _, name := range names {
		held[shardIndex(name)] = true
	}
	for i := range held {
		if held[i] {
			s.shards[i].mu.Lock()
			defer s.shards[i].mu.Unlock()
		}
	}
	if d.closed.Load() {
		return errClosed
	}
	s.treeMu.Lock()
	defer s.treeMu.Unlock()
	for _, name := range names {
		sh := &s.shards[shardIndex(name)]
		if e := sh.m[name]; e != nil {
			s.tree.Delete(e)
			delete(sh.m, name)
		}
	}
	return nil
}

// List implements [driver.Driver]. A page is read under the B-tree's read
// lock, from the first name after the page token that has the prefix:
// O(page + log n). The objects have Name, Size and ModTime set.
func (d *Driver) List(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	if d.closed.Load() {
		return nil, errClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, &opError{"list", opts.Prefix, err}
	}
	size := opts.PageSize
	if size <= 0 || size > driver.MaxListPageSize {
		size = driver.MaxListPageSize
	}
	start := opts.Prefix
	if opts.PageToken != "" {
		after, err := base64.RawURLEncoding.DecodeString(opts.PageToken)
		if err != nil {
			return nil, fmt.Errorf("mem: list %q: malformed page token", opts.Prefix)
		}
		// The least name after the token's: names never hold a NUL byte,
		// but nothing is lost if a token ever did.
		if next := string(after) + "\x00"; next > start {
			start = next
		}
	}
	page := &driver.ListPage{Objects: make([]driver.Attributes, 0, min(size, 64))}
	more := false
	s := d.s
	s.treeMu.RLock()
	s.tree.AscendGreaterOrEqual(&entry{name: start}, func(e *entry) bool {
		if !strings.HasPrefix(e.name, opts.Prefix) {
			return false
		}
		if len(page.Objects) == size {
			more = true
			return false
		}
		o := e.obj.Load()
		page.Objects = append(page.Objects, driver.Attributes{Name: e.name, Size: int64(len(o.data)), ModTime: o.modTime})
		return true
	})
	s.treeMu.RUnlock()
	if more {
		page.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(page.Objects[len(page.Objects)-1].Name))
	}
	return page, nil
}

// Close implements [driver.Driver]. A private store is freed; a named store
// stays for the other handles and later Opens. Closing a handle twice
// fails.
func (d *Driver) Close() error {
	if d.closed.Swap(true) {
		return errClosed
	}
	if d.private {
		d.s.free()
	}
	return nil
}
