// Package compaction maintains Delta tables beside live writers: Optimize (bin-packing and
// Z-order clustering of small files), Vacuum (deleting data files no snapshot inside the
// retention needs), CleanupLog (deleting expired commits and checkpoints) and Restore (bringing
// back the files of an earlier version).
//
// Every operation reads a pinned snapshot and commits through the transaction log's optimistic
// concurrency (txlog.Transaction), so it never loses a committed row:
//
//   - Optimize commits removes and adds with dataChange=false, in groups of bins
//     (OptimizeOptions.GroupBytes). Blind appends never conflict with it. A group whose input
//     files another writer removed (a delete, another optimize) is dropped on its own: its new
//     files are deleted, the table keeps the old ones, and the other groups go on.
//   - Vacuum deletes only files that are neither referenced by the latest snapshot nor by a
//     tombstone younger than the retention, and that are themselves older than the retention,
//     so a writer's files that are not committed yet are safe. It never touches _delta_log/.
//   - CleanupLog follows the protocol's "Metadata Cleanup": it keeps the newest checkpoint at
//     or before the cut-off and everything after it, so time travel inside the log retention
//     keeps working.
//   - Restore is one ordinary commit (dataChange=true) against the latest snapshot.
//
// # Errors
//
// Options that cannot be honoured (a Where filter on a non-partition column, an unknown Z-order
// column, a vacuum retention shorter than the table's without Force) are an *OptionError
// matching ErrInvalidOptions, returned before anything is written. Restore of a version whose
// files vacuum already deleted is a *MissingFilesError naming them. Commit conflicts are the
// transaction log's *txlog.ConflictError; Optimize reports the conflicts of the groups it
// dropped in OptimizeResult.Conflicts instead of failing.
//
// # Concurrency
//
// Optimize rewrites up to OptimizeOptions.Parallelism bins at once; Vacuum and CleanupLog delete
// with bounded fan-out (errgroup with SetLimit). Every function may run while other processes
// write the table.
package compaction
