//go:build unix

package file_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/drivers/file"
)

// BenchmarkDeleteFloor puts a cache Delete on the file driver beside the
// system calls it is made of, on the same disk in one run: the bare unlink
// by path (all Django's FileBasedCache.delete does), the unlink with the
// walk's open of the store's directory and the object's lock (a Delete
// that reported Django's result, an object was there), the driver's exact
// sequence of calls made raw (open the store's directory, take the
// object's lock, open, fstat and read the 72-byte header, close, unlink,
// release, close), the driver's ReadDelete, and cache.Delete. The gap
// between the raw sequence and the driver is what the driver adds; the gap
// between the bare unlink and the raw sequence is what its guarantees cost.
//
//	go test -run XXX -bench DeleteFloor -benchtime 20000x -count 3 ./drivers/file/
func BenchmarkDeleteFloor(b *testing.B) {
	ctx := context.Background()
	const window = 2000
	value := make([]byte, 1024)
	refill := func(b *testing.B, i int, fill func()) {
		if i%window == 0 {
			b.StopTimer()
			fill()
			b.StartTimer()
		}
	}
	rawFiles := func(*testing.B, string) []string {
		names := make([]string, window)
		for i := range names {
			names[i] = fmt.Sprintf("%040x", i)
		}
		return names
	}
	writeRaw := func(b *testing.B, dir string, names []string) func() {
		return func() {
			for _, n := range names {
				if err := os.WriteFile(filepath.Join(dir, n), value, 0o600); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("op=unlink", func(b *testing.B) {
		dir := b.TempDir()
		names := rawFiles(b, dir)
		i := 0
		for b.Loop() {
			refill(b, i, writeRaw(b, dir, names))
			if err := unix.Unlink(filepath.Join(dir, names[i%window])); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("op=locked-unlink", func(b *testing.B) { // no header read: Django's result, the walk and the lock kept
		dir := b.TempDir()
		names := rawFiles(b, dir)
		lock, err := os.Create(filepath.Join(dir, ".lock"))
		if err != nil {
			b.Fatal(err)
		}
		lfd := int(lock.Fd())
		i := 0
		for b.Loop() {
			refill(b, i, writeRaw(b, dir, names))
			root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			unix.Flock(lfd, unix.LOCK_EX|unix.LOCK_NB)
			if err := unix.Unlinkat(root, names[i%window], 0); err != nil {
				b.Fatal(err)
			}
			unix.Flock(lfd, unix.LOCK_UN)
			unix.Close(root)
			i++
		}
	})
	b.Run("op=syscalls", func(b *testing.B) {
		dir := b.TempDir()
		names := rawFiles(b, dir)
		lock, err := os.Create(filepath.Join(dir, ".lock"))
		if err != nil {
			b.Fatal(err)
		}
		lfd := int(lock.Fd())
		buf := make([]byte, 72)
		var st unix.Stat_t
		i := 0
		for b.Loop() {
			refill(b, i, writeRaw(b, dir, names))
			name := names[i%window]
			root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			unix.Flock(lfd, unix.LOCK_EX|unix.LOCK_NB)
			fd, err := unix.Openat(root, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			unix.Fstat(fd, &st)
			unix.Pread(fd, buf, 0)
			unix.Close(fd)
			if err := unix.Unlinkat(root, name, 0); err != nil {
				b.Fatal(err)
			}
			unix.Flock(lfd, unix.LOCK_UN)
			unix.Close(root)
			i++
		}
	})
	// onCache returns the file driver on a fresh directory, a cache on it,
	// its window of keys and a fill that sets them all.
	onCache := func(b *testing.B) (*file.Driver, *cache.Cache, []string, func()) {
		d, err := file.New(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		c, err := cache.New(d, cache.WithMaxEntries(0))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		keys := make([]string, window)
		for i := range keys {
			keys[i] = fmt.Sprint("key", i)
		}
		return d, c, keys, func() {
			for _, k := range keys {
				if err := c.Set(ctx, k, value, cache.NoExpiry); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("op=driver", func(b *testing.B) {
		d, c, keys, fill := onCache(b)
		i := 0
		for b.Loop() {
			refill(b, i, fill)
			if _, _, err := d.ReadDelete(ctx, c.ObjectName(keys[i%window]), 72); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("op=cache", func(b *testing.B) {
		_, c, keys, fill := onCache(b)
		i := 0
		for b.Loop() {
			refill(b, i, fill)
			if ok, err := c.Delete(ctx, keys[i%window]); err != nil || !ok {
				b.Fatal(ok, err)
			}
			i++
		}
	})
}
