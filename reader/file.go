package reader

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/compute/exec"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/lakehouse/lake/internal/pqdecode"
	"github.com/lakehouse/lake/txlog"
)

// source says where a column of a batch comes from in one data file.
type source uint8

const (
	srcPartition source = iota // a constant: the file's partition value
	srcMissing                 // not in the file: nulls
	srcArrow                   // read by pqdecode (flat columns it supports) or pqarrow
	srcInt96                   // a top-level INT96 timestamp, decoded here (full year range)
)

type colSource struct {
	kind  source
	fi    int                 // srcArrow: the file's top-level field index
	leaf  int                 // srcInt96: the Parquet leaf column
	field pqarrow.SchemaField // srcArrow, srcInt96: the file's top-level field
}

// readFile reads one data file and sends its batches, filtered and with deleted rows dropped.
func (s *Scan) readFile(ctx context.Context, f *fileTask, send func(arrow.RecordBatch) error) error {
	if err := s.readFileErr(ctx, f, send); err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return err
		}
		var fe *FileError
		if errors.As(err, &fe) {
			return err
		}
		return &FileError{Path: f.path, Err: err}
	}
	return nil
}

func (s *Scan) readFileErr(ctx context.Context, f *fileTask, send func(arrow.RecordBatch) error) error {
	mem := s.opts.Allocator
	s.m.filesRead.Add(1)

	var dv *roaring64.Bitmap
	if d := f.add.DeletionVector; d != nil {
		bm, where, err := loadDV(ctx, d, func(ctx context.Context, key string, absolute bool, off, n int64) ([]byte, error) {
			b := s.bucket
			if absolute {
				fb, k, err := s.resolve(ctx, key)
				if err != nil {
					return nil, err
				}
				b, key = fb, k
			}
			return readRange(ctx, b, key, off, n, &s.m.bytesRead)
		})
		if err != nil {
			var uf *UnsupportedError
			if errors.As(err, &uf) {
				return err
			}
			return fmt.Errorf("deletion vector %s: %w", where, err)
		}
		s.m.dvsRead.Add(1)
		dv = bm
	}

	bucket := f.bucket
	if bucket == nil {
		bucket = s.bucket
	}
	ra, _, err := openObject(ctx, bucket, f.key, f.add.Size, &s.m.bytesRead)
	if err != nil {
		return err
	}
	props := parquet.NewReaderProperties(mem)
	pf, err := file.NewParquetReader(ra, file.WithReadProps(props))
	if err != nil {
		return fmt.Errorf("not a readable Parquet file (truncated or corrupt?): %w", err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: s.opts.BatchSize}, mem)
	if err != nil {
		return fmt.Errorf("reading the Parquet schema: %w", err)
	}
	md := pf.MetaData()
	pschema := md.Schema

	// Where each column comes from.
	topFields := make([]arrow.Field, len(fr.Manifest.Fields))
	hasIDs := false
	for i, sf := range fr.Manifest.Fields {
		topFields[i] = *sf.Field
		if fieldID(topFields[i]) >= 0 {
			hasIDs = true
		}
	}
	if s.mode == mapID && !hasIDs && len(topFields) > 0 {
		return unsupported("column mapping mode id on a data file without Parquet field ids", "")
	}
	srcs := make([]colSource, len(s.cols))
	for i, c := range s.cols {
		if c.partition {
			srcs[i] = colSource{kind: srcPartition}
			continue
		}
		fi := matchField(s.mode, topFields, c.field)
		if fi < 0 {
			if !c.field.Nullable {
				return fmt.Errorf("column %q is not nullable but the file does not have it (the file does not match the table's schema)", c.field.Name)
			}
			srcs[i] = colSource{kind: srcMissing}
			continue
		}
		sf := fr.Manifest.Fields[fi]
		if sf.IsLeaf() && pschema.Column(sf.ColIndex).PhysicalType() == parquet.Types.Int96 {
			if _, ok := c.arrow.(*arrow.TimestampType); !ok {
				return fmt.Errorf("column %q: the file stores an INT96 timestamp, the table's type is %s", c.field.Name, c.field.Type.TypeName())
			}
			srcs[i] = colSource{kind: srcInt96, leaf: sf.ColIndex, field: sf}
			continue
		}
		srcs[i] = colSource{kind: srcArrow, fi: fi, field: sf}
	}

	// A filter on a column the file does not have matches no row (nulls never match).
	for _, rf := range s.filters {
		if srcs[rf.col].kind == srcMissing {
			s.m.rgSkipped.Add(int64(md.NumRowGroups()))
			return nil
		}
	}

	cctx := exec.WithAllocator(ctx, mem)
	conv := &converter{ctx: cctx, mem: mem, mode: s.mode}
	b := &batcher{s: s, f: f, conv: conv, cctx: cctx, srcs: srcs, dv: dv, send: send,
		int96: make([]*array.Timestamp, len(srcs)), fast: make([]arrow.Array, len(srcs)), pos: make([]int, len(srcs))}
	defer b.release()
	rowStart := int64(0)
	for rg := 0; rg < md.NumRowGroups(); rg++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		rgmd := md.RowGroup(rg)
		nrows := rgmd.NumRows()
		start := rowStart
		rowStart += nrows
		if nrows == 0 {
			continue
		}
		if !s.rowGroupMayMatch(rgmd, pschema, srcs) {
			s.m.rgSkipped.Add(1)
			continue
		}
		if dv != nil && dvCoversRange(dv, start, nrows) {
			s.m.rgSkipped.Add(1)
			s.m.rowsDeleted.Add(nrows)
			continue
		}
		s.m.rgRead.Add(1)
		// INT96 columns are decoded for the whole row group, then sliced per batch.
		for i, src := range srcs {
			if src.kind != srcInt96 {
				continue
			}
			arr, err := readInt96(pf, rg, src.leaf, s.cols[i].arrow.(*arrow.TimestampType), mem)
			if err != nil {
				return fmt.Errorf("column %q: %w", s.cols[i].field.Name, err)
			}
			b.int96[i] = arr
		}
		// Flat columns pqdecode supports are decoded whole, straight into Arrow buffers; the
		// rest go through pqarrow's record reader. The split is per row group: encodings may
		// differ between row groups.
		leaves, err := b.splitRowGroup(pf, rg)
		if err != nil {
			return err
		}
		if len(leaves) == 0 {
			for off := int64(0); off < nrows; off += s.opts.BatchSize {
				n := min(s.opts.BatchSize, nrows-off)
				if err := b.emit(ctx, nil, start, off, n); err != nil {
					return err
				}
			}
			b.release()
			continue
		}
		rr, err := fr.GetRecordReader(ctx, leaves, []int{rg})
		if err != nil {
			return fmt.Errorf("row group %d: %w", rg, err)
		}
		off := int64(0)
		for rr.Next() {
			rec := rr.RecordBatch()
			n := rec.NumRows()
			if err := b.emit(ctx, rec, start, off, n); err != nil {
				rr.Release()
				return err
			}
			off += n
		}
		err = rr.Err()
		rr.Release()
		b.release()
		if err != nil {
			return fmt.Errorf("row group %d: %w", rg, err)
		}
		if off != nrows {
			return fmt.Errorf("row group %d: read %d rows, the footer says %d", rg, off, nrows)
		}
	}
	return nil
}

