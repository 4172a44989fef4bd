package reader_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// writeParquet writes records to dir/rel as one Parquet file and returns its size.
func writeParquet(t testing.TB, dir, rel string, rowGroup int64, arrowProps pqarrow.ArrowWriterProperties, recs ...arrow.RecordBatch) int64 {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	opts := []parquet.WriterProperty{parquet.WithCompression(compress.Codecs.Snappy), parquet.WithStats(true)}
	if rowGroup > 0 {
		opts = append(opts, parquet.WithMaxRowGroupLength(rowGroup))
	}
	w, err := pqarrow.NewFileWriter(recs[0].Schema(), f, parquet.NewWriterProperties(opts...), arrowProps)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// writeCommit writes _delta_log/<version>.json under dir.
func writeCommit(t testing.TB, dir string, version int64, actions ...txlog.Action) {
	t.Helper()
	data, err := txlog.EncodeActions(actions)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "_delta_log", fmt.Sprintf("%020d.json", version))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// createActions returns the protocol and metaData actions of a new table.
func createActions(schema *txlog.StructType, parts []string, conf map[string]string, proto txlog.Protocol) []txlog.Action {
	if parts == nil {
		parts = []string{}
	}
	if conf == nil {
		conf = map[string]string{}
	}
	return []txlog.Action{
		{Protocol: &proto},
		{Metadata: &txlog.Metadata{ID: "test-table", Format: txlog.Format{Provider: "parquet", Options: map[string]string{}},
			SchemaString: schema.String(), PartitionColumns: parts, Configuration: conf}},
	}
}

func addAction(path string, size int64, parts map[string]*string, stats any) txlog.Action {
	a := &txlog.Add{Path: path, Size: size, PartitionValues: parts, DataChange: true, ModificationTime: 1}
	if a.PartitionValues == nil {
		a.PartitionValues = map[string]*string{}
	}
	if stats != nil {
		b, _ := json.Marshal(stats)
		a.Stats = string(b)
	}
	return txlog.Action{Add: a}
}

func strp(s string) *string { return &s }

// openLatest opens a local table and its latest snapshot.
func openLatest(t testing.TB, dir string) (*table.Table, *txlog.Snapshot) {
	t.Helper()
	ctx := context.Background()
	tbl, err := table.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return tbl, snap
}

// scanAll scans with opts (its allocator replaced by a checked one) and returns the jsonl rows,
// the metrics, and the error.
func scanAll(t testing.TB, tbl *table.Table, snap *txlog.Snapshot, opts *reader.ScanOptions) ([]string, reader.Metrics, error) {
	t.Helper()
	rows, sc, err := scanJSONL(t, tbl, snap, opts)
	var m reader.Metrics
	if sc != nil {
		m = sc.Metrics()
	}
	return rows, m, err
}

func mustFilters(t testing.TB, exprs ...string) []reader.Filter {
	t.Helper()
	var out []reader.Filter
	for _, e := range exprs {
		f, err := reader.ParseFilter(e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}
