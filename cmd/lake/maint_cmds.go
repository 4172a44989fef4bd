package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lakehouse/lake/compaction"
	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/registry"
)

func init() {
	register(&command{name: "optimize", summary: "compact small files (and cluster rows with --zorder-by)", run: runOptimize})
	register(&command{name: "vacuum", summary: "delete data files no version inside the retention needs, and expired log files", run: runVacuum})
	register(&command{name: "restore", summary: "commit a new version with the files of an earlier one", run: runRestore})
	register(&command{name: "delete", summary: "delete the rows that match --where (rewrites the files that hold them)", run: runDelete})
}

// maintError turns the compaction package's option errors into usage errors.
func maintError(err error) error {
	if errors.Is(err, compaction.ErrInvalidOptions) || errors.Is(err, reader.ErrInvalidFilter) {
		return usagef("%v", err)
	}
	return err
}

func toMiB(n int64) float64 { return float64(n) / (1 << 20) }

func runOptimize(ctx context.Context, e *env, args []string) error {
	fs := newFlags("optimize", "URI [--where EXPR]... [--target-size SIZE] [--min-file-size SIZE] [--zorder-by COL,... | --purge] [--json]", e)
	where := &listFlag{}
	fs.Var(where, "where", "optimize only the partitions where COL OP VALUE holds, on partition columns (repeatable, ANDed)")
	target := fs.String("target-size", "", "size of the files written, e.g. 128mb (default: delta.targetFileSize, else 128mb)")
	minSize := fs.String("min-file-size", "", "files below this size are compacted (default: three quarters of the target size)")
	zorder := &listFlag{split: true}
	fs.Var(zorder, "zorder-by", "cluster rows by a Z-order curve over these columns, comma-separated")
	purge := fs.Bool("purge", false, "rewrite the files that carry deletion vectors, so deleted rows leave storage at the next vacuum")
	asJSON := fs.Bool("json", false, "print the result as one JSON line")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	o := &compaction.OptimizeOptions{ZOrderBy: zorder.vals, Purge: *purge}
	for _, w := range where.vals {
		f, err := reader.ParseFilter(w)
		if err != nil {
			return usagef("--where %q: %v", w, err)
		}
		o.Where = append(o.Where, f)
	}
	if *target != "" {
		if o.TargetSize, err = compaction.ParseSize(*target); err != nil {
			return usagef("--target-size %q: %v", *target, err)
		}
	}
	if *minSize != "" {
		if o.MinFileSize, err = compaction.ParseSize(*minSize); err != nil {
			return usagef("--min-file-size %q: %v", *minSize, err)
		}
	}
	t, err := openTable(ctx, pos[0])
	if err != nil {
		return err
	}
	defer t.Close()
	start := time.Now()
	res, err := compaction.Optimize(ctx, t, o)
	if err != nil {
		return maintError(err)
	}
	secs := time.Since(start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = toMiB(res.BytesRemoved) / secs
	}
	if *asJSON {
		conflicts := make([]string, len(res.Conflicts))
		for i, c := range res.Conflicts {
			conflicts[i] = c.Error()
		}
		return json.NewEncoder(e.stdout).Encode(map[string]any{
			"versions": orEmptyInts(res.Versions), "files_considered": res.FilesConsidered, "bins": res.Bins,
			"files_removed": res.FilesRemoved, "files_added": res.FilesAdded,
			"bytes_removed": res.BytesRemoved, "bytes_added": res.BytesAdded, "rows": res.Rows,
			"bins_dropped": res.BinsDropped, "conflicts": conflicts, "seconds": secs, "mib_per_second": rate,
		})
	}
	if len(res.Versions) == 0 && res.BinsDropped == 0 {
		fmt.Fprintf(e.stdout, "nothing to optimize in %s (%d files considered)\n", t.URI(), res.FilesConsidered)
		return nil
	}
	fmt.Fprintf(e.stdout, "optimized %s: removed %d files (%.1f MiB), added %d files (%.1f MiB), %d rows, in %d commits %v; %.1f s, %.1f MiB/s\n",
		t.URI(), res.FilesRemoved, toMiB(res.BytesRemoved), res.FilesAdded, toMiB(res.BytesAdded), res.Rows, len(res.Versions), res.Versions, secs, rate)
	if res.BinsDropped > 0 {
		fmt.Fprintf(e.stderr, "lake optimize: %d groups of files were left as they were because concurrent commits removed some of their files (%v); run optimize again to compact them\n", len(res.Conflicts), res.Conflicts[0])
	}
	return nil
}

