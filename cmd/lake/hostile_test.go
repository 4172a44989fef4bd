package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// oneLine checks a usage error's stderr: exactly one line, `lake CMD: ...`, no Usage text.
func oneLine(t *testing.T, args []string, errOut, cmd string) {
	t.Helper()
	if strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "lake "+cmd+": ") || strings.Contains(errOut, "Usage: lake") {
		t.Errorf("lake %v: stderr %q, want one line starting with %q and no Usage text", args, errOut, "lake "+cmd+": ")
	}
}

// Every numeric flag of cat, bench scan, files, describe and history refuses negative and
// malformed numbers as a usage error (exit 2, one line), before opening the table.
func TestHostileNumericFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t")
	mustLake(t, "create", dir, "--schema", "interactions")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"cat", dir, "--version", "-5"}, "versions start at 0"},
		{[]string{"cat", dir, "--version", "-1"}, "versions start at 0"},
		{[]string{"cat", dir, "--version", "abc"}, "versions start at 0"},
		{[]string{"cat", dir, "--version", "1.5"}, "not a whole number"},
		{[]string{"cat", dir, "--limit", "-1"}, "--limit takes 0"},
		{[]string{"cat", dir, "--limit", "ten"}, "--limit takes 0"},
		{[]string{"cat", dir, "--limit", "99999999999999999999"}, "too large"},
		{[]string{"files", dir, "--version", "-2"}, "versions start at 0"},
		{[]string{"describe", dir, "--version", "-3"}, "versions start at 0"},
		{[]string{"history", dir, "--limit", "-3"}, "--limit takes 0"},
		{[]string{"history", dir, "--limit", "x"}, "--limit takes 0"},
		{[]string{"bench", "scan", dir, "--version", "-1"}, "versions start at 0"},
		{[]string{"cat", dir, "--version", "0", "--timestamp", "2024-01-01T00:00:00Z"}, "not both"},
	} {
		_, errOut, code := lake(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.msg) {
			t.Errorf("lake %v: exit %d stderr %q; want exit 2 mentioning %q", tc.args, code, errOut, tc.msg)
		}
		oneLine(t, tc.args, errOut, tc.args[0])
	}
	// The valid forms still work: --version 0, --limit 0 (no limit), history --limit 1.
	mustLake(t, "cat", dir, "--version", "0", "--limit", "0", "--format", "jsonl")
	mustLake(t, "files", dir, "--version", "0")
	out := mustLake(t, "history", dir, "--limit", "1", "--format", "jsonl")
	var h map[string]any
	if strings.Count(out, "\n") != 1 || json.Unmarshal([]byte(out), &h) != nil || h["version"] != 0.0 {
		t.Errorf("history --limit 1: %q", out)
	}
}

// A usage error prints one line; only -h prints the Usage text (and exits 0).
func TestHostileUsageOneLine(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t")
	mustLake(t, "create", dir, "--schema", "interactions")
	for _, args := range [][]string{
		{"cat", dir, "--nope"},
		{"cat"},
		{"history", dir, "--limit"},
		{"describe", dir, "--format", "xml"},
		{"files", dir, dir},
		{"create", filepath.Join(t.TempDir(), "x"), "--bogus"},
		{"checkpoint"},
	} {
		_, errOut, code := lake(t, args...)
		if code != 2 {
			t.Errorf("lake %v: exit %d, want 2", args, code)
		}
		oneLine(t, args, errOut, args[0])
	}
	if _, errOut, code := lake(t); code != 2 || errOut != "lake: missing command; run `lake help` for the list\n" {
		t.Errorf("lake without a command: exit %d stderr %q", code, errOut)
	}
	if _, errOut, code := lake(t, "help"); code != 0 || !strings.Contains(errOut, "Usage: lake COMMAND") {
		t.Errorf("lake help: exit %d stderr %q", code, errOut)
	}
	_, errOut, _ := lake(t, "cat")
	if !strings.Contains(errOut, "usage: lake cat URI") {
		t.Errorf("missing argument: %q does not show the command's usage", errOut)
	}
	_, errOut, code := lake(t, "cat", "-h")
	if code != 0 || !strings.HasPrefix(errOut, "Usage: lake cat URI") || !strings.Contains(errOut, "-limit") {
		t.Errorf("cat -h: exit %d stderr %q; want the Usage text with the flags", code, errOut)
	}
}

