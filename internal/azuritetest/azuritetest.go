// Package azuritetest runs tests against Azurite, the Azure Storage
// emulator: it installs the pinned Azurite once per machine (npm, into the
// user cache directory), starts one azurite-blob per test binary on a free
// 127.0.0.1 port with in-memory persistence, makes throwaway containers,
// counts the requests a test sends, and gives the conformance suite a
// harness ([HarnessMaker]).
//
// The server starts on first use ([Env], [Start]) and stops when the test
// binary exits (it watches its standard input, a pipe from the binary) or
// at [Stop] ([Main] calls it after the tests). Starting it sets
// BLOBCACHE_AZURE_ENDPOINT, BLOBCACHE_AZURE_ACCOUNT and BLOBCACHE_AZURE_KEY
// in the process environment, so the child processes of the conformance
// suite's cross-process cases, which inherit it, reach the same server
// instead of starting their own. Setting BLOBCACHE_AZURE_ENDPOINT (a blob
// service URL such as http://127.0.0.1:10000/devstoreaccount1) before the
// tests uses that server: nothing is installed or started; the account and
// key default to Azurite's well-known devstoreaccount1 and its key.
//
// When node or npm is missing, or the install or start fails, tests that
// need Azurite are skipped with a message saying why, except in CI
// (CI=true), where that is a failure (as in package s3test).
package azuritetest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// Version is the pinned Azurite release: the newest whose package.json
// accepts Node.js 20 (3.36.0 wants Node 21, 3.37.0 Node 22).
const Version = "3.35.0"

// Azurite's well-known development account and its key (public, the same
// in every Azurite: documented by Microsoft, no secret).
const (
	Account = "devstoreaccount1"
	Key     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Environment variable names.
const (
	// EnvEndpoint is the blob service URL of a running server, such as
	// http://127.0.0.1:10000/devstoreaccount1.
	EnvEndpoint = "BLOBCACHE_AZURE_ENDPOINT"
	// EnvAccount is the account name (default Account).
	EnvAccount = "BLOBCACHE_AZURE_ACCOUNT"
	// EnvKey is the account's shared key (default Key).
	EnvKey = "BLOBCACHE_AZURE_KEY"
	// EnvInstallDir, when set, is where Azurite is installed instead of
	// the user cache directory's blobcache/azurite-<Version>.
	EnvInstallDir = "BLOBCACHE_AZURITE_DIR"
)

// Config is how to reach the test server.
type Config struct {
	// Endpoint is the blob service URL, such as
	// http://127.0.0.1:10000/devstoreaccount1.
	Endpoint string
	// Account is the storage account.
	Account string
	// Key is the account's shared key. Config's String and Format never
	// print it (Azurite's well-known key is no secret, another server's
	// may be).
	Key string
}

// String returns the config without the key.
func (c Config) String() string {
	key := `""`
	if c.Key != "" {
		key = "REDACTED"
	}
	return fmt.Sprintf("azuritetest.Config{Endpoint:%q Account:%q Key:%s}", c.Endpoint, c.Account, key)
}

// Format makes every fmt verb print String, so the key never shows.
func (c Config) Format(f fmt.State, verb rune) { fmt.Fprint(f, c.String()) }

// server is the Azurite this process started.
type server struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // closed when the process has exited
	dir   string        // its working directory, removed at Stop
}

var (
	mu                     sync.Mutex
	started                bool
	cfg                    Config
	startErr               error
	srv                    *server
	installTook, startTook time.Duration
	logged                 sync.Once
)

// Start returns the server's configuration: the one the environment names
// (BLOBCACHE_AZURE_ENDPOINT), or else Azurite, installed when missing and
// started the first time Start is called in the process. A failure is
// returned by every later call too.
func Start() (Config, error) {
	mu.Lock()
	defer mu.Unlock()
	if started {
		return cfg, startErr
	}
	started = true
	if e := os.Getenv(EnvEndpoint); e != "" {
		cfg = Config{Endpoint: e, Account: os.Getenv(EnvAccount), Key: os.Getenv(EnvKey)}
		if cfg.Account == "" {
			cfg.Account = Account
		}
		if cfg.Key == "" {
			cfg.Key = Key
		}
		return cfg, nil
	}
	cfg, startErr = startAzurite()
	return cfg, startErr
}

func startAzurite() (Config, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return Config{}, errors.New("node is not installed (Azurite needs Node.js 20 and npm)")
	}
	ctx := context.Background()
	dir, took, err := install(ctx)
	if err != nil {
		return Config{}, err
	}
	installTook = took
	begin := time.Now()
	var lastErr error
	for range 3 { // a port taken between picking and binding: pick again
		s, port, err := launch(node, dir)
		if err != nil {
			lastErr = err
			continue
		}
		srv = s
		startTook = time.Since(begin)
		c := Config{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port) + "/" + Account, Account: Account, Key: Key}
		os.Setenv(EnvEndpoint, c.Endpoint)
		os.Setenv(EnvAccount, c.Account)
		os.Setenv(EnvKey, c.Key)
		return c, nil
	}
	return Config{}, lastErr
}

