package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/blobcache/blobcache/driver"
)

// The disk tier (WithDiskTier) sits between the memory tier and the store:
// a value read from the store is also copied to a directory on local disk,
// through the file driver, and a read the memory tier misses looks there
// before it asks the store. It keeps the memory tier's rules (see local.go):
// a copy is served only until the earlier of its entry's expiry and the
// staleness bound after the store read it came from, and only while the
// generation of its name's stripe, taken before that read, is unchanged, so
// a drop (every write, replace and delete of the object by this Cache, and
// Clear) makes every older copy a miss at once, on disk as in memory.
//
// A copy is the object diskMagic, the Unix nanoseconds until which it may be
// served (8 bytes, big-endian), then the entry's bytes exactly as the store
// returned them: a disk hit decodes them as a store read does, with the
// same bounds and, with signing keys, the same signature check, so a file
// planted in the directory is at worst a miss (and deleted), never a value
// the store did not hold signed.
//
// Which copies exist, and their sizes, is held in process memory by an
// otter cache bounded by weight: the bytes each copy takes on disk, rounded
// up to diskBlock. Its evictions, and its expiries after the staleness
// bound, delete the files. Writes of copies and those deletions run on one
// background goroutine, so a Get never waits for the disk to write (a copy
// whose queue is full is not made). That goroutine starts with a sweep:
// the copies an earlier process left under the cache's location (files of
// an entry's name that start with diskMagic; nothing else) are deleted
// before any copy is written, since no index holds them.
type diskTier struct {
	d         driver.Driver
	index     *otter.Cache[string, diskCopy]
	staleness time.Duration
	readLimit int64          // most bytes of a copy read: its framing plus the largest entry
	writes    chan diskWrite // copies to write, given up when full
	wake      chan struct{}  // there are deletions pending
	done      chan struct{}
	wg        sync.WaitGroup
	logger    *slog.Logger
	lastLog   atomic.Int64 // Unix nanoseconds of the last warning logged

	mu      sync.Mutex
	pending []string // files to delete: evicted, expired or found broken copies

	hits, misses, evictions, failures atomic.Int64
}

// diskCopy is what the index knows of a copy.
type diskCopy struct {
	weight uint32
	gen    uint64 // the stripe's generation before the store read
}

// diskWrite is the write of a copy, or, with flushed set, a marker that
// flush waits for.
type diskWrite struct {
	flushed chan struct{}
	name    string
	data    []byte
	gen     uint64
	s       *atomic.Uint64 // the stripe, to check gen against before and after the write
}

const (
	diskMagic      = "BCT1"
	diskHeaderLen  = len(diskMagic) + 8
	diskBlock      = 4096 // the least a file takes on disk, about
	diskQueue      = 256  // writes waiting for the disk goroutine
	diskWarnPeriod = int64(time.Minute)
)

// errDiskCopy is why a file of the disk tier is not a copy.
var errDiskCopy = errors.New("not a disk tier copy")

// newDiskTier returns a tier over d bounded by maxBytes; start starts it.
func newDiskTier(d driver.Driver, maxBytes int64, staleness time.Duration, maxValueSize int64, logger *slog.Logger, onEvict func()) (*diskTier, error) {
	t := &diskTier{
		d: d, staleness: staleness, readLimit: int64(diskHeaderLen) + readLimit(maxValueSize),
		writes: make(chan diskWrite, diskQueue), wake: make(chan struct{}, 1), done: make(chan struct{}), logger: logger,
	}
	index, err := otter.New(&otter.Options[string, diskCopy]{
		MaximumWeight:    uint64(maxBytes),
		Weigher:          func(_ string, c diskCopy) uint32 { return c.weight },
		ExpiryCalculator: otter.ExpiryWriting[string, diskCopy](staleness),
		Executor:         func(fn func()) { fn() },
		OnDeletion: func(e otter.DeletionEvent[string, diskCopy]) {
			if !e.WasEvicted() {
				return // a drop deletes the file itself; a replacement overwrote it
			}
			if e.Cause == otter.CauseOverflow {
				t.evictions.Add(1)
				onEvict()
			}
			t.deleteLater(e.Key)
		},
	})
	if err != nil {
		return nil, err
	}
	t.index = index
	return t, nil
}

// start runs the disk goroutine, which first deletes what an earlier
// process left under prefix, then writes copies and deletes files as the
// tier asks.
func (t *diskTier) start(prefix string) {
	t.wg.Go(func() {
		t.sweep(prefix)
		for {
			select {
			case w := <-t.writes:
				if w.flushed != nil {
					t.deletePending()
					close(w.flushed)
					continue
				}
				t.write(w)
			case <-t.wake:
				t.deletePending()
			case <-t.done:
				return
			}
		}
	})
}

