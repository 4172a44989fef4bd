package writer

import (
	"context"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/txlog"
)

// This file fits input records to the table: columns are found by name (exactly, else
// case-insensitively, as Spark resolves them), put in table order, missing nullable columns
// filled with nulls, and values converted where the conversion is a widening that loses nothing
// (byte → short → integer → long, float → double, integers → double or a wide enough decimal, a
// decimal to a wider one, date → timestamp_ntz, any timestamp unit to microseconds, large or
// view strings and binaries to plain ones, dictionaries to their values). Anything else is a
// *SchemaError.

// conformRecord returns rec arranged as target, the table's logical Arrow schema (the Delta
// schema st mapped by deltaarrow). The caller releases the result.
func conformRecord(ctx context.Context, mem memory.Allocator, rec arrow.RecordBatch, st *txlog.StructType, target *arrow.Schema) (arrow.RecordBatch, error) {
	in := rec.Schema()
	used := make([]bool, in.NumFields())
	cols := make([]arrow.Array, 0, len(st.Fields))
	release := func() {
		for _, c := range cols {
			c.Release()
		}
	}
	n := int(rec.NumRows())
	for i, f := range st.Fields {
		idx, err := findField(in.Fields(), f.Name, "")
		if err != nil {
			release()
			return nil, err
		}
		tf := target.Field(i)
		if idx < 0 {
			if !f.Nullable {
				release()
				return nil, &SchemaError{Column: f.Name, TableType: typeString(f.Type), Problem: "is not nullable and the input does not have it"}
			}
			cols = append(cols, array.MakeArrayOfNull(mem, tf.Type, n))
			continue
		}
		used[idx] = true
		c, err := conformArray(ctx, mem, rec.Column(idx), f.Type, tf.Type, f.Nullable, f.Name, nil)
		if err != nil {
			release()
			return nil, err
		}
		cols = append(cols, c)
	}
	for i, u := range used {
		if !u {
			release()
			inf := in.Field(i)
			return nil, &SchemaError{Column: inf.Name, GivenType: arrowTypeString(inf.Type), Problem: "is not in the table schema (write with MergeSchema to add it)"}
		}
	}
	out := array.NewRecordBatch(target, cols, int64(n))
	release()
	return out, nil
}

