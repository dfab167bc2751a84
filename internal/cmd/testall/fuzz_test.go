package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Recorded go test -fuzz outputs (go1.26).
const (
	fuzzPassed = "fuzz: elapsed: 0s, gathering baseline coverage: 0/30 completed\n" +
		"fuzz: elapsed: 0s, gathering baseline coverage: 30/30 completed, now fuzzing with 2 workers\n" +
		"fuzz: elapsed: 3s, execs: 798 (266/sec), new interesting: 7 (total: 37)\n" +
		"fuzz: elapsed: 8s, execs: 21042 (6748/sec), new interesting: 9 (total: 39)\n" +
		"PASS\n" +
		"ok  \tgithub.com/blobcache/blobcache/drivers/file\t8.073s\n"
	fuzzFound = "fuzz: elapsed: 0s, gathering baseline coverage: 0/1 completed\n" +
		"fuzz: elapsed: 0s, gathering baseline coverage: 1/1 completed, now fuzzing with 2 workers\n" +
		"fuzz: minimizing 70-byte failing input file\n" +
		"fuzz: elapsed: 0s, minimizing\n" +
		"--- FAIL: FuzzBad (0.13s)\n" +
		"    --- FAIL: FuzzBad (0.00s)\n" +
		"        fz_test.go:9: boom \"x000\"\n" +
		"    \n" +
		"    Failing input written to testdata/fuzz/FuzzBad/1de061fa29cfbb3d\n" +
		"    To re-run:\n" +
		"    go test -run=FuzzBad/1de061fa29cfbb3d\n" +
		"FAIL\n" +
		"exit status 1\n" +
		"FAIL\texample.com/fz\t0.141s\n"
	fuzzSeedFailed = "fuzz: elapsed: 0s, gathering baseline coverage: 0/1 completed\n" +
		"failure while testing seed corpus entry: FuzzSeedBad/seed#0\n" +
		"--- FAIL: FuzzSeedBad (0.03s)\n" +
		"    --- FAIL: FuzzSeedBad (0.00s)\n" +
		"        testing.go:1927: panic: seed\n" +
		"FAIL\n" +
		"exit status 1\n" +
		"FAIL\texample.com/fz\t0.040s\n"
	fuzzBuildFailed = "# example.com/fz [example.com/fz.test]\n" +
		"./fz_test.go:9:4: undefined: x\n" +
		"FAIL\texample.com/fz [build failed]\n"
	fuzzNone = "testing: warning: no fuzz tests to fuzz\nPASS\nok  \texample.com/fz\t0.010s\n"
	// Go's fuzz deadline race, recorded on go1.26.8 (2 cores, loaded).
	fuzzDeadlineRace = "fuzz: elapsed: 0s, gathering baseline coverage: 0/37 completed\n" +
		"fuzz: elapsed: 1s, gathering baseline coverage: 37/37 completed, now fuzzing with 2 workers\n" +
		"fuzz: elapsed: 3s, execs: 47 (16/sec), new interesting: 0 (total: 37)\n" +
		"fuzz: elapsed: 6s, execs: 2183 (713/sec), new interesting: 7 (total: 44)\n" +
		"fuzz: elapsed: 9s, execs: 2184 (0/sec), new interesting: 7 (total: 44)\n" +
		"fuzz: elapsed: 9s, execs: 2184 (0/sec), new interesting: 7 (total: 44)\n" +
		"--- FAIL: FuzzNames (9.03s)\n" +
		"    context deadline exceeded\n" +
		"FAIL\n" +
		"exit status 1\n" +
		"FAIL\tgithub.com/blobcache/blobcache/drivers/file\t9.099s\n"
	// The fuzz function's own failure with the same message.
	fuzzDeadlineOwn = "fuzz: elapsed: 0s, gathering baseline coverage: 0/1 completed\n" +
		"--- FAIL: FuzzX (0.20s)\n" +
		"    --- FAIL: FuzzX (0.00s)\n" +
		"        x_test.go:9: context deadline exceeded\n" +
		"    \n" +
		"    Failing input written to testdata/fuzz/FuzzX/0123456789abcdef\n" +
		"FAIL\n" +
		"FAIL\texample.com/fz\t0.3s\n"
)

