// Package blob is the blobcache driver over any Go CDK bucket
// (gocloud.dev/blob): memblob, fileblob, s3blob, gcsblob, azureblob and the
// rest.
//
// [New] wraps a *blob.Bucket and discovers what the bucket can do beyond the
// base [driver.Driver] through the bucket's As method. For a bucket backed by
// s3blob (As(**s3.Client) succeeds) it returns an [*S3Driver], which also
// implements [driver.BatchDeleter] (S3 DeleteObjects) and [driver.Replacer]
// (S3 If-Match). For every other bucket it returns a [*Driver], which
// implements neither, so a type assertion such as d.(driver.Replacer) is true
// exactly when the capability exists.
//
// # Atomicity
//
// WriteOptions.IfAbsent maps to the Go CDK's WriterOptions.IfNotExist and is
// only as atomic as the underlying Go CDK driver makes it. s3blob sends
// If-None-Match: * and is atomic. fileblob checks with a stat and then renames,
// which is not atomic: two processes can both "win". For a directory on disk
// use package github.com/blobcache/blobcache/drivers/file instead, which
// creates atomically (fileblob also cannot hold both "a" and "a/b"); for
// memory use drivers/mem, which serializes under a lock.
//
// # Names
//
// A name is stored, read, listed and deleted exactly as given, or refused.
// The Go CDK rewrites some keys on their way to the store and back: every
// one of its drivers except memblob escapes the "/" of "../" and the start
// of every "__0x<hex>__" sequence, and reads every such sequence back as the
// one character it stands for when listing (escape.HexUnescape); s3blob and
// fileblob also escape control characters, azureblob `\`, `"`, "#", "%" and
// "?", fileblob on Windows `\<>:"|?*` (see [Escaping] for each driver's
// rules, replicated from the Go CDK's source). A [Driver] refuses every name
// that its bucket's driver would store under another key or list as another
// name, and every listing prefix it would rewrite, with an error wrapping
// [driver.ErrInvalidName] that says which rule the name breaks.
// [Driver.ValidateName] ([driver.NameValidator]) says so in advance, and the
// cache calls it on its location at cache.New: a location such as "a.."
// (whose entries "a../<hash>" s3blob would store as "a..__0x2f__<hash>")
// fails when the cache is opened. The rules are found from the bucket (see
// [WithEscaping]); for memblob (drivers/mem) no valid name is refused. A
// Go CDK prefixed bucket's prefix counts as part of every name.
//
// Listings leave out every object whose name the driver would refuse: such
// an object was not written through it (someone with access to the store
// put it there), and the cache must never count, cull or delete it.
//
// # Listing on S3
//
// For a bucket backed by s3blob, List asks for url-encoded keys
// (EncodingType=url on the ListObjectsV2 request, set through the Go CDK's
// BeforeList hook), so that an object whose key holds any byte, such as a
// control character (which makes an unencoded response unreadable by the
// AWS SDK's XML decoder), cannot break a listing, a cull or a write. S3 and
// MinIO encode keys as an HTML form encodes a value: a space as "+", every
// byte outside A-Z, a-z, 0-9 and "-_.*/" as %XX (so "+" is %2B, "%" %25,
// "\x01" %01, "ü" %C3%BC). List decodes exactly that, with
// url.QueryUnescape, from the S3 object's own key, never from the Go CDK's
// ListObject.Key, which s3blob derives by applying HexUnescape to the key
// still encoded. A key that does not decode, or that decodes to a name the
// driver would refuse (not UTF-8, a control character, a "__0x<hex>__"
// sequence, outside the bucket's prefix), is skipped without an error. When
// a server ignores EncodingType (its response does not say "url"), keys are
// taken as sent; s3blob's legacy ListObjects (UseLegacyList), whose page
// marker the Go CDK derives from the last key, is not encoded. The request
// count does not change: one ListObjectsV2 per page.
//
// # Requests
//
// Read is one GetObject (size and modification time come from the response,
// never from an extra HEAD), except for a range that starts at or past the
// end of the object, which S3 refuses with 416 and which then costs one HEAD
// for the attributes. Write is one PutObject below the S3 multipart threshold
// (16 MiB). List is one ListObjectsV2 per page. On S3, Delete is one
// DeleteObject and DeleteBatch one DeleteObjects per 1000 names.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/blobcache/blobcache/driver"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// ContentType is the Content-Type every object is written with. Setting it
// explicitly keeps the Go CDK from sniffing the content.
const ContentType = "application/octet-stream"

