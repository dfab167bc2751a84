package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/blobcache/blobcache/driver"
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
// store among the registered drivers, each of which says what its backend
// names are and what "location" means for it (driver.Scheme.Backends and
// FromConfig). The built-in ones:
//
//	s3, s3cache.AmazonS3Cache                 S3 (drivers/s3): the bucket is options.bucket_name,
//	                                          "location" the folder in it
//	file, filebased, ...FileBasedCache       a directory (drivers/file): "location" is its absolute path
//	mem, locmem, ...LocMemCache              memory (drivers/mem): "location" names the shared store
//
// Or "url" gives a cache URL to which the other settings are added (and
// "location" is the folder).
//
// Every entry is honoured or refused, with an error wrapping
// ErrInvalidOption that names it. One option given twice is an error at any
// level and in any spelling: LOCATION and location, location and
// options.LOCATION (where both mean the folder), OPTIONS and options,
// bucket_name and storage_bucket_name, an option in "url" and beside it.
// Nested options may be any map with string keys (map[string]any from JSON,
// map[any]any from yaml.v2, map[string]string, a Config, a pointer to one);
// values are strings, booleans, numbers, or null for TIMEOUT (Django's None:
// no expiry). A list, a map, or another value where an option's value
// belongs is an error naming the option; so is an empty string, except for
// LOCATION and KEY_PREFIX, where "" is Django's default and means what it
// means there (the store's root, no prefix).
//
// A Config holds secrets (secret_key, signing_key, ...): String, Format and
// LogValue redact them at any depth, in any of those shapes.
type Config map[string]any

// Configs is a whole Django CACHES setting: names to entries. Its String,
// Format and LogValue redact secrets as Config's do.
type Configs map[string]Config

// Open opens the cache called name ("default", say); see OpenConfig.
func (cs Configs) Open(ctx context.Context, name string, opts ...Option) (*Cache, error) {
	cfg, ok := cs[name]
	if !ok {
		return nil, fmt.Errorf("%w: no cache named %q in the configuration", ErrInvalidOption, name)
	}
	return OpenConfig(ctx, cfg, opts...)
}

// String describes cs with secrets redacted.
func (cs Configs) String() string {
	var b strings.Builder
	b.WriteString("cache.Configs{")
	for i, name := range slices.Sorted(maps.Keys(cs)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %s", strconv.Quote(name), cs[name].String())
	}
	b.WriteString("}")
	return b.String()
}

// Format makes every fmt verb print String, so no secret shows.
func (cs Configs) Format(f fmt.State, verb rune) { formatString(f, verb, cs.String()) }

// LogValue implements slog.LogValuer with String, so no slog handler shows a
// secret.
func (cs Configs) LogValue() slog.Value { return slog.StringValue(cs.String()) }

// OpenConfig opens the cache cfg describes; opts are applied after it, as in
// Open.
func OpenConfig(ctx context.Context, cfg Config, opts ...Option) (*Cache, error) {
	u, err := cfg.URL()
	if err != nil {
		return nil, err
	}
	return Open(ctx, u, opts...)
}

// configNames are a Config's own top-level names, which are not options.
var configNames = map[string]bool{"backend": true, "url": true, "location": true, "options": true, "key_function": true}

