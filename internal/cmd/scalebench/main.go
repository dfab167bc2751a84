// Command scalebench measures what a full cache costs per write as it
// grows: store requests, write latency, culling time and the memory the
// cache itself holds, at 10^4 to 10^7 entries.
//
//	go run ./internal/cmd/scalebench -store sim -entries 10000,100000,1000000,10000000 -writes 2000 -opts 'cull_frequency=3'
//
// For each entry count N it:
//
//  1. makes a fresh store and preloads it with N entries under the
//     location (bench unless -opts sets location). -store sim is
//     internal/simstore, a store of names only that counts every request:
//     N random entry names (location/ and 40 hex digits, as SHA-1 names
//     are) go in by Fill, uncounted, all with one size and one
//     modification time. -store mem is drivers/mem: N real entries written
//     through a cache with max_entries=0 (no counting, no culling), in
//     parallel, so that whatever reads them reads valid entries.
//  2. opens a cache on that store with max_entries=N plus -opts, through
//     cache.Open and a URL of a scheme this command registers
//     (scalebench://store?max_entries=N&...), so -opts takes the cache's
//     own URL options with the cache's own parsing.
//  3. makes -writes Sets of new random keys, one after the other. The cache
//     is full: the first write lists it (the fresh cache knows no count)
//     and culls. It records, per write, the store requests made while it
//     ran and its latency; the cull's duration is the time from the start
//     of the first write until Stats().Culls first counts a cull, checked
//     after every write and by a poller every millisecond (so a cull that
//     finishes in the background is timed too), waiting up to
//     -cull-timeout after the writes.
//  4. measures the client's memory: the live heap after runtime.GC() with
//     the cache open, minus the same once the cache is closed and dropped
//     and only the store remains (the store as it is then, culled), so
//     the figure is what the cache holds, whatever the store freed; and the
//     peak growth of the live heap during the writes and the cull
//     (internal/memuse, sampled every 100µs: a lower bound).
//  5. counts the entries left (cache.Len, not counted among the requests).
//
// It prints the command line and one markdown table row per N. Requests
// are counted by the store for sim (and checked against the cache's own
// Stats) and by the cache's Stats for mem: one call is one request on a
// store such as S3, and "LIST pages" is the part of them that are List
// calls. A run of one N that takes longer than -timeout (preload included)
// prints a row saying so and exits with status 3 after the rows so far, as
// does a cull not finished within -cull-timeout: later rows would share the
// two cores with it.
//
// The machine's other load shows in the latencies; the request counts are
// exact. "store heap/entry" is the live heap the preloaded store took, per
// entry (sim: names only; mem: names, entries of -value-size plus the
// 16-byte header, and its index).
// "client heap retained" on mem is lower than on sim by about the names'
// bytes: drivers/mem's List returns the store's own name strings, which the
// cache's entry counter then keeps, so they count as the store's; a remote
// store's names arrive in new allocations, as simstore's (copied out of its
// arenas) do, so sim's figure is the one a real client pays.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/mem"
	"github.com/blobcache/blobcache/internal/memuse"
	"github.com/blobcache/blobcache/internal/simstore"
)

var (
	storeFlag   = flag.String("store", "sim", "store: sim (internal/simstore, names only) or mem (drivers/mem)")
	entriesFlag = flag.String("entries", "10000,100000,1000000", "comma-separated entry counts N: the store holds N entries and the cache max_entries=N")
	writesFlag  = flag.Int("writes", 2000, "writes of new keys on each full cache")
	optsFlag    = flag.String("opts", "cull_frequency=3", "cache options as a URL query (location, cull_frequency, cull_policy, ...); max_entries is set to N")
	valueFlag   = flag.Int("value-size", 100, "bytes of each value written")
	timeoutFlag = flag.Duration("timeout", 20*time.Minute, "longest run of one N, preload included; past it the command prints what it has and exits")
	cullTimeout = flag.Duration("cull-timeout", 10*time.Minute, "longest wait for the cull after the writes")
	seedFlag    = flag.Uint64("seed", 1, "seed of the preloaded sim names")
	latencyFlag = flag.Duration("latency", 0, "with -store sim: how long each request takes (a store across a network), the preload's excepted")
)

