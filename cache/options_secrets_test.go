package cache_test

// A Config never shows a secret, whatever the shape its decoder gave the
// nested options and however it is printed; nor do errors about it.

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/drivers/s3"
)

const shownSecret = "SECRET-4711-VALUE"

// secretShown reports whether s holds the secret, as text or in hex.
func secretShown(s string) bool {
	return strings.Contains(s, shownSecret) ||
		strings.Contains(strings.ToLower(s), hex.EncodeToString([]byte(shownSecret))) ||
		strings.Contains(s, "4711")
}

// renderings prints v every way a program might.
func renderings(v any) map[string]string {
	out := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		out[verb] = fmt.Sprintf(verb, v)
	}
	out["Sprint"] = fmt.Sprint(v)
	out["Sprintln"] = fmt.Sprintln(v)
	out["Errorf %v"] = fmt.Errorf("bad config %v", v).Error()
	out["Errorf %w"] = fmt.Errorf("wrapped: %w", errors.New(fmt.Sprint(v))).Error()
	out["slice"] = fmt.Sprintf("%v %+v %#v", []any{v}, []any{v}, []any{v})
	out["struct"] = fmt.Sprintf("%v %+v %#v", struct{ C any }{v}, struct{ C any }{v}, struct{ C any }{v})
	// The time is left out: a timestamp's digits can hold "4711".
	noTime := &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, noTime) },
		"slog json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, noTime) },
	} {
		var b bytes.Buffer
		slog.New(h(&b)).Info("config", "cfg", v, slog.Any("any", v), slog.Group("g", "cfg", v))
		out[name] = b.String()
	}
	return out
}

func TestConfigNeverShowsSecrets(t *testing.T) {
	type creds struct {
		Region    string
		SecretKey string
	}
	nested := []cache.Config{
		{"backend": "s3", "options": map[string]any{"secret_key": shownSecret}},
		{"backend": "s3", "options": map[any]any{"SECRET_ACCESS_KEY": shownSecret}},
		{"backend": "s3", "options": map[string]string{"Secret_Key": shownSecret}},
		{"backend": "s3", "options": []any{map[string]any{"secret_key": shownSecret}}},
		{"backend": "s3", "options": []any{map[any]any{"secret_key": shownSecret}}},
		{"backend": "s3", "options": cache.Config{"signing_key": shownSecret}},
		{"backend": "s3", "options": &map[string]any{"secret_key": shownSecret}},
		{"backend": "s3", "options": map[string]any{"nested": map[any]any{"secret_key": shownSecret}}},
		{"backend": "s3", "options": map[string]any{"list": []any{map[any]any{"SIGNING_KEY": shownSecret}}}},
		{"backend": "s3", "options": map[string]any{"secret_key": []byte(shownSecret)}},
		{"backend": "s3", "options": map[string]any{"secret_key": []any{shownSecret}}},
		{"backend": "s3", "options": map[string]any{"creds": creds{"eu", shownSecret}}},
		{"backend": "s3", "options": map[string]any{"creds": &creds{"eu", shownSecret}}},
		{"backend": "s3", "options": map[string]any{"s3": s3.Options{AccessKey: "AK", SecretKey: shownSecret}}},
		{"backend": "s3", "options": map[string]any{"AWS_SECRET_ACCESS_KEY": shownSecret}},
		{"backend": "s3", "options": map[string]any{"password": shownSecret}},
		{"SECRET_KEY": shownSecret},
		{"url": "s3://b?access_key=AK&secret_key=" + shownSecret + "&location=x"},
		{"url": "s3://b?secret_access_key=" + shownSecret},
		{"url": "s3://AK:" + shownSecret + "@b"},
		{"url": "s3://b?signing_key=ab&" + shownSecret + "=x"}, // a secret's unescaped '&'
		{"url": "s3://b?secret_key=%zz" + shownSecret},
	}
	for _, cfg := range nested {
		for how, s := range renderings(cfg) {
			if secretShown(s) {
				t.Errorf("%s of %T shows the secret: %s", how, cfg["options"], s)
			}
		}
		for how, s := range renderings(cache.Configs{"default": cfg}) {
			if secretShown(s) {
				t.Errorf("%s of Configs shows the secret: %s", how, s)
			}
		}
		for how, s := range renderings(&cfg) {
			if how != "%T" && secretShown(s) {
				t.Errorf("%s of *Config shows the secret: %s", how, s)
			}
		}
	}
	// What is not secret still shows.
	cfg := cache.Config{"backend": "s3", "options": map[any]any{"bucket_name": "my-bucket", "secret_key": shownSecret}}
	if s := cfg.String(); !strings.Contains(s, "my-bucket") || !strings.Contains(s, "REDACTED") {
		t.Errorf("String() = %s, want the bucket shown and the secret redacted", s)
	}
}

