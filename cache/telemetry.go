package cache

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/blobcache/blobcache/driver"
)

// Stats are a cache's in-process counters since it was made. They count this
// Cache value's calls only, not other processes'.
type Stats struct {
	// Hits and Misses count lookups of Get, GetMany (per key) and GetOrSet.
	Hits, Misses int64
	// Sets, Adds, Deletes, Touches and Incrs count calls (SetMany and
	// DeleteMany count per key); Adds counts attempts, Added the successful.
	Sets, Adds, Added, Deletes, Touches, Incrs int64
	// Errors counts calls that returned an error other than a miss.
	Errors int64
	// Culls counts culls; EntriesCulled the entries they removed. A cull
	// by shards (WithCullShards) is counted once its background pass over
	// the shards is done, with every entry it removed.
	Culls, EntriesCulled int64
	// Clears counts Clear calls.
	Clears int64
	// Expired, Corrupt and Forged count entries found dead on read and
	// deleted; Forged are those failing the signature check (WithSigningKeys).
	Expired, Corrupt, Forged int64
	// Retries counts conditional writes repeated after losing a race.
	Retries int64
	// Fills counts GetOrSet fill calls run by this cache. FillWaits counts
	// the polls of a key another process held the fill lease on
	// (WithFillLease): each cost two reads.
	Fills, FillWaits int64
	// Stale counts stale values served (WithStaleGrace) by GetOrSet and
	// GetStale, also counted in Hits; Refreshes the background refreshes
	// of stale entries this cache has finished, whether they stored a
	// value, failed (also counted in Errors), or found the key's fill lease
	// held by another process and left it to that one (Fills counts the
	// fills run).
	Stale, Refreshes int64
	// LocalHits and LocalMisses count the reads of a value (Get, GetMany,
	// GetOrSet) the local tier (WithLocalTier) served or did not; a local
	// hit is also a hit and makes no request. LocalEvictions counts the
	// copies it evicted to stay within its bytes (not those dropped by
	// writes or expired); LocalBytes is what it holds now, by its weigher
	// (names, values and a fixed overhead per copy).
	LocalHits, LocalMisses, LocalEvictions, LocalBytes int64
	// DiskHits and DiskMisses count the reads the local tier missed that
	// the disk tier (WithDiskTier) served or did not; a disk hit is also a
	// hit and makes no store request. DiskEvictions counts the copies it
	// evicted to stay within its bytes; DiskBytes is what its copies take
	// on disk now, by its weigher (each file rounded up to 4 KiB);
	// DiskErrors counts failed reads, writes and deletions of its own files
	// (each a miss or a copy not made, never a failed call).
	DiskHits, DiskMisses, DiskEvictions, DiskBytes, DiskErrors int64
	// Requests by kind, as the driver was called: Reads, Writes (including
	// conditional ones), DeleteRequests (including a driver.ReadDeleter's
	// ReadDelete, whose bytes count in BytesRead), BatchDeletes, Lists
	// (pages). They count driver calls, not the store's own requests: a
	// ReadDelete on GCS or Azure is a download and a conditional delete on
	// the wire (two more for each write that races it) but one
	// DeleteRequests here; the README's cost tables give each store's
	// requests per call.
	Reads, Writes, DeleteRequests, BatchDeletes, Lists int64
	// BytesRead and BytesWritten count entry bytes as stored (compressed
	// when gzip is on).
	BytesRead, BytesWritten int64
}