// entryHeader is the size of an entry's header: a sim entry's size is the
// value's plus this (see the README's entry format).
const entryHeader = 16

func main() {
	flag.Parse()
	if *storeFlag != "sim" && *storeFlag != "mem" {
		fatalf("-store %q: want sim or mem", *storeFlag)
	}
	if *latencyFlag < 0 || (*latencyFlag > 0 && *storeFlag != "sim") {
		fatalf("-latency %v: want a duration of 0 or more, with -store sim", *latencyFlag)
	}
	if *writesFlag < 1 {
		fatalf("-writes %d: want at least 1", *writesFlag)
	}
	var counts []int
	for f := range strings.SplitSeq(*entriesFlag, ",") {
		n, err := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(f), "_", ""))
		if err != nil || n < 1 {
			fatalf("-entries: %q is not a positive count", f)
		}
		counts = append(counts, n)
	}
	q, err := url.ParseQuery(*optsFlag)
	if err != nil {
		fatalf("-opts: %v", err)
	}
	query := *optsFlag
	location, ok := lookupFold(q, "location")
	if !ok {
		location = "bench"
		query = joinQuery("location="+location, query)
	}
	prefix := strings.Trim(location, "/")
	if prefix != "" {
		prefix += "/"
	}
	driver.Register(driver.Scheme{Name: "scalebench", Open: openCurrent})

	args := make([]string, len(os.Args)-1)
	for i, a := range os.Args[1:] {
		args[i] = shellQuote(a)
	}
	fmt.Printf("`go run ./internal/cmd/scalebench %s`\n\n", strings.Join(args, " "))
	fmt.Printf("%s, GOMAXPROCS=%d, %s; %d writes of %d-byte values per N, cache URL scalebench://store?%s&max_entries=N\n\n",
		runtime.Version(), runtime.GOMAXPROCS(0), time.Now().UTC().Format("2006-01-02"), *writesFlag, *valueFlag, query)
	fmt.Println("| store | entries | requests/write | max requests in a write | LIST pages | p50 write | p99 write | worst write | cull duration | client heap retained | client heap peak | store heap/entry | entries after | culls |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, n := range counts {
		done := make(chan string, 1)
		go func() { done <- run(n, prefix, query) }()
		select {
		case row := <-done:
			fmt.Println(row)
			if strings.Contains(row, "did not finish") {
				os.Exit(3)
			}
		case <-time.After(*timeoutFlag):
			fmt.Printf("| %s | %s | did not finish in %v (preload, writes and cull) | | | | | | | | | | | |\n", *storeFlag, count(n), *timeoutFlag)
			os.Exit(3)
		}
	}
}

