package gcs_test

import (
	"testing"

	"github.com/blobcache/blobcache/conformance"
	"github.com/blobcache/blobcache/internal/gcstest"
)

// TestConformance runs the whole suite on fake-gcs-server, started in the
// test process on 127.0.0.1, one server and bucket per harness.
func TestConformance(t *testing.T) {
	conformance.Run(t, gcstest.HarnessMaker())
}
