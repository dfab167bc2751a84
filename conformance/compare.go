package conformance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/cull"
	"github.com/blobcache/blobcache/driver"
)

// Outcome is what the scripted sequence of Compare observes on one store: the
// result of every step, the surviving entries and the count. Two drivers that
// behave alike produce equal Outcomes.
type Outcome struct {
	// Steps holds one line per operation: its name, key and result.
	Steps []string
	// Entries maps every key of the script that has a live entry at the end
	// to its value.
	Entries map[string]string
	// Len is the cache's Len at the end, before Clear.
	Len int
	// Foreign maps each object outside the cache's location to its content
	// after Clear (or to the error reading it).
	Foreign map[string]string
}

// Compare runs one scripted sequence of cache operations (sets, adds, expiry,
// culling by count and, with cull.Oldest, by the store's modification times,
// increments, touches, deletes, bulk calls, clear) on a fresh store
// from each maker, and fails with a go-cmp diff when any two outcomes differ.
// Every maker's store must behave the same: same culling, same surviving keys
// and values, same counts, same prefix-safe clearing.
func Compare(t *testing.T, makers map[string]HarnessMaker) {
	t.Helper()
	if len(makers) < 2 {
		t.Fatalf("Compare needs at least two makers, got %d", len(makers))
	}
	names := slices.Sorted(maps.Keys(makers))
	outcomes := make(map[string]*Outcome, len(names))
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			h, err := makers[name](t.Context(), t)
			if err != nil {
				t.Fatalf("HarnessMaker: %v", err)
			}
			t.Cleanup(h.Close)
			d, err := h.MakeDriver(t.Context())
			if err != nil {
				t.Fatalf("MakeDriver: %v", err)
			}
			o, err := RunScript(t.Context(), d)
			if err != nil {
				t.Fatalf("script: %v", err)
			}
			outcomes[name] = o
		})
	}
	base := names[0]
	for _, name := range names[1:] {
		if outcomes[base] == nil || outcomes[name] == nil {
			continue // the failing subtest reported why
		}
		if diff := cmp.Diff(outcomes[base], outcomes[name]); diff != "" {
			t.Errorf("outcomes differ between %s and %s (-%s +%s):\n%s", base, name, base, name, diff)
		}
	}
	if o := outcomes[base]; o != nil && !t.Failed() {
		t.Logf("%d drivers agree: %d steps, %d surviving entries, Len %d", len(names), len(o.Steps), len(o.Entries), o.Len)
	}
}

