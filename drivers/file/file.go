// Package file is a blobcache storage driver that keeps objects as files in a
// directory on disk. It is native (it does not go through the Go CDK's
// fileblob) so that conditional writes are atomic across processes.
//
// # Layout
//
// An object name is split at "/" into segments. Every segment but the last
// becomes a directory, the last one a regular file, so that "cache" and
// "cache/x" can both exist:
//
//	cache            the object "cache"
//	cache~/x         the object "cache/x"
//
// Within a path component a segment is escaped: lower case ASCII letters,
// digits, '-', '_' and '.' stand for themselves (except a leading '.'),
// every other byte, upper case letters and non-ASCII bytes included, is
// written as '%' and two upper case hex digits. Escaped text therefore never
// contains '~', never starts with '.', and names that differ only in case or
// Unicode normalisation stay apart on file systems that fold them. A
// directory component is the escaped segment followed by "~".
//
// A segment of 84 bytes or more (before escaping) is cut into chunks of
// exactly 84 bytes, each a continuation directory named the escaped chunk
// followed by "~+", which holds the rest of the segment as above; a rest that
// is empty is written "%". So no component exceeds 254 bytes, whatever the
// name. On unix the driver opens one component at a time (see "Hostile
// stores"), so names of up to [driver.MaxNameLength] bytes work whatever the
// length of the whole path; elsewhere the whole path must fit the system's
// limit: a name made only of escaped bytes triples in length.
//
// Sorting the entries of each directory by what they add to the name (the
// segment for a file, the segment and "/" for a directory, the chunk for a
// continuation) gives byte-wise order of the full names, so List walks the
// tree in order and stops when a page is full.
//
// Entries starting with '.' belong to the driver, never decode as objects
// and are never listed: temporary files ".~tmp-*" beside their target, and
// the lock directory ".~locks" at the top. Files that do not follow the
// encoding (written by something else) are ignored.
//
// # Guarantees
//
// A write goes to a temporary file in the target's directory, which is then
// renamed over the target, so readers see the old object or the whole new
// one. The data is not fsynced: a write survives a crash of the process but
// not necessarily of the machine (it is a cache). A crash can leave a
// temporary file behind; it is never listed or read as an object.
//
// A create-if-absent write (WriteOptions.IfAbsent) links the temporary file
// to the target with link(2), which fails if the target exists, so of many
// writers in any number of processes exactly one wins. On file systems
// without hard links (and on illumos, where golang.org/x/sys/unix has no
// linkat) it falls back to checking and renaming under the object's lock
// (see below), which is atomic among blobcache drivers.
//
// # ETags and locks
//
// Every write stamps its file's modification time with the current time in
// nanoseconds (strictly increasing within a process), and the ETag is the
// inode number, size and modification time of the file. A write always makes
// a new file (a new inode), so the ETag changes with every write; a stale ETag
// could only match again if a later write got the same inode number, size and
// nanosecond time stamp. File systems that store coarse time stamps (FAT,
// ext4 with 128-byte inodes) weaken this.
//
// Every change of an object (Write, IfAbsent, Replace, Delete) takes the
// object's lock around its final step (rename, link or unlink): an exclusive
// flock(2) on one of 256 lock files in ".~locks", chosen by a hash of the
// name, plus an in-process mutex for the same stripe. Replace compares the
// ETag and renames while holding it, so it is atomic with respect to every
// other change, in this process or another: of several Replaces with one
// ETag exactly one wins, and a Write or Delete is ordered before or after a
// Replace, never between its check and its rename. The lock files are few,
// empty and kept forever (removing them would race with their users); do not
// delete ".~locks" while drivers are open. flock works on local file
// systems; on NFS, Linux emulates it with POSIX locks. On systems without
// flock(2) (Windows) the locks only exclude goroutines of one process.
//
// # Listing
//
// List reads only the directories below the prefix, in order, and stops once
// the page is full; a continuation page descends along the path of the
// previous page's last name. The sorted entries of large directories are kept
// between pages while the directory is unchanged, so listing N objects of one
// directory a page at a time costs O(N) rather than O(N²/page size) as long as
// nobody writes to it meanwhile.
//
// # Hostile stores
//
// Whoever can write into the store's directory is not trusted; the
// directory given to [New], and the path leading to it, are. Below it, no
// symbolic link is ever followed, in any component of any path the driver
// uses: the directories on the way to an object, the object file itself,
// the lock directory and its lock files, temporary files; nor by any
// operation: Read, Write (creating the temporary file and the directories,
// renaming or linking into place), Replace, Delete, DeleteBatch, List and
// the removal of emptied directories. Nothing outside the store is ever
// read, written, created or deleted, whatever is planted in it.
//
// On unix this is done with golang.org/x/sys/unix: every operation walks
// from a descriptor of the store's directory, one component at a time, with
// openat(2) and O_NOFOLLOW|O_DIRECTORY, and acts on an entry relative to the
// descriptor of its directory (fstatat with AT_SYMLINK_NOFOLLOW, renameat,
// linkat without AT_SYMLINK_FOLLOW, unlinkat, mkdirat, utimensat with
// AT_SYMLINK_NOFOLLOW), so an entry swapped for a link between two calls is
// refused, not followed. Go's [os.Root] was not chosen: it follows links
// that stay inside the root, and the rule is that none is followed (a link
// inside the store would still let Clear delete, and Set overwrite, another
// location's entries, or make two names one file). The price is one openat
// and close per directory on the way, where a path would cost one lookup.
//
// Only a regular file is an object. Object files are opened with
// O_NOFOLLOW|O_NONBLOCK and checked with fstat, so a named pipe, socket or
// device never blocks a call and is never read. What the driver finds that
// it cannot have written is handled so:
//
//   - a symbolic link or special file at an object's path is no object:
//     Read and Replace return [driver.ErrNotFound] (a miss for the cache),
//     List skips it, Delete removes the entry itself (never what a link
//     points to), and Write, with or without IfAbsent, renames the new file
//     over it;
//   - a directory at an object's path is no object either, but writes
//     fail (it is not removed);
//   - a symbolic link or anything but a directory on the way to an object:
//     Read and Replace return ErrNotFound, Delete finds nothing to delete,
//     List does not descend into it, and Write fails with an error naming
//     it (the driver does not remove what it did not make);
//   - a symbolic link or anything but a directory as the lock directory,
//     or but a regular file as a lock file: the writes and deletes that
//     need that lock fail with an error naming it; reads take no lock.
//
// Reads never size an allocation by what a file claims: a read with a
// length allocates at most min(size - offset, length) bytes (the cache
// bounds its reads by its max_value_size), and a whole read (length < 0)
// allocates at once only what the file system says it stores for the file
// (st_blocks, at least 1 MiB, at most 1 GiB) and beyond that grows as bytes
// arrive, so a sparse file claiming a terabyte is not allocated by its claim.
// A file shorter than fstat said gives what it holds; a read never goes
// past what was asked, nor past the size fstat gave.
//
// Hard links are outside this threat: a hard link to a file elsewhere is a
// regular file of the store, the same file, and reads as an object (making
// one needs access to that file: on Linux, protected_hardlinks). Writes and
// deletes replace or remove only the store's name for it, never the file.
//
// Without openat (Windows, Plan 9, WASI, js), the driver does the best
// portable approximation: every operation goes through an [os.Root] on the
// store's directory, so nothing escapes the store, and every entry is
// checked with Lstat before it is used, so a link or special file already
// there is refused as above. That is weaker: a link swapped in between the
// check and the use is followed (though only to somewhere inside the store),
// and a special file swapped in is opened without O_NONBLOCK.
//
// # Other
//
// Files are created with mode 0600 and directories with 0700. Delete removes
// directories it leaves empty (DeleteBatch once it is done with each
// directory, not after every name); a writer that finds its directory gone
// (or the store's directory itself) creates it again.
package file

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/blobcache/blobcache/driver"
)

