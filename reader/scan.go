package reader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/internal/partval"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// ErrUnknownColumn is matched by the error for a projection that names a column the table
// does not have.
var ErrUnknownColumn = errors.New("unknown column")

// ScanOptions configure a scan. A nil *ScanOptions is the defaults; Scan copies the options.
type ScanOptions struct {
	// Columns is the projection: logical column names, returned in the order given. nil means
	// every column in the schema's order; an empty non-nil slice means no columns (batches
	// that only carry row counts).
	Columns []string
	// Filters are ANDed. See Filter for their semantics.
	Filters []Filter
	// Limit stops the scan after this many rows; 0 means no limit.
	Limit int64
	// Concurrency is the number of files read at once. 0 means min(4, max(2, GOMAXPROCS)).
	Concurrency int
	// Allocator allocates every buffer of the returned records. nil means
	// memory.DefaultAllocator.
	Allocator memory.Allocator
	// BatchSize is the number of rows per record read from a data file (fewer after filtering
	// or at the end of a row group). 0 means 64Ki.
	BatchSize int64
	// Files, when not nil, restricts the scan to these files of the snapshot (read in the order
	// given) instead of all its active files; pruning and skipping still apply. Compaction
	// reads the files of one bin this way.
	Files []*txlog.Add
}

// DefaultBatchSize is the rows per batch when ScanOptions.BatchSize is 0.
const DefaultBatchSize = 64 << 10

