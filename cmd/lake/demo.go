package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/internal/units"
	"github.com/lakehouse/lake/registry"
	"github.com/lakehouse/lake/server/ops"

	"github.com/lakehouse/lake/table"
)

func init() {
	register(&command{name: "demo", summary: "the quickstart: generated data in through files and the collector, jobs run, results shown; --serve then serves the APIs and the dashboard", run: runDemo})
}

// demoWeek is how many days of events each demo run adds.
const demoWeek = 7

// runDemo is the tour of the main job on a local folder, made of the commands a user would type:
// generated data with ground truth; two of its source files ingested through their mappings (and
// a file with bad records, and one ingested twice); the third streamed through the collector and
// the embedded queue (`lake serve`); ALS and trending on the pinned table; their outputs and the
// model registry read back. It leaves DIR/gen, DIR/events, DIR/events_quarantine and DIR/out.
// Run again on the same DIR, it adds the next week of events and a new run of each job (which
// the registry's gate judges against the live one). --serve then serves the result.
func runDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlags("demo", "[DIR] [--interactions N] [--serve [--addr 127.0.0.1:8080]]", e)
	n := fs.Int("interactions", 200000, "interactions to generate per run")
	serve := fs.Bool("serve", false, "then serve the collector, the read APIs and the dashboard over the demo's tables (until Ctrl-C)")
	addr := fs.String("addr", "127.0.0.1:8080", "with --serve: the address to listen on")
	pos, err := parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	if *n < 1000 {
		return usagef("--interactions must be at least 1000")
	}
	dir := "lake-demo"
	if len(pos) == 1 {
		dir = pos[0]
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	events, gen, out := filepath.Join(abs, "events"), filepath.Join(abs, "gen"), filepath.Join(abs, "out")
	w := e.stdout
	step := 0
	// lake runs one command in-process and returns what it printed.
	lake := func(args ...string) (string, error) {
		var buf bytes.Buffer
		var errb bytes.Buffer
		if code := run(ctx, &env{stdout: &buf, stderr: &errb}, args); code != 0 {
			return "", fmt.Errorf("lake %s: %s", strings.Join(args, " "), strings.TrimSpace(errb.String()))
		}
		return strings.TrimSpace(buf.String()), nil
	}
	say := func(format string, a ...any) {
		step++
		fmt.Fprintf(w, "%d. "+format+"\n", append([]any{step}, a...)...)
	}
	indent := func(s string) string { return "   " + strings.ReplaceAll(s, "\n", "\n   ") }

	// A second run on the same DIR adds the next week.
	runNo := 1
	if _, err := os.Stat(filepath.Join(events, "_delta_log")); err == nil {
		have, runs, err := demoInventory(ctx, abs)
		if err != nil {
			return fmt.Errorf("%s holds a demo that cannot be read (%w); give another DIR or remove it", abs, err)
		}
		runNo = runs + 1
		fmt.Fprintf(w, "%s already holds the demo:\n%s\nAdding run %d: the next %d days of events, a new ALS run (judged by the registry's gate against the live one) and trending over the new windows.\n\n",
			abs, indent(have), runNo, demoWeek)
		gen = filepath.Join(gen, fmt.Sprintf("run-%d", runNo))
		if _, err := os.Stat(gen); err == nil {
			return fmt.Errorf("%s exists: an earlier run stopped half-way; remove that folder and run the demo again", gen)
		}
	}
	first := runNo == 1
	startDay := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, demoWeek*(runNo-1))
	o, err := lake("gen", "--out", gen, "--interactions", strconv.Itoa(*n), "--days", strconv.Itoa(demoWeek),
		"--seed", "1", "--event-seed", strconv.Itoa(runNo), "--start", startDay.Format(time.DateOnly))
	if err != nil {
		return err
	}
	say("lake gen: %s", o)
	if first {
		if _, err := lake("create", events, "--schema", "interactions"); err != nil {
			return err
		}
		say("lake create %s --schema interactions (a Delta table partitioned by event_date)", events)
	}
	for _, f := range []string{"retail.csv", "app.json"} {
		m := filepath.Join(gen, "mappings", strings.Split(f, ".")[0]+".json")
		o, err := lake("ingest", events, filepath.Join(gen, f), "--mapping", m)
		if err != nil {
			return err
		}
		say("lake ingest %s --mapping %s (an offline file with a schema of its own):\n%s", f, filepath.Base(m), indent(o))
	}
	if first {
		bad := filepath.Join(gen, "late.ndjson")
		if err := os.WriteFile(bad, []byte(`{"user_id":"u1","item_id":"i1","interaction_type":"view","timestamp":"2024-03-07T12:00:00Z"}
{"user_id":"u2","item_id":"i2","interaction_type":"view","timestamp":"yesterday"}
{"user_id":"u3","interaction_type":"view","timestamp":"2024-03-07T12:00:00Z"}
{"user_id":"u4","item_id":"i4","interaction_type":"view","timestamp":"2024-03-07T12:00:00Z"}
`), 0o644); err != nil {
			return err
		}
		if o, err = lake("ingest", events, bad); err != nil {
			return err
		}
		say("a file with two bad records of four (bad ones go to the quarantine table, with reasons):\n%s", indent(o))
		if o, err = lake("cat", events+"_quarantine", "--columns", "line,reason", "--format", "jsonl"); err != nil {
			return err
		}
		fmt.Fprintln(w, indent(o))
		if o, err = lake("ingest", events, filepath.Join(gen, "retail.csv"), "--mapping", filepath.Join(gen, "mappings", "retail.json")); err != nil {
			return err
		}
		say("the retail file again (its fingerprint is in the table):\n%s", indent(o))
	}
	clicks := filepath.Join(gen, "clicks.ndjson")
	posted, summary, err := demoStream(ctx, events, clicks)
	if err != nil {
		return err
	}
	say("the online events: clicks.ndjson posted to the collector (lake serve --table %s/events, POST /v1/events, embedded mem:// queue), %d events in requests of %d:\n%s",
		dir, posted, demoPostBatch, indent(summary))

	als := []string{"als", "--source", events, "--output", out, "--factors", "32", "--iterations", "10"}
	if o, err = lake(als...); err != nil {
		return err
	}
	say("lake als --source %s/events --output %s/out (implicit ALS, LSH similar items, recommendations; the registry's gate decides whether it goes live):\n%s", dir, dir, indent(o))
	if o, err = lake("trending", "--source", events, "--output", out, "--window", "1h"); err != nil {
		return err
	}
	say("lake trending --window 1h (surges against each item's own forecast; popularity):\n%s", indent(o))
	if o, err = lake("cat", filepath.Join(out, "trending"), "--format", "table", "--limit", "5", "--columns", "window_start,item_id,count,expected,score"); err != nil {
		return err
	}
	fmt.Fprintln(w, indent(o))
	if o, err = lake("cat", filepath.Join(out, "similar_items"), "--where", "rank <= 3", "--limit", "6", "--format", "table"); err != nil {
		return err
	}
	say("you may also like (out/similar_items, 6 rows):\n%s", indent(o))
	user := "u17"
	if o, err = lake("cat", filepath.Join(out, "user_recommendations"), "--where", "user_id = "+user, "--limit", "5", "--format", "table"); err != nil {
		return err
	}
	say("recommendations for user %s (out/user_recommendations):\n%s", user, indent(o))
	if o, err = lake("models", "list", out); err != nil {
		return err
	}
	say("lake models list %s/out (the model registry: every run, its status and why):\n%s", dir, indent(o))
	if o, err = lake("cat", events+"_quarantine", "--columns", "source,line,reason,ingested_at", "--format", "table", "--limit", "10"); err != nil {
		return err
	}
	say("where the bad records went: %s/events_quarantine, a Delta table of each refused record with its raw text, file, line and reason:\n%s", dir, indent(o))
	if o, err = lake("history", events, "--format", "table", "--limit", "3"); err != nil {
		return err
	}
	say("lake history (the newest commits; every ingest and every collector batch is one, with its counts):\n%s", indent(o))
	if !*serve {
		fmt.Fprintf(w, "\nNext: lake demo %s --serve (the APIs and the dashboard) · lake demo %s (adds a week and a new run) · lake cat %s/events --where \"interaction_type = purchase\" --limit 10\n", dir, dir, dir)
		return nil
	}
	fmt.Fprintf(w, "\nServing the demo: the dashboard at http://%s/ , the shop at http://%s/demo/ , the APIs under /v1/ (Ctrl-C stops)\n", *addr, *addr)
	return runServe(ctx, e, []string{"--table", events, "--outputs", out, "--demo-site", "--addr", *addr})
}

