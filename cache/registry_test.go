package cache_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/mem"
)

// opened counts the calls of the test scheme's Open, and records the URL
// the driver was given.
var (
	opened  atomic.Int64
	openURL atomic.Value // string
)

func init() {
	driver.Register(driver.Scheme{
		Name: "cachetest",
		Open: func(_ context.Context, u *url.URL) (driver.Driver, error) {
			opened.Add(1)
			openURL.Store(u.String())
			return mem.New(), nil
		},
		Secrets: []string{"token"},
		ValidateName: func(name string) error {
			if strings.Contains(name, "bad") {
				return fmt.Errorf("%w %q: no \"bad\" here", driver.ErrInvalidName, name)
			}
			return nil
		},
		Describe: func(u *url.URL) string { return "cachetest://" + u.Host + "?region=" + u.Query().Get("region") },
	})
}

func TestOpenUnregisteredSchemeNamesTheImport(t *testing.T) {
	for rawURL, want := range map[string]string{
		"nosuch://x?location=a": `import _ "the package of the driver that registers it"`,
		"NoSuch://x":            `scheme "nosuch"`,
	} {
		c, err := cache.Open(context.Background(), rawURL)
		if err == nil {
			c.Close()
			t.Fatalf("Open(%s): no error", rawURL)
		}
		msg := err.Error()
		if !errors.Is(err, cache.ErrInvalidOption) || !strings.Contains(msg, want) ||
			!strings.Contains(msg, "drivers/all") || !strings.Contains(msg, "registered: ") || !strings.Contains(msg, "mem") {
			t.Errorf("Open(%s) = %v; want ErrInvalidOption saying %s, naming drivers/all and the registered schemes", rawURL, err, want)
		}
	}
}

// TestOpenHugeSchemeErrorIsBounded: url.Parse limits a scheme's
// characters, not its length; the error quotes at most 64 bytes of it.
func TestOpenHugeSchemeErrorIsBounded(t *testing.T) {
	scheme := strings.Repeat("x", 1<<20)
	_, err := cache.Open(context.Background(), scheme+"://h")
	if !errors.Is(err, cache.ErrInvalidOption) || len(err.Error()) > 1000 {
		t.Fatalf("Open with a 1 MiB scheme: %d-byte error %.200q, want ErrInvalidOption of under 1000 bytes", len(err.Error()), err)
	}
}

func TestOpenRegisteredScheme(t *testing.T) {
	ctx := context.Background()
	before := opened.Load()
	c, err := cache.Open(ctx, "CacheTest://host/p?Location=app&region=eu&max_entries=5&token=s3cr3t")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n := opened.Load() - before; n != 1 {
		t.Fatalf("Open called the scheme's Open %d times, want 1", n)
	}
	// The driver sees its own parameters only, in order, under its scheme's
	// name in lower case.
	if got, want := openURL.Load(), "cachetest://host/p?region=eu&token=s3cr3t"; got != want {
		t.Errorf("the driver was opened with %q, want %q", got, want)
	}
	// The description is the scheme's, then the cache's options; no secret.
	if got, want := c.String(), "cachetest://host?region=eu&location=app&max_entries=5"; !strings.Contains(got, want) || strings.Contains(got, "s3cr3t") {
		t.Errorf("String() = %q, want it to contain %q and no secret", got, want)
	}
}

// TestOpenValidatesLocationBeforeOpen checks that the scheme's name rules
// refuse a location before the driver is opened (nothing is created or
// sent), and that the scheme's secrets are secrets of the URL.
func TestOpenValidatesLocationBeforeOpen(t *testing.T) {
	before := opened.Load()
	c, err := cache.Open(context.Background(), "cachetest://h?location=a/bad/b")
	if err == nil {
		c.Close()
		t.Fatal("Open with a location the scheme refuses: no error")
	}
	if !errors.Is(err, cache.ErrInvalidOption) || !errors.Is(err, driver.ErrInvalidName) || !strings.Contains(err.Error(), `location "a/bad/b"`) {
		t.Errorf("error %v: want ErrInvalidOption and ErrInvalidName naming the location", err)
	}
	if n := opened.Load() - before; n != 0 {
		t.Errorf("the driver was opened %d times for a refused location", n)
	}
	_, err = cache.Open(context.Background(), "cachetest://h?token=abc&TAILSECRET")
	if err == nil || strings.Contains(err.Error(), "TAIL") {
		t.Errorf("Open with a pair after the scheme's secret = %v; want an error that does not show the pair's name", err)
	}
}
