package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakehouse/lake/jobs"
)

// TestALSDrift: `lake als` twice; the second run is compared with the first (live) one, records
// its drift and says so; after new events the live model is scored on the new run's split.
func TestALSDrift(t *testing.T) {
	dir := t.TempDir()
	d, err := jobs.Generate(&jobs.GenOptions{Users: 300, Items: 150, Days: 4, Interactions: 6000, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	cut := len(d.Events) * 7 / 10
	head, tail := *d, *d
	head.Events, tail.Events = d.Events[:cut], d.Events[cut:]
	events, prefix := filepath.Join(dir, "events"), filepath.Join(dir, "out")
	writeGenerated(t, events, &head)
	als := func(extra ...string) string {
		return mustLake(t, append([]string{"als", "--source", events, "--output", prefix, "--factors", "16", "--iterations", "6", "--top", "10"}, extra...)...)
	}
	if out := als(); !strings.Contains(out, ": live (first evaluated run") || strings.Contains(out, "drift from") {
		t.Fatalf("first run: %s", out)
	}
	first := runsWithStatus(t, prefix, "als", "live")[0]

	// The same data again: drift near zero; the live model was trained on every held-out item,
	// so the gate falls back to the recorded recalls.
	out := als("--force")
	if !strings.Contains(out, "drift from live run "+first+": similar-items Jaccard ") || !strings.Contains(out, "new users 0.000, new items 0.000, type-mix shift 0.000, popularity shift 0.000") ||
		!strings.Contains(out, "as recorded") {
		t.Fatalf("rerun: %s", out)
	}
	runs := listRuns(t, prefix)
	m := runs[0]["metrics"].(map[string]any)
	drift, ok := m["drift"].(map[string]any)
	if !ok || drift["run_id"] != first || drift["new_users_share"] != 0.0 || drift["similar_jaccard"].(float64) < 0.9 {
		t.Fatalf("second run's drift: %v", m["drift"])
	}
	if m["baseline_error"] == nil || m["type_mix"] == nil || len(m["top_items"].([]any)) != 100 {
		t.Fatalf("second run's metrics: %v", m)
	}
	if table := mustLake(t, "models", "list", prefix); !strings.Contains(table, "DRIFT") || !strings.Contains(table, "new_users=0.00 new_items=0.00") {
		t.Fatalf("models list:\n%s", table)
	}

	// New events: the next run is compared with the live model on its own split.
	writeGenerated(t, events, &tail)
	live := runsWithStatus(t, prefix, "als", "live")[0]
	out = als("--gate-tolerance", "1")
	if !strings.Contains(out, "against live run "+live+" on this run's split") || !strings.Contains(out, "both on this run's split") || !strings.Contains(out, ": live (") {
		t.Fatalf("run after new events: %s", out)
	}
	b, ok := listRuns(t, prefix)[0]["metrics"].(map[string]any)["baseline"].(map[string]any)
	if !ok || b["run_id"] != live || b["recall@10"] == nil {
		t.Fatalf("baseline metric: %v", b)
	}
}
