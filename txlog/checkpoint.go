package txlog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/google/uuid"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
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
func readCheckpoint(ctx context.Context, b *blob.Bucket, cp *checkpoint, fn func(*Action)) error {
	var sidecars []Sidecar
	collect := func(a *Action) {
		if a.Sidecar != nil {
			sidecars = append(sidecars, *a.Sidecar)
			return
		}
		fn(a)
	}
	for _, f := range cp.files {
		if err := readCheckpointFile(ctx, b, f.key, f.size, cp.kind == "v2json", collect); err != nil {
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
		if err := readCheckpointFile(ctx, b, key, size, false, fn); err != nil {
			return err
		}
	}
	return nil
}

func readCheckpointFile(ctx context.Context, b *blob.Bucket, key string, size int64, isJSON bool, fn func(*Action)) error {
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
	err := DecodeCheckpoint(r, size, func(a Action) error {
		fn(&a)
		return nil
	})
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
func (l *Log) Checkpoint(ctx context.Context, snap *Snapshot) (*CheckpointResult, error) {
	if err := snap.protocol.CheckWrite(snap.schema); err != nil {
		return nil, err
	}
	acts := snap.checkpointActions(l.opts.Now())
	var buf bytes.Buffer
	var key string
	if snap.protocol.HasReaderFeature("v2Checkpoint") {
		key = fmt.Sprintf("%s%020d.checkpoint.%s.json", LogDir, snap.version, uuid.NewString())
		all := append([]Action{{CheckpointMetadata: &CheckpointMetadata{Version: snap.version}}}, acts...)
		data, err := EncodeActions(all)
		if err != nil {
			return nil, err
		}
		buf.Write(data)
	} else {
		key = fmt.Sprintf("%s%020d.checkpoint.parquet", LogDir, snap.version)
		if err := EncodeCheckpoint(&buf, acts); err != nil {
			return nil, fmt.Errorf("encode checkpoint %d: %w", snap.version, err)
		}
	}
	size := int64(buf.Len())
	if err := l.bucket.WriteAll(ctx, key, buf.Bytes(), &blob.WriterOptions{ContentType: "application/octet-stream"}); err != nil {
		return nil, fmt.Errorf("write %s: %w", key, err)
	}
	nAdds := int64(snap.NumFiles())
	lc := map[string]any{"version": snap.version, "size": len(acts), "sizeInBytes": size, "numOfAddFiles": nAdds}
	lcData, _ := json.Marshal(lc)
	// _last_checkpoint is only a hint; never move it backwards.
	if old, err := l.ReadLastCheckpoint(ctx); err == nil && old != nil && old.Version > snap.version {
		return &CheckpointResult{Version: snap.version, Path: key, Actions: int64(len(acts)), Bytes: size}, nil
	}
	if err := l.bucket.WriteAll(ctx, LogDir+"_last_checkpoint", lcData, nil); err != nil {
		return nil, fmt.Errorf("write _last_checkpoint: %w", err)
	}
	return &CheckpointResult{Version: snap.version, Path: key, Actions: int64(len(acts)), Bytes: size}, nil
}

// checkpointActions is the reconciled state of snap as checkpoint actions: protocol, metadata,
// txns, domain metadata, active files and unexpired tombstones.
func (s *Snapshot) checkpointActions(now time.Time) []Action {
	acts := make([]Action, 0, len(s.files)+len(s.tombstones)+len(s.txns)+2)
	p := s.protocol
	m := s.metadata
	acts = append(acts, Action{Protocol: &p}, Action{Metadata: &m})
	for _, t := range s.AppTransactions() {
		t := t
		acts = append(acts, Action{Txn: &t})
	}
	for _, d := range s.Domains() {
		d := d
		acts = append(acts, Action{DomainMetadata: &d})
	}
	for _, a := range s.Files() {
		acts = append(acts, Action{Add: a})
	}
	cutoff := now.UnixMilli() - s.DeletedFileRetention().Milliseconds()
	for _, r := range s.tombstones {
		if r.DeletionTimestamp != nil && *r.DeletionTimestamp < cutoff {
			continue
		}
		rc := *r
		rc.DataChange = false
		acts = append(acts, Action{Remove: &rc})
	}
	return acts
}
