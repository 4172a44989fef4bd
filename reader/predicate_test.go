package reader_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/txlog"
)

var eventsSchema = &txlog.StructType{Fields: []txlog.StructField{
	{Name: "user_id", Type: txlog.String, Nullable: false},
	{Name: "n", Type: txlog.Long, Nullable: true},
	{Name: "value", Type: txlog.Double, Nullable: true},
	{Name: "ts", Type: txlog.Timestamp, Nullable: true},
	{Name: "event_date", Type: txlog.Date, Nullable: true},
}}

var eventsFileSchema = arrow.NewSchema([]arrow.Field{
	{Name: "user_id", Type: arrow.BinaryTypes.String},
	{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "value", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
}, nil)

var day0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// eventsRecord builds rows [first, first+n) of day d: n = d*perDay + i, user_id u%03d (i mod
// 100), value = i/2 (null every 10th row), ts within the day.
func eventsRecord(d, perDay, first, n int) arrow.RecordBatch {
	mem := memory.DefaultAllocator
	b := array.NewRecordBuilder(mem, eventsFileSchema)
	defer b.Release()
	for i := first; i < first+n; i++ {
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("u%03d", i%100))
		b.Field(1).(*array.Int64Builder).Append(int64(d*perDay + i))
		if i%10 == 9 {
			b.Field(2).(*array.Float64Builder).AppendNull()
		} else {
			b.Field(2).(*array.Float64Builder).Append(float64(i) / 2)
		}
		ts := day0.AddDate(0, 0, d).Add(time.Duration(i) * time.Second)
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMicro()))
	}
	return b.NewRecordBatch()
}

// makeEvents writes a table of `days` daily partitions with perDay rows each (row groups of
// rowGroup rows), stats on every file, plus one file with a null partition value and no stats.
func makeEvents(t testing.TB, dir string, days, perDay int, rowGroup int64) {
	t.Helper()
	acts := createActions(eventsSchema, []string{"event_date"}, nil, txlog.Protocol{MinReaderVersion: 1, MinWriterVersion: 2})
	for d := 0; d < days; d++ {
		date := day0.AddDate(0, 0, d).Format("2006-01-02")
		rel := fmt.Sprintf("event_date=%s/part-%05d.parquet", date, d)
		rec := eventsRecord(d, perDay, 0, perDay)
		size := writeParquet(t, dir, rel, rowGroup, pqarrow.DefaultWriterProps(), rec)
		rec.Release()
		maxVal := float64(perDay-1) / 2
		if (perDay-1)%10 == 9 {
			maxVal = float64(perDay-2) / 2
		}
		stats := map[string]any{
			"numRecords": perDay,
			"minValues": map[string]any{"user_id": "u000", "n": d * perDay, "value": 0.0,
				"ts": day0.AddDate(0, 0, d).Format("2006-01-02T15:04:05.000Z")},
			"maxValues": map[string]any{"user_id": fmt.Sprintf("u%03d", min(perDay-1, 99)), "n": d*perDay + perDay - 1, "value": maxVal,
				"ts": day0.AddDate(0, 0, d).Add(time.Duration(perDay-1) * time.Second).Format("2006-01-02T15:04:05.000Z")},
			"nullCount": map[string]any{"user_id": 0, "n": 0, "value": perDay / 10, "ts": 0},
		}
		acts = append(acts, addAction(rel, size, map[string]*string{"event_date": strp(date)}, stats))
	}
	rec := eventsRecord(days, perDay, 0, 10)
	rel := "event_date=__HIVE_DEFAULT_PARTITION__/part-null.parquet"
	size := writeParquet(t, dir, rel, 0, pqarrow.DefaultWriterProps(), rec)
	rec.Release()
	acts = append(acts, addAction(rel, size, map[string]*string{"event_date": nil}, nil))
	writeCommit(t, dir, 0, acts...)
}

