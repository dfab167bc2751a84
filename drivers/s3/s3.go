// Package s3 is the blobcache driver for Amazon S3 and S3-compatible servers
// such as MinIO: Go CDK's s3blob (AWS SDK v2) through package
// github.com/blobcache/blobcache/drivers/blob, plus what only S3 has: canned
// ACLs and storage classes on every write, batch deletes (DeleteObjects),
// conditional writes (If-None-Match: * for IfAbsent, If-Match for Replace),
// url-encoded listings and bucket creation. Importing the package registers
// the URL scheme s3 ([OpenURL]) and the Django backends "s3" and
// "s3cache.*" (django-s3-cache's s3cache.AmazonS3Cache) with package driver.
//
// A [*Driver] implements [driver.Driver], [driver.BatchDeleter],
// [driver.Replacer] and [driver.NameValidator]. It embeds the generic
// [*blob.Driver], to which it gives, through [blob.Provider], what only the
// AWS SDK can do: the ETag of a read, a one-request delete, the listing
// hook below, the mapping of S3's error codes to the driver's kinds (404
// NoSuchKey, 412 PreconditionFailed, 409 ConditionalRequestConflict, 416
// InvalidRange) and the MinIO listing workaround; DeleteBatch and Replace
// are its own.
//
// # Names
//
// A name is stored under exactly that key, and listed as exactly that name,
// or refused with [driver.ErrInvalidName] naming the rule. s3blob escapes
// control characters, the "/" of "../" and the start of every "__0x<hex>__"
// sequence (which it would read back as one character when listing), so
// names holding "../" (such as "a../b") or such a sequence (such as
// "x__0x2f__y" or "__0x41__") are refused, and so are listing prefixes that
// s3blob would rewrite; a cache location such as "a.." fails at Open (and
// before it, through the registered scheme's ValidateName). Every other
// valid name, "%", "+", " ", "?", "#", `\` and non-ASCII included, is kept
// as given. A Go CDK prefixed bucket given to [New] has its prefix counted
// as part of every name; a prefix that s3blob rewrites refuses every name.
//
// # Listing
//
// List asks for url-encoded keys (EncodingType=url on the ListObjectsV2
// request, set through the Go CDK's BeforeList hook), so that an object
// whose key holds any byte, such as a control character (which makes an
// unencoded response unreadable by the AWS SDK's XML decoder), cannot break
// a listing, a cull or a write. S3 and MinIO encode keys as an HTML form
// encodes a value: a space as "+", every byte outside A-Z, a-z, 0-9 and
// "-_.*/" as %XX (so "+" is %2B, "%" %25, "\x01" %01, "ü" %C3%BC). List
// decodes exactly that, with url.QueryUnescape, from the S3 object's own
// key, never from the Go CDK's ListObject.Key, which s3blob derives by
// applying HexUnescape to the key still encoded. A key that does not
// decode, or that decodes to a name the driver would refuse (not UTF-8, a
// control character, a "__0x<hex>__" sequence, outside the bucket's
// prefix), is skipped without an error: such objects were not written
// through the driver and are never counted, culled or deleted. When a
// server ignores EncodingType (its response does not say "url"), keys are
// taken as sent; s3blob's legacy ListObjects (UseLegacyList), whose page
// marker the Go CDK derives from the last key, is not encoded. The request
// count does not change: one ListObjectsV2 per page.
//
// Pages of one object are fetched two at a time: MinIO reports a listing
// with MaxKeys=1 as complete when the prefix names an existing object,
// though more objects follow.
//
// # Requests
//
// Open sends one HeadBucket (and one CreateBucket when asked to create a
// missing bucket). Read is one GetObject (size, modification time and ETag
// come from the response, never from an extra HEAD), except for a range
// that starts at or past the end of the object, which S3 refuses with 416
// and which then costs one HEAD for the attributes. Write of an object
// below the multipart threshold (16 MiB) is one PutObject, Delete one
// DeleteObject (no HEAD first, unlike s3blob's Delete), List one
// ListObjectsV2 per page, DeleteBatch one DeleteObjects per 1000 names,
// Replace one PutObject. With [Options.Lifecycle] verify, Open also sends
// one GetBucketLifecycleConfiguration; with install, that and, when a rule
// is missing or changed, one PutBucketLifecycleConfiguration. Tagging an
// entry (lifecycle tag, verify or install) adds a header to its PutObject,
// never a request.
//
// # Lifecycle
//
// See [LifecycleTagKey] for how the store deletes expired entries itself,
// and [LifecycleRules] for the rules.
//
// # S3-compatible servers
//
// The client computes request checksums only where an operation requires one
// (RequestChecksumCalculation "when_required"), which MinIO and other
// S3-compatible servers accept; DeleteObjects, which requires one, carries
// it.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/blobcache/blobcache/driver"
	blobdrv "github.com/blobcache/blobcache/drivers/blob"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
)

