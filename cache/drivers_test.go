package cache

// The tests open mem://, file:// and s3:// URLs: every built-in driver is
// registered, as in a program that imports drivers/all.
import _ "github.com/blobcache/blobcache/drivers/all"
