package reader_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lakehouse/lake/internal/testutil"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

func values(t testing.TB, rows []string, col string) []string {
	t.Helper()
	var out []string
	for _, r := range rows {
		i := strings.Index(r, `"`+col+`":`)
		if i < 0 {
			t.Fatalf("row %s has no %s", r, col)
		}
		v := r[i+len(col)+3:]
		if j := strings.IndexAny(v, ",}"); j >= 0 {
			v = v[:j]
		}
		out = append(out, v)
	}
	return out
}

// table-with-dv-small: v0 holds 0..9, v1 deletes two rows with a relative ('u') deletion
// vector: the peers assert values 1..8.
func TestDeletionVectorSmall(t *testing.T) {
	ctx := context.Background()
	tbl, err := table.Open(ctx, testutil.CorpusTable("table-with-dv-small"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	for v, want := range map[int64][]string{
		0: {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
		1: {"1", "2", "3", "4", "5", "6", "7", "8"},
	} {
		snap, err := tbl.SnapshotAt(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		rows, m, err := scanAll(t, tbl, snap, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := values(t, rows, "value"); !slices.Equal(got, want) {
			t.Errorf("v%d: values %v, want %v", v, got, want)
		}
		if v == 1 && (m.RowsDeleted != 2 || m.DeletionVectorsRead != 1 || m.RowsRead != 10) {
			t.Errorf("v1 metrics %+v", m)
		}
	}
}

// rewriteDV copies table-with-dv-small and replaces the deletion vector of commit 1 with what
// mutate makes of it.
func rewriteDV(t *testing.T, mutate func(dir string, dv *txlog.DeletionVector, payload []byte)) string {
	dir := testutil.CopyTable(t, "table-with-dv-small")
	p := filepath.Join(dir, "_delta_log", "00000000000000000001.json")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	acts, err := txlog.DecodeActions(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acts {
		if a.Add == nil || a.Add.DeletionVector == nil {
			continue
		}
		dv := a.Add.DeletionVector
		file := filepath.Join(dir, "deletion_vector_61d16c75-6994-46b7-a15b-8b538852e50e.bin")
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		size := binary.BigEndian.Uint32(raw[1:])
		mutate(dir, dv, raw[5:5+size])
	}
	writeCommit(t, dir, 1, acts...)
	return dir
}

func encodeZ85(b []byte) string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	var sb strings.Builder
	for i := 0; i < len(b); i += 4 {
		v := binary.BigEndian.Uint32(b[i:])
		var d [5]byte
		for j := 4; j >= 0; j-- {
			d[j] = alphabet[v%85]
			v /= 85
		}
		sb.Write(d[:])
	}
	return sb.String()
}

// The same deletions stored inline ('i'), under a random prefix ('u'), and at an absolute path
// ('p'); a damaged deletion vector is an error naming the file.
func TestDeletionVectorStorage(t *testing.T) {
	want := []string{"1", "2", "3", "4", "5", "6", "7", "8"}
	for _, tc := range []struct {
		name    string
		mutate  func(dir string, dv *txlog.DeletionVector, payload []byte)
		wantErr string
	}{
		{"inline", func(dir string, dv *txlog.DeletionVector, payload []byte) {
			dv.StorageType, dv.PathOrInlineDv, dv.Offset = "i", encodeZ85(payload), nil
		}, ""},
		{"prefix", func(dir string, dv *txlog.DeletionVector, payload []byte) {
			os.MkdirAll(filepath.Join(dir, "ab"), 0o755)
			os.Rename(filepath.Join(dir, "deletion_vector_61d16c75-6994-46b7-a15b-8b538852e50e.bin"),
				filepath.Join(dir, "ab", "deletion_vector_61d16c75-6994-46b7-a15b-8b538852e50e.bin"))
			dv.PathOrInlineDv = "ab" + dv.PathOrInlineDv
		}, ""},
		{"absolute", func(dir string, dv *txlog.DeletionVector, payload []byte) {
			dv.StorageType = "p"
			dv.PathOrInlineDv = "file://" + filepath.ToSlash(filepath.Join(dir, "deletion_vector_61d16c75-6994-46b7-a15b-8b538852e50e.bin"))
		}, ""},
		{"absolute elsewhere", func(dir string, dv *txlog.DeletionVector, payload []byte) {
			dv.StorageType = "p"
			dv.PathOrInlineDv = "s3://other-bucket/deletion_vector_61d16c75-6994-46b7-a15b-8b538852e50e.bin"
		}, "another store"},
		{"missing", func(dir string, dv *txlog.DeletionVector, payload []byte) {
			os.Remove(filepath.Join(dir, "deletion_vector_61d16c75-6994-46b7-a15b-8b538852e50e.bin"))
		}, "deletion_vector_61d16c75-6994-46b7-a15b-8b538852e50e.bin"},
		{"checksum", func(dir string, dv *txlog.DeletionVector, payload []byte) {
			p := filepath.Join(dir, "deletion_vector_61d16c75-6994-46b7-a15b-8b538852e50e.bin")
			raw, _ := os.ReadFile(p)
			raw[len(raw)-1] ^= 0xff
			os.WriteFile(p, raw, 0o644)
		}, "checksum"},
		{"cardinality", func(dir string, dv *txlog.DeletionVector, payload []byte) {
			dv.Cardinality = 3
		}, "cardinality"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := rewriteDV(t, tc.mutate)
			tbl, snap := openLatest(t, dir)
			rows, _, err := scanAll(t, tbl, snap, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "part-00000-fae5310a") {
					t.Fatalf("want an error naming the data file and %q, got %v", tc.wantErr, err)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := values(t, rows, "value"); !slices.Equal(got, want) {
				t.Fatalf("values %v, want %v", got, want)
			}
		})
	}
}

// Rows deleted by deletion vectors are never returned: every version of the DV tables holds
// numRecords minus the deletion vectors' cardinality, and no row twice.
func TestDeletionVectorTables(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"table_with_deletion_logs", "cdf-table-with-cdc-and-dvs", "table_with_liquid_clustering"} {
		tbl, err := table.Open(ctx, testutil.CorpusTable(name), nil)
		if err != nil {
			t.Fatal(err)
		}
		latest, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		withDV := 0
		for v := int64(0); v <= latest.Version(); v++ {
			snap, err := tbl.SnapshotAt(ctx, v)
			if errors.Is(err, txlog.ErrVersionNotFound) {
				continue
			}
			if err != nil {
				t.Fatalf("%s v%d: %v", name, v, err)
			}
			if !snapHasDV(snap) {
				continue
			}
			withDV++
			rows, m, err := scanAll(t, tbl, snap, nil)
			if err != nil {
				t.Fatalf("%s v%d: %v", name, v, err)
			}
			if want := dvRowCount(t, snap); len(rows) != want {
				t.Errorf("%s v%d: %d rows, want %d", name, v, len(rows), want)
			}
			if m.RowsDeleted == 0 {
				t.Errorf("%s v%d: no rows deleted: %+v", name, v, m)
			}
		}
		t.Logf("%s: %d versions with deletion vectors", name, withDV)
		tbl.Close()
	}
}
