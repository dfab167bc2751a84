package cache_test

// Options are all-or-nothing: every pair of a cache URL's query and every
// entry of a Config is honoured or refused with an error wrapping
// ErrInvalidOption that names it, and nothing touches the store before every
// option has been checked.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
)

// randomName returns a name no other test uses, for named memory stores,
// which live as long as the process.
func randomName(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// wantInvalid asserts that err wraps ErrInvalidOption, mentions every one of
// names, and shows none of hidden.
func wantInvalid(t *testing.T, what string, err error, names []string, hidden ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want ErrInvalidOption naming %v", what, names)
		return
	}
	if !errors.Is(err, cache.ErrInvalidOption) {
		t.Errorf("%s: %v does not wrap ErrInvalidOption", what, err)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("%s: %q does not name %q", what, err, n)
		}
	}
	for _, h := range hidden {
		if strings.Contains(err.Error(), h) {
			t.Errorf("%s: %q shows %q", what, err, h)
		}
	}
}

// The attack: a query pair url.ParseQuery drops silently takes location
// with it, the cache opens at the store's root, and Clear deletes every
// other location's entries.
func TestOpenMalformedQueryLosesNothing(t *testing.T) {
	ctx := context.Background()
	store := randomName("strict-")
	victim, err := cache.Open(ctx, "mem://"+store+"?location=victim")
	must(t, err)
	defer victim.Close()
	must(t, victim.Set(ctx, "k", []byte("precious"), cache.NoExpiry))
	for _, q := range []string{
		"location=app;x=1",            // ';' separator
		"x=1;location=app",            // ';' in another pair
		"location=%zzapp",             // bad escape in the value
		"loc%zzation=app",             // bad escape in the name
		"location=app%",               // truncated escape
		"location",                    // no '=' and no value
		"location=",                   // empty value
		"=app",                        // empty name
		"location=app#frag",           // fragment cuts the query
		"location=app&location=app",   // twice
		"location=app&LOCATION=app",   // two spellings
		"location=app&Location=other", // two spellings, two values
	} {
		c, err := cache.Open(ctx, "mem://"+store+"?"+q)
		if err == nil {
			// What the attacker wanted: Clear at the root.
			c.Clear(ctx)
			c.Close()
			t.Errorf("Open(mem://…?%s) succeeded at location %q", q, c.Location())
			continue
		}
		if !errors.Is(err, cache.ErrInvalidOption) {
			t.Errorf("Open(mem://…?%s) = %v, want ErrInvalidOption", q, err)
		}
		named := false
		for _, w := range []string{"location", "no name", "fragment", "';'", "escape"} {
			named = named || strings.Contains(strings.ToLower(err.Error()), w)
		}
		if !named {
			t.Errorf("Open(mem://…?%s) = %v, want it to name the option", q, err)
		}
	}
	if v, err := victim.Get(ctx, "k"); err != nil || string(v) != "precious" {
		t.Fatalf("the victim location lost its entry: %q, %v", v, err)
	}
}

// Each malformed pair is refused, named, and never echoes a value.
func TestOpenMalformedPairs(t *testing.T) {
	ctx := relCancelled // nothing here may reach a server
	const secret = "hunter2hunter2"
	for _, tc := range []struct {
		url   string
		names []string
	}{
		{"mem://?is_gzipped", []string{"is_gzipped", "no value"}},
		{"mem://?is_gzipped=", []string{"is_gzipped", "empty value"}},
		{"mem://?max_entries=5;is_gzipped=true", []string{"max_entries", "';'"}},
		{"mem://?key_prefix=a%2", []string{"key_prefix", "escape"}},
		{"mem://?=" + secret, []string{"no name"}},
		{"mem://?signing_key=" + secret + "%zz", []string{"signing_key", "escape"}},
		{"mem://?signing_key=" + secret + ";x", []string{"signing_key"}},
		{"mem://?signing_key=" + secret + "#tail", []string{"fragment"}},
		{"s3://b?secret_key=" + secret + "%", []string{"secret_key", "escape"}},
		{"s3://b?x=" + secret + "%zz&access_key=AK&secret_key=" + secret, []string{`"x"`, "escape"}},
		{"mem://name/path", []string{"path"}},
		{"mem://user:" + secret + "@name", []string{"user"}},
		{"mem:opaque", []string{"mem:"}},
		{"mem://?max_entries=5&&location=x&", nil}, // empty segments lose nothing: accepted
	} {
		c, err := cache.Open(ctx, tc.url)
		if tc.names == nil {
			if err != nil {
				t.Errorf("Open(%s) = %v, want success", tc.url, err)
			} else {
				c.Close()
			}
			continue
		}
		wantInvalid(t, "Open("+tc.url+")", err, tc.names, secret)
	}
}

