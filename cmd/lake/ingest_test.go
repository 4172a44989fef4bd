package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse/lake/internal/storage"
)

// catRows returns a table's rows as JSON objects.
func catRows(t *testing.T, uri string, extra ...string) []map[string]any {
	t.Helper()
	out := mustLake(t, append([]string{"cat", uri, "--format", "jsonl"}, extra...)...)
	var rows []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, m)
	}
	return rows
}

type ingestCounts struct {
	Files, FilesSkipped                                   int
	RowsRead, RowsWritten, RowsQuarantined, RowsDuplicate int64
	Commits                                               int
	Version                                               int64
}

func ingestJSON(t *testing.T, args ...string) ingestCounts {
	t.Helper()
	out := mustLake(t, append([]string{"ingest"}, append(args, "--json")...)...)
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	for _, k := range []string{"files", "rows_read", "rows_written", "rows_quarantined", "rows_duplicate", "version"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("--json output lacks %q: %s", k, out)
		}
	}
	n := func(k string) int64 { v, _ := raw[k].(float64); return int64(v) }
	return ingestCounts{Files: int(n("files")), FilesSkipped: int(n("files_skipped")), RowsRead: n("rows_read"),
		RowsWritten: n("rows_written"), RowsQuarantined: n("rows_quarantined"), RowsDuplicate: n("rows_duplicate"),
		Commits: int(n("commits")), Version: n("version")}
}

func newInteractions(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "events")
	mustLake(t, "create", dir, "--schema", "interactions")
	return dir
}

// Three real-world shapes, each through its mapping file, into one standard table.
func TestIngestSourcesThroughMappings(t *testing.T) {
	dir := newInteractions(t)
	td := filepath.Join("testdata", "ingest")
	for _, src := range []string{"retail.csv", "app.json", "clicks.ndjson"} {
		mapping := filepath.Join(td, strings.Split(src, ".")[0]+".mapping.json")
		c := ingestJSON(t, dir, filepath.Join(td, src), "--mapping", mapping)
		if c.RowsQuarantined != 0 || c.RowsRead != c.RowsWritten {
			t.Fatalf("%s: %+v", src, c)
		}
	}
	rows := catRows(t, dir)
	if len(rows) != 8 {
		t.Fatalf("%d rows", len(rows))
	}
	byKey := map[string]map[string]any{}
	for _, r := range rows {
		byKey[fmt.Sprint(r["source"], "/", r["user_id"], "/", r["item_id"], "/", r["interaction_type"])] = r
	}
	buy := byKey["retail/u1/p1/purchase"]
	if buy == nil || buy["value"] != 19.99 || buy["timestamp"] != "2024-03-07T11:55:00.000000Z" || buy["properties"].(map[string]any)["store"] != "berlin" {
		t.Fatalf("retail purchase: %v (rows %v)", buy, byKey)
	}
	like := byKey["app/u3/p2/like"]
	if like == nil || like["event_id"] != "a-2" || like["timestamp"] != "2024-03-08T04:30:00.000000Z" || like["event_date"] != "2024-03-08" {
		t.Fatalf("app like: %v", like)
	}
	if p := like["properties"].(map[string]any); p["category"] != "hats" || p["user.country"] != "DE" {
		t.Fatalf("app properties: %v", p)
	}
	click := byKey["clickstream/u4/p1/click"]
	if click == nil || click["properties"].(map[string]any)["referrer"] != "search" {
		t.Fatalf("click: %v", click)
	}
	if p := byKey["clickstream/u4/p3/view"]["properties"].(map[string]any); p["session.id"] != nil || p["session"] != `{"id":"s1","n":2}` {
		t.Fatalf("nested extra field: %v", p)
	}
	// The commit records the counts and the mapping.
	out := mustLake(t, "history", dir, "--format", "jsonl", "--limit", "1")
	if !strings.Contains(out, `"numSourceRows":"2"`) || !strings.Contains(out, "clicks.mapping.json") {
		t.Fatalf("history: %s", out)
	}
}

