package writer_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/internal/testutil"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

func stringRecord(mem memory.Allocator, names []string, rows ...[]*string) arrow.RecordBatch {
	fields := make([]arrow.Field, len(names))
	for i, n := range names {
		fields[i] = arrow.Field{Name: n, Type: arrow.BinaryTypes.String, Nullable: true}
	}
	b := array.NewRecordBuilder(mem, arrow.NewSchema(fields, nil))
	defer b.Release()
	for _, r := range rows {
		for i, v := range r {
			if v == nil {
				b.Field(i).AppendNull()
			} else {
				b.Field(i).(*array.StringBuilder).Append(*v)
			}
		}
	}
	return b.NewRecordBatch()
}

func sp(s string) *string { return &s }

func openCopy(t *testing.T, name string) *table.Table {
	t.Helper()
	dir := testutil.CopyTable(t, name)
	tb, err := table.Open(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() })
	return tb
}

// Spark wrote delta-0.8.0-partitioned (string partitions year/month/day): lake appends to it
// and replaces some of its partitions.
func TestCorpusPartitionedAppendAndReplace(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	tb := openCopy(t, "delta-0.8.0-partitioned")
	before := snapshot(t, tb)
	w, err := writer.New(ctx, tb, &writer.Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	rec := stringRecord(mem, []string{"value", "year", "month", "day"},
		[]*string{sp("new-1"), sp("2021"), sp("12"), sp("4")},
		[]*string{sp("new-2"), sp("2024"), sp("1"), nil})
	if err := w.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap := snapshot(t, tb)
	if snap.NumFiles() != before.NumFiles()+2 {
		t.Fatalf("%d files, want %d", snap.NumFiles(), before.NumFiles()+2)
	}
	paths := []string{res.Added[0].Path, res.Added[1].Path}
	if !strings.HasPrefix(paths[0], "year=2021/month=12/day=4/part-") || !strings.HasPrefix(paths[1], "year=2024/month=1/day=__HIVE_DEFAULT_PARTITION__/part-") {
		t.Errorf("paths %v", paths)
	}

	p, _ := writer.ParsePartitionPredicate("year = 2020")
	w, err = writer.New(ctx, tb, &writer.Options{Allocator: mem, Mode: writer.OverwriteWhere, Where: []writer.PartitionPredicate{p}})
	if err != nil {
		t.Fatal(err)
	}
	rec = stringRecord(mem, []string{"value", "year", "month", "day"}, []*string{sp("replaced"), sp("2020"), sp("1"), sp("1")})
	if err := w.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	res, err = w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	years := map[string]int{}
	for _, a := range snapshot(t, tb).Files() {
		years[*a.PartitionValues["year"]]++
	}
	if years["2020"] != 1 || len(res.Removed) == 0 {
		t.Errorf("after replacing year 2020: %v (removed %d)", years, len(res.Removed))
	}
}

// table_with_column_mapping (Databricks, name mode, a partition column with spaces in its
// name): lake writes physical names, field ids, and physical keys in partitionValues and stats.
func TestCorpusColumnMapping(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	tb := openCopy(t, "table_with_column_mapping")
	snap := snapshot(t, tb)
	part, _ := snap.Schema().Field("Company Very Short")
	data, _ := snap.Schema().Field("Super Name")

	w, err := writer.New(ctx, tb, &writer.Options{Allocator: mem, MergeSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	rec := stringRecord(mem, []string{"Super Name", "Company Very Short", "Added Col"},
		[]*string{sp("Ada Lovelace"), sp("BMS"), sp("x")},
		[]*string{sp("Alan Turing"), sp("NEW"), nil})
	if err := w.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, tb)
	added, ok := after.Schema().Field("Added Col")
	if !ok || added.ColumnMappingID() != 3 || !strings.HasPrefix(added.PhysicalName(), "col-") {
		t.Fatalf("merged column %+v", added)
	}
	if after.Configuration()["delta.columnMapping.maxColumnId"] != "3" {
		t.Errorf("maxColumnId %q", after.Configuration()["delta.columnMapping.maxColumnId"])
	}
	for i := range res.Added {
		a := &res.Added[i]
		if _, ok := a.PartitionValues[part.PhysicalName()]; !ok || len(a.PartitionValues) != 1 {
			t.Errorf("partitionValues %v, want the key %s", a.PartitionValues, part.PhysicalName())
		}
		if !strings.HasPrefix(a.Path, part.PhysicalName()+"=") {
			t.Errorf("path %s", a.Path)
		}
		var st map[string]any
		if err := json.Unmarshal([]byte(a.Stats), &st); err != nil {
			t.Fatal(err)
		}
		if _, ok := st["minValues"].(map[string]any)[data.PhysicalName()]; !ok {
			t.Errorf("stats %s not keyed by physical name", a.Stats)
		}
		tbl, md := readFile(t, tb, a)
		for i, f := range tbl.Schema().Fields() {
			if !strings.HasPrefix(f.Name, "col-") {
				t.Errorf("file column %q is not a physical name", f.Name)
			}
			want := map[string]int32{data.PhysicalName(): 2, added.PhysicalName(): 3}[f.Name]
			if got := md.Schema.Column(i).SchemaNode().FieldID(); got != want {
				t.Errorf("column %s: field id %d, want %d", f.Name, got, want)
			}
		}
		tbl.Release()
	}
}

// Tables whose writer requirements lake does not implement are refused up front.
func TestUnsupportedWriterFeatures(t *testing.T) {
	ctx := context.Background()
	tb := createTable(t, memURI(), &txlog.StructType{Fields: []txlog.StructField{{Name: "a", Type: txlog.Long, Nullable: true}}}, nil,
		map[string]string{"delta.constraints.positive": "a > 0"})
	_, err := writer.New(ctx, tb, nil)
	var uf *txlog.UnsupportedFeatureError
	if !errors.As(err, &uf) || uf.Feature != "checkConstraints" || !uf.Write {
		t.Errorf("CHECK constraint: %v", err)
	}
	tb = createTable(t, memURI(), &txlog.StructType{Fields: []txlog.StructField{{Name: "a", Type: txlog.Long, Nullable: true}}}, nil,
		map[string]string{"delta.appendOnly": "true"})
	if _, err := writer.New(ctx, tb, &writer.Options{Mode: writer.Overwrite}); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("overwrite of an append-only table: %v", err)
	}
	if _, err := writer.New(ctx, tb, nil); err != nil {
		t.Errorf("append to an append-only table: %v", err)
	}
}
