package bench

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/mem"
)

func TestParseMixBounds(t *testing.T) {
	for _, tc := range []struct{ mix, want string }{
		// The sum of these overflowed int and passed as a "positive" total.
		{"get=9223372036854775807,set=9223372036854775807", "want an integer from 0 to 1000000"},
		{"get=1000001", "want an integer from 0 to 1000000"},
		{"get=99999999999999999999999", "want an integer from 0 to 1000000"},
		{"get=-1", "want an integer from 0 to 1000000"},
		// A weight of 0 is still an operation given: twice is a mistake.
		{"get=0,get=5", "get given twice"},
		{"set=1,SET=0", "set given twice"},
		{"", "no operation with a positive weight"},
		{",,", "no operation with a positive weight"},
		{"get", `"get" is not op=weight`},
		{"=5", `unknown operation ""`},
	} {
		if _, err := ParseMix(tc.mix); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseMix(%q) = %v, want an error containing %q", tc.mix, err, tc.want)
		}
	}
	m, err := ParseMix("get=1000000,set=1000000,add=1000000,has=1000000,delete=1000000,incr=1000000")
	if err != nil || m.total != 6_000_000 {
		t.Errorf("ParseMix of six maximal weights = %v (total %d), %v", m, m.total, err)
	}
}

// TestSplitHalves: every half of a Compare that runs has a limit; a zero
// duration there would be a run without end.
func TestSplitHalves(t *testing.T) {
	for _, cfg := range []Workload{
		{Duration: 1},
		{Duration: 3},
		{Duration: time.Second},
		{Ops: 1},
		{Ops: 1, Duration: 1},
		{Ops: 7, Duration: 1},
		{Ops: 2},
	} {
		h := splitHalves(cfg)
		var ops int64
		runs := 0
		for i, half := range h {
			ops += half.Ops
			if half.Ops == 0 && half.Duration == 0 {
				continue // skipped
			}
			runs++
			if cfg.Duration > 0 && half.Duration <= 0 && half.Ops == 0 {
				t.Errorf("%+v: half %d has no limit", cfg, i)
			}
			if cfg.Ops > 0 && half.Ops == 0 {
				t.Errorf("%+v: half %d runs with no operations to do", cfg, i)
			}
		}
		if ops != cfg.Ops || runs == 0 {
			t.Errorf("%+v: halves %+v (%d ops, %d run)", cfg, h, ops, runs)
		}
	}
}

// faultDriver is a store that fails in a chosen way: its writes start
// failing (or its reads panic, or it cancels the run) after a number of
// calls. Its deletes honour their context, as a networked store's do, so a
// cleanup with a cancelled context fails.
type faultDriver struct {
	driver.Driver
	writes, reads atomic.Int64
	// failWrite reports whether write number n (from 1) of name fails.
	failWrite func(name string, n int64) bool
	// panicRead reports whether read number n panics.
	panicRead func(n int64) bool
	// onWrite is called with the number of each write before it is done.
	onWrite func(n int64)
	// hangDeletes makes every delete wait for its context's end.
	hangDeletes bool
}

var errRefused = errors.New("faultDriver: write refused")

// Write implements driver.Driver.
func (d *faultDriver) Write(ctx context.Context, name string, body io.Reader, opts *driver.WriteOptions) error {
	n := d.writes.Add(1)
	if d.onWrite != nil {
		d.onWrite(n)
	}
	if d.failWrite != nil && d.failWrite(name, n) {
		return errRefused
	}
	return d.Driver.Write(ctx, name, body, opts)
}

// Read implements driver.Driver.
func (d *faultDriver) Read(ctx context.Context, name string, off, n int64) ([]byte, driver.Attributes, error) {
	if d.panicRead != nil && d.panicRead(d.reads.Add(1)) {
		panic("faultDriver: read panics")
	}
	return d.Driver.Read(ctx, name, off, n)
}

