package cache

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/blobcache/blobcache/cull"

	"github.com/blobcache/blobcache/driver"
)

// Defaults, as in Django's cache framework.
const (
	// DefaultTimeout is the TTL used for DefaultTTL unless WithDefaultTTL
	// says otherwise: Django's TIMEOUT default of 300 seconds.
	DefaultTimeout = 300 * time.Second
	// DefaultMaxEntries is Django's MAX_ENTRIES default.
	DefaultMaxEntries = 300
	// DefaultCullFrequency is Django's CULL_FREQUENCY default.
	DefaultCullFrequency = 3
	// DefaultVersion is Django's VERSION default.
	DefaultVersion = 1
	// DefaultMaxValueSize is the largest value a cache stores and reads
	// unless WithMaxValueSize says otherwise: 256 MiB.
	DefaultMaxValueSize = 256 << 20
	// DefaultFillTimeout bounds a GetOrSet fill unless WithFillTimeout says
	// otherwise: 1 minute.
	DefaultFillTimeout = time.Minute
)

// TTL values with a special meaning.
const (
	// DefaultTTL uses the cache's configured default (DefaultTimeout unless
	// set with WithDefaultTTL).
	DefaultTTL time.Duration = 0
	// NoExpiry stores an entry that never expires.
	NoExpiry time.Duration = -1
)

// Option configures a Cache made by New. An option with a bad value makes New
// return an error that names the option.
type Option func(*settings) error

// settings is what options set; New copies it into the Cache.
type settings struct {
	location      string
	maxEntries    int
	cullFrequency int
	cullShards    int // WithCullShards's digits; -1: the automatic choice
	policy        cull.Policy
	defaultTTL    time.Duration
	keyPrefix     string
	version       int
	keyFunc       KeyFunc
	gzip          bool
	maxValueSize  int64
	fillTimeout   time.Duration
	fillLease     time.Duration
	staleGrace    time.Duration
	localBytes    int64
	localStale    time.Duration
	diskDir       string
	diskBytes     int64
	now           func() time.Time
	description   string

	signingKeys    [][]byte
	logger         *slog.Logger
	meterProvider  metric.MeterProvider
	tracerProvider trace.TracerProvider
}

func defaultSettings() settings {
	return settings{
		maxEntries:    DefaultMaxEntries,
		cullFrequency: DefaultCullFrequency,
		cullShards:    -1,
		defaultTTL:    DefaultTimeout,
		version:       DefaultVersion,
		maxValueSize:  DefaultMaxValueSize,
		fillTimeout:   DefaultFillTimeout,
		now:           time.Now,
	}
}

// applySettings applies opts to the defaults and returns the settings and
// the location's listing prefix, or the first option's error. New uses it,
// and Open before it opens the driver, so that a bad option fails before the
// store is touched.
func applySettings(opts []Option) (settings, string, error) {
	s := defaultSettings()
	for _, o := range opts {
		if err := o(&s); err != nil {
			return settings{}, "", err
		}
	}
	switch {
	case s.localStale > 0 && s.localBytes == 0:
		return settings{}, "", optionError("local_staleness", "%v without local_tier: set the tier's size too", s.localStale)
	case s.localBytes > 0 && s.localStale == 0:
		s.localStale = DefaultLocalStaleness
	}
	switch {
	case s.diskDir != "" && s.localBytes == 0:
		return settings{}, "", optionError("local_disk", "%q without local_tier: a disk tier sits behind the memory tier, so set its size too", s.diskDir)
	case s.diskDir != "" && s.diskBytes == 0:
		return settings{}, "", optionError("local_disk_size", "missing: local_disk %q needs a size such as 10GiB", s.diskDir)
	case s.diskDir == "" && s.diskBytes != 0:
		return settings{}, "", optionError("local_disk_size", "%d bytes without local_disk: set the tier's directory too", s.diskBytes)
	}
	prefix, err := cleanLocation(s.location)
	return s, prefix, err
}

func optionError(name string, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidOption, name, fmt.Sprintf(format, args...))
}

