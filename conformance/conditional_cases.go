package conformance

// Cases for conditional writes: IfAbsent, Replace and their races, and
// batch deletes.

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/blobcache/blobcache/driver"
)

func testIfAbsent(e *env) {
	d := e.driver()
	name := e.name("ifabsent")
	ifAbsent := &driver.WriteOptions{IfAbsent: true}
	if err := d.Write(e.ctx, name, strings.NewReader("first"), ifAbsent); err != nil {
		e.t.Fatalf("Write(%q, IfAbsent) of an absent object: %v", name, err)
	}
	e.wantContent(d, name, []byte("first"))
	err := d.Write(e.ctx, name, strings.NewReader("second"), ifAbsent)
	if !errors.Is(err, driver.ErrPreconditionFailed) {
		e.t.Errorf("Write(%q, IfAbsent) of a present object = %v, want ErrPreconditionFailed", name, err)
	}
	e.wantContent(d, name, []byte("first"))
	// Another driver on the store sees the object too.
	err = e.driver().Write(e.ctx, name, strings.NewReader("third"), ifAbsent)
	if !errors.Is(err, driver.ErrPreconditionFailed) {
		e.t.Errorf("Write(%q, IfAbsent) through a second driver = %v, want ErrPreconditionFailed", name, err)
	}
	e.wantContent(d, name, []byte("first"))
	// After a delete the name is free again.
	if err := d.Delete(e.ctx, name); err != nil {
		e.t.Fatalf("Delete(%q): %v", name, err)
	}
	if err := d.Write(e.ctx, name, strings.NewReader("fourth"), ifAbsent); err != nil {
		e.t.Errorf("Write(%q, IfAbsent) after Delete: %v", name, err)
	}
	e.wantContent(d, name, []byte("fourth"))
}

// raceContent is what racer id writes: large enough that a write is not
// instantaneous, and distinct per racer.
func raceContent(id int) []byte {
	head := fmt.Sprintf("racer %d\n", id)
	return append([]byte(head), bytes.Repeat([]byte{byte('a' + id%26)}, 32<<10)...)
}

// raceOutcome checks the errors of racing conditional writers: exactly one
// nil, the others ErrPreconditionFailed. It returns the winner or -1.
func (e *env) raceOutcome(what string, errs []error) int {
	e.t.Helper()
	winner := -1
	var winners []int
	for i, err := range errs {
		switch {
		case err == nil:
			winners = append(winners, i)
			winner = i
		case !errors.Is(err, driver.ErrPreconditionFailed):
			e.t.Errorf("%s: racer %d failed with %v, want nil or ErrPreconditionFailed", what, i, err)
		}
	}
	if len(winners) != 1 {
		e.t.Errorf("%s: %d racers succeeded (%v), want exactly one", what, len(winners), winners)
		return -1
	}
	return winner
}

