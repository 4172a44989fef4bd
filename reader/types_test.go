package reader_test

import (
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/txlog"
)

// Timestamps stored as millis, micros, nanos and INT96 all come back as microseconds (UTC for
// timestamp, zone-less for timestamp_ntz); other encodings a writer may choose (narrow ints,
// dictionaries, decimals as int32/int64) come back as the table's types.
func TestFileEncodings(t *testing.T) {
	dir := t.TempDir()
	schema := &txlog.StructType{Fields: []txlog.StructField{
		{Name: "id", Type: txlog.Integer, Nullable: true},
		{Name: "ts", Type: txlog.Timestamp, Nullable: true},
		{Name: "ntz", Type: txlog.TimestampNTZ, Nullable: true},
		{Name: "s", Type: txlog.String, Nullable: true},
		{Name: "d", Type: &txlog.DecimalType{Precision: 9, Scale: 2}, Nullable: true},
		{Name: "b", Type: txlog.Byte, Nullable: true},
		{Name: "l", Type: txlog.Long, Nullable: true},
		{Name: "f", Type: txlog.Float, Nullable: true},
	}}
	acts := createActions(schema, nil, nil, txlog.Protocol{MinReaderVersion: 3, MinWriterVersion: 7,
		ReaderFeatures: []string{"timestampNtz"}, WriterFeatures: []string{"timestampNtz"}})
	inst := time.Date(1969, 12, 31, 23, 59, 59, 123456789, time.UTC)
	type enc struct {
		name   string
		unit   arrow.TimeUnit
		props  pqarrow.ArrowWriterProperties
		wprops []parquet.WriterProperty
	}
	for i, e := range []enc{
		{"millis", arrow.Millisecond, pqarrow.DefaultWriterProps(), nil},
		{"micros", arrow.Microsecond, pqarrow.DefaultWriterProps(), nil},
		{"nanos", arrow.Nanosecond, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()), []parquet.WriterProperty{parquet.WithVersion(parquet.V2_LATEST)}},
		{"int96", arrow.Nanosecond, pqarrow.NewArrowWriterProperties(pqarrow.WithDeprecatedInt96Timestamps(true)), nil},
	} {
		mem := memory.DefaultAllocator
		fs := arrow.NewSchema([]arrow.Field{
			{Name: "id", Type: arrow.PrimitiveTypes.Int16, Nullable: true}, // narrower than the table's
			{Name: "ts", Type: &arrow.TimestampType{Unit: e.unit, TimeZone: "UTC"}, Nullable: true},
			{Name: "ntz", Type: &arrow.TimestampType{Unit: e.unit}, Nullable: true},
			{Name: "s", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}, Nullable: true},
			{Name: "d", Type: &arrow.Decimal128Type{Precision: 9, Scale: 2}, Nullable: true},
			{Name: "b", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
			{Name: "l", Type: arrow.PrimitiveTypes.Int32, Nullable: true}, // widened to long
			{Name: "f", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		}, nil)
		b := array.NewRecordBuilder(mem, fs)
		v := inst.UnixNano()
		switch e.unit {
		case arrow.Millisecond:
			v = inst.UnixMilli() // floor: 23:59:59.123
		case arrow.Microsecond:
			v = inst.UnixMicro()
		}
		b.Field(0).(*array.Int16Builder).Append(int16(i))
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(v))
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(v))
		b.Field(3).(*array.BinaryDictionaryBuilder).AppendString("x")
		b.Field(4).(*array.Decimal128Builder).Append(decimal128.FromI64(-12345))
		b.Field(5).(*array.Int8Builder).Append(-7)
		b.Field(6).(*array.Int32Builder).Append(1 << 30)
		b.Field(7).(*array.Float32Builder).Append(1.1)
		for k := range fs.Fields() {
			if k > 0 {
				b.Field(k).AppendNull()
			}
		}
		b.Field(0).(*array.Int16Builder).Append(int16(i + 10))
		rec := b.NewRecordBatch()
		b.Release()
		rel := "part-" + e.name + ".parquet"
		size := writeParquet(t, dir, rel, 0, e.props, rec)
		rec.Release()
		acts = append(acts, addAction(rel, size, nil, nil))
	}
	writeCommit(t, dir, 0, acts...)
	tbl, snap := openLatest(t, dir)
	rows, _, err := scanAll(t, tbl, snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	micros := `"1969-12-31T23:59:59.123456`
	millis := `"1969-12-31T23:59:59.123000`
	rest := `"s":"x","d":"-123.45","b":-7,"l":1073741824,"f":1.1}`
	null := `"ts":null,"ntz":null,"s":null,"d":null,"b":null,"l":null,"f":null}`
	want := []string{
		`{"id":0,"ts":` + millis + `Z","ntz":` + millis + `",` + rest,
		`{"id":10,` + null,
		`{"id":1,"ts":` + micros + `Z","ntz":` + micros + `",` + rest,
		`{"id":11,` + null,
		`{"id":2,"ts":` + micros + `Z","ntz":` + micros + `",` + rest,
		`{"id":12,` + null,
		`{"id":3,"ts":` + micros + `Z","ntz":` + micros + `",` + rest,
		`{"id":13,` + null,
	}
	slices.Sort(rows)
	slices.Sort(want)
	if !slices.Equal(rows, want) {
		for i := range max(len(rows), len(want)) {
			var g, w string
			if i < len(rows) {
				g = rows[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("got  %s\nwant %s", g, w)
			}
		}
	}
	// Filters on converted columns compare in the table's types.
	rows, _, err = scanAll(t, tbl, snap, &reader.ScanOptions{Columns: []string{"id"},
		Filters: mustFilters(t, "ts < 1969-12-31T23:59:59.123001Z", "f = 1.1", "d = -123.45", "l >= 1073741824")})
	if err != nil || !slices.Equal(rows, []string{`{"id":0}`}) {
		t.Fatalf("%v %v", rows, err)
	}
}

// Nested types: structs, lists and maps (with non-string keys), and their nulls.
func TestNestedTypes(t *testing.T) {
	dir := t.TempDir()
	inner := &txlog.StructType{Fields: []txlog.StructField{{Name: "k", Type: txlog.String, Nullable: true}}}
	schema := &txlog.StructType{Fields: []txlog.StructField{
		{Name: "arr", Type: &txlog.ArrayType{ElementType: inner, ContainsNull: true}, Nullable: true},
		{Name: "m", Type: &txlog.MapType{KeyType: txlog.Integer, ValueType: &txlog.ArrayType{ElementType: txlog.Long, ContainsNull: true}, ValueContainsNull: true}, Nullable: true},
		{Name: "st", Type: &txlog.StructType{Fields: []txlog.StructField{
			{Name: "a", Type: txlog.Date, Nullable: true},
			{Name: "added", Type: txlog.Binary, Nullable: true}, // not in the file: nulls
		}}, Nullable: true},
	}}
	acts := createActions(schema, nil, nil, txlog.Protocol{MinReaderVersion: 1, MinWriterVersion: 2})
	fs := arrow.NewSchema([]arrow.Field{
		{Name: "arr", Type: arrow.ListOf(arrow.StructOf(arrow.Field{Name: "k", Type: arrow.BinaryTypes.String, Nullable: true})), Nullable: true},
		{Name: "m", Type: arrow.MapOf(arrow.PrimitiveTypes.Int32, arrow.ListOf(arrow.PrimitiveTypes.Int64)), Nullable: true},
		{Name: "st", Type: arrow.StructOf(arrow.Field{Name: "a", Type: arrow.FixedWidthTypes.Date32, Nullable: true}), Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, fs)
	lb := b.Field(0).(*array.ListBuilder)
	sb := lb.ValueBuilder().(*array.StructBuilder)
	mb := b.Field(1).(*array.MapBuilder)
	stb := b.Field(2).(*array.StructBuilder)
	// Row 0: values.
	lb.Append(true)
	sb.Append(true)
	sb.FieldBuilder(0).(*array.StringBuilder).Append("v")
	sb.AppendNull()
	mb.Append(true)
	mb.KeyBuilder().(*array.Int32Builder).Append(7)
	vl := mb.ItemBuilder().(*array.ListBuilder)
	vl.Append(true)
	vl.ValueBuilder().(*array.Int64Builder).AppendValues([]int64{1, 2}, nil)
	stb.Append(true)
	stb.FieldBuilder(0).(*array.Date32Builder).Append(19000)
	// Row 1: nulls and empties.
	lb.AppendNull()
	mb.Append(true)
	stb.AppendNull()
	rec := b.NewRecordBatch()
	b.Release()
	size := writeParquet(t, dir, "f.parquet", 0, pqarrow.DefaultWriterProps(), rec)
	rec.Release()
	writeCommit(t, dir, 0, append(acts, addAction("f.parquet", size, nil, nil))...)
	tbl, snap := openLatest(t, dir)
	rows, _, err := scanAll(t, tbl, snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"arr":[{"k":"v"},null],"m":{"7":[1,2]},"st":{"a":"2022-01-08","added":null}}`,
		`{"arr":null,"m":{},"st":null}`,
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("rows\n%v\nwant\n%v", rows, want)
	}
	// Filters on struct fields by dotted path; a null struct never matches.
	for where, n := range map[string]int{"st.a = 2022-01-08": 1, "st.a != 2022-01-08": 0, "st.a < 2000-01-01": 0} {
		rows, _, err := scanAll(t, tbl, snap, &reader.ScanOptions{Filters: mustFilters(t, where)})
		if err != nil || len(rows) != n {
			t.Errorf("%s: %v %v", where, rows, err)
		}
	}
}
