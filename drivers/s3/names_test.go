package s3_test

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/internal/s3test"
)

// TestTrickyNames runs the table of tricky names on MinIO: each is refused
// with driver.ErrInvalidName (by ValidateName and by every method), or is
// written, read back, listed with exactly that name (also as the listing
// prefix) and deleted, and stored in the bucket under exactly that key.
func TestTrickyNames(t *testing.T) {
	e := newEnv(t)
	d := e.open(t, nil)
	client := s3test.Client(t, e.cfg, nil)
	got := s3test.CheckNames(t, d, "", s3test.TrickyNames, func(accepted []string) {
		want := slices.Sorted(slices.Values(accepted))
		if keys := s3test.RawKeys(t, client, e.bucket); !slices.Equal(keys, want) {
			t.Errorf("keys in the bucket:\n%q\nwant\n%q", keys, want)
		}
		// DeleteBatch (DeleteObjects, which names keys in XML) finds them.
		if err := d.DeleteBatch(t.Context(), accepted[:len(accepted)/2]); err != nil {
			t.Fatalf("DeleteBatch: %v", err)
		}
		rest := slices.Sorted(slices.Values(accepted[len(accepted)/2:]))
		if keys := s3test.RawKeys(t, client, e.bucket); !slices.Equal(keys, rest) {
			t.Errorf("keys after DeleteBatch of half:\n%q\nwant\n%q", keys, rest)
		}
		for _, n := range accepted[:len(accepted)/2] {
			write(t, d, n, n) // back for CheckNames's own checks
		}
	})
	for _, n := range []string{"a../b", "x/a../y", "x__0x2f__y", "__0x41__", "x/__0x41__", "__0x+41__"} {
		if slices.Contains(got, n) {
			t.Errorf("accepted %q, which s3blob rewrites", n)
		}
		err := d.ValidateName(n)
		if !errors.Is(err, driver.ErrInvalidName) || !strings.Contains(err.Error(), "s3blob would store") {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName saying what s3blob stores", n, err)
		}
	}
	for _, n := range []string{"a..", "a..b/c", "a%2Fb", "a+b", "a b", "ü", `a\b`, "a?b", "a#b", "%zz", "__0xzz__"} {
		if !slices.Contains(got, n) {
			t.Errorf("refused %q, which round-trips", n)
		}
	}
	if keys := s3test.RawKeys(t, client, e.bucket); len(keys) != 0 {
		t.Errorf("left in the bucket: %q", keys)
	}
	for _, p := range []string{"a../", "x__0x41__", "c\x01"} {
		if _, err := d.List(t.Context(), &driver.ListOptions{Prefix: p}); !errors.Is(err, driver.ErrInvalidName) {
			t.Errorf("List(prefix %q) = %v, want ErrInvalidName", p, err)
		}
	}
}

// TestLocationRewrittenRefused: a location that s3blob would store under
// other keys (entries under one prefix, listed under another) fails at Open,
// with an error naming it.
func TestLocationRewrittenRefused(t *testing.T) {
	e := newEnv(t)
	base := url.Values{
		"endpoint":       {e.cfg.Endpoint},
		"region":         {e.cfg.Region},
		"use_path_style": {"true"},
		"access_key":     {e.cfg.AccessKey},
		"secret_key":     {e.cfg.SecretKey},
	}
	open := func(location string) (*cache.Cache, error) {
		q := url.Values{}
		for k, v := range base {
			q[k] = v
		}
		q.Set("location", location)
		return cache.Open(t.Context(), "s3://"+e.bucket+"?"+q.Encode())
	}
	for _, loc := range []string{"a..", "x/a..", "__0x41__", "c__0x2f__d"} {
		c, err := open(loc)
		if err == nil {
			c.Close()
			t.Errorf("location %q: Open succeeded", loc)
			continue
		}
		if !errors.Is(err, driver.ErrInvalidName) || !strings.Contains(err.Error(), fmt.Sprintf("%q", loc)) {
			t.Errorf("location %q: %v; want ErrInvalidName naming the location", loc, err)
		}
		if strings.Contains(err.Error(), e.cfg.SecretKey) {
			t.Errorf("location %q: the error shows the secret key", loc)
		}
	}
	for _, loc := range []string{"a..b", "a b", "ü/+", "%41"} {
		c, err := open(loc)
		if err != nil {
			t.Errorf("location %q: %v", loc, err)
			continue
		}
		ctx := t.Context()
		if err := c.Set(ctx, "k", []byte("v"), time.Hour); err != nil {
			t.Errorf("location %q: Set: %v", loc, err)
		}
		if n, err := c.Len(ctx); err != nil || n != 1 {
			t.Errorf("location %q: Len = %d, %v", loc, n, err)
		}
		if err := c.Clear(ctx); err != nil {
			t.Errorf("location %q: Clear: %v", loc, err)
		}
		c.Close()
	}
	if keys := s3test.RawKeys(t, s3test.Client(t, e.cfg, nil), e.bucket); len(keys) != 0 {
		t.Errorf("left in the bucket: %q", keys)
	}
}

