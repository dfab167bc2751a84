package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/mem"
)

// TestPurge: Purge deletes exactly the dead entries (expired, past grace,
// undecodable at an entry's name), keeps live and stale ones and every
// object not named as an entry, reading only headers, and reports what it
// did as it goes.
func TestPurge(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	c := fleet(t, 1, cache.WithMaxEntries(0), clock.option())[0]
	graced := fleet(t, 1, cache.WithMaxEntries(0), clock.option(), cache.WithStaleGrace(time.Hour))[0]
	// graced has a store of its own: write its entries through c's driver
	// instead, by copying them.
	for i := range 30 {
		must(t, c.Set(ctx, fmt.Sprint("expired", i), []byte("x"), time.Minute))
	}
	for i := range 20 {
		must(t, c.Set(ctx, fmt.Sprint("live", i), []byte("x"), time.Hour))
	}
	must(t, c.Set(ctx, "forever", []byte("x"), cache.NoExpiry))
	for i := range 5 {
		key := fmt.Sprint("stale", i)
		must(t, graced.Set(ctx, key, []byte("x"), time.Minute))
		b := readObject(t, graced, key)
		must(t, c.Driver().Write(ctx, c.ObjectName(key), bytes.NewReader(b), &driver.WriteOptions{}))
	}
	foreign := map[string][]byte{
		c.ObjectName("corrupt"):                 []byte("not an entry"),
		"app/README":                            []byte("kept"),
		"app/" + c.ObjectName("x")[4:] + ".bak": []byte("kept"),
		"elsewhere/" + c.ObjectName("y")[4:]:    []byte("BCE1 outside the location"),
	}
	for name, b := range foreign {
		must(t, c.Driver().Write(ctx, name, bytes.NewReader(b), &driver.WriteOptions{}))
	}
	clock.add(2 * time.Minute) // "expired*" and "stale*" are past expiry; "stale*" within grace

	var calls []cache.PurgeProgress
	before := c.Stats()
	p, err := c.Purge(ctx, 4, func(p cache.PurgeProgress) { calls = append(calls, p) })
	must(t, err)
	want := cache.PurgeProgress{Listed: 57, Examined: 57, Deleted: 31, Stale: 5, Live: 21}
	if p != want {
		t.Errorf("Purge = %+v, want %+v", p, want)
	}
	if len(calls) != 58 || calls[len(calls)-1] != want {
		t.Errorf("progress called %d times, last %+v; want 58 (each entry, then the end), ending at the result", len(calls), calls[len(calls)-1])
	}
	s := c.Stats()
	if reads, dels := s.Reads-before.Reads, s.DeleteRequests-before.DeleteRequests; reads != 57 || dels != 31 || s.Lists-before.Lists != 1 {
		t.Errorf("Purge made %d reads, %d deletes, %d lists; want 57 header reads, 31 deletes, 1 list", reads, dels, s.Lists-before.Lists)
	}
	if got := s.BytesRead - before.BytesRead; got > 57*int64(cache.EntryHeaderSize) {
		t.Errorf("Purge read %d bytes: more than a header per entry", got)
	}
	n, err := c.Len(ctx)
	if err != nil || n != 26 {
		t.Errorf("after Purge Len = %d, %v; want 26 (21 live, 5 stale)", n, err)
	}
	for name := range foreign {
		if name == c.ObjectName("corrupt") {
			continue
		}
		if _, _, err := c.Driver().Read(ctx, name, 0, -1); err != nil {
			t.Errorf("Purge touched %q, not an entry of the location: %v", name, err)
		}
	}
	if _, _, err := c.Driver().Read(ctx, c.ObjectName("corrupt"), 0, -1); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("an undecodable object at an entry's name survived Purge: %v", err)
	}
	// Nothing left to do: a second Purge deletes nothing.
	if p, err := c.Purge(ctx, 0, nil); err != nil || p.Deleted != 0 || p.Live != 21 {
		t.Errorf("second Purge = %+v, %v", p, err)
	}
}

// TestPurgeBounds: at most concurrency header reads at once; a bad
// concurrency, a cancelled context and a failing store are errors.
func TestPurgeBounds(t *testing.T) {
	ctx := t.Context()
	store := &gatedReads{Driver: mem.New()}
	c, err := cache.New(store, cache.WithMaxEntries(0))
	must(t, err)
	defer c.Close()
	for i := range 200 {
		must(t, c.Set(ctx, fmt.Sprint(i), []byte("x"), time.Hour))
	}
	if _, err := c.Purge(ctx, 3, nil); err != nil {
		t.Fatal(err)
	}
	if m := store.max.Load(); m > 3 || m < 2 {
		t.Errorf("Purge(concurrency 3) ran %d reads at once at most, want 2 or 3", m)
	}
	for _, bad := range []int{-1, 1025} {
		if _, err := c.Purge(ctx, bad, nil); !errors.Is(err, cache.ErrInvalidArgument) {
			t.Errorf("Purge(concurrency %d) = %v, want ErrInvalidArgument", bad, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Purge(cctx, 0, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Purge(cancelled) = %v, want context.Canceled", err)
	}
	store.fail.Store(true)
	if p, err := c.Purge(ctx, 0, nil); !errors.Is(err, cache.ErrStorage) || p.Deleted != 0 {
		t.Errorf("Purge over a failing store = %+v, %v; want ErrStorage", p, err)
	}
}

// gatedReads records how many Reads run at once (each lasting a
// millisecond) and fails them on demand.
type gatedReads struct {
	driver.Driver
	mu       sync.Mutex
	now, max atomic.Int64
	fail     atomic.Bool
}

func (g *gatedReads) Read(ctx context.Context, name string, off, n int64) ([]byte, driver.Attributes, error) {
	if g.fail.Load() {
		return nil, driver.Attributes{}, errors.New("gatedReads: the disk is on fire")
	}
	cur := g.now.Add(1)
	defer g.now.Add(-1)
	g.mu.Lock()
	if cur > g.max.Load() {
		g.max.Store(cur)
	}
	g.mu.Unlock()
	time.Sleep(time.Millisecond)
	return g.Driver.Read(ctx, name, off, n)
}
