package s3

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/blobcache/blobcache/driver"
)

// DefaultRegion is the region used when neither Options.Region nor the AWS
// configuration names one.
const DefaultRegion = "us-east-1"

// DefaultACL is the canned ACL objects are written with when
// Options.DefaultACL is empty.
const DefaultACL = "private"

// optionError is an error of kind [driver.ErrInvalidOption], what every
// error about a bad option wraps: an unknown, malformed or repeated URL
// parameter, a value outside its set, or options that contradict each
// other. The message names the option; it never shows the secret key. Its text is "s3: " and
// the message, without the kind's own text.
type optionError struct {
	msg string
	err error // an *driver.UnknownOptionError, or nil
}

// Error implements error.
func (e *optionError) Error() string { return "s3: " + e.msg }

// Unwrap returns the cause, if any (an *driver.UnknownOptionError).
func (e *optionError) Unwrap() error { return e.err }

// Is reports whether target is driver.ErrInvalidOption, the kind of every
// option error.
func (e *optionError) Is(target error) bool { return target == driver.ErrInvalidOption }

func invalid(format string, args ...any) error {
	return &optionError{msg: fmt.Sprintf(format, args...)}
}

// Options configure [Open]. The zero value opens an existing bucket on AWS
// with the standard AWS configuration and credential chain. Open refuses,
// with [ErrInvalidOption] and before sending any request, a value outside its
// set and any setting that would have no effect or contradicts another.
//
// Options never print the secret key: String and Format redact it for every
// fmt verb, including %#v, and LogValue for log/slog.
type Options struct {
	// Endpoint is the base URL of an S3-compatible server, such as
	// http://127.0.0.1:9000 for MinIO: an absolute http or https URL with a
	// host, without user information, query or fragment. Empty means AWS.
	Endpoint string
	// Region is the signing region: letters, digits and '-', at most 63,
	// starting with a letter or digit. Empty means the AWS configuration's
	// region, or us-east-1.
	Region string
	// UsePathStyle addresses buckets as https://host/bucket instead of
	// https://bucket.host. MinIO usually needs it.
	UsePathStyle bool
	// AccessKey and SecretKey are static credentials, given both or neither.
	// When both are empty the standard AWS chain is used (environment,
	// shared files, roles). Neither may hold white space or control
	// characters.
	AccessKey string
	// SecretKey is the secret of AccessKey. It is never printed.
	SecretKey string
	// Profile selects a shared-configuration profile for the AWS chain; it
	// conflicts with static keys and with Anonymous.
	Profile string
	// Anonymous sends unsigned requests; it conflicts with static keys.
	Anonymous bool
	// CreateBucket creates the bucket at Open when it does not exist. An
	// existing bucket is used as is.
	CreateBucket bool
	// DefaultACL is the canned ACL set on every object written (x-amz-acl),
	// such as private or public-read. Empty means "private". It is matched
	// without case.
	DefaultACL string
	// BucketACL is the canned ACL of a bucket that CreateBucket makes; it is
	// refused without CreateBucket. Empty means DefaultACL.
	BucketACL string
	// StorageClass is the storage class of every object written
	// (x-amz-storage-class), such as STANDARD_IA, matched without case.
	// Empty means the bucket's default.
	StorageClass string
	// ReducedRedundancy is django-s3-cache's option: storage class
	// REDUCED_REDUNDANCY. It conflicts with any other StorageClass.
	ReducedRedundancy bool
	// ServerSideEncryption is the server-side encryption of every object
	// written: AES256, aws:kms or aws:kms:dsse, matched without case.
	ServerSideEncryption string
	// KMSKeyID is the KMS key for aws:kms and aws:kms:dsse encryption; it is
	// refused with any other.
	KMSKeyID string
	// Accelerate uses S3 Transfer Acceleration endpoints. It conflicts with
	// Endpoint, UsePathStyle and FIPS (the SDK cannot combine them).
	Accelerate bool
	// DualStack uses dual-stack (IPv4 and IPv6) endpoints. It conflicts with
	// Endpoint.
	DualStack bool
	// FIPS uses FIPS endpoints. It conflicts with Endpoint.
	FIPS bool
	// Lifecycle makes the store delete expired entries itself (see
	// [LifecycleTagKey]): off (the default, also when empty), tag, verify
	// or install ([LifecycleOff], [LifecycleTag], [LifecycleVerify],
	// [LifecycleInstall]), matched without case.
	Lifecycle string
	// HTTPClient sends the requests; nil means the AWS SDK's default (which
	// honours AWS_CA_BUNDLE). A client given here is used as is. Tests use it
	// to count requests.
	HTTPClient *http.Client
}

