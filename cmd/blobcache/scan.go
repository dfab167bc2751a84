package main

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/driver/counting"
)

// defaultStatsConcurrency is how many header reads stats keeps in flight by
// default, maxStatsConcurrency the most -concurrency allows (each is a
// goroutine and a request in flight).
const (
	defaultStatsConcurrency = 32
	maxStatsConcurrency     = 1024
)

// checkStats checks the stats (and purge) flags.
func checkStats(v *flagValues) error {
	if v.concurrency < 1 || v.concurrency > maxStatsConcurrency {
		return usagef("-concurrency %d: want 1 to %d", v.concurrency, maxStatsConcurrency)
	}
	return nil
}

// deleteConcurrency is how many delete requests (batches of up to 1000 names,
// or single deletes) clear keeps in flight.
const deleteConcurrency = 8

// listEntries lists c's entries through d (c's driver, or a wrapper of it),
// page by page, with a progress spinner counting them. Only objects named as
// c's entries (c.IsEntryName: the location, then 40 lower-case hex digits)
// are returned: any other object under the location, or at the root of a
// location-less cache, is not the cache's and is never counted, shown, read
// or deleted.
func listEntries(e *env, d driver.Driver, c *cache.Cache) ([]driver.Attributes, error) {
	prefix := c.Location()
	p := e.newProgress(-1, "listing")
	var out []driver.Attributes
	opts := &driver.ListOptions{Prefix: prefix, PageSize: driver.MaxListPageSize}
	for {
		page, err := d.List(e.ctx, opts)
		if err != nil {
			p.finish(false)
			return nil, fmt.Errorf("listing %q: %w", prefix, err)
		}
		n := 0
		for _, o := range page.Objects {
			if c.IsEntryName(o.Name) {
				out = append(out, o)
				n++
			}
		}
		p.add(n)
		if page.NextPageToken == "" {
			p.finish(true)
			return out, nil
		}
		opts.PageToken = page.NextPageToken
	}
}

// deleteAll deletes objs through the cache's driver, in batches where it
// has a BatchDeleter, with a progress bar. It returns how many it deleted.
func deleteAll(e *env, c *cache.Cache, objs []driver.Attributes) (int, error) {
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.Name
	}
	p := e.newProgress(int64(len(names)), "deleting")
	var deleted atomic.Int64
	g, ctx := errgroup.WithContext(e.ctx)
	d := c.Driver()
	if bd, ok := d.(driver.BatchDeleter); ok {
		g.SetLimit(deleteConcurrency)
		for chunk := range slices.Chunk(names, driver.MaxBatchDelete) {
			g.Go(func() error {
				if err := bd.DeleteBatch(ctx, chunk); err != nil {
					return err
				}
				deleted.Add(int64(len(chunk)))
				p.add(len(chunk))
				return nil
			})
		}
	} else {
		g.SetLimit(4 * deleteConcurrency)
		for _, name := range names {
			g.Go(func() error {
				if err := d.Delete(ctx, name); err != nil {
					return err
				}
				deleted.Add(1)
				p.add(1)
				return nil
			})
		}
	}
	err := g.Wait()
	p.finish(err == nil)
	return int(deleted.Load()), err
}

// stats is what the stats command reports.
type stats struct {
	entries          int
	bytes            int64
	expired          int
	stale            int // of the expired, those within their grace period
	noExpiry         int
	notEntries       int
	vanished         int // listed, then gone before its header was read
	oldest, newest   time.Time
	headersWereRead  bool
	listed, examined time.Duration // how long listing and header reads took
}

func cmdStats(e *env, c *cache.Cache, _ []string) error {
	// The scan calls the driver directly (the cache has no call returning
	// names, sizes and times), so the cache's Stats do not see it: the
	// wrapper counts its requests for the counters block. It is never
	// closed: the driver belongs to the cache.
	d, scanned := counting.Wrap(c.Driver())
	start := time.Now()
	objs, err := listEntries(e, d, c)
	if err != nil {
		return err
	}
	s := stats{entries: len(objs), listed: time.Since(start)}
	for _, o := range objs {
		s.bytes += o.Size
		if o.ModTime.IsZero() {
			continue
		}
		if s.oldest.IsZero() || o.ModTime.Before(s.oldest) {
			s.oldest = o.ModTime
		}
		if o.ModTime.After(s.newest) {
			s.newest = o.ModTime
		}
	}
	if e.flags.headers {
		start = time.Now()
		if len(objs) > 0 {
			if err := readHeaders(e, d, objs, &s); err != nil {
				return err
			}
		}
		s.headersWereRead = true
		s.examined = time.Since(start)
	}
	if err := printStats(e, c, &s); err != nil {
		return err
	}
	// This process's requests: the cache's (none, as stats makes no cache
	// call) and the scan's, counted at the driver.
	counters := c.Stats()
	addScan(&counters, scanned.Counts())
	return writeCounters(e.stdout, statsCountersHeading, counters, "header reads")
}

