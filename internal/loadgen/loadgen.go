// Package loadgen is blobcache's load generator: workers run a mix of cache
// operations on random keys for a duration (or a number of operations) and
// the run reports throughput, latency percentiles and store requests per
// operation. The same workload run on the raw driver gives the cache's
// overhead as a throughput ratio.
//
//	c, _ := cache.Open(ctx, "s3://bucket?...")
//	mix, _ := loadgen.ParseMix("get=90,set=10")
//	cmp, err := loadgen.Compare(ctx, c, loadgen.Config{Workers: 64, Duration: 30 * time.Second, Mix: mix})
//	fmt.Print(cmp)
//
// A run first writes every key of the keyspace once (not measured), so that
// gets hit. The cache run uses keys "loadgen-<n>"; the raw run uses objects
// "loadgen-raw/<hex>" (names as long as the cache's) through the cache's own
// driver. Compare deletes both afterwards.
package loadgen

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
)

// Op is an operation of a workload.
type Op string

// The operations a Mix can name.
const (
	Get    Op = "get"    // cache Get; raw: Read
	Set    Op = "set"    // cache Set; raw: Write
	Add    Op = "add"    // cache Add; raw: IfAbsent Write
	Has    Op = "has"    // cache Has; raw: range Read of the header
	Delete Op = "delete" // cache Delete; raw: Delete
	Incr   Op = "incr"   // cache Incr of a counter key; raw: Read, then Replace (Write without a Replacer)
)

// Ops are the operations in the order reports list them.
var Ops = []Op{Get, Set, Add, Has, Delete, Incr}

// Mix is the share of each operation in a workload.
type Mix struct {
	ops     []Op
	weights []int
	total   int
}

// MaxWeight is the largest weight of one operation in a Mix. With at most
// len(Ops) operations the sum stays far from overflowing.
const MaxWeight = 1_000_000

// ParseMix parses a mix such as "get=90,set=10": comma-separated
// operation=weight pairs, weights integers from 0 to MaxWeight with a
// positive sum, each operation at most once (a weight of 0 included). Shares
// are weight/sum.
func ParseMix(s string) (Mix, error) {
	var m Mix
	var seen []Op
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		if !ok {
			return Mix{}, fmt.Errorf("loadgen: mix %q: %q is not op=weight", s, part)
		}
		op := Op(strings.ToLower(strings.TrimSpace(name)))
		if !slices.Contains(Ops, op) {
			return Mix{}, fmt.Errorf("loadgen: mix %q: unknown operation %q (want one of %v)", s, name, Ops)
		}
		if slices.Contains(seen, op) {
			return Mix{}, fmt.Errorf("loadgen: mix %q: %s given twice", s, op)
		}
		seen = append(seen, op)
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 0 || n > MaxWeight {
			return Mix{}, fmt.Errorf("loadgen: mix %q: weight of %s is %q, want an integer from 0 to %d", s, op, w, MaxWeight)
		}
		if n == 0 {
			continue
		}
		m.ops = append(m.ops, op)
		m.weights = append(m.weights, n)
		m.total += n
	}
	if m.total == 0 {
		return Mix{}, fmt.Errorf("loadgen: mix %q has no operation with a positive weight", s)
	}
	return m, nil
}

// String returns the mix as ParseMix reads it.
func (m Mix) String() string {
	parts := make([]string, len(m.ops))
	for i, op := range m.ops {
		parts[i] = fmt.Sprintf("%s=%d", op, m.weights[i])
	}
	return strings.Join(parts, ",")
}

// pick returns the operation for a uniform random r in [0, total).
func (m Mix) pick(r int) Op {
	for i, w := range m.weights {
		if r < w {
			return m.ops[i]
		}
		r -= w
	}
	return m.ops[len(m.ops)-1]
}

// DefaultMix is the workload when Config.Mix is empty: 90% gets, 10% sets.
var DefaultMix = Mix{ops: []Op{Get, Set}, weights: []int{90, 10}, total: 100}

