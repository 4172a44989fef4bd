package compaction_test

import (
	"context"
	"fmt"
	"log"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/compaction"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

func ExampleOptimize() {
	ctx := context.Background()
	schema := &txlog.StructType{Fields: []txlog.StructField{{Name: "user_id", Type: txlog.String}}}
	t, err := table.Create(ctx, "mem://example-optimize", schema, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	// Ten commits of one row each leave ten small files.
	for i := 0; i < 10; i++ {
		b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{{Name: "user_id", Type: arrow.BinaryTypes.String}}, nil))
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("u%d", i))
		rec := b.NewRecordBatch()
		b.Release()
		w, err := writer.New(ctx, t, nil)
		if err != nil {
			log.Fatal(err)
		}
		if err := w.Write(ctx, rec); err != nil {
			log.Fatal(err)
		}
		rec.Release()
		if _, err := w.Close(ctx); err != nil {
			log.Fatal(err)
		}
	}
	res, err := compaction.Optimize(ctx, t, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("versions", res.Versions, "removed", res.FilesRemoved, "added", res.FilesAdded, "rows", res.Rows)
	// Output:
	// versions [11] removed 10 added 1 rows 10
}
