package cache

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func encodeAll(t testing.TB, value []byte, expiry int64, compress bool) []byte {
	t.Helper()
	return encodeAllSigned(t, value, expiry, compress, nil)
}

func TestEntryRoundTrip(t *testing.T) {
	values := [][]byte{nil, {}, []byte("x"), []byte(strings.Repeat("hello world ", 10000)), {0, 1, 2, 255}}
	for _, compress := range []bool{false, true} {
		for _, v := range values {
			for _, exp := range []int64{0, 1, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()} {
				b := encodeAll(t, v, exp, compress)
				h, got, err := decodeEntry(b, "", nil, DefaultMaxValueSize)
				if err != nil {
					t.Fatalf("decode(gzip=%v, len=%d): %v", compress, len(v), err)
				}
				if !bytes.Equal(got, v) || h.expiry != exp || (h.flags&flagGzip != 0) != compress {
					t.Fatalf("round trip gzip=%v len=%d: got len %d expiry %d flags %x", compress, len(v), len(got), h.expiry, h.flags)
				}
			}
		}
	}
}

// The documented layout, byte for byte.
func TestEntryLayout(t *testing.T) {
	b := encodeAll(t, []byte("v"), 0x0102030405060708, false)
	want := []byte{'B', 'C', 'E', '1', 1, 0, 0, 16, 1, 2, 3, 4, 5, 6, 7, 8, 'v'}
	if !bytes.Equal(b, want) {
		t.Fatalf("layout\n got %v\nwant %v", b, want)
	}
	// A gzip entry is a gzip file of the value, the header in its FEXTRA.
	gz := encodeAll(t, []byte("v"), 0x0102030405060708, true)
	if !bytes.Equal(gz[:4], []byte{0x1f, 0x8b, 8, 4}) {
		t.Fatalf("gzip entry starts %x, want 1f8b0804 (deflate, FEXTRA only)", gz[:4])
	}
	if !bytes.Equal(gz[10:32], append([]byte{20, 0, 'B', 'C', 16, 0}, 'B', 'C', 'E', '1', 1, flagGzip, 0, 16, 1, 2, 3, 4, 5, 6, 7, 8)) {
		t.Fatalf("gzip extra field = %v", gz[10:32])
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatalf("gzip entry is not a gzip stream: %v", err)
	}
	if v, _ := io.ReadAll(zr); string(v) != "v" {
		t.Fatalf("gunzip of the entry = %q, want the value", v)
	}
}

func TestEntryCorruptIsError(t *testing.T) {
	good := encodeAll(t, []byte("value"), 0, false)
	gz := encodeAll(t, []byte(strings.Repeat("value", 100)), 0, true)
	mutate := func(b []byte, f func([]byte)) []byte { c := bytes.Clone(b); f(c); return c }
	cases := map[string][]byte{
		"empty":            {},
		"short header":     good[:10],
		"bad magic":        mutate(good, func(b []byte) { b[0] = 'X' }),
		"unknown version":  mutate(good, func(b []byte) { b[4] = 2 }),
		"unknown flag":     mutate(good, func(b []byte) { b[5] = 0x80 }),
		"bad header len":   mutate(good, func(b []byte) { binary.BigEndian.PutUint16(b[6:], 17) }),
		"negative expiry":  mutate(good, func(b []byte) { b[8] = 0x80 }),
		"truncated gzip":   gz[:len(gz)-5],
		"gzip bad header":  mutate(gz, func(b []byte) { copy(b[16:], "garbage!") }),
		"gzip bad deflate": mutate(gz, func(b []byte) { copy(b[40:], "garbage!") }),
		"gzip no flag":     mutate(gz, func(b []byte) { b[21] = 0 }),
		"gzip other FLG":   mutate(gz, func(b []byte) { b[3] = 0x0c }),
		"gzip trailing":    append(bytes.Clone(gz), "junk"...),
		"foreign gzip":     foreignGzip(),
		"pickle":           []byte("\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00\x8c\x07value\x94."),
		"plain text":       []byte("just some text that is long enough"),
		"gzip flag, plain": mutate(good, func(b []byte) { b[5] = flagGzip }),
	}
	for name, b := range cases {
		if _, _, err := decodeEntry(b, "", nil, DefaultMaxValueSize); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: err = %v, want errCorrupt", name, err)
		}
	}
}

