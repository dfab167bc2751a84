package azure_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/drivers/azure"
)

// A cache in an Azure container, opened by URL. For Azurite, name its blob
// service with endpoint and use its well-known account and key (here
// elided); on Azure, account and key alone (or only account, with a
// default Azure credential) name the service.
func Example_url() {
	ctx := context.Background()
	c, err := cache.Open(ctx, "azblob://my-cache?endpoint=http://127.0.0.1:10000/devstoreaccount1"+
		"&account=devstoreaccount1&key=...&create_container=true&location=sessions&max_entries=10000")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(ctx, "greeting", []byte("hello"), time.Hour); err != nil {
		log.Fatal(err)
	}
}

// Open takes the same settings as [azure.Options], and the driver goes to
// cache.New.
func ExampleOpen() {
	ctx := context.Background()
	d, err := azure.Open(ctx, "my-cache", azure.Options{
		Account: "myaccount",
		Key:     "...", // the account's shared key (base64)
	})
	if err != nil {
		log.Fatal(err)
	}
	c, err := cache.New(d, cache.WithLocation("sessions"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	v, err := c.Get(ctx, "greeting")
	fmt.Println(string(v), err)
}
