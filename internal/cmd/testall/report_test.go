package main

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// replay feeds a recorded go test -json stream (Time fields left out) to a
// reporter for module example.com/m and returns it with what it printed, up
// to and including the summary.
func replay(t *testing.T, verbose bool, stream string) (*reporter, string) {
	t.Helper()
	var out strings.Builder
	r := newReporter(&out, "example.com/m", verbose)
	sc := bufio.NewScanner(strings.NewReader(stream))
	for sc.Scan() {
		if line := strings.TrimLeft(sc.Text(), "\t"); line != "" {
			r.line([]byte(line + "\n"))
		}
	}
	r.finish()
	return r, out.String()
}

// before returns out up to the summary.
func before(out string) string {
	s, _, _ := strings.Cut(out, "\n== testall summary ==\n")
	return s
}

// summaryOf returns the summary section of out, without its header.
func summaryOf(out string) string {
	_, s, _ := strings.Cut(out, "\n== testall summary ==\n")
	return s
}

// failingSubtest is a package with a passing test, a test with a passing,
// a failing, a skipped and a parallel subtest, and a passing package.
const failingSubtest = `
	{"Action":"start","Package":"example.com/m/a"}
	{"Action":"start","Package":"example.com/m/b"}
	{"Action":"run","Package":"example.com/m/a","Test":"TestPass"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestPass","Output":"=== RUN   TestPass\n"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestPass","Output":"    a_test.go:5: hello\n"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestPass","Output":"--- PASS: TestPass (0.00s)\n"}
	{"Action":"pass","Package":"example.com/m/a","Test":"TestPass","Elapsed":0}
	{"Action":"run","Package":"example.com/m/a","Test":"TestSub"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestSub","Output":"=== RUN   TestSub\n"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestSub","Output":"    a_test.go:8: parent log\n"}
	{"Action":"run","Package":"example.com/m/a","Test":"TestSub/ok"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestSub/ok","Output":"=== RUN   TestSub/ok\n"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestSub/ok","Output":"    a_test.go:9: ok log\n"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestSub/ok","Output":"--- PASS: TestSub/ok (0.00s)\n"}
	{"Action":"pass","Package":"example.com/m/a","Test":"TestSub/ok","Elapsed":0}
	{"Action":"run","Package":"example.com/m/b","Test":"TestB"}
	{"Action":"output","Package":"example.com/m/b","Test":"TestB","Output":"=== RUN   TestB\n"}
	{"Action":"output","Package":"example.com/m/b","Test":"TestB","Output":"    b_test.go:3: b log\n"}
	{"Action":"output","Package":"example.com/m/b","Test":"TestB","Output":"--- PASS: TestB (0.00s)\n"}
	{"Action":"pass","Package":"example.com/m/b","Test":"TestB","Elapsed":0}
	{"Action":"run","Package":"example.com/m/a","Test":"TestSub/bad"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestSub/bad","Output":"=== RUN   TestSub/bad\n"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestSub/bad","Output":"    a_test.go:10: bad log\n"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestSub/bad","Output":"    a_test.go:10: boom\n"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestSub/bad","Output":"        more\n"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestSub/bad","Output":"--- FAIL: TestSub/bad (0.00s)\n"}
	{"Action":"fail","Package":"example.com/m/a","Test":"TestSub/bad","Elapsed":0}
	{"Action":"run","Package":"example.com/m/a","Test":"TestSub/cap"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestSub/cap","Output":"=== RUN   TestSub/cap\n"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestSub/cap","Output":"    a_test.go:11: driver *x does not implement driver.Replacer\n"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestSub/cap","Output":"--- SKIP: TestSub/cap (0.00s)\n"}
	{"Action":"skip","Package":"example.com/m/a","Test":"TestSub/cap","Elapsed":0}
	{"Action":"run","Package":"example.com/m/a","Test":"TestSub/par"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestSub/par","Output":"=== RUN   TestSub/par\n"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestSub/par","Output":"=== PAUSE TestSub/par\n"}
	{"Action":"pause","Package":"example.com/m/a","Test":"TestSub/par"}
	{"Action":"cont","Package":"example.com/m/a","Test":"TestSub/par"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestSub/par","Output":"=== CONT  TestSub/par\n"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestSub/par","Output":"    a_test.go:12: par\n"}
	{"Action":"output","Package":"example.com/m/a","Test":"TestSub/par","Output":"--- PASS: TestSub/par (0.00s)\n"}
	{"Action":"pass","Package":"example.com/m/a","Test":"TestSub/par","Elapsed":0}
	{"Action":"output","Package":"example.com/m/a","Test":"TestSub","Output":"--- FAIL: TestSub (0.01s)\n"}
	{"Action":"fail","Package":"example.com/m/a","Test":"TestSub","Elapsed":0.01}
	{"Action":"output","Package":"example.com/m/b","Output":"PASS\n"}
	{"Action":"output","Package":"example.com/m/b","Output":"ok  \texample.com/m/b\t0.02s\n"}
	{"Action":"pass","Package":"example.com/m/b","Elapsed":0.02}
	{"Action":"output","Package":"example.com/m/a","Output":"FAIL\n"}
	{"Action":"output","Package":"example.com/m/a","Output":"FAIL\texample.com/m/a\t0.03s\n"}
	{"Action":"fail","Package":"example.com/m/a","Elapsed":0.03}
`

