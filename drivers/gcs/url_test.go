package gcs_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/gcs"
	"github.com/blobcache/blobcache/internal/gcstest"
)

func TestParseURL(t *testing.T) {
	for raw, want := range map[string]gcs.Options{
		"gs://bucket":                                     {},
		"gs://my-bucket.example_1/":                       {},
		"GS://bucket?Endpoint=http://127.0.0.1:4443":      {Endpoint: "http://127.0.0.1:4443"},
		"gs://bucket?endpoint=https://gcs.example.com/":   {Endpoint: "https://gcs.example.com/"},
		"gs://bucket?anonymous=true":                      {Anonymous: true},
		"gs://bucket?ANONYMOUS=0&endpoint=http://[::1]:1": {Endpoint: "http://[::1]:1"},
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		_, got, err := gcs.ParseURL(u)
		if err != nil || got != want {
			t.Errorf("ParseURL(%s) = %v, %v; want %v", raw, got, err, want)
		}
	}
}

func TestParseURLRefuses(t *testing.T) {
	for raw, mention := range map[string]string{
		"s3://bucket":                                     "not gs",
		"gs://":                                           "no bucket",
		"gs://Bucket":                                     "not a GCS bucket name",
		"gs://ab":                                         "not a GCS bucket name",
		"gs://-bucket":                                    "not a GCS bucket name",
		"gs://bucket/path":                                "has a path",
		"gs://user@bucket":                                "user information",
		"gs://bucket#frag":                                "fragment",
		"gs://bucket?prefix=x":                            `"prefix"`,
		"gs://bucket?access_id=x":                         `"access_id"`,
		"gs://bucket?endpoint=":                           "endpoint",
		"gs://bucket?endpoint":                            "endpoint",
		"gs://bucket?endpoint=127.0.0.1:4443":             "endpoint",
		"gs://bucket?endpoint=ftp://h":                    "not http or https",
		"gs://bucket?endpoint=http://h/storage":           "has a path",
		"gs://bucket?endpoint=http://h?x=1":               "endpoint",
		"gs://bucket?endpoint=http://u:p@h":               "user information",
		"gs://bucket?endpoint=http://h:99999":             "port",
		"gs://bucket?endpoint=http://h&Endpoint=http://g": "given twice",
		"gs://bucket?anonymous=yes":                       "not a boolean",
		"gs://bucket?anonymous=true;x=1":                  "';'",
		"gs://bucket?anonymous=%zz":                       "malformed",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			// Some are refused by url.Parse already; build them by hand.
			t.Fatalf("url.Parse(%q): %v", raw, err)
		}
		_, _, err = gcs.ParseURL(u)
		if !errors.Is(err, driver.ErrInvalidOption) || !strings.Contains(err.Error(), mention) || !strings.HasPrefix(err.Error(), "gcs: ") {
			t.Errorf("ParseURL(%s) = %v, want ErrInvalidOption mentioning %s", raw, err, mention)
		}
	}
	u, _ := url.Parse("gs://bucket?prefix=x")
	_, _, err := gcs.ParseURL(u)
	var unknown *driver.UnknownOptionError
	if !errors.As(err, &unknown) || unknown.Name != "prefix" {
		t.Errorf("unknown parameter: %v, want an *UnknownOptionError", err)
	}
}

func TestOpenRefusesBeforeSending(t *testing.T) {
	ct := &gcstest.CountingTransport{}
	for _, opts := range []gcs.Options{
		{Endpoint: "http://127.0.0.1:1/x"},
		{Endpoint: "nope"},
	} {
		opts.HTTPClient = nil
		if _, err := gcs.Open(t.Context(), "bucket", opts); !errors.Is(err, driver.ErrInvalidOption) {
			t.Errorf("Open(%v) = %v, want ErrInvalidOption", opts, err)
		}
	}
	if _, err := gcs.Open(t.Context(), "Not_A_Bucket", gcs.Options{}); !errors.Is(err, driver.ErrInvalidOption) {
		t.Errorf("Open of a bad bucket name = %v, want ErrInvalidOption", err)
	}
	if n := len(ct.Requests()); n != 0 {
		t.Errorf("%d requests", n)
	}
}

func TestScheme(t *testing.T) {
	s, ok := driver.Lookup("GS")
	if !ok || s.Name != "gs" || s.Open == nil || s.ValidateName == nil || s.Describe == nil {
		t.Fatalf("Lookup(gs) = %+v, %v", s, ok)
	}
	for _, n := range []string{"a../b", "x__0x41__", "a\nb", "a\rb"} {
		if err := s.ValidateName(n); !errors.Is(err, driver.ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", n, err)
		}
	}
	for _, n := range []string{"cache/0a1b", "a..b/c", "ü/+", "%41", "a b", `a\b`, "a#b?c"} {
		if err := s.ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v", n, err)
		}
	}
	u, _ := url.Parse("gs://bucket?endpoint=http://127.0.0.1:4443/&anonymous=true")
	if got, want := s.Describe(u), "gs://bucket?endpoint=http://127.0.0.1:4443"; got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
}

// TestCacheOpenURL opens a cache by URL on fake-gcs-server and uses it.
func TestCacheOpenURL(t *testing.T) {
	srv := gcstest.Start(t)
	bucket := srv.NewBucket()
	ctx := t.Context()
	c, err := cache.Open(ctx, "gs://"+bucket+"?endpoint="+srv.URL()+"&location=cache&max_entries=10")
	if err != nil {
		t.Fatalf("cache.Open: %v", err)
	}
	defer c.Close()
	if ok, err := c.Add(ctx, "k", []byte("v"), time.Hour); err != nil || !ok {
		t.Fatalf("Add = %v, %v", ok, err)
	}
	if ok, err := c.Add(ctx, "k", []byte("w"), time.Hour); err != nil || ok {
		t.Fatalf("second Add = %v, %v", ok, err)
	}
	if n, err := c.Incr(ctx, "n", 1); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Incr of an absent key = %d, %v; want ErrMiss", n, err)
	}
	if v, err := c.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if _, err := cache.Open(ctx, "gs://"+bucket+"?endpoint="+srv.URL()+"&colour=blue"); !errors.Is(err, driver.ErrInvalidOption) {
		t.Errorf("cache.Open with an unknown parameter = %v, want ErrInvalidOption", err)
	}
}
