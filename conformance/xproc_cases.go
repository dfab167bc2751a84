package conformance

// Cross-process cases: conditional writes raced by child processes on one
// store (see child.go for the machinery).
//
// A driver whose conditional write is atomic within a process (a mutex) but
// not across processes (a check, then a write) leaves a window of a few
// microseconds on a local disk, between its check and its rename. A race of
// a few processes once seldom hits it; so each case races
// crossProcessChildren processes for a few hundred rounds (see
// runChildRounds), each on an object of its own, each started in all
// children at one instant, and every round must have exactly one winner.
// The directory driver with such a fault (dirFaults) had several winners in
// 8 % to 63 % of the rounds over 30 runs on two cores, some hundreds of
// rounds a run, so it fails every run.

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
)

// crossProcessChildren returns how many child processes race: one a core,
// and at least 4 and at most 8. On two cores, the two children on the CPUs
// when a round starts race within microseconds, the others a slice later;
// more children only make the rounds longer.
func crossProcessChildren() int { return min(8, max(4, runtime.NumCPU())) }

// Round operations of the driver section.
const (
	childOpIfAbsent = "driver.if_absent" // round r: Write(args["prefix"]+r, raceContent(id), IfAbsent)
	childOpReplace  = "driver.replace"   // round r: Replace(args["prefix"]+r, raceContent(id), the round's argument as the ETag)
)

func init() {
	registerChildRounds(childOpIfAbsent, func(_ context.Context, d driver.Driver, req childRequest) (childRoundFunc, error) {
		body, prefix := raceContent(req.ID), req.Args["prefix"]
		return func(ctx context.Context, r int, _ string) (string, error) {
			return "", d.Write(ctx, prefix+strconv.Itoa(r), bytes.NewReader(body), &driver.WriteOptions{IfAbsent: true})
		}, nil
	})
	registerChildRounds(childOpReplace, func(_ context.Context, d driver.Driver, req childRequest) (childRoundFunc, error) {
		rep, ok := d.(driver.Replacer)
		if !ok {
			return nil, fmt.Errorf("driver %T opened by OpenLocator does not implement driver.Replacer", d)
		}
		body, prefix := raceContent(req.ID), req.Args["prefix"]
		return func(ctx context.Context, r int, etag string) (string, error) {
			return "", rep.Replace(ctx, prefix+strconv.Itoa(r), bytes.NewReader(body), etag, &driver.WriteOptions{})
		}, nil
	})
}

func testCrossProcessIfAbsent(e *env) {
	e.needAtomicIfAbsent()
	prefix := e.name("xproc/ifabsent/")
	n := crossProcessChildren()
	results, ran := e.runChildRounds(childOpIfAbsent, clauseIfAbsentRace, n, map[string]string{"prefix": prefix}, nil)
	what := fmt.Sprintf("%d processes racing Write(%q+round, IfAbsent) in each of %d rounds", n, prefix, ran)
	winners := e.checkRounds(what, clauseIfAbsentRace, refusedPrecondition, results, driverVerdict)
	e.checkWinnersContent(what, clauseIfAbsentRace, prefix, winners)
}

func testCrossProcessReplace(e *env) {
	d := e.driver()
	e.replacer(d)
	prefix := e.name("xproc/replace/")
	n := crossProcessChildren()
	// Each round's object is written just before the round, and its ETag
	// is the round's argument.
	results, ran := e.runChildRounds(childOpReplace, clauseReplaceRace, n, map[string]string{"prefix": prefix}, func(r int) string {
		name := prefix + strconv.Itoa(r)
		if err := d.Write(e.ctx, name, strings.NewReader("original "+name), &driver.WriteOptions{}); err != nil {
			e.t.Fatalf("Write(%q) before round %d: %v (%s)", name, r, err, clauseReplaceRace)
		}
		return e.etag(d, name)
	})
	what := fmt.Sprintf("%d processes racing Replace(%q+round) with the ETag of the round's object in each of %d rounds", n, prefix, ran)
	winners := e.checkRounds(what, clauseReplaceRace, refusedPrecondition, results, driverVerdict)
	e.checkWinnersContent(what, clauseReplaceRace, prefix, winners)
}

