package writer_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"

	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/writer"
)

// Gather returns what compute.Take does, for every column type, sliced or not.
func TestGatherMatchesTake(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	sc, err := deltaarrow.Schema(allTypes())
	if err != nil {
		t.Fatal(err)
	}
	for seed := uint64(1); seed <= 6; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		rec := randomBatch(r, mem, sc, 0, 300)
		// A slice too: arrays with an offset, whose nested children are offset as well.
		for _, b := range []arrow.RecordBatch{rec, rec.NewSlice(17, 263)} {
			n := int(b.NumRows())
			idx := make([]int32, n)
			for i, p := range r.Perm(n) {
				idx[i] = int32(p)
			}
			idx = idx[:n-r.IntN(5)] // not always every row
			ib := array.NewInt32Builder(mem)
			ib.AppendValues(idx, nil)
			ia := ib.NewInt32Array()
			ib.Release()
			for i, col := range b.Columns() {
				got, err := writer.Gather(ctx, mem, col, idx)
				if err != nil {
					t.Fatal(err)
				}
				want, err := compute.TakeArray(compute.WithAllocator(ctx, mem), col, ia)
				if err != nil {
					t.Fatal(err)
				}
				if !array.Equal(got, want) || got.NullN() != want.NullN() {
					t.Errorf("seed %d column %s (%s): gather differs from take\n got %v\nwant %v", seed, sc.Field(i).Name, col.DataType(), got, want)
				}
				if err := array.ValidateFull(got); err != nil {
					t.Errorf("seed %d column %s: %v", seed, sc.Field(i).Name, err)
				}
				got.Release()
				want.Release()
			}
			ia.Release()
			if b != rec {
				b.Release()
			}
		}
		rec.Release()
	}
}

// Strings of every length around the 16-byte fast path, the last ones at the very end of the
// value buffer.
func TestGatherStrings(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	r := rand.New(rand.NewPCG(8, 9))
	b := array.NewStringBuilder(mem)
	for i := range 400 {
		if i%37 == 5 {
			b.AppendNull()
			continue
		}
		v := make([]byte, r.IntN(40))
		for j := range v {
			v[j] = byte('a' + r.IntN(26))
		}
		b.Append(string(v))
	}
	arr := b.NewStringArray()
	b.Release()
	defer arr.Release()
	for _, a := range []arrow.Array{arr, array.NewSlice(arr, 3, 391)} {
		n := a.Len()
		idx := make([]int32, n)
		for i, p := range r.Perm(n) {
			idx[i] = int32(p)
		}
		idx = append(idx, int32(n-1), int32(n-1), 0) // repeats, and the last value last
		got, err := writer.Gather(ctx, mem, a, idx)
		if err != nil {
			t.Fatal(err)
		}
		if err := array.ValidateFull(got); err != nil {
			t.Fatal(err)
		}
		s := got.(*array.String)
		for j, i := range idx {
			if s.IsNull(j) != a.IsNull(int(i)) || s.Value(j) != a.(*array.String).Value(int(i)) {
				t.Fatalf("row %d: got %q, want %q", j, s.Value(j), a.(*array.String).Value(int(i)))
			}
		}
		got.Release()
		if a != arrow.Array(arr) {
			a.Release()
		}
	}
}
