package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/blobcache/blobcache/driver"
)

var ctx = context.Background()

func newDriver(t testing.TB, dir string) *Driver {
	t.Helper()
	d, err := New(dir)
	if err != nil {
		t.Fatalf("New(%q): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

func write(t testing.TB, d *Driver, name string, data []byte) {
	t.Helper()
	if err := d.Write(ctx, name, bytes.NewReader(data), &driver.WriteOptions{}); err != nil {
		t.Fatalf("Write(%q): %v", name, err)
	}
}

func read(t testing.TB, d *Driver, name string) ([]byte, driver.Attributes) {
	t.Helper()
	data, attrs, err := d.Read(ctx, name, 0, -1)
	if err != nil {
		t.Fatalf("Read(%q): %v", name, err)
	}
	return data, attrs
}

func wantContent(t testing.TB, d *Driver, name string, want []byte) {
	t.Helper()
	if got, _ := read(t, d, name); !bytes.Equal(got, want) {
		t.Errorf("Read(%q) = %q, want %q", name, abbrev(got), abbrev(want))
	}
}

func wantAbsent(t testing.TB, d *Driver, name string) {
	t.Helper()
	if got, _, err := d.Read(ctx, name, 0, -1); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Read(%q) = %q, %v; want ErrNotFound", name, abbrev(got), err)
	}
}

func abbrev(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%s... (%d bytes)", b[:40], len(b))
	}
	return string(b)
}

// listAll lists every object with prefix, pageSize at a time.
func listAll(t testing.TB, d *Driver, prefix string, pageSize int) ([]driver.Attributes, int) {
	t.Helper()
	var all []driver.Attributes
	token := ""
	pages := 0
	for {
		page, err := d.List(ctx, &driver.ListOptions{Prefix: prefix, PageToken: token, PageSize: pageSize})
		if err != nil {
			t.Fatalf("List(%q, page %d): %v", prefix, pages, err)
		}
		pages++
		limit := pageSize
		if limit == 0 {
			limit = driver.MaxListPageSize
		}
		if len(page.Objects) > limit {
			t.Fatalf("List(%q, page size %d) returned %d objects", prefix, pageSize, len(page.Objects))
		}
		if page.NextPageToken != "" && len(page.Objects) == 0 {
			t.Fatalf("List(%q): empty page with a next page token", prefix)
		}
		all = append(all, page.Objects...)
		if page.NextPageToken == "" {
			return all, pages
		}
		token = page.NextPageToken
		if pages > 100000 {
			t.Fatalf("List(%q) does not end", prefix)
		}
	}
}

func listNames(t testing.TB, d *Driver, prefix string, pageSize int) []string {
	t.Helper()
	objs, _ := listAll(t, d, prefix, pageSize)
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.Name
	}
	return names
}

// tempFiles returns the temporary files under dir.
func tempFiles(t testing.TB, dir string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(de.Name(), tempPrefix) {
			found = append(found, path)
		}
		return nil
	})
	return found
}

func TestNew(t *testing.T) {
	for _, dir := range []string{"", "relative", "./x", "x/y"} {
		if _, err := New(dir); err == nil || !strings.Contains(err.Error(), "absolute") {
			t.Errorf("New(%q) = %v, want an error about an absolute path", dir, err)
		}
	}
	dir := filepath.Join(t.TempDir(), "a", "b")
	newDriver(t, dir)
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		t.Fatalf("New did not make %s: %v", dir, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("directory mode %v, want 0700", perm)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := New(file); err == nil {
		t.Errorf("New(%q) of a regular file succeeded", file)
	}
}

func TestOpenURL(t *testing.T) {
	dir := t.TempDir()
	for _, raw := range []string{"file://" + dir, "file://localhost" + dir, "file://" + dir + "/sub%20dir"} {
		u, _ := url.Parse(raw)
		d, err := OpenURL(ctx, u)
		if err != nil {
			t.Errorf("OpenURL(%q): %v", raw, err)
			continue
		}
		if want := filepath.Clean(u.Path); d.Dir() != want {
			t.Errorf("OpenURL(%q).Dir() = %q, want %q", raw, d.Dir(), want)
		}
		d.Close()
	}
	for raw, want := range map[string]string{
		"file://host" + dir:                  "host",
		"file:relative/dir":                  "file:///",
		"file://" + dir + "?location=x":      `"location"`,
		"file://" + dir + "?b=1&a=2":         `unknown option "a"`,
		"file://":                            "no directory",
		"s3://bucket":                        "scheme",
		"file://user@" + dir:                 "user",
		"file://" + dir + "#S3CR3T":          "fragment",
		"file://" + dir + "?x=1;y=2":         "semicolon",
		"file://" + dir + "?x=%zz":           "escape",
		"file://localhost/relative/../../..": "",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("url.Parse(%q): %v", raw, err)
		}
		d, err := OpenURL(ctx, u)
		if want == "" {
			// "/relative/../../.." cleans to "/": allowed, nothing to test.
			if err == nil {
				d.Close()
			}
			continue
		}
		if err == nil {
			d.Close()
			t.Errorf("OpenURL(%q) succeeded, want an error mentioning %s", raw, want)
		} else if !strings.Contains(err.Error(), want) {
			t.Errorf("OpenURL(%q) = %v, want an error mentioning %s", raw, err, want)
		} else if strings.Contains(err.Error(), "S3CR3T") {
			t.Errorf("OpenURL(%q) = %v: the fragment (which may be a secret's tail) is shown", raw, err)
		}
	}
}

