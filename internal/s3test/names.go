package s3test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/blobcache/blobcache/driver"
)

// TrickyNames are names that stress the escaping of stores and their Go CDK
// drivers: "../" and "__0x<hex>__" sequences (which the Go CDK rewrites),
// URL and form escapes, characters some stores refuse, and a few that
// driver.ValidateName refuses. Each must either be refused with
// driver.ErrInvalidName or round-trip exactly; see [CheckNames].
var TrickyNames = []string{
	// Go CDK escaping: the "/" of "../" and escape sequences.
	"a../b", "a..", "a..b/c", "x/a../y", "a.../b", "...", "a/..c", "a./b", "a/.b",
	"x__0x2f__y", "__0x41__", "x/__0x41__", "a__0x41__b", "___0x41__", "__0x5f__",
	"__0x-1__", "__0x+41__", "__0x7fffffff__", "__0x80000000__", "__0x__",
	"__0xzz__", "__0x41_", "_0x41__", "__0X41__", "__0x1F642__",
	// URL, form and shell escapes.
	"a%2Fb", "%", "%zz", "%25", "%2e%2e", "a+b", "+", "a b", " ", "s p/c d",
	"a?b", "a#b", "a&b=c", "~", "*", "a;b", "a:b", "a@b", "a=b", "a,b", "a!b",
	"a$b", "a'b", `a"b`, `a\b`, "a<b>", "a|b", "a{b}", "a[b]", "a^b", "a`b",
	// Unicode.
	"ü", "e\u0301", "日本/ファイル", "🙂", "\u00a0", "a\u2028b", "\ufffd", "\ufeffbom",
	// Store-specific reservations (fileblob keeps attributes in *.attrs).
	"x.attrs", "a.attrs/b",
	// Invalid per driver.ValidateName.
	"./a", "a/./b", "a/../b", "..", "a/..", "", "/a", "a/", "a//b",
	"a\x00b", "a\x01b", "a\rb", "a\nb", "a\x7fb", "\xff", "a\xc3",
}

// CheckNames writes, reads, lists (also with the name itself as the prefix)
// and deletes every name through d, prefixed by under (which must end in
// "/" or be empty). A name is accepted when ValidateName (the driver's
// driver.NameValidator, or driver.ValidateName) accepts it; an accepted name
// must round-trip exactly, and a refused one must be refused by ValidateName
// and by Write, Read, Delete, Replace and DeleteBatch with an error wrapping
// driver.ErrInvalidName that quotes the name. While the accepted names (with
// under) are stored, stored (when not nil) is called with them, so the
// caller can check the store itself; then they are all deleted again, and
// returned.
func CheckNames(t *testing.T, d driver.Driver, under string, names []string, stored func(accepted []string)) (accepted []string) {
	t.Helper()
	ctx := t.Context()
	validate := driver.ValidateName
	if v, ok := d.(driver.NameValidator); ok {
		validate = v.ValidateName
	}
	for _, n := range names {
		name := under + n
		verr := validate(name)
		werr := d.Write(ctx, name, strings.NewReader(name), &driver.WriteOptions{})
		if verr != nil {
			refused(t, "ValidateName", name, verr)
			refused(t, "Write", name, werr)
			_, _, err := d.Read(ctx, name, 0, -1)
			refused(t, "Read", name, err)
			refused(t, "Delete", name, d.Delete(ctx, name))
			if r, ok := d.(driver.Replacer); ok {
				refused(t, "Replace", name, r.Replace(ctx, name, strings.NewReader("x"), `"1"`, &driver.WriteOptions{}))
			}
			if b, ok := d.(driver.BatchDeleter); ok {
				refused(t, "DeleteBatch", name, b.DeleteBatch(ctx, []string{under + "ok", name}))
			}
			continue
		}
		if werr != nil {
			t.Errorf("Write %q: %v (ValidateName accepted it)", name, werr)
			continue
		}
		accepted = append(accepted, name)
		data, a, err := d.Read(ctx, name, 0, -1)
		if err != nil || string(data) != name || a.Name != name {
			t.Errorf("Read %q = %q, name %q, %v", name, data, a.Name, err)
		}
		p, err := d.List(ctx, &driver.ListOptions{Prefix: name, PageSize: 1})
		if err != nil || len(p.Objects) == 0 || p.Objects[0].Name != name {
			t.Errorf("List(prefix %q, page size 1) = %+v, %v; want the object itself first", name, p, err)
		}
	}
	// One listing of everything: exactly the accepted names.
	listed, err := ListAll(ctx, d, under)
	if err != nil {
		t.Fatalf("List(prefix %q): %v", under, err)
	}
	want := slices.Clone(accepted)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("List(prefix %q) =\n%q\nwant\n%q", under, listed, want)
	}
	if stored != nil {
		stored(slices.Clone(accepted))
	}
	for _, name := range accepted {
		if err := d.Delete(ctx, name); err != nil {
			t.Errorf("Delete %q: %v", name, err)
		}
		if _, _, err := d.Read(ctx, name, 0, -1); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("Read %q after Delete: %v, want ErrNotFound", name, err)
		}
	}
	if listed, err := ListAll(ctx, d, under); err != nil || len(listed) != 0 {
		t.Errorf("List(prefix %q) after deleting everything = %q, %v", under, listed, err)
	}
	return accepted
}