// A secret holding an unescaped '&' splits into a second pair whose name is
// the secret's tail: errors about that pair must not show it.
func TestOpenPairAfterSecretNotShown(t *testing.T) {
	ctx := relCancelled // nothing here may reach a server
	for _, raw := range []string{
		"mem://?signing_key=abcdef&TAILSECRET",      // valueless
		"mem://?signing_key=abcdef&TAILSECRET=more", // unknown name
		"mem://?signing_key=abcdef&TAIL%zzSECRET=x", // bad escape
		"s3://b?access_key=AK&secret_key=abcdef&TAILSECRET=x",
		"s3://b?access_key=AK&secret_key=abcdef&TAILSECRET",
		"file:///tmp/x?signing_key=abc&TAILSECRET=1",
	} {
		_, err := cache.Open(ctx, raw)
		wantInvalid(t, "Open("+raw+")", err, nil, "TAIL", "SECRET", "abcdef")
	}
}

// Two spellings of one option (case, or an alias) are an error, in URLs.
func TestOpenOptionGivenTwice(t *testing.T) {
	ctx := relCancelled // nothing here may reach a server
	for _, q := range []string{
		"access_key=A&access_key_id=A&secret_key=S",
		"access_key=A&secret_key=S&secret_access_key=S",
		"ACCESS_KEY=A&Access_Key=A&secret_key=S",
		"bucket_name=b&storage_bucket_name=b",
		"use_path_style=true&s3forcepathstyle=true",
		"sse=AES256&ssetype=AES256",
		"sse=aws:kms&kmskeyid=k&kms_key_id=k",
		"region=us-east-1&REGION=us-east-1",
		"timeout=5&TIMEOUT=5",
		"max_value_size=1KiB&Max_Value_Size=1KiB",
	} {
		_, err := cache.Open(ctx, "s3://b?"+q)
		wantInvalid(t, "Open(s3://b?"+q+")", err, []string{"twice"}, "=S")
	}
}

