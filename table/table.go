// Package table opens Delta tables by URI and reads their snapshots, history, schema and
// properties; it creates new tables.
//
// A table URI is a bare path (a local table), file://, mem://, s3://, gs:// or azblob:// (see
// internal/storage). The table root holds _delta_log/ and the data files as the Delta protocol
// lays them out.
//
// # Errors
//
// Opening a location without a log returns an error matching txlog.ErrNotATable; a version that
// does not exist matches txlog.ErrVersionNotFound; a table that needs a reader feature lake does
// not implement returns *txlog.UnsupportedFeatureError naming it.
//
// # Concurrency
//
// A Table is safe for concurrent use. Snapshots are immutable.
package table

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"gocloud.dev/blob"

	"github.com/lakehouse/lake/internal/storage"
	"github.com/lakehouse/lake/txlog"
)

// EngineVersion is the engine's version, written in commitInfo.engineInfo.
const EngineVersion = "0.1.0"

// EngineInfo is what commits carry in commitInfo.engineInfo.
const EngineInfo = "lake/" + EngineVersion

// Table is an open Delta table.
type Table struct {
	loc *storage.Location
	log *txlog.Log
}

// Options configure Open and Create. A nil *Options is the defaults.
type Options struct {
	// Log options; EngineInfo defaults to EngineInfo.
	Log txlog.LogOptions
}

func (o *Options) logOptions() *txlog.LogOptions {
	var lo txlog.LogOptions
	if o != nil {
		lo = o.Log
	}
	if lo.EngineInfo == "" {
		lo.EngineInfo = EngineInfo
	}
	return &lo
}

// Open opens the table at uri. It fails with an error matching txlog.ErrNotATable when the
// location has no transaction log.
func Open(ctx context.Context, uri string, opts *Options) (*Table, error) {
	t, err := open(ctx, uri, opts)
	if err != nil {
		return nil, err
	}
	ok, err := t.log.Exists(ctx)
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("open %s: %w", uri, err)
	}
	if !ok {
		t.Close()
		return nil, fmt.Errorf("open %s: %w: %s_delta_log has no commits (create one with `lake create`)", uri, txlog.ErrNotATable, slashed(uri))
	}
	return t, nil
}

func slashed(uri string) string {
	if uri == "" || uri[len(uri)-1] == '/' {
		return uri
	}
	return uri + "/"
}

func open(ctx context.Context, uri string, opts *Options) (*Table, error) {
	loc, err := storage.Open(ctx, uri)
	if err != nil {
		return nil, err
	}
	return &Table{loc: loc, log: txlog.NewLog(loc.Bucket, loc.Commits, opts.logOptions())}, nil
}

// CreateOptions describe a new table.
type CreateOptions struct {
	Options
	PartitionColumns []string
	Properties       map[string]string
	Name             string
	Description      string
}

// Create creates a table at uri with schema. It fails when a table already exists there.
func Create(ctx context.Context, uri string, schema *txlog.StructType, opts *CreateOptions) (*Table, error) {
	var o CreateOptions
	if opts != nil {
		o = *opts
	}
	if schema == nil || len(schema.Fields) == 0 {
		return nil, errors.New("create: the schema has no columns")
	}
	seen := map[string]bool{}
	for _, f := range schema.Fields {
		if seen[f.Name] {
			return nil, fmt.Errorf("create: column %q appears twice in the schema", f.Name)
		}
		seen[f.Name] = true
	}
	for _, c := range o.PartitionColumns {
		f, ok := schema.Field(c)
		if !ok {
			return nil, fmt.Errorf("create: partition column %q is not in the schema (columns: %v)", c, fieldNames(schema))
		}
		switch f.Type.(type) {
		case *txlog.StructType, *txlog.ArrayType, *txlog.MapType:
			return nil, fmt.Errorf("create: partition column %q has type %s; partition columns must be of a primitive type", c, f.Type.TypeName())
		}
	}
	t, err := open(ctx, uri, &o.Options)
	if err != nil {
		return nil, err
	}
	exists, err := t.log.Exists(ctx)
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("create %s: %w", uri, err)
	}
	if exists {
		t.Close()
		return nil, fmt.Errorf("create %s: a Delta table already exists there", uri)
	}
	now := time.Now().UnixMilli()
	md := txlog.Metadata{
		ID:               uuid.NewString(),
		Format:           txlog.Format{Provider: "parquet", Options: map[string]string{}},
		SchemaString:     schema.String(),
		PartitionColumns: slices.Clone(o.PartitionColumns),
		CreatedTime:      &now,
		Configuration:    maps.Clone(o.Properties),
	}
	if md.PartitionColumns == nil {
		md.PartitionColumns = []string{}
	}
	if md.Configuration == nil {
		md.Configuration = map[string]string{}
	}
	if o.Name != "" {
		md.Name = &o.Name
	}
	if o.Description != "" {
		md.Description = &o.Description
	}
	txn := t.log.NewTransaction(nil, &txlog.TxnOptions{
		Operation: "CREATE TABLE",
		OperationParameters: map[string]any{
			"partitionBy": jsonList(md.PartitionColumns), "properties": jsonMap(md.Configuration),
			"isManaged": "false", "description": o.Description,
		},
	})
	txn.SetProtocol(ProtocolFor(schema, md.Configuration))
	txn.SetMetadata(md)
	if _, err := txn.Commit(ctx); err != nil {
		t.Close()
		if errors.Is(err, txlog.ErrConflict) {
			return nil, fmt.Errorf("create %s: another writer created the table at the same time", uri)
		}
		return nil, fmt.Errorf("create %s: %w", uri, err)
	}
	return t, nil
}

