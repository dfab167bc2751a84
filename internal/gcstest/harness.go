package gcstest

import (
	"context"
	"sync"
	"testing"

	"github.com/blobcache/blobcache/conformance"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/gcs"
)

// Harness is a conformance harness on one fresh bucket of a fake-gcs-server
// started for it (lazily, on first use: a child process of a cross-process
// case opens its parent's server through OpenLocator and starts none). It
// implements [conformance.ProcessHarness] and the [conformance.StoreLimits]
// that fake-gcs-server needs (none at present: see the methods below).
type Harness struct {
	t      *testing.T
	mu     sync.Mutex
	srv    *Server
	bucket string
}

// HarnessMaker returns the maker of [Harness]es: each gets its own server
// on 127.0.0.1 and a fresh bucket. The lead's cross-driver comparison can
// call it as conformance.Compare(t, map[string]conformance.HarnessMaker{
// "gcs": gcstest.HarnessMaker(), ...}).
func HarnessMaker() conformance.HarnessMaker {
	return func(ctx context.Context, t *testing.T) (conformance.Harness, error) {
		return &Harness{t: t}, nil
	}
}

// store starts the server and makes the bucket, once.
func (h *Harness) store() (*Server, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.srv == nil {
		h.srv = Start(h.t)
		h.bucket = h.srv.NewBucket()
	}
	return h.srv, h.bucket
}

// MakeDriver implements [conformance.Harness]: a driver on the harness's
// bucket, opened as a second client would open it.
func (h *Harness) MakeDriver(ctx context.Context) (driver.Driver, error) {
	srv, bucket := h.store()
	return srv.Open(ctx, bucket, nil)
}

// Close implements [conformance.Harness]. The server stops in the test's
// cleanup.
func (h *Harness) Close() {}

// Locator implements [conformance.ProcessHarness]: the server's URL and the
// bucket ([Locator]).
func (h *Harness) Locator() string {
	srv, bucket := h.store()
	return Locator(srv.URL(), bucket)
}

// OpenLocator implements [conformance.ProcessHarness]: a driver on the
// bucket a Locator names, on the parent's server.
func (h *Harness) OpenLocator(ctx context.Context, loc string) (driver.Driver, error) {
	serverURL, bucket, err := ParseLocator(loc)
	if err != nil {
		return nil, err
	}
	return gcs.Open(ctx, bucket, gcs.Options{Endpoint: serverURL})
}

var _ conformance.ProcessHarness = (*Harness)(nil)
