package compaction

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sync/errgroup"

	"github.com/lakehouse/lake/internal/partval"
	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

// Defaults of OptimizeOptions.
const (
	DefaultTargetSize     = writer.DefaultTargetFileSize // 128 MiB
	DefaultGroupBytes     = 4 << 30
	DefaultMaxZOrderBytes = 256 << 20
	DefaultParallelism    = 2
)

// OptimizeOptions configure Optimize. A nil *OptimizeOptions is the defaults; Optimize copies
// the options.
type OptimizeOptions struct {
	// Where selects the partitions to optimize: filters on partition columns, ANDed (the syntax
	// of reader.ParseFilter). Empty: the whole table. A filter on another column is an
	// *OptionError, as in Delta's OPTIMIZE ... WHERE.
	Where []reader.Filter
	// TargetSize is the size of the files written. Default: the table property
	// delta.targetFileSize, else 128 MiB.
	TargetSize int64
	// MinFileSize: files smaller than it are compacted. Default: three quarters of TargetSize.
	// With ZOrderBy every file of the selected partitions is rewritten, whatever its size.
	MinFileSize int64
	// ZOrderBy clusters the rows of each partition along a Z-order curve over these columns
	// (interleaved bits of each row's rank in every column), so that filters on any of them
	// skip more files. Partition columns and nested types cannot be used.
	ZOrderBy []string
	// Purge rewrites every file of the selected partitions that carries a deletion vector,
	// whatever its size and alone if need be, so that the rows the vectors delete leave storage
	// once vacuum removes the old files (Delta's REORG TABLE ... APPLY (PURGE)). Other files are
	// left alone. The commit's operation is REORG.
	Purge bool
	// MaxZOrderBytes bounds the input bytes of one Z-order bin (default 256 MiB), whose rows are
	// sorted in memory (decoded, several times their Parquet size; Parallelism bins at once); a
	// larger partition is clustered as several bins, each on its own. Z-order rewrites the
	// selected partitions on every run, as Delta's OPTIMIZE ZORDER BY does.
	MaxZOrderBytes int64
	// GroupBytes bounds the input bytes of the bins committed together (default 4 GiB): a large
	// table is optimized in several commits, and a conflict costs one group.
	GroupBytes int64
	// Parallelism is the number of bins rewritten at once (default 2).
	Parallelism int
	// Snapshot is the snapshot to optimize; nil loads the latest.
	Snapshot *txlog.Snapshot
	// Allocator allocates the Arrow buffers (default memory.DefaultAllocator).
	Allocator memory.Allocator
	// Now is the clock of the removes' deletionTimestamp (default time.Now).
	Now func() time.Time
}

// OptimizeResult describes what Optimize did.
type OptimizeResult struct {
	// Versions are the versions committed, one per group, in order.
	Versions []int64
	// FilesConsidered are the active files of the selected partitions; Bins the groups of files
	// chosen to be rewritten together.
	FilesConsidered int
	Bins            int
	// What the committed groups removed and added.
	FilesRemoved, FilesAdded int64
	BytesRemoved, BytesAdded int64
	Rows                     int64
	// BinsDropped are the bins of groups that conflicted with a concurrent commit (Conflicts
	// holds one error per such group): their files were left as they were.
	BinsDropped int
	Conflicts   []error
}

// bin is a set of files of one partition rewritten together.
type bin struct {
	part  string
	pv    map[string]*string
	files []*txlog.Add
	bytes int64
	adds  []txlog.Add // written, not committed
	rows  int64
}

