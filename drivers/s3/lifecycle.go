package s3

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Expiry the store does itself: with [Options.Lifecycle] set, every object
// written with a [driver.WriteOptions.DeleteAfter] (every cache entry with
// an expiry) carries one object tag, LifecycleTagKey=<N>d, its expiry
// class, sent as the x-amz-tagging header of the same PutObject (or
// CreateMultipartUpload): no extra request. The class is the smallest of 1,
// 2, 4, ..., 1024 days that is at least the time left until DeleteAfter,
// rounded up to whole days (1 for an entry already dead); an entry with no
// expiry, or dead more than 1024 days from now, is written untagged, and
// so is every object written without DeleteAfter (an overwrite without an
// expiry drops the tag: S3 replaces an object's tags with its body). The
// matching lifecycle rules ([LifecycleRules]), one per class, delete a
// tagged object N days after it was written (S3 rounds up to the next
// midnight UTC), so never before its entry is dead, and at most about
// twice its lifetime plus a day after it was written. They select objects
// by the tag alone, so one set of rules serves every cache in the bucket,
// whatever its location, and no object blobcache did not tag. Each rule
// also expires noncurrent versions a day after they stop being current, on
// a bucket with versioning.
const (
	// LifecycleTagKey is the key of the object tag that holds an entry's
	// expiry class.
	LifecycleTagKey = "blobcache-expires"
	// LifecycleRulePrefix starts the ID of every lifecycle rule of
	// blobcache's: LifecycleRulePrefix + "<N>d".
	LifecycleRulePrefix = "blobcache-expires-"
	// maxLifecycleClass is the longest expiry class, in days.
	maxLifecycleClass = 1024
)

// The values of [Options.Lifecycle].
const (
	// LifecycleOff writes no tags and sends no lifecycle request. It is the
	// default: tagging needs the s3:PutObjectTagging permission besides
	// s3:PutObject (a policy without it refuses every write), and S3 bills
	// tags by the month.
	LifecycleOff = "off"
	// LifecycleTag tags every entry with its expiry class; the rules are
	// the operator's to install (the blobcache command's lifecycle prints
	// them).
	LifecycleTag = "tag"
	// LifecycleVerify tags, and checks at Open, with one
	// GetBucketLifecycleConfiguration, that the bucket has every rule of
	// [LifecycleRules] as given there; otherwise Open fails with an error
	// wrapping [ErrLifecycleRules] that names the rules missing or
	// different. It needs s3:GetLifecycleConfiguration.
	LifecycleVerify = "verify"
	// LifecycleInstall tags, and at Open reads the bucket's lifecycle
	// configuration and, unless it already holds every rule as given,
	// writes it back with the rules added or corrected: two requests (one
	// when nothing is to change). Every other rule is kept. S3 has no
	// conditional write of a lifecycle configuration, so a rule another
	// tool adds between the read and the write is lost. It needs
	// s3:GetLifecycleConfiguration and s3:PutLifecycleConfiguration.
	LifecycleInstall = "install"
)

var lifecycleModes = []string{LifecycleOff, LifecycleTag, LifecycleVerify, LifecycleInstall}

// ErrLifecycleRules is wrapped by the error of an Open with
// lifecycle=verify whose bucket lacks some of [LifecycleRules], or holds
// them changed.
var ErrLifecycleRules = errors.New("s3: the bucket's lifecycle configuration lacks blobcache's rules")

// lifecycleClasses are the expiry classes, in days.
var lifecycleClasses = func() []int32 {
	var out []int32
	for n := int32(1); n <= maxLifecycleClass; n *= 2 {
		out = append(out, n)
	}
	return out
}()

// expiryClass returns the expiry class of an object dead after deleteAfter
// and written at now: the days of its rule, or 0 for none (no
// deleteAfter, or too far away).
func expiryClass(deleteAfter, now time.Time) int32 {
	if deleteAfter.IsZero() {
		return 0
	}
	left := deleteAfter.Sub(now)
	days := int64(1)
	if left > 0 {
		days = int64((left + 24*time.Hour - 1) / (24 * time.Hour))
	}
	for _, c := range lifecycleClasses {
		if int64(c) >= days {
			return c
		}
	}
	return 0
}

// lifecycleTagging returns the x-amz-tagging value of an object dead after
// deleteAfter, written now: "" when it gets no tag.
func lifecycleTagging(deleteAfter, now time.Time) string {
	c := expiryClass(deleteAfter, now)
	if c == 0 {
		return ""
	}
	return LifecycleTagKey + "=" + classValue(c)
}

func classValue(days int32) string { return strconv.Itoa(int(days)) + "d" }

// LifecycleRules returns the lifecycle rules that delete the entries a
// driver with [Options.Lifecycle] set tags: one per expiry class, with the
// ID LifecycleRulePrefix+"<N>d", a filter on the tag LifecycleTagKey=<N>d,
// Expiration after N days and NoncurrentVersionExpiration after one. They
// are what lifecycle=install installs and lifecycle=verify looks for.
func LifecycleRules() []types.LifecycleRule {
	rules := make([]types.LifecycleRule, len(lifecycleClasses))
	for i, c := range lifecycleClasses {
		rules[i] = types.LifecycleRule{
			ID:                          aws.String(LifecycleRulePrefix + classValue(c)),
			Status:                      types.ExpirationStatusEnabled,
			Filter:                      &types.LifecycleRuleFilter{Tag: &types.Tag{Key: aws.String(LifecycleTagKey), Value: aws.String(classValue(c))}},
			Expiration:                  &types.LifecycleExpiration{Days: aws.Int32(c)},
			NoncurrentVersionExpiration: &types.NoncurrentVersionExpiration{NoncurrentDays: aws.Int32(1)},
		}
	}
	return rules
}

