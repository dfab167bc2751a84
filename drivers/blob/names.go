package blob

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/blobcache/blobcache/driver"
)

// Escaping names the key-escaping rules of a Go CDK driver: which keys its
// layer stores or lists as something else. A [Driver] refuses every name its
// bucket's driver would rewrite (see the package documentation). [New] finds
// the rules through the bucket's As method where it can (fileblob), a
// [Provider] names them, and [OpenURL] finds them from the URL's scheme; [WithEscaping]
// names them for a bucket they cannot recognise, such as memblob's.
type Escaping int

const (
	// EscapingAny is used when the bucket's Go CDK driver is not known: every
	// name that any of the Go CDK's drivers (s3blob, gcsblob, azureblob,
	// fileblob on this operating system) would rewrite is refused.
	EscapingAny Escaping = iota
	// EscapingNone is memblob's: keys are stored and listed as given.
	EscapingNone
	// EscapingS3 is s3blob's: control characters (below U+0020), the "/" of
	// "../" and the start of every "__0x<hex>__" are escaped.
	EscapingS3
	// EscapingGCS is gcsblob's: "\n", "\r", the "/" of "../" and the start of
	// every "__0x<hex>__" are escaped.
	EscapingGCS
	// EscapingAzure is azureblob's: control characters, DEL, `\`, `"`, "#",
	// "%", "?", a trailing "/", the "/" of "../" and the start of every
	// "__0x<hex>__" are escaped.
	EscapingAzure
	// EscapingFile is fileblob's on this operating system: control
	// characters, the "/" of "../" and of "//", a trailing "/", the start of
	// every "__0x<hex>__", on Windows also `\<>:"|?*`, are escaped; keys
	// ending in ".attrs" are refused (fileblob keeps attributes in such
	// files).
	EscapingFile
)

// String returns the Go CDK driver's name, such as "s3blob".
func (e Escaping) String() string {
	switch e {
	case EscapingAny:
		return "any Go CDK driver"
	case EscapingNone:
		return "memblob"
	case EscapingS3:
		return "s3blob"
	case EscapingGCS:
		return "gcsblob"
	case EscapingAzure:
		return "azureblob"
	case EscapingFile:
		return "fileblob"
	}
	return "Escaping(" + strconv.Itoa(int(e)) + ")"
}

// ValidateName returns nil when name satisfies [driver.ValidateName] and
// e's Go CDK driver stores, lists and deletes it exactly as given in a
// bucket without a key prefix, and otherwise an error wrapping
// [driver.ErrInvalidName] that says which rule the name breaks: what
// [Driver.ValidateName] answers for such a bucket, known before any bucket
// is opened.
func (e Escaping) ValidateName(name string) error {
	if !e.valid() {
		e = EscapingAny
	}
	r := nameRules{esc: e}
	return r.check(name, false)
}

func (e Escaping) valid() bool { return e >= EscapingAny && e <= EscapingFile }

// attrsExt is the suffix of fileblob's attribute files (fileblob.go).
const attrsExt = ".attrs"

// escapes reports whether the Go CDK driver of e escapes the rune c that
// starts at byte i of key (rune index ri), replicating the driver's
// escapeKey: s3blob.go:726, gcsblob.go:848, azureblob.go:922 and
// fileblob.go:324 of gocloud.dev v0.47.0, plus the escaping of every escape
// sequence that the Go CDK's escape.HexEscape adds for all of them. prefix
// is azureblob's isPrefix (listing prefixes keep a trailing "/"). For
// EscapingAny it is the union of all of them.
func (e Escaping) escapes(key string, i, ri int, c rune, prefix bool) bool {
	if e == EscapingNone {
		return false
	}
	if escapeSequenceAt(key, i) {
		return true
	}
	// The "/" of "../" (all four drivers). The runes before a "/" are ASCII
	// when its two bytes before are dots, so the byte test is the rune test.
	if c == '/' && i >= 2 && key[i-1] == '.' && key[i-2] == '.' {
		return true
	}
	all := e == EscapingAny
	if all || e == EscapingS3 || e == EscapingFile {
		if c < 32 {
			return true
		}
	}
	if e == EscapingGCS && (c == '\n' || c == '\r') {
		return true
	}
	if all || e == EscapingAzure {
		switch {
		case c == '\\', c < 32, c == '"', c == '#', c == '%', c == '?', c == 127:
			return true
		// azureblob compares the rune index with the key's length in bytes
		// (azureblob.go:934); replicated as written.
		case !prefix && c == '/' && ri == len(key)-1:
			return true
		}
	}
	if all || e == EscapingFile {
		switch {
		case os.PathSeparator != '/' && c == os.PathSeparator:
			return true
		// fileblob escapes "//" and a trailing "/" in keys, not in listing
		// prefixes, which it compares with the listed keys as given.
		case !prefix && c == '/' && i > 0 && key[i-1] == '/':
			return true
		case !prefix && c == '/' && i == len(key)-1:
			return true
		case os.PathSeparator == '\\' && strings.ContainsRune(`<>:"|?*`, c):
			return true
		}
	}
	return false
}

