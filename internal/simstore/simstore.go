// Package simstore is a simulated object store that keeps only names: a
// [driver.Driver] (and [driver.BatchDeleter]) for benchmarks that need
// millions of entries without their bodies, and that count every request
// the cache makes.
//
// For each object it keeps the name, a size (the length of the body
// written) and a modification time; the bodies are read to the end and
// discarded. Lists, writes and deletes follow the driver contract exactly
// (names in byte order, start-after page tokens, IfAbsent in one atomic
// step, deletes of absent names succeed), so a cache over a Store counts,
// lists and culls as it would over a real store.
//
// # Reads
//
// A store without bodies cannot keep the contract's promise that Read
// returns the bytes written. Read answers exactly what it can answer
// without them and refuses the rest:
//   - an absent name: an error wrapping [driver.ErrNotFound], as the
//     contract asks;
//   - a read that returns no bytes (length 0, as the cache's header probe
//     after an empty listing is, or an offset at or past the end): no
//     bytes and the object's attributes, which is exact;
//   - any read that would return bytes: an error wrapping [ErrNoBodies],
//     which is of no kind the contract names, so a cache passes it to its
//     caller as a store failure and never takes it for a miss.
//
// So a cache over a Store can write, count, list, cull, delete and clear,
// but a Get of a present key fails. Culling never reads an entry.
//
// # Memory
//
// Names live in append-only arenas of 1 MiB and the ordered index
// (github.com/google/btree) holds 24-byte pointer-free items referring to
// them, so the store adds almost nothing to the garbage collector's marking
// work however many names it holds: a benchmark's client, sharing the heap,
// is not slowed by the simulated store as it would not be by a remote one.
// An object costs its name's bytes, the 24-byte item and the B-tree's slack
// (about 80 bytes an object for a cache's 46-byte entry names). A deleted
// name's arena bytes are not reused: the store is meant for one benchmark
// run, not for churning forever.
package simstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/google/btree"

	"github.com/blobcache/blobcache/driver"
)

// ErrNoBodies is wrapped by a Read that would have to return bytes: the
// store does not keep them. It is none of the driver contract's error kinds.
var ErrNoBodies = errors.New("simulated store keeps no bodies")

var (
	_ driver.Driver       = (*Store)(nil)
	_ driver.BatchDeleter = (*Store)(nil)
)

// Counts are the calls a Store answered, by kind. Fill is not counted.
type Counts struct {
	// Reads, Writes (conditional ones included), Deletes, BatchDeletes
	// (DeleteBatch calls) and Lists (pages) count calls, one request each
	// on a real store such as S3.
	Reads, Writes, Deletes, BatchDeletes, Lists int64
	// ListedObjects counts the objects all Lists returned, and
	// BatchDeletedNames the names all DeleteBatch calls were given.
	ListedObjects, BatchDeletedNames int64
}

// Requests returns the calls of every kind: the requests they would cost.
func (c Counts) Requests() int64 {
	return c.Reads + c.Writes + c.Deletes + c.BatchDeletes + c.Lists
}

// Sub returns c minus d, kind by kind: the calls made between two snapshots.
func (c Counts) Sub(d Counts) Counts {
	return Counts{
		Reads: c.Reads - d.Reads, Writes: c.Writes - d.Writes, Deletes: c.Deletes - d.Deletes,
		BatchDeletes: c.BatchDeletes - d.BatchDeletes, Lists: c.Lists - d.Lists,
		ListedObjects:     c.ListedObjects - d.ListedObjects,
		BatchDeletedNames: c.BatchDeletedNames - d.BatchDeletedNames,
	}
}

