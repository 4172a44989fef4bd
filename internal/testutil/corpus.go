// Package testutil holds helpers shared by the tests of several packages: locating the
// conformance corpus in testdata/ and copying tables to a temporary folder before a test writes.
package testutil

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"testing"
)

// RepoRoot is the repository's root folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// CorpusDir is testdata/conformance: delta-rs/<table> and expected/<table>.
func CorpusDir() string { return filepath.Join(RepoRoot(), "testdata", "conformance") }

// CorpusTable is the read-only path of a corpus table.
func CorpusTable(name string) string { return filepath.Join(CorpusDir(), "delta-rs", name) }

// CopyTable copies a corpus table to a fresh temporary folder and returns its path.
func CopyTable(t testing.TB, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := CopyDir(CorpusTable(name), dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// CopyDir copies a folder tree, keeping modification times.
func CopyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, data, 0o644); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chtimes(target, info.ModTime(), info.ModTime())
	})
}

// Expectation is expected/<table>/meta.json.
type Expectation struct {
	Table    string `json:"table"`
	Latest   int64  `json:"latest"`
	Versions map[string]struct {
		Files     int    `json:"files"`
		Rows      *int   `json:"rows"`
		RowsError string `json:"rows_error"`
	} `json:"versions"`
}

// SortedVersions returns the versions with expectations, ascending.
func (e *Expectation) SortedVersions() []int64 {
	var out []int64
	for k := range e.Versions {
		v, err := strconv.ParseInt(k, 10, 64)
		if err == nil {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Expectations reads every expected/<table>/meta.json, sorted by table.
func Expectations(t testing.TB) []*Expectation {
	t.Helper()
	metas, err := filepath.Glob(filepath.Join(CorpusDir(), "expected", "*", "meta.json"))
	if err != nil || len(metas) == 0 {
		t.Fatalf("no conformance expectations under %s", CorpusDir())
	}
	sort.Strings(metas)
	var out []*Expectation
	for _, m := range metas {
		data, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		e := &Expectation{}
		if err := json.Unmarshal(data, e); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		out = append(out, e)
	}
	return out
}

// ExpectedFile is the path of expected/<table>/<name>.
func ExpectedFile(table, name string) string {
	return filepath.Join(CorpusDir(), "expected", table, name)
}
