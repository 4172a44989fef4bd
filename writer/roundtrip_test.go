package writer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

// allTypes is a schema with every type the writer supports; p1 and p2 are the partition columns
// of the partitioned variant.
func allTypes() *txlog.StructType {
	return &txlog.StructType{Fields: []txlog.StructField{
		{Name: "id", Type: txlog.Long},
		{Name: "s", Type: txlog.String, Nullable: true},
		{Name: "l", Type: txlog.Long, Nullable: true},
		{Name: "i", Type: txlog.Integer, Nullable: true},
		{Name: "sh", Type: txlog.Short, Nullable: true},
		{Name: "b", Type: txlog.Byte, Nullable: true},
		{Name: "f", Type: txlog.Float, Nullable: true},
		{Name: "d", Type: txlog.Double, Nullable: true},
		{Name: "bo", Type: txlog.Boolean, Nullable: true},
		{Name: "bin", Type: txlog.Binary, Nullable: true},
		{Name: "dt", Type: txlog.Date, Nullable: true},
		{Name: "ts", Type: txlog.Timestamp, Nullable: true},
		{Name: "tsn", Type: txlog.TimestampNTZ, Nullable: true},
		{Name: "dec", Type: &txlog.DecimalType{Precision: 12, Scale: 3}, Nullable: true},
		{Name: "arr", Type: &txlog.ArrayType{ElementType: txlog.Integer, ContainsNull: true}, Nullable: true},
		{Name: "m", Type: &txlog.MapType{KeyType: txlog.String, ValueType: txlog.Long, ValueContainsNull: true}, Nullable: true},
		{Name: "st", Type: &txlog.StructType{Fields: []txlog.StructField{
			{Name: "x", Type: txlog.Integer, Nullable: true},
			{Name: "y", Type: txlog.String},
			{Name: "z", Type: &txlog.StructType{Fields: []txlog.StructField{{Name: "q", Type: txlog.Double, Nullable: true}}}, Nullable: true},
		}}, Nullable: true},
		{Name: "arrst", Type: &txlog.ArrayType{ElementType: &txlog.StructType{Fields: []txlog.StructField{{Name: "a", Type: txlog.String, Nullable: true}}}, ContainsNull: true}, Nullable: true},
		{Name: "p1", Type: txlog.String, Nullable: true},
		{Name: "p2", Type: txlog.Integer, Nullable: true},
	}}
}

var p1Values = []string{"a/b", "c d", "", "ü=%", "x"}

// appendRandom appends one random value of type dt (null with probability 1/8 if nullable).
func appendRandom(r *rand.Rand, b array.Builder, dt arrow.DataType, nullable bool) {
	if nullable && r.IntN(8) == 0 {
		b.AppendNull()
		return
	}
	switch bb := b.(type) {
	case *array.StringBuilder:
		n := r.IntN(40)
		var sb strings.Builder
		for range n {
			sb.WriteRune([]rune("abcxyzAZ09 /=é日😀")[r.IntN(16)])
		}
		bb.Append(sb.String())
	case *array.Int64Builder:
		bb.Append(r.Int64() >> r.IntN(64))
	case *array.Int32Builder:
		bb.Append(int32(r.Uint32()) >> r.IntN(32))
	case *array.Int16Builder:
		bb.Append(int16(r.Uint32()))
	case *array.Int8Builder:
		bb.Append(int8(r.Uint32()))
	case *array.Float32Builder:
		bb.Append(float32(r.NormFloat64() * 1e3))
	case *array.Float64Builder:
		bb.Append(r.NormFloat64() * math.Pow(10, float64(r.IntN(20)-10)))
	case *array.BooleanBuilder:
		bb.Append(r.IntN(2) == 0)
	case *array.BinaryBuilder:
		v := make([]byte, r.IntN(10))
		for i := range v {
			v[i] = byte(r.Uint32())
		}
		bb.Append(v)
	case *array.Date32Builder:
		bb.Append(arrow.Date32(r.IntN(40000) - 10000))
	case *array.TimestampBuilder:
		bb.Append(arrow.Timestamp(r.Int64N(4e15) - 1e15))
	case *array.Decimal128Builder:
		bb.Append(decimal128.FromI64(r.Int64N(1e12) - 5e11))
	case *array.ListBuilder:
		bb.Append(true)
		lt := dt.(*arrow.ListType)
		for range r.IntN(4) {
			appendRandom(r, bb.ValueBuilder(), lt.Elem(), lt.ElemField().Nullable)
		}
	case *array.MapBuilder:
		bb.Append(true)
		mt := dt.(*arrow.MapType)
		for k := range r.IntN(4) {
			bb.KeyBuilder().(*array.StringBuilder).Append(fmt.Sprint("k", k))
			appendRandom(r, bb.ItemBuilder(), mt.ItemType(), mt.ItemField().Nullable)
		}
	case *array.StructBuilder:
		bb.Append(true)
		st := dt.(*arrow.StructType)
		for i, f := range st.Fields() {
			appendRandom(r, bb.FieldBuilder(i), f.Type, f.Nullable)
		}
	default:
		panic(fmt.Sprintf("no generator for %T", b))
	}
}

func randomBatch(r *rand.Rand, mem memory.Allocator, sc *arrow.Schema, firstID, n int) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, sc)
	defer b.Release()
	for row := range n {
		for i, f := range sc.Fields() {
			switch f.Name {
			case "id":
				b.Field(i).(*array.Int64Builder).Append(int64(firstID + row))
			case "p1":
				if r.IntN(6) == 0 {
					b.Field(i).AppendNull()
				} else {
					b.Field(i).(*array.StringBuilder).Append(p1Values[r.IntN(len(p1Values))])
				}
			case "p2":
				if r.IntN(5) == 0 {
					b.Field(i).AppendNull()
				} else {
					b.Field(i).(*array.Int32Builder).Append(int32(r.IntN(2)))
				}
			default:
				appendRandom(r, b.Field(i), f.Type, f.Nullable)
			}
		}
	}
	return b.NewRecordBatch()
}

