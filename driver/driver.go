// Package driver defines the interface a blobcache storage driver implements.
//
// The cache (package github.com/blobcache/blobcache/cache) talks to storage
// only through [Driver]. A driver is told exactly what it may assume and what
// it must guarantee. The cache validates arguments before it calls a driver,
// so a driver never sees an invalid name, a nil context or a nil options
// pointer; every other caller (the conformance suite, a program using a driver
// directly) must keep the same rules.
//
// What only some stores can do is expressed as optional capability interfaces,
// found by type assertion in the manner of database/sql/driver:
// [BatchDeleter] (bulk deletes, such as S3 DeleteObjects), [Replacer]
// (replace-if-unchanged, such as S3 If-Match), [ReadDeleter] (read and
// delete in one step) and [NameValidator]. The cache falls back to the
// base interface when a capability is missing and documents what is lost.
//
// # Errors
//
// One convention for every driver, so that the cache and applications test
// errors one way:
//   - An error of a kind the contract names wraps that kind, and keeps the
//     store's own error wrapped beside it, so errors.Is finds the kind and
//     errors.As the store's type: fmt.Errorf("s3: read %q: %w: %w", name,
//     ErrNotFound, err). The kinds are [ErrNotFound], [ErrPreconditionFailed],
//     [ErrClosed], [ErrInvalidName] (from the driver's methods) and [ErrInvalidOption]
//     (from its opener; an unknown option is an [*UnknownOptionError], which
//     is one).
//   - The message starts with the driver's package name, then the
//     operation and the name, quoted as %q quotes it: "file: write \"a/b\":
//     ...", so a log line says which object failed. It never shows a
//     secret: a credential, or the value of a URL parameter the driver lists
//     in [Scheme.Secrets].
//   - A call whose context is done returns an error satisfying
//     errors.Is(err, ctx.Err()), also when the store reported the
//     cancellation its own way.
//   - A store error that none of the kinds describes (a network failure, a
//     full disk, an access denial) is returned wrapped, without a kind: the
//     cache passes it to the caller and never mistakes it for a miss.
//
// # Opening by URL
//
// A driver package registers a [Scheme] in an init function ([Register]);
// cache.Open, cache.OpenConfig and the blobcache command then open its URLs.
// The scheme owns its URL parameters, their validation, its secrets, its
// Django BACKEND names and how its stores are described; the cache imports
// no driver.
//
// Every driver should pass the conformance suite in package
// github.com/blobcache/blobcache/conformance.
package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Error kinds. Drivers wrap or return these so that callers can test them with
// errors.Is; the wrapped error keeps the store's own detail.
var (
	// ErrNotFound means no object exists under the name.
	ErrNotFound = errors.New("object not found")
	// ErrPreconditionFailed means a conditional write was refused: an object
	// already exists (WriteOptions.IfAbsent) or the object changed since it was
	// read (Replacer.Replace).
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrInvalidName means the name does not satisfy [ValidateName].
	ErrInvalidName = errors.New("invalid object name")
	// ErrClosed means the driver was closed: every call made after Close
	// returns an error wrapping it (see Driver.Close). Package cache's
	// ErrClosed is the same value, so a closed cache and a closed driver
	// under a cache are tested alike.
	ErrClosed = errors.New("closed")
)

// MaxListPageSize is the largest page a driver must support and the page size
// used when ListOptions.PageSize is zero. It matches S3's ListObjectsV2 limit.
const MaxListPageSize = 1000

// MaxBatchDelete is the most names passed to one BatchDeleter.DeleteBatch call.
// It matches S3's DeleteObjects limit.
const MaxBatchDelete = 1000

// Attributes describe a stored object.
type Attributes struct {
	// Name is the object's full name.
	Name string
	// Size is the object's size in bytes.
	Size int64
	// ModTime is the time of the object's last write, at the store's
	// granularity (S3: one second). Read and List always set it; it is never
	// the zero time. An overwrite never makes it earlier, and an overwrite
	// made once the store's granularity has passed since the previous write
	// makes it later. The cull.Oldest policy culls by it.
	ModTime time.Time
	// ETag is an opaque version token: it changes whenever the object's
	// contents change. Drivers that implement Replacer must fill it in on
	// Read; others may leave it empty.
	ETag string
}

