package compaction

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sync/errgroup"

	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

// DeleteOptions configure Delete.
type DeleteOptions struct {
	// Where selects the rows to delete: filters, ANDed (the syntax of reader.ParseFilter). At
	// least one is required. A row whose compared value is null is not deleted.
	Where []reader.Filter
	// Parallelism is the number of files rewritten at once (default 2).
	Parallelism int
	// Allocator allocates the Arrow buffers (default memory.DefaultAllocator).
	Allocator memory.Allocator
	// Now is the clock of the removes' deletionTimestamp (default time.Now).
	Now func() time.Time
}

// DeleteResult describes a delete.
type DeleteResult struct {
	// Version is the version committed (the one read when nothing matched).
	Version   int64
	Committed bool
	// RowsDeleted are the rows removed; RowsCopied the rows of touched files written again.
	RowsDeleted, RowsCopied int64
	// FilesScanned are the files that could hold matching rows (after partition pruning and
	// statistics); FilesRemoved those that did, FilesAdded their rewritten remainders.
	FilesScanned             int
	FilesRemoved, FilesAdded int64
	BytesRemoved, BytesAdded int64
}

// Delete removes the rows that match every filter of opts.Where, by rewriting the files that
// hold them without those rows (copy-on-write) and committing the removes and adds
// (dataChange=true) as one version. Files whose partition values satisfy a predicate on
// partition columns only are removed whole, without being read. The commit follows Delta's
// conflict rules for DELETE: it fails if a concurrent commit removed a file it read, or added
// files with new data where it read (the partitions its partition filters select, else the
// whole table), except blind appends under WriteSerializable; a failed commit leaves no files.
// Deletion vectors are not written yet: files are rewritten even on tables that enable them.
func Delete(ctx context.Context, t *table.Table, opts *DeleteOptions) (*DeleteResult, error) {
	var o DeleteOptions
	if opts != nil {
		o = *opts
	}
	if len(o.Where) == 0 {
		return nil, &OptionError{Option: "Where", Problem: "give at least one condition; to empty the table, overwrite it"}
	}
	if o.Parallelism <= 0 {
		o.Parallelism = DefaultParallelism
	}
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	if err := snap.Protocol().CheckWrite(snap.Schema()); err != nil {
		return nil, err
	}
	if snap.Configuration()["delta.appendOnly"] == "true" {
		return nil, fmt.Errorf("%s: table is append-only (delta.appendOnly=true): delete would remove data", t.URI())
	}
	matcher, err := reader.NewRowMatcher(snap.Schema(), o.Where)
	if err != nil {
		return nil, err
	}
	parts := map[string]bool{}
	for _, p := range snap.PartitionColumns() {
		parts[p] = true
	}
	var partFilters []reader.Filter
	onlyParts := true
	for _, f := range o.Where {
		if parts[f.Column] {
			partFilters = append(partFilters, f)
		} else {
			onlyParts = false
		}
	}
	sc, err := reader.NewScan(ctx, t, snap, &reader.ScanOptions{Columns: []string{}, Filters: o.Where})
	if err != nil {
		return nil, err
	}
	cands := sc.Files()
	res := &DeleteResult{Version: snap.Version(), FilesScanned: len(cands)}

	type outcome struct {
		file    *txlog.Add
		adds    []txlog.Add
		deleted int64
		copied  int64
	}
	outs := make([]*outcome, len(cands))
	var mu sync.Mutex
	var written []txlog.Add // every file written, for clean-up
	cleanup := func() {
		mu.Lock()
		defer mu.Unlock()
		discardAdds(context.WithoutCancel(ctx), t, written)
	}
	if onlyParts {
		for i, a := range cands {
			n, _ := liveRows([]*txlog.Add{a})
			outs[i] = &outcome{file: a, deleted: n}
		}
	} else {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(o.Parallelism)
		for i, a := range cands {
			g.Go(func() error {
				adds, deleted, copied, err := rewriteWithout(gctx, t, snap, a, matcher, o.Allocator)
				mu.Lock()
				written = append(written, adds...)
				mu.Unlock()
				if err != nil {
					return err
				}
				if deleted > 0 {
					outs[i] = &outcome{file: a, adds: adds, deleted: deleted, copied: copied}
				} else {
					discardAdds(context.WithoutCancel(gctx), t, adds) // nothing matched: keep the file
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			cleanup()
			return nil, err
		}
	}
	now := o.Now().UnixMilli()
	var acts []txlog.Action
	for _, out := range outs {
		if out == nil {
			continue
		}
		a := out.file
		size := a.Size
		ext := true
		acts = append(acts, txlog.Action{Remove: &txlog.Remove{
			Path: a.Path, DeletionTimestamp: &now, DataChange: true, ExtendedFileMetadata: &ext,
			PartitionValues: a.PartitionValues, Size: &size, Stats: a.Stats, Tags: a.Tags,
			DeletionVector: a.DeletionVector, BaseRowID: a.BaseRowID, DefaultRowCommitVersion: a.DefaultRowCommitVersion,
		}})
		res.FilesRemoved++
		res.BytesRemoved += a.Size
		res.RowsDeleted += out.deleted
		res.RowsCopied += out.copied
		for i := range out.adds {
			acts = append(acts, txlog.Action{Add: &out.adds[i]})
			res.FilesAdded++
			res.BytesAdded += out.adds[i].Size
		}
	}
	if len(acts) == 0 {
		return res, nil
	}
	preds := make([]string, len(o.Where))
	for i, f := range o.Where {
		preds[i] = f.String()
	}
	pj, _ := json.Marshal(preds)
	txn := t.Log().NewTransaction(snap, &txlog.TxnOptions{
		Operation:           "DELETE",
		OperationParameters: map[string]any{"predicate": string(pj)},
		OperationMetrics: map[string]any{
			"numRemovedFiles":     strconv.FormatInt(res.FilesRemoved, 10),
			"numAddedFiles":       strconv.FormatInt(res.FilesAdded, 10),
			"numDeletedRows":      strconv.FormatInt(res.RowsDeleted, 10),
			"numCopiedRows":       strconv.FormatInt(res.RowsCopied, 10),
			"numRemovedBytes":     strconv.FormatInt(res.BytesRemoved, 10),
			"numAddedBytes":       strconv.FormatInt(res.BytesAdded, 10),
			"numAddedChangeFiles": "0",
		},
	})
	// What the delete read: the partitions its partition filters select, else the whole table.
	if len(partFilters) > 0 {
		txn.ReadPartitions(partitionMatcher(t, snap, partFilters))
	} else {
		txn.ReadWholeTable()
	}
	for _, a := range cands {
		txn.ReadFile(txlog.FileKey(a.Path, a.DeletionVector))
	}
	txn.AddActions(acts...)
	if testHookBeforeDeleteCommit != nil {
		testHookBeforeDeleteCommit()
	}
	v, err := txn.Commit(ctx)
	if err != nil {
		var unknown *txlog.CommitUnknownError
		if !errors.As(err, &unknown) {
			cleanup()
		}
		return nil, err
	}
	res.Version, res.Committed = v, true
	return res, nil
}

// testHookBeforeDeleteCommit, set by tests, runs right before a delete commits.
var testHookBeforeDeleteCommit func()

// rewriteWithout reads file a and writes the rows that do not match as new files (not
// committed; dataChange=true). It returns the files written and the rows deleted and copied.
func rewriteWithout(ctx context.Context, t *table.Table, snap *txlog.Snapshot, a *txlog.Add, m *reader.RowMatcher, mem memory.Allocator) (adds []txlog.Add, deleted, copied int64, err error) {
	sc, err := reader.NewScan(ctx, t, snap, &reader.ScanOptions{Files: []*txlog.Add{a}, Allocator: mem, Concurrency: 1})
	if err != nil {
		return nil, 0, 0, err
	}
	fw, err := writer.NewFileWriter(t.Bucket(), snap.Metadata(), snap.Protocol(), &writer.Options{Parallelism: 1, MaxOpenFiles: 1, Allocator: mem})
	if err != nil {
		return nil, 0, 0, err
	}
	fail := func(err error) ([]txlog.Add, int64, int64, error) {
		_ = fw.Abort(context.WithoutCancel(ctx))
		return nil, 0, 0, err
	}
	var match []bool
	for rec, err := range sc.Records(ctx) {
		if err != nil {
			return fail(err)
		}
		n := int(rec.NumRows())
		match = append(match[:0], make([]bool, n)...)
		if err := m.Match(rec, match); err != nil {
			return fail(err)
		}
		b := array.NewBooleanBuilder(mem)
		var kept int64
		for _, x := range match {
			b.Append(!x)
			if !x {
				kept++
			}
		}
		mask := b.NewArray()
		b.Release()
		deleted += int64(n) - kept
		copied += kept
		if kept == 0 {
			mask.Release()
			continue
		}
		var keep arrow.RecordBatch
		if kept == int64(n) {
			rec.Retain()
			keep = rec
		} else {
			keep, err = compute.FilterRecordBatch(compute.WithAllocator(ctx, mem), rec, mask, compute.DefaultFilterOptions())
		}
		mask.Release()
		if err != nil {
			return fail(err)
		}
		err = fw.Write(ctx, keep)
		keep.Release()
		if err != nil {
			return fail(err)
		}
	}
	adds, err = fw.Close(ctx)
	if err != nil {
		return fail(err)
	}
	return adds, deleted, copied, nil
}

// discardAdds deletes files written but not committed (best effort).
func discardAdds(ctx context.Context, t *table.Table, adds []txlog.Add) {
	for _, a := range adds {
		if k, err := reader.ObjectKey(t, a.Path); err == nil {
			_ = t.Bucket().Delete(ctx, k)
		}
	}
}

// partitionMatcher reports whether partition values satisfy filters on partition columns, by
// planning a scan of one file with those values (the reader's partition pruning).
func partitionMatcher(t *table.Table, snap *txlog.Snapshot, filters []reader.Filter) func(map[string]*string) bool {
	return func(pv map[string]*string) bool {
		probe := &txlog.Add{Path: "probe.parquet", PartitionValues: pv}
		sc, err := reader.NewScan(context.Background(), t, snap, &reader.ScanOptions{Columns: []string{}, Filters: filters, Files: []*txlog.Add{probe}})
		if err != nil {
			return true // cannot tell: count it as read
		}
		return sc.NumFiles() == 1
	}
}
