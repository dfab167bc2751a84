package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// lock takes the lock of name's stripe and returns the function that
// releases it. It waits until it has the lock or ctx is done.
func (d *Driver) lock(ctx context.Context, name string) (func(), error) {
	i := stripeOf(name)
	s := &d.stripes[i]
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	fail := func(err error) (func(), error) {
		<-s.sem
		return nil, err
	}
	if d.closed.Load() {
		return fail(errClosed)
	}
	if s.f == nil {
		f, err := d.openLockFile(i)
		if err != nil {
			return fail(err)
		}
		s.f = f
	}
	delay := 20 * time.Microsecond
	for {
		ok, err := tryLock(s.f)
		if err != nil {
			return fail(err)
		}
		if ok {
			break
		}
		// Another process holds it, and only for a rename or so.
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fail(ctx.Err())
		}
		delay = min(2*delay, 2*time.Millisecond)
	}
	return func() {
		if err := unlock(s.f); err != nil {
			// Closing the file releases the lock too.
			s.f.Close()
			s.f = nil
		}
		<-s.sem
	}, nil
}

// stripeOf returns the stripe of name: its 32-bit FNV-1a hash modulo
// numStripes. It is hash/fnv's New32a, computed in place so that a lock
// allocates nothing; it must not change, or processes of two versions
// sharing a store would take different lock files for one name.
func stripeOf(name string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	return h % numStripes
}

// openLockFile opens (creating) lock file i. The lock directory and the
// lock file must be a directory and a regular file: a link or anything else
// planted there is refused, never followed, and the lock is not taken.
func (d *Driver) openLockFile(i uint32) (*os.File, error) {
	root, err := d.openRoot()
	if err != nil {
		return nil, err
	}
	defer root.close()
	locks, err := root.sub(lockDir)
	if isMissing(err) {
		if err = root.mkdir(lockDir); err == nil || errors.Is(err, fs.ErrExist) {
			locks, err = root.sub(lockDir)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lock directory: %w", err)
	}
	defer locks.close()
	f, err := locks.openLock(fmt.Sprintf("%02x", i))
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	return f, nil
}
