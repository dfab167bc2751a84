// Command testall runs every blobcache test, including those that need a real
// S3 server, against a throwaway MinIO on 127.0.0.1. It needs only Go.
//
// Usage, from the repository root:
//
//	go run ./internal/cmd/testall [go test flags] [packages]
//
// With no arguments it fuzzes each fuzz target for 8 s, then runs
//
//	go test -race -count=1 -timeout=25m ./drivers/s3 ./drivers/azure ./drivers/gcs ./...
//
// (every package once: the slowest first, see slowFirst)
//
// Arguments are passed to go test: flags are added to those defaults (and
// replace them when they name the same flag, e.g. -count=3 or -race=false),
// and naming packages replaces ./...; for example
//
//	go run ./internal/cmd/testall -run Conformance ./drivers/...
//
// The runner's own flag -fuzztime=T sets the time per fuzz target (a
// duration, or Nx for N inputs, as for go test; default 8s, or $FUZZTIME if
// set); -fuzztime=0 skips fuzzing. It is not passed to go test.
//
// Steps:
//
//  1. The fuzz step, in a full run only (no packages named and none of -run,
//     -skip, -list or -fuzz): find the fuzz tests of ./... (go list, then the
//     test files' FuzzXxx(*testing.F) functions) and run each, one after the
//     other since the fuzzer uses every core, with
//     go test -run='^$' -fuzz='^FuzzXxx$' -fuzztime=T ./pkg (without -race;
//     the build flags -tags, -mod, -modfile, -overlay, -gcflags, -ldflags,
//     -asmflags, -trimpath and -buildvcs of the arguments are passed on).
//     A fuzz target that fails is a failed test.
//  2. Find MinIO, fake-gcs-server and gotestsum in $(go env GOBIN) or
//     $(go env GOPATH)/bin and check, from their build info, that they are
//     the pinned versions; if not, go install them from a temporary
//     directory (MinIO about 5 minutes the first time, fake-gcs-server
//     about 2, gotestsum 20 s; none enters our go.mod).
//  3. Start MinIO on free 127.0.0.1 ports with random credentials and a
//     temporary data directory, and wait for /minio/health/live and
//     /minio/health/ready; start fake-gcs-server on a free 127.0.0.1 port
//     with an in-memory backend and wait for its bucket listing. (Azurite,
//     for the Azure tests, is installed and started by those tests
//     themselves: internal/azuritetest.)
//  4. Run the tests through gotestsum (gotest.tools/gotestsum, which runs
//     go test -json and prints a line per package, the output of each
//     failed test, and a summary of the skipped and failed tests ending in
//     "DONE N tests, N skipped, N failures"), with BLOBCACHE_S3_ENDPOINT,
//     BLOBCACHE_S3_ACCESS_KEY, BLOBCACHE_S3_SECRET_KEY,
//     BLOBCACHE_S3_REGION and BLOBCACHE_GCS_ENDPOINT set. With -v it prints every line as go test -v
//     does; with -json, go test's events are printed as they are, without
//     gotestsum.
//  5. Stop the servers and remove the temporary directory, also on failure or
//     Ctrl-C, print the fuzz step's closing line ("testall: fuzz: all 9
//     targets passed", or the failed ones with their inputs), and exit:
//     with the test command's exit code when it is not 0, else 1 if a fuzz
//     target failed, else 0.
//
// The fuzz step prints, on standard error, one line per target:
//
//	testall: fuzz FuzzNames (./drivers/file) for 8s: ok, 76048 execs, 9 new interesting, 8s of fuzzing (11.2s with the build)
//
// taken from go test's last "fuzz: elapsed: ..., execs: ..." line, or for a
// target that failed, go test's output (which names the failing input it
// wrote under the package's testdata/fuzz) and then
//
//	testall: fuzz FuzzNames (./drivers/file) for 8s: FAILED, failing input drivers/file/testdata/fuzz/FuzzNames/1de061fa29cfbb3d
//
// To use your own MinIO or S3 instead, set BLOBCACHE_S3_ENDPOINT (and the
// other BLOBCACHE_S3_* variables): MinIO is then neither installed, started
// nor stopped; likewise BLOBCACHE_GCS_ENDPOINT for fake-gcs-server.
//
// The race detector needs cgo (a C compiler). When cgo is off, -race is
// dropped with a warning, except with CI=true, where go test then fails.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The pinned tools, installed with go install from outside our module (so
// neither enters our go.mod): MinIO (AGPL, a test server only) and
// gotestsum, which runs go test -json and prints its results.
var (
	minioTool     = tool{module: "github.com/minio/minio", version: "v0.0.0-20260212201848-7aac2a2c5b7c", name: "minio", installTime: "~5 min"}
	gotestsumTool = tool{module: "gotest.tools/gotestsum", version: "v1.13.0", name: "gotestsum", installTime: "~20 s"}
	// fake-gcs-server (BSD-2-Clause) runs in a process of its own, not
	// instrumented by the race detector (in the test process, drivers/gcs's
	// tests took 979 s under -race; with it out of process, 201 s).
	fakeGCSTool = tool{module: "github.com/fsouza/fake-gcs-server", version: "v1.56.1", name: "fake-gcs-server", installTime: "~2 min"}
)

