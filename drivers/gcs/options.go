package gcs

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/blobcache/blobcache/driver"
)

// optionError is an error of kind [driver.ErrInvalidOption], what every
// error about a bad option wraps: an unknown, malformed or repeated URL
// parameter, a value outside its set, or options that contradict each
// other. The message names the option. Its text is "gcs: " and the
// message, without the kind's own text.
type optionError struct {
	msg string
	err error // an *driver.UnknownOptionError, or nil
}

// Error implements error.
func (e *optionError) Error() string { return "gcs: " + e.msg }

// Unwrap returns the cause, if any (an *driver.UnknownOptionError).
func (e *optionError) Unwrap() error { return e.err }

// Is reports whether target is driver.ErrInvalidOption, the kind of every
// option error.
func (e *optionError) Is(target error) bool { return target == driver.ErrInvalidOption }

func invalid(format string, args ...any) error {
	return &optionError{msg: fmt.Sprintf(format, args...)}
}

// Options configure [Open]. The zero value opens an existing bucket on
// Google Cloud Storage with Application Default Credentials. Open refuses,
// with an error wrapping [driver.ErrInvalidOption] and before sending any
// request, a malformed value and any combination that contradicts itself.
type Options struct {
	// Endpoint is the base URL of a server speaking the GCS JSON API, such
	// as http://127.0.0.1:4443 for an emulator (fake-gcs-server): an
	// absolute http or https URL with a host and an empty path (or "/"),
	// without user information, query or fragment. Requests to it are sent
	// without credentials: the JSON API at Endpoint + "/storage/v1/", the
	// object downloads (the XML API, which the Go client reads objects
	// with) at Endpoint's host, as GCS serves them at
	// storage.googleapis.com. fake-gcs-server serves downloads only for its
	// public host, so start it with -public-host set to Endpoint's
	// host:port: otherwise every read is "not found". Empty means Google
	// Cloud Storage (or the Go client's STORAGE_EMULATOR_HOST, when set).
	Endpoint string
	// Anonymous sends requests without credentials, for public buckets.
	// It is implied by Endpoint.
	Anonymous bool
	// HTTPClient sends the requests, as given: it replaces the credential
	// chain, so against Google Cloud Storage it must authenticate its
	// requests itself. nil means the Go client's default (Application
	// Default Credentials, or none with Endpoint or Anonymous). Tests use
	// it to count requests.
	HTTPClient *http.Client
}

// String describes the options. They hold no secret.
func (o Options) String() string {
	hc := "nil"
	if o.HTTPClient != nil {
		hc = "set"
	}
	return fmt.Sprintf("gcs.Options{Endpoint:%s Anonymous:%v HTTPClient:%s}", strconv.Quote(o.Endpoint), o.Anonymous, hc)
}

// LogValue implements slog.LogValuer: String.
func (o Options) LogValue() slog.Value { return slog.StringValue(o.String()) }

// validate checks the options as Open does.
func (o *Options) validate() error {
	if o.Endpoint != "" {
		if err := validateEndpoint(o.Endpoint); err != nil {
			return err
		}
	}
	return nil
}

// validateEndpoint checks that e is an absolute http or https URL with a
// host and nothing that would be lost or leak (user information, path,
// query, fragment). Only its scheme and host are ever shown.
func validateEndpoint(e string) error {
	u, err := url.Parse(e)
	if err != nil {
		return invalid("endpoint is not a URL (want an absolute http:// or https:// URL such as http://127.0.0.1:4443)")
	}
	switch {
	case u.User != nil:
		return invalid("endpoint has user information: an endpoint takes no credentials")
	case u.Scheme != "http" && u.Scheme != "https":
		return invalid("endpoint scheme %s is not http or https", quote(u.Scheme))
	case u.Host == "" || u.Opaque != "":
		return invalid("endpoint %s has no host (want an absolute URL such as http://127.0.0.1:4443)", quote(u.Scheme+"://"))
	case u.Path != "" && u.Path != "/":
		return invalid("endpoint %s has a path: give the server's base URL (the client adds /storage/v1/)", quote(u.Scheme+"://"+u.Host))
	case u.RawQuery != "" || u.ForceQuery:
		return invalid("endpoint %s has a query", quote(u.Scheme+"://"+u.Host))
	case u.Fragment != "" || u.RawFragment != "":
		return invalid("endpoint %s has a fragment", quote(u.Scheme+"://"+u.Host))
	case strings.ContainsAny(u.Host, " \t\r\n"):
		return invalid("endpoint host is malformed")
	}
	if h := u.Hostname(); h == "" {
		return invalid("endpoint %s has no host name", quote(u.Scheme+"://"+u.Host))
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return invalid("endpoint port %s is not a port number", quote(p))
		}
	}
	return nil
}

// validateBucket checks a GCS bucket name: 3 to 222 bytes of lower-case
// letters, digits, '-', '_' and '.', starting and ending with a letter or
// digit, each dot-separated part at most 63 bytes.
func validateBucket(name string) error {
	if name == "" {
		return invalid("no bucket name (want gs://bucket)")
	}
	ok := len(name) >= 3 && len(name) <= 222
	for _, c := range []byte(name) {
		ok = ok && ('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_')
	}
	if ok {
		first, last := name[0], name[len(name)-1]
		alnum := func(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }
		ok = alnum(first) && alnum(last)
		for part := range strings.SplitSeq(name, ".") {
			ok = ok && part != "" && len(part) <= 63
		}
	}
	if !ok {
		return invalid("bucket name %s is not a GCS bucket name (3 to 222 lower-case letters, digits, '-', '_' and '.', starting and ending with a letter or digit)", quote(name))
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
