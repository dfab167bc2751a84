package cache_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/drivers/mem"
)

// Open picks the store from a URL: "mem://" here, "file:///var/cache/app" or
// "s3://my-bucket?location=cache" in an application. Query parameters are
// Django's cache options.
func ExampleOpen() {
	ctx := context.Background()
	c, err := cache.Open(ctx, "mem://?location=app&max_entries=1000&timeout=60")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	fmt.Println(c.Location())
	fmt.Println(c.ObjectName("user:42"))
	// Output:
	// app/
	// app/0bcd4215b14294c55a7985de6e061cafca8dc397
}

// Set stores a value for a TTL; Get returns it, or an error satisfying
// errors.Is(err, cache.ErrMiss) when there is no live entry.
func ExampleCache_Get() {
	ctx := context.Background()
	c, err := cache.Open(ctx, "mem://")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if err := c.Set(ctx, "greeting", []byte("hello"), 10*time.Minute); err != nil {
		log.Fatal(err)
	}
	v, err := c.Get(ctx, "greeting")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", v)

	_, err = c.Get(ctx, "absent")
	fmt.Println(errors.Is(err, cache.ErrMiss))
	// Output:
	// hello
	// true
}

// TTLs: cache.DefaultTTL uses the configured default (the URL's timeout, 300
// seconds unless set), cache.NoExpiry keeps the entry until it is deleted or
// culled. An entry past its TTL is a miss.
func ExampleCache_Set() {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	c, err := cache.New(mem.New(), cache.WithClock(func() time.Time { return now }))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	c.Set(ctx, "short", []byte("1"), time.Minute)
	c.Set(ctx, "default", []byte("2"), cache.DefaultTTL) // 300 s
	c.Set(ctx, "forever", []byte("3"), cache.NoExpiry)

	now = now.Add(2 * time.Minute)
	for _, key := range []string{"short", "default", "forever"} {
		ok, _ := c.Has(ctx, key)
		fmt.Println(key, ok)
	}
	// Output:
	// short false
	// default true
	// forever true
}

// Add stores a value only if the key has no live entry, atomically: of many
// processes adding one key, exactly one succeeds. It makes a simple lock.
func ExampleCache_Add() {
	ctx := context.Background()
	c, err := cache.Open(ctx, "mem://")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for _, worker := range []string{"worker-1", "worker-2"} {
		got, err := c.Add(ctx, "lock:nightly-job", []byte(worker), time.Minute)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(worker, "took the lock:", got)
	}
	owner, _ := c.Get(ctx, "lock:nightly-job")
	fmt.Printf("owner: %s\n", owner)
	// Output:
	// worker-1 took the lock: true
	// worker-2 took the lock: false
	// owner: worker-1
}

// Incr and Decr change an integer value atomically and keep its expiry.
// The key must exist: Incr of an absent key is cache.ErrMiss, so counters
// start with Add (or Set).
func ExampleCache_Incr() {
	ctx := context.Background()
	c, err := cache.Open(ctx, "mem://")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if _, err := c.Incr(ctx, "hits", 1); errors.Is(err, cache.ErrMiss) {
		fmt.Println("no counter yet")
	}
	c.Add(ctx, "hits", []byte("0"), time.Hour)
	for range 3 {
		c.Incr(ctx, "hits", 1)
	}
	n, err := c.Decr(ctx, "hits", 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("hits:", n)

	v, _ := c.Get(ctx, "hits")
	fmt.Printf("stored as text: %q\n", v)
	// Output:
	// no counter yet
	// hits: 2
	// stored as text: "2"
}

// GetOrSet returns the cached value, or computes, stores and returns it on a
// miss. Concurrent callers for one key in one process share a single call of
// the fill function.
func ExampleCache_GetOrSet() {
	ctx := context.Background()
	c, err := cache.Open(ctx, "mem://")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	renders := 0
	render := func(ctx context.Context) ([]byte, error) {
		renders++
		return []byte("<h1>Home</h1>"), nil
	}
	for range 3 {
		page, err := c.GetOrSet(ctx, "page:/", 5*time.Minute, render)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s\n", page)
	}
	fmt.Println("renders:", renders)
	// Output:
	// <h1>Home</h1>
	// <h1>Home</h1>
	// <h1>Home</h1>
	// renders: 1
}

// Typed stores Go values through a codec: JSON by default, cache.Gob[T]
// available. A stored value that does not decode is a miss.
func ExampleTyped() {
	ctx := context.Background()
	c, err := cache.Open(ctx, "mem://")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	type User struct {
		Name  string
		Roles []string
	}
	users := cache.NewTyped[User](c, nil)
	if err := users.Set(ctx, "user:42", User{Name: "Ada", Roles: []string{"admin"}}, time.Hour); err != nil {
		log.Fatal(err)
	}
	u, err := users.Get(ctx, "user:42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%+v\n", u)

	raw, _ := c.Get(ctx, "user:42")
	fmt.Printf("%s\n", raw)
	// Output:
	// {Name:Ada Roles:[admin]}
	// {"Name":"Ada","Roles":["admin"]}
}

// Clear deletes every entry under the cache's location and nothing outside
// it: another location in the same store is untouched.
func ExampleCache_Clear() {
	ctx := context.Background()
	sessions, err := cache.Open(ctx, "mem://example-clear?location=sessions")
	if err != nil {
		log.Fatal(err)
	}
	defer sessions.Close()
	pages, err := cache.Open(ctx, "mem://example-clear?location=pages")
	if err != nil {
		log.Fatal(err)
	}
	defer pages.Close()

	for _, key := range []string{"a", "b", "c"} {
		sessions.Set(ctx, key, []byte("s"), cache.DefaultTTL)
		pages.Set(ctx, key, []byte("p"), cache.DefaultTTL)
	}
	if err := pages.Clear(ctx); err != nil {
		log.Fatal(err)
	}
	nPages, _ := pages.Len(ctx)
	nSessions, _ := sessions.Len(ctx)
	fmt.Println("pages:", nPages, "sessions:", nSessions)
	// Output:
	// pages: 0 sessions: 3
}
