package conformance

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
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
	deleteNoop                bool // Delete does nothing
	partialOnCancel           bool // a Write cancelled midway stores what was read
	tokenNeverEnds            bool // the last page has a token, and so on for ever
	foldCase                  bool // names are stored lower-cased
	trimSpace                 bool // names are stored without surrounding spaces
	absentIsEmpty             bool // Read of an absent object returns no bytes and no error
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

// recorder is a testing.TB that records failures and skips instead of
// reporting them, so the suite's own tests can assert that a case fails.
// FailNow and SkipNow end the calling goroutine with runtime.Goexit, as
// testing.T does. Other methods go to the real test.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	failed   bool
	skipped  bool
	msgs     []string
	cleanups []func()
}

func (r *recorder) note(failed, skipped bool, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = r.failed || failed
	r.skipped = r.skipped || skipped
	if msg != "" {
		r.msgs = append(r.msgs, msg)
	}
}

func (r *recorder) Helper()           {}
func (r *recorder) Fail()             { r.note(true, false, "") }
func (r *recorder) FailNow()          { r.Fail(); runtime.Goexit() }
func (r *recorder) Error(args ...any) { r.note(true, false, fmt.Sprint(args...)) }
func (r *recorder) Errorf(format string, args ...any) {
	r.note(true, false, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatal(args ...any)                 { r.Error(args...); runtime.Goexit() }
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...); runtime.Goexit() }
func (r *recorder) Skip(args ...any)                  { r.note(false, true, fmt.Sprint(args...)); runtime.Goexit() }
func (r *recorder) Skipf(format string, args ...any) {
	r.note(false, true, fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (r *recorder) SkipNow()            { r.note(false, true, ""); runtime.Goexit() }
func (r *recorder) Log(args ...any)     {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Cleanup(f func())    { r.mu.Lock(); r.cleanups = append(r.cleanups, f); r.mu.Unlock() }
func (r *recorder) Failed() bool        { r.mu.Lock(); defer r.mu.Unlock(); return r.failed }
func (r *recorder) Skipped() bool       { r.mu.Lock(); defer r.mu.Unlock(); return r.skipped }
func (r *recorder) messages() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.msgs, "\n")
}
func (r *recorder) goexitSafe(f func()) {
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	<-done
}

// runRecorded runs the named case (of any section) at the store root on a
// harness from maker, recording its outcome.
func runRecorded(t *testing.T, maker HarnessMaker, caseName string) *recorder {
	t.Helper()
	c := caseNamed(caseName)
	r := &recorder{TB: t}
	r.goexitSafe(func() { runCase(t, r, maker, t.Name(), c, "") })
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.goexitSafe(r.cleanups[i])
	}
	return r
}

// TestReference runs the suite against the reference driver: it must pass.
func TestReference(t *testing.T) {
	Run(t, memMaker(memFaults{}))
}

// TestDirDriver runs the suite against the directory-backed driver, which is
// a ProcessHarness, so the cross-process cases run child processes.
func TestDirDriver(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: writes thousands of files")
	}
	Run(t, dirMaker(false))
}

