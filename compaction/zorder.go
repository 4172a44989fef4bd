package compaction

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/txlog"
)

// zorderable reports whether a column of type t can be a Z-order column.
func zorderable(t txlog.DataType) bool {
	switch v := t.(type) {
	case *txlog.PrimitiveType:
		switch v.Name {
		case "string", "binary", "byte", "short", "integer", "long", "float", "double", "boolean", "date", "timestamp", "timestamp_ntz":
			return true
		}
	case *txlog.DecimalType:
		return true
	}
	return false
}

// zorderSort returns one record holding the rows of recs sorted by their Z-order value over
// cols: each column's values are ranked (dense ranks, nulls first), the ranks scaled to the
// same number of bits, and the bits of the columns interleaved from the most significant down.
// Rows with equal Z-values keep their order. The caller releases the record.
func zorderSort(ctx context.Context, recs []arrow.RecordBatch, cols []string, mem memory.Allocator) (arrow.RecordBatch, error) {
	schema := recs[0].Schema()
	ncols := int(schema.NumFields())
	merged := make([]arrow.Array, ncols)
	defer func() {
		for _, a := range merged {
			if a != nil {
				a.Release()
			}
		}
	}()
	for c := 0; c < ncols; c++ {
		parts := make([]arrow.Array, len(recs))
		for i, r := range recs {
			parts[i] = r.Column(c)
		}
		a, err := array.Concatenate(parts, mem)
		if err != nil {
			return nil, fmt.Errorf("z-order: concatenate column %s: %w", schema.Field(c).Name, err)
		}
		merged[c] = a
	}
	n := merged[0].Len()
	width := min(32, 64/len(cols))
	keys := make([]uint64, n)
	scaled := make([][]uint64, len(cols))
	for i, name := range cols {
		idx := schema.FieldIndices(name)
		if len(idx) != 1 {
			return nil, fmt.Errorf("z-order: column %q is not in the scan's records", name)
		}
		r, err := ranks(merged[idx[0]], width)
		if err != nil {
			return nil, fmt.Errorf("z-order: column %q: %w", name, err)
		}
		scaled[i] = r
	}
	for row := 0; row < n; row++ {
		var z uint64
		for b := width - 1; b >= 0; b-- {
			for c := range cols {
				z = z<<1 | (scaled[c][row]>>uint(b))&1
			}
		}
		keys[row] = z
	}
	perm := make([]int64, n)
	for i := range perm {
		perm[i] = int64(i)
	}
	slices.SortStableFunc(perm, func(a, b int64) int { return cmp.Compare(keys[a], keys[b]) })

	ib := array.NewInt64Builder(mem)
	ib.AppendValues(perm, nil)
	indices := ib.NewArray()
	ib.Release()
	defer indices.Release()
	cctx := compute.WithAllocator(ctx, mem)
	out := make([]arrow.Array, ncols)
	for c := range merged {
		a, err := compute.TakeArray(cctx, merged[c], indices)
		if err != nil {
			for _, x := range out[:c] {
				x.Release()
			}
			return nil, fmt.Errorf("z-order: reorder column %s: %w", schema.Field(c).Name, err)
		}
		out[c] = a
	}
	rec := array.NewRecordBatch(schema, out, int64(n))
	for _, a := range out {
		a.Release()
	}
	return rec, nil
}

// ranks returns each row's dense rank in arr (nulls first, rank 0) scaled to [0, 2^width-1].
func ranks(arr arrow.Array, width int) ([]uint64, error) {
	compare, err := comparator(arr)
	if err != nil {
		return nil, err
	}
	n := arr.Len()
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	full := func(i, j int) int {
		ni, nj := arr.IsNull(i), arr.IsNull(j)
		switch {
		case ni && nj:
			return 0
		case ni:
			return -1
		case nj:
			return 1
		}
		return compare(i, j)
	}
	slices.SortFunc(order, full)
	rank := make([]uint64, n)
	var r uint64
	for k, i := range order {
		if k > 0 && full(order[k-1], i) != 0 {
			r++
		}
		rank[i] = r
	}
	distinct := r + 1
	if distinct <= 1 {
		return rank, nil
	}
	top := uint64(1)<<uint(width) - 1
	for i, v := range rank {
		// v * top / (distinct-1), exact in 128 bits.
		hi, lo := bits.Mul64(v, top)
		q, _ := bits.Div64(hi, lo, distinct-1)
		rank[i] = q
	}
	return rank, nil
}

// comparator compares two non-null values of arr by index.
func comparator(arr arrow.Array) (func(i, j int) int, error) {
	switch a := arr.(type) {
	case *array.String:
		return func(i, j int) int { return strings.Compare(a.Value(i), a.Value(j)) }, nil
	case *array.LargeString:
		return func(i, j int) int { return strings.Compare(a.Value(i), a.Value(j)) }, nil
	case *array.Binary:
		return func(i, j int) int { return bytes.Compare(a.Value(i), a.Value(j)) }, nil
	case *array.LargeBinary:
		return func(i, j int) int { return bytes.Compare(a.Value(i), a.Value(j)) }, nil
	case *array.Int8:
		return func(i, j int) int { return cmp.Compare(a.Value(i), a.Value(j)) }, nil
	case *array.Int16:
		return func(i, j int) int { return cmp.Compare(a.Value(i), a.Value(j)) }, nil
	case *array.Int32:
		return func(i, j int) int { return cmp.Compare(a.Value(i), a.Value(j)) }, nil
	case *array.Int64:
		return func(i, j int) int { return cmp.Compare(a.Value(i), a.Value(j)) }, nil
	case *array.Float32:
		return func(i, j int) int { return cmp.Compare(a.Value(i), a.Value(j)) }, nil
	case *array.Float64:
		return func(i, j int) int { return cmp.Compare(a.Value(i), a.Value(j)) }, nil
	case *array.Date32:
		return func(i, j int) int { return cmp.Compare(a.Value(i), a.Value(j)) }, nil
	case *array.Timestamp:
		return func(i, j int) int { return cmp.Compare(a.Value(i), a.Value(j)) }, nil
	case *array.Boolean:
		return func(i, j int) int {
			x, y := a.Value(i), a.Value(j)
			switch {
			case x == y:
				return 0
			case !x:
				return -1
			}
			return 1
		}, nil
	case *array.Decimal128:
		return func(i, j int) int { return a.Value(i).Cmp(a.Value(j)) }, nil
	case *array.Dictionary:
		inner, err := comparator(a.Dictionary())
		if err != nil {
			return nil, err
		}
		return func(i, j int) int { return inner(a.GetValueIndex(i), a.GetValueIndex(j)) }, nil
	}
	return nil, fmt.Errorf("values of Arrow type %s cannot be ranked", arr.DataType())
}
