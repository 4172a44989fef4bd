// Package registry is the model registry of the job outputs under a prefix: a Delta table at
// PREFIX/models that says, for every job run (`lake als`, `lake trending`), which output table
// versions it produced, from which source version, with which parameters and quality metrics,
// and whether it is live, a candidate, rejected or retired.
//
// # Layout
//
// The registry is an append-only Delta table (any engine can read it): every state change appends
// rows, one per run whose state changed, and never rewrites one. The current state of a run is its
// row with the highest seq. seq is a counter over the whole table, 1, 2, 3, ...; each commit also
// records the last seq it wrote as the txn of the application "lake-models", so two processes
// that change the registry at the same time conflict (a concurrent transaction for one appId) and
// the loser re-reads the registry and decides again: a gate decision is always made against the
// state it commits over. In SQL the current state is
//
//	SELECT * FROM models QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY seq DESC) = 1
//
// Appending keeps the whole history of decisions (who went live when, and why) readable by time
// travel and by a plain scan, and an append never conflicts with readers.
//
// # Columns
//
// run_id, seq, job (als or trending), action (register, promote, rollback, supersede, redact), status
// (live, candidate, rejected, retired), reason, created_at (when the run registered), updated_at
// (when this row was written), source, source_version, parameters (JSON), outputs (JSON: output
// table name -> version), metrics (JSON; for ALS recall@10 and ndcg@10 of the model and of the
// popularity and item-kNN baselines on the run's held-out split).
//
// # The gate
//
// An evaluated ALS run goes live when no ALS run is live, or when its recall@10 is at least the
// live run's minus GateTolerance (absolute, default 0.02), both scored on the new run's held-out
// split: RunALS passes the live run to the job, which folds the evaluated users into the live
// item factors and scores both models on the held-out interactions newer than the live model's
// data (metrics.baseline; older ones the live model may have trained on). When no such
// comparison exists (a rerun on the same data, or fewer than 20 users to compare), the recalls
// each run recorded on its own split decide, and the reason says so. A rejected run's reason says
// by how much. A run without an evaluation (--no-eval) stays a candidate until promoted. Trending runs go live
// directly. The run a new live run replaces is retired. Rollback retires the live run and makes
// the previous live run of the same job live again; rollbacks stack (a second rollback goes one
// further back), because a run retired by a rollback is never a rollback target.
//
// # Erasure
//
// Rows deleted for good from an output (`lake delete` on PREFIX/user_recommendations, to erase a
// user) are still in the versions the registry serves and pins. Redact moves the live run to the
// new version and retires every other run that names an older version of that table (it is no
// longer a rollback target), so that vacuum may delete the files that still hold the rows;
// `lake delete` calls it for tables under a registry.
//
// # Concurrency
//
// Every function re-reads the registry; a change commits with optimistic concurrency and retries
// on a conflict. A Picker is safe for concurrent use.
package registry
