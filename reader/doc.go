// Package reader scans a snapshot of a Delta table into Arrow record batches.
//
// NewScan plans a scan of a *txlog.Snapshot: the projection (logical column names, in the order
// asked), the filters (ANDed; ParseFilter reads the CLI's `--where` syntax), a row limit.
// Planning binds the filters to the table's schema, so an unknown column or a value that does
// not parse as the column's type fails early with a *FilterError. Reading then narrows the work
// in four steps, each counted in Metrics:
//
//  1. partition pruning: a file whose partition values (parsed per the column's type by
//     internal/partval; null partitions never match a comparison) fail a filter is not read;
//  2. file skipping: a file whose add.stats (minValues, maxValues, nullCount) prove that no row
//     can match is not read; missing stats never skip, string bounds are treated as possibly
//     truncated prefixes and timestamp bounds as truncated to milliseconds;
//  3. row-group skipping: the same test on the Parquet column-chunk statistics;
//  4. exact filtering: the remaining rows are tested one by one, so the result is exact.
//
// Data files are read through the table's bucket with ranged reads (small files whole), by
// logical name, by physical name (column mapping mode "name") or by Parquet field id (mode
// "id"); physical names never reach the caller. Partition values become typed constant columns
// in the schema's column order; columns a file does not have (added later by schema evolution)
// are nulls. Every Delta type is returned as internal/deltaarrow maps it: timestamps of any
// Parquet encoding (INT96, millis, micros, nanos) become microsecond timestamps, UTC for
// "timestamp" and zone-less for "timestamp_ntz". Rows deleted by a deletion vector (inline,
// relative or absolute) are dropped.
//
// Tables with the Type Widening feature (typeWidening, typeWidening-preview) read files written
// before a column was widened as the column's current type: integers to wider integers, double
// or decimal, float to double, date to timestamp_ntz (midnight), decimals to wider decimals, at
// any depth. Statistics and partition values written under the old type still prune and skip.
// A type change in delta.typeChanges that is not a supported widening is an *UnsupportedError.
//
// # Ownership
//
// (*Scan).Records yields record batches that belong to the iterator: each is released when the
// loop body returns. A caller that keeps a batch past its iteration calls Retain on it and
// Release when done. Breaking out of the loop early is safe: the iterator stops the readers and
// releases everything it holds before it returns.
//
// # Errors
//
//   - *FilterError (matching ErrInvalidFilter): a filter names an unknown column, uses an
//     operator the column's type does not support, or holds a value that does not parse as the
//     column's type; the message names the column, the value and the expected type. The CLI
//     reports it as a usage error.
//   - *FileError: a data file or deletion vector cannot be read or does not match the log
//     (missing, truncated, not Parquet, a column of another type); it names the file.
//   - *UnsupportedError, which unwraps to a *txlog.UnsupportedFeatureError: the table, or a file
//     in it, needs something this reader cannot honour (a type, a file outside the table's
//     location, column mapping by id on a file without field ids); it names the feature. The
//     reader never returns rows it is not sure about.
//   - ErrUnknownColumn: the projection names a column the table does not have.
//
// The rows yielded before an error are exactly those of the files before the failing one.
//
// # Concurrency
//
// A Scan reads up to ScanOptions.Concurrency files at a time (errgroup with SetLimit), each file
// by one goroutine, with a bounded number of batches buffered per file (so memory is bounded by
// Concurrency × 3 batches). Batches are yielded in a deterministic order: files in the snapshot's
// path order, and within a file in row order. A Scan may be iterated more than once, but not by
// two loops at the same time; Metrics may be called at any time from any goroutine.
package reader
