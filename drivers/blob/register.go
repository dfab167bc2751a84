package blob

import (
	"context"
	"fmt"
	"net/url"

	"github.com/blobcache/blobcache/driver"
	gcblob "gocloud.dev/blob"
)

func init() {
	RegisterScheme("gs", EscapingGCS, "gocloud.dev/blob/gcsblob")
}

// RegisterScheme registers the Go CDK URL scheme name (lower case, such as
// "gs") with package driver, so that cache URLs of that scheme open through
// [OpenURL] with the escaping rules esc ([WithEscaping]). pkg is the import
// path of the Go CDK driver package that serves the scheme: the program
// must import it (this package imports none), and opening a URL when it
// did not is an error that says so. The scheme's ValidateName refuses what
// a bucket without a Go CDK prefix parameter refuses (a prefix may refuse
// more, which the opened driver's ValidateName then says). Importing this
// package registers gs (gcsblob's rules); azblob is package
// github.com/blobcache/blobcache/drivers/azure's. Like
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
