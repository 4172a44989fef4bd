package writer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/lakehouse/lake/internal/partval"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

var fileNameRE = regexp.MustCompile(`^event_date=2024-01-0[1-3]/part-\d{5}-[0-9a-f-]{36}\.c000\.zstd\.parquet$`)

func TestWritePartitionedInteractions(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	tb := interactionsTable(t)
	r := rand.New(rand.NewPCG(1, 2))
	in := genInteractions(r, 5000, 3)

	w, err := writer.New(ctx, tb, &writer.Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]any{}
	wantDate := map[string]string{}
	for _, chunk := range [][]interaction{in[:2000], in[2000:]} {
		rec := interactionRecord(mem, chunk)
		for k, v := range recordJSON(t, rec, "event_id") {
			wantDate[k] = v["event_date"].(string)
			delete(v, "event_date")
			want[k] = v
		}
		if err := w.Write(ctx, rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 1 || !res.Committed || res.Rows != 5000 || len(res.Added) != 3 {
		t.Fatalf("result = %+v", res)
	}

	snap := snapshot(t, tb)
	if snap.Version() != 1 || snap.NumFiles() != 3 {
		t.Fatalf("snapshot version %d with %d files", snap.Version(), snap.NumFiles())
	}
	got := map[string]map[string]any{}
	var bytes int64
	for _, add := range snap.Files() {
		if !fileNameRE.MatchString(add.Path) {
			t.Errorf("path %q does not look like event_date=YYYY-MM-DD/part-NNNNN-<uuid>.c000.zstd.parquet", add.Path)
		}
		date := *add.PartitionValues["event_date"]
		if !strings.HasPrefix(add.Path, "event_date="+date+"/") {
			t.Errorf("%s: partition value %s", add.Path, date)
		}
		bytes += add.Size
		tbl, md := readFile(t, tb, add)
		// Partition columns are not in the files.
		if tbl.Schema().HasField("event_date") {
			t.Errorf("%s holds the partition column", add.Path)
		}
		// Timestamps are INT64 TIMESTAMP(MICROS, UTC).
		col := md.Schema.Column(md.Schema.ColumnIndexByName("timestamp"))
		if col.PhysicalType() != parquet.Types.Int64 {
			t.Errorf("timestamp physical type %s, want INT64", col.PhysicalType())
		}
		if lt, ok := col.LogicalType().(schema.TimestampLogicalType); !ok || lt.TimeUnit() != schema.TimeUnitMicros || !lt.IsAdjustedToUTC() {
			t.Errorf("timestamp logical type %s, want TIMESTAMP(MICROS, UTC)", col.LogicalType())
		}
		rows := rowsJSON(t, tbl, "event_id")
		for k, v := range rows {
			if wantDate[k] != date {
				t.Errorf("row %s (date %s) is in partition %s", k, wantDate[k], date)
			}
			got[k] = v
		}
		// add.stats
		st := parseStats(t, add.Stats)
		if n, _ := st["numRecords"].(json.Number).Int64(); n != tbl.NumRows() {
			t.Errorf("%s: numRecords %d, file has %d rows", add.Path, n, tbl.NumRows())
		}
		mins := st["minValues"].(map[string]any)
		maxs := st["maxValues"].(map[string]any)
		nulls := st["nullCount"].(map[string]any)
		for _, c := range []string{"event_id", "user_id", "item_id", "interaction_type", "timestamp", "source", "value"} {
			if mins[c] == nil || maxs[c] == nil {
				t.Errorf("%s: no min/max for %s: %s", add.Path, c, add.Stats)
			}
		}
		for _, c := range []string{"event_date", "properties"} {
			if mins[c] != nil {
				t.Errorf("%s: min for %s: %s", add.Path, c, add.Stats)
			}
		}
		if nulls["properties"] == nil || nulls["source"] == nil || nulls["event_date"] != nil {
			t.Errorf("%s: nullCount %v", add.Path, nulls)
		}
		if _, ok := st["tightBounds"]; ok {
			t.Errorf("tightBounds without deletion vectors: %s", add.Stats)
		}
		checkStatsAgainstRows(t, add, rows, mins, maxs, nulls)
		// The Parquet footer has min/max statistics too.
		rg := md.RowGroup(0)
		cc, err := rg.ColumnChunk(md.Schema.ColumnIndexByName("user_id"))
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := cc.StatsSet(); !ok || err != nil {
			t.Errorf("%s: no footer statistics for user_id", add.Path)
		} else if s, _ := cc.Statistics(); !s.HasMinMax() {
			t.Errorf("%s: footer statistics of user_id have no min/max", add.Path)
		}
		tbl.Release()
	}
	if len(got) != len(want) {
		t.Fatalf("read %d rows, wrote %d", len(got), len(want))
	}
	for k, v := range want {
		g, _ := json.Marshal(got[k])
		wv, _ := json.Marshal(v)
		if string(g) != string(wv) {
			t.Fatalf("row %s:\n got %s\nwant %s", k, g, wv)
		}
	}

	// commitInfo
	h, err := tb.History(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	ci := h[0].CommitInfo
	if ci.Operation != "WRITE" || ci.OperationParameters["mode"] != "Append" || ci.OperationParameters["partitionBy"] != `["event_date"]` {
		t.Errorf("commitInfo %+v", ci)
	}
	if ci.OperationMetrics["numFiles"] != "3" || ci.OperationMetrics["numOutputRows"] != "5000" || ci.OperationMetrics["numOutputBytes"] != fmt.Sprint(bytes) {
		t.Errorf("operationMetrics %v (bytes %d)", ci.OperationMetrics, bytes)
	}
	if ci.IsBlindAppend == nil || !*ci.IsBlindAppend {
		t.Errorf("isBlindAppend %v", ci.IsBlindAppend)
	}
}

// checkStatsAgainstRows checks add.stats against the file's rows.
func checkStatsAgainstRows(t *testing.T, add *txlog.Add, rows map[string]map[string]any, mins, maxs, nulls map[string]any) {
	t.Helper()
	for _, c := range []string{"user_id", "item_id", "source"} {
		var lo, hi string
		var nn int64
		first := true
		for _, r := range rows {
			v, ok := r[c].(string)
			if !ok {
				nn++
				continue
			}
			if first || v < lo {
				lo = v
			}
			if first || v > hi {
				hi = v
			}
			first = false
		}
		if mins[c] != lo || maxs[c] != hi {
			t.Errorf("%s: %s min/max %v/%v, rows have %s/%s", add.Path, c, mins[c], maxs[c], lo, hi)
		}
		if n, _ := nulls[c].(json.Number).Int64(); n != nn {
			t.Errorf("%s: %s nullCount %d, rows have %d", add.Path, c, n, nn)
		}
	}
	// Timestamps: RFC 3339 with milliseconds in UTC, bounds that hold.
	tsMin, err1 := time.Parse(time.RFC3339Nano, mins["timestamp"].(string))
	tsMax, err2 := time.Parse(time.RFC3339Nano, maxs["timestamp"].(string))
	if err1 != nil || err2 != nil || !strings.HasSuffix(mins["timestamp"].(string), "Z") || len(mins["timestamp"].(string)) != len("2024-01-02T03:04:05.123Z") {
		t.Fatalf("timestamp stats %v %v", mins["timestamp"], maxs["timestamp"])
	}
	for _, r := range rows {
		ts, err := time.Parse(time.RFC3339Nano, r["timestamp"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if ts.Before(tsMin) || ts.After(tsMax) {
			t.Errorf("%s: timestamp %v outside stats [%v, %v]", add.Path, ts, tsMin, tsMax)
		}
	}
}

func TestSchemaMismatch(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	tb := createTable(t, memURI(), &txlog.StructType{Fields: []txlog.StructField{
		{Name: "id", Type: txlog.Long},
		{Name: "name", Type: txlog.String, Nullable: true},
		{Name: "value", Type: txlog.Double, Nullable: true},
		{Name: "s", Type: &txlog.StructType{Fields: []txlog.StructField{{Name: "a", Type: txlog.Integer}}}, Nullable: true},
	}}, nil, nil)
	w, err := writer.New(ctx, tb, &writer.Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	build := func(fields []arrow.Field, fill func(b *array.RecordBuilder)) arrow.RecordBatch {
		b := array.NewRecordBuilder(mem, arrow.NewSchema(fields, nil))
		defer b.Release()
		fill(b)
		return b.NewRecordBatch()
	}
	id := arrow.Field{Name: "id", Type: arrow.PrimitiveTypes.Int64}
	cases := []struct {
		name string
		rec  arrow.RecordBatch
		want []string
	}{
		{"wrong type", build([]arrow.Field{id, {Name: "value", Type: arrow.BinaryTypes.String, Nullable: true}}, func(b *array.RecordBuilder) {
			b.Field(0).(*array.Int64Builder).Append(1)
			b.Field(1).(*array.StringBuilder).Append("x")
		}), []string{`"value"`, "table type double", "given type string"}},
		{"narrowing", build([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Float64}}, func(b *array.RecordBuilder) {
			b.Field(0).(*array.Float64Builder).Append(1)
		}), []string{`"id"`, "table type long", "given type double"}},
		{"unknown column", build([]arrow.Field{id, {Name: "extra", Type: arrow.PrimitiveTypes.Int32, Nullable: true}}, func(b *array.RecordBuilder) {
			b.Field(0).(*array.Int64Builder).Append(1)
			b.Field(1).(*array.Int32Builder).Append(1)
		}), []string{`"extra"`, "not in the table schema", "MergeSchema"}},
		{"missing non-null", build([]arrow.Field{{Name: "name", Type: arrow.BinaryTypes.String}}, func(b *array.RecordBuilder) {
			b.Field(0).(*array.StringBuilder).Append("x")
		}), []string{`"id"`, "not nullable", "does not have it"}},
		{"null in non-null", build([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, func(b *array.RecordBuilder) {
			b.Field(0).(*array.Int64Builder).AppendNull()
			b.Field(0).(*array.Int64Builder).Append(2)
		}), []string{`"id"`, "not nullable", "1 null values"}},
		{"nested type", build([]arrow.Field{id, {Name: "s", Type: arrow.StructOf(arrow.Field{Name: "a", Type: arrow.BinaryTypes.String}), Nullable: true}}, func(b *array.RecordBuilder) {
			b.Field(0).(*array.Int64Builder).Append(1)
			sb := b.Field(1).(*array.StructBuilder)
			sb.Append(true)
			sb.FieldBuilder(0).(*array.StringBuilder).Append("x")
		}), []string{`"s.a"`, "table type integer", "given type string"}},
		{"nested null", build([]arrow.Field{id, {Name: "s", Type: arrow.StructOf(arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int32, Nullable: true}), Nullable: true}}, func(b *array.RecordBuilder) {
			b.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2}, nil)
			sb := b.Field(1).(*array.StructBuilder)
			sb.AppendNull() // a null struct: its field may be null
			sb.Append(true)
			sb.FieldBuilder(0).(*array.Int32Builder).AppendNull()
		}), []string{`"s.a"`, "not nullable", "1 null values"}},
	}
	for _, tc := range cases {
		err := w.Write(ctx, tc.rec)
		tc.rec.Release()
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		var se *writer.SchemaError
		if !errors.As(err, &se) || !errors.Is(err, writer.ErrSchemaMismatch) {
			t.Errorf("%s: error %v is not a *SchemaError", tc.name, err)
		}
		for _, s := range tc.want {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, s)
			}
		}
	}
	// The writer is still usable; widening and missing nullable columns are fine.
	ok := build([]arrow.Field{{Name: "VALUE", Type: arrow.PrimitiveTypes.Float32, Nullable: true}, {Name: "id", Type: arrow.PrimitiveTypes.Int32}}, func(b *array.RecordBuilder) {
		b.Field(0).(*array.Float32Builder).Append(1.5)
		b.Field(1).(*array.Int32Builder).Append(7)
	})
	if err := w.Write(ctx, ok); err != nil {
		t.Fatal(err)
	}
	ok.Release()
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tbl, _ := readFile(t, tb, &res.Added[0])
	defer tbl.Release()
	rows := rowsJSON(t, tbl, "id")
	if b, _ := json.Marshal(rows["7"]); string(b) != `{"id":7,"name":null,"s":null,"value":1.5}` {
		t.Errorf("row = %s", b)
	}
}

func TestMergeSchema(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	tb := interactionsTable(t)
	r := rand.New(rand.NewPCG(3, 4))
	rec := interactionRecord(mem, genInteractions(r, 100, 2))
	defer rec.Release()
	// The same rows with one more column.
	country := array.NewStringBuilder(mem)
	for i := range int(rec.NumRows()) {
		country.Append([]string{"DE", "FR"}[i%2])
	}
	carr := country.NewArray()
	country.Release()
	defer carr.Release()
	fields := append(slices.Clone(rec.Schema().Fields()), arrow.Field{Name: "country", Type: arrow.BinaryTypes.String})
	cols := append(slices.Clone(rec.Columns()), carr)
	wide := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows())
	defer wide.Release()

	// Without MergeSchema: refused.
	w, err := writer.New(ctx, tb, &writer.Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, wide); !errors.Is(err, writer.ErrSchemaMismatch) || !strings.Contains(err.Error(), "country") {
		t.Fatalf("write without MergeSchema: %v", err)
	}
	if err := w.Abort(ctx); err != nil {
		t.Fatal(err)
	}

	w, err = writer.New(ctx, tb, &writer.Options{Allocator: mem, MergeSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, rec); err != nil { // old schema first: a file without country
		t.Fatal(err)
	}
	if err := w.Write(ctx, wide); err != nil {
		t.Fatal(err)
	}
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.SchemaChanged {
		t.Error("SchemaChanged is false")
	}
	snap := snapshot(t, tb)
	f, ok := snap.Schema().Field("country")
	if !ok || f.Type != txlog.String || !f.Nullable {
		t.Fatalf("schema after merge: %s", snap.Schema())
	}
	if snap.Schema().Fields[len(snap.Schema().Fields)-1].Name != "country" {
		t.Errorf("new column not appended: %s", snap.Schema())
	}
	withCountry := 0
	for _, add := range snap.Files() {
		tbl, _ := readFile(t, tb, add)
		if tbl.Schema().HasField("country") {
			withCountry++
			st := parseStats(t, add.Stats)
			if st["minValues"].(map[string]any)["country"] != "DE" {
				t.Errorf("stats %s", add.Stats)
			}
		}
		tbl.Release()
	}
	if withCountry == 0 || withCountry == snap.NumFiles() {
		t.Errorf("%d of %d files have the new column, want some", withCountry, snap.NumFiles())
	}
	h, _ := tb.History(ctx, 1)
	if h[0].CommitInfo.OperationParameters["mergeSchema"] != "true" {
		t.Errorf("operationParameters %v", h[0].CommitInfo.OperationParameters)
	}
}

func writeRows(t *testing.T, tb *table.Table, opts *writer.Options, rows []interaction) *writer.Result {
	t.Helper()
	ctx := context.Background()
	mem := memory.DefaultAllocator
	if opts != nil && opts.Allocator != nil {
		mem = opts.Allocator
	}
	w, err := writer.New(ctx, tb, opts)
	if err != nil {
		t.Fatal(err)
	}
	rec := interactionRecord(mem, rows)
	defer rec.Release()
	if err := w.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func partitionsOf(snap *txlog.Snapshot) map[string]int {
	out := map[string]int{}
	for _, a := range snap.Files() {
		out[*a.PartitionValues["event_date"]]++
	}
	return out
}

func TestOverwrite(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	tb := interactionsTable(t)
	r := rand.New(rand.NewPCG(5, 6))
	writeRows(t, tb, &writer.Options{Allocator: mem}, genInteractions(r, 300, 3))
	before := snapshot(t, tb)
	res := writeRows(t, tb, &writer.Options{Allocator: mem, Mode: writer.Overwrite}, genInteractions(r, 50, 1))
	if len(res.Removed) != 3 || len(res.Added) != 1 {
		t.Fatalf("result %+v", res)
	}
	snap := snapshot(t, tb)
	if got := partitionsOf(snap); len(got) != 1 || got["2024-01-01"] != 1 {
		t.Fatalf("partitions after overwrite: %v", got)
	}
	// The removes carry deletionTimestamp and dataChange.
	data, err := tb.Bucket().ReadAll(ctx, txlog.CommitKey(2))
	if err != nil {
		t.Fatal(err)
	}
	acts, err := txlog.DecodeActions(data)
	if err != nil {
		t.Fatal(err)
	}
	removed := 0
	for _, a := range acts {
		if a.Remove != nil {
			removed++
			if a.Remove.DeletionTimestamp == nil || !a.Remove.DataChange || a.Remove.Size == nil {
				t.Errorf("remove %+v", a.Remove)
			}
			if slices.IndexFunc(before.Files(), func(f *txlog.Add) bool { return f.Path == a.Remove.Path }) < 0 {
				t.Errorf("removed %s, which was not in the table", a.Remove.Path)
			}
		}
		if a.CommitInfo != nil {
			if a.CommitInfo.OperationParameters["mode"] != "Overwrite" || a.CommitInfo.OperationMetrics["numRemovedFiles"] != "3" {
				t.Errorf("commitInfo %+v", a.CommitInfo)
			}
			if *a.CommitInfo.IsBlindAppend {
				t.Error("an overwrite is not a blind append")
			}
		}
	}
	if removed != 3 {
		t.Errorf("%d removes", removed)
	}
}

func TestOverwriteWhere(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	tb := interactionsTable(t)
	r := rand.New(rand.NewPCG(7, 8))
	writeRows(t, tb, &writer.Options{Allocator: mem}, genInteractions(r, 300, 3))

	pred, err := writer.ParsePartitionPredicate("event_date = '2024-01-02'")
	if err != nil {
		t.Fatal(err)
	}
	opts := &writer.Options{Allocator: mem, Mode: writer.OverwriteWhere, Where: []writer.PartitionPredicate{pred}}
	w, err := writer.New(ctx, tb, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Rows of other days are refused, the record as a whole.
	bad := interactionRecord(mem, genInteractions(r, 50, 3))
	if err := w.Write(ctx, bad); !errors.Is(err, writer.ErrOutsideWhere) || !strings.Contains(err.Error(), "event_date=2024-01-0") {
		t.Fatalf("write outside where: %v", err)
	}
	bad.Release()
	rows := genInteractions(r, 40, 1)
	for i := range rows {
		rows[i].TS = rows[i].TS.Add(24 * time.Hour)
	}
	good := interactionRecord(mem, rows)
	if err := w.Write(ctx, good); err != nil {
		t.Fatal(err)
	}
	good.Release()
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 1 || len(res.Added) != 1 || res.Rows != 40 {
		t.Fatalf("result %+v", res)
	}
	snap := snapshot(t, tb)
	if got := partitionsOf(snap); len(got) != 3 || got["2024-01-02"] != 1 {
		t.Fatalf("partitions %v", got)
	}
	for _, a := range snap.Files() {
		if *a.PartitionValues["event_date"] == "2024-01-02" {
			if !slices.ContainsFunc(res.Added, func(x txlog.Add) bool { return x.Path == a.Path }) {
				t.Errorf("old file %s of the replaced partition is still active", a.Path)
			}
		}
	}
	h, _ := tb.History(ctx, 1)
	if p := h[0].CommitInfo.OperationParameters["predicate"]; p != `["(event_date = '2024-01-02')"]` {
		t.Errorf("predicate %v", p)
	}

	// Conditions are checked against the table.
	for _, where := range []string{"user_id = x", "event_date = yesterday", "event_date ~ 1"} {
		p, err := writer.ParsePartitionPredicate(where)
		if err != nil {
			continue
		}
		if _, err := writer.New(ctx, tb, &writer.Options{Mode: writer.OverwriteWhere, Where: []writer.PartitionPredicate{p}}); err == nil {
			t.Errorf("where %q accepted", where)
		}
	}
}

func TestParsePartitionPredicate(t *testing.T) {
	for in, want := range map[string]writer.PartitionPredicate{
		"event_date=2024-01-01":        {Column: "event_date", Op: "=", Values: []string{"2024-01-01"}},
		"event_date >= '2024-01-01'":   {Column: "event_date", Op: ">=", Values: []string{"2024-01-01"}},
		"n != 3":                       {Column: "n", Op: "!=", Values: []string{"3"}},
		"country in (DE, 'FR')":        {Column: "country", Op: "in", Values: []string{"DE", "FR"}},
		"`weird col` < \"x y\"":        {Column: "weird col", Op: "<", Values: []string{"x y"}},
		"event_date<>2024-01-01":       {Column: "event_date", Op: "!=", Values: []string{"2024-01-01"}},
		"event_date IN (2024-01-01)":   {Column: "event_date", Op: "in", Values: []string{"2024-01-01"}},
		"event_date <= 2024-01-01 ":    {Column: "event_date", Op: "<=", Values: []string{"2024-01-01"}},
		"event_date > 2024-01-01":      {Column: "event_date", Op: ">", Values: []string{"2024-01-01"}},
		"event_date = 2024-01-01=x":    {Column: "event_date", Op: "=", Values: []string{"2024-01-01=x"}},
		"event_date = ":                {Column: "event_date", Op: "=", Values: []string{""}},
		" event_date in ( a ,b ) ":     {Column: "event_date", Op: "in", Values: []string{"a", "b"}},
		"event_date = 'it''s'":         {Column: "event_date", Op: "=", Values: []string{"it''s"}},
		"event_date in ('2024-01-01')": {Column: "event_date", Op: "in", Values: []string{"2024-01-01"}},
	} {
		got, err := writer.ParsePartitionPredicate(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got.Column != want.Column || got.Op != want.Op || !slices.Equal(got.Values, want.Values) {
			t.Errorf("%q = %+v, want %+v", in, got, want)
		}
	}
	for _, bad := range []string{"", "event_date", "= 3", "x in ()"} {
		if p, err := writer.ParsePartitionPredicate(bad); err == nil {
			t.Errorf("%q = %+v, want an error", bad, p)
		}
	}
}

func TestIdempotentAppID(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	tb := interactionsTable(t)
	r := rand.New(rand.NewPCG(9, 10))
	res := writeRows(t, tb, &writer.Options{Allocator: mem, AppID: "ingest-job", AppVersion: 1}, genInteractions(r, 10, 1))
	if !res.Committed || res.Version != 1 {
		t.Fatalf("first write %+v", res)
	}
	if v, ok := snapshot(t, tb).AppTransactionVersion("ingest-job"); !ok || v != 1 {
		t.Fatalf("txn version %d %v", v, ok)
	}
	for _, version := range []int64{0, 1} {
		w, err := writer.New(ctx, tb, &writer.Options{Allocator: mem, AppID: "ingest-job", AppVersion: version})
		if err != nil {
			t.Fatal(err)
		}
		if !w.Skipped() {
			t.Fatalf("AppVersion %d not skipped", version)
		}
		rec := interactionRecord(mem, genInteractions(r, 10, 1))
		if err := w.Write(ctx, rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		res, err := w.Close(ctx)
		if err != nil || !res.Skipped || res.Committed || res.Version != 1 {
			t.Fatalf("skipped write: %+v, %v", res, err)
		}
	}
	res = writeRows(t, tb, &writer.Options{Allocator: mem, AppID: "ingest-job", AppVersion: 2}, genInteractions(r, 10, 1))
	if !res.Committed || res.Version != 2 {
		t.Fatalf("AppVersion 2: %+v", res)
	}
	if n := snapshot(t, tb).NumFiles(); n != 2 {
		t.Errorf("%d files", n)
	}
	if _, err := writer.New(ctx, tb, &writer.Options{AppVersion: 3}); err == nil {
		t.Error("AppVersion without AppID accepted")
	}
}

func TestCommitConflictLeavesFilesUnreferenced(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	tb := interactionsTable(t)
	r := rand.New(rand.NewPCG(11, 12))
	writeRows(t, tb, nil, genInteractions(r, 100, 2))

	// Two overwrites of the same snapshot: the second to commit loses.
	w1, err := writer.New(ctx, tb, &writer.Options{Allocator: mem, Mode: writer.Overwrite})
	if err != nil {
		t.Fatal(err)
	}
	rec := interactionRecord(mem, genInteractions(r, 100, 2))
	if err := w1.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	res2 := writeRows(t, tb, &writer.Options{Mode: writer.Overwrite}, genInteractions(r, 10, 1))
	before := snapshot(t, tb)

	_, err = w1.Close(ctx)
	var ce *writer.CommitError
	if !errors.As(err, &ce) {
		t.Fatalf("Close: %v, want a *CommitError", err)
	}
	var conflict *txlog.ConflictError
	if !errors.As(err, &conflict) {
		t.Errorf("%v does not wrap a *txlog.ConflictError", err)
	}
	if !strings.Contains(err.Error(), "2 data files were written but not committed: no version references them, so they are not part of the table") {
		t.Errorf("error %q", err)
	}
	after := snapshot(t, tb)
	if after.Version() != before.Version() || after.Version() != res2.Version {
		t.Fatalf("version %d after the failed commit, want %d", after.Version(), before.Version())
	}
	for _, k := range ce.Files {
		if _, err := tb.Bucket().Attributes(ctx, k); err != nil {
			t.Errorf("file %s: %v", k, err)
		}
		for _, a := range after.Files() {
			if partval.DecodeURIPath(a.Path) == k {
				t.Errorf("file %s of the failed commit is referenced", k)
			}
		}
	}
}

func TestLocalTable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "events")
	tb := createTable(t, dir, table.InteractionSchema(), []string{"event_date"}, map[string]string{"delta.parquet.compression.codec": "snappy"})
	r := rand.New(rand.NewPCG(13, 14))
	res := writeRows(t, tb, &writer.Options{Allocator: checked(t)}, genInteractions(r, 1000, 2))
	for _, a := range res.Added {
		fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(partval.DecodeURIPath(a.Path))))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != a.Size {
			t.Errorf("%s: %d bytes on disk, add.size %d", a.Path, fi.Size(), a.Size)
		}
		if !strings.HasSuffix(a.Path, ".c000.snappy.parquet") {
			t.Errorf("%s: want the table's codec, snappy", a.Path)
		}
	}
	// No temporary files left behind.
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".tmp") {
			t.Errorf("temporary file %s", p)
		}
		return nil
	})
}

