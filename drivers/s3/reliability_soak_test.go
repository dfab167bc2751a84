package s3_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/file"
	"github.com/blobcache/blobcache/drivers/s3"
	"github.com/blobcache/blobcache/internal/s3test"
)

// The soak's shape: 4 processes of 16 goroutines, sharing one store.
const (
	relSoakProcs      = 4
	relSoakGoroutines = 16
	relSoakKeys       = 600
	relSoakMax        = 300 // max_entries of the culled location
	relSoakCounters   = 4
	relSoakRound      = 100 * time.Millisecond // one Add race per round
	relSoakLocation   = "soak"
	relSoakCtl        = "soak-ctl" // counters and Add rounds: never culled
	envRelSoakChild   = "BLOBCACHE_REL_SOAK_CHILD"
)

// relSoakJob is what a child process is asked to do.
type relSoakJob struct {
	Driver   string        `json:"driver"` // "file" or "minio"
	Locator  string        `json:"locator"`
	ID       int           `json:"id"`
	Duration time.Duration `json:"duration"`
}

// relSoakResult is what a child process reports.
type relSoakResult struct {
	ID        int            `json:"id"`
	Ops       int            `json:"ops"`
	Reads     int            `json:"reads"`  // hits whose value was checked
	Wrong     []string       `json:"wrong"`  // reads that failed verification
	Errors    map[string]int `json:"errors"` // by kind
	ErrSample []string       `json:"err_sample"`
	Incrs     [relSoakCounters]int64
	Wins      map[string]string `json:"wins"`     // round key -> winner
	Attempted []string          `json:"attempts"` // round keys tried
}

