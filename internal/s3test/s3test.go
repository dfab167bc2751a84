// Package s3test helps tests run against a real S3-compatible server (MinIO
// in CI): it reads the server's address from the environment, makes
// throwaway buckets, and counts the requests a test sends.
//
// The environment variables are BLOBCACHE_S3_ENDPOINT (such as
// http://127.0.0.1:9100), BLOBCACHE_S3_ACCESS_KEY, BLOBCACHE_S3_SECRET_KEY and
// BLOBCACHE_S3_REGION (us-east-1 when unset). Without an endpoint, tests are
// skipped with a message, except in CI (CI=true), where that is a failure.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Environment variable names.
const (
	EnvEndpoint  = "BLOBCACHE_S3_ENDPOINT"
	EnvAccessKey = "BLOBCACHE_S3_ACCESS_KEY"
	EnvSecretKey = "BLOBCACHE_S3_SECRET_KEY"
	EnvRegion    = "BLOBCACHE_S3_REGION"
)

// DefaultRegion is the region used when BLOBCACHE_S3_REGION is unset.
const DefaultRegion = "us-east-1"

// Config is how to reach the test server.
type Config struct {
	// Endpoint is the server's base URL, such as http://127.0.0.1:9100.
	Endpoint string
	// AccessKey and SecretKey are the static credentials.
	AccessKey string
	// SecretKey is never printed by Config's String or Format.
	SecretKey string
	// Region is the signing region.
	Region string
}

// String returns the config without the secret key.
func (c Config) String() string {
	return fmt.Sprintf("s3test.Config{Endpoint:%q AccessKey:%q SecretKey:%s Region:%q}",
		c.Endpoint, c.AccessKey, redacted(c.SecretKey), c.Region)
}

// Format makes every fmt verb print String, so the secret never shows.
func (c Config) Format(f fmt.State, verb rune) { fmt.Fprint(f, c.String()) }

func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "REDACTED"
}

// Env returns the server configuration from the environment. When
// BLOBCACHE_S3_ENDPOINT is unset it skips the test with a message saying how
// to run it, or fails the test when the environment variable CI is "true".
func Env(t testing.TB) Config {
	t.Helper()
	cfg := Config{
		Endpoint:  os.Getenv(EnvEndpoint),
		AccessKey: os.Getenv(EnvAccessKey),
		SecretKey: os.Getenv(EnvSecretKey),
		Region:    os.Getenv(EnvRegion),
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.Endpoint == "" {
		msg := "MinIO/S3 tests skipped: set " + EnvEndpoint + " (and " + EnvAccessKey + ", " +
			EnvSecretKey + ") to an S3-compatible server, or run the full test command, which starts MinIO"
		if os.Getenv("CI") == "true" {
			t.Fatal(strings.Replace(msg, "skipped", "not run", 1) + " (CI=true: a skipped MinIO test is a failure)")
		}
		t.Skip(msg)
	}
	return cfg
}

// Client returns an S3 client for cfg that sends its requests through rt
// (http.DefaultTransport when nil): static credentials, path-style addressing,
// and checksums only where an operation requires one, as S3-compatible
// servers expect.
func Client(t testing.TB, cfg Config, rt http.RoundTripper) *s3.Client {
	t.Helper()
	if rt == nil {
		rt = http.DefaultTransport
	}
	return s3.New(s3.Options{
		Region:                     cfg.Region,
		BaseEndpoint:               aws.String(cfg.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, ""),
		HTTPClient:                 &http.Client{Transport: rt},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// BucketName returns a fresh bucket name: "bct-" and 16 random hex digits.
func BucketName() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "bct-" + hex.EncodeToString(b[:])
}

// NewBucket creates a fresh, uniquely named bucket and registers a cleanup
// that deletes every object in it and then the bucket.
func NewBucket(t testing.TB, cfg Config) string {
	t.Helper()
	client := Client(t, cfg, nil)
	name := BucketName()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("s3test: create bucket %s at %s: %v", name, cfg.Endpoint, err)
	}
	t.Cleanup(func() {
		if err := RemoveBucket(context.Background(), client, name); err != nil {
			t.Errorf("s3test: %v", err)
		}
	})
	return name
}

// RemoveBucket deletes every object in the bucket and then the bucket. A
// bucket that does not exist is not an error. When objects remain that the
// listing did not show (a MinIO quirk), it asks MinIO to force-delete the
// bucket.
func RemoveBucket(ctx context.Context, client *s3.Client, bucket string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// URL-encoded keys, so that a planted key with a control character
	// cannot make the listing unreadable.
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), EncodingType: types.EncodingTypeUrl})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			if isNoSuchBucket(err) {
				return nil
			}
			return fmt.Errorf("empty bucket %s: %w", bucket, err)
		}
		if len(page.Contents) == 0 {
			continue
		}
		objs := make([]types.ObjectIdentifier, len(page.Contents))
		for i, o := range page.Contents {
			key := aws.ToString(o.Key)
			if page.EncodingType == types.EncodingTypeUrl {
				if k, err := url.QueryUnescape(key); err == nil {
					key = k
				}
			}
			objs[i] = types.ObjectIdentifier{Key: aws.String(key)}
		}
		if _, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(bucket),
			Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
		}); err != nil {
			return fmt.Errorf("empty bucket %s: %w", bucket, err)
		}
	}
	_, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
	if err != nil && strings.Contains(err.Error(), "BucketNotEmpty") {
		// MinIO hides every object under "x/" from listings when an object
		// named "x" exists, so the loop above cannot find them. MinIO's
		// force-delete header removes the bucket with its contents (S3
		// ignores it).
		_, err = client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}, func(o *s3.Options) {
			o.APIOptions = append(o.APIOptions, smithyhttp.SetHeaderValue("X-Minio-Force-Delete", "true"))
		})
	}
	if err != nil && !isNoSuchBucket(err) {
		return fmt.Errorf("delete bucket %s: %w", bucket, err)
	}
	return nil
}

