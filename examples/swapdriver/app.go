// Package swapdriver is a small application that caches through blobcache and
// takes its cache as a URL, so that production, development and tests differ
// by one string:
//
//	app, err := swapdriver.New(ctx, "s3://my-bucket?location=pages&max_entries=10000", backend) // production
//	app, err := swapdriver.New(ctx, "file:///var/cache/myapp", backend)                          // one machine
//	app, err := swapdriver.New(ctx, "mem://", backend)                                           // tests
//
// The application renders profile pages from a slow backend (cached with
// GetOrSet, one render per page at a time) and limits how often each client
// may call it (a fixed-window counter made of Add and Incr, atomic across
// processes on S3 and the file driver). Its test, app_test.go, runs the same
// assertions on mem:// and on a file:// directory made for the test: the
// pattern applications use in their own tests.
package swapdriver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/blobcache/blobcache/cache"
	_ "github.com/blobcache/blobcache/drivers/all" // the URL may name any built-in driver: s3 in production, mem in tests
)

// Backend is where the data behind a page lives: a database, another
// service. It is slow, which is why pages are cached.
type Backend interface {
	// Profile returns the display name of user, or an error.
	Profile(ctx context.Context, user string) (string, error)
}

// Config tunes the application. The zero value is usable.
type Config struct {
	// PageTTL is how long a rendered page is served from the cache
	// (default 5 minutes).
	PageTTL time.Duration
	// Limit is how many requests a client may make per Window (default 10).
	Limit int64
	// Window is the rate limit's window (default 1 minute).
	Window time.Duration
	// Now is the application's clock (default time.Now). Tests set it to
	// move between rate-limit windows.
	Now func() time.Time
}

// App is the application: a page renderer and a rate limiter over one cache.
type App struct {
	cache   *cache.Cache
	backend Backend
	cfg     Config
}

// New opens the cache at cacheURL (any URL cache.Open takes) and returns
// the application. Close releases the cache.
func New(ctx context.Context, cacheURL string, backend Backend, cfg Config) (*App, error) {
	if cfg.PageTTL <= 0 {
		cfg.PageTTL = 5 * time.Minute
	}
	if cfg.Limit <= 0 {
		cfg.Limit = 10
	}
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c, err := cache.Open(ctx, cacheURL)
	if err != nil {
		return nil, fmt.Errorf("swapdriver: %w", err)
	}
	return &App{cache: c, backend: backend, cfg: cfg}, nil
}

// Close closes the application's cache.
func (a *App) Close() error { return a.cache.Close() }

// Page returns user's rendered profile page. A page is rendered at most once
// per PageTTL (per process at a time; concurrent callers share one render)
// and served from the cache otherwise.
func (a *App) Page(ctx context.Context, user string) (string, error) {
	page, err := a.cache.GetOrSet(ctx, "page:"+user, a.cfg.PageTTL, func(ctx context.Context) ([]byte, error) {
		name, err := a.backend.Profile(ctx, user)
		if err != nil {
			return nil, err
		}
		return fmt.Appendf(nil, "<h1>%s</h1><p>@%s</p>", name, user), nil
	})
	if err != nil {
		return "", fmt.Errorf("swapdriver: page %q: %w", user, err)
	}
	return string(page), nil
}

// Invalidate drops user's cached page, so the next Page renders it again.
func (a *App) Invalidate(ctx context.Context, user string) error {
	_, err := a.cache.Delete(ctx, "page:"+user)
	return err
}

// Allow reports whether client may make one more request in the current
// window, and counts the request. The count lives in the cache under a key
// naming the window, created with Add (so exactly one process starts it) and
// raised with Incr (atomic), and expires with the window.
func (a *App) Allow(ctx context.Context, client string) (bool, error) {
	now := a.cfg.Now()
	window := now.Truncate(a.cfg.Window)
	key := "rate:" + client + ":" + strconv.FormatInt(window.Unix(), 10)
	// The entry outlives its window a little, so a slow request never
	// finds it gone mid-window; a later window uses another key anyway.
	ttl := window.Add(a.cfg.Window).Sub(now) + time.Second
	for range 3 {
		n, err := a.cache.Incr(ctx, key, 1)
		if err == nil {
			return n <= a.cfg.Limit, nil
		}
		if !errors.Is(err, cache.ErrMiss) {
			return false, fmt.Errorf("swapdriver: rate limit %q: %w", client, err)
		}
		// First request of the window: start the count at 0 unless another
		// request just did, then count this one with Incr.
		if _, err := a.cache.Add(ctx, key, []byte("0"), ttl); err != nil {
			return false, fmt.Errorf("swapdriver: rate limit %q: %w", client, err)
		}
	}
	return false, fmt.Errorf("swapdriver: rate limit %q: the counter keeps vanishing", client)
}
