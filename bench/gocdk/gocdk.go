// Package gocdk adapts a Go CDK bucket (*blob.Bucket) to [bench.Bucket], for
// the impl=gocloud benchmarks of bench.RunBenchmarks. It is a package of its
// own so that package bench compiles no Go CDK: only the harnesses that
// compare with it import this one.
//
//	func (h *harness) OpenBucket(context.Context) (bench.Bucket, error) {
//		return gocdk.Wrap(memblob.OpenBucket(nil)), nil
//	}
package gocdk

import (
	"context"
	"io"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/blobcache/blobcache/bench"
	"github.com/blobcache/blobcache/driver"
)

// Bucket is a *blob.Bucket behind the portable calls of [bench.Bucket].
type Bucket struct {
	b *blob.Bucket
}

var _ bench.Bucket = (*Bucket)(nil)

// Wrap returns b as a [bench.Bucket]; closing it closes b.
func Wrap(b *blob.Bucket) *Bucket { return &Bucket{b: b} }

// ReadAll calls blob.Bucket.ReadAll, with driver.ErrNotFound for
// gcerrors.NotFound.
func (b *Bucket) ReadAll(ctx context.Context, key string) ([]byte, error) {
	v, err := b.b.ReadAll(ctx, key)
	if err != nil && gcerrors.Code(err) == gcerrors.NotFound {
		return nil, driver.ErrNotFound
	}
	return v, err
}

// ReadRange reads n bytes at off with blob.Bucket.NewRangeReader.
func (b *Bucket) ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	r, err := b.b.NewRangeReader(ctx, key, off, n, nil)
	if err != nil {
		return nil, err
	}
	v, err := io.ReadAll(r)
	r.Close()
	return v, err
}

// WriteAll calls blob.Bucket.WriteAll with the same options.
func (b *Bucket) WriteAll(ctx context.Context, key string, data []byte, opts *bench.WriteOptions) error {
	return b.b.WriteAll(ctx, key, data, &blob.WriterOptions{
		ContentType: opts.ContentType,
		ContentMD5:  opts.ContentMD5,
		IfNotExist:  opts.IfNotExist,
	})
}

// Delete removes one object (blob.Bucket.Delete).
func (b *Bucket) Delete(ctx context.Context, key string) error { return b.b.Delete(ctx, key) }

// DeleteAll lists the objects under prefix (blob.Bucket.List) and deletes
// each in turn (blob.Bucket.Delete).
func (b *Bucket) DeleteAll(ctx context.Context, prefix string) error {
	it := b.b.List(&blob.ListOptions{Prefix: prefix})
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := b.b.Delete(ctx, o.Key); err != nil {
			return err
		}
	}
}

// Close closes the bucket.
func (b *Bucket) Close() error { return b.b.Close() }