// stats is the atomic form of Stats.
type stats struct {
	hits, misses, sets, adds, added, deletes, touches, incrs, errors atomic.Int64
	culls, entriesCulled, clears, expired, corrupt, forged, retries  atomic.Int64
	reads, writes, deleteRequests, batchDeletes, lists               atomic.Int64
	bytesRead, bytesWritten                                          atomic.Int64
	fills, fillWaits, stale, refreshes                               atomic.Int64
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	s := &c.stats
	st := Stats{
		Hits: s.hits.Load(), Misses: s.misses.Load(),
		Sets: s.sets.Load(), Adds: s.adds.Load(), Added: s.added.Load(), Deletes: s.deletes.Load(),
		Touches: s.touches.Load(), Incrs: s.incrs.Load(), Errors: s.errors.Load(),
		Culls: s.culls.Load(), EntriesCulled: s.entriesCulled.Load(), Clears: s.clears.Load(),
		Expired: s.expired.Load(), Corrupt: s.corrupt.Load(), Forged: s.forged.Load(), Retries: s.retries.Load(),
		Reads: s.reads.Load(), Writes: s.writes.Load(), DeleteRequests: s.deleteRequests.Load(),
		BatchDeletes: s.batchDeletes.Load(), Lists: s.lists.Load(),
		BytesRead: s.bytesRead.Load(), BytesWritten: s.bytesWritten.Load(),
		Fills: s.fills.Load(), FillWaits: s.fillWaits.Load(), Stale: s.stale.Load(), Refreshes: s.refreshes.Load(),
		LocalHits: c.local.hitCount(), LocalMisses: c.local.missCount(), LocalEvictions: c.local.evictionCount(), LocalBytes: c.local.bytes(),
	}
	if d := c.local.diskTier(); d != nil {
		st.DiskHits, st.DiskMisses, st.DiskEvictions = d.hits.Load(), d.misses.Load(), d.evictions.Load()
		st.DiskBytes, st.DiskErrors = d.bytes(), d.failures.Load()
	}
	return st
}

// WithLogger makes the cache log culls, clears, dropped corrupt entries,
// failures of the disk tier's files, each tier's summary at Close (hits,
// misses, evictions, bytes) and retries to l, with structured fields; never
// values or secrets. The default is silent.
func WithLogger(l *slog.Logger) Option {
	return func(s *settings) error {
		s.logger = l
		return nil
	}
}

// WithMeterProvider makes the cache record OpenTelemetry metrics through mp:
// blobcache.hits, blobcache.misses, blobcache.operations (by op and result),
// blobcache.culls, blobcache.entries_culled, blobcache.bytes_read,
// blobcache.bytes_written, blobcache.fills, blobcache.fill_waits,
// blobcache.stale, blobcache.refreshes, blobcache.local.hits,
// blobcache.local.misses, blobcache.local.evictions and the gauge
// blobcache.local.bytes (with WithLocalTier), blobcache.disk.hits,
// blobcache.disk.misses, blobcache.disk.evictions, blobcache.disk.errors
// and the gauge blobcache.disk.bytes (with WithDiskTier), each equal to its
// Stats field, and the blobcache.operation.duration histogram (by op).
// Without it (or with a nil or no-op mp) the cache records no metrics and
// spends nothing on them.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(s *settings) error {
		s.meterProvider = mp
		return nil
	}
}

// WithTracerProvider makes the cache start a span per call ("blobcache.Get",
// ...) through tp; the driver's own spans (gocloud's, for S3) nest beneath.
// Without it the cache starts no spans.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(s *settings) error {
		s.tracerProvider = tp
		return nil
	}
}

// instrumentationName names the meter and tracer.
const instrumentationName = "github.com/blobcache/blobcache/cache"

// op is a public cache call, for metrics and spans.
type op int

const (
	opGet op = iota
	opHas
	opSet
	opAdd
	opDelete
	opTouch
	opIncr
	opGetMany
	opSetMany
	opDeleteMany
	opGetOrSet
	opClear
	opLen
	opCull
	opLock
	opLockExtend
	opLockRelease
	opIncrement
	opGetStale
	opPurge
	numOps
)

var opNames = [numOps]string{"get", "has", "set", "add", "delete", "touch", "incr", "get_many", "set_many", "delete_many", "get_or_set", "clear", "len", "cull", "lock", "lock_extend", "lock_release", "increment", "get_stale", "purge"}

// telemetry holds the OpenTelemetry instruments and prepared attribute
// options, so that recording allocates nothing per call.
type telemetry struct {
	tracer                              trace.Tracer
	hits, misses, culls, entriesCulled  metric.Int64Counter
	bytesRead, bytesWritten, operations metric.Int64Counter
	localHits, localMisses              metric.Int64Counter
	localEvictions, fills, fillWaits    metric.Int64Counter
	diskHits, diskMisses, diskEvictions metric.Int64Counter
	stale, refreshes                    metric.Int64Counter
	duration                            metric.Float64Histogram
	spanNames                           [numOps]string
	okOpts, errOpts                     [numOps][]metric.AddOption
	durOpts                             [numOps][]metric.RecordOption
	locOpts                             []metric.AddOption
	locSet                              attribute.Set
	meter                               metric.Meter        // nil without a meter provider
	tiers                               metric.Registration // the tiers' observed instruments (tierobs.go)
}

