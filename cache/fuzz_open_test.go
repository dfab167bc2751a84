package cache_test

// Fuzz targets for the cache's inputs that come from configuration: cache
// URLs (Open), Django-style configurations (Config.URL, OpenConfig) and
// locations (WithLocation). None of them reaches the network: every Open runs
// with a context that is already cancelled, which the S3 driver's first
// request (HeadBucket) checks before resolving credentials or dialing, and
// which the file driver checks before touching the disk.
//
//	go test -run='^$' -fuzz='^FuzzOpenURL$' -fuzztime=60s ./cache/
//	go test -run='^$' -fuzz='^FuzzConfigURL$' -fuzztime=60s ./cache/
//	go test -run='^$' -fuzz='^FuzzWithLocation$' -fuzztime=60s ./cache/
//	go test -run='^$' -fuzz='^FuzzOpenURLOptions$' -fuzztime=60s ./cache/
//
// FuzzOpenURLOptions opens mem:// and file:// (in t.TempDir()) URLs with a
// live context: neither reaches the network.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/mem"
)

// relCancelled is a context that is already done: Open with it never
// reaches the network or the disk.
var relCancelled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// relSecretNames are the option names whose values must never be shown.
var relSecretNames = map[string]bool{"secret_key": true, "secret_access_key": true}

// relSecrets returns the values of secret parameters in q that are long
// enough to look for and appear nowhere else in whole (so finding them in a
// message can only be a leak).
func relSecrets(q url.Values, whole string) []string {
	var out []string
	for k, vs := range q {
		if !relSecretNames[strings.ToLower(k)] {
			continue
		}
		for _, v := range vs {
			if len(v) >= 6 && strings.Count(whole, v) == 1 {
				out = append(out, v)
			}
		}
	}
	return out
}

// relCheckOpen opens raw with a cancelled context and checks the outcome:
// it returns promptly; an error is an invalid option, the context's, or an
// error of the driver's opening (prefixed by the driver's name); no secret
// shows in the error or in the cache's String.
func relCheckOpen(t *testing.T, raw string) {
	u, perr := url.Parse(raw)
	if perr == nil && strings.EqualFold(u.Scheme, "mem") && u.Host != "" {
		// Named memory stores live as long as the process: use one name.
		if !strings.Contains(raw, u.Host) {
			return
		}
		raw = strings.Replace(raw, u.Host, "fuzz", 1)
		u, perr = url.Parse(raw)
	}
	var secrets []string
	if perr == nil {
		if q, err := url.ParseQuery(u.RawQuery); err == nil {
			secrets = relSecrets(q, raw)
		}
	}
	start := time.Now()
	c, err := cache.Open(relCancelled, raw)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Open(%q) took %v with a cancelled context", raw, took)
	}
	if err != nil {
		msg := err.Error()
		switch {
		case errors.Is(err, cache.ErrInvalidOption), errors.Is(err, context.Canceled):
		case strings.HasPrefix(msg, "s3: "), strings.HasPrefix(msg, "file: "), strings.HasPrefix(msg, "blob: "),
			strings.HasPrefix(msg, "gcs: "), strings.HasPrefix(msg, "azure: "):
		default:
			t.Errorf("Open(%q): error %q is neither an invalid option nor a driver's error", raw, msg)
		}
		for _, s := range secrets {
			// Known bug (TestReliabilitySecretInBlobOpenError): the Go CDK's
			// error for a URL it cannot open quotes the URL.
			if strings.Contains(msg, s) {
				t.Errorf("Open(%q): the error shows the secret %q: %s", raw, s, msg)
			}
		}
		if c != nil {
			t.Errorf("Open(%q) returned a cache and an error", raw)
		}
		return
	}
	defer c.Close()
	for _, s := range secrets {
		for _, shown := range []string{c.String(), fmt.Sprintf("%v %+v %s", c, c, c)} {
			if strings.Contains(shown, s) {
				t.Errorf("Open(%q): the cache shows the secret %q: %s", raw, s, shown)
			}
		}
	}
	loc := c.Location()
	if loc != "" && (!strings.HasSuffix(loc, "/") || driver.ValidateName(strings.TrimSuffix(loc, "/")) != nil) {
		t.Errorf("Open(%q): location %q is not a valid folder", raw, loc)
	}
	if name := c.ObjectName("k"); driver.ValidateName(name) != nil || !strings.HasPrefix(name, loc) {
		t.Errorf("Open(%q): object name %q is invalid or outside the location %q", raw, name, loc)
	}
}

