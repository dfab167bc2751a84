package bench

import (
	"bytes"
	"context"
	"strconv"
	"testing"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
)

func benchSet(b *testing.B, maker HarnessMaker, size int) {
	e := newGroup(b, maker)
	ks := makeKeys("set", benchKeys)
	value := randomValue(size)
	// The first write of a cache lists its location; a store with the keys
	// already there is the steady state.
	e.fill(b, ks, value)
	ctx := e.ctx
	e.leaf(b, ImplCache, func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := e.c.Set(ctx, ks.keys[i%benchKeys], value, cache.DefaultTTL); err != nil {
				b.Fatalf("Set: %v", err)
			}
		}
	})
	e.leaf(b, ImplDriver, func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := e.d.Write(ctx, ks.raw[i%benchKeys], bytes.NewReader(value), &driver.WriteOptions{}); err != nil {
				b.Fatalf("Write: %v", err)
			}
		}
	})
	opts := gcdkWriteOptions(value)
	e.leaf(b, ImplGoCDK, func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := e.bkt.WriteAll(ctx, ks.gcdk[i%benchKeys], value, opts); err != nil {
				b.Fatalf("WriteAll: %v", err)
			}
		}
	})
}

func benchAdd(b *testing.B, maker HarnessMaker) {
	e := newGroup(b, maker, cache.WithMaxEntries(0))
	value := randomValue(smallValueSize)
	ctx := e.ctx
	// Every Add is of a new key: the numbers go on across the runs of a
	// leaf (go test -count runs a leaf again on the same store). Every
	// benchAddWindow Adds the store is emptied with the timer stopped, so
	// memory stores stay small.
	var next int
	e.leaf(b, ImplCache, func(b *testing.B) {
		for b.Loop() {
			if next++; next%benchAddWindow == 0 {
				e.pause(b, func() {
					if err := e.c.Clear(ctx); err != nil {
						b.Fatalf("Clear: %v", err)
					}
				})
			}
			added, err := e.c.Add(ctx, "add-"+strconv.Itoa(next), value, cache.DefaultTTL)
			if err != nil || !added {
				b.Fatalf("Add of a new key: %v, %v", added, err)
			}
		}
	})
	e.leaf(b, ImplDriver, func(b *testing.B) {
		for b.Loop() {
			if next++; next%benchAddWindow == 0 {
				e.pause(b, func() { e.clearRaw(b, "raw/") })
			}
			err := e.d.Write(ctx, "raw/add-"+strconv.Itoa(next), bytes.NewReader(value), &driver.WriteOptions{IfAbsent: true})
			if err != nil {
				b.Fatalf("IfAbsent Write of a new name: %v", err)
			}
		}
	})
	e.leaf(b, ImplGoCDK, func(b *testing.B) {
		opts := gcdkWriteOptions(value)
		opts.IfNotExist = true
		for b.Loop() {
			if next++; next%benchAddWindow == 0 {
				e.pause(b, func() { e.clearGoCDK(b, "gocloud/") })
			}
			if err := e.bkt.WriteAll(ctx, "gocloud/add-"+strconv.Itoa(next), value, opts); err != nil {
				b.Fatalf("IfNotExist WriteAll of a new key: %v", err)
			}
		}
	})
}

// benchDelete times the Delete of a live entry (the cache's reports that
// it was live). The entries are written benchDelWindow at a time with the
// timer stopped.
func benchDelete(b *testing.B, maker HarnessMaker) {
	e := newGroup(b, maker, cache.WithMaxEntries(0))
	value := randomValue(smallValueSize)
	ctx := e.ctx
	ks := makeKeys("delete", benchDelWindow)
	e.leaf(b, ImplCache, func(b *testing.B) {
		i := 0
		for b.Loop() {
			if i%benchDelWindow == 0 {
				e.pause(b, func() {
					for _, k := range ks.keys {
						if err := e.c.Set(ctx, k, value, cache.DefaultTTL); err != nil {
							b.Fatalf("Set: %v", err)
						}
					}
				})
			}
			k := ks.keys[i%benchDelWindow]
			if ok, err := e.c.Delete(ctx, k); err != nil || !ok {
				b.Fatalf("Delete(%q) of a live entry = %v, %v", k, ok, err)
			}
			i++
		}
	})
	e.leaf(b, ImplDriver, func(b *testing.B) {
		i := 0
		for b.Loop() {
			if i%benchDelWindow == 0 {
				e.pause(b, func() {
					for _, name := range ks.raw {
						if err := e.d.Write(ctx, name, bytes.NewReader(value), &driver.WriteOptions{}); err != nil {
							b.Fatalf("Write: %v", err)
						}
					}
				})
			}
			if err := e.d.Delete(ctx, ks.raw[i%benchDelWindow]); err != nil {
				b.Fatalf("Delete: %v", err)
			}
			i++
		}
	})
	e.leaf(b, ImplGoCDK, func(b *testing.B) {
		opts := gcdkWriteOptions(value)
		i := 0
		for b.Loop() {
			if i%benchDelWindow == 0 {
				e.pause(b, func() {
					for _, key := range ks.gcdk {
						if err := e.bkt.WriteAll(ctx, key, value, opts); err != nil {
							b.Fatalf("WriteAll: %v", err)
						}
					}
				})
			}
			if err := e.bkt.Delete(ctx, ks.gcdk[i%benchDelWindow]); err != nil {
				b.Fatalf("Delete: %v", err)
			}
			i++
		}
	})
}

