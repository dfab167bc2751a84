package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"
)

// Format version 3, byte for byte: the grace field at offset 16, the MAC
// after it when signed.
func TestEntryGraceLayout(t *testing.T) {
	b := encodeGrace(t, []byte("v"), 0x0102030405060708, 0x1112131415161718, false, nil)
	want := []byte{'B', 'C', 'E', '1', 3, 0, 0, 24, 1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 'v'}
	if !bytes.Equal(b, want) {
		t.Fatalf("layout\n got %v\nwant %v", b, want)
	}
	keys := &signingKeys{keys: [][]byte{[]byte("k")}}
	s := encodeGrace(t, []byte("v"), 0x0102030405060708, 5, false, keys)
	if len(s) != 56+1 || s[4] != 3 || s[5] != flagSigned || binary.BigEndian.Uint16(s[6:]) != 56 {
		t.Fatalf("signed version 3 entry starts %v (len %d), want version 3, flags %d, header 56", s[:8], len(s), flagSigned)
	}
	mac := entryMAC(keys.keys[0], "name", s[:24], s[56:])
	if !bytes.Equal(s[24:56], mac[:]) {
		t.Fatalf("MAC at offset 24 is not HMAC(name, 0, header, value)")
	}
	gz := encodeGrace(t, []byte("v"), 0x0102030405060708, 5, true, keys)
	if gz[14] != 56 || !bytes.Equal(gz[16:24], []byte{'B', 'C', 'E', '1', 3, flagGzip | flagSigned, 0, 56}) {
		t.Fatalf("gzip version 3 extra field = %v", gz[10:24])
	}
}

// No grace period: the bytes of versions 1 and 2, unchanged, so readers
// older than version 3 keep reading every entry written without one. A
// grace period on an entry that never expires is dropped.
func TestEntryNoGraceUnchanged(t *testing.T) {
	keys := &signingKeys{keys: [][]byte{[]byte("k")}}
	for _, compress := range []bool{false, true} {
		for _, k := range []*signingKeys{nil, keys} {
			a := encodeAllSigned(t, []byte("value"), 42, compress, k)
			b := encodeGrace(t, []byte("value"), 42, 0, compress, k)
			if !bytes.Equal(a, b) {
				t.Fatalf("gzip=%v signed=%v: a zero grace changes the entry", compress, k != nil)
			}
			never := encodeGrace(t, []byte("value"), 0, int64(time.Hour), compress, k)
			h, _, err := decodeEntry(never, "name", k, DefaultMaxValueSize)
			if err != nil || h.grace != 0 || h.version() == graceVersion {
				t.Fatalf("gzip=%v signed=%v: grace on a never-expiring entry: grace %d, %v", compress, k != nil, h.grace, err)
			}
		}
	}
	if _, err := encodeEntry(nil, 1, -1, false, "name", nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("encodeEntry(grace -1) = %v, want ErrInvalidArgument", err)
	}
}

func TestEntryGraceRoundTrip(t *testing.T) {
	keys := &signingKeys{keys: [][]byte{[]byte("k")}}
	for _, compress := range []bool{false, true} {
		for _, k := range []*signingKeys{nil, keys} {
			for _, grace := range []int64{1, int64(time.Minute), math.MaxInt64} {
				b := encodeGrace(t, bytes.Repeat([]byte("stale "), 100), 1000, grace, compress, k)
				h, v, err := decodeEntry(b, "name", k, DefaultMaxValueSize)
				if err != nil || h.grace != grace || h.expiry != 1000 || !bytes.Equal(v, bytes.Repeat([]byte("stale "), 100)) {
					t.Fatalf("gzip=%v signed=%v grace=%d: got grace %d expiry %d, %v", compress, k != nil, grace, h.grace, h.expiry, err)
				}
				hh, err := parseEntryHeader(b[:min(len(b), headerReadLen)])
				if err != nil || hh.grace != grace {
					t.Fatalf("header-only read: grace %d, %v", hh.grace, err)
				}
				if k != nil {
					if _, _, err := decodeEntry(b, "other", k, DefaultMaxValueSize); !errors.Is(err, errForged) {
						t.Fatalf("signed version 3 entry under another name: %v, want errForged", err)
					}
					tampered := bytes.Clone(b)
					tampered[macOffset(h)-1] ^= 1 // the grace field's last byte
					if _, _, err := decodeEntry(tampered, "name", k, DefaultMaxValueSize); err == nil {
						t.Fatalf("gzip=%v: a changed grace field still verifies", compress)
					}
				}
			}
		}
	}
}

// Every malformed version 3 header is corrupt: one encoding per entry.
func TestEntryGraceCorrupt(t *testing.T) {
	good := encodeGrace(t, []byte("value"), 1000, 10, false, nil)
	mutate := func(f func([]byte)) []byte { c := bytes.Clone(good); f(c); return c }
	cases := map[string][]byte{
		"zero grace":         mutate(func(b []byte) { binary.BigEndian.PutUint64(b[16:], 0) }),
		"negative grace":     mutate(func(b []byte) { b[16] = 0x80 }),
		"never expires":      mutate(func(b []byte) { binary.BigEndian.PutUint64(b[8:], 0) }),
		"header length 16":   mutate(func(b []byte) { binary.BigEndian.PutUint16(b[6:], 16) }),
		"header length 56":   mutate(func(b []byte) { binary.BigEndian.PutUint16(b[6:], 56) }),
		"signed flag no MAC": mutate(func(b []byte) { b[5] = flagSigned }),
		"truncated":          good[:20],
		"v1 with grace len":  mutate(func(b []byte) { b[4] = 1 }),
		"v2 with grace len":  mutate(func(b []byte) { b[4] = 2 }),
	}
	for name, b := range cases {
		if _, _, err := decodeEntry(b, "name", nil, DefaultMaxValueSize); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: %v, want errCorrupt", name, err)
		}
	}
}

func TestHeaderStaleness(t *testing.T) {
	at := func(ns int64) time.Time { return time.Unix(0, ns) }
	h := header{expiry: 100, grace: 50}
	for _, c := range []struct {
		now                  int64
		expired, stale, dead bool
	}{{99, false, false, false}, {100, true, true, false}, {149, true, true, false}, {150, true, false, true}} {
		if h.expired(at(c.now)) != c.expired || h.stale(at(c.now)) != c.stale || h.dead(at(c.now)) != c.dead {
			t.Errorf("at %d: expired %v stale %v dead %v, want %v %v %v", c.now, h.expired(at(c.now)), h.stale(at(c.now)), h.dead(at(c.now)), c.expired, c.stale, c.dead)
		}
	}
	if h := (header{expiry: math.MaxInt64 - 1, grace: math.MaxInt64}); h.staleUntil() != math.MaxInt64 {
		t.Errorf("staleUntil does not saturate: %d", h.staleUntil())
	}
	if h := (header{expiry: 100}); !h.dead(at(100)) || h.stale(at(100)) {
		t.Errorf("an entry without grace is dead at its expiry")
	}
	if h := (header{}); h.dead(at(math.MaxInt64)) {
		t.Errorf("an entry that never expires died")
	}
}

func TestInspectEntryGrace(t *testing.T) {
	b := encodeGrace(t, []byte("v"), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(), int64(time.Hour), true, nil)
	info, err := InspectEntry(b[:EntryHeaderSize])
	if err != nil || info.Grace != time.Hour || !info.Gzip {
		t.Fatalf("InspectEntry = %+v, %v; want Grace 1h, Gzip", info, err)
	}
}
