package conformance

// Cases for Delete and listings: prefixes, pages, unusual names.

import (
	"bytes"
	"slices"
	"strconv"
	"strings"

	"github.com/blobcache/blobcache/driver"
	"github.com/google/go-cmp/cmp"
)

func testDelete(e *env) {
	d := e.driver()
	name := e.name("del/obj")
	e.write(d, name, []byte("doomed"))
	nested := e.nestedObjects()
	if nested {
		e.write(d, e.name("del/obj/child"), []byte("child"))
	} else {
		e.t.Logf(`not writing "del/obj/child" beside "del/obj": the store cannot hold both (StoreLimits.NestedObjects)`)
	}
	e.write(d, e.name("del/objx"), []byte("sibling"))
	if err := d.Delete(e.ctx, name); err != nil {
		e.t.Fatalf("Delete(%q) of a present object: %v", name, err)
	}
	e.wantAbsent(d, name)
	if nested {
		e.wantContent(d, e.name("del/obj/child"), []byte("child"))
	}
	e.wantContent(d, e.name("del/objx"), []byte("sibling"))
	// Deleting an absent object returns nil.
	for _, absent := range []string{name, e.name("del/never"), e.name("del")} {
		if err := d.Delete(e.ctx, absent); err != nil {
			e.t.Errorf("Delete(%q) of an absent object = %v, want nil", absent, err)
		}
	}
	if err := d.Delete(e.ctx, e.name("del/obj/child")); err != nil {
		e.t.Errorf("Delete(%q): %v", e.name("del/obj/child"), err)
	}
	want := []string{e.name("del/objx")}
	if got := e.listNames(d, e.name("del"), nil); !cmp.Equal(got, want, equateEmpty) {
		e.t.Errorf("List(%q) after deletes = %q, want %q", e.name("del"), got, want)
	}
}

func testListPrefix(e *env) {
	d := e.driver()
	names := e.withoutFolderObjects([]string{"cache", "cache/a", "cache/b/c", "cache2/x", "cachex", "cach", "other/cache/x"})
	sizes := map[string]int64{}
	for i, n := range names {
		name := e.name(n)
		data := bytes.Repeat([]byte{'s'}, i*10+1)
		e.write(d, name, data)
		sizes[name] = int64(len(data))
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"cache/", []string{"cache/a", "cache/b/c"}},
		{"cache", []string{"cache", "cache/a", "cache/b/c", "cache2/x", "cachex"}},
		{"cach", []string{"cach", "cache", "cache/a", "cache/b/c", "cache2/x", "cachex"}},
		{"cache/b", []string{"cache/b/c"}},
		{"cache/b/c", []string{"cache/b/c"}},
		{"other/", []string{"other/cache/x"}},
		{"", []string{"cach", "cache", "cache/a", "cache/b/c", "cache2/x", "cachex", "other/cache/x"}},
		{"absent/", nil},
		{"cache/a/", nil},
		{"cache/z", nil},
	} {
		prefix := e.name(tc.prefix)
		var want []string
		for _, n := range tc.want {
			if slices.Contains(names, n) {
				want = append(want, e.name(n))
			}
		}
		got := e.listNames(d, prefix, sizes)
		if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
			e.t.Errorf("List(prefix %q) names mismatch (-want +got):\n%s", prefix, diff)
		}
	}
	if e.prefix == "" {
		return
	}
	// With the "prefix" variant, the store's root also holds the decoys.
	got := e.listNames(d, "", nil)
	want := slices.Clone(decoys(e.prefix, e.folderObjects()))
	for _, n := range names {
		want = append(want, e.name(n))
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
		e.t.Errorf(`List(prefix "") names mismatch (-want +got):\n%s`, diff)
	}
}

func testPagination(e *env) {
	d := e.driver()
	const n = 2100
	var all []string
	for i := range n {
		all = append(all, e.name("page/"+strconv.Itoa(i)))
	}
	// Decoys sort just before ("page", "page.x") and after ("page0",
	// "pagf") the prefix "page/".
	decoyNames := []string{e.name("page.x"), e.name("page0"), e.name("pagf/x")}
	if e.folderObjects() {
		decoyNames = append(decoyNames, e.name("page"))
	}
	e.writeAll(d, append(slices.Clone(all), decoyNames...), content)
	slices.Sort(all)
	under := func(prefix string) []string {
		var out []string
		for _, name := range all {
			if strings.HasPrefix(name, prefix) {
				out = append(out, name)
			}
		}
		return out
	}
	for _, tc := range []struct {
		prefix   string
		pageSize int
	}{
		{"page/", 0},
		{"page/", driver.MaxListPageSize},
		{"page/", 999},
		{"page/10", 7}, // 111 names
		{"page/20", 1}, // 111 names
		{"page/209", 2},
	} {
		prefix := e.name(tc.prefix)
		objs, pages := e.listAll(d, prefix, tc.pageSize)
		var got []string
		for _, o := range objs {
			got = append(got, o.Name)
			if want := int64(len(content(o.Name))); o.Size != want {
				e.t.Errorf("List(prefix %q, page size %d): %q has Size %d, want %d", prefix, tc.pageSize, o.Name, o.Size, want)
			}
		}
		want := under(prefix)
		if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
			e.t.Errorf("List(prefix %q, page size %d) over %d pages: names mismatch (-want +got):\n%s", prefix, tc.pageSize, pages, diff)
		}
	}
}

