package s3_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/s3"
	"github.com/blobcache/blobcache/internal/s3test"
)

// Server-side encryption reaches the wire on every write. MinIO without a KMS
// refuses such writes, so the test asserts on the captured request.
func TestServerSideEncryptionOnTheWire(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ sse, kms string }{{"AES256", ""}, {"aws:kms", "key-4711"}} {
		d := e.open(t, func(o *s3.Options) { o.ServerSideEncryption = tc.sse; o.KMSKeyID = tc.kms })
		e.ct.Reset()
		err := d.Write(t.Context(), "enc", strings.NewReader("x"), &driver.WriteOptions{})
		reqs := e.ct.Requests()
		if len(reqs) == 0 || reqs[0].Op != s3test.PutObject {
			t.Fatalf("%s: no PutObject sent (err %v)", tc.sse, err)
		}
		h := reqs[0].Header
		if got := h.Get("X-Amz-Server-Side-Encryption"); got != tc.sse {
			t.Errorf("x-amz-server-side-encryption = %q, want %q", got, tc.sse)
		}
		if got := h.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"); got != tc.kms {
			t.Errorf("kms key id = %q, want %q", got, tc.kms)
		}
		t.Logf("sse %s: MinIO answered %v", tc.sse, err)
	}
}

// is_gzipped: the PutObject carries Content-Encoding: gzip and a gzip body;
// a cache without gzip reads the entry all the same.
func TestGzipContentEncodingOnTheWire(t *testing.T) {
	e := newEnv(t)
	d := e.open(t, nil)
	zipped, err := cache.New(d, cache.WithGzip(true), cache.WithMaxEntries(0))
	if err != nil {
		t.Fatal(err)
	}
	value := []byte(strings.Repeat("gzip me ", 500))
	e.ct.Reset()
	if err := zipped.Set(t.Context(), "k", value, time.Hour); err != nil {
		t.Fatal(err)
	}
	reqs := e.ct.Requests()
	if len(reqs) != 1 || reqs[0].Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("PutObject Content-Encoding = %q", reqs[0].Header.Get("Content-Encoding"))
	}
	attrs, err := s3test.Client(t, e.cfg, nil).HeadObject(t.Context(), &awss3.HeadObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(zipped.ObjectName("k"))})
	if err != nil {
		t.Fatal(err)
	}
	if ce := aws.ToString(attrs.ContentEncoding); ce != "gzip" || *attrs.ContentLength >= int64(len(value))/4 {
		t.Errorf("stored object: Content-Encoding %q, %d bytes for %d", ce, *attrs.ContentLength, len(value))
	}
	plain, err := cache.New(e.open(t, nil), cache.WithMaxEntries(0))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := plain.Get(t.Context(), "k"); err != nil || string(got) != string(value) {
		t.Fatalf("plain cache reading a gzip entry: %d bytes, %v", len(got), err)
	}
}

// Without access_key, credentials come from the standard AWS chain.
func TestCredentialsFromTheAWSChain(t *testing.T) {
	e := newEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", e.cfg.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", e.cfg.SecretKey)
	t.Setenv("AWS_REGION", e.cfg.Region)
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	d := e.open(t, func(o *s3.Options) { o.AccessKey, o.SecretKey, o.Region = "", "", "" })
	write(t, d, "chain", "ok")
	if got, _ := read(t, d, "chain"); got != "ok" {
		t.Fatalf("read %q", got)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	opts := e.options()
	opts.AccessKey, opts.SecretKey = "", ""
	if _, err := s3.Open(t.Context(), e.bucket, opts); err == nil {
		t.Fatal("Open with wrong chain credentials succeeded")
	}
}

// A Django CACHES entry for django-s3-cache, legacy names and all, opens a
// working cache on MinIO.
func TestDjangoConfigOnMinIO(t *testing.T) {
	e := newEnv(t)
	cfg := cache.Config{
		"BACKEND":  "s3cache.AmazonS3Cache",
		"LOCATION": "django",
		"TIMEOUT":  60,
		"OPTIONS": map[string]any{
			"ACCESS_KEY_ID":       e.cfg.AccessKey,
			"SECRET_ACCESS_KEY":   e.cfg.SecretKey,
			"STORAGE_BUCKET_NAME": e.bucket,
			"ENDPOINT":            e.cfg.Endpoint,
			"REGION":              e.cfg.Region,
			"USE_PATH_STYLE":      true,
			"DEFAULT_ACL":         "private",
			"IS_GZIPPED":          true,
			"MAX_ENTRIES":         10,
			"CULL_FREQUENCY":      0,
		},
	}
	c, err := cache.OpenConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := t.Context()
	for i := range 11 {
		if err := c.Set(ctx, "k"+string(rune('a'+i)), []byte("v"), cache.DefaultTTL); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := c.Len(ctx); err != nil || n != 1 {
		t.Errorf("Len = %d, %v; want 1 (max_entries 10, cull_frequency 0)", n, err)
	}
	if !strings.HasPrefix(c.ObjectName("x"), "django/") {
		t.Errorf("ObjectName = %q, want the django/ location", c.ObjectName("x"))
	}
	if strings.Contains(c.String(), e.cfg.SecretKey) {
		t.Errorf("String shows the secret")
	}
	// A missing bucket without create_bucket fails at Open, naming it.
	cfg["OPTIONS"].(map[string]any)["STORAGE_BUCKET_NAME"] = "bct-missing-" + strings.TrimPrefix(e.bucket, "bct-")
	_, err = cache.OpenConfig(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing bucket: %v", err)
	}
	var ue *url.Error
	if errors.As(err, &ue) && strings.Contains(ue.URL, e.cfg.SecretKey) {
		t.Errorf("error carries the secret in a URL")
	}
}
