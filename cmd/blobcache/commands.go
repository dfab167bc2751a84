package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/blobcache/blobcache/bench"
	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/drivers/s3"
)

// flagValues are the values of the commands' own flags.
type flagValues struct {
	ttl         string        // set -ttl, bench -ttl
	ttlValue    time.Duration // -ttl parsed by the command's check
	yes         bool          // clear -yes, bench -yes
	concurrency int           // stats -concurrency
	headers     bool          // stats -headers

	// bench
	workers   int
	duration  durationFlag
	ops       int64
	keyspace  int
	valueSize string
	mix       string
	raw       bool
	seed      uint64
	benchCfg  bench.Workload // the bench flags, checked and parsed
}

// ttlUsage documents -ttl, for set and bench alike.
const ttlUsage = "a Go duration (90s, 10m, 2h; from 1ns to 2562047h, about 292 years), a positive number of seconds (300, 0.5; at most 9223372036), or none for no expiry"

// checkTTL is the check of a command whose only checked flag is -ttl.
func checkTTL(v *flagValues) error {
	d, err := parseTTL(v.ttl)
	v.ttlValue = d
	return err
}

// commands are the subcommands, in the order -h lists them.
var commands = []*command{
	{
		name: "get", args: "KEY", minArgs: 1, maxArgs: 1,
		summary: "print KEY's value",
		detail: `Writes the value to standard output as stored, byte for byte (on a
terminal a newline is added when the value does not end with one).
A key with no live entry (absent or expired) prints a message on
standard error and exits 1. get reads as the application does: an
expired entry, or one that fails to decode or to verify (a wrong
signing_key), is a miss and is deleted.`,
		run: cmdGet,
	},
	{
		name: "set", args: "[-ttl D] KEY [VALUE]", minArgs: 1, maxArgs: 2,
		summary: "store VALUE (or standard input) under KEY",
		detail: `Stores VALUE under KEY, replacing any entry. Without VALUE, or with
VALUE "-", the value is read from standard input to its end. A write
may first cull the location, as the application's writes do. A value
larger than the cache's max_value_size (256 MiB unless the URL sets it)
is refused; set reads at most that (1 GiB when the cache does not say)
from standard input, never all of an endless stream.`,
		flags: func(fs *flag.FlagSet, v *flagValues) {
			fs.StringVar(&v.ttl, "ttl", "", "time to live `D`: "+ttlUsage+"; default: the URL's timeout (300 s unless set)")
		},
		check: checkTTL,
		run:   cmdSet,
	},
	{
		name: "delete", args: "KEY...", minArgs: 1, maxArgs: -1,
		summary: "delete the keys' entries",
		detail: `Deletes each KEY's entry. A key with no entry is not an error (like
rm -f); use has first to know.`,
		run: cmdDelete,
	},
	{
		name: "has", args: "KEY", minArgs: 1, maxArgs: 1,
		summary: "exit 0 if KEY has a live entry, 1 if not",
		detail: `Prints nothing when KEY has a live entry and exits 0; otherwise prints
a message on standard error and exits 1. Reads only the entry's header.`,
		run: cmdHas,
	},
	{
		name: "len", minArgs: 0, maxArgs: 0,
		summary: "print the number of entries",
		detail: `Prints the number of entries under the location, expired entries
included (the store keeps them until they are read, culled or cleared).
Only objects named as the cache's entries count (the location, then 40
lower-case hex digits); other objects are not the cache's.`,
		run: cmdLen,
	},
	{
		name: "clear", args: "[-yes]", minArgs: 0, maxArgs: 0,
		summary: "delete every entry under the location",
		detail: `Lists the location, asks "Delete N entries ...? [y/N]" on the terminal,
then deletes them all (in batches of 1000 where the store allows) and
prints how many. Only entries are deleted: objects named as the cache's
entries (the location, then 40 lower-case hex digits); other objects,
inside the location or outside it, are never touched, nor counted in
the question. With no location in the URL, that is every entry at the
root of the store, and the question says so. Without -yes, clear refuses
to run when standard input is not a terminal.`,
		flags: func(fs *flag.FlagSet, v *flagValues) {
			fs.BoolVar(&v.yes, "yes", false, "delete without asking")
		},
		run: cmdClear,
	},
	{
		name: "cull", minArgs: 0, maxArgs: 0,
		summary: "cull now, as a full cache would",
		detail: `Removes the entries the URL's cull policy chooses (cull_frequency,
default 3: a third of them; cull_policy frequency or oldest), whatever
the count, and prints how many it removed.`,
		run: cmdCull,
	},
	{
		name: "stats", args: "[-concurrency N] [-headers=false]", minArgs: 0, maxArgs: 0,
		summary: "print entries, bytes, expired, oldest, newest, requests",
		detail: `Lists the location and reads the header of every entry (a 72-byte
range read, never the value) to count expired entries. Only objects named
as the cache's entries (the location, then 40 lower-case hex digits) are
counted and read; other objects are skipped. Prints:
  entries      entries under the location
  bytes        their total size as stored
  expired      entries past their expiry, still stored until read, culled
               or cleared
  stale        of the expired, those within their grace period
               (stale_grace), which GetOrSet still serves; shown when
               there are any
  no expiry    entries stored with no expiry
  not entries  objects named as entries whose header is not a blobcache
               entry's (unknown format)
  oldest       earliest modification time (last write), with its age
  newest       latest modification time
  took         how long listing and reading headers took
then the counters of this blobcache process, the same block bench
prints. They are what this stats run cost, not the application's
counters (those are its cache's Stats(), or its OpenTelemetry metrics),
which no other process can read:
  requests     LIST pages and GETs (the header reads), each one request
               on S3 (ListObjectsV2, a ranged GetObject), counted at the
               driver, which stats calls directly; also PUT, DELETE and
               batch DELETE, always 0 here
  transferred  bytes read (the headers) and written
  lookups, calls, culls, dropped, errors
               the cache's Stats() of this process: all 0, as stats makes
               no cache calls
Nothing is changed: expired entries are counted, not deleted.`,
		flags: func(fs *flag.FlagSet, v *flagValues) {
			fs.IntVar(&v.concurrency, "concurrency", defaultStatsConcurrency, fmt.Sprintf("read `N` headers at once, 1 to %d", maxStatsConcurrency))
			fs.BoolVar(&v.headers, "headers", true, "read entry headers; -headers=false only lists, faster, without the expired and no-expiry counts")
		},
		check: checkStats,
		run:   cmdStats,
	},
	{
		name: "purge", args: "[-concurrency N]", minArgs: 0, maxArgs: 0,
		summary: "delete the expired entries under the location",
		detail: `Lists the location a page at a time and reads the header of every entry
(a 72-byte range read, never the value), N at a time (-concurrency, 32;
1 to 1024), deleting the dead ones: past their expiry and any grace
period (stale_grace), or whose header is not a blobcache entry's. Live
entries, stale ones within their grace period and objects not named as
entries are kept. For stores without lifecycle rules, and caches with
max_entries=0, where nothing else deletes an expired entry nobody reads.
Prints what it examined, deleted and kept. An entry rewritten between
its header read and its delete is lost (stores offer no conditional
delete), as when a read deletes an expired entry.`,
		flags: func(fs *flag.FlagSet, v *flagValues) {
			fs.IntVar(&v.concurrency, "concurrency", defaultStatsConcurrency, fmt.Sprintf("read `N` headers at once, 1 to %d", maxStatsConcurrency))
		},
		check: checkStats, // the same -concurrency
		run:   cmdPurge,
	},
	{
		name: "lifecycle", minArgs: 0, maxArgs: 0,
		summary: "print the S3 lifecycle rules that delete expired entries",
		detail: `Prints, as the JSON lifecycle configuration the AWS CLI takes (aws
s3api put-bucket-lifecycle-configuration --bucket B
--lifecycle-configuration file://rules.json), the rules that delete the
entries a cache writes with lifecycle=tag, verify or install in its URL:
one per expiry class (1, 2, 4, ..., 1024 days), each selecting the
objects tagged blobcache-expires=<N>d and expiring them N days after
they were written. Installing the file replaces the bucket's
configuration: merge it with the rules the bucket has, or let the cache
do it (lifecycle=install). Only s3:// URLs have lifecycle rules; the
command opens the bucket (one HeadBucket) and changes nothing.`,
		run: cmdLifecycle,
	},
	{
		name: "bench", args: "[flags]", minArgs: 0, maxArgs: 0,
		summary: "load-test: ops/s, latency, requests/op, cache/raw ratio",
		detail:  benchDetail,
		flags:   benchFlags,
		check:   checkBench,
		run:     cmdBench,
	},
}

