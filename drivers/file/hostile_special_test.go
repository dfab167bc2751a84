//go:build unix

package file_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/file"
)

// TestHostileFIFO: a named pipe at an entry's object file is replaced by
// the writes and removed by Delete, within a deadline that is never hit. (The conformance suite's Hostile/FIFO case checks that reads
// see no object without blocking.)
func TestHostileFIFO(t *testing.T) {
	s := newScene(t, "cache")
	file := s.plantEntriesOutside("k")["k"]
	s.plant = func() {
		os.Remove(file)
		os.MkdirAll(filepath.Dir(file), 0o700)
		if err := syscall.Mkfifo(file, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A reader blocked in open(2) goes on once a writer comes.
	s.unblock = func() {
		if f, err := os.OpenFile(file, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	}
	s.seal()
	s.runOps("FIFO", s.replaceOps("k", file))
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// countdown is a context whose Err turns to Canceled after n calls: a
// cancellation at a known point of a long read.
type countdown struct {
	context.Context
	n atomic.Int64
}

func (c *countdown) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

// TestHostileSparse: a sparse file of 1 TiB at an entry's object file is
// a regular file, so an object to the file driver: a read with a
// length bound returns the bound, allocating it and never the claimed size;
// reads at and past the end work; a whole read grows with the bytes that
// arrive instead of allocating 1 TiB up front; the cache counts the entry.
// (The conformance suite's Hostile/SparseObject case checks bounded reads
// and the cache's miss, and allows the driver to see no object.)
func TestHostileSparse(t *testing.T) {
	const size, bound = 1 << 40, 64 << 20
	s := newScene(t, "cache")
	file := s.plantEntriesOutside("k")["k"]
	s.plant = func() {
		os.Remove(file)
		os.MkdirAll(filepath.Dir(file), 0o700)
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(file, size); err != nil {
			t.Skipf("no sparse file of 1 TiB here: %v", err)
		}
	}
	s.seal()
	c, d := s.cache()
	name := c.ObjectName("k")
	s.runOps("sparse 1 TiB", []op{
		{"driver Read of 64 MiB", func(ctx context.Context) string {
			var b []byte
			var attrs driver.Attributes
			var err error
			n := allocated(func() { b, attrs, err = d.Read(ctx, name, 0, bound) })
			if err != nil || len(b) != bound || attrs.Size != size {
				return fmt.Sprintf("Read = %d bytes, size %d, %v; want %d bytes of an object of %d", len(b), attrs.Size, err, bound, int64(size))
			}
			if n >= 80<<20 {
				return fmt.Sprintf("Read allocated %d MiB, want under 80 MiB", n>>20)
			}
			return ""
		}},
		{"driver Read at the end", func(ctx context.Context) string {
			b, _, err := d.Read(ctx, name, size-10, bound)
			if len(b) != 10 || err != nil {
				return fmt.Sprintf("Read = %d bytes, %v; want the last 10", len(b), err)
			}
			return ""
		}},
		{"driver Read past the end", func(ctx context.Context) string {
			b, _, err := d.Read(ctx, name, 2*size, bound)
			if len(b) != 0 || err != nil {
				return fmt.Sprintf("Read = %d bytes, %v; want none", len(b), err)
			}
			return ""
		}},
		{"driver whole Read, cancelled after a few MiB", func(ctx context.Context) string {
			cc := &countdown{Context: ctx}
			cc.n.Store(8)
			var err error
			n := allocated(func() { _, _, err = d.Read(cc, name, 0, -1) })
			if !errors.Is(err, context.Canceled) {
				return fmt.Sprintf("Read = %v, want context.Canceled", err)
			}
			if n >= 64<<20 {
				return fmt.Sprintf("a whole read cancelled after a few MiB allocated %d MiB: it sized its buffer by the claimed 1 TiB", n>>20)
			}
			return ""
		}},
		{"cache Len", func(ctx context.Context) string {
			// A regular file named like an entry is an entry to count.
			if n, err := c.Len(ctx); n != 1 || err != nil {
				return fmt.Sprintf("Len = %d, %v; want 1", n, err)
			}
			return ""
		}},
	})
}

// TestHostileLockSymlinks: the lock directory, or every lock file, is a
// symbolic link out of the store. Writes and deletes fail, saying why;
// reads work; no temporary file is left. (The conformance suite's
// Hostile/InternalSymlinks case checks that nothing outside changes, and
// allows any call to fail.)
func TestHostileLockSymlinks(t *testing.T) {
	for _, whole := range []bool{true, false} {
		s := newScene(t, "cache")
		// An object to delete, written while the locks are sound.
		c0, _ := s.cache()
		if err := c0.Set(t.Context(), "doomed", []byte("v"), cache.NoExpiry); err != nil {
			t.Fatal(err)
		}
		doomed := c0.ObjectName("doomed")
		locks := filepath.Join(s.store, file.LockDir)
		target := filepath.Join(s.out, "locks")
		if err := os.Mkdir(target, 0o700); err != nil {
			t.Fatal(err)
		}
		attack := "lock files are symlinks"
		s.plant = func() {
			os.RemoveAll(locks)
			if whole {
				if err := os.Symlink(target, locks); err != nil {
					t.Fatal(err)
				}
				return
			}
			os.Mkdir(locks, 0o700)
			for i := range file.NumStripes {
				// Dangling: following one would create the target.
				os.Symlink(filepath.Join(target, fmt.Sprintf("lock%02x", i)), filepath.Join(locks, fmt.Sprintf("%02x", i)))
			}
		}
		if whole {
			attack = "lock directory is a symlink"
		}
		s.seal()
		c, d := s.cache()
		s.runOps(attack, []op{
			{"cache Get", func(ctx context.Context) string {
				return errIs("Get", func() error { _, err := c.Get(ctx, "k"); return err }(), cache.ErrMiss)
			}},
			{"cache Len", func(ctx context.Context) string { _, err := c.Len(ctx); return noErr("Len", err) }},
			{"cache Set", func(ctx context.Context) string {
				return refusedWrite("Set", c.Set(ctx, "k", []byte("v"), cache.NoExpiry))
			}},
			{"cache Add", func(ctx context.Context) string {
				_, err := c.Add(ctx, "k", []byte("v"), cache.NoExpiry)
				return refusedWrite("Add", err)
			}},
			{"driver Write", func(ctx context.Context) string {
				return refusedWrite("Write", d.Write(ctx, "cache/x", strings.NewReader("v"), &driver.WriteOptions{}))
			}},
			{"driver Delete", func(ctx context.Context) string {
				return refusedWrite("Delete", d.Delete(ctx, doomed))
			}},
			{"cache Delete", func(ctx context.Context) string {
				_, err := c.Delete(ctx, "doomed")
				return refusedWrite("Delete", err)
			}},
			// Both must delete "doomed", which takes its lock.
			{"cache Clear", func(ctx context.Context) string { return refusedWrite("Clear", c.Clear(ctx)) }},
			{"cache Cull", func(ctx context.Context) string { _, err := c.Cull(ctx); return refusedWrite("Cull", err) }},
		})
		if got := slices.Collect(func(yield func(string) bool) {
			for p := range treeState(t, s.store) {
				if strings.Contains(p, file.TempPrefix) && !yield(p) {
					return
				}
			}
		}); len(got) > 0 {
			t.Errorf("%s: temporary files left behind: %v", attack, got)
		}
	}
}
