package s3

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

// OpenURL opens a driver from a URL:
//
//	s3://bucket?endpoint=http://127.0.0.1:9000&region=us-east-1&use_path_style=true
//	    &access_key=...&secret_key=...&create_bucket=true&default_acl=private
//	    &bucket_acl=private&storage_class=STANDARD_IA&reduced_redundancy=true
//	    &lifecycle=install
//
// The host is the bucket (or the parameter bucket_name, alias
// storage_bucket_name). Parameter names are case-insensitive; each maps to the
// [Options] field of the same meaning: endpoint, region, use_path_style
// (alias s3forcepathstyle), access_key (alias access_key_id), secret_key
// (alias secret_access_key), profile, anonymous, create_bucket, default_acl,
// bucket_acl, storage_class, reduced_redundancy, ssetype (alias sse),
// kmskeyid (alias kms_key_id), accelerate, dualstack, fips, lifecycle. See [ParseURL]
// for what is refused. No error ever contains the secret key, and nothing is
// sent before every parameter has been checked.
func OpenURL(ctx context.Context, u *url.URL) (*Driver, error) {
	bucket, opts, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return Open(ctx, bucket, opts)
}

// urlParams maps each accepted parameter name (lower case) to its canonical
// name. Go CDK s3blob's other URL parameters (disable_https,
// hostname_immutable, rate_limiter_capacity, role, awssdk,
// request_checksum_calculation, response_checksum_validation) are not taken:
// they are unknown options.
var urlParams = map[string]string{
	"endpoint":            "endpoint",
	"region":              "region",
	"use_path_style":      "use_path_style",
	"s3forcepathstyle":    "use_path_style",
	"access_key":          "access_key",
	"access_key_id":       "access_key",
	"secret_key":          "secret_key",
	"secret_access_key":   "secret_key",
	"profile":             "profile",
	"anonymous":           "anonymous",
	"create_bucket":       "create_bucket",
	"default_acl":         "default_acl",
	"bucket_acl":          "bucket_acl",
	"storage_class":       "storage_class",
	"reduced_redundancy":  "reduced_redundancy",
	"ssetype":             "ssetype",
	"sse":                 "ssetype",
	"kmskeyid":            "kmskeyid",
	"kms_key_id":          "kmskeyid",
	"accelerate":          "accelerate",
	"dualstack":           "dualstack",
	"fips":                "fips",
	"lifecycle":           "lifecycle",
	"bucket_name":         "bucket_name",
	"storage_bucket_name": "bucket_name",
}

// isSecretOption reports whether the URL parameter name (any case) carries a
// secret: its value is never shown, nor the name of the pair right after it
// (which is the secret's tail when the secret holds an unescaped '&').
func isSecretOption(name string) bool { return urlParams[strings.ToLower(name)] == "secret_key" }

// param is one name=value pair of a URL query, decoded.
type param struct {
	name, value string
	// after is the (lower-case) name of the secret parameter right before
	// this pair, or "".
	after string
}

// describe names p for an error: by its name, or, right after a secret, by
// its place (its name may be the secret's tail).
func (p param) describe() string {
	return query.Param{Name: p.name, After: p.after}.Describe("URL parameter")
}

// parseQuery splits a URL's raw query into its name=value pairs, in order,
// and refuses every pair url.ParseQuery would drop or make up (see
// query.Parse).
func parseQuery(raw string) ([]param, error) {
	qs, err := query.Parse(raw, "URL parameter", isSecretOption)
	if err != nil {
		return nil, &optionError{msg: err.Error()}
	}
	out := make([]param, len(qs))
	for i, q := range qs {
		out[i] = param{name: q.Name, value: q.Value, after: q.After}
	}
	return out, nil
}