func newTelemetry(mp metric.MeterProvider, tp trace.TracerProvider, location string) (*telemetry, error) {
	// No-op providers are as good as none, and cheaper skipped.
	if _, ok := mp.(metricnoop.MeterProvider); ok {
		mp = nil
	}
	if _, ok := tp.(tracenoop.TracerProvider); ok {
		tp = nil
	}
	if mp == nil && tp == nil {
		return nil, nil
	}
	t := &telemetry{}
	if tp != nil {
		t.tracer = tp.Tracer(instrumentationName)
	}
	for o := range numOps {
		t.spanNames[o] = "blobcache." + opNames[o]
	}
	if mp == nil {
		return t, nil
	}
	m := mp.Meter(instrumentationName)
	t.meter = m
	var errs []error
	counter := func(name, desc, unit string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		return c
	}
	t.hits = counter("blobcache.hits", "Lookups that found a live entry.", "{lookup}")
	t.misses = counter("blobcache.misses", "Lookups that found no live entry.", "{lookup}")
	t.operations = counter("blobcache.operations", "Cache calls, by op and result (ok or error).", "{call}")
	t.culls = counter("blobcache.culls", "Culls of a full cache.", "{cull}")
	t.entriesCulled = counter("blobcache.entries_culled", "Entries removed by culls.", "{entry}")
	t.bytesRead = counter("blobcache.bytes_read", "Entry bytes read from the store.", "By")
	t.bytesWritten = counter("blobcache.bytes_written", "Entry bytes written to the store.", "By")
	t.localHits = counter("blobcache.local.hits", "Reads of a value served by the local tier (WithLocalTier).", "{lookup}")
	t.localMisses = counter("blobcache.local.misses", "Reads of a value the local tier did not hold (WithLocalTier), which went to the store.", "{lookup}")
	t.localEvictions = counter("blobcache.local.evictions", "Copies the local tier evicted to stay within its bytes.", "{entry}")
	t.diskHits = counter("blobcache.disk.hits", "Reads the local tier missed that the disk tier served (WithDiskTier).", "{lookup}")
	t.diskMisses = counter("blobcache.disk.misses", "Reads the local tier missed that the disk tier did not serve (WithDiskTier), which went to the store.", "{lookup}")
	t.diskEvictions = counter("blobcache.disk.evictions", "Copies the disk tier evicted to stay within its bytes.", "{entry}")
	t.fills = counter("blobcache.fills", "GetOrSet fill calls run, refreshes of stale entries included.", "{call}")
	t.fillWaits = counter("blobcache.fill_waits", "Polls of a key whose fill lease another process held (WithFillLease).", "{poll}")
	t.stale = counter("blobcache.stale", "Stale values served (WithStaleGrace).", "{lookup}")
	t.refreshes = counter("blobcache.refreshes", "Background refreshes of stale entries finished.", "{refresh}")
	h, err := m.Float64Histogram("blobcache.operation.duration", metric.WithDescription("Duration of cache calls, by op."), metric.WithUnit("s"))
	errs = append(errs, err)
	t.duration = h
	loc := attribute.String("blobcache.location", location)
	t.locSet = attribute.NewSet(loc)
	t.locOpts = []metric.AddOption{metric.WithAttributeSet(t.locSet)}
	for o := range numOps {
		opAttr := attribute.String("blobcache.op", opNames[o])
		t.okOpts[o] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(loc, opAttr, attribute.String("blobcache.result", "ok")))}
		t.errOpts[o] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(loc, opAttr, attribute.String("blobcache.result", "error")))}
		t.durOpts[o] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(loc, opAttr))}
	}
	return t, errors.Join(errs...)
}

// call is one public call in progress: it times the call and owns its span.
type call struct {
	c     *Cache
	op    op
	start time.Time
	span  trace.Span
}

// begin starts telemetry for a call. With telemetry off it costs nothing.
func (c *Cache) begin(ctx context.Context, o op) (context.Context, call) {
	cl := call{c: c, op: o}
	if c.tel == nil || ctx == nil { // a nil ctx fails the call's check
		return ctx, cl
	}
	cl.start = time.Now()
	if c.tel.tracer != nil {
		ctx, cl.span = c.tel.tracer.Start(ctx, c.tel.spanNames[o], trace.WithSpanKind(trace.SpanKindClient))
	}
	return ctx, cl
}

