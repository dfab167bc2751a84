package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
)

// result is what one run of the CLI did.
type result struct {
	code           int
	stdout, stderr string
}

// cli runs the command line in-process with stdin as standard input.
func cli(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(t.Context(), args, strings.NewReader(stdin), &out, &errOut)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// want checks the exit code and that stdout equals wantOut (when not
// "*"), reporting the whole result otherwise.
func (r result) want(t *testing.T, code int, wantOut string) {
	t.Helper()
	if r.code != code || (wantOut != "*" && r.stdout != wantOut) {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, stdout %q", r.code, r.stdout, r.stderr, code, wantOut)
	}
}

// fileURL is a file:// cache URL for dir with the query.
func fileURL(dir, query string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir), RawQuery: query}).String()
}

// fakeTerminal makes isTerminal true for exactly the given streams during
// the test.
func fakeTerminal(t *testing.T, streams ...any) {
	old := isTerminal
	isTerminal = func(f any) bool {
		for _, s := range streams {
			if f == s {
				return true
			}
		}
		return false
	}
	t.Cleanup(func() { isTerminal = old })
}

// entryBytes is a stored entry in the README's format: the 16-byte header
// and the value.
func entryBytes(expiry time.Time, value []byte) []byte {
	var exp int64
	if !expiry.IsZero() {
		exp = expiry.UnixNano()
	}
	b := append([]byte("BCE1"), 1, 0)
	b = binary.BigEndian.AppendUint16(b, 16)
	b = binary.BigEndian.AppendUint64(b, uint64(exp))
	return append(b, value...)
}

// writeObjects writes objects through d, 32 at a time.
func writeObjects(t *testing.T, d driver.Driver, objects map[string][]byte) {
	t.Helper()
	type item struct {
		name string
		data []byte
	}
	ch := make(chan item)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 32 {
		wg.Go(func() {
			for it := range ch {
				if err := d.Write(t.Context(), it.name, bytes.NewReader(it.data), &driver.WriteOptions{}); err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
				}
			}
		})
	}
	for name, data := range objects {
		ch <- item{name, data}
	}
	close(ch)
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("writing %d objects: %v", len(objects), firstErr)
	}
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// openCache opens the cache a test's CLI runs use, to check what they did.
func openCache(t *testing.T, rawURL string) *cache.Cache {
	t.Helper()
	c, err := cache.Open(t.Context(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// statsFields parses stats output into its "name: value" lines.
func statsFields(t *testing.T, out string) map[string]string {
	t.Helper()
	fields := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("stats line %q has no colon", line)
		}
		fields[k] = strings.TrimSpace(v)
	}
	return fields
}

func TestHelpDocumentsEverything(t *testing.T) {
	r := cli(t, "", "-h")
	r.want(t, 0, "*")
	for _, want := range []string{
		"get KEY", "set [-ttl D] KEY [VALUE]", "delete KEY...", "has KEY", "len", "clear [-yes]", "cull", "stats",
		"bench [flags]", "-workers N", "-duration D", "-ops N", "-keyspace N", "-value-size SIZE", "-mix MIX",
		"-raw", "-seed N", "(default get=90,set=10)", "throughput ratio cache/raw",
		"-url URL", "-q", "-ttl D", "-yes", "-concurrency N", "-headers", "BLOBCACHE_URL",
		"Exit status", "like grep", "2  a usage error", "standard error when it is a\nterminal",
		"Schemes this binary opens: " + strings.Join(driver.Schemes(), ", ") + ".",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("-h does not mention %q", want)
		}
	}
	if r.stderr != "" {
		t.Errorf("-h wrote to stderr: %q", r.stderr)
	}
	r = cli(t, "", "help", "stats")
	r.want(t, 0, "*")
	for _, want := range []string{"requests     LIST pages and GETs (the header reads)", "not the application's"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help stats does not say %q:\n%s", want, r.stdout)
		}
	}
	for _, args := range [][]string{{"help", "clear"}, {"clear", "-h"}, {"-url", "mem://", "clear", "--help"}} {
		r := cli(t, "", args...)
		r.want(t, 0, "*")
		if !strings.Contains(r.stdout, "-yes") || !strings.Contains(r.stdout, "Usage: blobcache") {
			t.Errorf("%q: command help lacks -yes or the usage line:\n%s", args, r.stdout)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	t.Setenv(envURL, "")
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"-bogus", "len"}, "flag provided but not defined: -bogus"},
		{[]string{"-url", "mem://", "get"}, "get: missing argument"},
		{[]string{"-url", "mem://", "get", "a", "b"}, "get: too many arguments"},
		{[]string{"-url", "mem://", "len", "extra"}, "len: too many arguments"},
		{[]string{"len"}, "no cache URL: pass -url URL or set BLOBCACHE_URL"},
		{[]string{"-url", "mem://?max_entires=3", "len"}, `unknown option "max_entires" (did you mean "max_entries"?)`},
		{[]string{"-url", "nowhere", "len"}, "has no scheme"},
		{[]string{"-url", "mem://", "set", "-ttl", "soon", "k", "v"}, `-ttl "soon"`},
		{[]string{"-url", "mem://", "set", "-ttl", "-5", "k", "v"}, "-ttl -5"},
		{[]string{"-url", "mem://", "stats", "-concurrency", "0"}, "-concurrency 0"},
		{[]string{"help", "nope"}, `help: unknown command "nope"`},
	} {
		r := cli(t, "", tc.args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "blobcache: ") || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and a message containing %q", tc.args, r.code, r.stdout, r.stderr, tc.want)
		}
	}
}

