package conformance

// Cross-process machinery.
//
// A cross-process case calls env.runChildren or env.runChildRounds, which
// re-execute the test binary n times with -test.run selecting the test that
// called Run and these environment variables:
//
//	BLOBCACHE_CONFORMANCE_CHILD_OP       name of the operation (a key of childOps)
//	BLOBCACHE_CONFORMANCE_CHILD_TEST     t.Name() of the test that called Run
//	BLOBCACHE_CONFORMANCE_CHILD_LOCATOR  ProcessHarness.Locator() of the parent's store
//	BLOBCACHE_CONFORMANCE_CHILD_ID       the child's number, 0 to n-1
//	BLOBCACHE_CONFORMANCE_CHILD_ARGS     JSON object of string arguments of the operation
//	BLOBCACHE_CONFORMANCE_CHILD_RESULT   file the child writes its childResult to, as JSON
//
// In the child, Run (runChild) makes a harness with the maker, opens the
// parent's store with OpenLocator, creates the file RESULT+".ready", then
// reads its standard input, performs the operation and writes the result
// file. Run then returns without running any case.
//
// A one-shot operation (registerChildOp) runs once, when standard input
// reaches EOF: the parent closes every child's stdin at once when all are
// ready, so the children start together.
//
// A round operation (registerChildRounds) runs once per round, as the parent
// directs. For each round the parent writes to every child's stdin a line
// "<round> <start> <argument>": start is a wall-clock time in Unix
// nanoseconds roundLead ahead, the argument a Go-quoted string (an ETag, say)
// or "". Each child waits until that instant (waitUntil: it sleeps, then
// spins on the clock, since Go's timers wake up to a millisecond late), runs
// the round, and prints the line roundDoneMarker+"<id> <round>" on its
// standard output. When every child has reported the round, the parent
// starts the next one. So each round starts with every child idle, waiting
// for one instant, however long the previous round took: the children on a
// CPU then (on two cores, two of them) start within a microsecond or two,
// the others as soon as a CPU is free. Every round is a tight race, on a
// store that answers in microseconds or in tens of milliseconds alike. At
// EOF the child writes its result, whose Value is the JSON array of its
// roundResults.
//
// More operations (a cache section's Add or Incr races, say) are added from
// another file of the package with registerChildOp or registerChildRounds in
// an init function.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blobcache/blobcache/driver"
)

// Environment variables of a child process.
const (
	envChildOp      = "BLOBCACHE_CONFORMANCE_CHILD_OP"
	envChildTest    = "BLOBCACHE_CONFORMANCE_CHILD_TEST"
	envChildLocator = "BLOBCACHE_CONFORMANCE_CHILD_LOCATOR"
	envChildID      = "BLOBCACHE_CONFORMANCE_CHILD_ID"
	envChildArgs    = "BLOBCACHE_CONFORMANCE_CHILD_ARGS"
	envChildResult  = "BLOBCACHE_CONFORMANCE_CHILD_RESULT"
)

// childReadyTimeout bounds how long children may take to start and open the
// store.
const childReadyTimeout = 2 * time.Minute

// How many rounds a round operation runs, and their timing (see
// runChildRounds). Rounds start until roundsTime has passed and at least
// minRounds have run, and at most maxRounds; none starts after
// roundsBudget, even short of minRounds.
const (
	roundsTime   = 2 * time.Second
	minRounds    = 16
	maxRounds    = 1000
	roundsBudget = 15 * time.Second
	// roundLead is how far ahead of now the parent sets a round's start:
	// time enough to write the line to every child and for each to wake
	// up, read it and go to sleep until the start.
	roundLead = 2 * time.Millisecond
	// spinWindow is how long before a round's start a child stops
	// sleeping and spins on the clock: more than the up to a millisecond
	// that a Go timer wakes late.
	spinWindow = 1500 * time.Microsecond
	// roundTimeout bounds one round: a child that has not finished its
	// operation by then (a driver call that hangs) fails the case.
	roundTimeout = time.Minute
)

