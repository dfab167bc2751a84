package s3_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
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

// isolateAWS keeps this machine's AWS files and environment out of a test.
func isolateAWS(t *testing.T) {
	t.Helper()
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// countingClient is an HTTP client that never dials: it counts requests and
// answers 200 to each (so HeadBucket finds the bucket).
func countingClient() (*http.Client, *atomic.Int64) {
	n := new(atomic.Int64)
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		n.Add(1)
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})
	return &http.Client{Transport: rt}, n
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Every bad Options value or combination fails Open with ErrInvalidOption
// naming it, before any request, and never shows the secret.
func TestOptionValidation(t *testing.T) {
	isolateAWS(t)
	client, requests := countingClient()
	const endpoint = "http://127.0.0.1:9"
	const secret = "s3cr3t-SHOULD-NOT-SHOW"
	good := func() s3.Options {
		return s3.Options{Endpoint: endpoint, Region: "us-east-1", UsePathStyle: true, AccessKey: "AK", SecretKey: secret, HTTPClient: client}
	}
	d, err := s3.Open(t.Context(), "bkt", good())
	if err != nil {
		t.Fatalf("Open(good options) = %v", err)
	}
	d.Close()
	if requests.Swap(0) == 0 {
		t.Fatal("Open(good options) sent nothing: the test cannot see requests")
	}
	for _, tc := range []struct {
		name string
		mod  func(*s3.Options)
	}{
		{"default_acl", func(o *s3.Options) { o.DefaultACL = "privat" }},
		{"bucket_acl", func(o *s3.Options) { o.BucketACL = "private" }}, // no CreateBucket: it would do nothing
		{"bucket_acl", func(o *s3.Options) { o.CreateBucket = true; o.BucketACL = "bucket-owner-full-control" }},
		{"bucket_acl", func(o *s3.Options) { o.CreateBucket = true; o.DefaultACL = "bucket-owner-read" }},
		{"storage_class", func(o *s3.Options) { o.StorageClass = "CHEAP" }},
		{"reduced_redundancy", func(o *s3.Options) { o.StorageClass = "STANDARD_IA"; o.ReducedRedundancy = true }},
		{"ssetype", func(o *s3.Options) { o.ServerSideEncryption = "AES" }},
		{"kmskeyid", func(o *s3.Options) { o.KMSKeyID = "k" }},
		{"kmskeyid", func(o *s3.Options) { o.ServerSideEncryption = "AES256"; o.KMSKeyID = "k" }},
		{"kmskeyid", func(o *s3.Options) { o.ServerSideEncryption = "aws:kms"; o.KMSKeyID = "k k" }},
		{"secret_key", func(o *s3.Options) { o.SecretKey = "" }},
		{"access_key", func(o *s3.Options) { o.AccessKey = "" }},
		{"secret_key", func(o *s3.Options) { o.SecretKey = "with space" + secret }},
		{"secret_key", func(o *s3.Options) { o.SecretKey = secret + "\n" }},
		{"access_key", func(o *s3.Options) { o.AccessKey = "A K" }},
		{"anonymous", func(o *s3.Options) { o.Anonymous = true }},
		{"profile", func(o *s3.Options) { o.Profile = "dev" }},
		{"profile", func(o *s3.Options) { o.AccessKey, o.SecretKey, o.Anonymous, o.Profile = "", "", true, "dev" }},
		{"endpoint", func(o *s3.Options) { o.Endpoint = "ftp://127.0.0.1:1" }},
		{"endpoint", func(o *s3.Options) { o.Endpoint = strings.TrimPrefix(endpoint, "http://") }},
		{"endpoint", func(o *s3.Options) { o.Endpoint = "http://" }},
		{"endpoint", func(o *s3.Options) { o.Endpoint = "/relative" }},
		{"endpoint", func(o *s3.Options) { o.Endpoint = "http://AK:" + secret + "@127.0.0.1:1" }},
		{"endpoint", func(o *s3.Options) { o.Endpoint = endpoint + "?X-Amz-Security-Token=" + secret }},
		{"endpoint", func(o *s3.Options) { o.Endpoint = endpoint + "#frag" }},
		{"endpoint", func(o *s3.Options) { o.Endpoint = "http://127.0.0.1:99999" }},
		{"endpoint", func(o *s3.Options) { o.Endpoint = "http://h\x00st" }},
		{"region", func(o *s3.Options) { o.Region = "us east-1" }},
		{"region", func(o *s3.Options) { o.Region = "x.evil.com/" }},
		{"region", func(o *s3.Options) { o.Region = "-x" }},
		{"region", func(o *s3.Options) { o.Region = strings.Repeat("a", 64) }},
		{"dualstack", func(o *s3.Options) { o.DualStack = true }},
		{"fips", func(o *s3.Options) { o.FIPS = true }},
		{"accelerate", func(o *s3.Options) { o.Accelerate = true }},
		{"lifecycle", func(o *s3.Options) { o.Lifecycle = "on" }},
		{"lifecycle", func(o *s3.Options) { o.Lifecycle = "install " }},
		{"accelerate", func(o *s3.Options) { o.Endpoint = ""; o.Accelerate = true }}, // with path style
		{"accelerate", func(o *s3.Options) { o.Endpoint, o.UsePathStyle = "", false; o.Accelerate, o.FIPS = true, true }},
	} {
		opts := good()
		tc.mod(&opts)
		_, err := s3.Open(t.Context(), "bkt", opts)
		switch {
		case err == nil:
			t.Errorf("Open(%v) succeeded, want an error naming %s", opts, tc.name)
		case !errors.Is(err, driver.ErrInvalidOption) || !strings.Contains(err.Error(), tc.name):
			t.Errorf("Open(%v) = %v, want ErrInvalidOption naming %s", opts, err, tc.name)
		case strings.Contains(err.Error(), secret):
			t.Errorf("Open(%v): the error shows the secret: %v", opts, err)
		}
		if n := requests.Swap(0); n != 0 {
			t.Errorf("Open(%v) sent %d requests", opts, n)
		}
	}
	for _, bucket := range []string{"", "a", "b/c", "b c", "bkt:9000", "b?x", strings.Repeat("b", 256)} {
		_, err := s3.Open(t.Context(), bucket, good())
		if !errors.Is(err, driver.ErrInvalidOption) || !strings.Contains(err.Error(), "bucket") {
			t.Errorf("Open(bucket %q) = %v, want ErrInvalidOption naming the bucket", bucket, err)
		}
	}
	if n := requests.Swap(0); n != 0 {
		t.Errorf("bad bucket names sent %d requests", n)
	}
}