// demoInventory says what an earlier demo left in dir, and how many runs it made (the
// generated folders: gen/ and gen/run-K/).
func demoInventory(ctx context.Context, dir string) (string, int, error) {
	var b strings.Builder
	for _, name := range []string{"events", "events_quarantine"} {
		t, err := table.Open(ctx, filepath.Join(dir, name), nil)
		if err != nil {
			return "", 0, err
		}
		snap, err := t.Snapshot(ctx)
		t.Close()
		if err != nil {
			return "", 0, err
		}
		var rows int64
		for _, a := range snap.Files() {
			if n, ok := a.LiveRecords(); ok {
				rows += n
			}
		}
		fmt.Fprintf(&b, "%s: version %d, %d rows in %d files\n", name, snap.Version(), rows, snap.NumFiles())
	}
	runs := 1
	for {
		if _, err := os.Stat(filepath.Join(dir, "gen", fmt.Sprintf("run-%d", runs+1))); err != nil {
			break
		}
		runs++
	}
	if st, err := registry.Load(ctx, filepath.Join(dir, "out")); err == nil {
		live := "none"
		if r := st.Live(registry.JobALS); r != nil {
			live = r.RunID
			if rec, ok := r.Recall(); ok {
				live += fmt.Sprintf(" (recall@10 %.4f)", rec)
			}
		}
		fmt.Fprintf(&b, "out/models: %d runs; the live ALS model is %s", len(st.Runs), live)
	} else {
		b.WriteString("out/models: no runs yet")
	}
	return b.String(), runs, nil
}