func benchIncr(b *testing.B, maker HarnessMaker) {
	e := newGroup(b, maker)
	ctx := e.ctx
	const key = "counter"
	name, gname := rawName("raw/", key), rawName("gocloud/", key)
	e.leaf(b, ImplCache, func(b *testing.B) {
		e.pause(b, func() {
			if err := e.c.Set(ctx, key, []byte("0"), cache.NoExpiry); err != nil {
				b.Fatalf("Set: %v", err)
			}
		})
		for b.Loop() {
			if _, err := e.c.Incr(ctx, key, 1); err != nil {
				b.Fatalf("Incr: %v", err)
			}
		}
	})
	replacer, _ := e.d.(driver.Replacer)
	e.leaf(b, ImplDriver, func(b *testing.B) {
		e.pause(b, func() {
			if err := e.d.Write(ctx, name, bytes.NewReader([]byte("0")), &driver.WriteOptions{}); err != nil {
				b.Fatalf("Write: %v", err)
			}
		})
		var buf [20]byte
		for b.Loop() {
			data, attrs, err := e.d.Read(ctx, name, 0, -1)
			if err != nil {
				b.Fatalf("Read: %v", err)
			}
			n, err := strconv.ParseInt(string(data), 10, 64)
			if err != nil {
				b.Fatalf("stored counter %q: %v", data, err)
			}
			body := bytes.NewReader(strconv.AppendInt(buf[:0], n+1, 10))
			if replacer != nil {
				err = replacer.Replace(ctx, name, body, attrs.ETag, &driver.WriteOptions{})
			} else {
				err = e.d.Write(ctx, name, body, &driver.WriteOptions{})
			}
			if err != nil {
				b.Fatalf("write back: %v", err)
			}
		}
	})
	e.leaf(b, ImplGoCDK, func(b *testing.B) {
		opts := &WriteOptions{ContentType: contentType}
		e.pause(b, func() {
			if err := e.bkt.WriteAll(ctx, gname, []byte("0"), opts); err != nil {
				b.Fatalf("WriteAll: %v", err)
			}
		})
		var buf [20]byte
		for b.Loop() {
			data, err := e.bkt.ReadAll(ctx, gname)
			if err != nil {
				b.Fatalf("ReadAll: %v", err)
			}
			n, err := strconv.ParseInt(string(data), 10, 64)
			if err != nil {
				b.Fatalf("stored counter %q: %v", data, err)
			}
			// Not conditional: the Go CDK's portable API has no
			// replace-if-unchanged.
			if err := e.bkt.WriteAll(ctx, gname, strconv.AppendInt(buf[:0], n+1, 10), opts); err != nil {
				b.Fatalf("WriteAll: %v", err)
			}
		}
	})
}