// TestObjectFiles checks what the file driver does beyond the conformance
// suite's ReadYourWrite and EmptyObject cases: Read fills in Name (the
// suite allows it empty) and a ModTime within a second of the write (the
// file's mtime; the suite allows 15 minutes of clock skew); an object of
// several read chunks (readChunk, 1 MiB) reads back whole (ReadYourWrite's
// largest object is 256 KiB); object files are mode 0600 in directories of
// mode 0700.
func TestObjectFiles(t *testing.T) {
	d := newDriver(t, t.TempDir())
	for i, size := range []int{0, 1, 3*readChunk + 5} {
		name := "ryw/" + strconv.Itoa(i)
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(j * 7)
		}
		before := time.Now()
		write(t, d, name, data)
		got, attrs := read(t, d, name)
		if !bytes.Equal(got, data) {
			t.Errorf("Read(%q) = %d bytes, want the %d written", name, len(got), len(data))
		}
		if attrs.Name != name || attrs.Size != int64(size) {
			t.Errorf("Read(%q) attributes = %+v", name, attrs)
		}
		if attrs.ModTime.Before(before.Add(-time.Second)) || attrs.ModTime.After(time.Now().Add(time.Second)) {
			t.Errorf("Read(%q) ModTime %v not around %v", name, attrs.ModTime, before)
		}
		fi, err := os.Stat(d.path(name))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o177 != 0 {
			t.Errorf("file mode %v, want 0600", perm)
		}
		fi, err = os.Stat(filepath.Dir(d.path(name)))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("directory mode %v, want 0700", perm)
		}
	}
}

// TestETagPerWrite: the file driver's ETag names a write, not a content
// (the contract asks only that it change with the content, which the
// conformance suite's Replace case checks): rewriting the same bytes
// changes it, and a Replace with the ETag from before the rewrite fails.
func TestETagPerWrite(t *testing.T) {
	d := newDriver(t, t.TempDir())
	write(t, d, "over", []byte("the same content"))
	_, a1 := read(t, d, "over")
	write(t, d, "over", []byte("the same content"))
	_, a2 := read(t, d, "over")
	if a1.ETag == a2.ETag {
		t.Errorf("ETag %q unchanged by a write of the same content", a1.ETag)
	}
	err := d.Replace(ctx, "over", strings.NewReader("replaced"), a1.ETag, &driver.WriteOptions{})
	if !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("Replace with the ETag from before a rewrite of the same content = %v, want ErrPreconditionFailed", err)
	}
	wantContent(t, d, "over", []byte("the same content"))
}

// TestReadPastEnd: a read whose offset lies past the end of the object
// returns no bytes and no error, with the object's size. (The conformance
// suite's ReadRange case stops at an offset equal to the size.)
func TestReadPastEnd(t *testing.T) {
	d := newDriver(t, t.TempDir())
	write(t, d, "range", make([]byte, 100))
	for _, length := range []int64{5, -1} {
		got, attrs, err := d.Read(ctx, "range", 150, length)
		if err != nil || len(got) != 0 || attrs.Size != 100 {
			t.Errorf("Read(offset 150, length %d) = %d bytes, Size %d, %v; want no bytes, Size 100, nil", length, len(got), attrs.Size, err)
		}
	}
}