const (
	readyTimeout = 60 * time.Second
	stopGrace    = 10 * time.Second
)

func main() {
	code, closing := run(os.Args[1:])
	if closing != "" {
		// After MinIO has stopped: nothing may follow this line.
		fmt.Println(closing)
	}
	os.Exit(code)
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "testall: "+format+"\n", args...) }

// run runs the tests and returns the exit code and the closing line about
// the fuzz step ("" when it did not run).
func run(args []string) (code int, closing string) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	env, err := goEnv("GOBIN", "GOPATH", "GOFLAGS", "GOEXE", "CGO_ENABLED", "GOMOD")
	if err != nil {
		logf("%v", err)
		return 1, ""
	}
	race := env["CGO_ENABLED"] == "1" || os.Getenv("CI") == "true"
	if !race {
		logf("warning: cgo is off (no C compiler?), running without -race")
	}
	fuzztime, args, err := fuzzTimeFlag(args, os.Getenv("FUZZTIME"))
	if err != nil {
		logf("%v", err)
		return 2, ""
	}
	flags, _, _, _ := splitArgs(args)
	direct := runsGoTestDirectly(flags)

	// The fuzz step, before MinIO starts: each fuzz target for fuzztime.
	var fuzzed []fuzzResult
	if fuzztime != "" && fullRun(args) {
		buildFlags := fuzzBuildFlags(args)
		targets, err := findFuzzTargets(ctx, buildFlags)
		if err != nil {
			logf("finding the fuzz tests: %v", err)
			return 1, ""
		}
		logf("fuzzing %s for %s each, one after the other (-fuzztime=0 skips this)", plural(len(targets), "target"), fuzztime)
		start := time.Now()
		fuzzed = runFuzz(ctx, targets, fuzztime, buildFlags, os.Environ(), os.Stderr)
		logf("fuzzing took %s", time.Since(start).Round(100*time.Millisecond))
		if ctx.Err() != nil {
			logf("interrupted")
			return 1, fuzzSummary(fuzzed)
		}
	}
	tmp, err := os.MkdirTemp("", "blobcache-testall-")
	if err != nil {
		logf("%v", err)
		return 1, ""
	}
	defer os.RemoveAll(tmp)
	// gotestsum reads go test's events and prints them; with -json the
	// events themselves are the output.
	var gotestsum string
	if !direct {
		if gotestsum, err = findOrInstall(ctx, env, tmp, gotestsumTool); err != nil {
			logf("%v", err)
			return 1, ""
		}
	}
	testEnv := os.Environ()

	if ep := os.Getenv("BLOBCACHE_S3_ENDPOINT"); ep != "" {
		logf("using BLOBCACHE_S3_ENDPOINT=%s from the environment, not starting MinIO", ep)
		if os.Getenv("BLOBCACHE_S3_REGION") == "" {
			testEnv = append(testEnv, "BLOBCACHE_S3_REGION=us-east-1")
		}
	} else {
		bin, err := findOrInstall(ctx, env, tmp, minioTool)
		if err != nil {
			logf("%v", err)
			return 1, ""
		}
		srv, err := startMinIO(ctx, bin, tmp)
		if srv != nil {
			defer srv.stop()
		}
		if err != nil {
			logf("%v", err)
			return 1, ""
		}
		testEnv = append(testEnv,
			"BLOBCACHE_S3_ENDPOINT="+srv.endpoint,
			"BLOBCACHE_S3_ACCESS_KEY="+srv.user,
			"BLOBCACHE_S3_SECRET_KEY="+srv.password,
			"BLOBCACHE_S3_REGION=us-east-1",
		)
	}

	if ep := os.Getenv("BLOBCACHE_GCS_ENDPOINT"); ep != "" {
		logf("using BLOBCACHE_GCS_ENDPOINT=%s from the environment, not starting fake-gcs-server", ep)
	} else {
		bin, err := findOrInstall(ctx, env, tmp, fakeGCSTool)
		if err != nil {
			logf("%v", err)
			return 1, ""
		}
		srv, err := startFakeGCS(ctx, bin, tmp)
		if srv != nil {
			defer srv.stop()
		}
		if err != nil {
			logf("%v", err)
			return 1, ""
		}
		testEnv = append(testEnv, "BLOBCACHE_GCS_ENDPOINT="+srv.endpoint)
	}

	targs := testArgs(args, race)
	var cmd *exec.Cmd
	if direct {
		logf("go %s", strings.Join(targs, " "))
		cmd = exec.CommandContext(ctx, "go", targs...)
	} else {
		gargs := append([]string{"--format", "pkgname-and-test-fails", "--format-hide-empty-pkg", "--"}, targs[1:]...)
		if boolFlag(args, "v") {
			gargs[1] = "standard-verbose"
		}
		logf("gotestsum %s", strings.Join(gargs, " "))
		cmd = exec.CommandContext(ctx, gotestsum, gargs...)
	}
	cmd.Env = testEnv
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// On Ctrl-C or SIGTERM, interrupt go test and the test binaries it runs.
	ownGroup(cmd)
	cmd.Cancel = func() error { return signalGroup(cmd, syscall.SIGINT) }
	cmd.WaitDelay = 20 * time.Second
	start := time.Now()
	err = cmd.Run()
	if ctx.Err() != nil && cmd.Process != nil {
		signalGroup(cmd, syscall.SIGKILL) // whatever outlived the interrupt
	}
	logf("tests took %s", time.Since(start).Round(100*time.Millisecond))
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.ExitCode() > 0:
		code = exitErr.ExitCode()
	default:
		logf("%s: %v", filepath.Base(cmd.Path), err)
		code = 1
	}
	if code == 0 && !fuzzOK(fuzzed) {
		code = 1
	}
	return code, fuzzSummary(fuzzed)
}