// Two spellings of one option at any level of a Config are an error.
func TestConfigOptionGivenTwice(t *testing.T) {
	ctx := relCancelled // nothing here may reach a server
	bucket := map[string]any{"bucket_name": "bk"}
	with := func(m map[string]any) map[string]any {
		out := map[string]any{"bucket_name": "bk"}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	for _, tc := range []struct {
		cfg  cache.Config
		name string
	}{
		{cache.Config{"backend": "s3", "LOCATION": "a", "location": "b", "options": bucket}, "location"},
		{cache.Config{"backend": "s3", "location": "a", "options": with(map[string]any{"location": "b"})}, "location"},
		{cache.Config{"backend": "s3", "location": "a", "options": with(map[string]any{"LOCATION": "a"})}, "location"},
		{cache.Config{"backend": "s3", "options": with(map[string]any{"location": "a", "LOCATION": "a"})}, "location"},
		{cache.Config{"backend": "s3", "OPTIONS": bucket, "options": map[string]any{"max_entries": 5}}, "options"},
		{cache.Config{"BACKEND": "mem", "backend": "mem"}, "backend"},
		{cache.Config{"backend": "s3", "options": map[string]any{"bucket_name": "a", "storage_bucket_name": "a"}}, "bucket_name"},
		{cache.Config{"backend": "s3", "options": map[string]any{"STORAGE_BUCKET_NAME": "a", "Bucket_Name": "b"}}, "bucket_name"},
		{cache.Config{"url": "mem://?location=a", "location": "b"}, "location"},
		{cache.Config{"url": "mem://?location=a", "options": map[string]any{"LOCATION": "a"}}, "location"},
		{cache.Config{"url": "mem://?max_entries=1", "MAX_ENTRIES": 1}, "max_entries"},
		{cache.Config{"backend": "mem", "max_entries": 1, "options": map[string]any{"MAX_ENTRIES": 1}}, "max_entries"},
		{cache.Config{"backend": "mem", "timeout": 1, "TIMEOUT": 1}, "timeout"},
		{cache.Config{"backend": "mem", "key_prefix": "", "options": map[string]any{"KEY_PREFIX": "p"}}, "key_prefix"},
	} {
		u, err := tc.cfg.URL()
		wantInvalid(t, tc.cfg.String()+".URL()", err, []string{tc.name, "twice"})
		if err == nil {
			t.Logf("  URL() = %s", u)
		}
		_, err = cache.OpenConfig(ctx, tc.cfg)
		wantInvalid(t, "OpenConfig("+tc.cfg.String()+")", err, []string{tc.name})
	}
	// Driver aliases are caught when the driver reads them.
	for _, opts := range []map[string]any{
		{"access_key": "A", "ACCESS_KEY_ID": "A", "secret_key": "S"},
		{"access_key": "A", "secret_key": "S", "SECRET_ACCESS_KEY": "S"},
		{"sse": "AES256", "SSETYPE": "AES256"},
	} {
		cfg := cache.Config{"backend": "s3", "options": with(opts)}
		_, err := cache.OpenConfig(ctx, cfg)
		wantInvalid(t, "OpenConfig("+cfg.String()+")", err, []string{"twice"})
	}
}

// Malformed queries inside a Config's url are refused too.
func TestConfigURLMalformed(t *testing.T) {
	for raw, want := range map[string]string{
		"mem://?location=a;max_entries=3": "location",
		"mem://?location=%zz":             "location",
		"mem://?location":                 "location",
		"mem://?location=a#b":             "fragment",
	} {
		cfg := cache.Config{"url": raw}
		_, err := cfg.URL()
		wantInvalid(t, "Config{url: "+raw+"}.URL()", err, []string{want})
	}
}

// recordingS3 is a stand-in S3 endpoint that counts requests and answers 200
// to everything (so HeadBucket finds the bucket).
func recordingS3(t *testing.T) (endpoint string, requests *atomic.Int64) {
	t.Helper()
	requests = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	// No shared AWS files or environment credentials from this machine.
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return srv.URL, requests
}

// A bad option of any kind fails Open before any request reaches the server.
func TestOpenS3BadOptionSendsNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	endpoint, requests := recordingS3(t)
	// secret_key is not last: the name of a pair right after it is never
	// shown (it may be the secret's tail).
	base := "s3://bkt?endpoint=" + endpoint + "&access_key=AK&secret_key=SK-hidden&region=us-east-1&use_path_style=true"
	// The control: a good URL reaches the server.
	c, err := cache.Open(ctx, base+"&location=ok&max_entries=10")
	if err != nil {
		t.Fatalf("Open(good URL) = %v", err)
	}
	c.Close()
	if requests.Load() == 0 {
		t.Fatal("the good URL sent no request: the test cannot see requests")
	}
	requests.Store(0)
	for _, tc := range []struct{ q, name string }{
		// Cache options, which the driver never sees.
		{"max_entries=-1", "max_entries"},
		{"cull_frequency=-1", "cull_frequency"},
		{"timeout=-5", "timeout"},
		{"timeout=0", "timeout"},
		{"timeout=NaN", "timeout"},
		{"timeout=1e300", "timeout"},
		{"location=a/../b", "location"},
		{"location=a//b", "location"},
		{"max_value_size=0", "max_value_size"},
		{"max_value_size=2TiB", "max_value_size"},
		{"signing_key=a,,b", "signing_key"},
		{"cull_policy=random", "cull_policy"},
		{"version=1.5", "version"},
		// Driver options.
		{"default_acl=privat", "default_acl"},
		{"bucket_acl=private", "bucket_acl"}, // without create_bucket it would do nothing
		{"create_bucket=true&bucket_acl=bucket-owner-full-control", "bucket_acl"},
		{"storage_class=CHEAP", "storage_class"},
		{"storage_class=STANDARD&reduced_redundancy=true", "reduced_redundancy"},
		{"sse=AES", "ssetype"},
		{"kmskeyid=k", "kmskeyid"},
		{"sse=AES256&kmskeyid=k", "kmskeyid"},
		{"anonymous=true", "anonymous"},
		{"profile=p", "profile"},
		{"create_bucket=perhaps", "create_bucket"},
		{"dualstack=1", "dualstack"},
		{"fips=true", "fips"},
		{"accelerate=true", "accelerate"},
		{"disable_https=true", "disable_https"},
		{"hostname_immutable=true", "hostname_immutable"},
		{"rate_limiter_capacity=5", "rate_limiter_capacity"},
		{"role=arn:aws:iam::1:role/x", "role"},
		{"awssdk=v2", "awssdk"},
		{"request_checksum_calculation=when_required", "request_checksum_calculation"},
		{"response_checksum_validation=when_required", "response_checksum_validation"},
	} {
		_, err := cache.Open(ctx, base+"&"+tc.q)
		wantInvalid(t, "Open(…&"+tc.q+")", err, []string{tc.name}, "SK-hidden")
		if n := requests.Swap(0); n != 0 {
			t.Errorf("Open(…&%s) sent %d requests before failing", tc.q, n)
		}
	}
	// Bad reach and credentials, each a whole URL.
	for _, tc := range []struct{ url, name string }{
		{"s3://bkt?endpoint=ftp://" + strings.TrimPrefix(endpoint, "http://") + "&region=us-east-1&access_key=AK&secret_key=SK-hidden", "endpoint"},
		{"s3://bkt?endpoint=" + strings.TrimPrefix(endpoint, "http://") + "&region=us-east-1&access_key=AK&secret_key=SK-hidden", "endpoint"},
		{"s3://bkt?endpoint=http://&region=us-east-1&access_key=AK&secret_key=SK-hidden", "endpoint"},
		{"s3://bkt?endpoint=" + endpoint + "&region=us%20east&access_key=AK&secret_key=SK-hidden", "region"},
		{"s3://bkt?endpoint=" + endpoint + "&region=x.evil.com%23&access_key=AK&secret_key=SK-hidden", "region"},
		{"s3://bkt?endpoint=" + endpoint + "&region=us-east-1&access_key=AK", "secret_key"},
		{"s3://bkt?endpoint=" + endpoint + "&region=us-east-1&secret_key=SK-hidden", "access_key"},
		{"s3://bkt?endpoint=" + endpoint + "&region=us-east-1&access_key=AK&secret_key=SK+hidden", "secret_key"},
		{"s3://bkt:9000?endpoint=" + endpoint + "&region=us-east-1&access_key=AK&secret_key=SK-hidden", "bucket"},
	} {
		_, err := cache.Open(ctx, tc.url)
		wantInvalid(t, "Open("+tc.url+")", err, []string{tc.name}, "SK-hidden", "SK hidden")
		if n := requests.Swap(0); n != 0 {
			t.Errorf("Open(%s) sent %d requests before failing", tc.url, n)
		}
	}
}

