package compaction

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/uuid"

	"github.com/lakehouse/lake/internal/testutil"
	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// newDVTable creates a table with delta.enableDeletionVectors=true; table.Create gives it the
// deletionVectors reader and writer features.
func newDVTable(t *testing.T) *table.Table {
	t.Helper()
	tb := newTable(t, memURI(), map[string]string{"delta.enableDeletionVectors": "true"})
	p := latest(t, tb).Protocol()
	if !slices.Contains(p.ReaderFeatures, "deletionVectors") || !slices.Contains(p.WriterFeatures, "deletionVectors") {
		t.Fatalf("protocol %+v lacks deletionVectors", p)
	}
	return tb
}

// setProperty commits a metadata change that sets one table property, leaving the protocol as it
// is (a table that says it enables deletion vectors without the protocol feature for them).
func setProperty(t *testing.T, tb *table.Table, k, v string) {
	t.Helper()
	snap := latest(t, tb)
	md := snap.Metadata()
	md.Configuration = maps.Clone(md.Configuration)
	md.Configuration[k] = v
	txn := tb.Log().NewTransaction(snap, &txlog.TxnOptions{Operation: "SET TBLPROPERTIES"})
	txn.SetMetadata(md)
	if _, err := txn.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// physicalRows returns, for each row of data file a read without its deletion vector, the
// value of column col, in file order.
func physicalRows(t *testing.T, tb *table.Table, snap *txlog.Snapshot, a *txlog.Add, col string) []string {
	t.Helper()
	ctx := context.Background()
	plain := *a
	plain.DeletionVector = nil
	sc, err := reader.NewScan(ctx, tb, snap, &reader.ScanOptions{Files: []*txlog.Add{&plain}, Columns: []string{col}, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rec, err := range sc.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		c := rec.Column(0).(*array.String)
		for i := 0; i < c.Len(); i++ {
			out = append(out, c.Value(i))
		}
	}
	return out
}

// checkVectors checks every file of snap against the intended deletions: its vector, read by
// the reader's own code, is exactly the rows whose user is in gone; its stats keep the
// physical numRecords with tightBounds=false.
func checkVectors(t *testing.T, tb *table.Table, snap *txlog.Snapshot, gone ...string) (inline, onDisk int) {
	t.Helper()
	for _, a := range snap.Files() {
		users := physicalRows(t, tb, snap, a, "user_id")
		want := roaring64.New()
		for i, u := range users {
			if slices.Contains(gone, u) {
				want.Add(uint64(i))
			}
		}
		if a.DeletionVector == nil {
			if !want.IsEmpty() {
				t.Errorf("%s: no deletion vector, want rows %v", a.Path, want.ToArray())
			}
			continue
		}
		got, err := reader.ReadDeletionVector(context.Background(), tb, a.DeletionVector)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equals(want) || a.DeletionVector.Cardinality != int64(want.GetCardinality()) {
			t.Errorf("%s: vector %v (cardinality %d), want %v", a.Path, got.ToArray(), a.DeletionVector.Cardinality, want.ToArray())
		}
		var st struct {
			NumRecords  int64 `json:"numRecords"`
			TightBounds *bool `json:"tightBounds"`
		}
		if err := json.Unmarshal([]byte(a.Stats), &st); err != nil || st.NumRecords != int64(len(users)) || st.TightBounds == nil || *st.TightBounds {
			t.Errorf("%s: stats %s (%v), want numRecords %d and tightBounds false", a.Path, a.Stats, err, len(users))
		}
		switch a.DeletionVector.StorageType {
		case "i":
			inline++
			if a.DeletionVector.Offset != nil {
				t.Errorf("%s: inline vector with an offset", a.Path)
			}
		case "u":
			onDisk++
			checkDVFile(t, tb, a.DeletionVector)
		default:
			t.Errorf("%s: storage type %q", a.Path, a.DeletionVector.StorageType)
		}
	}
	return inline, onDisk
}

// checkDVFile checks the framing of an on-disk vector: version byte, big-endian size, CRC-32.
func checkDVFile(t *testing.T, tb *table.Table, dv *txlog.DeletionVector) {
	t.Helper()
	key, err := reader.DeletionVectorKey(tb, dv)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(key, "/") || !strings.HasPrefix(key, "deletion_vector_") {
		t.Errorf("vector file %q is not at the table's root", key)
	}
	data, err := tb.Bucket().ReadAll(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	off := int(*dv.Offset)
	if data[0] != dvFileVersion || off < 1 || off+8+int(dv.SizeInBytes) > len(data) {
		t.Fatalf("vector file %s: version %d, offset %d, %d bytes", key, data[0], off, len(data))
	}
	size := binary.BigEndian.Uint32(data[off:])
	body := data[off+4 : off+4+int(size)]
	if int32(size) != dv.SizeInBytes || binary.BigEndian.Uint32(data[off+4+int(size):]) != crc32.ChecksumIEEE(body) {
		t.Errorf("vector file %s at %d: size %d (log %d) or checksum wrong", key, off, size, dv.SizeInBytes)
	}
	if binary.LittleEndian.Uint32(body) != dvPortableMagic {
		t.Errorf("vector file %s at %d: magic %d", key, off, binary.LittleEndian.Uint32(body))
	}
}

func TestDeleteWritesDeletionVectors(t *testing.T) {
	ctx := context.Background()
	tb := newDVTable(t)
	for b := 0; b < 3; b++ {
		appendRows(t, tb, rowsN(70, 3, string(rune('a'+b))))
	}
	before := latest(t, tb)
	all := canonicalRows(t, tb, before)
	paths := func(s *txlog.Snapshot) []string {
		var out []string
		for _, a := range s.Files() {
			out = append(out, a.Path)
		}
		slices.Sort(out)
		return out
	}
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	res, err := Delete(ctx, tb, &DeleteOptions{Where: filters(t, "user_id = u3"), Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	mem.AssertSize(t, 0)
	want := without(all, `"user_id":"u3"`)
	snap := latest(t, tb)
	if !res.Committed || res.RowsDeleted != int64(len(all)-len(want)) || res.FilesAdded != 0 || res.FilesRemoved != 0 ||
		res.DeletionVectorsAdded != int64(len(snap.Files())) || res.RowsCopied != 0 {
		t.Fatalf("result: %+v", res)
	}
	if got := canonicalRows(t, tb, snap); !slices.Equal(got, want) {
		t.Fatalf("rows after delete: %d, want %d", len(got), len(want))
	}
	if !slices.Equal(paths(snap), paths(before)) {
		t.Fatal("a delete with deletion vectors rewrote data files")
	}
	if inline, onDisk := checkVectors(t, tb, snap, "u3"); inline != len(snap.Files()) || onDisk != 0 || res.DeletionVectorFile != "" {
		t.Fatalf("%d inline and %d on-disk vectors (file %q), want all inline", inline, onDisk, res.DeletionVectorFile)
	}
	hist, _ := tb.History(ctx, 1)
	if m := hist[0].CommitInfo.OperationMetrics; m["numDeletionVectorsAdded"] != "9" || m["numDeletionVectorsRemoved"] != "0" || m["numDeletedRows"] != "30" {
		t.Fatalf("metrics: %v", m)
	}

	// A second delete merges into the existing vectors, this time written to a file.
	res, err = Delete(ctx, tb, &DeleteOptions{Where: filters(t, "user_id = u5"), DVInlineMaxBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	want = without(want, `"user_id":"u5"`)
	snap = latest(t, tb)
	if res.RowsDeleted != 30 || res.DeletionVectorsRemoved != 9 || res.DeletionVectorFile == "" {
		t.Fatalf("result: %+v", res)
	}
	if got := canonicalRows(t, tb, snap); !slices.Equal(got, want) {
		t.Fatalf("rows after the second delete: %d, want %d", len(got), len(want))
	}
	if inline, onDisk := checkVectors(t, tb, snap, "u3", "u5"); inline != 0 || onDisk != len(snap.Files()) {
		t.Fatalf("%d inline and %d on-disk vectors, want all on disk", inline, onDisk)
	}
	// Rows already deleted do not count again; nothing new: nothing committed.
	v := snap.Version()
	res, err = Delete(ctx, tb, &DeleteOptions{Where: filters(t, "user_id = u5")})
	if err != nil || res.Committed || res.RowsDeleted != 0 || latest(t, tb).Version() != v {
		t.Fatalf("repeated delete: %+v, %v", res, err)
	}
	// Time travel still sees the rows.
	old, _ := tb.SnapshotAt(ctx, before.Version())
	if !slices.Equal(canonicalRows(t, tb, old), all) {
		t.Fatal("time travel before the deletes")
	}
	// Deleting every remaining row of a file removes it.
	res, err = Delete(ctx, tb, &DeleteOptions{Where: filters(t, "event_date = 2024-01-01")})
	if err != nil || res.FilesRemoved != 3 || res.DeletionVectorsAdded != 0 || res.DeletionVectorsRemoved != 3 {
		t.Fatalf("delete of whole partition: %+v, %v", res, err)
	}
	if got := canonicalRows(t, tb, latest(t, tb)); !slices.Equal(got, without(want, `"event_date":"2024-01-01"`)) {
		t.Fatalf("rows after deleting a partition: %d", len(got))
	}
	// A data condition that empties files, beside one that does not.
	res, err = Delete(ctx, tb, &DeleteOptions{Where: filters(t, "item_id != nothing", "event_date = 2024-01-02")})
	if err != nil || res.FilesRemoved != 3 || res.DeletionVectorsAdded != 0 {
		t.Fatalf("delete emptying files: %+v, %v", res, err)
	}
}

// A delete on a file that already carries a deletion vector written by Spark merges with it.
func TestDeleteMergesCorpusDeletionVector(t *testing.T) {
	ctx := context.Background()
	dir := testutil.CopyTable(t, "table-with-dv-small")
	tb, err := table.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	snap := latest(t, tb)
	if !deletionVectorsEnabled(snap) {
		t.Skip("the corpus table does not enable deletion vectors")
	}
	a := snap.Files()[0]
	old, err := reader.ReadDeletionVector(ctx, tb, a.DeletionVector)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Delete(ctx, tb, &DeleteOptions{Where: filters(t, "value >= 7")})
	if err != nil {
		t.Fatal(err)
	}
	if res.RowsDeleted != 2 || res.DeletionVectorsAdded != 1 || res.DeletionVectorsRemoved != 1 { // 9 was already deleted
		t.Fatalf("result: %+v", res)
	}
	snap = latest(t, tb)
	got, err := reader.ReadDeletionVector(ctx, tb, snap.Files()[0].DeletionVector)
	if err != nil {
		t.Fatal(err)
	}
	want := old.Clone()
	want.AddMany([]uint64{7, 8, 9})
	if !got.Equals(want) {
		t.Fatalf("merged vector %v, want %v", got.ToArray(), want.ToArray())
	}
	if rows := canonicalRows(t, tb, snap); len(rows) != 6 { // 10 rows less 0, 7, 8, 9
		t.Fatalf("rows: %v", rows)
	}
}

// Without the property, or with it but without the protocol feature, files are rewritten.
func TestDeleteWithoutDeletionVectorsRewrites(t *testing.T) {
	ctx := context.Background()
	for _, props := range []map[string]string{nil, {"delta.enableDeletionVectors": "true"}} {
		tb := newTable(t, memURI(), nil)
		for k, v := range props {
			setProperty(t, tb, k, v)
		}
		appendRows(t, tb, rowsN(21, 3, "a"))
		res, err := Delete(ctx, tb, &DeleteOptions{Where: filters(t, "user_id = u3")})
		if err != nil {
			t.Fatal(err)
		}
		if res.FilesRemoved == 0 || res.FilesAdded != res.FilesRemoved || res.DeletionVectorsAdded != 0 {
			t.Fatalf("%v: %+v", props, res)
		}
		for _, a := range latest(t, tb).Files() {
			if a.DeletionVector != nil {
				t.Fatalf("%v: %s has a deletion vector", props, a.Path)
			}
		}
	}
}

// A concurrent optimize of a file the delete read fails it, and its vector file is gone.
func TestDeleteDeletionVectorConflict(t *testing.T) {
	ctx := context.Background()
	tb := newDVTable(t)
	for b := 0; b < 3; b++ {
		appendRows(t, tb, rowsN(9, 3, string(rune('a'+b))))
	}
	testHookBeforeDeleteCommit = func() {
		if _, err := Optimize(ctx, tb, nil); err != nil {
			t.Fatal(err)
		}
	}
	defer func() { testHookBeforeDeleteCommit = nil }()
	res, err := Delete(ctx, tb, &DeleteOptions{Where: filters(t, "user_id = u2"), DVInlineMaxBytes: -1})
	var ce *txlog.ConflictError
	if !errors.As(err, &ce) || ce.Retryable() {
		t.Fatalf("delete after a concurrent optimize: %+v, %v", res, err)
	}
	it := tb.Bucket().List(nil)
	for {
		obj, err := it.Next(ctx)
		if err != nil {
			break
		}
		if strings.HasPrefix(obj.Key, "deletion_vector_") {
			t.Errorf("leftover %s", obj.Key)
		}
	}
}

// decodeZ85 is the test's own Z85 decoder (the reader has its own).
func decodeZ85(t *testing.T, s string) []byte {
	t.Helper()
	var out []byte
	for i := 0; i+5 <= len(s); i += 5 {
		var v uint64
		for j := 0; j < 5; j++ {
			v = v*85 + uint64(strings.IndexByte(z85Alphabet, s[i+j]))
		}
		out = binary.BigEndian.AppendUint32(out, uint32(v))
	}
	return out
}

// Z85 as the ZeroMQ spec and the protocol's examples encode it.
func TestEncodeZ85(t *testing.T) {
	if got := encodeZ85([]byte{0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B}); got != "HelloWorld" {
		t.Fatalf("spec vector: %q", got)
	}
	// The protocol's inline example (sizeInBytes 40) and its relative path example.
	const inline = "wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L"
	if got := encodeZ85(decodeZ85(t, inline)[:40]); got != inline {
		t.Fatalf("inline example: %q", got)
	}
	id := uuid.MustParse("d2c639aa-8816-431a-aaf6-d3fe2512ff61")
	if got := "ab" + encodeZ85(id[:]); got != "ab^-aqEH.-t@S}K{vb[*k^" {
		t.Fatalf("relative path example: %q", got)
	}
	// Padding: sizes that are not a multiple of 4 round-trip through the reader.
	for n := 1; n <= 40; n++ {
		rows := roaring64.New()
		for i := 0; i < n; i++ {
			rows.Add(uint64(i * i * 7))
		}
		data, err := encodeDVBitmap(rows)
		if err != nil {
			t.Fatal(err)
		}
		dv := inlineDV(data, int64(n))
		if len(dv.PathOrInlineDv)%5 != 0 || !bytes.Equal(decodeZ85(t, dv.PathOrInlineDv)[:len(data)], data) {
			t.Fatalf("%d rows: inline %q", n, dv.PathOrInlineDv)
		}
		got, err := reader.ReadDeletionVector(context.Background(), nil, dv)
		if err != nil || !got.Equals(rows) {
			t.Fatalf("%d rows: read back %v, %v", n, got, err)
		}
	}
}

// Every deletion vector file of the corpus (written by Spark / Databricks) is re-encoded from
// the rows it holds by our encoder, byte for byte: RoaringBitmapArray bytes, file framing
// (version, sizes, checksums, offsets), and the descriptors the log holds for them.
func TestDeletionVectorEncodingMatchesCorpus(t *testing.T) {
	var files int
	for _, name := range []string{"table-with-dv-small", "table_with_deletion_logs", "cdf-table-with-cdc-and-dvs"} {
		dir := testutil.CorpusTable(name)
		// The descriptors in the table's log, by path string and offset.
		descs := map[string]txlog.DeletionVector{}
		logs, _ := filepath.Glob(filepath.Join(dir, "_delta_log", "*.json"))
		for _, p := range logs {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(b), "\n") {
				var act txlog.Action
				if json.Unmarshal([]byte(line), &act) != nil || act.Add == nil || act.Add.DeletionVector == nil {
					continue
				}
				dv := *act.Add.DeletionVector
				descs[fmt.Sprintf("%s@%d", dv.PathOrInlineDv, *dv.Offset)] = dv
			}
		}
		matched := 0
		bins, _ := filepath.Glob(filepath.Join(dir, "deletion_vector_*.bin"))
		for _, p := range bins {
			files++
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			id := uuid.MustParse(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "deletion_vector_"), ".bin"))
			f := newDVFile(id)
			for off := 1; off < len(raw); {
				size := int(binary.BigEndian.Uint32(raw[off:]))
				data := raw[off+4 : off+4+size]
				rows, err := reader.DecodeDeletionVector(data)
				if err != nil {
					t.Fatalf("%s at %d: %v", p, off, err)
				}
				enc, err := encodeDVBitmap(rows)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(enc, data) {
					t.Errorf("%s at %d (rows %v):\n ours   %x\n corpus %x", p, off, rows.ToArray(), enc, data)
				}
				dv := f.add(enc, int64(rows.GetCardinality()))
				if want, ok := descs[fmt.Sprintf("%s@%d", dv.PathOrInlineDv, *dv.Offset)]; ok {
					matched++
					if want.StorageType != dv.StorageType || want.SizeInBytes != dv.SizeInBytes || want.Cardinality != dv.Cardinality {
						t.Errorf("%s at %d: descriptor %+v, the log's %+v", p, off, *dv, want)
					}
				}
				off += 4 + size + 4
			}
			if !bytes.Equal(f.buf, raw) {
				t.Errorf("%s: our file\n %x\nthe corpus's\n %x", p, f.buf, raw)
			}
		}
		if matched == 0 {
			t.Errorf("%s: none of our descriptors (path, offset) is one of the log's", name)
		}
	}
	if files < 10 {
		t.Fatalf("found %d corpus deletion vector files", files)
	}
}

// Vacuum keeps the vector files the latest version references, and the rows still read.
func TestVacuumKeepsWrittenDeletionVectors(t *testing.T) {
	ctx := context.Background()
	tb := newDVTable(t)
	appendRows(t, tb, rowsN(30, 1, "a"))
	res, err := Delete(ctx, tb, &DeleteOptions{Where: filters(t, "user_id = u1"), DVInlineMaxBytes: -1})
	if err != nil || res.DeletionVectorFile == "" {
		t.Fatalf("delete: %+v, %v", res, err)
	}
	want := canonicalRows(t, tb, latest(t, tb))
	later := func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }
	vac, err := Vacuum(ctx, tb, &VacuumOptions{Now: later})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(vac.Deleted, res.DeletionVectorFile) {
		t.Fatalf("vacuum deleted the live vector file %s", res.DeletionVectorFile)
	}
	if got := canonicalRows(t, tb, latest(t, tb)); !slices.Equal(got, want) || len(got) != 30-5 {
		t.Fatalf("rows after vacuum: %d", len(got))
	}
}
