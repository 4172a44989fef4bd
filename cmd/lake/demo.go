package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/writer"
)

func init() {
	register(&command{name: "demo", summary: "the quickstart: a local interaction table, sample data in, results shown", run: runDemo})
}

func runDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlags("demo", "[DIR]", e)
	rows := fs.Int("rows", 200000, "interactions to generate")
	pos, err := parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	dir := "lake-demo"
	if len(pos) == 1 {
		dir = pos[0]
	}
	abs, _ := filepath.Abs(dir)
	if _, err := os.Stat(filepath.Join(abs, "_delta_log")); err == nil {
		return fmt.Errorf("%s already holds a table; give another DIR or remove it", abs)
	}
	out := e.stdout
	t, err := table.Create(ctx, abs, table.InteractionSchema(), &table.CreateOptions{PartitionColumns: []string{"event_date"}})
	if err != nil {
		return err
	}
	defer t.Close()
	fmt.Fprintf(out, "1. created %s (Delta table, partitioned by event_date)\n", abs)

	start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	half := *rows / 2
	for i, src := range []string{"web-pixel", "mobile-app"} {
		rec, err := demoBatch(rng, src, half, start, 7)
		if err != nil {
			return err
		}
		w, err := writer.New(ctx, t, &writer.Options{OperationParameters: map[string]any{"source": src}})
		if err != nil {
			rec.Release()
			return err
		}
		err = w.Write(ctx, rec)
		rec.Release()
		if err != nil {
			return err
		}
		res, err := w.Close(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%d. %s: appended %d interactions in %d files as version %d\n", i+2, src, res.Rows, len(res.Added), res.Version)
	}
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return err
	}
	d := describe(snap)
	fmt.Fprintf(out, "4. snapshot v%d: %d files, %d records, %d bytes\n", d.Version, d.NumFiles, *d.NumRecords, d.SizeInBytes)

	v1, err := t.SnapshotAt(ctx, 1)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "5. time travel: version 1 had %d files (only the web-pixel batch)\n", v1.NumFiles())

	lastDay := start.AddDate(0, 0, 6).Format("2006-01-02")
	scan, err := reader.NewScan(ctx, t, snap, &reader.ScanOptions{
		Columns: []string{"item_id"},
		Filters: []reader.Filter{{Column: "event_date", Op: "=", Values: []string{lastDay}}, {Column: "interaction_type", Op: "=", Values: []string{"purchase"}}},
	})
	if err != nil {
		return err
	}
	counts := map[string]int{}
	for rec, err := range scan.Records(ctx) {
		if err != nil {
			return err
		}
		col := rec.Column(0).(*array.String)
		for i := 0; i < col.Len(); i++ {
			counts[col.Value(i)]++
		}
	}
	m := scan.Metrics()
	type kv struct {
		item string
		n    int
	}
	var top []kv
	for k, v := range counts {
		top = append(top, kv{k, v})
	}
	sort.Slice(top, func(i, j int) bool { return top[i].n > top[j].n || (top[i].n == top[j].n && top[i].item < top[j].item) })
	fmt.Fprintf(out, "6. top purchased items on %s (read %d of %d files; %d pruned by partition):\n", lastDay, m.FilesRead, m.FilesConsidered, m.FilesPrunedByPartition)
	for i := 0; i < len(top) && i < 5; i++ {
		fmt.Fprintf(out, "   %d. %s  %d purchases\n", i+1, top[i].item, top[i].n)
	}
	fmt.Fprintf(out, "\nNext: lake history %s · lake cat %s --where \"event_date = %s\" --limit 10 · lake describe %s\n", dir, dir, lastDay, dir)
	return nil
}

