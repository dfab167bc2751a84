//go:build unix

package file_test

// Hostile stores: whoever can write into the store's directory plants
// symbolic links, named pipes and sparse files where the driver keeps
// objects, directories and locks. The conformance suite's Hostile section
// (through the harness's conformance.HostileStore, conformance_hostile_test.go)
// runs every cache and driver operation on each attack and checks that
// nothing outside the store changes, that nothing planted is an object and
// that no call blocks or allocates by a claim. The tests here check what is
// the file driver's own choice where the contract allows either: a write
// over a link or pipe at an object's path replaces it by a regular file, and
// Delete removes it; a write through a linked directory or lock file is
// refused with an error that says so. Each test plants one attack, then runs
// each operation on it, planting afresh before each, and checks after each
// that the tree outside the store is byte for byte what it was.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/file"
)

// secret is the value of the entries the tests write before planting; some
// are then moved outside the store.
const secret = "outside secret"

// treeState describes every file, directory and link under root, without
// following links: path -> type, permissions and content (or link target).
func treeState(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			m[rel] = fmt.Sprintf("file %v %x", fi.Mode(), sha256.Sum256(b))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			m[rel] = "symlink -> " + target
		default:
			m[rel] = fi.Mode().String()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
	return m
}

// scene is a store and, beside it, a tree that must never change.
type scene struct {
	t      *testing.T
	store  string
	out    string
	loc    string // the cache's location
	plant  func() // makes the attack; run before every operation
	before map[string]string
	// link, when set, is a planted link that every operation must leave
	// in place (moveOut sets it).
	link string
	// unblock, when set, gives every operation a 2-second deadline that
	// must never be hit, and releases an operation still blocked then.
	unblock func()
}

func newScene(t *testing.T, loc string) *scene {
	return &scene{t: t, store: t.TempDir(), out: t.TempDir(), loc: loc}
}

