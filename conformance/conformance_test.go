package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
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

func (d *memDriver) ctxErr(ctx context.Context) error {
	if d.f.ignoreCanceled {
		return nil
	}
	return ctx.Err()
}

// store puts data under name; the caller holds the lock.
func (d *memDriver) store(name string, data []byte) {
	d.s.gen++
	etag := fmt.Sprintf("g%d", d.s.gen)
	if d.f.constantETag {
		etag = "constant"
	}
	mod := time.Now()
	if old, ok := d.s.objs[name]; ok && d.f.modTimeFrozenOnOverwrite {
		mod = old.mod
	}
	d.s.objs[name] = memObject{data: data, mod: mod, etag: etag}
}

func (d *memDriver) Read(ctx context.Context, name string, offset, length int64) ([]byte, driver.Attributes, error) {
	if err := d.ctxErr(ctx); err != nil {
		return nil, driver.Attributes{}, err
	}
	d.s.mu.Lock()
	o, ok := d.s.objs[name]
	d.s.mu.Unlock()
	if !ok {
		return nil, driver.Attributes{}, fmt.Errorf("read %q: %w", name, driver.ErrNotFound)
	}
	size := int64(len(o.data))
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
	return slices.Clone(o.data[start:end]), attrs, nil
}

func (d *memDriver) Write(ctx context.Context, name string, body io.Reader, opts *driver.WriteOptions) error {
	if err := d.ctxErr(ctx); err != nil {
		return err
	}
	data, err := io.ReadAll(body)
	if err != nil {
		if d.f.partialWriteOnError {
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
	if opts.IfAbsent {
		_, exists := d.s.objs[name]
		if exists {
			return fmt.Errorf("write %q: %w", name, driver.ErrPreconditionFailed)
		}
		if d.f.racyIfAbsent {
			d.s.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			d.s.mu.Lock()
		}
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
	if _, ok := d.s.objs[name]; !ok && d.f.deleteAbsentNotFound {
		return fmt.Errorf("delete %q: %w", name, driver.ErrNotFound)
	}
	delete(d.s.objs, name)
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
	}
	for _, name := range names {
		o := d.s.objs[name]
		a := driver.Attributes{Name: name, Size: int64(len(o.data)), ModTime: o.mod}
		if d.f.listNoModTime {
			a.ModTime = time.Time{}
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
	data, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	if err := d.ctxErr(ctx); err != nil {
		return err
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	o, ok := d.s.objs[name]
	if !ok {
		return fmt.Errorf("replace %q: %w", name, driver.ErrNotFound)
	}
	if o.etag != etag && !d.f.replaceIgnoresETag {
		return fmt.Errorf("replace %q: %w", name, driver.ErrPreconditionFailed)
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
	for _, name := range names {
		if _, ok := d.s.objs[name]; !ok && d.f.batchAbsentError {
			failed[name] = driver.ErrNotFound
		}
		delete(d.s.objs, name)
	}
	if len(failed) > 0 {
		return &driver.BatchDeleteError{Failed: failed}
	}
	return nil
}

func (d *memDriver) Close() error {
	if d.closed.Swap(true) {
		return errors.New("memDriver: closed twice")
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

// runRecorded runs the named case (of the driver section, else the cache
// section) at the store root on a harness from maker, recording its outcome.
func runRecorded(t *testing.T, maker HarnessMaker, caseName string) *recorder {
	t.Helper()
	cases := slices.Concat(driverCases, cacheCases)
	i := slices.IndexFunc(cases, func(c driverCase) bool { return c.name == caseName })
	if i < 0 {
		t.Fatalf("no driver or cache case %q", caseName)
	}
	r := &recorder{TB: t}
	r.goexitSafe(func() { runCase(t, r, maker, t.Name(), cases[i], "") })
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

// TestSuiteCatchesBrokenDrivers checks that each case fails on a driver with
// the fault the case exists to catch, and passes without it.
func TestSuiteCatchesBrokenDrivers(t *testing.T) {
	for _, tc := range []struct {
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
	} {
		t.Run(tc.fault+"/"+tc.caseName, func(t *testing.T) {
			if r := runRecorded(t, memMaker(tc.faults), tc.caseName); !r.Failed() {
				t.Errorf("case %s passed a driver with fault %s", tc.caseName, tc.fault)
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