// raceVerdict is what one child did in one round of a race.
type raceVerdict int

const (
	raceWon     raceVerdict = iota // its conditional write succeeded
	raceRefused                    // it was refused, as all but one must be
	raceFailed                     // it failed otherwise
)

// refusedPrecondition is how a conditional driver write is refused.
const refusedPrecondition = "refused with ErrPreconditionFailed"

// driverVerdict judges a round of a conditional driver write: nil won,
// ErrPreconditionFailed was refused.
func driverVerdict(rr roundResult) raceVerdict {
	switch rr.Kind {
	case kindOK:
		return raceWon
	case kindPreconditionFailed:
		return raceRefused
	}
	return raceFailed
}

// maxRoundsReported is how many broken rounds a failure lists.
const maxRoundsReported = 10

// checkRounds checks every round of a race: exactly one child won and the
// others were refused (as refused says), as verdict judges each child's
// round. It reports the broken rounds in one failure citing clause, and
// returns each round's winner, -1 for a round without exactly one.
func (e *env) checkRounds(what, clause, refused string, results [][]roundResult, verdict func(roundResult) raceVerdict) []int {
	e.t.Helper()
	rounds := len(results[0])
	winners := make([]int, rounds)
	var broken []string
	several, none, failed := 0, 0, 0
	for r := range rounds {
		var won []int
		var fails []string
		for id, rs := range results {
			switch verdict(rs[r]) {
			case raceWon:
				won = append(won, id)
			case raceFailed:
				if rs[r].Kind == kindOK {
					fails = append(fails, fmt.Sprintf("child %d returned %q", id, rs[r].Value))
				} else {
					fails = append(fails, fmt.Sprintf("child %d failed: %v", id, rs[r].error(id)))
				}
			}
		}
		winners[r] = -1
		var why []string
		switch len(won) {
		case 1:
			winners[r] = won[0]
		case 0:
			none++
			why = append(why, "no child succeeded")
		case 2:
			several++
			why = append(why, fmt.Sprintf("children %v both succeeded", won))
		default:
			several++
			why = append(why, fmt.Sprintf("children %v all succeeded", won))
		}
		if len(fails) > 0 {
			failed++
			why = append(why, fails...)
		}
		if len(why) > 0 {
			broken = append(broken, fmt.Sprintf("round %d: %s", r, strings.Join(why, ", ")))
		}
	}
	if len(broken) == 0 {
		return winners
	}
	var counts []string
	if several > 0 {
		counts = append(counts, fmt.Sprintf("%d with several winners", several))
	}
	if none > 0 {
		counts = append(counts, fmt.Sprintf("%d without a winner", none))
	}
	if failed > 0 {
		counts = append(counts, fmt.Sprintf("%d with a child neither succeeding nor %s", failed, refused))
	}
	total, more := len(broken), ""
	if total > maxRoundsReported {
		more = fmt.Sprintf("; and %d more rounds", len(broken)-maxRoundsReported)
		broken = broken[:maxRoundsReported]
	}
	e.t.Errorf("%s: %d of %d rounds broken (%s); want in each round exactly one child succeeding and the others %s:\n\t%s%s\n(%s)",
		what, total, rounds, strings.Join(counts, ", "), refused, strings.Join(broken, "\n\t"), more, clause)
	return winners
}

// checkWinnersContent checks that the object of every round with one winner
// (prefix+round) holds the winner's raceContent.
func (e *env) checkWinnersContent(what, clause, prefix string, winners []int) {
	e.t.Helper()
	d := e.driver()
	var wrong []string
	for r, w := range winners {
		if w < 0 {
			continue
		}
		name := prefix + strconv.Itoa(r)
		got, _, err := d.Read(e.ctx, name, 0, -1)
		if err != nil {
			wrong = append(wrong, fmt.Sprintf("round %d: Read(%q): %v", r, name, err))
		} else if want := raceContent(w); !bytes.Equal(got, want) {
			wrong = append(wrong, fmt.Sprintf("round %d: Read(%q) = %s, want child %d's %s", r, name, brief(got), w, brief(want)))
		}
	}
	if len(wrong) > 0 {
		n := len(wrong)
		e.t.Errorf("%s: %d rounds do not hold what their one winner wrote:\n\t%s\n(%s)", what, n, strings.Join(wrong[:min(n, maxRoundsReported)], "\n\t"), clause)
	}
}

