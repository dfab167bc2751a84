// Command quickstart shows blobcache's main calls on a real store: set, get,
// add, incr, expiry and culling.
//
// With no flags it caches in a directory under the OS cache directory, so it
// needs no cloud and no network:
//
//	go run ./examples/quickstart
//
// Point it at S3 or MinIO with -url or BLOBCACHE_URL:
//
//	go run ./examples/quickstart -url 's3://my-bucket?region=eu-west-1'
//	BLOBCACHE_URL='s3://bucket?endpoint=http://127.0.0.1:9000&use_path_style=true' go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/blobcache/blobcache/cache"
	_ "github.com/blobcache/blobcache/drivers/all" // the URL may name any built-in driver
)

func main() {
	def, err := defaultURL()
	if err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
	if env := os.Getenv("BLOBCACHE_URL"); env != "" {
		def = env
	}
	rawURL := flag.String("url", def, "cache URL: mem://, file:///dir, s3://bucket?... (default from BLOBCACHE_URL)")
	flag.Parse()
	if err := run(context.Background(), *rawURL, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// defaultURL is a directory under the user's cache directory.
func defaultURL() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(dir, "blobcache-quickstart"))}
	return u.String(), nil
}

func run(ctx context.Context, rawURL string, out io.Writer) error {
	// The quickstart's entries live under their own location, with a small
	// max_entries so culling shows.
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("location", "quickstart")
	q.Set("max_entries", "10")
	u.RawQuery = q.Encode()
	c, err := cache.Open(ctx, u.String())
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(out, "cache: %v\n", c)
	if err := c.Clear(ctx); err != nil {
		return err
	}

	if err := c.Set(ctx, "greeting", []byte("hello, blobcache"), 5*time.Minute); err != nil {
		return err
	}
	v, err := c.Get(ctx, "greeting")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "set/get:   greeting = %q (object %s)\n", v, c.ObjectName("greeting"))

	added, err := c.Add(ctx, "greeting", []byte("ignored"), cache.DefaultTTL)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "add:       second Add of greeting stored? %v\n", added)

	if err := c.Set(ctx, "visits", []byte("0"), cache.NoExpiry); err != nil {
		return err
	}
	for range 3 {
		if _, err := c.Incr(ctx, "visits", 1); err != nil {
			return err
		}
	}
	n, err := c.Incr(ctx, "visits", 1)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "incr:      visits = %d\n", n)

	if err := c.Set(ctx, "flash", []byte("gone soon"), 500*time.Millisecond); err != nil {
		return err
	}
	time.Sleep(600 * time.Millisecond)
	_, err = c.Get(ctx, "flash")
	fmt.Fprintf(out, "expiry:    flash after its 500ms TTL: miss? %v\n", errors.Is(err, cache.ErrMiss))

	for i := range 25 {
		if err := c.Set(ctx, fmt.Sprint("item-", i), []byte("x"), cache.DefaultTTL); err != nil {
			return err
		}
	}
	count, err := c.Len(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "culling:   after 25 more sets with max_entries=10: %d entries\n", count)
	return nil
}
