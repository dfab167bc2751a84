package cache

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/blobcache/blobcache/cull"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/internal/query"
)

// Open opens a cache from a URL. The scheme picks the driver, among those
// the program registered by importing their packages (see driver.Register):
//
//	mem://[name]          memory (drivers/mem); the same name shares one store in this process, no name is private
//	file:///abs/dir       a directory on disk (drivers/file)
//	s3://bucket           Amazon S3 or an S3-compatible server such as MinIO (drivers/s3)
//	gs://bucket           Google Cloud Storage, or an emulator such as fake-gcs-server (drivers/gcs)
//	azblob://container    Azure Blob Storage, or Azurite (drivers/azure)
//
// A blank import of github.com/blobcache/blobcache/drivers/all registers
// them all; the cache itself imports none, so a program that opens only
// file:// URLs links no cloud SDK. An unregistered scheme is an error
// naming the import that registers it.
//
// Query parameters set cache options, with Django's names, case-insensitive:
// location, max_entries, cull_frequency, cull_policy (frequency or oldest),
// cull_shards (0 to 8),
// timeout (seconds, a Go duration, or "none" for no expiry), key_prefix,
// version, is_gzipped, max_value_size, fill_timeout, fill_lease,
// stale_grace, local_tier, local_staleness, local_disk, local_disk_size,
// signing_key. The
// remaining parameters go to the driver (for s3: endpoint, region,
// use_path_style, access_key, secret_key, create_bucket, default_acl,
// bucket_acl, storage_class, reduced_redundancy, sse, ...: the README lists
// them all); mem and file take none. OpenConfig takes the same options in
// the shape of a Django CACHES entry.
//
// Every parameter is honoured or refused: the error wraps ErrInvalidOption
// and names the parameter (never showing a secret's value). Refused are a
// name nobody knows (the error suggests the closest known one), a pair
// url.ParseQuery would drop (a ';', a bad %-escape) or invent (a name without
// "=value"), an empty name or value (leave a parameter out for its default),
// one option given twice in any spelling or alias (location and LOCATION,
// access_key and access_key_id), a bad value, a fragment ('#') and user
// information. Every option, opts included, and the location's name in the
// store are checked before the driver is opened, so a bad one leaves the
// store untouched: no directory is made, no request is sent.
//
// opts are applied after the URL's options, for what a URL cannot carry (a
// logger, telemetry providers, a key function, a clock).
func Open(ctx context.Context, rawURL string, opts ...Option) (*Cache, error) {
	if ctx == nil {
		return nil, fmt.Errorf("cache.Open: %w", errNilContext)
	}
	if err := checkOptions(opts); err != nil { // before the URL's options are added
		return nil, err
	}
	u, scheme, pairs, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	urlOpts, rest, err := splitQuery(pairs)
	if err != nil {
		return nil, err
	}
	all := append(urlOpts, withDescription(describe(scheme, u, pairs)))
	all = append(all, opts...)
	// Every option is checked before the driver touches the store, and so
	// is the location, where the scheme can say which names its stores
	// rewrite.
	s, prefix, err := applySettings(all)
	if err != nil {
		return nil, err
	}
	if scheme.ValidateName != nil {
		if err := checkLocation(scheme.ValidateName, s.location, prefix); err != nil {
			return nil, err
		}
	}
	du := *u
	du.Scheme = scheme.Name
	du.RawQuery = encodeQuery(rest)
	du.ForceQuery = false
	d, err := scheme.Open(ctx, &du)
	if err != nil {
		return nil, driverError(err, rest)
	}
	if d == nil {
		return nil, fmt.Errorf("cache.Open: the %s driver returned no driver and no error", scheme.Name)
	}
	c, err := New(d, all...)
	if err != nil {
		d.Close()
		return nil, err
	}
	return c, nil
}

// builtinImports names the package that registers each scheme this module
// provides, for the error about an unregistered one.
var builtinImports = map[string]string{
	"mem":    "github.com/blobcache/blobcache/drivers/mem",
	"file":   "github.com/blobcache/blobcache/drivers/file",
	"s3":     "github.com/blobcache/blobcache/drivers/s3",
	"gs":     "github.com/blobcache/blobcache/drivers/gcs",
	"azblob": "github.com/blobcache/blobcache/drivers/azure",
}

