package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakehouse/lake/jobs"
)

// writeGenerated builds an interaction table straight from the generator's Arrow batches (the
// mapped-file ingest is tested on its own).
func writeGenerated(t *testing.T, uri string, d *jobs.Dataset) {
	t.Helper()
	if _, err := jobs.WriteDataset(context.Background(), uri, d); err != nil {
		t.Fatal(err)
	}
}

func TestGenALSCat(t *testing.T) {
	dir := t.TempDir()
	gen := filepath.Join(dir, "gen")
	out := mustLake(t, "gen", "--out", gen, "--users", "300", "--items", "150", "--days", "7", "--interactions", "6000", "--seed", "3")
	if !strings.Contains(out, "generated 6000 interactions") {
		t.Fatalf("gen: %s", out)
	}
	for _, f := range []string{"retail.csv", "app.json", "clicks.ndjson", "mappings/retail.json", "mappings/app.json", "mappings/clicks.json",
		"truth/surges.jsonl", "truth/decoys.jsonl", "truth/items.jsonl"} {
		if _, err := os.Stat(filepath.Join(gen, f)); err != nil {
			t.Fatalf("gen: %v", err)
		}
	}
	d, err := jobs.Generate(&jobs.GenOptions{Users: 300, Items: 150, Days: 7, Interactions: 6000, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	events := filepath.Join(dir, "events")
	writeGenerated(t, events, d)

	prefix := filepath.Join(dir, "out")
	args := []string{"als", "--source", events, "--output", prefix, "--factors", "16", "--iterations", "4", "--top", "5", "--half-life", "2w"}
	out, stderr, code := lake(t, args...)
	if code != 0 {
		t.Fatalf("als: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"item_factors: version 1", "similar_items: version 1", "user_recommendations: version 1", "recall@10"} {
		if !strings.Contains(out, want) {
			t.Errorf("als stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "iteration 4/4: loss") || !strings.Contains(stderr, "interactions/s") {
		t.Errorf("als progress:\n%s", stderr)
	}

	// The outputs, as the contract says.
	rows := catJSONL(t, jobs.ChildURI(prefix, "item_factors"))
	nItems := len(rows)
	if nItems < 140 || nItems > 150 || len(rows[0]["factors"].([]any)) != 16 || !strings.HasPrefix(rows[0]["item_id"].(string), "i") {
		t.Fatalf("item_factors: %d rows, first %v", len(rows), rows[0])
	}
	rows = catJSONL(t, jobs.ChildURI(prefix, "similar_items"))
	if len(rows) != nItems*5 {
		t.Fatalf("similar_items: %d rows", len(rows))
	}
	for _, r := range rows {
		if r["item_id"] == r["similar_item_id"] || r["rank"].(float64) < 1 || r["rank"].(float64) > 5 {
			t.Fatalf("similar_items row %v", r)
		}
	}
	rows = catJSONL(t, jobs.ChildURI(prefix, "user_recommendations"))
	if len(rows) == 0 || !strings.HasPrefix(rows[0]["user_id"].(string), "u") || rows[0]["score"] == nil {
		t.Fatalf("user_recommendations: %v", rows[:min(1, len(rows))])
	}

	// History shows which source version built it.
	h := mustLake(t, "history", jobs.ChildURI(prefix, "similar_items"), "--format", "jsonl", "--limit", "1")
	var entry map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(h)), &entry); err != nil {
		t.Fatal(err)
	}
	p := entry["operationParameters"].(map[string]any)
	if p["sourceVersion"] != "1" || p["job"] != "als" || !strings.Contains(p["metrics"].(string), "recall_at_10") {
		t.Fatalf("lineage: %v", p)
	}

	// The same run again writes nothing and says so; --force writes.
	out = mustLake(t, args...)
	if !strings.Contains(out, "nothing written") {
		t.Fatalf("second run: %s", out)
	}
	out = mustLake(t, append(args, "--force", "--no-eval")...)
	if !strings.Contains(out, "item_factors: version 2") {
		t.Fatalf("forced run: %s", out)
	}
}

func catJSONL(t *testing.T, uri string) []map[string]any {
	t.Helper()
	var rows []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(mustLake(t, "cat", uri, "--format", "jsonl")), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("cat %s: %v: %q", uri, err, line)
		}
		rows = append(rows, r)
	}
	return rows
}

func TestALSBadInput(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	mustLake(t, "create", events, "--schema", "interactions")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"als", "--output", dir + "/o"}, 2, "--source"},
		{[]string{"als", "--source", events}, 2, "--output"},
		{[]string{"als", "--source", events, "--output", dir + "/o", "--factors", "0"}, 2, "--factors"},
		{[]string{"als", "--source", events, "--output", dir + "/o", "--alpha", "-1"}, 2, "--alpha"},
		{[]string{"als", "--source", events, "--output", dir + "/o", "--weights", "view"}, 2, "weights"},
		{[]string{"als", "--source", events, "--output", dir + "/o", "--half-life", "soon"}, 2, "--half-life"},
		{[]string{"als", "--source", events, "--output", dir + "/o", "--solver", "magic"}, 2, "--solver"},
		{[]string{"als", "--source", events, "--output", dir + "/o"}, 1, "no rows"},
		{[]string{"als", "--source", events, "--output", dir + "/o", "--source-version", "9"}, 1, "source version 9"},
		{[]string{"als", "--source", dir + "/none", "--output", dir + "/o"}, 1, "lake create"},
		{[]string{"gen"}, 2, "--out"},
	} {
		_, stderr, code := lake(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("lake %v: exit %d, stderr %q; want exit %d and %q on one line", c.args, code, stderr, c.code, c.want)
		}
	}
}