// Config is a workload. The zero value of each field means its default.
type Config struct {
	// Workers is the number of concurrent workers; default 16.
	Workers int
	// Duration is how long the measured run lasts; default 10s, or no limit
	// when Ops is set.
	Duration time.Duration
	// Ops stops the run after this many operations in all (0: no limit).
	Ops int64
	// Keyspace is the number of distinct keys, chosen uniformly; default
	// 1000 for Compare, the target's for Run (which refuses a larger one).
	Keyspace int
	// ValueSize is the size of every value written, random bytes; default
	// 1024.
	ValueSize int
	// Mix is the share of each operation; default DefaultMix.
	Mix Mix
	// TTL is the expiry of the cache's writes; default cache.NoExpiry.
	TTL time.Duration
	// NoPrefill skips writing every key once before the run.
	NoPrefill bool
	// MaxErrors is how many failed operations the run tolerates (counting
	// them) before it stops with the first error; default 0: it stops at the
	// first.
	MaxErrors int64
	// Seed makes the key and operation choices reproducible; 0 picks one.
	Seed uint64
	// CleanupTimeout bounds Compare's deletion of what the runs wrote, which
	// runs with a context of its own (ctx's values without its cancellation)
	// so that a cancelled or failed run still cleans up; default
	// DefaultCleanupTimeout.
	CleanupTimeout time.Duration
}

// DefaultCleanupTimeout is Config.CleanupTimeout's default.
const DefaultCleanupTimeout = 2 * time.Minute

// ErrCleanup marks Compare's errors from deleting what the runs wrote: with
// errors.Is(err, ErrCleanup), objects of the runs may be left in the store.
var ErrCleanup = errors.New("loadgen: cleanup failed")

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.Duration <= 0 && c.Ops <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Keyspace <= 0 {
		c.Keyspace = 1000
	}
	if c.ValueSize <= 0 {
		c.ValueSize = 1024
	}
	if c.Mix.total == 0 {
		c.Mix = DefaultMix
	}
	if c.TTL == 0 {
		c.TTL = cache.NoExpiry
	}
	if c.Seed == 0 {
		c.Seed = mrand.Uint64()
	}
	if c.CleanupTimeout <= 0 {
		c.CleanupTimeout = DefaultCleanupTimeout
	}
	return c
}

// Target is what a run drives: the cache, or the raw driver.
type Target interface {
	// Name describes the target in reports.
	Name() string
	// Do performs op on key number k of the keyspace and reports whether
	// it found what it looked for: false for a get or has of an absent key,
	// an add of a present one, a delete or incr of an absent one.
	Do(ctx context.Context, op Op, k int, value []byte) (hit bool, err error)
	// Requests returns how many store requests the target has made so
	// far, or -1 when it cannot tell.
	Requests() int64
	// Keyspace is the number of keys the target was made for.
	Keyspace() int
}

// cacheTarget runs operations on a cache.
type cacheTarget struct {
	c        *cache.Cache
	keys     []string
	counters []string
	ttl      time.Duration
}

// CacheTarget returns a Target running the operations on c with keys
// "loadgen-<k>" (and "loadgen-ctr-<k>" for incr). Its requests are the
// driver calls c.Stats counts.
func CacheTarget(c *cache.Cache, keyspace int, ttl time.Duration) Target {
	t := &cacheTarget{c: c, ttl: ttl}
	for k := range keyspace {
		t.keys = append(t.keys, "loadgen-"+strconv.Itoa(k))
		t.counters = append(t.counters, "loadgen-ctr-"+strconv.Itoa(k))
	}
	return t
}

// Name implements Target.
func (t *cacheTarget) Name() string { return "cache" }

// Keyspace implements Target.
func (t *cacheTarget) Keyspace() int { return len(t.keys) }

// Requests implements Target.
func (t *cacheTarget) Requests() int64 {
	s := t.c.Stats()
	return s.Reads + s.Writes + s.DeleteRequests + s.BatchDeletes + s.Lists
}

// Do implements Target.
func (t *cacheTarget) Do(ctx context.Context, op Op, k int, value []byte) (bool, error) {
	key := t.keys[k]
	switch op {
	case Get:
		_, err := t.c.Get(ctx, key)
		if errors.Is(err, cache.ErrMiss) {
			return false, nil
		}
		return err == nil, err
	case Set:
		return true, t.c.Set(ctx, key, value, t.ttl)
	case Add:
		return t.c.Add(ctx, key, value, t.ttl)
	case Has:
		return t.c.Has(ctx, key)
	case Delete:
		return t.c.Delete(ctx, key)
	case Incr:
		_, err := t.c.Incr(ctx, t.counters[k], 1)
		if errors.Is(err, cache.ErrMiss) {
			_, err = t.c.Add(ctx, t.counters[k], []byte("1"), t.ttl)
			return false, err
		}
		return err == nil, err
	}
	return false, fmt.Errorf("loadgen: unknown operation %q", op)
}

