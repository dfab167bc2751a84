//go:build !race

package mem_test

// raceEnabled: see race_on_test.go.
const raceEnabled = false
