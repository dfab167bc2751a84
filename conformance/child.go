package conformance

// Cross-process machinery.
//
// A cross-process case calls env.runChildren, which re-executes the test
// binary n times with -test.run selecting the test that called Run and these
// environment variables:
//
//	BLOBCACHE_CONFORMANCE_CHILD_OP       name of the operation (a key of childOps)
//	BLOBCACHE_CONFORMANCE_CHILD_TEST     t.Name() of the test that called Run
//	BLOBCACHE_CONFORMANCE_CHILD_LOCATOR  ProcessHarness.Locator() of the parent's store
//	BLOBCACHE_CONFORMANCE_CHILD_ID       the child's number, 0 to n-1
//	BLOBCACHE_CONFORMANCE_CHILD_ARGS     JSON object of string arguments of the operation
//	BLOBCACHE_CONFORMANCE_CHILD_RESULT   file the child writes its childResult to, as JSON
//
// In the child, Run (runChild) makes a harness with the maker, opens the
// parent's store with OpenLocator, creates the file RESULT+".ready", waits
// until its standard input reaches EOF (the parent closes every child's stdin
// at once when all are ready, so the children race tightly), performs the
// operation and writes the result file. Run then returns without running any
// case.
//
// More operations (a cache section's Add or Incr races, say) are added from
// another file of the package with registerChildOp in an init function.

