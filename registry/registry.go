package registry

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

// TableName is the registry table's name under the outputs prefix.
const TableName = "models"

// Jobs.
const (
	JobALS      = "als"
	JobTrending = "trending"
)

// Statuses of a run.
const (
	StatusLive      = "live"
	StatusCandidate = "candidate"
	StatusRejected  = "rejected"
	StatusRetired   = "retired"
)

// Actions: what wrote a row.
const (
	ActionRegister  = "register"  // the run registered (and was gated)
	ActionPromote   = "promote"   // made live by hand
	ActionRollback  = "rollback"  // retired by a rollback, or made live again by one
	ActionSupersede = "supersede" // retired because another run of its job went live
	ActionRedact    = "redact"    // rows were deleted for good from one of the run's outputs
)

// DefaultGateTolerance is how much lower (absolute) a new ALS run's held-out recall@10 may be
// than the live run's and still go live.
const DefaultGateTolerance = 0.02

// Metric keys the gate and the listing read.
const (
	MetricRecall = "recall@10"
	MetricNDCG   = "ndcg@10"
)

// appID is the txn application id of registry commits; its version is the last seq written.
const appID = "lake-models"

// URI is the registry table of the outputs under prefix.
func URI(prefix string) string { return jobs.ChildURI(prefix, TableName) }

// Run is one run's state: the row with its highest seq.
type Run struct {
	RunID         string           `json:"run_id"`
	Seq           int64            `json:"seq"`
	Job           string           `json:"job"`
	Action        string           `json:"action"`
	Status        string           `json:"status"`
	Reason        string           `json:"reason"`
	CreatedAt     time.Time        `json:"created_at"`
	UpdatedAt     time.Time        `json:"updated_at"`
	Source        string           `json:"source"`
	SourceVersion int64            `json:"source_version"`
	Parameters    map[string]any   `json:"parameters"`
	Outputs       map[string]int64 `json:"outputs"`
	Metrics       map[string]any   `json:"metrics"`
}

// Recall returns the run's recorded held-out recall@10, if it was evaluated.
func (r *Run) Recall() (float64, bool) {
	v, ok := r.Metrics[MetricRecall].(float64)
	return v, ok
}

// State is the registry read at one version.
type State struct {
	Version int64  // the registry table's version
	Runs    []*Run // the current state of every run, newest registration first
	byID    map[string]*Run
	rows    []*Run // every row, by seq ascending
}

// Run returns the run with id, or nil.
func (s *State) Run(id string) *Run { return s.byID[id] }

// Live returns the live run of job, or nil.
func (s *State) Live(job string) *Run {
	for _, r := range s.Runs {
		if r.Job == job && r.Status == StatusLive {
			return r
		}
	}
	return nil
}

// RollbackTarget returns the run a rollback of job makes live: of the job's runs that are retired
// (not by a rollback), the one that was live most recently; nil when there is none.
func (s *State) RollbackTarget(job string) *Run {
	live := s.Live(job)
	var best *Run
	var bestSeq int64 = -1
	for _, row := range s.rows { // ascending seq: the last live row of each run wins
		if row.Job != job || row.Status != StatusLive || (live != nil && row.RunID == live.RunID) {
			continue
		}
		cur := s.byID[row.RunID]
		if cur.Status != StatusRetired || cur.Action == ActionRollback || cur.Action == ActionRedact {
			continue
		}
		if row.Seq > bestSeq {
			best, bestSeq = cur, row.Seq
		}
	}
	return best
}

// liveFor returns the live run whose outputs name table, and whether any run names it.
func (s *State) liveFor(table string) (live *Run, named bool) {
	for _, r := range s.Runs {
		if _, ok := r.Outputs[table]; ok {
			named = true
			if r.Status == StatusLive {
				return r, true
			}
		}
	}
	return nil, named
}

func schema() *txlog.StructType {
	f := func(name string, t txlog.DataType, nullable bool) txlog.StructField {
		return txlog.StructField{Name: name, Type: t, Nullable: nullable}
	}
	return &txlog.StructType{Fields: []txlog.StructField{
		f("run_id", txlog.String, false),
		f("seq", txlog.Long, false),
		f("job", txlog.String, false),
		f("action", txlog.String, false),
		f("status", txlog.String, false),
		f("reason", txlog.String, true),
		f("created_at", txlog.Timestamp, false),
		f("updated_at", txlog.Timestamp, false),
		f("source", txlog.String, true),
		f("source_version", txlog.Long, true),
		f("parameters", txlog.String, true),
		f("outputs", txlog.String, true),
		f("metrics", txlog.String, true),
	}}
}

