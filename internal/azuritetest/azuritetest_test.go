package azuritetest

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigHidesKey(t *testing.T) {
	c := Config{Endpoint: "http://127.0.0.1:1/devstoreaccount1", Account: Account, Key: "c2VjcmV0"}
	for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%+v %#v %q %s", c, c, c, c)} {
		if strings.Contains(s, "c2VjcmV0") {
			t.Errorf("Config shows the key: %s", s)
		}
	}
}

func TestClassify(t *testing.T) {
	base := "http://127.0.0.1:1/devstoreaccount1/c"
	for _, tc := range []struct {
		method, url string
		want        Op
	}{
		{"GET", base + "/a%2Fb", GetBlob},
		{"HEAD", base + "/a", GetBlobProperties},
		{"PUT", base + "/a", PutBlob},
		{"PUT", base + "/a?comp=block&blockid=x", PutBlock},
		{"PUT", base + "/a?comp=blocklist", PutBlockList},
		{"DELETE", base + "/a", DeleteBlob},
		{"GET", base + "?restype=container&comp=list&prefix=x", ListBlobs},
		{"POST", base + "?restype=container&comp=batch", BlobBatch},
		{"GET", base + "?restype=container", GetContainerProperties},
		{"PUT", base + "?restype=container", CreateContainer},
		{"DELETE", base + "?restype=container", DeleteContainer},
	} {
		req, err := http.NewRequest(tc.method, tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := Classify(req); got != tc.want {
			t.Errorf("Classify(%s %s) = %q, want %q", tc.method, tc.url, got, tc.want)
		}
	}
}

// TestLockFile: a second holder waits until the first releases.
func TestLockFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := lockFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{})
	go func() {
		u2, err := lockFile(path)
		if err != nil {
			t.Error(err)
		} else {
			u2()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("second lock taken while the first is held")
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("second lock not taken after release")
	}
}

// TestNoNodeSkipsOrFails runs this test binary again without node and npm
// on PATH (and an empty install directory): Env skips the test, and fails
// it with CI=true.
func TestNoNodeSkipsOrFails(t *testing.T) {
	if os.Getenv("AZURITETEST_CHILD") == "1" {
		Env(t)
		t.Fatal("Env returned without a server")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, ci := range []string{"", "true"} {
		cmd := exec.Command(exe, "-test.run=^TestNoNodeSkipsOrFails$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "AZURITETEST_CHILD=1", "PATH="+t.TempDir(), "CI="+ci,
			EnvEndpoint+"=", EnvInstallDir+"="+t.TempDir())
		out, err := cmd.CombinedOutput()
		switch {
		case ci == "" && (err != nil || !strings.Contains(string(out), "--- SKIP") || !strings.Contains(string(out), "node is not installed")):
			t.Errorf("without node: err %v, want a skip naming node:\n%s", err, out)
		case ci == "true" && (err == nil || !strings.Contains(string(out), "CI=true: a skipped Azurite test is a failure")):
			t.Errorf("without node, CI=true: err %v, want a failure:\n%s", err, out)
		}
	}
}

// TestStart starts Azurite (installing it when needed) and checks that
// the environment now names it, for child processes.
func TestStart(t *testing.T) {
	c := Env(t)
	if os.Getenv(EnvEndpoint) != c.Endpoint || !strings.HasPrefix(c.Endpoint, "http://127.0.0.1:") {
		t.Errorf("endpoint %q, environment %q", c.Endpoint, os.Getenv(EnvEndpoint))
	}
	name := NewContainer(t, c)
	client, err := Client(c, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.GetProperties(t.Context(), nil); err != nil {
		t.Errorf("container %s: %v", name, err)
	}
}

func TestMain(m *testing.M) { Main(m) }
