package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

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