// Store is a simulated store of names. It is safe for concurrent use. The
// zero value is not usable: call New.
type Store struct {
	closed atomic.Bool

	// Latency, when positive, is how long every request waits before it
	// acts (a store across a network); a context ending cuts the wait
	// short with its error. Set it before the store is used.
	Latency time.Duration

	reads, writes, deletes, batchDeletes, lists atomic.Int64
	listedObjects, batchDeletedNames            atomic.Int64

	// mu guards everything below: the tree, the arenas and query. One
	// mutex, not a read-write one, since every lookup sets query.
	mu   sync.Mutex
	tree *btree.BTreeG[item]
	// arenas hold the names' bytes, each at most arenaSize; bytes once
	// written never change.
	arenas [][]byte
	// query is the name the item with ref queryRef stands for: the key of
	// the lookup under way.
	query string
}

// item is one object in the index. It holds no pointer, so the garbage
// collector never scans the tree's item arrays.
type item struct {
	ref  uint64 // arena<<31 | offset<<11 | length; queryRef: Store.query
	size int64  // bytes written
	mod  int64  // modification time, Unix nanoseconds
}

const (
	arenaBits  = 20 // an arena is 1 MiB
	arenaSize  = 1 << arenaBits
	lengthBits = 11 // a name is at most driver.MaxNameLength (1024) bytes
	treeDegree = 64
	queryRef   = ^uint64(0)
)

// New returns an empty store.
func New() *Store {
	s := &Store{}
	s.tree = btree.NewG(treeDegree, func(a, b item) bool { return s.name(a) < s.name(b) })
	return s
}

// name returns the name an item refers to, without copying: it must not
// escape the store (see clone). The caller holds mu.
func (s *Store) name(it item) string {
	if it.ref == queryRef {
		return s.query
	}
	a := it.ref >> (arenaBits + lengthBits)
	off := (it.ref >> lengthBits) & (arenaSize - 1)
	n := it.ref & (1<<lengthBits - 1)
	if n == 0 {
		return ""
	}
	return unsafe.String(&s.arenas[a][off], n)
}

// intern copies name into the arenas and returns its ref. The caller holds
// mu.
func (s *Store) intern(name string) uint64 {
	last := len(s.arenas) - 1
	if last < 0 || len(s.arenas[last])+len(name) > arenaSize {
		s.arenas = append(s.arenas, make([]byte, 0, arenaSize))
		last++
	}
	off := len(s.arenas[last])
	s.arenas[last] = append(s.arenas[last], name...)
	return uint64(last)<<(arenaBits+lengthBits) | uint64(off)<<lengthBits | uint64(len(name))
}

// lookup returns the item of name. The caller holds mu.
func (s *Store) lookup(name string) (item, bool) {
	s.query = name
	it, ok := s.tree.Get(item{ref: queryRef})
	s.query = ""
	return it, ok
}

// remove deletes name's item, if any. The caller holds mu.
func (s *Store) remove(name string) {
	s.query = name
	s.tree.Delete(item{ref: queryRef})
	s.query = ""
}

// put stores name with size and modification time mod (Unix nanoseconds),
// replacing any object of that name; a replaced object's time never goes
// back. With ifAbsent it stores nothing and returns false when the name
// exists. The caller holds mu.
func (s *Store) put(name string, size, mod int64, ifAbsent bool) bool {
	if old, ok := s.lookup(name); ok {
		if ifAbsent {
			return false
		}
		s.tree.ReplaceOrInsert(item{ref: old.ref, size: size, mod: max(mod, old.mod)})
		return true
	}
	s.tree.ReplaceOrInsert(item{ref: s.intern(name), size: size, mod: mod})
	return true
}

// attributes returns the attributes of it, its name copied out of the
// arenas. The caller holds mu.
func (s *Store) attributes(it item) driver.Attributes {
	return driver.Attributes{Name: strings.Clone(s.name(it)), Size: it.size, ModTime: time.Unix(0, it.mod)}
}

// check returns the error of a call on a closed store or with a done
// context, after the store's Latency: each request calls it once, first.
func (s *Store) check(ctx context.Context, op, name string) error {
	if err := s.alive(ctx, op, name); err != nil {
		return err
	}
	if s.Latency > 0 {
		t := time.NewTimer(s.Latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("simstore: %s %q: %w", op, name, ctx.Err())
		}
	}
	return nil
}

