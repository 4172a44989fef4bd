package source_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer/source"
)

var retailMapping = &source.Mapping{
	Source:          "retail",
	Fields:          map[string]string{"user_id": "uid", "item_id": "product", "interaction_type": "action", "timestamp": "ts", "value": "price"},
	Types:           map[string]string{"pv": "view", "atc": "add_to_cart", "buy": "purchase"},
	TimestampFormat: source.TimestampEpochMS,
}

// A retail export uid,product,action,ts in epoch ms: renamed types, UTC timestamps, derived
// dates and ids, unmapped columns kept in properties.
func TestRetailCSV(t *testing.T) {
	in := "uid,product,action,ts,price,store\r\n" +
		"u1,p1,pv,1709812345000,,s9\r\n" +
		"u2,p2,buy,1709812346123,9.5,s9\r\n"
	r := read(t, in, &source.Options{Mapping: retailMapping}, nil)
	if r.err != nil || len(r.rows) != 2 {
		t.Fatalf("%v %v", r.err, r.rows)
	}
	a, b := r.rows[0], r.rows[1]
	if a["user_id"] != "u1" || a["item_id"] != "p1" || a["interaction_type"] != "view" || a["timestamp"] != "2024-03-07T11:52:25.000000Z" ||
		a["event_date"] != "2024-03-07" || a["source"] != "retail" || a["value"] != nil {
		t.Fatalf("row 1: %v", a)
	}
	if b["interaction_type"] != "purchase" || b["value"] != 9.5 || b["timestamp"] != "2024-03-07T11:52:26.123000Z" {
		t.Fatalf("row 2: %v", b)
	}
	if p, _ := a["properties"].(map[string]any); p["store"] != "s9" || len(p) != 1 {
		t.Fatalf("properties: %v", a["properties"])
	}
	if id := a["event_id"].(string); len(id) != 32 || id == b["event_id"] {
		t.Fatalf("event ids %v %v", a["event_id"], b["event_id"])
	}
	// The same record gives the same id, from another file too.
	r2 := read(t, "uid,product,action,ts\nu1,p1,pv,1709812345000\n", &source.Options{Mapping: retailMapping}, nil)
	if r2.rows[0]["event_id"] != a["event_id"] {
		t.Fatalf("derived ids differ: %v %v", r2.rows[0]["event_id"], a["event_id"])
	}
}

// A JSON export with nested fields and ISO times with offsets, picked out by dotted paths.
func TestNestedJSONArray(t *testing.T) {
	in := `[
 {"user": {"id": "u1", "tier": "gold"}, "item": {"id": "i9", "category": "c3"}, "event": "view", "time": "2024-03-07T10:15:00+02:00", "n": 3},
 {"user": {"id": "u2"}, "item": {"id": "i8"}, "event": "like", "time": "2024-03-07T23:30:00-05:00", "ok": true}
]`
	m := &source.Mapping{Fields: map[string]string{"user_id": "user.id", "item_id": "item.id", "interaction_type": "event",
		"timestamp": "time", "properties.category": "item.category"}}
	r := read(t, in, &source.Options{Mapping: m}, nil)
	if r.err != nil || len(r.rows) != 2 {
		t.Fatalf("%v %v %v", r.err, r.rows, r.quar)
	}
	a, b := r.rows[0], r.rows[1]
	if a["user_id"] != "u1" || a["item_id"] != "i9" || a["timestamp"] != "2024-03-07T08:15:00.000000Z" || a["event_date"] != "2024-03-07" {
		t.Fatalf("row 1: %v", a)
	}
	p := a["properties"].(map[string]any)
	if p["category"] != "c3" || p["user.tier"] != "gold" || p["n"] != "3" || len(p) != 3 {
		t.Fatalf("properties: %v", p)
	}
	// 23:30 at -05:00 is the next UTC day.
	if b["timestamp"] != "2024-03-08T04:30:00.000000Z" || b["event_date"] != "2024-03-08" || b["properties"].(map[string]any)["ok"] != "true" {
		t.Fatalf("row 2: %v", b)
	}
}

