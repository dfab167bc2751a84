//go:build race

package mem_test

// raceEnabled: the race detector changes allocation (sync.Pool drops items
// at random, among others), so allocation bounds are not asserted under it.
const raceEnabled = true
