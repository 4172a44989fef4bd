package writer_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"gocloud.dev/blob"

	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

// listData lists the table's data files (everything outside _delta_log/).
func listData(t *testing.T, b *blob.Bucket) []string {
	t.Helper()
	var out []string
	it := b.List(nil)
	for {
		o, err := it.Next(context.Background())
		if err != nil {
			break
		}
		if !strings.HasPrefix(o.Key, "_delta_log/") {
			out = append(out, o.Key)
		}
	}
	sort.Strings(out)
	return out
}

// A cancelled context fails the writer, and nothing it wrote becomes visible or committed.
func TestCancelledWrite(t *testing.T) {
	mem := checked(t)
	tb := interactionsTable(t)
	r := rand.New(rand.NewPCG(21, 22))
	ctx, cancel := context.WithCancel(context.Background())
	w, err := writer.New(ctx, tb, &writer.Options{Allocator: mem, TargetFileSize: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	rec := interactionRecord(mem, genInteractions(r, 3000, 2)) // some files finished, some open
	defer rec.Release()
	if err := w.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := w.Write(ctx, rec); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write after cancel: %v", err)
	}
	if _, err := w.Close(context.Background()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close after a failed Write: %v", err)
	}
	if files := listData(t, tb.Bucket()); len(files) != 0 {
		t.Errorf("files left: %v", files)
	}
	if v := snapshot(t, tb).Version(); v != 0 {
		t.Errorf("version %d", v)
	}

	// Close with a cancelled context: nothing committed, nothing left.
	w, err = writer.New(context.Background(), tb, &writer.Options{Allocator: mem, TargetFileSize: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with a cancelled context: %v", err)
	}
	if files := listData(t, tb.Bucket()); len(files) != 0 {
		t.Errorf("files left: %v", files)
	}
}

func TestAbort(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	tb := interactionsTable(t)
	r := rand.New(rand.NewPCG(23, 24))
	w, err := writer.New(ctx, tb, &writer.Options{Allocator: mem, TargetFileSize: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	rec := interactionRecord(mem, genInteractions(r, 3000, 2))
	if err := w.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	if err := w.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if files := listData(t, tb.Bucket()); len(files) != 0 {
		t.Errorf("files left: %v", files)
	}
	if err := w.Write(ctx, rec); !errors.Is(err, writer.ErrClosed) {
		t.Errorf("Write after Abort: %v", err)
	}
}

// FileWriter writes files without committing (for compaction).
func TestFileWriterDoesNotCommit(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	tb := interactionsTable(t)
	snap := snapshot(t, tb)
	fw, err := writer.NewFileWriter(tb.Bucket(), snap.Metadata(), snap.Protocol(), &writer.Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	rec := interactionRecord(mem, genInteractions(rand.New(rand.NewPCG(25, 26)), 500, 3))
	if err := fw.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	adds, err := fw.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(adds) != 3 || len(listData(t, tb.Bucket())) != 3 {
		t.Fatalf("%d adds", len(adds))
	}
	if v := snapshot(t, tb).Version(); v != 0 {
		t.Errorf("FileWriter committed: version %d", v)
	}
	// The caller commits them.
	txn := tb.Log().NewTransaction(snap, &txlog.TxnOptions{Operation: "OPTIMIZE"})
	for i := range adds {
		adds[i].DataChange = false
		txn.AddActions(txlog.Action{Add: &adds[i]})
	}
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := snapshot(t, tb).NumFiles(); n != 3 {
		t.Errorf("%d files after commit", n)
	}
}

// Inputs in other Arrow types that widen without loss are converted.
func TestConversions(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	tb := createTable(t, memURI(), &txlog.StructType{Fields: []txlog.StructField{
		{Name: "ts", Type: txlog.Timestamp, Nullable: true},
		{Name: "s", Type: txlog.String, Nullable: true},
		{Name: "n", Type: txlog.Long, Nullable: true},
		{Name: "d", Type: &txlog.DecimalType{Precision: 10, Scale: 3}, Nullable: true},
		{Name: "cat", Type: txlog.String, Nullable: true},
	}}, []string{"cat"}, nil)
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "Europe/Paris"}, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.LargeString, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
		{Name: "d", Type: &arrow.Decimal128Type{Precision: 5, Scale: 2}, Nullable: true},
		{Name: "cat", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, sc)
	ts := time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC)
	b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixNano()))
	b.Field(1).(*array.LargeStringBuilder).Append("large")
	b.Field(2).(*array.Int8Builder).Append(-7)
	b.Field(3).(*array.Decimal128Builder).Append(decimal128.FromI64(-1234))
	if err := b.Field(4).(*array.BinaryDictionaryBuilder).AppendString("A/A"); err != nil {
		t.Fatal(err)
	}
	rec := b.NewRecordBatch()
	b.Release()
	w, err := writer.New(ctx, tb, &writer.Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a := &res.Added[0]
	if *a.PartitionValues["cat"] != "A/A" || !strings.HasPrefix(a.Path, "cat=A%252FA/") {
		t.Errorf("partition %v at %s", a.PartitionValues, a.Path)
	}
	tbl, _ := readFile(t, tb, a)
	defer tbl.Release()
	rows := rowsJSON(t, tbl, "s")
	got, _ := json.Marshal(rows["large"])
	if want := `{"d":"-12.34","n":-7,"s":"large","ts":"2024-01-02T03:04:05.123456Z"}`; string(got) != want {
		t.Errorf("row %s, want %s", got, want)
	}
	if f, _ := tbl.Schema().FieldsByName("d"); !arrow.TypeEqual(f[0].Type, &arrow.Decimal128Type{Precision: 10, Scale: 3}) {
		t.Errorf("d is %s in the file", f[0].Type)
	}
}

// Input already grouped by partition is split without reordering.
func TestSortedInput(t *testing.T) {
	mem := checked(t)
	tb := interactionsTable(t)
	rows := genInteractions(rand.New(rand.NewPCG(27, 28)), 3000, 3)
	sort.Slice(rows, func(i, j int) bool { return rows[i].TS.Before(rows[j].TS) })
	res := writeBatches(t, tb, &writer.Options{Allocator: mem}, rows, 1000)
	if len(res.Added) != 3 {
		t.Fatalf("%d files", len(res.Added))
	}
	total := int64(0)
	for i := range res.Added {
		a := &res.Added[i]
		tbl, _ := readFile(t, tb, a)
		for _, r := range rowsJSON(t, tbl, "event_id") {
			if !strings.HasPrefix(r["timestamp"].(string), *a.PartitionValues["event_date"]) {
				t.Fatalf("row at %v in partition %s", r["timestamp"], *a.PartitionValues["event_date"])
			}
		}
		total += tbl.NumRows()
		tbl.Release()
	}
	if total != 3000 {
		t.Errorf("%d rows", total)
	}
}

// Concurrent appends all commit: each is rebased over the others.
func TestConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	tb := interactionsTable(t)
	const n = 4
	errs := make(chan error, n)
	for i := range n {
		go func() {
			w, err := writer.New(ctx, tb, &writer.Options{Allocator: mem})
			if err != nil {
				errs <- err
				return
			}
			rec := interactionRecord(mem, genInteractions(rand.New(rand.NewPCG(uint64(i), 30)), 200, 2))
			// Released before the result is sent: the test's allocator check runs right after.
			err = w.Write(ctx, rec)
			rec.Release()
			if err != nil {
				errs <- err
				return
			}
			_, err = w.Close(ctx)
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	snap := snapshot(t, tb)
	if snap.Version() != n || snap.NumFiles() != 2*n {
		t.Errorf("version %d with %d files, want %d with %d", snap.Version(), snap.NumFiles(), n, 2*n)
	}
}