// unusualNames are valid names that stress escaping, encoding, sorting and
// file system mapping. Names made to measure are added by testUnusualNames.
var unusualNames = []string{
	"with space", "a b/c d", "trailing space ", " leading space",
	"%", "percent%", "%41", "%2F", "%2e%2e", "~", "tilde~user",
	"hash#frag", "question?x=1", "plus+sign", "amp&ersand=1",
	"colon:x", "semi;colon", "comma,", "at@", "dollar$", "quote'",
	`dquote"`, `back\slash`, "star*", "lt<gt>", "pipe|", "brace{}",
	"bracket[]", "caret^", "backtick`", "equals=", "bang!",
	"日本/ファイル", "é", "e\u0301", "🙂", "\u00a0nbsp", "Case/A", "case/a",
	".hidden", "a/.b", "...", "a/..c", "a./b.", "-dash", "_under",
}

// longName returns a name of exactly total bytes after prefix, made of
// 200-byte segments.
func longName(prefix string, total int) string {
	n := total - len(prefix)
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(strings.Repeat(string(rune('a'+b.Len()%26)), 200))
		b.WriteByte('/')
	}
	s := []byte(b.String()[:n])
	if s[len(s)-1] == '/' {
		s[len(s)-1] = 'z'
	}
	return string(s)
}

func testUnusualNames(e *env) {
	d := e.driver()
	names := slices.Clone(unusualNames)
	names = append(names,
		longName(e.prefix, driver.MaxNameLength),
		"seg255/"+strings.Repeat("y", e.maxSegmentLength()),
	)
	var full []string
	sizes := map[string]int64{}
	for _, n := range names {
		name := e.name(n)
		if err := driver.ValidateName(name); err != nil {
			e.t.Fatalf("suite bug: %v", err)
		}
		full = append(full, name)
		sizes[name] = int64(len(content(name)))
	}
	e.writeAll(d, full, content)
	for _, name := range full {
		e.wantContent(d, name, content(name))
		// Listing with the name itself as prefix finds it first.
		objs, _ := e.listAll(d, name, 1)
		if len(objs) == 0 || objs[0].Name != name {
			e.t.Errorf("List(prefix %q, page size 1) does not start with the object itself", name)
		}
	}
	slices.Sort(full)
	if diff := cmp.Diff(full, e.listNames(d, e.prefix, sizes), equateEmpty); diff != "" {
		e.t.Errorf("List(prefix %q) names mismatch (-want +got):\n%s", e.prefix, diff)
	}
	// Paging through the unusual names keeps them intact in tokens.
	objs, _ := e.listAll(d, e.prefix, 3)
	if diff := namesDiff(full, attrNames(objs)); diff != "" || len(objs) != len(full) {
		e.t.Errorf("List(prefix %q, page size 3) found %d objects, want %d: %s", e.prefix, len(objs), len(full), diff)
	}
	for _, name := range full {
		if err := d.Delete(e.ctx, name); err != nil {
			e.t.Errorf("Delete(%q): %v", name, err)
		}
	}
	if got := e.listNames(d, e.prefix, nil); len(got) != 0 {
		e.t.Errorf("List(prefix %q) after deleting everything = %q, want nothing", e.prefix, got)
	}
}

// testNamesOnly lists the same objects with and without NamesOnly, page by
// page (pages of 3), and wants the same names, pages and tokens' effect.
func testNamesOnly(e *env) {
	d := e.driver()
	var names []string
	for i := range 10 {
		names = append(names, e.name("names-only/"+strconv.Itoa(i)))
	}
	names = append(names, e.name("names-only/deep/er/x"), e.name("names-onlyx"))
	e.writeAll(d, names, func(n string) []byte { return []byte(n) })
	pages := func(namesOnly bool) [][]string {
		var out [][]string
		opts := &driver.ListOptions{Prefix: e.name("names-only"), PageSize: 3, NamesOnly: namesOnly}
		for range 100 {
			page, err := d.List(e.ctx, opts)
			if err != nil {
				e.t.Fatalf("List(NamesOnly %v): %v", namesOnly, err)
			}
			var got []string
			for _, o := range page.Objects {
				got = append(got, o.Name)
			}
			out = append(out, got)
			if page.NextPageToken == "" {
				return out
			}
			opts.PageToken = page.NextPageToken
		}
		e.t.Fatalf("List(NamesOnly %v) did not end in 100 pages", namesOnly)
		return nil
	}
	full, only := pages(false), pages(true)
	if diff := cmp.Diff(full, only, equateEmpty); diff != "" {
		e.t.Errorf("pages with NamesOnly differ from those without (-without +with):\n%s", diff)
	}
	if n := len(slices.Concat(full...)); n != len(names) {
		e.t.Errorf("listed %d names, want %d", n, len(names))
	}
}
