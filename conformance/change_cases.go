package conformance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/cull"
	"github.com/blobcache/blobcache/driver"
)

// Cases for what changes between calls: listings whose store changes
// between pages, modification times across overwrites, and the cache
// behaviour that rests on them (Clear, the oldest cull policy).

// storeGranularity is how long the suite waits for a store's ModTime to
// move: longer than the coarsest granularity the contract allows (S3's one
// second). It is a wait, once per case, not a timing assertion.
const storeGranularity = 1100 * time.Millisecond

// listChanging lists prefix with pageSize, calling between(page) after every
// page, before asking for the next one (and after the last page too). It
// returns how often each name was listed. It fails the case on an error or a
// listing that does not end, and reports the first name out of order.
func (e *env) listChanging(d driver.Driver, prefix string, pageSize int, between func(page []driver.Attributes)) map[string]int {
	e.t.Helper()
	counts := map[string]int{}
	ordered := e.byteOrderListing()
	last, disordered := "", false
	e.walkPages(d, prefix, pageSize, func(pageNo int, page *driver.ListPage) {
		for _, o := range page.Objects {
			if ordered && last != "" && o.Name <= last && !disordered {
				disordered = true
				e.t.Errorf("List(prefix %q, page size %d, page %d): %q follows %q, with objects written or deleted between pages (%s)", prefix, pageSize, pageNo, o.Name, last, clausePageToken)
			}
			last = o.Name
			counts[o.Name]++
		}
		if len(page.Objects) > 0 {
			between(page.Objects)
		}
	})
	return counts
}

// wantListedOnce checks that every name of want was listed exactly once;
// a store whose listings may repeat a name (StoreLimits.ByteOrderListing)
// may list it more than once.
func (e *env) wantListedOnce(what string, counts map[string]int, want []string) {
	e.t.Helper()
	var missing, repeated []string
	for _, name := range want {
		switch n := counts[name]; {
		case n == 0:
			missing = append(missing, name)
		case n > 1 && e.byteOrderListing():
			repeated = append(repeated, fmt.Sprintf("%s (%d times)", name, n))
		}
	}
	if len(missing) > 0 {
		e.t.Errorf("%s: %d of %d objects present until a page returned them were never listed: %s(%s)", what, len(missing), len(want), namesDiff(missing, nil), clausePageToken)
	}
	if len(repeated) > 0 {
		e.t.Errorf("%s: %d objects were listed more than once, e.g. %q (%s)", what, len(repeated), repeated[:min(3, len(repeated))], clausePageToken)
	}
}

// testListWhileChanging lists while objects are deleted and written between
// pages: every object present until a page returns it is listed once.
func testListWhileChanging(e *env) {
	d := e.driver()
	names := func(folder string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = e.name(fmt.Sprintf("%s/%04d", folder, i))
		}
		return out
	}

	// Deleting every object of each page before asking for the next (what
	// Clear does), one by one and in batches.
	for _, tc := range []struct {
		folder   string
		n, size  int
		deleteBy string
	}{
		{"del10", 250, 10, "Delete"},
		{"del1", 25, 1, "Delete"},
		{"batch10", 250, 10, "DeleteBatch"},
	} {
		bd, batch := d.(driver.BatchDeleter)
		if tc.deleteBy == "DeleteBatch" && !batch {
			continue
		}
		all := names(tc.folder, tc.n)
		e.writeAll(d, all, content)
		prefix := e.name(tc.folder + "/")
		counts := e.listChanging(d, prefix, tc.size, func(page []driver.Attributes) {
			var gone []string
			for _, o := range page {
				gone = append(gone, o.Name)
			}
			if batch && tc.deleteBy == "DeleteBatch" {
				if err := bd.DeleteBatch(e.ctx, gone); err != nil {
					e.t.Fatalf("DeleteBatch of a listed page: %v", err)
				}
				return
			}
			for _, name := range gone {
				if err := d.Delete(e.ctx, name); err != nil {
					e.t.Fatalf("Delete(%q) of a listed object: %v", name, err)
				}
			}
		})
		e.wantListedOnce(fmt.Sprintf("List(prefix %q, page size %d) of %d objects, %s of each page before the next", prefix, tc.size, tc.n, tc.deleteBy), counts, all)
		if left := e.listNames(d, prefix, nil); len(left) != 0 {
			e.t.Errorf("List(prefix %q) after deleting every listed object found %d objects: %s(%s)", prefix, len(left), namesDiff(nil, left), clausePageToken)
		}
	}

	// Writing objects between pages, behind the listing (before the last
	// name returned) and ahead of it: the objects present throughout are
	// listed once, and a new one at most once.
	all := names("add", 100)
	e.writeAll(d, all, content)
	prefix := e.name("add/")
	var added []string
	pageNo := 0
	counts := e.listChanging(d, prefix, 10, func(page []driver.Attributes) {
		pageNo++
		last := page[len(page)-1].Name
		fresh := []string{
			last[:len(last)-4] + "0000-behind" + fmt.Sprint(pageNo), // sorts before last
			last + "-next", // sorts just after last: ahead
			e.name(fmt.Sprintf("add/%04d-ahead", 90+pageNo%10)), // well ahead
			e.name(fmt.Sprintf("add/!%d-first", pageNo)),        // before everything
		}
		for _, name := range fresh {
			e.write(d, name, content(name))
		}
		added = append(added, fresh...)
	})
	e.wantListedOnce(fmt.Sprintf("List(prefix %q, page size 10) of %d objects, with objects written before and after the last name of each page", prefix, len(all)), counts, all)
	for _, name := range added {
		if n := counts[name]; n > 1 && e.byteOrderListing() {
			e.t.Errorf("List(prefix %q, page size 10): %q, written between pages, was listed %d times (%s)", prefix, name, n, clausePageToken)
		}
	}
}

