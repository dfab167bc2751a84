package s3_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"gocloud.dev/blob/s3blob"

	"github.com/blobcache/blobcache/bench"
	"github.com/blobcache/blobcache/bench/gocdk"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/s3"
	"github.com/blobcache/blobcache/internal/s3test"
)

// benchTransport sends every benchmark request: one pool of connections
// (100 per host, so that concurrent benchmarks do not reconnect), shared by
// the cache, the raw driver and the Go CDK bucket alike.
var benchTransport = func() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 200
	t.MaxIdleConnsPerHost = 100
	return t
}()

// requestCounter counts requests with one atomic add: unlike
// s3test.CountingTransport it keeps no record of each request, so that
// long benchmarks neither grow nor pay for copying headers.
type requestCounter struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (c *requestCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(req)
}

// benchHarness is one fresh bucket on the test server, every request to it
// counted.
type benchHarness struct {
	tb     testing.TB
	cfg    s3test.Config
	bucket string
	rc     *requestCounter
}

func newBenchHarness(tb testing.TB) *benchHarness {
	cfg := s3test.Env(tb)
	return &benchHarness{tb: tb, cfg: cfg, bucket: s3test.NewBucket(tb, cfg), rc: &requestCounter{base: benchTransport}}
}

func (h *benchHarness) options() s3.Options {
	return s3.Options{
		Endpoint:     h.cfg.Endpoint,
		Region:       h.cfg.Region,
		UsePathStyle: true,
		AccessKey:    h.cfg.AccessKey,
		SecretKey:    h.cfg.SecretKey,
		HTTPClient:   &http.Client{Transport: h.rc},
	}
}

func (h *benchHarness) MakeDriver(ctx context.Context) (driver.Driver, error) {
	return s3.Open(ctx, h.bucket, h.options())
}

// OpenBucket returns a plain s3blob bucket on the same bucket, configured as
// the driver's (checksums only where required).
func (h *benchHarness) OpenBucket(ctx context.Context) (bench.Bucket, error) {
	client := s3test.Client(h.tb, h.cfg, h.rc)
	b, err := s3blob.OpenBucket(ctx, client, h.bucket, &s3blob.Options{
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})
	if err != nil {
		return nil, err
	}
	return gocdk.Wrap(b), nil
}

func (h *benchHarness) Requests() int64     { return h.rc.n.Load() }
func (h *benchHarness) FolderObjects() bool { return false }
func (h *benchHarness) Close()              {}

// BenchmarkCache runs the benchmarks of package bench on S3 (MinIO), each cache
// call beside the driver's and s3blob's own, with requests per operation:
//
//	go run ./internal/cmd/testall -race=false -run XXX -bench Cache -benchmem -count 5 ./drivers/s3/
//
// or with BLOBCACHE_S3_* set, go test -run XXX -bench Cache -benchmem ./drivers/s3/.
func BenchmarkCache(b *testing.B) {
	bench.RunBenchmarks(b, func(ctx context.Context, tb testing.TB) (bench.Harness, error) {
		return newBenchHarness(tb), nil
	})
}

// TestValueMemory measures Set and Get of a 64 MiB value on S3 (MinIO), gzip
// off and on, and holds the bound: the heap never grows by 3x the
// value, counting every byte allocated during the call (an upper bound of the
// peak).
func TestValueMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB values")
	}
	const size = 64 << 20
	h := newBenchHarness(t)
	got := bench.ValueMemory(t, func(context.Context, testing.TB) (bench.Harness, error) { return h, nil }, size)
	for what, m := range got {
		if what == "Set/driver" || what == "Get/driver" {
			continue
		}
		if m.Allocated >= 3*size {
			t.Errorf("%s allocated %.2fx the value, want under 3x", what, float64(m.Allocated)/size)
		}
	}
}
