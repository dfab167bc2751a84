package cache

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Config is one cache's settings in the shape of a Django CACHES entry, as
// decoded from JSON or YAML:
//
//	{
//	  "backend": "s3",
//	  "location": "cache",
//	  "timeout": 600,
//	  "key_prefix": "app",
//	  "version": 2,
//	  "options": {"bucket_name": "my-bucket", "max_entries": 1000, "is_gzipped": true}
//	}
//
// Names are case-insensitive ("BACKEND", "OPTIONS", "MAX_ENTRIES" work) and
// take the same options, aliases and validation as URL query parameters
// (see Open); options may also stand at the top level. "backend" picks the
// store:
//
//	s3, s3cache.AmazonS3Cache                 S3: the bucket is options.bucket_name,
//	                                          "location" the folder in it
//	file, filebased, ...FileBasedCache       a directory: "location" is its absolute path
//	mem, locmem, ...LocMemCache              memory: "location" names the shared store
//
// or "url" gives a cache URL to which the other settings are added. A Config
// holds secrets (secret_key): its String and Format redact them.
type Config map[string]any

// Configs is a whole Django CACHES setting: names to entries.
type Configs map[string]Config

// Open opens the cache called name ("default", say); see OpenConfig.
func (cs Configs) Open(ctx context.Context, name string, opts ...Option) (*Cache, error) {
	cfg, ok := cs[name]
	if !ok {
		return nil, fmt.Errorf("%w: no cache named %q in the configuration", ErrInvalidOption, name)
	}
	return OpenConfig(ctx, cfg, opts...)
}

// secretOptions are never printed.
var secretOptions = map[string]bool{"secret_key": true, "secret_access_key": true, "signing_key": true}

// OpenConfig opens the cache cfg describes; opts are applied after it, as in
// Open.
func OpenConfig(ctx context.Context, cfg Config, opts ...Option) (*Cache, error) {
	u, err := cfg.URL()
	if err != nil {
		return nil, err
	}
	return Open(ctx, u, opts...)
}

