package gcs

import (
	"context"
	"fmt"
	"strconv"

	"github.com/blobcache/blobcache/driver"
)

var _ driver.ReadDeleter = (*Driver)(nil)

// ReadDelete implements [driver.ReadDeleter]: a read (one download, which
// returns the object's generation), then an objects.delete of that
// generation only, which GCS refuses with 404 once the object has another
// generation or none; then the driver reads again (see the blob package's
// Extension.ReadDelete, which bounds the rounds). Two requests, as the
// cache's fallback (a read, then a plain delete) is, but atomic: a write
// landing between the two is never deleted unseen. Deleting a generation
// removes it outright, also in a bucket with object versioning, where a
// plain delete would keep it as a noncurrent version.
func (d *Driver) ReadDelete(ctx context.Context, name string, length int64) ([]byte, driver.Attributes, error) {
	return d.x.ReadDelete(ctx, name, length, d.Read, d.deleteGeneration)
}

// deleteGeneration deletes generation etag (decimal, as Read returns it) of
// the object key.
func (d *Driver) deleteGeneration(ctx context.Context, key, etag string) error {
	gen, err := strconv.ParseInt(etag, 10, 64)
	if err != nil || gen <= 0 {
		return fmt.Errorf("etag %s is not a generation", quote(etag))
	}
	return d.client.Bucket(d.bucket).Object(key).Generation(gen).Delete(ctx)
}
