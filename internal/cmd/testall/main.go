// Command testall runs every blobcache test, including those that need a real
// S3 server, against a throwaway MinIO on 127.0.0.1. It needs only Go.
//
// Usage, from the repository root:
//
//	go run ./internal/cmd/testall [go test flags] [packages]
//
// With no arguments it fuzzes each fuzz target for 8 s, then runs
//
//	go test -race -count=1 -timeout=25m ./...
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
//  2. Find MinIO in $(go env GOBIN) or $(go env GOPATH)/bin and check, from its
//     build info, that it is the pinned version; if not, run
//     go install github.com/minio/minio@<pinned> from a temporary directory
//     (about 5 minutes the first time; MinIO never enters our go.mod).
//  3. Start it on free 127.0.0.1 ports with random credentials and a temporary
//     data directory, and wait for /minio/health/live and /minio/health/ready.
//  4. Run go test -json with BLOBCACHE_S3_ENDPOINT, BLOBCACHE_S3_ACCESS_KEY,
//     BLOBCACHE_S3_SECRET_KEY and BLOBCACHE_S3_REGION set, and report its
//     events (see Output).
//  5. Stop MinIO and remove the temporary directory, also on failure or
//     Ctrl-C, print the closing line of counts, and exit: with go test's
//     exit code when it is not 0, else 1 if a fuzz target, a test or a
//     package failed (build failures included), else 0.
//
// # Output
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
// The runner then reads go test's event stream (go doc test2json) and prints, as
// packages finish (their events interleave):
//
//   - go test's own line per package: "ok  \tpkg\t12.3s", "FAIL\tpkg\t...",
//     "FAIL\tpkg [build failed]" or "?   \tpkg\t[no test files]"; build
//     errors and lines of go test's that are not events, as they come;
//   - when a top-level test fails, its output and that of its subtests that
//     did not pass or skip (the output of passing and skipped subtests is
//     left out, as go test does), including panics and race reports;
//   - when a package fails, the output it has not shown yet: output outside
//     any test (a panic in TestMain, a race or a timeout), of tests that
//     never finished, and output that came after its test passed;
//   - "SKIP pkg Test: reason" for each skipped top-level test and for a
//     subtest skipped for a reason that names MinIO or S3 (the reason is the
//     test's last log line, cut to one line; further subtests of the same
//     top-level test skipped for the same reason are counted), and per
//     package a count of the other skipped subtests by reason, such as a
//     driver lacking an optional interface.
//
// Package paths in the runner's own lines are relative to the module. After
// the run comes a summary section, "== testall summary ==", with
//
//   - per package fuzzed, a "fuzz" line: its targets, how many passed and
//     failed, and each one's execs;
//   - per package that has a top-level TestConformance or TestCrossDriver, a
//     "conformance" line counting the suite's leaf subtests passed, failed
//     and skipped, in all and per child of the suite (Driver and Cache; or
//     the drivers compared), so that one sees it ran on mem, file and MinIO;
//   - the skips again, "skipped" lines;
//   - "failed" lines: the fuzz targets that failed, the failed top-level
//     tests, those that did not finish, and packages that failed to build or
//     failed outside any test;
//   - "packages N ok, N failed, N with no test files".
//
// The last line the runner prints is alone on its line:
//
//	412 passed, 0 failed, 3 skipped
//
// counting each pass, fail and skip event of a test or subtest, parents as
// well as leaves (with -count=N, each run), and each fuzz target of the fuzz
// step as one test passed or failed; a test that started but never finished
// in a failed package counts as failed.
//
// With -v, every output line is printed as it comes, as go test -v does,
// before the same skips and summary. With -json, go test's events are
// printed as they are, with no summary and no closing line (a failed fuzz
// target still makes the exit code 1).
//
// To use your own MinIO or S3 instead, set BLOBCACHE_S3_ENDPOINT (and the
// other BLOBCACHE_S3_* variables): MinIO is then neither installed, started
// nor stopped.
//
// The race detector needs cgo (a C compiler). When cgo is off, -race is
// dropped with a warning, except with CI=true, where go test then fails.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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