// A file with 10% malformed records of mixed kinds: 90% land in the table, 10% in quarantine
// with their reasons, the counts add up, and ingesting it again adds nothing.
func TestIngestTenPercentMalformed(t *testing.T) {
	dir := newInteractions(t)
	var b strings.Builder
	b.WriteString("uid,product,action,ts,price\n")
	bad := []string{
		"u%d,,pv,1709812345000,",       // empty item
		"u%d,p1,pv,not-a-time,",        // bad timestamp
		"u%d,p1,pv,1709812345000,abc",  // bad value
		"u%d,p1,pv",                    // too few columns
		"u%d,p1,pv,99999999999999,",    // far future
		"\xffu%d,p1,pv,1709812345000,", // invalid UTF-8
		"u%d,p1,,1709812345000,",       // empty type
		"u%d,p1,pv,1709812345000,1,2",  // too many columns
		"u%d,p1,pv,100000000000,",      // 1973
		"u%d,\"p1,pv,1709812345000,",   // unclosed quote (runs to the next line)
	}
	const n = 1000
	wantBad := 0
	for i := range n {
		if i%10 == 9 {
			k := (i / 10) % len(bad)
			if k == len(bad)-1 && i != n-1 {
				k = 0 // an unclosed quote swallows the lines after it: keep it for the last line
			}
			fmt.Fprintf(&b, bad[k]+"\n", i)
			wantBad++
			continue
		}
		fmt.Fprintf(&b, "u%d,p%d,pv,%d,\n", i, i%37, 1709812345000+int64(i)*1000)
	}
	in := filepath.Join(t.TempDir(), "export.csv")
	os.WriteFile(in, []byte(b.String()), 0o644)
	args := []string{dir, in, "--map", "user_id=uid,item_id=product,interaction_type=action,timestamp=ts,value=price", "--timestamp-format", "epoch_ms"}
	c := ingestJSON(t, args...)
	if c.RowsRead != n || c.RowsWritten != n-int64(wantBad) || c.RowsQuarantined != int64(wantBad) || c.RowsDuplicate != 0 {
		t.Fatalf("counts %+v, want %d bad", c, wantBad)
	}
	if rows := catRows(t, dir); len(rows) != n-wantBad {
		t.Fatalf("%d rows in the table", len(rows))
	}
	q := catRows(t, dir+"_quarantine")
	if len(q) != wantBad {
		t.Fatalf("%d rows in quarantine", len(q))
	}
	reasons := map[string]bool{}
	for _, r := range q {
		reasons[strings.SplitN(r["reason"].(string), " ", 2)[0]] = true
		if r["file"] != in || r["line"] == nil || r["raw"] == "" {
			t.Fatalf("quarantine row %v", r)
		}
	}
	if len(reasons) < 6 {
		t.Fatalf("reasons: %v", reasons)
	}
	// Again: the file's fingerprint is in the table, nothing is added.
	c2 := ingestJSON(t, args...)
	if c2.FilesSkipped != 1 || c2.Commits != 0 || c2.Version != c.Version {
		t.Fatalf("second ingest: %+v", c2)
	}
	if rows := catRows(t, dir); len(rows) != n-wantBad {
		t.Fatalf("second ingest added rows: %d", len(rows))
	}
	if q := catRows(t, dir+"_quarantine"); len(q) != wantBad {
		t.Fatalf("second ingest added quarantine rows: %d", len(q))
	}
	// --force ingests it again (and the duplicates of the table are not checked across calls).
	c3 := ingestJSON(t, append(args, "--force")...)
	if c3.Commits != 1 || c3.RowsWritten != c.RowsWritten {
		t.Fatalf("--force: %+v", c3)
	}
}

// A mostly-garbage file fails on its first batch and commits nothing; later batches judge
// themselves.
func TestIngestMaxBadFraction(t *testing.T) {
	dir := newInteractions(t)
	in := filepath.Join(t.TempDir(), "garbage.ndjson")
	os.WriteFile(in, []byte(rowsNDJSON+"{}\n[]\n\"x\"\n{\"user_id\":1}\n"), 0o644)
	_, errOut, code := lake(t, "ingest", dir, in)
	if code != 1 || !strings.Contains(errOut, "--max-bad-fraction") || !strings.Contains(errOut, "nothing of this batch was committed") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out := mustLake(t, "describe", dir, "--format", "json"); !strings.Contains(out, `"version": 0`) {
		t.Fatalf("committed: %s", out)
	}
	if _, err := os.Stat(dir + "_quarantine/_delta_log"); err == nil {
		if q := catRows(t, dir+"_quarantine"); len(q) != 0 {
			t.Fatalf("quarantine has %d rows", len(q))
		}
	}
	c := ingestJSON(t, dir, in, "--max-bad-fraction", "0.6")
	if c.RowsWritten != 3 || c.RowsQuarantined != 4 {
		t.Fatalf("%+v", c)
	}
}

