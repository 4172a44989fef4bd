package reader_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/lakehouse/lake/internal/testutil"
	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// Column mapping, name mode (table_with_column_mapping): logical names come back, physical
// names (col-...) never reach the user; filters, partition values and statistics resolve
// through the physical names.
func TestColumnMappingName(t *testing.T) {
	ctx := context.Background()
	tbl, err := table.Open(ctx, testutil.CorpusTable("table_with_column_mapping"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := reader.NewScan(ctx, tbl, snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range sc.Schema().Fields() {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, []string{"Company Very Short", "Super Name"}) {
		t.Fatalf("columns %v", names)
	}
	rows, _, err := scanAll(t, tbl, snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 {
		t.Fatalf("%d rows, want 5", len(rows))
	}
	for _, r := range rows {
		if strings.Contains(r, "col-") || strings.Contains(r, "null") {
			t.Fatalf("row %s", r)
		}
	}
	companies := values(t, rows, "Company Very Short")
	slices.Sort(companies)
	if !slices.Equal(companies, []string{`"BME"`, `"BMS"`, `"BMS"`, `"BMS"`, `"BMS"`}) {
		t.Fatalf("partition values %v", companies)
	}
	// Filters by logical name: a partition filter prunes, a stats filter skips.
	rows, m, err := scanAll(t, tbl, snap, &reader.ScanOptions{Filters: mustFilters(t, "`Company Very Short` = BMS")})
	if err != nil || len(rows) != 4 || m.FilesPrunedByPartition != 1 {
		t.Fatalf("partition filter: %d rows %+v %v", len(rows), m, err)
	}
	rows, m, err = scanAll(t, tbl, snap, &reader.ScanOptions{Filters: mustFilters(t, "Super Name = Timothy Lamb")})
	if err != nil || len(rows) != 1 || m.FilesSkippedByStats != 1 || !strings.Contains(rows[0], `"Super Name":"Timothy Lamb"`) {
		t.Fatalf("stats filter: %v %+v %v", rows, m, err)
	}
}

// table_with_partitioning_mapping: column mapping enabled on an existing table, then a
// partition column renamed (id -> newid); partition values stay keyed by the physical name.
func TestColumnMappingRename(t *testing.T) {
	ctx := context.Background()
	tbl, err := table.Open(ctx, testutil.CorpusTable("table_with_partitioning_mapping"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	for v, want := range map[int64][]string{
		2: {`{"id":1,"description":"Initial data"}`},
		3: {`{"newid":1,"description":"Initial data"}`},
		4: {`{"newid":1,"description":"Initial data"}`, `{"newid":2,"description":"Additional data"}`},
	} {
		snap, err := tbl.SnapshotAt(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		rows, _, err := scanAll(t, tbl, snap, nil)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(rows)
		if !slices.Equal(rows, want) {
			t.Errorf("v%d: %v, want %v", v, rows, want)
		}
	}
}

// Column mapping, id mode: columns (nested ones too) are found by Parquet field id whatever
// their names in the file.
func TestColumnMappingID(t *testing.T) {
	dir := t.TempDir()
	md := func(id int, phys string) map[string]any {
		return map[string]any{"delta.columnMapping.id": float64(id), "delta.columnMapping.physicalName": phys}
	}
	schema := &txlog.StructType{Fields: []txlog.StructField{
		{Name: "a", Type: txlog.Long, Nullable: true, Metadata: md(1, "col-a")},
		{Name: "s", Type: &txlog.StructType{Fields: []txlog.StructField{
			{Name: "x", Type: txlog.String, Nullable: true, Metadata: md(3, "col-x")},
			{Name: "y", Type: txlog.Integer, Nullable: true, Metadata: md(4, "col-y")},
		}}, Nullable: true, Metadata: md(2, "col-s")},
		{Name: "p", Type: txlog.String, Nullable: true, Metadata: md(5, "col-p")},
		{Name: "later", Type: txlog.Integer, Nullable: true, Metadata: md(6, "col-later")},
	}}
	acts := createActions(schema, []string{"p"}, map[string]string{"delta.columnMapping.mode": "id", "delta.columnMapping.maxColumnId": "6"},
		txlog.Protocol{MinReaderVersion: 2, MinWriterVersion: 5})
	id := func(n string) arrow.Metadata { return arrow.NewMetadata([]string{"PARQUET:field_id"}, []string{n}) }
	// The file's names are unrelated to the logical or physical ones; only the ids match.
	fs := arrow.NewSchema([]arrow.Field{
		{Name: "zzz", Type: arrow.StructOf(
			arrow.Field{Name: "q", Type: arrow.PrimitiveTypes.Int32, Nullable: true, Metadata: id("4")},
		), Nullable: true, Metadata: id("2")},
		{Name: "renamed", Type: arrow.PrimitiveTypes.Int64, Nullable: true, Metadata: id("1")},
		{Name: "dropped", Type: arrow.PrimitiveTypes.Int64, Nullable: true, Metadata: id("99")},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, fs)
	sb := b.Field(0).(*array.StructBuilder)
	for i := 0; i < 3; i++ {
		sb.Append(true)
		sb.FieldBuilder(0).(*array.Int32Builder).Append(int32(10 + i))
		b.Field(1).(*array.Int64Builder).Append(int64(i))
		b.Field(2).(*array.Int64Builder).Append(-1)
	}
	rec := b.NewRecordBatch()
	b.Release()
	size := writeParquet(t, dir, "p=k/f.parquet", 0, pqarrow.DefaultWriterProps(), rec)
	rec.Release()
	acts = append(acts, addAction("p=k/f.parquet", size, map[string]*string{"col-p": strp("k")},
		map[string]any{"numRecords": 3, "minValues": map[string]any{"col-a": 0}, "maxValues": map[string]any{"col-a": 2}}))
	writeCommit(t, dir, 0, acts...)
	tbl, snap := openLatest(t, dir)
	rows, _, err := scanAll(t, tbl, snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"a":0,"s":{"x":null,"y":10},"p":"k","later":null}`,
		`{"a":1,"s":{"x":null,"y":11},"p":"k","later":null}`,
		`{"a":2,"s":{"x":null,"y":12},"p":"k","later":null}`,
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("rows\n%v\nwant\n%v", rows, want)
	}
	_, m, err := scanAll(t, tbl, snap, &reader.ScanOptions{Filters: mustFilters(t, "a > 2")})
	if err != nil || m.FilesSkippedByStats != 1 {
		t.Fatalf("stats by physical name: %+v %v", m, err)
	}
}