// roundDoneMarker starts the line a child prints when it has run a round.
const roundDoneMarker = "blobcache-conformance-round-done "

// childRequest is what a child operation is asked to do.
type childRequest struct {
	ID   int               // the child's number, 0 to n-1
	Args map[string]string // the operation's arguments, as the parent passed them
}

// childOpFunc performs a one-shot operation in a child process on d, a
// driver on the parent's store. The value is the operation's own (a count,
// a flag); the error's kind is recorded for the parent (see errKind).
type childOpFunc func(ctx context.Context, d driver.Driver, req childRequest) (value string, err error)

// childRoundFunc performs round round of a round operation, as a
// childOpFunc performs its operation; arg is the round's argument (see
// runChildRounds).
type childRoundFunc func(ctx context.Context, round int, arg string) (value string, err error)

// childRoundsSetup prepares a round operation in a child process on d, before
// the child reports ready, and returns the function that performs a round:
// what can be done before the rounds (decoding arguments, making bodies,
// opening a cache) is not done between a round's start and its call.
type childRoundsSetup func(ctx context.Context, d driver.Driver, req childRequest) (childRoundFunc, error)

// childOp is a registered child operation: one of fn and setup is set.
type childOp struct {
	fn    childOpFunc      // a one-shot operation
	setup childRoundsSetup // a round operation
}

// childOps maps operation names to their functions.
var childOps = map[string]childOp{}

// registerChildOp adds a one-shot child operation. Names are namespaced by
// section ("driver.", "cache."); registering a name twice panics.
func registerChildOp(name string, fn childOpFunc) { registerOp(name, childOp{fn: fn}) }

// registerChildRounds adds a round operation (see runChildRounds).
func registerChildRounds(name string, setup childRoundsSetup) {
	registerOp(name, childOp{setup: setup})
}

func registerOp(name string, op childOp) {
	if _, dup := childOps[name]; dup {
		panic("conformance: child operation registered twice: " + name)
	}
	childOps[name] = op
}

// Error kinds in a childResult.
const (
	kindOK                 = ""
	kindNotFound           = "not_found"
	kindPreconditionFailed = "precondition_failed"
	kindCanceled           = "canceled"
	kindOther              = "other"
	kindSetup              = "setup" // the child could not run the operation
)

// errKind classifies err for a childResult.
func errKind(err error) string {
	switch {
	case err == nil:
		return kindOK
	case errors.Is(err, driver.ErrNotFound):
		return kindNotFound
	case errors.Is(err, driver.ErrPreconditionFailed):
		return kindPreconditionFailed
	case errors.Is(err, context.Canceled):
		return kindCanceled
	}
	return kindOther
}

// kindError rebuilds an error of kind with the text msg, so that errors.Is
// works in the parent; nil for kindOK.
func kindError(id int, kind, msg string) error {
	var k error
	switch kind {
	case kindOK:
		return nil
	case kindNotFound:
		k = driver.ErrNotFound
	case kindPreconditionFailed:
		k = driver.ErrPreconditionFailed
	case kindCanceled:
		k = context.Canceled
	default:
		return fmt.Errorf("child %d: %s", id, msg)
	}
	return fmt.Errorf("child %d: %w (%s)", id, k, msg)
}

// childResult is what a child reports, as one JSON object in its result file.
type childResult struct {
	ID    int    `json:"id"`
	Value string `json:"value,omitempty"` // a round operation's: the JSON array of its roundResults
	Kind  string `json:"kind,omitempty"`  // errKind of the error, or kindSetup
	Err   string `json:"err,omitempty"`   // the error's text
}

// error rebuilds an error of the reported kind, so that errors.Is works in the
// parent.
func (r childResult) error() error { return kindError(r.ID, r.Kind, r.Err) }