// TestNotFoundOnDisk: a directory where an object file would be is no
// object, and the ErrNotFound of an absent object keeps the OS error and
// the path. (The conformance suite's NotFound case checks names absent
// through the driver.)
func TestNotFoundOnDisk(t *testing.T) {
	d := newDriver(t, t.TempDir())
	os.Mkdir(d.path("odd"), 0o700)
	wantAbsent(t, d, "odd")
	_, _, err := d.Read(ctx, "never", 0, -1)
	if !errors.Is(err, driver.ErrNotFound) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), d.Dir()) {
		t.Errorf("Read of an absent object = %v, want ErrNotFound with the path and fs.ErrNotExist in it", err)
	}
}

// TestDeleteRemovesEmptyDirectories: deleting the last objects of a
// directory removes the directories they leave empty, and deleting an
// absent object whose directories do not exist is no error. (The
// conformance suite's Delete case checks what Delete does to objects.)
func TestDeleteRemovesEmptyDirectories(t *testing.T) {
	dir := t.TempDir()
	d := newDriver(t, dir)
	write(t, d, "del/obj", []byte("doomed"))
	write(t, d, "del/obj/child", []byte("child"))
	write(t, d, "del/objx", []byte("sibling"))
	if err := d.Delete(ctx, "nowhere/at/all"); err != nil {
		t.Errorf("Delete of an absent object under absent directories = %v, want nil", err)
	}
	for _, name := range []string{"del/obj", "del/obj/child", "del/objx"} {
		if err := d.Delete(ctx, name); err != nil {
			t.Errorf("Delete(%q): %v", name, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != lockDir {
			t.Errorf("after deleting everything, %s is left in the directory", e.Name())
		}
	}
}

// TestDeleteBatchRemovesEmptyDirectories: a batch over several directories,
// long enough to be split between workers, with absent names and names
// under absent directories among them, deletes what it names, keeps the rest
// and removes the directories it leaves empty (once per directory, not
// after every name).
func TestDeleteBatchRemovesEmptyDirectories(t *testing.T) {
	dir := t.TempDir()
	d := newDriver(t, dir)
	var names []string
	for _, sub := range []string{"a", "a/b", "c", "keep"} {
		for i := range 40 {
			name := sub + "/" + strconv.Itoa(i)
			write(t, d, name, []byte(name))
			names = append(names, name)
		}
	}
	write(t, d, "keep/survivor", []byte("kept"))
	write(t, d, "top", []byte("top"))
	names = append(names, "top", "absent", "a/absent", "nowhere/at/all")
	slices.Sort(names)
	if len(names) < batchSplit {
		t.Fatalf("%d names: too few to split the batch", len(names))
	}
	if err := d.DeleteBatch(ctx, names); err != nil {
		t.Fatalf("DeleteBatch: %v", err)
	}
	wantContent(t, d, "keep/survivor", []byte("kept"))
	for _, name := range names {
		wantAbsent(t, d, name)
	}
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		if e.Name() != lockDir {
			left = append(left, e.Name())
		}
	}
	if want := []string{"keep~"}; !slices.Equal(left, want) {
		t.Errorf("after the batch, the directory holds %q, want %q", left, want)
	}
}

// TestStripeOfIsFNV: the lock stripe of a name is FNV-1a modulo the number
// of stripes, as it always was, so that processes of older and newer
// versions sharing a store take the same lock file for a name.
func TestStripeOfIsFNV(t *testing.T) {
	for _, name := range append([]string{"", "a", "cache/0123456789abcdef0123456789abcdef01234567"}, unusualNames...) {
		h := fnv.New32a()
		h.Write([]byte(name))
		if got, want := stripeOf(name), h.Sum32()%numStripes; got != want {
			t.Errorf("stripeOf(%q) = %d, want %d", name, got, want)
		}
	}
}

// unusualNames stress escaping, sorting and the mapping to files.
var unusualNames = []string{
	"with space", "a b/c d", "trailing space ", " leading space",
	"%", "percent%", "%41", "%2F", "%2e%2e", "~", "~~", "tilde~user", "x~/y", "x~+/y", "x%~",
	"hash#frag", "question?x=1", "plus+sign", "colon:x", `back\slash`, "star*",
	"日本/ファイル", "é", "e\u0301", "🙂", "\u00a0nbsp", "Case/A", "case/a", "CASE",
	".hidden", "a/.b", "...", "a/..c", "a./b.", ".~tmp-123", ".~locks", ".~locks/00",
	"cache", "cache/x", "cache/x/y", "cache~", "-dash", "_under",
	strings.Repeat("s", 83), strings.Repeat("s", 84), strings.Repeat("s", 85),
	strings.Repeat("s", 84) + "/x", strings.Repeat("s", 84) + "!", strings.Repeat("s", 84) + "!/z",
	strings.Repeat("s", 168), strings.Repeat("s", 168) + "/x", strings.Repeat("s", 167) + "/x",
	strings.Repeat("%", 255), "seg255/" + strings.Repeat("y", 255), strings.Repeat("é", 127),
	strings.Repeat("é", 42) + "/x", // 84 bytes, splitting no character
	strings.Repeat("é", 43) + "/x", // 86 bytes, a chunk boundary inside a character
	longName(driver.MaxNameLength, 'a'), longName(driver.MaxNameLength-1, '~'),
}

// longName returns a name of n bytes of segments of 200 times c.
func longName(n int, c byte) string {
	b := []byte(strings.Repeat(strings.Repeat(string(c), 200)+"/", n/201+1))[:n]
	if b[n-1] == '/' {
		b[n-1] = c
	}
	return string(b)
}

func TestUnusualNames(t *testing.T) {
	dir := t.TempDir()
	d := newDriver(t, dir)
	names := slices.Clone(unusualNames)
	for _, name := range names {
		if err := driver.ValidateName(name); err != nil {
			t.Fatalf("test bug: %v", err)
		}
		write(t, d, name, []byte("content of "+name))
	}
	for _, name := range names {
		wantContent(t, d, name, []byte("content of "+name))
		objs, _ := listAll(t, d, name, 1)
		if len(objs) == 0 || objs[0].Name != name {
			t.Errorf("List(prefix %q, page size 1) does not start with the object itself", name)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	for _, pageSize := range []int{0, 1, 3} {
		if got := listNames(t, d, "", pageSize); !slices.Equal(got, names) {
			t.Errorf("List(page size %d) =\n%q\nwant\n%q", pageSize, got, names)
		}
	}
	// Every prefix of every name selects exactly the names with it.
	for _, name := range names {
		for _, n := range []int{1, 2, len(name) / 2, len(name) - 1, 83, 84, 85, 86, 168, 169} {
			if n <= 0 || n > len(name) {
				continue
			}
			prefix := name[:n]
			var want []string
			for _, m := range names {
				if strings.HasPrefix(m, prefix) {
					want = append(want, m)
				}
			}
			if got := listNames(t, d, prefix, 2); !slices.Equal(got, want) {
				t.Errorf("List(prefix %q) = %q, want %q", prefix, got, want)
			}
		}
	}
	for _, name := range names {
		if err := d.Delete(ctx, name); err != nil {
			t.Errorf("Delete(%q): %v", name, err)
		}
		wantAbsent(t, d, name)
	}
	if got := listNames(t, d, "", 0); len(got) != 0 {
		t.Errorf("List after deleting everything = %q", got)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != lockDir {
			t.Errorf("after deleting everything, %s is left in the directory", e.Name())
		}
	}
}

// TestRandomNames checks listing order and prefixes on random names made of
// bytes that sort around '/' and of segments around the chunk length.
func TestRandomNames(t *testing.T) {
	d := newDriver(t, t.TempDir())
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", "!", ".", "0", "%", "~", "+", "é", "A", " "}
	seg := func() string {
		n := []int{1, 2, 3, 83, 84, 85, 168, 170}[r.IntN(8)]
		var b strings.Builder
		c := alphabet[r.IntN(len(alphabet))]
		for b.Len() < n {
			if r.IntN(8) == 0 {
				c = alphabet[r.IntN(len(alphabet))]
			}
			b.WriteString(c)
		}
		return b.String()
	}
	set := map[string]bool{}
	var names []string
	for len(names) < 400 {
		parts := []string{seg()}
		for r.IntN(2) == 0 && len(parts) < 3 {
			parts = append(parts, seg())
		}
		name := strings.Join(parts, "/")
		if len(names) > 0 && r.IntN(2) == 0 {
			// Start with part of an existing name, to make siblings.
			other := names[r.IntN(len(names))]
			cut := r.IntN(len(other)) + 1
			name = other[:cut] + name
		}
		if len(name) > driver.MaxNameLength || driver.ValidateName(name) != nil || set[name] {
			continue
		}
		set[name] = true
		names = append(names, name)
		write(t, d, name, []byte(name))
	}
	slices.Sort(names)
	if got := listNames(t, d, "", 7); !slices.Equal(got, names) {
		t.Fatalf("List of random names out of order or incomplete:\ngot  %q\nwant %q", got, names)
	}
	for range 200 {
		name := names[r.IntN(len(names))]
		prefix := name[:r.IntN(len(name))+1]
		var want []string
		for _, m := range names {
			if strings.HasPrefix(m, prefix) {
				want = append(want, m)
			}
		}
		if got := listNames(t, d, prefix, 1+r.IntN(5)); !slices.Equal(got, want) {
			t.Errorf("List(prefix %q) = %q, want %q", prefix, got, want)
		}
	}
}

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"abc-_.09", "abc-_.09"}, {".x", "%2Ex"}, {"x.", "x."}, {"A", "%41"}, {"~", "%7E"},
		{"%", "%25"}, {"a b", "a%20b"}, {"é", "%C3%A9"}, {"", "%"},
	} {
		if got := escape(tc.in); got != tc.want {
			t.Errorf("escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got, ok := unescape(tc.want); !ok || got != tc.in {
			t.Errorf("unescape(%q) = %q, %v; want %q", tc.want, got, ok, tc.in)
		}
	}
	for _, bad := range []string{"", "%41%", "%4", "%zz", "%61", "%c3%a9", "A", ".x", "a~", "a b"} {
		if got, ok := unescape(bad); ok {
			t.Errorf("unescape(%q) = %q, true; want not canonical", bad, got)
		}
	}
	for _, name := range unusualNames {
		for _, comp := range strings.Split(objectPath(name), "/") {
			if len(comp) > 255 {
				t.Errorf("objectPath(%q) has a component of %d bytes", name, len(comp))
			}
		}
	}
}

// TestListAroundSlash lists names that sort just before and after "/"
// ("cache-", "cache.x" < "cache/..." < "cache0"), which the file driver
// keeps in different directories, with small pages, and prefixes no valid
// name starts with. (The conformance suite's ListPrefix case checks the
// prefix rule on names that sort after "/", one page at a time.)
func TestListAroundSlash(t *testing.T) {
	d := newDriver(t, t.TempDir())
	names := []string{"cache", "cache/a", "cache/b/c", "cache2/x", "cachex", "cach", "other/cache/x", "cache.x", "cache-", "cache0"}
	for _, n := range names {
		write(t, d, n, []byte(n))
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"cache", []string{"cache", "cache-", "cache.x", "cache/a", "cache/b/c", "cache0", "cache2/x", "cachex"}},
		{"ca", []string{"cach", "cache", "cache-", "cache.x", "cache/a", "cache/b/c", "cache0", "cache2/x", "cachex"}},
		{"cache/b/", []string{"cache/b/c"}},
		{"cachex", []string{"cachex"}},
		{"cache2/", []string{"cache2/x"}},
		{"", []string{"cach", "cache", "cache-", "cache.x", "cache/a", "cache/b/c", "cache0", "cache2/x", "cachex", "other/cache/x"}},
		{"cache//", nil}, {"./", nil}, {"/", nil}, {"z", nil},
	} {
		for _, pageSize := range []int{0, 1, 2} {
			got := listNames(t, d, tc.prefix, pageSize)
			if !slices.Equal(got, tc.want) {
				t.Errorf("List(prefix %q, page size %d) = %q, want %q", tc.prefix, pageSize, got, tc.want)
			}
		}
	}
}