// URL returns the cache URL equivalent to cfg, for Open, or an error
// wrapping ErrInvalidOption that names the first entry that cannot be
// honoured (see Config). The URL contains the secrets cfg contains.
func (cfg Config) URL() (string, error) {
	var (
		backend  string
		base     *url.URL
		location string
		entries  []driver.ConfigOption
	)
	top := map[string]string{} // lower-case own name -> as written
	add := func(label, name string, v any) error {
		s, err := optionString(label, v)
		if err != nil {
			return err
		}
		if lname := strings.ToLower(name); s == "" && lname != "key_prefix" && lname != "location" {
			return fmt.Errorf("%w: %s: empty value (leave it out for its default)", ErrInvalidOption, label)
		}
		entries = append(entries, driver.ConfigOption{Label: label, Name: name, Value: s})
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(cfg)) {
		v := cfg[name]
		lname := strings.ToLower(name)
		if configNames[lname] {
			if prev, dup := top[lname]; dup {
				return "", fmt.Errorf("%w: %s given twice (as %q and %q)", ErrInvalidOption, lname, prev, name)
			}
			top[lname] = name
		}
		switch lname {
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
			u, _, pairs, err := parseURL(s)
			if err != nil {
				return "", fmt.Errorf("url: %w", err)
			}
			base = u
			for _, p := range pairs {
				entries = append(entries, driver.ConfigOption{Label: "url's " + strconv.Quote(p.name), Name: p.name, Value: p.value})
			}
		case "location":
			s, ok := v.(string)
			if !ok {
				return "", fmt.Errorf("%w: location: want a string, got %T", ErrInvalidOption, v)
			}
			location = s
		case "options":
			opts, err := asMap(name, v)
			if err != nil {
				return "", err
			}
			for _, oname := range slices.Sorted(maps.Keys(opts)) {
				label := name + "." + oname
				if lo := strings.ToLower(oname); configNames[lo] && lo != "location" {
					return "", fmt.Errorf("%w: %s: %s is a top-level setting, not an option", ErrInvalidOption, label, lo)
				}
				if err := add(label, oname, opts[oname]); err != nil {
					return "", err
				}
			}
		case "key_function":
			return "", fmt.Errorf("%w: key_function: a function cannot be configured by name; use WithKeyFunc", ErrInvalidOption)
		default:
			if err := add(name, name, v); err != nil {
				return "", err
			}
		}
	}
	u, entries, err := configBase(backend, base, top["location"], location, entries)
	if err != nil {
		return "", err
	}
	// One option, one entry: any spelling, any level.
	seen := map[string]string{}
	for _, e := range entries {
		lname := strings.ToLower(e.Name)
		if prev, dup := seen[lname]; dup {
			return "", fmt.Errorf("%w: %s given twice (as %s and %s)", ErrInvalidOption, lname, prev, e.Label)
		}
		seen[lname] = e.Label
	}
	var q []param
	for _, e := range entries {
		if e.Value != "" { // "" only for location and key_prefix: the default
			q = append(q, param{name: e.Name, value: e.Value})
		}
	}
	u.RawQuery = encodeQuery(q)
	u.ForceQuery = false
	if u.Host == "" && u.Path == "" {
		// mem:// rather than mem:
		out := u.Scheme + "://"
		if u.RawQuery != "" {
			out += "?" + u.RawQuery
		}
		return out, nil
	}
	return u.String(), nil
}

// configBase picks the store: from an explicit URL, or from the backend's
// registered scheme (driver.Scheme.FromConfig), which says what location
// means for it. Where location is the folder, it joins the entries (so
// that it conflicts with any other location).
func configBase(backend string, base *url.URL, locName, location string, entries []driver.ConfigOption) (*url.URL, []driver.ConfigOption, error) {
	var loc *driver.ConfigOption
	if locName != "" {
		loc = &driver.ConfigOption{Label: locName, Name: "location", Value: location}
	}
	if base != nil {
		if backend != "" {
			return nil, nil, fmt.Errorf("%w: backend and url: give one", ErrInvalidOption)
		}
		if loc != nil {
			entries = append(entries, *loc)
		}
		return base, entries, nil
	}
	if backend == "" {
		return nil, nil, fmt.Errorf("%w: backend: missing (want a url or a registered backend: %s)", ErrInvalidOption, backendNames())
	}
	scheme, ok := driver.LookupBackend(backend)
	if !ok {
		return nil, nil, fmt.Errorf("%w: backend: unknown backend %q (want a url or a registered backend: %s; a driver registers its backends when its package is imported)", ErrInvalidOption, backend, backendNames())
	}
	u, rest, err := scheme.FromConfig(loc, entries)
	if err != nil {
		return nil, nil, err
	}
	if u == nil {
		return nil, nil, fmt.Errorf("cache: the %s driver's FromConfig returned no URL and no error", scheme.Name)
	}
	out := &url.URL{Scheme: scheme.Name, Host: u.Host, Path: u.Path}
	return out, rest, nil
}