// numStripes is the number of lock files.
const numStripes = 256

// errClosed is returned by calls made after Close.
var errClosed = fmt.Errorf("file: %w", driver.ErrClosed)

// Driver stores objects in a directory. It implements [driver.Driver],
// [driver.BatchDeleter] and [driver.Replacer], and is safe for concurrent use
// by multiple goroutines; several drivers, in one process or many, may share
// a directory.
type Driver struct {
	root    string
	closed  atomic.Bool
	stripes [numStripes]stripe
	snaps   dirCache
}

// stripe is one lock: sem excludes goroutines of this process, the flock on
// f other processes (and other drivers of this one).
type stripe struct {
	sem chan struct{}
	f   *os.File // opened on first use, guarded by sem
}

var (
	_ driver.Driver       = (*Driver)(nil)
	_ driver.BatchDeleter = (*Driver)(nil)
	_ driver.Replacer     = (*Driver)(nil)
)

// New returns a driver storing objects in dir, which must be an absolute path.
// The directory is created (mode 0700, with its parents) if missing.
func New(dir string) (*Driver, error) {
	if dir == "" || !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("file: directory %q is not an absolute path", dir)
	}
	dir = filepath.Clean(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	d := &Driver{root: dir}
	for i := range d.stripes {
		d.stripes[i].sem = make(chan struct{}, 1)
	}
	return d, nil
}

