package cull_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/blobcache/blobcache/cull"
)

func entries(names ...string) []cull.Entry {
	out := make([]cull.Entry, len(names))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, n := range names {
		out[i] = cull.Entry{Name: n, Size: int64(i), ModTime: base.Add(time.Duration(i) * time.Second)}
	}
	return out
}

func TestFrequencyPicksEveryNthSortedName(t *testing.T) {
	in := entries("e", "a", "d", "c", "b", "g", "f")
	tests := []struct {
		f    cull.Frequency
		want []string
	}{
		{1, []string{"a", "b", "c", "d", "e", "f", "g"}},
		{2, []string{"a", "c", "e", "g"}},
		{3, []string{"a", "d", "g"}},
		{7, []string{"a"}},
		{100, []string{"a"}},
		{0, []string{"a", "b", "c", "d", "e", "f", "g"}},
	}
	for _, tt := range tests {
		got := tt.f.Cull(in)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%v.Cull: (-want +got)\n%s", tt.f, diff)
		}
		if len(got) != cull.Count(len(in), int(tt.f)) {
			t.Errorf("%v removed %d, Count says %d", tt.f, len(got), cull.Count(len(in), int(tt.f)))
		}
	}
	if got := cull.Frequency(3).Cull(nil); len(got) != 0 {
		t.Errorf("empty listing: got %v", got)
	}
}

func TestPoliciesDoNotDependOnInputOrderOrModifyIt(t *testing.T) {
	in := entries("k3", "k1", "k9", "k2", "k8", "k5", "k4", "k7", "k6", "k0")
	orig := slices.Clone(in)
	for _, p := range []cull.Policy{cull.Frequency(3), cull.Oldest(3), cull.Frequency(0), cull.Oldest(0)} {
		want := p.Cull(in)
		if diff := cmp.Diff(orig, in); diff != "" {
			t.Fatalf("%v modified its input: %s", p, diff)
		}
		for range 20 {
			shuffled := slices.Clone(in)
			rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			if diff := cmp.Diff(want, p.Cull(shuffled)); diff != "" {
				t.Fatalf("%v depends on input order: %s", p, diff)
			}
		}
	}
}

func TestOldestRemovesOldestFirstTiesByName(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in := []cull.Entry{
		{Name: "new", ModTime: t0.Add(3 * time.Hour)},
		{Name: "b-old", ModTime: t0},
		{Name: "a-old", ModTime: t0},
		{Name: "mid", ModTime: t0.Add(time.Hour)},
		{Name: "mid2", ModTime: t0.Add(2 * time.Hour)},
	}
	if diff := cmp.Diff([]string{"a-old", "b-old"}, cull.Oldest(3).Cull(in)); diff != "" {
		t.Errorf("Oldest(3): (-want +got)\n%s", diff)
	}
	if got := cull.Oldest(0).Cull(in); len(got) != len(in) {
		t.Errorf("Oldest(0) removed %d of %d", len(got), len(in))
	}
}

// django-s3-cache's documented behaviour, replayed: 49 sets into a cache limited to
// 30 entries leave 29 with cull frequency 3 and 19 with frequency 0.
func TestSeedArithmetic(t *testing.T) {
	for _, tt := range []struct{ freq, want int }{{3, 29}, {0, 19}, {2, 19}, {1, 19}} {
		var live []cull.Entry
		for i := range 49 {
			if len(live) >= 30 {
				gone := cull.Frequency(tt.freq).Cull(live)
				live = slices.DeleteFunc(live, func(e cull.Entry) bool { return slices.Contains(gone, e.Name) })
			}
			live = append(live, cull.Entry{Name: fmt.Sprintf("%03d", i)})
		}
		if len(live) != tt.want {
			t.Errorf("frequency %d: %d entries remain, want %d", tt.freq, len(live), tt.want)
		}
	}
}

func TestCountNoCap(t *testing.T) {
	if got := cull.Count(100_000, 3); got != 33_334 {
		t.Errorf("Count(100000, 3) = %d, want 33334", got)
	}
	big := make([]cull.Entry, 100_000)
	for i := range big {
		big[i].Name = fmt.Sprintf("%06d", i)
	}
	if got := len(cull.Frequency(3).Cull(big)); got != 33_334 {
		t.Errorf("Frequency(3) over 100000 removed %d", got)
	}
}

func ExampleFrequency() {
	listing := []cull.Entry{{Name: "c"}, {Name: "a"}, {Name: "d"}, {Name: "b"}, {Name: "e"}}
	fmt.Println(cull.Frequency(3).Cull(listing))
	fmt.Println(cull.Frequency(0).Cull(listing))
	// Output:
	// [a d]
	// [a b c d e]
}