func relSoakOpen(t *testing.T, job relSoakJob) driver.Driver {
	t.Helper()
	switch job.Driver {
	case "file":
		d, err := file.New(job.Locator)
		if err != nil {
			t.Fatal(err)
		}
		return d
	case "minio":
		cfg := s3test.Env(t)
		d, err := s3.Open(t.Context(), job.Locator, s3.Options{Endpoint: cfg.Endpoint, Region: cfg.Region,
			UsePathStyle: true, AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	t.Fatalf("unknown soak driver %q", job.Driver)
	return nil
}

// relSoakChild is one process of the soak.
func relSoakChild(t *testing.T, job relSoakJob) relSoakResult {
	d := relSoakOpen(t, job)
	defer d.Close()
	main, err := cache.New(d, cache.WithLocation(relSoakLocation), cache.WithMaxEntries(relSoakMax),
		cache.WithCullFrequency(3), cache.WithGzip(job.ID%2 == 1))
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := cache.New(d, cache.WithLocation(relSoakCtl), cache.WithMaxEntries(0))
	if err != nil {
		t.Fatal(err)
	}
	res := relSoakResult{ID: job.ID, Errors: map[string]int{}, Wins: map[string]string{}}
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		k := relErrKind(err)
		res.Errors[k]++
		if len(res.ErrSample) < 5 {
			res.ErrSample = append(res.ErrSample, err.Error())
		}
	}
	end := time.Now().Add(job.Duration)
	var wg sync.WaitGroup
	for g := range relSoakGoroutines {
		wg.Go(func() {
			writer := job.ID*100 + g
			rng := rand.New(rand.NewPCG(uint64(writer), uint64(time.Now().UnixNano())))
			var seq int64
			lastRound := ""
			var ops, reads int
			var incrs [relSoakCounters]int64
			var wrong []string
			wins := map[string]string{}
			var attempted []string
			for time.Now().Before(end) {
				ops++
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				key := fmt.Sprintf("key-%d", rng.IntN(relSoakKeys))
				switch r := rng.IntN(100); {
				case r < 40:
					seq++
					if err := main.Set(ctx, key, relValue(key, writer, seq, rng.IntN(3000)), cache.DefaultTTL); err != nil {
						fail(err)
					}
				case r < 70:
					v, err := main.Get(ctx, key)
					switch {
					case err == nil:
						reads++
						if _, verr := relVerify(key, v); verr != nil {
							wrong = append(wrong, verr.Error())
						}
					case !errors.Is(err, cache.ErrMiss):
						fail(err)
					}
				case r < 80:
					i := rng.IntN(relSoakCounters)
					if _, err := ctl.Incr(ctx, "counter-"+strconv.Itoa(i), 1); err != nil {
						fail(err)
					} else {
						incrs[i]++
					}
				case r < 90:
					round := "round-" + strconv.FormatInt(time.Now().UnixNano()/int64(relSoakRound), 10)
					if round == lastRound {
						break
					}
					lastRound = round
					attempted = append(attempted, round)
					me := fmt.Sprintf("p%d-g%d", job.ID, g)
					added, err := ctl.Add(ctx, round, []byte(me), cache.NoExpiry)
					switch {
					case err != nil:
						fail(err)
					case added:
						wins[round] = me
					}
				case r < 94:
					if _, err := main.Has(ctx, key); err != nil {
						fail(err)
					}
				case r < 97:
					if _, err := main.Delete(ctx, key); err != nil {
						fail(err)
					}
				default:
					if _, err := main.Touch(ctx, key, cache.DefaultTTL); err != nil {
						fail(err)
					}
				}
				cancel()
			}
			mu.Lock()
			defer mu.Unlock()
			res.Ops += ops
			res.Reads += reads
			res.Wrong = append(res.Wrong, wrong...)
			for i := range incrs {
				res.Incrs[i] += incrs[i]
			}
			maps.Copy(res.Wins, wins)
			res.Attempted = append(res.Attempted, attempted...)
		})
	}
	wg.Wait()
	return res
}

// TestReliabilitySoak is the cross-process soak, on the file driver and on
// MinIO: 4 processes x 16 goroutines for a bounded time (4 s each, 60 s
// with BLOBCACHE_SOAK=1) on one location culled at max_entries=300, with
// counters and Add rounds in a second, unculled location. It checks that
// Incr totals are exact (the counters equal the sum of the increments the
// processes report), that every Add round has exactly one winner and
// stores the winner's value, that every value read verifies, that the
// sampled entry count stays within 1.25 x max_entries, and that every
// entry left decodes.
func TestReliabilitySoak(t *testing.T) {
	if v := os.Getenv(envRelSoakChild); v != "" {
		var job relSoakJob
		if err := json.Unmarshal([]byte(v), &job); err != nil {
			t.Fatal(err)
		}
		out, _ := json.Marshal(relSoakChild(t, job))
		fmt.Printf("RELSOAK %s\n", out)
		return
	}
	if testing.Short() {
		t.Skip("soak skipped in -short mode")
	}
	dur := relDur(4*time.Second, 60*time.Second)
	for _, drv := range []string{"file", "minio"} {
		t.Run(drv, func(t *testing.T) {
			var locator string
			switch drv {
			case "file":
				locator = t.TempDir()
			case "minio":
				locator = s3test.NewBucket(t, s3test.Env(t))
			}
			relSoakRun(t, relSoakJob{Driver: drv, Locator: locator, Duration: dur})
		})
	}
}

func relSoakRun(t *testing.T, job relSoakJob) {
	ctx := t.Context()
	d := relSoakOpen(t, job)
	defer d.Close()
	probe, err := cache.New(d, cache.WithLocation(relSoakLocation), cache.WithMaxEntries(0))
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := cache.New(d, cache.WithLocation(relSoakCtl), cache.WithMaxEntries(0))
	if err != nil {
		t.Fatal(err)
	}
	for i := range relSoakCounters {
		if err := ctl.Set(ctx, "counter-"+strconv.Itoa(i), []byte("0"), cache.NoExpiry); err != nil {
			t.Fatal(err)
		}
	}

	// Sample the entry count while the children run.
	stop := make(chan struct{})
	var maxSeen, samples int
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if n, err := probe.Len(ctx); err == nil {
				samples++
				maxSeen = max(maxSeen, n)
			}
		}
	})
	results := make([]relSoakResult, relSoakProcs)
	var children sync.WaitGroup
	start := time.Now()
	for p := range relSoakProcs {
		children.Go(func() {
			j := job
			j.ID = p
			arg, _ := json.Marshal(j)
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestReliabilitySoak$", "-test.count=1")
			cmd.Env = append(os.Environ(), envRelSoakChild+"="+string(arg))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("process %d: %v\n%s", p, err, out)
				return
			}
			found := false
			for _, line := range strings.Split(string(out), "\n") {
				if rest, ok := strings.CutPrefix(line, "RELSOAK "); ok {
					found = json.Unmarshal([]byte(rest), &results[p]) == nil
				}
			}
			if !found {
				t.Errorf("process %d reported nothing:\n%s", p, out)
			}
		})
	}
	children.Wait()
	elapsed := time.Since(start)
	close(stop)
	sampler.Wait()
	if t.Failed() {
		return
	}

	var ops, reads int
	var incrs [relSoakCounters]int64
	errs := map[string]int{}
	wins := map[string][]string{}
	attempted := map[string]bool{}
	for _, r := range results {
		ops += r.Ops
		reads += r.Reads
		for _, w := range r.Wrong {
			t.Errorf("process %d read a wrong value: %s", r.ID, w)
		}
		for k, n := range r.Errors {
			errs[k] += n
		}
		if len(r.ErrSample) > 0 {
			t.Errorf("process %d: errors %v, e.g. %q", r.ID, r.Errors, r.ErrSample)
		}
		for i, n := range r.Incrs {
			incrs[i] += n
		}
		for round, who := range r.Wins {
			wins[round] = append(wins[round], who)
		}
		for _, round := range r.Attempted {
			attempted[round] = true
		}
	}
	// Incr totals are exact.
	var totalIncrs int64
	for i := range relSoakCounters {
		v, err := ctl.Get(ctx, "counter-"+strconv.Itoa(i))
		if err != nil {
			t.Fatalf("counter %d: %v", i, err)
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n != incrs[i] {
			t.Errorf("counter %d = %q, want %d, the sum of the increments the processes report", i, v, incrs[i])
		}
		totalIncrs += incrs[i]
	}
	// Add: exactly one winner per round, and the entry is the winner's.
	for round := range attempted {
		w := wins[round]
		if len(w) != 1 {
			t.Errorf("Add %s: winners %v, want exactly one", round, w)
			continue
		}
		v, err := ctl.Get(ctx, round)
		if err != nil || string(v) != w[0] {
			t.Errorf("Add %s: stored %q, %v; the winner was %s", round, v, err, w[0])
		}
	}
	for round := range wins {
		if !attempted[round] {
			t.Errorf("Add %s: a winner but no attempt recorded", round)
		}
	}
	// The entry count stayed near max_entries.
	n, err := probe.Len(ctx)
	if err != nil {
		t.Fatal(err)
	}
	maxSeen = max(maxSeen, n)
	if bound := relSoakMax * 5 / 4; maxSeen > bound {
		t.Errorf("max entries observed %d, want <= %d (1.25 x max_entries)", maxSeen, bound)
	}
	// Every entry left decodes and verifies.
	names := map[string]string{}
	for i := range relSoakKeys {
		key := fmt.Sprintf("key-%d", i)
		names[probe.ObjectName(key)] = key
	}
	left := 0
	token := ""
	for {
		page, err := d.List(ctx, &driver.ListOptions{Prefix: relSoakLocation + "/", PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Objects {
			key, ok := names[o.Name]
			if !ok {
				t.Errorf("object %s is no entry of the soak", o.Name)
				continue
			}
			v, err := probe.Get(ctx, key)
			if err != nil {
				t.Errorf("%s is listed but Get = %v (a miss means it did not decode)", key, err)
				continue
			}
			if _, err := relVerify(key, v); err != nil {
				t.Errorf("%s: %v", key, err)
			}
			left++
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	t.Logf("%s: %d processes x %d goroutines for %v (%v with start-up): %d calls (%.0f/s), %d verified reads, 0 wrong; %d increments, counters exact; %d Add rounds, one winner each; max entries %d in %d samples (bound %d); %d entries left, all decode; errors %v",
		job.Driver, relSoakProcs, relSoakGoroutines, job.Duration, elapsed.Round(100*time.Millisecond), ops, float64(ops)/job.Duration.Seconds(), reads,
		totalIncrs, len(attempted), maxSeen, samples, relSoakMax*5/4, left, errs)
	if len(attempted) == 0 || totalIncrs == 0 || reads == 0 {
		t.Errorf("the soak did too little to judge: %d rounds, %d increments, %d reads", len(attempted), totalIncrs, reads)
	}
}