func TestReportFailingSubtest(t *testing.T) {
	r, out := replay(t, false, failingSubtest)
	// The failing test's output and its failing subtest's, in order, as soon
	// as it fails; passing and skipped subtests' output left out; the
	// capability skip counted, not listed.
	want := "=== RUN   TestSub\n" +
		"    a_test.go:8: parent log\n" +
		"=== RUN   TestSub/bad\n" +
		"    a_test.go:10: bad log\n" +
		"    a_test.go:10: boom\n" +
		"        more\n" +
		"--- FAIL: TestSub/bad (0.00s)\n" +
		"--- FAIL: TestSub (0.01s)\n" +
		"ok  \texample.com/m/b\t0.02s\n" +
		"FAIL\n" +
		"SKIP a 1 subtest skipped: 1 \"driver *x does not implement driver.Replacer\"\n" +
		"FAIL\texample.com/m/a\t0.03s\n"
	if diff := cmp.Diff(want, before(out)); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
	wantSummary := "skipped      a  1 subtest skipped: 1 \"driver *x does not implement driver.Replacer\"\n" +
		"failed       a  TestSub\n" +
		"packages     1 ok, 1 failed, 0 with no test files\n"
	if diff := cmp.Diff(wantSummary, summaryOf(out)); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	// Every test and subtest: TestPass, TestSub/ok, TestSub/par, TestB
	// passed; TestSub/bad and TestSub failed; TestSub/cap skipped.
	if got, want := r.closing(), "4 passed, 2 failed, 1 skipped"; got != want {
		t.Errorf("closing = %q, want %q", got, want)
	}
	if !r.anyFailed() {
		t.Error("anyFailed = false with a failed test")
	}
}

func TestReportVerbose(t *testing.T) {
	_, out := replay(t, true, failingSubtest)
	got := before(out)
	// Every output line once, in order: nothing repeated on failure.
	for _, s := range []string{"hello\n", "ok log\n", "boom\n", "--- FAIL: TestSub (0.01s)\n", "FAIL\texample.com/m/a\t0.03s\n", "ok  \texample.com/m/b\t0.02s\n"} {
		if n := strings.Count(got, s); n != 1 {
			t.Errorf("%q printed %d times, want once:\n%s", s, n, got)
		}
	}
	if !strings.HasSuffix(got, "SKIP a 1 subtest skipped: 1 \"driver *x does not implement driver.Replacer\"\n") {
		t.Errorf("skip count not printed at the package's end:\n%s", got)
	}
}

