package txlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"
)

// memCommits is a CommitStore over a memblob bucket (whose IfNotExist is atomic).
type memCommits struct{ b *blob.Bucket }

func (m memCommits) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	err := m.b.Upload(ctx, key, bytes.NewReader(data), &blob.WriterOptions{IfNotExist: true, ContentType: "application/json"})
	if gcerrors.Code(err) == gcerrors.FailedPrecondition {
		return fmt.Errorf("%s: %w", key, ErrVersionExists)
	}
	return err
}

func testSchema() *StructType {
	return &StructType{Fields: []StructField{
		{Name: "id", Type: Long},
		{Name: "day", Type: String, Nullable: true},
	}}
}

func newTestLog(t *testing.T, opts *LogOptions) (*Log, *blob.Bucket) {
	t.Helper()
	b := memblob.OpenBucket(nil)
	t.Cleanup(func() { b.Close() })
	return NewLog(b, memCommits{b}, opts), b
}

func createTable(t *testing.T, l *Log, config map[string]string) *Snapshot {
	t.Helper()
	ctx := context.Background()
	txn := l.NewTransaction(nil, &TxnOptions{Operation: "CREATE TABLE"})
	txn.SetProtocol(Protocol{MinReaderVersion: 1, MinWriterVersion: 2})
	if config == nil {
		config = map[string]string{}
	}
	txn.SetMetadata(Metadata{ID: "t1", Format: Format{Provider: "parquet"}, SchemaString: testSchema().String(),
		PartitionColumns: []string{"day"}, Configuration: config})
	v, err := txn.Commit(ctx)
	if err != nil || v != 0 {
		t.Fatalf("create: v=%d err=%v", v, err)
	}
	s, err := l.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func addAction(path, day string) Action {
	return Action{Add: &Add{Path: path, PartitionValues: map[string]*string{"day": &day}, Size: 10, DataChange: true,
		Stats: `{"numRecords":1}`}}
}

func removeAction(path string) Action {
	ts := time.Now().UnixMilli()
	return Action{Remove: &Remove{Path: path, DeletionTimestamp: &ts, DataChange: true}}
}

func commit(t *testing.T, l *Log, read *Snapshot, acts ...Action) int64 {
	t.Helper()
	txn := l.NewTransaction(read, nil)
	txn.AddActions(acts...)
	v, err := txn.Commit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCommitAndReplay(t *testing.T) {
	ctx := context.Background()
	l, _ := newTestLog(t, &LogOptions{DisableAutoCheckpoint: true})
	s0 := createTable(t, l, nil)
	commit(t, l, s0, addAction("day=1/a.parquet", "1"), addAction("day=2/b.parquet", "2"))
	s1, _ := l.Snapshot(ctx)
	commit(t, l, s1, removeAction("day=1/a.parquet"), addAction("day=1/c.parquet", "1"))
	s2, err := l.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Version() != 2 {
		t.Fatalf("version %d", s2.Version())
	}
	var paths []string
	for _, a := range s2.Files() {
		paths = append(paths, a.Path)
	}
	if fmt.Sprint(paths) != "[day=1/c.parquet day=2/b.parquet]" {
		t.Fatalf("files %v", paths)
	}
	if n := len(s2.Tombstones(time.Now())); n != 1 {
		t.Fatalf("tombstones %d", n)
	}
	// Time travel back to version 1.
	s1b, err := l.SnapshotAt(ctx, 1)
	if err != nil || s1b.NumFiles() != 2 || s1b.Files()[0].Path != "day=1/a.parquet" {
		t.Fatalf("v1: %v %v", err, s1b)
	}
	// A version past the end is a clear error.
	if _, err := l.SnapshotAt(ctx, 9); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("want ErrVersionNotFound, got %v", err)
	}
	// Incremental update reads only the new commit.
	commit(t, l, s2, addAction("day=3/d.parquet", "3"))
	s3, err := l.Update(ctx, s2)
	if err != nil || s3.Version() != 3 || s3.NumFiles() != 3 || s2.NumFiles() != 2 {
		t.Fatalf("update: %v v=%d files=%d old=%d", err, s3.Version(), s3.NumFiles(), s2.NumFiles())
	}
	same, err := l.Update(ctx, s3)
	if err != nil || same != s3 {
		t.Fatalf("update without new commits should return the same snapshot: %v", err)
	}
	hist, err := l.History(ctx, 0)
	if err != nil || len(hist) != 4 || hist[0].Version != 3 || hist[3].CommitInfo.Operation != "CREATE TABLE" {
		t.Fatalf("history: %v %+v", err, hist)
	}
	for i := 1; i < len(hist); i++ {
		if hist[i-1].Timestamp <= hist[i].Timestamp {
			t.Fatalf("history timestamps not strictly decreasing: %d then %d", hist[i-1].Timestamp, hist[i].Timestamp)
		}
	}
}

func TestConcurrentBlindAppendsRebase(t *testing.T) {
	ctx := context.Background()
	l, _ := newTestLog(t, &LogOptions{DisableAutoCheckpoint: true})
	s0 := createTable(t, l, nil)
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				txn := l.NewTransaction(s0, nil) // everyone read version 0: all but one must rebase
				txn.AddActions(addAction(fmt.Sprintf("day=1/w%d-%d.parquet", w, i), "1"))
				if _, err := txn.Commit(ctx); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s, err := l.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version() != writers*each || s.NumFiles() != writers*each {
		t.Fatalf("version %d files %d, want %d", s.Version(), s.NumFiles(), writers*each)
	}
}

func TestConflicts(t *testing.T) {
	ctx := context.Background()
	l, _ := newTestLog(t, &LogOptions{DisableAutoCheckpoint: true})
	s0 := createTable(t, l, nil)
	commit(t, l, s0, addAction("day=1/a.parquet", "1"), addAction("day=2/b.parquet", "2"))
	s1, _ := l.Snapshot(ctx)

	// Two deletes of the same file: the second is a terminal conflict.
	commit(t, l, s1, removeAction("day=1/a.parquet"))
	txn := l.NewTransaction(s1, nil)
	txn.AddActions(removeAction("day=1/a.parquet"))
	_, err := txn.Commit(ctx)
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Kind != ConflictDeleteDelete || errors.Is(err, ErrConflict) {
		t.Fatalf("want terminal delete-delete conflict, got %v", err)
	}

	// A transaction that read partition day=2 conflicts with a non-blind write adding there.
	s2, _ := l.Snapshot(ctx)
	reader := l.NewTransaction(s2, nil)
	reader.ReadPartitions(func(pv map[string]*string) bool { return pv["day"] != nil && *pv["day"] == "2" })
	reader.AddActions(addAction("day=2/r.parquet", "2"))
	overwriter := l.NewTransaction(s2, nil)
	overwriter.ReadWholeTable()
	overwriter.AddActions(removeAction("day=2/b.parquet"), addAction("day=2/o.parquet", "2"))
	if _, err := overwriter.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = reader.Commit(ctx)
	if !errors.As(err, &ce) || (ce.Kind != ConflictDeleteRead && ce.Kind != ConflictAppendedToRead) || errors.Is(err, ErrConflict) {
		t.Fatalf("want a terminal read conflict, got %v", err)
	}

	// Metadata changes are terminal for concurrent writers; blind appends otherwise pass.
	s3, _ := l.Snapshot(ctx)
	md := s3.Metadata()
	md.Configuration = map[string]string{"k": "v"}
	mtx := l.NewTransaction(s3, nil)
	mtx.SetMetadata(md)
	if _, err := mtx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	app := l.NewTransaction(s3, nil)
	app.AddActions(addAction("day=9/x.parquet", "9"))
	if _, err := app.Commit(ctx); !errors.As(err, &ce) || ce.Kind != ConflictMetadataChanged {
		t.Fatalf("want metadata conflict, got %v", err)
	}
}

func TestAppTransactionIdempotence(t *testing.T) {
	ctx := context.Background()
	l, _ := newTestLog(t, &LogOptions{DisableAutoCheckpoint: true})
	s0 := createTable(t, l, nil)
	txn := l.NewTransaction(s0, nil)
	txn.SetAppTransaction("ingest-1", 7)
	txn.AddActions(addAction("day=1/a.parquet", "1"))
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	s1, _ := l.Snapshot(ctx)
	if v, ok := s1.AppTransactionVersion("ingest-1"); !ok || v != 7 {
		t.Fatalf("txn version %d %v", v, ok)
	}
	// A concurrent transaction for the same appId (read before the first committed) conflicts.
	dup := l.NewTransaction(s0, nil)
	dup.SetAppTransaction("ingest-1", 7)
	dup.AddActions(addAction("day=1/dup.parquet", "1"))
	var ce *ConflictError
	if _, err := dup.Commit(ctx); !errors.As(err, &ce) || ce.Kind != ConflictConcurrentTxn {
		t.Fatalf("want concurrent txn conflict, got %v", err)
	}
}

// unknownStore fails the first put with an unknown-outcome error after writing (as S3's 409 or
// a lost response can), then behaves normally.
type unknownStore struct {
	memCommits
	mu       sync.Mutex
	failNext bool
	write    bool
}

func (u *unknownStore) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	u.mu.Lock()
	fail, write := u.failNext, u.write
	u.failNext = false
	u.mu.Unlock()
	if fail {
		if write {
			if err := u.memCommits.PutIfAbsent(ctx, key, data); err != nil {
				return err
			}
		}
		return errors.New("connection reset by peer")
	}
	return u.memCommits.PutIfAbsent(ctx, key, data)
}

