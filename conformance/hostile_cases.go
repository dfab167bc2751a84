package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/internal/memuse"
)

// hostileCases is the hostile-store section: what a writer with access to
// the store's medium plants, run through the driver and a cache over it.
// Every case checks, after every operation, that the tree outside the store
// is byte for byte what it was (clauseOutside).
var hostileCases = []driverCase{
	// A symbolic link at an entry's object path, to an entry outside the
	// store and to a path that does not exist (clauseOutside, clauseSpecial).
	{"ObjectSymlink", clauseSpecial, caseHostileObjectSymlink},
	// The location's directory is a link to a directory outside the store
	// holding the location's entries (clauseOutside, clauseSpecial).
	{"LocationSymlink", clauseOutside, caseHostileLocationSymlink},
	// A directory in the middle of the entries' path is a link
	// (clauseOutside, clauseSpecial).
	{"IntermediateSymlink", clauseSpecial, caseHostileIntermediateSymlink},
	// The driver's lock files and directories are links (clauseOutside).
	{"InternalSymlinks", clauseOutside, caseHostileInternalSymlinks},
	// A named pipe at an entry's object path: nothing blocks
	// (clauseSpecial).
	{"FIFO", clauseSpecial, caseHostileFIFO},
	// A sparse file of 1 TiB at an entry's object path: reads are bounded
	// (clauseBounded, clauseMiss).
	{"SparseObject", clauseBounded, caseHostileSparse},
}

// secretValue is the value of the entries planted outside the store: a
// read that returns it has read outside the store.
const secretValue = "hostile: a value outside the store"

func isSecret(b []byte) bool { return bytes.Contains(b, []byte(secretValue)) }

func wantErrIs(what string, err, want error, clause string) string {
	if !errors.Is(err, want) {
		return fmt.Sprintf("%s = %v, want an error satisfying errors.Is(err, %v) (%s)", what, err, want, clause)
	}
	return ""
}

func wantNoErr(what string, err error) string {
	if err != nil {
		return fmt.Sprintf("%s: %v (%s)", what, err, clauseSpecial)
	}
	return ""
}

// plantEntries writes keys with the value secretValue through c.
func (e *env) plantEntries(c *cache.Cache, keys ...string) {
	e.t.Helper()
	for _, k := range keys {
		e.must(c.Set(e.ctx, k, []byte(secretValue), cache.NoExpiry))
	}
}

