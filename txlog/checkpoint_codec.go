package txlog

// The Parquet checkpoint codec lives in txlog/internal/checkpoint; these are its names in
// txlog's API, unchanged since the codec was part of this package.

import (
	"io"

	"github.com/lakehouse/lake/txlog/internal/checkpoint"
)

// CheckpointReadOption tunes DecodeCheckpoint.
type CheckpointReadOption = checkpoint.ReadOption

// CheckpointWriteOption tunes EncodeCheckpoint and NewCheckpointWriter.
type CheckpointWriteOption = checkpoint.WriteOption

// CheckpointWriter writes a Parquet checkpoint action by action; see EncodeCheckpoint. The
// strings of written actions are referenced, not copied, until their row group is written, so
// they must not be modified meanwhile (Go strings cannot be). Close must be called to finish the
// file; it does not close w.
type CheckpointWriter = checkpoint.Writer

// DecodeCheckpoint decodes one Parquet checkpoint file of size bytes read through r: a classic
// checkpoint, one part of a multi-part checkpoint, a V2 (UUID-named) Parquet checkpoint, or a
// V2 sidecar file. It calls yield once per action, in file order; an error from yield stops
// decoding and is returned as is. r is read with a few large ReadAt calls (the footer, then
// each needed column chunk of one row group at a time), some of them concurrent (as io.ReaderAt
// allows); nothing reads r after DecodeCheckpoint returns.
//
// The actions are the caller's, but their strings share memory with each other, and the
// PartitionValues maps (and their *string values) of adds and removes with equal partition
// values are one shared map: treat maps and pointed-to values as read-only.
//
// Action columns absent from the file are simply absent, fields absent from a column are zero
// (nil for optional fields), and unknown columns and fields (cdc, commitInfo,
// partitionValues_parsed, stats_parsed when a JSON stats string is present, ...) are not read.
// When an add has no JSON stats but the file has stats_parsed, Add.Stats is the equivalent JSON
// as Spark writes it (numRecords, minValues, maxValues, nullCount, tightBounds; dates
// YYYY-MM-DD, timestamps RFC 3339 in UTC with milliseconds, decimals as numbers; nulls left out).
//
// A file that is not Parquet, or whose columns have types other than the protocol's, is an error
// that names the column and the expected type; callers add the file's path. Malformed input is an
// error, never a panic.
func DecodeCheckpoint(r io.ReaderAt, size int64, yield func(Action) error, opts ...CheckpointReadOption) (err error) {
	return checkpoint.Decode(r, size, yield, opts...)
}

// WithoutCheckpointStats makes DecodeCheckpoint leave Add.Stats empty and skip reading the stats
// columns (stats and stats_parsed), which are most of a checkpoint's bytes.
func WithoutCheckpointStats() CheckpointReadOption { return checkpoint.WithoutStats() }

// WithCheckpointActions restricts DecodeCheckpoint to the named top-level action columns
// ("add", "remove", "metaData", "protocol", "txn", "domainMetadata", "sidecar",
// "checkpointMetadata"); the other columns are not read at all.
func WithCheckpointActions(names ...string) CheckpointReadOption {
	return checkpoint.WithActions(names...)
}

// EncodeCheckpoint writes actions as a classic Parquet checkpoint in the protocol's checkpoint
// schema, which Spark, delta-rs and DuckDB read: top-level columns txn, add, remove, metaData,
// protocol and domainMetadata, every field nullable, one action per row and the other columns
// null. Longs are INT64, ints (protocol versions, deletion vector offset and size) INT32,
// strings UTF-8 BYTE_ARRAY, maps MAP<string,string> (key_value/key/value) and arrays
// three-level LISTs. add.stats is the JSON string; remove has the fields the protocol keeps in
// checkpoints (no stats, no tags). Map keys are written sorted, so equal input gives equal
// files. Rows are written in row groups (see WithCheckpointRowGroupRows) by a second goroutine
// while the next row group is assembled; memory beyond the actions stays bounded by two row
// groups of levels and value references. CDC and commitInfo actions are an error: checkpoints
// must not hold them.
func EncodeCheckpoint(w io.Writer, actions []Action, opts ...CheckpointWriteOption) error {
	return checkpoint.Encode(w, actions, opts...)
}

// NewCheckpointWriter starts a Parquet checkpoint on w; see EncodeCheckpoint.
func NewCheckpointWriter(w io.Writer, opts ...CheckpointWriteOption) (*CheckpointWriter, error) {
	return checkpoint.NewWriter(w, opts...)
}

// WithCheckpointRowGroupRows sets the rows per row group (default 65536). The writer holds two
// row groups' worth of levels and value references (not copies) in memory.
func WithCheckpointRowGroupRows(n int) CheckpointWriteOption {
	return checkpoint.WithRowGroupRows(n)
}

// WithCheckpointZstd compresses with zstd instead of snappy (smaller; read by Spark 3.2+,
// delta-rs and DuckDB, but not by every old reader).
func WithCheckpointZstd() CheckpointWriteOption { return checkpoint.WithZstd() }

// WithCheckpointV2Columns adds the checkpointMetadata and sidecar columns, for a V2-spec Parquet
// checkpoint (which must then hold one CheckpointMetadata action).
func WithCheckpointV2Columns() CheckpointWriteOption { return checkpoint.WithV2Columns() }