func FuzzOpenURL(f *testing.F) {
	for _, s := range []string{
		"mem://",
		"mem://shared?location=cache&max_entries=10&cull_frequency=0&timeout=none",
		"mem://?MAX_ENTRIES=1&max_entries=2",
		"mem://?cull_policy=oldest&cull_frequency=4&timeout=1.5&key_prefix=p&version=-3&is_gzipped=true",
		"mem://?location=../x",
		"mem://?timeout=-1",
		"mem://?max_entires=3",
		"file:///tmp/blobcache-fuzz?location=a/b",
		"file://host/x",
		"s3://bucket?endpoint=http://127.0.0.1:1&region=us-east-1&use_path_style=true&access_key=AKIAEXAMPLE&secret_key=verysecretvalue",
		"s3://bucket?secret_access_key=anothersecret&access_key_id=AK&s3forcepathstyle=true",
		"s3://bucket?bucket_name=other",
		"s3://?storage_bucket_name=b&default_acl=public-read&storage_class=STANDARD_IA&reduced_redundancy=true",
		"s3://b?sse=aws:kms&kmskeyid=k&accelerate=true&dualstack=true&fips=true&anonymous=true",
		"s3://b?profile=nope&create_bucket=true&bucket_acl=private",
		"s3://user:pass@bucket",
		"s3://bucket/path",
		"S3://Bucket?Endpoint=http://127.0.0.1:1",
		"gs://bucket",
		"gs://bucket?endpoint=http://127.0.0.1:1&anonymous=true",
		"azblob://container?account=devstoreaccount1&key=c2VjcmV0a2V5c2VjcmV0a2V5&endpoint=http://127.0.0.1:1/devstoreaccount1",
		"azblob://c?account=a",
		"%zz",
		"://",
		"mem://?location=%00",
		"mem://?signing_key=0123456789abcdef0123456789abcdef",
		"mem://?stale_grace=1h&fill_lease=5s",
		"mem://?local_tier=64MiB&local_staleness=250ms",
		"mem://?local_staleness=1s",
		"mem://?stale_grace=-1s&fill_lease=1ns",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		relCheckOpen(t, raw)
	})
}

