package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// interaction is one input row of the interactions schema, as NDJSON.
type interaction struct {
	EventID         string            `json:"event_id"`
	UserID          string            `json:"user_id"`
	ItemID          string            `json:"item_id"`
	InteractionType string            `json:"interaction_type"`
	Timestamp       string            `json:"timestamp"`
	EventDate       string            `json:"event_date"`
	Source          string            `json:"source"`
	Value           *float64          `json:"value"`
	Properties      map[string]string `json:"properties"`
}

// genInteractions makes n rows over 5 days. Values are multiples of 1/4 so that every sum is exact
// whatever the order of addition; every 10th value is null.
func genInteractions(n int) []interaction {
	r := rand.New(rand.NewPCG(7, 11))
	types := []string{"view", "click", "add_to_cart", "purchase", "like", "share"}
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]interaction, n)
	for i := range rows {
		ts := base.Add(time.Duration(r.Int64N(int64(5*24*time.Hour/time.Microsecond))) * time.Microsecond)
		row := interaction{
			EventID:         fmt.Sprintf("ev-%05d", i),
			UserID:          fmt.Sprintf("user-%03d", r.IntN(120)),
			ItemID:          fmt.Sprintf("item-%03d", r.IntN(300)),
			InteractionType: types[r.IntN(len(types))],
			Timestamp:       ts.Format(time.RFC3339Nano),
			EventDate:       ts.Format(time.DateOnly),
			Source:          []string{"web", "ios", "android"}[i%3],
			Properties:      map[string]string{"device": fmt.Sprintf("d%d", i%7), "session": fmt.Sprintf("s%d", i/10)},
		}
		if i%10 != 0 {
			v := float64(r.IntN(400)) / 4
			row.Value = &v
		}
		rows[i] = row
	}
	return rows
}