// TestPageFill: every page but the last is full, a page size above
// MaxListPageSize is capped at it, and an invalid page token is an error.
// (The contract asks only for at most the page size, which the
// conformance suite's Pagination case checks.)
func TestPageFill(t *testing.T) {
	d := newDriver(t, t.TempDir())
	const n = 2500
	var all []string
	for i := range n {
		all = append(all, "page/"+strconv.Itoa(i))
	}
	decoys := []string{"page", "page.x", "page0", "pagf/x"}
	writeMany(t, d, append(slices.Clone(all), decoys...))
	for _, tc := range []struct {
		prefix    string
		pageSize  int
		wantPages int
	}{
		{"page/", 0, 3}, {"page/", 2500, 3}, {"page/", 999, 3}, {"page/", 1250, 3},
		{"page/", 2, 1250}, {"page/10", 7, 16}, {"page/20", 1, 111}, {"page/209", 2, 6}, {"page/1", 1000, 2},
	} {
		objs, pages := listAll(t, d, tc.prefix, tc.pageSize)
		want := 0
		for _, name := range all {
			if strings.HasPrefix(name, tc.prefix) {
				want++
			}
		}
		if len(objs) != want || pages != tc.wantPages {
			t.Errorf("List(%q, page size %d) = %d objects in %d pages, want %d in %d", tc.prefix, tc.pageSize, len(objs), pages, want, tc.wantPages)
		}
	}
	if _, err := d.List(ctx, &driver.ListOptions{Prefix: "page/", PageToken: "!!not base64"}); err == nil {
		t.Errorf("List with an invalid page token succeeded")
	}
}