func TestPruningAndSkipping(t *testing.T) {
	dir := t.TempDir()
	makeEvents(t, dir, 30, 100, 0)
	tbl, snap := openLatest(t, dir)

	for _, tc := range []struct {
		where                   []string
		rows                    int
		read, pruned, skipped   int64
		check                   func(row map[string]any) bool
		rowGroupsSkippedAtLeast int64
	}{
		{where: nil, rows: 3010, read: 31},
		{where: []string{"event_date = 2024-01-02"}, rows: 100, read: 1, pruned: 30,
			check: func(r map[string]any) bool { return r["event_date"] == "2024-01-02" }},
		{where: []string{"event_date >= 2024-01-29"}, rows: 200, read: 2, pruned: 29},
		{where: []string{"event_date in (2024-01-01, 2024-01-30, 2023-01-01)"}, rows: 200, read: 2, pruned: 29},
		{where: []string{"event_date != 2024-01-01"}, rows: 2900, read: 29, pruned: 2},
		// A stats-based predicate on a non-partition column: only day 29 holds n >= 2950.
		{where: []string{"n >= 2950"}, rows: 50 + 10, read: 2, skipped: 29,
			check: func(r map[string]any) bool { return r["n"].(json.Number).String() >= "2950" }},
		{where: []string{"n in (5, 1505)"}, rows: 2, read: 3, skipped: 28},
		{where: []string{"n < 0"}, rows: 0, read: 1, skipped: 30},
		{where: []string{"n = 1234.5"}, rows: 0, read: 0, skipped: 31},
		{where: []string{"n > 1234.5", "n < 1236.5"}, rows: 2, read: 2, skipped: 29},
		{where: []string{"user_id = u005"}, rows: 31, read: 31},
		{where: []string{"user_id > u1"}, rows: 0, read: 1, skipped: 30},
		// "u0995" starts with the max "u099", which may be a truncated prefix: no skipping.
		{where: []string{"user_id > u0995"}, rows: 0, read: 31},
		{where: []string{"value >= 49"}, rows: 30 * 1, read: 31,
			check: func(r map[string]any) bool { return r["value"] != nil }},
		{where: []string{"ts >= 2024-01-30T00:01:00Z"}, rows: 40 + 10, read: 2, skipped: 29},
		{where: []string{"ts < 2024-01-01 00:00:05"}, rows: 5, read: 2, skipped: 29},
		{where: []string{"event_date = 2024-01-05", "n >= 450"}, rows: 50, read: 1, pruned: 30},
		{where: []string{"event_date = 2024-01-05", "n >= 500"}, rows: 0, read: 0, pruned: 30, skipped: 1},
	} {
		name := strings.Join(tc.where, " AND ")
		t.Run(name, func(t *testing.T) {
			rows, m, err := scanAll(t, tbl, snap, &reader.ScanOptions{Filters: mustFilters(t, tc.where...)})
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != tc.rows {
				t.Errorf("%d rows, want %d", len(rows), tc.rows)
			}
			if m.FilesConsidered != 31 || m.FilesRead != tc.read || m.FilesPrunedByPartition != tc.pruned || m.FilesSkippedByStats != tc.skipped {
				t.Errorf("metrics %+v, want read %d pruned %d skipped %d", m, tc.read, tc.pruned, tc.skipped)
			}
			if m.RowsReturned != int64(tc.rows) {
				t.Errorf("RowsReturned %d", m.RowsReturned)
			}
			for _, l := range rows {
				d := json.NewDecoder(strings.NewReader(l))
				d.UseNumber()
				var r map[string]any
				if err := d.Decode(&r); err != nil {
					t.Fatal(err)
				}
				if tc.check != nil && !tc.check(r) {
					t.Fatalf("row %s does not match %s", l, name)
				}
			}
		})
	}
}

