package blob_test

import (
	"context"
	"testing"

	"github.com/blobcache/blobcache/conformance"
	"github.com/blobcache/blobcache/driver"
	blobdrv "github.com/blobcache/blobcache/drivers/blob"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
)

// memHarness is one memblob store. Each driver gets its own Go CDK bucket
// over the store's Go CDK driver (PrefixedBucket with an empty prefix, which
// does not look at whether the bucket it wraps is closed), so that closing
// one driver leaves the others working, as separate clients would.
type memHarness struct{ base *gcblob.Bucket }

func (h *memHarness) MakeDriver(context.Context) (driver.Driver, error) {
	return blobdrv.New(gcblob.PrefixedBucket(h.base, ""), blobdrv.WithEscaping(blobdrv.EscapingNone)), nil
}

func (h *memHarness) Close() {}

// fileHarness is one directory, opened by fileblob once per driver.
type fileHarness struct{ dir string }

func (h *fileHarness) MakeDriver(context.Context) (driver.Driver, error) {
	b, err := fileblob.OpenBucket(h.dir, nil)
	if err != nil {
		return nil, err
	}
	return blobdrv.New(b), nil
}

func (h *fileHarness) Close() {}

// fileblob's limits, each a property of the Go CDK's fileblob, not of this
// package (see conformance.StoreLimits); drivers/file has none of them.

// FolderObjects is false: see NestedObjects.
func (h *fileHarness) FolderObjects() bool { return false }

// NestedObjects is false: fileblob keeps "a/b" in a directory "a", so no
// file "a" can be beside it.
func (h *fileHarness) NestedObjects() bool { return false }

// ByteOrderListing is false: fileblob walks folder by folder, so "a/c" is
// listed before "a.b".
func (h *fileHarness) ByteOrderListing() bool { return false }

// AtomicOverwrite is false: fileblob's reader stats the file and reads its
// attributes file before it opens the file.
func (h *fileHarness) AtomicOverwrite() bool { return false }

// MaxSegmentLength is 255 - 21: fileblob's temporary file is named after
// the object's last segment, plus "." and 16 hex digits and ".tmp".
func (h *fileHarness) MaxSegmentLength() int { return 255 - 21 }

// AtomicIfAbsent is false: fileblob's IfNotExist is a stat, then a rename.
func (h *fileHarness) AtomicIfAbsent() bool { return false }

var _ conformance.StoreLimits = (*fileHarness)(nil)

func TestConformanceMemblob(t *testing.T) {
	conformance.Run(t, func(ctx context.Context, t *testing.T) (conformance.Harness, error) {
		return &memHarness{base: memblob.OpenBucket(nil)}, nil
	})
}

func TestConformanceFileblob(t *testing.T) {
	conformance.Run(t, func(ctx context.Context, t *testing.T) (conformance.Harness, error) {
		return &fileHarness{dir: t.TempDir()}, nil
	})
}