func TestReportBuildFailure(t *testing.T) {
	r, out := replay(t, false, `
		go: downloading example.com/dep v1.0.0
		{"ImportPath":"example.com/m/c [example.com/m/c.test]","Action":"build-output","Output":"# example.com/m/c [example.com/m/c.test]\n"}
		{"ImportPath":"example.com/m/c [example.com/m/c.test]","Action":"build-output","Output":"c/c_test.go:5:28: undefined: undefined\n"}
		{"ImportPath":"example.com/m/c [example.com/m/c.test]","Action":"build-fail"}
		{"Action":"start","Package":"example.com/m/n"}
		{"Action":"output","Package":"example.com/m/n","Output":"?   \texample.com/m/n\t[no test files]\n"}
		{"Action":"skip","Package":"example.com/m/n","Elapsed":0}
		{"Action":"start","Package":"example.com/m/c"}
		{"Action":"output","Package":"example.com/m/c","Output":"FAIL\texample.com/m/c [build failed]\n"}
		{"Action":"fail","Package":"example.com/m/c","Elapsed":0,"FailedBuild":"example.com/m/c [example.com/m/c.test]"}
	`)
	want := "go: downloading example.com/dep v1.0.0\n" +
		"# example.com/m/c [example.com/m/c.test]\n" +
		"c/c_test.go:5:28: undefined: undefined\n" +
		"?   \texample.com/m/n\t[no test files]\n" +
		"FAIL\texample.com/m/c [build failed]\n"
	if diff := cmp.Diff(want, before(out)); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
	wantSummary := "failed       c  [build failed]\n" +
		"packages     0 ok, 1 failed, 1 with no test files\n"
	if diff := cmp.Diff(wantSummary, summaryOf(out)); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if got, want := r.closing(), "0 passed, 0 failed, 0 skipped"; got != want {
		t.Errorf("closing = %q, want %q", got, want)
	}
	if !r.anyFailed() {
		t.Error("anyFailed = false with a package that failed to build")
	}
}

func TestReportSkips(t *testing.T) {
	const minio = "MinIO/S3 tests skipped: set BLOBCACHE_S3_ENDPOINT"
	var b strings.Builder
	b.WriteString(`
		{"Action":"start","Package":"example.com/m/s3"}
		{"Action":"run","Package":"example.com/m/s3","Test":"TestSteady"}
		{"Action":"output","Package":"example.com/m/s3","Test":"TestSteady","Output":"=== RUN   TestSteady\n"}
		{"Action":"output","Package":"example.com/m/s3","Test":"TestSteady","Output":"    steady_test.go:66: steady-state run skipped in -short mode\n"}
		{"Action":"output","Package":"example.com/m/s3","Test":"TestSteady","Output":"        and a second line\n"}
		{"Action":"output","Package":"example.com/m/s3","Test":"TestSteady","Output":"--- SKIP: TestSteady (0.00s)\n"}
		{"Action":"skip","Package":"example.com/m/s3","Test":"TestSteady","Elapsed":0}
		{"Action":"run","Package":"example.com/m/s3","Test":"TestConformance"}
		{"Action":"run","Package":"example.com/m/s3","Test":"TestConformance/Driver"}
	`)
	for _, c := range []string{"Write", "Read", "List"} {
		name := "TestConformance/Driver/" + c
		b.WriteString(`{"Action":"run","Package":"example.com/m/s3","Test":"` + name + `"}` + "\n")
		b.WriteString(`{"Action":"output","Package":"example.com/m/s3","Test":"` + name + `","Output":"    conformance_test.go:57: ` + minio + `\n"}` + "\n")
		b.WriteString(`{"Action":"output","Package":"example.com/m/s3","Test":"` + name + `","Output":"--- SKIP: ` + name + ` (0.00s)\n"}` + "\n")
		b.WriteString(`{"Action":"skip","Package":"example.com/m/s3","Test":"` + name + `"}` + "\n")
	}
	for i, reason := range []string{"driver *s3.Driver does not implement driver.Replacer", "large object", "driver *s3.Driver does not implement driver.Replacer"} {
		name := "TestConformance/Driver/Cap" + string(rune('A'+i))
		b.WriteString(`{"Action":"run","Package":"example.com/m/s3","Test":"` + name + `"}` + "\n")
		b.WriteString(`{"Action":"output","Package":"example.com/m/s3","Test":"` + name + `","Output":"    driver_cases.go:559: ` + reason + `\n"}` + "\n")
		b.WriteString(`{"Action":"skip","Package":"example.com/m/s3","Test":"` + name + `"}` + "\n")
	}
	b.WriteString(`
		{"Action":"pass","Package":"example.com/m/s3","Test":"TestConformance/Driver"}
		{"Action":"pass","Package":"example.com/m/s3","Test":"TestConformance"}
		{"Action":"output","Package":"example.com/m/s3","Output":"PASS\n"}
		{"Action":"output","Package":"example.com/m/s3","Output":"ok  \texample.com/m/s3\t1.5s\n"}
		{"Action":"pass","Package":"example.com/m/s3","Elapsed":1.5}
	`)
	r, out := replay(t, false, b.String())
	want := "SKIP s3 TestSteady: steady-state run skipped in -short mode …\n" +
		"SKIP s3 TestConformance/Driver/Write: " + minio + "\n" +
		"SKIP s3 TestConformance: 2 more subtests skipped for the same reason\n" +
		"SKIP s3 3 subtests skipped: 2 \"driver *s3.Driver does not implement driver.Replacer\", 1 \"large object\"\n" +
		"ok  \texample.com/m/s3\t1.5s\n"
	if diff := cmp.Diff(want, before(out)); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
	wantSummary := "conformance  s3  TestConformance: 0 subtests passed, 0 failed, 6 skipped (Driver 6)\n" +
		"skipped      s3  TestSteady: steady-state run skipped in -short mode …\n" +
		"skipped      s3  TestConformance/Driver/Write: " + minio + "\n" +
		"skipped      s3  TestConformance: 2 more subtests skipped for the same reason\n" +
		"skipped      s3  3 subtests skipped: 2 \"driver *s3.Driver does not implement driver.Replacer\", 1 \"large object\"\n" +
		"packages     1 ok, 0 failed, 0 with no test files\n"
	if diff := cmp.Diff(wantSummary, summaryOf(out)); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if got, want := r.closing(), "2 passed, 0 failed, 7 skipped"; got != want {
		t.Errorf("closing = %q, want %q", got, want)
	}
	if r.anyFailed() {
		t.Error("anyFailed = true with only skips")
	}
}