// Cleanup deletes everything a run on t may have written: every key (or
// object) and counter of its keyspace. It is for Targets made by CacheTarget
// and DriverTarget; others have nothing to delete and get nil. It uses ctx
// as given: after a cancelled run, pass a fresh one (see CleanupContext).
func Cleanup(ctx context.Context, t Target) error {
	if c, ok := t.(interface{ cleanup(context.Context) error }); ok {
		return c.cleanup(ctx)
	}
	return nil
}

// CleanupContext returns the context a cleanup after a run on ctx uses:
// ctx's values without its cancellation (a cancelled run must still delete
// what it wrote), bounded by timeout (DefaultCleanupTimeout when not
// positive) so that a store that stopped answering cannot hang it.
func CleanupContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		timeout = DefaultCleanupTimeout
	}
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}

// cleanup deletes every key and counter of the keyspace.
func (t *cacheTarget) cleanup(ctx context.Context) error {
	return t.c.DeleteMany(ctx, append(slices.Clone(t.keys), t.counters...))
}

// driverTarget does the same storage work on the raw driver.
type driverTarget struct {
	d        driver.Driver
	replacer driver.Replacer
	names    []string
	counters []string
	requests func() int64
}

// DriverTarget returns a Target doing each operation's storage work with d
// itself, on objects prefix + hex(sha1(k)) (and of "ctr-<k>" for incr): get
// is a Read, set a Write, add an IfAbsent Write, has a range Read of 32
// bytes, delete a Delete, incr a Read and a Replace (a Write without a
// Replacer). It counts its requests as driver calls.
func DriverTarget(d driver.Driver, prefix string, keyspace int) Target {
	cd, calls := CountDriver(d)
	t := &driverTarget{d: cd, requests: calls}
	t.replacer, _ = cd.(driver.Replacer)
	name := func(s string) string {
		sum := sha1.Sum([]byte(s))
		return prefix + hex.EncodeToString(sum[:])
	}
	for k := range keyspace {
		t.names = append(t.names, name(strconv.Itoa(k)))
		t.counters = append(t.counters, name("ctr-"+strconv.Itoa(k)))
	}
	return t
}

// Name implements Target.
func (t *driverTarget) Name() string { return "raw driver" }

// Keyspace implements Target.
func (t *driverTarget) Keyspace() int { return len(t.names) }

// Requests implements Target.
func (t *driverTarget) Requests() int64 { return t.requests() }

// headerRead is what a raw has reads: as much as the cache's header read.
const headerRead = 32

// Do implements Target.
func (t *driverTarget) Do(ctx context.Context, op Op, k int, value []byte) (bool, error) {
	name := t.names[k]
	switch op {
	case Get, Has:
		n := int64(-1)
		if op == Has {
			n = headerRead
		}
		_, _, err := t.d.Read(ctx, name, 0, n)
		if errors.Is(err, driver.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	case Set:
		return true, t.d.Write(ctx, name, newBytesReader(value), &driver.WriteOptions{})
	case Add:
		err := t.d.Write(ctx, name, newBytesReader(value), &driver.WriteOptions{IfAbsent: true})
		if errors.Is(err, driver.ErrPreconditionFailed) {
			return false, nil
		}
		return err == nil, err
	case Delete:
		return true, t.d.Delete(ctx, name)
	case Incr:
		name = t.counters[k]
		data, attrs, err := t.d.Read(ctx, name, 0, -1)
		if errors.Is(err, driver.ErrNotFound) {
			err = t.d.Write(ctx, name, newBytesReader([]byte("1")), &driver.WriteOptions{IfAbsent: true})
			if errors.Is(err, driver.ErrPreconditionFailed) {
				err = nil
			}
			return false, err
		}
		if err != nil {
			return false, err
		}
		n, err := strconv.ParseInt(string(data), 10, 64)
		if err != nil {
			return false, fmt.Errorf("loadgen: counter %s holds %q", name, data)
		}
		body := newBytesReader(strconv.AppendInt(nil, n+1, 10))
		if t.replacer != nil {
			err = t.replacer.Replace(ctx, name, body, attrs.ETag, &driver.WriteOptions{})
			if errors.Is(err, driver.ErrPreconditionFailed) || errors.Is(err, driver.ErrNotFound) {
				err = nil // lost a race: as the cache would retry, count it done
			}
		} else {
			err = t.d.Write(ctx, name, body, &driver.WriteOptions{})
		}
		return err == nil, err
	}
	return false, fmt.Errorf("loadgen: unknown operation %q", op)
}

func (t *driverTarget) cleanup(ctx context.Context) error {
	names := append(slices.Clone(t.names), t.counters...)
	if bd, ok := t.d.(driver.BatchDeleter); ok {
		var errs []error
		for chunk := range slices.Chunk(names, driver.MaxBatchDelete) {
			if err := bd.DeleteBatch(ctx, chunk); err != nil {
				errs = append(errs, err)
				if ctx.Err() != nil {
					break
				}
			}
		}
		return errors.Join(errs...)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, n := range names {
		g.Go(func() error { return t.d.Delete(gctx, n) })
	}
	return g.Wait()
}

// errPanic marks the error of an operation that panicked.
var errPanic = errors.New("panic")

// do runs t.Do, turning a panic into an error wrapping errPanic: a worker's
// panic must stop the run, not the process, so that what the run wrote is
// still deleted.
func do(ctx context.Context, t Target, op Op, k int, value []byte) (hit bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			hit, err = false, fmt.Errorf("%w: %v", errPanic, r)
		}
	}()
	return t.Do(ctx, op, k, value)
}

