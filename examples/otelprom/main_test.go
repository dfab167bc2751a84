package main

import (
	"context"
	"io"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The exporter serves the cache's counters: scrape it after known calls and
// find exactly those hits and misses.
func TestScrapeFindsHitsAndMisses(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	c, err := openInstrumented(ctx, "mem://", reg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c.Get(ctx, "k") // hit
	}
	c.Get(ctx, "absent") // miss
	c.Get(ctx, "absent") // miss

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for name, want := range map[string]float64{"blobcache_hits_total": 3, "blobcache_misses_total": 2} {
		m := regexp.MustCompile(`(?m)^` + name + `\{[^}]*\} (\S+)$`).FindSubmatch(body)
		if m == nil {
			t.Errorf("%s not in the scrape:\n%s", name, body)
			continue
		}
		if got, _ := strconv.ParseFloat(string(m[1]), 64); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if !regexp.MustCompile(`blobcache_operation_duration_seconds_count\{[^}]*blobcache_op="get"`).Match(body) {
		t.Errorf("no duration histogram for get in the scrape")
	}
}
