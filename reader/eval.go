package reader

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// apply clears keep[i] for every row of arr that does not match the filter. arr is the
// filter's top-level column with its table type (internal/deltaarrow).
func (f *boundFilter) apply(arr arrow.Array, keep []bool) error {
	// Walk down to the compared field: a row whose struct (at any level) is null has a null
	// value, which never matches.
	for _, p := range f.path[1:] {
		if arr.NullN() > 0 {
			for i := range keep {
				if arr.IsNull(i) {
					keep[i] = false
				}
			}
		}
		st, ok := arr.(*array.Struct)
		if !ok {
			return fmt.Errorf("internal error: %s is not a struct", arr.DataType())
		}
		k, ok := st.DataType().(*arrow.StructType).FieldIdx(p.Name)
		if !ok {
			return fmt.Errorf("internal error: no field %q in %s", p.Name, arr.DataType())
		}
		arr = st.Field(k)
	}
	n := arr.Len()
	if f.op == opNever {
		clear(keep[:n])
		return nil
	}
	// Nulls never match.
	if arr.NullN() > 0 {
		for i := 0; i < n; i++ {
			if arr.IsNull(i) {
				keep[i] = false
			}
		}
	}
	if f.op == opNotNull {
		return nil
	}
	switch a := arr.(type) {
	case *array.Int8:
		applyInts(f, a.Int8Values(), keep)
	case *array.Int16:
		applyInts(f, a.Int16Values(), keep)
	case *array.Int32:
		applyInts(f, a.Int32Values(), keep)
	case *array.Int64:
		applyInts(f, a.Int64Values(), keep)
	case *array.Date32:
		applyInts(f, a.Date32Values(), keep)
	case *array.Timestamp:
		applyInts(f, a.TimestampValues(), keep)
	case *array.Float32:
		applyFloats(f, a.Float32Values(), keep)
	case *array.Float64:
		applyFloats(f, a.Float64Values(), keep)
	case *array.String:
		for i := 0; i < n; i++ {
			if keep[i] && !f.match(value{s: a.Value(i)}) {
				keep[i] = false
			}
		}
	case *array.Boolean:
		for i := 0; i < n; i++ {
			if keep[i] && !f.match(value{b: a.Value(i)}) {
				keep[i] = false
			}
		}
	case *array.Decimal128:
		vals := a.Values()
		for i := 0; i < n; i++ {
			if keep[i] && !f.match(value{d: vals[i]}) {
				keep[i] = false
			}
		}
	default:
		return fmt.Errorf("internal error: cannot filter a %s column", arr.DataType())
	}
	return nil
}

type integer interface {
	~int8 | ~int16 | ~int32 | ~int64
}

// applyInts is the integer (and date, timestamp) fast path.
func applyInts[T integer](f *boundFilter, vals []T, keep []bool) {
	if f.op == opIn {
		set := make(map[int64]struct{}, len(f.vals))
		for _, v := range f.vals {
			set[v.i] = struct{}{}
		}
		for i, x := range vals {
			if keep[i] {
				if _, ok := set[int64(x)]; !ok {
					keep[i] = false
				}
			}
		}
		return
	}
	v := f.vals[0].i
	var pred func(int64) bool
	switch f.op {
	case opEq:
		pred = func(x int64) bool { return x == v }
	case opNe:
		pred = func(x int64) bool { return x != v }
	case opLt:
		pred = func(x int64) bool { return x < v }
	case opLe:
		pred = func(x int64) bool { return x <= v }
	case opGt:
		pred = func(x int64) bool { return x > v }
	case opGe:
		pred = func(x int64) bool { return x >= v }
	default:
		return
	}
	for i, x := range vals {
		if keep[i] && !pred(int64(x)) {
			keep[i] = false
		}
	}
}

func applyFloats[T float32 | float64](f *boundFilter, vals []T, keep []bool) {
	if f.op == opIn {
		for i, x := range vals {
			if keep[i] && !f.match(value{f: float64(x)}) {
				keep[i] = false
			}
		}
		return
	}
	// Comparisons with NaN are false except !=, as Go's operators already behave.
	v := f.vals[0].f
	var pred func(float64) bool
	switch f.op {
	case opEq:
		pred = func(x float64) bool { return x == v }
	case opNe:
		pred = func(x float64) bool { return x != v }
	case opLt:
		pred = func(x float64) bool { return x < v }
	case opLe:
		pred = func(x float64) bool { return x <= v }
	case opGt:
		pred = func(x float64) bool { return x > v }
	case opGe:
		pred = func(x float64) bool { return x >= v }
	default:
		return
	}
	for i, x := range vals {
		if keep[i] && !pred(float64(x)) {
			keep[i] = false
		}
	}
}
