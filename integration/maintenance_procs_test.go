package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Four writer processes append (`lake ingest`, one commit per call, over and over) while
// `lake optimize`, `lake delete`, `lake vacuum` (with a 2 s retention, so it really deletes
// what optimize and delete removed) and `lake checkpoint` run as processes of their own. No
// writer gets an error, no maintenance command fails except a delete that lost a conflict it
// reports as such, and afterwards the table holds exactly the rows committed and not deleted,
// each once. LAKE_STRESS_SECONDS (default 6) scales it: the check is 60.
func TestMaintenanceBesideWriterProcesses(t *testing.T) {
	secs, err := strconv.ParseFloat(os.Getenv("LAKE_STRESS_SECONDS"), 64)
	if err != nil || secs <= 0 {
		secs = 6
	}
	const writers = 4
	lake(t) // build before the clock starts
	dir := filepath.Join(t.TempDir(), "events")
	runLake(t, "create", dir, "--schema", "interactions",
		"--property", "delta.checkpointInterval=10",
		"--property", "delta.deletedFileRetentionDuration=interval 2 seconds")
	work := t.TempDir()
	ctx := context.Background()
	deadline := time.Now().Add(time.Duration(secs * float64(time.Second)))

	var mu sync.Mutex
	committed := map[string]bool{} // event_id -> kept (false: a row the deletes remove)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				var buf bytes.Buffer
				ids := make([]string, 4)
				for k := range ids {
					ids[k] = fmt.Sprintf("w%d-%d-%d", w, i, k)
					user := fmt.Sprintf("u%d", k)
					if k == 0 {
						user = "del"
					}
					fmt.Fprintf(&buf, `{"event_id":%q,"user_id":%q,"item_id":"i%d","interaction_type":"view","timestamp":"2024-03-0%dT10:00:00Z"}`+"\n",
						ids[k], user, k, 1+(i+k)%3)
				}
				f := filepath.Join(work, fmt.Sprintf("w%d-%d.ndjson", w, i))
				if err := os.WriteFile(f, buf.Bytes(), 0o644); err != nil {
					t.Error(err)
					return
				}
				if _, errOut, err := runLakeErr(ctx, t, "ingest", dir, f); err != nil {
					t.Errorf("writer %d, call %d: %v: %s", w, i, err, errOut)
					return
				}
				mu.Lock()
				for k, id := range ids {
					committed[id] = k != 0
				}
				mu.Unlock()
			}
		})
	}
	var runs, deleteConflicts atomic.Int64
	maint := func(name string, args ...string) {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				_, errOut, err := runLakeErr(ctx, t, args...)
				switch {
				case err == nil:
					runs.Add(1)
				case name == "delete" && strings.Contains(errOut, "conflict"):
					deleteConflicts.Add(1) // a concurrent optimize removed a file it read: redone next round
				default:
					t.Errorf("lake %s: %v: %s", name, err, errOut)
					return
				}
			}
		})
	}
	maint("optimize", "optimize", dir)
	maint("delete", "delete", dir, "--where", "user_id = del")
	maint("vacuum", "vacuum", dir, "--retain", "2s")
	maint("checkpoint", "checkpoint", dir)
	wg.Wait()
	if t.Failed() {
		return
	}
	// The deletes may have missed rows committed after their last round.
	runLake(t, "delete", dir, "--where", "user_id = del")

	out := runLake(t, "cat", dir, "--columns", "event_id", "--format", "jsonl")
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		seen[r.EventID]++
	}
	kept := 0
	for id, keep := range committed {
		switch {
		case keep && seen[id] != 1:
			t.Errorf("row %s committed and not deleted appears %d times", id, seen[id])
		case !keep && seen[id] != 0:
			t.Errorf("row %s was deleted but appears %d times", id, seen[id])
		}
		if keep {
			kept++
		}
	}
	if len(seen) != kept {
		t.Errorf("the table holds %d distinct rows, %d were committed and kept", len(seen), kept)
	}
	if kept < writers*3 || runs.Load() < 4 {
		t.Fatalf("too little happened: %d rows kept, %d maintenance runs", kept, runs.Load())
	}
	t.Logf("%.0f s: %d rows committed by %d writers, %d maintenance runs, %d delete conflicts", secs, len(committed), writers, runs.Load(), deleteConflicts.Load())
}
