package cache_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
)

// checkSettings proves what the options did through behaviour: the object
// name (location, key_prefix, version), gzip framing, and culling.
func checkSettings(t *testing.T, c *cache.Cache) {
	t.Helper()
	ctx := context.Background()
	// sha1("p:3:key")
	if got, want := c.ObjectName("key"), "loc/"+sha1Hex("p:3:key"); got != want {
		t.Errorf("ObjectName = %q, want %q (location loc, key_prefix p, version 3)", got, want)
	}
	must(t, c.Set(ctx, "key", []byte("value"), cache.DefaultTTL))
	raw, _, err := c.Driver().Read(ctx, c.ObjectName("key"), 0, -1)
	must(t, err)
	if len(raw) < 2 || raw[0] != 0x1f || raw[1] != 0x8b {
		t.Errorf("is_gzipped: entry starts %x, want a gzip stream", raw[:min(4, len(raw))])
	}
	// max_entries 5, cull_frequency 0: the 6th entry's write empties the cache first.
	for i := range 5 {
		must(t, c.Set(ctx, fmt.Sprint("k", i), []byte("v"), cache.DefaultTTL))
	}
	n, err := c.Len(ctx)
	must(t, err)
	if n != 1 {
		t.Errorf("Len = %d after 6 sets with max_entries 5, cull_frequency 0; want 1", n)
	}
}

func TestURLOptionsAnyCase(t *testing.T) {
	ctx := context.Background()
	for _, q := range []string{
		"location=loc&max_entries=5&cull_frequency=0&timeout=60&key_prefix=p&version=3&is_gzipped=true",
		"LOCATION=loc&MAX_ENTRIES=5&CULL_FREQUENCY=0&TIMEOUT=60&KEY_PREFIX=p&VERSION=3&IS_GZIPPED=true",
		"Location=loc&Max_Entries=5&cull_FREQUENCY=0&Timeout=1m&Key_Prefix=p&Version=3&Is_Gzipped=1",
	} {
		c, err := cache.Open(ctx, "mem://?"+q)
		if err != nil {
			t.Fatalf("Open(%s): %v", q, err)
		}
		checkSettings(t, c)
	}
}

func TestConfigDjangoShape(t *testing.T) {
	ctx := context.Background()
	// A CACHES setting as JSON, Django's upper-case names.
	const settings = `{
	  "default": {
	    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
	    "LOCATION": "config-test",
	    "TIMEOUT": 60,
	    "KEY_PREFIX": "p",
	    "VERSION": 3,
	    "OPTIONS": {"MAX_ENTRIES": 5, "CULL_FREQUENCY": 0, "IS_GZIPPED": true, "location": "loc"}
	  },
	  "lower": {
	    "backend": "mem", "location": "config-test-2", "timeout": null, "key_prefix": "p", "version": 3,
	    "options": {"max_entries": "5", "cull_frequency": "0", "is_gzipped": "true", "LOCATION": "loc"}
	  }
	}`
	var cs cache.Configs
	must(t, json.Unmarshal([]byte(settings), &cs))
	for _, name := range []string{"default", "lower"} {
		c, err := cs.Open(ctx, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkSettings(t, c)
	}
	if _, err := cs.Open(ctx, "absent"); !errors.Is(err, cache.ErrInvalidOption) {
		t.Errorf("Open of a missing name: %v", err)
	}
	// A directory through the filebased backend: LOCATION is the directory.
	dir := t.TempDir()
	c, err := cache.OpenConfig(ctx, cache.Config{"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": dir})
	must(t, err)
	must(t, c.Set(ctx, "k", []byte("v"), cache.DefaultTTL))
	if v, err := c.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("file config: %q %v", v, err)
	}
}

// A CACHES entry for django-s3-cache, converted: the URL it makes.
func TestConfigDjangoS3CacheToURL(t *testing.T) {
	cfg := cache.Config{
		"BACKEND":  "s3cache.AmazonS3Cache",
		"LOCATION": "cache",
		"TIMEOUT":  600,
		"OPTIONS": map[string]any{
			"ACCESS_KEY_ID":       "AKIAEXAMPLE", // legacy names
			"SECRET_ACCESS_KEY":   "s3cr3t/value",
			"STORAGE_BUCKET_NAME": "my-bucket",
			"DEFAULT_ACL":         "private",
			"REDUCED_REDUNDANCY":  true,
			"IS_GZIPPED":          true,
			"MAX_ENTRIES":         1000,
			"CULL_FREQUENCY":      4,
		},
	}
	got, err := cfg.URL()
	must(t, err)
	u, err := url.Parse(got)
	must(t, err)
	if u.Scheme != "s3" || u.Host != "my-bucket" {
		t.Errorf("URL %s: want s3://my-bucket", got)
	}
	q := u.Query()
	for k, want := range map[string]string{"location": "cache", "TIMEOUT": "600", "ACCESS_KEY_ID": "AKIAEXAMPLE",
		"SECRET_ACCESS_KEY": "s3cr3t/value", "REDUCED_REDUNDANCY": "true", "MAX_ENTRIES": "1000", "CULL_FREQUENCY": "4"} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q (URL %s)", k, q.Get(k), want, got)
		}
	}
	if q.Has("STORAGE_BUCKET_NAME") {
		t.Errorf("bucket name left in the query: %s", got)
	}
}

