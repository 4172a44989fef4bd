package source_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/writer/source"
)

func testBatch(t *testing.T) *source.Batch {
	t.Helper()
	s, err := source.NewStandardizer(&source.Options{Now: func() time.Time { return time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, l := range []string{
		`{"user_id":"u1","item_id":"i1","interaction_type":"view","timestamp":"2024-03-07T10:00:00Z"}`,
		`{"user_id":"u2","item_id":"i1","interaction_type":"view","timestamp":"2024-03-08T10:00:00Z"}`,
		`{"user_id":"u3","interaction_type":"view","timestamp":"2024-03-08T10:00:00Z"}`,
	} {
		if err := s.AddJSON([]byte(l), source.Position{}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.Flush()
	if err != nil || b.Counts != (source.Counts{Read: 3, Written: 2, Quarantined: 1}) {
		t.Fatalf("%v %+v", err, b.Counts)
	}
	return b
}

// A process that dies between the quarantine commit and the table's commit, then gives the same
// batch again, ends with every record exactly once in one of the two tables.
func TestSinkCrashBetweenCommits(t *testing.T) {
	ctx := context.Background()
	uri := "mem://sink-" + uuid.NewString()
	tb, err := table.Create(ctx, uri, table.InteractionSchema(), &table.CreateOptions{PartitionColumns: []string{"event_date"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	qURI, _ := source.QuarantineURI(uri)
	b := testBatch(t)
	defer b.Release()

	k, _ := source.OpenSink(ctx, tb, qURI, nil)
	p, err := k.Begin(ctx, "app", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	// The quarantine commit lands; the process dies before the table's.
	if err := source.CommitQuarantineOnly(ctx, p); err != nil {
		t.Fatal(err)
	}
	k.Close()
	if len(tableRows(t, qURI)) != 1 || len(tableRows(t, uri)) != 0 {
		t.Fatal("setup")
	}

	k2, _ := source.OpenSink(ctx, tb, qURI, nil)
	defer k2.Close()
	res, err := k2.Commit(ctx, b, "app", 1, map[string]any{"file": "x"})
	if err != nil || res.Skipped {
		t.Fatalf("%v %+v", err, res)
	}
	if q, m := len(tableRows(t, qURI)), len(tableRows(t, uri)); q != 1 || m != 2 {
		t.Fatalf("after the retry: quarantine %d rows, table %d rows", q, m)
	}
	// Once both landed, the batch is skipped.
	res, err = k2.Commit(ctx, b, "app", 1, nil)
	if err != nil || !res.Skipped {
		t.Fatalf("%v %+v", err, res)
	}
	if q, m := len(tableRows(t, qURI)), len(tableRows(t, uri)); q != 1 || m != 2 {
		t.Fatalf("after the second retry: quarantine %d rows, table %d rows", q, m)
	}
	// The commit records the counts.
	h, err := tb.History(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := h[0].CommitInfo.OperationMetrics
	if m["numSourceRows"] != "3" || m["numQuarantinedRows"] != "1" || m["numOutputRows"] != "2" {
		t.Fatalf("operationMetrics %v", m)
	}
	if !strings.Contains(h[0].CommitInfo.OperationParameters["file"].(string), "x") {
		t.Fatalf("operationParameters %v", h[0].CommitInfo.OperationParameters)
	}
}
