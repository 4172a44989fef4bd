package reader_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/uuid"

	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

// writePartitioned creates a mem:// table (id long, p string partition column, nullable or not)
// and writes one record of (id, p) rows through the writer; a nil p is a null.
func writePartitioned(t *testing.T, nullable bool, ps []*string) (*table.Table, error) {
	t.Helper()
	ctx := context.Background()
	schema := &txlog.StructType{Fields: []txlog.StructField{
		{Name: "id", Type: txlog.Long},
		{Name: "p", Type: txlog.String, Nullable: nullable},
	}}
	tbl, err := table.Create(ctx, "mem://reader-partvalue-"+uuid.NewString(), schema, &table.CreateOptions{PartitionColumns: []string{"p"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	b := array.NewRecordBuilder(mem, arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "p", Type: arrow.BinaryTypes.String, Nullable: nullable},
	}, nil))
	defer b.Release()
	for i, p := range ps {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		if p == nil {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append(*p)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	w, err := writer.New(ctx, tbl, &writer.Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, rec); err != nil {
		_ = w.Abort(ctx)
		return tbl, err
	}
	if _, err := w.Close(ctx); err != nil {
		return tbl, err
	}
	return tbl, nil
}

func readRows(t *testing.T, tbl *table.Table) []string {
	t.Helper()
	snap, err := tbl.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rows, _, err := scanAll(t, tbl, snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(rows)
	return rows
}

// The literal string __HIVE_DEFAULT_PARTITION__ is a value like any other: its folder is the
// one Hive uses for nulls, but add.partitionValues carries the value, and the reader takes it
// from there. A null in the same write must stay a null, in a file of its own.
func TestPartitionValueHiveDefaultLiteralRoundTrip(t *testing.T) {
	lit, a := "__HIVE_DEFAULT_PARTITION__", "a"
	for _, tc := range []struct {
		name     string
		nullable bool
		ps       []*string
		want     []string
	}{
		{"not null", false, []*string{&lit, &a, &lit}, []string{
			`{"id":0,"p":"__HIVE_DEFAULT_PARTITION__"}`,
			`{"id":1,"p":"a"}`,
			`{"id":2,"p":"__HIVE_DEFAULT_PARTITION__"}`,
		}},
		{"null first", true, []*string{nil, &lit, &a}, []string{
			`{"id":0,"p":null}`,
			`{"id":1,"p":"__HIVE_DEFAULT_PARTITION__"}`,
			`{"id":2,"p":"a"}`,
		}},
		{"literal first", true, []*string{&lit, nil}, []string{
			`{"id":0,"p":"__HIVE_DEFAULT_PARTITION__"}`,
			`{"id":1,"p":null}`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tbl, err := writePartitioned(t, tc.nullable, tc.ps)
			if err != nil {
				t.Fatal(err)
			}
			got := readRows(t, tbl)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("rows:\n got %s\nwant %s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			// The same through a checkpoint.
			ctx := context.Background()
			snap, err := tbl.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tbl.Log().Checkpoint(ctx, snap); err != nil {
				t.Fatal(err)
			}
			again, err := table.Open(ctx, tbl.URI(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			got = readRows(t, again)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("rows after a checkpoint:\n got %s\nwant %s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// The protocol serialises an empty string partition value as null ("An empty string for any
// type translates to a null partition value"), so a NOT NULL string partition column cannot
// hold "": the writer refuses it instead of committing a row that reads back as null. A
// nullable column takes "" and reads it back as null, as Spark does.
func TestPartitionValueEmptyStringNotNull(t *testing.T) {
	empty, a := "", "a"
	tbl, err := writePartitioned(t, false, []*string{&a, &empty})
	var se *writer.SchemaError
	if !errors.As(err, &se) || se.Column != "p" || !strings.Contains(se.Problem, "empty string") {
		t.Fatalf("write of \"\" into a NOT NULL partition column: got %v, want a *writer.SchemaError on column p about the empty string", err)
	}
	if got := readRows(t, tbl); len(got) != 0 {
		t.Errorf("rows after the refused write: %v, want none", got)
	}

	tbl, err = writePartitioned(t, true, []*string{&a, &empty})
	if err != nil {
		t.Fatal(err)
	}
	got := readRows(t, tbl)
	want := []string{`{"id":0,"p":"a"}`, `{"id":1,"p":null}`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("nullable column: rows\n got %v\nwant %v", got, want)
	}
}

// A table created with delta.columnMapping.mode name or id gets what the protocol requires:
// ids and physical names on every field, delta.columnMapping.maxColumnId, and a protocol with
// column mapping; the writer then uses the physical names, and the reader maps them back.
func TestCreateColumnMappingRoundTrip(t *testing.T) {
	for _, mode := range []string{"name", "id"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			schema := &txlog.StructType{Fields: []txlog.StructField{
				{Name: "id", Type: txlog.Long},
				{Name: "s", Type: &txlog.StructType{Fields: []txlog.StructField{{Name: "x", Type: txlog.Integer, Nullable: true}}}, Nullable: true},
				{Name: "p", Type: txlog.String},
			}}
			tbl, err := table.Create(ctx, "mem://reader-cm-"+uuid.NewString(), schema, &table.CreateOptions{
				PartitionColumns: []string{"p"}, Properties: map[string]string{"delta.columnMapping.mode": mode}})
			if err != nil {
				t.Fatal(err)
			}
			defer tbl.Close()
			if len(schema.Fields[0].Metadata) != 0 {
				t.Errorf("Create changed the caller's schema: %v", schema.Fields[0].Metadata)
			}
			snap, err := tbl.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if p := snap.Protocol(); p.MinReaderVersion != 2 || p.MinWriterVersion != 5 {
				t.Errorf("protocol %+v, want (2,5)", p)
			}
			if got := snap.Configuration()["delta.columnMapping.maxColumnId"]; got != "4" {
				t.Errorf("maxColumnId %q, want 4", got)
			}
			ids := map[int64]bool{}
			var check func(fs []txlog.StructField)
			check = func(fs []txlog.StructField) {
				for _, f := range fs {
					if id := f.ColumnMappingID(); id <= 0 || ids[id] || !strings.HasPrefix(f.PhysicalName(), "col-") {
						t.Errorf("field %s: id %d, physical name %q", f.Name, f.ColumnMappingID(), f.PhysicalName())
					}
					ids[f.ColumnMappingID()] = true
					if st, ok := f.Type.(*txlog.StructType); ok {
						check(st.Fields)
					}
				}
			}
			check(snap.Schema().Fields)

			mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			defer mem.AssertSize(t, 0)
			in := arrow.NewSchema([]arrow.Field{
				{Name: "id", Type: arrow.PrimitiveTypes.Int64},
				{Name: "s", Type: arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int32, Nullable: true}), Nullable: true},
				{Name: "p", Type: arrow.BinaryTypes.String},
			}, nil)
			b := array.NewRecordBuilder(mem, in)
			defer b.Release()
			b.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2}, nil)
			sb := b.Field(1).(*array.StructBuilder)
			sb.AppendValues([]bool{true, true})
			sb.FieldBuilder(0).(*array.Int32Builder).AppendValues([]int32{10, 20}, nil)
			b.Field(2).(*array.StringBuilder).AppendValues([]string{"a", "b"}, nil)
			rec := b.NewRecordBatch()
			defer rec.Release()
			w, err := writer.New(ctx, tbl, &writer.Options{Allocator: mem})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(ctx, rec); err != nil {
				_ = w.Abort(ctx)
				t.Fatal(err)
			}
			if _, err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			snap, err = tbl.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range snap.Files() {
				for k := range a.PartitionValues {
					if !strings.HasPrefix(k, "col-") {
						t.Errorf("partitionValues key %q is not a physical name", k)
					}
				}
				if strings.Contains(a.Stats, `"id"`) || strings.Contains(a.Stats, `"x"`) {
					t.Errorf("stats use logical names: %s", a.Stats)
				}
			}
			got := readRows(t, tbl)
			want := []string{`{"id":1,"s":{"x":10},"p":"a"}`, `{"id":2,"s":{"x":20},"p":"b"}`}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("rows:\n got %v\nwant %v", got, want)
			}
		})
	}
}