// Optimize compacts the small files of t into files near the target size, partition by
// partition, optionally clustering rows by Z-order, and commits the removes and adds with
// dataChange=false in groups (see OptimizeOptions.GroupBytes). It reads the files of one
// snapshot; before each group commits, the latest snapshot is read, and a group whose input
// files are no longer all active (a concurrent delete or optimize removed one) is dropped: its
// new files are deleted and its conflict recorded in the result, and the next group goes on.
// Concurrent blind appends never conflict. A change of the table's metadata or protocol stops
// Optimize with the conflict as its error; groups already committed stay committed.
func Optimize(ctx context.Context, t *table.Table, opts *OptimizeOptions) (*OptimizeResult, error) {
	o := OptimizeOptions{}
	if opts != nil {
		o = *opts
		o.Where = slices.Clone(o.Where)
		o.ZOrderBy = slices.Clone(o.ZOrderBy)
	}
	snap := o.Snapshot
	if snap == nil {
		s, err := t.Snapshot(ctx)
		if err != nil {
			return nil, err
		}
		snap = s
	}
	if err := snap.Protocol().CheckWrite(snap.Schema()); err != nil {
		return nil, err
	}
	if err := o.resolve(snap); err != nil {
		return nil, err
	}
	files, err := selectFiles(ctx, t, snap, o.Where)
	if err != nil {
		return nil, err
	}
	res := &OptimizeResult{FilesConsidered: len(files)}
	bins := planBins(files, &o)
	res.Bins = len(bins)
	op := &optimizer{t: t, snap: snap, read: snap, opts: &o, res: res}
	for _, g := range groupBins(bins, o.GroupBytes) {
		if err := op.runGroup(ctx, g); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (o *OptimizeOptions) resolve(snap *txlog.Snapshot) error {
	parts := map[string]bool{}
	for _, p := range snap.PartitionColumns() {
		parts[p] = true
	}
	for _, f := range o.Where {
		if !parts[f.Column] {
			return &OptionError{Option: "Where", Problem: fmt.Sprintf("%q is not a partition column (partition columns: %s); optimize selects whole partitions", f.Column, strings.Join(snap.PartitionColumns(), ", "))}
		}
	}
	if o.Purge && len(o.ZOrderBy) > 0 {
		return &OptionError{Option: "Purge", Problem: "purge and Z-order cannot be combined; run them one after the other"}
	}
	seen := map[string]bool{}
	for _, c := range o.ZOrderBy {
		f, ok := snap.Schema().Field(c)
		switch {
		case !ok:
			return &OptionError{Option: "ZOrderBy", Problem: fmt.Sprintf("unknown column %q", c)}
		case parts[c]:
			return &OptionError{Option: "ZOrderBy", Problem: fmt.Sprintf("%q is a partition column: rows are already grouped by it", c)}
		case seen[c]:
			return &OptionError{Option: "ZOrderBy", Problem: fmt.Sprintf("column %q is given twice", c)}
		case !zorderable(f.Type):
			return &OptionError{Option: "ZOrderBy", Problem: fmt.Sprintf("column %q of type %s cannot be clustered (want a string, binary, number, boolean, date or timestamp column)", c, f.Type.TypeName())}
		}
		seen[c] = true
	}
	if o.TargetSize == 0 {
		o.TargetSize = DefaultTargetSize
		if s := snap.Configuration()["delta.targetFileSize"]; s != "" {
			n, err := ParseSize(s)
			if err != nil {
				return &OptionError{Option: "TargetSize", Problem: fmt.Sprintf("table property delta.targetFileSize=%q: %v", s, err)}
			}
			o.TargetSize = n
		}
	}
	if o.MinFileSize == 0 {
		o.MinFileSize = o.TargetSize / 4 * 3
	}
	if o.MaxZOrderBytes == 0 {
		o.MaxZOrderBytes = DefaultMaxZOrderBytes
	}
	if o.GroupBytes == 0 {
		o.GroupBytes = DefaultGroupBytes
	}
	if o.Parallelism == 0 {
		o.Parallelism = DefaultParallelism
	}
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TargetSize < 0 || o.MinFileSize < 0 || o.MaxZOrderBytes < 0 || o.GroupBytes < 0 || o.Parallelism < 0 {
		return &OptionError{Option: "OptimizeOptions", Problem: "sizes and Parallelism must be positive"}
	}
	return nil
}

// ParseSize reads a size: a number of bytes, optionally with a binary unit (k, kb, m, mb, g,
// gb, any case): "128mb", "1g", "67108864".
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10}, {"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a positive number of bytes, optionally with a unit (128mb, 1g)")
	}
	return n * mult, nil
}

// selectFiles returns the active files of the partitions where selects, in path order.
func selectFiles(ctx context.Context, t *table.Table, snap *txlog.Snapshot, where []reader.Filter) ([]*txlog.Add, error) {
	if len(where) == 0 {
		return snap.Files(), nil
	}
	// Only partition filters: the scan's plan prunes by partition and never by statistics.
	sc, err := reader.NewScan(ctx, t, snap, &reader.ScanOptions{Columns: []string{}, Filters: where})
	if err != nil {
		return nil, err
	}
	return sc.Files(), nil
}

// partKey identifies a partition by its serialised values.
func partKey(pv map[string]*string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(pv)) {
		b.WriteString(k)
		if v := pv[k]; v != nil {
			b.WriteByte('=')
			b.WriteString(*v)
		}
		b.WriteByte(0)
	}
	return b.String()
}

