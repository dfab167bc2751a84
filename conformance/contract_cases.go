package conformance

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/blobcache/blobcache/driver"
)

// Cases for the clauses that say who owns memory, what errors carry, what
// Replace's options mean and how listings behave under concurrent change.

// trackedBody is a Write body over data that records a Read made after
// the Write returned.
type trackedBody struct {
	r    *bytes.Reader
	done atomic.Bool // set when Write has returned
	late atomic.Bool // a Read came after Write returned
}

// Read implements io.Reader.
func (b *trackedBody) Read(p []byte) (int, error) {
	if b.done.Load() {
		b.late.Store(true)
	}
	return b.r.Read(p)
}

// WriteTo implements io.WriterTo, as *bytes.Reader does: io.Copy then hands
// the caller's buffer itself to the driver's writer, which must copy it.
func (b *trackedBody) WriteTo(w io.Writer) (int64, error) {
	if b.done.Load() {
		b.late.Store(true)
	}
	return b.r.WriteTo(w)
}

// testReadBytesOwned checks that the bytes Read returns are the caller's,
// and that Write keeps neither its body nor the body's buffer.
func testReadBytesOwned(e *env) {
	d := e.driver()
	name := e.name("owned/obj")
	data := randomBytes(64<<10, 11)

	// The caller's buffer is scribbled over once Write returns.
	buf := slices.Clone(data)
	body := &trackedBody{r: bytes.NewReader(buf)}
	if err := d.Write(e.ctx, name, body, &driver.WriteOptions{}); err != nil {
		e.t.Fatalf("Write(%q): %v", name, err)
	}
	body.done.Store(true)
	for i := range buf {
		buf[i] ^= 0xff
	}
	if got, _ := e.read(d, name); !bytes.Equal(got, data) {
		e.t.Errorf(`Read(%q) after the writer changed its buffer once Write returned = %s, want the bytes written: the driver kept the body's memory (contract (Driver.Write): "The driver does not use body after Write returns")`, name, brief(got))
	}

	// Changing what Read returned changes nothing stored.
	got, _ := e.read(d, name)
	for i := range got {
		got[i] ^= 0xff
	}
	again, _ := e.read(d, name)
	if !bytes.Equal(again, data) {
		e.t.Errorf("Read(%q) after the caller changed the bytes a first Read returned = %s, want the bytes written: Read returned the store's own memory", name, brief(again))
	}

	// Later writes, deletes and reads never change bytes Read returned.
	kept := slices.Clone(again)
	part, _, err := d.Read(e.ctx, name, 100, 1000)
	if err != nil {
		e.t.Fatalf("Read(%q, 100, 1000): %v", name, err)
	}
	keptPart := slices.Clone(part)
	e.write(d, name, randomBytes(len(data), 12))
	e.read(d, name)
	e.write(d, e.name("owned/other"), randomBytes(len(data), 13))
	if err := d.Delete(e.ctx, name); err != nil {
		e.t.Fatalf("Delete(%q): %v", name, err)
	}
	e.write(d, name, randomBytes(len(data), 14))
	if !bytes.Equal(again, kept) {
		e.t.Errorf("the bytes an earlier Read(%q) returned changed after later writes and a delete: now %s, were %s", name, brief(again), brief(kept))
	}
	if !bytes.Equal(part, keptPart) {
		e.t.Errorf("the bytes an earlier Read(%q, 100, 1000) returned changed after later writes and a delete: now %s, were %s", name, brief(part), brief(keptPart))
	}
	if body.late.Load() {
		e.t.Errorf(`Write(%q) read its body after it returned (contract (Driver.Write): "The driver does not use body after Write returns")`, name)
	}
}

// wantErrorOf checks that err, from op on name, wraps kind, is not the bare
// kind, and names the object as %q quotes it.
func (e *env) wantErrorOf(op, name string, err, kind error) {
	e.t.Helper()
	switch {
	case !errors.Is(err, kind):
		e.t.Errorf("%s = %v, want an error satisfying errors.Is(err, %v)", op, err, kind)
	case err == kind:
		e.t.Errorf("%s returned the bare kind %q: wrap it with the operation and the name", op, err)
	case !strings.Contains(err.Error(), strconv.Quote(name)):
		e.t.Errorf("%s = %q: the message does not name the object as %s", op, err, strconv.Quote(name))
	}
}

// testErrorKindsAndMessages checks the error convention on every error a
// caller tests for.
func testErrorKindsAndMessages(e *env) {
	d := e.driver()
	absent := e.name("errs/never written")
	present := e.name("errs/present")
	e.write(d, present, []byte("v1"))

	_, _, err := d.Read(e.ctx, absent, 0, -1)
	e.wantErrorOf(fmt.Sprintf("Read(%q) of an absent object", absent), absent, err, driver.ErrNotFound)
	_, _, err = d.Read(e.ctx, absent, 3, 5)
	e.wantErrorOf(fmt.Sprintf("Read(%q, 3, 5) of an absent object", absent), absent, err, driver.ErrNotFound)
	err = d.Write(e.ctx, present, strings.NewReader("v2"), &driver.WriteOptions{IfAbsent: true})
	e.wantErrorOf(fmt.Sprintf("Write(%q, IfAbsent) of a present object", present), present, err, driver.ErrPreconditionFailed)

	r, ok := d.(driver.Replacer)
	if !ok {
		return
	}
	stale := e.etag(d, present)
	e.write(d, present, []byte("v3"))
	err = r.Replace(e.ctx, present, strings.NewReader("v4"), stale, &driver.WriteOptions{})
	e.wantErrorOf(fmt.Sprintf("Replace(%q) with a stale ETag", present), present, err, driver.ErrPreconditionFailed)
	err = r.Replace(e.ctx, absent, strings.NewReader("v4"), stale, &driver.WriteOptions{})
	e.wantErrorOf(fmt.Sprintf("Replace(%q) of an absent object", absent), absent, err, driver.ErrNotFound)
}

