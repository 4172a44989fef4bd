package compaction

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/uuid"

	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/internal/testutil/tablerows"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

func memURI() string { return "mem://compaction-test-" + uuid.NewString() }

func newTable(t testing.TB, uri string, props map[string]string) *table.Table {
	t.Helper()
	tb, err := table.Create(context.Background(), uri, table.InteractionSchema(), &table.CreateOptions{
		PartitionColumns: []string{"event_date"}, Properties: props,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() })
	return tb
}

type row struct {
	id, user, item string
	day            int // days after 2024-01-01
}

var day0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func record(mem memory.Allocator, rows []row) arrow.RecordBatch {
	sc, err := deltaarrow.Schema(table.InteractionSchema())
	if err != nil {
		panic(err)
	}
	b := array.NewRecordBuilder(mem, sc)
	defer b.Release()
	for i, r := range rows {
		ts := day0.AddDate(0, 0, r.day).Add(time.Duration(i) * time.Second)
		b.Field(0).(*array.StringBuilder).Append(r.id)
		b.Field(1).(*array.StringBuilder).Append(r.user)
		b.Field(2).(*array.StringBuilder).Append(r.item)
		b.Field(3).(*array.StringBuilder).Append("view")
		b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMicro()))
		b.Field(5).(*array.Date32Builder).Append(arrow.Date32FromTime(ts))
		b.Field(6).(*array.StringBuilder).Append("test")
		b.Field(7).AppendNull()
		b.Field(8).AppendNull()
	}
	return b.NewRecordBatch()
}

// appendRows commits rows as one blind append and returns the version. It calls t.Fatal: use
// appendRowsErr from other goroutines.
func appendRows(t testing.TB, tb *table.Table, rows []row) int64 {
	t.Helper()
	v, err := appendRowsErr(tb, rows)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func appendRowsErr(tb *table.Table, rows []row) (int64, error) {
	ctx := context.Background()
	w, err := writer.New(ctx, tb, nil)
	if err != nil {
		return -1, err
	}
	rec := record(memory.DefaultAllocator, rows)
	defer rec.Release()
	if err := w.Write(ctx, rec); err != nil {
		_ = w.Abort(ctx)
		return -1, err
	}
	res, err := w.Close(ctx)
	if err != nil {
		return -1, err
	}
	return res.Version, nil
}

// canonicalRows reads a snapshot's rows as sorted JSON lines.
func canonicalRows(t testing.TB, tb *table.Table, snap *txlog.Snapshot) []string {
	return tablerows.Lines(t, tb, snap)
}

func latest(t testing.TB, tb *table.Table) *txlog.Snapshot {
	t.Helper()
	s, err := tb.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func filesPerPartition(snap *txlog.Snapshot) map[string]int {
	out := map[string]int{}
	for _, a := range snap.Files() {
		out[partKey(a.PartitionValues)]++
	}
	return out
}

func rowsN(n, days int, prefix string) []row {
	out := make([]row, n)
	for i := range out {
		out[i] = row{id: fmt.Sprintf("%s%05d", prefix, i), user: fmt.Sprintf("u%d", i%7), item: fmt.Sprintf("i%d", i%13), day: i % days}
	}
	return out
}
