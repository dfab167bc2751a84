//go:build solaris

package file

import (
	"os"

	"golang.org/x/sys/unix"
)

// link reports that there are no hard links: golang.org/x/sys/unix has no
// linkat(2) for Solaris and illumos, and link(2) takes paths, which could
// lead through a link. IfAbsent then checks and renames under the object's
// lock (see createNew), which is atomic among blobcache drivers.
func (p *dir) link(from, to string) error {
	return &os.LinkError{Op: "linkat", Old: p.join(from), New: p.join(to), Err: unix.ENOTSUP}
}
