// Package s3 is the blobcache driver for Amazon S3 and S3-compatible servers
// such as MinIO: Go CDK's s3blob (AWS SDK v2) through package
// github.com/blobcache/blobcache/drivers/blob, plus what only S3 has: canned
// ACLs and storage classes on every write, batch deletes (DeleteObjects),
// conditional writes (If-None-Match: * for IfAbsent, If-Match for Replace)
// and bucket creation.
//
// A [*Driver] implements [driver.Driver], [driver.BatchDeleter] and
// [driver.Replacer].
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
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

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

// DefaultRegion is the region used when neither Options.Region nor the AWS
// configuration names one.
const DefaultRegion = "us-east-1"

// DefaultACL is the canned ACL objects are written with when
// Options.DefaultACL is empty.
const DefaultACL = "private"

// Options configure [Open]. The zero value opens an existing bucket on AWS
// with the standard AWS configuration and credential chain.
//
// Options never print the secret key: String and Format redact it for every
// fmt verb, including %#v.
type Options struct {
	// Endpoint is the base URL of an S3-compatible server, such as
	// http://127.0.0.1:9000 for MinIO. Empty means AWS.
	Endpoint string
	// Region is the signing region. Empty means the AWS configuration's
	// region, or us-east-1.
	Region string
	// UsePathStyle addresses buckets as https://host/bucket instead of
	// https://bucket.host. MinIO usually needs it.
	UsePathStyle bool
	// AccessKey and SecretKey are static credentials. When AccessKey is empty
	// the standard AWS chain is used (environment, shared files, roles).
	AccessKey string
	// SecretKey is the secret of AccessKey. It is never printed.
	SecretKey string
	// Profile selects a shared-configuration profile for the AWS chain.
	Profile string
	// Anonymous sends unsigned requests.
	Anonymous bool
	// CreateBucket creates the bucket at Open when it does not exist. An
	// existing bucket is used as is.
	CreateBucket bool
	// DefaultACL is the canned ACL set on every object written (x-amz-acl),
	// such as private or public-read. Empty means "private".
	DefaultACL string
	// BucketACL is the canned ACL of a bucket that CreateBucket makes. Empty
	// means DefaultACL.
	BucketACL string
	// StorageClass is the storage class of every object written
	// (x-amz-storage-class), such as STANDARD_IA. Empty means the bucket's
	// default.
	StorageClass string
	// ReducedRedundancy is the seed's option: storage class
	// REDUCED_REDUNDANCY. It conflicts with any other StorageClass.
	ReducedRedundancy bool
	// ServerSideEncryption is the server-side encryption of every object
	// written: AES256, aws:kms or aws:kms:dsse.
	ServerSideEncryption string
	// KMSKeyID is the KMS key for aws:kms encryption.
	KMSKeyID string
	// Accelerate uses S3 Transfer Acceleration endpoints.
	Accelerate bool
	// DualStack uses dual-stack (IPv4 and IPv6) endpoints.
	DualStack bool
	// FIPS uses FIPS endpoints.
	FIPS bool
	// HTTPClient sends the requests; nil means the AWS SDK's default (which
	// honours AWS_CA_BUNDLE). A client given here is used as is. Tests use it
	// to count requests.
	HTTPClient *http.Client
}

// String describes the options with the secret key redacted.
func (o Options) String() string {
	var b strings.Builder
	b.WriteString("s3.Options{")
	sep := ""
	field := func(name string, v any) {
		b.WriteString(sep)
		sep = " "
		fmt.Fprintf(&b, "%s:%v", name, v)
	}
	field("Endpoint", strconv.Quote(o.Endpoint))
	field("Region", strconv.Quote(o.Region))
	field("UsePathStyle", o.UsePathStyle)
	field("AccessKey", strconv.Quote(o.AccessKey))
	if o.SecretKey == "" {
		field("SecretKey", `""`)
	} else {
		field("SecretKey", "REDACTED")
	}
	field("Profile", strconv.Quote(o.Profile))
	field("Anonymous", o.Anonymous)
	field("CreateBucket", o.CreateBucket)
	field("DefaultACL", strconv.Quote(o.DefaultACL))
	field("BucketACL", strconv.Quote(o.BucketACL))
	field("StorageClass", strconv.Quote(o.StorageClass))
	field("ReducedRedundancy", o.ReducedRedundancy)
	field("ServerSideEncryption", strconv.Quote(o.ServerSideEncryption))
	field("KMSKeyID", strconv.Quote(o.KMSKeyID))
	field("Accelerate", o.Accelerate)
	field("DualStack", o.DualStack)
	field("FIPS", o.FIPS)
	if o.HTTPClient == nil {
		field("HTTPClient", "nil")
	} else {
		field("HTTPClient", "set")
	}
	b.WriteString("}")
	return b.String()
}

// GoString is String, so %#v does not show the secret key either.
func (o Options) GoString() string { return o.String() }

