// Package gcs is the blobcache driver for Google Cloud Storage: the Go
// CDK's gcsblob (cloud.google.com/go/storage over the JSON API) through
// package github.com/blobcache/blobcache/drivers/blob, plus what only GCS
// has: generation preconditions for atomic creates, replaces and
// read-and-deletes. Importing the package registers the URL scheme gs
// ([OpenURL]) with package driver.
//
// A [*Driver] implements [driver.Driver], [driver.Replacer],
// [driver.BatchDeleter], [driver.ReadDeleter] and
// [driver.NameValidator]. It embeds the generic [*blob.Driver], to which
// it gives, through [blob.Provider], the ETag of a read (the object's
// generation) and the mapping of GCS's status codes to the driver's kinds;
// Replace, ReadDelete and DeleteBatch are its own. The Go client has no
// batch call: [Driver.DeleteBatch] sends the JSON API's batch request
// itself (100 deletes per request), so Clear, culling and DeleteMany send
// one request per 100 entries.
//
// # Atomicity and ETags
//
// Every object version in GCS has a generation, a number that changes on
// every write. The driver's ETag is the generation in decimal ("1712345678901234").
// A Write with IfAbsent sends ifGenerationMatch=0 (the Go client's
// DoesNotExist condition): GCS creates the object only if none exists,
// atomically, and otherwise answers 412. [Driver.Replace] sends
// ifGenerationMatch=<etag>: GCS replaces the object only if its live
// generation is still that one, and otherwise answers 412. Both are one
// request and atomic across processes. Read returns the generation of the
// object whose bytes it returns (the response's x-goog-generation), so a
// Read then a Replace is a compare-and-swap. List leaves ETag empty (the
// contract asks only Name, Size and ModTime of a listing).
//
// GCS answers 412 also when the object Replace names no longer exists
// (a missing object has generation 0, which matches no etag). The contract
// wants ErrNotFound then, so after a 412 Replace asks for the object's
// metadata once: when it is gone, Replace returns ErrNotFound, otherwise
// ErrPreconditionFailed. Either way nothing was written.
//
// # Content-Encoding
//
// WriteOptions.ContentEncoding is not stored: GCS serves an object stored
// with Content-Encoding gzip decompressed to a client that does not ask for
// gzip ("decompressive transcoding"), and the Go client decompresses it
// when it does, so storing it would change the bytes Read returns, which
// the contract forbids.
//
// # Names
//
// A name is stored under exactly that object name, and listed as exactly
// that name, or refused with [driver.ErrInvalidName] naming the rule:
// gcsblob escapes "\n", "\r", the "/" of "../" and the start of every
// "__0x<hex>__" sequence, so such names are refused (the rules of
// [blob.EscapingGCS]); every other valid name is kept as given.
//
// # Requests
//
// Open sends one buckets.get (the bucket must exist). Read is one object
// download (size, modification time and generation come from the
// response), except for a range that starts at or past the end of the
// object, which GCS refuses with 416 and which then costs one objects.get
// for the attributes. Write of an object below gcsblob's buffer size
// (the Go client's 16 MiB chunk) is one multipart upload; Replace is one
// too (plus one objects.get after a refusal, see above). Delete is one
// objects.delete (no lookup first), ReadDelete a download and an
// objects.delete of the generation read (a round more for each write
// landing between the two), List one objects.list per page, DeleteBatch
// one batch request per 100 names.
//
// # Retries
//
// The Go client retries a request that failed for a transient reason
// (a 429 or 5xx answer, a broken connection) when it is idempotent, which
// includes every conditional write. A conditional write whose first
// attempt succeeded but whose answer was lost is then refused by its own
// retry (412): the caller sees a lost race that it actually won. The cache
// treats that like any lost race (Add reports false, Incr and Touch
// re-read and retry), so no value is lost, but an Add can report false for
// the entry it wrote. GCS also limits writes to one object name to about
// one a second; a faster stream of writes to one key is slowed by 429
// answers and retries.
package gcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"github.com/blobcache/blobcache/driver"
	blobdrv "github.com/blobcache/blobcache/drivers/blob"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/blob/gcsblob"
	"gocloud.dev/gcerrors"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"
)