// brokenDrivers is the suite's own test: each row is a fault of the
// reference driver (memFaults) and a case that must fail a driver with it.
var brokenDrivers = []struct {
	fault    string
	faults   memFaults
	caseName string
}{
	{"looseListPrefix", memFaults{looseListPrefix: true}, "ListPrefix"},
	{"unsortedList", memFaults{unsortedList: true}, "ListPrefix"},
	{"listNoModTime", memFaults{listNoModTime: true}, "ListPrefix"},
	{"ignorePageToken", memFaults{ignorePageToken: true}, "Pagination"},
	{"ignorePageSize", memFaults{ignorePageSize: true}, "Pagination"},
	{"racyIfAbsent", memFaults{racyIfAbsent: true}, "IfAbsentRace"},
	{"tornWrite", memFaults{tornWrite: true}, "AtomicOverwrite"},
	{"partialWriteOnError", memFaults{partialWriteOnError: true}, "WriteBodyError"},
	{"deleteAbsentNotFound", memFaults{deleteAbsentNotFound: true}, "Delete"},
	{"ignoreCanceled", memFaults{ignoreCanceled: true}, "ContextCanceled"},
	{"replaceIgnoresETag", memFaults{replaceIgnoresETag: true}, "Replace"},
	{"replaceIgnoresETag", memFaults{replaceIgnoresETag: true}, "ReplaceRace"},
	{"constantETag", memFaults{constantETag: true}, "Replace"},
	{"batchAbsentError", memFaults{batchAbsentError: true}, "BatchDelete"},
	{"closeError", memFaults{closeError: true}, "Close"},
	{"offsetPageToken", memFaults{offsetPageToken: true}, "ListWhileChanging"},
	{"offsetPageToken", memFaults{offsetPageToken: true}, "ClearManyPages"},
	{"modTimeFrozenOnOverwrite", memFaults{modTimeFrozenOnOverwrite: true}, "ModTime"},
	{"modTimeFrozenOnOverwrite", memFaults{modTimeFrozenOnOverwrite: true}, "CullOldest"},
	{"readNoName", memFaults{readNoName: true}, "ModTime"},
	{"readNoName", memFaults{readNoName: true}, "ReadYourWrite"},
	{"readNoModTime", memFaults{readNoModTime: true}, "ModTime"},
	{"readNoModTime", memFaults{readNoModTime: true}, "ReadYourWrite"},
	{"truncateLarge", memFaults{truncateLarge: true}, "ReadYourWrite"},
	{"emptyIsAbsent", memFaults{emptyIsAbsent: true}, "EmptyObject"},
	{"overwriteKeepsFirst", memFaults{overwriteKeepsFirst: true}, "Overwrite"},
	{"rangeSizeIsLength", memFaults{rangeSizeIsLength: true}, "ReadRange"},
	{"pastEndError", memFaults{pastEndError: true}, "ReadRange"},
	{"readAliases", memFaults{readAliases: true}, "ReadBytesOwned"},
	{"writeAliasesBody", memFaults{writeAliasesBody: true}, "ReadBytesOwned"},
	{"decodesGzip", memFaults{decodesGzip: true}, "ContentEncoding"},
	{"decodesGzip", memFaults{decodesGzip: true}, "ReplaceOptions"},
	{"bareErrors", memFaults{bareErrors: true}, "ErrorKindsAndMessages"},
	{"deleteNoop", memFaults{deleteNoop: true}, "Delete"},
	{"absentIsEmpty", memFaults{absentIsEmpty: true}, "NotFound"},
	{"listWrongSize", memFaults{listWrongSize: true}, "ListPrefix"},
	{"listWrongSize", memFaults{listWrongSize: true}, "Pagination"},
	{"tokenNeverEnds", memFaults{tokenNeverEnds: true}, "Pagination"},
	{"offsetPageToken", memFaults{offsetPageToken: true}, "ListDuringChurn"},
	{"foldCase", memFaults{foldCase: true}, "NamesStoredAsGiven"},
	{"foldCase", memFaults{foldCase: true}, "UnusualNames"},
	{"trimSpace", memFaults{trimSpace: true}, "UnusualNames"},
	{"ifAbsentIgnored", memFaults{ifAbsentIgnored: true}, "IfAbsent"},
	{"ifAbsentWrongKind", memFaults{ifAbsentWrongKind: true}, "IfAbsent"},
	{"replaceAbsentPrecondition", memFaults{replaceAbsentPrecondition: true}, "Replace"},
	{"replaceHonoursIfAbsent", memFaults{replaceHonoursIfAbsent: true}, "ReplaceOptions"},
	{"replacePartialOnError", memFaults{replacePartialOnError: true}, "ReplaceOptions"},
	{"racyReplace", memFaults{racyReplace: true}, "ReplaceRace"},
	{"batchDeletesFirstOnly", memFaults{batchDeletesFirstOnly: true}, "BatchDelete"},
	{"partialOnCancel", memFaults{partialOnCancel: true}, "CancelDuringWrite"},
	{"callsAfterClose", memFaults{callsAfterClose: true}, "Close"},
	{"closedWrongKind", memFaults{closedWrongKind: true}, "Close"},
}

// uncited returns the first message r recorded that cites no clause.
func uncited(r *recorder) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if !citesClause(m) {
			return m
		}
	}
	return ""
}

// caseNamed returns the case of any section called name.
func caseNamed(name string) driverCase {
	cases := slices.Concat(driverCases, cacheCases, hostileCases)
	i := slices.IndexFunc(cases, func(c driverCase) bool { return c.name == name })
	if i < 0 {
		panic("no driver or cache case " + name)
	}
	return cases[i]
}

// crossProcessMutants names the cases whose broken drivers race across
// processes, so they are tested with the directory-backed driver (see
// xproc_test.go) rather than with a fault of the in-memory one.
var crossProcessMutants = map[string]string{
	"CrossProcessIfAbsent": "TestCrossProcessCatchesProcessLocalLocks",
	"CrossProcessReplace":  "TestCrossProcessCatchesProcessLocalLocks",
}