// A bad cache option of a file:// URL fails before the directory is made.
func TestOpenFileBadOptionCreatesNothing(t *testing.T) {
	ctx := context.Background()
	for _, q := range []string{
		"max_entries=-1", "max_entries=x", "cull_frequency=-2", "timeout=0", "location=a/../b",
		"max_value_size=0", "signing_key=,", "location=x;y", "is_gzipped", "colour=blue", "location=a#b",
	} {
		dir := filepath.Join(t.TempDir(), "cache")
		_, err := cache.Open(ctx, "file://"+dir+"?"+q)
		if !errors.Is(err, cache.ErrInvalidOption) {
			t.Errorf("Open(file://…?%s) = %v, want ErrInvalidOption", q, err)
		}
		if _, serr := os.Stat(dir); !errors.Is(serr, fs.ErrNotExist) {
			t.Errorf("Open(file://…?%s) failed but made the directory (stat: %v)", q, serr)
		}
	}
	// The Go options are checked first too.
	dir := filepath.Join(t.TempDir(), "cache")
	_, err := cache.Open(ctx, "file://"+dir, cache.WithMaxEntries(-1))
	if !errors.Is(err, cache.ErrInvalidOption) {
		t.Errorf("Open with WithMaxEntries(-1) = %v", err)
	}
	if _, serr := os.Stat(dir); !errors.Is(serr, fs.ErrNotExist) {
		t.Errorf("Open with a bad Go option made the directory (stat: %v)", serr)
	}
}