// Driver is the GCS driver. Besides the methods of the embedded
// [*blob.Driver] (Write, Delete, List, ValidateName), it implements
// [driver.Replacer], [driver.ReadDeleter] and its own Read and Close. It
// is safe for concurrent use.
type Driver struct {
	*blobdrv.Driver
	x      *blobdrv.Extension
	client *storage.Client
	owned  bool // Close closes client
	bucket string
	batch  *batcher // nil: DeleteBatch deletes one name at a time
}

// Compile-time checks.
var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.Replacer      = (*Driver)(nil)
	_ driver.BatchDeleter  = (*Driver)(nil)
	_ driver.NameValidator = (*Driver)(nil)
)

// ErrNotGCS is returned by [New] for a bucket that is not backed by gcsblob.
var ErrNotGCS = errors.New("gcs: bucket is not backed by gcsblob")

// Open returns a driver for the bucket. It builds a storage client from
// opts and checks with one buckets.get that the bucket exists; a missing
// bucket is an error naming it. Nothing is sent when opts or the bucket
// name are refused (errors wrapping [driver.ErrInvalidOption]).
func Open(ctx context.Context, bucket string, opts Options) (*Driver, error) {
	if err := validateBucket(bucket); err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	// Before the client looks for credentials, which may ask the metadata
	// server: a done context opens nothing and contacts nobody.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gcs: open bucket %q: %w", bucket, err)
	}
	var copts []option.ClientOption
	switch {
	case opts.Endpoint != "":
		copts = append(copts, option.WithoutAuthentication(),
			option.WithEndpoint(strings.TrimSuffix(opts.Endpoint, "/")+"/storage/v1/"))
	case opts.Anonymous:
		copts = append(copts, option.WithoutAuthentication())
	}
	if opts.HTTPClient != nil {
		copts = append(copts, option.WithHTTPClient(opts.HTTPClient))
	}
	client, err := storage.NewClient(ctx, copts...)
	if err != nil {
		return nil, fmt.Errorf("gcs: open bucket %q: %w", bucket, err)
	}
	if _, err := client.Bucket(bucket).Attrs(ctx); err != nil {
		client.Close()
		if errors.Is(err, storage.ErrBucketNotExist) {
			return nil, fmt.Errorf("gcs: open bucket %q: the bucket does not exist: %w", bucket, err)
		}
		return nil, fmt.Errorf("gcs: open bucket %q: %w", bucket, err)
	}
	b, err := gcsblob.OpenBucket(ctx, nil, bucket, &gcsblob.Options{Client: client})
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("gcs: open bucket %q: %w", bucket, err)
	}
	d, err := newDriver(b)
	if err != nil {
		b.Close()
		client.Close()
		return nil, fmt.Errorf("gcs: open bucket %q: %w", bucket, err)
	}
	d.owned = true
	d.batch, err = newBatcher(ctx, bucket, opts)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("gcs: open bucket %q: %w", bucket, err)
	}
	return d, nil
}

// newBatcher returns the batcher of a driver opened with opts: over
// opts.HTTPClient when set, a client without credentials with Endpoint or
// Anonymous, and otherwise one with Application Default Credentials, as the
// storage client has.
func newBatcher(ctx context.Context, bucket string, opts Options) (*batcher, error) {
	b := &batcher{
		url:    "https://storage.googleapis.com/batch/storage/v1",
		path:   "/storage/v1/b/" + url.PathEscape(bucket) + "/o/",
		client: opts.HTTPClient,
	}
	if opts.Endpoint != "" {
		b.url = strings.TrimSuffix(opts.Endpoint, "/") + "/batch/storage/v1"
	}
	if b.client != nil {
		return b, nil
	}
	if opts.Endpoint != "" || opts.Anonymous {
		b.client = http.DefaultClient
		return b, nil
	}
	c, _, err := htransport.NewClient(ctx, option.WithScopes(storage.ScopeFullControl))
	if err != nil {
		return nil, err
	}
	b.client = c
	return b, nil
}

