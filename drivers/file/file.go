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
// name. Names of up to [driver.MaxNameLength] bytes work as long as the whole
// path fits the system's limit (4096 bytes on Linux): a name made only of
// escaped bytes triples in length, so keep the directory's own path under
// about 900 bytes if such names are possible.
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
// without hard links it falls back to checking and renaming under the object's
// lock (see below), which is atomic among blobcache drivers.
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
// # Other
//
// Files are created with mode 0600 and directories with 0700. Delete removes
// directories it leaves empty; a writer that finds its directory gone creates
// it again.
package file

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/blobcache/blobcache/driver"
)

// numStripes is the number of lock files.
const numStripes = 256

// errClosed is returned by calls made after Close.
var errClosed = errors.New("file: driver is closed")

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
// query parameter is an error: the caller removes those it handles.
func OpenURL(ctx context.Context, u *url.URL) (*Driver, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("file: open URL: %w", err)
	}
	switch {
	case u.Scheme != "file":
		return nil, fmt.Errorf("file: URL scheme %q is not \"file\"", u.Scheme)
	case u.Opaque != "":
		return nil, fmt.Errorf("file: URL %q is not of the form file:///absolute/dir", u.Redacted())
	case u.User != nil:
		return nil, fmt.Errorf("file: URL must not have user information")
	case u.Host != "" && u.Host != "localhost":
		return nil, fmt.Errorf("file: URL host %q is not empty or \"localhost\"", u.Host)
	case u.Fragment != "":
		return nil, fmt.Errorf("file: URL must not have a fragment (#%s)", u.Fragment)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("file: URL query: %w", err)
	}
	if len(q) > 0 {
		keys := slices.Sorted(maps.Keys(q))
		return nil, fmt.Errorf("file: %w", &driver.UnknownOptionError{Name: keys[0]})
	}
	if u.Path == "" {
		return nil, fmt.Errorf("file: URL %q has no directory path", u.Redacted())
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

// isNotExist reports whether err means a path (or one of its directories)
// does not exist.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// notFound wraps err, an error for a missing file, as driver.ErrNotFound.
func notFound(err error) error {
	return fmt.Errorf("%w (%w)", driver.ErrNotFound, err)
}

// Read implements [driver.Driver]. Attributes.ETag is set.
func (d *Driver) Read(ctx context.Context, name string, offset, length int64) ([]byte, driver.Attributes, error) {
	data, attrs, err := d.read(ctx, name, offset, length)
	if err != nil {
		return nil, driver.Attributes{}, fmt.Errorf("file: read %q: %w", name, err)
	}
	return data, attrs, nil
}

// readChunk is how much Read reads between checks of its context.
const readChunk = 1 << 20

func (d *Driver) read(ctx context.Context, name string, offset, length int64) ([]byte, driver.Attributes, error) {
	var attrs driver.Attributes
	if err := d.check(ctx); err != nil {
		return nil, attrs, err
	}
	f, err := os.Open(d.path(name))
	if err != nil {
		if isNotExist(err) {
			err = notFound(err)
		}
		return nil, attrs, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, attrs, err
	}
	if !fi.Mode().IsRegular() {
		return nil, attrs, fmt.Errorf("%w (%s is not a regular file)", driver.ErrNotFound, f.Name())
	}
	size := fi.Size()
	start := min(offset, size)
	n := size - start
	if length >= 0 && length < n {
		n = length
	}
	buf := make([]byte, n)
	for i := int64(0); i < n; i += readChunk {
		if i > 0 {
			if err := ctx.Err(); err != nil {
				return nil, attrs, err
			}
		}
		j := min(i+readChunk, n)
		if _, err := f.ReadAt(buf[i:j], start+i); err != nil {
			// Files are never written in place, so a short read is an
			// error of the file system.
			return nil, attrs, err
		}
	}
	attrs = driver.Attributes{Name: name, Size: size, ModTime: fi.ModTime(), ETag: etagOf(fi)}
	return buf, attrs, nil
}

// etagOf returns the ETag of an object file.
func etagOf(fi fs.FileInfo) string {
	return strconv.FormatUint(inode(fi), 16) + "-" +
		strconv.FormatInt(fi.Size(), 16) + "-" +
		strconv.FormatInt(fi.ModTime().UnixNano(), 16)
}

// Write implements [driver.Driver]. With opts.IfAbsent it fails with
// [driver.ErrPreconditionFailed] when the object exists, atomically across
// processes. opts.ContentEncoding is ignored.
func (d *Driver) Write(ctx context.Context, name string, body io.Reader, opts *driver.WriteOptions) error {
	if err := d.write(ctx, name, body, opts.IfAbsent); err != nil {
		return fmt.Errorf("file: write %q: %w", name, err)
	}
	return nil
}

func (d *Driver) write(ctx context.Context, name string, body io.Reader, ifAbsent bool) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	target := d.path(name)
	if ifAbsent {
		// Fail early, without reading the body, when the object exists.
		if _, err := os.Lstat(target); err == nil {
			return fmt.Errorf("%w: object exists (%s)", driver.ErrPreconditionFailed, target)
		}
	}
	tmp, err := d.writeTemp(ctx, filepath.Dir(target), body)
	if err != nil {
		// Do not leave behind directories made for nothing.
		d.prune(filepath.Dir(target))
		return err
	}
	unlock, err := d.lock(ctx, name)
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if ifAbsent {
		err = createNew(tmp, target)
	} else {
		err = os.Rename(tmp, target)
	}
	unlock()
	if ifAbsent || err != nil {
		os.Remove(tmp) // the second link of the new file, or what failed
	}
	return err
}

