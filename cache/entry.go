package cache

import (
	"bytes"
	"compress/gzip"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"
)

// The stored form of an entry (integers big-endian) starts with a header:
//
//	offset size field
//	0      4    magic "BCE1"
//	4      1    format version: 1 unsigned, 2 signed, 3 with a grace
//	            period (signed or not)
//	5      1    flags: bit 0 = value is gzip-compressed, bit 1 = signed;
//	            other bits must be 0
//	6      2    header length in bytes: 16 (version 1), 48 (version 2),
//	            24 or 56 when signed (version 3)
//	8      8    expiry, Unix time in nanoseconds; 0 = never expires
//	16     8    (version 3 only) grace period in nanoseconds, at least 1:
//	            how long after its expiry the stale value may still be
//	            served by GetOrSet while it is refreshed (WithStaleGrace)
//	16|24  32   (signed only) HMAC-SHA256 over the object name, a zero byte
//	            and every stored byte of the object except these 32; at
//	            offset 24 in version 3, 16 otherwise
//
// framed in one of two ways:
//
//   - plain (flag bit 0 clear): the header, then the value.
//   - gzip (flag bit 0 set): one gzip member (RFC 1952) whose header has only
//     the FEXTRA flag, with one extra subfield "BC" holding the header, then
//     the deflated value. The object is a valid gzip file of the value,
//     stored with Content-Encoding: gzip; the blobcache header starts at
//     byte 16.
//
// The format version says what the MAC covers: version 1 entries are
// unsigned (an old signed version 1 entry, whose MAC covered the
// uncompressed value, is refused), version 2 entries are signed and their MAC
// covers the stored bytes, so a reader checks it before it decompresses
// anything. Version 3 adds the grace field and is written only for an entry
// that has one (an entry without a grace period is version 1 or 2, as
// before, so readers that predate version 3 read it); the signed flag says
// whether it carries a MAC, which covers the stored bytes as in version 2.
// Each entry has one encoding: a version 3 entry must have an expiry and a
// grace period of at least 1 ns. A reader refuses an entry whose magic, version, flags, header
// length or framing it does not know; such an entry is a miss and is
// deleted.
//
// Reading is bounded by the cache's max value size M (WithMaxValueSize): the
// cache reads at most readLimit(M) bytes of an object, and a gzip value is
// decompressed into a buffer that starts at most 16 times the stored size
// (whatever the gzip trailer claims) and grows only as decompressed bytes
// actually arrive, never past M. So one read allocates at most about the
// object's real size plus 3 times its real decompressed size, and never
// more than about 4 M.
const (
	entryMagic      = "BCE1"
	entryVersion    = 1 // unsigned entries
	signedVersion   = 2 // signed entries: the MAC covers the stored bytes
	graceVersion    = 3 // entries with a grace period, signed or not
	baseHeaderLen   = 16
	graceLen        = 8
	macLen          = sha256.Size
	signedHeaderLen = baseHeaderLen + macLen
	maxHeaderLen    = baseHeaderLen + graceLen + macLen
	flagGzip        = 1 << 0
	flagSigned      = 1 << 1
	knownEntryFlags = flagGzip | flagSigned

	// gzipHeaderOffset is where the header sits in a gzip-framed entry:
	// after gzip's 10 fixed bytes, XLEN (2) and the subfield's ID and
	// length (4).
	gzipHeaderOffset = 16
	// headerReadLen is how many bytes a header-only read fetches: enough for
	// either framing, signed or not, with a grace period or not.
	headerReadLen = gzipHeaderOffset + maxHeaderLen
)

var (
	// errCorrupt is wrapped by every entry decoding error.
	errCorrupt = errors.New("corrupt cache entry")
	// errForged is wrapped when a signing key is set and an entry has no
	// MAC or a MAC no key verifies (tampered, or moved to another name).
	errForged = errors.New("entry fails its signature check")
)

// header is the decoded header of an entry.
type header struct {
	flags  byte
	expiry int64 // Unix nanoseconds; 0 = never
	grace  int64 // nanoseconds after expiry the value may be served stale; 0 = none
	mac    [macLen]byte
}

// expired reports whether the entry is past its expiry (it may still be
// within its grace period: see stale).
func (h header) expired(now time.Time) bool {
	return h.expiry != 0 && now.UnixNano() >= h.expiry
}

// staleUntil is when the entry's grace period ends (its expiry when it has
// none), saturating at the largest time.
func (h header) staleUntil() int64 {
	if h.grace > math.MaxInt64-h.expiry {
		return math.MaxInt64
	}
	return h.expiry + h.grace
}