// New returns a driver for b, a bucket of the caller's that must be backed
// by gcsblob over the JSON API (b.As(**storage.Client) succeeds; a Go CDK
// prefixed bucket included); otherwise it returns [ErrNotGCS]. It takes
// ownership of b only when it succeeds; the storage client stays the
// caller's (Close does not close it).
func New(b *gcblob.Bucket) (*Driver, error) {
	return newDriver(b)
}

func newDriver(b *gcblob.Bucket) (*Driver, error) {
	var client *storage.Client
	if !b.As(&client) || client == nil {
		return nil, ErrNotGCS
	}
	bucket, prefix, perr := probeBucket(b)
	d := &Driver{client: client, bucket: bucket}
	d.Driver, d.x = blobdrv.NewProvided(b, blobdrv.Provider{
		Name:         "gcs",
		Escaping:     blobdrv.EscapingGCS,
		KeyPrefix:    prefix,
		KeyPrefixErr: perr,
		ReadETag:     readETag,
		ErrorKind:    errorKind,
	}, blobdrv.WithBeforeWrite(dropContentEncoding))
	return d, nil
}

// Bucket returns the bucket name.
func (d *Driver) Bucket() string { return d.bucket }

// Client returns the storage client.
func (d *Driver) Client() *storage.Client { return d.client }

// String returns "gs://bucket".
func (d *Driver) String() string { return "gs://" + d.bucket }

// Read implements [driver.Driver]: the embedded driver's Read (one
// download), and for a range starting at or past the end of the object,
// which GCS refuses with 416, no bytes and the object's attributes from one
// objects.get, with the generation as ETag as on every read, and the
// modification time in whole seconds, as a download reports it.
func (d *Driver) Read(ctx context.Context, name string, offset, length int64) ([]byte, driver.Attributes, error) {
	buf, attrs, err := d.Driver.Read(ctx, name, offset, length)
	if err == nil || httpStatus(err) != http.StatusRequestedRangeNotSatisfiable || ctx.Err() != nil {
		return buf, attrs, err
	}
	a, err := d.Driver.Bucket().Attributes(ctx, name)
	if err != nil {
		return nil, driver.Attributes{}, d.x.Err(ctx, "read", name, err)
	}
	var oa storage.ObjectAttrs
	etag := ""
	if a.As(&oa) && oa.Generation > 0 {
		etag = strconv.FormatInt(oa.Generation, 10)
	}
	// A download's ModTime comes from its Last-Modified header, whole
	// seconds; the object's metadata has microseconds. Read returns one
	// ModTime for one object, whichever way it was read.
	return []byte{}, driver.Attributes{Name: name, Size: a.Size, ModTime: a.ModTime.Truncate(time.Second), ETag: etag}, nil
}

