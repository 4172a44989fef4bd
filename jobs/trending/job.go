package trending

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
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

// Output table names under the output prefix.
const (
	OutTrending = "trending"
	OutPopular  = "popular"
)

// TrendingSchema is the schema of PREFIX/trending.
func TrendingSchema() *txlog.StructType {
	return &txlog.StructType{Fields: []txlog.StructField{
		{Name: "window_start", Type: txlog.Timestamp},
		{Name: "item_id", Type: txlog.String},
		{Name: "count", Type: txlog.Long},
		{Name: "expected", Type: txlog.Double},
		{Name: "score", Type: txlog.Double},
		{Name: "rank", Type: txlog.Integer},
	}}
}

// PopularSchema is the schema of PREFIX/popular.
func PopularSchema() *txlog.StructType {
	return &txlog.StructType{Fields: []txlog.StructField{
		{Name: "window_start", Type: txlog.Timestamp},
		{Name: "item_id", Type: txlog.String},
		{Name: "count", Type: txlog.Long},
		{Name: "rank", Type: txlog.Integer},
	}}
}

// Options are the parameters of `lake trending`. Source and Output are required.
type Options struct {
	Source        string
	SourceVersion int64 // -1: the latest at start
	Output        string
	Params        Params
	// Force rebuilds the outputs: every closed window is written again, replacing the tables
	// in one commit each (readers see the old or the new result, never a mix).
	Force bool
	// Progress receives one line per step (stderr in the CLI); nil: none.
	Progress io.Writer
}

// OutputResult is what happened to one output table.
type OutputResult struct {
	Name    string `json:"name"`
	URI     string `json:"uri"`
	Version int64  `json:"version"` // the output table's version after the run (-1: not created)
	Rows    int64  `json:"rows"`
	Windows int    `json:"windows"`         // windows written
	From    int64  `json:"from_window"`     // the first window written (its index)
	Through int64  `json:"through_window"`  // the last window written: the txn version
	Skipped bool   `json:"skipped"`         // every closed window was already there
	Before  int64  `json:"recorded_window"` // the txn version found before the run (-1: none)
}

// Result is what a run did.
type Result struct {
	SourceVersion int64          `json:"source_version"`
	SourceRows    int64          `json:"source_rows"`
	Events        int64          `json:"events"`  // counted (after the type filter)
	Skipped       int64          `json:"skipped"` // rows with a null user, item, type or time
	Late          int64          `json:"late"`    // events whose window had closed when they were read
	Items         int            `json:"items"`
	Windows       int            `json:"windows"` // closed windows in the source
	FirstWindow   time.Time      `json:"first_window"`
	LastWindow    time.Time      `json:"last_window"` // the start of the last closed window
	Flagged       int            `json:"flagged"`     // trending rows over all closed windows
	Outputs       []OutputResult `json:"outputs"`
	UpToDate      bool           `json:"up_to_date"` // nothing to write: every closed window is already committed
	Seconds       float64        `json:"seconds"`
}

// paramsMap is the canonical form of the parameters that decide the outputs: the txn appIds
// hash it and the lineage records it.
func paramsMap(source string, p Params) map[string]any {
	w := ""
	if p.Weights != nil {
		keys := slices.Sorted(maps.Keys(p.Weights))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + strconv.FormatFloat(p.Weights[k], 'g', -1, 64)
		}
		w = strings.Join(parts, ",")
	}
	types := slices.Sorted(slices.Values(p.Types))
	m := map[string]any{
		"source": source, "window": p.Window.String(), "windowOrigin": p.Origin.UTC().Format(time.RFC3339Nano),
		"allowedLateness": p.Lateness.String(), "weights": w, "types": strings.Join(types, ","),
		"threshold": p.Threshold, "minCount": p.MinCount, "top": p.Top, "model": modelVersion(p),
	}
	if p.Count != CountUsers && p.Count != "" {
		// Only when not the default, so that the appIds (and checkpoints) of the outputs
		// written before the count modes existed stay the same.
		m["count"] = p.Count
	}
	return m
}

