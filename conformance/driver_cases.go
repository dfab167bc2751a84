package conformance

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing/iotest"

	"github.com/blobcache/blobcache/driver"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// driverCases is the driver section: the contract of package driver.
var driverCases = []driverCase{
	{"ReadYourWrite", clauseReadYourWrite, testReadYourWrite},
	{"EmptyObject", clauseReadYourWrite, testEmptyObject},
	{"Overwrite", clauseOverwrite, testOverwrite},
	{"ReadRange", clauseReadRange, testReadRange},
	{"ReadBytesOwned", clauseReadOwned, testReadBytesOwned},
	{"ContentEncoding", clauseEncoding, testContentEncoding},
	{"WriteBodyError", clauseBodyError, testWriteBodyError},
	{"AtomicOverwrite", clauseAtomicWrite, testAtomicOverwrite},
	{"NotFound", clauseNotFound, testNotFound},
	{"ErrorKindsAndMessages", clauseErrors, testErrorKindsAndMessages},
	{"Delete", clauseDelete, testDelete},
	{"ListPrefix", clauseListPrefix, testListPrefix},
	{"Pagination", clausePagination, testPagination},
	{"ListWhileChanging", clausePageToken, testListWhileChanging},
	{"ListDuringChurn", clauseListChurn, testListDuringChurn},
	{"ModTime", clauseModTime, testModTime},
	{"UnusualNames", clauseNames, testUnusualNames},
	{"NamesStoredAsGiven", clauseNamesAsGiven, testNamesStoredAsGiven},
	{"IfAbsent", clauseIfAbsent, testIfAbsent},
	{"IfAbsentRace", clauseIfAbsentRace, testIfAbsentRace},
	{"Replace", clauseReplace, testReplace},
	{"ReplaceOptions", clauseReplaceOptions, testReplaceOptions},
	{"ReplaceRace", clauseReplaceRace, testReplaceRace},
	{"BatchDelete", clauseBatchDelete, testBatchDelete},
	{"CrossProcessIfAbsent", clauseIfAbsentRace, testCrossProcessIfAbsent},
	{"CrossProcessReplace", clauseReplaceRace, testCrossProcessReplace},
	{"ContextCanceled", clauseCanceled, testContextCanceled},
	{"CancelDuringWrite", clauseCancelWrite, testCancelDuringWrite},
	{"Close", clauseClose, testClose},
}

// equateEmpty makes nil and empty slices equal in diffs.
var equateEmpty = cmpopts.EquateEmpty()

// randomBytes returns n pseudo-random bytes, the same for the same seed.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func testReadYourWrite(e *env) {
	d := e.driver()
	// The cache reads whole entries of up to its max value size (1 MiB by
	// default) plus framing: a store that cuts objects at a buffer's size
	// fails the largest.
	for i, size := range []int{1, 100, 256<<10 + 3, 1<<20 + 4099} {
		name := e.name(fmt.Sprintf("ryw/%d", i))
		data := randomBytes(size, uint64(i))
		e.write(d, name, data)
		got, attrs := e.read(d, name)
		if !bytes.Equal(got, data) {
			e.t.Errorf("Read(%q) = %s, want the %d bytes written", name, brief(got), len(data))
		}
		e.checkAttrs("Read", name, attrs, int64(size), false)
		// A second driver on the store sees the same object.
		e.wantContent(e.driver(), name, data)
	}
}

func testEmptyObject(e *env) {
	d := e.driver()
	name := e.name("empty")
	e.write(d, name, nil)
	for _, r := range [][2]int64{{0, -1}, {0, 0}, {0, 10}} {
		got, attrs, err := d.Read(e.ctx, name, r[0], r[1])
		if err != nil {
			e.t.Errorf("Read(%q, %d, %d) of an empty object: %v", name, r[0], r[1], err)
			continue
		}
		if len(got) != 0 {
			e.t.Errorf("Read(%q, %d, %d) of an empty object = %s, want no bytes", name, r[0], r[1], brief(got))
		}
		e.checkAttrs("Read", name, attrs, 0, false)
	}
	if got := e.listNames(d, name, map[string]int64{name: 0}); !slices.Equal(got, []string{name}) {
		e.t.Errorf("List(%q) = %q, want the empty object listed", name, got)
	}
}

