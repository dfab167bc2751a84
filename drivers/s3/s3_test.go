package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/s3"
	"github.com/blobcache/blobcache/internal/s3test"
)

// env is one test's server, bucket and request counter.
type env struct {
	cfg    s3test.Config
	bucket string
	ct     *s3test.CountingTransport
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cfg := s3test.Env(t)
	return &env{cfg: cfg, bucket: s3test.NewBucket(t, cfg), ct: s3test.NewCountingTransport(nil)}
}

func (e *env) options() s3.Options {
	return s3.Options{
		Endpoint:     e.cfg.Endpoint,
		Region:       e.cfg.Region,
		UsePathStyle: true,
		AccessKey:    e.cfg.AccessKey,
		SecretKey:    e.cfg.SecretKey,
		HTTPClient:   &http.Client{Transport: e.ct},
	}
}

func (e *env) open(t *testing.T, mod func(*s3.Options)) *s3.Driver {
	t.Helper()
	opts := e.options()
	if mod != nil {
		mod(&opts)
	}
	d, err := s3.Open(t.Context(), e.bucket, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	e.ct.Reset()
	return d
}

// counts asserts the requests since the last Reset, then resets.
func (e *env) counts(t *testing.T, what string, want map[s3test.Op]int) {
	t.Helper()
	got := e.ct.Snapshot()
	if !mapsEqual(got, want) {
		t.Errorf("%s: requests = %v, want %v", what, got, want)
	}
	e.ct.Reset()
}

func mapsEqual(a, b map[s3test.Op]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func write(t *testing.T, d driver.Driver, name, data string) {
	t.Helper()
	if err := d.Write(t.Context(), name, strings.NewReader(data), &driver.WriteOptions{}); err != nil {
		t.Fatalf("Write %q: %v", name, err)
	}
}

func read(t *testing.T, d driver.Driver, name string) (string, driver.Attributes) {
	t.Helper()
	b, a, err := d.Read(t.Context(), name, 0, -1)
	if err != nil {
		t.Fatalf("Read %q: %v", name, err)
	}
	return string(b), a
}

func TestCapabilities(t *testing.T) {
	var d driver.Driver = (*s3.Driver)(nil)
	if _, ok := d.(driver.BatchDeleter); !ok {
		t.Error("*s3.Driver is not a BatchDeleter")
	}
	if _, ok := d.(driver.Replacer); !ok {
		t.Error("*s3.Driver is not a Replacer")
	}
}

func TestReadWriteRanges(t *testing.T) {
	e := newEnv(t)
	d := e.open(t, nil)
	ctx := t.Context()
	const data = "0123456789"
	write(t, d, "obj", data)
	e.counts(t, "small Write", map[s3test.Op]int{s3test.PutObject: 1})

	got, a := read(t, d, "obj")
	e.counts(t, "Read", map[s3test.Op]int{s3test.GetObject: 1})
	if got != data || a.Name != "obj" || a.Size != 10 || a.ModTime.IsZero() || a.ETag == "" {
		t.Errorf("Read = %q, %+v", got, a)
	}
	if d := time.Since(a.ModTime); d > time.Hour || d < -time.Hour {
		t.Errorf("ModTime %v is far from now", a.ModTime)
	}
	for _, c := range []struct {
		off, n int64
		want   string
	}{
		{0, 3, "012"}, {3, 4, "3456"}, {7, -1, "789"}, {8, 10, "89"}, {9, 1, "9"},
		{0, 0, ""}, {5, 0, ""}, {10, -1, ""}, {10, 5, ""}, {25, -1, ""}, {25, 3, ""},
	} {
		b, a, err := d.Read(ctx, "obj", c.off, c.n)
		if err != nil {
			t.Errorf("Read(%d, %d): %v", c.off, c.n, err)
			continue
		}
		if string(b) != c.want || a.Size != 10 || a.ETag == "" || a.ModTime.IsZero() {
			t.Errorf("Read(%d, %d) = %q, %+v; want %q, size 10", c.off, c.n, b, a, c.want)
		}
		want := map[s3test.Op]int{s3test.GetObject: 1}
		if c.off >= 10 {
			// S3 refuses a range starting at the end (416); a HEAD then
			// supplies the attributes.
			want[s3test.HeadObject] = 1
		}
		e.counts(t, fmt.Sprintf("Read(%d, %d)", c.off, c.n), want)
	}

	// Empty objects: every range of them is past the end.
	write(t, d, "empty", "")
	for _, r := range [][2]int64{{0, -1}, {0, 5}, {0, 0}, {3, -1}} {
		b, a, err := d.Read(ctx, "empty", r[0], r[1])
		if err != nil || len(b) != 0 || b == nil || a.Size != 0 || a.ETag == "" {
			t.Errorf("Read(empty, %d, %d) = %q, %+v, %v", r[0], r[1], b, a, err)
		}
	}

	// Overwrite replaces; ETag changes.
	_, a1 := read(t, d, "obj")
	write(t, d, "obj", "new")
	got, a2 := read(t, d, "obj")
	if got != "new" || a2.ETag == a1.ETag {
		t.Errorf("after overwrite: %q, etag %s (before %s)", got, a2.ETag, a1.ETag)
	}

	// Not found.
	e.ct.Reset()
	if _, _, err := d.Read(ctx, "missing", 0, -1); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Read missing: %v, want ErrNotFound", err)
	}
	if _, _, err := d.Read(ctx, "missing", 5, 3); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Read missing range: %v, want ErrNotFound", err)
	}
	e.counts(t, "Read missing x2", map[s3test.Op]int{s3test.GetObject: 2})
}

