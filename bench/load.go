package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/blobcache/blobcache/cache"
)

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
	// Workload is the workload, defaults filled in.
	Workload Workload
	// Elapsed is the measured run's wall time.
	Elapsed time.Duration
	// All sums every operation.
	All OpStats
	// PerOp has the stats of each operation of the mix.
	PerOp map[Op]OpStats
	// OpsPerSec is All.Ops / Elapsed.
	OpsPerSec float64
	// Requests counts the store requests of the measured run, -1 when the
	// target cannot tell.
	Requests int64
	// RequestsPerOp is Requests / All.Ops (NaN when Requests is -1).
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

// RunLoad prefills the keyspace (unless cfg.NoPrefill) and runs cfg's
// workload on t. It returns the report and, when the run stopped because of errors,
// the first error (also in Report.Err).
func RunLoad(ctx context.Context, t Target, cfg Workload) (*Report, error) {
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
func measure(ctx context.Context, t Target, cfg Workload, value []byte) measured {
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
func (m measured) report(target string, cfg Workload) *Report {
	r := &Report{Target: target, Workload: cfg, Elapsed: m.elapsed, PerOp: map[Op]OpStats{}, Err: m.err}
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
func prefill(ctx context.Context, t Target, cfg Workload, value []byte) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Workers)
	incr := slices.Contains(cfg.Mix.ops, OpIncr)
	for k := range cfg.Keyspace {
		g.Go(func() error {
			if _, err := do(gctx, t, OpSet, k, value); err != nil {
				return err
			}
			if incr {
				_, err := do(gctx, t, OpIncr, k, nil)
				return err
			}
			return nil
		})
	}
	return g.Wait()
}

// Comparison is one workload run on a cache and on its raw driver.
type Comparison struct {
	// Cache is the run on the cache.
	Cache *Report
	// Raw is the run on the cache's driver, without the cache.
	Raw *Report
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
func Compare(ctx context.Context, c *cache.Cache, cfg Workload) (_ *Comparison, err error) {
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
func splitHalves(cfg Workload) [2]Workload {
	h := [2]Workload{cfg, cfg}
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