// modelVersion names the model's equations and constants: a change of model is a change of
// parameters, so a rerun after an upgrade does not mix two models in one table unnoticed.
// trending-v2 (count modes other than users, or windows longer than half a day) adds per-item
// overdispersion and the level's guard while an item's CUSUM rises and, for windows longer
// than half a day, the weekly item season and a level half-life of at least minLevelWindows
// windows. Distinct users in windows of at most half a day are computed as trending-v1 did,
// and keep its name (and so the outputs' appIds and checkpoints).
func modelVersion(p Params) string {
	if (p.Count != CountUsers && p.Count != "") || longWindows(p.Window) {
		return modelV2
	}
	return modelV1
}

const (
	modelV1 = "trending-v1"
	modelV2 = "trending-v2"
)

// pinSource opens the source and pins a snapshot.
func pinSource(ctx context.Context, uri string, version int64) (*table.Table, *txlog.Snapshot, error) {
	src, err := table.Open(ctx, uri, nil)
	if err != nil {
		return nil, nil, err
	}
	var snap *txlog.Snapshot
	if version >= 0 {
		snap, err = src.SnapshotAt(ctx, version)
		if err != nil {
			src.Close()
			return nil, nil, fmt.Errorf("source version %d: %w (see `lake history %s` for the versions)", version, err, uri)
		}
	} else if snap, err = src.Snapshot(ctx); err != nil {
		src.Close()
		return nil, nil, err
	}
	return src, snap, nil
}

// scanInto reads every row of snap into det.
func scanInto(ctx context.Context, src *table.Table, snap *txlog.Snapshot, det *Detector) (rows, skipped int64, err error) {
	cols, err := columnsOf(src.URI(), snap.Schema(), det.p.Count)
	if err != nil {
		return 0, 0, err
	}
	scan, err := reader.NewScan(ctx, src, snap, &reader.ScanOptions{Columns: cols})
	if err != nil {
		return 0, 0, err
	}
	for rec, err := range scan.Records(ctx) {
		if err != nil {
			return rows, skipped, err
		}
		r, s, err := addRecord(src.URI(), det, rec)
		if err != nil {
			return rows, skipped, err
		}
		rows, skipped = rows+r, skipped+s
	}
	return rows, skipped, nil
}

