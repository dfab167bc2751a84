// Package memuse measures the heap memory one operation uses. The
// conformance suite's bounded-read cases and package bench's memory
// measurements both use it; bench.MeasureMemory is its public face.
package memuse

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// Use is what one operation cost in heap memory.
type Use struct {
	// Allocated is the bytes allocated during the operation: an upper
	// bound of how much the heap grew.
	Allocated uint64
	// Peak is the largest growth of live heap objects seen while the
	// operation ran, sampled every 100µs: a lower bound of the true peak.
	Peak uint64
}

// Measure runs f once, after a GC, and reports the memory it used. Other
// goroutines' allocations count too, so run it alone.
func Measure(f func() error) (Use, error) {
	samples := []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
	}
	runtime.GC()
	metrics.Read(samples)
	alloc0, live0 := samples[0].Value.Uint64(), samples[1].Value.Uint64()
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(100 * time.Microsecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > live0 && v-live0 > peak.Load() {
				peak.Store(v - live0)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	err := f()
	metrics.Read(samples)
	close(done)
	wg.Wait()
	if v := samples[1].Value.Uint64(); v > live0 && v-live0 > peak.Load() {
		peak.Store(v - live0)
	}
	return Use{Allocated: samples[0].Value.Uint64() - alloc0, Peak: peak.Load()}, err
}
