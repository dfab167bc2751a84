package azure

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/blobcache/blobcache/driver"
)

// DefaultDomain is the blob service domain of Azure's public cloud, used
// when neither Options.Domain nor Options.ServiceURL is set.
const DefaultDomain = "blob.core.windows.net"

// Environment variables read by [Open] when Options names neither an
// account nor a key (as the Go CDK's azureblob reads them): both set give
// a shared-key credential for that account.
const (
	EnvAccount = "AZURE_STORAGE_ACCOUNT"
	EnvKey     = "AZURE_STORAGE_KEY"
)

// optionError is an error of kind [driver.ErrInvalidOption], what every
// error about a bad option wraps. The message names the option; it never
// shows the key. Its text is "azure: " and the message.
type optionError struct {
	msg string
	err error // an *driver.UnknownOptionError, or nil
}

// Error implements error.
func (e *optionError) Error() string { return "azure: " + e.msg }

// Unwrap returns the cause, if any (an *driver.UnknownOptionError).
func (e *optionError) Unwrap() error { return e.err }

// Is reports whether target is driver.ErrInvalidOption, the kind of every
// option error.
func (e *optionError) Is(target error) bool { return target == driver.ErrInvalidOption }

func invalid(format string, args ...any) error {
	return &optionError{msg: fmt.Sprintf(format, args...)}
}

// Options configure [Open]. Open refuses, with an error wrapping
// driver.ErrInvalidOption and before sending any request, a malformed value
// and any setting that contradicts another.
//
// The service is addressed either by ServiceURL, or by Protocol, Account
// and Domain: https://<account>.blob.core.windows.net by default, and
// <protocol>://<domain>/<account> (path style, as the Go CDK's azureblob
// does) when Domain's host is 127.0.0.1, localhost or [::1], which is how
// Azurite is reached.
//
// Options never print the key: String and Format redact it for every fmt
// verb, including %#v, and LogValue for log/slog.
type Options struct {
	// ServiceURL is the blob service's base URL, such as
	// https://myaccount.blob.core.windows.net or, for Azurite,
	// http://127.0.0.1:10000/devstoreaccount1: an absolute http or https URL
	// with a host, without user information, query or fragment. It
	// conflicts with Domain and Protocol.
	ServiceURL string
	// Account is the storage account name: 3 to 24 lower-case letters and
	// digits. It is needed with Key, and to build the service URL when
	// ServiceURL is empty.
	Account string
	// Key is the account's shared key (base64), Azurite's well-known key
	// for devstoreaccount1 included. It is never printed. Without a key,
	// requests are signed with the Azure SDK's DefaultAzureCredential
	// (environment, workload or managed identity, Azure CLI), which needs
	// https.
	Key string
	// Domain is the blob service's host (and port), such as
	// blob.core.usgovcloudapi.net or 127.0.0.1:10000. Empty means
	// DefaultDomain.
	Domain string
	// Protocol is http or https (matched without case); empty means https.
	Protocol string
	// CreateContainer creates the container at Open when it does not
	// exist. An existing container is used as is.
	CreateContainer bool
	// HTTPClient sends the requests; nil means the Azure SDK's default. Tests
	// use it to count requests.
	HTTPClient *http.Client
}

// String describes the options with the key redacted.
func (o Options) String() string {
	key := `""`
	if o.Key != "" {
		key = "REDACTED"
	}
	hc := "nil"
	if o.HTTPClient != nil {
		hc = "set"
	}
	return fmt.Sprintf("azure.Options{ServiceURL:%q Account:%q Key:%s Domain:%q Protocol:%q CreateContainer:%v HTTPClient:%s}",
		o.ServiceURL, o.Account, key, o.Domain, o.Protocol, o.CreateContainer, hc)
}

// GoString is String, so %#v does not show the key either.
func (o Options) GoString() string { return o.String() }

// Format prints String for every verb (%v, %+v, %#v, %s, %q, %x, ...).
func (o Options) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprint(f, strconv.Quote(o.String()))
		return
	}
	fmt.Fprint(f, o.String())
}

// LogValue implements slog.LogValuer: String, so that no handler shows the
// key.
func (o Options) LogValue() slog.Value { return slog.StringValue(o.String()) }

// resolved is what Open needs of validated options.
type resolved struct {
	serviceURL string
	account    string
	key        string
}

