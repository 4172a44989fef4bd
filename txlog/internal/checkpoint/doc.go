// Package checkpoint is the Parquet codec of Delta checkpoints: it decodes classic, multi-part,
// V2 and sidecar checkpoint files into the model's actions (internal/delta) and encodes actions
// as classic or V2-column Parquet checkpoints in the protocol's schema. It knows files, not
// logs: finding a table's checkpoints, reading sidecars and writing _last_checkpoint are
// txlog's, which re-exports this API under its historical names (txlog.DecodeCheckpoint is
// Decode, txlog.CheckpointWriter is Writer, and so on).
//
// The code is split by concern: decode.go (the API and the row-group loop), decode_plan.go (the
// file's schema matched to the actions' fields), decode_leaf.go (column cursors and typed field
// reads), decode_actions.go (rows assembled into actions), decode_stats.go (the add.stats
// prefetch, stats_parsed reading, arenas), statsjson.go (stats_parsed rendered as JSON stats) and
// encode.go (Writer).
//
// # Ownership
//
// Decode hands out actions the caller owns, whose strings share arena memory and whose
// partition-value maps are shared between adds (read-only). A snapshot load passes an AddSink
// instead (WithAddSink): the adds reach it through one reused *Add, their stats through
// StatsWriters it provides, and it keeps the values, never the pointer. Encode and EncodeRows
// reference the strings of the actions they are given, without copying them, until the row
// group is written.
//
// # Concurrency
//
// Decode runs the add.stats column of each row group in a second goroutine, and reads r with
// some concurrent ReadAt calls; nothing runs after it returns. A Writer belongs to one goroutine
// and writes row groups from a second one, which Close or an abandoned EncodeRows stops.
package checkpoint
