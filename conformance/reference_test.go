package conformance

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blobcache/blobcache/driver"
)

// The reference driver: a map under a mutex, like fstest.MapFS. Its faults
// turn it into the broken drivers the suite must reject.

type memFaults struct {
	looseListPrefix      bool // List("cache/") also matches "cachex"
	unsortedList         bool // List returns names in decreasing order
	ignorePageToken      bool // List always returns the first page
	ignorePageSize       bool // List returns up to 5000 names a page
	listNoModTime        bool // List leaves ModTime zero
	racyIfAbsent         bool // IfAbsent is check, yield, write
	tornWrite            bool // readers can see half a write
	partialWriteOnError  bool // a failing body stores what was read
	deleteAbsentNotFound bool // Delete of an absent object returns ErrNotFound
	ignoreCanceled       bool // contexts are not checked
	replaceIgnoresETag   bool // Replace does not compare ETags
	constantETag         bool // ETag never changes
	batchAbsentError     bool // DeleteBatch fails on absent names
	closeError           bool // Close returns an error

	offsetPageToken          bool // page tokens count an offset, not the last name
	modTimeFrozenOnOverwrite bool // an overwrite keeps the first write's ModTime
	readNoName               bool // Read leaves Attributes.Name empty
	readNoModTime            bool // Read leaves Attributes.ModTime zero

	truncateLarge             bool // Write keeps at most 1 MiB of a body
	rangeSizeIsLength         bool // Read's Size is the range's, not the object's
	pastEndError              bool // Read at an offset past the end fails (as S3's 416 would)
	emptyIsAbsent             bool // a Write of no bytes stores nothing
	overwriteKeepsFirst       bool // a plain Write over an object keeps the old one
	decodesGzip               bool // ContentEncoding gzip stores the decoded bytes
	bareErrors                bool // errors are the bare kinds, naming no object
	ifAbsentIgnored           bool // IfAbsent overwrites
	ifAbsentWrongKind         bool // a refused IfAbsent is a plain error, not ErrPreconditionFailed
	replaceAbsentPrecondition bool // Replace of an absent object is ErrPreconditionFailed
	replaceHonoursIfAbsent    bool // Replace with IfAbsent set always fails
	replacePartialOnError     bool // Replace with a failing body stores what was read
	racyReplace               bool // Replace is compare, yield, write
	readAliases               bool // Read returns the store's own slice
	writeAliasesBody          bool // Write keeps the slice a body's WriteTo hands it
	callsAfterClose           bool // calls after Close work as before
	closedWrongKind           bool // calls after Close fail, not with ErrClosed
	batchDeletesFirstOnly     bool // DeleteBatch deletes only the first name
	listWrongSize             bool // List reports Size 0
	namesOnlyFlat             bool // a NamesOnly listing leaves out names two folders below the prefix
	deleteNoop                bool // Delete does nothing
	partialOnCancel           bool // a Write cancelled midway stores what was read
	tokenNeverEnds            bool // the last page has a token, and so on for ever
	foldCase                  bool // names are stored lower-cased
	trimSpace                 bool // names are stored without surrounding spaces
	absentIsEmpty             bool // Read of an absent object returns no bytes and no error
	readDeleteKeeps           bool // ReadDelete returns the bytes and removes nothing
	readDeleteAbsentNil       bool // ReadDelete of an absent object returns no bytes and no error
	racyReadDelete            bool // ReadDelete is read, yield, delete
}

type memObject struct {
	data []byte
	mod  time.Time
	etag string
}

type memStore struct {
	mu   sync.Mutex
	objs map[string]memObject
	gen  int
}

type memHarness struct {
	s *memStore
	f memFaults
}

func (h *memHarness) MakeDriver(context.Context) (driver.Driver, error) {
	return &memDriver{s: h.s, f: h.f}, nil
}

func (h *memHarness) Close() {}

func memMaker(f memFaults) HarnessMaker {
	return func(context.Context, *testing.T) (Harness, error) {
		return &memHarness{s: &memStore{objs: map[string]memObject{}}, f: f}, nil
	}
}