import (
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
	"strconv"
	"strings"
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

// childRequest is what a child operation is asked to do.
type childRequest struct {
	ID   int               // the child's number, 0 to n-1
	Args map[string]string // the operation's arguments, as the parent passed them
}

// childOpFunc performs one operation in a child process on d, a driver on the
// parent's store. The value is the operation's own (a count, a flag); the
// error's kind is recorded for the parent (see errKind).
type childOpFunc func(ctx context.Context, d driver.Driver, req childRequest) (value string, err error)

// childOps maps operation names to their functions.
var childOps = map[string]childOpFunc{}

// registerChildOp adds a child operation. Names are namespaced by section
// ("driver.", "cache."); registering a name twice panics.
func registerChildOp(name string, fn childOpFunc) {
	if _, dup := childOps[name]; dup {
		panic("conformance: child operation registered twice: " + name)
	}
	childOps[name] = fn
}

// Operations of the driver section.
const (
	childOpIfAbsent = "driver.if_absent" // Write(args["name"], raceContent(id), IfAbsent)
	childOpReplace  = "driver.replace"   // Replace(args["name"], raceContent(id), args["etag"])
)

func init() {
	registerChildOp(childOpIfAbsent, func(ctx context.Context, d driver.Driver, req childRequest) (string, error) {
		return "", d.Write(ctx, req.Args["name"], bytes.NewReader(raceContent(req.ID)), &driver.WriteOptions{IfAbsent: true})
	})
	registerChildOp(childOpReplace, func(ctx context.Context, d driver.Driver, req childRequest) (string, error) {
		r, ok := d.(driver.Replacer)
		if !ok {
			return "", fmt.Errorf("driver %T opened by OpenLocator does not implement driver.Replacer", d)
		}
		return "", r.Replace(ctx, req.Args["name"], bytes.NewReader(raceContent(req.ID)), req.Args["etag"], &driver.WriteOptions{})
	})
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

// childResult is what a child reports, as one JSON object in its result file.
type childResult struct {
	ID    int    `json:"id"`
	Value string `json:"value,omitempty"`
	Kind  string `json:"kind,omitempty"` // errKind of the error, or kindSetup
	Err   string `json:"err,omitempty"`  // the error's text
}

// error rebuilds an error of the reported kind, so that errors.Is works in the
// parent.
func (r childResult) error() error {
	var kind error
	switch r.Kind {
	case kindOK:
		return nil
	case kindNotFound:
		kind = driver.ErrNotFound
	case kindPreconditionFailed:
		kind = driver.ErrPreconditionFailed
	case kindCanceled:
		kind = context.Canceled
	default:
		return fmt.Errorf("child %d: %s", r.ID, r.Err)
	}
	return fmt.Errorf("child %d: %w (%s)", r.ID, kind, r.Err)
}

// runChild reports whether this process is a child started by a
// cross-process case. If it is, and t is the test that started it, runChild
// performs the child's operation and writes its result.
func runChild(t *testing.T, maker HarnessMaker) bool {
	op := os.Getenv(envChildOp)
	if op == "" {
		return false
	}
	if t.Name() != os.Getenv(envChildTest) {
		t.Logf("conformance child process for %s: not running %s", os.Getenv(envChildTest), t.Name())
		return true
	}
	resultPath := os.Getenv(envChildResult)
	id, _ := strconv.Atoi(os.Getenv(envChildID))
	res := childResult{ID: id}
	func() {
		setupErr := func(format string, args ...any) {
			res.Kind, res.Err = kindSetup, fmt.Sprintf(format, args...)
		}
		fn, ok := childOps[op]
		if !ok {
			setupErr("unknown child operation %q", op)
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
		if err := os.WriteFile(resultPath+".ready", nil, 0o644); err != nil {
			setupErr("signalling readiness: %v", err)
			return
		}
		// The parent closes stdin to start every child at once.
		io.Copy(io.Discard, os.Stdin)
		value, err := fn(ctx, d, req)
		res.Value, res.Kind = value, errKind(err)
		if err != nil {
			res.Err = err.Error()
		}
	}()
	out, _ := json.Marshal(res)
	fmt.Printf("conformance child %d %s: %s\n", id, op, out)
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

// runChildren runs op in n child processes on the harness's store, starting
// them together, and returns their results in child order. It skips the case
// when the harness is not a ProcessHarness and fails it when a child does not
// report.
func (e *env) runChildren(op string, n int, args map[string]string) []childResult {
	e.t.Helper()
	ph, ok := e.h.(ProcessHarness)
	if !ok {
		e.t.Skipf("harness %T does not implement conformance.ProcessHarness, so its store cannot be opened by other processes", e.h)
	}
	if _, ok := childOps[op]; !ok {
		e.t.Fatalf("suite bug: unknown child operation %q", op)
	}
	exe, err := os.Executable()
	if err != nil {
		e.t.Fatalf("finding the test binary: %v", err)
	}
	argsJSON, err := json.Marshal(args)
	if err != nil {
		e.t.Fatalf("encoding child arguments: %v", err)
	}
	dir := e.t.TempDir()
	locator := ph.Locator()

	type child struct {
		cmd    *exec.Cmd
		stdin  io.WriteCloser
		out    bytes.Buffer
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
		c := &child{result: filepath.Join(dir, fmt.Sprintf("child-%d.json", i))}
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
		c.cmd.Stdout = &c.out
		c.cmd.Stderr = &c.out
		if c.stdin, err = c.cmd.StdinPipe(); err != nil {
			e.t.Fatalf("child %d: %v", i, err)
		}
		if err := c.cmd.Start(); err != nil {
			e.t.Fatalf("starting child %d (%s): %v", i, exe, err)
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
					e.t.Fatalf("child %d exited (%v) before it was started, without a result; output:\n%s", i, c.err, c.out.String())
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
				e.t.Fatalf("children not ready after %v", childReadyTimeout)
			}
			time.Sleep(5 * time.Millisecond)
		}
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
			e.t.Fatalf("child %d (exit: %v) wrote no result; output:\n%s", i, c.err, c.out.String())
		}
		if err := json.Unmarshal(data, &results[i]); err != nil {
			e.t.Fatalf("child %d: decoding result %q: %v", i, data, err)
		}
		if results[i].Kind == kindSetup {
			e.t.Fatalf("child %d could not run %s: %s; output:\n%s", i, op, results[i].Err, c.out.String())
		}
		if c.err != nil {
			e.t.Errorf("child %d exited with %v; output:\n%s", i, c.err, c.out.String())
		}
	}
	return results
}
