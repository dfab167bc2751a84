// Package faultproxy is an HTTP reverse proxy for tests that injects faults
// between a client (the S3 driver) and a server (MinIO), both on the loopback
// interface.
//
// A Proxy listens on 127.0.0.1:0 and forwards every request, unchanged (the
// Host header included, so AWS signatures stay valid), to its target, which
// must be a loopback address. A [Rule] set with [Proxy.Set] makes some
// requests fail instead, chosen with a probability or as "the next N
// requests", optionally only those a Match function selects:
//
//	Reset        the client connection is reset (RST) before the request is
//	             forwarded: the request never reaches the server
//	ResetAfter   the request is forwarded and answered, then the client
//	             connection is reset instead of relaying the answer: the
//	             request took effect but the client cannot know
//	Status500    a 500 InternalError answer with an S3 XML error body
//	SlowDown     a 503 SlowDown answer with an S3 XML error body (throttling)
//	Latency      the request waits Rule.Delay before it is forwarded
//	Truncate     the answer is relayed with its Content-Length but only half
//	             its body (none of an empty one), then the connection closes
//	Stall        the connection is accepted and never answered; it is held
//	             until the client gives up or the proxy closes
//
// Rules can be changed at any time; [Proxy.Clear] ends the fault. Close stops
// the proxy, closes every connection (held ones included) and waits for its
// goroutines, so tests can check for leaks afterwards.
package faultproxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault is a kind of injected failure.
type Fault int

// The faults a Rule can inject.
const (
	None Fault = iota
	Reset
	ResetAfter
	Status500
	SlowDown
	Latency
	Truncate
	Stall
)

var faultNames = [...]string{"none", "reset", "reset-after", "500", "503-slowdown", "latency", "truncate", "stall"}

// String names the fault.
func (f Fault) String() string {
	if f >= 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return "fault(" + strconv.Itoa(int(f)) + ")"
}

// Rule says which requests fail and how.
type Rule struct {
	// Fault is what happens to a chosen request.
	Fault Fault
	// Probability chooses each matching request with this probability (0 to
	// 1), when Next is 0.
	Probability float64
	// Next, when positive, chooses the next Next matching requests, after
	// which the rule is spent and requests pass again.
	Next int
	// Delay is the added latency of a Latency fault.
	Delay time.Duration
	// Match, when set, limits the rule to the requests it returns true for.
	Match func(*http.Request) bool
}

// Stats counts what the proxy did.
type Stats struct {
	// Requests is every request the proxy received.
	Requests int
	// Forwarded is the requests sent to the target (including those of a
	// ResetAfter, Truncate or Latency fault).
	Forwarded int
	// Faults counts the requests each fault was applied to.
	Faults map[Fault]int
	// UpstreamErrors counts forwarded requests that failed between the
	// proxy and the target (answered 502 Bad Gateway when the client still
	// waits).
	UpstreamErrors int
}

// Proxy is a fault-injecting reverse proxy. It is safe for concurrent use.
type Proxy struct {
	target *url.URL
	ln     net.Listener
	srv    *http.Server
	tr     *http.Transport
	url    string

	mu       sync.Mutex
	rule     Rule
	active   bool
	rng      *rand.Rand
	stats    Stats
	held     map[net.Conn]struct{} // hijacked connections
	closed   bool
	handlers sync.WaitGroup
	serveErr chan error
}

// New starts a proxy on 127.0.0.1 (a free port) in front of target, a base
// URL such as http://127.0.0.1:9000, whose host must be a loopback address.
func New(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: target: %w", err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("faultproxy: target %q: only http:// targets are supported", target)
	}
	if !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("faultproxy: target %q is not a loopback address", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{
		target: u,
		ln:     ln,
		url:    "http://" + ln.Addr().String(),
		rng:    rand.New(rand.NewPCG(1, 2)),
		held:   map[net.Conn]struct{}{},
		stats:  Stats{Faults: map[Fault]int{}},
		tr: &http.Transport{
			// Pass bodies through byte for byte: never ask for or decode
			// a compressed answer behind the client's back.
			DisableCompression:  true,
			MaxIdleConnsPerHost: 128,
			IdleConnTimeout:     30 * time.Second,
			DialContext: (&net.Dialer{
				Timeout:   5 * time.Second,
				KeepAlive: -1,
			}).DialContext,
		},
		serveErr: make(chan error, 1),
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { p.serveErr <- p.srv.Serve(ln) }()
	return p, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// URL returns the proxy's base URL, http://127.0.0.1:port, to use as the
// client's endpoint.
func (p *Proxy) URL() string { return p.url }

// Set replaces the active rule.
func (p *Proxy) Set(r Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rule, p.active = r, r.Fault != None
}

// Clear removes the active rule: every request passes from now on.
// Requests already held by a fault are not released.
func (p *Proxy) Clear() { p.Set(Rule{}) }

// Stats returns the counts since the proxy started or ResetStats.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Faults = make(map[Fault]int, len(p.stats.Faults))
	for k, v := range p.stats.Faults {
		s.Faults[k] = v
	}
	return s
}

// ResetStats zeroes the counts.
func (p *Proxy) ResetStats() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats = Stats{Faults: map[Fault]int{}}
}

