package azuritetest

import (
	"maps"
	"net/http"
	"strings"
	"sync"
)

// Op is an Azure Blob Storage operation, as Classify names a request.
type Op string

// The operations the driver sends.
const (
	GetBlob                Op = "Get Blob"
	GetBlobProperties      Op = "Get Blob Properties"
	PutBlob                Op = "Put Blob"
	PutBlock               Op = "Put Block"
	PutBlockList           Op = "Put Block List"
	DeleteBlob             Op = "Delete Blob"
	ListBlobs              Op = "List Blobs"
	BlobBatch              Op = "Blob Batch"
	GetContainerProperties Op = "Get Container Properties"
	CreateContainer        Op = "Create Container"
	DeleteContainer        Op = "Delete Container"
	Other                  Op = "other"
)

// Classify names the operation of a request to the blob service.
func Classify(req *http.Request) Op {
	q := req.URL.Query()
	comp, restype := q.Get("comp"), q.Get("restype")
	switch {
	case comp == "batch":
		return BlobBatch
	case restype == "container" && comp == "list":
		return ListBlobs
	case restype == "container" && comp == "":
		switch req.Method {
		case http.MethodGet, http.MethodHead:
			return GetContainerProperties
		case http.MethodPut:
			return CreateContainer
		case http.MethodDelete:
			return DeleteContainer
		}
	case restype == "" && comp == "":
		switch req.Method {
		case http.MethodGet:
			return GetBlob
		case http.MethodHead:
			return GetBlobProperties
		case http.MethodPut:
			return PutBlob
		case http.MethodDelete:
			return DeleteBlob
		}
	case comp == "block":
		return PutBlock
	case comp == "blocklist" && req.Method == http.MethodPut:
		return PutBlockList
	}
	return Op(strings.TrimSpace(req.Method + " " + comp + " " + restype))
}

// CountingTransport is an http.RoundTripper that counts the requests it
// sends, by operation. It is safe for concurrent use.
type CountingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    map[Op]int
}

// NewCountingTransport counts requests sent through base
// (http.DefaultTransport when nil).
func NewCountingTransport(base http.RoundTripper) *CountingTransport {
	if base == nil {
		base = http.DefaultTransport
	}
	return &CountingTransport{base: base, n: map[Op]int{}}
}

// RoundTrip implements http.RoundTripper.
func (c *CountingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	op := Classify(req)
	c.mu.Lock()
	c.n[op]++
	c.mu.Unlock()
	return c.base.RoundTrip(req)
}

// Snapshot returns the counts so far.
func (c *CountingTransport) Snapshot() map[Op]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// Reset sets every count to zero.
func (c *CountingTransport) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.n)
}
