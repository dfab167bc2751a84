package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/blobcache/blobcache/driver"
	gcblob "gocloud.dev/blob"
)

// S3Driver is the driver over a Go CDK bucket backed by s3blob. Besides the
// base interface (the embedded [*Driver]) it implements
// [driver.BatchDeleter] with S3 DeleteObjects and [driver.Replacer] with S3
// If-Match. Read fills in Attributes.ETag from the GetObject response. It is
// safe for concurrent use.
type S3Driver struct {
	*Driver
}

// Compile-time checks.
var (
	_ driver.Driver        = (*S3Driver)(nil)
	_ driver.BatchDeleter  = (*S3Driver)(nil)
	_ driver.Replacer      = (*S3Driver)(nil)
	_ driver.NameValidator = (*S3Driver)(nil)
)

// ErrNotS3 is returned by [NewS3] for a bucket that is not backed by s3blob.
var ErrNotS3 = errors.New("blob: bucket is not backed by s3blob")

// s3caps holds what the driver reaches past the Go CDK for.
type s3caps struct {
	client *s3.Client
}

// NewS3 returns an [*S3Driver] for b, which must be backed by s3blob
// (b.As(**s3.Client) succeeds); otherwise it returns [ErrNotS3]. It takes
// ownership of b only when it succeeds.
func NewS3(b *gcblob.Bucket, opts ...Option) (*S3Driver, error) {
	var client *s3.Client
	if !b.As(&client) || client == nil {
		return nil, ErrNotS3
	}
	d := NewBase(b, opts...)
	d.s3 = &s3caps{client: client}
	return &S3Driver{Driver: d}, nil
}

// Client returns the S3 client of the bucket.
func (d *S3Driver) Client() *s3.Client { return d.s3.client }

// errProbe aborts a read or listing before any request is made; see
// s3Target and s3KeyPrefix.
var errProbe = errors.New("blob: s3 key probe")

// s3KeyPrefix returns the S3 key prefix the Go CDK puts before every name of
// b: empty, or a Go CDK prefixed bucket's prefix as s3blob escapes it. It
// asks the bucket, through the BeforeList hook of a listing that the hook
// aborts, so no request is sent. err, when set, is why every name must be
// refused: the prefix is rewritten by s3blob (then the keys under it are
// not the names it lists), or it could not be found.
func s3KeyPrefix(b *gcblob.Bucket) (prefix string, err error) {
	_, _, lerr := b.ListPage(context.Background(), gcblob.FirstPageToken, 1, &gcblob.ListOptions{
		BeforeList: func(asFunc func(any) bool) error {
			var in *s3.ListObjectsV2Input
			if asFunc(&in) && in != nil {
				prefix = aws.ToString(in.Prefix)
				return errProbe
			}
			var legacy *s3.ListObjectsInput
			if asFunc(&legacy) && legacy != nil {
				prefix = aws.ToString(legacy.Prefix)
				return errProbe
			}
			return ErrNotS3
		},
	})
	if !errors.Is(lerr, errProbe) {
		return "", fmt.Errorf("the bucket's key prefix could not be found: %v", lerr)
	}
	// s3blob's escaping only ever adds escape sequences, and escapes every
	// sequence already there: a prefix holding one was rewritten.
	for i := range len(prefix) {
		if escapeSequenceAt(prefix, i) {
			return prefix, fmt.Errorf("the bucket's key prefix is rewritten by s3blob (it is stored as %q), so no name under it would be listed as written", prefix)
		}
	}
	return prefix, nil
}

// s3ListEncoding is what one List learns about the ListObjectsV2 responses
// behind a Go CDK ListPage (which may send more than one request to fill a
// page): whether the server url-encoded their keys.
type s3ListEncoding struct {
	legacy         bool // s3blob's legacy ListObjects: keys are not encoded
	encoded, plain int  // responses with and without EncodingType url
}

