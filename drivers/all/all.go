// Package all registers every driver of this module, for programs that
// open cache URLs of any scheme (the blobcache command does):
//
//	import _ "github.com/blobcache/blobcache/drivers/all"
//
// It registers mem:// (drivers/mem), file:// (drivers/file), s3://
// (drivers/s3), azblob:// (drivers/azure: Azure Blob Storage and Azurite)
// and the Go CDK's gs:// (drivers/blob; the program also imports
// gocloud.dev/blob/gcsblob). A program
// that needs fewer imports only the drivers it opens, and links nothing of
// the others: a program opening only file:// URLs imports drivers/file.
package all

import (
	_ "github.com/blobcache/blobcache/drivers/azure" // azblob://
	_ "github.com/blobcache/blobcache/drivers/blob"  // gs://
	_ "github.com/blobcache/blobcache/drivers/file"  // file://
	_ "github.com/blobcache/blobcache/drivers/mem"   // mem://
	_ "github.com/blobcache/blobcache/drivers/s3"    // s3://
)
