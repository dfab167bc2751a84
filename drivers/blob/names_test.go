package blob

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/internal/s3test"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/blob/s3blob"
)

// noNetwork fails every request: the probes below must never send one.
type noNetwork struct{ t testing.TB }

func (n noNetwork) RoundTrip(r *http.Request) (*http.Response, error) {
	n.t.Errorf("unexpected request %s %s", r.Method, r.URL)
	return nil, errors.New("no network in this test")
}

// errProbe aborts the Go CDK's requests in their Before hooks.
var errProbe = errors.New("probe")

// offlineS3 returns a driver with s3blob's rules over an s3blob bucket whose
// client can send no request, optionally behind a Go CDK prefixed bucket
// (whose prefix s3blob sends unescaped for the prefixes used here). It
// compares this package's replica of s3blob's escaping with s3blob itself;
// drivers/s3 is what opens s3blob buckets for real.
func offlineS3(t testing.TB, prefix string) *Driver {
	t.Helper()
	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://127.0.0.1:9"),
		UsePathStyle: true,
		Credentials:  aws.AnonymousCredentials{},
		HTTPClient:   &http.Client{Transport: noNetwork{t}},
	})
	b, err := s3blob.OpenBucket(context.Background(), client, "bucket", nil)
	if err != nil {
		t.Fatal(err)
	}
	if prefix != "" {
		b = gcblob.PrefixedBucket(b, prefix)
	}
	d, _ := NewProvided(b, Provider{Escaping: EscapingS3, KeyPrefix: prefix})
	t.Cleanup(func() { d.Close() })
	return d
}

// probeNames are names and prefixes for comparing the replica of the Go CDK's
// escaping with the Go CDK itself.
func probeNames() []string {
	names := append([]string{}, s3test.TrickyNames...)
	names = append(names,
		"a../", "../", "..", "/", "//", "a//", "x\x1fy", "\x7f", "__0x41__/", "a__0x41",
		"__0x41____0x42__", "____0x41__", "__0x__0x41__", "__0x4__1__", "a/../b/../c",
		"..\\..\\x", `\\`, "trailing/", "ü/", "üü/ab", "日本/", "\u2028",
	)
	return names
}

// TestEscapingMatchesS3Blob compares the replica of s3blob's key escaping
// with the key s3blob itself puts in a GetObject request and the prefix it
// puts in a ListObjectsV2 request (both taken from the requests' Before
// hooks, no request is sent), also behind a Go CDK prefixed bucket.
func TestEscapingMatchesS3Blob(t *testing.T) {
	for _, pfx := range []string{"", "pfx/", "p q/"} {
		d := offlineS3(t, pfx)
		if d.rules.esc != EscapingS3 || d.rules.keyPrefix != pfx || d.rules.prefixErr != nil {
			t.Fatalf("prefix %q: rules %+v", pfx, d.rules)
		}
		for _, name := range probeNames() {
			if name == "" || !utf8.ValidString(name) {
				continue // the Go CDK refuses such keys itself
			}
			compareS3Key(t, d, pfx, name)
			compareS3Prefix(t, d, pfx, name)
		}
	}
}

func compareS3Key(t testing.TB, d *Driver, pfx, name string) {
	t.Helper()
	var got string
	_, err := d.b.NewRangeReader(context.Background(), name, 0, -1, &gcblob.ReaderOptions{
		BeforeRead: func(asFunc func(any) bool) error {
			var in *s3.GetObjectInput
			if !asFunc(&in) {
				t.Fatal("no *s3.GetObjectInput")
			}
			got = aws.ToString(in.Key)
			return errProbe
		},
	})
	if !errors.Is(err, errProbe) {
		t.Fatalf("probe %q: %v", name, err)
	}
	if want := EscapingS3.escape(pfx+name, false); got != want {
		t.Errorf("s3blob stores %q as %q; the replica says %q", pfx+name, got, want)
	}
	verr := d.ValidateName(name)
	exact := got == pfx+name && driver.ValidateName(name) == nil
	if (verr == nil) != exact {
		t.Errorf("ValidateName(%q) = %v, but s3blob stores it as %q", name, verr, got)
	}
	if verr != nil && !errors.Is(verr, driver.ErrInvalidName) {
		t.Errorf("ValidateName(%q) = %v, not ErrInvalidName", name, verr)
	}
}

func compareS3Prefix(t testing.TB, d *Driver, pfx, prefix string) {
	t.Helper()
	var got string
	_, _, err := d.b.ListPage(context.Background(), gcblob.FirstPageToken, 1, &gcblob.ListOptions{
		Prefix: prefix,
		BeforeList: func(asFunc func(any) bool) error {
			var in *s3.ListObjectsV2Input
			if !asFunc(&in) {
				t.Fatal("no *s3.ListObjectsV2Input")
			}
			got = aws.ToString(in.Prefix)
			return errProbe
		},
	})
	if !errors.Is(err, errProbe) {
		t.Fatalf("probe prefix %q: %v", prefix, err)
	}
	if want := EscapingS3.escape(pfx+prefix, true); got != want {
		t.Errorf("s3blob lists prefix %q as %q; the replica says %q", pfx+prefix, got, want)
	}
	lerr := d.rules.check(prefix, true)
	if (lerr == nil) != (got == pfx+prefix) {
		t.Errorf("prefix check of %q = %v, but s3blob sends it as %q", prefix, lerr, got)
	}
}

