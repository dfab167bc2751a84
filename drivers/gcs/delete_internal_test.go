package gcs

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBatchHostileAnswers checks that a batch response that is no answer
// of GCS fails the names it does not answer, bounded, never a panic.
func TestBatchHostileAnswers(t *testing.T) {
	names := []string{"a", "b", "c"}
	cases := []struct {
		name        string
		contentType string
		body        string
		status      int
		wantErr     bool     // the request fails as a whole
		wantFailed  []string // names reported failed
	}{
		{name: "not multipart", contentType: "text/plain", body: "hello", status: 200, wantErr: true},
		{name: "server error", contentType: "text/plain", body: "boom", status: 503, wantErr: true},
		{name: "no parts", contentType: "multipart/mixed; boundary=XX", body: "--XX--\r\n", status: 200, wantFailed: names},
		{name: "one answered, one refused, one garbage", contentType: "multipart/mixed; boundary=XX", status: 200,
			body: "--XX\r\nContent-Type: application/http\r\nContent-ID: <response-0>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n" +
				"\r\n--XX\r\nContent-Type: application/http\r\nContent-ID: <response-1>\r\n\r\nHTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\nnope!!" +
				"\r\n--XX\r\nContent-Type: application/http\r\nContent-ID: <response-2>\r\n\r\nnot http at all" +
				"\r\n--XX\r\nContent-ID: <response-99>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n" +
				"\r\n--XX--\r\n",
			wantFailed: []string{"b", "c"}},
		{name: "truncated", contentType: "multipart/mixed; boundary=XX", status: 200,
			body: "--XX\r\nContent-Type: application/http\r\nContent-ID: <response-0>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", wantErr: true},
		{name: "huge", contentType: "multipart/mixed; boundary=XX", status: 200,
			body: "--XX\r\nContent-ID: <response-0>\r\n\r\n" + strings.Repeat("x", maxBatchResponse+10), wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/mixed; boundary=") {
					t.Errorf("request Content-Type %q", r.Header.Get("Content-Type"))
				}
				w.Header().Set("Content-Type", tc.contentType)
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			b := &batcher{url: srv.URL + "/batch/storage/v1", path: "/storage/v1/b/x/o/", client: srv.Client()}
			failed := map[string]error{}
			err := b.deleteChunk(t.Context(), names, failed)
			if (err != nil) != tc.wantErr {
				t.Fatalf("deleteChunk error = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if len(failed) != len(tc.wantFailed) {
				t.Errorf("failed = %v, want %v", failed, tc.wantFailed)
			}
			for _, n := range tc.wantFailed {
				if failed[n] == nil {
					t.Errorf("%q not reported failed (failed = %v)", n, failed)
				}
			}
		})
	}
}

// TestPartIndex checks the Content-ID parsing of answers.
func TestPartIndex(t *testing.T) {
	for id, want := range map[string]int{"<response-0>": 0, "<response-7>": 7, "<3>": 3} {
		if got, ok := partIndex(id, 10); !ok || got != want {
			t.Errorf("partIndex(%q) = %d, %v; want %d", id, got, ok, want)
		}
	}
	for _, id := range []string{"", "<response-10>", "<response--1>", "<response-01>", "<response-x>", "<response-+1>"} {
		if _, ok := partIndex(id, 10); ok {
			t.Errorf("partIndex(%q) accepted", id)
		}
	}
}
