package integration

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `lake ingest URI -` reads stdin: without --idempotency-key every batch commits without a txn
// (stdin cannot be fingerprinted), a bad record goes to the quarantine, and with a key a second
// run of the same stream adds nothing.
func TestIngestStdin(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "events")
	runLake(t, "create", dir, "--schema", "interactions")
	var in bytes.Buffer
	for i := range 5 {
		fmt.Fprintf(&in, `{"event_id":"e%d","user_id":"u1","item_id":"i%d","interaction_type":"view","timestamp":"2024-03-01T10:00:0%dZ"}`+"\n", i, i, i)
	}
	in.WriteString(`{"user_id":"u2"}` + "\n")
	ingest := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(lake(t), append([]string{"ingest", dir, "-", "--format", "ndjson", "--batch-rows", "2"}, args...)...)
		cmd.Stdin = bytes.NewReader(in.Bytes())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("lake ingest -: %v: %s", err, out)
		}
		return string(out)
	}
	if out := ingest(); !strings.Contains(out, "ingested 5 rows in 3 commits (6 read, 1 quarantined, 0 duplicate)") {
		t.Fatalf("stdin ingest: %s", out)
	}
	if out := ingest("--idempotency-key", "k1"); !strings.Contains(out, "ingested 5 rows") {
		t.Fatalf("stdin ingest with a key: %s", out)
	}
	if out := ingest("--idempotency-key", "k1"); !strings.Contains(out, "ingested 0 rows") {
		t.Fatalf("the same key again must add nothing: %s", out)
	}
}
