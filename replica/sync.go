package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"

	"github.com/lakehouse/lake/internal/storage"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// SyncOptions configure Sync. A nil *SyncOptions is the defaults.
type SyncOptions struct {
	Options
	// BatchCommits is how many commits' files are copied together before those commits are
	// written in order (default 64).
	BatchCommits int
}

// SyncResult describes one Sync.
type SyncResult struct {
	// From and To are the destination versions this call wrote (From > To: none, the replica
	// was up to date).
	From, To int64
	// Latest is the source's latest version as listed at the start.
	Latest int64
	// Bootstrapped says the destination started empty and the source's log begins at a
	// checkpoint: version From-1 was written at the destination as a checkpoint of the source's
	// snapshot (its files copied first), the commits after it copied one by one.
	Bootstrapped bool
	Stats
}

// Sync makes dst a version-for-version replica of src up to src's latest version: for each
// version dst lacks, the files its commit adds are copied and verified, then the commit file's
// bytes are written at dst with put-if-absent, so dst's version N holds exactly src's version N.
// An empty dst gets src's history from its oldest reconstructible version on: version 0 when
// src still has every commit from 0, else src's oldest usable checkpoint, which is written anew
// at dst (as a checkpoint of the same snapshot) after the files it needs are copied. When files
// of the early versions were vacuumed from src, an empty dst starts instead at the version that
// removed them (found while nothing is written yet, in the first batch of commits). Where src
// has a checkpoint, dst gets one at the same version.
//
// Sync is idempotent and resumable: it continues from dst's latest version, and files already
// at dst with the right size are not copied again. A dst whose latest version differs from
// src's version of that number, or is ahead of src, is refused with a *DivergedError and left
// as it is. A file src lost (vacuumed) is a *MissingFileError.
//
// On an error, the result returned with it counts what was done.
//
// Commit times at dst are the times the replica's commit files were written, unless the table
// has in-commit timestamps (then they are src's): time travel by version is exact, by timestamp
// only on in-commit-timestamp tables.
func Sync(ctx context.Context, src, dst string, opts *SyncOptions) (*SyncResult, error) {
	var o SyncOptions
	if opts != nil {
		o = *opts
	}
	o.Options = o.Options.withDefaults()
	if o.BatchCommits <= 0 {
		o.BatchCommits = 64
	}
	st, err := table.Open(ctx, src, nil)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	dl, err := storage.Open(ctx, dst)
	if err != nil {
		return nil, err
	}
	defer dl.Close()
	s := &syncer{
		src: st, srcB: st.Bucket(), srcURI: src, dstURI: dst, dst: dl, opts: o,
		dlog: txlog.NewLog(dl.Bucket, dl.Commits, &txlog.LogOptions{EngineInfo: table.EngineInfo, DisableAutoCheckpoint: true}),
	}
	return s.run(ctx)
}

type syncer struct {
	src            *table.Table
	srcB           *blob.Bucket
	srcURI, dstURI string
	dst            *storage.Location
	dlog           *txlog.Log
	opts           SyncOptions

	// pending is the snapshot an empty replica starts at, written as a checkpoint by the next
	// batch once its files are copied; wrote says this run wrote to the replica.
	pending *txlog.Snapshot
	wrote   bool
}

// logListing is what one listing of a _delta_log folder found: commit versions and versions
// with checkpoint files (complete or not: snapshot loads judge that).
type logListing struct {
	commits     map[int64]bool
	checkpoints map[int64]bool
	latest      int64 // highest commit or checkpoint version, -1 if none
}

func listLog(ctx context.Context, b *blob.Bucket) (*logListing, error) {
	l := &logListing{commits: map[int64]bool{}, checkpoints: map[int64]bool{}, latest: -1}
	it := b.List(&blob.ListOptions{Prefix: txlog.LogDir, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return l, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", txlog.LogDir, err)
		}
		name := strings.TrimPrefix(obj.Key, txlog.LogDir)
		if obj.IsDir || len(name) < 21 || name[20] != '.' {
			continue
		}
		v, err := strconv.ParseInt(name[:20], 10, 64)
		if err != nil || v < 0 {
			continue
		}
		switch rest := name[21:]; {
		case rest == "json":
			l.commits[v] = true
		case strings.HasPrefix(rest, "checkpoint.") && (strings.HasSuffix(rest, ".parquet") || strings.HasSuffix(rest, ".json")):
			l.checkpoints[v] = true
		default:
			continue
		}
		l.latest = max(l.latest, v)
	}
}

// contiguous reports whether every commit from version from to the latest is present.
func (l *logListing) contiguous(from int64) bool {
	for v := from; v <= l.latest; v++ {
		if !l.commits[v] {
			return false
		}
	}
	return true
}