// statsCountersHeading heads the counters block of stats.
const statsCountersHeading = "this blobcache stats run's own, not the application's (see 'blobcache help stats')"

// readHeaders reads the header of every entry in objs (listEntries' result)
// through d, e.flags.concurrency at a time, and counts expired,
// never-expiring and undecodable ones.
func readHeaders(e *env, d driver.Driver, objs []driver.Attributes, s *stats) error {
	p := e.newProgress(int64(len(objs)), "reading headers")
	now := time.Now()
	var expired, stale, noExpiry, notEntries, vanished atomic.Int64
	g, ctx := errgroup.WithContext(e.ctx)
	g.SetLimit(e.flags.concurrency)
	for _, o := range objs {
		g.Go(func() error {
			defer p.add(1)
			b, _, err := d.Read(ctx, o.Name, 0, cache.EntryHeaderSize)
			if errors.Is(err, driver.ErrNotFound) {
				vanished.Add(1)
				return nil
			}
			if err != nil {
				return fmt.Errorf("reading the header of %s: %w", o.Name, err)
			}
			info, err := cache.InspectEntry(b)
			switch {
			case err != nil:
				notEntries.Add(1)
			case info.Expiry.IsZero():
				noExpiry.Add(1)
			case !info.Expiry.After(now):
				expired.Add(1)
				if info.Expiry.Add(info.Grace).After(now) {
					stale.Add(1)
				}
			}
			return nil
		})
	}
	err := g.Wait()
	p.finish(err == nil)
	s.expired, s.stale, s.noExpiry = int(expired.Load()), int(stale.Load()), int(noExpiry.Load())
	s.notEntries, s.vanished = int(notEntries.Load()), int(vanished.Load())
	return err
}

func printStats(e *env, c *cache.Cache, s *stats) error {
	w := e.stdout
	fmt.Fprintf(w, "cache:        %v\n", c)
	fmt.Fprintf(w, "location:     %s\n", describeLocation(c))
	fmt.Fprintf(w, "entries:      %d\n", s.entries)
	fmt.Fprintf(w, "bytes:        %d (%s)\n", s.bytes, formatBytes(s.bytes))
	if s.headersWereRead {
		fmt.Fprintf(w, "expired:      %d\n", s.expired)
		if s.stale > 0 {
			fmt.Fprintf(w, "stale:        %d (of the expired, within their grace period)\n", s.stale)
		}
		fmt.Fprintf(w, "no expiry:    %d\n", s.noExpiry)
		fmt.Fprintf(w, "not entries:  %d\n", s.notEntries)
		if s.vanished > 0 {
			fmt.Fprintf(w, "vanished:     %d (deleted while stats ran)\n", s.vanished)
		}
	}
	now := time.Now()
	for _, t := range []struct {
		label string
		at    time.Time
	}{{"oldest:", s.oldest}, {"newest:", s.newest}} {
		if t.at.IsZero() {
			fmt.Fprintf(w, "%-13s -\n", t.label)
			continue
		}
		fmt.Fprintf(w, "%-13s %s (%s ago)\n", t.label, t.at.Local().Format(time.RFC3339), now.Sub(t.at).Round(time.Second))
	}
	took := s.listed.Round(time.Millisecond).String() + " listing"
	if s.headersWereRead {
		took += ", " + s.examined.Round(time.Millisecond).String() + " reading headers"
	}
	_, err := fmt.Fprintf(w, "took:         %s\n", took)
	return err
}

// formatBytes renders n in decimal units: 999 B, 1.2 kB, 3.4 MB.
func formatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