// Load reads the registry of the outputs under prefix; ErrNoRegistry when there is none.
func Load(ctx context.Context, prefix string) (*State, error) {
	t, err := table.Open(ctx, URI(prefix), nil)
	if err != nil {
		if errors.Is(err, txlog.ErrNotATable) {
			return nil, fmt.Errorf("%w at %s: run `lake als` or `lake trending` with --output %s first", ErrNoRegistry, URI(prefix), prefix)
		}
		return nil, err
	}
	defer t.Close()
	snap, err := t.Snapshot(ctx)
	if err != nil {
		if errors.Is(err, txlog.ErrNotATable) {
			return nil, fmt.Errorf("%w at %s", ErrNoRegistry, URI(prefix))
		}
		return nil, err
	}
	return read(ctx, t, snap)
}

func read(ctx context.Context, t *table.Table, snap *txlog.Snapshot) (*State, error) {
	cols := []string{"run_id", "seq", "job", "action", "status", "reason", "created_at", "updated_at",
		"source", "source_version", "parameters", "outputs", "metrics"}
	scan, err := reader.NewScan(ctx, t, snap, &reader.ScanOptions{Columns: cols})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", t.URI(), err)
	}
	st := &State{Version: snap.Version(), byID: map[string]*Run{}}
	for rec, err := range scan.Records(ctx) {
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", t.URI(), err)
		}
		rows, err := decode(rec)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", t.URI(), err)
		}
		st.rows = append(st.rows, rows...)
	}
	slices.SortFunc(st.rows, func(a, b *Run) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, r := range st.rows {
		st.byID[r.RunID] = r
	}
	for _, r := range st.byID {
		st.Runs = append(st.Runs, r)
	}
	slices.SortFunc(st.Runs, func(a, b *Run) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(b.RunID, a.RunID))
	})
	return st, nil
}

