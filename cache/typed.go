package cache

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"time"
)

// Codec turns values of type T into bytes and back. Codecs must not execute
// anything found in the bytes: a reader of the cache must be safe from whoever
// can write to the store.
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
// stored value that does not decode as T is a miss and is deleted, as a
// corrupt entry is.
type Typed[T any] struct {
	c     *Cache
	codec Codec[T]
}

// NewTyped returns a typed view of c. A nil codec means JSON.
func NewTyped[T any](c *Cache, codec Codec[T]) *Typed[T] {
	if codec == nil {
		codec = JSON[T]{}
	}
	return &Typed[T]{c: c, codec: codec}
}

// Cache returns the untyped cache underneath.
func (t *Typed[T]) Cache() *Cache { return t.c }

// Get returns key's value; errors.Is(err, ErrMiss) when there is none.
func (t *Typed[T]) Get(ctx context.Context, key string) (T, error) {
	var v T
	data, err := t.c.Get(ctx, key)
	if err != nil {
		return v, err
	}
	if err := t.codec.Unmarshal(data, &v); err != nil {
		var zero T
		if derr := t.c.drop(ctx, t.c.objectName(key)); derr != nil {
			return zero, fail("get", key, derr)
		}
		return zero, fail("get", key, errors.Join(ErrMiss, err))
	}
	return v, nil
}

// Set stores v under key; see Cache.Set.
func (t *Typed[T]) Set(ctx context.Context, key string, v T, ttl time.Duration) error {
	data, err := t.codec.Marshal(v)
	if err != nil {
		return fail("set", key, err)
	}
	return t.c.Set(ctx, key, data, ttl)
}

// Add stores v only if key has no live entry; see Cache.Add.
func (t *Typed[T]) Add(ctx context.Context, key string, v T, ttl time.Duration) (bool, error) {
	data, err := t.codec.Marshal(v)
	if err != nil {
		return false, fail("add", key, err)
	}
	return t.c.Add(ctx, key, data, ttl)
}

// GetOrSet returns key's value, filling and adding it on a miss; see
// Cache.GetOrSet.
func (t *Typed[T]) GetOrSet(ctx context.Context, key string, ttl time.Duration, fill func(context.Context) (T, error)) (T, error) {
	var zero T
	data, err := t.c.GetOrSet(ctx, key, ttl, func(ctx context.Context) ([]byte, error) {
		v, err := fill(ctx)
		if err != nil {
			return nil, err
		}
		return t.codec.Marshal(v)
	})
	if err != nil {
		return zero, err
	}
	var v T
	if err := t.codec.Unmarshal(data, &v); err != nil {
		return zero, fail("get_or_set", key, err)
	}
	return v, nil
}

// Delete removes key's entry; see Cache.Delete.
func (t *Typed[T]) Delete(ctx context.Context, key string) (bool, error) {
	return t.c.Delete(ctx, key)
}