// findField returns the index of the field named name: an exact match, else the one
// case-insensitive match; -1 when there is none. Two case-insensitive matches are ambiguous.
func findField(fields []arrow.Field, name, parent string) (int, error) {
	found := -1
	for i, f := range fields {
		if f.Name == name {
			return i, nil
		}
		if strings.EqualFold(f.Name, name) {
			if found >= 0 {
				return -1, &SchemaError{Column: joinPath(parent, name), Problem: fmt.Sprintf("the input has both %q and %q, which differ only in case", fields[found].Name, f.Name)}
			}
			found = i
		}
	}
	return found, nil
}

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// conformArray returns arr as the Arrow type target of Delta type dt. ancestors are the struct
// arrays arr is nested in, aligned with it, for the null check of a non-nullable field (a null
// under a null parent is not a violation).
func conformArray(ctx context.Context, mem memory.Allocator, arr arrow.Array, dt txlog.DataType, target arrow.DataType, nullable bool, path string, ancestors []arrow.Array) (arrow.Array, error) {
	if d, ok := arr.DataType().(*arrow.DictionaryType); ok {
		dec, err := compute.CastArray(compute.WithAllocator(ctx, mem), arr, compute.SafeCastOptions(d.ValueType))
		if err != nil {
			return nil, &SchemaError{Column: path, TableType: typeString(dt), GivenType: arrowTypeString(arr.DataType()), Problem: fmt.Sprintf("cannot decode the dictionary: %v", err)}
		}
		defer dec.Release()
		arr = dec
	}
	if !nullable {
		if k := nullsUnder(arr, ancestors); k > 0 {
			return nil, &SchemaError{Column: path, Problem: fmt.Sprintf("is not nullable, but the input has %d null values in it", k)}
		}
	}
	mismatch := func() error {
		return &SchemaError{Column: path, TableType: typeString(dt), GivenType: arrowTypeString(arr.DataType()), Problem: "has another type in the table"}
	}
	switch tt := dt.(type) {
	case *txlog.StructType:
		sa, ok := arr.(*array.Struct)
		if !ok {
			return nil, mismatch()
		}
		return conformStruct(ctx, mem, sa, tt, target.(*arrow.StructType), path, ancestors)
	case *txlog.ArrayType:
		la, ok := arr.(*array.List)
		if !ok {
			return nil, mismatch()
		}
		tl := target.(*arrow.ListType)
		values := la.ListValues()
		if !tt.ContainsNull {
			start, end := listRange(la)
			sl := array.NewSlice(values, start, end)
			k := sl.NullN()
			sl.Release()
			if k > 0 {
				return nil, &SchemaError{Column: path + ".element", Problem: fmt.Sprintf("array elements are not nullable, but the input has %d null elements", k)}
			}
		}
		cv, err := conformArray(ctx, mem, values, tt.ElementType, tl.Elem(), true, path+".element", nil)
		if err != nil {
			return nil, err
		}
		defer cv.Release()
		d := la.Data()
		nd := array.NewData(target, d.Len(), d.Buffers(), []arrow.ArrayData{cv.Data()}, d.NullN(), d.Offset())
		defer nd.Release()
		return array.MakeFromData(nd), nil
	case *txlog.MapType:
		ma, ok := arr.(*array.Map)
		if !ok {
			return nil, mismatch()
		}
		tm := target.(*arrow.MapType)
		entries := ma.ListValues().Data()
		ch := entries.Children()
		keys := array.MakeFromData(ch[0])
		defer keys.Release()
		items := array.MakeFromData(ch[1])
		defer items.Release()
		ck, err := conformArray(ctx, mem, keys, tt.KeyType, tm.KeyType(), false, path+".key", nil)
		if err != nil {
			return nil, err
		}
		defer ck.Release()
		if !tt.ValueContainsNull {
			start, end := listRange(ma.List)
			sl := array.NewSlice(items, start+int64(entries.Offset()), end+int64(entries.Offset()))
			k := sl.NullN()
			sl.Release()
			if k > 0 {
				return nil, &SchemaError{Column: path + ".value", Problem: fmt.Sprintf("map values are not nullable, but the input has %d null values", k)}
			}
		}
		ci, err := conformArray(ctx, mem, items, tt.ValueType, tm.ItemType(), true, path+".value", nil)
		if err != nil {
			return nil, err
		}
		defer ci.Release()
		ed := array.NewData(tm.Elem(), entries.Len(), entries.Buffers(), []arrow.ArrayData{ck.Data(), ci.Data()}, entries.NullN(), entries.Offset())
		defer ed.Release()
		d := ma.Data()
		nd := array.NewData(target, d.Len(), d.Buffers(), []arrow.ArrayData{ed}, d.NullN(), d.Offset())
		defer nd.Release()
		return array.MakeFromData(nd), nil
	}
	// A primitive or decimal.
	if arrow.TypeEqual(arr.DataType(), target) {
		arr.Retain()
		return arr, nil
	}
	given, err := deltaarrow.FromArrow(arr.DataType())
	if err != nil || !widens(given, dt) {
		return nil, mismatch()
	}
	if a, b := arr.DataType(), target; a.ID() == arrow.TIMESTAMP && b.ID() == arrow.TIMESTAMP &&
		a.(*arrow.TimestampType).Unit == b.(*arrow.TimestampType).Unit {
		// Only the zone's name differs: the values are UTC instants either way.
		return retype(arr, target), nil
	}
	opts := compute.SafeCastOptions(target)
	opts.AllowTimeTruncate = true // nanoseconds to the protocol's microseconds
	out, err := compute.CastArray(compute.WithAllocator(ctx, mem), arr, opts)
	if err != nil {
		return nil, &SchemaError{Column: path, TableType: typeString(dt), GivenType: arrowTypeString(arr.DataType()), Problem: fmt.Sprintf("cannot convert the values: %v", err)}
	}
	return out, nil
}

func conformStruct(ctx context.Context, mem memory.Allocator, sa *array.Struct, st *txlog.StructType, target *arrow.StructType, path string, ancestors []arrow.Array) (arrow.Array, error) {
	in := sa.DataType().(*arrow.StructType).Fields()
	n := sa.Len()
	used := make([]bool, len(in))
	children := make([]arrow.Array, 0, len(st.Fields))
	defer func() {
		for _, c := range children {
			c.Release()
		}
	}()
	anc := append(ancestors[:len(ancestors):len(ancestors)], sa)
	for i, f := range st.Fields {
		fp := joinPath(path, f.Name)
		idx, err := findField(in, f.Name, path)
		if err != nil {
			return nil, err
		}
		tf := target.Field(i)
		if idx < 0 {
			if !f.Nullable {
				return nil, &SchemaError{Column: fp, TableType: typeString(f.Type), Problem: "is not nullable and the input does not have it"}
			}
			children = append(children, array.MakeArrayOfNull(mem, tf.Type, n))
			continue
		}
		used[idx] = true
		c, err := conformArray(ctx, mem, sa.Field(idx), f.Type, tf.Type, f.Nullable, fp, anc)
		if err != nil {
			return nil, err
		}
		children = append(children, c)
	}
	for i, u := range used {
		if !u {
			return nil, &SchemaError{Column: joinPath(path, in[i].Name), GivenType: arrowTypeString(in[i].Type), Problem: "is not in the table schema (write with MergeSchema to add it)"}
		}
	}
	var bitmap *memory.Buffer
	nulls := sa.NullN()
	if nulls > 0 {
		bitmap = memory.NewResizableBuffer(mem)
		bitmap.Resize(int(bitutil.BytesForBits(int64(n))))
		bitutil.CopyBitmap(sa.NullBitmapBytes(), sa.Data().Offset(), n, bitmap.Bytes(), 0)
		defer bitmap.Release()
	}
	cd := make([]arrow.ArrayData, len(children))
	for i, c := range children {
		cd[i] = c.Data()
	}
	nd := array.NewData(target, n, []*memory.Buffer{bitmap}, cd, nulls, 0)
	defer nd.Release()
	return array.MakeFromData(nd), nil
}