// The exact filter agrees with a brute-force evaluation of every row, for many predicates.
func TestFilterExact(t *testing.T) {
	dir := t.TempDir()
	makeEvents(t, dir, 5, 40, 16)
	tbl, snap := openLatest(t, dir)
	all, _, err := scanAll(t, tbl, snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		User  string   `json:"user_id"`
		N     int64    `json:"n"`
		Value *float64 `json:"value"`
		TS    string   `json:"ts"`
		Date  *string  `json:"event_date"`
	}
	var rows []row
	for _, l := range all {
		var r row
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	for _, tc := range []struct {
		where string
		pred  func(r row) bool
	}{
		{"n > 57", func(r row) bool { return r.N > 57 }},
		{"n <= 57", func(r row) bool { return r.N <= 57 }},
		{"n != 3", func(r row) bool { return r.N != 3 }},
		{"value < 7.5", func(r row) bool { return r.Value != nil && *r.Value < 7.5 }},
		{"value != 1", func(r row) bool { return r.Value != nil && *r.Value != 1 }},
		{"value in (1, 2.5, 100)", func(r row) bool { return r.Value != nil && (*r.Value == 1 || *r.Value == 2.5) }},
		{"user_id >= u030", func(r row) bool { return r.User >= "u030" }},
		{"user_id in (u001,u039)", func(r row) bool { return r.User == "u001" || r.User == "u039" }},
		{"event_date < 2024-01-03", func(r row) bool { return r.Date != nil && *r.Date < "2024-01-03" }},
		{"ts > 2024-01-02T00:00:10Z", func(r row) bool { return r.TS > "2024-01-02T00:00:10.000000Z" }},
	} {
		got, m, err := scanAll(t, tbl, snap, &reader.ScanOptions{Filters: mustFilters(t, tc.where), BatchSize: 7})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for i, r := range rows {
			if tc.pred(r) {
				want = append(want, all[i])
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %d rows, want %d", tc.where, len(got), len(want))
		}
		t.Logf("%-30s rows %3d  %+v", tc.where, len(got), m)
	}
}

// Row groups are skipped by their Parquet statistics when add.stats are absent.
func TestRowGroupSkipping(t *testing.T) {
	dir := t.TempDir()
	acts := createActions(eventsSchema, []string{"event_date"}, nil, txlog.Protocol{MinReaderVersion: 1, MinWriterVersion: 2})
	rec := eventsRecord(0, 1000, 0, 1000)
	size := writeParquet(t, dir, "part-0.parquet", 100, pqarrow.DefaultWriterProps(), rec)
	rec.Release()
	acts = append(acts, addAction("part-0.parquet", size, map[string]*string{"event_date": strp("2024-01-01")}, nil))
	writeCommit(t, dir, 0, acts...)
	tbl, snap := openLatest(t, dir)
	rows, m, err := scanAll(t, tbl, snap, &reader.ScanOptions{Filters: mustFilters(t, "n >= 950")})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 50 || m.RowGroupsRead != 1 || m.RowGroupsSkipped != 9 || m.RowsRead != 100 {
		t.Fatalf("%d rows, metrics %+v", len(rows), m)
	}
	rows, m, err = scanAll(t, tbl, snap, &reader.ScanOptions{Filters: mustFilters(t, "ts < 2024-01-01T00:02:00Z", "user_id = u007")})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || m.RowGroupsRead != 2 || m.RowGroupsSkipped != 8 {
		t.Fatalf("%d rows, metrics %+v", len(rows), m)
	}
}

// Projection: columns in the order asked, partition columns injected as typed constants.
func TestProjection(t *testing.T) {
	dir := t.TempDir()
	makeEvents(t, dir, 2, 3, 0)
	tbl, snap := openLatest(t, dir)
	ctx := context.Background()
	sc, err := reader.NewScan(ctx, tbl, snap, &reader.ScanOptions{Columns: []string{"event_date", "n"}, Limit: 4})
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.Schema().String(); !strings.Contains(got, "event_date: type=date32") || sc.Schema().Field(1).Name != "n" {
		t.Fatalf("schema %s", got)
	}
	rows, _, err := scanAll(t, tbl, snap, &reader.ScanOptions{Columns: []string{"event_date", "n"}, Limit: 4})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`{"event_date":"2024-01-01","n":0}`, `{"event_date":"2024-01-01","n":1}`, `{"event_date":"2024-01-01","n":2}`, `{"event_date":"2024-01-02","n":3}`}
	if !slices.Equal(rows, want) {
		t.Fatalf("rows %v", rows)
	}
	// No columns: only row counts.
	rows, _, err = scanAll(t, tbl, snap, &reader.ScanOptions{Columns: []string{}})
	if err != nil || len(rows) != 16 || rows[0] != "{}" {
		t.Fatalf("%v %v", rows, err)
	}
	// Filter columns need not be projected.
	rows, _, err = scanAll(t, tbl, snap, &reader.ScanOptions{Columns: []string{"user_id"}, Filters: mustFilters(t, "n = 4")})
	if err != nil || !slices.Equal(rows, []string{`{"user_id":"u001"}`}) {
		t.Fatalf("%v %v", rows, err)
	}
	if _, err := reader.NewScan(ctx, tbl, snap, &reader.ScanOptions{Columns: []string{"nope"}}); !errors.Is(err, reader.ErrUnknownColumn) {
		t.Fatalf("unknown column: %v", err)
	}
	_, err = reader.NewScan(ctx, tbl, snap, &reader.ScanOptions{Filters: mustFilters(t, "n = x")})
	var fe *reader.FilterError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), `"x"`) || !strings.Contains(err.Error(), "long") {
		t.Fatalf("bad filter value: %v", err)
	}
}

