package blob

import (
	"context"
	"fmt"
	"net/url"

	"github.com/blobcache/blobcache/driver"
	gcblob "gocloud.dev/blob"
)

// RegisterScheme registers the Go CDK URL scheme name (lower case, such as
// the scheme of a Go CDK driver of another provider) with package driver, so that cache URLs of that scheme open through
// [OpenURL] with the escaping rules esc ([WithEscaping]). pkg is the import
// path of the Go CDK driver package that serves the scheme: the program
// must import it (this package imports none), and opening a URL when it
// did not is an error that says so. The scheme's ValidateName refuses what
// a bucket without a Go CDK prefix parameter refuses (a prefix may refuse
// more, which the opened driver's ValidateName then says). Importing this
// package registers no scheme: gs:// is package
// github.com/blobcache/blobcache/drivers/gcs's, azblob:// package
// github.com/blobcache/blobcache/drivers/azure's, each with atomic
// conditional writes this package does not have. Like
// [driver.Register], it panics when name is invalid or already registered;
// call it from an init function.
func RegisterScheme(name string, esc Escaping, pkg string) {
	if !esc.valid() {
		esc = EscapingAny
	}
	driver.Register(driver.Scheme{
		Name: name,
		Open: func(ctx context.Context, u *url.URL) (driver.Driver, error) {
			if !gcblob.DefaultURLMux().ValidBucketScheme(name) {
				return nil, fmt.Errorf("blob: open %s:// bucket: no Go CDK driver is registered for the scheme: the program must import %s (import _ %q)", name, pkg, pkg)
			}
			return OpenURL(ctx, u.String(), WithEscaping(esc))
		},
		ValidateName: esc.ValidateName,
	})
}
