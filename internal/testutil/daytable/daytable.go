// Package daytable is a small test table shared by the replica tests and the integration tests:
// columns id (long), user and day (strings), partitioned by day, with rows appended by id range
// and read back in a canonical form.
package daytable

import (
	"context"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/internal/testutil/tablerows"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

// Schema is the table's schema.
var Schema = &txlog.StructType{Fields: []txlog.StructField{
	{Name: "id", Type: txlog.Long},
	{Name: "user", Type: txlog.String, Nullable: true},
	{Name: "day", Type: txlog.String, Nullable: true},
}}

// Create creates the table at uri, partitioned by day, with props; it is closed at cleanup.
func Create(t testing.TB, uri string, props map[string]string) *table.Table {
	t.Helper()
	tbl, err := table.Create(context.Background(), uri, Schema, &table.CreateOptions{PartitionColumns: []string{"day"}, Properties: props})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	return tbl
}

// Open opens the table at uri; it is closed at cleanup.
func Open(t testing.TB, uri string) *table.Table {
	t.Helper()
	tbl, err := table.Open(context.Background(), uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	return tbl
}

// Append commits n rows with ids from first, spread over two days, and returns the version.
func Append(t testing.TB, tbl *table.Table, first, n int) int64 {
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

// Rows returns the rows of version as sorted JSON lines (a canonical form to compare).
func Rows(t testing.TB, tbl *table.Table, version int64) []string {
	t.Helper()
	snap, err := tbl.SnapshotAt(context.Background(), version)
	if err != nil {
		t.Fatal(err)
	}
	return SnapRows(t, tbl, snap)
}

// SnapRows returns the rows of snap as sorted JSON lines.
func SnapRows(t testing.TB, tbl *table.Table, snap *txlog.Snapshot) []string {
	return tablerows.Lines(t, tbl, snap, "id", "user", "day")
}
