package mem_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/mem"
)

func write(t *testing.T, d driver.Driver, name, data string) {
	t.Helper()
	if err := d.Write(t.Context(), name, strings.NewReader(data), &driver.WriteOptions{}); err != nil {
		t.Fatalf("Write %q: %v", name, err)
	}
}

func read(t *testing.T, d driver.Driver, name string) (string, driver.Attributes) {
	t.Helper()
	b, a, err := d.Read(t.Context(), name, 0, -1)
	if err != nil {
		t.Fatalf("Read %q: %v", name, err)
	}
	return string(b), a
}

func TestCapabilities(t *testing.T) {
	var d driver.Driver = mem.New()
	if _, ok := d.(driver.Replacer); !ok {
		t.Error("not a Replacer")
	}
	if _, ok := d.(driver.BatchDeleter); !ok {
		t.Error("not a BatchDeleter")
	}
	if _, ok := d.(driver.NameValidator); !ok {
		t.Error("not a NameValidator")
	}
}

// TestVersions: the ETag is a version from a counter of the store, so any
// change makes a new one (the same bytes written again too), a refused
// change keeps it, and no two objects of a store ever share one.
func TestVersions(t *testing.T) {
	d := mem.Open(t.Name())
	ctx := t.Context()
	seen := map[string]string{}
	etag := func(name string) string {
		t.Helper()
		_, a := read(t, d, name)
		if a.ETag == "" {
			t.Fatalf("Read %q: no ETag", name)
		}
		if prev, ok := seen[a.ETag]; ok && prev != name {
			t.Errorf("ETag %s of %q was %q's", a.ETag, name, prev)
		}
		seen[a.ETag] = name
		return a.ETag
	}
	write(t, d, "k", "1")
	t1 := etag("k")
	if err := d.Write(ctx, "k", strings.NewReader("x"), &driver.WriteOptions{IfAbsent: true}); !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("IfAbsent over an object: %v", err)
	}
	if err := d.Replace(ctx, "k", strings.NewReader("x"), `"0"`, &driver.WriteOptions{}); !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("Replace with a wrong ETag: %v", err)
	}
	if got := etag("k"); got != t1 {
		t.Errorf("refused changes changed the ETag: %s, then %s", t1, got)
	}
	// The same bytes written again are a new version.
	write(t, d, "k", "1")
	t2 := etag("k")
	if t2 == t1 {
		t.Errorf("ETag %s kept by a rewrite of the same bytes", t2)
	}
	if err := d.Replace(ctx, "k", strings.NewReader("2"), t1, &driver.WriteOptions{}); !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("Replace with the ETag from before an identical rewrite: %v", err)
	}
	// Another handle on the store shares the versions.
	if err := mem.Open(t.Name()).Replace(ctx, "k", strings.NewReader("2"), t2, &driver.WriteOptions{}); err != nil {
		t.Errorf("Replace through another handle: %v", err)
	}
	t3 := etag("k")
	// Another name never has the same version, so its ETag is stale here.
	write(t, d, "other", "2")
	if err := d.Replace(ctx, "k", strings.NewReader("3"), etag("other"), &driver.WriteOptions{}); !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("Replace with another object's ETag: %v", err)
	}
	// A name written again after a delete gets a new ETag.
	if err := d.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	write(t, d, "k", "2")
	if t4 := etag("k"); t4 == t3 || t4 == t2 || t4 == t1 {
		t.Errorf("ETag %s reused after delete and rewrite", t4)
	}
}

// TestIncrement runs read-Replace loops from many goroutines, with writes and
// deletes of other names mixed in: no increment may be lost.
func TestIncrement(t *testing.T) {
	d := mem.New()
	write(t, d, "ctr", "0")
	const workers, each = 8, 40
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; i < each; {
				b, a, err := d.Read(t.Context(), "ctr", 0, -1)
				if err != nil {
					t.Error(err)
					return
				}
				n, _ := strconv.Atoi(string(b))
				err = d.Replace(t.Context(), "ctr", strings.NewReader(strconv.Itoa(n+1)), a.ETag, &driver.WriteOptions{})
				if errors.Is(err, driver.ErrPreconditionFailed) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				i++
				other := fmt.Sprintf("o/%d/%d", w, i)
				if err := d.Write(t.Context(), other, strings.NewReader("x"), &driver.WriteOptions{}); err != nil {
					t.Error(err)
					return
				}
				d.Delete(t.Context(), other)
			}
		})
	}
	wg.Wait()
	if got, _ := read(t, d, "ctr"); got != strconv.Itoa(workers*each) {
		t.Errorf("counter = %s, want %d", got, workers*each)
	}
}