func TestUnknownOutcomeSettledByReadBack(t *testing.T) {
	ctx := context.Background()
	for _, landed := range []bool{true, false} {
		t.Run(fmt.Sprintf("landed=%v", landed), func(t *testing.T) {
			b := memblob.OpenBucket(nil)
			defer b.Close()
			us := &unknownStore{memCommits: memCommits{b}}
			l := NewLog(b, us, &LogOptions{DisableAutoCheckpoint: true})
			s0 := createTable(t, l, nil)
			us.failNext, us.write = true, landed
			v := commit(t, l, s0, addAction("day=1/a.parquet", "1"))
			if v != 1 {
				t.Fatalf("committed at %d, want 1 (settled by reading back)", v)
			}
			s, _ := l.Snapshot(ctx)
			if s.Version() != 1 || s.NumFiles() != 1 {
				t.Fatalf("version %d files %d", s.Version(), s.NumFiles())
			}
		})
	}
}

func TestGapDetected(t *testing.T) {
	ctx := context.Background()
	l, b := newTestLog(t, &LogOptions{DisableAutoCheckpoint: true})
	s0 := createTable(t, l, nil)
	commit(t, l, s0, addAction("day=1/a.parquet", "1"))
	s1, _ := l.Snapshot(ctx)
	commit(t, l, s1, addAction("day=1/b.parquet", "1"))
	if err := b.Delete(ctx, CommitKey(1)); err != nil {
		t.Fatal(err)
	}
	_, err := l.Snapshot(ctx)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("versions are not contiguous")) ||
		!bytes.Contains([]byte(err.Error()), []byte("version 1 is missing")) {
		t.Fatalf("want a gap error naming version 1, got %v", err)
	}
}

