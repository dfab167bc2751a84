package cache

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/blobcache/blobcache/cull"
	"github.com/blobcache/blobcache/driver"
	blobdriver "github.com/blobcache/blobcache/drivers/blob"
	"github.com/blobcache/blobcache/drivers/file"
	"github.com/blobcache/blobcache/drivers/mem"
	"github.com/blobcache/blobcache/drivers/s3"
)

// Open opens a cache from a URL. The scheme picks the driver:
//
//	mem://[name]          memory; the same name shares one store in this process, no name is private
//	file:///abs/dir       a directory on disk
//	s3://bucket           Amazon S3 or an S3-compatible server such as MinIO
//	gs://, azblob://, ... any other gocloud bucket URL, through drivers/blob
//	                      (the application imports the gocloud driver package)
//
// Query parameters set cache options, with Django's names, case-insensitive:
// location, max_entries, cull_frequency, cull_policy (frequency or oldest),
// timeout (seconds, a Go duration, or "none" for no expiry), key_prefix,
// version, is_gzipped. The remaining parameters go to the driver (for s3:
// endpoint, region, use_path_style, access_key, secret_key, create_bucket,
// default_acl, bucket_acl, storage_class, reduced_redundancy, sse, ...: the
// README lists them all); a parameter nobody knows is an error naming it and
// suggesting the closest known name. OpenConfig takes the same options in
// the shape of a Django CACHES entry.
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
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: cache URL: %v", ErrInvalidOption, redactURLError(err))
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("%w: cache URL %q has no scheme (want mem://, file:///dir, s3://bucket, ...)", ErrInvalidOption, redact(u))
	}
	urlOpts, rest, err := splitQuery(u.Query())
	if err != nil {
		return nil, err
	}
	du := *u
	du.RawQuery = rest.Encode()
	d, err := openDriver(ctx, &du)
	if err != nil {
		var unknown *driver.UnknownOptionError
		if errors.As(err, &unknown) {
			// Suggest among the cache's options too.
			known := append(slices.Collect(maps.Keys(cacheOptions)), unknown.Known...)
			return nil, fmt.Errorf("%w: %w", ErrInvalidOption, &driver.UnknownOptionError{Name: unknown.Name, Known: known})
		}
		return nil, err
	}
	all := append(urlOpts, withDescription(describe(u)))
	c, err := New(d, append(all, opts...)...)
	if err != nil {
		d.Close()
		return nil, err
	}
	return c, nil
}

func openDriver(ctx context.Context, u *url.URL) (driver.Driver, error) {
	switch strings.ToLower(u.Scheme) {
	case "mem":
		if q := u.Query(); len(q) > 0 {
			return nil, &driver.UnknownOptionError{Name: slices.Sorted(maps.Keys(q))[0]}
		}
		if u.Host == "" {
			return mem.New(), nil
		}
		return mem.Open(u.Host), nil
	case "file":
		return file.OpenURL(ctx, u)
	case "s3":
		return s3.OpenURL(ctx, u)
	default:
		return blobdriver.OpenURL(ctx, u.String())
	}
}

// cacheOptions are the URL parameters the cache itself takes, by lower-case
// name.
var cacheOptions = map[string]func(string) (Option, error){
	"location": func(v string) (Option, error) { return WithLocation(v), nil },
	"max_entries": func(v string) (Option, error) {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, optionError("max_entries", "%q is not an integer", v)
		}
		return WithMaxEntries(n), nil
	},
	"cull_frequency": func(v string) (Option, error) {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, optionError("cull_frequency", "%q is not an integer", v)
		}
		return WithCullFrequency(n), nil
	},
	"cull_policy": func(v string) (Option, error) {
		switch strings.ToLower(v) {
		case "frequency":
			return func(*settings) error { return nil }, nil
		case "oldest":
			return func(s *settings) error { s.policy = cull.Oldest(s.cullFrequency); return nil }, nil
		}
		return nil, optionError("cull_policy", "%q: want frequency or oldest", v)
	},
	"timeout": func(v string) (Option, error) {
		d, err := parseTimeout(v)
		if err != nil {
			return nil, err
		}
		return WithDefaultTTL(d), nil
	},
	"key_prefix": func(v string) (Option, error) { return WithKeyPrefix(v), nil },
	"max_value_size": func(v string) (Option, error) {
		n, err := parseSize(v)
		if err != nil {
			return nil, optionError("max_value_size", "%q: %v", v, err)
		}
		return WithMaxValueSize(n), nil
	},
	"version": func(v string) (Option, error) {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, optionError("version", "%q is not an integer", v)
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
			return nil, optionError("is_gzipped", "%q is not a boolean", v)
		}
		return WithGzip(b), nil
	},
}

// parseTimeout reads Django's TIMEOUT: seconds (integer or decimal), a Go
// duration such as "5m", or "none" for no expiry.
func parseTimeout(v string) (time.Duration, error) {
	if strings.EqualFold(v, "none") {
		return NoExpiry, nil
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 {
			return 0, optionError("timeout", "%q: want a positive number of seconds or none", v)
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, optionError("timeout", "%q: want seconds, a positive Go duration such as 5m, or none", v)
	}
	return d, nil
}

// splitQuery takes the cache's own options out of q; the rest is the
// driver's. cull_policy is applied last, so it sees cull_frequency.
func splitQuery(q url.Values) ([]Option, url.Values, error) {
	var opts, late []Option
	rest := url.Values{}
	seen := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(q)) {
		vals := q[name]
		lname := strings.ToLower(name)
		parse, ok := cacheOptions[lname]
		if !ok {
			rest[name] = vals
			continue
		}
		if len(vals) != 1 || seen[lname] {
			return nil, nil, optionError(lname, "given more than once")
		}
		seen[lname] = true
		o, err := parse(vals[0])
		if err != nil {
			return nil, nil, err
		}
		if strings.EqualFold(name, "cull_policy") {
			late = append(late, o)
		} else {
			opts = append(opts, o)
		}
	}
	return append(opts, late...), rest, nil
}

// describe renders u without query parameters other than the cache's own, so
// no secret reaches String.
func describe(u *url.URL) string {
	d := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	q := url.Values{}
	for name, vals := range u.Query() {
		if _, ok := cacheOptions[strings.ToLower(name)]; ok && !secretOptions[strings.ToLower(name)] {
			q[name] = vals
		}
	}
	d.RawQuery = q.Encode()
	return d.String()
}

// redact returns u as a string with its query and password removed.
func redact(u *url.URL) string {
	d := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return d.String()
}

// redactURLError reports a URL parse error without the URL, which may hold
// secrets.
func redactURLError(err error) string {
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
	unit := strings.TrimPrefix(s[len(digits):], " ")
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" || strings.Contains(unit, " ") {
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