// watchJS, preloaded into node, ends the process when its standard input
// closes: when the test binary that started it exits, however it exits.
const watchJS = `process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
`

// launch starts azurite-blob on a free port and waits until it listens.
func launch(node, installDir string) (*server, int, error) {
	port, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	wd, err := os.MkdirTemp("", "blobcache-azurite-")
	if err != nil {
		return nil, 0, err
	}
	watch := filepath.Join(wd, "watch.js")
	if err := os.WriteFile(watch, []byte(watchJS), 0o644); err != nil {
		os.RemoveAll(wd)
		return nil, 0, err
	}
	cmd := exec.Command(node, "--require", watch, mainScript(installDir),
		"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port),
		"--inMemoryPersistence", "--extentMemoryLimit", "2048",
		"--disableTelemetry", "--skipApiVersionCheck", "--silent")
	cmd.Dir = wd
	stdin, err := cmd.StdinPipe()
	if err != nil {
		os.RemoveAll(wd)
		return nil, 0, err
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		os.RemoveAll(wd)
		return nil, 0, fmt.Errorf("start Azurite: %w", err)
	}
	s := &server{cmd: cmd, stdin: stdin, done: make(chan struct{}), dir: wd}
	go func() {
		cmd.Wait()
		pw.Close()
		close(s.done)
	}()
	ready := make(chan struct{})
	var out strings.Builder
	var outMu sync.Mutex
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			outMu.Lock()
			if out.Len() < 8192 {
				out.WriteString(line + "\n")
			}
			outMu.Unlock()
			if !signalled && strings.Contains(line, "successfully listens on") {
				signalled = true
				close(ready)
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case <-ready:
		return s, port, nil
	case <-s.done:
		os.RemoveAll(wd)
		outMu.Lock()
		defer outMu.Unlock()
		return nil, 0, fmt.Errorf("Azurite exited at start: %s", tail(out.String(), 2000))
	case <-time.After(60 * time.Second):
		s.stop()
		outMu.Lock()
		defer outMu.Unlock()
		return nil, 0, fmt.Errorf("Azurite did not listen within 60s: %s", tail(out.String(), 2000))
	}
}

// stop ends the server: its standard input closes (watch.js exits), and
// after 5 s it is killed.
func (s *server) stop() {
	s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	os.RemoveAll(s.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Stop stops the Azurite this process started, if any. Later calls to
// Start return an error.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if srv != nil {
		srv.stop()
		srv = nil
		if startErr == nil {
			startErr = errors.New("azuritetest: Azurite was stopped")
		}
	}
}

// Main is for a test package's TestMain: it runs the tests and then stops
// the Azurite they started.
//
//	func TestMain(m *testing.M) { azuritetest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Env returns the server configuration, starting Azurite on first use (see
// [Start]). When there is no server it skips the test with a message saying
// why, or fails the test when the environment variable CI is "true". The
// first call in a process logs where the server is and how long its install
// and start took.
func Env(t testing.TB) Config {
	t.Helper()
	c, err := Start()
	if err != nil {
		msg := "Azurite tests skipped: " + err.Error() + " (or set " + EnvEndpoint + " to a running Azure blob service)"
		if os.Getenv("CI") == "true" {
			t.Fatal(strings.Replace(msg, "skipped", "not run", 1) + " (CI=true: a skipped Azurite test is a failure)")
		}
		t.Skip(msg)
	}
	logged.Do(func() {
		mu.Lock()
		defer mu.Unlock()
		if srv != nil {
			inst := "already installed"
			if installTook > 0 {
				inst = "installed in " + installTook.Round(100*time.Millisecond).String()
			}
			t.Logf("azuritetest: Azurite %s at %s: %s, started in %s", Version, c.Endpoint, inst, startTook.Round(10*time.Millisecond))
		}
	})
	return c
}

// Client returns a container client for the named container on cfg's
// server that sends its requests through hc (the Azure SDK's default when
// nil), with shared-key credentials.
func Client(cfg Config, containerName string, hc *http.Client) (*container.Client, error) {
	cred, err := container.NewSharedKeyCredential(cfg.Account, cfg.Key)
	if err != nil {
		return nil, errors.New("azuritetest: the key is not a valid shared key")
	}
	co := &container.ClientOptions{}
	co.Retry = policy.RetryOptions{MaxRetries: -1}
	if hc != nil {
		co.Transport = hc
	}
	return container.NewClientWithSharedKeyCredential(strings.TrimRight(cfg.Endpoint, "/")+"/"+containerName, cred, co)
}

// ContainerName returns a fresh container name: "bct-" and 16 random hex
// digits.
func ContainerName() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "bct-" + hex.EncodeToString(b[:])
}

// NewContainer creates a fresh, uniquely named container and registers a
// cleanup that deletes it with everything in it.
func NewContainer(t testing.TB, cfg Config) string {
	t.Helper()
	name := ContainerName()
	client, err := Client(cfg, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := client.Create(ctx, nil); err != nil {
		t.Fatalf("azuritetest: create container %s at %s: %v", name, cfg.Endpoint, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := client.Delete(ctx, nil); err != nil {
			t.Errorf("azuritetest: delete container %s: %v", name, err)
		}
	})
	return name
}
