package txlog

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/lakehouse/lake/txlog/internal/checkpoint"
)

func isNotFound(err error) bool { return gcerrors.Code(err) == gcerrors.NotFound }

// blobReaderAt reads ranges of one object; Parquet decoding reads the footer and the column
// chunks it needs, so a checkpoint is never held in memory whole.
type blobReaderAt struct {
	ctx  context.Context
	b    *blob.Bucket
	key  string
	size int64
}

func (r *blobReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	n := int64(len(p))
	if off+n > r.size {
		n = r.size - off
	}
	rr, err := r.b.NewRangeReader(r.ctx, r.key, off, n, nil)
	if err != nil {
		return 0, err
	}
	defer rr.Close()
	got, err := io.ReadFull(rr, p[:n])
	if err == nil && got < len(p) {
		err = io.EOF
	}
	return got, err
}

// readCheckpoint replays the actions of every file of a checkpoint (and, for a V2 checkpoint,
// of its sidecars) into fn.
func readCheckpoint(ctx context.Context, b *blob.Bucket, cp *checkpointSet, fn func(*Action), opts ...CheckpointReadOption) error {
	var sidecars []Sidecar
	collect := func(a *Action) {
		if a.Sidecar != nil {
			sidecars = append(sidecars, *a.Sidecar)
			return
		}
		fn(a)
	}
	for _, f := range cp.files {
		if err := readCheckpointFile(ctx, b, f.key, f.size, cp.kind == "v2json", collect, opts...); err != nil {
			return err
		}
	}
	for _, sc := range sidecars {
		key := sc.Path
		if !strings.Contains(key, "/") {
			key = LogDir + "_sidecars/" + key
		} else if !strings.HasPrefix(key, LogDir) {
			key = LogDir + "_sidecars/" + path.Base(key)
		}
		size := sc.SizeInBytes
		if attrs, err := b.Attributes(ctx, key); err == nil {
			size = attrs.Size
		} else {
			return &CorruptError{Path: key, Err: fmt.Errorf("sidecar of checkpoint %d: %w", cp.version, err)}
		}
		if err := readCheckpointFile(ctx, b, key, size, false, fn, opts...); err != nil {
			return err
		}
	}
	return nil
}

func readCheckpointFile(ctx context.Context, b *blob.Bucket, key string, size int64, isJSON bool, fn func(*Action), opts ...CheckpointReadOption) error {
	if isJSON {
		data, err := b.ReadAll(ctx, key)
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		acts, err := DecodeActions(data)
		if err != nil {
			return &CorruptError{Path: key, Err: err}
		}
		for i := range acts {
			fn(&acts[i])
		}
		return nil
	}
	r := &blobReaderAt{ctx: ctx, b: b, key: key, size: size}
	var act Action // one variable: fn keeps what the action points to, never the action
	err := DecodeCheckpoint(r, size, func(a Action) error {
		act = a
		fn(&act)
		return nil
	}, opts...)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &CorruptError{Path: key, Err: err}
	}
	return nil
}

// CheckpointResult describes a written checkpoint.
type CheckpointResult struct {
	Version int64
	Path    string
	Actions int64
	Bytes   int64
}

