package conformance

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing/iotest"

	"github.com/blobcache/blobcache/driver"
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
	{"NamesOnly", clauseNamesOnly, testNamesOnly},
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
	{"ReadDelete", clauseReadDelete, testReadDelete},
	{"ReadDeleteRace", clauseReadDeleteRace, testReadDeleteRace},
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