// OpenURL returns a driver for a URL of the form file:///abs/dir (the host
// may also be "localhost"). The URL's path is the directory, as for [New]. Any
// query parameter is an error (an [*driver.UnknownOptionError]): the caller
// removes those it handles. Every error about the URL wraps
// [driver.ErrInvalidOption].
func OpenURL(ctx context.Context, u *url.URL) (*Driver, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("file: %w: %s", driver.ErrInvalidOption, fmt.Sprintf(format, args...))
	}
	switch {
	case u.Scheme != "file":
		return nil, bad("URL scheme %q is not \"file\"", u.Scheme)
	case u.Opaque != "":
		return nil, bad("URL %q is not of the form file:///absolute/dir", u.Redacted())
	case u.User != nil:
		return nil, bad("URL must not have user information")
	case u.Host != "" && u.Host != "localhost":
		return nil, bad("URL host %q is not empty or \"localhost\"", u.Host)
	case u.Fragment != "" || u.RawFragment != "":
		// Not echoed: a '#' in a secret of another parameter ends the
		// query, and the rest of the secret is the fragment.
		return nil, bad("URL must not have a fragment ('#' ends the query; write it as %%23)")
	}
	// ParseQuery reports (rather than drops) a ';' or a bad escape; any
	// parameter at all is refused below, so nothing is ever lost.
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, bad("URL query: %v", err)
	}
	if len(q) > 0 {
		keys := slices.Sorted(maps.Keys(q))
		return nil, fmt.Errorf("file: %w", &driver.UnknownOptionError{Name: keys[0]})
	}
	if u.Path == "" {
		return nil, bad("URL %q has no directory path", u.Redacted())
	}
	if !filepath.IsAbs(u.Path) {
		return nil, bad("directory %q is not an absolute path", u.Path)
	}
	if err := ctx.Err(); err != nil { // the URL is checked first, then the directory made
		return nil, fmt.Errorf("file: open URL: %w", err)
	}
	return New(u.Path)
}

// Dir returns the directory the driver stores objects in.
func (d *Driver) Dir() string { return d.root }

// check returns the error a call should fail with before it starts.
func (d *Driver) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.closed.Load() {
		return errClosed
	}
	return nil
}

// path returns the file system path of the object file of name.
func (d *Driver) path(name string) string {
	return filepath.Join(d.root, filepath.FromSlash(objectPath(name)))
}

// Delete implements [driver.Driver]. It also removes the directories the
// object's removal leaves empty. A symbolic link or special file at the
// object's path is removed itself, never what it points to; a directory
// there, or a link or non-directory on the way, is no object to delete.
func (d *Driver) Delete(ctx context.Context, name string) error {
	if err := d.delete(ctx, name); err != nil {
		return deleteErr(name, err)
	}
	return nil
}

func deleteErr(name string, err error) error {
	return fmt.Errorf("file: delete %q: %w", name, err)
}

func (d *Driver) delete(ctx context.Context, name string) error {
	c, base, err := d.openObjectDir(ctx, name)
	if err != nil {
		if isAbsent(err) {
			return nil
		}
		return err
	}
	defer c.close()
	removed, err := d.unlinkObject(ctx, c.last(), name, base)
	if removed {
		c.prune()
	}
	return err
}