func TestCommands(t *testing.T) {
	for name, base := range map[string]string{
		"mem":  "mem://" + strings.ReplaceAll(t.Name(), "/", "-") + "?location=cli",
		"file": fileURL(t.TempDir(), "location=cli"),
	} {
		t.Run(name, func(t *testing.T) {
			u := []string{"-url", base}
			do := func(stdin string, args ...string) result {
				t.Helper()
				return cli(t, stdin, append(u, args...)...)
			}
			do("", "len").want(t, 0, "0\n")
			do("", "set", "greeting", "hello").want(t, 0, "")
			do("", "get", "greeting").want(t, 0, "hello")
			do("", "has", "greeting").want(t, 0, "")

			// A miss is exit 1 with a message, like grep finding nothing.
			for _, cmd := range []string{"get", "has"} {
				r := do("", cmd, "absent")
				r.want(t, 1, "")
				if want := "blobcache: " + cmd + `: "absent": no live entry`; !strings.HasPrefix(r.stderr, want) {
					t.Errorf("%s miss: stderr %q, want it to start with %q", cmd, r.stderr, want)
				}
			}

			// Values from standard input, byte for byte; "-" too.
			binary := "line 1\nline 2\x00\xff\n"
			do(binary, "set", "bin").want(t, 0, "")
			do("", "get", "bin").want(t, 0, binary)
			do("dash", "set", "d", "-").want(t, 0, "")
			do("", "get", "d").want(t, 0, "dash")
			// Flags may also follow the command.
			cli(t, "", "set", "-url", base, "-ttl", "none", "forever", "x").want(t, 0, "")

			// -ttl: an entry expires.
			do("", "set", "-ttl", "1s", "brief", "soon gone").want(t, 0, "")
			do("", "get", "brief").want(t, 0, "soon gone")
			time.Sleep(1100 * time.Millisecond)
			do("", "get", "brief").want(t, 1, "")

			do("", "len").want(t, 0, "4\n") // greeting, bin, d, forever
			do("", "delete", "greeting").want(t, 0, "")
			do("", "delete", "greeting").want(t, 0, "") // absent: not an error
			do("", "has", "greeting").want(t, 1, "")
			do("", "delete", "bin", "d", "never-there").want(t, 0, "")
			do("", "len").want(t, 0, "1\n")

			// The CLI sees what an application sees with the same URL.
			c := openCache(t, base)
			if v, err := c.Get(t.Context(), "forever"); err != nil || string(v) != "x" {
				t.Errorf("application Get(forever) = %q, %v", v, err)
			}
			if err := c.Set(t.Context(), "from-app", []byte("app value"), cache.DefaultTTL); err != nil {
				t.Fatal(err)
			}
			do("", "get", "from-app").want(t, 0, "app value")

			// cull with cull_frequency=2 removes every second entry.
			for i := range 8 {
				do("", "set", fmt.Sprint("c", i), "v").want(t, 0, "")
			}
			do("", "len").want(t, 0, "10\n")
			cli(t, "", "-url", base+"&cull_frequency=2", "cull").want(t, 0, "culled 5 entries\n")
			do("", "len").want(t, 0, "5\n")
		})
	}
}

func TestURLFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(envURL, fileURL(dir, "location=env"))
	cli(t, "", "set", "k", "from env").want(t, 0, "")
	cli(t, "", "get", "k").want(t, 0, "from env")
	// -url wins over the environment.
	cli(t, "", "-url", fileURL(dir, "location=flag"), "get", "k").want(t, 1, "")
	cli(t, "", "-url", fileURL(dir, "location=env"), "get", "k").want(t, 0, "from env")
}

func TestGetAddsNewlineOnATerminal(t *testing.T) {
	var out bytes.Buffer
	fakeTerminal(t, &out)
	u := "mem://" + t.Name()
	cli(t, "", "-url", u, "set", "k", "no newline").want(t, 0, "")
	if code := run(t.Context(), []string{"-url", u, "get", "k"}, strings.NewReader(""), &out, &bytes.Buffer{}); code != 0 || out.String() != "no newline\n" {
		t.Errorf("get on a terminal: exit %d, %q; want the value and a newline", code, out.String())
	}
}

// setupClear makes a cache location with n entries and decoys beside it.
func setupClear(t *testing.T, n int) (base string, c *cache.Cache) {
	t.Helper()
	dir := t.TempDir()
	base = fileURL(dir, "location=cache")
	c = openCache(t, base)
	objs := map[string][]byte{
		"cache2/x": []byte("decoy"), "cachex": []byte("decoy"), "other/cache/y": []byte("decoy"),
	}
	for i := range n {
		objs[c.ObjectName(fmt.Sprint("k", i))] = entryBytes(time.Time{}, []byte("v"))
	}
	writeObjects(t, c.Driver(), objs)
	return base, c
}

func wantLen(t *testing.T, c *cache.Cache, want int) {
	t.Helper()
	if n, err := c.Len(t.Context()); err != nil || n != want {
		t.Fatalf("Len = %d, %v; want %d", n, err, want)
	}
}

func TestClearConfirmation(t *testing.T) {
	base, c := setupClear(t, 5)

	// No terminal to ask on and no -yes: refused, nothing deleted.
	r := cli(t, "y\n", "-url", base, "clear")
	r.want(t, 1, "")
	if !strings.Contains(r.stderr, "blobcache: clear: refusing to delete 5 entries") || !strings.Contains(r.stderr, "pass -yes") {
		t.Errorf("stderr %q: want a refusal naming -yes", r.stderr)
	}
	wantLen(t, c, 5)

	// On a terminal: the question on stderr, "n" (or nothing) aborts.
	stdin := strings.NewReader("n\n")
	var out, errOut bytes.Buffer
	fakeTerminal(t, stdin)
	if code := run(t.Context(), []string{"-url", base, "clear"}, stdin, &out, &errOut); code != 1 {
		t.Errorf("clear answered n: exit %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), `Delete 5 entries (85 B) under "cache/" in cache(`) ||
		!strings.Contains(errOut.String(), "? [y/N] ") || !strings.Contains(errOut.String(), "aborted: nothing deleted") {
		t.Errorf("stderr %q: want the question and the abort", errOut.String())
	}
	wantLen(t, c, 5)

	// "y" deletes the location's entries and nothing else.
	stdin = strings.NewReader("y\n")
	out.Reset()
	errOut.Reset()
	fakeTerminal(t, stdin)
	if code := run(t.Context(), []string{"-url", base, "clear"}, stdin, &out, &errOut); code != 0 || out.String() != "deleted 5 entries (85 B)\n" {
		t.Errorf("clear answered y: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	wantLen(t, c, 0)
	for _, decoy := range []string{"cache2/x", "cachex", "other/cache/y"} {
		if _, _, err := c.Driver().Read(t.Context(), decoy, 0, -1); err != nil {
			t.Errorf("clear touched %q outside the location: %v", decoy, err)
		}
	}
	r = cli(t, "", "-url", base, "clear", "-yes")
	r.want(t, 0, "*")
	if !strings.HasPrefix(r.stdout, `nothing to clear: no entries under "cache/" in cache(file://`) {
		t.Errorf("clear of an empty location: stdout %q", r.stdout)
	}
}

func TestClearWithoutLocationWarns(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, fileURL(dir, ""))
	writeObjects(t, c.Driver(), map[string][]byte{
		"a": []byte("1"), "b/c": []byte("2"), // not entries: left alone
		c.ObjectName("x"): entryBytes(time.Time{}, []byte("x")),
		c.ObjectName("y"): entryBytes(time.Time{}, []byte("y")),
	})
	stdin := strings.NewReader("yes\n")
	fakeTerminal(t, stdin)
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"-url", fileURL(dir, ""), "clear"}, stdin, &out, &errOut); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "Delete 2 entries (34 B) in cache(") || !strings.Contains(errOut.String(), "EVERY entry at the root of the store") {
		t.Errorf("the question %q does not warn that every root entry goes", errOut.String())
	}
	if out.String() != "deleted 2 entries (34 B)\n" {
		t.Errorf("stdout %q", out.String())
	}
	wantLen(t, c, 0)
	if left := storeObjects(t, fileURL(dir, "")); strings.Join(left, " ") != "a b/c" {
		t.Errorf("the store holds %v, want the two objects that are not entries", left)
	}
}

