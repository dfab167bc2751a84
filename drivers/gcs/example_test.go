package gcs_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/drivers/gcs"
	"github.com/blobcache/blobcache/internal/gcstest"
)

// Example opens a cache on a GCS bucket. Against Google Cloud Storage the
// options are empty (Application Default Credentials) or the URL is
// "gs://my-bucket?location=cache"; here the bucket is on fake-gcs-server,
// reached through Options.Endpoint.
func Example() {
	srv, err := gcstest.StartServer()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Stop()
	bucket := srv.NewBucket()

	ctx := context.Background()
	d, err := gcs.Open(ctx, bucket, gcs.Options{Endpoint: srv.URL()})
	if err != nil {
		log.Fatal(err)
	}
	c, err := cache.New(d, cache.WithLocation("cache"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	added, _ := c.Add(ctx, "greeting", []byte("hello"), time.Hour) // ifGenerationMatch=0
	again, _ := c.Add(ctx, "greeting", []byte("bye"), time.Hour)
	v, _ := c.Get(ctx, "greeting")
	c.Set(ctx, "hits", []byte("41"), cache.NoExpiry)
	n, _ := c.Incr(ctx, "hits", 1) // ifGenerationMatch=<the generation read>
	fmt.Println(added, again, string(v), n)
	// Output: true false hello 42
}

// ExampleOpenURL opens a driver from a gs:// URL; the cache's own options
// (location, max_entries, ...) go to cache.Open, which passes the rest on.
func ExampleOpenURL() {
	srv, err := gcstest.StartServer()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Stop()
	bucket := srv.NewBucket()

	ctx := context.Background()
	c, err := cache.Open(ctx, "gs://"+bucket+"?endpoint="+srv.URL()+"&location=cache&max_entries=1000")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Set(ctx, "k", []byte("v"), time.Minute)
	v, _ := c.Get(ctx, "k")
	fmt.Println(string(v))
	// Output: v
}
