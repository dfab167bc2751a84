package file_test

// File driver failures: permission denied, a read-only file system, a full
// disk, a file where a directory must be, a failing body. Each must give a
// clear error and leave no partial entry and no temporary file behind.
//
// Tests run as root here, where permissions do not bite, so the scenarios
// that need the kernel to refuse run in a child process of this test
// binary: as the user nobody (permission denied), in a private mount
// namespace with the store bind-mounted read-only (read-only file system)
// or a 256 KiB tmpfs mounted on it (disk full). Without root, permission
// denied uses chmod, and a full disk is a 128 KiB RLIMIT_FSIZE (EFBIG).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/file"
)

const envRelFileFail = "BLOBCACHE_REL_FILEFAIL"

// relFailJob is what a child process runs.
type relFailJob struct {
	Mode string `json:"mode"` // "eacces", "erofs", "enospc", "efbig"
	Root string `json:"root"`
}

// relTree returns the store's files (relative paths, "/"-separated) and the
// temporary files among them, leaving out the lock directory.
func relTree(t *testing.T, root string) (files, temps []string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if de.IsDir() && de.Name() == ".~locks" {
			return filepath.SkipDir
		}
		if strings.HasPrefix(de.Name(), ".~tmp-") {
			temps = append(temps, rel)
		}
		if !de.IsDir() {
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
	slices.Sort(files)
	return files, temps
}

// relSnapshot maps each file of the store to its content.
func relSnapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	files, _ := relTree(t, root)
	m := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		switch {
		case errors.Is(err, fs.ErrPermission):
			m[f] = "(unreadable)"
		case err != nil:
			t.Fatal(err)
		default:
			m[f] = string(b)
		}
	}
	return m
}

// relCheckUnchanged checks that the store holds exactly before, and no
// temporary file.
func relCheckUnchanged(t *testing.T, root string, before map[string]string, what string) {
	t.Helper()
	_, temps := relTree(t, root)
	if len(temps) > 0 {
		t.Errorf("%s left temporary files: %v", what, temps)
	}
	after := relSnapshot(t, root)
	for f, b := range before {
		if a, ok := after[f]; !ok {
			t.Errorf("%s removed %s", what, f)
		} else if a != b {
			t.Errorf("%s changed %s", what, f)
		}
	}
	for f := range after {
		if _, ok := before[f]; !ok {
			t.Errorf("%s left a new file %s (a partial entry?)", what, f)
		}
	}
}

