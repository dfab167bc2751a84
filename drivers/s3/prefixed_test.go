package s3_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/s3"
	"github.com/blobcache/blobcache/internal/s3test"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
)

// openS3Bucket opens a fresh bucket of the test server with s3blob, for the
// tests of New: the caller's own Go CDK bucket, here behind a Go CDK
// prefixed bucket.
func openS3Bucket(t *testing.T, ct *s3test.CountingTransport) (*gcblob.Bucket, *awss3.Client, string) {
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

// newPrefixed returns New of a Go CDK prefixed bucket over b.
func newPrefixed(t *testing.T, b *gcblob.Bucket, prefix string) *s3.Driver {
	t.Helper()
	d, err := s3.New(gcblob.PrefixedBucket(b, prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestPrefixedBucket checks that the S3 capabilities work through a Go CDK
// prefixed bucket: Delete and DeleteBatch call S3 directly and must use the
// same (prefixed) keys as the Go CDK; request counts are those of Open's
// driver.
func TestPrefixedBucket(t *testing.T) {
	ct := s3test.NewCountingTransport(nil)
	b, client, bucket := openS3Bucket(t, ct)
	d := newPrefixed(t, b, "pfx/")
	s3d := d
	if d.Bucket() != bucket {
		t.Errorf("Bucket() = %q, want %q", d.Bucket(), bucket)
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
		out, err := client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket)})
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

// TestNewClosedBucket checks that a use after Close is not mistaken for a
// refused precondition (the Go CDK reports a closed bucket as
// FailedPrecondition).
func TestNewClosedBucket(t *testing.T) {
	b, _, _ := openS3Bucket(t, nil)
	d, err := s3.New(b)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	err = d.Write(context.Background(), "x", strings.NewReader("y"), &driver.WriteOptions{})
	if err == nil || errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("Write after Close: %v", err)
	}
}

// TestPrefixedTrickyNames runs the table on the test server behind a Go CDK
// prefixed bucket (TestTrickyNames runs it without), and checks that every
// accepted name is stored under exactly the prefix and that name.
func TestPrefixedTrickyNames(t *testing.T) {
	for _, pfx := range []string{"pfx/"} {
		t.Run("prefix="+pfx, func(t *testing.T) {
			b, client, bucket := openS3Bucket(t, s3test.NewCountingTransport(nil))
			d := newPrefixed(t, b, pfx)
			got := s3test.CheckNames(t, d, "", s3test.TrickyNames, func(accepted []string) {
				var want []string
				for _, n := range accepted {
					want = append(want, pfx+n)
				}
				slices.Sort(want)
				if keys := s3test.RawKeys(t, client, bucket); !slices.Equal(keys, want) {
					t.Errorf("keys in the bucket:\n%q\nwant\n%q", keys, want)
				}
			})
			for _, n := range []string{"a../b", "x__0x2f__y", "__0x41__", "x/__0x41__", "__0x-1__"} {
				if slices.Contains(got, n) {
					t.Errorf("accepted %q", n)
				}
			}
			for _, n := range []string{"a..", "a..b/c", "a%2Fb", "a+b", "a b", "ü", `a\b`, "a?b", "a#b", "%zz", "__0x80000000__"} {
				if !slices.Contains(got, n) {
					t.Errorf("refused %q", n)
				}
			}
			if keys := s3test.RawKeys(t, client, bucket); len(keys) != 0 {
				t.Errorf("left in the bucket: %q", keys)
			}
			for _, p := range []string{"a../", "x__0x41__", "c\x01"} {
				if _, err := d.List(t.Context(), &driver.ListOptions{Prefix: p}); !errors.Is(err, driver.ErrInvalidName) {
					t.Errorf("List(prefix %q) = %v, want ErrInvalidName", p, err)
				}
			}
		})
	}
}

// TestPrefixedPlantedKeys plants, with the S3 client itself, objects whose
// keys hold every character from U+0001 to U+00FF, bytes that are not UTF-8,
// and Go CDK escape sequences, beside a prefixed bucket's objects, inside
// and outside its prefix: listing never fails, and it shows exactly the
// planted keys that are valid names the driver would write itself.
func TestPrefixedPlantedKeys(t *testing.T) {
	b, client, bucket := openS3Bucket(t, s3test.NewCountingTransport(nil))
	d := newPrefixed(t, b, "pfx/")
	v := d
	var keys []string
	for c := rune(1); c < 256; c++ {
		keys = append(keys, "pfx/k"+string(c))
		if c < 32 || c == 127 || c == '%' || c == '+' || c == ' ' {
			keys = append(keys, "k"+string(c))
		}
	}
	keys = append(keys, "pfx/\x80", "pfx/b\xc3", "pfx/\xff", "pfx/a\xffb/c",
		"pfx/a..__0x2f__b", "pfx/__0x41__", "pfx/x__0x5f___0x41__", "pfx/%zz", "pfx/a+b", "pfx/a b", "pfx/a%2Bb")
	planted, refused := plantAll(t, client, bucket, keys)
	var want []string
	for _, key := range planted {
		if name, ok := strings.CutPrefix(key, "pfx/"); ok && v.ValidateName(name) == nil {
			want = append(want, name)
		}
	}
	t.Logf("MinIO refused %d planted keys: %q", len(refused), refused)
	write(t, d, "mine", "mine")
	want = append(want, "mine")
	slices.Sort(want)
	for _, size := range []int{0, 1, 7} {
		var got []string
		token := ""
		for {
			p, err := d.List(t.Context(), &driver.ListOptions{PageToken: token, PageSize: size})
			if err != nil {
				t.Fatalf("List (page size %d): %v", size, err)
			}
			for _, o := range p.Objects {
				got = append(got, o.Name)
			}
			if token = p.NextPageToken; token == "" {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("List (page size %d) =\n%q\nwant\n%q", size, got, want)
		}
	}
	// The planted keys are all still there.
	raw := s3test.RawKeys(t, client, bucket)
	for _, key := range planted {
		if !slices.Contains(raw, key) {
			t.Errorf("planted %q is gone", key)
		}
	}
	if len(raw) != len(planted)+1 {
		t.Errorf("%d keys in the bucket, want %d", len(raw), len(planted)+1)
	}
}

// plantAll plants keys concurrently and returns those the server stored and
// those it refused.
func plantAll(t *testing.T, client *awss3.Client, bucket string, keys []string) (planted, refused []string) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, key := range keys {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			err := s3test.Plant(t, client, bucket, key)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused = append(refused, key)
			} else {
				planted = append(planted, key)
			}
		})
	}
	wg.Wait()
	slices.Sort(planted)
	slices.Sort(refused)
	return planted, refused
}
