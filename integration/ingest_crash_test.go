package integration

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse/lake/internal/storage/storagetest"
)

// `lake ingest` killed with SIGKILL at random points, then run again until it finishes, commits
// every record exactly once: each batch carries a txn of the file's fingerprint, so the run after
// a crash skips the batches that landed and commits the rest. Bad records land exactly once in
// the quarantine table too. On the local disk and S3 (versitygw).
func TestIngestKilledAndRerun(t *testing.T) {
	requireEnv(t, "LAKE_TEST_S3_URL")
	bin := lake(t)
	for _, b := range storagetest.Backends(t) {
		if b.Name != "local" && b.Name != "s3" {
			continue
		}
		t.Run(b.Name, func(t *testing.T) {
			uri := b.URI(t)
			runLake(t, "create", uri, "--schema", "interactions")
			const rows, bad = 20_000, 200
			csv := filepath.Join(t.TempDir(), "export.csv")
			var sb strings.Builder
			sb.WriteString("uid,product,action,ts\n")
			for i := range rows {
				ts := fmt.Sprint(1709251200000 + int64(i)*60_000)
				if i%(rows/bad) == 7 {
					ts = "garbage"
				}
				fmt.Fprintf(&sb, "u%d,p%d,pv,%s\n", i, i%500, ts)
			}
			os.WriteFile(csv, []byte(sb.String()), 0o644)
			args := []string{"ingest", uri, csv, "--map", "user_id=uid,item_id=product,interaction_type=action,timestamp=ts",
				"--timestamp-format", "epoch_ms", "--batch-rows", "1000", "--json"}
			rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
			kills, partial := 0, 0
			for attempt := 0; ; attempt++ {
				cmd := exec.Command(bin, args...)
				var out strings.Builder
				cmd.Stdout = &out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				var err error
				if attempt < 4 {
					select {
					case err = <-done:
					case <-time.After(time.Duration(50+rng.IntN(400)) * time.Millisecond):
						cmd.Process.Kill()
						<-done
						kills++
						if v := tableVersion(t, uri); v > 0 && v < rows/1000 {
							partial++
						}
						continue
					}
				} else {
					err = <-done
				}
				if err != nil {
					t.Fatalf("ingest: %v", err)
				}
				break
			}
			t.Logf("%d runs killed, %d of them after some batches and before the last", kills, partial)
			if partial == 0 {
				t.Fatal("no run was killed half-way: the test proved nothing (make the file larger)")
			}
			cnt := func(u string) (int, int) {
				out := runLake(t, "cat", u, "--format", "jsonl", "--columns", pick(u))
				ids := map[string]int{}
				n := 0
				for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
					if l == "" {
						continue
					}
					var m map[string]any
					json.Unmarshal([]byte(l), &m)
					ids[fmt.Sprint(m[pick(u)])]++
					n++
				}
				return n, len(ids)
			}
			n, distinct := cnt(uri)
			if n != rows-bad || distinct != n {
				t.Fatalf("table: %d rows, %d distinct ids; want %d once each", n, distinct, rows-bad)
			}
			q, _ := quarantineURI(uri)
			qn, qd := cnt(q)
			if qn != bad || qd != bad {
				t.Fatalf("quarantine: %d rows, %d distinct raw records; want %d", qn, qd, bad)
			}
		})
	}
}

func pick(uri string) string {
	if strings.Contains(uri, "_quarantine") {
		return "raw"
	}
	return "event_id"
}

// quarantineURI is the sibling table URI_quarantine, on the path before the query string.
func quarantineURI(uri string) (string, error) {
	base, query, _ := strings.Cut(uri, "?")
	base = strings.TrimRight(base, "/") + "_quarantine"
	if query != "" {
		return base + "?" + query, nil
	}
	return base, nil
}

// tableVersion is the table's latest version (from lake describe).
func tableVersion(t *testing.T, uri string) int {
	var d struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal([]byte(runLake(t, "describe", uri, "--format", "json")), &d); err != nil {
		t.Fatal(err)
	}
	return d.Version
}
