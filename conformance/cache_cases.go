package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
)

// RunCache runs only the cache section of the suite (subtest "Cache"): a
// *cache.Cache over the driver keeps Django's semantics — expiry, culling,
// prefix-safe clearing, atomic Add and Incr, corrupt entries as misses. [Run]
// calls it after the driver section.
func RunCache(t *testing.T, maker HarnessMaker) {
	t.Helper()
	if runChild(t, maker) {
		return
	}
	runName := t.Name()
	t.Run("Cache", func(t *testing.T) {
		runCases(t, maker, runName, cacheCases)
	})
}

// RunCacheWith runs the cache section as [RunCache] does, in a subtest of
// the given name, with opts first among the options of every cache its
// cases open in this process (the child processes of the cross-process
// cases open theirs without them): to prove that the cache keeps its
// semantics with an option on, such as cache.WithLocalTier.
func RunCacheWith(t *testing.T, maker HarnessMaker, name string, opts ...cache.Option) {
	t.Helper()
	if runChild(t, maker) {
		return
	}
	runName := t.Name()
	t.Run(name, func(t *testing.T) {
		runCases(t, maker, runName, cacheCases, opts...)
	})
}

var cacheCases = []driverCase{
	{"Basics", `cache: Get "returns key's value"; Set "stores value under key ... replacing any entry"; Add "stores value under key only if the key has no live entry"`, caseCacheBasics},
	{"Expiry", `cache: Get "returns an error satisfying errors.Is(err, ErrMiss) when the key has no live entry" once its TTL has passed`, caseCacheExpiry},
	{"DjangoCulling", `cache: WithMaxEntries "the number of entries at which a write first culls the cache (Django's MAX_ENTRIES)", with Django's own culling test`, caseCacheDjangoCulling},
	{"ClearIsPrefixSafe", `cache: Clear "deletes every entry under the cache's location and nothing outside it"`, caseCacheClearIsPrefixSafe},
	{"ClearManyPages", clauseClear, caseCacheClearManyPages},
	{"CullOldest", clauseOldest, caseCacheCullOldest},
	{"CullSparesForeignObjects", `cache: culling removes only the cache's own entries, never another object under its location`, caseCacheCullSparesForeign},
	{"OnlyEntries", `cache: only entries are the cache's (Clear, Len, Cull, culling)`, caseCacheOnlyEntries},
	{"HiddenLocation", `cache: an object named like the location never makes Clear a silent no-op`, caseCacheHiddenLocation},
	{"CorruptEntries", `cache: ErrMiss "means the key has no live entry: it is absent, expired, or its entry could not be decoded"`, caseCacheCorruptEntries},
	{"Incr", `cache: Incr "adds delta to key's integer value and returns the result ... keeps its expiry. It returns ErrMiss when" the key has no live entry`, caseCacheIncr},
	{"ManyOps", `cache: GetMany, SetMany and DeleteMany behave as Get, Set and Delete of each key`, caseCacheMany},
	{"GetOrSet", `cache: GetOrSet "returns key's value; on a miss it calls fill, stores the result with Add semantics"`, caseCacheGetOrSet},
	{"Gzip", `cache: values compressed with gzip are stored and returned unchanged`, caseCacheGzip},
	{"AddRace", `cache: Add: "The check and the write are one atomic step": of racing Adds of one key, exactly one reports true`, caseCacheAddRace},
	{"AddRaceOverExpired", `cache: Add over an expired entry is atomic where the driver is a Replacer`, caseCacheAddRaceOverExpired},
	{"IncrRace", `cache: Incr is atomic where the driver is a Replacer: no increment of racing callers is lost`, caseCacheIncrRace},
	{"CrossProcessAdd", clauseCacheAdd, caseCacheCrossProcessAdd},
	{"CrossProcessIncr", clauseIncr, caseCacheCrossProcessIncr},
	{"CrossProcessFleetFill", clauseFleetFill, caseCacheCrossProcessFleetFill},
	{"StaleWhileRevalidate", clauseStale, caseCacheStaleWhileRevalidate},
	{"Lock", clauseLock, caseCacheLock},
	{"Increment", clauseIncrement, caseCacheIncrement},
}

// manualClock is a manual clock for cache expiry tests, safe for concurrent use.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