// run measures one entry count and returns its table row.
func run(n int, prefix, query string) string {
	ctx := context.Background()
	base := liveHeap()

	// 1. A fresh store with n entries.
	progress("N=%d: preloading", n)
	start := time.Now()
	var (
		store  driver.Driver
		sim    *simstore.Store
		preErr error
	)
	switch *storeFlag {
	case "sim":
		sim = simstore.New()
		store = sim
		_, preErr = sim.Fill(simstore.EntryNames(prefix, n, *seedFlag), int64(*valueFlag+entryHeader), time.Now().Add(-time.Hour))
		sim.Latency = *latencyFlag
	case "mem":
		store = mem.New()
		preErr = preloadMem(ctx, store, query, n)
	}
	if preErr != nil {
		fatalf("N=%d: preload: %v", n, preErr)
	}
	storeHeap := liveHeap()
	progress("N=%d: preloaded in %v, store heap %s", n, time.Since(start).Round(time.Millisecond), bytes(storeHeap-base))

	// 2. The measured cache.
	setCurrent(store)
	c, err := cache.Open(ctx, "scalebench://store?"+joinQuery(query, "max_entries="+strconv.Itoa(n)))
	if err != nil {
		fatalf("N=%d: open: %v", n, err)
	}
	requests := func() (total, lists int64) {
		if sim != nil {
			cs := sim.Counts()
			return cs.Requests(), cs.Lists
		}
		s := c.Stats()
		return s.Reads + s.Writes + s.DeleteRequests + s.BatchDeletes + s.Lists, s.Lists
	}

	// 3. The writes, and the cull's end.
	value := make([]byte, *valueFlag)
	rand.Read(value)
	lat := make([]time.Duration, *writesFlag)
	var maxReqs int64
	var cullTook atomic.Int64 // nanoseconds from the first write's start; 0: not seen
	var cullSeen bool
	s0 := c.Stats()
	req0, list0 := requests()
	progress("N=%d: writing", n)
	use, err := memuse.Measure(func() error {
		first := time.Now()
		culled := func() bool {
			if cullTook.Load() != 0 {
				return true
			}
			if c.Stats().Culls > s0.Culls {
				cullTook.CompareAndSwap(0, int64(max(time.Since(first), 1)))
				return true
			}
			return false
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { // times a cull finishing in the background
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for !culled() {
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		})
		defer func() { close(stop); wg.Wait() }()
		for i := range lat {
			key := randomKey()
			before, _ := requests()
			t := time.Now()
			err := c.Set(ctx, key, value, cache.NoExpiry)
			lat[i] = time.Since(t)
			culled()
			after, _ := requests()
			maxReqs = max(maxReqs, after-before)
			if err != nil {
				return fmt.Errorf("write %d: %w", i+1, err)
			}
		}
		deadline := time.Now().Add(*cullTimeout)
		for !culled() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		cullSeen = culled()
		return nil
	})
	if err != nil {
		fatalf("N=%d: %v", n, err)
	}
	req1, list1 := requests()
	s1 := c.Stats()
	if sim != nil {
		if got := (s1.Reads + s1.Writes + s1.DeleteRequests + s1.BatchDeletes + s1.Lists) - (s0.Reads + s0.Writes + s0.DeleteRequests + s0.BatchDeletes + s0.Lists); got != req1-req0 {
			progress("N=%d: warning: the store counted %d requests, the cache's Stats %d", n, req1-req0, got)
		}
	}
	slices.Sort(lat)
	w := int64(len(lat))
	cull := "did not finish in " + cullTimeout.String()
	if cullSeen {
		cull = dur(time.Duration(cullTook.Load()))
	}

	// 4. What the cache holds: the heap with it, minus the heap without it.
	withCache := liveHeap()
	entriesAfter := "-"
	if cullSeen {
		// 5. Counted after the measurements: a listing of everything.
		if l, err := c.Len(ctx); err == nil {
			entriesAfter = strconv.Itoa(l)
		} else {
			entriesAfter = "error: " + err.Error()
		}
	}
	if cullSeen {
		c.Close() // the store stays open (see openCurrent)
	}
	c = nil
	storeOnly := liveHeap()
	setCurrent(nil)
	store.Close()
	retained := withCache - storeOnly

	return fmt.Sprintf("| %s | %s | %.2f | %d | %d | %s | %s | %s | %s | %s (%.1f B/entry) | %s | %.0f B | %s | %d |",
		*storeFlag, count(n), float64(req1-req0)/float64(w), maxReqs, list1-list0,
		dur(lat[len(lat)/2]), dur(lat[min(len(lat)-1, len(lat)*99/100)]), dur(lat[len(lat)-1]), cull,
		bytes(retained), float64(retained)/float64(n), bytes(int64(use.Peak)),
		float64(storeHeap-base)/float64(n), entriesAfter, s1.Culls-s0.Culls)
}

// preloadMem writes n entries of new keys through a cache with
// max_entries=0, which neither counts nor culls, from a few goroutines.
func preloadMem(ctx context.Context, store driver.Driver, query string, n int) error {
	setCurrent(store)
	defer setCurrent(nil)
	pre, err := cache.Open(ctx, "scalebench://store?"+joinQuery(query, "max_entries=0"))
	if err != nil {
		return err
	}
	defer pre.Close() // the store stays open
	value := make([]byte, *valueFlag)
	rand.Read(value)
	workers := 2 * runtime.GOMAXPROCS(0)
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := w; i < n; i += workers {
				if err := pre.Set(ctx, "preload-"+strconv.Itoa(i), value, cache.NoExpiry); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// The store the scalebench scheme opens: the one being measured.
var (
	currentMu sync.Mutex
	current   driver.Driver
)

func setCurrent(d driver.Driver) {
	currentMu.Lock()
	defer currentMu.Unlock()
	current = d
}

// openCurrent opens scalebench://store: the current store, wrapped so that
// closing the cache leaves it open (the command closes it once measured),
// with exactly the store's optional interfaces, so the cache behaves as
// over the store itself.
func openCurrent(_ context.Context, u *url.URL) (driver.Driver, error) {
	if u.RawQuery != "" || u.Host != "store" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("scalebench: %w: want scalebench://store and only cache options, not %q", driver.ErrInvalidOption, u.String())
	}
	currentMu.Lock()
	defer currentMu.Unlock()
	switch d := current.(type) {
	case nil:
		return nil, errors.New("scalebench: no store to open")
	case fullStore:
		return keepOpenFull{d}, nil
	case batchStore:
		return keepOpenBatch{d}, nil
	default:
		return nil, fmt.Errorf("scalebench: %T has capabilities this command does not wrap", d)
	}
}

// batchStore is internal/simstore's set of interfaces.
type batchStore interface {
	driver.Driver
	driver.BatchDeleter
}

// fullStore is drivers/mem's.
type fullStore interface {
	driver.Driver
	driver.BatchDeleter
	driver.Replacer
	driver.NameValidator
}

// keepOpenBatch and keepOpenFull hand a store to a cache that must not
// close it (the store outlives the cache, to be measured alone).
type keepOpenBatch struct{ batchStore }

// Close implements driver.Driver without closing the store.
func (keepOpenBatch) Close() error { return nil }

type keepOpenFull struct{ fullStore }

// Close implements driver.Driver without closing the store.
func (keepOpenFull) Close() error { return nil }

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() int64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

func randomKey() string {
	var b [16]byte
	rand.Read(b[:])
	return "key-" + hex.EncodeToString(b[:])
}

func lookupFold(q url.Values, name string) (string, bool) {
	for k, v := range q {
		if strings.EqualFold(k, name) {
			return v[0], true
		}
	}
	return "", false
}

func joinQuery(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "&" + b
}

// shellQuote quotes a for a POSIX shell when it holds more than letters,
// digits and -_=,./: (as a query's '&' does).
func shellQuote(a string) string {
	if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=,./:") == "" {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}

// count writes n as 10^k when it is a power of ten.
func count(n int) string {
	k := 0
	for m := n; m >= 10 && m%10 == 0; m /= 10 {
		k++
	}
	if n == pow10(k) && k >= 2 {
		return "10^" + strconv.Itoa(k)
	}
	return strconv.Itoa(n)
}

func pow10(k int) int {
	p := 1
	for range k {
		p *= 10
	}
	return p
}

// dur rounds a duration to three significant digits or so.
func dur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func bytes(b int64) string {
	f, sign := float64(b), ""
	if f < 0 {
		f, sign = -f, "-"
	}
	switch {
	case f >= 1<<30:
		return fmt.Sprintf("%s%.2f GiB", sign, f/(1<<30))
	case f >= 1<<20:
		return fmt.Sprintf("%s%.1f MiB", sign, f/(1<<20))
	case f >= 1<<10:
		return fmt.Sprintf("%s%.1f KiB", sign, f/(1<<10))
	}
	return fmt.Sprintf("%s%.0f B", sign, f)
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "scalebench: "+format+"\n", args...)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "scalebench: "+format+"\n", args...)
	os.Exit(1)
}