// WithLocation stores entries under location, a folder in the store: the
// location "cache" holds objects named "cache/<hash>", and Clear and culling
// touch nothing outside "cache/". Leading and trailing slashes are trimmed;
// empty, "." and ".." segments are an error. The default is the store's root.
func WithLocation(location string) Option {
	return func(s *settings) error {
		if _, err := cleanLocation(location); err != nil {
			return err
		}
		s.location = location
		return nil
	}
}

// WithMaxEntries sets the number of entries at which a write first culls the
// cache (Django's MAX_ENTRIES, default 300). 0 disables culling. There is no
// upper limit.
func WithMaxEntries(n int) Option {
	return func(s *settings) error {
		if n < 0 {
			return optionError("max_entries", "%d is negative (0 disables culling)", n)
		}
		s.maxEntries = n
		return nil
	}
}

// WithCullFrequency sets the fraction of entries culled when the cache is full:
// 1/n of them (Django's CULL_FREQUENCY, default 3); 0 removes every entry.
func WithCullFrequency(n int) Option {
	return func(s *settings) error {
		if n < 0 {
			return optionError("cull_frequency", "%d is negative (0 culls every entry)", n)
		}
		s.cullFrequency = n
		return nil
	}
}

// WithCullPolicy replaces the rule that chooses which entries a cull removes.
// The default is cull.Frequency of the cull frequency.
func WithCullPolicy(p cull.Policy) Option {
	return func(s *settings) error {
		if p == nil {
			return optionError("cull_policy", "nil policy")
		}
		s.policy = p
		return nil
	}
}

// WithDefaultTTL sets the TTL used when a call passes DefaultTTL (Django's
// TIMEOUT, default 300 s). NoExpiry makes entries never expire by default.
func WithDefaultTTL(ttl time.Duration) Option {
	return func(s *settings) error {
		if ttl == DefaultTTL || (ttl < 0 && ttl != NoExpiry) {
			return optionError("timeout", "%v: want a positive duration or NoExpiry", ttl)
		}
		s.defaultTTL = ttl
		return nil
	}
}

// WithKeyPrefix sets the prefix of every made key (Django's KEY_PREFIX,
// default empty).
func WithKeyPrefix(prefix string) Option {
	return func(s *settings) error {
		s.keyPrefix = prefix
		return nil
	}
}

// WithVersion sets the version part of every made key (Django's VERSION,
// default 1). Changing it makes every earlier entry unreachable.
func WithVersion(v int) Option {
	return func(s *settings) error {
		s.version = v
		return nil
	}
}

// WithKeyFunc replaces the function that makes keys (Django's KEY_FUNCTION).
func WithKeyFunc(f KeyFunc) Option {
	return func(s *settings) error {
		if f == nil {
			return optionError("key_function", "nil function")
		}
		s.keyFunc = f
		return nil
	}
}

// WithGzip compresses values with gzip before storing them (django-s3-cache's
// IS_GZIPPED). Entries are readable whatever this setting: each entry records
// whether it is compressed.
func WithGzip(on bool) Option {
	return func(s *settings) error {
		s.gzip = on
		return nil
	}
}

// WithMaxValueSize sets the largest value, in bytes, the cache stores and
// reads (max_value_size, default DefaultMaxValueSize). Set, Add and the other
// writes refuse a larger value with ErrValueTooLarge. A read never allocates
// more than about this much for one entry, whatever the stored object claims:
// a stored object, or a gzip entry's decompressed value, larger than the
// limit is a miss and is deleted. n must be at least 1 and at most 1 TiB.
func WithMaxValueSize(n int64) Option {
	return func(s *settings) error {
		if n < 1 || n > maxMaxValueSize {
			return optionError("max_value_size", "%d: want 1 to %d bytes", n, int64(maxMaxValueSize))
		}
		s.maxValueSize = n
		return nil
	}
}

