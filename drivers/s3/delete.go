package s3

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/blobcache/blobcache/driver"
)

// deleteOne is the driver's [blob.Provider] Delete: one DeleteObject, no
// existence check (the Go CDK's s3blob Delete sends a HEAD first). The
// embedded driver has checked the call and wraps the error.
func (d *Driver) deleteOne(ctx context.Context, name string) error {
	bucket, key, err := d.target(ctx, name)
	if err != nil {
		return err
	}
	_, err = d.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	return err
}

// DeleteBatch implements [driver.BatchDeleter] with S3 DeleteObjects in quiet
// mode, one request per [driver.MaxBatchDelete] names (more names than that
// are sent in several requests). Duplicate names are sent once. A name the
// driver refuses fails the call before anything is deleted. Keys S3
// reports as not deleted are returned in a *[driver.BatchDeleteError]; a
// failed request returns its error and stops.
func (d *Driver) DeleteBatch(ctx context.Context, names []string) error {
	// Nothing is deleted when a name is refused: a batch holding a name the
	// store would rewrite is a caller's bug, not a partial failure.
	if err := d.x.Check(ctx, "delete batch", names...); err != nil {
		return err
	}
	failed := map[string]error{}
	seen := make(map[string]bool, len(names))
	var bucket string
	objs := make([]types.ObjectIdentifier, 0, min(len(names), driver.MaxBatchDelete))
	keyName := make(map[string]string, cap(objs))
	flush := func() error {
		if len(objs) == 0 {
			return nil
		}
		out, err := d.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(bucket),
			Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return d.x.Err(ctx, "delete batch", fmt.Sprintf("%d names", len(objs)), err)
		}
		for _, e := range out.Errors {
			key := aws.ToString(e.Key)
			name, ok := keyName[key]
			if !ok {
				name = key
			}
			if aws.ToString(e.Code) == "NoSuchKey" {
				continue
			}
			failed[name] = fmt.Errorf("s3 DeleteObjects: %s: %s", aws.ToString(e.Code), aws.ToString(e.Message))
		}
		objs = objs[:0]
		clear(keyName)
		return nil
	}
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		b, key, err := d.target(ctx, name)
		if err != nil {
			return d.x.Err(ctx, "delete batch", name, err)
		}
		bucket = b
		objs = append(objs, types.ObjectIdentifier{Key: aws.String(key)})
		keyName[key] = name
		if len(objs) == driver.MaxBatchDelete {
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