// errClosed is returned by calls made after Close.
var errClosed = errors.New("blob: driver is closed")

// Option configures a driver made by [New], [NewBase], [NewS3] or [OpenURL].
type Option func(*config)

type config struct {
	beforeWrite []func(asFunc func(any) bool) error
	escaping    *Escaping // nil: found from the bucket
	keyPrefix   string    // the Go CDK prefixed bucket's prefix, when OpenURL knows it
}

// WithEscaping names the key-escaping rules of the bucket's Go CDK driver,
// which decide the names the driver refuses (see [Escaping]). Without it
// they are found from the bucket (s3blob and fileblob are recognised
// through As) or, for [OpenURL], from the URL's scheme; a bucket that is
// not recognised, such as a memblob bucket passed to [New], gets
// [EscapingAny], which refuses what any Go CDK driver would rewrite. Naming
// rules that are not the bucket's own lets names through that the store
// rewrites. A value that is not one of the constants is EscapingAny.
func WithEscaping(e Escaping) Option {
	return func(c *config) {
		if !e.valid() {
			e = EscapingAny
		}
		c.escaping = &e
	}
}

// WithBeforeWrite adds a hook run before every write (Write and Replace),
// as the Go CDK's WriterOptions.BeforeWrite: asFunc converts to the
// underlying driver's types, for s3blob *transfermanager.UploadObjectInput.
// drivers/s3 uses it to set the object ACL and storage class. Hooks run in the
// order given, after the driver's own settings.
func WithBeforeWrite(f func(asFunc func(any) bool) error) Option {
	return func(c *config) {
		if f != nil {
			c.beforeWrite = append(c.beforeWrite, f)
		}
	}
}

// Driver is the driver over a Go CDK bucket whose store offers nothing beyond
// the base interface (or whose extras this package does not know). It
// implements [driver.Driver] only. It is safe for concurrent use.
type Driver struct {
	b      *gcblob.Bucket
	cfg    config
	closed atomic.Bool
	// rules decide the names the driver refuses.
	rules nameRules
	// s3list, set for buckets backed by s3blob, lists with
	// EncodingType=url and takes each name from the S3 object's own key.
	s3list bool
	// s3, when set, is used by Read for the ETag and by Delete for a single
	// DeleteObject request. Only NewS3 sets it.
	s3 *s3caps
}

// Compile-time checks.
var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.NameValidator = (*Driver)(nil)
)

// New returns a driver for b and takes ownership of b: the driver's Close
// closes it. When b is backed by s3blob the result is an [*S3Driver], which
// also implements [driver.BatchDeleter] and [driver.Replacer]; otherwise it is
// a [*Driver], which implements neither.
func New(b *gcblob.Bucket, opts ...Option) driver.Driver {
	if d, err := NewS3(b, opts...); err == nil {
		return d
	}
	return NewBase(b, opts...)
}

// NewBase returns a [*Driver] for b that offers only the base interface, even
// when b could do more (a bucket backed by s3blob is still listed safely, as
// the package documentation describes). It takes ownership of b.
func NewBase(b *gcblob.Bucket, opts ...Option) *Driver {
	d := &Driver{b: b}
	for _, o := range opts {
		o(&d.cfg)
	}
	d.rules.keyPrefix = d.cfg.keyPrefix
	var client *s3.Client
	isS3 := b.As(&client) && client != nil
	switch {
	case d.cfg.escaping != nil:
		d.rules.esc = *d.cfg.escaping
	case isS3:
		d.rules.esc = EscapingS3
	default:
		var fi os.FileInfo
		if b.As(&fi) {
			d.rules.esc = EscapingFile
		} else {
			d.rules.esc = EscapingAny
		}
	}
	if isS3 {
		d.s3list = true
		d.rules.keyPrefix, d.rules.prefixErr = s3KeyPrefix(b)
	}
	return d
}

