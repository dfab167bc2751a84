package cache

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Codec turns values of type T into bytes and back. Codecs must not execute
// anything found in the bytes: a reader of the cache must be safe from whoever
// can write to the store. Typed treats a stored value its codec fails to
// decode, or panics on, as a miss; a Marshal that panics is an error of the
// call.
type Codec[T any] interface {
	Marshal(v T) ([]byte, error)
	Unmarshal(data []byte, v *T) error
}

// JSON is the default Codec: encoding/json.
type JSON[T any] struct{}

// Marshal implements Codec.
func (JSON[T]) Marshal(v T) ([]byte, error) { return json.Marshal(v) }

// Unmarshal implements Codec.
func (JSON[T]) Unmarshal(data []byte, v *T) error { return json.Unmarshal(data, v) }

// Gob is a Codec using encoding/gob, which decodes data only, never code.
type Gob[T any] struct{}

// Marshal implements Codec.
func (Gob[T]) Marshal(v T) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Unmarshal implements Codec.
func (Gob[T]) Unmarshal(data []byte, v *T) error {
	return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
}

// Typed is a view of a Cache that stores values of type T through a Codec. A
// stored value that does not decode as T (the codec returns an error or
// panics) is a miss: Get deletes it, as a corrupt entry is deleted, and
// GetOrSet fills and stores a new value over it.
//
// A Typed made by NewTyped with a nil Cache, and a nil *Typed, fail every
// call with an error wrapping ErrInvalidArgument.
type Typed[T any] struct {
	c     *Cache
	codec Codec[T]
}

// errNilCache is the error of every call on a Typed without a Cache.
var errNilCache = fmt.Errorf("%w: nil *Cache (NewTyped was given no cache, or the *Typed is nil)", ErrInvalidArgument)

// NewTyped returns a typed view of c. A nil codec means JSON. A nil c is not
// refused here (NewTyped has no error), but every call of the view returns an
// ErrInvalidArgument error.
func NewTyped[T any](c *Cache, codec Codec[T]) *Typed[T] {
	if codec == nil {
		codec = JSON[T]{}
	}
	return &Typed[T]{c: c, codec: codec}
}

// Cache returns the untyped cache underneath (nil for a nil *Typed).
func (t *Typed[T]) Cache() *Cache {
	if t == nil {
		return nil
	}
	return t.c
}

// ok reports whether t has a cache to work on.
func (t *Typed[T]) ok() bool { return t != nil && t.c != nil }

// codecPanic is the error of a codec call that panicked.
type codecPanic struct {
	codec  any
	method string
	value  any
}

// Error implements error.
func (p *codecPanic) Error() string {
	return fmt.Sprintf("codec %T panicked in %s: %v", p.codec, p.method, p.value)
}

// marshal encodes v, turning a panic of the codec into an error.
func (t *Typed[T]) marshal(v T) (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			data, err = nil, &codecPanic{codec: t.codec, method: "Marshal", value: r}
		}
	}()
	return t.codec.Marshal(v)
}

// unmarshal decodes data, turning a panic of the codec into an error. On an
// error the value is T's zero value, whatever the codec left in it.
func (t *Typed[T]) unmarshal(data []byte) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			v, err = zero, &codecPanic{codec: t.codec, method: "Unmarshal", value: r}
		}
	}()
	if err := t.codec.Unmarshal(data, &v); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// Get returns key's value; errors.Is(err, ErrMiss) when there is none. A
// stored value that does not decode as T is deleted and is a miss; when the
// delete fails, the miss is a *DeadEntryError carrying the failure, as with
// Cache.Get.
func (t *Typed[T]) Get(ctx context.Context, key string) (T, error) {
	var zero T
	if !t.ok() {
		return zero, fail("get", key, errNilCache)
	}
	data, err := t.c.Get(ctx, key)
	if err != nil {
		return zero, err
	}
	v, err := t.unmarshal(data)
	if err != nil {
		name := t.c.objectName(key)
		if derr := t.c.drop(ctx, name); derr != nil {
			return zero, fail("get", key, &DeadEntryError{Name: name, Err: derr})
		}
		return zero, fail("get", key, errors.Join(ErrMiss, err))
	}
	return v, nil
}

// Set stores v under key; see Cache.Set.
func (t *Typed[T]) Set(ctx context.Context, key string, v T, ttl time.Duration) error {
	if !t.ok() {
		return fail("set", key, errNilCache)
	}
	data, err := t.marshal(v)
	if err != nil {
		return fail("set", key, err)
	}
	return t.c.Set(ctx, key, data, ttl)
}

// Add stores v only if key has no live entry; see Cache.Add. An entry whose
// value does not decode as T is live for Add (Add reads no value), so Add
// returns false over it.
func (t *Typed[T]) Add(ctx context.Context, key string, v T, ttl time.Duration) (bool, error) {
	if !t.ok() {
		return false, fail("add", key, errNilCache)
	}
	data, err := t.marshal(v)
	if err != nil {
		return false, fail("add", key, err)
	}
	return t.c.Add(ctx, key, data, ttl)
}