// noObjectOps are the operations on key (through c, and its object through
// d) that must all find no object.
func (e *env) noObjectOps(c *cache.Cache, d driver.Driver, key string) []hostileOp {
	name := c.ObjectName(key)
	ops := []hostileOp{
		{"driver Read", func(ctx context.Context) string {
			b, _, err := d.Read(ctx, name, 0, -1)
			if isSecret(b) {
				return "returned the entry stored outside the store (" + clauseOutside + ")"
			}
			return wantErrIs("Read", err, driver.ErrNotFound, clauseSpecial)
		}},
		{"driver ranged Read", func(ctx context.Context) string {
			b, _, err := d.Read(ctx, name, 3, 100)
			if len(b) > 0 {
				return fmt.Sprintf("returned %s (%s)", brief(b), clauseSpecial)
			}
			return wantErrIs("Read", err, driver.ErrNotFound, clauseSpecial)
		}},
		{"driver List", func(ctx context.Context) string {
			for _, p := range []string{e.prefix, c.Location(), name} {
				page, err := d.List(ctx, &driver.ListOptions{Prefix: p})
				if err != nil {
					return fmt.Sprintf("List(%q): %v", p, err)
				}
				for _, o := range page.Objects {
					if o.Name == name {
						return fmt.Sprintf("List(%q) listed %q, which is no object of the store (%s)", p, name, clauseSpecial)
					}
				}
			}
			return ""
		}},
		{"cache Get", func(ctx context.Context) string {
			v, err := c.Get(ctx, key)
			if isSecret(v) {
				return "returned the value stored outside the store (" + clauseOutside + ")"
			}
			return wantErrIs("Get", err, cache.ErrMiss, clauseMiss)
		}},
		{"cache Has", func(ctx context.Context) string {
			if ok, err := c.Has(ctx, key); ok || err != nil {
				return fmt.Sprintf("Has = %v, %v; want false, nil (%s)", ok, err, clauseMiss)
			}
			return ""
		}},
		{"cache Touch", func(ctx context.Context) string {
			if ok, err := c.Touch(ctx, key, cache.NoExpiry); ok || err != nil {
				return fmt.Sprintf("Touch = %v, %v; want false, nil (%s)", ok, err, clauseMiss)
			}
			return ""
		}},
		{"cache Incr", func(ctx context.Context) string {
			_, err := c.Incr(ctx, key, 1)
			return wantErrIs("Incr", err, cache.ErrMiss, clauseMiss)
		}},
		{"cache Len", func(ctx context.Context) string {
			if n, err := c.Len(ctx); n != 0 || err != nil {
				return fmt.Sprintf("Len = %d, %v; want 0, nil (%s)", n, err, clauseSpecial)
			}
			return ""
		}},
		{"cache Cull", func(ctx context.Context) string { _, err := c.Cull(ctx); return wantNoErr("Cull", err) }},
		{"cache Clear", func(ctx context.Context) string { return wantNoErr("Clear", c.Clear(ctx)) }},
		{"cache Delete", func(ctx context.Context) string {
			if ok, err := c.Delete(ctx, key); ok || err != nil {
				return fmt.Sprintf("Delete = %v, %v; want false, nil (%s)", ok, err, clauseMiss)
			}
			return ""
		}},
		{"driver Delete", func(ctx context.Context) string { return wantNoErr("Delete", d.Delete(ctx, name)) }},
	}
	if r, ok := d.(driver.Replacer); ok {
		ops = append(ops, hostileOp{"driver Replace", func(ctx context.Context) string {
			return wantErrIs("Replace", r.Replace(ctx, name, strings.NewReader("x"), "any", &driver.WriteOptions{}), driver.ErrNotFound, clauseSpecial)
		}})
	}
	if b, ok := d.(driver.BatchDeleter); ok {
		ops = append(ops, hostileOp{"driver DeleteBatch", func(ctx context.Context) string {
			return wantNoErr("DeleteBatch", b.DeleteBatch(ctx, []string{name}))
		}})
	}
	return ops
}

// readsBack checks, after a write of name that reported success, that the
// object holds want.
func readsBack(ctx context.Context, d driver.Driver, what, name string, want []byte) string {
	got, _, err := d.Read(ctx, name, 0, -1)
	if err != nil || !bytes.Equal(got, want) {
		return fmt.Sprintf("%s reported success, then Read = %s, %v; want %s (%s)", what, brief(got), err, brief(want), clauseSpecial)
	}
	return ""
}

