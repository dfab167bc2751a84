package bench

import (
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/blobcache/blobcache/cache"
)

// Op is an operation of a workload.
type Op string

// The operations a Mix can name.
const (
	// OpGet is a cache Get; raw: a Read.
	OpGet Op = "get"
	// OpSet is a cache Set; raw: a Write.
	OpSet Op = "set"
	// OpAdd is a cache Add; raw: an IfAbsent Write.
	OpAdd Op = "add"
	// OpHas is a cache Has; raw: a range Read of the header.
	OpHas Op = "has"
	// OpDelete is a cache Delete; raw: a Delete.
	OpDelete Op = "delete"
	// OpIncr is a cache Incr of a counter key; raw: a Read, then a Replace
	// (a Write without a Replacer).
	OpIncr Op = "incr"
)

// Ops are the operations in the order reports list them.
var Ops = []Op{OpGet, OpSet, OpAdd, OpHas, OpDelete, OpIncr}

// Mix is the share of each operation in a workload.
type Mix struct {
	ops     []Op
	weights []int
	total   int
}

// MaxWeight is the largest weight of one operation in a Mix. With at most
// len(Ops) operations the sum stays far from overflowing.
const MaxWeight = 1_000_000

// ParseMix parses a mix such as "get=90,set=10": comma-separated
// operation=weight pairs, weights integers from 0 to MaxWeight with a
// positive sum, each operation at most once (a weight of 0 included). Shares
// are weight/sum.
func ParseMix(s string) (Mix, error) {
	var m Mix
	var seen []Op
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		if !ok {
			return Mix{}, fmt.Errorf("loadgen: mix %q: %q is not op=weight", s, part)
		}
		op := Op(strings.ToLower(strings.TrimSpace(name)))
		if !slices.Contains(Ops, op) {
			return Mix{}, fmt.Errorf("loadgen: mix %q: unknown operation %q (want one of %v)", s, name, Ops)
		}
		if slices.Contains(seen, op) {
			return Mix{}, fmt.Errorf("loadgen: mix %q: %s given twice", s, op)
		}
		seen = append(seen, op)
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 0 || n > MaxWeight {
			return Mix{}, fmt.Errorf("loadgen: mix %q: weight of %s is %q, want an integer from 0 to %d", s, op, w, MaxWeight)
		}
		if n == 0 {
			continue
		}
		m.ops = append(m.ops, op)
		m.weights = append(m.weights, n)
		m.total += n
	}
	if m.total == 0 {
		return Mix{}, fmt.Errorf("loadgen: mix %q has no operation with a positive weight", s)
	}
	return m, nil
}

// String returns the mix as ParseMix reads it.
func (m Mix) String() string {
	parts := make([]string, len(m.ops))
	for i, op := range m.ops {
		parts[i] = fmt.Sprintf("%s=%d", op, m.weights[i])
	}
	return strings.Join(parts, ",")
}

// pick returns the operation for a uniform random r in [0, total).
func (m Mix) pick(r int) Op {
	for i, w := range m.weights {
		if r < w {
			return m.ops[i]
		}
		r -= w
	}
	return m.ops[len(m.ops)-1]
}

// DefaultMix is the workload when Workload.Mix is empty: 90% gets, 10% sets.
var DefaultMix = Mix{ops: []Op{OpGet, OpSet}, weights: []int{90, 10}, total: 100}

// Workload is what a load generator run does: how many workers, for how
// long, on which keys, with which mix of operations. The zero value of each
// field means its default.
type Workload struct {
	// Workers is the number of concurrent workers; default 16.
	Workers int
	// Duration is how long the measured run lasts; default 10s, or no limit
	// when Ops is set.
	Duration time.Duration
	// Ops stops the run after this many operations in all (0: no limit).
	Ops int64
	// Keyspace is the number of distinct keys, chosen uniformly; default
	// 1000 for Compare, the target's for RunLoad (which refuses a larger one).
	Keyspace int
	// ValueSize is the size of every value written, random bytes; default
	// 1024.
	ValueSize int
	// Mix is the share of each operation; default DefaultMix.
	Mix Mix
	// TTL is the expiry of the cache's writes; default cache.NoExpiry.
	TTL time.Duration
	// NoPrefill skips writing every key once before the run.
	NoPrefill bool
	// MaxErrors is how many failed operations the run tolerates (counting
	// them) before it stops with the first error; default 0: it stops at the
	// first.
	MaxErrors int64
	// Seed makes the key and operation choices reproducible; 0 picks one.
	Seed uint64
	// CleanupTimeout bounds Compare's deletion of what the runs wrote, which
	// runs with a context of its own (ctx's values without its cancellation)
	// so that a cancelled or failed run still cleans up; default
	// DefaultCleanupTimeout.
	CleanupTimeout time.Duration
}

// DefaultCleanupTimeout is Workload.CleanupTimeout's default.
const DefaultCleanupTimeout = 2 * time.Minute

// ErrCleanup marks Compare's errors from deleting what the runs wrote: with
// errors.Is(err, ErrCleanup), objects of the runs may be left in the store.
var ErrCleanup = errors.New("loadgen: cleanup failed")

func (c Workload) withDefaults() Workload {
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.Duration <= 0 && c.Ops <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Keyspace <= 0 {
		c.Keyspace = 1000
	}
	if c.ValueSize <= 0 {
		c.ValueSize = 1024
	}
	if c.Mix.total == 0 {
		c.Mix = DefaultMix
	}
	if c.TTL == 0 {
		c.TTL = cache.NoExpiry
	}
	if c.Seed == 0 {
		c.Seed = mrand.Uint64()
	}
	if c.CleanupTimeout <= 0 {
		c.CleanupTimeout = DefaultCleanupTimeout
	}
	return c
}
