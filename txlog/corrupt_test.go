package txlog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"gocloud.dev/gcerrors"
)

// A commit file that is empty (zero bytes, or blank lines only) or that does not parse is a
// *CorruptError naming it, for snapshot loads, updates, time travel and history; it is never
// read as an empty commit.
func TestCorruptLatestCommit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		empty   bool
	}{
		{"zero bytes", "", true},
		{"blank lines", "\n  \n\t\n", true},
		{"truncated JSON", `{"add":{"path":"day=1/x.parquet","partitionValues":{"day":"1"},"si`, false},
		{"not an object", "null\n", false},
		{"not JSON", "hello\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			l, b := newTestLog(t, &LogOptions{DisableAutoCheckpoint: true})
			s := createTable(t, l, nil)
			for i := range 2 {
				commit(t, l, s, addAction(fmt.Sprintf("day=1/f%d.parquet", i), "1"))
				var err error
				if s, err = l.Snapshot(ctx); err != nil {
					t.Fatal(err)
				}
			}
			// s is version 2; version 3 is corrupt.
			if err := b.WriteAll(ctx, CommitKey(3), []byte(tc.content), nil); err != nil {
				t.Fatal(err)
			}
			check := func(what string, err error) {
				t.Helper()
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Path != CommitKey(3) {
					t.Fatalf("%s: want a *CorruptError naming %s, got %v", what, CommitKey(3), err)
				}
				if !strings.Contains(err.Error(), CommitKey(3)) {
					t.Errorf("%s: message %q does not name the file", what, err)
				}
				if tc.empty && !errors.Is(err, ErrEmptyLogFile) {
					t.Errorf("%s: %v does not match ErrEmptyLogFile", what, err)
				}
			}
			_, err := l.Snapshot(ctx)
			check("Snapshot", err)
			_, err = l.SnapshotAt(ctx, 3)
			check("SnapshotAt(3)", err)
			_, err = l.Update(ctx, s)
			check("Update", err)
			_, err = l.History(ctx, 0)
			check("History", err)
			_, err = l.History(ctx, 1)
			check("History(limit 1)", err)

			// Older versions are still readable.
			if old, err := l.SnapshotAt(ctx, 2); err != nil || len(old.Files()) != 2 {
				t.Fatalf("SnapshotAt(2): %v", err)
			}

			// A writer holding the snapshot of version 2 does not commit on top of the corrupt
			// version 3.
			txn := l.NewTransaction(s, nil)
			txn.AddActions(addAction("day=1/late.parquet", "1"))
			v, err := txn.Commit(ctx)
			if err == nil {
				t.Fatalf("commit on top of a corrupt log succeeded at version %d", v)
			}
			check("Commit", err)
			for _, v := range []int64{4, 5} {
				if _, err := b.Attributes(ctx, CommitKey(v)); gcerrors.Code(err) != gcerrors.NotFound {
					t.Errorf("version %d was written on top of the corrupt log (err %v)", v, err)
				}
			}
		})
	}
}

// An empty commit below the newest checkpoint does not stop snapshot loads (the checkpoint
// holds the state), but history, which reads every commit, reports it.
func TestEmptyCommitBelowCheckpoint(t *testing.T) {
	ctx := context.Background()
	l, b := newTestLog(t, &LogOptions{DisableAutoCheckpoint: true})
	s := createTable(t, l, nil)
	for i := range 3 {
		commit(t, l, s, addAction(fmt.Sprintf("day=1/f%d.parquet", i), "1"))
		s, _ = l.Snapshot(ctx)
	}
	if _, err := l.Checkpoint(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteAll(ctx, CommitKey(1), nil, nil); err != nil {
		t.Fatal(err)
	}
	if snap, err := l.Snapshot(ctx); err != nil || len(snap.Files()) != 3 {
		t.Fatalf("Snapshot from the checkpoint: %v", err)
	}
	_, err := l.History(ctx, 0)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Path != CommitKey(1) || !errors.Is(err, ErrEmptyLogFile) {
		t.Fatalf("History: want an empty-file *CorruptError naming %s, got %v", CommitKey(1), err)
	}
}