// writeMany writes each name with itself as content, concurrently.
func writeMany(t testing.TB, d *Driver, names []string) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, name := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := d.Write(ctx, name, strings.NewReader(name), &driver.WriteOptions{}); err != nil {
				t.Errorf("Write(%q): %v", name, err)
			}
		})
	}
	wg.Wait()
}

func TestInternalFilesNotListed(t *testing.T) {
	dir := t.TempDir()
	d := newDriver(t, dir)
	write(t, d, "a/b", []byte("x"))
	write(t, d, "c", []byte("x"))
	_, attrs := read(t, d, "c")
	if err := d.Replace(ctx, "c", strings.NewReader("y"), attrs.ETag, &driver.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if entries, err := os.ReadDir(filepath.Join(dir, lockDir)); err != nil || len(entries) == 0 {
		t.Fatalf("no lock files after Replace: %v", err)
	}
	// A crash can leave temporary files; others can drop foreign files.
	for _, junk := range []string{
		".~tmp-123", "a~/.~tmp-456", "README", "a~/X", "x~y", "%zz", "%61", "a~/%", "%~/q", "a~/.hidden",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, junk)), 0o700)
		if err := os.WriteFile(filepath.Join(dir, junk), []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "x~+"), 0o700) // a continuation that is not one
	os.WriteFile(filepath.Join(dir, "x~+", "y"), nil, 0o600)
	want := []string{"a/b", "c"}
	for _, prefix := range []string{"", "a", "a/", ".", "x"} {
		var w []string
		for _, n := range want {
			if strings.HasPrefix(n, prefix) {
				w = append(w, n)
			}
		}
		if got := listNames(t, d, prefix, 0); !slices.Equal(got, w) {
			t.Errorf("List(%q) = %q, want %q", prefix, got, w)
		}
	}
	wantAbsent(t, d, ".~tmp-123")
}

