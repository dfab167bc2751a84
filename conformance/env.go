package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/google/go-cmp/cmp"
)

// env is what a case works with: the test, its context, the harness and the
// prefix every name of the case starts with.
type env struct {
	t       testing.TB
	ctx     context.Context
	h       Harness
	prefix  string
	runName string    // name of the test that called Run
	start   time.Time // when the case started, for ModTime plausibility
	// cacheOpts come first in the options of every cache the case opens
	// in this process (RunCacheWith).
	cacheOpts []cache.Option
}

func newEnv(ctx context.Context, t testing.TB, h Harness, prefix, runName string) *env {
	return &env{t: t, ctx: ctx, h: h, prefix: prefix, runName: runName, start: time.Now()}
}

// clockSkew is how far a store's clock may be from ours.
const clockSkew = 15 * time.Minute

// writeConcurrency bounds the goroutines writing many objects at once.
const writeConcurrency = 16

// name returns the full name of s in this variant.
func (e *env) name(s string) string { return e.prefix + s }

// driver makes a driver and has the test close it, expecting nil.
func (e *env) driver() driver.Driver {
	e.t.Helper()
	d, err := e.h.MakeDriver(e.ctx)
	if err != nil {
		e.t.Fatalf("MakeDriver: %v", err)
	}
	if d == nil {
		e.t.Fatalf("MakeDriver returned a nil driver")
	}
	e.t.Cleanup(func() {
		if err := d.Close(); err != nil {
			e.t.Errorf("Close of a driver made by MakeDriver: got %v, want nil", err)
		}
	})
	return d
}

// write stores data under name, failing the test on error.
func (e *env) write(d driver.Driver, name string, data []byte) {
	e.t.Helper()
	if err := d.Write(e.ctx, name, bytes.NewReader(data), &driver.WriteOptions{}); err != nil {
		e.t.Fatalf("Write(%q): %v", name, err)
	}
}

// read returns the whole object, failing the test on error, and checks its
// attributes.
func (e *env) read(d driver.Driver, name string) ([]byte, driver.Attributes) {
	e.t.Helper()
	got, attrs, err := d.Read(e.ctx, name, 0, -1)
	if err != nil {
		e.t.Fatalf("Read(%q): %v", name, err)
	}
	e.checkAttrs("Read", name, attrs, int64(len(got)), false)
	return got, attrs
}

// wantContent checks that name holds want.
func (e *env) wantContent(d driver.Driver, name string, want []byte) {
	e.t.Helper()
	got, _ := e.read(d, name)
	if !bytes.Equal(got, want) {
		e.t.Errorf("Read(%q) = %s, want %s", name, brief(got), brief(want))
	}
}

// wantAbsent checks that Read of name fails with ErrNotFound.
func (e *env) wantAbsent(d driver.Driver, name string) {
	e.t.Helper()
	got, _, err := d.Read(e.ctx, name, 0, -1)
	if !errors.Is(err, driver.ErrNotFound) {
		e.t.Errorf("Read(%q) of an absent object = %s, %v; want an error satisfying errors.Is(err, driver.ErrNotFound)", name, brief(got), err)
	}
}

// checkAttrs checks attributes returned by op (Read or List) for name: Name
// the name, Size as expected, ModTime set and plausible. listed says the
// attributes come from a listing.
func (e *env) checkAttrs(op, name string, a driver.Attributes, size int64, listed bool) {
	e.t.Helper()
	if a.Name != name {
		clause := clauseReadAttrs
		if listed {
			clause = `contract (ListPage.Objects): "each has Name, Size and ModTime set"`
		}
		e.t.Errorf("%s(%q): Attributes.Name = %q, want %q (%s)", op, name, a.Name, name, clause)
	}
	if a.Size != size {
		e.t.Errorf("%s(%q): Attributes.Size = %d, want %d", op, name, a.Size, size)
	}
	e.checkModTime(op, name, a.ModTime)
}

// maxListPages bounds a listing, so that a driver whose tokens never end
// fails instead of looping.
const maxListPages = 20000

