package cache

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/blobcache/blobcache/driver"
)

// KeyFunc turns a caller's key into the made key that is hashed into an
// object name, as Django's KEY_FUNCTION does. The default is DefaultKeyFunc.
type KeyFunc func(key, keyPrefix string, version int) string

// DefaultKeyFunc is Django's default key function:
// keyPrefix + ":" + version + ":" + key.
func DefaultKeyFunc(key, keyPrefix string, version int) string {
	return keyPrefix + ":" + strconv.Itoa(version) + ":" + key
}

// cleanLocation validates a location and returns the listing prefix for it:
// "" for the bucket root, otherwise the location with one trailing "/".
// Leading and trailing slashes are trimmed; empty, "." and ".." segments are
// refused, since they would make two locations share objects or escape one.
func cleanLocation(loc string) (string, error) {
	trimmed := strings.Trim(loc, "/")
	if trimmed == "" {
		return "", nil
	}
	// A 40-byte hash and the "/" must still fit in a name.
	if len(trimmed) > driver.MaxNameLength-41 {
		return "", fmt.Errorf("%w: location is %d bytes, at most %d allowed", ErrInvalidOption, len(trimmed), driver.MaxNameLength-41)
	}
	if err := driver.ValidateName(trimmed); err != nil {
		return "", fmt.Errorf("%w: location %q: %v", ErrInvalidOption, loc, strings.TrimPrefix(err.Error(), driver.ErrInvalidName.Error()+" "))
	}
	return trimmed + "/", nil
}

// objectName is location prefix + hex(sha1(made key)). It allocates only the
// name: with the default key function the made key is built on the stack
// (for keys up to about 200 bytes), and the name is written into one
// allocation.
func (c *Cache) objectName(key string) string {
	var sum [sha1.Size]byte
	if c.defaultKeyFunc {
		var buf [256]byte
		b := append(buf[:0], c.keyPrefix...)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(c.version), 10)
		b = append(b, ':')
		b = append(b, key...)
		sum = sha1.Sum(b)
	} else {
		sum = sha1.Sum([]byte(c.keyFunc(key, c.keyPrefix, c.version)))
	}
	var digits [2 * sha1.Size]byte
	hex.Encode(digits[:], sum[:])
	var name strings.Builder
	name.Grow(len(c.prefix) + len(digits))
	name.WriteString(c.prefix)
	name.Write(digits[:])
	return name.String()
}

// IsEntryName reports whether name is one of this cache's entry names: the
// location's prefix followed by exactly 40 lower-case hexadecimal digits (a
// SHA-1), as objectName makes them. Clear, Len and culling consider only such
// names; any other object in the store, inside the location or not, is never
// counted, culled or deleted.
func (c *Cache) IsEntryName(name string) bool {
	return isEntryName(c.prefix, name)
}

func isEntryName(prefix, name string) bool {
	if len(name) != len(prefix)+2*sha1.Size || name[:len(prefix)] != prefix {
		return false
	}
	for i := len(prefix); i < len(name); i++ {
		if b := name[i]; (b < '0' || b > '9') && (b < 'a' || b > 'f') {
			return false
		}
	}
	return true
}
