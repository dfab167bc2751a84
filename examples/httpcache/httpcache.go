// Package httpcache is net/http middleware that caches GET responses in a
// blobcache: a shared cache in front of a handler, whose entries can live in
// S3 so that every instance of a service shares them.
//
//	c, err := cache.Open(ctx, "s3://my-bucket?location=http&max_entries=100000")
//	...
//	http.ListenAndServe(":8080", httpcache.New(c, httpcache.Options{}).Handler(mux))
//
// A response is stored (status, headers and body) and served to later GET
// requests for the same host and URL (path and query, byte for byte) when all
// of these hold:
//
//   - the request is a GET without Authorization and without Cache-Control
//     no-store;
//   - the status is one RFC 9110 calls cacheable by default (200, 203, 204,
//     300, 301, 308, 404, 405, 410, 414, 501);
//   - the response's Cache-Control has none of no-store, private, no-cache,
//     and its freshness (s-maxage, else max-age, else Expires, else
//     Options.DefaultTTL) is positive; the freshness becomes the entry's TTL;
//   - the response sets no cookie (Set-Cookie) and has no Vary header (the
//     cache keys by URL only, so it cannot keep variants apart);
//   - the body is at most Options.MaxBodyBytes.
//
// A request with Cache-Control no-cache skips the lookup and refreshes the
// entry from the handler. Responses served from the cache carry an Age header
// and, like every response that passes through, an X-Cache header: HIT, MISS
// (looked up, not found) or BYPASS (not cacheable as a request). Hop-by-hop
// headers (Connection, Transfer-Encoding, ...) are never stored.
//
// The middleware fails open: when the cache cannot be read or written, the
// request is served by the handler and the error goes to Options.OnError.
// With Options.FailClosed, a lookup that failed because the store failed
// (errors.Is(err, cache.ErrStorage)) answers 503 Service Unavailable
// instead, for handlers too costly to run for every request while the store
// is down; every other failure still fails open, and a request whose client
// went away while it was looked up gets no answer at all.
package httpcache

import (
	"context"
	"errors"
	"log"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/blobcache/blobcache/cache"
)

// Options configure a Middleware. The zero value is usable.
type Options struct {
	// DefaultTTL is how long a cacheable response without s-maxage,
	// max-age or Expires is kept. Zero means the cache's configured default
	// (cache.DefaultTTL); a negative value means such responses are not
	// stored.
	DefaultTTL time.Duration
	// MaxBodyBytes is the largest body stored (default 1 MiB). A larger
	// response is still served, only not stored.
	MaxBodyBytes int64
	// KeyPrefix starts every cache key (default "httpcache:"), so one cache
	// can hold other entries too.
	KeyPrefix string
	// Now is the clock for the Age header and Expires (default time.Now);
	// tests pass the same clock as cache.WithClock.
	Now func() time.Time
	// OnError is told about cache failures, after which the request is
	// served by the handler (or answered 503, see FailClosed). The default
	// logs them with log.Printf.
	OnError func(r *http.Request, err error)
	// FailClosed makes a lookup that failed because the store failed
	// (errors.Is(err, cache.ErrStorage): the store unreachable, a server
	// error) answer 503 Service Unavailable with Retry-After: 1 and X-Cache
	// UNAVAILABLE, without calling the handler. Other failures (a closed
	// cache, an entry that does not decode) still fail open.
	FailClosed bool
}

// Middleware caches the responses of the handlers it wraps.
type Middleware struct {
	store *cache.Typed[entry]
	opts  Options
}

// New returns middleware storing responses in c, which it does not close.
func New(c *cache.Cache, opts Options) *Middleware {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = "httpcache:"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OnError == nil {
		opts.OnError = func(r *http.Request, err error) {
			log.Printf("httpcache: %s %s: %v", r.Method, r.URL.RequestURI(), err)
		}
	}
	// Gob, not JSON: bodies stay bytes, and gob decodes data only.
	return &Middleware{store: cache.NewTyped[entry](c, cache.Gob[entry]{}), opts: opts}
}

// entry is a stored response.
type entry struct {
	Status int
	Header http.Header
	Body   []byte
	Stored time.Time
}

// Values of the X-Cache response header.
const (
	// Hit means the response came from the cache.
	Hit = "HIT"
	// Miss means the response came from the handler after a lookup that
	// found nothing (or was skipped by request no-cache); it was stored if
	// cacheable.
	Miss = "MISS"
	// Bypass means the request was not one the cache serves (not GET,
	// Authorization, no-store): the handler answered and nothing was stored.
	Bypass = "BYPASS"
	// Unavailable means the lookup failed because the store failed and
	// Options.FailClosed is set: the answer is 503 and the handler was not
	// called.
	Unavailable = "UNAVAILABLE"
)

