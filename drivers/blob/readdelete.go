package blob

import (
	"context"
	"errors"
	"fmt"

	"github.com/blobcache/blobcache/driver"
)

// MaxReadDeleteRounds bounds the reads and conditional deletes of one
// [Extension.ReadDelete]: each round after the first follows a write that
// landed between the round's read and its delete.
const MaxReadDeleteRounds = 8

// ReadDelete is [driver.ReadDeleter]'s ReadDelete for a store whose delete
// can be made conditional on the object's ETag (GCS's generation, Azure's
// If-Match; not MinIO's S3, which ignores If-Match on DeleteObject). Each
// round is read(ctx, name, 0, length), the provider's Read, which returns
// the object's ETag, then deleteIf(ctx, key, etag), which removes the object
// stored under key (KeyPrefix + name) only while its ETag is etag, and
// otherwise fails with an error whose kind (see Provider.ErrorKind) is
// driver.ErrPreconditionFailed or driver.ErrNotFound. So the object removed
// is the one read: a write that lands between a round's two requests is
// never removed unseen; the next round reads it and removes it in turn.
// An absent object is the read's ErrNotFound. After MaxReadDeleteRounds
// rounds that each lost such a race, it returns an error of kind
// ErrPreconditionFailed (never ErrNotFound, since every read found the
// object) wrapping the last refusal, having removed nothing. A round is
// two requests.
func (x *Extension) ReadDelete(ctx context.Context, name string, length int64,
	read func(ctx context.Context, name string, offset, length int64) ([]byte, driver.Attributes, error),
	deleteIf func(ctx context.Context, key, etag string) error) ([]byte, driver.Attributes, error) {
	if err := x.Check(ctx, "read delete", name); err != nil {
		return nil, driver.Attributes{}, err
	}
	for round := 1; ; round++ {
		data, attrs, err := read(ctx, name, 0, length)
		if err != nil {
			return nil, driver.Attributes{}, err
		}
		if attrs.ETag == "" {
			return nil, driver.Attributes{}, fmt.Errorf("%s: read delete %q: the read returned no ETag to delete by", x.d.name, name)
		}
		err = deleteIf(ctx, x.d.p.KeyPrefix+name, attrs.ETag)
		if err == nil {
			return data, attrs, nil
		}
		mapped := x.d.mapErr(ctx, "read delete", name, err)
		lost := errors.Is(mapped, driver.ErrPreconditionFailed) || errors.Is(mapped, driver.ErrNotFound)
		if !lost || ctx.Err() != nil {
			return nil, driver.Attributes{}, mapped
		}
		if round == MaxReadDeleteRounds {
			// Never ErrNotFound: the object was there at every read. The
			// store's refusal is kept, without its kind.
			return nil, driver.Attributes{}, fmt.Errorf("%s: read delete %q: %w: the object changed between the read and the delete in each of %d rounds: %w",
				x.d.name, name, driver.ErrPreconditionFailed, MaxReadDeleteRounds, err)
		}
	}
}