// Every option a URL spells is what the cache does.
func TestOpenHonoursEveryOption(t *testing.T) {
	ctx := context.Background()
	c, err := cache.Open(ctx, "mem://?location=/loc/&max_entries=7&cull_frequency=0&cull_policy=oldest&timeout=0.5"+
		"&key_prefix=p%2Bq&version=-2&is_gzipped=T&max_value_size=64%20KiB&signing_key=k1,k2&fill_timeout=90s")
	must(t, err)
	defer c.Close()
	got := cache.Observe(c)
	want := cache.Observed{Location: "loc/", MaxEntries: 7, Policy: "oldest(0)", DefaultTTL: 500 * time.Millisecond,
		KeyPrefix: "p+q", Version: -2, Gzip: true, MaxValueSize: 64 << 10, FillTimeout: 90 * time.Second, SigningKeys: 2}
	if got != want {
		t.Errorf("Observe = %+v\n     want %+v", got, want)
	}
	if s := c.String(); !strings.Contains(s, "max_entries=7") || strings.Contains(s, "k1") {
		t.Errorf("String() = %s", s)
	}
	// Defaults when nothing is given.
	c2, err := cache.Open(ctx, "mem://")
	must(t, err)
	defer c2.Close()
	if got, want := cache.Observe(c2), (cache.Observed{MaxEntries: cache.DefaultMaxEntries, Policy: "frequency(3)",
		DefaultTTL: cache.DefaultTimeout, Version: 1, MaxValueSize: cache.DefaultMaxValueSize,
		FillTimeout: cache.DefaultFillTimeout}); got != want {
		t.Errorf("defaults: Observe = %+v\n     want %+v", got, want)
	}
	// timeout forms.
	for q, want := range map[string]time.Duration{"timeout=none": cache.NoExpiry, "timeout=NONE": cache.NoExpiry,
		"timeout=5m": 5 * time.Minute, "timeout=60": time.Minute, "timeout=1e3": 1000 * time.Second} {
		c, err := cache.Open(ctx, "mem://?"+q)
		must(t, err)
		if got := cache.Observe(c).DefaultTTL; got != want {
			t.Errorf("%s: default TTL %v, want %v", q, got, want)
		}
		c.Close()
	}
	for _, q := range []string{"timeout=Inf", "timeout=-Inf", "timeout=1e-10", "timeout=9300000000", "timeout=3000000h"} {
		_, err := cache.Open(ctx, "mem://?"+q)
		wantInvalid(t, q, err, []string{"timeout"})
	}
}