// Delete implements driver.Driver.
func (d *faultDriver) Delete(ctx context.Context, name string) error {
	if d.hangDeletes {
		<-ctx.Done()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.Driver.Delete(ctx, name)
}

// objects lists every object in d.
func objects(t *testing.T, d driver.Driver) []string {
	t.Helper()
	var names []string
	opts := &driver.ListOptions{}
	for {
		page, err := d.List(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Objects {
			names = append(names, o.Name)
		}
		if page.NextPageToken == "" {
			return names
		}
		opts.PageToken = page.NextPageToken
	}
}

// TestCompareCleansUpAfterFailure: whatever stops a Compare midway, it
// deletes every object it wrote before it returns.
func TestCompareCleansUpAfterFailure(t *testing.T) {
	const keyspace = 40 // each prefill: 40 writes (the mix has no incr)
	raw := func(name string) bool { return strings.HasPrefix(name, "loadgen-raw/") }
	for _, tc := range []struct {
		name string
		// setup configures the fault; cancel cancels the run's context.
		setup func(d *faultDriver, cancel context.CancelFunc)
		want  string // in the error
	}{
		{"cache prefill write fails", func(d *faultDriver, _ context.CancelFunc) {
			d.failWrite = func(_ string, n int64) bool { return n > 10 }
		}, "prefill of the cache"},
		{"raw prefill write fails", func(d *faultDriver, _ context.CancelFunc) {
			var rawWrites atomic.Int64
			d.failWrite = func(name string, _ int64) bool { return raw(name) && rawWrites.Add(1) > 10 }
		}, "prefill of the raw driver"},
		{"cache run write fails", func(d *faultDriver, _ context.CancelFunc) {
			d.failWrite = func(name string, n int64) bool { return !raw(name) && n > 2*keyspace+5 }
		}, "loadgen: cache set of key"},
		{"raw run write fails", func(d *faultDriver, _ context.CancelFunc) {
			d.failWrite = func(name string, n int64) bool { return raw(name) && n > 2*keyspace+5 }
		}, "loadgen: raw driver set of key"},
		{"worker panics", func(d *faultDriver, _ context.CancelFunc) {
			d.panicRead = func(n int64) bool { return n == 7 }
		}, "panic: faultDriver: read panics"},
		{"cancelled midway", func(d *faultDriver, cancel context.CancelFunc) {
			d.onWrite = func(n int64) {
				if n == keyspace+5 { // in the raw prefill
					cancel()
				}
			}
		}, "context canceled"},
		{"cancelled in the run", func(d *faultDriver, cancel context.CancelFunc) {
			d.onWrite = func(n int64) {
				if n == 2*keyspace+3 {
					cancel()
				}
			}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := mem.New()
			d := &faultDriver{Driver: baseOnly{store}}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			tc.setup(d, cancel)
			c, err := cache.New(d, cache.WithLocation("bench"), cache.WithMaxEntries(0))
			if err != nil {
				t.Fatal(err)
			}
			mix, _ := ParseMix("get=1,set=1")
			var cmp *Comparison
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("Compare panicked: %v", r)
					}
				}()
				cmp, err = Compare(ctx, c, Workload{Workers: 4, Ops: 1000, Keyspace: keyspace, Mix: mix, Seed: 1})
			}()
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Compare = %v, want an error containing %q", err, tc.want)
			}
			if tc.want == "" && ctx.Err() == nil {
				t.Errorf("the run was not cancelled (Compare = %v)", err)
			}
			_ = cmp
			if left := objects(t, store); len(left) > 0 {
				t.Errorf("Compare left %d objects: %v", len(left), left)
			}
		})
	}
}

// TestCompareCleanupIsBounded: a store whose deletes never return does not
// hang Compare past Config.CleanupTimeout, and the failure is reported.
func TestCompareCleanupIsBounded(t *testing.T) {
	d := &faultDriver{Driver: baseOnly{mem.New()}, hangDeletes: true}
	c, err := cache.New(d, cache.WithMaxEntries(0))
	if err != nil {
		t.Fatal(err)
	}
	mix, _ := ParseMix("get=1")
	_, err = Compare(t.Context(), c, Workload{Workers: 2, Ops: 10, Keyspace: 5, Mix: mix, CleanupTimeout: time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrCleanup) || !strings.Contains(err.Error(), "deleting the cache run's keys") || !strings.Contains(err.Error(), "deleting the raw run's objects") {
		t.Errorf("Compare with deletes that hang = %v, want both cleanups to fail with the deadline", err)
	}
}