func cmdGet(e *env, c *cache.Cache, args []string) error {
	v, err := c.Get(e.ctx, args[0])
	if errors.Is(err, cache.ErrMiss) {
		return &missError{key: args[0]}
	}
	if err != nil {
		return err
	}
	if _, err := e.stdout.Write(v); err != nil {
		return err
	}
	if len(v) > 0 && v[len(v)-1] != '\n' && isTerminal(e.stdout) {
		_, err = io.WriteString(e.stdout, "\n")
	}
	return err
}

func cmdSet(e *env, c *cache.Cache, args []string) error {
	var value []byte
	if len(args) == 2 && args[1] != "-" {
		value = []byte(args[1])
	} else {
		if isTerminal(e.stdin) {
			fmt.Fprintln(e.stderr, "blobcache: reading the value from standard input; end it with Ctrl-D")
		}
		// Read one byte past the limit, to tell a value of exactly the limit
		// from a larger one without reading all of it.
		limit := c.MaxValueSize()
		var err error
		if value, err = io.ReadAll(io.LimitReader(e.stdin, limit+1)); err != nil {
			return fmt.Errorf("reading the value from standard input: %w", err)
		}
		if int64(len(value)) > limit {
			return fmt.Errorf("the value on standard input is larger than %d bytes (%s), the most set stores: nothing stored", limit, formatBytes(limit))
		}
	}
	return c.Set(e.ctx, args[0], value, e.flags.ttlValue)
}