// relOpen opens a cache on the store at root.
func relOpen(t *testing.T, root string) (*cache.Cache, *file.Driver) {
	t.Helper()
	d, err := file.New(root)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(d, cache.WithLocation("loc"), cache.WithMaxEntries(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, d
}

// relWantErr checks that err is a failure of the kind errno whose message
// names the object or file, and not one of the cache's own kinds.
func relWantErr(t *testing.T, what string, err error, errno syscall.Errno) {
	t.Helper()
	if err != nil {
		t.Logf("%s: %v", what, err)
	}
	switch {
	case err == nil:
		t.Errorf("%s: no error, want %v", what, errno)
	case !errors.Is(err, errno):
		t.Errorf("%s: error %v, want one satisfying errors.Is(err, %v)", what, err, errno)
	case errors.Is(err, cache.ErrMiss):
		t.Errorf("%s: error %v is a miss, want a storage error", what, err)
	case !strings.Contains(err.Error(), "file: ") || !strings.Contains(err.Error(), errno.Error()):
		t.Errorf("%s: error %q does not say which operation failed and why", what, err)
	}
}

// relPopulate writes the entries the scenarios start from and returns the
// file of each.
func relPopulate(t *testing.T, root string) map[string]string {
	t.Helper()
	c, _ := relOpen(t, root)
	paths := map[string]string{}
	for _, k := range []string{"old", "counter", "unreadable", "expired"} {
		v := []byte("old value of " + k)
		if k == "counter" {
			v = []byte("41")
		}
		ttl := cache.NoExpiry
		if k == "expired" {
			ttl = time.Nanosecond // expired by the time anything reads it
		}
		before, _ := relTree(t, root)
		if err := c.Set(t.Context(), k, v, ttl); err != nil {
			t.Fatal(err)
		}
		after, _ := relTree(t, root)
		for _, f := range after {
			if !slices.Contains(before, f) {
				paths[k] = filepath.Join(root, filepath.FromSlash(f))
			}
		}
	}
	return paths
}

// relWritesRefused runs every writing call on a store the kernel refuses
// writes to with errno, and checks that reads still work and nothing
// changed.
func relWritesRefused(t *testing.T, root string, errno syscall.Errno) {
	if errno == syscall.EACCES {
		// The entry "unreadable" is mode 0000 and not ours: reading it is
		// an error, not a miss, and it is not deleted.
		c, _ := relOpen(t, root)
		_, err := c.Get(t.Context(), "unreadable")
		relWantErr(t, "Get of an unreadable entry", err, syscall.EACCES)
		ok, err := c.Has(t.Context(), "unreadable")
		if err == nil {
			t.Errorf("Has of an unreadable entry = %v, nil; want an error", ok)
		}
	}
	before := relSnapshot(t, root)
	c, d := relOpen(t, root)
	ctx := t.Context()
	if v, err := c.Get(ctx, "old"); err != nil || string(v) != "old value of old" {
		t.Fatalf("Get(old) on the refusing store = %q, %v; want the old value", v, err)
	}
	relWantErr(t, "Set(new)", c.Set(ctx, "new", bytes.Repeat([]byte("n"), 100<<10), cache.NoExpiry), errno)
	relWantErr(t, "Set(old) over the old entry", c.Set(ctx, "old", bytes.Repeat([]byte("o"), 100<<10), cache.NoExpiry), errno)
	_, err := c.Add(ctx, "added", []byte("a"), cache.NoExpiry)
	relWantErr(t, "Add", err, errno)
	_, err = c.Incr(ctx, "counter", 1)
	relWantErr(t, "Incr", err, errno)
	_, err = c.Touch(ctx, "old", cache.NoExpiry)
	relWantErr(t, "Touch", err, errno)
	// An expired entry the store refuses to delete: Get reports the miss
	// and the failure (a *cache.DeadEntryError); calls that report an
	// ordinary miss without an error return the failure.
	_, err = c.Get(ctx, "expired")
	var dead *cache.DeadEntryError
	if !errors.Is(err, cache.ErrMiss) || !errors.As(err, &dead) || !errors.Is(err, errno) {
		t.Errorf("Get of an expired entry that cannot be deleted = %v, want a miss that is a *cache.DeadEntryError and %v", err, errno)
	}
	if ok, err := c.Has(ctx, "expired"); ok || !errors.Is(err, errno) {
		t.Errorf("Has of an expired entry that cannot be deleted = %v, %v; want false and %v", ok, err, errno)
	}
	if ok, err := c.Delete(ctx, "expired"); ok || !errors.Is(err, errno) {
		t.Errorf("Delete of an expired entry that cannot be deleted = %v, %v; want false and %v", ok, err, errno)
	}
	if got, err := c.GetMany(ctx, []string{"old", "expired"}); !errors.Is(err, errno) {
		t.Errorf("GetMany with an expired entry that cannot be deleted = %d values, %v; want %v", len(got), err, errno)
	}
	_, err = c.Delete(ctx, "old")
	relWantErr(t, "Delete", err, errno)
	relWantErr(t, "driver Write", d.Write(ctx, "loc/x", strings.NewReader("x"), &driver.WriteOptions{}), errno)
	relCheckUnchanged(t, root, before, "refused writes")
	if v, err := c.Get(ctx, "old"); err != nil || string(v) != "old value of old" {
		t.Errorf("Get(old) after refused writes = %q, %v; want the old value", v, err)
	}
	if v, err := c.Get(ctx, "counter"); err != nil || string(v) != "41" {
		t.Errorf("Get(counter) after a refused Incr = %q, %v; want 41", v, err)
	}
}

// relDiskFull fills the store (a small file system or a small file size
// limit) and checks that the write that does not fit fails with errno,
// leaves the old entry and no temporary file, and that writes work again
// once there is room.
func relDiskFull(t *testing.T, root string, errno syscall.Errno) {
	c, _ := relOpen(t, root)
	ctx := t.Context()
	small := bytes.Repeat([]byte("s"), 16<<10)
	for _, k := range []string{"a", "b", "c"} {
		if err := c.Set(ctx, k, small, cache.NoExpiry); err != nil {
			t.Fatalf("Set(%s) of 16 KiB: %v", k, err)
		}
	}
	before := relSnapshot(t, root)
	huge := bytes.Repeat([]byte("h"), 1<<20)
	relWantErr(t, "Set(new) of 1 MiB", c.Set(ctx, "new", huge, cache.NoExpiry), errno)
	relWantErr(t, "Set(a) of 1 MiB over a 16 KiB entry", c.Set(ctx, "a", huge, cache.NoExpiry), errno)
	_, err := c.Add(ctx, "added", huge, cache.NoExpiry)
	relWantErr(t, "Add of 1 MiB", err, errno)
	relCheckUnchanged(t, root, before, "writes that did not fit")
	for _, k := range []string{"a", "b", "c"} {
		if v, err := c.Get(ctx, k); err != nil || !bytes.Equal(v, small) {
			t.Errorf("Get(%s) after a failed overwrite = %d bytes, %v; want the old 16 KiB", k, len(v), err)
		}
	}
	if ok, err := c.Delete(ctx, "b"); err != nil || !ok {
		t.Fatalf("Delete(b) to make room: %v, %v", ok, err)
	}
	if err := c.Set(ctx, "d", small, cache.NoExpiry); err != nil {
		t.Errorf("Set(d) of 16 KiB after making room: %v", err)
	}
}

// relChild runs a scenario in a child process and checks that it passed.
func relChild(t *testing.T, job relFailJob, attr *syscall.SysProcAttr, exe string) {
	t.Helper()
	arg, _ := json.Marshal(job)
	cmd := exec.CommandContext(t.Context(), exe, "-test.run=^TestReliabilityFileFailures$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envRelFileFail+"="+string(arg))
	cmd.SysProcAttr = attr
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %s: %v\n%s", job.Mode, err, out)
	}
	if !bytes.Contains(out, []byte("RELFILEFAIL ok "+job.Mode)) {
		t.Fatalf("child %s did not run its scenario:\n%s", job.Mode, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "RELFILEFAIL") || strings.Contains(line, "reliability_failures_test.go") {
			t.Log(strings.TrimSpace(line))
		}
	}
}

// relRunChild is the child side: it sets up what the mode needs, which
// only a process of its own may do, and runs the scenario.
func relRunChild(t *testing.T, job relFailJob) {
	switch job.Mode {
	case "eacces":
		relWritesRefused(t, job.Root, syscall.EACCES)
	case "erofs":
		// In a private mount namespace: bind the store onto itself,
		// read-only.
		if err := syscall.Mount(job.Root, job.Root, "", syscall.MS_BIND, ""); err != nil {
			t.Fatalf("bind mount: %v", err)
		}
		if err := syscall.Mount("", job.Root, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
			t.Fatalf("read-only remount: %v", err)
		}
		relWritesRefused(t, job.Root, syscall.EROFS)
	case "enospc":
		if err := syscall.Mount("tmpfs", job.Root, "tmpfs", 0, "size=256k"); err != nil {
			t.Fatalf("mount tmpfs: %v", err)
		}
		relDiskFull(t, job.Root, syscall.ENOSPC)
	case "efbig":
		lim := &syscall.Rlimit{Cur: 128 << 10, Max: 128 << 10}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, lim); err != nil {
			t.Fatalf("setrlimit: %v", err)
		}
		relDiskFull(t, job.Root, syscall.EFBIG)
	default:
		t.Fatalf("unknown mode %q", job.Mode)
	}
	if !t.Failed() {
		fmt.Println("RELFILEFAIL ok " + job.Mode)
	}
}

// relCanMount reports whether this process may mount file systems in a
// mount namespace of its own (root with CAP_SYS_ADMIN).
func relCanMount(t *testing.T) bool {
	if os.Geteuid() != 0 {
		return false
	}
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	return cmd.Run() == nil
}

// relShareableDir makes a directory every user can enter, for a child that
// runs as nobody.
func relShareableDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "blobcache-rel-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// relChmodTree makes every directory under root 0755 and every file 0644,
// so another user can read the store but not write it.
func relChmodTree(t *testing.T, root string) {
	filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if de.IsDir() {
			mode = 0o755
		}
		return os.Chmod(path, mode)
	})
}