const (
	minioModule  = "github.com/minio/minio"
	minioVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"
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

// run runs the tests and returns the exit code and the closing line of
// counts ("" when go test did not run or printed its own -json output).
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
	_, userJSON := flags["json"]
	var rep *reporter
	if !userJSON {
		rep = newReporter(os.Stdout, modulePath(env["GOMOD"]), boolFlag(args, "v"))
	}

	// The fuzz step, before MinIO starts: each fuzz target for fuzztime.
	fuzzFailed := false
	if fuzztime != "" && fullRun(args) {
		buildFlags := fuzzBuildFlags(args)
		targets, err := findFuzzTargets(ctx, buildFlags)
		if err != nil {
			logf("finding the fuzz tests: %v", err)
			return 1, ""
		}
		logf("fuzzing %s for %s each, one after the other (-fuzztime=0 skips this)", plural(len(targets), "target"), fuzztime)
		start := time.Now()
		fuzzFailed = !runFuzz(ctx, targets, fuzztime, buildFlags, os.Environ(), os.Stderr, rep)
		logf("fuzzing took %s", time.Since(start).Round(100*time.Millisecond))
		if ctx.Err() != nil {
			logf("interrupted")
			if rep == nil {
				return 1, ""
			}
			rep.finish()
			return 1, rep.closing()
		}
	}
	testEnv := os.Environ()

	if ep := os.Getenv("BLOBCACHE_S3_ENDPOINT"); ep != "" {
		logf("using BLOBCACHE_S3_ENDPOINT=%s from the environment, not starting MinIO", ep)
		if os.Getenv("BLOBCACHE_S3_REGION") == "" {
			testEnv = append(testEnv, "BLOBCACHE_S3_REGION=us-east-1")
		}
	} else {
		tmp, err := os.MkdirTemp("", "blobcache-testall-")
		if err != nil {
			logf("%v", err)
			return 1, ""
		}
		defer os.RemoveAll(tmp)

		bin, err := findOrInstallMinIO(ctx, env, tmp)
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

	targs := testArgs(args, race)
	if !userJSON {
		targs = slices.Insert(targs, 1, "-json")
	}
	logf("go %s", strings.Join(targs, " "))
	cmd := exec.CommandContext(ctx, "go", targs...)
	cmd.Env = testEnv
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	var (
		pw       *io.PipeWriter
		readDone = make(chan struct{})
	)
	if rep != nil {
		var pr *io.PipeReader
		pr, pw = io.Pipe()
		cmd.Stdout = pw
		go func() {
			defer close(readDone)
			br := bufio.NewReader(pr)
			for {
				line, err := br.ReadBytes('\n')
				if len(line) > 0 {
					rep.line(line)
				}
				if err != nil {
					return
				}
			}
		}()
	}
	// On Ctrl-C or SIGTERM, interrupt go test and the test binaries it runs.
	ownGroup(cmd)
	cmd.Cancel = func() error { return signalGroup(cmd, syscall.SIGINT) }
	cmd.WaitDelay = 20 * time.Second
	start := time.Now()
	err = cmd.Run()
	if ctx.Err() != nil && cmd.Process != nil {
		signalGroup(cmd, syscall.SIGKILL) // whatever outlived the interrupt
	}
	if pw != nil {
		pw.Close()
		<-readDone
	}
	logf("tests took %s", time.Since(start).Round(100*time.Millisecond))
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.ExitCode() > 0:
		code = exitErr.ExitCode()
	default:
		logf("go test: %v", err)
		code = 1
	}
	if code == 0 && fuzzFailed {
		code = 1
	}
	if rep == nil {
		return code, ""
	}
	rep.finish()
	if code == 0 && rep.anyFailed() {
		code = 1
	}
	return code, rep.closing()
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

// minioPath is where go install puts MinIO: GOBIN, else the first GOPATH's bin.
func minioPath(env map[string]string) string {
	dir := env["GOBIN"]
	if dir == "" {
		dir = filepath.Join(filepath.SplitList(env["GOPATH"])[0], "bin")
	}
	return filepath.Join(dir, "minio"+env["GOEXE"])
}

// isPinned reports whether bi is the build info of the pinned MinIO.
func isPinned(bi *debug.BuildInfo) bool {
	return bi != nil && bi.Main.Path == minioModule && bi.Main.Version == minioVersion && bi.Main.Replace == nil
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

func findOrInstallMinIO(ctx context.Context, env map[string]string, tmp string) (string, error) {
	bin := minioPath(env)
	if bi, err := buildinfo.ReadFile(bin); err == nil && isPinned(bi) {
		logf("using MinIO %s at %s", minioVersion, bin)
		return bin, nil
	}
	logf("installing MinIO %s (first run only, ~5 min)...", minioVersion)
	start := time.Now()
	dir := filepath.Join(tmp, "install") // outside our module, so our go.mod is never touched
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "install", minioModule+"@"+minioVersion)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS="+installGOFLAGS(env["GOFLAGS"]), "GO111MODULE=on", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		return "", fmt.Errorf("installing MinIO: %w", err)
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil || !isPinned(bi) {
		return "", fmt.Errorf("installed MinIO, but %s is not %s@%s (%v)", bin, minioModule, minioVersion, err)
	}
	logf("installed MinIO in %s", time.Since(start).Round(time.Second))
	return bin, nil
}

type minio struct {
	endpoint, user, password string
	cmd                      *exec.Cmd
	exited                   chan struct{}
}

func startMinIO(ctx context.Context, bin, tmp string) (*minio, error) {
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	consolePort, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(tmp, "minio.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own copy
	m := &minio{
		endpoint: "http://" + apiPort,
		user:     randomHex(10),
		password: randomHex(20),
		exited:   make(chan struct{}),
	}
	m.cmd = exec.Command(bin, "server",
		"--address", apiPort, "--console-address", consolePort, filepath.Join(tmp, "data"))
	m.cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.user,
		"MINIO_ROOT_PASSWORD="+m.password,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off", // no update check over the network
		// Test-server mode: a 256 MiB buffer pool instead of half the RAM,
		// deleted objects purged at once, data dir on the root drive allowed.
		"MINIO_CI_CD=1",
	)
	m.cmd.Stdout, m.cmd.Stderr = logFile, logFile
	ownGroup(m.cmd) // stopped by us, after the tests
	start := time.Now()
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting MinIO: %w", err)
	}
	go func() { m.cmd.Wait(); close(m.exited) }()

	if err := m.waitReady(ctx); err != nil {
		log, _ := os.ReadFile(logPath)
		return m, fmt.Errorf("MinIO at %s: %w; end of its log:\n%s", m.endpoint, err, tail(log, 40))
	}
	logf("MinIO ready in %s at %s", time.Since(start).Round(100*time.Millisecond), m.endpoint)
	return m, nil
}

