package customdriver

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/blobcache/blobcache/driver"
)

// Scheme is the URL scheme this package registers: importing it makes
//
//	slowmem://name?latency=20ms&jitter=5ms&location=app&max_entries=1000
//
// open a [Driver] on the store called name (every URL with that name in
// this process shares it; no name is a fresh store of its own), with
// Options.Latency and Options.Jitter from the parameters of the same names
// (Go durations, from 0 to 1m). The cache's own parameters (location,
// max_entries, ...) never reach the driver. A Django-style configuration
// opens it too: {"backend": "slowmem", "location": "name", "options":
// {"latency": "20ms"}}.
const Scheme = "slowmem"

// Registering in init is all a driver does to be opened by URL: the cache
// looks the scheme up, takes its own parameters out of the query, and calls
// Open with the rest.
func init() {
	driver.Register(driver.Scheme{
		Name:       Scheme,
		Open:       openURL,
		Backends:   []string{Scheme, "customdriver."},
		FromConfig: fromConfig,
	})
}

var (
	namedMu sync.Mutex
	named   = map[string]*Store{}
)

// openURL checks every parameter before it makes or finds a store, as the
// registry's contract asks: an unknown parameter is an UnknownOptionError
// listing the known ones (the cache turns it into a suggestion), a bad
// value an error wrapping driver.ErrInvalidOption that names it.
func openURL(_ context.Context, u *url.URL) (driver.Driver, error) {
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("customdriver: %w: URL path %q: the store is the host (%s://name)", driver.ErrInvalidOption, u.Path, Scheme)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("customdriver: %w: URL query: %v", driver.ErrInvalidOption, err)
	}
	var opts Options
	for _, name := range slices.Sorted(maps.Keys(q)) { // in order: errors do not depend on map order
		values := q[name]
		var dst *time.Duration
		switch strings.ToLower(name) {
		case "latency":
			dst = &opts.Latency
		case "jitter":
			dst = &opts.Jitter
		default:
			return nil, fmt.Errorf("customdriver: %w", &driver.UnknownOptionError{Name: name, Known: []string{"latency", "jitter"}})
		}
		if len(values) != 1 {
			return nil, fmt.Errorf("customdriver: %w: %s given twice", driver.ErrInvalidOption, name)
		}
		d, err := time.ParseDuration(values[0])
		if err != nil || d < 0 || d > time.Minute {
			return nil, fmt.Errorf("customdriver: %w: %s: %q is not a duration from 0 to 1m", driver.ErrInvalidOption, name, values[0])
		}
		*dst = d
	}
	if u.Host == "" {
		return New(NewStore(), opts), nil
	}
	namedMu.Lock()
	defer namedMu.Unlock()
	s, ok := named[u.Host]
	if !ok {
		s = NewStore()
		named[u.Host] = s
	}
	return New(s, opts), nil
}

// fromConfig maps a configuration to a URL: LOCATION names the store, and
// every option (the cache's and latency, jitter) becomes a parameter.
func fromConfig(location *driver.ConfigOption, opts []driver.ConfigOption) (*url.URL, []driver.ConfigOption, error) {
	u := &url.URL{Scheme: Scheme}
	if location != nil {
		u.Host = location.Value
		if p, err := url.Parse(u.String()); err != nil || p.Host != location.Value {
			return nil, nil, fmt.Errorf("%w: %s: %q cannot name a store", driver.ErrInvalidOption, location.Label, location.Value)
		}
	}
	return u, opts, nil
}
