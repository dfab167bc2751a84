package file

import (
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
)

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// fakeFile is an object file whose size (fstat) says claimed bytes while
// it holds data.
type fakeFile struct {
	data  []byte
	reads int
}

func (f *fakeFile) ReadAt(p []byte, off int64) (int, error) {
	f.reads++
	if off >= int64(len(f.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestReadObjectTrustsNoClaim: a file shorter than its claimed size gives
// what it holds, allocating by what arrives; a file longer than claimed is
// read no further than the claim and the length asked for.
func TestReadObjectTrustsNoClaim(t *testing.T) {
	for _, tc := range []struct {
		what            string
		data            string
		claimed, backed int64
		offset, length  int64
		want            string
		maxAlloc        uint64
	}{
		{"short, whole, no storage", "abc", 1 << 40, 0, 0, -1, "abc", 2 << 20},
		{"short, whole, unknown storage", "abc", 1 << 40, -1, 0, -1, "abc", 2 << 20},
		{"short, whole, 3 MiB of storage", "abc", 1 << 40, 3 << 20, 0, -1, "abc", 4 << 20},
		{"short, whole, from an offset", "abcdef", 1 << 40, 2 << 20, 2, -1, "cdef", 3 << 20},
		{"short, bounded", "abc", 1 << 40, 0, 1, 1 << 20, "bc", 2 << 20},
		{"long, whole", "0123456789", 4, 4096, 0, -1, "0123", 64 << 10},
		{"long, bounded", "0123456789", 4, 4096, 1, 100, "123", 64 << 10},
		{"long, bounded below the claim", "0123456789", 8, 4096, 1, 2, "12", 64 << 10},
		{"offset past the end", "abc", 3, 4096, 10, -1, "", 64 << 10},
	} {
		f := &fakeFile{data: []byte(tc.data)}
		var got []byte
		var err error
		n := allocated(func() { got, err = readObject(t.Context(), f, tc.claimed, tc.backed, tc.offset, tc.length) })
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: readObject = %q, %v; want %q", tc.what, got, err, tc.want)
		}
		if n > tc.maxAlloc {
			t.Errorf("%s: readObject allocated %d bytes, want at most %d", tc.what, n, tc.maxAlloc)
		}
	}
	// A real 64 MiB object read whole or bounded: about one buffer.
	d := newDriver(t, t.TempDir())
	const size = 64 << 20
	write(t, d, "big", []byte(strings.Repeat("x", size)))
	for _, length := range []int64{-1, size + 4096} {
		n := allocated(func() {
			if b, _, err := d.Read(t.Context(), "big", 0, length); err != nil || len(b) != size {
				t.Errorf("Read(big, 0, %d) = %d bytes, %v", length, len(b), err)
			}
		})
		if n > size+size/4 {
			t.Errorf("Read(big, 0, %d) of a 64 MiB object allocated %d MiB, want about 64", length, n>>20)
		}
	}
}

// TestStoreDirRemoved: a writer whose store directory was removed makes it
// again, as New does; readers see no objects meanwhile.
func TestStoreDirRemoved(t *testing.T) {
	dir := t.TempDir() + "/store"
	d := newDriver(t, dir)
	write(t, d, "a/b", []byte("x"))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	wantAbsent(t, d, "a/b")
	write(t, d, "a/b", []byte("again"))
	wantContent(t, d, "a/b", []byte("again"))
}
