package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse/lake/jobs"
)

func TestTrendingCLI(t *testing.T) {
	dir := t.TempDir()
	d, err := jobs.Generate(&jobs.GenOptions{Users: 1000, Items: 300, Days: 4, Interactions: 20000, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	events := filepath.Join(dir, "events")
	writeGenerated(t, events, d)
	out := filepath.Join(dir, "out")

	stdout, stderr, code := lake(t, "trending", "--source", events, "--output", out, "--top", "5")
	if code != 0 {
		t.Fatalf("trending: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"popular: version 1", "trending: version 1", "closed windows"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "events/s") {
		t.Errorf("progress:\n%s", stderr)
	}
	// A rerun writes nothing and says so.
	stdout = mustLake(t, "trending", "--source", events, "--output", out, "--top", "5")
	if !strings.Contains(stdout, "nothing written") {
		t.Errorf("rerun: %s", stdout)
	}
	// The outputs read back with the contract's columns.
	rows := mustLake(t, "cat", filepath.Join(out, "popular"), "--format", "jsonl", "--limit", "3")
	var row map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(rows, "\n", 2)[0]), &row); err != nil {
		t.Fatalf("cat popular: %v: %s", err, rows)
	}
	for _, k := range []string{"window_start", "item_id", "count", "rank"} {
		if _, ok := row[k]; !ok {
			t.Errorf("popular row lacks %s: %v", k, row)
		}
	}
	desc := mustLake(t, "describe", filepath.Join(out, "trending"), "--format", "json")
	for _, k := range []string{"window_start", "item_id", "count", "expected", "score", "rank"} {
		if !strings.Contains(desc, `"`+k+`"`) {
			t.Errorf("trending schema lacks %s: %s", k, desc)
		}
	}
	hist := mustLake(t, "history", filepath.Join(out, "trending"), "--format", "jsonl", "--limit", "1")
	if !strings.Contains(hist, `"sourceVersion":"1"`) || !strings.Contains(hist, `"job":"trending"`) {
		t.Errorf("history lacks the lineage: %s", hist)
	}
	// JSON result.
	stdout = mustLake(t, "trending", "--source", events, "--output", filepath.Join(dir, "out2"), "--window", "2h", "--types", "view", "--json")
	var res struct {
		Windows int   `json:"windows"`
		Events  int64 `json:"events"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Windows < 40 || res.Events >= int64(len(d.Events)) {
		t.Errorf("--json: %v %s", err, stdout)
	}
}

func TestTrendingCLIErrors(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	mustLake(t, "create", events, "--schema", "interactions")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--output", dir}, 2, "--source"},
		{[]string{"--source", events}, 2, "--output"},
		{[]string{"--source", events, "--output", dir, "--window", "500ms"}, 2, "at least 1s"},
		{[]string{"--source", events, "--output", dir, "--window", "soon"}, 2, "--window"},
		{[]string{"--source", events, "--output", dir, "--threshold", "-1"}, 2, "--threshold"},
		{[]string{"--source", events, "--output", dir, "--weights", "view"}, 2, "weights"},
		{[]string{"--source", events, "--output", dir, "--window-origin", "monday"}, 2, "--window-origin"},
		{[]string{"--source", events, "--output", dir, "--follow", "--source-version", "0"}, 2, "--follow"},
		{[]string{"--source", events, "--output", dir}, 1, "no events"},
		{[]string{"--source", filepath.Join(dir, "nope"), "--output", dir}, 1, "nope"},
		{[]string{"--source", events, "--output", dir, "--source-version", "9"}, 1, "lake history"},
	} {
		_, stderr, code := lake(t, append([]string{"trending"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("trending %v: exit %d, stderr %q; want exit %d and one line with %q", c.args, code, stderr, c.code, c.want)
		}
	}
}

// A pre-aggregated daily series (date,region,cases) ingested with constants for the user and
// the type, then `trending --count value --window 1d`: the planted outbreak is flagged, and
// nothing else is; the count mode is in the lineage.
func TestTrendingCLICountValue(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "cases.csv")
	var b strings.Builder
	b.WriteString("date,region,cases\n")
	rng := rand.New(rand.NewPCG(3, 4))
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) // a Monday
	bases := []float64{8, 40, 150, 600}
	const days, obStart, obDays = 150, 110, 12
	for d := range days {
		day := start.AddDate(0, 0, d)
		for r, base := range bases {
			mu := base
			if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
				mu *= 0.6
			}
			if r == 2 && d >= obStart && d < obStart+obDays {
				mu *= 1 + 2*float64(d-obStart+1)/obDays // a ramp to 3x
			}
			// Negative-binomial-like noise (variance mu + mu²/20), by its normal approximation.
			sd := math.Sqrt(mu + mu*mu/20)
			fmt.Fprintf(&b, "%s,region-%d,%d\n", day.Format("2006-01-02"), r, max(0, int(math.Round(mu+sd*rng.NormFloat64()))))
		}
	}
	if err := os.WriteFile(csv, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	events := filepath.Join(dir, "events")
	mustLake(t, "create", events, "--schema", "interactions")
	mustLake(t, "ingest", events, csv, "--map", "user_id=:reporting-unit,item_id=region,value=cases,interaction_type=:case,timestamp=date")
	out := filepath.Join(dir, "out")
	// Counting distinct users on such a series sees one user everywhere, and says what to do.
	if _, errOut, code := lake(t, "trending", "--source", events, "--output", filepath.Join(t.TempDir(), "users"), "--window", "1d"); code != 0 || !strings.Contains(errOut, "use --count value") {
		t.Fatalf("users mode on a pre-aggregated series: exit %d, stderr %q", code, errOut)
	}
	stdout := mustLake(t, "trending", "--source", events, "--output", out, "--count", "value", "--window", "1d", "--threshold", "3.5", "--json")
	var res struct {
		Windows int `json:"windows"`
		Flagged int `json:"flagged"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Windows != days-1 {
		t.Fatalf("--json: %v %s (want %d windows: a lateness of 0 closes every day but the last)", err, stdout, days-1)
	}
	rows := catRows(t, filepath.Join(out, "trending"))
	hit := false
	for _, r := range rows {
		ws, _ := time.Parse(time.RFC3339, fmt.Sprint(r["window_start"]))
		d := int(ws.Sub(start).Hours() / 24)
		inside := r["item_id"] == "region-2" && d >= obStart && d < obStart+obDays+3
		hit = hit || inside
		if !inside {
			t.Errorf("false alarm: %v", r)
		}
	}
	if !hit {
		t.Errorf("the outbreak of region-2 (days %d to %d) was not flagged: %v", obStart, obStart+obDays, rows)
	}
	hist := mustLake(t, "history", filepath.Join(out, "trending"), "--format", "jsonl", "--limit", "1")
	for _, want := range []string{`\"count\":\"value\"`, `\"allowedLateness\":\"0s\"`, `valueNullCountedZero`} {
		if !strings.Contains(hist, want) {
			t.Errorf("history lacks %s: %s", want, hist)
		}
	}
	_, stderr, code := lake(t, "trending", "--source", events, "--output", out, "--count", "cases")
	if code != 2 || !strings.Contains(stderr, "--count") {
		t.Errorf("--count cases: exit %d, %s", code, stderr)
	}
}
