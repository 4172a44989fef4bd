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
// not implement returns *txlog.UnsupportedFeatureError naming it. Create refuses a schema,
// partition columns or delta.* property values it cannot honour with an *OptionError matching
// ErrInvalidOptions, before writing anything.
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
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
// location has no transaction log. It creates nothing: a local directory that does not exist is
// not a table (and a mistyped path does not leave an empty folder behind).
func Open(ctx context.Context, uri string, opts *Options) (*Table, error) {
	t, err := open(ctx, uri, opts, false)
	if err != nil {
		var nd *storage.NoDirectoryError
		if errors.As(err, &nd) {
			return nil, fmt.Errorf("open %s: %w: directory %s does not exist; check the path, or create a table there with `lake create`", uri, txlog.ErrNotATable, nd.Dir)
		}
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

// open opens the table's location; create says whether a missing local directory is created.
func open(ctx context.Context, uri string, opts *Options, create bool) (*Table, error) {
	openLoc := storage.OpenExisting
	if create {
		openLoc = storage.Open
	}
	loc, err := openLoc(ctx, uri)
	if err != nil {
		return nil, err
	}
	lo := opts.logOptions()
	if lo.Root == "" {
		if loc.LocalDir != "" {
			lo.Root = "file://" + filepath.ToSlash(loc.LocalDir) // absolute
		} else {
			lo.Root, _, _ = strings.Cut(loc.URI, "?") // the location without its query string (endpoints, regions)
		}
	}
	return &Table{loc: loc, log: txlog.NewLog(loc.Bucket, loc.Commits, lo)}, nil
}

// CreateOptions describe a new table.
type CreateOptions struct {
	Options
	PartitionColumns []string
	Properties       map[string]string
	Name             string
	Description      string
}

// Create creates a table at uri with schema. It fails when a table already exists there. It
// checks the schema, the partition columns (each once, each in the schema, of a primitive type,
// not every column) and the values of the known delta.* properties (delta.checkpointInterval a
// positive integer, delta.columnMapping.mode none, name or id, booleans true or false, ...)
// before writing anything: a mistake there is an *OptionError matching ErrInvalidOptions.
func Create(ctx context.Context, uri string, schema *txlog.StructType, opts *CreateOptions) (*Table, error) {
	var o CreateOptions
	if opts != nil {
		o = *opts
	}
	if err := validateCreate(schema, &o); err != nil {
		return nil, fmt.Errorf("create %s: %w", uri, err)
	}
	t, err := open(ctx, uri, &o.Options, true)
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
	if m := md.Configuration["delta.columnMapping.mode"]; m == "name" || m == "id" {
		// Column mapping needs every field's id and physical name in the schema (the protocol's
		// "Writer Requirements for Column Mapping"); ProtocolFor adds the feature.
		var maxID int64
		schema = withColumnMapping(schema, &maxID)
		md.SchemaString = schema.String()
		md.Configuration["delta.columnMapping.maxColumnId"] = strconv.FormatInt(maxID, 10)
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
// feature needs more; column mapping alone gives the legacy (2,5), and with other features the
// columnMapping table feature.
func ProtocolFor(schema *txlog.StructType, props map[string]string) txlog.Protocol {
	var reader, writer []string
	if usesType(schema, "timestamp_ntz") {
		reader = append(reader, "timestampNtz")
		writer = append(writer, "timestampNtz")
	}
	if props["delta.enableInCommitTimestamps"] == "true" {
		writer = append(writer, "inCommitTimestamp")
	}
	if props["delta.enableDeletionVectors"] == "true" {
		reader = append(reader, "deletionVectors")
		writer = append(writer, "deletionVectors")
	}
	if props["delta.checkpointPolicy"] == "v2" { // V2 checkpoints (JSON, with Parquet sidecars when large)
		reader = append(reader, "v2Checkpoint")
		writer = append(writer, "v2Checkpoint")
	}
	mapping := props["delta.columnMapping.mode"] == "name" || props["delta.columnMapping.mode"] == "id"
	if mapping {
		if len(reader)+len(writer) == 0 {
			return txlog.Protocol{MinReaderVersion: 2, MinWriterVersion: 5}
		}
		reader = append(reader, "columnMapping")
		writer = append(writer, "columnMapping")
	}
	if props["delta.appendOnly"] == "true" && len(writer) > 0 && len(reader) == 0 {
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

// withColumnMapping returns a copy of schema in which every field, nested ones included, has a
// column-mapping id and physical name; fields that have them keep them. maxID ends as the
// highest id.
func withColumnMapping(schema *txlog.StructType, maxID *int64) *txlog.StructType {
	var scan func(t txlog.DataType)
	scan = func(t txlog.DataType) {
		switch v := t.(type) {
		case *txlog.StructType:
			for _, f := range v.Fields {
				*maxID = max(*maxID, f.ColumnMappingID())
				scan(f.Type)
			}
		case *txlog.ArrayType:
			scan(v.ElementType)
		case *txlog.MapType:
			scan(v.KeyType)
			scan(v.ValueType)
		}
	}
	scan(schema)
	var walk func(t txlog.DataType) txlog.DataType
	walk = func(t txlog.DataType) txlog.DataType {
		switch v := t.(type) {
		case *txlog.StructType:
			ns := &txlog.StructType{Fields: make([]txlog.StructField, len(v.Fields))}
			for i, f := range v.Fields {
				f.Metadata = maps.Clone(f.Metadata)
				if f.Metadata == nil {
					f.Metadata = map[string]any{}
				}
				if f.ColumnMappingID() == 0 {
					*maxID++
					f.Metadata["delta.columnMapping.id"] = float64(*maxID)
				}
				if s, _ := f.Metadata["delta.columnMapping.physicalName"].(string); s == "" {
					f.Metadata["delta.columnMapping.physicalName"] = "col-" + uuid.NewString()
				}
				f.Type = walk(f.Type)
				ns.Fields[i] = f
			}
			return ns
		case *txlog.ArrayType:
			return &txlog.ArrayType{ElementType: walk(v.ElementType), ContainsNull: v.ContainsNull}
		case *txlog.MapType:
			return &txlog.MapType{KeyType: walk(v.KeyType), ValueType: walk(v.ValueType), ValueContainsNull: v.ValueContainsNull}
		}
		return t
	}
	return walk(schema).(*txlog.StructType)
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
