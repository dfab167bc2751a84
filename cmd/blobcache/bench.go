package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/blobcache/blobcache/bench"
	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
)

// Defaults and bounds of the bench flags.
const (
	defaultBenchWorkers  = 16
	defaultBenchDuration = 10 * time.Second
	defaultBenchKeyspace = 1000
	defaultBenchMix      = "get=90,set=10"
	defaultValueSize     = "1KiB"

	// Every worker keeps its own latency histograms (about 90 kB), and every
	// key of the keyspace is four names in memory (about 200 bytes) and a
	// write before the run: the bounds keep a typing slip from exhausting
	// memory or running for days. The help text states them.
	maxBenchWorkers  = 1024
	maxBenchKeyspace = 1_000_000
	maxValueSize     = 1 << 30
	maxBenchOps      = 1_000_000_000_000
	maxBenchDuration = 24 * time.Hour
)

// benchCleanupTimeout bounds the deletion of the bench's keys and objects
// after the run, which has a context of its own so that an interrupted or
// failed run still cleans up.
const benchCleanupTimeout = 2 * time.Minute

// durationFlag is a duration flag that remembers whether it was given.
type durationFlag struct {
	d   time.Duration
	set bool
}

// String implements flag.Value.
func (f *durationFlag) String() string { return f.d.String() }

// Set implements flag.Value.
func (f *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil && durationShape.MatchString(s):
		return fmt.Errorf("out of range: want at most %v", maxBenchDuration)
	case err != nil:
		return errors.New("want a Go duration such as 30s or 2m")
	}
	f.d, f.set = d, true
	return nil
}

func benchFlags(fs *flag.FlagSet, v *flagValues) {
	fs.IntVar(&v.workers, "workers", defaultBenchWorkers, fmt.Sprintf("run `N` workers at once, each calling the cache one operation after another; 1 to %d", maxBenchWorkers))
	v.duration = durationFlag{d: defaultBenchDuration}
	fs.Var(&v.duration, "duration", fmt.Sprintf("length `D` of the measured run, a Go duration, more than 0 and at most %v; when only -ops is given, no time limit", maxBenchDuration))
	fs.Int64Var(&v.ops, "ops", 0, fmt.Sprintf("stop after `N` operations in all, at most %d (0: no limit); with -duration, whichever comes first", int64(maxBenchOps)))
	fs.IntVar(&v.keyspace, "keyspace", defaultBenchKeyspace, fmt.Sprintf("draw keys uniformly from `N` distinct keys, each written once before the run; 1 to %d", maxBenchKeyspace))
	fs.StringVar(&v.valueSize, "value-size", defaultValueSize, "`SIZE` of every value written: bytes (4096) or with a unit (B, kB, KiB, MB, MiB, GB, GiB); 1 byte to 1 GiB, and at most the cache's max_value_size")
	fs.StringVar(&v.mix, "mix", defaultBenchMix, fmt.Sprintf("operations and their weights, `MIX` = op=weight,...; ops: get, set, add, has, delete, incr, each at most once; weights 0 to %d, at least one positive", bench.MaxWeight))
	fs.StringVar(&v.ttl, "ttl", "none", "expiry `D` of the bench's writes: "+ttlUsage)
	fs.BoolVar(&v.raw, "raw", true, "then run the same workload on the store through the driver, without the cache, and print the throughput ratio cache/raw; -raw=false runs the cache only")
	fs.Uint64Var(&v.seed, "seed", 0, "seed `N` of the key and operation choices, for a repeatable run (0: random; the seed used is printed)")
	fs.BoolVar(&v.yes, "yes", false, "run even when the URL has no location (the root of the store)")
}

const benchDetail = `Runs a workload of cache calls on random keys of the URL's cache and
prints its throughput (ops/s), latency (p50, p99, p99.9 and max, in all
and per operation), misses, and store requests per operation. With -raw
(the default) it also runs the same workload (same seed: the same keys
and operations) on the store itself, through the driver without the
cache, and prints the throughput ratio cache/raw; the duration (or -ops)
is then split in two halves run in the order cache, raw, raw, cache, so
that neither side gains from going second. Last come this
process's cache counters (Stats) after the cache run's prefill, run and
cleanup: the requests by kind and the bytes are what the run cost on the
store's bill (the raw run calls the driver directly and is not in them;
neither is the one LIST of the emptiness check below).

Before the measured run, every key of the keyspace is written once, so
that gets hit. The cache run uses the keys loadgen-N (and loadgen-ctr-N
for incr) under the URL's location, the raw run the objects
loadgen-raw/<sha1> at the root of the store (use -raw=false when the
credentials may write only under the location). bench deletes both
afterwards, and nothing else: also when it fails midway (a store error,
Ctrl-C, a panic in a worker), with a context of its own so that an
interruption does not stop the deletion, bounded by 2 minutes; what it
could not delete is reported. Its writes count toward max_entries as the
application's do, so they may cull the location's entries: give it a
location of its own (?location=bench) with max_entries=0 or above
-keyspace; it warns when the location already holds entries. With no
location in the URL, the location is the root of the store: bench then
refuses to run without -yes.

The raw run does each operation's storage work: get a read, set a
write, add a create-if-absent write, has a header range read, delete a
delete, incr a read and a replace-if-unchanged write.`

