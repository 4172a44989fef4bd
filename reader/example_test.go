package reader_test

import (
	"bytes"
	"context"
	"fmt"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/lakehouse/lake/internal/rowfmt"
	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// Scan a table with a filter and print the rows as JSON lines.
func Example() {
	ctx := context.Background()
	schema := &txlog.StructType{Fields: []txlog.StructField{
		{Name: "item", Type: txlog.String, Nullable: true},
		{Name: "qty", Type: txlog.Long, Nullable: true},
		{Name: "day", Type: txlog.Date, Nullable: true},
	}}
	tbl, err := table.Create(ctx, "mem://example-scan", schema, &table.CreateOptions{PartitionColumns: []string{"day"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tbl.Close()

	// One data file (written here with pqarrow; the writer package does this for real).
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{
		{Name: "item", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "qty", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil))
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"apple", "pear", "plum"}, nil)
	b.Field(1).(*array.Int64Builder).AppendValues([]int64{3, 7, 1}, nil)
	rec := b.NewRecordBatch()
	var buf bytes.Buffer
	w, _ := pqarrow.NewFileWriter(rec.Schema(), &buf, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps())
	_ = w.Write(rec)
	_ = w.Close()
	rec.Release()
	b.Release()
	key := "day=2024-01-02/part-0.parquet"
	if err := tbl.Bucket().WriteAll(ctx, key, buf.Bytes(), nil); err != nil {
		fmt.Println(err)
		return
	}
	snap, _ := tbl.Snapshot(ctx)
	day := "2024-01-02"
	txn := tbl.Log().NewTransaction(snap, &txlog.TxnOptions{Operation: "WRITE"})
	txn.AddActions(txlog.Action{Add: &txlog.Add{Path: key, Size: int64(buf.Len()), DataChange: true,
		PartitionValues: map[string]*string{"day": &day}}})
	if _, err := txn.Commit(ctx); err != nil {
		fmt.Println(err)
		return
	}

	// Scan it.
	snap, _ = tbl.Snapshot(ctx)
	where, _ := reader.ParseFilter("qty >= 2")
	sc, err := reader.NewScan(ctx, tbl, snap, &reader.ScanOptions{
		Columns: []string{"day", "item", "qty"},
		Filters: []reader.Filter{where},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := rowfmt.NewWriter(os.Stdout, "jsonl", sc.Schema())
	for rec, err := range sc.Records(ctx) {
		if err != nil {
			fmt.Println(err)
			return
		}
		_ = out.Write(rec) // rec is released by the iterator after this body
	}
	_ = out.Flush()
	m := sc.Metrics()
	fmt.Printf("files read %d, rows read %d, returned %d\n", m.FilesRead, m.RowsRead, m.RowsReturned)
	// Output:
	// {"day":"2024-01-02","item":"apple","qty":3}
	// {"day":"2024-01-02","item":"pear","qty":7}
	// files read 1, rows read 3, returned 2
}
