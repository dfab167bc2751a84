package conformance

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/blobcache/blobcache/driver"
)

// HostileStore is implemented by harnesses whose store lives on a medium
// that others can write to behind the driver's back (a directory on disk),
// so that the suite can plant there what a hostile writer with access to
// the store's own medium could: symbolic links leading out of the store,
// named pipes, sparse files. The hostile section ([RunHostile]) then checks
// that the driver, and a cache over it, never reads, writes, creates or
// deletes anything outside the store, never blocks on a special file and
// never allocates by what a stored file claims.
//
// "The object path of name" is where the driver keeps name's bytes on the
// medium. The suite writes name through the driver before it plants at its
// path. Every method may return an error wrapping errors.ErrUnsupported
// when the store cannot hold what is asked for; the cases that need it then
// skip.
type HostileStore interface {
	Harness
	// PlantSymlink replaces whatever is at the object path of name by a
	// symbolic link to target, an absolute path outside the store (which
	// may not exist), making the directories on the way if they are
	// missing.
	PlantSymlink(name, target string) error
	// PlantDirSymlink moves the directory that holds the objects whose
	// names start with prefix (a prefix ending in "/", such as "cache/")
	// to target, an absolute path outside the store that does not exist
	// yet, and puts a symbolic link to target in its place. target then
	// holds what the driver would find there, named as the driver names
	// it.
	PlantDirSymlink(prefix, target string) error
	// PlantFIFO replaces whatever is at the object path of name by a named
	// pipe, making the directories on the way if they are missing.
	PlantFIFO(name string) error
	// PlantSparse replaces whatever is at the object path of name by a
	// sparse regular file of size bytes (a hole that reads as zeros),
	// making the directories on the way if they are missing.
	PlantSparse(name string, size int64) error
	// PlantInternalLinks replaces the driver's own files and directories
	// (lock files, lock and temporary directories) by symbolic links into
	// target, an empty directory outside the store, in the way numbered
	// variant (0, 1, ...); the links may dangle. It returns a description
	// of what it planted, or an error wrapping errors.ErrUnsupported when
	// there is no such variant (for variant 0: when the driver keeps no
	// internal files).
	PlantInternalLinks(variant int, target string) (string, error)
}

// The clauses of the driver contract the hostile section checks, cited in
// its failure messages. The first three state, for stores others can write
// to, what the contract's "a driver stores no other object than those
// written through it" and "returns ErrNotFound when no object exists" mean
// there.
const (
	clauseOutside = `contract (hostile stores): "a driver never follows a symbolic link in any component of an object's path or of its own files; nothing outside the store is ever read, written, created or deleted"`
	clauseSpecial = `contract (hostile stores): "a symbolic link or special file at an object's path, or a link or non-directory on the way to it, is no object: Read returns ErrNotFound without blocking, List skips it, Delete removes at most the entry itself, Write and Replace replace the entry itself or fail saying why"`
	clauseBounded = `contract (hostile stores): "Read never sizes an allocation by what the store claims beyond the length asked for: at most min(size - offset, length) bytes when length >= 0"`
	clauseMiss    = `cache: "a missing, expired or undecodable entry is ErrMiss" over a driver that keeps clauses above`
)

// RunHostile runs only the hostile-store section of the suite (subtest
// "Hostile"): attacks planted in the store behind the driver's back through
// a [HostileStore], run through the driver and through a cache over it.
// Every case skips, saying so, when the harness does not implement
// HostileStore. [Run] calls it after the cache section; like Run, it
// performs the child's operation when the process is a child started by a
// cross-process case.
func RunHostile(t *testing.T, maker HarnessMaker) {
	t.Helper()
	if runChild(t, maker) {
		return
	}
	runName := t.Name()
	t.Run("Hostile", func(t *testing.T) {
		runCases(t, maker, runName, hostileCases)
	})
}

// hostile returns the case's harness as a HostileStore, or skips.
func (e *env) hostile() HostileStore {
	e.t.Helper()
	h, ok := e.h.(HostileStore)
	if !ok {
		e.t.Skipf("harness %T does not implement conformance.HostileStore: nothing can be planted in its store", e.h)
	}
	return h
}

// planted fails or skips the case when planting failed.
func (e *env) planted(what string, err error) {
	e.t.Helper()
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		e.t.Skipf("%s: the store cannot hold it (%v)", what, err)
	case err != nil:
		e.t.Fatalf("%s: %v", what, err)
	}
}

