package counting_test

import (
	"context"
	"fmt"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/driver/counting"
	"github.com/blobcache/blobcache/drivers/mem"
)

// A cache over a counted driver: every request the cache makes is counted,
// and the wrapper keeps the driver's capabilities (here the memory driver's
// Replacer, which makes Incr atomic).
func ExampleWrap() {
	ctx := context.Background()
	d, ctr := counting.Wrap(mem.New())
	_, atomicIncr := d.(driver.Replacer)
	c, err := cache.New(d, cache.WithLocation("app"))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	before := ctr.Counts()
	c.Set(ctx, "greeting", []byte("hello"), cache.DefaultTTL)
	c.Get(ctx, "greeting")
	n := ctr.Counts()
	fmt.Println("replacer kept:", atomicIncr)
	fmt.Println("writes:", n.Writes-before.Writes, "reads:", n.Reads-before.Reads)
	// Output:
	// replacer kept: true
	// writes: 1 reads: 1
}