// A clickstream NDJSON in the standard names: extra fields go to properties, merged with the
// record's own properties object.
func TestClickstreamNDJSON(t *testing.T) {
	in := `{"event_id":"e1","user_id":"u1","item_id":"i1","interaction_type":"click","timestamp":"2024-03-07T10:00:00Z","page":"/p/1","properties":{"ab":"B"}}` + "\n\n" +
		`{"event_id":"e2","user_id":"u1","item_id":"i2","interaction_type":"view","timestamp":1709805600000,"referrer":null}` + "\n"
	r := read(t, in, &source.Options{TimestampFormat: source.TimestampRFC3339OrEpochMS}, &source.ReadOptions{Format: "ndjson"})
	if r.err != nil || len(r.rows) != 2 {
		t.Fatalf("%v %v %v", r.err, r.rows, r.quar)
	}
	p := r.rows[0]["properties"].(map[string]any)
	if r.rows[0]["event_id"] != "e1" || p["page"] != "/p/1" || p["ab"] != "B" || len(p) != 2 {
		t.Fatalf("row 1: %v", r.rows[0])
	}
	if r.rows[1]["timestamp"] != "2024-03-07T10:00:00.000000Z" {
		t.Fatalf("epoch ms: %v", r.rows[1])
	}
	if p := r.rows[1]["properties"].(map[string]any); len(p) != 1 || p["referrer"] != nil {
		t.Fatalf("a null field is kept as a null value: %v", p)
	}
}

// Every kind of bad record is quarantined with its reason, position and user; counts add up.
func TestQuarantineReasons(t *testing.T) {
	lines := []string{
		"uid,product,action,ts,price",
		"u1,p1,pv,1709812345000,1",       // good
		"u2,,pv,1709812345000,",          // empty item
		"u3,p3,,1709812345000,",          // empty type
		"u4,p4,pv,yesterday,",            // bad timestamp
		"u5,p5,pv,1709812345000,x",       // bad value
		"u6,p6,pv,1709812345000",         // too few fields
		"u7,p7,pv,1709812345000,1,extra", // too many
		"u8,p8,pv,500000000000,",         // 1985: too old
		"u9,p9,pv,1893456000000,",        // 2030: future
		"u\xff,p1,pv,1709812345000,",     // invalid UTF-8
		"u11,p11,pv,1709812345000,NaN",   // not finite
		"u12,\"p12,pv,1709812345000,",    // unclosed quote to the end
	}
	r := read(t, strings.Join(lines, "\n")+"\n", &source.Options{Mapping: retailMapping}, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.rows) != 1 || r.counts.Quarantined != 11 {
		t.Fatalf("rows %v, counts %+v, reasons %q", r.rows, r.counts, r.reasons())
	}
	want := []string{"empty item_id", "empty interaction_type", "not a number of milliseconds", "not a finite number",
		"4 fields where the header has 5", "6 fields where the header has 5", "before 1990", "in the future",
		"invalid UTF-8", "not a finite number", "unclosed quoted field"}
	for i, w := range want {
		if !strings.Contains(r.quar[i]["reason"].(string), w) {
			t.Errorf("record %d: reason %q, want %q", i, r.quar[i]["reason"], w)
		}
	}
	q := r.quar[0]
	if q["line"] != float64(3) || q["user_id"] != "u2" || q["raw"] != "u2,,pv,1709812345000," || q["file"] != nil || q["source"] != "retail" {
		t.Fatalf("quarantine row: %v", q)
	}
	if off := int(q["byte_offset"].(float64)); !strings.HasPrefix(strings.Join(lines, "\n")[off:], "u2,,pv") {
		t.Fatalf("byte_offset %d", off)
	}
	if raw := r.quar[8]["raw"].(string); !strings.Contains(raw, `u\xff`) {
		t.Fatalf("invalid UTF-8 is kept escaped: %q", raw)
	}
}

func TestTimestampFormats(t *testing.T) {
	cases := []struct {
		format, zone, in, want string
	}{
		{"epoch_s", "", "1709812345", "2024-03-07T11:52:25.000000Z"},
		{"epoch_s", "", "1709812345.5", "2024-03-07T11:52:25.500000Z"},
		{"epoch_ms", "", "1709812345123", "2024-03-07T11:52:25.123000Z"},
		{"epoch_us", "", "1709812345123456", "2024-03-07T11:52:25.123456Z"},
		{"rfc3339", "", "2024-03-07T11:52:25+01:00", "2024-03-07T10:52:25.000000Z"},
		{"rfc3339", "", "2024-03-07T11:52:25.5Z", "2024-03-07T11:52:25.500000Z"},
		{"rfc3339", "America/New_York", "2024-03-07 11:52:25", "2024-03-07T16:52:25.000000Z"},
		{"", "", "2024-03-07T11:52:25Z", "2024-03-07T11:52:25.000000Z"},
		{"02/01/2006 15:04", "Europe/Paris", "07/03/2024 11:52", "2024-03-07T10:52:00.000000Z"},
	}
	for _, c := range cases {
		in := "user_id,item_id,interaction_type,timestamp\nu,i,view," + c.in + "\n"
		r := read(t, in, &source.Options{TimestampFormat: c.format, Timezone: c.zone}, nil)
		if r.err != nil || len(r.rows) != 1 || r.rows[0]["timestamp"] != c.want {
			t.Errorf("%s %q: %v %v %v", c.format, c.in, r.err, r.rows, r.reasons())
		}
	}
	// A bare number without a format is never guessed: the call fails and names the flag.
	r := read(t, "user_id,item_id,interaction_type,timestamp\nu,i,view,1709812345\n", nil, nil)
	var ce *source.ConfigError
	if !errors.As(r.err, &ce) || !errors.Is(r.err, source.ErrNumericTimestamp) || !strings.Contains(r.err.Error(), "--timestamp-format") {
		t.Fatalf("bare number: %v", r.err)
	}
	if _, err := source.NewStandardizer(&source.Options{TimestampFormat: "yyyy"}); err == nil {
		t.Fatal("a nonsense format is accepted")
	}
	if _, err := source.NewStandardizer(&source.Options{Timezone: "Mars/Olympus"}); err == nil {
		t.Fatal("an unknown zone is accepted")
	}
}

