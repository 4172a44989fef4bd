package txlog

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"
)

// In-commit timestamps drive time travel and history when the table enables them, whatever the
// commit files' modification times.
func TestInCommitTimestamps(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	l, _ := newTestLog(t, &LogOptions{DisableAutoCheckpoint: true, Now: func() time.Time { return clock }})
	txn := l.NewTransaction(nil, &TxnOptions{Operation: "CREATE TABLE"})
	txn.SetProtocol(Protocol{MinReaderVersion: 1, MinWriterVersion: 7, WriterFeatures: []string{"inCommitTimestamp"}})
	txn.SetMetadata(Metadata{ID: "ict", Format: Format{Provider: "parquet"}, SchemaString: testSchema().String(),
		PartitionColumns: []string{"day"}, Configuration: map[string]string{"delta.enableInCommitTimestamps": "true"}})
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		clock = clock.Add(24 * time.Hour)
		s, _ := l.Snapshot(ctx)
		commit(t, l, s, addAction(fmt.Sprintf("day=1/f%d.parquet", i), "1"))
	}
	// A clock that goes backwards still gives increasing in-commit timestamps.
	clock = clock.Add(-48 * time.Hour)
	s, _ := l.Snapshot(ctx)
	commit(t, l, s, addAction("day=1/late.parquet", "1"))
	hist, err := l.History(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hist {
		if h.CommitInfo.InCommitTimestamp == nil || *h.CommitInfo.InCommitTimestamp != h.Timestamp {
			t.Fatalf("version %d: history timestamp %d is not its in-commit timestamp", h.Version, h.Timestamp)
		}
	}
	if hist[0].Timestamp <= hist[1].Timestamp {
		t.Fatalf("in-commit timestamps must increase: %d after %d", hist[0].Timestamp, hist[1].Timestamp)
	}
	at := time.Date(2020, 1, 2, 12, 0, 0, 0, time.UTC) // between version 1 and 2
	snap, err := l.SnapshotAsOf(ctx, at)
	if err != nil || snap.Version() != 1 {
		t.Fatalf("as of %s: %v %v", at, snap, err)
	}
	if got := snap.Timestamp(); !got.Equal(time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("snapshot timestamp %s", got)
	}
}

// A multi-part checkpoint is read when complete; an incomplete set is skipped for an older
// checkpoint or the JSON commits.
func TestMultiPartCheckpoint(t *testing.T) {
	ctx := context.Background()
	l, b := newTestLog(t, &LogOptions{DisableAutoCheckpoint: true})
	s := createTable(t, l, nil)
	for i := range 4 {
		commit(t, l, s, addAction(fmt.Sprintf("day=1/f%d.parquet", i), "1"))
		s, _ = l.Snapshot(ctx)
	}
	acts := s.checkpointActions(time.Now())
	half := len(acts) / 2
	for i, part := range [][]Action{acts[:half], acts[half:]} {
		var buf bytes.Buffer
		if err := EncodeCheckpoint(&buf, part); err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("%s%020d.checkpoint.%010d.%010d.parquet", LogDir, 4, i+1, 2)
		if err := b.WriteAll(ctx, key, buf.Bytes(), nil); err != nil {
			t.Fatal(err)
		}
	}
	for v := int64(0); v <= 4; v++ {
		b.Delete(ctx, CommitKey(v))
	}
	got, err := l.Snapshot(ctx)
	if err != nil || got.Version() != 4 || got.NumFiles() != 4 || got.checkpointVersion != 4 {
		t.Fatalf("from a 2-part checkpoint: %v", err)
	}
	// Remove part 2: the set is incomplete, and with the JSON gone there is nothing to build from.
	b.Delete(ctx, fmt.Sprintf("%s%020d.checkpoint.%010d.%010d.parquet", LogDir, 4, 2, 2))
	if _, err := l.Snapshot(ctx); err == nil {
		t.Fatal("an incomplete multi-part checkpoint must not be used")
	}
}