type memDriver struct {
	s      *memStore
	f      memFaults
	closed atomic.Bool
}

var (
	_ driver.Driver       = (*memDriver)(nil)
	_ driver.Replacer     = (*memDriver)(nil)
	_ driver.BatchDeleter = (*memDriver)(nil)
	_ driver.ReadDeleter  = (*memDriver)(nil)
)

// ctxErr is the error of a call made after Close or with a done context.
func (d *memDriver) ctxErr(ctx context.Context) error {
	if d.closed.Load() && !d.f.callsAfterClose {
		if d.f.closedWrongKind {
			return errors.New("memDriver: closed")
		}
		return fmt.Errorf("memDriver: %w", driver.ErrClosed)
	}
	if d.f.ignoreCanceled {
		return nil
	}
	return ctx.Err()
}

// key is the name the store keeps for name.
func (d *memDriver) key(name string) string {
	if d.f.foldCase {
		name = strings.ToLower(name)
	}
	if d.f.trimSpace {
		name = strings.TrimSpace(name)
	}
	return name
}

// kindErr is an error of kind about op on name.
func (d *memDriver) kindErr(op, name string, kind error) error {
	if d.f.bareErrors {
		return kind
	}
	return fmt.Errorf("memDriver: %s %q: %w", op, name, kind)
}

// aliasWriter keeps the first slice written to it, not a copy.
type aliasWriter struct{ b []byte }

func (w *aliasWriter) Write(p []byte) (int, error) {
	if w.b == nil {
		w.b = p
	} else {
		w.b = append(w.b, p...)
	}
	return len(p), nil
}

// readBody reads a Write or Replace body as the faults say.
func (d *memDriver) readBody(ctx context.Context, body io.Reader, opts *driver.WriteOptions) ([]byte, error) {
	var data []byte
	var err error
	if wt, ok := body.(io.WriterTo); ok && d.f.writeAliasesBody {
		var w aliasWriter
		_, err = wt.WriteTo(&w)
		data = w.b
	} else if d.f.partialOnCancel {
		buf := make([]byte, 16<<10)
		for {
			n, rerr := body.Read(buf)
			data = append(data, buf[:n]...)
			if cerr := ctx.Err(); cerr != nil {
				return data, cerr
			}
			if rerr == io.EOF {
				break
			} else if rerr != nil {
				return data, rerr
			}
		}
	} else {
		data, err = io.ReadAll(body)
	}
	if err != nil {
		return data, err
	}
	if d.f.decodesGzip && opts.ContentEncoding == "gzip" {
		if zr, zerr := gzip.NewReader(bytes.NewReader(data)); zerr == nil {
			if plain, zerr := io.ReadAll(zr); zerr == nil {
				data = plain
			}
		}
	}
	if d.f.truncateLarge && len(data) > 1<<20 {
		data = data[:1<<20]
	}
	return data, nil
}

// store puts data under name; the caller holds the lock.
func (d *memDriver) store(name string, data []byte) {
	d.s.gen++
	etag := fmt.Sprintf("g%d", d.s.gen)
	if d.f.constantETag {
		etag = "constant"
	}
	mod := time.Now()
	name = d.key(name)
	if old, ok := d.s.objs[name]; ok && d.f.modTimeFrozenOnOverwrite {
		mod = old.mod
	}
	if len(data) == 0 && d.f.emptyIsAbsent {
		return
	}
	d.s.objs[name] = memObject{data: data, mod: mod, etag: etag}
}