// Run runs `lake trending` in batch mode: it pins the source, counts every event into its
// window, closes the windows the newest event time has passed (plus the allowed lateness),
// runs the model over them in order, and appends to each output the closed windows it does not
// hold yet, in one commit per output whose txn records the last window written.
func Run(ctx context.Context, opts *Options) (*Result, error) {
	start := time.Now()
	o := *opts
	if o.Source == "" || o.Output == "" {
		return nil, badParam("give --source URI and --output PREFIX")
	}
	det, err := NewDetector(&o.Params)
	if err != nil {
		return nil, err
	}
	p := det.Params()
	logf := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "trending: "+format+"\n", args...)
		}
	}
	src, snap, err := pinSource(ctx, o.Source, o.SourceVersion)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	res := &Result{SourceVersion: snap.Version()}

	t0 := time.Now()
	rows, skipped, err := scanInto(ctx, src, snap, det)
	if err != nil {
		return nil, err
	}
	res.SourceRows, res.Skipped, res.Events = rows+skipped, skipped, det.Events()
	if det.Events() == 0 {
		return nil, fmt.Errorf("%w: %s at version %d has no events (with a user, item, type and time%s); ingest some first (`lake ingest`)",
			ErrEmptySource, o.Source, snap.Version(), typesNote(p.Types))
	}
	windows := det.Advance()
	res.Items, res.Windows, res.Late = det.Items(), len(windows), det.Late()
	secs := time.Since(t0).Seconds()
	logf("source %s version %d: %d events, %d items, %d closed windows of %s; %.1fs (%.2fM events/s)",
		o.Source, snap.Version(), res.Events, res.Items, len(windows), p.Window, secs, float64(res.Events)/max(secs, 1e-9)/1e6)
	if len(windows) == 0 {
		k, _ := det.NextWindow()
		logf("no window has closed yet: the first window ends at %s, and closes once an event is newer than that plus the allowed lateness (%s)",
			det.WindowStart(k+1).Format(time.RFC3339), p.Lateness)
		res.UpToDate = true
		res.Seconds = time.Since(start).Seconds()
		return res, nil
	}
	res.FirstWindow, res.LastWindow = windows[0].Start, windows[len(windows)-1].Start
	for _, w := range windows {
		res.Flagged += len(w.Trending)
	}
	metrics := det.metrics(len(windows), res.Flagged)
	lin := lineage{job: "trending", source: o.Source, sourceVersion: snap.Version(), sourceRows: res.SourceRows,
		params: paramsMap(o.Source, p), metrics: metrics, start: start}
	outs, err := commitWindows(ctx, o.Output, windows, &lin, o.Force)
	if err != nil {
		return nil, err
	}
	res.Outputs = outs
	res.UpToDate = true
	for _, out := range outs {
		res.UpToDate = res.UpToDate && out.Skipped
		if out.Skipped {
			logf("%s: windows through %s already committed; nothing to write", out.URI, det.WindowStart(out.Before).Format(time.RFC3339))
		} else {
			logf("%s: version %d, %d windows (%s to %s), %d rows", out.URI, out.Version, out.Windows,
				det.WindowStart(out.From).Format(time.RFC3339), det.WindowStart(out.Through).Format(time.RFC3339), out.Rows)
		}
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// metrics are the lineage's metrics of a run that closed windows with flagged rows.
func (d *Detector) metrics(windows, flagged int) map[string]any {
	m := map[string]any{"events": d.Events(), "items": d.Items(), "windows": windows, "flagged": flagged,
		"late": d.Late(), "dispersion": d.disp, "forecastError": d.delta2}
	if d.useValue {
		// Rows counted 0: a null (or NaN) value, a negative value.
		m["valueNullCountedZero"], m["valueNegativeCountedZero"] = d.valueNull, d.valueNeg
	}
	return m
}

func typesNote(types []string) string {
	if types == nil {
		return ""
	}
	return " and a type in " + strings.Join(types, ",")
}

// lineage is what each commit records in commitInfo.operationParameters, as strings (Delta's
// convention), with the same keys as the jobs package's lineage (job, source, sourceVersion,
// sourceRows, parameters, metrics, runSeconds, engineVersion, appId, forced, txn) plus the
// windows written. jobs.Lineage writes replace-style outputs only, so trending keeps its own.
type lineage struct {
	job           string
	source        string
	sourceVersion int64
	sourceRows    int64
	params        map[string]any
	metrics       map[string]any
	start         time.Time
}

func (l *lineage) operationParameters(appID string, forced bool, from, through time.Time, windows int) map[string]any {
	params, _ := json.Marshal(l.params)
	metrics, _ := json.Marshal(l.metrics)
	return map[string]any{
		"job":           l.job,
		"source":        l.source,
		"sourceVersion": strconv.FormatInt(l.sourceVersion, 10),
		"sourceRows":    strconv.FormatInt(l.sourceRows, 10),
		"parameters":    string(params),
		"metrics":       string(metrics),
		"runSeconds":    strconv.FormatFloat(time.Since(l.start).Seconds(), 'f', 3, 64),
		"engineVersion": table.EngineVersion,
		"appId":         appID,
		"forced":        strconv.FormatBool(forced),
		"txn":           "true",
		"fromWindow":    from.Format(time.RFC3339Nano),
		"throughWindow": through.Format(time.RFC3339Nano),
		"windows":       strconv.Itoa(windows),
	}
}

// commitWindows appends to PREFIX/trending and PREFIX/popular the windows (closed, in order)
// each does not hold yet: one commit per output, recording txn{appId, last window index}. With
// force every window is written and replaces the table.
func commitWindows(ctx context.Context, prefix string, windows []Window, lin *lineage, force bool) ([]OutputResult, error) {
	var outs []OutputResult
	for _, name := range []string{OutPopular, OutTrending} {
		uri := jobs.ChildURI(prefix, name)
		appID := jobs.AppID(lin.job, name, lin.params)
		res, err := commitOutput(ctx, uri, name, appID, windows, lin, force)
		if err != nil {
			return outs, err
		}
		outs = append(outs, res)
		if testHookAfterOutput != nil {
			testHookAfterOutput(name)
		}
	}
	return outs, nil
}

// testHookAfterOutput, when set by a test, runs after each output's commit (a crash between
// the two outputs' commits).
var testHookAfterOutput func(name string)

func commitOutput(ctx context.Context, uri, name, appID string, windows []Window, lin *lineage, force bool) (OutputResult, error) {
	res := OutputResult{Name: name, URI: uri, Version: -1, Before: -1}
	schema := PopularSchema()
	if name == OutTrending {
		schema = TrendingSchema()
	}
	t, err := table.Open(ctx, uri, nil)
	if errors.Is(err, txlog.ErrNotATable) {
		t, err = table.Create(ctx, uri, schema, &table.CreateOptions{Name: name, Description: "output of lake " + lin.job})
	}
	if err != nil {
		return res, err
	}
	defer t.Close()
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return res, err
	}
	res.Version = snap.Version()
	recorded, has := snap.AppTransactionVersion(appID)
	if has {
		res.Before = recorded
	}
	todo := windows
	if has && !force {
		i, _ := slices.BinarySearchFunc(windows, recorded+1, func(w Window, k int64) int { return int(w.Index - k) })
		todo = windows[i:]
	}
	if len(todo) == 0 {
		res.Skipped = true
		return res, nil
	}
	last := todo[len(todo)-1].Index
	wopts := &writer.Options{Mode: writer.Append, Snapshot: snap, AppID: appID, AppVersion: last,
		OperationParameters: lin.operationParameters(appID, force, todo[0].Start, todo[len(todo)-1].Start, len(todo))}
	if force {
		wopts.Mode = writer.Overwrite
		if has && recorded >= last {
			// The txn already says last; a txn may not go backwards, and writing the same
			// version again would be skipped by the writer: rebuild without one.
			wopts.AppID, wopts.AppVersion = "", 0
			wopts.OperationParameters["txn"] = "false"
		}
	}
	w, err := writer.New(ctx, t, wopts)
	if err != nil {
		return res, err
	}
	aschema, err := deltaarrow.Schema(schema)
	if err != nil {
		w.Abort(context.WithoutCancel(ctx))
		return res, err
	}
	for rec := range windowRecords(aschema, name, todo) {
		err := w.Write(ctx, rec)
		rec.Release()
		if err != nil {
			w.Abort(context.WithoutCancel(ctx))
			return res, fmt.Errorf("write %s: %w", uri, err)
		}
	}
	r, err := w.Close(ctx)
	if err != nil {
		return res, fmt.Errorf("commit %s: %w", uri, err)
	}
	res.Version, res.Rows, res.Skipped = r.Version, r.Rows, r.Skipped
	res.Windows, res.From, res.Through = len(todo), todo[0].Index, last
	return res, nil
}