// A truncated Parquet file, a missing one, or one whose columns do not match the log fail
// with an error naming the file.
func TestBadFiles(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   string
	}{
		{"truncated", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "event_date=2024-01-02", "part-00001.parquet")
			data, _ := os.ReadFile(p)
			os.WriteFile(p, data[:len(data)/2], 0o644)
		}, "event_date=2024-01-02/part-00001.parquet"},
		{"footer", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "event_date=2024-01-02", "part-00001.parquet")
			data, _ := os.ReadFile(p)
			copy(data[len(data)-4:], "XXXX")
			os.WriteFile(p, data, 0o644)
		}, "event_date=2024-01-02/part-00001.parquet"},
		{"missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "event_date=2024-01-02", "part-00001.parquet"))
		}, "event_date=2024-01-02/part-00001.parquet"},
		{"other type", func(t *testing.T, dir string) {
			// n is a long in the log; write a file where it is a string.
			sch := arrow.NewSchema([]arrow.Field{{Name: "user_id", Type: arrow.BinaryTypes.String}, {Name: "n", Type: arrow.BinaryTypes.String}}, nil)
			b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
			b.Field(0).(*array.StringBuilder).Append("x")
			b.Field(1).(*array.StringBuilder).Append("y")
			rec := b.NewRecordBatch()
			size := writeParquet(t, dir, "event_date=2024-01-02/part-00001.parquet", 0, pqarrow.DefaultWriterProps(), rec)
			rec.Release()
			b.Release()
			fixSize(t, dir, "event_date=2024-01-02/part-00001.parquet", size)
		}, "event_date=2024-01-02/part-00001.parquet: column n"},
		{"not null missing", func(t *testing.T, dir string) {
			sch := arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)
			b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
			b.Field(0).(*array.Int64Builder).Append(1)
			rec := b.NewRecordBatch()
			size := writeParquet(t, dir, "event_date=2024-01-02/part-00001.parquet", 0, pqarrow.DefaultWriterProps(), rec)
			rec.Release()
			b.Release()
			fixSize(t, dir, "event_date=2024-01-02/part-00001.parquet", size)
		}, `column "user_id" is not nullable`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			makeEvents(t, dir, 3, 50, 0)
			tc.damage(t, dir)
			tbl, snap := openLatest(t, dir)
			_, _, err := scanAll(t, tbl, snap, &reader.ScanOptions{Concurrency: 3, BatchSize: 10})
			var fe *reader.FileError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want a FileError mentioning %q, got %v", tc.want, err)
			}
			t.Log(err)
		})
	}
}