func testOverwrite(e *env) {
	d := e.driver()
	name := e.name("over")
	e.write(d, name, []byte("the first, longer content"))
	e.write(d, name, []byte("second"))
	e.wantContent(d, name, []byte("second"))
	objs, _ := e.listAll(d, name, 0)
	if len(objs) != 1 || objs[0].Name != name || objs[0].Size != int64(len("second")) {
		e.t.Errorf("List(%q) after overwrite = %+v, want one object of size %d", name, objs, len("second"))
	}
}

func testReadRange(e *env) {
	d := e.driver()
	name := e.name("range")
	data := make([]byte, 100)
	for i := range data {
		data[i] = byte(i)
	}
	e.write(d, name, data)
	for _, tc := range []struct {
		offset, length int64
		from, to       int // want data[from:to]
	}{
		{0, -1, 0, 100},
		{0, 100, 0, 100},
		{0, 1000, 0, 100},
		{10, 5, 10, 15},
		{10, -1, 10, 100},
		{95, 10, 95, 100}, // reaching past the end
		{99, 1, 99, 100},
		{100, -1, 100, 100}, // offset at the end
		{100, 5, 100, 100},
		{101, -1, 100, 100}, // offset past the end
		{150, 10, 100, 100},
		{1 << 40, 1, 100, 100},
		{0, 0, 0, 0},
		{50, 0, 50, 50},
	} {
		got, attrs, err := d.Read(e.ctx, name, tc.offset, tc.length)
		if err != nil {
			e.t.Errorf("Read(%q, offset %d, length %d): %v", name, tc.offset, tc.length, err)
			continue
		}
		if want := data[tc.from:tc.to]; !bytes.Equal(got, want) {
			e.t.Errorf("Read(%q, offset %d, length %d) = %v, want %v", name, tc.offset, tc.length, got, want)
		}
		// Size is the object's size, not the range's.
		e.checkAttrs(fmt.Sprintf("Read(offset %d, length %d)", tc.offset, tc.length), name, attrs, 100, false)
	}
}

func testContentEncoding(e *env) {
	d := e.driver()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(bytes.Repeat([]byte("compressible "), 1000))
	zw.Close()
	for name, data := range map[string][]byte{
		e.name("enc/gzip"):     gz.Bytes(),
		e.name("enc/not-gzip"): []byte("these bytes are not gzip"),
	} {
		if err := d.Write(e.ctx, name, bytes.NewReader(data), &driver.WriteOptions{ContentEncoding: "gzip"}); err != nil {
			e.t.Fatalf("Write(%q, ContentEncoding gzip): %v", name, err)
		}
		// ContentEncoding never changes the bytes stored or returned.
		e.wantContent(d, name, data)
	}
}

// errBody is the error of a body reader that fails.
var errBody = errors.New("conformance: body reader failed")

// failingBody returns n bytes and then errBody.
func failingBody(n int) io.Reader {
	return io.MultiReader(bytes.NewReader(randomBytes(n, 7)), iotest.ErrReader(errBody))
}

func testWriteBodyError(e *env) {
	d := e.driver()
	name := e.name("bodyerr/new")
	for _, opts := range []driver.WriteOptions{{}, {IfAbsent: true}} {
		err := d.Write(e.ctx, name, failingBody(100<<10), &opts)
		if !errors.Is(err, errBody) {
			e.t.Errorf("Write(%q, IfAbsent %v) with a failing body = %v, want the body's error", name, opts.IfAbsent, err)
		}
		e.wantAbsent(d, name)
	}
	if got := e.listNames(d, e.name("bodyerr/"), nil); len(got) != 0 {
		e.t.Errorf("List after failed writes = %q, want nothing", got)
	}
	// A failed IfAbsent write leaves nothing behind that blocks the next one.
	if err := d.Write(e.ctx, name, strings.NewReader("ok"), &driver.WriteOptions{IfAbsent: true}); err != nil {
		e.t.Errorf("Write(%q, IfAbsent) after a failed write: %v", name, err)
	}
	// A failed overwrite keeps the old object.
	old := e.name("bodyerr/old")
	e.write(d, old, []byte("old content"))
	if err := d.Write(e.ctx, old, failingBody(100<<10), &driver.WriteOptions{}); !errors.Is(err, errBody) {
		e.t.Errorf("Write(%q) over an object with a failing body = %v, want the body's error", old, err)
	}
	e.wantContent(d, old, []byte("old content"))
}

