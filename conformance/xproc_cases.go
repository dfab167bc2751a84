package conformance

// Cross-process cases: conditional writes raced by child processes on one
// store (see child.go for the machinery).

import (
	"context"
	"fmt"
	"strconv"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
)

// crossProcessChildren is how many child processes race.
const crossProcessChildren = 8

func testCrossProcessIfAbsent(e *env) {
	e.needAtomicIfAbsent()
	name := e.name("xproc/ifabsent")
	results := e.runChildren(childOpIfAbsent, crossProcessChildren, map[string]string{"name": name})
	e.checkChildRace(fmt.Sprintf("%d processes racing Write(%q, IfAbsent)", crossProcessChildren, name), name, results)
}

func testCrossProcessReplace(e *env) {
	d := e.driver()
	e.replacer(d)
	name := e.name("xproc/replace")
	e.write(d, name, []byte("original"))
	tag := e.etag(d, name)
	results := e.runChildren(childOpReplace, crossProcessChildren, map[string]string{"name": name, "etag": tag})
	e.checkChildRace(fmt.Sprintf("%d processes racing Replace(%q) with one ETag", crossProcessChildren, name), name, results)
}

// checkChildRace checks the results of child processes racing conditional
// writes of raceContent(id) to name.
func (e *env) checkChildRace(what, name string, results []childResult) {
	e.t.Helper()
	errs := make([]error, len(results))
	for i, r := range results {
		errs[i] = r.error()
	}
	if w := e.raceOutcome(what, errs); w >= 0 {
		e.wantContent(e.driver(), name, raceContent(w))
	}
}

// Cross-process cache operations.
const (
	childOpCacheAdd  = "cache.add"  // Add(args["key"], "racer-<id>") at args["location"]; value "true"/"false"
	childOpCacheIncr = "cache.incr" // args["n"] times Incr(args["key"], 1) at args["location"]
)

func init() {
	open := func(d driver.Driver, req childRequest) (*cache.Cache, error) {
		return cache.New(d, cache.WithLocation(req.Args["location"]))
	}
	registerChildOp(childOpCacheAdd, func(ctx context.Context, d driver.Driver, req childRequest) (string, error) {
		c, err := open(d, req)
		if err != nil {
			return "", err
		}
		added, err := c.Add(ctx, req.Args["key"], []byte(fmt.Sprint("racer-", req.ID)), cache.DefaultTTL)
		return strconv.FormatBool(added), err
	})
	registerChildOp(childOpCacheIncr, func(ctx context.Context, d driver.Driver, req childRequest) (string, error) {
		c, err := open(d, req)
		if err != nil {
			return "", err
		}
		n, _ := strconv.Atoi(req.Args["n"])
		for range n {
			if _, err := c.Incr(ctx, req.Args["key"], 1); err != nil {
				return "", err
			}
		}
		return "", nil
	})
}

const cacheChildren = 8

func caseCacheCrossProcessAdd(e *env) {
	e.needAtomicIfAbsent()
	c := e.cache()
	results := e.runChildren(childOpCacheAdd, cacheChildren, map[string]string{"location": e.location(), "key": "contested"})
	added := make([]bool, len(results))
	errs := make([]error, len(results))
	for i, r := range results {
		added[i], errs[i] = r.Value == "true", r.error()
	}
	e.checkAddRace(c, "contested", added, errs)
}

func caseCacheCrossProcessIncr(e *env) {
	if _, ok := e.driver().(driver.Replacer); !ok {
		e.t.Skipf("driver does not implement driver.Replacer: Incr is not atomic across processes there")
	}
	const each = 20
	c := e.cache()
	e.must(c.Set(e.ctx, "counter", []byte("0"), cache.NoExpiry))
	results := e.runChildren(childOpCacheIncr, cacheChildren, map[string]string{"location": e.location(), "key": "counter", "n": strconv.Itoa(each)})
	for _, r := range results {
		if err := r.error(); err != nil {
			e.t.Fatalf("child %d: %v", r.ID, err)
		}
	}
	e.wantGet(c, "counter", strconv.Itoa(cacheChildren*each))
}
