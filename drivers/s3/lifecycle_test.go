package s3_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/go-cmp/cmp"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	"github.com/blobcache/blobcache/drivers/s3"
	"github.com/blobcache/blobcache/internal/s3test"
)

// The expiry class is the smallest power of two days at least the time
// left, rounded up; none past 1024 days or without an expiry.
func TestExpiryClass(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, tc := range []struct {
		left time.Duration
		want int32
	}{
		{-time.Hour, 1}, {0, 1}, {time.Nanosecond, 1}, {time.Minute, 1}, {day, 1},
		{day + time.Nanosecond, 2}, {2 * day, 2}, {3 * day, 4}, {100 * day, 128},
		{1024 * day, 1024}, {1024*day + time.Nanosecond, 0}, {100 * 365 * day, 0},
	} {
		if got := s3.ExpiryClass(now.Add(tc.left), now); got != tc.want {
			t.Errorf("class of %v left = %d, want %d", tc.left, got, tc.want)
		}
	}
	if got := s3.ExpiryClass(time.Time{}, now); got != 0 {
		t.Errorf("class without DeleteAfter = %d, want 0", got)
	}
}

// tags returns the object's tags as key=value strings.
func tags(t *testing.T, client *awss3.Client, bucket, key string) []string {
	t.Helper()
	out, err := client.GetObjectTagging(t.Context(), &awss3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObjectTagging %q: %v", key, err)
	}
	var got []string
	for _, tg := range out.TagSet {
		got = append(got, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
	}
	return got
}

// Writes and replaces tag an object with its expiry class in the PutObject
// itself (one request, the x-amz-tagging header), MinIO reports the tag,
// and a write without DeleteAfter leaves the object untagged, also over a
// tagged one. With lifecycle off nothing is tagged.
func TestLifecycleTags(t *testing.T) {
	e := newEnv(t)
	client := s3test.Client(t, e.cfg, nil)
	ctx := t.Context()
	d := e.open(t, func(o *s3.Options) { o.Lifecycle = s3.LifecycleTag })
	day := 24 * time.Hour
	put := func(name string, after time.Time) {
		t.Helper()
		e.ct.Reset()
		if err := d.Write(ctx, name, strings.NewReader("v"), &driver.WriteOptions{DeleteAfter: after}); err != nil {
			t.Fatalf("Write %q: %v", name, err)
		}
		reqs := e.ct.Requests()
		if len(reqs) != 1 || reqs[0].Op != s3test.PutObject {
			t.Fatalf("Write %q sent %v, want one PutObject", name, reqs)
		}
	}
	now := time.Now()
	for _, tc := range []struct {
		name  string
		after time.Time
		want  []string
	}{
		{"hour", now.Add(time.Hour), []string{"blobcache-expires=1d"}},
		{"dead", now.Add(-time.Hour), []string{"blobcache-expires=1d"}},
		{"three-days", now.Add(3 * day), []string{"blobcache-expires=4d"}},
		{"year", now.Add(365 * day), []string{"blobcache-expires=512d"}},
		{"forever", time.Time{}, nil},
		{"decades", now.Add(3000 * day), nil},
	} {
		put(tc.name, tc.after)
		if got := tags(t, client, e.bucket, tc.name); !slices.Equal(got, tc.want) {
			t.Errorf("%s: tags %v, want %v", tc.name, got, tc.want)
		}
	}
	// An overwrite without an expiry drops the tag.
	put("hour", time.Time{})
	if got := tags(t, client, e.bucket, "hour"); len(got) != 0 {
		t.Errorf("overwritten without DeleteAfter: tags %v, want none", got)
	}
	// Replace tags as Write does, in its one PutObject.
	_, a := read(t, d, "three-days")
	e.ct.Reset()
	if err := d.Replace(ctx, "three-days", strings.NewReader("w"), a.ETag, &driver.WriteOptions{DeleteAfter: now.Add(10 * day)}); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	e.counts(t, "Replace", map[s3test.Op]int{s3test.PutObject: 1})
	if got, want := tags(t, client, e.bucket, "three-days"), []string{"blobcache-expires=16d"}; !slices.Equal(got, want) {
		t.Errorf("after Replace: tags %v, want %v", got, want)
	}

	off := e.open(t, nil)
	if err := off.Write(ctx, "off", strings.NewReader("v"), &driver.WriteOptions{DeleteAfter: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if h := e.ct.Requests()[0].Header.Get("X-Amz-Tagging"); h != "" {
		t.Errorf("lifecycle off sent x-amz-tagging %q", h)
	}
	if got := tags(t, client, e.bucket, "off"); len(got) != 0 {
		t.Errorf("lifecycle off: tags %v, want none", got)
	}
}

// Through the cache (a URL with lifecycle=tag): an entry with a TTL is
// tagged by its expiry plus grace, one without is not, and Touch retags.
func TestLifecycleCacheEntries(t *testing.T) {
	e := newEnv(t)
	client := s3test.Client(t, e.cfg, nil)
	ctx := t.Context()
	q := url.Values{}
	q.Set("endpoint", e.cfg.Endpoint)
	q.Set("region", e.cfg.Region)
	q.Set("use_path_style", "true")
	q.Set("access_key", e.cfg.AccessKey)
	q.Set("secret_key", e.cfg.SecretKey)
	q.Set("lifecycle", "tag")
	q.Set("location", "c")
	q.Set("stale_grace", "72h")
	c, err := cache.Open(ctx, "s3://"+e.bucket+"?"+q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	day := 24 * time.Hour
	check := func(key string, want ...string) {
		t.Helper()
		if got := tags(t, client, e.bucket, c.ObjectName(key)); !slices.Equal(got, want) {
			t.Errorf("%s: tags %v, want %v", key, got, want)
		}
	}
	if err := c.Set(ctx, "minute", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	check("minute", "blobcache-expires=4d") // a minute plus 72 h of grace
	if err := c.Set(ctx, "forever", []byte("v"), cache.NoExpiry); err != nil {
		t.Fatal(err)
	}
	check("forever")
	if ok, err := c.Touch(ctx, "minute", 20*day); err != nil || !ok {
		t.Fatalf("Touch: %v, %v", ok, err)
	}
	check("minute", "blobcache-expires=32d")
	if ok, err := c.Touch(ctx, "minute", cache.NoExpiry); err != nil || !ok {
		t.Fatalf("Touch: %v, %v", ok, err)
	}
	check("minute")
}

// putRules replaces the bucket's lifecycle configuration with rules (none:
// deletes it).
func putRules(t *testing.T, client *awss3.Client, bucket string, rules []types.LifecycleRule) {
	t.Helper()
	var err error
	if len(rules) == 0 {
		_, err = client.DeleteBucketLifecycle(t.Context(), &awss3.DeleteBucketLifecycleInput{Bucket: aws.String(bucket)})
	} else {
		_, err = client.PutBucketLifecycleConfiguration(t.Context(), &awss3.PutBucketLifecycleConfigurationInput{
			Bucket: aws.String(bucket), LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: rules},
		})
	}
	if err != nil {
		t.Fatalf("setting the lifecycle configuration: %v", err)
	}
}

func ruleIDs(t *testing.T, client *awss3.Client, bucket string) []string {
	t.Helper()
	out, err := client.GetBucketLifecycleConfiguration(t.Context(), &awss3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("GetBucketLifecycleConfiguration: %v", err)
	}
	var ids []string
	for _, r := range out.Rules {
		ids = append(ids, aws.ToString(r.ID))
	}
	slices.Sort(ids)
	return ids
}

// lifecycle=install merges the rules into the bucket's configuration
// (keeping a foreign rule) with one read and one write, then only reads
// once they are there; lifecycle=verify fails, naming them, when rules are
// missing or changed; the JSON the CLI prints installs the same rules.
func TestLifecycleInstallAndVerify(t *testing.T) {
	e := newEnv(t)
	client := s3test.Client(t, e.cfg, nil)
	var ours []string
	for _, r := range s3.LifecycleRules() {
		ours = append(ours, aws.ToString(r.ID))
	}
	if len(ours) != 11 || ours[0] != "blobcache-expires-1d" || ours[10] != "blobcache-expires-1024d" {
		t.Fatalf("rule IDs %v, want blobcache-expires-1d ... -1024d", ours)
	}
	open := func(mode string) error {
		t.Helper()
		opts := e.options()
		opts.Lifecycle = mode
		e.ct.Reset()
		d, err := s3.Open(t.Context(), e.bucket, opts)
		if err == nil {
			d.Close()
		}
		return err
	}

	// No configuration at all: verify names every rule as missing.
	err := open(s3.LifecycleVerify)
	if !errors.Is(err, s3.ErrLifecycleRules) || !strings.Contains(err.Error(), "missing "+strings.Join(ours, ", ")) {
		t.Fatalf("verify without a configuration: %v, want ErrLifecycleRules naming all %d rules", err, len(ours))
	}
	e.counts(t, "Open verify", map[s3test.Op]int{s3test.HeadBucket: 1, s3test.Other: 1})

	foreign := types.LifecycleRule{
		ID: aws.String("someone-elses"), Status: types.ExpirationStatusEnabled,
		Filter:     &types.LifecycleRuleFilter{Prefix: aws.String("logs/")},
		Expiration: &types.LifecycleExpiration{Days: aws.Int32(30)},
	}
	changed := s3.LifecycleRules()[2]
	changed.Expiration = &types.LifecycleExpiration{Days: aws.Int32(3)} // 4d's rule deleting after 3 days
	putRules(t, client, e.bucket, []types.LifecycleRule{foreign, changed})
	err = open(s3.LifecycleVerify)
	if !errors.Is(err, s3.ErrLifecycleRules) || !strings.Contains(err.Error(), "changed blobcache-expires-4d") || strings.Contains(err.Error(), "missing blobcache-expires-4d") {
		t.Errorf("verify with a changed rule: %v, want it named as changed", err)
	}

	if err := open(s3.LifecycleInstall); err != nil {
		t.Fatalf("Open install: %v", err)
	}
	e.counts(t, "Open install", map[s3test.Op]int{s3test.HeadBucket: 1, s3test.Other: 2})
	want := append([]string{"someone-elses"}, ours...)
	slices.Sort(want)
	if diff := cmp.Diff(want, ruleIDs(t, client, e.bucket)); diff != "" {
		t.Errorf("rules after install (-want +got):\n%s", diff)
	}
	if err := open(s3.LifecycleVerify); err != nil {
		t.Errorf("verify after install: %v", err)
	}
	if err := open(s3.LifecycleInstall); err != nil {
		t.Fatalf("second Open install: %v", err)
	}
	e.counts(t, "second Open install", map[s3test.Op]int{s3test.HeadBucket: 1, s3test.Other: 1})
	if err := open(s3.LifecycleTag); err != nil {
		t.Fatalf("Open tag: %v", err)
	}
	e.counts(t, "Open tag", map[s3test.Op]int{s3test.HeadBucket: 1})

	// The printed JSON, as the AWS CLI would send it, is the same rules.
	putRules(t, client, e.bucket, nil)
	var cfg types.BucketLifecycleConfiguration
	if err := json.Unmarshal(s3.LifecycleJSON(), &cfg); err != nil {
		t.Fatalf("LifecycleJSON does not decode: %v\n%s", err, s3.LifecycleJSON())
	}
	putRules(t, client, e.bucket, cfg.Rules)
	if err := open(s3.LifecycleVerify); err != nil {
		t.Errorf("verify after installing LifecycleJSON: %v", err)
	}
}
