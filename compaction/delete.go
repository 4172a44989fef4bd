package compaction

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/uuid"
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
	// DVInlineMaxBytes is the largest serialised deletion vector stored inline in the log
	// (Z85); larger ones go to one deletion vector file per delete. 0 means
	// DefaultDVInlineMaxBytes; negative means never inline.
	DVInlineMaxBytes int
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
	// DeletionVectorsAdded are the files given a new deletion vector (on tables that enable
	// them), DeletionVectorsRemoved the older vectors those replaced; DeletionVectorFile is the
	// vector file written ("" when every vector went inline or none was written).
	DeletionVectorsAdded, DeletionVectorsRemoved int64
	DeletionVectorFile                           string
}

// Delete removes the rows that match every filter of opts.Where and commits the removes and
// adds (dataChange=true) as one version. On a table that enables deletion vectors
// (delta.enableDeletionVectors=true and the deletionVectors feature in the protocol) each file
// that holds matching rows is committed again with a deletion vector of those rows, merged with
// its existing one (see deleteWithVectors); otherwise the files are rewritten without those rows
// (copy-on-write). Files whose partition values satisfy a predicate on
// partition columns only are removed whole, without being read. The commit follows Delta's
// conflict rules for DELETE: it fails if a concurrent commit removed a file it read, or added
// files with new data where it read (the partitions its partition filters select, else the
// whole table), except blind appends under WriteSerializable; a failed commit leaves no files.
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
		// rows, on a table with deletion vectors, are the file's deleted rows after this
		// delete (the old vector's and the new ones); nil when the whole file goes.
		rows *roaring64.Bitmap
	}
	outs := make([]*outcome, len(cands))
	var mu sync.Mutex
	var written []txlog.Add // every file written, for clean-up
	dvKey := ""             // the deletion vector file written, for clean-up
	cleanup := func() {
		mu.Lock()
		defer mu.Unlock()
		discardAdds(context.WithoutCancel(ctx), t, written)
		if dvKey != "" {
			_ = t.Bucket().Delete(context.WithoutCancel(ctx), dvKey)
		}
	}
	useDV := deletionVectorsEnabled(snap)
	switch {
	case onlyParts:
		for i, a := range cands {
			n, _ := liveRows([]*txlog.Add{a})
			outs[i] = &outcome{file: a, deleted: n}
		}
	case useDV:
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(o.Parallelism)
		for i, a := range cands {
			g.Go(func() error {
				rows, physical, err := matchingRows(gctx, t, snap, a, matcher, o.Allocator)
				if err != nil {
					return err
				}
				var had uint64
				if a.DeletionVector != nil {
					old, err := reader.ReadDeletionVector(gctx, t, a.DeletionVector)
					if err != nil {
						return fmt.Errorf("%s: %w", a.Path, err)
					}
					had = old.GetCardinality()
					rows.Or(old)
				}
				deleted := int64(rows.GetCardinality() - had)
				switch {
				case deleted == 0: // nothing new matched: keep the file as it is
				case rows.GetCardinality() == uint64(physical): // every row is gone: remove the file
					outs[i] = &outcome{file: a, deleted: deleted}
				default:
					outs[i] = &outcome{file: a, deleted: deleted, rows: rows, copied: physical}
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
	default:
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
	if useDV {
		// The new vectors, in candidate order: small ones inline, the others in one file.
		inlineMax := o.DVInlineMaxBytes
		if inlineMax == 0 {
			inlineMax = DefaultDVInlineMaxBytes
		}
		var file *dvFile
		for _, out := range outs {
			if out == nil || out.rows == nil {
				continue
			}
			data, err := encodeDVBitmap(out.rows)
			if err != nil {
				return nil, err
			}
			card := int64(out.rows.GetCardinality())
			var dv *txlog.DeletionVector
			if len(data) <= inlineMax {
				dv = inlineDV(data, card)
			} else {
				if file == nil {
					file = newDVFile(uuid.New())
				}
				dv = file.add(data, card)
			}
			add, err := withDeletionVector(out.file, dv, out.copied)
			if err != nil {
				return nil, err
			}
			out.adds = []txlog.Add{add}
			out.copied = 0
		}
		if file != nil {
			key := dvFileName(file.id)
			if err := t.Bucket().WriteAll(ctx, key, file.buf, nil); err != nil {
				_ = t.Bucket().Delete(context.WithoutCancel(ctx), key)
				return nil, fmt.Errorf("writing deletion vector file %s: %w", key, err)
			}
			dvKey = key
			res.DeletionVectorFile = key
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
		res.RowsDeleted += out.deleted
		res.RowsCopied += out.copied
		if a.DeletionVector != nil && useDV {
			res.DeletionVectorsRemoved++
		}
		if out.rows != nil { // the same file again, with its new deletion vector
			acts = append(acts, txlog.Action{Add: &out.adds[0]})
			res.DeletionVectorsAdded++
			continue
		}
		res.FilesRemoved++
		res.BytesRemoved += a.Size
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
			"numRemovedFiles":           strconv.FormatInt(res.FilesRemoved, 10),
			"numAddedFiles":             strconv.FormatInt(res.FilesAdded, 10),
			"numDeletedRows":            strconv.FormatInt(res.RowsDeleted, 10),
			"numCopiedRows":             strconv.FormatInt(res.RowsCopied, 10),
			"numRemovedBytes":           strconv.FormatInt(res.BytesRemoved, 10),
			"numAddedBytes":             strconv.FormatInt(res.BytesAdded, 10),
			"numAddedChangeFiles":       "0",
			"numDeletionVectorsAdded":   strconv.FormatInt(res.DeletionVectorsAdded, 10),
			"numDeletionVectorsRemoved": strconv.FormatInt(res.DeletionVectorsRemoved, 10),
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

// deletionVectorsEnabled reports whether a delete writes deletion vectors: the table sets
// delta.enableDeletionVectors=true and its protocol has the deletionVectors reader and writer
// features (a vector committed without them would be ignored by older readers).
func deletionVectorsEnabled(snap *txlog.Snapshot) bool {
	p := snap.Protocol()
	return snap.Configuration()["delta.enableDeletionVectors"] == "true" &&
		p.HasReaderFeature("deletionVectors") && p.HasWriterFeature("deletionVectors")
}

// matchingRows reads data file a whole (its deletion vector not applied, so that positions are
// the file's row indexes) and returns the indexes of the rows that match, and the file's
// physical row count.
func matchingRows(ctx context.Context, t *table.Table, snap *txlog.Snapshot, a *txlog.Add, m *reader.RowMatcher, mem memory.Allocator) (*roaring64.Bitmap, int64, error) {
	plain := *a
	plain.DeletionVector = nil
	sc, err := reader.NewScan(ctx, t, snap, &reader.ScanOptions{Files: []*txlog.Add{&plain}, Allocator: mem, Concurrency: 1})
	if err != nil {
		return nil, 0, err
	}
	rows := roaring64.New()
	var pos uint64
	var match []bool
	for rec, err := range sc.Records(ctx) {
		if err != nil {
			return nil, 0, err
		}
		n := int(rec.NumRows())
		match = append(match[:0], make([]bool, n)...)
		if err := m.Match(rec, match); err != nil {
			return nil, 0, err
		}
		for i, x := range match {
			if x {
				rows.Add(pos + uint64(i))
			}
		}
		pos += uint64(n)
	}
	return rows, int64(pos), nil
}

// withDeletionVector returns a copy of a with deletion vector dv (dataChange=true). Its stats
// get numRecords, the physical row count the protocol requires beside a vector, and
// tightBounds=false: the bounds still cover the deleted rows.
func withDeletionVector(a *txlog.Add, dv *txlog.DeletionVector, physical int64) (txlog.Add, error) {
	out := *a
	out.DataChange = true
	out.DeletionVector = dv
	stats := map[string]json.RawMessage{}
	if a.Stats != "" {
		if err := json.Unmarshal([]byte(a.Stats), &stats); err != nil {
			return out, fmt.Errorf("%s: statistics are not a JSON object: %w", a.Path, err)
		}
	}
	stats["numRecords"] = json.RawMessage(strconv.FormatInt(physical, 10))
	stats["tightBounds"] = json.RawMessage("false")
	b, err := json.Marshal(stats)
	if err != nil {
		return out, err
	}
	out.Stats = string(b)
	return out, nil
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