func (s *syncer) run(ctx context.Context) (*SyncResult, error) {
	sl, err := listLog(ctx, s.srcB)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.srcURI, err)
	}
	dls, err := listLog(ctx, s.dst.Bucket)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.dstURI, err)
	}
	res := &SyncResult{Latest: sl.latest, From: dls.latest + 1, To: dls.latest}
	c := newCopier(s.srcB, s.dst.Bucket, s.dst.LocalDir != "", s.srcURI, sl.latest, s.opts.Options)
	defer func() { res.Stats = c.snapshotStats() }()

	if dls.latest > sl.latest {
		return res, &DivergedError{Src: s.srcURI, Dst: s.dstURI, Version: dls.latest, Reason: fmt.Sprintf("the destination is ahead of the source (the source's latest version is %d)", sl.latest)}
	}
	start := dls.latest + 1
	empty := dls.latest < 0
	if !empty {
		if err := s.checkSame(ctx, sl, dls); err != nil {
			return res, err
		}
	} else if !sl.contiguous(0) {
		snap, err := s.bootstrapSnapshot(ctx, sl)
		if err != nil {
			return res, err
		}
		start = snap.Version() + 1
		s.pending = snap
		res.Bootstrapped = true
		res.From, res.To = start, start-1
	}
	for from := start; from <= sl.latest || s.pending != nil; {
		to := min(from+int64(s.opts.BatchCommits)-1, sl.latest)
		err := s.batch(ctx, c, sl, from, to)
		var mf *MissingFileError
		if err != nil && empty && !s.wrote && errors.As(err, &mf) {
			// Nothing is written yet: start the replica after the version that removed the
			// missing file instead, the oldest version whose files the source still has.
			snap, rerr := s.snapshotAfterRemoval(ctx, mf, sl.latest)
			if rerr != nil {
				return res, errors.Join(err, rerr)
			}
			from = snap.Version() + 1
			s.pending = snap
			res.Bootstrapped = true
			res.From, res.To = from, from-1
			continue
		}
		if err != nil {
			return res, err
		}
		res.To = max(to, res.To)
		from = to + 1
	}
	return res, nil
}

// snapshotAfterRemoval returns the source's snapshot at the version that removed mf's file: the
// files of that snapshot and of the commits after it no longer include it.
func (s *syncer) snapshotAfterRemoval(ctx context.Context, mf *MissingFileError, latest int64) (*txlog.Snapshot, error) {
	for v := mf.Version + 1; v <= latest; v++ {
		d, err := s.srcB.ReadAll(ctx, txlog.CommitKey(v))
		if err != nil {
			return nil, fmt.Errorf("%s: read version %d: %w", s.srcURI, v, err)
		}
		acts, err := txlog.DecodeActions(d)
		if err != nil {
			return nil, &txlog.CorruptError{Path: s.srcURI + "/" + txlog.CommitKey(v), Err: err}
		}
		for _, a := range acts {
			if a.Remove != nil && a.Remove.Path == mf.Path {
				return s.src.SnapshotAt(ctx, v)
			}
		}
	}
	return nil, fmt.Errorf("%s: file %s is part of the latest version and is missing: the source table is damaged", s.srcURI, mf.Path)
}

// checkSame verifies that dst's latest version is src's version of that number: the same commit
// bytes, or (for a destination that starts at a checkpoint, or a source that cleaned the commit
// up) the same table id.
func (s *syncer) checkSame(ctx context.Context, sl, dls *logListing) error {
	v := dls.latest
	if dls.commits[v] && sl.commits[v] {
		sd, err := s.srcB.ReadAll(ctx, txlog.CommitKey(v))
		if err != nil {
			return fmt.Errorf("%s: read version %d: %w", s.srcURI, v, err)
		}
		dd, err := s.dst.Bucket.ReadAll(ctx, txlog.CommitKey(v))
		if err != nil {
			return fmt.Errorf("%s: read version %d: %w", s.dstURI, v, err)
		}
		if !bytes.Equal(sd, dd) {
			return &DivergedError{Src: s.srcURI, Dst: s.dstURI, Version: v, Reason: "its commit differs from the source's"}
		}
		return nil
	}
	ds, err := s.dlog.SnapshotAt(ctx, v)
	if err != nil {
		return fmt.Errorf("%s: %w", s.dstURI, err)
	}
	ss, err := s.src.SnapshotAt(ctx, v)
	if err != nil {
		return fmt.Errorf("%s: version %d, which the destination has, cannot be read at the source to compare: %w", s.srcURI, v, err)
	}
	if ds.Metadata().ID != ss.Metadata().ID {
		return &DivergedError{Src: s.srcURI, Dst: s.dstURI, Version: v, Reason: fmt.Sprintf("its table id %s differs from the source's %s", ds.Metadata().ID, ss.Metadata().ID)}
	}
	return nil
}