func (o *ScanOptions) withDefaults() (ScanOptions, error) {
	var c ScanOptions
	if o != nil {
		c = *o
		c.Columns = slices.Clone(o.Columns)
		if o.Columns != nil && c.Columns == nil {
			c.Columns = []string{}
		}
		c.Filters = slices.Clone(o.Filters)
		if o.Files != nil {
			c.Files = slices.Clone(o.Files)
		}
	}
	switch {
	case c.Limit < 0:
		return c, fmt.Errorf("scan: negative limit %d", c.Limit)
	case c.Concurrency < 0:
		return c, fmt.Errorf("scan: negative concurrency %d", c.Concurrency)
	case c.BatchSize < 0:
		return c, fmt.Errorf("scan: negative batch size %d", c.BatchSize)
	}
	if c.Concurrency == 0 {
		c.Concurrency = min(4, max(2, runtime.GOMAXPROCS(0)))
	}
	if c.Allocator == nil {
		c.Allocator = memory.DefaultAllocator
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	return c, nil
}

// Metrics count what a scan did. Planning (Scan) fills the file counts that need no I/O;
// iterating Records adds the rest. Counts accumulate over every iteration of the Scan.
type Metrics struct {
	FilesConsidered        int64 // active files in the snapshot
	FilesPrunedByPartition int64 // not read: partition values fail a filter
	FilesSkippedByStats    int64 // not read: add.stats prove no row matches
	FilesRead              int64 // data files opened
	RowGroupsRead          int64
	RowGroupsSkipped       int64 // by Parquet column statistics, or a filtered column absent from the file
	RowsRead               int64 // rows decoded from data files
	RowsDeleted            int64 // dropped by deletion vectors
	RowsFiltered           int64 // dropped by the exact filter
	RowsReturned           int64 // rows yielded to the caller
	BytesRead              int64 // bytes fetched from storage: data files and deletion vectors
	DeletionVectorsRead    int64
}

type metrics struct {
	filesConsidered, filesPruned, filesSkipped, filesRead atomic.Int64
	rgRead, rgSkipped                                     atomic.Int64
	rowsRead, rowsDeleted, rowsFiltered, rowsReturned     atomic.Int64
	bytesRead, dvsRead                                    atomic.Int64
}

// column is a column the scan reads: projected, or needed by a filter.
type column struct {
	field     txlog.StructField
	arrow     arrow.DataType
	ct        colType
	partition bool
	key       string // the partition values key (physical name under column mapping)
	output    bool
}

// fileTask is one data file to read.
type fileTask struct {
	add    *txlog.Add
	path   string       // add.path URL-decoded, for messages
	key    string       // bucket key
	bucket *blob.Bucket // the bucket of key: the table's, or a shallow clone's source
	part   []value      // by column index, for partition columns
}

// rowFilter is a filter tested on rows: its column is not a partition column.
type rowFilter struct {
	*boundFilter
	col int // index in Scan.cols
}

// Scan is a planned scan of one snapshot. Create it with NewScan.
type Scan struct {
	bucket  *blob.Bucket
	res     resolver
	foreign *foreignSource // a shallow clone's source, nil for other tables
	snap    *txlog.Snapshot
	opts    ScanOptions
	mode    mappingMode

	cols    []*column
	out     []int // indices in cols of the projection, in order
	schema  *arrow.Schema
	filters []rowFilter
	files   []*fileTask

	m metrics
}

// NewScan plans a scan of snap, a snapshot of t: it resolves the projection, binds the filters
// to the schema (a *FilterError when one does not fit), checks that the reader can honour the
// table's features, and prunes files by partition values and statistics. It reads nothing but
// the snapshot.
func NewScan(ctx context.Context, t *table.Table, snap *txlog.Snapshot, opts *ScanOptions) (*Scan, error) {
	if t == nil || snap == nil {
		return nil, errors.New("scan: nil table or snapshot")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Scan{
		bucket:  t.Bucket(),
		res:     resolver{bucket: t.Bucket(), uri: t.URI(), localDir: t.LocalDir()},
		foreign: newForeignSource(snap.Configuration()[ShallowSourceProperty]),
		snap:    snap,
		opts:    o,
	}
	if err := s.plan(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Schema is the schema of the records: the projected columns with their logical names and
// Arrow types (internal/deltaarrow).
func (s *Scan) Schema() *arrow.Schema { return s.schema }

// Metrics returns the counts so far.
func (s *Scan) Metrics() Metrics {
	return Metrics{
		FilesConsidered:        s.m.filesConsidered.Load(),
		FilesPrunedByPartition: s.m.filesPruned.Load(),
		FilesSkippedByStats:    s.m.filesSkipped.Load(),
		FilesRead:              s.m.filesRead.Load(),
		RowGroupsRead:          s.m.rgRead.Load(),
		RowGroupsSkipped:       s.m.rgSkipped.Load(),
		RowsRead:               s.m.rowsRead.Load(),
		RowsDeleted:            s.m.rowsDeleted.Load(),
		RowsFiltered:           s.m.rowsFiltered.Load(),
		RowsReturned:           s.m.rowsReturned.Load(),
		BytesRead:              s.m.bytesRead.Load(),
		DeletionVectorsRead:    s.m.dvsRead.Load(),
	}
}

// NumFiles is the number of data files the scan will read (after pruning and skipping).
func (s *Scan) NumFiles() int { return len(s.files) }

// Files returns the add actions of the data files the scan will read (after pruning and
// skipping), in the order they are read. The actions are the snapshot's: do not modify them.
func (s *Scan) Files() []*txlog.Add {
	out := make([]*txlog.Add, len(s.files))
	for i, f := range s.files {
		out[i] = f.add
	}
	return out
}

func (s *Scan) plan(ctx context.Context) error {
	proto := s.snap.Protocol()
	if err := proto.CheckRead(); err != nil {
		return err
	}
	if proto.HasReaderFeature("columnMapping") {
		switch m := s.snap.Configuration()["delta.columnMapping.mode"]; m {
		case "", "none":
		case "name":
			s.mode = mapName
		case "id":
			s.mode = mapID
		default:
			return unsupported(fmt.Sprintf("column mapping mode %q", m), "")
		}
	}
	schema := s.snap.Schema()
	if schema == nil {
		return errors.New("scan: the snapshot has no schema")
	}
	if err := checkTypeChanges(schema); err != nil {
		return err
	}
	parts := map[string]bool{}
	for _, p := range s.snap.PartitionColumns() {
		if _, ok := schema.Field(p); !ok {
			return fmt.Errorf("scan: partition column %q is not in the table's schema", p)
		}
		parts[p] = true
	}

	// The projection.
	names := s.opts.Columns
	if names == nil {
		for _, f := range schema.Fields {
			names = append(names, f.Name)
		}
	}
	index := map[string]int{}
	addCol := func(f txlog.StructField) (int, error) {
		if i, ok := index[f.Name]; ok {
			return i, nil
		}
		at, err := deltaarrow.Type(f.Type)
		if err != nil {
			return 0, unsupported("type "+f.Type.TypeName(), fmt.Sprintf("column %q", f.Name))
		}
		c := &column{field: f, arrow: at, ct: typeOf(f.Type), partition: parts[f.Name], key: f.Name}
		if s.mode != mapNone {
			c.key = f.PhysicalName()
		}
		s.cols = append(s.cols, c)
		index[f.Name] = len(s.cols) - 1
		return len(s.cols) - 1, nil
	}
	var fields []arrow.Field
	for _, n := range names {
		f, ok := schema.Field(n)
		if !ok {
			return fmt.Errorf("scan: %w %q (columns: %s)", ErrUnknownColumn, n, strings.Join(fieldNames(schema), ", "))
		}
		if _, dup := index[n]; dup {
			return fmt.Errorf("scan: column %q is projected twice", n)
		}
		i, err := addCol(f)
		if err != nil {
			return err
		}
		s.cols[i].output = true
		s.out = append(s.out, i)
		fields = append(fields, arrow.Field{Name: f.Name, Type: s.cols[i].arrow, Nullable: f.Nullable})
	}
	// Columns of nested types may carry types the reader cannot return (variant): refuse them
	// even when not projected, so a table is never half readable by accident.
	for _, f := range schema.Fields {
		if _, err := deltaarrow.Type(f.Type); err != nil {
			return unsupported("type "+f.Type.TypeName(), fmt.Sprintf("column %q", f.Name))
		}
	}
	s.schema = arrow.NewSchema(fields, nil)

	// The filters.
	var partFilters []rowFilter
	for _, f := range s.opts.Filters {
		bf, err := bindFilter(f, schema)
		if err != nil {
			return err
		}
		i, err := addCol(bf.path[0])
		if err != nil {
			return err
		}
		rf := rowFilter{boundFilter: bf, col: i}
		if s.cols[i].partition && len(bf.path) == 1 {
			partFilters = append(partFilters, rf)
		} else {
			s.filters = append(s.filters, rf)
		}
	}

	// The files.
	files := s.opts.Files
	if files == nil {
		files = s.snap.Files()
	}
	for _, add := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.m.filesConsidered.Add(1)
		ft := &fileTask{add: add, path: add.Path}
		b, key, err := s.resolve(ctx, add.Path)
		if err != nil {
			return &FileError{Path: add.Path, Err: err}
		}
		ft.bucket, ft.key, ft.path = b, key, key
		ft.part = make([]value, len(s.cols))
		for i, c := range s.cols {
			if !c.partition {
				continue
			}
			raw, ok := add.PartitionValues[c.key]
			if !ok {
				raw = add.PartitionValues[c.field.Name]
			}
			gv, err := partval.Parse(raw, c.field.Type)
			if err != nil {
				return &FileError{Path: ft.path, Err: fmt.Errorf("partition column %q: %w", c.field.Name, err)}
			}
			v, err := c.ct.fromGo(gv)
			if err != nil {
				return &FileError{Path: ft.path, Err: fmt.Errorf("partition column %q: %w", c.field.Name, err)}
			}
			ft.part[i] = v
		}
		pruned := false
		for _, pf := range partFilters {
			if !pf.match(ft.part[pf.col]) {
				pruned = true
				break
			}
		}
		if pruned {
			s.m.filesPruned.Add(1)
			continue
		}
		if len(s.filters) > 0 && !s.statsMayMatch(add.Stats) {
			s.m.filesSkipped.Add(1)
			continue
		}
		s.files = append(s.files, ft)
	}
	return nil
}

func fieldNames(s *txlog.StructType) []string {
	out := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		out[i] = f.Name
	}
	return out
}

// fileStats is the part of add.stats file skipping uses.
type fileStats struct {
	NumRecords *int64                     `json:"numRecords"`
	MinValues  map[string]json.RawMessage `json:"minValues"`
	MaxValues  map[string]json.RawMessage `json:"maxValues"`
	NullCount  map[string]json.RawMessage `json:"nullCount"`
}

// statsMayMatch reports whether a file with these statistics may hold a row matching every
// row filter. Statistics that are missing or unreadable never skip.
func (s *Scan) statsMayMatch(stats string) bool {
	var st fileStats
	if stats != "" && json.Unmarshal([]byte(stats), &st) != nil {
		st = fileStats{} // unreadable statistics: only filters that never match skip
	}
	for _, f := range s.filters {
		keys := make([]string, len(f.path))
		for i, p := range f.path {
			keys[i] = p.Name
			if s.mode != mapNone {
				keys[i] = p.PhysicalName()
			}
		}
		ct := f.ct
		var b bounds
		if raw, ok := lookupStat(st.MinValues, keys); ok {
			b.min, b.hasMin = ct.statBound(raw, false)
		}
		if raw, ok := lookupStat(st.MaxValues, keys); ok {
			b.max, b.hasMax = ct.statBound(raw, true)
			b.maxPrefix = ct.kind == kString
		}
		if ct.kind == kFloat && !ct.float32 && widenedFromFloat(f.field()) {
			loosenFloat32Bounds(&b)
		}
		if raw, ok := lookupStat(st.NullCount, keys); ok && st.NumRecords != nil {
			var n int64
			if json.Unmarshal(raw, &n) == nil {
				b.allNull = n == *st.NumRecords && n > 0
				b.noNull = n == 0
			}
		}
		if !f.mayMatch(&b) {
			return false
		}
	}
	return true
}

// lookupStat finds the statistic of a (nested) column: stats mirror the schema's structs.
func lookupStat(m map[string]json.RawMessage, keys []string) (json.RawMessage, bool) {
	raw, ok := m[keys[0]]
	for _, k := range keys[1:] {
		if !ok {
			return nil, false
		}
		var sub map[string]json.RawMessage
		if json.Unmarshal(raw, &sub) != nil {
			return nil, false
		}
		raw, ok = sub[k]
	}
	return raw, ok
}

// Records returns the scan's rows as a stream of record batches with Schema(): files in the
// snapshot's path order, rows of a file in file order.
//
// The iterator owns each record: it releases it after the loop body returns, so a caller that
// keeps one must Retain it (and later Release it). Breaking out of the loop stops the readers and
// releases everything buffered before the iterator returns. An error ends the stream: it is
// yielded once with a nil record, after every row of the files before the failing one (so what
// was yielded is deterministic). Cancelling ctx ends the stream with ctx's error.
func (s *Scan) Records(ctx context.Context) iter.Seq2[arrow.RecordBatch, error] {
	return func(yield func(arrow.RecordBatch, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		// Workers never fail the group: each records its file's error, which the consumer
		// reports when it reaches that file, so the rows before an error are always the
		// complete files before it.
		var g errgroup.Group
		g.SetLimit(s.opts.Concurrency)

		const perFile = 2 // batches buffered per file in flight
		chans := make([]chan arrow.RecordBatch, len(s.files))
		errs := make([]error, len(s.files))
		for i := range chans {
			chans[i] = make(chan arrow.RecordBatch, perFile)
		}
		launched := make(chan struct{})
		go func() {
			defer close(launched)
			for i, f := range s.files {
				ch := chans[i]
				if err := ctx.Err(); err != nil {
					errs[i] = err
					close(ch)
					continue
				}
				g.Go(func() error {
					defer close(ch)
					errs[i] = s.readFile(ctx, f, func(rec arrow.RecordBatch) error {
						select {
						case ch <- rec:
							return nil
						case <-ctx.Done():
							rec.Release()
							return ctx.Err()
						}
					})
					return nil
				})
			}
		}()
		finished := false
		finish := func() {
			if finished {
				return
			}
			finished = true
			cancel()
			<-launched
			_ = g.Wait()
			for _, ch := range chans {
				for rec := range ch {
					rec.Release()
				}
			}
		}
		defer finish()

		remaining := s.opts.Limit
		for i, ch := range chans {
			for rec := range ch {
				n := rec.NumRows()
				if s.opts.Limit > 0 && n >= remaining {
					if n > remaining {
						cut := rec.NewSlice(0, remaining)
						rec.Release()
						rec = cut
					}
					s.m.rowsReturned.Add(rec.NumRows())
					yield(rec, nil)
					rec.Release()
					return
				}
				remaining -= n
				s.m.rowsReturned.Add(n)
				ok := yield(rec, nil)
				rec.Release()
				if !ok {
					return
				}
			}
			if err := errs[i]; err != nil {
				finish()
				yield(nil, err)
				return
			}
		}
	}
}

// Collect reads every record of the scan into memory (retained: the caller releases them).
func (s *Scan) Collect(ctx context.Context) ([]arrow.RecordBatch, error) {
	var out []arrow.RecordBatch
	for rec, err := range s.Records(ctx) {
		if err != nil {
			for _, r := range out {
				r.Release()
			}
			return nil, err
		}
		rec.Retain()
		out = append(out, rec)
	}
	return out, nil
}
