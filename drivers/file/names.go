package file

import (
	"strings"
)

// chunkLen is the longest piece of a name segment, in bytes before escaping,
// that one path component holds. A segment of chunkLen bytes or more is split
// into continuation directories of exactly chunkLen bytes each. Escaping at
// most triples a byte, so every component stays within the usual 255-byte
// file name limit: 3*chunkLen + len("~+") = 254 for a continuation and
// 3*(chunkLen-1) + len("~") = 250 for the rest.
const chunkLen = 84

// Suffixes of path components. Escaped text never contains '~', so a suffix
// is recognised unambiguously.
const (
	dirSuffix  = "~"  // a directory: the segment is followed by "/"
	contSuffix = "~+" // a continuation: the segment goes on inside
)

// Prefixes of internal files and directories. They start with '.', which an
// escaped segment never does, and contain '~', so they never decode as
// objects.
const (
	tempPrefix = ".~tmp-"
	lockDir    = ".~locks"
)

// kind is what a path component stands for.
type kind uint8

const (
	kindFile kind = iota // an object
	kindDir              // a directory of the names below segment + "/"
	kindCont             // a continuation of a long segment
)

// safeByte reports whether b is written as itself in a path component: lower
// case ASCII letters, digits, '-', '_' and '.' (but not a leading '.').
// Upper case letters and non-ASCII bytes are escaped too, so that names that
// differ only in case or Unicode normalisation stay distinct on file systems
// that fold them (macOS, Windows).
func safeByte(b byte) bool {
	return 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' || b == '_' || b == '.'
}

const upperHex = "0123456789ABCDEF"

// escape returns the canonical escaped form of s. The empty string (only
// ever the rest of a segment after its last full chunk) escapes to "%".
func escape(s string) string {
	if s == "" {
		return "%"
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !safeByte(s[i]) || i == 0 && s[i] == '.' {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if safeByte(c) && (i > 0 || c != '.') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
	return b.String()
}

// unescape reverses escape. It accepts only canonical forms: ok is false
// for anything escape would not have produced.
func unescape(e string) (string, bool) {
	if e == "%" {
		return "", true
	}
	if e == "" {
		return "", false
	}
	if !strings.Contains(e, "%") {
		return e, escape(e) == e
	}
	b := make([]byte, 0, len(e))
	for i := 0; i < len(e); i++ {
		if e[i] != '%' {
			b = append(b, e[i])
			continue
		}
		if i+2 >= len(e) {
			return "", false
		}
		hi, lo := unhex(e[i+1]), unhex(e[i+2])
		if hi < 0 || lo < 0 {
			return "", false
		}
		b = append(b, byte(hi<<4|lo))
		i += 2
	}
	s := string(b)
	return s, escape(s) == e
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// appendSegment appends the path components of one name segment: a
// continuation component per full chunk of chunkLen bytes, then the rest
// (possibly empty, escaped as "%") as an object file or a directory.
func appendSegment(comps []string, seg string, k kind) []string {
	for len(seg) >= chunkLen {
		comps = append(comps, escape(seg[:chunkLen])+contSuffix)
		seg = seg[chunkLen:]
	}
	if k == kindDir {
		return append(comps, escape(seg)+dirSuffix)
	}
	return append(comps, escape(seg))
}

// objectPath returns the path, relative to the store's directory, of the
// object file of name, a valid name.
func objectPath(name string) string {
	comps := make([]string, 0, 4)
	for {
		i := strings.IndexByte(name, '/')
		if i < 0 {
			comps = appendSegment(comps, name, kindFile)
			break
		}
		comps = appendSegment(comps, name[:i], kindDir)
		name = name[i+1:]
	}
	return strings.Join(comps, "/")
}

// parseComponent decodes a directory entry. key is what the entry adds to the
// name of its directory: the segment (or rest of one) for an object, that plus
// "/" for a directory, the chunk for a continuation. ok is false for entries
// that are not part of the encoding (temporary and lock files, foreign files);
// inCont says whether the entry's directory is a continuation, the only place
// an empty rest of a segment is valid.
func parseComponent(comp string, inCont bool) (key string, k kind, ok bool) {
	if comp == "" || comp[0] == '.' {
		return "", 0, false
	}
	switch {
	case strings.HasSuffix(comp, contSuffix):
		s, ok := unescape(comp[:len(comp)-len(contSuffix)])
		if !ok || len(s) != chunkLen {
			return "", 0, false
		}
		return s, kindCont, true
	case strings.HasSuffix(comp, dirSuffix):
		s, ok := unescape(comp[:len(comp)-len(dirSuffix)])
		if !ok || len(s) >= chunkLen || s == "" && !inCont {
			return "", 0, false
		}
		return s + "/", kindDir, true
	}
	s, ok := unescape(comp)
	if !ok || len(s) >= chunkLen || s == "" && !inCont {
		return "", 0, false
	}
	return s, kindFile, true
}
