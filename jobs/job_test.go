package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer/source"
)

// WriteDatasetTable creates an interaction table at uri holding the data set's events (one
// append commit per call) and returns its version.
func writeDatasetTable(t testing.TB, uri string, d *Dataset) int64 {
	t.Helper()
	v, err := WriteDataset(context.Background(), uri, d)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestChildURI(t *testing.T) {
	for in, want := range map[string]string{
		"s3://b/p?region=x":   "s3://b/p/item_factors?region=x",
		"s3://b/p/?region=x":  "s3://b/p/item_factors?region=x",
		"/data/out":           "/data/out/item_factors",
		"./out/":              "./out/item_factors",
		"mem://t":             "mem://t/item_factors",
		"file:///d/o?a=1&b=2": "file:///d/o/item_factors?a=1&b=2",
	} {
		if got := ChildURI(in, "item_factors"); got != want {
			t.Errorf("ChildURI(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90m": 90 * time.Minute, "36h": 36 * time.Hour, "7d": 7 * 24 * time.Hour, "2w": 14 * 24 * time.Hour,
		"1w2d12h": (9*24 + 12) * time.Hour, "1.5d": 36 * time.Hour, "1h30m": 90 * time.Minute,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "7", "7x", "abc", "1d-"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q): no error", bad)
		}
	}
}

func TestParseWeights(t *testing.T) {
	w, err := ParseWeights("view=1, add_to_cart=3,purchase=5")
	if err != nil || w["add_to_cart"] != 3 || len(w) != 3 {
		t.Fatalf("%v %v", w, err)
	}
	for _, bad := range []string{"", "view", "view=x", "=3", "view=-1"} {
		if _, err := ParseWeights(bad); !errors.Is(err, ErrBadParameter) {
			t.Errorf("ParseWeights(%q): %v", bad, err)
		}
	}
}

func smallJob(src, out string) *ALSJobOptions {
	return &ALSJobOptions{Source: src, SourceVersion: -1, Output: out, Top: 5,
		ALS: ALSOptions{Factors: 8, Iterations: 3}}
}

func TestRunALSIdempotentAndForced(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, out := dir+"/events", dir+"/out"
	d, err := Generate(&GenOptions{Users: 200, Items: 100, Interactions: 4000, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	v := writeDatasetTable(t, src, d)
	res, err := RunALS(ctx, smallJob(src, out))
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped || len(res.Outputs) != 3 || res.SourceVersion != v || res.SourceRows != int64(len(d.Events)) || res.Eval == nil {
		t.Fatalf("first run: %+v", res)
	}
	// Same parameters, same source version: nothing is committed.
	res2, err := RunALS(ctx, smallJob(src, out))
	if err != nil {
		t.Fatal(err)
	}
	if !res2.Skipped {
		t.Fatalf("second run was not skipped: %+v", res2)
	}
	for _, name := range []string{OutItemFactors, OutSimilarItems, OutUserRecommendations} {
		tb, err := table.Open(ctx, ChildURI(out, name), nil)
		if err != nil {
			t.Fatal(err)
		}
		h, err := tb.History(ctx, 0)
		tb.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 2 { // CREATE TABLE + one WRITE
			t.Fatalf("%s: %d versions after two runs", name, len(h))
		}
		var top txlog.CommitEntry
		for _, e := range h {
			if e.Version == 1 {
				top = e
			}
		}
		p := top.CommitInfo.OperationParameters
		if p["sourceVersion"] != strconv.FormatInt(v, 10) || p["job"] != "als" || p["engineVersion"] != table.EngineVersion || p["metrics"] == nil {
			t.Fatalf("%s lineage: %v", name, p)
		}
	}
	// Forced: a new version, still one txn for the appId at the same source version.
	f := smallJob(src, out)
	f.Force, f.NoEval = true, true
	res3, err := RunALS(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if res3.Skipped || res3.Outputs[0].Version != 2 {
		t.Fatalf("forced run: %+v", res3)
	}
	// A different parameter is a different appId: it runs.
	o := smallJob(src, out)
	o.Top = 6
	res4, err := RunALS(ctx, o)
	if err != nil || res4.Skipped {
		t.Fatalf("changed parameters: %+v %v", res4, err)
	}
	// A warm start from the earlier output, one iteration.
	w := smallJob(src, dir+"/out2")
	w.WarmStart, w.ALS.Iterations, w.NoEval = out, 1, true
	if res5, err := RunALS(ctx, w); err != nil || res5.Skipped {
		t.Fatalf("warm start: %+v %v", res5, err)
	}
	w.ALS.Factors = 9
	if _, err := RunALS(ctx, w); !errors.Is(err, ErrBadParameter) {
		t.Fatalf("warm start with other factors: %v", err)
	}
}

func TestRunALSBadInput(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	empty := dir + "/empty"
	tb, err := table.Create(ctx, empty, table.InteractionSchema(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tb.Close()
	if _, err := RunALS(ctx, smallJob(empty, dir+"/o1")); !errors.Is(err, ErrEmptySource) {
		t.Errorf("empty source: %v", err)
	}
	other := dir + "/other"
	tb, err = table.Create(ctx, other, &txlog.StructType{Fields: []txlog.StructField{{Name: "user_id", Type: txlog.String}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tb.Close()
	var mc *MissingColumnsError
	if _, err := RunALS(ctx, smallJob(other, dir+"/o2")); !errors.As(err, &mc) || len(mc.Missing) != 3 {
		t.Errorf("missing columns: %v", err)
	}
	o := smallJob(empty, dir+"/o3")
	o.SourceVersion = 7
	if _, err := RunALS(ctx, o); err == nil {
		t.Error("a missing version: no error")
	}
	if _, err := RunALS(ctx, smallJob(dir+"/nothing", dir+"/o4")); !errors.Is(err, txlog.ErrNotATable) {
		t.Errorf("no table: %v", err)
	}
}

// TestRunALSReadsItsPinnedVersion: while 4 writers append, a run reads exactly the version it
// pinned (the row count in its lineage is that version's).
func TestRunALSReadsItsPinnedVersion(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, out := dir+"/events", dir+"/out"
	d, err := Generate(&GenOptions{Users: 200, Items: 100, Interactions: 3000, Seed: 6})
	if err != nil {
		t.Fatal(err)
	}
	writeDatasetTable(t, src, d)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				select {
				case <-stop:
					return
				default:
				}
				more, _ := Generate(&GenOptions{Users: 50, Items: 100, Interactions: 200, Seed: uint64(100 + 10*w + i)})
				writeDatasetTable(t, src, more)
			}
		}()
	}
	res, err := RunALS(ctx, smallJob(src, out))
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	tb, err := table.Open(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	snap, err := tb.SnapshotAt(ctx, res.SourceVersion)
	if err != nil {
		t.Fatal(err)
	}
	scan, err := reader.NewScan(ctx, tb, snap, &reader.ScanOptions{Columns: []string{"event_id"}})
	if err != nil {
		t.Fatal(err)
	}
	var rows int64
	for rec, err := range scan.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		rows += rec.NumRows()
	}
	if rows != res.SourceRows {
		t.Fatalf("the run read %d rows; version %d has %d", res.SourceRows, res.SourceVersion, rows)
	}
	latest, _ := tb.Snapshot(ctx)
	t.Logf("pinned version %d (%d rows); the table reached version %d meanwhile", res.SourceVersion, rows, latest.Version())
}

func TestGenerateDeterministicAndShaped(t *testing.T) {
	g := &GenOptions{Users: 500, Items: 300, Days: 14, Interactions: 20000, Seed: 9}
	a, err := Generate(g)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(g)
	if len(a.Events) != g.Interactions || len(b.Events) != len(a.Events) {
		t.Fatalf("%d events, want %d", len(a.Events), g.Interactions)
	}
	for i := range a.Events {
		if a.Events[i] != b.Events[i] && !(a.Events[i].Time == b.Events[i].Time && a.Events[i].User == b.Events[i].User) {
			t.Fatalf("event %d differs between two runs with one seed", i)
		}
	}
	var types [3]int
	var sources [3]int
	for _, e := range a.Events {
		types[e.Type]++
		sources[e.Source]++
	}
	if !(types[0] > types[1] && types[1] > types[2] && types[2] > 0) {
		t.Errorf("funnel: %v", types)
	}
	if f := float64(sources[SourceRetail]) / float64(len(a.Events)); f < 0.45 || f > 0.55 {
		t.Errorf("retail share %.2f", f)
	}
	if len(a.Surges) < 3 || len(a.Decoys) < 2 {
		t.Errorf("surges %d decoys %d", len(a.Surges), len(a.Decoys))
	}
	for _, s := range a.Surges {
		if s.Multiplier < 1.5 || s.Multiplier > 5 || !s.End.After(s.Start) {
			t.Errorf("surge %+v", s)
		}
	}
}

func TestGenerateFiles(t *testing.T) {
	d, err := Generate(&GenOptions{Users: 50, Items: 30, Days: 3, Interactions: 600, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := d.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	var app []map[string]any
	b, _ := os.ReadFile(dir + "/app.json")
	if err := json.Unmarshal(b, &app); err != nil {
		t.Fatalf("app.json: %v", err)
	}
	for _, name := range []string{"retail.csv", "clicks.ndjson", "mappings/retail.json", "mappings/app.json", "mappings/clicks.json",
		"truth/surges.jsonl", "truth/decoys.jsonl", "truth/items.jsonl"} {
		if st, err := os.Stat(dir + "/" + name); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	m, err := source.LoadMapping(dir + "/mappings/retail.json")
	if err != nil || m.Fields["user_id"] != "uid" || m.Types["buy"] != "purchase" || m.TimestampFormat != "epoch_ms" {
		t.Errorf("retail mapping: %+v %v", m, err)
	}
	if r, _ := os.ReadFile(dir + "/retail.csv"); string(r[:22]) != "uid,product,action,ts\n" {
		t.Errorf("retail header: %q", r[:22])
	}
}

// TestRecordsOwnership: the generator's batches are all released.
func TestRecordsOwnership(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d, _ := Generate(&GenOptions{Users: 20, Items: 10, Interactions: 300})
	n := 0
	for rec, err := range d.Records(mem, 100) {
		if err != nil {
			t.Fatal(err)
		}
		n += int(rec.NumRows())
		if n >= 200 {
			break
		}
	}
	if n != 200 {
		t.Fatal(fmt.Sprint(n))
	}
}

// BenchmarkWriteGeneratedTable is a tool more than a benchmark: it builds an interaction table
// for manual runs and benchmarks of `lake als`: JOBS_GEN_TABLE=DIR, JOBS_GEN_INTERACTIONS=N
// (default 1M; 1 user per 100 and 1 item per 200 interactions).
//
//	JOBS_GEN_TABLE=/tmp/ev1m go test -run '^$' -bench WriteGeneratedTable -benchtime 1x ./jobs
func BenchmarkWriteGeneratedTable(b *testing.B) {
	dir := os.Getenv("JOBS_GEN_TABLE")
	if dir == "" {
		b.Skip("set JOBS_GEN_TABLE=DIR to build a generated interaction table")
	}
	n := envInt("JOBS_GEN_INTERACTIONS", 1000000)
	for b.Loop() {
		d, err := Generate(&GenOptions{Users: max(100, n/100), Items: max(50, n/200), Interactions: n, Seed: uint64(envInt("JOBS_GEN_SEED", 1))})
		if err != nil {
			b.Fatal(err)
		}
		v := writeDatasetTable(b, dir, d)
		b.Logf("%s: version %d, %d interactions", dir, v, len(d.Events))
	}
}

// cancelOnWrite cancels a context at the first progress line that contains match.
type cancelOnWrite struct {
	match  string
	cancel context.CancelFunc
}

func (c *cancelOnWrite) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.match) {
		c.cancel()
	}
	return len(p), nil
}

// TestRunALSCancelled: Ctrl-C during training stops the run with no output table.
func TestRunALSCancelled(t *testing.T) {
	dir := t.TempDir()
	src, out := dir+"/events", dir+"/out"
	d, _ := Generate(&GenOptions{Users: 200, Items: 100, Interactions: 3000, Seed: 7})
	writeDatasetTable(t, src, d)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := smallJob(src, out)
	o.Progress = &cancelOnWrite{match: "iteration 1/", cancel: cancel}
	if _, err := RunALS(ctx, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	for _, name := range []string{OutItemFactors, OutSimilarItems, OutUserRecommendations} {
		if _, err := os.Stat(ChildURI(out, name)); !os.IsNotExist(err) {
			t.Errorf("%s exists after a cancelled run: %v", name, err)
		}
	}
}