// leafIndex is the Parquet leaf column of the struct field path below sf, or -1 when the file
// has no such primitive leaf.
func leafIndex(mode mappingMode, sf pqarrow.SchemaField, path []txlog.StructField) int {
	for _, p := range path {
		if sf.IsLeaf() || sf.Field.Type.ID() != arrow.STRUCT {
			return -1
		}
		fields := make([]arrow.Field, len(sf.Children))
		for i := range sf.Children {
			fields[i] = *sf.Children[i].Field
		}
		k := matchField(mode, fields, p)
		if k < 0 {
			return -1
		}
		sf = sf.Children[k]
	}
	if !sf.IsLeaf() {
		return -1
	}
	return sf.ColIndex
}

// appendLeaves appends the Parquet leaf column indexes under a pqarrow schema field.
func appendLeaves(dst []int, sf *pqarrow.SchemaField) []int {
	if sf.IsLeaf() {
		return append(dst, sf.ColIndex)
	}
	for i := range sf.Children {
		dst = appendLeaves(dst, &sf.Children[i])
	}
	return dst
}

// dvCoversRange reports whether every row in [start, start+n) is deleted.
func dvCoversRange(dv *roaring64.Bitmap, start, n int64) bool {
	if dv.IsEmpty() || uint64(n) > dv.GetCardinality() {
		return false
	}
	return dv.Rank(uint64(start+n-1))-rankBefore(dv, uint64(start)) == uint64(n)
}

func rankBefore(dv *roaring64.Bitmap, x uint64) uint64 {
	if x == 0 {
		return 0
	}
	return dv.Rank(x - 1)
}

