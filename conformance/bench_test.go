package conformance

import (
	"context"
	"testing"

	"github.com/blobcache/blobcache/bench"
)

// BenchmarkReference runs the benchmarks of package bench on the suite's
// reference driver (a map under a mutex, no Replacer or BatchDeleter):
//
//	go test -run XXX -bench Reference -benchmem ./conformance/
func BenchmarkReference(b *testing.B) {
	bench.RunBenchmarks(b, func(context.Context, testing.TB) (bench.Harness, error) {
		return &memHarness{s: &memStore{objs: map[string]memObject{}}}, nil
	})
}
