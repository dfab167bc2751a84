// Command testall runs every blobcache test, including those that need a real
// S3 server, against a throwaway MinIO on 127.0.0.1. It needs only Go.
//
// Usage, from the repository root:
//
//	go run ./internal/cmd/testall [go test flags] [packages]
//
// With no arguments it runs
//
//	go test -race -count=1 -timeout=25m ./...
//
// Arguments are passed to go test: flags are added to those defaults (and
// replace them when they name the same flag, e.g. -count=3 or -race=false),
// and naming packages replaces ./...; for example
//
//	go run ./internal/cmd/testall -run Conformance ./drivers/...
//
// Steps:
//
//  1. Find MinIO in $(go env GOBIN) or $(go env GOPATH)/bin and check, from its
//     build info, that it is the pinned version; if not, run
//     go install github.com/minio/minio@<pinned> from a temporary directory
//     (about 5 minutes the first time; MinIO never enters our go.mod).
//  2. Start it on free 127.0.0.1 ports with random credentials and a temporary
//     data directory, and wait for /minio/health/live and /minio/health/ready.
//  3. Run go test with BLOBCACHE_S3_ENDPOINT, BLOBCACHE_S3_ACCESS_KEY,
//     BLOBCACHE_S3_SECRET_KEY and BLOBCACHE_S3_REGION set.
//  4. Stop MinIO and remove the temporary directory, also on failure or
//     Ctrl-C, and exit with go test's exit code.
//
// To use your own MinIO or S3 instead, set BLOBCACHE_S3_ENDPOINT (and the
// other BLOBCACHE_S3_* variables): steps 1, 2 and 4 are skipped.
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
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
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

func main() { os.Exit(run(os.Args[1:])) }

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "testall: "+format+"\n", args...) }

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	env, err := goEnv("GOBIN", "GOPATH", "GOFLAGS", "GOEXE", "CGO_ENABLED")
	if err != nil {
		logf("%v", err)
		return 1
	}
	race := env["CGO_ENABLED"] == "1" || os.Getenv("CI") == "true"
	if !race {
		logf("warning: cgo is off (no C compiler?), running without -race")
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
			return 1
		}
		defer os.RemoveAll(tmp)

		bin, err := findOrInstallMinIO(ctx, env, tmp)
		if err != nil {
			logf("%v", err)
			return 1
		}
		srv, err := startMinIO(ctx, bin, tmp)
		if srv != nil {
			defer srv.stop()
		}
		if err != nil {
			logf("%v", err)
			return 1
		}
		testEnv = append(testEnv,
			"BLOBCACHE_S3_ENDPOINT="+srv.endpoint,
			"BLOBCACHE_S3_ACCESS_KEY="+srv.user,
			"BLOBCACHE_S3_SECRET_KEY="+srv.password,
			"BLOBCACHE_S3_REGION=us-east-1",
		)
	}

	targs := testArgs(args, race)
	logf("go %s", strings.Join(targs, " "))
	cmd := exec.CommandContext(ctx, "go", targs...)
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
		return 0
	case errors.As(err, &exitErr) && exitErr.ExitCode() > 0:
		return exitErr.ExitCode()
	default:
		logf("go test: %v", err)
		return 1
	}
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

// testArgs builds go test's arguments: the defaults -race (if race),
// -count=1 and -timeout=25m unless args set those flags, then args, with
// ./... unless args name packages. Arguments from -args on go to the test
// binaries as they are.
func testArgs(args []string, race bool) []string {
	set := map[string]bool{}
	var flags, pkgs, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-args" || a == "--args" {
			rest = args[i:]
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pkgs = append(pkgs, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		name = strings.TrimPrefix(name, "test.")
		set[name] = true
		flags = append(flags, a)
		if !hasValue && !boolFlags[name] && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	out := []string{"test"}
	if race && !set["race"] {
		out = append(out, "-race")
	}
	if !set["count"] {
		out = append(out, "-count=1")
	}
	if !set["timeout"] {
		out = append(out, "-timeout=25m")
	}
	out = append(out, flags...)
	if len(pkgs) == 0 {
		pkgs = []string{"./..."}
	}
	out = append(out, pkgs...)
	return append(out, rest...)
}