// RunScript runs Compare's scripted sequence on d, which it closes, and
// returns what it observed. Storage errors end the script with an error.
func RunScript(ctx context.Context, d driver.Driver) (*Outcome, error) {
	const loc = "cmp"
	// No object named exactly like the location: MinIO cannot list a folder
	// beside an object of its name (see StoreLimits).
	foreign := map[string]string{loc + "2/x": "sibling", loc + "x": "sibling object", loc + ".x": "sorts before cmp/", "other/" + loc: "elsewhere"}
	for _, name := range slices.Sorted(maps.Keys(foreign)) {
		if err := d.Write(ctx, name, strings.NewReader(foreign[name]), &driver.WriteOptions{}); err != nil {
			return nil, err
		}
	}
	clk := newManualClock()
	c, err := cache.New(d, cache.WithLocation(loc), cache.WithMaxEntries(20), cache.WithCullFrequency(3),
		cache.WithClock(clk.Now), cache.WithDefaultTTL(time.Minute))
	if err != nil {
		return nil, err
	}
	defer c.Close()

	o := &Outcome{Entries: map[string]string{}, Foreign: map[string]string{}}
	step := func(format string, args ...any) { o.Steps = append(o.Steps, fmt.Sprintf(format, args...)) }
	result := func(err error) string {
		switch {
		case err == nil:
			return "ok"
		case errors.Is(err, cache.ErrMiss):
			return "miss"
		case errors.Is(err, cache.ErrNotInteger):
			return "not-integer"
		}
		return "error: " + err.Error()
	}
	key := func(i int) string { return fmt.Sprintf("key-%02d", i) }
	var keys []string
	for i := range 60 {
		keys = append(keys, key(i))
	}
	// The storage errors are what ends the script; everything else is outcome.
	var storageErr error
	record := func(op string, k string, v any, err error) {
		if err != nil && !errors.Is(err, cache.ErrMiss) && !errors.Is(err, cache.ErrNotInteger) && storageErr == nil {
			storageErr = fmt.Errorf("%s %s: %w", op, k, err)
		}
		step("%s %s = %v (%s)", op, k, v, result(err))
	}

	for i := range 45 {
		k := key(i)
		switch i % 5 {
		case 0, 4:
			record("set", k, nil, c.Set(ctx, k, []byte(fmt.Sprint("v", i)), cache.DefaultTTL))
		case 1:
			added, err := c.Add(ctx, k, []byte(fmt.Sprint("a", i)), cache.DefaultTTL)
			record("add", k, added, err)
		case 2:
			record("set-10s", k, nil, c.Set(ctx, k, []byte(fmt.Sprint("short", i)), 10*time.Second))
		case 3:
			added, err := c.Add(ctx, key(i-3), []byte("again"), cache.DefaultTTL)
			record("add-existing", key(i-3), added, err)
		}
		if i%7 == 0 {
			n, err := c.Incr(ctx, "counter", int64(i))
			if errors.Is(err, cache.ErrMiss) {
				record("set", "counter", nil, c.Set(ctx, "counter", []byte("100"), cache.NoExpiry))
			} else {
				record("incr", "counter", n, err)
			}
		}
	}
	clk.Advance(30 * time.Second) // the 10-second entries are now expired
	for i := 0; i < 45; i += 3 {
		has, err := c.Has(ctx, key(i))
		record("has", key(i), has, err)
	}
	for i := 1; i < 45; i += 4 {
		touched, err := c.Touch(ctx, key(i), time.Hour)
		record("touch", key(i), touched, err)
	}
	for i := 2; i < 45; i += 6 {
		added, err := c.Add(ctx, key(i), []byte("re-added"), cache.DefaultTTL)
		record("add-over-expired", key(i), added, err)
	}
	for i := 0; i < 45; i += 8 {
		deleted, err := c.Delete(ctx, key(i))
		record("delete", key(i), deleted, err)
	}
	record("set", "text", nil, c.Set(ctx, "text", []byte("abc"), cache.DefaultTTL))
	_, err = c.Incr(ctx, "text", 1)
	record("incr", "text", nil, err)
	n, err := c.Decr(ctx, "counter", 7)
	record("decr", "counter", n, err)
	items := map[string][]byte{}
	for i := 45; i < 55; i++ {
		items[key(i)] = []byte(fmt.Sprint("many", i))
	}
	record("set_many", "45..54", nil, c.SetMany(ctx, items, cache.DefaultTTL))
	record("delete_many", "45..49", nil, c.DeleteMany(ctx, keys[45:50]))
	clk.Advance(45 * time.Second) // default-TTL (1m) entries written before the first advance expire

	got, err := c.GetMany(ctx, append(keys, "counter", "text"))
	if err != nil {
		return nil, fmt.Errorf("get_many: %w", err)
	}
	for k, v := range got {
		o.Entries[k] = string(v)
	}
	if o.Len, err = c.Len(ctx); err != nil {
		return nil, fmt.Errorf("len: %w", err)
	}
	if err := c.Clear(ctx); err != nil {
		return nil, fmt.Errorf("clear: %w", err)
	}
	after, err := c.Len(ctx)
	if err != nil {
		return nil, fmt.Errorf("len: %w", err)
	}
	step("len after clear = %d", after)
	if err := oldestPhase(ctx, d, step); err != nil {
		return nil, err
	}
	if err := shardPhase(ctx, d, step); err != nil {
		return nil, err
	}
	for name := range foreign {
		data, _, err := d.Read(ctx, name, 0, -1)
		if err != nil {
			o.Foreign[name] = "error: " + err.Error()
		} else {
			o.Foreign[name] = string(data)
		}
	}
	return o, storageErr
}

