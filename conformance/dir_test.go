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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blobcache/blobcache/driver"
)

// A directory-backed driver whose store other processes can open: just
// enough to exercise the cross-process machinery. An object lives in
// objects/<hex of name, in 200-character directories>.o; IfAbsent is a hard
// link from a temporary file (in tmp/, in a directory of the driver's own),
// so it is atomic across processes; Write, Replace and Delete hold a
// per-name lock directory. Its faults (dirFaults) turn it into the broken
// drivers the cross-process cases must reject.

type dirDriver struct {
	root   string
	tmp    string // the driver's own directory of temporary files, under tmp
	f      dirFaults
	closed atomic.Bool
}

// dirFaults are the mistakes of a driver that is atomic within a process but
// not across processes: it guards a check and a rename with a mutex of the
// process (one per store), not with something the store's other processes
// see. Every in-process race passes; only processes racing can both pass
// the check before either renames. No sleep widens the window: it is the
// time between the check and the rename, as in the real mistake.
type dirFaults struct {
	// processLocalIfAbsent: IfAbsent is a stat, then a rename, under the
	// process's mutex, instead of a hard link.
	processLocalIfAbsent bool
	// processLocalReplace: Replace compares the ETag, then renames, under
	// the process's mutex instead of the store's lock directory.
	processLocalReplace bool
}

// dirProcessLocks holds the process's mutex of each store (by root) for
// dirFaults: every dirDriver of the process on the store shares it.
var dirProcessLocks sync.Map // root -> *sync.Mutex

