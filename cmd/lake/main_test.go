package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lakehouse/lake/internal/testutil"
)

func lake(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), &env{stdout: &out, stderr: &errb}, args)
	return out.String(), errb.String(), code
}

func mustLake(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := lake(t, args...)
	if code != 0 {
		t.Fatalf("lake %v: exit %d: %s", args, code, errOut)
	}
	return out
}

const rowsNDJSON = `{"event_id":"e1","user_id":"u1","item_id":"i1","interaction_type":"view","timestamp":"2024-01-02T03:04:05.123456Z","event_date":"2024-01-02","source":"web","value":1.5,"properties":{"a":"b"}}
{"event_id":"e2","user_id":"u2","item_id":"i2","interaction_type":"purchase","timestamp":"2024-01-03T03:04:05Z","event_date":"2024-01-03","source":"web","value":null,"properties":null}
{"event_id":"e3","user_id":"u2","item_id":"i1","interaction_type":"view","timestamp":"2024-01-03T04:00:00Z","event_date":"2024-01-03","source":"app","value":2,"properties":{}}
`

func TestEndToEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "events")
	mustLake(t, "create", dir, "--schema", "interactions", "--property", "delta.checkpointInterval=2")
	in := filepath.Join(t.TempDir(), "rows.ndjson")
	os.WriteFile(in, []byte(rowsNDJSON), 0o644)
	out := mustLake(t, "ingest", dir, in, "--batch-rows", "1")
	if !strings.Contains(out, "ingested 3 rows in 3 commits") {
		t.Fatalf("ingest: %s", out)
	}
	// cat: all rows, then a partition filter, then projection + limit.
	out = mustLake(t, "cat", dir, "--format", "jsonl")
	if n := strings.Count(out, "\n"); n != 3 || !strings.Contains(out, `"timestamp":"2024-01-02T03:04:05.123456Z"`) || !strings.Contains(out, `"properties":{"a":"b"}`) {
		t.Fatalf("cat: %s", out)
	}
	out = mustLake(t, "cat", dir, "--format", "jsonl", "--where", "event_date = 2024-01-03", "--where", "user_id=u2", "--columns", "event_id")
	if out != "{\"event_id\":\"e2\"}\n{\"event_id\":\"e3\"}\n" && out != "{\"event_id\":\"e3\"}\n{\"event_id\":\"e2\"}\n" {
		t.Fatalf("cat filtered: %q", out)
	}
	out = mustLake(t, "cat", dir, "--format", "csv", "--version", "1")
	if strings.Count(out, "\n") != 2 || !strings.HasPrefix(out, "event_id,") {
		t.Fatalf("cat csv v1: %q", out)
	}
	// history: 4 versions, newest first, fields as in the log.
	out = mustLake(t, "history", dir, "--format", "jsonl")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("history: %s", out)
	}
	var h map[string]any
	json.Unmarshal([]byte(lines[0]), &h)
	if h["version"].(float64) != 3 || h["operation"] != "WRITE" || h["engineInfo"] == "" || h["operationParameters"] == nil {
		t.Fatalf("history row: %v", h)
	}
	// describe json.
	out = mustLake(t, "describe", dir, "--format", "json")
	var d map[string]any
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if d["version"].(float64) != 3 || d["numFiles"].(float64) != 3 || d["numRecords"].(float64) != 3 {
		t.Fatalf("describe: %v", d)
	}
	// checkpointInterval=2 wrote one at version 2; an explicit one at 3.
	if _, err := os.Stat(filepath.Join(dir, "_delta_log", "00000000000000000002.checkpoint.parquet")); err != nil {
		t.Fatal("no automatic checkpoint at version 2")
	}
	out = mustLake(t, "checkpoint", dir)
	if !strings.Contains(out, "checkpoint at version 3") {
		t.Fatal(out)
	}
	out = mustLake(t, "files", dir)
	if strings.Count(out, "event_date=") != 3 {
		t.Fatalf("files: %s", out)
	}
	out = mustLake(t, "bench", "scan", dir, "--where", "event_date=2024-01-02")
	var b map[string]float64
	if err := json.Unmarshal([]byte(out), &b); err != nil || b["rows"] != 1 || b["files"] != 1 {
		t.Fatalf("bench scan: %s", out)
	}
}

