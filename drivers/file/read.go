package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/blobcache/blobcache/driver"
)

// Read implements [driver.Driver]. Attributes.ETag is set. A symbolic
// link, a special file or a directory at the object's path, or on the way
// to it, is no object: ErrNotFound. Reads never allocate by what a file
// claims beyond the length asked for (see readObject).
func (d *Driver) Read(ctx context.Context, name string, offset, length int64) ([]byte, driver.Attributes, error) {
	data, attrs, err := d.read(ctx, name, offset, length)
	if err != nil {
		return nil, driver.Attributes{}, fmt.Errorf("file: read %q: %w", name, err)
	}
	return data, attrs, nil
}

// notFound wraps err, an error for a missing file, as driver.ErrNotFound.
func notFound(err error) error {
	return fmt.Errorf("%w (%w)", driver.ErrNotFound, err)
}

// absentErr returns err as driver.ErrNotFound when it means there is no
// object (see isAbsent).
func absentErr(err error) error {
	if isAbsent(err) && !errors.Is(err, driver.ErrNotFound) {
		return notFound(err)
	}
	return err
}

// openObjectDir checks ctx and the driver, and opens the directories that
// hold object name; it returns them and the object's file name in the last.
func (d *Driver) openObjectDir(ctx context.Context, name string) (*dirChain, string, error) {
	if err := d.check(ctx); err != nil {
		return nil, "", err
	}
	dirs, base := splitObject(name)
	c, err := d.openChain(dirs, false)
	return c, base, err
}

func (d *Driver) read(ctx context.Context, name string, offset, length int64) ([]byte, driver.Attributes, error) {
	var attrs driver.Attributes
	c, base, err := d.openObjectDir(ctx, name)
	if err != nil {
		return nil, attrs, absentErr(err)
	}
	defer c.close()
	f, st, err := c.last().openRead(base)
	if err != nil {
		return nil, attrs, absentErr(err)
	}
	defer f.Close()
	data, err := readObject(ctx, f, st.size, st.backed, offset, length)
	if err != nil {
		return nil, attrs, err
	}
	attrs = driver.Attributes{Name: name, Size: st.size, ModTime: st.mtime, ETag: etagOf(st)}
	return data, attrs, nil
}

// Allocation bounds of readObject.
const (
	// readChunk is how much a read reads between checks of its context.
	readChunk = 1 << 20
	// wholePrealloc is how much of a whole read (length < 0) is allocated
	// at once whatever the file system says of the file's storage.
	wholePrealloc = readChunk
	// trustMax is the most allocated at once on the word of the file:
	// a bounded read allocates its bound up to this, a whole read the
	// storage the file system holds for the file up to this.
	trustMax = 1 << 30
)

// readObject reads from r, an object file whose size fstat says is
// claimed, length bytes from offset, or all bytes from offset when length
// is negative. backed is the storage the file system holds for the file
// (st_blocks), or -1 when unknown.
//
// Nothing sizes an allocation by the claim alone. A bounded read allocates
// at most min(claimed - offset, length), at once up to trustMax; a whole
// read allocates at once only what the file's storage backs (at least
// wholePrealloc, at most trustMax), so a sparse file claiming a terabyte
// costs what its bytes cost as they arrive, never its claim up front.
// Beyond what is allocated at once, the buffer grows as bytes arrive. The
// read stops at the end of the file (a file shorter than claimed gives what
// it holds) and never reads past min(claimed, offset+length): bytes
// appended after fstat are not read.
func readObject(ctx context.Context, r io.ReaderAt, claimed, backed, offset, length int64) ([]byte, error) {
	claimed = max(claimed, 0)
	start := min(offset, claimed)
	n := claimed - start
	trusted := max(int64(wholePrealloc), min(backed-start, trustMax))
	if length >= 0 {
		n = min(n, length)
		trusted = trustMax
	}
	if n > math.MaxInt {
		return nil, fmt.Errorf("%d bytes from offset %d are too many to read into memory", n, start)
	}
	buf := make([]byte, 0, min(n, trusted))
	for int64(len(buf)) < n {
		if len(buf) > 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if len(buf) == cap(buf) {
			// Everything allocated has arrived and more is claimed.
			grown := make([]byte, len(buf), min(n, 2*int64(cap(buf))))
			copy(grown, buf)
			buf = grown
		}
		end := min(cap(buf), len(buf)+readChunk)
		m, err := r.ReadAt(buf[len(buf):end], start+int64(len(buf)))
		buf = buf[:len(buf)+m]
		if err == io.EOF || err == nil && m == 0 {
			break // shorter than claimed: what is there
		}
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// ReadDelete implements [driver.ReadDeleter]. Under the object's lock,
// which every change of an object takes, also in other processes, it opens
// and reads the object file and then removes it, so the bytes returned are
// those of the file removed; the directories its removal leaves empty go
// too, as with [Driver.Delete]. What Read refuses (a symbolic link, a
// special file or a directory at the object's path, or on the way to it) is
// no object: ErrNotFound, and it stays.
func (d *Driver) ReadDelete(ctx context.Context, name string, length int64) ([]byte, driver.Attributes, error) {
	data, attrs, err := d.readDelete(ctx, name, length)
	if err != nil {
		return nil, driver.Attributes{}, fmt.Errorf("file: read and delete %q: %w", name, err)
	}
	return data, attrs, nil
}

func (d *Driver) readDelete(ctx context.Context, name string, length int64) ([]byte, driver.Attributes, error) {
	var attrs driver.Attributes
	c, base, err := d.openObjectDir(ctx, name)
	if err != nil {
		return nil, attrs, absentErr(err)
	}
	defer c.close()
	data, st, err := d.readUnlink(ctx, c.last(), name, base, length)
	if err != nil {
		return nil, attrs, err
	}
	c.prune()
	return data, driver.Attributes{Name: name, Size: st.size, ModTime: st.mtime, ETag: etagOf(st)}, nil
}

// readUnlink reads length bytes of the object file base of name in p, its
// directory, and removes it, under the object's lock.
func (d *Driver) readUnlink(ctx context.Context, p *dir, name, base string, length int64) ([]byte, fileStat, error) {
	unlock, err := d.lock(ctx, name)
	if err != nil {
		return nil, fileStat{}, err
	}
	defer unlock()
	f, st, err := p.openRead(base)
	if err != nil {
		return nil, st, absentErr(err)
	}
	data, err := readObject(ctx, f, st.size, st.backed, 0, length)
	f.Close() // before the removal, which some systems refuse for an open file
	if err != nil {
		return nil, st, err
	}
	err = p.unlink(base)
	if isMissing(err) {
		// Gone already is what was asked for: something that takes no
		// lock removed the file after it was read.
		err = nil
	}
	if err != nil {
		return nil, st, err
	}
	return data, st, nil
}
