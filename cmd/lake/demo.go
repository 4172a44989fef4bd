package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lakehouse/lake/internal/units"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/table"
)

func init() {
	register(&command{name: "demo", summary: "the quickstart: generated data in through files, jobs run, results shown", run: runDemo})
}

// runDemo is the tour of the main job on a local folder, made of the commands a user would type:
// generated data with ground truth, its three source files ingested through their mappings (and
// a file with bad records, and one ingested twice), ALS and trending on the pinned table, and
// their outputs read back. It leaves DIR/gen, DIR/events, DIR/events_quarantine and DIR/out.
func runDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlags("demo", "[DIR] [--interactions N]", e)
	n := fs.Int("interactions", 200000, "interactions to generate")
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
	abs, _ := filepath.Abs(dir)
	events, gen, out := filepath.Join(abs, "events"), filepath.Join(abs, "gen"), filepath.Join(abs, "out")
	if _, err := os.Stat(events); err == nil {
		return fmt.Errorf("%s already holds the demo; give another DIR or remove it", abs)
	}
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

	o, err := lake("gen", "--out", gen, "--interactions", strconv.Itoa(*n), "--days", "7", "--seed", "1")
	if err != nil {
		return err
	}
	say("lake gen: %s", o)
	if _, err := lake("create", events, "--schema", "interactions"); err != nil {
		return err
	}
	say("lake create %s --schema interactions (a Delta table partitioned by event_date)", events)
	for _, f := range []string{"retail.csv", "app.json", "clicks.ndjson"} {
		m := filepath.Join(gen, "mappings", strings.Split(f, ".")[0]+".json")
		o, err := lake("ingest", events, filepath.Join(gen, f), "--mapping", m)
		if err != nil {
			return err
		}
		say("lake ingest %s --mapping %s:\n%s", f, filepath.Base(m), indent(o))
	}
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

	if o, err = lake("als", "--source", events, "--output", out, "--factors", "32", "--iterations", "10"); err != nil {
		return err
	}
	say("lake als --source %s --output %s (implicit ALS, LSH similar items, recommendations):\n%s", dir+"/events", dir+"/out", indent(o))
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
	if o, err = lake("history", events, "--format", "table", "--limit", "3"); err != nil {
		return err
	}
	say("lake history (the newest commits; every ingest is one, with its counts):\n%s", indent(o))
	fmt.Fprintf(w, "\nNext: lake cat %s/events --where \"interaction_type = purchase\" --limit 10 · lake describe %s/events · lake serve --table %s/events --demo-site\n", dir, dir, dir)
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