// plantedKeys are the names someone with raw access to the bucket plants,
// inside the cache's location ("cache/"), beside it, and under a sibling
// prefix: control characters, which make a ListObjectsV2 response without
// url-encoding unreadable by the SDK's XML decoder; bytes that are not
// UTF-8; form and URL escapes; and keys that the Go CDK's HexUnescape lists
// as entry names ("cache/__0x61__" + 39 zeros is listed as "cache/a000...").
func plantedKeys() []string {
	entryLike := "__0x61__" + strings.Repeat("0", 39)
	var keys []string
	for _, k := range []string{"\x01", "\x7f", "a\rb", "%zz", "a+b", "a b", "\xff", "a\x1b[31mred", "%", "+", "x\ny"} {
		keys = append(keys, "cache/"+k, k, "cache2/"+k, "cache"+k)
	}
	return append(keys, "cache/"+entryLike, "cache__0x2f__"+strings.Repeat("b", 40), "cache/sub/"+strings.Repeat("c", 40))
}

// TestPlantedKeysSurvive plants objects with the S3 client itself and then
// runs a cache over the driver that must cull: Sets that cull, Len, Get and
// Clear all succeed, count only the cache's own entries, and every planted
// object is still there afterwards.
func TestPlantedKeysSurvive(t *testing.T) {
	e := newEnv(t)
	client := s3test.Client(t, e.cfg, nil)
	var planted, refused []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, key := range plantedKeys() {
		wg.Go(func() {
			err := s3test.Plant(t, client, e.bucket, key)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused = append(refused, key)
			} else {
				planted = append(planted, key)
			}
		})
	}
	wg.Wait()
	slices.Sort(planted)
	t.Logf("MinIO refused %q (planted %d keys)", refused, len(planted))
	for _, k := range []string{"cache/\x01", "cache/\x7f", "cache/a\rb", "cache/%zz", "cache/a+b", "cache/a b"} {
		if !slices.Contains(planted, k) {
			t.Fatalf("MinIO refused the planted key %q", k)
		}
	}

	d := e.open(t, nil)
	c, err := cache.New(d, cache.WithLocation("cache"), cache.WithMaxEntries(5))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	entries := func() []string {
		var names []string
		for _, k := range s3test.RawKeys(t, client, e.bucket) {
			if c.IsEntryName(k) {
				names = append(names, k)
			}
		}
		return names
	}
	for i := range 20 {
		if err := c.Set(ctx, fmt.Sprint("key", i), []byte("value"), time.Hour); err != nil {
			t.Fatalf("Set %d: %v", i, err)
		}
	}
	if v, err := c.Get(ctx, "key19"); err != nil || string(v) != "value" {
		t.Errorf("Get key19 = %q, %v", v, err)
	}
	n, err := c.Len(ctx)
	if err != nil {
		t.Fatalf("Len: %v", err)
	}
	if own := entries(); n != len(own) || n > 5 || n == 0 {
		t.Errorf("Len = %d; the cache's own entries are %d (%q), at most 5 after culling", n, len(own), own)
	}
	if err := c.Clear(ctx); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	if n, err := c.Len(ctx); err != nil || n != 0 {
		t.Errorf("Len after Clear = %d, %v", n, err)
	}
	if own := entries(); len(own) != 0 {
		t.Errorf("entries after Clear: %q", own)
	}
	// Every planted object is still there: nothing but the cache's own
	// entries was culled or cleared.
	if keys := s3test.RawKeys(t, client, e.bucket); !slices.Equal(keys, planted) {
		t.Errorf("keys after Clear:\n%q\nwant the planted keys\n%q", keys, planted)
	}
	// The driver's listing shows none of the planted names it would refuse.
	names, err := s3test.ListAll(ctx, d, "")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, n := range names {
		if err := driver.ValidateName(n); err != nil {
			t.Errorf("List shows %q: %v", n, err)
		}
		if strings.Contains(n, "__0x") {
			t.Errorf("List shows %q, which the driver would refuse", n)
		}
	}
	if !slices.Contains(names, "cache/a+b") || !slices.Contains(names, "a b") || !slices.Contains(names, "cache/%zz") {
		t.Errorf("List does not show valid planted names: %q", names)
	}
}

