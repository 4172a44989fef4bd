package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func replicaLines(s string) []string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(l)
	return l
}

func TestCloneAndSyncCommands(t *testing.T) {
	src := filepath.Join(t.TempDir(), "events")
	mustLake(t, "create", src, "--schema", "interactions")
	in := filepath.Join(t.TempDir(), "rows.ndjson")
	os.WriteFile(in, []byte(rowsNDJSON), 0o644)
	mustLake(t, "ingest", src, in, "--batch-rows", "1")
	want := replicaLines(mustLake(t, "cat", src, "--format", "jsonl"))

	// clone: a new table at version 0 with the same rows.
	dst := "mem://replica-cmd/" + uuid.NewString()
	out := mustLake(t, "clone", src, dst, "--json")
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil || res["source_version"] != float64(3) || res["files_copied"] != float64(3) ||
		res["files_checksummed"] != float64(3) || res["files_md5"] != float64(3) || res["made_relative"] != float64(0) {
		t.Fatalf("clone: %s (%v)", out, err)
	}
	if got := replicaLines(mustLake(t, "cat", dst, "--format", "jsonl")); !slices.Equal(got, want) {
		t.Fatalf("clone rows: %v, want %v", got, want)
	}
	if h := mustLake(t, "history", dst, "--format", "jsonl"); !strings.Contains(h, `"operation":"CLONE"`) || !strings.Contains(h, `"sourceVersion":3`) {
		t.Fatalf("history: %s", h)
	}
	// Into a non-empty destination: refused, exit 1, one line.
	_, errOut, code := lake(t, "clone", src, dst)
	if code != 1 || !strings.Contains(errOut, "not empty") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("clone into a table: %d %q", code, errOut)
	}
	// An older version.
	old := "mem://replica-cmd/" + uuid.NewString()
	mustLake(t, "clone", src, old, "--version", "1")
	if got := mustLake(t, "cat", old, "--format", "jsonl"); strings.Count(got, "\n") != 1 {
		t.Fatalf("clone --version 1: %q", got)
	}

	// sync: the same versions.
	rep := filepath.Join(t.TempDir(), "replica")
	out = mustLake(t, "sync", src, rep)
	if !strings.Contains(out, "synced versions 0..3") {
		t.Fatalf("sync: %s", out)
	}
	for _, v := range []string{"0", "1", "2", "3"} {
		a := replicaLines(mustLake(t, "cat", src, "--format", "jsonl", "--version", v))
		b := replicaLines(mustLake(t, "cat", rep, "--format", "jsonl", "--version", v))
		if !slices.Equal(a, b) {
			t.Fatalf("version %s differs: %v vs %v", v, a, b)
		}
	}
	if out := mustLake(t, "sync", src, rep); !strings.Contains(out, "up to date at version 3") {
		t.Fatalf("second sync: %s", out)
	}
	// Someone writes to the replica: refused.
	in2 := filepath.Join(t.TempDir(), "more.ndjson")
	os.WriteFile(in2, []byte(strings.ReplaceAll(rowsNDJSON, `"e`, `"x`)), 0o644)
	mustLake(t, "ingest", rep, in2)
	mustLake(t, "ingest", src, in2, "--batch-rows", "2")
	_, errOut, code = lake(t, "sync", src, rep)
	if code != 1 || !strings.Contains(errOut, "is not a replica") {
		t.Fatalf("sync into a written replica: %d %q", code, errOut)
	}
}

func TestCloneSyncUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"clone", "a"},
		{"clone", "a", "a"},
		{"clone", "a", "b", "--version", "-1"},
		{"clone", "a", "b", "--parallel", "0"},
		{"sync", "a", "b", "--interval", "soon"},
		{"sync", "a", "b", "c"},
	} {
		if _, errOut, code := lake(t, args...); code != 2 || strings.Count(errOut, "\n") != 1 {
			t.Errorf("lake %v: exit %d, %q", args, code, errOut)
		}
	}
}