// LifecycleJSON returns [LifecycleRules] as the JSON lifecycle
// configuration the AWS CLI takes (aws s3api
// put-bucket-lifecycle-configuration --lifecycle-configuration file://...),
// indented. Installing it replaces the bucket's configuration: merge it
// with any rules the bucket has.
func LifecycleJSON() []byte {
	type tag struct{ Key, Value string }
	type rule struct {
		ID                          string
		Status                      string
		Filter                      struct{ Tag tag }
		Expiration                  struct{ Days int32 }
		NoncurrentVersionExpiration struct{ NoncurrentDays int32 }
	}
	var cfg struct{ Rules []rule }
	for _, r := range LifecycleRules() {
		var j rule
		j.ID = aws.ToString(r.ID)
		j.Status = string(r.Status)
		j.Filter.Tag = tag{aws.ToString(r.Filter.Tag.Key), aws.ToString(r.Filter.Tag.Value)}
		j.Expiration.Days = aws.ToInt32(r.Expiration.Days)
		j.NoncurrentVersionExpiration.NoncurrentDays = aws.ToInt32(r.NoncurrentVersionExpiration.NoncurrentDays)
		cfg.Rules = append(cfg.Rules, j)
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		panic(err) // plain structs of strings and integers always marshal
	}
	return append(b, '\n')
}

// sameRule reports whether the bucket's rule r is ours as want has it.
func sameRule(r, want types.LifecycleRule) bool {
	tagOf := func(f *types.LifecycleRuleFilter) (string, string, bool) {
		if f == nil || f.And != nil || f.Prefix != nil && *f.Prefix != "" || f.ObjectSizeGreaterThan != nil || f.ObjectSizeLessThan != nil || f.Tag == nil {
			return "", "", false
		}
		return aws.ToString(f.Tag.Key), aws.ToString(f.Tag.Value), true
	}
	k, v, ok := tagOf(r.Filter)
	wk, wv, _ := tagOf(want.Filter)
	return ok && k == wk && v == wv &&
		r.Status == want.Status &&
		r.Expiration != nil && r.Expiration.Date == nil && aws.ToInt32(r.Expiration.Days) == aws.ToInt32(want.Expiration.Days) &&
		r.NoncurrentVersionExpiration != nil && aws.ToInt32(r.NoncurrentVersionExpiration.NoncurrentDays) == aws.ToInt32(want.NoncurrentVersionExpiration.NoncurrentDays) &&
		len(r.Transitions) == 0 && len(r.NoncurrentVersionTransitions) == 0
}

// getLifecycle returns the bucket's lifecycle rules: none when it has no
// configuration.
func getLifecycle(ctx context.Context, client *s3.Client, bucket string) ([]types.LifecycleRule, error) {
	out, err := client.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(bucket)})
	if s3Code(err) == "NoSuchLifecycleConfiguration" {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("s3: bucket %q: reading the lifecycle configuration: %w", bucket, err)
	}
	return out.Rules, nil
}

// lifecycleDiff returns the IDs of our rules that rules lacks or holds
// changed.
func lifecycleDiff(rules []types.LifecycleRule) (missing, changed []string) {
	for _, want := range LifecycleRules() {
		id := aws.ToString(want.ID)
		i := slices.IndexFunc(rules, func(r types.LifecycleRule) bool { return aws.ToString(r.ID) == id })
		switch {
		case i < 0:
			missing = append(missing, id)
		case !sameRule(rules[i], want):
			changed = append(changed, id)
		}
	}
	return missing, changed
}

// setUpLifecycle does what mode asks at Open: nothing for off and tag, a
// check for verify, a merge for install.
func setUpLifecycle(ctx context.Context, client *s3.Client, bucket, mode string) error {
	if mode != LifecycleVerify && mode != LifecycleInstall {
		return nil
	}
	rules, err := getLifecycle(ctx, client, bucket)
	if err != nil {
		return err
	}
	missing, changed := lifecycleDiff(rules)
	if len(missing)+len(changed) == 0 {
		return nil
	}
	if mode == LifecycleVerify {
		var parts []string
		if len(missing) > 0 {
			parts = append(parts, "missing "+strings.Join(missing, ", "))
		}
		if len(changed) > 0 {
			parts = append(parts, "changed "+strings.Join(changed, ", "))
		}
		return fmt.Errorf("%w: bucket %q: %s (install them with lifecycle=install, or print them with blobcache lifecycle)", ErrLifecycleRules, bucket, strings.Join(parts, "; "))
	}
	ours := LifecycleRules()
	kept := slices.DeleteFunc(rules, func(r types.LifecycleRule) bool {
		return slices.ContainsFunc(ours, func(o types.LifecycleRule) bool { return aws.ToString(o.ID) == aws.ToString(r.ID) })
	})
	_, err = client.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
		Bucket:                 aws.String(bucket),
		LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: append(kept, ours...)},
	})
	if err != nil {
		return fmt.Errorf("s3: bucket %q: installing the lifecycle rules: %w", bucket, err)
	}
	return nil
}

// tagHook returns the BeforeWrite hook that tags an object dead after
// deleteAfter, or nil when the driver does not tag or the object gets no
// tag.
func (d *Driver) tagHook(deleteAfter time.Time) func(asFunc func(any) bool) error {
	if !d.tagging {
		return nil
	}
	tagging := lifecycleTagging(deleteAfter, time.Now())
	if tagging == "" {
		return nil
	}
	return func(asFunc func(any) bool) error {
		var in *transfermanager.UploadObjectInput
		if !asFunc(&in) || in == nil {
			return errors.New("s3: the s3blob writer does not expose *transfermanager.UploadObjectInput")
		}
		in.Tagging = aws.String(tagging)
		return nil
	}
}
