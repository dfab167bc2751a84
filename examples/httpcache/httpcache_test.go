package httpcache_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/drivers/mem"
	"github.com/blobcache/blobcache/examples/httpcache"
	"github.com/blobcache/blobcache/internal/outage"
)

// clock is a manual clock shared by the cache (expiry) and the middleware
// (Age, Expires).
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// origin is a handler that counts its calls and answers with what respond
// says for the path.
type origin struct {
	calls   atomic.Int64
	respond func(w http.ResponseWriter, r *http.Request)
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := o.calls.Add(1)
	w.Header().Set("X-Origin-Call", strconv.FormatInt(n, 10))
	o.respond(w, r)
}

// fixture is the middleware over an origin, on a memory cache with a manual
// clock.
type fixture struct {
	t      *testing.T
	clock  *clock
	cache  *cache.Cache
	origin *origin
	h      http.Handler
	errs   []error
}

func newFixture(t *testing.T, opts httpcache.Options, respond func(w http.ResponseWriter, r *http.Request)) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: &clock{now: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}, origin: &origin{respond: respond}}
	c, err := cache.New(mem.New(), cache.WithClock(f.clock.Now), cache.WithDefaultTTL(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f.cache = c
	opts.Now = f.clock.Now
	if opts.OnError == nil {
		opts.OnError = func(r *http.Request, err error) { f.errs = append(f.errs, err) }
	}
	f.h = httpcache.New(c, opts).Handler(f.origin)
	return f
}

// do sends a request and returns the response.
func (f *fixture) do(method, target string, header ...string) *http.Response {
	f.t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec.Result()
}

// get sends a GET and checks the X-Cache header and the origin's call count.
func (f *fixture) get(target, wantXCache string, wantCalls int64, header ...string) *http.Response {
	f.t.Helper()
	resp := f.do(http.MethodGet, target, header...)
	if got := resp.Header.Get("X-Cache"); got != wantXCache {
		f.t.Errorf("GET %s: X-Cache = %q, want %q", target, got, wantXCache)
	}
	if got := f.origin.calls.Load(); got != wantCalls {
		f.t.Errorf("GET %s: origin called %d times in all, want %d", target, got, wantCalls)
	}
	return resp
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHitsAndMisses(t *testing.T) {
	f := newFixture(t, httpcache.Options{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Add("Link", "</a.css>; rel=preload")
		w.Header().Add("Link", "</b.js>; rel=preload")
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Header().Set("Connection", "X-Private-Hop")
		w.Header().Set("X-Private-Hop", "connection-specific")
		io.WriteString(w, "page "+r.URL.RequestURI())
	})
	first := f.get("/page?id=1", httpcache.Miss, 1)
	if b := body(t, first); b != "page /page?id=1" {
		t.Fatalf("body = %q", b)
	}
	second := f.get("/page?id=1", httpcache.Hit, 1)
	if b := body(t, second); b != "page /page?id=1" {
		t.Errorf("cached body = %q, want the origin's", b)
	}
	if second.StatusCode != http.StatusOK {
		t.Errorf("cached status = %d, want 200", second.StatusCode)
	}
	for _, name := range []string{"Content-Type", "Cache-Control", "X-Origin-Call"} {
		if got, want := second.Header.Get(name), first.Header.Get(name); got != want {
			t.Errorf("cached %s = %q, want the origin's %q", name, got, want)
		}
	}
	if got := second.Header.Values("Link"); !slices.Equal(got, []string{"</a.css>; rel=preload", "</b.js>; rel=preload"}) {
		t.Errorf("cached Link = %q, want both values in order", got)
	}
	if got := second.Header.Get("X-Private-Hop"); got != "" {
		t.Errorf("a header named in Connection was stored: %q", got)
	}
	if got := second.Header.Get("Content-Length"); got != strconv.Itoa(len("page /page?id=1")) {
		t.Errorf("cached Content-Length = %q", got)
	}
	if got := second.Header.Get("Age"); got != "0" {
		t.Errorf("Age = %q, want 0", got)
	}
	// Vary by URL: another query, path or host is another entry.
	f.get("/page?id=2", httpcache.Miss, 2)
	f.get("/page", httpcache.Miss, 3)
	req := httptest.NewRequest(http.MethodGet, "http://other.example/page?id=1", nil)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if got := rec.Header().Get("X-Cache"); got != httpcache.Miss {
		t.Errorf("same path on another host: X-Cache = %q, want MISS", got)
	}
	f.get("/page?id=2", httpcache.Hit, 4)
}

func TestMaxAgeExpiry(t *testing.T) {
	f := newFixture(t, httpcache.Options{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "fresh for a minute")
	})
	f.get("/", httpcache.Miss, 1)
	f.clock.Advance(45 * time.Second)
	if got := f.get("/", httpcache.Hit, 1).Header.Get("Age"); got != "45" {
		t.Errorf("Age after 45s = %q, want 45", got)
	}
	f.clock.Advance(15 * time.Second) // 60s: expired
	f.get("/", httpcache.Miss, 2)
	f.get("/", httpcache.Hit, 2)
}

func TestFreshnessSources(t *testing.T) {
	for _, tc := range []struct {
		name    string
		header  func(now time.Time) http.Header
		freshOK time.Duration // still a hit this long after storing
		stale   time.Duration // a miss this long after storing
	}{
		{"s-maxage wins over max-age", func(time.Time) http.Header {
			return http.Header{"Cache-Control": {"max-age=10, s-maxage=100"}}
		}, 99 * time.Second, 100 * time.Second},
		{"Expires", func(now time.Time) http.Header {
			return http.Header{"Expires": {now.Add(30 * time.Second).Format(http.TimeFormat)}}
		}, 29 * time.Second, 30 * time.Second},
		{"default TTL", func(time.Time) http.Header { return http.Header{} }, 4*time.Minute + 59*time.Second, 5 * time.Minute},
		{"cache's default TTL", func(time.Time) http.Header { return http.Header{} }, 9 * time.Minute, 10 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := httpcache.Options{}
			if tc.name == "default TTL" {
				opts.DefaultTTL = 5 * time.Minute
			}
			var f *fixture
			f = newFixture(t, opts, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header(f.clock.Now()) {
					w.Header()[k] = v
				}
				io.WriteString(w, "x")
			})
			f.get("/", httpcache.Miss, 1)
			f.clock.Advance(tc.freshOK)
			f.get("/", httpcache.Hit, 1)
			f.clock.Advance(tc.stale - tc.freshOK)
			f.get("/", httpcache.Miss, 2)
		})
	}
}