func (m *minio) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for _, path := range []string{"/minio/health/live", "/minio/health/ready"} {
		for {
			resp, err := client.Get(m.endpoint + path)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				err = errors.New(resp.Status)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("not healthy after %s (GET %s: %v)", readyTimeout, path, err)
			}
			select {
			case <-m.exited:
				return fmt.Errorf("exited early: %v", m.cmd.ProcessState)
			case <-ctx.Done():
				return errors.New("interrupted")
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// stop stops MinIO: SIGTERM, then a kill after stopGrace.
func (m *minio) stop() {
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil { // no SIGTERM on Windows
		m.cmd.Process.Kill()
	}
	select {
	case <-m.exited:
	case <-time.After(stopGrace):
		logf("MinIO did not stop within %s, killing it", stopGrace)
		m.cmd.Process.Kill()
		<-m.exited
	}
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

// boolFlag reports whether args turn on the bool flag name.
func boolFlag(args []string, name string) bool {
	set, _, _, _ := splitArgs(args)
	v, ok := set[name]
	return ok && v != "false" && v != "0" && v != "f" && v != "F" && v != "FALSE" && v != "False"
}

// testArgs builds go test's arguments: the defaults -race (if race),
// -count=1 and -timeout=25m unless args set those flags, then args, with
// ./... unless args name packages. Arguments from -args on go to the test
// binaries as they are.
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
		pkgs = []string{"./..."}
	}
	out = append(out, pkgs...)
	return append(out, rest...)
}