// alive returns the error of a call on a closed store or with a done
// context.
func (s *Store) alive(ctx context.Context, op, name string) error {
	if s.closed.Load() {
		return fmt.Errorf("simstore: %s %q: %w", op, name, driver.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("simstore: %s %q: %w", op, name, err)
	}
	return nil
}

// Read implements [driver.Driver] as far as a store without bodies can: see
// the package documentation. A read that would return bytes fails with
// [ErrNoBodies].
func (s *Store) Read(ctx context.Context, name string, offset, length int64) ([]byte, driver.Attributes, error) {
	s.reads.Add(1)
	if err := s.check(ctx, "read", name); err != nil {
		return nil, driver.Attributes{}, err
	}
	if err := driver.ValidateName(name); err != nil {
		return nil, driver.Attributes{}, fmt.Errorf("simstore: read: %w", err)
	}
	s.mu.Lock()
	it, ok := s.lookup(name)
	var attrs driver.Attributes
	if ok {
		attrs = s.attributes(it)
	}
	s.mu.Unlock()
	if !ok {
		return nil, driver.Attributes{}, fmt.Errorf("simstore: read %q: %w", name, driver.ErrNotFound)
	}
	if length == 0 || offset >= attrs.Size {
		return []byte{}, attrs, nil
	}
	return nil, driver.Attributes{}, fmt.Errorf("simstore: read %q: %w", name, ErrNoBodies)
}

// Write implements [driver.Driver]: it reads body to the end, keeps its
// length as the object's size and discards the bytes.
func (s *Store) Write(ctx context.Context, name string, body io.Reader, opts *driver.WriteOptions) error {
	s.writes.Add(1)
	if err := s.check(ctx, "write", name); err != nil {
		return err
	}
	if err := driver.ValidateName(name); err != nil {
		return fmt.Errorf("simstore: write: %w", err)
	}
	size, err := io.Copy(io.Discard, body)
	if err != nil {
		return fmt.Errorf("simstore: write %q: %w", name, err)
	}
	if err := s.alive(ctx, "write", name); err != nil {
		return err
	}
	s.mu.Lock()
	stored := s.put(name, size, time.Now().UnixNano(), opts.IfAbsent)
	s.mu.Unlock()
	if !stored {
		return fmt.Errorf("simstore: write %q: %w", name, driver.ErrPreconditionFailed)
	}
	return nil
}

// Delete implements [driver.Driver]; deleting an absent name returns nil.
func (s *Store) Delete(ctx context.Context, name string) error {
	s.deletes.Add(1)
	if err := s.check(ctx, "delete", name); err != nil {
		return err
	}
	if err := driver.ValidateName(name); err != nil {
		return fmt.Errorf("simstore: delete: %w", err)
	}
	s.mu.Lock()
	s.remove(name)
	s.mu.Unlock()
	return nil
}

// DeleteBatch implements [driver.BatchDeleter]: it deletes every name in
// one step; absent names are not an error. An invalid name, or more than
// driver.MaxBatchDelete names, fails the call and deletes nothing.
func (s *Store) DeleteBatch(ctx context.Context, names []string) error {
	s.batchDeletes.Add(1)
	s.batchDeletedNames.Add(int64(len(names)))
	if err := s.check(ctx, "delete batch", ""); err != nil {
		return err
	}
	if len(names) > driver.MaxBatchDelete {
		return fmt.Errorf("simstore: delete batch: %d names, more than %d", len(names), driver.MaxBatchDelete)
	}
	for _, name := range names {
		if err := driver.ValidateName(name); err != nil {
			return fmt.Errorf("simstore: delete batch: %w", err)
		}
	}
	s.mu.Lock()
	for _, name := range names {
		s.remove(name)
	}
	s.mu.Unlock()
	return nil
}

// List implements [driver.Driver]. A page costs O(log n + page size): it
// starts in the index at the prefix or just after the page token, which is
// the last name of the previous page (start-after semantics).
func (s *Store) List(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	s.lists.Add(1)
	if err := s.check(ctx, "list", opts.Prefix); err != nil {
		return nil, err
	}
	size := opts.PageSize
	if size == 0 {
		size = driver.MaxListPageSize
	}
	if size < 0 || size > driver.MaxListPageSize {
		return nil, fmt.Errorf("simstore: list %q: page size %d is not within 1 to %d", opts.Prefix, opts.PageSize, driver.MaxListPageSize)
	}
	start := opts.Prefix
	if opts.PageToken != "" {
		// The least name after the token's (names hold no NUL byte).
		if next := opts.PageToken + "\x00"; next > start {
			start = next
		}
	}
	page := &driver.ListPage{Objects: make([]driver.Attributes, 0, min(size, 64))}
	more := false
	s.mu.Lock()
	s.query = start
	s.tree.AscendGreaterOrEqual(item{ref: queryRef}, func(it item) bool {
		name := s.name(it)
		if !strings.HasPrefix(name, opts.Prefix) {
			return false
		}
		if len(page.Objects) == size {
			more = true
			return false
		}
		page.Objects = append(page.Objects, s.attributes(it))
		return true
	})
	s.query = ""
	s.mu.Unlock()
	if more {
		page.NextPageToken = page.Objects[len(page.Objects)-1].Name
	}
	s.listedObjects.Add(int64(len(page.Objects)))
	return page, nil
}

// Close implements [driver.Driver]: every later call fails with
// driver.ErrClosed, a second Close too. The names stay (Len and Fill still
// work), and are freed with the Store.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return fmt.Errorf("simstore: close: %w", driver.ErrClosed)
	}
	return nil
}

