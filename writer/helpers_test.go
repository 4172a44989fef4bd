package writer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/google/uuid"

	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/internal/partval"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// memURI returns a fresh mem:// table URI.
func memURI() string { return "mem://writer-test-" + uuid.NewString() }

func createTable(t testing.TB, uri string, schema *txlog.StructType, partCols []string, props map[string]string) *table.Table {
	t.Helper()
	tb, err := table.Create(context.Background(), uri, schema, &table.CreateOptions{PartitionColumns: partCols, Properties: props})
	if err != nil {
		t.Fatalf("create table: %v", err)
	}
	t.Cleanup(func() { tb.Close() })
	return tb
}

func interactionsTable(t testing.TB) *table.Table {
	return createTable(t, memURI(), table.InteractionSchema(), []string{"event_date"}, nil)
}

func snapshot(t testing.TB, tb *table.Table) *txlog.Snapshot {
	t.Helper()
	s, err := tb.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type interaction struct {
	EventID, UserID, ItemID, Type string
	TS                            time.Time
	Source                        *string
	Value                         *float64
	Props                         map[string]string
}

var day0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func genInteractions(r *rand.Rand, n, days int) []interaction {
	types := []string{"view", "add_to_cart", "purchase", "click", "like", "share"}
	out := make([]interaction, n)
	for i := range out {
		ts := day0.Add(time.Duration(r.Int64N(int64(days)*24*3600*1e6)) * time.Microsecond)
		it := interaction{
			EventID: fmt.Sprintf("e-%08d-%d", i, r.Int64()),
			UserID:  fmt.Sprintf("u%05d", r.IntN(5000)),
			ItemID:  fmt.Sprintf("i%05d", r.IntN(20000)),
			Type:    types[r.IntN(len(types))],
			TS:      ts,
		}
		if r.IntN(4) != 0 {
			s := []string{"web", "app", "import"}[r.IntN(3)]
			it.Source = &s
		}
		if r.IntN(3) != 0 {
			v := float64(r.IntN(10000)) / 100
			it.Value = &v
		}
		if r.IntN(2) == 0 {
			it.Props = map[string]string{"k": fmt.Sprint(r.IntN(10))}
		}
		out[i] = it
	}
	return out
}

// interactionRecord builds a record of the interaction schema.
func interactionRecord(mem memory.Allocator, rows []interaction) arrow.RecordBatch {
	sc, err := deltaarrow.Schema(table.InteractionSchema())
	if err != nil {
		panic(err)
	}
	b := array.NewRecordBuilder(mem, sc)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(r.EventID)
		b.Field(1).(*array.StringBuilder).Append(r.UserID)
		b.Field(2).(*array.StringBuilder).Append(r.ItemID)
		b.Field(3).(*array.StringBuilder).Append(r.Type)
		b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(r.TS.UnixMicro()))
		b.Field(5).(*array.Date32Builder).Append(arrow.Date32FromTime(r.TS))
		if r.Source != nil {
			b.Field(6).(*array.StringBuilder).Append(*r.Source)
		} else {
			b.Field(6).AppendNull()
		}
		if r.Value != nil {
			b.Field(7).(*array.Float64Builder).Append(*r.Value)
		} else {
			b.Field(7).AppendNull()
		}
		mb := b.Field(8).(*array.MapBuilder)
		if r.Props == nil {
			mb.AppendNull()
		} else {
			mb.Append(true)
			for k, v := range r.Props {
				mb.KeyBuilder().(*array.StringBuilder).Append(k)
				mb.ItemBuilder().(*array.StringBuilder).Append(v)
			}
		}
	}
	return b.NewRecordBatch()
}

// readFile reads a data file of tb with pqarrow: its rows as a table, and its footer.
func readFile(t testing.TB, tb *table.Table, add *txlog.Add) (arrow.Table, *metadata.FileMetaData) {
	t.Helper()
	ctx := context.Background()
	data, err := tb.Bucket().ReadAll(ctx, partval.DecodeURIPath(add.Path))
	if err != nil {
		t.Fatalf("read %s: %v", add.Path, err)
	}
	if int64(len(data)) != add.Size {
		t.Errorf("%s: add.size %d, file has %d bytes", add.Path, add.Size, len(data))
	}
	rdr, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("open %s: %v", add.Path, err)
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(ctx)
	if err != nil {
		t.Fatalf("read %s: %v", add.Path, err)
	}
	return tbl, rdr.MetaData()
}

// rowsJSON renders a table's rows as JSON objects keyed by the value of keyCol.
func rowsJSON(t testing.TB, tbl arrow.Table, keyCol string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	tr := array.NewTableReader(tbl, 1<<16)
	defer tr.Release()
	for tr.Next() {
		var buf bytes.Buffer
		if err := array.RecordToJSON(tr.RecordBatch(), &buf); err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(&buf)
		dec.UseNumber()
		for dec.More() {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatal(err)
			}
			out[fmt.Sprint(m[keyCol])] = m
		}
	}
	return out
}

func recordJSON(t testing.TB, rec arrow.RecordBatch, keyCol string) map[string]map[string]any {
	tbl := array.NewTableFromRecords(rec.Schema(), []arrow.RecordBatch{rec})
	defer tbl.Release()
	return rowsJSON(t, tbl, keyCol)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func parseStats(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("stats %q: %v", s, err)
	}
	return m
}

func checked(t testing.TB) *memory.CheckedAllocator {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}
