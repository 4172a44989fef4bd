// Package txlog is the Delta Lake transaction log: the actions of the protocol (Add, Remove,
// Metadata, Protocol, ...), the log segment of a version (commits and checkpoints), snapshots
// replayed from them, and commits of new versions.
//
// The actions, schema types and protocol features are defined in the leaf package
// internal/delta and re-exported here as aliases (txlog.Add is delta.Add); `go doc` shows their
// fields and methods there. txlog is their public spelling.
//
// A Log reads and writes the _delta_log folder of one table through a *blob.Bucket rooted at the
// table; the put-if-absent of a commit file goes through a CommitStore. Snapshot, SnapshotAt and
// SnapshotAsOf replay the newest usable checkpoint and the commits after it; Update reads only
// the commits after a snapshot. Checkpoints are written as classic Parquet files (or as V2 JSON
// checkpoints on tables with the v2Checkpoint feature) and read in every form the protocol
// defines: classic, multi-part, V2 with Parquet or JSON sidecars.
//
// A snapshot of a large table keeps the adds of its checkpoint compactly, their JSON stats
// compressed in blocks: AllFiles and Files hand out adds with the stats in place, and ScanFiles
// does so without allocating per file, for aggregates over millions of files.
//
// # Errors
//
// Errors name conditions:
//
//   - ErrNotATable: the location holds no commit or checkpoint.
//   - ErrVersionNotFound: a version (or timestamp) outside what the log can reconstruct.
//   - *ConflictError: a commit lost to a concurrent one. Retryable kinds (ConflictVersionTaken,
//     ConflictRetriesExhausted) match errors.Is(err, ErrConflict) and report Retryable: the
//     caller may retry the whole operation (re-read the table, redo the work, commit again).
//     Terminal kinds (the protocol, the metadata or the files the transaction read or removes
//     changed) do neither: retrying unchanged cannot help.
//   - *CommitUnknownError: the outcome of a commit could not be settled (the put failed in a way
//     that does not tell, and reading the file back failed too); read the history to find out.
//   - *CorruptError: a log file that does not decode (ErrEmptyLogFile for an empty commit); it
//     names the file.
//   - *UnsupportedFeatureError: the table needs a reader or writer feature lake does not
//     implement.
//
// ErrVersionExists is what a CommitStore returns when a commit file already exists; Commit turns
// it into a rebase or a *ConflictError.
//
// # Concurrency
//
// A Log is safe for concurrent use, and any number of Logs in any number of processes may commit
// to one table: a commit creates its version's file with put-if-absent, so exactly one writer
// wins each version and the others rebase onto it (checking what the winners changed) or fail
// with a *ConflictError. A Snapshot is immutable and safe for concurrent use; the slices, maps
// and adds its methods return are shared and must not be modified. A Transaction belongs to one
// goroutine. Reads of one snapshot load fan out (commit files, checkpoint columns) with bounded
// parallelism.
package txlog