// planBins packs the candidate files of each partition into bins: small files (all files with
// Z-order) in path order, a bin closed when the next file would take it past the target size
// (MaxZOrderBytes with Z-order). A bin of one file is left alone, since rewriting it gains
// nothing, except when purging deletion vectors.
func planBins(files []*txlog.Add, o *OptimizeOptions) []*bin {
	byPart := map[string][]*txlog.Add{}
	var order []string
	for _, a := range files {
		switch {
		case o.Purge:
			if a.DeletionVector == nil {
				continue
			}
		case len(o.ZOrderBy) == 0 && a.Size >= o.MinFileSize:
			continue
		}
		k := partKey(a.PartitionValues)
		if _, ok := byPart[k]; !ok {
			order = append(order, k)
		}
		byPart[k] = append(byPart[k], a)
	}
	limit := o.TargetSize
	if len(o.ZOrderBy) > 0 {
		limit = o.MaxZOrderBytes
	}
	var bins []*bin
	for _, k := range order {
		var cur *bin
		flush := func() {
			if cur != nil && (len(cur.files) > 1 || o.Purge) {
				bins = append(bins, cur)
			}
			cur = nil
		}
		for _, a := range byPart[k] {
			if cur != nil && cur.bytes+a.Size > limit {
				flush()
			}
			if cur == nil {
				cur = &bin{part: k, pv: a.PartitionValues}
			}
			cur.files = append(cur.files, a)
			cur.bytes += a.Size
		}
		flush()
	}
	return bins
}

// groupBins splits bins into commit groups of at most limit input bytes (at least one bin).
func groupBins(bins []*bin, limit int64) [][]*bin {
	var out [][]*bin
	var cur []*bin
	var n int64
	for _, b := range bins {
		if len(cur) > 0 && n+b.bytes > limit {
			out = append(out, cur)
			cur, n = nil, 0
		}
		cur = append(cur, b)
		n += b.bytes
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// tableChanged reports whether the protocol or the metadata differ between two snapshots of a
// table, and which.
func tableChanged(a, b *txlog.Snapshot) (txlog.ConflictKind, bool) {
	switch {
	case protocolChanged(a, b):
		return txlog.ConflictProtocolChanged, true
	case metadataChanged(a, b):
		return txlog.ConflictMetadataChanged, true
	}
	return "", false
}

func protocolChanged(a, b *txlog.Snapshot) bool {
	pa, pb := a.Protocol(), b.Protocol()
	return pa.MinReaderVersion != pb.MinReaderVersion || pa.MinWriterVersion != pb.MinWriterVersion ||
		!slices.Equal(pa.ReaderFeatures, pb.ReaderFeatures) || !slices.Equal(pa.WriterFeatures, pb.WriterFeatures)
}

// metadataChanged compares identity, schema, partitioning and properties.
func metadataChanged(a, b *txlog.Snapshot) bool {
	ma, mb := a.Metadata(), b.Metadata()
	return ma.ID != mb.ID || ma.SchemaString != mb.SchemaString || !slices.Equal(ma.PartitionColumns, mb.PartitionColumns) ||
		!maps.Equal(ma.Configuration, mb.Configuration)
}

// testHookBeforeCommit, set by tests, runs after a group's files are written and checked,
// right before its commit: a concurrent commit made there races the group's commit.
var testHookBeforeCommit func(bins []*bin)

type optimizer struct {
	t    *table.Table
	snap *txlog.Snapshot // the snapshot whose files are read
	read *txlog.Snapshot // the newest snapshot seen, which the next commit reads
	opts *OptimizeOptions
	res  *OptimizeResult
}

// runGroup rewrites the bins of one group in parallel and commits them as one version.
func (op *optimizer) runGroup(ctx context.Context, bins []*bin) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(op.opts.Parallelism)
	for _, b := range bins {
		g.Go(func() error { return op.rewrite(gctx, b) })
	}
	if err := g.Wait(); err != nil {
		op.discard(ctx, bins)
		return err
	}
	return op.commit(ctx, bins)
}

// discard deletes the files the bins wrote (best effort: no version references them).
func (op *optimizer) discard(ctx context.Context, bins []*bin) {
	ctx = context.WithoutCancel(ctx)
	for _, b := range bins {
		for _, a := range b.adds {
			_ = op.t.Bucket().Delete(ctx, partval.DecodeURIPath(a.Path))
		}
		b.adds = nil
	}
}

// rewrite reads the files of b and writes their rows as new files (not committed).
func (op *optimizer) rewrite(ctx context.Context, b *bin) (err error) {
	o := op.opts
	sc, err := reader.NewScan(ctx, op.t, op.snap, &reader.ScanOptions{Files: b.files, Allocator: o.Allocator, Concurrency: 2})
	if err != nil {
		return err
	}
	fw, err := writer.NewFileWriter(op.t.Bucket(), op.snap.Metadata(), op.snap.Protocol(), &writer.Options{
		TargetFileSize: o.TargetSize, Parallelism: 1, MaxOpenFiles: 1, Allocator: o.Allocator,
	})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = fw.Abort(context.WithoutCancel(ctx))
		}
	}()
	want, haveStats := liveRows(b.files)
	chunk := chunkRows(b.bytes, want, haveStats, o.TargetSize)
	var rows int64
	if len(o.ZOrderBy) > 0 {
		recs, err := sc.Collect(ctx)
		if err != nil {
			return err
		}
		rows, err = writeZOrdered(ctx, fw, recs, o.ZOrderBy, o.Allocator, chunk)
		for _, r := range recs {
			r.Release()
		}
		if err != nil {
			return err
		}
	} else {
		for rec, err := range sc.Records(ctx) {
			if err != nil {
				return err
			}
			if err := writeChunked(ctx, fw, rec, chunk); err != nil {
				return err
			}
			rows += rec.NumRows()
		}
	}
	adds, err := fw.Close(ctx)
	if err != nil {
		return err
	}
	// Every row read must be in the new files: compare with the statistics when all have them.
	if haveStats {
		if got, ok := statRows(adds); ok && (got != want || rows != want) {
			return fmt.Errorf("optimize: partition %s: the new files hold %d rows (%d read) where the old ones hold %d; nothing was committed", b.part, got, rows, want)
		}
	}
	for i := range adds {
		adds[i].DataChange = false
	}
	b.adds, b.rows = adds, rows
	return nil
}