func TestDelete(t *testing.T) {
	e := newEnv(t)
	d := e.open(t, nil)
	write(t, d, "a/b", "x")
	e.ct.Reset()
	if err := d.Delete(t.Context(), "a/b"); err != nil {
		t.Fatal(err)
	}
	e.counts(t, "Delete", map[s3test.Op]int{s3test.DeleteObject: 1})
	if err := d.Delete(t.Context(), "a/b"); err != nil {
		t.Fatalf("Delete absent: %v", err)
	}
	e.counts(t, "Delete absent", map[s3test.Op]int{s3test.DeleteObject: 1})
	if _, _, err := d.Read(t.Context(), "a/b", 0, -1); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Read after Delete: %v", err)
	}
}

func TestContentEncoding(t *testing.T) {
	e := newEnv(t)
	d := e.open(t, nil)
	// Not gzip data: the driver must store and return it unchanged.
	const data = "plain bytes labelled gzip"
	if err := d.Write(t.Context(), "enc", strings.NewReader(data), &driver.WriteOptions{ContentEncoding: "gzip"}); err != nil {
		t.Fatal(err)
	}
	reqs := e.ct.Requests()
	if len(reqs) != 1 || reqs[0].Header.Get("Content-Encoding") != "gzip" || reqs[0].Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("PUT headers: %v", reqs)
	}
	if got, _ := read(t, d, "enc"); got != data {
		t.Errorf("Read = %q", got)
	}
}