// bytesReader is a minimal io.Reader over a byte slice.
type bytesReader struct{ b []byte }

func newBytesReader(b []byte) *bytesReader { return &bytesReader{b} }

// Read implements io.Reader.
func (r *bytesReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// OpStats are one operation's results in a run.
type OpStats struct {
	// Ops counts completed operations, errors included; Errors the failed
	// ones; Misses those that did not find what they looked for (see
	// Target.Do).
	Ops, Errors, Misses int64
	// P50, P99, P999 and Max are latency percentiles (within 2%).
	P50, P99, P999, Max time.Duration
}

// Report is the result of one run.
type Report struct {
	// Target names what ran.
	Target string
	// Config is the workload, defaults filled in.
	Config Config
	// Elapsed is the measured run's wall time.
	Elapsed time.Duration
	// All sums every operation.
	All OpStats
	// PerOp has the stats of each operation of the mix.
	PerOp map[Op]OpStats
	// OpsPerSec is All.Ops / Elapsed.
	OpsPerSec float64
	// Requests counts the store requests of the measured run, -1 when the
	// target cannot tell; RequestsPerOp is Requests / All.Ops (NaN then).
	Requests      int64
	RequestsPerOp float64
	// Err is the first error, when the run stopped because of errors.
	Err error
}

// String formats the report: a summary line and one line per operation.
func (r *Report) String() string {
	var b strings.Builder
	reqs := "requests/op n/a"
	if r.Requests >= 0 {
		reqs = fmt.Sprintf("%.3f requests/op", r.RequestsPerOp)
	}
	fmt.Fprintf(&b, "%s: %d ops in %v, %.0f ops/s, %s; latency p50 %v p99 %v p99.9 %v max %v",
		r.Target, r.All.Ops, r.Elapsed.Round(time.Millisecond), r.OpsPerSec, reqs,
		r.All.P50, r.All.P99, r.All.P999, r.All.Max)
	if r.All.Errors > 0 {
		fmt.Fprintf(&b, "; %d errors", r.All.Errors)
	}
	b.WriteString("\n")
	for _, op := range Ops {
		s, ok := r.PerOp[op]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "  %-6s %9d ops %7.2f%% misses  p50 %-10v p99 %-10v p99.9 %v\n",
			op, s.Ops, 100*float64(s.Misses)/math.Max(1, float64(s.Ops)), s.P50, s.P99, s.P999)
	}
	if r.Err != nil {
		fmt.Fprintf(&b, "  stopped by: %v\n", r.Err)
	}
	return b.String()
}

// Run prefills the keyspace (unless cfg.NoPrefill) and runs cfg's workload
// on t. It returns the report and, when the run stopped because of errors,
// the first error (also in Report.Err).
func Run(ctx context.Context, t Target, cfg Config) (*Report, error) {
	if cfg.Keyspace <= 0 {
		cfg.Keyspace = t.Keyspace()
	}
	if cfg.Keyspace > t.Keyspace() {
		return nil, fmt.Errorf("loadgen: keyspace %d, but the target was made for %d keys", cfg.Keyspace, t.Keyspace())
	}
	cfg = cfg.withDefaults()
	value := make([]byte, cfg.ValueSize)
	rand.Read(value)
	if !cfg.NoPrefill {
		if err := prefill(ctx, t, cfg, value); err != nil {
			return nil, fmt.Errorf("loadgen: prefill: %w", err)
		}
	}
	m := measure(ctx, t, cfg, value)
	return m.report(t.Name(), cfg), m.err
}

