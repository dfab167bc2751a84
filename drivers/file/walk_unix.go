//go:build unix

package file

import (
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// On unix every path of the store is walked from a descriptor of the
// store's directory, one component at a time, with openat(2) and
// O_NOFOLLOW: no symbolic link is ever followed, whatever its target, and
// an entry swapped for a link between two calls is refused rather than
// followed. Calls on an entry (fstatat, renameat, linkat, unlinkat,
// utimensat) are made relative to the descriptor of its directory and never
// follow a link in the entry itself.

// Open flags. O_NONBLOCK keeps an open of a named pipe (or of a device)
// from blocking; O_NOCTTY keeps a terminal from becoming ours.
const (
	oDir  = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	oRead = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
	oTemp = unix.O_RDWR | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	oLock = unix.O_RDWR | unix.O_CREAT | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
)

// dir is an open directory of the store.
type dir struct {
	fd   int
	path string // its full path, for messages
}

// retry calls f until it fails with another error than EINTR (signals,
// such as the Go runtime's preemption, interrupt some calls on some file
// systems).
func retry(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

// openRoot opens the store's directory. Its own path is the user's and
// trusted: links in it are followed, as when the store was made.
func (d *Driver) openRoot() (*dir, error) {
	var fd int
	err := retry(func() (err error) {
		fd, err = unix.Open(d.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: d.root, Err: err}
	}
	return &dir{fd: fd, path: d.root}, nil
}

func (p *dir) close() { unix.Close(p.fd) }

func (p *dir) join(name string) string { return p.path + "/" + name }

func (p *dir) pathErr(op, name string, err error) error {
	return &os.PathError{Op: op, Path: p.join(name), Err: err}
}

func (p *dir) openat(name string, flags int, perm uint32) (int, error) {
	var fd int
	err := retry(func() (err error) {
		fd, err = unix.Openat(p.fd, name, flags, perm)
		return err
	})
	return fd, err
}

// refuse explains a failed open of name as want: a *refusedError when the
// entry is a symbolic link or of another type (whichever error the system
// gave for it: ELOOP, EMLINK, EFTYPE, ENOTDIR, ENXIO...), else a
// *os.PathError.
func (p *dir) refuse(name string, want fs.FileMode, err error) error {
	if err != unix.ENOENT {
		if st, serr := p.lstat(name); serr == nil && st.mode.Type() != want {
			return &refusedError{path: p.join(name), what: st.describe(), want: wantName(want), err: err}
		}
	}
	return p.pathErr("openat", name, err)
}

func wantName(want fs.FileMode) string {
	if want == fs.ModeDir {
		return "a directory"
	}
	return "a regular file"
}

func (p *dir) sub(name string) (*dir, error) {
	fd, err := p.openat(name, oDir, 0)
	if err != nil {
		return nil, p.refuse(name, fs.ModeDir, err)
	}
	return &dir{fd: fd, path: p.join(name)}, nil
}

func (p *dir) mkdir(name string) error {
	if err := retry(func() error { return unix.Mkdirat(p.fd, name, 0o700) }); err != nil {
		return p.pathErr("mkdirat", name, err)
	}
	return nil
}

func (p *dir) stat() (fileStat, error) {
	var st unix.Stat_t
	if err := retry(func() error { return unix.Fstat(p.fd, &st) }); err != nil {
		return fileStat{}, &os.PathError{Op: "fstat", Path: p.path, Err: err}
	}
	return statOf(&st), nil
}

func (p *dir) lstat(name string) (fileStat, error) {
	var st unix.Stat_t
	if err := retry(func() error { return unix.Fstatat(p.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return fileStat{}, p.pathErr("fstatat", name, err)
	}
	return statOf(&st), nil
}

// statOf converts the system's attributes.
func statOf(st *unix.Stat_t) fileStat {
	var mode fs.FileMode
	switch uint32(st.Mode) & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFDIR:
		mode = fs.ModeDir
	case unix.S_IFLNK:
		mode = fs.ModeSymlink
	case unix.S_IFIFO:
		mode = fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode = fs.ModeSocket
	case unix.S_IFCHR:
		mode = fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode = fs.ModeDevice
	default:
		mode = fs.ModeIrregular
	}
	sec, nsec := st.Mtim.Unix()
	return fileStat{
		mode:   mode,
		ino:    uint64(st.Ino),
		size:   int64(st.Size),
		mtime:  time.Unix(sec, nsec),
		backed: int64(st.Blocks) * 512,
	}
}

func (p *dir) entries() ([]dirEntry, error) {
	// A descriptor of its own, so that reading moves no shared offset.
	fd, err := p.openat(".", oDir, 0)
	if err != nil {
		return nil, &os.PathError{Op: "openat", Path: p.path, Err: err}
	}
	f := os.NewFile(uintptr(fd), p.path)
	defer f.Close()
	return readEntries(f)
}

// checkRegular returns the attributes of fd, open on name, if it is a
// regular file; otherwise it closes fd and refuses it.
func (p *dir) checkRegular(name string, fd int) (fileStat, error) {
	var st unix.Stat_t
	if err := retry(func() error { return unix.Fstat(fd, &st) }); err != nil {
		unix.Close(fd)
		return fileStat{}, p.pathErr("fstat", name, err)
	}
	s := statOf(&st)
	if !s.regular() {
		unix.Close(fd)
		return fileStat{}, &refusedError{path: p.join(name), what: s.describe(), want: "a regular file"}
	}
	return s, nil
}

func (p *dir) openRead(name string) (objectFile, fileStat, error) {
	fd, err := p.openat(name, oRead, 0)
	if err != nil {
		return nil, fileStat{}, p.refuse(name, 0, err)
	}
	s, err := p.checkRegular(name, fd)
	if err != nil {
		return nil, fileStat{}, err
	}
	// Reads of a regular file never block, O_NONBLOCK or not.
	return &fdReader{fd: fd, path: p.join(name)}, s, nil
}

// fdReader reads an open regular file with pread(2).
type fdReader struct {
	fd   int
	path string
}

// ReadAt implements io.ReaderAt.
func (r *fdReader) ReadAt(b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		var m int
		err := retry(func() (err error) {
			m, err = unix.Pread(r.fd, b[n:], off+int64(n))
			return err
		})
		if err != nil {
			return n, &os.PathError{Op: "pread", Path: r.path, Err: err}
		}
		if m == 0 {
			return n, io.EOF
		}
		n += m
	}
	return n, nil
}

// Close closes the file.
func (r *fdReader) Close() error { return unix.Close(r.fd) }

func (p *dir) openLock(name string) (*os.File, error) {
	fd, err := p.openat(name, oLock, 0o600)
	if err != nil {
		return nil, p.refuse(name, 0, err)
	}
	if _, err := p.checkRegular(name, fd); err != nil {
		return nil, err
	}
	// A regular file: back to the ordinary mode before os.NewFile sees it.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, p.pathErr("fcntl", name, err)
	}
	return os.NewFile(uintptr(fd), p.join(name)), nil
}

// tempAttempts bounds the names createTemp tries.
const tempAttempts = 10000

func (p *dir) createTemp() (*os.File, string, error) {
	for range tempAttempts {
		name := tempPrefix + strconv.FormatUint(rand.Uint64(), 36)
		fd, err := p.openat(name, oTemp, 0o600)
		if err == unix.EEXIST {
			continue
		}
		if err != nil {
			return nil, "", p.pathErr("openat", name, err)
		}
		return os.NewFile(uintptr(fd), p.join(name)), name, nil
	}
	return nil, "", p.pathErr("openat", tempPrefix+"*", unix.EEXIST)
}

func (p *dir) setTimes(name string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	if err := retry(func() error {
		return unix.UtimesNanoAt(p.fd, name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	}); err != nil {
		return p.pathErr("utimensat", name, err)
	}
	return nil
}

func (p *dir) rename(from, to string) error {
	if err := retry(func() error { return unix.Renameat(p.fd, from, p.fd, to) }); err != nil {
		return &os.LinkError{Op: "renameat", Old: p.join(from), New: p.join(to), Err: err}
	}
	return nil
}

func (p *dir) unlink(name string) error {
	if err := retry(func() error { return unix.Unlinkat(p.fd, name, 0) }); err != nil {
		return p.pathErr("unlinkat", name, err)
	}
	return nil
}

func (p *dir) rmdir(name string) error {
	if err := retry(func() error { return unix.Unlinkat(p.fd, name, unix.AT_REMOVEDIR) }); err != nil {
		return p.pathErr("unlinkat", name, err)
	}
	return nil
}