// ValidateName implements [driver.NameValidator]: it returns nil when name
// satisfies [driver.ValidateName] and the bucket stores, lists and deletes
// it exactly as given, and otherwise an error wrapping
// [driver.ErrInvalidName] that says which rule the name breaks (see the
// package documentation). Every method refuses such a name with that error.
func (d *Driver) ValidateName(name string) error {
	return d.rules.check(name, false)
}

// OpenURL opens a Go CDK bucket URL through gocloud's default URL mux
// (blob.OpenBucket) and returns [New] of it. The schemes available are those
// of the Go CDK driver packages the program imports: gs:// needs
// gocloud.dev/blob/gcsblob, azblob:// needs gocloud.dev/blob/azureblob, s3://
// needs gocloud.dev/blob/s3blob (package drivers/s3 imports it), and so on.
// This package imports none of them.
//
// The URL's scheme names the key-escaping rules (mem: memblob's, file:
// fileblob's, gs: gcsblob's, azblob: azureblob's, s3: s3blob's; any other:
// EscapingAny) unless opts include [WithEscaping], and the Go CDK's prefix
// parameter is taken into account. The Go CDK's key parameter, which maps
// every name to one object, is refused.
func OpenURL(ctx context.Context, urlstr string, opts ...Option) (driver.Driver, error) {
	u, err := url.Parse(urlstr)
	if err != nil {
		return nil, errors.New("blob: open bucket: malformed bucket URL")
	}
	q := u.Query()
	if q.Has("key") {
		return nil, errors.New(`blob: open bucket: the URL parameter "key" makes the Go CDK store every name in one object, which a cache cannot use`)
	}
	esc, known := schemeEscaping[strings.ToLower(u.Scheme)]
	if !known {
		esc = EscapingAny
	}
	prefix := q.Get("prefix")
	opts = append([]Option{func(c *config) {
		c.escaping = &esc
		c.keyPrefix = prefix
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
	"s3":     EscapingS3,
}

// Bucket returns the underlying Go CDK bucket. The driver still owns it.
func (d *Driver) Bucket() *gcblob.Bucket { return d.b }

// Read implements [driver.Driver]. It makes one read request and takes the
// size and modification time from the reader. ETag is set only for S3-backed
// buckets.
func (d *Driver) Read(ctx context.Context, name string, offset, length int64) ([]byte, driver.Attributes, error) {
	if err := d.checkName(ctx, "read", name); err != nil {
		return nil, driver.Attributes{}, err
	}
	r, err := d.b.NewRangeReader(ctx, name, offset, length, nil)
	if err != nil {
		if isInvalidRange(err) {
			// S3 refuses a range that starts at or past the end of the object
			// (416), which includes every range of an empty object. The
			// contract wants the bytes up to the end: none. One HEAD for the
			// attributes; this happens only on such reads.
			return d.readPastEnd(ctx, name)
		}
		return nil, driver.Attributes{}, d.mapErr(ctx, "read", name, err)
	}
	defer r.Close()
	// Preallocate what the reader will return: the rest of the object from
	// offset, at most length.
	n := max(r.Size()-offset, 0)
	if length >= 0 && length < n {
		n = length
	}
	// Read straight into a buffer of that size (the Go CDK's WriteTo would
	// copy through a 1 MiB buffer of its own), then make sure nothing follows.
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = fmt.Errorf("object shorter than its size %d: %w", r.Size(), io.ErrUnexpectedEOF)
		}
		return nil, driver.Attributes{}, d.mapErr(ctx, "read", name, err)
	}
	var extra [1]byte
	if k, err := r.Read(extra[:]); k > 0 || (err != nil && err != io.EOF) {
		if err == nil {
			err = fmt.Errorf("object longer than its size %d", r.Size())
		}
		return nil, driver.Attributes{}, d.mapErr(ctx, "read", name, err)
	}
	attrs := driver.Attributes{Name: name, Size: r.Size(), ModTime: r.ModTime()}
	if d.s3 != nil {
		attrs.ETag = s3ReaderETag(r)
	}
	return buf, attrs, nil
}

func (d *Driver) readPastEnd(ctx context.Context, name string) ([]byte, driver.Attributes, error) {
	a, err := d.b.Attributes(ctx, name)
	if err != nil {
		return nil, driver.Attributes{}, d.mapErr(ctx, "read", name, err)
	}
	return []byte{}, driver.Attributes{Name: name, Size: a.Size, ModTime: a.ModTime, ETag: a.ETag}, nil
}

// Write implements [driver.Driver]. The object is written with Content-Type
// application/octet-stream and opts.ContentEncoding. IfAbsent is the Go CDK's
// IfNotExist: as atomic as the underlying Go CDK driver (see the package
// documentation).
func (d *Driver) Write(ctx context.Context, name string, body io.Reader, opts *driver.WriteOptions) error {
	return d.write(ctx, "write", name, body, opts, nil)
}

// write uploads body. extra, when set, runs first in BeforeWrite.
func (d *Driver) write(ctx context.Context, op, name string, body io.Reader, opts *driver.WriteOptions, extra func(asFunc func(any) bool) error) error {
	if err := d.checkName(ctx, op, name); err != nil {
		return err
	}
	// Cancelling the writer's context is how the Go CDK aborts a write: every
	// driver checks it before committing. So a failing body stores nothing.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	br := &bodyReader{r: body, cancel: cancel}
	wo := &gcblob.WriterOptions{
		ContentType:     ContentType,
		ContentEncoding: opts.ContentEncoding,
		IfNotExist:      opts.IfAbsent,
	}
	hooks := d.cfg.beforeWrite
	if extra != nil || len(hooks) > 0 {
		wo.BeforeWrite = func(asFunc func(any) bool) error {
			if extra != nil {
				if err := extra(asFunc); err != nil {
					return err
				}
			}
			for _, h := range hooks {
				if err := h(asFunc); err != nil {
					return err
				}
			}
			return nil
		}
	}
	err := d.b.Upload(wctx, name, br, wo)
	if berr := br.failure(); berr != nil {
		return fmt.Errorf("blob: %s %q: reading body: %w", op, name, berr)
	}
	return d.mapErr(ctx, op, name, err)
}

// bodyReader records the first error of the body and cancels the write.
type bodyReader struct {
	r      io.Reader
	cancel context.CancelFunc
	mu     sync.Mutex
	err    error
}

// Read implements io.Reader.
func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
		b.cancel()
	}
	return n, err
}