// Driver is the S3 driver. Besides the methods of the embedded
// [*blob.Driver] (Read, Delete, List, ValidateName, Close) and its own
// Write, it implements [driver.BatchDeleter] and [driver.Replacer]. It is safe for
// concurrent use.
type Driver struct {
	*blobdrv.Driver
	x         *blobdrv.Extension
	client    *s3.Client
	bucket    string
	keyPrefix string // a Go CDK prefixed bucket's prefix, as s3blob sends it
	tagging   bool   // tag entries with their expiry class (Options.Lifecycle)
}

// Compile-time checks.
var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.BatchDeleter  = (*Driver)(nil)
	_ driver.Replacer      = (*Driver)(nil)
	_ driver.NameValidator = (*Driver)(nil)
)

// ErrNotS3 is returned by [New] for a bucket that is not backed by s3blob.
var ErrNotS3 = errors.New("s3: bucket is not backed by s3blob")

// Open returns a driver for the bucket. It builds an S3 client from opts,
// checks with one HeadBucket that the bucket exists, and creates it when it
// does not and opts.CreateBucket is set; otherwise a missing bucket is an
// error naming it.
func Open(ctx context.Context, bucket string, opts Options) (*Driver, error) {
	if err := validateBucket(bucket); err != nil {
		return nil, err
	}
	storageClass, err := opts.validate()
	if err != nil {
		return nil, err
	}
	client, err := newClient(ctx, &opts)
	if err != nil {
		return nil, err
	}
	if err := ensureBucket(ctx, client, bucket, &opts); err != nil {
		return nil, err
	}
	if err := setUpLifecycle(ctx, client, bucket, opts.Lifecycle); err != nil {
		return nil, err
	}
	b, err := s3blob.OpenBucket(ctx, client, bucket, &s3blob.Options{
		EncryptionType:  types.ServerSideEncryption(opts.ServerSideEncryption),
		KMSEncryptionID: opts.KMSKeyID,
		// The transfer manager does not take this from the client.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: open bucket %q: %w", bucket, err)
	}
	acl := opts.objectACL()
	d, err := newDriver(b, blobdrv.WithBeforeWrite(func(asFunc func(any) bool) error {
		var in *transfermanager.UploadObjectInput
		if !asFunc(&in) || in == nil {
			return errors.New("s3: the s3blob writer does not expose *transfermanager.UploadObjectInput")
		}
		in.ACL = tmtypes.ObjectCannedACL(acl)
		if storageClass != "" {
			in.StorageClass = tmtypes.StorageClass(storageClass)
		}
		return nil
	}))
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("s3: open bucket %q: %w", bucket, err)
	}
	d.tagging = opts.Lifecycle != "" && opts.Lifecycle != LifecycleOff
	return d, nil
}

// Write implements [driver.Driver]: one PutObject (multipart past 16 MiB),
// tagged with the object's expiry class when the driver was opened with a
// lifecycle mode other than off and opts.DeleteAfter is set.
func (d *Driver) Write(ctx context.Context, name string, body io.Reader, opts *driver.WriteOptions) error {
	return d.x.Write(ctx, "write", name, body, opts, d.tagHook(opts.DeleteAfter))
}

// New returns a driver for b, a bucket of the caller's that must be backed
// by s3blob (b.As(**s3.Client) succeeds, a Go CDK prefixed bucket
// included); otherwise it returns [ErrNotS3]. It takes ownership of b only
// when it succeeds. Objects are written with the bucket's default ACL and
// storage class; [Open] is the way to set them.
func New(b *gcblob.Bucket) (*Driver, error) {
	return newDriver(b)
}

func newDriver(b *gcblob.Bucket, opts ...blobdrv.Option) (*Driver, error) {
	var client *s3.Client
	if !b.As(&client) || client == nil {
		return nil, ErrNotS3
	}
	bucket, prefix, perr := probeBucket(b)
	d := &Driver{client: client, bucket: bucket, keyPrefix: prefix}
	d.Driver, d.x = blobdrv.NewProvided(b, blobdrv.Provider{
		Name:         "s3",
		Escaping:     blobdrv.EscapingS3,
		KeyPrefix:    prefix,
		KeyPrefixErr: perr,
		ReadETag:     readETag,
		Delete:       d.deleteOne,
		List:         d.listHook,
		ErrorKind:    errorKind,
		MinListFetch: 2,
	}, opts...)
	return d, nil
}

// Bucket returns the bucket name.
func (d *Driver) Bucket() string { return d.bucket }

// Client returns the S3 client.
func (d *Driver) Client() *s3.Client { return d.client }

// String returns "s3://bucket".
func (d *Driver) String() string { return "s3://" + d.bucket }
