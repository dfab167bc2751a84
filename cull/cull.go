// Package cull holds culling policies: which entries a full cache removes.
//
// A policy is a pure function of a listing: it sees the entries under the
// cache's location (names, sizes, modification times) and returns the names
// to delete. It knows nothing of drivers or of the cache's entry format, so
// the same policy gives the same answer on every store.
package cull

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Entry is one stored cache entry as a listing shows it.
type Entry struct {
	// Name is the object's full name.
	Name string
	// Size is the object's size in bytes.
	Size int64
	// ModTime is when the object was last written.
	ModTime time.Time
}

// Policy chooses the entries a full cache removes.
type Policy interface {
	// Cull returns the names to delete from entries, the complete listing of
	// a cache location that has reached its entry limit, or of one shard of
	// it (the entries whose names share the location and their first hex
	// digits) in a cache that culls by shards (cache.WithCullShards). It
	// must not modify entries and must return the same answer for the same
	// listing in any order. A cache calls it from several goroutines at
	// once (a pass culls 8 shards at a time): it must be safe for that.
	Cull(entries []Entry) []string
}

// Count reports how many of n entries django-s3-cache's rule removes for the given
// cull frequency: every frequency-th entry, which is ceil(n/frequency), or all
// n when frequency is 0.
func Count(n, frequency int) int {
	if frequency <= 0 {
		return n
	}
	return (n + frequency - 1) / frequency
}

// Frequency is django-s3-cache's policy: sort the names and remove
// every entry whose index i satisfies i % N == 0, so about 1/N of the entries
// go; N = 0 removes every entry. It is the default.
type Frequency int

// Cull implements Policy.
func (f Frequency) Cull(entries []Entry) []string {
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name
	}
	slices.Sort(names)
	if f <= 0 {
		return names
	}
	out := make([]string, 0, Count(len(names), int(f)))
	for i := 0; i < len(names); i += int(f) {
		out = append(out, names[i])
	}
	return out
}

// String describes the policy.
func (f Frequency) String() string { return fmt.Sprintf("frequency(%d)", int(f)) }

// Oldest removes as many entries as Frequency(N) would (ceil(n/N), or all when
// N = 0), choosing those with the oldest modification time first, ties broken
// by name. It approximates least-recently-written eviction; object stores do
// not record reads, so it is not least-recently-used.
type Oldest int

// Cull implements Policy.
func (o Oldest) Cull(entries []Entry) []string {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b Entry) int {
		if c := a.ModTime.Compare(b.ModTime); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	n := Count(len(sorted), int(o))
	out := make([]string, n)
	for i := range n {
		out[i] = sorted[i].Name
	}
	return out
}

// String describes the policy.
func (o Oldest) String() string { return fmt.Sprintf("oldest(%d)", int(o)) }