// fuzzOK reports whether every fuzz target passed.
func fuzzOK(results []fuzzResult) bool {
	for _, r := range results {
		if !r.ok {
			return false
		}
	}
	return true
}

// fuzzSummary is the closing line about the fuzz step: how many targets
// passed, and the failing ones with their inputs; "" when none ran.
func fuzzSummary(results []fuzzResult) string {
	if len(results) == 0 {
		return ""
	}
	var failed []string
	for _, r := range results {
		if !r.ok {
			failed = append(failed, r.line())
		}
	}
	if len(failed) == 0 {
		return fmt.Sprintf("testall: fuzz: all %d targets passed", len(results))
	}
	return fmt.Sprintf("testall: fuzz: %d of %d targets FAILED:\n  %s", len(failed), len(results), strings.Join(failed, "\n  "))
}

// modulePath returns the module path declared in the go.mod file gomod, or
// "" if there is none.
func modulePath(gomod string) string {
	data, err := os.ReadFile(gomod)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module")
		if ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			rest, _, _ = strings.Cut(rest, "//")
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// goEnv returns the named go env variables.
func goEnv(names ...string) (map[string]string, error) {
	out, err := exec.Command("go", append([]string{"env", "-json"}, names...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("go env: %w", err)
	}
	m := map[string]string{}
	return m, json.Unmarshal(out, &m)
}

// tool is a program the runner installs at a pinned version.
type tool struct {
	module, version, name string
	installTime           string // how long the first install takes, roughly
}

// path is where go install puts t: GOBIN, else the first GOPATH's bin.
func (t tool) path(env map[string]string) string {
	dir := env["GOBIN"]
	if dir == "" {
		dir = filepath.Join(filepath.SplitList(env["GOPATH"])[0], "bin")
	}
	return filepath.Join(dir, t.name+env["GOEXE"])
}

// isPinned reports whether bi is the build info of t at its pinned version.
func (t tool) isPinned(bi *debug.BuildInfo) bool {
	return bi != nil && bi.Main.Path == t.module && bi.Main.Version == t.version && bi.Main.Replace == nil
}

// installGOFLAGS is GOFLAGS without the flags that would tie go install to
// our go.mod (-mod, -modfile), which go install pkg@version rejects.
func installGOFLAGS(goflags string) string {
	var keep []string
	for _, f := range strings.Fields(goflags) {
		name, _, _ := strings.Cut(strings.TrimLeft(f, "-"), "=")
		if name != "mod" && name != "modfile" {
			keep = append(keep, f)
		}
	}
	return strings.Join(keep, " ")
}

// findOrInstall returns the path of t at its pinned version, installing it
// first when the binary there is missing or another version.
func findOrInstall(ctx context.Context, env map[string]string, tmp string, t tool) (string, error) {
	bin := t.path(env)
	if bi, err := buildinfo.ReadFile(bin); err == nil && t.isPinned(bi) {
		logf("using %s %s at %s", t.name, t.version, bin)
		return bin, nil
	}
	logf("installing %s %s (first run only, %s)...", t.name, t.version, t.installTime)
	start := time.Now()
	dir, err := os.MkdirTemp(tmp, "install-") // outside our module, so our go.mod is never touched
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "install", t.module+"@"+t.version)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS="+installGOFLAGS(env["GOFLAGS"]), "GO111MODULE=on", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		return "", fmt.Errorf("installing %s: %w", t.name, err)
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil || !t.isPinned(bi) {
		return "", fmt.Errorf("installed %s, but %s is not %s@%s (%v)", t.name, bin, t.module, t.version, err)
	}
	logf("installed %s in %s", t.name, time.Since(start).Round(time.Second))
	return bin, nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// boolFlags are the go test and build flags that take no separate value.
var boolFlags = map[string]bool{
	"a": true, "asan": true, "benchmem": true, "buildvcs": true, "c": true, "cover": true,
	"failfast": true, "fullpath": true, "json": true, "linkshared": true, "modcacherw": true,
	"msan": true, "n": true, "race": true, "short": true, "trimpath": true, "v": true,
	"work": true, "x": true,
}

// arg is one of the runner's arguments as go test reads them: a flag with
// its value, a package, or everything from -args on.
type arg struct {
	name  string   // a flag's name, without "test."
	value string   // its value ("true" for a bare bool flag)
	raw   []string // the words it was given as (a flag and a separate value are two)
	pkg   bool     // raw[0] names a package
	tail  bool     // raw is -args (or --args) and what follows
	// missing: a flag that takes a value came last, without one.
	missing bool
}

// parseArgs splits args into flags (with their values), packages and the
// tail from -args on, as go test does.
func parseArgs(args []string) []arg {
	var out []arg
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-args" || a == "--args" {
			return append(out, arg{raw: args[i:], tail: true})
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			out = append(out, arg{raw: []string{a}, pkg: true})
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := arg{name: strings.TrimPrefix(name, "test."), value: value, raw: []string{a}}
		switch {
		case hasValue:
		case boolFlags[f.name]:
			f.value = "true"
		case i+1 < len(args):
			i++
			f.value = args[i]
			f.raw = append(f.raw, args[i])
		default:
			f.missing = true
		}
		out = append(out, f)
	}
	return out
}

// splitArgs splits the runner's arguments into go test flags (with their
// values), packages, and everything from -args on. set maps each flag's name,
// without "test.", to its value ("true" for a bare bool flag).
func splitArgs(args []string) (set map[string]string, flags, pkgs, rest []string) {
	set = map[string]string{}
	for _, a := range parseArgs(args) {
		switch {
		case a.tail:
			rest = a.raw
		case a.pkg:
			pkgs = append(pkgs, a.raw[0])
		default:
			flags = append(flags, a.raw...)
			set[a.name] = a.value
		}
	}
	return set, flags, pkgs, rest
}

// runsGoTestDirectly reports whether go test runs without gotestsum: with
// -json (the events are the output) and with -bench (gotestsum reports a
// benchmark's result line as a test of unknown outcome, a failure, and
// benchstat reads go test's own output).
func runsGoTestDirectly(flags map[string]string) bool {
	_, json := flags["json"]
	_, bench := flags["bench"]
	return json || bench
}

// boolFlag reports whether args turn on the bool flag name.
func boolFlag(args []string, name string) bool {
	set, _, _, _ := splitArgs(args)
	v, ok := set[name]
	return ok && v != "false" && v != "0" && v != "f" && v != "F" && v != "FALSE" && v != "False"
}

// slowFirst are the packages a full run names before ./... (which then
// adds only the others): go test starts packages in the order named, and
// these, which wait on their servers for minutes, are the longest. Started
// last (as ./... alone orders them), drivers/s3 ran alone for the last
// minutes of CI with a core idle.
var slowFirst = []string{"./drivers/s3", "./drivers/azure", "./drivers/gcs"}

// testArgs builds go test's arguments: the defaults -race (if race),
// -count=1 and -timeout=25m unless args set those flags, then args, with
// slowFirst and ./... unless args name packages. Arguments from -args on
// go to the test binaries as they are.
func testArgs(args []string, race bool) []string {
	set, flags, pkgs, rest := splitArgs(args)
	out := []string{"test"}
	if _, ok := set["race"]; race && !ok {
		out = append(out, "-race")
	}
	if _, ok := set["count"]; !ok {
		out = append(out, "-count=1")
	}
	if _, ok := set["timeout"]; !ok {
		out = append(out, "-timeout=25m")
	}
	out = append(out, flags...)
	if len(pkgs) == 0 {
		pkgs = append(slices.Clone(slowFirst), "./...")
	}
	out = append(out, pkgs...)
	return append(out, rest...)
}

// plural is "1 noun" or "n nouns".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