// chunkRows is how many rows to hand the file writer at a time, so that it can finish a file
// close to the target size (it checks the size between the records it is given): about a
// quarter of the rows a target-size file holds, judged from the input's bytes per row.
func chunkRows(inBytes, rows int64, known bool, target int64) int64 {
	if !known || rows <= 0 {
		return 64 << 10
	}
	perRow := max(1, inBytes/rows)
	return min(max(target/perRow/4, 256), 64<<10)
}

// writeChunked writes rec in slices of at most chunk rows.
func writeChunked(ctx context.Context, fw *writer.FileWriter, rec arrow.RecordBatch, chunk int64) error {
	n := rec.NumRows()
	if n <= chunk {
		return fw.Write(ctx, rec)
	}
	for off := int64(0); off < n; off += chunk {
		s := rec.NewSlice(off, min(off+chunk, n))
		err := fw.Write(ctx, s)
		s.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// writeZOrdered sorts the rows of recs by their Z-order value over cols and writes them.
func writeZOrdered(ctx context.Context, fw *writer.FileWriter, recs []arrow.RecordBatch, cols []string, mem memory.Allocator, chunk int64) (int64, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	sorted, err := zorderSort(ctx, recs, cols, mem)
	if err != nil {
		return 0, err
	}
	defer sorted.Release()
	return sorted.NumRows(), writeChunked(ctx, fw, sorted, chunk)
}

// liveRows is the number of rows the files hold (numRecords minus deletion vectors), and
// whether every file has statistics.
func liveRows(files []*txlog.Add) (int64, bool) {
	var n int64
	for _, a := range files {
		r, ok := a.LiveRecords()
		if !ok {
			return 0, false
		}
		n += r
	}
	return n, true
}

func statRows(adds []txlog.Add) (int64, bool) {
	var n int64
	for _, a := range adds {
		r, ok := a.NumRecords()
		if !ok {
			return 0, false
		}
		n += r
	}
	return n, true
}

// commit commits the rewritten bins of one group. Bins whose input files are no longer all
// active in the latest snapshot are dropped first; a conflict found by the commit itself drops
// the group. Either way the group's new files are deleted and the conflict recorded.
func (op *optimizer) commit(ctx context.Context, bins []*bin) error {
	latest, err := op.t.Update(ctx, op.read)
	if err != nil {
		op.discard(ctx, bins)
		return err
	}
	if kind, changed := tableChanged(op.snap, latest); changed {
		op.discard(ctx, bins)
		return fmt.Errorf("optimize stopped: %w", &txlog.ConflictError{Version: latest.Version(), Kind: kind})
	}
	op.read = latest
	active := make(map[string]bool, latest.NumFiles())
	latest.AllFiles(func(a *txlog.Add) bool {
		active[txlog.FileKey(a.Path, a.DeletionVector)] = true
		return true
	})
	var keep, gone []*bin
	var missing []string
	for _, b := range bins {
		ok := true
		for _, a := range b.files {
			if !active[txlog.FileKey(a.Path, a.DeletionVector)] {
				ok = false
				missing = append(missing, a.Path)
			}
		}
		if ok {
			keep = append(keep, b)
		} else {
			gone = append(gone, b)
		}
	}
	if len(gone) > 0 {
		op.discard(ctx, gone)
		op.res.BinsDropped += len(gone)
		slices.Sort(missing)
		op.res.Conflicts = append(op.res.Conflicts, &txlog.ConflictError{Version: latest.Version(), Kind: txlog.ConflictDeleteDelete, Paths: missing})
	}
	if len(keep) == 0 {
		return nil
	}

	now := op.opts.Now().UnixMilli()
	var acts []txlog.Action
	var removed, added, rbytes, abytes, rows int64
	minSize, maxSize := int64(-1), int64(0)
	for _, b := range keep {
		for _, a := range b.files {
			size := a.Size
			ext := true
			acts = append(acts, txlog.Action{Remove: &txlog.Remove{
				Path: a.Path, DeletionTimestamp: &now, DataChange: false, ExtendedFileMetadata: &ext,
				PartitionValues: a.PartitionValues, Size: &size, Stats: a.Stats, Tags: a.Tags,
				DeletionVector: a.DeletionVector, BaseRowID: a.BaseRowID,
				DefaultRowCommitVersion: a.DefaultRowCommitVersion,
			}})
			removed++
			rbytes += a.Size
		}
		for i := range b.adds {
			acts = append(acts, txlog.Action{Add: &b.adds[i]})
			added++
			abytes += b.adds[i].Size
			if minSize < 0 || b.adds[i].Size < minSize {
				minSize = b.adds[i].Size
			}
			maxSize = max(maxSize, b.adds[i].Size)
		}
		rows += b.rows
	}
	parts := map[string]bool{}
	for _, b := range keep {
		parts[b.part] = true
	}
	operation := "OPTIMIZE"
	if op.opts.Purge {
		operation = "REORG"
	}
	txn := op.t.Log().NewTransaction(latest, &txlog.TxnOptions{
		Operation:           operation,
		OperationParameters: op.parameters(),
		OperationMetrics: map[string]any{
			"numRemovedFiles":     strconv.FormatInt(removed, 10),
			"numAddedFiles":       strconv.FormatInt(added, 10),
			"numRemovedBytes":     strconv.FormatInt(rbytes, 10),
			"numAddedBytes":       strconv.FormatInt(abytes, 10),
			"minFileSize":         strconv.FormatInt(max(minSize, 0), 10),
			"maxFileSize":         strconv.FormatInt(maxSize, 10),
			"numBatches":          "1",
			"numBins":             strconv.Itoa(len(keep)),
			"partitionsOptimized": strconv.Itoa(len(parts)),
			"numOutputRows":       strconv.FormatInt(rows, 10),
		},
	})
	txn.AddActions(acts...)
	if testHookBeforeCommit != nil {
		testHookBeforeCommit(keep)
	}
	v, err := txn.Commit(ctx)
	if err != nil {
		var unknown *txlog.CommitUnknownError
		if errors.As(err, &unknown) {
			return err // the commit may have landed: its files must stay
		}
		op.discard(ctx, keep)
		var ce *txlog.ConflictError
		if errors.As(err, &ce) && !ce.Retryable() && ce.Kind != txlog.ConflictMetadataChanged && ce.Kind != txlog.ConflictProtocolChanged {
			op.res.BinsDropped += len(keep)
			op.res.Conflicts = append(op.res.Conflicts, err)
			return nil
		}
		return err
	}
	op.res.Versions = append(op.res.Versions, v)
	op.res.FilesRemoved += removed
	op.res.FilesAdded += added
	op.res.BytesRemoved += rbytes
	op.res.BytesAdded += abytes
	op.res.Rows += rows
	return nil
}

// parameters are Spark's OPTIMIZE operationParameters: JSON arrays as strings.
func (op *optimizer) parameters() map[string]any {
	preds := make([]string, len(op.opts.Where))
	for i, f := range op.opts.Where {
		preds[i] = f.String()
	}
	p, _ := json.Marshal(preds)
	z, _ := json.Marshal(op.opts.ZOrderBy)
	if op.opts.ZOrderBy == nil {
		z = []byte("[]")
	}
	if op.opts.Purge {
		return map[string]any{"predicate": string(p), "applyPurge": true}
	}
	return map[string]any{"predicate": string(p), "zOrderBy": string(z), "auto": false, "targetSize": strconv.FormatInt(op.opts.TargetSize, 10)}
}