// WithFillTimeout bounds the context a GetOrSet fill runs under (default
// DefaultFillTimeout). The fill's context is detached from every caller's
// cancellation and deadline, so that a caller that gives up fails alone while
// the others still get the value and it is stored; this timeout is what ends
// a fill that nobody waits for any more. d must be positive.
func WithFillTimeout(d time.Duration) Option {
	return func(s *settings) error {
		if d <= 0 {
			return optionError("fill_timeout", "%v: want a positive duration", d)
		}
		s.fillTimeout = d
		return nil
	}
}

// WithFillLease makes GetOrSet fill each key once across the fleet: on a
// miss, the filling process first takes a lease of duration d on the key in
// the store (a create-if-absent write), and every other process that misses
// the key meanwhile waits for the value instead of running its own fill. See
// GetOrSet for how waiting works and what it costs. d is how soon a holder
// that died is replaced: a live holder extends its lease while its fill
// runs, so d need not cover the fill; a few seconds suits most stores. 0
// (the default) turns it off: fills are shared within one Cache only.
// FillLease sets it for one call. It needs a driver that implements
// driver.Replacer (New fails otherwise); d must be 0 or at least
// MinFillLease.
func WithFillLease(d time.Duration) Option {
	return func(s *settings) error {
		if d != 0 && d < MinFillLease {
			return optionError("fill_lease", "%v: want 0 (off) or at least %v", d, MinFillLease)
		}
		s.fillLease = d
		return nil
	}
}

// MinFillLease is the shortest fill lease (WithFillLease, FillLease): a
// holder extends its lease every third of it, one write each time, so a
// shorter lease would cost a write every few milliseconds for the whole
// fill.
const MinFillLease = 100 * time.Millisecond

// DefaultLocalStaleness is the local tier's staleness bound when a URL or
// configuration sets local_tier without local_staleness.
const DefaultLocalStaleness = time.Second

// WithLocalTier puts a tier in process memory in front of the store: a Get,
// GetMany or GetOrSet that finds a value in the store keeps a copy, and the
// same read again is served from memory, with no request, for as long as
// both hold: the entry has not expired, and less than staleness has passed
// since the copy was read. The tier holds at most about maxBytes (names,
// values and about 100 bytes per copy), evicting by otter's W-TinyLFU
// policy; a value larger than half of maxBytes is not kept.
//
// staleness is the bound on what the tier costs in freshness: a value
// written, touched, incremented or deleted by another process (or another
// Cache) may be served from this tier until staleness has passed since this
// tier read it, never longer, and never past the entry's expiry. This
// Cache's own calls never see their own changes late: every write, replace
// and delete it makes drops the object's copy when the store call returns
// (Set, Add, Delete, Touch, Incr, Increment, culls; Clear drops every
// copy). Add, Incr, Decr, Increment, Touch, Has, Lock and fill leases always
// ask the store, so their atomicity across processes is the store's. Stats
// counts LocalHits, LocalMisses, LocalEvictions and LocalBytes. maxBytes and
// staleness must be positive.
func WithLocalTier(maxBytes int64, staleness time.Duration) Option {
	return func(s *settings) error {
		if maxBytes <= 0 {
			return optionError("local_tier", "%d bytes: want a positive size", maxBytes)
		}
		if staleness <= 0 {
			return optionError("local_staleness", "%v: want a positive duration", staleness)
		}
		s.localBytes, s.localStale = maxBytes, staleness
		return nil
	}
}

// WithDiskTier puts a tier on local disk between the memory tier
// (WithLocalTier, which it requires) and the store, for caches bigger than
// memory: a value read from the store is also copied, in the background,
// to a file in the directory dir, through the file driver (which must be
// registered: import github.com/blobcache/blobcache/drivers/file, or the
// blobcache package); a read the memory tier misses looks there before it
// asks the store, and keeps what it finds in memory too. The copies take at
// most about maxBytes on disk (each file rounded up to 4 KiB), evicting by
// otter's W-TinyLFU policy, and follow the memory tier's rules exactly:
// never served past the entry's expiry nor past the staleness bound after
// the store read they came from, and dropped by every write, replace and
// delete this Cache makes of the entry and by Clear. A copy holds the
// entry's bytes as stored, and a disk hit decodes them as a store read
// does (bounds, gzip, signatures): a file planted in dir is a miss at
// worst. The Cache opens the directory at New and, at Close, deletes its
// copies and closes it; what an earlier process left there under the
// cache's location is deleted in the background at New (so give each Cache
// its own directory). Stats counts DiskHits, DiskMisses, DiskEvictions,
// DiskBytes and DiskErrors. dir must be an absolute path, maxBytes
// positive.
func WithDiskTier(dir string, maxBytes int64) Option {
	return func(s *settings) error {
		if dir == "" || !filepath.IsAbs(dir) {
			return optionError("local_disk", "%q: want an absolute directory", dir)
		}
		if maxBytes <= 0 {
			return optionError("local_disk_size", "%d bytes: want a positive size", maxBytes)
		}
		s.diskDir, s.diskBytes = filepath.Clean(dir), maxBytes
		return nil
	}
}