// measured is what one measured run (or several, added up) counted.
type measured struct {
	ws       *workerStats
	elapsed  time.Duration
	requests int64 // -1 when the target cannot tell
	err      error // the first error that stopped a run
}

// add adds o's counts to m's.
func (m *measured) add(o measured) {
	m.ws.merge(o.ws)
	m.elapsed += o.elapsed
	if m.requests < 0 || o.requests < 0 {
		m.requests = -1
	} else {
		m.requests += o.requests
	}
	if m.err == nil {
		m.err = o.err
	}
}

// measure runs cfg's workload (defaults filled in) on t, without prefill.
func measure(ctx context.Context, t Target, cfg Config, value []byte) measured {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		claimed  atomic.Int64
		errCount atomic.Int64
		firstErr error
		errOnce  sync.Once
		workers  = make([]*workerStats, cfg.Workers)
		wg       sync.WaitGroup
	)
	deadline := time.Time{}
	start := time.Now()
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	req0 := t.Requests()
	for w := range cfg.Workers {
		ws := newWorkerStats()
		workers[w] = ws
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(cfg.Seed, uint64(w)))
			for ctx.Err() == nil {
				if cfg.Ops > 0 && claimed.Add(1) > cfg.Ops {
					return
				}
				op := cfg.Mix.pick(rng.IntN(cfg.Mix.total))
				k := rng.IntN(cfg.Keyspace)
				t0 := time.Now()
				if !deadline.IsZero() && t0.After(deadline) {
					return
				}
				hit, err := do(ctx, t, op, k, value)
				ws.record(op, time.Since(t0), hit, err)
				if err != nil && (ctx.Err() == nil || errors.Is(err, errPanic)) {
					// A panic stops the run whatever MaxErrors allows.
					if errCount.Add(1) > cfg.MaxErrors || errors.Is(err, errPanic) {
						errOnce.Do(func() {
							firstErr = fmt.Errorf("loadgen: %s %s of key %d: %w", t.Name(), op, k, err)
							cancel()
						})
					}
				}
			}
		})
	}
	wg.Wait()
	m := measured{ws: newWorkerStats(), elapsed: time.Since(start), requests: -1, err: firstErr}
	if req0 >= 0 {
		if req1 := t.Requests(); req1 >= 0 {
			m.requests = req1 - req0
		}
	}
	for _, ws := range workers {
		m.ws.merge(ws)
	}
	return m
}

// report makes the Report of what m counted.
func (m measured) report(target string, cfg Config) *Report {
	r := &Report{Target: target, Config: cfg, Elapsed: m.elapsed, PerOp: map[Op]OpStats{}, Err: m.err}
	var allHist histogram
	for _, op := range Ops {
		s := m.ws.ops[op]
		if s.n == 0 {
			continue
		}
		r.PerOp[op] = s.stats()
		allHist.merge(&s.h)
		r.All.Ops += s.n
		r.All.Errors += s.errors
		r.All.Misses += s.misses
	}
	r.All.P50, r.All.P99, r.All.P999, r.All.Max = allHist.quantile(0.50), allHist.quantile(0.99), allHist.quantile(0.999), allHist.maxDuration()
	r.OpsPerSec = float64(r.All.Ops) / m.elapsed.Seconds()
	r.Requests, r.RequestsPerOp = -1, math.NaN()
	if m.requests >= 0 {
		r.Requests = m.requests
		r.RequestsPerOp = float64(r.Requests) / math.Max(1, float64(r.All.Ops))
	}
	return r
}

// prefill writes every key (and every counter, for a mix with incr) once,
// cfg.Workers at a time.
func prefill(ctx context.Context, t Target, cfg Config, value []byte) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Workers)
	incr := slices.Contains(cfg.Mix.ops, Incr)
	for k := range cfg.Keyspace {
		g.Go(func() error {
			if _, err := do(gctx, t, Set, k, value); err != nil {
				return err
			}
			if incr {
				_, err := do(gctx, t, Incr, k, nil)
				return err
			}
			return nil
		})
	}
	return g.Wait()
}

// Comparison is one workload run on a cache and on its raw driver.
type Comparison struct {
	Cache, Raw *Report
	// Ratio is the cache's throughput over the raw driver's (1 = no
	// overhead).
	Ratio float64
}