// escapeSequenceAt reports whether the Go CDK's escape.HexUnescape would read
// an escape sequence at byte i of s: "__0x", then hex digits up to the next
// "_" that parse as an int32 (an optional sign included, as
// strconv.ParseInt takes it), then "__". This replicates unescape in
// gocloud.dev/internal/escape (escape.go, v0.47.0); "_" never occurs inside
// a multi-byte UTF-8 sequence, so bytes and runes agree.
func escapeSequenceAt(s string, i int) bool {
	if !strings.HasPrefix(s[i:], "__0x") {
		return false
	}
	rest := s[i+4:]
	end := strings.IndexByte(rest, '_')
	if end < 0 || !strings.HasPrefix(rest[end:], "__") {
		return false
	}
	_, err := strconv.ParseInt(rest[:end], 16, 32)
	return err == nil
}

// firstEscape returns the byte offset of the first rune of key that e's
// driver escapes, or -1.
func (e Escaping) firstEscape(key string, prefix bool) int {
	if e == EscapingNone {
		return -1
	}
	ri := 0
	for i, c := range key {
		if e.escapes(key, i, ri, c, prefix) {
			return i
		}
		ri++
	}
	return -1
}

// escape returns key as e's driver would store it (its escapeKey), without
// fileblob's replacement of "/" by the path separator. For EscapingAny it
// escapes what any driver would. It is how error messages show the stored
// form, and what the tests compare with the real drivers.
func (e Escaping) escape(key string, prefix bool) string {
	if e.firstEscape(key, prefix) < 0 {
		return key
	}
	var b strings.Builder
	ri := 0
	for i, c := range key {
		if e.escapes(key, i, ri, c, prefix) {
			fmt.Fprintf(&b, "__%#x__", c)
		} else {
			b.WriteRune(c)
		}
		ri++
	}
	return b.String()
}

// why says which of e's rules escapes the rune at byte i of key.
func (e Escaping) why(key string, i int) string {
	c, _ := utf8.DecodeRuneInString(key[i:])
	switch {
	case escapeSequenceAt(key, i):
		end := i + 4 + strings.IndexByte(key[i+4:], '_') + 2
		return fmt.Sprintf("it contains %q, which the Go CDK reads as an escaped character when listing", key[i:end])
	case c == '/' && i >= 2 && key[i-2:i] == "..":
		return `it contains "../", whose "/" the Go CDK escapes`
	case c == '/' && i > 0 && key[i-1] == '/':
		return `it contains "//", whose second "/" fileblob escapes`
	case c == '/':
		return `it ends in "/", which the Go CDK escapes`
	case c < 32 || c == 127:
		return "it contains a control character"
	}
	return fmt.Sprintf("it contains %q, which %s escapes", c, e.culprit(c))
}

// culprit names the driver whose rule escapes c, for messages.
func (e Escaping) culprit(c rune) string {
	if e != EscapingAny {
		return e.String()
	}
	if strings.ContainsRune(`\"#%?`, c) {
		return "azureblob"
	}
	return "fileblob"
}

// nameRules is what a driver knows about how its bucket rewrites keys.
type nameRules struct {
	esc Escaping
	// keyPrefix is prepended to every name before the Go CDK driver escapes
	// it (a Go CDK prefixed bucket's prefix), when known.
	keyPrefix string
	// prefixErr, when set, refuses every name: the bucket's own key prefix
	// is rewritten by the store.
	prefixErr error
}

// check returns nil when name is stored, read, listed and deleted exactly as
// given, and otherwise an error wrapping driver.ErrInvalidName that says
// which rule the name breaks. A listing prefix (prefix set) is checked by
// the rules the store applies to prefixes and need not be a valid name.
func (r *nameRules) check(name string, prefix bool) error {
	bad := func(format string, args ...any) error {
		if prefix {
			return fmt.Errorf("%w: list prefix %q: %s", driver.ErrInvalidName, name, fmt.Sprintf(format, args...))
		}
		return fmt.Errorf("%w %q: %s", driver.ErrInvalidName, name, fmt.Sprintf(format, args...))
	}
	if !prefix {
		if err := driver.ValidateName(name); err != nil {
			return err
		}
	}
	if r.prefixErr != nil {
		return bad("%v", r.prefixErr)
	}
	e := r.esc
	key := r.keyPrefix + name
	if i := e.firstEscape(key, prefix); i >= 0 {
		msg := e.why(key, i)
		if e != EscapingAny {
			msg += fmt.Sprintf(" (%s would store %q as %q)", e, key, e.escape(key, prefix))
		} else {
			msg += " (the bucket's Go CDK driver is not known, so what any of them rewrites is refused; see blob.WithEscaping)"
		}
		if r.keyPrefix != "" {
			msg += fmt.Sprintf(" (the bucket's key prefix is %q)", r.keyPrefix)
		}
		return bad("%s", msg)
	}
	if !prefix && (e == EscapingFile || e == EscapingAny) && strings.HasSuffix(key, attrsExt) {
		return bad("it ends in %q, which fileblob keeps for its attribute files", attrsExt)
	}
	return nil
}