func orEmptyInts(v []int64) []int64 {
	if v == nil {
		return []int64{}
	}
	return v
}

func runVacuum(ctx context.Context, e *env, args []string) error {
	fs := newFlags("vacuum", "URI [--retain DURATION] [--dry-run] [--force] [--keep-version N]... [--no-log-cleanup] [--json]", e)
	retain := fs.String("retain", "", "keep files removed less than this long ago, e.g. 7d or 168h (default: the table's delta.deletedFileRetentionDuration, 7 days)")
	dry := fs.Bool("dry-run", false, "list the files that would be deleted, one per line, and delete nothing")
	force := fs.Bool("force", false, "allow a retention shorter than the table's (unsafe while anything reads or writes the table)")
	keep := &listFlag{split: true}
	fs.Var(keep, "keep-version", "keep the files of this version whatever their age (repeatable or comma-separated)")
	noLog := fs.Bool("no-log-cleanup", false, "do not delete the commits and checkpoints older than delta.logRetentionDuration")
	asJSON := fs.Bool("json", false, "print the result as one JSON line")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	o := &compaction.VacuumOptions{DryRun: *dry, Force: *force}
	if *retain != "" {
		d, err := parseDuration(*retain)
		if err != nil {
			return usagef("--retain %q: %v", *retain, err)
		}
		if d == 0 {
			d = time.Nanosecond // the API reads 0 as "the table's retention"
		}
		o.Retention = d
	}
	for _, k := range keep.vals {
		var v nonNegFlag
		v.want = "--keep-version takes versions from 0"
		if err := v.Set(k); err != nil {
			return usagef("--keep-version %q: %v", k, err)
		}
		o.KeepVersions = append(o.KeepVersions, v.n)
	}
	t, err := openTable(ctx, pos[0])
	if err != nil {
		return err
	}
	defer t.Close()
	// A job output under a model registry keeps the versions the registry serves or rolls back to.
	if prefix, name, ok := registry.SplitOutputURI(pos[0]); ok {
		pinned, err := registry.PinnedVersions(ctx, prefix, name)
		if err != nil {
			return fmt.Errorf("read the model registry %s (it says which versions of %s to keep; pass them with --keep-version instead): %w", registry.URI(prefix), name, err)
		}
		if len(pinned) > 0 {
			o.KeepVersions = append(o.KeepVersions, pinned...)
			fmt.Fprintf(e.stderr, "lake vacuum: keeping versions %v of %s: live or the rollback target in %s\n", pinned, name, registry.URI(prefix))
		}
	}
	start := time.Now()
	res, err := compaction.Vacuum(ctx, t, o)
	if err != nil {
		return maintError(err)
	}
	var logRes *compaction.CleanupResult
	if !*noLog {
		if logRes, err = compaction.CleanupLog(ctx, t, &compaction.CleanupOptions{DryRun: *dry}); err != nil {
			return fmt.Errorf("data files done (%d deleted); log clean-up: %w", len(res.Deleted), err)
		}
	}
	secs := time.Since(start).Seconds()
	var logDeleted []string
	if logRes != nil {
		logDeleted = logRes.Deleted
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(map[string]any{
			"dry_run": res.DryRun, "version": res.Version, "retention": res.Retention.String(),
			"cutoff": res.Cutoff.UTC().Format(time.RFC3339), "files_listed": res.FilesListed,
			"list_seconds": res.ListSeconds, "deleted": orEmptyStrings(res.Deleted), "bytes": res.Bytes,
			"temp_files": res.TempFiles, "log_deleted": orEmptyStrings(logDeleted), "seconds": secs,
		})
	}
	w := newBufWriter(e.stdout)
	if *dry {
		for _, k := range res.Deleted {
			fmt.Fprintln(w, k)
		}
		for _, k := range logDeleted {
			fmt.Fprintln(w, k)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "lake vacuum: dry run: would delete %d files (%.1f MiB) and %d log files; retention %s (files older than %s)\n",
			len(res.Deleted), toMiB(res.Bytes), len(logDeleted), res.Retention, res.Cutoff.UTC().Format(time.RFC3339))
		return nil
	}
	fmt.Fprintf(w, "vacuumed %s: deleted %d files (%.1f MiB, %d temporary) and %d log files; listed %d files in %.2f s; retention %s\n",
		t.URI(), len(res.Deleted), toMiB(res.Bytes), res.TempFiles, len(logDeleted), res.FilesListed, res.ListSeconds, res.Retention)
	return w.Flush()
}

