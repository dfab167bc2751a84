package s3

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/blobcache/blobcache/driver"
	gcblob "gocloud.dev/blob"
)

// errProbe aborts a read or listing before any request is made; see
// probeBucket and target.
var errProbe = errors.New("s3: key probe")

// probeBucket returns the S3 bucket of b and the key prefix the Go CDK puts
// before every name: empty, or a Go CDK prefixed bucket's prefix as s3blob
// escapes it. It asks the bucket, through the BeforeList hook of a listing
// that the hook aborts, so no request is sent. err, when set, is why the
// prefix could not be found (then every name is refused).
func probeBucket(b *gcblob.Bucket) (bucket, prefix string, err error) {
	_, _, lerr := b.ListPage(context.Background(), gcblob.FirstPageToken, 1, &gcblob.ListOptions{
		BeforeList: func(asFunc func(any) bool) error {
			var in *s3.ListObjectsV2Input
			if asFunc(&in) && in != nil {
				bucket, prefix = aws.ToString(in.Bucket), aws.ToString(in.Prefix)
				return errProbe
			}
			var legacy *s3.ListObjectsInput
			if asFunc(&legacy) && legacy != nil {
				bucket, prefix = aws.ToString(legacy.Bucket), aws.ToString(legacy.Prefix)
				return errProbe
			}
			return ErrNotS3
		},
	})
	if !errors.Is(lerr, errProbe) {
		return "", "", fmt.Errorf("the bucket's key prefix could not be found: %v", lerr)
	}
	return bucket, prefix, nil
}

// target returns the S3 bucket and key the Go CDK uses for name: s3blob
// escapes some keys, and a Go CDK prefixed bucket adds its prefix. It asks
// the bucket itself, through the BeforeRead hook of a read that the hook then
// aborts, so no request is sent. name is one the driver accepts.
func (d *Driver) target(ctx context.Context, name string) (bucket, key string, err error) {
	var in s3.GetObjectInput
	r, err := d.Driver.Bucket().NewRangeReader(ctx, name, 0, -1, &gcblob.ReaderOptions{
		BeforeRead: func(asFunc func(any) bool) error {
			var p *s3.GetObjectInput
			if !asFunc(&p) || p == nil {
				return ErrNotS3
			}
			in = *p
			return errProbe
		},
	})
	if err == nil {
		r.Close()
		return "", "", fmt.Errorf("key probe for %q did not stop", name)
	}
	if !errors.Is(err, errProbe) {
		return "", "", err
	}
	key = aws.ToString(in.Key)
	if want := d.keyPrefix + name; key != want {
		// The name was validated; this is the Go CDK itself disagreeing.
		return "", "", fmt.Errorf("%w %q: s3blob stores it under the key %q, not %q", driver.ErrInvalidName, name, key, want)
	}
	return aws.ToString(in.Bucket), key, nil
}
