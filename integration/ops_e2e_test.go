package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/server/ops"
	"github.com/lakehouse/lake/table"
)

// TestOpsEndToEnd runs `lake serve --config` in-process on real RabbitMQ: events posted to the
// collector go through the queue and the committer into the table; ALS retrains on its
// new-interactions schedule and trending follows the table; the read APIs answer with the new
// model, and a second wave of events brings a retrain that the APIs then serve.
func TestOpsEndToEnd(t *testing.T) {
	requireRabbit(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	events, out := filepath.Join(dir, "events"), filepath.Join(dir, "out")
	tbl, err := table.Create(ctx, events, table.InteractionSchema(), &table.CreateOptions{PartitionColumns: []string{table.InteractionPartitionColumn}})
	if err != nil {
		t.Fatal(err)
	}
	tbl.Close()
	name := uniqueName("lake-ops-e2e")
	cfgPath := filepath.Join(dir, "lake.yaml")
	yaml := fmt.Sprintf(`table: %s
outputs: %s
outputs_poll: 1h               # new models are served because a registered run kicks a refresh, not by polling
queue: rabbit://%s
log_level: warn
server:
  rate_limit: 0
  write_token: secret
committer:
  name: %s
  batch_rows: 1000
  batch_interval: 200ms
jobs:
  als:
    every: 1h                # the new-interactions trigger comes first
    new_interactions: 2000
    poll: 200ms
    factors: 8
    iterations: 4
    eval_users: 300
    gate_tolerance: 1        # small data: recall is noisy; let every evaluated run go live
  trending:
    follow: true
    poll: 200ms
    window: 1d
    lateness: 0s
maintenance:
  optimize:
    every: 1h
  vacuum:
    every: 1d
retry:
  initial: 500ms
  max: 5s
`, events, out, name, name)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := ops.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var logs opsLog
	var base string
	// start runs ops.Run in the background on a free port; the function returned stops it.
	start := func() (stop func()) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base = "http://" + ln.Addr().String()
		runCtx, cancelRun := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- ops.Run(runCtx, cfg, &ops.RunOptions{Listener: ln, Stdout: &logs}) }()
		stopped := false
		return func() {
			if stopped {
				return
			}
			stopped = true
			cancelRun()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("ops.Run: %v\n%s", err, logs.String())
				}
			case <-time.After(30 * time.Second):
				t.Errorf("ops.Run did not stop within 30 s of cancel:\n%s", logs.String())
			}
		}
	}
	stop := start()
	defer func() { stop() }()

	// Two waves from one generated shop: the first 3,000 events, then 2,500 more.
	d, err := jobs.Generate(&jobs.GenOptions{Users: 300, Items: 120, Days: 14, Interactions: 5500, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[int32]int{}
	for _, ev := range d.Events[:3000] {
		counts[ev.Item]++
	}
	var top int32
	for it, n := range counts {
		if n > counts[top] || n == counts[top] && it < top {
			top = it
		}
	}
	post := func(evs []jobs.Event) {
		t.Helper()
		for start := 0; start < len(evs); start += 500 {
			var buf bytes.Buffer
			for _, ev := range evs[start:min(start+500, len(evs))] {
				b, _ := json.Marshal(map[string]any{
					"user_id": jobs.UserID(ev.User), "item_id": jobs.ItemID(ev.Item), "interaction_type": jobs.GenTypeNames[ev.Type],
					"timestamp": time.UnixMicro(ev.Time).UTC().Format(time.RFC3339Nano),
				})
				buf.Write(append(b, '\n'))
			}
			req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/events", &buf)
			req.Header.Set("Authorization", "Bearer secret")
			req.Header.Set("Content-Type", "application/x-ndjson")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("POST /v1/events: %d %s", resp.StatusCode, body)
			}
		}
	}
	get := func(path string, v any) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if v != nil && resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(body, v); err != nil {
				t.Fatalf("GET %s: %v: %s", path, err, body)
			}
		}
		return resp.StatusCode, resp.Header
	}
	type run struct {
		RunID         string `json:"run_id"`
		Status        string `json:"status"`
		SourceVersion int64  `json:"source_version"`
	}
	type models struct {
		Live map[string]*run `json:"live"`
	}
	// waitFor polls cond every 100 ms until it holds.
	waitFor := func(what string, within time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			if time.Now().After(deadline) {
				var rep any
				get("/v1/ops", &rep)
				b, _ := json.MarshalIndent(rep, "", "  ")
				t.Fatalf("%s: not within %v\n/v1/ops: %s\nlog:\n%s", what, within, b, logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	liveALS := func() *run {
		var m models
		if code, _ := get("/v1/models", &m); code != http.StatusOK {
			return nil
		}
		return m.Live["als"]
	}
	type similar struct {
		ItemID  string `json:"item_id"`
		Version int64  `json:"version"`
		Items   []struct {
			ItemID string `json:"item_id"`
		} `json:"items"`
	}
	similarPath := "/v1/items/" + jobs.ItemID(top) + "/similar?k=5"

	post(d.Events[:3000])
	var first *run
	waitFor("a live ALS run after 3,000 events (new_interactions 2000)", 40*time.Second, func() bool {
		first = liveALS()
		return first != nil
	})
	var m models
	waitFor("a live trending run (follow)", 20*time.Second, func() bool {
		get("/v1/models", &m)
		return m.Live["trending"] != nil
	})
	var sim similar
	var header http.Header
	waitFor("/v1/items/{id}/similar served from the live run", 20*time.Second, func() bool {
		code, h := get(similarPath, &sim)
		header = h
		return code == http.StatusOK
	})
	if header.Get("Lake-Version") == "" || sim.ItemID != jobs.ItemID(top) || len(sim.Items) == 0 {
		t.Fatalf("similar: header %v, body %+v", header, sim)
	}
	firstVersion := header.Get("Lake-Version")
	if code, _ := get("/v1/trending?k=5", nil); code != http.StatusOK {
		t.Errorf("/v1/trending: %d", code)
	}

	// The second wave: 2,500 more events bring the table 2,000 rows past the first run's source
	// version, whichever share of the first wave that version held.
	post(d.Events[3000:])
	var second *run
	waitFor("a retrained live ALS run after 2,500 more events", 40*time.Second, func() bool {
		second = liveALS()
		return second != nil && second.RunID != first.RunID
	})
	if second.SourceVersion <= first.SourceVersion {
		t.Errorf("the retrain read source version %d, the first run %d", second.SourceVersion, first.SourceVersion)
	}
	waitFor("the read API serving the retrained version", 20*time.Second, func() bool {
		code, h := get(similarPath, &sim)
		header = h
		return code == http.StatusOK && h.Get("Lake-Version") != firstVersion
	})

	t.Logf("ALS run %s (source version %d, similar_items %s) retrained as %s (source version %d, similar_items %s)",
		first.RunID, first.SourceVersion, firstVersion, second.RunID, second.SourceVersion, header.Get("Lake-Version"))
	var rep ops.Report
	if code, _ := get("/v1/ops", &rep); code != http.StatusOK {
		t.Fatalf("/v1/ops: %d", code)
	}
	byName := map[string]ops.TaskStatus{}
	for _, ts := range rep.Tasks {
		byName[ts.Name] = ts
	}
	als, tr := byName[ops.TaskALS], byName[ops.TaskTrending]
	if als.Runs < 2 || als.LastResult == nil || als.LastResult.RunID != second.RunID || als.ConsecutiveFailures != 0 {
		t.Errorf("/v1/ops als: %+v", als)
	}
	if !tr.Running || tr.LastResult == nil || tr.LastSuccess == nil {
		t.Errorf("/v1/ops trending: %+v", tr)
	}
	if _, ok := byName[ops.TaskOptimize]; !ok {
		t.Errorf("/v1/ops lacks optimize: %+v", rep.Tasks)
	}
	var metrics strings.Builder
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(&metrics, resp.Body)
	resp.Body.Close()
	if !strings.Contains(metrics.String(), `lake_ops_runs_total{result="success",task="als"}`) ||
		!strings.Contains(metrics.String(), `lake_ops_last_success_timestamp_seconds{task="als"}`) {
		t.Errorf("/metrics lacks the ops metrics")
	}

	// A restart keeps the schedule: the last ALS run in the registry is the baseline of
	// new_interactions (the table holds fewer than 2,000 rows past its source version), so the
	// restarted server serves the same live run and does not retrain.
	stop()
	stop = start()
	time.Sleep(1500 * time.Millisecond) // several polls of the row count
	if code, h := get(similarPath, &sim); code != http.StatusOK || h.Get("Lake-Version") != header.Get("Lake-Version") {
		t.Errorf("after a restart: similar %d, version %q, want %q", code, h.Get("Lake-Version"), header.Get("Lake-Version"))
	}
	rep = ops.Report{}
	get("/v1/ops", &rep)
	for _, ts := range rep.Tasks {
		if ts.Name == ops.TaskALS && (ts.Runs != 0 || ts.Running) {
			t.Errorf("after a restart ALS retrained without 2,000 new interactions: %+v", ts)
		}
	}
	if live := liveALS(); live == nil || live.RunID != second.RunID {
		t.Errorf("after a restart the live ALS run is %+v, want %s", live, second.RunID)
	}
}

// opsLog is a strings.Builder safe for concurrent writes.
type opsLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *opsLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *opsLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
