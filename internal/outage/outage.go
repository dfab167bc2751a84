// Package outage wraps a real driver behind a network that tests can take
// down: while down, every call fails as a dial to a stopped server does
// (a *net.OpError wrapping ECONNREFUSED) and the store is not reached. It
// stands for a storage outage where no server can be stopped in-process;
// the MinIO tests stop a real one.
package outage

import (
	"context"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/blobcache/blobcache/driver"
)

// Store is what Driver wraps: a driver with both optional capabilities,
// such as *mem.Driver.
type Store interface {
	driver.Driver
	driver.Replacer
	driver.BatchDeleter
}

// Driver is a Store that fails every call while Down is set.
type Driver struct {
	Store
	// Down makes every call fail with ErrRefused.
	Down atomic.Bool
}

// ErrRefused is what every call returns while the driver is down.
var ErrRefused error = &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}

// New wraps s, up.
func New(s Store) *Driver { return &Driver{Store: s} }

func (d *Driver) fail() error {
	if d.Down.Load() {
		return ErrRefused
	}
	return nil
}

// Read implements driver.Driver.
func (d *Driver) Read(ctx context.Context, name string, off, n int64) ([]byte, driver.Attributes, error) {
	if err := d.fail(); err != nil {
		return nil, driver.Attributes{}, err
	}
	return d.Store.Read(ctx, name, off, n)
}

// Write implements driver.Driver.
func (d *Driver) Write(ctx context.Context, name string, body io.Reader, opts *driver.WriteOptions) error {
	if err := d.fail(); err != nil {
		return err
	}
	return d.Store.Write(ctx, name, body, opts)
}

// Replace implements driver.Replacer.
func (d *Driver) Replace(ctx context.Context, name string, body io.Reader, etag string, opts *driver.WriteOptions) error {
	if err := d.fail(); err != nil {
		return err
	}
	return d.Store.Replace(ctx, name, body, etag, opts)
}

// Delete implements driver.Driver.
func (d *Driver) Delete(ctx context.Context, name string) error {
	if err := d.fail(); err != nil {
		return err
	}
	return d.Store.Delete(ctx, name)
}

// DeleteBatch implements driver.BatchDeleter.
func (d *Driver) DeleteBatch(ctx context.Context, names []string) error {
	if err := d.fail(); err != nil {
		return err
	}
	return d.Store.DeleteBatch(ctx, names)
}

// List implements driver.Driver.
func (d *Driver) List(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	if err := d.fail(); err != nil {
		return nil, err
	}
	return d.Store.List(ctx, opts)
}