// WithStaleGrace gives the entries the cache writes a grace period of d
// after their expiry: for d past its expiry an entry is stale, a miss for
// Get, Has, Touch, Incr and Add as before (Add replaces it, Delete deletes
// it and reports false), but GetOrSet returns its value at once and
// refreshes it in the background: one refresh per key at a time in a Cache,
// one in the whole fleet with a fill lease (WithFillLease). GetStale reads
// a stale value too. It applies to the values Set, Add, SetMany and
// GetOrSet write with a finite TTL (StaleGrace sets it for one GetOrSet
// call); Touch and Incr keep an entry's own, and counters created by
// Increment and locks have none. A stale entry stays stored until its
// grace period ends, then is deleted as an expired entry is. Entries with a
// grace period use format version 3 (see the README), which releases before
// it treat as corrupt. 0 (the default) means none; d must not be negative.
func WithStaleGrace(d time.Duration) Option {
	return func(s *settings) error {
		if d < 0 {
			return optionError("stale_grace", "%v: want 0 (none) or a positive duration", d)
		}
		s.staleGrace = d
		return nil
	}
}

// maxMaxValueSize is the largest max_value_size: 1 TiB.
const maxMaxValueSize = 1 << 40

// WithSigningKeys makes entries tamper-evident: every entry written carries an
// HMAC-SHA256, made with keys[0], over its object name, header and value; an
// entry read must carry a MAC that one of keys verifies, or it is a miss, is
// deleted and is counted (Stats.Forged). List old keys after the new one to
// rotate: entries signed with an old key stay readable until rewritten. Keys
// should be at least 32 random bytes. Without keys, entries are not signed
// and signatures are not checked.
func WithSigningKeys(keys ...[]byte) Option {
	return func(s *settings) error {
		if len(keys) == 0 {
			return optionError("signing_key", "no key given")
		}
		for i, k := range keys {
			if len(k) == 0 {
				return optionError("signing_key", "key %d is empty", i+1)
			}
		}
		s.signingKeys = keys
		return nil
	}
}

// WithClock replaces time.Now as the cache's clock, for tests of expiry.
func WithClock(now func() time.Time) Option {
	return func(s *settings) error {
		if now == nil {
			return optionError("clock", "nil function")
		}
		s.now = now
		return nil
	}
}

// withDescription sets what String prints (the URL without secrets).
func withDescription(d string) Option {
	return func(s *settings) error {
		s.description = d
		return nil
	}
}