// roundResult is what a child reports of one round of a round operation.
type roundResult struct {
	Round int           `json:"round"`
	Value string        `json:"value,omitempty"`
	Kind  string        `json:"kind,omitempty"` // errKind of the error
	Err   string        `json:"err,omitempty"`  // the error's text
	Late  time.Duration `json:"late"`           // how long after the round's start the child began
	Took  time.Duration `json:"took"`           // how long its operation took
}

// error rebuilds an error of the reported kind for child id.
func (r roundResult) error(id int) error { return kindError(id, r.Kind, r.Err) }

// waitUntil returns at t (at once when t has passed). It sleeps until shortly
// before t, then spins on the clock: Go's timers wake up to a millisecond
// late, which would spread the children's starts over a millisecond, wider
// than the window a racy check-then-write leaves open.
func waitUntil(t time.Time) {
	if d := time.Until(t) - spinWindow; d > 0 {
		time.Sleep(d)
	}
	for time.Now().Before(t) {
	}
}

// childDone is set once this child process has performed its operation.
var childDone atomic.Bool

// runChild reports whether this process is a child started by a
// cross-process case. If it is, and t is the test that started it, runChild
// performs the child's operation and writes its result, once per process:
// a test that runs two sections (RunDriver, then RunHostile) calls it
// twice, and the second call must not perform the operation again.
func runChild(t *testing.T, maker HarnessMaker) bool {
	name := os.Getenv(envChildOp)
	if name == "" {
		return false
	}
	if t.Name() != os.Getenv(envChildTest) {
		t.Logf("conformance child process for %s: not running %s", os.Getenv(envChildTest), t.Name())
		return true
	}
	if childDone.Swap(true) {
		return true
	}
	resultPath := os.Getenv(envChildResult)
	id, _ := strconv.Atoi(os.Getenv(envChildID))
	res := childResult{ID: id}
	func() {
		setupErr := func(format string, args ...any) {
			res.Kind, res.Err = kindSetup, fmt.Sprintf(format, args...)
		}
		op, ok := childOps[name]
		if !ok {
			setupErr("unknown child operation %q", name)
			return
		}
		var req childRequest
		req.ID = id
		if err := json.Unmarshal([]byte(os.Getenv(envChildArgs)), &req.Args); err != nil {
			setupErr("decoding %s: %v", envChildArgs, err)
			return
		}
		ctx := t.Context()
		h, err := maker(ctx, t)
		if err != nil {
			setupErr("HarnessMaker: %v", err)
			return
		}
		defer h.Close()
		ph, ok := h.(ProcessHarness)
		if !ok {
			setupErr("harness %T is not a ProcessHarness", h)
			return
		}
		d, err := ph.OpenLocator(ctx, os.Getenv(envChildLocator))
		if err != nil {
			setupErr("OpenLocator(%q): %v", os.Getenv(envChildLocator), err)
			return
		}
		defer d.Close()
		var round childRoundFunc
		if op.setup != nil {
			if round, err = op.setup(ctx, d, req); err != nil {
				setupErr("preparing the rounds: %v", err)
				return
			}
		}
		if err := os.WriteFile(resultPath+".ready", nil, 0o644); err != nil {
			setupErr("signalling readiness: %v", err)
			return
		}
		if round == nil {
			// The parent closes stdin to start every child at once.
			io.Copy(io.Discard, os.Stdin)
			value, err := op.fn(ctx, d, req)
			res.Value, res.Kind = value, errKind(err)
			if err != nil {
				res.Err = err.Error()
			}
			return
		}
		var rounds []roundResult
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			var (
				r          int
				startNanos int64
				arg        string
			)
			if _, err := fmt.Sscanf(in.Text(), "%d %d %q", &r, &startNanos, &arg); err != nil {
				setupErr("reading the round from %q: %v", in.Text(), err)
				return
			}
			start := time.Unix(0, startNanos)
			waitUntil(start)
			began := time.Now()
			value, err := round(ctx, r, arg)
			rr := roundResult{Round: r, Late: began.Sub(start), Took: time.Since(began)}
			rr.Value, rr.Kind = value, errKind(err)
			if err != nil {
				rr.Err = err.Error()
			}
			rounds = append(rounds, rr)
			fmt.Printf("%s%d %d\n", roundDoneMarker, id, r)
		}
		out, err := json.Marshal(rounds)
		if err != nil {
			setupErr("encoding the rounds' results: %v", err)
			return
		}
		res.Value = string(out)
	}()
	out, _ := json.Marshal(res)
	if len(out) > 1000 {
		fmt.Printf("conformance child %d %s: %s... (%d bytes)\n", id, name, out[:1000], len(out))
	} else {
		fmt.Printf("conformance child %d %s: %s\n", id, name, out)
	}
	// Written beside and renamed, so the parent never reads a partial file.
	if err := os.WriteFile(resultPath+".tmp", out, 0o644); err != nil {
		t.Fatalf("writing the child's result: %v", err)
	}
	if err := os.Rename(resultPath+".tmp", resultPath); err != nil {
		t.Fatalf("writing the child's result: %v", err)
	}
	return true
}

