package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
)

// TestHostileFlags tries every flag of every command with values out of its
// range: each is a usage error (exit 2) whose message names the flag, with
// nothing on standard output and nothing written to the store.
func TestHostileFlags(t *testing.T) {
	dir := t.TempDir()
	u := fileURL(dir, "location=hostile")
	type tc struct {
		args []string // after -url u
		want string   // in stderr
	}
	var cases []tc
	// add adds a case per value: the command and its valid flags in cmd,
	// then -flag=value (last, so that it wins), then the arguments after a
	// "--" in cmd.
	add := func(cmd []string, flag string, want string, values ...string) {
		i := len(cmd)
		for j, a := range cmd {
			if a == "--" {
				i = j
			}
		}
		for _, v := range values {
			args := append(append([]string{}, cmd[:i]...), "-"+flag+"="+v)
			if i < len(cmd) {
				args = append(args, cmd[i+1:]...)
			}
			cases = append(cases, tc{args, want})
		}
	}
	set := []string{"set", "--", "k", "v"}
	ttlValues := []string{
		"NaN", "nan", "Inf", "+Inf", "-Inf", "infinity", // not numbers of seconds
		"1e300", "1e10", "9.3e9", "1e400", // seconds past time.Duration
		"1e300s", "9999999h", "2562048h", "106752d", // durations past it, or no unit Go knows
		"-1", "-1s", "-0.5", "0", "0s", "-0", // not positive
		"1e-12", "0.0000000001s", // below a nanosecond: would be the default TTL
		" 5", "5 s", "soon", "5x", "--5",
	}
	add(set, "ttl", "-ttl", ttlValues...)
	stats := []string{"stats"}
	add(stats, "concurrency", "-concurrency", "0", "-1", "1025", "1000000", "99999999999999999999", "many", "")
	add(stats, "headers", "-headers", "maybe", "2")
	add([]string{"clear"}, "yes", "-yes", "maybe")
	add([]string{"len"}, "q", "-q", "loud")
	bench := []string{"bench", "-ops", "10"}
	add(bench, "ttl", "-ttl", ttlValues...)
	add(bench, "mix", "-mix",
		"get=9223372036854775807,set=9223372036854775807", // overflowed the sum
		"get=4611686018427387904,set=4611686018427387904",
		"get=1000001", "get=-1", "get=0,set=0", "", ",", "fetch=1", "get=1,get=2", "get=0,get=1",
		"get", "get=1;set=1", "get=0x10", "get=1.5")
	add(bench, "workers", "-workers", "0", "-1", "1025", "9223372036854775807", "99999999999999999999", "1e3", "")
	add(bench, "keyspace", "-keyspace", "0", "-1", "1000001", "9223372036854775807", "many")
	add(bench, "ops", "-ops", "-1", "1000000000001", "9223372036854775807", "99999999999999999999", "1e6")
	add(bench, "duration", "-duration", "0", "0s", "-1s", "24h0m0.000000001s", "25h", "9999999h", "1e300s", "NaN", "", "10")
	add(bench, "value-size", "-value-size", "0", "-1", "1073741825", "2GiB", "9999999999999GiB", "99999999999999999999", "1.5KiB", "NaN", "1 TiB", "")
	add(bench, "seed", "-seed", "-1", "18446744073709551616", "x")
	add(bench, "raw", "-raw", "maybe")
	add(bench, "yes", "-yes", "perhaps")
	for _, c := range cases {
		r := cli(t, "", append([]string{"-url", u}, c.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) || !strings.HasPrefix(r.stderr, "blobcache: ") || r.stdout != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and a message naming %s", c.args, r.code, r.stdout, r.stderr, c.want)
		}
	}
	if left := filesIn(t, dir); len(left) > 0 {
		t.Errorf("refused commands wrote %v", left)
	}
	// The bounds themselves are accepted.
	for _, args := range [][]string{
		{"set", "-ttl", "2562047h", "k", "v"},
		{"set", "-ttl", "9223372036", "k", "v"}, // seconds, just below the limit
		{"set", "-ttl", "1ns", "k", "v"},
		{"set", "-ttl", "0.000000001", "k", "v"},
		{"set", "-ttl", "none", "k", "v"},
		{"stats", "-concurrency", "1024"},
		{"stats", "-concurrency", "1"},
		{"bench", "-ops", "1", "-workers", "1024", "-keyspace", "1", "-mix", "get=1000000,set=1000000", "-duration", "24h", "-value-size", "1", "-raw=false"},
	} {
		r := cli(t, "", append([]string{"-url", u}, args...)...)
		r.want(t, 0, "*")
	}
}

