package cache

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// The stored form of an entry (integers big-endian) is a 16-byte header:
//
//	offset size field
//	0      4    magic "BCE1"
//	4      1    format version, 1
//	5      1    flags: bit 0 = value is gzip-compressed; other bits must be 0
//	6      2    header length in bytes, 16 for version 1
//	8      8    expiry, Unix time in nanoseconds; 0 = never expires
//
// framed in one of two ways:
//
//   - plain (flag bit 0 clear): the header, then the value.
//   - gzip (flag bit 0 set): one gzip member (RFC 1952) whose header has only
//     the FEXTRA flag, with one extra subfield "BC" of length 16 holding the
//     header, then the deflated value. The object is a valid gzip file of the
//     value, stored with Content-Encoding: gzip; the blobcache header sits at
//     bytes 16 to 32.
//
// A reader refuses an entry whose magic, version, flags, header length or
// framing it does not know; such an entry is a miss and is deleted.
const (
	entryMagic      = "BCE1"
	entryVersion    = 1
	entryHeaderLen  = 16
	flagGzip        = 1 << 0
	knownEntryFlags = flagGzip

	// gzipHeaderOffset is where the header sits in a gzip-framed entry:
	// after gzip's 10 fixed bytes, XLEN (2) and the subfield's ID and
	// length (4).
	gzipHeaderOffset = 16
	// headerReadLen is how many bytes a header-only read fetches: enough for
	// either framing.
	headerReadLen = gzipHeaderOffset + entryHeaderLen
)

// gzipExtra is the FEXTRA field of a gzip-framed entry without the header:
// subfield ID "BC" and length 16 (little-endian, as RFC 1952 has it).
var gzipExtra = [4]byte{'B', 'C', entryHeaderLen, 0}

// errCorrupt is wrapped by every entry decoding error.
var errCorrupt = errors.New("corrupt cache entry")

// header is the decoded fixed part of an entry.
type header struct {
	flags  byte
	expiry int64 // Unix nanoseconds; 0 = never
}

func (h header) expired(now time.Time) bool {
	return h.expiry != 0 && now.UnixNano() >= h.expiry
}

// appendHeader appends the encoded header to dst.
func appendHeader(dst []byte, h header) []byte {
	dst = append(dst, entryMagic...)
	dst = append(dst, entryVersion, h.flags)
	dst = binary.BigEndian.AppendUint16(dst, entryHeaderLen)
	return binary.BigEndian.AppendUint64(dst, uint64(h.expiry))
}

// parseHeader decodes a plain 16-byte header at the start of b.
func parseHeader(b []byte) (header, error) {
	if len(b) < entryHeaderLen {
		return header{}, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", errCorrupt, len(b), entryHeaderLen)
	}
	if string(b[:4]) != entryMagic {
		return header{}, fmt.Errorf("%w: bad magic %q", errCorrupt, b[:4])
	}
	if b[4] != entryVersion {
		return header{}, fmt.Errorf("%w: unknown format version %d", errCorrupt, b[4])
	}
	h := header{flags: b[5], expiry: int64(binary.BigEndian.Uint64(b[8:16]))}
	if h.flags&^knownEntryFlags != 0 {
		return header{}, fmt.Errorf("%w: unknown flags %#x", errCorrupt, h.flags)
	}
	if n := binary.BigEndian.Uint16(b[6:8]); n != entryHeaderLen {
		return header{}, fmt.Errorf("%w: header length %d, want %d", errCorrupt, n, entryHeaderLen)
	}
	if h.expiry < 0 {
		return header{}, fmt.Errorf("%w: negative expiry", errCorrupt)
	}
	return h, nil
}

