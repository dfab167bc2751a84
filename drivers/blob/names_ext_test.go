package blob_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/blobcache/blobcache/driver"
	blobdrv "github.com/blobcache/blobcache/drivers/blob"
	"github.com/blobcache/blobcache/internal/s3test"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
)

// validNames returns the names of s3test.TrickyNames that driver.ValidateName
// accepts.
func validNames() []string {
	var names []string
	for _, n := range s3test.TrickyNames {
		if driver.ValidateName(n) == nil {
			names = append(names, n)
		}
	}
	return names
}

// TestTrickyNamesMemblob: memblob escapes nothing (memblob.go has no
// escaping and lists its map's keys as they are), so with its rules every
// valid name round-trips, and only invalid ones are refused.
func TestTrickyNamesMemblob(t *testing.T) {
	d := blobdrv.New(memblob.OpenBucket(nil), blobdrv.WithEscaping(blobdrv.EscapingNone))
	defer d.Close()
	got := s3test.CheckNames(t, d, "", s3test.TrickyNames, nil)
	if want := validNames(); !slices.Equal(got, want) {
		t.Errorf("accepted %q,\nwant every valid name %q", got, want)
	}
	// Through OpenURL, the mem scheme names the same rules.
	d2, err := blobdrv.OpenURL(t.Context(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if got := s3test.CheckNames(t, d2, "", s3test.TrickyNames, nil); !slices.Equal(got, validNames()) {
		t.Errorf("mem:// accepted %q", got)
	}
}

// TestTrickyNamesUnknownBucket: a bucket whose Go CDK driver is not
// recognised (memblob's As recognises nothing) refuses what any Go CDK
// driver would rewrite.
func TestTrickyNamesUnknownBucket(t *testing.T) {
	d := blobdrv.New(memblob.OpenBucket(nil))
	defer d.Close()
	got := s3test.CheckNames(t, d, "", s3test.TrickyNames, nil)
	for _, n := range []string{"a../b", "x__0x2f__y", "__0x41__", `a\b`, "a?b", "a#b", "a%2Fb", "x.attrs"} {
		if slices.Contains(got, n) {
			t.Errorf("accepted %q", n)
		}
	}
	for _, n := range []string{"a..", "a..b/c", "a+b", "a b", "ü", "__0x80000000__", "__0xzz__"} {
		if !slices.Contains(got, n) {
			t.Errorf("refused %q", n)
		}
	}
	// A listing prefix the store would rewrite is refused.
	for _, p := range []string{"a../", "x__0x41__", "a%"} {
		if _, err := d.List(t.Context(), &driver.ListOptions{Prefix: p}); !errors.Is(err, driver.ErrInvalidName) {
			t.Errorf("List(prefix %q) = %v, want ErrInvalidName", p, err)
		}
	}
}

// TestTrickyNamesFileblob runs the table on fileblob, one name per folder
// (fileblob cannot hold both "a b" and "a b/c d").
func TestTrickyNamesFileblob(t *testing.T) {
	b, err := fileblob.OpenBucket(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := blobdrv.New(b)
	defer d.Close()
	var got []string
	for i, n := range s3test.TrickyNames {
		under := fmt.Sprintf("n%d/", i)
		for _, a := range s3test.CheckNames(t, d, under, []string{n}, nil) {
			got = append(got, strings.TrimPrefix(a, under))
		}
	}
	for _, n := range []string{"a../b", "x__0x2f__y", "__0x41__", "x.attrs"} {
		if slices.Contains(got, n) {
			t.Errorf("accepted %q", n)
		}
	}
	for _, n := range []string{"a..", "a+b", "a b", "ü", "a%2Fb", "a?b", "a#b", `a\b`} {
		if !slices.Contains(got, n) {
			t.Errorf("refused %q", n)
		}
	}
}

// TestOpenURLRefusesSingleKey: the Go CDK's key parameter maps every name to
// one object.
func TestOpenURLRefusesSingleKey(t *testing.T) {
	if d, err := blobdrv.OpenURL(t.Context(), "mem://?key=one"); err == nil {
		d.Close()
		t.Fatal("mem://?key=one opened")
	}
}

// TestOpenURLPrefix: the rules apply to the bucket prefix and the name
// together.
func TestOpenURLPrefix(t *testing.T) {
	d, err := blobdrv.OpenURL(t.Context(), "file:///"+strings.TrimPrefix(t.TempDir(), "/")+"?prefix=p__0x4")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	v := d.(driver.NameValidator)
	// "p__0x4" + "1__x" holds "__0x41__".
	if err := v.ValidateName("1__x"); !errors.Is(err, driver.ErrInvalidName) {
		t.Errorf("ValidateName(1__x) under prefix p__0x4 = %v", err)
	}
	if err := v.ValidateName("plain"); err != nil {
		t.Errorf("ValidateName(plain) = %v", err)
	}
}
