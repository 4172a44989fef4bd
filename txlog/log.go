package txlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/lakehouse/lake/txlog/internal/checkpoint"
)

// Log is a table's transaction log: it loads snapshots and commits new versions.
//
// # Concurrency
//
// A Log is safe for concurrent use by many goroutines, and any number of Logs, in any number of
// processes, may commit to one table: a commit creates its version's file with put-if-absent, so
// exactly one writer wins each version and the others rebase (see Transaction.Commit).
type Log struct {
	bucket  *blob.Bucket
	commits CommitStore
	opts    LogOptions
}

// LogOptions configure a Log. The zero value is valid.
type LogOptions struct {
	// EngineInfo is written in every commitInfo (default "lake").
	EngineInfo string
	// MaxCommitAttempts bounds how often a commit is retried after losing a race (default 200).
	MaxCommitAttempts int
	// Now returns the current time (default time.Now); tests set it.
	Now func() time.Time
	// DisableAutoCheckpoint turns off the checkpoint written every delta.checkpointInterval
	// commits.
	DisableAutoCheckpoint bool
	// Root is the table's location as a URI (file:///data/t, s3://bucket/prefix; no query
	// string). With it, a remove that names a file under the table by absolute URI matches the
	// add that names it relative to the root, as Spark resolves them. table.Open sets it.
	Root string
	// CheckpointPartActions splits a classic Parquet checkpoint of more actions than this into a
	// multi-part checkpoint of parts of at most this many actions (Spark's
	// spark.databricks.delta.checkpoint.partSize), and on v2Checkpoint tables puts the file
	// actions of such a checkpoint into Parquet sidecars. Zero is DefaultCheckpointPartActions;
	// negative writes one file whatever its size.
	CheckpointPartActions int
}

// DefaultCheckpointPartActions is the most actions a checkpoint file holds before it is split
// (about 130 MB of Parquet for adds with statistics): one reader task per part, and no single
// object that a slow link must fetch whole.
const DefaultCheckpointPartActions = 2_000_000

