package compaction

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"

	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// TempDir is the folder at the table root where local writes keep their temporary files
// (internal/storage); vacuum clears old leftovers there.
const TempDir = ".lake-tmp/"

// listPageSize is the page size of vacuum's listing. Object stores cap pages (S3 at 1,000
// keys); a local directory's listing (fileblob) walks and stats the whole tree again for every
// page, so a small page makes it quadratic: 1,000-key pages listed 50,000 files at 3,200/s.
const listPageSize = 100_000

// DefaultVacuumParallelism is the number of deletes in flight.
const DefaultVacuumParallelism = 16

// VacuumOptions configure Vacuum. A nil *VacuumOptions is the defaults.
type VacuumOptions struct {
	// Retention: files removed from the table less than Retention ago, and files younger than
	// it, are kept. Default: the table's delta.deletedFileRetentionDuration (7 days). A shorter
	// retention than the table's is an *OptionError unless Force is set, because readers and
	// writers working on snapshots inside the table's retention may still need the files.
	Retention time.Duration
	Force     bool
	// DryRun lists what would be deleted without deleting anything: with the same table and
	// clock, Result.Deleted is exactly what a real run deletes.
	DryRun bool
	// KeepVersions are versions whose files are kept whatever their age (pinned model runs,
	// rollback targets). Each must still be readable from the log.
	KeepVersions []int64
	// Parallelism is the number of deletes in flight (default 16).
	Parallelism int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// VacuumResult describes a vacuum.
type VacuumResult struct {
	Version   int64         // the snapshot whose references were kept
	Retention time.Duration // the retention applied
	Cutoff    time.Time     // files older than this and not referenced are deleted
	// FilesListed is the number of objects listed under the table root (the log excluded);
	// ListSeconds the time the listing took.
	FilesListed int64
	ListSeconds float64
	// Deleted are the keys deleted (or, with DryRun, to delete), sorted; Bytes their size.
	// TempFiles counts the leftovers of .lake-tmp/ among them.
	Deleted   []string
	Bytes     int64
	TempFiles int
	DryRun    bool
}

// Vacuum deletes the files under t's root that no snapshot inside the retention references and
// that are older than the retention: data files and deletion vectors removed from the table
// before the cut-off, data files of writers that never committed, and temporary files of
// crashed local writers in .lake-tmp/. Kept are: the latest snapshot's files and deletion
// vectors, those of tombstones (removes) younger than the retention, those of
// VacuumOptions.KeepVersions, and every file whose modification time is inside the retention,
// referenced or not (a writer may be about to commit it). _delta_log/ and other hidden folders
// (names starting with _ or ., except partition folders) are never touched.
//
// Tombstones are what the log still has: checkpoints keep them for the table's
// delta.deletedFileRetentionDuration, so with a Retention longer than the table's, a file
// removed between the two may have lost its tombstone; it is then kept only by its
// modification time. Change files under _change_data/ are not vacuumed (lake writes none).
func Vacuum(ctx context.Context, t *table.Table, opts *VacuumOptions) (*VacuumResult, error) {
	var o VacuumOptions
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Parallelism <= 0 {
		o.Parallelism = DefaultVacuumParallelism
	}
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	// vacuumProtocolCheck: vacuum is a writer and honours the writer protocol.
	if err := snap.Protocol().CheckWrite(snap.Schema()); err != nil {
		return nil, err
	}
	tableRet := snap.DeletedFileRetention()
	switch {
	case o.Retention < 0:
		return nil, &OptionError{Option: "Retention", Problem: fmt.Sprintf("%s is negative", o.Retention)}
	case o.Retention == 0:
		o.Retention = tableRet
	case o.Retention < tableRet && !o.Force:
		return nil, &OptionError{Option: "Retention", Problem: fmt.Sprintf("%s is shorter than the table's delta.deletedFileRetentionDuration (%s): files that concurrent readers, writers and time travel inside the table's retention need could be deleted; give a longer retention, or force it if nothing reads or writes the table", o.Retention, tableRet)}
	}
	now := o.Now()
	cutoff := now.Add(-o.Retention)
	res := &VacuumResult{Version: snap.Version(), Retention: o.Retention, Cutoff: cutoff, DryRun: o.DryRun}

	keep, err := referenced(ctx, t, snap, cutoff, tableRet, o.KeepVersions)
	if err != nil {
		return nil, err
	}
	parts := map[string]bool{}
	for _, p := range snap.PartitionColumns() {
		parts[p] = true
	}
	// Column mapping stores partition folders under physical names.
	if snap.Configuration()["delta.columnMapping.mode"] == "name" || snap.Configuration()["delta.columnMapping.mode"] == "id" {
		for _, f := range snap.Schema().Fields {
			if parts[f.Name] {
				parts[f.PhysicalName()] = true
			}
		}
	}

	type victim struct {
		key  string
		size int64
	}
	var victims []victim
	start := time.Now()
	for token := blob.FirstPageToken; len(token) > 0; {
		objs, next, err := t.Bucket().ListPage(ctx, token, listPageSize, nil)
		if err != nil {
			return nil, fmt.Errorf("vacuum: list %s: %w", t.URI(), err)
		}
		token = next
		for _, obj := range objs {
			if obj.IsDir {
				continue
			}
			res.FilesListed++
			k := obj.Key
			if strings.HasPrefix(k, txlog.LogDir) || hidden(k, parts) {
				continue
			}
			if keep[k] || !obj.ModTime.Before(cutoff) {
				continue
			}
			victims = append(victims, victim{k, obj.Size})
		}
	}
	// The bucket hides the temporary files of local writes: read their folder directly.
	if dir := t.LocalDir(); dir != "" {
		ents, err := os.ReadDir(filepath.Join(dir, TempDir))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("vacuum: %w", err)
		}
		for _, e := range ents {
			info, err := e.Info()
			if err != nil || !info.Mode().IsRegular() {
				continue
			}
			res.FilesListed++
			if info.ModTime().Before(cutoff) {
				victims = append(victims, victim{TempDir + e.Name(), info.Size()})
				res.TempFiles++
			}
		}
	}
	res.ListSeconds = time.Since(start).Seconds()
	// Commits made while listing (a restore re-adding an old file) count too.
	if latest, err := t.Update(ctx, snap); err != nil {
		return nil, err
	} else if latest.Version() != snap.Version() {
		more, err := referenced(ctx, t, latest, cutoff, tableRet, nil)
		if err != nil {
			return nil, err
		}
		victims = slices.DeleteFunc(victims, func(v victim) bool { return more[v.key] })
	}
	slices.SortFunc(victims, func(a, b victim) int { return strings.Compare(a.key, b.key) })
	for _, v := range victims {
		res.Deleted = append(res.Deleted, v.key)
		res.Bytes += v.size
	}
	if o.DryRun || len(victims) == 0 {
		return res, nil
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Parallelism)
	var deleted atomic.Int64
	var mu sync.Mutex
	dirs := map[string]bool{}
	for _, v := range victims {
		g.Go(func() error {
			var err error
			if strings.HasPrefix(v.key, TempDir) {
				err = os.Remove(filepath.Join(t.LocalDir(), filepath.FromSlash(v.key)))
				if errors.Is(err, os.ErrNotExist) {
					err = nil
				}
			} else if err = t.Bucket().Delete(gctx, v.key); gcerrors.Code(err) == gcerrors.NotFound {
				err = nil
			}
			if err != nil {
				return fmt.Errorf("vacuum: delete %s: %w", v.key, err)
			}
			deleted.Add(1)
			if d := path.Dir(v.key); d != "." {
				mu.Lock()
				dirs[d] = true
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return res, fmt.Errorf("%w (%d of %d files deleted before the error; run vacuum again to finish)", err, deleted.Load(), len(victims))
	}
	if dir := t.LocalDir(); dir != "" {
		removeEmptyDirs(dir, dirs)
	}
	return res, nil
}

// referenced returns the bucket keys of the files that must be kept: the latest snapshot's
// files and deletion vectors, those of the tombstones removed at or after cutoff (or with no
// deletion time), and those of the versions in keepVersions.
func referenced(ctx context.Context, t *table.Table, snap *txlog.Snapshot, cutoff time.Time, tableRet time.Duration, keepVersions []int64) (map[string]bool, error) {
	keep := make(map[string]bool, snap.NumFiles()+64)
	add := func(p string, dv *txlog.DeletionVector) error {
		k, err := reader.ObjectKey(t, p)
		if err != nil {
			var ue *reader.UnsupportedError
			if errors.As(err, &ue) {
				return nil // outside the table's location: not ours to delete
			}
			return fmt.Errorf("vacuum: %w", err)
		}
		keep[k] = true
		if dv != nil {
			k, err := reader.DeletionVectorKey(t, dv)
			if err != nil {
				var ue *reader.UnsupportedError
				if errors.As(err, &ue) {
					return nil
				}
				return fmt.Errorf("vacuum: %w", err)
			}
			if k != "" {
				keep[k] = true
			}
		}
		return nil
	}
	addSnap := func(s *txlog.Snapshot) error {
		var err error
		s.AllFiles(func(a *txlog.Add) bool {
			err = add(a.Path, a.DeletionVector)
			return err == nil
		})
		return err
	}
	if err := addSnap(snap); err != nil {
		return nil, err
	}
	// Tombstones(x) keeps removes deleted at or after x - tableRet; we want cutoff.
	for _, r := range snap.Tombstones(cutoff.Add(tableRet)) {
		if err := add(r.Path, r.DeletionVector); err != nil {
			return nil, err
		}
	}
	for _, v := range keepVersions {
		s, err := t.SnapshotAt(ctx, v)
		if err != nil {
			return nil, fmt.Errorf("vacuum: version %d to keep: %w", v, err)
		}
		if err := addSnap(s); err != nil {
			return nil, err
		}
	}
	return keep, nil
}

// hidden reports whether key lies in a hidden folder or is a hidden file: a path element that
// starts with _ or ., unless it is the folder of a partition column (col=value, which may
// start with _).
func hidden(key string, parts map[string]bool) bool {
	elems := strings.Split(key, "/")
	for i, e := range elems {
		if e == "" || (e[0] != '_' && e[0] != '.') {
			continue
		}
		if i < len(elems)-1 {
			if col, _, ok := strings.Cut(e, "="); ok && parts[col] {
				continue
			}
		}
		return true
	}
	return false
}

// removeEmptyDirs removes the now empty folders of a local table that held deleted files, and
// their empty parents, never the table root or anything in the log.
func removeEmptyDirs(root string, dirs map[string]bool) {
	set := map[string]bool{}
	for d := range dirs {
		for ; d != "." && d != "/" && d != ""; d = path.Dir(d) {
			set[d] = true
		}
	}
	keys := make([]string, 0, len(set))
	for d := range set {
		keys = append(keys, d)
	}
	// Deepest first, so that a parent is tried after its children.
	slices.SortFunc(keys, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, d := range keys {
		if d+"/" == TempDir || strings.HasPrefix(d+"/", txlog.LogDir) {
			continue
		}
		_ = os.Remove(filepath.Join(root, filepath.FromSlash(d))) // fails when not empty
	}
}