// writeMany writes names concurrently.
func writeMany(t *testing.T, d driver.Driver, names []string) {
	t.Helper()
	var wg sync.WaitGroup
	ch := make(chan string)
	errs := make(chan error, len(names))
	for range 32 {
		wg.Go(func() {
			for n := range ch {
				if err := d.Write(t.Context(), n, strings.NewReader(n), &driver.WriteOptions{}); err != nil {
					errs <- err
				}
			}
		})
	}
	for _, n := range names {
		ch <- n
	}
	close(ch)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestListPagesAndPrefix(t *testing.T) {
	e := newEnv(t)
	d := e.open(t, nil)
	var names []string
	for i := range 2100 {
		names = append(names, fmt.Sprintf("cache/%05d", i))
	}
	// Siblings that share the prefix's bytes but are not under "cache/".
	others := []string{"cache2/x", "cachex", "cach/e", "cache.d/x", "aaa", "zzz"}
	writeMany(t, d, append(slices.Clone(names), others...))
	e.ct.Reset()

	var got []string
	token := ""
	pages := 0
	for {
		p, err := d.List(t.Context(), &driver.ListOptions{Prefix: "cache/", PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(p.Objects) > driver.MaxListPageSize {
			t.Fatalf("page of %d", len(p.Objects))
		}
		for _, o := range p.Objects {
			if o.Size != int64(len(o.Name)) || o.ModTime.IsZero() {
				t.Errorf("object %+v", o)
			}
			got = append(got, o.Name)
		}
		token = p.NextPageToken
		if token == "" {
			break
		}
	}
	if pages != 3 {
		t.Errorf("%d pages, want 3", pages)
	}
	e.counts(t, "3 list pages", map[s3test.Op]int{s3test.ListObjectsV2: 3})
	if !slices.Equal(got, names) {
		t.Errorf("listed %d names (first %q), want %d in order", len(got), got[:min(3, len(got))], len(names))
	}
	for i := 1; i < len(got); i++ {
		if got[i-1] >= got[i] {
			t.Fatalf("not strictly increasing at %d: %q, %q", i, got[i-1], got[i])
		}
	}

	// Small pages.
	p, err := d.List(t.Context(), &driver.ListOptions{Prefix: "cache", PageSize: 2})
	if err != nil || len(p.Objects) != 2 || p.NextPageToken == "" {
		t.Fatalf("PageSize 2: %+v, %v", p, err)
	}
	e.counts(t, "one small page", map[s3test.Op]int{s3test.ListObjectsV2: 1})
	// A prefix that matches nothing.
	p, err = d.List(t.Context(), &driver.ListOptions{Prefix: "nope/"})
	if err != nil || len(p.Objects) != 0 || p.NextPageToken != "" {
		t.Errorf("empty listing: %+v, %v", p, err)
	}
}

func TestDeleteBatch(t *testing.T) {
	e := newEnv(t)
	d := e.open(t, nil)
	var names []string
	for i := range 2500 {
		names = append(names, fmt.Sprintf("b/%04d", i))
	}
	writeMany(t, d, names)
	write(t, d, "keep", "k")
	e.ct.Reset()
	if err := d.DeleteBatch(t.Context(), append(names, "b/absent")); err != nil {
		t.Fatal(err)
	}
	for _, r := range e.ct.Requests() {
		// DeleteObjects requires an integrity header; with checksums "when
		// required" the SDK still sends one.
		sum := r.Header.Get("Content-Md5")
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") {
				sum += k
			}
		}
		if sum == "" || r.Status != http.StatusOK {
			t.Errorf("DeleteObjects: status %d, no Content-MD5 or x-amz-checksum-*: %v", r.Status, r.Header)
		}
	}
	t.Logf("DeleteObjects integrity header: %v", func() []string {
		var ks []string
		for k := range e.ct.Requests()[0].Header {
			if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum") || k == "Content-Md5" {
				ks = append(ks, k)
			}
		}
		return ks
	}())
	e.counts(t, "DeleteBatch of 2501 names", map[s3test.Op]int{s3test.DeleteObjects: 3})
	p, err := d.List(t.Context(), &driver.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Objects) != 1 || p.Objects[0].Name != "keep" {
		t.Errorf("left after DeleteBatch: %d objects", len(p.Objects))
	}
	if err := d.DeleteBatch(t.Context(), nil); err != nil {
		t.Errorf("empty DeleteBatch: %v", err)
	}
}

