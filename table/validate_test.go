package table_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// Create refuses what it cannot honour with an *OptionError matching ErrInvalidOptions, and
// writes nothing: not even the local directory.
func TestCreateValidatesOptions(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	for i, tc := range []struct {
		parts  []string
		props  map[string]string
		option string
		msg    string
	}{
		{parts: []string{"event_date", "event_date"}, option: "partition column", msg: "listed twice"},
		{parts: []string{"ghost"}, option: "partition column", msg: "not in the schema"},
		{parts: []string{"properties"}, option: "partition column", msg: "primitive type"},
		{props: map[string]string{"delta.columnMapping.mode": "nme"}, option: "delta.columnMapping.mode", msg: "none, name, id"},
		{props: map[string]string{"delta.checkpointInterval": "abc"}, option: "delta.checkpointInterval", msg: "positive integer"},
		{props: map[string]string{"delta.checkpointInterval": "0"}, option: "delta.checkpointInterval", msg: "positive integer"},
		{props: map[string]string{"delta.checkpointInterval": "-5"}, option: "delta.checkpointInterval", msg: "positive integer"},
		{props: map[string]string{"delta.appendOnly": "TRUE!"}, option: "delta.appendOnly", msg: "true or false"},
		{props: map[string]string{"delta.deletedFileRetentionDuration": "a week"}, option: "delta.deletedFileRetentionDuration", msg: "interval"},
		{props: map[string]string{"Delta.AppendOnly": "true"}, option: "Delta.AppendOnly", msg: "delta.appendOnly"},
	} {
		dir := filepath.Join(base, "t", strings.Repeat("x", i+1))
		_, err := table.Create(ctx, dir, table.InteractionSchema(), &table.CreateOptions{PartitionColumns: tc.parts, Properties: tc.props})
		var oe *table.OptionError
		if !errors.As(err, &oe) || !errors.Is(err, table.ErrInvalidOptions) || oe.Option != tc.option || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("parts %v props %v: got %v, want an *OptionError on %s mentioning %q", tc.parts, tc.props, err, tc.option, tc.msg)
		}
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("parts %v props %v: refused create left %s behind", tc.parts, tc.props, dir)
		}
	}
	// Every column a partition column leaves the data files without columns.
	schema := &txlog.StructType{Fields: []txlog.StructField{{Name: "a", Type: txlog.String, Nullable: true}}}
	if _, err := table.Create(ctx, "mem://validate-all-parts", schema, &table.CreateOptions{PartitionColumns: []string{"a"}}); !errors.Is(err, table.ErrInvalidOptions) {
		t.Errorf("all columns partitioned: %v", err)
	}
	// Unknown keys (constraints, other engines' properties) are kept as given.
	tb, err := table.Create(ctx, "mem://validate-ok-"+uuid.NewString(), table.InteractionSchema(), &table.CreateOptions{Properties: map[string]string{
		"delta.checkpointInterval": "3", "delta.constraints.c": "value > 0", "owner": "me"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	snap, err := tb.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.CheckpointInterval() != 3 || snap.Configuration()["owner"] != "me" {
		t.Errorf("configuration %v", snap.Configuration())
	}
}

// Open creates nothing: a missing local directory is "not a Delta table", and stays missing.
func TestOpenMissingDirectoryCreatesNothing(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "no", "such", "table")
	for _, uri := range []string{dir, "file://" + dir} {
		_, err := table.Open(ctx, uri, nil)
		if !errors.Is(err, txlog.ErrNotATable) || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "lake create") {
			t.Errorf("Open(%s): %v, want ErrNotATable saying the directory does not exist", uri, err)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(dir))), "no")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Open(%s) created directories", uri)
		}
	}
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := table.Open(ctx, f, nil); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Open(a file): %v", err)
	}
}

// Column mapping makes the protocol (2,5), or the columnMapping table feature next to other
// features; no feature is listed twice.
func TestProtocolForColumnMapping(t *testing.T) {
	schema := table.InteractionSchema()
	for _, tc := range []struct {
		props map[string]string
		want  string
	}{
		{map[string]string{"delta.columnMapping.mode": "none"}, "1,2,[],[]"},
		{map[string]string{"delta.columnMapping.mode": "name"}, "2,5,[],[]"},
		{map[string]string{"delta.columnMapping.mode": "id", "delta.appendOnly": "true"}, "2,5,[],[]"},
		{map[string]string{"delta.columnMapping.mode": "name", "delta.enableInCommitTimestamps": "true"},
			"3,7,[columnMapping],[inCommitTimestamp columnMapping appendOnly invariants]"},
		{map[string]string{"delta.enableInCommitTimestamps": "true", "delta.appendOnly": "true"},
			"1,7,[],[inCommitTimestamp appendOnly invariants]"},
	} {
		p := table.ProtocolFor(schema, tc.props)
		got := fmt.Sprintf("%d,%d,%v,%v", p.MinReaderVersion, p.MinWriterVersion, p.ReaderFeatures, p.WriterFeatures)
		if got != tc.want {
			t.Errorf("%v: protocol %s, want %s", tc.props, got, tc.want)
		}
	}
}
