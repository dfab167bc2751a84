package query

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func secret(name string) bool { return strings.EqualFold(name, "secret") }

func TestParse(t *testing.T) {
	got, err := Parse("a=1&&B=x%2By+z&secret=s&c=%3B&", "URL parameter", secret)
	if err != nil {
		t.Fatal(err)
	}
	want := []Param{{Name: "a", Value: "1"}, {Name: "B", Value: "x+y z"}, {Name: "secret", Value: "s"}, {Name: "c", Value: ";", After: "secret"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

// Every pair url.ParseQuery would drop or make up is refused, with a
// message that names the pair but never shows a value or the name after a
// secret.
func TestParseRefuses(t *testing.T) {
	for raw, want := range map[string]string{
		"location=a;x=1":          `URL parameter "location" is malformed: ';'`,
		"location=%zz":            `URL parameter "location" is malformed: bad %-escape in the value`,
		"loc%zz=a":                `URL parameter "loc%zz" is malformed: bad %-escape in the name`,
		"=a":                      `a URL parameter has no name`,
		"location":                `URL parameter "location": no value`,
		"location=":               `URL parameter "location": empty value`,
		"secret=S3CR3T&T41L=x;":   `the URL parameter after secret is malformed`,
		"secret=S3CR3T&T41L%zz=x": `the URL parameter after secret is malformed: bad %-escape in the name`,
	} {
		_, err := Parse(raw, "URL parameter", secret)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", raw, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), "S3CR3T") || strings.Contains(err.Error(), "T41L")) {
			t.Errorf("Parse(%q) shows a secret or the name after it: %v", raw, err)
		}
	}
}