func FuzzConfigURL(f *testing.F) {
	for _, s := range []string{
		`{"BACKEND": "s3cache.AmazonS3Cache", "LOCATION": "cache", "TIMEOUT": 600, "OPTIONS": {"ACCESS_KEY_ID": "AKIA", "SECRET_ACCESS_KEY": "topsecretvalue", "STORAGE_BUCKET_NAME": "b", "DEFAULT_ACL": "private", "REDUCED_REDUNDANCY": true, "IS_GZIPPED": true, "MAX_ENTRIES": 1000, "CULL_FREQUENCY": 4}}`,
		`{"backend": "mem", "location": "x", "timeout": null}`,
		`{"backend": "file", "location": "/tmp/x", "options": {"max_entries": 3.5}}`,
		`{"backend": "django.core.cache.backends.filebased.FileBasedCache", "location": "relative"}`,
		`{"url": "mem://?timeout=5m", "location": "loc", "key_prefix": "p", "version": 2}`,
		`{"url": "s3://b?secret_key=inurlsecret", "backend": "s3"}`,
		`{"backend": "s3", "options": {"bucket_name": "a", "storage_bucket_name": "b", "endpoint": "http://127.0.0.1:1"}}`,
		`{"backend": "s3", "max_entries": 1, "MAX_ENTRIES": 2, "options": {"bucket_name": "b"}}`,
		`{"backend": "mem", "key_function": "x"}`,
		`{"backend": "locmem", "options": []}`,
		`{"backend": 3}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg cache.Config
		if json.Unmarshal(data, &cfg) != nil || cfg == nil {
			return
		}
		// Secret values anywhere in the configuration.
		var secrets []string
		var walk func(m map[string]any)
		walk = func(m map[string]any) {
			for k, v := range m {
				switch v := v.(type) {
				case string:
					if relSecretNames[strings.ToLower(k)] && len(v) >= 6 && strings.Count(string(data), v) == 1 {
						secrets = append(secrets, v)
					}
				case map[string]any:
					walk(v)
				}
			}
		}
		walk(cfg)
		for _, shown := range []string{cfg.String(), fmt.Sprintf("%v|%+v|%#v|%s|%q", cfg, cfg, cfg, cfg, cfg)} {
			for _, s := range secrets {
				if strings.Contains(shown, s) {
					t.Errorf("Config %s shows the secret %q: %s", data, s, shown)
				}
			}
		}
		u, err := cfg.URL()
		if err != nil {
			if !errors.Is(err, cache.ErrInvalidOption) {
				t.Errorf("Config %s: URL error %v is not an invalid option", data, err)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("Config %s: the error shows the secret %q: %v", data, s, err)
				}
			}
			return
		}
		if _, err := url.Parse(u); err != nil {
			// Known bug (TestReliabilityConfigURLParses): a mem location or
			// an s3 bucket that cannot be a URL host.
			t.Errorf("Config %s: URL %q does not parse: %v", data, u, err)
			return
		}
		relCheckOpen(t, u)
	})
}

func FuzzWithLocation(f *testing.F) {
	for _, s := range []string{"", "/", "cache", "/cache/", "a/b/c", "a//b", "a/./b", "a/../b", "..", ".",
		"caché", "a\x00b", "\xff", "a\nb", strings.Repeat("x", 983), strings.Repeat("x", 984), "cache/" + strings.Repeat("y/", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, loc string) {
		store := mem.New()
		c, err := cache.New(store, cache.WithLocation(loc), cache.WithMaxEntries(0))
		// The URL parameter and the Go option validate alike, except that a
		// URL says "the root" by leaving location out: an empty value is an
		// error (it is what a failed substitution leaves).
		rawURL := "mem://?location=" + url.QueryEscape(loc)
		if loc == "" {
			if _, uerr := cache.Open(relCancelled, rawURL); !errors.Is(uerr, cache.ErrInvalidOption) || !strings.Contains(uerr.Error(), "empty value") {
				t.Fatalf("location=: %v, want an error for the empty value", uerr)
			}
			rawURL = "mem://"
		}
		cu, uerr := cache.Open(relCancelled, rawURL)
		if (err == nil) != (uerr == nil) {
			t.Fatalf("location %q: WithLocation error %v but URL error %v", loc, err, uerr)
		}
		if err != nil {
			if !errors.Is(err, cache.ErrInvalidOption) || !errors.Is(uerr, cache.ErrInvalidOption) {
				t.Fatalf("location %q: errors %v / %v are not invalid options", loc, err, uerr)
			}
			return
		}
		defer c.Close()
		defer cu.Close()
		p := c.Location()
		if cu.Location() != p {
			t.Fatalf("location %q: WithLocation gives %q, the URL %q", loc, p, cu.Location())
		}
		trimmed := strings.Trim(loc, "/")
		if want := trimmed + "/"; (trimmed == "" && p != "") || (trimmed != "" && p != want) {
			t.Fatalf("location %q: Location() = %q, want %q", loc, p, want)
		}
		name := c.ObjectName("k")
		if err := driver.ValidateName(name); err != nil || !strings.HasPrefix(name, p) {
			t.Fatalf("location %q: object name %q: %v", loc, name, err)
		}
		// Entries live under the location and nothing else sees them.
		ctx := context.Background()
		if err := c.Set(ctx, "k", []byte("v"), cache.NoExpiry); err != nil {
			t.Fatalf("location %q: Set: %v", loc, err)
		}
		if n, err := c.Len(ctx); n != 1 || err != nil {
			t.Fatalf("location %q: Len = %d, %v; want 1", loc, n, err)
		}
		if p != "" {
			sibling, err := cache.New(mem.New(), cache.WithLocation(trimmed+"x"))
			if err == nil {
				sibling.Close()
				sib, _ := cache.New(store, cache.WithLocation(trimmed+"x"))
				if n, err := sib.Len(ctx); n != 0 || err != nil {
					t.Fatalf("location %q: the sibling %q sees %d entries, %v", loc, trimmed+"x", n, err)
				}
				if err := sib.Clear(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		if v, err := c.Get(ctx, "k"); err != nil || string(v) != "v" {
			t.Fatalf("location %q: Get = %q, %v", loc, v, err)
		}
		if err := c.Clear(ctx); err != nil {
			t.Fatal(err)
		}
		page, err := store.List(ctx, &driver.ListOptions{})
		if err != nil || len(page.Objects) != 0 {
			t.Fatalf("location %q: after Clear the store holds %v, %v", loc, page, err)
		}
	})
}

// fuzzCacheOptions are the cache's own option names, listed here apart from
// the package so that the oracle does not share its tables.
var fuzzCacheOptions = map[string]bool{"location": true, "max_entries": true, "cull_frequency": true, "cull_policy": true,
	"timeout": true, "key_prefix": true, "version": true, "is_gzipped": true, "max_value_size": true, "signing_key": true,
	"fill_timeout": true, "fill_lease": true, "stale_grace": true, "local_tier": true, "local_staleness": true}

// oracleQuery reads a raw query the strict way, independently of the
// package: pairs split on '&', each name=value with valid escapes, a
// non-empty name and value, no ';', no name twice in any case, and only the
// cache's own names (mem and file take no others). ok is false when Open
// must refuse the query.
func oracleQuery(query string) (opts map[string]string, ok bool) {
	if strings.ContainsAny(query, "#") || strings.IndexFunc(query, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return nil, false
	}
	opts = map[string]string{}
	for _, seg := range strings.Split(query, "&") {
		if seg == "" {
			continue
		}
		if strings.Contains(seg, ";") {
			return nil, false
		}
		k, v, found := strings.Cut(seg, "=")
		name, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if !found || err1 != nil || err2 != nil || name == "" || value == "" {
			return nil, false
		}
		lname := strings.ToLower(name)
		if _, dup := opts[lname]; dup || !fuzzCacheOptions[lname] {
			return nil, false
		}
		opts[lname] = value
	}
	return opts, true
}

// oracleSize reads a max_value_size: digits, at most one space, a unit.
func oracleSize(v string) (int64, bool) {
	i := 0
	for i < len(v) && '0' <= v[i] && v[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:i], 10, 64)
	unit := strings.TrimPrefix(v[i:], " ")
	if err != nil || (unit == "" && v[i:] != "") {
		return 0, false
	}
	mult, ok := map[string]int64{"": 1, "b": 1, "kb": 1e3, "kib": 1 << 10, "mb": 1e6, "mib": 1 << 20,
		"gb": 1e9, "gib": 1 << 30, "tb": 1e12, "tib": 1 << 40}[strings.ToLower(unit)]
	if !ok || n > math.MaxInt64/mult {
		return 0, false
	}
	return n * mult, true
}

// oracleSettings is what a cache opened with opts must hold; ok is false
// when some value cannot be honoured as written (Open may then refuse it).
func oracleSettings(opts map[string]string) (want cache.Observed, ok bool) {
	want = cache.Observed{MaxEntries: cache.DefaultMaxEntries, DefaultTTL: cache.DefaultTimeout, Version: cache.DefaultVersion,
		MaxValueSize: cache.DefaultMaxValueSize, FillTimeout: cache.DefaultFillTimeout}
	ok = true
	atoi := func(v string) int {
		n, err := strconv.Atoi(v)
		ok = ok && err == nil
		return n
	}
	freq := cache.DefaultCullFrequency
	for name, v := range opts {
		switch name {
		case "location":
			if t := strings.Trim(v, "/"); t != "" {
				want.Location = t + "/"
			}
		case "max_entries":
			want.MaxEntries = atoi(v)
		case "cull_frequency":
			freq = atoi(v)
		case "cull_policy":
			ok = ok && (strings.EqualFold(v, "frequency") || strings.EqualFold(v, "oldest"))
		case "timeout":
			if strings.EqualFold(v, "none") {
				want.DefaultTTL = cache.NoExpiry
			} else if secs, err := strconv.ParseFloat(v, 64); err == nil {
				want.DefaultTTL = time.Duration(math.Round(secs * 1e9))
			} else {
				d, err := time.ParseDuration(v)
				ok = ok && err == nil
				want.DefaultTTL = d
			}
		case "key_prefix":
			want.KeyPrefix = v
		case "version":
			want.Version = atoi(v)
		case "is_gzipped":
			b, err := strconv.ParseBool(v)
			ok = ok && err == nil
			want.Gzip = b
		case "max_value_size":
			n, good := oracleSize(v)
			ok = ok && good
			want.MaxValueSize = n
		case "signing_key":
			want.SigningKeys = len(strings.Split(v, ","))
		case "fill_timeout":
			d, err := time.ParseDuration(v)
			ok = ok && err == nil && d > 0
			want.FillTimeout = d
		case "fill_lease":
			d, err := time.ParseDuration(v)
			ok = ok && err == nil && (d == 0 || d >= 100*time.Millisecond)
			want.FillLease = d
		case "stale_grace":
			d, err := time.ParseDuration(v)
			ok = ok && err == nil && d >= 0
			want.StaleGrace = d
		case "local_tier":
			n, good := oracleSize(v)
			ok = ok && good && n > 0
			want.LocalBytes = n
		case "local_staleness":
			d, err := time.ParseDuration(v)
			ok = ok && err == nil && d > 0
			want.LocalStaleness = d
		}
	}
	switch {
	case want.LocalStaleness > 0 && want.LocalBytes == 0:
		ok = false // a staleness bound without a tier
	case want.LocalBytes > 0 && want.LocalStaleness == 0:
		want.LocalStaleness = time.Second
	}
	want.Policy = fmt.Sprintf("frequency(%d)", freq)
	if strings.EqualFold(opts["cull_policy"], "oldest") {
		want.Policy = fmt.Sprintf("oldest(%d)", freq)
	}
	return want, ok
}

// FuzzOpenURLOptions: a mem:// or file:// URL with a fuzzed query either
// fails to open with an error wrapping ErrInvalidOption (and, for file://,
// without making the directory), or opens a cache whose settings are exactly
// what the query spells, every option the oracle reads present and nothing
// else, as Observe and String show them.
func FuzzOpenURLOptions(f *testing.F) {
	f.Fuzz(func(t *testing.T, query string, onFile bool) {
		base, dir := "mem://", ""
		if onFile {
			dir = filepath.Join(t.TempDir(), "c")
			base = (&url.URL{Scheme: "file", Path: dir}).String()
		}
		raw := base + "?" + query
		opts, wellFormed := oracleQuery(query)
		c, err := cache.Open(context.Background(), raw)
		if err != nil {
			if !errors.Is(err, cache.ErrInvalidOption) {
				t.Fatalf("Open(%q): %v does not wrap ErrInvalidOption", raw, err)
			}
			if v := opts["signing_key"]; len(v) >= 6 && strings.Contains(err.Error(), v) {
				t.Fatalf("Open(%q): the error shows the signing key: %v", raw, err)
			}
			if dir != "" && !strings.Contains(err.Error(), "cannot keep it") {
				if _, serr := os.Stat(dir); !errors.Is(serr, fs.ErrNotExist) {
					t.Fatalf("Open(%q) failed (%v) but made the directory", raw, err)
				}
			}
			if wellFormed {
				// A well-formed query fails only for a value, which the
				// error names.
				named := false
				for name := range opts {
					named = named || strings.Contains(err.Error(), name)
				}
				if !named {
					t.Fatalf("Open(%q): %v names none of the options %v", raw, err, opts)
				}
			}
			return
		}
		defer c.Close()
		if !wellFormed {
			t.Fatalf("Open(%q) succeeded, but the query is malformed, repeats an option or names an unknown one", raw)
		}
		want, honourable := oracleSettings(opts)
		if !honourable {
			t.Fatalf("Open(%q) succeeded with a value the oracle cannot read: %+v", raw, cache.Observe(c))
		}
		if got := cache.Observe(c); got != want {
			t.Fatalf("Open(%q):\n got %+v\nwant %+v", raw, got, want)
		}
		// String shows exactly the non-secret options given, with their values.
		desc := strings.TrimSuffix(strings.TrimPrefix(c.String(), "cache("), ")")
		du, err := url.Parse(desc)
		if err != nil {
			t.Fatalf("Open(%q): String %q does not hold a URL: %v", raw, c.String(), err)
		}
		shown := map[string]string{}
		for k, vs := range du.Query() {
			shown[k] = strings.Join(vs, ",")
		}
		wantShown := maps.Clone(opts)
		delete(wantShown, "signing_key")
		if !maps.Equal(shown, wantShown) {
			t.Fatalf("Open(%q): String %q shows %v, want %v", raw, c.String(), shown, wantShown)
		}
		if v := opts["signing_key"]; v != "" && len(v) >= 6 && strings.Contains(c.String(), v) {
			t.Fatalf("Open(%q): String shows the signing key: %s", raw, c.String())
		}
	})
}
