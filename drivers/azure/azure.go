// Package azure is the blobcache driver for Azure Blob Storage and Azurite
// (its emulator): the Go CDK's azureblob (Azure SDK for Go) through package
// github.com/blobcache/blobcache/drivers/blob, plus what only Azure has:
// conditional writes (If-None-Match: * for IfAbsent, If-Match for
// Replace), batch deletes (the blob batch API) and container creation.
// Importing the package registers the URL scheme azblob ([OpenURL]) with
// package driver.
//
// A [*Driver] implements [driver.Driver], [driver.BatchDeleter],
// [driver.Replacer], [driver.ReadDeleter] and [driver.NameValidator]. It embeds the generic
// [*blob.Driver], to which it gives, through [blob.Provider], the ETag of a
// read and the mapping of Azure's error codes to the driver's kinds (404
// BlobNotFound, 412 ConditionNotMet, 409 BlobAlreadyExists, 416
// InvalidRange; a missing container is no missing object, so its 404
// ContainerNotFound is an error of no kind); DeleteBatch, Replace and
// ReadDelete are its own.
//
// # Names
//
// A name is stored under exactly that blob name, and listed as exactly that
// name, or refused with [driver.ErrInvalidName] naming the rule. azureblob
// escapes `"`, "#", "%" and "?" (as "__0x25__" and so on); the driver's
// Azure SDK policy puts them back before a request is signed, so the blob
// is named as given (Azure stores them once they are percent-encoded in the
// URL). A `\` is the one exception: Azure (and Azurite) would turn it into
// "/", so it stays escaped as azureblob stores it ("a\b" is the blob
// "a__0x5c__b", as through the Go CDK) and is read back as `\` when
// listing; a listing is in the byte order of the stored names, so a name
// with `\` sorts as if it had "__0x5c__" there. Names holding what
// azureblob still rewrites are refused, as s3blob's are ([Escaping]): the
// "/" of "../" (such as "a../b") and an escape sequence "__0x<hex>__". A
// blob someone else wrote under a name that is no valid name is never
// listed, counted or deleted.
//
// # Requests
//
// Open sends one Get Container Properties (and one Create Container when
// asked to create a missing container). Read is one Get Blob (size,
// modification time and ETag come from the response), except for a range
// that starts at or past the end of the blob, which Azure refuses with 416
// and which then costs one Get Blob Properties. Write of a blob below the
// upload block size (8 MiB) is one Put Blob, Delete one Delete Blob, List one
// List Blobs per page, DeleteBatch one Blob Batch per 256 names, Replace
// one Put Blob (and, when it is refused, one Get Blob Properties to tell a
// changed blob from a deleted one), ReadDelete a Get Blob and a Delete Blob
// with If-Match (a round more for each write landing between the two).
package azure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	azblobblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/blobcache/blobcache/driver"
	blobdrv "github.com/blobcache/blobcache/drivers/blob"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"
)

// Scheme is the URL scheme the package registers: azblob, the Go CDK's.
const Scheme = "azblob"

// Driver is the Azure Blob Storage driver. Besides the methods of the
// embedded [*blob.Driver] (Read, Write, Delete, List, ValidateName, Close),
// it implements [driver.BatchDeleter], [driver.Replacer] and
// [driver.ReadDeleter]. It is safe for concurrent use.
type Driver struct {
	*blobdrv.Driver
	x         *blobdrv.Extension
	client    *container.Client
	container string
}

// Compile-time checks.
var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.BatchDeleter  = (*Driver)(nil)
	_ driver.Replacer      = (*Driver)(nil)
	_ driver.NameValidator = (*Driver)(nil)
)

// Open returns a driver for the container. It builds a container client
// from opts (see [Options]), checks with one request that the container
// exists, and creates it when it does not and opts.CreateContainer is set;
// otherwise a missing container is an error naming it.
func Open(ctx context.Context, containerName string, opts Options) (*Driver, error) {
	if err := validateContainer(containerName); err != nil {
		return nil, err
	}
	r, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	// Before a credential is made (DefaultAzureCredential may ask the
	// instance metadata service): a done context opens nothing.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("azure: open container %q: %w", containerName, err)
	}
	client, err := newClient(r, containerName, opts.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("azure: open container %q: %w", containerName, err)
	}
	if err := ensureContainer(ctx, client, containerName, opts.CreateContainer); err != nil {
		return nil, err
	}
	b, err := azureblob.OpenBucket(ctx, client, nil)
	if err != nil {
		return nil, fmt.Errorf("azure: open container %q: %w", containerName, err)
	}
	d := &Driver{client: client, container: containerName}
	d.Driver, d.x = blobdrv.NewProvided(b, blobdrv.Provider{
		Name:      "azure",
		Escaping:  Escaping,
		ReadETag:  readETag,
		ErrorKind: errorKind,
		List:      listHook,
	})
	return d, nil
}