// TestEveryClauseHasAMutant checks that every case of the driver section
// cites a clause and fails at least one broken driver, and that every
// fault fails some case: a clause no broken driver fails is untested.
func TestEveryClauseHasAMutant(t *testing.T) {
	caught := map[string]bool{}
	faults := map[string]bool{}
	for _, tc := range brokenDrivers {
		caught[tc.caseName] = true
		faults[tc.fault] = true
	}
	for _, c := range slices.Concat(driverCases, cacheCases, hostileCases) {
		if !citesClause(c.clause) {
			t.Errorf("case %s cites no clause of the contract: %q", c.name, c.clause)
		}
	}
	for _, c := range driverCases {
		if _, ok := crossProcessMutants[c.name]; !caught[c.name] && !ok {
			t.Errorf("driver case %s has no broken driver in brokenDrivers that it must fail", c.name)
		}
	}
	var f memFaults
	v := reflect.ValueOf(f)
	for i := range v.NumField() {
		if name := v.Type().Field(i).Name; !faults[name] {
			t.Errorf("fault %s of memFaults is in no row of brokenDrivers", name)
		}
	}
	t.Logf("%d driver cases, %d cache cases, %d hostile cases; %d faults in %d rows, plus %d cross-process mutants",
		len(driverCases), len(cacheCases), len(hostileCases), v.NumField(), len(brokenDrivers), len(crossProcessMutants))
}

// TestSuiteCatchesBrokenDrivers checks that each case fails on a driver with
// the fault the case exists to catch, and passes without it.
func TestSuiteCatchesBrokenDrivers(t *testing.T) {
	for _, tc := range brokenDrivers {
		t.Run(tc.fault+"/"+tc.caseName, func(t *testing.T) {
			if r := runRecorded(t, memMaker(tc.faults), tc.caseName); !r.Failed() {
				t.Errorf("case %s passed a driver with fault %s", tc.caseName, tc.fault)
			} else if m := uncited(r); m != "" {
				t.Errorf("case %s rejected fault %s with a message that cites no clause: %s", tc.caseName, tc.fault, m)
			} else {
				t.Logf("case %s rejected fault %s:\n%s", tc.caseName, tc.fault, r.messages())
			}
			if r := runRecorded(t, memMaker(memFaults{}), tc.caseName); r.Failed() || r.Skipped() {
				t.Errorf("case %s did not pass the reference driver:\n%s", tc.caseName, r.messages())
			}
		})
	}
}

// TestCrossProcessSkipsWithoutProcessHarness checks the skip message for
// harnesses whose store only lives in this process.
func TestCrossProcessSkipsWithoutProcessHarness(t *testing.T) {
	for _, c := range []string{"CrossProcessIfAbsent", "CrossProcessReplace"} {
		r := runRecorded(t, memMaker(memFaults{}), c)
		if r.Failed() || !r.Skipped() || !strings.Contains(r.messages(), "ProcessHarness") {
			t.Errorf("%s on an in-memory harness: failed %v, skipped %v, messages %q; want a skip naming ProcessHarness", c, r.Failed(), r.Skipped(), r.messages())
		}
	}
}

// capabilityless hides the optional interfaces of the reference driver.
type capabilityless struct{ driver.Driver }

type capabilitylessHarness struct{ Harness }

func (h capabilitylessHarness) MakeDriver(ctx context.Context) (driver.Driver, error) {
	d, err := h.Harness.MakeDriver(ctx)
	return capabilityless{d}, err
}

// TestCapabilitySkips checks that capability cases skip, saying why, for a
// driver without the capability.
func TestCapabilitySkips(t *testing.T) {
	maker := func(ctx context.Context, t *testing.T) (Harness, error) {
		h, err := memMaker(memFaults{})(ctx, t)
		return capabilitylessHarness{h}, err
	}
	for c, want := range map[string]string{
		"Replace":             "driver.Replacer",
		"ReplaceRace":         "driver.Replacer",
		"CrossProcessReplace": "driver.Replacer",
		"BatchDelete":         "driver.BatchDeleter",
	} {
		r := runRecorded(t, maker, c)
		if r.Failed() || !r.Skipped() || !strings.Contains(r.messages(), want) {
			t.Errorf("%s on a driver without the capability: failed %v, skipped %v, messages %q; want a skip naming %s", c, r.Failed(), r.Skipped(), r.messages(), want)
		}
	}
}

func TestTestRunPattern(t *testing.T) {
	for name, want := range map[string]string{
		"TestX":           "^TestX$",
		"TestX/sub_1#01":  "^TestX$/^sub_1#01$",
		"TestX/a.b(c)[d]": `^TestX$/^a\.b\(c\)\[d\]$`,
	} {
		if got := testRunPattern(name); got != want {
			t.Errorf("testRunPattern(%q) = %q, want %q", name, got, want)
		}
	}
}