func testAtomicOverwrite(e *env) {
	e.needAtomicOverwrite()
	d := e.driver()
	name := e.name("atomic")
	a := bytes.Repeat([]byte("A"), 256<<10)
	b := bytes.Repeat([]byte("b"), 128<<10+7)
	e.write(d, name, a)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		rd := e.driver()
		wg.Go(func() {
			for {
				got, attrs, err := rd.Read(e.ctx, name, 0, -1)
				if err != nil {
					e.t.Errorf("Read(%q) during overwrites: %v", name, err)
					return
				}
				if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
					e.t.Errorf("Read(%q) during overwrites = %s; want one whole version or the other", name, brief(got))
					return
				}
				if attrs.Size != int64(len(got)) {
					e.t.Errorf("Read(%q) during overwrites: Size %d for %d bytes", name, attrs.Size, len(got))
					return
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		})
	}
	for i := range 20 {
		data := b
		if i%2 == 1 {
			data = a
		}
		if err := d.Write(e.ctx, name, bytes.NewReader(data), &driver.WriteOptions{}); err != nil {
			e.t.Errorf("Write(%q): %v", name, err)
			break
		}
	}
	close(stop)
	wg.Wait()
}

func testNotFound(e *env) {
	d := e.driver()
	e.wantAbsent(d, e.name("never/written"))
	if _, _, err := d.Read(e.ctx, e.name("never/written"), 5, 10); !errors.Is(err, driver.ErrNotFound) {
		e.t.Errorf("Read of an absent object with a range = %v, want ErrNotFound", err)
	}
	// Names that are a "directory" of, or a prefix of, existing names do
	// not exist themselves.
	e.write(d, e.name("dir/obj"), []byte("x"))
	for _, name := range []string{"dir", "di", "dir/o", "dir/obj/sub"} {
		e.wantAbsent(d, e.name(name))
	}
}

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

// wantCanceled checks that err satisfies errors.Is(err, context.Canceled).
func (e *env) wantCanceled(op string, err error) {
	e.t.Helper()
	if !errors.Is(err, context.Canceled) {
		e.t.Errorf("%s with a cancelled context = %v, want an error satisfying errors.Is(err, context.Canceled)", op, err)
	}
}

// wantAbsentOrWhole checks that name is absent or holds one of wants whole.
func (e *env) wantAbsentOrWhole(d driver.Driver, name string, wants ...[]byte) {
	e.t.Helper()
	got, _, err := d.Read(e.ctx, name, 0, -1)
	if errors.Is(err, driver.ErrNotFound) {
		return
	}
	if err != nil {
		e.t.Errorf("Read(%q): %v", name, err)
		return
	}
	for _, want := range wants {
		if bytes.Equal(got, want) {
			return
		}
	}
	e.t.Errorf("after a cancelled Write, Read(%q) = %s: neither absent nor a whole version", name, brief(got))
}

