package s3

import (
	"errors"
	"net/http"

	"github.com/aws/smithy-go"
	"github.com/blobcache/blobcache/driver"
	blobdrv "github.com/blobcache/blobcache/drivers/blob"
)

// errorKind is the driver's [blob.Provider] ErrorKind: the driver kind of
// an S3 error code, for errors of the Go CDK (whose gcerrors codes know no
// 409 or 416) and of the driver's own requests (DeleteObject,
// DeleteObjects).
func errorKind(err error) error {
	switch s3Code(err) {
	case "NoSuchKey", "NotFound":
		return driver.ErrNotFound
	case "PreconditionFailed":
		return driver.ErrPreconditionFailed
	case "ConditionalRequestConflict":
		// Another conditional write to the same key is in flight: for
		// IfAbsent and Replace, another writer is taking the object,
		// which callers handle like a lost race.
		return driver.ErrPreconditionFailed
	case "InvalidRange":
		return blobdrv.ErrInvalidRange
	}
	if httpStatus(err) == http.StatusRequestedRangeNotSatisfiable {
		return blobdrv.ErrInvalidRange
	}
	return nil
}

// s3Code returns the S3 error code of err, or "".
func s3Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