// Handler wraps next with the cache.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqCC := parseCacheControl(r.Header.Values("Cache-Control"))
		if r.Method != http.MethodGet || r.Header.Get("Authorization") != "" || reqCC.has("no-store") {
			w.Header().Set("X-Cache", Bypass)
			next.ServeHTTP(w, r)
			return
		}
		key := m.opts.KeyPrefix + r.Host + r.URL.RequestURI()
		if !reqCC.has("no-cache") {
			e, err := m.store.Get(r.Context(), key)
			switch {
			case err == nil:
				m.serve(w, e)
				return
			case !errors.Is(err, cache.ErrMiss):
				m.opts.OnError(r, err)
				if ctx := r.Context(); ctx.Err() != nil && errors.Is(err, ctx.Err()) {
					return // the client went away: there is no one to answer
				}
				if m.opts.FailClosed && errors.Is(err, cache.ErrStorage) {
					w.Header().Set("X-Cache", Unavailable)
					w.Header().Set("Retry-After", "1")
					http.Error(w, "the cache's store is unavailable", http.StatusServiceUnavailable)
					return
				}
			}
		}
		rec := &recorder{ResponseWriter: w, limit: m.opts.MaxBodyBytes}
		w.Header().Set("X-Cache", Miss)
		next.ServeHTTP(rec, r)
		if !rec.wroteHeader {
			rec.WriteHeader(http.StatusOK) // as net/http does for a handler that wrote nothing
		}
		ttl, ok := m.ttl(rec)
		if !ok {
			return
		}
		e := entry{Status: rec.status, Header: storedHeader(rec.header), Body: rec.body, Stored: m.opts.Now()}
		// The client has its response; storing must not depend on it
		// staying connected.
		ctx := context.WithoutCancel(r.Context())
		if err := m.store.Set(ctx, key, e, ttl); err != nil {
			m.opts.OnError(r, err)
		}
	})
}

// serve writes a stored response.
func (m *Middleware) serve(w http.ResponseWriter, e entry) {
	h := w.Header()
	for k, vs := range e.Header {
		h[k] = append([]string(nil), vs...)
	}
	age := max(0, m.opts.Now().Sub(e.Stored)) / time.Second
	h.Set("Age", strconv.FormatInt(int64(age), 10))
	h.Set("X-Cache", Hit)
	if e.Status != http.StatusNoContent {
		h.Set("Content-Length", strconv.Itoa(len(e.Body)))
	}
	w.WriteHeader(e.Status)
	if len(e.Body) > 0 {
		w.Write(e.Body)
	}
}

// cacheableStatus are the status codes RFC 9110 (section 15.1) makes
// heuristically cacheable.
var cacheableStatus = map[int]bool{
	200: true, 203: true, 204: true, 300: true, 301: true, 308: true,
	404: true, 405: true, 410: true, 414: true, 501: true,
}

// ttl decides whether the recorded response is stored, and for how long.
func (m *Middleware) ttl(rec *recorder) (time.Duration, bool) {
	if !cacheableStatus[rec.status] || rec.tooBig {
		return 0, false
	}
	h := rec.header
	if len(h.Values("Set-Cookie")) > 0 || len(h.Values("Vary")) > 0 {
		return 0, false
	}
	cc := parseCacheControl(h.Values("Cache-Control"))
	if cc.has("no-store") || cc.has("private") || cc.has("no-cache") {
		return 0, false
	}
	for _, directive := range []string{"s-maxage", "max-age"} {
		if v, ok := cc[directive]; ok {
			secs, err := strconv.ParseInt(v, 10, 64)
			if err != nil || secs <= 0 {
				return 0, false // unparsable or already stale: not stored
			}
			return time.Duration(min(secs, int64(100*365*24*3600))) * time.Second, true
		}
	}
	if v := h.Get("Expires"); v != "" {
		t, err := http.ParseTime(v)
		if err != nil {
			return 0, false // RFC 9111: an invalid Expires means already expired
		}
		d := t.Sub(m.opts.Now())
		return d, d > 0
	}
	if m.opts.DefaultTTL < 0 {
		return 0, false
	}
	return m.opts.DefaultTTL, true // 0 is cache.DefaultTTL
}

// hopByHop are headers that describe one connection, not the response.
var hopByHop = []string{
	"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade", "X-Cache", "Age",
}

// storedHeader is the part of a response's header worth storing.
func storedHeader(h http.Header) http.Header {
	out := h.Clone()
	for _, f := range out.Values("Connection") {
		for name := range strings.SplitSeq(f, ",") {
			out.Del(strings.TrimSpace(name))
		}
	}
	for _, name := range hopByHop {
		out.Del(name)
	}
	return out
}

// cacheControl is a parsed Cache-Control header: directive names in lower
// case, with their values ("" when none).
type cacheControl map[string]string

func (cc cacheControl) has(directive string) bool {
	_, ok := cc[directive]
	return ok
}

// parseCacheControl parses every Cache-Control field line.
func parseCacheControl(lines []string) cacheControl {
	cc := cacheControl{}
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			if _, dup := cc[name]; !dup { // the first occurrence wins
				cc[name] = strings.Trim(strings.TrimSpace(value), `"`)
			}
		}
	}
	return cc
}

// recorder passes a response through to the client and keeps a copy of it,
// up to a limit, for the cache.
type recorder struct {
	http.ResponseWriter
	limit       int64
	wroteHeader bool
	status      int
	header      http.Header // snapshot at WriteHeader
	body        []byte
	tooBig      bool
}

// WriteHeader implements http.ResponseWriter.
func (r *recorder) WriteHeader(status int) {
	if r.wroteHeader {
		return
	}
	if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		r.ResponseWriter.WriteHeader(status) // informational: not the response
		return
	}
	r.wroteHeader = true
	r.status = status
	r.header = r.ResponseWriter.Header().Clone()
	r.ResponseWriter.WriteHeader(status)
}

// Write implements http.ResponseWriter.
func (r *recorder) Write(p []byte) (int, error) {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	if !r.tooBig {
		if int64(len(r.body)+len(p)) > r.limit {
			r.tooBig, r.body = true, nil
		} else {
			r.body = append(r.body, p...)
		}
	}
	return r.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the client's writer (Flush,
// deadlines).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush implements http.Flusher for handlers that stream.
func (r *recorder) Flush() {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(r.ResponseWriter).Flush()
}