// The data files lake writes for an ingested interaction table are read by DuckDB's own Parquet
// reader with the same rows lake cat returns and the input had, and the per-file statistics lake
// records in the log match the Parquet footer's.
func TestDataFilesReadByDuckDB(t *testing.T) {
	work := t.TempDir()
	dir := filepath.Join(work, "events")
	input := genInteractions(1000)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	want := map[string]interaction{}
	var wantSum float64
	wantUsers := map[string]bool{}
	wantDays := map[string]int{}
	for _, row := range input {
		if err := enc.Encode(row); err != nil {
			t.Fatal(err)
		}
		want[row.EventID] = row
		if row.Value != nil {
			wantSum += *row.Value
		}
		wantUsers[row.UserID] = true
		wantDays[row.EventDate]++
	}
	if len(wantDays) != 5 {
		t.Fatalf("generator made %d days", len(wantDays))
	}
	file := filepath.Join(work, "interactions.ndjson")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	runLake(t, "create", dir, "--schema", "interactions")
	runLake(t, "ingest", dir, file, "--format", "ndjson")

	// lake cat agrees with the input.
	var catRows int
	var catSum float64
	catUsers := map[string]bool{}
	for _, line := range jsonLines(t, runLake(t, "cat", dir, "--format", "jsonl")) {
		var r interaction
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("cat line %q: %v", line, err)
		}
		catRows++
		if r.Value != nil {
			catSum += *r.Value
		}
		catUsers[r.UserID] = true
	}
	if catRows != len(input) || catSum != wantSum || len(catUsers) != len(wantUsers) {
		t.Errorf("lake cat: %d rows, sum(value) %v, %d users; input: %d, %v, %d",
			catRows, catSum, len(catUsers), len(input), wantSum, len(wantUsers))
	}

	// DuckDB reads the files lake files lists, with event_date from the hive-style directories.
	paths := jsonLines(t, runLake(t, "files", dir))
	if len(paths) < len(wantDays) {
		t.Fatalf("lake files lists %d files for %d partitions", len(paths), len(wantDays))
	}
	quoted := make([]string, len(paths))
	for i, p := range paths {
		if !strings.HasPrefix(p, "event_date=") {
			t.Errorf("data file %s is not under an event_date= directory", p)
		}
		quoted[i] = "'" + filepath.Join(dir, filepath.FromSlash(p)) + "'"
	}
	src := fmt.Sprintf("read_parquet([%s], hive_partitioning = true)", strings.Join(quoted, ", "))
	db := openDuck(t)

	var n, users int
	var sum float64
	if err := db.QueryRow("SELECT count(*), sum(value), count(DISTINCT user_id) FROM "+src).Scan(&n, &sum, &users); err != nil {
		t.Fatal(err)
	}
	if n != len(input) || sum != wantSum || users != len(wantUsers) {
		t.Errorf("duckdb: %d rows, sum(value) %v, %d users; input: %d, %v, %d", n, sum, users, len(input), wantSum, len(wantUsers))
	}

	// Row by row: every input event, with its timestamp (to the microsecond), date, value and
	// properties.
	rows, err := db.Query(`SELECT event_id, user_id, item_id, interaction_type, epoch_us(timestamp),
		CAST(event_date AS VARCHAR), source, value, CAST(to_json(properties) AS VARCHAR) FROM ` + src)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for rows.Next() {
		var id, user, item, typ, day, source, props string
		var us int64
		var value *float64
		if err := rows.Scan(&id, &user, &item, &typ, &us, &day, &source, &value, &props); err != nil {
			t.Fatal(err)
		}
		w, ok := want[id]
		if !ok || got[id] {
			t.Errorf("duckdb row %s: unknown or repeated", id)
			continue
		}
		got[id] = true
		wts, _ := time.Parse(time.RFC3339Nano, w.Timestamp)
		var gotProps map[string]string
		if err := json.Unmarshal([]byte(props), &gotProps); err != nil {
			t.Errorf("row %s: properties %s: %v", id, props, err)
		}
		if user != w.UserID || item != w.ItemID || typ != w.InteractionType || us != wts.UnixMicro() ||
			day != w.EventDate || source != w.Source || !sameValue(value, w.Value) ||
			fmt.Sprint(gotProps) != fmt.Sprint(w.Properties) {
			t.Errorf("row %s: duckdb has (%s %s %s %s %s %s %v %s), input %+v", id, user, item, typ,
				time.UnixMicro(us).UTC().Format(time.RFC3339Nano), day, source, value, props, w)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if len(got) != len(want) {
		t.Errorf("duckdb returned %d distinct events, want %d", len(got), len(want))
	}
	dayCounts := map[string]int{}
	rows, err = db.Query("SELECT CAST(event_date AS VARCHAR), count(*) FROM " + src + " GROUP BY 1")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var day string
		var c int
		if err := rows.Scan(&day, &c); err != nil {
			t.Fatal(err)
		}
		dayCounts[day] = c
	}
	rows.Close()
	if fmt.Sprint(dayCounts) != fmt.Sprint(wantDays) {
		t.Errorf("duckdb rows per event_date %v, input %v", dayCounts, wantDays)
	}

	// The log's per-file stats match the Parquet footers DuckDB reads.
	adds := logAdds(t, dir)
	if len(adds) != len(paths) {
		t.Errorf("_delta_log has %d adds, lake files lists %d", len(adds), len(paths))
	}
	for _, p := range paths {
		stats, ok := adds[p]
		if !ok {
			t.Errorf("no add for %s in _delta_log", p)
			continue
		}
		var s struct {
			NumRecords int64                      `json:"numRecords"`
			MinValues  map[string]any             `json:"minValues"`
			MaxValues  map[string]any             `json:"maxValues"`
			NullCount  map[string]json.RawMessage `json:"nullCount"`
		}
		if err := json.Unmarshal([]byte(stats), &s); err != nil {
			t.Errorf("%s: stats %q: %v", p, stats, err)
			continue
		}
		full := filepath.Join(dir, filepath.FromSlash(p))
		var pqMin, pqMax string
		var pqRows, groups int64
		if err := db.QueryRow(`SELECT min(coalesce(stats_min_value, stats_min)), max(coalesce(stats_max_value, stats_max)),
			sum(row_group_num_rows), count(*) FROM parquet_metadata(?) WHERE path_in_schema = 'user_id'`, full).
			Scan(&pqMin, &pqMax, &pqRows, &groups); err != nil {
			t.Fatalf("parquet_metadata(%s): %v", p, err)
		}
		if groups == 0 {
			t.Errorf("%s: no user_id column chunk in the footer", p)
			continue
		}
		if s.MinValues["user_id"] != pqMin || s.MaxValues["user_id"] != pqMax {
			t.Errorf("%s: log user_id min/max %v/%v, parquet footer %q/%q", p, s.MinValues["user_id"], s.MaxValues["user_id"], pqMin, pqMax)
		}
		if s.NumRecords != pqRows {
			t.Errorf("%s: log numRecords %d, parquet rows %d", p, s.NumRecords, pqRows)
		}
		var logNulls int64
		if err := json.Unmarshal(s.NullCount["value"], &logNulls); err != nil {
			t.Errorf("%s: nullCount.value %s: %v", p, s.NullCount["value"], err)
		}
		var pqNulls int64
		if err := db.QueryRow(`SELECT sum(stats_null_count) FROM parquet_metadata(?) WHERE path_in_schema = 'value'`, full).
			Scan(&pqNulls); err != nil {
			t.Fatalf("parquet_metadata(%s): %v", p, err)
		}
		if logNulls != pqNulls {
			t.Errorf("%s: log nullCount.value %d, parquet footer %d", p, logNulls, pqNulls)
		}
		// And the footer's bounds are the file's true ones, as DuckDB computes them.
		var trueMin, trueMax string
		if err := db.QueryRow("SELECT min(user_id), max(user_id) FROM read_parquet(?)", full).Scan(&trueMin, &trueMax); err != nil {
			t.Fatal(err)
		}
		if trueMin != pqMin || trueMax != pqMax {
			t.Errorf("%s: footer user_id bounds %q/%q, data %q/%q", p, pqMin, pqMax, trueMin, trueMax)
		}
	}
}

func sameValue(a, b *float64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// logAdds reads every commit JSON in dir/_delta_log and returns the live adds' stats by path.
func logAdds(t *testing.T, dir string) map[string]string {
	t.Helper()
	commits, err := filepath.Glob(filepath.Join(dir, "_delta_log", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(commits)
	adds := map[string]string{}
	for _, c := range commits {
		data, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range jsonLines(t, string(data)) {
			var a struct {
				Add *struct {
					Path  string `json:"path"`
					Stats string `json:"stats"`
				} `json:"add"`
				Remove *struct {
					Path string `json:"path"`
				} `json:"remove"`
			}
			if err := json.Unmarshal([]byte(line), &a); err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			if a.Add != nil {
				adds[a.Add.Path] = a.Add.Stats
			}
			if a.Remove != nil {
				delete(adds, a.Remove.Path)
			}
		}
	}
	return adds
}
