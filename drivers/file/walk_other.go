//go:build !unix

package file

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Without openat(2) and O_NOFOLLOW (Windows, Plan 9, WASI, js), every path
// goes through an *os.Root on the store's directory, so that no operation
// escapes the store, and every entry is checked with Lstat before it is
// used, so that a symbolic link (or junction) already there is refused.
// This is weaker than on unix: a link swapped in between the check and the
// use is followed, though only to somewhere inside the store (os.Root
// guarantees that much); and opening a special file is not guarded by
// O_NONBLOCK.

// dir is an open directory of the store.
type dir struct {
	r    *os.Root
	path string // its full path, for messages
}

func (d *Driver) openRoot() (*dir, error) {
	r, err := os.OpenRoot(d.root)
	if err != nil {
		return nil, err
	}
	return &dir{r: r, path: d.root}, nil
}

func (p *dir) close() { p.r.Close() }

func (p *dir) join(name string) string { return filepath.Join(p.path, name) }

// fix gives an error of the root, which names name relative to it, the
// entry's full path.
func (p *dir) fix(err error, name string) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return &os.PathError{Op: pe.Op, Path: p.join(name), Err: pe.Err}
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return &os.LinkError{Op: le.Op, Old: p.join(le.Old), New: p.join(le.New), Err: le.Err}
	}
	return err
}

// check returns an error unless name is of type want (0 for a regular
// file).
func (p *dir) check(name string, want fs.FileMode) error {
	st, err := p.lstat(name)
	if err != nil {
		return err
	}
	if st.mode.Type() != want {
		w, errno := "a regular file", syscall.EINVAL
		if want == fs.ModeDir {
			w, errno = "a directory", syscall.ENOTDIR
		}
		return &refusedError{path: p.join(name), what: st.describe(), want: w, err: errno}
	}
	return nil
}

func (p *dir) sub(name string) (*dir, error) {
	if err := p.check(name, fs.ModeDir); err != nil {
		return nil, err
	}
	r, err := p.r.OpenRoot(name)
	if err != nil {
		return nil, p.fix(err, name)
	}
	return &dir{r: r, path: p.join(name)}, nil
}

func (p *dir) mkdir(name string) error { return p.fix(p.r.Mkdir(name, 0o700), name) }

func statFrom(fi fs.FileInfo) fileStat {
	return fileStat{mode: fi.Mode().Type(), size: fi.Size(), mtime: fi.ModTime(), backed: -1}
}

func (p *dir) stat() (fileStat, error) {
	fi, err := p.r.Stat(".")
	if err != nil {
		return fileStat{}, p.fix(err, ".")
	}
	return statFrom(fi), nil
}

func (p *dir) lstat(name string) (fileStat, error) {
	fi, err := p.r.Lstat(name)
	if err != nil {
		return fileStat{}, p.fix(err, name)
	}
	return statFrom(fi), nil
}

func (p *dir) entries() ([]dirEntry, error) {
	f, err := p.r.Open(".")
	if err != nil {
		return nil, p.fix(err, ".")
	}
	defer f.Close()
	return readEntries(f)
}

// openChecked opens name with flag once it is a regular file, and checks
// again what was opened.
func (p *dir) openChecked(name string, flag int) (*os.File, fileStat, error) {
	if err := p.check(name, 0); err != nil && (flag&os.O_CREATE == 0 || !isMissing(err)) {
		return nil, fileStat{}, err
	}
	f, err := p.r.OpenFile(name, flag, 0o600)
	if err != nil {
		return nil, fileStat{}, p.fix(err, name)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fileStat{}, p.fix(err, name)
	}
	if st := statFrom(fi); !st.regular() {
		f.Close()
		return nil, fileStat{}, &refusedError{path: p.join(name), what: st.describe(), want: "a regular file"}
	}
	return f, statFrom(fi), nil
}

func (p *dir) openRead(name string) (objectFile, fileStat, error) {
	return p.openChecked(name, os.O_RDONLY)
}

func (p *dir) openLock(name string) (*os.File, error) {
	f, _, err := p.openChecked(name, os.O_RDWR|os.O_CREATE)
	return f, err
}

// tempAttempts bounds the names createTemp tries.
const tempAttempts = 10000

func (p *dir) createTemp() (*os.File, string, error) {
	for range tempAttempts {
		name := tempPrefix + strconv.FormatUint(rand.Uint64(), 36)
		f, err := p.r.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", p.fix(err, name)
		}
		return f, name, nil
	}
	return nil, "", &os.PathError{Op: "open", Path: p.join(tempPrefix + "*"), Err: fs.ErrExist}
}

func (p *dir) setTimes(name string, t time.Time) error {
	return p.fix(p.r.Chtimes(name, t, t), name)
}

func (p *dir) rename(from, to string) error { return p.fix(p.r.Rename(from, to), from) }

func (p *dir) link(from, to string) error { return p.fix(p.r.Link(from, to), from) }

func (p *dir) unlink(name string) error {
	// Remove would also remove an empty directory: look first.
	if st, err := p.lstat(name); err != nil {
		return err
	} else if st.isDir() {
		return &os.PathError{Op: "remove", Path: p.join(name), Err: syscall.EISDIR}
	}
	return p.fix(p.r.Remove(name), name)
}

func (p *dir) rmdir(name string) error {
	if err := p.check(name, fs.ModeDir); err != nil {
		return err
	}
	return p.fix(p.r.Remove(name), name)
}
