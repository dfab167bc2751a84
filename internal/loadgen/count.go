package loadgen

import (
	"context"
	"io"
	"sync/atomic"

	"github.com/blobcache/blobcache/driver"
)

// CountDriver wraps d so that every call is counted: on S3 each call is one
// request (DeleteBatch is passed at most driver.MaxBatchDelete names, one
// DeleteObjects; the exceptions are uploads above the multipart threshold
// and reads starting past an object's end, which cost more). The wrapper has
// exactly d's optional capabilities (driver.Replacer, driver.BatchDeleter),
// so a cache over it behaves as over d. Closing it closes d.
func CountDriver(d driver.Driver) (driver.Driver, func() int64) {
	c := &countingDriver{d: d}
	r, isReplacer := d.(driver.Replacer)
	b, isBatch := d.(driver.BatchDeleter)
	switch {
	case isReplacer && isBatch:
		return &countingBoth{countingDriver: c, r: r, b: b}, c.n.Load
	case isReplacer:
		return &countingReplacer{countingDriver: c, r: r}, c.n.Load
	case isBatch:
		return &countingBatch{countingDriver: c, b: b}, c.n.Load
	}
	return c, c.n.Load
}

type countingDriver struct {
	d driver.Driver
	n atomic.Int64
}

// Read implements io.Reader.
func (c *countingDriver) Read(ctx context.Context, name string, off, n int64) ([]byte, driver.Attributes, error) {
	c.n.Add(1)
	return c.d.Read(ctx, name, off, n)
}

// Write implements driver.Driver.
func (c *countingDriver) Write(ctx context.Context, name string, body io.Reader, opts *driver.WriteOptions) error {
	c.n.Add(1)
	return c.d.Write(ctx, name, body, opts)
}

// Delete implements driver.Driver.
func (c *countingDriver) Delete(ctx context.Context, name string) error {
	c.n.Add(1)
	return c.d.Delete(ctx, name)
}

// List implements driver.Driver.
func (c *countingDriver) List(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	c.n.Add(1)
	return c.d.List(ctx, opts)
}

// Close implements driver.Driver.
func (c *countingDriver) Close() error { return c.d.Close() }

func (c *countingDriver) replace(ctx context.Context, r driver.Replacer, name string, body io.Reader, etag string, opts *driver.WriteOptions) error {
	c.n.Add(1)
	return r.Replace(ctx, name, body, etag, opts)
}

func (c *countingDriver) deleteBatch(ctx context.Context, b driver.BatchDeleter, names []string) error {
	c.n.Add(int64(max(1, (len(names)+driver.MaxBatchDelete-1)/driver.MaxBatchDelete)))
	return b.DeleteBatch(ctx, names)
}

type countingReplacer struct {
	*countingDriver
	r driver.Replacer
}

// Replace implements driver.Replacer.
func (c *countingReplacer) Replace(ctx context.Context, name string, body io.Reader, etag string, opts *driver.WriteOptions) error {
	return c.replace(ctx, c.r, name, body, etag, opts)
}

type countingBatch struct {
	*countingDriver
	b driver.BatchDeleter
}

// DeleteBatch implements driver.BatchDeleter.
func (c *countingBatch) DeleteBatch(ctx context.Context, names []string) error {
	return c.deleteBatch(ctx, c.b, names)
}

type countingBoth struct {
	*countingDriver
	r driver.Replacer
	b driver.BatchDeleter
}

// Replace implements driver.Replacer.
func (c *countingBoth) Replace(ctx context.Context, name string, body io.Reader, etag string, opts *driver.WriteOptions) error {
	return c.replace(ctx, c.r, name, body, etag, opts)
}

// DeleteBatch implements driver.BatchDeleter.
func (c *countingBoth) DeleteBatch(ctx context.Context, names []string) error {
	return c.deleteBatch(ctx, c.b, names)
}