func isNoSuchBucket(err error) bool {
	var nsb *types.NoSuchBucket
	return errors.As(err, &nsb) || strings.Contains(err.Error(), "NoSuchBucket")
}

// Op is an S3 operation as seen on the wire.
type Op string

// The operations CountingTransport tells apart.
const (
	GetObject     Op = "GetObject"
	HeadObject    Op = "HeadObject"
	PutObject     Op = "PutObject"
	DeleteObject  Op = "DeleteObject"
	DeleteObjects Op = "DeleteObjects"
	ListObjectsV2 Op = "ListObjectsV2"
	HeadBucket    Op = "HeadBucket"
	CreateBucket  Op = "CreateBucket"
	DeleteBucket  Op = "DeleteBucket"
	Other         Op = "other"
)

// Classify names the S3 operation of a request, assuming path-style
// addressing (/bucket/key), which is what MinIO on a loopback address uses.
// Requests with a sub-resource query the list does not name (?acl, ?uploads,
// a multipart part, a copy) are Other.
func Classify(req *http.Request) Op {
	q := req.URL.Query()
	path := strings.TrimPrefix(req.URL.Path, "/")
	bucketLevel := path == "" || !strings.Contains(strings.TrimSuffix(path, "/"), "/")
	switch {
	case req.Method == http.MethodPost && q.Has("delete") && bucketLevel:
		return DeleteObjects
	case bucketLevel:
		switch {
		case req.Method == http.MethodGet && q.Get("list-type") == "2":
			return ListObjectsV2
		case len(q) > 0:
			return Other
		case req.Method == http.MethodHead:
			return HeadBucket
		case req.Method == http.MethodPut:
			return CreateBucket
		case req.Method == http.MethodDelete:
			return DeleteBucket
		}
		return Other
	}
	// Object level: any sub-resource or multipart parameter makes it another
	// operation (x-id is the SDK's operation hint and changes nothing).
	for k := range q {
		if k != "x-id" {
			return Other
		}
	}
	switch req.Method {
	case http.MethodGet:
		return GetObject
	case http.MethodHead:
		return HeadObject
	case http.MethodPut:
		if req.Header.Get("X-Amz-Copy-Source") != "" {
			return Other
		}
		return PutObject
	case http.MethodDelete:
		return DeleteObject
	}
	return Other
}

// Request is a request CountingTransport saw.
type Request struct {
	// Op is the classified operation.
	Op Op
	// Method and URL are the request's.
	Method string
	// URL is the request URL (it carries no credentials: requests are signed
	// in headers).
	URL *url.URL
	// Header is a copy of the request headers, signature included.
	Header http.Header
	// Status is the response status code, 0 when the round trip failed.
	Status int
}

// CountingTransport is an http.RoundTripper that counts requests by S3
// operation and keeps the requests it saw, so tests can assert exact request
// counts and headers. It is safe for concurrent use. The zero value uses
// http.DefaultTransport.
type CountingTransport struct {
	// Base sends the requests; http.DefaultTransport when nil.
	Base http.RoundTripper

	mu       sync.Mutex
	counts   map[Op]int
	requests []Request
}

// NewCountingTransport returns a CountingTransport over base
// (http.DefaultTransport when nil).
func NewCountingTransport(base http.RoundTripper) *CountingTransport {
	return &CountingTransport{Base: base}
}

// RoundTrip implements http.RoundTripper.
func (c *CountingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := c.Base
	if base == nil {
		base = http.DefaultTransport
	}
	rec := Request{Op: Classify(req), Method: req.Method, URL: req.URL, Header: req.Header.Clone()}
	resp, err := base.RoundTrip(req)
	if err == nil {
		rec.Status = resp.StatusCode
	}
	c.mu.Lock()
	if c.counts == nil {
		c.counts = map[Op]int{}
	}
	c.counts[rec.Op]++
	c.requests = append(c.requests, rec)
	c.mu.Unlock()
	return resp, err
}

// Snapshot returns the counts since the last Reset, by operation; operations
// not seen are absent.
func (c *CountingTransport) Snapshot() map[Op]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[Op]int, len(c.counts))
	maps.Copy(m, c.counts)
	return m
}

// Count returns how many requests of op were seen since the last Reset.
func (c *CountingTransport) Count(op Op) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[op]
}

// Total returns how many requests were seen since the last Reset.
func (c *CountingTransport) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.counts {
		n += v
	}
	return n
}

// Requests returns the requests seen since the last Reset, in the order they
// completed.
func (c *CountingTransport) Requests() []Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Request(nil), c.requests...)
}

// Reset forgets every count and request.
func (c *CountingTransport) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts = nil
	c.requests = nil
}