// String describes the options with the secret key redacted.
func (o Options) String() string {
	var b strings.Builder
	b.WriteString("s3.Options{")
	sep := ""
	field := func(name string, v any) {
		b.WriteString(sep)
		sep = " "
		fmt.Fprintf(&b, "%s:%v", name, v)
	}
	field("Endpoint", strconv.Quote(o.Endpoint))
	field("Region", strconv.Quote(o.Region))
	field("UsePathStyle", o.UsePathStyle)
	field("AccessKey", strconv.Quote(o.AccessKey))
	if o.SecretKey == "" {
		field("SecretKey", `""`)
	} else {
		field("SecretKey", "REDACTED")
	}
	field("Profile", strconv.Quote(o.Profile))
	field("Anonymous", o.Anonymous)
	field("CreateBucket", o.CreateBucket)
	field("DefaultACL", strconv.Quote(o.DefaultACL))
	field("BucketACL", strconv.Quote(o.BucketACL))
	field("StorageClass", strconv.Quote(o.StorageClass))
	field("ReducedRedundancy", o.ReducedRedundancy)
	field("ServerSideEncryption", strconv.Quote(o.ServerSideEncryption))
	field("KMSKeyID", strconv.Quote(o.KMSKeyID))
	field("Accelerate", o.Accelerate)
	field("DualStack", o.DualStack)
	field("FIPS", o.FIPS)
	field("Lifecycle", strconv.Quote(o.Lifecycle))
	if o.HTTPClient == nil {
		field("HTTPClient", "nil")
	} else {
		field("HTTPClient", "set")
	}
	b.WriteString("}")
	return b.String()
}

// GoString is String, so %#v does not show the secret key either.
func (o Options) GoString() string { return o.String() }

// Format prints String for every verb (%v, %+v, %#v, %s, %q, %x, ...).
func (o Options) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprint(f, strconv.Quote(o.String()))
		return
	}
	fmt.Fprint(f, o.String())
}

// LogValue implements slog.LogValuer: String, so that no handler (the JSON
// handler marshals structs field by field) shows the secret key.
func (o Options) LogValue() slog.Value { return slog.StringValue(o.String()) }

// objectACL, bucketACL and storageClass return the effective settings.
func (o *Options) objectACL() string {
	if o.DefaultACL == "" {
		return DefaultACL
	}
	return o.DefaultACL
}

func (o *Options) bucketACL() string {
	if o.BucketACL == "" {
		return o.objectACL()
	}
	return o.BucketACL
}

func (o *Options) storageClass() (string, error) {
	sc := o.StorageClass
	if o.ReducedRedundancy {
		if sc != "" && sc != string(types.StorageClassReducedRedundancy) {
			return "", invalid("reduced_redundancy conflicts with storage_class %q", sc)
		}
		sc = string(types.StorageClassReducedRedundancy)
	}
	return sc, nil
}

// oneOf returns the member of known equal to v without case, in its own
// spelling.
func oneOf[T ~string](v string, known []T) (string, bool) {
	for _, k := range known {
		if strings.EqualFold(v, string(k)) {
			return string(k), true
		}
	}
	return "", false
}

// validate checks every setting, so that a typo or a setting that would
// have no effect is an error at Open rather than on the first write or
// never. It rewrites the values of fixed sets in S3's spelling, and returns
// the effective storage class.
func (o *Options) validate() (storageClass string, err error) {
	if o.DefaultACL != "" {
		acl, ok := oneOf(o.DefaultACL, types.ObjectCannedACL("").Values())
		if !ok {
			return "", invalid("default_acl %s is not a canned ACL (want one of %v)", quote(o.DefaultACL), types.ObjectCannedACL("").Values())
		}
		o.DefaultACL = acl
	}
	if o.BucketACL != "" {
		if !o.CreateBucket {
			return "", invalid("bucket_acl applies only to a bucket create_bucket makes: set create_bucket=true or leave bucket_acl out")
		}
		acl, ok := oneOf(o.BucketACL, types.BucketCannedACL("").Values())
		if !ok {
			return "", invalid("bucket_acl %s is not a canned bucket ACL (want one of %v)", quote(o.BucketACL), types.BucketCannedACL("").Values())
		}
		o.BucketACL = acl
	}
	if o.CreateBucket {
		if acl := o.bucketACL(); !slices.Contains(types.BucketCannedACL("").Values(), types.BucketCannedACL(acl)) {
			return "", invalid("bucket_acl: create_bucket would make the bucket with default_acl %q, which is not a canned bucket ACL (set bucket_acl to one of %v)", acl, types.BucketCannedACL("").Values())
		}
	}
	if o.StorageClass != "" {
		sc, ok := oneOf(o.StorageClass, types.StorageClass("").Values())
		if !ok {
			return "", invalid("storage_class %s is not an S3 storage class (want one of %v)", quote(o.StorageClass), types.StorageClass("").Values())
		}
		o.StorageClass = sc
	}
	sc, err := o.storageClass()
	if err != nil {
		return "", err
	}
	if o.ServerSideEncryption != "" {
		e, ok := oneOf(o.ServerSideEncryption, types.ServerSideEncryption("").Values())
		if !ok {
			return "", invalid("ssetype %s is not a server-side encryption type (want one of %v)", quote(o.ServerSideEncryption), types.ServerSideEncryption("").Values())
		}
		o.ServerSideEncryption = e
	}
	if o.KMSKeyID != "" {
		if !strings.HasPrefix(o.ServerSideEncryption, "aws:kms") {
			return "", invalid("kmskeyid applies only to ssetype aws:kms or aws:kms:dsse")
		}
		if hasSpaceOrControl(o.KMSKeyID) {
			return "", invalid("kmskeyid %s holds white space or a control character", quote(o.KMSKeyID))
		}
	}
	if o.Lifecycle != "" {
		m, ok := oneOf(o.Lifecycle, lifecycleModes)
		if !ok {
			return "", invalid("lifecycle %s is not a lifecycle mode (want one of %v)", quote(o.Lifecycle), lifecycleModes)
		}
		o.Lifecycle = m
	}
	if err := o.validateCredentials(); err != nil {
		return "", err
	}
	if err := o.validateReach(); err != nil {
		return "", err
	}
	return sc, nil
}

