package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
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
func demoBatch(rng *rand.Rand, source string, n int, start time.Time, days int) (arrow.RecordBatch, error) {
	schema, err := deltaarrow.Schema(table.InteractionSchema())
	if err != nil {
		return nil, err
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	types := []string{"view", "view", "view", "view", "click", "click", "add_to_cart", "like", "purchase"}
	for i := 0; i < n; i++ {
		ts := start.Add(time.Duration(rng.Int64N(int64(days) * int64(24*time.Hour))))
		item := int(rng.ExpFloat64() * 40)
		typ := types[rng.IntN(len(types))]
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("%s-%d", source, i))
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("user-%04d", rng.IntN(5000)))
		b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("item-%03d", item))
		b.Field(3).(*array.StringBuilder).Append(typ)
		b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMicro()))
		b.Field(5).(*array.Date32Builder).Append(arrow.Date32FromTime(ts))
		b.Field(6).(*array.StringBuilder).Append(source)
		if typ == "purchase" {
			b.Field(7).(*array.Float64Builder).Append(float64(5 + rng.IntN(200)))
		} else {
			b.Field(7).(*array.Float64Builder).AppendNull()
		}
		mb := b.Field(8).(*array.MapBuilder)
		mb.Append(true)
		mb.KeyBuilder().(*array.StringBuilder).Append("device")
		mb.ItemBuilder().(*array.StringBuilder).Append([]string{"ios", "android", "desktop"}[rng.IntN(3)])
	}
	return b.NewRecordBatch(), nil
}