func TestStats(t *testing.T) {
	dir := t.TempDir()
	base := fileURL(dir, "location=s")
	c := openCache(t, base)
	now := time.Now()
	objs := map[string][]byte{
		// Named as entries, but with no entry's header: "not entries".
		c.ObjectName("foreign"): []byte("not an entry at all"),
		c.ObjectName("short"):   []byte("BC"),
		"outside/obj":           entryBytes(now.Add(-time.Hour), nil), // not under the location
		// Under the location, but not named as entries: never counted nor
		// read, even when they hold an entry's bytes.
		"s/README":                     entryBytes(now.Add(-time.Hour), nil),
		"s/" + strings.Repeat("A", 40): entryBytes(now.Add(-time.Hour), nil),
		c.ObjectName("k") + ".bak":     entryBytes(now.Add(-time.Hour), nil),
		c.ObjectName("k") + "/x":       entryBytes(now.Add(-time.Hour), nil),
	}
	for i := range 7 {
		objs[c.ObjectName(fmt.Sprint("expired", i))] = entryBytes(now.Add(-time.Minute), []byte("old"))
	}
	for i := range 4 {
		objs[c.ObjectName(fmt.Sprint("forever", i))] = entryBytes(time.Time{}, []byte("kept"))
	}
	for i := range 5 {
		objs[c.ObjectName(fmt.Sprint("live", i))] = entryBytes(now.Add(time.Hour), []byte("fresh"))
	}
	writeObjects(t, c.Driver(), objs)
	// Gzip-framed entries count too.
	gz := openCache(t, base+"&is_gzipped=true")
	if err := gz.Set(t.Context(), "gz-live", bytes.Repeat([]byte("z"), 1000), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := gz.Set(t.Context(), "gz-forever", []byte("z"), cache.NoExpiry); err != nil {
		t.Fatal(err)
	}
	// So do signed ones, plain and gzip (stats needs no key: it reads only
	// the expiry).
	signed := openCache(t, base+"&signing_key=k1")
	if err := signed.Set(t.Context(), "signed-forever", []byte("s"), cache.NoExpiry); err != nil {
		t.Fatal(err)
	}
	signedGz := openCache(t, base+"&signing_key=k1&is_gzipped=true")
	if err := signedGz.Set(t.Context(), "signed-gz-live", []byte("s"), time.Hour); err != nil {
		t.Fatal(err)
	}
	// An entry past its expiry within its grace period (format version 3)
	// is expired, and stale.
	graced := openCache(t, base+"&stale_grace=1h")
	if err := graced.Set(t.Context(), "stale", []byte("s"), time.Nanosecond); err != nil {
		t.Fatal(err)
	}

	var wantBytes int64
	page, err := c.Driver().List(t.Context(), &driver.ListOptions{Prefix: "s/"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range page.Objects {
		if c.IsEntryName(o.Name) {
			wantBytes += o.Size
		}
	}

	r := cli(t, "", "-url", base, "stats")
	r.want(t, 0, "*")
	f := statsFields(t, r.stdout)
	for k, want := range map[string]string{
		"entries":     "23",
		"bytes":       fmt.Sprintf("%d (%s)", wantBytes, formatBytes(wantBytes)),
		"expired":     "8",
		"stale":       "1 (of the expired, within their grace period)",
		"no expiry":   "6",
		"not entries": "2",
		"location":    "s/",
	} {
		if f[k] != want {
			t.Errorf("stats %s = %q, want %q\n%s", k, f[k], want, r.stdout)
		}
	}
	ago := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d.* \(\d+s ago\)$`)
	for _, k := range []string{"oldest", "newest"} {
		if !ago.MatchString(f[k]) {
			t.Errorf("stats %s = %q, want a time and its age", k, f[k])
		}
	}
	// One listing page, a header read per object, nothing written.
	if want := "1 LIST, 23 GET (header reads), 0 PUT, 0 DELETE, 0 batch DELETE (24 in all)"; f["requests"] != want {
		t.Errorf("stats requests = %q, want %q", f["requests"], want)
	}
	// Stats changes nothing: the expired entries are still there.
	wantLen(t, c, 23)

	// -headers=false only lists.
	r = cli(t, "", "-url", base, "stats", "-headers=false")
	r.want(t, 0, "*")
	f = statsFields(t, r.stdout)
	if f["entries"] != "23" || f["expired"] != "" || !strings.HasPrefix(f["requests"], "1 LIST, 0 GET (header reads), ") {
		t.Errorf("stats -headers=false: entries %q, expired %q, requests %q; want 23, no expired line, 1 LIST and no GET", f["entries"], f["expired"], f["requests"])
	}

	// An empty location.
	r = cli(t, "", "-url", fileURL(dir, "location=empty"), "stats")
	r.want(t, 0, "*")
	f = statsFields(t, r.stdout)
	if f["entries"] != "0" || f["oldest"] != "-" || f["bytes"] != "0 (0 B)" || f["expired"] != "0" ||
		f["requests"] != "1 LIST, 0 GET (header reads), 0 PUT, 0 DELETE, 0 batch DELETE (1 in all)" {
		t.Errorf("stats of an empty location:\n%s", r.stdout)
	}
}

// TestStatsCounters checks the counters block of stats after entries set
// through the CLI: exact requests, the header bytes read, and no cache call.
func TestStatsCounters(t *testing.T) {
	for name, base := range map[string]string{
		"mem":  "mem://" + strings.ReplaceAll(t.Name(), "/", "-") + "?location=app",
		"file": fileURL(t.TempDir(), "location=app"),
	} {
		t.Run(name, func(t *testing.T) {
			for _, k := range []string{"a", "b", "c"} {
				cli(t, "", "-url", base, "set", "-ttl", "1h", k, "value "+k).want(t, 0, "")
			}
			r := cli(t, "", "-url", base, "stats")
			r.want(t, 0, "*")
			f := statsFields(t, r.stdout)
			// Each entry is a 16-byte header and a 7-byte value, shorter than
			// the 64-byte header read: the reads fetch every byte.
			for k, want := range map[string]string{
				"entries":     "3",
				"bytes":       "69 (69 B)",
				"expired":     "0",
				"counters":    "this blobcache stats run's own, not the application's (see 'blobcache help stats')",
				"requests":    "1 LIST, 3 GET (header reads), 0 PUT, 0 DELETE, 0 batch DELETE (4 in all)",
				"transferred": "69 bytes read (69 B), 0 bytes written (0 B)",
				"lookups":     "0 hits, 0 misses",
				"calls":       "0 sets, 0 adds (0 added), 0 deletes, 0 touches, 0 incrs",
				"culls":       "0 (0 entries culled), 0 clears",
				"dropped":     "0 expired, 0 corrupt, 0 forged; 0 retries",
				"errors":      "0",
			} {
				if f[k] != want {
					t.Errorf("stats %s = %q, want %q\n%s", k, f[k], want, r.stdout)
				}
			}
			// The block comes last, after what stats printed before.
			if i, j := strings.Index(r.stdout, "took:"), strings.Index(r.stdout, "counters:"); i < 0 || j < i {
				t.Errorf("the counters do not follow the scan's results:\n%s", r.stdout)
			}
		})
	}
}

func TestProgressOnlyOnATerminal(t *testing.T) {
	base, _ := setupClear(t, 2500)

	// Not a terminal: results only, nothing on stderr.
	r := cli(t, "", "-url", base, "stats")
	r.want(t, 0, "*")
	if r.stderr != "" {
		t.Errorf("stats with stderr not a terminal drew %q", r.stderr)
	}

	// A terminal: progress on stderr, results still alone on stdout.
	var out, errOut bytes.Buffer
	fakeTerminal(t, &errOut)
	if code := run(t.Context(), []string{"-url", base, "stats"}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("stats: exit %d, stderr %q", code, errOut.String())
	}
	for _, want := range []string{"listing", "2500", "reading headers", "100%", "2500/2500"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("progress on stderr lacks %q: %q", want, errOut.String())
		}
	}
	if f := statsFields(t, out.String()); f["entries"] != "2500" || f["requests"] != "3 LIST, 2500 GET (header reads), 0 PUT, 0 DELETE, 0 batch DELETE (2503 in all)" {
		t.Errorf("stdout %q", out.String())
	}

	// -q: quiet even on a terminal.
	out.Reset()
	errOut.Reset()
	if code := run(t.Context(), []string{"-q", "-url", base, "stats"}, strings.NewReader(""), &out, &errOut); code != 0 || errOut.Len() != 0 {
		t.Errorf("stats -q: exit %d, stderr %q; want nothing drawn", code, errOut.String())
	}

	out.Reset()
	errOut.Reset()
	if code := run(t.Context(), []string{"-url", base, "clear", "-yes"}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("clear: exit %d, stderr %q", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "deleting") || !strings.Contains(errOut.String(), "2500/2500") {
		t.Errorf("clear progress lacks the deleting bar: %q", errOut.String())
	}
	if out.String() != "deleted 2500 entries (42.5 kB)\n" {
		t.Errorf("clear stdout %q", out.String())
	}
}

func TestInterrupted(t *testing.T) {
	base, _ := setupClear(t, 10)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"-url", base, "stats"}, strings.NewReader(""), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "interrupted") {
		t.Errorf("stats with a cancelled context: exit %d, stderr %q; want 1 and \"interrupted\"", code, errOut.String())
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 1234567: "1.2 MB", 5 << 40: "5.5 TB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestPurge: purge deletes the expired entries and an undecodable object
// at an entry's name, keeps live and stale entries and every other object,
// and says so.
func TestPurge(t *testing.T) {
	dir := t.TempDir()
	base := fileURL(dir, "location=p&max_entries=0")
	c := openCache(t, base)
	now := time.Now()
	objs := map[string][]byte{
		c.ObjectName("corrupt"): []byte("not an entry"),
		"p/README":              entryBytes(now.Add(-time.Hour), nil), // not named as an entry
		"outside/obj":           entryBytes(now.Add(-time.Hour), nil),
	}
	for i := range 6 {
		objs[c.ObjectName(fmt.Sprint("expired", i))] = entryBytes(now.Add(-time.Minute), []byte("old"))
	}
	for i := range 3 {
		objs[c.ObjectName(fmt.Sprint("live", i))] = entryBytes(now.Add(time.Hour), []byte("fresh"))
	}
	writeObjects(t, c.Driver(), objs)
	graced := openCache(t, base+"&stale_grace=1h")
	if err := graced.Set(t.Context(), "stale", []byte("s"), time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	r := cli(t, "", "-url", base, "purge", "-concurrency", "2")
	r.want(t, 0, "examined 11 entries: deleted 7 dead, kept 3 live and 1 stale\n")
	wantLen(t, c, 4)
	for _, name := range []string{"p/README", "outside/obj"} {
		if _, _, err := c.Driver().Read(t.Context(), name, 0, -1); err != nil {
			t.Errorf("purge touched %q: %v", name, err)
		}
	}
	cli(t, "", "-url", base, "purge", "-concurrency", "0").want(t, 2, "")
	cli(t, "", "-url", base, "purge").want(t, 0, "examined 4 entries: deleted 0 dead, kept 3 live and 1 stale\n")
}