// checkModTime checks that t, the ModTime op returned for name, is set and
// plausible: between the case's start and now, give or take clockSkew.
func (e *env) checkModTime(op, name string, t time.Time) {
	e.t.Helper()
	if t.IsZero() {
		e.t.Errorf("%s(%q): ModTime is the zero time (%s)", op, name, clauseModTime)
		return
	}
	if lo, hi := e.start.Add(-clockSkew), time.Now().Add(clockSkew); t.Before(lo) || t.After(hi) {
		e.t.Errorf("%s(%q): ModTime %v is implausible: the object was written after %v, and it is now %v (%s)", op, name, t, e.start, time.Now(), clauseModTime)
	}
}

// modTimes returns name's ModTime as Read and as List return it, checking
// Read's Name and both ModTimes.
func (e *env) modTimes(d driver.Driver, name string) (read, listed time.Time) {
	e.t.Helper()
	_, attrs, err := d.Read(e.ctx, name, 0, -1)
	if err != nil {
		e.t.Fatalf("Read(%q): %v", name, err)
	}
	if attrs.Name != name {
		e.t.Errorf("Read(%q): Attributes.Name = %q, want the name read (%s)", name, attrs.Name, clauseReadAttrs)
	}
	e.checkModTime("Read", name, attrs.ModTime)
	// A range read returns the same attributes.
	if _, ra, err := d.Read(e.ctx, name, 1, 2); err != nil {
		e.t.Fatalf("Read(%q, 1, 2): %v", name, err)
	} else {
		if ra.Name != name {
			e.t.Errorf("Read(%q, 1, 2): Attributes.Name = %q, want the name read (%s)", name, ra.Name, clauseReadAttrs)
		}
		e.checkModTime("Read(offset 1, length 2)", name, ra.ModTime)
	}
	objs, _ := e.listAll(d, name, 0)
	i := slices.IndexFunc(objs, func(o driver.Attributes) bool { return o.Name == name })
	if i < 0 {
		e.t.Fatalf("List(prefix %q) does not list the object", name)
	}
	e.checkModTime("List", name, objs[i].ModTime)
	return attrs.ModTime, objs[i].ModTime
}

// testModTime checks ModTime on Read and List, and that an overwrite made
// after the store's granularity has passed makes it later.
func testModTime(e *env) {
	d := e.driver()
	name := e.name("modtime/obj")
	e.write(d, name, []byte("first version"))
	read1, list1 := e.modTimes(d, name)
	// The same object read through a second driver has a ModTime too.
	e.modTimes(e.driver(), name)

	time.Sleep(storeGranularity)
	e.write(d, name, []byte("second version, written later"))
	e.wantContent(d, name, []byte("second version, written later"))
	read2, list2 := e.modTimes(d, name)
	if !read2.After(read1) {
		e.t.Errorf("Read(%q): ModTime %v after an overwrite %v later, was %v: want a later time (%s)", name, read2, storeGranularity, read1, clauseModTime)
	}
	if !list2.After(list1) {
		e.t.Errorf("List(%q): ModTime %v after an overwrite %v later, was %v: want a later time (%s)", name, list2, storeGranularity, list1, clauseModTime)
	}
}

// settlingDriver makes a listing's schedule deterministic for the cache
// cases: while settling is set, List with a page token first waits until
// every object the previous page returned has been deleted (or ctx ends, or
// settleTimeout passes), as a store whose deletes land before the next page
// is listed would. The cache sees the wrapped driver's BatchDeleter, if it
// has one.
type settlingDriver struct {
	driver.Driver
	settling atomic.Bool
	mu       sync.Mutex
	pending  map[string]bool
}

const settleTimeout = 30 * time.Second

type settlingBatchDriver struct{ *settlingDriver }

// DeleteBatch implements driver.BatchDeleter and records the names as
// deleted.
func (s settlingBatchDriver) DeleteBatch(ctx context.Context, names []string) error {
	err := s.Driver.(driver.BatchDeleter).DeleteBatch(ctx, names)
	if err == nil {
		s.settled(names...)
	}
	return err
}