// beforeList is the Go CDK BeforeList hook: it asks for url-encoded keys
// (EncodingType=url on *s3.ListObjectsV2Input), so that no key, whatever
// bytes it holds, can make the XML response unreadable, and adds to the
// request's options a middleware that records the response's EncodingType.
// The legacy ListObjects that s3blob sends with UseLegacyList is left as
// is: the Go CDK derives its page marker from the last key, which would
// then be encoded.
func (l *s3ListEncoding) beforeList(asFunc func(any) bool) error {
	var in *s3.ListObjectsV2Input
	if asFunc(&in) && in != nil {
		var opts *[]func(*s3.Options)
		if !asFunc(&opts) || opts == nil {
			return errors.New("blob: list: the s3blob bucket does not expose the request options (*[]func(*s3.Options))")
		}
		in.EncodingType = types.EncodingTypeUrl
		*opts = append(*opts, l.record)
		return nil
	}
	var legacy *s3.ListObjectsInput
	if asFunc(&legacy) && legacy != nil {
		l.legacy = true
		return nil
	}
	return errors.New("blob: list: the s3blob bucket exposes neither *s3.ListObjectsV2Input nor *s3.ListObjectsInput")
}

// record adds the middleware that counts the responses by EncodingType. The
// Go CDK makes its requests in the goroutine of ListPage, one at a time.
func (l *s3ListEncoding) record(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("BlobcacheListEncoding",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if r, ok := out.Result.(*s3.ListObjectsV2Output); ok && r != nil {
					if r.EncodingType == types.EncodingTypeUrl {
						l.encoded++
					} else {
						l.plain++
					}
				}
				return out, md, err
			}), middleware.After)
	})
}

// s3ListedName returns the name of a listed object from the S3 object's own
// key (never the Go CDK's ListObject.Key, which s3blob made by applying
// HexUnescape to the key as the server sent it, that is, before our
// decoding), decoded when the server url-encoded it, without the bucket's
// key prefix. ok is false for a key that does not decode or does not start
// with the prefix: not an object of this driver. err is set when the Go CDK
// does not expose the S3 object.
func (d *Driver) s3ListedName(o *gcblob.ListObject, enc *s3ListEncoding) (name string, ok bool, err error) {
	var obj types.Object
	if !o.As(&obj) {
		return "", false, errors.New("the s3blob listing does not expose its *types.Object")
	}
	if obj.Key == nil {
		return "", false, nil
	}
	key := *obj.Key
	if enc.encoded > 0 {
		if key, ok = decodeListedKey(key); !ok {
			return "", false, nil
		}
	}
	if !strings.HasPrefix(key, d.rules.keyPrefix) {
		return "", false, nil
	}
	return key[len(d.rules.keyPrefix):], true, nil
}

// s3Target returns the S3 bucket and key the Go CDK uses for name: s3blob
// escapes some keys, and a Go CDK prefixed bucket adds its prefix. It asks
// the bucket itself, through the BeforeRead hook of a read that the hook then
// aborts, so no request is sent.
func (d *Driver) s3Target(ctx context.Context, name string) (bucket, key string, err error) {
	var in s3.GetObjectInput
	r, err := d.b.NewRangeReader(ctx, name, 0, -1, &gcblob.ReaderOptions{
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
		return "", "", fmt.Errorf("blob: s3 key probe for %q did not stop", name)
	}
	if !errors.Is(err, errProbe) {
		return "", "", err
	}
	key = aws.ToString(in.Key)
	if want := d.rules.keyPrefix + name; key != want {
		// The name was validated; this is the Go CDK itself disagreeing.
		return "", "", fmt.Errorf("%w %q: s3blob stores it under the key %q, not %q", driver.ErrInvalidName, name, key, want)
	}
	return aws.ToString(in.Bucket), key, nil
}

// deleteOne is Delete on S3: one DeleteObject, no existence check (the Go
// CDK's s3blob Delete sends a HEAD first).
func (c *s3caps) deleteOne(ctx context.Context, d *Driver, name string) error {
	bucket, key, err := d.s3Target(ctx, name)
	if err != nil {
		return d.mapErr(ctx, "delete", name, err)
	}
	_, err = c.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		if s3Code(err) == "NoSuchKey" && ctx.Err() == nil {
			return nil
		}
		return s3Err(ctx, "delete", name, err)
	}
	return nil
}

