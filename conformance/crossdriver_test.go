package conformance_test

import (
	"context"
	"testing"

	"github.com/blobcache/blobcache/conformance"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/file"
	"github.com/blobcache/blobcache/drivers/mem"
	"github.com/blobcache/blobcache/drivers/s3"
	"github.com/blobcache/blobcache/internal/s3test"
)

type driverFunc func(ctx context.Context) (driver.Driver, error)

func (f driverFunc) MakeDriver(ctx context.Context) (driver.Driver, error) { return f(ctx) }
func (f driverFunc) Close()                                                {}

// TestCrossDriver runs Compare's script on memory, a directory and MinIO and
// diffs the outcomes.
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
