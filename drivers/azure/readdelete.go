package azure

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azblobblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/blobcache/blobcache/driver"
)

var _ driver.ReadDeleter = (*Driver)(nil)

// ReadDelete implements [driver.ReadDeleter]: a read (one Get Blob, which
// returns the blob's ETag), then a Delete Blob with If-Match: that ETag,
// which Azure refuses with 412 ConditionNotMet once the blob changed (404
// once it is gone); then the driver reads again (see the blob package's
// Extension.ReadDelete, which bounds the rounds). Two requests, as the
// cache's fallback (a read, then a plain delete) is, but atomic: a write
// landing between the two is never deleted unseen.
func (d *Driver) ReadDelete(ctx context.Context, name string, length int64) ([]byte, driver.Attributes, error) {
	return d.x.ReadDelete(ctx, name, length, d.Read, d.deleteIfMatch)
}

// deleteIfMatch deletes the blob key while its ETag is etag.
func (d *Driver) deleteIfMatch(ctx context.Context, key, etag string) error {
	tag := azcore.ETag(etag)
	_, err := d.client.NewBlobClient(key).Delete(ctx, &azblobblob.DeleteOptions{
		AccessConditions: &azblobblob.AccessConditions{
			ModifiedAccessConditions: &azblobblob.ModifiedAccessConditions{IfMatch: &tag},
		},
	})
	return err
}