func writeBatches(t *testing.T, tb *table.Table, opts *writer.Options, rows []interaction, batch int) *writer.Result {
	t.Helper()
	ctx := context.Background()
	w, err := writer.New(ctx, tb, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(rows); i += batch {
		rec := interactionRecord(opts.Allocator, rows[i:min(i+batch, len(rows))])
		if err := w.Write(ctx, rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRollingFilesAndRowGroups(t *testing.T) {
	mem := checked(t)
	tb := interactionsTable(t)
	r := rand.New(rand.NewPCG(15, 16))
	res := writeBatches(t, tb, &writer.Options{Allocator: mem, TargetFileSize: 100 << 10, RowGroupRows: 1000}, genInteractions(r, 20000, 2), 1000)
	if len(res.Added) < 6 {
		t.Errorf("only %d files for 20000 rows at 100 KiB", len(res.Added))
	}
	total := int64(0)
	multiRG := false
	for i := range res.Added {
		a := &res.Added[i]
		tbl, md := readFile(t, tb, a)
		total += tbl.NumRows()
		if md.NumRowGroups() > 1 {
			multiRG = true
		}
		for j := range md.NumRowGroups() {
			if n := md.RowGroup(j).NumRows(); n > 1000 {
				t.Errorf("%s: row group of %d rows", a.Path, n)
			}
		}
		if a.Size > 2*(100<<10) {
			t.Errorf("%s: %d bytes, target 100 KiB", a.Path, a.Size)
		}
		tbl.Release()
	}
	if total != 20000 {
		t.Errorf("%d rows read back", total)
	}
	if !multiRG {
		t.Error("no file has several row groups")
	}
}

func TestOpenFileBound(t *testing.T) {
	mem := checked(t)
	tb := interactionsTable(t)
	r := rand.New(rand.NewPCG(17, 18))
	// Five partitions in every batch, two open files at most: files are finished early.
	res := writeBatches(t, tb, &writer.Options{Allocator: mem, MaxOpenFiles: 2, MaxBufferedBytes: 16 << 10}, genInteractions(r, 5000, 5), 1000)
	if len(res.Added) <= 5 {
		t.Errorf("%d files for 5 partitions with 2 open files at most", len(res.Added))
	}
	var total int64
	for i := range res.Added {
		tbl, _ := readFile(t, tb, &res.Added[i])
		total += tbl.NumRows()
		tbl.Release()
	}
	if total != 5000 || res.Rows != 5000 {
		t.Errorf("%d rows read back, result says %d", total, res.Rows)
	}
}

func TestSpecialPartitionValues(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	tb := createTable(t, memURI(), &txlog.StructType{Fields: []txlog.StructField{
		{Name: "id", Type: txlog.Long},
		{Name: "x", Type: txlog.String, Nullable: true},
	}}, []string{"x"}, nil)
	b := array.NewRecordBuilder(mem, arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "x", Type: arrow.BinaryTypes.String, Nullable: true}}, nil))
	vals := []string{"A/A", "B B", "", "100%", "a=b:c"}
	for i, v := range vals {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.StringBuilder).Append(v)
	}
	b.Field(0).(*array.Int64Builder).Append(99)
	b.Field(1).AppendNull()
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
	if _, err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range snapshot(t, tb).Files() {
		dir := a.Path[:strings.IndexByte(a.Path, '/')]
		v := "<null>"
		if p := a.PartitionValues["x"]; p != nil {
			v = *p
		}
		got[v] = dir
		if _, err := tb.Bucket().Attributes(ctx, partval.DecodeURIPath(a.Path)); err != nil {
			t.Errorf("%s: %v", a.Path, err)
		}
	}
	want := map[string]string{
		"A/A":    "x=A%252FA",
		"B B":    "x=B%20B",
		"100%":   "x=100%2525",
		"a=b:c":  "x=a%253Db%253Ac",
		"<null>": "x=__HIVE_DEFAULT_PARTITION__", // the null and the empty string
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("partition folders (in add.path):\n got %v\nwant %v", got, want)
	}
}