// lookupScheme returns the registered scheme of a cache URL, or an error
// saying which import registers it.
func lookupScheme(name string) (driver.Scheme, error) {
	if s, ok := driver.Lookup(name); ok {
		return s, nil
	}
	registered := "none"
	if names := driver.Schemes(); len(names) > 0 {
		registered = strings.Join(names, ", ")
	}
	pkg, ok := builtinImports[strings.ToLower(name)]
	if !ok {
		pkg = "the package of the driver that registers it"
	}
	return driver.Scheme{}, fmt.Errorf("%w: cache URL scheme %s has no driver in this program: import _ %q, or all built-in drivers with import _ \"github.com/blobcache/blobcache/drivers/all\" (registered: %s)",
		ErrInvalidOption, quoteValue(strings.ToLower(name)), pkg, registered)
}

// parseURL parses a cache URL strictly: the URL itself, its scheme (which
// must be registered), then every pair of its query (see parseQuery). It
// refuses what no driver would honour: an opaque URL, user information and
// a fragment. No error shows the URL.
func parseURL(rawURL string) (*url.URL, driver.Scheme, []param, error) {
	fail := func(err error) (*url.URL, driver.Scheme, []param, error) { return nil, driver.Scheme{}, nil, err }
	u, err := url.Parse(rawURL)
	if err != nil {
		return fail(fmt.Errorf("%w: cache URL: %v", ErrInvalidOption, redactURLError(err)))
	}
	switch {
	case u.Scheme == "":
		return fail(fmt.Errorf("%w: cache URL %q has no scheme (want mem://, file:///dir, s3://bucket, ...)", ErrInvalidOption, redact(u)))
	case u.Opaque != "":
		return fail(fmt.Errorf("%w: cache URL %s:... is not of the form %s://...", ErrInvalidOption, u.Scheme, u.Scheme))
	case strings.Contains(rawURL, "#"):
		return fail(fmt.Errorf("%w: cache URL has a fragment: '#' ends the query (write '#' in a value as %%23)", ErrInvalidOption))
	case u.User != nil:
		return fail(fmt.Errorf("%w: cache URL has user information, which no driver takes (pass credentials as parameters)", ErrInvalidOption))
	}
	// The scheme before the query: its Secrets decide which values the
	// query's errors may never show.
	scheme, err := lookupScheme(u.Scheme)
	if err != nil {
		return fail(err)
	}
	pairs, err := parseQuery(u.RawQuery, scheme)
	if err != nil {
		return fail(err)
	}
	return u, scheme, pairs, nil
}

// param is one name=value pair of a URL query, decoded, in the order given.
type param struct {
	name, value string
	// after is the lower-case name of the secret parameter right before this
	// pair, or "". Such a pair's name is never shown: it may be the secret's
	// tail, cut off by an unescaped '&'.
	after string
}

// describe names p for an error.
func (p param) describe() string {
	return query.Param{Name: p.name, After: p.after}.Describe("cache URL parameter")
}

// isSecretParam reports whether a parameter's value is a secret: the
// cache's signing_key, or one of the scheme's Secrets.
func isSecretParam(scheme driver.Scheme, name string) bool {
	lname := strings.ToLower(name)
	return lname == "signing_key" || slices.Contains(scheme.Secrets, lname)
}

// parseQuery splits a raw query into its pairs, in order, refusing every
// pair url.ParseQuery would drop or make up (see query.Parse).
func parseQuery(raw string, scheme driver.Scheme) ([]param, error) {
	qs, err := query.Parse(raw, "cache URL parameter", func(name string) bool { return isSecretParam(scheme, name) })
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidOption, err)
	}
	out := make([]param, len(qs))
	for i, q := range qs {
		out[i] = param{name: q.Name, value: q.Value, after: q.After}
	}
	return out, nil
}

// encodeQuery is the query of pairs, in their order.
func encodeQuery(pairs []param) string {
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = url.QueryEscape(p.name) + "=" + url.QueryEscape(p.value)
	}
	return strings.Join(parts, "&")
}

// unknownParam is the error for a parameter no one takes.
func unknownParam(p param) error {
	if p.after != "" {
		return fmt.Errorf("%w: %s is unknown (if the %s value holds '&', write it as %%26)", ErrInvalidOption, p.describe(), p.after)
	}
	return &driver.UnknownOptionError{Name: p.name}
}

// driverError gives a driver's error about its options the cache's kind: an
// unknown option suggests among the cache's options too.
func driverError(err error, rest []param) error {
	var unknown *driver.UnknownOptionError
	if errors.As(err, &unknown) {
		for _, p := range rest {
			if p.name == unknown.Name && p.after != "" {
				return unknownParam(p)
			}
		}
		known := append(slices.Collect(maps.Keys(cacheOptions)), unknown.Known...)
		return fmt.Errorf("%w: %w", ErrInvalidOption, &driver.UnknownOptionError{Name: unknown.Name, Known: known})
	}
	return err
}

