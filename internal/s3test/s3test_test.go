package s3test

import (
	"fmt"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		method, target string
		header         string
		want           Op
	}{
		{"GET", "/b/k?x-id=GetObject", "", GetObject},
		{"GET", "/b/dir/k", "", GetObject},
		{"HEAD", "/b/k", "", HeadObject},
		{"PUT", "/b/k?x-id=PutObject", "", PutObject},
		{"PUT", "/b/k", "X-Amz-Copy-Source", Other},
		{"PUT", "/b/k?partNumber=1&uploadId=u", "", Other},
		{"DELETE", "/b/k?x-id=DeleteObject", "", DeleteObject},
		{"POST", "/b?delete=", "", DeleteObjects},
		{"POST", "/b/?delete", "", DeleteObjects},
		{"GET", "/b?list-type=2&prefix=p", "", ListObjectsV2},
		{"GET", "/b?prefix=p", "", Other},
		{"HEAD", "/b", "", HeadBucket},
		{"PUT", "/b", "", CreateBucket},
		{"PUT", "/b?acl", "", Other},
		{"DELETE", "/b", "", DeleteBucket},
		{"GET", "/b/k?acl", "", Other},
	} {
		req := httptest.NewRequest(c.method, "http://127.0.0.1:9000"+c.target, nil)
		if c.header != "" {
			req.Header.Set(c.header, "x")
		}
		if got := Classify(req); got != c.want {
			t.Errorf("%s %s = %s, want %s", c.method, c.target, got, c.want)
		}
	}
}

func TestCountingTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	ct := NewCountingTransport(nil)
	client := &http.Client{Transport: ct}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			resp, err := client.Get(fmt.Sprintf("%s/b/k%d", srv.URL, i))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	resp, err := client.Head(srv.URL + "/b")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := ct.Snapshot(); got[GetObject] != 20 || got[HeadBucket] != 1 || len(got) != 2 || ct.Total() != 21 || ct.Count(GetObject) != 20 {
		t.Errorf("Snapshot = %v, Total = %d", got, ct.Total())
	}
	if reqs := ct.Requests(); len(reqs) != 21 || reqs[20].Op != HeadBucket || reqs[20].Status != 200 {
		t.Errorf("Requests = %v", reqs)
	}
	ct.Reset()
	if ct.Total() != 0 || len(ct.Requests()) != 0 {
		t.Error("Reset kept something")
	}
}

func TestConfigHidesSecret(t *testing.T) {
	c := Config{Endpoint: "http://x", AccessKey: "ak", SecretKey: "hidden-secret", Region: "r"}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(f, c); strings.Contains(s, "hidden-secret") {
			t.Errorf("%s shows the secret: %s", f, s)
		}
	}
}

// TestRemoveBucket checks the cleanup against the server, including objects
// a listing does not show: on MinIO an object "x" hides "x/..." from
// ListObjectsV2.
func TestRemoveBucket(t *testing.T) {
	cfg := Env(t)
	client := Client(t, cfg, nil)
	ctx := t.Context()
	name := BucketName()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"x", "x/y", "z/1", "z/2"} {
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(name), Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveBucket(ctx, client, name); err != nil {
		t.Fatal(err)
	}
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(name)}); err == nil {
		t.Error("bucket still exists")
	}
	if err := RemoveBucket(ctx, client, name); err != nil {
		t.Errorf("RemoveBucket of a missing bucket: %v", err)
	}
}
