package azure_test

import (
	"bytes"
	"errors"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/azure"
	"github.com/blobcache/blobcache/internal/azuritetest"
)

// TestReplaceRefusals: a Replace with a stale ETag is ErrPreconditionFailed,
// one of a deleted blob ErrNotFound (Azure answers 412 for both; one Get
// Blob Properties tells them apart), and nothing is written in either case.
func TestReplaceRefusals(t *testing.T) {
	cfg := azuritetest.Env(t)
	ct := azuritetest.NewCountingTransport(nil)
	opts := cfg.Options()
	opts.HTTPClient = &http.Client{Transport: ct}
	ctx := t.Context()
	d, err := azure.Open(ctx, azuritetest.NewContainer(t, cfg), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	wo := &driver.WriteOptions{}
	if err := d.Write(ctx, "k", bytes.NewReader([]byte("1")), wo); err != nil {
		t.Fatal(err)
	}
	_, a, err := d.Read(ctx, "k", 0, -1)
	if err != nil || a.ETag == "" {
		t.Fatalf("Read = %+v, %v; want an ETag", a, err)
	}
	if err := d.Replace(ctx, "k", bytes.NewReader([]byte("2")), a.ETag, wo); err != nil {
		t.Fatalf("Replace with the current ETag: %v", err)
	}
	ct.Reset()
	err = d.Replace(ctx, "k", bytes.NewReader([]byte("3")), a.ETag, wo)
	if !errors.Is(err, driver.ErrPreconditionFailed) || errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Replace with a stale ETag = %v, want ErrPreconditionFailed", err)
	}
	want := map[azuritetest.Op]int{azuritetest.PutBlob: 1, azuritetest.GetBlobProperties: 1}
	if got := ct.Snapshot(); !maps.Equal(got, want) {
		t.Errorf("refused Replace: requests = %v, want %v", got, want)
	}
	if b, _, err := d.Read(ctx, "k", 0, -1); err != nil || string(b) != "2" {
		t.Errorf("after a refused Replace: Read = %q, %v; want 2", b, err)
	}
	if err := d.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	err = d.Replace(ctx, "k", bytes.NewReader([]byte("4")), a.ETag, wo)
	if !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Replace of a deleted blob = %v, want ErrNotFound", err)
	}
	if _, _, err := d.Read(ctx, "k", 0, -1); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("after Replace of a deleted blob: Read = %v, want ErrNotFound", err)
	}
}

// TestStoredBlobNames: names with `"`, "#", "%" and "?" are stored under
// exactly that blob name; `\` as azureblob stores it, "__0x5c__".
func TestStoredBlobNames(t *testing.T) {
	cfg := azuritetest.Env(t)
	ctx := t.Context()
	name := azuritetest.NewContainer(t, cfg)
	d, err := azure.Open(ctx, name, cfg.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	names := map[string]string{`q"`: `q"`, "h#": "h#", "p%41": "p%41", "x?y=1": "x?y=1", `b\s`: "b__0x5c__s", "d/é +": "d/é +"}
	for n := range names {
		if err := d.Write(ctx, n, bytes.NewReader([]byte(n)), &driver.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	client, err := azuritetest.Client(cfg, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	pager := client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Segment.BlobItems {
			stored = append(stored, *it.Name)
		}
	}
	slices.Sort(stored)
	want := slices.Sorted(maps.Values(names))
	if !slices.Equal(stored, want) {
		t.Errorf("stored blob names = %q, want %q", stored, want)
	}
	page, err := d.List(ctx, &driver.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, o := range page.Objects {
		listed = append(listed, o.Name)
	}
	slices.Sort(listed)
	if want := slices.Sorted(maps.Keys(names)); !slices.Equal(listed, want) {
		t.Errorf("listed = %q, want %q", listed, want)
	}
}

// TestMissingContainer: Open refuses a missing container unless asked to
// create it; a container deleted under an open driver fails reads and
// writes with an error that is not ErrNotFound (it is no missing entry).
func TestMissingContainer(t *testing.T) {
	cfg := azuritetest.Env(t)
	ctx := t.Context()
	name := azuritetest.ContainerName()
	if _, err := azure.Open(ctx, name, cfg.Options()); err == nil {
		t.Fatal("Open of a missing container succeeded")
	}
	opts := cfg.Options()
	opts.CreateContainer = true
	d, err := azure.Open(ctx, name, opts)
	if err != nil {
		t.Fatalf("Open with CreateContainer: %v", err)
	}
	defer d.Close()
	client, err := azuritetest.Client(cfg, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Delete(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Read(ctx, "k", 0, -1); err == nil || errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Read in a deleted container = %v, want an error that is not ErrNotFound", err)
	}
	if err := d.Delete(ctx, "k"); err == nil {
		t.Errorf("Delete in a deleted container = nil, want an error")
	}
}
