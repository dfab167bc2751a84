package main

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/blobcache/blobcache/drivers/s3"
	"github.com/blobcache/blobcache/internal/s3test"
)

// populate writes n entries under c's location through its driver: every
// tenth expired, every fifth never expiring, the rest live. It returns the
// total size written.
func populate(t *testing.T, rawURL string, n int) (bytes int64) {
	t.Helper()
	c := openCache(t, rawURL)
	now := time.Now()
	objs := make(map[string][]byte, n)
	for i := range n {
		var exp time.Time
		switch {
		case i%10 == 0:
			exp = now.Add(-time.Minute)
		case i%5 == 0:
		default:
			exp = now.Add(time.Hour)
		}
		data := entryBytes(exp, fmt.Appendf(nil, "value %d", i))
		objs[c.ObjectName(fmt.Sprint("key-", i))] = data
		bytes += int64(len(data))
	}
	start := time.Now()
	writeObjects(t, c.Driver(), objs)
	t.Logf("wrote %d entries through the driver in %v", n, time.Since(start).Round(time.Millisecond))
	return bytes
}

// checkStatsAndClear runs stats and clear -yes on n populated entries; secret,
// when not empty, must not appear in the output.
func checkStatsAndClear(t *testing.T, rawURL string, n int, size int64, secret string) {
	t.Helper()
	start := time.Now()
	r := cli(t, "", "-url", rawURL, "stats")
	r.want(t, 0, "*")
	if secret != "" && strings.Contains(r.stdout+r.stderr, secret) {
		t.Errorf("the secret key appears in the stats output")
	}
	t.Logf("stats of %d entries took %v:\n%s", n, time.Since(start).Round(time.Millisecond), r.stdout)
	f := statsFields(t, r.stdout)
	for k, want := range map[string]string{
		"entries":     fmt.Sprint(n),
		"bytes":       fmt.Sprintf("%d (%s)", size, formatBytes(size)),
		"expired":     fmt.Sprint(n / 10),
		"no expiry":   fmt.Sprint(n / 10), // multiples of 5 but not of 10
		"not entries": "0",
		// A listing page per 1000 objects, a header read per object.
		"requests": fmt.Sprintf("%d LIST, %d GET (header reads), 0 PUT, 0 DELETE, 0 batch DELETE (%d in all)", (n+999)/1000, n, (n+999)/1000+n),
	} {
		if f[k] != want {
			t.Errorf("stats %s = %q, want %q", k, f[k], want)
		}
	}

	start = time.Now()
	r = cli(t, "", "-url", rawURL, "clear", "-yes")
	r.want(t, 0, fmt.Sprintf("deleted %d entries (%s)\n", n, formatBytes(size)))
	t.Logf("clear -yes of %d entries took %v", n, time.Since(start).Round(time.Millisecond))
	cli(t, "", "-url", rawURL, "len").want(t, 0, "0\n")
}

func TestTwentyThousandEntriesInADirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 20,000 files; skipped with -short")
	}
	const n = 20000
	rawURL := fileURL(t.TempDir(), "location=big&max_entries=0")
	size := populate(t, rawURL, n)
	checkStatsAndClear(t, rawURL, n, size, "")
}

// TestMinIO runs the CLI against a real S3 server: BLOBCACHE_S3_ENDPOINT
// and friends (the full test command sets them); skipped without, a failure
// with CI=true.
func TestMinIO(t *testing.T) {
	root := minioURL(t)
	rawURL := root.url + "?" + root.query + "&location=cli"
	u := []string{"-url", rawURL}

	var outputs []string
	do := func(stdin string, args ...string) result {
		t.Helper()
		r := cli(t, stdin, append(u, args...)...)
		outputs = append(outputs, r.stdout, r.stderr)
		return r
	}
	do("", "set", "greeting", "hello from minio").want(t, 0, "")
	do("", "get", "greeting").want(t, 0, "hello from minio")
	do("", "has", "greeting").want(t, 0, "")
	do("", "has", "absent").want(t, 1, "")
	do("piped", "set", "-ttl", "1h", "stdin").want(t, 0, "")
	do("", "get", "stdin").want(t, 0, "piped")
	do("", "len").want(t, 0, "2\n")
	do("", "delete", "greeting", "stdin").want(t, 0, "")
	do("", "len").want(t, 0, "0\n")
	do("", "clear").want(t, 0, "*") // nothing to clear: no question asked

	// More than two listing pages and two delete batches.
	const n = 2500
	size := populate(t, rawURL, n)
	r := do("", "clear")
	r.want(t, 1, "")
	if !strings.Contains(r.stderr, "refusing to delete 2500 entries") {
		t.Errorf("clear without -yes: stderr %q", r.stderr)
	}
	checkStatsAndClear(t, rawURL, n, size, root.secret)

	for _, out := range outputs {
		if root.secret != "" && strings.Contains(out, root.secret) {
			t.Errorf("the secret key appears in the output %q", out)
		}
	}
}

// minioStore is a fresh MinIO bucket as a cache URL: url (s3://bucket) and
// query (the server and credentials, no location), and the secret key,
// which no output may show.
type minioStore struct{ url, query, secret string }

// minioURL makes a bucket on the test's S3 server (see TestMinIO), deleted
// after the test; it skips the test without a server.
func minioURL(t *testing.T) minioStore {
	t.Helper()
	cfg := s3test.Env(t)
	bucket := s3test.NewBucket(t, cfg)
	q := url.Values{
		"endpoint":       {cfg.Endpoint},
		"region":         {cfg.Region},
		"use_path_style": {"true"},
		"access_key":     {cfg.AccessKey},
		"secret_key":     {cfg.SecretKey},
	}
	return minioStore{url: "s3://" + bucket, query: q.Encode(), secret: cfg.SecretKey}
}

// TestLifecycle: lifecycle prints the driver's rules as the AWS CLI's JSON
// for an s3:// cache, and refuses, naming why, any other.
func TestLifecycle(t *testing.T) {
	r := cli(t, "", "-url", "mem://", "lifecycle")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "not an s3:// cache") {
		t.Errorf("lifecycle on mem: exit %d, stdout %q, stderr %q; want exit 1 saying it is not S3", r.code, r.stdout, r.stderr)
	}
	m := minioURL(t)
	cli(t, "", "-url", m.url+"?"+m.query, "lifecycle").want(t, 0, string(s3.LifecycleJSON()))
}