// Checkpoint writes a checkpoint of snap and points _last_checkpoint at it. Tables with the
// v2Checkpoint feature get a V2 checkpoint in JSON (UUID-named); the others a classic single-file
// Parquet checkpoint in the protocol's schema, which Spark, delta-rs and DuckDB read.
//
// The checkpoint is streamed from the snapshot to the bucket: the adds go out block by block
// (see fileTable), the Parquet writer holds at most two row groups, and the object is uploaded as
// it is written, so memory stays bounded whatever the table's size. A failed write is aborted and
// leaves no object behind.
func (l *Log) Checkpoint(ctx context.Context, snap *Snapshot) (*CheckpointResult, error) {
	if err := snap.protocol.CheckWrite(snap.schema); err != nil {
		return nil, err
	}
	now := l.opts.Now()
	v2 := snap.protocol.HasReaderFeature("v2Checkpoint")
	var res *CheckpointResult
	var parts int
	if n := l.opts.CheckpointPartActions; !v2 && n > 0 {
		if total := snap.numCheckpointRows(now); total > int64(n) {
			parts = int((total + int64(n) - 1) / int64(n))
		}
	}
	var err error
	if n := l.opts.CheckpointPartActions; v2 && n > 0 && snap.numCheckpointFileRows(now) > int64(n) {
		res, err = l.writeSidecarCheckpoint(ctx, snap, now)
	} else if parts > 1 {
		res, err = l.writeMultiPartCheckpoint(ctx, snap, parts, now)
	} else {
		key := fmt.Sprintf("%s%020d.checkpoint.parquet", LogDir, snap.version)
		if v2 {
			key = fmt.Sprintf("%s%020d.checkpoint.%s.json", LogDir, snap.version, uuid.NewString())
		}
		res = &CheckpointResult{Version: snap.version, Path: key}
		res.Actions, res.Bytes, err = l.writeObject(ctx, key, func(w io.Writer) (int64, error) {
			return snap.writeCheckpoint(w, v2, snap.checkpointRows(now))
		})
	}
	if err != nil {
		return nil, err
	}
	lc := map[string]any{"version": snap.version, "size": res.Actions, "sizeInBytes": res.Bytes, "numOfAddFiles": int64(snap.NumFiles())}
	if parts > 1 {
		lc["parts"] = parts
	}
	lcData, _ := json.Marshal(lc)
	// _last_checkpoint is only a hint; never move it backwards.
	if old, err := l.ReadLastCheckpoint(ctx); err == nil && old != nil && old.Version > snap.version {
		return res, nil
	}
	if err := l.bucket.WriteAll(ctx, LogDir+"_last_checkpoint", lcData, nil); err != nil {
		return nil, fmt.Errorf("write _last_checkpoint: %w", err)
	}
	return res, nil
}

// writeObject streams one object through write, which returns the actions it wrote. A failed
// write is aborted (the upload is cancelled) and leaves no object behind.
func (l *Log) writeObject(ctx context.Context, key string, write func(io.Writer) (int64, error)) (actions, size int64, err error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bw, err := l.bucket.NewWriter(wctx, key, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return 0, 0, fmt.Errorf("write %s: %w", key, err)
	}
	cw := &countingWriter{w: bw}
	n, err := write(cw)
	if err != nil {
		cancel() // abort the upload: no partial checkpoint
		_ = bw.Close()
		return 0, 0, fmt.Errorf("write %s: %w", key, err)
	}
	if err := bw.Close(); err != nil {
		return 0, 0, fmt.Errorf("write %s: %w", key, err)
	}
	return n, cw.n, nil
}

// writeMultiPartCheckpoint writes the checkpoint as parts Parquet files of
// CheckpointPartActions actions (the last one fewer). Readers use the set only once every part
// is there; a failure deletes the parts already written.
func (l *Log) writeMultiPartCheckpoint(ctx context.Context, snap *Snapshot, parts int, now time.Time) (*CheckpointResult, error) {
	per := int64(l.opts.CheckpointPartActions)
	res := &CheckpointResult{Version: snap.version}
	next, stop := iter.Pull(snap.checkpointRows(now))
	defer stop()
	var written []string
	for part := 1; part <= parts; part++ {
		key := fmt.Sprintf("%s%020d.checkpoint.%010d.%010d.parquet", LogDir, snap.version, part, parts)
		rows := func(yield func(*Action) bool) {
			for range per {
				a, ok := next()
				if !ok || !yield(a) {
					return
				}
			}
		}
		n, size, err := l.writeObject(ctx, key, func(w io.Writer) (int64, error) {
			return snap.writeCheckpoint(w, false, rows)
		})
		if err != nil {
			for _, k := range written {
				_ = l.bucket.Delete(ctx, k)
			}
			return nil, err
		}
		written = append(written, key)
		res.Actions += n
		res.Bytes += size
		if part == 1 {
			res.Path = key
		}
	}
	return res, nil
}