// Format prints String for every verb (%v, %+v, %#v, %s, %q, ...).
func (o Options) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprint(f, strconv.Quote(o.String()))
		return
	}
	fmt.Fprint(f, o.String())
}

// objectACL, bucketACL and storageClass return the effective settings.
func (o *Options) objectACL() string {
	if o.DefaultACL == "" {
		return DefaultACL
	}
	return o.DefaultACL
}

func (o *Options) bucketACL() string {
	if o.BucketACL == "" {
		return o.objectACL()
	}
	return o.BucketACL
}

func (o *Options) storageClass() (string, error) {
	sc := o.StorageClass
	if o.ReducedRedundancy {
		if sc != "" && sc != string(types.StorageClassReducedRedundancy) {
			return "", fmt.Errorf("s3: reduced_redundancy conflicts with storage_class %q", sc)
		}
		sc = string(types.StorageClassReducedRedundancy)
	}
	return sc, nil
}

// validate checks the settings that have a fixed set of values, so a typo is
// an error at Open rather than on the first write.
func (o *Options) validate() (storageClass string, err error) {
	if acl := o.objectACL(); !slices.Contains(types.ObjectCannedACL("").Values(), types.ObjectCannedACL(acl)) {
		return "", fmt.Errorf("s3: default_acl %q is not a canned ACL (want one of %v)", acl, types.ObjectCannedACL("").Values())
	}
	if o.CreateBucket {
		if acl := o.bucketACL(); !slices.Contains(types.BucketCannedACL("").Values(), types.BucketCannedACL(acl)) {
			return "", fmt.Errorf("s3: bucket_acl %q is not a canned bucket ACL (want one of %v)", acl, types.BucketCannedACL("").Values())
		}
	}
	sc, err := o.storageClass()
	if err != nil {
		return "", err
	}
	if sc != "" && !slices.Contains(types.StorageClass("").Values(), types.StorageClass(sc)) {
		return "", fmt.Errorf("s3: storage_class %q is not an S3 storage class (want one of %v)", sc, types.StorageClass("").Values())
	}
	if e := o.ServerSideEncryption; e != "" && !slices.Contains(types.ServerSideEncryption("").Values(), types.ServerSideEncryption(e)) {
		return "", fmt.Errorf("s3: ssetype %q is not a server-side encryption type (want one of %v)", e, types.ServerSideEncryption("").Values())
	}
	if (o.AccessKey == "") != (o.SecretKey == "") {
		return "", errors.New("s3: access_key and secret_key must be given together")
	}
	if o.Anonymous && o.AccessKey != "" {
		return "", errors.New("s3: anonymous conflicts with access_key")
	}
	return sc, nil
}

// Driver is the S3 driver. It implements [driver.Driver],
// [driver.BatchDeleter] and [driver.Replacer], and is safe for concurrent
// use.
type Driver struct {
	d      *blobdrv.S3Driver
	bucket string
}

// Compile-time checks.
var (
	_ driver.Driver       = (*Driver)(nil)
	_ driver.BatchDeleter = (*Driver)(nil)
	_ driver.Replacer     = (*Driver)(nil)
)

