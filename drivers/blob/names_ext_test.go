package blob_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/blobcache/blobcache/driver"
	blobdrv "github.com/blobcache/blobcache/drivers/blob"
	"github.com/blobcache/blobcache/internal/s3test"
	gcblob "gocloud.dev/blob"
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

// TestS3TrickyNames runs the table on MinIO through s3blob, directly and
// behind a Go CDK prefixed bucket, and checks that every accepted name is
// stored under exactly that key.
func TestS3TrickyNames(t *testing.T) {
	for _, pfx := range []string{"", "pfx/"} {
		t.Run("prefix="+pfx, func(t *testing.T) {
			b, client, bucket := openS3Bucket(t, s3test.NewCountingTransport(nil))
			if pfx != "" {
				b = gcblob.PrefixedBucket(b, pfx)
			}
			d := blobdrv.New(b)
			defer d.Close()
			got := s3test.CheckNames(t, d, "", s3test.TrickyNames, func(accepted []string) {
				var want []string
				for _, n := range accepted {
					want = append(want, pfx+n)
				}
				slices.Sort(want)
				if keys := s3test.RawKeys(t, client, bucket); !slices.Equal(keys, want) {
					t.Errorf("keys in the bucket:\n%q\nwant\n%q", keys, want)
				}
			})
			for _, n := range []string{"a../b", "x__0x2f__y", "__0x41__", "x/__0x41__", "__0x-1__"} {
				if slices.Contains(got, n) {
					t.Errorf("accepted %q", n)
				}
			}
			for _, n := range []string{"a..", "a..b/c", "a%2Fb", "a+b", "a b", "ü", `a\b`, "a?b", "a#b", "%zz", "__0x80000000__"} {
				if !slices.Contains(got, n) {
					t.Errorf("refused %q", n)
				}
			}
			if keys := s3test.RawKeys(t, client, bucket); len(keys) != 0 {
				t.Errorf("left in the bucket: %q", keys)
			}
			for _, p := range []string{"a../", "x__0x41__", "c\x01"} {
				if _, err := d.List(t.Context(), &driver.ListOptions{Prefix: p}); !errors.Is(err, driver.ErrInvalidName) {
					t.Errorf("List(prefix %q) = %v, want ErrInvalidName", p, err)
				}
			}
		})
	}
}

// TestS3PlantedKeysListing plants, with the S3 client itself, objects whose
// keys hold every character from U+0001 to U+00FF, bytes that are not UTF-8,
// and Go CDK escape sequences, beside a prefixed bucket's objects, inside
// and outside its prefix: listing never fails, and it shows exactly the
// planted keys that are valid names the driver would write itself.
func TestS3PlantedKeysListing(t *testing.T) {
	b, client, bucket := openS3Bucket(t, s3test.NewCountingTransport(nil))
	d := blobdrv.New(gcblob.PrefixedBucket(b, "pfx/"))
	defer d.Close()
	v := d.(driver.NameValidator)
	var keys []string
	for c := rune(1); c < 256; c++ {
		keys = append(keys, "pfx/k"+string(c))
		if c < 32 || c == 127 || c == '%' || c == '+' || c == ' ' {
			keys = append(keys, "k"+string(c))
		}
	}
	keys = append(keys, "pfx/\x80", "pfx/b\xc3", "pfx/\xff", "pfx/a\xffb/c",
		"pfx/a..__0x2f__b", "pfx/__0x41__", "pfx/x__0x5f___0x41__", "pfx/%zz", "pfx/a+b", "pfx/a b", "pfx/a%2Bb")
	planted, refused := plantAll(t, client, bucket, keys)
	var want []string
	for _, key := range planted {
		if name, ok := strings.CutPrefix(key, "pfx/"); ok && v.ValidateName(name) == nil {
			want = append(want, name)
		}
	}
	t.Logf("MinIO refused %d planted keys: %q", len(refused), refused)
	write(t, d, "mine", "mine")
	want = append(want, "mine")
	slices.Sort(want)
	for _, size := range []int{0, 1, 7} {
		var got []string
		token := ""
		for {
			p, err := d.List(t.Context(), &driver.ListOptions{PageToken: token, PageSize: size})
			if err != nil {
				t.Fatalf("List (page size %d): %v", size, err)
			}
			for _, o := range p.Objects {
				got = append(got, o.Name)
			}
			if token = p.NextPageToken; token == "" {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("List (page size %d) =\n%q\nwant\n%q", size, got, want)
		}
	}
	// The planted keys are all still there.
	raw := s3test.RawKeys(t, client, bucket)
	for _, key := range planted {
		if !slices.Contains(raw, key) {
			t.Errorf("planted %q is gone", key)
		}
	}
	if len(raw) != len(planted)+1 {
		t.Errorf("%d keys in the bucket, want %d", len(raw), len(planted)+1)
	}
}

// plantAll plants keys concurrently and returns those the server stored and
// those it refused.
func plantAll(t *testing.T, client *s3.Client, bucket string, keys []string) (planted, refused []string) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, key := range keys {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			err := s3test.Plant(t, client, bucket, key)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused = append(refused, key)
			} else {
				planted = append(planted, key)
			}
		})
	}
	wg.Wait()
	slices.Sort(planted)
	slices.Sort(refused)
	return planted, refused
}
