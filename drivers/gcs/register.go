package gcs

import (
	"context"
	"net/url"
	"strings"

	"github.com/blobcache/blobcache/driver"
	blobdrv "github.com/blobcache/blobcache/drivers/blob"
)

// init registers the gs scheme: cache URLs gs://bucket?... open with
// [OpenURL].
func init() {
	driver.Register(driver.Scheme{
		Name: "gs",
		Open: func(ctx context.Context, u *url.URL) (driver.Driver, error) {
			d, err := OpenURL(ctx, u)
			if err != nil {
				return nil, err
			}
			return d, nil
		},
		ValidateName: blobdrv.EscapingGCS.ValidateName,
		Describe:     describe,
	})
}

// describe renders a gs:// URL for logs as "gs://bucket", followed by
// "?endpoint=..." (scheme and host only) when it names an endpoint.
func describe(u *url.URL) string {
	out := "gs://" + u.Host
	if pairs, err := parseQueryLoose(u.RawQuery); err == nil {
		for name, value := range pairs {
			if strings.EqualFold(name, "endpoint") {
				if e, err := url.Parse(value); err == nil && e.Host != "" {
					out += "?endpoint=" + (&url.URL{Scheme: e.Scheme, Host: e.Host}).String()
				}
			}
		}
	}
	return out
}

// parseQueryLoose returns the query's pairs by name (the last of each).
func parseQueryLoose(raw string) (map[string]string, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(q))
	for k, vs := range q {
		if len(vs) > 0 {
			m[k] = vs[len(vs)-1]
		}
	}
	return m, nil
}
