package driver

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func openNothing(context.Context, *url.URL) (Driver, error) { return nil, nil }

func fromNothing(*ConfigOption, []ConfigOption) (*url.URL, []ConfigOption, error) {
	return &url.URL{}, nil, nil
}

// mustPanic runs f and returns the panic's message, failing the test when f
// does not panic.
func mustPanic(t *testing.T, f func()) (msg string) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("no panic")
		}
		msg, _ = r.(string)
	}()
	f()
	return ""
}

func TestRegisterRefusesBadSchemes(t *testing.T) {
	Register(Scheme{Name: "regtest-a", Open: openNothing, Backends: []string{"RegTestA", ".regtestcache"}, FromConfig: fromNothing})
	for name, tc := range map[string]struct {
		s    Scheme
		want string
	}{
		"twice":       {Scheme{Name: "regtest-a", Open: openNothing}, `"regtest-a" registered twice`},
		"empty name":  {Scheme{Open: openNothing}, "empty scheme name"},
		"upper case":  {Scheme{Name: "RegTest", Open: openNothing}, "lower-case"},
		"digit first": {Scheme{Name: "3s", Open: openNothing}, "lower-case"},
		"colon":       {Scheme{Name: "a:b", Open: openNothing}, "lower-case"},
		"no open":     {Scheme{Name: "regtest-noopen"}, "has no Open"},
		"backend":     {Scheme{Name: "regtest-b", Open: openNothing, Backends: []string{"regtesta"}, FromConfig: fromNothing}, `backend "regtesta" of scheme "regtest-b" is already scheme "regtest-a"'s`},
	} {
		t.Run(name, func(t *testing.T) {
			if msg := mustPanic(t, func() { Register(tc.s) }); !strings.Contains(msg, tc.want) {
				t.Errorf("panic %q, want it to say %q", msg, tc.want)
			}
		})
	}
	if _, ok := Lookup("regtest-b"); ok {
		t.Error("a scheme whose registration panicked is registered")
	}
	// Backends without FromConfig claim nothing.
	Register(Scheme{Name: "regtest-c", Open: openNothing, Backends: []string{"regtesta"}})
}

func TestLookup(t *testing.T) {
	Register(Scheme{Name: "regtest-lookup", Open: openNothing, Secrets: []string{"Token"}})
	s, ok := Lookup("RegTest-Lookup")
	if !ok || s.Name != "regtest-lookup" {
		t.Fatalf("Lookup(RegTest-Lookup) = %+v, %v", s, ok)
	}
	if !slices.Equal(s.Secrets, []string{"token"}) {
		t.Errorf("Secrets = %q, want them in lower case", s.Secrets)
	}
	if _, ok := Lookup("regtest-none"); ok {
		t.Error("Lookup of an unregistered scheme succeeded")
	}
	names := Schemes()
	if !slices.IsSorted(names) || !slices.Contains(names, "regtest-lookup") {
		t.Errorf("Schemes() = %q, want it sorted and holding regtest-lookup", names)
	}
}

func TestLookupBackend(t *testing.T) {
	Register(Scheme{Name: "regtest-exact", Open: openNothing, Backends: []string{"x.special.filecache"}, FromConfig: fromNothing})
	Register(Scheme{Name: "regtest-suffix", Open: openNothing, Backends: []string{".filecache"}, FromConfig: fromNothing})
	Register(Scheme{Name: "regtest-longsuffix", Open: openNothing, Backends: []string{".special.filecache"}, FromConfig: fromNothing})
	Register(Scheme{Name: "regtest-prefix", Open: openNothing, Backends: []string{"regcache."}, FromConfig: fromNothing})
	Register(Scheme{Name: "regtest-noconfig", Open: openNothing, Backends: []string{"noconfig"}})
	for backend, want := range map[string]string{
		"X.Special.FileCache":        "regtest-exact",      // exact, any case
		"y.special.filecache":        "regtest-longsuffix", // the longest pattern
		"django.backends.FileCache":  "regtest-suffix",
		"RegCache.AmazonS3Cache":     "regtest-prefix",
		"regcache.":                  "regtest-prefix", // a pattern is also a value as is
		"filecache":                  "",               // ".filecache" needs the dot
		"noconfig":                   "",               // no FromConfig
		"something.else.entirely":    "",
		"django.backends.filecachex": "",
	} {
		s, ok := LookupBackend(backend)
		if got := s.Name; got != want || ok != (want != "") {
			t.Errorf("LookupBackend(%q) = %q, %v; want %q", backend, got, ok, want)
		}
	}
}
