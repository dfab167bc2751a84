// Package query parses URL queries strictly, for the cache and the drivers
// that take URL parameters: every pair is returned as given or the query is
// refused, never silently shortened as url.ParseQuery shortens it.
package query

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Param is one name=value pair of a query, decoded, in the order given.
type Param struct {
	Name, Value string
	// After is the lower-case name of the secret parameter right before this
	// pair, or "". Such a pair's name is never shown: it may be the secret's
	// tail, cut off by an unescaped '&'.
	After string
}

// Describe names p for an error, as label (such as "URL parameter") and its
// name, or, right after a secret, by its place.
func (p Param) Describe(label string) string {
	if p.After != "" {
		return "the " + label + " after " + p.After
	}
	return label + " " + strconv.Quote(p.Name)
}

// Parse splits a raw query into its pairs, in order, refusing every pair
// url.ParseQuery would drop or make up: a ';' (Go's parser drops the pair),
// a bad %-escape (dropped too), an empty name, a name without "=" and a
// value, and an empty value. Empty segments ("a=1&&b=2") hold nothing and are
// skipped. label names a pair in errors ("URL parameter"); isSecret says
// which names carry secrets, whose values, and the name of the pair right
// after them, no message shows. No message shows any value. The error has no
// kind of its own: callers wrap it in theirs.
func Parse(raw, label string, isSecret func(name string) bool) ([]Param, error) {
	var out []Param
	after := ""
	for seg := range strings.SplitSeq(raw, "&") {
		if seg == "" {
			continue
		}
		rawName, rawValue, hasValue := strings.Cut(seg, "=")
		name, nerr := url.QueryUnescape(rawName)
		p := Param{Name: name, After: after}
		if nerr != nil {
			p.Name = rawName
		}
		hint := ""
		if after != "" {
			hint = " (if the " + after + " value holds '&', write it as %26)"
		}
		switch {
		case strings.Contains(seg, ";"):
			return nil, fmt.Errorf("%s is malformed: ';' does not separate parameters: use '&', and write ';' in a value as %%3B%s", p.Describe(label), hint)
		case nerr != nil:
			return nil, fmt.Errorf("%s is malformed: bad %%-escape in the name (write '%%' as %%25)%s", p.Describe(label), hint)
		case name == "":
			return nil, fmt.Errorf("a %s has no name (\"=...\")%s", label, hint)
		case !hasValue:
			return nil, fmt.Errorf("%s: no value (write name=value)%s", p.Describe(label), hint)
		}
		value, verr := url.QueryUnescape(rawValue)
		switch {
		case verr != nil:
			return nil, fmt.Errorf("%s is malformed: bad %%-escape in the value (write '%%' as %%25)", p.Describe(label))
		case value == "":
			return nil, fmt.Errorf("%s: empty value (leave the parameter out for its default)", p.Describe(label))
		}
		p.Value = value
		out = append(out, p)
		after = ""
		if isSecret(name) {
			after = strings.ToLower(name)
		}
	}
	return out, nil
}
