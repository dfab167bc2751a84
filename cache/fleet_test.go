package cache_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/mem"
)

// fleet returns n caches over one shared mem store, each with a handle of
// its own: as many processes, as far as GetOrSet's in-process single flight
// is concerned. Each has the fill lease and the clock given.
func fleet(t *testing.T, n int, opts ...cache.Option) []*cache.Cache {
	t.Helper()
	store := fmt.Sprintf("fleet-%s-%d", t.Name(), time.Now().UnixNano())
	cs := make([]*cache.Cache, n)
	for i := range cs {
		c, err := cache.New(mem.Open(store), append([]cache.Option{cache.WithLocation("app")}, opts...)...)
		must(t, err)
		t.Cleanup(func() { c.Close() })
		cs[i] = c
	}
	return cs
}

// storeNames lists every object in c's store.
func storeNames(t *testing.T, c *cache.Cache) []string {
	t.Helper()
	page, err := c.Driver().List(t.Context(), &driver.ListOptions{})
	must(t, err)
	var names []string
	for _, o := range page.Objects {
		names = append(names, o.Name)
	}
	return names
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// TestFleetFillOnce: 8 caches x 8 goroutines on a cold key with a fill lease
// run the fill once in all; every caller gets its value; the lease object is
// gone afterwards. Without the lease, each cache fills.
func TestFleetFillOnce(t *testing.T) {
	for _, lease := range []time.Duration{0, 5 * time.Second} {
		t.Run(fmt.Sprint("lease=", lease), func(t *testing.T) {
			cs := fleet(t, 8, cache.WithFillLease(lease))
			var fills atomic.Int64
			fill := func(ctx context.Context) ([]byte, error) {
				n := fills.Add(1)
				time.Sleep(50 * time.Millisecond) // an expensive fill
				return fmt.Appendf(nil, "fill-%d", n), nil
			}
			var wg sync.WaitGroup
			results := make([]string, 64)
			errs := make([]error, 64)
			start := make(chan struct{})
			for i := range results {
				wg.Go(func() {
					<-start
					v, err := cs[i%8].GetOrSet(t.Context(), "cold", time.Hour, fill)
					results[i], errs[i] = string(v), err
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("caller %d: %v", i, err)
				}
			}
			stored, err := cs[0].Get(t.Context(), "cold")
			must(t, err)
			for i, r := range results {
				if r != string(stored) {
					t.Errorf("caller %d got %q, the store holds %q", i, r, stored)
				}
			}
			var waits int64
			for _, c := range cs {
				waits += c.Stats().FillWaits
			}
			if lease == 0 {
				if fills.Load() < 2 {
					t.Errorf("without a lease, 8 caches ran %d fills; want one each that missed (more than 1)", fills.Load())
				}
				return
			}
			if fills.Load() != 1 {
				t.Errorf("with a fill lease, 8 caches x 8 callers ran %d fills, want 1", fills.Load())
			}
			if waits == 0 {
				t.Errorf("no cache waited (FillWaits 0 in all): the lease was not contended")
			}
			if names := storeNames(t, cs[0]); len(names) != 1 || strings.Contains(names[0], "fill/") {
				t.Errorf("after the fill the store holds %q, want the entry alone (the lease deleted)", names)
			}
		})
	}
}

// TestFleetFillRequests: a fill under a lease costs 3 requests more than
// without one (the lease's create, a read of the entry after it, its
// delete), and a hit costs what it always did.
func TestFleetFillRequests(t *testing.T) {
	count := func(lease time.Duration) cache.Stats {
		c := fleet(t, 1, cache.WithFillLease(lease))[0]
		_, err := c.GetOrSet(t.Context(), "k", time.Hour, func(context.Context) ([]byte, error) { return []byte("v"), nil })
		must(t, err)
		_, err = c.GetOrSet(t.Context(), "k", time.Hour, nil)
		must(t, err)
		return c.Stats()
	}
	plain, leased := count(0), count(time.Second)
	if d := leased.Reads - plain.Reads; d != 1 {
		t.Errorf("reads: %d with a lease, %d without; want 1 more", leased.Reads, plain.Reads)
	}
	if d := leased.Writes - plain.Writes; d != 1 {
		t.Errorf("writes: %d with a lease, %d without; want 1 more", leased.Writes, plain.Writes)
	}
	if d := leased.DeleteRequests - plain.DeleteRequests; d != 1 {
		t.Errorf("deletes: %d with a lease, %d without; want 1 more", leased.DeleteRequests, plain.DeleteRequests)
	}
	if plain.Reads != 3 || plain.Writes != 1 {
		t.Errorf("without a lease: %d reads and %d writes for a miss and a hit, want 3 and 1", plain.Reads, plain.Writes)
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) now() time.Time       { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration)  { c.ns.Add(int64(d)) }
func (c *fakeClock) option() cache.Option { return cache.WithClock(c.now) }
func fillWith(v string) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) { return []byte(v), nil }
}

// TestFleetFillDeadHolder: a holder that dies mid-fill (its cache closed,
// so it can neither extend nor end its lease) holds the key's waiters up
// until its lease passes, no longer; a waiter then takes the lease over and
// fills.
func TestFleetFillDeadHolder(t *testing.T) {
	clock := newFakeClock()
	cs := fleet(t, 2, cache.WithFillLease(time.Minute), clock.option())
	a, b := cs[0], cs[1]
	inFill, never := make(chan struct{}), make(chan struct{})
	defer close(never)
	go a.GetOrSet(context.Background(), "k", time.Hour, func(context.Context) ([]byte, error) {
		close(inFill)
		<-never
		return []byte("a"), nil
	})
	<-inFill
	a.Close() // dies: every later call of a's, extends included, fails
	got := make(chan string, 1)
	go func() {
		v, err := b.GetOrSet(t.Context(), "k", time.Hour, fillWith("b"))
		got <- fmt.Sprintf("%s %v", v, err)
	}()
	waitFor(t, "b to wait on a's lease", func() bool { return b.Stats().FillWaits >= 2 })
	select {
	case r := <-got:
		t.Fatalf("b returned %q while a's lease was live", r)
	default:
	}
	clock.add(time.Minute) // a's lease passes
	if r := <-got; r != "b <nil>" {
		t.Errorf("after a's lease passed, b's GetOrSet = %q, want b's own fill (b <nil>)", r)
	}
	if s := b.Stats(); s.Fills != 1 {
		t.Errorf("b ran %d fills, want 1", s.Fills)
	}
}

// TestFleetFillFailedHolder: a holder whose fill fails ends its lease, and
// a waiting cache takes it over at once and fills; the holder's callers get
// its error.
func TestFleetFillFailedHolder(t *testing.T) {
	cs := fleet(t, 2, cache.WithFillLease(time.Hour))
	a, b := cs[0], cs[1]
	inFill, fail := make(chan struct{}), make(chan struct{})
	boom := errors.New("backend down")
	aErr := make(chan error, 1)
	go func() {
		_, err := a.GetOrSet(t.Context(), "k", time.Hour, func(context.Context) ([]byte, error) {
			close(inFill)
			<-fail
			return nil, boom
		})
		aErr <- err
	}()
	<-inFill
	got := make(chan string, 1)
	go func() {
		v, err := b.GetOrSet(t.Context(), "k", time.Hour, fillWith("b"))
		got <- fmt.Sprintf("%s %v", v, err)
	}()
	waitFor(t, "b to wait on a's lease", func() bool { return b.Stats().FillWaits >= 1 })
	close(fail)
	if err := <-aErr; !errors.Is(err, boom) {
		t.Errorf("a's GetOrSet = %v, want its fill's error", err)
	}
	if r := <-got; r != "b <nil>" {
		t.Errorf("b's GetOrSet = %q, want b's own fill (b <nil>): an hour-long lease ended by a's failure", r)
	}
}

// TestFleetFillLongFill: a holder extends its lease while its fill runs, so
// a fill four times longer than the lease still runs once in the fleet.
func TestFleetFillLongFill(t *testing.T) {
	const lease = 300 * time.Millisecond
	cs := fleet(t, 2, cache.WithFillLease(lease))
	var fills atomic.Int64
	fill := func(context.Context) ([]byte, error) {
		fills.Add(1)
		time.Sleep(4 * lease)
		return []byte("v"), nil
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			v, err := c.GetOrSet(t.Context(), "k", time.Hour, fill)
			if err != nil || string(v) != "v" {
				t.Errorf("GetOrSet = %q, %v", v, err)
			}
		})
	}
	wg.Wait()
	if fills.Load() != 1 {
		t.Errorf("a fill of %v under a lease of %v ran %d times, want 1: the holder did not keep its lease", 4*lease, lease, fills.Load())
	}
}