// testRunPattern returns a -test.run pattern that selects exactly the test
// named name (a t.Name(), possibly of a subtest).
func testRunPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// childOutput collects a child's standard output and error, and passes on
// the rounds the child reports done (lines starting with roundDoneMarker).
type childOutput struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	partial []byte   // the last line, until its newline arrives
	done    chan int // rounds reported done, in order
}

// Write implements io.Writer: it keeps p and passes on each complete
// round-done line.
func (o *childOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	o.partial = append(o.partial, p...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			break
		}
		if rest, ok := bytes.CutPrefix(o.partial[:i], []byte(roundDoneMarker)); ok {
			var id, round int
			if _, err := fmt.Sscanf(string(rest), "%d %d", &id, &round); err == nil {
				select {
				case o.done <- round:
				default: // more reports than rounds: the parent finds a result missing
				}
			}
		}
		o.partial = o.partial[i+1:]
	}
	o.partial = slices.Clip(o.partial)
	return len(p), nil
}

// String returns everything the child wrote.
func (o *childOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// runChildren runs the one-shot operation op in n child processes on the
// harness's store, starting them together, and returns their results in
// child order. It skips the case when the harness is not a ProcessHarness
// and fails it when a child does not report; its failures cite clause, the
// one the case checks.
func (e *env) runChildren(op, clause string, n int, args map[string]string) []childResult {
	e.t.Helper()
	results, _, _ := e.spawnChildren(op, clause, n, nil, args)
	return results
}

// failCiting returns e.t.Fatalf and e.t.Errorf that append clause to the
// message, in parentheses.
func (e *env) failCiting(clause string) (fatalf, errorf func(format string, args ...any)) {
	return func(format string, args ...any) {
			e.t.Helper()
			e.t.Fatalf(format+" (%s)", append(args, clause)...)
		}, func(format string, args ...any) {
			e.t.Helper()
			e.t.Errorf(format+" (%s)", append(args, clause)...)
		}
}

// runChildRounds runs the round operation op in n child processes on the
// harness's store, round after round: every round starts in all children at
// one instant (see the top of this file), and only when all have finished
// the previous one. Before round r, prepare (when not nil) returns the
// round's argument, passed to every child; it may set up the round's
// object. It returns each child's results, in child order, one per round,
// and the number of rounds run. Its failures cite clause, as runChildren's.
//
// Rounds start until roundsTime (2 s) has passed and at least minRounds
// (16) have run, at most maxRounds (1000), and none after roundsBudget
// (15 s). So the rounds of a case take about 2 s: some hundreds of rounds on
// a local disk, where the window of a racy check-then-write is a few
// microseconds and a round catches it now and then; some tens on a store
// over HTTP (MinIO: 15 to 50 ms a round on two cores), where the window is
// a request's time; a store slower than 125 ms a round runs 16 rounds, and
// one slower than a second a round stops at 15 s. Then come the children's
// start (0.1 to 0.5 s, never more than childReadyTimeout) and the case's
// checks (a Read a round).
func (e *env) runChildRounds(op, clause string, n int, args map[string]string, prepare func(r int) string) (results [][]roundResult, ran int) {
	e.t.Helper()
	fatalf, _ := e.failCiting(clause)
	if prepare == nil {
		prepare = func(int) string { return "" }
	}
	children, ran, took := e.spawnChildren(op, clause, n, prepare, args)
	if ran == 0 {
		fatalf("%s: no round ran", op)
	}
	results = make([][]roundResult, n)
	for i, c := range children {
		if err := json.Unmarshal([]byte(c.Value), &results[i]); err != nil {
			fatalf("child %d: decoding the rounds' results %q: %v", i, c.Value, err)
		}
		if len(results[i]) != ran {
			fatalf("child %d reported %d rounds, want %d", i, len(results[i]), ran)
		}
		for r, rr := range results[i] {
			if rr.Round != r {
				fatalf("child %d reported round %d as its round %d", i, rr.Round, r)
			}
		}
	}
	var late, opTook []time.Duration
	for _, rs := range results {
		for _, rr := range rs {
			late, opTook = append(late, rr.Late), append(opTook, rr.Took)
		}
	}
	slices.Sort(late)
	slices.Sort(opTook)
	e.t.Logf("%s: %d processes, %d rounds in %v; an operation took %v (median); a child began its round late by %v (median), %v (90th percentile), %v (most)",
		op, n, ran, took.Round(time.Millisecond), opTook[len(opTook)/2], late[len(late)/2], late[len(late)*9/10], late[len(late)-1])
	return results, ran
}

// spawnChildren starts n children performing op, a one-shot operation when
// prepare is nil, else a round operation whose rounds prepare prepares. It
// returns their results and, for a round operation, the number of rounds run
// and their time.
func (e *env) spawnChildren(op, clause string, n int, prepare func(r int) string, args map[string]string) ([]childResult, int, time.Duration) {
	e.t.Helper()
	fatalf, errorf := e.failCiting(clause)
	ph, ok := e.h.(ProcessHarness)
	if !ok {
		e.t.Skipf("harness %T does not implement conformance.ProcessHarness, so its store cannot be opened by other processes", e.h)
	}
	rounds := prepare != nil
	if o, ok := childOps[op]; !ok || (o.setup != nil) != rounds {
		fatalf("suite bug: unknown child operation %q, or one of the other kind (rounds %v)", op, rounds)
	}
	exe, err := os.Executable()
	if err != nil {
		fatalf("finding the test binary: %v", err)
	}
	argsJSON, err := json.Marshal(args)
	if err != nil {
		fatalf("encoding child arguments: %v", err)
	}
	dir := e.t.TempDir()
	locator := ph.Locator()

	type child struct {
		cmd    *exec.Cmd
		stdin  io.WriteCloser
		out    *childOutput
		result string
		done   chan error
		exited bool
		err    error
	}
	children := make([]*child, n)
	// However the case ends, no child outlives it.
	defer func() {
		for _, c := range children {
			if c == nil || c.done == nil {
				continue
			}
			c.stdin.Close()
			if !c.exited {
				c.cmd.Process.Kill()
				<-c.done
			}
		}
	}()
	for i := range n {
		c := &child{
			result: filepath.Join(dir, fmt.Sprintf("child-%d.json", i)),
			out:    &childOutput{done: make(chan int, 2)},
		}
		children[i] = c
		c.cmd = exec.CommandContext(e.ctx, exe, "-test.run="+testRunPattern(e.runName), "-test.count=1", "-test.v")
		c.cmd.Env = append(os.Environ(),
			envChildOp+"="+op,
			envChildTest+"="+e.runName,
			envChildLocator+"="+locator,
			envChildID+"="+strconv.Itoa(i),
			envChildArgs+"="+string(argsJSON),
			envChildResult+"="+c.result,
		)
		c.cmd.Stdout = c.out
		c.cmd.Stderr = c.out
		if c.stdin, err = c.cmd.StdinPipe(); err != nil {
			fatalf("child %d: %v", i, err)
		}
		if err := c.cmd.Start(); err != nil {
			fatalf("starting child %d (%s): %v", i, exe, err)
		}
		c.done = make(chan error, 1)
		go func() { c.done <- c.cmd.Wait() }()
	}
	// Wait until every child has opened the store (or exited early).
	deadline := time.Now().Add(childReadyTimeout)
	for waiting := true; waiting; {
		waiting = false
		for i, c := range children {
			if c.exited {
				continue
			}
			select {
			case c.err = <-c.done:
				c.exited = true
				if _, err := os.Stat(c.result); err != nil {
					fatalf("child %d exited (%v) before it was started, without a result; output:\n%s", i, c.err, c.out)
				}
				continue
			default:
			}
			if _, err := os.Stat(c.result + ".ready"); err != nil {
				waiting = true
			}
		}
		if waiting {
			if time.Now().After(deadline) {
				fatalf("children not ready after %v", childReadyTimeout)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	ran, took := 0, time.Duration(0)
	// A child that exited already reported why (a setup error), which the
	// collection of results below shows.
	if rounds && !slices.ContainsFunc(children, func(c *child) bool { return c.exited }) {
		began := time.Now()
		for r := 0; r < maxRounds; r++ {
			if took := time.Since(began); took >= roundsBudget {
				e.t.Logf("%s: stopping after %d rounds: they took %v, the budget of rounds", op, r, took.Round(time.Millisecond))
				break
			} else if took >= roundsTime && r >= minRounds {
				break
			}
			arg := prepare(r)
			line := fmt.Sprintf("%d %d %q\n", r, time.Now().Add(roundLead).UnixNano(), arg)
			for i, c := range children {
				if _, err := io.WriteString(c.stdin, line); err != nil {
					fatalf("child %d: starting round %d: %v; output:\n%s", i, r, err, c.out)
				}
			}
			timeout := time.NewTimer(roundTimeout)
			for i, c := range children {
				select {
				case got := <-c.out.done:
					if got != r {
						fatalf("child %d reported round %d done during round %d; output:\n%s", i, got, r, c.out)
					}
				case c.err = <-c.done:
					c.exited = true
					fatalf("child %d exited (%v) during round %d; output:\n%s", i, c.err, r, c.out)
				case <-timeout.C:
					fatalf("%s: child %d did not finish round %d within %v; output:\n%s", op, i, r, roundTimeout, c.out)
				}
			}
			timeout.Stop()
			ran++
		}
		took = time.Since(began)
	}
	for _, c := range children {
		c.stdin.Close()
	}
	results := make([]childResult, n)
	for i, c := range children {
		if !c.exited {
			c.err = <-c.done
			c.exited = true
		}
		data, err := os.ReadFile(c.result)
		if err != nil {
			fatalf("child %d (exit: %v) wrote no result; output:\n%s", i, c.err, c.out)
		}
		if err := json.Unmarshal(data, &results[i]); err != nil {
			fatalf("child %d: decoding result %q: %v", i, data, err)
		}
		if results[i].Kind == kindSetup {
			fatalf("child %d could not run %s: %s; output:\n%s", i, op, results[i].Err, c.out)
		}
		if c.err != nil {
			errorf("child %d exited with %v; output:\n%s", i, c.err, c.out)
		}
	}
	return results, ran, took
}
