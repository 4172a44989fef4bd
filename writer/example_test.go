package writer_test

import (
	"context"
	"fmt"
	"log"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

func Example() {
	ctx := context.Background()
	schema := &txlog.StructType{Fields: []txlog.StructField{
		{Name: "user_id", Type: txlog.String},
		{Name: "country", Type: txlog.String, Nullable: true},
	}}
	t, err := table.Create(ctx, "mem://example-writer", schema, &table.CreateOptions{PartitionColumns: []string{"country"}})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()

	w, err := writer.New(ctx, t, nil)
	if err != nil {
		log.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.BinaryTypes.String},
		{Name: "country", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil))
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"u1", "u2", "u3"}, nil)
	b.Field(1).(*array.StringBuilder).AppendValues([]string{"DE", "FR", "DE"}, nil)
	rec := b.NewRecordBatch()
	b.Release()
	if err := w.Write(ctx, rec); err != nil {
		log.Fatal(err)
	}
	rec.Release() // Write does not keep the record
	res, err := w.Close(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("version", res.Version, "files", len(res.Added), "rows", res.Rows)
	for _, a := range res.Added {
		fmt.Println(*a.PartitionValues["country"], a.Stats)
	}
	// Output:
	// version 1 files 2 rows 3
	// DE {"numRecords":2,"minValues":{"user_id":"u1"},"maxValues":{"user_id":"u3"},"nullCount":{"user_id":0}}
	// FR {"numRecords":1,"minValues":{"user_id":"u2"},"maxValues":{"user_id":"u2"},"nullCount":{"user_id":0}}
}
