package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// server is a test server process testall started: MinIO or
// fake-gcs-server, on 127.0.0.1, logging to a file in the temporary
// directory.
type server struct {
	name     string // for messages: "MinIO"
	endpoint string // http://127.0.0.1:PORT
	logPath  string
	cmd      *exec.Cmd
	exited   chan struct{}
}

// startServer starts bin with args (and env added to ours) as the server
// name at endpoint, and waits until a GET of each of readyPaths answers 200.
func startServer(ctx context.Context, name, endpoint, bin, logPath string, args, env []string, readyPaths ...string) (*server, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own copy
	s := &server{name: name, endpoint: endpoint, logPath: logPath, exited: make(chan struct{})}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	ownGroup(s.cmd) // stopped by us, after the tests
	start := time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	if err := s.waitReady(ctx, readyPaths); err != nil {
		log, _ := os.ReadFile(logPath)
		return s, fmt.Errorf("%s at %s: %w; end of its log:\n%s", name, endpoint, err, tail(log, 40))
	}
	logf("%s ready in %s at %s", name, time.Since(start).Round(100*time.Millisecond), endpoint)
	return s, nil
}

func (s *server) waitReady(ctx context.Context, paths []string) error {
	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for _, path := range paths {
		for {
			resp, err := client.Get(s.endpoint + path)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				err = errors.New(resp.Status)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("not ready after %s (GET %s: %v)", readyTimeout, path, err)
			}
			select {
			case <-s.exited:
				return fmt.Errorf("exited early: %v", s.cmd.ProcessState)
			case <-ctx.Done():
				return errors.New("interrupted")
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// stop stops the server: SIGTERM, then a kill after stopGrace.
func (s *server) stop() {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil { // no SIGTERM on Windows
		s.cmd.Process.Kill()
	}
	select {
	case <-s.exited:
	case <-time.After(stopGrace):
		logf("%s did not stop within %s, killing it", s.name, stopGrace)
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// minio is a MinIO server and its random credentials.
type minio struct {
	*server
	user, password string
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
	m := &minio{user: randomHex(10), password: randomHex(20)}
	m.server, err = startServer(ctx, "MinIO", "http://"+apiPort, bin, filepath.Join(tmp, "minio.log"),
		[]string{"server", "--address", apiPort, "--console-address", consolePort, filepath.Join(tmp, "data")},
		[]string{
			"MINIO_ROOT_USER=" + m.user,
			"MINIO_ROOT_PASSWORD=" + m.password,
			"MINIO_BROWSER=off",
			"MINIO_UPDATE=off", // no update check over the network
			// Test-server mode: a 256 MiB buffer pool instead of half the
			// RAM, deleted objects purged at once, data dir on the root
			// drive allowed.
			"MINIO_CI_CD=1",
		},
		"/minio/health/live", "/minio/health/ready")
	if m.server == nil {
		return nil, err
	}
	return m, err
}

// startFakeGCS starts fake-gcs-server with an in-memory backend, serving
// the JSON API and object downloads at the same 127.0.0.1 address (the Go
// client downloads from the endpoint's host: fake-gcs-server answers those
// only for its -public-host).
func startFakeGCS(ctx context.Context, bin, tmp string) (*server, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	_, port, _ := strings.Cut(addr, ":")
	return startServer(ctx, "fake-gcs-server", "http://"+addr, bin, filepath.Join(tmp, "fake-gcs-server.log"),
		[]string{"-scheme", "http", "-host", "127.0.0.1", "-port", port, "-public-host", addr,
			"-external-url", "http://" + addr, "-backend", "memory", "-log-level", "warn"},
		nil, "/storage/v1/b")
}
