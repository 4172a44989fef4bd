package reader

import (
	"fmt"
	"math"

	"github.com/lakehouse/lake/internal/units"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// parquetBounds converts a column chunk's statistics to bounds in the column's comparison
// domain. Statistics that do not map exactly (another unit, another decimal scale, unsigned
// integers, INT96, decimals stored as bytes) give no min/max, only null information.
func parquetBounds(st metadata.TypedStatistics, col *schema.Column, ct colType, rows int64) bounds {
	var b bounds
	if st.HasNullCount() {
		b.allNull = st.NullCount() == rows && rows > 0
		b.noNull = st.NullCount() == 0
	}
	if !st.HasMinMax() {
		return b
	}
	lt := col.LogicalType()
	set := func(lo, hi value) {
		b.min, b.max, b.hasMin, b.hasMax = lo, hi, true, true
	}
	switch s := st.(type) {
	case *metadata.Int32Statistics:
		lo, hi := int64(s.Min()), int64(s.Max())
		switch l := lt.(type) {
		case schema.DateLogicalType:
			switch {
			case ct.date:
				set(value{i: lo}, value{i: hi})
			case ct.ntz: // a date column widened to timestamp_ntz: midnight of each day
				set(value{i: lo * 86_400_000_000}, value{i: hi * 86_400_000_000})
			}
		case schema.DecimalLogicalType:
			if ct.kind == kDecimal {
				widenedDecimal(ct, l.Scale(), lo, hi, set)
			}
		case schema.IntLogicalType:
			if l.IsSigned() {
				setWidenedInt(ct, lo, hi, set)
			}
		case schema.NoLogicalType, nil:
			setWidenedInt(ct, lo, hi, set)
		}
	case *metadata.Int64Statistics:
		lo, hi := s.Min(), s.Max()
		switch l := lt.(type) {
		case schema.TimestampLogicalType:
			if !ct.ts {
				break
			}
			switch l.TimeUnit() {
			case schema.TimeUnitMillis:
				if lo > math.MinInt64/1000 && hi < math.MaxInt64/1000 {
					set(value{i: lo * 1000}, value{i: hi * 1000})
				}
			case schema.TimeUnitMicros:
				set(value{i: lo}, value{i: hi})
			case schema.TimeUnitNanos:
				set(value{i: units.FloorDiv(lo, 1000)}, value{i: -units.FloorDiv(-hi, 1000)})
			}
		case schema.DecimalLogicalType:
			if ct.kind == kDecimal {
				widenedDecimal(ct, l.Scale(), lo, hi, set)
			}
		case schema.IntLogicalType:
			if l.IsSigned() && ct.kind != kFloat { // long does not widen to double
				setWidenedInt(ct, lo, hi, set)
			}
		case schema.NoLogicalType, nil:
			if ct.kind != kFloat {
				setWidenedInt(ct, lo, hi, set)
			}
		}
	case *metadata.Float32Statistics:
		lo, hi := float64(s.Min()), float64(s.Max())
		if ct.kind == kFloat && !math.IsNaN(lo) && !math.IsNaN(hi) {
			set(value{f: lo}, value{f: hi})
		}
	case *metadata.Float64Statistics:
		lo, hi := s.Min(), s.Max()
		if ct.kind == kFloat && !ct.float32 && !math.IsNaN(lo) && !math.IsNaN(hi) {
			set(value{f: lo}, value{f: hi})
		}
	case *metadata.BooleanStatistics:
		if ct.kind == kBool {
			set(value{b: s.Min()}, value{b: s.Max()})
		}
	case *metadata.ByteArrayStatistics:
		switch lt.(type) {
		case schema.StringLogicalType, schema.NoLogicalType, nil:
			if ct.kind == kString {
				set(value{s: string(s.Min())}, value{s: string(s.Max())})
				// Writers may truncate binary statistics.
				b.maxPrefix = true
			}
		}
	}
	return b
}

// constArray returns an array of n copies of v (null when v is null) of type dt.
func constArray(mem memory.Allocator, dt arrow.DataType, v value, n int) (arrow.Array, error) {
	if v.null {
		return array.MakeArrayOfNull(mem, dt, n), nil
	}
	bld := array.NewBuilder(mem, dt)
	defer bld.Release()
	bld.Reserve(n)
	switch b := bld.(type) {
	case *array.Int8Builder:
		for range n {
			b.UnsafeAppend(int8(v.i))
		}
	case *array.Int16Builder:
		for range n {
			b.UnsafeAppend(int16(v.i))
		}
	case *array.Int32Builder:
		for range n {
			b.UnsafeAppend(int32(v.i))
		}
	case *array.Int64Builder:
		for range n {
			b.UnsafeAppend(v.i)
		}
	case *array.Date32Builder:
		for range n {
			b.UnsafeAppend(arrow.Date32(v.i))
		}
	case *array.TimestampBuilder:
		for range n {
			b.UnsafeAppend(arrow.Timestamp(v.i))
		}
	case *array.Float32Builder:
		for range n {
			b.UnsafeAppend(float32(v.f))
		}
	case *array.Float64Builder:
		for range n {
			b.UnsafeAppend(v.f)
		}
	case *array.BooleanBuilder:
		for range n {
			b.UnsafeAppend(v.b)
		}
	case *array.Decimal128Builder:
		for range n {
			b.UnsafeAppend(v.d)
		}
	case *array.StringBuilder:
		b.ReserveData(n * len(v.s))
		for range n {
			b.Append(v.s)
		}
	case *array.BinaryBuilder:
		b.ReserveData(n * len(v.s))
		for range n {
			b.Append([]byte(v.s))
		}
	default:
		return nil, fmt.Errorf("a partition column of type %s is not supported", dt)
	}
	return bld.NewArray(), nil
}