// ParseURL returns the bucket and options of an s3:// URL, as [OpenURL]
// reads them, without opening anything. Every parameter is honoured or
// refused with an error wrapping [ErrInvalidOption] that names it: besides
// unknown names (also an *[driver.UnknownOptionError]) it refuses what
// url.ParseQuery would silently drop (a ';', a bad %-escape), a parameter
// without a value or with an empty one, one option given twice in any
// spelling or alias (access_key and ACCESS_KEY_ID), a bad boolean (only
// strconv.ParseBool's forms), a URL fragment, path or user information, and
// every value or combination [Open] refuses. Values of fixed sets (ACLs,
// storage classes, encryption types) are matched without case and returned in
// S3's spelling.
func ParseURL(u *url.URL) (bucket string, opts Options, err error) {
	switch {
	case u.Scheme != "" && !strings.EqualFold(u.Scheme, "s3"):
		return "", Options{}, invalid("URL scheme %q is not s3", u.Scheme)
	case u.Opaque != "":
		return "", Options{}, invalid("URL is not of the form s3://bucket")
	case u.Path != "" && u.Path != "/":
		return "", Options{}, invalid("URL has a path %s; the bucket is the host (s3://bucket) and the cache's folder is the location parameter", quote(u.Path))
	case u.User != nil:
		return "", Options{}, invalid("URL has user information; pass credentials as access_key and secret_key")
	case u.Fragment != "" || u.RawFragment != "":
		return "", Options{}, invalid("URL has a fragment ('#' ends the query: write '#' in a value as %%23)")
	}
	pairs, err := parseQuery(u.RawQuery)
	if err != nil {
		return "", Options{}, err
	}
	vals := map[string]param{} // canonical name -> the pair
	for _, p := range pairs {
		lname := strings.ToLower(p.name)
		canon, ok := urlParams[lname]
		if !ok {
			if p.after != "" {
				return "", Options{}, invalid("%s is unknown (if the %s value holds '&', write it as %%26)", p.describe(), p.after)
			}
			unknown := &driver.UnknownOptionError{Name: p.name, Known: slices.Collect(maps.Keys(urlParams))}
			return "", Options{}, &optionError{msg: unknown.Error(), err: unknown}
		}
		if prev, dup := vals[canon]; dup {
			if prev.name == p.name {
				n := 0
				for _, q := range pairs {
					n += btoi(q.name == p.name)
				}
				return "", Options{}, invalid("URL parameter %q given %d times", p.name, n)
			}
			return "", Options{}, invalid("URL parameter %q given twice (as %q and %q)", canon, prev.name, p.name)
		}
		vals[canon] = p
	}
	str := func(canon string) string { return vals[canon].value }
	opts = Options{
		Endpoint:             str("endpoint"),
		Region:               str("region"),
		AccessKey:            str("access_key"),
		SecretKey:            str("secret_key"),
		Profile:              str("profile"),
		DefaultACL:           str("default_acl"),
		BucketACL:            str("bucket_acl"),
		StorageClass:         str("storage_class"),
		ServerSideEncryption: str("ssetype"),
		KMSKeyID:             str("kmskeyid"),
		Lifecycle:            str("lifecycle"),
	}
	for _, b := range []struct {
		canon string
		dst   *bool
	}{
		{"use_path_style", &opts.UsePathStyle},
		{"anonymous", &opts.Anonymous},
		{"create_bucket", &opts.CreateBucket},
		{"reduced_redundancy", &opts.ReducedRedundancy},
		{"accelerate", &opts.Accelerate},
		{"dualstack", &opts.DualStack},
		{"fips", &opts.FIPS},
	} {
		p, ok := vals[b.canon]
		if !ok {
			continue
		}
		v, err := strconv.ParseBool(p.value)
		if err != nil {
			return "", Options{}, invalid("URL parameter %q: %s is not a boolean (want true or false)", p.name, quote(p.value))
		}
		*b.dst = v
	}
	bucket = u.Host
	if p, ok := vals["bucket_name"]; ok {
		if bucket != "" && bucket != p.value {
			return "", Options{}, invalid("URL names two buckets: host %s and %s=%s", quote(bucket), p.name, quote(p.value))
		}
		bucket = p.value
	}
	if bucket == "" {
		return "", Options{}, invalid("URL names no bucket (want s3://bucket)")
	}
	if err := validateBucket(bucket); err != nil {
		return "", Options{}, err
	}
	if _, err := opts.validate(); err != nil {
		return "", Options{}, err
	}
	return bucket, opts, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
