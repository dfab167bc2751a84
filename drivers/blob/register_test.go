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
	"gocloud.dev/blob/memblob"
)

// testOpener opens a memblob bucket for the test's own Go CDK scheme.
type testOpener struct{}

func (testOpener) OpenBucketURL(context.Context, *url.URL) (*gcblob.Bucket, error) {
	return memblob.OpenBucket(nil), nil
}

func init() {
	gcblob.DefaultURLMux().RegisterBucket("blobtestmem", testOpener{})
	blobdrv.RegisterScheme("blobtestmem", blobdrv.EscapingNone, "example.com/blobtestmem")
	blobdrv.RegisterScheme("blobtestnone", blobdrv.EscapingS3, "example.com/blobtestnone")
}

func TestRegisteredSchemes(t *testing.T) {
	for name, refused := range map[string][]string{
		"gs": {"a../b", "x__0x41__", "a\nb"},
	} {
		s, ok := driver.Lookup(name)
		if !ok || s.Open == nil || s.ValidateName == nil {
			t.Fatalf("Lookup(%q) = %+v, %v", name, s, ok)
		}
		for _, n := range refused {
			if err := s.ValidateName(n); !errors.Is(err, driver.ErrInvalidName) {
				t.Errorf("%s: ValidateName(%q) = %v, want ErrInvalidName", name, n, err)
			}
		}
		if err := s.ValidateName("cache/0a1b"); err != nil {
			t.Errorf("%s: ValidateName(cache/0a1b) = %v", name, err)
		}
		// This test imports neither gcsblob nor azureblob.
		_, err := s.Open(t.Context(), &url.URL{Scheme: name, Host: "bucket"})
		if err == nil || !strings.Contains(err.Error(), "must import gocloud.dev/blob/") {
			t.Errorf("%s: Open without the Go CDK driver = %v, want an error naming its package", name, err)
		}
	}
}

func TestRegisterScheme(t *testing.T) {
	s, ok := driver.Lookup("blobtestmem")
	if !ok {
		t.Fatal("not registered")
	}
	d, err := s.Open(t.Context(), &url.URL{Scheme: "blobtestmem", Host: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	write(t, d, "a../__0x41__", "v") // memblob's rules: stored as given
	if err := s.ValidateName("a../__0x41__"); err != nil {
		t.Errorf("ValidateName = %v", err)
	}
	s, _ = driver.Lookup("blobtestnone")
	if _, err := s.Open(t.Context(), &url.URL{Scheme: "blobtestnone"}); err == nil || !strings.Contains(err.Error(), "example.com/blobtestnone") {
		t.Errorf("Open of a scheme no Go CDK driver serves = %v", err)
	}
	if err := s.ValidateName("a../b"); !errors.Is(err, driver.ErrInvalidName) {
		t.Errorf("ValidateName with s3blob's rules = %v", err)
	}
}
