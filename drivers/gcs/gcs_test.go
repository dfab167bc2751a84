package gcs_test

import (
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"cloud.google.com/go/storage"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/gcs"
	"github.com/blobcache/blobcache/internal/gcstest"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/blob/gcsblob"
	"gocloud.dev/blob/memblob"
	"google.golang.org/api/option"
)

func write(t *testing.T, d driver.Driver, name, data string, opts *driver.WriteOptions) {
	t.Helper()
	if opts == nil {
		opts = &driver.WriteOptions{}
	}
	if err := d.Write(t.Context(), name, strings.NewReader(data), opts); err != nil {
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

// generation returns the live generation of the object, from the server.
func generation(t *testing.T, d *gcs.Driver, name string) int64 {
	t.Helper()
	a, err := d.Client().Bucket(d.Bucket()).Object(name).Attrs(t.Context())
	if err != nil {
		t.Fatalf("Attrs %q: %v", name, err)
	}
	return a.Generation
}

// TestConditionsOnTheWire checks the preconditions each write sends and
// that the ETag is the generation, as Replace takes it.
func TestConditionsOnTheWire(t *testing.T) {
	e := newEnv(t)
	d := e.open(t)
	ctx := t.Context()
	insertQuery := func(what, param, want string) {
		t.Helper()
		for _, r := range e.ct.Requests() {
			if r.Op == gcstest.Insert {
				if got := r.URL.Query().Get(param); got != want {
					t.Errorf("%s: %s=%q, want %q", what, param, got, want)
				}
				return
			}
		}
		t.Errorf("%s: no upload sent", what)
	}

	write(t, d, "a", "one", &driver.WriteOptions{IfAbsent: true})
	insertQuery("Write IfAbsent", "ifGenerationMatch", "0")
	e.counts(t, "Write IfAbsent", map[gcstest.Op]int{gcstest.Insert: 1})

	err := d.Write(ctx, "a", strings.NewReader("two"), &driver.WriteOptions{IfAbsent: true})
	if !errors.Is(err, driver.ErrPreconditionFailed) || errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Write IfAbsent over an object = %v, want ErrPreconditionFailed", err)
	}
	e.counts(t, "refused Write IfAbsent", map[gcstest.Op]int{gcstest.Insert: 1})

	write(t, d, "plain", "x", nil)
	insertQuery("Write", "ifGenerationMatch", "")
	e.ct.Reset()

	got, attrs := read(t, d, "a")
	e.counts(t, "Read", map[gcstest.Op]int{gcstest.Download: 1})
	if got != "one" {
		t.Errorf("Read = %q, want one", got)
	}
	gen := generation(t, d, "a")
	if attrs.ETag != strconv.FormatInt(gen, 10) {
		t.Errorf("Read ETag = %q, want the generation %d", attrs.ETag, gen)
	}
	e.ct.Reset()

	if err := d.Replace(ctx, "a", strings.NewReader("three"), attrs.ETag, &driver.WriteOptions{IfAbsent: true}); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	insertQuery("Replace", "ifGenerationMatch", attrs.ETag)
	e.counts(t, "Replace", map[gcstest.Op]int{gcstest.Insert: 1})
	got, attrs2 := read(t, d, "a")
	if got != "three" || attrs2.ETag == attrs.ETag || attrs2.ETag != strconv.FormatInt(generation(t, d, "a"), 10) {
		t.Errorf("after Replace: %q, ETag %q (was %q)", got, attrs2.ETag, attrs.ETag)
	}
	e.ct.Reset()

	// A stale etag: 412, and one lookup finds the object there.
	err = d.Replace(ctx, "a", strings.NewReader("four"), attrs.ETag, &driver.WriteOptions{})
	if !errors.Is(err, driver.ErrPreconditionFailed) || errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Replace with a stale etag = %v, want ErrPreconditionFailed", err)
	}
	e.counts(t, "stale Replace", map[gcstest.Op]int{gcstest.Insert: 1, gcstest.GetAttrs: 1})

	// A gone object: GCS answers 412 too; the lookup makes it ErrNotFound.
	if err := d.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	e.counts(t, "Delete", map[gcstest.Op]int{gcstest.Delete: 1})
	err = d.Replace(ctx, "a", strings.NewReader("five"), attrs2.ETag, &driver.WriteOptions{})
	if !errors.Is(err, driver.ErrNotFound) || errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("Replace of a deleted object = %v, want ErrNotFound", err)
	}
	e.counts(t, "Replace of a deleted object", map[gcstest.Op]int{gcstest.Insert: 1, gcstest.GetAttrs: 1})
	if _, _, err := d.Read(ctx, "a", 0, -1); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Read after a refused Replace = %v, want ErrNotFound", err)
	}
	e.ct.Reset()

	// Etags that are no generation: refused before anything is sent.
	for _, etag := range []string{"", "0", "-1", "01", "x", `"abc"`, "1.5", "99999999999999999999"} {
		err := d.Replace(ctx, "plain", strings.NewReader("y"), etag, &driver.WriteOptions{})
		if !errors.Is(err, driver.ErrPreconditionFailed) {
			t.Errorf("Replace with etag %q = %v, want ErrPreconditionFailed", etag, err)
		}
	}
	e.counts(t, "Replace with malformed etags", map[gcstest.Op]int{})
}

