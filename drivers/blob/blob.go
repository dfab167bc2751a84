// Package blob is the blobcache driver over any Go CDK bucket
// (gocloud.dev/blob): memblob, fileblob, gcsblob, azureblob and the rest.
// It imports none of the Go CDK's provider packages: a program imports the
// ones it uses.
//
// [New] wraps a *blob.Bucket in a [*Driver], which implements
// [driver.Driver] and [driver.NameValidator] and nothing else: no
// [driver.BatchDeleter], no [driver.Replacer], so the cache falls back to
// one Delete per entry and to plain writes for Touch and Incr.
//
// # Extension point
//
// A driver package for one provider builds on this one the way the Go CDK's
// drivers build on its portable type: [NewProvided] takes a [Provider], a
// small set of hooks for what only the provider's SDK can do (the ETag of a
// read, a one-request delete, a listing hook that decodes keys, the mapping
// of the provider's error codes to the driver's kinds, a minimum listing
// fetch), and returns the [*Driver] together with an [Extension] that
// gives the package the driver's checks, error wrapping and writes with a
// per-call BeforeWrite hook, for the capabilities it implements itself.
// The [*Driver] keeps every check (closed driver, done context, names it
// must refuse) and wraps every error; each hook is told what it may
// assume. Package github.com/blobcache/blobcache/drivers/s3 is built this
// way: embedding the *Driver, it adds DeleteBatch (DeleteObjects) and
// Replace (If-Match), and lists S3 keys url-encoded. Open s3blob buckets
// with it (s3.New), not with [New].
//
// # Atomicity
//
// WriteOptions.IfAbsent maps to the Go CDK's WriterOptions.IfNotExist and is
// only as atomic as the underlying Go CDK driver makes it. memblob checks
// and writes under its lock, which is atomic within the process that holds
// the bucket. fileblob checks with a stat and then renames, which is not
// atomic: two writers can both "win". For a directory on disk use package
// github.com/blobcache/blobcache/drivers/file instead, which creates
// atomically (fileblob also cannot hold both "a" and "a/b"); for memory use
// drivers/mem.
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
// (whose entries "a../<hash>" every Go CDK driver but memblob would store
// as "a..__0x2f__<hash>") fails when the cache is opened. The rules are
// found from the bucket (fileblob is recognised through As), from a
// [Provider], from the URL's scheme ([OpenURL]) or from [WithEscaping];
// for memblob with [EscapingNone] no valid name is refused. A Go CDK
// prefixed bucket's prefix counts as part of every name where it is known
// (OpenURL's prefix parameter, a Provider's KeyPrefix).
//
// Listings leave out every object whose name the driver would refuse: such
// an object was not written through it (someone with access to the store
// put it there), and the cache must never count, cull or delete it.
//
// # Requests
//
// Read is one read request (size and modification time come from the
// reader, never from an extra attributes request), except where a
// [Provider] reports a range past the end as [ErrInvalidRange], which then
// costs one attributes request. Write is one upload (the Go CDK may split
// a large one). List is one Go CDK ListPage per page. Delete is the Go
// CDK's Delete (whose drivers may look before they delete), or one request
// through a Provider's Delete.
//
// # Schemes
//
// Importing this package registers no URL scheme: gs:// is registered by
// github.com/blobcache/blobcache/drivers/gcs and azblob:// by
// github.com/blobcache/blobcache/drivers/azure, which add atomic
// conditional writes; [RegisterScheme] registers another Go CDK scheme.
// [OpenURL] still opens a gs:// or azblob:// Go CDK URL for a program that
// calls it directly and imports gcsblob or azureblob.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/blobcache/blobcache/driver"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// ContentType is the Content-Type every object is written with. Setting it
// explicitly keeps the Go CDK from sniffing the content.
const ContentType = "application/octet-stream"

// errClosed is the cause of every error of a call made after Close.
var errClosed = driver.ErrClosed

// Option configures a driver made by [New], [NewProvided] or [OpenURL].
type Option func(*config)