// No error about a Config or a URL quotes a secret's value, whatever is
// wrong.
func TestOptionErrorsNeverShowSecrets(t *testing.T) {
	ctx := relCancelled // nothing here may reach a server
	for _, raw := range []string{
		"s3://b?secret_key=" + shownSecret,                       // half the credentials
		"s3://b?access_key=AK&secret_key=" + shownSecret + "%20", // a space in the secret
		"s3://b?access_key=AK&secret_key=" + shownSecret + "&secret_key=" + shownSecret,
		"s3://b?access_key=AK&secret_key=" + shownSecret + "&SECRET_ACCESS_KEY=" + shownSecret,
		"s3://b?access_key=AK&secret_key=" + shownSecret + "&anonymous=true",
		"s3://b?access_key=AK&secret_key=" + shownSecret + "&profile=p",
		"s3://b?access_key=AK&secret_key=" + shownSecret + "&endpoint=http://AK:" + shownSecret + "@h",
		"s3://b?access_key=AK&secret_key=" + shownSecret + ";x=1",
		"s3://b?access_key=AK&secret_key=" + shownSecret + "#x",
		"s3://b?signing_key=" + shownSecret + ",,x",
		"mem://?signing_key=" + shownSecret + "&signing_key=" + shownSecret,
		"mem://a b?secret_key=" + shownSecret,
		"%zz://b?secret_key=" + shownSecret,
		"s3://b%zz?secret_key=" + shownSecret,
		"gs://b?secret_key=" + shownSecret,
	} {
		_, err := cache.Open(ctx, raw)
		if err == nil {
			t.Errorf("Open(%s) succeeded", raw)
			continue
		}
		if secretShown(err.Error()) || secretShown(fmt.Sprintf("%+v %#v", err, err)) {
			t.Errorf("Open(%s): the error shows the secret: %v", raw, err)
		}
	}
	// The file driver reports a fragment by quoting it; a secret holding an
	// unescaped '#' put its tail there. (A live context: file:// reaches no
	// network, and the directory is never made.)
	dir := t.TempDir() + "/c"
	for _, raw := range []string{
		"file://" + dir + "?signing_key=abc#" + shownSecret,
		"file://" + dir + "?location=x#" + shownSecret,
	} {
		_, err := cache.Open(t.Context(), raw)
		if err == nil || secretShown(err.Error()) {
			t.Errorf("Open(%s): %v, want an error that does not show the fragment", raw, err)
		}
	}
	for _, cfg := range []cache.Config{
		{"backend": "s3", "options": map[any]any{"bucket_name": "b", "secret_key": shownSecret, 3: "x"}},
		{"backend": "s3", "options": map[string]any{"bucket_name": "b", "secret_key": []any{shownSecret}}},
		{"backend": "s3", "options": map[string]any{"bucket_name": "b", "secret_key": map[string]any{"v": shownSecret}}},
		{"backend": "s3", "options": map[string]any{"bucket_name": "b", "secret_key": shownSecret, "SECRET_KEY": shownSecret}},
		{"backend": "s3", "secret_key": shownSecret, "options": map[string]any{"bucket_name": "b", "secret_access_key": shownSecret}},
		{"url": "s3://b?secret_key=" + shownSecret + ";x"},
		{"url": "s3://b?secret_key=" + shownSecret, "options": map[string]any{"secret_key": shownSecret}},
	} {
		_, err := cfg.URL()
		if err == nil {
			_, err = cache.OpenConfig(ctx, cfg)
		}
		if err == nil {
			t.Errorf("%v: no error", cfg)
			continue
		}
		if secretShown(err.Error()) {
			t.Errorf("%v: the error shows the secret: %v", cfg, err)
		}
	}
}
