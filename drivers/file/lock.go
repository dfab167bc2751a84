package file

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"time"
)

// lock takes the lock of name's stripe and returns the function that
// releases it. It waits until it has the lock or ctx is done.
func (d *Driver) lock(ctx context.Context, name string) (func(), error) {
	h := fnv.New32a()
	h.Write([]byte(name))
	i := h.Sum32() % numStripes
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