// refused checks that err refuses name as invalid, quoting it.
func refused(t *testing.T, op, name string, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s %q succeeded, want driver.ErrInvalidName", op, name)
	case !errors.Is(err, driver.ErrInvalidName):
		t.Errorf("%s %q: %v, want driver.ErrInvalidName", op, name, err)
	case len(name) <= 200 && !strings.Contains(err.Error(), fmt.Sprintf("%q", name)):
		t.Errorf("%s %q: the error %q does not quote the name", op, name, err)
	}
}

// ListAll returns the names of every object under prefix, through all the
// pages of d's listing.
func ListAll(ctx context.Context, d driver.Driver, prefix string) ([]string, error) {
	var names []string
	token := ""
	for {
		p, err := d.List(ctx, &driver.ListOptions{Prefix: prefix, PageToken: token})
		if err != nil {
			return names, err
		}
		for _, o := range p.Objects {
			names = append(names, o.Name)
		}
		if token = p.NextPageToken; token == "" {
			return names, nil
		}
	}
}

// RawKeys lists the bucket with the S3 client itself, url-encoded so that
// any key can be read, and returns every key decoded, in the server's
// order. It fails the test when the server does not url-encode the keys or
// a key does not decode.
func RawKeys(t testing.TB, client *s3.Client, bucket string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{
		Bucket:       aws.String(bucket),
		EncodingType: types.EncodingTypeUrl,
	})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("s3test: list %s: %v", bucket, err)
		}
		if page.EncodingType != types.EncodingTypeUrl && len(page.Contents) > 0 {
			t.Fatalf("s3test: list %s: the server did not url-encode the keys (EncodingType %q)", bucket, page.EncodingType)
		}
		for _, o := range page.Contents {
			k, err := url.QueryUnescape(aws.ToString(o.Key))
			if err != nil {
				t.Fatalf("s3test: list %s: key %q does not decode: %v", bucket, aws.ToString(o.Key), err)
			}
			keys = append(keys, k)
		}
	}
	return keys
}

// Plant stores an object under key with the S3 client itself, as someone
// with raw access to the bucket would, and registers a cleanup that deletes
// it again (before the bucket's own cleanup, which lists without
// url-encoding and so cannot read such keys). It returns the server's
// error, such as MinIO's refusal of a NUL byte.
func Plant(t testing.TB, client *s3.Client, bucket, key string) error {
	t.Helper()
	_, err := client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket),
		Key:    aws.String(key),
		Body:   strings.NewReader("planted " + key),
	})
	if err != nil {
		return err
	}
	t.Cleanup(func() {
		_, err := client.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Errorf("s3test: delete planted %q: %v", key, err)
		}
	})
	return nil
}