// writeOps are the writes of key (through c, and its object through d) on
// a store where something is planted on the way: each either replaces what
// is planted, itself, or fails saying why; never does it write through it.
func (e *env) writeOps(c *cache.Cache, d driver.Driver, key string) []hostileOp {
	name := c.ObjectName(key)
	write := func(what, name string, ifAbsent bool) hostileOp {
		return hostileOp{what, func(ctx context.Context) string {
			data := []byte("written inside " + what)
			err := d.Write(ctx, name, bytes.NewReader(data), &driver.WriteOptions{IfAbsent: ifAbsent})
			if err != nil {
				e.t.Logf("%s: %v", what, err)
				return ""
			}
			return readsBack(ctx, d, what, name, data)
		}}
	}
	return []hostileOp{
		write("driver Write", name, false),
		write("driver Write IfAbsent", name, true),
		write("driver Write of a new name", c.Location()+"new/deeper", false),
		{"cache Set", func(ctx context.Context) string {
			if err := c.Set(ctx, key, []byte("fresh"), cache.NoExpiry); err != nil {
				e.t.Logf("Set: %v", err)
				return ""
			}
			if v, err := c.Get(ctx, key); string(v) != "fresh" || err != nil {
				return fmt.Sprintf("Set reported success, then Get = %q, %v (%s)", v, err, clauseSpecial)
			}
			return ""
		}},
		{"cache Add", func(ctx context.Context) string {
			if ok, err := c.Add(ctx, key+" added", []byte("added"), cache.NoExpiry); err != nil || !ok {
				e.t.Logf("Add = %v, %v", ok, err)
			}
			c.Delete(ctx, key+" added") // leave only what the case counts on
			return ""
		}},
		{"cache SetMany", func(ctx context.Context) string {
			if err := c.SetMany(ctx, map[string][]byte{key: []byte("many"), key + " 2": []byte("many")}, cache.NoExpiry); err != nil {
				e.t.Logf("SetMany: %v", err)
			}
			return ""
		}},
		{"cache DeleteMany", func(ctx context.Context) string {
			if err := c.DeleteMany(ctx, []string{key, key + " 2"}); err != nil {
				e.t.Logf("DeleteMany: %v", err)
			}
			return ""
		}},
	}
}

// replaceOps are the writes and deletes of key when what is planted sits
// at its object path: writes replace it or fail saying why; Delete leaves
// no object.
func (e *env) replaceOps(c *cache.Cache, d driver.Driver, key string) []hostileOp {
	name := c.ObjectName(key)
	return append(e.writeOps(c, d, key), hostileOp{"driver Delete", func(ctx context.Context) string {
		if err := d.Delete(ctx, name); err != nil {
			return fmt.Sprintf("Delete: %v (%s)", err, clauseSpecial)
		}
		_, _, err := d.Read(ctx, name, 0, -1)
		return wantErrIs("Read after Delete", err, driver.ErrNotFound, clauseSpecial)
	}})
}

func caseHostileObjectSymlink(e *env) {
	h := e.hostile()
	out := e.outside()
	c := e.cache()
	const key = "hostile"
	e.plantEntries(c, key)
	d := e.driver()
	name := c.ObjectName(key)
	raw, _ := e.read(d, name)
	entry := out.write("entry", raw)
	for _, target := range []string{entry, out.path("absent")} {
		plant := func() { e.planted("PlantSymlink", h.PlantSymlink(name, target)) }
		plant()
		out.seal()
		attack := "a symlink at the object's path to " + filepath.Base(target)
		e.attack(attack, out, plant, false, e.noObjectOps(c, d, key), e.replaceOps(c, d, key))
	}
}

// dirAttack plants a link at the directory of the objects under prefix,
// holding the entries of keys of the cache at loc, and runs everything.
func (e *env) dirAttack(attack, loc, prefix string, listPrefixes ...string) {
	e.t.Helper()
	h := e.hostile()
	out := e.outside()
	keys := []string{"hostile1", "hostile2", "hostile3"}
	e.plantEntries(e.cache(cache.WithLocation(loc)), keys...)
	e.planted("PlantDirSymlink", h.PlantDirSymlink(prefix, out.path("moved")))
	out.seal()
	// A fresh cache and driver, as another process would open them.
	c, d := e.cache(cache.WithLocation(loc)), e.driver()
	lists := []hostileOp{{"driver List from above", func(ctx context.Context) string {
		for _, p := range listPrefixes {
			page, err := d.List(ctx, &driver.ListOptions{Prefix: p})
			if err != nil {
				return fmt.Sprintf("List(%q): %v", p, err)
			}
			if len(page.Objects) > 0 {
				return fmt.Sprintf("List(%q) listed %q through the link (%s)", p, page.Objects[0].Name, clauseSpecial)
			}
		}
		return ""
	}}}
	e.attack(attack, out, nil, false, lists, e.noObjectOps(c, d, keys[0]), e.writeOps(c, d, keys[1]))
}

