package txlog

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"
)

// TestMultiPartCheckpointWrite: with CheckpointPartActions, a checkpoint of more actions is
// written as a multi-part checkpoint that loads back to the same snapshot.
func TestMultiPartCheckpointWrite(t *testing.T) {
	ctx := context.Background()
	l, b := newTestLog(t, &LogOptions{DisableAutoCheckpoint: true, CheckpointPartActions: 10})
	s := createTable(t, l, nil)
	var acts []Action
	for i := range 25 {
		acts = append(acts, addAction(fmt.Sprintf("day=1/f%02d.parquet", i), "1"))
	}
	commit(t, l, s, acts...)
	s, _ = l.Snapshot(ctx)
	commit(t, l, s, removeAction("day=1/f00.parquet"))
	s, err := l.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Checkpoint(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	// protocol, metaData, 24 adds, 1 tombstone: 27 actions in 3 parts.
	if res.Actions != 27 {
		t.Errorf("checkpoint wrote %d actions, want 27", res.Actions)
	}
	var parts []string
	it := b.List(&blob.ListOptions{Prefix: LogDir, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(obj.Key, ".checkpoint.") {
			parts = append(parts, strings.TrimPrefix(obj.Key, LogDir))
		}
	}
	want := []string{
		"00000000000000000002.checkpoint.0000000001.0000000003.parquet",
		"00000000000000000002.checkpoint.0000000002.0000000003.parquet",
		"00000000000000000002.checkpoint.0000000003.0000000003.parquet",
	}
	if !slices.Equal(parts, want) {
		t.Fatalf("checkpoint files %v, want %v", parts, want)
	}
	lc, err := l.ReadLastCheckpoint(ctx)
	if err != nil || lc.Parts == nil || *lc.Parts != 3 || lc.Version != 2 {
		t.Fatalf("_last_checkpoint %+v, %v", lc, err)
	}
	for v := int64(0); v <= 2; v++ {
		if err := b.Delete(ctx, CommitKey(v)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := l.Snapshot(ctx)
	if err != nil || got.checkpointVersion != 2 || got.NumFiles() != 24 {
		t.Fatalf("from the 3-part checkpoint: %v (files %d)", err, got.NumFiles())
	}
	if len(got.Tombstones(l.opts.Now())) != 1 {
		t.Errorf("tombstones %d, want 1", len(got.Tombstones(l.opts.Now())))
	}
}

// TestV2SidecarCheckpointWrite: on a v2Checkpoint table, CheckpointPartActions puts the files
// in Parquet sidecars; the checkpoint loads back, and UnreferencedSidecars names the sidecars
// of an older checkpoint once a newer one is kept.
func TestV2SidecarCheckpointWrite(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l, b := newTestLog(t, &LogOptions{DisableAutoCheckpoint: true, CheckpointPartActions: 10, Now: func() time.Time { return now }})
	txn := l.NewTransaction(nil, &TxnOptions{Operation: "CREATE TABLE"})
	txn.SetProtocol(Protocol{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: []string{"v2Checkpoint"}, WriterFeatures: []string{"v2Checkpoint"}})
	txn.SetMetadata(Metadata{ID: "t1", Format: Format{Provider: "parquet"}, SchemaString: testSchema().String(),
		PartitionColumns: []string{"day"}, Configuration: map[string]string{}})
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	s, _ := l.Snapshot(ctx)
	var acts []Action
	for i := range 25 {
		acts = append(acts, addAction(fmt.Sprintf("day=1/f%02d.parquet", i), "1"))
	}
	commit(t, l, s, acts...)
	s, err := l.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Checkpoint(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(res.Path, ".json") || res.Actions != 1+2+25 {
		t.Errorf("checkpoint %s with %d actions, want a V2 JSON checkpoint of 28", res.Path, res.Actions)
	}
	first := listKeys(t, b, SidecarDir)
	if len(first) != 3 {
		t.Fatalf("sidecars %v, want 3", first)
	}
	for v := int64(0); v <= 1; v++ {
		b.Delete(ctx, CommitKey(v))
	}
	got, err := l.Snapshot(ctx)
	if err != nil || got.checkpointVersion != 1 || got.NumFiles() != 25 {
		t.Fatalf("from the sidecar checkpoint: %v", err)
	}

	// A second checkpoint at version 2 references new sidecars only.
	commit(t, l, got, addAction("day=1/g.parquet", "1"))
	s2, err := l.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Checkpoint(ctx, s2); err != nil {
		t.Fatal(err)
	}
	if n := len(listKeys(t, b, SidecarDir)); n != 6 {
		t.Fatalf("%d sidecars after the second checkpoint, want 6", n)
	}
	unref, err := UnreferencedSidecars(ctx, b, 2, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(unref, first) {
		t.Errorf("unreferenced %v, want the first checkpoint's %v", unref, first)
	}
	if unref, err := UnreferencedSidecars(ctx, b, 1, time.Now().Add(time.Hour)); err != nil || len(unref) != 0 {
		t.Errorf("keeping both checkpoints: unreferenced %v, %v; want none", unref, err)
	}
	if unref, err := UnreferencedSidecars(ctx, b, 2, time.Time{}); err != nil || len(unref) != 0 {
		t.Errorf("nothing is older than the zero time: unreferenced %v, %v", unref, err)
	}
}

func listKeys(t *testing.T, b *blob.Bucket, prefix string) []string {
	t.Helper()
	var out []string
	it := b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	for {
		obj, err := it.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !obj.IsDir {
			out = append(out, obj.Key)
		}
	}
	slices.Sort(out)
	return out
}
