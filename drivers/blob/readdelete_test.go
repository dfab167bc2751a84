package blob_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/blobcache/blobcache/driver"
	blobdrv "github.com/blobcache/blobcache/drivers/blob"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
)

// errChanged and errGone are the refusals of the test store's conditional
// delete: of kind ErrPreconditionFailed (Azure's 412), and of kind
// ErrNotFound (GCS's 404 for a generation no longer there).
var (
	errChanged = errors.New("etag does not match")
	errGone    = errors.New("no such generation")
)

// conditional is a memblob bucket behind the driver, with the two halves of
// a ReadDelete round made of it: a read that returns the object's memblob
// ETag and, for the first races reads, has another writer store a new
// version right after it; and a delete that removes the object only while
// it has the ETag read.
type conditional struct {
	b       *gcblob.Bucket
	d       *blobdrv.Driver
	x       *blobdrv.Extension
	races   int
	reads   int
	refusal error // errChanged or errGone
}

func newConditional(t *testing.T, races int) *conditional {
	b := memblob.OpenBucket(nil)
	d, x := blobdrv.NewProvided(b, blobdrv.Provider{Name: "cond", ErrorKind: func(err error) error {
		switch {
		case errors.Is(err, errChanged):
			return driver.ErrPreconditionFailed
		case errors.Is(err, errGone):
			return driver.ErrNotFound
		}
		return nil
	}})
	t.Cleanup(func() { d.Close() })
	return &conditional{b: b, d: d, x: x, races: races, refusal: errChanged}
}

func (c *conditional) read(ctx context.Context, name string, offset, length int64) ([]byte, driver.Attributes, error) {
	data, attrs, err := c.d.Read(ctx, name, offset, length)
	if err != nil {
		return nil, attrs, err
	}
	a, err := c.b.Attributes(ctx, name)
	if err != nil {
		return nil, attrs, err
	}
	attrs.ETag = a.ETag
	c.reads++
	if c.reads <= c.races {
		// Another writer's version lands between this read and the delete.
		if err := c.b.WriteAll(ctx, name, fmt.Appendf(nil, "version %d", c.reads+1), nil); err != nil {
			return nil, attrs, err
		}
	}
	return data, attrs, nil
}

func (c *conditional) deleteIf(ctx context.Context, key, etag string) error {
	a, err := c.b.Attributes(ctx, key)
	if err != nil {
		return err
	}
	if a.ETag != etag {
		return c.refusal
	}
	return c.b.Delete(ctx, key)
}

// ReadDelete removes exactly the version it returns: each version written
// between a round's read and its delete is read and removed in a later
// round, never removed unseen; after MaxReadDeleteRounds lost rounds it
// fails with ErrPreconditionFailed and removes nothing.
func TestExtensionReadDelete(t *testing.T) {
	ctx := t.Context()
	for _, races := range []int{0, 1, blobdrv.MaxReadDeleteRounds - 1} {
		c := newConditional(t, races)
		write(t, c.d, "k", "version 1")
		data, attrs, err := c.x.ReadDelete(ctx, "k", 100, c.read, c.deleteIf)
		want := fmt.Sprintf("version %d", races+1)
		if err != nil || string(data) != want || attrs.Size != int64(len(want)) {
			t.Errorf("%d races: ReadDelete = %q (size %d), %v; want %q, the version removed", races, data, attrs.Size, err, want)
		}
		if c.reads != races+1 {
			t.Errorf("%d races: %d rounds, want %d", races, c.reads, races+1)
		}
		if ok, _ := c.b.Exists(ctx, "k"); ok {
			t.Errorf("%d races: the object is still there", races)
		}
	}

	// Every round lost, the store refusing with either kind: an error of
	// kind ErrPreconditionFailed, never ErrNotFound (the object is there).
	for _, refusal := range []error{errChanged, errGone} {
		c := newConditional(t, blobdrv.MaxReadDeleteRounds)
		c.refusal = refusal
		write(t, c.d, "k", "version 1")
		data, _, err := c.x.ReadDelete(ctx, "k", 100, c.read, c.deleteIf)
		if !errors.Is(err, driver.ErrPreconditionFailed) || errors.Is(err, driver.ErrNotFound) || !errors.Is(err, refusal) || data != nil {
			t.Errorf("ReadDelete losing every round to %q = %q, %v; want ErrPreconditionFailed (not ErrNotFound) wrapping the store's refusal", refusal, data, err)
		}
		if c.reads != blobdrv.MaxReadDeleteRounds {
			t.Errorf("%d rounds, want MaxReadDeleteRounds (%d)", c.reads, blobdrv.MaxReadDeleteRounds)
		}
		if got, err := c.b.ReadAll(ctx, "k"); err != nil || !bytes.Equal(got, fmt.Appendf(nil, "version %d", blobdrv.MaxReadDeleteRounds+1)) {
			t.Errorf("after the refusal the object holds %q, %v; want the last version, kept", got, err)
		}
	}
	// A round lost to a 404 is made again, as one lost to a 412.
	c := newConditional(t, 2)
	c.refusal = errGone
	write(t, c.d, "k", "version 1")
	if data, _, err := c.x.ReadDelete(ctx, "k", 100, c.read, c.deleteIf); err != nil || string(data) != "version 3" {
		t.Errorf("ReadDelete after two rounds lost to 404 = %q, %v; want version 3", data, err)
	}

	// Absent: the read's ErrNotFound, nothing deleted.
	c = newConditional(t, 0)
	if _, _, err := c.x.ReadDelete(ctx, "absent", 10, c.read, c.deleteIf); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("ReadDelete of an absent object = %v, want ErrNotFound", err)
	}
	// A read without an ETag cannot be deleted by it.
	write(t, c.d, "k", "v")
	noTag := func(ctx context.Context, name string, off, n int64) ([]byte, driver.Attributes, error) {
		data, attrs, err := c.d.Read(ctx, name, off, n)
		attrs.ETag = ""
		return data, attrs, err
	}
	if _, _, err := c.x.ReadDelete(ctx, "k", 10, noTag, c.deleteIf); err == nil {
		t.Error("ReadDelete with a read that gives no ETag succeeded")
	}
	if ok, _ := c.b.Exists(ctx, "k"); !ok {
		t.Error("ReadDelete with a read that gives no ETag removed the object")
	}
}
