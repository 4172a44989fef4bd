package trending

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// FollowOptions are the parameters of `lake trending --follow`.
type FollowOptions struct {
	Options
	// Poll is how often the source's log is listed for new commits (default 1s).
	Poll time.Duration
	// CheckpointEvery is the least time between two checkpoints of the model state (default
	// 30s; negative: never). A checkpoint is also written when Follow stops on ctx.
	CheckpointEvery time.Duration
	// OnCommit, when set, is called after each round that committed windows (tests, metrics).
	OnCommit func(sourceVersion int64, windows []Window, outs []OutputResult)
	// OnRound, when set, is called after the first scan and after each poll, with the source
	// version processed so far.
	OnRound func(sourceVersion int64)
}

// Follow tails the source. It starts from the model checkpoint beside the output when there
// is a usable one (see checkpoint.go), else like a batch run over the latest snapshot (which
// rebuilds the model state and commits the closed windows the outputs lack); then, every Poll,
// it reads only the data files that the commits since the last processed version added, and
// commits each window when the newest event time passes its end plus the allowed lateness.
// Events that arrive after their window closed are counted (the lineage's metrics: late) and
// dropped.
//
// Restart after a crash (kill -9) is exact: the outputs' txn says which window was committed
// last, and only the windows after it are committed; the model state comes from the last
// checkpoint plus the commits after it, or from a full scan.
//
// Follow returns ctx.Err() when ctx is done, or an error.
func Follow(ctx context.Context, opts *FollowOptions) error {
	o := *opts
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = 30 * time.Second
	}
	if o.Source == "" || o.Output == "" {
		return badParam("give --source URI and --output PREFIX")
	}
	if o.SourceVersion >= 0 {
		return badParam("--follow reads every version; drop --source-version")
	}
	det, err := NewDetector(&o.Params)
	if err != nil {
		return err
	}
	p := det.Params()
	logf := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "trending: "+format+"\n", args...)
		}
	}
	start := time.Now()
	params := paramsMap(o.Source, p)
	ckptApp := jobs.AppID("trending", OutTrending, params)
	ckptURI := jobs.ChildURI(o.Output, OutTrending)

	src, err := table.Open(ctx, o.Source, nil)
	if err != nil {
		return err
	}
	defer src.Close()
	var snap *txlog.Snapshot
	var rows, skipped int64
	if v, r, s, ok := loadCheckpoint(ctx, ckptURI, ckptApp, det, logf); ok {
		if snap, err = src.SnapshotAt(ctx, v); err != nil {
			logf("the checkpoint is at source version %d, which cannot be read (%v); rebuilding from a full scan", v, err)
			det, _ = NewDetector(&o.Params)
			snap = nil
		} else {
			rows, skipped = r, s
			logf("following %s from the checkpoint at version %d (%d events, %d items)", o.Source, v, det.Events(), det.Items())
		}
	}
	if snap == nil {
		if snap, err = src.Snapshot(ctx); err != nil {
			return err
		}
		if rows, skipped, err = scanInto(ctx, src, snap, det); err != nil {
			return err
		}
		logf("following %s from version %d (%d events, %d items); windows of %s, allowed lateness %s", o.Source, snap.Version(),
			det.Events(), det.Items(), p.Window, p.Lateness)
	}
	lin := lineage{job: "trending", source: o.Source, params: params, start: start}
	commit := func(version int64) error {
		windows := det.Advance()
		if len(windows) == 0 {
			return nil
		}
		flagged := 0
		for _, w := range windows {
			flagged += len(w.Trending)
		}
		lin.sourceVersion, lin.sourceRows, lin.start = version, rows+skipped, time.Now()
		lin.metrics = det.metrics(len(windows), flagged)
		lin.metrics["follow"] = true
		outs, err := commitWindows(ctx, o.Output, windows, &lin, false)
		if err != nil {
			return err
		}
		for _, out := range outs {
			if !out.Skipped {
				logf("%s: version %d, windows through %s, %d rows (source version %d, %d late events so far)", out.URI, out.Version,
					det.WindowStart(out.Through).Format(time.RFC3339), out.Rows, version, det.Late())
			}
		}
		if o.OnCommit != nil {
			o.OnCommit(version, windows, outs)
		}
		return nil
	}
	var lastCkpt time.Time
	var ckptVersion int64 = -1
	// dirty: det holds events or closed windows beyond (snap, the committed outputs), e.g. a
	// round stopped half-way. Its state must not be checkpointed then: a restart would count
	// those events twice, or never commit those windows.
	dirty := false
	saveCheckpoint := func(ctx context.Context, force bool) {
		if dirty || o.CheckpointEvery < 0 || snap.Version() == ckptVersion || (!force && time.Since(lastCkpt) < o.CheckpointEvery) {
			return
		}
		if err := writeCheckpoint(ctx, ckptURI, ckptApp, det, snap.Version(), rows, skipped); errors.Is(err, txlog.ErrNotATable) {
			return // no window committed yet: a restart's full scan is as cheap
		} else if err != nil {
			logf("checkpoint not written (%v); a restart rebuilds from the source", err)
			return
		}
		lastCkpt, ckptVersion = time.Now(), snap.Version()
	}
	defer func() { saveCheckpoint(context.WithoutCancel(ctx), true) }()

	// The commits after the pinned or checkpointed version, then every Poll.
	tick := time.NewTicker(o.Poll)
	defer tick.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
		next, err := src.Update(ctx, snap)
		if err != nil {
			return err
		}
		dirty = true
		if next.Version() != snap.Version() {
			r, s, err := readAdded(ctx, src, snap.Version()+1, next, det)
			if err != nil {
				return err
			}
			rows, skipped = rows+r, skipped+s
		}
		if err := commit(next.Version()); err != nil {
			return err
		}
		snap, dirty = next, false
		saveCheckpoint(ctx, false)
		if o.OnRound != nil {
			o.OnRound(snap.Version())
		}
	}
}

