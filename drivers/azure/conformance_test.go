package azure_test

import (
	"testing"

	"github.com/blobcache/blobcache/conformance"
	"github.com/blobcache/blobcache/internal/azuritetest"
)

// TestMain stops the Azurite the tests started (azuritetest starts it on
// first use; a cross-process case's children reuse it through the
// environment).
func TestMain(m *testing.M) { azuritetest.Main(m) }

func TestConformance(t *testing.T) {
	conformance.Run(t, azuritetest.HarnessMaker())
}