func (d *memDriver) Read(ctx context.Context, name string, offset, length int64) ([]byte, driver.Attributes, error) {
	if err := d.ctxErr(ctx); err != nil {
		return nil, driver.Attributes{}, err
	}
	d.s.mu.Lock()
	o, ok := d.s.objs[d.key(name)]
	d.s.mu.Unlock()
	if !ok && d.f.absentIsEmpty {
		return nil, driver.Attributes{Name: name, ModTime: time.Now()}, nil
	}
	if !ok {
		return nil, driver.Attributes{}, d.kindErr("read", name, driver.ErrNotFound)
	}
	size := int64(len(o.data))
	if offset > size && d.f.pastEndError {
		return nil, driver.Attributes{}, fmt.Errorf("memDriver: read %q: offset %d past the end", name, offset)
	}
	start, end := min(offset, size), size
	if length >= 0 && start+length < end {
		end = start + length
	}
	attrs := driver.Attributes{Name: name, Size: size, ModTime: o.mod, ETag: o.etag}
	if d.f.readNoName {
		attrs.Name = ""
	}
	if d.f.readNoModTime {
		attrs.ModTime = time.Time{}
	}
	if d.f.rangeSizeIsLength {
		attrs.Size = end - start
	}
	if d.f.readAliases {
		return o.data[start:end], attrs, nil
	}
	return slices.Clone(o.data[start:end]), attrs, nil
}