func TestIfAbsent(t *testing.T) {
	e := newEnv(t)
	d := e.open(t, nil)
	ctx := t.Context()
	if err := d.Write(ctx, "once", strings.NewReader("first"), &driver.WriteOptions{IfAbsent: true}); err != nil {
		t.Fatal(err)
	}
	e.ct.Reset()
	err := d.Write(ctx, "once", strings.NewReader("second"), &driver.WriteOptions{IfAbsent: true})
	if !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Fatalf("IfAbsent on existing: %v", err)
	}
	if reqs := e.ct.Requests(); reqs[len(reqs)-1].Header.Get("If-None-Match") != "*" || reqs[len(reqs)-1].Status != http.StatusPreconditionFailed {
		t.Errorf("IfAbsent request: If-None-Match %q, status %d", reqs[len(reqs)-1].Header.Get("If-None-Match"), reqs[len(reqs)-1].Status)
	}
	e.counts(t, "refused IfAbsent", map[s3test.Op]int{s3test.PutObject: 1})
	if got, _ := read(t, d, "once"); got != "first" {
		t.Errorf("object = %q", got)
	}
}

func TestReplace(t *testing.T) {
	e := newEnv(t)
	d := e.open(t, nil)
	ctx := t.Context()
	write(t, d, "r", "v1")
	_, a := read(t, d, "r")
	e.ct.Reset()
	if err := d.Replace(ctx, "r", strings.NewReader("v2"), a.ETag, &driver.WriteOptions{}); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	e.counts(t, "Replace", map[s3test.Op]int{s3test.PutObject: 1})
	if got, _ := read(t, d, "r"); got != "v2" {
		t.Errorf("after Replace: %q", got)
	}
	e.ct.Reset()
	err := d.Replace(ctx, "r", strings.NewReader("v3"), a.ETag, &driver.WriteOptions{})
	if !errors.Is(err, driver.ErrPreconditionFailed) || errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Replace on changed: %v", err)
	}
	e.counts(t, "Replace on changed", map[s3test.Op]int{s3test.PutObject: 1})
	if got, _ := read(t, d, "r"); got != "v2" {
		t.Errorf("after refused Replace: %q", got)
	}
	if err := d.Replace(ctx, "r", strings.NewReader("v3"), "", &driver.WriteOptions{}); !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("Replace with empty etag: %v", err)
	}
	e.ct.Reset()
	err = d.Replace(ctx, "gone", strings.NewReader("v"), a.ETag, &driver.WriteOptions{})
	if !errors.Is(err, driver.ErrNotFound) || errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("Replace on missing: %v", err)
	}
	// S3 and MinIO both answer 404 (not 412) to If-Match on a missing key.
	if reqs := e.ct.Requests(); len(reqs) != 1 || reqs[0].Op != s3test.PutObject || reqs[0].Status != http.StatusNotFound {
		t.Errorf("Replace on missing: requests %v", statuses(reqs))
	}
	if _, _, err := d.Read(ctx, "gone", 0, -1); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Replace on missing created it: %v", err)
	}
}

func statuses(reqs []s3test.Request) []string {
	var s []string
	for _, r := range reqs {
		s = append(s, fmt.Sprintf("%s=%d", r.Op, r.Status))
	}
	return s
}

