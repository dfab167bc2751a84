package s3_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"go/build"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/s3"
	"github.com/blobcache/blobcache/internal/s3test"
)

// relMinIOBinary returns the MinIO the test command installs: minio in
// $(go env GOBIN), else $(go env GOPATH)/bin. Without it the test is
// skipped, or fails under CI=true, where the runner installs it.
func relMinIOBinary(t *testing.T) string {
	t.Helper()
	env := map[string]string{}
	if out, err := exec.Command("go", "env", "-json", "GOBIN", "GOPATH", "GOEXE").Output(); err == nil {
		json.Unmarshal(out, &env)
	}
	if env["GOPATH"] == "" {
		env["GOPATH"] = build.Default.GOPATH
	}
	dir := env["GOBIN"]
	if dir == "" {
		dir = filepath.Join(filepath.SplitList(env["GOPATH"])[0], "bin")
	}
	bin := filepath.Join(dir, "minio"+env["GOEXE"])
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("MinIO restart test skipped: no MinIO binary at %s (go run ./internal/cmd/testall installs it)", bin)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: the runner installs it, so its absence is a failure)")
		}
		t.Skip(msg)
	}
	return bin
}

// relFreeAddr returns a free 127.0.0.1 address.
func relFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// relMinIO is a MinIO server process the test owns.
type relMinIO struct {
	bin, dir, addr, console, user, password string
	cmd                                     *exec.Cmd
	done                                    chan struct{}
	out                                     *relLockedBuffer
}