// ProtocolFor returns the lowest protocol that supports schema and properties: (1,2) unless a
// feature needs table features.
func ProtocolFor(schema *txlog.StructType, props map[string]string) txlog.Protocol {
	var reader, writer []string
	if usesType(schema, "timestamp_ntz") {
		reader = append(reader, "timestampNtz")
		writer = append(writer, "timestampNtz")
	}
	if props["delta.enableInCommitTimestamps"] == "true" {
		writer = append(writer, "inCommitTimestamp")
	}
	if props["delta.appendOnly"] == "true" && len(writer) > 0 {
		writer = append(writer, "appendOnly")
	}
	switch {
	case len(reader) > 0:
		return txlog.Protocol{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: reader, WriterFeatures: append(writer, "appendOnly", "invariants")}
	case len(writer) > 0:
		return txlog.Protocol{MinReaderVersion: 1, MinWriterVersion: 7, WriterFeatures: append(writer, "invariants")}
	}
	return txlog.Protocol{MinReaderVersion: 1, MinWriterVersion: 2}
}

func usesType(t txlog.DataType, name string) bool {
	switch v := t.(type) {
	case *txlog.PrimitiveType:
		return v.Name == name
	case *txlog.StructType:
		for _, f := range v.Fields {
			if usesType(f.Type, name) {
				return true
			}
		}
	case *txlog.ArrayType:
		return usesType(v.ElementType, name)
	case *txlog.MapType:
		return usesType(v.KeyType, name) || usesType(v.ValueType, name)
	}
	return false
}

func fieldNames(s *txlog.StructType) []string {
	out := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		out[i] = f.Name
	}
	return out
}

// URI is the table's location as opened.
func (t *Table) URI() string { return t.loc.URI }

// Bucket is the bucket rooted at the table; data files are written and read through it.
func (t *Table) Bucket() *blob.Bucket { return t.loc.Bucket }

// Log is the table's transaction log.
func (t *Table) Log() *txlog.Log { return t.log }

// LocalDir is the table's directory for a local table, "" otherwise.
func (t *Table) LocalDir() string { return t.loc.LocalDir }

// Close releases the table's storage.
func (t *Table) Close() error { return t.loc.Close() }

// Snapshot loads the latest snapshot.
func (t *Table) Snapshot(ctx context.Context) (*txlog.Snapshot, error) {
	return t.wrap(t.log.Snapshot(ctx))
}

// SnapshotAt loads the snapshot at version.
func (t *Table) SnapshotAt(ctx context.Context, version int64) (*txlog.Snapshot, error) {
	if version < 0 {
		return nil, fmt.Errorf("version %d is negative", version)
	}
	return t.wrap(t.log.SnapshotAt(ctx, version))
}

// SnapshotAsOf loads the snapshot of the last version committed at or before ts.
func (t *Table) SnapshotAsOf(ctx context.Context, ts time.Time) (*txlog.Snapshot, error) {
	return t.wrap(t.log.SnapshotAsOf(ctx, ts))
}

// Update returns the latest snapshot, reading only the commits after s.
func (t *Table) Update(ctx context.Context, s *txlog.Snapshot) (*txlog.Snapshot, error) {
	return t.wrap(t.log.Update(ctx, s))
}

// History returns the table's commits, newest first, at most limit (0: all).
func (t *Table) History(ctx context.Context, limit int) ([]txlog.CommitEntry, error) {
	h, err := t.log.History(ctx, limit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.loc.URI, err)
	}
	return h, nil
}

func (t *Table) wrap(s *txlog.Snapshot, err error) (*txlog.Snapshot, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.loc.URI, err)
	}
	return s, nil
}

func jsonList(v []string) string {
	b := "["
	for i, s := range v {
		if i > 0 {
			b += ","
		}
		b += fmt.Sprintf("%q", s)
	}
	return b + "]"
}

func jsonMap(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	b := "{"
	for i, k := range keys {
		if i > 0 {
			b += ","
		}
		b += fmt.Sprintf("%q:%q", k, m[k])
	}
	return b + "}"
}
