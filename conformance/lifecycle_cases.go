package conformance

// Cases for cancellation and Close.

import (
	"bytes"
	"context"
	"errors"
	"strings"

	"github.com/blobcache/blobcache/driver"
)

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
	if rd, ok := d.(driver.ReadDeleter); ok {
		_, _, err := rd.ReadDelete(ctx, name, 10)
		e.wantCanceled("ReadDelete", err)
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
	if rd, ok := d1.(driver.ReadDeleter); ok {
		_, _, err := rd.ReadDelete(e.ctx, name, 10)
		wantClosed("ReadDelete", err)
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