// Replace implements [driver.Replacer]: a write with ifGenerationMatch set
// to etag (the generation Read returned), set on the gcsblob writer's
// *storage.ObjectHandle through BeforeWrite. opts.IfAbsent is ignored. It
// is one upload: GCS answers 412 when the object's generation is no longer
// etag, returned as ErrPreconditionFailed. GCS answers 412 as well when the
// object is gone, so after a 412 one objects.get tells the two apart: a
// missing object is ErrNotFound. An etag that is not a generation (not a
// positive decimal number) matches no object: ErrPreconditionFailed,
// nothing sent.
func (d *Driver) Replace(ctx context.Context, name string, body io.Reader, etag string, opts *driver.WriteOptions) error {
	if err := d.x.Check(ctx, "replace", name); err != nil {
		return err
	}
	gen, perr := strconv.ParseInt(etag, 10, 64)
	if perr != nil || gen <= 0 || strconv.FormatInt(gen, 10) != etag {
		return fmt.Errorf("gcs: replace %q: %w: etag %s is not a generation", name, driver.ErrPreconditionFailed, quote(etag))
	}
	wo := &driver.WriteOptions{ContentEncoding: opts.ContentEncoding}
	err := d.x.Write(ctx, "replace", name, body, wo, func(asFunc func(any) bool) error {
		var objp **storage.ObjectHandle
		if !asFunc(&objp) || objp == nil || *objp == nil {
			return errors.New("gcs: replace: the gcsblob writer does not expose its *storage.ObjectHandle")
		}
		*objp = (*objp).If(storage.Conditions{GenerationMatch: gen})
		return nil
	})
	if err == nil || !errors.Is(err, driver.ErrPreconditionFailed) || ctx.Err() != nil {
		return err
	}
	// 412: changed, or gone. One lookup says which.
	if _, aerr := d.Driver.Bucket().Attributes(ctx, name); aerr != nil && errorKindOrCode(aerr) == driver.ErrNotFound {
		return d.x.Err(ctx, "replace", name, aerr)
	}
	return err
}

// Close implements [driver.Driver]: it closes the bucket and, for a driver
// made by [Open], the storage client. A second Close returns an error
// wrapping [driver.ErrClosed].
func (d *Driver) Close() error {
	if err := d.Driver.Close(); err != nil {
		return err
	}
	if d.owned {
		if err := d.client.Close(); err != nil {
			return fmt.Errorf("gcs: close: %w", err)
		}
	}
	return nil
}

// readETag is the driver's [blob.Provider] ReadETag: the generation of the
// object whose bytes the reader returns, in decimal.
func readETag(r *gcblob.Reader) string {
	var sr *storage.Reader
	if r.As(&sr) && sr != nil && sr.Attrs.Generation > 0 {
		return strconv.FormatInt(sr.Attrs.Generation, 10)
	}
	return ""
}

// dropContentEncoding is the driver's BeforeWrite hook: it clears the
// writer's Content-Encoding (see the package documentation). It runs after
// Replace's hook, which needs the object handle before the writer exists.
func dropContentEncoding(asFunc func(any) bool) error {
	var w *storage.Writer
	if !asFunc(&w) || w == nil {
		return errors.New("gcs: the gcsblob writer does not expose its *storage.Writer")
	}
	w.ContentEncoding = ""
	return nil
}

// errNoKind is what errorKind returns for a store error that has no kind
// but that gcsblob's error codes would give one: 403, which gcsblob calls
// NotFound. An access denial is not a miss: the cache must return it.
var errNoKind = errors.New("gcs: no kind")

// errorKind is the driver's [blob.Provider] ErrorKind: 404 is NotFound and
// 412 PreconditionFailed whether or not the Go client wrapped the
// *googleapi.Error (gcsblob recognises only an unwrapped one); 403 has no
// kind (gcsblob would call it NotFound); 416 is left to [Driver.Read].
func errorKind(err error) error {
	if errors.Is(err, storage.ErrObjectNotExist) {
		return driver.ErrNotFound
	}
	switch httpStatus(err) {
	case http.StatusNotFound:
		return driver.ErrNotFound
	case http.StatusPreconditionFailed:
		return driver.ErrPreconditionFailed
	case http.StatusForbidden, http.StatusUnauthorized:
		return errNoKind
	}
	return nil
}

// errorKindOrCode is errorKind, falling back to the Go CDK's code.
func errorKindOrCode(err error) error {
	if k := errorKind(err); k != nil {
		return k
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return driver.ErrNotFound
	case gcerrors.FailedPrecondition:
		return driver.ErrPreconditionFailed
	}
	return nil
}

// httpStatus returns the HTTP status of a *googleapi.Error in err's chain,
// or 0.
func httpStatus(err error) int {
	var gerr *googleapi.Error
	if errors.As(err, &gerr) {
		return gerr.Code
	}
	return 0
}