// loadCheckpoint restores det from the checkpoint beside the output; ok is false when there is
// none or it is unusable (said on the progress writer).
func loadCheckpoint(ctx context.Context, uri, appID string, det *Detector, logf func(string, ...any)) (version, rows, skipped int64, ok bool) {
	t, err := table.Open(ctx, uri, nil)
	if err != nil {
		return 0, 0, 0, false
	}
	defer t.Close()
	data, err := t.Bucket().ReadAll(ctx, checkpointKey(appID))
	if err != nil {
		if !isNotFound(err) {
			logf("checkpoint not read (%v); rebuilding from a full scan", err)
		}
		return 0, 0, 0, false
	}
	version, rows, skipped, err = det.restore(data, appID)
	if err != nil {
		logf("checkpoint ignored (%v); rebuilding from a full scan", err)
		return 0, 0, 0, false
	}
	return version, rows, skipped, true
}

func writeCheckpoint(ctx context.Context, uri, appID string, det *Detector, version, rows, skipped int64) error {
	t, err := table.Open(ctx, uri, nil)
	if err != nil {
		return err // txlog.ErrNotATable: no window committed yet
	}
	defer t.Close()
	data, err := det.checkpoint(appID, version, rows, skipped)
	if err != nil {
		return err
	}
	return t.Bucket().WriteAll(ctx, checkpointKey(appID), data, nil)
}

// readAdded feeds det the rows of the data files that the commits from version `from` through
// next.Version() added (dataChange adds only: a compaction's rewritten files hold rows already
// read). A commit that removes data, or a table whose files need column mapping or carry
// deletion vectors, is an error: follow reads appends only.
func readAdded(ctx context.Context, src *table.Table, from int64, next *txlog.Snapshot, det *Detector) (rows, skipped int64, err error) {
	cols, err := columnsOf(src.URI(), next.Schema(), det.p.Count)
	if err != nil {
		return 0, 0, err
	}
	if m := next.Configuration()["delta.columnMapping.mode"]; m != "" && m != "none" {
		return 0, 0, fmt.Errorf("%s uses column mapping (%s); --follow reads plain appended files only: run without --follow", src.URI(), m)
	}
	for v := from; v <= next.Version(); v++ {
		b, err := src.Bucket().ReadAll(ctx, txlog.CommitKey(v))
		if err != nil {
			return rows, skipped, fmt.Errorf("read commit %d of %s: %w", v, src.URI(), err)
		}
		acts, err := txlog.DecodeActions(b)
		if err != nil {
			return rows, skipped, fmt.Errorf("commit %d of %s: %w", v, src.URI(), err)
		}
		for _, a := range acts {
			if a.Remove != nil && a.Remove.DataChange {
				return rows, skipped, fmt.Errorf("version %d of %s deletes rows (%s); --follow handles appends only: rebuild with `lake trending --force` without --follow", v, src.URI(), a.Remove.Path)
			}
			if a.Add == nil || !a.Add.DataChange {
				continue
			}
			if a.Add.DeletionVector != nil {
				return rows, skipped, fmt.Errorf("version %d of %s adds %s with a deletion vector; --follow reads plain appended files only", v, src.URI(), a.Add.Path)
			}
			r, s, err := readFile(ctx, src, a.Add.Path, cols, det)
			if err != nil {
				return rows, skipped, err
			}
			rows, skipped = rows+r, skipped+s
		}
	}
	return rows, skipped, nil
}

// readFile reads the columns of one data file (a path as the log stores it) into det.
func readFile(ctx context.Context, src *table.Table, p string, cols []string, det *Detector) (rows, skipped int64, err error) {
	key, err := url.PathUnescape(p)
	if err != nil || strings.Contains(p, "://") || path.IsAbs(key) {
		return 0, 0, fmt.Errorf("%s: data file path %q: follow reads files inside the table only", src.URI(), p)
	}
	b, err := src.Bucket().ReadAll(ctx, key)
	if err != nil {
		return 0, 0, fmt.Errorf("read %s of %s: %w", key, src.URI(), err)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		return 0, 0, fmt.Errorf("%s of %s: %w", key, src.URI(), err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, memory.DefaultAllocator)
	if err != nil {
		return 0, 0, fmt.Errorf("%s of %s: %w", key, src.URI(), err)
	}
	schema, err := fr.Schema()
	if err != nil {
		return 0, 0, err
	}
	var idx []int
	for _, c := range cols {
		found := -1
		for i, f := range schema.Fields() {
			if f.Name == c {
				found = i
			}
		}
		if found < 0 {
			return 0, 0, fmt.Errorf("%s of %s has no column %s", key, src.URI(), c)
		}
		// Leaf column indices of the top-level field.
		leaves := fr.Manifest.Fields[found]
		idx = append(idx, leafIndices(&leaves)...)
	}
	rr, err := fr.GetRecordReader(ctx, idx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("%s of %s: %w", key, src.URI(), err)
	}
	defer rr.Release()
	for rr.Next() {
		r, s, err := addRecord(src.URI(), det, rr.RecordBatch())
		if err != nil {
			return rows, skipped, err
		}
		rows, skipped = rows+r, skipped+s
	}
	if err := rr.Err(); err != nil {
		return rows, skipped, fmt.Errorf("%s of %s: %w", key, src.URI(), err)
	}
	return rows, skipped, nil
}

func leafIndices(f *pqarrow.SchemaField) []int {
	if f.IsLeaf() {
		return []int{f.ColIndex}
	}
	var out []int
	for i := range f.Children {
		out = append(out, leafIndices(&f.Children[i])...)
	}
	return out
}