// TestConditionalWritesLeaveNothing: IfAbsent writes and Replaces, whether
// they succeed or are refused, leave no temporary file, and a Replace of a
// name whose directories do not exist makes none. (The conformance suite's
// IfAbsent and Replace cases check what they do to objects.)
func TestConditionalWritesLeaveNothing(t *testing.T) {
	d := newDriver(t, t.TempDir())
	ifAbsent := &driver.WriteOptions{IfAbsent: true}
	if err := d.Write(ctx, "x/ia", strings.NewReader("first"), ifAbsent); err != nil {
		t.Fatalf("IfAbsent on an absent object: %v", err)
	}
	if err := d.Write(ctx, "x/ia", strings.NewReader("second"), ifAbsent); !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("IfAbsent on a present object = %v, want ErrPreconditionFailed", err)
	}
	write(t, d, "r", []byte("v1"))
	_, a1 := read(t, d, "r")
	if err := d.Replace(ctx, "r", strings.NewReader("v2"), a1.ETag, &driver.WriteOptions{}); err != nil {
		t.Fatalf("Replace with the current ETag: %v", err)
	}
	if err := d.Replace(ctx, "r", strings.NewReader("v3"), a1.ETag, &driver.WriteOptions{}); !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("Replace with a stale ETag = %v, want ErrPreconditionFailed", err)
	}
	for _, name := range []string{"never", "no/such/dir"} {
		if err := d.Replace(ctx, name, strings.NewReader("v4"), a1.ETag, &driver.WriteOptions{}); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("Replace(%q) of an absent object = %v, want ErrNotFound", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(d.Dir(), "no~")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a Replace of an absent object made its directory: %v", err)
	}
	if tmp := tempFiles(t, d.Dir()); len(tmp) > 0 {
		t.Errorf("temporary files left: %q", tmp)
	}
}

func raceContent(id int) []byte {
	return append([]byte(fmt.Sprintf("racer %d\n", id)), bytes.Repeat([]byte{byte('a' + id%26)}, 32<<10)...)
}

// race runs op in n goroutines released together, each with its own driver
// on dir when separate is set, and returns the winner (the one nil error).
func race(t *testing.T, n int, d *Driver, separate bool, op func(d *Driver, id int) error) int {
	t.Helper()
	ds := make([]*Driver, n)
	for i := range ds {
		ds[i] = d
		if separate {
			ds[i] = newDriver(t, d.Dir())
		}
	}
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = op(ds[i], i)
		})
	}
	close(start)
	wg.Wait()
	return oneWinner(t, errs)
}

