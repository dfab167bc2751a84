package main

import (
	"fmt"
	"io"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver/counting"
)

// addScan adds the calls stats made to the store through the driver
// directly, counted with counting.Wrap (it lists and reads headers that way:
// the cache has no call that returns object names, sizes and times, so the
// cache's own Stats cannot see them), to s's request and byte counters, so
// that s holds everything this process asked of the store. On S3 each call
// is one request: a LIST is one ListObjectsV2 page, a read one GetObject.
func addScan(s *cache.Stats, n counting.Counts) {
	s.Lists += n.Lists
	s.Reads += n.Reads
	s.BytesRead += n.BytesRead
	s.Writes += n.Writes + n.Replaces
	s.DeleteRequests += n.Deletes
	s.BatchDeletes += n.BatchDeletes
}

// writeCounters writes the counters block that bench and stats print after
// their results: one "name: value" line each, like the rest of their output,
// from s, this process's counters. heading says whose counters they are;
// readsAre, when not empty, says what the reads were ("header reads").
//
// requests are driver calls, each one request on S3: LIST a ListObjectsV2
// page, GET a GetObject (whole or ranged), PUT a PutObject (conditional ones
// included), DELETE a DeleteObject, batch DELETE a DeleteObjects of up to
// 1000 names.
func writeCounters(w io.Writer, heading string, s cache.Stats, readsAre string) error {
	reads := fmt.Sprintf("%d GET", s.Reads)
	if readsAre != "" {
		reads += " (" + readsAre + ")"
	}
	total := s.Lists + s.Reads + s.Writes + s.DeleteRequests + s.BatchDeletes
	for _, l := range [][2]string{
		{"counters", heading},
		{"requests", fmt.Sprintf("%d LIST, %s, %d PUT, %d DELETE, %d batch DELETE (%d in all)",
			s.Lists, reads, s.Writes, s.DeleteRequests, s.BatchDeletes, total)},
		{"transferred", fmt.Sprintf("%d bytes read (%s), %d bytes written (%s)",
			s.BytesRead, formatBytes(s.BytesRead), s.BytesWritten, formatBytes(s.BytesWritten))},
		{"lookups", fmt.Sprintf("%d hits, %d misses", s.Hits, s.Misses)},
		{"calls", fmt.Sprintf("%d sets, %d adds (%d added), %d deletes, %d touches, %d incrs",
			s.Sets, s.Adds, s.Added, s.Deletes, s.Touches, s.Incrs)},
		{"culls", fmt.Sprintf("%d (%d entries culled), %d clears", s.Culls, s.EntriesCulled, s.Clears)},
		{"dropped", fmt.Sprintf("%d expired, %d corrupt, %d forged; %d retries", s.Expired, s.Corrupt, s.Forged, s.Retries)},
		{"errors", fmt.Sprint(s.Errors)},
	} {
		if _, err := fmt.Fprintf(w, "%-13s %s\n", l[0]+":", l[1]); err != nil {
			return err
		}
	}
	return nil
}
