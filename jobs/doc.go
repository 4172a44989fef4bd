// Package jobs holds the downstream jobs that read an interaction table and write their results
// back as Delta tables (`lake als`, `lake gen`), and the rules every job follows.
//
// # Every job
//
// A job is a function of (a pinned snapshot, parameters) to output tables:
//
//   - It reads one snapshot of the source, pinned at a version (the latest at start unless a
//     version is given), so appends that land while it runs are never seen.
//   - It has no side effect before its final commits: output tables are created (if missing) and
//     written only once everything is computed. Each output table is replaced in one commit
//     (writer.Overwrite), so readers see the old or the new result, never a mix.
//   - Each commit carries lineage in commitInfo.operationParameters (see Lineage): the job, the
//     source URI and version, every parameter, quality metrics, run time and the engine version,
//     so `lake history` on an output says which source version built it.
//   - Each commit records a txn action: appId = job + output + a hash of the parameters (AppID),
//     version = the source version. A second run with the same parameters on the same source
//     version finds the txn, computes nothing and says so (not an error: the result reports
//     Skipped). Force runs anyway; see commitOutput for how the txn stays meaningful.
//   - A seed makes a run reproducible: one random source per worker, seeded from the run's seed
//     and the worker's index, and parallel work split into fixed chunks so the result does not
//     depend on GOMAXPROCS.
//
// Derived table URIs (PREFIX/item_factors) are formed on the URI's path, keeping its query
// string: ChildURI.
//
// # Concurrency
//
// Numeric work runs on a bounded pool of GOMAXPROCS goroutines (errgroup with SetLimit) over
// fixed-size chunks of rows. Cancelling the context stops the work at the next chunk; nothing is
// committed after a cancellation.
//
// # Errors
//
// Input problems are errors that say what to do: ErrEmptySource (no rows at the version),
// *MissingColumnsError (the source lacks interaction columns), ErrBadParameter (a parameter out
// of range). Version errors come from the table package unchanged.
package jobs
