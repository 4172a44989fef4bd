package source_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/uuid"

	"github.com/lakehouse/lake/internal/rowfmt"
	"github.com/lakehouse/lake/internal/testutil/tablerows"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/writer/source"
)

// fixedNow is the clock of the tests: timestamps after it plus a day are quarantined.
var fixedNow = time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC)

// result is what a Read gave: rows and quarantine rows as JSON objects, and the counts.
type result struct {
	rows   []map[string]any
	quar   []map[string]any
	counts source.Counts
	err    error
}

func (r result) reasons() []string {
	var out []string
	for _, q := range r.quar {
		out = append(out, q["reason"].(string))
	}
	return out
}

// read standardises input with opts (Now defaults to fixedNow) and returns what came out,
// checking that no Arrow memory leaks and that the counts add up.
func read(t *testing.T, input string, opts *source.Options, ro *source.ReadOptions) result {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	o := source.Options{}
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = func() time.Time { return fixedNow }
	}
	o.Allocator = mem
	s, err := source.NewStandardizer(&o)
	if err != nil {
		return result{err: err}
	}
	defer s.Close()
	var res result
	for b, err := range source.Read(strings.NewReader(input), ro, s) {
		if err != nil {
			res.err = err
			break
		}
		res.counts.Add(b.Counts)
		if b.Rows != nil {
			res.rows = append(res.rows, jsonRows(t, b.Rows)...)
		}
		if b.Quarantine != nil {
			res.quar = append(res.quar, jsonRows(t, b.Quarantine)...)
		}
		b.Release()
	}
	c := res.counts
	if res.err == nil && c.Read != c.Written+c.Quarantined+c.Duplicate {
		t.Fatalf("counts do not add up: %+v", c)
	}
	if res.err == nil && (int64(len(res.rows)) != c.Written || int64(len(res.quar)) != c.Quarantined) {
		t.Fatalf("counts %+v, but %d rows and %d quarantined", c, len(res.rows), len(res.quar))
	}
	return res
}

func jsonRows(t testing.TB, rec arrow.RecordBatch) []map[string]any {
	t.Helper()
	var buf bytes.Buffer
	w, err := rowfmt.NewWriter(&buf, "jsonl", rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func memURI() string { return "mem://source-test-" + uuid.NewString() }

func newTable(t *testing.T) *table.Table {
	t.Helper()
	tb, err := table.Create(context.Background(), memURI(), table.InteractionSchema(), &table.CreateOptions{PartitionColumns: []string{"event_date"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() })
	return tb
}

// tableRows reads a table's latest snapshot as JSON rows.
func tableRows(t *testing.T, uri string) []map[string]any { return tablerows.Latest(t, uri) }

func ptr[T any](v T) *T { return &v }
