package replica_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/lakehouse/lake/internal/testutil/tablerows"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

var testSchema = &txlog.StructType{Fields: []txlog.StructField{
	{Name: "id", Type: txlog.Long},
	{Name: "user", Type: txlog.String, Nullable: true},
	{Name: "day", Type: txlog.String, Nullable: true},
}}

// createTable creates a table partitioned by day with props.
func createTable(t testing.TB, uri string, props map[string]string) *table.Table {
	t.Helper()
	tbl, err := table.Create(context.Background(), uri, testSchema, &table.CreateOptions{PartitionColumns: []string{"day"}, Properties: props})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	return tbl
}

// appendRows commits n rows with ids from first, spread over 2 days, and returns the version.
func appendRows(t testing.TB, tbl *table.Table, first, n int) int64 {
	t.Helper()
	ctx := context.Background()
	w, err := writer.New(ctx, tbl, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "user", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "day", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil))
	defer b.Release()
	for i := first; i < first+n; i++ {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("u%d", i%7))
		b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("2024-01-0%d", 1+i%2))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := w.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return res.Version
}

// rows returns the snapshot's rows as sorted JSON lines (a canonical form to compare).
func rows(t testing.TB, tbl *table.Table, version int64) []string {
	t.Helper()
	ctx := context.Background()
	snap, err := tbl.SnapshotAt(ctx, version)
	if err != nil {
		t.Fatal(err)
	}
	return snapRows(t, tbl, snap)
}

func snapRows(t testing.TB, tbl *table.Table, snap *txlog.Snapshot) []string {
	return tablerows.Lines(t, tbl, snap, "id", "user", "day")
}

func open(t testing.TB, uri string) *table.Table {
	t.Helper()
	tbl, err := table.Open(context.Background(), uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	return tbl
}

func commitBytes(t testing.TB, tbl *table.Table, v int64) []byte {
	t.Helper()
	d, err := tbl.Bucket().ReadAll(context.Background(), txlog.CommitKey(v))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// writeFile writes data at key under a local directory.
func writeFile(dir, key string, data []byte) error {
	p := filepath.Join(dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o644)
}