// batcher turns the batches of one row group into output records.
type batcher struct {
	s     *Scan
	f     *fileTask
	conv  *converter
	cctx  context.Context
	srcs  []colSource
	dv    *roaring64.Bitmap
	int96 []*array.Timestamp
	fast  []arrow.Array // srcArrow columns pqdecode read, for the whole row group
	pos   []int         // other srcArrow columns: position in the record reader's schema
	send  func(arrow.RecordBatch) error
	keep  []bool
}

func (b *batcher) release() {
	for i, a := range b.int96 {
		if a != nil {
			a.Release()
			b.int96[i] = nil
		}
	}
	for i, a := range b.fast {
		if a != nil {
			a.Release()
			b.fast[i] = nil
		}
	}
}

// splitRowGroup decodes the row group's pqdecode-supported columns into b.fast and returns the
// Parquet leaves left for pqarrow, setting b.pos to each remaining column's position in the
// record reader's schema.
func (b *batcher) splitRowGroup(pf *file.Reader, rg int) ([]int, error) {
	var leaves []int
	posOf := map[int]int{} // file field index -> position in the record reader's schema
	for i, src := range b.srcs {
		if src.kind != srcArrow || (!b.s.cols[i].output && !b.filtered(i)) {
			continue
		}
		arr, err := pqdecode.ReadField(pf, rg, src.fi, src.field.Field.Type, b.s.opts.Allocator)
		switch {
		case errors.Is(err, pqdecode.ErrUnsupported) || errors.Is(err, pqdecode.ErrTooLarge) ||
			errors.Is(err, pqdecode.ErrStreamingPage):
			// pqarrow reads it (in batches).
		case err != nil:
			return nil, fmt.Errorf("row group %d, column %q: %w", rg, b.s.cols[i].field.Name, err)
		default:
			b.fast[i] = arr
			if want := pf.MetaData().RowGroup(rg).NumRows(); int64(arr.Len()) != want {
				return nil, fmt.Errorf("row group %d, column %q: read %d rows, the footer says %d", rg, b.s.cols[i].field.Name, arr.Len(), want)
			}
			continue
		}
		p, ok := posOf[src.fi]
		if !ok {
			p = len(posOf)
			posOf[src.fi] = p
			leaves = appendLeaves(leaves, &src.field)
		}
		b.pos[i] = p
	}
	return leaves, nil
}

// emit builds the columns of rows [off, off+n) of a row group starting at file row start,
// drops deleted and non-matching rows and sends the result. rec holds the pqarrow columns.
func (b *batcher) emit(ctx context.Context, rec arrow.RecordBatch, start, off, n int64) error {
	s := b.s
	mem := s.opts.Allocator
	s.m.rowsRead.Add(n)
	cols := make([]arrow.Array, len(s.cols))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, c := range s.cols {
		if !c.output && !b.filtered(i) {
			continue
		}
		switch src := b.srcs[i]; src.kind {
		case srcPartition:
			a, err := constArray(mem, c.arrow, b.f.part[i], int(n))
			if err != nil {
				return fmt.Errorf("partition column %q: %w", c.field.Name, err)
			}
			cols[i] = a
		case srcMissing:
			cols[i] = array.MakeArrayOfNull(mem, c.arrow, int(n))
		case srcInt96:
			cols[i] = array.NewSlice(b.int96[i], off, off+n)
		case srcArrow:
			var col arrow.Array
			if f := b.fast[i]; f != nil {
				col = array.NewSlice(f, off, off+n)
				defer col.Release()
			} else {
				col = rec.Column(b.pos[i])
			}
			a, err := b.conv.convert(col, c.field.Type, c.arrow, c.field.Name)
			if err != nil {
				return err
			}
			cols[i] = a
		}
	}

	// The rows to keep.
	var keep []bool
	if b.dv != nil || len(s.filters) > 0 {
		if cap(b.keep) < int(n) {
			b.keep = make([]bool, n)
		}
		keep = b.keep[:n]
		for i := range keep {
			keep[i] = true
		}
		if b.dv != nil {
			base := uint64(start + off)
			it := b.dv.Iterator()
			it.AdvanceIfNeeded(base)
			deleted := int64(0)
			for it.HasNext() {
				x := it.Next()
				if x >= base+uint64(n) {
					break
				}
				keep[x-base] = false
				deleted++
			}
			s.m.rowsDeleted.Add(deleted)
		}
		before := countTrue(keep)
		for _, rf := range s.filters {
			if err := rf.apply(cols[rf.col], keep); err != nil {
				return err
			}
		}
		s.m.rowsFiltered.Add(int64(before - countTrue(keep)))
	}

	out := make([]arrow.Array, len(s.out))
	for j, ci := range s.out {
		out[j] = cols[ci]
	}
	var result arrow.RecordBatch
	kept := int(n)
	if keep != nil {
		kept = countTrue(keep)
	}
	switch {
	case kept == 0:
		return nil
	case kept == int(n):
		result = array.NewRecordBatch(s.schema, out, n)
	default:
		rb := array.NewRecordBatch(s.schema, out, n)
		defer rb.Release()
		mb := array.NewBooleanBuilder(mem)
		mb.AppendValues(keep, nil)
		mask := mb.NewBooleanArray()
		mb.Release()
		defer mask.Release()
		var err error
		result, err = compute.FilterRecordBatch(b.cctx, rb, mask, compute.DefaultFilterOptions())
		if err != nil {
			return fmt.Errorf("filtering rows: %w", err)
		}
	}
	return b.send(result)
}

