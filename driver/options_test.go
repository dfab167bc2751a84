package driver_test

import (
	"testing"

	"github.com/blobcache/blobcache/driver"
)

func TestSuggest(t *testing.T) {
	known := []string{"max_entries", "cull_frequency", "location", "timeout", "secret_key", "access_key"}
	for name, want := range map[string]string{
		"max_entires":   "max_entries",
		"MAX_ENTRIES":   "max_entries",
		"cull_frequncy": "cull_frequency",
		"locaton":       "location",
		"timeot":        "timeout",
		"acess_key":     "access_key",
		"zzz":           "",
		"banana":        "",
		"":              "",
	} {
		if got := driver.Suggest(name, known); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestUnknownOptionErrorMessage(t *testing.T) {
	e := &driver.UnknownOptionError{Name: "max_entires", Known: []string{"max_entries", "location"}}
	if got, want := e.Error(), `unknown option "max_entires" (did you mean "max_entries"?)`; got != want {
		t.Errorf("Error() = %s, want %s", got, want)
	}
	e = &driver.UnknownOptionError{Name: "colour"}
	if got, want := e.Error(), `unknown option "colour"`; got != want {
		t.Errorf("Error() = %s, want %s", got, want)
	}
}
