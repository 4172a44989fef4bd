package jobs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
	"github.com/lakehouse/lake/writer/source"
)

// Records yields the events as Arrow record batches of the standard interaction schema
// (table.InteractionSchema), batchRows rows each (default 65,536): what ingesting the three
// generated files gives, without files or ingest. event_id is "g<seed>-<index>", source is the
// file the event is in, properties holds the item's true category, value a purchase's price in
// the clicks source.
//
// Ownership: each batch is released when the loop body returns; Retain one to keep it.
func (d *Dataset) Records(alloc memory.Allocator, batchRows int) iter.Seq2[arrow.RecordBatch, error] {
	return func(yield func(arrow.RecordBatch, error) bool) {
		if alloc == nil {
			alloc = memory.DefaultAllocator
		}
		if batchRows <= 0 {
			batchRows = 65536
		}
		schema, err := deltaarrow.Schema(table.InteractionSchema())
		if err != nil {
			yield(nil, err)
			return
		}
		b := array.NewRecordBuilder(alloc, schema)
		defer b.Release()
		eid := b.Field(0).(*array.StringBuilder)
		uid := b.Field(1).(*array.StringBuilder)
		iid := b.Field(2).(*array.StringBuilder)
		typ := b.Field(3).(*array.StringBuilder)
		ts := b.Field(4).(*array.TimestampBuilder)
		date := b.Field(5).(*array.Date32Builder)
		src := b.Field(6).(*array.StringBuilder)
		val := b.Field(7).(*array.Float64Builder)
		props := b.Field(8).(*array.MapBuilder)
		pk := props.KeyBuilder().(*array.StringBuilder)
		pv := props.ItemBuilder().(*array.StringBuilder)
		prefix := "g" + strconv.FormatUint(d.Options.Seed, 10) + "-"
		var buf []byte
		for start := 0; start < len(d.Events); start += batchRows {
			end := min(len(d.Events), start+batchRows)
			n := end - start
			for _, bl := range []array.Builder{eid, uid, iid, typ, ts, date, src, val, props} {
				bl.Reserve(n)
			}
			for i := start; i < end; i++ {
				e := &d.Events[i]
				buf = strconv.AppendInt(append(buf[:0], prefix...), int64(i), 10)
				eid.BinaryBuilder.Append(buf)
				buf = strconv.AppendInt(append(buf[:0], 'u'), int64(e.User), 10)
				uid.BinaryBuilder.Append(buf)
				buf = strconv.AppendInt(append(buf[:0], 'i'), int64(e.Item), 10)
				iid.BinaryBuilder.Append(buf)
				typ.Append(GenTypeNames[e.Type])
				ts.Append(arrow.Timestamp(e.Time))
				date.Append(arrow.Date32(e.Time / (86400 * 1e6)))
				src.Append(GenSourceNames[e.Source])
				if math.IsNaN(e.Value) {
					val.AppendNull()
				} else {
					val.Append(e.Value)
				}
				props.Append(true)
				pk.Append("category")
				buf = strconv.AppendInt(append(buf[:0], 'c'), int64(d.ItemCategory[e.Item]), 10)
				pv.BinaryBuilder.Append(buf)
			}
			rec := b.NewRecordBatch()
			ok := yield(rec, nil)
			rec.Release()
			if !ok {
				return
			}
		}
	}
}

// GenMappings are the mappings of the three generated files.
func GenMappings() map[string]*source.Mapping {
	yes := true
	return map[string]*source.Mapping{
		"retail": {Source: "retail", Format: "csv",
			Fields:          map[string]string{"user_id": "uid", "item_id": "product", "interaction_type": "action", "timestamp": "ts"},
			Types:           map[string]string{"pv": "view", "atc": "add_to_cart", "buy": "purchase"},
			TimestampFormat: "epoch_ms", Properties: &yes},
		"app": {Source: "app", Format: "json",
			Fields: map[string]string{"user_id": "user.id", "item_id": "item.id", "interaction_type": "event", "timestamp": "time",
				"properties.category": "item.category"},
			Types:           map[string]string{"view": "view", "cart": "add_to_cart", "order": "purchase"},
			TimestampFormat: "rfc3339", Properties: &yes},
		"clicks": {Source: "clicks", Format: "ndjson",
			Fields: map[string]string{"event_id": "event_id", "user_id": "user_id", "item_id": "item_id",
				"interaction_type": "interaction_type", "timestamp": "timestamp", "value": "value"},
			TimestampFormat: "rfc3339", Properties: &yes},
	}
}

var (
	retailTypes = [...]string{"pv", "atc", "buy"}
	appTypes    = [...]string{"view", "cart", "order"}
	pages       = [...]string{"/home", "/search", "/item", "/category", "/cart"}
	referrers   = [...]string{"", "https://www.google.com/", "https://news.example.com/", "email"}
	appZones    = [...]*time.Location{time.FixedZone("", 2*3600), time.FixedZone("", -5*3600), time.FixedZone("", 5*3600+1800), time.UTC}
)

