package simstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
)

var ctx = context.Background()

func write(t *testing.T, s *Store, name, body string) {
	t.Helper()
	if err := s.Write(ctx, name, strings.NewReader(body), &driver.WriteOptions{}); err != nil {
		t.Fatalf("write %q: %v", name, err)
	}
}

// listAll lists prefix page by page and returns the names in order.
func listAll(t *testing.T, s *Store, prefix string, pageSize int) []string {
	t.Helper()
	var names []string
	opts := &driver.ListOptions{Prefix: prefix, PageSize: pageSize}
	for {
		page, err := s.List(ctx, opts)
		if err != nil {
			t.Fatalf("list %q: %v", prefix, err)
		}
		if len(page.Objects) > max(pageSize, 0) && pageSize != 0 {
			t.Fatalf("page of %d objects, page size %d", len(page.Objects), pageSize)
		}
		for _, o := range page.Objects {
			if o.ModTime.IsZero() {
				t.Fatalf("%q: zero ModTime", o.Name)
			}
			names = append(names, o.Name)
		}
		if page.NextPageToken == "" {
			return names
		}
		if len(page.Objects) == 0 {
			t.Fatal("empty page with a next page token")
		}
		opts.PageToken = page.NextPageToken
	}
}

func TestListPrefixOrderAndPages(t *testing.T) {
	s := New()
	all := []string{"cache/b", "cache/a", "cache2/x", "cachex", "cache/c/d", "a", "cache.b", "z"}
	for _, n := range all {
		write(t, s, n, "body of "+n)
	}
	want := []string{"cache/a", "cache/b", "cache/c/d"}
	for _, size := range []int{0, 1, 2, 3, 1000} {
		if got := listAll(t, s, "cache/", size); !slices.Equal(got, want) {
			t.Errorf("page size %d: listed %q, want %q", size, got, want)
		}
	}
	sorted := slices.Sorted(slices.Values(all))
	if got := listAll(t, s, "", 3); !slices.Equal(got, sorted) {
		t.Errorf("listed %q, want %q", got, sorted)
	}
	// A full last page has no next token: the listing peeks one further.
	page, err := s.List(ctx, &driver.ListOptions{Prefix: "cache/", PageSize: 3})
	if err != nil || len(page.Objects) != 3 || page.NextPageToken != "" {
		t.Errorf("exact page: %d objects, token %q, %v", len(page.Objects), page.NextPageToken, err)
	}
	if page.Objects[0].Size != int64(len("body of cache/a")) {
		t.Errorf("size %d", page.Objects[0].Size)
	}
	for _, size := range []int{-1, driver.MaxListPageSize + 1} {
		if _, err := s.List(ctx, &driver.ListOptions{PageSize: size}); err == nil {
			t.Errorf("page size %d accepted", size)
		}
	}
}

// TestListStartAfter: objects deleted or written between pages never make a
// listing skip or repeat another (the contract's start-after semantics).
func TestListStartAfter(t *testing.T) {
	s := New()
	var want []string
	for i := range 10 {
		n := fmt.Sprintf("p/%02d", i)
		write(t, s, n, "x")
		want = append(want, n)
	}
	var got []string
	opts := &driver.ListOptions{Prefix: "p/", PageSize: 3}
	for {
		page, err := s.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, o := range page.Objects {
			names = append(names, o.Name)
		}
		got = append(got, names...)
		// As Clear does: delete the page before listing the next, and
		// write a name before the position reached.
		if err := s.DeleteBatch(ctx, names); err != nil {
			t.Fatal(err)
		}
		write(t, s, "p/00a", "late")
		if page.NextPageToken == "" {
			break
		}
		opts.PageToken = page.NextPageToken
	}
	if !slices.Equal(got, want) {
		t.Errorf("listed %q, want %q", got, want)
	}
	// A token after every name: an empty last page.
	page, err := s.List(ctx, &driver.ListOptions{Prefix: "p/", PageToken: "p/zz"})
	if err != nil || len(page.Objects) != 0 || page.NextPageToken != "" {
		t.Errorf("after the end: %v, %v", page, err)
	}
}