// newClient returns a container client: shared key when r has a key, else
// the Azure SDK's DefaultAzureCredential.
func newClient(r resolved, containerName string, hc *http.Client) (*container.Client, error) {
	containerURL := r.serviceURL + "/" + containerName
	cu, err := url.Parse(containerURL)
	if err != nil {
		return nil, errors.New("the service URL does not parse")
	}
	co := &container.ClientOptions{}
	co.Telemetry = policy.TelemetryOptions{ApplicationID: "blobcache"}
	co.PerCallPolicies = []policy.Policy{&namePolicy{containerPath: cu.Path}}
	if hc != nil {
		co.Transport = hc
	}
	if r.key != "" {
		cred, err := container.NewSharedKeyCredential(r.account, r.key)
		if err != nil {
			return nil, errors.New("the key is not a valid shared key")
		}
		return container.NewClientWithSharedKeyCredential(containerURL, cred, co)
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("no key given, and no default Azure credential: %w", err)
	}
	return container.NewClient(containerURL, cred, co)
}

// ensureContainer checks that the container exists, creating it when
// create is set.
func ensureContainer(ctx context.Context, client *container.Client, name string, create bool) error {
	_, err := client.GetProperties(ctx, nil)
	if err == nil {
		return nil
	}
	if !bloberror.HasCode(err, bloberror.ContainerNotFound) {
		return fmt.Errorf("azure: open container %q: %w", name, err)
	}
	if !create {
		return fmt.Errorf("azure: open container %q: the container does not exist (create_container=true creates it): %w", name, err)
	}
	if _, err := client.Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return fmt.Errorf("azure: create container %q: %w", name, err)
	}
	return nil
}

// Container returns the container name.
func (d *Driver) Container() string { return d.container }

// Client returns the Azure SDK container client.
func (d *Driver) Client() *container.Client { return d.client }

// String returns "azblob://container".
func (d *Driver) String() string { return Scheme + "://" + d.container }

// Escaping is the driver's name rules (see the package documentation):
// once the driver undoes azureblob's escaping of `"`, "#", "%" and "?",
// and reads its "__0x5c__" back as `\`, the names it refuses are those
// s3blob rewrites (control characters, the "/" of "../", an escape
// sequence "__0x<hex>__").
const Escaping = blobdrv.EscapingS3

// backslash is how a `\` of a name is stored (azureblob's escape; Azure
// would store `\` as "/").
const backslash = "__0x5c__"

// listHook is the driver's [blob.Provider] List: every name is the blob's
// name as Azure lists it, with "__0x5c__" read as `\`, never azureblob's
// unescaping of every escape sequence (which would read a foreign blob
// "a__0x25__" as "a%", a name that addresses the blob "a%").
func listHook() blobdrv.ListHook {
	return blobdrv.ListHook{Name: func(o *gcblob.ListObject) (string, bool, error) {
		var item container.BlobItem
		if !o.As(&item) || item.Name == nil {
			return "", false, nil
		}
		return strings.ReplaceAll(*item.Name, backslash, `\`), true, nil
	}}
}

// readETag is the driver's [blob.Provider] ReadETag: the ETag of the Get
// Blob response behind r.
func readETag(r *gcblob.Reader) string {
	var resp azblobblob.DownloadStreamResponse
	if r.As(&resp) && resp.ETag != nil {
		return string(*resp.ETag)
	}
	return ""
}

// errNoKind is the kind of a store error that must not take the Go CDK's
// kind: a missing container, which the Go CDK reports as NotFound like a
// missing blob (so a Get would be a silent miss and a Delete a silent
// success).
var errNoKind = errors.New("no kind")

// errorKind is the driver's [blob.Provider] ErrorKind: the driver kind of
// an Azure error code.
func errorKind(err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return nil
	}
	switch bloberror.Code(re.ErrorCode) {
	case bloberror.BlobNotFound:
		return driver.ErrNotFound
	case bloberror.ConditionNotMet, bloberror.BlobAlreadyExists:
		// 412 for If-Match, 409 for If-None-Match: * on an existing blob.
		return driver.ErrPreconditionFailed
	case bloberror.InvalidRange:
		return blobdrv.ErrInvalidRange
	case bloberror.ContainerNotFound, bloberror.ContainerBeingDeleted:
		return errNoKind
	}
	switch re.StatusCode {
	case http.StatusPreconditionFailed:
		return driver.ErrPreconditionFailed
	case http.StatusRequestedRangeNotSatisfiable:
		return blobdrv.ErrInvalidRange
	}
	return nil
}