// Errors returned by the cache. Every error of a call is an *OpError naming
// the call and the key; test its kind with errors.Is. A failure of the store
// matches ErrStorage.
var (
	// ErrMiss means the key has no live entry: it is absent, expired, or its
	// entry could not be decoded.
	ErrMiss = errors.New("cache miss")
	// ErrNotInteger means Incr or Decr found a value that is not a base-10
	// int64.
	ErrNotInteger = errors.New("value is not an integer")
	// ErrOverflow means Incr or Decr would overflow int64.
	ErrOverflow = errors.New("integer overflow")
	// ErrInvalidOption means an option, URL or configuration value is wrong;
	// the message names the option. It is driver.ErrInvalidOption, which
	// drivers' openers wrap, so one errors.Is test covers the cache's
	// options and the driver's.
	ErrInvalidOption = driver.ErrInvalidOption
	// ErrInvalidTTL means a TTL is negative and not NoExpiry.
	ErrInvalidTTL = errors.New("invalid ttl")
	// ErrConflict means a conditional update lost too many races in a row.
	ErrConflict = errors.New("too many concurrent updates")
	// ErrClosed means the cache was closed, or the driver under it. It is
	// driver.ErrClosed, so one test covers both.
	ErrClosed = driver.ErrClosed
	// ErrHiddenEntries means a listing of the location found no entry
	// although an entry this cache wrote exists: the store hides them
	// (MinIO does when an object is named exactly like the location). Clear,
	// Len and Cull return it; a write that would cull logs it and goes on.
	ErrHiddenEntries = errors.New("the store's listing hides the cache's entries")
	// ErrValueTooLarge means a value is larger than the cache's
	// max_value_size (WithMaxValueSize).
	ErrValueTooLarge = errors.New("value too large")
	// ErrInvalidArgument means a call was given a nil context or a nil fill
	// function; the message says which.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrStorage means the store failed: the driver returned an error that
	// none of the driver's kinds describes (a network failure, a server
	// error, a full disk, an access denial), so the call could not be
	// served. It never matches a miss, an invalid argument or TTL, the
	// caller's own errors (what a GetOrSet fill returned), a done context
	// of the call (errors.Is(err, ctx.Err()) holds instead), a closed cache
	// or driver (ErrClosed), ErrConflict or ErrHiddenEntries. A service
	// answers 503 for it; examples/httpcache does with FailClosed.
	ErrStorage = errors.New("storage failure")
)

// Prebuilt so that checking costs no allocation.
var (
	errNilContext = fmt.Errorf("%w: nil context.Context (use context.Background() or context.TODO())", ErrInvalidArgument)
	errNilFill    = fmt.Errorf("%w: nil fill function", ErrInvalidArgument)
	// errDeadEntry is what a *DeadEntryError matches besides ErrMiss and its
	// cause.
	errDeadEntry = errors.New("dead entry not deleted")
)

// DeadEntryError is returned when a read found an expired, corrupt or
// forged entry and could not delete it (on a read-only store, say). The key
// has no live entry, so errors.Is(err, ErrMiss) holds; the storage failure
// that left the dead entry in place is Err, also reachable with errors.Is and
// errors.As. Get returns it as its miss; Has, Delete, Touch and GetMany,
// which report an ordinary miss without an error, return it as an error.
type DeadEntryError struct {
	// Name is the entry's object name.
	Name string
	// Err is the failure of the delete.
	Err error
}

// Error implements error.
func (e *DeadEntryError) Error() string {
	return "cache miss: the dead entry " + strconv.Quote(e.Name) + " could not be deleted: " + e.Err.Error()
}

// Unwrap returns ErrMiss and the delete's failure.
func (e *DeadEntryError) Unwrap() []error { return []error{ErrMiss, e.Err} }

// Is reports whether target is the package's marker for dead entries.
func (e *DeadEntryError) Is(target error) bool { return target == errDeadEntry }

// cleanMiss reports whether err is a miss with nothing else wrong: not a
// dead entry left in place by a failed delete.
func cleanMiss(err error) bool {
	return errors.Is(err, ErrMiss) && !errors.Is(err, errDeadEntry)
}

// OpError records a failed cache operation and the key it was for.
type OpError struct {
	// Op is the cache method, such as "get" or "set".
	Op string
	// Key is the caller's key, or "" for operations on the whole cache.
	Key string
	// Err is the underlying error.
	Err error
}

// Error implements error. Long keys are shortened.
func (e *OpError) Error() string {
	if e.Key == "" {
		return "cache " + e.Op + ": " + e.Err.Error()
	}
	k := e.Key
	if len(k) > 64 {
		k = k[:61] + "..."
	}
	return fmt.Sprintf("cache %s %q: %v", e.Op, k, e.Err)
}

// Unwrap returns the underlying error.
func (e *OpError) Unwrap() error { return e.Err }
