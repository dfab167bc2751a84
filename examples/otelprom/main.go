// Command otelprom serves a cache's OpenTelemetry metrics in Prometheus's
// text format: hit and miss counters, operations by result, bytes, culls and
// call durations.
//
//	go run ./examples/otelprom -addr 127.0.0.1:9464 &
//	curl -s 127.0.0.1:9464/metrics | grep blobcache_
//
// It caches in memory unless -url (or BLOBCACHE_URL) names another store, and
// makes a few calls every second so the counters move.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/blobcache/blobcache/cache"
	_ "github.com/blobcache/blobcache/drivers/all" // the URL may name any built-in driver
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9464", "address to serve /metrics on")
	rawURL := flag.String("url", envOr("BLOBCACHE_URL", "mem://otelprom"), "cache URL")
	flag.Parse()
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	c, err := openInstrumented(ctx, *rawURL, reg)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	go func() {
		for {
			work(ctx, c, 20)
			time.Sleep(time.Second)
		}
	}()
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	fmt.Printf("serving http://%s/metrics\n", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}

// openInstrumented opens the cache with a meter provider that exports to reg.
func openInstrumented(ctx context.Context, rawURL string, reg *prometheus.Registry) (*cache.Cache, error) {
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	return cache.Open(ctx, rawURL, cache.WithMeterProvider(mp))
}

// work makes n lookups over a small keyspace, filling misses.
func work(ctx context.Context, c *cache.Cache, n int) {
	for range n {
		key := fmt.Sprint("key-", rand.IntN(10))
		if _, err := c.Get(ctx, key); err != nil {
			_ = c.Set(ctx, key, []byte("value"), time.Minute)
		}
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
