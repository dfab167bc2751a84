// Command django times blobcache's file driver, through the public cache
// API, on the phases filebased.py (beside it) times Django's FileBasedCache
// on; run.sh runs both and prints their ratios:
//
//	set     1,000 Sets of distinct keys, 100-byte values
//	get     1,000 Gets of those keys (hits)
//	add     1,000 Adds of new keys
//	delete  200 Deletes of keys set above
//	clear   one Clear of a fresh cache holding 250 entries (ns/op is per entry)
//
// The cache is opened as file:///<dir>?max_entries=100000, so that no phase
// culls (as Django's side, with MAX_ENTRIES 100000), with the default timeout
// of 300 s and no location (the entries are files of the directory itself,
// as Django's). Usage:
//
//	go run ./bench/django -dir /tmp/parent
//
// It prints one line per phase, "blobcache <phase> <ops> <ns/op>", and
// removes what it made under the directory.
//
// It is a plain timing loop rather than a benchmark of package bench: each
// phase runs a fixed number of operations once, as the Python side does, so
// that the two sides time the same work on the same files.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/blobcache/blobcache/cache"
	_ "github.com/blobcache/blobcache/drivers/file"
)

// The phases' sizes, the same as filebased.py's.
const (
	sets    = 1000
	gets    = 1000
	adds    = 1000
	deletes = 200
	clearN  = 250
	query   = "?max_entries=100000"
)

var value = bytes.Repeat([]byte("v"), 100)

func main() {
	log.SetFlags(0)
	log.SetPrefix("bench/django: ")
	parent := flag.String("dir", "", "parent of the cache directories (default: the system's temp dir)")
	flag.Parse()
	work, err := os.MkdirTemp(*parent, "blobcache-")
	if err != nil {
		log.Fatal(err)
	}
	err = run(context.Background(), work)
	os.RemoveAll(work)
	if err != nil {
		log.Fatal(err)
	}
}

func open(ctx context.Context, dir string) (*cache.Cache, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return cache.Open(ctx, "file://"+filepath.ToSlash(abs)+query)
}

// timed runs fn and prints its time per operation.
func timed(phase string, n int, fn func() error) error {
	start := time.Now()
	if err := fn(); err != nil {
		return fmt.Errorf("%s: %w", phase, err)
	}
	elapsed := time.Since(start)
	fmt.Printf("blobcache %s %d %.1f\n", phase, n, float64(elapsed.Nanoseconds())/float64(n))
	return nil
}

func run(ctx context.Context, work string) error {
	c, err := open(ctx, filepath.Join(work, "phases"))
	if err != nil {
		return err
	}
	defer c.Close()
	keys := make([]string, sets)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	fresh := make([]string, adds)
	for i := range fresh {
		fresh[i] = "new-" + strconv.Itoa(i)
	}
	phases := []struct {
		name string
		n    int
		fn   func() error
	}{
		{"set", sets, func() error {
			for _, k := range keys {
				if err := c.Set(ctx, k, value, cache.DefaultTTL); err != nil {
					return err
				}
			}
			return nil
		}},
		{"get", gets, func() error {
			for _, k := range keys[:gets] {
				v, err := c.Get(ctx, k)
				if err != nil {
					return err
				}
				if !bytes.Equal(v, value) {
					return fmt.Errorf("get %s: not the value set", k)
				}
			}
			return nil
		}},
		{"add", adds, func() error {
			for _, k := range fresh {
				ok, err := c.Add(ctx, k, value, cache.DefaultTTL)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("add %s: refused", k)
				}
			}
			return nil
		}},
		{"delete", deletes, func() error {
			for _, k := range keys[:deletes] {
				ok, err := c.Delete(ctx, k)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("delete %s: nothing deleted", k)
				}
			}
			return nil
		}},
	}
	for _, p := range phases {
		if err := timed(p.name, p.n, p.fn); err != nil {
			return err
		}
	}

	full, err := open(ctx, filepath.Join(work, "clear"))
	if err != nil {
		return err
	}
	defer full.Close()
	for i := range clearN {
		if err := full.Set(ctx, "clear-"+strconv.Itoa(i), value, cache.DefaultTTL); err != nil {
			return err
		}
	}
	if err := timed("clear", clearN, func() error { return full.Clear(ctx) }); err != nil {
		return err
	}
	if n, err := full.Len(ctx); err != nil || n != 0 {
		return fmt.Errorf("clear left %d entries behind (%v)", n, err)
	}
	return nil
}