// FuzzS3Escaping compares the replica of s3blob's escaping with s3blob
// itself on arbitrary names.
func FuzzS3Escaping(f *testing.F) {
	for _, n := range probeNames() {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if name == "" || !utf8.ValidString(name) {
			return
		}
		d := offlineS3(t, "")
		compareS3Key(t, d, "", name)
		compareS3Prefix(t, d, "", name)
	})
}

// TestRewrittenKeyPrefix checks that a Provider's key prefix holding an
// escape sequence (a prefix the Go CDK rewrote) refuses every name, and
// that memblob's rules, which rewrite nothing, do not.
func TestRewrittenKeyPrefix(t *testing.T) {
	for _, pfx := range []string{"a..__0x2f__", "x__0x5f___0x41__/"} {
		d, _ := NewProvided(memblob.OpenBucket(nil), Provider{Escaping: EscapingS3, KeyPrefix: pfx})
		err := d.ValidateName("plain")
		if !errors.Is(err, driver.ErrInvalidName) || !strings.Contains(err.Error(), "key prefix") {
			t.Errorf("prefix %q: ValidateName(plain) = %v", pfx, err)
		}
		werr := d.Write(t.Context(), "plain", strings.NewReader("x"), &driver.WriteOptions{})
		if !errors.Is(werr, driver.ErrInvalidName) {
			t.Errorf("prefix %q: Write = %v", pfx, werr)
		}
		d.Close()
	}
	d, _ := NewProvided(memblob.OpenBucket(nil), Provider{Escaping: EscapingNone, KeyPrefix: "x__0x41__/"})
	defer d.Close()
	if err := d.ValidateName("plain"); err != nil {
		t.Errorf("memblob's rules: ValidateName(plain) = %v", err)
	}
}

// TestEscapingMatchesFileblob writes every valid name through fileblob and
// compares the file it made with the replica of fileblob's escaping.
func TestEscapingMatchesFileblob(t *testing.T) {
	for _, name := range probeNames() {
		if driver.ValidateName(name) != nil {
			continue
		}
		dir := t.TempDir()
		b, err := fileblob.OpenBucket(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		d := New(b)
		if d.rules.esc != EscapingFile {
			t.Fatalf("fileblob bucket has rules %v", d.rules.esc)
		}
		werr := b.WriteAll(t.Context(), name, []byte("x"), nil)
		var files []string
		filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() && !strings.HasSuffix(path, attrsExt) {
				rel, _ := filepath.Rel(dir, path)
				files = append(files, filepath.ToSlash(rel))
			}
			return nil
		})
		verr := d.ValidateName(name)
		switch {
		case werr != nil:
			if verr == nil {
				t.Errorf("fileblob refuses %q (%v), ValidateName accepts it", name, werr)
			}
		case len(files) != 1:
			t.Errorf("fileblob wrote %q as %q", name, files)
		default:
			if want := EscapingFile.escape(name, false); files[0] != want {
				t.Errorf("fileblob stores %q as %q; the replica says %q", name, files[0], want)
			}
			if (verr == nil) != (files[0] == name) {
				t.Errorf("ValidateName(%q) = %v, but fileblob stores it as %q", name, verr, files[0])
			}
		}
		d.Close()
	}
}

// TestEscapingAnyIsUnion checks that EscapingAny refuses every name that
// one of the known drivers rewrites.
func TestEscapingAnyIsUnion(t *testing.T) {
	union := nameRules{esc: EscapingAny}
	for _, name := range probeNames() {
		if driver.ValidateName(name) != nil {
			continue
		}
		for _, e := range []Escaping{EscapingS3, EscapingGCS, EscapingAzure, EscapingFile} {
			r := nameRules{esc: e}
			if r.check(name, false) != nil && union.check(name, false) == nil {
				t.Errorf("%v refuses %q, EscapingAny accepts it", e, name)
			}
		}
	}
	// What azureblob escapes, as its source says (azureblob.go:922).
	for _, name := range []string{`a\b`, `a"b`, "a#b", "a%b", "a?b"} {
		if (&nameRules{esc: EscapingAzure}).check(name, false) == nil {
			t.Errorf("EscapingAzure accepts %q", name)
		}
	}
	if err := (&nameRules{esc: EscapingNone}).check("a../__0x41__", false); err != nil {
		t.Errorf("EscapingNone refuses a valid name: %v", err)
	}
}

func TestWithEscaping(t *testing.T) {
	if (Escaping(99)).valid() {
		t.Fatal("Escaping(99) is valid")
	}
	var c config
	WithEscaping(Escaping(99))(&c)
	if c.escaping == nil || *c.escaping != EscapingAny {
		t.Errorf("WithEscaping(99) = %v, want EscapingAny", c.escaping)
	}
	for e := EscapingAny; e <= EscapingFile; e++ {
		if strings.HasPrefix(e.String(), "Escaping(") {
			t.Errorf("%d has no name", e)
		}
	}
}
