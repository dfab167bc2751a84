package counting_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/driver/counting"
)

// store is a one-object driver with no optional capability.
type store struct {
	data   string
	closed bool
}

func (s *store) Read(_ context.Context, name string, off, n int64) ([]byte, driver.Attributes, error) {
	if s.data == "" {
		return nil, driver.Attributes{}, driver.ErrNotFound
	}
	b := []byte(s.data)[min(off, int64(len(s.data))):]
	if n >= 0 && n < int64(len(b)) {
		b = b[:n]
	}
	return b, driver.Attributes{Name: name, Size: int64(len(s.data)), ETag: "e"}, nil
}

func (s *store) Write(_ context.Context, _ string, body io.Reader, _ *driver.WriteOptions) error {
	b, err := io.ReadAll(body)
	s.data = string(b)
	return err
}

func (s *store) Delete(context.Context, string) error { s.data = ""; return nil }

func (s *store) List(context.Context, *driver.ListOptions) (*driver.ListPage, error) {
	return &driver.ListPage{}, nil
}

func (s *store) Close() error { s.closed = true; return nil }

type withReplace struct{ *store }

func (d withReplace) Replace(ctx context.Context, name string, body io.Reader, _ string, opts *driver.WriteOptions) error {
	return d.Write(ctx, name, body, opts)
}

type withBatch struct{ *store }

func (d withBatch) DeleteBatch(context.Context, []string) error { d.data = ""; return nil }

type withValidate struct{ *store }

var errRefused = fmt.Errorf("%w: refused", driver.ErrInvalidName)

func (withValidate) ValidateName(name string) error {
	if strings.Contains(name, "..") {
		return errRefused
	}
	return nil
}

type withTake struct{ *store }

func (d withTake) ReadDelete(ctx context.Context, name string, n int64) ([]byte, driver.Attributes, error) {
	b, attrs, err := d.Read(ctx, name, 0, n)
	if err == nil {
		d.data = ""
	}
	return b, attrs, err
}

// withCaps returns s with the capabilities of the bit set caps: 1 Replacer,
// 2 BatchDeleter, 4 NameValidator, 8 ReadDeleter. The base methods are
// s's own, at the shallowest depth.
func withCaps(s *store, caps int) driver.Driver {
	r, b, v, t := withReplace{s}, withBatch{s}, withValidate{s}, withTake{s}
	switch caps {
	case 0:
		return s
	case 1:
		return struct {
			*store
			withReplace
		}{s, r}
	case 2:
		return struct {
			*store
			withBatch
		}{s, b}
	case 3:
		return struct {
			*store
			withReplace
			withBatch
		}{s, r, b}
	case 4:
		return struct {
			*store
			withValidate
		}{s, v}
	case 5:
		return struct {
			*store
			withReplace
			withValidate
		}{s, r, v}
	case 6:
		return struct {
			*store
			withBatch
			withValidate
		}{s, b, v}
	case 7:
		return struct {
			*store
			withReplace
			withBatch
			withValidate
		}{s, r, b, v}
	case 8:
		return struct {
			*store
			withTake
		}{s, t}
	case 9:
		return struct {
			*store
			withReplace
			withTake
		}{s, r, t}
	case 10:
		return struct {
			*store
			withBatch
			withTake
		}{s, b, t}
	case 11:
		return struct {
			*store
			withReplace
			withBatch
			withTake
		}{s, r, b, t}
	case 12:
		return struct {
			*store
			withValidate
			withTake
		}{s, v, t}
	case 13:
		return struct {
			*store
			withReplace
			withValidate
			withTake
		}{s, r, v, t}
	case 14:
		return struct {
			*store
			withBatch
			withValidate
			withTake
		}{s, b, v, t}
	default:
		return struct {
			*store
			withReplace
			withBatch
			withValidate
			withTake
		}{s, r, b, v, t}
	}
}

