package azure

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// unescaped are the escape sequences the Go CDK's azureblob puts in a blob
// name for characters that Azure stores as given once they are
// percent-encoded in the URL, which the Azure SDK does: `"`, "#", "%" and
// "?". The driver's policy puts the characters back, so that a name holding
// them is stored under exactly that blob name (and other programs reading
// the container see it). A `\` stays escaped as "__0x5c__": Azure (and
// Azurite) would store it as "/". Every other escape sequence azureblob
// adds (for control characters, the "/" of "../" and an escape sequence
// already in a name) is for a name the driver refuses.
var unescaped = strings.NewReplacer(
	"__0x22__", `"`,
	"__0x23__", "#",
	"__0x25__", "%",
	"__0x3f__", "?",
)

// namePolicy is the driver's Azure SDK per-call policy, run before
// signing: it undoes azureblob's escaping (see unescaped) in the blob
// name of every request to a blob of the container and in the prefix of
// every listing, and asks for the stored bytes as they are (Accept-Encoding:
// identity), so that Go's HTTP transport never decompresses a blob stored
// with Content-Encoding gzip.
type namePolicy struct {
	// containerPath is the URL path of the container, such as
	// "/devstoreaccount1/c"; blob names follow it after a "/".
	containerPath string
}

// Do implements policy.Policy.
func (p *namePolicy) Do(req *policy.Request) (*http.Response, error) {
	raw := req.Raw()
	raw.Header.Set("Accept-Encoding", "identity")
	u := raw.URL
	if key, ok := strings.CutPrefix(u.Path, p.containerPath+"/"); ok && strings.Contains(key, "__0x") {
		key = unescaped.Replace(key)
		// The Azure SDK percent-encodes the whole name, "/" included.
		u.Path = p.containerPath + "/" + key
		u.RawPath = (&url.URL{Path: p.containerPath}).EscapedPath() + "/" + url.PathEscape(key)
	}
	if u.Path == p.containerPath && strings.Contains(u.RawQuery, "__0x") {
		q := u.Query()
		if pre := q.Get("prefix"); pre != "" && q.Get("comp") == "list" {
			q.Set("prefix", unescaped.Replace(pre))
			u.RawQuery = q.Encode()
		}
	}
	return req.Next()
}
