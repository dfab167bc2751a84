package gcs

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"cloud.google.com/go/storage"
	"github.com/blobcache/blobcache/driver"
	"google.golang.org/api/googleapi"
)

// TestErrorKind: the kinds of GCS errors, wrapped or not; an access denial
// has no kind (gcsblob alone would call a 403 NotFound: a miss).
func TestErrorKind(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("storage: %w", err) }
	for _, tc := range []struct {
		err  error
		want error
	}{
		{&googleapi.Error{Code: http.StatusNotFound}, driver.ErrNotFound},
		{wrap(&googleapi.Error{Code: http.StatusPreconditionFailed}), driver.ErrPreconditionFailed},
		{&googleapi.Error{Code: http.StatusPreconditionFailed}, driver.ErrPreconditionFailed},
		{storage.ErrObjectNotExist, driver.ErrNotFound},
		{&googleapi.Error{Code: http.StatusForbidden}, errNoKind},
		{&googleapi.Error{Code: http.StatusUnauthorized}, errNoKind},
		{&googleapi.Error{Code: http.StatusRequestedRangeNotSatisfiable}, nil},
		{&googleapi.Error{Code: http.StatusInternalServerError}, nil},
		{errors.New("network"), nil},
	} {
		if got := errorKind(tc.err); got != tc.want {
			t.Errorf("errorKind(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
