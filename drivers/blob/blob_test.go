package blob_test

import (
	"context"
	"errors"
	"net/url"
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
			var d driver.Driver = blobdrv.New(mk(t))
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

// TestPlainCapabilities: the generic driver claims no optional capability.
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
}

// TestUseAfterClose: a call after Close fails, and is not mistaken for a
// refused precondition or an absent object (the Go CDK reports a closed
// bucket as FailedPrecondition). The conformance suite's Close case checks
// only that the data outlives the driver.
func TestUseAfterClose(t *testing.T) {
	forEach(t, func(t *testing.T, d driver.Driver) {
		write(t, d, "x", "y")
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := d.Read(t.Context(), "x", 0, -1); err == nil || errors.Is(err, driver.ErrPreconditionFailed) || errors.Is(err, driver.ErrNotFound) {
			t.Errorf("Read after Close: %v", err)
		}
		if err := d.Write(t.Context(), "x", strings.NewReader("z"), &driver.WriteOptions{}); err == nil || errors.Is(err, driver.ErrPreconditionFailed) {
			t.Errorf("Write after Close: %v", err)
		}
		if err := d.Delete(t.Context(), "x"); err == nil {
			t.Errorf("Delete after Close: %v", err)
		}
		if err := d.Close(); err == nil {
			t.Error("second Close returned nil")
		}
	})
}

// TestErrorMessages: errors name the operation and the name after the
// driver's name, and keep the kind and the context's error.
func TestErrorMessages(t *testing.T) {
	d := blobdrv.New(memblob.OpenBucket(nil), blobdrv.WithEscaping(blobdrv.EscapingNone))
	defer d.Close()
	_, _, err := d.Read(t.Context(), "missing", 0, -1)
	if !errors.Is(err, driver.ErrNotFound) || !strings.HasPrefix(err.Error(), `blob: read "missing": `) {
		t.Errorf("Read missing = %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = d.Write(ctx, "x", strings.NewReader("z"), &driver.WriteOptions{})
	if !errors.Is(err, ctx.Err()) || !strings.HasPrefix(err.Error(), `blob: write "x": `) {
		t.Errorf("Write with a cancelled context = %v", err)
	}
	p, _ := blobdrv.NewProvided(memblob.OpenBucket(nil), blobdrv.Provider{Name: "prov", Escaping: blobdrv.EscapingNone})
	defer p.Close()
	if _, _, err := p.Read(t.Context(), "missing", 0, -1); !errors.Is(err, driver.ErrNotFound) || !strings.HasPrefix(err.Error(), `prov: read "missing": `) {
		t.Errorf("Provider's Read missing = %v", err)
	}
}

// TestOpenURL: the URL's scheme opens through the Go CDK's mux; s3:// is
// drivers/s3's.
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
	if _, err := blobdrv.OpenURL(t.Context(), "s3://bucket"); !errors.Is(err, driver.ErrInvalidOption) || !strings.Contains(err.Error(), "drivers/s3") {
		t.Errorf("s3:// = %v, want a pointer to drivers/s3", err)
	}
}
