package s3

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	blobdrv "github.com/blobcache/blobcache/drivers/blob"
	gcblob "gocloud.dev/blob"
)

// listHook is the driver's [blob.Provider] List: the hooks of one List.
func (d *Driver) listHook() blobdrv.ListHook {
	l := &listEncoding{keyPrefix: d.keyPrefix}
	return blobdrv.ListHook{BeforeList: l.beforeList, Name: l.name}
}

// listEncoding is what one List learns about the ListObjectsV2 responses
// behind a Go CDK ListPage (which may send more than one request to fill a
// page): whether the server url-encoded their keys.
type listEncoding struct {
	keyPrefix      string
	legacy         bool // s3blob's legacy ListObjects: keys are not encoded
	encoded, plain int  // responses with and without EncodingType url
}

// beforeList is the Go CDK BeforeList hook: it asks for url-encoded keys
// (EncodingType=url on *s3.ListObjectsV2Input), so that no key, whatever
// bytes it holds, can make the XML response unreadable, and adds to the
// request's options a middleware that records the response's EncodingType.
// The legacy ListObjects that s3blob sends with UseLegacyList is left as
// is: the Go CDK derives its page marker from the last key, which would
// then be encoded.
func (l *listEncoding) beforeList(asFunc func(any) bool) error {
	var in *s3.ListObjectsV2Input
	if asFunc(&in) && in != nil {
		var opts *[]func(*s3.Options)
		if !asFunc(&opts) || opts == nil {
			return errors.New("s3: list: the s3blob bucket does not expose the request options (*[]func(*s3.Options))")
		}
		in.EncodingType = types.EncodingTypeUrl
		*opts = append(*opts, l.record)
		return nil
	}
	var legacy *s3.ListObjectsInput
	if asFunc(&legacy) && legacy != nil {
		l.legacy = true
		return nil
	}
	return errors.New("s3: list: the s3blob bucket exposes neither *s3.ListObjectsV2Input nor *s3.ListObjectsInput")
}

// record adds the middleware that counts the responses by EncodingType. The
// Go CDK makes its requests in the goroutine of ListPage, one at a time.
func (l *listEncoding) record(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("BlobcacheListEncoding",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if r, ok := out.Result.(*s3.ListObjectsV2Output); ok && r != nil {
					if r.EncodingType == types.EncodingTypeUrl {
						l.encoded++
					} else {
						l.plain++
					}
				}
				return out, md, err
			}), middleware.After)
	})
}

// name returns the name of a listed object from the S3 object's own key
// (never the Go CDK's ListObject.Key, which s3blob made by applying
// HexUnescape to the key as the server sent it, that is, before our
// decoding), decoded when the server url-encoded it, without the bucket's
// key prefix. ok is false for a key that does not decode or does not start
// with the prefix: not an object of this driver. err is set when the Go CDK
// does not expose the S3 object, or the server encoded the keys of some
// responses of the page and not of others.
func (l *listEncoding) name(o *gcblob.ListObject) (name string, ok bool, err error) {
	if l.encoded > 0 && l.plain > 0 {
		return "", false, errors.New("the server url-encoded the keys of some responses of one page and not of others")
	}
	var obj types.Object
	if !o.As(&obj) {
		return "", false, errors.New("the s3blob listing does not expose its *types.Object")
	}
	if obj.Key == nil {
		return "", false, nil
	}
	key := *obj.Key
	if l.encoded > 0 {
		if key, ok = decodeListedKey(key); !ok {
			return "", false, nil
		}
	}
	if !strings.HasPrefix(key, l.keyPrefix) {
		return "", false, nil
	}
	return key[len(l.keyPrefix):], true, nil
}

// decodeListedKey decodes a key of a ListObjectsV2 response made with
// EncodingType=url. S3 and MinIO encode keys as an HTML form encodes a
// value: a space as "+", every byte outside A-Z a-z 0-9 and "-_.*/" as %XX
// (so "+" is %2B, "%" is %25, "~" is %7E, a control character such as
// "\x01" is %01, and each byte of a non-ASCII character is encoded:
// "ü" is %C3%BC). url.QueryUnescape reverses exactly that. ok is false for
// a key that does not decode; the caller skips it, since no name this
// driver writes encodes that way.
func decodeListedKey(raw string) (key string, ok bool) {
	k, err := url.QueryUnescape(raw)
	return k, err == nil
}