// GetOrSet returns key's value, filling and adding it on a miss; see
// Cache.GetOrSet. A stored value that does not decode as T is a miss too:
// fill runs and its value is written over the undecodable one with a Set
// (not deleted first, so that no other caller finds the key absent in
// between), under the same single flight per key as Cache.GetOrSet's fill,
// with its context (detached from the callers' cancellation, bounded by the
// fill timeout). fill runs at most once per call. A nil fill is an
// ErrInvalidArgument error when fill would be called, and not an error on a
// hit. A panic of the codec is an error; a panic of fill itself is raised
// again in every caller waiting for it, as with Cache.GetOrSet. opts are
// Cache.GetOrSet's (a fill lease).
func (t *Typed[T]) GetOrSet(ctx context.Context, key string, ttl time.Duration, fill func(context.Context) (T, error), opts ...FillOption) (T, error) {
	var zero T
	if !t.ok() {
		return zero, fail("get_or_set", key, errNilCache)
	}
	// fill runs at most once per call, and may run in the background (the
	// refresh of a stale entry) while this call goes on: runMu makes a
	// second run wait for the first and share its result; mu guards what
	// it leaves.
	var (
		runMu  sync.Mutex
		ran    bool
		runErr error
		mu     sync.Mutex
		filled bool   // our fill ran and its value encoded
		mine   T      // its value
		enc    []byte // and its encoding
	)
	run := func(ctx context.Context) ([]byte, error) {
		runMu.Lock()
		defer runMu.Unlock()
		if ran {
			mu.Lock()
			defer mu.Unlock()
			return enc, runErr
		}
		ran = true
		v, err := fill(ctx)
		if err == nil {
			var data []byte
			if data, err = t.marshal(v); err == nil {
				mu.Lock()
				filled, mine, enc = true, v, data
				mu.Unlock()
				return data, nil
			}
		}
		runErr = err
		return nil, err
	}
	result := func() (bool, T, []byte) {
		mu.Lock()
		defer mu.Unlock()
		return filled, mine, enc
	}
	var coreFill func(context.Context) ([]byte, error)
	if fill != nil { // a nil fill stays nil: Cache.GetOrSet refuses it on a miss
		coreFill = run
	}
	data, err := t.c.GetOrSet(ctx, key, ttl, coreFill, opts...)
	if err != nil {
		return zero, err
	}
	ours, v, ourEnc := result()
	if ours && bytes.Equal(data, ourEnc) {
		return v, nil
	}
	if v, err := t.unmarshal(data); err == nil {
		return v, nil
	}
	if ours {
		// Our fill ran but lost the add to an entry that does not decode:
		// our value is the answer; the next read replaces that entry.
		return v, nil
	}
	// A live entry that does not decode as T: a miss, refilled.
	if fill == nil {
		return zero, fail("get_or_set", key, errNilFill)
	}
	fs, err := t.c.fillSettings(opts) // checked by Cache.GetOrSet
	if err != nil {
		return zero, fail("get_or_set", key, err)
	}
	name := t.c.objectName(key)
	res, err := t.c.shareFill(ctx, name, func(ctx context.Context) (any, error) {
		// The flight is Cache.GetOrSet's, with its detached, bounded
		// context: a caller that just finished a fill (or a refill) has
		// stored a value that may decode.
		_, stored, _, err := t.c.read(ctx, name)
		switch {
		case err == nil:
			if _, derr := t.unmarshal(stored); derr == nil {
				return stored, nil
			}
		case !errors.Is(err, ErrMiss):
			return nil, err
		}
		data, err := run(ctx)
		if err != nil {
			return nil, err
		}
		if err := t.c.setNamed(ctx, name, data, ttl, fs.grace); err != nil {
			return nil, err
		}
		return data, nil
	})
	if err != nil {
		return zero, fail("get_or_set", key, err)
	}
	if filled, mine, _ := result(); filled {
		return mine, nil
	}
	// Another caller's flight (a fill or a refill) answered.
	shared, _ := res.([]byte)
	sv, err := t.unmarshal(bytes.Clone(shared)) // shared with the flight's other callers
	if err != nil {
		return zero, fail("get_or_set", key, errors.Join(ErrMiss, err))
	}
	return sv, nil
}

// GetStale returns key's value as Get does, and also a stale one (within
// its grace period, see WithStaleGrace), reporting which; see
// Cache.GetStale. A stale value that does not decode as T is a miss, and
// deleted.
func (t *Typed[T]) GetStale(ctx context.Context, key string) (_ T, stale bool, _ error) {
	var zero T
	if !t.ok() {
		return zero, false, fail("get_stale", key, errNilCache)
	}
	data, stale, err := t.c.GetStale(ctx, key)
	if err != nil {
		return zero, false, err
	}
	v, err := t.unmarshal(data)
	if err != nil {
		name := t.c.objectName(key)
		if derr := t.c.drop(ctx, name); derr != nil {
			return zero, false, fail("get_stale", key, &DeadEntryError{Name: name, Err: derr})
		}
		return zero, false, fail("get_stale", key, errors.Join(ErrMiss, err))
	}
	return v, stale, nil
}

// Delete removes key's entry; see Cache.Delete.
func (t *Typed[T]) Delete(ctx context.Context, key string) (bool, error) {
	if !t.ok() {
		return false, fail("delete", key, errNilCache)
	}
	return t.c.Delete(ctx, key)
}

// Lock takes a lease on name; see Cache.Lock. Leases hold no value, so it is
// the Cache's own.
func (t *Typed[T]) Lock(ctx context.Context, name string, ttl time.Duration) (*Lock, error) {
	if !t.ok() {
		return nil, fail("lock", name, errNilCache)
	}
	return t.c.Lock(ctx, name, ttl)
}

// Increment adds delta to key's integer value, creating it from initial;
// see Cache.Increment. The value is stored as base-10 text, which a
// Typed[int] or Typed[int64] with the JSON codec reads back.
func (t *Typed[T]) Increment(ctx context.Context, key string, delta, initial int64, ttl time.Duration) (int64, error) {
	if !t.ok() {
		return 0, fail("increment", key, errNilCache)
	}
	return t.c.Increment(ctx, key, delta, initial, ttl)
}