// bootstrapSnapshot finds where an empty dst starts when src's log does not go back to version
// 0: src's oldest checkpoint from which every later commit is present (its snapshot is written
// at dst as a checkpoint, by batch, once its files are copied).
func (s *syncer) bootstrapSnapshot(ctx context.Context, sl *logListing) (*txlog.Snapshot, error) {
	cps := make([]int64, 0, len(sl.checkpoints))
	for v := range sl.checkpoints {
		cps = append(cps, v)
	}
	slices.Sort(cps)
	var firstErr error
	for _, v := range cps {
		if !sl.contiguous(v + 1) {
			continue
		}
		snap, err := s.src.SnapshotAt(ctx, v)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if snap.Version() == v {
			return snap, nil
		}
	}
	if firstErr != nil {
		return nil, fmt.Errorf("%s: no reconstructible version to start a replica from: %w", s.srcURI, firstErr)
	}
	return nil, fmt.Errorf("%s: %w: the log has neither version 0 nor a checkpoint followed by every later commit", s.srcURI, txlog.ErrVersionNotFound)
}

// batch mirrors versions from..to: it reads their commits, copies every file they add (and,
// for a replica that starts at a snapshot, that snapshot's files), then writes the starting
// checkpoint if one is pending, then the commits in order. from > to is a batch of no commits.
func (s *syncer) batch(ctx context.Context, c *copier, sl *logListing, from, to int64) error {
	n := max(int(to-from+1), 0)
	data := make([][]byte, n)
	refs := make([][]fileRef, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range n {
		v := from + int64(i)
		g.Go(func() error {
			d, err := s.srcB.ReadAll(gctx, txlog.CommitKey(v))
			if err != nil {
				if gcerrors.Code(err) == gcerrors.NotFound {
					return fmt.Errorf("%s: commit %d is gone (the log was cleaned up past the replica's version %d): the replica can no longer follow version for version; clone %s into a new location instead", s.srcURI, v, from-1, s.srcURI)
				}
				return fmt.Errorf("%s: read version %d: %w", s.srcURI, v, err)
			}
			acts, err := txlog.DecodeActions(d)
			if err != nil || len(acts) == 0 {
				if err == nil {
					err = txlog.ErrEmptyLogFile
				}
				return &txlog.CorruptError{Path: s.srcURI + "/" + txlog.CommitKey(v), Err: err}
			}
			for j := range acts {
				if p := acts[j].Protocol; p != nil {
					if err := p.CheckRead(); err != nil {
						return fmt.Errorf("%s: version %d: %w", s.srcURI, v, err)
					}
				}
				rs, _, err := filesOf(&acts[j], v)
				if err != nil {
					return fmt.Errorf("%s: version %d: %w", s.srcURI, v, err)
				}
				refs[i] = append(refs[i], rs...)
			}
			data[i] = d
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	all := slices.Concat(refs...)
	if p := s.pending; p != nil {
		for _, f := range p.Files() {
			rs, _, err := filesOf(&txlog.Action{Add: f}, p.Version())
			if err != nil {
				return fmt.Errorf("%s: version %d: %w", s.srcURI, p.Version(), err)
			}
			all = append(all, rs...)
		}
	}
	if err := c.copyAll(ctx, all); err != nil {
		return err
	}
	if p := s.pending; p != nil {
		s.wrote = true
		if _, err := s.dlog.Checkpoint(ctx, p); err != nil {
			return fmt.Errorf("%s: write the starting checkpoint at version %d: %w", s.dstURI, p.Version(), err)
		}
		s.pending = nil
	}
	for i := range n {
		v := from + int64(i)
		if err := s.put(ctx, v, data[i]); err != nil {
			return err
		}
		if sl.checkpoints[v] {
			// Best effort, as after an ordinary commit: the log is complete without it.
			if snap, err := s.dlog.SnapshotAt(ctx, v); err == nil {
				_, _ = s.dlog.Checkpoint(ctx, snap)
			}
		}
	}
	return nil
}

// put writes version v's commit at dst with put-if-absent. A commit already there must hold
// the same bytes (another sync wrote it); anything else has diverged.
func (s *syncer) put(ctx context.Context, v int64, data []byte) error {
	key := txlog.CommitKey(v)
	s.wrote = true
	err := s.dst.Commits.PutIfAbsent(ctx, key, data)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// Exists, or unknown outcome: read it back and compare.
	got, rerr := s.dst.Bucket.ReadAll(ctx, key)
	switch {
	case rerr == nil && bytes.Equal(got, data):
		return nil
	case rerr == nil:
		return &DivergedError{Src: s.srcURI, Dst: s.dstURI, Version: v, Reason: "another writer committed a different commit"}
	case errors.Is(err, txlog.ErrVersionExists):
		return fmt.Errorf("%s: version %d exists but cannot be read to compare: %w", s.dstURI, v, rerr)
	}
	return fmt.Errorf("%s: writing version %d: outcome unknown: %w", s.dstURI, v, errors.Join(err, rerr))
}

// Follow runs Sync, then again every interval, until ctx ends; it returns nil then. Each round's
// result goes to onRound (may be nil). An error of a round ends Follow with it.
func Follow(ctx context.Context, src, dst string, interval time.Duration, opts *SyncOptions, onRound func(*SyncResult)) error {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	for {
		res, err := Sync(ctx, src, dst, opts)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if onRound != nil {
			onRound(res)
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