// settle wraps d; set settling on the *settlingDriver returned beside it.
func settle(d driver.Driver) (driver.Driver, *settlingDriver) {
	s := &settlingDriver{Driver: d, pending: map[string]bool{}}
	if _, ok := d.(driver.BatchDeleter); ok {
		return settlingBatchDriver{s}, s
	}
	return s, s
}

func (s *settlingDriver) settled(names ...string) {
	s.mu.Lock()
	for _, n := range names {
		delete(s.pending, n)
	}
	s.mu.Unlock()
}

// Delete implements driver.Driver and records the name as deleted.
func (s *settlingDriver) Delete(ctx context.Context, name string) error {
	err := s.Driver.Delete(ctx, name)
	if err == nil {
		s.settled(name)
	}
	return err
}

// List implements driver.Driver; during Clear, a List with a token first
// waits until the previous page's objects are deleted.
func (s *settlingDriver) List(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	if opts.PageToken != "" && s.settling.Load() {
		deadline := time.Now().Add(settleTimeout)
		for {
			s.mu.Lock()
			n := len(s.pending)
			s.mu.Unlock()
			if n == 0 || ctx.Err() != nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	page, err := s.Driver.List(ctx, opts)
	if err == nil && page != nil {
		s.mu.Lock()
		clear(s.pending)
		for _, o := range page.Objects {
			s.pending[o.Name] = true
		}
		s.mu.Unlock()
	}
	return page, err
}

// clearEntries is how many entries caseCacheClearManyPages clears: more
// than two of the pages Clear lists (driver.MaxListPageSize).
const clearEntries = 2*driver.MaxListPageSize + 100

// caseCacheClearManyPages clears more entries than one page lists, with
// each page's deletes landing before the next page is listed: Len is 0
// after.
func caseCacheClearManyPages(e *env) {
	d := e.driver()
	foreign := e.writeForeign(d)
	sd, s := settle(e.driver())
	c := e.newCache(sd, cache.WithLocation(e.location()), cache.WithMaxEntries(0))
	items := map[string][]byte{}
	for i := range clearEntries {
		items[fmt.Sprint("key", i)] = []byte("v")
	}
	e.must(c.SetMany(e.ctx, items, cache.DefaultTTL))
	e.wantLen(c, clearEntries)
	// Clear lists only entries (the foreign objects are outside the
	// location), so it deletes every object of each page.
	s.settling.Store(true)
	err := c.Clear(e.ctx)
	s.settling.Store(false)
	if err != nil {
		e.t.Fatalf("Clear of %d entries: %v (%s)", clearEntries, err, clauseClear)
	}
	if n, err := c.Len(e.ctx); err != nil || n != 0 {
		e.t.Fatalf("after Clear of %d entries (%d pages), Len = %d, %v; want 0: %s (%s)", clearEntries, clearEntries/driver.MaxListPageSize+1, n, err, e.describeLocation(c), clauseClear)
	}
	e.wantMiss(c, "key0")
	e.wantMiss(c, fmt.Sprint("key", clearEntries-1))
	e.checkForeign(d, foreign)
}

// caseCacheCullOldest checks the oldest cull policy: of four entries in a
// cache of four, two written early, one rewritten late and one written late,
// the write of a fifth culls the two early ones (ceil(4/2)), never the one
// rewritten. The rewritten entry is the early entry whose object name sorts
// first, so a store whose ModTime does not move on overwrite ties it with
// the other early ones, and the tie (broken by name) culls it.
func caseCacheCullOldest(e *env) {
	c := e.cache(cache.WithMaxEntries(4), cache.WithCullPolicy(cull.Oldest(2)))
	early := []string{"early-a", "early-b", "early-c"}
	slices.SortFunc(early, func(a, b string) int { return strings.Compare(c.ObjectName(a), c.ObjectName(b)) })
	rewritten, others := early[0], early[1:]
	for _, k := range early {
		e.must(c.Set(e.ctx, k, []byte("early"), cache.DefaultTTL))
	}
	time.Sleep(storeGranularity)
	e.must(c.Set(e.ctx, rewritten, []byte("rewritten"), cache.DefaultTTL)) // 3 entries: no cull
	e.must(c.Set(e.ctx, "late", []byte("late"), cache.DefaultTTL))         // 3 entries: no cull
	e.wantLen(c, 4)
	e.must(c.Set(e.ctx, "trigger", []byte("t"), cache.DefaultTTL)) // 4 entries: culls 2
	got, err := c.Get(e.ctx, rewritten)
	if err != nil || string(got) != "rewritten" {
		e.t.Fatalf("with cull.Oldest, the entry rewritten %v after the others was culled instead of them: Get(%q) = %q, %v (%s)", storeGranularity, rewritten, got, err, clauseOldest)
	}
	for _, k := range others {
		if v, err := c.Get(e.ctx, k); err == nil {
			e.t.Errorf("with cull.Oldest, the early entry %q survived the cull (Get = %q) though older than the one rewritten (%s)", k, v, clauseOldest)
		}
	}
	e.wantGet(c, "late", "late")
	e.wantGet(c, "trigger", "t")
	e.wantLen(c, 3)
}