// demoPostBatch is how many events the demo posts per request.
const demoPostBatch = 5000

// demoStream streams an NDJSON file of events through the collector: it runs what `lake serve`
// runs (ops.Run) on a free loopback port with an embedded queue, posts the file in requests of
// demoPostBatch lines, stops the server (which commits what the queue holds) and returns its
// closing summary.
func demoStream(ctx context.Context, events, file string) (int, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, "", err
	}
	zero := 0.0
	cfg := &ops.Config{Table: events, Queue: fmt.Sprintf("mem://lake-demo-%d-%d", os.Getpid(), demoQueues.Add(1)),
		Server: ops.ServerConfig{RateLimit: &zero}, Committer: ops.CommitterConfig{Name: "lake-demo", BatchRows: 20000}}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out bytes.Buffer // written by Run, read once it has returned
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- ops.Run(sctx, cfg, &ops.RunOptions{Stdout: &out, Listener: ln, Started: func(net.Addr, *ops.Scheduler) { close(started) }})
	}()
	select {
	case <-started:
	case err := <-done:
		return 0, "", fmt.Errorf("lake serve did not start: %w", err)
	}
	posted, err := postNDJSON(ctx, "http://"+ln.Addr().String()+"/v1/events", file, demoPostBatch)
	cancel()
	if serr := <-done; serr != nil && err == nil {
		err = fmt.Errorf("lake serve: %w", serr)
	}
	if err != nil {
		return posted, "", err
	}
	summary := strings.TrimSpace(out.String())
	if k := strings.LastIndex(summary, "stopped; "); k >= 0 {
		summary = "lake serve " + summary[k:]
	}
	return posted, summary, nil
}

var demoQueues atomic.Int64

// postNDJSON posts the lines of an NDJSON file to url in requests of batch lines and returns
// how many it posted; every request must be accepted (202).
func postNDJSON(ctx context.Context, url, file string, batch int) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var body bytes.Buffer
	posted, lines := 0, 0
	send := func() error {
		if lines == 0 {
			return nil
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body.Bytes()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("POST %s: %s: %s", url, resp.Status, strings.TrimSpace(string(msg)))
		}
		posted += lines
		body.Reset()
		lines = 0
		return nil
	}
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		body.Write(sc.Bytes())
		body.WriteByte('\n')
		if lines++; lines == batch {
			if err := send(); err != nil {
				return posted, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return posted, fmt.Errorf("read %s: %w", file, err)
	}
	return posted, send()
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
		dates[i] = int32(units.FloorDiv(us, dayUS))
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
