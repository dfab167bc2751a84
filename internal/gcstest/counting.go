package gcstest

import (
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// Op is a GCS operation as seen on the wire.
type Op string

// The operations CountingTransport tells apart, named after the JSON API's
// methods.
const (
	// Download is an object's bytes (objects.get with alt=media, or an XML
	// API GET of /bucket/object, which the Go client reads with).
	Download Op = "download"
	// Insert is objects.insert: one upload (media or multipart), or the
	// first request of a resumable one.
	Insert Op = "objects.insert"
	// GetAttrs is objects.get of an object's metadata.
	GetAttrs Op = "objects.get"
	// List is objects.list.
	List Op = "objects.list"
	// Delete is objects.delete.
	Delete Op = "objects.delete"
	// GetBucket is buckets.get.
	GetBucket Op = "buckets.get"
	// Batch is a JSON API batch request.
	Batch Op = "batch"
	// Other is any other request.
	Other Op = "other"
)

// Classify names the GCS operation of a request to the JSON API
// (/storage/v1/..., /upload/storage/v1/...) or the XML API (/bucket/object)
// of one server.
func Classify(req *http.Request) Op {
	p := req.URL.EscapedPath()
	q := req.URL.Query()
	switch {
	case strings.HasPrefix(p, "/batch/"):
		return Batch
	case strings.HasPrefix(p, "/upload/storage/v1/b/"):
		if req.Method == http.MethodPost {
			return Insert
		}
		return Other
	case strings.HasPrefix(p, "/storage/v1/b/"):
		rest := strings.TrimPrefix(p, "/storage/v1/b/")
		bucket, obj, hasObj := strings.Cut(rest, "/o")
		_ = bucket
		switch {
		case !hasObj && req.Method == http.MethodGet && !strings.Contains(rest, "/"):
			return GetBucket
		case hasObj && (obj == "" || obj == "/") && req.Method == http.MethodGet:
			return List
		case hasObj && strings.HasPrefix(obj, "/") && req.Method == http.MethodGet:
			if q.Get("alt") == "media" {
				return Download
			}
			return GetAttrs
		case hasObj && strings.HasPrefix(obj, "/") && req.Method == http.MethodDelete:
			return Delete
		}
		return Other
	case req.Method == http.MethodGet && strings.Count(strings.Trim(p, "/"), "/") >= 1:
		return Download
	}
	return Other
}

// Request is a request CountingTransport saw.
type Request struct {
	// Op is the classified operation.
	Op Op
	// Method is the request's method.
	Method string
	// URL is the request URL.
	URL *url.URL
	// Status is the response status code, 0 when the round trip failed.
	Status int
}

// CountingTransport is an http.RoundTripper that counts requests by GCS
// operation and keeps the requests it saw. It is safe for concurrent use.
// The zero value uses http.DefaultTransport.
type CountingTransport struct {
	// Base sends the requests; http.DefaultTransport when nil.
	Base http.RoundTripper

	mu       sync.Mutex
	counts   map[Op]int
	requests []Request
}

// RoundTrip implements http.RoundTripper.
func (c *CountingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := c.Base
	if base == nil {
		base = http.DefaultTransport
	}
	rec := Request{Op: Classify(req), Method: req.Method, URL: req.URL}
	resp, err := base.RoundTrip(req)
	if err == nil {
		rec.Status = resp.StatusCode
	}
	c.mu.Lock()
	if c.counts == nil {
		c.counts = map[Op]int{}
	}
	c.counts[rec.Op]++
	c.requests = append(c.requests, rec)
	c.mu.Unlock()
	return resp, err
}

// Snapshot returns the counts since the last Reset, by operation;
// operations not seen are absent.
func (c *CountingTransport) Snapshot() map[Op]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[Op]int, len(c.counts))
	maps.Copy(m, c.counts)
	return m
}

// Requests returns the requests seen since the last Reset, in the order
// they completed.
func (c *CountingTransport) Requests() []Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Request(nil), c.requests...)
}

// Reset forgets every count and request.
func (c *CountingTransport) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts = nil
	c.requests = nil
}
