package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
)

// Cross-process GetOrSet with a fill lease (cache.WithFillLease): in each
// round, every child process runs fleetGoroutines concurrent GetOrSets of one
// cold key, whose fill takes fleetFillTime. Even rounds have the lease, odd
// rounds not, so that one run measures both on the same store.
const (
	childOpCacheFleetFill = "cache.fleetfill" // round r: GetOrSet(args["key"]+r) from fleetGoroutines goroutines; arg "lease" or ""
	fleetGoroutines       = 8
	fleetFillTime         = 20 * time.Millisecond
	fleetLease            = 5 * time.Second
)

// fleetRound is what a child reports of a fleet-fill round.
type fleetRound struct {
	Fills int           `json:"fills"` // fills this process ran
	Value string        `json:"value"` // what every goroutine got ("" if they differed: see Mixed)
	Mixed string        `json:"mixed,omitempty"`
	First time.Duration `json:"first"` // round start to the first goroutine's value
	Last  time.Duration `json:"last"`  // to the last one's
	// Requests this process made in the round beyond its goroutines' first
	// Gets (one each), and its polls of a held key.
	Requests, Waits int64
}

func init() {
	registerChildRounds(childOpCacheFleetFill, func(_ context.Context, d driver.Driver, req childRequest) (childRoundFunc, error) {
		c, err := cache.New(d, cache.WithLocation(req.Args["location"]), cache.WithMaxEntries(0))
		if err != nil {
			return nil, err
		}
		key := req.Args["key"]
		return func(ctx context.Context, r int, arg string) (string, error) {
			start, before := time.Now(), c.Stats()
			var fills atomic.Int64
			fill := func(context.Context) ([]byte, error) {
				fills.Add(1)
				time.Sleep(fleetFillTime)
				return fmt.Appendf(nil, "filled by child %d in round %d", req.ID, r), nil
			}
			var opts []cache.FillOption
			if arg == "lease" {
				opts = append(opts, cache.FillLease(fleetLease))
			}
			var (
				wg     sync.WaitGroup
				mu     sync.Mutex
				values = map[string]int{}
				took   []time.Duration
				firstE error
			)
			for range fleetGoroutines {
				wg.Go(func() {
					v, err := c.GetOrSet(ctx, key+strconv.Itoa(r), time.Hour, fill, opts...)
					mu.Lock()
					defer mu.Unlock()
					took = append(took, time.Since(start))
					if err != nil && firstE == nil {
						firstE = err
					}
					values[string(v)]++
				})
			}
			wg.Wait()
			if firstE != nil {
				return "", firstE
			}
			after := c.Stats()
			slices.Sort(took)
			fr := fleetRound{Fills: int(fills.Load()), First: took[0], Last: took[len(took)-1],
				Requests: after.Reads + after.Writes + after.DeleteRequests - before.Reads - before.Writes - before.DeleteRequests - fleetGoroutines,
				Waits:    after.FillWaits - before.FillWaits}
			for v := range values {
				fr.Value = v
			}
			if len(values) > 1 {
				fr.Value, fr.Mixed = "", fmt.Sprint(values)
			}
			b, err := json.Marshal(fr)
			return string(b), err
		}, nil
	})
}

