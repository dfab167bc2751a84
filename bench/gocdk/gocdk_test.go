package gocdk_test

import (
	"errors"
	"testing"

	"gocloud.dev/blob/memblob"

	"github.com/blobcache/blobcache/bench"
	"github.com/blobcache/blobcache/bench/gocdk"
	"github.com/blobcache/blobcache/driver"
)

// TestBucket runs every operation once on a memblob bucket.
func TestBucket(t *testing.T) {
	ctx := t.Context()
	b := gocdk.Wrap(memblob.OpenBucket(nil))
	defer b.Close()
	opts := &bench.WriteOptions{ContentType: "application/octet-stream", IfNotExist: true}
	for _, k := range []string{"p/a", "p/b", "q"} {
		if err := b.WriteAll(ctx, k, []byte("value"), opts); err != nil {
			t.Fatalf("WriteAll(%s): %v", k, err)
		}
	}
	if err := b.WriteAll(ctx, "q", []byte("x"), opts); err == nil {
		t.Error("IfNotExist WriteAll of an existing key succeeded")
	}
	if v, err := b.ReadAll(ctx, "q"); err != nil || string(v) != "value" {
		t.Errorf("ReadAll = %q, %v", v, err)
	}
	if v, err := b.ReadRange(ctx, "q", 1, 3); err != nil || string(v) != "alu" {
		t.Errorf("ReadRange = %q, %v", v, err)
	}
	if err := b.Delete(ctx, "p/b"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := b.ReadAll(ctx, "p/b"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("ReadAll after Delete: %v, want driver.ErrNotFound", err)
	}
	if err := b.DeleteAll(ctx, "p/"); err != nil {
		t.Fatalf("DeleteAll: %v", err)
	}
	if _, err := b.ReadAll(ctx, "p/a"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("ReadAll after DeleteAll: %v, want driver.ErrNotFound", err)
	}
	if _, err := b.ReadAll(ctx, "q"); err != nil {
		t.Errorf("DeleteAll(p/) removed q: %v", err)
	}
}
