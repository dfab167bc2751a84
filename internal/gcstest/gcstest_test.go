package gcstest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/gcs"
	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// TestServer: a driver on Start's server reads what it writes, and a child
// process's locator names the same bucket.
func TestServer(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL = %q, want a loopback address", s.URL())
	}
	bucket := s.NewBucket()
	ct := &CountingTransport{}
	d, err := s.Open(t.Context(), bucket, ct)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Write(t.Context(), "a/b", strings.NewReader("x"), &driver.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	b, _, err := d.Read(t.Context(), "a/b", 0, -1)
	if err != nil || string(b) != "x" {
		t.Fatalf("Read = %q, %v", b, err)
	}
	got := ct.Snapshot()
	if got[GetBucket] != 1 || got[Insert] != 1 || got[Download] != 1 || len(got) != 3 {
		t.Errorf("requests = %v", got)
	}
	u, bk, err := ParseLocator(Locator(s.URL(), bucket))
	if err != nil || u != s.URL() || bk != bucket {
		t.Errorf("ParseLocator = %q, %q, %v", u, bk, err)
	}
	for _, bad := range []string{"", "x", "http://example.com:1 b", "http://127.0.0.1:1 "} {
		if _, _, err := ParseLocator(bad); err == nil {
			t.Errorf("ParseLocator(%q) succeeded", bad)
		}
	}
}

func TestClassify(t *testing.T) {
	for target, want := range map[string]Op{
		"GET /storage/v1/b/bkt":                         GetBucket,
		"GET /storage/v1/b/bkt/o?prefix=x":              List,
		"GET /storage/v1/b/bkt/o/a%2Fb":                 GetAttrs,
		"GET /storage/v1/b/bkt/o/a%2Fb?alt=media":       Download,
		"DELETE /storage/v1/b/bkt/o/a%2Fb":              Delete,
		"POST /upload/storage/v1/b/bkt/o?uploadType=mu": Insert,
		"GET /bkt/a/b":                                  Download,
		"POST /batch/storage/v1":                        Batch,
		"PATCH /storage/v1/b/bkt/o/a":                   Other,
	} {
		method, path, _ := strings.Cut(target, " ")
		req, err := http.NewRequest(method, "http://127.0.0.1:1"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := Classify(req); got != want {
			t.Errorf("Classify(%s) = %s, want %s", target, got, want)
		}
	}
}

// TestFakeNeedsPublicHost documents why Start sets PublicHost: without it,
// fake-gcs-server v1.56.1 routes the Go client's downloads (XML API,
// GET /bucket/object at the endpoint's host) to a catch-all route that takes
// the host as the bucket name, so every read is "not found": every cache Get
// would be a miss.
func TestFakeNeedsPublicHost(t *testing.T) {
	fake, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Stop()
	fake.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "bkt"})
	ctx := context.Background()
	d, err := gcs.Open(ctx, "bkt", gcs.Options{Endpoint: fake.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Write(ctx, "a", strings.NewReader("x"), &driver.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Read(ctx, "a", 0, -1); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Read without PublicHost = %v; fake-gcs-server now serves downloads at any host (update the notes and Start)", err)
	}
}
