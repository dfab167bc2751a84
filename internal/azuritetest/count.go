package azuritetest

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
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
// sends, by operation, and apart from them those that failed in a way the
// Azure SDK retries (no response, or 408, 429, 500, 502, 503, 504), so that
// a test can assert the requests a call makes whatever the server's load
// made the SDK send again. It is safe for concurrent use.
type CountingTransport struct {
	base   http.RoundTripper
	mu     sync.Mutex
	n      map[Op]int
	failed map[Op]int
	why    []string // the first failures, for logs
}

// NewCountingTransport counts requests sent through base
// (http.DefaultTransport when nil).
func NewCountingTransport(base http.RoundTripper) *CountingTransport {
	if base == nil {
		base = http.DefaultTransport
	}
	return &CountingTransport{base: base, n: map[Op]int{}, failed: map[Op]int{}}
}

// RoundTrip implements http.RoundTripper.
func (c *CountingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	op := Classify(req)
	resp, err := c.base.RoundTrip(req)
	c.mu.Lock()
	c.n[op]++
	if err != nil || retried(resp.StatusCode) {
		c.failed[op]++
		if len(c.why) < 10 {
			if err != nil {
				c.why = append(c.why, fmt.Sprintf("%s: %v", op, err))
			} else {
				c.why = append(c.why, fmt.Sprintf("%s: %s %s", op, resp.Status, resp.Header.Get("x-ms-error-code")))
			}
		}
	}
	c.mu.Unlock()
	return resp, err
}

// retried reports whether the Azure SDK's retry policy sends a request
// again after this status (its default StatusCodes).
func retried(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Failed returns the counts of requests that failed in a way the Azure SDK
// retries (they are also in Snapshot's counts).
func (c *CountingTransport) Failed() map[Op]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.failed)
}

// Failures describes the first ten failed requests (operation, status and
// Azure error code, or the transport's error).
func (c *CountingTransport) Failures() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.why)
}

// Answered returns Snapshot's counts less Failed's: the requests that got
// an answer the SDK does not retry.
func (c *CountingTransport) Answered() map[Op]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[Op]int{}
	for op, n := range c.n {
		if k := n - c.failed[op]; k > 0 {
			out[op] = k
		}
	}
	return out
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
	clear(c.failed)
	c.why = nil
}
