package azure

import (
	"context"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/blobcache/blobcache/driver"
)

// MaxBatch is the most sub-requests of one Azure blob batch request.
const MaxBatch = 256

// DeleteBatch implements [driver.BatchDeleter] with the blob batch API
// (Blob Batch, one POST of up to [MaxBatch] Delete Blob sub-requests; more
// names than that are sent in several requests). Duplicate names are sent
// once. A name the driver refuses fails the call before anything is
// deleted. A sub-request's 404 BlobNotFound is no error; other failed
// sub-requests are returned in a *[driver.BatchDeleteError]; a failed
// request returns its error and stops.
func (d *Driver) DeleteBatch(ctx context.Context, names []string) error {
	if err := d.x.Check(ctx, "delete batch", names...); err != nil {
		return err
	}
	failed := map[string]error{}
	seen := make(map[string]bool, len(names))
	batch := make([]string, 0, min(len(names), MaxBatch))
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		defer func() { batch = batch[:0] }()
		subject := fmt.Sprintf("%d names", len(batch))
		bb, err := d.client.NewBatchBuilder()
		if err != nil {
			return d.x.Err(ctx, "delete batch", subject, err)
		}
		for _, name := range batch {
			if err := bb.Delete(name, nil); err != nil {
				return d.x.Err(ctx, "delete batch", name, err)
			}
		}
		resp, err := d.client.SubmitBatch(ctx, bb, nil)
		if err != nil {
			return d.x.Err(ctx, "delete batch", subject, err)
		}
		answered := make([]bool, len(batch))
		for _, item := range resp.Responses {
			if item.ContentID == nil || *item.ContentID < 0 || *item.ContentID >= len(batch) {
				continue
			}
			i := *item.ContentID
			answered[i] = true
			if item.Error != nil && !bloberror.HasCode(item.Error, bloberror.BlobNotFound) {
				failed[batch[i]] = d.x.Err(ctx, "delete batch", batch[i], item.Error)
			}
		}
		for i, ok := range answered {
			if !ok {
				failed[batch[i]] = fmt.Errorf("azure: delete batch %q: no answer in the batch response", batch[i])
			}
		}
		return nil
	}
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		batch = append(batch, name)
		if len(batch) == MaxBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if len(failed) > 0 {
		return &driver.BatchDeleteError{Failed: failed}
	}
	return nil
}
