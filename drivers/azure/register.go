package azure

import (
	"context"
	"net/url"
	"strings"

	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/internal/query"
)

// init registers the azblob scheme: cache URLs azblob://container?... open
// with [OpenURL].
func init() {
	driver.Register(driver.Scheme{
		Name: Scheme,
		Open: func(ctx context.Context, u *url.URL) (driver.Driver, error) {
			d, err := OpenURL(ctx, u)
			if err != nil {
				return nil, err
			}
			return d, nil
		},
		Secrets:      []string{"key", "account_key"},
		ValidateName: Escaping.ValidateName,
		Describe:     describe,
	})
}

// describe renders an azblob:// URL for logs as "azblob://container",
// followed by "?endpoint=..." (scheme, host and path only) or
// "?account=...&domain=..." where the URL names them: nothing else of the
// query, so never the key, is shown.
func describe(u *url.URL) string {
	out := Scheme + "://" + u.Hostname()
	qs, err := query.Parse(u.RawQuery, "URL parameter", isSecretOption)
	if err != nil {
		return out
	}
	var parts []string
	for _, p := range qs {
		switch urlParams[strings.ToLower(p.Name)] {
		case "endpoint":
			if e, err := url.Parse(p.Value); err == nil && e.Host != "" {
				parts = append(parts, "endpoint="+(&url.URL{Scheme: e.Scheme, Host: e.Host, Path: e.Path}).String())
			}
		case "account":
			if isAccount(p.Value) {
				parts = append(parts, "account="+p.Value)
			}
		case "domain":
			if isDomain(p.Value) {
				parts = append(parts, "domain="+p.Value)
			}
		}
	}
	if len(parts) > 0 {
		out += "?" + strings.Join(parts, "&")
	}
	return out
}