// TestFleetFillCallersLeave: a cache whose callers have all left stops
// polling a key another process is filling.
func TestFleetFillCallersLeave(t *testing.T) {
	cs := fleet(t, 2, cache.WithFillLease(time.Hour))
	a, b := cs[0], cs[1]
	inFill, done := make(chan struct{}), make(chan struct{})
	defer close(done)
	go a.GetOrSet(context.Background(), "k", time.Hour, func(context.Context) ([]byte, error) {
		close(inFill)
		<-done
		return []byte("a"), nil
	})
	<-inFill
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := b.GetOrSet(ctx, "k", time.Hour, fillWith("b"))
		errc <- err
	}()
	waitFor(t, "b to wait on a's lease", func() bool { return b.Stats().FillWaits >= 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("b's GetOrSet after its caller left = %v, want context.Canceled", err)
	}
	// The flight sees it at its next poll, at most 500 ms away, and stops.
	before := b.Stats()
	time.Sleep(1500 * time.Millisecond)
	after := b.Stats()
	if polls := after.FillWaits - before.FillWaits; polls > 1 {
		t.Errorf("b polled %d more times after its last caller left, want at most 1", polls)
	}
	if after.Reads-before.Reads > 2 {
		t.Errorf("b made %d reads after its last caller left, want at most 2 (one poll)", after.Reads-before.Reads)
	}
}