// unlinkObject removes the object file base of name from p, its directory,
// under the object's lock, and reports whether it removed an entry. An
// entry already gone, or a directory (no object), is no error.
func (d *Driver) unlinkObject(ctx context.Context, p *dir, name, base string) (bool, error) {
	unlock, err := d.lock(ctx, name)
	if err != nil {
		return false, err
	}
	err = p.unlink(base)
	unlock()
	if err != nil {
		if isMissing(err) {
			return false, nil
		}
		if st, serr := p.lstat(base); serr == nil && st.isDir() {
			return false, nil // a directory is no object
		}
		return false, err
	}
	return true, nil
}

// Batches of at least batchSplit names are deleted by batchWorkers
// goroutines, each taking a contiguous part of the batch. Unlinks in one
// directory serialize in the kernel, but the rest of each (the lock, the
// freeing of the inode) overlaps: a Clear of 250 entries took 6.2 µs an
// entry with two workers, 7.3 µs with one, and 6.0 µs with four, on 2 cores.
const (
	batchSplit   = 64
	batchWorkers = 2
)

// DeleteBatch implements [driver.BatchDeleter]. Each name is removed as
// [Driver.Delete] removes it, under its own lock; consecutive names in one
// directory (a listing's order, as Clear and culling pass them) share one
// walk to that directory, and the directories left empty are removed once,
// when the run of names in them ends, rather than after every name. A
// batch of 64 names or more is split in two contiguous halves deleted
// concurrently. On failure it returns a [*driver.BatchDeleteError].
func (d *Driver) DeleteBatch(ctx context.Context, names []string) error {
	if err := d.check(ctx); err != nil {
		return fmt.Errorf("file: delete batch: %w", err)
	}
	var (
		mu     sync.Mutex
		failed = map[string]error{}
	)
	fail := func(name string, err error) {
		mu.Lock()
		failed[name] = err
		mu.Unlock()
	}
	if len(names) < batchSplit {
		d.deleteRun(ctx, names, fail)
	} else {
		var wg sync.WaitGroup
		for part := range slices.Chunk(names, (len(names)+batchWorkers-1)/batchWorkers) {
			wg.Go(func() { d.deleteRun(ctx, part, fail) })
		}
		wg.Wait()
	}
	if len(failed) > 0 {
		return &driver.BatchDeleteError{Failed: failed}
	}
	return nil
}

// deleteRun deletes names one after another, calling fail for each it could
// not delete. It keeps the directory chain of the last name open while the
// next names are in the same directory, and prunes a chain once it is done
// with it, if it removed anything from it.
func (d *Driver) deleteRun(ctx context.Context, names []string, fail func(string, error)) {
	var (
		c        *dirChain // open on the directory dirKey, or nil
		dirKey   string
		chainErr error // why the chain of dirKey could not be opened
		removed  bool  // whether anything was removed through c
	)
	release := func() {
		if c != nil {
			if removed {
				c.prune()
			}
			c.close()
		}
		c, chainErr, removed = nil, nil, false
	}
	defer release()
	for i, name := range names {
		if err := d.check(ctx); err != nil {
			for _, n := range names[i:] {
				fail(n, deleteErr(n, err))
			}
			return
		}
		dirs, base := splitObject(name)
		key := strings.Join(dirs, "/")
		if key != dirKey || (c == nil && chainErr == nil) {
			release()
			dirKey = key
			c, chainErr = d.openChain(dirs, false)
		}
		if chainErr != nil {
			if !isAbsent(chainErr) {
				fail(name, deleteErr(name, chainErr))
			}
			continue
		}
		ok, err := d.unlinkObject(ctx, c.last(), name, base)
		if err != nil {
			fail(name, deleteErr(name, err))
		}
		removed = removed || ok
	}
}

// Close implements [driver.Driver]: it closes the lock files. Calls after
// Close fail; Close itself always returns nil.
func (d *Driver) Close() error {
	if !d.closed.CompareAndSwap(false, true) {
		return nil
	}
	d.snaps.clear()
	for i := range d.stripes {
		s := &d.stripes[i]
		s.sem <- struct{}{}
		if s.f != nil {
			s.f.Close()
			s.f = nil
		}
		<-s.sem
	}
	return nil
}