// event_date is derived; a source that sends another one, or a number, is quarantined.
func TestEventDateFromSource(t *testing.T) {
	in := `{"user_id":"u","item_id":"i","interaction_type":"view","timestamp":"2024-03-07T23:00:00Z","event_date":"2024-03-07"}
{"user_id":"u","item_id":"i","interaction_type":"view","timestamp":"2024-03-07T23:00:01Z","event_date":"2024-03-08"}
{"user_id":"u","item_id":"i","interaction_type":"view","timestamp":"2024-03-07T23:00:02Z","event_date":19789}
`
	r := read(t, in, nil, nil)
	if len(r.rows) != 1 || len(r.quar) != 2 || !strings.Contains(r.quar[0]["reason"].(string), "not the UTC date") ||
		!strings.Contains(r.quar[1]["reason"].(string), "not a date") {
		t.Fatalf("%v %q", r.rows, r.reasons())
	}
}

// Duplicates inside one call are dropped and counted, also across Standardizers sharing a Seen.
func TestDuplicates(t *testing.T) {
	in := `{"event_id":"e1","user_id":"u","item_id":"i","interaction_type":"view","timestamp":"2024-03-07T23:00:00Z"}
{"event_id":"e1","user_id":"u","item_id":"i","interaction_type":"view","timestamp":"2024-03-07T23:00:00Z"}
{"user_id":"u","item_id":"i","interaction_type":"view","timestamp":"2024-03-07T23:00:00Z"}
{"user_id":"u","item_id":"i","interaction_type":"view","timestamp":"2024-03-07T23:00:00Z"}
{"user_id":"u","item_id":"i","interaction_type":"view","timestamp":"2024-03-07T23:00:00Z","value":2}
`
	seen := source.NewSeen()
	r := read(t, in, &source.Options{Seen: seen}, nil)
	if r.counts.Duplicate != 2 || len(r.rows) != 3 {
		t.Fatalf("%+v", r.counts)
	}
	r = read(t, in, &source.Options{Seen: seen}, nil)
	if r.counts.Duplicate != 5 || len(r.rows) != 0 {
		t.Fatalf("second file: %+v", r.counts)
	}
}

