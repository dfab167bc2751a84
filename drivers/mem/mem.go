// Package mem is the in-memory blobcache driver: Go CDK's memblob through
// package github.com/blobcache/blobcache/drivers/blob, plus what memblob
// lacks.
//
// memblob has no replace-if-unchanged, and its create-if-absent cannot be
// combined with one. So every change to an object (Write, Replace, Delete,
// DeleteBatch) runs under its name's lock, which makes IfAbsent and Replace
// atomic and the changes to each object linearizable, and the store keeps a
// version per name: a number from a counter that never repeats within the
// store, which is the ETag that Read returns (under the same lock) and
// Replace compares. Names hash onto a fixed set of locks, so that writers of
// different names rarely wait for each other; DeleteBatch holds the locks of
// all its names at once, so a batch is one step.
//
// # Names
//
// memblob keeps its objects in a map under the keys as given and lists those
// keys as they are: it neither escapes nor unescapes (no HexUnescape), so
// every name that [driver.ValidateName] accepts is stored, listed and
// deleted exactly as given, including names that other stores rewrite, such
// as "a../b" or "x__0x2f__y". Invalid names are refused by every method with
// [driver.ErrInvalidName] ([Driver.ValidateName]).
//
// A [*Driver] implements [driver.Driver], [driver.BatchDeleter],
// [driver.Replacer] and [driver.NameValidator], and is safe for concurrent
// use.
package mem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/blobcache/blobcache/driver"
	blobdrv "github.com/blobcache/blobcache/drivers/blob"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
)

// errClosed is returned by calls made after Close.
var errClosed = errors.New("mem: driver is closed")

// lockStripes is the number of name locks of a store.
const lockStripes = 64

// store is one in-memory bucket and the versions of its objects.
type store struct {
	b *blobdrv.Driver // over a memblob bucket only this store uses

	// locks[stripe(name)] is held for writing across every change of name,
	// for reading across a read of it.
	locks [lockStripes]sync.RWMutex

	verMu sync.Mutex
	gen   uint64            // last version handed out
	ver   map[string]uint64 // version of each existing object; absent = no object
}

// stripe returns the index of name's lock (FNV-1a).
func stripe(name string) int {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	return int(h % lockStripes)
}

// version returns name's version and whether the object exists.
func (s *store) version(name string) (uint64, bool) {
	s.verMu.Lock()
	defer s.verMu.Unlock()
	v, ok := s.ver[name]
	return v, ok
}

// bump gives name a new version.
func (s *store) bump(name string) {
	s.verMu.Lock()
	defer s.verMu.Unlock()
	s.gen++
	s.ver[name] = s.gen
}

// forget removes name's version.
func (s *store) forget(name string) {
	s.verMu.Lock()
	defer s.verMu.Unlock()
	delete(s.ver, name)
}

