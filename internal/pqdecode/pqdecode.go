package pqdecode

import (
	"errors"
	"fmt"
	"math"
	"runtime/debug"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// ErrStreamingPage is wrapped by ReadColumn's error when arrow-go's page
// reader handed out a streaming data page (the file was opened with
// parquet.ReaderProperties.PageStreamingEnabled): such a page's Data() holds
// only its levels, so the values cannot be decoded here. Callers should fall
// back to pqarrow.
var ErrStreamingPage = errors.New("pqdecode: streaming data page (PageStreamingEnabled) cannot be decoded directly")

// ErrUnsupported is wrapped by ReadColumn's and ReadField's error for a column Supported or
// SupportedField would have refused; the caller reads it another way.
var ErrUnsupported = errors.New("pqdecode: unsupported column")

// ErrTooLarge is wrapped by ReadColumn's and ReadField's error when a chunk's values do not fit
// one Arrow array with int32 offsets (more than 2 GiB of strings once dictionary values are
// expanded). Callers should fall back to a reader that splits the chunk into batches.
var ErrTooLarge = errors.New("pqdecode: column chunk too large for one array")

// errPanic marks an error produced by recovering from a panic. It indicates a
// bug (in this package or below it), never expected behaviour.
var errPanic = errors.New("pqdecode: internal panic")

// kind is the output layout of a column.
type kind uint8

const (
	kindBytes  kind = iota + 1 // int32 offsets + data
	kindFixed4                 // 4-byte little-endian values
	kindFixed8                 // 8-byte little-endian values
	kindBool                   // bitmap
)

// Supported reports whether ReadColumn can decode leaf column leaf of row
// group rg into an Arrow array of type dt. It only looks at metadata.
func Supported(pf *file.Reader, rg, leaf int, dt arrow.DataType) bool {
	_, _, err := check(pf, rg, leaf, dt)
	return err == nil
}

// check validates the shape of the column chunk against dt and returns the
// output layout, the chunk metadata and nil, or an error saying why the chunk
// is not supported.
func check(pf *file.Reader, rg, leaf int, dt arrow.DataType) (kind, *metadata.ColumnChunkMetaData, error) {
	if pf == nil || dt == nil {
		return 0, nil, errors.New("nil reader or data type")
	}
	md := pf.MetaData()
	if md == nil || md.Schema == nil {
		return 0, nil, errors.New("no file metadata")
	}
	if rg < 0 || rg >= md.NumRowGroups() {
		return 0, nil, fmt.Errorf("row group %d out of range [0,%d)", rg, md.NumRowGroups())
	}
	if leaf < 0 || leaf >= md.Schema.NumColumns() {
		return 0, nil, fmt.Errorf("leaf column %d out of range [0,%d)", leaf, md.Schema.NumColumns())
	}
	if md.IsSetEncryptionAlgorithm() || md.FileDecryptor != nil {
		return 0, nil, errors.New("encrypted file")
	}
	col := md.Schema.Column(leaf)
	if col.MaxRepetitionLevel() != 0 || col.MaxDefinitionLevel() > 1 || len(col.ColumnPath()) != 1 {
		return 0, nil, fmt.Errorf("column %s is not a flat top-level column", col.Path())
	}
	return chunkKind(md, rg, leaf, dt)
}

// chunkKind checks the column chunk of leaf column leaf in row group rg (the
// caller has range-checked rg and leaf and rejected encrypted files) against
// the Arrow type dt of its values, whatever the column's levels, and returns
// the output layout of the values and the chunk metadata.
func chunkKind(md *metadata.FileMetaData, rg, leaf int, dt arrow.DataType) (kind, *metadata.ColumnChunkMetaData, error) {
	col := md.Schema.Column(leaf)
	rgmd := md.RowGroup(rg)
	if leaf >= rgmd.NumColumns() {
		return 0, nil, fmt.Errorf("row group %d has only %d columns", rg, rgmd.NumColumns())
	}
	cc, err := rgmd.ColumnChunk(leaf)
	if err != nil {
		return 0, nil, err
	}
	if cc.CryptoMetadata() != nil {
		return 0, nil, errors.New("encrypted column chunk")
	}
	if cc.Type() != col.PhysicalType() {
		return 0, nil, fmt.Errorf("chunk type %s differs from schema type %s", cc.Type(), col.PhysicalType())
	}
	pt := col.PhysicalType()
	for _, e := range cc.Encodings() {
		switch e {
		case parquet.Encodings.Plain, parquet.Encodings.PlainDict, parquet.Encodings.RLEDict,
			parquet.Encodings.RLE, parquet.Encodings.BitPacked:
		default:
			return 0, nil, fmt.Errorf("unsupported encoding %s", e)
		}
	}

	lt := col.LogicalType()
	isNone := false
	switch lt.(type) {
	case nil, schema.NoLogicalType:
		isNone = true
	}

	var k kind
	switch pt {
	case parquet.Types.ByteArray:
		_, isString := lt.(schema.StringLogicalType)
		if (isNone || isString) && (dt.ID() == arrow.STRING || dt.ID() == arrow.BINARY) {
			k = kindBytes
		}
		if k != 0 && cc.TotalUncompressedSize() >= math.MaxInt32 {
			return 0, nil, errors.New("byte array chunk too large for int32 offsets")
		}
	case parquet.Types.Int32:
		switch t := lt.(type) {
		case schema.IntLogicalType:
			if t.BitWidth() == 32 && t.IsSigned() && dt.ID() == arrow.INT32 {
				k = kindFixed4
			}
		case schema.DateLogicalType:
			if dt.ID() == arrow.DATE32 {
				k = kindFixed4
			}
		default:
			if isNone && dt.ID() == arrow.INT32 {
				k = kindFixed4
			}
		}
	case parquet.Types.Int64:
		switch t := lt.(type) {
		case schema.IntLogicalType:
			if t.BitWidth() == 64 && t.IsSigned() && dt.ID() == arrow.INT64 {
				k = kindFixed8
			}
		case schema.TimestampLogicalType:
			if ts, ok := dt.(*arrow.TimestampType); ok && sameUnit(t.TimeUnit(), ts.Unit) {
				k = kindFixed8
			}
		default:
			if isNone && dt.ID() == arrow.INT64 {
				k = kindFixed8
			}
		}
	case parquet.Types.Float:
		if isNone && dt.ID() == arrow.FLOAT32 {
			k = kindFixed4
		}
	case parquet.Types.Double:
		if isNone && dt.ID() == arrow.FLOAT64 {
			k = kindFixed8
		}
	case parquet.Types.Boolean:
		if isNone && dt.ID() == arrow.BOOL {
			k = kindBool
		}
	}
	if k == 0 {
		return 0, nil, fmt.Errorf("cannot decode %s (logical type %v) into %s", pt, lt, dt)
	}
	return k, cc, nil
}

func sameUnit(u schema.TimeUnitType, a arrow.TimeUnit) bool {
	switch u {
	case schema.TimeUnitMillis:
		return a == arrow.Millisecond
	case schema.TimeUnitMicros:
		return a == arrow.Microsecond
	case schema.TimeUnitNanos:
		return a == arrow.Nanosecond
	}
	return false
}

// ReadColumn decodes the whole column chunk (leaf column leaf of row group
// rg) into one Arrow array of type dt with exactly RowGroup(rg).NumRows()
// rows, allocating its buffers from mem. The caller releases the array.
func ReadColumn(pf *file.Reader, rg, leaf int, dt arrow.DataType, mem memory.Allocator) (arr arrow.Array, err error) {
	k, cc, err := check(pf, rg, leaf, dt)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	numRows := pf.MetaData().RowGroup(rg).NumRows()
	if numRows < 0 || numRows > math.MaxInt32 {
		return nil, fmt.Errorf("pqdecode: row group %d has invalid row count %d", rg, numRows)
	}
	if cc.NumValues() != numRows {
		return nil, fmt.Errorf("pqdecode: value count mismatch: column chunk has %d values, row group has %d rows", cc.NumValues(), numRows)
	}
	col := pf.MetaData().Schema.Column(leaf)

	d := &decoder{
		kind:     k,
		mem:      mem,
		numRows:  int(numRows),
		optional: col.MaxDefinitionLevel() == 1,
	}
	defer func() {
		if r := recover(); r != nil {
			arr = nil
			err = fmt.Errorf("%w: %v\n%s", errPanic, r, debug.Stack())
		}
		if err != nil {
			d.release()
			err = fmt.Errorf("pqdecode: column %s, row group %d: %w", col.Path(), rg, err)
		}
	}()

	pr, err := pf.RowGroup(rg).GetColumnPageReader(leaf)
	if err != nil {
		return nil, err
	}
	defer pr.Close()

	d.alloc()
	for {
		ok, err := nextPage(pr)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if err := d.page(pr.Page()); err != nil {
			return nil, err
		}
	}
	if err := pr.Err(); err != nil {
		return nil, err
	}
	if d.pos != d.numRows {
		return nil, fmt.Errorf("value count mismatch: pages hold %d values, row group has %d rows", d.pos, d.numRows)
	}
	return d.finish(dt), nil
}

// decoder accumulates one column chunk.
type decoder struct {
	kind     kind
	mem      memory.Allocator
	numRows  int
	optional bool

	pos       int // rows decoded so far
	nullCount int

	validity *memory.Buffer // nil for a required column
	valid    []byte         // validity.Buf(): padded by 8 bytes for nextBit
	values   *memory.Buffer // fixed-width values, bool bitmap or int32 offsets
	vals     []byte         // values.Buf()
	offsets  []int32        // kindBytes: view of vals
	data     *memory.Buffer // kindBytes: value bytes
	dataBuf  []byte         // data.Buf() (full capacity)
	dataLen  int

	// dictionary
	hasDict   bool
	dictLen   int
	dictOffs  []int32  // kindBytes: dictLen+1 offsets into dictData
	dictData  []byte   // kindBytes: the concatenated values
	dict4     []uint32 // kindFixed4
	dict8     []uint64 // kindFixed8
	idx       []uint32
	boolVals  []byte // RLE boolean scratch bitmap
	seenPages int
}

func (d *decoder) width() int {
	if d.kind == kindFixed4 {
		return 4
	}
	return 8
}

func (d *decoder) alloc() {
	n := d.numRows
	if d.optional {
		d.validity = memory.NewResizableBuffer(d.mem)
		sz := int(bytesForBits(n))
		d.validity.Resize(sz + 8)
		d.valid = d.validity.Buf()
		clear(d.valid[sz:])
		d.validity.ResizeNoShrink(sz)
	}
	d.values = memory.NewResizableBuffer(d.mem)
	switch d.kind {
	case kindBytes:
		d.values.Resize((n + 1) * 4)
		d.vals = d.values.Bytes()
		d.offsets = arrow.Int32Traits.CastFromBytes(d.vals)
		d.offsets[0] = 0
		d.data = memory.NewResizableBuffer(d.mem)
	case kindFixed4, kindFixed8:
		d.values.Resize(n * d.width())
		d.vals = d.values.Bytes()
	case kindBool:
		d.values.Resize(int(bytesForBits(n)))
		d.vals = d.values.Bytes()
		clear(d.vals)
	}
}

func (d *decoder) release() {
	for _, b := range []*memory.Buffer{d.validity, d.values, d.data} {
		if b != nil {
			b.Release()
		}
	}
	d.validity, d.values, d.data = nil, nil, nil
}

func (d *decoder) finish(dt arrow.DataType) arrow.Array {
	data := d.finishData(dt)
	arr := array.MakeFromData(data)
	data.Release()
	return arr
}

// finishData hands the buffers over to an ArrayData of d.pos values (d.pos
// may be below d.numRows, the capacity, for the child of a list or map).
func (d *decoder) finishData(dt arrow.DataType) *array.Data {
	n := d.pos
	validity := d.validity
	if validity != nil && d.nullCount == 0 {
		validity.Release()
		validity = nil
	}
	if validity != nil {
		validity.ResizeNoShrink(int(bytesForBits(n)))
	}
	var bufs []*memory.Buffer
	switch d.kind {
	case kindBytes:
		d.values.ResizeNoShrink((n + 1) * 4)
		d.data.ResizeNoShrink(d.dataLen)
		bufs = []*memory.Buffer{validity, d.values, d.data}
	case kindBool:
		d.values.ResizeNoShrink(int(bytesForBits(n)))
		bufs = []*memory.Buffer{validity, d.values}
	default:
		d.values.ResizeNoShrink(n * d.width())
		bufs = []*memory.Buffer{validity, d.values}
	}
	data := array.NewData(dt, n, bufs, nil, d.nullCount, 0)
	for _, b := range bufs {
		if b != nil {
			b.Release()
		}
	}
	d.validity, d.values, d.data = nil, nil, nil
	return data
}

func bytesForBits(n int) int64 { return (int64(n) + 7) >> 3 }

// page decodes one page from the page reader.
func (d *decoder) page(p file.Page) error {
	d.seenPages++
	switch pg := p.(type) {
	case *file.DictionaryPage:
		return d.dictionaryPage(pg)
	case *file.DataPageV1:
		buf := pg.Data()
		if len(buf) != int(pg.UncompressedSize()) {
			return fmt.Errorf("page %d: %w", d.seenPages, ErrStreamingPage)
		}
		n := int(pg.NumValues())
		if err := d.checkRows(n); err != nil {
			return err
		}
		nonNull := n
		if d.optional {
			var used int
			var err error
			switch enc := pg.DefinitionLevelEncoding(); enc {
			case parquet.Encodings.RLE:
				if len(buf) < 4 {
					return errors.New("data page v1: truncated definition levels")
				}
				ln := uint64(uint32(buf[0]) | uint32(buf[1])<<8 | uint32(buf[2])<<16 | uint32(buf[3])<<24)
				if ln > uint64(len(buf)-4) {
					return fmt.Errorf("data page v1: definition level length %d exceeds page size %d", ln, len(buf))
				}
				_, err = decodeBits(buf[4:4+ln], n, d.valid, d.pos)
				used = 4 + int(ln)
			case parquet.Encodings.BitPacked:
				used, err = decodeBitPackedLegacyBits(buf, n, d.valid, d.pos)
			default:
				return fmt.Errorf("data page v1: unsupported definition level encoding %s", enc)
			}
			if err != nil {
				return fmt.Errorf("data page v1: definition levels: %w", err)
			}
			buf = buf[used:]
			nonNull = countSet(d.valid, d.pos, n)
		}
		return d.decodeValues(parquet.Encoding(pg.Encoding()), buf, n, nonNull)
	case *file.DataPageV2:
		buf := pg.Data()
		if len(buf) != int(pg.UncompressedSize()) {
			return fmt.Errorf("page %d: %w", d.seenPages, ErrStreamingPage)
		}
		n := int(pg.NumValues())
		if int(pg.NumRows()) != n {
			return fmt.Errorf("data page v2: %d rows but %d values in a flat column", pg.NumRows(), n)
		}
		if err := d.checkRows(n); err != nil {
			return err
		}
		repLen, defLen := int64(pg.RepetitionLevelByteLen()), int64(pg.DefinitionLevelByteLen())
		if repLen < 0 || defLen < 0 || repLen+defLen > int64(len(buf)) {
			return fmt.Errorf("data page v2: level lengths %d+%d exceed page size %d", repLen, defLen, len(buf))
		}
		levels := buf[repLen : repLen+defLen]
		buf = buf[repLen+defLen:]
		nonNull := n
		if d.optional {
			if _, err := decodeBits(levels, n, d.valid, d.pos); err != nil {
				return fmt.Errorf("data page v2: definition levels: %w", err)
			}
			// The header's num_nulls is not cross-checked: arrow-go writes 0 there
			// when statistics are disabled.
			nonNull = countSet(d.valid, d.pos, n)
		}
		return d.decodeValues(parquet.Encoding(pg.Encoding()), buf, n, nonNull)
	default:
		// Only data and dictionary pages are handed out by the page reader.
		return nil
	}
}

func (d *decoder) checkRows(n int) error {
	if n < 0 || n > d.numRows-d.pos {
		return fmt.Errorf("value count mismatch: page with %d values after %d of %d rows", n, d.pos, d.numRows)
	}
	return nil
}

func countSet(bm []byte, off, n int) int {
	if n == 0 {
		return 0
	}
	return bitutil.CountSetBits(bm, off, n)
}

// decodeValues decodes the value section of a data page holding n rows of which
// nonNull are not null; the validity bits of the page are already in d.valid.
func (d *decoder) decodeValues(enc parquet.Encoding, buf []byte, n, nonNull int) error {
	var err error
	switch enc {
	case parquet.Encodings.Plain:
		err = d.plain(buf, n, nonNull)
	case parquet.Encodings.PlainDict, parquet.Encodings.RLEDict:
		err = d.dict(buf, n, nonNull)
	case parquet.Encodings.RLE:
		if d.kind != kindBool {
			return fmt.Errorf("data page encoding RLE is only valid for booleans")
		}
		err = d.rleBool(buf, n, nonNull)
	default:
		return fmt.Errorf("unsupported data page encoding %s", enc)
	}
	if err != nil {
		return fmt.Errorf("page %d (%s): %w", d.seenPages, enc, err)
	}
	d.nullCount += n - nonNull
	d.pos += n
	return nil
}

// nextPage advances the page reader. arrow-go's page reader dereferences
// optional thrift header fields without checking them (for example a header
// whose type says DATA_PAGE_V2 but that carries no data_page_header_v2), so a
// corrupt page header can make it panic; that is reported as a corrupt page.
func nextPage(pr file.PageReader) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			ok, err = false, fmt.Errorf("corrupt page header (arrow-go page reader panicked: %v)", r)
		}
	}()
	return pr.Next(), nil
}