func TestCSVDialects(t *testing.T) {
	want := func(t *testing.T, r result, items ...string) {
		t.Helper()
		if r.err != nil {
			t.Fatal(r.err)
		}
		var got []string
		for _, row := range r.rows {
			got = append(got, row["item_id"].(string))
		}
		if !slices.Equal(got, items) {
			t.Fatalf("items %q, want %q (quarantined: %q)", got, items, r.reasons())
		}
	}
	head := "user_id;item_id;interaction_type;timestamp\n"
	t.Run("semicolon detected", func(t *testing.T) {
		want(t, read(t, head+"u;i1;view;2024-03-07T10:00:00Z\n", nil, nil), "i1")
	})
	t.Run("tsv", func(t *testing.T) {
		in := "user_id\titem_id\tinteraction_type\ttimestamp\nu\ti,1\tview\t2024-03-07T10:00:00Z\n"
		want(t, read(t, in, nil, &source.ReadOptions{Name: "x.tsv"}), "i,1")
	})
	t.Run("pipe given", func(t *testing.T) {
		in := "user_id|item_id|interaction_type|timestamp\nu|i|9|view|2024-03-07T10:00:00Z\nu|i2|view|2024-03-07T10:00:00Z\n"
		r := read(t, in, nil, &source.ReadOptions{Delimiter: "|"})
		want(t, r, "i2")
	})
	t.Run("quotes BOM CRLF", func(t *testing.T) {
		in := "\xef\xbb\xbfuser_id,item_id,interaction_type,timestamp\r\n" +
			"\"u\",\"a \"\"quoted\"\", comma\",view,2024-03-07T10:00:00Z\r\n" +
			"u,\"two\r\nlines\",view,2024-03-07T10:00:00Z\r\n" +
			"\r\n" +
			"u,last,view,2024-03-07T10:00:00Z"
		r := read(t, in, nil, nil)
		want(t, r, `a "quoted", comma`, "two\r\nlines", "last")
		if r.rows[0]["user_id"] != "u" {
			t.Fatalf("BOM kept in the header: %v", r.rows[0])
		}
	})
	t.Run("no header", func(t *testing.T) {
		m := &source.Mapping{Fields: map[string]string{"user_id": "column1", "item_id": "column2", "interaction_type": ":rating",
			"timestamp": "column3", "value": "column4"}, TimestampFormat: "epoch_s"}
		r := read(t, "u1,i1,1709812345,4.5\nu2,i2,1709812346,3\n", &source.Options{Mapping: m}, &source.ReadOptions{Header: ptr(false)})
		want(t, r, "i1", "i2")
		if r.rows[0]["interaction_type"] != "rating" || r.rows[0]["value"] != 4.5 {
			t.Fatalf("%v", r.rows[0])
		}
	})
	t.Run("duplicate header", func(t *testing.T) {
		r := read(t, "user_id,user_id,item_id\n", nil, nil)
		var ce *source.ConfigError
		if !errors.As(r.err, &ce) {
			t.Fatalf("want a ConfigError, got %v", r.err)
		}
	})
}

func TestCompressed(t *testing.T) {
	in := "user_id,item_id,interaction_type,timestamp\nu,i,view,2024-03-07T10:00:00Z\n"
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(in))
	zw.Close()
	enc, _ := zstd.NewWriter(nil)
	zs := enc.EncodeAll([]byte(in), nil)
	for name, data := range map[string][]byte{"events.csv.gz": gz.Bytes(), "events.csv.zst": zs} {
		r := read(t, string(data), nil, &source.ReadOptions{Name: name})
		if r.err != nil || len(r.rows) != 1 {
			t.Errorf("%s: %v %v", name, r.err, r.rows)
		}
	}
}

// A JSON array that is truncated, broken or followed by data is a FileError; an element that is
// not an object is quarantined.
func TestJSONArrayStructure(t *testing.T) {
	good := `{"user_id":"u","item_id":"i","interaction_type":"view","timestamp":"2024-03-07T10:00:00Z"}`
	for name, in := range map[string]string{
		"truncated":     "[" + good + ",",
		"cut mid-value": "[" + good + `,{"user_id":"u`,
		"trailing junk": "[" + good + "] junk",
		"second array":  "[" + good + "][]",
		"no comma":      "[" + good + " " + good + "]",
	} {
		r := read(t, in, nil, &source.ReadOptions{Format: "json"})
		var fe *source.FileError
		if !errors.As(r.err, &fe) {
			t.Errorf("%s: want a FileError, got %v", name, r.err)
		}
	}
	r := read(t, "["+good+`, 5, "x", null]`, nil, &source.ReadOptions{Format: "json"})
	if r.err != nil || len(r.rows) != 1 || len(r.quar) != 3 {
		t.Fatalf("%v %v %q", r.err, r.rows, r.reasons())
	}
	if r.quar[0]["raw"] != "5" || r.quar[0]["line"] != float64(1) {
		t.Fatalf("%v", r.quar[0])
	}
	// NDJSON: a bad line is one quarantined record, the others stand.
	r = read(t, good+"\n{bad\n"+good[:len(good)-1]+`,"x":1}`+"\n", nil, &source.ReadOptions{Format: "ndjson"})
	if len(r.rows) != 1 || len(r.quar) != 1 || r.counts.Duplicate != 1 || r.quar[0]["line"] != float64(2) {
		t.Fatalf("%v %v %+v", r.rows, r.quar, r.counts)
	}
}