// cacheOptions are the URL parameters the cache itself takes, by lower-case
// name.
var cacheOptions = map[string]func(string) (Option, error){
	"location": func(v string) (Option, error) { return WithLocation(v), nil },
	"max_entries": func(v string) (Option, error) {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, optionError("max_entries", "%s is not an integer", quoteValue(v))
		}
		return WithMaxEntries(n), nil
	},
	"cull_frequency": func(v string) (Option, error) {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, optionError("cull_frequency", "%s is not an integer", quoteValue(v))
		}
		return WithCullFrequency(n), nil
	},
	"cull_shards": func(v string) (Option, error) {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, optionError("cull_shards", "%s is not an integer", quoteValue(v))
		}
		return WithCullShards(n), nil
	},
	"cull_policy": func(v string) (Option, error) {
		switch strings.ToLower(v) {
		case "frequency":
			return func(*settings) error { return nil }, nil
		case "oldest":
			return func(s *settings) error { s.policy = cull.Oldest(s.cullFrequency); return nil }, nil
		}
		return nil, optionError("cull_policy", "%s: want frequency or oldest", quoteValue(v))
	},
	"timeout": func(v string) (Option, error) {
		d, err := parseTimeout(v)
		if err != nil {
			return nil, err
		}
		return WithDefaultTTL(d), nil
	},
	"key_prefix": func(v string) (Option, error) { return WithKeyPrefix(v), nil },
	"fill_timeout": func(v string) (Option, error) {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, optionError("fill_timeout", "%s: want a positive Go duration such as 30s or 2m", quoteValue(v))
		}
		return WithFillTimeout(d), nil
	},
	"fill_lease":  func(v string) (Option, error) { return durationOption("fill_lease", v, WithFillLease) },
	"stale_grace": func(v string) (Option, error) { return durationOption("stale_grace", v, WithStaleGrace) },
	"local_tier": func(v string) (Option, error) {
		n, err := parseSize(v)
		if err != nil || n <= 0 {
			return nil, optionError("local_tier", "%s: want a positive size such as 64MiB", quoteValue(v))
		}
		return func(s *settings) error { s.localBytes = n; return nil }, nil
	},
	"local_disk": func(v string) (Option, error) {
		if v == "" || !filepath.IsAbs(v) {
			return nil, optionError("local_disk", "%s: want an absolute directory such as /var/cache/blobcache", quoteValue(v))
		}
		return func(s *settings) error { s.diskDir = filepath.Clean(v); return nil }, nil
	},
	"local_disk_size": func(v string) (Option, error) {
		n, err := parseSize(v)
		if err != nil || n <= 0 {
			return nil, optionError("local_disk_size", "%s: want a positive size such as 10GiB", quoteValue(v))
		}
		return func(s *settings) error { s.diskBytes = n; return nil }, nil
	},
	"local_staleness": func(v string) (Option, error) {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, optionError("local_staleness", "%s: want a positive Go duration such as 1s", quoteValue(v))
		}
		return func(s *settings) error { s.localStale = d; return nil }, nil
	},
	"max_value_size": func(v string) (Option, error) {
		n, err := parseSize(v)
		if err != nil {
			return nil, optionError("max_value_size", "%s: %v", quoteValue(v), err)
		}
		return WithMaxValueSize(n), nil
	},
	"version": func(v string) (Option, error) {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, optionError("version", "%s is not an integer", quoteValue(v))
		}
		return WithVersion(n), nil
	},
	"signing_key": func(v string) (Option, error) {
		var keys [][]byte
		for k := range strings.SplitSeq(v, ",") {
			keys = append(keys, []byte(k))
		}
		return WithSigningKeys(keys...), nil
	},
	"is_gzipped": func(v string) (Option, error) {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, optionError("is_gzipped", "%s is not a boolean (want true or false)", quoteValue(v))
		}
		return WithGzip(b), nil
	},
}

