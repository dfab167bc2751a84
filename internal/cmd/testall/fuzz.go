package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

// defaultFuzzTime is how long each fuzz target runs in a full run.
const defaultFuzzTime = "8s"

// fuzzTarget is one fuzz test of the module.
type fuzzTarget struct {
	pkg  string // import path
	dir  string // package directory relative to the working directory, "./cache"
	name string // FuzzDecodeEntry
}

// fuzzResult is what one go test -fuzz run did.
type fuzzResult struct {
	target   fuzzTarget
	fuzztime string // as given to -fuzztime
	ok       bool
	fuzzStats
	took    time.Duration // the whole go test run, build included
	reason  string        // why it failed, for the summary
	retried bool          // the first run ended in the fuzz deadline race
}

// fuzzStats is what go test -fuzz printed about the run.
type fuzzStats struct {
	elapsed     string // the fuzzer's last "elapsed", e.g. "8s"; "" if it never reported execs
	execs       int64  // from the fuzzer's last status line
	interesting int64  // new interesting inputs, from the same line
	input       string // the failing input go test wrote, relative to the package directory
	noTarget    bool   // go test found no fuzz test to fuzz
	buildFailed bool   // the package did not build
	// deadlineRace: the fuzz test failed with nothing but "context deadline
	// exceeded", with no failing input. That is a race in Go's fuzzing
	// coordinator at the end of -fuzztime (the -fuzztime deadline can reach
	// the coordinator before the workers' context, and is then reported as
	// an error; seen on go1.26.8 here, and widely reported); it is likeliest
	// on a loaded machine. A failure of the fuzz function itself is reported
	// under a nested "--- FAIL" line with its input written to testdata.
	deadlineRace bool
}

// fuzzStatus matches the fuzzer's status lines, e.g.
// "fuzz: elapsed: 8s, execs: 76048 (9506/sec), new interesting: 9 (total: 41)".
var fuzzStatus = regexp.MustCompile(`^fuzz: elapsed: (\S+), execs: (\d+) \([^)]*\), new interesting: (\d+)`)

// parseFuzzOutput reads go test -fuzz's output: the last status line, the
// failing input it wrote, and whether there was anything to fuzz at all.
func parseFuzzOutput(out []byte) fuzzStats {
	var s fuzzStats
	lines := strings.Split(string(out), "\n")
	topFail, nestedFail, deadline := false, false, false
	for i, line := range lines {
		line = strings.TrimRight(line, "\r")
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(line, "--- FAIL: ") {
			topFail = true
			if i+1 < len(lines) && strings.TrimRight(lines[i+1], "\r") == "    context deadline exceeded" {
				deadline = true
			}
		}
		if strings.HasPrefix(trimmed, "--- FAIL: ") && trimmed != line {
			nestedFail = true
		}
		if m := fuzzStatus.FindStringSubmatch(line); m != nil {
			s.elapsed = m[1]
			s.execs, _ = strconv.ParseInt(m[2], 10, 64)
			s.interesting, _ = strconv.ParseInt(m[3], 10, 64)
			continue
		}
		if rest, ok := strings.CutPrefix(trimmed, "Failing input written to "); ok {
			s.input = strings.TrimSpace(rest)
			continue
		}
		if strings.Contains(line, "no fuzz tests to fuzz") {
			s.noTarget = true
		}
		if strings.HasPrefix(line, "FAIL\t") && (strings.HasSuffix(trimmed, "[build failed]") || strings.HasSuffix(trimmed, "[setup failed]")) {
			s.buildFailed = true
		}
	}
	s.deadlineRace = topFail && deadline && !nestedFail && s.input == ""
	return s
}

// fuzzTimeFlag takes testall's own -fuzztime flag out of args (before
// -args; go test would accept it but ignore it without -fuzz) and returns
// the time per target: the flag's, else env (the FUZZTIME variable), else
// defaultFuzzTime. It returns "" when fuzzing is off: a time of zero.
func fuzzTimeFlag(args []string, env string) (fuzztime string, rest []string, err error) {
	fuzztime = defaultFuzzTime
	if env != "" {
		fuzztime = env
	}
	rest = make([]string, 0, len(args))
	for _, a := range parseArgs(args) {
		if a.pkg || a.tail || a.name != "fuzztime" {
			rest = append(rest, a.raw...)
			continue
		}
		if a.missing {
			return "", nil, errors.New("flag -fuzztime needs a value (a duration such as 8s, or Nx; 0 skips fuzzing)")
		}
		fuzztime = a.value
	}
	zero, err := isZeroFuzzTime(fuzztime)
	if err != nil {
		return "", nil, err
	}
	if zero {
		return "", rest, nil
	}
	return fuzztime, rest, nil
}