// TestRoundTripAllTypes writes random batches of every supported type, reads the files back
// with pqarrow, and compares: rows, partition values, and that the stats bound the values.
func TestRoundTripAllTypes(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { roundTrip(t, seed) })
	}
}

func roundTrip(t *testing.T, seed uint64) {
	ctx := context.Background()
	mem := checked(t)
	r := rand.New(rand.NewPCG(seed, 99))
	st := allTypes()
	parts := []string{"p1", "p2"}
	if seed%2 == 0 {
		parts = nil // every column in the files
	}
	tb := createTable(t, memURI(), st, parts, nil)
	sc, err := deltaarrow.Schema(st)
	if err != nil {
		t.Fatal(err)
	}
	opts := &writer.Options{Allocator: mem, RowGroupRows: int64(50 + r.IntN(500)), TargetFileSize: int64(8<<10 + r.IntN(64<<10))}
	w, err := writer.New(ctx, tb, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]any{}
	id := 0
	for range 1 + r.IntN(5) {
		n := 1 + r.IntN(700)
		rec := randomBatch(r, mem, sc, id, n)
		id += n
		for k, v := range recordJSON(t, rec, "id") {
			want[k] = v
		}
		if err := w.Write(ctx, rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for i := range res.Added {
		a := &res.Added[i]
		tbl, _ := readFile(t, tb, a)
		rows := rowsJSON(t, tbl, "id")
		tbl.Release()
		got += len(rows)
		for k, row := range rows {
			exp, ok := want[k]
			if !ok {
				t.Fatalf("row id %s was not written", k)
			}
			if parts == nil {
				gb, _ := json.Marshal(row)
				eb, _ := json.Marshal(exp)
				if string(gb) != string(eb) {
					t.Fatalf("row %s:\n got %s\nwant %s", k, gb, eb)
				}
				continue
			}
			// Partition values.
			p1, p2 := a.PartitionValues["p1"], a.PartitionValues["p2"]
			wantP1, _ := exp["p1"].(string) // null and "" are both null
			if (p1 == nil) != (wantP1 == "") || (p1 != nil && *p1 != wantP1) {
				t.Fatalf("row %s: p1 %v in a file with partition value %v", k, exp["p1"], p1)
			}
			wantP2 := fmt.Sprint(exp["p2"])
			if (p2 == nil) != (exp["p2"] == nil) || (p2 != nil && *p2 != wantP2) {
				t.Fatalf("row %s: p2 %v in a file with partition value %v", k, exp["p2"], p2)
			}
			e := map[string]any{}
			for c, v := range exp {
				if c != "p1" && c != "p2" {
					e[c] = v
				}
			}
			gb, _ := json.Marshal(row)
			eb, _ := json.Marshal(e)
			if string(gb) != string(eb) {
				t.Fatalf("row %s:\n got %s\nwant %s", k, gb, eb)
			}
		}
		checkBounds(t, a, rows)
	}
	if got != len(want) {
		t.Fatalf("read %d rows, wrote %d", got, len(want))
	}
}

// checkBounds checks that add.stats bound the file's values for a few column types.
func checkBounds(t *testing.T, a *txlog.Add, rows map[string]map[string]any) {
	t.Helper()
	st := parseStats(t, a.Stats)
	if n, _ := st["numRecords"].(json.Number).Int64(); n != int64(len(rows)) {
		t.Errorf("%s: numRecords %d for %d rows", a.Path, n, len(rows))
	}
	mins, _ := st["minValues"].(map[string]any)
	maxs, _ := st["maxValues"].(map[string]any)
	nulls := st["nullCount"].(map[string]any)
	for _, c := range []string{"l", "i", "d", "sh"} {
		lo, hasLo := mins[c].(json.Number)
		hi, hasHi := maxs[c].(json.Number)
		var nn int64
		for _, r := range rows {
			v, ok := r[c].(json.Number)
			if !ok {
				nn++
				continue
			}
			x, _ := v.Float64()
			l, _ := lo.Float64()
			h, _ := hi.Float64()
			if !hasLo || !hasHi || x < l || x > h {
				t.Errorf("%s: %s = %s outside stats [%v, %v]", a.Path, c, v, mins[c], maxs[c])
			}
		}
		if n, _ := nulls[c].(json.Number).Int64(); n != nn {
			t.Errorf("%s: %s nullCount %d, %d nulls", a.Path, c, n, nn)
		}
	}
	for _, r := range rows {
		if s, ok := r["s"].(string); ok {
			if s < mins["s"].(string) || s > maxs["s"].(string) {
				t.Errorf("%s: s = %q outside stats [%q, %q]", a.Path, s, mins["s"], maxs["s"])
			}
		}
	}
	// Nested: st.x has a nested nullCount; bo, bin, arr, m have no min/max.
	if _, ok := nulls["st"].(map[string]any)["z"].(map[string]any)["q"]; !ok {
		t.Errorf("%s: no nested nullCount: %s", a.Path, a.Stats)
	}
	for _, c := range []string{"bo", "bin", "arr", "m", "arrst"} {
		if mins[c] != nil || maxs[c] != nil {
			t.Errorf("%s: min/max for %s", a.Path, c)
		}
		if nulls[c] == nil {
			t.Errorf("%s: no nullCount for %s", a.Path, c)
		}
	}
	_ = time.Now
}