// end records the call's outcome: err nil or a miss is success.
func (cl call) end(ctx context.Context, err error) {
	failed := err != nil && !cleanMiss(err)
	if failed {
		cl.c.stats.errors.Add(1)
	}
	t := cl.c.tel
	if t == nil || ctx == nil {
		return
	}
	if t.duration != nil {
		t.duration.Record(ctx, time.Since(cl.start).Seconds(), t.durOpts[cl.op]...)
		if failed {
			t.operations.Add(ctx, 1, t.errOpts[cl.op]...)
		} else {
			t.operations.Add(ctx, 1, t.okOpts[cl.op]...)
		}
	}
	if cl.span != nil {
		if failed {
			cl.span.RecordError(err)
			cl.span.SetStatus(codes.Error, err.Error())
		}
		cl.span.End()
	}
}

// lookup counts a hit or a miss.
func (c *Cache) lookup(ctx context.Context, hit bool) {
	if hit {
		c.stats.hits.Add(1)
	} else {
		c.stats.misses.Add(1)
	}
	if c.tel != nil && c.tel.hits != nil {
		if hit {
			c.tel.hits.Add(ctx, 1, c.tel.locOpts...)
		} else {
			c.tel.misses.Add(ctx, 1, c.tel.locOpts...)
		}
	}
}

// The store calls: every call of the cache to its driver (Close aside) goes
// through one of these, which count requests and bytes in Stats and in the
// meters. Nothing else in the package calls c.d, c.replacer or c.batch.

// storageError marks an error of the driver that none of its kinds
// describes: errors.Is(err, ErrStorage) holds, and the driver's error stays
// wrapped (its message unchanged).
type storageError struct{ err error }

// Error returns the driver's message unchanged.
func (e *storageError) Error() string { return e.err.Error() }

// Unwrap returns the driver's error.
func (e *storageError) Unwrap() error { return e.err }

// Is makes errors.Is(err, ErrStorage) hold.
func (e *storageError) Is(target error) bool { return target == ErrStorage }

// storageErr marks err, from a driver call made with ctx, as a storage
// failure unless it is a kind the cache acts on or the call's own context
// ending.
func storageErr(ctx context.Context, err error) error {
	switch {
	case err == nil,
		errors.Is(err, driver.ErrNotFound),
		errors.Is(err, driver.ErrPreconditionFailed),
		errors.Is(err, driver.ErrClosed),
		errors.Is(err, driver.ErrInvalidName),
		ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return err
	}
	return &storageError{err}
}

// storeRead is Driver.Read.
func (c *Cache) storeRead(ctx context.Context, name string, off, n int64) ([]byte, driver.Attributes, error) {
	c.stats.reads.Add(1)
	data, attrs, err := c.d.Read(ctx, name, off, n)
	c.countRead(ctx, len(data))
	return data, attrs, storageErr(ctx, err)
}

// countRead counts n bytes read from the store.
func (c *Cache) countRead(ctx context.Context, n int) {
	c.stats.bytesRead.Add(int64(n))
	if c.tel != nil && c.tel.bytesRead != nil && n > 0 {
		c.tel.bytesRead.Add(ctx, int64(n), c.tel.locOpts...)
	}
}

// storeWrite is Driver.Write of an encoded entry. Like every store call
// that changes an object, it drops the object's copy in the local tier once
// the driver returns, whatever it returned.
func (c *Cache) storeWrite(ctx context.Context, name string, e *encodedEntry, opts *driver.WriteOptions) error {
	err := c.d.Write(ctx, name, e.reader(), opts)
	c.local.drop(name)
	c.countWrite(ctx, e.written)
	return storageErr(ctx, err)
}

// storeReplace is Replacer.Replace of an encoded entry.
func (c *Cache) storeReplace(ctx context.Context, name string, e *encodedEntry, etag string, opts *driver.WriteOptions) error {
	err := c.replacer.Replace(ctx, name, e.reader(), etag, opts)
	c.local.drop(name)
	c.countWrite(ctx, e.written)
	return storageErr(ctx, err)
}