// SidecarDir is the folder of V2 checkpoint sidecars.
const SidecarDir = LogDir + "_sidecars/"

// writeSidecarCheckpoint writes a V2 checkpoint whose adds and removes are in Parquet sidecars
// of at most CheckpointPartActions actions each, under _delta_log/_sidecars, and whose
// top-level JSON file holds checkpointMetadata, protocol, metadata, txns, domain metadata and
// one sidecar action per sidecar. The sidecars are written first; a failure deletes them.
func (l *Log) writeSidecarCheckpoint(ctx context.Context, snap *Snapshot, now time.Time) (*CheckpointResult, error) {
	per := int64(l.opts.CheckpointPartActions)
	res := &CheckpointResult{Version: snap.version}
	var (
		written  []string
		sidecars []Sidecar
	)
	fail := func(err error) (*CheckpointResult, error) {
		for _, k := range written {
			_ = l.bucket.Delete(ctx, k)
		}
		return nil, err
	}
	next, stop := iter.Pull(snap.checkpointFileRows(now))
	defer stop()
	for more := true; more; {
		first, ok := next()
		if !ok {
			break
		}
		name := uuid.NewString() + ".parquet"
		rows := func(yield func(*Action) bool) {
			if !yield(first) {
				return
			}
			for range per - 1 {
				a, ok := next()
				if !ok {
					more = false
					return
				}
				if !yield(a) {
					return
				}
			}
		}
		n, size, err := l.writeObject(ctx, SidecarDir+name, func(w io.Writer) (int64, error) {
			return snap.writeCheckpoint(w, false, rows)
		})
		if err != nil {
			return fail(err)
		}
		written = append(written, SidecarDir+name)
		sidecars = append(sidecars, Sidecar{Path: name, SizeInBytes: size, ModificationTime: now.UnixMilli()})
		res.Actions += n
		res.Bytes += size
	}
	key := fmt.Sprintf("%s%020d.checkpoint.%s.json", LogDir, snap.version, uuid.NewString())
	top := func(yield func(*Action) bool) {
		for a := range snap.checkpointStateRows() {
			if !yield(a) {
				return
			}
		}
		for i := range sidecars {
			if !yield(&Action{Sidecar: &sidecars[i]}) {
				return
			}
		}
	}
	n, size, err := l.writeObject(ctx, key, func(w io.Writer) (int64, error) {
		return snap.writeCheckpoint(w, true, top)
	})
	if err != nil {
		return fail(err)
	}
	res.Path = key
	res.Actions += n - int64(len(sidecars)) // count the checkpoint's actions, not the sidecar pointers
	res.Bytes += size
	return res, nil
}

// UnreferencedSidecars returns the files under _delta_log/_sidecars that no V2 checkpoint at or
// above version from references and that were last modified before olderThan (a sidecar newer
// than that may belong to a checkpoint being written). A log clean-up that keeps the
// checkpoints from version from on may delete them. A V2 checkpoint that cannot be read is an
// error: deleting what it may reference would corrupt it.
func UnreferencedSidecars(ctx context.Context, b *blob.Bucket, from int64, olderThan time.Time) ([]string, error) {
	ls, err := list(ctx, b, from)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, cps := range ls.checkpoints {
		for _, cp := range cps {
			if cp.kind != "v2json" && cp.kind != "v2parquet" {
				continue
			}
			for _, f := range cp.files {
				var opts []CheckpointReadOption
				if cp.kind == "v2parquet" {
					opts = append(opts, WithCheckpointActions("sidecar"))
				}
				err := readCheckpointFile(ctx, b, f.key, f.size, cp.kind == "v2json", func(a *Action) {
					if a.Sidecar != nil {
						used[path.Base(a.Sidecar.Path)] = true
					}
				}, opts...)
				if err != nil {
					return nil, err
				}
			}
		}
	}
	var out []string
	it := b.List(&blob.ListOptions{Prefix: SidecarDir, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", SidecarDir, err)
		}
		if obj.IsDir || used[path.Base(obj.Key)] || !obj.ModTime.Before(olderThan) {
			continue
		}
		out = append(out, obj.Key)
	}
	slices.Sort(out)
	return out, nil
}