// race runs n racers released together, two on each driver (so that they
// race both through one driver and across drivers); it returns their
// errors.
func (e *env) race(n int, op func(d driver.Driver, id int) error) []error {
	shared := make([]driver.Driver, (n+1)/2)
	for i := range shared {
		shared[i] = e.driver()
	}
	ds := make([]driver.Driver, n)
	for i := range ds {
		ds[i] = shared[i/2]
	}
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = op(ds[i], i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

const racers = 32

func testIfAbsentRace(e *env) {
	e.needAtomicIfAbsent()
	name := e.name("race/ifabsent")
	errs := e.race(racers, func(d driver.Driver, id int) error {
		return d.Write(e.ctx, name, bytes.NewReader(raceContent(id)), &driver.WriteOptions{IfAbsent: true})
	})
	if w := e.raceOutcome(fmt.Sprintf("%d goroutines racing Write(%q, IfAbsent)", racers, name), errs); w >= 0 {
		e.wantContent(e.driver(), name, raceContent(w))
	}
}

// replacer returns d as a Replacer or skips the case.
func (e *env) replacer(d driver.Driver) driver.Replacer {
	e.t.Helper()
	r, ok := d.(driver.Replacer)
	if !ok {
		e.t.Skipf("driver %T does not implement driver.Replacer", d)
	}
	return r
}

// etag reads name and returns its ETag, which must be set.
func (e *env) etag(d driver.Driver, name string) string {
	e.t.Helper()
	_, attrs := e.read(d, name)
	if attrs.ETag == "" {
		e.t.Fatalf("Read(%q): ETag is empty; drivers implementing Replacer must set it", name)
	}
	return attrs.ETag
}

func testReplace(e *env) {
	d := e.driver()
	r := e.replacer(d)
	name := e.name("replace")
	e.write(d, name, []byte("v1"))
	tag1 := e.etag(d, name)
	if err := r.Replace(e.ctx, name, strings.NewReader("v2"), tag1, &driver.WriteOptions{}); err != nil {
		e.t.Fatalf("Replace(%q) with the current ETag: %v", name, err)
	}
	e.wantContent(d, name, []byte("v2"))
	tag2 := e.etag(d, name)
	if tag2 == tag1 {
		e.t.Errorf("ETag %q did not change when Replace changed the content", tag2)
	}
	err := r.Replace(e.ctx, name, strings.NewReader("v3"), tag1, &driver.WriteOptions{})
	if !errors.Is(err, driver.ErrPreconditionFailed) {
		e.t.Errorf("Replace(%q) with a stale ETag = %v, want ErrPreconditionFailed", name, err)
	}
	e.wantContent(d, name, []byte("v2"))
	// A plain Write changes the ETag too, and makes the old one stale.
	e.write(d, name, []byte("v4"))
	if tag4 := e.etag(d, name); tag4 == tag2 {
		e.t.Errorf("ETag %q did not change when Write changed the content", tag4)
	}
	err = r.Replace(e.ctx, name, strings.NewReader("v5"), tag2, &driver.WriteOptions{})
	if !errors.Is(err, driver.ErrPreconditionFailed) {
		e.t.Errorf("Replace(%q) with the ETag from before a Write = %v, want ErrPreconditionFailed", name, err)
	}
	e.wantContent(d, name, []byte("v4"))
	// Replacing a deleted or never written object fails with ErrNotFound
	// and writes nothing.
	tag := e.etag(d, name)
	if err := d.Delete(e.ctx, name); err != nil {
		e.t.Fatalf("Delete(%q): %v", name, err)
	}
	for _, n := range []string{name, e.name("replace-never")} {
		err = r.Replace(e.ctx, n, strings.NewReader("v6"), tag, &driver.WriteOptions{})
		if !errors.Is(err, driver.ErrNotFound) {
			e.t.Errorf("Replace(%q) of an absent object = %v, want ErrNotFound", n, err)
		}
		e.wantAbsent(d, n)
	}
}

func testReplaceRace(e *env) {
	d := e.driver()
	e.replacer(d)
	name := e.name("race/replace")
	e.write(d, name, []byte("original"))
	tag := e.etag(d, name)
	errs := e.race(racers, func(d driver.Driver, id int) error {
		r, ok := d.(driver.Replacer)
		if !ok {
			return fmt.Errorf("driver %T from a second MakeDriver does not implement Replacer", d)
		}
		return r.Replace(e.ctx, name, bytes.NewReader(raceContent(id)), tag, &driver.WriteOptions{})
	})
	if w := e.raceOutcome(fmt.Sprintf("%d goroutines racing Replace(%q) with one ETag", racers, name), errs); w >= 0 {
		e.wantContent(d, name, raceContent(w))
	}
}

func testBatchDelete(e *env) {
	d := e.driver()
	bd, ok := d.(driver.BatchDeleter)
	if !ok {
		e.t.Skipf("driver %T does not implement driver.BatchDeleter", d)
	}
	const n = 2500
	var names []string
	for i := range n {
		names = append(names, e.name("batch/"+strconv.Itoa(i)))
	}
	keep := []string{e.name("batch"), e.name("batch.keep"), e.name("batch0/keep"), e.name("keep/batch/1")}
	e.writeAll(d, append(slices.Clone(names), keep...), content)
	// Absent names are mixed into the batches; they are not errors.
	var batch []string
	for i, name := range names {
		batch = append(batch, name)
		if i%50 == 0 {
			batch = append(batch, e.name("batch/absent-"+strconv.Itoa(i)))
		}
	}
	for chunk := range slices.Chunk(batch, driver.MaxBatchDelete) {
		if err := bd.DeleteBatch(e.ctx, chunk); err != nil {
			e.t.Fatalf("DeleteBatch of %d names (%q...): %v", len(chunk), chunk[0], err)
		}
	}
	if got := e.listNames(d, e.name("batch/"), nil); len(got) != 0 {
		e.t.Errorf("List(%q) after DeleteBatch found %d objects: %s", e.name("batch/"), len(got), namesDiff(nil, got))
	}
	for _, name := range keep {
		e.wantContent(d, name, content(name))
	}
}
