package gcs

import (
	"context"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/internal/query"
)

// urlParams maps each accepted parameter name (lower case) to its
// canonical name. The Go CDK gcsblob's own URL parameters (access_id,
// private_key_path, anonymous's spelling aside, client, universe_domain,
// ...) are not taken: they are unknown options.
var urlParams = map[string]string{
	"endpoint":  "endpoint",
	"anonymous": "anonymous",
}

// OpenURL opens a driver from a URL:
//
//	gs://bucket
//	gs://bucket?endpoint=http://127.0.0.1:4443
//	gs://bucket?anonymous=true
//
// The host is the bucket. Parameter names are case-insensitive; each maps
// to the [Options] field of the same meaning: endpoint (the base URL of an
// emulator such as fake-gcs-server, reached without credentials) and
// anonymous (no credentials, for public buckets). See [ParseURL] for what
// is refused; nothing is sent before every parameter has been checked.
func OpenURL(ctx context.Context, u *url.URL) (*Driver, error) {
	bucket, opts, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return Open(ctx, bucket, opts)
}

// ParseURL returns the bucket and options of a gs:// URL, as [OpenURL]
// reads them, without opening anything. Every parameter is honoured or
// refused with an error wrapping [driver.ErrInvalidOption] that names it:
// besides unknown names (also an *[driver.UnknownOptionError]) it refuses
// what url.ParseQuery would silently drop (a ';', a bad %-escape), a
// parameter without a value or with an empty one, one given twice in any
// spelling, a bad boolean (only strconv.ParseBool's forms), a URL
// fragment, path or user information, a host that is not a GCS bucket
// name, and every value [Open] refuses.
func ParseURL(u *url.URL) (bucket string, opts Options, err error) {
	switch {
	case u.Scheme != "" && !strings.EqualFold(u.Scheme, "gs"):
		return "", Options{}, invalid("URL scheme %s is not gs", quote(u.Scheme))
	case u.Opaque != "":
		return "", Options{}, invalid("URL is not of the form gs://bucket")
	case u.Path != "" && u.Path != "/":
		return "", Options{}, invalid("URL has a path %s; the bucket is the host (gs://bucket) and the cache's folder is the location parameter", quote(u.Path))
	case u.User != nil:
		return "", Options{}, invalid("URL has user information; the gs scheme takes no credentials in the URL")
	case u.Fragment != "" || u.RawFragment != "":
		return "", Options{}, invalid("URL has a fragment ('#' ends the query: write '#' in a value as %%23)")
	}
	pairs, err := query.Parse(u.RawQuery, "URL parameter", func(string) bool { return false })
	if err != nil {
		return "", Options{}, &optionError{msg: err.Error()}
	}
	vals := map[string]query.Param{}
	for _, p := range pairs {
		canon, ok := urlParams[strings.ToLower(p.Name)]
		if !ok {
			unknown := &driver.UnknownOptionError{Name: p.Name, Known: slices.Sorted(maps.Keys(urlParams))}
			return "", Options{}, &optionError{msg: unknown.Error(), err: unknown}
		}
		if prev, dup := vals[canon]; dup {
			if prev.Name == p.Name {
				return "", Options{}, invalid("URL parameter %q given more than once", p.Name)
			}
			return "", Options{}, invalid("URL parameter %q given twice (as %q and %q)", canon, prev.Name, p.Name)
		}
		vals[canon] = p
	}
	opts.Endpoint = vals["endpoint"].Value
	if p, ok := vals["anonymous"]; ok {
		v, err := strconv.ParseBool(p.Value)
		if err != nil {
			return "", Options{}, invalid("URL parameter %q: %s is not a boolean (want true or false)", p.Name, quote(p.Value))
		}
		opts.Anonymous = v
	}
	bucket = u.Host
	if err := validateBucket(bucket); err != nil {
		return "", Options{}, err
	}
	if err := opts.validate(); err != nil {
		return "", Options{}, err
	}
	return bucket, opts, nil
}