// Config values in every shape decoders make, and the errors for those that
// are not values.
func TestConfigValueShapes(t *testing.T) {
	ctx := context.Background()
	yamlV2 := map[any]any{"max_entries": 7, "LOCATION": "loc", "is_gzipped": true, "timeout": 1.5, "key_prefix": "p"}
	for _, opts := range []any{
		yamlV2,
		map[string]string{"max_entries": "7", "LOCATION": "loc", "is_gzipped": "true", "timeout": "1.5", "key_prefix": "p"},
		cache.Config{"max_entries": 7, "LOCATION": "loc", "is_gzipped": true, "timeout": 1.5, "key_prefix": "p"},
		&map[string]any{"max_entries": int64(7), "LOCATION": "loc", "is_gzipped": true, "timeout": float32(1.5), "key_prefix": "p"},
		map[string]any{"max_entries": uint8(7), "LOCATION": "loc", "is_gzipped": true, "timeout": "1500ms", "key_prefix": "p"},
	} {
		cfg := cache.Config{"backend": "mem", "options": opts}
		c, err := cache.OpenConfig(ctx, cfg)
		if err != nil {
			t.Errorf("OpenConfig(%v): %v", cfg, err)
			continue
		}
		if got := cache.Observe(c); got.Location != "loc/" || got.MaxEntries != 7 || !got.Gzip ||
			got.DefaultTTL != 1500*time.Millisecond || got.KeyPrefix != "p" {
			t.Errorf("OpenConfig(%v): %+v", cfg, got)
		}
		c.Close()
	}
	for _, tc := range []struct {
		cfg   cache.Config
		names []string
	}{
		{cache.Config{"backend": "mem", "options": map[any]any{3: "x"}}, []string{"options", "3", "int"}},
		{cache.Config{"backend": "mem", "options": map[any]any{"max_entries": 1, true: "x"}}, []string{"options", "true"}},
		{cache.Config{"backend": "mem", "options": []any{map[string]any{"max_entries": 1}}}, []string{"options"}},
		{cache.Config{"backend": "mem", "max_entries": []any{1}}, []string{"max_entries", "list"}},
		{cache.Config{"backend": "mem", "options": map[string]any{"timeout": map[string]any{"s": 1}}}, []string{"timeout"}},
		{cache.Config{"backend": "mem", "timeout": nil, "max_entries": nil}, []string{"max_entries"}},
		{cache.Config{"backend": "mem", "max_entries": 3.5}, []string{"max_entries"}},
		{cache.Config{"backend": "mem", "max_entries": 1e20}, []string{"max_entries"}},
		{cache.Config{"backend": "mem", "timeout": "", "max_entries": 1}, []string{"timeout", "empty"}},
		{cache.Config{"backend": "mem", "options": map[string]any{"backend": "s3"}}, []string{"backend"}},
		{cache.Config{"backend": "mem", "options": map[string]any{"url": "mem://"}}, []string{"url"}},
	} {
		_, err := cache.OpenConfig(ctx, tc.cfg)
		wantInvalid(t, "OpenConfig("+tc.cfg.String()+")", err, tc.names)
	}
	// Django's defaults for LOCATION and KEY_PREFIX, the empty string, mean
	// what Django means: the store's root, no prefix.
	c, err := cache.OpenConfig(ctx, cache.Config{"BACKEND": "locmem", "LOCATION": "", "KEY_PREFIX": "", "OPTIONS": map[string]any{"LOCATION": ""}})
	must(t, err)
	if got := cache.Observe(c); got.Location != "" || got.KeyPrefix != "" {
		t.Errorf("empty LOCATION and KEY_PREFIX: %+v", got)
	}
	c.Close()
}

// s3 option errors carry the cache's kind and the driver's.
func TestOpenS3OptionErrorKinds(t *testing.T) {
	_, err := cache.Open(relCancelled, "s3://b?default_acl=nope")
	if !errors.Is(err, cache.ErrInvalidOption) || !errors.Is(err, driver.ErrInvalidOption) {
		t.Errorf("Open with a bad ACL = %v, want ErrInvalidOption of both packages", err)
	}
}