// createNew makes tmp the file target unless target exists.
func createNew(tmp, target string) error {
	err := os.Link(tmp, target)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%w: object exists (%w)", driver.ErrPreconditionFailed, err)
	case !noHardLinks(err):
		return err
	}
	// No hard links here: check and rename. The caller holds the object's
	// lock, which every change of the object takes.
	if _, err := os.Lstat(target); err == nil {
		return fmt.Errorf("%w: object exists (%s)", driver.ErrPreconditionFailed, target)
	} else if !isNotExist(err) {
		return err
	}
	return os.Rename(tmp, target)
}

// Replace implements [driver.Replacer]: it stores body under name only if
// the object's ETag is etag, atomically with respect to every change of the
// object in any process. opts.IfAbsent and opts.ContentEncoding are ignored.
func (d *Driver) Replace(ctx context.Context, name string, body io.Reader, etag string, opts *driver.WriteOptions) error {
	if err := d.replace(ctx, name, body, etag); err != nil {
		return fmt.Errorf("file: replace %q: %w", name, err)
	}
	return nil
}

func (d *Driver) replace(ctx context.Context, name string, body io.Reader, etag string) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	target := d.path(name)
	// Fail early, without reading the body, when the check would fail
	// anyway.
	if err := checkETag(target, etag); err != nil {
		return err
	}
	tmp, err := d.writeTemp(ctx, filepath.Dir(target), body)
	if err != nil {
		return err
	}
	unlock, err := d.lock(ctx, name)
	if err != nil {
		os.Remove(tmp)
		return err
	}
	err = checkETag(target, etag)
	if err == nil {
		err = os.Rename(tmp, target)
	}
	unlock()
	if err != nil {
		os.Remove(tmp)
		if errors.Is(err, driver.ErrNotFound) {
			// The object went while the body was written: do not leave
			// behind the directories writeTemp may have made again.
			d.prune(filepath.Dir(target))
		}
	}
	return err
}

// checkETag returns nil if the object file target exists with the ETag etag.
func checkETag(target, etag string) error {
	fi, err := os.Lstat(target)
	switch {
	case isNotExist(err):
		return notFound(err)
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w (%s is not a regular file)", driver.ErrNotFound, target)
	case etagOf(fi) != etag:
		return fmt.Errorf("%w: ETag is %q, not %q", driver.ErrPreconditionFailed, etagOf(fi), etag)
	}
	return nil
}

// copyBufs holds buffers for copying bodies.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// mkdirAttempts bounds how often a writer recreates a directory that a
// concurrent Delete keeps removing.
const mkdirAttempts = 100