type config struct {
	beforeWrite []func(asFunc func(any) bool) error
	escaping    *Escaping // nil: found from the bucket
	keyPrefix   *string   // the Go CDK prefixed bucket's prefix, when OpenURL knows it
}

// WithEscaping names the key-escaping rules of the bucket's Go CDK driver,
// which decide the names the driver refuses (see [Escaping]). Without it
// they are a [Provider]'s, or found from the bucket (fileblob is recognised
// through As), or, for [OpenURL], from the URL's scheme; a bucket that is
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

// WithBeforeWrite adds a hook run before every write (Write, and an
// [Extension]'s Write), as the Go CDK's WriterOptions.BeforeWrite: asFunc
// converts to the underlying driver's types. drivers/s3 uses it to set the
// object ACL and storage class. Hooks run in the order given, after the
// driver's own settings.
func WithBeforeWrite(f func(asFunc func(any) bool) error) Option {
	return func(c *config) {
		if f != nil {
			c.beforeWrite = append(c.beforeWrite, f)
		}
	}
}

// Driver is the driver over a Go CDK bucket. It implements [driver.Driver]
// and [driver.NameValidator]. It is safe for concurrent use.
type Driver struct {
	b      *gcblob.Bucket
	cfg    config
	p      Provider
	name   string // the first word of every error message
	closed atomic.Bool
	// rules decide the names the driver refuses.
	rules nameRules
}

// Compile-time checks.
var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.NameValidator = (*Driver)(nil)
)

// New returns a driver for b and takes ownership of b: the driver's Close
// closes it. The driver implements the base interface only, whatever b's
// Go CDK driver can do; for an s3blob bucket use drivers/s3's New instead.
func New(b *gcblob.Bucket, opts ...Option) *Driver {
	return newDriver(b, Provider{}, opts)
}

