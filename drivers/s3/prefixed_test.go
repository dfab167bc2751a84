package blob_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/blobcache/blobcache/driver"
	blobdrv "github.com/blobcache/blobcache/drivers/blob"
	"github.com/blobcache/blobcache/internal/s3test"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
)

func openS3Bucket(t *testing.T, ct *s3test.CountingTransport) (*gcblob.Bucket, *s3.Client, string) {
	t.Helper()
	cfg := s3test.Env(t)
	bucket := s3test.NewBucket(t, cfg)
	client := s3test.Client(t, cfg, ct)
	b, err := s3blob.OpenBucket(t.Context(), client, bucket, &s3blob.Options{
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b, client, bucket
}

// TestS3Capabilities checks that New finds the S3 capabilities through As,
// and that they work through a Go CDK prefixed bucket: Delete and DeleteBatch
// call S3 directly and must use the same (prefixed) keys as the Go
// CDK.
func TestS3Capabilities(t *testing.T) {
	ct := s3test.NewCountingTransport(nil)
	b, client, bucket := openS3Bucket(t, ct)
	d := blobdrv.New(gcblob.PrefixedBucket(b, "pfx/"))
	defer d.Close()
	s3d, ok := d.(*blobdrv.S3Driver)
	if !ok {
		t.Fatalf("New(s3blob bucket) = %T, want *blob.S3Driver", d)
	}
	if _, ok := d.(driver.Replacer); !ok {
		t.Error("not a Replacer")
	}
	if _, ok := d.(driver.BatchDeleter); !ok {
		t.Error("not a BatchDeleter")
	}
	ctx := t.Context()
	// Names that s3blob would escape are refused (TestS3TrickyNames); these
	// need URL-encoding on the wire and in listings.
	names := []string{"a..b/c d", "x/+%41", "plain", "k/1", "k/2"}
	for _, n := range names {
		write(t, d, n, n)
	}
	ct.Reset()
	data, a, err := d.Read(ctx, "plain", 0, -1)
	if err != nil || string(data) != "plain" || a.ETag == "" {
		t.Fatalf("Read = %q, %+v, %v", data, a, err)
	}
	if got := ct.Snapshot(); len(got) != 1 || got[s3test.GetObject] != 1 {
		t.Errorf("Read requests %v", got)
	}

	// Replace through the writer's BeforeWrite hook.
	if err := s3d.Replace(ctx, "plain", strings.NewReader("v2"), a.ETag, &driver.WriteOptions{}); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	if err := s3d.Replace(ctx, "plain", strings.NewReader("v3"), a.ETag, &driver.WriteOptions{}); !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("stale Replace: %v", err)
	}

	raw := func() []string {
		out, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		return keys
	}
	if keys := raw(); len(keys) != len(names) || !strings.HasPrefix(keys[0], "pfx/") {
		t.Errorf("keys in the bucket: %q", keys)
	}
	ct.Reset()
	if err := d.Delete(ctx, "a..b/c d"); err != nil {
		t.Fatal(err)
	}
	if got := ct.Snapshot(); len(got) != 1 || got[s3test.DeleteObject] != 1 {
		t.Errorf("Delete requests %v", got)
	}
	ct.Reset()
	if err := s3d.DeleteBatch(ctx, []string{"x/+%41", "plain", "k/1", "nope"}); err != nil {
		t.Fatal(err)
	}
	if got := ct.Snapshot(); len(got) != 1 || got[s3test.DeleteObjects] != 1 {
		t.Errorf("DeleteBatch requests %v", got)
	}
	if keys := raw(); !slices.Equal(keys, []string{"pfx/k/2"}) {
		t.Errorf("left in the bucket: %q", keys)
	}
	p, err := d.List(ctx, &driver.ListOptions{})
	if err != nil || len(p.Objects) != 1 || p.Objects[0].Name != "k/2" {
		t.Errorf("List = %+v, %v", p, err)
	}
}

// TestS3ClosedBucket checks that a use after Close is not mistaken for a
// refused precondition (the Go CDK reports a closed bucket as
// FailedPrecondition).
func TestS3ClosedBucket(t *testing.T) {
	b, _, _ := openS3Bucket(t, nil)
	d := blobdrv.New(b)
	d.Close()
	err := d.Write(context.Background(), "x", strings.NewReader("y"), &driver.WriteOptions{})
	if err == nil || errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("Write after Close: %v", err)
	}
}
