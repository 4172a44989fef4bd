package writer_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/internal/testutil/tablerows"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

// narrowSchema is the table before widening; p is a partition column.
func narrowSchema() *txlog.StructType {
	return &txlog.StructType{Fields: []txlog.StructField{
		{Name: "id", Type: txlog.Integer, Nullable: true},
		{Name: "f", Type: txlog.Float, Nullable: true},
		{Name: "d", Type: txlog.Date, Nullable: true},
		{Name: "dec", Type: &txlog.DecimalType{Precision: 5, Scale: 2}, Nullable: true},
		{Name: "s", Type: &txlog.StructType{Fields: []txlog.StructField{{Name: "x", Type: txlog.Short, Nullable: true}}}, Nullable: true},
		{Name: "arr", Type: &txlog.ArrayType{ElementType: txlog.Integer, ContainsNull: true}, Nullable: true},
		{Name: "p", Type: txlog.Integer, Nullable: true},
	}}
}

// record builds one row of the schema's Arrow types: the narrow or the wide ones.
func widenRecord(t *testing.T, mem memory.Allocator, wide bool) arrow.RecordBatch {
	t.Helper()
	st := narrowSchema()
	if wide {
		st = &txlog.StructType{Fields: []txlog.StructField{
			{Name: "id", Type: txlog.Long, Nullable: true},
			{Name: "f", Type: txlog.Double, Nullable: true},
			{Name: "d", Type: txlog.TimestampNTZ, Nullable: true},
			{Name: "dec", Type: &txlog.DecimalType{Precision: 10, Scale: 4}, Nullable: true},
			{Name: "s", Type: &txlog.StructType{Fields: []txlog.StructField{{Name: "x", Type: txlog.Long, Nullable: true}}}, Nullable: true},
			{Name: "arr", Type: &txlog.ArrayType{ElementType: txlog.Long, ContainsNull: true}, Nullable: true},
			{Name: "p", Type: txlog.Long, Nullable: true},
		}}
	}
	schema, err := deltaarrow.Schema(st)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	if !wide {
		b.Field(0).(*array.Int32Builder).Append(1)
		b.Field(1).(*array.Float32Builder).Append(1.5)
		b.Field(2).(*array.Date32Builder).Append(19723) // 2024-01-01
		b.Field(3).(*array.Decimal128Builder).Append(decimal128.FromI64(12345))
		sb := b.Field(4).(*array.StructBuilder)
		sb.Append(true)
		sb.FieldBuilder(0).(*array.Int16Builder).Append(-3)
		lb := b.Field(5).(*array.ListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.Int32Builder).Append(7)
		b.Field(6).(*array.Int32Builder).Append(1)
	} else {
		b.Field(0).(*array.Int64Builder).Append(5_000_000_000)
		b.Field(1).(*array.Float64Builder).Append(1e300)
		b.Field(2).(*array.TimestampBuilder).Append(1_704_164_645_000_001) // 2024-01-02T03:04:05.000001
		b.Field(3).(*array.Decimal128Builder).Append(decimal128.FromI64(123456789))
		sb := b.Field(4).(*array.StructBuilder)
		sb.Append(true)
		sb.FieldBuilder(0).(*array.Int64Builder).Append(-3_000_000_000)
		lb := b.Field(5).(*array.ListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.Int64Builder).Append(7_000_000_000)
		b.Field(6).(*array.Int64Builder).Append(8_000_000_000)
	}
	return b.NewRecordBatch()
}

// scanRows reads the table back with the reader, as jsonl sorted.
func scanRows(t *testing.T, tb *table.Table) []string {
	t.Helper()
	return tablerows.Lines(t, tb, snapshot(t, tb))
}