// TestWrapKeepsCapabilities: for each of the sixteen combinations of
// optional capabilities, a type assertion on the wrapper succeeds exactly
// when it does on the wrapped driver, and each capability reaches the
// wrapped one.
func TestWrapKeepsCapabilities(t *testing.T) {
	newStore := func() *store { return &store{} }
	for caps := range 16 {
		s := newStore()
		inner := withCaps(s, caps)
		_, innerR := inner.(driver.Replacer)
		_, innerB := inner.(driver.BatchDeleter)
		_, innerV := inner.(driver.NameValidator)
		_, innerT := inner.(driver.ReadDeleter)
		if innerR != (caps&1 != 0) || innerB != (caps&2 != 0) || innerV != (caps&4 != 0) || innerT != (caps&8 != 0) {
			t.Fatalf("withCaps(%d) has the wrong capabilities", caps)
		}
		name := fmt.Sprintf("replacer=%v,batch=%v,validator=%v,readdelete=%v", innerR, innerB, innerV, innerT)
		t.Run(name, func(t *testing.T) {
			d, ctr := counting.Wrap(inner)
			r, isR := d.(driver.Replacer)
			b, isB := d.(driver.BatchDeleter)
			v, isV := d.(driver.NameValidator)
			rd, isT := d.(driver.ReadDeleter)
			if isR != innerR || isB != innerB || isV != innerV || isT != innerT {
				t.Fatalf("wrapper: replacer=%v batch=%v validator=%v readdelete=%v; want %s", isR, isB, isV, isT, name)
			}
			ctx := t.Context()
			want := counting.Counts{}
			check := func(what string) {
				t.Helper()
				if got := ctr.Counts(); got != want {
					t.Errorf("after %s: counts %+v, want %+v", what, got, want)
				}
			}
			if err := d.Write(ctx, "x", strings.NewReader("hello"), &driver.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			want.Writes++
			check("Write")
			if data, _, err := d.Read(ctx, "x", 1, 3); err != nil || string(data) != "ell" {
				t.Fatalf("Read = %q, %v", data, err)
			}
			want.Reads++
			want.BytesRead += 3
			check("Read")
			if _, err := d.List(ctx, &driver.ListOptions{}); err != nil {
				t.Fatal(err)
			}
			want.Lists++
			check("List")
			if isR {
				if err := r.Replace(ctx, "x", strings.NewReader("again"), "e", &driver.WriteOptions{}); err != nil || s.data != "again" {
					t.Fatalf("Replace: %v, stored %q", err, s.data)
				}
				want.Replaces++
				check("Replace")
			}
			if isV {
				if err := v.ValidateName("a/../b"); !errors.Is(err, errRefused) {
					t.Errorf("ValidateName = %v, want the wrapped driver's error", err)
				}
				check("ValidateName") // no request: not counted
			}
			if isB {
				if err := b.DeleteBatch(ctx, []string{"x"}); err != nil || s.data != "" {
					t.Fatalf("DeleteBatch: %v, stored %q", err, s.data)
				}
				want.BatchDeletes++
				check("DeleteBatch")
			}
			if isT {
				if err := d.Write(ctx, "x", strings.NewReader("taken"), &driver.WriteOptions{}); err != nil {
					t.Fatal(err)
				}
				want.Writes++
				if data, _, err := rd.ReadDelete(ctx, "x", 2); err != nil || string(data) != "ta" || s.data != "" {
					t.Fatalf("ReadDelete = %q, %v; stored %q", data, err, s.data)
				}
				want.Deletes++
				want.BytesRead += 2
				check("ReadDelete")
			}
			if err := d.Delete(ctx, "x"); err != nil {
				t.Fatal(err)
			}
			want.Deletes++
			check("Delete")
			if _, _, err := d.Read(ctx, "x", 0, -1); !errors.Is(err, driver.ErrNotFound) {
				t.Fatalf("Read of a deleted object: %v", err)
			}
			want.Reads++
			check("a missed Read")
			if got, w := ctr.Requests(), want.Requests(); got != w || w != 5+int64(btoi(isR)+btoi(isB)+2*btoi(isT)) {
				t.Errorf("Requests = %d, want %d", got, w)
			}
			if err := d.Close(); err != nil || !s.closed {
				t.Errorf("Close = %v, closed the wrapped driver: %v", err, s.closed)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestConcurrentCounts: the counter is safe for concurrent use (run with
// -race) and loses no count.
func TestConcurrentCounts(t *testing.T) {
	d, ctr := counting.Wrap(withReplace{&store{data: "v"}})
	ctx := t.Context()
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 100 {
				d.Read(ctx, "x", 0, -1)
				d.List(ctx, &driver.ListOptions{})
			}
		}()
	}
	for range 8 {
		<-done
	}
	if got := ctr.Counts(); got.Reads != 800 || got.Lists != 800 || got.BytesRead != 800 || ctr.Requests() != 1600 {
		t.Errorf("counts %+v, requests %d", got, ctr.Requests())
	}
}
