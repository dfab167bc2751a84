//go:build unix

package file_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/blobcache/blobcache/conformance"
	"github.com/blobcache/blobcache/drivers/file"
)

// The harness plants attacks in its directory (conformance.HostileStore).
var _ conformance.HostileStore = (*harness)(nil)

// objectFile returns the object file of name, after making its directories.
func (h *harness) objectFile(name string) (string, error) {
	p := filepath.Join(h.dir, filepath.FromSlash(file.ObjectPath(name)))
	if err := os.RemoveAll(p); err != nil {
		return "", err
	}
	return p, os.MkdirAll(filepath.Dir(p), 0o700)
}

func (h *harness) PlantSymlink(name, target string) error {
	p, err := h.objectFile(name)
	if err != nil {
		return err
	}
	return os.Symlink(target, p)
}

func (h *harness) PlantDirSymlink(prefix, target string) error {
	if !strings.HasSuffix(prefix, "/") {
		return fmt.Errorf("prefix %q does not end in /", prefix)
	}
	// The directory of the objects under prefix is that of any name there.
	p := filepath.Dir(filepath.Join(h.dir, filepath.FromSlash(file.ObjectPath(prefix+"x"))))
	if err := os.Rename(p, target); err != nil {
		return err
	}
	return os.Symlink(target, p)
}

func (h *harness) PlantFIFO(name string) error {
	p, err := h.objectFile(name)
	if err != nil {
		return err
	}
	return syscall.Mkfifo(p, 0o600)
}

func (h *harness) PlantSparse(name string, size int64) error {
	p, err := h.objectFile(name)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		return err
	}
	if err := os.Truncate(p, size); err != nil {
		return fmt.Errorf("%w: no sparse file of %d bytes here: %v", errors.ErrUnsupported, size, err)
	}
	return nil
}

// PlantInternalLinks: variant 0 makes the lock directory a link to target,
// variant 1 every lock file a dangling link into target.
func (h *harness) PlantInternalLinks(variant int, target string) (string, error) {
	locks := filepath.Join(h.dir, file.LockDir)
	switch variant {
	case 0:
		if err := os.RemoveAll(locks); err != nil {
			return "", err
		}
		return "the lock directory is a symlink", os.Symlink(target, locks)
	case 1:
		if err := os.RemoveAll(locks); err != nil {
			return "", err
		}
		if err := os.Mkdir(locks, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", err
		}
		for i := range file.NumStripes {
			lock := fmt.Sprintf("%02x", i)
			if err := os.Symlink(filepath.Join(target, "lock"+lock), filepath.Join(locks, lock)); err != nil {
				return "", err
			}
		}
		return "every lock file is a dangling symlink", nil
	}
	return "", errors.ErrUnsupported
}