func orEmptyStrings(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

func runRestore(ctx context.Context, e *env, args []string) error {
	fs := newFlags("restore", "URI --version N | --timestamp RFC3339", e)
	version := &nonNegFlag{want: "versions start at 0 (`lake history URI` lists a table's versions)"}
	fs.Var(version, "version", "restore version `N`")
	ts := fs.String("timestamp", "", "restore the version current at this RFC 3339 time")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	o := &compaction.RestoreOptions{Version: version.n}
	switch {
	case version.set && *ts != "":
		return usagef("give --version or --timestamp, not both")
	case !version.set && *ts == "":
		return usagef("give the version to restore: --version N or --timestamp RFC3339")
	case *ts != "":
		tm, err := parseTime(*ts)
		if err != nil {
			return usagef("--timestamp %q: want RFC 3339, e.g. 2024-01-02T03:04:05Z", *ts)
		}
		o.Timestamp = tm
	}
	t, err := openTable(ctx, pos[0])
	if err != nil {
		return err
	}
	defer t.Close()
	res, err := compaction.Restore(ctx, t, o)
	if err != nil {
		return maintError(err)
	}
	if !res.Committed {
		fmt.Fprintf(e.stdout, "%s already has the files of version %d; nothing to restore\n", t.URI(), res.Restored)
		return nil
	}
	fmt.Fprintf(e.stdout, "restored %s to version %d at version %d: %d files added back, %d removed; %d files, %.1f MiB\n",
		t.URI(), res.Restored, res.Version, res.FilesAdded, res.FilesRemoved, res.NumFiles, toMiB(res.Bytes))
	return nil
}

func runDelete(ctx context.Context, e *env, args []string) error {
	fs := newFlags("delete", "URI --where EXPR [--where EXPR]... [--json]", e)
	where := &listFlag{}
	fs.Var(where, "where", "delete the rows where COL OP VALUE holds, OP one of = != < <= > >= in (repeatable, ANDed; required)")
	asJSON := fs.Bool("json", false, "print the result as one JSON line")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if len(where.vals) == 0 {
		return usagef("give the rows to delete with --where COL OP VALUE")
	}
	o := &compaction.DeleteOptions{}
	for _, w := range where.vals {
		f, err := reader.ParseFilter(w)
		if err != nil {
			return usagef("--where %q: %v", w, err)
		}
		o.Where = append(o.Where, f)
	}
	t, err := openTable(ctx, pos[0])
	if err != nil {
		return err
	}
	defer t.Close()
	res, err := compaction.Delete(ctx, t, o)
	if err != nil {
		return maintError(err)
	}
	// Rows deleted from a job output under a model registry are gone for good only once the
	// registry serves the new version and stops pinning the older ones (vacuum keeps pinned ones).
	if prefix, name, ok := registry.SplitOutputURI(pos[0]); ok && res.Committed {
		rows, err := registry.Redact(ctx, prefix, name, res.Version, nil)
		if err != nil {
			return fmt.Errorf("deleted at version %d, but the model registry %s still serves older versions of %s: %w", res.Version, registry.URI(prefix), name, err)
		}
		for _, r := range rows {
			fmt.Fprintf(e.stderr, "lake delete: registry %s: %s %s (%s)\n", registry.URI(prefix), r.RunID, r.Status, r.Reason)
		}
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(map[string]any{
			"version": res.Version, "committed": res.Committed, "rows_deleted": res.RowsDeleted,
			"rows_copied": res.RowsCopied, "files_scanned": res.FilesScanned, "files_removed": res.FilesRemoved,
			"files_added": res.FilesAdded, "bytes_removed": res.BytesRemoved, "bytes_added": res.BytesAdded,
		})
	}
	if !res.Committed {
		fmt.Fprintf(e.stdout, "no rows of %s match; nothing deleted (%d files scanned)\n", t.URI(), res.FilesScanned)
		return nil
	}
	if res.DeletionVectorsAdded > 0 {
		fmt.Fprintf(e.stdout, "deleted %d rows from %s at version %d: %d deletion vectors written (%d replaced), %d files removed whole\n",
			res.RowsDeleted, t.URI(), res.Version, res.DeletionVectorsAdded, res.DeletionVectorsRemoved, res.FilesRemoved)
		return nil
	}
	fmt.Fprintf(e.stdout, "deleted %d rows from %s at version %d: %d files rewritten or removed, %d added (%d rows copied)\n",
		res.RowsDeleted, t.URI(), res.Version, res.FilesRemoved, res.FilesAdded, res.RowsCopied)
	return nil
}