// Hostile-tester bugs 1-5, 7 and 10 of issue 7.
func TestIngestHostile(t *testing.T) {
	t.Run("csv into the interaction table", func(t *testing.T) { // bug 1: the map column panicked
		dir := newInteractions(t)
		in := filepath.Join(t.TempDir(), "x.csv")
		os.WriteFile(in, []byte("event_id,user_id,item_id,interaction_type,timestamp,properties\ne1,u,i,view,2024-03-07T10:00:00Z,\"{\"\"a\"\":\"\"b\"\"}\"\n"), 0o644)
		mustLake(t, "ingest", dir, in)
		rows := catRows(t, dir)
		if len(rows) != 1 || rows[0]["properties"].(map[string]any)["a"] != "b" {
			t.Fatalf("%v", rows)
		}
	})
	t.Run("bad nullable value is not null", func(t *testing.T) { // bug 2
		dir := newInteractions(t)
		in := filepath.Join(t.TempDir(), "x.csv")
		os.WriteFile(in, []byte("user_id,item_id,interaction_type,timestamp,value\nu,i,view,2024-03-07T10:00:00Z,1\nu,i2,view,2024-03-07T10:00:00Z,oops\n"), 0o644)
		c := ingestJSON(t, dir, in, "--batch-rows", "1", "--max-bad-fraction", "1")
		rows := catRows(t, dir)
		if c.RowsQuarantined != 1 || len(rows) != 1 || rows[0]["value"] != 1.0 {
			t.Fatalf("%+v %v", c, rows)
		}
	})
	t.Run("event_date as a number", func(t *testing.T) { // bug 3
		dir := newInteractions(t)
		in := filepath.Join(t.TempDir(), "x.ndjson")
		os.WriteFile(in, []byte(`{"user_id":"u","item_id":"i","interaction_type":"view","timestamp":"2024-03-07T10:00:00Z","event_date":19789}`+"\n"+
			`{"user_id":"u","item_id":"i","interaction_type":"view","timestamp":"2024-03-07T10:00:01Z"}`+"\n"), 0o644)
		c := ingestJSON(t, dir, in, "--max-bad-fraction", "1")
		if c.RowsQuarantined != 1 || len(catRows(t, dir)) != 1 {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("overwrite is one commit", func(t *testing.T) { // bug 4
		dir := newInteractions(t)
		old := filepath.Join(t.TempDir(), "old.ndjson")
		os.WriteFile(old, []byte(rowsNDJSON), 0o644)
		mustLake(t, "ingest", dir, old)
		var b strings.Builder
		b.WriteString("user_id,item_id,interaction_type,timestamp\n")
		for i := range 300 {
			ts := fmt.Sprintf("2024-03-07T10:00:%02dZ", i%60)
			if i == 250 {
				ts = "1709812345" // a bare number: the call fails
			}
			fmt.Fprintf(&b, "u%d,i,view,%s\n", i, ts)
		}
		in := filepath.Join(t.TempDir(), "new.csv")
		os.WriteFile(in, []byte(b.String()), 0o644)
		_, errOut, code := lake(t, "ingest", dir, in, "--mode", "overwrite", "--batch-rows", "100")
		if code == 0 || !strings.Contains(errOut, "--timestamp-format") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if rows := catRows(t, dir); len(rows) != 3 {
			t.Fatalf("the old data was replaced: %d rows", len(rows))
		}
		good := strings.Replace(b.String(), "1709812345", "2024-03-07T11:00:00Z", 1)
		os.WriteFile(in, []byte(good), 0o644)
		c := ingestJSON(t, dir, in, "--mode", "overwrite", "--batch-rows", "100")
		if c.Commits != 1 || len(catRows(t, dir)) != 300 {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("replace-where checks every batch", func(t *testing.T) { // bug 5
		dir := newInteractions(t)
		var b strings.Builder
		b.WriteString("user_id,item_id,interaction_type,timestamp\n")
		for i := range 30 {
			day := "07"
			if i == 25 {
				day = "08"
			}
			fmt.Fprintf(&b, "u%d,i,view,2024-03-%sT10:00:00Z\n", i, day)
		}
		in := filepath.Join(t.TempDir(), "x.csv")
		os.WriteFile(in, []byte(b.String()), 0o644)
		_, errOut, code := lake(t, "ingest", dir, in, "--replace-where", "event_date = 2024-03-07", "--batch-rows", "10")
		if code != 1 || !strings.Contains(errOut, "2024-03-08") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if out := mustLake(t, "describe", dir, "--format", "json"); !strings.Contains(out, `"version": 0`) {
			t.Fatalf("committed: %s", out)
		}
	})
	t.Run("merge-schema", func(t *testing.T) { // bug 7
		dir := filepath.Join(t.TempDir(), "t")
		schema := filepath.Join(t.TempDir(), "s.json")
		os.WriteFile(schema, []byte(`{"type":"struct","fields":[{"name":"id","type":"long","nullable":false,"metadata":{}}]}`), 0o644)
		mustLake(t, "create", dir, "--schema-json", schema)
		nd := filepath.Join(t.TempDir(), "x.ndjson")
		os.WriteFile(nd, []byte(`{"id":1,"color":"red"}`+"\n"), 0o644)
		mustLake(t, "ingest", dir, nd, "--merge-schema")
		csv := filepath.Join(t.TempDir(), "x.csv")
		os.WriteFile(csv, []byte("id,size\n2,XL\n"), 0o644)
		if _, errOut, code := lake(t, "ingest", dir, csv); code != 2 || !strings.Contains(errOut, "--merge-schema") {
			t.Fatalf("a new CSV column without --merge-schema: exit %d %s", code, errOut)
		}
		mustLake(t, "ingest", dir, csv, "--merge-schema")
		rows := catRows(t, dir)
		sort.Slice(rows, func(i, j int) bool { return rows[i]["id"].(float64) < rows[j]["id"].(float64) })
		if len(rows) != 2 || rows[0]["color"] != "red" || rows[1]["size"] != "XL" || rows[1]["color"] != nil {
			t.Fatalf("%v", rows)
		}
	})
	t.Run("broken JSON arrays", func(t *testing.T) { // bug 10
		dir := newInteractions(t)
		good := `{"user_id":"u","item_id":"i","interaction_type":"view","timestamp":"2024-03-07T10:00:00Z"}`
		for name, body := range map[string]string{"truncated": "[" + good + ",", "junk": "[" + good + "] junk", "object after": "[" + good + "]{}"} {
			in := filepath.Join(t.TempDir(), "x.json")
			os.WriteFile(in, []byte(body), 0o644)
			_, errOut, code := lake(t, "ingest", dir, in)
			if code != 1 || !strings.Contains(errOut, "JSON array") {
				t.Fatalf("%s: exit %d: %s", name, code, errOut)
			}
		}
		if out := mustLake(t, "describe", dir, "--format", "json"); !strings.Contains(out, `"version": 0`) {
			t.Fatalf("committed: %s", out)
		}
	})
}

// Compressed files, stdin with an idempotency key, object-store URLs, and --batch-rows commits.
func TestIngestInputs(t *testing.T) {
	dir := newInteractions(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(rowsNDJSON))
	zw.Close()
	in := filepath.Join(t.TempDir(), "rows.ndjson.gz")
	os.WriteFile(in, gz.Bytes(), 0o644)
	if c := ingestJSON(t, dir, in); c.RowsWritten != 3 {
		t.Fatalf("gzip: %+v", c)
	}

	// stdin: no fingerprint unless --idempotency-key names one.
	withStdin := func(data string, args ...string) ingestCounts {
		t.Helper()
		r, w, _ := os.Pipe()
		go func() { w.Write([]byte(data)); w.Close() }()
		old := os.Stdin
		os.Stdin = r
		defer func() { os.Stdin = old; r.Close() }()
		return ingestJSON(t, args...)
	}
	one := `{"user_id":"s","item_id":"i","interaction_type":"view","timestamp":"2024-03-07T10:00:00Z"}` + "\n"
	if c := withStdin(one, dir, "-", "--format", "ndjson", "--idempotency-key", "batch-42"); c.RowsWritten != 1 {
		t.Fatalf("stdin: %+v", c)
	}
	if c := withStdin(one, dir, "-", "--format", "ndjson", "--idempotency-key", "batch-42"); c.RowsWritten != 0 || c.FilesSkipped != 1 {
		t.Fatalf("stdin again with the key: %+v", c)
	}

	// An object-store URL.
	ctx := context.Background()
	loc := "mem://ingest-inputs-" + fmt.Sprint(time.Now().UnixNano())
	drop, err := storage.Open(ctx, loc+"/drop")
	if err != nil {
		t.Fatal(err)
	}
	defer drop.Close()
	if err := drop.Bucket.WriteAll(ctx, "events.ndjson", []byte(rowsNDJSON), nil); err != nil {
		t.Fatal(err)
	}
	dir2 := newInteractions(t)
	if c := ingestJSON(t, dir2, loc+"/drop/events.ndjson"); c.RowsWritten != 3 {
		t.Fatalf("object URL: %+v", c)
	}

	// --batch-rows: one commit per batch; a run that stopped half-way commits only what is missing.
	dir3 := newInteractions(t)
	var b strings.Builder
	for i := range 25 {
		fmt.Fprintf(&b, `{"user_id":"u%d","item_id":"i","interaction_type":"view","timestamp":"2024-03-07T10:00:00Z"}`+"\n", i)
	}
	f := filepath.Join(t.TempDir(), "b.ndjson")
	os.WriteFile(f, []byte(b.String()), 0o644)
	if c := ingestJSON(t, dir3, f, "--batch-rows", "10"); c.Commits != 3 || c.RowsWritten != 25 {
		t.Fatalf("--batch-rows: %+v", c)
	}
}