func TestSkipReason(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, tc := range []struct{ output, want string }{
		{"=== RUN   T\n    a_test.go:3: why\n--- SKIP: T (0.00s)\n", "why"},
		{"    a_test.go:3: first log\n    a_test.go:4: why: a: b\n", "why: a: b"},
		{"    a_test.go:4: why\n        more\n", "why …"},
		{"=== RUN   T\n--- SKIP: T (0.00s)\n", "(no reason given)"},
		{"    a_test.go:3: " + long + "\n", strings.Repeat("x", maxReason-1) + "…"},
	} {
		p := &pkgState{tests: map[string]*testState{}}
		ts := &testState{}
		for _, l := range strings.SplitAfter(tc.output, "\n") {
			ts.own = append(ts.own, len(p.lines))
			p.lines = append(p.lines, outLine{test: "T", text: l})
		}
		if got := skipReason(p, ts); got != tc.want {
			t.Errorf("skipReason(%q) = %q, want %q", tc.output, got, tc.want)
		}
	}
}

func TestReportPackagePanic(t *testing.T) {
	// TestMain panics after the tests passed: the output is the package's.
	r, out := replay(t, false, `
		{"Action":"start","Package":"example.com/m/d"}
		{"Action":"output","Package":"example.com/m/d","Output":"from main\n"}
		{"Action":"run","Package":"example.com/m/d","Test":"TestOK"}
		{"Action":"output","Package":"example.com/m/d","Test":"TestOK","Output":"=== RUN   TestOK\n"}
		{"Action":"output","Package":"example.com/m/d","Test":"TestOK","Output":"--- PASS: TestOK (0.00s)\n"}
		{"Action":"pass","Package":"example.com/m/d","Test":"TestOK","Elapsed":0}
		{"Action":"output","Package":"example.com/m/d","Output":"PASS\n"}
		{"Action":"output","Package":"example.com/m/d","Output":"panic: main panic\n"}
		{"Action":"output","Package":"example.com/m/d","Output":"\n"}
		{"Action":"output","Package":"example.com/m/d","Output":"goroutine 1 [running]:\n"}
		{"Action":"output","Package":"example.com/m/d","Output":"example.com/m/d.TestMain(0x245cfa822140)\n"}
		{"Action":"output","Package":"example.com/m/d","Output":"FAIL\texample.com/m/d\t5.010s\n"}
		{"Action":"fail","Package":"example.com/m/d","Elapsed":5.011}
	`)
	want := "from main\nPASS\npanic: main panic\n\ngoroutine 1 [running]:\nexample.com/m/d.TestMain(0x245cfa822140)\n" +
		"FAIL\texample.com/m/d\t5.010s\n"
	if diff := cmp.Diff(want, before(out)); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
	if s := summaryOf(out); !strings.Contains(s, "failed       d  outside any test (see its output above)\n") {
		t.Errorf("summary does not name the failed package:\n%s", s)
	}
	if got, want := r.closing(), "1 passed, 0 failed, 0 skipped"; got != want {
		t.Errorf("closing = %q, want %q", got, want)
	}
	if !r.anyFailed() {
		t.Error("anyFailed = false with a failed package")
	}
}