func (d *memDriver) Write(ctx context.Context, name string, body io.Reader, opts *driver.WriteOptions) error {
	if err := d.ctxErr(ctx); err != nil {
		return err
	}
	data, err := d.readBody(ctx, body, opts)
	if err != nil {
		if d.f.partialWriteOnError || (d.f.partialOnCancel && ctx.Err() != nil) {
			d.s.mu.Lock()
			d.store(name, data)
			d.s.mu.Unlock()
		}
		return err
	}
	if err := d.ctxErr(ctx); err != nil {
		return err
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	_, exists := d.s.objs[d.key(name)]
	if opts.IfAbsent && !d.f.ifAbsentIgnored {
		if exists && d.f.ifAbsentWrongKind {
			return fmt.Errorf("memDriver: write %q: object exists", name)
		}
		if exists {
			return d.kindErr("write", name, driver.ErrPreconditionFailed)
		}
		if d.f.racyIfAbsent {
			d.s.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			d.s.mu.Lock()
		}
	} else if exists && d.f.overwriteKeepsFirst {
		return nil
	} else if d.f.tornWrite {
		d.store(name, data[:len(data)/2])
		d.s.mu.Unlock()
		time.Sleep(time.Millisecond)
		d.s.mu.Lock()
	}
	d.store(name, data)
	return nil
}

func (d *memDriver) Delete(ctx context.Context, name string) error {
	if err := d.ctxErr(ctx); err != nil {
		return err
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	if _, ok := d.s.objs[d.key(name)]; !ok && d.f.deleteAbsentNotFound {
		return d.kindErr("delete", name, driver.ErrNotFound)
	}
	if !d.f.deleteNoop {
		delete(d.s.objs, d.key(name))
	}
	return nil
}

func (d *memDriver) ReadDelete(ctx context.Context, name string, length int64) ([]byte, driver.Attributes, error) {
	if err := d.ctxErr(ctx); err != nil {
		return nil, driver.Attributes{}, err
	}
	d.s.mu.Lock()
	o, ok := d.s.objs[d.key(name)]
	if d.f.racyReadDelete {
		d.s.mu.Unlock()
		time.Sleep(50 * time.Microsecond)
		d.s.mu.Lock()
	}
	if ok && !d.f.readDeleteKeeps {
		delete(d.s.objs, d.key(name))
	}
	d.s.mu.Unlock()
	if !ok {
		if d.f.readDeleteAbsentNil {
			return nil, driver.Attributes{Name: name, ModTime: time.Now()}, nil
		}
		return nil, driver.Attributes{}, d.kindErr("read and delete", name, driver.ErrNotFound)
	}
	data := slices.Clone(o.data[:min(int64(len(o.data)), length)])
	return data, driver.Attributes{Name: name, Size: int64(len(o.data)), ModTime: o.mod, ETag: o.etag}, nil
}

func (d *memDriver) List(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	if err := d.ctxErr(ctx); err != nil {
		return nil, err
	}
	prefix := opts.Prefix
	if d.f.looseListPrefix {
		prefix = strings.TrimSuffix(prefix, "/")
	}
	d.s.mu.Lock()
	var names []string
	for name := range d.s.objs {
		if strings.HasPrefix(name, prefix) && (d.f.ignorePageToken || d.f.offsetPageToken || name > opts.PageToken) {
			if d.f.namesOnlyFlat && opts.NamesOnly && strings.Count(name[len(prefix):], "/") > 1 {
				continue
			}
			names = append(names, name)
		}
	}
	slices.Sort(names)
	offset := 0
	if d.f.offsetPageToken && opts.PageToken != "" {
		offset, _ = strconv.Atoi(opts.PageToken)
		names = names[min(offset, len(names)):]
	}
	size := opts.PageSize
	if size == 0 {
		size = driver.MaxListPageSize
	}
	if d.f.ignorePageSize {
		size = 5000
	}
	page := &driver.ListPage{}
	if len(names) > size {
		names = names[:size]
		page.NextPageToken = names[size-1]
		if d.f.offsetPageToken {
			page.NextPageToken = strconv.Itoa(offset + size)
		}
	} else if d.f.tokenNeverEnds {
		page.NextPageToken = opts.PageToken
		if len(names) > 0 {
			page.NextPageToken = names[len(names)-1]
		}
	}
	for _, name := range names {
		o := d.s.objs[name]
		a := driver.Attributes{Name: name, Size: int64(len(o.data)), ModTime: o.mod}
		if d.f.listNoModTime {
			a.ModTime = time.Time{}
		}
		if d.f.listWrongSize {
			a.Size = 0
		}
		page.Objects = append(page.Objects, a)
	}
	d.s.mu.Unlock()
	if d.f.unsortedList {
		slices.Reverse(page.Objects)
	}
	return page, nil
}

func (d *memDriver) Replace(ctx context.Context, name string, body io.Reader, etag string, opts *driver.WriteOptions) error {
	if err := d.ctxErr(ctx); err != nil {
		return err
	}
	data, err := d.readBody(ctx, body, opts)
	if err != nil {
		if d.f.replacePartialOnError {
			d.s.mu.Lock()
			d.store(name, data)
			d.s.mu.Unlock()
		}
		return err
	}
	if err := d.ctxErr(ctx); err != nil {
		return err
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	o, ok := d.s.objs[d.key(name)]
	if !ok && d.f.replaceAbsentPrecondition {
		return d.kindErr("replace", name, driver.ErrPreconditionFailed)
	}
	if !ok {
		return d.kindErr("replace", name, driver.ErrNotFound)
	}
	if opts.IfAbsent && d.f.replaceHonoursIfAbsent {
		return d.kindErr("replace", name, driver.ErrPreconditionFailed)
	}
	if o.etag != etag && !d.f.replaceIgnoresETag {
		return d.kindErr("replace", name, driver.ErrPreconditionFailed)
	}
	if d.f.racyReplace {
		d.s.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		d.s.mu.Lock()
	}
	d.store(name, data)
	return nil
}

func (d *memDriver) DeleteBatch(ctx context.Context, names []string) error {
	if err := d.ctxErr(ctx); err != nil {
		return err
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	failed := map[string]error{}
	for i, name := range names {
		if _, ok := d.s.objs[d.key(name)]; !ok && d.f.batchAbsentError {
			failed[name] = driver.ErrNotFound
		}
		if i == 0 || !d.f.batchDeletesFirstOnly {
			delete(d.s.objs, d.key(name))
		}
	}
	if len(failed) > 0 {
		return &driver.BatchDeleteError{Failed: failed}
	}
	return nil
}

func (d *memDriver) Close() error {
	if d.closed.Swap(true) {
		return fmt.Errorf("memDriver: closed twice: %w", driver.ErrClosed)
	}
	if d.f.closeError {
		return errors.New("memDriver: close failed")
	}
	return nil
}
