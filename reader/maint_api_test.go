package reader_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// The helpers compaction uses: ObjectKey, DeletionVectorKey, RowMatcher, ScanOptions.Files and
// Scan.Files.
func TestMaintenanceAPIs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	schema := &txlog.StructType{Fields: []txlog.StructField{
		{Name: "id", Type: txlog.Long},
		{Name: "name", Type: txlog.String, Nullable: true},
		{Name: "p", Type: txlog.String, Nullable: true},
	}}
	tb, err := table.Create(ctx, dir, schema, &table.CreateOptions{PartitionColumns: []string{"p"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()

	for path, want := range map[string]string{
		"p=a/part-1.parquet":                                    "p=a/part-1.parquet",
		"p=A%252FB/part-2.parquet":                              "p=A%2FB/part-2.parquet",
		"file://" + filepath.ToSlash(dir) + "/x/part-3.parquet": "x/part-3.parquet",
	} {
		got, err := reader.ObjectKey(tb, path)
		if err != nil || got != want {
			t.Errorf("ObjectKey(%q) = %q, %v; want %q", path, got, err, want)
		}
	}
	var ue *reader.UnsupportedError
	if _, err := reader.ObjectKey(tb, "file:///elsewhere/part.parquet"); !errors.As(err, &ue) {
		t.Errorf("a path outside the table: %v", err)
	}
	if k, err := reader.DeletionVectorKey(tb, &txlog.DeletionVector{StorageType: "i", PathOrInlineDv: "wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L"}); k != "" || err != nil {
		t.Errorf("inline vector: %q, %v", k, err)
	}
	if k, err := reader.DeletionVectorKey(tb, &txlog.DeletionVector{StorageType: "u", PathOrInlineDv: "ab^-aqEH.-t@S}K{vb[*k^"}); err != nil || k != "ab/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin" {
		t.Errorf("relative vector: %q, %v", k, err)
	}

	m, err := reader.NewRowMatcher(schema, mustFilters(t, "id >= 2", "name != x"))
	if err != nil {
		t.Fatal(err)
	}
	sc := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "name", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	b.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2, 3, 4}, nil)
	b.Field(1).(*array.StringBuilder).AppendValues([]string{"a", "b", "x", ""}, []bool{true, true, true, false})
	rec := b.NewRecordBatch()
	b.Release()
	defer rec.Release()
	match := make([]bool, 4)
	if err := m.Match(rec, match); err != nil {
		t.Fatal(err)
	}
	if want := []bool{false, true, false, false}; !equalBools(match, want) {
		t.Errorf("match %v, want %v (a null never matches)", match, want)
	}
	if _, err := reader.NewRowMatcher(schema, mustFilters(t, "nope = 1")); !errors.Is(err, reader.ErrInvalidFilter) {
		t.Errorf("unknown column: %v", err)
	}

	// ScanOptions.Files restricts the scan; Scan.Files lists what survives pruning.
	a := &txlog.Add{Path: "p=a/f.parquet", PartitionValues: map[string]*string{"p": strp("a")}}
	c := &txlog.Add{Path: "p=c/f.parquet", PartitionValues: map[string]*string{"p": strp("c")}}
	snap, err := tb.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := reader.NewScan(ctx, tb, snap, &reader.ScanOptions{Files: []*txlog.Add{a, c}, Filters: mustFilters(t, "p = c")})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Files(); len(got) != 1 || got[0] != c {
		t.Errorf("Files: %v", got)
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