func TestACLAndStorageClass(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()

	// Defaults: private ACL, no storage class header.
	d := e.open(t, nil)
	e.ct.Reset()
	write(t, d, "default", "x")
	reqs := e.ct.Requests()
	if len(reqs) != 1 || reqs[0].Op != s3test.PutObject {
		t.Fatalf("requests %v", statuses(reqs))
	}
	if h := reqs[0].Header; h.Get("X-Amz-Acl") != "private" || h.Get("X-Amz-Storage-Class") != "" {
		t.Errorf("default headers: acl %q, storage class %q", h.Get("X-Amz-Acl"), h.Get("X-Amz-Storage-Class"))
	}

	// Reduced redundancy, as django-s3-cache sets it; also on Replace and IfAbsent.
	d = e.open(t, func(o *s3.Options) { o.ReducedRedundancy = true; o.DefaultACL = "bucket-owner-full-control" })
	e.ct.Reset()
	write(t, d, "rr", "x")
	if err := d.Write(ctx, "rr2", strings.NewReader("x"), &driver.WriteOptions{IfAbsent: true}); err != nil {
		t.Fatal(err)
	}
	_, a := read(t, d, "rr")
	if err := d.Replace(ctx, "rr", strings.NewReader("y"), a.ETag, &driver.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	puts := 0
	for _, r := range e.ct.Requests() {
		if r.Op != s3test.PutObject {
			continue
		}
		puts++
		if h := r.Header; h.Get("X-Amz-Acl") != "bucket-owner-full-control" || h.Get("X-Amz-Storage-Class") != "REDUCED_REDUNDANCY" {
			t.Errorf("%s %s: acl %q, storage class %q", r.Method, r.URL.Path, h.Get("X-Amz-Acl"), h.Get("X-Amz-Storage-Class"))
		}
	}
	if puts != 3 {
		t.Errorf("%d PutObject, want 3", puts)
	}

	// Explicit storage class.
	d = e.open(t, func(o *s3.Options) { o.StorageClass = "STANDARD" })
	e.ct.Reset()
	write(t, d, "std", "x")
	if h := e.ct.Requests()[0].Header; h.Get("X-Amz-Storage-Class") != "STANDARD" {
		t.Errorf("storage class %q", h.Get("X-Amz-Storage-Class"))
	}

	// Bad values fail at Open, before any request.
	e.ct.Reset()
	for _, mod := range []func(*s3.Options){
		func(o *s3.Options) { o.DefaultACL = "privat" },
		func(o *s3.Options) { o.StorageClass = "CHEAP" },
		func(o *s3.Options) { o.StorageClass = "STANDARD"; o.ReducedRedundancy = true },
		func(o *s3.Options) { o.CreateBucket = true; o.BucketACL = "bucket-owner-full-control" },
	} {
		opts := e.options()
		mod(&opts)
		if _, err := s3.Open(ctx, e.bucket, opts); err == nil {
			t.Errorf("Open(%v) succeeded", opts)
		}
	}
	if n := e.ct.Total(); n != 0 {
		t.Errorf("invalid options sent %d requests", n)
	}
}

func TestOpenBucket(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()

	// An existing bucket: one HeadBucket, even with CreateBucket.
	e.ct.Reset()
	opts := e.options()
	opts.CreateBucket = true
	d0, err := s3.Open(ctx, e.bucket, opts)
	if err != nil {
		t.Fatal(err)
	}
	d0.Close()
	e.counts(t, "Open existing with CreateBucket", map[s3test.Op]int{s3test.HeadBucket: 1})

	// A missing bucket is an error naming it.
	missing := s3test.BucketName()
	_, err = s3.Open(ctx, missing, e.options())
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Open missing bucket: %v", err)
	}
	e.counts(t, "Open missing", map[s3test.Op]int{s3test.HeadBucket: 1})

	// create_bucket makes it, with the bucket ACL.
	opts = e.options()
	opts.CreateBucket = true
	opts.DefaultACL = "public-read"
	opts.BucketACL = "private"
	client := s3test.Client(t, e.cfg, nil)
	t.Cleanup(func() { s3test.RemoveBucket(context.Background(), client, missing) })
	d, err := s3.Open(ctx, missing, opts)
	if err != nil {
		t.Fatalf("Open with CreateBucket: %v", err)
	}
	defer d.Close()
	reqs := e.ct.Requests()
	if len(reqs) != 2 || reqs[0].Op != s3test.HeadBucket || reqs[1].Op != s3test.CreateBucket || reqs[1].Status != 200 {
		t.Fatalf("create: %v", statuses(reqs))
	}
	if acl := reqs[1].Header.Get("X-Amz-Acl"); acl != "private" {
		t.Errorf("CreateBucket x-amz-acl = %q", acl)
	}
	write(t, d, "x", "y")
	if got, _ := read(t, d, "x"); got != "y" {
		t.Errorf("read %q", got)
	}
}

