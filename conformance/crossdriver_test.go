package conformance_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/blobcache/blobcache/conformance"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/file"
	"github.com/blobcache/blobcache/drivers/mem"
	"github.com/blobcache/blobcache/drivers/s3"
	"github.com/blobcache/blobcache/internal/azuritetest"
	"github.com/blobcache/blobcache/internal/gcstest"
	"github.com/blobcache/blobcache/internal/s3test"
	"github.com/google/go-cmp/cmp"
)

type driverFunc func(ctx context.Context) (driver.Driver, error)

func (f driverFunc) MakeDriver(ctx context.Context) (driver.Driver, error) { return f(ctx) }
func (f driverFunc) Close()                                                {}

// TestMain stops the Azurite that TestCrossDriver starts.
func TestMain(m *testing.M) { azuritetest.Main(m) }

// TestCrossDriver runs Compare's script on memory, a directory, MinIO,
// fake-gcs-server and Azurite and diffs the outcomes.
func TestCrossDriver(t *testing.T) {
	conformance.Compare(t, map[string]conformance.HarnessMaker{
		"mem": func(ctx context.Context, t *testing.T) (conformance.Harness, error) {
			return driverFunc(func(context.Context) (driver.Driver, error) { return mem.New(), nil }), nil
		},
		"file": func(ctx context.Context, t *testing.T) (conformance.Harness, error) {
			dir := t.TempDir()
			return driverFunc(func(context.Context) (driver.Driver, error) { return file.New(dir) }), nil
		},
		"minio": func(ctx context.Context, t *testing.T) (conformance.Harness, error) {
			cfg := s3test.Env(t)
			bucket := s3test.NewBucket(t, cfg)
			return driverFunc(func(ctx context.Context) (driver.Driver, error) {
				return s3.Open(ctx, bucket, s3.Options{Endpoint: cfg.Endpoint, Region: cfg.Region, UsePathStyle: true,
					AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey})
			}), nil
		},
		"fake-gcs-server": gcstest.HarnessMaker(),
		"azurite":         azuritetest.HarnessMaker(),
	})
}

// TestCompareCatchesADifference shows Compare fails when one driver culls
// differently: a driver whose listing hides one entry from the cache.
func TestCompareCatchesADifference(t *testing.T) {
	good, err := conformance.RunScript(t.Context(), mem.New())
	if err != nil {
		t.Fatal(err)
	}
	bad, err := conformance.RunScript(t.Context(), hidingDriver{mem.New()})
	if err != nil {
		t.Fatal(err)
	}
	if len(good.Entries) == 0 || good.Len == 0 {
		t.Fatalf("script outcome too thin to compare: %+v", good)
	}
	if good.Len == bad.Len && len(good.Entries) == len(bad.Entries) {
		t.Fatalf("a driver that hides entries from listings produced the same outcome")
	}
}

// hidingDriver lists one object fewer than it has.
type hidingDriver struct{ *mem.Driver }

func (d hidingDriver) List(ctx context.Context, o *driver.ListOptions) (*driver.ListPage, error) {
	p, err := d.Driver.List(ctx, o)
	if err == nil && len(p.Objects) > 0 {
		p.Objects = p.Objects[1:]
	}
	return p, err
}

// TestScriptCullsOldest checks the script's cull.Oldest phase on the mem
// driver: the four early entries not rewritten are culled, nothing else;
// and a driver whose ModTime does not move on overwrite culls the
// rewritten entry instead, so Compare tells it from the others.
func TestScriptCullsOldest(t *testing.T) {
	has := func(o *conformance.Outcome) map[string]bool {
		out := map[string]bool{}
		for _, s := range o.Steps {
			var k, v string
			if n, _ := fmt.Sscanf(s, "after cull oldest: has %s = %s", &k, &v); n == 2 {
				out[k] = v == "true"
			}
		}
		return out
	}
	good, err := conformance.RunScript(t.Context(), mem.New())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"early-0": true, "early-1": false, "early-2": false, "early-3": false, "early-4": false,
		"late-0": true, "late-1": true, "late-2": true, "late-3": true, "late-4": true}
	if diff := cmp.Diff(want, has(good)); diff != "" {
		t.Errorf("entries left by the cull.Oldest phase (-want +got):\n%s", diff)
	}
	bad, err := conformance.RunScript(t.Context(), &frozenModTime{Driver: mem.New(), first: map[string]time.Time{}})
	if err != nil {
		t.Fatal(err)
	}
	if cmp.Equal(has(good), has(bad)) {
		t.Errorf("a driver whose ModTime does not move on overwrite culled like the mem driver: %v", has(bad))
	}
}

// frozenModTime lists every object with the time of its first write.
type frozenModTime struct {
	*mem.Driver
	mu    sync.Mutex
	first map[string]time.Time
}

func (d *frozenModTime) Write(ctx context.Context, name string, body io.Reader, o *driver.WriteOptions) error {
	d.mu.Lock()
	if _, ok := d.first[name]; !ok {
		d.first[name] = time.Now()
	}
	d.mu.Unlock()
	return d.Driver.Write(ctx, name, body, o)
}

func (d *frozenModTime) List(ctx context.Context, o *driver.ListOptions) (*driver.ListPage, error) {
	p, err := d.Driver.List(ctx, o)
	if err != nil {
		return p, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, a := range p.Objects {
		if t, ok := d.first[a.Name]; ok {
			p.Objects[i].ModTime = t
		}
	}
	return p, nil
}
