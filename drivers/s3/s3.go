// Package s3 is the blobcache driver for Amazon S3 and S3-compatible servers
// such as MinIO: Go CDK's s3blob (AWS SDK v2) through package
// github.com/blobcache/blobcache/drivers/blob, plus what only S3 has: canned
// ACLs and storage classes on every write, batch deletes (DeleteObjects),
// conditional writes (If-None-Match: * for IfAbsent, If-Match for Replace)
// and bucket creation.
//
// A [*Driver] implements [driver.Driver], [driver.BatchDeleter],
// [driver.Replacer] and [driver.NameValidator].
//
// # Names
//
// A name is stored under exactly that key, and listed as exactly that name,
// or refused with [driver.ErrInvalidName] naming the rule. s3blob escapes
// control characters, the "/" of "../" and the start of every "__0x<hex>__"
// sequence (which it would read back as one character when listing), so
// names holding "../" (such as "a../b") or such a sequence (such as
// "x__0x2f__y" or "__0x41__") are refused, and so are listing prefixes that
// s3blob would rewrite; a cache location such as "a.." fails at Open. Every
// other valid name, "%", "+", " ", "?", "#", `\` and non-ASCII included, is
// kept as given.
//
// Listings ask for url-encoded keys and decode them (S3 and MinIO encode a
// space as "+", other bytes outside A-Z a-z 0-9 "-_.*/" as %XX), so that no
// object planted with any bytes in its key (a control character would make
// the response unreadable) breaks listing, culling or writes; objects whose
// names the driver would refuse are left out of listings and so never
// counted, culled or deleted. See package
// github.com/blobcache/blobcache/drivers/blob for the details.
//
// # Requests
//
// Open sends one HeadBucket (and one CreateBucket when asked to create a
// missing bucket). Read is one GetObject, Write of an object below the
// multipart threshold (16 MiB) one PutObject, Delete one DeleteObject, List
// one ListObjectsV2 per page, DeleteBatch one DeleteObjects per 1000 names,
// Replace one PutObject.
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
	"net"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/blobcache/blobcache/driver"
	blobdrv "github.com/blobcache/blobcache/drivers/blob"
	"gocloud.dev/blob/s3blob"
)

// Driver is the S3 driver. It implements [driver.Driver],
// [driver.BatchDeleter] and [driver.Replacer], and is safe for concurrent
// use.
type Driver struct {
	d      *blobdrv.S3Driver
	bucket string
}

// Compile-time checks.
var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.BatchDeleter  = (*Driver)(nil)
	_ driver.Replacer      = (*Driver)(nil)
	_ driver.NameValidator = (*Driver)(nil)
)

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
	d, err := blobdrv.NewS3(b, blobdrv.WithBeforeWrite(func(asFunc func(any) bool) error {
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
	return &Driver{d: d, bucket: bucket}, nil
}

// newClient builds the S3 client for opts.
func newClient(ctx context.Context, opts *Options) (*s3.Client, error) {
	load := []func(*config.LoadOptions) error{
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if opts.Region != "" {
		load = append(load, config.WithRegion(opts.Region))
	}
	if opts.Profile != "" {
		load = append(load, config.WithSharedConfigProfile(opts.Profile))
	}
	switch {
	case opts.Anonymous:
		load = append(load, config.WithCredentialsProvider(aws.AnonymousCredentials{}))
	case opts.AccessKey != "":
		load = append(load, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opts.AccessKey, opts.SecretKey, "")))
	}
	if opts.DualStack {
		load = append(load, config.WithUseDualStackEndpoint(aws.DualStackEndpointStateEnabled))
	}
	if opts.FIPS {
		load = append(load, config.WithUseFIPSEndpoint(aws.FIPSEndpointStateEnabled))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.HTTPClient != nil {
			// Set here rather than through config.WithHTTPClient, which
			// fails for a plain *http.Client when AWS_CA_BUNDLE is set: a
			// client given explicitly is used as is.
			o.HTTPClient = opts.HTTPClient
		}
		o.UsePathStyle = opts.UsePathStyle
		o.UseAccelerate = opts.Accelerate
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		if r, ok := o.Retryer.(aws.RetryerV2); ok {
			o.Retryer = conditionalRetryer{r}
		}
		o.APIOptions = append(o.APIOptions, markConditionalWrites)
	}), nil
}

// conditionalWrite marks the context of a conditional write (If-Match or
// If-None-Match).
type conditionalWrite struct{}