// WriteOptions control a Write, or a Replace (see Replacer.Replace). Callers
// always pass a non-nil pointer.
type WriteOptions struct {
	// IfAbsent makes the write conditional: it succeeds only if no object
	// exists under the name, and otherwise fails with ErrPreconditionFailed
	// and leaves the existing object untouched. The check and the write must
	// be one atomic step, also across processes sharing the store: of many
	// concurrent IfAbsent writers to one name, exactly one succeeds.
	IfAbsent bool
	// ContentEncoding, when not empty, is stored as the object's
	// Content-Encoding where the store has such a notion (S3). It never
	// changes the bytes the driver stores or returns.
	ContentEncoding string
	// DeleteAfter, when not zero, is the instant after which the object is
	// dead to the cache (its entry's expiry plus any grace period): no read
	// will ever serve it. A driver may arrange for the store to delete the
	// object on its own some time after it (the S3 driver's lifecycle
	// option tags it for a lifecycle rule), never before it; it never
	// changes the bytes stored or returned, and a driver may ignore it. A
	// write without it stores an object the store keeps until it is
	// deleted, also when it replaces one written with it.
	DeleteAfter time.Time
}

// ListOptions select a page of a listing. Callers always pass a non-nil
// pointer.
type ListOptions struct {
	// Prefix restricts the listing to names that start with Prefix, compared
	// byte for byte: "cache/" matches "cache/x" but never "cache2/x" or
	// "cachex". An empty prefix lists everything.
	Prefix string
	// PageToken continues a listing from the NextPageToken of the previous
	// page; empty for the first page. It has the start-after semantics of
	// S3's ListObjectsV2: the page starts strictly after the last name the
	// previous page returned, whatever was written or deleted since. So
	// objects written or deleted between pages never make the listing skip
	// or repeat another object: an object present from the first page until
	// a page returns it is listed exactly once, on that page. (A token that
	// counts an offset breaks this: deleting the objects of each page before
	// listing the next, as the cache's Clear does, skips as many objects.)
	PageToken string
	// PageSize is the most objects to return, 1 to MaxListPageSize; zero means
	// MaxListPageSize.
	PageSize int
	// NamesOnly says the caller uses only the objects' names (Clear and
	// counting do): a driver may then leave Size and ModTime zero, to save
	// the work they cost (the file driver's stat of every file). The names,
	// their order and the pages are the same either way.
	NamesOnly bool
}

// ListPage is one page of a listing.
type ListPage struct {
	// Objects are in strictly increasing byte-wise order of Name. Each has
	// Name, Size and ModTime set (Size and ModTime may be zero when the
	// listing was ListOptions.NamesOnly).
	Objects []Attributes
	// NextPageToken is empty on the last page. Otherwise it names the
	// position just after the last object returned (see
	// ListOptions.PageToken), not a count of objects returned.
	NextPageToken string
}