func decode(rec arrow.RecordBatch) ([]*Run, error) {
	str := func(i int) (*array.String, error) {
		c, ok := rec.Column(i).(*array.String)
		if !ok {
			return nil, fmt.Errorf("column %s is %s, want string", rec.Schema().Field(i).Name, rec.Column(i).DataType())
		}
		return c, nil
	}
	i64 := func(i int) (*array.Int64, error) {
		c, ok := rec.Column(i).(*array.Int64)
		if !ok {
			return nil, fmt.Errorf("column %s is %s, want bigint", rec.Schema().Field(i).Name, rec.Column(i).DataType())
		}
		return c, nil
	}
	ts := func(i int) (*array.Timestamp, error) {
		c, ok := rec.Column(i).(*array.Timestamp)
		if !ok {
			return nil, fmt.Errorf("column %s is %s, want timestamp", rec.Schema().Field(i).Name, rec.Column(i).DataType())
		}
		return c, nil
	}
	var errs []error
	get := func(c *array.String, err error) *array.String { errs = append(errs, err); return c }
	runID, job, action, status, reason := get(str(0)), get(str(2)), get(str(3)), get(str(4)), get(str(5))
	source, params, outputs, metrics := get(str(8)), get(str(10)), get(str(11)), get(str(12))
	seq, err1 := i64(1)
	srcVer, err2 := i64(9)
	created, err3 := ts(6)
	updated, err4 := ts(7)
	if err := errors.Join(append(errs, err1, err2, err3, err4)...); err != nil {
		return nil, err
	}
	s := func(c *array.String, i int) string {
		if c.IsNull(i) {
			return ""
		}
		return strings.Clone(c.Value(i)) // Value points into the batch, released after the loop
	}
	var out []*Run
	for i := range int(rec.NumRows()) {
		r := &Run{RunID: s(runID, i), Seq: seq.Value(i), Job: s(job, i), Action: s(action, i), Status: s(status, i),
			Reason: s(reason, i), Source: s(source, i), SourceVersion: -1,
			CreatedAt: time.UnixMicro(int64(created.Value(i))).UTC(), UpdatedAt: time.UnixMicro(int64(updated.Value(i))).UTC()}
		if !srcVer.IsNull(i) {
			r.SourceVersion = srcVer.Value(i)
		}
		if p := s(params, i); p != "" {
			if err := json.Unmarshal([]byte(p), &r.Parameters); err != nil {
				return nil, fmt.Errorf("run %s: parameters: %w", r.RunID, err)
			}
		}
		if p := s(outputs, i); p != "" {
			if err := json.Unmarshal([]byte(p), &r.Outputs); err != nil {
				return nil, fmt.Errorf("run %s: outputs: %w", r.RunID, err)
			}
		}
		if p := s(metrics, i); p != "" {
			if err := json.Unmarshal([]byte(p), &r.Metrics); err != nil {
				return nil, fmt.Errorf("run %s: metrics: %w", r.RunID, err)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// change computes the rows to append from the current state (nil when there is no registry).
// It returns the rows (Seq and UpdatedAt are filled in by update) and a result for the caller.
type change func(st *State) ([]*Run, error)

const maxAttempts = 8

// update appends the rows fn computes from the latest state, in one commit; on a conflict with a
// concurrent change it re-reads and calls fn again.
func update(ctx context.Context, prefix string, now func() time.Time, fn change) error {
	uri := URI(prefix)
	var lastErr error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		t, err := table.Open(ctx, uri, nil)
		if errors.Is(err, txlog.ErrNotATable) {
			t, err = table.Create(ctx, uri, schema(), &table.CreateOptions{Name: TableName,
				Description: "lake model registry: one row per state change of a job run; the current state is the row with the highest seq per run_id"})
			if err != nil { // another process created it meanwhile: open it
				if t2, err2 := table.Open(ctx, uri, nil); err2 == nil {
					t, err = t2, nil
				}
			}
		}
		if err != nil {
			return err
		}
		err = commitOnce(ctx, t, now, fn)
		t.Close()
		if err == nil {
			return nil
		}
		var ce *txlog.ConflictError
		if !errors.As(err, &ce) {
			return err
		}
		lastErr = err
	}
	return fmt.Errorf("%s: %d concurrent changes in a row; try again: %w", uri, maxAttempts, lastErr)
}

func commitOnce(ctx context.Context, t *table.Table, now func() time.Time, fn change) error {
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return err
	}
	st, err := read(ctx, t, snap)
	if err != nil {
		return err
	}
	rows, err := fn(st)
	if err != nil || len(rows) == 0 {
		return err
	}
	last, _ := snap.AppTransactionVersion(appID)
	at := now().UTC()
	for _, r := range rows {
		last++
		r.Seq, r.UpdatedAt = last, at
	}
	w, err := writer.New(ctx, t, &writer.Options{Mode: writer.Append, Snapshot: snap, AppID: appID, AppVersion: last,
		Operation: "WRITE", OperationParameters: map[string]any{"registry": summary(rows)}})
	if err != nil {
		return err
	}
	rec, err := encode(rows)
	if err != nil {
		w.Abort(context.WithoutCancel(ctx))
		return err
	}
	defer rec.Release()
	if err := w.Write(ctx, rec); err != nil {
		w.Abort(context.WithoutCancel(ctx))
		return err
	}
	res, err := w.Close(ctx)
	if err != nil {
		return err
	}
	if res.Skipped {
		return &txlog.ConflictError{Version: res.Version, Kind: txlog.ConflictConcurrentTxn}
	}
	return nil
}

// summary is the commit's operationParameters.registry: "RUN status, RUN status".
func summary(rows []*Run) string {
	parts := make([]string, len(rows))
	for i, r := range rows {
		parts[i] = r.RunID + " " + r.Status
	}
	return strings.Join(parts, ", ")
}

func encode(rows []*Run) (arrow.RecordBatch, error) {
	sc, err := deltaarrow.Schema(schema())
	if err != nil {
		return nil, err
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	str := func(i int, v string, nullable bool) {
		sb := b.Field(i).(*array.StringBuilder)
		if v == "" && nullable {
			sb.AppendNull()
		} else {
			sb.Append(v)
		}
	}
	js := func(v any) string {
		if v == nil {
			return ""
		}
		out, _ := json.Marshal(v)
		return string(out)
	}
	for _, r := range rows {
		str(0, r.RunID, false)
		b.Field(1).(*array.Int64Builder).Append(r.Seq)
		str(2, r.Job, false)
		str(3, r.Action, false)
		str(4, r.Status, false)
		str(5, r.Reason, true)
		b.Field(6).(*array.TimestampBuilder).Append(arrow.Timestamp(r.CreatedAt.UnixMicro()))
		b.Field(7).(*array.TimestampBuilder).Append(arrow.Timestamp(r.UpdatedAt.UnixMicro()))
		str(8, r.Source, true)
		if r.SourceVersion >= 0 {
			b.Field(9).(*array.Int64Builder).Append(r.SourceVersion)
		} else {
			b.Field(9).AppendNull()
		}
		var params, metrics any
		if r.Parameters != nil {
			params = r.Parameters
		}
		if r.Metrics != nil {
			metrics = r.Metrics
		}
		str(10, js(params), true)
		str(11, js(r.Outputs), true)
		str(12, js(metrics), true)
	}
	return b.NewRecordBatch(), nil
}

// with returns a copy of r in a new state (a new row).
func (r *Run) with(action, status, reason string) *Run {
	c := *r
	c.Action, c.Status, c.Reason = action, status, reason
	return &c
}

// NewRunID returns a fresh run id: the job, the UTC time and 4 random bytes, e.g.
// "als-20240102T030405Z-9f86d081".
func NewRunID(job string, at time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return job + "-" + at.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