func TestNamedStores(t *testing.T) {
	a := mem.Open("shared-" + t.Name())
	b := mem.Open("shared-" + t.Name())
	other := mem.Open("other-" + t.Name())
	write(t, a, "k", "v")
	if got, _ := read(t, b, "k"); got != "v" {
		t.Errorf("shared store: %q", got)
	}
	if _, _, err := other.Read(t.Context(), "k", 0, -1); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("other store sees k: %v", err)
	}
	// Closing one handle leaves the store to the others and to later Opens.
	a.Close()
	if _, _, err := a.Read(t.Context(), "k", 0, -1); err == nil {
		t.Error("Read on a closed handle succeeded")
	}
	if got, _ := read(t, b, "k"); got != "v" {
		t.Errorf("after closing a: %q", got)
	}
	if got, _ := read(t, mem.Open("shared-"+t.Name()), "k"); got != "v" {
		t.Errorf("reopened: %q", got)
	}
	// Private stores share nothing.
	p1, p2, p3 := mem.New(), mem.New(), mem.Open("")
	write(t, p1, "k", "v")
	for _, p := range []*mem.Driver{p2, p3} {
		if _, _, err := p.Read(t.Context(), "k", 0, -1); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("private store sees another's object: %v", err)
		}
	}
}

// TestClosed: every call on a closed handle fails, private or named, and a
// second Close fails too.
func TestClosed(t *testing.T) {
	ctx := t.Context()
	for _, d := range []*mem.Driver{mem.New(), mem.Open(t.Name())} {
		write(t, d, "k", "v")
		_, a := read(t, d, "k")
		if err := d.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, _, err := d.Read(ctx, "k", 0, -1); err == nil {
			t.Error("Read after Close succeeded")
		}
		if err := d.Write(ctx, "k2", strings.NewReader("v"), &driver.WriteOptions{}); err == nil {
			t.Error("Write after Close succeeded")
		}
		if err := d.Replace(ctx, "k", strings.NewReader("v"), a.ETag, &driver.WriteOptions{}); err == nil {
			t.Error("Replace after Close succeeded")
		}
		if err := d.Delete(ctx, "k"); err == nil {
			t.Error("Delete after Close succeeded")
		}
		if err := d.DeleteBatch(ctx, []string{"k"}); err == nil {
			t.Error("DeleteBatch after Close succeeded")
		}
		if _, err := d.List(ctx, &driver.ListOptions{}); err == nil {
			t.Error("List after Close succeeded")
		}
		if err := d.Close(); err == nil {
			t.Error("second Close succeeded")
		}
	}
	// The named store kept its object for the next handle.
	if got, _ := read(t, mem.Open(t.Name()), "k"); got != "v" {
		t.Errorf("named store after Close: %q", got)
	}
}

// reusingBody is a body that writes its bytes through a buffer it reuses, and
// overwrites after each Write, as a streaming encoder does.
type reusingBody struct {
	data  []byte
	piece int
}

// WriteTo implements io.WriterTo.
func (b *reusingBody) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, b.piece)
	var n int64
	for rest := b.data; len(rest) > 0; {
		k := copy(buf, rest)
		rest = rest[k:]
		m, err := w.Write(buf[:k])
		n += int64(m)
		if err != nil {
			return n, err
		}
		for i := range buf {
			buf[i] = '!'
		}
	}
	return n, nil
}

// Read implements io.Reader (unused: io.Copy prefers WriteTo).
func (b *reusingBody) Read([]byte) (int, error) { return 0, errors.New("Read called") }

