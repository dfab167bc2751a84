// Package conformance tests that a blobcache storage driver keeps the
// contract written in the doc comments of package
// github.com/blobcache/blobcache/driver.
//
// A driver's own test supplies a [HarnessMaker], which makes a [Harness] on a
// fresh, empty store, and calls [Run]:
//
//	package file_test
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, func(ctx context.Context, t *testing.T) (conformance.Harness, error) {
//			return &harness{dir: t.TempDir()}, nil
//		})
//	}
//
//	type harness struct{ dir string }
//
//	func (h *harness) MakeDriver(ctx context.Context) (driver.Driver, error) { return file.New(h.dir) }
//	func (h *harness) Close()                                                 {}
//
//	// Locator and OpenLocator make it a ProcessHarness: the suite then
//	// also races writers in other OS processes on the same store.
//	func (h *harness) Locator() string { return h.dir }
//	func (h *harness) OpenLocator(ctx context.Context, loc string) (driver.Driver, error) {
//		return file.New(loc)
//	}
//
// Every case is a subtest named Driver/<Case>/<variant>; it runs twice, on a
// fresh harness each time: variant "root" uses names at the top of the store
// and variant "prefix" puts every name under "pfx/" with decoy objects beside
// that prefix (which the case must neither list nor touch). A single case can
// be selected with, for example, go test -run 'TestConformance/Driver/Pagination'.
//
// Every failure message ends with the clause of the contract its case
// checks, quoted with where it is written, as testing/slogtest's do:
//
//	Read after Close = <nil>, want an error satisfying errors.Is(err, driver.ErrClosed)
//		contract (Driver.Close): "the stored objects stay. After Close, every other method ..."
//
// and a listing that differs from what was written shows a go-cmp diff of
// the names missing and extra. The suite tests itself: its own tests run
// every case against a reference driver with one fault at a time and
// require the case to fail (one or more broken drivers per clause).
//
// Cases for optional capabilities ([driver.Replacer], [driver.BatchDeleter]),
// cross-process cases (which need a [ProcessHarness]) and hostile-store cases
// (symbolic links, named pipes and sparse files planted behind the driver's
// back, which need a [HostileStore]) skip with a message when the driver or
// harness lacks them.
//
// Cross-process cases re-execute the running test binary, selecting the test
// that called Run with -test.run. In that child process Run recognises the
// child environment, opens the parent's store through
// ProcessHarness.OpenLocator and performs the case's operation instead of
// running the cases: a conditional write raced by every child, round after
// round (each round released to all children at one instant) until about two
// seconds have passed, so that a driver whose conditional writes are atomic
// only within a process fails every run. Code in the test function before
// the call to Run therefore also runs in the children, so it should be cheap
// (or be the same setup the harness needs anyway).
package conformance

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
)

// Harness gives the suite access to one store under test.
type Harness interface {
	// MakeDriver returns a driver on the harness's store. Every call on one
	// harness refers to the same store (as a second client or handle would),
	// which is empty when the harness is made. The suite closes each driver
	// it makes and expects Close to return nil.
	MakeDriver(ctx context.Context) (driver.Driver, error)
	// Close releases the harness's resources. It is called after every
	// driver made by the harness has been closed.
	Close()
}

// HarnessMaker makes a fresh harness (an empty store) for one test. The suite
// calls it once per case and variant, and once in every child process of a
// cross-process case.
type HarnessMaker func(ctx context.Context, t *testing.T) (Harness, error)

// ProcessHarness is implemented by harnesses whose store other OS processes
// can open. Cross-process cases are skipped for harnesses that do not
// implement it.
type ProcessHarness interface {
	Harness
	// Locator names the store for another process.
	Locator() string
	// OpenLocator opens a driver on the store a Locator names. It is called in
	// a child process on a harness made there by the same HarnessMaker.
	OpenLocator(ctx context.Context, locator string) (driver.Driver, error)
}

// StoreLimits is implemented by harnesses whose store departs from the
// driver contract in a known, documented way; the suite then leaves out what
// the store cannot do, instead of failing on it, and the cases it skips say
// which limit they skip for. The suite looks for each method on its own, so
// a harness implements only those it needs; a missing method means the
// store has no such limit.
type StoreLimits interface {
	// FolderObjects reports whether the store can hold an object named like
	// a folder of other objects ("a" beside "a/b") and still list both.
	// MinIO cannot: an object "a" hides every "a/..." object from listings.
	// Neither can a directory tree such as the Go CDK's fileblob.
	FolderObjects() bool
	// NestedObjects reports whether the store can hold an object "a" and
	// objects under "a/" at once. The Go CDK's fileblob cannot (a file is
	// not also a directory): writing either one beside the other fails.
	// When it is false, so is FolderObjects.
	NestedObjects() bool
	// ByteOrderListing reports whether a listing of the whole store comes
	// in byte-wise order of the names even where a name of one folder sorts
	// before another folder's ("a.b" before "a/c"). The Go CDK's fileblob
	// lists folder by folder ("a/c" first), and continues a page after the
	// byte-wise greater names, so such names can appear on two pages. When
	// it is false, the suite takes a listing in any order and each name
	// once however often it appears; a name left out still fails. (The
	// cache lists only its location's folder of flat names.)
	ByteOrderListing() bool
	// AtomicOverwrite reports whether a reader racing an overwrite always
	// reads one whole version. The Go CDK's fileblob does not: its reader
	// takes the size and its attributes file, then opens the file, so an
	// overwrite in between is read half (a size of one version, the bytes
	// of another, an attributes file being rewritten).
	AtomicOverwrite() bool
	// MaxSegmentLength is the longest "/"-separated segment of a name, in
	// bytes, that the store can hold, when it is less than 255. The Go
	// CDK's fileblob names its temporary files after the object's last
	// segment plus 21 bytes, within the file system's 255.
	MaxSegmentLength() int
	// AtomicIfAbsent reports whether a Write with WriteOptions.IfAbsent
	// checks and writes in one atomic step, so that of concurrent writers
	// (goroutines or processes) exactly one succeeds. The Go CDK's
	// fileblob does not: it checks with a stat, then renames. The cases
	// that race IfAbsent writers, directly or through cache.Add, skip when
	// it is false.
	AtomicIfAbsent() bool
}

