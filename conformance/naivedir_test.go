//go:build unix

package conformance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/blobcache/blobcache/driver"
)

// The hostile section's broken driver: naiveDir keeps each object as the
// file root/<name>, as a first directory driver would. It follows symbolic
// links (os.Stat, os.Open, os.Create), opens whatever it finds (a named pipe
// blocks the open), sizes its read buffer by what stat says (up to 128 MiB)
// and keeps a lock file per name in root/.locks. Every hostile case must
// fail on it; drivers/file, which passes them, is the positive control.

type naiveDir struct{ root string }

const naiveLocks = ".locks"

var _ driver.Driver = (*naiveDir)(nil)

func (d *naiveDir) path(name string) string { return filepath.Join(d.root, filepath.FromSlash(name)) }

func (d *naiveDir) Read(ctx context.Context, name string, offset, length int64) ([]byte, driver.Attributes, error) {
	p := d.path(name)
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) || err == nil && st.IsDir() {
		return nil, driver.Attributes{}, fmt.Errorf("naive: read %q: %w", name, driver.ErrNotFound)
	} else if err != nil {
		return nil, driver.Attributes{}, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, driver.Attributes{}, err
	}
	defer f.Close()
	buf := make([]byte, min(st.Size(), 128<<20))
	n, _ := io.ReadFull(f, buf)
	data := buf[:n]
	start, end := min(offset, int64(n)), int64(n)
	if length >= 0 && start+length < end {
		end = start + length
	}
	return data[start:end], driver.Attributes{Name: name, Size: st.Size(), ModTime: st.ModTime()}, nil
}

func (d *naiveDir) lock(name string) error {
	sum := sha256.Sum256([]byte(name))
	dir := filepath.Join(d.root, naiveLocks)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, hex.EncodeToString(sum[:8])))
	if err != nil {
		return err
	}
	return f.Close()
}

func (d *naiveDir) Write(ctx context.Context, name string, body io.Reader, opts *driver.WriteOptions) error {
	data, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	if err := d.lock(name); err != nil {
		return err
	}
	p := d.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if opts.IfAbsent {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("naive: write %q: %w", name, driver.ErrPreconditionFailed)
		} else if err != nil {
			return err
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	return os.WriteFile(p, data, 0o644)
}

func (d *naiveDir) Delete(ctx context.Context, name string) error {
	if err := os.Remove(d.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (d *naiveDir) List(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	var objs []driver.Attributes
	err := filepath.WalkDir(d.root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(d.root, p)
		if rel == naiveLocks && de.IsDir() {
			return fs.SkipDir
		}
		if de.IsDir() {
			return nil
		}
		name := filepath.ToSlash(rel)
		if !strings.HasPrefix(name, opts.Prefix) || name <= opts.PageToken {
			return nil
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil
		}
		objs = append(objs, driver.Attributes{Name: name, Size: st.Size(), ModTime: st.ModTime()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(objs, func(a, b driver.Attributes) int { return strings.Compare(a.Name, b.Name) })
	size := opts.PageSize
	if size == 0 {
		size = driver.MaxListPageSize
	}
	page := &driver.ListPage{Objects: objs}
	if len(objs) > size {
		page.Objects = objs[:size]
		page.NextPageToken = objs[size-1].Name
	}
	return page, nil
}

func (d *naiveDir) Close() error { return nil }

// naiveHarness plants attacks in a naiveDir's directory.
type naiveHarness struct{ root string }

var _ HostileStore = (*naiveHarness)(nil)

func (h *naiveHarness) MakeDriver(context.Context) (driver.Driver, error) {
	return &naiveDir{root: h.root}, nil
}

// Close unblocks a read stuck opening a named pipe (the FIFO case leaves
// one behind when it fails), by opening each pipe for writing.
func (h *naiveHarness) Close() {
	filepath.WalkDir(h.root, func(p string, de fs.DirEntry, err error) error {
		if err == nil && de.Type()&fs.ModeNamedPipe != 0 {
			if fd, err := syscall.Open(p, syscall.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				syscall.Close(fd)
			}
		}
		return nil
	})
}

// The store cannot hold "a" beside "a/b": a file is not a directory.
func (h *naiveHarness) NestedObjects() bool { return false }
func (h *naiveHarness) FolderObjects() bool { return false }

func (h *naiveHarness) objectPath(name string) (string, error) {
	p := filepath.Join(h.root, filepath.FromSlash(name))
	if err := os.RemoveAll(p); err != nil {
		return "", err
	}
	return p, os.MkdirAll(filepath.Dir(p), 0o755)
}

func (h *naiveHarness) PlantSymlink(name, target string) error {
	p, err := h.objectPath(name)
	if err != nil {
		return err
	}
	return os.Symlink(target, p)
}

func (h *naiveHarness) PlantDirSymlink(prefix, target string) error {
	p := filepath.Join(h.root, filepath.FromSlash(strings.TrimSuffix(prefix, "/")))
	if err := os.Rename(p, target); err != nil {
		return err
	}
	return os.Symlink(target, p)
}

func (h *naiveHarness) PlantFIFO(name string) error {
	p, err := h.objectPath(name)
	if err != nil {
		return err
	}
	return syscall.Mkfifo(p, 0o600)
}

func (h *naiveHarness) PlantSparse(name string, size int64) error {
	p, err := h.objectPath(name)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		return err
	}
	if err := os.Truncate(p, size); err != nil {
		return fmt.Errorf("%w: no sparse file of %d bytes here: %v", errors.ErrUnsupported, size, err)
	}
	return nil
}

func (h *naiveHarness) PlantInternalLinks(variant int, target string) (string, error) {
	if variant > 0 {
		return "", errors.ErrUnsupported
	}
	locks := filepath.Join(h.root, naiveLocks)
	if err := os.RemoveAll(locks); err != nil {
		return "", err
	}
	return "the lock directory is a link", os.Symlink(target, locks)
}

// TestHostileSectionCatchesANaiveDriver checks that every hostile case
// fails on naiveDir, citing its clause.
func TestHostileSectionCatchesANaiveDriver(t *testing.T) {
	maker := func(_ context.Context, t *testing.T) (Harness, error) {
		return &naiveHarness{root: t.TempDir()}, nil
	}
	for _, c := range hostileCases {
		t.Run(c.name, func(t *testing.T) {
			r := runRecorded(t, maker, c.name)
			switch {
			case r.Skipped():
				t.Errorf("case %s skipped on the naive driver:\n%s", c.name, r.messages())
			case !r.Failed():
				t.Errorf("case %s passed the naive driver (links followed, pipes opened, reads sized by stat)", c.name)
			case uncited(r) != "":
				t.Errorf("case %s failed the naive driver with a message that cites no clause: %s", c.name, uncited(r))
			default:
				t.Logf("case %s rejected the naive driver:\n%s", c.name, r.messages())
			}
		})
	}
}
