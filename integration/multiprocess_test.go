package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse/lake/internal/storage/storagetest"
)

const (
	mpWriters = 8
	mpCommits = 50
	// mpSchema is a Delta schemaString: id long not null, writer string not null.
	mpSchema = `{"type":"struct","fields":[` +
		`{"name":"id","type":"long","nullable":false,"metadata":{}},` +
		`{"name":"writer","type":"string","nullable":false,"metadata":{}}]}`
)

// Eight `lake ingest` processes, started together, each append 50 one-row commits to one table.
// Every commit lands exactly once, at its own version, with nothing lost or duplicated: on a
// local directory and on S3 (versitygw).
func TestMultiProcessCommits(t *testing.T) {
	requireEnv(t, "LAKE_TEST_S3_URL")
	lake(t) // build before the clock starts
	for _, b := range storagetest.Backends(t) {
		if b.Name != "local" && b.Name != "s3" {
			continue
		}
		t.Run(b.Name, func(t *testing.T) {
			uri := b.URI(t)
			multiProcessCommits(t, uri)
		})
	}
}

func multiProcessCommits(t *testing.T, uri string) {
	work := t.TempDir()
	schemaFile := filepath.Join(work, "schema.json")
	if err := os.WriteFile(schemaFile, []byte(mpSchema), 0o644); err != nil {
		t.Fatal(err)
	}
	runLake(t, "create", uri, "--schema-json", schemaFile)

	files := make([]string, mpWriters)
	for w := range mpWriters {
		var buf bytes.Buffer
		for i := range mpCommits {
			fmt.Fprintf(&buf, `{"id":%d,"writer":"w%d"}`+"\n", i, w)
		}
		files[w] = filepath.Join(work, fmt.Sprintf("w%d.ndjson", w))
		if err := os.WriteFile(files[w], buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	start := time.Now()
	cmds := make([]*exec.Cmd, mpWriters)
	outs := make([]*bytes.Buffer, mpWriters)
	for w := range mpWriters {
		cmds[w] = exec.CommandContext(ctx, lake(t), "ingest", uri, files[w], "--format", "ndjson", "--batch-rows", "1")
		outs[w] = &bytes.Buffer{}
		cmds[w].Stdout, cmds[w].Stderr = outs[w], outs[w]
	}
	// Start them all before waiting on any, so they race from the first commit.
	for w, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatalf("start writer %d: %v", w, err)
		}
	}
	failed := false
	for w, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("writer %d: %v\n%s", w, err, outs[w])
			failed = true
		}
	}
	if failed {
		t.FailNow()
	}
	t.Logf("%d writers x %d commits took %v", mpWriters, mpCommits, time.Since(start))
	const total = mpWriters * mpCommits

	// describe: the latest version is 400, with 400 files and 400 records.
	var desc struct {
		Version    int64  `json:"version"`
		NumFiles   int    `json:"numFiles"`
		NumRecords *int64 `json:"numRecords"`
	}
	if err := json.Unmarshal([]byte(runLake(t, "describe", uri, "--format", "json")), &desc); err != nil {
		t.Fatal(err)
	}
	if desc.Version != total || desc.NumFiles != total || desc.NumRecords == nil || *desc.NumRecords != total {
		t.Errorf("describe: version %d, %d files, records %v; want %d, %d, %d", desc.Version, desc.NumFiles, desc.NumRecords, total, total, total)
	}

	// history: versions 0..400, each exactly once.
	seen := map[int64]bool{}
	for _, line := range jsonLines(t, runLake(t, "history", uri, "--format", "jsonl")) {
		var h struct {
			Version   *int64 `json:"version"`
			Operation string `json:"operation"`
		}
		if err := json.Unmarshal([]byte(line), &h); err != nil {
			t.Fatalf("history line %q: %v", line, err)
		}
		if h.Version == nil {
			t.Fatalf("history line without a version: %s", line)
		}
		if seen[*h.Version] {
			t.Errorf("history lists version %d twice", *h.Version)
		}
		seen[*h.Version] = true
	}
	if len(seen) != total+1 {
		t.Errorf("history has %d versions, want %d", len(seen), total+1)
	}
	for v := int64(0); v <= total; v++ {
		if !seen[v] {
			t.Errorf("history lacks version %d", v)
		}
	}

	// cat: every (writer, id) pair exactly once.
	pairs := map[string]int{}
	rows := jsonLines(t, runLake(t, "cat", uri, "--format", "jsonl"))
	for _, line := range rows {
		var r struct {
			ID     *int64  `json:"id"`
			Writer *string `json:"writer"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("cat line %q: %v", line, err)
		}
		if r.ID == nil || r.Writer == nil {
			t.Fatalf("cat row with a null: %s", line)
		}
		pairs[fmt.Sprintf("%s/%d", *r.Writer, *r.ID)]++
	}
	if len(rows) != total {
		t.Errorf("cat returned %d rows, want %d", len(rows), total)
	}
	for w := range mpWriters {
		for i := range mpCommits {
			if k := fmt.Sprintf("w%d/%d", w, i); pairs[k] != 1 {
				t.Errorf("row %s appears %d times", k, pairs[k])
			}
		}
	}

	// files: 400 distinct data files (one per commit).
	paths := jsonLines(t, runLake(t, "files", uri))
	distinct := map[string]bool{}
	for _, p := range paths {
		distinct[p] = true
	}
	if len(paths) != total || len(distinct) != total {
		t.Errorf("files lists %d paths (%d distinct), want %d", len(paths), len(distinct), total)
	}
	if !strings.Contains(uri, "://") { // local: every listed file is on disk
		for p := range distinct {
			if _, err := os.Stat(filepath.Join(uri, filepath.FromSlash(p))); err != nil {
				t.Errorf("listed file: %v", err)
			}
		}
	}
}

// jsonLines splits output into its non-empty lines.
func jsonLines(t *testing.T, out string) []string {
	t.Helper()
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}
