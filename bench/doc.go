// Package bench measures a blobcache cache against the storage under it, in
// two ways.
//
// # Benchmarks, for driver authors
//
// [RunBenchmarks] runs testing.B benchmarks of every cache operation beside
// the raw driver operation doing the same storage work and, when the harness
// opens a Go CDK bucket ([BucketHarness]; package bench/gocdk adapts one), the
// Go CDK's portable operation:
//
//	func BenchmarkCache(b *testing.B) {
//		bench.RunBenchmarks(b, func(ctx context.Context, tb testing.TB) (bench.Harness, error) {
//			return &harness{dir: tb.TempDir()}, nil
//		})
//	}
//
// A [Harness] has the methods of conformance.Harness, so the harness a
// driver's conformance test already has serves here too. One that
// implements [RequestCounter] also gets req/op (wrap the drivers it makes
// with counting.Wrap, or count HTTP requests). [ValueMemory] and
// [MeasureMemory] measure the heap memory of large values.
//
//	go test -run XXX -bench Cache -benchmem -count 5 ./yourdriver/ > b.txt
//	benchstat -col /impl b.txt
//
// # The load generator, behind the blobcache bench command
//
// Workers run a [Mix] of cache operations on random keys for a duration (or
// a number of operations) and the run reports throughput, latency
// percentiles and store requests per operation ([RunLoad]). The same
// workload run on the raw driver gives the cache's overhead as a throughput
// ratio ([Compare]):
//
//	c, _ := cache.Open(ctx, "s3://bucket?location=bench&max_entries=0")
//	mix, _ := bench.ParseMix("get=90,set=10")
//	cmp, err := bench.Compare(ctx, c, bench.Workload{Workers: 64, Duration: 30 * time.Second, Mix: mix})
//	fmt.Print(cmp)
//
// A run first writes every key of the keyspace once (not measured), so that
// gets hit. The cache run uses keys "loadgen-<n>"; the raw run uses objects
// "loadgen-raw/<hex>" (names as long as the cache's) through the cache's own
// driver. Compare deletes both afterwards. The load generator's errors
// begin "loadgen: ", as the names it writes do, so that the blobcache
// command's messages read as they always have.
package bench
