package s3

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/blobcache/blobcache/driver"
	blobdrv "github.com/blobcache/blobcache/drivers/blob"
)

// init registers the s3 scheme: cache URLs s3://bucket?... open with
// [OpenURL], and Django configurations whose BACKEND is "s3" or
// django-s3-cache's "s3cache.AmazonS3Cache" become such URLs.
func init() {
	driver.Register(driver.Scheme{
		Name: "s3",
		Open: func(ctx context.Context, u *url.URL) (driver.Driver, error) {
			d, err := OpenURL(ctx, u)
			if err != nil {
				return nil, err
			}
			return d, nil
		},
		Secrets:      []string{"secret_key", "secret_access_key"},
		ValidateName: blobdrv.EscapingS3.ValidateName,
		Describe:     describe,
		Backends:     []string{"s3", "s3cache."},
		FromConfig:   fromConfig,
	})
}

// describe renders an s3:// URL for logs as "s3://bucket", followed by
// "?endpoint=..." (scheme, host and path only) when it names an
// endpoint: nothing else of the query, so no credential, is shown.
func describe(u *url.URL) string {
	bucket := u.Host
	endpoint := ""
	if pairs, err := parseQuery(u.RawQuery); err == nil {
		for _, p := range pairs {
			switch urlParams[strings.ToLower(p.name)] {
			case "bucket_name":
				if bucket == "" {
					bucket = p.value
				}
			case "endpoint":
				if e, err := url.Parse(p.value); err == nil && e.Host != "" {
					endpoint = (&url.URL{Scheme: e.Scheme, Host: e.Host, Path: e.Path}).String()
				}
			}
		}
	}
	out := "s3://" + bucket
	if endpoint != "" {
		out += "?endpoint=" + endpoint
	}
	return out
}

// fromConfig builds the s3:// URL of a Django configuration: the bucket is
// OPTIONS' bucket_name (alias storage_bucket_name, given once), and
// LOCATION, when given, is the cache's folder in the bucket (as in
// django-s3-cache), returned as the location option.
func fromConfig(location *driver.ConfigOption, opts []driver.ConfigOption) (*url.URL, []driver.ConfigOption, error) {
	var bucket *driver.ConfigOption
	rest := make([]driver.ConfigOption, 0, len(opts)+1)
	for i, o := range opts {
		if ln := strings.ToLower(o.Name); ln != "bucket_name" && ln != "storage_bucket_name" {
			rest = append(rest, o)
			continue
		}
		if bucket != nil {
			return nil, nil, fmt.Errorf("%w: bucket_name given twice (as %s and %s)", driver.ErrInvalidOption, bucket.Label, o.Label)
		}
		bucket = &opts[i]
	}
	if bucket == nil || bucket.Value == "" {
		return nil, nil, fmt.Errorf("%w: bucket_name: missing for the s3 backend", driver.ErrInvalidOption)
	}
	if !isURLHost(bucket.Value) {
		return nil, nil, fmt.Errorf("%w: bucket_name: %q is not a bucket name", driver.ErrInvalidOption, bucket.Value)
	}
	if location != nil {
		rest = append(rest, driver.ConfigOption{Label: location.Label, Name: "location", Value: location.Value})
	}
	return &url.URL{Scheme: "s3", Host: bucket.Value}, rest, nil
}

// isURLHost reports whether name survives as the host of an s3:// URL.
func isURLHost(name string) bool {
	u, err := url.Parse((&url.URL{Scheme: "s3", Host: name}).String())
	return err == nil && u.Host == name
}
