package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// event is one line of go test -json output (see go doc test2json).
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	ImportPath  string // build-output and build-fail events
	FailedBuild string // a package's fail event, when its build failed
}

// Test statuses. A test whose last event is run, pause or cont is running.
const (
	running = "running"
	passed  = "pass"
	failed  = "fail"
	skipped = "skip"
)

// outLine is one Output event of a package, kept until the package ends.
type outLine struct {
	test    string // "" for output outside any test
	text    string
	late    bool // arrived after its test passed or skipped
	printed bool
}

type testState struct {
	status string
	own    []int // indices in pkgState.lines of the test's own output since its last run
	family []int // for a top-level test: its and its subtests' output
}

// result is one pass, fail or skip of a test.
type result struct{ test, action string }

// skipNote is a skip reported on a line of its own.
type skipNote struct {
	test, reason string
	more         int // further subtests of the same top-level test skipped for the same reason
}

type pkgState struct {
	path      string
	lines     []outLine
	tests     map[string]*testState
	results   []result
	result    string // "" until the package ends, then pass, fail or skip (no test files)
	build     bool   // its build failed
	final     string // go test's closing line for the package
	unfinish  []string
	notes     []*skipNote
	noteIndex map[[2]string]*skipNote // by top-level test and reason
	capSkips  map[string]int          // other skipped subtests, by reason
}

// reporter turns go test -json output into what a reader of a CI log needs:
// go test's line per package, the output of failing tests and packages,
// the skips that matter, and a summary. See the package comment.
type reporter struct {
	out     io.Writer
	module  string // trimmed from package paths in the runner's own lines
	verbose bool   // print every output line as it comes, like go test -v
	pkgs    map[string]*pkgState
	order   []string     // packages as they started
	fuzz    []fuzzResult // the fuzz step's targets, in the order they ran

	passed, failed, skipped int
}

func newReporter(out io.Writer, module string, verbose bool) *reporter {
	return &reporter{out: out, module: module, verbose: verbose, pkgs: map[string]*pkgState{}}
}

// line handles one line of go test's standard output. Lines that are not
// test2json events are printed as they are.
func (r *reporter) line(b []byte) {
	var e event
	if !bytes.HasPrefix(b, []byte("{")) || json.Unmarshal(b, &e) != nil || e.Action == "" {
		r.out.Write(b)
		if !bytes.HasSuffix(b, []byte("\n")) {
			io.WriteString(r.out, "\n")
		}
		return
	}
	r.event(&e)
}

func (r *reporter) pkg(path string) *pkgState {
	p := r.pkgs[path]
	if p == nil {
		p = &pkgState{path: path, tests: map[string]*testState{},
			noteIndex: map[[2]string]*skipNote{}, capSkips: map[string]int{}}
		r.pkgs[path] = p
		r.order = append(r.order, path)
	}
	return p
}

func (p *pkgState) test(name string) *testState {
	t := p.tests[name]
	if t == nil {
		t = &testState{}
		p.tests[name] = t
	}
	return t
}

func topLevel(test string) string {
	top, _, _ := strings.Cut(test, "/")
	return top
}

func (r *reporter) event(e *event) {
	switch e.Action {
	case "build-output":
		io.WriteString(r.out, e.Output)
		return
	case "build-fail":
		return
	}
	if e.Package == "" {
		return
	}
	p := r.pkg(e.Package)
	if e.Test == "" {
		switch e.Action {
		case "output":
			p.lines = append(p.lines, outLine{text: e.Output})
			if r.verbose {
				io.WriteString(r.out, e.Output)
				p.lines[len(p.lines)-1].printed = true
			}
		case "pass", "fail", "skip":
			p.build = e.FailedBuild != ""
			r.endPackage(p, e.Action)
		}
		return
	}
	t := p.test(e.Test)
	switch e.Action {
	case "run":
		t.status = running
		t.own = nil
	case "pause", "cont":
		if t.status == "" {
			t.status = running
		}
	case "output":
		i := len(p.lines)
		p.lines = append(p.lines, outLine{test: e.Test, text: e.Output,
			late: t.status == passed || t.status == skipped, printed: r.verbose})
		if r.verbose {
			io.WriteString(r.out, e.Output)
		}
		t.own = append(t.own, i)
		top := p.test(topLevel(e.Test))
		top.family = append(top.family, i)
	case "pass", "fail", "skip":
		t.status = e.Action
		p.results = append(p.results, result{e.Test, e.Action})
		switch e.Action {
		case "pass":
			r.passed++
		case "fail":
			r.failed++
			if !strings.Contains(e.Test, "/") {
				r.printFailure(p, t)
			}
		case "skip":
			r.skipped++
			r.noteSkip(p, e.Test, skipReason(p, t))
		}
	}
}