func TestOpenURL(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	q := url.Values{}
	q.Set("Endpoint", e.cfg.Endpoint)
	q.Set("REGION", e.cfg.Region)
	q.Set("use_path_style", "1")
	q.Set("access_key_id", e.cfg.AccessKey)
	q.Set("secret_access_key", e.cfg.SecretKey)
	q.Set("default_acl", "private")
	q.Set("storage_class", "STANDARD")
	u := &url.URL{Scheme: "s3", Host: e.bucket, RawQuery: q.Encode()}
	d, err := s3.OpenURL(ctx, u)
	if err != nil {
		t.Fatalf("OpenURL: %v", err)
	}
	defer d.Close()
	write(t, d, "k", "v")
	if got, _ := read(t, d, "k"); got != "v" {
		t.Errorf("read %q", got)
	}

	// Wrong secret: the error must not show it (nor the right one).
	q.Set("secret_access_key", "not-the-secret-"+e.cfg.SecretKey)
	u.RawQuery = q.Encode()
	_, err = s3.OpenURL(ctx, u)
	if err == nil {
		t.Fatal("OpenURL with a wrong secret succeeded")
	}
	if strings.Contains(err.Error(), "not-the-secret") {
		t.Errorf("error shows the secret: %v", err)
	}
}

func TestParseURL(t *testing.T) {
	const secret = "s3cr3t-SHOULD-NOT-SHOW"
	parse := func(raw string) (string, s3.Options, error) {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return s3.ParseURL(u)
	}
	b, o, err := parse("s3://bkt?ENDPOINT=http://h:1&Region=eu-west-1&use_path_style=TRUE&ACCESS_KEY=ak&Secret_Key=" + secret +
		"&create_bucket=1&default_acl=public-read&bucket_acl=private&storage_class=STANDARD_IA&reduced_redundancy=false")
	if err != nil {
		t.Fatal(err)
	}
	want := s3.Options{Endpoint: "http://h:1", Region: "eu-west-1", UsePathStyle: true, AccessKey: "ak", SecretKey: secret,
		CreateBucket: true, DefaultACL: "public-read", BucketACL: "private", StorageClass: "STANDARD_IA"}
	if b != "bkt" || o != want {
		t.Errorf("ParseURL = %q, %v; want %v", b, o, want)
	}

	// Aliases work alone; an alias beside its canonical name is one option
	// given twice, an error (it used to lose to the canonical name silently).
	_, o, err = parse("s3://bkt?access_key_id=alias&secret_access_key=aliassecret")
	if err != nil || o.AccessKey != "alias" || o.SecretKey != "aliassecret" {
		t.Errorf("aliases: %v, %v", o, err)
	}
	_, _, err = parse("s3://bkt?access_key_id=alias&access_key=canon&secret_key=c&secret_access_key=a")
	if !errors.Is(err, driver.ErrInvalidOption) || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("canonical and alias together: %v, want an error", err)
	}
	b, _, err = parse("s3://?bucket_name=named")
	if err != nil || b != "named" {
		t.Errorf("bucket_name: %q, %v", b, err)
	}

	for raw, wantText := range map[string]string{
		"s3://bkt?endpoint=x&colour=red&secret_key=" + secret: `unknown option "colour"`,
		"s3://bkt?use_path_style=yes&secret_key=" + secret:    `"use_path_style": "yes" is not a boolean`,
		"s3://bkt?Region=a&region=b":                          "given twice",
		"s3://?region=a":                                      "no bucket",
		"s3://bkt/some/path":                                  "path",
		"s3://bkt?secret_key=" + secret + "&secret_key=x":     "given 2 times",
		"s3://bkt?secret_key=%zz" + secret:                    "malformed",
	} {
		_, _, err := parse(raw)
		if err == nil || !strings.Contains(err.Error(), wantText) {
			t.Errorf("%s: error %v, want it to contain %q", raw, err, wantText)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: error shows the secret: %v", raw, err)
		}
	}
	// An unknown parameter through OpenURL names it and opens nothing.
	u, _ := url.Parse("s3://bkt?Max_Colour=1&secret_key=" + secret)
	_, err = s3.OpenURL(t.Context(), u)
	if err == nil || !strings.Contains(err.Error(), `"Max_Colour"`) || strings.Contains(err.Error(), secret) {
		t.Errorf("OpenURL unknown parameter: %v", err)
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	const secret = "s3cr3t-SHOULD-NOT-SHOW"
	o := s3.Options{Endpoint: "http://h", AccessKey: "ak", SecretKey: secret, HTTPClient: http.DefaultClient}
	type holder struct {
		Opts s3.Options
		P    *s3.Options
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%T %v"} {
		for _, v := range []any{o, &o, holder{o, &o}, []s3.Options{o}} {
			if s := fmt.Sprintf(f, v); strings.Contains(s, secret) || strings.Contains(s, fmt.Sprintf("%x", secret)) {
				t.Errorf("fmt %s of %T shows the secret: %s", f, v, s)
			}
		}
	}
	if s := o.String(); !strings.Contains(s, "REDACTED") || !strings.Contains(s, `"ak"`) {
		t.Errorf("String() = %s", s)
	}
	// Invalid options: errors never show the secret.
	bad := o
	bad.DefaultACL = "nope"
	if _, err := s3.Open(t.Context(), "b", bad); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("Open error: %v", err)
	}
	bad = s3.Options{SecretKey: secret}
	if _, err := s3.Open(t.Context(), "b", bad); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("Open error: %v", err)
	}
}