// Run runs the whole conformance suite against the stores maker makes: the
// driver section ([RunDriver]), the cache section ([RunCache]) and the
// hostile-store section ([RunHostile], whose cases skip unless the harness
// implements [HostileStore]). It is the
// one call a driver's test makes. In a child process started by a
// cross-process case it performs the child's operation instead.
func Run(t *testing.T, maker HarnessMaker) {
	t.Helper()
	if runChild(t, maker) {
		return
	}
	RunDriver(t, maker)
	RunCache(t, maker)
	RunHostile(t, maker)
}

// RunDriver runs only the driver section of the suite (subtest "Driver"):
// the contract of [driver.Driver] and its optional capabilities. [Run] calls
// it; like Run, it performs the child's operation when the process is a child
// started by a cross-process case.
func RunDriver(t *testing.T, maker HarnessMaker) {
	t.Helper()
	if runChild(t, maker) {
		return
	}
	runName := t.Name()
	t.Run("Driver", func(t *testing.T) {
		runCases(t, maker, runName, driverCases)
	})
}

// driverCase is one entry of a section's table of cases.
type driverCase struct {
	name string
	// clause quotes the contract the case checks, naming where it is
	// written ("Driver.Read: ..."). Every failure message of the case ends
	// with it, as testing/slogtest's do.
	clause string
	// run performs the case on e. It may call e.t.Fatalf and e.t.Skipf
	// from its own goroutine only.
	run func(e *env)
}

// testPrefix is the prefix of the "prefix" variant of every case.
const testPrefix = "pfx/"

// variants are the name prefixes every case runs under.
var variants = []struct{ name, prefix string }{
	{"root", ""},
	{"prefix", testPrefix},
}

// runCases runs each case of a section as a subtest, once per variant.
func runCases(t *testing.T, maker HarnessMaker, runName string, cases []driverCase, cacheOpts ...cache.Option) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, v := range variants {
				t.Run(v.name, func(t *testing.T) {
					runCase(t, t, maker, runName, c, v.prefix, cacheOpts...)
				})
			}
		})
	}
}

// runCase makes a harness with t and runs c under prefix, reporting through
// tb (t itself, or a recording stand-in in the suite's own tests). runName is
// the name of the test that called Run, for child processes.
func runCase(t *testing.T, tb testing.TB, maker HarnessMaker, runName string, c driverCase, prefix string, cacheOpts ...cache.Option) {
	tb.Helper()
	ctx := t.Context()
	h, err := maker(ctx, t)
	if err != nil {
		tb.Fatalf("HarnessMaker: %v", err)
	}
	if h == nil {
		tb.Fatalf("HarnessMaker returned a nil Harness")
	}
	// Registered before any driver's Close, so it runs after them.
	t.Cleanup(h.Close)
	e := newEnv(ctx, citing{tb, c.clause}, h, prefix, runName)
	e.cacheOpts = cacheOpts
	if prefix != "" {
		e.writeDecoys()
	}
	c.run(e)
	if prefix != "" {
		e.checkDecoys()
	}
}

// citing is a testing.TB whose failure messages end with the clause of the
// contract their case checks, unless the message already cites a clause
// (the one a check in passing is about).
type citing struct {
	testing.TB
	clause string
}

// citesClause reports whether msg quotes a clause of the contract.
func citesClause(msg string) bool {
	for _, mark := range []string{"contract (", "cache: ", "cache (", "cull."} {
		if strings.Contains(msg, mark) {
			return true
		}
	}
	return false
}

// cite appends the clause to msg.
func (c citing) cite(msg string) string {
	if c.clause == "" || citesClause(msg) {
		return msg
	}
	return msg + "\n\t" + c.clause
}

// Error implements testing.TB.
func (c citing) Error(args ...any) { c.TB.Helper(); c.TB.Error(c.cite(fmt.Sprint(args...))) }

// Errorf implements testing.TB.
func (c citing) Errorf(format string, args ...any) {
	c.TB.Helper()
	c.TB.Error(c.cite(fmt.Sprintf(format, args...)))
}

// Fatal implements testing.TB.
func (c citing) Fatal(args ...any) { c.TB.Helper(); c.TB.Fatal(c.cite(fmt.Sprint(args...))) }

// Fatalf implements testing.TB.
func (c citing) Fatalf(format string, args ...any) {
	c.TB.Helper()
	c.TB.Fatal(c.cite(fmt.Sprintf(format, args...)))
}
