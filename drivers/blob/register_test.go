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

// TestRegistersNoScheme: importing drivers/blob registers neither gs nor
// azblob (drivers/gcs and drivers/azure do, with atomic conditional
// writes), and a scheme it registers for a Go CDK driver the program did
// not import says which package to import.
func TestRegistersNoScheme(t *testing.T) {
	for _, name := range []string{"gs", "azblob"} {
		if _, ok := driver.Lookup(name); ok {
			t.Errorf("importing drivers/blob registered %s://", name)
		}
	}
	s, ok := driver.Lookup("blobtestnone")
	if !ok {
		t.Fatal("blobtestnone not registered")
	}
	for _, n := range []string{"a../b", "x__0x41__", "a\nb"} {
		if err := s.ValidateName(n); !errors.Is(err, driver.ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", n, err)
		}
	}
	_, err := s.Open(t.Context(), &url.URL{Scheme: "blobtestnone", Host: "bucket"})
	if err == nil || !strings.Contains(err.Error(), "must import example.com/blobtestnone") {
		t.Errorf("Open without the Go CDK driver = %v, want an error naming its package", err)
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
