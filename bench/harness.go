package bench

import (
	"context"
	"testing"

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
// impl=gocloud. Package bench/gocdk makes a [Bucket] of a *blob.Bucket, so
// that package bench itself compiles no Go CDK:
//
//	func (h *harness) OpenBucket(context.Context) (bench.Bucket, error) {
//		return gocdk.Wrap(memblob.OpenBucket(nil)), nil
//	}
type BucketHarness interface {
	// OpenBucket returns a bucket the benchmark closes. Its requests must be
	// counted by RequestCounter when the harness implements it.
	OpenBucket(ctx context.Context) (Bucket, error)
}

// Bucket is the Go CDK bucket of the impl=gocloud benchmarks, as the portable
// operations they time: each method is the *blob.Bucket call(s) it names.
// bench/gocdk implements it.
type Bucket interface {
	// ReadAll reads a whole object (blob.Bucket.ReadAll). For an absent key it
	// returns driver.ErrNotFound (gcerrors.NotFound).
	ReadAll(ctx context.Context, key string) ([]byte, error)
	// ReadRange reads n bytes at off (blob.Bucket.NewRangeReader, io.ReadAll,
	// Close).
	ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error)
	// WriteAll writes a whole object with the options (blob.Bucket.WriteAll).
	WriteAll(ctx context.Context, key string, data []byte, opts *WriteOptions) error
	// Delete removes one object (blob.Bucket.Delete).
	Delete(ctx context.Context, key string) error
	// DeleteAll removes every object under prefix: blob.Bucket.List, and
	// one blob.Bucket.Delete per object, in sequence.
	DeleteAll(ctx context.Context, prefix string) error
	// Close closes the bucket.
	Close() error
}

// WriteOptions are the Go CDK write options (blob.WriterOptions) the
// benchmarks set.
type WriteOptions struct {
	// ContentType is the object's MIME type.
	ContentType string
	// ContentMD5 is the MD5 of the data, precomputed (nil: none).
	ContentMD5 []byte
	// IfNotExist makes the write fail if the object exists.
	IfNotExist bool
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
	// for Has, Read then Replace for Incr, Delete for Delete, List and
	// DeleteBatch for Clear.
	ImplDriver = "driver"
	// ImplGoCDK is the Go CDK bucket doing the same work with its portable
	// API (ReadAll, WriteAll, NewRangeReader, List and Delete one by one);
	// only with a BucketHarness.
	ImplGoCDK = "gocloud"
)