// dead reports whether the entry is past its expiry and its grace period:
// nothing may serve it any more, and a reader deletes it.
func (h header) dead(now time.Time) bool {
	return h.expiry != 0 && now.UnixNano() >= h.staleUntil()
}

// stale reports whether the entry is expired but within its grace period.
func (h header) stale(now time.Time) bool { return h.expired(now) && !h.dead(now) }

func (h header) version() byte {
	switch {
	case h.grace != 0:
		return graceVersion
	case h.flags&flagSigned != 0:
		return signedVersion
	}
	return entryVersion
}

// macStart is where the MAC field starts within the header.
func (h header) macStart() int {
	if h.grace != 0 {
		return baseHeaderLen + graceLen
	}
	return baseHeaderLen
}

func (h header) len() int {
	n := h.macStart()
	if h.flags&flagSigned != 0 {
		n += macLen
	}
	return n
}

// appendHeader appends the encoded header to dst.
func appendHeader(dst []byte, h header) []byte {
	dst = append(dst, entryMagic...)
	dst = append(dst, h.version(), h.flags)
	dst = binary.BigEndian.AppendUint16(dst, uint16(h.len()))
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.expiry))
	if h.grace != 0 {
		dst = binary.BigEndian.AppendUint64(dst, uint64(h.grace))
	}
	if h.flags&flagSigned != 0 {
		dst = append(dst, h.mac[:]...)
	}
	return dst
}

// parseHeader decodes a header at the start of b.
func parseHeader(b []byte) (header, error) {
	if len(b) < baseHeaderLen {
		return header{}, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", errCorrupt, len(b), baseHeaderLen)
	}
	if string(b[:4]) != entryMagic {
		return header{}, fmt.Errorf("%w: bad magic %q", errCorrupt, b[:4])
	}
	version := b[4]
	if version != entryVersion && version != signedVersion && version != graceVersion {
		return header{}, fmt.Errorf("%w: unknown format version %d", errCorrupt, version)
	}
	h := header{flags: b[5], expiry: int64(binary.BigEndian.Uint64(b[8:16]))}
	if h.flags&^knownEntryFlags != 0 {
		return header{}, fmt.Errorf("%w: unknown flags %#x", errCorrupt, h.flags)
	}
	if signed := h.flags&flagSigned != 0; version != graceVersion && signed != (version == signedVersion) {
		return header{}, fmt.Errorf("%w: format version %d with signed flag %v (signed entries are version %d or %d)", errCorrupt, version, signed, signedVersion, graceVersion)
	}
	if h.expiry < 0 {
		return header{}, fmt.Errorf("%w: negative expiry", errCorrupt)
	}
	if version == graceVersion {
		if len(b) < baseHeaderLen+graceLen {
			return header{}, fmt.Errorf("%w: %d bytes, shorter than a version %d header", errCorrupt, len(b), graceVersion)
		}
		h.grace = int64(binary.BigEndian.Uint64(b[baseHeaderLen:]))
		switch {
		case h.grace <= 0:
			return header{}, fmt.Errorf("%w: version %d entry with grace period %d (want at least 1 ns; no grace is version 1 or 2)", errCorrupt, graceVersion, h.grace)
		case h.expiry == 0:
			return header{}, fmt.Errorf("%w: grace period on an entry that never expires", errCorrupt)
		}
	}
	if n := int(binary.BigEndian.Uint16(b[6:8])); n != h.len() {
		return header{}, fmt.Errorf("%w: header length %d, want %d", errCorrupt, n, h.len())
	}
	if len(b) < h.len() {
		return header{}, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", errCorrupt, len(b), h.len())
	}
	copy(h.mac[:], b[h.macStart():h.len()])
	return h, nil
}