func newStore() *store {
	return &store{
		b:   blobdrv.NewBase(memblob.OpenBucket(&memblob.Options{NoMD5: true}), blobdrv.WithEscaping(blobdrv.EscapingNone)),
		ver: map[string]uint64{},
	}
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

// ValidateName implements [driver.NameValidator]. memblob stores and lists
// keys as given, so this is [driver.ValidateName]: every valid name
// round-trips exactly. Every method refuses an invalid name with this error.
func (d *Driver) ValidateName(name string) error {
	return d.s.b.ValidateName(name)
}

func etagOf(v uint64) string { return `"` + strconv.FormatUint(v, 10) + `"` }

// Read implements [driver.Driver]. Attributes.ETag is the object's version.
func (d *Driver) Read(ctx context.Context, name string, offset, length int64) ([]byte, driver.Attributes, error) {
	if d.closed.Load() {
		return nil, driver.Attributes{}, errClosed
	}
	s := d.s
	l := &s.locks[stripe(name)]
	l.RLock()
	defer l.RUnlock()
	data, attrs, err := s.b.Read(ctx, name, offset, length)
	if err != nil {
		return nil, driver.Attributes{}, wrap(err)
	}
	v, _ := s.version(name)
	attrs.ETag = etagOf(v)
	return data, attrs, nil
}

// Write implements [driver.Driver]. The body is read before the store is
// locked; IfAbsent is checked and the object stored in one step under the
// lock.
func (d *Driver) Write(ctx context.Context, name string, body io.Reader, opts *driver.WriteOptions) error {
	return d.put(ctx, "write", name, body, opts, func(exists bool, _ uint64) error {
		if opts.IfAbsent && exists {
			return fmt.Errorf("mem: write %q: %w: an object exists", name, driver.ErrPreconditionFailed)
		}
		return nil
	})
}

// Replace implements [driver.Replacer]: under the name's lock it compares etag with
// the object's version and stores the body only if they are equal.
// opts.IfAbsent is ignored.
func (d *Driver) Replace(ctx context.Context, name string, body io.Reader, etag string, opts *driver.WriteOptions) error {
	return d.put(ctx, "replace", name, body, opts, func(exists bool, v uint64) error {
		switch {
		case !exists:
			return fmt.Errorf("mem: replace %q: %w", name, driver.ErrNotFound)
		case etag != etagOf(v):
			return fmt.Errorf("mem: replace %q: %w: the object changed", name, driver.ErrPreconditionFailed)
		}
		return nil
	})
}

// put streams body into a memblob writer (one copy of the bytes, no
// intermediate buffer), then under the name's lock runs check and either commits the
// writer or aborts it (cancelling its context, the Go CDK's way to abort a
// write: nothing is stored).
func (d *Driver) put(ctx context.Context, op, name string, body io.Reader, opts *driver.WriteOptions, check func(exists bool, v uint64) error) error {
	if d.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem: %s %q: %w", op, name, err)
	}
	if err := d.ValidateName(name); err != nil {
		return fmt.Errorf("mem: %s: %w", op, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := d.s.b.Bucket().NewWriter(wctx, name, &gcblob.WriterOptions{
		ContentType:     blobdrv.ContentType,
		ContentEncoding: opts.ContentEncoding,
	})
	if err != nil {
		return wrap(err)
	}
	abort := func() {
		cancel()
		_ = w.Close() // reports the cancellation; nothing was stored
	}
	if _, err := w.ReadFrom(body); err != nil {
		abort()
		return fmt.Errorf("mem: %s %q: reading body: %w", op, name, err)
	}
	if err := ctx.Err(); err != nil {
		abort()
		return fmt.Errorf("mem: %s %q: %w", op, name, err)
	}
	s := d.s
	l := &s.locks[stripe(name)]
	l.Lock()
	defer l.Unlock()
	v, exists := s.version(name)
	if err := check(exists, v); err != nil {
		abort()
		return err
	}
	// The lock makes the check and the commit one step; memblob's own
	// IfNotExist is not needed.
	if err := w.Close(); err != nil {
		return wrap(err)
	}
	s.bump(name)
	return nil
}

// Delete implements [driver.Driver].
func (d *Driver) Delete(ctx context.Context, name string) error {
	if d.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem: delete %q: %w", name, err)
	}
	s := d.s
	l := &s.locks[stripe(name)]
	l.Lock()
	defer l.Unlock()
	return s.deleteLocked(ctx, name)
}

// deleteLocked deletes name; the caller holds its lock.
func (s *store) deleteLocked(ctx context.Context, name string) error {
	if err := s.b.Delete(ctx, name); err != nil {
		return wrap(err)
	}
	s.forget(name)
	return nil
}

// DeleteBatch implements [driver.BatchDeleter]: every name is deleted in one
// step under the locks of all the names.
func (d *Driver) DeleteBatch(ctx context.Context, names []string) error {
	if d.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem: delete batch: %w", err)
	}
	for _, name := range names {
		if err := d.ValidateName(name); err != nil {
			return fmt.Errorf("mem: delete batch: %w", err) // nothing deleted
		}
	}
	s := d.s
	// Take the locks of all the names, in index order (no deadlock with
	// another batch), so that the batch is one step.
	var held [lockStripes]bool
	for _, name := range names {
		held[stripe(name)] = true
	}
	for i := range held {
		if held[i] {
			s.locks[i].Lock()
			defer s.locks[i].Unlock()
		}
	}
	failed := map[string]error{}
	for _, name := range names {
		if err := s.deleteLocked(context.WithoutCancel(ctx), name); err != nil {
			failed[name] = err
		}
	}
	if len(failed) > 0 {
		return &driver.BatchDeleteError{Failed: failed}
	}
	return nil
}

// List implements [driver.Driver].
func (d *Driver) List(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	if d.closed.Load() {
		return nil, errClosed
	}
	p, err := d.s.b.List(ctx, opts)
	return p, wrap(err)
}

// Close implements [driver.Driver]. A private store is freed; a named store
// stays for the other handles and later Opens.
func (d *Driver) Close() error {
	if d.closed.Swap(true) {
		return errClosed
	}
	if d.private {
		return d.s.b.Close()
	}
	return nil
}

// wrap renames the drivers/blob error prefix; the kinds stay wrapped.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("mem: %w", err)
}