func TestUnknownOptionMessages(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ url, want string }{
		{"mem://?max_entires=5", `invalid option: unknown option "max_entires" (did you mean "max_entries"?)`},
		{"mem://?colour=blue", `invalid option: unknown option "colour"`},
		{"file:///tmp/x?CULL_FREQUENCEY=2", `invalid option: unknown option "CULL_FREQUENCEY" (did you mean "cull_frequency"?)`},
		{"s3://b?acess_key=x", `invalid option: unknown option "acess_key" (did you mean "access_key"?)`},
		{"s3://b?timout=5", `invalid option: unknown option "timout" (did you mean "timeout"?)`},
	} {
		_, err := cache.Open(ctx, tc.url)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Open(%s):\n got %v\nwant %s", tc.url, err, tc.want)
		}
		var unknown *driver.UnknownOptionError
		if !errors.Is(err, cache.ErrInvalidOption) || !errors.As(err, &unknown) {
			t.Errorf("Open(%s): error kinds not testable: %v", tc.url, err)
		}
	}
	_, err := cache.OpenConfig(ctx, cache.Config{"backend": "mem", "options": map[string]any{"max_entires": 5}})
	if err == nil || !strings.Contains(err.Error(), `did you mean "max_entries"?`) {
		t.Errorf("Config unknown option: %v", err)
	}
	_, err = cache.OpenConfig(ctx, cache.Config{"backend": "mem", "TIMEOUTS": 5})
	if err == nil || !strings.Contains(err.Error(), `unknown option "TIMEOUTS" (did you mean "timeout"?)`) {
		t.Errorf("Config unknown top-level name: %v", err)
	}
}

func TestBadOptionValuesNameTheOption(t *testing.T) {
	ctx := context.Background()
	for q, name := range map[string]string{
		"max_entries=abc":             "max_entries",
		"max_entries=-1":              "max_entries",
		"cull_frequency=x":            "cull_frequency",
		"timeout=-5":                  "timeout",
		"timeout=soon":                "timeout",
		"is_gzipped=maybe":            "is_gzipped",
		"version=v2":                  "version",
		"location=a/../b":             "location",
		"cull_policy=random":          "cull_policy",
		"max_entries=1&MAX_ENTRIES=2": "max_entries",
	} {
		_, err := cache.Open(ctx, "mem://?"+q)
		if !errors.Is(err, cache.ErrInvalidOption) || !strings.Contains(err.Error(), name) {
			t.Errorf("Open(mem://?%s): %v, want ErrInvalidOption naming %s", q, err, name)
		}
	}
	for _, cfg := range []cache.Config{
		{"backend": "s3"},                   // no bucket
		{"backend": "file"},                 // no directory
		{"backend": "redis"},                // unknown backend
		{"backend": "mem", "url": "mem://"}, // both
		{"backend": "mem", "options": "max_entries=5"},
		{"backend": "mem", "max_entries": []int{1}},
		{"backend": "mem", "key_function": "myapp.keys"},
	} {
		if _, err := cache.OpenConfig(ctx, cfg); !errors.Is(err, cache.ErrInvalidOption) {
			t.Errorf("OpenConfig(%v): %v, want ErrInvalidOption", cfg, err)
		}
	}
}

// Secrets never appear in errors or fmt output of a Config or a Cache.
func TestSecretsNeverShown(t *testing.T) {
	ctx := context.Background()
	const secret = "SUPER-SECRET-VALUE-4711"
	cfg := cache.Config{"backend": "s3", "options": map[string]any{
		"bucket_name": "b", "secret_key": secret, "access_key": "AK", "endpoint": "http://127.0.0.1:1", "region": "us-east-1",
		"use_path_style": true,
	}}
	var shown []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		shown = append(shown, fmt.Sprintf(verb, cfg))
	}
	shown = append(shown, cfg.String())
	// Failures at every stage: bad option, bad value, unreachable server.
	for _, u := range []string{
		"s3://b?secret_key=" + secret + "&bogus=1",
		"s3://b?secret_key=" + secret + "&use_path_style=perhaps",
		"s3://b?secret_key=" + secret + "&endpoint=%zz",
		"s3://b?secret_key=" + secret + "&access_key=AK&endpoint=http://127.0.0.1:1&region=us-east-1&use_path_style=true",
		"s3://b?secret_key=" + secret + "&max_entries=x",
		"%zz://b?secret_key=" + secret,
	} {
		_, err := cache.Open(ctx, u)
		if err == nil {
			t.Errorf("Open(%q) succeeded", u)
			continue
		}
		shown = append(shown, err.Error(), fmt.Sprintf("%+v", err))
	}
	cfgErrCfg := cache.Config{"backend": "s3", "options": map[string]any{"bucket_name": "b", "secret_key": secret, "max_entires": 1}}
	_, err := cache.OpenConfig(ctx, cfgErrCfg)
	shown = append(shown, fmt.Sprint(err))
	c, err := cache.Open(ctx, "mem://?location=x")
	must(t, err)
	shown = append(shown, c.String(), fmt.Sprint(c))
	for _, s := range shown {
		if strings.Contains(s, secret) {
			t.Errorf("secret shown: %s", s)
		}
	}
}