// fuzzed counts a fuzz target of the fuzz step as a passed or failed test
// and keeps it for the summary.
func (r *reporter) fuzzed(res fuzzResult) {
	r.fuzz = append(r.fuzz, res)
	if res.ok {
		r.passed++
	} else {
		r.failed++
	}
}

// printFailure prints the output of a failed top-level test: its own and
// that of its subtests that did not pass or skip, as go test does.
func (r *reporter) printFailure(p *pkgState, top *testState) {
	for _, i := range top.family {
		if l := &p.lines[i]; !l.printed && p.shown(l) {
			io.WriteString(r.out, l.text)
			l.printed = true
		}
	}
}

// shown reports whether l belongs in the output of a failure: output outside
// tests, of tests that failed or did not finish, and late output.
func (p *pkgState) shown(l *outLine) bool {
	if l.test == "" || l.late {
		return true
	}
	s := p.tests[l.test].status
	return s != passed && s != skipped
}

func (r *reporter) endPackage(p *pkgState, action string) {
	p.result = action
	final := -1
	for i := len(p.lines) - 1; i >= 0; i-- {
		if l := p.lines[i]; l.test == "" {
			if isFinalLine(l.text, p.path) {
				final = i
			}
			break
		}
	}
	if final >= 0 {
		p.final = p.lines[final].text
	} else {
		// go test always prints one; make it up should it be missing.
		switch action {
		case "pass":
			p.final = "ok  \t" + p.path + "\n"
		case "fail":
			p.final = "FAIL\t" + p.path + "\n"
		default:
			p.final = "?   \t" + p.path + "\t[no test files]\n"
		}
	}
	if action == "fail" {
		// Tests that never finished (a crash, os.Exit or the timeout) failed.
		for _, name := range slices.Sorted(maps.Keys(p.tests)) {
			if t := p.tests[name]; t.status == running {
				t.status = failed
				p.unfinish = append(p.unfinish, name)
				r.failed++
			}
		}
		for i := range p.lines {
			if l := &p.lines[i]; i != final && !l.printed && p.shown(l) {
				io.WriteString(r.out, l.text)
				l.printed = true
			}
		}
	}
	for _, s := range p.skipCounts() {
		fmt.Fprintf(r.out, "SKIP %s %s\n", r.short(p.path), s)
	}
	if final < 0 || !p.lines[final].printed {
		io.WriteString(r.out, p.final)
	}
}

// isFinalLine reports whether s is go test's closing line for pkg.
func isFinalLine(s, pkg string) bool {
	for _, prefix := range []string{"ok  \t", "FAIL\t", "?   \t"} {
		if strings.HasPrefix(s, prefix+pkg) {
			rest := s[len(prefix)+len(pkg):]
			return rest == "\n" || rest == "" || rest[0] == '\t' || rest[0] == ' '
		}
	}
	return false
}

// notable matches skip reasons that name the S3 tests' server (but not a
// type such as *s3.Driver).
var notable = regexp.MustCompile(`(?i:minio)|\bS3\b`)

// noteSkip reports a skip: a top-level test, or a subtest skipped for a
// reason that names MinIO or S3, on a line of its own (once per top-level
// test and reason); other subtests are counted per package and reason.
func (r *reporter) noteSkip(p *pkgState, test, reason string) {
	if strings.Contains(test, "/") && !notable.MatchString(reason) {
		p.capSkips[reason]++
		return
	}
	key := [2]string{topLevel(test), reason}
	if n := p.noteIndex[key]; n != nil {
		n.more++
		return
	}
	n := &skipNote{test: test, reason: reason}
	p.noteIndex[key] = n
	p.notes = append(p.notes, n)
	fmt.Fprintf(r.out, "SKIP %s %s: %s\n", r.short(p.path), test, reason)
}

