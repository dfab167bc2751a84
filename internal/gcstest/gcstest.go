// Package gcstest runs fake-gcs-server (github.com/fsouza/fake-gcs-server,
// its in-process library fakestorage) on 127.0.0.1 for tests of the GCS
// driver, makes throwaway buckets on it, counts the requests a test sends,
// and makes conformance harnesses on it ([HarnessMaker]). Nothing needs
// installing: the server runs inside the test process, so tests never skip.
//
// When BLOBCACHE_GCS_ENDPOINT is set (internal/cmd/testall sets it), the
// tests use the fake-gcs-server at that URL instead, a process of its own,
// which testall installs and starts: under the race detector an in-process
// server is instrumented too (drivers/gcs's tests took 979 s so, 201 s with
// the server in its own process).
package gcstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/blobcache/blobcache/drivers/gcs"
	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// Server is a fake-gcs-server listening on 127.0.0.1.
type Server struct {
	fake *fakestorage.Server // nil for a server of another process
	srv  *http.Server
	url  string
}

// EndpointEnv names the environment variable with the URL of a running
// fake-gcs-server (http://127.0.0.1:PORT, serving downloads at that host)
// for Start to use instead of starting one.
const EndpointEnv = "BLOBCACHE_GCS_ENDPOINT"

// Start starts a server on 127.0.0.1 on a free port and registers a cleanup
// that stops it. It serves the JSON API at URL()+"/storage/v1/" and object
// downloads (the XML API, which the Go client reads objects with) at
// URL()'s host, as GCS serves them at storage.googleapis.com.
func Start(t testing.TB) *Server {
	t.Helper()
	if ep := os.Getenv(EndpointEnv); ep != "" {
		if !strings.HasPrefix(ep, "http://127.0.0.1:") {
			t.Fatalf("gcstest: %s=%q: want http://127.0.0.1:PORT", EndpointEnv, ep)
		}
		return &Server{url: strings.TrimSuffix(ep, "/")}
	}
	s, err := StartServer()
	if err != nil {
		t.Fatalf("gcstest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartServer is Start without a test: the caller stops the server.
func StartServer() (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on 127.0.0.1: %w", err)
	}
	host := l.Addr().String()
	fake, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme:     "http",
		Host:       "127.0.0.1",
		NoListener: true,
		// Downloads go to the endpoint's host (the Go client's XML reads):
		// fake-gcs-server serves them only for its public host.
		PublicHost:  host,
		ExternalURL: "http://" + host,
	})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("start fake-gcs-server: %w", err)
	}
	s := &Server{fake: fake, url: "http://" + host}
	s.srv = &http.Server{Handler: fake.HTTPHandler(), ReadHeaderTimeout: time.Minute}
	go s.srv.Serve(l)
	return s, nil
}

// URL is the server's base URL, http://127.0.0.1:PORT: the driver's
// Options.Endpoint (and the gs:// URL's endpoint parameter).
func (s *Server) URL() string { return s.url }

// Stop stops the server (one of another process keeps running).
func (s *Server) Stop() {
	if s.fake == nil {
		return
	}
	s.srv.Close()
	s.fake.Stop()
}

// Options returns driver options that reach the server, sending requests
// through rt (http.DefaultTransport when nil).
func (s *Server) Options(rt http.RoundTripper) gcs.Options {
	o := gcs.Options{Endpoint: s.url}
	if rt != nil {
		o.HTTPClient = &http.Client{Transport: rt}
	}
	return o
}

// BucketName returns a fresh bucket name: "bct-" and 16 random hex digits.
func BucketName() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "bct-" + hex.EncodeToString(b[:])
}

// NewBucket creates a fresh, uniquely named, empty bucket on the server. It
// panics when the server refuses (a broken test setup, for callers
// without a testing.TB such as examples).
func (s *Server) NewBucket() string {
	name := BucketName()
	if s.fake != nil {
		s.fake.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: name})
		return name
	}
	// The JSON API's buckets.insert.
	body := strings.NewReader(fmt.Sprintf(`{"name":%q}`, name))
	resp, err := http.Post(s.url+"/storage/v1/b?project=test", "application/json", body)
	if err != nil {
		panic(fmt.Sprintf("gcstest: creating bucket %s at %s: %v", name, s.url, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		panic(fmt.Sprintf("gcstest: creating bucket %s at %s: %s: %s", name, s.url, resp.Status, msg))
	}
	return name
}

// Open opens a driver on the bucket of the server.
func (s *Server) Open(ctx context.Context, bucket string, rt http.RoundTripper) (*gcs.Driver, error) {
	return gcs.Open(ctx, bucket, s.Options(rt))
}

// Locator names a bucket of a server for another process:
// "<server URL> <bucket>".
func Locator(serverURL, bucket string) string { return serverURL + " " + bucket }

// ParseLocator splits a [Locator].
func ParseLocator(loc string) (serverURL, bucket string, err error) {
	serverURL, bucket, ok := strings.Cut(loc, " ")
	if !ok || !strings.HasPrefix(serverURL, "http://127.0.0.1:") || bucket == "" {
		return "", "", errors.New("gcstest: malformed locator " + fmt.Sprintf("%q", loc) + ` (want "http://127.0.0.1:PORT bucket")`)
	}
	return serverURL, bucket, nil
}
