package azure

import (
	"context"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/internal/query"
)

// OpenURL opens a driver from a URL:
//
//	azblob://container?account=myaccount&key=...
//	azblob://container?endpoint=http://127.0.0.1:10000/devstoreaccount1&account=devstoreaccount1&key=...
//	azblob://container?protocol=http&domain=127.0.0.1:10000&account=devstoreaccount1&key=...
//
// The host is the container. Parameter names are case-insensitive; each
// maps to the [Options] field of the same meaning: endpoint (alias
// service_url), account (aliases storage_account, account_name), key (alias
// account_key), domain, protocol, create_container. See [ParseURL] for what
// is refused. No error ever contains the key, and nothing is sent before
// every parameter has been checked.
func OpenURL(ctx context.Context, u *url.URL) (*Driver, error) {
	container, opts, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return Open(ctx, container, opts)
}

// urlParams maps each accepted parameter name (lower case) to its canonical
// name. The Go CDK azureblob's cdn and localemu are not taken (a loopback
// domain is addressed path style without localemu).
var urlParams = map[string]string{
	"endpoint":         "endpoint",
	"service_url":      "endpoint",
	"account":          "account",
	"storage_account":  "account",
	"account_name":     "account",
	"key":              "key",
	"account_key":      "key",
	"domain":           "domain",
	"protocol":         "protocol",
	"create_container": "create_container",
}

// isSecretOption reports whether the URL parameter name (any case) carries
// the key.
func isSecretOption(name string) bool { return urlParams[strings.ToLower(name)] == "key" }

// ParseURL returns the container and options of an azblob:// URL, as
// [OpenURL] reads them, without opening anything. Every parameter is
// honoured or refused with an error wrapping driver.ErrInvalidOption that
// names it: besides unknown names (also an *[driver.UnknownOptionError]) it
// refuses what url.ParseQuery would silently drop (a ';', a bad %-escape),
// a parameter without a value or with an empty one, one option given twice
// in any spelling or alias (key and ACCOUNT_KEY), a bad boolean (only
// strconv.ParseBool's forms), a URL fragment, path, port or user
// information, and every value or combination [Open] refuses.
func ParseURL(u *url.URL) (container string, opts Options, err error) {
	switch {
	case u.Scheme != "" && !strings.EqualFold(u.Scheme, Scheme):
		return "", Options{}, invalid("URL scheme %q is not %s", u.Scheme, Scheme)
	case u.Opaque != "":
		return "", Options{}, invalid("URL is not of the form azblob://container")
	case u.Path != "" && u.Path != "/":
		return "", Options{}, invalid("URL has a path %s; the container is the host (azblob://container) and the cache's folder is the location parameter", quote(u.Path))
	case u.User != nil:
		return "", Options{}, invalid("URL has user information; pass credentials as account and key")
	case u.Fragment != "" || u.RawFragment != "":
		return "", Options{}, invalid("URL has a fragment ('#' ends the query: write '#' in a value as %%23)")
	case u.Port() != "":
		return "", Options{}, invalid("URL has a port; the host is the container (name the service with endpoint or domain)")
	}
	qs, err := query.Parse(u.RawQuery, "URL parameter", isSecretOption)
	if err != nil {
		return "", Options{}, &optionError{msg: err.Error()}
	}
	vals := map[string]query.Param{} // canonical name -> the pair
	for _, p := range qs {
		canon, ok := urlParams[strings.ToLower(p.Name)]
		if !ok {
			if p.After != "" {
				return "", Options{}, invalid("%s is unknown (if the %s value holds '&', write it as %%26)", p.Describe("URL parameter"), p.After)
			}
			unknown := &driver.UnknownOptionError{Name: p.Name, Known: slices.Sorted(maps.Keys(urlParams))}
			return "", Options{}, &optionError{msg: unknown.Error(), err: unknown}
		}
		if prev, dup := vals[canon]; dup {
			if prev.Name == p.Name {
				return "", Options{}, invalid("URL parameter %q given more than once", p.Name)
			}
			return "", Options{}, invalid("URL parameter %q given twice (as %q and %q)", canon, prev.Name, p.Name)
		}
		vals[canon] = p
	}
	str := func(canon string) string { return vals[canon].Value }
	opts = Options{
		ServiceURL: str("endpoint"),
		Account:    str("account"),
		Key:        str("key"),
		Domain:     str("domain"),
		Protocol:   str("protocol"),
	}
	if p, ok := vals["create_container"]; ok {
		v, err := strconv.ParseBool(p.Value)
		if err != nil {
			return "", Options{}, invalid("URL parameter %q: %s is not a boolean (want true or false)", p.Name, quote(p.Value))
		}
		opts.CreateContainer = v
	}
	container = u.Hostname()
	if container == "" {
		return "", Options{}, invalid("URL names no container (want azblob://container)")
	}
	if err := validateContainer(container); err != nil {
		return "", Options{}, err
	}
	if err := opts.validate(); err != nil {
		return "", Options{}, err
	}
	return container, opts, nil
}