func TestFillLeaseArguments(t *testing.T) {
	ctx := t.Context()
	if _, err := cache.New(noReplacer{mem.New()}, cache.WithFillLease(time.Second)); !errors.Is(err, cache.ErrInvalidOption) || !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("New(no Replacer, WithFillLease) = %v, want ErrInvalidOption and ErrUnsupported", err)
	}
	if _, err := cache.New(mem.New(), cache.WithFillLease(-time.Second)); !errors.Is(err, cache.ErrInvalidOption) {
		t.Errorf("WithFillLease(-1s) = %v, want ErrInvalidOption", err)
	}
	c, err := cache.New(noReplacer{mem.New()})
	must(t, err)
	if _, err := c.GetOrSet(ctx, "k", time.Hour, fillWith("v"), cache.FillLease(time.Second)); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("GetOrSet(FillLease) without a Replacer = %v, want ErrUnsupported", err)
	}
	for _, o := range []cache.FillOption{nil, cache.FillLease(-1)} {
		if _, err := c.GetOrSet(ctx, "k", time.Hour, fillWith("v"), o); !errors.Is(err, cache.ErrInvalidArgument) {
			t.Errorf("GetOrSet with a bad fill option = %v, want ErrInvalidArgument", err)
		}
	}
	// FillLease(0) turns a cache's lease off for the call.
	l, err := cache.New(mem.New(), cache.WithFillLease(time.Hour))
	must(t, err)
	_, err = l.GetOrSet(ctx, "k", time.Hour, fillWith("v"), cache.FillLease(0))
	must(t, err)
	if s := l.Stats(); s.Writes != 1 || s.DeleteRequests != 0 {
		t.Errorf("GetOrSet(FillLease(0)) made %d writes and %d deletes, want 1 and 0 (no lease)", s.Writes, s.DeleteRequests)
	}
}

// With a fill lease, caches in different processes that miss one key at
// once run its fill once between them: here two caches over one store
// stand for two processes.
func ExampleWithFillLease() {
	ctx := context.Background()
	var caches []*cache.Cache
	for range 2 {
		c, err := cache.Open(ctx, "mem://example-fleet?location=app&fill_lease=5s")
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close()
		caches = append(caches, c)
	}
	var fills atomic.Int64
	render := func(context.Context) ([]byte, error) {
		fills.Add(1)
		time.Sleep(20 * time.Millisecond) // the expensive part
		return []byte("<html>...</html>"), nil
	}
	var wg sync.WaitGroup
	for _, c := range caches {
		for range 4 {
			wg.Go(func() {
				if _, err := c.GetOrSet(ctx, "page", time.Minute, render); err != nil {
					log.Fatal(err)
				}
			})
		}
	}
	wg.Wait()
	fmt.Println("fills:", fills.Load())
	// Output:
	// fills: 1
}