func caseHostileLocationSymlink(e *env) {
	loc := e.location()
	e.dirAttack("the location's directory is a symlink", loc, loc+"/", loc+"/", loc+"/0")
}

func caseHostileIntermediateSymlink(e *env) {
	loc := e.name("hostile/deep/er")
	e.dirAttack("an intermediate directory is a symlink", loc, e.name("hostile/deep/"),
		e.name("hostile/"), e.name("hostile/deep/"), loc+"/", loc+"/0")
}

func caseHostileInternalSymlinks(e *env) {
	h := e.hostile()
	name := e.name("hostile/object")
	e.write(e.driver(), name, []byte("inside"))
	for variant := 0; ; variant++ {
		out := e.outside()
		target := out.mkdir("internal")
		what, err := h.PlantInternalLinks(variant, target)
		if errors.Is(err, errors.ErrUnsupported) {
			if variant == 0 {
				e.t.Skipf("the driver keeps no internal files to attack (%v)", err)
			}
			return
		}
		e.planted("PlantInternalLinks", err)
		out.seal()
		plant := func() { _, err := h.PlantInternalLinks(variant, target); e.planted(what, err) }
		// Every operation on a fresh driver, which opens its internal
		// files afresh. Errors are allowed: writing through is not.
		op := func(opName string, f func(ctx context.Context, c *cache.Cache, d driver.Driver) error) hostileOp {
			return hostileOp{opName, func(ctx context.Context) string {
				if err := f(ctx, e.cache(), e.driver()); err != nil {
					e.t.Logf("%s, %s: %v", what, opName, err)
				}
				return ""
			}}
		}
		e.attack(what, out, plant, false, []hostileOp{
			{"driver Read", func(ctx context.Context) string {
				b, _, err := e.driver().Read(ctx, name, 0, -1)
				if err == nil && string(b) != "inside" {
					return fmt.Sprintf("Read = %s, want %q (%s)", brief(b), "inside", clauseOutside)
				}
				return ""
			}},
			op("driver Write", func(ctx context.Context, _ *cache.Cache, d driver.Driver) error {
				return d.Write(ctx, e.name("hostile/new"), strings.NewReader("x"), &driver.WriteOptions{})
			}),
			op("driver Write IfAbsent", func(ctx context.Context, _ *cache.Cache, d driver.Driver) error {
				return d.Write(ctx, e.name("hostile/new2"), strings.NewReader("x"), &driver.WriteOptions{IfAbsent: true})
			}),
			op("cache Set", func(ctx context.Context, c *cache.Cache, _ driver.Driver) error {
				return c.Set(ctx, "k", []byte("v"), cache.NoExpiry)
			}),
			op("cache Add", func(ctx context.Context, c *cache.Cache, _ driver.Driver) error {
				_, err := c.Add(ctx, "k2", []byte("v"), cache.NoExpiry)
				return err
			}),
			op("cache Incr", func(ctx context.Context, c *cache.Cache, _ driver.Driver) error {
				_, err := c.Incr(ctx, "k", 1)
				return err
			}),
			op("cache Len", func(ctx context.Context, c *cache.Cache, _ driver.Driver) error { _, err := c.Len(ctx); return err }),
			op("cache Cull", func(ctx context.Context, c *cache.Cache, _ driver.Driver) error { _, err := c.Cull(ctx); return err }),
			op("cache Delete", func(ctx context.Context, c *cache.Cache, _ driver.Driver) error {
				_, err := c.Delete(ctx, "k")
				return err
			}),
			op("cache Clear", func(ctx context.Context, c *cache.Cache, _ driver.Driver) error { return c.Clear(ctx) }),
			op("driver Delete", func(ctx context.Context, _ *cache.Cache, d driver.Driver) error { return d.Delete(ctx, name) }),
		})
	}
}

