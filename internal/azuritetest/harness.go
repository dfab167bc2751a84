package azuritetest

import (
	"context"
	"testing"

	"github.com/blobcache/blobcache/conformance"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/azure"
)

// Harness is a conformance harness on one fresh container of the test
// server, made on first use (a child process of a cross-process case opens
// its parent's container and never needs its own). It is a
// [conformance.ProcessHarness]: its Locator is the container name, and the
// child reaches the same server through the environment (see the package
// documentation).
type Harness struct {
	t         *testing.T
	cfg       Config
	container string
}

// Options returns the driver options for cfg's server.
func (c Config) Options() azure.Options {
	return azure.Options{ServiceURL: c.Endpoint, Account: c.Account, Key: c.Key}
}

// MakeDriver implements [conformance.Harness]: a driver on the harness's
// container.
func (h *Harness) MakeDriver(ctx context.Context) (driver.Driver, error) {
	return azure.Open(ctx, h.Locator(), h.cfg.Options())
}

// Locator implements [conformance.ProcessHarness]: the container's name,
// created on the first call.
func (h *Harness) Locator() string {
	if h.container == "" {
		h.container = NewContainer(h.t, h.cfg)
	}
	return h.container
}

// OpenLocator implements [conformance.ProcessHarness].
func (h *Harness) OpenLocator(ctx context.Context, containerName string) (driver.Driver, error) {
	return azure.Open(ctx, containerName, h.cfg.Options())
}

// Close implements [conformance.Harness]; the container is deleted by the
// test's cleanup.
func (h *Harness) Close() {}

// HarnessMaker returns a [conformance.HarnessMaker] whose harnesses are
// fresh containers on the test server (see [Env]: without a server the test
// is skipped, or fails in CI), for conformance.Run and conformance.Compare:
//
//	conformance.Run(t, azuritetest.HarnessMaker())
func HarnessMaker() conformance.HarnessMaker {
	return func(ctx context.Context, t *testing.T) (conformance.Harness, error) {
		return &Harness{t: t, cfg: Env(t)}, nil
	}
}