func TestMergeSchemaWidensTypes(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	tb := createTable(t, memURI(), narrowSchema(), []string{"p"}, nil)
	before := snapshot(t, tb)
	narrow := widenRecord(t, mem, false)
	defer narrow.Release()
	wide := widenRecord(t, mem, true)
	defer wide.Release()

	// Without MergeSchema the wide record does not fit.
	w, err := writer.New(ctx, tb, &writer.Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, wide); !errors.Is(err, writer.ErrSchemaMismatch) {
		t.Fatalf("wide record without MergeSchema: %v", err)
	}
	if err := w.Abort(ctx); err != nil {
		t.Fatal(err)
	}

	// With MergeSchema: a narrow file, then the widening and a wide file, in one commit.
	w, err = writer.New(ctx, tb, &writer.Options{Allocator: mem, MergeSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range []arrow.RecordBatch{narrow, wide, narrow} {
		if err := w.Write(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.SchemaChanged || res.Version != before.Version()+1 {
		t.Fatalf("result %+v", res)
	}
	snap := snapshot(t, tb)
	p := snap.Protocol()
	if p.MinReaderVersion != 3 || p.MinWriterVersion != 7 || !p.HasReaderFeature("typeWidening") ||
		!p.HasWriterFeature("typeWidening") || !p.HasReaderFeature("timestampNtz") ||
		!p.HasWriterFeature("appendOnly") || !p.HasWriterFeature("invariants") {
		t.Errorf("protocol %+v", p)
	}
	if snap.Configuration()["delta.enableTypeWidening"] != "true" {
		t.Errorf("configuration %v", snap.Configuration())
	}
	wantTypes := map[string]string{"id": "long", "f": "double", "d": "timestamp_ntz", "dec": "decimal(10,4)",
		"s": "struct<x:long>", "arr": "array<long>", "p": "long"}
	wantChanges := map[string]string{"id": "integer>long", "f": "float>double", "d": "date>timestamp_ntz",
		"dec": "decimal(5,2)>decimal(10,4)", "arr": "integer>long@element", "p": "integer>long"}
	for _, f := range snap.Schema().Fields {
		if got := txlog.TypeString(f.Type); got != wantTypes[f.Name] {
			t.Errorf("%s: type %s, want %s", f.Name, got, wantTypes[f.Name])
		}
		field := f
		if f.Name == "s" {
			field = f.Type.(*txlog.StructType).Fields[0]
			if _, ok := f.Metadata["delta.typeChanges"]; ok {
				t.Errorf("s: typeChanges recorded on the struct, want on s.x")
			}
			f.Name = "s.x"
		}
		changes, err := deltaarrow.TypeChanges(field)
		if err != nil || len(changes) != 1 {
			t.Errorf("%s: typeChanges %v, %v", f.Name, changes, err)
			continue
		}
		c := changes[0]
		got := c.FromType + ">" + c.ToType
		if c.FieldPath != "" {
			got += "@" + c.FieldPath
		}
		want := wantChanges[f.Name]
		if f.Name == "s.x" {
			want = "short>long"
		}
		if got != want || c.TableVersion != res.Version {
			t.Errorf("%s: type change %+v, want %s at version %d", f.Name, c, want, res.Version)
		}
	}
	rows := scanRows(t, tb)
	want := []string{
		`{"id":1,"f":1.5,"d":"2024-01-01T00:00:00.000000","dec":"123.4500","s":{"x":-3},"arr":[7],"p":1}`,
		`{"id":1,"f":1.5,"d":"2024-01-01T00:00:00.000000","dec":"123.4500","s":{"x":-3},"arr":[7],"p":1}`,
		`{"id":5000000000,"f":1e+300,"d":"2024-01-02T03:04:05.000001","dec":"12345.6789","s":{"x":-3000000000},"arr":[7000000000],"p":8000000000}`,
	}
	if !slices.Equal(rows, want) {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}

	// The widened table takes narrow records without MergeSchema, and a second widening
	// keeps the first in the history.
	w, err = writer.New(ctx, tb, &writer.Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, narrow); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rows = scanRows(t, tb)
	midnight := 0
	for _, r := range rows {
		if strings.Contains(r, `"d":"2024-01-01T00:00:00.000000"`) && strings.Contains(r, `"s":{"x":-3}`) {
			midnight++
		}
	}
	if len(rows) != 4 || midnight != 3 {
		t.Errorf("after a narrow append: %d rows, %d of the narrow ones, want 4 and 3:\n%s", len(rows), midnight, strings.Join(rows, "\n"))
	}
}

func TestMergeSchemaWideningHistory(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	st := &txlog.StructType{Fields: []txlog.StructField{{Name: "v", Type: txlog.Short, Nullable: true}}}
	tb := createTable(t, memURI(), st, nil, nil)
	for i, at := range []arrow.DataType{arrow.PrimitiveTypes.Int32, arrow.PrimitiveTypes.Int64} {
		b := array.NewRecordBuilder(mem, arrow.NewSchema([]arrow.Field{{Name: "v", Type: at, Nullable: true}}, nil))
		switch fb := b.Field(0).(type) {
		case *array.Int32Builder:
			fb.Append(70_000)
		case *array.Int64Builder:
			fb.Append(1 << 40)
		}
		rec := b.NewRecordBatch()
		b.Release()
		w, err := writer.New(ctx, tb, &writer.Options{Allocator: mem, MergeSchema: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(ctx, rec); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		rec.Release()
		if _, err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	f := snapshot(t, tb).Schema().Fields[0]
	changes, err := deltaarrow.TypeChanges(f)
	if err != nil || len(changes) != 2 || changes[0].FromType != "short" || changes[0].ToType != "integer" ||
		changes[1].FromType != "integer" || changes[1].ToType != "long" || changes[0].TableVersion != 1 || changes[1].TableVersion != 2 {
		t.Errorf("type %s, changes %+v (%v)", f.Type.TypeName(), changes, err)
	}
}

func TestMergeSchemaUnsupportedTypeChange(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	cases := []struct {
		table  txlog.DataType
		input  arrow.DataType
		props  map[string]string
		reason string
	}{
		{txlog.Long, arrow.PrimitiveTypes.Float64, nil, "cannot widen"},
		{txlog.String, arrow.PrimitiveTypes.Int64, nil, "cannot widen"},
		{txlog.Double, arrow.PrimitiveTypes.Float32, nil, ""}, // narrower: fits as it is
		{&txlog.DecimalType{Precision: 10, Scale: 2}, &arrow.Decimal128Type{Precision: 10, Scale: 4}, nil, "cannot widen"},
		{txlog.Timestamp, &arrow.TimestampType{Unit: arrow.Microsecond}, nil, "cannot widen"},
		{txlog.Integer, arrow.PrimitiveTypes.Int64, map[string]string{"delta.enableTypeWidening": "false"}, "enableTypeWidening=false"},
	}
	for _, c := range cases {
		st := &txlog.StructType{Fields: []txlog.StructField{{Name: "v", Type: c.table, Nullable: true}}}
		tb := createTable(t, memURI(), st, nil, c.props)
		rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "v", Type: c.input, Nullable: true}}, nil),
			[]arrow.Array{array.MakeArrayOfNull(mem, c.input, 1)}, 1)
		w, err := writer.New(ctx, tb, &writer.Options{Allocator: mem, MergeSchema: true})
		if err != nil {
			t.Fatal(err)
		}
		err = w.Write(ctx, rec)
		rec.Column(0).Release()
		rec.Release()
		switch {
		case c.reason == "" && err != nil:
			t.Errorf("%s <- %s: %v", c.table.TypeName(), c.input, err)
		case c.reason != "" && (!errors.Is(err, writer.ErrSchemaMismatch) || !strings.Contains(err.Error(), c.reason)):
			t.Errorf("%s <- %s: %v, want a schema error with %q", c.table.TypeName(), c.input, err, c.reason)
		}
		if err := w.Abort(ctx); err != nil {
			t.Fatal(err)
		}
		if p := snapshot(t, tb).Protocol(); p.HasReaderFeature("typeWidening") {
			t.Errorf("%s <- %s: the protocol changed: %+v", c.table.TypeName(), c.input, p)
		}
	}
}
