package reader_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/txlog"
)

// widening is one column of the type-widening table: its type before and after ALTER TABLE
// ... CHANGE COLUMN ... TYPE.
type widening struct {
	name     string
	from, to txlog.DataType
}

var widenings = []widening{
	{"b2s", txlog.Byte, txlog.Short},
	{"s2i", txlog.Short, txlog.Integer},
	{"i2l", txlog.Integer, txlog.Long},
	{"b2l", txlog.Byte, txlog.Long},
	{"f2d", txlog.Float, txlog.Double},
	{"i2d", txlog.Integer, txlog.Double},
	{"s2d", txlog.Short, txlog.Double},
	{"d2ts", txlog.Date, txlog.TimestampNTZ},
	{"dec", &txlog.DecimalType{Precision: 5, Scale: 2}, &txlog.DecimalType{Precision: 10, Scale: 4}},
	{"i2dec", txlog.Integer, &txlog.DecimalType{Precision: 12, Scale: 2}},
	{"l2dec", txlog.Long, &txlog.DecimalType{Precision: 22, Scale: 1}},
	{"b2dec", txlog.Byte, &txlog.DecimalType{Precision: 10, Scale: 0}},
}

// narrowRecord is the file written before the widening: two rows of values, then a row of
// nulls; the partition columns are not in the file.
func narrowRecord(t *testing.T) arrow.RecordBatch {
	t.Helper()
	var fields []arrow.Field
	for _, w := range widenings {
		at := map[string]arrow.DataType{
			"byte": arrow.PrimitiveTypes.Int8, "short": arrow.PrimitiveTypes.Int16,
			"integer": arrow.PrimitiveTypes.Int32, "long": arrow.PrimitiveTypes.Int64,
			"float": arrow.PrimitiveTypes.Float32, "date": arrow.FixedWidthTypes.Date32,
		}[w.from.TypeName()]
		if d, ok := w.from.(*txlog.DecimalType); ok {
			at = &arrow.Decimal128Type{Precision: int32(d.Precision), Scale: int32(d.Scale)}
		}
		fields = append(fields, arrow.Field{Name: w.name, Type: at, Nullable: true})
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema(fields, nil))
	defer b.Release()
	for row := range 2 {
		for i := range widenings {
			switch fb := b.Field(i).(type) {
			case *array.Int8Builder:
				fb.Append([]int8{100, -100}[row])
			case *array.Int16Builder:
				fb.Append([]int16{15000, -15000}[row])
			case *array.Int32Builder:
				fb.Append([]int32{1_000_000_000, -1_000_000_000}[row])
			case *array.Int64Builder:
				fb.Append([]int64{2_000_000_000_000_000_000, -4_000_000_000_000_000_000}[row])
			case *array.Float32Builder:
				fb.Append([]float32{0.1, -0.2}[row])
			case *array.Date32Builder:
				fb.Append([]arrow.Date32{19724, 19722}[row]) // 2024-01-02, 2023-12-31
			case *array.Decimal128Builder:
				fb.Append(decimal128.FromI64([]int64{12345, -24690}[row])) // 123.45, -246.90
			}
		}
	}
	for i := range widenings {
		b.Field(i).AppendNull()
	}
	return b.NewRecordBatch()
}

// wideRecord is a file written after the widening, with values only the wide types hold.
func wideRecord(t *testing.T) arrow.RecordBatch {
	t.Helper()
	var fields []arrow.Field
	for _, w := range widenings {
		at, err := deltaarrowType(w.to)
		if err != nil {
			t.Fatal(err)
		}
		fields = append(fields, arrow.Field{Name: w.name, Type: at, Nullable: true})
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema(fields, nil))
	defer b.Release()
	for i := range widenings {
		switch fb := b.Field(i).(type) {
		case *array.Int16Builder:
			fb.Append(1000)
		case *array.Int32Builder:
			fb.Append(100_000)
		case *array.Int64Builder:
			fb.Append(9_000_000_000_000_000_000)
		case *array.Float64Builder:
			fb.Append(1e300)
		case *array.TimestampBuilder:
			fb.Append(arrow.Timestamp(1_750_000_000_123_456)) // 2025-06-15T15:06:40.123456
		case *array.Decimal128Builder:
			fb.Append(decimal128.FromI64(123_456_789))
		}
	}
	return b.NewRecordBatch()
}