func TestNotStored(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    httpcache.Options
		respond func(w http.ResponseWriter)
	}{
		{"no-store", httpcache.Options{}, func(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }},
		{"no-store among others", httpcache.Options{}, func(w http.ResponseWriter) {
			w.Header().Add("Cache-Control", "public, max-age=60")
			w.Header().Add("Cache-Control", "No-Store")
		}},
		{"private", httpcache.Options{}, func(w http.ResponseWriter) { w.Header().Set("Cache-Control", "private, max-age=60") }},
		{"no-cache", httpcache.Options{}, func(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-cache") }},
		{"max-age=0", httpcache.Options{}, func(w http.ResponseWriter) { w.Header().Set("Cache-Control", "max-age=0") }},
		{"bad max-age", httpcache.Options{}, func(w http.ResponseWriter) { w.Header().Set("Cache-Control", "max-age=soon") }},
		{"Expires in the past", httpcache.Options{}, func(w http.ResponseWriter) { w.Header().Set("Expires", "Thu, 01 Jan 1970 00:00:00 GMT") }},
		{"invalid Expires", httpcache.Options{}, func(w http.ResponseWriter) { w.Header().Set("Expires", "0") }},
		{"Set-Cookie", httpcache.Options{}, func(w http.ResponseWriter) {
			w.Header().Set("Cache-Control", "public, max-age=60")
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "secret"})
		}},
		{"Vary", httpcache.Options{}, func(w http.ResponseWriter) { w.Header().Set("Vary", "Accept-Encoding") }},
		{"500", httpcache.Options{}, func(w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) }},
		{"302", httpcache.Options{}, func(w http.ResponseWriter) {
			w.Header().Set("Location", "/elsewhere")
			w.WriteHeader(http.StatusFound)
		}},
		{"206", httpcache.Options{}, func(w http.ResponseWriter) { w.WriteHeader(http.StatusPartialContent) }},
		{"no default TTL", httpcache.Options{DefaultTTL: -1}, func(w http.ResponseWriter) {}},
		{"body too large", httpcache.Options{MaxBodyBytes: 1000}, func(w http.ResponseWriter) {
			w.Header().Set("Cache-Control", "max-age=60")
			for range 3 {
				w.Write(make([]byte, 400))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.opts, func(w http.ResponseWriter, r *http.Request) {
				tc.respond(w)
				io.WriteString(w, "response")
			})
			first := f.get("/", httpcache.Miss, 1)
			wantBody := "response"
			if tc.name == "body too large" {
				wantBody = string(make([]byte, 1200)) + "response"
			}
			if b := body(t, first); b != wantBody {
				t.Errorf("first response body is %d bytes, want %d: the client must get the whole response", len(b), len(wantBody))
			}
			f.get("/", httpcache.Miss, 2)
			if n, err := f.cache.Len(t.Context()); err != nil || n != 0 {
				t.Errorf("cache holds %d entries (%v), want 0", n, err)
			}
		})
	}
}

