package blob

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/blobcache/blobcache/driver"
	gcblob "gocloud.dev/blob"
)

// OpenURL opens a Go CDK bucket URL through gocloud's default URL mux
// (blob.OpenBucket) and returns [New] of it (a [*Driver]). The schemes available are those
// of the Go CDK driver packages the program imports: gs:// needs
// gocloud.dev/blob/gcsblob, azblob:// needs gocloud.dev/blob/azureblob, and
// so on. This package imports none of them. An s3:// URL is refused: it
// opens with drivers/s3 (s3.OpenURL), which lists S3 keys safely and
// implements DeleteBatch and Replace.
//
// The URL's scheme names the key-escaping rules (mem: memblob's, file:
// fileblob's, gs: gcsblob's, azblob: azureblob's; any other: EscapingAny)
// unless opts include [WithEscaping], and the Go CDK's prefix parameter is
// taken into account. The Go CDK's key parameter, which maps every name to
// one object, is refused.
func OpenURL(ctx context.Context, urlstr string, opts ...Option) (driver.Driver, error) {
	u, err := url.Parse(urlstr)
	if err != nil {
		return nil, fmt.Errorf("blob: open bucket: malformed bucket URL: %w", driver.ErrInvalidOption)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme == "s3" {
		return nil, fmt.Errorf("blob: open bucket: s3:// URLs open with package github.com/blobcache/blobcache/drivers/s3 (s3.OpenURL): %w", driver.ErrInvalidOption)
	}
	q := u.Query()
	if q.Has("key") {
		return nil, fmt.Errorf(`blob: open bucket: the URL parameter "key" makes the Go CDK store every name in one object, which a cache cannot use: %w`, driver.ErrInvalidOption)
	}
	esc, known := schemeEscaping[scheme]
	if !known {
		esc = EscapingAny
	}
	prefix := q.Get("prefix")
	opts = append([]Option{func(c *config) {
		c.escaping = &esc
		c.keyPrefix = &prefix
	}}, opts...)
	b, err := gcblob.OpenBucket(ctx, urlstr)
	if err != nil {
		// The Go CDK's errors quote the URL, whose query may hold secrets:
		// keep the message, without them.
		return nil, fmt.Errorf("blob: open bucket: %s", redactURLValues(err.Error(), urlstr))
	}
	return New(b, opts...), nil
}

// schemeEscaping maps the Go CDK's URL schemes to their drivers' rules.
var schemeEscaping = map[string]Escaping{
	"mem":    EscapingNone,
	"file":   EscapingFile,
	"gs":     EscapingGCS,
	"azblob": EscapingAzure,
}

// redactURLValues returns msg with the query of urlstr, each of its values
// and its password replaced by REDACTED.
func redactURLValues(msg, urlstr string) string {
	u, err := url.Parse(urlstr)
	if err != nil {
		return "malformed bucket URL"
	}
	var secrets []string
	if u.RawQuery != "" {
		secrets = append(secrets, u.RawQuery)
	}
	for _, vs := range u.Query() {
		secrets = append(secrets, vs...)
	}
	if p, ok := u.User.Password(); ok {
		secrets = append(secrets, p)
	}
	for i, s := range secrets {
		// The whole query always; single values of 4 bytes or more.
		if i == 0 && u.RawQuery != "" || len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "REDACTED")
			if q := strconv.Quote(s); len(q) > 2 {
				msg = strings.ReplaceAll(msg, q[1:len(q)-1], "REDACTED")
			}
		}
	}
	return msg
}