// walkPages lists prefix with pageSize, page after page, checking each:
// no error, not nil, at most the page size, every name under the prefix,
// progress, and an end within maxListPages. It calls visit with each page
// (and its number, from 1) before asking for the next.
func (e *env) walkPages(d driver.Driver, prefix string, pageSize int, visit func(pageNo int, page *driver.ListPage)) {
	e.t.Helper()
	limit := pageSize
	if limit == 0 {
		limit = driver.MaxListPageSize
	}
	token := ""
	for pages := 1; ; pages++ {
		if pages > maxListPages {
			e.t.Fatalf("List(prefix %q, page size %d) did not end after %d pages", prefix, pageSize, maxListPages)
		}
		page, err := d.List(e.ctx, &driver.ListOptions{Prefix: prefix, PageToken: token, PageSize: pageSize})
		if err != nil {
			e.t.Fatalf("List(prefix %q, page size %d, page %d): %v", prefix, pageSize, pages, err)
		}
		if page == nil {
			e.t.Fatalf("List(prefix %q, page size %d, page %d) returned a nil page and no error", prefix, pageSize, pages)
		}
		if len(page.Objects) > limit {
			e.t.Errorf("List(prefix %q, page size %d, page %d) returned %d objects, more than %d", prefix, pageSize, pages, len(page.Objects), limit)
		}
		for _, o := range page.Objects {
			if !strings.HasPrefix(o.Name, prefix) {
				e.t.Fatalf("List(prefix %q, page size %d, page %d) returned %q, which does not start with the prefix", prefix, pageSize, pages, o.Name)
			}
		}
		visit(pages, page)
		if page.NextPageToken == "" {
			return
		}
		if len(page.Objects) == 0 && page.NextPageToken == token {
			e.t.Fatalf("List(prefix %q, page size %d, page %d) made no progress: empty page with the same token", prefix, pageSize, pages)
		}
		token = page.NextPageToken
	}
}

// listAll lists every object under prefix with pageSize, checking each page
// (see walkPages) and that names are in strictly increasing order across
// pages. It returns the objects and the page count.
func (e *env) listAll(d driver.Driver, prefix string, pageSize int) ([]driver.Attributes, int) {
	e.t.Helper()
	var all []driver.Attributes
	// A store that lists folder by folder (StoreLimits.ByteOrderListing)
	// may list a name on two pages; each is kept once, and the result is
	// sorted. A name it misses still fails the case.
	ordered := e.byteOrderListing()
	seen := map[string]bool{}
	pages := 0
	e.walkPages(d, prefix, pageSize, func(pageNo int, page *driver.ListPage) {
		pages = pageNo
		for _, o := range page.Objects {
			if n := len(all); ordered && n > 0 && o.Name <= all[n-1].Name {
				e.t.Fatalf("List(prefix %q, page size %d, page %d): %q follows %q; names must be in strictly increasing byte order, each listed once", prefix, pageSize, pageNo, o.Name, all[n-1].Name)
			}
			if seen[o.Name] {
				continue // only when !ordered: the store's pages overlap
			}
			seen[o.Name] = true
			all = append(all, o)
		}
	})
	if !ordered {
		slices.SortFunc(all, func(a, b driver.Attributes) int { return strings.Compare(a.Name, b.Name) })
	}
	return all, pages
}

// listNames lists prefix and returns the names, checking attributes against
// sizes when sizes is not nil.
func (e *env) listNames(d driver.Driver, prefix string, sizes map[string]int64) []string {
	e.t.Helper()
	objs, _ := e.listAll(d, prefix, 0)
	names := make([]string, 0, len(objs))
	for _, o := range objs {
		names = append(names, o.Name)
		if size, ok := sizes[o.Name]; ok {
			e.checkAttrs("List", o.Name, o, size, true)
		}
	}
	return names
}

