package mem_test

import (
	"errors"
	"fmt"
	"io"
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
}

func TestBasics(t *testing.T) {
	d := mem.New()
	defer d.Close()
	ctx := t.Context()
	write(t, d, "a/b", "0123456789")
	got, a := read(t, d, "a/b")
	if got != "0123456789" || a.Name != "a/b" || a.Size != 10 || a.ModTime.IsZero() || a.ETag == "" {
		t.Errorf("Read = %q, %+v", got, a)
	}
	if b, _, err := d.Read(ctx, "a/b", 8, 5); err != nil || string(b) != "89" {
		t.Errorf("range: %q, %v", b, err)
	}
	if b, _, err := d.Read(ctx, "a/b", 20, -1); err != nil || len(b) != 0 {
		t.Errorf("past end: %q, %v", b, err)
	}
	if _, _, err := d.Read(ctx, "nope", 0, -1); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	if err := d.Write(ctx, "a/b", strings.NewReader("x"), &driver.WriteOptions{IfAbsent: true}); !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("IfAbsent on existing: %v", err)
	}
	if got, a2 := read(t, d, "a/b"); got != "0123456789" || a2.ETag != a.ETag {
		t.Errorf("refused IfAbsent changed the object: %q %s", got, a2.ETag)
	}
	boom := errors.New("boom")
	if err := d.Write(ctx, "c", io.MultiReader(strings.NewReader("part"), errReader{boom}), &driver.WriteOptions{}); !errors.Is(err, boom) {
		t.Errorf("body error: %v", err)
	}
	if _, _, err := d.Read(ctx, "c", 0, -1); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("failed write stored something: %v", err)
	}
	if err := d.Delete(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "a/b"); err != nil {
		t.Errorf("Delete absent: %v", err)
	}
	// A name written again after a delete gets a new ETag.
	write(t, d, "a/b", "0123456789")
	if _, a3 := read(t, d, "a/b"); a3.ETag == a.ETag {
		t.Errorf("ETag %s reused after delete and rewrite", a3.ETag)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestReplace(t *testing.T) {
	d := mem.New()
	ctx := t.Context()
	write(t, d, "k", "1")
	_, a := read(t, d, "k")
	if err := d.Replace(ctx, "k", strings.NewReader("2"), a.ETag, &driver.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := d.Replace(ctx, "k", strings.NewReader("3"), a.ETag, &driver.WriteOptions{}); !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("stale Replace: %v", err)
	}
	// Same bytes written again still change the ETag.
	_, a = read(t, d, "k")
	write(t, d, "k", "2")
	if err := d.Replace(ctx, "k", strings.NewReader("3"), a.ETag, &driver.WriteOptions{}); !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Errorf("Replace after an identical rewrite: %v", err)
	}
	_, a = read(t, d, "k")
	d.Delete(ctx, "k")
	if err := d.Replace(ctx, "k", strings.NewReader("3"), a.ETag, &driver.WriteOptions{}); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Replace on deleted: %v", err)
	}
	if _, _, err := d.Read(ctx, "k", 0, -1); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Replace on deleted created it: %v", err)
	}
}

func TestIfAbsentRace(t *testing.T) {
	d := mem.Open(t.Name())
	var wg sync.WaitGroup
	results := make([]error, 32)
	start := make(chan struct{})
	for i := range results {
		wg.Go(func() {
			<-start
			h := mem.Open(t.Name()) // separate handles on one store
			results[i] = h.Write(t.Context(), "race", strings.NewReader(strconv.Itoa(i)), &driver.WriteOptions{IfAbsent: true})
		})
	}
	close(start)
	wg.Wait()
	winner := oneWinner(t, results)
	if got, _ := read(t, d, "race"); got != strconv.Itoa(winner) {
		t.Errorf("object %q, winner %d", got, winner)
	}
}

func TestReplaceRace(t *testing.T) {
	d := mem.New()
	write(t, d, "n", "0")
	_, a := read(t, d, "n")
	var wg sync.WaitGroup
	results := make([]error, 32)
	start := make(chan struct{})
	for i := range results {
		wg.Go(func() {
			<-start
			results[i] = d.Replace(t.Context(), "n", strings.NewReader(strconv.Itoa(i)), a.ETag, &driver.WriteOptions{})
		})
	}
	close(start)
	wg.Wait()
	winner := oneWinner(t, results)
	if got, _ := read(t, d, "n"); got != strconv.Itoa(winner) {
		t.Errorf("object %q, winner %d", got, winner)
	}
}

func oneWinner(t *testing.T, results []error) int {
	t.Helper()
	winner := -1
	for i, err := range results {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("%d and %d both won", winner, i)
			}
			winner = i
		case !errors.Is(err, driver.ErrPreconditionFailed):
			t.Errorf("%d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("nobody won")
	}
	return winner
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
				write(t, d, other, "x")
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

func TestListAndDeleteBatch(t *testing.T) {
	d := mem.New()
	var names []string
	for i := range 2100 {
		n := fmt.Sprintf("cache/%04d", i)
		names = append(names, n)
		write(t, d, n, n)
	}
	write(t, d, "cache2/x", "x")
	write(t, d, "cachex", "x")
	var got []string
	token := ""
	pages := 0
	for {
		p, err := d.List(t.Context(), &driver.ListOptions{Prefix: "cache/", PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, o := range p.Objects {
			got = append(got, o.Name)
		}
		if token = p.NextPageToken; token == "" {
			break
		}
	}
	if pages != 3 || len(got) != 2100 || got[0] != names[0] || got[2099] != names[2099] {
		t.Errorf("%d pages, %d names", pages, len(got))
	}
	if err := d.DeleteBatch(t.Context(), append(names[:1000:1000], "absent")); err != nil {
		t.Fatal(err)
	}
	p, err := d.List(t.Context(), &driver.ListOptions{})
	if err != nil || len(p.Objects) != 1000 || p.Objects[0].Name != "cache/1000" || p.NextPageToken == "" {
		t.Errorf("after DeleteBatch: %d objects, first %q, %v", len(p.Objects), p.Objects[0].Name, err)
	}
}
