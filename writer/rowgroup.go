package writer

import (
	"math"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Row groups are encoded whole. A partition's file keeps the rows of its open row group as
// slices of the split records (retained, not copied) and encodes them in one go when the row
// group is complete (RowGroupRows rows or RowGroupBytes), when the file is finished, or when
// MaxBufferedBytes makes it flush. Encoding a row group at once lets the top-level string and
// binary columns be handed to pqarrow as Arrow dictionary arrays built here with a Go map: pqarrow
// then writes the dictionary page and the indices as they are (PutDictionary / PutIndices),
// without hashing each value in its memo table (an allocation per value), and computes the
// column statistics on the dictionary values only. A column whose dictionary would not pay (more
// distinct values than half the rows, or a dictionary page over the size limit) is written plain;
// when that happens in a file's first row group, the file is opened with dictionary encoding off
// for that column.

// dictPageLimit is the dictionary page size limit of the data files: a column chunk whose
// dictionary (PLAIN-encoded, 4 bytes of length per value) reaches it falls back to plain encoding.
const dictPageLimit = 64 << 10

// jobRef is a split record whose slices wait in open row groups: its size in bytes and its order.
type jobRef struct {
	seq   int64
	bytes int64
	rows  int64
}

// recordBytes is the size of the buffers of rec.
func recordBytes(rec arrow.RecordBatch) int64 {
	n := int64(0)
	for _, c := range rec.Columns() {
		n += int64(c.Data().SizeInBytes())
	}
	return n
}

// piece is rows of a split record retained for the open row group of a file.
type piece struct {
	rec arrow.RecordBatch
	ref *jobRef
}

// ratio is a float64 held atomically: the compressed bytes of a row group per byte of its
// Arrow input, as last measured, to estimate the size of the rows waiting in open row groups.
type ratio struct{ bits atomic.Uint64 }

func (r *ratio) get() float64 {
	if b := r.bits.Load(); b != 0 {
		return math.Float64frombits(b)
	}
	return 1 // nothing measured yet: assume no compression
}

func (r *ratio) set(v float64) {
	if v > 0 && !math.IsInf(v, 0) && !math.IsNaN(v) {
		r.bits.Store(math.Float64bits(v))
	}
}

// dictColumns returns, per column of schema, whether it may be dictionary-encoded by flushRowGroup:
// top-level strings and binaries.
func dictColumns(schema *arrow.Schema) []bool {
	out := make([]bool, schema.NumFields())
	for i, f := range schema.Fields() {
		switch f.Type.ID() {
		case arrow.STRING, arrow.BINARY:
			out[i] = true
		}
	}
	return out
}

// add appends rows [off, end) of data to pw's open row group.
func (pw *partWriter) add(data arrow.RecordBatch, ref *jobRef, off, end int64) {
	rec := data.NewSlice(off, end)
	pw.stats.update(rec)
	pw.pending = append(pw.pending, piece{rec: rec, ref: ref})
	pw.pendingRows += end - off
	if ref.rows > 0 {
		pw.pendingBytes += ref.bytes * (end - off) / ref.rows
	}
}

// pendingSize estimates the compressed size of the open row group.
func (pw *partWriter) pendingSize() int64 {
	return int64(float64(pw.pendingBytes) * pw.fw.ratio.get())
}

// releasePending drops the rows of the open row group.
func (pw *partWriter) releasePending() {
	for _, p := range pw.pending {
		p.rec.Release()
	}
	clear(pw.pending)
	pw.pending = pw.pending[:0]
	pw.pendingRows, pw.pendingBytes = 0, 0
}

// flushRowGroup encodes the open row group as one Parquet row group. The file's Parquet writer is
// created on the first one, with dictionary encoding off for the columns whose dictionary did not
// pay in it.
func (pw *partWriter) flushRowGroup() error {
	if pw.pendingRows == 0 {
		return nil
	}
	defer pw.releasePending()
	fw := pw.fw
	schema := fw.lay.file
	ncols := schema.NumFields()
	chunks := make([][]arrow.Array, ncols)
	for i := range ncols {
		chunks[i] = make([]arrow.Array, len(pw.pending))
		for j, p := range pw.pending {
			chunks[i][j] = p.rec.Column(i)
		}
	}
	dicts := make([]arrow.Array, ncols)
	defer func() {
		for _, d := range dicts {
			if d != nil {
				d.Release()
			}
		}
	}()
	first := pw.pq == nil
	for i := range ncols {
		if !fw.dictCols[i] || pw.plain[i] {
			continue
		}
		if pw.dict == nil {
			pw.dict = map[string]int32{}
		}
		var pays bool
		dicts[i], pays = buildDictionary(pw.dict, schema.Field(i).Type, chunks[i], int(pw.pendingRows))
		if !pays && first {
			pw.plain[i] = true
		}
	}
	if first {
		props := fw.propsFor(pw.plain)
		var err error
		pw.pq, err = pqarrow.NewFileWriter(schema, pw.sink, props, fw.aprops)
		if err != nil {
			return err
		}
	}
	before := pw.pq.TotalCompressedBytes()
	if err := pw.pq.NewRowGroupChecked(); err != nil {
		return err
	}
	for i := range ncols {
		var err error
		if dicts[i] != nil {
			err = pw.pq.WriteColumnData(dicts[i])
		} else {
			c := arrow.NewChunked(schema.Field(i).Type, chunks[i])
			err = pw.pq.WriteColumnChunked(c, 0, pw.pendingRows)
			c.Release()
		}
		if err != nil {
			return err
		}
	}
	if pw.pendingBytes > 0 {
		fw.ratio.set(float64(pw.pq.TotalCompressedBytes()-before) / float64(pw.pendingBytes))
	}
	return nil
}

// propsFor returns the writer properties of a file whose columns plain (by data column) are
// written without dictionary.
func (fw *FileWriter) propsFor(plain []bool) *parquet.WriterProperties {
	var extra []parquet.WriterProperty
	for i, p := range plain {
		if p {
			extra = append(extra, parquet.WithDictionaryFor(fw.lay.file.Field(i).Name, false))
		}
	}
	if len(extra) == 0 {
		return fw.props
	}
	return parquet.NewWriterProperties(append(fw.propList[:len(fw.propList):len(fw.propList)], extra...)...)
}

// buildDictionary returns chunks (of type t, STRING or BINARY, rows in all) as one dictionary
// array with int32 indices. It returns nil, false when a dictionary does not pay: more distinct
// values than half the rows, or a dictionary page reaching dictPageLimit (past which the Parquet
// writer would fall back to plain encoding after writing it). It returns nil, true when the
// chunks have no values, or an empty value: pqarrow computes the statistics of a dictionary
// array from its dictionary with ByteArrayStatistics.UpdateFromArrow, which skips empty values
// (arrow-go v18.8.0), so the minimum would be wrong; the column is then written dense (pqarrow
// hashes it into its own dictionary). m is scratch space, cleared. The buffers are Go memory.
func buildDictionary(m map[string]int32, t arrow.DataType, chunks []arrow.Array, rows int) (arrow.Array, bool) {
	clear(m)
	maxDistinct := rows / 2
	indices := make([]int32, rows)
	var valid []byte
	nulls := 0
	offsets := make([]int32, 1, 64)
	var data []byte
	dictBytes := 0
	row := 0
	empty := false
	lookup := func(s string) bool {
		id, ok := m[s]
		if !ok {
			if len(s) == 0 {
				empty = true
				return false
			}
			dictBytes += len(s) + 4
			if len(m) >= maxDistinct || dictBytes >= dictPageLimit {
				return false
			}
			id = int32(len(m))
			data = append(data, s...)
			offsets = append(offsets, int32(len(data)))
			m[unsafe.String(&data[len(data)-len(s)], len(s))] = id // shares the dictionary's bytes
		}
		indices[row] = id
		return true
	}
	for _, c := range chunks {
		n := c.Len()
		hasNulls := c.NullN() > 0
		if hasNulls && valid == nil {
			valid = make([]byte, bitutil.BytesForBits(int64(rows)))
			bitutil.SetBitsTo(valid, 0, int64(row), true)
		}
		switch a := c.(type) {
		case *array.String:
			for i := range n {
				if hasNulls && a.IsNull(i) {
					nulls++
				} else {
					if !lookup(a.Value(i)) {
						return nil, empty
					}
					if valid != nil {
						bitutil.SetBit(valid, row)
					}
				}
				row++
			}
		case *array.Binary:
			for i := range n {
				if hasNulls && a.IsNull(i) {
					nulls++
				} else {
					b := a.Value(i)
					if !lookup(unsafe.String(unsafe.SliceData(b), len(b))) {
						return nil, empty
					}
					if valid != nil {
						bitutil.SetBit(valid, row)
					}
				}
				row++
			}
		default:
			return nil, true
		}
	}
	if len(m) == 0 || row != rows {
		return nil, true
	}
	var validBuf *memory.Buffer
	if nulls > 0 {
		validBuf = memory.NewBufferBytes(valid)
	}
	idx := array.NewData(arrow.PrimitiveTypes.Int32, rows,
		[]*memory.Buffer{validBuf, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(indices))}, nil, nulls, 0)
	defer idx.Release()
	dict := array.NewData(t, len(offsets)-1,
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(offsets)), memory.NewBufferBytes(data)}, nil, 0, 0)
	defer dict.Release()
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: t}
	d := array.NewData(dt, rows, idx.Buffers(), nil, nulls, 0)
	d.SetDictionary(dict)
	defer d.Release()
	return array.MakeFromData(d), true
}
