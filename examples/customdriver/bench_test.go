package customdriver_test

import (
	"context"
	"testing"

	"github.com/blobcache/blobcache/bench"
	"github.com/blobcache/blobcache/examples/customdriver"
)

// BenchmarkCache runs every cache operation on this driver beside the raw
// driver operation doing the same storage work, with the conformance
// harness (bench.Harness has the methods of conformance.Harness).
func BenchmarkCache(b *testing.B) {
	bench.RunBenchmarks(b, func(ctx context.Context, tb testing.TB) (bench.Harness, error) {
		return &harness{store: customdriver.NewStore()}, nil
	})
}
