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
	"sync/atomic"
	"testing"
	"time"

	"github.com/blobcache/blobcache/driver"
)

// A directory-backed driver whose store other processes can open: just
// enough to exercise the cross-process machinery. An object lives in
// objects/<hex of name, in 200-character directories>.o; IfAbsent is a hard
// link from a temporary file, so it is atomic across processes; Write,
// Replace and Delete hold a per-name lock directory.

type dirDriver struct {
	root         string
	racyIfAbsent bool
	closed       atomic.Bool
}

var (
	_ driver.Driver   = (*dirDriver)(nil)
	_ driver.Replacer = (*dirDriver)(nil)
)

func openDir(root string, racyIfAbsent bool) (*dirDriver, error) {
	for _, sub := range []string{"objects", "tmp", "locks"} {
		if err := os.MkdirAll(filepath.Join(root, sub), 0o755); err != nil {
			return nil, err
		}
	}
	return &dirDriver{root: root, racyIfAbsent: racyIfAbsent}, nil
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
	if err := ctx.Err(); err != nil {
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
	f, err := os.CreateTemp(filepath.Join(d.root, "tmp"), "w-*")
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
	if err := ctx.Err(); err != nil {
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
	if opts.IfAbsent && !d.racyIfAbsent {
		err := os.Link(tmp, p)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("write %q: %w", name, driver.ErrPreconditionFailed)
		}
		return err
	}
	if opts.IfAbsent { // the broken variant: check, yield, write
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("write %q: %w", name, driver.ErrPreconditionFailed)
		}
		time.Sleep(50 * time.Millisecond)
	}
	unlock, err := d.lock(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	return os.Rename(tmp, p)
}

func (d *dirDriver) Replace(ctx context.Context, name string, body io.Reader, etag string, opts *driver.WriteOptions) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tmp, err := d.temp(ctx, body)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	unlock, err := d.lock(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
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
	if err := ctx.Err(); err != nil {
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
	if err := ctx.Err(); err != nil {
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

func (d *dirDriver) Close() error {
	if d.closed.Swap(true) {
		return errors.New("dirDriver: closed twice")
	}
	return nil
}

type dirHarness struct {
	root         string
	racyIfAbsent bool
}

func (h *dirHarness) MakeDriver(context.Context) (driver.Driver, error) {
	return openDir(h.root, h.racyIfAbsent)
}
func (h *dirHarness) Close()          {}
func (h *dirHarness) Locator() string { return h.root }
func (h *dirHarness) OpenLocator(_ context.Context, loc string) (driver.Driver, error) {
	return openDir(loc, h.racyIfAbsent)
}

func dirMaker(racyIfAbsent bool) HarnessMaker {
	return func(_ context.Context, t *testing.T) (Harness, error) {
		return &dirHarness{root: t.TempDir(), racyIfAbsent: racyIfAbsent}, nil
	}
}
