package compaction

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/txlog"
)

func filters(t *testing.T, exprs ...string) []reader.Filter {
	t.Helper()
	var out []reader.Filter
	for _, e := range exprs {
		f, err := reader.ParseFilter(e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

func without(rows []string, sub string) []string {
	var out []string
	for _, r := range rows {
		if !strings.Contains(r, sub) {
			out = append(out, r)
		}
	}
	return out
}

func TestDeleteRewritesTouchedFiles(t *testing.T) {
	ctx := context.Background()
	tb := newTable(t, memURI(), nil)
	for b := 0; b < 4; b++ {
		appendRows(t, tb, rowsN(21, 3, string(rune('a'+b))))
	}
	before := latest(t, tb)
	all := canonicalRows(t, tb, before)
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	res, err := Delete(ctx, tb, &DeleteOptions{Where: filters(t, "user_id = u3"), Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	mem.AssertSize(t, 0)
	want := without(all, `"user_id":"u3"`)
	if !res.Committed || res.RowsDeleted != int64(len(all)-len(want)) || res.FilesRemoved != res.FilesAdded || res.FilesRemoved == 0 {
		t.Fatalf("result: %+v", res)
	}
	if got := canonicalRows(t, tb, latest(t, tb)); !slices.Equal(got, want) {
		t.Fatalf("rows after delete: %d, want %d", len(got), len(want))
	}
	old, _ := tb.SnapshotAt(ctx, before.Version())
	if !slices.Equal(canonicalRows(t, tb, old), all) {
		t.Fatal("time travel before the delete")
	}
	hist, _ := tb.History(ctx, 1)
	ci := hist[0].CommitInfo
	if ci.Operation != "DELETE" || ci.OperationMetrics["numDeletedRows"] != "12" || ci.OperationParameters["predicate"] != `["user_id = u3"]` {
		t.Fatalf("commitInfo: %+v", ci)
	}
	// Nothing matches: nothing is committed, and no file is left behind.
	v := latest(t, tb).Version()
	res, err = Delete(ctx, tb, &DeleteOptions{Where: filters(t, "user_id = nobody")})
	if err != nil || res.Committed || latest(t, tb).Version() != v {
		t.Fatalf("empty delete: %+v, %v", res, err)
	}
	// A partition and a data condition: only that partition's rows go.
	res, err = Delete(ctx, tb, &DeleteOptions{Where: filters(t, "event_date = 2024-01-01", "item_id = i0")})
	if err != nil || res.FilesScanned != 4 {
		t.Fatalf("mixed delete: %+v, %v", res, err)
	}
	if _, err := Delete(ctx, tb, &DeleteOptions{Where: filters(t, "nope = 1")}); !errors.Is(err, reader.ErrInvalidFilter) {
		t.Fatalf("unknown column: %v", err)
	}
	if _, err := Delete(ctx, tb, nil); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("no condition: %v", err)
	}
}

func TestDeleteWholePartitions(t *testing.T) {
	ctx := context.Background()
	tb := newTable(t, memURI(), nil)
	appendRows(t, tb, rowsN(30, 3, "a"))
	appendRows(t, tb, rowsN(30, 3, "b"))
	res, err := Delete(ctx, tb, &DeleteOptions{Where: filters(t, "event_date >= 2024-01-02")})
	if err != nil {
		t.Fatal(err)
	}
	if res.FilesRemoved != 4 || res.FilesAdded != 0 || res.RowsDeleted != 40 {
		t.Fatalf("result: %+v", res)
	}
	if got := len(canonicalRows(t, tb, latest(t, tb))); got != 20 {
		t.Fatalf("rows: %d", got)
	}
}

// Conflict rules: a blind append racing the delete does not fail it; an optimize that
// rewrote a file the delete read does, and the delete leaves no file behind.
func TestDeleteConflicts(t *testing.T) {
	ctx := context.Background()
	tb := newTable(t, memURI(), nil)
	for b := 0; b < 3; b++ {
		appendRows(t, tb, rowsN(9, 3, string(rune('a'+b))))
	}
	testHookBeforeDeleteCommit = func() { appendRows(t, tb, rowsN(3, 3, "x")) }
	res, err := Delete(ctx, tb, &DeleteOptions{Where: filters(t, "user_id = u1")})
	testHookBeforeDeleteCommit = nil
	if err != nil || !res.Committed {
		t.Fatalf("delete beside a blind append: %+v, %v", res, err)
	}
	if got := len(canonicalRows(t, tb, latest(t, tb))); got != 27-6+3 { // u1 is 2 of every 9 rows
		t.Fatalf("rows: %d", got)
	}

	testHookBeforeDeleteCommit = func() {
		if _, err := Optimize(ctx, tb, nil); err != nil {
			t.Fatal(err)
		}
	}
	defer func() { testHookBeforeDeleteCommit = nil }()
	_, err = Delete(ctx, tb, &DeleteOptions{Where: filters(t, "user_id = u2")})
	var ce *txlog.ConflictError
	if !errors.As(err, &ce) || ce.Retryable() {
		t.Fatalf("delete after a concurrent optimize: %v", err)
	}
	// The files the failed delete wrote are gone: every object is referenced by some version.
	snap := latest(t, tb)
	referenced := map[string]bool{}
	for v := int64(0); v <= snap.Version(); v++ {
		s, err := tb.SnapshotAt(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range s.Files() {
			referenced[a.Path] = true
		}
	}
	it := tb.Bucket().List(nil)
	for {
		obj, err := it.Next(ctx)
		if err != nil {
			break
		}
		if !strings.HasPrefix(obj.Key, "_delta_log/") && !referenced[obj.Key] {
			t.Errorf("leftover file %s", obj.Key)
		}
	}
}
