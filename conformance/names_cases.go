package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/google/go-cmp/cmp"

	"github.com/blobcache/blobcache/driver"
)

// escapeBait are names that store layers are known to escape, unescape or
// otherwise rewrite: the Go CDK's "__0x<hex>__" escapes and its escaping of
// "../" (s3blob), percent and plus signs (URL and form encodings), the file
// driver's own "~" and "~+" directory suffixes, and characters that
// normalise or fold. Each is valid for driver.ValidateName.
var escapeBait = []string{
	"a../b", "a..", "x../y/z", "a..b/c", "..a/b", "a.../b",
	"x__0x2f__y", "__0x41__", "__0x2F__", "_0x41_", "a__0x__b", "__0xzz__",
	"a%2Fb", "%zz", "a%", "a+b", "a b+c%20d",
	"a~/b", "a~+/b", "a~", "a~+", "%7E/x", "A", "a",
	"\u00a0", "\u2028x", "\ufeffbom", "\u212b", "\u00c5",
}

// testNamesStoredAsGiven checks the contract clause "Data written under a
// name is returned unchanged by Read" together with "List returns ... the
// objects whose names start with opts.Prefix": a driver stores exactly the
// name it is given and lists exactly that name, or refuses it with
// ErrInvalidName (and, if it implements driver.NameValidator, its
// ValidateName refuses exactly the names its Write refuses).
func testNamesStoredAsGiven(e *env) {
	const clause = "driver contract: names are stored and listed exactly as given, or refused with ErrInvalidName"
	d := e.driver()
	validator, _ := d.(driver.NameValidator)
	var kept []string
	for _, n := range e.withoutFolderObjects(escapeBait) {
		name := e.name(n)
		if err := driver.ValidateName(name); err != nil {
			e.t.Fatalf("suite bug: %v", err)
		}
		werr := d.Write(e.ctx, name, bytes.NewReader(content(name)), &driver.WriteOptions{})
		if validator != nil {
			verr := validator.ValidateName(name)
			if (verr == nil) != (werr == nil) || (verr != nil && !errors.Is(verr, driver.ErrInvalidName)) {
				e.t.Errorf("%s: ValidateName(%q) = %v but Write = %v: they must agree, with ErrInvalidName", clause, name, verr, werr)
			}
		}
		if werr != nil {
			if !errors.Is(werr, driver.ErrInvalidName) {
				e.t.Errorf("%s: Write(%q) = %v, want nil or ErrInvalidName", clause, name, werr)
			}
			// A refused name is refused everywhere and stores nothing.
			if _, _, err := d.Read(e.ctx, name, 0, -1); !errors.Is(err, driver.ErrInvalidName) && !errors.Is(err, driver.ErrNotFound) {
				e.t.Errorf("%s: Read(%q) of a refused name = %v, want ErrInvalidName or ErrNotFound", clause, name, err)
			}
			continue
		}
		kept = append(kept, name)
	}
	for _, name := range kept {
		e.wantContent(d, name, content(name))
		objs, _ := e.listAll(d, name, 2)
		if len(objs) == 0 || objs[0].Name != name {
			e.t.Errorf("%s: List(prefix %q) does not start with the object itself: %v", clause, name, attrNames(objs))
		}
	}
	slices.Sort(kept)
	got := attrNames(e.listAllObjects(d))
	if diff := cmp.Diff(kept, got, equateEmpty); diff != "" {
		e.t.Errorf("%s: List(prefix %q) names differ from the names written (-written +listed):\n%s", clause, e.prefix, diff)
	}
	for _, name := range kept {
		if err := d.Delete(e.ctx, name); err != nil {
			e.t.Errorf("Delete(%q): %v", name, err)
		}
	}
	if got := attrNames(e.listAllObjects(d)); len(got) != 0 {
		e.t.Errorf("%s: after deleting every name written, List(prefix %q) still has %q", clause, e.prefix, got)
	}
}

// listAllObjects lists everything under the case's prefix.
func (e *env) listAllObjects(d driver.Driver) []driver.Attributes {
	e.t.Helper()
	objs, _ := e.listAll(d, e.prefix, 0)
	return objs
}

func attrNames(objs []driver.Attributes) []string {
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.Name
	}
	return names
}

// hexName returns a 40-hex-digit name like the cache's entries, from i.
func hexName(i int) string { return fmt.Sprintf("%040x", 0xbc0000+i) }
