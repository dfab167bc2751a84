package file_test

import (
	"context"
	"testing"

	"gocloud.dev/blob/fileblob"

	"github.com/blobcache/blobcache/bench"
	"github.com/blobcache/blobcache/bench/gocdk"
)

// benchHarness is one fresh directory. Its Go CDK bucket is fileblob on
// another fresh directory, writing no attribute side files and its
// temporary files beside the objects, as the driver does.
type benchHarness struct {
	harness
	gcdkDir string
}

func (h *benchHarness) OpenBucket(context.Context) (bench.Bucket, error) {
	b, err := fileblob.OpenBucket(h.gcdkDir, &fileblob.Options{NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
	if err != nil {
		return nil, err
	}
	return gocdk.Wrap(b), nil
}

// BenchmarkCache runs the benchmarks of package bench on the file driver:
//
//	go test -run XXX -bench Cache -benchmem -count 5 ./drivers/file/ | tee file.txt
//	benchstat -col /impl file.txt
func BenchmarkCache(b *testing.B) {
	bench.RunBenchmarks(b, func(ctx context.Context, tb testing.TB) (bench.Harness, error) {
		return &benchHarness{harness: harness{dir: tb.TempDir()}, gcdkDir: tb.TempDir()}, nil
	})
}

// TestValueMemory measures Set and Get of a 64 MiB value on disk, gzip off
// and on, and holds the bound: the heap never grows by 3x the value,
// counting every byte allocated during the call (an upper bound of the peak).
func TestValueMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB values")
	}
	const size = 64 << 20
	got := bench.ValueMemory(t, func(ctx context.Context, tb testing.TB) (bench.Harness, error) {
		return &harness{dir: tb.TempDir()}, nil
	}, size)
	for what, m := range got {
		if m.Allocated >= 3*size {
			t.Errorf("%s allocated %.2fx the value, want under 3x", what, float64(m.Allocated)/size)
		}
	}
}