// validateCredentials checks that one source of credentials is chosen,
// whole. No message shows a key.
func (o *Options) validateCredentials() error {
	switch {
	case (o.AccessKey == "") != (o.SecretKey == ""):
		return invalid("access_key and secret_key must be given together")
	case hasSpaceOrControl(o.AccessKey):
		return invalid("access_key holds white space or a control character")
	case hasSpaceOrControl(o.SecretKey):
		return invalid("secret_key holds white space or a control character (in a URL, an unescaped '+' is a space: write it as %%2B)")
	case o.Anonymous && o.AccessKey != "":
		return invalid("anonymous conflicts with access_key and secret_key")
	case o.Profile != "" && o.AccessKey != "":
		return invalid("profile conflicts with access_key and secret_key (the static keys would be used, not the profile's)")
	case o.Profile != "" && o.Anonymous:
		return invalid("profile conflicts with anonymous (the profile's credentials would not be used)")
	case hasSpaceOrControl(o.Profile):
		return invalid("profile %s holds white space or a control character", quote(o.Profile))
	}
	return nil
}

// validateReach checks the endpoint, the region and the endpoint variants.
func (o *Options) validateReach() error {
	if o.Endpoint != "" {
		if err := validateEndpoint(o.Endpoint); err != nil {
			return err
		}
		for _, f := range []struct {
			name string
			on   bool
		}{{"accelerate", o.Accelerate}, {"dualstack", o.DualStack}, {"fips", o.FIPS}} {
			if f.on {
				return invalid("%s conflicts with endpoint (it picks an AWS endpoint)", f.name)
			}
		}
	}
	if o.Accelerate && o.UsePathStyle {
		return invalid("accelerate conflicts with use_path_style")
	}
	if o.Accelerate && o.FIPS {
		return invalid("accelerate conflicts with fips")
	}
	if o.Region != "" && !isHostLabel(o.Region) {
		return invalid("region %s is not a region name (letters, digits and '-', at most 63, starting with a letter or digit)", quote(o.Region))
	}
	return nil
}

// validateEndpoint checks that e is an absolute http or https URL with a
// host and nothing that would be lost or leak (user information, query,
// fragment). Only the scheme, host and path of e are ever shown.
func validateEndpoint(e string) error {
	u, err := url.Parse(e)
	if err != nil {
		return invalid("endpoint is not a URL (want an absolute http:// or https:// URL such as http://127.0.0.1:9000)")
	}
	if u.User != nil {
		return invalid("endpoint has user information: pass credentials as access_key and secret_key")
	}
	shown := strconv.Quote((&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String())
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Opaque != "" || u.Hostname() == "" {
		return invalid("endpoint %s is not an absolute http:// or https:// URL with a host", shown)
	}
	if u.RawQuery != "" || u.ForceQuery || strings.Contains(e, "#") {
		return invalid("endpoint %s: a query or fragment is not allowed", shown)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return invalid("endpoint %s: port %s is out of range", shown, p)
		}
	}
	return nil
}

// isHostLabel reports whether s is a DNS label as the SDK's endpoint rules
// want a region: letters, digits and '-', 1 to 63 of them, starting with a
// letter or digit.
func isHostLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func hasSpaceOrControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0
}

// validateBucket checks that name can be a bucket: 3 to 255 letters,
// digits, '.', '-' and '_' (what S3, legacy us-east-1 buckets included, and
// MinIO accept). A name with '/', ':' or '?' would address something else.
func validateBucket(name string) error {
	if name == "" {
		return invalid("no bucket name")
	}
	ok := len(name) >= 3 && len(name) <= 255
	for _, c := range []byte(name) {
		ok = ok && ('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_')
	}
	if !ok {
		return invalid("bucket name %s is not a bucket name (3 to 255 letters, digits, '.', '-' and '_')", quote(name))
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
