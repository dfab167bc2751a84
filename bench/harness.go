package bench

import (
	"context"
	"testing"

	"gocloud.dev/blob"

	"github.com/blobcache/blobcache/driver"
)

// Harness gives the benchmarks one store. It has the methods of
// conformance.Harness, so a driver's conformance harness serves here too.
type Harness interface {
	// MakeDriver returns a driver on the harness's store. Every call on one
	// harness refers to the same store (as a second client would), which is
	// empty when the harness is made. The benchmarks close every driver
	// they make.
	MakeDriver(ctx context.Context) (driver.Driver, error)
	// Close releases the harness's resources. It is called after every
	// driver made by the harness has been closed.
	Close()
}

// HarnessMaker makes a fresh harness (an empty store). RunBenchmarks calls
// it once per group of benchmarks (operation and size) with the group's
// *testing.B, never per iteration; go test -count runs the group's
// benchmarks again on the same store. ValueMemory calls it once with its
// *testing.T.
type HarnessMaker func(ctx context.Context, tb testing.TB) (Harness, error)

// RequestCounter is implemented by harnesses that count the requests sent to
// the store by every driver and bucket they make (on S3: HTTP requests, with
// a counting http.RoundTripper; elsewhere, driver calls, with
// counting.Wrap, whose *counting.Counter is a RequestCounter). RunBenchmarks
// then reports req/op.
type RequestCounter interface {
	// Requests returns how many requests were sent so far. It only grows.
	Requests() int64
}

// BucketHarness is implemented by harnesses that can open a Go CDK bucket
// (gocloud.dev/blob) on the same store, or on a store of the same kind where
// the driver is native (fileblob beside the file driver). RunBenchmarks then
// runs the Go CDK's own operation beside each cache operation, as
// impl=gocloud.
type BucketHarness interface {
	// OpenBucket returns a bucket the benchmark closes. Its requests must be
	// counted by RequestCounter when the harness implements it.
	OpenBucket(ctx context.Context) (*blob.Bucket, error)
}

// The implementations every benchmark of RunBenchmarks compares, as the last
// element of its name (impl=...), so that
//
//	benchstat -col /impl results.txt
//
// puts them side by side.
const (
	// ImplCache is the *cache.Cache call.
	ImplCache = "cache"
	// ImplDriver is the raw driver call(s) doing the same storage work:
	// Read for Get, Write for Set, an IfAbsent Write for Add, a range Read
	// for Has, Read then Replace for Incr, List and DeleteBatch for Clear.
	ImplDriver = "driver"
	// ImplGoCDK is the Go CDK bucket doing the same work with its portable
	// API (ReadAll, WriteAll, NewRangeReader, List and Delete one by one);
	// only with a BucketHarness.
	ImplGoCDK = "gocloud"
)