// newManualClock returns a clock set to a fixed instant.
func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// Now returns the clock's time; pass it to cache.WithClock.
func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// location is the cache location of a case: "cache" under the variant prefix.
func (e *env) location() string { return e.name("cache") }

// cache returns a cache at the case's location over a new driver on the
// harness's store.
func (e *env) cache(opts ...cache.Option) *cache.Cache {
	e.t.Helper()
	return e.newCache(e.driver(), append([]cache.Option{cache.WithLocation(e.location())}, opts...)...)
}

// newCache is cache.New over d with the case's cacheOpts first, failing the
// case on error.
func (e *env) newCache(d driver.Driver, opts ...cache.Option) *cache.Cache {
	e.t.Helper()
	c, err := cache.New(d, append(slices.Clone(e.cacheOpts), opts...)...)
	if err != nil {
		e.t.Fatalf("cache.New: %v", err)
	}
	return c
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("%v", err)
	}
}

func (e *env) wantGet(c *cache.Cache, key, want string) {
	e.t.Helper()
	got, err := c.Get(e.ctx, key)
	if err != nil {
		e.t.Fatalf("Get(%q): %v, want %q", key, err, want)
	}
	if string(got) != want {
		e.t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func (e *env) wantMiss(c *cache.Cache, key string) {
	e.t.Helper()
	if got, err := c.Get(e.ctx, key); !errors.Is(err, cache.ErrMiss) {
		e.t.Fatalf("Get(%q) = %q, %v; want ErrMiss", key, got, err)
	}
}

func (e *env) wantLen(c *cache.Cache, want int) {
	e.t.Helper()
	n, err := c.Len(e.ctx)
	if err != nil {
		e.t.Fatalf("Len: %v", err)
	}
	if n != want {
		e.t.Fatalf("Len = %d, want %d; %s", n, want, e.describeLocation(c))
	}
}

// describeLocation says what the cache's location holds, for a failure
// message: how many objects, how many of them entries, and the first names.
func (e *env) describeLocation(c *cache.Cache) string {
	var names []string
	entries := 0
	token := ""
	for range maxListPages {
		page, err := c.Driver().List(e.ctx, &driver.ListOptions{Prefix: c.Location(), PageToken: token})
		if err != nil {
			return fmt.Sprintf("listing the location: %v", err)
		}
		for _, o := range page.Objects {
			names = append(names, o.Name)
			if c.IsEntryName(o.Name) {
				entries++
			}
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	const show = 12
	total, more := len(names), ""
	if len(names) > show {
		more = fmt.Sprintf(" and %d more", len(names)-show)
		names = names[:show]
	}
	return fmt.Sprintf("the location %q holds %d objects listed, %d of them entries: %q%s", c.Location(), total, entries, names, more)
}

func (e *env) wantBool(what string, got bool, err error, want bool) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
	if got != want {
		e.t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func caseCacheBasics(e *env) {
	c := e.cache()
	e.wantMiss(c, "absent")
	ok, err := c.Has(e.ctx, "absent")
	e.wantBool(`Has("absent")`, ok, err, false)

	e.must(c.Set(e.ctx, "k", []byte("v1"), cache.DefaultTTL))
	e.wantGet(c, "k", "v1")
	e.must(c.Set(e.ctx, "k", []byte("v2"), cache.DefaultTTL))
	e.wantGet(c, "k", "v2")
	ok, err = c.Has(e.ctx, "k")
	e.wantBool(`Has("k")`, ok, err, true)

	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	for key, v := range map[string][]byte{"empty": {}, "binary": binary, "": []byte("empty key"), "ключ/with spaces & ?": []byte("any key")} {
		e.must(c.Set(e.ctx, key, v, cache.DefaultTTL))
		e.wantGet(c, key, string(v))
	}

	added, err := c.Add(e.ctx, "k", []byte("other"), cache.DefaultTTL)
	e.wantBool(`Add over a live entry`, added, err, false)
	e.wantGet(c, "k", "v2")
	added, err = c.Add(e.ctx, "new", []byte("n"), cache.DefaultTTL)
	e.wantBool(`Add of a new key`, added, err, true)
	e.wantGet(c, "new", "n")

	deleted, err := c.Delete(e.ctx, "k")
	e.wantBool(`Delete of a live entry`, deleted, err, true)
	deleted, err = c.Delete(e.ctx, "k")
	e.wantBool(`Delete of an absent entry`, deleted, err, false)
	e.wantMiss(c, "k")
	added, err = c.Add(e.ctx, "k", []byte("again"), cache.DefaultTTL)
	e.wantBool(`Add after Delete`, added, err, true)
	e.wantGet(c, "k", "again")

	touched, err := c.Touch(e.ctx, "k", time.Hour)
	e.wantBool(`Touch of a live entry`, touched, err, true)
	e.wantGet(c, "k", "again")
	touched, err = c.Touch(e.ctx, "absent", time.Hour)
	e.wantBool(`Touch of an absent entry`, touched, err, false)

	// A second cache on the same location (another process, say) sees it all.
	other := e.cache()
	e.wantGet(other, "k", "again")
	e.wantLen(other, 6)
}

func caseCacheExpiry(e *env) {
	clk := newManualClock()
	d := e.driver()
	c := e.newCache(d, cache.WithLocation(e.location()), cache.WithClock(clk.Now), cache.WithDefaultTTL(time.Minute))
	e.must(c.Set(e.ctx, "short", []byte("s"), time.Second))
	e.must(c.Set(e.ctx, "default", []byte("d"), cache.DefaultTTL))
	e.must(c.Set(e.ctx, "forever", []byte("f"), cache.NoExpiry))
	e.must(c.Set(e.ctx, "n", []byte("10"), 30*time.Second))
	e.wantGet(c, "short", "s")

	clk.Advance(time.Second)
	e.wantMiss(c, "short")
	// Reading an expired entry deletes it.
	e.wantAbsent(d, c.ObjectName("short"))
	e.wantLen(c, 3)

	// Incr keeps the expiry; Touch replaces it.
	n, err := c.Incr(e.ctx, "n", 5)
	if err != nil || n != 15 {
		e.t.Fatalf("Incr = %d, %v; want 15", n, err)
	}
	clk.Advance(29 * time.Second) // t = 30s: "n" expires now
	if _, err := c.Incr(e.ctx, "n", 1); !errors.Is(err, cache.ErrMiss) {
		e.t.Fatalf("Incr after the expiry Incr kept: %v, want ErrMiss", err)
	}
	touched, err := c.Touch(e.ctx, "default", time.Hour)
	e.wantBool("Touch", touched, err, true)
	clk.Advance(time.Minute) // past the default TTL, within the touched one
	e.wantGet(c, "default", "d")
	ok, err := c.Has(e.ctx, "forever")
	e.wantBool("Has(forever)", ok, err, true)

	// An expired entry is absent for Add, Has, Touch and Delete.
	e.must(c.Set(e.ctx, "e", []byte("old"), time.Second))
	clk.Advance(time.Second)
	ok, err = c.Has(e.ctx, "e")
	e.wantBool("Has(expired)", ok, err, false)
	e.must(c.Set(e.ctx, "e", []byte("old"), time.Second))
	clk.Advance(time.Second)
	touched, err = c.Touch(e.ctx, "e", time.Hour)
	e.wantBool("Touch(expired)", touched, err, false)
	e.must(c.Set(e.ctx, "e", []byte("old"), time.Second))
	clk.Advance(time.Second)
	deleted, err := c.Delete(e.ctx, "e")
	e.wantBool("Delete(expired)", deleted, err, false)
	e.must(c.Set(e.ctx, "e", []byte("old"), time.Second))
	clk.Advance(time.Second)
	added, err := c.Add(e.ctx, "e", []byte("new"), cache.DefaultTTL)
	e.wantBool("Add over an expired entry", added, err, true)
	e.wantGet(c, "e", "new")

	if err := c.Set(e.ctx, "bad", []byte("x"), -5*time.Second); !errors.Is(err, cache.ErrInvalidTTL) {
		e.t.Fatalf("Set with a negative TTL: %v, want ErrInvalidTTL", err)
	}
}

// caseCacheDjangoCulling is Django's own culling test: 49 sets into a cache of
// 30 entries leave 29 with cull frequency 3 and 19 with frequency 0.
func caseCacheDjangoCulling(e *env) {
	for _, tt := range []struct{ freq, want int }{{3, 29}, {0, 19}} {
		loc := fmt.Sprintf("%s-f%d", e.location(), tt.freq)
		c := e.newCache(e.driver(), cache.WithLocation(loc), cache.WithMaxEntries(30), cache.WithCullFrequency(tt.freq))
		for i := 1; i < 50; i++ {
			e.must(c.Set(e.ctx, strconv.Itoa(i), []byte("value"), cache.DefaultTTL))
		}
		e.wantLen(c, tt.want)
		// The last key set always survives: culling runs before the write.
		e.wantGet(c, "49", "value")
	}
}

// foreign objects sit beside and around the location; the cache must never
// list, count, cull or clear them.
func (e *env) writeForeign(d driver.Driver) map[string][]byte {
	loc := e.location()
	foreign := map[string][]byte{
		loc + "2/x":               []byte("sibling folder"),
		loc + "x":                 []byte("sibling object"),
		loc + ".x":                []byte("sorts before loc/"),
		e.name("other/" + "obj"):  []byte("elsewhere"),
		e.name("a-" + "cache/ab"): []byte("suffix match"),
	}
	if e.folderObjects() {
		foreign[loc] = []byte("object named like the location")
	}
	for name, v := range foreign {
		e.write(d, name, v)
	}
	return foreign
}

func (e *env) checkForeign(d driver.Driver, foreign map[string][]byte) {
	e.t.Helper()
	for name, v := range foreign {
		e.wantContent(d, name, v)
	}
}

func caseCacheClearIsPrefixSafe(e *env) {
	d := e.driver()
	foreign := e.writeForeign(d)
	c := e.cache(cache.WithMaxEntries(0))
	for i := range 60 {
		e.must(c.Set(e.ctx, fmt.Sprint("key", i), []byte("v"), cache.DefaultTTL))
	}
	e.wantLen(c, 60)
	e.must(c.Clear(e.ctx))
	e.wantLen(c, 0)
	e.wantMiss(c, "key1")
	e.checkForeign(d, foreign)
	// The cache works after Clear, and clearing an empty cache is fine.
	e.must(c.Set(e.ctx, "after", []byte("v"), cache.DefaultTTL))
	e.wantLen(c, 1)
	e.must(c.Clear(e.ctx))
	e.must(c.Clear(e.ctx))
	e.checkForeign(d, foreign)
}

func caseCacheCullSparesForeign(e *env) {
	d := e.driver()
	foreign := e.writeForeign(d)
	c := e.cache(cache.WithMaxEntries(10), cache.WithCullFrequency(0))
	for i := range 35 {
		e.must(c.Set(e.ctx, fmt.Sprint("key", i), []byte("v"), cache.DefaultTTL))
	}
	// Culls (removing all) at the 11th, 21st and 31st set: 5 remain.
	e.wantLen(c, 5)
	e.checkForeign(d, foreign)
	n, err := c.Cull(e.ctx)
	if err != nil || n != 5 {
		e.t.Fatalf("Cull = %d, %v; want 5", n, err)
	}
	e.checkForeign(d, foreign)
}

func caseCacheCorruptEntries(e *env) {
	d := e.driver()
	c := e.cache()
	junk := map[string]string{
		"empty":     "",
		"short":     "BCE",
		"pickle":    "\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00\x8c\x07value\x94.",
		"version 9": "BCE1\x09\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00v",
		"gzip flag": "BCE1\x01\x01\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00not gzip",
	}
	// A gzip entry whose header is fine but whose deflate stream is cut.
	zc := e.cache(cache.WithGzip(true))
	e.must(zc.Set(e.ctx, "truncated gzip", bytes.Repeat([]byte("compressible "), 100), cache.DefaultTTL))
	whole, _ := e.read(d, c.ObjectName("truncated gzip"))
	junk["truncated gzip"] = string(whole[:len(whole)-12])
	for key, data := range junk {
		name := c.ObjectName(key)
		e.write(d, name, []byte(data))
		e.wantMiss(c, key)
		e.wantAbsent(d, name) // deleted on read
		e.write(d, name, []byte(data))
		if _, err := c.Incr(e.ctx, key, 1); !errors.Is(err, cache.ErrMiss) {
			e.t.Fatalf("Incr on corrupt entry %s: %v, want ErrMiss", key, err)
		}
		if key == "truncated gzip" {
			// Has and Add read only the header (a range read): a body that
			// fails to decompress is found by the reads of the value.
			continue
		}
		e.write(d, name, []byte(data))
		added, err := c.Add(e.ctx, key, []byte("fresh"), cache.DefaultTTL)
		e.wantBool("Add over corrupt entry "+key, added, err, true)
		e.wantGet(c, key, "fresh")
	}
}

func caseCacheIncr(e *env) {
	c := e.cache()
	if _, err := c.Incr(e.ctx, "absent", 1); !errors.Is(err, cache.ErrMiss) {
		e.t.Fatalf("Incr(absent): %v, want ErrMiss", err)
	}
	e.must(c.Set(e.ctx, "n", []byte("41"), cache.DefaultTTL))
	for _, step := range []struct {
		op    string
		delta int64
		want  int64
	}{{"incr", 1, 42}, {"incr", 0, 42}, {"incr", -50, -8}, {"decr", 2, -10}, {"decr", -20, 10}} {
		var n int64
		var err error
		if step.op == "incr" {
			n, err = c.Incr(e.ctx, "n", step.delta)
		} else {
			n, err = c.Decr(e.ctx, "n", step.delta)
		}
		if err != nil || n != step.want {
			e.t.Fatalf("%s(%d) = %d, %v; want %d", step.op, step.delta, n, err, step.want)
		}
	}
	e.wantGet(c, "n", "10") // stored as base-10 text
	for _, v := range []string{"abc", "1.5", " 5", "", "99999999999999999999"} {
		e.must(c.Set(e.ctx, "bad", []byte(v), cache.DefaultTTL))
		if _, err := c.Incr(e.ctx, "bad", 1); !errors.Is(err, cache.ErrNotInteger) {
			e.t.Fatalf("Incr on %q: %v, want ErrNotInteger", v, err)
		}
		e.wantGet(c, "bad", v)
	}
	e.must(c.Set(e.ctx, "big", []byte(strconv.FormatInt(1<<62, 10)), cache.DefaultTTL))
	if _, err := c.Incr(e.ctx, "big", 1<<62); !errors.Is(err, cache.ErrOverflow) {
		e.t.Fatalf("Incr overflow: %v, want ErrOverflow", err)
	}
	e.wantGet(c, "big", strconv.FormatInt(1<<62, 10))
}

func caseCacheMany(e *env) {
	c := e.cache()
	items := map[string][]byte{}
	var keys []string
	for i := range 40 {
		k := fmt.Sprint("m", i)
		items[k] = []byte(strings.Repeat(k, i))
		keys = append(keys, k)
	}
	e.must(c.SetMany(e.ctx, items, cache.DefaultTTL))
	got, err := c.GetMany(e.ctx, append(keys, "absent1", "absent2"))
	e.must(err)
	if len(got) != len(items) {
		e.t.Fatalf("GetMany returned %d values, want %d", len(got), len(items))
	}
	for k, v := range items {
		if !bytes.Equal(got[k], v) {
			e.t.Fatalf("GetMany[%q] = %q, want %q", k, got[k], v)
		}
	}
	e.must(c.DeleteMany(e.ctx, append(keys[:30:30], "absent")))
	e.wantLen(c, 10)
	got, err = c.GetMany(e.ctx, keys)
	e.must(err)
	if len(got) != 10 {
		e.t.Fatalf("GetMany after DeleteMany: %d values, want 10", len(got))
	}
}

func caseCacheGetOrSet(e *env) {
	c := e.cache()
	calls := 0
	fill := func(context.Context) ([]byte, error) { calls++; return []byte("filled"), nil }
	for range 3 {
		v, err := c.GetOrSet(e.ctx, "k", cache.DefaultTTL, fill)
		if err != nil || string(v) != "filled" {
			e.t.Fatalf("GetOrSet = %q, %v", v, err)
		}
	}
	if calls != 1 {
		e.t.Fatalf("fill called %d times, want 1", calls)
	}
	e.must(c.Set(e.ctx, "k", []byte("set"), cache.DefaultTTL))
	v, err := c.GetOrSet(e.ctx, "k", cache.DefaultTTL, fill)
	if err != nil || string(v) != "set" {
		e.t.Fatalf("GetOrSet on a hit = %q, %v", v, err)
	}
}

func caseCacheGzip(e *env) {
	zipped := e.cache(cache.WithGzip(true))
	plain := e.cache()
	v := []byte(strings.Repeat("compressible ", 1000))
	e.must(zipped.Set(e.ctx, "z", v, cache.DefaultTTL))
	e.must(plain.Set(e.ctx, "p", v, cache.DefaultTTL))
	// Each reads what the other wrote: the entry records its encoding.
	e.wantGet(plain, "z", string(v))
	e.wantGet(zipped, "p", string(v))
	d := e.driver()
	_, za, err := d.Read(e.ctx, zipped.ObjectName("z"), 0, -1)
	e.must(err)
	if za.Size >= int64(len(v))/4 {
		e.t.Fatalf("gzip entry is %d bytes for a %d-byte compressible value", za.Size, len(v))
	}
	n, err := zipped.Incr(e.ctx, "n", 1)
	if !errors.Is(err, cache.ErrMiss) {
		e.t.Fatalf("Incr absent: %d %v", n, err)
	}
	e.must(zipped.Set(e.ctx, "n", []byte("1"), cache.DefaultTTL))
	if n, err := plain.Incr(e.ctx, "n", 1); n != 2 || err != nil {
		e.t.Fatalf("Incr across gzip settings = %d, %v", n, err)
	}
}

// raceCaches returns n caches on the location, each over its own driver, as n
// processes would have.
func (e *env) raceCaches(n int, opts ...cache.Option) []*cache.Cache {
	cs := make([]*cache.Cache, n)
	for i := range cs {
		cs[i] = e.cache(opts...)
	}
	return cs
}

const cacheRacers = 32

func (e *env) checkAddRace(c *cache.Cache, key string, added []bool, errs []error) {
	e.t.Helper()
	winner := -1
	for i := range added {
		if errs[i] != nil {
			e.t.Fatalf("racer %d: Add: %v", i, errs[i])
		}
		if added[i] {
			if winner >= 0 {
				e.t.Fatalf("Add race: racers %d and %d both added", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		e.t.Fatalf("Add race: nobody added")
	}
	e.wantGet(c, key, fmt.Sprint("racer-", winner))
}

func (e *env) addRace(cs []*cache.Cache, key string) {
	added := make([]bool, len(cs))
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range cs {
		wg.Go(func() {
			<-start
			added[i], errs[i] = c.Add(e.ctx, key, []byte(fmt.Sprint("racer-", i)), cache.DefaultTTL)
		})
	}
	close(start)
	wg.Wait()
	e.checkAddRace(cs[0], key, added, errs)
}

func caseCacheAddRace(e *env) {
	e.needAtomicIfAbsent()
	e.addRace(e.raceCaches(cacheRacers), "contested")
}

func caseCacheAddRaceOverExpired(e *env) {
	if _, ok := e.driver().(driver.Replacer); !ok {
		e.t.Skipf("driver does not implement driver.Replacer: Add over an expired entry is not atomic there")
	}
	clk := newManualClock()
	cs := e.raceCaches(cacheRacers, cache.WithClock(clk.Now))
	e.must(cs[0].Set(e.ctx, "contested", []byte("stale"), time.Second))
	clk.Advance(2 * time.Second)
	e.addRace(cs, "contested")
}

func caseCacheIncrRace(e *env) {
	if _, ok := e.driver().(driver.Replacer); !ok {
		e.t.Skipf("driver does not implement driver.Replacer: Incr is not atomic across processes there")
	}
	const racers, each = 8, 25
	cs := e.raceCaches(racers)
	e.must(cs[0].Set(e.ctx, "counter", []byte("0"), cache.NoExpiry))
	var wg sync.WaitGroup
	errs := make(chan error, racers*each)
	for _, c := range cs {
		wg.Go(func() {
			for range each {
				if _, err := c.Incr(e.ctx, "counter", 1); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatalf("Incr during race: %v", err)
	}
	e.wantGet(cs[0], "counter", strconv.Itoa(racers*each))
}