// demoBatch generates n interactions over days days from start, with a popularity skew.
// It fills the Arrow buffers directly, formatting numbers with strconv: `lake bench write`
// generates rows between writes, on the same cores as the writer.
func demoBatch(rng *rand.Rand, source string, n int, start time.Time, days int) (arrow.RecordBatch, error) {
	schema, err := deltaarrow.Schema(table.InteractionSchema())
	if err != nil {
		return nil, err
	}
	types := []string{"view", "view", "view", "view", "click", "click", "add_to_cart", "like", "purchase"}
	devices := []string{"ios", "android", "desktop"}
	eventID := newStrCol(n, n*(len(source)+8))
	userID := newStrCol(n, n*9)
	itemID := newStrCol(n, n*8)
	typeCol := newStrCol(n, n*5)
	srcCol := newStrCol(n, n*len(source))
	keys := newStrCol(n, n*6)
	items := newStrCol(n, n*7)
	ts := make([]int64, n)
	dates := make([]int32, n)
	values := make([]float64, n)
	valid := make([]byte, bitutil.BytesForBits(int64(n)))
	nulls := 0
	span := int64(days) * int64(24*time.Hour)
	startUS := start.UnixMicro()
	const dayUS = int64(24 * time.Hour / time.Microsecond)
	for i := 0; i < n; i++ {
		off := rng.Int64N(span)
		item := int64(rng.ExpFloat64() * 40)
		typ := types[rng.IntN(len(types))]
		eventID.add(strconv.AppendInt(append(append(eventID.data, source...), '-'), int64(i), 10))
		userID.add(appendPadded(append(userID.data, "user-"...), rng.Int64N(5000), 4))
		itemID.add(appendPadded(append(itemID.data, "item-"...), item, 3))
		typeCol.add(append(typeCol.data, typ...))
		us := startUS + off/int64(time.Microsecond)
		ts[i] = us
		dates[i] = int32(floorDiv(us, dayUS))
		srcCol.add(append(srcCol.data, source...))
		if typ == "purchase" {
			values[i] = float64(5 + rng.IntN(200))
			bitutil.SetBit(valid, i)
		} else {
			nulls++
		}
		keys.add(append(keys.data, "device"...))
		items.add(append(items.data, devices[rng.IntN(3)]...))
	}
	mapType := schema.Field(8).Type.(*arrow.MapType)
	entries := mapType.Elem().(*arrow.StructType)
	keysData, itemsData := keys.arrayData(entries.Field(0).Type), items.arrayData(entries.Field(1).Type)
	defer keysData.Release()
	defer itemsData.Release()
	entriesData := array.NewData(entries, n, []*memory.Buffer{nil}, []arrow.ArrayData{keysData, itemsData}, 0, 0)
	defer entriesData.Release()
	mapOffsets := make([]int32, n+1)
	for i := range mapOffsets {
		mapOffsets[i] = int32(i)
	}
	mapData := array.NewData(mapType, n, []*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(mapOffsets))}, []arrow.ArrayData{entriesData}, 0, 0)
	defer mapData.Release()
	fixed := func(dt arrow.DataType, b []byte) arrow.ArrayData {
		return array.NewData(dt, n, []*memory.Buffer{nil, memory.NewBufferBytes(b)}, nil, 0, 0)
	}
	data := []arrow.ArrayData{
		eventID.arrayData(schema.Field(0).Type),
		userID.arrayData(schema.Field(1).Type),
		itemID.arrayData(schema.Field(2).Type),
		typeCol.arrayData(schema.Field(3).Type),
		fixed(schema.Field(4).Type, arrow.Int64Traits.CastToBytes(ts)),
		fixed(schema.Field(5).Type, arrow.Int32Traits.CastToBytes(dates)),
		srcCol.arrayData(schema.Field(6).Type),
		array.NewData(schema.Field(7).Type, n, []*memory.Buffer{memory.NewBufferBytes(valid), memory.NewBufferBytes(arrow.Float64Traits.CastToBytes(values))}, nil, nulls, 0),
		mapData,
	}
	cols := make([]arrow.Array, len(data))
	for i, d := range data {
		if i != 8 {
			defer d.Release()
		}
		cols[i] = array.MakeFromData(d)
		defer cols[i].Release()
	}
	return array.NewRecordBatch(schema, cols, int64(n)), nil
}

// strCol accumulates the values of a string column: offsets and bytes.
type strCol struct {
	offsets []int32
	data    []byte
}

func newStrCol(n, bytes int) *strCol {
	return &strCol{offsets: append(make([]int32, 0, n+1), 0), data: make([]byte, 0, bytes)}
}

// add takes data extended by one value.
func (c *strCol) add(data []byte) {
	c.data = data
	c.offsets = append(c.offsets, int32(len(data)))
}

func (c *strCol) arrayData(dt arrow.DataType) arrow.ArrayData {
	return array.NewData(dt, len(c.offsets)-1, []*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(c.offsets)), memory.NewBufferBytes(c.data)}, nil, 0, 0)
}

// appendPadded appends v in decimal, zero-padded to width digits (as %0*d does for v >= 0).
func appendPadded(buf []byte, v int64, width int) []byte {
	for w, x := 1, v; w < width; w++ {
		if x /= 10; x == 0 {
			buf = append(buf, '0')
		}
	}
	return strconv.AppendInt(buf, v, 10)
}

// floorDiv is a/b rounded down (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
