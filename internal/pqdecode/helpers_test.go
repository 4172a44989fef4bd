package pqdecode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// genOpts controls random column generation.
type genOpts struct {
	rows     int
	nullRate float64 // for nullable columns; 1 = all null, 0 = no nulls
	card     int     // distinct strings (0 = all distinct)
	maxLen   int     // max string length
}

// testSchema covers every supported type, required and optional.
func testSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "s_req", Type: arrow.BinaryTypes.String},
		{Name: "s_opt", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "s_hi", Type: arrow.BinaryTypes.String, Nullable: true}, // high cardinality
		{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: "i32", Type: arrow.PrimitiveTypes.Int32},
		{Name: "i32_opt", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "date", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "i64", Type: arrow.PrimitiveTypes.Int64},
		{Name: "i64_opt", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "ts_ms", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "ts_us", Type: &arrow.TimestampType{Unit: arrow.Microsecond}, Nullable: true},
		{Name: "ts_ns", Type: &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}},
		{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "f64_req", Type: arrow.PrimitiveTypes.Float64},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "b_req", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "all_null_s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "all_null_i", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "no_null_s", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
}

// genRecord fills sc with random data. Columns named all_null_* are all null,
// no_null_* have no nulls, *_req are required, s_hi is high cardinality.
func genRecord(mem memory.Allocator, sc *arrow.Schema, rng *rand.Rand, o genOpts) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, sc)
	defer b.Release()
	words := make([]string, max(o.card, 1))
	for i := range words {
		words[i] = randString(rng, o.maxLen)
	}
	for ci, f := range sc.Fields() {
		nullRate := o.nullRate
		switch {
		case !f.Nullable || strings.HasPrefix(f.Name, "no_null"):
			nullRate = 0
		case strings.HasPrefix(f.Name, "all_null"):
			nullRate = 1
		}
		fb := b.Field(ci)
		for r := 0; r < o.rows; r++ {
			if nullRate > 0 && rng.Float64() < nullRate {
				fb.AppendNull()
				continue
			}
			switch fb := fb.(type) {
			case *array.StringBuilder:
				if f.Name == "s_hi" || o.card == 0 {
					fb.Append(randString(rng, o.maxLen))
				} else {
					fb.Append(words[rng.IntN(len(words))])
				}
			case *array.BinaryBuilder:
				fb.Append([]byte(words[rng.IntN(len(words))]))
			case *array.Int32Builder:
				fb.Append(int32(rng.IntN(1000)) - 500)
			case *array.Date32Builder:
				fb.Append(arrow.Date32(rng.IntN(30000)))
			case *array.Int64Builder:
				if rng.IntN(2) == 0 {
					fb.Append(int64(rng.IntN(50)))
				} else {
					fb.Append(int64(rng.Uint64()))
				}
			case *array.TimestampBuilder:
				fb.Append(arrow.Timestamp(1_700_000_000_000 + rng.Int64N(1_000_000)))
			case *array.Float32Builder:
				fb.Append(rng.Float32())
			case *array.Float64Builder:
				fb.Append(float64(rng.IntN(100)) / 4)
			case *array.BooleanBuilder:
				fb.Append(rng.IntN(3) == 0)
			default:
				panic(fmt.Sprintf("unhandled builder %T", fb))
			}
		}
	}
	return b.NewRecordBatch()
}

func randString(rng *rand.Rand, maxLen int) string {
	n := rng.IntN(maxLen + 1) // includes empty strings
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte('a' + rng.IntN(26))
	}
	return string(buf)
}

// writeParquet writes rec with pqarrow, rowGroupRows rows per row group.
func writeParquet(t testing.TB, rec arrow.RecordBatch, rowGroupRows int64, props ...parquet.WriterProperty) []byte {
	t.Helper()
	tbl := array.NewTableFromRecords(rec.Schema(), []arrow.RecordBatch{rec})
	defer tbl.Release()
	var buf bytes.Buffer
	props = append([]parquet.WriterProperty{parquet.WithAllocator(memory.NewGoAllocator())}, props...)
	err := pqarrow.WriteTable(tbl, &buf, rowGroupRows, parquet.NewWriterProperties(props...),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatalf("write parquet: %v", err)
	}
	return buf.Bytes()
}

// openForCompare opens data twice: pf reads with mem (our decoders allocate
// everything, page reader buffers and results, from it, so mem must balance),
// and fr is pqarrow's reader on its own reader and allocator refMem (its record
// readers keep page buffers alive). done closes both.
func openForCompare(t testing.TB, data []byte, mem memory.Allocator) (pf *file.Reader, fr *pqarrow.FileReader, refMem memory.Allocator, done func()) {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(data), file.WithReadProps(parquet.NewReaderProperties(mem)))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	refMem = memory.NewGoAllocator()
	pfRef, err := file.NewParquetReader(bytes.NewReader(data), file.WithReadProps(parquet.NewReaderProperties(refMem)))
	if err != nil {
		pf.Close()
		t.Fatalf("open: %v", err)
	}
	fr, err = pqarrow.NewFileReader(pfRef, pqarrow.ArrowReadProperties{BatchSize: 1 << 20}, refMem)
	if err != nil {
		pf.Close()
		pfRef.Close()
		t.Fatalf("pqarrow reader: %v", err)
	}
	return pf, fr, refMem, func() { pf.Close(); pfRef.Close() }
}

