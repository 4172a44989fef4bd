package txlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"
)

// Snapshot is the state of a table at one version: protocol, metadata, active files, tombstones,
// application transactions and domain metadata. A Snapshot is immutable and safe for concurrent
// use; the slices and maps its methods return must not be modified.
type Snapshot struct {
	version    int64
	protocol   Protocol
	metadata   Metadata
	schema     *StructType
	files      *fileTable // keyed by FileKey
	tombstones map[string]*Remove
	txns       map[string]Txn
	domains    map[string]DomainMetadata
	timestamp  int64 // commit timestamp of version, epoch ms
	// checkpointVersion is the checkpoint the snapshot was loaded from, -1 when none.
	checkpointVersion int64
	// root is the table's location (LogOptions.Root), for matching paths named by absolute URI.
	root     string
	sortOnce *sync.Once
	sorted   []*Add
}

// FileKey is how a snapshot identifies a file: its canonical path (see canonicalPath: the
// spellings of one file share it) and, when it has one, the unique id of its deletion vector.
func FileKey(path string, dv *DeletionVector) string {
	path = canonicalPath("", path)
	if dv == nil {
		return path
	}
	return path + "\x00" + dv.UniqueID()
}

// Version is the snapshot's table version.
func (s *Snapshot) Version() int64 { return s.version }

// Protocol is the table's protocol at this version.
func (s *Snapshot) Protocol() Protocol { return s.protocol }

// Metadata is the table's metaData at this version.
func (s *Snapshot) Metadata() Metadata { return s.metadata }

// Schema is the table's logical schema.
func (s *Snapshot) Schema() *StructType { return s.schema }

// PartitionColumns are the table's partition columns, in order.
func (s *Snapshot) PartitionColumns() []string { return s.metadata.PartitionColumns }

// Configuration is the table's properties (metaData.configuration).
func (s *Snapshot) Configuration() map[string]string { return s.metadata.Configuration }

// Timestamp is the commit time of the snapshot's version: its in-commit timestamp when the table
// has them, else the commit file's modification time.
func (s *Snapshot) Timestamp() time.Time { return time.UnixMilli(s.timestamp).UTC() }

// NumFiles is the number of active files.
func (s *Snapshot) NumFiles() int { return s.files.len() }

// Files returns the active data files sorted by path. The slice is shared: do not modify it.
func (s *Snapshot) Files() []*Add {
	s.sortOnce.Do(func() {
		// Sort (path, add) pairs held contiguously: comparing through *Add chases a pointer per
		// comparison, which dominated a 1M-file sort.
		type entry struct {
			path string
			add  *Add
		}
		es := make([]entry, 0, s.files.len())
		s.files.each(func(a *Add) bool {
			es = append(es, entry{a.Path, a})
			return true
		}, false)
		slices.SortFunc(es, func(x, y entry) int { return strings.Compare(x.path, y.path) })
		out := make([]*Add, len(es))
		for i, e := range es {
			out[i] = e.add
		}
		s.sorted = out
	})
	return s.sorted
}

// AllFiles calls fn for every active file in no particular order, without sorting. It holds
// less memory than Files: the adds of a checkpoint keep their stats compressed in the snapshot,
// and AllFiles hands out copies with the stats in place, which are garbage once fn drops them.
func (s *Snapshot) AllFiles(fn func(*Add) bool) {
	s.files.each(fn, false)
}

// ScanFiles calls fn for every active file in no particular order, like AllFiles, but allocates
// nothing per file: the *Add passed to fn, and the strings it holds, are valid only until fn
// returns, so fn must copy whatever it keeps (a field, *a, a string with strings.Clone). It is
// the way to aggregate over a large table (sizes, record counts) without lifting the process's
// peak memory by the size of every file's stats.
func (s *Snapshot) ScanFiles(fn func(*Add) bool) {
	s.files.each(fn, true)
}