// writeParquetProps writes rec to dir/rel with pqarrow, statistics on, and extra properties.
func writeParquetProps(t *testing.T, dir, rel string, rec arrow.RecordBatch, extra ...parquet.WriterProperty) int64 {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	props := parquet.NewWriterProperties(append([]parquet.WriterProperty{parquet.WithStats(true)}, extra...)...)
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, props, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func deltaarrowType(t txlog.DataType) (arrow.DataType, error) {
	switch v := t.(type) {
	case *txlog.DecimalType:
		return &arrow.Decimal128Type{Precision: int32(v.Precision), Scale: int32(v.Scale)}, nil
	}
	m := map[string]arrow.DataType{"short": arrow.PrimitiveTypes.Int16, "integer": arrow.PrimitiveTypes.Int32,
		"long": arrow.PrimitiveTypes.Int64, "double": arrow.PrimitiveTypes.Float64,
		"timestamp_ntz": &arrow.TimestampType{Unit: arrow.Microsecond}}
	if at, ok := m[t.TypeName()]; ok {
		return at, nil
	}
	return nil, fmt.Errorf("no arrow type for %s", t.TypeName())
}

// widenedSchema is the schema before (wide false) or after the ALTER TABLEs, with the partition
// columns p (integer → long) and pd (date → timestamp_ntz).
func widenedSchema(wide bool, version int64) *txlog.StructType {
	st := &txlog.StructType{}
	add := func(name string, from, to txlog.DataType) {
		f := txlog.StructField{Name: name, Type: from, Nullable: true, Metadata: map[string]any{}}
		if wide {
			f.Type = to
			f.Metadata["delta.typeChanges"] = []any{map[string]any{
				"tableVersion": float64(version), "fromType": from.TypeName(), "toType": to.TypeName()}}
		}
		st.Fields = append(st.Fields, f)
	}
	for _, w := range widenings {
		add(w.name, w.from, w.to)
	}
	add("p", txlog.Integer, txlog.Long)
	add("pd", txlog.Date, txlog.TimestampNTZ)
	return st
}

// makeWidenedTable builds the log Spark writes for
//
//	CREATE TABLE ... (narrow types) PARTITIONED BY (p, pd); INSERT ...;
//	ALTER TABLE ... SET TBLPROPERTIES ('delta.enableTypeWidening' = 'true');
//	ALTER TABLE ... CHANGE COLUMN c TYPE wide (each column); INSERT ...
//
// (the ALTERs in one version here): version 0 creates the table and adds old.parquet with the
// narrow types, version 1 upgrades the protocol and widens every column, version 2 adds
// new.parquet with the wide types.
func makeWidenedTable(t *testing.T, feature string) string {
	t.Helper()
	dir := t.TempDir()
	old := narrowRecord(t)
	defer old.Release()
	// Spark stores small decimals as INT32/INT64.
	oldSize := writeParquetProps(t, dir, "p=7/pd=2024-01-01/old.parquet", old, parquet.WithStoreDecimalAsInteger(true))
	nw := wideRecord(t)
	defer nw.Release()
	newSize := writeParquetProps(t, dir, "p=8000000000/pd=2025-06-15 15%3A06%3A40.123456/new.parquet", nw)

	parts := []string{"p", "pd"}
	acts := createActions(widenedSchema(false, 0), parts, nil, txlog.Protocol{MinReaderVersion: 1, MinWriterVersion: 2})
	oldStats := map[string]any{
		"numRecords": 3,
		"minValues": map[string]any{"b2s": -100, "s2i": -15000, "i2l": -1000000000, "b2l": -100,
			"f2d": -0.2, "i2d": -1000000000, "s2d": -15000, "d2ts": "2023-12-31", "dec": -246.90,
			"i2dec": -1000000000, "l2dec": -4000000000000000000, "b2dec": -100},
		"maxValues": map[string]any{"b2s": 100, "s2i": 15000, "i2l": 1000000000, "b2l": 100,
			"f2d": 0.1, "i2d": 1000000000, "s2d": 15000, "d2ts": "2024-01-02", "dec": 123.45,
			"i2dec": 1000000000, "l2dec": 2000000000000000000, "b2dec": 100},
		"nullCount": map[string]any{"b2s": 1, "s2i": 1, "i2l": 1, "b2l": 1, "f2d": 1, "i2d": 1, "s2d": 1,
			"d2ts": 1, "dec": 1, "i2dec": 1, "l2dec": 1, "b2dec": 1},
	}
	acts = append(acts, addAction("p=7/pd=2024-01-01/old.parquet", oldSize,
		map[string]*string{"p": strp("7"), "pd": strp("2024-01-01")}, oldStats))
	writeCommit(t, dir, 0, acts...)

	conf := map[string]string{"delta.enableTypeWidening": "true"}
	alter := createActions(widenedSchema(true, 1), parts, conf, txlog.Protocol{MinReaderVersion: 3, MinWriterVersion: 7,
		ReaderFeatures: []string{feature}, WriterFeatures: []string{feature}})
	writeCommit(t, dir, 1, alter...)

	newStats := map[string]any{
		"numRecords": 1,
		"minValues": map[string]any{"b2s": 1000, "s2i": 100000, "i2l": int64(9e18), "b2l": int64(9e18),
			"f2d": 1e300, "i2d": 1e300, "s2d": 1e300, "d2ts": "2025-06-15T15:06:40.123Z", "dec": 12345.6789,
			"i2dec": 1234567.89, "l2dec": 12345678.9, "b2dec": 123456789},
		"maxValues": map[string]any{"b2s": 1000, "s2i": 100000, "i2l": int64(9e18), "b2l": int64(9e18),
			"f2d": 1e300, "i2d": 1e300, "s2d": 1e300, "d2ts": "2025-06-15T15:06:40.123Z", "dec": 12345.6789,
			"i2dec": 1234567.89, "l2dec": 12345678.9, "b2dec": 123456789},
		"nullCount": map[string]any{},
	}
	writeCommit(t, dir, 2, addAction("p=8000000000/pd=2025-06-15%2015%253A06%253A40.123456/new.parquet", newSize,
		map[string]*string{"p": strp("8000000000"), "pd": strp("2025-06-15 15:06:40.123456")}, newStats))
	return dir
}

func TestTypeWideningRead(t *testing.T) {
	for _, feature := range []string{"typeWidening", "typeWidening-preview"} {
		t.Run(feature, func(t *testing.T) {
			dir := makeWidenedTable(t, feature)
			tbl, snap := openLatest(t, dir)
			rows, _, err := scanAll(t, tbl, snap, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{
				`{"b2s":100,"s2i":15000,"i2l":1000000000,"b2l":100,"f2d":0.10000000149011612,"i2d":1000000000,"s2d":15000,"d2ts":"2024-01-02T00:00:00.000000","dec":"123.4500","i2dec":"1000000000.00","l2dec":"2000000000000000000.0","b2dec":"100","p":7,"pd":"2024-01-01T00:00:00.000000"}`,
				`{"b2s":-100,"s2i":-15000,"i2l":-1000000000,"b2l":-100,"f2d":-0.20000000298023224,"i2d":-1000000000,"s2d":-15000,"d2ts":"2023-12-31T00:00:00.000000","dec":"-246.9000","i2dec":"-1000000000.00","l2dec":"-4000000000000000000.0","b2dec":"-100","p":7,"pd":"2024-01-01T00:00:00.000000"}`,
				`{"b2s":null,"s2i":null,"i2l":null,"b2l":null,"f2d":null,"i2d":null,"s2d":null,"d2ts":null,"dec":null,"i2dec":null,"l2dec":null,"b2dec":null,"p":7,"pd":"2024-01-01T00:00:00.000000"}`,
				`{"b2s":1000,"s2i":100000,"i2l":9000000000000000000,"b2l":9000000000000000000,"f2d":1e+300,"i2d":1e+300,"s2d":1e+300,"d2ts":"2025-06-15T15:06:40.123456","dec":"12345.6789","i2dec":"1234567.89","l2dec":"12345678.9","b2dec":"123456789","p":8000000000,"pd":"2025-06-15T15:06:40.123456"}`,
			}
			if d := diffRows(rows, want); d != "" {
				t.Errorf("rows:\n%s", d)
			}
		})
	}
}

// TestTypeWideningSkipping filters on widened columns: the old file's statistics, written for
// the narrow types, and its partition values still skip or keep it correctly.
func TestTypeWideningSkipping(t *testing.T) {
	dir := makeWidenedTable(t, "typeWidening")
	tbl, snap := openLatest(t, dir)
	cases := []struct {
		filter string
		rows   int
		read   int64 // data files read
	}{
		{"d2ts >= '2024-01-02 00:00:00'", 2, 2},
		{"d2ts = '2024-01-02 00:00:01'", 0, 0},
		{"d2ts < '2024-01-01'", 1, 1},
		{"d2ts > '2024-06-01'", 1, 1},
		{"dec = 123.45", 1, 1},
		{"dec > 200", 1, 1},
		{"i2dec = 1000000000", 1, 1},
		{"i2dec < -999999999.99", 1, 1},
		{"i2d >= 1000000000", 2, 2},
		{"i2l > 1000000000", 1, 1},
		{"b2l = 100", 1, 1},
		{"f2d = 0.10000000149011612", 1, 1},
		{"f2d > 0.1000000001", 2, 2}, // the statistic "0.1" is a float's: the file holds 0.10000000149
		{"f2d < -0.2000000001", 1, 1},
		{"p = 7", 3, 1},
		{"p > 7", 1, 1},
		{"pd = '2024-01-01'", 3, 1},
		{"pd > '2024-01-01 00:00:00'", 1, 1},
	}
	for _, c := range cases {
		rows, m, err := scanAll(t, tbl, snap, &reader.ScanOptions{Filters: mustFilters(t, c.filter)})
		if err != nil {
			t.Errorf("%s: %v", c.filter, err)
			continue
		}
		if len(rows) != c.rows || m.FilesRead != c.read {
			t.Errorf("%s: %d rows from %d files, want %d from %d (metrics %+v)", c.filter, len(rows), m.FilesRead, c.rows, c.read, m)
		}
	}
}

// TestTypeWideningRowGroupSkipping checks that Parquet statistics of the narrow types skip row
// groups of a widened column (add.stats absent).
func TestTypeWideningRowGroupSkipping(t *testing.T) {
	dir := makeWidenedTable(t, "typeWidening")
	tbl, snap := openLatest(t, dir)
	files := snap.Files()
	var bare []*txlog.Add
	for _, a := range files {
		c := *a
		c.Stats = ""
		bare = append(bare, &c)
	}
	for _, c := range []struct {
		filter  string
		skipped int64
	}{
		{"d2ts > '2024-06-01'", 1},
		{"dec > 200", 1},
		{"i2dec > 2000000000", 1},
		{"i2d > 2000000000", 1},
		{"l2dec < -5000000000000000000", 1}, // the new file stores decimals as bytes: no bounds
		{"b2dec > 100", 1},
	} {
		rows, m, err := scanAll(t, tbl, snap, &reader.ScanOptions{Files: bare, Filters: mustFilters(t, c.filter)})
		if err != nil {
			t.Fatalf("%s: %v", c.filter, err)
		}
		if m.RowGroupsSkipped != c.skipped {
			t.Errorf("%s: %d row groups skipped, want %d (%d rows)", c.filter, m.RowGroupsSkipped, c.skipped, len(rows))
		}
	}
}

// TestTypeWideningUnsupportedChange refuses a table whose recorded type changes the reader
// cannot apply.
func TestTypeWideningUnsupportedChange(t *testing.T) {
	dir := t.TempDir()
	st := &txlog.StructType{Fields: []txlog.StructField{{Name: "x", Type: txlog.Integer, Nullable: true,
		Metadata: map[string]any{"delta.typeChanges": []any{map[string]any{"tableVersion": 1.0, "fromType": "string", "toType": "integer"}}}}}}
	writeCommit(t, dir, 0, createActions(st, nil, nil, txlog.Protocol{MinReaderVersion: 3, MinWriterVersion: 7,
		ReaderFeatures: []string{"typeWidening"}, WriterFeatures: []string{"typeWidening"}})...)
	tbl, snap := openLatest(t, dir)
	_, err := reader.NewScan(context.Background(), tbl, snap, nil)
	var ue *txlog.UnsupportedFeatureError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "string to integer") {
		t.Fatalf("want an unsupported type change, got %v", err)
	}
}

// TestTypeWideningNested widens fields inside a struct, an array's elements and a map's values
// (delta.typeChanges with fieldPath): nested columns go through pqarrow rather than pqdecode.
func TestTypeWideningNested(t *testing.T) {
	dir := t.TempDir()
	mem := memory.DefaultAllocator
	sType := arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int16, Nullable: true})
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "s", Type: sType, Nullable: true},
		{Name: "arr", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Nullable: true},
		{Name: "m", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Float32), Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	sb := b.Field(0).(*array.StructBuilder)
	sb.Append(true)
	sb.FieldBuilder(0).(*array.Int16Builder).Append(-7)
	lb := b.Field(1).(*array.ListBuilder)
	lb.Append(true)
	lb.ValueBuilder().(*array.Int32Builder).AppendValues([]int32{1, 2_000_000_000}, nil)
	mb := b.Field(2).(*array.MapBuilder)
	mb.Append(true)
	mb.KeyBuilder().(*array.StringBuilder).Append("k")
	mb.ItemBuilder().(*array.Float32Builder).Append(1.5)
	rec := b.NewRecordBatch()
	defer rec.Release()
	size := writeParquetProps(t, dir, "old.parquet", rec)

	change := func(from, to, path string) map[string]any {
		m := map[string]any{"tableVersion": 1.0, "fromType": from, "toType": to}
		if path != "" {
			m["fieldPath"] = path
		}
		return m
	}
	wide := &txlog.StructType{Fields: []txlog.StructField{
		{Name: "s", Nullable: true, Metadata: map[string]any{}, Type: &txlog.StructType{Fields: []txlog.StructField{
			{Name: "x", Type: txlog.Long, Nullable: true, Metadata: map[string]any{"delta.typeChanges": []any{change("short", "long", "")}}}}}},
		{Name: "arr", Nullable: true, Type: &txlog.ArrayType{ElementType: txlog.Long, ContainsNull: true},
			Metadata: map[string]any{"delta.typeChanges": []any{change("integer", "long", "element")}}},
		{Name: "m", Nullable: true, Type: &txlog.MapType{KeyType: txlog.String, ValueType: txlog.Double, ValueContainsNull: true},
			Metadata: map[string]any{"delta.typeChanges": []any{change("float", "double", "value")}}},
	}}
	acts := createActions(wide, nil, map[string]string{"delta.enableTypeWidening": "true"},
		txlog.Protocol{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: []string{"typeWidening"}, WriterFeatures: []string{"typeWidening"}})
	acts = append(acts, addAction("old.parquet", size, nil, nil))
	writeCommit(t, dir, 0, acts...)
	tbl, snap := openLatest(t, dir)
	rows, _, err := scanAll(t, tbl, snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`{"s":{"x":-7},"arr":[1,2000000000],"m":{"k":1.5}}`}
	if d := diffRows(rows, want); d != "" {
		t.Errorf("rows:\n%s", d)
	}
}