// TestLargeWrite checks that an object above the multipart threshold (16
// MiB) round-trips, and that IfAbsent and Replace still hold for it: the
// transfer manager puts the condition on CompleteMultipartUpload.
func TestLargeWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("large object")
	}
	e := newEnv(t)
	d := e.open(t, nil)
	ctx := t.Context()
	data := bytes.Repeat([]byte("0123456789abcdef"), 17<<20/16)
	if err := d.Write(ctx, "big", bytes.NewReader(data), &driver.WriteOptions{IfAbsent: true}); err != nil {
		t.Fatal(err)
	}
	if n := e.ct.Count(s3test.PutObject); n != 0 {
		t.Errorf("%d PutObject for a multipart upload (requests %v)", n, e.ct.Snapshot())
	}
	got, a, err := d.Read(ctx, "big", 0, -1)
	if err != nil || !bytes.Equal(got, data) || a.Size != int64(len(data)) {
		t.Fatalf("Read big: %d bytes, %+v, %v", len(got), a, err)
	}
	err = d.Write(ctx, "big", bytes.NewReader(data), &driver.WriteOptions{IfAbsent: true})
	if !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("IfAbsent on existing big object: %v", err)
	}
	data2 := bytes.Repeat([]byte("x"), len(data))
	if err := d.Replace(ctx, "big", bytes.NewReader(data2), `"stale"`, &driver.WriteOptions{}); !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("Replace big with a stale etag: %v", err)
	}
	if err := d.Replace(ctx, "big", bytes.NewReader(data2), a.ETag, &driver.WriteOptions{}); err != nil {
		t.Errorf("Replace big: %v", err)
	}
	if got, _, _ := d.Read(ctx, "big", 0, 10); string(got) != "xxxxxxxxxx" {
		t.Errorf("after Replace big: %q", got)
	}
	t.Logf("requests: %v", e.ct.Snapshot())
}