// oneWinner checks that exactly one of errs is nil and the others
// ErrPreconditionFailed, and returns the index of the nil one.
func oneWinner(t *testing.T, errs []error) int {
	t.Helper()
	winner := -1
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			winner = i
			wins++
		case !errors.Is(err, driver.ErrPreconditionFailed):
			t.Errorf("racer %d: %v, want nil or ErrPreconditionFailed", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d racers won, want exactly one", wins)
	}
	return winner
}

// TestConditionalRaces races IfAbsent writes and Replaces, through one
// shared driver and through a driver each: exactly one wins, and the losers
// leave no temporary file. (The conformance suite's IfAbsentRace and
// ReplaceRace cases race a driver each only, and cannot see temporary
// files; a driver each takes its own lock files, as another process would.)
func TestConditionalRaces(t *testing.T) {
	for _, separate := range []bool{false, true} {
		t.Run(fmt.Sprintf("IfAbsent/separate=%v", separate), func(t *testing.T) {
			d := newDriver(t, t.TempDir())
			w := race(t, 32, d, separate, func(d *Driver, id int) error {
				return d.Write(ctx, "race/ifabsent", bytes.NewReader(raceContent(id)), &driver.WriteOptions{IfAbsent: true})
			})
			wantContent(t, d, "race/ifabsent", raceContent(w))
			if tmp := tempFiles(t, d.Dir()); len(tmp) > 0 {
				t.Errorf("temporary files left: %q", tmp)
			}
		})
		t.Run(fmt.Sprintf("Replace/separate=%v", separate), func(t *testing.T) {
			d := newDriver(t, t.TempDir())
			write(t, d, "race/replace", []byte("original"))
			_, attrs := read(t, d, "race/replace")
			w := race(t, 32, d, separate, func(d *Driver, id int) error {
				return d.Replace(ctx, "race/replace", bytes.NewReader(raceContent(id)), attrs.ETag, &driver.WriteOptions{})
			})
			wantContent(t, d, "race/replace", raceContent(w))
			if tmp := tempFiles(t, d.Dir()); len(tmp) > 0 {
				t.Errorf("temporary files left: %q", tmp)
			}
		})
	}
}

var errBody = errors.New("body failed")

// TestFailedWriteLeavesNoDirectory: a write of a new object whose body
// fails leaves neither the directory it made nor a temporary file. (The
// conformance suite's WriteBodyError case checks the error and the
// objects; TestReliabilityFileFailures the files of a failed Replace.)
func TestFailedWriteLeavesNoDirectory(t *testing.T) {
	d := newDriver(t, t.TempDir())
	for _, opts := range []driver.WriteOptions{{}, {IfAbsent: true}} {
		body := io.MultiReader(bytes.NewReader(make([]byte, 100<<10)), iotest.ErrReader(errBody))
		if err := d.Write(ctx, "new/obj", body, &opts); !errors.Is(err, errBody) {
			t.Errorf("Write(IfAbsent %v) with a failing body = %v, want the body's error", opts.IfAbsent, err)
		}
		if _, err := os.Stat(filepath.Join(d.Dir(), "new~")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a failed write (IfAbsent %v) left its directory behind: %v", opts.IfAbsent, err)
		}
	}
	if tmp := tempFiles(t, d.Dir()); len(tmp) > 0 {
		t.Errorf("temporary files left: %q", tmp)
	}
}

