package blob_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/blobcache/blobcache/driver"
	blobdrv "github.com/blobcache/blobcache/drivers/blob"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
)

// makers open a fresh plain (non-S3) bucket per test.
var makers = map[string]func(t *testing.T) *gcblob.Bucket{
	"memblob": func(t *testing.T) *gcblob.Bucket { return memblob.OpenBucket(nil) },
	"fileblob": func(t *testing.T) *gcblob.Bucket {
		b, err := fileblob.OpenBucket(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	},
}

func forEach(t *testing.T, f func(t *testing.T, d driver.Driver)) {
	for name, mk := range makers {
		t.Run(name, func(t *testing.T) {
			d := blobdrv.New(mk(t))
			t.Cleanup(func() { d.Close() })
			f(t, d)
		})
	}
}

func write(t *testing.T, d driver.Driver, name, data string) {
	t.Helper()
	if err := d.Write(t.Context(), name, strings.NewReader(data), &driver.WriteOptions{}); err != nil {
		t.Fatalf("Write %q: %v", name, err)
	}
}

func TestPlainCapabilities(t *testing.T) {
	forEach(t, func(t *testing.T, d driver.Driver) {
		if _, ok := d.(*blobdrv.Driver); !ok {
			t.Errorf("New returned %T, want *blob.Driver", d)
		}
		if _, ok := d.(driver.Replacer); ok {
			t.Error("a plain bucket's driver claims Replacer")
		}
		if _, ok := d.(driver.BatchDeleter); ok {
			t.Error("a plain bucket's driver claims BatchDeleter")
		}
	})
	if _, err := blobdrv.NewS3(memblob.OpenBucket(nil)); !errors.Is(err, blobdrv.ErrNotS3) {
		t.Errorf("NewS3(memblob) = %v, want ErrNotS3", err)
	}
}

func TestReadWrite(t *testing.T) {
	forEach(t, func(t *testing.T, d driver.Driver) {
		ctx := t.Context()
		write(t, d, "dir/obj", "0123456789")
		for _, c := range []struct {
			off, n int64
			want   string
		}{
			{0, -1, "0123456789"}, {0, 3, "012"}, {3, 4, "3456"}, {7, -1, "789"}, {8, 10, "89"},
			{0, 0, ""}, {10, -1, ""}, {25, 3, ""},
		} {
			b, a, err := d.Read(ctx, "dir/obj", c.off, c.n)
			if err != nil || string(b) != c.want || b == nil {
				t.Errorf("Read(%d, %d) = %q, %v; want %q", c.off, c.n, b, err, c.want)
				continue
			}
			if a.Name != "dir/obj" || a.Size != 10 || a.ModTime.IsZero() || a.ETag != "" {
				t.Errorf("Read(%d, %d) attributes %+v", c.off, c.n, a)
			}
		}
		write(t, d, "dir/obj", "new")
		if b, _, _ := d.Read(ctx, "dir/obj", 0, -1); string(b) != "new" {
			t.Errorf("after overwrite: %q", b)
		}
		write(t, d, "empty", "")
		if b, a, err := d.Read(ctx, "empty", 0, -1); err != nil || len(b) != 0 || a.Size != 0 {
			t.Errorf("Read empty = %q, %+v, %v", b, a, err)
		}
		if _, _, err := d.Read(ctx, "missing", 0, -1); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("Read missing: %v", err)
		}
		if err := d.Write(ctx, "enc", strings.NewReader("not gzip"), &driver.WriteOptions{ContentEncoding: "gzip"}); err != nil {
			t.Fatal(err)
		}
		if b, _, _ := d.Read(ctx, "enc", 0, -1); string(b) != "not gzip" {
			t.Errorf("ContentEncoding changed the bytes: %q", b)
		}
	})
}