// Driver is the storage interface of the cache. Implementations must be safe
// for concurrent use by multiple goroutines.
//
// Names passed to a driver always satisfy ValidateName. Data written under a
// name is returned unchanged by Read; a driver stores no other object than
// those written through it (temporary files and the like are never listed).
// Errors for absent objects and refused preconditions must satisfy
// errors.Is(err, ErrNotFound) and errors.Is(err, ErrPreconditionFailed). A
// cancelled context makes the call return an error satisfying
// errors.Is(err, ctx.Err()) promptly, where the store allows.
//
// A driver whose store others can write to behind its back (a directory on
// disk) never follows a symbolic link in any component of an object's path
// or of its own internal files (locks, temporary files): nothing outside the
// store is ever read, written, created or deleted, whatever is planted in it.
// Only what the driver could have written is an object: a symbolic link,
// named pipe, socket, device or directory at an object's path, or a link or
// non-directory on the way to it, is no object. Read returns ErrNotFound
// without blocking, List skips it, Delete removes at most the entry itself
// (never what a link points to), and Write and Replace replace the entry
// itself or fail with an error that says why, never writing through it.
//
// Read never sizes an allocation by what the store claims beyond the length
// asked for: a read with length >= 0 allocates at most min(size - offset,
// length) bytes, and a read with a negative length allocates as bytes
// arrive, not by a claimed size the store does not back. (The cache reads
// whole entries with a length: its max value size plus framing.)
type Driver interface {
	// Read returns length bytes of the object starting at offset, or all bytes
	// from offset when length is negative, with the object's attributes. A
	// range reaching past the end returns the bytes up to the end. offset is
	// never negative. It returns ErrNotFound when no object exists. The
	// attributes are those of the object whose bytes are returned: Name is
	// the name read, Size the object's whole size (not the range's), ModTime
	// set as Attributes describes.
	//
	// The returned bytes belong to the caller: the driver neither keeps nor
	// changes them once Read returns, whatever is written, deleted or read
	// later. A store that hands out memory valid only inside a transaction
	// or a mapping (an embedded key-value store such as bbolt, an mmap'd
	// file) copies it before returning; returning such memory makes the
	// cache crash later, with a SIGSEGV far from the cause.
	Read(ctx context.Context, name string, offset, length int64) ([]byte, Attributes, error)
	// Write stores the bytes read from body under name, replacing any object
	// that exists unless opts.IfAbsent is set. The write is atomic: readers
	// see either the old object or the whole new one, never a part. If body
	// returns an error, nothing is stored and that error is returned. The
	// driver does not use body after Write returns.
	Write(ctx context.Context, name string, body io.Reader, opts *WriteOptions) error
	// Delete removes the object. Deleting an absent object is not an error
	// and returns nil: as with S3's DeleteObject, one request, no existence
	// check (callers that need to know read first).
	Delete(ctx context.Context, name string) error
	// List returns one page of the objects whose names start with
	// opts.Prefix, in byte-wise order.
	List(ctx context.Context, opts *ListOptions) (*ListPage, error)
	// Close releases the driver's resources; the stored objects stay. After
	// Close, every other method (those of the optional interfaces too)
	// returns an error wrapping ErrClosed and touches nothing; a second
	// Close returns nil or such an error.
	Close() error
}

// BatchDeleter is implemented by drivers that delete many objects in fewer
// requests than one per object.
//
// Without it, the cache deletes one object per Delete call (Clear, culling
// and DeleteMany make one request per entry, at most 8 at a time): the same
// result, more requests.
type BatchDeleter interface {
	// DeleteBatch removes the named objects; at most MaxBatchDelete names
	// are passed. Names with no object are not an error. On failure, the
	// returned error should be a *BatchDeleteError naming what was not
	// deleted where the store reports it.
	DeleteBatch(ctx context.Context, names []string) error
}

// Replacer is implemented by drivers that can replace an object only if it has
// not changed since it was read.
//
// Without it, the cache writes Touch, Incr, Decr and an Add over an expired
// or corrupt entry back with a plain Write, so those updates are not atomic:
// two concurrent Incr of one key, in one process or in several, can lose an
// increment, and two Adds over one expired entry can both report true. Add of
// an absent key stays atomic (WriteOptions.IfAbsent).
type Replacer interface {
	// Replace stores body under name only if the object's current ETag equals
	// etag (as returned by Read), atomically, also across processes. It
	// returns ErrPreconditionFailed when the object changed and ErrNotFound
	// when it no longer exists; in both cases nothing is written. As with
	// Write, a body that returns an error stores nothing and that error is
	// returned, and the replacement gets a new ETag and ModTime.
	//
	// Of opts, ContentEncoding means what it means for Write. IfAbsent has
	// no meaning here, since the etag is Replace's condition: the cache
	// never sets it, and a driver ignores it (it neither refuses the call
	// nor sends the store a create-only condition that would always fail).
	Replace(ctx context.Context, name string, body io.Reader, etag string, opts *WriteOptions) error
}