// TestCanceledChangesNothing: a call whose context is already done changes
// nothing, and a Write whose context is cancelled midway fails with the
// cancellation and stores nothing, leaving no temporary file. (The
// conformance suite's ContextCanceled and CancelDuringWrite cases check
// the errors, and allow a write to complete.)
func TestCanceledChangesNothing(t *testing.T) {
	d := newDriver(t, t.TempDir())
	write(t, d, "present", []byte("old"))
	_, attrs := read(t, d, "present")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	d.Write(cctx, "fresh", strings.NewReader("x"), &driver.WriteOptions{})
	d.Write(cctx, "fresh", strings.NewReader("x"), &driver.WriteOptions{IfAbsent: true})
	d.Write(cctx, "present", strings.NewReader("x"), &driver.WriteOptions{})
	d.Replace(cctx, "present", strings.NewReader("x"), attrs.ETag, &driver.WriteOptions{})
	d.Delete(cctx, "present")
	d.DeleteBatch(cctx, []string{"present"})
	wantContent(t, d, "present", []byte("old"))
	wantAbsent(t, d, "fresh")

	cctx, cancel = context.WithCancel(ctx)
	body := io.MultiReader(bytes.NewReader(make([]byte, 64<<10)), readerFunc(func([]byte) (int, error) {
		cancel()
		return 0, nil
	}), bytes.NewReader(make([]byte, 64<<10)))
	if err := d.Write(cctx, "midway", body, &driver.WriteOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Write cancelled midway = %v, want context.Canceled", err)
	}
	wantAbsent(t, d, "midway")
	if tmp := tempFiles(t, d.Dir()); len(tmp) > 0 {
		t.Errorf("temporary files left: %q", tmp)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestDeleteWriteRace races writers against deleters that remove the
// directories the writers need: no write may fail.
func TestDeleteWriteRace(t *testing.T) {
	d := newDriver(t, t.TempDir())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				name := fmt.Sprintf("deep/er/dir/%d-%d", g, i%3)
				if err := d.Write(ctx, name, strings.NewReader("x"), &driver.WriteOptions{IfAbsent: i%2 == 0}); err != nil && !errors.Is(err, driver.ErrPreconditionFailed) {
					t.Errorf("Write(%q): %v", name, err)
					return
				}
				if err := d.Delete(ctx, name); err != nil {
					t.Errorf("Delete(%q): %v", name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := listNames(t, d, "", 0); len(got) != 0 {
		t.Errorf("objects left: %q", got)
	}
}

// TestCloseTwice: a second Close returns nil and a Write after Close fails.
// (The contract lets calls after Close fail; the conformance suite's Close
// case checks that Close returns nil and the data outlives the driver.)
func TestCloseTwice(t *testing.T) {
	d, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := d.Write(ctx, "y", strings.NewReader("y"), &driver.WriteOptions{}); err == nil {
		t.Errorf("Write after Close succeeded")
	}
}

func BenchmarkWrite(b *testing.B) {
	d := newDriver(b, b.TempDir())
	data := make([]byte, 1024)
	b.SetBytes(int64(len(data)))
	i := 0
	for b.Loop() {
		write(b, d, "bench/"+strconv.Itoa(i%1000), data)
		i++
	}
}

func BenchmarkRead(b *testing.B) {
	d := newDriver(b, b.TempDir())
	write(b, d, "bench/x", make([]byte, 1024))
	for b.Loop() {
		read(b, d, "bench/x")
	}
}

// BenchmarkList100k lists 100,000 objects under one prefix, 1000 a page.
func BenchmarkList100k(b *testing.B) {
	d := newDriver(b, b.TempDir())
	const n = 100_000
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("loc/%040x", i*2654435761))
	}
	writeMany(b, d, names)
	for b.Loop() {
		if objs, _ := listAll(b, d, "loc/", 0); len(objs) != n {
			b.Fatalf("listed %d, want %d", len(objs), n)
		}
	}
}

// TestListSnapshot checks that continuation pages of a large directory see
// the changes made since the previous page, snapshot or not.
func TestListSnapshot(t *testing.T) {
	d := newDriver(t, t.TempDir())
	var names []string
	for i := range 1500 {
		names = append(names, fmt.Sprintf("snap/%04d", i))
	}
	writeMany(t, d, names)
	time.Sleep(2 * snapFineAge) // let the directory's time stamp age
	list := func(token string) *driver.ListPage {
		t.Helper()
		page, err := d.List(ctx, &driver.ListOptions{Prefix: "snap/", PageToken: token, PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		return page
	}
	p1 := list("")
	p2 := list(p1.NextPageToken)
	d.snaps.mu.Lock()
	n := len(d.snaps.snaps)
	d.snaps.mu.Unlock()
	if n != 1 {
		t.Errorf("%d directory snapshots after listing a stable directory of 1500 objects, want 1", n)
	}
	if p2.Objects[0].Name != "snap/0100" {
		t.Fatalf("second page starts with %q", p2.Objects[0].Name)
	}
	// Changes after the cursor show in the following pages.
	write(t, d, "snap/0150x", []byte("new"))
	if err := d.Delete(ctx, "snap/0250"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for token := p2.NextPageToken; token != ""; {
		p := list(token)
		for _, o := range p.Objects {
			got = append(got, o.Name)
		}
		token = p.NextPageToken
	}
	var want []string
	for i := 200; i < 1500; i++ {
		if i != 250 {
			want = append(want, fmt.Sprintf("snap/%04d", i))
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages after the changes: %d names, want %d", len(got), len(want))
	}
	p3 := list(p1.NextPageToken)
	if !slices.ContainsFunc(p3.Objects, func(a driver.Attributes) bool { return a.Name == "snap/0150x" }) {
		t.Errorf("a page listed after a write does not show it")
	}
}