// isGzip reports whether b starts like a gzip stream.
func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// parseEntryHeader decodes the header of an entry in either framing from its
// first bytes (at least headerReadLen for a gzip-framed entry).
func parseEntryHeader(b []byte) (header, error) {
	if !isGzip(b) {
		h, err := parseHeader(b)
		if err == nil && h.flags&flagGzip != 0 {
			return header{}, fmt.Errorf("%w: gzip flag on a plain entry", errCorrupt)
		}
		return h, err
	}
	if len(b) < headerReadLen {
		return header{}, fmt.Errorf("%w: %d bytes, shorter than a gzip entry's header", errCorrupt, len(b))
	}
	// Method deflate, flags FEXTRA only, XLEN 20, one subfield "BC" of 16.
	if b[2] != 8 || b[3] != 0x04 || binary.LittleEndian.Uint16(b[10:12]) != 4+entryHeaderLen ||
		[4]byte(b[12:16]) != gzipExtra {
		return header{}, fmt.Errorf("%w: gzip stream without a blobcache header", errCorrupt)
	}
	h, err := parseHeader(b[gzipHeaderOffset:])
	if err == nil && h.flags&flagGzip == 0 {
		return header{}, fmt.Errorf("%w: gzip entry without the gzip flag", errCorrupt)
	}
	return h, err
}

// decodeEntry returns a stored entry's header and value, decompressing the
// value when needed. A plain entry's value aliases b.
func decodeEntry(b []byte) (header, []byte, error) {
	h, err := parseEntryHeader(b)
	if err != nil {
		return h, nil, err
	}
	if h.flags&flagGzip == 0 {
		return h, b[entryHeaderLen:], nil
	}
	v, err := gunzip(b)
	if err != nil {
		return h, nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return h, v, nil
}

// encodedEntry is an entry ready to write: head and body are written one
// after the other, so a plain value is never copied.
type encodedEntry struct {
	headBuf [entryHeaderLen]byte
	head    []byte // headBuf for a plain entry; empty for a gzip one
	body    []byte
	// buf holds the gzip member, returned to the pool by release.
	buf *bytes.Buffer
}

// reader returns the entry's bytes as one stream.
func (e *encodedEntry) reader() io.Reader {
	if len(e.head) == 0 {
		return bytes.NewReader(e.body)
	}
	return io.MultiReader(bytes.NewReader(e.head), bytes.NewReader(e.body))
}

// size is the entry's length in bytes.
func (e *encodedEntry) size() int { return len(e.head) + len(e.body) }

// contentEncoding is the object's Content-Encoding.
func (e *encodedEntry) contentEncoding() string {
	if e.buf != nil {
		return "gzip"
	}
	return ""
}

// release returns pooled memory; the entry must not be used afterwards.
func (e *encodedEntry) release() {
	if e.buf != nil && e.buf.Cap() <= maxPooledBuffer {
		e.buf.Reset()
		gzipBuffers.Put(e.buf)
	}
	e.buf = nil
}

// encodeEntry builds an entry for value with the given expiry.
func encodeEntry(value []byte, expiry int64, compress bool) (*encodedEntry, error) {
	e := &encodedEntry{body: value}
	h := header{expiry: expiry}
	if !compress {
		e.head = appendHeader(e.headBuf[:0], h)
		return e, nil
	}
	h.flags |= flagGzip
	extra := append(gzipExtra[:], appendHeader(e.headBuf[:0], h)...)
	e.buf = gzipBuffers.Get().(*bytes.Buffer)
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(e.buf)
	zw.Header = gzip.Header{Extra: extra, OS: 255}
	_, err := zw.Write(value)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	gzipWriters.Put(zw)
	if err != nil {
		e.release()
		return nil, fmt.Errorf("compress value: %w", err)
	}
	e.body = e.buf.Bytes()
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
)

// maxDecompressedSize bounds a decompressed value, so a small hostile entry
// cannot expand into unbounded memory (a "zip bomb").
const maxDecompressedSize = 1 << 34

func gunzip(b []byte) ([]byte, error) {
	br := bytes.NewReader(b)
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	var out bytes.Buffer
	// Compressed values usually shrink 2-10x; start near the likely size.
	out.Grow(min(len(b)*4, 64<<20))
	n, err := io.Copy(&out, io.LimitReader(zr, maxDecompressedSize+1))
	if err != nil {
		return nil, err
	}
	if n > maxDecompressedSize {
		return nil, errors.New("decompressed value too large")
	}
	if err := zr.Close(); err != nil {
		return nil, err
	}
	if br.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after the gzip member", br.Len())
	}
	return out.Bytes(), nil
}
