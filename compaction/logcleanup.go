package compaction

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"

	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// CleanupOptions configure CleanupLog. A nil *CleanupOptions is the defaults.
type CleanupOptions struct {
	// Retention is how long commits stay readable for time travel. Default: the table's
	// delta.logRetentionDuration (30 days).
	Retention time.Duration
	// DryRun lists what would be deleted.
	DryRun bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// CleanupResult describes a log clean-up.
type CleanupResult struct {
	// Cutoff is midnight UTC of the day Retention ago; CheckpointVersion the newest checkpoint
	// at or before the last commit not newer than Cutoff (-1: none, nothing was deleted).
	Cutoff            time.Time
	CheckpointVersion int64
	// Deleted are the keys under _delta_log/ deleted (or to delete), sorted.
	Deleted []string
	DryRun  bool
}

// logFile is one file in _delta_log/ that clean-up may delete.
type logFile struct {
	key     string
	version int64  // the commit or checkpoint version; a compacted file's start version
	kind    string // "commit", "checkpoint", "crc", "compacted"
	parts   int    // multi-part checkpoints: the number of parts
	modTime time.Time
}

// CleanupLog deletes the log files that time travel inside the log retention no longer needs,
// following the protocol's "Metadata Cleanup": the cut-off is midnight UTC of the day
// Retention ago; the cut-off commit is the newest commit not newer than it; the newest
// complete checkpoint at or below that commit is kept with every commit, checkpoint and
// checksum from its version on; the commits, checkpoints and .crc files below it, and the
// compacted log files starting at or below it, are deleted. Without such a checkpoint nothing
// is deleted. Every version from the kept checkpoint on stays readable, so time travel to any
// commit inside the retention keeps working. V2 checkpoint sidecars that no kept checkpoint
// references are deleted too, once older than the cut-off.
func CleanupLog(ctx context.Context, t *table.Table, opts *CleanupOptions) (*CleanupResult, error) {
	var o CleanupOptions
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	if o.Retention < 0 {
		return nil, &OptionError{Option: "Retention", Problem: fmt.Sprintf("%s is negative", o.Retention)}
	}
	if o.Retention == 0 {
		o.Retention = snap.LogRetention()
	}
	cutoff := o.Now().Add(-o.Retention).UTC().Truncate(24 * time.Hour)
	res := &CleanupResult{Cutoff: cutoff, CheckpointVersion: -1, DryRun: o.DryRun}

	files, err := listLog(ctx, t.Bucket())
	if err != nil {
		return nil, err
	}
	cutoffCommit, err := cutoffCommit(ctx, t, snap, files, cutoff)
	if err != nil || cutoffCommit < 0 {
		return res, err
	}
	// The newest complete, readable checkpoint at or below the cut-off commit: everything
	// older goes, so it must really hold the table's state.
	sets := map[string][]logFile{} // checkpoints by "version/parts" (a UUID-named one alone)
	for _, f := range files {
		if f.kind != "checkpoint" || f.version > cutoffCommit {
			continue
		}
		id := f.key
		if f.parts > 0 {
			id = fmt.Sprintf("%d/%d", f.version, f.parts)
		}
		sets[id] = append(sets[id], f)
	}
	var cands [][]logFile
	for _, set := range sets {
		if set[0].parts == 0 || len(set) == set[0].parts {
			cands = append(cands, set)
		}
	}
	slices.SortFunc(cands, func(a, b []logFile) int { return cmp.Compare(b[0].version, a[0].version) })
	cp := int64(-1)
	for _, set := range cands {
		if checkpointReadable(ctx, t.Bucket(), set) {
			cp = set[0].version
			break
		}
	}
	if cp < 0 {
		return res, nil
	}
	res.CheckpointVersion = cp
	for _, f := range files {
		if f.version < cp || (f.kind == "compacted" && f.version <= cp) {
			res.Deleted = append(res.Deleted, f.key)
		}
	}
	// V2 sidecars that no kept checkpoint references, once older than the cut-off (a newer one
	// may belong to a checkpoint being written).
	sidecars, err := txlog.UnreferencedSidecars(ctx, t.Bucket(), cp, cutoff)
	if err != nil {
		return res, fmt.Errorf("log clean-up: %w", err)
	}
	res.Deleted = append(res.Deleted, sidecars...)
	slices.Sort(res.Deleted)
	if o.DryRun || len(res.Deleted) == 0 {
		return res, nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(DefaultVacuumParallelism)
	for _, k := range res.Deleted {
		g.Go(func() error {
			if err := t.Bucket().Delete(gctx, k); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
				return fmt.Errorf("log clean-up: delete %s: %w", k, err)
			}
			return nil
		})
	}
	return res, g.Wait()
}

// cutoffCommit is the newest commit whose time is not after cutoff, -1 when none. Commit
// times are as History gives them: in-commit timestamps on tables that have them (read from
// the commits), else the commit files' modification times made strictly increasing, which the
// listing already has.
func cutoffCommit(ctx context.Context, t *table.Table, snap *txlog.Snapshot, files []logFile, cutoff time.Time) (int64, error) {
	if snap.InCommitTimestamps() {
		hist, err := t.History(ctx, 0) // newest first
		if err != nil {
			return -1, err
		}
		for _, h := range hist {
			if h.Timestamp <= cutoff.UnixMilli() {
				return h.Version, nil
			}
		}
		return -1, nil
	}
	var commits []logFile
	for _, f := range files {
		if f.kind == "commit" {
			commits = append(commits, f)
		}
	}
	slices.SortFunc(commits, func(a, b logFile) int { return cmp.Compare(a.version, b.version) })
	best := int64(-1)
	prev := int64(math.MinInt64 / 2)
	for _, c := range commits {
		ts := max(c.modTime.UnixMilli(), prev+1)
		prev = ts
		if ts > cutoff.UnixMilli() {
			break
		}
		best = c.version
	}
	return best, nil
}

// checkpointReadable reports whether the files of a checkpoint decode and hold a protocol and
// a metaData action.
func checkpointReadable(ctx context.Context, b *blob.Bucket, set []logFile) bool {
	var proto, meta bool
	see := func(a txlog.Action) error {
		proto = proto || a.Protocol != nil
		meta = meta || a.Metadata != nil
		return nil
	}
	for _, f := range set {
		if strings.HasSuffix(f.key, ".json") {
			data, err := b.ReadAll(ctx, f.key)
			if err != nil {
				return false
			}
			acts, err := txlog.DecodeActions(data)
			if err != nil {
				return false
			}
			for _, a := range acts {
				see(a)
			}
			continue
		}
		attrs, err := b.Attributes(ctx, f.key)
		if err != nil {
			return false
		}
		if err := txlog.DecodeCheckpoint(&rangeReader{ctx: ctx, b: b, key: f.key}, attrs.Size, see); err != nil {
			return false
		}
	}
	return proto && meta
}

// rangeReader reads an object with ranged reads.
type rangeReader struct {
	ctx context.Context
	b   *blob.Bucket
	key string
}

func (r *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	rr, err := r.b.NewRangeReader(r.ctx, r.key, off, int64(len(p)), nil)
	if err != nil {
		return 0, err
	}
	defer rr.Close()
	n, err := io.ReadFull(rr, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

// listLog lists the files of _delta_log/ (not its sub-folders) that clean-up knows.
func listLog(ctx context.Context, b *blob.Bucket) ([]logFile, error) {
	var out []logFile
	opts := &blob.ListOptions{Prefix: txlog.LogDir, Delimiter: "/"}
	for token := blob.FirstPageToken; len(token) > 0; {
		objs, next, err := b.ListPage(ctx, token, listPageSize, opts)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", txlog.LogDir, err)
		}
		token = next
		for _, obj := range objs {
			if obj.IsDir {
				continue
			}
			if f, ok := parseLogFile(strings.TrimPrefix(obj.Key, txlog.LogDir)); ok {
				f.key, f.modTime = obj.Key, obj.ModTime
				out = append(out, f)
			}
		}
	}
	return out, nil
}

// parseLogFile classifies a name in _delta_log/: NNN.json, NNN.crc, NNN.checkpoint.parquet,
// NNN.checkpoint.P.N.parquet, NNN.checkpoint.UUID.{json,parquet} and NNN.MMM.compacted.json,
// with NNN 20 digits.
func parseLogFile(name string) (logFile, bool) {
	if len(name) < 21 || name[20] != '.' {
		return logFile{}, false
	}
	v, err := strconv.ParseInt(name[:20], 10, 64)
	if err != nil || v < 0 {
		return logFile{}, false
	}
	rest := name[21:]
	switch {
	case rest == "json":
		return logFile{version: v, kind: "commit"}, true
	case rest == "crc":
		return logFile{version: v, kind: "crc"}, true
	case rest == "checkpoint.parquet":
		return logFile{version: v, kind: "checkpoint"}, true
	case strings.HasPrefix(rest, "checkpoint."):
		mid := strings.TrimPrefix(rest, "checkpoint.")
		if m, ok := strings.CutSuffix(mid, ".parquet"); ok {
			if a, b, found := strings.Cut(m, "."); found {
				p, e1 := strconv.Atoi(a)
				n, e2 := strconv.Atoi(b)
				if e1 != nil || e2 != nil || len(a) != 10 || len(b) != 10 || p < 1 || p > n {
					return logFile{}, false
				}
				return logFile{version: v, kind: "checkpoint", parts: n}, true
			}
			return logFile{version: v, kind: "checkpoint"}, m != ""
		}
		if m, ok := strings.CutSuffix(mid, ".json"); ok && m != "" && !strings.Contains(m, ".") {
			return logFile{version: v, kind: "checkpoint"}, true
		}
	case strings.HasSuffix(rest, ".compacted.json"):
		end := strings.TrimSuffix(rest, ".compacted.json")
		if len(end) == 20 {
			if _, err := strconv.ParseInt(end, 10, 64); err == nil {
				return logFile{version: v, kind: "compacted"}, true
			}
		}
	}
	return logFile{}, false
}