// skipCounts describes the skips not reported one by one: the further
// skips of a reported reason, and the counts of the other reasons.
func (p *pkgState) skipCounts() []string {
	var out []string
	for _, n := range p.notes {
		if n.more > 0 {
			out = append(out, fmt.Sprintf("%s: %s skipped for the same reason", topLevel(n.test), plural(n.more, "more subtest")))
		}
	}
	if len(p.capSkips) == 0 {
		return out
	}
	reasons := slices.Collect(maps.Keys(p.capSkips))
	total := 0
	for _, n := range p.capSkips {
		total += n
	}
	slices.SortFunc(reasons, func(a, b string) int {
		if c := p.capSkips[b] - p.capSkips[a]; c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	const maxReasons = 3
	var parts []string
	for i, reason := range reasons {
		if i == maxReasons {
			parts = append(parts, plural(len(reasons)-maxReasons, "other reason"))
			break
		}
		parts = append(parts, fmt.Sprintf("%d %q", p.capSkips[reason], reason))
	}
	return append(out, fmt.Sprintf("%s skipped: %s", plural(total, "subtest"), strings.Join(parts, ", ")))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// logHeader matches the start of a t.Log line: its indentation, file and line.
var logHeader = regexp.MustCompile(`^\s+[^\s:]+\.go:\d+: `)

// maxReason bounds the length of a skip reason, in characters.
const maxReason = 240

// skipReason returns the message of the test's last log entry, which for a
// skipped test is the reason given to t.Skip, on one line.
func skipReason(p *pkgState, t *testState) string {
	var b strings.Builder
	for _, i := range t.own {
		b.WriteString(p.lines[i].text)
	}
	var msg string
	cont := false
	for _, l := range strings.Split(b.String(), "\n") {
		trimmed := strings.TrimSpace(l)
		switch {
		case trimmed == "" || isFraming(trimmed):
		case logHeader.MatchString(l):
			msg, cont = strings.TrimSpace(l[len(logHeader.FindString(l)):]), false
		case msg != "":
			cont = true
		}
	}
	if msg == "" {
		return "(no reason given)"
	}
	if cont {
		msg += " …"
	}
	if utf8.RuneCountInString(msg) > maxReason {
		msg = string([]rune(msg)[:maxReason-1]) + "…"
	}
	return msg
}

// isFraming reports whether a trimmed output line is one of the testing
// package's own: === RUN, --- PASS and the like.
func isFraming(s string) bool {
	for _, prefix := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME", "--- PASS", "--- FAIL", "--- SKIP", "--- BENCH"} {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// finish ends packages that did not (go test was interrupted or crashed),
// printing what they have, then prints the summary section.
func (r *reporter) finish() {
	for _, path := range r.order {
		p := r.pkgs[path]
		if p.result == "" && (len(p.tests) > 0 || len(p.lines) > 0) {
			p.lines = append(p.lines, outLine{text: "FAIL\t" + path + " [did not finish]\n"})
			r.endPackage(p, "fail")
		}
	}
	r.summary()
}

// suites are the top-level tests the summary reports subtest counts for.
var suites = []string{"TestConformance", "TestCrossDriver"}

func (r *reporter) summary() {
	paths := slices.Clone(r.order)
	slices.SortFunc(paths, func(a, b string) int { return strings.Compare(r.short(a), r.short(b)) })
	width := 0
	for _, path := range paths {
		width = max(width, len(r.short(path)))
	}
	// The fuzz step's packages, in the order they were fuzzed.
	var fuzzPkgs []string
	fuzzByPkg := map[string][]*fuzzResult{}
	for i := range r.fuzz {
		res := &r.fuzz[i]
		if fuzzByPkg[res.target.pkg] == nil {
			fuzzPkgs = append(fuzzPkgs, res.target.pkg)
			width = max(width, len(r.short(res.target.pkg)))
		}
		fuzzByPkg[res.target.pkg] = append(fuzzByPkg[res.target.pkg], res)
	}
	row := func(kind, path, format string, args ...any) {
		fmt.Fprintf(r.out, "%-12s %-*s  %s\n", kind, width, r.short(path), fmt.Sprintf(format, args...))
	}

	fmt.Fprintf(r.out, "\n== testall summary ==\n")
	for _, path := range paths {
		p := r.pkgs[path]
		for _, suite := range suites {
			if t := p.tests[suite]; t != nil {
				row("conformance", path, "%s: %s", suite, suiteLine(p, suite))
			}
		}
	}
	for _, path := range fuzzPkgs {
		row("fuzz", path, "%s", fuzzLine(fuzzByPkg[path]))
	}
	for _, path := range paths {
		p := r.pkgs[path]
		for _, n := range p.notes {
			row("skipped", path, "%s: %s", n.test, n.reason)
		}
		for _, s := range p.skipCounts() {
			row("skipped", path, "%s", s)
		}
	}
	for _, res := range r.fuzz {
		if !res.ok {
			row("failed", res.target.pkg, "%s (fuzzing for %s: %s)", res.target.name, res.fuzztime, res.reason)
		}
	}
	var ok, fail, none int
	for _, path := range paths {
		p := r.pkgs[path]
		switch p.result {
		case "pass":
			ok++
		case "skip":
			none++
		case "fail":
			fail++
			n := 0
			for _, res := range p.results {
				if res.action == failed && !strings.Contains(res.test, "/") {
					row("failed", path, "%s", res.test)
					n++
				}
			}
			for _, name := range p.unfinish {
				if !strings.Contains(name, "/") {
					row("failed", path, "%s (did not finish)", name)
					n++
				}
			}
			switch {
			case p.build:
				row("failed", path, "[build failed]")
			case strings.Contains(p.final, "[did not finish]"):
				row("failed", path, "[did not finish]")
			case n == 0:
				row("failed", path, "outside any test (see its output above)")
			}
		}
	}
	fmt.Fprintf(r.out, "packages     %d ok, %d failed, %d with no test files\n", ok, fail, none)
}

// fuzzLine sums up the fuzz step's targets of one package, such as
// "2 targets for 8s each: 2 ok (FuzzA 76048 execs, FuzzB 1200 execs)".
func fuzzLine(results []*fuzzResult) string {
	var okN, failN int
	var parts []string
	for _, res := range results {
		switch {
		case !res.ok:
			failN++
			parts = append(parts, res.target.name+" FAILED")
		case res.elapsed == "":
			okN++
			parts = append(parts, res.target.name+" ok")
		default:
			okN++
			parts = append(parts, fmt.Sprintf("%s %d execs", res.target.name, res.execs))
		}
	}
	each := ""
	if len(results) > 1 {
		each = " each"
	}
	line := fmt.Sprintf("%s for %s%s: %d ok", plural(len(results), "target"), results[0].fuzztime, each, okN)
	if failN > 0 {
		line += fmt.Sprintf(", %d FAILED", failN)
	}
	return line + " (" + strings.Join(parts, ", ") + ")"
}

// suiteLine counts the leaf subtests of a suite: in all, and per child of
// the top-level test (Driver and Cache for TestConformance, the drivers for
// TestCrossDriver).
func suiteLine(p *pkgState, suite string) string {
	parents := map[string]bool{}
	for name := range p.tests {
		for i := len(name) - 1; i >= 0; i-- {
			if name[i] == '/' {
				parents[name[:i]] = true
			}
		}
	}
	var children []string
	perChild := map[string]int{}
	status := map[string]string{}
	var pass, fail, skip int
	for _, res := range p.results {
		rest, ok := strings.CutPrefix(res.test, suite+"/")
		if !ok || parents[res.test] {
			continue
		}
		child, _, _ := strings.Cut(rest, "/")
		if _, seen := perChild[child]; !seen {
			children = append(children, child)
		}
		perChild[child]++
		status[child] = res.action
		switch res.action {
		case passed:
			pass++
		case failed:
			fail++
		case skipped:
			skip++
		}
	}
	for _, name := range p.unfinish {
		if rest, ok := strings.CutPrefix(name, suite+"/"); ok && !parents[name] {
			child, _, _ := strings.Cut(rest, "/")
			if _, seen := perChild[child]; !seen {
				children = append(children, child)
			}
			perChild[child]++
			status[child] = failed
			fail++
		}
	}
	if len(children) == 0 {
		switch t := p.tests[suite]; t.status {
		case skipped:
			return "skipped: " + skipReason(p, t)
		case failed:
			return "FAILED, no subtests ran"
		case passed:
			return "passed, no subtests ran"
		default:
			return "did not run"
		}
	}
	parts := make([]string, len(children))
	for i, c := range children {
		switch {
		case parents[suite+"/"+c]:
			parts[i] = fmt.Sprintf("%s %d", c, perChild[c])
		case status[c] == failed:
			parts[i] = c + " FAILED"
		case status[c] == skipped:
			parts[i] = c + " skipped"
		default:
			parts[i] = c
		}
	}
	line := fmt.Sprintf("%d subtests passed, %d failed, %d skipped (%s)", pass, fail, skip, strings.Join(parts, ", "))
	if p.tests[suite].status == failed && fail == 0 {
		line += "; " + suite + " itself FAILED"
	}
	return line
}

// closing is the runner's last line: every test and subtest counted once
// per run (parents as well as leaves).
func (r *reporter) closing() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", r.passed, r.failed, r.skipped)
}

// anyFailed reports whether a test or a package failed (including builds).
func (r *reporter) anyFailed() bool {
	if r.failed > 0 {
		return true
	}
	for _, p := range r.pkgs {
		if p.result == "fail" {
			return true
		}
	}
	return false
}

// short returns a package path without the module path.
func (r *reporter) short(path string) string {
	if r.module != "" {
		if rest, ok := strings.CutPrefix(path, r.module+"/"); ok {
			return rest
		}
	}
	return path
}
