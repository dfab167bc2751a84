package bench

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoStoreSDK checks that package bench compiles no store SDK: a driver
// written outside the module benchmarks with it and compiles only its own
// (the Go CDK comparison lives in bench/gocdk).
func TestNoStoreSDK(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	var bad []string
	for dep := range strings.FieldsSeq(string(out)) {
		for _, sdk := range []string{"gocloud.dev/", "google.golang.org/", "cloud.google.com/", "github.com/aws/", "github.com/Azure/"} {
			if strings.HasPrefix(dep, sdk) {
				bad = append(bad, dep)
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("bench depends on %d packages of store SDKs, such as %s", len(bad), bad[0])
	}
}