// fixSize sets the size of the add action for path in commit 0.
func fixSize(t testing.TB, dir, path string, size int64) {
	t.Helper()
	p := filepath.Join(dir, "_delta_log", fmt.Sprintf("%020d.json", 0))
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	acts, err := txlog.DecodeActions(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acts {
		if a.Add != nil && a.Add.Path == path {
			a.Add.Size = size
		}
	}
	writeCommit(t, dir, 0, acts...)
}

// Files above the whole-file limit are read with ranged reads: the same rows, fewer bytes for a
// narrow projection, and a truncated file is still an error naming it.
func TestRangedReads(t *testing.T) {
	defer reader.SetWholeFileLimit(0)()
	dir := t.TempDir()
	makeEvents(t, dir, 3, 2000, 500)
	tbl, snap := openLatest(t, dir)
	all, mAll, err := scanAll(t, tbl, snap, nil)
	if err != nil || len(all) != 6010 {
		t.Fatalf("%d rows, %v", len(all), err)
	}
	one, mOne, err := scanAll(t, tbl, snap, &reader.ScanOptions{Columns: []string{"n"}})
	if err != nil || len(one) != 6010 {
		t.Fatalf("%d rows, %v", len(one), err)
	}
	if mOne.BytesRead >= mAll.BytesRead {
		t.Errorf("projection read %d bytes, all columns %d", mOne.BytesRead, mAll.BytesRead)
	}
	t.Logf("bytes read: all columns %d, one column %d", mAll.BytesRead, mOne.BytesRead)

	p := filepath.Join(dir, "event_date=2024-01-02", "part-00001.parquet")
	data, _ := os.ReadFile(p)
	os.WriteFile(p, data[:len(data)-100], 0o644)
	_, _, err = scanAll(t, tbl, snap, nil)
	var fe *reader.FileError
	if !errors.As(err, &fe) || fe.Path != "event_date=2024-01-02/part-00001.parquet" {
		t.Fatalf("want a FileError naming the file, got %v", err)
	}
	t.Log(err)
}

// add.path may be an absolute file:// URI inside the table's directory; one elsewhere is
// refused naming the problem.
func TestAbsolutePaths(t *testing.T) {
	dir := t.TempDir()
	makeEvents(t, dir, 2, 5, 0)
	p := filepath.Join(dir, "_delta_log", fmt.Sprintf("%020d.json", 0))
	data, _ := os.ReadFile(p)
	acts, _ := txlog.DecodeActions(data)
	for _, a := range acts {
		if a.Add != nil && strings.Contains(a.Add.Path, "2024-01-01") {
			a.Add.Path = "file://" + filepath.ToSlash(filepath.Join(dir, a.Add.Path))
		}
	}
	writeCommit(t, dir, 0, acts...)
	tbl, snap := openLatest(t, dir)
	rows, _, err := scanAll(t, tbl, snap, nil)
	if err != nil || len(rows) != 20 {
		t.Fatalf("%d rows, %v", len(rows), err)
	}
	for _, a := range acts {
		if a.Add != nil && strings.Contains(a.Add.Path, "2024-01-02") {
			a.Add.Path = "file:///elsewhere/x.parquet"
		}
	}
	writeCommit(t, dir, 0, acts...)
	tbl, snap = openLatest(t, dir)
	_, err = reader.NewScan(context.Background(), tbl, snap, nil)
	if !errors.As(err, new(*txlog.UnsupportedFeatureError)) || !strings.Contains(err.Error(), "/elsewhere/x.parquet") {
		t.Fatalf("want an unsupported-feature error naming the path, got %v", err)
	}
	t.Log(err)
}