// isGzip reports whether b starts like a gzip stream.
func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// parseEntryHeader decodes the header of an entry in either framing from its
// first bytes (at least headerReadLen, or the whole entry if shorter).
func parseEntryHeader(b []byte) (header, error) {
	if !isGzip(b) {
		h, err := parseHeader(b)
		if err == nil && h.flags&flagGzip != 0 {
			return header{}, fmt.Errorf("%w: gzip flag on a plain entry", errCorrupt)
		}
		return h, err
	}
	if len(b) < gzipHeaderOffset+baseHeaderLen {
		return header{}, fmt.Errorf("%w: %d bytes, shorter than a gzip entry's header", errCorrupt, len(b))
	}
	// Method deflate, flags FEXTRA only, one subfield "BC" filling XLEN.
	sublen := int(binary.LittleEndian.Uint16(b[14:16]))
	if b[2] != 8 || b[3] != 0x04 || int(binary.LittleEndian.Uint16(b[10:12])) != 4+sublen ||
		b[12] != 'B' || b[13] != 'C' {
		return header{}, fmt.Errorf("%w: gzip stream without a blobcache header", errCorrupt)
	}
	h, err := parseHeader(b[gzipHeaderOffset:])
	switch {
	case err != nil:
		return header{}, err
	case h.flags&flagGzip == 0:
		return header{}, fmt.Errorf("%w: gzip entry without the gzip flag", errCorrupt)
	case sublen != h.len():
		return header{}, fmt.Errorf("%w: gzip extra field of %d bytes for a %d-byte header", errCorrupt, sublen, h.len())
	}
	return h, nil
}

// decodeEntry returns a stored entry's header and value, decompressing the
// value when needed into at most maxValue bytes, and, when keys is not nil,
// checks first that the entry is signed by one of them for this object name:
// nothing is decompressed before the MAC is verified. A plain entry's value
// aliases b.
func decodeEntry(b []byte, name string, keys *signingKeys, maxValue int64) (header, []byte, error) {
	h, err := parseEntryHeader(b)
	if err != nil {
		return h, nil, err
	}
	if err := keys.verify(name, h, b); err != nil {
		return h, nil, err
	}
	var v []byte
	if h.flags&flagGzip == 0 {
		v = b[h.len():]
		if int64(len(v)) > maxValue {
			return h, nil, fmt.Errorf("%w: value of %d bytes, larger than max_value_size %d", errCorrupt, len(v), maxValue)
		}
	} else if v, err = gunzip(b, maxValue); err != nil {
		return h, nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return h, v, nil
}

// macOffset returns where the MAC field of an entry with header h starts in
// its stored bytes.
func macOffset(h header) int {
	if h.flags&flagGzip != 0 {
		return gzipHeaderOffset + h.macStart()
	}
	return h.macStart()
}

// signingKeys sign entries with the first key and accept any of them.
type signingKeys struct {
	keys [][]byte
}

// entryMAC computes an entry's MAC with key over the object name, a zero
// byte and the stored bytes around the MAC field (before and after).
func entryMAC(key []byte, name string, before, after []byte) [macLen]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write(before)
	m.Write(after)
	var out [macLen]byte
	m.Sum(out[:0])
	return out
}

// verify checks a stored entry b, whose header is h, against the keys; nil
// keys accept everything.
func (k *signingKeys) verify(name string, h header, b []byte) error {
	if k == nil {
		return nil
	}
	if h.flags&flagSigned == 0 {
		return fmt.Errorf("%w: not signed", errForged)
	}
	off := macOffset(h)
	for _, key := range k.keys {
		want := entryMAC(key, name, b[:off], b[off+macLen:])
		if hmac.Equal(want[:], h.mac[:]) {
			return nil
		}
	}
	return fmt.Errorf("%w: no signing key verifies it", errForged)
}

// checkSigned is the header-only check: with keys set, an unsigned entry is
// forged. (The MAC itself needs the value to verify.)
func (k *signingKeys) checkSigned(h header) error {
	if k != nil && h.flags&flagSigned == 0 {
		return fmt.Errorf("%w: not signed", errForged)
	}
	return nil
}

// encodedEntry is an entry ready to write, and the reader the driver gets
// for it. A plain entry is read as the header followed by the value, straight
// from the caller's slice: the value is never copied. A gzip entry is
// compressed as it is read, a chunk at a time, so that no buffer of the
// compressed entry's size is ever allocated.
type encodedEntry struct {
	headBuf [maxHeaderLen]byte
	// head and body are what remains to be read of a plain entry; for a gzip
	// entry body is the part of the value not yet compressed.
	head, body []byte
	// written counts the bytes read from the entry so far.
	written int64

	gz       bool
	extraBuf [4 + maxHeaderLen]byte // the gzip header's FEXTRA
	zw       *gzip.Writer           // pooled; compresses into out
	out      *bytes.Buffer          // pooled; compressed bytes not yet read
	done     bool                   // the gzip stream is complete
	err      error                  // a compression error, returned by every later read
}

// gzipChunk is how much of the value is compressed at a time.
const gzipChunk = 64 << 10

// reader returns the entry's bytes as one stream. It is the entry itself: an
// io.Reader and io.WriterTo, so that io.Copy writes a plain entry without a
// buffer. A Read returns header and value together when p has room, so a
// small plain entry is one write for a driver copying with a buffer.
func (e *encodedEntry) reader() io.Reader { return e }

