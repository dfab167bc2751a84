package s3_test

// FuzzParseURL checks s3:// URL parsing, which needs no server:
//
//	go test -run='^$' -fuzz='^FuzzParseURL$' -fuzztime=60s ./drivers/s3/

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/blobcache/blobcache/drivers/s3"
)

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"s3://bucket",
		"s3://bucket?endpoint=http://127.0.0.1:9000&region=us-east-1&use_path_style=true&access_key=AK&secret_key=verysecretvalue",
		"s3://bucket?secret_access_key=secretalias&access_key_id=AK&SECRET_KEY=canonicalsecret&access_key=AK2",
		"s3://?bucket_name=b&storage_bucket_name=c",
		"s3://a?bucket_name=b",
		"s3://b?anonymous=yes&create_bucket=1&reduced_redundancy=T&accelerate=false&dualstack=0&fips=FALSE",
		"s3://b?sse=aws:kms&ssetype=AES256&kms_key_id=k",
		"s3://b?region=eu-west-1&region=us-east-1",
		"s3://b?x=1",
		"s3://b/path",
		"s3://u:p@b",
		"gs://b",
		"s3://b?%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		var secrets []string
		if q, err := url.ParseQuery(u.RawQuery); err == nil {
			for k, vs := range q {
				if lk := strings.ToLower(k); lk == "secret_key" || lk == "secret_access_key" {
					for _, v := range vs {
						if len(v) >= 6 && strings.Count(raw, v) == 1 {
							secrets = append(secrets, v)
						}
					}
				}
			}
		}
		bucket, opts, err := s3.ParseURL(u)
		if err != nil {
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("ParseURL(%q): the error shows the secret %q: %v", raw, s, err)
				}
			}
			if bucket != "" {
				t.Fatalf("ParseURL(%q) returned a bucket and an error", raw)
			}
			return
		}
		if bucket == "" {
			t.Fatalf("ParseURL(%q) returned no bucket and no error", raw)
		}
		if u.Host != "" && bucket != u.Host {
			t.Fatalf("ParseURL(%q): bucket %q, but the host is %q", raw, bucket, u.Host)
		}
		shown := fmt.Sprintf("%v|%+v|%#v|%s|%q|%v", opts, opts, opts, opts, opts, []any{opts, &opts})
		for _, s := range secrets {
			if strings.Contains(shown, s) {
				t.Fatalf("ParseURL(%q): the options show the secret %q: %s", raw, s, shown)
			}
		}
	})
}