func TestIfAbsentAndDelete(t *testing.T) {
	forEach(t, func(t *testing.T, d driver.Driver) {
		ctx := t.Context()
		if err := d.Write(ctx, "x", strings.NewReader("1"), &driver.WriteOptions{IfAbsent: true}); err != nil {
			t.Fatal(err)
		}
		err := d.Write(ctx, "x", strings.NewReader("2"), &driver.WriteOptions{IfAbsent: true})
		if !errors.Is(err, driver.ErrPreconditionFailed) {
			t.Errorf("IfAbsent on existing: %v", err)
		}
		if b, _, _ := d.Read(ctx, "x", 0, -1); string(b) != "1" {
			t.Errorf("object = %q", b)
		}
		if err := d.Delete(ctx, "x"); err != nil {
			t.Fatal(err)
		}
		if err := d.Delete(ctx, "x"); err != nil {
			t.Errorf("Delete absent: %v", err)
		}
		if _, _, err := d.Read(ctx, "x", 0, -1); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("Read after Delete: %v", err)
		}
	})
}

func TestBodyError(t *testing.T) {
	forEach(t, func(t *testing.T, d driver.Driver) {
		boom := errors.New("boom")
		body := io.MultiReader(strings.NewReader("partial"), errReader{boom})
		if err := d.Write(t.Context(), "x", body, &driver.WriteOptions{}); !errors.Is(err, boom) {
			t.Fatalf("Write: %v, want boom", err)
		}
		if _, _, err := d.Read(t.Context(), "x", 0, -1); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("a failed write stored something: %v", err)
		}
		p, err := d.List(t.Context(), &driver.ListOptions{})
		if err != nil || len(p.Objects) != 0 {
			t.Errorf("List after failed write: %+v, %v", p, err)
		}
	})
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestList(t *testing.T) {
	forEach(t, func(t *testing.T, d driver.Driver) {
		var want []string
		for i := range 25 {
			n := fmt.Sprintf("cache/%03d", i)
			want = append(want, n)
			write(t, d, n, n)
		}
		for _, n := range []string{"cache2/x", "cachex", "cach/e", "a", "z/z"} {
			write(t, d, n, n)
		}
		var got []string
		token := ""
		pages := 0
		for {
			p, err := d.List(t.Context(), &driver.ListOptions{Prefix: "cache/", PageToken: token, PageSize: 10})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(p.Objects) > 10 {
				t.Fatalf("page of %d", len(p.Objects))
			}
			for _, o := range p.Objects {
				if o.Size != int64(len(o.Name)) || o.ModTime.IsZero() {
					t.Errorf("object %+v", o)
				}
				got = append(got, o.Name)
			}
			if token = p.NextPageToken; token == "" {
				break
			}
		}
		if !slices.Equal(got, want) || pages != 3 {
			t.Errorf("listed %q in %d pages, want %q in 3", got, pages, want)
		}
		p, err := d.List(t.Context(), &driver.ListOptions{})
		if err != nil || len(p.Objects) != 30 || p.NextPageToken != "" {
			t.Errorf("full listing: %d objects, token %q, %v", len(p.Objects), p.NextPageToken, err)
		}
	})
}

func TestCancelledAndClosed(t *testing.T) {
	forEach(t, func(t *testing.T, d driver.Driver) {
		write(t, d, "x", "y")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := d.Write(ctx, "x", strings.NewReader("z"), &driver.WriteOptions{}); !errors.Is(err, context.Canceled) {
			t.Errorf("Write with cancelled context: %v", err)
		}
		if b, _, _ := d.Read(t.Context(), "x", 0, -1); string(b) != "y" {
			t.Errorf("cancelled write changed the object to %q", b)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := d.Read(t.Context(), "x", 0, -1); err == nil || errors.Is(err, driver.ErrPreconditionFailed) || errors.Is(err, driver.ErrNotFound) {
			t.Errorf("Read after Close: %v", err)
		}
		if err := d.Write(t.Context(), "x", strings.NewReader("z"), &driver.WriteOptions{}); err == nil || errors.Is(err, driver.ErrPreconditionFailed) {
			t.Errorf("Write after Close: %v", err)
		}
	})
}

func TestOpenURL(t *testing.T) {
	d, err := blobdrv.OpenURL(t.Context(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	write(t, d, "a", "b")
	d.Close()

	dir := t.TempDir()
	u := url.URL{Scheme: "file", Path: dir}
	d, err = blobdrv.OpenURL(t.Context(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	write(t, d, "a/b", "c")
	if _, ok := d.(driver.Replacer); ok {
		t.Error("file:// driver claims Replacer")
	}
	if _, err := blobdrv.OpenURL(t.Context(), "nosuchscheme://x"); err == nil {
		t.Error("unknown scheme opened")
	}
}
