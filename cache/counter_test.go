package cache_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/drivers/mem"
	"github.com/blobcache/blobcache/examples/customdriver"
)

// Increment counts requests in a fixed window: the first call of a window
// creates the counter with the window's TTL.
func ExampleCache_Increment() {
	ctx := context.Background()
	c, err := cache.Open(ctx, "mem://")
	if err != nil {
		panic(err)
	}
	defer c.Close()
	const limit = 2 // requests a minute
	for range 3 {
		n, err := c.Increment(ctx, "rate:client-7", 1, 0, time.Minute)
		if err != nil {
			panic(err)
		}
		fmt.Println(n, n <= limit)
	}
	// Output:
	// 1 true
	// 2 true
	// 3 false
}

func TestIncrementCreatesAndExpires(t *testing.T) {
	ctx := t.Context()
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	c, err := cache.New(mem.New(), cache.WithClock(clk.Now))
	must(t, err)
	defer c.Close()
	want := func(what string, got int64, err error, n int64) {
		t.Helper()
		if err != nil || got != n {
			t.Fatalf("%s = %d, %v; want %d", what, got, err, n)
		}
	}
	n, err := c.Increment(ctx, "w", 1, 0, 10*time.Second)
	want("Increment of a missing key", n, err, 1)
	clk.Advance(5 * time.Second)
	n, err = c.Increment(ctx, "w", 2, 0, time.Hour) // the ttl of a live key is not changed
	want("Increment of a live key", n, err, 3)
	clk.Advance(6 * time.Second) // 11 s after creation: the window passed
	if _, err := c.Get(ctx, "w"); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get after the creating ttl = %v, want ErrMiss: a later Increment changed the expiry", err)
	}
	n, err = c.Increment(ctx, "w", 1, 100, 10*time.Second)
	want("Increment of an expired key with initial 100", n, err, 101)
	n, err = c.Increment(ctx, "w", -102, 100, 10*time.Second)
	want("a negative Increment", n, err, -1)

	must(t, c.Set(ctx, "text", []byte("abc"), cache.NoExpiry))
	if _, err := c.Increment(ctx, "text", 1, 0, time.Minute); !errors.Is(err, cache.ErrNotInteger) {
		t.Errorf("Increment of text = %v, want ErrNotInteger", err)
	}
	must(t, c.Set(ctx, "max", []byte("9223372036854775807"), cache.NoExpiry))
	if _, err := c.Increment(ctx, "max", 1, 0, time.Minute); !errors.Is(err, cache.ErrOverflow) {
		t.Errorf("Increment past MaxInt64 = %v, want ErrOverflow", err)
	}
	if _, err := c.Increment(ctx, "new", 1, 9223372036854775807, time.Minute); !errors.Is(err, cache.ErrOverflow) {
		t.Errorf("Increment creating past MaxInt64 = %v, want ErrOverflow", err)
	}
	if _, err := c.Increment(ctx, "w", 1, 0, -5*time.Second); !errors.Is(err, cache.ErrInvalidTTL) {
		t.Errorf("Increment with a negative ttl = %v, want ErrInvalidTTL", err)
	}
}

// TestIncrementCombines checks that concurrent Increments of one key are
// combined into far fewer writes than increments, each caller getting its
// own result: distinct, none lost, none doubled. The store answers every
// call after 2 ms, so that increments queue behind a write in flight.
func TestIncrementCombines(t *testing.T) {
	ctx := t.Context()
	d := customdriver.New(customdriver.NewStore(), customdriver.Options{Latency: 2 * time.Millisecond})
	c, err := cache.New(d, cache.WithMaxEntries(0))
	must(t, err)
	defer c.Close()
	const goroutines, each = 64, 10
	var (
		mu      sync.Mutex
		results []int64
		wg      sync.WaitGroup
	)
	for range goroutines {
		wg.Go(func() {
			for range each {
				n, err := c.Increment(ctx, "hot", 1, 0, time.Hour)
				if err != nil {
					t.Errorf("Increment: %v", err)
					return
				}
				mu.Lock()
				results = append(results, n)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(results)
	for i, n := range results {
		if n != int64(i+1) {
			t.Fatalf("results sorted: [%d] = %d, want %d: an increment was lost or doubled (results %v...)", i, n, i+1, results[:min(20, len(results))])
		}
	}
	if v, err := c.Get(ctx, "hot"); err != nil || string(v) != "640" {
		t.Errorf("the counter holds %q, %v; want 640", v, err)
	}
	if w := c.Stats().Writes; w > goroutines*each/10 {
		t.Errorf("%d increments took %d writes, want at most %d: they were not combined", goroutines*each, w, goroutines*each/10)
	} else {
		t.Logf("%d increments by %d goroutines: %d writes", goroutines*each, goroutines, w)
	}
}

// TestIncrementCallerLeaves checks that a caller whose context ends while it
// waits returns with its context's error.
func TestIncrementCallerLeaves(t *testing.T) {
	d := customdriver.New(customdriver.NewStore(), customdriver.Options{Latency: 50 * time.Millisecond})
	c, err := cache.New(d)
	must(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.Increment(ctx, "k", 1, 0, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Increment whose deadline passes while it waits = %v, want DeadlineExceeded", err)
	}
}

// TestTypedIncrement checks that a Typed[int] reads what Increment stores.
func TestTypedIncrement(t *testing.T) {
	ctx := t.Context()
	c, err := cache.New(mem.New())
	must(t, err)
	defer c.Close()
	tc := cache.NewTyped[int](c, nil)
	if n, err := tc.Increment(ctx, "n", 5, 10, time.Minute); err != nil || n != 15 {
		t.Fatalf("Increment = %d, %v; want 15", n, err)
	}
	if v, err := tc.Get(ctx, "n"); err != nil || v != 15 {
		t.Errorf("Typed[int].Get = %d, %v; want 15", v, err)
	}
}