// TestContentEncodingNotStored: the object is stored without
// Content-Encoding, so GCS never transcodes it.
func TestContentEncodingNotStored(t *testing.T) {
	e := newEnv(t)
	d := e.open(t)
	write(t, d, "g", "not gzip", &driver.WriteOptions{ContentEncoding: "gzip"})
	a, err := d.Client().Bucket(d.Bucket()).Object("g").Attrs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if a.ContentEncoding != "" {
		t.Errorf("Content-Encoding stored: %q", a.ContentEncoding)
	}
	if got, _ := read(t, d, "g"); got != "not gzip" {
		t.Errorf("Read = %q", got)
	}
}

// TestReadPastEnd: GCS refuses a range starting at or past the end with
// 416; the driver returns no bytes and the attributes, with the generation
// as ETag, at the cost of one objects.get.
func TestReadPastEnd(t *testing.T) {
	e := newEnv(t)
	d := e.open(t)
	write(t, d, "r", "12345", nil)
	write(t, d, "empty", "", nil)
	e.ct.Reset()
	for _, tc := range []struct {
		name           string
		offset, length int64
		size           int64
	}{{"r", 5, -1, 5}, {"r", 9, 3, 5}, {"empty", 0, 10, 0}} {
		b, a, err := d.Read(t.Context(), tc.name, tc.offset, tc.length)
		if err != nil || len(b) != 0 || b == nil {
			t.Errorf("Read(%q, %d, %d) = %q, %v; want no bytes", tc.name, tc.offset, tc.length, b, err)
			continue
		}
		if a.Size != tc.size || a.Name != tc.name || a.ModTime.IsZero() || a.ETag != strconv.FormatInt(generation(t, d, tc.name), 10) {
			t.Errorf("Read(%q, %d, %d) attributes = %+v", tc.name, tc.offset, tc.length, a)
		}
	}
	got := e.ct.Snapshot()
	delete(got, gcstest.GetAttrs) // the test's own generation lookups too
	if want := map[gcstest.Op]int{gcstest.Download: 3}; !maps.Equal(got, want) {
		t.Errorf("requests = %v, want %v and the lookups", got, want)
	}
	if _, _, err := d.Read(t.Context(), "absent", 3, -1); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Read past the end of an absent object = %v, want ErrNotFound", err)
	}
}

// TestOpenMissingBucket: Open checks the bucket with one buckets.get.
func TestOpenMissingBucket(t *testing.T) {
	srv := gcstest.Start(t)
	ct := &gcstest.CountingTransport{}
	_, err := srv.Open(t.Context(), "no-such-bucket", ct)
	if err == nil || !strings.Contains(err.Error(), `"no-such-bucket"`) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Open of a missing bucket = %v", err)
	}
	if got, want := ct.Snapshot(), map[gcstest.Op]int{gcstest.GetBucket: 1}; !maps.Equal(got, want) {
		t.Errorf("requests = %v, want %v", got, want)
	}
}

// TestCloseClosesAll: after Close, every method fails with ErrClosed and
// sends nothing; a second Close is an error.
func TestCloseClosesAll(t *testing.T) {
	e := newEnv(t)
	d, err := e.srv.Open(t.Context(), e.bucket, e.ct)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	e.ct.Reset()
	ctx := t.Context()
	_, _, rerr := d.Read(ctx, "a", 0, -1)
	for what, err := range map[string]error{
		"Read":    rerr,
		"Write":   d.Write(ctx, "a", strings.NewReader("x"), &driver.WriteOptions{}),
		"Replace": d.Replace(ctx, "a", strings.NewReader("x"), "1", &driver.WriteOptions{}),
		"Delete":  d.Delete(ctx, "a"),
		"Close":   d.Close(),
	} {
		if !errors.Is(err, driver.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", what, err)
		}
	}
	if n := len(e.ct.Requests()); n != 0 {
		t.Errorf("%d requests after Close", n)
	}
}

