package file

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// This file holds what the platform's directory walking (walk_unix.go,
// walk_other.go) shares: the type *dir, an open directory of the store,
// offers
//
//	sub(name) (*dir, error)            open a subdirectory, never through a link
//	mkdir(name) error                  make a subdirectory (mode 0700)
//	stat() (fileStat, error)           the directory's own attributes
//	lstat(name) (fileStat, error)      an entry's attributes, never through a link
//	entries() ([]dirEntry, error)      the entries' names and types
//	openRead(name) (objectFile, fileStat, error) a regular file, for reading
//	createTemp() (*os.File, string, error)      a new temporary file
//	setTimes(name string, t time.Time) error    stamp a file's times
//	rename(from, to string) error      rename an entry (replacing to, whatever it is)
//	link(from, to string) error        hard-link from as to, failing if to exists
//	unlink(name) error                 remove a non-directory entry itself
//	rmdir(name) error                  remove an empty subdirectory
//	openLock(name) (*os.File, error)   open (creating) a regular lock file
//	join(name) string                  the entry's path, for messages
//	close()
//
// and (*Driver).openRoot opens the store's directory. Errors are
// *os.PathError (or *os.LinkError) with the full path, or *refusedError when
// the entry is a symbolic link or of the wrong type.

// objectFile is an object file open for reading.
type objectFile interface {
	io.ReaderAt
	io.Closer
}

// fileStat is what the driver uses of a file's attributes.
type fileStat struct {
	mode   fs.FileMode // type bits only: 0 for a regular file
	ino    uint64      // 0 when unknown
	size   int64
	mtime  time.Time
	backed int64 // bytes of storage the file system holds for it; -1 when unknown
}

func (s fileStat) regular() bool { return s.mode.Type() == 0 }

func (s fileStat) isDir() bool { return s.mode.Type() == fs.ModeDir }

// describe says what kind of file s is, for messages.
func (s fileStat) describe() string {
	switch t := s.mode.Type(); t {
	case 0:
		return "a regular file"
	case fs.ModeDir:
		return "a directory"
	case fs.ModeSymlink:
		return "a symbolic link"
	case fs.ModeNamedPipe:
		return "a named pipe"
	case fs.ModeSocket:
		return "a socket"
	case fs.ModeDevice | fs.ModeCharDevice:
		return "a character device"
	case fs.ModeDevice:
		return "a block device"
	default:
		return fmt.Sprintf("a special file (%v)", t)
	}
}

// etagOf returns the ETag of an object file: inode, size and modification
// time in nanoseconds, in hex.
func etagOf(s fileStat) string {
	return strconv.FormatUint(s.ino, 16) + "-" +
		strconv.FormatInt(s.size, 16) + "-" +
		strconv.FormatInt(s.mtime.UnixNano(), 16)
}

// refusedError reports an entry the driver will not follow or use: a
// symbolic link, or another type of file than the one its place needs.
// Only hostile or foreign writers put such things in a store.
type refusedError struct {
	path string // the entry's full path
	what string // what is there, e.g. "a symbolic link"
	want string // what must be there, "a directory" or "a regular file"
	err  error  // the system's error, when there was one
}

// Error implements error.
func (e *refusedError) Error() string {
	return fmt.Sprintf("%s is %s, not %s: refused (the driver never follows a symbolic link nor opens a special file)", e.path, e.what, e.want)
}

// Unwrap returns the system error behind the refusal.
func (e *refusedError) Unwrap() error { return e.err }

// isRefused reports whether err is, or wraps, a *refusedError.
func isRefused(err error) bool {
	var r *refusedError
	return errors.As(err, &r)
}

// isMissing reports whether err means that a file does not exist.
func isMissing(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// isAbsent reports whether err means that there is no object: a missing
// file or directory, or one the driver refuses to use (which no object of
// the driver can be), or a file where a directory should be.
func isAbsent(err error) bool {
	return isMissing(err) || isRefused(err) || errors.Is(err, syscall.ENOTDIR)
}

// splitObject returns the directory components and the file name of name's
// object file.
func splitObject(name string) (dirs []string, base string) {
	comps := strings.Split(objectPath(name), "/")
	return comps[:len(comps)-1], comps[len(comps)-1]
}

// dirChain is a directory of the store opened one component at a time
// from the root, with every directory on the way (for pruning).
type dirChain struct {
	comps []string // the components below the root
	dirs  []*dir   // dirs[0] is the root, dirs[i] is comps[i-1]
}

// last returns the directory the chain leads to.
func (c *dirChain) last() *dir { return c.dirs[len(c.dirs)-1] }

// close closes every directory of the chain.
func (c *dirChain) close() {
	for _, d := range c.dirs {
		d.close()
	}
}

// prune removes the chain's directories, deepest first, as long as they
// are empty (never the root). Removing an empty directory races safely
// with writers: one that finds its directory gone makes it again.
func (c *dirChain) prune() {
	for i := len(c.comps); i >= 1; i-- {
		if c.dirs[i-1].rmdir(c.comps[i-1]) != nil {
			return
		}
	}
}

// openChain opens the directories comps below the root, one component at a
// time, never following a symbolic link and refusing anything that is not
// a directory. With create, it makes those that are missing (mode 0700).
func (d *Driver) openChain(comps []string, create bool) (*dirChain, error) {
	root, err := d.openRoot()
	if create && isMissing(err) {
		// The store's directory itself was removed: make it again, as
		// New did (its path is trusted).
		if err := os.MkdirAll(d.root, 0o700); err != nil {
			return nil, err
		}
		root, err = d.openRoot()
	}
	if err != nil {
		return nil, err
	}
	c := &dirChain{comps: comps, dirs: []*dir{root}}
	for _, comp := range comps {
		parent := c.last()
		sub, err := parent.sub(comp)
		if create && isMissing(err) {
			if err = parent.mkdir(comp); err == nil || errors.Is(err, fs.ErrExist) {
				sub, err = parent.sub(comp)
			}
		}
		if err != nil {
			c.close()
			return nil, err
		}
		c.dirs = append(c.dirs, sub)
	}
	return c, nil
}

// dirEntry is a directory entry as the directory reports it.
type dirEntry struct {
	name    string
	regular bool // a regular file, by the directory's own record (d_type)
}

// readEntries reads every entry of the directory f. The types come from the
// directory (getdents' d_type on Linux) where it records them, and from an
// lstat where it does not, as os.File.ReadDir does.
func readEntries(f *os.File) ([]dirEntry, error) {
	des, err := f.ReadDir(-1)
	out := make([]dirEntry, len(des))
	for i, de := range des {
		out[i] = dirEntry{name: de.Name(), regular: de.Type().IsRegular()}
	}
	return out, err
}