func TestParseFuzzOutput(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      fuzzStats
	}{
		{"passed", fuzzPassed, fuzzStats{elapsed: "8s", execs: 21042, interesting: 9}},
		{"found", fuzzFound, fuzzStats{input: "testdata/fuzz/FuzzBad/1de061fa29cfbb3d"}},
		{"seed failed", fuzzSeedFailed, fuzzStats{}},
		{"build failed", fuzzBuildFailed, fuzzStats{buildFailed: true}},
		{"no target", fuzzNone, fuzzStats{noTarget: true}},
		{"deadline race", fuzzDeadlineRace, fuzzStats{elapsed: "9s", execs: 2184, interesting: 7, deadlineRace: true}},
		{"deadline in the function", fuzzDeadlineOwn, fuzzStats{input: "testdata/fuzz/FuzzX/0123456789abcdef"}},
		{"crlf", strings.ReplaceAll(fuzzPassed, "\n", "\r\n"), fuzzStats{elapsed: "8s", execs: 21042, interesting: 9}},
		{"empty", "", fuzzStats{}},
	} {
		got := parseFuzzOutput([]byte(tc.out))
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(fuzzStats{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestFuzzTimeFlag(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		env      string
		want     string // "" for no fuzzing
		wantRest []string
		wantErr  bool
	}{
		{nil, "", "8s", []string{}, false},
		{nil, "30s", "30s", []string{}, false},
		{[]string{"-fuzztime=2s"}, "30s", "2s", []string{}, false},
		{[]string{"-v", "-fuzztime", "1000x", "-count=2"}, "", "1000x", []string{"-v", "-count=2"}, false},
		{[]string{"--test.fuzztime=1m"}, "", "1m", []string{}, false},
		{[]string{"-fuzztime=0"}, "", "", []string{}, false},
		{[]string{"-fuzztime=0s", "-short"}, "", "", []string{"-short"}, false},
		{nil, "0", "", []string{}, false},
		{[]string{"-fuzztime=0x"}, "", "", []string{}, false},
		// A flag's value is not a flag; -args and what follows are left alone.
		{[]string{"-run", "-fuzztime=1s", "./cache"}, "", "8s", []string{"-run", "-fuzztime=1s", "./cache"}, false},
		{[]string{"./cache", "-args", "-fuzztime=1s"}, "", "8s", []string{"./cache", "-args", "-fuzztime=1s"}, false},
		{[]string{"-fuzztime"}, "", "", nil, true},
		{[]string{"-fuzztime=soon"}, "", "", nil, true},
		{[]string{"-fuzztime=-1s"}, "", "", nil, true},
		{nil, "x", "", nil, true},
	} {
		got, rest, err := fuzzTimeFlag(tc.args, tc.env)
		if (err != nil) != tc.wantErr {
			t.Errorf("fuzzTimeFlag(%q, %q): error %v, want error %v", tc.args, tc.env, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if got != tc.want {
			t.Errorf("fuzzTimeFlag(%q, %q) = %q, want %q", tc.args, tc.env, got, tc.want)
		}
		if diff := cmp.Diff(tc.wantRest, rest); diff != "" {
			t.Errorf("fuzzTimeFlag(%q, %q) rest (-want +got):\n%s", tc.args, tc.env, diff)
		}
	}
}

func TestFullRun(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"-v", "-count=2", "-short", "-race=false"}, true},
		{[]string{"-timeout", "1h", "-json"}, true},
		{[]string{"./cache"}, false},
		{[]string{"./..."}, false}, // packages named: the caller chose
		{[]string{"-run", "Reliability"}, false},
		{[]string{"-test.run=X"}, false},
		{[]string{"-skip=Soak"}, false},
		{[]string{"-list", "."}, false},
		{[]string{"-args", "./cache"}, true},
	} {
		if got := fullRun(tc.args); got != tc.want {
			t.Errorf("fullRun(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestFuzzBuildFlags(t *testing.T) {
	got := fuzzBuildFlags([]string{"-race", "-v", "-tags", "scale,x", "-count=2", "-trimpath", "-gcflags=all=-N", "./cache"})
	want := []string{"-tags=scale,x", "-gcflags=all=-N", "-trimpath=true"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestFuzzFuncs(t *testing.T) {
	const src = `package p_test

import (
	"testing"
	tt "testing"
	. "testing"
)

func FuzzB(f *testing.F) {}
func Fuzz(f *testing.F) {}
func FuzzA(f *tt.F)      {}
func FuzzDot(f *F)       {}
func Fuzz_x(f *testing.F) {}
func Fuzzy(f *testing.F) {}          // lower case after Fuzz: not a fuzz test
func FuzzT(t *testing.T) {}          // not *testing.F
func FuzzTwo(f *testing.F, n int) {} // two parameters
func FuzzValue(f testing.F) {}       // not a pointer
func FuzzGeneric[T any](f *testing.F) {}
func TestFuzzX(t *testing.T) {}

type s struct{}

func (s) FuzzMethod(f *testing.F) {}
`
	got, err := fuzzFuncs("p_test.go", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"FuzzB", "Fuzz", "FuzzA", "FuzzDot", "Fuzz_x"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := fuzzFuncs("bad_test.go", []byte("package p\nfunc (")); err == nil {
		t.Error("no error for a file that does not parse")
	}
}

func TestFindFuzzTargets(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":                "module example.com/m\n\ngo 1.26\n",
		"a/a.go":                "package a\n\nfunc FuzzNotATest() {}\n",
		"a/b_test.go":           "package a\n\nimport \"testing\"\n\nfunc FuzzB2(f *testing.F) {}\nfunc FuzzB1(f *testing.F) {}\n",
		"a/a_test.go":           "package a\n\nimport \"testing\"\n\nfunc FuzzA(f *testing.F) {}\nfunc TestA(t *testing.T) {}\n",
		"a/x_test.go":           "package a_test\n\nimport \"testing\"\n\nfunc FuzzX(f *testing.F) {}\n",
		"a/tagged_test.go":      "//go:build never\n\npackage a\n\nimport \"testing\"\n\nfunc FuzzTagged(f *testing.F) {}\n",
		"a/testdata/t_test.go":  "package t\n\nimport \"testing\"\n\nfunc FuzzTestdata(f *testing.F) {}\n",
		"b/c/c_test.go":         "package c\n\nimport \"testing\"\n\nfunc FuzzC(f *testing.F) {}\n",
		"d/d_test.go":           "package d\n\nimport \"testing\"\n\nfunc TestD(t *testing.T) {}\n",
		"nested/go.mod":         "module example.com/nested\n\ngo 1.26\n",
		"nested/n_test.go":      "package n\n\nimport \"testing\"\n\nfunc FuzzNested(f *testing.F) {}\n",
		"b/c/c_windows_test.go": "package c\n\nimport \"testing\"\n\nfunc FuzzWindows(f *testing.F) {}\n",
	}
	inModule(t, dir, files)
	got, err := findFuzzTargets(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []fuzzTarget{
		{"example.com/m/a", "./a", "FuzzA"},
		{"example.com/m/a", "./a", "FuzzB2"},
		{"example.com/m/a", "./a", "FuzzB1"},
		{"example.com/m/a", "./a", "FuzzX"},
		{"example.com/m/b/c", "./b/c", "FuzzC"},
	}
	if filepath.Separator == '\\' { // c_windows_test.go
		want = append(want, fuzzTarget{"example.com/m/b/c", "./b/c", "FuzzWindows"})
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(fuzzTarget{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Build flags reach go list.
	got, err = findFuzzTargets(t.Context(), []string{"-tags=never"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want)+1 || got[1].name != "FuzzB2" || got[3].name != "FuzzTagged" {
		t.Errorf("with -tags=never: %v", got)
	}
}

func TestFuzzResultLine(t *testing.T) {
	target := fuzzTarget{"example.com/m/drivers/file", "./drivers/file", "FuzzNames"}
	ok := fuzzResult{target: target, fuzztime: "8s", ok: true, took: 11234 * time.Millisecond,
		fuzzStats: fuzzStats{elapsed: "8s", execs: 76048, interesting: 9}}
	if got, want := ok.line(), "fuzz FuzzNames (./drivers/file) for 8s: ok, 76048 execs, 9 new interesting, 8s of fuzzing (11.2s with the build)"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	bad := fuzzResult{target: target, fuzztime: "8s", fuzzStats: fuzzStats{input: "testdata/fuzz/FuzzNames/1de061fa29cfbb3d"}}
	if got, want := bad.inputPath(), "drivers/file/testdata/fuzz/FuzzNames/1de061fa29cfbb3d"; got != want {
		t.Errorf("inputPath = %q, want %q", got, want)
	}
	bad.reason = "failing input " + bad.inputPath()
	if got, want := bad.line(), "fuzz FuzzNames (./drivers/file) for 8s: FAILED, failing input drivers/file/testdata/fuzz/FuzzNames/1de061fa29cfbb3d"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestFuzzSummary(t *testing.T) {
	ok := fuzzResult{target: fuzzTarget{"example.com/m/cache", "./cache", "FuzzA"}, fuzztime: "8s", ok: true, fuzzStats: fuzzStats{elapsed: "8s", execs: 100}}
	bad := fuzzResult{target: fuzzTarget{"example.com/m/cache", "./cache", "FuzzB"}, fuzztime: "8s", reason: "failing input cache/testdata/fuzz/FuzzB/abc"}
	if got := fuzzSummary(nil); got != "" {
		t.Errorf("fuzzSummary(nil) = %q, want none", got)
	}
	if got, want := fuzzSummary([]fuzzResult{ok, ok}), "testall: fuzz: all 2 targets passed"; got != want || !fuzzOK([]fuzzResult{ok, ok}) {
		t.Errorf("fuzzSummary = %q (ok %v), want %q", got, fuzzOK([]fuzzResult{ok, ok}), want)
	}
	want := "testall: fuzz: 1 of 2 targets FAILED:\n  fuzz FuzzB (./cache) for 8s: FAILED, failing input cache/testdata/fuzz/FuzzB/abc"
	if got := fuzzSummary([]fuzzResult{ok, bad}); got != want || fuzzOK([]fuzzResult{ok, bad}) {
		t.Errorf("fuzzSummary =\n%s\nwant\n%s", got, want)
	}
}

func TestRunFuzz(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and fuzzes a module: skipped in -short mode")
	}
	dir := t.TempDir()
	inModule(t, dir, map[string]string{
		"go.mod": "module example.com/m\n\ngo 1.26\n",
		"p/p_test.go": `package p

import "testing"

func FuzzOK(f *testing.F) {
	f.Add("seed")
	f.Fuzz(func(t *testing.T, s string) {})
}

func FuzzBad(f *testing.F) {
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if s != "" {
			t.Fatalf("boom %q", s)
		}
	})
}
`,
		"q/q_test.go": "package q\n\nimport \"testing\"\n\nfunc FuzzQ(f *testing.F) { undefined() }\nfunc FuzzQ2(f *testing.F) {}\n",
	})
	targets, err := findFuzzTargets(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	results := runFuzz(t.Context(), targets, "200x", nil, os.Environ(), &out)
	if len(results) != 4 || fuzzOK(results) {
		t.Errorf("runFuzz returned %d results, all ok %v; want 4, some failed", len(results), fuzzOK(results))
	}
	t.Logf("output:\n%s", out.String())
	lines := map[string]string{}
	for _, l := range strings.Split(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(l, "testall: fuzz "); ok {
			name, _, _ := strings.Cut(rest, " ")
			lines[name] = l
		}
	}
	for name, want := range map[string]string{
		"FuzzOK":  "testall: fuzz FuzzOK (./p) for 200x: ok, 200 execs, ",
		"FuzzBad": "testall: fuzz FuzzBad (./p) for 200x: FAILED, failing input p/testdata/fuzz/FuzzBad/",
		"FuzzQ":   "testall: fuzz FuzzQ (./q) for 200x: FAILED, did not build",
		"FuzzQ2":  "testall: fuzz FuzzQ2 (./q) for 200x: FAILED, not run: its package did not build",
	} {
		if !strings.HasPrefix(lines[name], want) {
			t.Errorf("%s: line %q, want it to start with %q", name, lines[name], want)
		}
	}
	// The failing output is shown: the failure and where its input went.
	for _, s := range []string{`boom "`, "Failing input written to testdata/fuzz/FuzzBad/", "undefined: undefined"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q", s)
		}
	}
	if strings.Count(out.String(), "undefined: undefined") != 1 {
		t.Error("the build failure is shown more than once")
	}
	if got, want := fuzzSummary(results), "testall: fuzz: 3 of 4 targets FAILED:"; !strings.HasPrefix(got, want) {
		t.Errorf("fuzzSummary = %q, want it to start with %q", got, want)
	}
}

func TestFuzzOneRetriesDeadlineRace(t *testing.T) {
	t.Cleanup(func() { attempt = fuzzAttempt })
	target := fuzzTarget{"example.com/m/drivers/file", "./drivers/file", "FuzzNames"}
	for _, tc := range []struct {
		name     string
		outputs  []string // of each attempt
		wantOK   bool
		wantLine string
		shown    string // output printed, "" for none
	}{
		{"pass", []string{fuzzPassed}, true,
			"fuzz FuzzNames (./drivers/file) for 8s: ok, 21042 execs, 9 new interesting, 8s of fuzzing (1s with the build)", ""},
		{"race then pass", []string{fuzzDeadlineRace, fuzzPassed}, true,
			"fuzz FuzzNames (./drivers/file) for 8s: ok, 21042 execs, 9 new interesting, 8s of fuzzing (2s with the build), second run (the first hit Go's fuzz deadline race)", ""},
		{"race twice", []string{fuzzDeadlineRace, fuzzDeadlineRace}, false,
			`fuzz FuzzNames (./drivers/file) for 8s: FAILED, "context deadline exceeded" twice, no failing input (Go's fuzz deadline race twice?)`, fuzzDeadlineRace},
		{"race then crasher", []string{fuzzDeadlineRace, fuzzFound}, false,
			"fuzz FuzzNames (./drivers/file) for 8s: FAILED, failing input drivers/file/testdata/fuzz/FuzzBad/1de061fa29cfbb3d", fuzzFound},
		{"crasher", []string{fuzzFound}, false,
			"fuzz FuzzNames (./drivers/file) for 8s: FAILED, failing input drivers/file/testdata/fuzz/FuzzBad/1de061fa29cfbb3d", fuzzFound},
		{"own deadline error", []string{fuzzDeadlineOwn}, false,
			"fuzz FuzzNames (./drivers/file) for 8s: FAILED, failing input drivers/file/testdata/fuzz/FuzzX/0123456789abcdef", fuzzDeadlineOwn},
	} {
		n := 0
		attempt = func(ctx context.Context, ft fuzzTarget, fuzztime string, buildFlags, env []string) (fuzzResult, []byte) {
			out := tc.outputs[n]
			n++
			res := fuzzResult{target: ft, fuzztime: fuzztime, fuzzStats: parseFuzzOutput([]byte(out)), took: time.Second}
			switch {
			case strings.Contains(out, "\nok  \t"):
				res.ok = true
			case res.input != "":
				res.reason = "failing input " + res.inputPath()
			default:
				res.reason = "go test: exit status 1"
			}
			return res, []byte(out)
		}
		var out strings.Builder
		res := fuzzOne(t.Context(), target, "8s", nil, nil, &out)
		if n != len(tc.outputs) {
			t.Errorf("%s: %d attempts, want %d", tc.name, n, len(tc.outputs))
		}
		if res.ok != tc.wantOK || res.line() != tc.wantLine {
			t.Errorf("%s: ok %v, line\n %s\nwant ok %v, line\n %s", tc.name, res.ok, res.line(), tc.wantOK, tc.wantLine)
		}
		shown := out.String()
		if len(tc.outputs) > 1 {
			note, rest, _ := strings.Cut(shown, "\n")
			if !strings.Contains(note, "deadline race") || !strings.Contains(note, "running it again") {
				t.Errorf("%s: no note of the retry: %q", tc.name, note)
			}
			shown = rest
		}
		if shown != tc.shown {
			t.Errorf("%s: printed\n%s\nwant\n%s", tc.name, shown, tc.shown)
		}
	}
}

// inModule writes files (slash-separated paths under dir) and makes dir, a
// module of its own, the working directory for the rest of the test.
func inModule(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOWORK", "off")
}