func TestCorruptCommitNamesFile(t *testing.T) {
	ctx := context.Background()
	l, b := newTestLog(t, &LogOptions{DisableAutoCheckpoint: true})
	createTable(t, l, nil)
	if err := b.WriteAll(ctx, CommitKey(1), []byte("{\"add\": {not json\n"), nil); err != nil {
		t.Fatal(err)
	}
	_, err := l.Snapshot(ctx)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Path != CommitKey(1) {
		t.Fatalf("want CorruptError naming %s, got %v", CommitKey(1), err)
	}
}

func TestCheckpointRoundTripAndAuto(t *testing.T) {
	ctx := context.Background()
	l, b := newTestLog(t, nil)
	s := createTable(t, l, map[string]string{"delta.checkpointInterval": "3"})
	for i := range 7 {
		commit(t, l, s, addAction(fmt.Sprintf("day=1/f%d.parquet", i), "1"))
		var err error
		if s, err = l.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []int64{3, 6} {
		if ok, _ := b.Exists(ctx, fmt.Sprintf("%s%020d.checkpoint.parquet", LogDir, v)); !ok {
			t.Fatalf("no automatic checkpoint at version %d", v)
		}
	}
	lc, err := l.ReadLastCheckpoint(ctx)
	if err != nil || lc == nil || lc.Version != 6 {
		t.Fatalf("_last_checkpoint: %+v %v", lc, err)
	}
	// Delete the JSON commits the checkpoint covers: the snapshot must come from the checkpoint.
	for v := int64(0); v <= 6; v++ {
		if err := b.Delete(ctx, CommitKey(v)); err != nil {
			t.Fatal(err)
		}
	}
	s2, err := l.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Version() != 7 || s2.NumFiles() != 7 || s2.Metadata().ID != "t1" {
		t.Fatalf("from checkpoint: version %d files %d", s2.Version(), s2.NumFiles())
	}
	if got := s2.Files()[0].Stats; got != `{"numRecords":1}` {
		t.Fatalf("stats lost in checkpoint: %q", got)
	}
	if _, err := l.SnapshotAt(ctx, 2); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("version 2 was cleaned up; want ErrVersionNotFound, got %v", err)
	}
}

