package mem

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/blobcache/blobcache/driver"
)

// pieces is a body that writes its bytes as pieces of the given sizes, the
// last repeated, as an io.WriterTo.
type pieces struct {
	data  []byte
	sizes []int
}

// WriteTo implements io.WriterTo.
func (p pieces) WriteTo(w io.Writer) (int64, error) {
	var n int64
	rest, sizes := p.data, p.sizes
	for len(rest) > 0 {
		k := min(sizes[0], len(rest))
		if len(sizes) > 1 {
			sizes = sizes[1:]
		}
		m, err := w.Write(rest[:k])
		n += int64(m)
		if err != nil {
			return n, err
		}
		rest = rest[k:]
	}
	return n, nil
}

// Read implements io.Reader (unused: io.Copy prefers WriteTo).
func (pieces) Read([]byte) (int, error) { panic("Read called") }

// stored returns the bytes the store keeps for name.
func stored(t *testing.T, d *Driver, name string) []byte {
	t.Helper()
	sh := &d.s.shards[shardIndex(name)]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	e := sh.m[name]
	if e == nil {
		t.Fatalf("%q not stored", name)
	}
	return e.obj.Load().data
}

// TestStoredSize: whatever the body, the store keeps its bytes in a buffer
// hardly larger than they are (a growing buffer would keep up to twice), and
// a body written as a header and a value is stored with no copy beyond the
// one buffer.
func TestStoredSize(t *testing.T) {
	d := New()
	ctx := context.Background()
	for _, size := range []int{0, 1, 100, 511, 512, 513, 1024, 4096, 64 << 10, 1 << 20, 1<<20 + 1, 5<<20 + 3} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i * 7)
		}
		bodies := map[string]io.Reader{
			"bytes.Reader":     bytes.NewReader(data),
			"header and value": pieces{data, []int{40, size}},
			"64 KiB pieces":    pieces{data, []int{64 << 10}},
			"growing pieces":   pieces{data, []int{1, 10, 100, 1000, 10000, 100000, 1 << 20}},
			"Reader":           iotest.HalfReader(bytes.NewReader(data)),
		}
		if size <= 4096 {
			bodies["one byte at a time"] = iotest.OneByteReader(bytes.NewReader(data))
		}
		for what, body := range bodies {
			name := fmt.Sprintf("s/%d/%s", size, what)
			if err := d.Write(ctx, name, body, &driver.WriteOptions{}); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			b := stored(t, d, name)
			if !bytes.Equal(b, data) {
				t.Errorf("%s: stored other bytes", name)
			}
			if c := cap(b); c > len(b)+len(b)/8+64 {
				t.Errorf("%s: %d bytes kept in a buffer of %d", name, len(b), c)
			}
		}
	}
}

// TestPrivateCloseFrees: Close of a private store drops its objects; Close
// of a handle on a named store keeps them.
func TestPrivateCloseFrees(t *testing.T) {
	ctx := context.Background()
	p := New()
	n := Open(t.Name())
	for _, d := range []*Driver{p, n} {
		for i := range 100 {
			if err := d.Write(ctx, fmt.Sprint("k", i), bytes.NewReader([]byte("v")), &driver.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		d.Close()
	}
	count := func(s *store) (names int) {
		for i := range s.shards {
			names += len(s.shards[i].m)
		}
		return names
	}
	if c, l := count(p.s), p.s.tree.Len(); c != 0 || l != 0 {
		t.Errorf("closed private store keeps %d names, %d in its index", c, l)
	}
	if c, l := count(n.s), n.s.tree.Len(); c != 100 || l != 100 {
		t.Errorf("named store after Close of a handle: %d names, %d in its index; want 100", c, l)
	}
}
