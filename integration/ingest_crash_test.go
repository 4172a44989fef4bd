package integration

import (
	"context"
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
	"github.com/lakehouse/lake/table"
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
			const batch = 200
			args := []string{"ingest", uri, csv, "--map", "user_id=uid,item_id=product,interaction_type=action,timestamp=ts",
				"--timestamp-format", "epoch_ms", "--batch-rows", fmt.Sprint(batch), "--json"}
			rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
			tb, err := table.Open(context.Background(), uri, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tb.Close()
			version := func() int64 {
				s, err := tb.Snapshot(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				return s.Version()
			}
			// Four runs are killed once the table has moved on by 1 to 4 commits (a point chosen
			// at random, found by watching the log), the fifth runs to the end.
			kills, partial := 0, 0
			for attempt := 0; ; attempt++ {
				cmd := exec.Command(bin, args...)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				if attempt < 4 {
					target := version() + 1 + int64(rng.IntN(4))
					var exited error
					finished := false
				watch:
					for {
						select {
						case exited = <-done:
							finished = true
							break watch
						case <-time.After(2 * time.Millisecond):
							if version() >= target {
								break watch
							}
						}
					}
					if finished {
						if exited != nil {
							t.Fatalf("ingest: %v", exited)
						}
						break
					}
					cmd.Process.Kill()
					<-done
					kills++
					if v := version(); v > 0 && v < rows/batch {
						partial++
					}
					continue
				}
				if err := <-done; err != nil {
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