// ReadDeleter is implemented by drivers that can read the start of an
// object and delete it in one step, atomically with respect to every change
// of the object, such as a file store deleting under the lock its writes take.
//
// Without it, the cache's Delete reads an entry's header with Read and then
// deletes the entry with Delete: two calls (two requests on a remote store)
// where ReadDelete is one, and a write that lands between them, by this
// process or another, is deleted too, while Delete reports on the entry it
// read. A store with a delete conditional on the object's version can
// implement it with the same two requests (GCS deletes a generation, Azure
// Blob deletes If-Match; see drivers/blob's Extension.ReadDelete); one that
// cannot make the pair atomic (S3 as MinIO serves it, which ignores
// If-Match on DeleteObject) does not implement ReadDeleter: the cache's
// fallback is the same two calls without the guarantee.
type ReadDeleter interface {
	// ReadDelete removes the object and returns its first length bytes (all
	// of them when it is shorter; length is never negative) and its
	// attributes, as Read(ctx, name, 0, length) returns them, of the object
	// removed: no Write, Replace or Delete of name, by any process sharing
	// the store, takes effect between the read and the removal. It returns
	// ErrNotFound, and removes nothing, when no object exists (an object
	// Read would not return, such as what the file driver refuses to read,
	// is no object here either); on any other error nothing is removed.
	ReadDelete(ctx context.Context, name string, length int64) ([]byte, Attributes, error)
}

// NameValidator is implemented by drivers that cannot store every name
// [ValidateName] accepts exactly as given (a store whose own layer escapes or
// rewrites some names, such as the Go CDK's s3blob, which rewrites "../"
// and "__0x..__" sequences). ValidateName returns an error wrapping
// [ErrInvalidName], saying which rule the name breaks, for every name the
// driver would not store, list and delete exactly as given; the driver's
// methods refuse such names with the same error. The cache calls it at New
// on its location, so a location the store would rewrite fails at Open.
// Without it, every name ValidateName accepts must round-trip exactly.
type NameValidator interface {
	ValidateName(name string) error
}

// BatchDeleteError reports the names a DeleteBatch call failed to delete.
type BatchDeleteError struct {
	// Failed maps each name that was not deleted to the store's reason.
	Failed map[string]error
}

// Error implements error.
func (e *BatchDeleteError) Error() string {
	for name, err := range e.Failed {
		if len(e.Failed) == 1 {
			return fmt.Sprintf("delete %q: %v", name, err)
		}
		return fmt.Sprintf("delete failed for %d objects, e.g. %q: %v", len(e.Failed), name, err)
	}
	return "batch delete failed"
}

// Unwrap returns the per-name errors, so errors.Is finds their kinds.
func (e *BatchDeleteError) Unwrap() []error {
	errs := make([]error, 0, len(e.Failed))
	for _, err := range e.Failed {
		errs = append(errs, err)
	}
	return errs
}

// MaxNameLength is the longest valid name in bytes (S3's key limit).
const MaxNameLength = 1024

// ValidateName reports whether name is a valid object name: non-empty, at
// most MaxNameLength bytes, valid UTF-8 without NUL or other control
// characters, made of "/"-separated segments that are neither empty nor "."
// nor "..". So no name starts or ends with "/" or contains "//". The error
// wraps ErrInvalidName and says which rule was broken.
func ValidateName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidName, name, why)
	}
	switch {
	case name == "":
		return bad("empty")
	case len(name) > MaxNameLength:
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalidName, len(name), MaxNameLength)
	case !utf8.ValidString(name):
		return bad("not valid UTF-8")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return bad("contains a control character")
		}
	}
	for seg := range strings.SplitSeq(name, "/") {
		switch seg {
		case "":
			return bad("empty path segment")
		case ".", "..":
			return bad(`"." or ".." path segment`)
		}
	}
	return nil
}
