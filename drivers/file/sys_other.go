//go:build !unix

package file

import "os"

// crossProcessLocks says whether stripe locks also exclude other processes.
// Without flock(2) they exclude only goroutines of this process.
const crossProcessLocks = false

func tryLock(f *os.File) (bool, error) { return true, nil }

func unlock(f *os.File) error { return nil }

func noHardLinks(err error) bool { return false }