// TestSetStdinIsBounded: set reads standard input only up to the largest
// value it may store, and stores nothing when there is more.
func TestSetStdinIsBounded(t *testing.T) {
	u := fileURL(t.TempDir(), "location=in&max_value_size=10")
	r := cli(t, "0123456789X", "-url", u, "set", "big")
	if r.code != exitError || !strings.Contains(r.stderr, "larger than 10 bytes") {
		t.Errorf("set of 11 bytes from stdin: exit %d, stderr %q; want 1 and a refusal", r.code, r.stderr)
	}
	cli(t, "", "-url", u, "has", "big").want(t, 1, "")
	cli(t, "0123456789", "-url", u, "set", "fits").want(t, 0, "")
	cli(t, "", "-url", u, "get", "fits").want(t, 0, "0123456789")
}

// TestParseTTL: what -ttl accepts, exactly.
func TestParseTTL(t *testing.T) {
	for s, want := range map[string]time.Duration{
		"":           cache.DefaultTTL,
		"none":       cache.NoExpiry,
		"NEVER":      cache.NoExpiry,
		"300":        300 * time.Second,
		"0.3":        300 * time.Millisecond, // rounded, not truncated to 299.999999ms
		"1e-9":       time.Nanosecond,
		"90s":        90 * time.Second,
		"1h30m":      90 * time.Minute,
		"2562047h":   2562047 * time.Hour,
		"9223372036": 9223372036 * time.Second,
	} {
		if got, err := parseTTL(s); err != nil || got != want {
			t.Errorf("parseTTL(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
}

// entryHex is a 40-digit lower-case hex name part, as an entry's.
const entryHex = "0123456789abcdef0123456789abcdef01234567"

// nonEntries are objects planted in a store that are not entries of the
// caches at "cache" or at the root: a file beside the entries, names that
// are almost entry names, and objects below an entry's name.
var nonEntries = []string{
	"cache/README",
	"cache/" + strings.ToUpper(entryHex),
	"cache/" + entryHex[:39],
	"cache/" + entryHex + "0",
	"cache/" + entryHex + "/x",
	"cache/" + entryHex + ".bak",
	"cache/sub/" + entryHex,
	"notes.txt",
	entryHex + ".bak",
	strings.ToUpper(entryHex),
	entryHex + "/y",
}

// TestOnlyEntriesAreTheCaches: len, stats, cull and clear count, read and
// delete only the objects named as the URL's cache's entries.
func TestOnlyEntriesAreTheCaches(t *testing.T) {
	for _, loc := range []string{"cache", ""} {
		t.Run("location="+loc, func(t *testing.T) {
			dir := t.TempDir()
			root := fileURL(dir, "")
			query := "max_entries=0"
			if loc != "" {
				query = "location=" + loc + "&" + query
			}
			base := fileURL(dir, query)
			c := openCache(t, base)
			planted := map[string][]byte{}
			for _, n := range nonEntries {
				// Some of them look like entries inside, expired ones.
				planted[n] = entryBytes(time.Now().Add(-time.Hour), []byte("not the cache's"))
			}
			writeObjects(t, c.Driver(), planted)
			var size int64
			for i := range 3 {
				v := fmt.Sprint("value ", i)
				cli(t, "", "-url", base, "set", "-ttl", "1h", fmt.Sprint("k", i), v).want(t, 0, "")
				size += int64(16 + len(v))
			}

			cli(t, "", "-url", base, "len").want(t, 0, "3\n")

			r := cli(t, "", "-url", base, "stats")
			r.want(t, 0, "*")
			f := statsFields(t, r.stdout)
			for k, want := range map[string]string{
				"entries":     "3",
				"bytes":       fmt.Sprintf("%d (%s)", size, formatBytes(size)),
				"expired":     "0",
				"not entries": "0",
				"requests":    "1 LIST, 3 GET (header reads), 0 PUT, 0 DELETE, 0 batch DELETE (4 in all)",
			} {
				if f[k] != want {
					t.Errorf("stats %s = %q, want %q\n%s", k, f[k], want, r.stdout)
				}
			}
			r = cli(t, "", "-url", base, "stats", "-headers=false")
			r.want(t, 0, "*")
			if f := statsFields(t, r.stdout); f["entries"] != "3" {
				t.Errorf("stats -headers=false: entries %q, want 3", f["entries"])
			}

			// The refusal and the count it states are the entries only.
			r = cli(t, "", "-url", base, "clear")
			if r.code != 1 || !strings.Contains(r.stderr, "refusing to delete 3 entries") {
				t.Errorf("clear without -yes: exit %d, stderr %q; want a refusal to delete 3 entries", r.code, r.stderr)
			}
			cli(t, "", "-url", base+"&cull_frequency=0", "cull").want(t, 0, "culled 3 entries\n")
			for i := range 3 {
				cli(t, "", "-url", base, "set", fmt.Sprint("k", i), "again").want(t, 0, "")
			}
			cli(t, "", "-url", base, "clear", "-yes").want(t, 0, fmt.Sprintf("deleted 3 entries (%s)\n", formatBytes(3*(16+5))))
			cli(t, "", "-url", base, "clear", "-yes").want(t, 0, "*")
			cli(t, "", "-url", base, "len").want(t, 0, "0\n")

			left := storeObjects(t, root)
			sort.Strings(left)
			want := append([]string{}, nonEntries...)
			sort.Strings(want)
			if strings.Join(left, "\n") != strings.Join(want, "\n") {
				t.Errorf("the store holds\n%s\nwant exactly the planted non-entries\n%s", strings.Join(left, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// faultDriver is a store that breaks midway: writes start failing, a read
// panics, or the run's context is cancelled after a number of writes. Its
// deletes honour their context, as a networked store's do: a cleanup with
// the cancelled context would fail.
type faultDriver struct {
	driver.Driver
	writes, reads atomic.Int64
	failWrite     func(name string, n int64) bool
	panicRead     func(n int64) bool
	onWrite       func(n int64)
}

var errWriteRefused = errors.New("faultDriver: write refused")

// Write implements driver.Driver.
func (d *faultDriver) Write(ctx context.Context, name string, body io.Reader, opts *driver.WriteOptions) error {
	n := d.writes.Add(1)
	if d.onWrite != nil {
		d.onWrite(n)
	}
	if d.failWrite != nil && d.failWrite(name, n) {
		return errWriteRefused
	}
	return d.Driver.Write(ctx, name, body, opts)
}

// Read implements driver.Driver.
func (d *faultDriver) Read(ctx context.Context, name string, off, n int64) ([]byte, driver.Attributes, error) {
	if d.panicRead != nil && d.panicRead(d.reads.Add(1)) {
		panic("faultDriver: read panics")
	}
	return d.Driver.Read(ctx, name, off, n)
}

// Delete implements driver.Driver.
func (d *faultDriver) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.Driver.Delete(ctx, name)
}

// openMu serializes the tests that replace openURL.
var openMu sync.Mutex

// withFaults makes the CLI's caches store through d wrapped around the URL's
// own driver, for the rest of the test.
func withFaults(t *testing.T, d *faultDriver) {
	openMu.Lock()
	old := openURL
	openURL = func(ctx context.Context, rawURL string) (*cache.Cache, error) {
		c, err := cache.Open(ctx, rawURL)
		if err != nil {
			return nil, err
		}
		d.Driver = c.Driver()
		return cache.New(d, cache.WithLocation(c.Location()), cache.WithMaxEntries(0))
	}
	t.Cleanup(func() {
		openURL = old
		openMu.Unlock()
	})
}

// TestBenchFailureCleansUp: whatever makes bench fail midway, it deletes
// every object it wrote (loadgen-N under the location, loadgen-raw/<sha1> at
// the root) before it exits, and says what failed.
func TestBenchFailureCleansUp(t *testing.T) {
	const keyspace = 30 // each prefill: 30 writes (the mix has no incr)
	isRaw := func(name string) bool { return strings.HasPrefix(name, "loadgen-raw/") }
	for _, tc := range []struct {
		name    string
		rawOnly bool
		setup   func(d *faultDriver, cancel context.CancelFunc)
		want    string // in stderr
	}{
		{"cache prefill write fails", false, func(d *faultDriver, _ context.CancelFunc) {
			d.failWrite = func(_ string, n int64) bool { return n > 10 }
		}, "faultDriver: write refused"},
		{"cache run write fails", false, func(d *faultDriver, _ context.CancelFunc) {
			d.failWrite = func(name string, n int64) bool { return !isRaw(name) && n > 2*keyspace+4 }
		}, "cache set of key"},
		{"raw prefill write fails", true, func(d *faultDriver, _ context.CancelFunc) {
			d.failWrite = func(name string, n int64) bool { return isRaw(name) && n > keyspace+10 }
		}, "prefill of the raw driver"},
		{"raw run write fails", true, func(d *faultDriver, _ context.CancelFunc) {
			d.failWrite = func(name string, n int64) bool { return isRaw(name) && n > 2*keyspace+4 }
		}, "raw driver set of key"},
		{"worker panics", false, func(d *faultDriver, _ context.CancelFunc) {
			d.panicRead = func(n int64) bool { return n == 9 }
		}, "panic: faultDriver: read panics"},
		{"interrupted in the prefill", false, func(d *faultDriver, cancel context.CancelFunc) {
			d.onWrite = func(n int64) {
				if n == 12 {
					cancel()
				}
			}
		}, "blobcache: interrupted: bench: "},
		{"interrupted in the run", false, func(d *faultDriver, cancel context.CancelFunc) {
			d.onWrite = func(n int64) {
				if n == 2*keyspace+4 {
					cancel()
				}
			}
		}, "blobcache: interrupted: bench: "},
	} {
		for _, raw := range []bool{true, false} {
			if tc.rawOnly && !raw {
				continue
			}
			for name, st := range benchStores(t) {
				t.Run(fmt.Sprintf("%s/raw=%v/%s", tc.name, raw, name), func(t *testing.T) {
					d := &faultDriver{}
					withFaults(t, d)
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					tc.setup(d, cancel)
					var out, errOut strings.Builder
					code := 0
					func() {
						defer func() {
							if r := recover(); r != nil {
								t.Errorf("bench panicked: %v", r)
							}
						}()
						code = run(ctx, []string{"-url", withQuery(st.root, "location=bench"), "bench",
							"-duration", "1h", "-ops", "2000", "-workers", "3", "-keyspace", fmt.Sprint(keyspace),
							"-mix", "get=1,set=1", fmt.Sprintf("-raw=%v", raw)}, strings.NewReader(""), &out, &errOut)
					}()
					if code != exitError || !strings.Contains(errOut.String(), tc.want) {
						t.Errorf("exit %d, stderr %q; want 1 and %q", code, errOut.String(), tc.want)
					}
					if left := st.empty(t); len(left) > 0 {
						t.Errorf("the failed bench left %d objects: %v", len(left), left)
					}
				})
			}
		}
	}
}
