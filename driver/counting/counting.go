// Package counting wraps a blobcache storage driver so that every call it
// passes on is counted, by kind.
//
// It is the one request counter of the module: the benchmarks and the load
// generator (package bench) count the raw driver's requests with it, the
// blobcache command counts the calls its stats scan makes through the driver
// with it, and tests count what a cache asks of its store with it. It
// imports only package driver, so anything can use it.
//
// On S3 every call is one request, with two exceptions: an upload above the
// SDK's multipart threshold is several, and so is a retried request. A test
// that must prove a call is one request counts HTTP requests (the S3
// driver's tests do, with a counting http.RoundTripper).
package counting

import (
	"context"
	"io"
	"sync/atomic"

	"github.com/blobcache/blobcache/driver"
)

// Counts are the calls a wrapped driver passed on, by kind.
type Counts struct {
	// Reads counts Read calls, whole or ranged (a GetObject each on S3).
	Reads int64
	// Writes counts Write calls, conditional ones (IfAbsent) included (a
	// PutObject each).
	Writes int64
	// Replaces counts Replace calls (a conditional PutObject each).
	Replaces int64
	// Deletes counts Delete and ReadDelete calls (a DeleteObject each; a
	// ReadDelete, which only stores that can make it one step implement,
	// is one call too).
	Deletes int64
	// BatchDeletes counts DeleteBatch calls (a DeleteObjects each: the
	// driver contract passes at most driver.MaxBatchDelete names).
	BatchDeletes int64
	// Lists counts List calls, one page each (a ListObjectsV2 each).
	Lists int64
	// BytesRead counts the bytes Read and ReadDelete returned. Bytes written are not
	// counted: that would mean wrapping each body, which hides what the
	// driver may look for in it (its length, or that it can seek).
	BytesRead int64
}

// Requests returns the calls of every kind: the store requests they cost.
func (c Counts) Requests() int64 {
	return c.Reads + c.Writes + c.Replaces + c.Deletes + c.BatchDeletes + c.Lists
}

// Counter holds the counts of one wrapped driver. It is safe for concurrent
// use.
type Counter struct {
	reads, writes, replaces, deletes, batchDeletes, lists, bytesRead atomic.Int64
}

// Counts returns the counts so far.
func (c *Counter) Counts() Counts {
	return Counts{
		Reads: c.reads.Load(), Writes: c.writes.Load(), Replaces: c.replaces.Load(),
		Deletes: c.deletes.Load(), BatchDeletes: c.batchDeletes.Load(), Lists: c.lists.Load(),
		BytesRead: c.bytesRead.Load(),
	}
}

// Requests returns the calls of every kind so far (Counts().Requests()). It
// only grows, so a *Counter is a bench.RequestCounter.
func (c *Counter) Requests() int64 { return c.Counts().Requests() }

// Wrap returns d wrapped so that every call is counted, and its counter.
//
// The wrapper has exactly d's optional capabilities: a type assertion on it
// to driver.Replacer, driver.BatchDeleter, driver.ReadDeleter or
// driver.NameValidator succeeds exactly when it does on d, so a cache over
// the wrapper behaves as over d. ValidateName is passed on and not counted (it is no request). Close
// closes d.
func Wrap(d driver.Driver) (driver.Driver, *Counter) {
	c := &counted{d: d, n: &Counter{}}
	r, isR := d.(driver.Replacer)
	b, isB := d.(driver.BatchDeleter)
	v, isV := d.(driver.NameValidator)
	t, isT := d.(driver.ReadDeleter)
	caps := 0
	for i, has := range []bool{isR, isB, isV, isT} {
		if has {
			caps |= 1 << i
		}
	}
	return wrappers[caps](c, replacer{c, r}, batcher{c, b}, validator{v}, taker{c, t}), c.n
}

