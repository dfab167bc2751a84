package s3_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/blobcache/blobcache/driver"
	_ "github.com/blobcache/blobcache/drivers/s3"
	"github.com/blobcache/blobcache/internal/s3test"
)

func s3Scheme(t *testing.T) driver.Scheme {
	t.Helper()
	s, ok := driver.Lookup("S3")
	if !ok {
		t.Fatal(`driver.Lookup("S3"): not registered`)
	}
	return s
}

func TestSchemeRegistered(t *testing.T) {
	s := s3Scheme(t)
	if s.Name != "s3" || s.Open == nil || s.ValidateName == nil || s.Describe == nil || s.FromConfig == nil {
		t.Fatalf("scheme %+v lacks a field", s)
	}
	if !slices.Equal(s.Secrets, []string{"secret_key", "secret_access_key"}) {
		t.Errorf("Secrets = %q", s.Secrets)
	}
	for _, b := range []string{"s3", "S3", "s3cache.AmazonS3Cache", "s3cache.anything"} {
		if got, ok := driver.LookupBackend(b); !ok || got.Name != "s3" {
			t.Errorf("LookupBackend(%q) = %q, %v", b, got.Name, ok)
		}
	}
	if got, ok := driver.LookupBackend("s3cachex"); ok && got.Name == "s3" {
		t.Errorf(`LookupBackend("s3cachex") is s3`)
	}
}

// The scheme's ValidateName answers before anything is opened or sent, and
// as the opened driver's ValidateName does.
func TestSchemeValidateNameBeforeOpen(t *testing.T) {
	isolateAWS(t)
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1) // HeadBucket: the bucket exists
	}))
	defer srv.Close()
	s := s3Scheme(t)
	names := append(slices.Clone(s3test.TrickyNames), "a../0a1b", "x/a../e", "__0x41__", "c__0x2f__d", "a..b/0a1b", "ü/+", "%41", "cache")
	static := map[string]error{}
	for _, n := range names {
		static[n] = s.ValidateName(n)
	}
	// The entries of a location "a.." (a cache checks its location so).
	for _, n := range []string{"a../0a1b", "x/a../e", "__0x41__", "c__0x2f__d", "a\x01b"} {
		if !errors.Is(static[n], driver.ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", n, static[n])
		}
	}
	for _, n := range []string{"a..b/0a1b", "ü/+", "%41", "cache", "a b"} {
		if static[n] != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", n, static[n])
		}
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("ValidateName sent %d requests", n)
	}
	q := url.Values{"endpoint": {srv.URL}, "use_path_style": {"true"}, "region": {"us-east-1"},
		"access_key": {"AK"}, "secret_key": {"SK"}}
	d, err := s.Open(t.Context(), &url.URL{Scheme: "s3", Host: "bucket", RawQuery: q.Encode()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer d.Close()
	if n := requests.Load(); n != 1 {
		t.Errorf("Open sent %d requests, want 1 HeadBucket", n)
	}
	v := d.(driver.NameValidator)
	for _, n := range names {
		if got := v.ValidateName(n); (got == nil) != (static[n] == nil) {
			t.Errorf("ValidateName(%q): scheme says %v, opened driver %v", n, static[n], got)
		}
	}
}

func TestSchemeDescribe(t *testing.T) {
	s := s3Scheme(t)
	for raw, want := range map[string]string{
		"s3://b": "s3://b",
		"s3://b?region=eu-west-1&access_key=AK&secret_key=SK":                         "s3://b",
		"s3://b?ENDPOINT=http://127.0.0.1:9000&secret_access_key=SK&access_key_id=AK": "s3://b?endpoint=http://127.0.0.1:9000",
		"s3://?storage_bucket_name=bk&endpoint=https://u:p@minio.example/path":        "s3://bk?endpoint=https://minio.example/path",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		got := s.Describe(u)
		if got != want {
			t.Errorf("Describe(%s) = %q, want %q", raw, got, want)
		}
		for _, secret := range []string{"SK", "AK", "u:p"} {
			if strings.Contains(got, secret) {
				t.Errorf("Describe(%s) = %q shows %q", raw, got, secret)
			}
		}
	}
}

func TestSchemeFromConfig(t *testing.T) {
	s := s3Scheme(t)
	opt := func(label, name, value string) driver.ConfigOption {
		return driver.ConfigOption{Label: label, Name: name, Value: value}
	}
	loc := opt("LOCATION", "LOCATION", "cache/x")
	region := opt("OPTIONS.region", "region", "eu-west-1")
	u, rest, err := s.FromConfig(&loc, []driver.ConfigOption{region, opt("OPTIONS.BUCKET_NAME", "BUCKET_NAME", "bkt")})
	if err != nil {
		t.Fatal(err)
	}
	if u.String() != "s3://bkt" {
		t.Errorf("URL = %s, want s3://bkt", u)
	}
	want := []driver.ConfigOption{region, opt("LOCATION", "location", "cache/x")}
	if !slices.Equal(rest, want) {
		t.Errorf("options = %+v, want %+v", rest, want)
	}
	// django-s3-cache's name for the bucket, and no LOCATION.
	u, rest, err = s.FromConfig(nil, []driver.ConfigOption{opt("OPTIONS.STORAGE_BUCKET_NAME", "STORAGE_BUCKET_NAME", "b2")})
	if err != nil || u.Host != "b2" || len(rest) != 0 {
		t.Errorf("STORAGE_BUCKET_NAME: %v, %+v, %v", u, rest, err)
	}
	for _, tc := range []struct {
		opts []driver.ConfigOption
		want []string // in the message
	}{
		{nil, []string{"bucket_name: missing for the s3 backend"}},
		{[]driver.ConfigOption{opt("OPTIONS.bucket_name", "bucket_name", "")}, []string{"bucket_name: missing"}},
		{[]driver.ConfigOption{opt("OPTIONS.bucket_name", "bucket_name", "a"), opt("OPTIONS.STORAGE_BUCKET_NAME", "STORAGE_BUCKET_NAME", "b")},
			[]string{"bucket_name given twice", "OPTIONS.bucket_name", "OPTIONS.STORAGE_BUCKET_NAME"}},
		{[]driver.ConfigOption{opt("OPTIONS.bucket_name", "bucket_name", "a/b")}, []string{`bucket_name: "a/b" is not a bucket name`}},
		{[]driver.ConfigOption{opt("OPTIONS.bucket_name", "bucket_name", "a?b")}, []string{"is not a bucket name"}},
	} {
		_, _, err := s.FromConfig(&loc, tc.opts)
		if !errors.Is(err, driver.ErrInvalidOption) {
			t.Errorf("FromConfig(%+v) = %v, want ErrInvalidOption", tc.opts, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("FromConfig(%+v) = %v, want it to say %q", tc.opts, err, w)
			}
		}
	}
}

// Open's parameter errors are driver.ErrInvalidOption.
func TestSchemeOpenOptionErrors(t *testing.T) {
	s := s3Scheme(t)
	for _, raw := range []string{"s3://b?nope=1", "s3://b?region=a_b", "s3://?region=us-east-1", "s3://b?access_key=AK"} {
		u, _ := url.Parse(raw)
		if _, err := s.Open(t.Context(), u); !errors.Is(err, driver.ErrInvalidOption) {
			t.Errorf("Open(%s) = %v, want ErrInvalidOption", raw, err)
		}
	}
}