// NewLog returns the log of the table whose root is bucket. commits performs the atomic
// put-if-absent of commit files.
func NewLog(bucket *blob.Bucket, commits CommitStore, opts *LogOptions) *Log {
	var o LogOptions
	if opts != nil {
		o = *opts
	}
	if o.EngineInfo == "" {
		o.EngineInfo = "lake"
	}
	if o.MaxCommitAttempts <= 0 {
		o.MaxCommitAttempts = 200
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CheckpointPartActions == 0 {
		o.CheckpointPartActions = DefaultCheckpointPartActions
	}
	return &Log{bucket: bucket, commits: commits, opts: o}
}

// Bucket is the bucket rooted at the table.
func (l *Log) Bucket() *blob.Bucket { return l.bucket }

// Exists reports whether the table has any commit or checkpoint.
func (l *Log) Exists(ctx context.Context) (bool, error) {
	it := l.bucket.List(&blob.ListOptions{Prefix: LogDir, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if _, _, _, _, ok := parseLogName(obj.Key[len(LogDir):]); ok && !obj.IsDir {
			return true, nil
		}
	}
}

// Snapshot loads the latest snapshot.
func (l *Log) Snapshot(ctx context.Context) (*Snapshot, error) { return l.SnapshotAt(ctx, -1) }

// SnapshotAt loads the snapshot at version (-1: the latest).
func (l *Log) SnapshotAt(ctx context.Context, version int64) (*Snapshot, error) {
	ls, err := list(ctx, l.bucket, 0)
	if err != nil {
		return nil, err
	}
	return l.snapshotFromListing(ctx, ls, version)
}

func (l *Log) snapshotFromListing(ctx context.Context, ls *listing, version int64) (*Snapshot, error) {
	if ls.maxVersion < 0 {
		return nil, ErrNotATable
	}
	latest := ls.latest()
	if version < 0 {
		version = latest
	}
	if version > latest {
		return nil, fmt.Errorf("%w: version %d does not exist; the latest version is %d", ErrVersionNotFound, version, latest)
	}
	if e := ls.earliest(); e < 0 || version < e {
		return nil, fmt.Errorf("%w: version %d cannot be reconstructed: the log's earliest recoverable version is %d (older commits were cleaned up)", ErrVersionNotFound, version, e)
	}
	var firstErr error
	cands := ls.checkpointsBelow(version)
	if _, ok := ls.commits[0]; ok {
		cands = append(cands, nil) // replay from version 0 as the last resort
	}
	for _, cp := range cands {
		seg, err := ls.segmentFor(version, cp)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		snap, err := l.load(ctx, seg)
		if err == nil {
			return snap, nil
		}
		var uf *UnsupportedFeatureError
		if errors.As(err, &uf) || ctx.Err() != nil {
			return nil, err
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("%w: no checkpoint or commit to build version %d from", ErrVersionNotFound, version)
	}
	return nil, firstErr
}

// latest is the highest version a snapshot exists for.
func (ls *listing) latest() int64 {
	latest := int64(-1)
	for v := range ls.commits {
		latest = max(latest, v)
	}
	for v, cs := range ls.checkpoints {
		for _, c := range cs {
			if c.complete() {
				latest = max(latest, v)
			}
		}
	}
	return latest
}

// load replays a segment.
func (l *Log) load(ctx context.Context, seg *segment) (*Snapshot, error) {
	s := newState()
	s.root = l.opts.Root
	where := "_delta_log"
	// The commits after the checkpoint are read while the checkpoint is decoded.
	var (
		acts    [][]Action
		actsErr error
		actsGot = make(chan struct{})
	)
	rctx, cancel := context.WithCancel(ctx)
	go func() {
		defer close(actsGot)
		acts, actsErr = readCommits(rctx, l.bucket, seg.commits)
	}()
	defer func() { <-actsGot }()
	defer cancel() // before the wait above: a failed load stops reading commits
	if seg.checkpoint != nil {
		// A checkpoint is reconciled: collect its adds first, then index them (in a second
		// goroutine, batch by batch as they arrive, into a map made at its final size instead of
		// growing and rehashing 1M long paths). Their stats go to a compressed store (see
		// fileTable).
		files := &fileTable{stats: &statsStore{}}
		ix := &entryIndexer{}
		defer ix.stop()
		if err := readCheckpoint(ctx, l.bucket, seg.checkpoint, func(a *Action) {
			if a.Add != nil {
				files.entries = append(files.entries, fileEntry{add: a.Add})
				ix.feed(files.entries)
				return
			}
			s.apply(a)
		}, checkpoint.WithAddSink(&checkpointSink{files: files, ix: ix})); err != nil {
			return nil, err
		}
		files.index = ix.finish(files.entries)
		if len(files.index) != len(files.entries) {
			files.dropShadowed() // a checkpoint is reconciled; tolerate one that is not
		}
		for k := range s.tombstones {
			files.remove(k)
		}
		s.files = files
		s.version = seg.checkpoint.version
		s.checkpointVersion = seg.checkpoint.version
		where = seg.checkpoint.files[0].key
		// A checkpoint alone gives no commit time: use the checkpoint file's.
		if len(seg.commits) == 0 {
			if attrs, err := l.bucket.Attributes(ctx, seg.checkpoint.files[0].key); err == nil {
				s.timestamp = attrs.ModTime.UnixMilli()
			}
		}
	}
	<-actsGot
	if actsErr != nil {
		return nil, actsErr
	}
	if err := s.replay(seg.commits, acts); err != nil {
		return nil, err
	}
	if len(seg.commits) > 0 {
		where = seg.commits[len(seg.commits)-1].key
	}
	if err := s.finish(where); err != nil {
		return nil, err
	}
	return s, nil
}

// replay applies commits (already read) in order.
func (s *Snapshot) replay(commits []commitFile, acts [][]Action) error {
	for i, c := range commits {
		for j := range acts[i] {
			s.apply(&acts[i][j])
		}
		s.version = c.version
		s.timestamp = commitTimestamp(acts[i], c, s.InCommitTimestamps())
	}
	return nil
}

// Update returns the snapshot at the latest version, reading only the commits after s. It
// returns s itself when nothing was committed since.
func (l *Log) Update(ctx context.Context, s *Snapshot) (*Snapshot, error) {
	ls, err := list(ctx, l.bucket, s.version+1)
	if err != nil {
		return nil, err
	}
	if len(ls.commits) == 0 {
		if ls.maxVersion < 0 {
			return s, nil
		}
		// Only newer checkpoints (commits cleaned up): load from scratch.
		return l.Snapshot(ctx)
	}
	var commits []commitFile
	for v := s.version + 1; ; v++ {
		c, ok := ls.commits[v]
		if !ok {
			break
		}
		commits = append(commits, c)
	}
	if len(commits) != len(ls.commits) {
		return l.Snapshot(ctx)
	}
	acts, err := readCommits(ctx, l.bucket, commits)
	if err != nil {
		return nil, err
	}
	n := s.clone()
	if err := n.replay(commits, acts); err != nil {
		return nil, err
	}
	if err := n.finish(commits[len(commits)-1].key); err != nil {
		return nil, err
	}
	return n, nil
}

// CommitEntry is one version of the table's history.
type CommitEntry struct {
	Version    int64
	Timestamp  int64 // epoch ms, monotonic across versions
	CommitInfo *CommitInfo
}

// History returns the commits still in the log, newest first, at most limit (0: all).
func (l *Log) History(ctx context.Context, limit int) ([]CommitEntry, error) {
	ls, err := list(ctx, l.bucket, 0)
	if err != nil {
		return nil, err
	}
	if ls.maxVersion < 0 {
		return nil, ErrNotATable
	}
	commits := ls.sortedCommits()
	if limit > 0 && len(commits) > limit {
		commits = commits[len(commits)-limit:]
	}
	acts, err := readCommits(ctx, l.bucket, commits)
	if err != nil {
		return nil, err
	}
	ict := false
	if snap, err := l.snapshotFromListing(ctx, ls, -1); err == nil {
		ict = snap.InCommitTimestamps()
	}
	out := make([]CommitEntry, len(commits))
	var prev int64 = -1 << 62
	for i, c := range commits {
		ts := commitTimestamp(acts[i], c, ict)
		if ts <= prev {
			ts = prev + 1
		}
		prev = ts
		var ci *CommitInfo
		for j := range acts[i] {
			if acts[i][j].CommitInfo != nil {
				ci = acts[i][j].CommitInfo
				break
			}
		}
		if ci == nil {
			ci = &CommitInfo{}
		}
		out[len(commits)-1-i] = CommitEntry{Version: c.version, Timestamp: ts, CommitInfo: ci}
	}
	return out, nil
}

func (ls *listing) sortedCommits() []commitFile {
	out := make([]commitFile, 0, len(ls.commits))
	for _, c := range ls.commits {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out
}

// SnapshotAsOf loads the snapshot of the last version committed at or before t. Commit times are
// in-commit timestamps when the table has them, else the commit files' modification times made
// strictly increasing (a commit no later than its predecessor counts as 1 ms after it).
func (l *Log) SnapshotAsOf(ctx context.Context, t time.Time) (*Snapshot, error) {
	hist, err := l.History(ctx, 0)
	if err != nil {
		return nil, err
	}
	if len(hist) == 0 {
		return nil, fmt.Errorf("%w: the log has no commits to travel by timestamp", ErrVersionNotFound)
	}
	ms := t.UnixMilli()
	for _, h := range hist { // newest first
		if h.Timestamp <= ms {
			return l.SnapshotAt(ctx, h.Version)
		}
	}
	oldest := hist[len(hist)-1]
	return nil, fmt.Errorf("%w: timestamp %s is before the earliest commit (version %d at %s)", ErrVersionNotFound,
		t.UTC().Format(time.RFC3339Nano), oldest.Version, time.UnixMilli(oldest.Timestamp).UTC().Format(time.RFC3339Nano))
}

// LastCheckpoint is the content of _delta_log/_last_checkpoint: a hint at the newest checkpoint.
type LastCheckpoint struct {
	Version      int64           `json:"version"`
	Size         int64           `json:"size"`
	Parts        *int            `json:"parts,omitempty"`
	SizeInBytes  int64           `json:"sizeInBytes,omitempty"`
	NumOfAddFile int64           `json:"numOfAddFiles,omitempty"`
	V2Checkpoint json.RawMessage `json:"v2Checkpoint,omitempty"`
}

// ParseLastCheckpoint decodes _last_checkpoint in any of the forms engines write: camel case,
// snake case (size_in_bytes), "parts": null, with or without an embedded v2Checkpoint. It fails
// on an empty or non-JSON file, or one without a version.
func ParseLastCheckpoint(data []byte) (*LastCheckpoint, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, errors.New("_last_checkpoint is empty")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("_last_checkpoint is not a JSON object: %w", err)
	}
	lc := &LastCheckpoint{}
	v, ok := jsonNumber(raw["version"])
	if !ok || v < 0 {
		return nil, errors.New("_last_checkpoint has no valid version")
	}
	lc.Version = v
	if n, ok := jsonNumber(raw["size"]); ok {
		lc.Size = n
	}
	for _, k := range []string{"sizeInBytes", "size_in_bytes"} {
		if n, ok := jsonNumber(raw[k]); ok {
			lc.SizeInBytes = n
		}
	}
	for _, k := range []string{"numOfAddFiles", "num_of_add_files"} {
		if n, ok := jsonNumber(raw[k]); ok {
			lc.NumOfAddFile = n
		}
	}
	if n, ok := jsonNumber(raw["parts"]); ok {
		p := int(n)
		lc.Parts = &p
	}
	lc.V2Checkpoint = raw["v2Checkpoint"]
	return lc, nil
}

// ReadLastCheckpoint reads and parses _delta_log/_last_checkpoint; it returns nil, nil when the
// file is absent.
func (l *Log) ReadLastCheckpoint(ctx context.Context) (*LastCheckpoint, error) {
	data, err := l.bucket.ReadAll(ctx, LogDir+"_last_checkpoint")
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseLastCheckpoint(data)
}

// jitter returns a random duration in [d/2, d).
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)))
}
