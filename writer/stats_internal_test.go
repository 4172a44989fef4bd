package writer

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/txlog"
)

func TestTruncateStrings(t *testing.T) {
	long := strings.Repeat("a", 32)
	tests := []struct {
		in, min, max string
		maxOK        bool
	}{
		{"short", "short", "short", true},
		{long, long, long, true},
		{long + "b", long, long + "\x7f", true},
		{long + "bcd", long, long + "\x7f", true},
		{long + "é", long, long + "\U0010FFFF", true},
		{long + "\x7f", long, long + "\U0010FFFF", true},
		{long + "\U0010FFFFz", long, long + "\U0010FFFF\x7f", true},
		{long + strings.Repeat("\U0010FFFF", 40), long, "", false},
		{strings.Repeat("日", 40), strings.Repeat("日", 32), strings.Repeat("日", 32) + "\U0010FFFF", true},
	}
	for _, tc := range tests {
		if got := truncateMin(tc.in, 32); got != tc.min {
			t.Errorf("truncateMin(%q) = %q, want %q", tc.in, got, tc.min)
		}
		got, ok := truncateMax(tc.in, 32)
		if ok != tc.maxOK || got != tc.max {
			t.Errorf("truncateMax(%q) = %q %v, want %q %v", tc.in, got, ok, tc.max, tc.maxOK)
		}
		if ok && got < tc.in {
			t.Errorf("truncateMax(%q) = %q is not an upper bound", tc.in, got)
		}
		if !utf8.ValidString(got) {
			t.Errorf("truncateMax(%q) is not valid UTF-8", tc.in)
		}
	}
}

func statsOf(t *testing.T, fields []txlog.StructField, config map[string]string, tight bool, build func(b *array.RecordBuilder)) string {
	t.Helper()
	md := txlog.Metadata{SchemaString: (&txlog.StructType{Fields: fields}).String(), Configuration: config}
	proto := txlog.Protocol{MinReaderVersion: 1, MinWriterVersion: 2}
	if tight {
		proto = txlog.Protocol{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: []string{"deletionVectors"}, WriterFeatures: []string{"deletionVectors"}}
	}
	lay, err := newLayout(md, proto)
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := array.NewRecordBuilder(mem, lay.file)
	defer b.Release()
	build(b)
	rec := b.NewRecordBatch()
	defer rec.Release()
	fs := newFileStats(lay.stats)
	// Two halves, as two writes.
	h := rec.NumRows() / 2
	for _, part := range []arrow.RecordBatch{rec.NewSlice(0, h), rec.NewSlice(h, rec.NumRows())} {
		fs.update(part)
		part.Release()
	}
	return fs.json()
}

func TestStatsJSON(t *testing.T) {
	fields := []txlog.StructField{
		{Name: "ts", Type: txlog.Timestamp, Nullable: true},
		{Name: "ntz", Type: txlog.TimestampNTZ, Nullable: true},
		{Name: "d", Type: txlog.Double, Nullable: true},
		{Name: "dec", Type: &txlog.DecimalType{Precision: 5, Scale: 2}, Nullable: true},
		{Name: "s", Type: &txlog.StructType{Fields: []txlog.StructField{
			{Name: "a", Type: txlog.String, Nullable: true},
			{Name: "bo", Type: txlog.Boolean, Nullable: true},
		}}, Nullable: true},
		{Name: "dt", Type: txlog.Date, Nullable: true},
	}
	got := statsOf(t, fields, nil, false, func(b *array.RecordBuilder) {
		// 2024-01-02T03:04:05.123456Z and .999001
		b.Field(0).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{1704164645123456, 1704164645999001, 0}, []bool{true, true, false})
		b.Field(1).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{-1, 1}, nil)
		b.Field(1).AppendNull()
		b.Field(2).(*array.Float64Builder).AppendValues([]float64{1.5, -2, 0.1}, nil)
		b.Field(3).(*array.Decimal128Builder).AppendNull()
		b.Field(3).(*array.Decimal128Builder).Append(decimalNum(-5))
		b.Field(3).(*array.Decimal128Builder).Append(decimalNum(12345))
		sb := b.Field(4).(*array.StructBuilder)
		sb.Append(true)
		sb.FieldBuilder(0).(*array.StringBuilder).Append("zeta")
		sb.FieldBuilder(1).(*array.BooleanBuilder).Append(true)
		sb.AppendNull() // appends nulls to the fields too
		sb.Append(true)
		sb.FieldBuilder(0).(*array.StringBuilder).Append("alpha")
		sb.FieldBuilder(1).(*array.BooleanBuilder).AppendNull()
		b.Field(5).(*array.Date32Builder).AppendValues([]arrow.Date32{19724, -1, 0}, nil)
	})
	want := `{"numRecords":3,` +
		`"minValues":{"ts":"2024-01-02T03:04:05.123Z","ntz":"1969-12-31T23:59:59.999","d":-2,"dec":-0.05,"s":{"a":"alpha"},"dt":"1969-12-31"},` +
		`"maxValues":{"ts":"2024-01-02T03:04:06.000Z","ntz":"1970-01-01T00:00:00.001","d":1.5,"dec":123.45,"s":{"a":"zeta"},"dt":"2024-01-02"},` +
		`"nullCount":{"ts":1,"ntz":1,"d":0,"dec":1,"s":{"a":1,"bo":2},"dt":0}}`
	if got != want {
		t.Errorf("stats\n got %s\nwant %s", got, want)
	}
}

func decimalNum(v int64) decimal128.Num { return decimal128.FromI64(v) }

func TestStatsNaNAndLimits(t *testing.T) {
	fields := []txlog.StructField{
		{Name: "a", Type: txlog.Double, Nullable: true},
		{Name: "b", Type: txlog.Long, Nullable: true},
		{Name: "c", Type: txlog.Long, Nullable: true},
	}
	fill := func(b *array.RecordBuilder) {
		b.Field(0).(*array.Float64Builder).AppendValues([]float64{1, math.NaN()}, nil)
		b.Field(1).(*array.Int64Builder).AppendValues([]int64{1, 2}, nil)
		b.Field(2).(*array.Int64Builder).AppendValues([]int64{3, 4}, nil)
	}
	tests := []struct {
		config map[string]string
		tight  bool
		want   string
	}{
		{nil, false, `{"numRecords":2,"minValues":{"b":1,"c":3},"maxValues":{"b":2,"c":4},"nullCount":{"a":0,"b":0,"c":0}}`},
		{map[string]string{"delta.dataSkippingNumIndexedCols": "2"}, false, `{"numRecords":2,"minValues":{"b":1},"maxValues":{"b":2},"nullCount":{"a":0,"b":0}}`},
		{map[string]string{"delta.dataSkippingNumIndexedCols": "0"}, false, `{"numRecords":2,"nullCount":{}}`},
		{map[string]string{"delta.dataSkippingStatsColumns": "c, `A`"}, true, `{"numRecords":2,"minValues":{"c":3},"maxValues":{"c":4},"nullCount":{"a":0,"c":0},"tightBounds":true}`},
	}
	for _, tc := range tests {
		if got := statsOf(t, fields, tc.config, tc.tight, fill); got != tc.want {
			t.Errorf("config %v:\n got %s\nwant %s", tc.config, got, tc.want)
		}
	}
}
