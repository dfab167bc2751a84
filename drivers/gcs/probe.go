package gcs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"cloud.google.com/go/storage"
	gcblob "gocloud.dev/blob"
)

// errProbe aborts a read before any request is made; see probeBucket.
var errProbe = errors.New("gcs: key probe")

// probeName is the name probeBucket reads: no escaping rule touches it.
const probeName = "blobcache-probe"

// probeBucket returns the GCS bucket of b and the object-name prefix the
// Go CDK puts before every name (a prefixed bucket's prefix), by asking
// the bucket itself through the BeforeRead hook of a read that the hook
// aborts, so no request is sent. err, when set, is why the prefix could
// not be found (then every name is refused).
func probeBucket(b *gcblob.Bucket) (bucket, prefix string, err error) {
	var object string
	r, rerr := b.NewRangeReader(context.Background(), probeName, 0, -1, &gcblob.ReaderOptions{
		BeforeRead: func(asFunc func(any) bool) error {
			var objp **storage.ObjectHandle
			if !asFunc(&objp) || objp == nil || *objp == nil {
				return ErrNotGCS
			}
			bucket, object = (*objp).BucketName(), (*objp).ObjectName()
			return errProbe
		},
	})
	if rerr == nil {
		r.Close()
		return "", "", errors.New("the bucket's key prefix could not be found: the probe read did not stop")
	}
	if !errors.Is(rerr, errProbe) {
		return "", "", fmt.Errorf("the bucket's key prefix could not be found: %v", rerr)
	}
	prefix, ok := strings.CutSuffix(object, probeName)
	if !ok {
		return bucket, "", fmt.Errorf("the bucket's key prefix could not be found: the probe %q is stored as %q", probeName, object)
	}
	return bucket, prefix, nil
}