// wrappers builds the wrapper of each combination of capabilities, indexed
// by a bit set: 1 Replacer, 2 BatchDeleter, 4 NameValidator, 8 ReadDeleter.
var wrappers = [16]func(*counted, replacer, batcher, validator, taker) driver.Driver{
	func(c *counted, r replacer, b batcher, v validator, t taker) driver.Driver { return c },
	func(c *counted, r replacer, b batcher, v validator, t taker) driver.Driver {
		return struct {
			*counted
			replacer
		}{c, r}
	},
	func(c *counted, r replacer, b batcher, v validator, t taker) driver.Driver {
		return struct {
			*counted
			batcher
		}{c, b}
	},
	func(c *counted, r replacer, b batcher, v validator, t taker) driver.Driver {
		return struct {
			*counted
			replacer
			batcher
		}{c, r, b}
	},
	func(c *counted, r replacer, b batcher, v validator, t taker) driver.Driver {
		return struct {
			*counted
			validator
		}{c, v}
	},
	func(c *counted, r replacer, b batcher, v validator, t taker) driver.Driver {
		return struct {
			*counted
			replacer
			validator
		}{c, r, v}
	},
	func(c *counted, r replacer, b batcher, v validator, t taker) driver.Driver {
		return struct {
			*counted
			batcher
			validator
		}{c, b, v}
	},
	func(c *counted, r replacer, b batcher, v validator, t taker) driver.Driver {
		return struct {
			*counted
			replacer
			batcher
			validator
		}{c, r, b, v}
	},
	func(c *counted, r replacer, b batcher, v validator, t taker) driver.Driver {
		return struct {
			*counted
			taker
		}{c, t}
	},
	func(c *counted, r replacer, b batcher, v validator, t taker) driver.Driver {
		return struct {
			*counted
			replacer
			taker
		}{c, r, t}
	},
	func(c *counted, r replacer, b batcher, v validator, t taker) driver.Driver {
		return struct {
			*counted
			batcher
			taker
		}{c, b, t}
	},
	func(c *counted, r replacer, b batcher, v validator, t taker) driver.Driver {
		return struct {
			*counted
			replacer
			batcher
			taker
		}{c, r, b, t}
	},
	func(c *counted, r replacer, b batcher, v validator, t taker) driver.Driver {
		return struct {
			*counted
			validator
			taker
		}{c, v, t}
	},
	func(c *counted, r replacer, b batcher, v validator, t taker) driver.Driver {
		return struct {
			*counted
			replacer
			validator
			taker
		}{c, r, v, t}
	},
	func(c *counted, r replacer, b batcher, v validator, t taker) driver.Driver {
		return struct {
			*counted
			batcher
			validator
			taker
		}{c, b, v, t}
	},
	func(c *counted, r replacer, b batcher, v validator, t taker) driver.Driver {
		return struct {
			*counted
			replacer
			batcher
			validator
			taker
		}{c, r, b, v, t}
	},
}

// counted is the wrapper of the base driver.Driver methods; the
// capabilities are the embedded replacer, batcher, validator and taker.
type counted struct {
	d driver.Driver
	n *Counter
}

// Read implements driver.Driver.
func (c *counted) Read(ctx context.Context, name string, off, n int64) ([]byte, driver.Attributes, error) {
	c.n.reads.Add(1)
	data, attrs, err := c.d.Read(ctx, name, off, n)
	c.n.bytesRead.Add(int64(len(data)))
	return data, attrs, err
}

// Write implements driver.Driver.
func (c *counted) Write(ctx context.Context, name string, body io.Reader, opts *driver.WriteOptions) error {
	c.n.writes.Add(1)
	return c.d.Write(ctx, name, body, opts)
}

// Delete implements driver.Driver.
func (c *counted) Delete(ctx context.Context, name string) error {
	c.n.deletes.Add(1)
	return c.d.Delete(ctx, name)
}

// List implements driver.Driver.
func (c *counted) List(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	c.n.lists.Add(1)
	return c.d.List(ctx, opts)
}

// Close implements driver.Driver: it closes the wrapped driver.
func (c *counted) Close() error { return c.d.Close() }

type replacer struct {
	c *counted
	r driver.Replacer
}

// Replace implements driver.Replacer.
func (r replacer) Replace(ctx context.Context, name string, body io.Reader, etag string, opts *driver.WriteOptions) error {
	r.c.n.replaces.Add(1)
	return r.r.Replace(ctx, name, body, etag, opts)
}

type batcher struct {
	c *counted
	b driver.BatchDeleter
}

// DeleteBatch implements driver.BatchDeleter.
func (b batcher) DeleteBatch(ctx context.Context, names []string) error {
	b.c.n.batchDeletes.Add(1)
	return b.b.DeleteBatch(ctx, names)
}

type validator struct{ v driver.NameValidator }

// ValidateName implements driver.NameValidator.
func (v validator) ValidateName(name string) error { return v.v.ValidateName(name) }

type taker struct {
	c *counted
	t driver.ReadDeleter
}

// ReadDelete implements driver.ReadDeleter. It is one request, counted
// with the deletes; the bytes it returns are counted as read.
func (t taker) ReadDelete(ctx context.Context, name string, length int64) ([]byte, driver.Attributes, error) {
	t.c.n.deletes.Add(1)
	data, attrs, err := t.t.ReadDelete(ctx, name, length)
	t.c.n.bytesRead.Add(int64(len(data)))
	return data, attrs, err
}