// caseCacheCrossProcessFleetFill: with a fill lease, processes missing one
// cold key at one instant run its fill once between them, and every caller
// in every process gets that fill's value. It logs what the lease costs and
// saves against the rounds without it.
func caseCacheCrossProcessFleetFill(e *env) {
	e.needAtomicIfAbsent()
	if _, ok := e.driver().(driver.Replacer); !ok {
		e.t.Skipf("driver does not implement driver.Replacer, which fill leases need")
	}
	const key = "cold-"
	n := crossProcessChildren()
	results, ran := e.runChildRounds(childOpCacheFleetFill, clauseFleetFill, n, map[string]string{"location": e.location(), "key": key},
		func(r int) string {
			if r%2 == 0 {
				return "lease"
			}
			return ""
		})
	rounds := make([][]fleetRound, n)
	for id, rs := range results {
		rounds[id] = make([]fleetRound, ran)
		for r, rr := range rs {
			if rr.Kind != kindOK {
				continue
			}
			if err := json.Unmarshal([]byte(rr.Value), &rounds[id][r]); err != nil {
				e.t.Fatalf("child %d, round %d: decoding %q: %v (%s)", id, r, rr.Value, err, clauseFleetFill)
			}
		}
	}
	// The rounds with the lease: one fill in all, its value everywhere.
	leased := make([][]roundResult, n)
	for id := range results {
		for r := 0; r < ran; r += 2 {
			leased[id] = append(leased[id], results[id][r])
		}
	}
	what := fmt.Sprintf("%d processes x %d goroutines calling GetOrSet(%q+round) with a fill lease at one instant, in each of %d rounds (numbered here 0, 1, ... for the even rounds run)",
		n, fleetGoroutines, key, len(leased[0]))
	winners := e.checkRounds(what, clauseFleetFill, "running no fill", leased, func(rr roundResult) raceVerdict {
		var fr fleetRound
		if rr.Kind != kindOK || json.Unmarshal([]byte(rr.Value), &fr) != nil || fr.Mixed != "" || fr.Fills > 1 {
			return raceFailed
		}
		if fr.Fills == 1 {
			return raceWon
		}
		return raceRefused
	})
	c := e.cache()
	var wrong []string
	for i, w := range winners {
		r := 2 * i
		if w < 0 {
			continue
		}
		want := fmt.Sprintf("filled by child %d in round %d", w, r)
		for id := range rounds {
			if got := rounds[id][r].Value; got != want {
				wrong = append(wrong, fmt.Sprintf("round %d: child %d's callers got %q, want the one fill's %q", r, id, got, want))
			}
		}
		if got, err := c.Get(e.ctx, key+strconv.Itoa(r)); err != nil || string(got) != want {
			wrong = append(wrong, fmt.Sprintf("round %d: Get = %q, %v; want %q", r, got, err, want))
		}
	}
	// The rounds without the lease must show that the processes did miss
	// at one instant: there each runs its own fill, so a round with one
	// fill in all means the others came after it had stored its value,
	// and a run of such rounds alone would let a lease that coordinates
	// nothing pass the rounds with it.
	overlapped, unleased := 0, 0
	for r := 1; r < ran; r += 2 {
		unleased++
		fills := 0
		for id := range rounds {
			fills += rounds[id][r].Fills
		}
		if fills > 1 {
			overlapped++
		}
	}
	if unleased > 0 && overlapped == 0 {
		e.t.Errorf("%s: in none of the %d rounds without the lease did more than one process fill: the processes never missed at one instant, so the rounds with it prove nothing (%s)", what, unleased, clauseFleetFill)
	}
	if len(wrong) > 0 {
		e.t.Errorf("%s: %d callers did not get the one fill's value:\n\t%s\n(%s)", what, len(wrong), strings.Join(wrong[:min(len(wrong), maxRoundsReported)], "\n\t"), clauseFleetFill)
	}
	e.t.Logf("fill leases, %d processes x %d goroutines, a cold key per round, a fill of %v:\n%s\n%s", n, fleetGoroutines, fleetFillTime,
		fleetSummary("with fill_lease   ", rounds, 0), fleetSummary("without (in-process single flight only)", rounds, 1))
}

// fleetSummary describes the rounds of parity p (0: with the lease): fills
// per round, time to the first and to the last caller's value (medians over
// rounds), and requests per round by the filling and by the waiting
// processes, beyond each goroutine's first Get.
func fleetSummary(label string, rounds [][]fleetRound, p int) string {
	var fills []int
	var first, last []time.Duration
	var fillerReq, waiterReq, waits []int64
	for r := p; r < len(rounds[0]); r += 2 {
		f := 0
		var lo, hi time.Duration
		for id := range rounds {
			fr := rounds[id][r]
			f += fr.Fills
			if id == 0 || fr.First < lo {
				lo = fr.First
			}
			hi = max(hi, fr.Last)
			if fr.Fills > 0 {
				fillerReq = append(fillerReq, fr.Requests)
			} else {
				waiterReq, waits = append(waiterReq, fr.Requests), append(waits, fr.Waits)
			}
		}
		fills, first, last = append(fills, f), append(first, lo), append(last, hi)
	}
	med := func(xs []int64) string {
		if len(xs) == 0 {
			return "-"
		}
		slices.Sort(xs)
		return strconv.FormatInt(xs[len(xs)/2], 10)
	}
	slices.Sort(fills)
	slices.Sort(first)
	slices.Sort(last)
	return fmt.Sprintf("  %s: fills per round %d (median; %d to %d) over %d rounds; first value after %v, last after %v (medians); requests per round beyond the %d first Gets: %s by a filling process, %s by a waiting one (%s polls)",
		label, fills[len(fills)/2], fills[0], fills[len(fills)-1], len(fills),
		first[len(first)/2].Round(100*time.Microsecond), last[len(last)/2].Round(100*time.Microsecond), fleetGoroutines, med(fillerReq), med(waiterReq), med(waits))
}
