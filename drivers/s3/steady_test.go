package s3_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/drivers/s3"
	"github.com/blobcache/blobcache/internal/s3test"
)

// steadyResult is what one writer process reports.
type steadyResult struct {
	Sets  int `json:"sets"`
	Lists int `json:"lists"`
}

// steadyWriter does sets Sets of random keys from a keyspace of 3,000 into
// bucket, with max_entries 300 and cull_frequency 3, counting requests.
func steadyWriter(t *testing.T, cfg s3test.Config, bucket string, sets int, seed uint64) steadyResult {
	ct := s3test.NewCountingTransport(nil)
	d, err := s3.Open(t.Context(), bucket, s3.Options{Endpoint: cfg.Endpoint, Region: cfg.Region, UsePathStyle: true,
		AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey, HTTPClient: &http.Client{Transport: ct}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(d, cache.WithLocation("steady"), cache.WithMaxEntries(300), cache.WithCullFrequency(3))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(seed, seed))
	for range sets {
		if err := c.Set(t.Context(), fmt.Sprint("key-", rng.IntN(3000)), []byte("v"), cache.NoExpiry); err != nil {
			t.Fatal(err)
		}
	}
	return steadyResult{Sets: sets, Lists: ct.Count(s3test.ListObjectsV2)}
}

const envSteadyChild = "BLOBCACHE_STEADY_CHILD" // bucket,sets,seed

// TestSteadyStateListing is the steady-state run on MinIO: 10,000 Sets
// of random keys from a keyspace of 3,000 (max_entries 300, cull_frequency 3)
// by one process, and by 4 OS processes sharing the location, while the
// entry count is sampled.
func TestSteadyStateListing(t *testing.T) {
	t.Parallel() // with the conformance runs: see TestConformance
	cfg := s3test.Env(t)
	if v := os.Getenv(envSteadyChild); v != "" {
		var bucket string
		var sets int
		var seed uint64
		fmt.Sscanf(v, "%s %d %d", &bucket, &sets, &seed)
		out, _ := json.Marshal(steadyWriter(t, cfg, bucket, sets, seed))
		fmt.Printf("STEADY %s\n", out)
		return
	}
	if testing.Short() {
		t.Skip("steady-state run skipped in -short mode")
	}
	for _, procs := range []int{1, 4} {
		t.Run(fmt.Sprint("processes=", procs), func(t *testing.T) {
			bucket := s3test.NewBucket(t, cfg)
			d, err := s3.Open(t.Context(), bucket, s3.Options{Endpoint: cfg.Endpoint, Region: cfg.Region, UsePathStyle: true,
				AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey})
			if err != nil {
				t.Fatal(err)
			}
			probe, err := cache.New(d, cache.WithLocation("steady"), cache.WithMaxEntries(0))
			if err != nil {
				t.Fatal(err)
			}
			const total = 10_000
			stop := make(chan struct{})
			var maxSeen, samples int
			var wg sync.WaitGroup
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
					if n, err := probe.Len(t.Context()); err == nil {
						samples++
						maxSeen = max(maxSeen, n)
					}
				}
			})
			var results []steadyResult
			var mu sync.Mutex
			var children sync.WaitGroup
			for p := range procs {
				children.Go(func() {
					cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSteadyStateListing$", "-test.count=1")
					cmd.Env = append(os.Environ(), envSteadyChild+"="+fmt.Sprintf("%s %d %d", bucket, total/procs, p+1))
					out, err := cmd.CombinedOutput()
					if err != nil {
						t.Errorf("writer %d: %v\n%s", p, err, out)
						return
					}
					var r steadyResult
					for _, line := range splitLines(out) {
						if len(line) > 7 && line[:7] == "STEADY " {
							json.Unmarshal([]byte(line[7:]), &r)
						}
					}
					mu.Lock()
					results = append(results, r)
					mu.Unlock()
				})
			}
			children.Wait()
			close(stop)
			wg.Wait()
			n, err := probe.Len(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			maxSeen = max(maxSeen, n)
			var sets, lists int
			for _, r := range results {
				sets += r.Sets
				lists += r.Lists
			}
			if sets != total {
				t.Fatalf("writers reported %d sets, want %d", sets, total)
			}
			perSet := float64(lists) / float64(sets)
			t.Logf("%d process(es): %d LIST requests for %d Sets = %.4f per Set; max entries observed %d (%d samples), final %d",
				procs, lists, sets, perSet, maxSeen, samples, n)
			limit, bound := 0.02, 300
			if procs > 1 {
				limit, bound = 0.1, 375
			}
			if perSet > limit {
				t.Errorf("LISTs per Set = %.4f, want <= %v", perSet, limit)
			}
			if maxSeen > bound {
				t.Errorf("max entries observed %d, want <= %d", maxSeen, bound)
			}
		})
	}
}

func splitLines(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == '\n' {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	return append(out, string(b[start:]))
}
