package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	lakeBin   string
	buildErr  error
)

// lake builds cmd/lake once per test binary and returns its path.
func lake(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lake-bin")
		if err != nil {
			buildErr = err
			return
		}
		lakeBin = filepath.Join(dir, "lake")
		cmd := exec.Command("go", "build", "-o", lakeBin, "./cmd/lake")
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = err
			lakeBin = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build lake: %v\n%s", buildErr, lakeBin)
	}
	return lakeBin
}

// runLake runs the lake binary and returns stdout; it fails the test on a non-zero exit.
func runLake(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := runLakeErr(context.Background(), t, args...)
	if err != nil {
		t.Fatalf("lake %v: %v\n%s", args, err, errOut)
	}
	return out
}

func runLakeErr(ctx context.Context, t *testing.T, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, lake(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// requireEnv returns an env var's value; when it is missing it fails in CI and skips elsewhere.
func requireEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: run scripts/services.sh start and eval \"$(scripts/services.sh env)\"", name)
		}
		t.Skipf("%s is not set (start the emulators with scripts/services.sh)", name)
	}
	return v
}

func runCmd(ctx context.Context, bin string, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}