func TestBrokenCheckpointFallsBack(t *testing.T) {
	ctx := context.Background()
	l, b := newTestLog(t, nil)
	s := createTable(t, l, map[string]string{"delta.checkpointInterval": "2"})
	for i := range 4 {
		commit(t, l, s, addAction(fmt.Sprintf("day=1/f%d.parquet", i), "1"))
		s, _ = l.Snapshot(ctx)
	}
	// Corrupt the newest checkpoint (v4): the snapshot falls back to v2's checkpoint + JSON.
	if err := b.WriteAll(ctx, fmt.Sprintf("%s%020d.checkpoint.parquet", LogDir, 4), []byte("garbage"), nil); err != nil {
		t.Fatal(err)
	}
	s2, err := l.Snapshot(ctx)
	if err != nil || s2.Version() != 4 || s2.NumFiles() != 4 {
		t.Fatalf("fallback: %v", err)
	}
}

func TestProtocolGate(t *testing.T) {
	p := Protocol{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: []string{"deletionVectors", "variantType"}}
	var uf *UnsupportedFeatureError
	if err := p.CheckRead(); !errors.As(err, &uf) || uf.Feature != "variantType" {
		t.Fatalf("want variantType refused, got %v", err)
	}
	p = Protocol{MinReaderVersion: 1, MinWriterVersion: 7, WriterFeatures: []string{"rowTracking"}}
	if err := p.CheckRead(); err != nil {
		t.Fatal(err)
	}
	if err := p.CheckWrite(nil); !errors.As(err, &uf) || uf.Feature != "rowTracking" || !uf.Write {
		t.Fatalf("want rowTracking refused for writes, got %v", err)
	}
	gen := &StructType{Fields: []StructField{{Name: "g", Type: Long, Metadata: map[string]any{"delta.generationExpression": "1"}}}}
	if err := (Protocol{MinReaderVersion: 1, MinWriterVersion: 4}).CheckWrite(gen); !errors.As(err, &uf) || uf.Feature != "generatedColumns" {
		t.Fatalf("want generatedColumns refused, got %v", err)
	}
}

func TestParseLastCheckpointForms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ver  int64
		size int64
		fail bool
	}{
		{`{"version":3,"size":10}`, 3, 0, false},
		{`{"version":2,"size":5,"size_in_bytes":1234,"parts":null}`, 2, 1234, false},
		{`{"version":9,"size":2,"sizeInBytes":77,"v2Checkpoint":{"path":"x"}}`, 9, 77, false},
		{``, 0, 0, true},
		{`not json`, 0, 0, true},
		{`{"size":1}`, 0, 0, true},
	} {
		lc, err := ParseLastCheckpoint([]byte(tc.in))
		if tc.fail {
			if err == nil {
				t.Errorf("%q: want an error", tc.in)
			}
			continue
		}
		if err != nil || lc.Version != tc.ver || lc.SizeInBytes != tc.size {
			t.Errorf("%q: %+v %v", tc.in, lc, err)
		}
	}
}

func TestParseLogName(t *testing.T) {
	for name, want := range map[string]string{
		"00000000000000000001.json":                                                 "1 commit",
		"00000000000000000010.checkpoint.parquet":                                   "10 classic",
		"00000000000000000010.checkpoint.0000000001.0000000002.parquet":             "10 multipart",
		"00000000000000000006.checkpoint.3a0d65cd-4056-49b8-937b-95f9e3ee90e5.json": "6 v2json",
		"00000000000000000001.crc":                                                  "",
		"_last_checkpoint":                                                          "",
		".00000000000000000001.json.crc":                                            "",
		"00000000000000000001.00000000000000000003.compacted.json":                  "",
	} {
		v, kind, _, _, ok := parseLogName(name)
		got := ""
		if ok {
			got = fmt.Sprintf("%d %s", v, kind)
		}
		if got != want {
			t.Errorf("%s: got %q want %q", name, got, want)
		}
	}
}