// sweep deletes every object under prefix the index does not hold: the
// index holds only this process's copies, and none is written before the
// sweep ends (the writes wait for this goroutine).
func (t *diskTier) sweep(prefix string) {
	opts := &driver.ListOptions{Prefix: prefix, NamesOnly: true}
	ctx := context.Background()
	for {
		select {
		case <-t.done:
			return
		default:
		}
		page, err := t.d.List(ctx, opts)
		if err != nil {
			t.failed("listing an earlier process's copies", err)
			return
		}
		names := make([]string, 0, len(page.Objects))
		for _, o := range page.Objects {
			if t.isLeftover(ctx, o.Name, prefix) {
				names = append(names, o.Name)
			}
		}
		t.deleteFiles(names)
		if page.NextPageToken == "" {
			return
		}
		opts.PageToken = page.NextPageToken
	}
}

// isLeftover reports whether name, listed under prefix, is a copy this
// tier would have written: an entry's name (the location, then 40 hex
// digits) whose file starts with diskMagic. Anything else in the directory
// is not the tier's to delete, whoever put it there.
func (t *diskTier) isLeftover(ctx context.Context, name, prefix string) bool {
	rest := strings.TrimPrefix(name, prefix)
	if len(rest) != 40 || strings.Trim(rest, "0123456789abcdef") != "" {
		return false
	}
	head, _, err := t.d.Read(ctx, name, 0, int64(len(diskMagic)))
	return err == nil && string(head) == diskMagic
}

// write writes a copy and indexes it.
func (t *diskTier) write(w diskWrite) {
	if w.s.Load() != w.gen {
		return // dropped since it was read
	}
	if err := t.d.Write(context.Background(), w.name, bytes.NewReader(w.data), &driver.WriteOptions{}); err != nil {
		t.failed("writing a copy", err)
		return
	}
	weight := min((int64(len(w.data))+int64(len(w.name))+diskBlock-1)/diskBlock*diskBlock, math.MaxUint32)
	t.index.Set(w.name, diskCopy{weight: uint32(weight), gen: w.gen})
	if w.s.Load() != w.gen {
		// Dropped while it was written: the drop may have looked for the
		// copy before it was indexed.
		t.drop(w.name)
	}
}

// flush waits until the writes queued before it, and the deletions, are
// done (tests use it).
func (t *diskTier) flush() {
	done := make(chan struct{})
	select {
	case t.writes <- diskWrite{flushed: done}:
		<-done
	case <-t.done:
	}
}

