package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/server"
)

// readGet GETs base+path with the read token and decodes the JSON answer into v; it returns
// the status and the Lake-Version header.
func readGet(t *testing.T, base, path, token string, v any) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, b)
		}
	}
	return resp.StatusCode, resp.Header.Get(server.VersionHeader)
}

func TestServeReads(t *testing.T) {
	dir := t.TempDir()
	d, err := jobs.Generate(&jobs.GenOptions{Users: 300, Items: 150, Days: 4, Interactions: 6000, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	events := filepath.Join(dir, "events")
	writeGenerated(t, events, d)
	prefix := filepath.Join(dir, "out")
	const tok = "sesame"

	base, stop := serveInProcess(t, "--table", events, "--outputs", prefix, "--outputs-poll", "100ms",
		"--read-token", tok, "--batch-interval", "100ms", "--rate-limit", "0")
	defer func() {
		if code, stderr := stop(); code != 0 {
			t.Errorf("serve exited %d: %s", code, stderr)
		}
	}()

	// Before the jobs: 503 saying which job to run; without the token: 401.
	var e struct{ Error string }
	if code, _ := readGet(t, base, "/v1/popular", tok, &e); code != 503 || !strings.Contains(e.Error, "lake trending") {
		t.Errorf("popular before trending ran: %d %q", code, e.Error)
	}
	if code, _ := readGet(t, base, "/v1/items/i1/similar", tok, &e); code != 503 || !strings.Contains(e.Error, "lake als") {
		t.Errorf("similar before als ran: %d %q", code, e.Error)
	}
	if code, _ := readGet(t, base, "/v1/popular", "", nil); code != 401 {
		t.Errorf("popular without the read token: %d", code)
	}

	// The jobs run while the server is up; it picks their outputs up.
	mustLake(t, "als", "--source", events, "--output", prefix, "--factors", "8", "--iterations", "3", "--top", "5", "--no-eval")
	// A --no-eval run is a candidate: served only once promoted.
	mustLake(t, "models", "promote", prefix, runsWithStatus(t, prefix, "als", "candidate")[0])
	mustLake(t, "trending", "--source", events, "--output", prefix)
	var pop server.WindowAnswer
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, _ := readGet(t, base, "/v1/popular?k=3", tok, &pop)
		var sim server.SimilarAnswer
		simCode := 0
		if code == 200 && len(pop.Items) > 0 {
			simCode, _ = readGet(t, base, "/v1/items/"+pop.Items[0].ItemID+"/similar", tok, &sim)
		}
		trCode := 0
		if simCode == 200 { // the tables load one by one: wait for trending's too
			var tr server.WindowAnswer
			trCode, _ = readGet(t, base, "/v1/trending?k=5", tok, &tr)
		}
		if simCode == 200 && trCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outputs were not served: popular %d %+v, similar %d", code, pop, simCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(pop.Items) == 0 || len(pop.Items) > 3 || pop.Items[0].Score != float64(pop.Items[0].Count) || pop.Items[0].Rank != 1 {
		t.Errorf("popular: %+v", pop)
	}
	if _, err := time.Parse(time.RFC3339, pop.WindowStart); err != nil {
		t.Errorf("popular window_start %q: %v", pop.WindowStart, err)
	}

	var sim server.SimilarAnswer
	code, hv := readGet(t, base, "/v1/items/"+pop.Items[0].ItemID+"/similar?k=2", tok, &sim)
	if code != 200 || len(sim.Items) != 2 || hv != strconv.FormatInt(sim.Version, 10) || sim.Version != 1 {
		t.Errorf("similar: %d %s %+v", code, hv, sim)
	}
	if code, _ := readGet(t, base, "/v1/items/no-such-item/similar", tok, &e); code != 404 {
		t.Errorf("unknown item: %d", code)
	}
	if code, _ := readGet(t, base, "/v1/items/i1/similar?k=zero", tok, &e); code != 400 {
		t.Errorf("k=zero: %d", code)
	}

	var recs server.RecsAnswer
	found := false
	for u := range int32(50) {
		if code, _ := readGet(t, base, "/v1/users/"+jobs.UserID(u)+"/recommendations?k=4", tok, &recs); code == 200 && recs.Source == "model" {
			found = len(recs.Items) == 4 && recs.UserID == jobs.UserID(u)
			break
		}
	}
	if !found {
		t.Errorf("no user among the first 50 answered from the model: last %+v", recs)
	}
	if code, _ := readGet(t, base, "/v1/users/stranger/recommendations", tok, &recs); code != 200 || (recs.Source != "trending" && recs.Source != "popular") || len(recs.Items) == 0 {
		t.Errorf("unknown user without events: %d %+v", code, recs)
	}

	var tr server.WindowAnswer
	if code, _ := readGet(t, base, "/v1/trending?k=5", tok, &tr); code != 200 || tr.Version < 1 || tr.Items == nil {
		t.Errorf("trending: %d %+v", code, tr)
	}
	// The window holding a time inside popular's latest window (the length comes from the
	// job's lineage).
	ws, _ := time.Parse(time.RFC3339, pop.WindowStart)
	var at server.WindowAnswer
	if code, _ := readGet(t, base, "/v1/popular?at="+ws.Add(59*time.Minute).Format(time.RFC3339), tok, &at); code != 200 || at.WindowStart != pop.WindowStart {
		t.Errorf("popular at: %d %+v, want window %s", code, at, pop.WindowStart)
	}
	if code, _ := readGet(t, base, "/v1/popular?at="+ws.Add(61*time.Minute).Format(time.RFC3339), tok, &e); code != 404 {
		t.Errorf("popular at a window not closed yet: %d %q", code, e.Error)
	}
	if code, _ := readGet(t, base, "/v1/trending?at=not-a-time", tok, &e); code != 400 {
		t.Errorf("trending at=not-a-time: %d", code)
	}

	// A new user's events through the pixel: once committed, their recommendations are the
	// items similar to what they touched.
	item := pop.Items[0].ItemID
	now := time.Now().UnixMilli()
	resp, err := http.Get(fmt.Sprintf("%s/p.gif?u=newbie&i=%s&t=view&ts=%d", base, item, now))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for deadline := time.Now().Add(20 * time.Second); ; {
		code, _ := readGet(t, base, "/v1/users/newbie/recommendations", tok, &recs)
		if code == 200 && recs.Source == "recent" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("newbie's recommendations never came from recent events: %d %+v", code, recs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, it := range recs.Items {
		if it.ItemID == item {
			t.Errorf("recent fallback recommends the item the user just touched: %+v", recs)
		}
	}
}

func TestServeReadsUsage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "events")
	mustLake(t, "create", dir, "--schema", "interactions")
	_, errOut, code := lake(t, "serve", "--table", dir, "--outputs", filepath.Join(t.TempDir(), "out"), "--outputs-poll", "0s")
	if code != 2 || !strings.Contains(errOut, "--outputs-poll") {
		t.Errorf("--outputs-poll 0s: exit %d, %q", code, errOut)
	}
}
