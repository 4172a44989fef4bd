// Package writer writes Arrow records into a Delta table: Parquet data files with statistics,
// under Hive-style partition folders, committed as one new table version.
//
//	w, err := writer.New(ctx, t, &writer.Options{Mode: writer.Append})
//	...
//	for rec := range records {
//		if err := w.Write(ctx, rec); err != nil { ... } // rec may be released now
//	}
//	res, err := w.Close(ctx) // finishes the files and commits once
//
// A write is visible only after Close returns nil; before that, and after any failure, no
// snapshot references the files written.
//
// # Files
//
// Data files are named part-NNNNN-<uuid>.c000.zstd.parquet and live under one folder per
// partition (event_date=2024-01-01/), names and values escaped as Hive and Spark escape them
// (internal/partval). add.path is the file's key as a URI, so a value A/A is the folder x=A%2FA
// and the path x=A%252FA/part-.... Partition columns are not stored in the files; their values
// are in add.partitionValues, serialised as the protocol says (partval.Format). Timestamps are
// INT64 TIMESTAMP(MICROS) with isAdjustedToUTC true (false for timestamp_ntz). Files roll at
// Options.TargetFileSize; row groups hold at most Options.RowGroupRows rows, with min/max
// statistics in the footer. add.stats holds numRecords and per-column nullCount, minValues and
// maxValues (see stats.go for the rules, which follow Delta's Spark writer).
//
// Under column mapping (delta.columnMapping.mode name or id), the files use the physical column
// names and carry the column-mapping ids as Parquet field ids; partitionValues and stats are
// keyed by physical name.
//
// # Schema
//
// Input columns are matched to the table's by name (exactly, else ignoring case); order does not
// matter. A nullable column missing from the input is written as nulls. Values are converted
// only where nothing is lost: byte → short → integer → long, float and small integers → double,
// integers and narrower decimals → a wide enough decimal, date → timestamp_ntz, any timestamp
// unit → microseconds (nanoseconds truncated), large and view strings and binaries,
// dictionaries. A column of
// another type, a column the table lacks (unless Options.MergeSchema), a missing non-null
// column, and a null in a non-null column (or array element, or map value) are *SchemaError
// values naming the column and both types; the record is refused as a whole.
//
// With Options.MergeSchema, input columns the table lacks (also new fields of struct columns)
// are added to the schema as nullable columns, with a metaData action in the same commit. An
// input column whose type is a widening the Type Widening table feature allows (byte → short →
// integer → long, float or small integers → double, date → timestamp_ntz, decimals and integers
// to decimals with no fewer integer digits and no smaller scale; also array elements and map
// keys and values) widens the table's column in that commit: its delta.typeChanges metadata
// records the change, delta.enableTypeWidening becomes true, and the protocol gains the
// typeWidening feature (reader version 3, writer version 7) unless it has typeWidening or
// typeWidening-preview already. Files written before keep the old type; readers widen their
// values. A table that sets delta.enableTypeWidening=false, and any other type change, refuse
// the record with a *SchemaError.
//
// # Modes
//
// Append adds files (a blind append). Overwrite removes every active file (dataChange true,
// with a deletionTimestamp) and declares that it read the whole table, so a concurrent commit
// that adds or removes files makes it conflict. OverwriteWhere removes the files of the
// partitions that Options.Where selects, refuses rows outside them (ErrOutsideWhere), and
// declares those partitions read. commitInfo records operation WRITE with Spark's
// operationParameters (mode, partitionBy, predicate) and operationMetrics (numFiles,
// numOutputRows, numOutputBytes, as strings).
//
// With Options.AppID, the commit records a txn action (AppID, AppVersion), and a Writer for an
// AppVersion the table already has is skipped: New returns a Writer whose Skipped is true,
// Write discards records, and Close reports Result.Skipped.
//
// # Memory
//
// Memory is bounded by the open files: one per partition at most, at most
// Options.MaxOpenFiles (the least recently used is finished when another is needed), each
// buffering one compressed row group, and all of them together at most
// Options.MaxBufferedBytes (the largest row groups are flushed to storage beyond it); plus the
// records waiting for the background encoder (at most two, besides the one it encodes; see
// Concurrency). Data goes to storage as it is produced (bucket.NewWriter); files are never held
// whole in memory, except by stores that buffer uploads themselves (mem://). Arrow buffers come
// from Options.Allocator, and every one is released by the time Close or Abort returns.
//
// # Errors
//
//   - *SchemaError (errors.Is ErrSchemaMismatch): the record does not fit the table; it was not
//     written and the Writer stays usable.
//   - ErrOutsideWhere: an OverwriteWhere record has rows outside the replaced partitions; not
//     written, the Writer stays usable.
//   - *txlog.UnsupportedFeatureError from New: the table needs a writer feature lake does not
//     implement (CHECK constraints, invariants, default columns, row tracking, ...).
//   - *CommitError from Close: the commit failed (a conflict, a storage error, an unknown
//     outcome); it wraps the txlog error, so errors.Is(err, txlog.ErrConflict) tells a retryable
//     conflict. The files written are not part of the table (no version references them).
//   - ErrClosed: a call after Close or Abort.
//   - Any other error from Write (storage, context) fails the Writer: its open files are
//     abandoned and Close returns the error without committing. An error of the background
//     encoding of a record is returned the same way by the next Write, or by Close.
//
// # Concurrency
//
// A Writer or FileWriter is used by one goroutine. Write conforms a record and splits it by
// partition in the caller's goroutine, then queues it for a background encoder and returns, so
// that the caller prepares its next record while the previous ones are encoded; the queue holds
// at most two records, and Write waits when it is full. The encoder writes the partitions of a
// record in parallel, by at most Options.Parallelism goroutines, each on its own file, and Close
// finishes the open files in parallel too. What the queue holds references the caller's buffers
// (retained): the caller may release a record as soon as Write returns. An error of the
// background encoding fails the Writer and is returned by the next Write, or by Close; Abort
// stops the encoder and removes the files either way. Every Writer must end with Close or Abort:
// one that is dropped after a Write keeps its encoder goroutine and its uploads open.
//
// Several Writers may write one table at once, from one process or many: each commits through
// the transaction log's optimistic concurrency, and appends do not conflict with each other.
// Cancelling the context of a Write or Close call while it runs stops the background encoding,
// aborts the uploads in flight and fails the Writer; a context cancelled after the call returned
// does not reach back to the records it queued.
package writer
