package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The README's recipe to erase one user for good: delete from the events table, its quarantine
// and the recommendations, purge deletion vectors, vacuum with no retention. Afterwards the only
// Parquet files left are those the latest versions reference, and none of them holds the user.
func TestEraseUserRecipe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	mustLake(t, "demo", dir, "--interactions", "5000")
	// A table with deletion vectors too, so that purge has work to do.
	dv := filepath.Join(t.TempDir(), "dv")
	mustLake(t, "create", dv, "--schema", "interactions", "--property", "delta.enableDeletionVectors=true")
	mustLake(t, "ingest", dv, filepath.Join(dir, "gen", "clicks.ndjson"), "--mapping", filepath.Join(dir, "gen", "mappings", "clicks.json"))
	user := strings.TrimSpace(strings.Split(mustLake(t, "cat", dv, "--columns", "user_id", "--limit", "1", "--format", "csv"), "\n")[1])
	tables := []string{filepath.Join(dir, "events"), filepath.Join(dir, "events_quarantine"), filepath.Join(dir, "out", "user_recommendations"), dv}
	for _, tb := range tables {
		mustLake(t, "delete", tb, "--where", "user_id = "+user)
		mustLake(t, "optimize", tb, "--purge")
		mustLake(t, "vacuum", tb, "--retain", "0h", "--force")
	}
	for _, tb := range tables {
		if out := mustLake(t, "cat", tb, "--where", "user_id = "+user, "--format", "jsonl"); strings.TrimSpace(out) != "" {
			t.Fatalf("%s still has %s: %s", tb, user, out)
		}
		live := map[string]bool{}
		for _, f := range strings.Fields(mustLake(t, "files", tb)) {
			live[filepath.Join(tb, filepath.FromSlash(f))] = true
		}
		filepath.WalkDir(tb, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".parquet") || strings.HasSuffix(p, ".bin")) &&
				!strings.Contains(p, "_delta_log") && !live[p] {
				t.Errorf("%s: %s is left on disk but not in the table", tb, p)
			}
			return nil
		})
		if ents, _ := os.ReadDir(tb); len(ents) == 0 {
			t.Fatalf("%s is empty", tb)
		}
	}
}
