package main

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"
)

func TestQuickstartRunsOnADirectory(t *testing.T) {
	u := url.URL{Scheme: "file", Path: t.TempDir()}
	var out bytes.Buffer
	if err := run(context.Background(), u.String(), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`greeting = "hello, blobcache"`,
		"stored? false",
		"visits = 4",
		"miss? true",
		// 2 entries stand (greeting, visits; flash expired and was
		// deleted on read); the 25 sets cull 10 -> 6 at items 8, 12, 16,
		// 20 and 24, leaving 7.
		"max_entries=10: 7 entries",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