// Tombstones returns the remove actions not yet expired at now under the table's
// delta.deletedFileRetentionDuration (default one week).
func (s *Snapshot) Tombstones(now time.Time) []*Remove {
	ret := s.DeletedFileRetention()
	cutoff := now.Add(-ret).UnixMilli()
	var out []*Remove
	for _, r := range s.tombstones {
		if r.DeletionTimestamp == nil || *r.DeletionTimestamp >= cutoff {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// AppTransactionVersion is the last version application appID committed, and whether it has
// committed at all.
func (s *Snapshot) AppTransactionVersion(appID string) (int64, bool) {
	t, ok := s.txns[appID]
	return t.Version, ok
}

// AppTransactions returns the txn actions, one per application.
func (s *Snapshot) AppTransactions() []Txn {
	out := slices.Collect(maps.Values(s.txns))
	sort.Slice(out, func(i, j int) bool { return out[i].AppID < out[j].AppID })
	return out
}

// DomainMetadata returns the configuration of a domain and whether it is set.
func (s *Snapshot) DomainMetadata(domain string) (string, bool) {
	d, ok := s.domains[domain]
	return d.Configuration, ok
}

// Domains returns the domain metadata that is set, sorted by domain.
func (s *Snapshot) Domains() []DomainMetadata {
	out := slices.Collect(maps.Values(s.domains))
	sort.Slice(out, func(i, j int) bool { return out[i].Domain < out[j].Domain })
	return out
}

// CheckpointInterval is delta.checkpointInterval (default 10).
func (s *Snapshot) CheckpointInterval() int64 {
	if v, err := strconv.ParseInt(s.metadata.Configuration["delta.checkpointInterval"], 10, 64); err == nil && v > 0 {
		return v
	}
	return 10
}

// DeletedFileRetention is delta.deletedFileRetentionDuration (default one week).
func (s *Snapshot) DeletedFileRetention() time.Duration {
	if d, err := ParseInterval(s.metadata.Configuration["delta.deletedFileRetentionDuration"]); err == nil {
		return d
	}
	return 7 * 24 * time.Hour
}

// LogRetention is delta.logRetentionDuration (default 30 days).
func (s *Snapshot) LogRetention() time.Duration {
	if d, err := ParseInterval(s.metadata.Configuration["delta.logRetentionDuration"]); err == nil {
		return d
	}
	return 30 * 24 * time.Hour
}

// InCommitTimestamps reports whether the table records in-commit timestamps.
func (s *Snapshot) InCommitTimestamps() bool {
	return s.metadata.Configuration["delta.enableInCommitTimestamps"] == "true"
}

// ParseInterval parses a Delta interval property ("interval 7 days", "7 days", "168 hours") or a
// Go duration ("168h").
func ParseInterval(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty interval")
	}
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	var n int64
	var unit string
	str := s
	if len(str) > 9 && str[:9] == "interval " {
		str = str[9:]
	}
	if _, err := fmt.Sscanf(str, "%d %s", &n, &unit); err != nil {
		return 0, fmt.Errorf("invalid interval %q", s)
	}
	units := map[string]time.Duration{
		"millisecond": time.Millisecond, "second": time.Second, "minute": time.Minute,
		"hour": time.Hour, "day": 24 * time.Hour, "week": 7 * 24 * time.Hour,
	}
	for name, d := range units {
		if unit == name || unit == name+"s" {
			return time.Duration(n) * d, nil
		}
	}
	return 0, fmt.Errorf("invalid interval %q: unknown unit %q", s, unit)
}

// clone returns a copy whose maps can be changed without touching s.
func (s *Snapshot) clone() *Snapshot {
	c := *s
	c.files = s.files.clone()
	c.tombstones = maps.Clone(s.tombstones)
	c.txns = maps.Clone(s.txns)
	c.domains = maps.Clone(s.domains)
	c.sorted = nil
	c.sortOnce = new(sync.Once)
	return &c
}

func newState() *Snapshot {
	return &Snapshot{
		version: -1, files: newFileTable(0), tombstones: map[string]*Remove{},
		txns: map[string]Txn{}, domains: map[string]DomainMetadata{}, checkpointVersion: -1,
		sortOnce: new(sync.Once),
	}
}

// apply replays one action onto the state.
func (s *Snapshot) apply(a *Action) {
	switch {
	case a.Add != nil:
		k := FileKey(a.Add.Path, a.Add.DeletionVector)
		s.files.put(k, fileEntry{add: a.Add})
		delete(s.tombstones, k)
	case a.Remove != nil:
		k := s.replayKey(a.Remove.Path, a.Remove.DeletionVector)
		s.files.remove(k)
		s.tombstones[k] = a.Remove
	case a.Metadata != nil:
		s.metadata = *a.Metadata
	case a.Protocol != nil:
		s.protocol = *a.Protocol
	case a.Txn != nil:
		s.txns[a.Txn.AppID] = *a.Txn
	case a.DomainMetadata != nil:
		if a.DomainMetadata.Removed {
			delete(s.domains, a.DomainMetadata.Domain)
		} else {
			s.domains[a.DomainMetadata.Domain] = *a.DomainMetadata
		}
	}
}

// finish validates the replayed state and derives the schema.
func (s *Snapshot) finish(where string) error {
	if s.protocol.MinReaderVersion == 0 {
		return fmt.Errorf("%s: no protocol action found at version %d", where, s.version)
	}
	if s.metadata.SchemaString == "" && s.metadata.ID == "" {
		return fmt.Errorf("%s: no metaData action found at version %d", where, s.version)
	}
	if err := s.protocol.CheckRead(); err != nil {
		return err
	}
	schema := &StructType{}
	var err error
	if s.metadata.SchemaString != "" { // Delta Live Tables can leave it empty
		schema, err = ParseSchema(s.metadata.SchemaString)
	}
	if err != nil {
		return fmt.Errorf("%s: metaData at version %d: %w", where, s.version, err)
	}
	s.schema = schema
	if s.metadata.Configuration == nil {
		s.metadata.Configuration = map[string]string{}
	}
	return nil
}

// restoreHint is what to do about a corrupt commit file.
const restoreHint = "restore the file from a copy of the table (earlier versions are still readable)"

// readCommit reads and decodes one commit file.
func readCommit(ctx context.Context, b *blob.Bucket, key string) ([]Action, error) {
	data, err := b.ReadAll(ctx, key)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, fmt.Errorf("commit file %s disappeared while reading the log (was it cleaned up concurrently?): %w", key, err)
		}
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		// A zero-byte commit is a torn write or a truncated copy, not an empty commit: reading
		// it as one would drop its rows and let writers commit on top of it.
		return nil, &CorruptError{Path: key, Err: fmt.Errorf("%w; %s", ErrEmptyLogFile, restoreHint)}
	}
	acts, err := DecodeActions(data)
	if err != nil {
		return nil, &CorruptError{Path: key, Err: fmt.Errorf("%w; %s", err, restoreHint)}
	}
	return acts, nil
}

// readCommits reads the commits of a segment with bounded parallelism, in order.
func readCommits(ctx context.Context, b *blob.Bucket, commits []commitFile) ([][]Action, error) {
	out := make([][]Action, len(commits))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, c := range commits {
		g.Go(func() error {
			acts, err := readCommit(gctx, b, c.key)
			out[i] = acts
			return err
		})
	}
	return out, g.Wait()
}

// commitTimestamp is the commit time of one commit: its in-commit timestamp when present and
// enabled, else the file's modification time.
func commitTimestamp(acts []Action, c commitFile, ict bool) int64 {
	if ict {
		for _, a := range acts {
			if a.CommitInfo != nil && a.CommitInfo.InCommitTimestamp != nil {
				return *a.CommitInfo.InCommitTimestamp
			}
		}
	}
	return c.modTime.UnixMilli()
}

// jsonNumber decodes a JSON value that may be a number or a string holding one.
func jsonNumber(raw json.RawMessage) (int64, bool) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		if v, err := n.Int64(); err == nil {
			return v, true
		}
		if f, err := n.Float64(); err == nil {
			return int64(f), true
		}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			return v, true
		}
	}
	return 0, false
}