func (b *bodyReader) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Delete implements [driver.Driver]. Deleting an absent object returns nil.
// On S3-backed buckets it is one DeleteObject request; on others it is the Go
// CDK's Delete, whose NotFound is turned into nil.
func (d *Driver) Delete(ctx context.Context, name string) error {
	if err := d.checkName(ctx, "delete", name); err != nil {
		return err
	}
	if d.s3 != nil {
		return d.s3.deleteOne(ctx, d, name)
	}
	err := d.b.Delete(ctx, name)
	if err != nil && gcerrors.Code(err) == gcerrors.NotFound && ctx.Err() == nil {
		return nil
	}
	return d.mapErr(ctx, "delete", name, err)
}

// List implements [driver.Driver]: a flat listing (no delimiter) through the
// Go CDK's ListPage, one request per page on S3. A prefix the store would
// rewrite is refused with [driver.ErrInvalidName]. Objects whose names this
// driver would refuse (see [Driver.ValidateName]) are left out: they were
// not written through it, and the caller never sees, counts or deletes
// them. So a page may hold fewer objects than asked, even none, and still
// have a NextPageToken. On s3blob, keys are listed url-encoded and decoded
// (see the package documentation).
//
// Pages of one object are fetched two at a time: MinIO reports a listing
// with MaxKeys=1 as complete when the prefix names an existing object, though
// more objects follow. The driver's page token is therefore the Go CDK's
// token behind one byte saying how many objects of that page were already
// returned (0 or 1).
func (d *Driver) List(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	if err := d.check(ctx, "list", opts.Prefix); err != nil {
		return nil, err
	}
	if err := d.rules.check(opts.Prefix, true); err != nil {
		return nil, fmt.Errorf("blob: list: %w", err)
	}
	size := opts.PageSize
	if size <= 0 || size > driver.MaxListPageSize {
		size = driver.MaxListPageSize
	}
	token, skip := gcblob.FirstPageToken, 0
	if t := opts.PageToken; t != "" {
		if t[0] != '0' && t[0] != '1' {
			return nil, fmt.Errorf("blob: list %q: malformed page token", opts.Prefix)
		}
		token, skip = []byte(t[1:]), int(t[0]-'0')
	}
	fetch := max(size+skip, 2)
	lo := &gcblob.ListOptions{Prefix: opts.Prefix}
	var enc *s3ListEncoding
	if d.s3list {
		enc = &s3ListEncoding{}
		lo.BeforeList = enc.beforeList
	}
	objs, next, err := d.b.ListPage(ctx, token, fetch, lo)
	if err != nil {
		return nil, d.mapErr(ctx, "list", opts.Prefix, err)
	}
	if enc != nil && enc.encoded > 0 && enc.plain > 0 {
		return nil, fmt.Errorf("blob: list %q: the server url-encoded the keys of some responses of one page and not of others", opts.Prefix)
	}
	objs = objs[min(skip, len(objs)):]
	page := &driver.ListPage{Objects: make([]driver.Attributes, 0, min(len(objs), size))}
	switch {
	case len(objs) > size: // only when size is 1: one more waits in this page
		objs = objs[:size]
		page.NextPageToken = "1" + string(token)
	case len(next) > 0:
		page.NextPageToken = "0" + string(next)
	}
	for _, o := range objs {
		if o.IsDir {
			continue
		}
		name := o.Key
		if enc != nil {
			var ok bool
			if name, ok, err = d.s3ListedName(o, enc); err != nil {
				return nil, fmt.Errorf("blob: list %q: %w", opts.Prefix, err)
			} else if !ok {
				continue
			}
		}
		if d.rules.check(name, false) != nil {
			continue // not written through this driver
		}
		if !strings.HasPrefix(name, opts.Prefix) {
			continue
		}
		page.Objects = append(page.Objects, driver.Attributes{Name: name, Size: o.Size, ModTime: o.ModTime})
	}
	return page, nil
}