func TestCacheableStatuses(t *testing.T) {
	for _, status := range []int{200, 204, 301, 308, 404, 410} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			f := newFixture(t, httpcache.Options{}, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "max-age=60")
				if status == 301 || status == 308 {
					w.Header().Set("Location", "/new-home")
				}
				w.WriteHeader(status)
				if status != 204 {
					io.WriteString(w, "status "+strconv.Itoa(status))
				}
			})
			f.get("/", httpcache.Miss, 1)
			resp := f.get("/", httpcache.Hit, 1)
			if resp.StatusCode != status {
				t.Errorf("cached status = %d, want %d", resp.StatusCode, status)
			}
			if status == 301 || status == 308 {
				if got := resp.Header.Get("Location"); got != "/new-home" {
					t.Errorf("cached Location = %q", got)
				}
			}
			if status == 204 {
				if got := resp.Header.Get("Content-Length"); got != "" {
					t.Errorf("cached 204 has Content-Length %q", got)
				}
			}
		})
	}
}

func TestRequestDirectives(t *testing.T) {
	version := "v1"
	f := newFixture(t, httpcache.Options{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		io.WriteString(w, version)
	})
	f.get("/doc", httpcache.Miss, 1)
	version = "v2"

	// no-store: neither served from nor stored in the cache.
	resp := f.get("/doc", httpcache.Bypass, 2, "Cache-Control", "no-store")
	if b := body(t, resp); b != "v2" {
		t.Errorf("no-store request got %q, want the origin's v2", b)
	}
	if b := body(t, f.get("/doc", httpcache.Hit, 2)); b != "v1" {
		t.Errorf("after a no-store request the cache serves %q, want the stored v1 untouched", b)
	}

	// no-cache: the origin answers and the entry is refreshed.
	if b := body(t, f.get("/doc", httpcache.Miss, 3, "Cache-Control", "no-cache")); b != "v2" {
		t.Errorf("no-cache request got %q, want v2", b)
	}
	if b := body(t, f.get("/doc", httpcache.Hit, 3)); b != "v2" {
		t.Errorf("after a no-cache request the cache serves %q, want the refreshed v2", b)
	}

	// Authorization and non-GET methods bypass the cache.
	f.get("/doc", httpcache.Bypass, 4, "Authorization", "Bearer x")
	for i, method := range []string{http.MethodPost, http.MethodHead, http.MethodDelete} {
		resp := f.do(method, "/other")
		if got := resp.Header.Get("X-Cache"); got != httpcache.Bypass {
			t.Errorf("%s: X-Cache = %q, want BYPASS", method, got)
		}
		if got := f.origin.calls.Load(); got != int64(5+i) {
			t.Errorf("%s: origin calls = %d", method, got)
		}
	}
	f.get("/other", httpcache.Miss, 8)
}