// filtered reports whether column i is tested by a row filter.
func (b *batcher) filtered(i int) bool {
	for _, rf := range b.s.filters {
		if rf.col == i {
			return true
		}
	}
	return false
}

func countTrue(b []bool) int {
	n := 0
	for _, x := range b {
		if x {
			n++
		}
	}
	return n
}

// julianUnixEpoch is the Julian day of 1970-01-01.
const julianUnixEpoch = 2440588

// readInt96 decodes a top-level INT96 column of a row group into microsecond timestamps,
// covering every year (pqarrow decodes INT96 to nanoseconds, which overflow outside
// 1677..2262).
func readInt96(pf *file.Reader, rg, leaf int, dt *arrow.TimestampType, mem memory.Allocator) (*array.Timestamp, error) {
	ccr, err := pf.RowGroup(rg).Column(leaf)
	if err != nil {
		return nil, err
	}
	defer ccr.Close()
	rd, ok := ccr.(*file.Int96ColumnChunkReader)
	if !ok {
		return nil, fmt.Errorf("column %d is not INT96", leaf)
	}
	nrows := pf.MetaData().RowGroup(rg).NumRows()
	maxDef := pf.MetaData().Schema.Column(leaf).MaxDefinitionLevel()
	bld := array.NewTimestampBuilder(mem, dt)
	defer bld.Release()
	bld.Reserve(int(nrows))
	const chunk = 4096
	vals := make([]parquet.Int96, chunk)
	defs := make([]int16, chunk)
	for read := int64(0); read < nrows; {
		total, nv, err := rd.ReadBatch(min(chunk, nrows-read), vals, defs, nil)
		if err != nil {
			return nil, err
		}
		if total == 0 {
			return nil, fmt.Errorf("INT96 column ends after %d of %d rows", read, nrows)
		}
		vi := 0
		for k := int64(0); k < total; k++ {
			if maxDef > 0 && defs[k] < maxDef {
				bld.AppendNull()
				continue
			}
			if vi >= nv {
				return nil, errors.New("INT96 column has fewer values than definition levels")
			}
			v := vals[vi]
			vi++
			nanos := binary.LittleEndian.Uint64(v[:8])
			days := int64(binary.LittleEndian.Uint32(v[8:])) - julianUnixEpoch
			us := days*86400_000_000 + int64(nanos/1000)
			if dt.Unit != arrow.Microsecond {
				return nil, fmt.Errorf("internal error: INT96 target unit %s", dt.Unit)
			}
			bld.Append(arrow.Timestamp(us))
		}
		read += total
	}
	return bld.NewTimestampArray(), nil
}

// rowGroupMayMatch tests the row filters against a row group's Parquet statistics.
func (s *Scan) rowGroupMayMatch(rg *metadata.RowGroupMetaData, ps *schema.Schema, srcs []colSource) bool {
	for _, rf := range s.filters {
		src := srcs[rf.col]
		if src.kind != srcArrow {
			continue
		}
		leaf := leafIndex(s.mode, src.field, rf.path[1:])
		if leaf < 0 {
			continue
		}
		cc, err := rg.ColumnChunk(leaf)
		if err != nil {
			continue
		}
		st, err := cc.Statistics()
		if err != nil || st == nil {
			continue
		}
		b := parquetBounds(st, ps.Column(leaf), rf.ct, rg.NumRows())
		if !rf.mayMatch(&b) {
			return false
		}
	}
	return true
}