// TestMinIOListEncoding records what MinIO returns for keys with tricky
// bytes in a ListObjectsV2 response with EncodingType=url, the encoding the
// driver decodes, and that the driver lists each such valid name as written.
func TestMinIOListEncoding(t *testing.T) {
	e := newEnv(t)
	client := s3test.Client(t, e.cfg, nil)
	want := map[string]string{
		"k ": "k+", "k+": "k%2B", "k%": "k%25", "k\x01": "k%01", "k\x1f": "k%1F", "k\x7f": "k%7F",
		"k\r": "k%0D", "k\t": "k%09", "kü": "k%C3%BC", "k🙂": "k%F0%9F%99%82", "k\u00a0": "k%C2%A0",
		"k~": "k%7E", "k*": "k*", "k-_.": "k-_.", "k/x": "k/x", "k?": "k%3F", "k#": "k%23",
		"k&": "k%26", "k=": "k%3D", "k\\": "k%5C", "k\"": "k%22", "k'": "k%27", "k:": "k%3A",
		"k@": "k%40", "k!": "k%21", "k(": "k%28", "k,": "k%2C", "k;": "k%3B", "k<": "k%3C",
		"k[": "k%5B", "k^": "k%5E", "k`": "k%60", "k{": "k%7B", "k|": "k%7C",
	}
	for key := range want {
		if err := s3test.Plant(t, client, e.bucket, key); err != nil {
			t.Fatalf("plant %q: %v", key, err)
		}
	}
	out, err := client.ListObjectsV2(t.Context(), &awss3.ListObjectsV2Input{Bucket: aws.String(e.bucket), EncodingType: types.EncodingTypeUrl})
	if err != nil {
		t.Fatal(err)
	}
	if out.EncodingType != types.EncodingTypeUrl {
		t.Errorf("response EncodingType %q, want url", out.EncodingType)
	}
	got := map[string]string{}
	for _, o := range out.Contents {
		enc := aws.ToString(o.Key)
		key, err := url.QueryUnescape(enc)
		if err != nil {
			t.Errorf("%q does not decode: %v", enc, err)
		}
		got[key] = enc
	}
	for key, enc := range want {
		if got[key] != enc {
			t.Errorf("MinIO encodes %q as %q, want %q", key, got[key], enc)
		}
	}
	if len(got) != len(want) {
		t.Errorf("listed %d keys, planted %d", len(got), len(want))
	}
	// Without EncodingType, the SDK cannot read a response holding "\x01".
	if _, err := client.ListObjectsV2(t.Context(), &awss3.ListObjectsV2Input{Bucket: aws.String(e.bucket)}); err == nil {
		t.Log("the SDK read a listing with control characters in keys without url-encoding")
	} else {
		t.Logf("without EncodingType=url: %v", err)
	}
	d := e.open(t, nil)
	names, err := s3test.ListAll(t.Context(), d, "")
	if err != nil {
		t.Fatal(err)
	}
	var valid []string
	for key := range want {
		if d.ValidateName(key) == nil {
			valid = append(valid, key)
		}
	}
	slices.Sort(valid)
	if !slices.Equal(names, valid) {
		t.Errorf("List = %q, want %q", names, valid)
	}
}

// TestListRequests: a listing is still one ListObjectsV2 request per page,
// now with encoding-type=url.
func TestListRequests(t *testing.T) {
	e := newEnv(t)
	d := e.open(t, nil)
	for i := range 5 {
		write(t, d, fmt.Sprint("p/", i), "x")
	}
	e.ct.Reset()
	token := ""
	pages := 0
	for {
		p, err := d.List(t.Context(), &driver.ListOptions{Prefix: "p/", PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if token = p.NextPageToken; token == "" {
			break
		}
	}
	e.counts(t, "List of 5 in pages of 2", map[s3test.Op]int{s3test.ListObjectsV2: pages})
	if pages != 3 {
		t.Errorf("%d pages", pages)
	}
	p, err := d.List(t.Context(), &driver.ListOptions{Prefix: "p/"})
	if err != nil || len(p.Objects) != 5 {
		t.Fatalf("List = %+v, %v", p, err)
	}
	reqs := e.ct.Requests()
	if len(reqs) != 1 || reqs[0].URL.Query().Get("encoding-type") != "url" {
		t.Errorf("List requests %v, want one with encoding-type=url", reqs)
	}
}