func benchSetMany(b *testing.B, maker HarnessMaker) {
	e := newGroup(b, maker)
	ks := makeKeys("many", benchManyKeys)
	value := randomValue(smallValueSize)
	e.fill(b, ks, value)
	items := make(map[string][]byte, benchManyKeys)
	for _, k := range ks.keys {
		items[k] = value
	}
	ctx := e.ctx
	e.leaf(b, ImplCache, func(b *testing.B) {
		for b.Loop() {
			if err := e.c.SetMany(ctx, items, cache.DefaultTTL); err != nil {
				b.Fatalf("SetMany: %v", err)
			}
		}
	})
	e.leaf(b, ImplDriver, func(b *testing.B) {
		for b.Loop() {
			err := parallel(ctx, benchManyKeys, benchManyConc, func(ctx context.Context, i int) error {
				return e.d.Write(ctx, ks.raw[i], bytes.NewReader(value), &driver.WriteOptions{})
			})
			if err != nil {
				b.Fatalf("Write: %v", err)
			}
		}
	})
	opts := gcdkWriteOptions(value)
	e.leaf(b, ImplGoCDK, func(b *testing.B) {
		for b.Loop() {
			err := parallel(ctx, benchManyKeys, benchManyConc, func(ctx context.Context, i int) error {
				return e.bkt.WriteAll(ctx, ks.gcdk[i], value, opts)
			})
			if err != nil {
				b.Fatalf("WriteAll: %v", err)
			}
		}
	})
}

// benchClear times the removal of benchClearN entries; the store is refilled
// with the timer stopped before every iteration. impl=gocloud deletes one
// object at a time, as the Go CDK's portable API does.
func benchClear(b *testing.B, maker HarnessMaker) {
	e := newGroup(b, maker, cache.WithMaxEntries(0))
	filler := e.newCache(b, cache.WithMaxEntries(0))
	ks := makeKeys("clear", benchClearN)
	value := []byte("v")
	ctx := e.ctx
	fillWith := func(b *testing.B, f func(ctx context.Context, i int) error) {
		if err := parallel(ctx, benchClearN, benchFillConc, f); err != nil {
			b.Fatalf("filling the store: %v", err)
		}
	}
	e.leaf(b, ImplCache, func(b *testing.B) {
		for b.Loop() {
			e.pause(b, func() {
				fillWith(b, func(ctx context.Context, i int) error {
					return filler.Set(ctx, ks.keys[i], value, cache.NoExpiry)
				})
			})
			if err := e.c.Clear(ctx); err != nil {
				b.Fatalf("Clear: %v", err)
			}
		}
	})
	e.leaf(b, ImplDriver, func(b *testing.B) {
		for b.Loop() {
			e.pause(b, func() {
				fillWith(b, func(ctx context.Context, i int) error {
					return e.d.Write(ctx, ks.raw[i], bytes.NewReader(value), &driver.WriteOptions{})
				})
			})
			e.clearRaw(b, "raw/")
		}
	})
	e.leaf(b, ImplGoCDK, func(b *testing.B) {
		opts := &WriteOptions{ContentType: contentType}
		for b.Loop() {
			e.pause(b, func() {
				fillWith(b, func(ctx context.Context, i int) error {
					return e.bkt.WriteAll(ctx, ks.gcdk[i], value, opts)
				})
			})
			e.clearGoCDK(b, "gocloud/")
		}
	})
}

// clearRaw removes every object under prefix with the driver: list every
// page, then delete in batches (or one by one without a BatchDeleter), 8
// requests at a time, as the cache does.
func (e *group) clearRaw(b *testing.B, prefix string) {
	b.Helper()
	var names []string
	opts := &driver.ListOptions{Prefix: prefix}
	for {
		page, err := e.d.List(e.ctx, opts)
		if err != nil {
			b.Fatalf("List: %v", err)
		}
		for _, o := range page.Objects {
			names = append(names, o.Name)
		}
		if page.NextPageToken == "" {
			break
		}
		opts.PageToken = page.NextPageToken
	}
	var err error
	if bd, ok := e.d.(driver.BatchDeleter); ok {
		n := (len(names) + driver.MaxBatchDelete - 1) / driver.MaxBatchDelete
		err = parallel(e.ctx, n, 8, func(ctx context.Context, i int) error {
			return bd.DeleteBatch(ctx, names[i*driver.MaxBatchDelete:min(len(names), (i+1)*driver.MaxBatchDelete)])
		})
	} else {
		err = parallel(e.ctx, len(names), 8, func(ctx context.Context, i int) error {
			return e.d.Delete(ctx, names[i])
		})
	}
	if err != nil {
		b.Fatalf("delete: %v", err)
	}
}

// clearGoCDK removes every object under prefix through the Go CDK's portable
// API: a listing and one Delete per object, in sequence.
func (e *group) clearGoCDK(b *testing.B, prefix string) {
	b.Helper()
	if err := e.bkt.DeleteAll(e.ctx, prefix); err != nil {
		b.Fatalf("List and Delete: %v", err)
	}
}

// benchBig sets or gets one 64 MiB value; B/op is the memory the operation
