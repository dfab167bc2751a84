package s3

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/blobcache/blobcache/driver"
	gcblob "gocloud.dev/blob"
)

// Replace implements [driver.Replacer]: a write with If-Match: etag, set on
// the s3blob writer's *transfermanager.UploadObjectInput through BeforeWrite
// (for multipart uploads the transfer manager puts it on
// CompleteMultipartUpload), with the expiry-class tag as Write sets it.
// opts.IfAbsent is ignored. It is one PutObject:
// S3 (and MinIO) answer 412 PreconditionFailed when the object changed, which
// is returned as ErrPreconditionFailed, and 404 NoSuchKey when it is gone,
// returned as ErrNotFound. A store that answered 412 for a missing object
// would make a deleted object look changed.
func (d *Driver) Replace(ctx context.Context, name string, body io.Reader, etag string, opts *driver.WriteOptions) error {
	if err := d.x.Check(ctx, "replace", name); err != nil {
		return err
	}
	if etag == "" {
		// An empty If-Match header would be ignored by the server, making the
		// write unconditional. No object has an empty ETag.
		return fmt.Errorf("s3: replace %q: %w: empty etag", name, driver.ErrPreconditionFailed)
	}
	wo := &driver.WriteOptions{ContentEncoding: opts.ContentEncoding, DeleteAfter: opts.DeleteAfter}
	tag := d.tagHook(opts.DeleteAfter)
	return d.x.Write(ctx, "replace", name, body, wo, func(asFunc func(any) bool) error {
		var in *transfermanager.UploadObjectInput
		if !asFunc(&in) || in == nil {
			return errors.New("s3: replace: the s3blob writer does not expose *transfermanager.UploadObjectInput")
		}
		in.IfMatch = aws.String(etag)
		in.IfNoneMatch = nil
		if tag != nil {
			return tag(asFunc)
		}
		return nil
	})
}

// readETag is the driver's [blob.Provider] ReadETag: the ETag of the
// GetObject response behind r.
func readETag(r *gcblob.Reader) string {
	var out s3.GetObjectOutput
	if r.As(&out) {
		return aws.ToString(out.ETag)
	}
	return ""
}