// Open returns a driver for the bucket. It builds an S3 client from opts,
// checks with one HeadBucket that the bucket exists, and creates it when it
// does not and opts.CreateBucket is set; otherwise a missing bucket is an
// error naming it.
func Open(ctx context.Context, bucket string, opts Options) (*Driver, error) {
	if bucket == "" {
		return nil, errors.New("s3: no bucket name")
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

// OpenURL opens a driver from a URL:
//
//	s3://bucket?endpoint=http://127.0.0.1:9000&region=us-east-1&use_path_style=true
//	    &access_key=...&secret_key=...&create_bucket=true&default_acl=private
//	    &bucket_acl=private&storage_class=STANDARD_IA&reduced_redundancy=true
//
// The host is the bucket (or the parameter bucket_name, alias
// storage_bucket_name). Parameter names are case-insensitive; each maps to the
// [Options] field of the same meaning: endpoint, region, use_path_style
// (alias s3forcepathstyle), access_key (alias access_key_id), secret_key
// (alias secret_access_key), profile, anonymous, create_bucket, default_acl,
// bucket_acl, storage_class, reduced_redundancy, ssetype (alias sse),
// kmskeyid (alias kms_key_id),
// accelerate, dualstack, fips. An alias is used only when its canonical name
// is absent. Booleans are parsed with strconv.ParseBool. An unknown parameter
// is an error naming it. No error ever contains the secret key.
func OpenURL(ctx context.Context, u *url.URL) (*Driver, error) {
	bucket, opts, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return Open(ctx, bucket, opts)
}

// urlParams maps each accepted parameter name (lower case) to its canonical
// name.
var urlParams = map[string]string{
	"endpoint":            "endpoint",
	"region":              "region",
	"use_path_style":      "use_path_style",
	"s3forcepathstyle":    "use_path_style",
	"access_key":          "access_key",
	"access_key_id":       "access_key",
	"secret_key":          "secret_key",
	"secret_access_key":   "secret_key",
	"profile":             "profile",
	"anonymous":           "anonymous",
	"create_bucket":       "create_bucket",
	"default_acl":         "default_acl",
	"bucket_acl":          "bucket_acl",
	"storage_class":       "storage_class",
	"reduced_redundancy":  "reduced_redundancy",
	"ssetype":             "ssetype",
	"sse":                 "ssetype",
	"kmskeyid":            "kmskeyid",
	"kms_key_id":          "kmskeyid",
	"accelerate":          "accelerate",
	"dualstack":           "dualstack",
	"fips":                "fips",
	"bucket_name":         "bucket_name",
	"storage_bucket_name": "bucket_name",
}

// ParseURL returns the bucket and options of an s3:// URL, as [OpenURL]
// reads them, without opening anything.
func ParseURL(u *url.URL) (bucket string, opts Options, err error) {
	if u.Scheme != "" && !strings.EqualFold(u.Scheme, "s3") {
		return "", Options{}, fmt.Errorf("s3: URL scheme %q is not s3", u.Scheme)
	}
	if u.Path != "" && u.Path != "/" {
		return "", Options{}, fmt.Errorf("s3: URL has a path %q; the bucket is the host (s3://bucket) and the cache's folder is the location parameter", u.Path)
	}
	if u.User != nil {
		return "", Options{}, errors.New("s3: URL has user information; pass credentials as access_key and secret_key")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		// The parse error may quote part of the query, which may hold a
		// secret: do not include it.
		return "", Options{}, errors.New("s3: URL query is malformed")
	}
	// Resolve names: canonical name -> (name as written, value). A canonical
	// name beats its alias; two spellings of one name are an error.
	type param struct{ name, value string }
	vals := map[string]param{}
	fromAlias := map[string]bool{}
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		lk := strings.ToLower(k)
		canon, ok := urlParams[lk]
		if !ok {
			return "", Options{}, fmt.Errorf("s3: %w", &driver.UnknownOptionError{Name: k, Known: slices.Collect(maps.Keys(urlParams))})
		}
		vs := q[k]
		if len(vs) != 1 {
			return "", Options{}, fmt.Errorf("s3: URL parameter %q given %d times", k, len(vs))
		}
		alias := lk != canon
		if prev, dup := vals[canon]; dup {
			switch {
			case alias && !fromAlias[canon]:
				continue // the canonical name wins
			case !alias && fromAlias[canon]:
				// replace the alias below
			default:
				return "", Options{}, fmt.Errorf("s3: URL parameter %q given twice (as %q and %q)", canon, prev.name, k)
			}
		}
		vals[canon] = param{k, vs[0]}
		fromAlias[canon] = alias
	}
	boolParam := func(canon string) (bool, error) {
		p, ok := vals[canon]
		if !ok {
			return false, nil
		}
		b, err := strconv.ParseBool(p.value)
		if err != nil {
			return false, fmt.Errorf("s3: URL parameter %q: %q is not a boolean", p.name, p.value)
		}
		return b, nil
	}
	str := func(canon string) string { return vals[canon].value }

	opts = Options{
		Endpoint:             str("endpoint"),
		Region:               str("region"),
		AccessKey:            str("access_key"),
		SecretKey:            str("secret_key"),
		Profile:              str("profile"),
		DefaultACL:           str("default_acl"),
		BucketACL:            str("bucket_acl"),
		StorageClass:         str("storage_class"),
		ServerSideEncryption: str("ssetype"),
		KMSKeyID:             str("kmskeyid"),
	}
	for canon, dst := range map[string]*bool{
		"use_path_style":     &opts.UsePathStyle,
		"anonymous":          &opts.Anonymous,
		"create_bucket":      &opts.CreateBucket,
		"reduced_redundancy": &opts.ReducedRedundancy,
		"accelerate":         &opts.Accelerate,
		"dualstack":          &opts.DualStack,
		"fips":               &opts.FIPS,
	} {
		if *dst, err = boolParam(canon); err != nil {
			return "", Options{}, err
		}
	}
	bucket = u.Host
	if p, ok := vals["bucket_name"]; ok {
		if bucket != "" && bucket != p.value {
			return "", Options{}, fmt.Errorf("s3: URL names two buckets: host %q and %s=%q", bucket, p.name, p.value)
		}
		bucket = p.value
	}
	if bucket == "" {
		return "", Options{}, errors.New("s3: URL names no bucket (want s3://bucket)")
	}
	return bucket, opts, nil
}

// Bucket returns the bucket name.
func (d *Driver) Bucket() string { return d.bucket }

// Client returns the S3 client.
func (d *Driver) Client() *s3.Client { return d.d.Client() }

// String returns "s3://bucket".
func (d *Driver) String() string { return "s3://" + d.bucket }

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