// isZeroFuzzTime checks a -fuzztime value as go test does (a duration, or
// Nx for N runs) and reports whether it is zero.
func isZeroFuzzTime(s string) (bool, error) {
	if n, ok := strings.CutSuffix(s, "x"); ok {
		if v, err := strconv.ParseInt(n, 10, 64); err == nil && v >= 0 {
			return v == 0, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return false, fmt.Errorf("invalid -fuzztime %q: want a duration such as 8s, or Nx (0 skips fuzzing)", s)
	}
	return d == 0, nil
}

// fuzzFilters are the go test flags that make a run less than the full one;
// with any of them (or packages named) the runner does not fuzz.
var fuzzFilters = []string{"run", "skip", "list", "fuzz"}

// fullRun reports whether args ask for the default full run: no packages
// named and no flag that selects tests.
func fullRun(args []string) bool {
	set, _, pkgs, _ := splitArgs(args)
	if len(pkgs) > 0 {
		return false
	}
	for _, f := range fuzzFilters {
		if _, ok := set[f]; ok {
			return false
		}
	}
	return true
}

// fuzzBuildFlagNames are the go build flags of the runner's arguments that
// the fuzz step passes on to go list and go test -fuzz (-race is not one:
// fuzzing builds are instrumented for coverage instead).
var fuzzBuildFlagNames = []string{"tags", "mod", "modfile", "overlay", "gcflags", "ldflags", "asmflags", "trimpath", "buildvcs"}

// fuzzBuildFlags returns the build flags of args for the fuzz step.
func fuzzBuildFlags(args []string) []string {
	set, _, _, _ := splitArgs(args)
	var out []string
	for _, name := range fuzzBuildFlagNames {
		if v, ok := set[name]; ok {
			out = append(out, "-"+name+"="+v)
		}
	}
	return out
}

// findFuzzTargets lists the fuzz tests of the packages ./... stands for, in
// go list's order of packages and, within one, in the order of its test
// files and of the functions in them.
func findFuzzTargets(ctx context.Context, buildFlags []string) ([]fuzzTarget, error) {
	args := append([]string{"list", "-e", "-json=ImportPath,Dir,TestGoFiles,XTestGoFiles"}, buildFlags...)
	cmd := exec.CommandContext(ctx, "go", append(args, "./...")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v\n%s", err, stderr.Bytes())
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	var targets []fuzzTarget
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath, Dir           string
			TestGoFiles, XTestGoFiles []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list: %v", err)
		}
		dir := p.Dir
		if rel, err := filepath.Rel(cwd, p.Dir); err == nil && rel == "." {
			dir = "."
		} else if err == nil && filepath.IsLocal(rel) {
			dir = "./" + filepath.ToSlash(rel)
		}
		for _, file := range append(p.TestGoFiles, p.XTestGoFiles...) {
			path := filepath.Join(p.Dir, file)
			src, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			names, err := fuzzFuncs(path, src)
			if err != nil {
				// go test reports it, in the fuzz step's run of the package's
				// other targets or in the main run.
				logf("warning: looking for fuzz tests: %v", err)
			}
			for _, name := range names {
				targets = append(targets, fuzzTarget{pkg: p.ImportPath, dir: dir, name: name})
			}
		}
	}
	return targets, nil
}

// fuzzFuncs returns the fuzz tests a test file declares, in order: as for
// go test, top-level functions named Fuzz or FuzzX (X not lower case) with
// one parameter of type *testing.F.
func fuzzFuncs(filename string, src []byte) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), filename, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || fn.Type.TypeParams != nil || !isFuzzName(fn.Name.Name) {
			continue
		}
		if params := fn.Type.Params.List; len(params) == 1 && len(params[0].Names) <= 1 && isPointerToF(params[0].Type) {
			names = append(names, fn.Name.Name)
		}
	}
	return names, nil
}

// isFuzzName reports whether name is Fuzz or FuzzX with X not a lower-case
// letter, as go test requires.
func isFuzzName(name string) bool {
	rest, ok := strings.CutPrefix(name, "Fuzz")
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	r, _ := utf8.DecodeRuneInString(rest)
	return !unicode.IsLower(r)
}

// isPointerToF reports whether a parameter type is *testing.F (with the
// testing package under any name, or dot-imported).
func isPointerToF(t ast.Expr) bool {
	star, ok := t.(*ast.StarExpr)
	if !ok {
		return false
	}
	switch x := star.X.(type) {
	case *ast.Ident:
		return x.Name == "F"
	case *ast.SelectorExpr:
		return x.Sel.Name == "F"
	}
	return false
}

