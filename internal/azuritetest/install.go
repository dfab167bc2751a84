package azuritetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// installDir is where the pinned Azurite is installed: the user cache
// directory's blobcache/azurite-<Version>, or $BLOBCACHE_AZURITE_DIR.
func installDir() (string, error) {
	if d := os.Getenv(EnvInstallDir); d != "" {
		return filepath.Abs(d)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache directory to install Azurite in (set %s): %w", EnvInstallDir, err)
	}
	return filepath.Join(base, "blobcache", "azurite-"+Version), nil
}

// mainScript is the azurite-blob program inside an install directory.
func mainScript(dir string) string {
	return filepath.Join(dir, "node_modules", "azurite", "dist", "src", "blob", "main.js")
}

// install installs Azurite Version with npm unless it is installed, and
// returns the directory and how long the install took (0 when it was
// there). Concurrent installs, by several test binaries at once, are
// serialized by a lock file beside the directory; an install is made in a
// temporary directory renamed into place only when it is complete, so a
// directory that exists is whole.
func install(ctx context.Context) (dir string, took time.Duration, err error) {
	dir, err = installDir()
	if err != nil {
		return "", 0, err
	}
	if _, err := os.Stat(mainScript(dir)); err == nil {
		return dir, 0, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", 0, errors.New("npm is not installed (Azurite is installed with npm; install Node.js 20 and npm)")
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", 0, fmt.Errorf("install Azurite: %w", err)
	}
	unlock, err := lockFile(filepath.Join(parent, filepath.Base(dir)+".lock"))
	if err != nil {
		return "", 0, fmt.Errorf("install Azurite: lock: %w", err)
	}
	defer unlock()
	if _, err := os.Stat(mainScript(dir)); err == nil {
		return dir, 0, nil // another test binary installed it meanwhile
	}
	start := time.Now()
	tmp, err := os.MkdirTemp(parent, filepath.Base(dir)+".tmp-")
	if err != nil {
		return "", 0, fmt.Errorf("install Azurite: %w", err)
	}
	defer os.RemoveAll(tmp) // gone after the rename
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "install", "--prefix", tmp, "--no-audit", "--no-fund",
		"--no-update-notifier", "--loglevel=error", "azurite@"+Version)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", 0, fmt.Errorf("npm install azurite@%s: %w\n%s", Version, err, tail(out.String(), 2000))
	}
	if _, err := os.Stat(mainScript(tmp)); err != nil {
		return "", 0, fmt.Errorf("npm install azurite@%s: no %s after the install", Version, mainScript(tmp))
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(mainScript(dir)); serr == nil {
			return dir, time.Since(start), nil // another install won the rename
		}
		return "", 0, fmt.Errorf("install Azurite: %w", err)
	}
	return dir, time.Since(start), nil
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