// URL returns the cache URL equivalent to cfg, for Open. It contains the
// secrets cfg contains.
func (cfg Config) URL() (string, error) {
	var base *url.URL
	backend := ""
	q := url.Values{}
	set := func(name string, v any) error {
		s, err := optionString(name, v)
		if err != nil {
			return err
		}
		// Two spellings of one name (MAX_ENTRIES and max_entries) are an error.
		lname := strings.ToLower(name)
		for k := range q {
			if strings.ToLower(k) == lname {
				return fmt.Errorf("%w: %s: given twice", ErrInvalidOption, lname)
			}
		}
		q.Set(name, s)
		return nil
	}
	location := ""
	for _, name := range slices.Sorted(maps.Keys(cfg)) {
		v := cfg[name]
		switch lname := strings.ToLower(name); lname {
		case "backend":
			s, ok := v.(string)
			if !ok {
				return "", fmt.Errorf("%w: backend: want a string, got %T", ErrInvalidOption, v)
			}
			backend = s
		case "url":
			s, ok := v.(string)
			if !ok {
				return "", fmt.Errorf("%w: url: want a string, got %T", ErrInvalidOption, v)
			}
			u, err := url.Parse(s)
			if err != nil {
				return "", fmt.Errorf("%w: url: %v", ErrInvalidOption, redactURLError(err))
			}
			base = u
		case "location":
			s, ok := v.(string)
			if !ok {
				return "", fmt.Errorf("%w: location: want a string, got %T", ErrInvalidOption, v)
			}
			location = s
		case "options":
			opts, ok := asMap(v)
			if !ok {
				return "", fmt.Errorf("%w: options: want a map, got %T", ErrInvalidOption, v)
			}
			for _, oname := range slices.Sorted(maps.Keys(opts)) {
				if err := set(oname, opts[oname]); err != nil {
					return "", err
				}
			}
		case "key_function":
			return "", fmt.Errorf("%w: key_function: a function cannot be configured by name; use WithKeyFunc", ErrInvalidOption)
		default:
			if err := set(name, v); err != nil {
				return "", err
			}
		}
	}
	u, err := configBase(backend, base, location, q)
	if err != nil {
		return "", err
	}
	for k, vs := range u.Query() {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// configBase picks the store: from an explicit URL, or from the backend, with
// location meaning what it means for that backend.
func configBase(backend string, base *url.URL, location string, q url.Values) (*url.URL, error) {
	if base != nil {
		if backend != "" {
			return nil, fmt.Errorf("%w: backend and url: give one", ErrInvalidOption)
		}
		if location != "" {
			q.Set("location", location)
		}
		return base, nil
	}
	b := strings.ToLower(backend)
	switch {
	case b == "":
		return nil, fmt.Errorf("%w: backend: missing (want s3, file, mem or a url)", ErrInvalidOption)
	case b == "s3" || strings.HasPrefix(b, "s3cache."):
		bucket := ""
		for k, vs := range q {
			if lk := strings.ToLower(k); lk == "bucket_name" || lk == "storage_bucket_name" {
				if bucket == "" || lk == "bucket_name" {
					bucket = vs[0]
				}
				q.Del(k)
			}
		}
		if bucket == "" {
			return nil, fmt.Errorf("%w: bucket_name: missing for the s3 backend", ErrInvalidOption)
		}
		if !isURLHost("s3", bucket) {
			return nil, fmt.Errorf("%w: bucket_name: %q is not a bucket name", ErrInvalidOption, bucket)
		}
		if location != "" {
			q.Set("location", location)
		}
		return &url.URL{Scheme: "s3", Host: bucket}, nil
	case b == "file" || b == "filebased" || strings.HasSuffix(b, ".filebasedcache"):
		if !strings.HasPrefix(location, "/") {
			return nil, fmt.Errorf("%w: location: the file backend needs the directory's absolute path, got %q", ErrInvalidOption, location)
		}
		return &url.URL{Scheme: "file", Path: location}, nil
	case b == "mem" || b == "memory" || b == "locmem" || strings.HasSuffix(b, ".locmemcache"):
		if !isURLHost("mem", location) {
			return nil, fmt.Errorf("%w: location: %q cannot name a memory store (use letters, digits, '-', '_' and '.')", ErrInvalidOption, location)
		}
		return &url.URL{Scheme: "mem", Host: location}, nil
	}
	return nil, fmt.Errorf("%w: backend: unknown backend %q (want s3, file, mem, or a url)", ErrInvalidOption, backend)
}

// isURLHost reports whether name survives as the host of a scheme:// URL,
// as the s3 bucket and the memory store's name must.
func isURLHost(scheme, name string) bool {
	u, err := url.Parse((&url.URL{Scheme: scheme, Host: name}).String())
	return err == nil && u.Host == name
}

// optionString renders a decoded JSON/YAML value as a URL parameter value.
func optionString(name string, v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return strconv.FormatInt(int64(v), 10), nil
		}
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case nil:
		if strings.EqualFold(name, "timeout") {
			return "none", nil // Django's TIMEOUT None: never expire
		}
	}
	return "", fmt.Errorf("%w: %s: unsupported value of type %T", ErrInvalidOption, strings.ToLower(name), v)
}

func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case Config:
		return m, true
	case map[string]string:
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out, true
	}
	return nil, false
}

// String describes cfg with secrets redacted.
func (cfg Config) String() string {
	var b strings.Builder
	b.WriteString("cache.Config{")
	for i, name := range slices.Sorted(maps.Keys(cfg)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %s", name, redactValue(name, cfg[name]))
	}
	b.WriteString("}")
	return b.String()
}

// Format makes every fmt verb print String, so no secret shows.
func (cfg Config) Format(f fmt.State, verb rune) { fmt.Fprint(f, cfg.String()) }

func redactValue(name string, v any) string {
	if secretOptions[strings.ToLower(name)] {
		return "REDACTED"
	}
	if m, ok := asMap(v); ok {
		var b strings.Builder
		b.WriteString("{")
		for i, k := range slices.Sorted(maps.Keys(m)) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s: %s", k, redactValue(k, m[k]))
		}
		b.WriteString("}")
		return b.String()
	}
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}