// testReplaceOptions checks what Replace does with its options and with a
// failing body.
func testReplaceOptions(e *env) {
	d := e.driver()
	r := e.replacer(d)
	name := e.name("replace-opts")
	e.write(d, name, []byte("v1"))

	// IfAbsent is ignored: the ETag is Replace's condition.
	tag := e.etag(d, name)
	if err := r.Replace(e.ctx, name, strings.NewReader("v2"), tag, &driver.WriteOptions{IfAbsent: true}); err != nil {
		e.t.Errorf("Replace(%q) with the current ETag and IfAbsent set = %v, want nil: IfAbsent has no meaning for Replace", name, err)
	} else {
		e.wantContent(d, name, []byte("v2"))
	}

	// ContentEncoding never changes the bytes.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(bytes.Repeat([]byte("replaced "), 500))
	zw.Close()
	tag = e.etag(d, name)
	if err := r.Replace(e.ctx, name, bytes.NewReader(gz.Bytes()), tag, &driver.WriteOptions{ContentEncoding: "gzip"}); err != nil {
		e.t.Fatalf("Replace(%q, ContentEncoding gzip) with the current ETag: %v", name, err)
	}
	e.wantContent(d, name, gz.Bytes())

	// A failing body stores nothing: the object and its ETag are unchanged.
	tag = e.etag(d, name)
	if err := r.Replace(e.ctx, name, failingBody(100<<10), tag, &driver.WriteOptions{}); !errors.Is(err, errBody) {
		e.t.Errorf("Replace(%q) with a failing body = %v, want the body's error", name, err)
	}
	e.wantContent(d, name, gz.Bytes())
	if err := r.Replace(e.ctx, name, strings.NewReader("v3"), tag, &driver.WriteOptions{}); err != nil {
		e.t.Errorf("Replace(%q) with the ETag from before a Replace whose body failed = %v, want nil: the failed Replace changed the object", name, err)
	}
}

// churnGoal is how many writes and deletes the churning goroutine of
// testListDuringChurn makes at least before the listings stop, and
// churnRacedLists how many listings at least must see a change between
// their first and last page (a burst of changes between two listings races
// nothing); maxChurnLists bounds the listings.
const (
	churnGoal       = 200
	churnRacedLists = 3
	maxChurnLists   = 200
)

// testListDuringChurn lists while another goroutine, through its own
// driver, writes and deletes objects interleaved with the listed ones: every
// object present throughout is listed exactly once by every listing, in
// order, and an object that comes and goes at most once.
func testListDuringChurn(e *env) {
	d := e.driver()
	w := e.driver()
	const n = 300
	prefix := e.name("churn/")
	stable := make([]string, n)
	for i := range stable {
		stable[i] = e.name(fmt.Sprintf("churn/%04d-s", i))
	}
	e.writeAll(d, stable, content)

	stop := make(chan struct{})
	var (
		wg      sync.WaitGroup
		changes atomic.Int64
		mu      sync.Mutex
		werr    error
	)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// Names sort between the stable ones ("0042-c" < "0042-s").
			name := e.name(fmt.Sprintf("churn/%04d-c", (i*37)%n))
			err := w.Write(e.ctx, name, bytes.NewReader(content(name)), &driver.WriteOptions{})
			if err == nil && i%2 == 1 {
				err = w.Delete(e.ctx, name)
			}
			if err != nil {
				mu.Lock()
				werr = fmt.Errorf("churn %q: %w", name, err)
				mu.Unlock()
				return
			}
			changes.Add(1)
		}
	})
	lists, raced := 0, 0
	for ; lists < maxChurnLists && (raced < churnRacedLists || changes.Load() < churnGoal); lists++ {
		before := changes.Load()
		counts := map[string]int{}
		last := ""
		e.walkPages(d, prefix, 7, func(pageNo int, page *driver.ListPage) {
			for _, o := range page.Objects {
				if e.byteOrderListing() && last != "" && o.Name <= last {
					e.t.Fatalf("List(prefix %q, page size 7, page %d) while another goroutine writes and deletes: %q follows %q", prefix, pageNo, o.Name, last)
				}
				last = o.Name
				counts[o.Name]++
			}
		})
		if changes.Load() > before {
			raced++
		}
		what := fmt.Sprintf("listing %d of prefix %q (page size 7) while another goroutine writes and deletes", lists+1, prefix)
		e.wantListedOnce(what, counts, stable)
		if e.t.Failed() {
			break
		}
		if e.byteOrderListing() {
			for name, c := range counts {
				if c > 1 {
					e.t.Errorf("%s: %q was listed %d times", what, name, c)
				}
			}
		}
	}
	close(stop)
	wg.Wait()
	if werr != nil {
		e.t.Fatalf("the churning goroutine: %v", werr)
	}
	if got := changes.Load(); (got < churnGoal || raced < churnRacedLists) && !e.t.Failed() {
		e.t.Fatalf("suite bug: only %d writes and deletes during %d listings, %d of them raced; the listings were not raced", got, lists, raced)
	}
}
