package storage

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/lakehouse/lake/txlog"
)

const commitKey = "_delta_log/00000000000000000000.json"

// files returns every file and directory under dir, relative and slash-separated.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			if d.IsDir() {
				rel += "/"
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func wantFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	if got := files(t, dir); !slices.Equal(got, want) {
		t.Fatalf("directory holds %q, want %q", got, want)
	}
}

func openHooked(t *testing.T, hook func(ctx context.Context, cancel context.CancelFunc, f *os.File, r io.Reader) error) (*Location, context.Context) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l := &localFS{dir: t.TempDir()}
	l.hookWrite = func(f *os.File, r io.Reader) error { return hook(ctx, cancel, f, r) }
	loc, err := openLocalFS(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loc.Close() })
	return loc, ctx
}

// TestLocalTornCommit fails the copy into the temporary file halfway: nothing appears at the
// key, the temporary file is gone, and the outcome is reported as an error that is not
// ErrVersionExists.
func TestLocalTornCommit(t *testing.T) {
	errDisk := errors.New("disk full")
	loc, ctx := openHooked(t, func(_ context.Context, _ context.CancelFunc, f *os.File, r io.Reader) error {
		if _, err := io.CopyN(f, r, 5); err != nil {
			return err
		}
		return errDisk
	})
	err := loc.Commits.PutIfAbsent(ctx, commitKey, []byte(`{"commitInfo":{}}`))
	if !errors.Is(err, errDisk) || errors.Is(err, txlog.ErrVersionExists) {
		t.Fatalf("PutIfAbsent with a failing disk returned %v, want the disk's error", err)
	}
	wantFiles(t, loc.LocalDir, ".lake-tmp/", "_delta_log/")
}

// TestLocalCancelledBeforePublish cancels the context once the data is written, just before the
// link that would publish it: nothing appears.
func TestLocalCancelledBeforePublish(t *testing.T) {
	loc, ctx := openHooked(t, func(_ context.Context, cancel context.CancelFunc, f *os.File, r io.Reader) error {
		_, err := io.Copy(f, r)
		cancel()
		return err
	})
	err := loc.Commits.PutIfAbsent(ctx, commitKey, []byte(`{"commitInfo":{}}`))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("PutIfAbsent cancelled before publishing returned %v, want context.Canceled", err)
	}
	wantFiles(t, loc.LocalDir, ".lake-tmp/", "_delta_log/")
	// The same through a Bucket writer.
	err = loc.Bucket.Upload(ctx, "part-0.parquet", strings.NewReader("data"), &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err == nil {
		t.Fatal("Upload cancelled before publishing returned nil")
	}
	wantFiles(t, loc.LocalDir, ".lake-tmp/", "_delta_log/")
}