// String formats both reports and the ratio.
func (c *Comparison) String() string {
	return fmt.Sprintf("%s%sthroughput ratio cache/raw: %.3f\n", c.Cache, c.Raw, c.Ratio)
}

// Compare runs cfg's workload on c and the same workload on c's driver
// (objects under "loadgen-raw/", see DriverTarget), and reports both with
// the throughput ratio. It deletes what both runs may have written
// afterwards, whatever happened: after a failed prefill or run, a cancelled
// ctx, or a panic in a worker (an error then) or in Compare itself (re-raised
// after the cleanup). The cleanup runs with CleanupContext(ctx,
// cfg.CleanupTimeout); its failure is joined to the returned error.
//
// So that neither side gains from going second (a warmer server, a grown
// heap, a store filling up), the workload is measured in two halves, in the
// order cache, raw, raw, cache (each half gets half the duration and of the
// operations); each side's report adds up its two halves. The two sides use
// the same seeds, so they draw the same keys and operations.
func Compare(ctx context.Context, c *cache.Cache, cfg Config) (_ *Comparison, err error) {
	cfg = cfg.withDefaults()
	ct := CacheTarget(c, cfg.Keyspace, cfg.TTL).(*cacheTarget)
	dt := DriverTarget(c.Driver(), "loadgen-raw/", cfg.Keyspace).(*driverTarget)
	defer func() {
		cctx, cancel := CleanupContext(ctx, cfg.CleanupTimeout)
		defer cancel()
		var errs []error
		if cerr := ct.cleanup(cctx); cerr != nil {
			errs = append(errs, fmt.Errorf("%w: deleting the cache run's keys: %w", ErrCleanup, cerr))
		}
		if derr := dt.cleanup(cctx); derr != nil {
			errs = append(errs, fmt.Errorf("%w: deleting the raw run's objects: %w", ErrCleanup, derr))
		}
		if len(errs) > 0 {
			err = errors.Join(append([]error{err}, errs...)...)
		}
	}()
	value := make([]byte, cfg.ValueSize)
	rand.Read(value)
	if !cfg.NoPrefill {
		for _, t := range []Target{ct, dt} {
			if err := prefill(ctx, t, cfg, value); err != nil {
				return nil, fmt.Errorf("loadgen: prefill of the %s: %w", t.Name(), err)
			}
		}
	}
	halves := splitHalves(cfg)
	cm := measured{ws: newWorkerStats()}
	rm := measured{ws: newWorkerStats()}
	for _, round := range []struct {
		t    Target
		m    *measured
		half int
	}{{ct, &cm, 0}, {dt, &rm, 0}, {dt, &rm, 1}, {ct, &cm, 1}} {
		h := halves[round.half]
		if h.Ops == 0 && h.Duration == 0 {
			continue // one operation in all: the second half has none
		}
		if ctx.Err() != nil {
			break
		}
		round.m.add(measure(ctx, round.t, h, value))
		if round.m.err != nil {
			break
		}
	}
	cmp := &Comparison{Cache: cm.report(ct.Name(), cfg), Raw: rm.report(dt.Name(), cfg)}
	if cmp.Raw.OpsPerSec > 0 {
		cmp.Ratio = cmp.Cache.OpsPerSec / cmp.Raw.OpsPerSec
	}
	err = cm.err
	if err == nil {
		err = rm.err
	}
	return cmp, err
}

// splitHalves splits cfg's duration and operations between the two halves
// of a Compare. A half never has neither limit while the whole has one: a
// 1ns duration gives the first half 1ns, not 0 (which would be no limit).
// A half with no operations to do (Ops 1, no duration) has both 0 and is
// skipped.
func splitHalves(cfg Config) [2]Config {
	h := [2]Config{cfg, cfg}
	h[0].Duration, h[1].Duration = cfg.Duration/2, cfg.Duration-cfg.Duration/2
	if cfg.Duration > 0 && h[0].Duration == 0 {
		h[0].Duration = cfg.Duration
	}
	h[0].Ops, h[1].Ops = cfg.Ops/2, cfg.Ops-cfg.Ops/2
	if cfg.Ops > 0 {
		for i := range h {
			if h[i].Ops == 0 {
				h[i].Duration = 0 // nothing to do in this half
			}
		}
	}
	h[1].Seed = cfg.Seed ^ 0x9e3779b97f4a7c15
	return h
}