// Cross-process cache operations.
const (
	childOpCacheAdd  = "cache.add"  // round r: Add(args["key"]+r, "racer-<id>") at args["location"]; value "true"/"false"
	childOpCacheIncr = "cache.incr" // one-shot: args["n"] times Incr(args["key"], 1) at args["location"]
)

func init() {
	// Culling is off: an Add race writes up to maxRounds keys, more than
	// the default 300 entries, and a cull would remove winners' entries.
	open := func(d driver.Driver, req childRequest) (*cache.Cache, error) {
		return cache.New(d, cache.WithLocation(req.Args["location"]), cache.WithMaxEntries(0))
	}
	registerChildRounds(childOpCacheAdd, func(_ context.Context, d driver.Driver, req childRequest) (childRoundFunc, error) {
		c, err := open(d, req)
		if err != nil {
			return nil, err
		}
		value, key := []byte(fmt.Sprint("racer-", req.ID)), req.Args["key"]
		return func(ctx context.Context, r int, _ string) (string, error) {
			added, err := c.Add(ctx, key+strconv.Itoa(r), value, cache.DefaultTTL)
			return strconv.FormatBool(added), err
		}, nil
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

func caseCacheCrossProcessAdd(e *env) {
	e.needAtomicIfAbsent()
	c := e.cache()
	const key = "contested-"
	n := crossProcessChildren()
	results, ran := e.runChildRounds(childOpCacheAdd, clauseCacheAdd, n, map[string]string{"location": e.location(), "key": key}, nil)
	what := fmt.Sprintf("%d processes racing Add(%q+round) in each of %d rounds", n, key, ran)
	winners := e.checkRounds(what, clauseCacheAdd, "reporting false", results, func(rr roundResult) raceVerdict {
		switch {
		case rr.Kind != kindOK:
			return raceFailed
		case rr.Value == "true":
			return raceWon
		case rr.Value == "false":
			return raceRefused
		}
		return raceFailed
	})
	var wrong []string
	for r, w := range winners {
		if w < 0 {
			continue
		}
		k := key + strconv.Itoa(r)
		got, err := c.Get(e.ctx, k)
		if want := fmt.Sprint("racer-", w); err != nil || string(got) != want {
			wrong = append(wrong, fmt.Sprintf("round %d: Get(%q) = %q, %v; want %q, the one child that added", r, k, got, err, want))
		}
	}
	if len(wrong) > 0 {
		e.t.Errorf("%s: %d keys do not hold what their one winner added:\n\t%s\n(%s)", what, len(wrong), strings.Join(wrong[:min(len(wrong), maxRoundsReported)], "\n\t"), clauseCacheAdd)
	}
}

func caseCacheCrossProcessIncr(e *env) {
	if _, ok := e.driver().(driver.Replacer); !ok {
		e.t.Skipf("driver does not implement driver.Replacer: Incr is not atomic across processes there")
	}
	const children, each = 8, 20
	c := e.cache()
	if err := c.Set(e.ctx, "counter", []byte("0"), cache.NoExpiry); err != nil {
		e.t.Fatalf("Set(%q, 0) before the race: %v (%s)", "counter", err, clauseIncr)
	}
	results := e.runChildren(childOpCacheIncr, clauseIncr, children, map[string]string{"location": e.location(), "key": "counter", "n": strconv.Itoa(each)})
	for _, r := range results {
		if err := r.error(); err != nil {
			e.t.Fatalf("%d processes each making %d Incr(%q, 1): %v (%s)", children, each, "counter", err, clauseIncr)
		}
	}
	want := strconv.Itoa(children * each)
	if got, err := c.Get(e.ctx, "counter"); err != nil || string(got) != want {
		e.t.Errorf("%d processes each made %d Incr(%q, 1): Get = %q, %v; want %s, no increment lost (%s)", children, each, "counter", got, err, want, clauseIncr)
	}
}