// backendNames lists the schemes that take a Django BACKEND, for errors.
func backendNames() string {
	var names []string
	for _, n := range driver.Schemes() {
		if s, ok := driver.Lookup(n); ok && s.FromConfig != nil {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none registered"
	}
	return strings.Join(names, ", ")
}

// optionString renders a decoded JSON/YAML value as a URL parameter value:
// a string, a boolean, a number (of any Go numeric type, or json.Number), or
// nil for timeout (Django's None). label names the option in errors, which
// never show the value.
func optionString(label string, v any) (string, error) {
	lname := strings.ToLower(label[strings.LastIndex(label, ".")+1:])
	if v == nil {
		if lname == "timeout" {
			return "none", nil // Django's TIMEOUT None: never expire
		}
		return "", fmt.Errorf("%w: %s: null is not a value of this option", ErrInvalidOption, label)
	}
	if n, ok := v.(json.Number); ok {
		return n.String(), nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return rv.String(), nil
	case reflect.Bool:
		return strconv.FormatBool(rv.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(rv.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		f, bits := rv.Float(), rv.Type().Bits()
		switch {
		case math.IsNaN(f) || math.IsInf(f, 0):
			return "", fmt.Errorf("%w: %s: not a finite number", ErrInvalidOption, label)
		case f == math.Trunc(f) && math.Abs(f) < 1<<53:
			return strconv.FormatInt(int64(f), 10), nil
		}
		return strconv.FormatFloat(f, 'f', -1, bits), nil
	case reflect.Slice, reflect.Array:
		return "", fmt.Errorf("%w: %s: a list is not a value of any option", ErrInvalidOption, label)
	case reflect.Map:
		return "", fmt.Errorf("%w: %s: a map is not a value of this option", ErrInvalidOption, label)
	}
	return "", fmt.Errorf("%w: %s: unsupported value of type %T", ErrInvalidOption, label, v)
}

// asMap returns the options map v, which may be any map with string keys or
// with interface keys that hold strings (yaml.v2's map[any]any), or a
// pointer to one. Another key is an error naming it by its type and value.
func asMap(label string, v any) (map[string]any, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Map {
		return nil, fmt.Errorf("%w: %s: want a map of option names to values, got %T", ErrInvalidOption, label, v)
	}
	out := make(map[string]any, rv.Len())
	iter := rv.MapRange()
	for iter.Next() {
		k := iter.Key()
		if k.Kind() == reflect.Interface && !k.IsNil() {
			k = k.Elem()
		}
		if k.Kind() != reflect.String {
			return nil, fmt.Errorf("%w: %s: key %v (%s) is not an option name", ErrInvalidOption, label, k, k.Type())
		}
		out[k.String()] = iter.Value().Interface()
	}
	return out, nil
}

// String describes cfg with secrets redacted.
func (cfg Config) String() string {
	var b strings.Builder
	b.WriteString("cache.Config{")
	for i, name := range slices.Sorted(maps.Keys(cfg)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %s", name, redactValue(name, reflect.ValueOf(cfg[name]), 0))
	}
	b.WriteString("}")
	return b.String()
}

// Format makes every fmt verb print String, so no secret shows.
func (cfg Config) Format(f fmt.State, verb rune) { formatString(f, verb, cfg.String()) }

// LogValue implements slog.LogValuer with String, so no slog handler (the
// JSON handler would marshal the map) shows a secret.
func (cfg Config) LogValue() slog.Value { return slog.StringValue(cfg.String()) }

// formatString prints s for verb: quoted for %q, as is for every other verb
// (so %x does not hex-encode a description, nor anything else).
func formatString(f fmt.State, verb rune, s string) {
	if verb == 'q' {
		s = strconv.Quote(s)
	}
	fmt.Fprint(f, s)
}

// isSecretName reports whether a value under this name (any case, '_' and
// '-' ignored) is to be redacted: the options that hold secrets, and any
// name that speaks of a secret, password, token or private key.
func isSecretName(name string) bool {
	n := strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r == ' ' || r == '.' {
			return -1
		}
		return unicode.ToLower(r)
	}, name)
	for _, w := range []string{"secret", "password", "passwd", "token", "signingkey", "privatekey", "apikey", "credential"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// redactValue renders v, found under name, with every secret redacted: at
// any depth of maps (of any key type), lists, pointers, interfaces and
// structs (field names are names). A URL string is shown without its user
// information and secret parameters.
func redactValue(name string, v reflect.Value, depth int) string {
	if isSecretName(name) {
		return "REDACTED"
	}
	if depth > 16 {
		return "..."
	}
	if !v.IsValid() {
		return "<nil>"
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return "<nil>"
		}
		prefix := ""
		if v.Kind() == reflect.Pointer {
			prefix = "&"
		}
		return prefix + redactValue(name, v.Elem(), depth+1)
	case reflect.String:
		return redactString(v.String())
	case reflect.Map:
		type kv struct {
			k string
			v reflect.Value
		}
		var kvs []kv
		iter := v.MapRange()
		for iter.Next() {
			k := iter.Key()
			for k.Kind() == reflect.Interface && !k.IsNil() {
				k = k.Elem()
			}
			ks := fmt.Sprint(k)
			if k.Kind() == reflect.String {
				ks = k.String()
			}
			kvs = append(kvs, kv{ks, iter.Value()})
		}
		slices.SortFunc(kvs, func(a, b kv) int { return strings.Compare(a.k, b.k) })
		var b strings.Builder
		b.WriteString("{")
		for i, e := range kvs {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s: %s", e.k, redactValue(e.k, e.v, depth+1))
		}
		b.WriteString("}")
		return b.String()
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return fmt.Sprintf("[%d bytes]", v.Len())
		}
		var b strings.Builder
		b.WriteString("[")
		for i := range v.Len() {
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(redactValue(name, v.Index(i), depth+1))
		}
		b.WriteString("]")
		return b.String()
	case reflect.Struct:
		if v.CanInterface() {
			switch v.Interface().(type) {
			case fmt.Formatter, fmt.Stringer: // its own redaction, as s3.Options has
				return fmt.Sprint(v.Interface())
			}
		}
		var b strings.Builder
		b.WriteString("{")
		for i := range v.NumField() {
			if i > 0 {
				b.WriteString(" ")
			}
			f := v.Type().Field(i).Name
			fmt.Fprintf(&b, "%s:%s", f, redactValue(f, v.Field(i), depth+1))
		}
		b.WriteString("}")
		return b.String()
	case reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return v.Type().String()
	}
	return fmt.Sprint(v)
}

// redactString quotes s; a string that looks like a URL is shown without
// user information, without the values of secret parameters and without the
// pair after one (which may be a secret's tail), and without a fragment.
func redactString(s string) string {
	if !strings.Contains(s, "://") {
		return strconv.Quote(s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return `"(a URL that does not parse: not shown)"`
	}
	d := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, Opaque: u.Opaque}
	out := d.String()
	if u.User != nil {
		out = strings.Replace(out, "://", "://REDACTED@", 1)
	}
	if u.RawQuery != "" {
		var parts []string
		after := false
		for _, seg := range strings.FieldsFunc(u.RawQuery, func(r rune) bool { return r == '&' || r == ';' }) {
			rawName, _, _ := strings.Cut(seg, "=")
			name, err := url.QueryUnescape(rawName)
			if err != nil {
				name = rawName
			}
			switch {
			case after:
				parts = append(parts, "REDACTED")
				after = false
			case isSecretName(name):
				parts = append(parts, rawName+"=REDACTED")
				after = true
			default:
				parts = append(parts, seg)
			}
		}
		out += "?" + strings.Join(parts, "&")
	}
	if strings.Contains(s, "#") {
		out += "#REDACTED"
	}
	return strconv.Quote(out)
}