// contentEncoding is the object's Content-Encoding.
func (e *encodedEntry) contentEncoding() string {
	if e.gz {
		return "gzip"
	}
	return ""
}

// Read implements io.Reader.
func (e *encodedEntry) Read(p []byte) (int, error) {
	if !e.gz {
		if len(e.head) == 0 && len(e.body) == 0 {
			return 0, io.EOF
		}
		n := copy(p, e.head)
		e.head = e.head[n:]
		m := copy(p[n:], e.body)
		e.body = e.body[m:]
		e.written += int64(n + m)
		return n + m, nil
	}
	for e.out.Len() == 0 {
		if err := e.compressMore(); err != nil {
			return 0, err
		}
	}
	n, err := e.out.Read(p)
	e.written += int64(n)
	return n, err
}

// WriteTo implements io.WriterTo.
func (e *encodedEntry) WriteTo(w io.Writer) (total int64, err error) {
	defer func() { e.written += total }()
	if !e.gz {
		for _, part := range []*[]byte{&e.head, &e.body} {
			if len(*part) == 0 {
				continue
			}
			n, err := w.Write(*part)
			total += int64(n)
			*part = (*part)[n:]
			if err == nil && len(*part) > 0 {
				err = io.ErrShortWrite
			}
			if err != nil {
				return total, err
			}
		}
		return total, nil
	}
	for {
		if e.out.Len() > 0 {
			n, err := w.Write(e.out.Bytes())
			total += int64(n)
			e.out.Next(n)
			if err == nil && e.out.Len() > 0 {
				err = io.ErrShortWrite
			}
			if err != nil {
				return total, err
			}
		}
		if err := e.compressMore(); err == io.EOF {
			return total, nil
		} else if err != nil {
			return total, err
		}
	}
}

// compressMore compresses the next chunk of the value into out, or ends the
// stream. It returns io.EOF once the stream is complete.
func (e *encodedEntry) compressMore() error {
	switch {
	case e.err != nil:
		return e.err
	case e.done:
		return io.EOF
	case len(e.body) > 0:
		n := min(len(e.body), gzipChunk)
		if _, err := e.zw.Write(e.body[:n]); err != nil {
			e.err = fmt.Errorf("compress value: %w", err)
			return e.err
		}
		e.body = e.body[n:]
	default:
		e.done = true
		if err := e.zw.Close(); err != nil {
			e.err = fmt.Errorf("compress value: %w", err)
			return e.err
		}
	}
	return nil
}

// release returns pooled memory once the driver is done with the entry; the
// entry must not be used afterwards. A gzip writer is pooled again only when
// its stream was read to the end.
func (e *encodedEntry) release() {
	if e.zw != nil && e.done && e.err == nil {
		gzipWriters.Put(e.zw)
	}
	e.zw = nil
	if e.out != nil && e.out.Cap() <= maxPooledBuffer {
		e.out.Reset()
		gzipBuffers.Put(e.out)
	}
	e.out = nil
}

// encodeEntry builds the entry for value with the given expiry and grace
// period (nanoseconds; ignored when expiry is 0), to be stored under name,
// signed with the first key when keys is not nil. Compression, if any,
// happens as the entry is read.
func encodeEntry(value []byte, expiry, grace int64, compress bool, name string, keys *signingKeys) (*encodedEntry, error) {
	if grace < 0 {
		return nil, fmt.Errorf("%w: negative grace period %d", ErrInvalidArgument, grace)
	}
	e := &encodedEntry{body: value}
	h := header{expiry: expiry}
	if expiry != 0 {
		h.grace = grace
	}
	if compress {
		h.flags |= flagGzip
	}
	if keys != nil {
		h.flags |= flagSigned
	}
	if !compress {
		e.head = appendHeader(e.headBuf[:0], h) // the MAC field still zero
		if keys != nil {
			mac := entryMAC(keys.keys[0], name, e.head[:h.macStart()], value)
			copy(e.head[h.macStart():], mac[:])
		}
		return e, nil
	}
	e.gz = true
	// FEXTRA: subfield "BC", its length (little-endian), the header.
	extra := append(append(e.extraBuf[:0], 'B', 'C', byte(h.len()), 0), appendHeader(e.headBuf[:0], h)...)
	e.out = gzipBuffers.Get().(*bytes.Buffer)
	e.zw = gzipWriters.Get().(*gzip.Writer)
	e.zw.Reset(e.out)
	e.zw.Header = gzip.Header{Extra: extra, OS: 255}
	if keys != nil {
		// The MAC covers the compressed bytes, which precede it nowhere but
		// follow it: compress the whole value first, then fill it in.
		for {
			if err := e.compressMore(); err == io.EOF {
				break
			} else if err != nil {
				e.release()
				return nil, err
			}
		}
		b := e.out.Bytes()
		off := macOffset(h)
		mac := entryMAC(keys.keys[0], name, b[:off], b[off+macLen:])
		copy(b[off:], mac[:])
	}
	return e, nil
}