func TestReliabilityFileFailures(t *testing.T) {
	if v := os.Getenv(envRelFileFail); v != "" {
		var job relFailJob
		if err := json.Unmarshal([]byte(v), &job); err != nil {
			t.Fatal(err)
		}
		relRunChild(t, job)
		return
	}
	root := os.Geteuid() == 0
	canMount := relCanMount(t)

	t.Run("not-a-directory", func(t *testing.T) {
		// A regular file where the location's directory must be: ENOTDIR.
		dir := t.TempDir()
		c, _ := relOpen(t, dir)
		ctx := t.Context()
		if err := c.Set(ctx, "k", []byte("v"), cache.NoExpiry); err != nil {
			t.Fatal(err)
		}
		files, _ := relTree(t, dir)
		locDir := filepath.Join(dir, filepath.FromSlash(files[0][:strings.LastIndexByte(files[0], '/')]))
		if ok, err := c.Delete(ctx, "k"); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if err := os.WriteFile(locDir, []byte("in the way"), 0o600); err != nil {
			t.Fatal(err)
		}
		before := relSnapshot(t, dir)
		relWantErr(t, "Set", c.Set(ctx, "k", []byte("v"), cache.NoExpiry), syscall.ENOTDIR)
		_, err := c.Add(ctx, "k", []byte("v"), cache.NoExpiry)
		relWantErr(t, "Add", err, syscall.ENOTDIR)
		relCheckUnchanged(t, dir, before, "writes under a file")
		// Reads find nothing there: a miss, as for any absent entry.
		if _, err := c.Get(ctx, "k"); !errors.Is(err, cache.ErrMiss) {
			t.Errorf("Get under a file = %v, want a miss", err)
		}
		if ok, err := c.Delete(ctx, "k"); ok || err != nil {
			t.Errorf("Delete under a file = %v, %v; want false, nil", ok, err)
		}
		if n, err := c.Len(ctx); n != 0 || err != nil {
			t.Errorf("Len = %d, %v; want 0", n, err)
		}
	})

	t.Run("failing-body", func(t *testing.T) {
		// The body fails after 100 KiB (what a full disk or a dying
		// source looks like from the driver's side).
		dir := t.TempDir()
		d, err := file.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		ctx := t.Context()
		if err := d.Write(ctx, "loc/old", strings.NewReader("old"), &driver.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		_, attrs, err := d.Read(ctx, "loc/old", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		before := relSnapshot(t, dir)
		errBody := errors.New("body failed")
		body := func() io.Reader {
			return io.MultiReader(bytes.NewReader(make([]byte, 100<<10)), &relErrReader{errBody})
		}
		for _, c := range []struct {
			what string
			call func() error
		}{
			{"Write of a new object", func() error { return d.Write(ctx, "loc/new", body(), &driver.WriteOptions{}) }},
			{"Write over an object", func() error { return d.Write(ctx, "loc/old", body(), &driver.WriteOptions{}) }},
			{"IfAbsent Write", func() error { return d.Write(ctx, "loc/new2", body(), &driver.WriteOptions{IfAbsent: true}) }},
			{"Replace", func() error { return d.Replace(ctx, "loc/old", body(), attrs.ETag, &driver.WriteOptions{}) }},
		} {
			if err := c.call(); !errors.Is(err, errBody) {
				t.Errorf("%s with a failing body = %v, want the body's error", c.what, err)
			}
		}
		relCheckUnchanged(t, dir, before, "writes with a failing body")
	})

	t.Run("permission-denied", func(t *testing.T) {
		dir := relShareableDir(t)
		store := filepath.Join(dir, "store")
		paths := relPopulate(t, store)
		if !root {
			// chmod bites: make the directories read-only to ourselves and
			// one entry unreadable.
			filepath.WalkDir(store, func(path string, de fs.DirEntry, err error) error {
				if err == nil && de.IsDir() {
					os.Chmod(path, 0o500)
				}
				return err
			})
			os.Chmod(paths["unreadable"], 0)
			t.Cleanup(func() { relChmodTree(t, store) })
			relWritesRefused(t, store, syscall.EACCES)
			return
		}
		// As root, chmod does not bite: run as nobody, on a store owned by
		// root that nobody may read (but one entry) and not write.
		relChmodTree(t, store)
		if err := os.Chmod(paths["unreadable"], 0); err != nil {
			t.Fatal(err)
		}
		exe := filepath.Join(dir, "test.bin")
		b, err := os.ReadFile(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(exe, b, 0o755); err != nil {
			t.Fatal(err)
		}
		before := relSnapshot(t, store)
		relChild(t, relFailJob{Mode: "eacces", Root: store},
			&syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}, exe)
		relCheckUnchanged(t, store, before, "writes as a user without permission")
	})

	t.Run("read-only-file-system", func(t *testing.T) {
		if !canMount {
			t.Skip("needs root with mount privileges (a read-only bind mount in a private mount namespace); permission-denied covers read-only directories")
		}
		store := filepath.Join(t.TempDir(), "store")
		relPopulate(t, store)
		before := relSnapshot(t, store)
		relChild(t, relFailJob{Mode: "erofs", Root: store},
			&syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}, os.Args[0])
		relCheckUnchanged(t, store, before, "writes to a read-only mount")
	})

	t.Run("disk-full", func(t *testing.T) {
		store := filepath.Join(t.TempDir(), "store")
		if err := os.Mkdir(store, 0o700); err != nil {
			t.Fatal(err)
		}
		if canMount {
			// A 256 KiB tmpfs, mounted in the child's own namespace: gone
			// when the child exits.
			relChild(t, relFailJob{Mode: "enospc", Root: store},
				&syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}, os.Args[0])
			return
		}
		t.Log("no mount privileges: simulating a full disk with RLIMIT_FSIZE (EFBIG)")
		relChild(t, relFailJob{Mode: "efbig", Root: store}, nil, os.Args[0])
	})

	t.Run("file-size-limit", func(t *testing.T) {
		store := filepath.Join(t.TempDir(), "store")
		if err := os.Mkdir(store, 0o700); err != nil {
			t.Fatal(err)
		}
		relChild(t, relFailJob{Mode: "efbig", Root: store}, nil, os.Args[0])
	})
}

// relErrReader fails every read with err.
type relErrReader struct{ err error }

func (r *relErrReader) Read([]byte) (int, error) { return 0, r.err }
