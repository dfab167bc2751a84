package conformance

import (
	"errors"
	"fmt"
	"strings"

	"github.com/blobcache/blobcache/cache"
)

// notEntries returns objects that are not entries of a cache whose listing
// prefix is prefix ("" at the store's root), though they sit among its
// entries: names a cache never makes (the prefix and 40 lower-case hex
// digits are the only ones it makes).
func notEntries(prefix string) map[string][]byte {
	h := hexName(1)
	m := map[string][]byte{
		prefix + "README":                        []byte("an operator's note"),
		prefix + h[:39]:                          []byte("39 hex digits"),
		prefix + strings.ToUpper(h):              []byte("upper-case hex"),
		prefix + h + "0":                         []byte("41 hex digits"),
		prefix + h + ".bak":                      []byte("an entry's name with a suffix"),
		prefix + h[:39] + "g":                    []byte("not hex"),
		prefix + "sub/" + h:                      []byte("an entry's name one folder down"),
		prefix + "zz/" + strings.Repeat("f", 40): []byte("sorts after every entry"),
	}
	return m
}

// caseCacheOnlyEntries checks the cache's rule "Clear, Len and culling
// consider only names that are blobcache entries (the location's prefix plus
// 40 lower-case hex digits)": objects that are not entries, beside the
// entries inside the location and, for a cache at the store's root, at the
// root, are never counted, culled or deleted. The cache sits at the store's
// root in the root variant and at "pfx" in the prefix variant.
func caseCacheOnlyEntries(e *env) {
	const clause = "cache: only entries are the cache's (Clear, Len, Cull, culling)"
	d := e.driver()
	foreign := notEntries(e.prefix)
	if e.prefix == "" {
		foreign["notes.txt"] = []byte("a file at the root")
	}
	for name, v := range foreign {
		e.write(d, name, v)
	}
	check := func(when string) {
		e.t.Helper()
		for name, v := range foreign {
			got, _, err := d.Read(e.ctx, name, 0, -1)
			if err != nil || string(got) != string(v) {
				e.t.Fatalf("%s: after %s, the non-entry object %q was changed: Read = %s, %v", clause, when, name, brief(got), err)
			}
		}
	}
	loc := strings.TrimSuffix(e.prefix, "/")
	c := e.newCache(e.driver(), cache.WithLocation(loc), cache.WithMaxEntries(10), cache.WithCullFrequency(2))
	e.wantLen(c, 0)
	check("Len of an empty cache")
	for i := range 25 {
		e.must(c.Set(e.ctx, fmt.Sprint("key", i), []byte("v"), cache.DefaultTTL))
	}
	check("25 Sets that culled")
	n, err := c.Len(e.ctx)
	if err != nil || n < 1 || n > 10 {
		e.t.Fatalf("%s: Len = %d, %v; want the entries only (1 to 10): %s", clause, n, err, e.describeLocation(c))
	}
	if _, err := c.Cull(e.ctx); err != nil {
		e.t.Fatalf("Cull: %v", err)
	}
	check("Cull")
	e.must(c.Clear(e.ctx))
	e.wantLen(c, 0)
	check("Clear")
	if !c.IsEntryName(c.ObjectName("k")) {
		e.t.Errorf("%s: IsEntryName(ObjectName(\"k\")) = false", clause)
	}
	for name := range foreign {
		if c.IsEntryName(name) {
			e.t.Errorf("%s: IsEntryName(%q) = true", clause, name)
		}
	}
}

// caseCacheHiddenLocation checks the rule "where the store hides the
// location, say so": an object named exactly like the location either
// leaves the location's listing intact (S3, the file and memory drivers) or,
// on a store that hides folders behind such objects (MinIO; StoreLimits),
// makes Clear and Len fail with ErrHiddenEntries instead of reporting an
// empty cache.
func caseCacheHiddenLocation(e *env) {
	e.needNestedObjects()
	const clause = "cache: an object named like the location never makes Clear a silent no-op"
	d := e.driver()
	c := e.cache(cache.WithMaxEntries(0))
	e.must(c.Set(e.ctx, "k", []byte("v"), cache.DefaultTTL))
	e.write(d, e.location(), []byte("an object named like the location"))
	n, lerr := c.Len(e.ctx)
	cerr := c.Clear(e.ctx)
	if e.folderObjects() {
		if lerr != nil || n != 1 || cerr != nil {
			e.t.Fatalf("%s: Len = %d, %v and Clear = %v; want 1, nil, nil", clause, n, lerr, cerr)
		}
		e.wantMiss(c, "k")
	} else {
		if !errors.Is(lerr, cache.ErrHiddenEntries) || !errors.Is(cerr, cache.ErrHiddenEntries) {
			e.t.Fatalf("%s: on a store that hides folders, Len = %d, %v and Clear = %v; want ErrHiddenEntries", clause, n, lerr, cerr)
		}
		if !strings.Contains(cerr.Error(), fmt.Sprintf("%q", e.location())) {
			e.t.Errorf("%s: the error does not name the object in the way: %v", clause, cerr)
		}
		e.wantGet(c, "k", "v")
	}
	// The object named like the location is not the cache's.
	e.wantContent(d, e.location(), []byte("an object named like the location"))
	e.must(d.Delete(e.ctx, e.location()))
	e.must(c.Clear(e.ctx))
	e.wantLen(c, 0)
}