// parseTimeout reads Django's TIMEOUT: seconds (integer or decimal), a Go
// duration such as "5m", or "none" for no expiry. The TTL must be positive
// after rounding to nanoseconds and fit a time.Duration (about 292 years).
func parseTimeout(v string) (time.Duration, error) {
	if strings.EqualFold(v, "none") {
		return NoExpiry, nil
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		ns := math.Round(secs * float64(time.Second))
		if math.IsNaN(secs) || ns < 1 || ns >= math.MaxInt64 {
			return 0, optionError("timeout", "%s: want a positive number of seconds (at least 1ns, at most about 292 years) or none", quoteValue(v))
		}
		return time.Duration(ns), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, optionError("timeout", "%s: want seconds, a positive Go duration such as 5m, or none", quoteValue(v))
	}
	return d, nil
}

// splitQuery takes the cache's own options out of pairs; the rest, in their
// order, are the driver's. One option given twice, in any spelling, is an
// error. cull_policy is applied last, so it sees cull_frequency.
func splitQuery(pairs []param) ([]Option, []param, error) {
	var opts, late []Option
	var rest []param
	seen := map[string]param{}
	for _, p := range pairs {
		lname := strings.ToLower(p.name)
		parse, ok := cacheOptions[lname]
		if !ok {
			rest = append(rest, p)
			continue
		}
		if prev, dup := seen[lname]; dup {
			if prev.name == p.name {
				return nil, nil, optionError(lname, "given twice")
			}
			return nil, nil, optionError(lname, "given twice (as %q and %q)", prev.name, p.name)
		}
		seen[lname] = p
		o, err := parse(p.value)
		if err != nil {
			return nil, nil, err
		}
		if lname == "cull_policy" {
			late = append(late, o)
		} else {
			opts = append(opts, o)
		}
	}
	return append(opts, late...), rest, nil
}

// describe renders the store u names as its scheme describes it (by
// default scheme://host/path, with no driver parameter), then the cache's
// own options, lower-case and sorted, with no secret.
func describe(scheme driver.Scheme, u *url.URL, pairs []param) string {
	var out string
	if scheme.Describe != nil {
		du := *u
		du.Scheme = scheme.Name
		out = scheme.Describe(&du)
	} else {
		d := url.URL{Scheme: scheme.Name, Host: u.Host, Path: u.Path}
		out = d.String()
	}
	q := url.Values{}
	for _, p := range pairs {
		lname := strings.ToLower(p.name)
		if _, ok := cacheOptions[lname]; ok && !isSecretParam(scheme, lname) {
			q.Set(lname, p.value)
		}
	}
	if len(q) == 0 {
		return out
	}
	if strings.Contains(out, "?") {
		return out + "&" + q.Encode()
	}
	return out + "?" + q.Encode()
}

// quoteValue quotes an option's value for an error message, shortened past
// 64 bytes. It is never used for a secret's value.
func quoteValue(v string) string {
	if len(v) > 64 {
		return strconv.Quote(v[:61]) + "..."
	}
	return strconv.Quote(v)
}

// redact returns u as a string with its query and password removed.
func redact(u *url.URL) string {
	d := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return d.String()
}

// redactURLError reports a URL parse error without the URL, which may hold
// secrets, nor the text of a bad escape.
func redactURLError(err error) string {
	var ee url.EscapeError
	if errors.As(err, &ee) {
		return "bad %-escape"
	}
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return "malformed URL"
}

// parseSize reads a byte count: digits, then optionally a unit (B, kB, KiB,
// MB, MiB, GB, GiB, TB, TiB; case-insensitive), with no space or one.
func parseSize(s string) (int64, error) {
	bad := errors.New("want a size in bytes such as 1048576, 64KiB, 256MiB or 1GiB")
	digits := strings.TrimRight(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ")
	after := s[len(digits):]
	unit := strings.TrimPrefix(after, " ")
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" || strings.Contains(unit, " ") || (after != "" && unit == "") {
		return 0, bad
	}
	mult := map[string]int64{"": 1, "b": 1, "kb": 1e3, "kib": 1 << 10, "mb": 1e6, "mib": 1 << 20,
		"gb": 1e9, "gib": 1 << 30, "tb": 1e12, "tib": 1 << 40}[strings.ToLower(unit)]
	n, err := strconv.ParseInt(digits, 10, 64)
	if mult == 0 || err != nil || n > math.MaxInt64/mult {
		return 0, bad
	}
	return n * mult, nil
}

// durationOption parses v, a Go duration of at least 0 ("0" turns the
// option off), into the option with.
func durationOption(name, v string, with func(time.Duration) Option) (Option, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return nil, optionError(name, "%s: want 0 (off) or a positive Go duration such as 5s", quoteValue(v))
	}
	return with(d), nil
}