// runFuzz runs each target for fuzztime, one after the other (the fuzzer
// uses every core), printing a line for each and the output of each that
// fails to out, and returns the results; an interrupted target has none.
func runFuzz(ctx context.Context, targets []fuzzTarget, fuzztime string, buildFlags, env []string, out io.Writer) []fuzzResult {
	var results []fuzzResult
	broken := map[string]bool{} // packages that did not build
	for _, t := range targets {
		if ctx.Err() != nil {
			return results
		}
		var res fuzzResult
		if broken[t.pkg] {
			res = fuzzResult{target: t, fuzztime: fuzztime, reason: "not run: its package did not build"}
		} else {
			res = fuzzOne(ctx, t, fuzztime, buildFlags, env, out)
			if res.buildFailed {
				broken[t.pkg] = true
			}
		}
		if ctx.Err() != nil {
			return results // interrupted: not a result
		}
		fmt.Fprintf(out, "testall: %s\n", res.line())
		results = append(results, res)
	}
	return results
}

// fuzzOne runs go test -fuzz for one target, a second time if the first
// run ended in the fuzz deadline race (see fuzzStats.deadlineRace); on
// failure it prints go test's output to out.
func fuzzOne(ctx context.Context, t fuzzTarget, fuzztime string, buildFlags, env []string, out io.Writer) fuzzResult {
	res, output := attempt(ctx, t, fuzztime, buildFlags, env)
	if !res.ok && res.deadlineRace && ctx.Err() == nil {
		fmt.Fprintf(out, "testall: fuzz %s (%s): \"context deadline exceeded\" at the end of -fuzztime with no failing input, "+
			"Go's fuzz coordinator deadline race: running it again\n", t.name, t.dir)
		took := res.took
		res, output = attempt(ctx, t, fuzztime, buildFlags, env)
		res.took += took
		res.retried = true
		if res.deadlineRace {
			res.reason = "\"context deadline exceeded\" twice, no failing input (Go's fuzz deadline race twice?)"
		}
	}
	if !res.ok && ctx.Err() == nil {
		out.Write(output)
		if len(output) > 0 && !bytes.HasSuffix(output, []byte("\n")) {
			io.WriteString(out, "\n")
		}
	}
	return res
}

// attempt is fuzzAttempt, but for tests.
var attempt = fuzzAttempt

// fuzzAttempt runs go test -fuzz for one target and returns the result and
// go test's output.
func fuzzAttempt(ctx context.Context, t fuzzTarget, fuzztime string, buildFlags, env []string) (fuzzResult, []byte) {
	args := []string{"test", "-run=^$", "-fuzz=^" + t.name + "$", "-fuzztime=" + fuzztime}
	args = append(append(args, buildFlags...), t.dir)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = env
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	ownGroup(cmd)
	cmd.Cancel = func() error { return signalGroup(cmd, syscall.SIGINT) }
	cmd.WaitDelay = 20 * time.Second
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() != nil && cmd.Process != nil {
		signalGroup(cmd, syscall.SIGKILL)
	}
	res := fuzzResult{target: t, fuzztime: fuzztime, fuzzStats: parseFuzzOutput(buf.Bytes()), took: time.Since(start)}
	switch {
	case err != nil:
		res.reason = "go test: " + err.Error()
		switch {
		case res.buildFailed:
			res.reason = "did not build"
		case res.input != "":
			res.reason = "failing input " + res.inputPath()
		}
	case res.noTarget:
		res.reason = "go test found no fuzz test " + t.name
	default:
		res.ok = true
	}
	return res, buf.Bytes()
}

// inputPath is the failing input's path relative to the working directory.
func (r *fuzzResult) inputPath() string {
	if r.input == "" || filepath.IsAbs(r.input) {
		return r.input
	}
	return strings.TrimPrefix(filepath.ToSlash(filepath.Join(r.target.dir, r.input)), "./")
}

// line is the runner's line for the result, such as
// "fuzz FuzzNames (./drivers/file) for 8s: ok, 76048 execs, 9 new interesting, 8s of fuzzing (11.2s with the build)".
func (r *fuzzResult) line() string {
	head := fmt.Sprintf("fuzz %s (%s) for %s: ", r.target.name, r.target.dir, r.fuzztime)
	if !r.ok {
		return head + "FAILED, " + r.reason
	}
	took := r.took.Round(100 * time.Millisecond)
	var line string
	if r.elapsed == "" {
		line = head + fmt.Sprintf("ok, no execs reported (%s with the build)", took)
	} else {
		line = head + fmt.Sprintf("ok, %d execs, %d new interesting, %s of fuzzing (%s with the build)", r.execs, r.interesting, r.elapsed, took)
	}
	if r.retried {
		line += ", second run (the first hit Go's fuzz deadline race)"
	}
	return line
}