func TestReportUnfinishedTests(t *testing.T) {
	// The timeout panic while a subtest runs, and a data race reported
	// after a test passed: test2json ends neither test.
	r, out := replay(t, false, `
		{"Action":"start","Package":"example.com/m/d"}
		{"Action":"run","Package":"example.com/m/d","Test":"TestRacy"}
		{"Action":"output","Package":"example.com/m/d","Test":"TestRacy","Output":"--- PASS: TestRacy (0.00s)\n"}
		{"Action":"pass","Package":"example.com/m/d","Test":"TestRacy","Elapsed":0}
		{"Action":"output","Package":"example.com/m/d","Test":"TestRacy","Output":"WARNING: DATA RACE\n"}
		{"Action":"run","Package":"example.com/m/d","Test":"TestSlow"}
		{"Action":"output","Package":"example.com/m/d","Test":"TestSlow","Output":"=== RUN   TestSlow\n"}
		{"Action":"run","Package":"example.com/m/d","Test":"TestSlow/inner"}
		{"Action":"output","Package":"example.com/m/d","Test":"TestSlow/inner","Output":"=== RUN   TestSlow/inner\n"}
		{"Action":"output","Package":"example.com/m/d","Test":"TestSlow/inner","Output":"    d_test.go:6: waiting\n"}
		{"Action":"output","Package":"example.com/m/d","Test":"TestSlow/inner","Output":"panic: test timed out after 1s\n"}
		{"Action":"output","Package":"example.com/m/d","Test":"TestSlow/inner","Output":"\trunning tests:\n"}
		{"Action":"output","Package":"example.com/m/d","Output":"FAIL\texample.com/m/d\t1.008s\n"}
		{"Action":"fail","Package":"example.com/m/d","Elapsed":1.009}
	`)
	want := "WARNING: DATA RACE\n=== RUN   TestSlow\n=== RUN   TestSlow/inner\n    d_test.go:6: waiting\n" +
		"panic: test timed out after 1s\n\trunning tests:\nFAIL\texample.com/m/d\t1.008s\n"
	if diff := cmp.Diff(want, before(out)); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
	if s := summaryOf(out); !strings.Contains(s, "failed       d  TestSlow (did not finish)\n") {
		t.Errorf("summary does not name the unfinished test:\n%s", s)
	}
	// TestSlow and TestSlow/inner count as failed.
	if got, want := r.closing(), "1 passed, 2 failed, 0 skipped"; got != want {
		t.Errorf("closing = %q, want %q", got, want)
	}
}

func TestReportInterrupted(t *testing.T) {
	// go test stopped (Ctrl-C) before the package ended.
	r, out := replay(t, false, `
		{"Action":"start","Package":"example.com/m/e"}
		{"Action":"run","Package":"example.com/m/e","Test":"TestLong"}
		{"Action":"output","Package":"example.com/m/e","Test":"TestLong","Output":"    e_test.go:9: half way\n"}
	`)
	want := "    e_test.go:9: half way\nFAIL\texample.com/m/e [did not finish]\n"
	if diff := cmp.Diff(want, before(out)); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
	if got, want := r.closing(), "0 passed, 1 failed, 0 skipped"; got != want {
		t.Errorf("closing = %q, want %q", got, want)
	}
	if !strings.Contains(summaryOf(out), "failed       e  TestLong (did not finish)\n") {
		t.Errorf("summary:\n%s", summaryOf(out))
	}
}