// TestNew: New takes a gcsblob bucket, refuses others, and keeps a
// prefixed bucket's prefix out of the names it lists.
func TestNew(t *testing.T) {
	e := newEnv(t)
	d := e.open(t)
	write(t, d, "pre/x", "1", nil)
	write(t, d, "other", "2", nil)
	ctx := t.Context()

	if _, err := gcs.New(memblob.OpenBucket(nil)); !errors.Is(err, gcs.ErrNotGCS) {
		t.Errorf("New(memblob) = %v, want ErrNotGCS", err)
	}
	client, err := storage.NewClient(ctx, option.WithoutAuthentication(), option.WithEndpoint(e.srv.URL()+"/storage/v1/"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	b, err := gcsblob.OpenBucket(ctx, nil, e.bucket, &gcsblob.Options{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	pd, err := gcs.New(gcblob.PrefixedBucket(b, "pre/"))
	if err != nil {
		t.Fatalf("New(prefixed gcsblob bucket) = %v", err)
	}
	defer pd.Close()
	if pd.Bucket() != e.bucket || pd.String() != "gs://"+e.bucket {
		t.Errorf("Bucket, String = %q, %q", pd.Bucket(), pd.String())
	}
	page, err := pd.List(ctx, &driver.ListOptions{})
	if err != nil || len(page.Objects) != 1 || page.Objects[0].Name != "x" {
		t.Fatalf("List of the prefixed bucket = %+v, %v; want just x", page, err)
	}
	got, a := read(t, pd, "x")
	if got != "1" {
		t.Errorf("Read = %q", got)
	}
	if err := pd.Replace(ctx, "x", strings.NewReader("3"), a.ETag, &driver.WriteOptions{}); err != nil {
		t.Errorf("Replace through the prefix: %v", err)
	}
	if got, _ := read(t, d, "pre/x"); got != "3" {
		t.Errorf("pre/x = %q after Replace through the prefix", got)
	}
	// ReadDelete deletes the generation of the object under the prefix.
	write(t, d, "x", "unprefixed", nil)
	if data, _, err := pd.ReadDelete(ctx, "x", 10); err != nil || string(data) != "3" {
		t.Errorf("ReadDelete through the prefix = %q, %v; want pre/x's 3", data, err)
	}
	if _, _, err := d.Read(ctx, "pre/x", 0, 10); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("pre/x after ReadDelete through the prefix: %v, want ErrNotFound", err)
	}
	if got, _ := read(t, d, "x"); got != "unprefixed" {
		t.Errorf("x = %q after ReadDelete of pre/x, want it kept", got)
	}
	if err := pd.ValidateName("a../b"); !errors.Is(err, driver.ErrInvalidName) {
		t.Errorf("ValidateName(a../b) = %v", err)
	}
}

// TestAccessDeniedIsNoMiss: a 403 (an access denial) is returned as an
// error of no kind, never as ErrNotFound (a miss), through the whole
// driver; gcsblob's own codes would call it NotFound.
func TestAccessDeniedIsNoMiss(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/storage/v1/b/") && !strings.Contains(strings.TrimPrefix(r.URL.Path, "/storage/v1/b/"), "/") {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"name":"bucket"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"error":{"code":403,"message":"denied"}}`)
	}))
	defer srv.Close()
	d, err := gcs.Open(t.Context(), "bucket", gcs.Options{Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := t.Context()
	_, _, rerr := d.Read(ctx, "a", 0, -1)
	_, lerr := d.List(ctx, &driver.ListOptions{})
	for what, err := range map[string]error{
		"Read":    rerr,
		"Write":   d.Write(ctx, "a", strings.NewReader("x"), &driver.WriteOptions{IfAbsent: true}),
		"Replace": d.Replace(ctx, "a", strings.NewReader("x"), "1", &driver.WriteOptions{}),
		"Delete":  d.Delete(ctx, "a"),
		"List":    lerr,
	} {
		if err == nil || errors.Is(err, driver.ErrNotFound) || errors.Is(err, driver.ErrPreconditionFailed) {
			t.Errorf("%s on 403 = %v, want an error of no kind", what, err)
		}
	}
}
