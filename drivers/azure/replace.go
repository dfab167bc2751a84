package azure

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	azblobblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/blobcache/blobcache/driver"
)

// Replace implements [driver.Replacer]: a write with If-Match: etag, set on
// the azureblob writer's *azblob.UploadStreamOptions through BeforeWrite
// (for a blob of several blocks Azure checks it on Put Block List). opts.IfAbsent
// is ignored. It is one Put Blob. Azure answers 412 ConditionNotMet both
// when the blob changed and when it is gone, so a refused Replace costs one
// Get Blob Properties more: a blob that no longer exists is ErrNotFound, any
// other refusal ErrPreconditionFailed.
func (d *Driver) Replace(ctx context.Context, name string, body io.Reader, etag string, opts *driver.WriteOptions) error {
	if err := d.x.Check(ctx, "replace", name); err != nil {
		return err
	}
	if etag == "" {
		// An empty If-Match header would be ignored, making the write
		// unconditional. No blob has an empty ETag.
		return fmt.Errorf("azure: replace %q: %w: empty etag", name, driver.ErrPreconditionFailed)
	}
	wo := &driver.WriteOptions{ContentEncoding: opts.ContentEncoding}
	err := d.x.Write(ctx, "replace", name, body, wo, func(asFunc func(any) bool) error {
		var uo *azblob.UploadStreamOptions
		if !asFunc(&uo) || uo == nil {
			return errors.New("azure: replace: the azureblob writer does not expose *azblob.UploadStreamOptions")
		}
		tag := azcore.ETag(etag)
		uo.AccessConditions = &azblob.AccessConditions{
			ModifiedAccessConditions: &azblobblob.ModifiedAccessConditions{IfMatch: &tag},
		}
		return nil
	})
	if err == nil || !errors.Is(err, driver.ErrPreconditionFailed) || ctx.Err() != nil {
		return err
	}
	// Changed or gone? One look tells.
	if _, perr := d.client.NewBlobClient(name).GetProperties(ctx, nil); bloberror.HasCode(perr, bloberror.BlobNotFound) {
		return d.x.Err(ctx, "replace", name, perr)
	}
	return err
}
