// Package gcstest runs fake-gcs-server (github.com/fsouza/fake-gcs-server,
// its in-process library fakestorage) on 127.0.0.1 for tests of the GCS
// driver, makes throwaway buckets on it, counts the requests a test sends,
// and makes conformance harnesses on it ([HarnessMaker]). Nothing needs
// installing: the server runs inside the test process, so tests never skip.
package gcstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/blobcache/blobcache/drivers/gcs"
	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// Server is a fake-gcs-server listening on 127.0.0.1.
type Server struct {
	fake *fakestorage.Server
	srv  *http.Server
	url  string
}

// Start starts a server on 127.0.0.1 on a free port and registers a cleanup
// that stops it. It serves the JSON API at URL()+"/storage/v1/" and object
// downloads (the XML API, which the Go client reads objects with) at
// URL()'s host, as GCS serves them at storage.googleapis.com.
func Start(t testing.TB) *Server {
	t.Helper()
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

// Stop stops the server.
func (s *Server) Stop() {
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

// NewBucket creates a fresh, uniquely named, empty bucket on the server.
func (s *Server) NewBucket() string {
	name := BucketName()
	s.fake.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: name})
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
