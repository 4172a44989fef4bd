package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/server"
)

// listRuns returns `lake models list PREFIX --format jsonl`, newest first.
func listRuns(t *testing.T, prefix string) []map[string]any {
	t.Helper()
	out := mustLake(t, "models", "list", prefix, "--format", "jsonl")
	var runs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("models list line %q: %v", line, err)
		}
		runs = append(runs, m)
	}
	return runs
}

// runsWithStatus returns the ids of job's runs in status, newest first.
func runsWithStatus(t *testing.T, prefix, job, status string) []string {
	t.Helper()
	var ids []string
	for _, r := range listRuns(t, prefix) {
		if r["job"] == job && r["status"] == status {
			ids = append(ids, r["run_id"].(string))
		}
	}
	if len(ids) == 0 {
		t.Fatalf("no %s run is %s: %v", job, status, listRuns(t, prefix))
	}
	return ids
}

func recallOf(r map[string]any) float64 {
	m, _ := r["metrics"].(map[string]any)
	v, _ := m["recall@10"].(float64)
	return v
}

func modelsFixture(t *testing.T) (events, prefix string) {
	t.Helper()
	dir := t.TempDir()
	d, err := jobs.Generate(&jobs.GenOptions{Users: 300, Items: 150, Days: 4, Interactions: 6000, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	events = filepath.Join(dir, "events")
	writeGenerated(t, events, d)
	return events, filepath.Join(dir, "out")
}

func TestModelsGate(t *testing.T) {
	events, prefix := modelsFixture(t)
	if _, stderr, code := lake(t, "models", "list", prefix); code != 1 || !strings.Contains(stderr, "no model registry") {
		t.Fatalf("list without a registry: %d %s", code, stderr)
	}
	als := func(extra ...string) string {
		return mustLake(t, append([]string{"als", "--source", events, "--output", prefix, "--top", "5"}, extra...)...)
	}
	out := als("--factors", "8", "--iterations", "5", "--no-eval")
	if !strings.Contains(out, ": candidate (not evaluated") {
		t.Fatalf("a --no-eval run: %s", out)
	}
	out = als("--factors", "16", "--iterations", "8")
	if !strings.Contains(out, ": live (first evaluated run") {
		t.Fatalf("the first evaluated run: %s", out)
	}
	first := runsWithStatus(t, prefix, "als", "live")[0]
	// A deliberately worse run against a zero tolerance: live only if its recall is no worse.
	out = als("--factors", "2", "--iterations", "1", "--gate-tolerance", "0")
	runs := listRuns(t, prefix)
	newest, live := runs[0], runs[1]
	if live["run_id"] != first {
		t.Fatalf("runs out of order: %v", runs)
	}
	want := "rejected"
	if recallOf(newest) >= recallOf(live) {
		want = "live"
	}
	if newest["status"] != want || (want == "rejected" && !strings.Contains(newest["reason"].(string), "more than the tolerance")) {
		t.Fatalf("worse run: recall %.4f vs %.4f: %v (%v), want %s; output %s", recallOf(newest), recallOf(live), newest["status"], newest["reason"], want, out)
	}
	// An impossible tolerance rejects, and says why.
	out = als("--factors", "8", "--iterations", "3", "--gate-tolerance", "-1")
	if !strings.Contains(out, ": rejected (recall@10") {
		t.Fatalf("run with tolerance -1: %s", out)
	}
	rejected := runsWithStatus(t, prefix, "als", "rejected")[0]
	liveBefore := runsWithStatus(t, prefix, "als", "live")[0]

	// Promote the rejected run by hand, then roll back.
	if out := mustLake(t, "models", "promote", prefix, rejected); !strings.Contains(out, rejected+" is live") {
		t.Fatalf("promote: %s", out)
	}
	if got := runsWithStatus(t, prefix, "als", "live"); len(got) != 1 || got[0] != rejected {
		t.Fatalf("live after promote: %v", got)
	}
	if out := mustLake(t, "models", "rollback", prefix); !strings.Contains(out, liveBefore+" is live again") {
		t.Fatalf("rollback: %s", out)
	}
	if _, stderr, code := lake(t, "models", "promote", prefix, "no-such-run"); code != 2 || !strings.Contains(stderr, "unknown run") {
		t.Fatalf("promote unknown: %d %s", code, stderr)
	}
	if _, _, code := lake(t, "models", "frobnicate", prefix); code != 2 {
		t.Fatalf("unknown subcommand: %d", code)
	}

	// Trending goes live directly.
	if out := mustLake(t, "trending", "--source", events, "--output", prefix); !strings.Contains(out, "registered trending run") || !strings.Contains(out, ": live (") {
		t.Fatalf("trending: %s", out)
	}
	table := mustLake(t, "models", "list", prefix)
	if !strings.HasPrefix(table, "RUN_ID") || strings.Count(table, "\n") != 6 || !strings.Contains(table, "similar_items@") {
		t.Fatalf("models list:\n%s", table)
	}
	// A rerun that writes nothing registers nothing.
	mustLake(t, "trending", "--source", events, "--output", prefix)
	if n := len(listRuns(t, prefix)); n != 5 {
		t.Fatalf("%d runs after a no-op trending run, want 5", n)
	}
}

// TestModelsServeAndVacuum: the server serves the live versions, follows a rollback, answers
// GET /v1/models; vacuum keeps the live version and the rollback target.
func TestModelsServeAndVacuum(t *testing.T) {
	events, prefix := modelsFixture(t)
	als := func(factors string) {
		mustLake(t, "als", "--source", events, "--output", prefix, "--factors", factors, "--iterations", "3", "--top", "5", "--gate-tolerance", "1")
	}
	als("4")  // similar_items v1 (v0 creates the table)
	als("6")  // v2
	als("8")  // v3
	als("10") // v4, live; v3 the rollback target
	base, stop := serveInProcess(t, "--table", events, "--outputs", prefix, "--outputs-poll", "50ms", "--batch-interval", "100ms", "--rate-limit", "0")
	defer func() {
		if code, stderr := stop(); code != 0 {
			t.Errorf("serve exited %d: %s", code, stderr)
		}
	}()
	var row struct {
		ItemID string `json:"item_id"`
	}
	if err := json.Unmarshal([]byte(mustLake(t, "cat", filepath.Join(prefix, "similar_items"), "--format", "jsonl", "--limit", "1")), &row); err != nil {
		t.Fatal(err)
	}
	item := row.ItemID
	servedVersion := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			var sim server.SimilarAnswer
			code, hv := readGet(t, base, "/v1/items/"+item+"/similar", "", &sim)
			if code == 200 && sim.Version == want && hv == strconv.FormatInt(want, 10) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("similar_items: %d version %d, want version %d", code, sim.Version, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	servedVersion(4)
	var rep struct {
		Version    int64
		Live       map[string]map[string]any
		Candidates []any
		Runs       []map[string]any
		Served     map[string]int64
	}
	if code, _ := readGet(t, base, "/v1/models", "", &rep); code != 200 || rep.Live["als"] == nil || len(rep.Runs) != 4 || rep.Served["similar_items"] != 4 {
		t.Fatalf("GET /v1/models: %d %+v", code, rep)
	}
	if m, _ := rep.Live["als"]["metrics"].(map[string]any); m["recall@10"] == nil || m["popularity_recall@10"] == nil {
		t.Fatalf("live run's metrics: %v", rep.Live["als"])
	}
	if p, _ := rep.Live["als"]["parameters"].(map[string]any); p["factors"] != 10.0 || rep.Live["als"]["source"] != events {
		t.Fatalf("live run's lineage: %v", rep.Live["als"])
	}
	mustLake(t, "models", "rollback", prefix)
	servedVersion(3)

	// Vacuum with a zero retention keeps the live version (3) and the rollback target (2) besides
	// the latest (4); version 1's files go.
	uri := filepath.Join(prefix, "similar_items")
	_, stderr, code := lake(t, "vacuum", uri, "--retain", "0h", "--force")
	if code != 0 || !strings.Contains(stderr, "keeping versions [3 2]") {
		t.Fatalf("vacuum: %d %s", code, stderr)
	}
	for _, v := range []string{"2", "3", "4"} {
		if _, stderr, code := lake(t, "cat", uri, "--version", v, "--limit", "1"); code != 0 {
			t.Fatalf("version %s after vacuum: %s", v, stderr)
		}
	}
	if _, _, code := lake(t, "cat", uri, "--version", "1", "--limit", "1"); code == 0 {
		t.Errorf("version 1 (neither live nor the rollback target) still readable after vacuum")
	}
}

// TestModelsTrendingFollow: each round of `lake trending --follow` that commits registers a live
// run.
func TestModelsTrendingFollow(t *testing.T) {
	events, prefix := modelsFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	var errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdout: &syncBuffer{}, stderr: &errb}, []string{"trending", "--source", events, "--output", prefix, "--follow", "--poll", "50ms"})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(errb.String(), "registered trending run") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no registration from --follow: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("trending --follow exited %d: %s", code, errb.String())
	}
	if ids := runsWithStatus(t, prefix, "trending", "live"); len(ids) != 1 {
		t.Fatalf("live trending runs: %v", ids)
	}
}