// compareFile reads every top-level flat column of every row group with
// ReadColumn and with pqarrow and requires equal arrays. Columns listed in
// unsupported must report Supported false; every other leaf column must be
// supported. It returns the number of column chunks compared.
func compareFile(t testing.TB, data []byte, mem memory.Allocator, unsupported ...string) int {
	t.Helper()
	pf, fr, refMem, done := openForCompare(t, data, mem)
	defer done()
	skip := map[string]bool{}
	for _, s := range unsupported {
		skip[s] = true
	}
	compared := 0
	ctx := context.Background()
	for rg := 0; rg < pf.NumRowGroups(); rg++ {
		nrows := pf.RowGroup(rg).NumRows()
		for fi, sf := range fr.Manifest.Fields {
			name := sf.Field.Name
			dt := sf.Field.Type
			if !sf.IsLeaf() {
				for _, leaf := range leaves(&sf) {
					if Supported(pf, rg, leaf, dt) {
						t.Errorf("rg %d %s leaf %d: Supported true for a nested column", rg, name, leaf)
					}
				}
				continue
			}
			leaf := sf.ColIndex
			if skip[name] {
				if Supported(pf, rg, leaf, dt) {
					t.Errorf("rg %d %s: Supported true, want false", rg, name)
				}
				if arr, err := ReadColumn(pf, rg, leaf, dt, mem); err == nil {
					arr.Release()
					t.Errorf("rg %d %s: ReadColumn succeeded on an unsupported column", rg, name)
				} else if !errors.Is(err, ErrUnsupported) {
					t.Errorf("rg %d %s: %v, want ErrUnsupported", rg, name, err)
				}
				continue
			}
			if !Supported(pf, rg, leaf, dt) {
				_, _, why := check(pf, rg, leaf, dt)
				t.Errorf("rg %d %s: Supported false: %v", rg, name, why)
				continue
			}
			got, err := ReadColumn(pf, rg, leaf, dt, mem)
			if err != nil {
				t.Errorf("rg %d %s: ReadColumn: %v", rg, name, err)
				continue
			}
			want := readPQArrow(t, ctx, fr, rg, fi, refMem)
			checkArray(t, fmt.Sprintf("rg %d %s", rg, name), got, want, nrows)
			got.Release()
			want.Release()
			compared++
		}
	}
	return compared
}

func leaves(sf *pqarrow.SchemaField) []int {
	if sf.IsLeaf() {
		return []int{sf.ColIndex}
	}
	var out []int
	for i := range sf.Children {
		out = append(out, leaves(&sf.Children[i])...)
	}
	return out
}

func readPQArrow(t testing.TB, ctx context.Context, fr *pqarrow.FileReader, rg, field int, mem memory.Allocator) arrow.Array {
	t.Helper()
	ch, err := fr.RowGroup(rg).Column(field).Read(ctx)
	if err != nil {
		t.Fatalf("pqarrow read rg %d field %d: %v", rg, field, err)
	}
	defer ch.Release()
	if len(ch.Chunks()) == 0 {
		return array.MakeArrayOfNull(mem, ch.DataType(), 0)
	}
	arr, err := array.Concatenate(ch.Chunks(), mem)
	if err != nil {
		t.Fatalf("concatenate: %v", err)
	}
	return arr
}

func checkArray(t testing.TB, what string, got, want arrow.Array, nrows int64) {
	t.Helper()
	if int64(got.Len()) != nrows {
		t.Errorf("%s: got %d rows, want %d", what, got.Len(), nrows)
	}
	if !arrow.TypeEqual(got.DataType(), want.DataType()) {
		t.Errorf("%s: type %s, want %s", what, got.DataType(), want.DataType())
	}
	if got.NullN() != want.NullN() {
		t.Errorf("%s: %d nulls, want %d", what, got.NullN(), want.NullN())
	}
	if got.NullN() == 0 && got.Data().Buffers()[0] != nil {
		t.Errorf("%s: no nulls but a validity buffer", what)
	}
	if !array.Equal(got, want) {
		t.Errorf("%s: arrays differ\n got: %s\nwant: %s", what, trunc(got), trunc(want))
	}
	if v, ok := got.(interface{ ValidateFull() error }); ok {
		if err := v.ValidateFull(); err != nil {
			t.Errorf("%s: invalid array: %v", what, err)
		}
	}
}

func trunc(a arrow.Array) string {
	s := fmt.Sprint(a)
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// isPanic reports whether err came from a recovered panic.
func isPanic(err error) bool { return errors.Is(err, errPanic) }

func writeInt96(tbl arrow.Table, w *bytes.Buffer) error {
	return pqarrow.WriteTable(tbl, w, 1<<20, parquet.NewWriterProperties(),
		pqarrow.NewArrowWriterProperties(pqarrow.WithDeprecatedInt96Timestamps(true)))
}
