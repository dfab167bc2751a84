package s3_test

// Helpers of the reliability tests (reliability_*_test.go): self-verifying
// values, error classification and time budgets. Every identifier starts
// with "rel" so as not to collide with the package's other tests.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/blobcache/blobcache/cache"
)

// relSoak reports whether the long variants were asked for (BLOBCACHE_SOAK=1).
func relSoak() bool { return os.Getenv("BLOBCACHE_SOAK") == "1" }

// relDur returns short normally and long under BLOBCACHE_SOAK=1.
func relDur(short, long time.Duration) time.Duration {
	if relSoak() {
		return long
	}
	return short
}

// relValue is the value written under key by writer as its version-th write:
//
//	key NUL writer NUL version NUL padding "|" hex(sha256(everything before "|"))
//
// so a reader can tell a torn, foreign or invented value from a real one.
func relValue(key string, writer int, version int64, pad int) []byte {
	var b bytes.Buffer
	b.WriteString(key)
	b.WriteByte(0)
	b.WriteString(strconv.Itoa(writer))
	b.WriteByte(0)
	b.WriteString(strconv.FormatInt(version, 10))
	b.WriteByte(0)
	for i := range pad {
		b.WriteByte('a' + byte((int(version)+i)%26))
	}
	sum := sha256.Sum256(b.Bytes())
	b.WriteByte('|')
	b.WriteString(hex.EncodeToString(sum[:]))
	return b.Bytes()
}

// relParsed is a verified value's content.
type relParsed struct {
	writer  int
	version int64
}

// relVerify checks that v is a value relValue made for key and returns its
// writer and version.
func relVerify(key string, v []byte) (relParsed, error) {
	i := bytes.LastIndexByte(v, '|')
	if i < 0 {
		return relParsed{}, fmt.Errorf("no checksum in %d-byte value %.40q", len(v), v)
	}
	body, sum := v[:i], string(v[i+1:])
	want := sha256.Sum256(body)
	if sum != hex.EncodeToString(want[:]) {
		return relParsed{}, fmt.Errorf("checksum mismatch in %d-byte value %.40q", len(v), v)
	}
	parts := bytes.SplitN(body, []byte{0}, 4)
	if len(parts) != 4 {
		return relParsed{}, fmt.Errorf("malformed value %.40q", v)
	}
	if string(parts[0]) != key {
		return relParsed{}, fmt.Errorf("value of key %q returned for key %q", parts[0], key)
	}
	w, err1 := strconv.Atoi(string(parts[1]))
	ver, err2 := strconv.ParseInt(string(parts[2]), 10, 64)
	if err1 != nil || err2 != nil {
		return relParsed{}, fmt.Errorf("malformed value %.40q", v)
	}
	return relParsed{writer: w, version: ver}, nil
}

// relErrKind classifies an error for the fault table.
func relErrKind(err error) string {
	var sc interface{ HTTPStatusCode() int }
	s := err.Error()
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case strings.Contains(s, "retry quota exceeded"):
		return "retry-quota"
	case errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(s, "connection refused"):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET) || strings.Contains(s, "connection reset"):
		return "reset"
	case strings.Contains(s, "unexpected EOF") || strings.Contains(s, ": EOF"):
		return "eof"
	case errors.As(err, &sc):
		return "http-" + strconv.Itoa(sc.HTTPStatusCode())
	case errors.Is(err, cache.ErrConflict):
		return "conflict"
	}
	return "other"
}

// relTransport is a private HTTP transport, so a test can close its idle
// connections (and their goroutines) before checking for leaks.
func relTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return tr
}