// shardPhase culls by shards (cache.WithCullShards(1): 16 shards, the cache
// full when the first holds max_entries/16 entries): 300 Sets into a cache
// of 64 entries, waiting after each for the background pass, so that the
// sequence is the same on every store; then a Cull of every shard. The
// entries left after each step are the outcome. Like oldestPhase, it does
// not close its cache.
func shardPhase(ctx context.Context, d driver.Driver, step func(string, ...any)) error {
	c, err := cache.New(d, cache.WithLocation("cmp-shards"), cache.WithMaxEntries(64), cache.WithCullFrequency(3),
		cache.WithCullShards(1), cache.WithDefaultTTL(cache.NoExpiry))
	if err != nil {
		return err
	}
	var keys []string
	for i := range 300 {
		k := fmt.Sprintf("shard-key-%03d", i)
		keys = append(keys, k)
		if err := c.Set(ctx, k, []byte(k), cache.DefaultTTL); err != nil {
			return fmt.Errorf("shards: set %s: %w", k, err)
		}
		if err := c.WaitCulls(ctx); err != nil {
			return err
		}
	}
	live := func() (string, error) {
		var have []string
		for _, k := range keys {
			ok, err := c.Has(ctx, k)
			if err != nil {
				return "", fmt.Errorf("shards: has %s: %w", k, err)
			}
			if ok {
				have = append(have, strings.TrimPrefix(k, "shard-key-"))
			}
		}
		return strings.Join(have, " "), nil
	}
	n, err := c.Len(ctx)
	if err != nil {
		return fmt.Errorf("shards: len: %w", err)
	}
	have, err := live()
	if err != nil {
		return err
	}
	step("shards: after 300 sets into 64: len %d, keys %s", n, have)
	culled, err := c.Cull(ctx)
	if err != nil {
		return fmt.Errorf("shards: cull: %w", err)
	}
	if have, err = live(); err != nil {
		return err
	}
	step("shards: cull of every shard = %d, keys %s", culled, have)
	return nil
}

// oldestPhase culls with cull.Oldest, by the store's modification times:
// five entries, five more written a store granularity later, then the first
// one rewritten; a cull then removes the four early entries not rewritten
// and nothing else, on every store whose ModTime keeps the contract. The
// cache it makes is not closed: that would close d, which RunScript's own
// cache closes.
func oldestPhase(ctx context.Context, d driver.Driver, step func(string, ...any)) error {
	c, err := cache.New(d, cache.WithLocation("cmp-oldest"), cache.WithMaxEntries(0), cache.WithCullPolicy(cull.Oldest(3)))
	if err != nil {
		return err
	}
	wait := func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(storeGranularity):
			return nil
		}
	}
	set := func(k string) error { return c.Set(ctx, k, []byte(k), cache.NoExpiry) }
	var keys []string
	for _, group := range []string{"early", "late"} {
		for i := range 5 {
			k := fmt.Sprintf("%s-%d", group, i)
			keys = append(keys, k)
			if err := set(k); err != nil {
				return fmt.Errorf("oldest: set %s: %w", k, err)
			}
		}
		if err := wait(); err != nil {
			return err
		}
	}
	if err := set("early-0"); err != nil {
		return fmt.Errorf("oldest: rewrite early-0: %w", err)
	}
	n, err := c.Cull(ctx)
	if err != nil {
		return fmt.Errorf("oldest: cull: %w", err)
	}
	step("cull oldest(3) of 10 = %d", n)
	for _, k := range keys {
		has, err := c.Has(ctx, k)
		if err != nil {
			return fmt.Errorf("oldest: has %s: %w", k, err)
		}
		step("after cull oldest: has %s = %v", k, has)
	}
	return c.Clear(ctx)
}
