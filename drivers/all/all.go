// Package all registers every driver of this module, for programs that
// open cache URLs of any scheme (the blobcache command does):
//
//	import _ "github.com/blobcache/blobcache/drivers/all"
//
// It registers mem:// (drivers/mem), file:// (drivers/file), s3://
// (drivers/s3), gs:// (drivers/gcs: Google Cloud Storage, with atomic Add
// and Incr through generation preconditions) and azblob:// (drivers/azure:
// Azure Blob Storage, with If-Match and If-None-Match). A program that
// needs fewer imports only the drivers it opens, and links nothing of the
// others: a program opening only file:// URLs imports drivers/file. Any
// other Go CDK bucket opens through drivers/blob (blob.RegisterScheme).
package all

import (
	_ "github.com/blobcache/blobcache/drivers/azure" // azblob://
	_ "github.com/blobcache/blobcache/drivers/file"  // file://
	_ "github.com/blobcache/blobcache/drivers/gcs"   // gs://
	_ "github.com/blobcache/blobcache/drivers/mem"   // mem://
	_ "github.com/blobcache/blobcache/drivers/s3"    // s3://
)
