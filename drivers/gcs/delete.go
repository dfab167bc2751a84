package gcs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/blobcache/blobcache/driver"
)

// MaxBatch is the most calls of one GCS JSON API batch request.
const MaxBatch = 100

// maxBatchResponse bounds the bytes read of one batch response: each of
// at most MaxBatch parts is a short status line and headers (GCS sends
// well under 1 KiB per part), so a larger answer is no answer of GCS.
const maxBatchResponse = 4 << 20

// batcher sends batch requests to a GCS JSON API batch endpoint.
type batcher struct {
	url    string // the batch endpoint
	path   string // the path prefix of one object, "/storage/v1/b/<bucket>/o/"
	client *http.Client
}

// DeleteBatch implements [driver.BatchDeleter]. For a driver made by [Open]
// it sends the JSON API's batch request (one POST to /batch/storage/v1 of up
// to [MaxBatch] objects.delete calls; more names than that are sent in
// several requests, one after another); for one made by [New], whose HTTP
// client the driver does not know, one objects.delete per name. Duplicate
// names are sent once. A name the driver refuses fails the call before
// anything is deleted. A call's 404 is no error; other failed calls are
// returned in a *[driver.BatchDeleteError]; a failed request returns its
// error and stops.
func (d *Driver) DeleteBatch(ctx context.Context, names []string) error {
	if err := d.x.Check(ctx, "delete batch", names...); err != nil {
		return err
	}
	seen := make(map[string]bool, len(names))
	unique := make([]string, 0, len(names))
	for _, name := range names {
		if !seen[name] {
			seen[name] = true
			unique = append(unique, name)
		}
	}
	failed := map[string]error{}
	if d.batch == nil {
		for _, name := range unique {
			if err := d.Driver.Delete(ctx, name); err != nil {
				if ctx.Err() != nil {
					return err
				}
				failed[name] = err
			}
		}
	} else {
		for start := 0; start < len(unique); start += MaxBatch {
			chunk := unique[start:min(start+MaxBatch, len(unique))]
			if err := d.batch.deleteChunk(ctx, chunk, failed); err != nil {
				return d.x.Err(ctx, "delete batch", fmt.Sprintf("%d names", len(chunk)), err)
			}
		}
	}
	if len(failed) > 0 {
		return &driver.BatchDeleteError{Failed: failed}
	}
	return nil
}

// deleteChunk sends one batch request deleting names (at most MaxBatch)
// and records in failed each name whose call failed.
func (b *batcher) deleteChunk(ctx context.Context, names []string, failed map[string]error) error {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for i, name := range names {
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", "application/http")
		h.Set("Content-Transfer-Encoding", "binary")
		h.Set("Content-ID", "<"+strconv.Itoa(i)+">")
		pw, err := mw.CreatePart(h)
		if err != nil {
			return err
		}
		fmt.Fprintf(pw, "DELETE %s%s HTTP/1.1\r\n\r\n", b.path, url.PathEscape(name))
	}
	if err := mw.Close(); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.url, &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rd := io.LimitReader(resp.Body, maxBatchResponse)
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(rd, 512))
		return fmt.Errorf("batch request answered %s: %q", resp.Status, msg)
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
		return fmt.Errorf("batch response has Content-Type %q, not multipart", resp.Header.Get("Content-Type"))
	}
	answered := make([]bool, len(names))
	mr := multipart.NewReader(rd, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("batch response: %w", err)
		}
		i, ok := partIndex(part.Header.Get("Content-ID"), len(names))
		if !ok {
			continue
		}
		sub, err := http.ReadResponse(bufio.NewReader(part), nil)
		if err != nil {
			failed[names[i]] = fmt.Errorf("gcs: delete batch %q: unreadable answer: %w", names[i], err)
			answered[i] = true
			continue
		}
		msg, _ := io.ReadAll(io.LimitReader(sub.Body, 512))
		sub.Body.Close()
		answered[i] = true
		switch {
		case sub.StatusCode/100 == 2, sub.StatusCode == http.StatusNotFound:
		default:
			failed[names[i]] = fmt.Errorf("gcs: delete batch %q: %s: %q", names[i], sub.Status, msg)
		}
	}
	for i, ok := range answered {
		if !ok {
			failed[names[i]] = fmt.Errorf("gcs: delete batch %q: no answer in the batch response", names[i])
		}
	}
	return nil
}

// partIndex parses a response part's Content-ID, "<response-N>" for the
// request part "<N>", into N, when it names one of n calls.
func partIndex(id string, n int) (int, bool) {
	id = strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	id = strings.TrimPrefix(id, "response-")
	i, err := strconv.Atoi(id)
	if err != nil || i < 0 || i >= n || strconv.Itoa(i) != id {
		return 0, false
	}
	return i, true
}