// windowRecords yields the rows of windows as record batches of at most 64Ki rows; the caller
// releases each.
func windowRecords(schema *arrow.Schema, name string, windows []Window) func(func(arrow.RecordBatch) bool) {
	return func(yield func(arrow.RecordBatch) bool) {
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		defer b.Release()
		n := 0
		flush := func() bool {
			if n == 0 {
				return true
			}
			n = 0
			return yield(b.NewRecordBatch())
		}
		for _, w := range windows {
			rows := w.Popular
			if name == OutTrending {
				rows = w.Trending
			}
			ts := arrow.Timestamp(w.Start.UnixMicro())
			for _, r := range rows {
				b.Field(0).(*array.TimestampBuilder).Append(ts)
				b.Field(1).(*array.StringBuilder).Append(r.Item)
				b.Field(2).(*array.Int64Builder).Append(int64(r.Count + 0.5))
				if name == OutTrending {
					b.Field(3).(*array.Float64Builder).Append(r.Expected)
					b.Field(4).(*array.Float64Builder).Append(r.Score)
					b.Field(5).(*array.Int32Builder).Append(int32(r.Rank))
				} else {
					b.Field(3).(*array.Int32Builder).Append(int32(r.Rank))
				}
				if n++; n == 64<<10 && !flush() {
					return
				}
			}
		}
		flush()
	}
}
