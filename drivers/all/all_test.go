package all_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goList runs go list in the module and returns its output's lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.Fields(string(out))
}

// storeSDKs are import path prefixes of store clients: none may reach the
// core.
var storeSDKs = []string{"github.com/aws/", "gocloud.dev/", "google.golang.org/", "cloud.google.com/", "github.com/Azure/"}

// TestCoreImportsNoDriver checks the package graph the README's layout
// section draws: the cache depends on contracts only, and a program that
// opens only file:// URLs links no cloud SDK.
func TestCoreImportsNoDriver(t *testing.T) {
	// 159 today: the standard library, OpenTelemetry's API, x/sync, and
	// otter (12 packages of pure Go, the local tier's memory).
	const limit = 165
	deps := goList(t, "-deps", "./cache")
	if len(deps) > limit {
		t.Errorf("go list -deps ./cache: %d packages, want at most %d", len(deps), limit)
	}
	checkNoSDK(t, "./cache", deps)
	for _, dep := range deps {
		if strings.HasPrefix(dep, "github.com/blobcache/blobcache/drivers/") {
			t.Errorf("cache depends on the driver %s", dep)
		}
	}
	for _, pkg := range []string{"./drivers/file", "./drivers/mem", "./driver", "./cull"} {
		checkNoSDK(t, pkg, goList(t, "-deps", pkg))
	}
	t.Logf("go list -deps ./cache: %d packages", len(deps))
}

// checkNoSDK fails the test when deps, the dependencies of pkg, hold a
// store SDK, naming the first and counting the others.
func checkNoSDK(t *testing.T, pkg string, deps []string) {
	t.Helper()
	var bad []string
	for _, dep := range deps {
		for _, sdk := range storeSDKs {
			if strings.HasPrefix(dep, sdk) {
				bad = append(bad, dep)
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("%s depends on %d packages of store SDKs, such as %s", pkg, len(bad), bad[0])
	}
}

// TestOnlyDriversS3ImportsTheAWSSDK checks that S3 code lives in one
// package: no other package (tests and the S3 test helper aside) imports
// the AWS SDK.
func TestOnlyDriversS3ImportsTheAWSSDK(t *testing.T) {
	lines := goList(t, "-f", "{{.ImportPath}}:{{join .Imports \",\"}}", "./...")
	for _, line := range lines {
		pkg, imports, _ := strings.Cut(line, ":")
		rel := strings.TrimPrefix(pkg, "github.com/blobcache/blobcache/")
		if rel == "drivers/s3" || rel == "internal/s3test" {
			continue
		}
		for imp := range strings.SplitSeq(imports, ",") {
			if strings.HasPrefix(imp, "github.com/aws/") {
				t.Errorf("%s imports %s: S3 code belongs in drivers/s3", rel, imp)
			}
		}
	}
}

// TestFileOnlyBinarySize builds a program that uses only file:// and checks
// it links less than a third of what a program linking every driver did
// (32 MB: the quickstart before the registry).
func TestFileOnlyBinarySize(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	const limit = 32 << 20 / 3
	bin := filepath.Join(t.TempDir(), "fileonly")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/fileonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > limit {
		t.Errorf("a file-only program is %d bytes, want at most %d", fi.Size(), limit)
	}
	t.Logf("a file-only program: %.1f MB", float64(fi.Size())/(1<<20))
}
