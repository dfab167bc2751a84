package swapdriver_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blobcache/blobcache/examples/swapdriver"
)

// cacheURLs are the stores the application's tests run on: memory, and a
// directory made for the test. Production passes an s3:// URL instead; the
// application's code is the same.
func cacheURLs(t *testing.T) map[string]string {
	return map[string]string{
		"mem":  "mem://",
		"file": (&url.URL{Scheme: "file", Path: filepath.ToSlash(t.TempDir())}).String(),
	}
}

// backend counts the profile lookups the application makes.
type backend struct {
	calls atomic.Int64
	delay time.Duration
}

func (b *backend) Profile(ctx context.Context, user string) (string, error) {
	b.calls.Add(1)
	time.Sleep(b.delay)
	if user == "ghost" {
		return "", errors.New("no such user")
	}
	return "User " + user, nil
}

// clock is a settable time source for the rate limiter.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestApp(t *testing.T) {
	for name, cacheURL := range cacheURLs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			be := &backend{delay: 20 * time.Millisecond}
			clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
			app, err := swapdriver.New(ctx, cacheURL, be, swapdriver.Config{Limit: 3, Window: time.Minute, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer app.Close()

			t.Run("pages render once", func(t *testing.T) {
				// Eight concurrent requests for a page not yet cached share
				// one render; later requests are served from the cache.
				var wg sync.WaitGroup
				for range 8 {
					wg.Go(func() {
						if p, err := app.Page(ctx, "ada"); err != nil || p != "<h1>User ada</h1><p>@ada</p>" {
							t.Errorf("Page(ada) = %q, %v", p, err)
						}
					})
				}
				wg.Wait()
				if _, err := app.Page(ctx, "ada"); err != nil {
					t.Fatal(err)
				}
				if n := be.calls.Load(); n != 1 {
					t.Errorf("backend called %d times for 9 requests of one page, want 1", n)
				}
				if err := app.Invalidate(ctx, "ada"); err != nil {
					t.Fatal(err)
				}
				if _, err := app.Page(ctx, "ada"); err != nil {
					t.Fatal(err)
				}
				if n := be.calls.Load(); n != 2 {
					t.Errorf("backend called %d times after an invalidation, want 2", n)
				}
			})

			t.Run("errors are not cached", func(t *testing.T) {
				before := be.calls.Load()
				for range 2 {
					if _, err := app.Page(ctx, "ghost"); err == nil {
						t.Error("Page(ghost) succeeded, want the backend's error")
					}
				}
				if n := be.calls.Load() - before; n != 2 {
					t.Errorf("backend called %d times for two failing requests, want 2 (failures must not be cached)", n)
				}
			})

			t.Run("rate limit", func(t *testing.T) {
				allow := func(client string) bool {
					t.Helper()
					ok, err := app.Allow(ctx, client)
					if err != nil {
						t.Fatalf("Allow(%s): %v", client, err)
					}
					return ok
				}
				// Concurrent requests: exactly Limit of them are allowed.
				var allowed atomic.Int64
				var wg sync.WaitGroup
				for range 10 {
					wg.Go(func() {
						ok, err := app.Allow(ctx, "10.0.0.1")
						if err != nil {
							t.Errorf("Allow: %v", err)
						}
						if ok {
							allowed.Add(1)
						}
					})
				}
				wg.Wait()
				if n := allowed.Load(); n != 3 {
					t.Errorf("%d of 10 concurrent requests allowed, want the limit, 3", n)
				}
				if !allow("10.0.0.2") {
					t.Error("another client was refused: limits must be per client")
				}
				clk.Add(time.Minute) // the next window
				for i := range 3 {
					if !allow("10.0.0.1") {
						t.Errorf("request %d in a new window refused", i+1)
					}
				}
				if allow("10.0.0.1") {
					t.Error("fourth request in the new window allowed, limit is 3")
				}
			})
		})
	}
}

// TestCachePersistsInDirectory shows what a file:// cache adds over mem://:
// a second application (a restart, or another process) finds the pages the
// first one cached.
func TestCachePersistsInDirectory(t *testing.T) {
	dir := t.TempDir()
	cacheURL := (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String()
	be := &backend{}
	for range 2 {
		app, err := swapdriver.New(t.Context(), cacheURL, be, swapdriver.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := app.Page(t.Context(), "grace"); err != nil {
			t.Fatal(err)
		}
		if err := app.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := be.calls.Load(); n != 1 {
		t.Errorf("backend called %d times across two runs on one directory, want 1", n)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Errorf("the directory holds %d entries (%v), want the cached page", len(entries), err)
	}
}

// TestBadURL checks that a wrong URL is an error at start, not at the first
// request.
func TestBadURL(t *testing.T) {
	if _, err := swapdriver.New(t.Context(), "mem://?max_entires=10", &backend{}, swapdriver.Config{}); err == nil {
		t.Fatal("New with an unknown option succeeded")
	}
}
