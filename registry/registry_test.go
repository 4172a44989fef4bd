package registry

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/uuid"

	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

func als(recall float64, evaluated bool, version int64) *Registration {
	r := &Registration{Job: JobALS, Source: "events", SourceVersion: 3, Evaluated: evaluated,
		Parameters: map[string]any{"factors": 8.0}, Outputs: map[string]int64{"similar_items": version, "item_factors": version}, Metrics: map[string]any{}}
	if evaluated {
		r.Metrics[MetricRecall] = recall
	}
	return r
}

func mustRegister(t *testing.T, prefix string, reg *Registration) *Run {
	t.Helper()
	r, err := Register(context.Background(), prefix, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func status(t *testing.T, prefix string) map[string]string {
	t.Helper()
	st, err := Load(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range st.Runs {
		out[r.RunID] = r.Status
	}
	return out
}

func TestGate(t *testing.T) {
	ctx := context.Background()
	prefix := t.TempDir()
	if _, err := Load(ctx, prefix); !errors.Is(err, ErrNoRegistry) {
		t.Fatalf("Load before any run: %v, want ErrNoRegistry", err)
	}
	c := mustRegister(t, prefix, als(0, false, 0))
	if c.Status != StatusCandidate {
		t.Fatalf("a --no-eval run: %s, want candidate", c.Status)
	}
	a := mustRegister(t, prefix, als(0.30, true, 1))
	if a.Status != StatusLive {
		t.Fatalf("the first evaluated run: %s (%s), want live", a.Status, a.Reason)
	}
	b := mustRegister(t, prefix, als(0.29, true, 2)) // within 0.02
	if b.Status != StatusLive {
		t.Fatalf("a run 0.01 worse: %s (%s), want live", b.Status, b.Reason)
	}
	bad := mustRegister(t, prefix, als(0.20, true, 3))
	if bad.Status != StatusRejected || bad.Reason == "" {
		t.Fatalf("a run 0.09 worse: %s (%q), want rejected with a reason", bad.Status, bad.Reason)
	}
	want := map[string]string{c.RunID: StatusCandidate, a.RunID: StatusRetired, b.RunID: StatusLive, bad.RunID: StatusRejected}
	if got := status(t, prefix); !mapsEqual(got, want) {
		t.Fatalf("states %v, want %v", got, want)
	}
	// A tighter tolerance rejects what the default lets through.
	r, err := Register(ctx, prefix, als(0.285, true, 4), &Options{GateTolerance: Tolerance(0.001)})
	if err != nil || r.Status != StatusRejected {
		t.Fatalf("tolerance 0.001: %v %v", r, err)
	}
	// Trending goes live directly and leaves ALS alone.
	tr := mustRegister(t, prefix, &Registration{Job: JobTrending, Outputs: map[string]int64{"trending": 0}})
	if tr.Status != StatusLive {
		t.Fatalf("trending: %s", tr.Status)
	}
	st, _ := Load(ctx, prefix)
	if st.Live(JobALS).RunID != b.RunID || st.Live(JobTrending).RunID != tr.RunID {
		t.Fatal("live runs wrong after a trending run")
	}
}

func TestPromoteRollback(t *testing.T) {
	ctx := context.Background()
	prefix := t.TempDir()
	a := mustRegister(t, prefix, als(0.30, true, 1))
	b := mustRegister(t, prefix, als(0.31, true, 2))
	c := mustRegister(t, prefix, als(0, false, 3))
	if _, err := Promote(ctx, prefix, "nope", nil); !errors.Is(err, ErrUnknownRun) {
		t.Fatalf("promote unknown: %v", err)
	}
	if _, err := Promote(ctx, prefix, b.RunID, nil); !errors.Is(err, ErrBadState) {
		t.Fatalf("promote live: %v", err)
	}
	if _, err := Promote(ctx, prefix, c.RunID, nil); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{a.RunID: StatusRetired, b.RunID: StatusRetired, c.RunID: StatusLive}
	if got := status(t, prefix); !mapsEqual(got, want) {
		t.Fatalf("after promote %v, want %v", got, want)
	}
	// Rollbacks stack: c -> b -> a, then nothing.
	live, retired, err := Rollback(ctx, prefix, JobALS, nil)
	if err != nil || live.RunID != b.RunID || retired.RunID != c.RunID {
		t.Fatalf("rollback 1: %v %v %v", live, retired, err)
	}
	if got, _ := PinnedVersions(ctx, prefix, "similar_items"); !slices.Equal(sorted(got), []int64{1, 2}) {
		t.Fatalf("pinned after rollback 1: %v, want the live 2 and the target 1", got)
	}
	live, _, err = Rollback(ctx, prefix, JobALS, nil)
	if err != nil || live.RunID != a.RunID {
		t.Fatalf("rollback 2: %v %v", live, err)
	}
	if _, _, err := Rollback(ctx, prefix, JobALS, nil); !errors.Is(err, ErrNoRollbackTarget) {
		t.Fatalf("rollback 3: %v, want ErrNoRollbackTarget", err)
	}
	// A new good run after the rollbacks: the gate compares with a (0.30).
	d := mustRegister(t, prefix, als(0.29, true, 4))
	if d.Status != StatusLive {
		t.Fatalf("after rollbacks: %s %s", d.Status, d.Reason)
	}
	if got, _ := PinnedVersions(ctx, prefix, "similar_items"); !slices.Equal(sorted(got), []int64{1, 4}) {
		t.Fatalf("pinned: %v, want 4 (live) and 1 (target)", got)
	}
	if got, err := PinnedVersions(ctx, t.TempDir(), "similar_items"); got != nil || err != nil {
		t.Fatalf("no registry: %v %v", got, err)
	}
}

// TestConcurrentRegister: two runs registering at once never both go live over each other:
// the loser of the commit race re-reads and is gated against the winner.
func TestConcurrentRegister(t *testing.T) {
	ctx := context.Background()
	prefix := t.TempDir()
	mustRegister(t, prefix, als(0.30, true, 0))
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Register(ctx, prefix, als(0.30+float64(i)*0.001, true, int64(i+1)), nil)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	st, err := Load(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	live := 0
	for _, r := range st.Runs {
		if r.Status == StatusLive {
			live++
		}
	}
	if live != 1 || len(st.Runs) != 5 {
		t.Fatalf("%d live of %d runs, want 1 of 5", live, len(st.Runs))
	}
	seqs := map[int64]bool{}
	for _, r := range st.rows {
		if seqs[r.Seq] {
			t.Fatalf("seq %d twice", r.Seq)
		}
		seqs[r.Seq] = true
	}
}

// outputTable makes a table with n versions (0..n-1), one row each.
func outputTable(t *testing.T, uri string, n int) {
	t.Helper()
	ctx := context.Background()
	st := &txlog.StructType{Fields: []txlog.StructField{{Name: "v", Type: txlog.Long, Nullable: true}}}
	tb, err := table.Create(ctx, uri, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	sc, _ := deltaarrow.Schema(st)
	for i := 1; i < n; i++ {
		w, err := writer.New(ctx, tb, &writer.Options{Mode: writer.Overwrite})
		if err != nil {
			t.Fatal(err)
		}
		b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		rec := b.NewRecordBatch()
		if err := w.Write(ctx, rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		b.Release()
		if _, err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPicker(t *testing.T) {
	ctx := context.Background()
	prefix := t.TempDir()
	outputTable(t, filepath.Join(prefix, "similar_items"), 4)
	outputTable(t, filepath.Join(prefix, "popular"), 3)
	p := NewPicker(prefix)
	pick := func(name string) (int64, error) {
		tb, err := table.Open(ctx, filepath.Join(prefix, name), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tb.Close()
		s, err := p.Pick(ctx, name, tb)
		if err != nil {
			return -1, err
		}
		return s.Version(), nil
	}
	if v, err := pick("similar_items"); v != 3 || err != nil {
		t.Fatalf("no registry: %d %v, want the latest 3", v, err)
	}
	mustRegister(t, prefix, als(0, false, 2))
	if _, err := pick("similar_items"); !errors.Is(err, ErrNoLiveRun) {
		t.Fatalf("only a candidate: %v, want ErrNoLiveRun", err)
	}
	if v, err := pick("popular"); v != 2 || err != nil {
		t.Fatalf("a table no run names: %d %v, want the latest", v, err)
	}
	mustRegister(t, prefix, als(0.3, true, 1))
	if v, err := pick("similar_items"); v != 1 || err != nil {
		t.Fatalf("live at 1: %d %v", v, err)
	}
	mustRegister(t, prefix, als(0.1, true, 3)) // rejected
	if v, _ := pick("similar_items"); v != 1 {
		t.Fatalf("after a rejected run: %d, want 1", v)
	}
	mustRegister(t, prefix, als(0.35, true, 2))
	if v, _ := pick("similar_items"); v != 2 {
		t.Fatalf("after a better run: %d, want 2", v)
	}
	if _, _, err := Rollback(ctx, prefix, JobALS, nil); err != nil {
		t.Fatal(err)
	}
	if v, _ := pick("similar_items"); v != 1 {
		t.Fatalf("after rollback: %d, want 1", v)
	}
}

// TestRowsReadable: the registry is a plain Delta table: one row per change, readable by a scan.
func TestRowsReadable(t *testing.T) {
	ctx := context.Background()
	prefix := t.TempDir()
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	opts := &Options{Now: func() time.Time { return now }}
	r, err := Register(ctx, prefix, als(0.3, true, 1), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Register(ctx, prefix, als(0.4, true, 2), opts); err != nil {
		t.Fatal(err)
	}
	st, err := Load(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.rows) != 3 || len(st.Runs) != 2 || st.Version != 2 {
		t.Fatalf("%d rows, %d runs, version %d; want 3 rows (2 registrations, 1 retirement), 2 runs, version 2", len(st.rows), len(st.Runs), st.Version)
	}
	got := st.Run(r.RunID)
	if got.Status != StatusRetired || got.Action != ActionSupersede || !got.CreatedAt.Equal(now) || got.Outputs["similar_items"] != 1 ||
		got.Parameters["factors"] != 8.0 || got.SourceVersion != 3 || got.Source != "events" {
		t.Fatalf("run read back: %+v", got)
	}
	if fmt.Sprint(got.Metrics[MetricRecall]) != "0.3" {
		t.Fatalf("metrics: %v", got.Metrics)
	}
}

func sorted(v []int64) []int64 { v = slices.Clone(v); slices.Sort(v); return v }

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestSplitOutputURI(t *testing.T) {
	for _, c := range []struct{ uri, prefix, name string }{
		{"/data/out/similar_items", "/data/out", "similar_items"},
		{"/data/out/popular/", "/data/out", "popular"},
		{"s3://b/out/trending?region=x", "s3://b/out?region=x", "trending"},
		{"s3://b/item_factors", "s3://b", "item_factors"},
		{"mem://similar_items", "", ""},
		{"/data/out/events", "", ""},
		{"/data/out/models", "", ""},
	} {
		prefix, name, ok := SplitOutputURI(c.uri)
		if prefix != c.prefix || name != c.name || ok != (c.name != "") {
			t.Errorf("SplitOutputURI(%q) = %q, %q, %v; want %q, %q", c.uri, prefix, name, ok, c.prefix, c.name)
		}
		if ok && URI(prefix) == "" {
			t.Errorf("no registry URI for %q", c.uri)
		}
	}
}

// Rows deleted for good from an output move the live run to the new version and retire the runs
// that name older versions, so that nothing pins them.
func TestRedact(t *testing.T) {
	ctx := context.Background()
	prefix := "mem://redact-" + uuid.NewString()
	if rows, err := Redact(ctx, prefix, "user_recommendations", 3, nil); err != nil || rows != nil {
		t.Fatalf("without a registry: %v %v", rows, err)
	}
	reg := func(recall float64, v int64) *Run {
		r, err := Register(ctx, prefix, &Registration{Job: JobALS, SourceVersion: 1, Evaluated: true,
			Outputs: map[string]int64{"user_recommendations": v, "similar_items": v},
			Metrics: map[string]any{MetricRecall: recall}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	old := reg(0.30, 1)
	live := reg(0.31, 2)
	if live.Status != StatusLive {
		t.Fatalf("setup: %+v", live)
	}
	if pinned, _ := PinnedVersions(ctx, prefix, "user_recommendations"); len(pinned) != 2 {
		t.Fatalf("pinned before: %v", pinned)
	}
	rows, err := Redact(ctx, prefix, "user_recommendations", 3, nil)
	if err != nil || len(rows) != 2 {
		t.Fatalf("%v %+v", err, rows)
	}
	st, err := Load(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if l := st.Live(JobALS); l == nil || l.RunID != live.RunID || l.Outputs["user_recommendations"] != 3 || l.Outputs["similar_items"] != 2 {
		t.Fatalf("live after: %+v", l)
	}
	if o := st.Run(old.RunID); o.Status != StatusRetired || o.Outputs["user_recommendations"] != 0 || st.RollbackTarget(JobALS) != nil {
		t.Fatalf("old after: %+v, rollback target %+v", o, st.RollbackTarget(JobALS))
	}
	if pinned, _ := PinnedVersions(ctx, prefix, "user_recommendations"); len(pinned) != 1 || pinned[0] != 3 {
		t.Fatalf("pinned after: %v", pinned)
	}
	if pinned, _ := PinnedVersions(ctx, prefix, "similar_items"); len(pinned) != 1 || pinned[0] != 2 {
		t.Fatalf("similar_items pinned after: %v (the old run's version is no longer a rollback target)", pinned)
	}
}