// parseTTL reads a -ttl value: "" for the default, "none" (or "never") for
// no expiry, a positive number of seconds, or a positive Go duration. The
// result is at least 1ns and at most the longest time.Duration: NaN,
// infinities, values that round to 0 (which would mean the default) and
// values beyond about 292 years are refused, not wrapped or truncated.
func parseTTL(s string) (time.Duration, error) {
	switch strings.ToLower(s) {
	case "":
		return cache.DefaultTTL, nil
	case "none", "never":
		return cache.NoExpiry, nil
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		ns := math.Round(secs * float64(time.Second))
		underflow := err != nil && secs == 0 // ParseFloat's ErrRange: ±0 for a tiny value
		switch {
		case math.IsNaN(secs):
			return 0, usagef("-ttl %s: not a number of seconds; want a positive number of seconds, a duration or none", s)
		case secs < 0 || (secs == 0 && !underflow):
			return 0, usagef("-ttl %s: want a positive number of seconds, a duration or none (for no expiry)", s)
		case ns >= math.MaxInt64: // also +Inf; float64(MaxInt64) is 2^63
			return 0, usagef("-ttl %s: out of range: at most %d seconds (about 292 years)", s, int64(math.MaxInt64/time.Second))
		case ns < 1:
			return 0, usagef("-ttl %s: less than a nanosecond", s)
		}
		return time.Duration(ns), nil
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil && durationShape.MatchString(s):
		return 0, usagef("-ttl %q: out of range: at most %v (about 292 years)", s, time.Duration(math.MaxInt64))
	case err != nil:
		return 0, usagef("-ttl %q: want a Go duration such as 90s or 10m, seconds, or none", s)
	case d <= 0:
		return 0, usagef("-ttl %q: want a positive duration (none for no expiry)", s)
	}
	return d, nil
}