// Tables other than the interaction table: each field is converted to its column's type, and a
// value that does not convert is quarantined, never stored as null.
func TestGenericSchema(t *testing.T) {
	st := &txlog.StructType{Fields: []txlog.StructField{
		{Name: "id", Type: txlog.Long},
		{Name: "name", Type: txlog.String, Nullable: true},
		{Name: "score", Type: txlog.Double, Nullable: true},
		{Name: "day", Type: txlog.Date, Nullable: true},
		{Name: "ok", Type: txlog.Boolean, Nullable: true},
		{Name: "tags", Type: &txlog.ArrayType{ElementType: txlog.String, ContainsNull: true}, Nullable: true},
	}}
	in := "id,name,score,day,ok,tags\n" +
		"1,a,1.5,2024-03-07,true,\"[\"\"x\"\"]\"\n" +
		"2,,,,,\n" +
		"3,c,oops,,,\n" + // bad value in a nullable column: quarantined, not null
		",d,1,,,\n" + // missing required id
		"5,e,1,19789,,\n" + // a date as a number
		"6,f,1,,maybe,\n"
	r := read(t, in, &source.Options{Schema: st}, nil)
	if r.err != nil || len(r.rows) != 2 || len(r.quar) != 4 {
		t.Fatalf("%v rows %v reasons %q", r.err, r.rows, r.reasons())
	}
	if r.rows[0]["score"] != 1.5 || r.rows[0]["day"] != "2024-03-07" || r.rows[0]["ok"] != true || fmt.Sprint(r.rows[0]["tags"]) != "[x]" {
		t.Fatalf("row 1: %v", r.rows[0])
	}
	if r.rows[1]["name"] != "" || r.rows[1]["score"] != nil {
		t.Fatalf("row 2: %v", r.rows[1])
	}
	// A column the table lacks is refused unless MergeSchema adds it.
	r = read(t, "id,extra\n1,x\n", &source.Options{Schema: st}, nil)
	var ce *source.ConfigError
	if !errors.As(r.err, &ce) || !strings.Contains(r.err.Error(), "--merge-schema") {
		t.Fatalf("unknown CSV column: %v", r.err)
	}
	r = read(t, `{"id":1,"extra":"x"}`+"\n"+`{"id":2,"more":7}`+"\n", &source.Options{Schema: st, MergeSchema: true}, nil)
	if r.err != nil || len(r.rows) != 2 || r.rows[0]["extra"] != "x" || r.rows[1]["more"] != "7" || r.rows[1]["extra"] != nil {
		t.Fatalf("merge: %v %v", r.err, r.rows)
	}
	r = read(t, `{"id":1,"extra":"x"}`+"\n", &source.Options{Schema: st}, nil)
	if len(r.quar) != 1 || !strings.Contains(r.quar[0]["reason"].(string), "--merge-schema") {
		t.Fatalf("unknown JSON field: %v %v", r.rows, r.quar)
	}
}

func TestMappingValidation(t *testing.T) {
	for _, m := range []*source.Mapping{
		{Fields: map[string]string{"nope": "x"}},
		{Fields: map[string]string{"event_date": "d"}},
		{Fields: map[string]string{"user_id": ""}},
	} {
		if _, err := source.NewStandardizer(&source.Options{Mapping: m}); err == nil {
			t.Errorf("mapping %v accepted", m.Fields)
		}
	}
	var m source.Mapping
	if err := m.ParseMap("user_id=uid, item_id = product"); err != nil || m.Fields["item_id"] != "product" {
		t.Fatal(err, m.Fields)
	}
	if err := m.ParseMap("user_id"); err == nil {
		t.Fatal("a pair without = is accepted")
	}
}

func TestSiblingURI(t *testing.T) {
	for in, want := range map[string]string{
		"./events":                      "./events_quarantine",
		"/data/events/":                 "/data/events_quarantine",
		"s3://b/events?region=x":        "s3://b/events_quarantine?region=x",
		"s3://b/p/events/?region=x&a=b": "s3://b/p/events_quarantine?region=x&a=b",
		"file:///data/events":           "file:///data/events_quarantine",
		"mem://events":                  "mem://events_quarantine",
		"azblob://c/t?protocol=http":    "azblob://c/t_quarantine?protocol=http",
	} {
		got, err := source.QuarantineURI(in)
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
	if _, err := source.QuarantineURI("s3://bucket"); err == nil {
		t.Error("a bucket root has no sibling")
	}
}

// An unclosed quote near the start of a large file is one quarantined record, found in linear
// time (a quadratic rescan of the growing record would not finish).
func TestUnclosedQuoteIsLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString("user_id,item_id,interaction_type,timestamp\nu,\"i,view,2024-03-07T10:00:00Z\n")
	for range 100_000 {
		b.WriteString("u,i,view,2024-03-07T10:00:00Z\n")
	}
	r := read(t, b.String(), nil, nil)
	if r.err != nil || len(r.rows) != 0 || len(r.quar) != 1 || !strings.Contains(r.quar[0]["reason"].(string), "unclosed") {
		t.Fatalf("%v rows %d reasons %q", r.err, len(r.rows), r.reasons())
	}
}
