package bench

import (
	"math/bits"
	"time"
)

// histogram counts latencies in log-linear buckets: exact below 64ns, then
// 32 buckets per power of two, so a quantile is within about 2% (the
// bucket's midpoint is reported).
type histogram struct {
	counts [histBuckets]int64
	n      int64
	max    int64
}

const (
	subBits     = 5
	subBuckets  = 1 << subBits // per power of two
	exactBelow  = 2 * subBuckets
	histBuckets = (64 - subBits) * subBuckets
)

// bucket returns the index of v (nanoseconds, at least 0).
func bucket(v int64) int {
	if v < exactBelow {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - subBits - 1 // keep the top subBits+1 bits
	return (shift+1)*subBuckets + int(uint64(v)>>shift) - subBuckets
}

// bucketValue returns the midpoint of bucket i.
func bucketValue(i int) int64 {
	if i < exactBelow {
		return int64(i)
	}
	shift := i/subBuckets - 1
	top := int64(i%subBuckets + subBuckets)
	lo := top << shift
	hi := (top+1)<<shift - 1
	return lo + (hi-lo)/2
}

func (h *histogram) record(d time.Duration) {
	v := int64(d)
	h.counts[bucket(v)]++
	h.n++
	h.max = max(h.max, v)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the latency below which a fraction q of the samples fall.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n-1)) + 1 // 1-based rank of the sample
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(bucketValue(i), h.max))
		}
	}
	return time.Duration(h.max)
}

func (h *histogram) maxDuration() time.Duration { return time.Duration(h.max) }

// opStats is one operation's counters in one worker.
type opStats struct {
	n, errors, misses int64
	h                 histogram
}

func (s *opStats) stats() OpStats {
	return OpStats{
		Ops: s.n, Errors: s.errors, Misses: s.misses,
		P50: s.h.quantile(0.50), P99: s.h.quantile(0.99), P999: s.h.quantile(0.999), Max: s.h.maxDuration(),
	}
}

// workerStats are one worker's counters: no locks, merged after the run.
type workerStats struct {
	ops map[Op]*opStats
}

func newWorkerStats() *workerStats {
	ws := &workerStats{ops: make(map[Op]*opStats, len(Ops))}
	for _, op := range Ops {
		ws.ops[op] = &opStats{}
	}
	return ws
}

func (ws *workerStats) record(op Op, d time.Duration, hit bool, err error) {
	s := ws.ops[op]
	s.n++
	s.h.record(d)
	switch {
	case err != nil:
		s.errors++
	case !hit:
		s.misses++
	}
}

func (ws *workerStats) merge(o *workerStats) {
	for op, s := range o.ops {
		t := ws.ops[op]
		t.n += s.n
		t.errors += s.errors
		t.misses += s.misses
		t.h.merge(&s.h)
	}
}