// maxPooledBuffer bounds the buffers kept for reuse, so one huge value does not
// pin its memory forever.
const maxPooledBuffer = 1 << 20

var (
	gzipBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	gzipWriters = sync.Pool{New: func() any {
		zw, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
		return zw
	}}
	// gzipReaders holds *gzip.Reader values, whose decompressor state (about
	// 40 KiB) would otherwise be allocated by every read of a gzip entry.
	gzipReaders sync.Pool
)

// gunzipStartRatio bounds the first buffer of a decompressed value at this
// multiple of the stored size, whatever the gzip trailer claims; it grows only
// as decompressed bytes arrive.
const gunzipStartRatio = 16

// gunzip decompresses the single gzip member b into a slice of at most
// maxValue bytes. The first buffer is the member's ISIZE trailer (the length
// modulo 2^32), trusted only up to gunzipStartRatio times len(b) and
// maxValue; it then doubles as decompressed bytes actually arrive, so a
// forged ISIZE costs nothing and a real value at most about 3 times its
// size. The stream's CRC and length are checked; anything after the member is
// an error.
func gunzip(b []byte, maxValue int64) ([]byte, error) {
	br := bytes.NewReader(b)
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(br)
	} else {
		err = zr.Reset(br)
	}
	if err != nil {
		return nil, err
	}
	defer gzipReaders.Put(zr)
	zr.Multistream(false)
	hint := int64(0)
	if len(b) >= 4 {
		hint = min(int64(binary.LittleEndian.Uint32(b[len(b)-4:])), int64(len(b))*gunzipStartRatio+4096, maxValue)
	}
	out := make([]byte, 0, hint)
	for {
		if len(out) == cap(out) {
			// Full, as expected at the end: see whether anything follows
			// before growing.
			var probe [1]byte
			n, err := io.ReadFull(zr, probe[:])
			if n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			if int64(len(out)) >= maxValue {
				return nil, fmt.Errorf("decompressed value larger than max_value_size %d", maxValue)
			}
			grown := make([]byte, len(out), min(max(2*int64(cap(out)), 64<<10), maxValue))
			copy(grown, out)
			out = append(grown, probe[0])
		}
		n, err := zr.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if err := zr.Close(); err != nil {
		return nil, err
	}
	if br.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after the gzip member", br.Len())
	}
	return out, nil
}

// readLimit is how many bytes of an object the cache reads at most for a
// value of at most maxValue bytes: the value, the largest header and gzip's
// framing, and deflate's worst-case growth of incompressible data (5 bytes
// per 16 KiB block stored).
func readLimit(maxValue int64) int64 {
	return maxValue + maxValue/1024 + 4096
}

// EntryHeaderSize is how many leading bytes of a stored entry InspectEntry
// needs (a range read of this length fetches the header of either framing).
const EntryHeaderSize = headerReadLen

// EntryInfo is what a stored entry's header says.
type EntryInfo struct {
	// Expiry is when the entry expires; the zero time means never.
	Expiry time.Time
	// Gzip is whether the value is gzip-compressed.
	Gzip bool
	// Signed is whether the entry carries a MAC (WithSigningKeys).
	Signed bool
	// Grace is how long after Expiry GetOrSet may serve the entry stale
	// while it refreshes it (WithStaleGrace); 0 means not at all.
	Grace time.Duration
}

// InspectEntry decodes the header of a stored entry from its first bytes (at
// least EntryHeaderSize of them, or the whole entry if it is shorter), for
// tools that examine a store. It checks neither the value nor the MAC.
func InspectEntry(b []byte) (EntryInfo, error) {
	h, err := parseEntryHeader(b)
	if err != nil {
		return EntryInfo{}, err
	}
	info := EntryInfo{Gzip: h.flags&flagGzip != 0, Signed: h.flags&flagSigned != 0, Grace: time.Duration(h.grace)}
	if h.expiry != 0 {
		info.Expiry = time.Unix(0, h.expiry)
	}
	return info, nil
}
