package blob

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/blobcache/blobcache/driver"
	gcblob "gocloud.dev/blob"
)

// ErrInvalidRange is the kind a [Provider]'s ErrorKind gives the store's
// refusal of a read range that starts at or past the end of the object
// (S3's 416 InvalidRange). Read then returns no bytes and the object's
// attributes, as the driver contract wants, at the cost of one attributes
// request. It never reaches a caller.
var ErrInvalidRange = errors.New("range not satisfiable")

// Provider is what a driver package built on this one (drivers/s3) tells a
// [Driver] about the Go CDK driver behind its bucket, so that the portable
// [Driver] keeps every check and all error wrapping while the provider's
// package, which alone imports the provider's SDK, supplies what the Go CDK
// does not do or does not expose. Pass it to [NewProvided]. Every field is
// optional; the zero Provider is a plain bucket whose Go CDK driver is not
// known.
//
// The hooks may assume that the driver is open, that the call's context
// was not done when the driver called them, and that every name they get
// satisfies the driver's ValidateName (so the store keeps it exactly as
// given). They return the store's own errors, unwrapped: the driver maps
// them to its kinds (with ErrorKind, then the Go CDK's gcerrors codes) and
// wraps them with the operation and the name. They must be safe for
// concurrent use.
type Provider struct {
	// Name begins every error message of the driver, as in
	// `s3: read "x": object not found: ...`. Empty means "blob".
	Name string

	// Escaping names the key-escaping rules of the bucket's Go CDK driver
	// (see the package documentation); [WithEscaping] overrides it.
	Escaping Escaping

	// KeyPrefix is the key the store puts before every name (a Go CDK
	// prefixed bucket's prefix), as the provider found it in a request,
	// after the Go CDK's escaping; the rules apply to KeyPrefix + name. A
	// KeyPrefix that holds an escape sequence was rewritten by the Go CDK
	// (which escapes every sequence already there), so no name under it
	// would be listed as written: every name is then refused.
	KeyPrefix string
	// KeyPrefixErr, when set, refuses every name with that reason, such as
	// a key prefix that could not be found.
	KeyPrefixErr error

	// ReadETag returns the ETag of the object a successful read opened
	// (through r.As), or "". Without it, Read leaves Attributes.ETag empty.
	ReadETag func(r *gcblob.Reader) string

	// Delete deletes the object stored under name with one request and
	// without checking first that it exists (the Go CDK's Delete may look
	// first). An absent object may be reported as nil or as an error whose
	// kind is driver.ErrNotFound: Delete returns nil for both. Without it,
	// Delete is the Go CDK's.
	Delete func(ctx context.Context, name string) error

	// List returns the hooks of one List call; it is called once per List.
	// Without it, List takes every name from the Go CDK's ListObject.Key.
	List func() ListHook

	// ErrorKind returns the kind of a store error (driver.ErrNotFound,
	// driver.ErrPreconditionFailed or [ErrInvalidRange]) where the
	// provider's codes say more than the Go CDK's gcerrors code does, such
	// as S3's 409 ConditionalRequestConflict (another conditional write is
	// in flight: a lost race); nil leaves the error to gcerrors. err is as
	// the Go CDK or a hook returned it.
	ErrorKind func(err error) error

	// MinListFetch is the fewest objects List asks the Go CDK for in one
	// page, from 1 (the default) to 10. A smaller page is cut from a larger
	// fetch; the next call fetches it again and starts strictly after the
	// last name returned, which the page token names. drivers/s3 sets
	// 2: MinIO reports a listing with MaxKeys=1 as complete when the prefix
	// names an existing object, though more objects follow.
	MinListFetch int
}

// ListHook adapts one List call to the provider.
type ListHook struct {
	// BeforeList is the Go CDK's ListOptions.BeforeList of the call's
	// ListPage (which may send several requests to fill the page).
	BeforeList func(asFunc func(any) bool) error
	// Name returns the name of a listed object (never a directory), as the
	// driver's callers know it (without KeyPrefix). It is called after the
	// ListPage returned, for each object in order. ok false leaves the
	// object out of the listing (it is not one of the driver's); an error
	// fails the List. Without it the name is the ListObject's Key. The
	// driver then also leaves out every name it would refuse and every
	// name outside the listing prefix.
	Name func(o *gcblob.ListObject) (name string, ok bool, err error)
}

// Extension gives a provider's package the driver's own checks, error
// wrapping and writes, for the methods it adds (drivers/s3's DeleteBatch
// and Replace). It is made with its driver by [NewProvided].
type Extension struct {
	d *Driver
}

// NewProvided returns a driver for b that uses p (see [Provider]), and the
// [Extension] through which p's package implements more of the driver
// contract on top of it. It takes ownership of b.
func NewProvided(b *gcblob.Bucket, p Provider, opts ...Option) (*Driver, *Extension) {
	d := newDriver(b, p, opts)
	return d, &Extension{d: d}
}

// Check fails, with an error naming op and the names, when the driver is
// closed, ctx is done (then errors.Is(err, ctx.Err()) holds) or a name is
// one the driver refuses (driver.ErrInvalidName). Call it first.
func (x *Extension) Check(ctx context.Context, op string, names ...string) error {
	subject := fmt.Sprintf("%d names", len(names))
	if len(names) == 1 {
		subject = names[0]
	}
	if err := x.d.check(ctx, op, subject); err != nil {
		return err
	}
	for _, name := range names {
		if err := x.d.rules.check(name, false); err != nil {
			return fmt.Errorf("%s: %s: %w", x.d.name, op, err)
		}
	}
	return nil
}

// Err wraps an error of the store, got for op on name (or another subject,
// such as "12 names"), as the driver's own methods do: with the driver's
// kind, the store's error and, when ctx is done, ctx's error. nil stays
// nil.
func (x *Extension) Err(ctx context.Context, op, name string, err error) error {
	return x.d.mapErr(ctx, op, name, err)
}

// Write is the driver's Write under another operation's name (op, in
// errors), with beforeWrite (when set) run as the Go CDK's
// WriterOptions.BeforeWrite before the driver's own [WithBeforeWrite] hooks.
// It checks the call as Check does.
func (x *Extension) Write(ctx context.Context, op, name string, body io.Reader, opts *driver.WriteOptions, beforeWrite func(asFunc func(any) bool) error) error {
	return x.d.write(ctx, op, name, body, opts, beforeWrite)
}