// cache returns a cache at s.loc over a new driver on the store.
func (s *scene) cache(opts ...cache.Option) (*cache.Cache, *file.Driver) {
	s.t.Helper()
	d, err := file.New(s.store)
	if err != nil {
		s.t.Fatal(err)
	}
	c, err := cache.New(d, append([]cache.Option{cache.WithLocation(s.loc)}, opts...)...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c, d
}

// seal records the outside tree after the first planting.
func (s *scene) seal() {
	s.t.Helper()
	s.plant()
	s.before = treeState(s.t, s.out)
}

// checkOutside reports every change of the outside tree since seal.
func (s *scene) checkOutside(what string) {
	s.t.Helper()
	after := treeState(s.t, s.out)
	for p, b := range s.before {
		if a, ok := after[p]; !ok {
			s.t.Errorf("%s deleted %s outside the store", what, p)
		} else if a != b {
			s.t.Errorf("%s changed %s outside the store: %s, was %s", what, p, a, b)
		}
	}
	for p := range after {
		if _, ok := s.before[p]; !ok {
			s.t.Errorf("%s created %s outside the store", what, p)
		}
	}
	s.before = after // report each change once
}

// op is one operation on a planted store; it returns what went wrong, or "".
type op struct {
	name string
	run  func(ctx context.Context) string
}

// runOps plants, runs and checks each operation in turn.
func (s *scene) runOps(attack string, ops []op) {
	s.t.Helper()
	for _, o := range ops {
		s.plant()
		if bad := s.watch(o); bad != "" {
			s.t.Errorf("%s, %s: %s", attack, o.name, bad)
		}
		s.checkOutside(attack + ", " + o.name)
		if s.link != "" {
			if fi, err := os.Lstat(s.link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				s.t.Errorf("%s, %s: the planted link was replaced or removed (%v)", attack, o.name, err)
			}
		}
	}
}

// watch runs o, under a deadline when s.unblock is set.
func (s *scene) watch(o op) string {
	ctx := s.t.Context()
	if s.unblock == nil {
		return o.run(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	done := make(chan string, 1)
	go func() { done <- o.run(ctx) }()
	select {
	case bad := <-done:
		return bad
	case <-ctx.Done():
		s.unblock()
		return fmt.Sprintf("still blocked when its 2-second deadline passed (then: %s)", <-done)
	}
}

// plantEntriesOutside writes keys through a cache, so the store holds real
// entries with the value secret, and returns each key's object file.
func (s *scene) plantEntriesOutside(keys ...string) map[string]string {
	s.t.Helper()
	c, d := s.cache()
	files := map[string]string{}
	for _, k := range keys {
		if err := c.Set(s.t.Context(), k, []byte(secret), cache.NoExpiry); err != nil {
			s.t.Fatal(err)
		}
		files[k] = d.ObjectFile(c.ObjectName(k))
	}
	return files
}

// moveOut replaces the store's directory rel by a symbolic link to dst
// outside the store, moving its content there (once), and makes the link
// one that every operation must leave in place.
func (s *scene) moveOut(rel, dst string) func() {
	src := filepath.Join(s.store, filepath.FromSlash(rel))
	if err := os.Rename(src, dst); err != nil {
		s.t.Fatal(err)
	}
	s.link = src
	return func() {
		if fi, err := os.Lstat(src); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return
		}
		if err := os.RemoveAll(src); err != nil {
			s.t.Fatal(err)
		}
		if err := os.Symlink(dst, src); err != nil {
			s.t.Fatal(err)
		}
	}
}

func errIs(what string, err, want error) string {
	if !errors.Is(err, want) {
		return fmt.Sprintf("%s: %v, want %v", what, err, want)
	}
	return ""
}

func noErr(what string, err error) string {
	if err != nil {
		return fmt.Sprintf("%s: %v", what, err)
	}
	return ""
}

// refusedWrite checks that a write through a link or special file failed
// with an error that says why.
func refusedWrite(what string, err error) string {
	if err == nil || !strings.Contains(err.Error(), "file: ") || !strings.Contains(err.Error(), "refused") {
		return fmt.Sprintf("%s: %v, want an error saying what the driver refused", what, err)
	}
	return ""
}

// TestHostileObjectSymlink: a symbolic link at an entry's object file, to
// an entry outside the store and to a path that does not exist, is replaced
// by the writes and removed by Delete. (The conformance suite's
// Hostile/ObjectSymlink case checks the reads and the tree outside, and
// allows the writes to fail.)
func TestHostileObjectSymlink(t *testing.T) {
	s := newScene(t, "cache")
	file := s.plantEntriesOutside("k")["k"]
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(s.out, "entry")
	if err := os.WriteFile(outFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{outFile, filepath.Join(s.out, "absent")} {
		s.plant = func() {
			os.Remove(file)
			os.MkdirAll(filepath.Dir(file), 0o700)
			if err := os.Symlink(target, file); err != nil {
				t.Fatal(err)
			}
		}
		s.seal()
		s.runOps("symlink to "+filepath.Base(target), s.replaceOps("k", file))
	}
}

// replaceOps are the writes and deletes of key, whose object file is
// something planted: they replace or remove it, never what it points to.
func (s *scene) replaceOps(key, file string) []op {
	c, d := s.cache()
	name := c.ObjectName(key)
	isFile := func(what string) string {
		if fi, err := os.Lstat(file); err != nil || !fi.Mode().IsRegular() {
			return fmt.Sprintf("%s left %v at the object's path (%v), want a regular file", what, fi.Mode(), err)
		}
		return ""
	}
	return []op{
		{"driver Write", func(ctx context.Context) string {
			if bad := noErr("Write", d.Write(ctx, name, strings.NewReader("new"), &driver.WriteOptions{})); bad != "" {
				return bad
			}
			return isFile("Write")
		}},
		{"driver Write IfAbsent", func(ctx context.Context) string {
			// What is planted is not an object: the create succeeds.
			if bad := noErr("Write", d.Write(ctx, name, strings.NewReader("new"), &driver.WriteOptions{IfAbsent: true})); bad != "" {
				return bad
			}
			return isFile("Write IfAbsent")
		}},
		{"cache Set", func(ctx context.Context) string {
			if err := c.Set(ctx, key, []byte("fresh"), cache.NoExpiry); err != nil {
				return fmt.Sprintf("Set: %v", err)
			}
			if v, err := c.Get(ctx, key); string(v) != "fresh" || err != nil {
				return fmt.Sprintf("Get after Set = %q, %v", v, err)
			}
			return isFile("Set")
		}},
		{"cache Add", func(ctx context.Context) string {
			if ok, err := c.Add(ctx, key, []byte("added"), cache.NoExpiry); !ok || err != nil {
				return fmt.Sprintf("Add = %v, %v; want true, nil", ok, err)
			}
			return isFile("Add")
		}},
		{"driver ReadDelete leaves what is planted", func(ctx context.Context) string {
			// Read refuses it, so it is no object to ReadDelete either.
			if data, _, err := d.ReadDelete(ctx, name, 72); !errors.Is(err, driver.ErrNotFound) {
				return fmt.Sprintf("ReadDelete = %q, %v; want ErrNotFound", data, err)
			}
			if fi, err := os.Lstat(file); err != nil || fi.Mode().IsRegular() {
				return fmt.Sprintf("after ReadDelete the object's path holds %v (%v), want what was planted", fi.Mode(), err)
			}
			return ""
		}},
		{"cache Delete leaves what is planted", func(ctx context.Context) string {
			if ok, err := c.Delete(ctx, key); ok || err != nil {
				return fmt.Sprintf("Delete = %v, %v; want false, nil", ok, err)
			}
			if fi, err := os.Lstat(file); err != nil || fi.Mode().IsRegular() {
				return fmt.Sprintf("after Delete the object's path holds %v (%v), want what was planted", fi.Mode(), err)
			}
			return ""
		}},
		{"driver Delete removes what is planted", func(ctx context.Context) string {
			if err := d.Delete(ctx, name); err != nil {
				return fmt.Sprintf("Delete: %v", err)
			}
			if _, err := os.Lstat(file); !errors.Is(err, fs.ErrNotExist) {
				return fmt.Sprintf("still there after Delete (%v)", err)
			}
			return ""
		}},
	}
}

// dirAttack runs the writes and deletes on a store whose directory on the
// way to the entries of key (under s.loc) leads outside the store: each
// write is refused, and no operation removes the link (so every later one,
// here and in the conformance suite's Hostile cases, which plant once,
// still meets it).
func (s *scene) dirAttack(attack, key string) {
	s.t.Helper()
	c, d := s.cache()
	name := c.ObjectName(key)
	s.runOps(attack, []op{
		{"driver Write", func(ctx context.Context) string {
			return refusedWrite("Write", d.Write(ctx, name, strings.NewReader("x"), &driver.WriteOptions{}))
		}},
		{"driver Write IfAbsent", func(ctx context.Context) string {
			return refusedWrite("Write", d.Write(ctx, name, strings.NewReader("x"), &driver.WriteOptions{IfAbsent: true}))
		}},
		{"driver Write of a new name", func(ctx context.Context) string {
			return refusedWrite("Write", d.Write(ctx, c.Location()+"new/deeper", strings.NewReader("x"), &driver.WriteOptions{}))
		}},
		{"cache Set", func(ctx context.Context) string {
			return refusedWrite("Set", c.Set(ctx, key, []byte("x"), cache.NoExpiry))
		}},
		{"cache Add", func(ctx context.Context) string {
			_, err := c.Add(ctx, "other key", []byte("x"), cache.NoExpiry)
			return refusedWrite("Add", err)
		}},
		{"cache SetMany", func(ctx context.Context) string {
			return refusedWrite("SetMany", c.SetMany(ctx, map[string][]byte{key: []byte("x"), "k9": []byte("y")}, cache.NoExpiry))
		}},
		{"cache DeleteMany", func(ctx context.Context) string {
			return noErr("DeleteMany", c.DeleteMany(ctx, []string{key, "k9"}))
		}},
		{"cache Delete", func(ctx context.Context) string {
			if ok, err := c.Delete(ctx, key); ok || err != nil {
				return fmt.Sprintf("Delete = %v, %v; want false, nil", ok, err)
			}
			return ""
		}},
		{"cache Cull", func(ctx context.Context) string { _, err := c.Cull(ctx); return noErr("Cull", err) }},
		{"cache Clear", func(ctx context.Context) string { return noErr("Clear", c.Clear(ctx)) }},
		{"driver Delete", func(ctx context.Context) string { return noErr("Delete", d.Delete(ctx, name)) }},
		{"driver ReadDelete", func(ctx context.Context) string {
			if data, _, err := d.ReadDelete(ctx, name, 72); !errors.Is(err, driver.ErrNotFound) {
				return fmt.Sprintf("ReadDelete = %q, %v; want ErrNotFound", data, err)
			}
			return ""
		}},
		{"driver DeleteBatch", func(ctx context.Context) string {
			return noErr("DeleteBatch", d.DeleteBatch(ctx, []string{name}))
		}},
	})
}

// TestHostileLocationSymlink: the location's directory is a symbolic link
// to a directory outside the store holding entries of the same keys.
// Writes are refused; the link stays. (The conformance suite's
// Hostile/LocationSymlink case checks the reads and the tree outside, and
// allows a write to replace the link.)
func TestHostileLocationSymlink(t *testing.T) {
	s := newScene(t, "cache")
	files := s.plantEntriesOutside("k1", "k2", "k3")
	rel, _ := filepath.Rel(s.store, filepath.Dir(files["k1"]))
	s.plant = s.moveOut(rel, filepath.Join(s.out, "loc"))
	s.seal()
	s.dirAttack("location symlink", "k1")
}

// TestHostileDeepSymlink: a directory in the middle of the entries' path
// ("deep" of location "cache/deep/er") is a symbolic link. Writes are
// refused; the link stays. (As for TestHostileLocationSymlink; the
// conformance suite's case is Hostile/IntermediateSymlink.)
func TestHostileDeepSymlink(t *testing.T) {
	s := newScene(t, "cache/deep/er")
	files := s.plantEntriesOutside("k1", "k2")
	rel, _ := filepath.Rel(s.store, filepath.Dir(filepath.Dir(files["k1"])))
	s.plant = s.moveOut(rel, filepath.Join(s.out, "deep"))
	s.seal()
	s.dirAttack("intermediate symlink", "k1")
}