// choose decides the fault for r and counts it.
func (p *Proxy) choose(r *http.Request) (Fault, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Requests++
	if !p.active || (p.rule.Match != nil && !p.rule.Match(r)) {
		return None, 0
	}
	hit := false
	switch {
	case p.rule.Next > 0:
		p.rule.Next--
		if p.rule.Next == 0 {
			p.active = false
		}
		hit = true
	case p.rule.Probability > 0:
		hit = p.rng.Float64() < p.rule.Probability
	}
	if !hit {
		return None, 0
	}
	p.stats.Faults[p.rule.Fault]++
	return p.rule.Fault, p.rule.Delay
}

func (p *Proxy) countForward() {
	p.mu.Lock()
	p.stats.Forwarded++
	p.mu.Unlock()
}

// serve handles one request.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		http.Error(w, "faultproxy closed", http.StatusServiceUnavailable)
		return
	}
	p.handlers.Add(1)
	p.mu.Unlock()
	defer p.handlers.Done()

	fault, delay := p.choose(r)
	switch fault {
	case Reset:
		p.hijack(w, func(c net.Conn, _ *bufio.ReadWriter) { resetConn(c) })
		return
	case Stall:
		p.hijack(w, func(c net.Conn, _ *bufio.ReadWriter) {
			// Never answer: consume whatever the client sends until it
			// closes the connection or the proxy closes it.
			io.Copy(io.Discard, c)
			c.Close()
		})
		return
	case Status500:
		writeS3Error(w, r, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return
	case SlowDown:
		writeS3Error(w, r, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
		return
	case Latency:
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return // the client gave up: the request is never forwarded
		}
	}

	resp, err := p.forward(r)
	if err != nil {
		p.mu.Lock()
		p.stats.UpstreamErrors++
		p.mu.Unlock()
		if r.Context().Err() == nil {
			http.Error(w, "faultproxy: upstream: "+err.Error(), http.StatusBadGateway)
		}
		return
	}
	defer resp.Body.Close()

	switch fault {
	case ResetAfter:
		io.Copy(io.Discard, resp.Body) // the server has answered in full
		p.hijack(w, func(c net.Conn, _ *bufio.ReadWriter) { resetConn(c) })
		return
	case Truncate:
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			p.hijack(w, func(c net.Conn, _ *bufio.ReadWriter) { resetConn(c) })
			return
		}
		p.hijack(w, func(c net.Conn, bw *bufio.ReadWriter) {
			writeTruncated(bw.Writer, r, resp, body)
			bw.Flush()
			c.Close()
		})
		return
	}
	h := w.Header()
	for k, vs := range resp.Header {
		if isHopByHop(k) {
			continue
		}
		h[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// forward sends r to the target and returns the answer.
func (p *Proxy) forward(r *http.Request) (*http.Response, error) {
	p.countForward()
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.target.Scheme+"://"+p.target.Host+r.RequestURI, nil)
	if err != nil {
		return nil, err
	}
	out.Header = make(http.Header, len(r.Header))
	for k, vs := range r.Header {
		if isHopByHop(k) {
			continue
		}
		out.Header[k] = vs
	}
	// Keep the Host the client signed.
	out.Host = r.Host
	if r.ContentLength != 0 {
		out.Body = r.Body
		out.ContentLength = r.ContentLength
	}
	return p.tr.RoundTrip(out)
}

// hijack takes the connection of w, registers it so Close can end it, and
// runs f, which must close it.
func (p *Proxy) hijack(w http.ResponseWriter, f func(net.Conn, *bufio.ReadWriter)) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "faultproxy: cannot hijack", http.StatusInternalServerError)
		return
	}
	c, bw, err := hj.Hijack()
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.held[c] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.held, c)
		p.mu.Unlock()
	}()
	f(c, bw)
}

// resetConn closes c with a TCP RST rather than a FIN.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func isHopByHop(k string) bool {
	for _, h := range hopByHop {
		if strings.EqualFold(k, h) {
			return true
		}
	}
	return false
}

// writeS3Error answers with an S3 error document.
func writeS3Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	// Drain a little of the request so the client sees the answer rather
	// than a reset when it is still sending.
	io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>%s</Code><Message>%s</Message><Resource>%s</Resource><RequestId>faultproxy</RequestId><HostId>faultproxy</HostId></Error>`,
		code, msg, xmlEscape(r.URL.Path))
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("X-Amz-Request-Id", "faultproxy")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		io.WriteString(w, body)
	}
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// writeTruncated writes resp as a raw HTTP/1.1 answer whose Content-Length
// is the whole body's (at least 16) but which carries only half of it.
func writeTruncated(w *bufio.Writer, r *http.Request, resp *http.Response, body []byte) {
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\n", resp.StatusCode, http.StatusText(resp.StatusCode))
	h := resp.Header.Clone()
	for _, k := range hopByHop {
		h.Del(k)
	}
	h.Set("Content-Length", strconv.Itoa(max(len(body), 16)))
	h.Set("Connection", "close")
	h.Write(w)
	io.WriteString(w, "\r\n")
	if r.Method != http.MethodHead {
		w.Write(body[:len(body)/2])
	}
}

// Close stops the proxy: it stops listening, closes every connection,
// including those a fault holds, waits for its request handlers and closes
// its idle connections to the target.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errors.New("faultproxy: already closed")
	}
	p.closed = true
	for c := range p.held {
		c.Close()
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.srv.Shutdown(ctx); err != nil {
		p.srv.Close()
	}
	if err := <-p.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	p.handlers.Wait()
	p.tr.CloseIdleConnections()
	return nil
}