// numCheckpointRows counts the actions checkpointRows yields.
func (s *Snapshot) numCheckpointRows(now time.Time) int64 {
	return int64(2+len(s.txns)+len(s.domains)) + s.numCheckpointFileRows(now)
}

// numCheckpointFileRows counts the actions checkpointFileRows yields.
func (s *Snapshot) numCheckpointFileRows(now time.Time) int64 {
	n := int64(s.files.len())
	cutoff := now.UnixMilli() - s.DeletedFileRetention().Milliseconds()
	for _, r := range s.tombstones {
		if r.DeletionTimestamp == nil || *r.DeletionTimestamp >= cutoff {
			n++
		}
	}
	return n
}

// writeCheckpoint writes rows (checkpoint rows of s) to w, as Parquet or (v2) as V2 JSON lines
// with a leading checkpointMetadata, and returns the number of actions.
func (s *Snapshot) writeCheckpoint(w io.Writer, v2 bool, rows iter.Seq[*Action]) (int64, error) {
	if v2 {
		bw := bufio.NewWriterSize(w, 1<<20)
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(&Action{CheckpointMetadata: &CheckpointMetadata{Version: s.version}}); err != nil {
			return 0, err
		}
		n := int64(1)
		for a := range rows {
			if err := enc.Encode(a); err != nil {
				return n, err
			}
			n++
		}
		return n, bw.Flush()
	}
	return checkpoint.EncodeRows(w, rows)
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// checkpointRows yields the reconciled state of s as checkpoint actions: protocol, metadata,
// txns, domain metadata, active files (in load order) and unexpired tombstones. The actions are
// fresh and may be kept (the Parquet writer keeps references until its row group is out).
func (s *Snapshot) checkpointRows(now time.Time) iter.Seq[*Action] {
	return func(yield func(*Action) bool) {
		for a := range s.checkpointStateRows() {
			if !yield(a) {
				return
			}
		}
		for a := range s.checkpointFileRows(now) {
			if !yield(a) {
				return
			}
		}
	}
}

// checkpointStateRows yields protocol, metadata, txns and domain metadata.
func (s *Snapshot) checkpointStateRows() iter.Seq[*Action] {
	return func(yield func(*Action) bool) {
		p := s.protocol
		m := s.metadata
		if !yield(&Action{Protocol: &p}) || !yield(&Action{Metadata: &m}) {
			return
		}
		for _, t := range s.AppTransactions() {
			if !yield(&Action{Txn: &t}) {
				return
			}
		}
		for _, d := range s.Domains() {
			if !yield(&Action{DomainMetadata: &d}) {
				return
			}
		}
	}
}

// checkpointFileRows yields the active files (in load order) and the unexpired tombstones.
func (s *Snapshot) checkpointFileRows(now time.Time) iter.Seq[*Action] {
	return func(yield func(*Action) bool) {
		stopped := false
		s.files.each(func(a *Add) bool {
			stopped = !yield(&Action{Add: a})
			return !stopped
		}, false)
		if stopped {
			return
		}
		cutoff := now.UnixMilli() - s.DeletedFileRetention().Milliseconds()
		keys := slices.Sorted(maps.Keys(s.tombstones))
		for _, k := range keys {
			r := s.tombstones[k]
			if r.DeletionTimestamp != nil && *r.DeletionTimestamp < cutoff {
				continue
			}
			rc := *r
			rc.DataChange = false
			if !yield(&Action{Remove: &rc}) {
				return
			}
		}
	}
}

// checkpointActions collects checkpointRows (tests; small tables).
func (s *Snapshot) checkpointActions(now time.Time) []Action {
	var acts []Action
	for a := range s.checkpointRows(now) {
		acts = append(acts, *a)
	}
	return acts
}
