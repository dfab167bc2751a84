package customdriver_test

import (
	"context"
	"fmt"
	"log"

	"github.com/blobcache/blobcache/cache"
	_ "github.com/blobcache/blobcache/examples/customdriver" // registers slowmem://
)

// Example opens the driver by URL, as any program importing the package can:
// slowmem://name is the store called name in this process, latency is the
// driver's own parameter, location the cache's.
func Example() {
	ctx := context.Background()
	c, err := cache.Open(ctx, "slowmem://example?latency=1ms&location=app")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if err := c.Set(ctx, "greeting", []byte("hello"), cache.DefaultTTL); err != nil {
		log.Fatal(err)
	}
	v, err := c.Get(ctx, "greeting")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(v))
	fmt.Println(c.ObjectName("greeting")[:4])
	// Output:
	// hello
	// app/
}
