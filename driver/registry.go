package driver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// ErrInvalidOption is the kind of every error about a bad URL parameter or
// configuration option: unknown, malformed, out of range, or in conflict
// with another. A driver's opener wraps it (an [*UnknownOptionError] already
// is one) and names the option in the message, never showing a secret's
// value. Package cache's ErrInvalidOption is this same value.
var ErrInvalidOption = errors.New("invalid option")

// Scheme says how to open a driver from a cache URL and from a Django-style
// configuration. A driver package registers one with [Register] in an init
// function, so that importing the package (for its side effect only: import
// _ "...") makes its URLs openable with cache.Open, cache.OpenConfig and the
// blobcache command. The cache takes its own parameters (location,
// max_entries, timeout, ...) out of the URL first; everything else about the
// URL is the driver's.
type Scheme struct {
	// Name is the URL scheme, such as "s3": a lower-case ASCII letter, then
	// lower-case letters, digits, '+', '-' or '.'. URLs match it without
	// case.
	Name string

	// Open opens the driver a URL names. It may assume:
	//   - u.Scheme is Name, in lower case;
	//   - u has no user information, no fragment and no opaque part;
	//   - u.RawQuery holds only the driver's own parameters, in the order
	//     given, each pair well formed (a non-empty name, "=", a non-empty
	//     value, valid escapes, no ';'); the cache's own options are gone.
	// Open must check every parameter, and the host and path, before it
	// touches the store, so that a bad one leaves the store untouched (no
	// directory made, no request sent). A parameter it does not take is an
	// [*UnknownOptionError] (listing Known for suggestions); a bad value or
	// combination is an error wrapping [ErrInvalidOption] that names the
	// parameter. No error shows the value of a parameter in Secrets.
	Open func(ctx context.Context, u *url.URL) (Driver, error)

	// Secrets are the driver's parameters (lower case) whose values are
	// secrets: never shown in an error, a description or a log, and neither
	// is the name of the pair right after one (which is the secret's tail
	// when the secret holds an unescaped '&').
	Secrets []string

	// ValidateName, when set, refuses every name that any driver this scheme
	// opens would refuse ([NameValidator]): it returns nil or an error
	// wrapping [ErrInvalidName]. The cache calls it on its location before
	// Open, so a location the store would rewrite fails before anything is
	// created or sent. Without it, the location is checked only after Open
	// (when the driver is a NameValidator).
	ValidateName func(name string) error

	// Describe, when set, renders the store u names for logs, errors and
	// the cache's String, with no secret and no credential: for instance
	// "s3://bucket?endpoint=http://127.0.0.1:9000". Without it the
	// description is scheme://host/path. The cache adds its own options.
	Describe func(u *url.URL) string

	// Backends are the Django BACKEND values that name this driver in a
	// configuration (cache.Config), matched without case: a value as is
	// ("s3"), a suffix when it starts with '.' (".filebasedcache" matches
	// "django.core.cache.backends.filebased.FileBasedCache"), or a prefix
	// when it ends with '.' ("s3cache." matches "s3cache.AmazonS3Cache").
	// Backends without FromConfig are ignored.
	Backends []string

	// FromConfig builds the cache URL of a configuration whose BACKEND is
	// one of Backends. location is the configuration's LOCATION (nil when
	// absent) and opts its options, cache options included, in a stable
	// order. It returns the URL's scheme, host and path, and the options
	// that become its query: opts without those it used, plus location
	// when LOCATION means the cache's folder (Django's S3 cache) rather
	// than the store (a directory, a memory store's name). Errors wrap
	// [ErrInvalidOption] and name the option by its Label.
	FromConfig func(location *ConfigOption, opts []ConfigOption) (*url.URL, []ConfigOption, error)
}

// ConfigOption is one option of a Django-style configuration, as it
// becomes a URL parameter.
type ConfigOption struct {
	// Label says where it was given, for errors: "LOCATION",
	// "OPTIONS.bucket_name", "url's \"region\"".
	Label string
	// Name is the option's name as written ("bucket_name", "LOCATION").
	Name string
	// Value is its value as a URL parameter value.
	Value string
}

var (
	registryMu sync.RWMutex
	registry   = map[string]Scheme{}
)

// Register makes a scheme available to cache.Open, cache.OpenConfig and the
// blobcache command. It panics, as database/sql.Register does, when the
// scheme is invalid (a bad name, no Open), already registered, or claims a
// Django backend value another scheme claims: two drivers for one name is a
// program's bug, not a runtime condition.
func Register(s Scheme) {
	if err := checkSchemeName(s.Name); err != nil {
		panic("driver.Register: " + err.Error())
	}
	if s.Open == nil {
		panic(fmt.Sprintf("driver.Register: scheme %q has no Open", s.Name))
	}
	s.Secrets = lowerAll(s.Secrets)
	s.Backends = lowerAll(s.Backends)
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[s.Name]; dup {
		panic(fmt.Sprintf("driver.Register: scheme %q registered twice", s.Name))
	}
	if s.FromConfig != nil {
		for _, o := range registry {
			if o.FromConfig == nil {
				continue
			}
			for _, b := range s.Backends {
				if slices.Contains(o.Backends, b) {
					panic(fmt.Sprintf("driver.Register: backend %q of scheme %q is already scheme %q's", b, s.Name, o.Name))
				}
			}
		}
	}
	registry[s.Name] = s
}

// Lookup returns the registered scheme called name (any case).
func Lookup(name string) (Scheme, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	s, ok := registry[strings.ToLower(name)]
	return s, ok
}

// Schemes returns the names of the registered schemes, sorted.
func Schemes() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return slices.Sorted(maps.Keys(registry))
}

// LookupBackend returns the registered scheme whose Backends match a Django
// BACKEND value (see [Scheme.Backends]); of several, an exact match wins,
// then the longest pattern.
func LookupBackend(backend string) (Scheme, bool) {
	b := strings.ToLower(backend)
	registryMu.RLock()
	defer registryMu.RUnlock()
	var best Scheme
	bestLen, found := -1, false
	for _, name := range slices.Sorted(maps.Keys(registry)) {
		s := registry[name]
		if s.FromConfig == nil {
			continue
		}
		for _, p := range s.Backends {
			n := -1
			switch {
			case p == b:
				n = len(p) + 1<<20 // exact beats any pattern
			case len(p) > 1 && strings.HasPrefix(p, ".") && strings.HasSuffix(b, p):
				n = len(p)
			case len(p) > 1 && strings.HasSuffix(p, ".") && strings.HasPrefix(b, p):
				n = len(p)
			}
			if n > bestLen {
				best, bestLen, found = s, n, true
			}
		}
	}
	return best, found
}

// checkSchemeName enforces RFC 3986's scheme syntax, in lower case.
func checkSchemeName(name string) error {
	if name == "" {
		return errors.New("empty scheme name")
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z':
		case i > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'):
		default:
			return fmt.Errorf("scheme name %q: want a lower-case letter, then lower-case letters, digits, '+', '-' or '.'", name)
		}
	}
	return nil
}

func lowerAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}
