package mem

import (
	"context"
	"fmt"
	"io"
)

// buffer collects a body in memory only the store holds, and keeps the
// bytes it stores no bigger than the body.
//
// A body written in pieces each at least as large as what came before (the
// cache writes an entry's header, then its value) grows one buffer of
// exactly the size asked, which is then stored as it is: one allocation of
// the body's size, besides a small first piece. Any other body is collected
// in chunks of doubling size (at most maxChunk) and copied once into a
// buffer of its exact size at the end: under twice its size allocated in
// all, never a buffer of twice its size kept.
type buffer struct {
	ctx  context.Context
	cur  []byte   // the chunk being filled
	done [][]byte // the chunks filled before cur, in order
	n    int      // the bytes in done
}

// Chunk sizes of a buffer.
const (
	minChunk = 512     // the least room made for a body read with Read
	maxChunk = 4 << 20 // the largest chunk made for collecting many pieces
)

// room makes room in cur for more bytes, want of them if it can.
func (w *buffer) room(want int) {
	if len(w.done) == 0 && want >= len(w.cur) {
		// All so far is in cur and the next piece is at least as large:
		// one buffer of exactly the size, copying at most want bytes again.
		b := make([]byte, len(w.cur), len(w.cur)+want)
		copy(b, w.cur)
		w.cur = b
		return
	}
	if len(w.cur) > 0 {
		w.done = append(w.done, w.cur)
		w.n += len(w.cur)
	}
	w.cur = make([]byte, 0, max(want, min(w.n, maxChunk)))
}

// Write implements io.Writer, for a body that is an io.WriterTo. It stops
// the body when the context is done.
func (w *buffer) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	total := len(p)
	for len(p) > 0 {
		if len(w.cur) == cap(w.cur) {
			w.room(len(p))
		}
		k := copy(w.cur[len(w.cur):cap(w.cur)], p)
		w.cur = w.cur[:len(w.cur)+k]
		p = p[k:]
	}
	return total, nil
}

// ReadFrom implements io.ReaderFrom, for any other body. It stops when the
// context is done.
func (w *buffer) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		if err := w.ctx.Err(); err != nil {
			return total, err
		}
		if len(w.cur) == cap(w.cur) {
			w.room(minChunk)
		}
		free := w.cur[len(w.cur):cap(w.cur)]
		n, err := r.Read(free)
		if n < 0 || n > len(free) {
			return total, fmt.Errorf("body returned an invalid count %d", n)
		}
		w.cur = w.cur[:len(w.cur)+n]
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// bytes returns the body's bytes: cur itself if it is all and wastes little,
// else an exact copy.
func (w *buffer) bytes() []byte {
	if len(w.done) == 0 && cap(w.cur)-len(w.cur) <= len(w.cur)/8+64 {
		return w.cur
	}
	b := make([]byte, 0, w.n+len(w.cur))
	for _, c := range w.done {
		b = append(b, c...)
	}
	return append(b, w.cur...)
}
