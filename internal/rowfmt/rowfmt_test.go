package rowfmt_test

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/internal/rowfmt"
)

// sample builds a record with every type the reader returns: two rows of values, one of nulls.
func sample(t *testing.T, mem memory.Allocator) arrow.RecordBatch {
	t.Helper()
	sch := arrow.NewSchema([]arrow.Field{
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
		{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "ntz", Type: &arrow.TimestampType{Unit: arrow.Microsecond}, Nullable: true},
		{Name: "dec", Type: &arrow.Decimal128Type{Precision: 8, Scale: 5}, Nullable: true},
		{Name: "st", Type: arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int32, Nullable: true}), Nullable: true},
		{Name: "l", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "m", Type: arrow.MapOf(arrow.PrimitiveTypes.Int32, arrow.BinaryTypes.String), Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, sch)
	defer b.Release()
	ts := time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC).UnixMicro()
	for r := 0; r < 2; r++ {
		b.Field(0).(*array.BooleanBuilder).Append(r == 0)
		b.Field(1).(*array.Int8Builder).Append(-8)
		b.Field(2).(*array.Int64Builder).Append(1 << 60)
		b.Field(3).(*array.Float32Builder).Append([]float32{1.1, float32(math.Inf(-1))}[r])
		b.Field(4).(*array.Float64Builder).Append([]float64{10, math.NaN()}[r])
		b.Field(5).(*array.StringBuilder).Append([]string{"a\"b\n<é>", "x,y"}[r])
		b.Field(6).(*array.BinaryBuilder).Append([]byte("bytes"))
		b.Field(7).(*array.Date32Builder).Append([]arrow.Date32{19724, -1}[r])
		b.Field(8).(*array.TimestampBuilder).Append(arrow.Timestamp([]int64{ts, -1}[r]))
		b.Field(9).(*array.TimestampBuilder).Append(arrow.Timestamp(ts))
		b.Field(10).(*array.Decimal128Builder).Append(decimal128.FromI64([]int64{-567800, 5}[r]))
		sb := b.Field(11).(*array.StructBuilder)
		sb.Append(true)
		sb.FieldBuilder(0).(*array.Int32Builder).Append(7)
		lb := b.Field(12).(*array.ListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.StringBuilder).Append("e")
		lb.ValueBuilder().(*array.StringBuilder).AppendNull()
		mb := b.Field(13).(*array.MapBuilder)
		mb.Append(true)
		mb.KeyBuilder().(*array.Int32Builder).Append(1)
		mb.ItemBuilder().(*array.StringBuilder).Append("one")
	}
	for _, f := range b.Fields() {
		f.AppendNull()
	}
	return b.NewRecordBatch()
}

func render(t *testing.T, format string, rec arrow.RecordBatch) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := rowfmt.NewWriter(&buf, format, rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestJSONL(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	rec := sample(t, mem)
	defer rec.Release()
	got := render(t, "jsonl", rec)
	want := `{"b":true,"i8":-8,"i64":1152921504606846976,"f32":1.1,"f64":10,"s":"a\"b\n<é>","bin":"Ynl0ZXM=","d":"2024-01-02","ts":"2024-01-02T03:04:05.123456Z","ntz":"2024-01-02T03:04:05.123456","dec":"-5.67800","st":{"x":7},"l":["e",null],"m":{"1":"one"}}
{"b":false,"i8":-8,"i64":1152921504606846976,"f32":"-Infinity","f64":"NaN","s":"x,y","bin":"Ynl0ZXM=","d":"1969-12-31","ts":"1969-12-31T23:59:59.999999Z","ntz":"2024-01-02T03:04:05.123456","dec":"0.00005","st":{"x":7},"l":["e",null],"m":{"1":"one"}}
{"b":null,"i8":null,"i64":null,"f32":null,"f64":null,"s":null,"bin":null,"d":null,"ts":null,"ntz":null,"dec":null,"st":null,"l":null,"m":null}
`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	for _, l := range strings.Split(strings.TrimSpace(got), "\n") {
		if !json.Valid([]byte(l)) {
			t.Fatalf("invalid JSON: %s", l)
		}
	}
}

func TestCSV(t *testing.T) {
	rec := sample(t, memory.DefaultAllocator)
	defer rec.Release()
	got := render(t, "csv", rec)
	want := `b,i8,i64,f32,f64,s,bin,d,ts,ntz,dec,st,l,m
true,-8,1152921504606846976,1.1,10,"a""b
<é>",Ynl0ZXM=,2024-01-02,2024-01-02T03:04:05.123456Z,2024-01-02T03:04:05.123456,-5.67800,"{""x"":7}","[""e"",null]","{""1"":""one""}"
false,-8,1152921504606846976,-Infinity,NaN,"x,y",Ynl0ZXM=,1969-12-31,1969-12-31T23:59:59.999999Z,2024-01-02T03:04:05.123456,0.00005,"{""x"":7}","[""e"",null]","{""1"":""one""}"
,,,,,,,,,,,,,
`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// An empty result still has its header.
	sch := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64}}, nil)
	var buf bytes.Buffer
	w, _ := rowfmt.NewWriter(&buf, "csv", sch)
	if err := w.Flush(); err != nil || buf.String() != "a\n" {
		t.Fatalf("%q %v", buf.String(), err)
	}
}

func TestTable(t *testing.T) {
	sch := arrow.NewSchema([]arrow.Field{
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"a", "longer\tname"}, nil)
	b.Field(0).(*array.StringBuilder).AppendNull()
	b.Field(1).(*array.Int64Builder).AppendValues([]int64{1, 22, 333}, nil)
	rec := b.NewRecordBatch()
	b.Release()
	defer rec.Release()
	got := render(t, "table", rec)
	want := "name          n\n------------  ---\na             1\nlonger\\tname  22\nnull          333\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}

func TestErrors(t *testing.T) {
	sch := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64}}, nil)
	if _, err := rowfmt.NewWriter(&bytes.Buffer{}, "xml", sch); err == nil || !strings.Contains(err.Error(), "jsonl, csv, table") {
		t.Fatalf("unknown format: %v", err)
	}
	rec := sample(t, memory.DefaultAllocator)
	defer rec.Release()
	w, _ := rowfmt.NewWriter(&bytes.Buffer{}, "jsonl", sch)
	if err := w.Write(rec); err == nil {
		t.Fatal("a record of another schema was written")
	}
}

func TestFloats(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{
		{0, "0"}, {1e21, "1e+21"}, {1e-7, "1e-7"}, {123456789.125, "123456789.125"}, {-0.5, "-0.5"},
	} {
		sch := arrow.NewSchema([]arrow.Field{{Name: "f", Type: arrow.PrimitiveTypes.Float64}}, nil)
		b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
		b.Field(0).(*array.Float64Builder).Append(tc.f)
		rec := b.NewRecordBatch()
		b.Release()
		if got := render(t, "jsonl", rec); got != `{"f":`+tc.want+"}\n" {
			t.Errorf("%v: %s", tc.f, got)
		}
		want, _ := json.Marshal(tc.f)
		if string(want) != tc.want {
			t.Errorf("encoding/json prints %v as %s, test wants %s", tc.f, want, tc.want)
		}
		rec.Release()
	}
}
