package txlog

// The Delta model (actions, schemas, protocol features) lives in the leaf package
// internal/delta, which the checkpoint codec shares; txlog is its public spelling. Types are
// aliases, so a txlog.Add is a delta.Add, with the same fields and methods.

import "github.com/lakehouse/lake/internal/delta"

// Actions. Action is one line of a commit file: exactly one of its fields is set; lines with an
// action this engine does not know decode to an Action with every field nil.
type (
	// Action is one line of a commit file or one row of a checkpoint.
	Action = delta.Action
	// Protocol is the protocol action: reader and writer versions and features. Its CheckRead
	// and CheckWrite return an *UnsupportedFeatureError for what this engine cannot honour.
	Protocol = delta.Protocol
	// Metadata is the metaData action: identity, schema, partitioning and properties.
	Metadata = delta.Metadata
	// Format names the data files' format; Provider is always "parquet".
	Format = delta.Format
	// Add is the add action: a data file that is part of the table.
	Add = delta.Add
	// Remove is the remove action: a logical deletion (a tombstone) of a data file.
	Remove = delta.Remove
	// DeletionVector describes the deleted rows of a data file.
	DeletionVector = delta.DeletionVector
	// CDC is the cdc action: a change-data file written by a commit.
	CDC = delta.CDC
	// Txn is the txn action: the last version an application committed.
	Txn = delta.Txn
	// CommitInfo is the commitInfo action: provenance of a commit, unknown fields kept in Extra.
	CommitInfo = delta.CommitInfo
	// DomainMetadata is the domainMetadata action: configuration owned by a named domain.
	DomainMetadata = delta.DomainMetadata
	// Sidecar is the sidecar action of a V2 checkpoint.
	Sidecar = delta.Sidecar
	// CheckpointMetadata is the checkpointMetadata action of a V2 checkpoint.
	CheckpointMetadata = delta.CheckpointMetadata
)

// Schemas.
type (
	// DataType is a Delta schema type: a *PrimitiveType, *DecimalType, *StructType, *ArrayType
	// or *MapType.
	DataType = delta.DataType
	// PrimitiveType is one of the protocol's primitive types by name.
	PrimitiveType = delta.PrimitiveType
	// DecimalType is decimal(Precision, Scale).
	DecimalType = delta.DecimalType
	// ArrayType is an array of ElementType.
	ArrayType = delta.ArrayType
	// MapType is a map from KeyType to ValueType.
	MapType = delta.MapType
	// StructField is one named field of a struct.
	StructField = delta.StructField
	// StructType is a struct; a table's schema is a StructType.
	StructType = delta.StructType
)

// The primitive types: the same pointers as delta's, so comparing a field's type with
// txlog.String (or delta.String) works either way.
var (
	String       = delta.String
	Long         = delta.Long
	Integer      = delta.Integer
	Short        = delta.Short
	Byte         = delta.Byte
	Float        = delta.Float
	Double       = delta.Double
	Boolean      = delta.Boolean
	Binary       = delta.Binary
	Date         = delta.Date
	Timestamp    = delta.Timestamp
	TimestampNTZ = delta.TimestampNTZ
	Variant      = delta.Variant
)

// MaxReaderVersion and MaxWriterVersion are the highest protocol versions this engine knows.
const (
	MaxReaderVersion = delta.MaxReaderVersion
	MaxWriterVersion = delta.MaxWriterVersion
)

// DecodeActions parses newline-delimited JSON actions (a commit file or a V2 JSON checkpoint).
// Blank lines and unknown actions are skipped; unknown fields are ignored. A line that is not a
// JSON object is an error that names its line number.
func DecodeActions(data []byte) ([]Action, error) { return delta.DecodeActions(data) }

// EncodeActions writes actions as newline-delimited JSON, one action per line.
func EncodeActions(actions []Action) ([]byte, error) { return delta.EncodeActions(actions) }

// ParseSchema decodes a metaData schemaString.
func ParseSchema(s string) (*StructType, error) { return delta.ParseSchema(s) }

// TypeString renders a type the way messages and `lake describe` show it: "long",
// "array<string>", "map<string,long>", "struct<a:long,b:string>".
func TypeString(t DataType) string { return delta.TypeString(t) }
