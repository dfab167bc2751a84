package main

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/blobcache/blobcache/driver"
)

// storeObjects lists every object of the store rawURL (a URL without a
// location) opens: what is left in it.
func storeObjects(t *testing.T, rawURL string) []string {
	t.Helper()
	c := openCache(t, rawURL)
	var names []string
	opts := &driver.ListOptions{}
	for {
		page, err := c.Driver().List(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Objects {
			names = append(names, o.Name)
		}
		if page.NextPageToken == "" {
			return names
		}
		opts.PageToken = page.NextPageToken
	}
}

// filesIn returns the paths under dir that are not the file driver's own
// (names starting with '.', such as its lock directory).
func filesIn(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// benchStore is a store the bench tests run on: root is its URL with no
// location; empty returns what is left in it, objects and (for a directory)
// files and directories other than the driver's own.
type benchStore struct {
	root  string
	empty func(t *testing.T) []string
}

// memStores numbers the mem:// stores of benchStores.
var memStores atomic.Int64

// benchStores are a mem:// store shared in the process and a directory.

func benchStores(t *testing.T) map[string]benchStore {
	dir := t.TempDir()
	// A mem:// store lives as long as the process: a new name per call, so
	// that -count=N starts empty too.
	mem := fmt.Sprintf("mem://%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), memStores.Add(1))
	return map[string]benchStore{
		"mem": {root: mem, empty: func(t *testing.T) []string { return storeObjects(t, mem) }},
		"file": {root: fileURL(dir, ""), empty: func(t *testing.T) []string {
			return append(storeObjects(t, fileURL(dir, "")), filesIn(t, dir)...)
		}},
	}
}

// withQuery adds query to a URL that has none.
func withQuery(u, query string) string { return u + "?" + query }

// reportLine returns the line of a bench report starting with prefix.
func reportLine(t *testing.T, out, prefix string) string {
	t.Helper()
	for line := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	t.Fatalf("no line starting with %q in:\n%s", prefix, out)
	return ""
}

func TestBench(t *testing.T) {
	for name, st := range benchStores(t) {
		t.Run(name, func(t *testing.T) {
			u := withQuery(st.root, "location=bench")

			// The default mix, with the raw comparison.
			r := cli(t, "", "-url", u, "bench", "-ops", "200", "-workers", "4", "-keyspace", "50", "-mix", "get=90,set=10")
			r.want(t, 0, "*")
			if r.stderr != "" {
				t.Errorf("stderr %q", r.stderr)
			}
			for _, want := range []string{
				"location:     bench/\n",
				"workload:     4 workers, 200 ops, keyspace 50, 1024-byte values, mix get=90,set=10, ttl none, seed ",
				"raw run:      the same workload on objects loadgen-raw/<sha1>",
				"throughput ratio cache/raw: ",
				"counters:     this process's cache (Stats): the cache run's prefill, run and cleanup; not the raw run\n",
			} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("output lacks %q:\n%s", want, r.stdout)
				}
			}
			summary := regexp.MustCompile(`^\d+ ops in \S+, \d+ ops/s, \d+\.\d{3} requests/op; latency p50 \S+ p99 \S+ p99\.9 \S+ max \S+$`)
			perOp := regexp.MustCompile(`^  (get|set) +\d+ ops +\d+\.\d\d% misses  p50 \S+ +p99 \S+ +p99\.9 \S+$`)
			for _, target := range []string{"cache: ", "raw driver: "} {
				line := reportLine(t, r.stdout, target)
				if !summary.MatchString(strings.TrimPrefix(line, target)) || !strings.Contains(line, " 200 ops in ") {
					t.Errorf("%s summary line %q", target, line)
				}
			}
			ops := 0
			for line := range strings.SplitSeq(r.stdout, "\n") {
				if perOp.MatchString(line) {
					ops++
				}
			}
			if ops != 4 { // get and set, on the cache and on the raw driver
				t.Errorf("%d per-operation lines, want 4:\n%s", ops, r.stdout)
			}
			if left := st.empty(t); len(left) > 0 {
				t.Errorf("bench left %v in the store", left)
			}

			// Gets only: one request each, on the cache and on the raw
			// store; the counters are exact.
			r = cli(t, "", "-url", u, "bench", "-ops", "200", "-workers", "4", "-keyspace", "50", "-mix", "get=1", "-seed", "7")
			r.want(t, 0, "*")
			for _, target := range []string{"cache: ", "raw driver: "} {
				if line := reportLine(t, r.stdout, target); !strings.Contains(line, " 200 ops in ") || !strings.Contains(line, ", 1.000 requests/op;") {
					t.Errorf("get-only %s line %q: want 200 ops at 1.000 requests/op", target, line)
				}
			}
			f := benchFields(r.stdout)
			for k, want := range map[string]string{
				"workload": "4 workers, 200 ops, keyspace 50, 1024-byte values, mix get=1, ttl none, seed 7",
				// The first prefill write lists the location; 200 gets; 50
				// prefill sets; the cleanup deletes 50 keys and 50 counter
				// keys in one batch.
				"requests":    "1 LIST, 200 GET, 50 PUT, 0 DELETE, 1 batch DELETE (252 in all)",
				"transferred": "208000 bytes read (208.0 kB), 52000 bytes written (52.0 kB)", // 1024 + 16-byte header
				"lookups":     "200 hits, 0 misses",
				"calls":       "50 sets, 0 adds (0 added), 100 deletes, 0 touches, 0 incrs",
				"culls":       "0 (0 entries culled), 0 clears",
				"errors":      "0",
			} {
				if f[k] != want {
					t.Errorf("get-only %s: %q, want %q\n%s", k, f[k], want, r.stdout)
				}
			}
			if left := st.empty(t); len(left) > 0 {
				t.Errorf("bench left %v in the store", left)
			}

			// The cache only: no raw run, and its keys are deleted too.
			r = cli(t, "", "-url", u, "bench", "-ops", "100", "-workers", "2", "-keyspace", "20", "-mix", "get=1,set=1,add=1,has=1,delete=1,incr=1", "-raw=false", "-value-size", "2KiB")
			r.want(t, 0, "*")
			for _, unwanted := range []string{"raw driver:", "throughput ratio", "raw run:"} {
				if strings.Contains(r.stdout, unwanted) {
					t.Errorf("-raw=false output has %q:\n%s", unwanted, r.stdout)
				}
			}
			if line := reportLine(t, r.stdout, "cache: "); !strings.Contains(line, " 100 ops in ") {
				t.Errorf("-raw=false: %q", line)
			}
			if f := benchFields(r.stdout); !strings.Contains(f["workload"], "2048-byte values") || f["errors"] != "0" {
				t.Errorf("-raw=false: workload %q, errors %q", f["workload"], f["errors"])
			}
			if left := st.empty(t); len(left) > 0 {
				t.Errorf("bench -raw=false left %v in the store", left)
			}
		})
	}
}

// benchFields parses the "name: value" lines of bench output (the report
// lines have colons too; the header and counters lines are what tests read).
func benchFields(out string) map[string]string {
	f := map[string]string{}
	for line := range strings.SplitSeq(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(k, " ") {
			f[k] = strings.TrimSpace(v)
		}
	}
	return f
}

func TestBenchLeavesOtherEntries(t *testing.T) {
	for name, st := range benchStores(t) {
		t.Run(name, func(t *testing.T) {
			u := withQuery(st.root, "location=app")
			cli(t, "", "-url", u, "set", "-ttl", "none", "user:1", "kept").want(t, 0, "")
			cli(t, "", "-url", withQuery(st.root, "location=other"), "set", "loadgen-1", "outside").want(t, 0, "")

			r := cli(t, "", "-url", u, "bench", "-ops", "50", "-workers", "2", "-keyspace", "10", "-raw=false")
			r.want(t, 0, "*")
			if want := `blobcache: bench: warning: the location "app/" already holds entries`; !strings.HasPrefix(r.stderr, want) {
				t.Errorf("stderr %q, want a warning starting %q", r.stderr, want)
			}
			cli(t, "", "-url", u, "get", "user:1").want(t, 0, "kept")
			cli(t, "", "-url", u, "len").want(t, 0, "1\n")
			cli(t, "", "-url", withQuery(st.root, "location=other"), "get", "loadgen-1").want(t, 0, "outside")
			if left := storeObjects(t, st.root); len(left) != 2 {
				t.Errorf("store holds %v; want only the two entries written before", left)
			}
		})
	}
}

func TestBenchWholeStoreNeedsYes(t *testing.T) {
	for name, st := range benchStores(t) {
		t.Run(name, func(t *testing.T) {
			r := cli(t, "", "-url", st.root, "bench", "-ops", "20", "-keyspace", "5")
			r.want(t, 1, "")
			if !strings.Contains(r.stderr, "blobcache: bench: refusing to run: the URL has no location") || !strings.Contains(r.stderr, "pass -yes") {
				t.Errorf("stderr %q: want a refusal naming -yes", r.stderr)
			}
			if left := st.empty(t); len(left) > 0 {
				t.Errorf("a refused bench wrote %v", left)
			}

			// With -yes it runs and leaves the store as it found it. Objects
			// that are not root entries (keep/...) are not the root cache's:
			// no warning for them.
			cli(t, "", "-url", withQuery(st.root, "location=keep"), "set", "k", "v").want(t, 0, "")
			r = cli(t, "", "-url", st.root, "bench", "-ops", "20", "-keyspace", "5", "-workers", "2", "-yes")
			r.want(t, 0, "*")
			if !strings.Contains(r.stdout, "location:     (none: the whole store)\n") || !strings.Contains(r.stdout, "throughput ratio cache/raw: ") {
				t.Errorf("stdout:\n%s", r.stdout)
			}
			if r.stderr != "" {
				t.Errorf("stderr %q: want no warning (keep/... is no entry at the root)", r.stderr)
			}
			// An entry at the root: the warning.
			cli(t, "", "-url", st.root, "set", "root-key", "v").want(t, 0, "")
			r = cli(t, "", "-url", st.root, "bench", "-ops", "20", "-keyspace", "5", "-workers", "2", "-yes")
			r.want(t, 0, "*")
			if !strings.Contains(r.stderr, "warning: the store's root already holds entries") {
				t.Errorf("stderr %q: want the warning", r.stderr)
			}
			cli(t, "", "-url", withQuery(st.root, "location=keep"), "get", "k").want(t, 0, "v")
			cli(t, "", "-url", st.root, "get", "root-key").want(t, 0, "v")
			if left := storeObjects(t, st.root); len(left) != 2 {
				t.Errorf("store holds %v; want only keep/... and the root entry", left)
			}
		})
	}
}

// TestBenchInterruptedCleansUp: Ctrl-C (the run's context cancelled, here
// deterministically at the 30th write of the measured run) stops the bench,
// which still prints its counters and deletes everything it wrote, with a
// context of its own: the store's deletes refuse a cancelled context.
func TestBenchInterruptedCleansUp(t *testing.T) {
	dir := t.TempDir()
	u := fileURL(dir, "location=bench")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const keyspace = 100
	withFaults(t, &faultDriver{onWrite: func(n int64) {
		if n == 2*keyspace+30 { // both prefills, then 30 writes of the run
			cancel()
		}
	}})
	var out, errOut strings.Builder
	code := run(ctx, []string{"-url", u, "bench", "-duration", "1h", "-workers", "4", "-keyspace", fmt.Sprint(keyspace), "-mix", "get=1,set=1"}, strings.NewReader(""), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "blobcache: interrupted: bench: ") {
		t.Errorf("interrupted bench: exit %d, stderr %q; want 1 and interrupted", code, errOut.String())
	}
	if !strings.Contains(out.String(), "counters:") {
		t.Errorf("interrupted bench printed no counters:\n%s", out.String())
	}
	if left := append(storeObjects(t, fileURL(dir, "")), filesIn(t, dir)...); len(left) > 0 {
		t.Errorf("interrupted bench left %v", left)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	dir := t.TempDir()
	u := fileURL(dir, "location=bench")
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"-workers", "0"}, "blobcache: bench: -workers must be at least 1, got 0\n"},
		{[]string{"-workers", "5000"}, "bench: -workers must be at most 1024, got 5000"},
		{[]string{"-workers", "many"}, `invalid value "many" for flag -workers`},
		{[]string{"-duration", "0s"}, "bench: -duration must be positive, got 0s"},
		{[]string{"-duration", "-1m"}, "bench: -duration must be positive, got -1m0s"},
		{[]string{"-duration", "soon"}, `invalid value "soon" for flag -duration: want a Go duration`},
		{[]string{"-ops", "-1"}, "bench: -ops must be at least 0 (0: no limit), got -1"},
		{[]string{"-keyspace", "0"}, "bench: -keyspace must be at least 1, got 0"},
		{[]string{"-keyspace", "2000000"}, "bench: -keyspace must be at most 1000000, got 2000000"},
		{[]string{"-ops", "1000000000001"}, "bench: -ops must be at most 1000000000000, got 1000000000001"},
		{[]string{"-duration", "25h"}, "bench: -duration must be at most 24h0m0s, got 25h0m0s"},
		{[]string{"-duration", "9999999h"}, `invalid value "9999999h" for flag -duration: out of range: want at most 24h0m0s`},
		{[]string{"-mix", "get=9223372036854775807,set=9223372036854775807"}, `bench: -mix: mix "get=9223372036854775807,set=9223372036854775807": weight of get is "9223372036854775807", want an integer from 0 to 1000000`},
		{[]string{"-mix", "get=0,get=1"}, `bench: -mix: mix "get=0,get=1": get given twice`},
		{[]string{"-ttl", "NaN"}, "bench: -ttl NaN: not a number of seconds"},
		{[]string{"-ttl", "1e300s"}, `bench: -ttl "1e300s": want a Go duration`},
		{[]string{"-ttl", "9999999h"}, `bench: -ttl "9999999h": out of range: at most 2562047h47m16.854775807s`},
		{[]string{"-ttl", "1e300"}, "bench: -ttl 1e300: out of range: at most 9223372036 seconds"},
		{[]string{"-value-size", "0"}, `bench: -value-size must be from 1 byte to 1 GiB, got "0"`},
		{[]string{"-value-size", "2GiB"}, `bench: -value-size must be from 1 byte to 1 GiB, got "2GiB"`},
		{[]string{"-value-size", "12XB"}, `bench: -value-size "12XB": want a size in bytes such as 4096, 1KiB`},
		{[]string{"-value-size", "-5"}, `bench: -value-size "-5": want a size in bytes`},
		{[]string{"-mix", "get=x"}, `bench: -mix: mix "get=x": weight of get is "x"`},
		{[]string{"-mix", "fetch=1"}, `bench: -mix: mix "fetch=1": unknown operation "fetch"`},
		{[]string{"-mix", "get=0"}, `bench: -mix: mix "get=0" has no operation with a positive weight`},
		{[]string{"-mix", "get=1,get=2"}, `bench: -mix: mix "get=1,get=2": get given twice`},
		{[]string{"-ttl", "soon"}, `bench: -ttl "soon"`},
		{[]string{"-seed", "-1"}, `invalid value "-1" for flag -seed`},
		{[]string{"extra"}, "bench: too many arguments"},
	} {
		r := cli(t, "", append([]string{"-url", u, "bench", "-ops", "10"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "Run 'blobcache help bench' for usage.") || r.stdout != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and a message containing %q", tc.args, r.code, r.stdout, r.stderr, tc.want)
		}
	}
	if left := filesIn(t, dir); len(left) > 0 {
		t.Errorf("refused benches wrote %v", left)
	}
}

