package faultproxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// backend is a loopback server that counts the requests reaching it and
// answers GET with a fixed body.
type backend struct {
	srv   *httptest.Server
	hits  atomic.Int32
	hosts chan string
}

const body = "0123456789abcdefghijklmnopqrstuvwxyz"

func newBackend(t *testing.T) *backend {
	b := &backend{hosts: make(chan string, 1000)}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		b.hosts <- r.Host
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		if r.Method == http.MethodGet {
			io.WriteString(w, body)
		}
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// setup starts a backend and a proxy in front of it, and a client without
// keep-alive (so no idle connection outlives a test).
func setup(t *testing.T) (*backend, *Proxy, *http.Client) {
	t.Helper()
	b := newBackend(t)
	p, err := New(b.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return b, p, &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

func get(ctx context.Context, c *http.Client, url string) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewRefusesNonLoopback(t *testing.T) {
	for _, target := range []string{"http://example.com", "http://10.0.0.1:9000", "https://127.0.0.1:9000", "::"} {
		if p, err := New(target); err == nil {
			p.Close()
			t.Errorf("New(%q) succeeded, want an error", target)
		}
	}
	p, err := New("http://localhost:1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.URL(), "http://127.0.0.1:") {
		t.Errorf("URL() = %q, want a 127.0.0.1 address", p.URL())
	}
	p.Close()
}

func TestPassThrough(t *testing.T) {
	b, p, c := setup(t)
	got, status, err := get(t.Context(), c, p.URL()+"/bucket/key?x=1")
	if err != nil || status != 200 || got != body {
		t.Fatalf("GET through the proxy = %q, %d, %v", got, status, err)
	}
	if host := <-b.hosts; host != strings.TrimPrefix(p.URL(), "http://") {
		t.Errorf("the backend saw Host %q, want the proxy's %q (signatures cover it)", host, p.URL())
	}
	if s := p.Stats(); s.Requests != 1 || s.Forwarded != 1 || len(s.Faults) != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestFaults(t *testing.T) {
	cases := []struct {
		fault     Fault
		reachesUp bool // the backend sees the request
		check     func(t *testing.T, got string, status int, err error)
	}{
		{Reset, false, func(t *testing.T, got string, status int, err error) {
			if err == nil {
				t.Errorf("got %q, %d; want a connection error", got, status)
			}
		}},
		{ResetAfter, true, func(t *testing.T, got string, status int, err error) {
			if err == nil {
				t.Errorf("got %q, %d; want a connection error", got, status)
			}
		}},
		{Status500, false, func(t *testing.T, got string, status int, err error) {
			if err != nil || status != 500 || !strings.Contains(got, "<Code>InternalError</Code>") {
				t.Errorf("got %q, %d, %v; want a 500 InternalError document", got, status, err)
			}
		}},
		{SlowDown, false, func(t *testing.T, got string, status int, err error) {
			if err != nil || status != 503 || !strings.Contains(got, "<Code>SlowDown</Code>") {
				t.Errorf("got %q, %d, %v; want a 503 SlowDown document", got, status, err)
			}
		}},
		{Truncate, true, func(t *testing.T, got string, status int, err error) {
			if !errors.Is(err, io.ErrUnexpectedEOF) || got != body[:len(body)/2] {
				t.Errorf("got %q, %d, %v; want half the body and an unexpected EOF", got, status, err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.fault.String(), func(t *testing.T) {
			b, p, c := setup(t)
			p.Set(Rule{Fault: tc.fault, Next: 1})
			got, status, err := get(t.Context(), c, p.URL()+"/k")
			tc.check(t, got, status, err)
			if up := b.hits.Load() == 1; up != tc.reachesUp {
				t.Errorf("backend saw the request: %v, want %v", up, tc.reachesUp)
			}
			// The rule is spent: the next request passes.
			if got, status, err := get(t.Context(), c, p.URL()+"/k"); err != nil || status != 200 || got != body {
				t.Errorf("request after the fault = %q, %d, %v", got, status, err)
			}
			if s := p.Stats(); s.Faults[tc.fault] != 1 || s.Requests != 2 {
				t.Errorf("stats = %+v", s)
			}
		})
	}
}

func TestLatency(t *testing.T) {
	b, p, c := setup(t)
	p.Set(Rule{Fault: Latency, Probability: 1, Delay: 200 * time.Millisecond})
	start := time.Now()
	if got, _, err := get(t.Context(), c, p.URL()+"/k"); err != nil || got != body {
		t.Fatalf("delayed request = %q, %v", got, err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("delayed request took %v, want at least 200ms", took)
	}
	// A caller that gives up during the delay: the request is never
	// forwarded.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := get(ctx, c, p.URL()+"/k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("request with a 50ms deadline = %v, want its deadline", err)
	}
	p.Clear()
	time.Sleep(250 * time.Millisecond)
	if n := b.hits.Load(); n != 1 {
		t.Errorf("backend saw %d requests, want 1 (the abandoned one is not forwarded)", n)
	}
}

func TestStall(t *testing.T) {
	b, p, c := setup(t)
	p.Set(Rule{Fault: Stall, Next: 2})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := get(ctx, c, p.URL()+"/k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stalled request = %v, want its deadline", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the stalled request returned after %v", took)
	}
	// A caller without a deadline is held until the proxy closes.
	done := make(chan error, 1)
	go func() { _, _, err := get(context.Background(), c, p.URL()+"/k"); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("stalled request returned %v before the proxy closed", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("stalled request succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the stalled connection")
	}
	if n := b.hits.Load(); n != 0 {
		t.Errorf("backend saw %d requests, want none", n)
	}
}

func TestProbabilityAndMatch(t *testing.T) {
	_, p, c := setup(t)
	p.Set(Rule{Fault: Status500, Probability: 0.5})
	fails := 0
	const n = 400
	for range n {
		if _, status, err := get(t.Context(), c, p.URL()+"/k"); err != nil {
			t.Fatal(err)
		} else if status == 500 {
			fails++
		}
	}
	if fails < n/4 || fails > 3*n/4 {
		t.Errorf("p=0.5 failed %d of %d requests", fails, n)
	}
	p.Set(Rule{Fault: Status500, Probability: 1, Match: func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/bad") }})
	if _, status, _ := get(t.Context(), c, p.URL()+"/good"); status != 200 {
		t.Errorf("unmatched request: %d", status)
	}
	if _, status, _ := get(t.Context(), c, p.URL()+"/bad"); status != 500 {
		t.Errorf("matched request: %d", status)
	}
	p.Clear()
	if _, status, _ := get(t.Context(), c, p.URL()+"/bad"); status != 200 {
		t.Errorf("after Clear: %d", status)
	}
	p.ResetStats()
	if s := p.Stats(); s.Requests != 0 {
		t.Errorf("stats after ResetStats = %+v", s)
	}
}
