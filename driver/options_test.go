package driver

import "testing"

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
		if got := suggest(name, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestUnknownOptionErrorMessage(t *testing.T) {
	e := &UnknownOptionError{Name: "max_entires", Known: []string{"max_entries", "location"}}
	if got, want := e.Error(), `unknown option "max_entires" (did you mean "max_entries"?)`; got != want {
		t.Errorf("Error() = %s, want %s", got, want)
	}
	e = &UnknownOptionError{Name: "colour"}
	if got, want := e.Error(), `unknown option "colour"`; got != want {
		t.Errorf("Error() = %s, want %s", got, want)
	}
}
