package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// `lake trending --follow` killed with SIGKILL at random points while a writer ingests ten
// chunks of a generated retail file, restarted each time, ends with the same trending and
// popular rows as a batch run over the final table: no window committed twice or skipped.
func TestTrendingFollowKilled(t *testing.T) {
	bin := lake(t)
	work := t.TempDir()
	gen, events, out, ref := filepath.Join(work, "gen"), filepath.Join(work, "events"), filepath.Join(work, "out"), filepath.Join(work, "ref")
	runLake(t, "gen", "--out", gen, "--items", "600", "--users", "2000", "--days", "5", "--interactions", "40000", "--seed", "4")
	runLake(t, "create", events, "--schema", "interactions")
	data, err := os.ReadFile(filepath.Join(gen, "retail.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	header, body := lines[0], lines[1:]
	const chunks = 10
	mapping := filepath.Join(gen, "mappings", "retail.json")
	ingest := func(i int) {
		part := body[i*len(body)/chunks : (i+1)*len(body)/chunks]
		f := filepath.Join(work, fmt.Sprintf("chunk%02d.csv", i))
		if err := os.WriteFile(f, []byte(header+"\n"+strings.Join(part, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		runLake(t, "ingest", events, f, "--mapping", mapping)
	}
	ingest(0)
	follow := func() *exec.Cmd {
		cmd := exec.Command(bin, "trending", "--source", events, "--output", out, "--follow", "--poll", "100ms", "--allowed-lateness", "6h")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	rng := rand.New(rand.NewPCG(9, uint64(time.Now().UnixNano())))
	f := follow()
	kills := 0
	for i := 1; i < chunks; i++ {
		ingest(i)
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		if i%3 != 0 && kills < 5 {
			f.Process.Kill()
			f.Wait()
			kills++
			f = follow()
		}
	}
	defer func() {
		f.Process.Signal(syscall.SIGINT)
		f.Wait()
	}()
	runLake(t, "trending", "--source", events, "--output", ref, "--allowed-lateness", "6h")
	rows := func(uri string) []string {
		o, _, err := runLakeErr(context.Background(), t, "cat", uri, "--format", "jsonl")
		if err != nil {
			return nil // not created yet
		}
		l := strings.Split(strings.TrimSpace(o), "\n")
		slices.Sort(l)
		return l
	}
	want := map[string][]string{"popular": rows(filepath.Join(ref, "popular")), "trending": rows(filepath.Join(ref, "trending"))}
	if len(want["popular"]) < 100 {
		t.Fatalf("the batch run wrote %d popular rows: too few to compare", len(want["popular"]))
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		same := true
		for name, w := range want {
			if !slices.Equal(rows(filepath.Join(out, name)), w) {
				same = false
			}
		}
		if same {
			break
		}
		if time.Now().After(deadline) {
			for name, w := range want {
				got := rows(filepath.Join(out, name))
				t.Errorf("%s: the follower has %d rows, the batch run %d", name, len(got), len(w))
			}
			t.Fatalf("the follower (killed %d times) did not reach the batch run's rows within 60 s", kills)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("follower killed %d times; %d popular and %d trending rows equal the batch run's", kills, len(want["popular"]), len(want["trending"]))
}
