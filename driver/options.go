package driver

import (
	"fmt"
	"slices"
	"strings"
)

// UnknownOptionError reports an option (a URL parameter or configuration
// name) that a driver's opener does not know. Openers return it so that the
// caller can name the option and suggest the closest known one.
type UnknownOptionError struct {
	// Name is the option as the user wrote it.
	Name string
	// Known are the option names the opener accepts, for suggestions.
	Known []string
}

// Error implements error: `unknown option "max_entires" (did you mean
// "max_entries"?)`.
func (e *UnknownOptionError) Error() string {
	msg := fmt.Sprintf("unknown option %q", e.Name)
	if s := suggest(e.Name, e.Known); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg
}

// Is reports whether target is [ErrInvalidOption]: an unknown option is an
// invalid one.
func (e *UnknownOptionError) Is(target error) bool { return target == ErrInvalidOption }

// suggest returns the name in known closest to name (compared without case),
// or "" when none is close: at most a third of the name's length in edits,
// and at least one edit allowed.
func suggest(name string, known []string) string {
	name = strings.ToLower(name)
	best, bestDist := "", max(1, len(name)/3)+1
	for _, k := range slices.Sorted(slices.Values(known)) {
		if d := editDistance(name, strings.ToLower(k)); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