// TestLocalLeftovers: a temporary file left by a crashed writer is not listed and blocks nothing.
func TestLocalLeftovers(t *testing.T) {
	ctx := context.Background()
	loc, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer loc.Close()
	if err := os.MkdirAll(filepath.Join(loc.LocalDir, tmpDir), 0o777); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(loc.LocalDir, tmpDir, "00000000000000000000.json.crashed.tmp")
	if err := os.WriteFile(stale, []byte("half"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := loc.Commits.PutIfAbsent(ctx, commitKey, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	for _, delim := range []string{"", "/"} {
		var keys []string
		it := loc.Bucket.List(&blob.ListOptions{Delimiter: delim})
		for {
			obj, err := it.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, obj.Key)
		}
		want := []string{commitKey}
		if delim != "" {
			want = []string{"_delta_log/"}
		}
		if !slices.Equal(keys, want) {
			t.Errorf("listing with delimiter %q: %q, want %q", delim, keys, want)
		}
	}
}

// TestLocalFolderStaysClean: no sidecar or temporary files are left in the table folder.
func TestLocalFolderStaysClean(t *testing.T) {
	ctx := context.Background()
	loc, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer loc.Close()
	if err := loc.Commits.PutIfAbsent(ctx, commitKey, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := loc.Commits.PutIfAbsent(ctx, commitKey, []byte("{}")); !errors.Is(err, txlog.ErrVersionExists) {
		t.Fatal(err)
	}
	w, err := loc.Bucket.NewWriter(ctx, "year=2026/part-0.parquet", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("PAR1")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := loc.Bucket.Copy(ctx, "year=2026/part-1.parquet", "year=2026/part-0.parquet", nil); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, loc.LocalDir, ".lake-tmp/", "_delta_log/", "_delta_log/00000000000000000000.json",
		"year=2026/", "year=2026/part-0.parquet", "year=2026/part-1.parquet")
}

func TestLocalInvalidKeys(t *testing.T) {
	ctx := context.Background()
	loc, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer loc.Close()
	for _, key := range []string{"../escape", "a/../b", "/abs", "a//b", "a/", "x../y", "meta.attrs", ".lake-tmp/x", "tab\tkey"} {
		err := loc.Bucket.WriteAll(ctx, key, []byte("x"), nil)
		if gcerrors.Code(err) != gcerrors.InvalidArgument {
			t.Errorf("writing key %q returned %v, want InvalidArgument", key, err)
		}
		if err := loc.Commits.PutIfAbsent(ctx, key, []byte("x")); err == nil || errors.Is(err, txlog.ErrVersionExists) {
			t.Errorf("PutIfAbsent(%q) returned %v, want an error", key, err)
		}
	}
	wantFiles(t, loc.LocalDir)
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t.Chdir(dir)
	for _, tc := range []struct {
		uri, wantURI, wantLocal string
	}{
		{"events", filepath.Join(dir, "events"), filepath.Join(dir, "events")},
		{"./a/../events/", filepath.Join(dir, "events"), filepath.Join(dir, "events")},
		{filepath.Join(dir, "abs"), filepath.Join(dir, "abs"), filepath.Join(dir, "abs")},
		{"file://" + filepath.ToSlash(filepath.Join(dir, "f")), filepath.Join(dir, "f"), filepath.Join(dir, "f")},
		{"file://localhost" + filepath.ToSlash(filepath.Join(dir, "g")), filepath.Join(dir, "g"), filepath.Join(dir, "g")},
		{"mem://", "mem://", ""},
		{"mem://name", "mem://name", ""},
		{"mem://name/", "mem://name", ""},
		{"mem://name//tables/./events/", "mem://name/tables/events", ""},
		{"mem:///p", "mem:///p", ""},
		{"s3://bucket/warehouse/events/?region=us-east-1&use_path_style=true",
			"s3://bucket/warehouse/events?region=us-east-1&use_path_style=true", ""},
		{"s3://bucket?region=us-east-1", "s3://bucket?region=us-east-1", ""},
	} {
		loc, err := Open(ctx, tc.uri)
		if err != nil {
			t.Errorf("Open(%q): %v", tc.uri, err)
			continue
		}
		if loc.URI != tc.wantURI || loc.LocalDir != tc.wantLocal {
			t.Errorf("Open(%q): URI %q, LocalDir %q; want %q, %q", tc.uri, loc.URI, loc.LocalDir, tc.wantURI, tc.wantLocal)
		}
		if tc.wantLocal != "" {
			if fi, err := os.Stat(tc.wantLocal); err != nil || !fi.IsDir() {
				t.Errorf("Open(%q) did not create the directory: %v", tc.uri, err)
			}
		}
		loc.Close()
	}
	for _, tc := range []struct{ uri, wantErr string }{
		{"", "empty"},
		{"hdfs://nn/events", `unsupported scheme "hdfs"; use a plain path, file://, mem://, s3://, gs:// or azblob://`},
		{"file://server/share/events", "not host"},
		{"mem://x?y=1", "no query"},
		{"s3:///events", "names no bucket"},
	} {
		loc, err := Open(ctx, tc.uri)
		if err == nil {
			loc.Close()
			t.Errorf("Open(%q) succeeded, want an error", tc.uri)
			continue
		}
		if !strings.Contains(err.Error(), tc.wantErr) || (tc.uri != "" && !strings.Contains(err.Error(), tc.uri)) {
			t.Errorf("Open(%q): %v; want it to name the URI and say %q", tc.uri, err, tc.wantErr)
		}
	}
}

func TestMemShared(t *testing.T) {
	ctx := context.Background()
	a, err := Open(ctx, "mem://shared-test/tables")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Commits.PutIfAbsent(ctx, "events/"+commitKey, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened after Close, and seen through a longer prefix.
	b, err := Open(ctx, "mem://shared-test/tables/events")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Commits.PutIfAbsent(ctx, commitKey, []byte("{}")); !errors.Is(err, txlog.ErrVersionExists) {
		t.Fatalf("PutIfAbsent through a second Open of the same mem URI returned %v, want ErrVersionExists", err)
	}
	other, err := Open(ctx, "mem://other-test/tables/events")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if ok, err := other.Bucket.Exists(ctx, commitKey); ok || err != nil {
		t.Fatalf("a differently named mem bucket sees the key (exists=%v, err=%v)", ok, err)
	}
}

func TestSubLocal(t *testing.T) {
	ctx := context.Background()
	root, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	sub, err := root.Sub(ctx, "jobs/42")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if want := filepath.Join(root.LocalDir, "jobs", "42"); sub.URI != want || sub.LocalDir != want {
		t.Fatalf("Sub: URI %q, LocalDir %q, want %q", sub.URI, sub.LocalDir, want)
	}
	for _, rel := range []string{"", ".", "..", "../x", "/abs", "a//b"} {
		if _, err := root.Sub(ctx, rel); err == nil {
			t.Errorf("Sub(%q) succeeded, want an error", rel)
		}
	}
}
