package reader

import (
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/txlog"
)

// This file is the reader's side of the Type Widening table feature (typeWidening and
// typeWidening-preview): a column's type may have been widened since a data file was written,
// and the file's values are then read as the current type. The conversions themselves are the
// converter's (castable lists them); this file checks the recorded type changes, converts dates
// to timestamp_ntz, and keeps statistics written under the old type usable for skipping.

// checkTypeChanges validates every delta.typeChanges entry of the schema: a reader must refuse
// a table whose history holds a type change it cannot apply to old files.
func checkTypeChanges(st *txlog.StructType) error {
	var walk func(t txlog.DataType, path string) error
	walk = func(t txlog.DataType, path string) error {
		switch v := t.(type) {
		case *txlog.StructType:
			for _, f := range v.Fields {
				fp := f.Name
				if path != "" {
					fp = path + "." + f.Name
				}
				changes, err := deltaarrow.TypeChanges(f)
				if err != nil {
					return unsupported("malformed delta.typeChanges", fmt.Sprintf("column %q: %v", fp, err))
				}
				for _, c := range changes {
					from, err1 := deltaarrow.ParseTypeName(c.FromType)
					to, err2 := deltaarrow.ParseTypeName(c.ToType)
					if err1 != nil || err2 != nil || !deltaarrow.CanWiden(from, to) {
						where := fmt.Sprintf("column %q", fp)
						if c.FieldPath != "" {
							where += " at " + c.FieldPath
						}
						return unsupported(fmt.Sprintf("type change from %s to %s", c.FromType, c.ToType), where)
					}
				}
				if err := walk(f.Type, fp); err != nil {
					return err
				}
			}
		case *txlog.ArrayType:
			return walk(v.ElementType, path)
		case *txlog.MapType:
			if err := walk(v.KeyType, path); err != nil {
				return err
			}
			return walk(v.ValueType, path)
		}
		return nil
	}
	return walk(st, "")
}

// widenedFromFloat reports whether the field itself (not an element inside it) was a float
// before a widening to double. Its old files' statistics are float32 values printed as
// decimals, which as doubles may lie on either side of the value the file holds.
func widenedFromFloat(f txlog.StructField) bool {
	changes, err := deltaarrow.TypeChanges(f)
	if err != nil {
		return false
	}
	for _, c := range changes {
		if c.FieldPath == "" && c.FromType == "float" {
			return true
		}
	}
	return false
}

// loosenFloat32Bounds widens the bounds of a double column that once was a float by one float32
// ulp on each side, so that a statistic written for a float (the shortest decimal that reads
// back as that float32) still bounds the double the value becomes.
func loosenFloat32Bounds(b *bounds) {
	if b.hasMin && !math.IsInf(b.min.f, 0) {
		lo := float64(math.Nextafter32(float32(b.min.f), float32(math.Inf(-1))))
		b.min.f = math.Min(b.min.f, lo)
	}
	if b.hasMax && !math.IsInf(b.max.f, 0) {
		hi := float64(math.Nextafter32(float32(b.max.f), float32(math.Inf(1))))
		b.max.f = math.Max(b.max.f, hi)
	}
}

// datesToTimestamps converts a date32 array (a file written before date was widened to
// timestamp_ntz) to microsecond timestamps at midnight of each day.
func (c *converter) datesToTimestamps(src *array.Date32, to *arrow.TimestampType) arrow.Array {
	n := src.Len()
	valid := c.validity(src)
	if valid != nil {
		defer valid.Release()
	}
	buf := memory.NewResizableBuffer(c.mem)
	defer buf.Release()
	buf.Resize(n * 8)
	out := arrow.TimestampTraits.CastFromBytes(buf.Bytes())
	in := src.Date32Values()
	for i := range n {
		out[i] = arrow.Timestamp(int64(in[i]) * 86_400_000_000)
	}
	data := array.NewData(to, n, []*memory.Buffer{valid, buf}, nil, src.NullN(), 0)
	defer data.Release()
	return array.MakeFromData(data)
}

// setWidenedInt sets the bounds of a Parquet integer column chunk (no logical type, or a signed
// INT one) for a column whose type is an integer, or a decimal or double it was widened to.
func setWidenedInt(ct colType, lo, hi int64, set func(lo, hi value)) {
	switch {
	case ct.kind == kInt && !ct.date && !ct.ts:
		set(value{i: lo}, value{i: hi})
	case ct.kind == kDecimal:
		l, ok1 := scaleUp(lo, ct.scale)
		h, ok2 := scaleUp(hi, ct.scale)
		if ok1 && ok2 {
			set(value{d: l}, value{d: h})
		}
	case ct.kind == kFloat && !ct.float32:
		set(value{f: float64(lo)}, value{f: float64(hi)})
	}
}

// widenedDecimal sets the bounds of a Parquet decimal column chunk stored as INT32 or INT64
// (unscaled values at the file's scale) for a column of a scale at least as large (a decimal
// widened to a larger scale, or the same).
func widenedDecimal(ct colType, fileScale int32, lo, hi int64, set func(lo, hi value)) {
	l, ok1 := scaleUp(lo, ct.scale-fileScale)
	h, ok2 := scaleUp(hi, ct.scale-fileScale)
	if ok1 && ok2 {
		set(value{d: l}, value{d: h})
	}
}

// scaleUp returns v·10^by as a decimal; ok is false when that leaves 38 digits (a file that
// does not match its column: no bound rather than a wrong one).
func scaleUp(v int64, by int32) (decimal128.Num, bool) {
	n := decimal128.FromI64(v)
	if by < 0 || by > 38 {
		return n, false
	}
	// |v| < 9.3·10^18, so up to 10^19 the product stays below 10^38.
	if by > 19 && !n.Abs().Less(decimal128.GetScaleMultiplier(int(38-by))) {
		return n, false
	}
	return n.IncreaseScaleBy(by), true
}
