package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lakehouse/lake/internal/testutil"
)

// maintTable creates a local interaction table with n single-row commits over 3 days.
func maintTable(t *testing.T, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "events")
	mustLake(t, "create", dir, "--schema", "interactions")
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"event_id":"e%03d","user_id":"u%d","item_id":"i%d","interaction_type":"view","timestamp":"2024-01-0%dT03:04:05Z","event_date":"2024-01-0%d"}`+"\n",
			i, i%5, i%11, 1+i%3, 1+i%3)
	}
	in := filepath.Join(t.TempDir(), "rows.ndjson")
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	mustLake(t, "ingest", dir, in, "--batch-rows", "1")
	return dir
}

func sortedLines(s string) []string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(l)
	return l
}

func TestOptimizeVacuumRestoreCommands(t *testing.T) {
	dir := maintTable(t, 30)
	rows := sortedLines(mustLake(t, "cat", dir, "--format", "jsonl"))
	if n := len(sortedLines(mustLake(t, "files", dir))); n != 30 {
		t.Fatalf("files before: %d", n)
	}
	out := mustLake(t, "optimize", dir, "--json")
	var opt struct {
		Versions     []int64 `json:"versions"`
		FilesRemoved int64   `json:"files_removed"`
		FilesAdded   int64   `json:"files_added"`
	}
	if err := json.Unmarshal([]byte(out), &opt); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(opt.Versions) != 1 || opt.FilesRemoved != 30 || opt.FilesAdded != 3 {
		t.Fatalf("optimize: %s", out)
	}
	if n := len(sortedLines(mustLake(t, "files", dir))); n != 3 {
		t.Fatalf("files after: %d", n)
	}
	if got := sortedLines(mustLake(t, "cat", dir, "--format", "jsonl")); !slices.Equal(got, rows) {
		t.Fatal("optimize changed the rows")
	}
	pre := fmt.Sprint(opt.Versions[0] - 1)
	if got := sortedLines(mustLake(t, "cat", dir, "--format", "jsonl", "--version", pre)); !slices.Equal(got, rows) {
		t.Fatal("time travel before optimize")
	}
	hist := mustLake(t, "history", dir, "--format", "jsonl", "--limit", "1")
	if !strings.Contains(hist, `"operation":"OPTIMIZE"`) || !strings.Contains(hist, `"numRemovedFiles":"30"`) {
		t.Fatalf("history: %s", hist)
	}
	if out := mustLake(t, "optimize", dir); !strings.Contains(out, "nothing to optimize") {
		t.Fatalf("second optimize: %s", out)
	}

	// Usage errors.
	for _, args := range [][]string{
		{"optimize", dir, "--where", "user_id = u1"},
		{"optimize", dir, "--zorder-by", "nope"},
		{"optimize", dir, "--target-size", "big"},
		{"vacuum", dir, "--retain", "1h"},
		{"vacuum", dir, "--retain", "soon"},
		{"restore", dir},
		{"restore", dir, "--version", "1", "--timestamp", "2024-01-01T00:00:00Z"},
		{"restore", dir, "--version", "999"},
	} {
		if _, errOut, code := lake(t, args...); code != 2 {
			t.Errorf("lake %v: exit %d: %s", args, code, errOut)
		}
	}

	// Inside the retention vacuum deletes nothing; a dry run with a zero retention lists the
	// 30 removed files, and the real run deletes exactly those.
	if out := mustLake(t, "vacuum", dir, "--dry-run"); out != "" {
		t.Fatalf("vacuum inside the retention would delete: %s", out)
	}
	// Restore works while the old files exist.
	out = mustLake(t, "restore", dir, "--version", pre)
	if !strings.Contains(out, "restored") || !strings.Contains(out, "30 files added back, 3 removed") {
		t.Fatalf("restore: %s", out)
	}
	if got := sortedLines(mustLake(t, "cat", dir, "--format", "jsonl")); !slices.Equal(got, rows) {
		t.Fatal("restore changed the rows")
	}
	mustLake(t, "restore", dir, "--version", fmt.Sprint(opt.Versions[0]))
	dry := sortedLines(mustLake(t, "vacuum", dir, "--retain", "0h", "--force", "--dry-run"))
	if len(dry) != 30 {
		t.Fatalf("dry run lists %d files: %v", len(dry), dry)
	}
	out = mustLake(t, "vacuum", dir, "--retain", "0h", "--force", "--json")
	var vac struct {
		Deleted []string `json:"deleted"`
	}
	if err := json.Unmarshal([]byte(out), &vac); err != nil {
		t.Fatal(err)
	}
	slices.Sort(vac.Deleted)
	if !slices.Equal(vac.Deleted, dry) {
		t.Fatalf("vacuum deleted %v, dry run listed %v", vac.Deleted, dry)
	}
	if got := sortedLines(mustLake(t, "cat", dir, "--format", "jsonl")); !slices.Equal(got, rows) {
		t.Fatal("vacuum changed the rows")
	}
	_, errOut, code := lake(t, "restore", dir, "--version", pre)
	if code != 1 || !strings.Contains(errOut, "no longer in storage") {
		t.Fatalf("restore of a vacuumed version: exit %d: %s", code, errOut)
	}
}

func TestOptimizeZOrderCommand(t *testing.T) {
	dir := maintTable(t, 12)
	out := mustLake(t, "optimize", dir, "--zorder-by", "item_id,user_id", "--where", "event_date = 2024-01-02")
	if !strings.Contains(out, "removed 4 files") {
		t.Fatalf("optimize: %s", out)
	}
	hist := mustLake(t, "history", dir, "--format", "jsonl", "--limit", "1")
	if !strings.Contains(hist, `"zOrderBy":"[\"item_id\",\"user_id\"]"`) {
		t.Fatalf("history: %s", hist)
	}
}

func TestDeleteCommand(t *testing.T) {
	dir := maintTable(t, 15)
	rows := sortedLines(mustLake(t, "cat", dir, "--format", "jsonl"))
	var want []string
	for _, r := range rows {
		if !strings.Contains(r, `"user_id":"u2"`) {
			want = append(want, r)
		}
	}
	out := mustLake(t, "delete", dir, "--where", "user_id = u2")
	if !strings.Contains(out, fmt.Sprintf("deleted %d rows", len(rows)-len(want))) {
		t.Fatalf("delete: %s", out)
	}
	if got := sortedLines(mustLake(t, "cat", dir, "--format", "jsonl")); !slices.Equal(got, want) {
		t.Fatalf("rows after delete: %v", got)
	}
	if out := mustLake(t, "delete", dir, "--where", "user_id = u2"); !strings.Contains(out, "nothing deleted") {
		t.Fatalf("second delete: %s", out)
	}
	for _, args := range [][]string{{"delete", dir}, {"delete", dir, "--where", "nope = 1"}, {"delete", dir, "--where", "user_id ~ 1"}} {
		if _, errOut, code := lake(t, args...); code != 2 {
			t.Errorf("lake %v: exit %d: %s", args, code, errOut)
		}
	}
	hist := mustLake(t, "history", dir, "--format", "jsonl", "--limit", "1")
	if !strings.Contains(hist, `"operation":"DELETE"`) {
		t.Fatalf("history: %s", hist)
	}
}

func TestOptimizePurgeCommand(t *testing.T) {
	dir := testutil.CopyTable(t, "table-with-dv-small")
	rows := mustLake(t, "cat", dir, "--format", "jsonl")
	out := mustLake(t, "optimize", dir, "--purge")
	if !strings.Contains(out, "removed 1 files") || !strings.Contains(out, "added 1 files") {
		t.Fatalf("purge: %s", out)
	}
	if got := mustLake(t, "cat", dir, "--format", "jsonl"); !slices.Equal(sortedLines(got), sortedLines(rows)) {
		t.Fatalf("rows after purge: %s", got)
	}
	if _, errOut, code := lake(t, "optimize", dir, "--purge", "--zorder-by", "value"); code != 2 {
		t.Fatalf("purge with zorder: exit %d: %s", code, errOut)
	}
}