func TestFailsOpen(t *testing.T) {
	f := newFixture(t, httpcache.Options{}, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "still served")
	})
	f.cache.Close() // every cache call now fails
	resp := f.get("/", httpcache.Miss, 1)
	if b := body(t, resp); b != "still served" {
		t.Errorf("body = %q", b)
	}
	if len(f.errs) != 2 || !errors.Is(f.errs[0], cache.ErrClosed) {
		t.Errorf("OnError got %v, want the failed lookup and the failed store", f.errs)
	}
}

// TestFailClosed checks that FailClosed answers 503 for a store that is
// down, and only then: a closed cache still fails open, and a request whose
// client went away gets no answer and no handler call.
func TestFailClosed(t *testing.T) {
	store := outage.New(mem.New())
	c, err := cache.New(store)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var errs []error
	o := &origin{respond: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "expensive") }}
	h := httpcache.New(c, httpcache.Options{FailClosed: true, OnError: func(r *http.Request, err error) { errs = append(errs, err) }}).Handler(o)
	serve := func(req *http.Request) *http.Response {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Result()
	}

	// Up: a miss runs the handler.
	if resp := serve(httptest.NewRequest("GET", "/a", nil)); resp.StatusCode != 200 || o.calls.Load() != 1 {
		t.Fatalf("with the store up: status %d, origin calls %d; want 200 and 1", resp.StatusCode, o.calls.Load())
	}
	// Down: 503, the handler not called, the store's error reported.
	store.Down.Store(true)
	resp := serve(httptest.NewRequest("GET", "/b", nil))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || resp.Header.Get("X-Cache") != httpcache.Unavailable {
		t.Errorf("with the store down: status %d, Retry-After %q, X-Cache %q; want 503, 1, %s", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("X-Cache"), httpcache.Unavailable)
	}
	if o.calls.Load() != 1 {
		t.Errorf("with the store down, the origin was called (%d calls in all)", o.calls.Load())
	}
	if len(errs) != 1 || !errors.Is(errs[0], cache.ErrStorage) {
		t.Errorf("OnError got %v, want the one storage failure", errs)
	}
	// A client gone during the lookup: no answer, no handler call.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/c", nil).WithContext(ctx))
	if rec.Code != 200 || rec.Body.Len() != 0 || o.calls.Load() != 1 {
		t.Errorf("a cancelled request: status %d, body %q, origin calls %d; want nothing written and no call", rec.Code, rec.Body.String(), o.calls.Load())
	}
	// Up again, then closed: not a storage failure, so it fails open.
	store.Down.Store(false)
	c.Close()
	if resp := serve(httptest.NewRequest("GET", "/d", nil)); resp.StatusCode != 200 || o.calls.Load() != 2 {
		t.Errorf("with the cache closed: status %d, origin calls %d; want 200 and 2 (fail open)", resp.StatusCode, o.calls.Load())
	}
}

// TestOverHTTP runs the middleware in a real server: a streaming handler
// still streams, and a real client sees the cached response whole.
func TestOverHTTP(t *testing.T) {
	f := newFixture(t, httpcache.Options{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "max-age=60")
		for i := range 3 {
			io.WriteString(w, "chunk "+strconv.Itoa(i)+"\n")
			http.NewResponseController(w).Flush()
		}
	})
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	for i, want := range []string{httpcache.Miss, httpcache.Hit} {
		resp, err := srv.Client().Get(srv.URL + "/events")
		if err != nil {
			t.Fatal(err)
		}
		b := body(t, resp)
		resp.Body.Close()
		if b != "chunk 0\nchunk 1\nchunk 2\n" {
			t.Errorf("request %d: body %q", i, b)
		}
		if got := resp.Header.Get("X-Cache"); got != want {
			t.Errorf("request %d: X-Cache = %q, want %q", i, got, want)
		}
		if i == 0 && len(resp.TransferEncoding) == 0 {
			t.Errorf("the first response was not streamed (no chunked transfer encoding)")
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Errorf("request %d: Content-Type = %q", i, resp.Header.Get("Content-Type"))
		}
	}
	if n := f.origin.calls.Load(); n != 1 {
		t.Errorf("origin called %d times, want 1", n)
	}
}
