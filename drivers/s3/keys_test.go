package s3

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/blobcache/blobcache/driver"
	blobdrv "github.com/blobcache/blobcache/drivers/blob"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/blob/s3blob"
)

// noNetwork fails every request: the probes must never send one.
type noNetwork struct{ t testing.TB }

func (n noNetwork) RoundTrip(r *http.Request) (*http.Response, error) {
	n.t.Errorf("unexpected request %s %s", r.Method, r.URL)
	return nil, errors.New("no network in this test")
}

// offline returns New of an s3blob bucket whose client can send no request,
// behind a Go CDK prefixed bucket when prefix is set.
func offline(t testing.TB, prefix string) *Driver {
	t.Helper()
	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://127.0.0.1:9"),
		UsePathStyle: true,
		Credentials:  aws.AnonymousCredentials{},
		HTTPClient:   &http.Client{Transport: noNetwork{t}},
	})
	b, err := s3blob.OpenBucket(context.Background(), client, "bucket", nil)
	if err != nil {
		t.Fatal(err)
	}
	if prefix != "" {
		b = gcblob.PrefixedBucket(b, prefix)
	}
	d, err := New(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestNewProbes checks that New finds the bucket and a prefixed bucket's
// key prefix without a request, and that target gives the key s3blob uses.
func TestNewProbes(t *testing.T) {
	for _, pfx := range []string{"", "pfx/", "p q/"} {
		d := offline(t, pfx)
		if d.Bucket() != "bucket" || d.keyPrefix != pfx {
			t.Errorf("prefix %q: bucket %q, key prefix %q", pfx, d.Bucket(), d.keyPrefix)
		}
		bucket, key, err := d.target(t.Context(), "a b/c")
		if err != nil || bucket != "bucket" || key != pfx+"a b/c" {
			t.Errorf("prefix %q: target = %q, %q, %v", pfx, bucket, key, err)
		}
	}
	if _, err := New(memblob.OpenBucket(nil)); !errors.Is(err, ErrNotS3) {
		t.Errorf("New(memblob) = %v, want ErrNotS3", err)
	}
}

// TestRewrittenBucketPrefix checks that a Go CDK prefixed bucket whose own
// prefix s3blob rewrites refuses every name.
func TestRewrittenBucketPrefix(t *testing.T) {
	for _, pfx := range []string{"a../", "x__0x41__/", "c\x01/"} {
		d := offline(t, pfx)
		err := d.ValidateName("plain")
		if !errors.Is(err, driver.ErrInvalidName) || !strings.Contains(err.Error(), "key prefix") {
			t.Errorf("prefix %q: ValidateName(plain) = %v", pfx, err)
		}
		werr := d.Write(t.Context(), "plain", strings.NewReader("x"), &driver.WriteOptions{})
		if !errors.Is(werr, driver.ErrInvalidName) {
			t.Errorf("prefix %q: Write = %v", pfx, werr)
		}
		if err := d.DeleteBatch(t.Context(), []string{"plain"}); !errors.Is(err, driver.ErrInvalidName) {
			t.Errorf("prefix %q: DeleteBatch = %v", pfx, err)
		}
	}
}

func TestDecodeListedKey(t *testing.T) {
	for raw, want := range map[string]string{
		"a+b": "a b", "a%2Bb": "a+b", "%25zz": "%zz", "k%01": "k\x01", "%C3%BC": "ü",
		"%7E": "~", "k*": "k*", "a/b-c_d.e": "a/b-c_d.e", "%FF": "\xff", "a%0Db": "a\rb",
		"__0x41__": "__0x41__", // the Go CDK's escape sequences are not ours to undo
	} {
		if got, ok := decodeListedKey(raw); !ok || got != want {
			t.Errorf("decodeListedKey(%q) = %q, %v; want %q", raw, got, ok, want)
		}
	}
	for _, raw := range []string{"%", "%zz", "a%2", "%G0"} {
		if got, ok := decodeListedKey(raw); ok {
			t.Errorf("decodeListedKey(%q) = %q, want failure", raw, got)
		}
	}
}

// TestErrorKind checks the mapping of S3's error codes to the driver's kinds.
func TestErrorKind(t *testing.T) {
	for code, want := range map[string]error{
		"NoSuchKey": driver.ErrNotFound, "NotFound": driver.ErrNotFound,
		"PreconditionFailed": driver.ErrPreconditionFailed, "ConditionalRequestConflict": driver.ErrPreconditionFailed,
		"InvalidRange": blobdrv.ErrInvalidRange, "AccessDenied": nil,
	} {
		if got := errorKind(&smithy.GenericAPIError{Code: code}); got != want {
			t.Errorf("errorKind(%s) = %v, want %v", code, got, want)
		}
	}
}