// relLockedBuffer is a bytes.Buffer safe for a writing process and a reading
// test.
type relLockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *relLockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *relLockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (m *relMinIO) start(t *testing.T) {
	t.Helper()
	m.out = new(relLockedBuffer)
	m.cmd = exec.Command(m.bin, "server", "--quiet", "--address", m.addr, "--console-address", m.console, m.dir)
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.user, "MINIO_ROOT_PASSWORD="+m.password,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("starting MinIO: %v", err)
	}
	m.done = make(chan struct{})
	cmd, done := m.cmd, m.done
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for {
		resp, err := client.Get("http://" + m.addr + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			t.Fatalf("MinIO exited before it was ready:\n%s", m.out)
		default:
		}
		if time.Now().After(deadline) {
			m.kill()
			t.Fatalf("MinIO not ready after 60 s:\n%s", m.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (m *relMinIO) kill() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	m.cmd.Process.Kill()
	<-m.done
}

// TestReliabilityMinIORestart starts its own MinIO on 127.0.0.1, runs 16
// workers on a cache over it, kills MinIO with SIGKILL mid-load, restarts it
// on the same address and data directory, and checks: every call while it
// is down fails within its deadline; calls succeed again after the restart;
// every object left in the bucket decodes as an entry that verifies, and no
// acknowledged write is lost.
func TestReliabilityMinIORestart(t *testing.T) {
	if testing.Short() {
		t.Skip("MinIO restart run skipped in -short mode")
	}
	bin := relMinIOBinary(t)
	var secret [12]byte
	crand.Read(secret[:])
	m := &relMinIO{bin: bin, dir: t.TempDir(), addr: relFreeAddr(t), console: relFreeAddr(t),
		user: "reltest", password: hex.EncodeToString(secret[:])}
	m.start(t)
	defer m.kill()

	tr := relTransport()
	defer tr.CloseIdleConnections()
	ctx := t.Context()
	const location = "restart"
	d, err := s3.Open(ctx, s3test.BucketName(), s3.Options{Endpoint: "http://" + m.addr, Region: s3test.DefaultRegion,
		UsePathStyle: true, AccessKey: m.user, SecretKey: m.password, CreateBucket: true, HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatalf("s3.Open on the test's MinIO: %v", err)
	}
	var caches [2]*cache.Cache
	for i := range caches {
		if caches[i], err = cache.New(d, cache.WithLocation(location), cache.WithMaxEntries(0), cache.WithGzip(i == 1)); err != nil {
			t.Fatal(err)
		}
	}
	defer d.Close() // the caches share it: close it once

	const workers, keysPerWorker = 16, 16
	nkeys := workers * keysPerWorker
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("w%02d-k%02d", i/keysPerWorker, i%keysPerWorker)
	}
	ctrKey := func(w int) string { return fmt.Sprintf("w%02d-counter", w) }
	maxAtt := make([]atomic.Int64, nkeys)
	acked := make([]atomic.Int64, nkeys)
	var ctrAtt, ctrAck [workers]atomic.Int64
	for w := range workers {
		if err := caches[0].Set(ctx, ctrKey(w), []byte("0"), cache.NoExpiry); err != nil {
			t.Fatal(err)
		}
	}

	// Phases: 0 up, 1 killed, 2 restarting, 3 restarted.
	var phase atomic.Int32
	type op struct {
		phase      int
		start, end time.Time
		err        error
	}
	ops := make([][]op, workers)
	stop := make(chan struct{})
	var wrong atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			c := caches[w%2]
			for {
				select {
				case <-stop:
					return
				default:
				}
				o := op{phase: int(phase.Load()), start: time.Now()}
				cctx, cancel := context.WithTimeout(context.Background(), relCallTimeout)
				switch r := rng.IntN(10); {
				case r < 5:
					k := w*keysPerWorker + rng.IntN(keysPerWorker)
					v := maxAtt[k].Add(1)
					o.err = c.Set(cctx, keys[k], relValue(keys[k], w, v, rng.IntN(4000)), cache.NoExpiry)
					if o.err == nil {
						acked[k].Store(v) // one writer per key, calls in order
					}
				case r < 8:
					k := rng.IntN(nkeys)
					floor := acked[k].Load()
					var v []byte
					v, o.err = c.Get(cctx, keys[k])
					if errors.Is(o.err, cache.ErrMiss) {
						o.err = nil
						if floor > 0 {
							wrong.Add(1)
							t.Errorf("%s: miss after version %d was acknowledged", keys[k], floor)
						}
					} else if o.err == nil {
						if p, err := relVerify(keys[k], v); err != nil || p.version > maxAtt[k].Load() {
							wrong.Add(1)
							t.Errorf("%s: wrong value (%v, version %d of %d)", keys[k], err, p.version, maxAtt[k].Load())
						}
					}
				default:
					ctrAtt[w].Add(1)
					if _, o.err = c.Incr(cctx, ctrKey(w), 1); o.err == nil {
						ctrAck[w].Add(1)
					}
				}
				cancel()
				o.end = time.Now()
				ops[w] = append(ops[w], o)
			}
		})
	}

	upFor := relDur(1500*time.Millisecond, 5*time.Second)
	downFor := relDur(2*time.Second, 5*time.Second)
	afterFor := relDur(2*time.Second, 5*time.Second)
	time.Sleep(upFor)
	phase.Store(1)
	killedAt := time.Now()
	m.kill()
	t.Logf("MinIO killed (SIGKILL) after %v of load", upFor)
	time.Sleep(downFor)
	phase.Store(2)
	restartAt := time.Now()
	m.start(t)
	readyAt := time.Now()
	phase.Store(3)
	t.Logf("MinIO restarted on %s with the same data directory: ready after %v", m.addr, readyAt.Sub(restartAt).Round(time.Millisecond))
	time.Sleep(afterFor)
	close(stop)
	wg.Wait()

	var upCalls, upErrs, downCalls, downOK, afterCalls, afterErrs int
	var firstOK time.Time
	var maxCall time.Duration
	kinds := map[string]int{}
	for _, wops := range ops {
		for _, o := range wops {
			took := o.end.Sub(o.start)
			maxCall = max(maxCall, took)
			if took > relCallTimeout+relSlack {
				t.Errorf("a call took %v, past its %v deadline (phase %d): %v", took, relCallTimeout, o.phase, o.err)
			}
			switch o.phase {
			case 0:
				upCalls++
				if o.err != nil && o.end.Before(killedAt) {
					upErrs++
					t.Errorf("a call failed before MinIO was killed: %v", o.err)
				}
			case 1:
				// Started while MinIO was down: it cannot succeed before
				// MinIO is started again (a retry may reach the new one).
				if o.start.After(killedAt) {
					downCalls++
					if o.err == nil {
						downOK++
						if o.end.Before(restartAt) {
							t.Errorf("a call succeeded while MinIO was down")
						}
					} else {
						kinds[relErrKind(o.err)]++
					}
				}
			case 3:
				afterCalls++
				if o.err != nil {
					afterErrs++
					t.Errorf("a call started after MinIO was ready again failed: %v", o.err)
				} else if firstOK.IsZero() || o.end.Before(firstOK) {
					firstOK = o.end
				}
			}
		}
	}
	if downCalls == 0 {
		t.Errorf("no call was made while MinIO was down")
	}
	if firstOK.IsZero() {
		t.Fatalf("no call succeeded after the restart")
	}
	t.Logf("up: %d calls, %d errors; started while down: %d calls, %d errors (%v), max call %v; after restart: %d calls, %d errors, first success %v after the restart began (%v after ready)",
		upCalls, upErrs, downCalls, downCalls-downOK, kinds, maxCall.Round(10*time.Millisecond),
		afterCalls, afterErrs, firstOK.Sub(restartAt).Round(time.Millisecond), firstOK.Sub(readyAt).Round(time.Millisecond))

	// Every object left decodes and verifies; no acknowledged write is lost.
	byName := map[string]int{}
	for i, k := range keys {
		byName[caches[0].ObjectName(k)] = i
	}
	ctrNames := map[string]int{}
	for w := range workers {
		ctrNames[caches[0].ObjectName(ctrKey(w))] = w
	}
	var names []string
	token := ""
	for {
		page, err := d.List(ctx, &driver.ListOptions{Prefix: location + "/", PageToken: token})
		if err != nil {
			t.Fatalf("listing after the restart: %v", err)
		}
		for _, o := range page.Objects {
			names = append(names, o.Name)
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	present := map[int]bool{}
	for _, name := range names {
		if w, ok := ctrNames[name]; ok {
			v, err := caches[0].Get(ctx, ctrKey(w))
			if err != nil {
				t.Errorf("counter %d (object %s): %v", w, name, err)
				continue
			}
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || n < ctrAck[w].Load() || n > ctrAtt[w].Load() {
				t.Errorf("counter %d = %q: want between %d acknowledged and %d attempted increments", w, v, ctrAck[w].Load(), ctrAtt[w].Load())
			}
			continue
		}
		k, ok := byName[name]
		if !ok {
			t.Errorf("object %s in the bucket is no entry the test wrote", name)
			continue
		}
		present[k] = true
		v, err := caches[k%2].Get(ctx, keys[k])
		if err != nil {
			// A miss here means the entry did not decode (the cache
			// deletes such entries).
			t.Errorf("%s (object %s) is listed but Get = %v", keys[k], name, err)
			continue
		}
		p, err := relVerify(keys[k], v)
		switch {
		case err != nil:
			t.Errorf("%s: %v", keys[k], err)
		case p.version > maxAtt[k].Load():
			t.Errorf("%s: version %d never written", keys[k], p.version)
		case p.version < acked[k].Load():
			t.Errorf("%s: version %d, older than the acknowledged %d: an acknowledged write was lost", keys[k], p.version, acked[k].Load())
		}
	}
	for k := range keys {
		if acked[k].Load() > 0 && !present[k] {
			t.Errorf("%s: acknowledged at version %d but gone after the restart", keys[k], acked[k].Load())
		}
	}
	listed := map[string]bool{}
	for _, name := range names {
		listed[name] = true
	}
	for name, w := range ctrNames {
		if !listed[name] {
			t.Errorf("counter %d is gone after the restart", w)
		}
	}
	t.Logf("after the restart: %d objects listed, every one decodes and verifies; %d of %d keys present",
		len(names), len(present), nkeys)
	if s := m.out.String(); strings.Contains(s, "panic") {
		t.Logf("MinIO output:\n%s", s)
	}
}