func TestExpiredBoundary(t *testing.T) {
	now := time.Unix(1000, 0)
	if (header{expiry: 0}).expired(now) {
		t.Error("expiry 0 must never expire")
	}
	if !(header{expiry: now.UnixNano()}).expired(now) {
		t.Error("an entry is expired at its expiry instant")
	}
	if (header{expiry: now.UnixNano() + 1}).expired(now) {
		t.Error("an entry is live before its expiry")
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(encodeAll(f, []byte("v"), 0, false))
	f.Add(encodeAll(f, []byte("compressed value"), 42, true))
	f.Add([]byte("BCE1"))
	f.Add(encodeGrace(f, []byte("stale-able"), 42, 7, false, nil))
	f.Add(encodeGrace(f, []byte("stale-able compressed"), 42, 1<<62, true, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, v, err := decodeEntry(b, "", nil, DefaultMaxValueSize)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("error not errCorrupt: %v", err)
			}
			return
		}
		// Whatever decodes re-encodes to an entry that decodes the same.
		again := encodeGrace(t, v, h.expiry, h.grace, h.flags&flagGzip != 0, nil)
		h2, v2, err := decodeEntry(again, "", nil, DefaultMaxValueSize)
		if err != nil || !bytes.Equal(v, v2) || h2.expiry != h.expiry || h2.grace != h.grace {
			t.Fatalf("re-encode mismatch: %v", err)
		}
	})
}

// foreignGzip is a gzip file that is not a blobcache entry.
func foreignGzip() []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(strings.Repeat("someone else's data ", 10)))
	zw.Close()
	return buf.Bytes()
}

func TestInspectEntry(t *testing.T) {
	at := time.Unix(1_800_000_000, 5)
	keys := &signingKeys{keys: [][]byte{[]byte("k")}}
	for _, tc := range []struct {
		gzip   bool
		keys   *signingKeys
		expiry int64
	}{{false, nil, at.UnixNano()}, {true, nil, 0}, {false, keys, at.UnixNano()}, {true, keys, at.UnixNano()}} {
		b := encodeAllSigned(t, []byte(strings.Repeat("value", 100)), tc.expiry, tc.gzip, tc.keys)
		info, err := InspectEntry(b[:min(len(b), EntryHeaderSize)])
		if err != nil {
			t.Fatalf("gzip=%v signed=%v: %v", tc.gzip, tc.keys != nil, err)
		}
		want := EntryInfo{Gzip: tc.gzip, Signed: tc.keys != nil}
		if tc.expiry != 0 {
			want.Expiry = time.Unix(0, tc.expiry)
		}
		if !info.Expiry.Equal(want.Expiry) || info.Gzip != want.Gzip || info.Signed != want.Signed {
			t.Errorf("InspectEntry = %+v, want %+v", info, want)
		}
	}
	for _, bad := range [][]byte{nil, []byte("BCE1"), []byte("XXXX\x01\x00\x00\x10abcdefgh"), foreignGzip()} {
		if _, err := InspectEntry(bad); !errors.Is(err, errCorrupt) {
			t.Errorf("InspectEntry(%q) = %v, want errCorrupt", bad, err)
		}
	}
}

func encodeAllSigned(t testing.TB, value []byte, expiry int64, compress bool, keys *signingKeys) []byte {
	t.Helper()
	return encodeGrace(t, value, expiry, 0, compress, keys)
}

// encodeGrace encodes an entry with a grace period, under the name "name".
func encodeGrace(t testing.TB, value []byte, expiry, grace int64, compress bool, keys *signingKeys) []byte {
	t.Helper()
	e, err := encodeEntry(value, expiry, grace, compress, "name", keys)
	if err != nil {
		t.Fatal(err)
	}
	defer e.release()
	b, err := io.ReadAll(e.reader())
	if err != nil {
		t.Fatal(err)
	}
	return b
}
