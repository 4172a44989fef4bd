package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/compaction"
	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

// Deletion vectors lake writes: DuckDB's Parquet reader, reading each data file with its row
// numbers and dropping the rows our vector names, returns exactly the rows our reader returns;
// and DuckDB's delta extension, when it can be loaded (it is not bundled, and installing it
// needs the network), reads the table the same.
func TestDeletionVectorsReadByDuckDB(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "dv")
	schema := &txlog.StructType{Fields: []txlog.StructField{
		{Name: "id", Type: txlog.Long, Nullable: true},
		{Name: "user", Type: txlog.String, Nullable: true},
		{Name: "day", Type: txlog.String, Nullable: true},
	}}
	tbl, err := table.Create(ctx, dir, schema, &table.CreateOptions{
		PartitionColumns: []string{"day"},
		Properties:       map[string]string{"delta.enableDeletionVectors": "true"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// table.ProtocolFor does not add the feature for the property yet: upgrade the protocol.
	txn := tbl.Log().NewTransaction(snap, &txlog.TxnOptions{Operation: "UPGRADE PROTOCOL"})
	txn.SetProtocol(txlog.Protocol{MinReaderVersion: 3, MinWriterVersion: 7,
		ReaderFeatures: []string{"deletionVectors"}, WriterFeatures: []string{"deletionVectors", "appendOnly", "invariants"}})
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "user", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "day", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	for batch := 0; batch < 3; batch++ {
		b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
		for i := 0; i < 5000; i++ {
			id := int64(batch*5000 + i)
			b.Field(0).(*array.Int64Builder).Append(id)
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("u%d", id%11))
			b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("2024-01-0%d", id%3+1))
		}
		rec := b.NewRecordBatch()
		b.Release()
		w, err := writer.New(ctx, tbl, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(ctx, rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		if _, err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Inline vectors, on-disk ones merged with them, and on-disk ones merged with on-disk ones.
	for _, del := range []struct {
		where  []string
		inline int
	}{{[]string{"user = u3"}, 1 << 20}, {[]string{"id < 700"}, -1}, {[]string{"user = u7", "day = 2024-01-01"}, -1}} {
		var where []reader.Filter
		for _, w := range del.where {
			f, err := reader.ParseFilter(w)
			if err != nil {
				t.Fatal(err)
			}
			where = append(where, f)
		}
		res, err := compaction.Delete(ctx, tbl, &compaction.DeleteOptions{Where: where, DVInlineMaxBytes: del.inline})
		if err != nil {
			t.Fatal(err)
		}
		if res.DeletionVectorsAdded == 0 {
			t.Fatalf("delete %s wrote no deletion vector: %+v", del.where, res)
		}
	}
	snap, err = tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Our reader's ids.
	var ours []int64
	scan, err := reader.NewScan(ctx, tbl, snap, &reader.ScanOptions{Columns: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	for rec, err := range scan.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		ours = append(ours, rec.Column(0).(*array.Int64).Int64Values()...)
	}
	slices.Sort(ours)
	wantN := 0
	for id := int64(0); id < 15000; id++ {
		if id%11 != 3 && (id%11 != 7 || id%3 != 0) && id >= 700 {
			wantN++
		}
	}
	if len(ours) != wantN {
		t.Fatalf("our reader: %d rows, want %d", len(ours), wantN)
	}

	// DuckDB's Parquet reader minus the vectors' rows.
	db := openDuck(t)
	var duck []int64
	kinds := map[string]int{}
	for _, a := range snap.Files() {
		if a.DeletionVector == nil {
			t.Fatalf("%s has no deletion vector", a.Path)
		}
		kinds[a.DeletionVector.StorageType]++
		rows, err := reader.ReadDeletionVector(ctx, tbl, a.DeletionVector)
		if err != nil {
			t.Fatal(err)
		}
		key, err := reader.ObjectKey(tbl, a.Path)
		if err != nil {
			t.Fatal(err)
		}
		q, err := db.Query(fmt.Sprintf("SELECT file_row_number, id FROM read_parquet('%s', file_row_number = true)", filepath.Join(dir, filepath.FromSlash(key))))
		if err != nil {
			t.Fatal(err)
		}
		for q.Next() {
			var pos, id int64
			if err := q.Scan(&pos, &id); err != nil {
				t.Fatal(err)
			}
			if !rows.Contains(uint64(pos)) {
				duck = append(duck, id)
			}
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(duck)
	if !slices.Equal(duck, ours) {
		t.Fatalf("DuckDB's Parquet reader minus the vectors: %d rows, our reader %d", len(duck), len(ours))
	}
	if kinds["u"] == 0 || kinds["i"] == 0 {
		t.Fatalf("vector storage types %v: the test wants inline and on-disk vectors", kinds)
	}
}
