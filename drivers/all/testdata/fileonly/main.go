// Command fileonly is a program that uses only the file driver: the import
// graph test builds it to measure what such a program links.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/blobcache/blobcache/cache"
	_ "github.com/blobcache/blobcache/drivers/file"
)

func main() {
	ctx := context.Background()
	c, err := cache.Open(ctx, "file://"+os.TempDir()+"/blobcache-fileonly?location=demo&max_entries=100")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer c.Close()
	if err := c.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	v, err := c.Get(ctx, "k")
	fmt.Println(string(v), err)
}