// durationShape matches what time.ParseDuration reads when the value is in
// range: it tells an overflow from a typo.
var durationShape = regexp.MustCompile(`^[-+]?((\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$`)

func cmdDelete(e *env, c *cache.Cache, args []string) error {
	if len(args) == 1 {
		_, err := c.Delete(e.ctx, args[0])
		return err
	}
	return c.DeleteMany(e.ctx, args)
}

func cmdHas(e *env, c *cache.Cache, args []string) error {
	ok, err := c.Has(e.ctx, args[0])
	if err != nil {
		return err
	}
	if !ok {
		return &missError{key: args[0]}
	}
	return nil
}

func cmdLen(e *env, c *cache.Cache, _ []string) error {
	n, err := c.Len(e.ctx)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, n)
	return err
}

func cmdPurge(e *env, c *cache.Cache, _ []string) error {
	p := e.newProgress(-1, "purging")
	done := 0
	res, err := c.Purge(e.ctx, e.flags.concurrency, func(pp cache.PurgeProgress) {
		p.add(pp.Examined - done)
		done = pp.Examined
	})
	p.finish(err == nil)
	if err != nil {
		return fmt.Errorf("examined %d of %d listed entries and deleted %d, then: %w", res.Examined, res.Listed, res.Deleted, err)
	}
	_, err = fmt.Fprintf(e.stdout, "examined %d %s: deleted %d dead, kept %d live and %d stale\n",
		res.Examined, plural(res.Examined, "entry", "entries"), res.Deleted, res.Live, res.Stale)
	return err
}

func cmdLifecycle(e *env, c *cache.Cache, _ []string) error {
	if _, ok := c.Driver().(*s3.Driver); !ok {
		return fmt.Errorf("lifecycle rules are S3's, and %v is not an s3:// cache (purge deletes expired entries on any store)", c)
	}
	_, err := e.stdout.Write(s3.LifecycleJSON())
	return err
}

func cmdCull(e *env, c *cache.Cache, _ []string) error {
	n, err := c.Cull(e.ctx)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "culled %d %s\n", n, plural(n, "entry", "entries"))
	return err
}

func cmdClear(e *env, c *cache.Cache, _ []string) error {
	objs, err := listEntries(e, c.Driver(), c)
	if err != nil {
		return err
	}
	where := fmt.Sprintf("under %q in %v", c.Location(), c)
	if c.Location() == "" {
		where = fmt.Sprintf("in %v: the URL has no location, so that is EVERY entry at the root of the store", c)
	}
	if len(objs) == 0 {
		_, err := fmt.Fprintf(e.stdout, "nothing to clear: no entries %s\n", where)
		return err
	}
	var size int64
	for _, o := range objs {
		size += o.Size
	}
	if !e.flags.yes {
		q := fmt.Sprintf("delete %d %s (%s) %s", len(objs), plural(len(objs), "entry", "entries"), formatBytes(size), where)
		if !isTerminal(e.stdin) {
			return fmt.Errorf("refusing to %s without confirmation: standard input is not a terminal; pass -yes to clear anyway", q)
		}
		fmt.Fprintf(e.stderr, "%s%s? [y/N] ", strings.ToUpper(q[:1]), q[1:])
		answer, _ := bufio.NewReader(e.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return errors.New("aborted: nothing deleted")
		}
	}
	n, err := deleteAll(e, c, objs)
	if err != nil {
		return fmt.Errorf("deleted %d of %d entries, then: %w", n, len(objs), err)
	}
	_, err = fmt.Fprintf(e.stdout, "deleted %d %s (%s)\n", n, plural(n, "entry", "entries"), formatBytes(size))
	return err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
