package compaction

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// RestoreOptions say which version Restore brings back: Version, or (when Timestamp is not
// zero) the version current at Timestamp.
type RestoreOptions struct {
	Version   int64
	Timestamp time.Time
	// Now is the clock of the removes' deletionTimestamp (default time.Now).
	Now func() time.Time
}

// RestoreResult describes a restore.
type RestoreResult struct {
	// Version is the version committed (the latest when nothing had to change); Restored the
	// version whose files were brought back.
	Version   int64
	Restored  int64
	Committed bool
	// FilesAdded are the files of the restored version that the table had lost; FilesRemoved
	// the files the table had that the restored version does not.
	FilesAdded, FilesRemoved int64
	BytesAdded, BytesRemoved int64
	// NumFiles and Bytes describe the table after the restore.
	NumFiles int
	Bytes    int64
}

// Restore commits a new version whose files are those of an earlier version: adds
// (dataChange=true) for the files of that version the table no longer has, removes for the
// files the table has that it did not. The metadata of that version comes back too when it
// differs (the protocol is never downgraded). Before committing, Restore checks that every
// file to add is still in storage; when vacuum deleted some, it fails with a
// *MissingFilesError naming them and commits nothing. Files appended concurrently stay.
func Restore(ctx context.Context, t *table.Table, opts *RestoreOptions) (*RestoreResult, error) {
	var o RestoreOptions
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	cur, err := t.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	if err := cur.Protocol().CheckWrite(cur.Schema()); err != nil {
		return nil, err
	}
	var target *txlog.Snapshot
	if !o.Timestamp.IsZero() {
		target, err = t.SnapshotAsOf(ctx, o.Timestamp)
	} else {
		if o.Version < 0 {
			return nil, &OptionError{Option: "Version", Problem: fmt.Sprintf("%d is negative; versions start at 0", o.Version)}
		}
		if o.Version > cur.Version() {
			return nil, &OptionError{Option: "Version", Problem: fmt.Sprintf("%d does not exist yet; the latest version is %d", o.Version, cur.Version())}
		}
		target, err = t.SnapshotAt(ctx, o.Version)
	}
	if err != nil {
		return nil, err
	}
	res := &RestoreResult{Version: cur.Version(), Restored: target.Version()}

	curFiles := map[string]*txlog.Add{}
	cur.AllFiles(func(a *txlog.Add) bool {
		curFiles[txlog.FileKey(a.Path, a.DeletionVector)] = a
		return true
	})
	var adds []*txlog.Add
	want := map[string]bool{}
	for _, a := range target.Files() {
		k := txlog.FileKey(a.Path, a.DeletionVector)
		want[k] = true
		if curFiles[k] == nil {
			adds = append(adds, a)
		}
	}
	var removes []*txlog.Add
	for _, a := range cur.Files() {
		if !want[txlog.FileKey(a.Path, a.DeletionVector)] {
			removes = append(removes, a)
		}
	}
	if err := checkPresent(ctx, t, target.Version(), adds); err != nil {
		return nil, err
	}
	for _, a := range target.Files() {
		res.NumFiles++
		res.Bytes += a.Size
	}
	// The metadata comes back (under the table's id); the protocol is never downgraded.
	metaChanged := metadataChanged(cur, target)
	if len(adds) == 0 && len(removes) == 0 && !metaChanged {
		return res, nil
	}

	now := o.Now().UnixMilli()
	acts := make([]txlog.Action, 0, len(adds)+len(removes))
	for _, a := range adds {
		c := *a
		c.DataChange = true
		acts = append(acts, txlog.Action{Add: &c})
		res.FilesAdded++
		res.BytesAdded += a.Size
	}
	for _, a := range removes {
		size := a.Size
		ext := true
		acts = append(acts, txlog.Action{Remove: &txlog.Remove{
			Path: a.Path, DeletionTimestamp: &now, DataChange: true, ExtendedFileMetadata: &ext,
			PartitionValues: a.PartitionValues, Size: &size, Stats: a.Stats, Tags: a.Tags,
			DeletionVector: a.DeletionVector, BaseRowID: a.BaseRowID, DefaultRowCommitVersion: a.DefaultRowCommitVersion,
		}})
		res.FilesRemoved++
		res.BytesRemoved += a.Size
	}
	params := map[string]any{"version": strconv.FormatInt(target.Version(), 10)}
	if !o.Timestamp.IsZero() {
		params["timestamp"] = o.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	txn := t.Log().NewTransaction(cur, &txlog.TxnOptions{
		Operation:           "RESTORE",
		OperationParameters: params,
		OperationMetrics: map[string]any{
			"numRestoredFiles":       strconv.FormatInt(res.FilesAdded, 10),
			"restoredFilesSize":      strconv.FormatInt(res.BytesAdded, 10),
			"numRemovedFiles":        strconv.FormatInt(res.FilesRemoved, 10),
			"removedFilesSize":       strconv.FormatInt(res.BytesRemoved, 10),
			"numOfFilesAfterRestore": strconv.Itoa(res.NumFiles),
			"tableSizeAfterRestore":  strconv.FormatInt(res.Bytes, 10),
		},
	})
	// The outcome depends on the whole table: a concurrent delete or rewrite is a conflict.
	txn.ReadWholeTable()
	if metaChanged {
		md := target.Metadata()
		md.ID = cur.Metadata().ID
		txn.SetMetadata(md)
	}
	txn.AddActions(acts...)
	v, err := txn.Commit(ctx)
	if err != nil {
		return nil, err
	}
	res.Version, res.Committed = v, true
	return res, nil
}

// checkPresent fails with a *MissingFilesError when files (or their deletion vectors) are gone
// from storage.
func checkPresent(ctx context.Context, t *table.Table, version int64, files []*txlog.Add) error {
	var mu sync.Mutex
	var missing []string
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(DefaultVacuumParallelism)
	for _, a := range files {
		g.Go(func() error {
			keys := []string{}
			k, err := reader.ObjectKey(t, a.Path)
			if err != nil {
				return err
			}
			keys = append(keys, k)
			if dk, err := reader.DeletionVectorKey(t, a.DeletionVector); err != nil {
				return err
			} else if dk != "" {
				keys = append(keys, dk)
			}
			for _, k := range keys {
				ok, err := t.Bucket().Exists(gctx, k)
				if err != nil {
					return fmt.Errorf("restore: %w", err)
				}
				if !ok {
					mu.Lock()
					missing = append(missing, a.Path)
					mu.Unlock()
					break
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return &MissingFilesError{Version: version, Paths: missing}
	}
	return nil
}