// countWrite counts one write request of n bytes (those the driver read
// from the body).
func (c *Cache) countWrite(ctx context.Context, n int64) {
	c.stats.writes.Add(1)
	c.stats.bytesWritten.Add(n)
	if c.tel != nil && c.tel.bytesWritten != nil {
		c.tel.bytesWritten.Add(ctx, n, c.tel.locOpts...)
	}
}

// storeDelete is Driver.Delete.
func (c *Cache) storeDelete(ctx context.Context, name string) error {
	c.stats.deleteRequests.Add(1)
	err := c.d.Delete(ctx, name)
	c.local.drop(name)
	return storageErr(ctx, err)
}

// storeReadDelete is ReadDeleter.ReadDelete: one delete request, whose
// bytes count as read.
func (c *Cache) storeReadDelete(ctx context.Context, name string, n int64) ([]byte, error) {
	c.stats.deleteRequests.Add(1)
	data, _, err := c.takes.ReadDelete(ctx, name, n)
	c.local.drop(name)
	c.countRead(ctx, len(data))
	return data, storageErr(ctx, err)
}

// storeDeleteBatch is BatchDeleter.DeleteBatch.
func (c *Cache) storeDeleteBatch(ctx context.Context, names []string) error {
	c.stats.batchDeletes.Add(1)
	err := c.batch.DeleteBatch(ctx, names)
	for _, name := range names {
		c.local.drop(name)
	}
	return storageErr(ctx, err)
}

// storeList is Driver.List.
func (c *Cache) storeList(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	c.stats.lists.Add(1)
	page, err := c.d.List(ctx, opts)
	return page, storageErr(ctx, err)
}

// count adds one to a Stats counter and, when metrics are on, to its
// meter.
func (c *Cache) count(ctx context.Context, s *atomic.Int64, m func(*telemetry) metric.Int64Counter) {
	s.Add(1)
	if c.tel != nil {
		if mc := m(c.tel); mc != nil {
			mc.Add(ctx, 1, c.tel.locOpts...)
		}
	}
}

func telFills(t *telemetry) metric.Int64Counter      { return t.fills }
func telFillWaits(t *telemetry) metric.Int64Counter  { return t.fillWaits }
func telStale(t *telemetry) metric.Int64Counter      { return t.stale }
func telRefreshes(t *telemetry) metric.Int64Counter  { return t.refreshes }
func telEvictions(t *telemetry) metric.Int64Counter  { return t.localEvictions }
func telDiskHits(t *telemetry) metric.Int64Counter   { return t.diskHits }
func telDiskMisses(t *telemetry) metric.Int64Counter { return t.diskMisses }

// culled records a cull.
func (c *Cache) culled(ctx context.Context, listed, removed int) {
	c.stats.culls.Add(1)
	c.stats.entriesCulled.Add(int64(removed))
	if c.tel != nil && c.tel.culls != nil {
		c.tel.culls.Add(ctx, 1, c.tel.locOpts...)
		c.tel.entriesCulled.Add(ctx, int64(removed), c.tel.locOpts...)
	}
	if c.logger != nil {
		c.logger.LogAttrs(ctx, slog.LevelInfo, "blobcache: culled",
			slog.String("location", c.prefix), slog.Int("entries", listed), slog.Int("removed", removed),
			slog.Int("max_entries", c.maxEntries), slog.Any("policy", c.policy))
	}
}

// droppedDead records an expired or corrupt entry deleted on read.
func (c *Cache) droppedDead(ctx context.Context, name string, reason error) {
	if reason == nil {
		c.stats.expired.Add(1)
		return
	}
	msg := "blobcache: dropped corrupt entry"
	if errors.Is(reason, errForged) {
		c.stats.forged.Add(1)
		msg = "blobcache: dropped entry failing its signature check"
	} else {
		c.stats.corrupt.Add(1)
	}
	if c.logger != nil {
		c.logger.LogAttrs(ctx, slog.LevelWarn, msg, slog.String("object", name), slog.String("reason", reason.Error()))
	}
}

// retried records a conditional write repeated after a lost race.
func (c *Cache) retried(ctx context.Context, o op, name string, attempt int) {
	c.stats.retries.Add(1)
	if c.logger != nil {
		c.logger.LogAttrs(ctx, slog.LevelDebug, "blobcache: retrying after a concurrent update",
			slog.String("op", opNames[o]), slog.String("object", name), slog.Int("attempt", attempt))
	}
}
