package main

import (
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTestArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		race bool
		want string
	}{
		{nil, true, "test -race -count=1 -timeout=25m ./drivers/s3 ./drivers/azure ./drivers/gcs ./..."},
		{nil, false, "test -count=1 -timeout=25m ./drivers/s3 ./drivers/azure ./drivers/gcs ./..."},
		{[]string{"./drivers/..."}, true, "test -race -count=1 -timeout=25m ./drivers/..."},
		// -run's value is not a package, even with a slash in it.
		{[]string{"-run", "Conformance/s3", "./drivers/..."}, true,
			"test -race -count=1 -timeout=25m -run Conformance/s3 ./drivers/..."},
		{[]string{"-v", "-run=X"}, true, "test -race -count=1 -timeout=25m -v -run=X ./drivers/s3 ./drivers/azure ./drivers/gcs ./..."},
		{[]string{"-short", "./cache", "./cull"}, true, "test -race -count=1 -timeout=25m -short ./cache ./cull"},
		// Flags the user sets replace the defaults.
		{[]string{"-race=false", "-count", "3", "--timeout=1h"}, true, "test -race=false -count 3 --timeout=1h ./drivers/s3 ./drivers/azure ./drivers/gcs ./..."},
		{[]string{"-test.count=2"}, true, "test -race -timeout=25m -test.count=2 ./drivers/s3 ./drivers/azure ./drivers/gcs ./..."},
		// Everything from -args on is for the test binaries.
		{[]string{"-v", "./cache", "-args", "-flag", "x"}, true,
			"test -race -count=1 -timeout=25m -v ./cache -args -flag x"},
		{[]string{"-args", "./notapkg"}, false, "test -count=1 -timeout=25m ./drivers/s3 ./drivers/azure ./drivers/gcs ./... -args ./notapkg"},
	} {
		got := strings.Join(testArgs(tc.args, tc.race), " ")
		if got != tc.want {
			t.Errorf("testArgs(%q, %v)\n got %s\nwant %s", tc.args, tc.race, got, tc.want)
		}
	}
}

// buildInfo parses the build info that `go version -m` prints (without its
// first line and indentation).
func buildInfo(t *testing.T, s string) *debug.BuildInfo {
	t.Helper()
	bi, err := debug.ParseBuildInfo(s)
	if err != nil {
		t.Fatal(err)
	}
	return bi
}

func TestIsPinned(t *testing.T) {
	const pinned = "path\tgithub.com/minio/minio\n" +
		"mod\tgithub.com/minio/minio\tv0.0.0-20260212201848-7aac2a2c5b7c\th1:/qdoYujxF5MBLDMVLeiYJ/7fBa1HikX39Dvzb9Ji8pA=\n" +
		"dep\taead.dev/mem\tv0.2.0\th1:ufgkESS9+lHV/GUjxgc2ObF43FLZGSemh+W+y27QFMI=\n"
	if !minioTool.isPinned(buildInfo(t, pinned)) {
		t.Error("pinned MinIO not recognised")
	}
	for name, s := range map[string]string{
		"older":    strings.ReplaceAll(pinned, "20260212201848-7aac2a2c5b7c", "20250101000000-000000000000"),
		"devel":    "path\tgithub.com/minio/minio\nmod\tgithub.com/minio/minio\t(devel)\t\n",
		"replaced": strings.Replace(pinned, "\ndep", "\n=>\t../minio\t(devel)\t\ndep", 1),
		"other":    "path\texample.com/minio\nmod\texample.com/minio\tv0.0.0-20260212201848-7aac2a2c5b7c\t\n",
	} {
		if minioTool.isPinned(buildInfo(t, s)) {
			t.Errorf("%s: wrongly taken for the pinned MinIO", name)
		}
	}
	if minioTool.isPinned(nil) {
		t.Error("nil build info taken for the pinned MinIO")
	}
}

func TestInstallGOFLAGS(t *testing.T) {
	got := installGOFLAGS("-mod=mod -buildvcs=false  --modfile=x.mod -trimpath -modcacherw")
	if want := "-buildvcs=false -trimpath -modcacherw"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestMinioPath(t *testing.T) {
	sep := string(filepath.ListSeparator)
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"GOBIN": "/gobin", "GOPATH": "/gopath"}, filepath.Join("/gobin", "minio")},
		{map[string]string{"GOPATH": "/a" + sep + "/b"}, filepath.Join("/a", "bin", "minio")},
		{map[string]string{"GOPATH": "/a", "GOEXE": ".exe"}, filepath.Join("/a", "bin", "minio.exe")},
	} {
		if got := minioTool.path(tc.env); got != tc.want {
			t.Errorf("path(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}

func TestTail(t *testing.T) {
	if diff := cmp.Diff("c\nd", tail([]byte("a\nb\nc\nd\n"), 2)); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff("a", tail([]byte("a"), 5)); diff != "" {
		t.Error(diff)
	}
}

func TestRunsGoTestDirectly(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"./..."}, false},
		{[]string{"-run", "X", "./cache/"}, false},
		{[]string{"-json", "./cache/"}, true},
		{[]string{"-run", "XXX", "-bench", "Cache/Has", "-benchtime=200x", "./drivers/s3/"}, true},
		{[]string{"-bench=.", "./bench/"}, true},
	} {
		set, _, _, _ := splitArgs(tc.args)
		if got := runsGoTestDirectly(set); got != tc.want {
			t.Errorf("runsGoTestDirectly(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}