// listRange is the range of the values child that the list's rows use.
func listRange(la *array.List) (int64, int64) {
	if la.Len() == 0 {
		return 0, 0
	}
	off := la.Offsets()
	return int64(off[0]), int64(off[len(off)-1])
}

// nullsUnder counts the rows where arr is null and none of its ancestors is.
func nullsUnder(arr arrow.Array, ancestors []arrow.Array) int {
	if arr.NullN() == 0 {
		return 0
	}
	anyAncestorNulls := false
	for _, a := range ancestors {
		if a.NullN() > 0 {
			anyAncestorNulls = true
		}
	}
	if !anyAncestorNulls {
		return arr.NullN()
	}
	k := 0
	for i := 0; i < arr.Len(); i++ {
		if arr.IsValid(i) {
			continue
		}
		under := false
		for _, a := range ancestors {
			if a.IsNull(i) {
				under = true
				break
			}
		}
		if !under {
			k++
		}
	}
	return k
}

// widens reports whether values of Delta type from can be written to a column of type to
// without loss.
func widens(from, to txlog.DataType) bool {
	if from.TypeName() == to.TypeName() {
		return true
	}
	rank := map[string]int{"byte": 1, "short": 2, "integer": 3, "long": 4}
	digits := map[string]int{"byte": 3, "short": 5, "integer": 10, "long": 20}
	switch t := to.(type) {
	case *txlog.PrimitiveType:
		switch t.Name {
		case "short", "integer", "long":
			return rank[from.TypeName()] > 0 && rank[from.TypeName()] < rank[t.Name]
		case "double":
			return from.TypeName() == "float" || (rank[from.TypeName()] > 0 && rank[from.TypeName()] < 4)
		case "timestamp_ntz":
			return from.TypeName() == "date" // midnight (a column widened from date)
		}
	case *txlog.DecimalType:
		switch f := from.(type) {
		case *txlog.DecimalType:
			return f.Scale <= t.Scale && f.Precision-f.Scale <= t.Precision-t.Scale
		case *txlog.PrimitiveType:
			d, ok := digits[f.Name]
			return ok && d <= t.Precision-t.Scale
		}
	}
	return false
}

// retype returns arr's data under type t, which has the same physical layout: the same types
// but for field names, nullability flags or metadata (for column mapping's physical names and
// field ids). The caller releases the result.
func retype(arr arrow.Array, t arrow.DataType) arrow.Array {
	if arrow.TypeEqual(arr.DataType(), t, arrow.CheckMetadata()) {
		arr.Retain()
		return arr
	}
	d := retypeData(arr.Data(), t)
	defer d.Release()
	return array.MakeFromData(d)
}

func retypeData(d arrow.ArrayData, t arrow.DataType) arrow.ArrayData {
	var children []arrow.ArrayData
	switch tt := t.(type) {
	case *arrow.StructType:
		for i, c := range d.Children() {
			children = append(children, retypeData(c, tt.Field(i).Type))
		}
	case *arrow.ListType:
		children = []arrow.ArrayData{retypeData(d.Children()[0], tt.Elem())}
	case *arrow.MapType:
		children = []arrow.ArrayData{retypeData(d.Children()[0], tt.Elem())}
	}
	nd := array.NewData(t, d.Len(), d.Buffers(), children, d.NullN(), d.Offset())
	for _, c := range children {
		c.Release()
	}
	return nd
}

// typeString renders a Delta type the way Spark's simpleString does: long, decimal(10,2),
// array<string>, map<string,string>, struct<a:int,b:string>.
func typeString(t txlog.DataType) string { return txlog.TypeString(t) }

// arrowTypeString names an Arrow type by its Delta type when it has one, else by Arrow's name.
func arrowTypeString(t arrow.DataType) string {
	if d, ok := t.(*arrow.DictionaryType); ok {
		t = d.ValueType
	}
	if dt, err := deltaarrow.FromArrow(t); err == nil {
		s := typeString(dt)
		if ts, ok := t.(*arrow.TimestampType); ok && ts.Unit != arrow.Microsecond {
			s += " (" + ts.String() + ")"
		}
		return s
	}
	return "arrow " + t.String()
}