// create refuses duplicate partition columns and bad values of the known delta.* properties
// with a usage error, and leaves nothing behind.
func TestHostileCreateValidation(t *testing.T) {
	base := t.TempDir()
	for i, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--partition-by", "event_date,event_date"}, "listed twice"},
		{[]string{"--partition-by", "event_date", "--partition-by", "event_date"}, "listed twice"},
		{[]string{"--partition-by", "nope"}, "not in the schema"},
		{[]string{"--property", "delta.columnMapping.mode=names"}, "none, name, id"},
		{[]string{"--property", "delta.columnMapping.mode=Name"}, "none, name, id"},
		{[]string{"--property", "delta.checkpointInterval=abc"}, "positive integer"},
		{[]string{"--property", "delta.checkpointInterval=0"}, "positive integer"},
		{[]string{"--property", "delta.checkpointInterval=-5"}, "positive integer"},
		{[]string{"--property", "delta.checkpointInterval="}, "positive integer"},
		{[]string{"--property", "delta.appendOnly=yes"}, "true or false"},
		{[]string{"--property", "delta.enableInCommitTimestamps=1"}, "true or false"},
		{[]string{"--property", "delta.dataSkippingNumIndexedCols=-2"}, "-1"},
		{[]string{"--property", "delta.logRetentionDuration=forever"}, "interval"},
		{[]string{"--property", "delta.targetFileSize=0"}, "positive number of bytes"},
		{[]string{"--property", "delta.parquet.compression.codec=brotli"}, "zstd"},
		{[]string{"--property", "delta.checkpointinterval=5"}, "did you mean delta.checkpointInterval"},
		{[]string{"--property", "delta.checkpointInterval=5", "--property", "delta.checkpointInterval=7"}, "twice"},
	} {
		dir := filepath.Join(base, "t", strings.Repeat("x", i+1))
		args := append([]string{"create", dir, "--schema", "interactions"}, tc.args...)
		_, errOut, code := lake(t, args...)
		if code != 2 || !strings.Contains(errOut, tc.msg) {
			t.Errorf("lake %v: exit %d stderr %q; want exit 2 mentioning %q", args, code, errOut, tc.msg)
		}
		oneLine(t, args, errOut, "create")
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("lake %v left %s behind (%v)", args, dir, err)
		}
	}
	// Good values pass.
	dir := filepath.Join(base, "good")
	mustLake(t, "create", dir, "--schema", "interactions", "--property", "delta.checkpointInterval=5",
		"--property", "delta.appendOnly=false", "--property", "delta.logRetentionDuration=interval 30 days",
		"--property", "delta.targetFileSize=64mb", "--property", "delta.columnMapping.mode=none")
	out := mustLake(t, "describe", dir, "--format", "json")
	if !strings.Contains(out, `"delta.checkpointInterval": "5"`) {
		t.Errorf("describe: %s", out)
	}
}

// Read commands on a mistyped local path create nothing and say the table does not exist.
func TestHostileReadMissingTableCreatesNothing(t *testing.T) {
	base := t.TempDir()
	missing := filepath.Join(base, "typo", "events")
	for _, args := range [][]string{
		{"cat", missing},
		{"history", missing},
		{"describe", missing},
		{"files", missing},
		{"checkpoint", missing},
		{"bench", "scan", missing},
		{"cat", "file://" + missing},
	} {
		_, errOut, code := lake(t, args...)
		if code != 1 || !strings.Contains(errOut, "does not exist") || !strings.Contains(errOut, "lake create") ||
			!strings.Contains(errOut, "not a Delta table") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("lake %v: exit %d stderr %q; want exit 1, one line saying the table does not exist", args, code, errOut)
		}
		if _, err := os.Stat(filepath.Join(base, "typo")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("lake %v created %s", args, filepath.Join(base, "typo"))
		}
	}
	// An existing folder without a log is not a table either, and stays empty.
	empty := filepath.Join(base, "empty")
	if err := os.Mkdir(empty, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := lake(t, "files", empty); code != 1 || !strings.Contains(errOut, "not a Delta table") {
		t.Errorf("files on an empty folder: exit %d %q", code, errOut)
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Errorf("files on an empty folder wrote %v", ents)
	}
	// create still creates the folders.
	mustLake(t, "create", missing, "--schema", "interactions")
	mustLake(t, "files", missing)
}

// A zero-byte latest commit is a corruption error naming the file, for reads and history.
func TestHostileEmptyCommitFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t")
	mustLake(t, "create", dir, "--schema", "interactions")
	mustLake(t, "create", dir+"2", "--schema", "interactions")
	// Version 1: a copy of another table's valid commit; version 2: empty.
	v0, err := os.ReadFile(filepath.Join(dir+"2", "_delta_log", "00000000000000000000.json"))
	if err != nil {
		t.Fatal(err)
	}
	commitInfo, _, _ := strings.Cut(string(v0), "\n")
	if err := os.WriteFile(filepath.Join(dir, "_delta_log", "00000000000000000001.json"), []byte(commitInfo+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "_delta_log", "00000000000000000002.json"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"cat", dir},
		{"files", dir},
		{"describe", dir},
		{"history", dir},
		{"history", dir, "--limit", "1"},
		{"checkpoint", dir},
	} {
		_, errOut, code := lake(t, args...)
		if code != 1 || !strings.Contains(errOut, "00000000000000000002.json") || !strings.Contains(errOut, "empty") ||
			strings.Count(errOut, "\n") != 1 {
			t.Errorf("lake %v: exit %d stderr %q; want exit 1 naming the empty commit file", args, code, errOut)
		}
	}
	mustLake(t, "files", dir, "--version", "1")
}
