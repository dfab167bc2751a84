package s3_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/drivers/s3"
	"github.com/blobcache/blobcache/internal/faultproxy"
	"github.com/blobcache/blobcache/internal/s3test"
)

// The fault test's parameters.
const (
	relWorkers       = 32
	relKeysPerWorker = 8
	relCallTimeout   = 2 * time.Second
	// relSlack is how far past its deadline a failing call may return: the
	// time to unwind a cancelled request, on 2 cores under -race.
	relSlack = time.Second
)

// relFaultEnv is a cache (two, one of them gzip) on a bucket reached through
// a fault proxy, on a private HTTP transport.
type relFaultEnv struct {
	proxy  *faultproxy.Proxy
	tr     *http.Transport
	caches [2]*cache.Cache
	driver *s3.Driver
}

func relOpenFaultEnv(t *testing.T, cfg s3test.Config, bucket, location string) *relFaultEnv {
	t.Helper()
	p, err := faultproxy.New(cfg.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	e := &relFaultEnv{proxy: p, tr: relTransport()}
	for i := range e.caches {
		d, err := s3.Open(t.Context(), bucket, s3.Options{
			Endpoint: p.URL(), Region: cfg.Region, UsePathStyle: true,
			AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey,
			HTTPClient: &http.Client{Transport: e.tr},
		})
		if err != nil {
			t.Fatalf("s3.Open through the proxy: %v", err)
		}
		if i == 0 {
			e.driver = d
		}
		e.caches[i], err = cache.New(d, cache.WithLocation(location), cache.WithMaxEntries(0), cache.WithGzip(i == 1))
		if err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// close closes the caches, the proxy and the idle connections, in that order.
func (e *relFaultEnv) close(t *testing.T) {
	t.Helper()
	for _, c := range e.caches {
		if err := c.Close(); err != nil {
			t.Errorf("cache Close: %v", err)
		}
	}
	if err := e.proxy.Close(); err != nil {
		t.Errorf("proxy Close: %v", err)
	}
	e.tr.CloseIdleConnections()
}

// relRetryEnvSet reports whether the environment changes the SDK's retry
// policy, in which case the retry assertions do not apply.
func relRetryEnvSet() string {
	for _, v := range []string{"AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS", "AWS_NEW_RETRIES_2026", "AWS_DEFAULTS_MODE"} {
		if os.Getenv(v) != "" {
			return v
		}
	}
	return ""
}

// TestReliabilityRetryPolicy pins the retry policy the S3 driver runs with:
// the AWS SDK's standard retryer, 3 attempts in all, so a request that fails
// twice with a retryable error (500 here) succeeds on the third attempt and
// one that fails three times returns the error. Backoff before retry i is
// uniform in [0, 2^i s) (at most 2 s, then 4 s).
func TestReliabilityRetryPolicy(t *testing.T) {
	cfg := s3test.Env(t)
	if v := relRetryEnvSet(); v != "" {
		t.Skipf("%s is set and changes the SDK's retry policy", v)
	}
	bucket := s3test.NewBucket(t, cfg)
	leaks := goleak.IgnoreCurrent()
	e := relOpenFaultEnv(t, cfg, bucket, "retry")
	c := e.caches[0]
	ctx := t.Context()

	r := e.driver.Client().Options().Retryer
	if r == nil || r.MaxAttempts() != 3 {
		t.Fatalf("S3 client retryer %T with MaxAttempts %v, want the SDK's standard retryer with 3", r, r.MaxAttempts())
	}
	t.Logf("S3 client retryer: %T, MaxAttempts %d", r, r.MaxAttempts())

	for _, k := range []string{"twice", "thrice"} {
		if err := c.Set(ctx, k, []byte(k), cache.NoExpiry); err != nil {
			t.Fatal(err)
		}
	}
	// Fail the first 2 GETs of "twice" and the first 3 of "thrice" with 500.
	fails := map[string]int{c.ObjectName("twice"): 2, c.ObjectName("thrice"): 3}
	seen := map[string]int{}
	var mu sync.Mutex
	e.proxy.Set(faultproxy.Rule{Fault: faultproxy.Status500, Probability: 1, Match: func(r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		for name, n := range fails {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/"+name) {
				seen[name]++
				return seen[name] <= n
			}
		}
		return false
	}})
	var wg sync.WaitGroup
	var twiceErr, thriceErr error
	var twiceTook, thriceTook time.Duration
	wg.Go(func() {
		start := time.Now()
		var v []byte
		v, twiceErr = c.Get(ctx, "twice")
		if twiceErr == nil && string(v) != "twice" {
			twiceErr = fmt.Errorf("got %q", v)
		}
		twiceTook = time.Since(start)
	})
	wg.Go(func() {
		start := time.Now()
		_, thriceErr = c.Get(ctx, "thrice")
		thriceTook = time.Since(start)
	})
	wg.Wait()
	e.proxy.Clear()
	mu.Lock()
	gotTwice, gotThrice := seen[c.ObjectName("twice")], seen[c.ObjectName("thrice")]
	mu.Unlock()
	if twiceErr != nil || gotTwice != 3 {
		t.Errorf("Get after 2 failed attempts: err %v after %d requests, want success on the 3rd", twiceErr, gotTwice)
	}
	if thriceErr == nil || gotThrice != 3 || !strings.Contains(thriceErr.Error(), "exceeded maximum number of attempts, 3") {
		t.Errorf("Get after 3 failed attempts: err %v after %d requests, want the SDK's max-attempts error after 3", thriceErr, gotThrice)
	}
	// Two backoffs: [0, 2 s) + [0, 4 s).
	for _, took := range []time.Duration{twiceTook, thriceTook} {
		if took > 6*time.Second+relSlack {
			t.Errorf("a call with two retries took %v, more than the SDK's 2 backoffs of at most 2 s and 4 s", took)
		}
	}
	t.Logf("2 failures then success: %v; 3 failures: %v (%v)", twiceTook.Round(time.Millisecond), thriceTook.Round(time.Millisecond), thriceErr)
	e.close(t)
	goleak.VerifyNone(t, leaks)
}

// relFault is one row of the fault table.
type relFault struct {
	name string
	rule faultproxy.Rule
}

// relOp is one cache call a worker made.
type relOp struct {
	phase      int
	start, end time.Time
	kind       string // relErrKind of the error, "ok" for success
	wrong      string // why the returned value is wrong, if it is
	stale      bool   // an older version than one acknowledged before the call
	overcount  bool   // Incr result above every increment attempted
	addFalse   bool   // Add reported a live entry though only this worker adds the key
	what       string // the call, for messages
	err        error
}

// TestReliabilityFaults runs 32 workers on a cache reached through a fault
// proxy, injecting each fault in turn, and checks that no call returns a
// value never written for its key, that every call returns within its
// deadline, and that service recovers once the fault is cleared. It logs
// the fault table of RELIABILITY.md.
func TestReliabilityFaults(t *testing.T) {
	cfg := s3test.Env(t)
	if testing.Short() {
		t.Skip("fault injection run skipped in -short mode")
	}
	bucket := s3test.NewBucket(t, cfg)
	leaks := goleak.IgnoreCurrent()
	e := relOpenFaultEnv(t, cfg, bucket, "faults")
	t.Logf("retry policy: %T, MaxAttempts %d (AWS SDK standard retryer; backoff before retry i uniform in [0, 2^i s); retry quota 500 tokens, 5 a retry, 10 a timeout retry, +1 a success)",
		e.driver.Client().Options().Retryer, e.driver.Client().Options().Retryer.MaxAttempts())

	faults := []relFault{
		{"connection reset (request lost)", faultproxy.Rule{Fault: faultproxy.Reset, Probability: 0.3}},
		{"connection reset (response lost)", faultproxy.Rule{Fault: faultproxy.ResetAfter, Probability: 0.3}},
		{"500 InternalError", faultproxy.Rule{Fault: faultproxy.Status500, Probability: 0.3}},
		{"503 SlowDown", faultproxy.Rule{Fault: faultproxy.SlowDown, Probability: 0.5}},
		{"latency spike 1.5 s", faultproxy.Rule{Fault: faultproxy.Latency, Probability: 0.2, Delay: 1500 * time.Millisecond}},
		{"truncated body", faultproxy.Rule{Fault: faultproxy.Truncate, Probability: 0.3}},
		{"stalled connection (next 40)", faultproxy.Rule{Fault: faultproxy.Stall, Next: 40}},
	}
	baseline := relDur(1500*time.Millisecond, 5*time.Second)
	faultFor := relDur(1500*time.Millisecond, 10*time.Second)
	recoverFor := relDur(2500*time.Millisecond, 10*time.Second)

	const nkeys = relWorkers * relKeysPerWorker
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("w%02d-k%d", i/relKeysPerWorker, i%relKeysPerWorker)
	}
	ctrKey := func(w int) string { return fmt.Sprintf("w%02d-counter", w) }
	var maxAtt, acked [nkeys]atomic.Int64
	var ctrAtt, ctrAck [relWorkers]atomic.Int64
	for w := range relWorkers {
		if err := e.caches[w%2].Set(t.Context(), ctrKey(w), []byte("0"), cache.NoExpiry); err != nil {
			t.Fatal(err)
		}
	}

	var phase atomic.Int32
	stop := make(chan struct{})
	ops := make([][]relOp, relWorkers)
	var wg sync.WaitGroup
	for w := range relWorkers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			c := e.caches[w%2]
			var excess int64 // increments applied beyond those attempted
			adds := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				op := relOp{phase: int(phase.Load())}
				ctx, cancel := context.WithTimeout(context.Background(), relCallTimeout)
				op.start = time.Now()
				var err error
				switch r := rng.IntN(100); {
				case r < 30: // Set one of its own keys, a new version
					k := w*relKeysPerWorker + rng.IntN(relKeysPerWorker)
					v := maxAtt[k].Add(1)
					err = c.Set(ctx, keys[k], relValue(keys[k], w, v, rng.IntN(2000)), cache.NoExpiry)
					if err == nil {
						for {
							a := acked[k].Load()
							if a >= v || acked[k].CompareAndSwap(a, v) {
								break
							}
						}
					}
				case r < 65: // Get any key
					k := rng.IntN(nkeys)
					floor := acked[k].Load()
					var v []byte
					v, err = c.Get(ctx, keys[k])
					switch {
					case err == nil:
						p, verr := relVerify(keys[k], v)
						switch {
						case verr != nil:
							op.wrong = verr.Error()
						case p.writer != k/relKeysPerWorker:
							op.wrong = fmt.Sprintf("key %s written by worker %d", keys[k], p.writer)
						case p.version > maxAtt[k].Load():
							op.wrong = fmt.Sprintf("key %s: version %d never written (max %d)", keys[k], p.version, maxAtt[k].Load())
						case p.version < floor:
							op.stale = true
						}
					case errors.Is(err, cache.ErrMiss):
						if floor > 0 {
							op.wrong = fmt.Sprintf("key %s: miss after version %d was acknowledged", keys[k], floor)
						}
						err = nil
					}
				case r < 75: // Has any key
					k := rng.IntN(nkeys)
					floor := acked[k].Load()
					var ok bool
					ok, err = c.Has(ctx, keys[k])
					if err == nil && !ok && floor > 0 {
						op.wrong = fmt.Sprintf("key %s: Has false after version %d was acknowledged", keys[k], floor)
					}
				case r < 88: // Incr its own counter
					att := ctrAtt[w].Add(1)
					var n int64
					n, err = c.Incr(ctx, ctrKey(w), 1)
					if err == nil {
						ack := ctrAck[w].Add(1)
						switch {
						case n < ack+excess:
							op.wrong = fmt.Sprintf("counter %d: Incr returned %d after %d acknowledged increments", w, n, ack)
						case n > att+excess:
							op.overcount = true
							excess = n - att
						}
					}
				default: // Add a key only this worker ever adds
					adds++
					key := fmt.Sprintf("w%02d-add-%d", w, adds)
					var added bool
					added, err = c.Add(ctx, key, relValue(key, w, 1, 10), cache.NoExpiry)
					if err == nil && !added {
						op.addFalse = true
					}
				}
				op.end = time.Now()
				// A failure is the store's unless the call's own deadline
				// ended it or it lost too many races.
				callerDone := ctx.Err() != nil && errors.Is(err, ctx.Err())
				cancel()
				op.kind = "ok"
				if err != nil {
					op.kind = relErrKind(err)
					op.err = err
					want := !callerDone && !errors.Is(err, cache.ErrConflict)
					if got := errors.Is(err, cache.ErrStorage); got != want && op.wrong == "" {
						op.wrong = fmt.Sprintf("errors.Is(err, cache.ErrStorage) = %v, want %v, for a %s failure: %v", got, want, op.kind, err)
					}
				}
				ops[w] = append(ops[w], op)
			}
		})
	}

	type window struct{ start, clear, end time.Time }
	windows := make([]window, len(faults))
	stats := make([]faultproxy.Stats, len(faults))
	time.Sleep(baseline)
	for i, f := range faults {
		e.proxy.ResetStats()
		windows[i].start = time.Now()
		phase.Store(int32(2*i + 1))
		e.proxy.Set(f.rule)
		time.Sleep(faultFor)
		e.proxy.Clear()
		stats[i] = e.proxy.Stats()
		windows[i].clear = time.Now()
		phase.Store(int32(2*i + 2))
		time.Sleep(recoverFor)
		windows[i].end = time.Now()
	}
	close(stop)
	wg.Wait()

	// A call started after a fault was cleared that was still running when
	// the next fault began may have met it: it counts for the next fault.
	var all []relOp
	for _, o := range ops {
		for _, op := range o {
			if i := op.phase/2 - 1; op.phase > 0 && op.phase%2 == 0 && i+1 < len(faults) && op.end.After(windows[i].end) {
				op.phase++
			}
			all = append(all, op)
		}
	}
	count := func(p int) (n int) {
		for _, o := range all {
			if o.phase == p {
				n++
			}
		}
		return n
	}
	baseRate := float64(count(0)) / baseline.Seconds()
	t.Logf("baseline: %d calls in %v (%.0f calls/s), %d workers", count(0), baseline, baseRate, relWorkers)

	var table []string
	table = append(table,
		"| fault | rule | calls | errors | error kinds | wrong values | stale reads | max call | proxy requests (faulted) | failed calls started after clear | last failure after clear | first success after clear | calls/s after clear |",
		"| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	var overcounts, addFalses []string
	for i, f := range faults {
		w := windows[i]
		var calls, errs, wrong, stale, over, addFalse, afterErrs, afterCalls int
		var maxCall time.Duration
		kinds := map[string]int{}
		var lastFail, firstOK time.Time
		for _, o := range all {
			if o.phase != 2*i+1 && o.phase != 2*i+2 {
				continue
			}
			took := o.end.Sub(o.start)
			maxCall = max(maxCall, took)
			if took > relCallTimeout+relSlack {
				t.Errorf("%s: a call took %v, past its %v deadline: %v", f.name, took, relCallTimeout, o.err)
			}
			if o.wrong != "" {
				wrong++
				t.Errorf("%s: wrong value: %s", f.name, o.wrong)
			}
			if o.stale {
				stale++
			}
			if o.overcount {
				over++
			}
			if o.addFalse {
				addFalse++
			}
			if o.phase == 2*i+1 {
				calls++
				if o.kind != "ok" {
					errs++
					kinds[o.kind]++
					if o.end.After(lastFail) {
						lastFail = o.end
					}
				}
				continue
			}
			// Started after the fault was cleared (and ended before the next
			// one began).
			afterCalls++
			if o.kind != "ok" {
				afterErrs++
				t.Errorf("%s: a call started %v after the fault was cleared failed after %v: %v",
					f.name, o.start.Sub(w.clear), took, o.err)
			} else if firstOK.IsZero() || o.end.Before(firstOK) {
				firstOK = o.end
			}
		}
		recovery := time.Duration(0)
		if lastFail.After(w.clear) {
			recovery = lastFail.Sub(w.clear)
		}
		if recovery > relCallTimeout+relSlack {
			t.Errorf("%s: failures went on %v after the fault was cleared", f.name, recovery)
		}
		if firstOK.IsZero() {
			t.Errorf("%s: no call succeeded after the fault was cleared", f.name)
		}
		afterRate := float64(afterCalls) / w.end.Sub(w.clear).Seconds()
		if afterRate < baseRate/4 {
			t.Errorf("%s: %.0f calls/s after the fault, below a quarter of the baseline %.0f", f.name, afterRate, baseRate)
		}
		// The proxy forwards a delayed request only while its caller waits,
		// but the server may still apply a write whose caller has just given
		// up, after the caller's next write: only there is a stale read
		// possible.
		if stale > 0 && f.rule.Fault != faultproxy.Latency {
			t.Errorf("%s: %d reads returned a version older than one acknowledged before the read began", f.name, stale)
		}
		// A lost acknowledgement makes the SDK retry a conditional write,
		// which the server refuses with 412 since the first attempt took
		// effect: see TestReliabilityLostAck. Only a fault that loses
		// responses of applied requests can cause it.
		if over > 0 || addFalse > 0 {
			t.Errorf("%s: %d Incr over-counts and %d false Add results without a lost acknowledgement", f.name, over, addFalse)
		}
		var ks []string
		for _, k := range slices.Sorted(maps.Keys(kinds)) {
			ks = append(ks, fmt.Sprintf("%s %d", k, kinds[k]))
		}
		first := "-"
		if !firstOK.IsZero() {
			first = firstOK.Sub(w.clear).Round(time.Millisecond).String()
		}
		table = append(table, fmt.Sprintf("| %s | %s | %d | %d | %s | %d | %d | %v | %d (%d) | %d of %d | %v | %s | %.0f (baseline %.0f) |",
			f.name, relRuleString(f.rule), calls, errs, strings.Join(ks, ", "), wrong, stale, maxCall.Round(10*time.Millisecond),
			stats[i].Requests, stats[i].Faults[f.rule.Fault], afterErrs, afterCalls, recovery.Round(10*time.Millisecond), first, afterRate, baseRate))
		if over > 0 {
			overcounts = append(overcounts, fmt.Sprintf("%s: %d", f.name, over))
		}
		if addFalse > 0 {
			addFalses = append(addFalses, fmt.Sprintf("%s: %d", f.name, addFalse))
		}
	}
	t.Logf("fault table (%d workers, %v deadline per call, %v of fault then %v of recovery each):\n%s",
		relWorkers, relCallTimeout, faultFor, recoverFor, strings.Join(table, "\n"))
	t.Logf("Incr calls that counted an increment twice (must be none since the fix of TestReliabilityLostAck): %v", relOrNone(overcounts))
	t.Logf("Add calls that returned false though their own write created the entry (must be none since the fix of TestReliabilityLostAck): %v", relOrNone(addFalses))

	// At rest, every entry verifies and counters are within bounds.
	ctx := t.Context()
	c := e.caches[0]
	for k, key := range keys {
		v, err := c.Get(ctx, key)
		if errors.Is(err, cache.ErrMiss) {
			if acked[k].Load() > 0 {
				t.Errorf("at rest: %s missing after version %d was acknowledged", key, acked[k].Load())
			}
			continue
		}
		if err != nil {
			t.Fatalf("at rest: Get(%s): %v", key, err)
		}
		p, err := relVerify(key, v)
		switch {
		case err != nil:
			t.Errorf("at rest: %v", err)
		case p.version > maxAtt[k].Load():
			t.Errorf("at rest: %s at version %d, never written (max %d)", key, p.version, maxAtt[k].Load())
		case p.version < acked[k].Load():
			t.Logf("at rest: %s at version %d, older than acknowledged %d (a write abandoned by its caller landed late)", key, p.version, acked[k].Load())
		}
	}
	for w := range relWorkers {
		v, err := c.Get(ctx, ctrKey(w))
		if err != nil {
			t.Fatalf("at rest: counter %d: %v", w, err)
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			t.Fatalf("at rest: counter %d: %q", w, v)
		}
		if n < ctrAck[w].Load() {
			t.Errorf("at rest: counter %d = %d, fewer than its %d acknowledged increments", w, n, ctrAck[w].Load())
		}
		if n > ctrAtt[w].Load() {
			t.Errorf("at rest: counter %d = %d, more than its %d attempted increments", w, n, ctrAtt[w].Load())
		}
	}
	e.close(t)
	goleak.VerifyNone(t, leaks)
}

func relOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, "; ")
}

func relRuleString(r faultproxy.Rule) string {
	s := ""
	if r.Next > 0 {
		s = fmt.Sprintf("next %d requests", r.Next)
	} else {
		s = fmt.Sprintf("p=%.1f", r.Probability)
	}
	if r.Delay > 0 {
		s += fmt.Sprintf(", +%v", r.Delay)
	}
	return s
}

// TestReliabilityLostAck shows what a lost acknowledgement of a conditional
// write does: the server applies the PutObject, the connection is reset
// before its answer arrives, the SDK retries the request (a reset is
// retryable), and the server refuses the retry with 412 because the first
// attempt changed the object. The cache reads that as "another writer got
// there first": Incr then increments again (one Incr(1) adds 2) and Add
// reports a live entry that is its own (false, nil).
//
// The s3 driver now refuses to retry a conditional write that may have taken
// effect (conditionalRetryer), so the caller gets an error instead, as with
// AWS_MAX_ATTEMPTS=1; both subtests check it. See RELIABILITY.md.
func TestReliabilityLostAck(t *testing.T) {
	cfg := s3test.Env(t)
	bucket := s3test.NewBucket(t, cfg)
	conditionalPut := func(header string) func(*http.Request) bool {
		return func(r *http.Request) bool { return r.Method == http.MethodPut && r.Header.Get(header) != "" }
	}
	for _, retries := range []bool{true, false} {
		name := "sdk-retries"
		if !retries {
			name = "no-sdk-retries"
		}
		t.Run(name, func(t *testing.T) {
			if !retries {
				t.Setenv("AWS_MAX_ATTEMPTS", "1")
			}
			e := relOpenFaultEnv(t, cfg, bucket, "lostack-"+name)
			defer e.close(t)
			c := e.caches[0]
			ctx := t.Context()

			if err := c.Set(ctx, "n", []byte("0"), cache.NoExpiry); err != nil {
				t.Fatal(err)
			}
			e.proxy.Set(faultproxy.Rule{Fault: faultproxy.ResetAfter, Next: 1, Match: conditionalPut("If-Match")})
			n, err := c.Incr(ctx, "n", 1)
			v, gerr := c.Get(ctx, "n")
			if gerr != nil {
				t.Fatal(gerr)
			}
			t.Logf("Incr(1) on 0 with the answer to its write lost: %d, %v; stored %s", n, err, v)
			if err == nil && (n != 1 || string(v) != "1") {
				t.Errorf("Incr(1) on 0 returned %d and stored %s: one increment counted %s times", n, v, v)
			}

			e.proxy.Set(faultproxy.Rule{Fault: faultproxy.ResetAfter, Next: 1, Match: conditionalPut("If-None-Match")})
			added, err := c.Add(ctx, "lock", []byte("mine"), cache.NoExpiry)
			v, gerr = c.Get(ctx, "lock")
			t.Logf("Add with the answer to its write lost: %v, %v; stored %q, %v", added, err, v, gerr)
			if err == nil && !added && string(v) == "mine" {
				t.Errorf("Add returned false (a live entry exists) though the entry is the one it wrote")
			}
		})
	}
}