func TestWriteIfAbsentDeleteRead(t *testing.T) {
	s := New()
	write(t, s, "a/b", "12345")
	err := s.Write(ctx, "a/b", strings.NewReader("xy"), &driver.WriteOptions{IfAbsent: true})
	if !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Fatalf("IfAbsent over an object: %v", err)
	}
	_, attrs, err := s.Read(ctx, "a/b", 0, 0)
	if err != nil || attrs.Size != 5 || attrs.Name != "a/b" || attrs.ModTime.IsZero() {
		t.Fatalf("header read: %+v, %v (the refused IfAbsent must change nothing)", attrs, err)
	}
	if b, _, err := s.Read(ctx, "a/b", 5, -1); err != nil || len(b) != 0 {
		t.Errorf("read at the end: %q, %v", b, err)
	}
	if _, _, err := s.Read(ctx, "a/b", 0, -1); !errors.Is(err, ErrNoBodies) || errors.Is(err, driver.ErrNotFound) {
		t.Errorf("body read: %v, want ErrNoBodies and not ErrNotFound", err)
	}
	if _, _, err := s.Read(ctx, "a/c", 0, 0); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("absent read: %v", err)
	}
	// An overwrite never moves the modification time back.
	before := attrs.ModTime
	write(t, s, "a/b", "")
	_, attrs, _ = s.Read(ctx, "a/b", 0, 0)
	if attrs.Size != 0 || attrs.ModTime.Before(before) {
		t.Errorf("after overwrite: %+v (was %v)", attrs, before)
	}
	if err := s.Delete(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "a/b"); err != nil {
		t.Errorf("delete of absent: %v", err)
	}
	if err := s.DeleteBatch(ctx, []string{"a/b", "nothing"}); err != nil {
		t.Errorf("batch of absent names: %v", err)
	}
	if s.Len() != 0 {
		t.Errorf("Len %d", s.Len())
	}
	// A failing body stores nothing; Write reads the body to the end.
	boom := errors.New("boom")
	if err := s.Write(ctx, "e", iotest.ErrReader(boom), &driver.WriteOptions{}); !errors.Is(err, boom) {
		t.Errorf("failing body: %v", err)
	}
	r := &countingReader{r: strings.NewReader(strings.Repeat("x", 100000))}
	if err := s.Write(ctx, "big", r, &driver.WriteOptions{}); err != nil || r.n != 100000 {
		t.Errorf("read %d bytes of the body, %v", r.n, err)
	}
	if _, _, err := s.Read(ctx, "e", 0, 0); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("failed write stored something: %v", err)
	}
	for _, bad := range []string{"", "/a", "a//b", "a/../b"} {
		if err := s.Write(ctx, bad, strings.NewReader(""), &driver.WriteOptions{}); !errors.Is(err, driver.ErrInvalidName) {
			t.Errorf("write %q: %v", bad, err)
		}
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestIfAbsentRace(t *testing.T) {
	s := New()
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 16 {
		wg.Go(func() {
			err := s.Write(ctx, "k", strings.NewReader("v"), &driver.WriteOptions{IfAbsent: true})
			if err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			} else if !errors.Is(err, driver.ErrPreconditionFailed) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d IfAbsent writers won, want 1", won)
	}
}

func TestCountsAndClose(t *testing.T) {
	s := New()
	if n, err := s.Fill(EntryNames("loc/", 5, 1), 10, time.Unix(1, 0)); err != nil || n != 5 {
		t.Fatalf("fill: %d, %v", n, err)
	}
	if c := s.Counts(); c != (Counts{}) {
		t.Errorf("Fill counted: %+v", c)
	}
	write(t, s, "loc/x", "v")
	s.Read(ctx, "loc/x", 0, 0)
	s.Delete(ctx, "loc/x")
	s.DeleteBatch(ctx, []string{"a", "b"})
	s.List(ctx, &driver.ListOptions{Prefix: "loc/", PageSize: 2})
	want := Counts{Reads: 1, Writes: 1, Deletes: 1, BatchDeletes: 1, Lists: 1, ListedObjects: 2, BatchDeletedNames: 2}
	if c := s.Counts(); c != want {
		t.Errorf("counts %+v, want %+v", c, want)
	}
	if c := s.Counts(); c.Requests() != 5 || c.Sub(want) != (Counts{}) {
		t.Errorf("Requests %d, Sub %+v", c.Requests(), c.Sub(want))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("second close: %v", err)
	}
	if _, err := s.List(ctx, &driver.ListOptions{}); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("list after close: %v", err)
	}
	if err := s.Write(ctx, "a", strings.NewReader(""), &driver.WriteOptions{}); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
	if s.Len() != 5 {
		t.Errorf("Len after close %d, want the 5 names kept", s.Len())
	}
}

func TestEntryNames(t *testing.T) {
	names := slices.Collect(EntryNames("loc/", 1000, 7))
	if again := slices.Collect(EntryNames("loc/", 1000, 7)); !slices.Equal(names, again) {
		t.Error("same seed, different names")
	}
	seen := map[string]bool{}
	for _, n := range names {
		if len(n) != len("loc/")+40 || !strings.HasPrefix(n, "loc/") || strings.Trim(n[4:], "0123456789abcdef") != "" {
			t.Fatalf("bad name %q", n)
		}
		if seen[n] {
			t.Fatalf("repeated %q", n)
		}
		seen[n] = true
	}
	if _, err := New().Fill(slices.Values([]string{"ok", "bad//name"}), 1, time.Now()); !errors.Is(err, driver.ErrInvalidName) {
		t.Errorf("fill of an invalid name: %v", err)
	}
}

// TestCacheCullsOverStore runs a cache over a preloaded store: the first
// write on the full cache lists it and culls a third, by batch deletes,
// without a read.
func TestCacheCullsOverStore(t *testing.T) {
	s := New()
	const n = 3000
	if _, err := s.Fill(EntryNames("loc/", n, 3), 100, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(s, cache.WithLocation("loc"), cache.WithMaxEntries(n), cache.WithCullFrequency(3))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(ctx, "k", []byte("v"), cache.NoExpiry); err != nil {
		t.Fatal(err)
	}
	got := s.Counts()
	if got.Reads != 0 || got.Writes != 1 || got.Lists != 3 || got.BatchDeletes != 1 || got.BatchDeletedNames != n/3 {
		t.Errorf("counts %+v: want 3 pages listed, one batch of %d, one write, no read", got, n/3)
	}
	if s.Len() != n-n/3+1 {
		t.Errorf("%d names left, want %d", s.Len(), n-n/3+1)
	}
	if st := c.Stats(); st.Culls != 1 || st.Lists != got.Lists {
		t.Errorf("cache stats %+v", st)
	}
}

// Latency holds a request until its context ends, which fails it with the
// context's error; a request whose context has already ended fails at
// once. Both are still counted.
func TestLatency(t *testing.T) {
	s := New()
	s.Latency = time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := s.List(ctx, &driver.ListOptions{})
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("List held by an hour's latency, its context canceled = %v, want context.Canceled", err)
	}
	if err := s.Write(ctx, "x", strings.NewReader("v"), &driver.WriteOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a canceled context = %v", err)
	}
	if c := s.Counts(); c.Lists != 1 || c.Writes != 1 {
		t.Errorf("counts %+v, want 1 list and 1 write", c)
	}
}
