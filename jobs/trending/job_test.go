package trending

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

var memSeq atomic.Int64

func memURI(name string) string {
	return fmt.Sprintf("mem://trending-%d-%s", memSeq.Add(1), name)
}

// writeDataset appends events [from, to) of a generated data set to the table at uri (created
// when missing) in one commit.
func writeDataset(t testing.TB, uri string, d *jobs.Dataset, from, to int) int64 {
	t.Helper()
	part := *d
	part.Events = d.Events[from:to]
	v, err := jobs.WriteDataset(context.Background(), uri, &part)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func smallDataset(t testing.TB, seed uint64) *jobs.Dataset {
	t.Helper()
	n := 40000
	if raceEnabled {
		n = 15000 // seconds under the race detector
	}
	d, err := jobs.Generate(&jobs.GenOptions{Users: 2000, Items: 600, Days: 5, Interactions: n, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// outputRows reads an output table as lines "window item count [expected score] rank", sorted
// as stored per window.
func outputRows(t testing.TB, uri string) []string {
	t.Helper()
	ctx := context.Background()
	tb, err := table.Open(ctx, uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	snap, err := tb.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	scan, err := reader.NewScan(ctx, tb, snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rec, err := range scan.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		for i := range int(rec.NumRows()) {
			var sb strings.Builder
			for c := range int(rec.NumCols()) {
				col := rec.Column(c)
				switch a := col.(type) {
				case *array.Timestamp:
					sb.WriteString(time.UnixMicro(int64(a.Value(i))).UTC().Format(time.RFC3339))
				case *array.Float64:
					v := a.Value(i)
					if math.IsNaN(v) || math.IsInf(v, 0) {
						t.Fatalf("%s: column %s holds %v", uri, rec.ColumnName(c), v)
					}
					fmt.Fprintf(&sb, "%.9g", v)
				default:
					sb.WriteString(col.ValueStr(i))
				}
				sb.WriteByte(' ')
			}
			out = append(out, sb.String())
		}
	}
	return out
}

func TestRunBatchIdempotent(t *testing.T) {
	ctx := context.Background()
	d := smallDataset(t, 7)
	src, prefix := memURI("events"), memURI("out")
	half := len(d.Events) / 2
	writeDataset(t, src, d, 0, half)
	v2 := writeDataset(t, src, d, half, len(d.Events))

	opts := &Options{Source: src, SourceVersion: -1, Output: prefix}
	res, err := Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.SourceVersion != v2 || res.Events != int64(len(d.Events)) || res.Windows < 100 || res.UpToDate {
		t.Fatalf("result %+v", res)
	}
	for _, o := range res.Outputs {
		if o.Skipped || o.Version != 1 || o.Windows != res.Windows {
			t.Fatalf("output %+v", o)
		}
	}
	pop := outputRows(t, jobs.ChildURI(prefix, OutPopular))
	tr := outputRows(t, jobs.ChildURI(prefix, OutTrending))
	if len(pop) == 0 {
		t.Fatal("no popular rows")
	}
	t.Logf("%d windows, %d popular rows, %d trending rows", res.Windows, len(pop), len(tr))

	// A rerun commits nothing.
	again, err := Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !again.UpToDate {
		t.Fatalf("rerun: %+v", again)
	}
	for _, o := range again.Outputs {
		if !o.Skipped || o.Version != 1 {
			t.Fatalf("rerun output %+v", o)
		}
	}

	// Lineage: the commit says which source version built it, and the txn the last window.
	tb, err := table.Open(ctx, jobs.ChildURI(prefix, OutTrending), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	hist, err := tb.History(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	op := hist[0].CommitInfo.OperationParameters
	if op["sourceVersion"] != fmt.Sprint(v2) || op["job"] != "trending" || !strings.Contains(fmt.Sprint(op["parameters"]), `"window":"1h0m0s"`) {
		t.Fatalf("lineage %v", op)
	}

	// An earlier version of the source, then the later one: the second run appends only the
	// windows the first did not close.
	prefix2 := memURI("out2")
	first, err := Run(ctx, &Options{Source: src, SourceVersion: v2 - 1, Output: prefix2})
	if err != nil {
		t.Fatal(err)
	}
	second, err := Run(ctx, &Options{Source: src, SourceVersion: -1, Output: prefix2})
	if err != nil {
		t.Fatal(err)
	}
	if first.Windows >= res.Windows || second.Outputs[0].Windows != res.Windows-first.Windows || second.Outputs[0].Version != 2 {
		t.Fatalf("incremental: first %+v second %+v", first, second.Outputs)
	}
	pop2 := outputRows(t, jobs.ChildURI(prefix2, OutPopular))
	if len(pop2) != len(pop) {
		t.Fatalf("incremental popular rows %d, one run %d", len(pop2), len(pop))
	}

	// --force rebuilds in one commit that replaces the table.
	forced, err := Run(ctx, &Options{Source: src, SourceVersion: -1, Output: prefix, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if forced.Outputs[0].Skipped || forced.Outputs[0].Version != 2 {
		t.Fatalf("forced %+v", forced.Outputs)
	}
	if got := outputRows(t, jobs.ChildURI(prefix, OutPopular)); len(got) != len(pop) {
		t.Fatalf("after --force: %d popular rows, want %d", len(got), len(pop))
	}
}

func TestRunBadInput(t *testing.T) {
	ctx := context.Background()
	empty := memURI("empty")
	tb, err := table.Create(ctx, empty, table.InteractionSchema(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tb.Close()
	if _, err := Run(ctx, &Options{Source: empty, SourceVersion: -1, Output: memURI("o")}); !errors.Is(err, ErrEmptySource) {
		t.Fatalf("empty source: %v", err)
	}
	if _, err := Run(ctx, &Options{Source: empty, SourceVersion: -1, Output: memURI("o"), Params: Params{Window: time.Millisecond}}); !errors.Is(err, ErrBadParameter) {
		t.Fatalf("short window: %v", err)
	}
	other := memURI("other")
	tb, err = table.Create(ctx, other, &txlog.StructType{Fields: []txlog.StructField{{Name: "x", Type: txlog.Long}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tb.Close()
	var mc *jobs.MissingColumnsError
	if _, err := Run(ctx, &Options{Source: other, SourceVersion: -1, Output: memURI("o")}); !errors.As(err, &mc) {
		t.Fatalf("no interaction columns: %v", err)
	}
	if _, err := Run(ctx, &Options{Source: empty, SourceVersion: 7, Output: memURI("o")}); err == nil || !strings.Contains(err.Error(), "lake history") {
		t.Fatalf("missing version: %v", err)
	}
}

// One day of data with a weekly season, a window that does not tile a day, and a single
// window: documented fallbacks, no NaN.
func TestRunFallbacks(t *testing.T) {
	ctx := context.Background()
	d, err := jobs.Generate(&jobs.GenOptions{Users: 300, Items: 100, Days: 1, Interactions: 5000, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	src := memURI("oneday")
	writeDataset(t, src, d, 0, len(d.Events))
	for _, w := range []time.Duration{time.Hour, 7 * time.Minute, 5 * time.Hour, 24 * time.Hour, time.Second} {
		out := memURI("o")
		res, err := Run(ctx, &Options{Source: src, SourceVersion: -1, Output: out, Params: Params{Window: w}})
		if err != nil {
			t.Fatalf("window %s: %v", w, err)
		}
		t.Logf("window %s: %d windows, %d flagged", w, res.Windows, res.Flagged)
		if res.Windows > 0 {
			outputRows(t, jobs.ChildURI(out, OutTrending)) // fails on NaN
		}
	}
}