func testContextCanceled(e *env) {
	d := e.driver()
	name := e.name("ctx/present")
	old := []byte("present before the cancelled calls")
	e.write(d, name, old)
	tag := ""
	if _, ok := d.(driver.Replacer); ok {
		tag = e.etag(d, name)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	data := randomBytes(64<<10, 3)

	_, _, err := d.Read(ctx, name, 0, -1)
	e.wantCanceled("Read", err)

	fresh := e.name("ctx/fresh")
	e.wantCanceled("Write", d.Write(ctx, fresh, bytes.NewReader(data), &driver.WriteOptions{}))
	e.wantAbsentOrWhole(d, fresh, data)
	e.wantCanceled("Write(IfAbsent)", d.Write(ctx, e.name("ctx/fresh2"), bytes.NewReader(data), &driver.WriteOptions{IfAbsent: true}))
	e.wantAbsentOrWhole(d, e.name("ctx/fresh2"), data)
	e.wantCanceled("Write over an object", d.Write(ctx, name, bytes.NewReader(data), &driver.WriteOptions{}))
	got, _ := e.read(d, name)
	if !bytes.Equal(got, old) && !bytes.Equal(got, data) {
		e.t.Errorf("after a cancelled overwrite, Read(%q) = %s: neither version whole", name, brief(got))
	}

	if r, ok := d.(driver.Replacer); ok {
		e.wantCanceled("Replace", r.Replace(ctx, name, bytes.NewReader(data), tag, &driver.WriteOptions{}))
	}
	_, err = d.List(ctx, &driver.ListOptions{Prefix: e.name("ctx/")})
	e.wantCanceled("List", err)
	if bd, ok := d.(driver.BatchDeleter); ok {
		e.wantCanceled("DeleteBatch", bd.DeleteBatch(ctx, []string{name}))
	}
	e.wantCanceled("Delete", d.Delete(ctx, name))
}

// cancelingReader returns data and cancels a context once `after` bytes
// have been read, continuing to return data.
type cancelingReader struct {
	r      *bytes.Reader
	read   int
	after  int
	cancel context.CancelFunc
}

// Read implements io.Reader.
func (c *cancelingReader) Read(p []byte) (int, error) {
	if len(p) > 16<<10 {
		p = p[:16<<10]
	}
	n, err := c.r.Read(p)
	c.read += n
	if c.read >= c.after {
		c.cancel()
	}
	return n, err
}

func testCancelDuringWrite(e *env) {
	d := e.driver()
	data := randomBytes(1<<20, 4)
	old := []byte("old content")
	for _, tc := range []struct {
		name     string
		existing []byte
		opts     driver.WriteOptions
	}{
		{e.name("cancel/new"), nil, driver.WriteOptions{}},
		{e.name("cancel/new-ifabsent"), nil, driver.WriteOptions{IfAbsent: true}},
		{e.name("cancel/existing"), old, driver.WriteOptions{}},
	} {
		if tc.existing != nil {
			e.write(d, tc.name, tc.existing)
		}
		ctx, cancel := context.WithCancel(e.ctx)
		body := &cancelingReader{r: bytes.NewReader(data), after: 64 << 10, cancel: cancel}
		err := d.Write(ctx, tc.name, body, &tc.opts)
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			e.t.Errorf("Write(%q) cancelled midway = %v, want nil or an error satisfying errors.Is(err, context.Canceled)", tc.name, err)
		}
		if err == nil {
			e.wantContent(d, tc.name, data)
			continue
		}
		if tc.existing != nil {
			got, _ := e.read(d, tc.name)
			if !bytes.Equal(got, tc.existing) && !bytes.Equal(got, data) {
				e.t.Errorf("after a Write cancelled midway, Read(%q) = %s: neither version whole", tc.name, brief(got))
			}
			continue
		}
		e.wantAbsentOrWhole(d, tc.name, data)
	}
}

func testClose(e *env) {
	name := e.name("close")
	d1, err := e.h.MakeDriver(e.ctx)
	if err != nil {
		e.t.Fatalf("MakeDriver: %v", err)
	}
	e.write(d1, name, []byte("survives Close"))
	tag := ""
	if _, ok := d1.(driver.Replacer); ok {
		tag = e.etag(d1, name)
	}
	if err := d1.Close(); err != nil {
		e.t.Errorf("Close: got %v, want nil", err)
	}
	// Every call after Close fails with ErrClosed and touches nothing.
	wantClosed := func(op string, err error) {
		e.t.Helper()
		if !errors.Is(err, driver.ErrClosed) {
			e.t.Errorf("%s after Close = %v, want an error satisfying errors.Is(err, driver.ErrClosed)", op, err)
		}
	}
	_, _, err = d1.Read(e.ctx, name, 0, -1)
	wantClosed("Read", err)
	fresh := e.name("close-fresh")
	wantClosed("Write", d1.Write(e.ctx, fresh, strings.NewReader("after Close"), &driver.WriteOptions{}))
	wantClosed("Write(IfAbsent)", d1.Write(e.ctx, fresh, strings.NewReader("after Close"), &driver.WriteOptions{IfAbsent: true}))
	wantClosed("Write over an object", d1.Write(e.ctx, name, strings.NewReader("after Close"), &driver.WriteOptions{}))
	wantClosed("Delete", d1.Delete(e.ctx, name))
	_, err = d1.List(e.ctx, &driver.ListOptions{Prefix: name})
	wantClosed("List", err)
	if r, ok := d1.(driver.Replacer); ok {
		wantClosed("Replace", r.Replace(e.ctx, name, strings.NewReader("after Close"), tag, &driver.WriteOptions{}))
	}
	if bd, ok := d1.(driver.BatchDeleter); ok {
		wantClosed("DeleteBatch", bd.DeleteBatch(e.ctx, []string{name}))
	}
	if err := d1.Close(); err != nil && !errors.Is(err, driver.ErrClosed) {
		e.t.Errorf("a second Close = %v, want nil or an error satisfying errors.Is(err, driver.ErrClosed)", err)
	}
	// The data outlives the driver; a new driver on the store reads it, and
	// nothing the closed driver was asked to do happened.
	d2 := e.driver()
	e.wantContent(d2, name, []byte("survives Close"))
	e.wantAbsent(d2, fresh)
}