func TestReportConformanceSummary(t *testing.T) {
	var b strings.Builder
	ev := func(pkg, action, test string) {
		b.WriteString(`{"Action":"` + action + `","Package":"example.com/m/` + pkg + `","Test":"` + test + `"}` + "\n")
	}
	for _, pkg := range []string{"drivers/mem", "drivers/s3"} {
		ev(pkg, "run", "TestConformance")
		for _, sec := range []string{"Driver", "Cache"} {
			for _, c := range []string{"A", "B"} {
				for _, v := range []string{"root", "prefix"} {
					name := "TestConformance/" + sec + "/" + c + "/" + v
					ev(pkg, "run", name)
					switch {
					case pkg == "drivers/s3" && sec == "Cache" && c == "B":
						ev(pkg, "skip", name)
					case pkg == "drivers/s3" && name == "TestConformance/Driver/A/root":
						ev(pkg, "fail", name)
					default:
						ev(pkg, "pass", name)
					}
				}
				ev(pkg, "pass", "TestConformance/"+sec+"/"+c)
			}
			ev(pkg, "pass", "TestConformance/"+sec)
		}
		ev(pkg, "pass", "TestConformance")
		ev(pkg, "pass", "")
	}
	ev("conformance", "run", "TestCrossDriver")
	for _, d := range []string{"file", "mem", "minio"} {
		ev("conformance", "run", "TestCrossDriver/"+d)
		action := "pass"
		if d == "minio" {
			action = "skip"
		}
		ev("conformance", action, "TestCrossDriver/"+d)
	}
	ev("conformance", "fail", "TestCrossDriver")
	ev("conformance", "fail", "")
	// A package whose TestConformance skips as a whole.
	ev("examples/x", "run", "TestConformance")
	b.WriteString(`{"Action":"output","Package":"example.com/m/examples/x","Test":"TestConformance","Output":"    x_test.go:3: no server\n"}` + "\n")
	ev("examples/x", "skip", "TestConformance")
	ev("examples/x", "pass", "")

	r, out := replay(t, false, b.String())
	var got []string
	for _, l := range strings.Split(summaryOf(out), "\n") {
		if strings.HasPrefix(l, "conformance ") {
			got = append(got, l)
		}
	}
	want := []string{
		"conformance  conformance  TestCrossDriver: 2 subtests passed, 0 failed, 1 skipped (file, mem, minio skipped); TestCrossDriver itself FAILED",
		"conformance  drivers/mem  TestConformance: 8 subtests passed, 0 failed, 0 skipped (Driver 4, Cache 4)",
		"conformance  drivers/s3   TestConformance: 5 subtests passed, 1 failed, 2 skipped (Driver 4, Cache 4)",
		"conformance  examples/x   TestConformance: skipped: no server",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("conformance lines (-want +got):\n%s", diff)
	}
	// Leaves and parents alike: mem 8+4+2+1 passed; s3 the same but for 1
	// failed and 2 skipped leaves; CrossDriver 2 passed, 1 skipped and 1
	// failed; examples/x 1 skipped.
	if got, want := r.closing(), "29 passed, 2 failed, 4 skipped"; got != want {
		t.Errorf("closing = %q, want %q", got, want)
	}
}

func TestClosingLineFormat(t *testing.T) {
	r, _ := replay(t, false, failingSubtest)
	if !regexp.MustCompile(`^\d+ passed, \d+ failed, \d+ skipped$`).MatchString(r.closing()) {
		t.Errorf("closing line %q is not of the form CI looks for", r.closing())
	}
}

func TestIsFinalLine(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"ok  \tex.com/a\t0.1s\n", true},
		{"ok  \tex.com/a\t(cached)\n", true},
		{"FAIL\tex.com/a [build failed]\n", true},
		{"?   \tex.com/a\t[no test files]\n", true},
		{"FAIL\tex.com/ab\t0.1s\n", false},
		{"FAIL\n", false},
		{"PASS\n", false},
	} {
		if got := isFinalLine(tc.s, "ex.com/a"); got != tc.want {
			t.Errorf("isFinalLine(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func TestBoolFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"-v", "./..."}, true},
		{[]string{"-test.v"}, true},
		{[]string{"--v=true"}, true},
		{[]string{"-v=false"}, false},
		{[]string{"-run", "-v"}, false}, // -run's value
		{[]string{"./...", "-args", "-v"}, false},
		{nil, false},
	} {
		if got := boolFlag(tc.args, "v"); got != tc.want {
			t.Errorf("boolFlag(%q, v) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestModulePath(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ gomod, want string }{
		{"// comment\nmodule github.com/blobcache/blobcache\n\ngo 1.26\n", "github.com/blobcache/blobcache"},
		{"module \"example.com/q\" // quoted\n", "example.com/q"},
		{"go 1.26\n", ""},
	} {
		path := dir + "/go.mod"
		if err := os.WriteFile(path, []byte(tc.gomod), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := modulePath(path); got != tc.want {
			t.Errorf("modulePath(%q) = %q, want %q", tc.gomod, got, tc.want)
		}
	}
	if got := modulePath(dir + "/missing"); got != "" {
		t.Errorf("modulePath of a missing file = %q", got)
	}
}