// outside is a tree beside the store that the attacks lead into and that
// must never change.
type outside struct {
	e      *env
	root   string
	before map[string]string
}

func (e *env) outside() *outside {
	return &outside{e: e, root: e.t.TempDir()}
}

// path returns the absolute path of rel in the tree.
func (o *outside) path(rel string) string { return filepath.Join(o.root, rel) }

// write makes the file rel holding data.
func (o *outside) write(rel string, data []byte) string {
	o.e.t.Helper()
	p := o.path(rel)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		o.e.t.Fatalf("outside the store: %v", err)
	}
	return p
}

// mkdir makes the directory rel.
func (o *outside) mkdir(rel string) string {
	o.e.t.Helper()
	p := o.path(rel)
	if err := os.Mkdir(p, 0o700); err != nil {
		o.e.t.Fatalf("outside the store: %v", err)
	}
	return p
}

// state describes every entry of the tree without following links.
func (o *outside) state() map[string]string {
	o.e.t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(o.root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(o.root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m[rel] = fmt.Sprintf("file %v sha256 %x", fi.Mode(), sha256.Sum256(b))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			m[rel] = "symlink to " + target
		default:
			m[rel] = fi.Mode().String()
		}
		return nil
	})
	if err != nil {
		o.e.t.Fatalf("walking the tree outside the store: %v", err)
	}
	return m
}

// seal records the tree as it must stay.
func (o *outside) seal() { o.before = o.state() }

// check reports every change of the tree since seal, once.
func (o *outside) check(what string) {
	o.e.t.Helper()
	after := o.state()
	for p, b := range o.before {
		if a, ok := after[p]; !ok {
			o.e.t.Errorf("%s deleted %s outside the store (%s)", what, p, clauseOutside)
		} else if a != b {
			o.e.t.Errorf("%s changed %s outside the store: %s, was %s (%s)", what, p, a, b, clauseOutside)
		}
	}
	for p := range after {
		if _, ok := o.before[p]; !ok {
			o.e.t.Errorf("%s created %s outside the store (%s)", what, p, clauseOutside)
		}
	}
	o.before = after
}

// hostileOp is one operation on a store under attack; it returns what went
// wrong, or "". It runs on its own goroutine when watched and must not
// call e.t.Fatalf or e.t.Skipf.
type hostileOp struct {
	name string
	run  func(ctx context.Context) string
}

// attackDeadline is how long an operation on a store holding a special
// file may take; it is never reached by a driver that does not block.
const attackDeadline = 2 * time.Second

// attack runs each op after plant (when not nil) and checks the tree
// outside after each. With watch, each op runs under a deadline that must
// never be hit: an op still running then has blocked, and the case stops.
func (e *env) attack(attack string, o *outside, plant func(), watch bool, ops ...[]hostileOp) {
	e.t.Helper()
	for _, list := range ops {
		for _, op := range list {
			if plant != nil {
				plant()
			}
			what := attack + ", " + op.name
			if bad := e.runOp(op, watch); bad != "" {
				e.t.Errorf("%s: %s", what, bad)
			}
			o.check(what)
		}
	}
}

func (e *env) runOp(op hostileOp, watch bool) string {
	if !watch {
		return op.run(e.ctx)
	}
	ctx, cancel := context.WithTimeout(e.ctx, attackDeadline)
	defer cancel()
	done := make(chan string, 1)
	go func() { done <- op.run(ctx) }()
	select {
	case bad := <-done:
		return bad
	case <-ctx.Done():
		e.t.Fatalf("%s was still blocked when its %v deadline passed: a special file was opened in a way that blocks (%s)", op.name, attackDeadline, clauseSpecial)
		return ""
	}
}

// boundedReads is a driver that refuses, instead of passing on, a read of
// more than max bytes, so that a cache that asks for a whole sparse object
// fails the case instead of exhausting memory.
type boundedReads struct {
	driver.Driver
	max    int64
	caught chan string
}

// Read implements driver.Driver: it refuses and records a read of the whole
// object or of more than max bytes, and passes the others on.
func (b boundedReads) Read(ctx context.Context, name string, offset, length int64) ([]byte, driver.Attributes, error) {
	if length < 0 || length > b.max {
		select {
		case b.caught <- fmt.Sprintf("Read(%q, %d, %d)", name, offset, length):
		default:
		}
		return nil, driver.Attributes{}, errors.New("conformance: a read of more than the cache's bound refused")
	}
	return b.Driver.Read(ctx, name, offset, length)
}