// writeTemp writes body to a new temporary file in dir, which it creates if
// missing, stamps its modification time and returns its path. On error no
// file is left behind.
func (d *Driver) writeTemp(ctx context.Context, dir string, body io.Reader) (string, error) {
	var f *os.File
	var err error
	for attempt := 1; ; attempt++ {
		f, err = os.CreateTemp(dir, tempPrefix+"*")
		if err == nil || !errors.Is(err, fs.ErrNotExist) || attempt == mkdirAttempts {
			break
		}
		// A concurrent Delete may remove a directory MkdirAll just
		// made: try again.
		// MkdirAll fails with ErrNotExist or ErrExist when a directory
		// goes between its steps.
		if err = os.MkdirAll(dir, 0o700); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", err
	}
	buf := copyBufs.Get().(*[]byte)
	_, err = io.CopyBuffer(writerOnly{f}, &ctxReader{ctx: ctx, r: body}, *buf)
	copyBufs.Put(buf)
	if err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	t := stamp()
	if err := os.Chtimes(tmp, t, t); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// writerOnly hides the ReadFrom method of *os.File, so that io.CopyBuffer
// uses the buffer it is given.
type writerOnly struct{ io.Writer }

// ctxReader fails with the context's error once the context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

// Read implements io.Reader.
func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// lastStamp is the last time stamp given to a file, in Unix nanoseconds.
var lastStamp atomic.Int64

// stamp returns the modification time for a new file: now, but strictly
// later than any stamp before it in this process.
func stamp() time.Time {
	now := time.Now().UnixNano()
	for {
		last := lastStamp.Load()
		t := max(now, last+1)
		if lastStamp.CompareAndSwap(last, t) {
			return time.Unix(0, t)
		}
	}
}

// Delete implements [driver.Driver]. It also removes the directories the
// object's removal leaves empty.
func (d *Driver) Delete(ctx context.Context, name string) error {
	if err := d.delete(ctx, name); err != nil {
		return fmt.Errorf("file: delete %q: %w", name, err)
	}
	return nil
}

func (d *Driver) delete(ctx context.Context, name string) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	target := d.path(name)
	unlock, err := d.lock(ctx, name)
	if err != nil {
		return err
	}
	err = syscall.Unlink(target)
	unlock()
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return &os.PathError{Op: "unlink", Path: target, Err: err}
	}
	d.prune(filepath.Dir(target))
	return nil
}

// prune removes dir and its parents below the store's directory as long as
// they are empty. Removing an empty directory races safely with writers:
// one that finds its directory gone makes it again (see writeTemp).
func (d *Driver) prune(dir string) {
	for len(dir) > len(d.root) && strings.HasPrefix(dir, d.root) {
		if syscall.Rmdir(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// DeleteBatch implements [driver.BatchDeleter] by deleting one name after
// another. On failure it returns a [*driver.BatchDeleteError].
func (d *Driver) DeleteBatch(ctx context.Context, names []string) error {
	if err := d.check(ctx); err != nil {
		return fmt.Errorf("file: delete batch: %w", err)
	}
	failed := map[string]error{}
	for i, name := range names {
		if err := ctx.Err(); err != nil {
			for _, n := range names[i:] {
				failed[n] = err
			}
			break
		}
		if err := d.Delete(ctx, name); err != nil {
			failed[name] = err
		}
	}
	if len(failed) > 0 {
		return &driver.BatchDeleteError{Failed: failed}
	}
	return nil
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

// lock takes the lock of name's stripe and returns the function that
// releases it. It waits until it has the lock or ctx is done.
func (d *Driver) lock(ctx context.Context, name string) (func(), error) {
	h := fnv.New32a()
	h.Write([]byte(name))
	i := h.Sum32() % numStripes
	s := &d.stripes[i]
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	fail := func(err error) (func(), error) {
		<-s.sem
		return nil, err
	}
	if d.closed.Load() {
		return fail(errClosed)
	}
	if s.f == nil {
		f, err := d.openLockFile(i)
		if err != nil {
			return fail(err)
		}
		s.f = f
	}
	delay := 20 * time.Microsecond
	for {
		ok, err := tryLock(s.f)
		if err != nil {
			return fail(err)
		}
		if ok {
			break
		}
		// Another process holds it, and only for a rename or so.
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fail(ctx.Err())
		}
		delay = min(2*delay, 2*time.Millisecond)
	}
	return func() {
		if err := unlock(s.f); err != nil {
			// Closing the file releases the lock too.
			s.f.Close()
			s.f = nil
		}
		<-s.sem
	}, nil
}

// openLockFile opens (creating) lock file i.
func (d *Driver) openLockFile(i uint32) (*os.File, error) {
	dir := filepath.Join(d.root, lockDir)
	path := filepath.Join(dir, fmt.Sprintf("%02x", i))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	}
	return f, err
}