// checkBench checks the bench flags and keeps the workload they make in
// v.benchCfg.
func checkBench(v *flagValues) error {
	cfg, err := benchConfig(v)
	v.benchCfg = cfg
	return err
}

// benchConfig checks the bench flags and turns them into a workload.
func benchConfig(v *flagValues) (bench.Workload, error) {
	var cfg bench.Workload
	switch {
	case v.workers < 1:
		return cfg, usagef("-workers must be at least 1, got %d", v.workers)
	case v.workers > maxBenchWorkers:
		return cfg, usagef("-workers must be at most %d, got %d", maxBenchWorkers, v.workers)
	case v.duration.d <= 0:
		return cfg, usagef("-duration must be positive, got %v", v.duration.d)
	case v.duration.d > maxBenchDuration:
		return cfg, usagef("-duration must be at most %v, got %v", maxBenchDuration, v.duration.d)
	case v.ops < 0:
		return cfg, usagef("-ops must be at least 0 (0: no limit), got %d", v.ops)
	case v.ops > maxBenchOps:
		return cfg, usagef("-ops must be at most %d, got %d", int64(maxBenchOps), v.ops)
	case v.keyspace < 1:
		return cfg, usagef("-keyspace must be at least 1, got %d", v.keyspace)
	case v.keyspace > maxBenchKeyspace:
		return cfg, usagef("-keyspace must be at most %d, got %d", maxBenchKeyspace, v.keyspace)
	}
	size, err := parseSize(v.valueSize)
	if err != nil {
		return cfg, usagef("-value-size %q: %v", v.valueSize, err)
	}
	if size < 1 || size > maxValueSize {
		return cfg, usagef("-value-size must be from 1 byte to 1 GiB, got %q", v.valueSize)
	}
	mix, err := bench.ParseMix(v.mix)
	if err != nil {
		return cfg, usagef("-mix: %s", strings.TrimPrefix(err.Error(), "loadgen: "))
	}
	ttl, err := parseTTL(v.ttl)
	if err != nil {
		return cfg, err
	}
	if ttl == cache.DefaultTTL {
		ttl = cache.NoExpiry // -ttl "": the load generator has no "the URL's timeout"
	}
	seed := v.seed
	for seed == 0 { // 0 would make the load generator pick one we could not print
		seed = rand.Uint64()
	}
	cfg = bench.Workload{
		Workers:        v.workers,
		Ops:            v.ops,
		Keyspace:       v.keyspace,
		ValueSize:      int(size),
		Mix:            mix,
		TTL:            ttl,
		Seed:           seed,
		CleanupTimeout: benchCleanupTimeout,
	}
	if v.duration.set || v.ops == 0 {
		cfg.Duration = v.duration.d
	}
	return cfg, nil
}

// parseSize reads a byte count: digits, then optionally a unit (B, kB, KiB,
// MB, MiB, GB, GiB, in any case; kB and KB both mean 1000).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(s)
	}
	bad := errors.New("want a size in bytes such as 4096, 1KiB, 64KiB or 1MiB")
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, bad
	}
	units := map[string]int64{
		"": 1, "b": 1,
		"kb": 1e3, "kib": 1 << 10,
		"mb": 1e6, "mib": 1 << 20,
		"gb": 1e9, "gib": 1 << 30,
	}
	mult, ok := units[strings.ToLower(strings.TrimSpace(s[i:]))]
	if !ok {
		return 0, bad
	}
	if n > math.MaxInt64/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}