func caseHostileFIFO(e *env) {
	h := e.hostile()
	out := e.outside()
	c := e.cache()
	const key = "hostile"
	e.plantEntries(c, key)
	d := e.driver()
	name := c.ObjectName(key)
	plant := func() { e.planted("PlantFIFO", h.PlantFIFO(name)) }
	plant()
	out.seal()
	e.attack("a named pipe at the object's path", out, plant, true, e.noObjectOps(c, d, key), e.replaceOps(c, d, key))
}

func caseHostileSparse(e *env) {
	const size, bound, most = 1 << 40, 64 << 20, 80 << 20
	h := e.hostile()
	out := e.outside()
	c := e.cache()
	const key = "hostile"
	e.plantEntries(c, key)
	name := c.ObjectName(key)
	plant := func() { e.planted("PlantSparse", h.PlantSparse(name, size)) }
	plant()
	out.seal()
	d := e.driver()
	guard := boundedReads{Driver: e.driver(), max: bound + bound/8, caught: make(chan string, 1)}
	gc, err := cache.New(guard, cache.WithLocation(e.location()), cache.WithMaxValueSize(bound))
	e.must(err)
	// measured runs f and says what is wrong with the memory it used.
	measured := func(what string, f func()) string {
		m, _ := memuse.Measure(func() error { f(); return nil })
		if m.Allocated >= most {
			return fmt.Sprintf("%s of a sparse 1 TiB object allocated %d MiB, want under %d MiB (%s)", what, m.Allocated>>20, most>>20, clauseBounded)
		}
		return ""
	}
	e.attack("a sparse file of 1 TiB at the object's path", out, plant, false, []hostileOp{
		{"driver Read of 64 MiB", func(ctx context.Context) string {
			var b []byte
			var err error
			bad := measured("Read", func() { b, _, err = d.Read(ctx, name, 0, bound) })
			switch {
			case bad != "":
				return bad
			case err != nil && !errors.Is(err, driver.ErrNotFound):
				return fmt.Sprintf("Read: %v", err)
			case len(b) > bound:
				return fmt.Sprintf("Read returned %d bytes, more than the %d asked for", len(b), bound)
			}
			return ""
		}},
		{"driver Read at the end", func(ctx context.Context) string {
			b, _, err := d.Read(ctx, name, size-10, bound)
			if err == nil && len(b) != 10 {
				return fmt.Sprintf("Read = %d bytes, want the last 10", len(b))
			}
			return ""
		}},
		{"cache Get", func(ctx context.Context) string {
			var err error
			bad := measured("Get", func() { _, err = gc.Get(ctx, key) })
			select {
			case r := <-guard.caught:
				return fmt.Sprintf("the cache (max_value_size %d) asked the driver for %s: more than an entry can take", bound, r)
			default:
			}
			if bad != "" {
				return bad
			}
			return wantErrIs("Get", err, cache.ErrMiss, clauseMiss)
		}},
		{"cache Has", func(ctx context.Context) string {
			if ok, err := gc.Has(ctx, key); ok || err != nil {
				return fmt.Sprintf("Has = %v, %v; want false, nil (%s)", ok, err, clauseMiss)
			}
			return ""
		}},
		{"cache Len", func(ctx context.Context) string { _, err := c.Len(ctx); return wantNoErr("Len", err) }},
		{"cache Cull", func(ctx context.Context) string { _, err := c.Cull(ctx); return wantNoErr("Cull", err) }},
		{"cache Clear", func(ctx context.Context) string { return wantNoErr("Clear", c.Clear(ctx)) }},
		{"cache Delete", func(ctx context.Context) string { _, err := c.Delete(ctx, key); return wantNoErr("Delete", err) }},
		{"cache Set", func(ctx context.Context) string {
			if err := c.Set(ctx, key, []byte("v"), cache.NoExpiry); err != nil {
				return fmt.Sprintf("Set over a sparse file: %v", err)
			}
			return ""
		}},
	})
}
