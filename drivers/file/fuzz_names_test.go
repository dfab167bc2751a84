package file_test

// FuzzNames writes, lists, reads and deletes objects of arbitrary valid
// names (and a child of each, a folder object) in a directory, and checks
// that the escaping of names into paths round-trips and leaves nothing
// behind:
//
//	go test -run='^$' -fuzz='^FuzzNames$' -fuzztime=60s ./drivers/file/

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/file"
)

func FuzzNames(f *testing.F) {
	for _, s := range []string{"a", "cache/0123456789abcdef", "A/B", "é", ".hidden", "x~", "x~+", "%41", "a.b/c-d_e",
		"-", "..a", strings.Repeat("y", 84), strings.Repeat("y", 83) + "/z", strings.Repeat("Z", 300), "a b/\u00a0/\U0001F600",
		strings.Repeat("é", 300)} {
		f.Add(s)
	}
	dir := f.TempDir()
	d, err := file.New(dir)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	f.Fuzz(func(t *testing.T, name string) {
		if driver.ValidateName(name) != nil {
			return
		}
		ctx := context.Background()
		names := []string{name}
		if child := name + "/c"; len(child) <= driver.MaxNameLength {
			names = append(names, child)
		}
		for _, n := range names {
			if err := d.Write(ctx, n, strings.NewReader("content of "+n), &driver.WriteOptions{}); err != nil {
				t.Fatalf("Write(%q): %v", n, err)
			}
		}
		for _, n := range names {
			got, attrs, err := d.Read(ctx, n, 0, -1)
			if err != nil || string(got) != "content of "+n || attrs.ETag == "" {
				t.Fatalf("Read(%q) = %q, %+v, %v", n, got, attrs, err)
			}
		}
		page, err := d.List(ctx, &driver.ListOptions{Prefix: name})
		if err != nil {
			t.Fatalf("List(%q): %v", name, err)
		}
		var listed []string
		for _, o := range page.Objects {
			listed = append(listed, o.Name)
		}
		if strings.Join(listed, "\x00") != strings.Join(names, "\x00") {
			t.Fatalf("List(prefix %q) = %q, want %q", name, listed, names)
		}
		all, err := d.List(ctx, &driver.ListOptions{})
		if err != nil || len(all.Objects) != len(names) {
			t.Fatalf("List() = %v, %v; want %q", all, err, names)
		}
		// A create-if-absent write is refused; a replace with the right
		// ETag works.
		err = d.Write(ctx, name, strings.NewReader("x"), &driver.WriteOptions{IfAbsent: true})
		if !errors.Is(err, driver.ErrPreconditionFailed) {
			t.Fatalf("IfAbsent Write(%q) over an object = %v", name, err)
		}
		_, attrs, _ := d.Read(ctx, name, 0, -1)
		if err := d.Replace(ctx, name, bytes.NewReader([]byte("replaced")), attrs.ETag, &driver.WriteOptions{}); err != nil {
			t.Fatalf("Replace(%q): %v", name, err)
		}
		for _, n := range names {
			if err := d.Delete(ctx, n); err != nil {
				t.Fatalf("Delete(%q): %v", n, err)
			}
			if _, _, err := d.Read(ctx, n, 0, -1); !errors.Is(err, driver.ErrNotFound) {
				t.Fatalf("Read(%q) after Delete = %v", n, err)
			}
		}
		// Nothing left but the lock directory.
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != ".~locks" {
				t.Fatalf("after deleting %q: %s is left in the directory", name, e.Name())
			}
		}
	})
}