// deleteLater queues the deletion of name's file for the disk goroutine.
// It never blocks: the index calls it while it evicts.
func (t *diskTier) deleteLater(name string) {
	t.mu.Lock()
	t.pending = append(t.pending, name)
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// deletePending deletes the files deleteLater queued, except those of
// names indexed again since.
func (t *diskTier) deletePending() {
	t.mu.Lock()
	names := t.pending
	t.pending = nil
	t.mu.Unlock()
	names = slices.DeleteFunc(names, func(name string) bool {
		_, ok := t.index.GetIfPresent(name)
		return ok
	})
	t.deleteFiles(names)
}

// deleteFiles deletes the named files, in batches where the driver can.
func (t *diskTier) deleteFiles(names []string) {
	ctx := context.Background()
	if bd, ok := t.d.(driver.BatchDeleter); ok {
		for chunk := range slices.Chunk(names, driver.MaxBatchDelete) {
			if err := bd.DeleteBatch(ctx, chunk); err != nil {
				t.failed("deleting copies", err)
			}
		}
		return
	}
	for _, name := range names {
		if err := t.d.Delete(ctx, name); err != nil {
			t.failed("deleting a copy", err)
		}
	}
}

// put queues a copy of the entry bytes raw, read from the store at now with
// expiry (Unix nanoseconds, 0 never), unless name's stripe s has changed
// since gen. A copy is given up when the disk goroutine is behind.
func (t *diskTier) put(name string, s *atomic.Uint64, gen uint64, raw []byte, expiry int64, now time.Time) {
	if int64(diskHeaderLen+len(raw)) > t.readLimit || s.Load() != gen {
		return
	}
	data := make([]byte, diskHeaderLen+len(raw))
	copy(data, diskMagic)
	binary.BigEndian.PutUint64(data[len(diskMagic):], uint64(untilOf(now, t.staleness, expiry)))
	copy(data[diskHeaderLen:], raw)
	select {
	case t.writes <- diskWrite{name: name, data: data, gen: gen, s: s}:
	default:
	}
}

// get returns the entry bytes of name's copy and until when it may be
// served, if the tier holds one to serve at now for generation gen. The
// caller counts hits and misses, and calls reject for bytes that do not
// decode to a live entry.
func (t *diskTier) get(ctx context.Context, name string, gen uint64, now time.Time) ([]byte, int64, bool) {
	c, ok := t.index.GetIfPresent(name)
	if !ok || c.gen != gen {
		return nil, 0, false
	}
	data, _, err := t.d.Read(ctx, name, 0, t.readLimit+1)
	if err == nil && (int64(len(data)) > t.readLimit || len(data) < diskHeaderLen || string(data[:len(diskMagic)]) != diskMagic) {
		err = errDiskCopy
	}
	var until int64
	if err == nil {
		until = int64(binary.BigEndian.Uint64(data[len(diskMagic):]))
		// Never served past the staleness bound after now, whatever the
		// file says: a copy written at w says at most w + staleness.
		if n := now.UnixNano(); n >= until || until-n > int64(t.staleness) {
			err = errDiskCopy
		}
	}
	if err != nil && ctx.Err() != nil {
		// The caller gave up: the copy is not known to be bad, and no
		// error of the tier's own.
		return nil, 0, false
	}
	if err != nil {
		t.index.Invalidate(name)
		if !errors.Is(err, driver.ErrNotFound) {
			if !errors.Is(err, errDiskCopy) {
				t.failed("reading a copy", err)
			}
			t.deleteLater(name)
		}
		return nil, 0, false
	}
	return data[diskHeaderLen:], until, true
}

// reject removes a copy get returned that the cache does not serve (its
// entry does not decode, or is no longer live).
func (t *diskTier) reject(name string) {
	t.index.Invalidate(name)
	t.deleteLater(name)
}

// drop removes name's copy. The caller has bumped the stripe.
func (t *diskTier) drop(name string) {
	if _, ok := t.index.Invalidate(name); ok {
		if err := t.d.Delete(context.Background(), name); err != nil {
			t.failed("deleting a dropped copy", err)
		}
	}
}

// dropAll removes every copy. The caller has bumped every stripe first, so
// none is served meanwhile.
func (t *diskTier) dropAll() {
	var names []string
	for name := range t.index.Keys() {
		if _, ok := t.index.Invalidate(name); ok {
			names = append(names, name)
		}
	}
	t.deleteFiles(names)
}

// close stops the disk goroutine, deletes this process's copies and closes
// the driver.
func (t *diskTier) close() error {
	close(t.done)
	t.wg.Wait()
	t.dropAll()
	t.deletePending()
	t.index.StopAllGoroutines()
	return t.d.Close()
}

// failed counts and logs a failure of the tier's own storage, at most one
// warning a minute; the tier goes on (a failed copy is a miss).
func (t *diskTier) failed(what string, err error) {
	t.failures.Add(1)
	now := time.Now().UnixNano()
	last := t.lastLog.Load()
	if t.logger == nil || now-last < diskWarnPeriod || !t.lastLog.CompareAndSwap(last, now) {
		return
	}
	t.logger.Warn("blobcache: disk tier: "+what, slog.String("error", err.Error()))
}

func (t *diskTier) bytes() int64 { return int64(t.index.WeightedSize()) }

// openDiskTier opens the disk tier s asks for behind c.local and starts it.
func (c *Cache) openDiskTier(s settings, prefix string) error {
	d, err := openDiskDriver(s.diskDir)
	if err != nil {
		return fmt.Errorf("cache.New: local_disk %q: %w", s.diskDir, err)
	}
	onEvict := func() {
		if c.tel != nil && c.tel.diskEvictions != nil {
			c.tel.diskEvictions.Add(context.Background(), 1, c.tel.locOpts...)
		}
	}
	t, err := newDiskTier(d, s.diskBytes, s.localStale, s.maxValueSize, s.logger, onEvict)
	if err != nil {
		d.Close()
		return fmt.Errorf("%w: local_disk: %w", ErrInvalidOption, err)
	}
	c.local.disk = t
	t.start(prefix)
	return nil
}

// openDiskDriver opens the file driver on dir through its registered
// scheme, so that this package imports no driver.
func openDiskDriver(dir string) (driver.Driver, error) {
	s, ok := driver.Lookup("file")
	if !ok {
		return nil, fmt.Errorf("local_disk needs the file driver: import %s (or the blobcache package, which registers every driver)", builtinImports["file"])
	}
	d, err := s.Open(context.Background(), &url.URL{Scheme: "file", Path: dir})
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, errors.New("the file driver returned no driver and no error")
	}
	return d, nil
}