// Counts returns the calls answered so far, by kind.
func (s *Store) Counts() Counts {
	return Counts{
		Reads: s.reads.Load(), Writes: s.writes.Load(), Deletes: s.deletes.Load(),
		BatchDeletes: s.batchDeletes.Load(), Lists: s.lists.Load(),
		ListedObjects: s.listedObjects.Load(), BatchDeletedNames: s.batchDeletedNames.Load(),
	}
}

// Len returns the number of objects stored.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tree.Len()
}

// Fill stores every name of names with the given size and modification
// time, replacing objects of the same name, without counting any request:
// it preloads a store for a benchmark. It returns how many names it
// stored; an invalid name stops it with an error wrapping
// driver.ErrInvalidName, the names before it stored. It works on a closed
// store too.
func (s *Store) Fill(names iter.Seq[string], size int64, mod time.Time) (int, error) {
	m := mod.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for name := range names {
		if err := driver.ValidateName(name); err != nil {
			return n, fmt.Errorf("simstore: fill: %w", err)
		}
		s.put(name, size, m, false)
		n++
	}
	return n, nil
}

// EntryNames returns n names shaped like a cache's entry names under
// prefix ("" or "location/"): prefix and 40 lowercase hex digits, uniformly
// random as SHA-1 digests are, drawn from a generator seeded with seed (so
// the same arguments give the same names). Among 10^7 such names a repeat
// has a chance of about 10^-34.
func EntryNames(prefix string, n int, seed uint64) iter.Seq[string] {
	return func(yield func(string) bool) {
		r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		var raw [20]byte
		buf := make([]byte, len(prefix)+40)
		copy(buf, prefix)
		for range n {
			for i := 0; i < len(raw); i += 8 {
				v := r.Uint64()
				for j := 0; j < 8 && i+j < len(raw); j++ {
					raw[i+j] = byte(v >> (8 * j))
				}
			}
			hex.Encode(buf[len(prefix):], raw[:])
			if !yield(string(buf)) {
				return
			}
		}
	}
}
