package azure_test

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/azure"
)

const testKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

func TestParseURL(t *testing.T) {
	key := url.QueryEscape(testKey)
	for _, tc := range []struct {
		url       string
		container string
		want      azure.Options
	}{
		{"azblob://cache?account=myaccount&key=" + key, "cache", azure.Options{Account: "myaccount", Key: testKey}},
		{"azblob://my-cache?endpoint=http://127.0.0.1:10000/devstoreaccount1&storage_account=devstoreaccount1&account_key=" + key,
			"my-cache", azure.Options{ServiceURL: "http://127.0.0.1:10000/devstoreaccount1", Account: "devstoreaccount1", Key: testKey}},
		{"azblob://cache?PROTOCOL=http&Domain=127.0.0.1:10000&account_name=devstoreaccount1&create_container=true",
			"cache", azure.Options{Protocol: "http", Domain: "127.0.0.1:10000", Account: "devstoreaccount1", CreateContainer: true}},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		c, opts, err := azure.ParseURL(u)
		if err != nil || c != tc.container || opts.String() != tc.want.String() || opts.Key != tc.want.Key {
			t.Errorf("ParseURL(%q) = %q, %v, %v; want %q, %v", tc.url, c, opts, err, tc.container, tc.want)
		}
	}
}

func TestParseURLRefuses(t *testing.T) {
	for _, raw := range []string{
		"azblob://cache?acount=x",                               // unknown
		"azblob://cache?key=" + url.QueryEscape(testKey),        // key without account
		"azblob://cache?account=a&key=not-base64!",              // bad key
		"azblob://cache?account=UPPER",                          // bad account
		"azblob://cache?account=ab",                             // short account
		"azblob://cache?protocol=ftp&account=abc",               // bad protocol
		"azblob://cache?domain=evil.com/x&account=abc",          // domain with a path
		"azblob://cache?domain=a@b&account=abc",                 // domain with user
		"azblob://cache?endpoint=ftp://x&account=abc",           // endpoint scheme
		"azblob://cache?endpoint=http://u:p@x/&account=abc",     // endpoint user
		"azblob://cache?endpoint=http://x/?sv=1&account=abc",    // endpoint query (SAS)
		"azblob://cache?endpoint=http://x&domain=y&account=abc", // conflict
		"azblob://cache?endpoint=http://x&protocol=http",        // conflict
		"azblob://cache?account=abc&account_name=abc",           // twice
		"azblob://cache?account=abc&account=abc",                // twice
		"azblob://cache?create_container=yes",                   // bad bool
		"azblob://cache?account=abc;key=x",                      // ';'
		"azblob://Cache?account=abc",                            // container upper case
		"azblob://c?account=abc",                                // container too short
		"azblob://a--b?account=abc",                             // "--"
		"azblob://cache/path?account=abc",                       // path
		"azblob://cache:80?account=abc",                         // port
		"azblob://cache?account=abc#frag",                       // fragment
		"azblob://user@cache?account=abc",                       // user
		"s3://cache?account=abc",                                // scheme
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = azure.ParseURL(u)
		if !errors.Is(err, driver.ErrInvalidOption) {
			t.Errorf("ParseURL(%q) = %v, want ErrInvalidOption", raw, err)
		}
	}
	u, _ := url.Parse("azblob://cache?acount=x")
	_, _, err := azure.ParseURL(u)
	var unknown *driver.UnknownOptionError
	if !errors.As(err, &unknown) || !strings.Contains(err.Error(), `"account"`) {
		t.Errorf("unknown option: %v, want an UnknownOptionError suggesting account", err)
	}
}

// TestKeyNeverShown: no error, String, Format or description shows the key.
func TestKeyNeverShown(t *testing.T) {
	const secret = "c2VjcmV0c2VjcmV0c2VjcmV0" // base64 of secretsecretsecret
	opts := azure.Options{Account: "abc", Key: secret}
	for _, s := range []string{opts.String(), fmt.Sprint(opts), fmt.Sprintf("%+v %#v %q %s", opts, opts, opts, opts)} {
		if strings.Contains(s, secret) {
			t.Errorf("options show the key: %s", s)
		}
	}
	for _, raw := range []string{
		"azblob://cache?key=" + secret,
		"azblob://cache?account=abc&key=" + secret + "&bogus=1",
		"azblob://cache?account=abc&key=" + secret + "x!",
		"azblob://cache?account=ABC&key=" + secret,
		"azblob://cache?account=abc&key=" + secret + "&account=abc",
	} {
		u, _ := url.Parse(raw)
		_, _, err := azure.ParseURL(u)
		if err == nil || strings.Contains(err.Error(), "c2VjcmV0") {
			t.Errorf("ParseURL(%q) = %v: want an error without the key", raw, err)
		}
	}
	s, ok := driver.Lookup("azblob")
	if !ok || s.Describe == nil {
		t.Fatal("azblob is not registered with a Describe")
	}
	u, _ := url.Parse("azblob://cache?endpoint=http://127.0.0.1:10000/devstoreaccount1&account=devstoreaccount1&key=" + secret)
	if d := s.Describe(u); strings.Contains(d, secret) || d != "azblob://cache?endpoint=http://127.0.0.1:10000/devstoreaccount1&account=devstoreaccount1" {
		t.Errorf("Describe = %q", d)
	}
	if !strings.Contains(strings.Join(s.Secrets, ","), "key") {
		t.Errorf("Secrets = %v, want key", s.Secrets)
	}
}

func TestRegisteredValidateName(t *testing.T) {
	s, _ := driver.Lookup("azblob")
	for _, n := range []string{"a../b", "x__0x41__", "x__0x5c__"} {
		if err := s.ValidateName(n); !errors.Is(err, driver.ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", n, err)
		}
	}
	for _, n := range []string{"a%b", "a#b", "a?b", `a\b`, `a"b`, "cache/0123abcd"} {
		if err := s.ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", n, err)
		}
	}
}
