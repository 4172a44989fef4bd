// Package tablerows reads a table's rows in tests, in two shapes: sorted JSON lines (a canonical
// form to compare two tables or two versions) and JSON objects. It is a package of its own, not
// part of testutil, because it imports reader and table, whose own tests use testutil.
package tablerows

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/lakehouse/lake/internal/rowfmt"
	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// Lines returns the rows of snap (the columns named, or all) as JSON lines in `lake cat
// --format jsonl` form, sorted.
func Lines(t testing.TB, tbl *table.Table, snap *txlog.Snapshot, columns ...string) []string {
	t.Helper()
	ctx := context.Background()
	sc, err := reader.NewScan(ctx, tbl, snap, &reader.ScanOptions{Columns: columns})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	out, err := rowfmt.NewWriter(&buf, "jsonl", sc.Schema())
	if err != nil {
		t.Fatal(err)
	}
	for rec, err := range sc.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if err := out.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Flush(); err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSpace(buf.String())
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	slices.Sort(lines)
	return lines
}

// Latest opens the table at uri and returns its latest snapshot's rows (the columns named, or
// all) as JSON objects, in the order of Lines.
func Latest(t testing.TB, uri string, columns ...string) []map[string]any {
	t.Helper()
	ctx := context.Background()
	tbl, err := table.Open(ctx, uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range Lines(t, tbl, snap, columns...) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}