// ParseURL honours every pair or refuses it, naming it.
func TestOptionParseURLStrict(t *testing.T) {
	const secret = "s3cr3t-SHOULD-NOT-SHOW"
	parse := func(raw string) (string, s3.Options, error) {
		t.Helper()
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("url.Parse(%s): %v", raw, err)
		}
		return s3.ParseURL(u)
	}
	for _, tc := range []struct{ query, want string }{
		{"region=us-east-1;x=1", `"region"`},
		{"region=us-east-1&x=1;y=2", `"x"`},
		{"region=%zz", `"region"`},
		{"reg%zzion=us-east-1", "escape"},
		{"region", `"region": no value`},
		{"region=", `"region": empty value`},
		{"=us-east-1", "no name"},
		{"access_key=A&access_key_id=A&secret_key=" + secret, "twice"},
		{"access_key=A&secret_key=" + secret + "&secret_access_key=" + secret, "twice"},
		{"bucket_name=b&storage_bucket_name=b", "twice"},
		{"use_path_style=1&s3forcepathstyle=1", "twice"},
		{"sse=AES256&ssetype=AES256", "twice"},
		{"sse=aws:kms&kmskeyid=k&kms_key_id=k", "twice"},
		{"Region=a&REGION=a", "twice"},
		{"use_path_style=yes", `"use_path_style": "yes" is not a boolean`},
		{"anonymous=on", `"anonymous"`},
		{"default_acl=nope", "default_acl"},
		{"region=a%20b", "region"},
		{"access_key=AK&secret_key=" + secret + "&tail=x", "after secret_key"},
		{"access_key=AK&secret_key=" + secret + "&tail", "after secret_key"},
		// s3blob's own parameters that this driver does not take.
		{"disable_https=true", `unknown option "disable_https"`},
		{"hostname_immutable=true", `unknown option "hostname_immutable"`},
		{"rate_limiter_capacity=1", `unknown option "rate_limiter_capacity"`},
		{"role=arn:aws:iam::1:role/r", `unknown option "role"`},
		{"awssdk=v2", `unknown option "awssdk"`},
		{"request_checksum_calculation=when_required", `unknown option "request_checksum_calculation"`},
		{"response_checksum_validation=when_required", `unknown option "response_checksum_validation"`},
	} {
		_, _, err := parse("s3://bkt?" + tc.query)
		switch {
		case err == nil:
			t.Errorf("ParseURL(?%s) succeeded, want an error with %s", tc.query, tc.want)
		case !errors.Is(err, driver.ErrInvalidOption) || !strings.Contains(err.Error(), tc.want):
			t.Errorf("ParseURL(?%s) = %v, want ErrInvalidOption with %s", tc.query, err, tc.want)
		case strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "tail"):
			t.Errorf("ParseURL(?%s): the error shows a secret: %v", tc.query, err)
		}
	}
	for _, raw := range []string{"s3://bkt#frag", "s3://bkt?region=a#b", "s3:bkt", "s3://b:1", "s3://?bucket_name=a/b"} {
		if _, _, err := parse(raw); !errors.Is(err, driver.ErrInvalidOption) {
			t.Errorf("ParseURL(%s) = %v, want ErrInvalidOption", raw, err)
		}
	}
	var unknown *driver.UnknownOptionError
	if _, _, err := parse("s3://bkt?disable_https=true"); !errors.As(err, &unknown) || unknown.Name != "disable_https" {
		t.Errorf("an unknown parameter is not an *UnknownOptionError: %v", err)
	}
	// Values are matched without case and honoured in S3's spelling.
	_, o, err := parse("s3://bkt?default_acl=PUBLIC-READ&storage_class=standard_ia&sse=aws:KMS&kmskeyid=k&create_bucket=true&bucket_acl=Private")
	if err != nil || o.DefaultACL != "public-read" || o.StorageClass != "STANDARD_IA" || o.ServerSideEncryption != "aws:kms" || o.BucketACL != "private" {
		t.Errorf("ParseURL of case-folded values = %v, %v", o, err)
	}
	if _, o, err := parse("s3://bkt?lifecycle=Install"); err != nil || o.Lifecycle != s3.LifecycleInstall {
		t.Errorf("lifecycle=Install: %v, %v", o, err)
	}
	if _, _, err := parse("s3://bkt?lifecycle=yes"); !errors.Is(err, driver.ErrInvalidOption) || !strings.Contains(err.Error(), `lifecycle "yes" is not a lifecycle mode`) {
		t.Errorf("lifecycle=yes: %v, want an error naming it", err)
	}
	// Empty segments lose nothing.
	if _, o, err := parse("s3://bkt?&region=eu-west-1&&"); err != nil || o.Region != "eu-west-1" {
		t.Errorf("empty segments: %v, %v", o, err)
	}
}

// Options never show the secret key, also through slog.
func TestOptionFormatting(t *testing.T) {
	const secret = "s3cr3t-SHOULD-NOT-SHOW"
	o := s3.Options{AccessKey: "ak", SecretKey: secret}
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var b bytes.Buffer
		slog.New(h(&b)).Info("opts", "o", o, "p", &o)
		if strings.Contains(b.String(), secret) || !strings.Contains(b.String(), "REDACTED") {
			t.Errorf("slog shows %s", b.String())
		}
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		for _, v := range []any{o, &o, []any{o}, map[string]s3.Options{"x": o}} {
			s := fmt.Sprintf(f, v)
			if strings.Contains(s, secret) || strings.Contains(strings.ToLower(s), fmt.Sprintf("%x", secret)) {
				t.Errorf("fmt %s of %T shows the secret: %s", f, v, s)
			}
		}
	}
	if s := fmt.Sprint(s3.Options{}); !strings.Contains(s, `SecretKey:""`) {
		t.Errorf("an empty secret should show as empty: %s", s)
	}
}
