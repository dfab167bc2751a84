package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/blobcache/blobcache/driver"
)

// Write implements [driver.Driver]. With opts.IfAbsent it fails with
// [driver.ErrPreconditionFailed] when the object exists, atomically across
// processes. opts.ContentEncoding is ignored. A symbolic link or special
// file at the object's path is replaced, never written through; one on the
// way to it (or a file where a directory must be) fails the write with an
// error saying so.
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
	dirs, base := splitObject(name)
	var exists func(*dir) error
	if ifAbsent {
		// Fail early, without reading the body, when the object exists.
		exists = func(p *dir) error {
			if st, err := p.lstat(base); err == nil && st.regular() {
				return fmt.Errorf("%w: object exists (%s)", driver.ErrPreconditionFailed, p.join(base))
			}
			return nil
		}
	}
	c, tmp, err := d.writeTemp(ctx, dirs, true, exists, body)
	if err != nil {
		return err
	}
	defer c.close()
	p := c.last()
	unlock, err := d.lock(ctx, name)
	if err != nil {
		p.unlink(tmp)
		c.prune()
		return err
	}
	if ifAbsent {
		err = createNew(p, tmp, base)
	} else {
		err = p.rename(tmp, base)
	}
	unlock()
	if ifAbsent || err != nil {
		p.unlink(tmp) // the second link of the new file, or what failed
	}
	return err
}

// createNew makes the file tmp of p the object file base unless an object
// exists there. The caller holds the object's lock.
func createNew(p *dir, tmp, base string) error {
	err := p.link(tmp, base)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrExist) && !noHardLinks(err):
		return err
	}
	// Something is there, or the file system has no hard links: look and
	// rename. Every change of the object takes the lock the caller holds.
	st, err := p.lstat(base)
	switch {
	case err == nil && st.regular():
		return fmt.Errorf("%w: object exists (%s)", driver.ErrPreconditionFailed, p.join(base))
	case err == nil && st.isDir():
		return &refusedError{path: p.join(base), what: st.describe(), want: "a regular file", err: syscall.EISDIR}
	case err != nil && !isMissing(err):
		return err
	}
	// Nothing, or a link or special file, which is no object: replace it.
	return p.rename(tmp, base)
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
	dirs, base := splitObject(name)
	// Fail early, without reading the body, when the check would fail
	// anyway.
	c, tmp, err := d.writeTemp(ctx, dirs, false, func(p *dir) error { return checkETag(p, base, etag) }, body)
	if err != nil {
		return absentErr(err)
	}
	defer c.close()
	p := c.last()
	unlock, err := d.lock(ctx, name)
	if err != nil {
		p.unlink(tmp)
		return err
	}
	err = checkETag(p, base, etag)
	if err == nil {
		err = p.rename(tmp, base)
	}
	unlock()
	if err != nil {
		p.unlink(tmp)
		if errors.Is(err, driver.ErrNotFound) {
			// The object went while the body was written, and a Delete
			// could not remove the directory the temporary file was in.
			c.prune()
		}
	}
	return err
}

// checkETag returns nil if the object file base of p exists with the ETag
// etag.
func checkETag(p *dir, base, etag string) error {
	st, err := p.lstat(base)
	switch {
	case isMissing(err):
		return notFound(err)
	case err != nil:
		return err
	case !st.regular():
		return fmt.Errorf("%w (%s is %s)", driver.ErrNotFound, p.join(base), st.describe())
	case etagOf(st) != etag:
		return fmt.Errorf("%w: ETag is %q, not %q", driver.ErrPreconditionFailed, etagOf(st), etag)
	}
	return nil
}

// copyBufs holds buffers for copying bodies.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// mkdirAttempts bounds how often a writer recreates a directory that a
// concurrent Delete keeps removing.
const mkdirAttempts = 100

// writeTemp opens the directories dirs (creating those missing when create
// is set), calls before on the last one (when not nil) and stops with its
// error, then writes body to a new temporary file there and stamps its
// modification time. It returns the directories, which the caller closes,
// and the file's name. On error no file is left behind, nor any directory
// it made.
func (d *Driver) writeTemp(ctx context.Context, dirs []string, create bool, before func(*dir) error, body io.Reader) (*dirChain, string, error) {
	var (
		c   *dirChain
		f   *os.File
		tmp string
	)
	for attempt := 1; ; attempt++ {
		var err error
		c, err = d.openChain(dirs, create)
		if err != nil {
			if create && isMissing(err) && attempt < mkdirAttempts {
				// A concurrent Delete removed a directory just made.
				continue
			}
			return nil, "", err
		}
		if before != nil {
			if err := before(c.last()); err != nil {
				c.close()
				return nil, "", err
			}
		}
		f, tmp, err = c.last().createTemp()
		if err == nil {
			break
		}
		if !isMissing(err) || attempt == mkdirAttempts {
			if create {
				c.prune()
			}
			c.close()
			return nil, "", err
		}
		// The directory was removed after it was opened: walk again.
		c.close()
	}
	p := c.last()
	buf := copyBufs.Get().(*[]byte)
	_, err := io.CopyBuffer(writerOnly{f}, &ctxReader{ctx: ctx, r: body}, *buf)
	copyBufs.Put(buf)
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = p.setTimes(tmp, stamp())
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		p.unlink(tmp)
		if create {
			// Do not leave behind directories made for nothing.
			c.prune()
		}
		c.close()
		return nil, "", err
	}
	return c, tmp, nil
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
