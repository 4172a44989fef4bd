// Package ops runs `lake serve` as one process: the collector, the queue, the committer, the read
// APIs, and a scheduler of the jobs (ALS retraining, trending) and of the table maintenance
// (optimize, vacuum), all described by one Config (a YAML or JSON file, or the serve flags).
//
// # Configuration
//
// Load reads a file strictly (an unknown key is an error naming its line); Config.Resolve copies
// a Config, fills the defaults and checks it (the pebble way: copy, default, validate). The CLI
// builds the same Config from its flags; with --config, the flags given explicitly override the
// file's values.
//
// # Scheduling
//
// Each task is a goroutine: it waits for its trigger, runs, and on failure (an error or a
// panic, which is recovered) retries with exponential backoff (Config.Retry: 5s doubling to
// 10m, ±20% jitter), counting consecutive failures; a failing task never stops the server or
// the other tasks. Triggers:
//
//   - als: every T since the end of the last run, or when the events table holds at least N
//     more rows than the source version of the last ALS run (counted from the numRecords
//     statistics of the snapshot's add actions, polled every few seconds by reading only the
//     new commits), whichever comes first. The last run comes from the model registry, so a
//     restart keeps the schedule. A run goes through registry.RunALS (the gate); a run on a
//     source version the outputs already hold is skipped, and so is a tick on an empty table.
//   - trending: follow (trending.Follow, each round registered; restarted with backoff when it
//     fails) or every T (registry.RunTrending).
//   - optimize, vacuum: every T. Vacuum visits the events table and the job outputs, keeping
//     the versions the registry serves or rolls back to, then cleans up the expired log files.
//
// Scheduler.Status (GET /v1/ops) reports per task: the schedule, whether it runs, the last
// start, end, success, result (with the registry run id and status) and error, the consecutive
// failures and the next run. The metrics lake_ops_runs_total{task,result},
// lake_ops_last_success_timestamp_seconds{task} and lake_ops_consecutive_failures{task} go to
// the server's registry.
package ops
