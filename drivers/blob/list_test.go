package blob_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/blobcache/blobcache/driver"
	blobdrv "github.com/blobcache/blobcache/drivers/blob"
	"gocloud.dev/blob/memblob"
)

// TestListCutPagesStartAfterTheLastName lists pages smaller than the
// provider's MinListFetch (drivers/s3 sets 2), which the driver cuts from a
// larger Go CDK page, while deleting each page before asking for the next,
// as Clear does: the token must name the last object returned, not count
// them, or every deletion skips an object.
func TestListCutPagesStartAfterTheLastName(t *testing.T) {
	ctx := t.Context()
	d, _ := blobdrv.NewProvided(memblob.OpenBucket(nil), blobdrv.Provider{MinListFetch: 3})
	defer d.Close()
	const n = 20
	for i := range n {
		if err := d.Write(ctx, fmt.Sprintf("p/%02d", i), bytes.NewReader([]byte("x")), &driver.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]int{}
	token := ""
	for pages := 0; ; pages++ {
		if pages > 3*n {
			t.Fatal("the listing does not end")
		}
		page, err := d.List(ctx, &driver.ListOptions{Prefix: "p/", PageSize: 1, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Objects {
			seen[o.Name]++
			if err := d.Delete(ctx, o.Name); err != nil {
				t.Fatal(err)
			}
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	for i := range n {
		if name := fmt.Sprintf("p/%02d", i); seen[name] != 1 {
			t.Errorf("%s listed %d times, want once", name, seen[name])
		}
	}
	for _, bad := range []string{"x", "1", "1:", "1-1:ab", "105:abc", "199:ab", "1 1:a"} {
		if _, err := d.List(ctx, &driver.ListOptions{Prefix: "p/", PageToken: bad}); err == nil {
			t.Errorf("List with the malformed token %q: no error", bad)
		}
	}
}