func newDriver(b *gcblob.Bucket, p Provider, opts []Option) *Driver {
	d := &Driver{b: b, p: p, name: p.Name}
	if d.name == "" {
		d.name = "blob"
	}
	d.p.MinListFetch = min(max(p.MinListFetch, 1), 10)
	for _, o := range opts {
		o(&d.cfg)
	}
	var fi os.FileInfo
	switch {
	case d.cfg.escaping != nil:
		d.rules.esc = *d.cfg.escaping
	case p.Escaping != EscapingAny && p.Escaping.valid():
		d.rules.esc = p.Escaping
	case b.As(&fi):
		d.rules.esc = EscapingFile
	default:
		d.rules.esc = EscapingAny
	}
	d.rules.keyPrefix, d.rules.prefixErr = p.KeyPrefix, p.KeyPrefixErr
	if d.rules.prefixErr == nil && d.rules.esc != EscapingNone {
		for i := range len(p.KeyPrefix) {
			if escapeSequenceAt(p.KeyPrefix, i) {
				d.rules.prefixErr = fmt.Errorf("the bucket's key prefix is rewritten by %s (it is stored as %q), so no name under it would be listed as written", d.rules.esc, p.KeyPrefix)
				break
			}
		}
	}
	if d.cfg.keyPrefix != nil {
		d.rules.keyPrefix = *d.cfg.keyPrefix
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

// Bucket returns the underlying Go CDK bucket. The driver still owns it.
func (d *Driver) Bucket() *gcblob.Bucket { return d.b }

// Read implements [driver.Driver]. It makes one read request and takes the
// size and modification time from the reader. ETag is set where the
// [Provider] reads it.
func (d *Driver) Read(ctx context.Context, name string, offset, length int64) ([]byte, driver.Attributes, error) {
	if err := d.checkName(ctx, "read", name); err != nil {
		return nil, driver.Attributes{}, err
	}
	r, err := d.b.NewRangeReader(ctx, name, offset, length, nil)
	if err != nil {
		if d.kind(err) == ErrInvalidRange && ctx.Err() == nil {
			// The store refuses a range that starts at or past the end of
			// the object (S3's 416), which includes every range of an empty
			// object. The contract wants the bytes up to the end: none. One
			// attributes request; this happens only on such reads.
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
	if d.p.ReadETag != nil {
		attrs.ETag = d.p.ReadETag(r)
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
		return fmt.Errorf("%s: %s %q: reading body: %w", d.name, op, name, berr)
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
// It is the Go CDK's Delete, whose NotFound is turned into nil, or the
// [Provider]'s one-request Delete.
func (d *Driver) Delete(ctx context.Context, name string) error {
	if err := d.checkName(ctx, "delete", name); err != nil {
		return err
	}
	var err error
	if d.p.Delete != nil {
		err = d.p.Delete(ctx, name)
	} else {
		err = d.b.Delete(ctx, name)
	}
	if err != nil && d.kind(err) == driver.ErrNotFound && ctx.Err() == nil && !d.closed.Load() {
		return nil
	}
	return d.mapErr(ctx, "delete", name, err)
}

// List implements [driver.Driver]: a flat listing (no delimiter) through the
// Go CDK's ListPage, one ListPage per page. A prefix the store would rewrite
// is refused with [driver.ErrInvalidName]. Objects whose names this driver
// would refuse (see [Driver.ValidateName]) are left out: they were not
// written through it, and the caller never sees, counts or deletes them.
// So a page may hold fewer objects than asked, even none, and still have a
// NextPageToken.
//
// The driver's page token is "0" and the Go CDK's token of the next page,
// or, for a page smaller than the [Provider]'s MinListFetch that was cut
// from a larger Go CDK page, "1", the length of the last name returned, ":",
// that name, and the Go CDK token of the page it was cut from: the next
// call fetches that Go CDK page again and starts strictly after the name,
// so objects deleted or written in between never shift it (a count of the
// objects already returned would skip one for each object deleted).
func (d *Driver) List(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	if err := d.check(ctx, "list", opts.Prefix); err != nil {
		return nil, err
	}
	if err := d.rules.check(opts.Prefix, true); err != nil {
		return nil, fmt.Errorf("%s: list: %w", d.name, err)
	}
	size := opts.PageSize
	if size <= 0 || size > driver.MaxListPageSize {
		size = driver.MaxListPageSize
	}
	token, after, hasAfter, err := parsePageToken(opts.PageToken)
	if err != nil {
		return nil, fmt.Errorf("%s: list %q: %w", d.name, opts.Prefix, err)
	}
	lo := &gcblob.ListOptions{Prefix: opts.Prefix}
	var hook ListHook
	if d.p.List != nil {
		hook = d.p.List()
		lo.BeforeList = hook.BeforeList
	}
	objs, next, err := d.b.ListPage(ctx, token, max(size, d.p.MinListFetch), lo)
	// A listing is never "not found"; a store that reads each object's
	// attributes after reading the folder (fileblob's lstat after readdir)
	// reports one deleted in between so. The page is listed again.
	for try := 1; err != nil && try < listRetries && d.kind(err) == driver.ErrNotFound && ctx.Err() == nil; try++ {
		objs, next, err = d.b.ListPage(ctx, token, max(size, d.p.MinListFetch), lo)
	}
	if err != nil {
		return nil, d.mapErr(ctx, "list", opts.Prefix, err)
	}
	page := &driver.ListPage{Objects: make([]driver.Attributes, 0, min(len(objs), size))}
	for _, o := range objs {
		if o.IsDir {
			continue
		}
		name := o.Key
		if hook.Name != nil {
			var ok bool
			if name, ok, err = hook.Name(o); err != nil {
				return nil, fmt.Errorf("%s: list %q: %w", d.name, opts.Prefix, err)
			} else if !ok {
				continue
			}
		}
		if d.rules.check(name, false) != nil {
			continue // not written through this driver
		}
		if !strings.HasPrefix(name, opts.Prefix) || hasAfter && name <= after {
			continue
		}
		if len(page.Objects) == size {
			// More of this Go CDK page wait (only when size <
			// MinListFetch): the next call starts after the last name.
			last := page.Objects[size-1].Name
			page.NextPageToken = "1" + strconv.Itoa(len(last)) + ":" + last + string(token)
			return page, nil
		}
		page.Objects = append(page.Objects, driver.Attributes{Name: name, Size: o.Size, ModTime: o.ModTime})
	}
	if len(next) > 0 {
		page.NextPageToken = "0" + string(next)
	}
	return page, nil
}

// listRetries is how often List asks for a page whose listing failed
// because an object vanished while it was listed.
const listRetries = 8

// parsePageToken reads a page token of List: the Go CDK token to fetch,
// and the name the page starts after, if any.
func parsePageToken(t string) (token []byte, after string, hasAfter bool, err error) {
	if t == "" {
		return gcblob.FirstPageToken, "", false, nil
	}
	malformed := errors.New("malformed page token")
	switch t[0] {
	case '0':
		return []byte(t[1:]), "", false, nil
	case '1':
		n, rest, ok := strings.Cut(t[1:], ":")
		length, err := strconv.Atoi(n)
		if !ok || err != nil || length < 0 || length > len(rest) || n != strconv.Itoa(length) {
			return nil, "", false, malformed
		}
		return []byte(rest[length:]), rest[:length], true, nil
	}
	return nil, "", false, malformed
}

// Close implements [driver.Driver]: it closes the bucket. A second Close
// returns an error.
func (d *Driver) Close() error {
	if d.closed.Swap(true) {
		return fmt.Errorf("%s: close: %w", d.name, errClosed)
	}
	return d.b.Close()
}

// checkName is check, and refuses a name the driver would not keep as given.
func (d *Driver) checkName(ctx context.Context, op, name string) error {
	if err := d.check(ctx, op, name); err != nil {
		return err
	}
	if err := d.rules.check(name, false); err != nil {
		return fmt.Errorf("%s: %s: %w", d.name, op, err)
	}
	return nil
}

// check fails a call made after Close or with a done context; some Go CDK
// drivers (memblob) do not look at the context.
func (d *Driver) check(ctx context.Context, op, name string) error {
	if d.closed.Load() {
		return fmt.Errorf("%s: %s %q: %w", d.name, op, name, errClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %s %q: %w", d.name, op, name, err)
	}
	return nil
}

// kind is the driver kind of a store error: the Provider's, else the Go
// CDK's code's; nil when it has none.
func (d *Driver) kind(err error) error {
	if d.p.ErrorKind != nil {
		if k := d.p.ErrorKind(err); k != nil {
			return k
		}
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return driver.ErrNotFound
	case gcerrors.FailedPrecondition:
		return driver.ErrPreconditionFailed
	}
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EISDIR) {
		// A store on a file system (fileblob) reports a name under an
		// object's name ("a/b" where "a" is a file) as ENOTDIR, and the
		// deletion of a name that is a folder of objects as ENOTEMPTY,
		// which the Go CDK leaves Unknown: no object is there.
		return driver.ErrNotFound
	}
	return nil
}

// mapErr turns a store error into the driver's error kinds, keeping the
// original error wrapped: errors.Is finds both the kind and the store's error.
func (d *Driver) mapErr(ctx context.Context, op, name string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%s: %s %q: %w (%w)", d.name, op, name, cerr, err)
	}
	if d.closed.Load() {
		// The Go CDK reports a closed bucket as FailedPrecondition; it is not
		// a refused precondition.
		return fmt.Errorf("%s: %s %q: %w: %w", d.name, op, name, errClosed, err)
	}
	switch k := d.kind(err); k {
	case driver.ErrNotFound, driver.ErrPreconditionFailed:
		return fmt.Errorf("%s: %s %q: %w: %w", d.name, op, name, k, err)
	}
	return fmt.Errorf("%s: %s %q: %w", d.name, op, name, err)
}