// resolve checks every setting and returns the service URL and the
// credentials, taking the account and key from the environment when
// Options names neither (and ServiceURL is empty or Key would be needed).
func (o *Options) resolve() (resolved, error) {
	if err := o.validate(); err != nil {
		return resolved{}, err
	}
	r := resolved{account: o.Account, key: o.Key}
	if r.account == "" && r.key == "" {
		if a, k := os.Getenv(EnvAccount), os.Getenv(EnvKey); a != "" && (k != "" || o.ServiceURL == "") {
			if !isAccount(a) {
				return resolved{}, invalid("%s %s is not an account name (3 to 24 lower-case letters and digits)", EnvAccount, quote(a))
			}
			if k != "" && !isKey(k) {
				return resolved{}, invalid("%s is not a base64 key", EnvKey)
			}
			r.account, r.key = a, k
		}
	}
	switch {
	case o.ServiceURL != "":
		r.serviceURL = strings.TrimRight(o.ServiceURL, "/")
	case r.account == "":
		return resolved{}, invalid("no account (set account, or endpoint, or %s)", EnvAccount)
	default:
		proto := strings.ToLower(o.Protocol)
		if proto == "" {
			proto = "https"
		}
		domain := o.Domain
		if domain == "" {
			domain = DefaultDomain
		}
		if isLoopback(domain) {
			r.serviceURL = proto + "://" + domain + "/" + r.account
		} else {
			r.serviceURL = proto + "://" + r.account + "." + domain
		}
	}
	return r, nil
}

// validate checks each field and the combinations.
func (o *Options) validate() error {
	if o.ServiceURL != "" {
		if err := validateServiceURL(o.ServiceURL); err != nil {
			return err
		}
		if o.Domain != "" {
			return invalid("domain conflicts with endpoint (the endpoint names the service)")
		}
		if o.Protocol != "" {
			return invalid("protocol conflicts with endpoint (the endpoint names the service)")
		}
	}
	if o.Account != "" && !isAccount(o.Account) {
		return invalid("account %s is not an account name (3 to 24 lower-case letters and digits)", quote(o.Account))
	}
	if o.Key != "" {
		if o.Account == "" {
			return invalid("key needs account (the key signs requests for one account)")
		}
		if !isKey(o.Key) {
			return invalid("key is not a base64 key")
		}
	}
	if p := strings.ToLower(o.Protocol); p != "" && p != "http" && p != "https" {
		return invalid("protocol %s is not http or https", quote(o.Protocol))
	}
	if o.Domain != "" && !isDomain(o.Domain) {
		return invalid("domain %s is not a host name with an optional port (such as blob.core.windows.net or 127.0.0.1:10000)", quote(o.Domain))
	}
	return nil
}

// validateServiceURL checks that e is an absolute http or https URL with a
// host and nothing that would be lost or leak (user information, query,
// fragment). Only the scheme, host and path of e are ever shown.
func validateServiceURL(e string) error {
	u, err := url.Parse(e)
	if err != nil {
		return invalid("endpoint is not a URL (want an absolute http:// or https:// URL such as http://127.0.0.1:10000/devstoreaccount1)")
	}
	if u.User != nil {
		return invalid("endpoint has user information: pass credentials as account and key")
	}
	shown := strconv.Quote((&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String())
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Opaque != "" || u.Hostname() == "" {
		return invalid("endpoint %s is not an absolute http:// or https:// URL with a host", shown)
	}
	if u.RawQuery != "" || u.ForceQuery || strings.Contains(e, "#") {
		return invalid("endpoint %s: a query or fragment is not allowed (a SAS token is not supported)", shown)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return invalid("endpoint %s: port %s is out of range", shown, p)
		}
	}
	return nil
}

// isAccount reports whether s is a storage account name: 3 to 24
// lower-case letters and digits.
func isAccount(s string) bool {
	if len(s) < 3 || len(s) > 24 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// isKey reports whether s is standard base64 of at least one byte.
func isKey(s string) bool {
	b, err := base64.StdEncoding.DecodeString(s)
	return err == nil && len(b) > 0
}

// isDomain reports whether s is a host name or IP address, with an optional
// port from 1 to 65535: nothing that could add a path, user or query.
func isDomain(s string) bool {
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if strings.Contains(s, "]") || strings.Count(s, ":") > 0 {
		return false
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return false
		}
	}
	if ip := net.ParseIP(host); ip != nil {
		return true
	}
	if host == "" || len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// isLoopback reports whether a domain names this machine (127.0.0.1,
// localhost or [::1], with any port): the service is then addressed path
// style, as Azurite wants.
func isLoopback(domain string) bool {
	host := domain
	if h, _, err := net.SplitHostPort(domain); err == nil {
		host = h
	}
	return host == "127.0.0.1" || strings.EqualFold(host, "localhost") || host == "::1"
}

// validateContainer checks Azure's container naming rules: 3 to 63
// lower-case letters, digits and '-', starting and ending with a letter or
// digit, no "--". A name with '/', ':' or '?' would address something else.
func validateContainer(name string) error {
	ok := len(name) >= 3 && len(name) <= 63 && name[0] != '-' && name[len(name)-1] != '-' && !strings.Contains(name, "--")
	for _, c := range []byte(name) {
		ok = ok && ('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-')
	}
	if !ok {
		if name == "" {
			return invalid("no container name")
		}
		return invalid("container name %s is not a container name (3 to 63 lower-case letters, digits and single '-', starting and ending with a letter or digit)", quote(name))
	}
	return nil
}

// quote quotes a value for an error message, shortened past 64 bytes.
func quote(v string) string {
	if len(v) > 64 {
		return strconv.Quote(v[:61]) + "..."
	}
	return strconv.Quote(v)
}
