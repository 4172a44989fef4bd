package reader

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/lakehouse/lake/internal/units"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/txlog"
)

// mappingMode is the table's column mapping mode (protocol "Column Mapping").
type mappingMode uint8

const (
	mapNone mappingMode = iota // data files use the logical names
	mapName                    // data files use delta.columnMapping.physicalName
	mapID                      // data files are matched by Parquet field id
)

func (m mappingMode) String() string {
	return [...]string{"none", "name", "id"}[m]
}

// fieldID is the Parquet field id pqarrow records in an Arrow field's metadata, or -1.
func fieldID(f arrow.Field) int64 {
	if i := f.Metadata.FindKey("PARQUET:field_id"); i >= 0 {
		if n, err := strconv.ParseInt(f.Metadata.Values()[i], 10, 64); err == nil {
			return n
		}
	}
	return -1
}

// matchField returns the index among the file's fields of the one holding Delta field want.
func matchField(mode mappingMode, fields []arrow.Field, want txlog.StructField) int {
	switch mode {
	case mapID:
		id := want.ColumnMappingID()
		for i, f := range fields {
			if fieldID(f) == id {
				return i
			}
		}
		return -1
	case mapName:
		name := want.PhysicalName()
		for i, f := range fields {
			if f.Name == name {
				return i
			}
		}
		return -1
	}
	for i, f := range fields {
		if f.Name == want.Name {
			return i
		}
	}
	// Spark resolves names case-insensitively.
	for i, f := range fields {
		if strings.EqualFold(f.Name, want.Name) {
			return i
		}
	}
	return -1
}

// converter turns the arrays pqarrow reads from a data file into the table's Arrow types
// (internal/deltaarrow): physical names become logical ones, missing struct fields nulls,
// timestamps microseconds, other differences (int widths, string and dictionary encodings)
// are cast.
type converter struct {
	ctx  context.Context // carries mem for compute
	mem  memory.Allocator
	mode mappingMode
}

// convert returns a new reference to src converted to dst, the Arrow type of Delta type dt.
// path names the column in errors.
func (c *converter) convert(src arrow.Array, dt txlog.DataType, dst arrow.DataType, path string) (arrow.Array, error) {
	if src.DataType().ID() == arrow.NULL {
		return array.MakeArrayOfNull(c.mem, dst, src.Len()), nil
	}
	if d, ok := src.(*array.Dictionary); ok {
		plain, err := compute.CastArray(c.ctx, d, compute.SafeCastOptions(d.Dictionary().DataType()))
		if err != nil {
			return nil, fmt.Errorf("column %s: decode dictionary: %w", path, err)
		}
		defer plain.Release()
		return c.convert(plain, dt, dst, path)
	}
	switch t := dt.(type) {
	case *txlog.StructType:
		s, ok := src.(*array.Struct)
		if !ok {
			return nil, c.mismatch(src, dt, path)
		}
		return c.structArray(s, t, dst.(*arrow.StructType), path)
	case *txlog.ArrayType:
		l, ok := src.(*array.List)
		if !ok {
			if _, isMap := src.(*array.Map); isMap {
				return nil, c.mismatch(src, dt, path)
			}
			return nil, c.mismatch(src, dt, path)
		}
		return c.listArray(l, t, dst.(*arrow.ListType), path)
	case *txlog.MapType:
		var l *array.List
		switch v := src.(type) {
		case *array.Map:
			l = v.List
		case *array.List:
			l = v // a key/value list not annotated as a map
		default:
			return nil, c.mismatch(src, dt, path)
		}
		return c.mapArray(l, t, dst.(*arrow.MapType), path)
	}
	if arrow.TypeEqual(src.DataType(), dst) {
		src.Retain()
		return src, nil
	}
	if st, ok := src.DataType().(*arrow.TimestampType); ok {
		if dt2, ok := dst.(*arrow.TimestampType); ok {
			return c.timestamps(src.(*array.Timestamp), st, dt2), nil
		}
	}
	if d, ok := src.(*array.Date32); ok {
		if ts, ok := dst.(*arrow.TimestampType); ok && ts.TimeZone == "" {
			return c.datesToTimestamps(d, ts), nil // a date widened to timestamp_ntz
		}
	}
	switch dst.ID() {
	case arrow.STRUCT, arrow.LIST, arrow.MAP:
		return nil, c.mismatch(src, dt, path)
	}
	if !castable(src.DataType(), dst) {
		return nil, c.mismatch(src, dt, path)
	}
	out, err := compute.CastArray(c.ctx, src, compute.SafeCastOptions(dst))
	if err != nil {
		return nil, fmt.Errorf("column %s: the file stores %s, the table's type is %s: %w", path, src.DataType(), dt.TypeName(), err)
	}
	return out, nil
}

// castable limits casts to the lossless conversions a reader may apply to a data file's
// column: wider integers, string and binary encodings, decimals of other precision or scale,
// float to double, and the other widenings of the Type Widening feature (integers to double or
// decimal; dates to timestamp_ntz are converted before). Anything else means the file does not
// hold the table's column.
func castable(from, to arrow.DataType) bool {
	isInt := func(t arrow.DataType) int {
		switch t.ID() {
		case arrow.INT8, arrow.UINT8:
			return 1
		case arrow.INT16, arrow.UINT16:
			return 2
		case arrow.INT32, arrow.UINT32:
			return 4
		case arrow.INT64:
			return 8
		}
		return 0
	}
	switch to.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64:
		// An INT32 column without an INT(8/16) annotation holds bytes and shorts in old files:
		// the safe cast fails on values out of range.
		return isInt(from) > 0
	case arrow.FLOAT64:
		// Byte, short and integer widen to double (Type Widening), exactly.
		return from.ID() == arrow.FLOAT32 || from.ID() == arrow.FLOAT64 || (isInt(from) > 0 && isInt(from) <= 4)
	case arrow.STRING:
		switch from.ID() {
		case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW, arrow.BINARY, arrow.LARGE_BINARY:
			return true
		}
	case arrow.BINARY:
		switch from.ID() {
		case arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW, arrow.FIXED_SIZE_BINARY, arrow.STRING, arrow.LARGE_STRING:
			return true
		}
	case arrow.DECIMAL128:
		switch from.ID() {
		case arrow.DECIMAL32, arrow.DECIMAL64, arrow.DECIMAL128, arrow.DECIMAL256:
			return true
		}
		return isInt(from) > 0
	case arrow.DATE32:
		return from.ID() == arrow.DATE32 || from.ID() == arrow.DATE64
	case arrow.BOOL:
		return from.ID() == arrow.BOOL
	case arrow.FLOAT32:
		return from.ID() == arrow.FLOAT32
	}
	return false
}