// WriteFiles writes the data set under dir as `lake gen` does: retail.csv, app.json,
// clicks.ndjson, mappings/{retail,app,clicks}.json and truth/{surges,decoys,items}.jsonl.
func (d *Dataset) WriteFiles(dir string) error {
	for _, sub := range []string{"mappings", "truth"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	type file struct {
		f *os.File
		w *bufio.Writer
	}
	open := func(name string) (*file, error) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		return &file{f, bufio.NewWriterSize(f, 1<<20)}, nil
	}
	closeAll := func(fs ...*file) error {
		var first error
		for _, f := range fs {
			if err := f.w.Flush(); err != nil && first == nil {
				first = err
			}
			if err := f.f.Close(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	retail, err := open("retail.csv")
	if err != nil {
		return err
	}
	app, err := open("app.json")
	if err != nil {
		closeAll(retail)
		return err
	}
	clicks, err := open("clicks.ndjson")
	if err != nil {
		closeAll(retail, app)
		return err
	}
	retail.w.WriteString("uid,product,action,ts\n")
	app.w.WriteString("[\n")
	firstApp := true
	var buf []byte
	for i := range d.Events {
		e := &d.Events[i]
		cat := CategoryID(d.ItemCategory[e.Item])
		switch e.Source {
		case SourceRetail:
			buf = append(buf[:0], 'u')
			buf = strconv.AppendInt(buf, int64(e.User), 10)
			buf = append(buf, ",i"...)
			buf = strconv.AppendInt(buf, int64(e.Item), 10)
			buf = append(buf, ',')
			buf = append(buf, retailTypes[e.Type]...)
			buf = append(buf, ',')
			buf = strconv.AppendInt(buf, e.Time/1000, 10)
			buf = append(buf, '\n')
			retail.w.Write(buf)
		case SourceApp:
			if !firstApp {
				app.w.WriteString(",\n")
			}
			firstApp = false
			t := time.UnixMicro(e.Time).In(appZones[e.User%int32(len(appZones))])
			fmt.Fprintf(app.w, `{"user":{"id":"u%d"},"item":{"id":"i%d","category":"%s"},"event":"%s","time":"%s"}`,
				e.User, e.Item, cat, appTypes[e.Type], t.Format(time.RFC3339))
		case SourceClicks:
			// Written by hand (the same as encoding/json's output for these values, keys sorted),
			// 5x faster than marshalling a map per event.
			buf = append(buf[:0], `{"category":"`...)
			buf = append(buf, cat...)
			buf = append(buf, `","event_id":"g`...)
			buf = strconv.AppendUint(buf, d.Options.Seed, 10)
			buf = append(buf, '-')
			if d.Options.EventSeed != 0 {
				buf = strconv.AppendUint(buf, d.Options.EventSeed, 10)
				buf = append(buf, '-')
			}
			buf = strconv.AppendInt(buf, int64(i), 10)
			buf = append(buf, `","interaction_type":"`...)
			buf = append(buf, GenTypeNames[e.Type]...)
			buf = append(buf, `","item_id":"i`...)
			buf = strconv.AppendInt(buf, int64(e.Item), 10)
			buf = append(buf, `","page":"`...)
			buf = append(buf, pages[(int(e.Item)+i)%len(pages)]...)
			buf = append(buf, `","referrer":"`...)
			buf = append(buf, referrers[i%len(referrers)]...)
			buf = append(buf, `","timestamp":"`...)
			buf = time.UnixMicro(e.Time).UTC().AppendFormat(buf, time.RFC3339)
			buf = append(buf, `","user_id":"u`...)
			buf = strconv.AppendInt(buf, int64(e.User), 10)
			buf = append(buf, '"')
			if !math.IsNaN(e.Value) {
				buf = append(buf, `,"value":`...)
				buf = strconv.AppendFloat(buf, e.Value, 'g', -1, 64)
			}
			buf = append(buf, "}\n"...)
			clicks.w.Write(buf)
		}
	}
	app.w.WriteString("\n]\n")
	if err := closeAll(retail, app, clicks); err != nil {
		return err
	}
	for name, m := range GenMappings() {
		b, _ := json.MarshalIndent(m, "", "  ")
		if err := os.WriteFile(filepath.Join(dir, "mappings", name+".json"), append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if err := writeJSONL(filepath.Join(dir, "truth", "surges.jsonl"), d.Surges); err != nil {
		return err
	}
	if err := writeJSONL(filepath.Join(dir, "truth", "decoys.jsonl"), d.Decoys); err != nil {
		return err
	}
	return writeJSONL(filepath.Join(dir, "truth", "items.jsonl"), d.Truth())
}

func writeJSONL[T any](path string, rows []T) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for i := range rows {
		if err := enc.Encode(rows[i]); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteDataset appends the generated events to the interaction table at uri (created, partitioned
// by event_date, when there is none) in one commit, and returns the version committed: the
// generator straight into a table, without files and ingest, for tests, benchmarks and demos.
func WriteDataset(ctx context.Context, uri string, d *Dataset) (int64, error) {
	tb, err := table.Open(ctx, uri, nil)
	if errors.Is(err, txlog.ErrNotATable) {
		tb, err = table.Create(ctx, uri, table.InteractionSchema(), &table.CreateOptions{PartitionColumns: []string{table.InteractionPartitionColumn}})
	}
	if err != nil {
		return 0, err
	}
	defer tb.Close()
	w, err := writer.New(ctx, tb, nil)
	if err != nil {
		return 0, err
	}
	for rec, err := range d.Records(nil, 0) {
		if err == nil {
			err = w.Write(ctx, rec)
		}
		if err != nil {
			w.Abort(context.WithoutCancel(ctx))
			return 0, err
		}
	}
	res, err := w.Close(ctx)
	if err != nil {
		return 0, err
	}
	return res.Version, nil
}
