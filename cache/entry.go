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

// The stored form of an entry (all integers big-endian):
//
//	offset size field
//	0      4    magic "BCE1"
//	4      1    format version, 1
//	5      1    flags: bit 0 = value is gzip-compressed; other bits must be 0
//	6      2    header length in bytes, 16 for version 1
//	8      8    expiry, Unix time in nanoseconds; 0 = never expires
//	16     ...  value (gzip stream when flag bit 0 is set)
//
// A reader refuses an entry whose magic, version, flags or header length it
// does not know; such an entry is treated as a miss and deleted.
const (
	entryMagic      = "BCE1"
	entryVersion    = 1
	entryHeaderLen  = 16
	flagGzip        = 1 << 0
	knownEntryFlags = flagGzip
)

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

// parseHeader decodes the header at the start of b.
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

// decodeEntry splits a stored entry into header and value, decompressing the
// value when needed. An uncompressed value aliases b.
func decodeEntry(b []byte) (header, []byte, error) {
	h, err := parseHeader(b)
	if err != nil {
		return h, nil, err
	}
	body := b[entryHeaderLen:]
	if h.flags&flagGzip == 0 {
		return h, body, nil
	}
	v, err := gunzip(body)
	if err != nil {
		return h, nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return h, v, nil
}

// encodedEntry is an entry ready to write: header and body are written one
// after the other, so an uncompressed value is never copied.
type encodedEntry struct {
	head [entryHeaderLen]byte
	body []byte
	// buf holds the compressed body, returned to the pool by release.
	buf *bytes.Buffer
}

// reader returns the entry's bytes as one stream.
func (e *encodedEntry) reader() io.Reader {
	return io.MultiReader(bytes.NewReader(e.head[:]), bytes.NewReader(e.body))
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
	if compress {
		h.flags |= flagGzip
		e.buf = gzipBuffers.Get().(*bytes.Buffer)
		zw := gzipWriters.Get().(*gzip.Writer)
		zw.Reset(e.buf)
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
	}
	appendHeader(e.head[:0], h)
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
	zr, err := gzip.NewReader(bytes.NewReader(b))
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
	return out.Bytes(), nil
}