func (c *converter) mismatch(src arrow.Array, dt txlog.DataType, path string) error {
	return fmt.Errorf("column %s: the file stores %s, which does not match the table's type %s", path, src.DataType(), dt.TypeName())
}

// validity returns the array's validity bitmap aligned to offset 0 (nil when no nulls), as a
// new reference.
func (c *converter) validity(a arrow.Array) *memory.Buffer {
	if a.NullN() == 0 {
		return nil
	}
	d := a.Data()
	buf := d.Buffers()[0]
	if buf == nil {
		return nil
	}
	if d.Offset() == 0 {
		buf.Retain()
		return buf
	}
	out := memory.NewResizableBuffer(c.mem)
	out.Resize(int(bitutil.BytesForBits(int64(d.Len()))))
	bitutil.CopyBitmap(buf.Bytes(), d.Offset(), d.Len(), out.Bytes(), 0)
	return out
}

func (c *converter) structArray(src *array.Struct, t *txlog.StructType, dst *arrow.StructType, path string) (arrow.Array, error) {
	st := src.DataType().(*arrow.StructType)
	n := src.Len()
	children := make([]arrow.ArrayData, 0, len(t.Fields))
	defer func() {
		for _, ch := range children {
			ch.Release()
		}
	}()
	for j, f := range t.Fields {
		var child arrow.Array
		if k := matchField(c.mode, st.Fields(), f); k >= 0 {
			var err error
			child, err = c.convert(src.Field(k), f.Type, dst.Field(j).Type, path+"."+f.Name)
			if err != nil {
				return nil, err
			}
		} else {
			child = array.MakeArrayOfNull(c.mem, dst.Field(j).Type, n)
		}
		children = append(children, child.Data())
		child.Data().Retain()
		child.Release()
	}
	valid := c.validity(src)
	if valid != nil {
		defer valid.Release()
	}
	data := array.NewData(dst, n, []*memory.Buffer{valid}, children, src.NullN(), 0)
	defer data.Release()
	return array.MakeFromData(data), nil
}

func (c *converter) listArray(src *array.List, t *txlog.ArrayType, dst *arrow.ListType, path string) (arrow.Array, error) {
	vals, err := c.convert(src.ListValues(), t.ElementType, dst.Elem(), path+".element")
	if err != nil {
		return nil, err
	}
	defer vals.Release()
	d := src.Data()
	data := array.NewData(dst, d.Len(), d.Buffers()[:2], []arrow.ArrayData{vals.Data()}, d.NullN(), d.Offset())
	defer data.Release()
	return array.MakeFromData(data), nil
}

func (c *converter) mapArray(src *array.List, t *txlog.MapType, dst *arrow.MapType, path string) (arrow.Array, error) {
	entries, ok := src.ListValues().(*array.Struct)
	if !ok || entries.NumField() != 2 {
		return nil, fmt.Errorf("column %s: the file stores %s, which is not a map", path, src.DataType())
	}
	keys, err := c.convert(entries.Field(0), t.KeyType, dst.KeyType(), path+".key")
	if err != nil {
		return nil, err
	}
	defer keys.Release()
	items, err := c.convert(entries.Field(1), t.ValueType, dst.ItemType(), path+".value")
	if err != nil {
		return nil, err
	}
	defer items.Release()
	ed := array.NewData(dst.Elem(), entries.Len(), []*memory.Buffer{nil}, []arrow.ArrayData{keys.Data(), items.Data()}, 0, 0)
	defer ed.Release()
	d := src.Data()
	data := array.NewData(dst, d.Len(), d.Buffers()[:2], []arrow.ArrayData{ed}, d.NullN(), d.Offset())
	defer data.Release()
	return array.MakeFromData(data), nil
}

// timestamps converts a timestamp array of any unit to microseconds (floor division for
// nanoseconds, so instants before 1970 round down like Spark).
func (c *converter) timestamps(src *array.Timestamp, from, to *arrow.TimestampType) arrow.Array {
	d := src.Data()
	if from.Unit == to.Unit {
		data := array.NewData(to, d.Len(), d.Buffers(), nil, d.NullN(), d.Offset())
		defer data.Release()
		return array.MakeFromData(data)
	}
	n := d.Len()
	valid := c.validity(src)
	if valid != nil {
		defer valid.Release()
	}
	buf := memory.NewResizableBuffer(c.mem)
	defer buf.Release()
	buf.Resize(n * 8)
	out := arrow.TimestampTraits.CastFromBytes(buf.Bytes())
	in := src.TimestampValues()
	for i := 0; i < n; i++ {
		out[i] = arrow.Timestamp(units.Micros(int64(in[i]), from.Unit))
	}
	data := array.NewData(to, n, []*memory.Buffer{valid, buf}, nil, src.NullN(), 0)
	defer data.Release()
	return array.MakeFromData(data)
}