// Close implements [driver.Driver]: it closes the bucket.
func (d *Driver) Close() error {
	if d.closed.Swap(true) {
		return errClosed
	}
	return d.b.Close()
}

// checkName is check, and refuses a name the driver would not keep as given.
func (d *Driver) checkName(ctx context.Context, op, name string) error {
	if err := d.check(ctx, op, name); err != nil {
		return err
	}
	if err := d.rules.check(name, false); err != nil {
		return fmt.Errorf("blob: %s: %w", op, err)
	}
	return nil
}

// check fails a call made after Close or with a done context; some Go CDK
// drivers (memblob) do not look at the context.
func (d *Driver) check(ctx context.Context, op, name string) error {
	if d.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: %s %q: %w", op, name, err)
	}
	return nil
}

// mapErr turns a Go CDK error into the driver's error kinds, keeping the
// original error wrapped: errors.Is finds both the kind and the store's error.
func (d *Driver) mapErr(ctx context.Context, op, name string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("blob: %s %q: %w (%w)", op, name, cerr, err)
	}
	if d.closed.Load() {
		// The Go CDK reports a closed bucket as FailedPrecondition; it is not
		// a refused precondition.
		return fmt.Errorf("%w: %w", errClosed, err)
	}
	switch {
	case gcerrors.Code(err) == gcerrors.NotFound:
		return fmt.Errorf("blob: %s %q: %w: %w", op, name, driver.ErrNotFound, err)
	case gcerrors.Code(err) == gcerrors.FailedPrecondition, isConditionalConflict(err):
		return fmt.Errorf("blob: %s %q: %w: %w", op, name, driver.ErrPreconditionFailed, err)
	}
	return fmt.Errorf("blob: %s %q: %w", op, name, err)
}

// isInvalidRange reports whether err is S3's (or an HTTP store's) 416 for a
// range that starts past the end.
func isInvalidRange(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "InvalidRange" {
		return true
	}
	var sc interface{ HTTPStatusCode() int }
	return errors.As(err, &sc) && sc.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable
}

// isConditionalConflict reports S3's 409 ConditionalRequestConflict: another
// conditional write to the same key is in flight. For IfAbsent and Replace
// that means another writer is taking the object, which callers handle like a
// lost race.
func isConditionalConflict(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ConditionalRequestConflict"
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