// writeAll writes every name with content(name), writeConcurrency at a time.
func (e *env) writeAll(d driver.Driver, names []string, content func(string) []byte) {
	e.t.Helper()
	ch := make(chan string)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range writeConcurrency {
		wg.Go(func() {
			for name := range ch {
				err := d.Write(e.ctx, name, bytes.NewReader(content(name)), &driver.WriteOptions{})
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("Write(%q): %w", name, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, name := range names {
		ch <- name
	}
	close(ch)
	wg.Wait()
	if firstErr != nil {
		e.t.Fatalf("writing %d objects: %v", len(names), firstErr)
	}
}

// decoys are written beside the prefix in the "prefix" variant: they sort
// just before and after it, and one equals the prefix without its slash.
func decoys(prefix string, folderObjects bool) []string {
	base := strings.TrimSuffix(prefix, "/")
	out := []string{base + ".decoy", base + "0/decoy", base + "x", "decoy/" + prefix + "decoy"}
	if folderObjects {
		out = append(out, base)
	}
	return out
}

// folderObjects reports whether the store can hold an object named like a
// folder of other objects (see StoreLimits).
func (e *env) folderObjects() bool {
	l, ok := e.h.(interface{ FolderObjects() bool })
	return (!ok || l.FolderObjects()) && e.nestedObjects()
}

// nestedObjects reports whether the store can hold "a" beside "a/b" (see
// StoreLimits).
func (e *env) nestedObjects() bool {
	l, ok := e.h.(interface{ NestedObjects() bool })
	return !ok || l.NestedObjects()
}

// byteOrderListing reports whether whole-store listings are in byte-wise
// order across folders (see StoreLimits).
func (e *env) byteOrderListing() bool {
	l, ok := e.h.(interface{ ByteOrderListing() bool })
	return !ok || l.ByteOrderListing()
}

// maxSegmentLength is the longest name segment the store holds (see
// StoreLimits).
func (e *env) maxSegmentLength() int {
	if l, ok := e.h.(interface{ MaxSegmentLength() int }); ok && l.MaxSegmentLength() < 255 {
		return l.MaxSegmentLength()
	}
	return 255
}

// needAtomicOverwrite skips the case when a reader can see an overwrite
// half done (see StoreLimits).
func (e *env) needAtomicOverwrite() {
	if l, ok := e.h.(interface{ AtomicOverwrite() bool }); ok && !l.AtomicOverwrite() {
		e.t.Skipf("the store's overwrites are not atomic for readers (StoreLimits.AtomicOverwrite)")
	}
}

// needNestedObjects skips the case when the store cannot hold "a" beside
// "a/b" (see StoreLimits).
func (e *env) needNestedObjects() {
	if !e.nestedObjects() {
		e.t.Skipf(`the store cannot hold an object "a" beside "a/b" (StoreLimits.NestedObjects)`)
	}
}

// needAtomicIfAbsent skips the case when the store's IfAbsent is not
// atomic (see StoreLimits).
func (e *env) needAtomicIfAbsent() {
	if l, ok := e.h.(interface{ AtomicIfAbsent() bool }); ok && !l.AtomicIfAbsent() {
		e.t.Skipf("the store's IfAbsent is not atomic (StoreLimits.AtomicIfAbsent): racing writers can both succeed")
	}
}

// withoutFolderObjects drops from names every name that is a folder of
// another ("a" when "a/b" is there) unless the store can hold both.
func (e *env) withoutFolderObjects(names []string) []string {
	if e.folderObjects() {
		return names
	}
	var out []string
	for _, n := range names {
		if !slices.ContainsFunc(names, func(o string) bool { return strings.HasPrefix(o, n+"/") }) {
			out = append(out, n)
		}
	}
	return out
}

func decoyContent(name string) []byte { return []byte("decoy object " + name) }

func (e *env) writeDecoys() {
	e.t.Helper()
	d := e.driver()
	for _, name := range decoys(e.prefix, e.folderObjects()) {
		e.write(d, name, decoyContent(name))
	}
}

// checkDecoys checks that the case left the decoys alone.
func (e *env) checkDecoys() {
	e.t.Helper()
	d := e.driver()
	for _, name := range decoys(e.prefix, e.folderObjects()) {
		got, _, err := d.Read(e.ctx, name, 0, -1)
		if err != nil || !bytes.Equal(got, decoyContent(name)) {
			e.t.Errorf("decoy %q outside the case's prefix %q was changed: Read = %s, %v", name, e.prefix, brief(got), err)
		}
	}
}

// content returns deterministic data for name, of a length depending on it.
func content(name string) []byte {
	return []byte(fmt.Sprintf("content of %q (%d)", name, len(name)))
}

// brief formats data for a message, shortening long data.
func brief(b []byte) string {
	if len(b) <= 64 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%q... (%d bytes)", b[:48], len(b))
}

// maxDiffNames bounds the names a namesDiff shows on each side.
const maxDiffNames = 20

// namesDiff returns a go-cmp diff (-want +got) of the names missing from got
// and extra in it, at most maxDiffNames of each, with their counts; "" when
// got has the names of want, in any order.
func namesDiff(want, got []string) string {
	missing, extra := setDiff(want, got), setDiff(got, want)
	if len(missing) == 0 && len(extra) == 0 {
		return ""
	}
	head := fmt.Sprintf("%d missing, %d extra", len(missing), len(extra))
	if len(missing) > maxDiffNames || len(extra) > maxDiffNames {
		head += fmt.Sprintf(" (the first %d of each shown)", maxDiffNames)
	}
	missing, extra = missing[:min(len(missing), maxDiffNames)], extra[:min(len(extra), maxDiffNames)]
	return head + " (-want +got):\n" + cmp.Diff(missing, extra, equateEmpty)
}

// setDiff returns the names of a not in b, sorted, each once.
func setDiff(a, b []string) []string {
	in := make(map[string]bool, len(b))
	for _, n := range b {
		in[n] = true
	}
	var out []string
	for _, n := range a {
		if !in[n] {
			out = append(out, n)
			in[n] = true
		}
	}
	slices.Sort(out)
	return out
}