func (d *dirDriver) processLock() func() {
	mu, _ := dirProcessLocks.LoadOrStore(d.root, new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	return mu.(*sync.Mutex).Unlock
}

var (
	_ driver.Driver   = (*dirDriver)(nil)
	_ driver.Replacer = (*dirDriver)(nil)
)

func openDir(root string, f dirFaults) (*dirDriver, error) {
	for _, sub := range []string{"objects", "tmp", "locks"} {
		if err := os.MkdirAll(filepath.Join(root, sub), 0o755); err != nil {
			return nil, err
		}
	}
	// Each driver stages its writes in a directory of its own, so that
	// creating a temporary file never waits for a rename of another
	// process. (With one directory shared by all, on a busy ext4 where a
	// create takes hundreds of microseconds, the second process's create
	// waited for the first one's rename out of that directory, and so its
	// check came after the rename: the check-then-rename race of dirFaults
	// showed in a few rounds in a hundred, or none.)
	tmp, err := os.MkdirTemp(filepath.Join(root, "tmp"), "d-*")
	if err != nil {
		return nil, err
	}
	return &dirDriver{root: root, tmp: tmp, f: f}, nil
}

const dirChunk = 200

func (d *dirDriver) path(name string) string {
	h := hex.EncodeToString([]byte(name))
	parts := []string{d.root, "objects"}
	for len(h) > dirChunk {
		parts = append(parts, h[:dirChunk])
		h = h[dirChunk:]
	}
	return filepath.Join(append(parts, h+".o")...)
}

func (d *dirDriver) lock(ctx context.Context, name string) (unlock func(), err error) {
	sum := sha256.Sum256([]byte(name))
	p := filepath.Join(d.root, "locks", hex.EncodeToString(sum[:]))
	for {
		err := os.Mkdir(p, 0o755)
		if err == nil {
			return func() { os.Remove(p) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func etagOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func (d *dirDriver) Read(ctx context.Context, name string, offset, length int64) ([]byte, driver.Attributes, error) {
	if err := d.check(ctx); err != nil {
		return nil, driver.Attributes{}, err
	}
	f, err := os.Open(d.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, driver.Attributes{}, fmt.Errorf("read %q: %w", name, driver.ErrNotFound)
	} else if err != nil {
		return nil, driver.Attributes{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, driver.Attributes{}, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, driver.Attributes{}, err
	}
	size := int64(len(data))
	start, end := min(offset, size), size
	if length >= 0 && start+length < end {
		end = start + length
	}
	return data[start:end], driver.Attributes{Name: name, Size: size, ModTime: st.ModTime(), ETag: etagOf(data)}, nil
}

// temp writes body to a temporary file and returns its path.
func (d *dirDriver) temp(ctx context.Context, body io.Reader) (string, error) {
	f, err := os.CreateTemp(d.tmp, "w-*")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func (d *dirDriver) Write(ctx context.Context, name string, body io.Reader, opts *driver.WriteOptions) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	tmp, err := d.temp(ctx, body)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	p := d.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if opts.IfAbsent && d.f.processLocalIfAbsent { // the broken variant
		defer d.processLock()()
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("write %q: %w", name, driver.ErrPreconditionFailed)
		}
		return os.Rename(tmp, p)
	}
	if opts.IfAbsent {
		err := os.Link(tmp, p)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("write %q: %w", name, driver.ErrPreconditionFailed)
		}
		return err
	}
	unlock, err := d.lock(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	return os.Rename(tmp, p)
}

func (d *dirDriver) Replace(ctx context.Context, name string, body io.Reader, etag string, opts *driver.WriteOptions) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	tmp, err := d.temp(ctx, body)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if d.f.processLocalReplace { // the broken variant
		defer d.processLock()()
	} else {
		unlock, err := d.lock(ctx, name)
		if err != nil {
			return err
		}
		defer unlock()
	}
	p := d.path(name)
	cur, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace %q: %w", name, driver.ErrNotFound)
	} else if err != nil {
		return err
	}
	if etagOf(cur) != etag {
		return fmt.Errorf("replace %q: %w", name, driver.ErrPreconditionFailed)
	}
	return os.Rename(tmp, p)
}

func (d *dirDriver) Delete(ctx context.Context, name string) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	unlock, err := d.lock(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(d.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (d *dirDriver) List(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	objects := filepath.Join(d.root, "objects")
	var names []string
	err := filepath.WalkDir(objects, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() || !strings.HasSuffix(p, ".o") {
			return err
		}
		rel, _ := filepath.Rel(objects, strings.TrimSuffix(p, ".o"))
		b, err := hex.DecodeString(strings.ReplaceAll(rel, string(filepath.Separator), ""))
		if err != nil {
			return err
		}
		if name := string(b); strings.HasPrefix(name, opts.Prefix) && name > opts.PageToken {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	size := opts.PageSize
	if size == 0 {
		size = driver.MaxListPageSize
	}
	page := &driver.ListPage{}
	if len(names) > size {
		names = names[:size]
		page.NextPageToken = names[size-1]
	}
	for _, name := range names {
		st, err := os.Stat(d.path(name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		} else if err != nil {
			return nil, err
		}
		page.Objects = append(page.Objects, driver.Attributes{Name: name, Size: st.Size(), ModTime: st.ModTime()})
	}
	return page, nil
}

// check is the error of a call made after Close or with a done context.
func (d *dirDriver) check(ctx context.Context) error {
	if d.closed.Load() {
		return fmt.Errorf("dirDriver: %w", driver.ErrClosed)
	}
	return ctx.Err()
}

func (d *dirDriver) Close() error {
	if d.closed.Swap(true) {
		return fmt.Errorf("dirDriver: closed twice: %w", driver.ErrClosed)
	}
	os.Remove(d.tmp) // empty: every temporary file is removed or renamed
	return nil
}

type dirHarness struct {
	root string
	f    dirFaults
}

func (h *dirHarness) MakeDriver(context.Context) (driver.Driver, error) {
	return openDir(h.root, h.f)
}
func (h *dirHarness) Close()          {}
func (h *dirHarness) Locator() string { return h.root }
func (h *dirHarness) OpenLocator(_ context.Context, loc string) (driver.Driver, error) {
	return openDir(loc, h.f)
}

// dirMaker makes harnesses of the directory driver, with the fault
// processLocalIfAbsent when it is true.
func dirMaker(processLocalIfAbsent bool) HarnessMaker {
	return dirFaultsMaker(dirFaults{processLocalIfAbsent: processLocalIfAbsent})
}

// dirFaultsMaker makes harnesses of the directory driver with faults f.
func dirFaultsMaker(f dirFaults) HarnessMaker {
	return func(_ context.Context, t *testing.T) (Harness, error) {
		return &dirHarness{root: t.TempDir(), f: f}, nil
	}
}
