package storage

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// OpenExisting does not create a missing local directory; Open does.
func TestOpenExistingCreatesNothing(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a", "b")
	for _, uri := range []string{dir, "file://" + dir} {
		_, err := OpenExisting(ctx, uri)
		var nd *NoDirectoryError
		if !errors.As(err, &nd) || nd.Dir != dir || !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("OpenExisting(%s): %v, want a *NoDirectoryError for %s", uri, err, dir)
		}
		if _, err := os.Stat(filepath.Dir(dir)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("OpenExisting(%s) created %s", uri, filepath.Dir(dir))
		}
	}
	loc, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	loc.Close()
	loc, err = OpenExisting(ctx, dir)
	if err != nil {
		t.Fatalf("OpenExisting after Open: %v", err)
	}
	loc.Close()
	if loc, err := OpenExisting(ctx, "mem://open-existing-test"); err != nil {
		t.Fatalf("mem://: %v", err)
	} else {
		loc.Close()
	}
}