func cmdBench(e *env, c *cache.Cache, _ []string) error {
	cfg := e.flags.benchCfg // checked by checkBench
	if limit := c.MaxValueSize(); int64(cfg.ValueSize) > limit {
		return usagef("-value-size %s: larger than the cache's max_value_size, %d bytes: every write would fail", e.flags.valueSize, limit)
	}
	if c.Location() == "" && !e.flags.yes {
		return fmt.Errorf("refusing to run: the URL has no location, so the bench's keys go to the root of %v, and its writes may cull any entry there; give it a location of its own (?location=bench) or pass -yes to run anyway", c)
	}
	// Usually one LIST (through the driver: not in the counters).
	found, err := hasEntries(e.ctx, c)
	if err != nil {
		return err
	}
	if found {
		where := fmt.Sprintf("the location %q", c.Location())
		if c.Location() == "" {
			where = "the store's root"
		}
		fmt.Fprintf(e.stderr, "blobcache: bench: warning: %s already holds entries: the bench's writes count toward max_entries there and may cull them; afterwards it deletes only its own keys\n", where)
	}

	w := e.stdout
	fmt.Fprintf(w, "target:       %v\n", c)
	fmt.Fprintf(w, "location:     %s\n", describeLocation(c))
	fmt.Fprintf(w, "workload:     %s\n", describeWorkload(cfg))
	if e.flags.raw {
		fmt.Fprintf(w, "raw run:      the same workload on objects loadgen-raw/<sha1> at the store's root, through the driver\n")
	}
	fmt.Fprintln(w)

	// Both runs delete what they wrote before they return, whatever stopped
	// them, with a context of their own bounded by cfg.CleanupTimeout.
	var runErr error
	if e.flags.raw {
		cmp, err := bench.Compare(e.ctx, c, cfg)
		switch {
		case cmp != nil && cmp.Raw != nil:
			fmt.Fprint(w, cmp)
		case cmp != nil && cmp.Cache != nil:
			fmt.Fprint(w, cmp.Cache)
		}
		runErr = err
	} else {
		rep, err := benchCache(e.ctx, c, cfg)
		if rep != nil {
			fmt.Fprint(w, rep)
		}
		runErr = err
	}
	fmt.Fprintln(w)
	heading := "this process's cache (Stats): the cache run's prefill, run and cleanup"
	if e.flags.raw {
		heading += "; not the raw run"
	}
	if err := writeCounters(w, heading, c.Stats(), ""); err != nil {
		return err
	}
	if e.ctx.Err() != nil {
		if errors.Is(runErr, bench.ErrCleanup) {
			// Reported as "interrupted", with what could not be deleted.
			return fmt.Errorf("%w; then %w", e.ctx.Err(), runErr)
		}
		return e.ctx.Err() // reported as "interrupted"
	}
	return runErr
}

// hasEntries reports whether c's location holds any of c's entries: it lists
// until it finds one (one LIST page unless the location starts with many
// objects that are not entries).
func hasEntries(ctx context.Context, c *cache.Cache) (bool, error) {
	opts := &driver.ListOptions{Prefix: c.Location(), PageSize: driver.MaxListPageSize}
	for {
		page, err := c.Driver().List(ctx, opts)
		if err != nil {
			return false, fmt.Errorf("listing %q: %w", c.Location(), err)
		}
		for _, o := range page.Objects {
			if c.IsEntryName(o.Name) {
				return true, nil
			}
		}
		if page.NextPageToken == "" {
			return false, nil
		}
		opts.PageToken = page.NextPageToken
	}
}

// benchCache runs cfg on c's cache only (-raw=false), then deletes the keys
// it may have written, also when the run failed or ctx was cancelled, or
// when Run panics (the panic goes on after the cleanup).
func benchCache(ctx context.Context, c *cache.Cache, cfg bench.Workload) (_ *bench.Report, err error) {
	target := bench.CacheTarget(c, cfg.Keyspace, cfg.TTL)
	defer func() {
		cctx, cancel := bench.CleanupContext(ctx, cfg.CleanupTimeout)
		defer cancel()
		if cerr := bench.Cleanup(cctx, target); cerr != nil {
			err = errors.Join(err, fmt.Errorf("%w: deleting the bench's keys: %w", bench.ErrCleanup, cerr))
		}
	}()
	return bench.RunLoad(ctx, target, cfg)
}

// describeLocation is the location line of bench's and stats' output.
func describeLocation(c *cache.Cache) string {
	if c.Location() == "" {
		return "(none: the whole store)"
	}
	return c.Location()
}

// describeWorkload is the workload line of bench's output.
func describeWorkload(cfg bench.Workload) string {
	var limit string
	switch {
	case cfg.Ops > 0 && cfg.Duration > 0:
		limit = fmt.Sprintf("%v or %d ops, whichever comes first", cfg.Duration, cfg.Ops)
	case cfg.Ops > 0:
		limit = fmt.Sprintf("%d ops", cfg.Ops)
	default:
		limit = cfg.Duration.String()
	}
	ttl := "none"
	if cfg.TTL > 0 {
		ttl = cfg.TTL.String()
	}
	return fmt.Sprintf("%d workers, %s, keyspace %d, %d-byte values, mix %v, ttl %s, seed %d",
		cfg.Workers, limit, cfg.Keyspace, cfg.ValueSize, cfg.Mix, ttl, cfg.Seed)
}
