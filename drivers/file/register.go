package file

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/blobcache/blobcache/driver"
)

// The file driver opens file:///abs/dir URLs and Django's FileBasedCache
// configurations.
func init() {
	driver.Register(driver.Scheme{
		Name: "file",
		Open: func(ctx context.Context, u *url.URL) (driver.Driver, error) {
			return OpenURL(ctx, u)
		},
		Backends:   []string{"file", "filebased", ".filebasedcache"},
		FromConfig: fromConfig,
	})
}

// fromConfig maps a Django FileBasedCache configuration to a file URL: its
// LOCATION is the directory's absolute path (not a folder in the store),
// and the options are the cache's.
func fromConfig(location *driver.ConfigOption, opts []driver.ConfigOption) (*url.URL, []driver.ConfigOption, error) {
	dir := ""
	if location != nil {
		dir = location.Value
	}
	if !strings.HasPrefix(dir, "/") {
		return nil, nil, fmt.Errorf("%w: location: the file backend needs the directory's absolute path, got %q", driver.ErrInvalidOption, dir)
	}
	return &url.URL{Scheme: "file", Path: dir}, opts, nil
}