func TestExitCodes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t")
	mustLake(t, "create", dir, "--schema", "interactions")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"nope"}, 2, "unknown command"},
		{[]string{"cat"}, 2, "missing argument"},
		{[]string{"cat", dir, "--where", "ghost = 1"}, 2, "ghost"},
		{[]string{"cat", dir, "--where", "value = abc"}, 2, "abc"},
		{[]string{"cat", dir, "--format", "xml"}, 2, "xml"},
		{[]string{"create", dir + "2"}, 2, "schema"},
		{[]string{"files", filepath.Join(t.TempDir(), "missing")}, 1, "not a Delta table"},
		{[]string{"files", dir, "--version", "7"}, 1, "version 7"},
		{[]string{"files", "ftp://bucket/x"}, 1, "ftp://bucket/x"},
		{[]string{"create", dir, "--schema", "interactions"}, 1, "already exists"},
		{[]string{"cat", testutil.CorpusTable("simple_table_features")}, 1, "blahabl"},
	} {
		_, errOut, code := lake(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("lake %v: exit %d stderr %q; want exit %d mentioning %q on one line", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
}

func TestIngestBadInputCommitsNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t")
	mustLake(t, "create", dir, "--schema", "interactions")
	in := filepath.Join(t.TempDir(), "bad.ndjson")
	os.WriteFile(in, []byte(rowsNDJSON+`{"event_id":"e4","user_id":"u1","timestamp":"yesterday"}`+"\n"), 0o644)
	_, errOut, code := lake(t, "ingest", dir, in, "--max-bad-fraction", "0.2")
	if code != 1 || !strings.Contains(errOut, in) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	out := mustLake(t, "describe", dir, "--format", "json")
	if !strings.Contains(out, `"version": 0`) {
		t.Fatalf("a failed ingest committed something: %s", out)
	}
}

func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	out := mustLake(t, "demo", dir, "--interactions", "20000")
	for _, want := range []string{"lake gen: generated 20000 interactions", "(4 read, 2 quarantined, 0 duplicate)",
		`"reason":"missing item_id"`, "1 files already ingested", "posted to the collector", "held-out recall@10",
		"out/trending: version 1", "similar_item_id", "recommendations for user", "first evaluated run", "late.ndjson", "STREAMING UPDATE"} {
		if !strings.Contains(out, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out)
		}
	}
	for _, sub := range []string{"events/_delta_log", "events_quarantine/_delta_log", "gen/truth/surges.jsonl",
		"out/similar_items/_delta_log", "out/user_recommendations/_delta_log", "out/trending/_delta_log", "out/popular/_delta_log", "out/models/_delta_log"} {
		if _, err := os.Stat(filepath.Join(dir, sub)); err != nil {
			t.Errorf("demo left no %s: %v", sub, err)
		}
	}
	// Every clicks event came through the collector: the streamed commits hold as many rows as
	// the file has lines.
	clicks, err := os.ReadFile(filepath.Join(dir, "gen", "clicks.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`posted to the collector .*?, (\d+) events[^\n]*\n\s*lake serve stopped; committed (\d+) events`).FindStringSubmatch(out)
	if m == nil || m[1] != m[2] || m[1] != strconv.Itoa(bytes.Count(clicks, []byte("\n"))) {
		t.Fatalf("collector step %q, clicks.ndjson has %d lines:\n%s", m, bytes.Count(clicks, []byte("\n")), out)
	}

	// Again on the same DIR: it says what is there and adds a run.
	out2 := mustLake(t, "demo", dir, "--interactions", "20000")
	for _, want := range []string{"already holds the demo", "events: version", "out/models: 2 runs", "Adding run 2", "gen/run-2", "out/trending: version 2"} {
		if !strings.Contains(out2, want) {
			t.Fatalf("second demo output lacks %q:\n%s", want, out2)
		}
	}
	list := mustLake(t, "models", "list", filepath.Join(dir, "out"), "--format", "jsonl")
	if n := strings.Count(list, `"job":"als"`); n != 2 {
		t.Fatalf("after two demo runs the registry lists %d ALS runs:\n%s", n, list)
	}
}

func TestIngestModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t")
	mustLake(t, "create", dir, "--schema", "interactions")
	in := filepath.Join(t.TempDir(), "rows.ndjson")
	os.WriteFile(in, []byte(rowsNDJSON), 0o644)
	mustLake(t, "ingest", dir, in)
	// Replace the 2024-01-03 partition with one row.
	one := filepath.Join(t.TempDir(), "one.ndjson")
	os.WriteFile(one, []byte(`{"event_id":"r1","user_id":"u9","item_id":"i9","interaction_type":"like","timestamp":"2024-01-03T09:00:00Z","event_date":"2024-01-03"}`+"\n"), 0o644)
	mustLake(t, "ingest", dir, one, "--replace-where", "event_date = 2024-01-03")
	out := mustLake(t, "cat", dir, "--format", "jsonl", "--columns", "event_id")
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, `"e1"`) || !strings.Contains(out, `"r1"`) {
		t.Fatalf("after replace-where: %s", out)
	}
	// A row outside the replaced partition is refused and nothing changes.
	_, errOut, code := lake(t, "ingest", dir, in, "--replace-where", "event_date = 2024-01-03")
	if code != 1 || !strings.Contains(errOut, "2024-01-02") {
		t.Fatalf("rows outside --replace-where: exit %d %s", code, errOut)
	}
	// Overwrite replaces everything.
	mustLake(t, "ingest", dir, one, "--mode", "overwrite")
	out = mustLake(t, "cat", dir, "--format", "jsonl", "--columns", "event_id")
	if out != "{\"event_id\":\"r1\"}\n" {
		t.Fatalf("after overwrite: %q", out)
	}
	// Time travel still sees the first ingest.
	out = mustLake(t, "cat", dir, "--format", "jsonl", "--version", "1", "--columns", "event_id")
	if strings.Count(out, "\n") != 3 {
		t.Fatalf("version 1: %s", out)
	}
}
