//go:build unix && !solaris

package file

import (
	"os"

	"golang.org/x/sys/unix"
)

func (p *dir) link(from, to string) error {
	// Flags 0: a link at from would be linked itself, never its target.
	if err := retry(func() error { return unix.Linkat(p.fd, from, p.fd, to, 0) }); err != nil {
		return &os.LinkError{Op: "linkat", Old: p.join(from), New: p.join(to), Err: err}
	}
	return nil
}