// markConditionalWrites marks the context of every conditional PutObject
// and CompleteMultipartUpload for conditionalRetryer.
func markConditionalWrites(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("BlobcacheConditionalWrite",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			conditional := false
			switch p := in.Parameters.(type) {
			case *s3.PutObjectInput:
				conditional = p.IfMatch != nil || p.IfNoneMatch != nil
			case *s3.CompleteMultipartUploadInput:
				conditional = p.IfMatch != nil || p.IfNoneMatch != nil
			}
			if conditional {
				ctx = context.WithValue(ctx, conditionalWrite{}, true)
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

// conditionalRetryer is the SDK's retryer, except that it retries a
// conditional write only after an error that shows the server did not apply
// it (throttling, a refused connection). After any other failure (an answer
// lost to a reset connection, a 500) the write may have taken effect, and
// its retry would then be refused with 412 because of the write itself: the
// cache would take that for another writer's, and Incr would count twice,
// Add report a live entry that is its own. The error is returned instead.
type conditionalRetryer struct{ aws.RetryerV2 }

var throttles = retry.IsErrorThrottles(retry.DefaultThrottles)

// GetRetryToken implements aws.RetryerV2.
func (r conditionalRetryer) GetRetryToken(ctx context.Context, opErr error) (func(error) error, error) {
	if ctx.Value(conditionalWrite{}) != nil && !notApplied(opErr) {
		return nil, errors.New("s3: not retrying a conditional write that may have taken effect")
	}
	return r.RetryerV2.GetRetryToken(ctx, opErr)
}

// notApplied reports whether err shows that the request was not applied.
func notApplied(err error) bool {
	if throttles.IsErrorThrottle(err) == aws.TrueTernary || httpStatus(err) == http.StatusServiceUnavailable {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// ensureBucket checks that the bucket exists, creating it if asked.
func ensureBucket(ctx context.Context, client *s3.Client, bucket string, opts *Options) error {
	_, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("s3: check bucket %q: %w", bucket, err)
	}
	switch {
	case isMissingBucket(err):
		if !opts.CreateBucket {
			return fmt.Errorf("s3: bucket %q does not exist (set create_bucket=true to create it): %w", bucket, err)
		}
	case httpStatus(err) == http.StatusForbidden:
		return fmt.Errorf("s3: access to bucket %q denied: %w", bucket, err)
	default:
		return fmt.Errorf("s3: check bucket %q: %w", bucket, err)
	}
	in := &s3.CreateBucketInput{
		Bucket: aws.String(bucket),
		ACL:    types.BucketCannedACL(opts.bucketACL()),
	}
	if region := client.Options().Region; region != "" && region != DefaultRegion && opts.Endpoint == "" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(region),
		}
	}
	if _, err := client.CreateBucket(ctx, in); err != nil {
		var owned *types.BucketAlreadyOwnedByYou
		if errors.As(err, &owned) {
			return nil // created concurrently by us
		}
		return fmt.Errorf("s3: create bucket %q: %w", bucket, err)
	}
	return nil
}

func isMissingBucket(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NotFound", "NoSuchBucket":
			return true
		}
	}
	return httpStatus(err) == http.StatusNotFound
}

func httpStatus(err error) int {
	var sc interface{ HTTPStatusCode() int }
	if errors.As(err, &sc) {
		return sc.HTTPStatusCode()
	}
	return 0
}

// Bucket returns the bucket name.
func (d *Driver) Bucket() string { return d.bucket }

// Client returns the S3 client.
func (d *Driver) Client() *s3.Client { return d.d.Client() }

// String returns "s3://bucket".
func (d *Driver) String() string { return "s3://" + d.bucket }

// ValidateName implements [driver.NameValidator]: a name is refused, with an
// error wrapping [driver.ErrInvalidName] that names the rule, when it is not
// valid ([driver.ValidateName]) or when s3blob would store it under another
// key (see the package documentation). Every method refuses such a name.
func (d *Driver) ValidateName(name string) error {
	return d.d.ValidateName(name)
}

// Read implements [driver.Driver] with one GetObject; Attributes.ETag is the
// object's ETag, for Replace.
func (d *Driver) Read(ctx context.Context, name string, offset, length int64) ([]byte, driver.Attributes, error) {
	return d.d.Read(ctx, name, offset, length)
}

// Write implements [driver.Driver]: one PutObject below the multipart
// threshold, with the options' ACL and storage class; IfAbsent sends
// If-None-Match: *.
func (d *Driver) Write(ctx context.Context, name string, body io.Reader, opts *driver.WriteOptions) error {
	return d.d.Write(ctx, name, body, opts)
}

// Delete implements [driver.Driver] with one DeleteObject.
func (d *Driver) Delete(ctx context.Context, name string) error {
	return d.d.Delete(ctx, name)
}

// List implements [driver.Driver] with one ListObjectsV2 per page.
func (d *Driver) List(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	return d.d.List(ctx, opts)
}

// DeleteBatch implements [driver.BatchDeleter] with DeleteObjects, 1000
// names a request.
func (d *Driver) DeleteBatch(ctx context.Context, names []string) error {
	return d.d.DeleteBatch(ctx, names)
}

// Replace implements [driver.Replacer] with If-Match.
func (d *Driver) Replace(ctx context.Context, name string, body io.Reader, etag string, opts *driver.WriteOptions) error {
	return d.d.Replace(ctx, name, body, etag, opts)
}

// Close implements [driver.Driver].
func (d *Driver) Close() error {
	return d.d.Close()
}