// TestNotAliased: the store keeps and returns copies: a caller changing a
// slice it wrote, a body reusing its buffer, or a caller changing what Read
// returned changes nothing stored.
func TestNotAliased(t *testing.T) {
	d := mem.New()
	ctx := t.Context()
	src := []byte("0123456789")
	if err := d.Write(ctx, "k", bytes.NewReader(src), &driver.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	src[0] = 'X'
	got, _, err := d.Read(ctx, "k", 0, -1)
	if err != nil || string(got) != "0123456789" {
		t.Fatalf("after changing the written slice: %q, %v", got, err)
	}
	got[1] = 'Y'
	part, _, _ := d.Read(ctx, "k", 2, 3)
	part[0] = 'Z'
	if again, _ := read(t, d, "k"); again != "0123456789" {
		t.Errorf("after changing read slices: %q", again)
	}
	long := strings.Repeat("abcdefgh", 1000)
	if err := d.Write(ctx, "r", &reusingBody{data: []byte(long), piece: 100}, &driver.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if again, _ := read(t, d, "r"); again != long {
		t.Errorf("a body reusing its buffer: stored %d bytes, %q...", len(again), again[:min(len(again), 20)])
	}
}

// allocated returns the bytes f allocates per call, averaged over runs.
func allocated(runs int, f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// TestReadAllocation: a Read allocates the bytes it returns, and little
// more, whatever the object's size.
func TestReadAllocation(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation is not measured under the race detector")
	}
	d := mem.New()
	ctx := t.Context()
	const size = 1 << 20
	if err := d.Write(ctx, "big", bytes.NewReader(make([]byte, size)), &driver.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	const slack = 256 // the read's own small allocations
	for _, tc := range []struct {
		offset, length int64
		want           int
	}{
		{0, 10, 10},
		{size - 5, 1 << 30, 5}, // a range past the end
		{size, 100, 0},
		{size + 100, -1, 0},
		{0, 0, 0},
		{100, -1, size - 100},
		{0, -1, size},
	} {
		var n int
		got := allocated(20, func() {
			b, _, err := d.Read(ctx, "big", tc.offset, tc.length)
			if err != nil {
				t.Fatal(err)
			}
			n = len(b)
		})
		if n != tc.want || got > uint64(tc.want)+slack {
			t.Errorf("Read(offset %d, length %d): %d bytes, %d allocated; want %d bytes, at most %d allocated",
				tc.offset, tc.length, n, got, tc.want, tc.want+slack)
		}
	}
}

// TestListPageCost: a List page costs what it returns, not what the store
// holds: a page of 2 of 100 000 names allocates as little as on a store of
// 2, and a page skips no name and repeats none.
func TestListPageCost(t *testing.T) {
	d := mem.New()
	ctx := t.Context()
	const n = 100_000
	for i := range n {
		write(t, d, fmt.Sprintf("n/%06d", i), "")
	}
	p, err := d.List(ctx, &driver.ListOptions{Prefix: "n/05", PageSize: 2})
	if err != nil || len(p.Objects) != 2 || p.Objects[0].Name != "n/050000" || p.Objects[1].Name != "n/050001" || p.NextPageToken == "" {
		t.Fatalf("List = %+v, %v", p, err)
	}
	p, err = d.List(ctx, &driver.ListOptions{Prefix: "n/05", PageSize: 2, PageToken: p.NextPageToken})
	if err != nil || len(p.Objects) != 2 || p.Objects[0].Name != "n/050002" {
		t.Fatalf("second page = %+v, %v", p, err)
	}
	if raceEnabled {
		return
	}
	got := allocated(100, func() {
		if _, err := d.List(ctx, &driver.ListOptions{Prefix: "n/07", PageSize: 2, PageToken: p.NextPageToken}); err != nil {
			t.Fatal(err)
		}
	})
	if got > 8<<10 {
		t.Errorf("a page of 2 of %d names allocates %d bytes", n, got)
	}
	if _, err := d.List(ctx, &driver.ListOptions{PageToken: "not a token!"}); err == nil {
		t.Error("List with a malformed token succeeded")
	}
}

// TestListWhileWriting: while writers create, overwrite and delete names
// among those listed, every name present throughout a listing is listed
// exactly once, in strictly increasing order.
func TestListWhileWriting(t *testing.T) {
	d := mem.New()
	ctx := t.Context()
	const n = 2000
	for i := range n {
		write(t, d, fmt.Sprintf("k/%05d", i), "x")
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				j := (i*7 + w*1000) % n
				extra := fmt.Sprintf("k/%05d-%d", j, w) // sorts among the names listed
				err := d.Write(ctx, extra, strings.NewReader("y"), &driver.WriteOptions{})
				if err == nil {
					err = d.Write(ctx, fmt.Sprintf("k/%05d", j), strings.NewReader("overwritten"), &driver.WriteOptions{})
				}
				if err == nil {
					err = d.Delete(ctx, extra)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 3 {
		token, prev, count := "", "", 0
		for {
			p, err := d.List(ctx, &driver.ListOptions{Prefix: "k/", PageSize: 37, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range p.Objects {
				if o.Name <= prev {
					t.Fatalf("%q listed after %q", o.Name, prev)
				}
				prev = o.Name
				if len(o.Name) == len("k/00000") {
					count++
				}
			}
			if token = p.NextPageToken; token == "" {
				break
			}
		}
		if count != n {
			t.Errorf("listed %d of the %d names present throughout", count, n)
		}
	}
	close(stop)
	wg.Wait()
}

// TestDeleteBatchOneStep: a listing never sees part of a batch deleted.
// Names are written one by one in order, so a listing may see a first part
// of them; the batch deletes them in the same order, so a batch seen half
// done would leave a last part.
func TestDeleteBatchOneStep(t *testing.T) {
	d := mem.New()
	ctx := t.Context()
	var names []string
	for i := range 20 {
		names = append(names, fmt.Sprintf("g/%02d", i))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			p, err := d.List(ctx, &driver.ListOptions{Prefix: "g/"})
			if err != nil {
				t.Error(err)
				return
			}
			for i, o := range p.Objects {
				if o.Name != names[i] {
					t.Errorf("listed %d names starting at %q: a batch half deleted", len(p.Objects), p.Objects[0].Name)
					return
				}
			}
		}
	})
	for range 300 {
		for _, name := range names {
			write(t, d, name, "v")
		}
		if err := d.DeleteBatch(ctx, names); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	// An invalid name fails the batch before anything is deleted.
	write(t, d, "g/00", "v")
	if err := d.DeleteBatch(ctx, []string{"g/00", "bad//name"}); !errors.Is(err, driver.ErrInvalidName) {
		t.Errorf("DeleteBatch with an invalid name: %v", err)
	}
	if got, _ := read(t, d, "g/00"); got != "v" {
		t.Errorf("a refused batch deleted %q", "g/00")
	}
}