func TestParseSize(t *testing.T) {
	for s, want := range map[string]int64{
		"1": 1, "4096": 4096, "10B": 10, "1KiB": 1024, "64kib": 64 << 10, "4kB": 4000, "2KB": 2000,
		"1MiB": 1 << 20, "3MB": 3e6, "1GiB": 1 << 30, "1 KiB": 1024, "0": 0,
	} {
		if got, err := parseSize(s); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "KiB", "1.5KiB", "1k", "1 TiB", "-1", "x", "99999999999999999999", "9999999999999GiB"} {
		if n, err := parseSize(s); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", s, n)
		}
	}
}

// TestBenchMinIO runs bench against a real S3 server (see TestMinIO): a
// get is one GetObject, on the cache as on the raw bucket, and the bucket is
// left empty.
func TestBenchMinIO(t *testing.T) {
	root := minioURL(t)
	r := cli(t, "", "-url", withQuery(root.url, root.query+"&location=bench"), "bench", "-ops", "100", "-workers", "4", "-keyspace", "20", "-mix", "get=1")
	r.want(t, 0, "*")
	t.Logf("bench on MinIO:\n%s", r.stdout)
	for _, target := range []string{"cache: ", "raw driver: "} {
		if line := reportLine(t, r.stdout, target); !strings.Contains(line, " 100 ops in ") || !strings.Contains(line, ", 1.000 requests/op;") {
			t.Errorf("%s line %q: want 100 ops at 1.000 requests/op", target, line)
		}
	}
	f := benchFields(r.stdout)
	if want := "1 LIST, 100 GET, 20 PUT, 0 DELETE, 1 batch DELETE (122 in all)"; f["requests"] != want {
		t.Errorf("requests %q, want %q", f["requests"], want)
	}
	if root.secret != "" && strings.Contains(r.stdout+r.stderr, root.secret) {
		t.Errorf("the secret key appears in the output")
	}
	if left := storeObjects(t, withQuery(root.url, root.query)); len(left) > 0 {
		t.Errorf("bench left %v in the bucket", left)
	}
}
