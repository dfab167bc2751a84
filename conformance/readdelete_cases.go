package conformance

import (
	"bytes"
	"errors"
	"strconv"
	"sync"

	"github.com/blobcache/blobcache/driver"
)

// readDeleter returns d as a ReadDeleter or skips the case.
func (e *env) readDeleter(d driver.Driver) driver.ReadDeleter {
	e.t.Helper()
	t, ok := d.(driver.ReadDeleter)
	if !ok {
		e.t.Skipf("driver %T does not implement driver.ReadDeleter", d)
	}
	return t
}

// testReadDelete checks ReadDelete's result and what it removes: the
// object's leading bytes and attributes, as Read returns them; the object
// gone; an absent object ErrNotFound; the neighbours untouched.
func testReadDelete(e *env) {
	d := e.driver()
	rd := e.readDeleter(d)
	data := []byte("hello, ReadDelete")
	for _, tc := range []struct {
		suffix string
		data   []byte
		length int64
	}{
		{"prefix", data, 5},
		{"whole", data, int64(len(data))},
		{"past-end", data, 1 << 20},
		{"none", data, 0},
		{"empty", []byte{}, 72},
		{"nested/deep/obj", data, 7},
	} {
		name := e.name("readdelete/" + tc.suffix)
		neighbours := []string{name + "x", name + "/child", e.name("readdelete-" + tc.suffix)}
		e.write(d, name, tc.data)
		for _, n := range neighbours {
			e.write(d, n, content(n))
		}
		_, before := e.read(d, name)
		got, attrs, err := rd.ReadDelete(e.ctx, name, tc.length)
		if err != nil {
			e.t.Errorf("ReadDelete(%q, %d) of an object: %v", name, tc.length, err)
			continue
		}
		want := tc.data[:min(int64(len(tc.data)), tc.length)]
		if !bytes.Equal(got, want) {
			e.t.Errorf("ReadDelete(%q, %d) = %s, want %s (Read's first %d bytes)", name, tc.length, brief(got), brief(want), tc.length)
		}
		if attrs.Name != name || attrs.Size != int64(len(tc.data)) || !attrs.ModTime.Equal(before.ModTime) || attrs.ETag != before.ETag {
			e.t.Errorf("ReadDelete(%q) attributes = %+v, want those Read returned: %+v", name, attrs, before)
		}
		e.wantAbsent(d, name)
		if names := e.listNames(d, name, nil); len(names) != len(neighbours)-1 {
			e.t.Errorf("List(%q) after ReadDelete = %q, want only the neighbours %q", name, names, neighbours[:2])
		}
		for _, n := range neighbours {
			e.wantContent(d, n, content(n))
		}
		// Again: the object is gone.
		if got, _, err := rd.ReadDelete(e.ctx, name, tc.length); !errors.Is(err, driver.ErrNotFound) {
			e.t.Errorf("ReadDelete(%q) of a removed object = %s, %v; want ErrNotFound", name, brief(got), err)
		}
		for _, n := range neighbours {
			e.wantContent(d, n, content(n))
		}
	}
	never := e.name("readdelete/never")
	if got, _, err := rd.ReadDelete(e.ctx, never, 10); !errors.Is(err, driver.ErrNotFound) {
		e.t.Errorf("ReadDelete(%q) of a never written object = %s, %v; want ErrNotFound", never, brief(got), err)
	}
	e.wantAbsent(d, never)
}

// testReadDeleteRace races a ReadDelete with a Write of the same name from
// another driver, round after round. Atomic, the pair has two outcomes:
// ReadDelete takes the old object and the new one stays, or the Write lands
// first and ReadDelete takes the new one, leaving nothing. A ReadDelete
// that reads the old object and then removes the new one leaves nothing
// while returning the old: the write is lost unseen.
func testReadDeleteRace(e *env) {
	d1 := e.driver()
	rd := e.readDeleter(d1)
	d2 := e.driver()
	const rounds = 200
	lost := 0
	for round := range rounds {
		name := e.name("race/readdelete/" + strconv.Itoa(round%8))
		old, fresh := []byte("old "+strconv.Itoa(round)), []byte("new "+strconv.Itoa(round))
		e.write(d1, name, old)
		var (
			wg         sync.WaitGroup
			got        []byte
			rerr, werr error
			start      = make(chan struct{})
		)
		wg.Go(func() {
			<-start
			got, _, rerr = rd.ReadDelete(e.ctx, name, 64)
		})
		wg.Go(func() {
			<-start
			werr = d2.Write(e.ctx, name, bytes.NewReader(fresh), &driver.WriteOptions{})
		})
		close(start)
		wg.Wait()
		if rerr != nil || werr != nil {
			e.t.Fatalf("round %d: ReadDelete(%q) = %v, Write = %v; want both to succeed", round, name, rerr, werr)
		}
		after, _, err := d1.Read(e.ctx, name, 0, -1)
		switch {
		case bytes.Equal(got, old) && err == nil && bytes.Equal(after, fresh):
		case bytes.Equal(got, fresh) && errors.Is(err, driver.ErrNotFound):
		case bytes.Equal(got, old) && errors.Is(err, driver.ErrNotFound):
			lost++
		default:
			e.t.Fatalf("round %d: ReadDelete(%q) returned %s and then Read = %s, %v; want the old object taken and the new one present, or the new one taken and nothing left", round, name, brief(got), brief(after), err)
		}
		if err := d1.Delete(e.ctx, name); err != nil {
			e.t.Fatalf("Delete(%q): %v", name, err)
		}
	}
	if lost > 0 {
		e.t.Errorf("in %d of %d rounds, ReadDelete returned the old object and removed the new one a racing Write stored: that write was lost unseen", lost, rounds)
	}
}