// DeleteBatch implements [driver.BatchDeleter] with S3 DeleteObjects in quiet
// mode, one request per [driver.MaxBatchDelete] names (more names than that
// are sent in several requests). Duplicate names are sent once. Keys S3
// reports as not deleted are returned in a *[driver.BatchDeleteError]; a
// failed request returns its error and stops.
func (d *S3Driver) DeleteBatch(ctx context.Context, names []string) error {
	if err := d.check(ctx, "delete batch", fmt.Sprintf("%d names", len(names))); err != nil {
		return err
	}
	for _, name := range names {
		if err := d.rules.check(name, false); err != nil {
			// Nothing is deleted: a batch holding a name the store would
			// rewrite is a caller's bug, not a partial failure.
			return fmt.Errorf("blob: delete batch: %w", err)
		}
	}
	failed := map[string]error{}
	seen := make(map[string]bool, len(names))
	var bucket string
	objs := make([]types.ObjectIdentifier, 0, min(len(names), driver.MaxBatchDelete))
	keyName := make(map[string]string, cap(objs))
	flush := func() error {
		if len(objs) == 0 {
			return nil
		}
		out, err := d.s3.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(bucket),
			Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return s3Err(ctx, "delete batch", fmt.Sprintf("%d names", len(objs)), err)
		}
		for _, e := range out.Errors {
			key := aws.ToString(e.Key)
			name, ok := keyName[key]
			if !ok {
				name = key
			}
			if aws.ToString(e.Code) == "NoSuchKey" {
				continue
			}
			failed[name] = fmt.Errorf("s3 DeleteObjects: %s: %s", aws.ToString(e.Code), aws.ToString(e.Message))
		}
		objs = objs[:0]
		clear(keyName)
		return nil
	}
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		b, key, err := d.s3Target(ctx, name)
		if err != nil {
			return d.mapErr(ctx, "delete batch", name, err)
		}
		bucket = b
		objs = append(objs, types.ObjectIdentifier{Key: aws.String(key)})
		keyName[key] = name
		if len(objs) == driver.MaxBatchDelete {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if len(failed) > 0 {
		return &driver.BatchDeleteError{Failed: failed}
	}
	return nil
}

// Replace implements [driver.Replacer]: a write with If-Match: etag, set on
// the s3blob writer's *transfermanager.UploadObjectInput through BeforeWrite
// (for multipart uploads the transfer manager puts it on
// CompleteMultipartUpload). opts.IfAbsent is ignored. It is one PutObject:
// S3 (and MinIO) answer 412 PreconditionFailed when the object changed, which
// is returned as ErrPreconditionFailed, and 404 NoSuchKey when it is gone,
// returned as ErrNotFound. A store that answered 412 for a missing object
// would make a deleted object look changed.
func (d *S3Driver) Replace(ctx context.Context, name string, body io.Reader, etag string, opts *driver.WriteOptions) error {
	if etag == "" {
		// An empty If-Match header would be ignored by the server, making the
		// write unconditional. No object has an empty ETag.
		return fmt.Errorf("blob: replace %q: %w: empty etag", name, driver.ErrPreconditionFailed)
	}
	wo := &driver.WriteOptions{ContentEncoding: opts.ContentEncoding}
	err := d.write(ctx, "replace", name, body, wo, func(asFunc func(any) bool) error {
		var in *transfermanager.UploadObjectInput
		if !asFunc(&in) || in == nil {
			return errors.New("blob: replace: the s3blob writer does not expose *transfermanager.UploadObjectInput")
		}
		in.IfMatch = aws.String(etag)
		in.IfNoneMatch = nil
		return nil
	})
	return err
}

// s3ReaderETag returns the ETag of the GetObject response behind r.
func s3ReaderETag(r *gcblob.Reader) string {
	var out s3.GetObjectOutput
	if r.As(&out) {
		return aws.ToString(out.ETag)
	}
	return ""
}

// s3Code returns the S3 error code of err, or "".
func s3Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// s3Err wraps an error of a direct S3 call, with the driver's kinds.
func s3Err(ctx context.Context, op, name string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("blob: %s %q: %w (%w)", op, name, cerr, err)
	}
	switch s3Code(err) {
	case "NoSuchKey", "NotFound":
		return fmt.Errorf("blob: %s %q: %w: %w", op, name, driver.ErrNotFound, err)
	case "PreconditionFailed", "ConditionalRequestConflict":
		return fmt.Errorf("blob: %s %q: %w: %w", op, name, driver.ErrPreconditionFailed, err)
	}
	return fmt.Errorf("blob: %s %q: %w", op, name, err)
}
