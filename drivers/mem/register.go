package mem

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"

	"github.com/blobcache/blobcache/driver"
)

// The mem driver opens mem://[name] URLs and Django's LocMemCache
// configurations.
func init() {
	driver.Register(driver.Scheme{
		Name:       "mem",
		Open:       openURL,
		Backends:   []string{"mem", "memory", "locmem", ".locmemcache"},
		FromConfig: fromConfig,
	})
}

// openURL opens mem://name (a store shared by name in this process) or
// mem:// (a private store). The driver takes no parameters and no path.
// Opening touches no store, so the context is not consulted.
func openURL(_ context.Context, u *url.URL) (driver.Driver, error) {
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			return nil, fmt.Errorf("mem: %w: URL query: %v", driver.ErrInvalidOption, err)
		}
		if len(q) > 0 { // the first by name, so the error does not depend on map order
			return nil, fmt.Errorf("mem: %w", &driver.UnknownOptionError{Name: slices.Sorted(maps.Keys(q))[0]})
		}
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("mem: %w: URL has a path %q: the store is the host (mem://name) and the folder the location parameter", driver.ErrInvalidOption, u.Path)
	}
	return Open(u.Host), nil
}

// fromConfig maps a Django LocMemCache configuration to a mem URL: its
// LOCATION names the shared store (none: a private store).
func fromConfig(location *driver.ConfigOption, opts []driver.ConfigOption) (*url.URL, []driver.ConfigOption, error) {
	name := ""
	if location != nil {
		name = location.Value
	}
	if u, err := url.Parse((&url.URL{Scheme: "mem", Host: name}).String()); err != nil || u.Host != name {
		return nil, nil, fmt.Errorf("%w: location: %q cannot name a memory store (use letters, digits, '-', '_' and '.')", driver.ErrInvalidOption, name)
	}
	return &url.URL{Scheme: "mem", Host: name}, opts, nil
}
